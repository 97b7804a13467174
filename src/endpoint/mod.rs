//! The front door in one object: [`Endpoint`] holds the authentication, the
//! body limit, the engine, your handler and (in inbox mode) the inbox and
//! its workers; [`Endpoint::handle`] takes one request's headers and body
//! and gives one [`Answer`] that knows its status and body. Mount it in
//! one line: `endpoint.router()` (axum: the webhook route behind the
//! guard, `/healthz`, `/readyz`, `/metrics`, the admin API),
//! `endpoint.actix_scope("")` (actix-web), or the endpoint itself as a
//! tower `Service<http::Request<B>>` (feature `tower`).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use alm_webhooks::{Authentication, Endpoint};
//!
//! // Once, at start.
//! let endpoint = Endpoint::builder(Authentication::None)
//!     .handler(|event| async move {
//!         println!("{} {}", event.event_name, event.event_id);
//!         Ok(())
//!     })
//!     .build()
//!     .unwrap();
//!
//! // Per request.
//! let answer = endpoint
//!     .handle(&http::HeaderMap::new(), br#"{"accountId":7,"events":[]}"#)
//!     .await;
//! assert_eq!(answer.status(), http::StatusCode::ACCEPTED);
//! # }
//! ```

mod account;
#[cfg(feature = "actix")]
mod actix;
mod admin;
mod answer;
#[cfg(feature = "axum")]
mod axum;
mod bounds;
mod builder;
mod choices;
mod door;
mod error;
#[cfg(any(feature = "axum", feature = "actix"))]
mod guard;
mod guard_defaults;
mod handler;
mod kept;
mod modes;
mod observe;
mod ready;
mod replays;
mod respond;
#[cfg(feature = "axum")]
mod router;
#[cfg(feature = "tower")]
mod service;
mod storage;
mod sweeper;
mod workers;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderMap, Request};

use crate::inbox::WorkerPool;
use crate::{Authentication, DeliveryReceiver};

pub use admin::EndpointAdmin;
pub use answer::Answer;
pub use builder::EndpointBuilder;
pub use error::EndpointError;
#[cfg(any(feature = "axum", feature = "actix"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "axum", feature = "actix"))))]
pub use guard::{Guard, RefusalSummary};
#[cfg(feature = "actix")]
#[cfg_attr(docsrs, doc(cfg(feature = "actix")))]
pub use guard::{GuardActixService, GuardMiddleware};
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use guard::{GuardLayer, GuardService};
pub use guard_defaults::{
    DEFAULT_MAX_BUFFERED_BYTES, DEFAULT_MAX_CONCURRENT_REQUESTS, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_READ_TIMEOUT, DEFAULT_RETRY_AFTER, DEFAULT_SUMMARY_EVERY,
};
pub use handler::HandlerResult;
pub use kept::{
    DEFAULT_MAX_DEAD_LETTERS, DEFAULT_MAX_DEAD_LETTERS_PER_ACCOUNT, DEFAULT_MAX_QUARANTINED,
    DEFAULT_MAX_QUARANTINED_BYTES, DEFAULT_MAX_QUARANTINED_BYTES_PER_ACCOUNT,
    DEFAULT_MAX_QUARANTINED_PER_ACCOUNT, KeptLimits, RETRY_AFTER_WHEN_FULL,
};
pub use modes::{DEFAULT_INLINE_BUDGET, DEFAULT_WEBHOOK_PATH, Mode, OnMalformed};
pub use ready::Readiness;
pub use replays::DEFAULT_MAX_REMEMBERED_DELIVERIES;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use router::Routes;
pub use storage::StorageError;

use door::Door;
use handler::Handler;

