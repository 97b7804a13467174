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

/// Erases `handler`'s type. Its error goes to the engine as it is, which
/// keeps it (for `downcast_ref`) and reports it with its whole `source()`
/// chain ([`EventFailure`](crate::engine::EventFailure)).
pub(super) fn erase<F, Fut>(handler: F) -> Handler
where
    F: Fn(Event) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
{
    Arc::new(move |event| Box::pin(handler(event)))
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
