//! [`Endpoint::ready`]: whether the endpoint can do its work now, as a
//! readiness probe (`/readyz`) asks.

use std::time::Duration;

use http::StatusCode;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::Endpoint;
use crate::inbox::WorkerPool;

/// What [`Endpoint::ready`] found: for each part, `None` when it answered,
/// or why it did not (for logs and the `/readyz` body; never a secret).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use alm_webhooks::{Authentication, Endpoint};
/// let endpoint = Endpoint::builder(Authentication::None)
///     .handler(|_event| async { Ok(()) })
///     .build()
///     .unwrap();
/// let readiness = endpoint.ready().await;
/// assert!(readiness.is_ready());
/// assert_eq!(readiness.status(), 200);
/// assert_eq!(readiness.body(), r#"{"status":"ready"}"#);
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Readiness {
    /// The engine's store did not answer a read, or not in time.
    pub store: Option<String>,
    /// The inbox did not answer, or not in time (`None` without an inbox).
    pub inbox: Option<String>,
    /// The inbox's workers are stopped, or panic more often than their
    /// restart limit.
    pub workers: Option<String>,
}

impl Readiness {
    /// Whether every part answered.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let endpoint = alm_webhooks::Endpoint::builder(alm_webhooks::Authentication::None)
    /// #     .handler(|_event| async { Ok(()) }).build().unwrap();
    /// assert!(endpoint.ready().await.is_ready());
    /// # }
    /// ```
    pub fn is_ready(&self) -> bool {
        self.store.is_none() && self.inbox.is_none() && self.workers.is_none()
    }

    /// `200` when ready, else `503`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let endpoint = alm_webhooks::Endpoint::builder(alm_webhooks::Authentication::None)
    /// #     .handler(|_event| async { Ok(()) }).build().unwrap();
    /// assert_eq!(endpoint.ready().await.status(), http::StatusCode::OK);
    /// # }
    /// ```
    pub fn status(&self) -> StatusCode {
        if self.is_ready() {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        }
    }

    /// The JSON body of `/readyz`: `{"status":"ready"}`, or
    /// `{"status":"unavailable","store":…,"inbox":…,"workers":…}` with
    /// `"ok"` or the reason for each part.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let endpoint = alm_webhooks::Endpoint::builder(alm_webhooks::Authentication::None)
    /// #     .handler(|_event| async { Ok(()) }).build().unwrap();
    /// assert_eq!(endpoint.ready().await.body(), r#"{"status":"ready"}"#);
    /// # }
    /// ```
    pub fn body(&self) -> String {
        if self.is_ready() {
            return json!({"status": "ready"}).to_string();
        }
        let reason = |f: &Option<String>| f.as_deref().map_or(Value::from("ok"), Value::from);
        json!({
            "status": "unavailable",
            "store": reason(&self.store),
            "inbox": reason(&self.inbox),
            "workers": reason(&self.workers),
        })
        .to_string()
    }
}

/// What a check's failure says.
fn failure<E: std::fmt::Display>(
    result: Result<Result<(), E>, tokio::time::error::Elapsed>,
    limit: Duration,
) -> Option<String> {
    match result {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some(format!("no answer within {limit:?}")),
    }
}

impl Endpoint {
    /// How long [`Endpoint::ready`] waits for the store and the inbox: 2 s.
    ///
    /// ```
    /// assert_eq!(alm_webhooks::Endpoint::READY_TIMEOUT.as_secs(), 2);
    /// ```
    pub const READY_TIMEOUT: Duration = Duration::from_secs(2);

    /// Whether the endpoint can do its work now: the engine's store answers
    /// a read, the inbox (if any) answers for its counts, each within
    /// [`Endpoint::READY_TIMEOUT`] (both asked at once), and the inbox's
    /// workers keep alive ([`Endpoint::workers_healthy`]). What `/readyz`
    /// serves ([`Endpoint::router`](Endpoint::router), feature `axum`).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::sync::Arc;
    /// use alm_webhooks::inbox::WorkerOptions;
    /// use alm_webhooks::inbox::MemoryInbox;
    /// use alm_webhooks::{Authentication, Endpoint};
    /// let endpoint = Endpoint::builder(Authentication::None)
    ///     .inbox(Arc::new(MemoryInbox::new()), WorkerOptions::new())
    ///     .handler(|_event| async { Ok(()) })
    ///     .build()
    ///     .unwrap();
    /// assert!(endpoint.ready().await.is_ready());
    /// endpoint.shutdown(std::time::Duration::from_secs(1)).await;
    /// let stopped = endpoint.ready().await;
    /// assert_eq!(stopped.status(), 503);
    /// assert!(stopped.workers.is_some());
    /// # }
    /// ```
    pub async fn ready(&self) -> Readiness {
        self.ready_within(Self::READY_TIMEOUT).await
    }

