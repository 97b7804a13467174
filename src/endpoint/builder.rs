//! [`EndpointBuilder`]: an [`Endpoint`] configured once, at start.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::door::Parts;
use super::handler::{self, Handler};
use super::kept::KeptLimits;
use super::options::WorkerOptions;
use super::sweeper::Sweeper;
use super::{Endpoint, Mode, OnMalformed};
use crate::inbox::{Inbox, MemoryInbox, Workers};
use crate::store::{MemoryStore, Store};
use crate::{Authentication, BoxError, Engine, Event, Receiver};

/// Why [`EndpointBuilder::build`] refused the configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// No [`EndpointBuilder::handler`] was given.
    #[error("the endpoint has no handler: call EndpointBuilder::handler")]
    MissingHandler,
    /// [`Mode::Inbox`] was asked for without [`EndpointBuilder::inbox`].
    #[error("Mode::Inbox needs an inbox: call EndpointBuilder::inbox")]
    InboxModeWithoutInbox,
    /// [`OnMalformed::Quarantine`] was asked for without an inbox to keep
    /// the bodies in.
    #[error("OnMalformed::Quarantine needs an inbox: call EndpointBuilder::inbox")]
    QuarantineWithoutInbox,
    /// An inbox's workers (or the sweep) must start on a tokio runtime,
    /// and `build` was called outside one.
    #[error("the inbox's workers and the sweep need a tokio runtime: call build inside one")]
    NoRuntime,
}

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
    receiver: Receiver,
    engine: Engine<S>,
    inbox: Option<(Arc<I>, WorkerOptions)>,
    handler: Option<Handler>,
    mode: Option<Mode>,
    on_malformed: Option<OnMalformed>,
    sweep_every: Option<Duration>,
    kept: KeptLimits,
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
            .field("kept", &self.kept)
            .finish()
    }
}

impl EndpointBuilder {
    pub(super) fn new(auth: Authentication) -> Self {
        Self {
            receiver: Receiver::new(auth),
            engine: Engine::in_memory(),
            inbox: None,
            handler: None,
            mode: None,
            on_malformed: None,
            sweep_every: None,
            kept: KeptLimits::default(),
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

    /// The most events one delivery may carry (default
    /// [`DEFAULT_MAX_EVENTS_PER_DELIVERY`](crate::DEFAULT_MAX_EVENTS_PER_DELIVERY),
    /// 50,000); a delivery with more is malformed as a whole: quarantined
    /// once ([`OnMalformed::Quarantine`](super::OnMalformed::Quarantine))
    /// or refused, never split into dead letters.
    ///
    /// ```
    /// use alm_webhooks::{Authentication, Endpoint};
    /// let endpoint = Endpoint::builder(Authentication::None)
    ///     .max_events_per_delivery(10_000)
    ///     .handler(|_event| async { Ok(()) })
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(endpoint.receiver().max_events_per_delivery(), 10_000);
    /// ```
    #[must_use]
    pub fn max_events_per_delivery(mut self, max: usize) -> Self {
        self.receiver = self.receiver.with_max_events_per_delivery(max);
        self
    }

    /// The engine that decides each event (default:
    /// [`Engine::in_memory`], which forgets everything at exit).
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
            kept: self.kept,
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
    /// use alm_webhooks::endpoint::WorkerOptions;
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
            kept: self.kept,
        }
    }

    /// Your code, run once per event to process: it takes the event by value
    /// and returns `Result<(), BoxError>`, so `?` works on any error and its
    /// `source()` chain is reported (in one line: `"outer: cause"`). An
    /// error or a panic is a failed attempt: answered `500` inline, retried
    /// by the workers in inbox mode.
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
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        self.handler = Some(handler::erase(handler));
        self
    }

    /// Where events are processed: [`Mode::Inbox`] (the default with an
    /// inbox) or [`Mode::Inline`] (the default without one).
    ///
    /// ```
    /// use alm_webhooks::endpoint::Mode;
    /// use alm_webhooks::{Authentication, Endpoint};
    /// let endpoint = Endpoint::builder(Authentication::None)
    ///     .mode(Mode::Inline)
    ///     .handler(|_event| async { Ok(()) })
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(endpoint.mode(), Mode::Inline);
    /// ```
    #[must_use]
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = Some(mode);
        self
    }

    /// What to do with an authenticated body that is not an envelope:
    /// [`OnMalformed::Quarantine`] (the default with an inbox) or
    /// [`OnMalformed::Refuse`] (`400`, the default without one).
    ///
    /// ```
    /// use alm_webhooks::endpoint::OnMalformed;
    /// use alm_webhooks::{Authentication, Endpoint};
    /// let endpoint = Endpoint::builder(Authentication::None)
    ///     .on_malformed(OnMalformed::Refuse)
    ///     .handler(|_event| async { Ok(()) })
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(endpoint.on_malformed(), OnMalformed::Refuse);
    /// ```
    #[must_use]
    pub fn on_malformed(mut self, on_malformed: OnMalformed) -> Self {
        self.on_malformed = Some(on_malformed);
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

    /// The caps on dead letters and quarantined bodies the inbox keeps
    /// (default [`KeptLimits::new`]): at a cap, new deliveries are
    /// answered `503` until a person replays or discards what is kept.
    ///
    /// ```
    /// use alm_webhooks::endpoint::KeptLimits;
    /// use alm_webhooks::{Authentication, Endpoint};
    /// let endpoint = Endpoint::builder(Authentication::None)
    ///     .kept_limits(KeptLimits::new().with_max_dead_letters(1_000))
    ///     .handler(|_event| async { Ok(()) })
    ///     .build()
    ///     .unwrap();
    /// # let _ = endpoint;
    /// ```
    #[must_use]
    pub fn kept_limits(mut self, limits: KeptLimits) -> Self {
        self.kept = limits;
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
    /// that [`Mode::Inbox`] or [`OnMalformed::Quarantine`] needs, or the
    /// tokio runtime the workers and the sweep need.
    ///
    /// ```
    /// use alm_webhooks::endpoint::EndpointError;
    /// use alm_webhooks::{Authentication, Endpoint};
    /// let error = Endpoint::builder(Authentication::None).build().unwrap_err();
    /// assert_eq!(error, EndpointError::MissingHandler);
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
        let needs_runtime = self.inbox.is_some() || self.sweep_every.is_some();
        if needs_runtime && tokio::runtime::Handle::try_current().is_err() {
            return Err(EndpointError::NoRuntime);
        }
        let sweeper = self
            .sweep_every
            .map(|interval| Sweeper::start(self.engine.clone(), interval));
        let (inbox, pool) = match self.inbox {
            None => (None, None),
            Some((inbox, options)) => {
                let workers = options.apply(Workers::new(self.engine.clone(), Arc::clone(&inbox)));
                let worker_handler = Arc::clone(&handler);
                let pool = workers.start(move |event| worker_handler(event));
                (Some(inbox), Some(pool))
            }
        };
        Ok(Endpoint {
            receiver: self.receiver,
            mode,
            on_malformed,
            door: Arc::new(Parts {
                engine: self.engine,
                inbox,
            }),
            handler,
            pool,
            sweeper,
            kept: super::kept::Kept::new(self.kept),
        })
    }
}