/// One webhook endpoint: built once from configuration
/// ([`Endpoint::builder`]), then [`Endpoint::handle`] for every request.
/// Cheap to clone (clones share everything, the workers
/// included): clone it into each request, task or framework's state.
///
/// Per request it checks the size, the authentication and the envelope
/// (the [`DeliveryReceiver`]), then either appends the exact body to the inbox
/// (inbox mode) or decides every event through the engine, running your
/// handler for those to process (inline mode). A malformed body is
/// quarantined or refused ([`OnMalformed`]). With the `metrics` feature
/// every answer is counted (`alm_webhooks_deliveries_total{outcome}`,
/// `alm_webhooks_ack_seconds`).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::sync::Arc;
/// use alm_webhooks::auth::SignatureAuth;
/// use alm_webhooks::inbox::WorkerOptions;
/// use alm_webhooks::inbox::MemoryInbox;
/// use alm_webhooks::{Answer, Authentication, Endpoint};
///
/// let auth = SignatureAuth::new("signing secret");
/// let endpoint = Endpoint::builder(Authentication::Signature(auth.clone()))
///     .inbox(Arc::new(MemoryInbox::new()), WorkerOptions::new())
///     .handler(|event| async move {
///         println!("{} for {:?}", event.event_name, event.subject());
///         Ok(())
///     })
///     .build()
///     .unwrap();
///
/// let body = br#"{"accountId":7,"events":[]}"#;
/// let mut headers = http::HeaderMap::new();
/// headers.insert("x-alm-signature", auth.sign(body).parse().unwrap());
/// let answer = endpoint.handle(&headers, body).await;
/// assert!(matches!(answer, Answer::Accepted { .. }));
/// assert_eq!(answer.body(), r#"{"accepted":true,"delivery":1}"#);
///
/// endpoint.shutdown(std::time::Duration::from_secs(5)).await;
/// # }
/// ```
#[derive(Clone)]
pub struct Endpoint {
    /// Clones share everything: the handler, the engine, the inbox and its
    /// workers.
    inner: Arc<Inner>,
}

/// What every clone of an [`Endpoint`] shares.
struct Inner {
    receiver: DeliveryReceiver,
    mode: Mode,
    on_malformed: OnMalformed,
    door: Arc<dyn Door>,
    handler: Handler,
    /// Inline: the time the handlers of one delivery share.
    inline_budget: Duration,
    pool: Option<WorkerPool>,
    /// The background sweep, if asked for; stops with the last clone.
    sweeper: Option<sweeper::Sweeper>,
    /// The bound on keeping a delivery in the inbox.
    append_timeout: Duration,
    /// The caps on dead letters and quarantined bodies.
    kept: kept::Kept,
    /// Who hears of every answer.
    on_answer: Option<AnswerObserver>,
    /// Where the webhook route is mounted.
    webhook_path: String,
    /// The admin API's token, when [`EndpointBuilder::admin_token`] was given.
    admin_token: Option<crate::admin::AdminToken>,
    /// The deliveries accepted within their timestamp's tolerance.
    replays: replays::Replays,
    /// The reconciliation runs the admin API serves ([`Endpoint::reconciling`]).
    #[cfg(feature = "alm-api")]
    reconcile: std::sync::OnceLock<crate::alm_api::reconcile::ReconcileRuns>,
    /// The replay jobs of the inbox's deliveries ([`Endpoint::replay`]).
    replay_jobs: Option<crate::inbox::ReplayJobs>,
    /// The learner table the admin API serves ([`Endpoint::showing_learners`]).
    learners: std::sync::OnceLock<Arc<dyn crate::store::LearnerReads>>,
    /// The relay forwarding the store's outbox ([`Endpoint::forwarding`]).
    forwarding: std::sync::OnceLock<crate::outbox::Forwarding>,
}

