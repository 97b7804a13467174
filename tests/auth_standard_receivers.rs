//! The example receivers with `ALM_AUTH=standard` and several keys in
//! `ALM_SIGNING_SECRET`: a `whsec_` secret (`v1`) and `whpk_` public keys
//! (`v1a`), for rotation.
#![cfg(all(feature = "axum", feature = "actix", feature = "env"))]

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use alm_webhooks::auth::StandardWebhooksAuth;
use support::process::{request, start};

const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const WHSK_OLD: &str = "whsk_AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";
const WHPK_OLD: &str = "whpk_ebVWLo/mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ=";
const WHSK_NEW: &str = "whsk_QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI=";
/// `WHSK_NEW`'s public key (from `tests/vectors/standard_v1a.json`, made by
/// Python's `cryptography`).
const WHPK_NEW: &str = "whpk_IVL40Zt5HSRFMkLhXy6rbLfP+ntqXtMAl5YOBpiB2xI=";
const WHSK_UNKNOWN: &str = "whsk_BQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQU=";

fn post(addr: std::net::SocketAddr, signer: &str, n: usize) -> u16 {
    let signer = StandardWebhooksAuth::new(signer).unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let id = format!("msg_{}_{n}", std::process::id());
    let body = format!(
        r#"{{"accountId":1,"events":[{{"eventId":"{id}","eventName":"SOMETHING_NEW","timestamp":{now},"data":{{}}}}]}}"#
    );
    let signature = signer.sign(&id, now, body.as_bytes());
    let headers = [
        ("webhook-id", id),
        ("webhook-timestamp", now.to_string()),
        ("webhook-signature", signature),
    ];
    request(addr, "POST", &headers, body.as_bytes()).0
}

#[test]
fn v1_and_v1a_keys_side_by_side() {
    let keys = format!("{WHSEC} {WHPK_OLD} {WHPK_NEW}");
    for name in ["axum_receiver", "actix_receiver"] {
        let r = start(
            name,
            &[("ALM_AUTH", "standard"), ("ALM_SIGNING_SECRET", &keys)],
        );
        assert_eq!(post(r.addr, WHSEC, 1), 202, "{name}: v1");
        assert_eq!(post(r.addr, WHSK_OLD, 2), 202, "{name}: v1a, old key");
        assert_eq!(post(r.addr, WHSK_NEW, 3), 202, "{name}: v1a, new key");
        assert_eq!(
            post(r.addr, WHSK_UNKNOWN, 4),
            401,
            "{name}: v1a, unknown key"
        );
        assert_eq!(
            post(r.addr, "whsec_b3RoZXI=", 5),
            401,
            "{name}: v1, other secret"
        );
    }
}
