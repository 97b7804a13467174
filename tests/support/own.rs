//! What tests need around the servers they use: unique names, a free
//! port, waiting for a server of their own, and skipping (or failing under
//! `CI=true`) when a shared one is not there.

use std::time::{Duration, Instant};

/// A name no other test run uses: the process id and a random part.
pub fn unique() -> String {
    format!(
        "{}_{:08x}",
        std::process::id(),
        alm_webhooks::store::ClaimToken::random().0 as u32
    )
}

/// A port nothing listens on now.
pub fn free_port() -> Option<u16> {
    Some(
        std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port(),
    )
}

/// Whether something listens on `port` within 10 s.
pub fn wait_for_port(port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Whether `what` answers at `addr`; a test without it is skipped, except
/// under `CI=true`, where it fails.
pub fn reachable(addr: &str, what: &str) -> bool {
    if std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2)).is_ok()
    {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{what} is not reachable at {addr}; CI needs it");
    }
    eprintln!("skipped: {what} not reachable at {addr}");
    false
}

/// One delivery of `count` new events of `account` (ids `k{account}-{n}-{i}`),
/// and their ids.
pub fn delivery(account: u64, n: usize, count: usize) -> (Vec<u8>, Vec<String>) {
    let ids: Vec<String> = (0..count).map(|i| format!("k{account}-{n}-{i}")).collect();
    let events: Vec<String> = ids
        .iter()
        .map(|id| format!(r#"{{"eventId":"{id}","eventName":"SOMETHING_NEW","timestamp":1725600000,"data":{{"n":{n}}}}}"#))
        .collect();
    let body = format!(
        r#"{{"accountId":{account},"events":[{}]}}"#,
        events.join(",")
    );
    (body.into_bytes(), ids)
}
