//! Any bytes as a captured delivery: reading never panics, and detection
//! on what was read never panics and never reports a scheme for a capture
//! that is not signed with the secret.
#![no_main]

use alm_webhooks::Secret;
use alm_webhooks::detect::{CapturedRequest, detect};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|raw: &[u8]| {
    if raw.len() > 64 * 1024 {
        return;
    }
    let Ok(capture) = CapturedRequest::parse(raw) else { return };
    if let Ok(found) = detect(&Secret::from("fuzz-secret"), std::slice::from_ref(&capture)) {
        // A match must verify the capture with the reported scheme.
        let mut scheme = found.scheme;
        scheme.timestamp_header = None;
        let auth = scheme.auth(&Secret::from("fuzz-secret")).expect("the secret decodes");
        assert!(auth.verify(&capture.headers, &capture.body).is_ok());
    }
});
