//! [`EndpointBuilder`]: an [`Endpoint`] configured once, at start.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::door::Parts;
use super::handler::{self, Handler};
use super::{Endpoint, Mode, OnMalformed};
use crate::inbox::{Inbox, MemoryInbox, Progress, RetryPolicy, Workers};
use crate::store::{MemoryStore, Store};
use crate::{Authentication, BoxError, Engine, Event, Receiver};

type Observer = Arc<dyn Fn(Progress<'_>) + Send + Sync>;

/// How the inbox's workers run: how many, their lease, their retries, and
/// who hears of what they do. Given to [`EndpointBuilder::inbox`].
///
/// ```
/// use std::time::Duration;
/// use alm_webhooks::endpoint::WorkerOptions;
/// use alm_webhooks::inbox::{Progress, RetryPolicy};
///
/// let options = WorkerOptions::new()
///     .with_count(8)
///     .with_lease(Duration::from_secs(120))
///     .with_retry(RetryPolicy { max_attempts: 3, ..RetryPolicy::default() })
///     .with_observer(|progress| {
///         if let Progress::DeadLettered { letter } = progress {
///             eprintln!("dead letter: {}", letter.error);
///         }
///     });
/// # let _ = options;
/// ```
#[derive(Clone, Default)]
pub struct WorkerOptions {
    count: Option<usize>,
    lease: Option<Duration>,
    poll: Option<Duration>,
    retry: Option<RetryPolicy>,
    observer: Option<Observer>,
}

impl fmt::Debug for WorkerOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerOptions")
            .field("count", &self.count)
            .field("lease", &self.lease)
            .field("poll", &self.poll)
            .field("retry", &self.retry)
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

impl WorkerOptions {
    /// The defaults of [`Workers`]: 4 workers, a 60 s lease, the default
    /// [`RetryPolicy`], an idle poll every 50 ms, no observer.
    ///
    /// ```
    /// let options = alm_webhooks::endpoint::WorkerOptions::new();
    /// # let _ = options;
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// How many deliveries this process works on at once (at least 1); see
    /// [`Workers::with_count`].
    ///
    /// ```
    /// let options = alm_webhooks::endpoint::WorkerOptions::new().with_count(2);
    /// # let _ = options;
    /// ```
    #[must_use]
    pub fn with_count(mut self, workers: usize) -> Self {
        self.count = Some(workers);
        self
    }

    /// A delivery's lease; see [`Workers::with_lease`].
    ///
    /// ```
    /// let options = alm_webhooks::endpoint::WorkerOptions::new()
    ///     .with_lease(std::time::Duration::from_secs(30));
    /// # let _ = options;
    /// ```
    #[must_use]
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = Some(lease);
        self
    }

    /// How often an idle worker looks at the inbox; see
    /// [`Workers::with_poll_interval`].
    ///
    /// ```
    /// let options = alm_webhooks::endpoint::WorkerOptions::new()
    ///     .with_poll_interval(std::time::Duration::from_millis(10));
    /// # let _ = options;
    /// ```
    #[must_use]
    pub fn with_poll_interval(mut self, poll: Duration) -> Self {
        self.poll = Some(poll);
        self
    }

    /// Attempts and backoff of a failing handler; see [`Workers::with_retry`].
    ///
    /// ```
    /// use alm_webhooks::inbox::RetryPolicy;
    /// let options = alm_webhooks::endpoint::WorkerOptions::new().with_retry(RetryPolicy::default());
    /// # let _ = options;
    /// ```
    #[must_use]
    pub fn with_retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// Called for everything the workers do; see [`Workers::with_observer`].
    ///
    /// ```
    /// let options = alm_webhooks::endpoint::WorkerOptions::new()
    ///     .with_observer(|progress| eprintln!("{progress:?}"));
    /// # let _ = options;
    /// ```
    #[must_use]
    pub fn with_observer(
        mut self,
        observer: impl Fn(Progress<'_>) + Send + Sync + 'static,
    ) -> Self {
        self.observer = Some(Arc::new(observer));
        self
    }

    /// `workers` with these options applied.
    fn apply<S: Store, I: Inbox>(self, mut workers: Workers<S, I>) -> Workers<S, I> {
        if let Some(count) = self.count {
            workers = workers.with_count(count);
        }
        if let Some(lease) = self.lease {
            workers = workers.with_lease(lease);
        }
        if let Some(poll) = self.poll {
            workers = workers.with_poll_interval(poll);
        }
        if let Some(retry) = self.retry {
            workers = workers.with_retry(retry);
        }
        if let Some(observer) = self.observer {
            workers = workers.with_observer(move |progress| observer(progress));
        }
        workers
    }
}

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
    /// An inbox's workers must start on a tokio runtime, and `build` was
    /// called outside one.
    #[error("the inbox's workers need a tokio runtime: call build inside one")]
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
    /// tokio runtime the workers need.
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
        let (inbox, pool) = match self.inbox {
            None => (None, None),
            Some((inbox, options)) => {
                if tokio::runtime::Handle::try_current().is_err() {
                    return Err(EndpointError::NoRuntime);
                }
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
        })
    }
}
