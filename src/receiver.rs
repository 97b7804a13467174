//! The framework-free front door: size check, authentication, then parsing.

use std::fmt;

use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use time::OffsetDateTime;

use crate::auth::{AuthError, Authentication, UNAUTHORIZED_BODY};
use crate::envelope::{account_of_envelope, account_within};
use crate::{AccountId, Envelope, ParseError};

/// The default body size limit: 8 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// The default cap on events in one delivery: 50,000, well above ALM's
/// bulk deliveries (thousands of events). A delivery with more is not an
/// envelope the receiver accepts ([`ParseError::InvalidField`] on
/// `events`): refused whole, or quarantined whole, once, by an
/// [`Endpoint`](crate::Endpoint) that quarantines.
pub const DEFAULT_MAX_EVENTS_PER_DELIVERY: usize = 50_000;

/// Checks and parses deliveries: configured once, used for every request.
///
/// [`DeliveryReceiver::receive`] does, in this order: the size check, authentication
/// on the raw bytes, then parsing. A body that fails authentication is never
/// parsed.
///
/// ```
/// use alm_webhooks::{Authentication, DeliveryReceiver};
/// use alm_webhooks::auth::SignatureAuth;
/// use http::HeaderMap;
///
/// let auth = SignatureAuth::new("my signing secret");
/// let receiver = DeliveryReceiver::new(Authentication::Signature(auth.clone()));
///
/// let body = br#"{"accountId":1234,"events":[]}"#;
/// let mut headers = HeaderMap::new();
/// headers.insert("x-alm-signature", auth.sign(body).parse().unwrap());
/// let envelope = receiver.receive(&headers, body).unwrap();
/// assert_eq!(envelope.account_id.get(), 1234);
///
/// // A wrong signature is a 401, and the body is not even looked at.
/// headers.insert("x-alm-signature", "00".parse().unwrap());
/// let rejection = receiver.receive(&headers, b"not json").unwrap_err();
/// assert_eq!(rejection.status(), http::StatusCode::UNAUTHORIZED);
/// ```
#[derive(Debug, Clone)]
pub struct DeliveryReceiver {
    auth: Authentication,
    max_body_bytes: usize,
    max_events: usize,
}

impl DeliveryReceiver {
    /// A receiver with the given authentication and the default 8 MiB limit.
    pub fn new(auth: impl Into<Authentication>) -> Self {
        Self {
            auth: auth.into(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_events: DEFAULT_MAX_EVENTS_PER_DELIVERY,
        }
    }

    /// Sets the most events one delivery may carry (default
    /// [`DEFAULT_MAX_EVENTS_PER_DELIVERY`]); a delivery with more is
    /// refused whole before any event is parsed.
    ///
    /// ```
    /// use alm_webhooks::{Authentication, DeliveryReceiver};
    /// let receiver = DeliveryReceiver::new(Authentication::None).with_max_events_per_delivery(2);
    /// let body = br#"{"accountId":7,"events":[1,2,3,4,5,6,7,8,9,10]}"#;
    /// let err = receiver.receive(&http::HeaderMap::new(), body).unwrap_err();
    /// assert_eq!(err.to_string(), "delivery refused: field `events`: more than 2 events in one delivery");
    /// assert_eq!(receiver.max_events_per_delivery(), 2);
    /// ```
    #[must_use]
    pub fn with_max_events_per_delivery(mut self, max: usize) -> Self {
        self.max_events = max;
        self
    }

    /// The most events one delivery may carry.
    pub fn max_events_per_delivery(&self) -> usize {
        self.max_events
    }

    /// Sets the largest body accepted, in bytes.
    #[must_use]
    pub fn with_max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = limit;
        self
    }

    /// The largest body accepted, in bytes.
    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    /// The authentication in force.
    pub fn authentication(&self) -> &Authentication {
        &self.auth
    }

