//! [`Endpoint::router`]: the endpoint mounted in axum in one line, with
//! the routes an operator needs beside it (feature `axum`).

use std::fmt;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{MethodRouter, get, post_service};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};

use super::{Endpoint, EndpointAdmin, Guard};
use crate::admin::AdminToken;

/// The content type of `/metrics` (the Prometheus text format 0.0.4).
#[cfg(feature = "prometheus")]
const METRICS_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A change to the webhook route, applied inside the guard.
type MapWebhook = Box<dyn FnOnce(MethodRouter) -> MethodRouter + Send>;

/// What [`Endpoint::router`] mounts, to change before it does:
/// [`Endpoint::routes`], then [`Routes::into_router`].
///
/// ```
/// use std::time::Duration;
/// use alm_webhooks::endpoint::Guard;
/// use alm_webhooks::{Authentication, Endpoint};
///
/// let endpoint = Endpoint::builder(Authentication::None)
///     .handler(|_event| async { Ok(()) })
///     .build()
///     .unwrap();
/// let guard = Guard::new(endpoint.receiver()).with_read_timeout(Duration::from_secs(8));
/// let app: axum::Router = endpoint.routes().guard(guard).into_router();
/// # let _ = app;
/// ```
pub struct Routes {
    endpoint: Endpoint,
    guard: Guard,
    map_webhook: Vec<MapWebhook>,
}

impl fmt::Debug for Routes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Routes")
            .field("endpoint", &self.endpoint)
            .field("guard", &self.guard)
            .field("map_webhook", &self.map_webhook.len())
            .finish()
    }
}

impl Routes {
    /// The front-door guard on the webhook route (default: [`Guard::new`]
    /// over the endpoint's receiver, the library's bounds). Serve the
    /// router with [`Guard::serve`] for its header read timeout and
    /// connection cap.
    ///
    /// ```
    /// # use alm_webhooks::{Authentication, Endpoint, endpoint::Guard};
    /// # let endpoint = Endpoint::builder(Authentication::None)
    /// #     .handler(|_event| async { Ok(()) }).build().unwrap();
    /// let guard = Guard::new(endpoint.receiver()).with_max_concurrent_requests(64);
    /// let app: axum::Router = endpoint.routes().guard(guard).into_router();
    /// # let _ = app;
    /// ```
    #[must_use]
    pub fn guard(mut self, guard: Guard) -> Self {
        self.guard = guard;
        self
    }

    /// Changes the webhook route before the guard wraps it, such as a
    /// layer of your own that sees only what passed the guard's header
    /// checks (`route_layer`). Called in order.
    ///
    /// ```
    /// # use alm_webhooks::{Authentication, Endpoint};
    /// # let endpoint = Endpoint::builder(Authentication::None)
    /// #     .handler(|_event| async { Ok(()) }).build().unwrap();
    /// let app: axum::Router = endpoint
    ///     .routes()
    ///     .map_webhook(|route| {
    ///         route.route_layer(axum::middleware::map_response(|response: axum::response::Response| async {
    ///             eprintln!("webhook answered {}", response.status());
    ///             response
    ///         }))
    ///     })
    ///     .into_router();
    /// # let _ = app;
    /// ```
    #[must_use]
    pub fn map_webhook(
        mut self,
        change: impl FnOnce(MethodRouter) -> MethodRouter + Send + 'static,
    ) -> Self {
        self.map_webhook.push(Box::new(change));
        self
    }

    /// The router: `POST` on the webhook path
    /// ([`Endpoint::webhook_path`]) behind the guard (other methods get
    /// `405`); `GET /healthz` (`200 {"status":"up"}`); `GET /readyz`
    /// ([`Endpoint::ready`]: `200`, or `503` naming what failed); `GET
    /// /metrics` with the `prometheus` feature (the text format, the inbox
    /// gauges refreshed at each scrape; `404` until
    /// [`install_prometheus`](crate::metrics::install_prometheus) is
    /// called); and, with an
    /// [`admin_token`](super::EndpointBuilder::admin_token), the admin page
    /// at `/admin` and its API below it. Only the webhook route is
    /// authenticated by the endpoint: keep the others off the public
    /// internet (a load balancer, Kubernetes and Prometheus reach them on
    /// the private network).
    ///
    /// ```
    /// # use alm_webhooks::{Authentication, Endpoint};
    /// # let endpoint = Endpoint::builder(Authentication::None)
    /// #     .handler(|_event| async { Ok(()) }).build().unwrap();
    /// let app: axum::Router = endpoint.routes().into_router();
    /// # let _ = app;
    /// ```
    pub fn into_router(self) -> Router {
        let endpoint = self.endpoint;
        let mut webhook = post_service(endpoint.clone());
        for change in self.map_webhook {
            webhook = change(webhook);
        }
        let webhook = webhook.route_layer(self.guard.layer());
        let mut operator = Router::new()
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz));
        #[cfg(feature = "prometheus")]
        {
            operator = operator.route("/metrics", get(metrics));
        }
        if let Some(admin) = endpoint.admin() {
            operator = operator.nest("/admin", admin_routes(admin));
        }
        Router::new()
            .route(endpoint.webhook_path(), webhook)
            .merge(operator.with_state(endpoint))
    }
}

