//! Any `webhook-signature` value (`v1a` and `v1` entries) and body under an
//! ed25519 public key: never a panic, and a pass only with the signature
//! the secret key makes for that body.
#![no_main]

use alm_webhooks::auth::StandardWebhooksAuth;
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use time::OffsetDateTime;

const SECRET_KEY: &str = "whsk_AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";
const PUBLIC_KEY: &str = "whpk_ebVWLo/mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ=";

fuzz_target!(|input: (&[u8], &[u8])| {
    let (signature, body) = input;
    let Ok(value) = HeaderValue::from_bytes(signature) else { return };
    let auth = StandardWebhooksAuth::new(PUBLIC_KEY).expect("a valid key");
    let mut headers = HeaderMap::new();
    headers.insert("webhook-id", HeaderValue::from_static("msg_fuzz"));
    headers.insert("webhook-timestamp", HeaderValue::from_static("1614265330"));
    headers.insert("webhook-signature", value.clone());
    let now = OffsetDateTime::from_unix_timestamp(1_614_265_330).expect("a valid time");
    if auth.verify_at(&headers, body, now).is_ok() {
        let signer = StandardWebhooksAuth::new(SECRET_KEY).expect("a valid key");
        let expected = signer.sign("msg_fuzz", 1_614_265_330, body);
        let text = value.to_str().expect("it verified, so it is text");
        assert!(text.split(' ').any(|s| s == expected), "a forged v1a signature passed");
    }
});
