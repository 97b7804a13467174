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

mod support;

mod any_scheme {
    use alm_webhooks::Secret;
    use alm_webhooks::detect::{CapturedRequest, detect};
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use ed25519_dalek::SigningKey;
    use proptest::prelude::*;
    use time::OffsetDateTime;

    use super::support::signing::{Signer, encode, hex};

    const ENCODINGS: [&str; 6] = [
        "hex",
        "hex-upper",
        "base64",
        "base64-nopad",
        "base64url",
        "base64url-nopad",
    ];
    const PREFIXES: [&str; 4] = ["", "sha256=", "v1=", "v1,"];
    const CONTENTS: [&str; 3] = ["{body}", "{x-ts}.{body}", "{x-id}.{x-ts}.{body}"];

    /// The signer and the secret text an admin would hold, in key form
    /// `form` (0..4).
    fn signer_and_secret(
        algorithm: usize,
        key: &[u8],
        form: usize,
    ) -> (Signer, String, &'static str) {
        if algorithm == 3 {
            let signing = SigningKey::from_bytes(&key[..32].try_into().unwrap());
            let public = signing.verifying_key().to_bytes();
            let (text, name) = match form % 3 {
                0 => (STANDARD.encode(public), "base64"),
                1 => (hex(&public), "hex"),
                _ => (format!("whpk_{}", STANDARD.encode(public)), "whpk"),
            };
            return (Signer::Ed25519(signing), text, name);
        }
        let (bytes, text, name) = match form {
            0 => {
                let text: String = key.iter().map(|b| char::from(b'a' + b % 26)).collect();
                (text.clone().into_bytes(), text, "as-given")
            }
            1 => (key.to_vec(), URL_SAFE_NO_PAD.encode(key), "base64"),
            2 => (key.to_vec(), hex(key), "hex"),
            _ => (
                key.to_vec(),
                format!("whsec_{}", STANDARD.encode(key)),
                "whsec",
            ),
        };
        let signer = match algorithm {
            0 => Signer::Sha1(bytes),
            1 => Signer::Sha256(bytes),
            _ => Signer::Sha512(bytes),
        };
        (signer, text, name)
    }

    fn capture(
        signer: &Signer,
        encoding: &str,
        prefix: &str,
        content: &str,
        id: &str,
        ts: i64,
        body: &[u8],
    ) -> (CapturedRequest, String) {
        let mut message = content
            .replace("{x-id}", id)
            .replace("{x-ts}", &ts.to_string())
            .replace("{body}", "\u{0}")
            .into_bytes();
        let at = message.iter().position(|b| *b == 0).unwrap();
        message.splice(at..=at, body.iter().copied());
        let value = format!("{prefix}{}", encode(&signer.sign(&message), encoding));
        let mut raw = format!(
            "POST /webhooks HTTP/1.1\r\nx-id: {id}\r\nx-ts: {ts}\r\nx-other: {}\r\nx-signature: {value}\r\n\r\n",
            hex(&[0xab; 32])
        )
        .into_bytes();
        raw.extend_from_slice(body);
        (CapturedRequest::parse(&raw).unwrap(), value)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Any scheme of the documented space is found, as itself, and the
        /// scheme verifies another delivery signed the same way.
        #[test]
        fn detect_finds_what_signed(
            algorithm in 0usize..4,
            encoding in 0usize..6,
            prefix in 0usize..4,
            content in 0usize..3,
            form in 0usize..4,
            key in proptest::collection::vec(any::<u8>(), 32..48),
            id in "id_[a-z0-9_]{1,20}",
            ts in 1_500_000_000i64..2_000_000_000,
            body in proptest::collection::vec(any::<u8>(), 0..300),
            other in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let (signer, secret, key_name) = signer_and_secret(algorithm, &key, form);
            let (encoding, prefix, content) = (ENCODINGS[encoding], PREFIXES[prefix], CONTENTS[content]);
            let (first, value) = capture(&signer, encoding, prefix, content, &id, ts, &body);
            let found = detect(&Secret::from(secret.as_str()), &[first]).unwrap();
            let s = &found.scheme;
            prop_assert_eq!(s.header.as_str(), "x-signature");
            prop_assert_eq!(s.algorithm.as_str(), ["hmac-sha1", "hmac-sha256", "hmac-sha512", "ed25519"][algorithm]);
            prop_assert_eq!(s.prefix.as_str(), prefix);
            prop_assert_eq!(s.signed.to_string(), content);
            prop_assert_eq!(s.key.as_str(), key_name);
            let url_chars = value.contains(['-', '_']);
            let want = match encoding.strip_prefix("base64url") {
                Some(padding) if !url_chars => format!("base64{padding}"),
                _ => encoding.to_owned(),
            };
            prop_assert!(s.encoding.as_str() == want || (encoding == "hex-upper" && s.encoding.as_str() == "hex"));
            prop_assert_eq!(s.timestamp_header.is_some(), content.contains("x-ts"));

            let auth = s.auth(&Secret::from(secret.as_str())).unwrap();
            let (fresh, _) = capture(&signer, encoding, prefix, content, "another", ts + 7, &other);
            let now = OffsetDateTime::from_unix_timestamp(ts + 7).unwrap();
            prop_assert!(auth.verify_at(&fresh.headers, &fresh.body, now).is_ok());
            let (forged, _) = capture(&Signer::Sha256(b"forger".to_vec()), encoding, prefix, content, "x", ts, &other);
            prop_assert!(auth.verify_at(&forged.headers, &forged.body, now).is_err());
        }
    }
}

mod hostile_captures {
    use alm_webhooks::Secret;
    use alm_webhooks::detect::{CapturedRequest, detect};
    use proptest::prelude::*;

    const SEED: &[u8] =
        b"POST /webhooks HTTP/1.1\r\ntransfer-encoding: chunked\r\nx-ts: 1725524713\r\n\
x-sig: t=1725524713,v1=00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff\r\n\r\n\
4\r\n{\"a\"\r\n3;ext=1\r\n:1}\r\n0\r\n\r\n";

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Random bytes, and a valid capture with bytes overwritten, cut or
        /// inserted: reading and detecting never panic.
        #[test]
        fn reading_and_detecting_never_panic(
            noise in proptest::collection::vec(any::<u8>(), 0..400),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 0..8),
        ) {
            let _ = CapturedRequest::parse(&noise);
            let mut raw = SEED.to_vec();
            for (at, byte, kind) in edits {
                let i = at.index(raw.len());
                match kind {
                    0 => raw[i] = byte,
                    1 => raw.insert(i, byte),
                    _ => raw.truncate(i),
                }
                if raw.is_empty() {
                    break;
                }
            }
            if let Ok(capture) = CapturedRequest::parse(&raw) {
                let _ = detect(&Secret::from("00ff"), std::slice::from_ref(&capture));
            }
        }
    }
}
