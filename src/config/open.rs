//! From a configuration to a running endpoint: the store and the inbox
//! opened ([`Config::open`]), the builder ([`Config::builder`]), and the
//! whole endpoint in one call ([`Config::endpoint`]).

use std::future::Future;
use std::sync::Arc;

use super::{Capture, Config, ConfigError, DEFAULT_SWEEP_EVERY};
use crate::endpoint::{EndpointBuilder, HandlerResult};
use crate::inbox::{AnyInbox, WorkerOptions};
use crate::store::AnyStore;
use crate::{Endpoint, Engine, Event};

/// What [`Config::open`] opened: the engine on its store (`ALM_STORE`,
/// with the learner table unless `ALM_PROJECTION=off`) and the inbox
/// (`ALM_INBOX`, or beside the store).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), alm_webhooks::BoxError> {
/// use alm_webhooks::config::Config;
/// let opened = Config::from_vars([("ALM_STORE", "memory")])?.open().await?;
/// assert_eq!(opened.engine.counters().processed, 0);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Opened {
    /// The engine, on the configured store.
    pub engine: Engine<AnyStore>,
    /// The inbox.
    pub inbox: Arc<AnyInbox>,
}

impl Config {
    /// Opens the store and the inbox, and builds the engine (its lease
    /// and commit batch configured).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Unavailable`] naming `ALM_STORE`, `ALM_PROJECTION`
    /// or `ALM_INBOX` when what it names cannot be opened (the message
    /// shows a URL's scheme alone).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use alm_webhooks::config::Config;
    /// let config = Config::from_vars([("ALM_STORE", "ftp://files.internal")]).unwrap();
    /// let error = config.open().await.unwrap_err();
    /// assert_eq!(error.variable(), Some("ALM_STORE"));
    /// assert!(!error.to_string().contains("files.internal"));
    /// # }
    /// ```
    pub async fn open(&self) -> Result<Opened, ConfigError> {
        let engine = self.store.engine().await?;
        let inbox = self.inbox.open(engine.store()).await?;
        Ok(Opened { engine, inbox })
    }

    /// The workers' options: `ALM_WORKERS`, `ALM_LEASE_SECS`, the retries
    /// and the handler timeout. Add an observer before giving them to
    /// [`Config::builder`].
    ///
    /// ```
    /// use alm_webhooks::config::Config;
    /// let config = Config::from_vars([("ALM_WORKERS", "2")]).unwrap();
    /// let options = config.worker_options().with_observer(|progress| eprintln!("{progress:?}"));
    /// assert!(format!("{options:?}").contains("count: 2"));
    /// ```
    pub fn worker_options(&self) -> WorkerOptions {
        self.inbox.worker_options(self.store.lease)
    }

