//! The admin API over an endpoint's own inbox, engine and workers.

use std::fmt;
use std::sync::Arc;

use http::{HeaderMap, Method, Response};

use super::Endpoint;
use super::door::AdminCall;
use crate::admin::AdminToken;

/// The admin API and page ([`AdminApi`](crate::admin::AdminApi)) over an
/// endpoint's inbox, counting its engine's decisions and waking its
/// workers after a replay, in any web framework: from [`Endpoint::admin`]
/// or [`Endpoint::admin_with`]. Clones share it.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::sync::Arc;
/// use alm_webhooks::admin::AdminToken;
/// use alm_webhooks::inbox::WorkerOptions;
/// use alm_webhooks::inbox::MemoryInbox;
/// use alm_webhooks::{Authentication, Endpoint};
/// use http::{HeaderMap, Method};
///
/// let endpoint = Endpoint::builder(Authentication::None)
///     .inbox(Arc::new(MemoryInbox::new()), WorkerOptions::new())
///     .handler(|_event| async { Ok(()) })
///     .build()
///     .unwrap();
/// let admin = endpoint.admin_with(AdminToken::new("s3cret")).unwrap();
/// let mut headers = HeaderMap::new();
/// headers.insert("authorization", "Bearer s3cret".parse().unwrap());
/// let figures = admin.handle(&Method::GET, "/inbox", &headers).await;
/// assert_eq!(figures.status(), 200);
/// # endpoint.shutdown(std::time::Duration::from_secs(1)).await;
/// # }
/// ```
#[derive(Clone)]
pub struct EndpointAdmin {
    call: AdminCall,
}

impl fmt::Debug for EndpointAdmin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointAdmin").finish_non_exhaustive()
    }
}

impl EndpointAdmin {
    /// Answers one request: `path` is the path below the mount point (`""`
    /// or `/` the page, `/inbox`, `/dead-letters/{id}/replay`…; see
    /// [`admin`](crate::admin)).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use std::sync::Arc;
    /// # use alm_webhooks::{Authentication, Endpoint, admin::AdminToken, inbox::WorkerOptions, inbox::MemoryInbox};
    /// # let endpoint = Endpoint::builder(Authentication::None)
    /// #     .inbox(Arc::new(MemoryInbox::new()), WorkerOptions::new())
    /// #     .handler(|_event| async { Ok(()) }).build().unwrap();
    /// let admin = endpoint.admin_with(AdminToken::new("s3cret")).unwrap();
    /// let page = admin.handle(&http::Method::GET, "/", &http::HeaderMap::new()).await;
    /// assert_eq!(page.status(), 200);
    /// # endpoint.shutdown(std::time::Duration::from_secs(1)).await;
    /// # }
    /// ```
    pub async fn handle(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
    ) -> Response<Vec<u8>> {
        self.handle_with_body(method, path, headers, &[]).await
    }

