use std::time::Duration;

use super::{Config, ConfigError, DEFAULT_LISTEN, VARIABLES};
use crate::endpoint::{
    DEFAULT_MAX_BUFFERED_BYTES, DEFAULT_MAX_CONCURRENT_REQUESTS, DEFAULT_READ_TIMEOUT,
    DEFAULT_SUMMARY_EVERY, KeptLimits, Mode, OnMalformed,
};
use crate::inbox::{DEFAULT_HANDLER_TIMEOUT, DEFAULT_WORKERS, RetryPolicy};
use crate::{Authentication, DEFAULT_MAX_BODY_BYTES};

fn error(vars: &[(&str, &str)]) -> ConfigError {
    Config::from_vars(vars.iter().copied()).expect_err("refused")
}

#[test]
fn no_variable_gives_every_default() {
    let config = Config::from_vars(std::iter::empty::<(String, String)>()).unwrap();
    assert_eq!(config.listen, DEFAULT_LISTEN.parse().unwrap());
    assert!(matches!(config.auth, Authentication::None));
    assert_eq!(config.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
    assert_eq!(config.store.url, "memory");
    assert!(config.store.projection);
    assert_eq!(config.store.lease, crate::engine::DEFAULT_CLAIM_LEASE);
    assert_eq!(config.store.commit_batch, None);
    assert_eq!(config.inbox.mode, Mode::Inbox);
    assert_eq!(config.inbox.url, None);
    assert_eq!(config.inbox.workers, DEFAULT_WORKERS);
    assert_eq!(config.inbox.retry, RetryPolicy::default());
    assert_eq!(config.inbox.handler_timeout, DEFAULT_HANDLER_TIMEOUT);
    assert_eq!(config.inbox.on_malformed, OnMalformed::Quarantine);
    assert_eq!(config.inbox.kept, KeptLimits::default());
    assert_eq!(config.guard.read_timeout, DEFAULT_READ_TIMEOUT);
    assert_eq!(
        config.guard.max_concurrent_requests,
        DEFAULT_MAX_CONCURRENT_REQUESTS
    );
    assert_eq!(config.guard.max_buffered_bytes, DEFAULT_MAX_BUFFERED_BYTES);
    assert_eq!(config.guard.summary_every, DEFAULT_SUMMARY_EVERY);
    assert_eq!(config.capture, None);
    assert!(config.admin_token.is_none());
    #[cfg(feature = "alm-api")]
    {
        use crate::alm_api::reconcile::ReconcileMode;
        assert_eq!(config.reconcile.mode, ReconcileMode::Off);
        assert_eq!(config.reconcile.every, super::DEFAULT_RECONCILE_EVERY);
        assert_eq!(config.reconcile.account, None);
        assert!(config.reconcile.api.is_none());
    }
    assert_eq!(format!("{config:?}"), format!("{:?}", Config::default()));
    assert_eq!(config.warnings().len(), 1, "{:?}", config.warnings());
}

#[test]
fn empty_values_are_unset() {
    let config = Config::from_vars([("ALM_MODE", ""), ("ALM_WORKERS", "")]).unwrap();
    assert_eq!(config.inbox.mode, Mode::Inbox);
    assert_eq!(config.inbox.workers, DEFAULT_WORKERS);
}

#[test]
fn every_number_is_read() {
    let config = Config::from_vars([
        ("ALM_MAX_BODY_BYTES", "1024"),
        ("ALM_LEASE_SECS", "90"),
        ("ALM_COMMIT_BATCH", "1"),
        ("ALM_WORKERS", "2"),
        ("ALM_MAX_ATTEMPTS", "3"),
        ("ALM_RETRY_BASE_MS", "200"),
        ("ALM_RETRY_MAX_MS", "100"),
        ("ALM_HANDLER_TIMEOUT_MS", "1500"),
        ("ALM_READ_TIMEOUT_MS", "2500"),
        ("ALM_MAX_CONCURRENT_REQUESTS", "16"),
        ("ALM_MAX_BUFFERED_BYTES", "4096"),
        ("ALM_REFUSAL_SUMMARY_MS", "1000"),
        ("ALM_MAX_DEAD_LETTERS", "5"),
        ("ALM_MAX_QUARANTINED", "6"),
        ("ALM_MAX_QUARANTINED_BYTES", "7"),
        ("ALM_MAX_DEAD_LETTERS_PER_ACCOUNT", "2"),
        ("ALM_MAX_QUARANTINED_PER_ACCOUNT", "3"),
        ("ALM_MAX_QUARANTINED_BYTES_PER_ACCOUNT", "4"),
        ("ALM_CAPTURE_DIR", "/tmp/x"),
        ("ALM_CAPTURE_MAX_FILES", "8"),
        ("ALM_CAPTURE_MAX_BYTES", "9"),
        ("ALM_INBOX", "sqlite::memory:"),
        ("ALM_PROJECTION", "off"),
        ("ALM_ON_MALFORMED", "refuse"),
    ])
    .unwrap();
    assert_eq!(config.max_body_bytes, 1024);
    assert_eq!(config.store.lease, Duration::from_secs(90));
    assert_eq!(config.store.commit_batch, Some(1));
    assert!(!config.store.projection);
    assert_eq!(config.inbox.workers, 2);
    let retry = config.inbox.retry;
    assert_eq!(retry.max_attempts, 3);
    assert_eq!(retry.base, Duration::from_millis(200));
    assert_eq!(
        retry.max,
        Duration::from_millis(200),
        "never below the base"
    );
    assert_eq!(config.inbox.handler_timeout, Duration::from_millis(1500));
    assert_eq!(config.inbox.on_malformed, OnMalformed::Refuse);
    assert_eq!(config.inbox.url.as_deref(), Some("sqlite::memory:"));
    let kept = KeptLimits::new()
        .with_max_dead_letters(5)
        .with_max_quarantined(6)
        .with_max_quarantined_bytes(7)
        .with_max_dead_letters_per_account(2)
        .with_max_quarantined_per_account(3)
        .with_max_quarantined_bytes_per_account(4);
    assert_eq!(config.inbox.kept, kept);
    assert_eq!(config.guard.read_timeout, Duration::from_millis(2500));
    assert_eq!(config.guard.max_concurrent_requests, 16);
    assert_eq!(config.guard.max_buffered_bytes, 4096);
    assert_eq!(config.guard.summary_every, Duration::from_secs(1));
    let capture = config.capture.unwrap();
    assert_eq!((capture.max_files, capture.max_bytes), (8, 9));
}

#[test]
fn a_bad_value_is_an_error_naming_its_variable() {
    for (name, value) in [
        ("ALM_LISTEN", "nowhere"),
        ("ALM_AUTH", "kerberos"),
        ("ALM_MAX_BODY_BYTES", "lots"),
        ("ALM_MAX_BODY_BYTES", "0"),
        ("ALM_LEASE_SECS", "-1"),
        ("ALM_COMMIT_BATCH", "0"),
        ("ALM_PROJECTION", "maybe"),
        ("ALM_MODE", "fast"),
        ("ALM_ON_MALFORMED", "ignore"),
        ("ALM_WORKERS", "0"),
        ("ALM_MAX_ATTEMPTS", "many"),
        ("ALM_RETRY_BASE_MS", "-1"),
        ("ALM_RETRY_MAX_MS", "soon"),
        ("ALM_HANDLER_TIMEOUT_MS", "0"),
        ("ALM_MAX_DEAD_LETTERS", "x"),
        ("ALM_MAX_QUARANTINED", "0"),
        ("ALM_MAX_QUARANTINED_BYTES", "1e9"),
        ("ALM_MAX_DEAD_LETTERS_PER_ACCOUNT", "0"),
        ("ALM_MAX_QUARANTINED_PER_ACCOUNT", "some"),
        ("ALM_MAX_QUARANTINED_BYTES_PER_ACCOUNT", "-1"),
        ("ALM_READ_TIMEOUT_MS", "0"),
        ("ALM_MAX_CONCURRENT_REQUESTS", "all"),
        ("ALM_MAX_BUFFERED_BYTES", "-5"),
        ("ALM_REFUSAL_SUMMARY_MS", "never"),
        ("ALM_CAPTURE_MAX_FILES", "0"),
        ("ALM_CAPTURE_MAX_BYTES", "big"),
        ("ALM_RECONCILE", "sometimes"),
        ("ALM_RATE_LIMIT", "0"),
        ("ALM_ACCOUNT_RATE_LIMIT", "fast"),
        ("ALM_ARCHIVE_DAYS", "-1"),
        ("ALM_ARCHIVE_DAYS", "a month"),
    ] {
        let e = error(&[(name, value)]);
        assert_eq!(e.variable(), Some(name), "{name}={value}: {e}");
        assert!(e.to_string().starts_with(name), "{e}");
        assert!(e.to_string().contains(value), "the value is shown: {e}");
    }
}

#[test]
fn authentication_needs_its_variables() {
    let e = error(&[("ALM_AUTH", "signature")]);
    assert_eq!(e.variable(), Some("ALM_SIGNING_SECRET"));
    let e = error(&[("ALM_AUTH", "basic"), ("ALM_BASIC_USER", "alm")]);
    assert_eq!(e.variable(), Some("ALM_BASIC_PASSWORD"));
    let e = error(&[
        ("ALM_AUTH", "standard"),
        ("ALM_SIGNING_SECRET", "not-a-key-hunter2"),
    ]);
    assert_eq!(e.variable(), Some("ALM_SIGNING_SECRET"));
    assert!(!e.to_string().contains("hunter2"), "{e}");
    let e = error(&[
        ("ALM_AUTH", "signature"),
        ("ALM_SIGNING_SECRET", "s3cret"),
        ("ALM_TIMESTAMP_HEADER", "x-alm-timestamp"),
    ]);
    assert_eq!(e.variable(), Some("ALM_TIMESTAMP_HEADER"));
    assert!(e.to_string().contains("not in the signed content"), "{e}");
    let e = error(&[
        ("ALM_AUTH", "signature"),
        ("ALM_SIGNING_SECRET", "s3cret"),
        ("ALM_SIGNATURE_HEADER", "not a header"),
    ]);
    assert_eq!(e.variable(), Some("ALM_SIGNATURE_HEADER"));
    let e = error(&[
        ("ALM_AUTH", "signature"),
        ("ALM_SIGNING_SECRET", "s3cret"),
        ("ALM_TIMESTAMP_TOLERANCE_SECS", "soon"),
    ]);
    assert_eq!(e.variable(), Some("ALM_TIMESTAMP_TOLERANCE_SECS"));
    let e = error(&[("ALM_ADMIN_TOKEN", "short-hunter2")]);
    assert_eq!(e.variable(), Some("ALM_ADMIN_TOKEN"));
    assert!(e.to_string().contains("at least 32") && !e.to_string().contains("hunter2"));
    let signature = Config::from_vars([
        ("ALM_AUTH", "signature"),
        ("ALM_SIGNING_SECRET", "s3cret"),
        ("ALM_SIGNATURE_HEADER", "x-sig"),
    ])
    .unwrap();
    assert!(matches!(signature.auth, Authentication::Signature(_)));
    assert!(signature.warnings().is_empty());
}

#[test]
fn debug_shows_no_secret_and_no_url() {
    let token = "admin-token-0123456789abcdef-hunter2";
    let config = Config::from_vars([
        ("ALM_AUTH", "basic"),
        ("ALM_BASIC_USER", "alm"),
        ("ALM_BASIC_PASSWORD", "pw-hunter2"),
        (
            "ALM_STORE",
            "postgres://alm:pg-hunter2@db.internal/alm?schema=alm",
        ),
        ("ALM_INBOX", "redis://:rd-hunter2@cache.internal/"),
        ("ALM_ADMIN_TOKEN", token),
    ])
    .unwrap();
    let shown = format!("{config:?} {config:#?}");
    for secret in ["hunter2", "db.internal", "cache.internal", token] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(
        shown.contains("postgres") && shown.contains("redis"),
        "{shown}"
    );
    let signed = Config::from_vars([
        ("ALM_AUTH", "signature"),
        ("ALM_SIGNING_SECRET", "sig-hunter2"),
    ])
    .unwrap();
    assert!(!format!("{signed:?}").contains("hunter2"));
    let libpq = Config::from_vars([("ALM_STORE", "host=db password=lq-hunter2")]).unwrap();
    assert!(!format!("{libpq:?}").contains("hunter2"));
}

#[cfg(feature = "alm-api")]
#[test]
fn the_api_secrets_are_never_shown() {
    let config = Config::from_vars([
        ("ALM_RECONCILE", "repair"),
        ("ALM_ACCOUNT_ID", "1234"),
        ("ALM_API_CLIENT_ID", "app"),
        ("ALM_API_CLIENT_SECRET", "cs-hunter2"),
        ("ALM_API_REFRESH_TOKEN", "rt-hunter2"),
    ])
    .unwrap();
    assert!(!format!("{config:?}").contains("hunter2"));
    let e = error(&[("ALM_RECONCILE", "report"), ("ALM_API_CLIENT_ID", "app")]);
    assert_eq!(e.variable(), Some("ALM_API_CLIENT_SECRET"), "{e}");
    let e = error(&[
        ("ALM_RECONCILE", "report"),
        ("ALM_API_CLIENT_ID", "app"),
        ("ALM_API_CLIENT_SECRET", "cs-hunter2"),
        ("ALM_API_REFRESH_TOKEN", "rt-hunter2"),
    ]);
    assert_eq!(e.variable(), Some("ALM_ACCOUNT_ID"), "{e}");
    let e = error(&[("ALM_RECONCILE_EVERY", "weekly")]);
    assert_eq!(e.variable(), Some("ALM_RECONCILE_EVERY"));
}

#[cfg(not(feature = "alm-api"))]
#[test]
fn reconciliation_needs_the_feature() {
    let e = error(&[("ALM_RECONCILE", "repair")]);
    assert_eq!(e.variable(), Some("ALM_RECONCILE"));
    assert!(Config::from_vars([("ALM_RECONCILE", "off")]).is_ok());
}

#[test]
fn warnings_name_what_to_look_at() {
    let config = Config::from_vars([
        ("ALM_STORE", "redis://cache/"),
        ("ALM_CAPTURE_DIR", "/tmp/captures"),
    ])
    .unwrap();
    let warnings = config.warnings();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[1].starts_with("ALM_CAPTURE_DIR=/tmp/captures"));
    // Every store keeps the learner table now (Redis too): no warning.
    assert!(!warnings.iter().any(|w| w.contains("ALM_PROJECTION")));
}