    /// Checks a delivery's headers and raw body and parses it.
    ///
    /// # Errors
    ///
    /// A [`DeliveryRejection`] that knows its HTTP status: 413 over the size limit,
    /// 401 for any authentication failure, 400 for a body that is not an
    /// envelope. Problems inside single events are not rejections; they are
    /// reported in [`Envelope::events`].
    ///
    /// ```
    /// use alm_webhooks::auth::BasicAuth;
    /// use alm_webhooks::{Authentication, DeliveryReceiver};
    ///
    /// let receiver = DeliveryReceiver::new(Authentication::Basic(BasicAuth::new("alm", "pw")));
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert(http::header::AUTHORIZATION, BasicAuth::header_value("alm", "pw"));
    /// let envelope = receiver.receive(&headers, br#"{"accountId":1,"events":[]}"#).unwrap();
    /// assert_eq!(envelope.account_id.get(), 1);
    /// // Each refusal knows its status.
    /// assert_eq!(receiver.receive(&headers, b"[]").unwrap_err().status(), 400);
    /// assert_eq!(receiver.receive(&http::HeaderMap::new(), b"{}").unwrap_err().status(), 401);
    /// let small = DeliveryReceiver::new(Authentication::None).with_max_body_bytes(8);
    /// assert_eq!(small.receive(&headers, &[b' '; 9]).unwrap_err().status(), 413);
    /// ```
    pub fn receive(&self, headers: &HeaderMap, body: &[u8]) -> Result<Envelope, DeliveryRejection> {
        self.receive_at(headers, body, OffsetDateTime::now_utc())
    }

