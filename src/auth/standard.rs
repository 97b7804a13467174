//! Standard Webhooks signatures (<https://www.standardwebhooks.com>).

use std::fmt;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha2::Sha256;
use time::OffsetDateTime;

use super::AuthError;
use crate::Secret;

/// How far a `webhook-timestamp` may be from now, either way, by default:
/// 5 minutes.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

const MAX_CANDIDATES: usize = 16;
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
    secrets: Vec<Secret>,
    tolerance: Duration,
}

impl fmt::Debug for StandardWebhooksAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StandardWebhooksAuth")
            .field("secrets", &self.secrets.len())
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
            secrets: vec![decode_secret(secret)?],
            tolerance: DEFAULT_TOLERANCE,
        })
    }

    /// Also accepts signatures made with `secret` (for rotation).
    ///
    /// # Errors
    ///
    /// As [`StandardWebhooksAuth::new`].
    pub fn also_accept(mut self, secret: &str) -> Result<Self, InvalidSecret> {
        self.secrets.push(decode_secret(secret)?);
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
        let tag = mac(&self.secrets[0], id, timestamp, body)
            .finalize()
            .into_bytes();
        format!("v1,{}", STANDARD.encode(tag))
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
        let candidates: Vec<Vec<u8>> = signatures
            .split(' ')
            .filter_map(|s| s.strip_prefix("v1,"))
            .take(MAX_CANDIDATES)
            .filter_map(|b64| STANDARD.decode(b64).ok())
            .filter(|tag| tag.len() == 32)
            .collect();
        if candidates.is_empty() {
            return Err(AuthError::Malformed("webhook-signature"));
        }
        let mut matched = false;
        for secret in &self.secrets {
            for candidate in &candidates {
                matched |= mac(secret, id, timestamp, body)
                    .verify_slice(candidate)
                    .is_ok();
            }
        }
        if matched {
            Ok(())
        } else {
            Err(AuthError::SignatureMismatch)
        }
    }
}

fn decode_secret(secret: &str) -> Result<Secret, InvalidSecret> {
    let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
    let bytes = STANDARD.decode(encoded).map_err(|_| InvalidSecret)?;
    if bytes.is_empty() {
        return Err(InvalidSecret);
    }
    Ok(Secret::new(bytes))
}

fn single<'h>(headers: &'h HeaderMap, name: &'static str) -> Result<&'h str, AuthError> {
    let value = headers.get(name).ok_or(AuthError::MissingHeader(name))?;
    if value.len() > MAX_HEADER_BYTES {
        return Err(AuthError::Malformed(name));
    }
    value.to_str().map_err(|_| AuthError::Malformed(name))
}

fn mac(secret: &Secret, id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.expose())
        .expect("HMAC takes keys of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}