/// Who hears of every answer ([`EndpointBuilder::on_answer`]).
pub(crate) type AnswerObserver = Arc<dyn Fn(&Answer) + Send + Sync>;

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.inner;
        f.debug_struct("Endpoint")
            .field("receiver", &inner.receiver)
            .field("mode", &inner.mode)
            .field("on_malformed", &inner.on_malformed)
            .field("inline_budget", &inner.inline_budget)
            .field("workers", &inner.pool.is_some())
            .field("sweeping", &inner.sweeper.is_some())
            .field("admin", &inner.admin_token.is_some())
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// How long the endpoint waits, by default, for the inbox to keep a
    /// delivery before it answers `503`: 2 s, well inside the 5 s ALM
    /// waits for an answer. See [`EndpointBuilder::append_timeout`].
    ///
    /// ```
    /// assert_eq!(alm_webhooks::Endpoint::APPEND_TIMEOUT.as_secs(), 2);
    /// ```
    pub const APPEND_TIMEOUT: Duration = Duration::from_secs(2);

    /// Starts configuring an endpoint that authenticates with `auth`: an
    /// [`Authentication`], or one of its methods as it is
    /// ([`SignatureAuth`](crate::auth::SignatureAuth),
    /// [`BasicAuth`](crate::auth::BasicAuth),
    /// [`StandardWebhooksAuth`](crate::auth::StandardWebhooksAuth)).
    ///
    /// ```
    /// use alm_webhooks::auth::BasicAuth;
    /// use alm_webhooks::Endpoint;
    /// let endpoint = Endpoint::builder(BasicAuth::new("alm", "s3cret"))
    ///     .handler(|_event| async { Ok(()) })
    ///     .build()
    ///     .unwrap();
    /// # let _ = endpoint;
    /// ```
    pub fn builder(auth: impl Into<Authentication>) -> EndpointBuilder {
        EndpointBuilder::new(auth.into())
    }

    /// The size, authentication and envelope checks in force.
    ///
    /// ```
    /// use alm_webhooks::{Authentication, Endpoint};
    /// let endpoint = Endpoint::builder(Authentication::None)
    ///     .handler(|_event| async { Ok(()) })
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(endpoint.receiver().max_body_bytes(), alm_webhooks::DEFAULT_MAX_BODY_BYTES);
    /// ```
    pub fn receiver(&self) -> &DeliveryReceiver {
        &self.inner.receiver
    }

    /// Where the handler runs.
    ///
    /// ```
    /// use alm_webhooks::endpoint::Mode;
    /// use alm_webhooks::{Authentication, Endpoint};
    /// let endpoint = Endpoint::builder(Authentication::None)
    ///     .handler(|_event| async { Ok(()) })
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(endpoint.mode(), Mode::Inline);
    /// ```
    pub fn mode(&self) -> Mode {
        self.inner.mode
    }

    /// What happens to a malformed body.
    ///
    /// ```
    /// use alm_webhooks::endpoint::OnMalformed;
    /// use alm_webhooks::{Authentication, Endpoint};
    /// let endpoint = Endpoint::builder(Authentication::None)
    ///     .handler(|_event| async { Ok(()) })
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(endpoint.on_malformed(), OnMalformed::Refuse);
    /// ```
    pub fn on_malformed(&self) -> OnMalformed {
        self.inner.on_malformed
    }

    /// Handles one request: its headers and raw body, exactly as received
    /// (read it within [`DeliveryReceiver::max_body_bytes`]; the axum and actix
    /// conversions do). Never fails: every outcome is an [`Answer`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use alm_webhooks::{Answer, Authentication, Decision, Endpoint};
    ///
    /// let endpoint = Endpoint::builder(Authentication::None)
    ///     .handler(|_event| async { Err("the CRM is down".into()) })
    ///     .build()
    ///     .unwrap();
    /// let body = br#"{"accountId":7,"events":[{"eventId":"e1","eventName":"LEARNING_OBJECT_DRAFT",
    ///   "timestamp":1725519188,"data":{"loId":"course:1","loType":"course"}}]}"#;
    /// let answer = endpoint.handle(&http::HeaderMap::new(), body).await;
    /// // Inline, a failed handler is a 500, so ALM sends the delivery again.
    /// assert_eq!(answer.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
    /// let outcome = &answer.report().unwrap().outcomes[0];
    /// assert_eq!(outcome.decision, Decision::Failed);
    /// assert_eq!(outcome.error_message(), Some("the CRM is down"));
    /// # }
    /// ```
    pub async fn handle(&self, headers: &HeaderMap, body: &[u8]) -> Answer {
        self.handle_since(headers, body, Instant::now()).await
    }

    /// [`Endpoint::handle`] over an [`http::Request`] whose body is bytes.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use alm_webhooks::{Authentication, Endpoint};
    /// let endpoint = Endpoint::builder(Authentication::None)
    ///     .handler(|_event| async { Ok(()) })
    ///     .build()
    ///     .unwrap();
    /// let request = http::Request::post("/webhooks")
    ///     .body(br#"{"accountId":7,"events":[]}"#.to_vec())
    ///     .unwrap();
    /// assert_eq!(endpoint.handle_request(request).await.status(), 202);
    /// # }
    /// ```
    pub async fn handle_request<B: AsRef<[u8]>>(&self, request: Request<B>) -> Answer {
        self.handle(request.headers(), request.body().as_ref())
            .await
    }

    /// [`Endpoint::handle`], with the answer counted from `started` (when
    /// the request came in).
    pub(crate) async fn handle_since(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        started: Instant,
    ) -> Answer {
        let answer = self.answer(headers, body, started).await;
        self.count(&answer, started);
        answer
    }

    /// Counts a refusal made before the body was read (by an adapter).
    #[cfg(any(feature = "tower", feature = "actix"))]
    pub(crate) fn refuse(&self, rejection: crate::DeliveryRejection, started: Instant) -> Answer {
        let answer = Answer::Refused(rejection);
        self.count(&answer, started);
        answer
    }

    /// Counts an answer (feature `metrics`) and tells the observer.
    fn count(&self, answer: &Answer, started: Instant) {
        #[cfg(feature = "metrics")]
        crate::metrics::record_delivery(answer.delivery_outcome(), started.elapsed());
        #[cfg(not(feature = "metrics"))]
        let _ = started;
        if let Some(observer) = &self.inner.on_answer {
            observer(answer);
        }
    }
}
