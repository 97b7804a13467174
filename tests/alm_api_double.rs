//! The client against the simulator's ALM API double: the budget counted at
//! the double (with and without `429`s it injects), the cache and merged
//! lookups, the token renewed before it expires, report jobs over the
//! double's ground truth, and secrets that never print.
#![cfg(all(feature = "alm-api", feature = "simulator"))]

use std::time::{Duration, Instant};

use alm_webhooks::alm_api::{AlmApi, ApiConfig, ApiError, ReportKind, WhenOverBudget};
use alm_webhooks::simulator::alm_api::{AlmApiDouble, DoubleOptions};
use alm_webhooks::simulator::scenario::{drop_share, envelope, learner_event};
use alm_webhooks::{Envelope, LoInstanceId, Timestamp, UserId};

const SECRETS: [&str; 2] = ["double-secret", "double-refresh"];

fn config(double: &AlmApiDouble) -> ApiConfig {
    let o = double.options();
    ApiConfig::new(
        double.base(),
        &o.client_id,
        &o.client_secret,
        &o.refresh_token,
    )
}

/// `users` learners, each enrolled in and progressing through one course.
fn seed(double: &AlmApiDouble, users: u64) {
    let mut events = Vec::new();
    for user in 1..=users {
        let instance = format!("course:{}_{}", 100 + user % 3, 900 + user % 3);
        events.push(learner_event(
            &format!("e{user}"),
            "COURSE_ENROLLMENT",
            1_725_000_000,
            user,
            &instance,
        ));
        events.push(learner_event(
            &format!("p{user}"),
            "LEARNER_PROGRESS",
            1_725_000_100,
            user,
            &instance,
        ));
    }
    double.record_sent(&envelope(1234, &events));
}

fn wait(secs: u64) -> WhenOverBudget {
    WhenOverBudget::Wait(Duration::from_secs(secs))
}

#[tokio::test]
async fn lookups_enrich_an_event_with_names_from_the_double() {
    let double = AlmApiDouble::start(DoubleOptions::default()).await.unwrap();
    seed(&double, 3);
    let api = AlmApi::new(config(&double)).unwrap();
    let body = envelope(
        1234,
        &[learner_event(
            "x",
            "COURSE_COMPLETED",
            1_725_000_200,
            2,
            "course:102_902",
        )],
    );
    double.record_sent(&body);
    let event = Envelope::from_slice(&body)
        .unwrap()
        .parsed()
        .next()
        .unwrap()
        .clone();

    let user = event.user(&api).await.unwrap().unwrap();
    assert_eq!(user.name.as_deref(), Some("Learner 2"));
    assert_eq!(user.email.as_deref(), Some("learner2@example.com"));
    let lo = event.learning_object(&api).await.unwrap().unwrap();
    assert_eq!(lo.name.as_deref(), Some("Course 102"));
    assert_eq!(lo.instance_ids[0].as_str(), "course:102_902");
    let instance = event.lo_instance(&api).await.unwrap().unwrap();
    assert_eq!(instance.state.as_deref(), Some("Active"));

    let enrollments = api.enrollments(UserId(2), wait(5)).await.unwrap();
    assert_eq!(enrollments.len(), 1);
    assert_eq!(enrollments[0].state.as_deref(), Some("COMPLETED"));
    assert_eq!(enrollments[0].progress_percent, Some(100));
    assert_eq!(
        enrollments[0].lo_instance_id.as_ref().unwrap().as_str(),
        "course:102_902"
    );

    let missing = api.user(UserId(999), wait(5)).await.unwrap_err();
    assert!(matches!(missing, ApiError::NotFound { .. }), "{missing:?}");
}

