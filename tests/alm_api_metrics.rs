//! The budget's use shows in the metrics (feature `metrics`).
#![cfg(all(feature = "alm-api", feature = "simulator", feature = "metrics"))]

use std::time::Duration;

use alm_webhooks::UserId;
use alm_webhooks::alm_api::metrics::names;
use alm_webhooks::alm_api::{AlmApi, ApiConfig, WhenOverBudget};
use alm_webhooks::simulator::alm_api::{AlmApiDouble, DoubleOptions};
use alm_webhooks::simulator::scenario::{envelope, learner_event};
use metrics_util::debugging::DebuggingRecorder;

#[test]
fn budget_use_cache_and_refusals_are_counted_with_bounded_labels() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let double = AlmApiDouble::start(DoubleOptions::default()).await.unwrap();
            let events: Vec<_> = (1..=3)
                .map(|u| {
                    learner_event(
                        &format!("e{u}"),
                        "COURSE_ENROLLMENT",
                        1_725_000_000,
                        u,
                        "course:1_1",
                    )
                })
                .collect();
            double.record_sent(&envelope(1, &events));
            let o = double.options();
            let config = ApiConfig::new(
                double.base(),
                &o.client_id,
                &o.client_secret,
                &o.refresh_token,
            )
            .with_budget(2, Duration::from_secs(3600));
            let api = AlmApi::new(config).unwrap();
            let fail = WhenOverBudget::Fail;
            api.user(UserId(1), fail).await.unwrap();
            api.user(UserId(1), fail).await.unwrap(); // cached
            api.user(UserId(2), fail).await.unwrap_err(); // the burst of 1 is spent
        });
    });
    let all: Vec<_> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let labels: Vec<_> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            (key.name().to_owned(), labels.join(","), value)
        })
        .collect();
    let value = |name: &str, labels: &str| {
        all.iter()
            .find(|(n, l, _)| n == name && l == labels)
            .map(|(_, _, v)| format!("{v:?}"))
            .unwrap_or_else(|| panic!("{name}{{{labels}}} not in {all:?}"))
    };
    assert_eq!(
        value(names::BUDGET_USED_TOTAL, "endpoint=users"),
        "Counter(1)"
    );
    assert_eq!(
        value(names::BUDGET_REFUSED_TOTAL, "endpoint=users"),
        "Counter(1)"
    );
    assert_eq!(
        value(names::REQUESTS_TOTAL, "endpoint=users,outcome=ok"),
        "Counter(1)"
    );
    assert_eq!(value(names::CACHE_TOTAL, "result=hit"), "Counter(1)");
    assert_eq!(
        value(names::TOKEN_REFRESHES_TOTAL, "outcome=ok"),
        "Counter(1)"
    );
    assert_eq!(value(names::BUDGET_PER_HOUR, ""), "Gauge(2.0)");
    // No id is a label.
    for (name, labels, _) in &all {
        assert!(names::ALL.contains(&name.as_str()), "{name}");
        assert!(
            !labels.contains("=1") && !labels.contains("=2"),
            "{name}{{{labels}}}"
        );
    }
}