/// The one table: every variable read is in `docs/environment.md`, and
/// every variable of its tables but the test knobs is read.
#[test]
fn the_environment_table_lists_every_variable() {
    let table = include_str!("../../docs/environment.md");
    let (production, knobs) = table
        .split_once("## Test knobs")
        .expect("a test knobs section");
    for name in VARIABLES {
        assert!(
            production.contains(&format!("`{name}`")),
            "{name} is not in the table"
        );
    }
    for word in production.split('`').skip(1).step_by(2) {
        if word.starts_with("ALM_")
            && word
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        {
            assert!(
                VARIABLES.contains(&word),
                "{word} is in the table but not read"
            );
        }
    }
    assert!(knobs.contains("ALM_HANDLER_FAIL_ON"));
}

#[test]
fn rate_limits_reach_the_workers() {
    let config = Config::from_vars([("ALM_LISTEN", "127.0.0.1:0")]).unwrap();
    assert_eq!(
        (config.inbox.rate_limit, config.inbox.account_rate_limit),
        (None, None)
    );
    let vars = [
        ("ALM_RATE_LIMIT", "500"),
        ("ALM_ACCOUNT_RATE_LIMIT", " 50 "),
    ];
    let config = Config::from_vars(vars).unwrap();
    let options = config
        .inbox
        .worker_options(std::time::Duration::from_secs(60));
    let limits = (options.rate_limit(), options.account_rate_limit());
    assert_eq!(
        limits,
        (
            std::num::NonZeroU32::new(500),
            std::num::NonZeroU32::new(50)
        )
    );
}