#[tokio::test]
async fn enrollments_follow_the_pages() {
    let double = AlmApiDouble::start(DoubleOptions::default()).await.unwrap();
    let events: Vec<_> = (0..23)
        .map(|n| {
            learner_event(
                &format!("e{n}"),
                "COURSE_ENROLLMENT",
                1_725_000_000,
                5,
                &format!("course:{n}_1"),
            )
        })
        .collect();
    double.record_sent(&envelope(1, &events));
    let api = AlmApi::new(config(&double)).unwrap();
    let all = api.enrollments(UserId(5), wait(5)).await.unwrap();
    assert_eq!(all.len(), 23);
    assert_eq!(double.counts().limited_requests, 3, "pages of 10, 10 and 3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_budget_is_never_exceeded_at_the_double() {
    // The double enforces 10 a second; the client's budget is 10 a second.
    let window = Duration::from_secs(1);
    let double = AlmApiDouble::start(DoubleOptions {
        limit: 10,
        window,
        ..DoubleOptions::default()
    })
    .await
    .unwrap();
    seed(&double, 40);
    let api = AlmApi::new(config(&double).with_budget(10, window)).unwrap();
    let started = Instant::now();
    let lookups = (1..=40).map(|user| {
        let api = api.clone();
        tokio::spawn(async move { api.user(UserId(user), wait(20)).await })
    });
    for lookup in lookups.collect::<Vec<_>>() {
        lookup.await.unwrap().unwrap();
    }
    let counts = double.counts();
    assert_eq!(counts.limited_requests, 40);
    assert!(counts.max_in_window <= 10, "{counts:?}");
    assert_eq!(
        counts.answered_429, 0,
        "the budget kept under the double's limit: {counts:?}"
    );
    // 2 in the first burst, then 8 a second: 40 lookups take about 4.75 s.
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_429s_are_waited_out_and_the_budget_still_holds() {
    let window = Duration::from_secs(2);
    let double = AlmApiDouble::start(DoubleOptions {
        limit: 10,
        window,
        ..DoubleOptions::default()
    })
    .await
    .unwrap();
    seed(&double, 12);
    double.inject_429(2, 1);
    let api = AlmApi::new(config(&double).with_budget(10, window)).unwrap();
    let lookups: Vec<_> = (1..=12)
        .map(|user| {
            let api = api.clone();
            tokio::spawn(async move { api.user(UserId(user), wait(30)).await })
        })
        .collect();
    let mut rate_limited = 0;
    for lookup in lookups {
        match lookup.await.unwrap() {
            Ok(user) => assert!(user.name.is_some()),
            Err(ApiError::RateLimited { .. }) => rate_limited += 1,
            Err(other) => panic!("{other:?}"),
        }
    }
    let counts = double.counts();
    assert_eq!(counts.answered_429, 2, "{counts:?}");
    assert_eq!(
        counts.ignored_retry_after, 0,
        "nothing sent during Retry-After: {counts:?}"
    );
    assert!(counts.max_in_window <= 10, "{counts:?}");
    assert_eq!(rate_limited, 0, "every lookup waited and got its answer");
}

#[tokio::test]
async fn one_lookup_waits_out_retry_after_before_trying_again() {
    let double = AlmApiDouble::start(DoubleOptions::default()).await.unwrap();
    seed(&double, 2);
    let api = AlmApi::new(config(&double)).unwrap();
    api.user(UserId(1), wait(5)).await.unwrap(); // the token, out of the way
    double.inject_429(1, 1);
    let started = Instant::now();
    let user = api.user(UserId(2), wait(5)).await.unwrap();
    assert_eq!(user.id, UserId(2));
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited Retry-After: {:?}",
        started.elapsed()
    );
    let counts = double.counts();
    assert_eq!(
        (counts.limited_requests, counts.answered_429),
        (3, 1),
        "{counts:?}"
    );
    // A caller that does not wait gets the 429 as an error, and the
    // account's next lookup is held back too.
    double.inject_429(1, 2);
    let error = api.user(UserId(1), WhenOverBudget::Fail).await;
    assert!(error.is_ok(), "cached: no request");
    api.clear_cache();
    let error = api.user(UserId(1), WhenOverBudget::Fail).await.unwrap_err();
    assert!(
        matches!(error, ApiError::RateLimited { retry_after } if retry_after == Duration::from_secs(2)),
        "{error:?}"
    );
    let held = api.user(UserId(2), WhenOverBudget::Fail).await.unwrap_err();
    assert!(
        matches!(held, ApiError::OverBudget { .. }),
        "held back by Retry-After: {held:?}"
    );
    assert_eq!(double.counts().limited_requests, 4);
}

#[tokio::test]
async fn over_budget_fails_at_once_when_the_caller_says_so() {
    let double = AlmApiDouble::start(DoubleOptions::default()).await.unwrap();
    seed(&double, 5);
    let api = AlmApi::new(config(&double).with_budget(2, Duration::from_secs(3600))).unwrap();
    api.user(UserId(1), WhenOverBudget::Fail).await.unwrap();
    let started = Instant::now();
    let refused = api.user(UserId(2), WhenOverBudget::Fail).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(200));
    let ApiError::OverBudget { retry_after } = refused else {
        panic!("{refused:?}")
    };
    assert!(
        retry_after > Duration::from_secs(60),
        "the next room is an hour/1 away: {retry_after:?}"
    );
    assert!(refused.to_string().contains("budget"), "{refused}");
    // Waiting less than the next room also fails, without sending.
    let refused = api.user(UserId(3), wait(1)).await.unwrap_err();
    assert!(matches!(refused, ApiError::OverBudget { .. }));
    assert_eq!(double.counts().limited_requests, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_lookups_of_one_id_share_one_request_and_the_cache_expires() {
    let double = AlmApiDouble::start(DoubleOptions::default()).await.unwrap();
    seed(&double, 3);
    let api = AlmApi::new(config(&double).with_cache(100, Duration::from_millis(400))).unwrap();
    let lookups: Vec<_> = (0..20)
        .map(|_| {
            let api = api.clone();
            tokio::spawn(async move { api.user(UserId(1), wait(5)).await })
        })
        .collect();
    for lookup in lookups {
        assert_eq!(lookup.await.unwrap().unwrap().id, UserId(1));
    }
    assert_eq!(
        double.lookups(),
        ["users/1"],
        "20 concurrent lookups, one request"
    );
    api.user(UserId(1), wait(5)).await.unwrap();
    assert_eq!(double.lookups().len(), 1, "answered from the cache");
    tokio::time::sleep(Duration::from_millis(500)).await;
    api.user(UserId(1), wait(5)).await.unwrap();
    assert_eq!(double.lookups().len(), 2, "the TTL passed: asked again");
}

#[tokio::test]
async fn the_access_token_is_renewed_before_it_expires() {
    let double = AlmApiDouble::start(DoubleOptions {
        token_lifetime: Duration::from_secs(2),
        ..DoubleOptions::default()
    })
    .await
    .unwrap();
    seed(&double, 3);
    let api = AlmApi::new(
        config(&double)
            .with_refresh_margin(Duration::from_millis(1000))
            .with_cache(100, Duration::from_millis(1)),
    )
    .unwrap();
    api.user(UserId(1), wait(5)).await.unwrap();
    api.user(UserId(2), wait(5)).await.unwrap();
    assert_eq!(double.counts().token_refreshes, 1, "one token for both");
    // 1.2 s later the token has 0.8 s left, inside the 1 s margin.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    api.user(UserId(3), wait(5)).await.unwrap();
    let counts = double.counts();
    assert_eq!(counts.token_refreshes, 2, "renewed before use: {counts:?}");
    assert_eq!(
        counts.unauthorized, 0,
        "never sent an expired token: {counts:?}"
    );

    // A token ALM forgot (revoked): one 401, a renewal, the answer.
    double.expire_tokens();
    api.user(UserId(1), wait(5)).await.unwrap();
    let counts = double.counts();
    assert_eq!(
        (counts.unauthorized, counts.token_refreshes),
        (1, 3),
        "{counts:?}"
    );
}

#[tokio::test]
async fn wrong_credentials_fail_clearly_and_no_secret_prints() {
    let double = AlmApiDouble::start(DoubleOptions::default()).await.unwrap();
    let o = double.options();
    let api = AlmApi::new(ApiConfig::new(
        double.base(),
        &o.client_id,
        "wrong-secret-123",
        "wrong-refresh-456",
    ))
    .unwrap();
    let error = api.user(UserId(1), wait(5)).await.unwrap_err();
    assert!(
        matches!(error, ApiError::Unauthorized { status: 400 }),
        "{error:?}"
    );
    let printed = format!("{error} {error:?} {api:?} {:?}", api.config());
    for secret in ["wrong-secret-123", "wrong-refresh-456"] {
        assert!(!printed.contains(secret), "{printed}");
    }

    // With good credentials: the access token never prints either.
    seed(&double, 1);
    let api = AlmApi::new(config(&double)).unwrap();
    api.user(UserId(1), wait(5)).await.unwrap();
    let error = api.user(UserId(77), wait(5)).await.unwrap_err();
    let printed = format!("{error} {error:?} {api:?} {:?}", api.config());
    for secret in SECRETS.iter().chain(&["double-access-1"]) {
        assert!(!printed.contains(secret), "{secret} in {printed}");
    }
}

#[tokio::test]
async fn a_report_job_runs_and_gives_the_ground_truth_including_dropped_events() {
    let double = AlmApiDouble::start(DoubleOptions {
        job_delay: Duration::from_millis(300),
        ..DoubleOptions::default()
    })
    .await
    .unwrap();
    let events: Vec<_> = (1..=200)
        .map(|user| {
            learner_event(
                &format!("c{user}"),
                "COURSE_COMPLETED",
                1_725_000_000,
                user,
                "course:7_70",
            )
        })
        .collect();
    let (sent, dropped) = drop_share(events, 0.05, 11);
    assert!(!dropped.is_empty() && !sent.is_empty());
    // ALM knows every event, delivered or lost.
    double.record_sent(&envelope(1, &sent));
    double.record_sent(&envelope(1, &dropped));
    let lost_user = dropped[0]["data"]["userId"].as_u64().unwrap();
    let instance: LoInstanceId = "course:7_70".parse().unwrap();
    assert_eq!(
        double.truth(UserId(lost_user), &instance).unwrap().state,
        "COMPLETED"
    );

    let api = AlmApi::new(config(&double)).unwrap();
    let from = Timestamp::from_epoch(1_700_000_000).unwrap();
    let to = Timestamp::from_epoch(1_800_000_000).unwrap();
    let csv = api
        .run_report(
            &ReportKind::LearnerTranscript,
            from,
            to,
            Duration::from_millis(100),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    let lines: Vec<_> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "userId,loId,loInstanceId,state,progressPercent,dateEnrolled,dateStarted,dateCompleted"
    );
    assert_eq!(lines.len(), 201);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("{lost_user},course:7,course:7_70,COMPLETED,100,")))
    );
    assert_eq!(double.counts().jobs_created, 1);
    assert_eq!(
        double.counts().limited_requests,
        0,
        "jobs are outside the users/learningObjects limit"
    );
}
