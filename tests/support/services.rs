//! The shared services tests run receivers against: a fresh Redis key
//! prefix, PostgreSQL schema and SQLite file per test, removed afterwards.

use std::time::{Duration, Instant};

/// Store URLs to run against, each with a fresh key prefix or schema; a
/// store whose service is not reachable is skipped (a failure under CI).
pub fn store_urls() -> Vec<String> {
    let mut urls = Vec::new();
    let unique = format!(
        "{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos() ^ rand_seed()
    );
    let redis =
        std::env::var("ALM_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
    if reachable(&redis, 6379) {
        let sep = if redis.contains('?') { '&' } else { '?' };
        urls.push(format!("{redis}{sep}prefix=alm-test-shared-{unique}:"));
    } else if std::env::var("CI").as_deref() == Ok("true") {
        panic!("Redis is not reachable at {redis}; CI needs it");
    } else {
        eprintln!("skipped Redis: not reachable at {redis}");
    }
    #[cfg(feature = "postgres")]
    {
        let pg = std::env::var("ALM_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        if reachable(&pg, 5432) {
            let sep = if pg.contains('?') { '&' } else { '?' };
            urls.push(format!(
                "{pg}{sep}schema=alm_test_shared_{}&migrate=true",
                unique.replace('-', "_")
            ));
        } else if std::env::var("CI").as_deref() == Ok("true") {
            panic!("PostgreSQL is not reachable at {pg}; CI needs it");
        } else {
            eprintln!("skipped PostgreSQL: not reachable at {pg}");
        }
    }
    if cfg!(feature = "sqlite") {
        let file = std::env::temp_dir().join(format!("alm-test-shared-{unique}.db"));
        urls.push(format!("sqlite:{}", file.display()));
    }
    urls
}

fn rand_seed() -> u128 {
    use std::hash::{BuildHasher, RandomState};
    u128::from(RandomState::new().hash_one(0u8))
}

pub fn reachable(url: &str, default_port: u16) -> bool {
    let host_port = url
        .split("://")
        .nth(1)
        .unwrap_or("")
        .split(['/', '?'])
        .next()
        .unwrap_or("");
    let host_port = host_port.rsplit('@').next().unwrap_or(host_port);
    let addr = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:{default_port}")
    };
    std::net::TcpStream::connect_timeout(
        &match addr.parse() {
            Ok(a) => a,
            Err(_) => return false,
        },
        Duration::from_secs(2),
    )
    .is_ok()
}

/// Removes what a store URL's test wrote, when dropped.
pub struct Purge(pub String);

impl Drop for Purge {
    fn drop(&mut self) {
        if let Some((url, prefix)) = self.0.split_once("?prefix=") {
            super::redis_keys::purge(url, prefix);
        }
        #[cfg(feature = "postgres")]
        if let Some((url, schema)) = self
            .0
            .split_once("?schema=")
            .map(|(url, rest)| (url, rest.split('&').next().unwrap_or(rest)))
        {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                if let Ok(store) =
                    alm_webhooks::store::PostgresStore::connect_with_schema(url, schema).await
                {
                    let _ = store.drop_schema().await;
                }
            });
        }
        if let Some(path) = self.0.strip_prefix("sqlite:") {
            for suffix in ["", "-wal", "-shm", "-journal"] {
                let _ = std::fs::remove_file(format!("{path}{suffix}"));
            }
        }
    }
}
