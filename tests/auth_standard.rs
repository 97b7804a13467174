//! Standard Webhooks signatures: the spec's vector, tolerance edges, rotation
//! and interoperation with the reference `standardwebhooks` crate.

use std::time::Duration;

use alm_webhooks::auth::{AuthError, StandardWebhooksAuth};
use http::HeaderMap;
use proptest::prelude::*;
use time::OffsetDateTime;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const TIMESTAMP: i64 = 1_614_265_330;
const BODY: &[u8] = br#"{"test": 2432232314}"#;
const EXPECTED: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

fn headers(id: &str, timestamp: &str, signature: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("webhook-id", id.parse().unwrap());
    h.insert("webhook-timestamp", timestamp.parse().unwrap());
    h.insert("webhook-signature", signature.parse().unwrap());
    h
}

fn at(t: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t).unwrap()
}

#[test]
fn spec_test_vector() {
    let auth = StandardWebhooksAuth::new(SECRET).unwrap();
    assert_eq!(auth.sign(ID, TIMESTAMP, BODY), EXPECTED);
    assert_eq!(
        auth.verify_at(&headers(ID, "1614265330", EXPECTED), BODY, at(TIMESTAMP)),
        Ok(())
    );
    // Without the prefix the secret is the same.
    let bare = StandardWebhooksAuth::new(SECRET.trim_start_matches("whsec_")).unwrap();
    assert_eq!(bare.sign(ID, TIMESTAMP, BODY), EXPECTED);
}

#[test]
fn tolerance_edges() {
    let auth = StandardWebhooksAuth::new(SECRET).unwrap();
    let h = headers(ID, "1614265330", EXPECTED);
    for now in [TIMESTAMP - 300, TIMESTAMP + 300] {
        assert_eq!(auth.verify_at(&h, BODY, at(now)), Ok(()), "{now}");
    }
    for now in [TIMESTAMP - 301, TIMESTAMP + 301] {
        assert_eq!(
            auth.verify_at(&h, BODY, at(now)),
            Err(AuthError::TimestampOutOfTolerance),
            "{now}"
        );
    }
    let strict = auth.with_tolerance(Duration::from_secs(10));
    assert_eq!(strict.verify_at(&h, BODY, at(TIMESTAMP + 10)), Ok(()));
    assert_eq!(
        strict.verify_at(&h, BODY, at(TIMESTAMP + 11)),
        Err(AuthError::TimestampOutOfTolerance)
    );
}

#[test]
fn bad_timestamps_are_malformed() {
    let auth = StandardWebhooksAuth::new(SECRET).unwrap();
    for ts in [
        "-1614265330",
        "99999999999999999999",
        "16142653x0",
        "",
        "+1614265330",
        " 1614265330",
        "1.5",
    ] {
        let mut h = headers(ID, "0", EXPECTED);
        h.insert("webhook-timestamp", ts.parse().unwrap());
        assert_eq!(
            auth.verify_at(&h, BODY, at(TIMESTAMP)),
            Err(AuthError::Malformed("webhook-timestamp")),
            "{ts:?}"
        );
    }
    let mut h = headers(ID, "1614265330", EXPECTED);
    h.remove("webhook-id");
    assert_eq!(
        auth.verify_at(&h, BODY, at(TIMESTAMP)),
        Err(AuthError::MissingHeader("webhook-id"))
    );
    let far_future = headers(ID, &i64::MAX.to_string(), EXPECTED);
    assert_eq!(
        auth.verify_at(&far_future, BODY, at(TIMESTAMP)),
        Err(AuthError::TimestampOutOfTolerance)
    );
}

#[test]
fn signature_lists_and_versions() {
    let auth = StandardWebhooksAuth::new(SECRET).unwrap();
    let now = at(TIMESTAMP);
    let other = "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let v2 = EXPECTED.replace("v1,", "v2,");
    assert_eq!(
        auth.verify_at(
            &headers(ID, "1614265330", &format!("{other} {EXPECTED}")),
            BODY,
            now
        ),
        Ok(())
    );
    assert_eq!(
        auth.verify_at(&headers(ID, "1614265330", &v2), BODY, now),
        Err(AuthError::Malformed("webhook-signature"))
    );
    assert_eq!(
        auth.verify_at(&headers(ID, "1614265330", other), BODY, now),
        Err(AuthError::SignatureMismatch)
    );
    for len in 0..EXPECTED.len() {
        let h = headers(ID, "1614265330", &EXPECTED[..len]);
        assert!(auth.verify_at(&h, BODY, now).is_err(), "prefix of {len}");
    }
}

