//! No secret, password, signature or Authorization value appears in any
//! `Debug`, `Display` or error chain of the crate's types.

use alm_webhooks::auth::{BasicAuth, SignatureAuth, StandardWebhooksAuth};
use alm_webhooks::{Authentication, DeliveryReceiver, ExposeSecret, Secret};
use http::{HeaderMap, header};

const PASSWORD: &str = "pa55-w0rd-XYZZY";
const HMAC_SECRET: &str = "hmac-secret-PLUGH";
const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const WHSEC_BODY: &str = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Everything secret that a request or configuration in this test carries.
fn forbidden() -> Vec<String> {
    let basic = BasicAuth::header_value("alm", PASSWORD);
    let b64 = basic
        .to_str()
        .unwrap()
        .trim_start_matches("Basic ")
        .to_owned();
    let sig = SignatureAuth::new(HMAC_SECRET).sign(b"{}");
    vec![
        PASSWORD.into(),
        HMAC_SECRET.into(),
        WHSEC_BODY.into(),
        b64,
        sig[..16].into(),
    ]
}

fn all_formats(value: &(impl std::fmt::Debug + ?Sized)) -> String {
    format!("{value:?} {value:#?}")
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = format!("{error} {error:?}");
    let mut source = error.source();
    while let Some(s) = source {
        out.push_str(&format!(" <- {s} {s:?}"));
        source = s.source();
    }
    out
}

fn assert_clean(context: &str, text: &str) {
    for secret in forbidden() {
        assert!(
            !text.contains(&secret),
            "{context} leaks {secret:?}: {text}"
        );
    }
}

#[test]
fn configurations_never_print_secrets() {
    let basic = BasicAuth::new("alm", PASSWORD).with_credential("alm", HMAC_SECRET);
    let signature = SignatureAuth::new(HMAC_SECRET).also_accept(PASSWORD);
    let standard = StandardWebhooksAuth::new(WHSEC).unwrap();
    assert_clean("Secret", &all_formats(&Secret::from(PASSWORD)));
    assert_clean("BasicAuth", &all_formats(&basic));
    assert_clean("SignatureAuth", &all_formats(&signature));
    assert_clean("StandardWebhooksAuth", &all_formats(&standard));
    for auth in [
        Authentication::Basic(basic),
        Authentication::Signature(signature),
        Authentication::StandardWebhooks(standard),
    ] {
        assert_clean("Authentication", &all_formats(&auth));
        assert_clean(
            "DeliveryReceiver",
            &all_formats(&DeliveryReceiver::new(auth)),
        );
    }
    let value = BasicAuth::header_value("alm", PASSWORD);
    assert!(value.is_sensitive());
    assert_clean("HeaderValue", &format!("{value:?}"));
}

#[test]
fn failures_never_print_what_was_presented() {
    let receivers = [
        DeliveryReceiver::new(Authentication::Basic(BasicAuth::new("alm", "other"))),
        DeliveryReceiver::new(Authentication::Signature(SignatureAuth::new("other"))),
        DeliveryReceiver::new(Authentication::StandardWebhooks(
            StandardWebhooksAuth::new("whsec_b3RoZXI=").unwrap(),
        )),
    ];
    let mut presented = HeaderMap::new();
    presented.insert(
        header::AUTHORIZATION,
        BasicAuth::header_value("alm", PASSWORD),
    );
    presented.insert(
        "x-alm-signature",
        SignatureAuth::new(HMAC_SECRET).sign(b"{}").parse().unwrap(),
    );
    presented.insert("webhook-id", "msg".parse().unwrap());
    presented.insert(
        "webhook-timestamp",
        time::OffsetDateTime::now_utc()
            .unix_timestamp()
            .to_string()
            .parse()
            .unwrap(),
    );
    presented.insert(
        "webhook-signature",
        format!("v1,{WHSEC_BODY}").parse().unwrap(),
    );
    for receiver in &receivers {
        let rejection = receiver.receive(&presented, b"{}").unwrap_err();
        assert_clean("DeliveryRejection", &error_chain(&rejection));
        assert_clean("DeliveryRejection body", &rejection.body());
        assert_clean(
            "DeliveryRejection response",
            &format!("{:?}", rejection.to_response()),
        );
    }
}

#[test]
fn secret_file_errors_name_fields_not_values() {
    let file = format!(
        r#"{{"webhookName":"crm","nested":{{"token":"{HMAC_SECRET}"}},"other":"{PASSWORD}"}}"#
    );
    let err = Secret::from_alm_secret_file(file.as_bytes(), None).unwrap_err();
    let text = error_chain(&err);
    assert_clean("SecretFileError", &text);
    assert!(text.contains("\"nested.token\""), "{text}");
    assert!(text.contains("\"other\""), "{text}");
    let found = Secret::from_alm_secret_file(file.as_bytes(), Some("token")).unwrap();
    assert_eq!(found.expose_secret(), HMAC_SECRET.as_bytes());
    assert_clean("Secret from file", &format!("{found:?}"));
    let not_json = Secret::from_alm_secret_file(PASSWORD.as_bytes(), None).unwrap_err();
    assert_clean("SecretFileError", &error_chain(&not_json));
}

/// Everything the crate traces, at TRACE level, through real failures and
/// real deliveries, holds none of the secrets.
#[cfg(feature = "tracing")]
#[tokio::test]
async fn tracing_output_never_holds_secrets() {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);
    impl Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let receivers = [
        DeliveryReceiver::new(Authentication::Basic(BasicAuth::new("alm", PASSWORD))),
        DeliveryReceiver::new(Authentication::Signature(SignatureAuth::new(HMAC_SECRET))),
        DeliveryReceiver::new(Authentication::StandardWebhooks(
            StandardWebhooksAuth::new(WHSEC).unwrap(),
        )),
    ];
    let body = br#"{"accountId":1,"events":[{"eventId":"e","eventName":"X","timestamp":1}]}"#;
    let mut wrong = HeaderMap::new();
    wrong.insert(
        header::AUTHORIZATION,
        BasicAuth::header_value("alm", "not-it"),
    );
    wrong.insert(
        "x-alm-signature",
        SignatureAuth::new("other").sign(body).parse().unwrap(),
    );
    let mut right = HeaderMap::new();
    right.insert(
        header::AUTHORIZATION,
        BasicAuth::header_value("alm", PASSWORD),
    );
    right.insert(
        "x-alm-signature",
        SignatureAuth::new(HMAC_SECRET).sign(body).parse().unwrap(),
    );
    let engine = alm_webhooks::Engine::in_memory();
    for receiver in &receivers {
        let _ = receiver.receive(&wrong, body);
        if let Ok(envelope) = receiver.receive(&right, body) {
            engine
                .process(envelope, |_| async { Ok(()) })
                .await
                .unwrap();
        }
    }
    let output = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        output.contains("delivery refused"),
        "tracing is on: {output}"
    );
    assert!(output.contains("event decided"), "{output}");
    assert_clean("tracing output", &output);
}
