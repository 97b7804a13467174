//! Signatures of a delivery (ALM's "Signature" method): HMAC-SHA1/256/512
//! or ed25519, over the body or a template of headers and body.

mod verify;

use std::fmt;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::VerifyingKey;
use http::{HeaderMap, HeaderName};

use super::mac::HmacKey;
use super::signature_text::hex;
use super::{AuthError, SignatureAlgorithm, SignedContent, ed25519};
use crate::Secret;

/// The header read by default: `x-alm-signature`. ALM does not publish the
/// name it uses; set yours with [`SignatureAuth::with_header`].
///
/// ```
/// use alm_webhooks::auth::{DEFAULT_SIGNATURE_HEADER, SignatureAuth};
/// assert_eq!(SignatureAuth::new("k").header_name().as_str(), DEFAULT_SIGNATURE_HEADER);
/// ```
pub const DEFAULT_SIGNATURE_HEADER: &str = "x-alm-signature";

/// How far a signed timestamp may be from now, either way, by default.
///
/// ```
/// use std::time::Duration;
/// use alm_webhooks::auth::DEFAULT_SIGNATURE_TOLERANCE;
/// assert_eq!(DEFAULT_SIGNATURE_TOLERANCE, Duration::from_secs(300));
/// ```
pub const DEFAULT_SIGNATURE_TOLERANCE: Duration = Duration::from_secs(300);

/// The longest signature header value looked at.
const MAX_HEADER_BYTES: usize = 8192;

/// An ed25519 public key that is not 32 bytes or not a point on the curve.
///
/// ```
/// use alm_webhooks::auth::{InvalidPublicKey, SignatureAuth};
/// assert_eq!(SignatureAuth::ed25519(&[7; 31]).unwrap_err(), InvalidPublicKey);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an ed25519 public key must be 32 bytes encoding a point on the curve")]
pub struct InvalidPublicKey;

/// Checks a signature of each delivery, in one header.
///
/// By default: HMAC-SHA256 of the exact raw body, keyed with the secret's
/// bytes, read from `x-alm-signature`. Configurable, because ALM does not
/// publish its scheme (`detect` finds it from a captured delivery):
/// the hash ([`SignatureAuth::with_algorithm`]) or ed25519 public keys
/// ([`SignatureAuth::ed25519`]), the header, a required prefix
/// (`sha256=`, `v1,`), the signed content (`{x-timestamp}.{body}`, see
/// [`SignedContent`]) and a timestamp header checked against a tolerance.
///
/// The header's value may be hex (either case) or base64 (standard or
/// URL-safe, padded or not), and may carry several signatures separated by
/// commas or spaces; any valid one passes. Without a configured prefix, an
/// optional `sha256=` (`sha1=`, `sha512=`) is accepted. Several secrets may
/// be configured for rotation. Each secret's HMAC key is prepared once; a
/// check computes one tag per secret and compares it with every candidate in
/// constant time. A candidate must have the full length: an empty or
/// truncated signature never passes.
///
/// ```
/// use alm_webhooks::auth::SignatureAuth;
/// let auth = SignatureAuth::new("It's a Secret to Everybody");
/// let signature = auth.sign(b"Hello, World!");
/// assert_eq!(signature, "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
///
/// let mut headers = http::HeaderMap::new();
/// headers.insert("x-alm-signature", format!("sha256={signature}").parse().unwrap());
/// assert!(auth.verify(&headers, b"Hello, World!").is_ok());
/// assert!(auth.verify(&headers, b"Hello, World?").is_err());
/// ```
///
/// A timestamp signed with the body, and a `v1,` prefix:
///
/// ```
/// use alm_webhooks::auth::SignatureAuth;
/// use http::HeaderName;
///
/// let auth = SignatureAuth::new("k")
///     .with_header(HeaderName::from_static("x-sig"))
///     .with_prefix("v1,")
///     .with_signed_content("{x-ts}.{body}".parse().unwrap())
///     .with_timestamp_header(HeaderName::from_static("x-ts"));
/// let mut headers = http::HeaderMap::new();
/// headers.insert("x-ts", "1725524713".parse().unwrap());
/// let value = auth.sign_request(&headers, b"{}").unwrap();
/// assert!(value.starts_with("v1,"));
/// headers.insert("x-sig", value.parse().unwrap());
/// let now = time::OffsetDateTime::from_unix_timestamp(1725524713).unwrap();
/// assert!(auth.verify_at(&headers, b"{}", now).is_ok());
/// ```
#[derive(Clone)]
pub struct SignatureAuth {
    /// The HMAC secrets.
    secrets: Vec<Secret>,
    /// `secrets`, keyed for `algorithm`.
    keys: Vec<HmacKey>,
    /// The ed25519 public keys.
    public_keys: Vec<VerifyingKey>,
    header: HeaderName,
    algorithm: SignatureAlgorithm,
    prefix: Option<String>,
    signed: SignedContent,
    timestamp: Option<HeaderName>,
    tolerance: Duration,
}

