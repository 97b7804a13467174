//! The admin API as an `axum::Router` (feature `axum`).

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use http::{HeaderMap, Method, Uri};

use super::AdminApi;
use crate::inbox::Inbox;

/// The admin page and API as a router to nest under a path of your own
/// (for an [`Endpoint`](crate::Endpoint)'s own inbox, engine and workers,
/// [`Endpoint::admin_router`](crate::Endpoint::admin_router) is shorter):
/// the page at the prefix itself (`GET /ops/alm`), the API below it
/// (`GET /ops/alm/inbox`, `POST /ops/alm/dead-letters/{id}/replay`…, see
/// the [module docs](super)). The page calls the API relative to its own
/// address, so any prefix works. Add your own guards (network policy, a
/// `tower` layer) around it: the token is the API's last line, not its
/// only one.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::sync::Arc;
/// use alm_webhooks::admin::{self, AdminApi, AdminToken};
/// use alm_webhooks::inbox::{MemoryInbox, Workers};
/// use alm_webhooks::Engine;
///
/// let engine = Engine::in_memory();
/// let inbox = Arc::new(MemoryInbox::new());
/// let pool = Workers::new(engine.clone(), Arc::clone(&inbox))
///     .start(|_event| async { Ok(()) });
/// let api = AdminApi::new(inbox, AdminToken::new("a-long-random-token"))
///     .counting(&engine)
///     .waking(pool.waker());
/// let app: axum::Router = axum::Router::new().nest("/ops/alm", admin::router(api));
/// # let _ = app;
/// # }
/// ```
pub fn router<I: Inbox>(api: AdminApi<I>) -> Router {
    Router::new()
        .route("/", axum::routing::any(handle::<I>))
        .route("/{*rest}", axum::routing::any(handle::<I>))
        .with_state(api)
}

async fn handle<I: Inbox>(
    State(api): State<AdminApi<I>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    api.respond_with_body(&method, path, &headers, &body)
        .await
        .map(Body::new)
}
