//! Ready-made [`Signer`]s for each of ALM's authentication methods.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use http::{HeaderName, HeaderValue, header};

use super::Signer;
use crate::auth::{BasicAuth, SignatureAuth, StandardWebhooksAuth};

/// `Authorization: Basic …` with `user` and `password`.
///
/// ```
/// use alm_webhooks::auth::BasicAuth;
/// use alm_webhooks::simulator::signers;
/// let headers = signers::basic("alm", "pw")(b"{}");
/// assert_eq!(headers[0].1, BasicAuth::header_value("alm", "pw"));
/// ```
pub fn basic(user: &str, password: &str) -> Signer {
    let value = BasicAuth::header_value(user, password);
    Arc::new(move |_| vec![(header::AUTHORIZATION, value.clone())])
}

/// An HMAC of the body in `auth`'s header, as lowercase hex.
///
/// ```
/// use alm_webhooks::auth::SignatureAuth;
/// use alm_webhooks::simulator::signers;
/// let auth = SignatureAuth::new("k");
/// let headers = signers::signature(auth.clone())(b"{}");
/// assert_eq!(headers[0].0, "x-alm-signature");
/// assert_eq!(headers[0].1, auth.sign(b"{}").as_str());
/// ```
pub fn signature(auth: SignatureAuth) -> Signer {
    Arc::new(move |body| {
        let mut value =
            HeaderValue::from_str(&auth.sign(body)).unwrap_or(HeaderValue::from_static(""));
        value.set_sensitive(true);
        vec![(auth.header_name().clone(), value)]
    })
}

/// Standard Webhooks headers: a fresh `webhook-id` per request, the
/// current time, and the signature.
///
/// ```
/// use alm_webhooks::auth::StandardWebhooksAuth;
/// use alm_webhooks::simulator::signers;
/// let sign = signers::standard(StandardWebhooksAuth::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap());
/// let names: Vec<_> = sign(b"{}").into_iter().map(|(name, _)| name.to_string()).collect();
/// assert_eq!(names, ["webhook-id", "webhook-timestamp", "webhook-signature"]);
/// ```
pub fn standard(auth: StandardWebhooksAuth) -> Signer {
    let counter = Arc::new(AtomicU64::new(0));
    Arc::new(move |body| {
        let id = format!("msg_sim_{}", counter.fetch_add(1, Ordering::Relaxed));
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let signature = auth.sign(&id, now, body);
        let value = |s: &str| HeaderValue::from_str(s).unwrap_or(HeaderValue::from_static(""));
        vec![
            (HeaderName::from_static("webhook-id"), value(&id)),
            (
                HeaderName::from_static("webhook-timestamp"),
                value(&now.to_string()),
            ),
            (
                HeaderName::from_static("webhook-signature"),
                value(&signature),
            ),
        ]
    })
}
