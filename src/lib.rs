#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod envelope;
mod error;
pub mod event;
mod ids;
mod name;
mod timestamp;

#[cfg(feature = "simulator")]
#[cfg_attr(docsrs, doc(cfg(feature = "simulator")))]
pub mod simulator;

pub use envelope::Envelope;
pub use error::{EventError, ParseError};
pub use event::{Event, EventData, RawData, Subject};
pub use ids::{AccountId, EventId, IdError, LoId, LoInstanceId, LoType, UserId};
pub use name::{EventFamily, EventName};
pub use timestamp::{MILLIS_THRESHOLD, TimeError, TimeFormat, Timestamp};