#[test]
fn alm_forward_takes_sink_urls_and_names_itself_when_refused() {
    let config = Config::from_vars([(
        "ALM_FORWARD",
        "nats://127.0.0.1:4222/alm?stream=ALM amqp://u:hunter2@mq/%2f?exchange=alm kafka://kafka:9092/alm",
    )])
    .unwrap();
    assert!(config.store.forward.is_some());
    let shown = format!("{config:?}");
    assert!(
        shown.contains("\"nats\"") && shown.contains("\"amqp\"") && shown.contains("\"kafka\""),
        "{shown}"
    );
    assert!(
        !shown.contains("hunter2") && !shown.contains("mq/"),
        "{shown}"
    );
    for refused in ["ftp://x/y", "http://x/y"] {
        let e = Config::from_vars([("ALM_FORWARD", refused)]).unwrap_err();
        assert_eq!(e.variable(), Some("ALM_FORWARD"), "{e}");
    }
    assert!(
        Config::from_vars([("ALM_FORWARD", " ")])
            .unwrap()
            .store
            .forward
            .is_none()
    );
}

#[test]
fn alm_archive_days_sets_the_retention_and_zero_turns_it_off() {
    let day = std::time::Duration::from_secs(86_400);
    let lease = std::time::Duration::from_secs(60);
    let config = Config::from_vars([("ALM_MODE", "inbox")]).unwrap();
    assert_eq!(config.inbox.archive, 30 * day, "the library's default");
    assert_eq!(
        config.inbox.worker_options(lease).archive(),
        Some(crate::inbox::DEFAULT_ARCHIVE_RETENTION)
    );
    let config = Config::from_vars([("ALM_ARCHIVE_DAYS", " 7 ")]).unwrap();
    assert_eq!(config.inbox.worker_options(lease).archive(), Some(7 * day));
    let config = Config::from_vars([("ALM_ARCHIVE_DAYS", "0")]).unwrap();
    assert_eq!(config.inbox.worker_options(lease).archive(), None, "off");
}
