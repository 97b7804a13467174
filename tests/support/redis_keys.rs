//! Cleaning up the Redis keys a test wrote.

use std::time::Duration;

/// Deletes every key under `prefix` (SCAN + DEL), on a blocking connection.
pub fn purge(url: &str, prefix: &str) {
    let result = (|| -> redis::RedisResult<()> {
        let client = redis::Client::open(url)?;
        let mut con = client.get_connection_with_timeout(Duration::from_secs(5))?;
        let mut cursor = 0u64;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{prefix}*"))
                .arg("COUNT")
                .arg(1000)
                .query(&mut con)?;
            if !keys.is_empty() {
                redis::cmd("DEL").arg(&keys).exec(&mut con)?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    })();
    if let Err(e) = result {
        eprintln!("could not delete the test keys under {prefix}: {e}");
    }
}
