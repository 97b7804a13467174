//! [`EndpointBuilder`]'s bounds: how long the handlers of an inline
//! delivery and an append may take, how many events one delivery may
//! carry, and how much the inbox may keep.

use std::time::Duration;

use super::builder::EndpointBuilder;
use super::kept::KeptLimits;
use crate::inbox::Inbox;
use crate::store::Store;

impl<S: Store, I: Inbox> EndpointBuilder<S, I> {
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

    /// Inline mode: how long the handlers of one delivery may run, together,
    /// counted from when the request came in (default
    /// [`DEFAULT_INLINE_BUDGET`](super::DEFAULT_INLINE_BUDGET), 4 s; ALM hangs up after 5 s). A handler
    /// still running when the budget is spent is cancelled and its event
    /// fails with [`HandlerTimedOut`](crate::inbox::HandlerTimedOut): the
    /// answer is a `500` and ALM sends the delivery again (the events
    /// already processed are duplicates then). The inbox's workers use
    /// [`WorkerOptions::with_handler_timeout`](crate::inbox::WorkerOptions::with_handler_timeout) instead.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::time::Duration;
    /// use alm_webhooks::{Authentication, Endpoint};
    /// let endpoint = Endpoint::builder(Authentication::None)
    ///     .inline_budget(Duration::from_millis(100))
    ///     .handler(|_event| async { std::future::pending::<()>().await; Ok(()) })
    ///     .build()
    ///     .unwrap();
    /// let body = br#"{"accountId":7,"events":[{"eventId":"e1","eventName":"LEARNING_OBJECT_DRAFT",
    ///   "timestamp":1725519188,"data":{"loId":"course:1","loType":"course"}}]}"#;
    /// let answer = endpoint.handle(&http::HeaderMap::new(), body).await;
    /// assert_eq!(answer.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
    /// let error = answer.report().unwrap().outcomes[0].error_message().unwrap();
    /// assert!(error.starts_with("handler timed out after"), "{error}");
    /// # }
    /// ```
    #[must_use]
    pub fn inline_budget(mut self, budget: Duration) -> Self {
        self.inline_budget = budget;
        self
    }

    /// How long the endpoint waits for the inbox to keep a delivery (an
    /// append, or a malformed body put in quarantine) before it answers
    /// `503`: [`Endpoint::APPEND_TIMEOUT`](super::Endpoint::APPEND_TIMEOUT) (2 s) unless set. ALM gives up
    /// on an answer after 5 s and sends the delivery again; an inbox that
    /// hangs (a network that drops packets) must not hold the request
    /// until then. The inbox's own calls have their own, longer bounds
    /// (see [`PostgresInbox::CALL_TIMEOUT`](crate::inbox::PostgresInbox::CALL_TIMEOUT)
    /// with the `postgres` feature).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use alm_webhooks::inbox::WorkerOptions;
    /// use alm_webhooks::inbox::MemoryInbox;
    /// use alm_webhooks::{Authentication, Endpoint};
    ///
    /// let endpoint = Endpoint::builder(Authentication::None)
    ///     .inbox(Arc::new(MemoryInbox::new()), WorkerOptions::new())
    ///     .append_timeout(Duration::from_millis(1500))
    ///     .handler(|_event| async { Ok(()) })
    ///     .build()?;
    /// # endpoint.shutdown(Duration::from_secs(1)).await;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn append_timeout(mut self, timeout: Duration) -> Self {
        self.append_timeout = timeout;
        self
    }

    /// The caps on dead letters and quarantined bodies the inbox keeps, in
    /// all and per account (default [`KeptLimits::new`]): at a cap, new
    /// deliveries (of the account, for its own caps) are answered `503`
    /// with `Retry-After` until a person replays or discards what is kept.
    ///
    /// ```
    /// use alm_webhooks::endpoint::KeptLimits;
    /// use alm_webhooks::{Authentication, Endpoint};
    /// let limits = KeptLimits::new().with_max_dead_letters(1_000).with_max_dead_letters_per_account(250);
    /// let endpoint = Endpoint::builder(Authentication::None)
    ///     .kept_limits(limits)
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

    /// How many accepted deliveries are remembered against replays
    /// (default
    /// [`DEFAULT_MAX_REMEMBERED_DELIVERIES`](super::DEFAULT_MAX_REMEMBERED_DELIVERIES),
    /// 100,000; `0` remembers none). Under a scheme that signs a
    /// timestamp (Standard Webhooks, or a signature with a signed
    /// timestamp header), a delivery accepted again within twice the
    /// tolerance is answered `202` and neither kept nor processed again;
    /// past the cap the oldest are forgotten first.
    ///
    /// ```
    /// use alm_webhooks::{Authentication, Endpoint};
    /// let endpoint = Endpoint::builder(Authentication::None)
    ///     .max_remembered_deliveries(10_000)
    ///     .handler(|_event| async { Ok(()) })
    ///     .build()
    ///     .unwrap();
    /// # let _ = endpoint;
    /// ```
    #[must_use]
    pub fn max_remembered_deliveries(mut self, max: usize) -> Self {
        self.max_remembered = max;
        self
    }
}
