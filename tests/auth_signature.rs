//! HMAC signature authentication.

use alm_webhooks::auth::{AuthError, SignatureAlgorithm, SignatureAuth};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;

const GITHUB_SECRET: &str = "It's a Secret to Everybody";
const GITHUB_BODY: &[u8] = b"Hello, World!";
const GITHUB_HEX: &str = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

fn headers(name: &str, values: &[&str]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for v in values {
        h.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

fn tag() -> Vec<u8> {
    (0..32)
        .map(|i| u8::from_str_radix(&GITHUB_HEX[i * 2..i * 2 + 2], 16).unwrap())
        .collect()
}

#[test]
fn github_known_answer_in_every_encoding() {
    let auth = SignatureAuth::new(GITHUB_SECRET);
    assert_eq!(auth.sign(GITHUB_BODY), GITHUB_HEX);
    assert_eq!(auth.sign_base64(GITHUB_BODY), STANDARD.encode(tag()));
    let encodings = [
        GITHUB_HEX.to_owned(),
        GITHUB_HEX.to_uppercase(),
        format!("sha256={GITHUB_HEX}"),
        format!("SHA256={}", GITHUB_HEX.to_uppercase()),
        STANDARD.encode(tag()),
        STANDARD_NO_PAD.encode(tag()),
        URL_SAFE.encode(tag()),
        URL_SAFE_NO_PAD.encode(tag()),
        format!("sha256={}", STANDARD.encode(tag())),
    ];
    for value in &encodings {
        assert_eq!(
            auth.verify(&headers("x-alm-signature", &[value]), GITHUB_BODY),
            Ok(()),
            "{value}"
        );
        assert_eq!(
            auth.verify(&headers("x-alm-signature", &[value]), b"Hello, World?"),
            Err(AuthError::SignatureMismatch),
            "{value}"
        );
    }
}

#[test]
fn several_signatures_any_valid_one_passes() {
    let auth = SignatureAuth::new(GITHUB_SECRET);
    let wrong = "00".repeat(32);
    for value in [
        format!("{wrong},{GITHUB_HEX}"),
        format!("{wrong} {GITHUB_HEX}"),
        format!("{wrong}, sha256={GITHUB_HEX}"),
        format!("garbage {GITHUB_HEX}"),
    ] {
        assert_eq!(
            auth.verify(&headers("x-alm-signature", &[&value]), GITHUB_BODY),
            Ok(()),
            "{value}"
        );
    }
    assert_eq!(
        auth.verify(
            &headers("x-alm-signature", &[&wrong, GITHUB_HEX]),
            GITHUB_BODY
        ),
        Ok(()),
        "several header values"
    );
    assert_eq!(
        auth.verify(
            &headers(
                "x-alm-signature",
                &[&format!("{wrong},{}", "11".repeat(32))]
            ),
            GITHUB_BODY
        ),
        Err(AuthError::SignatureMismatch)
    );
}

#[test]
fn truncated_signatures_of_every_length_fail() {
    let auth = SignatureAuth::new(GITHUB_SECRET);
    for len in 0..GITHUB_HEX.len() {
        let h = headers("x-alm-signature", &[&GITHUB_HEX[..len]]);
        assert!(auth.verify(&h, GITHUB_BODY).is_err(), "hex prefix of {len}");
    }
    let b64 = STANDARD_NO_PAD.encode(tag());
    for len in 0..b64.len() {
        let h = headers("x-alm-signature", &[&b64[..len]]);
        assert!(
            auth.verify(&h, GITHUB_BODY).is_err(),
            "base64 prefix of {len}"
        );
    }
    for len in 0..32 {
        let h = headers("x-alm-signature", &[&STANDARD.encode(&tag()[..len])]);
        assert!(
            auth.verify(&h, GITHUB_BODY).is_err(),
            "a tag of {len} bytes"
        );
    }
    assert_eq!(
        auth.verify(&headers("x-alm-signature", &[""]), GITHUB_BODY),
        Err(AuthError::Malformed("signature"))
    );
    assert_eq!(
        auth.verify(&headers("x-alm-signature", &["sha256="]), GITHUB_BODY),
        Err(AuthError::Malformed("signature"))
    );
    assert_eq!(
        auth.verify(&HeaderMap::new(), GITHUB_BODY),
        Err(AuthError::MissingHeader("signature"))
    );
}

#[test]
fn rotation_with_the_valid_secret_anywhere() {
    let make = |position: usize| {
        let secrets = ["old-1", "old-2", "old-3"].map(String::from);
        let mut list: Vec<String> = secrets.to_vec();
        list.insert(position, GITHUB_SECRET.to_owned());
        let mut auth = SignatureAuth::new(list[0].as_str());
        for s in &list[1..] {
            auth = auth.also_accept(s.as_str());
        }
        auth
    };
    for position in 0..4 {
        let auth = make(position);
        assert_eq!(
            auth.verify(&headers("x-alm-signature", &[GITHUB_HEX]), GITHUB_BODY),
            Ok(()),
            "{position}"
        );
    }
    let none = SignatureAuth::new("a").also_accept("b");
    assert!(
        none.verify(&headers("x-alm-signature", &[GITHUB_HEX]), GITHUB_BODY)
            .is_err()
    );
}

#[test]
fn custom_header_and_sha512() {
    let auth = SignatureAuth::new("k")
        .with_header(HeaderName::from_static("x-signature"))
        .with_algorithm(SignatureAlgorithm::Sha512);
    let body = br#"{"accountId":1,"events":[]}"#;
    let sig = auth.sign(body);
    assert_eq!(sig.len(), 128);
    assert_eq!(
        auth.verify(&headers("x-signature", &[&format!("sha512={sig}")]), body),
        Ok(())
    );
    assert_eq!(
        auth.verify(&headers("x-alm-signature", &[&sig]), body),
        Err(AuthError::MissingHeader("signature"))
    );
    // A SHA-256 tag is the wrong length for SHA-512.
    let sha256 = SignatureAuth::new("k").sign(body);
    assert!(
        auth.verify(&headers("x-signature", &[&sha256]), body)
            .is_err()
    );
}

#[test]
fn hostile_headers_are_bounded() {
    let auth = SignatureAuth::new(GITHUB_SECRET);
    // The valid signature after 16 junk candidates is not looked at.
    let junk = vec!["00".repeat(32); 16].join(",");
    let value = format!("{junk},{GITHUB_HEX}");
    assert_eq!(
        auth.verify(&headers("x-alm-signature", &[&value]), GITHUB_BODY),
        Err(AuthError::SignatureMismatch)
    );
    let huge = "a".repeat(10_000);
    assert_eq!(
        auth.verify(&headers("x-alm-signature", &[&huge]), GITHUB_BODY),
        Err(AuthError::Malformed("signature"))
    );
    let mut h = HeaderMap::new();
    h.insert(
        "x-alm-signature",
        HeaderValue::from_bytes(b"\xff\xfe").unwrap(),
    );
    assert_eq!(
        auth.verify(&h, GITHUB_BODY),
        Err(AuthError::Malformed("signature"))
    );
}

proptest! {
    #[test]
    fn flipping_any_bit_of_body_or_signature_fails(
        body in proptest::collection::vec(any::<u8>(), 0..512),
        bit in any::<proptest::sample::Index>(),
        in_signature in any::<bool>(),
    ) {
        let auth = SignatureAuth::new("secret");
        let sig = auth.sign(&body);
        let mut tag: Vec<u8> = (0..32).map(|i| u8::from_str_radix(&sig[i * 2..i * 2 + 2], 16).unwrap()).collect();
        let mut body = body;
        if in_signature || body.is_empty() {
            let i = bit.index(tag.len() * 8);
            tag[i / 8] ^= 1 << (i % 8);
        } else {
            let i = bit.index(body.len() * 8);
            body[i / 8] ^= 1 << (i % 8);
        }
        let value = STANDARD.encode(&tag);
        prop_assert_eq!(auth.verify(&headers("x-alm-signature", &[&value]), &body), Err(AuthError::SignatureMismatch));
    }
}