    /// [`DeliveryReceiver::receive`] with "now" given, for the timestamp tolerance of
    /// Standard Webhooks signatures.
    ///
    /// # Errors
    ///
    /// As [`DeliveryReceiver::receive`].
    pub fn receive_at(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<Envelope, DeliveryRejection> {
        let result = self.check_and_parse(headers, body, now);
        #[cfg(feature = "tracing")]
        match &result {
            Ok(envelope) => tracing::debug!(
                account_id = envelope.account_id.get(),
                events = envelope.events.len(),
                "delivery accepted"
            ),
            Err(rejection) => refused(headers, rejection),
        }
        result
    }

    /// [`DeliveryReceiver::receive_at`] without typing the events: the
    /// same checks and the same refusals (a body is refused here exactly
    /// when `receive_at` refuses it, with the same error), giving only the
    /// delivery's account. This is all a front door that keeps the raw
    /// body for later (the inbox mode) needs before its `202`; the events
    /// are typed once, when the delivery is processed.
    ///
    /// ```
    /// use alm_webhooks::{Authentication, DeliveryReceiver};
    ///
    /// let receiver = DeliveryReceiver::new(Authentication::None);
    /// let headers = http::HeaderMap::new();
    /// let now = time::OffsetDateTime::now_utc();
    /// let body = br#"{"accountId":7,"events":[{"eventId":"e1","eventName":"X"},{"eventId":3}]}"#;
    /// assert_eq!(receiver.verify_at(&headers, body, now).unwrap().get(), 7);
    /// assert_eq!(receiver.verify_at(&headers, b"[]", now).unwrap_err().status(), 400);
    /// ```
    ///
    /// # Errors
    ///
    /// As [`DeliveryReceiver::receive`].
    pub fn verify_at(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<AccountId, DeliveryRejection> {
        let result = self
            .check_sender(headers, body, now)
            .and_then(|()| self.account_of(body));
        #[cfg(feature = "tracing")]
        match &result {
            Ok(account) => tracing::debug!(account_id = account.get(), "delivery accepted"),
            Err(rejection) => refused(headers, rejection),
        }
        result
    }

    fn check_and_parse(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<Envelope, DeliveryRejection> {
        self.check(headers, body, now)?;
        Envelope::from_slice(body).map_err(DeliveryRejection::BadRequest)
    }

    /// Everything but the parse: the declared and read sizes, the
    /// authentication, the number of events.
    fn check(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<(), DeliveryRejection> {
        self.check_sender(headers, body, now)?;
        self.check_events(body)
    }

    /// The account of an authenticated body, refused exactly as
    /// [`Self::check_events`] then [`Envelope::from_slice`] refuse it. A
    /// body that passes costs one pass (the events counted while the
    /// envelope is checked); only a refused one is read again, by those
    /// two checks in their order, for the same error.
    fn account_of(&self, body: &[u8]) -> Result<AccountId, DeliveryRejection> {
        if let Some(account) = account_within(body, self.max_events) {
            return Ok(account);
        }
        self.check_events(body)?;
        account_of_envelope(body).map_err(DeliveryRejection::BadRequest)
    }

    /// The declared and read sizes, and the authentication.
    fn check_sender(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<(), DeliveryRejection> {
        self.check_declared_length(headers)?;
        if body.len() > self.max_body_bytes {
            return Err(DeliveryRejection::PayloadTooLarge {
                limit: self.max_body_bytes,
            });
        }
        self.auth
            .verify_at(headers, body, now)
            .map_err(DeliveryRejection::Unauthorized)
    }

    /// The cap on events in one delivery.
    fn check_events(&self, body: &[u8]) -> Result<(), DeliveryRejection> {
        if crate::event_count::events_over(body, self.max_events) {
            return Err(DeliveryRejection::BadRequest(ParseError::InvalidField {
                field: "events",
                message: format!("more than {} events in one delivery", self.max_events),
            }));
        }
        Ok(())
    }

    /// [`DeliveryReceiver::receive`] over an [`http::Request`].
    ///
    /// # Errors
    ///
    /// As [`DeliveryReceiver::receive`].
    pub fn receive_request<B: AsRef<[u8]>>(
        &self,
        request: &Request<B>,
    ) -> Result<Envelope, DeliveryRejection> {
        self.receive(request.headers(), request.body().as_ref())
    }

    /// Checks that a body read by an adapter has the length its
    /// `Content-Length` declared (when it declared one): a client that
    /// promised more and hung up early sent an unreadable body.
    ///
    /// # Errors
    ///
    /// [`DeliveryRejection::UnreadableBody`].
    pub fn check_read_length(
        &self,
        headers: &HeaderMap,
        read: usize,
    ) -> Result<(), DeliveryRejection> {
        match declared_length(headers) {
            Some(n) if n != read as u64 => Err(DeliveryRejection::UnreadableBody),
            _ => Ok(()),
        }
    }

    /// Refuses a request whose `Content-Length` already exceeds the limit, so
    /// an adapter can answer 413 before reading the body. A missing or
    /// unreadable `Content-Length` passes: the body's real size is checked
    /// again in [`DeliveryReceiver::receive`].
    ///
    /// # Errors
    ///
    /// [`DeliveryRejection::PayloadTooLarge`].
    pub fn check_declared_length(&self, headers: &HeaderMap) -> Result<(), DeliveryRejection> {
        match declared_length(headers) {
            Some(n) if n > self.max_body_bytes as u64 => Err(DeliveryRejection::PayloadTooLarge {
                limit: self.max_body_bytes,
            }),
            _ => Ok(()),
        }
    }
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
}

/// Why a delivery was refused as a whole, with the HTTP answer it calls for.
#[derive(Debug)]
#[non_exhaustive]
pub enum DeliveryRejection {
    /// The body is larger than the configured limit: `413`.
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// Authentication failed: `401`. The reason is for the server's logs
    /// only; the client always gets [`UNAUTHORIZED_BODY`].
    Unauthorized(AuthError),
    /// The body is not a valid envelope: `400`.
    BadRequest(ParseError),
    /// The body could not be read to its end (the client went away, or the
    /// framework reported an error): `400`.
    UnreadableBody,
}

impl DeliveryRejection {
    /// The HTTP status to answer with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::BadRequest(_) | Self::UnreadableBody => StatusCode::BAD_REQUEST,
        }
    }

    /// The JSON body to answer with. It is safe to send: it never says which
    /// authentication check failed, and quotes nothing secret.
    pub fn body(&self) -> String {
        match self {
            Self::PayloadTooLarge { limit } => {
                format!(r#"{{"error":"payload too large","limitBytes":{limit}}}"#)
            }
            Self::Unauthorized(_) => UNAUTHORIZED_BODY.to_owned(),
            Self::BadRequest(e) => serde_json::json!({
                "error": "invalid envelope",
                "detail": e.to_string(),
            })
            .to_string(),
            Self::UnreadableBody => r#"{"error":"the body could not be read"}"#.to_owned(),
        }
    }

    /// The whole HTTP response: status, `Content-Type: application/json` and
    /// [`DeliveryRejection::body`].
    pub fn to_response(&self) -> Response<String> {
        let mut response = Response::new(self.body());
        *response.status_mut() = self.status();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}

impl fmt::Display for DeliveryRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PayloadTooLarge { limit } => {
                write!(f, "delivery refused: body larger than {limit} bytes")
            }
            Self::Unauthorized(e) => write!(f, "delivery refused: authentication failed: {e}"),
            Self::BadRequest(e) => write!(f, "delivery refused: {e}"),
            Self::UnreadableBody => f.write_str("delivery refused: the body could not be read"),
        }
    }
}

impl std::error::Error for DeliveryRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::PayloadTooLarge { .. } | Self::UnreadableBody => None,
            Self::Unauthorized(e) => Some(e),
            Self::BadRequest(e) => Some(e),
        }
    }
}

/// Logs a refused delivery: its status, the reason and the header names
/// (never their values).
#[cfg(feature = "tracing")]
fn refused(headers: &HeaderMap, rejection: &DeliveryRejection) {
    tracing::info!(
        status = rejection.status().as_u16(),
        reason = %rejection,
        headers = ?crate::auth::header_names(headers),
        "delivery refused"
    );
}
