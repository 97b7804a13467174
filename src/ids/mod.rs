//! Identifiers carried by ALM events, as newtypes.
//!
//! Every identifier parses from and displays as the exact string ALM sent, so
//! a value can be stored, compared and forwarded without losing anything.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

mod lo_type;

pub use lo_type::{LoKind, LoType, ProgramSpelling};

/// Why a string is not a valid identifier of the named kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} {reason}")]
pub struct IdError {
    kind: &'static str,
    reason: &'static str,
}

impl IdError {
    pub(crate) const fn new(kind: &'static str, reason: &'static str) -> Self {
        Self { kind, reason }
    }
}

macro_rules! numeric_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl $name {
            /// The numeric value.
            pub const fn get(self) -> u64 {
                self.0
            }
        }

        impl From<u64> for $name {
            fn from(value: u64) -> Self {
                Self(value)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0')) {
                    return Err(IdError::new($what, "must be a non-negative integer without leading zeros"));
                }
                s.parse().map(Self).map_err(|_| IdError::new($what, "is too large"))
            }
        }
    };
}

numeric_id!(
    /// The ALM account that sent a delivery (`accountId`).
    ///
    /// ```
    /// use alm_webhooks::AccountId;
    /// let id: AccountId = "1234".parse().unwrap();
    /// assert_eq!(id, AccountId(1234));
    /// assert_eq!(id.to_string(), "1234");
    /// ```
    AccountId,
    "accountId"
);

numeric_id!(
    /// A learner (`userId`).
    ///
    /// ```
    /// use alm_webhooks::UserId;
    /// assert_eq!("12345678".parse::<UserId>().unwrap().get(), 12_345_678);
    /// ```
    UserId,
    "userId"
);

/// An event's identifier (`eventId`): an opaque string.
///
/// ALM's ids look like UUIDs but often are not valid ones
/// (`01234567-0458-4450-b5dd-6bc1edr4560`), and events that report results of
/// API calls may carry a caller-chosen string, so no format is imposed beyond
/// being non-empty. A clone shares the text (a reference count, no copy),
/// as do clones of [`LoId`] and [`LoInstanceId`]: the engine keys an event
/// and its record on them without allocating.
///
/// ```
/// use alm_webhooks::EventId;
/// let id: EventId = "01234567-0458-4450-b5dd-6bc1edr4560".parse().unwrap();
/// assert_eq!(id.as_str(), "01234567-0458-4450-b5dd-6bc1edr4560");
/// assert!("".parse::<EventId>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId(Arc<str>);

impl EventId {
    /// The id as ALM sent it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for EventId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(IdError::new("eventId", "must not be empty"));
        }
        Ok(Self(s.into()))
    }
}

/// A learning object (`loId`): `"<loType>:<number>"`, e.g. `course:1234567`.
///
/// ```
/// use alm_webhooks::{LoId, LoType};
/// let id: LoId = "learning_program:1234567".parse().unwrap();
/// assert!(id.lo_type().is_learning_program());
/// assert_eq!(id.number(), "1234567");
/// assert_eq!(id.to_string(), "learning_program:1234567");
/// assert!("1234567".parse::<LoId>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LoId(Arc<str>);

impl LoId {
    /// The id as ALM sent it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The type before the colon.
    pub fn lo_type(&self) -> LoType {
        let (ty, _) = split_type(&self.0).unwrap_or(("", ""));
        ty.parse().unwrap_or(LoType::Unknown(ty.into()))
    }

    /// The part after the colon.
    pub fn number(&self) -> &str {
        split_type(&self.0).map_or("", |(_, rest)| rest)
    }

    /// The id in the one spelling under which the engine keys records:
    /// `learning_program:…` becomes `learningProgram:…` (ALM sends both for
    /// one learning path); every other id is unchanged. The event keeps the
    /// id as sent.
    ///
    /// ```
    /// use alm_webhooks::LoId;
    /// let a: LoId = "learning_program:12345".parse().unwrap();
    /// let b: LoId = "learningProgram:12345".parse().unwrap();
    /// assert_eq!(a.canonical(), b);
    /// assert_eq!(a.as_str(), "learning_program:12345");
    /// ```
    pub fn canonical(&self) -> Self {
        Self(canonical_spelling(&self.0))
    }
}

/// `learning_program:rest` → `learningProgram:rest`; anything else as is
/// (the same text, shared: no copy).
fn canonical_spelling(id: &Arc<str>) -> Arc<str> {
    match id.strip_prefix("learning_program:") {
        Some(rest) => format!("learningProgram:{rest}").into(),
        None => Arc::clone(id),
    }
}

fn split_type(s: &str) -> Option<(&str, &str)> {
    s.split_once(':')
        .filter(|(ty, rest)| !ty.is_empty() && !rest.is_empty())
}

