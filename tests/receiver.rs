//! The front door: size check, then authentication, then parsing.

use alm_webhooks::auth::{BasicAuth, SignatureAuth, StandardWebhooksAuth, UNAUTHORIZED_BODY};
use alm_webhooks::{AuthError, Authentication, DeliveryReceiver, DeliveryRejection, ParseError};
use http::{HeaderMap, Request, StatusCode, header};

const BODY: &[u8] = br#"{"accountId":1234,"events":[{"eventId":"e1","eventName":"LEARNING_OBJECT_DRAFT","timestamp":1725519188,"data":{"loId":"course:1","loType":"course"}}]}"#;

fn signed(auth: &SignatureAuth, body: &[u8]) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("x-alm-signature", auth.sign(body).parse().unwrap());
    h
}

#[test]
fn accepts_a_signed_delivery() {
    let auth = SignatureAuth::new("k");
    let receiver = DeliveryReceiver::new(Authentication::Signature(auth.clone()));
    let envelope = receiver.receive(&signed(&auth, BODY), BODY).unwrap();
    assert_eq!(envelope.account_id.get(), 1234);
    assert_eq!(envelope.parsed().next().unwrap().event_id.as_str(), "e1");
    let request = Request::post("/webhooks")
        .header("x-alm-signature", auth.sign(BODY))
        .body(BODY.to_vec())
        .unwrap();
    assert_eq!(receiver.receive_request(&request).unwrap(), envelope);
}

#[test]
fn authentication_comes_before_parsing() {
    let auth = SignatureAuth::new("k");
    let receiver = DeliveryReceiver::new(Authentication::Signature(auth));
    // Not JSON, not signed: 401, not 400.
    let rejection = receiver
        .receive(&HeaderMap::new(), b"not json at all")
        .unwrap_err();
    assert_eq!(rejection.status(), StatusCode::UNAUTHORIZED);
    assert!(matches!(
        rejection,
        DeliveryRejection::Unauthorized(AuthError::MissingHeader(_))
    ));
    // Signed but not an envelope: 400 with a message safe to return.
    let good = SignatureAuth::new("k");
    let body = br#"{"accountId":"x","events":[]}"#;
    let rejection = receiver.receive(&signed(&good, body), body).unwrap_err();
    assert_eq!(rejection.status(), StatusCode::BAD_REQUEST);
    let json: serde_json::Value = serde_json::from_str(&rejection.body()).unwrap();
    assert_eq!(json["error"], "invalid envelope");
    assert!(
        json["detail"]
            .as_str()
            .unwrap()
            .starts_with("field `accountId`")
    );
    assert!(matches!(
        rejection,
        DeliveryRejection::BadRequest(ParseError::InvalidField {
            field: "accountId",
            ..
        })
    ));
}

#[test]
fn every_authentication_failure_gives_the_same_answer() {
    let basic = DeliveryReceiver::new(Authentication::Basic(BasicAuth::new("u", "p")));
    let signature = DeliveryReceiver::new(Authentication::Signature(SignatureAuth::new("k")));
    let standard = DeliveryReceiver::new(Authentication::StandardWebhooks(
        StandardWebhooksAuth::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap(),
    ));
    let mut wrong_basic = HeaderMap::new();
    wrong_basic.insert(header::AUTHORIZATION, BasicAuth::header_value("u", "wrong"));
    let mut bearer = HeaderMap::new();
    bearer.insert(header::AUTHORIZATION, "Bearer x".parse().unwrap());
    let mut bad_sig = HeaderMap::new();
    bad_sig.insert("x-alm-signature", "00".repeat(32).parse().unwrap());
    let rejections = [
        basic.receive(&HeaderMap::new(), BODY).unwrap_err(),
        basic.receive(&wrong_basic, BODY).unwrap_err(),
        basic.receive(&bearer, BODY).unwrap_err(),
        signature.receive(&HeaderMap::new(), BODY).unwrap_err(),
        signature.receive(&bad_sig, BODY).unwrap_err(),
        standard.receive(&HeaderMap::new(), BODY).unwrap_err(),
    ];
    for r in &rejections {
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(r.body(), UNAUTHORIZED_BODY);
        let response = r.to_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.body(), UNAUTHORIZED_BODY);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    }
}

#[test]
fn body_limit_exactly_at_and_one_over() {
    let receiver = DeliveryReceiver::new(Authentication::None).with_max_body_bytes(BODY.len());
    assert!(receiver.receive(&HeaderMap::new(), BODY).is_ok());
    let mut over = BODY.to_vec();
    over.push(b' ');
    let rejection = receiver.receive(&HeaderMap::new(), &over).unwrap_err();
    assert_eq!(rejection.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        rejection.body(),
        format!(
            r#"{{"error":"payload too large","limitBytes":{}}}"#,
            BODY.len()
        )
    );
    // The size is checked before authentication: an oversized unsigned body is a 413.
    let signed_receiver = DeliveryReceiver::new(Authentication::Signature(SignatureAuth::new("k")))
        .with_max_body_bytes(10);
    assert_eq!(
        signed_receiver
            .receive(&HeaderMap::new(), BODY)
            .unwrap_err()
            .status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(
        DeliveryReceiver::new(Authentication::None).max_body_bytes(),
        8 * 1024 * 1024
    );
}

#[test]
fn declared_length_is_checked_first_and_never_trusted() {
    let receiver = DeliveryReceiver::new(Authentication::None).with_max_body_bytes(100);
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_LENGTH, "101".parse().unwrap());
    assert!(matches!(
        receiver.check_declared_length(&h),
        Err(DeliveryRejection::PayloadTooLarge { limit: 100 })
    ));
    h.insert(header::CONTENT_LENGTH, "5".parse().unwrap());
    assert!(receiver.check_declared_length(&h).is_ok());
    // A lying Content-Length does not let a large body through.
    let big = vec![b' '; 101];
    assert_eq!(
        receiver.receive(&h, &big).unwrap_err().status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );
    h.insert(header::CONTENT_LENGTH, "not a number".parse().unwrap());
    assert!(receiver.check_declared_length(&h).is_ok());
}

