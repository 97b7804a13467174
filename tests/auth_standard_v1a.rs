//! Standard Webhooks `v1a` (ed25519): signatures made by another
//! implementation (Python's `cryptography`, see
//! `tests/vectors/make_v1a_vectors.py`), our own signing, and the negative
//! cases: wrong key, truncated, `v1a` under an HMAC secret, mixed lists.

use alm_webhooks::auth::{AuthError, InvalidSecret, StandardWebhooksAuth};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;
use serde::Deserialize;
use time::OffsetDateTime;

#[derive(Deserialize)]
struct Vector {
    secret_key: String,
    secret_key_pair: String,
    public_key: String,
    id: String,
    timestamp: i64,
    body: String,
    signature: String,
}

fn vectors() -> Vec<Vector> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/standard_v1a.json"
    );
    let vectors: Vec<Vector> = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    assert_eq!(vectors.len(), 4);
    vectors
}

fn headers(id: &str, timestamp: i64, signature: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("webhook-id", id.parse().unwrap());
    h.insert("webhook-timestamp", timestamp.to_string().parse().unwrap());
    h.insert("webhook-signature", signature.parse().unwrap());
    h
}

fn at(t: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t).unwrap()
}

#[test]
fn python_signatures_verify_and_ours_are_identical() {
    for v in vectors() {
        let h = headers(&v.id, v.timestamp, &v.signature);
        let body = v.body.as_bytes();
        let public = StandardWebhooksAuth::new(&v.public_key).unwrap();
        assert_eq!(
            public.verify_at(&h, body, at(v.timestamp)),
            Ok(()),
            "{}",
            v.id
        );
        // Both secret-key forms verify and sign exactly as Python did
        // (ed25519 is deterministic).
        for secret in [&v.secret_key, &v.secret_key_pair] {
            let auth = StandardWebhooksAuth::new(secret).unwrap();
            assert_eq!(auth.sign(&v.id, v.timestamp, body), v.signature, "{}", v.id);
            assert_eq!(auth.verify_at(&h, body, at(v.timestamp)), Ok(()));
        }
        // Another body, id or timestamp: mismatch.
        let other = [body, b"x"].concat();
        assert_eq!(
            public.verify_at(&h, &other, at(v.timestamp)),
            Err(AuthError::SignatureMismatch)
        );
        let moved = headers(&v.id, v.timestamp + 1, &v.signature);
        assert_eq!(
            public.verify_at(&moved, body, at(v.timestamp)),
            Err(AuthError::SignatureMismatch)
        );
        let renamed = headers("msg_other", v.timestamp, &v.signature);
        assert_eq!(
            public.verify_at(&renamed, body, at(v.timestamp)),
            Err(AuthError::SignatureMismatch)
        );
        // The tolerance applies to v1a too.
        assert_eq!(
            public.verify_at(&h, body, at(v.timestamp + 301)),
            Err(AuthError::TimestampOutOfTolerance)
        );
    }
}

#[test]
fn wrong_key_truncated_and_corrupted_signatures_fail() {
    let v = &vectors()[0];
    let body = v.body.as_bytes();
    let now = at(v.timestamp);
    let wrong = StandardWebhooksAuth::new(&vectors()[1].public_key).unwrap();
    let h = headers(&v.id, v.timestamp, &v.signature);
    assert_eq!(
        wrong.verify_at(&h, body, now),
        Err(AuthError::SignatureMismatch)
    );

    let auth = StandardWebhooksAuth::new(&v.public_key).unwrap();
    // Truncated: one character, one byte (re-encoded), or empty.
    let b64 = v.signature.strip_prefix("v1a,").unwrap();
    let raw = STANDARD.decode(b64).unwrap();
    for bad in [
        format!("v1a,{}", &b64[..b64.len() - 1]),
        format!("v1a,{}", STANDARD.encode(&raw[..63])),
        "v1a,".to_owned(),
        format!("v1a,{}", STANDARD.encode([raw.as_slice(), &[0]].concat())),
    ] {
        assert_eq!(
            auth.verify_at(&headers(&v.id, v.timestamp, &bad), body, now),
            Err(AuthError::Malformed("webhook-signature")),
            "{bad}"
        );
    }
    // Every single-bit flip of the signature fails.
    for byte in [0, 31, 32, 63] {
        let mut flipped = raw.clone();
        flipped[byte] ^= 0x01;
        let bad = format!("v1a,{}", STANDARD.encode(&flipped));
        assert_eq!(
            auth.verify_at(&headers(&v.id, v.timestamp, &bad), body, now),
            Err(AuthError::SignatureMismatch),
            "byte {byte}"
        );
    }
    // Non-canonical S (S + L): rejected by strict verification.
    let l: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut s_plus_l = raw.clone();
    let mut carry = 0u16;
    for i in 0..32 {
        let sum = u16::from(s_plus_l[32 + i]) + u16::from(l[i]) + carry;
        s_plus_l[32 + i] = sum as u8;
        carry = sum >> 8;
    }
    let bad = format!("v1a,{}", STANDARD.encode(&s_plus_l));
    assert_eq!(
        auth.verify_at(&headers(&v.id, v.timestamp, &bad), body, now),
        Err(AuthError::SignatureMismatch)
    );
}

