//! Errors from parsing a delivery.

use std::fmt;

use http::StatusCode;
use serde_json::value::RawValue;

use crate::{EventId, EventName};

/// Why a body is not a valid ALM envelope.
///
/// The whole delivery is refused with `400 Bad Request`
/// ([`ParseError::status`]); the message is safe to return to the sender (it
/// names positions and fields, and quotes nothing secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The body is empty or only white space.
    #[error("the body is empty")]
    Empty,
    /// The body is not JSON, or nests deeper than serde_json's limit (128).
    #[error("invalid JSON at line {line} column {column}: {message}")]
    Syntax {
        /// 1-based line of the fault.
        line: usize,
        /// 1-based column of the fault (in bytes).
        column: usize,
        /// What is wrong there.
        message: String,
    },
    /// The body is JSON but not an object.
    #[error("the body is not a JSON object")]
    NotAnObject,
    /// A required field of the envelope is missing.
    #[error("missing field `{field}`")]
    MissingField {
        /// The field's name.
        field: &'static str,
    },
    /// A field of the envelope has the wrong type or value.
    #[error("field `{field}`: {message}")]
    InvalidField {
        /// The field's name.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
}

impl ParseError {
    /// The HTTP status this error means: always `400 Bad Request`.
    pub fn status(&self) -> StatusCode {
        StatusCode::BAD_REQUEST
    }

    /// The position of a syntax error, as (line, column), both 1-based.
    pub fn position(&self) -> Option<(usize, usize)> {
        match self {
            Self::Syntax { line, column, .. } => Some((*line, *column)),
            _ => None,
        }
    }
}

/// An event inside a valid envelope that could not be parsed.
///
/// It is reported, not fatal: the other events of the delivery are parsed on
/// their own. The event's raw JSON is kept, so nothing is lost.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EventError {
    /// The event's position in `events` (0-based).
    pub index: usize,
    /// The event's `eventId`, if it had a valid one.
    pub event_id: Option<EventId>,
    /// The event's `eventName`, if it had a valid one.
    pub event_name: Option<EventName>,
    /// The path of the offending field inside the event, such as
    /// `data.userId` (empty when the event as a whole is wrong).
    pub field: String,
    /// What is wrong.
    pub message: String,
    /// 1-based line of the fault in the body (0 when the engine found the
    /// fault after parsing: an event whose name
    /// [`EngineBuilder::event_family`](crate::engine::EngineBuilder::event_family)
    /// puts in a family, without the fields that family needs).
    pub line: usize,
    /// 1-based column of the fault in the body, in bytes (0 as `line`).
    pub column: usize,
    /// The event's JSON, exactly as received.
    pub raw: Box<RawValue>,
}

impl EventError {
    /// The field path from the envelope's root, such as
    /// `events[3].data.userId`.
    pub fn path(&self) -> String {
        if self.field.is_empty() {
            format!("events[{}]", self.index)
        } else {
            format!("events[{}].{}", self.index, self.field)
        }
    }
}

impl EventError {
    /// An error the engine finds in an event that parsed: an event whose
    /// name [`EngineBuilder::event_family`](crate::engine::EngineBuilder::event_family)
    /// puts in a family, without the fields that family needs. Its position
    /// is unknown (0, 0); its raw JSON is the event as parsed.
    pub(crate) fn after_parsing(
        index: usize,
        event: &crate::Event,
        field: &str,
        message: String,
    ) -> Self {
        let raw = serde_json::value::to_raw_value(event)
            .unwrap_or_else(|_| RawValue::from_string("null".to_owned()).expect("`null` is JSON"));
        Self {
            index,
            event_id: Some(event.event_id.clone()),
            event_name: Some(event.event_name.clone()),
            field: field.to_owned(),
            message,
            line: 0,
            column: 0,
            raw,
        }
    }
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path())?;
        if let Some(id) = &self.event_id {
            write!(f, " (eventId {:?})", id.as_str())?;
        }
        write!(f, ": {}", self.message)?;
        if self.line > 0 {
            write!(f, " at line {} column {}", self.line, self.column)?;
        }
        Ok(())
    }
}

impl std::error::Error for EventError {}

impl Eq for EventError {}

impl PartialEq for EventError {
    fn eq(&self, other: &Self) -> bool {
        self.index == other.index
            && self.event_id == other.event_id
            && self.event_name == other.event_name
            && self.field == other.field
            && self.message == other.message
            && self.line == other.line
            && self.column == other.column
            && self.raw.get() == other.raw.get()
    }
}
