//! Standard Webhooks signatures (<https://www.standardwebhooks.com>).

use std::fmt;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use http::HeaderMap;
use time::OffsetDateTime;

use super::AuthError;
use super::SignatureAlgorithm;
use super::ed25519;
use super::mac::{Candidates, HmacKey, Tag};

/// How far a `webhook-timestamp` may be from now, either way, by default:
/// 5 minutes.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(alm_webhooks::auth::DEFAULT_TOLERANCE, Duration::from_secs(300));
/// ```
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

const MAX_HEADER_BYTES: usize = 8192;

/// Checks Standard Webhooks signatures: headers `webhook-id`,
/// `webhook-timestamp` (epoch seconds) and `webhook-signature` (a
/// space-separated list of `v1,<base64>` and `v1a,<base64>`), over
/// `{id}.{timestamp}.{body}`:
///
/// - `v1`: HMAC-SHA256, with secrets in `whsec_<base64>` form;
/// - `v1a`: ed25519 (verified strictly), with public keys in `whpk_<base64>`
///   form. A `whsk_<base64>` secret key verifies too, and signs (for tests
///   and simulators).
///
/// Keys of both kinds may be mixed, for rotation or for a move from one to
/// the other; a delivery passes when any of its signatures is valid under a
/// key of its kind.
///
/// ```
/// use alm_webhooks::auth::StandardWebhooksAuth;
/// use time::OffsetDateTime;
///
/// let auth = StandardWebhooksAuth::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
/// let body = br#"{"test": 2432232314}"#;
/// let signature = auth.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
/// assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
///
/// let mut headers = http::HeaderMap::new();
/// headers.insert("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek".parse().unwrap());
/// headers.insert("webhook-timestamp", "1614265330".parse().unwrap());
/// headers.insert("webhook-signature", signature.parse().unwrap());
/// let now = OffsetDateTime::from_unix_timestamp(1614265330).unwrap();
/// assert!(auth.verify_at(&headers, body, now).is_ok());
/// ```
///
/// With an ed25519 public key (`v1a`):
///
/// ```
/// use alm_webhooks::auth::StandardWebhooksAuth;
/// use time::OffsetDateTime;
///
/// // The sender's secret key; the receiver only needs the public one.
/// let sender = StandardWebhooksAuth::new("whsk_AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=").unwrap();
/// let receiver = StandardWebhooksAuth::new("whpk_ebVWLo/mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ=").unwrap();
/// let body = br#"{"accountId":1,"events":[]}"#;
/// let mut headers = http::HeaderMap::new();
/// headers.insert("webhook-id", "msg_1".parse().unwrap());
/// headers.insert("webhook-timestamp", "1614265330".parse().unwrap());
/// headers.insert("webhook-signature", sender.sign("msg_1", 1614265330, body).parse().unwrap());
/// let now = OffsetDateTime::from_unix_timestamp(1614265330).unwrap();
/// assert!(receiver.verify_at(&headers, body, now).is_ok());
/// assert!(receiver.verify_at(&headers, b"{}", now).is_err());
/// ```
#[derive(Clone)]
pub struct StandardWebhooksAuth {
    /// The `whsec_` secrets, keyed for HMAC-SHA256 (`v1`).
    keys: Vec<HmacKey>,
    /// The ed25519 public keys (`v1a`), from `whpk_` and `whsk_` keys.
    public_keys: Vec<VerifyingKey>,
    /// The first `whsk_` key, to sign `v1a`.
    signing_key: Option<SigningKey>,
    tolerance: Duration,
}

impl fmt::Debug for StandardWebhooksAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StandardWebhooksAuth")
            .field("secrets", &self.keys.len())
            .field("public_keys", &self.public_keys.len())
            .field("signs_v1a", &self.signing_key.is_some())
            .field("tolerance", &self.tolerance)
            .finish()
    }
}

/// Why a Standard Webhooks key could not be read. Never shows the key.
///
/// ```
/// use alm_webhooks::auth::{InvalidSecret, StandardWebhooksAuth};
/// assert_eq!(StandardWebhooksAuth::new("whsec_not base64!").unwrap_err(), InvalidSecret);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a Standard Webhooks key must be `whsec_` followed by base64, `whpk_` followed by \
     the base64 of a 32-byte ed25519 public key, or `whsk_` followed by the base64 of \
     an ed25519 secret key"
)]
pub struct InvalidSecret;

