//! `SignatureAuth` beyond the default: SHA-1, a required prefix, signed
//! headers, a timestamp tolerance, ed25519 keys and secret encodings.

use alm_webhooks::auth::{AuthError, SecretEncoding, SignatureAlgorithm, SignatureAuth};
use alm_webhooks::{ExposeSecret, Secret};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signer, SigningKey};
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName};
use time::OffsetDateTime;

const BODY: &[u8] = br#"{"accountId":1,"events":[]}"#;
const NOW: i64 = 1_725_524_713;

fn at(t: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t).unwrap()
}

fn hmac_sha1_hex(key: &[u8], message: &[u8]) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key).unwrap();
    mac.update(message);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn sha1_with_a_prefix_over_timestamp_and_body() {
    let auth = SignatureAuth::new("k")
        .with_algorithm(SignatureAlgorithm::Sha1)
        .with_header(HeaderName::from_static("x-hub-signature"))
        .with_prefix("sha1=")
        .with_signed_content("{x-ts}.{body}".parse().unwrap())
        .with_timestamp_header(HeaderName::from_static("x-ts"));
    let mut h = HeaderMap::new();
    h.insert("x-ts", NOW.to_string().parse().unwrap());
    // A decoy over the body alone (the wrong content), then the real tag.
    let decoy = format!("sha1={}", hmac_sha1_hex(b"k", BODY));
    let mut message = format!("{NOW}.").into_bytes();
    message.extend_from_slice(BODY);
    let real = format!("SHA1={}", hmac_sha1_hex(b"k", &message).to_uppercase());
    h.insert(
        "x-hub-signature",
        format!("{decoy}, {real}").parse().unwrap(),
    );
    assert_eq!(auth.verify_at(&h, BODY, at(NOW)), Ok(()));
    assert_eq!(auth.sign_request(&h, BODY).unwrap(), real.to_lowercase());
    // Without the prefix the entry is skipped.
    let bare = hmac_sha1_hex(b"k", &message);
    h.insert("x-hub-signature", bare.parse().unwrap());
    assert_eq!(
        auth.verify_at(&h, BODY, at(NOW)),
        Err(AuthError::Malformed("signature"))
    );
    // Out of tolerance, unreadable, or missing timestamp.
    h.insert("x-hub-signature", real.parse().unwrap());
    assert_eq!(
        auth.verify_at(&h, BODY, at(NOW + 301)),
        Err(AuthError::TimestampOutOfTolerance)
    );
    for ts in [format!("{NOW}000"), "2024-09-05T08:25:13Z".to_owned()] {
        // Milliseconds and RFC 3339 are read as times (the tag differs, so
        // the check reaches the signature and fails there).
        h.insert("x-ts", ts.parse().unwrap());
        assert_eq!(
            auth.verify_at(&h, BODY, at(NOW)),
            Err(AuthError::SignatureMismatch)
        );
    }
    h.insert("x-ts", "yesterday".parse().unwrap());
    assert_eq!(
        auth.verify_at(&h, BODY, at(NOW)),
        Err(AuthError::Malformed("timestamp"))
    );
    h.remove("x-ts");
    assert_eq!(
        auth.verify_at(&h, BODY, at(NOW)),
        Err(AuthError::MissingHeader("timestamp"))
    );
}

#[test]
fn v1_comma_prefix_keeps_entries_whole() {
    let auth = SignatureAuth::new("k").with_prefix("v1,");
    let tag = URL_SAFE_NO_PAD.encode(
        Hmac::<sha2::Sha256>::new_from_slice(b"k")
            .unwrap()
            .chain_update(BODY)
            .finalize()
            .into_bytes(),
    );
    let mut h = HeaderMap::new();
    h.insert(
        "x-alm-signature",
        format!("v0,zzz v1,{tag}").parse().unwrap(),
    );
    assert_eq!(auth.verify(&h, BODY), Ok(()));
    h.insert("x-alm-signature", format!("v2,{tag}").parse().unwrap());
    assert_eq!(
        auth.verify(&h, BODY),
        Err(AuthError::Malformed("signature"))
    );
}

#[test]
fn ed25519_keys_next_to_hmac_secrets() {
    let key = SigningKey::from_bytes(&[9; 32]);
    let public = key.verifying_key().to_bytes();
    let auth = SignatureAuth::ed25519(&public).unwrap();
    let signature = key.sign(BODY).to_bytes();
    let mut h = HeaderMap::new();
    h.insert(
        "x-alm-signature",
        base64::engine::general_purpose::STANDARD
            .encode(signature)
            .parse()
            .unwrap(),
    );
    assert_eq!(auth.verify(&h, BODY), Ok(()));
    assert_eq!(auth.verify(&h, b"{}"), Err(AuthError::SignatureMismatch));
    // Hex works too, and an HMAC secret added for rotation does not accept
    // the ed25519 signature as a tag (wrong algorithm, wrong length).
    let hex: String = signature.iter().map(|b| format!("{b:02x}")).collect();
    h.insert("x-alm-signature", hex.parse().unwrap());
    assert_eq!(auth.clone().also_accept("k").verify(&h, BODY), Ok(()));
    assert_eq!(
        SignatureAuth::new("k")
            .with_algorithm(SignatureAlgorithm::Sha512)
            .verify(&h, BODY),
        Err(AuthError::SignatureMismatch)
    );
    assert!(SignatureAuth::ed25519(&public[..31]).is_err());
    assert_eq!(auth.sign(BODY), "", "a public key cannot sign");
    let debug = format!("{auth:?}");
    assert!(debug.contains("public_keys: 1"), "{debug}");
}

#[test]
fn secret_encodings_and_algorithm_names() {
    let raw = Secret::new(*b"\x00\x01binary key");
    let hex: String = b"\x00\x01binary key"
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        SecretEncoding::Hex
            .decode(&Secret::from(hex.as_str()))
            .unwrap()
            .expose_secret(),
        raw.expose_secret()
    );
    for name in ["hmac-sha1", "sha256", "HMAC-SHA512"] {
        let algorithm: SignatureAlgorithm = name.parse().unwrap();
        assert!(algorithm.as_str().eq_ignore_ascii_case(name) || name == "sha256");
    }
    let err = "md5".parse::<SignatureAlgorithm>().unwrap_err().to_string();
    assert!(err.contains("hmac-sha256"), "{err}");
}

#[test]
fn a_value_that_is_not_text_is_skipped_not_fatal() {
    // Found by fuzzing detect: detection saw the second value's signature
    // while the check refused the whole header for the first one.
    let auth = SignatureAuth::new("k");
    let mut h = HeaderMap::new();
    h.append(
        "x-alm-signature",
        http::HeaderValue::from_bytes(b"sha256=29e\xfe\xff").unwrap(),
    );
    assert_eq!(
        auth.verify(&h, BODY),
        Err(AuthError::Malformed("signature"))
    );
    h.append("x-alm-signature", auth.sign(BODY).parse().unwrap());
    assert_eq!(auth.verify(&h, BODY), Ok(()));
}
