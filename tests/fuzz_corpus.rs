//! Replays the committed fuzz corpora (`fuzz/corpus/*`) on the stable
//! toolchain, through the same public entry points the fuzz targets drive:
//! every input gets an answer, none panics.

use alm_webhooks::auth::{BasicAuth, SignatureAuth, StandardWebhooksAuth};
use alm_webhooks::{Authentication, DeliveryReceiver, Envelope};
use http::{HeaderMap, HeaderValue};

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = format!("{}/fuzz/corpus/{target}", env!("CARGO_MANIFEST_DIR"));
    let mut inputs: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read(e.path()).ok())
        .collect();
    assert!(!inputs.is_empty(), "{dir} is empty");
    inputs.sort();
    inputs
}

#[test]
fn envelope_corpus() {
    let inputs = corpus("envelope");
    let mut parsed = 0;
    for input in &inputs {
        if let Ok(envelope) = Envelope::from_slice(input) {
            let again = Envelope::from_slice(&serde_json::to_vec(&envelope).unwrap()).unwrap();
            assert_eq!(again.events.len(), envelope.events.len());
            parsed += 1;
        }
    }
    assert!(
        parsed >= 26,
        "the fixtures in the corpus parse ({parsed} of {})",
        inputs.len()
    );
}

#[test]
fn event_corpus() {
    for input in corpus("event") {
        let mut body = br#"{"accountId":1,"events":["#.to_vec();
        body.extend_from_slice(&input);
        body.extend_from_slice(br#",{"eventId":"n","eventName":"X","timestamp":1}]}"#);
        let envelope = Envelope::from_slice(&body).expect("a corpus event makes a valid envelope");
        assert_eq!(envelope.events[1].as_ref().unwrap().event_id.as_str(), "n");
    }
}

#[test]
fn header_and_receive_corpora() {
    let receivers = [
        DeliveryReceiver::new(Authentication::None),
        DeliveryReceiver::new(Authentication::Basic(BasicAuth::new("alm", "pass:word"))),
        DeliveryReceiver::new(Authentication::Signature(SignatureAuth::new("fuzz-secret"))),
        DeliveryReceiver::new(Authentication::StandardWebhooks(
            StandardWebhooksAuth::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap(),
        )),
    ];
    for target in [
        "basic_header",
        "signature_header",
        "standard_headers",
        "receive",
    ] {
        for input in corpus(target) {
            let mut headers = HeaderMap::new();
            if let Ok(value) = HeaderValue::from_bytes(&input) {
                for name in [
                    "authorization",
                    "x-alm-signature",
                    "webhook-id",
                    "webhook-timestamp",
                    "webhook-signature",
                ] {
                    headers.insert(name, value.clone());
                }
            }
            for receiver in &receivers {
                match receiver.receive(&headers, &input) {
                    Ok(_) => {}
                    Err(r) => assert!(matches!(r.status().as_u16(), 400 | 401 | 413)),
                }
            }
        }
    }
}

#[test]
fn standard_v1a_corpus() {
    use time::OffsetDateTime;
    let public = "whpk_ebVWLo/mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ=";
    let signer =
        StandardWebhooksAuth::new("whsk_AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=").unwrap();
    let auth = StandardWebhooksAuth::new(public).unwrap();
    let now = OffsetDateTime::from_unix_timestamp(1_614_265_330).unwrap();
    for input in corpus("standard_v1a") {
        let Ok(value) = HeaderValue::from_bytes(&input) else {
            continue;
        };
        let mut headers = HeaderMap::new();
        headers.insert("webhook-id", HeaderValue::from_static("msg_fuzz"));
        headers.insert("webhook-timestamp", HeaderValue::from_static("1614265330"));
        headers.insert("webhook-signature", value.clone());
        for body in [&input[..], b"{}"] {
            if auth.verify_at(&headers, body, now).is_ok() {
                let expected = signer.sign("msg_fuzz", 1_614_265_330, body);
                assert!(value.to_str().unwrap().split(' ').any(|s| s == expected));
            }
        }
    }
}

#[test]
fn capture_corpus() {
    use alm_webhooks::Secret;
    use alm_webhooks::detect::{CapturedRequest, detect};
    let mut read = 0;
    let mut found = 0;
    for input in corpus("capture") {
        let Ok(capture) = CapturedRequest::parse(&input) else {
            continue;
        };
        read += 1;
        if let Ok(detection) = detect(&Secret::from("fuzz-secret"), std::slice::from_ref(&capture))
        {
            let mut scheme = detection.scheme;
            scheme.timestamp_header = None;
            let auth = scheme.auth(&Secret::from("fuzz-secret")).unwrap();
            assert!(auth.verify(&capture.headers, &capture.body).is_ok());
            found += 1;
        }
    }
    assert_eq!(
        (read, found),
        (4, 2),
        "four seeds read, two signed with the secret (one beside a value that is not text)"
    );
}
