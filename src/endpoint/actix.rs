//! The actix-web side of [`Endpoint`] and [`Answer`] (feature `actix`).

use std::time::Instant;

use actix_web::body::BoxBody;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, Responder, Scope, web};

use super::{Answer, Endpoint};
use crate::adapters::actix::{convert_headers, read_body};

impl Endpoint {
    /// [`Endpoint::handle`] for an actix-web request: converts the headers,
    /// reads the payload within the limit (`413` as soon as it is over),
    /// then handles it. A whole actix-web receiver:
    ///
    /// ```no_run
    /// use actix_web::{App, HttpRequest, HttpServer, web};
    /// use alm_webhooks::{Answer, Authentication, Endpoint};
    ///
    /// async fn webhooks(request: HttpRequest, payload: web::Payload,
    ///                   endpoint: web::Data<Endpoint>) -> Answer {
    ///     endpoint.handle_actix(&request, payload).await
    /// }
    ///
    /// # async fn run() -> std::io::Result<()> {
    /// let endpoint = web::Data::new(
    ///     Endpoint::builder(Authentication::None)
    ///         .handler(|event| async move {
    ///             println!("{} {}", event.event_name, event.event_id);
    ///             Ok(())
    ///         })
    ///         .build()
    ///         .unwrap(),
    /// );
    /// HttpServer::new(move || {
    ///     App::new()
    ///         .app_data(endpoint.clone())
    ///         .route("/webhooks", web::post().to(webhooks))
    /// })
    /// .bind("127.0.0.1:8080")?
    /// .run()
    /// .await
    /// # }
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "actix")))]
    pub async fn handle_actix(&self, request: &HttpRequest, payload: web::Payload) -> Answer {
        let started = Instant::now();
        let headers = convert_headers(request.headers());
        match read_body(&self.inner.receiver, &headers, payload).await {
            Ok(bytes) => self.handle_since(&headers, &bytes, started).await,
            Err(rejection) => self.refuse(rejection, started),
        }
    }
}

