//! What identifies a signed delivery for the replay cache: a scheme that
//! signs a timestamp accepts a captured delivery again for as long as the
//! timestamp is within the tolerance; remembering what it accepted over
//! that window lets a replay be acknowledged without being kept twice.

use std::time::Duration;

use http::HeaderMap;
use sha2::{Digest, Sha256};

use super::Authentication;

/// A delivery's identity under its scheme and how long to remember it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReplayKey {
    pub(crate) digest: [u8; 32],
    /// Twice the tolerance: a timestamp may be up to the tolerance ahead
    /// of now, and is then accepted for up to the tolerance after.
    pub(crate) window: Duration,
}

impl Authentication {
    /// The identity of an authenticated delivery, for schemes that bound
    /// replays in time: a signature with a signed timestamp (the
    /// timestamp and the body it signs) and Standard Webhooks (its
    /// `webhook-id`, the same for every resend of a message). `None` for
    /// the others: nothing bounds their replays in time, and the store's
    /// event ids tell duplicates apart.
    pub(crate) fn replay_key(&self, headers: &HeaderMap, body: &[u8]) -> Option<ReplayKey> {
        let mut digest = Sha256::new();
        let tolerance = match self {
            Self::Signature(signature) => {
                let (header, tolerance) = signature.signed_timestamp()?;
                digest.update(b"signature\0");
                digest.update(headers.get(header)?.as_bytes());
                digest.update(b"\0");
                digest.update(body);
                tolerance
            }
            Self::StandardWebhooks(standard) => {
                digest.update(b"standard-webhooks\0");
                digest.update(headers.get("webhook-id")?.as_bytes());
                standard.tolerance()
            }
            Self::None | Self::Basic(_) => return None,
        };
        Some(ReplayKey {
            digest: digest.finalize().into(),
            window: tolerance.saturating_mul(2),
        })
    }
}

#[cfg(test)]
mod tests {
    use http::{HeaderName, HeaderValue};

    use super::*;
    use crate::auth::{BasicAuth, SignatureAuth, StandardWebhooksAuth};

    #[test]
    fn only_schemes_that_sign_a_timestamp_have_a_key() {
        let mut headers = HeaderMap::new();
        headers.insert("x-ts", HeaderValue::from_static("1725524713"));
        headers.insert("webhook-id", HeaderValue::from_static("msg_1"));
        let timed = Authentication::Signature(
            SignatureAuth::new("k")
                .with_signed_content("{x-ts}.{body}".parse().unwrap())
                .with_timestamp_header(HeaderName::from_static("x-ts")),
        );
        let key = timed.replay_key(&headers, b"{}").unwrap();
        assert_eq!(key.window, Duration::from_secs(600));
        assert_ne!(key, timed.replay_key(&headers, b"{ }").unwrap());
        let standard = Authentication::StandardWebhooks(
            StandardWebhooksAuth::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap(),
        );
        assert_eq!(
            standard.replay_key(&headers, b"{}"),
            standard.replay_key(&headers, b"another body")
        );
        assert!(standard.replay_key(&headers, b"{}").is_some());
        let untimed = Authentication::Signature(SignatureAuth::new("k"));
        assert!(untimed.replay_key(&headers, b"{}").is_none());
        let basic = Authentication::Basic(BasicAuth::new("u", "p"));
        assert!(basic.replay_key(&headers, b"{}").is_none());
        assert!(Authentication::None.replay_key(&headers, b"{}").is_none());
    }
}
