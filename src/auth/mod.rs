//! Authentication of deliveries: None, Basic, HMAC signature, and Standard
//! Webhooks, all on `&http::HeaderMap` and the raw body bytes.
//!
//! ALM lets an admin pick one of three methods per webhook: None, Basic and
//! Signature. It does not publish the signature's header name or encoding, so
//! [`SignatureAuth`] is configurable, with documented defaults; see
//! [`header_names`] to learn what real deliveries carry.

mod basic;
pub(crate) mod ed25519;
mod from;
pub(crate) mod mac;
pub(crate) mod replay;
mod scheme;
mod secret_encoding;
mod secret_file;
mod signature;
pub(crate) mod signature_text;
mod signed_content;
mod standard;

use http::{HeaderMap, StatusCode};
use time::OffsetDateTime;

pub use basic::BasicAuth;
pub use mac::{SignatureAlgorithm, UnknownAlgorithm};
pub use scheme::{SchemeAlgorithm, SchemeKeyError, SignatureEncoding, SignatureScheme};
pub use secret_encoding::{SecretEncoding, SecretEncodingError, UnknownSecretEncoding};
pub use secret_file::{DEFAULT_SECRET_FIELDS, SecretFileError};
pub use signature::{
    DEFAULT_SIGNATURE_HEADER, DEFAULT_SIGNATURE_TOLERANCE, InvalidPublicKey, SignatureAuth,
};
pub use signed_content::{InvalidSignedContent, SignedContent};
pub use standard::{DEFAULT_TOLERANCE, InvalidSecret, StandardWebhooksAuth};

/// The body of every `401` answer, whatever check failed, so that a caller
/// learns nothing about which one.
///
/// ```
/// use alm_webhooks::auth::{BasicAuth, UNAUTHORIZED_BODY};
/// let err = BasicAuth::new("alm", "pw").verify(&http::HeaderMap::new()).unwrap_err();
/// // Whatever failed, the client gets the same status and body.
/// let (status, body) = (err.status(), UNAUTHORIZED_BODY);
/// assert_eq!((status.as_u16(), body), (401, r#"{"error":"unauthorized"}"#));
/// ```
pub const UNAUTHORIZED_BODY: &str = r#"{"error":"unauthorized"}"#;

/// How deliveries are authenticated.
///
/// ```
/// use alm_webhooks::auth::{Authentication, BasicAuth};
/// use http::HeaderMap;
///
/// let auth = Authentication::Basic(BasicAuth::new("alm", "s3cret:with colon"));
/// let mut headers = HeaderMap::new();
/// headers.insert(http::header::AUTHORIZATION, BasicAuth::header_value("alm", "s3cret:with colon"));
/// assert!(auth.verify(&headers, b"{}").is_ok());
/// assert!(auth.verify(&HeaderMap::new(), b"{}").is_err());
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Authentication {
    /// No authentication (ALM's "None"). Anyone who knows the URL can post.
    None,
    /// HTTP Basic credentials (ALM's "Basic").
    Basic(BasicAuth),
    /// A signature of the raw body, alone or with headers (ALM's
    /// "Signature").
    Signature(SignatureAuth),
    /// Standard Webhooks signatures, for deliveries relayed through a gateway
    /// that signs that way.
    StandardWebhooks(StandardWebhooksAuth),
}

impl Authentication {
    /// Checks a delivery.
    ///
    /// # Errors
    ///
    /// An [`AuthError`] saying which check failed (for your logs; answer the
    /// client with [`UNAUTHORIZED_BODY`]).
    ///
    /// ```
    /// use alm_webhooks::Authentication;
    /// use alm_webhooks::auth::SignatureAuth;
    ///
    /// let signature = SignatureAuth::new("secret");
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("x-alm-signature", signature.sign(b"{}").parse().unwrap());
    /// let auth = Authentication::Signature(signature);
    /// assert!(auth.verify(&headers, b"{}").is_ok());
    /// assert_eq!(auth.verify(&headers, b"{ }").unwrap_err().status(), 401);
    /// assert!(Authentication::None.verify(&http::HeaderMap::new(), b"anything").is_ok());
    /// ```
    pub fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), AuthError> {
        self.verify_at(headers, body, OffsetDateTime::now_utc())
    }

    /// [`Authentication::verify`] with "now" given (for Standard Webhooks
    /// and signatures that sign a timestamp).
    ///
    /// # Errors
    ///
    /// As [`Authentication::verify`].
    ///
    /// ```
    /// use alm_webhooks::Authentication;
    /// use alm_webhooks::auth::{AuthError, StandardWebhooksAuth};
    /// use http::HeaderValue;
    ///
    /// let standard = StandardWebhooksAuth::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("webhook-id", HeaderValue::from_static("msg_1"));
    /// headers.insert("webhook-timestamp", HeaderValue::from_static("1725524713"));
    /// let signature = standard.sign("msg_1", 1725524713, b"{}");
    /// headers.insert("webhook-signature", signature.parse().unwrap());
    /// let auth = Authentication::StandardWebhooks(standard);
    /// let then = time::OffsetDateTime::from_unix_timestamp(1725524713).unwrap();
    /// assert!(auth.verify_at(&headers, b"{}", then).is_ok());
    /// let an_hour_later = then + time::Duration::hours(1);
    /// assert_eq!(auth.verify_at(&headers, b"{}", an_hour_later), Err(AuthError::TimestampOutOfTolerance));
    /// ```
    pub fn verify_at(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<(), AuthError> {
        match self {
            Self::None => Ok(()),
            Self::Basic(basic) => basic.verify(headers),
            Self::Signature(signature) => signature.verify_at(headers, body, now),
            Self::StandardWebhooks(standard) => standard.verify_at(headers, body, now),
        }
    }
}

