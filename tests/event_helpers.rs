//! The helpers a handler reads without a `match` (account, learner,
//! learning object, instance, kind, batch), on every sample payload; unknown
//! fields kept through a round trip; both spellings of a learning program;
//! the handler's error chain in the report.

use alm_webhooks::{AccountId, Envelope, EventData, LoKind, LoType, ProgramSpelling, UserId};
use alm_webhooks::{Decision, Engine};
use serde_json::{Value, json};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// (fixture, accountId, userId, loId, loInstanceId, kind, batch), as in the
/// sample payloads (`_BATCH` by the event name the sample carries).
type Sample = (
    &'static str,
    u64,
    Option<u64>,
    Option<&'static str>,
    Option<&'static str>,
    LoKind,
    bool,
);

const SAMPLES: &[Sample] = &[
    (
        "certification_completed",
        1234,
        Some(12345678),
        Some("certification:1245678"),
        Some("certification:1234567_160299"),
        LoKind::Certification,
        false,
    ),
    (
        "certification_completed_batch",
        1234,
        Some(12345678),
        Some("certification:134567"),
        Some("certification:1234567_160299"),
        LoKind::Certification,
        true,
    ),
    (
        "certification_enrollment",
        1234,
        Some(12345678),
        Some("certification:1234567"),
        Some("certification:123456_160299"),
        LoKind::Certification,
        false,
    ),
    (
        "certification_enrollment_batch",
        1234,
        Some(123456788),
        Some("certification:1234567"),
        Some("certification:12345678_160299"),
        LoKind::Certification,
        true,
    ),
    (
        "certification_unenrollment",
        1234,
        Some(12345678),
        Some("certification:1234567"),
        Some("certification:12345678_162078"),
        LoKind::Certification,
        false,
    ),
    (
        "certification_unenrollment_batch",
        1234,
        Some(12345678),
        Some("certification:1234567"),
        Some("certification:1234567_162078"),
        LoKind::Certification,
        true,
    ),
    (
        "ci_stats",
        1234,
        None,
        None,
        Some("course:1234567_123456775"),
        LoKind::Course,
        false,
    ),
    (
        "course_completed",
        1234,
        Some(12345678),
        Some("course:12345671"),
        Some("course:1234567_12345674"),
        LoKind::Course,
        false,
    ),
    (
        "course_completed_batch",
        1234,
        Some(112345678),
        Some("course:12345678"),
        Some("course:1234567_12345678"),
        LoKind::Course,
        true,
    ),
    (
        "course_enrollment",
        1234,
        Some(1234567),
        Some("course:1234567"),
        Some("course:1234567_1234567"),
        LoKind::Course,
        false,
    ),
    (
        "course_enrollment_batch",
        1234,
        Some(1234567),
        Some("course:1234567"),
        Some("course:12345678_123456788"),
        LoKind::Course,
        true,
    ),
    (
        "course_unenrollment_batch",
        1234,
        Some(123456781),
        Some("course:12345678"),
        Some("course:12345678_14450088"),
        LoKind::Course,
        true,
    ),
    (
        "course_unenrollment_corrected",
        1234,
        Some(12345671),
        Some("course:12345678"),
        Some("course:12345678_14450088"),
        LoKind::Course,
        false,
    ),
    (
        "introduction",
        1010,
        Some(4279332),
        Some("course:7374992"),
        Some("course:7376092_10250977"),
        LoKind::Course,
        true,
    ),
    (
        "learner_progress",
        1234,
        Some(12345678),
        Some("course:7542090"),
        Some("course:1234567_11234567"),
        LoKind::Course,
        false,
    ),
    (
        "learning_object_deletion",
        1234,
        None,
        Some("course:1234567"),
        None,
        LoKind::Course,
        false,
    ),
    (
        "learning_object_draft",
        1234,
        None,
        Some("course:12345671"),
        None,
        LoKind::Course,
        false,
    ),
    (
        "learning_object_instance_deletion",
        1234,
        None,
        Some("course:1234567"),
        Some("course:1234567_14453849"),
        LoKind::Course,
        false,
    ),
    (
        "learning_object_instance_modification",
        1234,
        None,
        Some("course:12345678"),
        Some("course:12345678_14453691"),
        LoKind::Course,
        false,
    ),
    (
        "learning_object_instance_modification_batch",
        1234,
        None,
        Some("course:1234568"),
        Some("course:12345678_14453691"),
        LoKind::Course,
        true,
    ),
    (
        "learning_object_modification",
        1234,
        None,
        Some("learningProgram:1234567"),
        None,
        LoKind::LearningProgram,
        true,
    ),
    (
        "learning_object_modification_batch",
        1234,
        None,
        Some("learningProgram:1234567"),
        None,
        LoKind::LearningProgram,
        true,
    ),
    (
        "learning_path_completed",
        1234,
        Some(11080928),
        Some("learningProgram:12345"),
        Some("learningProgram:12345_95662"),
        LoKind::LearningProgram,
        false,
    ),
    (
        "learning_path_completed_batch",
        1234,
        Some(12345678),
        Some("learningProgram:12345"),
        Some("learningProgram:12345_95662"),
        LoKind::LearningProgram,
        false,
    ),
    (
        "learning_path_enrollment",
        1234,
        Some(11234567),
        Some("learningProgram:123456"),
        Some("learningProgram:12345_134567"),
        LoKind::LearningProgram,
        false,
    ),
    (
        "learning_path_enrollment_batch",
        1234,
        Some(12345678),
        Some("learningProgram:12347"),
        Some("learningProgram:12345_12345"),
        LoKind::LearningProgram,
        false,
    ),
    (
        "learning_path_unenrollment_batch",
        1234,
        Some(1234567),
        Some("learning_program:1234567"),
        Some("learning_program:1234567_109139"),
        LoKind::LearningProgram,
        false,
    ),
    (
        "learning_path_unenrollment_corrected",
        1234,
        Some(12345678),
        Some("learning_program:1234567"),
        Some("learning_program:1234567_109139"),
        LoKind::LearningProgram,
        false,
    ),
];

