//! [`EndpointBuilder`]'s hooks for what is mounted beside the webhook
//! route: who hears of every answer, and the admin API's token.

use super::Answer;
use super::builder::EndpointBuilder;
use crate::admin::AdminToken;
use crate::inbox::Inbox;
use crate::store::Store;

impl<S: Store, I: Inbox> EndpointBuilder<S, I> {
    /// Calls `observer` with every answer the endpoint gives (after it is
    /// counted, before it is sent): to log outages, or to print inline
    /// decisions ([`Answer::report`]). Keep it quick: it runs inside the
    /// request. Requests the front-door guard refuses before the endpoint
    /// sees them are summarised by the guard instead
    /// ([`Guard::with_summary`](super::Guard::with_summary), feature `axum`).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::sync::{Arc, Mutex};
    /// use alm_webhooks::{Authentication, Endpoint};
    ///
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = Arc::clone(&seen);
    /// let endpoint = Endpoint::builder(Authentication::None)
    ///     .handler(|_event| async { Ok(()) })
    ///     .on_answer(move |answer| log.lock().unwrap().push(answer.to_string()))
    ///     .build()
    ///     .unwrap();
    /// endpoint.handle(&http::HeaderMap::new(), b"not json").await;
    /// assert!(seen.lock().unwrap()[0].starts_with("400"));
    /// # }
    /// ```
    #[must_use]
    pub fn on_answer(mut self, observer: impl Fn(&Answer) + Send + Sync + 'static) -> Self {
        self.on_answer = Some(std::sync::Arc::new(observer));
        self
    }

    /// Serves the admin API and page under `/admin` in
    /// [`Endpoint::router`](super::Endpoint::router) (feature `axum`) and
    /// [`Endpoint::actix_scope`](super::Endpoint::actix_scope) (feature
    /// `actix`), for callers carrying `token` (read a configured one with
    /// [`AdminToken::parse`]). Without it they serve no admin route; mount
    /// it elsewhere with [`Endpoint::admin_router`](super::Endpoint::admin_router).
    /// Needs an inbox (the API lists and replays what it keeps).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::sync::Arc;
    /// use alm_webhooks::admin::AdminToken;
    /// use alm_webhooks::inbox::WorkerOptions;
    /// use alm_webhooks::inbox::MemoryInbox;
    /// use alm_webhooks::{Authentication, Endpoint};
    ///
    /// let token = AdminToken::parse("0123456789abcdef0123456789abcdef").unwrap();
    /// let endpoint = Endpoint::builder(Authentication::None)
    ///     .inbox(Arc::new(MemoryInbox::new()), WorkerOptions::new())
    ///     .admin_token(token)
    ///     .handler(|_event| async { Ok(()) })
    ///     .build()
    ///     .unwrap();
    /// assert!(endpoint.admin().is_some());
    /// # endpoint.shutdown(std::time::Duration::from_secs(1)).await;
    /// # }
    /// ```
    #[must_use]
    pub fn admin_token(mut self, token: AdminToken) -> Self {
        self.admin_token = Some(token);
        self
    }

    /// The path of the webhook route in
    /// [`Endpoint::router`](super::Endpoint::router) and
    /// [`Endpoint::actix_scope`](super::Endpoint::actix_scope) (default
    /// [`DEFAULT_WEBHOOK_PATH`](super::DEFAULT_WEBHOOK_PATH), `/webhooks`);
    /// a missing leading `/` is added.
    ///
    /// ```
    /// use alm_webhooks::{Authentication, Endpoint};
    /// let endpoint = Endpoint::builder(Authentication::None)
    ///     .webhook_path("/hooks/alm")
    ///     .handler(|_event| async { Ok(()) })
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(endpoint.webhook_path(), "/hooks/alm");
    /// ```
    #[must_use]
    pub fn webhook_path(mut self, path: impl Into<String>) -> Self {
        let path = path.into();
        self.webhook_path = if path.starts_with('/') {
            path
        } else {
            format!("/{path}")
        };
        self
    }
}