impl fmt::Debug for SignatureAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignatureAuth")
            .field("secrets", &self.secrets.len())
            .field("public_keys", &self.public_keys.len())
            .field("header", &self.header)
            .field("algorithm", &self.algorithm)
            .field("prefix", &self.prefix)
            .field("signed", &self.signed.to_string())
            .field("timestamp", &self.timestamp)
            .field("tolerance", &self.tolerance)
            .finish()
    }
}

impl SignatureAuth {
    /// HMAC-SHA256 with `secret`, read from `x-alm-signature`.
    ///
    /// ```
    /// use alm_webhooks::auth::SignatureAuth;
    /// let auth = SignatureAuth::new("It's a Secret to Everybody");
    /// assert_eq!(auth.header_name(), "x-alm-signature");
    /// assert_eq!(auth.sign(b"Hello, World!").len(), 64);
    /// ```
    pub fn new(secret: impl Into<Secret>) -> Self {
        let mut auth = Self::empty();
        auth = auth.also_accept(secret);
        auth
    }

    /// Ed25519 signatures (64 bytes, verified strictly) under the 32-byte
    /// `public_key`, read from `x-alm-signature`.
    ///
    /// # Errors
    ///
    /// [`InvalidPublicKey`].
    ///
    /// ```
    /// use alm_webhooks::auth::SignatureAuth;
    /// use ed25519_dalek::{Signer, SigningKey};
    ///
    /// let key = SigningKey::from_bytes(&[9; 32]);
    /// let auth = SignatureAuth::ed25519(key.verifying_key().as_bytes()).unwrap();
    /// let hex: String = key.sign(b"{}").to_bytes().iter().map(|b| format!("{b:02x}")).collect();
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("x-alm-signature", hex.parse().unwrap());
    /// assert!(auth.verify(&headers, b"{}").is_ok());
    /// assert_eq!(auth.sign(b"{}"), "", "a public key cannot sign");
    /// ```
    pub fn ed25519(public_key: &[u8]) -> Result<Self, InvalidPublicKey> {
        Self::empty().also_accept_ed25519(public_key)
    }

    fn empty() -> Self {
        Self {
            secrets: Vec::new(),
            keys: Vec::new(),
            public_keys: Vec::new(),
            header: HeaderName::from_static(DEFAULT_SIGNATURE_HEADER),
            algorithm: SignatureAlgorithm::Sha256,
            prefix: None,
            signed: SignedContent::body(),
            timestamp: None,
            tolerance: DEFAULT_SIGNATURE_TOLERANCE,
        }
    }

    /// Reads the signature from another header.
    ///
    /// ```
    /// use alm_webhooks::auth::SignatureAuth;
    /// let auth = SignatureAuth::new("k").with_header(http::HeaderName::from_static("x-signature"));
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("x-signature", auth.sign(b"{}").parse().unwrap());
    /// assert!(auth.verify(&headers, b"{}").is_ok());
    /// ```
    #[must_use]
    pub fn with_header(mut self, name: HeaderName) -> Self {
        self.header = name;
        self
    }

