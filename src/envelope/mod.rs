//! The delivery envelope (`accountId`, `events[]`) and how it is parsed.
//!
//! Parsing happens in two layers. The envelope must be a JSON object with an
//! integer `accountId` and an `events` array, or the whole body is refused
//! with a [`ParseError`]. Inside a valid envelope each event is parsed on its
//! own: a malformed event becomes an [`EventError`] that keeps its raw JSON,
//! and its neighbours are unaffected.

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;

mod position;
mod shape;
mod wording;

use crate::error::{EventError, ParseError};
use crate::event::{Event, EventData, FastEvent};
use crate::{AccountId, EventFamily, EventId, EventName, Timestamp};
use position::Cursor;
pub(crate) use shape::{account_of_envelope, account_within};
use wording::{INVALID_DATA, duplicate_field, kind_of, message_of, syntax_error};

/// A delivery from ALM: the account and its events.
///
/// ```
/// use alm_webhooks::{AccountId, Envelope, EventName};
/// let body = br#"{
///   "accountId": 1234,
///   "events": [
///     {"eventId": "a", "eventName": "LEARNING_OBJECT_DRAFT", "timestamp": 1725519188,
///      "data": {"loId": "course:1", "loType": "course"}},
///     {"eventId": "b", "eventName": "COURSE_ENROLLMENT", "timestamp": 1725519188,
///      "data": {"userId": "not a number"}}
///   ]
/// }"#;
/// let envelope = Envelope::from_slice(body).unwrap();
/// assert_eq!(envelope.account_id, AccountId(1234));
/// let good = envelope.events[0].as_ref().unwrap();
/// assert_eq!(good.event_name, EventName::LearningObjectDraft);
/// let bad = envelope.events[1].as_ref().unwrap_err();
/// assert_eq!(bad.event_id.as_ref().unwrap().as_str(), "b");
/// assert_eq!(bad.path(), "events[1].data.userId");
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Envelope {
    /// The account that sent the delivery (`accountId`).
    pub account_id: AccountId,
    /// Each event in delivery order, parsed on its own.
    pub events: Vec<Result<Event, Box<EventError>>>,
}

/// The whole delivery in one pass: right for every delivery without a bad
/// event, which is nearly all of them.
#[derive(Deserialize)]
struct TypedEnvelope {
    #[serde(rename = "accountId")]
    account_id: AccountId,
    events: Vec<FastEvent>,
}

/// The envelope with each event kept raw, so events can be parsed one by one.
#[derive(Deserialize)]
struct FastEnvelope<'a> {
    #[serde(rename = "accountId")]
    account_id: AccountId,
    #[serde(borrow)]
    events: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
struct LooseEnvelope<'a> {
    #[serde(rename = "accountId", borrow, default)]
    account_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    events: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct LooseEvent<'a> {
    #[serde(rename = "eventId", borrow, default)]
    event_id: Option<&'a RawValue>,
    #[serde(rename = "eventName", borrow, default)]
    event_name: Option<&'a RawValue>,
    #[serde(borrow, default)]
    timestamp: Option<&'a RawValue>,
    #[serde(rename = "eventInfo", borrow, default)]
    event_info: Option<&'a RawValue>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
}

