//! Standard Webhooks signatures (<https://www.standardwebhooks.com>).

use std::fmt;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;
use time::OffsetDateTime;

use super::AuthError;
use super::SignatureAlgorithm;
use super::hmac_key::{Candidates, HmacKey, Tag};

/// How far a `webhook-timestamp` may be from now, either way, by default:
/// 5 minutes.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

const MAX_HEADER_BYTES: usize = 8192;

/// Checks Standard Webhooks signatures: headers `webhook-id`,
/// `webhook-timestamp` (epoch seconds) and `webhook-signature` (a
/// space-separated list of `v1,<base64>`), HMAC-SHA256 over
/// `{id}.{timestamp}.{body}`, with secrets in `whsec_<base64>` form.
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
#[derive(Clone)]
pub struct StandardWebhooksAuth {
    /// The secrets, keyed for HMAC-SHA256.
    keys: Vec<HmacKey>,
    tolerance: Duration,
}

impl fmt::Debug for StandardWebhooksAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StandardWebhooksAuth")
            .field("secrets", &self.keys.len())
            .field("tolerance", &self.tolerance)
            .finish()
    }
}

/// Why a Standard Webhooks secret could not be read. Never shows the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a Standard Webhooks secret must be `whsec_` followed by base64")]
pub struct InvalidSecret;

impl StandardWebhooksAuth {
    /// Reads a `whsec_<base64>` secret (the prefix may be left out).
    ///
    /// # Errors
    ///
    /// [`InvalidSecret`] when the rest is not base64 or is empty.
    pub fn new(secret: &str) -> Result<Self, InvalidSecret> {
        Ok(Self {
            keys: vec![decode_secret(secret)?],
            tolerance: DEFAULT_TOLERANCE,
        })
    }

    /// Also accepts signatures made with `secret` (for rotation).
    ///
    /// # Errors
    ///
    /// As [`StandardWebhooksAuth::new`].
    pub fn also_accept(mut self, secret: &str) -> Result<Self, InvalidSecret> {
        self.keys.push(decode_secret(secret)?);
        Ok(self)
    }

    /// Sets how far the timestamp may be from now, either way.
    #[must_use]
    pub fn tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// The `webhook-signature` value (`v1,<base64>`) for a message under the
    /// first secret.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let timestamp = timestamp.to_string();
        let tag = self.keys[0].tag(&signed_content(id, &timestamp, body));
        format!("v1,{}", STANDARD.encode(tag.as_bytes()))
    }

    /// Checks a delivery against the current time.
    ///
    /// # Errors
    ///
    /// As [`StandardWebhooksAuth::verify_at`].
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
    pub fn verify_at(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<(), AuthError> {
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
        let mut candidates = Candidates::new();
        for b64 in signatures
            .split(' ')
            .filter_map(|s| s.strip_prefix("v1,"))
            .take(Candidates::MAX)
        {
            if let Some(tag) = decode_tag(b64) {
                candidates.push(tag);
            }
        }
        if candidates.is_empty() {
            return Err(AuthError::Malformed("webhook-signature"));
        }
        // The signed content carries the timestamp as the sender formats it
        // (no leading zeros); the header text is that, unless it was padded.
        let canonical;
        let timestamp_text = if timestamp_text.len() > 1 && timestamp_text.starts_with('0') {
            canonical = timestamp.to_string();
            &canonical
        } else {
            timestamp_text
        };
        if candidates.match_any(&self.keys, &signed_content(id, timestamp_text, body)) {
            Ok(())
        } else {
            Err(AuthError::SignatureMismatch)
        }
    }
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