impl StandardWebhooksAuth {
    /// Reads one key: a `whsec_<base64>` secret (the prefix may be left
    /// out) for `v1`, a `whpk_<base64>` ed25519 public key for `v1a`, or a
    /// `whsk_<base64>` ed25519 secret key (32-byte seed, or 64-byte seed and
    /// public key) that verifies and signs `v1a`.
    ///
    /// # Errors
    ///
    /// [`InvalidSecret`] when the rest is not base64, is empty, or is not a
    /// valid ed25519 key.
    ///
    /// ```
    /// use alm_webhooks::auth::StandardWebhooksAuth;
    /// assert!(StandardWebhooksAuth::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_ok());
    /// assert!(StandardWebhooksAuth::new("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_ok(), "the prefix may be left out");
    /// assert!(StandardWebhooksAuth::new("whpk_AAAA").is_err(), "not a 32-byte key");
    /// ```
    pub fn new(secret: &str) -> Result<Self, InvalidSecret> {
        let auth = Self {
            keys: Vec::new(),
            public_keys: Vec::new(),
            signing_key: None,
            tolerance: DEFAULT_TOLERANCE,
        };
        auth.also_accept(secret)
    }

    /// Also accepts signatures made with `secret`, of either kind (for
    /// rotation).
    ///
    /// # Errors
    ///
    /// As [`StandardWebhooksAuth::new`].
    ///
    /// ```
    /// use alm_webhooks::auth::StandardWebhooksAuth;
    /// # fn headers(id: &str, ts: i64, signature: &str) -> http::HeaderMap {
    /// #     let mut h = http::HeaderMap::new();
    /// #     h.insert("webhook-id", id.parse().unwrap());
    /// #     h.insert("webhook-timestamp", ts.to_string().parse().unwrap());
    /// #     h.insert("webhook-signature", signature.parse().unwrap());
    /// #     h
    /// # }
    /// let old = StandardWebhooksAuth::new("whsec_b2xk").unwrap();
    /// let auth = StandardWebhooksAuth::new("whsec_bmV3").unwrap().also_accept("whsec_b2xk").unwrap();
    /// let h = headers("m", 1000, &old.sign("m", 1000, b"{}"));
    /// let at = time::OffsetDateTime::from_unix_timestamp(1000).unwrap();
    /// assert!(auth.verify_at(&h, b"{}", at).is_ok());
    /// ```
    pub fn also_accept(mut self, secret: &str) -> Result<Self, InvalidSecret> {
        if secret.starts_with("whpk_") {
            let key = ed25519::public_key_from_text(secret).ok_or(InvalidSecret)?;
            self.public_keys.push(key);
        } else if secret.starts_with("whsk_") {
            let key = ed25519::signing_key_from_text(secret).ok_or(InvalidSecret)?;
            self.public_keys.push(key.verifying_key());
            self.signing_key.get_or_insert(key);
        } else {
            self.keys.push(decode_secret(secret)?);
        }
        Ok(self)
    }

    /// Sets how far the timestamp may be from now, either way.
    ///
    /// ```
    /// use alm_webhooks::auth::StandardWebhooksAuth;
    /// # fn headers(id: &str, ts: i64, signature: &str) -> http::HeaderMap {
    /// #     let mut h = http::HeaderMap::new();
    /// #     h.insert("webhook-id", id.parse().unwrap());
    /// #     h.insert("webhook-timestamp", ts.to_string().parse().unwrap());
    /// #     h.insert("webhook-signature", signature.parse().unwrap());
    /// #     h
    /// # }
    /// use std::time::Duration;
    /// let auth = StandardWebhooksAuth::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap()
    ///     .with_tolerance(Duration::from_secs(10));
    /// let h = headers("m", 1000, &auth.sign("m", 1000, b"{}"));
    /// let at = |s| time::OffsetDateTime::from_unix_timestamp(s).unwrap();
    /// assert!(auth.verify_at(&h, b"{}", at(1010)).is_ok());
    /// assert!(auth.verify_at(&h, b"{}", at(1011)).is_err());
    /// ```
    #[must_use]
    pub fn with_tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// How far a timestamp may be from now.
    pub(crate) fn tolerance(&self) -> Duration {
        self.tolerance
    }