    /// The endpoint's builder with everything configured but the handler:
    /// the authentication, the body limit, the engine, the inbox with
    /// `workers`, the mode, malformed bodies, the caps on what the inbox
    /// keeps, the admin token, and an hourly sweep
    /// ([`DEFAULT_SWEEP_EVERY`]). Add the handler (and an answer observer)
    /// and build; then [`Config::reconcile`] (feature `alm-api`).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), alm_webhooks::BoxError> {
    /// use alm_webhooks::config::Config;
    /// let config = Config::from_vars([("ALM_MODE", "inline")])?;
    /// let opened = config.open().await?;
    /// let endpoint = config
    ///     .builder(&opened, config.worker_options())
    ///     .handler(|_event| async { Ok(()) })
    ///     .on_answer(|answer| eprintln!("{}", answer.status()))
    ///     .build()?;
    /// assert_eq!(endpoint.mode(), alm_webhooks::endpoint::Mode::Inline);
    /// endpoint.shutdown(std::time::Duration::from_secs(1)).await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder(
        &self,
        opened: &Opened,
        workers: WorkerOptions,
    ) -> EndpointBuilder<AnyStore, AnyInbox> {
        let builder = Endpoint::builder(self.auth.clone())
            .max_body_bytes(self.max_body_bytes)
            .engine(opened.engine.clone())
            .sweep_every(DEFAULT_SWEEP_EVERY)
            .inbox(Arc::clone(&opened.inbox), workers)
            .mode(self.inbox.mode)
            .on_malformed(self.inbox.on_malformed)
            .kept_limits(self.inbox.kept);
        match &self.admin_token {
            Some(token) => builder.admin_token(token.clone()),
            None => builder,
        }
    }

    /// Serves the learner table the store keeps in `endpoint`'s admin API
    /// (`GET /records`, `GET /records.csv`) when `ALM_PROJECTION` is on
    /// (the default); returns whether it does. [`Config::endpoint`] calls
    /// it; call it after [`Config::builder`]'s `build`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), alm_webhooks::BoxError> {
    /// use alm_webhooks::config::Config;
    /// let config = Config::from_vars([("ALM_AUTH", "none")])?;
    /// let opened = config.open().await?;
    /// let endpoint = config
    ///     .builder(&opened, config.worker_options())
    ///     .handler(|_event| async { Ok(()) })
    ///     .build()?;
    /// assert!(config.show_learners(&opened, &endpoint));
    /// # endpoint.shutdown(std::time::Duration::from_secs(1)).await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn show_learners(&self, opened: &Opened, endpoint: &Endpoint) -> bool {
        self.store.projection && endpoint.showing_learners(Arc::new(opened.engine.clone()))
    }

    /// The endpoint, in one call: [`Config::open`], [`Config::builder`]
    /// with `handler`, the learner table in the admin API (`ALM_PROJECTION`,
    /// [`Endpoint::showing_learners`]), and the reconciliation runs `ALM_RECONCILE` asks
    /// for (feature `alm-api`). Needs a tokio runtime (the workers run on
    /// it).
    ///
    /// # Errors
    ///
    /// As [`Config::open`]; [`ConfigError::Endpoint`] when the endpoint
    /// cannot be built (no tokio runtime).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), alm_webhooks::BoxError> {
    /// use alm_webhooks::config::Config;
    /// let config = Config::from_vars([("ALM_AUTH", "none")])?;
    /// let endpoint = config
    ///     .endpoint(|event| async move {
    ///         println!("{} {}", event.event_name, event.event_id);
    ///         Ok(())
    ///     })
    ///     .await?;
    /// let answer = endpoint.handle(&http::HeaderMap::new(), br#"{"accountId":7,"events":[]}"#).await;
    /// assert_eq!(answer.status(), 202);
    /// endpoint.shutdown(std::time::Duration::from_secs(1)).await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn endpoint<F, Fut>(&self, handler: F) -> Result<Endpoint, ConfigError>
    where
        F: Fn(Event) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: HandlerResult,
    {
        let opened = self.open().await?;
        let endpoint = self
            .builder(&opened, self.worker_options())
            .handler(handler)
            .build()?;
        self.show_learners(&opened, &endpoint);
        #[cfg(feature = "alm-api")]
        self.reconcile(&opened, &endpoint)?;
        if let Some(forwarding) = self.forwarding(&opened).await? {
            endpoint.forwarding(forwarding);
        }
        Ok(endpoint)
    }

    /// Starts forwarding the store's outbox to the sinks of `ALM_FORWARD`
    /// (`None` without it): a relay task on the current runtime, stopped
    /// when the returned value is dropped. [`Config::endpoint`] does it and
    /// keeps it with the endpoint ([`Endpoint::forwarding`]); call it
    /// yourself when you build the endpoint with [`Config::builder`].
    ///
    /// # Errors
    ///
    /// When a URL of `ALM_FORWARD` is of no sink this build has or does
    /// not parse.
    pub async fn forwarding(
        &self,
        opened: &Opened,
    ) -> Result<Option<crate::outbox::Forwarding>, ConfigError> {
        use crate::outbox::{AnySink, Forwarding, Relay};
        let Some(urls) = &self.store.forward else {
            return Ok(None);
        };
        let sink = AnySink::from_urls(urls)
            .await
            .map_err(|e| ConfigError::unavailable("ALM_FORWARD", e))?;
        Ok(Some(Forwarding::start(Relay::new(
            opened.engine.clone(),
            sink,
        ))))
    }

    /// The capture `ALM_CAPTURE_DIR` asks for, its folder created and
    /// made private; `None` without it. Build it once and share it.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Unavailable`] naming `ALM_CAPTURE_DIR` when the
    /// folder cannot be made.
    ///
    /// ```
    /// use alm_webhooks::config::Config;
    /// assert!(Config::default().capture().unwrap().is_none());
    /// ```
    pub fn capture(&self) -> Result<Option<Arc<Capture>>, ConfigError> {
        self.capture
            .as_ref()
            .map(|config| Capture::open(config, self.max_body_bytes).map(Arc::new))
            .transpose()
    }

    /// The front door's guard for `endpoint`, with the configured bounds
    /// (`ALM_READ_TIMEOUT_MS`, …); add a summary reporter if you like.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), alm_webhooks::BoxError> {
    /// use alm_webhooks::config::Config;
    /// let config = Config::from_vars([("ALM_READ_TIMEOUT_MS", "4000"), ("ALM_MODE", "inline")])?;
    /// let endpoint = config.endpoint(|_event| async { Ok(()) }).await?;
    /// let guard = config.guard(&endpoint).with_summary(|summary| eprintln!("{summary}"));
    /// assert_eq!(guard.read_timeout().as_secs(), 4);
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(any(feature = "axum", feature = "actix"))]
    #[cfg_attr(docsrs, doc(cfg(any(feature = "axum", feature = "actix"))))]
    pub fn guard(&self, endpoint: &Endpoint) -> crate::endpoint::Guard {
        self.guard.guard(endpoint.receiver())
    }

    /// Starts the reconciliation runs `ALM_RECONCILE` asks for on
    /// `endpoint` (its admin API serves them), every
    /// `ALM_RECONCILE_EVERY`; repairs are appended to the inbox like any
    /// delivery. `false` when `ALM_RECONCILE` is `off`.
    /// [`Config::endpoint`] calls it.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Unavailable`] when ALM's API client cannot be made.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), alm_webhooks::BoxError> {
    /// use alm_webhooks::config::Config;
    /// let config = Config::default();
    /// let opened = config.open().await?;
    /// let endpoint = config.builder(&opened, config.worker_options())
    ///     .handler(|_event| async { Ok(()) })
    ///     .build()?;
    /// assert!(!config.reconcile(&opened, &endpoint)?, "off by default");
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "alm-api")]
    #[cfg_attr(docsrs, doc(cfg(feature = "alm-api")))]
    pub fn reconcile(&self, opened: &Opened, endpoint: &Endpoint) -> Result<bool, ConfigError> {
        let Some(api) = self.reconcile.api()? else {
            return Ok(false);
        };
        let runs = self
            .reconcile
            .runs(api, &opened.engine, &opened.inbox, endpoint.waker());
        Ok(endpoint.reconciling(runs))
    }
}