    /// Answers one request that has a body (the bulk actions'
    /// JSON filter); otherwise as [`handle`](Self::handle).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use std::sync::Arc;
    /// # use alm_webhooks::{Authentication, Endpoint, admin::AdminToken, inbox::WorkerOptions, inbox::MemoryInbox};
    /// # let endpoint = Endpoint::builder(Authentication::None)
    /// #     .inbox(Arc::new(MemoryInbox::new()), WorkerOptions::new())
    /// #     .handler(|_event| async { Ok(()) }).build().unwrap();
    /// let admin = endpoint.admin_with(AdminToken::new("s3cret")).unwrap();
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("authorization", "Bearer s3cret".parse().unwrap());
    /// let filter = br#"{"accountId": 7}"#;
    /// let answer = admin.handle_with_body(&http::Method::POST, "/dead-letters/discard", &headers, filter).await;
    /// assert_eq!(answer.body().as_slice(), br#"{"matched":0}"#);
    /// # endpoint.shutdown(std::time::Duration::from_secs(1)).await;
    /// # }
    /// ```
    pub async fn handle_with_body(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Response<Vec<u8>> {
        let response = self.respond_with_body(method, path, headers, body).await;
        let (parts, body) = response.into_parts();
        match body.collect().await {
            Ok(bytes) => Response::from_parts(parts, bytes),
            Err(_) => {
                let mut failed =
                    Response::new(br#"{"error":"learner table unavailable"}"#.to_vec());
                *failed.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
                failed
            }
        }
    }

    /// [`handle`](Self::handle), with the CSV export (`GET /records.csv`)
    /// streamed as the client reads it (see
    /// [`AdminApi::respond`](crate::admin::AdminApi::respond)).
    pub async fn respond(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
    ) -> Response<crate::admin::AdminBody> {
        self.respond_with_body(method, path, headers, &[]).await
    }

    /// [`respond`](Self::respond) with the request's body (a bulk
    /// action's JSON filter).
    pub async fn respond_with_body(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Response<crate::admin::AdminBody> {
        let (method, path, headers) = (method.clone(), path.to_owned(), headers.clone());
        (self.call)(method, path, headers, body.to_vec()).await
    }
}

impl Endpoint {
    /// The admin API with the token given to
    /// [`EndpointBuilder::admin_token`](super::EndpointBuilder::admin_token);
    /// `None` without one.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use alm_webhooks::{Authentication, Endpoint};
    /// let endpoint = Endpoint::builder(Authentication::None)
    ///     .handler(|_event| async { Ok(()) })
    ///     .build()
    ///     .unwrap();
    /// assert!(endpoint.admin().is_none(), "no admin token given");
    /// # }
    /// ```
    pub fn admin(&self) -> Option<EndpointAdmin> {
        self.admin_with(self.inner.admin_token.clone()?)
    }

    /// The admin API for callers carrying `token`, over this endpoint's
    /// inbox; `None` without an inbox.
    ///
    /// ```
    /// use alm_webhooks::admin::AdminToken;
    /// use alm_webhooks::{Authentication, Endpoint};
    /// let endpoint = Endpoint::builder(Authentication::None)
    ///     .handler(|_event| async { Ok(()) })
    ///     .build()
    ///     .unwrap();
    /// assert!(endpoint.admin_with(AdminToken::new("s3cret")).is_none(), "no inbox");
    /// ```
    pub fn admin_with(&self, token: AdminToken) -> Option<EndpointAdmin> {
        let extras = super::door::AdminExtras {
            #[cfg(feature = "alm-api")]
            reconcile: self.inner.reconcile.get().cloned(),
            learners: self.inner.learners.get().cloned(),
            replays: self.inner.replay_jobs.clone(),
        };
        let call = self.inner.door.admin(token, self.waker(), extras)?;
        Some(EndpointAdmin { call })
    }

    /// Serves the learner table `table` keeps in this endpoint's admin API
    /// (`GET /records?userId=U&loInstanceId=I`, `GET /records.csv`; see
    /// [`admin`](crate::admin)), given once after
    /// [`build`](super::EndpointBuilder::build); `false` if a table was
    /// given already (the first stays).
    /// [`Config::endpoint`](crate::config::Config::endpoint) gives the
    /// store's when `ALM_PROJECTION` is on.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use alm_webhooks::store::MemoryStore;
    /// use alm_webhooks::{Authentication, Endpoint};
    /// let store = Arc::new(MemoryStore::new().with_learner_projection());
    /// let endpoint = Endpoint::builder(Authentication::None)
    ///     .handler(|_event| async { Ok(()) })
    ///     .build()
    ///     .unwrap();
    /// assert!(endpoint.showing_learners(store));
    /// ```
    pub fn showing_learners(&self, table: Arc<dyn crate::store::LearnerReads>) -> bool {
        self.inner.learners.set(table).is_ok()
    }

    /// Serves reconciliation runs in this endpoint's admin API
    /// (`POST /reconcile` starts one, `GET /reconcile/{id}` tells its state;
    /// see [`ReconcileRuns`](crate::alm_api::reconcile::ReconcileRuns)),
    /// from [`Endpoint::router`], [`Endpoint::admin`] and
    /// [`Endpoint::admin_with`] alike. The runs are given once, after
    /// [`build`](super::EndpointBuilder::build), since they feed their repairs
    /// to this endpoint's inbox; `false` if runs were given already (the
    /// first stay).
    ///
    /// ```no_run
    /// # async fn run(endpoint: alm_webhooks::Endpoint,
    /// #              runs: alm_webhooks::alm_api::reconcile::ReconcileRuns) {
    /// assert!(endpoint.reconciling(runs));
    /// # }
    /// ```
    #[cfg(feature = "alm-api")]
    #[cfg_attr(docsrs, doc(cfg(feature = "alm-api")))]
    pub fn reconciling(&self, runs: crate::alm_api::reconcile::ReconcileRuns) -> bool {
        self.inner.reconcile.set(runs).is_ok()
    }

    /// Keeps a running relay ([`Forwarding`](crate::outbox::Forwarding))
    /// for as long as the endpoint lives (it stops with the last clone):
    /// what [`Config::endpoint`](crate::config::Config) does with
    /// `ALM_FORWARD`. `false` if one was given already (the first stays).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use alm_webhooks::{Authentication, Endpoint, Engine};
    /// use alm_webhooks::outbox::{Forwarding, Relay, Sink, SinkError};
    /// use alm_webhooks::store::{MemoryStore, OutboxEntry};
    /// # #[derive(Debug)] struct Broker;
    /// # impl Sink for Broker {
    /// #     async fn publish(&self, _: &[OutboxEntry]) -> Result<(), SinkError> { Ok(()) }
    /// # }
    /// let engine = Engine::builder(MemoryStore::new().with_outbox()).build();
    /// let endpoint = Endpoint::builder(Authentication::None)
    ///     .engine(engine.clone())
    ///     .handler(|_event| async { Ok(()) })
    ///     .build()
    ///     .unwrap();
    /// assert!(endpoint.forwarding(Forwarding::start(Relay::new(engine, Broker))));
    /// # }
    /// ```
    pub fn forwarding(&self, forwarding: crate::outbox::Forwarding) -> bool {
        self.inner.forwarding.set(forwarding).is_ok()
    }

    /// Starts a replay of the archive in this endpoint's inbox, as a job
    /// its workers report to (see [`ReplayJobs`](crate::inbox::ReplayJobs));
    /// `None` without an inbox. Watch and cancel it with
    /// [`Endpoint::replay_jobs`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::sync::Arc;
    /// use alm_webhooks::inbox::{ArchiveFilter, MemoryInbox, ReplayMode, ReplayRequest, WorkerOptions};
    /// use alm_webhooks::{AccountId, Authentication, Endpoint};
    /// let endpoint = Endpoint::builder(Authentication::None)
    ///     .inbox(Arc::new(MemoryInbox::new()), WorkerOptions::new())
    ///     .handler(|_event| async { Ok(()) })
    ///     .build()
    ///     .unwrap();
    /// let yesterday = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    /// let filter = ArchiveFilter::new().received_from(yesterday).with_account_id(AccountId(7));
    /// let id = endpoint.replay(ReplayRequest::new(filter, ReplayMode::Rerun)).unwrap();
    /// let status = endpoint.replay_jobs().unwrap().status(id).unwrap();
    /// assert_eq!(status.mode, ReplayMode::Rerun);
    /// # }
    /// ```
    pub fn replay(&self, request: crate::inbox::ReplayRequest) -> Option<crate::inbox::ReplayId> {
        let jobs = self.inner.replay_jobs.as_ref()?;
        self.inner.door.start_replay(jobs, request)
    }

    /// The replay jobs of this endpoint's inbox (to list, watch and cancel
    /// them); `None` without an inbox.
    ///
    /// ```
    /// use alm_webhooks::{Authentication, Endpoint};
    /// let endpoint = Endpoint::builder(Authentication::None)
    ///     .handler(|_event| async { Ok(()) })
    ///     .build()
    ///     .unwrap();
    /// assert!(endpoint.replay_jobs().is_none(), "no inbox");
    /// ```
    pub fn replay_jobs(&self) -> Option<&crate::inbox::ReplayJobs> {
        self.inner.replay_jobs.as_ref()
    }

    /// Where the webhook route is mounted
    /// ([`EndpointBuilder::webhook_path`](super::EndpointBuilder::webhook_path)).
    ///
    /// ```
    /// use alm_webhooks::{Authentication, Endpoint};
    /// let endpoint = Endpoint::builder(Authentication::None)
    ///     .handler(|_event| async { Ok(()) })
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(endpoint.webhook_path(), "/webhooks");
    /// ```
    pub fn webhook_path(&self) -> &str {
        &self.inner.webhook_path
    }
}
