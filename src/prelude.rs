//! What a typical application names, in one import:
//! `use alm_webhooks::prelude::*;`.
//!
//! The endpoint and its builder's parts ([`Endpoint`], [`WorkerOptions`],
//! [`Engine`]), the authentication methods ([`SignatureAuth`],
//! [`BasicAuth`], [`Authentication`]), what a handler takes and returns
//! ([`Event`], [`EventName`], [`Subject`], [`BoxError`]), the admin token
//! ([`AdminToken`]), and the stores and inboxes of the enabled features
//! ([`AnyStore`] and [`AnyInbox`] open the one a URL names).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), alm_webhooks::BoxError> {
//! use std::sync::Arc;
//! use alm_webhooks::prelude::*;
//!
//! let endpoint = Endpoint::builder(SignatureAuth::new("signing secret"))
//!     .inbox(Arc::new(MemoryInbox::new()), WorkerOptions::new())
//!     .handler(|event: Event| async move {
//!         if let Some(Subject::Learner { user_id, .. }) = event.subject() {
//!             println!("{} for learner {user_id}", event.event_name);
//!         }
//!         Ok(())
//!     })
//!     .build()?;
//! # endpoint.shutdown(std::time::Duration::from_secs(1)).await;
//! # Ok(())
//! # }
//! ```

pub use crate::admin::AdminToken;
pub use crate::auth::{BasicAuth, SignatureAuth};
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use crate::inbox::PostgresInbox;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use crate::inbox::RedisInbox;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use crate::inbox::SqliteInbox;
pub use crate::inbox::WorkerOptions;
pub use crate::inbox::{AnyInbox, MemoryInbox};
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use crate::store::PostgresStore;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use crate::store::RedisStore;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use crate::store::SqliteStore;
pub use crate::store::{AnyStore, MemoryStore};
pub use crate::{Answer, Authentication, BoxError, Endpoint, Engine, Event, EventName, Subject};
