//! [`EndpointBuilder`]: an [`Endpoint`] configured once, at start.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::door::Parts;
use super::error::EndpointError;
use super::handler::{self, Handler, HandlerResult};
use super::kept::KeptLimits;
use super::modes::DEFAULT_INLINE_BUDGET;
use super::sweeper::Sweeper;
use super::{Endpoint, Mode, OnMalformed};
use crate::inbox::WorkerOptions;
use crate::inbox::{Inbox, MemoryInbox, Workers};
use crate::store::{MemoryStore, Store};
use crate::{Authentication, BoxError, DeliveryReceiver, Engine, Event};

/// Configures an [`Endpoint`]; made by [`Endpoint::builder`].
///
/// `S` and `I` are the engine's store and the inbox; they change with
/// [`engine`](EndpointBuilder::engine) and [`inbox`](EndpointBuilder::inbox),
/// in any order, and are gone once built: every endpoint is one type.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use alm_webhooks::{Authentication, Endpoint, Engine};
/// use alm_webhooks::auth::BasicAuth;
///
/// let endpoint = Endpoint::builder(Authentication::Basic(BasicAuth::new("alm", "s3cret")))
///     .max_body_bytes(1 << 20)
///     .engine(Engine::in_memory())
///     .handler(|event| async move {
///         println!("{} {}", event.event_name, event.event_id);
///         Ok(())
///     })
///     .build()
///     .unwrap();
/// // No credentials: 401, and the body is never parsed.
/// let answer = endpoint.handle(&http::HeaderMap::new(), b"{}").await;
/// assert_eq!(answer.status(), http::StatusCode::UNAUTHORIZED);
/// # }
/// ```
pub struct EndpointBuilder<S: Store = MemoryStore, I: Inbox = MemoryInbox> {
    pub(super) receiver: DeliveryReceiver,
    pub(super) engine: Engine<S>,
    pub(super) inbox: Option<(Arc<I>, WorkerOptions)>,
    pub(super) handler: Option<Handler>,
    pub(super) mode: Option<Mode>,
    pub(super) on_malformed: Option<OnMalformed>,
    pub(super) sweep_every: Option<Duration>,
    /// Whether [`EndpointBuilder::engine`] was called.
    pub(super) engine_chosen: bool,
    pub(super) inline_budget: Duration,
    pub(super) append_timeout: Duration,
    pub(super) kept: KeptLimits,
    pub(super) on_answer: Option<super::AnswerObserver>,
    pub(super) admin_token: Option<crate::admin::AdminToken>,
    pub(super) webhook_path: String,
    pub(super) max_remembered: usize,
}

impl<S: Store + fmt::Debug, I: Inbox + fmt::Debug> fmt::Debug for EndpointBuilder<S, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointBuilder")
            .field("receiver", &self.receiver)
            .field("engine", &self.engine)
            .field("inbox", &self.inbox)
            .field("handler", &self.handler.is_some())
            .field("mode", &self.mode)
            .field("on_malformed", &self.on_malformed)
            .field("sweep_every", &self.sweep_every)
            .field("inline_budget", &self.inline_budget)
            .field("kept", &self.kept)
            .field("on_answer", &self.on_answer.is_some())
            .field("admin_token", &self.admin_token)
            .finish()
    }
}

impl EndpointBuilder {
    pub(super) fn new(auth: Authentication) -> Self {
        Self {
            receiver: DeliveryReceiver::new(auth),
            engine: Engine::in_memory(),
            inbox: None,
            handler: None,
            mode: None,
            on_malformed: None,
            sweep_every: None,
            engine_chosen: false,
            inline_budget: DEFAULT_INLINE_BUDGET,
            append_timeout: Endpoint::APPEND_TIMEOUT,
            kept: KeptLimits::default(),
            on_answer: None,
            admin_token: None,
            webhook_path: super::DEFAULT_WEBHOOK_PATH.to_owned(),
            max_remembered: super::DEFAULT_MAX_REMEMBERED_DELIVERIES,
        }
    }
}