#[test]
fn helpers_on_every_sample() {
    for &(name, account, user, lo, instance, kind, batch) in SAMPLES {
        let envelope = Envelope::from_slice(&fixture(name)).unwrap();
        let event = envelope.parsed().next().unwrap();
        assert_eq!(event.account_id, AccountId(account), "{name}");
        assert_eq!(event.user_id(), user.map(UserId), "{name}");
        assert_eq!(event.lo_id().map(|id| id.as_str()), lo, "{name}");
        assert_eq!(
            event.lo_instance_id().map(|id| id.as_str()),
            instance,
            "{name}"
        );
        assert_eq!(event.lo_kind(), Some(kind), "{name}");
        assert_eq!(event.is_batch(), batch, "{name}");
        assert!(event.subject().is_some(), "{name}");
        assert_eq!(event.data.user_id(), event.user_id(), "{name}");
    }
    assert_eq!(SAMPLES.len(), 28);
}

#[test]
fn unknown_events_have_no_subject_or_kind() {
    let body = br#"{"accountId":9,"events":[{"eventId":"x","eventName":"COURSE_SOMETHING_NEW","timestamp":1,"data":{"userId":7}}]}"#;
    let envelope = Envelope::from_slice(body).unwrap();
    let event = envelope.parsed().next().unwrap();
    assert_eq!(event.account_id, AccountId(9));
    assert_eq!(event.subject(), None);
    assert_eq!(event.lo_kind(), None);
    assert_eq!(event.user_id(), None);
    assert_eq!(event.lo_id(), None);
    assert_eq!(event.lo_instance_id(), None);
    assert!(!event.is_batch());
}

