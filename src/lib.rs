#![doc = include_str!("../README.md")]
#![doc = "\nIn this documentation, the guides linked above are the chapters of [`guides`]."]
#![cfg_attr(docsrs, feature(doc_cfg))]
// The docs link to items of every feature; a build with only some of them
// cannot resolve the links to the others. docs.rs and CI build with every
// feature, where a broken link is an error (`-D warnings`).
#![cfg_attr(
    not(all(
        feature = "axum",
        feature = "actix",
        feature = "env",
        feature = "alm-api",
        feature = "postgres",
        feature = "redis",
        feature = "sqlite",
        feature = "nats",
        feature = "rabbitmq",
        feature = "kafka",
        feature = "metrics",
        feature = "store-conformance",
        feature = "inbox-conformance",
        feature = "sink-conformance"
    )),
    allow(rustdoc::broken_intra_doc_links)
)]

#[cfg(any(feature = "axum", feature = "actix"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "axum", feature = "actix"))))]
pub mod adapters;
pub mod admin;
#[cfg(feature = "alm-api")]
#[cfg_attr(docsrs, doc(cfg(feature = "alm-api")))]
pub mod alm_api;
pub mod auth;
#[cfg(feature = "tower")]
mod body;
#[cfg(feature = "env")]
#[cfg_attr(docsrs, doc(cfg(feature = "env")))]
pub mod config;
#[cfg(any(
    feature = "store-conformance",
    feature = "inbox-conformance",
    feature = "sink-conformance"
))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(
        feature = "store-conformance",
        feature = "inbox-conformance",
        feature = "sink-conformance"
    )))
)]
pub mod conformance;
pub mod detect;
pub mod endpoint;
pub mod engine;
mod envelope;
mod error;
pub mod event;
mod event_count;
pub mod guides;
mod ids;
pub mod inbox;
mod key_text;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod metrics;
mod name;
pub mod outbox;
pub mod prelude;
pub mod projection;
mod receiver;
pub mod rules;
mod secret;
pub mod store;
mod timestamp;
mod url_scheme;

#[cfg(feature = "simulator")]
#[cfg_attr(docsrs, doc(cfg(feature = "simulator")))]
pub mod simulator;

/// The error a handler returns: any error, boxed, with its `source()` chain
/// kept. `?` converts into it from every `std::error::Error + Send + Sync`,
/// and from `String` and `&str`.
///
/// ```
/// use alm_webhooks::BoxError;
///
/// fn parse_score(text: &str) -> Result<u32, BoxError> {
///     let score: u32 = text.parse()?; // a ParseIntError, boxed by `?`
///     if score > 100 {
///         return Err(format!("score {score} is over 100").into());
///     }
///     Ok(score)
/// }
/// assert!(parse_score("101").is_err());
/// ```
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

pub use auth::{AuthError, Authentication};
pub use endpoint::{Answer, Endpoint};
pub use engine::handle::Engine;
pub use engine::report::DeliveryReport;
pub use envelope::Envelope;
pub use error::{EventError, ParseError};
pub use event::{Event, EventData, RawData, Subject};
pub use ids::{
    AccountId, EventId, IdError, LoId, LoInstanceId, LoKind, LoType, ProgramSpelling, UserId,
};
pub use name::{EventFamily, EventName};
pub use receiver::{
    DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_EVENTS_PER_DELIVERY, DeliveryReceiver, DeliveryRejection,
};
pub use rules::decision::{Decision, IgnoreReason};
pub use secret::{ExposeSecret, Secret};
pub use timestamp::{MILLIS_THRESHOLD, TimeError, TimeFormat, Timestamp};