    /// The `webhook-signature` value for a message: `v1,<base64>` under the
    /// first `whsec_` secret and `v1a,<base64>` under the first `whsk_` key,
    /// separated by a space, for those configured. Public keys cannot sign:
    /// with only those, the value is empty (and verifies nowhere).
    ///
    /// ```
    /// use alm_webhooks::auth::StandardWebhooksAuth;
    /// # fn headers(id: &str, ts: i64, signature: &str) -> http::HeaderMap {
    /// #     let mut h = http::HeaderMap::new();
    /// #     h.insert("webhook-id", id.parse().unwrap());
    /// #     h.insert("webhook-timestamp", ts.to_string().parse().unwrap());
    /// #     h.insert("webhook-signature", signature.parse().unwrap());
    /// #     h
    /// # }
    /// // The Standard Webhooks specification's test vector.
    /// let auth = StandardWebhooksAuth::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    /// let body = br#"{"test": 2432232314}"#;
    /// assert_eq!(auth.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
    ///     "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    /// ```
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let timestamp = timestamp.to_string();
        let parts = signed_content(id, &timestamp, body);
        let mut out = Vec::with_capacity(2);
        if let Some(key) = self.keys.first() {
            out.push(format!(
                "v1,{}",
                STANDARD.encode(key.tag(&parts).as_bytes())
            ));
        }
        if let Some(key) = &self.signing_key {
            let signature = key.sign(&parts.concat());
            out.push(format!("v1a,{}", STANDARD.encode(signature.to_bytes())));
        }
        out.join(" ")
    }

    /// Checks a delivery against the current time.
    ///
    /// # Errors
    ///
    /// As [`StandardWebhooksAuth::verify_at`].
    ///
    /// ```
    /// use alm_webhooks::auth::StandardWebhooksAuth;
    /// # fn headers(id: &str, ts: i64, signature: &str) -> http::HeaderMap {
    /// #     let mut h = http::HeaderMap::new();
    /// #     h.insert("webhook-id", id.parse().unwrap());
    /// #     h.insert("webhook-timestamp", ts.to_string().parse().unwrap());
    /// #     h.insert("webhook-signature", signature.parse().unwrap());
    /// #     h
    /// # }
    /// let auth = StandardWebhooksAuth::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    /// let now = time::OffsetDateTime::now_utc().unix_timestamp();
    /// let h = headers("msg_1", now, &auth.sign("msg_1", now, b"{}"));
    /// assert!(auth.verify(&h, b"{}").is_ok());
    /// ```
    pub fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), AuthError> {
        self.verify_at(headers, body, OffsetDateTime::now_utc())
    }

    /// Checks a delivery, with "now" given.
    ///
    /// # Errors
    ///
    /// [`AuthError::MissingHeader`] or [`AuthError::Malformed`] for absent or
    /// unreadable headers (a timestamp that is negative, not a number or out
    /// of range is malformed), [`AuthError::TimestampOutOfTolerance`], or
    /// [`AuthError::SignatureMismatch`].
    ///
    /// ```
    /// use alm_webhooks::auth::StandardWebhooksAuth;
    /// # fn headers(id: &str, ts: i64, signature: &str) -> http::HeaderMap {
    /// #     let mut h = http::HeaderMap::new();
    /// #     h.insert("webhook-id", id.parse().unwrap());
    /// #     h.insert("webhook-timestamp", ts.to_string().parse().unwrap());
    /// #     h.insert("webhook-signature", signature.parse().unwrap());
    /// #     h
    /// # }
    /// let auth = StandardWebhooksAuth::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    /// let h = headers("msg_1", 1614265330, &auth.sign("msg_1", 1614265330, b"{}"));
    /// let then = time::OffsetDateTime::from_unix_timestamp(1614265330).unwrap();
    /// assert!(auth.verify_at(&h, b"{}", then).is_ok());
    /// assert!(auth.verify_at(&h, b"{ }", then).is_err());
    /// ```
    pub fn verify_at(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<(), AuthError> {
        let (id, timestamp_text, timestamp, candidates, ed25519_candidates) =
            self.read_headers(headers, now)?;
        // The signed content carries the timestamp as the sender formats it
        // (no leading zeros); the header text is that, unless it was padded.
        let canonical;
        let timestamp_text = if timestamp_text.len() > 1 && timestamp_text.starts_with('0') {
            canonical = timestamp.to_string();
            &canonical
        } else {
            timestamp_text
        };
        let parts = signed_content(id, timestamp_text, body);
        let v1 = !candidates.is_empty() && candidates.match_any(&self.keys, &parts);
        let v1a = !v1
            && !ed25519_candidates.is_empty()
            && !self.public_keys.is_empty()
            && ed25519::verify_any(&self.public_keys, &ed25519_candidates, &parts.concat());
        if v1 || v1a {
            Ok(())
        } else {
            Err(AuthError::SignatureMismatch)
        }
    }
}

