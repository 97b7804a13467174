//! The endpoint's workers from outside: wake them, hand out their waker,
//! ask whether they are healthy, stop them.

use std::time::Duration;

use super::Endpoint;

impl Endpoint {
    /// Wakes an idle worker, so a delivery appended to the inbox by other
    /// means (a replayed dead letter, a replayed quarantined body) is taken
    /// at once. Does nothing without an inbox; `handle` wakes by itself.
    ///
    /// ```
    /// use alm_webhooks::{Authentication, Endpoint};
    /// let endpoint = Endpoint::builder(Authentication::None)
    ///     .handler(|_event| async { Ok(()) })
    ///     .build()
    ///     .unwrap();
    /// endpoint.wake(); // no inbox here: nothing to wake
    /// ```
    pub fn wake(&self) {
        if let Some(pool) = &self.inner.pool {
            pool.wake();
        }
    }

    /// A handle that wakes the inbox's workers (after a replay, say), for
    /// [`crate::admin::AdminApi::waking`]; `None` without an inbox.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use alm_webhooks::{Authentication, Endpoint};
    /// let endpoint = Endpoint::builder(Authentication::None)
    ///     .handler(|_event| async { Ok(()) })
    ///     .build()
    ///     .unwrap();
    /// assert!(endpoint.waker().is_none(), "inline mode without an inbox");
    /// # }
    /// ```
    pub fn waker(&self) -> Option<crate::inbox::PoolWaker> {
        self.inner.pool.as_ref().map(|pool| pool.waker())
    }

    /// Stops the inbox's workers: none takes new work, deliveries in hand
    /// are finished within `grace`, and what is unfinished stays in the
    /// inbox for the next start; it returns within `grace` +
    /// [`GIVE_BACK_BOUND`](crate::inbox::GIVE_BACK_BOUND). Returns `true` if
    /// everything in hand finished and no worker panicked (and always
    /// without an inbox). See [`WorkerPool::shutdown`](crate::inbox::WorkerPool::shutdown).
    /// Dropping the endpoint without it leaves the workers running until
    /// the runtime ends.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use alm_webhooks::{Authentication, Endpoint};
    /// let endpoint = Endpoint::builder(Authentication::None)
    ///     .handler(|_event| async { Ok(()) })
    ///     .build()
    ///     .unwrap();
    /// assert!(endpoint.shutdown(std::time::Duration::from_secs(1)).await);
    /// # }
    /// ```
    pub async fn shutdown(&self, grace: Duration) -> bool {
        match &self.inner.pool {
            Some(pool) => pool.shutdown(grace).await,
            None => true,
        }
    }
}