impl Authentication {
    /// The checks that need only the headers, so a front door can refuse
    /// before it reads (and buffers) the body: Basic credentials in full;
    /// for signatures, that the signature header is there and readable,
    /// the signed headers are present and a configured timestamp is within
    /// the tolerance. Passing is not authentication: the body is checked
    /// by [`Authentication::verify_at`] once read.
    ///
    /// # Errors
    ///
    /// As [`Authentication::verify_at`], except
    /// [`AuthError::SignatureMismatch`], which needs the body.
    ///
    /// ```
    /// use alm_webhooks::Authentication;
    /// use alm_webhooks::auth::{AuthError, SignatureAuth};
    ///
    /// let auth = Authentication::Signature(SignatureAuth::new("secret"));
    /// let now = time::OffsetDateTime::now_utc();
    /// let mut headers = http::HeaderMap::new();
    /// assert_eq!(auth.verify_headers_at(&headers, now), Err(AuthError::MissingHeader("signature")));
    /// headers.insert("x-alm-signature", "ab".repeat(32).parse().unwrap());
    /// assert!(auth.verify_headers_at(&headers, now).is_ok(), "well formed: the body decides");
    /// ```
    pub fn verify_headers_at(
        &self,
        headers: &HeaderMap,
        now: OffsetDateTime,
    ) -> Result<(), AuthError> {
        match self {
            Self::None => Ok(()),
            Self::Basic(basic) => basic.verify(headers),
            Self::Signature(signature) => signature.verify_headers_at(headers, now),
            Self::StandardWebhooks(standard) => standard.verify_headers_at(headers, now),
        }
    }
}

/// Why authentication failed. For server-side logs only: it never contains
/// a header value, a credential, a signature or a secret.
///
/// ```
/// use alm_webhooks::auth::{AuthError, SignatureAuth};
/// let auth = SignatureAuth::new("secret");
/// let mut headers = http::HeaderMap::new();
/// assert_eq!(auth.verify(&headers, b"{}"), Err(AuthError::MissingHeader("signature")));
/// headers.insert("x-alm-signature", auth.sign(b"other body").parse().unwrap());
/// let err = auth.verify(&headers, b"{}").unwrap_err();
/// assert_eq!(err, AuthError::SignatureMismatch);
/// assert_eq!(err.status(), http::StatusCode::UNAUTHORIZED);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// A required header is absent.
    #[error("missing header `{0}`")]
    MissingHeader(&'static str),
    /// The `Authorization` header uses another scheme than `Basic`.
    #[error("the Authorization header is not Basic")]
    WrongScheme,
    /// A header's value could not be decoded (bad base64, no colon, not
    /// UTF-8, too long, no usable signature).
    #[error("malformed header `{0}`")]
    Malformed(&'static str),
    /// The credentials are not among the accepted ones.
    #[error("credentials rejected")]
    BadCredentials,
    /// No signature matches the body under any configured secret.
    #[error("no signature matches")]
    SignatureMismatch,
    /// The signed timestamp is too far from now.
    #[error("timestamp outside the tolerance")]
    TimestampOutOfTolerance,
}

impl AuthError {
    /// The HTTP status this means: always `401 Unauthorized`.
    ///
    /// ```
    /// use alm_webhooks::AuthError;
    /// assert_eq!(AuthError::BadCredentials.status(), http::StatusCode::UNAUTHORIZED);
    /// ```
    pub fn status(&self) -> StatusCode {
        StatusCode::UNAUTHORIZED
    }
}

/// The names (never the values) of a delivery's headers, sorted and without
/// repeats, so you can see what your real ALM deliveries carry and configure
/// the signature header.
///
/// ```
/// let mut headers = http::HeaderMap::new();
/// headers.insert("x-alm-signature", "secret-looking".parse().unwrap());
/// headers.insert("content-type", "application/json".parse().unwrap());
/// assert_eq!(alm_webhooks::auth::header_names(&headers), ["content-type", "x-alm-signature"]);
/// ```
pub fn header_names(headers: &HeaderMap) -> Vec<String> {
    let mut names: Vec<String> = headers.keys().map(|n| n.as_str().to_owned()).collect();
    names.sort();
    names.dedup();
    names
}