#[test]
fn account_id_on_the_slow_path_too() {
    // The second event is malformed, so the envelope is parsed event by
    // event: the good one still carries its account.
    let body = br#"{"events":[{"eventId":"a","eventName":"LEARNING_OBJECT_DRAFT","timestamp":1,"data":{"loId":"course:1"}},{"eventId":"b","eventName":"COURSE_ENROLLMENT","timestamp":1,"data":{"userId":"x"}}],"accountId":77}"#;
    let envelope = Envelope::from_slice(body).unwrap();
    assert_eq!(envelope.errors().count(), 1);
    assert_eq!(envelope.parsed().next().unwrap().account_id, AccountId(77));
}

/// Adds fields this crate does not know to every event and its `data`.
fn with_unknown_fields(mut original: Value) -> Value {
    for event in original["events"].as_array_mut().unwrap() {
        let object = event.as_object_mut().unwrap();
        object.insert("region".into(), json!("eu-1"));
        object.insert("trace".into(), json!({"hops": [1, 2], "ok": true}));
        if let Some(data) = event.get_mut("data").and_then(Value::as_object_mut) {
            data.insert("seatsLeft".into(), json!(3));
            data.insert("newThing".into(), json!({"a": [1, 2.5, null], "b": "é"}));
            data.insert("flag".into(), json!(false));
        }
    }
    original
}

#[test]
fn unknown_fields_round_trip_on_every_sample() {
    let dir = format!("{}/tests/fixtures", env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let Ok(original) = serde_json::from_slice::<Value>(&std::fs::read(&path).unwrap()) else {
            continue;
        };
        let sent = with_unknown_fields(original);
        let body = serde_json::to_vec(&sent).unwrap();
        let envelope = Envelope::from_slice(&body).unwrap();
        assert_eq!(envelope.errors().count(), 0, "{}", path.display());
        for event in envelope.parsed() {
            let other = match &event.data {
                EventData::Enrollment(d) | EventData::CompletionRollback(d) => &d.other,
                EventData::Unenrollment(d) => &d.other,
                EventData::Completion(d) => &d.other,
                EventData::LearnerProgress(d) => &d.other,
                EventData::LearningObject(d) => &d.other,
                EventData::LearningObjectInstance(d) => &d.other,
                EventData::InstanceStats(d) => &d.other,
                other => panic!("{}: {other:?}", path.display()),
            };
            assert_eq!(other["seatsLeft"], json!(3), "{}", path.display());
            assert_eq!(event.other["region"], json!("eu-1"), "{}", path.display());
            assert_eq!(
                event.other["trace"]["hops"],
                json!([1, 2]),
                "{}",
                path.display()
            );
            assert_eq!(other["newThing"]["b"], json!("é"), "{}", path.display());
        }
        assert_eq!(
            serde_json::to_value(&envelope).unwrap(),
            sent,
            "{}",
            path.display()
        );
        // One event alone serializes to what ALM sent for it.
        let first = envelope.parsed().next().unwrap();
        assert_eq!(serde_json::to_value(first).unwrap(), sent["events"][0]);
        checked += 1;
    }
    assert_eq!(checked, 28);
}

#[test]
fn a_repeated_unknown_field_is_refused_like_a_known_one() {
    let body = br#"{"accountId":1,"events":[{"eventId":"a","eventName":"LEARNING_OBJECT_DRAFT","timestamp":1,"data":{"loId":"course:1","x":1,"x":2}},{"eventId":"b","eventName":"LEARNING_OBJECT_DRAFT","timestamp":1,"data":{"loId":"course:1","loId":"course:2"}},{"eventId":"c","eventName":"LEARNING_OBJECT_DRAFT","timestamp":1,"region":"a","region":"b","data":{"loId":"course:1"}}]}"#;
    let envelope = Envelope::from_slice(body).unwrap();
    let errors: Vec<_> = envelope.errors().collect();
    assert_eq!(errors.len(), 3);
    assert_eq!(errors[2].field, "region");
    assert!(
        errors[2].message.contains("duplicate field `region`"),
        "{}",
        errors[2].message
    );
    assert_eq!(errors[1].field, "data");
    assert!(
        errors[1].message.contains("duplicate field `loId`"),
        "{}",
        errors[1].message
    );
}

