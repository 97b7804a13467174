//! The actix-web side of [`Endpoint`] and [`Answer`] (feature `actix`).

use std::time::Instant;

use actix_web::body::BoxBody;
use actix_web::{HttpRequest, HttpResponse, Responder, web};

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
        match read_body(&self.receiver, &headers, payload).await {
            Ok(bytes) => self.handle_since(&headers, &bytes, started).await,
            Err(rejection) => Self::refuse(rejection, started),
        }
    }
}

/// The answer as an actix-web response: its status, `Content-Type:
/// application/json` and its body.
///
/// ```
/// use actix_web::Responder;
/// use alm_webhooks::{Answer, Rejection};
/// let request = actix_web::test::TestRequest::default().to_http_request();
/// let response = Answer::Refused(Rejection::UnreadableBody).respond_to(&request);
/// assert_eq!(response.status().as_u16(), 400);
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "actix")))]
impl Responder for Answer {
    type Body = BoxBody;

    fn respond_to(self, _request: &HttpRequest) -> HttpResponse<Self::Body> {
        let status = actix_web::http::StatusCode::from_u16(self.status().as_u16())
            .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
        HttpResponse::build(status)
            .content_type("application/json")
            .body(self.body())
    }
}
