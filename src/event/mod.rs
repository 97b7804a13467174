//! Typed events, one module per event family.
//!
//! An [`Event`] carries the header every ALM event has (`eventId`,
//! `eventName`, `timestamp`, `eventInfo`) and its [`EventData`], chosen by
//! `eventName` (never by position or by the shape of `data`).

mod access;
mod completion;
mod enrollment;
mod fast;
mod fields;
mod instance;
mod instance_stats;
mod learning_object;
mod progress;
mod unenrollment;

use std::fmt;

use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

pub use access::Subject;
pub use completion::Completion;
pub use enrollment::{CompletionRollback, Enrollment};
pub(crate) use fast::FastEvent;
pub use instance::InstanceChange;
pub use instance_stats::InstanceStats;
pub use learning_object::LearningObjectChange;
pub use progress::{LearnerProgress, Percent};
pub use unenrollment::Unenrollment;

use crate::{AccountId, EventFamily, EventId, EventName, Timestamp};

/// One event of a delivery, with the account that sent it.
///
/// A handler gets it by value. The helpers ([`Event::user_id`],
/// [`Event::lo_id`], [`Event::lo_instance_id`], [`Event::lo_kind`],
/// [`Event::is_batch`], [`Event::subject`]) read what most handlers want
/// without a `match` on [`EventData`]; match on [`Event::data`] for the rest.
///
/// ```
/// use alm_webhooks::{AccountId, Envelope, EventData, LoKind};
/// let body = br#"{"accountId":1234,"events":[{"eventId":"e1","eventName":"COURSE_COMPLETED",
///   "timestamp":1725524713,"data":{"userId":7,"loId":"course:1","loInstanceId":"course:1_2",
///   "loType":"course","dateCompleted":1725524713,"hasPassed":true}}]}"#;
/// let envelope = Envelope::from_slice(body).unwrap();
/// let event = envelope.parsed().next().unwrap();
/// assert_eq!(event.account_id, AccountId(1234));
/// assert_eq!(event.user_id().map(|u| u.get()), Some(7));
/// assert_eq!(event.lo_kind(), Some(LoKind::Course));
/// assert!(!event.is_batch());
///
/// match &event.data {
///     EventData::Enrollment(e) => println!("{} enrolled in {}", e.user_id, e.lo_id),
///     EventData::Completion(c) => {
///         assert_eq!(c.has_passed, Some(true));
///         println!("{} completed {}", c.user_id, c.lo_id);
///     }
///     EventData::LearnerProgress(p) => println!("{} at {:?}", p.user_id, p.progress_percent),
///     EventData::Unknown(raw) => println!("an event this crate does not know: {raw:?}"),
///     other => println!("{:?}", other),
/// }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Event {
    /// The account that sent the delivery (the envelope's `accountId`). Not
    /// part of the event's own JSON: serializing an event writes ALM's event
    /// object, and the envelope writes `accountId` once.
    pub account_id: AccountId,
    /// The event's id (`eventId`), the key for deduplication.
    pub event_id: EventId,
    /// The event's name (`eventName`).
    pub event_name: EventName,
    /// When the event happened (`timestamp`). Always present for the events
    /// this crate knows (they are refused without it); an event with an
    /// unknown name needs only `eventId` and `eventName`, and results of
    /// asynchronous API calls (`RESPONSE:…`) come without a time.
    pub timestamp: Option<Timestamp>,
    /// ALM's trace or batch identifier (`eventInfo`). Not unique per event,
    /// and absent from some newer events.
    pub event_info: Option<String>,
    /// The event's data, typed by its family.
    pub data: EventData,
    /// The event's fields this crate does not know (beside `eventId`,
    /// `eventName`, `timestamp`, `eventInfo` and `data`), kept as sent so
    /// that serializing the event gives back what ALM sent.
    ///
    /// ```
    /// use alm_webhooks::Envelope;
    ///
    /// let body = br#"{"accountId":1,"events":[{"eventId":"e1","eventName":"NEW_THING",
    ///   "region":"eu-1"}]}"#;
    /// let envelope = Envelope::from_slice(body).unwrap();
    /// let event = envelope.events[0].as_ref().unwrap();
    /// assert_eq!(event.other["region"], "eu-1");
    /// assert_eq!(serde_json::to_value(event).unwrap()["region"], "eu-1");
    /// ```
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// The `data` of an event, one variant per [`EventFamily`].
///
/// ```
/// use alm_webhooks::{Envelope, EventData};
///
/// let body = br#"{"accountId":1234,"events":[{"eventId":"e1","eventName":"LEARNER_PROGRESS",
///   "timestamp":1725524713,"data":{"userId":7,"loId":"course:1","loInstanceId":"course:1_2",
///   "loType":"course","progressPercent":40}}]}"#;
/// let envelope = Envelope::from_slice(body).unwrap();
/// let event = envelope.events[0].as_ref().unwrap();
/// let line = match &event.data {
///     EventData::Enrollment(e) => format!("{} enrolled in {}", e.user_id, e.lo_instance_id),
///     EventData::LearnerProgress(p) => format!(
///         "{} at {}%",
///         p.user_id,
///         p.progress_percent.map_or(0.0, |p| p.get())
///     ),
///     EventData::Completion(c) => format!("{} completed {}", c.user_id, c.lo_instance_id),
///     // Newer and unknown events: let them through.
///     _ => format!("{} not handled", event.event_name),
/// };
/// assert_eq!(line, "7 at 40%");
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum EventData {
    /// [`EventFamily::Enrollment`].
    Enrollment(Enrollment),
    /// [`EventFamily::Unenrollment`].
    Unenrollment(Unenrollment),
    /// [`EventFamily::Completion`].
    Completion(Completion),
    /// [`EventFamily::CompletionRollback`].
    CompletionRollback(CompletionRollback),
    /// [`EventFamily::LearnerProgress`].
    LearnerProgress(LearnerProgress),
    /// [`EventFamily::LearningObject`].
    LearningObject(LearningObjectChange),
    /// [`EventFamily::LearningObjectInstance`].
    LearningObjectInstance(InstanceChange),
    /// [`EventFamily::InstanceStats`].
    InstanceStats(InstanceStats),
    /// An event this crate does not know: its `data`, verbatim, in whatever
    /// shape it came (`None` when the event had no `data`).
    Unknown(Option<RawData>),
}