#[test]
fn event_errors_are_not_rejections() {
    let receiver = DeliveryReceiver::new(Authentication::None);
    let body = br#"{"accountId":1,"events":[{"eventId":"bad"},{"eventId":"ok","eventName":"X","timestamp":1}]}"#;
    let envelope = receiver.receive(&HeaderMap::new(), body).unwrap();
    assert_eq!(envelope.errors().count(), 1);
    assert_eq!(envelope.parsed().count(), 1);
}

#[test]
fn rejection_display_and_source() {
    let receiver = DeliveryReceiver::new(Authentication::None);
    let rejection = receiver.receive(&HeaderMap::new(), b"{").unwrap_err();
    assert_eq!(
        rejection.to_string(),
        "delivery refused: invalid JSON at line 1 column 1: EOF while parsing an object"
    );
    assert!(std::error::Error::source(&rejection).is_some());
}

/// `verify_at` (the inbox-mode front door: one pass over a body that
/// passes) refuses exactly what `receive_at` refuses, with the same error,
/// around the events cap too: a body over the cap with a fault after it, a
/// fault before it, a bad `accountId` beside too many events.
#[test]
fn verify_refuses_what_receive_refuses_with_the_same_error() {
    let auth = SignatureAuth::new("k");
    let events = |n: usize| vec![r#"{"eventId":"e","eventName":"X"}"#; n].join(",");
    let ones = |n: usize| vec!["1"; n].join(",");
    let bodies: Vec<Vec<u8>> = [
        format!(r#"{{"accountId":7,"events":[{}]}}"#, events(3)),
        format!(r#"{{"accountId":7,"events":[{}]}}"#, events(4)),
        format!(r#"{{"accountId":7,"events":[{}]}}"#, ones(40)),
        format!(r#"{{"accountId":7,"events":[{}],"x":[}}"#, ones(40)),
        r#"{"accountId":7,"events":[1,{]}"#.to_owned(),
        r#"{"accountId":7,"events":[1,2,3,{]}"#.to_owned(),
        format!(r#"{{"accountId":"7","events":[{}]}}"#, ones(40)),
        format!(r#"{{"accountId":"7","events":[{}]}}"#, ones(2)),
        format!(r#"{{"events":[{}],"accountId":7}}"#, ones(3)),
        format!(r#"{{"events":[{}]}}"#, ones(40)),
        format!(r#"{{"accountId":7,"events":[{}],"events":[]}}"#, ones(40)),
        format!(r#"{{"accountId":7,"events":[],"events":[{}]}}"#, ones(40)),
        format!(r#"{{"accountId":7,"events":{{"a":[{}]}}}}"#, ones(40)),
        format!(r#"[7,[{}]]"#, ones(40)),
        format!(r#"[7,[{}]]"#, ones(2)),
        format!(r#"{{"accountId":7,"events":[{}]}} trailing"#, ones(40)),
        format!(r#"{{"accountId":7,"events":[{}]}} trailing"#, ones(2)),
        format!("{{\"accountId\":7,\"events\":[{},\"\u{ff}\"]}}", ones(40)),
        "{\"accountId\":7,\"events\":[\"\\ud800\"]}".to_owned(),
        "   ".to_owned(),
        "[]".to_owned(),
    ]
    .into_iter()
    .map(String::into_bytes)
    .chain([b"{\"accountId\":7,\"events\":[\"\xff\"]}".to_vec()])
    .collect();
    let now = time::OffsetDateTime::now_utc();
    for max in [3, usize::MAX] {
        let receiver = DeliveryReceiver::new(Authentication::Signature(auth.clone()))
            .with_max_events_per_delivery(max);
        for body in &bodies {
            let full = receiver.receive_at(&signed(&auth, body), body, now);
            let shape = receiver.verify_at(&signed(&auth, body), body, now);
            let text = String::from_utf8_lossy(body);
            assert_eq!(
                format!("{:?}", shape.as_ref().map(|a| a.get())),
                format!("{:?}", full.as_ref().map(|e| e.account_id.get())),
                "max {max}: {text}"
            );
            let unsigned = receiver.verify_at(&HeaderMap::new(), body, now);
            assert_eq!(unsigned.unwrap_err().status(), StatusCode::UNAUTHORIZED);
        }
    }
}