impl Endpoint {
    /// The endpoint mounted in actix-web, in one line: a [`Scope`] at
    /// `prefix` (`""` for the root) serving `POST` on the webhook path
    /// ([`Endpoint::webhook_path`]; another method is `405`), `GET /healthz`, `GET /readyz`
    /// ([`Endpoint::ready`]), `GET /metrics` with the `prometheus` feature
    /// (once [`install_prometheus`](crate::metrics::install_prometheus) is
    /// called) and, with an
    /// [`admin_token`](super::EndpointBuilder::admin_token), the admin
    /// page at `/admin` and its API below it: what
    /// [`Endpoint::router`](Endpoint::router) serves in axum, the webhook
    /// route behind the front door's [`Guard`](super::Guard) with the
    /// library's defaults (its caps count per actix-web worker here: use
    /// [`Endpoint::actix_scope_guarded`] to share one). Keep the routes
    /// other than the webhook's off the public internet.
    ///
    /// ```no_run
    /// use actix_web::{App, HttpServer};
    /// use alm_webhooks::auth::BasicAuth;
    /// use alm_webhooks::Endpoint;
    ///
    /// # async fn run() -> std::io::Result<()> {
    /// let endpoint = Endpoint::builder(BasicAuth::new("alm", "s3cret"))
    ///     .handler(|event| async move {
    ///         println!("{} {}", event.event_name, event.event_id);
    ///         Ok(())
    ///     })
    ///     .build()
    ///     .unwrap();
    /// HttpServer::new(move || App::new().service(endpoint.actix_scope("")))
    ///     .bind("127.0.0.1:8080")?
    ///     .run()
    ///     .await
    /// # }
    /// ```
    ///
    /// ```
    /// # #[actix_web::main]
    /// # async fn main() {
    /// use actix_web::{App, test};
    /// use alm_webhooks::{Authentication, Endpoint};
    ///
    /// let endpoint = Endpoint::builder(Authentication::None)
    ///     .handler(|_event| async { Ok(()) })
    ///     .build()
    ///     .unwrap();
    /// let app = test::init_service(App::new().service(endpoint.actix_scope("/alm"))).await;
    /// let request = test::TestRequest::post()
    ///     .uri("/alm/webhooks")
    ///     .set_payload(r#"{"accountId":7,"events":[]}"#)
    ///     .to_request();
    /// assert_eq!(test::call_service(&app, request).await.status(), 202);
    /// let ready = test::TestRequest::get().uri("/alm/readyz").to_request();
    /// assert_eq!(test::call_service(&app, ready).await.status(), 200);
    /// # }
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "actix")))]
    pub fn actix_scope(&self, prefix: &str) -> Scope {
        self.actix_scope_guarded(prefix, &super::Guard::new(self.receiver()).actix())
    }

    /// [`Endpoint::actix_scope`] with the webhook route behind `guard`
    /// ([`Guard::actix`](super::Guard::actix)) instead of one with the
    /// library's defaults. Build it once, outside `HttpServer::new`'s
    /// closure, so that every actix-web worker shares its caps and its
    /// summary; give actix-web the guard's read timeout and connection cap
    /// too ([`Guard::read_timeout`](super::Guard::read_timeout),
    /// [`Guard::max_connections`](super::Guard::max_connections)).
    ///
    /// ```no_run
    /// use actix_web::{App, HttpServer};
    /// use alm_webhooks::auth::BasicAuth;
    /// use alm_webhooks::endpoint::Guard;
    /// use alm_webhooks::Endpoint;
    ///
    /// # async fn run() -> std::io::Result<()> {
    /// let endpoint = Endpoint::builder(BasicAuth::new("alm", "s3cret"))
    ///     .handler(|_event| async { Ok(()) })
    ///     .build()
    ///     .unwrap();
    /// let guard = Guard::new(endpoint.receiver()).with_max_concurrent_requests(64);
    /// let (timeout, connections) = (guard.read_timeout(), guard.max_connections());
    /// let middleware = guard.actix();
    /// HttpServer::new(move || App::new().service(endpoint.actix_scope_guarded("", &middleware)))
    ///     .client_request_timeout(timeout)
    ///     .max_connections(connections)
    ///     .bind("127.0.0.1:8080")?
    ///     .run()
    ///     .await
    /// # }
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "actix")))]
    pub fn actix_scope_guarded(&self, prefix: &str, guard: &super::GuardMiddleware) -> Scope {
        let webhook = self.clone();
        let ready = self.clone();
        // A resource, so that another method than POST is `405`.
        let mut scope = web::scope(prefix)
            .service(
                web::resource(self.webhook_path()).route(
                    web::post()
                        .to(move |request: HttpRequest, payload: web::Payload| {
                            let endpoint = webhook.clone();
                            async move { endpoint.handle_actix(&request, payload).await }
                        })
                        .wrap(guard.clone()),
                ),
            )
            .route(
                "/healthz",
                web::get().to(|| async { json(StatusCode::OK, r#"{"status":"up"}"#.to_owned()) }),
            )
            .route(
                "/readyz",
                web::get().to(move || {
                    let endpoint = ready.clone();
                    async move {
                        let readiness = endpoint.ready().await;
                        json(status(readiness.status()), readiness.body())
                    }
                }),
            );
        #[cfg(feature = "prometheus")]
        {
            let metrics = self.clone();
            scope = scope.route(
                "/metrics",
                web::get().to(move || {
                    let endpoint = metrics.clone();
                    async move { endpoint.actix_metrics().await }
                }),
            );
        }
        if let Some(admin) = self.admin() {
            let page = admin.clone();
            scope = scope
                .route(
                    "/admin",
                    web::route().to(move |request: HttpRequest, body: web::Bytes| {
                        let admin = page.clone();
                        async move { actix_admin(&admin, &request, "/", &body).await }
                    }),
                )
                .route(
                    "/admin/{rest:.*}",
                    web::route().to(move |request: HttpRequest, body: web::Bytes| {
                        let admin = admin.clone();
                        async move {
                            // With its query: a listing's page is `?after=ID`.
                            let mut below = format!("/{}", request.match_info().query("rest"));
                            if !request.query_string().is_empty() {
                                below = format!("{below}?{}", request.query_string());
                            }
                            actix_admin(&admin, &request, &below, &body).await
                        }
                    }),
                );
        }
        scope
    }

    /// `GET /metrics` of the actix scope.
    #[cfg(feature = "prometheus")]
    async fn actix_metrics(&self) -> HttpResponse {
        let Some(handle) = crate::metrics::installed_prometheus() else {
            return json(
                StatusCode::NOT_FOUND,
                r#"{"error":"no Prometheus recorder: call metrics::install_prometheus at start"}"#
                    .to_owned(),
            );
        };
        self.refresh_inbox_gauges().await;
        HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .body(handle.render())
    }
}

/// One admin call, `below` the scope's `/admin`.
async fn actix_admin(
    admin: &super::EndpointAdmin,
    request: &HttpRequest,
    below: &str,
    body: &[u8],
) -> HttpResponse {
    let method =
        http::Method::from_bytes(request.method().as_str().as_bytes()).unwrap_or(http::Method::GET);
    let headers = crate::adapters::actix::convert_headers(request.headers());
    let response = admin
        .respond_with_body(&method, below, &headers, body)
        .await;
    let mut answer = HttpResponse::build(status(response.status()));
    for (name, value) in response.headers() {
        answer.insert_header((name.as_str(), value.as_bytes()));
    }
    match response.into_body() {
        crate::admin::AdminBody::Chunks(chunks) => answer.streaming(chunks),
        crate::admin::AdminBody::Whole(bytes) => answer.body(bytes),
    }
}

/// An `http` 1 status as actix-web's (`http` 0.2).
fn status(status: http::StatusCode) -> StatusCode {
    StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn json(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/json")
        .body(body)
}

/// The answer as an actix-web response: its status, `Content-Type:
/// application/json`, its `Retry-After` if it has one, and its body.
///
/// ```
/// use actix_web::Responder;
/// use alm_webhooks::{Answer, DeliveryRejection};
/// let request = actix_web::test::TestRequest::default().to_http_request();
/// let response = Answer::Refused(DeliveryRejection::UnreadableBody).respond_to(&request);
/// assert_eq!(response.status().as_u16(), 400);
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "actix")))]
impl Responder for Answer {
    type Body = BoxBody;

    fn respond_to(self, _request: &HttpRequest) -> HttpResponse<Self::Body> {
        let mut response = HttpResponse::build(status(self.status()));
        if let Some(wait) = self.retry_after() {
            response.insert_header(("retry-after", wait.as_secs().to_string()));
        }
        response.content_type("application/json").body(self.body())
    }
}
