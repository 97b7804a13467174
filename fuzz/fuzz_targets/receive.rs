//! `DeliveryReceiver::receive` end to end with arbitrary headers and bodies, for
//! each authentication method: a status every time, never a panic, and an
//! unsigned body never gets past a signing receiver.
#![no_main]

use alm_webhooks::auth::{BasicAuth, SignatureAuth, StandardWebhooksAuth};
use alm_webhooks::{Authentication, DeliveryReceiver, DeliveryRejection};
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (u8, Vec<(Vec<u8>, Vec<u8>)>, &[u8])| {
    let (mode, raw_headers, body) = input;
    let auth = match mode % 4 {
        0 => Authentication::None,
        1 => Authentication::Basic(BasicAuth::new("alm", "secret")),
        2 => Authentication::Signature(SignatureAuth::new("secret")),
        _ => Authentication::StandardWebhooks(
            StandardWebhooksAuth::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("valid"),
        ),
    };
    let receiver = DeliveryReceiver::new(auth).with_max_body_bytes(64 * 1024);
    let mut headers = HeaderMap::new();
    for (name, value) in raw_headers.into_iter().take(32) {
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(&name), HeaderValue::from_bytes(&value)) {
            headers.append(name, value);
        }
    }
    match receiver.receive(&headers, body) {
        Ok(envelope) => {
            assert!(mode % 4 == 0 || mode % 4 == 1, "a forged signature passed");
            let _ = envelope.events.len();
        }
        Err(rejection) => {
            let status = rejection.status().as_u16();
            assert!(matches!(status, 400 | 401 | 413), "{status}");
            if let DeliveryRejection::Unauthorized(_) = rejection {
                assert_eq!(rejection.body(), alm_webhooks::auth::UNAUTHORIZED_BODY);
            }
        }
    }
});
