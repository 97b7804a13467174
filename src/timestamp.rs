//! Times as ALM sends them: epoch seconds, epoch milliseconds or RFC 3339.
//!
//! # Seconds or milliseconds?
//!
//! ALM's documentation shows both `1725604147` (seconds) and `1727414643000`
//! (milliseconds) for the same field. A number is read as **seconds** when its
//! magnitude is below [`MILLIS_THRESHOLD`] (10¹¹) and as **milliseconds** from
//! there on. 10¹¹ seconds is the year 5138, and 10¹¹ milliseconds is
//! 1973-03-03, so every plausible time of either kind falls on the right side:
//! seconds up to 99 999 999 999 and milliseconds from 100 000 000 000.
//!
//! Strings are parsed as RFC 3339 (`2024-11-08T03:49:52.000Z`). Whatever the
//! form, the value compares as an instant: a time in seconds and the same time
//! in milliseconds are equal. The form is remembered so that serializing gives
//! back what was received.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Numbers with a magnitude at or above this are epoch milliseconds; below it,
/// epoch seconds. See [`Timestamp`].
///
/// ```
/// use alm_webhooks::{MILLIS_THRESHOLD, TimeFormat, Timestamp};
/// assert_eq!(Timestamp::from_epoch(MILLIS_THRESHOLD - 1).unwrap().format(), &TimeFormat::EpochSeconds);
/// assert_eq!(Timestamp::from_epoch(MILLIS_THRESHOLD).unwrap().format(), &TimeFormat::EpochMillis);
/// ```
pub const MILLIS_THRESHOLD: i64 = 100_000_000_000;

/// The form in which a time arrived.
///
/// ```
/// use alm_webhooks::{TimeFormat, Timestamp};
/// let text = Timestamp::from_rfc3339("2024-09-06T08:29:07+02:00").unwrap();
/// assert_eq!(text.format(), &TimeFormat::Rfc3339("2024-09-06T08:29:07+02:00".into()));
/// assert_eq!(Timestamp::from_epoch(1725604147).unwrap().format(), &TimeFormat::EpochSeconds);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TimeFormat {
    /// An integer number of seconds since the Unix epoch.
    EpochSeconds,
    /// An integer number of milliseconds since the Unix epoch.
    EpochMillis,
    /// An RFC 3339 string, kept verbatim so it serializes unchanged.
    Rfc3339(Box<str>),
}

/// A point in time from an ALM event, with the form it arrived in.
///
/// Equality, ordering and hashing use the instant only.
///
/// A number is read as **seconds** when its magnitude is below
/// [`MILLIS_THRESHOLD`] (10¹¹) and as **milliseconds** from there on: 10¹¹
/// seconds is the year 5138 and 10¹¹ milliseconds is 1973-03-03, so every
/// plausible time of either kind falls on the right side. Strings are RFC
/// 3339. Fractional numbers are refused.
///
/// ```
/// use alm_webhooks::Timestamp;
/// let secs: Timestamp = serde_json::from_str("1725604147").unwrap();
/// let millis: Timestamp = serde_json::from_str("1725604147000").unwrap();
/// let text: Timestamp = serde_json::from_str("\"2024-09-06T06:29:07Z\"").unwrap();
/// assert_eq!(secs, millis);
/// assert_eq!(secs, text);
/// assert_eq!(secs.instant().unix_timestamp(), 1_725_604_147);
/// // Serializing gives back the original form.
/// assert_eq!(serde_json::to_string(&millis).unwrap(), "1725604147000");
/// ```
#[derive(Debug, Clone)]
pub struct Timestamp {
    instant: OffsetDateTime,
    format: TimeFormat,
}

/// Why a value is not a time ALM could have sent.
///
/// ```
/// use alm_webhooks::{TimeError, Timestamp};
/// assert_eq!(Timestamp::from_rfc3339("yesterday").unwrap_err(), TimeError::NotRfc3339);
/// assert_eq!(Timestamp::from_epoch(i64::MAX).unwrap_err(), TimeError::OutOfRange(i64::MAX));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimeError {
    /// The number is outside the range of representable dates.
    #[error("epoch time {0} is out of range")]
    OutOfRange(i64),
    /// The string is not RFC 3339.
    #[error("not an RFC 3339 date-time")]
    NotRfc3339,
}