impl<S: Store, I: Inbox> EndpointBuilder<S, I> {
    /// The largest body accepted, in bytes (default
    /// [`DEFAULT_MAX_BODY_BYTES`](crate::DEFAULT_MAX_BODY_BYTES), 8 MiB);
    /// a larger one is answered `413`.
    ///
    /// ```
    /// use alm_webhooks::{Authentication, Endpoint};
    /// let endpoint = Endpoint::builder(Authentication::None)
    ///     .max_body_bytes(1024 * 1024)
    ///     .handler(|_event| async { Ok(()) })
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(endpoint.receiver().max_body_bytes(), 1024 * 1024);
    /// ```
    #[must_use]
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        self.receiver = self.receiver.with_max_body_bytes(limit);
        self
    }

    /// The engine that decides each event (default:
    /// [`Engine::in_memory`], which forgets everything at exit; with a
    /// durable inbox, [`build`](EndpointBuilder::build) refuses the default:
    /// give an engine on a durable store).
    ///
    /// ```
    /// use alm_webhooks::{Authentication, Endpoint, Engine};
    /// use alm_webhooks::store::MemoryStore;
    /// let engine = Engine::builder(MemoryStore::new()).commit_batch(100).build();
    /// let endpoint = Endpoint::builder(Authentication::None)
    ///     .engine(engine)
    ///     .handler(|_event| async { Ok(()) })
    ///     .build()
    ///     .unwrap();
    /// # let _ = endpoint;
    /// ```
    pub fn engine<S2: Store>(self, engine: Engine<S2>) -> EndpointBuilder<S2, I> {
        EndpointBuilder {
            receiver: self.receiver,
            engine,
            inbox: self.inbox,
            handler: self.handler,
            mode: self.mode,
            on_malformed: self.on_malformed,
            sweep_every: self.sweep_every,
            engine_chosen: true,
            inline_budget: self.inline_budget,
            append_timeout: self.append_timeout,
            kept: self.kept,
            on_answer: self.on_answer,
            admin_token: self.admin_token,
            webhook_path: self.webhook_path,
            max_remembered: self.max_remembered,
        }
    }

    /// Inbox mode (recommended): each delivery is appended to `inbox` and
    /// answered `202` at once, and workers started by
    /// [`build`](EndpointBuilder::build) run the handler behind. Malformed
    /// bodies are then quarantined by default. With [`Mode::Inline`] as
    /// well, the inbox only keeps quarantined bodies and its workers run
    /// what is replayed.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::sync::Arc;
    /// use alm_webhooks::inbox::WorkerOptions;
    /// use alm_webhooks::inbox::MemoryInbox;
    /// use alm_webhooks::{Authentication, Endpoint};
    ///
    /// let endpoint = Endpoint::builder(Authentication::None)
    ///     .inbox(Arc::new(MemoryInbox::new()), WorkerOptions::new().with_count(2))
    ///     .handler(|_event| async { Ok(()) })
    ///     .build()
    ///     .unwrap();
    /// endpoint.shutdown(std::time::Duration::from_secs(1)).await;
    /// # }
    /// ```
    pub fn inbox<I2: Inbox>(
        self,
        inbox: Arc<I2>,
        workers: WorkerOptions,
    ) -> EndpointBuilder<S, I2> {
        EndpointBuilder {
            receiver: self.receiver,
            engine: self.engine,
            inbox: Some((inbox, workers)),
            handler: self.handler,
            mode: self.mode,
            on_malformed: self.on_malformed,
            sweep_every: self.sweep_every,
            engine_chosen: self.engine_chosen,
            inline_budget: self.inline_budget,
            append_timeout: self.append_timeout,
            kept: self.kept,
            on_answer: self.on_answer,
            admin_token: self.admin_token,
            webhook_path: self.webhook_path,
            max_remembered: self.max_remembered,
        }
    }

    /// Your code, run once per event to process: it takes the event by value
    /// and returns `Result<(), BoxError>`, so `?` works on any error and its
    /// `source()` chain is reported (in one line: `"outer: cause"`). An
    /// error or a panic is a failed attempt: answered `500` inline, retried
    /// by the workers in inbox mode. A handler with an error type of its
    /// own goes to [`handler_with_error`](Self::handler_with_error).
    ///
    /// ```
    /// use alm_webhooks::{Authentication, Endpoint};
    /// let endpoint = Endpoint::builder(Authentication::None)
    ///     .handler(|event| async move {
    ///         let score: u32 = "42".parse()?; // any error converts
    ///         println!("{} {} {score}", event.event_name, event.event_id);
    ///         Ok(())
    ///     })
    ///     .build()
    ///     .unwrap();
    /// # let _ = endpoint;
    /// ```
    #[must_use]
    pub fn handler<F, Fut>(mut self, handler: F) -> Self
    where
        F: Fn(Event) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: HandlerResult,
    {
        self.handler = Some(handler::erase(move |event| {
            let run = handler(event);
            async move { run.await.into_result() }
        }));
        self
    }

    /// [`handler`](Self::handler) for a handler whose error is any `E:
    /// Into<BoxError>`: an `anyhow::Error`, an error enum of your own, a
    /// `String`. The error is boxed as it is (its `source()` chain kept).
    /// A closure must name its error type (a function's signature does).
    ///
    /// ```
    /// use alm_webhooks::{Endpoint, Event};
    ///
    /// #[derive(Debug, thiserror::Error)]
    /// enum CrmError {
    ///     #[error("the CRM refused the learner")]
    ///     Refused,
    /// }
    ///
    /// async fn to_crm(event: Event) -> Result<(), CrmError> {
    ///     println!("{} {}", event.event_name, event.event_id);
    ///     Err(CrmError::Refused)
    /// }
    ///
    /// let endpoint = Endpoint::builder(alm_webhooks::Authentication::None)
    ///     .handler_with_error(to_crm)
    ///     .build()
    ///     .unwrap();
    /// # let _ = endpoint;
    /// ```
    #[must_use]
    pub fn handler_with_error<F, Fut, E>(mut self, handler: F) -> Self
    where
        F: Fn(Event) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError> + 'static,
    {
        self.handler = Some(handler::erase(handler));
        self
    }

    /// Sweeps the engine's store every `interval` (hourly is plenty) from
    /// a background task that ends with the endpoint: the decided events
    /// past their dedup window and the rule state past its retention are
    /// removed. PostgreSQL, SQLite and Redis keep them until a sweep (Redis
    /// keys also expire by themselves); the memory store needs none. Off by
    /// default; needs a tokio runtime at [`build`](EndpointBuilder::build).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use alm_webhooks::store::SqliteStore;
    /// use alm_webhooks::{Authentication, Endpoint, Engine};
    ///
    /// let endpoint = Endpoint::builder(Authentication::None)
    ///     .engine(Engine::builder(SqliteStore::open_in_memory()?).build())
    ///     .sweep_every(Duration::from_secs(3600))
    ///     .handler(|_event| async { Ok(()) })
    ///     .build()?;
    /// # let _ = endpoint;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn sweep_every(mut self, interval: Duration) -> Self {
        self.sweep_every = Some(interval);
        self
    }
}