#[test]
fn both_learning_program_spellings_round_trip_in_an_event() {
    for (text, spelling) in [
        ("learningProgram", ProgramSpelling::CamelCase),
        ("learning_program", ProgramSpelling::Underscore),
    ] {
        let sent = json!({"accountId": 1, "events": [{
            "eventId": "e", "eventName": "LEARNING_PATH_ENROLLMENT", "timestamp": 1725604249,
            "data": {"userId": 7, "loId": format!("{text}:1"), "loInstanceId": format!("{text}:1_2"),
                     "loType": text}}]});
        let envelope = Envelope::from_slice(&serde_json::to_vec(&sent).unwrap()).unwrap();
        let event = envelope.parsed().next().unwrap();
        let EventData::Enrollment(d) = &event.data else {
            panic!()
        };
        assert!(matches!(d.lo_type, Some(LoType::LearningProgram(s)) if s == spelling));
        assert_eq!(d.lo_type.as_ref().unwrap().as_str(), text);
        assert_eq!(event.lo_kind(), Some(LoKind::LearningProgram));
        assert_eq!(serde_json::to_value(&envelope).unwrap(), sent, "{text}");
    }
}

#[derive(Debug)]
struct Root;
impl std::fmt::Display for Root {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection refused")
    }
}
impl std::error::Error for Root {}

#[derive(Debug)]
struct Wrap(&'static str, Box<dyn std::error::Error + Send + Sync>);
impl std::fmt::Display for Wrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}
impl std::error::Error for Wrap {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.1)
    }
}

#[tokio::test]
async fn the_report_keeps_the_error_chain_and_the_error() {
    let body = br#"{"accountId":1,"events":[
      {"eventId":"a","eventName":"LEARNING_OBJECT_DRAFT","timestamp":1725519188,"data":{"loId":"course:1"}},
      {"eventId":"b","eventName":"LEARNING_OBJECT_DRAFT","timestamp":1725519188,"data":{"loId":"course:2"}},
      {"eventId":"c","eventName":"LEARNING_OBJECT_DRAFT","timestamp":1725519188,"data":{"loId":"course:3"}}]}"#;
    let envelope = Envelope::from_slice(body).unwrap();
    let report = Engine::in_memory()
        .process(envelope, |event| async move {
            match event.event_id.as_str() {
                "a" => Err(Wrap("sync failed", Box::new(Wrap("CRM call", Box::new(Root)))).into()),
                "b" => panic!("boom"),
                _ => {
                    let n: u8 = "300".parse()?; // `?` into BoxError
                    assert_eq!(n, 0);
                    Ok(())
                }
            }
        })
        .await
        .unwrap();
    let [a, b, c] = &report.outcomes[..] else {
        panic!()
    };
    assert_eq!(a.decision, Decision::Failed);
    assert_eq!(
        a.error_message(),
        Some("sync failed: CRM call: connection refused")
    );
    let failure = a.error.as_ref().unwrap();
    assert_eq!(failure.downcast_ref::<Wrap>().unwrap().0, "sync failed");
    let mut source = failure.error().unwrap().source();
    let mut depth = 0;
    while let Some(s) = source {
        depth += 1;
        source = s.source();
    }
    assert_eq!(depth, 2);
    assert_eq!(b.decision, Decision::Failed);
    assert!(b.error.as_ref().unwrap().is_panic());
    assert_eq!(b.error_message(), Some("the handler panicked"));
    assert_eq!(c.decision, Decision::Failed);
    assert_eq!(
        c.error_message(),
        Some("number too large to fit in target type")
    );
    assert!(
        c.error
            .as_ref()
            .unwrap()
            .downcast_ref::<std::num::ParseIntError>()
            .is_some()
    );
    assert_eq!(report.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
}
