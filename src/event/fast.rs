//! Single-pass deserialization of a whole event, the fast path.
//!
//! ALM puts `eventName` before `data`, so the visitor can pick the data's
//! type as it reaches `data` and parse it in the same pass. If `data` comes
//! first it is kept raw and parsed once the name is known. Any error sends
//! the caller back to the slower path that isolates and explains bad events
//! (see `envelope.rs`), so this path only has to be right on good input and
//! refuse everything else.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::{
    Completion, Enrollment, Event, EventData, InstanceChange, InstanceStats, LearnerProgress,
    LearningObjectChange, RawData, Unenrollment, check_depth,
};
use crate::{AccountId, EventFamily, EventId, EventName, Timestamp};

/// An event parsed in one pass.
pub(crate) struct FastEvent(pub(crate) Event);

enum Field {
    EventId,
    EventName,
    Timestamp,
    EventInfo,
    Data,
    /// A field this crate does not know, kept with its name.
    Other(String),
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldVisitor;
        impl Visitor<'_> for FieldVisitor {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Field, E> {
                Ok(match v {
                    "eventId" => Field::EventId,
                    "eventName" => Field::EventName,
                    "timestamp" => Field::Timestamp,
                    "eventInfo" => Field::EventInfo,
                    "data" => Field::Data,
                    other => Field::Other(other.to_owned()),
                })
            }
        }
        deserializer.deserialize_identifier(FieldVisitor)
    }
}

/// Deserializes `data` as the type its event name calls for.
pub(crate) struct DataSeed<'a>(pub(crate) &'a EventName);

impl<'de> DeserializeSeed<'de> for DataSeed<'_> {
    type Value = EventData;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<EventData, D::Error> {
        Ok(match self.0.family() {
            EventFamily::Enrollment => EventData::Enrollment(Enrollment::deserialize(d)?),
            EventFamily::Unenrollment => EventData::Unenrollment(Unenrollment::deserialize(d)?),
            EventFamily::Completion => EventData::Completion(Completion::deserialize(d)?),
            EventFamily::CompletionRollback => {
                EventData::CompletionRollback(Enrollment::deserialize(d)?)
            }
            EventFamily::LearnerProgress => {
                EventData::LearnerProgress(LearnerProgress::deserialize(d)?)
            }
            EventFamily::LearningObject => {
                EventData::LearningObject(LearningObjectChange::deserialize(d)?)
            }
            EventFamily::LearningObjectInstance => {
                EventData::LearningObjectInstance(InstanceChange::deserialize(d)?)
            }
            EventFamily::InstanceStats => EventData::InstanceStats(InstanceStats::deserialize(d)?),
            EventFamily::Unknown => {
                let raw = Box::<RawValue>::deserialize(d)?;
                check_depth(raw.get()).map_err(de::Error::custom)?;
                EventData::Unknown(Some(RawData(raw)))
            }
        })
    }
}

impl<'de> Deserialize<'de> for FastEvent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(EventVisitor)
    }
}

struct EventVisitor;

fn once<T, E: de::Error>(slot: &Option<T>, name: &'static str) -> Result<(), E> {
    if slot.is_some() {
        return Err(E::duplicate_field(name));
    }
    Ok(())
}

impl<'de> Visitor<'de> for EventVisitor {
    type Value = FastEvent;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FastEvent, A::Error> {
        let mut event_id: Option<EventId> = None;
        let mut event_name: Option<EventName> = None;
        let mut timestamp: Option<Timestamp> = None;
        let mut event_info: Option<Option<String>> = None;
        let mut data: Option<EventData> = None;
        let mut raw_data: Option<&'de RawValue> = None;
        let mut other = serde_json::Map::new();
        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::EventId => {
                    once(&event_id, "eventId")?;
                    event_id = Some(map.next_value()?);
                }
                Field::EventName => {
                    once(&event_name, "eventName")?;
                    event_name = Some(map.next_value()?);
                }
                Field::Timestamp => {
                    once(&timestamp, "timestamp")?;
                    timestamp = Some(map.next_value()?);
                }
                Field::EventInfo => {
                    once(&event_info, "eventInfo")?;
                    event_info = Some(map.next_value()?);
                }
                Field::Data => {
                    if data.is_some() || raw_data.is_some() {
                        return Err(de::Error::duplicate_field("data"));
                    }
                    match &event_name {
                        // `null` data is "no data", as on the slow path.
                        Some(name) => data = map.next_value_seed(OptionalData(name))?,
                        None => raw_data = map.next_value::<Option<&'de RawValue>>()?,
                    }
                }
                Field::Other(name) => {
                    if other.contains_key(&name) {
                        return Err(de::Error::custom(format_args!("duplicate field `{name}`")));
                    }
                    let value = map.next_value()?;
                    other.insert(name, value);
                }
            }
        }
        let event_id = event_id.ok_or_else(|| de::Error::missing_field("eventId"))?;
        let event_name = event_name.ok_or_else(|| de::Error::missing_field("eventName"))?;
        // Only the events this crate knows need a time; an unknown one needs
        // only its id and name.
        if timestamp.is_none() && event_name.family() != EventFamily::Unknown {
            return Err(de::Error::missing_field("timestamp"));
        }
        let data = match (data, raw_data) {
            (Some(data), _) => data,
            (None, Some(raw)) => {
                Event::parse_data(&event_name, Some(raw)).map_err(de::Error::custom)?
            }
            (None, None) => Event::parse_data(&event_name, None).map_err(de::Error::custom)?,
        };
        Ok(FastEvent(Event {
            // Set from the envelope once it is known (it may come after
            // `events`).
            account_id: AccountId(0),
            event_id,
            event_name,
            timestamp,
            event_info: event_info.flatten(),
            data,
            other,
        }))
    }
}

/// `data` that may be `null`.
struct OptionalData<'a>(&'a EventName);

impl<'de> DeserializeSeed<'de> for OptionalData<'_> {
    type Value = Option<EventData>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<EventData>, D::Error> {
        struct OptVisitor<'a>(&'a EventName);
        impl<'de> Visitor<'de> for OptVisitor<'_> {
            type Value = Option<EventData>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("event data")
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                DataSeed(self.0).deserialize(d).map(Some)
            }
        }
        d.deserialize_option(OptVisitor(self.0))
    }
}
