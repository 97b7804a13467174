//! The store and the inbox from one URL: [`EndpointBuilder::storage`].

use std::sync::Arc;

use super::EndpointBuilder;
use crate::Engine;
use crate::inbox::{AnyInbox, Inbox, InboxError, WorkerOptions};
use crate::store::{AnyStore, Store, StoreError};

/// Why [`EndpointBuilder::storage`] could not open the store or the inbox.
/// Its message never contains the URL's password.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use alm_webhooks::{Authentication, Endpoint};
/// use alm_webhooks::endpoint::StorageError;
/// use alm_webhooks::inbox::WorkerOptions;
///
/// let refused = Endpoint::builder(Authentication::None)
///     .storage("ftp://user:hunter2@nowhere", WorkerOptions::new())
///     .await
///     .err()
///     .unwrap();
/// assert!(matches!(refused, StorageError::Store(_)));
/// assert!(!refused.to_string().contains("hunter2"));
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The store could not be opened (an unknown scheme, or a server that
    /// cannot be reached).
    #[error("cannot open the store: {0}")]
    Store(#[source] StoreError),
    /// The inbox could not be opened on the store's connection (PostgreSQL:
    /// its tables are missing, migrate first).
    #[error("cannot open the inbox: {0}")]
    Inbox(#[source] InboxError),
}

impl<S: Store, I: Inbox> EndpointBuilder<S, I> {
    /// Inbox mode on one URL: the store (dedup and rule state) and the
    /// inbox (deliveries, dead letters, quarantine) are opened from `url`
    /// ([`AnyStore::from_url`]: `postgres://…?sslmode=require&migrate=true`,
    /// `sqlite:///var/lib/alm/alm.db`, `redis://…`, or `memory`) and share
    /// its connection ([`AnyInbox::from_store`]): one pool, one file or one
    /// connection manager. The engine gets the library's defaults; to
    /// change them, open the store yourself and call
    /// [`engine`](EndpointBuilder::engine) and [`inbox`](EndpointBuilder::inbox).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), alm_webhooks::BoxError> {
    /// use alm_webhooks::{Authentication, Endpoint};
    /// use alm_webhooks::inbox::WorkerOptions;
    ///
    /// let endpoint = Endpoint::builder(Authentication::None)
    ///     .storage("memory", WorkerOptions::new())
    ///     .await?
    ///     .handler(|_event| async { Ok(()) })
    ///     .build()?;
    /// endpoint.shutdown(std::time::Duration::from_secs(1)).await;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// A [`StorageError`] when the store or the inbox cannot be opened.
    pub async fn storage(
        self,
        url: &str,
        workers: WorkerOptions,
    ) -> Result<EndpointBuilder<AnyStore, AnyInbox>, StorageError> {
        let store = AnyStore::from_url(url).await.map_err(StorageError::Store)?;
        let inbox = AnyInbox::from_store(&store)
            .await
            .map_err(StorageError::Inbox)?;
        Ok(self
            .engine(Engine::builder(store).build())
            .inbox(Arc::new(inbox), workers))
    }
}