impl StandardWebhooksAuth {
    /// The checks that need only the headers (all three present, the
    /// timestamp within the tolerance, at least one readable signature),
    /// for a front door that refuses before reading the body.
    pub(crate) fn verify_headers_at(
        &self,
        headers: &HeaderMap,
        now: OffsetDateTime,
    ) -> Result<(), AuthError> {
        self.read_headers(headers, now).map(drop)
    }

    /// The id, the timestamp (as sent and as a number) and the candidate
    /// signatures, once the timestamp is within the tolerance.
    #[allow(clippy::type_complexity)]
    fn read_headers<'h>(
        &self,
        headers: &'h HeaderMap,
        now: OffsetDateTime,
    ) -> Result<(&'h str, &'h str, i64, Candidates, Vec<Signature>), AuthError> {
        let id = single(headers, "webhook-id")?;
        let timestamp_text = single(headers, "webhook-timestamp")?;
        let timestamp: i64 = timestamp_text
            .parse()
            .ok()
            .filter(|t: &i64| *t >= 0 && timestamp_text.bytes().all(|b| b.is_ascii_digit()))
            .ok_or(AuthError::Malformed("webhook-timestamp"))?;
        let signatures = single(headers, "webhook-signature")?;
        let distance = (i128::from(now.unix_timestamp()) - i128::from(timestamp)).unsigned_abs();
        if distance > u128::from(self.tolerance.as_secs()) {
            return Err(AuthError::TimestampOutOfTolerance);
        }
        let (candidates, ed25519_candidates) = parse_signatures(signatures);
        if candidates.is_empty() && ed25519_candidates.is_empty() {
            return Err(AuthError::Malformed("webhook-signature"));
        }
        Ok((
            id,
            timestamp_text,
            timestamp,
            candidates,
            ed25519_candidates,
        ))
    }
}

/// Reads a `webhook-signature` value: its `v1` tags and `v1a` signatures,
/// at most [`Candidates::MAX`] entries looked at; others (unknown versions,
/// bad base64, wrong lengths) are skipped.
pub(crate) fn parse_signatures(value: &str) -> (Candidates, Vec<Signature>) {
    let mut tags = Candidates::new();
    let mut signatures = Vec::new();
    for entry in value.split(' ').take(Candidates::MAX) {
        if let Some(b64) = entry.strip_prefix("v1,") {
            if let Some(tag) = decode_tag(b64) {
                tags.push(tag);
            }
        } else if let Some(b64) = entry.strip_prefix("v1a,") {
            if let Some(signature) = decode_signature(b64) {
                signatures.push(signature);
            }
        }
    }
    (tags, signatures)
}

/// A 64-byte ed25519 signature from standard base64 (88 characters).
fn decode_signature(b64: &str) -> Option<Signature> {
    if b64.len() != 88 {
        return None;
    }
    let mut buffer = [0u8; 66];
    let len = STANDARD.decode_slice(b64, &mut buffer).ok()?;
    ed25519::signature_from_bytes(&buffer[..len])
}

fn decode_secret(secret: &str) -> Result<HmacKey, InvalidSecret> {
    let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
    let bytes = crate::Secret::new(STANDARD.decode(encoded).map_err(|_| InvalidSecret)?);
    if bytes.expose().is_empty() {
        return Err(InvalidSecret);
    }
    Ok(HmacKey::new(SignatureAlgorithm::Sha256, bytes.expose()))
}

/// A 32-byte tag from standard base64 (at most 44 characters).
fn decode_tag(b64: &str) -> Option<Tag> {
    if b64.len() > 44 {
        return None;
    }
    let mut buffer = [0u8; 48];
    let len = STANDARD.decode_slice(b64, &mut buffer).ok()?;
    (len == 32).then(|| Tag::from_slice(&buffer[..len]))?
}

fn single<'h>(headers: &'h HeaderMap, name: &'static str) -> Result<&'h str, AuthError> {
    let value = headers.get(name).ok_or(AuthError::MissingHeader(name))?;
    if value.len() > MAX_HEADER_BYTES {
        return Err(AuthError::Malformed(name));
    }
    value.to_str().map_err(|_| AuthError::Malformed(name))
}

/// The signed content, `{id}.{timestamp}.{body}`, as the parts to stream
/// into the MAC (the body is not copied).
fn signed_content<'a>(id: &'a str, timestamp: &'a str, body: &'a [u8]) -> [&'a [u8]; 5] {
    [id.as_bytes(), b".", timestamp.as_bytes(), b".", body]
}