impl Timestamp {
    /// Reads an epoch number, deciding seconds or milliseconds by magnitude.
    ///
    /// ```
    /// use alm_webhooks::Timestamp;
    /// assert_eq!(Timestamp::from_epoch(1725604147).unwrap(), Timestamp::from_epoch(1725604147000).unwrap());
    /// assert!(Timestamp::from_epoch(i64::MIN).is_err());
    /// ```
    pub fn from_epoch(value: i64) -> Result<Self, TimeError> {
        let out_of_range = |_| TimeError::OutOfRange(value);
        if value.unsigned_abs() < MILLIS_THRESHOLD as u64 {
            let instant = OffsetDateTime::from_unix_timestamp(value).map_err(out_of_range)?;
            return Ok(Self {
                instant,
                format: TimeFormat::EpochSeconds,
            });
        }
        let instant = OffsetDateTime::from_unix_timestamp_nanos(i128::from(value) * 1_000_000)
            .map_err(out_of_range)?;
        Ok(Self {
            instant,
            format: TimeFormat::EpochMillis,
        })
    }

    /// Reads an RFC 3339 string, keeping it verbatim for serialization.
    ///
    /// ```
    /// use alm_webhooks::Timestamp;
    /// let t = Timestamp::from_rfc3339("2024-09-06T08:29:07+02:00").unwrap();
    /// assert_eq!(t, Timestamp::from_epoch(1725604147).unwrap(), "the same instant");
    /// assert_eq!(serde_json::to_string(&t).unwrap(), "\"2024-09-06T08:29:07+02:00\"", "kept verbatim");
    /// assert!(Timestamp::from_rfc3339("2024-09-06").is_err());
    /// ```
    pub fn from_rfc3339(text: &str) -> Result<Self, TimeError> {
        let instant = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| TimeError::NotRfc3339)?;
        Ok(Self {
            instant,
            format: TimeFormat::Rfc3339(text.into()),
        })
    }

    /// A timestamp for an instant, serialized as epoch seconds (sub-second
    /// precision is dropped).
    ///
    /// ```
    /// use alm_webhooks::Timestamp;
    /// let now = time::OffsetDateTime::from_unix_timestamp_nanos(1_725_604_147_900_000_000).unwrap();
    /// let t = Timestamp::from_instant_seconds(now);
    /// assert_eq!(serde_json::to_string(&t).unwrap(), "1725604147");
    /// ```
    pub fn from_instant_seconds(instant: OffsetDateTime) -> Self {
        let instant = instant.replace_nanosecond(0).unwrap_or(instant);
        Self {
            instant,
            format: TimeFormat::EpochSeconds,
        }
    }

    /// The instant.
    ///
    /// ```
    /// use alm_webhooks::Timestamp;
    /// let t = Timestamp::from_rfc3339("2024-09-06T06:29:07Z").unwrap();
    /// assert_eq!(t.instant().unix_timestamp(), 1725604147);
    /// ```
    pub fn instant(&self) -> OffsetDateTime {
        self.instant
    }

    /// The form it arrived in.
    ///
    /// ```
    /// use alm_webhooks::{TimeFormat, Timestamp};
    /// assert_eq!(Timestamp::from_epoch(1725604147000).unwrap().format(), &TimeFormat::EpochMillis);
    /// ```
    pub fn format(&self) -> &TimeFormat {
        &self.format
    }

    /// Milliseconds since the Unix epoch (truncated towards negative infinity
    /// for sub-millisecond RFC 3339 times).
    ///
    /// ```
    /// use alm_webhooks::Timestamp;
    /// assert_eq!(Timestamp::from_epoch(1725604147).unwrap().unix_millis(), 1_725_604_147_000);
    /// assert_eq!(Timestamp::from_rfc3339("1970-01-01T00:00:00.0019Z").unwrap().unix_millis(), 1);
    /// ```
    pub fn unix_millis(&self) -> i64 {
        // Every representable date fits: ±9999 years is about ±3.2e14 ms.
        // (`unix_timestamp` floors, and the millisecond of the second is
        // never negative, so this floors too.)
        self.instant.unix_timestamp() * 1000 + i64::from(self.instant.millisecond())
    }
}

