//! Signatures of a delivery (ALM's "Signature" method): HMAC-SHA1/256/512
//! or ed25519, over the body or a template of headers and body.

use std::fmt;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::VerifyingKey;
use http::{HeaderMap, HeaderName};
use time::OffsetDateTime;

use super::hmac_key::{Candidates, HmacKey};
use super::signature_text::{decode_exact, entries, hex, strip_prefix_ignore_case};
use super::{AuthError, SignatureAlgorithm, SignedContent, ed25519};
use crate::{Secret, Timestamp};

/// The header read by default: `x-alm-signature`. ALM does not publish the
/// name it uses; set yours with [`SignatureAuth::with_header`].
pub const DEFAULT_SIGNATURE_HEADER: &str = "x-alm-signature";

/// How far a signed timestamp may be from now, either way, by default.
pub const DEFAULT_SIGNATURE_TOLERANCE: Duration = Duration::from_secs(300);

/// The longest signature header value looked at.
const MAX_HEADER_BYTES: usize = 8192;

/// An ed25519 public key that is not 32 bytes or not a point on the curve.
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
    #[must_use]
    pub fn with_header(mut self, name: HeaderName) -> Self {
        self.header = name;
        self
    }

    /// Uses another hash for the HMAC secrets.
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
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into()).filter(|p| !p.is_empty());
        self
    }

    /// Sets what is signed (the body alone by default).
    #[must_use]
    pub fn with_signed_content(mut self, content: SignedContent) -> Self {
        self.signed = content;
        self
    }

    /// Requires `header` to hold a time (epoch seconds, epoch milliseconds
    /// or RFC 3339) within the tolerance of now, against replays.
    #[must_use]
    pub fn with_timestamp_header(mut self, header: HeaderName) -> Self {
        self.timestamp = Some(header);
        self
    }

    /// Sets how far the timestamp may be from now, either way (5 minutes by
    /// default).
    #[must_use]
    pub fn with_tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// Also accepts HMAC signatures made with `secret` (for rotation).
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
    pub fn also_accept_ed25519(mut self, public_key: &[u8]) -> Result<Self, InvalidPublicKey> {
        let key = ed25519::public_key_from_bytes(public_key).ok_or(InvalidPublicKey)?;
        self.public_keys.push(key);
        Ok(self)
    }

    /// The header the signature is read from.
    pub fn header_name(&self) -> &HeaderName {
        &self.header
    }

    /// The HMAC of `body` alone under the first secret, as lowercase hex
    /// (empty when only public keys are configured: they cannot sign).
    pub fn sign(&self, body: &[u8]) -> String {
        self.keys
            .first()
            .map_or_else(String::new, |key| hex(key.tag(&[body]).as_bytes()))
    }

    /// The HMAC of `body` alone under the first secret, as standard base64.
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
    pub fn sign_request(&self, headers: &HeaderMap, body: &[u8]) -> Result<String, AuthError> {
        let key = self.keys.first().ok_or(AuthError::SignatureMismatch)?;
        let pieces = self.signed.pieces(headers, body)?;
        let tag = hex(key.tag(&pieces).as_bytes());
        Ok(format!("{}{tag}", self.prefix.as_deref().unwrap_or("")))
    }

    /// Checks the signature header against `body`, now.
    ///
    /// # Errors
    ///
    /// As [`SignatureAuth::verify_at`].
    pub fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), AuthError> {
        self.verify_at(headers, body, OffsetDateTime::now_utc())
    }

    /// Checks the signature header against `body`, with "now" given.
    ///
    /// # Errors
    ///
    /// [`AuthError::MissingHeader`], [`AuthError::Malformed`] (no candidate
    /// decodes to a signature of the right length, or a signed header or
    /// the timestamp is unreadable), [`AuthError::TimestampOutOfTolerance`]
    /// or [`AuthError::SignatureMismatch`].
    pub fn verify_at(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<(), AuthError> {
        let (tags, signatures) = self.candidates(headers)?;
        if let Some(header) = &self.timestamp {
            self.check_time(headers, header, now)?;
        }
        let pieces = self.signed.pieces(headers, body)?;
        let hmac = !tags.is_empty() && tags.match_any(&self.keys, &pieces);
        let ed25519 = !hmac
            && !signatures.is_empty()
            && ed25519::verify_any(&self.public_keys, &signatures, &pieces.concat());
        if hmac || ed25519 {
            Ok(())
        } else {
            Err(AuthError::SignatureMismatch)
        }
    }

    fn check_time(
        &self,
        headers: &HeaderMap,
        header: &HeaderName,
        now: OffsetDateTime,
    ) -> Result<(), AuthError> {
        let value = headers
            .get(header)
            .ok_or(AuthError::MissingHeader("timestamp"))?;
        let text = value
            .to_str()
            .map_err(|_| AuthError::Malformed("timestamp"))?;
        let time = match text.parse::<i64>() {
            Ok(n) if text.bytes().all(|b| b.is_ascii_digit()) => Timestamp::from_epoch(n),
            _ => Timestamp::from_rfc3339(text),
        }
        .map_err(|_| AuthError::Malformed("timestamp"))?;
        let distance = (now - time.instant()).unsigned_abs();
        if distance > self.tolerance {
            return Err(AuthError::TimestampOutOfTolerance);
        }
        Ok(())
    }

    /// Decodes the candidate HMAC tags and ed25519 signatures of every
    /// value of the header.
    fn candidates(
        &self,
        headers: &HeaderMap,
    ) -> Result<(Candidates, Vec<ed25519_dalek::Signature>), AuthError> {
        let name = "signature";
        let mut values = headers.get_all(&self.header).iter().peekable();
        if values.peek().is_none() {
            return Err(AuthError::MissingHeader(name));
        }
        let mut tags = Candidates::new();
        let mut signatures = Vec::new();
        let mut total = 0usize;
        let split_commas = !self.prefix.as_deref().unwrap_or("").contains(',');
        let mut looked_at = 0;
        for value in values {
            total += value.len();
            if total > MAX_HEADER_BYTES {
                return Err(AuthError::Malformed(name));
            }
            // A value that is not text carries no signature; others may.
            let Ok(text) = std::str::from_utf8(value.as_bytes()) else {
                continue;
            };
            for entry in entries(text, split_commas) {
                if looked_at == Candidates::MAX {
                    break;
                }
                looked_at += 1;
                let Some(entry) = self.strip_prefix(entry) else {
                    continue;
                };
                if !self.keys.is_empty() {
                    if let Some(tag) = decode_exact(entry, self.algorithm.tag_len()) {
                        tags.push(tag);
                    }
                }
                if !self.public_keys.is_empty() {
                    if let Some(sig) = decode_exact(entry, ed25519::SIGNATURE_LEN)
                        .and_then(|t| ed25519::signature_from_bytes(t.as_bytes()))
                    {
                        signatures.push(sig);
                    }
                }
            }
        }
        if tags.is_empty() && signatures.is_empty() {
            return Err(AuthError::Malformed(name));
        }
        Ok((tags, signatures))
    }

    /// The entry without the configured prefix (`None` when it lacks it),
    /// or without the algorithm's optional one when none is configured.
    fn strip_prefix<'a>(&self, entry: &'a str) -> Option<&'a str> {
        match &self.prefix {
            Some(prefix) => strip_prefix_ignore_case(entry, prefix),
            None => Some(strip_prefix_ignore_case(entry, self.algorithm.prefix()).unwrap_or(entry)),
        }
    }
}
