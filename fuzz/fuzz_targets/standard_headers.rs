//! Any Standard Webhooks headers and body: never a panic; a pass needs the
//! real signature for that id, timestamp and body.
#![no_main]

use alm_webhooks::auth::StandardWebhooksAuth;
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use time::OffsetDateTime;

fuzz_target!(|input: (&[u8], &[u8], &[u8], &[u8])| {
    let (id, timestamp, signature, body) = input;
    let auth = StandardWebhooksAuth::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("a valid secret");
    let mut headers = HeaderMap::new();
    for (name, value) in [("webhook-id", id), ("webhook-timestamp", timestamp), ("webhook-signature", signature)] {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.insert(name, value);
        }
    }
    let now = OffsetDateTime::from_unix_timestamp(1_614_265_330).expect("a valid time");
    if auth.verify_at(&headers, body, now).is_ok() {
        let id = headers["webhook-id"].to_str().expect("checked");
        let ts: i64 = headers["webhook-timestamp"].to_str().expect("checked").parse().expect("checked");
        let expected = auth.sign(id, ts, body);
        assert!(headers["webhook-signature"].to_str().expect("checked").split(' ').any(|s| s == expected));
    }
});