impl From<Timestamp> for OffsetDateTime {
    fn from(t: Timestamp) -> Self {
        t.instant
    }
}

impl PartialEq for Timestamp {
    fn eq(&self, other: &Self) -> bool {
        self.instant == other.instant
    }
}

impl Eq for Timestamp {}

impl PartialOrd for Timestamp {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Timestamp {
    fn cmp(&self, other: &Self) -> Ordering {
        self.instant.cmp(&other.instant)
    }
}

impl Hash for Timestamp {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.instant.hash(state);
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.format {
            TimeFormat::EpochSeconds => write!(f, "{}", self.instant.unix_timestamp()),
            TimeFormat::EpochMillis => write!(f, "{}", self.unix_millis()),
            TimeFormat::Rfc3339(text) => f.write_str(text),
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.format {
            TimeFormat::EpochSeconds => serializer.serialize_i64(self.instant.unix_timestamp()),
            TimeFormat::EpochMillis => serializer.serialize_i64(self.unix_millis()),
            TimeFormat::Rfc3339(text) => serializer.serialize_str(text),
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TimestampVisitor)
    }
}

struct TimestampVisitor;

impl Visitor<'_> for TimestampVisitor {
    type Value = Timestamp;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("epoch seconds, epoch milliseconds or an RFC 3339 string")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Timestamp, E> {
        Timestamp::from_epoch(v).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Timestamp, E> {
        let v =
            i64::try_from(v).map_err(|_| E::custom(format!("epoch time {v} is out of range")))?;
        self.visit_i64(v)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Timestamp, E> {
        Err(E::invalid_type(de::Unexpected::Float(v), &self))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Timestamp, E> {
        Timestamp::from_rfc3339(v).map_err(|e| E::custom(format!("{e}: {v:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundary_between_seconds_and_millis() {
        let below = Timestamp::from_epoch(MILLIS_THRESHOLD - 1).unwrap();
        assert_eq!(below.format(), &TimeFormat::EpochSeconds);
        assert_eq!(below.instant().unix_timestamp(), MILLIS_THRESHOLD - 1);
        let at = Timestamp::from_epoch(MILLIS_THRESHOLD).unwrap();
        assert_eq!(at.format(), &TimeFormat::EpochMillis);
        assert_eq!(at.instant().unix_timestamp(), MILLIS_THRESHOLD / 1000);
        assert!(below > at, "year 5138 in seconds is after 1973 in millis");
    }

    #[test]
    fn negative_and_extreme_values() {
        let t = Timestamp::from_epoch(-1).unwrap();
        assert_eq!(t.instant().unix_timestamp(), -1);
        assert_eq!(
            Timestamp::from_epoch(i64::MAX),
            Err(TimeError::OutOfRange(i64::MAX))
        );
        assert_eq!(
            Timestamp::from_epoch(i64::MIN),
            Err(TimeError::OutOfRange(i64::MIN))
        );
    }

    #[test]
    fn rfc3339_keeps_its_text() {
        let t = Timestamp::from_rfc3339("2024-11-08T03:49:52.000Z").unwrap();
        assert_eq!(t.instant().unix_timestamp(), 1_731_037_792);
        assert_eq!(t.to_string(), "2024-11-08T03:49:52.000Z");
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            "\"2024-11-08T03:49:52.000Z\""
        );
        assert_eq!(
            Timestamp::from_rfc3339("2024-11-08"),
            Err(TimeError::NotRfc3339)
        );
    }

    #[test]
    fn floats_and_booleans_are_refused() {
        assert!(serde_json::from_str::<Timestamp>("1725604147.5").is_err());
        assert!(serde_json::from_str::<Timestamp>("true").is_err());
        assert!(serde_json::from_str::<Timestamp>("1e400").is_err());
    }
}
