//! Any `Authorization` value: never a panic; only the configured pair passes.
#![no_main]

use alm_webhooks::auth::BasicAuth;
use base64::Engine;
use http::{HeaderMap, HeaderValue, header};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|value: &[u8]| {
    let Ok(value) = HeaderValue::from_bytes(value) else { return };
    let auth = BasicAuth::new("alm", "pass:word");
    let mut headers = HeaderMap::new();
    headers.insert(header::AUTHORIZATION, value.clone());
    if auth.verify(&headers).is_ok() {
        let text = value.to_str().expect("a passing value is visible ASCII");
        let text = text.trim_matches([' ', '\t']);
        let token = text.split_once([' ', '\t']).map(|(_, t)| t.trim_matches([' ', '\t'])).expect("scheme and token");
        let decoded = base64::engine::general_purpose::STANDARD.decode(token).expect("base64");
        assert_eq!(decoded, b"alm:pass:word");
    }
});