impl Envelope {
    /// Parses a delivery body.
    ///
    /// # Errors
    ///
    /// A [`ParseError`] when the body is not an envelope: invalid JSON (with
    /// line and column), nesting deeper than 128, not an object, or a missing
    /// or mistyped `accountId` or `events`. Problems inside an event are not
    /// errors here; they are reported in [`Envelope::events`].
    ///
    /// ```
    /// use alm_webhooks::{Envelope, EventData};
    ///
    /// let body = br#"{"accountId":1234,"events":[
    ///   {"eventId":"e1","eventName":"COURSE_ENROLLMENT","timestamp":1725524713,"data":{"userId":7,
    ///    "loId":"course:1","loInstanceId":"course:1_1","loType":"course","dateEnrolled":1725524713}},
    ///   {"eventId":"e2","eventName":"COURSE_ENROLLMENT","timestamp":"not a time"}]}"#;
    /// let envelope = Envelope::from_slice(body).unwrap();
    /// assert_eq!(envelope.account_id.get(), 1234);
    /// // A malformed event costs only itself: the good one parsed.
    /// let first = envelope.events[0].as_ref().unwrap();
    /// assert!(matches!(&first.data, EventData::Enrollment(e) if e.user_id.to_string() == "7"));
    /// let second = envelope.events[1].as_ref().unwrap_err();
    /// assert_eq!(second.index, 1);
    /// // A body that is not an envelope is an error naming the problem.
    /// let err = Envelope::from_slice(br#"{"accountId":"x","events":[]}"#).unwrap_err();
    /// assert!(err.to_string().contains("accountId"), "{err}");
    /// ```
    pub fn from_slice(body: &[u8]) -> Result<Self, ParseError> {
        // Checking UTF-8 once for the whole body (fast on ASCII) is much
        // cheaper than serde_json checking every string on its own.
        let typed = match std::str::from_utf8(body) {
            Ok(text) => serde_json::from_str::<TypedEnvelope>(text),
            Err(_) => serde_json::from_slice::<TypedEnvelope>(body),
        };
        if let Ok(typed) = typed {
            let account_id = typed.account_id;
            return Ok(Self {
                account_id,
                events: typed
                    .events
                    .into_iter()
                    .map(|FastEvent(mut event)| {
                        event.account_id = account_id;
                        Ok(event)
                    })
                    .collect(),
            });
        }
        let fast: FastEnvelope<'_> = match serde_json::from_slice(body) {
            Ok(fast) => fast,
            Err(err) => return Err(diagnose_envelope(body, &err)),
        };
        let mut cursor = Cursor::new(body);
        let events = fast
            .events
            .iter()
            .enumerate()
            .map(|(index, raw)| parse_event(fast.account_id, index, raw, &mut cursor))
            .collect();
        Ok(Self {
            account_id: fast.account_id,
            events,
        })
    }

    /// Parses a delivery body held in a string. See [`Envelope::from_slice`].
    ///
    /// # Errors
    ///
    /// As [`Envelope::from_slice`].
    ///
    /// ```
    /// let envelope = alm_webhooks::Envelope::from_str(r#"{"accountId":1,"events":[]}"#).unwrap();
    /// assert!(envelope.events.is_empty());
    /// ```
    #[allow(clippy::should_implement_trait)]
    pub fn from_str(body: &str) -> Result<Self, ParseError> {
        Self::from_slice(body.as_bytes())
    }

    /// The events that parsed, in order.
    ///
    /// ```
    /// use alm_webhooks::Envelope;
    /// let body = r#"{"accountId":1,"events":[{"eventId":"a","eventName":"X"},{"eventId":7}]}"#;
    /// let envelope = Envelope::from_str(body).unwrap();
    /// let ids: Vec<_> = envelope.parsed().map(|e| e.event_id.to_string()).collect();
    /// assert_eq!(ids, ["a"]);
    /// ```
    pub fn parsed(&self) -> impl Iterator<Item = &Event> {
        self.events.iter().filter_map(|e| e.as_ref().ok())
    }

    /// The events that did not parse, in order.
    ///
    /// ```
    /// use alm_webhooks::Envelope;
    /// let body = r#"{"accountId":1,"events":[{"eventId":"a","eventName":"X"},{"eventId":7}]}"#;
    /// let envelope = Envelope::from_str(body).unwrap();
    /// let errors: Vec<_> = envelope.errors().map(|e| e.index).collect();
    /// assert_eq!(errors, [1]);
    /// ```
    pub fn errors(&self) -> impl Iterator<Item = &EventError> {
        self.events
            .iter()
            .filter_map(|e| e.as_ref().err().map(|e| &**e))
    }
}

impl std::str::FromStr for Envelope {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_slice(s.as_bytes())
    }
}

