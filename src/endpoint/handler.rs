//! The user's handler, stored once without its type.

use std::future::Future;
use std::sync::Arc;

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
