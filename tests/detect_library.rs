//! `detect` as a library: ties between equal headers, the JSON shape, and
//! reports that never hold the secret.

use alm_webhooks::Secret;
use alm_webhooks::auth::StandardWebhooksAuth;
use alm_webhooks::detect::{CapturedRequest, detect};

const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const BODY: &str = r#"{"accountId":1,"events":[]}"#;

fn standard_capture(extra: &str) -> CapturedRequest {
    let signature =
        StandardWebhooksAuth::new(WHSEC)
            .unwrap()
            .sign("msg_1", 1_725_524_713, BODY.as_bytes());
    let raw = format!(
        "POST /webhooks HTTP/1.1\r\n{extra}webhook-id: msg_1\r\nwebhook-timestamp: 1725524713\r\n\
         webhook-signature: {signature}\r\n\r\n{BODY}"
    );
    CapturedRequest::parse(raw.as_bytes()).unwrap()
}

#[test]
fn equal_headers_resolve_to_the_ones_named_like_the_signature() {
    // x-alm-timestamp and x-request-id come first and hold the same values
    // as webhook-timestamp and webhook-id: both schemes verify; the one
    // whose headers share the signature header's family is reported.
    let capture = standard_capture("x-alm-timestamp: 1725524713\r\nx-request-id: msg_1\r\n");
    let found = detect(&Secret::from(WHSEC), &[capture]).unwrap();
    assert_eq!(
        found.scheme.signed.to_string(),
        "{webhook-id}.{webhook-timestamp}.{body}"
    );
    assert_eq!(found.scheme.prefix, "v1,");
    assert_eq!(found.scheme.key.as_str(), "whsec");
    assert_eq!(found.scheme.timestamp_header.unwrap(), "webhook-timestamp");
}

#[test]
fn the_json_has_exactly_the_documented_fields() {
    let found = detect(&Secret::from(WHSEC), &[standard_capture("")]).unwrap();
    let json = found.to_json();
    let mut keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "algorithm",
            "encoding",
            "env",
            "header",
            "key",
            "prefix",
            "signed"
        ]
    );
    assert_eq!(
        json["env"],
        serde_json::json!({
            "ALM_AUTH": "signature",
            "ALM_SIGNATURE_HEADER": "webhook-signature",
            "ALM_SIGNATURE_ALGORITHM": "hmac-sha256",
            "ALM_SIGNATURE_PREFIX": "v1,",
            "ALM_SIGNED_CONTENT": "{webhook-id}.{webhook-timestamp}.{body}",
            "ALM_TIMESTAMP_HEADER": "webhook-timestamp",
            "ALM_SECRET_ENCODING": "whsec",
        })
    );
    assert!(found.combinations >= 3, "{}", found.combinations);
    assert!(!json.to_string().contains("MfKQ9r8"));
}

#[test]
fn reports_never_hold_the_secret_or_header_values() {
    let secret = "whsec_c2VjcmV0LXRoYXQtZG9lcy1ub3QtbWF0Y2g=";
    let capture = standard_capture("x-alm-note: plain words here\r\n");
    let no_match = detect(&Secret::from(secret), &[capture]).unwrap_err();
    let text = format!("{no_match}{no_match:?}");
    assert!(!text.contains("c2VjcmV0"), "{text}");
    assert!(
        !text.contains("msg_1") && !text.contains("plain words"),
        "{text}"
    );
    assert!(
        text.contains("webhook-signature: 1 candidate(s) (32 bytes of base64 after \"v1,\""),
        "{text}"
    );
    assert!(text.contains("x-alm-note: not a signature"), "{text}");
    assert!(text.contains("decodes as: as-given, whsec."), "{text}");
    let none = detect(&Secret::from(secret), &[]).unwrap_err();
    assert!(none.to_string().contains("no capture"));
}