/// Serializes back to ALM's JSON shape. Events that did not parse are written
/// as the raw JSON they arrived as, so nothing is lost.
impl Serialize for Envelope {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Events<'a>(&'a [Result<Event, Box<EventError>>]);
        impl Serialize for Events<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_seq(self.0.iter().map(|e| match e {
                    Ok(event) => EventOrRaw::Event(event),
                    Err(err) => EventOrRaw::Raw(&err.raw),
                }))
            }
        }
        #[derive(Serialize)]
        #[serde(untagged)]
        enum EventOrRaw<'a> {
            Event(&'a Event),
            Raw(&'a RawValue),
        }
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("accountId", &self.account_id)?;
        map.serialize_entry("events", &Events(&self.events))?;
        map.end()
    }
}

fn diagnose_envelope(body: &[u8], err: &serde_json::Error) -> ParseError {
    if body.iter().all(u8::is_ascii_whitespace) {
        return ParseError::Empty;
    }
    if !err.is_data() {
        return syntax_error(body, err);
    }
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return ParseError::NotAnObject;
    }
    let loose: LooseEnvelope<'_> = match serde_json::from_slice(body) {
        Ok(loose) => loose,
        Err(e) if !e.is_data() => return syntax_error(body, &e),
        Err(e) => {
            let message = message_of(&e);
            let field = if message.contains("`accountId`") {
                "accountId"
            } else {
                "events"
            };
            return ParseError::InvalidField { field, message };
        }
    };
    let Some(account_id) = loose.account_id else {
        return ParseError::MissingField { field: "accountId" };
    };
    if let Err(e) = serde_json::from_str::<AccountId>(account_id.get()) {
        return ParseError::InvalidField {
            field: "accountId",
            message: format!("{}; expected a non-negative integer", message_of(&e)),
        };
    }
    let Some(events) = loose.events else {
        return ParseError::MissingField { field: "events" };
    };
    if !events.get().starts_with('[') {
        return ParseError::InvalidField {
            field: "events",
            message: format!("expected an array, found {}", kind_of(events)),
        };
    }
    ParseError::InvalidField {
        field: "events",
        message: message_of(err),
    }
}

fn parse_event(
    account_id: AccountId,
    index: usize,
    raw: &RawValue,
    cursor: &mut Cursor<'_>,
) -> Result<Event, Box<EventError>> {
    serde_json::from_str::<FastEvent>(raw.get())
        .map(|FastEvent(mut event)| {
            event.account_id = account_id;
            event
        })
        .map_err(|fast| Box::new(diagnose_event(index, raw, cursor, &fast)))
}