impl FromStr for LoId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        split_type(s).ok_or(IdError::new("loId", "must look like `<loType>:<number>`"))?;
        Ok(Self(s.into()))
    }
}

/// An instance of a learning object (`loInstanceId`):
/// `"<loType>:<loNumber>_<instanceNumber>"`, e.g. `course:1234567_12345674`.
///
/// ```
/// use alm_webhooks::LoInstanceId;
/// let id: LoInstanceId = "learning_program:1234567_109139".parse().unwrap();
/// assert_eq!(id.lo_id().as_str(), "learning_program:1234567");
/// assert_eq!(id.instance_number(), "109139");
/// assert_eq!(id.to_string(), "learning_program:1234567_109139");
/// assert!("course:1234567".parse::<LoInstanceId>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LoInstanceId(Arc<str>);

impl LoInstanceId {
    /// The id as ALM sent it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn split(&self) -> (&str, &str) {
        self.0.rsplit_once('_').unwrap_or((&self.0, ""))
    }

    /// The learning object this is an instance of (the part before the last `_`).
    ///
    /// This is derived from the string; ALM's samples show that it can differ
    /// from the event's own `loId` field.
    pub fn lo_id(&self) -> LoId {
        LoId(self.split().0.into())
    }

    /// The instance's own number (after the last `_`).
    pub fn instance_number(&self) -> &str {
        self.split().1
    }

    /// The id in the one spelling under which the engine keys records, as
    /// [`LoId::canonical`]: `learning_program:12345_678` becomes
    /// `learningProgram:12345_678`.
    ///
    /// ```
    /// use alm_webhooks::LoInstanceId;
    /// let a: LoInstanceId = "learning_program:12345_678".parse().unwrap();
    /// assert_eq!(a.canonical().as_str(), "learningProgram:12345_678");
    /// assert_eq!(a.as_str(), "learning_program:12345_678");
    /// ```
    pub fn canonical(&self) -> Self {
        Self(canonical_spelling(&self.0))
    }
}

impl FromStr for LoInstanceId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = split_type(s)
            .and_then(|(_, rest)| rest.rsplit_once('_'))
            .is_some_and(|(lo, instance)| !lo.is_empty() && !instance.is_empty());
        if !ok {
            return Err(IdError::new(
                "loInstanceId",
                "must look like `<loType>:<loNumber>_<instanceNumber>`",
            ));
        }
        Ok(Self(s.into()))
    }
}

macro_rules! string_id_impls {
    ($($name:ident),*) => {$(
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Visitor;
                impl serde::de::Visitor<'_> for Visitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str(concat!("a string (", stringify!($name), ")"))
                    }
                    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<$name, E> {
                        s.parse().map_err(E::custom)
                    }
                }
                deserializer.deserialize_str(Visitor)
            }
        }
    )*};
}

string_id_impls!(EventId, LoType, LoId, LoInstanceId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_ids_reject_signs_and_leading_zeros() {
        assert!("-1".parse::<UserId>().is_err());
        assert!("+1".parse::<UserId>().is_err());
        assert!("01".parse::<UserId>().is_err());
        assert!("18446744073709551616".parse::<UserId>().is_err());
        assert_eq!("0".parse::<UserId>().unwrap(), UserId(0));
    }

    #[test]
    fn lo_instance_id_splits_at_last_underscore() {
        let id: LoInstanceId = "course:1234567_12345674".parse().unwrap();
        assert_eq!(id.lo_id().as_str(), "course:1234567");
        assert_eq!(id.lo_id().lo_type(), LoType::Course);
        assert_eq!(id.instance_number(), "12345674");
        assert!("course:_1".parse::<LoInstanceId>().is_err());
        assert!("course:1_".parse::<LoInstanceId>().is_err());
        assert!(":1_2".parse::<LoInstanceId>().is_err());
    }

    #[test]
    fn unknown_lo_type_round_trips() {
        let t: LoType = "jobAid".parse().unwrap();
        assert_eq!(t.as_str(), "jobAid");
        assert_ne!(t, LoType::Course);
        assert_eq!(t.kind(), LoKind::Other);
    }

    #[test]
    fn both_program_spellings_are_one_type_and_round_trip() {
        for (text, spelling) in [
            ("learningProgram", ProgramSpelling::CamelCase),
            ("learning_program", ProgramSpelling::Underscore),
        ] {
            let json = format!("\"{text}\"");
            let t: LoType = serde_json::from_str(&json).unwrap();
            assert!(
                matches!(t, LoType::LearningProgram(s) if s == spelling),
                "{text}"
            );
            assert_eq!(t.kind(), LoKind::LearningProgram);
            assert_eq!(serde_json::to_string(&t).unwrap(), json);
            assert_eq!(t, LoType::LearningProgram(ProgramSpelling::default()));
        }
    }
}