impl<S: Store, I: Inbox> EndpointBuilder<S, I> {
    /// Checks the configuration and builds the endpoint. In inbox mode (or
    /// with an inbox in inline mode) it starts the workers on the current
    /// tokio runtime; stop them with [`Endpoint::shutdown`].
    ///
    /// # Errors
    ///
    /// An [`EndpointError`] naming what is missing: the handler, the inbox
    /// that [`Mode::Inbox`] or [`OnMalformed::Quarantine`] needs, the
    /// tokio runtime the workers and the sweep need, or the durable engine
    /// a durable inbox needs.
    ///
    /// ```
    /// use alm_webhooks::endpoint::EndpointError;
    /// use alm_webhooks::{Authentication, Endpoint};
    /// let error = Endpoint::builder(Authentication::None).build().unwrap_err();
    /// assert_eq!(error, EndpointError::MissingHandler);
    /// ```
    ///
    /// A durable inbox with the engine's in-memory default is refused:
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::sync::Arc;
    /// use alm_webhooks::endpoint::EndpointError;
    /// use alm_webhooks::inbox::WorkerOptions;
    /// use alm_webhooks::inbox::SqliteInbox;
    /// use alm_webhooks::store::SqliteStore;
    /// use alm_webhooks::{Authentication, Endpoint, Engine};
    ///
    /// let inbox = Arc::new(SqliteInbox::open_in_memory()?);
    /// let refused = Endpoint::builder(Authentication::None)
    ///     .inbox(Arc::clone(&inbox), WorkerOptions::new())
    ///     .handler(|_event| async { Ok(()) })
    ///     .build();
    /// assert_eq!(refused.unwrap_err(), EndpointError::DurableInboxWithoutStore);
    ///
    /// let endpoint = Endpoint::builder(Authentication::None)
    ///     .engine(Engine::builder(SqliteStore::open_in_memory()?).build())
    ///     .inbox(inbox, WorkerOptions::new())
    ///     .handler(|_event| async { Ok(()) })
    ///     .build()?;
    /// endpoint.shutdown(std::time::Duration::from_secs(1)).await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn build(self) -> Result<Endpoint, EndpointError> {
        let handler = self.handler.ok_or(EndpointError::MissingHandler)?;
        let has_inbox = self.inbox.is_some();
        let mode = self
            .mode
            .unwrap_or(if has_inbox { Mode::Inbox } else { Mode::Inline });
        let on_malformed = self.on_malformed.unwrap_or(if has_inbox {
            OnMalformed::Quarantine
        } else {
            OnMalformed::Refuse
        });
        if !has_inbox && mode == Mode::Inbox {
            return Err(EndpointError::InboxModeWithoutInbox);
        }
        if !has_inbox && on_malformed == OnMalformed::Quarantine {
            return Err(EndpointError::QuarantineWithoutInbox);
        }
        if !has_inbox && self.admin_token.is_some() {
            return Err(EndpointError::AdminWithoutInbox);
        }
        let durable_inbox = self.inbox.as_ref().is_some_and(|(i, _)| i.is_durable());
        if durable_inbox && !self.engine_chosen {
            return Err(EndpointError::DurableInboxWithoutStore);
        }
        let needs_runtime = self.inbox.is_some() || self.sweep_every.is_some();
        if needs_runtime && tokio::runtime::Handle::try_current().is_err() {
            return Err(EndpointError::NoRuntime);
        }
        let sweeper = self
            .sweep_every
            .map(|interval| Sweeper::start(self.engine.clone(), interval));
        let (inbox, pool, replay_jobs) = match self.inbox {
            None => (None, None, None),
            Some((inbox, options)) => {
                let jobs = options.replays().cloned().unwrap_or_default();
                let options = options.with_replays(jobs.clone());
                let workers = Workers::new(self.engine.clone(), Arc::clone(&inbox))
                    .with_options(options)
                    .with_kept_caps(self.kept.per_account());
                let worker_handler = Arc::clone(&handler);
                let pool = workers.start(move |event| worker_handler(event));
                (Some(inbox), Some(pool), Some(jobs))
            }
        };
        Ok(Endpoint {
            inner: Arc::new(super::Inner {
                receiver: self.receiver,
                mode,
                on_malformed,
                door: Arc::new(Parts {
                    engine: self.engine,
                    inbox,
                }),
                handler,
                inline_budget: self.inline_budget,
                pool,
                sweeper,
                append_timeout: self.append_timeout,
                kept: super::kept::Kept::new(self.kept),
                on_answer: self.on_answer,
                admin_token: self.admin_token,
                webhook_path: self.webhook_path,
                replays: super::replays::Replays::new(self.max_remembered),
                #[cfg(feature = "alm-api")]
                reconcile: std::sync::OnceLock::new(),
                replay_jobs,
                learners: std::sync::OnceLock::new(),
                forwarding: std::sync::OnceLock::new(),
            }),
        })
    }
}