/// JSON kept exactly as it was received, such as the `data` of an unknown
/// event (any shape: `{"status":"SUCCESS","request":{…}}`, an array, a string).
///
/// ```
/// use alm_webhooks::{Envelope, EventData};
/// let body = br#"{"accountId":1,"events":[{"eventId":"job-42","eventName":"ASYNC_JOB",
///   "timestamp":"2024-11-08T03:49:52.000Z","data":{"status":"SUCCESS","request":{"id":7}}}]}"#;
/// let envelope = Envelope::from_slice(body).unwrap();
/// let EventData::Unknown(Some(data)) = &envelope.events[0].as_ref().unwrap().data else { panic!() };
/// assert_eq!(data.get(), r#"{"status":"SUCCESS","request":{"id":7}}"#);
/// assert_eq!(data.to_value().unwrap()["status"], "SUCCESS");
/// ```
#[derive(Debug, Clone)]
pub struct RawData(Box<RawValue>);

impl RawData {
    /// The JSON text, exactly as received.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// The JSON as a [`serde_json::Value`].
    ///
    /// # Errors
    ///
    /// Only if the value nests deeper than serde_json's limit.
    pub fn to_value(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_str(self.0.get())
    }

    /// Deserializes the JSON into a type of the caller's choosing.
    ///
    /// # Errors
    ///
    /// When the JSON does not fit `T`.
    pub fn parse<'a, T: Deserialize<'a>>(&'a self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.0.get())
    }
}