impl Endpoint {
    /// The endpoint mounted in axum, in one line: the webhook route behind
    /// the front-door [`Guard`] with the library's bounds, `/healthz`,
    /// `/readyz`, `/metrics` (feature `prometheus`) and the admin API
    /// when a token was given (see [`Routes::into_router`]). Merge it into
    /// your app, or serve it as it is; [`Endpoint::routes`] changes the
    /// guard or the webhook route first.
    ///
    /// ```no_run
    /// use alm_webhooks::auth::SignatureAuth;
    /// use alm_webhooks::Endpoint;
    ///
    /// # async fn run() -> Result<(), alm_webhooks::BoxError> {
    /// let endpoint = Endpoint::builder(SignatureAuth::new("signing secret"))
    ///     .handler(|event| async move {
    ///         println!("{} {}", event.event_name, event.event_id);
    ///         Ok(())
    ///     })
    ///     .build()?;
    /// let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
    /// axum::serve(listener, endpoint.router()).await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use alm_webhooks::{Authentication, Endpoint};
    /// use tower::ServiceExt;
    ///
    /// let endpoint = Endpoint::builder(Authentication::None)
    ///     .handler(|_event| async { Ok(()) })
    ///     .build()
    ///     .unwrap();
    /// let ready = http::Request::get("/readyz").body(axum::body::Body::empty()).unwrap();
    /// let response = endpoint.router().oneshot(ready).await.unwrap();
    /// assert_eq!(response.status(), 200);
    /// # }
    /// ```
    pub fn router(&self) -> Router {
        self.routes().into_router()
    }

    /// What [`Endpoint::router`] mounts, to change before it does.
    ///
    /// ```
    /// # use alm_webhooks::{Authentication, Endpoint};
    /// # let endpoint = Endpoint::builder(Authentication::None)
    /// #     .handler(|_event| async { Ok(()) }).build().unwrap();
    /// let app: axum::Router = endpoint.routes().into_router();
    /// # let _ = app;
    /// ```
    pub fn routes(&self) -> Routes {
        Routes {
            endpoint: self.clone(),
            guard: Guard::new(self.receiver()),
            map_webhook: Vec::new(),
        }
    }

    /// The admin page (at the router's root) and API (below it) for
    /// callers carrying `token`, to nest where you like, behind guards of
    /// your own; `None` without an inbox. See [`admin`](crate::admin).
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
    /// let endpoint = Endpoint::builder(Authentication::None)
    ///     .inbox(Arc::new(MemoryInbox::new()), WorkerOptions::new())
    ///     .handler(|_event| async { Ok(()) })
    ///     .build()
    ///     .unwrap();
    /// let admin = endpoint.admin_router(AdminToken::new("s3cret")).unwrap();
    /// let app: axum::Router = endpoint.router().nest("/ops/alm", admin);
    /// # let _ = app;
    /// # endpoint.shutdown(std::time::Duration::from_secs(1)).await;
    /// # }
    /// ```
    pub fn admin_router(&self, token: AdminToken) -> Option<Router> {
        Some(admin_routes(self.admin_with(token)?))
    }
}

/// The admin page and API over `admin`, for any outer state.
fn admin_routes<S: Clone + Send + Sync + 'static>(admin: EndpointAdmin) -> Router<S> {
    Router::new()
        .route("/", axum::routing::any(admin_call))
        .route("/{*rest}", axum::routing::any(admin_call))
        .with_state(admin)
}

async fn admin_call(
    State(admin): State<EndpointAdmin>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    // With its query: a listing's page is `?after=ID`.
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    admin
        .respond_with_body(&method, path, &headers, &body)
        .await
        .map(Body::new)
}

fn json(status: StatusCode, body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

async fn healthz() -> Response {
    json(StatusCode::OK, r#"{"status":"up"}"#.to_owned())
}

async fn readyz(State(endpoint): State<Endpoint>) -> Response {
    let readiness = endpoint.ready().await;
    #[cfg(feature = "tracing")]
    if !readiness.is_ready() {
        tracing::warn!(readiness = %readiness.body(), "not ready");
    }
    json(readiness.status(), readiness.body())
}

#[cfg(feature = "prometheus")]
async fn metrics(State(endpoint): State<Endpoint>) -> Response {
    let Some(handle) = crate::metrics::installed_prometheus() else {
        return json(
            StatusCode::NOT_FOUND,
            r#"{"error":"no Prometheus recorder: call metrics::install_prometheus at start"}"#
                .to_owned(),
        );
    };
    endpoint.refresh_inbox_gauges().await;
    let mut response = Response::new(Body::from(handle.render()));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(METRICS_TYPE));
    response
}