    /// Uses another hash for the HMAC secrets.
    ///
    /// ```
    /// use alm_webhooks::auth::SignatureAuth;
    /// use alm_webhooks::auth::SignatureAlgorithm;
    /// let auth = SignatureAuth::new("k").with_algorithm(SignatureAlgorithm::Sha512);
    /// assert_eq!(auth.sign(b"{}").len(), 128, "64 bytes as hex");
    /// ```
    #[must_use]
    pub fn with_algorithm(mut self, algorithm: SignatureAlgorithm) -> Self {
        self.algorithm = algorithm;
        self.keys = self
            .secrets
            .iter()
            .map(|s| HmacKey::new(algorithm, s.expose()))
            .collect();
        self
    }

    /// Requires this prefix before each signature (`sha256=`, `v1,`,
    /// compared without regard to ASCII case); entries without it are
    /// skipped. A prefix holding a comma keeps entries from being split on
    /// commas.
    ///
    /// ```
    /// use alm_webhooks::auth::SignatureAuth;
    /// let auth = SignatureAuth::new("k").with_prefix("v1=");
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("x-alm-signature", auth.sign(b"{}").parse().unwrap());
    /// assert!(auth.verify(&headers, b"{}").is_err(), "the prefix is required");
    /// headers.insert("x-alm-signature", format!("V1={}", auth.sign(b"{}")).parse().unwrap());
    /// assert!(auth.verify(&headers, b"{}").is_ok());
    /// ```
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into()).filter(|p| !p.is_empty());
        self
    }

    /// Sets what is signed (the body alone by default).
    ///
    /// ```
    /// use alm_webhooks::auth::SignatureAuth;
    /// use alm_webhooks::auth::SignedContent;
    /// let ts = http::HeaderName::from_static("x-ts");
    /// let auth = SignatureAuth::new("k").with_signed_content(SignedContent::header_then_body(ts));
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("x-ts", "1725524713".parse().unwrap());
    /// let value = auth.sign_request(&headers, b"{}").unwrap();
    /// assert_eq!(value, SignatureAuth::new("k").sign(b"1725524713.{}"));
    /// ```
    #[must_use]
    pub fn with_signed_content(mut self, content: SignedContent) -> Self {
        self.signed = content;
        self
    }

    /// Requires `header` to hold a time (epoch seconds, epoch milliseconds
    /// or RFC 3339) within the tolerance of now, against replays.
    ///
    /// ```
    /// use alm_webhooks::auth::SignatureAuth;
    /// let auth = SignatureAuth::new("k").with_timestamp_header(http::HeaderName::from_static("x-ts"));
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("x-alm-signature", auth.sign(b"{}").parse().unwrap());
    /// // No timestamp header: refused, even with a good signature.
    /// assert!(auth.verify(&headers, b"{}").is_err());
    /// ```
    #[must_use]
    pub fn with_timestamp_header(mut self, header: HeaderName) -> Self {
        self.timestamp = Some(header);
        self
    }

    /// Sets how far the timestamp may be from now, either way (5 minutes by
    /// default).
    ///
    /// ```
    /// use alm_webhooks::auth::SignatureAuth;
    /// use std::time::Duration;
    /// let auth = SignatureAuth::new("k")
    ///     .with_timestamp_header(http::HeaderName::from_static("x-ts"))
    ///     .with_tolerance(Duration::from_secs(60));
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("x-ts", "1000".parse().unwrap());
    /// headers.insert("x-alm-signature", auth.sign(b"{}").parse().unwrap());
    /// let at = |s| time::OffsetDateTime::from_unix_timestamp(s).unwrap();
    /// assert!(auth.verify_at(&headers, b"{}", at(1060)).is_ok());
    /// assert!(auth.verify_at(&headers, b"{}", at(1061)).is_err());
    /// ```
    #[must_use]
    pub fn with_tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// The signed timestamp header and its tolerance, when the signature
    /// bounds replays in time.
    pub(crate) fn signed_timestamp(&self) -> Option<(&HeaderName, Duration)> {
        self.timestamp.as_ref().map(|h| (h, self.tolerance))
    }

    /// Also accepts HMAC signatures made with `secret` (for rotation).
    ///
    /// ```
    /// use alm_webhooks::auth::SignatureAuth;
    /// let auth = SignatureAuth::new("old").also_accept("new");
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("x-alm-signature", SignatureAuth::new("old").sign(b"{}").parse().unwrap());
    /// assert!(auth.verify(&headers, b"{}").is_ok());
    /// // `sign` uses the first secret.
    /// assert_eq!(auth.sign(b"{}"), SignatureAuth::new("old").sign(b"{}"));
    /// ```
    #[must_use]
    pub fn also_accept(mut self, secret: impl Into<Secret>) -> Self {
        let secret = secret.into();
        self.keys
            .push(HmacKey::new(self.algorithm, secret.expose()));
        self.secrets.push(secret);
        self
    }

    /// Also accepts ed25519 signatures under the 32-byte `public_key`.
    ///
    /// # Errors
    ///
    /// [`InvalidPublicKey`].
    ///
    /// ```
    /// use alm_webhooks::auth::SignatureAuth;
    /// use ed25519_dalek::{Signer, SigningKey};
    /// use base64::Engine;
    ///
    /// let key = SigningKey::from_bytes(&[7; 32]);
    /// let auth = SignatureAuth::new("hmac secret")
    ///     .also_accept_ed25519(key.verifying_key().as_bytes())
    ///     .unwrap();
    /// let signature = base64::engine::general_purpose::STANDARD.encode(key.sign(b"{}").to_bytes());
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("x-alm-signature", signature.parse().unwrap());
    /// assert!(auth.verify(&headers, b"{}").is_ok());
    /// ```
    pub fn also_accept_ed25519(mut self, public_key: &[u8]) -> Result<Self, InvalidPublicKey> {
        let key = ed25519::public_key_from_bytes(public_key).ok_or(InvalidPublicKey)?;
        self.public_keys.push(key);
        Ok(self)
    }

    /// The header the signature is read from.
    ///
    /// ```
    /// use alm_webhooks::auth::SignatureAuth;
    /// let auth = SignatureAuth::new("k").with_header(http::HeaderName::from_static("x-sig"));
    /// assert_eq!(auth.header_name(), "x-sig");
    /// ```
    pub fn header_name(&self) -> &HeaderName {
        &self.header
    }

    /// The HMAC of `body` alone under the first secret, as lowercase hex
    /// (empty when only public keys are configured: they cannot sign).
    ///
    /// ```
    /// use alm_webhooks::auth::SignatureAuth;
    /// let auth = SignatureAuth::new("key");
    /// assert_eq!(auth.sign(b"The quick brown fox jumps over the lazy dog"),
    ///     "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8");
    /// ```
    pub fn sign(&self, body: &[u8]) -> String {
        self.keys
            .first()
            .map_or_else(String::new, |key| hex(key.tag(&[body]).as_bytes()))
    }

    /// The HMAC of `body` alone under the first secret, as standard base64.
    ///
    /// ```
    /// use alm_webhooks::auth::SignatureAuth;
    /// let auth = SignatureAuth::new("k");
    /// assert_eq!(auth.sign_base64(b"{}").len(), 44, "32 bytes, padded base64");
    /// ```
    pub fn sign_base64(&self, body: &[u8]) -> String {
        self.keys.first().map_or_else(String::new, |key| {
            STANDARD.encode(key.tag(&[body]).as_bytes())
        })
    }

    /// The whole header value for a request: the prefix, then the hex HMAC
    /// of the configured signed content under the first secret.
    ///
    /// # Errors
    ///
    /// As [`SignatureAuth::verify_at`] for a missing signed header;
    /// [`AuthError::SignatureMismatch`] when no HMAC secret is configured.
    ///
    /// ```
    /// use alm_webhooks::auth::SignatureAuth;
    /// let auth = SignatureAuth::new("k").with_prefix("sha256=");
    /// let value = auth.sign_request(&http::HeaderMap::new(), b"{}").unwrap();
    /// assert_eq!(value, format!("sha256={}", auth.sign(b"{}")));
    /// ```
    pub fn sign_request(&self, headers: &HeaderMap, body: &[u8]) -> Result<String, AuthError> {
        let key = self.keys.first().ok_or(AuthError::SignatureMismatch)?;
        let pieces = self.signed.pieces(headers, body)?;
        let tag = hex(key.tag(&pieces).as_bytes());
        Ok(format!("{}{tag}", self.prefix.as_deref().unwrap_or("")))
    }
}
