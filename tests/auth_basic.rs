//! HTTP Basic authentication.

use alm_webhooks::auth::{AuthError, BasicAuth};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, HeaderValue, header};

fn with_authorization(value: &[u8]) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        header::AUTHORIZATION,
        HeaderValue::from_bytes(value).unwrap(),
    );
    h
}

fn basic(user_password: &[u8]) -> HeaderMap {
    with_authorization(format!("Basic {}", STANDARD.encode(user_password)).as_bytes())
}

#[test]
fn right_credentials_pass() {
    let auth = BasicAuth::new("alm", "pa:ss:wörd ✓");
    assert_eq!(auth.verify(&basic("alm:pa:ss:wörd ✓".as_bytes())), Ok(()));
    let mut h = HeaderMap::new();
    h.insert(
        header::AUTHORIZATION,
        BasicAuth::header_value("alm", "pa:ss:wörd ✓"),
    );
    assert_eq!(auth.verify(&h), Ok(()));
    assert!(h[header::AUTHORIZATION].is_sensitive());
    // Scheme is case-insensitive; extra spaces are tolerated.
    let token = STANDARD.encode("alm:pa:ss:wörd ✓");
    assert_eq!(
        auth.verify(&with_authorization(format!("bAsIc   {token} ").as_bytes())),
        Ok(())
    );
}

#[test]
fn every_malformed_header_is_rejected() {
    let auth = BasicAuth::new("alm", "secret");
    let cases: Vec<(HeaderMap, AuthError)> = vec![
        (HeaderMap::new(), AuthError::MissingHeader("authorization")),
        (with_authorization(b"Bearer abc"), AuthError::WrongScheme),
        (
            with_authorization(b"Basic"),
            AuthError::Malformed("authorization"),
        ),
        (
            with_authorization(b"Basic !!!not-base64!!!"),
            AuthError::Malformed("authorization"),
        ),
        (
            basic(b"no colon here"),
            AuthError::Malformed("authorization"),
        ),
        (
            basic(b"alm:\xff\xfe"),
            AuthError::Malformed("authorization"),
        ),
        (
            with_authorization(b"Basic \xff"),
            AuthError::Malformed("authorization"),
        ),
        (
            with_authorization(format!("Basic {}", "A".repeat(5000)).as_bytes()),
            AuthError::Malformed("authorization"),
        ),
        (basic(b"alm:wrong"), AuthError::BadCredentials),
        (basic(b"other:secret"), AuthError::BadCredentials),
        (basic(b"alm:secret "), AuthError::BadCredentials),
        (basic(b"alm:secre"), AuthError::BadCredentials),
        (basic(b":"), AuthError::BadCredentials),
        // Found by fuzzing: Unicode white space (U+0085) around the token.
        (
            with_authorization(format!("\u{85}Basic {}", STANDARD.encode("alm:secret")).as_bytes()),
            AuthError::Malformed("authorization"),
        ),
    ];
    for (headers, expected) in cases {
        assert_eq!(auth.verify(&headers), Err(expected), "{headers:?}");
    }
    let mut two = basic(b"alm:secret");
    two.append(
        header::AUTHORIZATION,
        HeaderValue::from_static("Basic YWxtOnNlY3JldA=="),
    );
    assert_eq!(
        auth.verify(&two),
        Err(AuthError::Malformed("authorization")),
        "two Authorization headers"
    );
}

#[test]
fn rotation_with_the_valid_pair_anywhere() {
    for position in 0..3 {
        let mut pairs = vec![("a", "1"), ("b", "2")];
        pairs.insert(position, ("alm", "current"));
        let mut auth = BasicAuth::new(pairs[0].0, pairs[0].1);
        for (u, p) in &pairs[1..] {
            auth = auth.with_credential(u, *p);
        }
        assert_eq!(auth.verify(&basic(b"alm:current")), Ok(()), "{position}");
        assert_eq!(
            auth.verify(&basic(b"alm:1")),
            Err(AuthError::BadCredentials)
        );
    }
}