#[test]
fn v1a_under_an_hmac_secret_and_v1_under_a_public_key_fail() {
    let v = &vectors()[0];
    let body = v.body.as_bytes();
    let now = at(v.timestamp);
    let hmac = StandardWebhooksAuth::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let h = headers(&v.id, v.timestamp, &v.signature);
    assert_eq!(
        hmac.verify_at(&h, body, now),
        Err(AuthError::SignatureMismatch)
    );

    let v1 = hmac.sign(&v.id, v.timestamp, body);
    assert!(v1.starts_with("v1,"));
    let public = StandardWebhooksAuth::new(&v.public_key).unwrap();
    assert_eq!(
        public.verify_at(&headers(&v.id, v.timestamp, &v1), body, now),
        Err(AuthError::SignatureMismatch)
    );
    // A public key cannot sign.
    assert_eq!(public.sign(&v.id, v.timestamp, body), "");
    // A v1a signature labelled v1 (wrong length for a tag) is no candidate.
    let relabelled = v.signature.replacen("v1a,", "v1,", 1);
    assert_eq!(
        public.verify_at(&headers(&v.id, v.timestamp, &relabelled), body, now),
        Err(AuthError::Malformed("webhook-signature"))
    );
}

#[test]
fn mixed_lists_and_mixed_keys() {
    let v = &vectors()[0];
    let body = v.body.as_bytes();
    let now = at(v.timestamp);
    let whsec = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let v1 = StandardWebhooksAuth::new(whsec)
        .unwrap()
        .sign(&v.id, v.timestamp, body);
    let forged_v1 = format!("v1,{}", STANDARD.encode([0u8; 32]));
    let forged_v1a = format!("v1a,{}", STANDARD.encode([0u8; 64]));

    let public = StandardWebhooksAuth::new(&v.public_key).unwrap();
    let hmac = StandardWebhooksAuth::new(whsec).unwrap();
    let both = StandardWebhooksAuth::new(whsec)
        .unwrap()
        .also_accept(&v.public_key)
        .unwrap();
    let cases: [(String, [bool; 3]); 5] = [
        (format!("{v1} {}", v.signature), [true, true, true]),
        (format!("{forged_v1} {}", v.signature), [true, false, true]),
        (format!("{v1} {forged_v1a}"), [false, true, true]),
        (
            format!("{forged_v1} {forged_v1a} v2,abc"),
            [false, false, false],
        ),
        (
            format!("v2,xyz {} v1a,%%", v.signature),
            [true, false, true],
        ),
    ];
    for (value, expected) in cases {
        let h = headers(&v.id, v.timestamp, &value);
        let got = [&public, &hmac, &both].map(|auth| auth.verify_at(&h, body, now).is_ok());
        assert_eq!(got, expected, "{value}");
    }
    // Signing with a whsec_ secret and a whsk_ key gives both, space-separated.
    let signer = StandardWebhooksAuth::new(whsec)
        .unwrap()
        .also_accept(&v.secret_key)
        .unwrap();
    assert_eq!(
        signer.sign(&v.id, v.timestamp, body),
        format!("{v1} {}", v.signature)
    );
}

#[test]
fn rotation_over_several_public_keys() {
    let vs = vectors();
    let auth = StandardWebhooksAuth::new(&vs[1].public_key)
        .unwrap()
        .also_accept(&vs[0].public_key)
        .unwrap();
    for v in &vs[..2] {
        let h = headers(&v.id, v.timestamp, &v.signature);
        assert_eq!(
            auth.verify_at(&h, v.body.as_bytes(), at(v.timestamp)),
            Ok(())
        );
    }
    let v = &vs[2];
    let h = headers(&v.id, v.timestamp, &v.signature);
    assert!(
        auth.verify_at(&h, v.body.as_bytes(), at(v.timestamp))
            .is_err()
    );
}

#[test]
fn bad_keys_are_refused_without_echoing_them() {
    for bad in [
        "whpk_",
        "whpk_not base64",
        "whpk_AAAA",
        "whsk_AAAA",
        "whsk_",
        // 32 bytes, but not a point on the curve.
        "whpk_AgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    ] {
        let err = StandardWebhooksAuth::new(bad).unwrap_err();
        assert_eq!(err, InvalidSecret, "{bad}");
        let text = err.to_string();
        let rest = bad.split_once('_').unwrap().1;
        assert!(text.contains("whpk_"), "{text}");
        assert!(rest.len() < 4 || !text.contains(rest), "{text}");
    }
    let v = &vectors()[0];
    let auth = StandardWebhooksAuth::new(&v.secret_key).unwrap();
    let debug = format!("{auth:?} {auth:#?}");
    let seed_b64 = v.secret_key.trim_start_matches("whsk_");
    assert!(
        !debug.contains(seed_b64) && !debug.contains("AQID"),
        "{debug}"
    );
    assert!(
        debug.contains("public_keys: 1") || debug.contains("public_keys: 1,"),
        "{debug}"
    );
}