#[test]
fn rotation_with_the_valid_secret_anywhere() {
    let others = ["whsec_b3RoZXIx", "whsec_b3RoZXIy"];
    for position in 0..3 {
        let mut list = others.to_vec();
        list.insert(position, SECRET);
        let mut auth = StandardWebhooksAuth::new(list[0]).unwrap();
        for s in &list[1..] {
            auth = auth.also_accept(s).unwrap();
        }
        assert_eq!(
            auth.verify_at(&headers(ID, "1614265330", EXPECTED), BODY, at(TIMESTAMP)),
            Ok(())
        );
    }
    assert!(StandardWebhooksAuth::new("whsec_!!!").is_err());
    assert!(StandardWebhooksAuth::new("whsec_").is_err());
}

#[test]
fn a_zero_padded_timestamp_is_signed_as_the_number() {
    // Senders format the timestamp as a plain integer; a padded header reads
    // as the same number, and the signed content is the unpadded one.
    let auth = StandardWebhooksAuth::new(SECRET).unwrap();
    let padded = headers(ID, "01614265330", EXPECTED);
    assert_eq!(auth.verify_at(&padded, BODY, at(TIMESTAMP)), Ok(()));
    let signed_padded = headers(ID, "01614265330", "v1,AAAA");
    assert!(auth.verify_at(&signed_padded, BODY, at(TIMESTAMP)).is_err());
}

#[test]
fn interoperates_with_the_reference_crate() {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let theirs = standardwebhooks::Webhook::new(SECRET).unwrap();
    let ours = StandardWebhooksAuth::new(SECRET).unwrap();
    let body = br#"{"accountId":1234,"events":[]}"#;
    // They sign, we verify.
    let signature = theirs.sign("msg_1", now, body).unwrap();
    let h = headers("msg_1", &now.to_string(), &signature);
    assert_eq!(ours.verify(&h, body), Ok(()));
    // We sign, they verify.
    let h = headers("msg_2", &now.to_string(), &ours.sign("msg_2", now, body));
    theirs.verify(body, &h).unwrap();
    assert_eq!(ours.sign("msg_1", now, body), signature);
}

proptest! {
    #[test]
    fn flipping_any_bit_fails(
        body in proptest::collection::vec(any::<u8>(), 0..256),
        which in 0..4usize,
        bit in any::<proptest::sample::Index>(),
    ) {
        let auth = StandardWebhooksAuth::new(SECRET).unwrap();
        let signature = auth.sign(ID, TIMESTAMP, &body);
        let mut id = ID.as_bytes().to_vec();
        let mut ts = TIMESTAMP.to_string().into_bytes();
        let mut sig = signature.into_bytes();
        let mut body = body;
        let target: &mut Vec<u8> = match which {
            0 if !body.is_empty() => &mut body,
            1 => &mut id,
            2 => &mut ts,
            _ => &mut sig,
        };
        let i = bit.index(target.len() * 8);
        target[i / 8] ^= 1 << (i % 8);
        // A flip that makes a header unrepresentable can't be sent at all.
        let (Ok(id), Ok(ts), Ok(sig)) = (String::from_utf8(id), String::from_utf8(ts), String::from_utf8(sig)) else {
            return Ok(());
        };
        let mut h = HeaderMap::new();
        for (name, value) in [("webhook-id", id), ("webhook-timestamp", ts), ("webhook-signature", sig)] {
            match value.parse() {
                Ok(v) => { h.insert(name, v); }
                Err(_) => return Ok(()),
            }
        }
        prop_assert!(auth.verify_at(&h, &body, at(TIMESTAMP)).is_err());
    }
}
