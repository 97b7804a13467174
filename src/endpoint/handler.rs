//! The user's handler, stored once without its type.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::inbox::{HandlerTimedOut, bounded};
use crate::store::BoxFuture;
use crate::{BoxError, Event};

/// The handler without its type: one `Arc`, cloned into every request and
/// every worker.
pub(super) type Handler =
    Arc<dyn Fn(Event) -> BoxFuture<'static, Result<(), BoxError>> + Send + Sync>;

/// What a handler given to
/// [`EndpointBuilder::handler`](super::EndpointBuilder::handler) returns:
/// `Result<(), BoxError>`, and nothing else, so that a closure's `Ok(())`
/// and `?` need no type annotation. A handler with an error type of its
/// own (`anyhow::Error`, a `thiserror` enum) goes to
/// [`EndpointBuilder::handler_with_error`](super::EndpointBuilder::handler_with_error).
///
/// ```
/// use alm_webhooks::endpoint::HandlerResult;
/// use alm_webhooks::BoxError;
/// let result: Result<(), BoxError> = Err("the CRM is down".into());
/// assert_eq!(result.into_result().unwrap_err().to_string(), "the CRM is down");
/// ```
#[diagnostic::on_unimplemented(
    message = "an endpoint's handler must return `Result<(), BoxError>`, not `{Self}`",
    label = "this handler's result",
    note = "for a handler with an error type of its own (`E: Into<BoxError>`), call \
            `EndpointBuilder::handler_with_error` instead of `handler`"
)]
pub trait HandlerResult: Send + 'static {
    /// The result, its error boxed.
    ///
    /// ```
    /// use alm_webhooks::endpoint::HandlerResult;
    /// let ok: Result<(), alm_webhooks::BoxError> = Ok(());
    /// assert!(ok.into_result().is_ok());
    /// ```
    fn into_result(self) -> Result<(), BoxError>;
}

impl HandlerResult for Result<(), BoxError> {
    fn into_result(self) -> Result<(), BoxError> {
        self
    }
}

/// Erases `handler`'s type. Its error goes to the engine as it is (boxed),
/// which keeps it (for `downcast_ref`) and reports it with its whole
/// `source()` chain ([`EventFailure`](crate::engine::EventFailure)).
pub(super) fn erase<F, Fut, E>(handler: F) -> Handler
where
    F: Fn(Event) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: Into<BoxError>,
{
    Arc::new(move |event| {
        let run = handler(event);
        Box::pin(async move { run.await.map_err(Into::into) })
    })
}

/// `handler` bounded by what remains, at each call, of a delivery's
/// `budget` counted from `started`: past it a handler is cancelled and its
/// event fails with [`HandlerTimedOut`] (inline mode: the answer is a
/// `500` and ALM sends the delivery again).
pub(super) fn within_budget(handler: &Handler, budget: Duration, started: Instant) -> Handler {
    let handler = Arc::clone(handler);
    let deadline = started + budget;
    Arc::new(move |event| {
        let left = deadline.saturating_duration_since(Instant::now());
        let timed_out = HandlerTimedOut::within_budget(left, budget);
        Box::pin(bounded(handler(event), left, timed_out))
    })
}