impl PartialEq for RawData {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl Serialize for RawData {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl Event {
    /// Parses `data` for an event of the given name: the family decides the
    /// type. Errors carry serde's message (no position).
    pub(crate) fn parse_data(
        name: &EventName,
        data: Option<&RawValue>,
    ) -> Result<EventData, serde_json::Error> {
        fn typed<'de, T: Deserialize<'de>>(
            data: Option<&'de RawValue>,
        ) -> Result<T, serde_json::Error> {
            match data {
                Some(raw) => serde_json::from_str(raw.get()),
                None => Err(serde::de::Error::custom("missing field `data`")),
            }
        }
        Ok(match name.family() {
            EventFamily::Enrollment => EventData::Enrollment(typed(data)?),
            EventFamily::Unenrollment => EventData::Unenrollment(typed(data)?),
            EventFamily::Completion => EventData::Completion(typed(data)?),
            EventFamily::CompletionRollback => EventData::CompletionRollback(typed(data)?),
            EventFamily::LearnerProgress => EventData::LearnerProgress(typed(data)?),
            EventFamily::LearningObject => EventData::LearningObject(typed(data)?),
            EventFamily::LearningObjectInstance => EventData::LearningObjectInstance(typed(data)?),
            EventFamily::InstanceStats => EventData::InstanceStats(typed(data)?),
            EventFamily::Unknown => {
                if let Some(raw) = data {
                    check_depth(raw.get())?;
                }
                EventData::Unknown(data.map(|raw| RawData(raw.to_owned())))
            }
        })
    }
}

/// The deepest nesting kept verbatim, as serde_json's own recursion limit.
pub(crate) const MAX_DEPTH: usize = 128;

/// Refuses JSON nested deeper than [`MAX_DEPTH`]. serde_json skips values it
/// keeps raw without a depth limit (safely, without recursion); this keeps a
/// user who later parses them from meeting a deeper value than serde allows.
fn check_depth(json: &str) -> Result<(), serde_json::Error> {
    let mut depth = 0usize;
    let mut bytes = json.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'"' => {
                while let Some(c) = bytes.next() {
                    match c {
                        b'\\' => {
                            bytes.next();
                        }
                        b'"' => break,
                        _ => {}
                    }
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(serde::de::Error::custom("nesting deeper than 128"));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

impl Serialize for EventData {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Enrollment(d) | Self::CompletionRollback(d) => d.serialize(serializer),
            Self::Unenrollment(d) => d.serialize(serializer),
            Self::Completion(d) => d.serialize(serializer),
            Self::LearnerProgress(d) => d.serialize(serializer),
            Self::LearningObject(d) => d.serialize(serializer),
            Self::LearningObjectInstance(d) => d.serialize(serializer),
            Self::InstanceStats(d) => d.serialize(serializer),
            Self::Unknown(Some(raw)) => raw.0.serialize(serializer),
            Self::Unknown(None) => serializer.serialize_none(),
        }
    }
}

/// Serializes back to ALM's JSON shape, so an event can be stored or
/// forwarded; parsing the output gives an equal event.
impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let has_data = !matches!(self.data, EventData::Unknown(None));
        let len = 2
            + usize::from(self.timestamp.is_some())
            + usize::from(self.event_info.is_some())
            + usize::from(has_data)
            + self.other.len();
        let mut map = serializer.serialize_map(Some(len))?;
        map.serialize_entry("eventId", &self.event_id)?;
        map.serialize_entry("eventName", &self.event_name)?;
        if let Some(timestamp) = &self.timestamp {
            map.serialize_entry("timestamp", timestamp)?;
        }
        if let Some(info) = &self.event_info {
            map.serialize_entry("eventInfo", info)?;
        }
        if has_data {
            map.serialize_entry("data", &self.data)?;
        }
        for (name, value) in &self.other {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// How a learner was enrolled (`enrollmentSource`). Unknown values are kept.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EnrollmentSource {
    /// `SELF_ENROLL`: the learner enrolled themselves.
    SelfEnroll,
    /// `ADMIN_ENROLL`: an admin or manager enrolled the learner.
    AdminEnroll,
    /// Any other value, kept as sent.
    Unknown(Box<str>),
}

impl EnrollmentSource {
    /// The value as it was sent.
    pub fn as_str(&self) -> &str {
        match self {
            Self::SelfEnroll => "SELF_ENROLL",
            Self::AdminEnroll => "ADMIN_ENROLL",
            Self::Unknown(s) => s,
        }
    }
}

impl From<&str> for EnrollmentSource {
    fn from(s: &str) -> Self {
        match s {
            "SELF_ENROLL" => Self::SelfEnroll,
            "ADMIN_ENROLL" => Self::AdminEnroll,
            other => Self::Unknown(other.into()),
        }
    }
}

impl fmt::Display for EnrollmentSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for EnrollmentSource {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EnrollmentSource {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SourceVisitor;
        impl serde::de::Visitor<'_> for SourceVisitor {
            type Value = EnrollmentSource;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an enrollment source string")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<EnrollmentSource, E> {
                Ok(EnrollmentSource::from(s))
            }
        }
        deserializer.deserialize_str(SourceVisitor)
    }
}