    /// [`Endpoint::ready`], waiting at most `limit` for each check.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let endpoint = alm_webhooks::Endpoint::builder(alm_webhooks::Authentication::None)
    /// #     .handler(|_event| async { Ok(()) }).build().unwrap();
    /// let readiness = endpoint.ready_within(std::time::Duration::from_millis(500)).await;
    /// assert!(readiness.is_ready());
    /// # }
    /// ```
    pub async fn ready_within(&self, limit: Duration) -> Readiness {
        let door = &*self.inner.door;
        let store = tokio::time::timeout(limit, door.read_store());
        let inbox = async {
            match door.stats(OffsetDateTime::now_utc()) {
                None => None,
                Some(stats) => failure(
                    tokio::time::timeout(limit, async { stats.await.map(drop) }).await,
                    limit,
                ),
            }
        };
        let (store, inbox) = tokio::join!(store, inbox);
        let workers = (!self.workers_healthy())
            .then(|| "stopped, or panicking more often than their restart limit".to_owned());
        Readiness {
            store: failure(store, limit),
            inbox,
            workers,
        }
    }

    /// Whether the inbox's workers are running and keep alive
    /// ([`WorkerPool::healthy`]: `false` after
    /// [`shutdown`](Endpoint::shutdown), or while the workers panic more
    /// often than their restart limit). Always `true` without an inbox.
    /// Part of [`Endpoint::ready`], without any I/O.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::sync::Arc;
    /// use alm_webhooks::inbox::WorkerOptions;
    /// use alm_webhooks::inbox::MemoryInbox;
    /// use alm_webhooks::{Authentication, Endpoint};
    /// let endpoint = Endpoint::builder(Authentication::None)
    ///     .inbox(Arc::new(MemoryInbox::new()), WorkerOptions::new())
    ///     .handler(|_event| async { Ok(()) })
    ///     .build()
    ///     .unwrap();
    /// assert!(endpoint.workers_healthy());
    /// endpoint.shutdown(std::time::Duration::from_secs(1)).await;
    /// assert!(!endpoint.workers_healthy());
    /// # }
    /// ```
    pub fn workers_healthy(&self) -> bool {
        self.inner.pool.as_ref().is_none_or(WorkerPool::healthy)
    }

    /// Sets the inbox gauges (`alm_webhooks_inbox_pending`,
    /// `alm_webhooks_dead_letters`…, and the fullest account's share of its
    /// caps, `alm_webhooks_kept_fullest_account_ratio`) from the inbox's counts, asked within
    /// [`Endpoint::READY_TIMEOUT`]: call it before each scrape (`/metrics`
    /// in [`Endpoint::router`](Endpoint::router) does). Returns whether the
    /// inbox answered; does nothing without an inbox.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::sync::Arc;
    /// use alm_webhooks::inbox::WorkerOptions;
    /// use alm_webhooks::inbox::MemoryInbox;
    /// use alm_webhooks::{Authentication, Endpoint};
    /// let endpoint = Endpoint::builder(Authentication::None)
    ///     .inbox(Arc::new(MemoryInbox::new()), WorkerOptions::new())
    ///     .handler(|_event| async { Ok(()) })
    ///     .build()
    ///     .unwrap();
    /// assert!(endpoint.refresh_inbox_gauges().await);
    /// # endpoint.shutdown(std::time::Duration::from_secs(1)).await;
    /// # }
    /// ```
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    pub async fn refresh_inbox_gauges(&self) -> bool {
        let door = &self.inner.door;
        let now = OffsetDateTime::now_utc();
        let (Some(stats), Some(most), Some(pauses)) = (
            door.stats(now),
            door.most_kept_of_one_account(),
            door.pauses(),
        ) else {
            return false;
        };
        let all = async { tokio::try_join!(stats, most, pauses) };
        match tokio::time::timeout(Self::READY_TIMEOUT, all).await {
            Ok(Ok((stats, most, pauses))) => {
                stats.set_gauges();
                self.inner.kept.set_fullest_account_gauge(most);
                crate::inbox::set_pause_gauges(&pauses, now);
                true
            }
            #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
            Ok(Err(error)) => {
                #[cfg(feature = "tracing")]
                tracing::warn!(%error, "metrics: the inbox did not count");
                false
            }
            Err(_) => {
                #[cfg(feature = "tracing")]
                tracing::warn!("metrics: the inbox did not count in time");
                false
            }
        }
    }
}