/// Finds what is wrong with an event the fast path refused. Runs only for
/// bad events, so it may parse field by field.
fn diagnose_event(
    index: usize,
    raw: &RawValue,
    cursor: &mut Cursor<'_>,
    fast: &serde_json::Error,
) -> EventError {
    let base = cursor.locate(raw.get());
    let mut error = EventError {
        index,
        event_id: None,
        event_name: None,
        field: String::new(),
        message: String::new(),
        line: base.line,
        column: base.column,
        raw: raw.to_owned(),
    };
    let loose: LooseEvent<'_> = match serde_json::from_str(raw.get()) {
        Ok(loose) => loose,
        Err(e) => {
            error.message = if raw.get().starts_with('{') {
                message_of(&e)
            } else {
                format!("expected an event object, found {}", kind_of(raw))
            };
            error.set_position(base, raw.get(), &e);
            return error;
        }
    };
    error.event_id = loose
        .event_id
        .and_then(|r| serde_json::from_str(r.get()).ok());
    error.event_name = loose
        .event_name
        .and_then(|r| serde_json::from_str(r.get()).ok());
    let fields = [
        ("eventId", loose.event_id, check::<EventId> as Checker),
        ("eventName", loose.event_name, check::<EventName>),
        ("timestamp", loose.timestamp, check::<Timestamp>),
        ("eventInfo", loose.event_info, check::<Option<String>>),
    ];
    // An event this crate does not know needs only `eventId` and
    // `eventName`.
    let unknown = error
        .event_name
        .as_ref()
        .is_some_and(|n| n.family() == EventFamily::Unknown);
    for (name, value, checker) in fields {
        let Some(value) = value else {
            if name == "eventInfo" || (name == "timestamp" && unknown) {
                continue;
            }
            error.field = name.to_owned();
            error.message = format!("missing field `{name}`");
            return error;
        };
        if let Err(e) = checker(value) {
            error.field = name.to_owned();
            error.message = message_of(&e);
            let at = cursor.locate_within(base, raw.get(), value.get());
            error.set_position(at, value.get(), &e);
            return error;
        }
    }
    let Some(name) = error.event_name.clone() else {
        error.message = "invalid event".to_owned();
        return error;
    };
    let Some(data) = loose.data else {
        error.field = "data".to_owned();
        error.message = "missing field `data`".to_owned();
        return error;
    };
    let (path, e) = data_error(&name, data);
    if path.is_empty() && e.to_string() == INVALID_DATA {
        // `data` is fine on its own: the fault is elsewhere in the event,
        // such as a field this crate does not know, sent twice.
        error.message = message_of(fast);
        error.field = duplicate_field(&error.message).unwrap_or_default();
        error.set_position(base, raw.get(), fast);
        return error;
    }
    error.field = if path.is_empty() || path == "." {
        "data".to_owned()
    } else {
        format!("data.{path}")
    };
    error.message = message_of(&e);
    let at = cursor.locate_within(base, raw.get(), data.get());
    error.set_position(at, data.get(), &e);
    error
}

type Checker = fn(&RawValue) -> Result<(), serde_json::Error>;

fn check<T: for<'de> Deserialize<'de>>(raw: &RawValue) -> Result<(), serde_json::Error> {
    serde_json::from_str::<T>(raw.get()).map(drop)
}

/// Reparses a refused `data` with path tracking, to name the field at fault.
fn data_error(name: &EventName, data: &RawValue) -> (String, serde_json::Error) {
    fn with_path<T: for<'de> Deserialize<'de>>(data: &RawValue) -> (String, serde_json::Error) {
        let mut de = serde_json::Deserializer::from_str(data.get());
        match serde_path_to_error::deserialize::<_, T>(&mut de) {
            Ok(_) => (String::new(), serde::de::Error::custom(INVALID_DATA)),
            Err(e) => (e.path().to_string(), e.into_inner()),
        }
    }
    use crate::event::*;
    match name.family() {
        EventFamily::Enrollment | EventFamily::CompletionRollback => with_path::<Enrollment>(data),
        EventFamily::Unenrollment => with_path::<Unenrollment>(data),
        EventFamily::Completion => with_path::<Completion>(data),
        EventFamily::LearnerProgress => with_path::<LearnerProgress>(data),
        EventFamily::LearningObject => with_path::<LearningObjectChange>(data),
        EventFamily::LearningObjectInstance => with_path::<InstanceChange>(data),
        EventFamily::InstanceStats => with_path::<InstanceStats>(data),
        EventFamily::Unknown => match Event::parse_data(name, Some(data)) {
            Err(e) => (String::new(), e),
            Ok(_) => (String::new(), serde::de::Error::custom(INVALID_DATA)),
        },
    }
}

impl EventData {
    /// Whether the data is of an event this crate does not know.
    ///
    /// ```
    /// use alm_webhooks::Envelope;
    /// let body = br#"{"accountId":1,"events":[{"eventId":"e1","eventName":"SOMETHING_NEW","data":{"x":1}}]}"#;
    /// let envelope = Envelope::from_slice(body).unwrap();
    /// let event = envelope.events[0].as_ref().unwrap();
    /// assert!(event.data.is_unknown());
    /// ```
    pub fn is_unknown(&self) -> bool {
        matches!(self, Self::Unknown(_))
    }
}
