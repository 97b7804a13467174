//! Every sample payload from ALM's documentation, parsed and checked field by
//! field.

use alm_webhooks::event::{EnrollmentSource, Percent, RawData};
use alm_webhooks::{
    AccountId, Envelope, Event, EventData, EventFamily, EventName, LoType, ParseError,
    ProgramSpelling, TimeFormat, UserId,
};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Parses a one-event fixture and checks the envelope and event header.
fn single(name: &str, event_id: &str, event_name: EventName, timestamp: i64, info: &str) -> Event {
    let envelope = Envelope::from_slice(&fixture(name)).unwrap();
    assert_eq!(envelope.events.len(), 1, "{name}");
    let event = envelope.events.into_iter().next().unwrap().unwrap();
    assert_eq!(event.event_id.as_str(), event_id, "{name}");
    assert_eq!(event.event_name, event_name, "{name}");
    assert_eq!(
        event.timestamp.as_ref().unwrap().instant().unix_timestamp(),
        timestamp,
        "{name}"
    );
    assert_eq!(event.event_info.as_deref(), Some(info), "{name}");
    event
}

fn account(name: &str) -> AccountId {
    Envelope::from_slice(&fixture(name)).unwrap().account_id
}

#[test]
fn introduction_sample_uses_milliseconds() {
    assert_eq!(account("introduction"), AccountId(1010));
    let e = single(
        "introduction",
        "d5fb7071-10a9-46b2-9f9e-79dde346c052",
        EventName::CourseEnrollmentBatch,
        1_727_414_643,
        "1727414643000-047210-84242-0",
    );
    assert_eq!(
        e.timestamp.as_ref().unwrap().format(),
        &TimeFormat::EpochMillis
    );
    let EventData::Enrollment(d) = e.data else {
        panic!("{:?}", e.data)
    };
    assert_eq!(d.user_id, UserId(4_279_332));
    assert_eq!(d.lo_id.as_str(), "course:7374992");
    assert_eq!(d.lo_instance_id.as_str(), "course:7376092_10250977");
    assert_eq!(d.lo_type, Some(LoType::Course));
    assert_eq!(d.enrollment_source, Some(EnrollmentSource::AdminEnroll));
    let enrolled = d.date_enrolled.unwrap();
    assert_eq!(enrolled.format(), &TimeFormat::EpochSeconds);
    assert_eq!(enrolled.instant().unix_timestamp(), 1_727_414_643);
    assert_eq!(
        enrolled,
        e.timestamp.clone().unwrap(),
        "seconds and millis compare as instants"
    );
}

#[test]
fn ci_stats() {
    assert_eq!(account("ci_stats"), AccountId(1234));
    let e = single(
        "ci_stats",
        "01234567-0458-4450-b5dd-6bc1edr4560",
        EventName::CiStats,
        1_725_604_147,
        "1725604145-LoSt",
    );
    assert_eq!(e.family(), EventFamily::InstanceStats);
    let EventData::InstanceStats(d) = e.data else {
        panic!()
    };
    assert_eq!(d.lo_instance_id.as_str(), "course:1234567_123456775");
    assert_eq!(d.waitlist_count, Some(0));
    assert_eq!(d.enrollment_count, Some(10));
    assert_eq!(d.seat_limit, Some(30));
    assert!(d.other.is_empty());
}

#[test]
fn enrollments() {
    let cases = [
        (
            "course_enrollment",
            "29123ec1-4576-4ec5-a057-3a6dr45t9d6",
            EventName::CourseEnrollment,
            1_725_524_713,
            "1725524713000-040366-10488-0",
            1_234_567,
            "course:1234567",
            "course:1234567_1234567",
            LoType::Course,
            EnrollmentSource::SelfEnroll,
            1_725_524_713,
        ),
        (
            "course_enrollment_batch",
            "29572ec1-4576-4ec5-a057-3wsd43r59d6",
            EventName::CourseEnrollmentBatch,
            1_725_524_713,
            "1725524713000-040366-10488-0",
            1_234_567,
            "course:1234567",
            "course:12345678_123456788",
            LoType::Course,
            EnrollmentSource::AdminEnroll,
            1_725_524_713,
        ),
        (
            "learning_path_enrollment",
            "96ed0791-338f-4c4c-83bc-9fwfr4564965",
            EventName::LearningPathEnrollment,
            1_725_604_249,
            "1725604248000-040653-71396-0",
            11_234_567,
            "learningProgram:123456",
            "learningProgram:12345_134567",
            LoType::LearningProgram(ProgramSpelling::CamelCase),
            EnrollmentSource::SelfEnroll,
            1_725_604_248,
        ),
        // The documentation's LEARNING_PATH_ENROLLMENT_BATCH sample says
        // LEARNING_PATH_ENROLLMENT: it is parsed by its name.
        (
            "learning_path_enrollment_batch",
            "96edft791-338f-4c4c-83bc-9f7erf94965",
            EventName::LearningPathEnrollment,
            1_725_604_249,
            "1725604248000-040653-71396-0",
            12_345_678,
            "learningProgram:12347",
            "learningProgram:12345_12345",
            LoType::LearningProgram(ProgramSpelling::CamelCase),
            EnrollmentSource::AdminEnroll,
            1_725_604_248,
        ),
        (
            "certification_enrollment",
            "8bdfr76-148e-4128-80e9-b89123456755",
            EventName::CertificationEnrollment,
            1_725_604_672,
            "1725604672000-040654-559128-0",
            12_345_678,
            "certification:1234567",
            "certification:123456_160299",
            LoType::Certification,
            EnrollmentSource::SelfEnroll,
            1_725_604_672,
        ),
        (
            "certification_enrollment_batch",
            "8b2ee776-148e-4128-80e9-12345678",
            EventName::CertificationEnrollmentBatch,
            1_725_604_672,
            "1725604672000-040654-559128-0",
            123_456_788,
            "certification:1234567",
            "certification:12345678_160299",
            LoType::Certification,
            EnrollmentSource::AdminEnroll,
            1_725_604_672,
        ),
    ];
    for (file, id, name, ts, info, user, lo, instance, ty, source, enrolled) in cases {
        let e = single(file, id, name, ts, info);
        assert_eq!(e.family(), EventFamily::Enrollment);
        let EventData::Enrollment(d) = e.data else {
            panic!("{file}")
        };
        assert_eq!(d.user_id, UserId(user), "{file}");
        assert_eq!(d.lo_id.as_str(), lo, "{file}");
        assert_eq!(d.lo_instance_id.as_str(), instance, "{file}");
        assert_eq!(d.lo_type, Some(ty), "{file}");
        assert_eq!(d.enrollment_source, Some(source), "{file}");
        assert_eq!(
            d.date_enrolled.unwrap().instant().unix_timestamp(),
            enrolled,
            "{file}"
        );
    }
}

#[test]
fn completions() {
    let cases = [
        (
            "course_completed",
            "c1a3168c-6c98-4ed3-b0b0-ba3da5087c1c",
            EventName::CourseCompleted,
            1_725_523_823,
            "1725523823000-040363-12018-0",
            12_345_678,
            "course:12345671",
            "course:1234567_12345674",
            EnrollmentSource::SelfEnroll,
            1_725_523_818,
            Some(true),
        ),
        (
            "course_completed_batch",
            "c1a3168c-6c98-4ed3-b0b0-ba3da5087c1c",
            EventName::CourseCompletedBatch,
            1_725_523_823,
            "1725523823000-040363-12018-0",
            112_345_678,
            "course:12345678",
            "course:1234567_12345678",
            EnrollmentSource::AdminEnroll,
            1_725_523_818,
            Some(true),
        ),
        (
            "learning_path_completed",
            "e207104e-d554-4027-944b-08fty6fdddf",
            EventName::LearningPathCompleted,
            1_725_604_392,
            "1725604391000-040653-314618-0",
            11_080_928,
            "learningProgram:12345",
            "learningProgram:12345_95662",
            EnrollmentSource::SelfEnroll,
            1_725_604_380,
            Some(true),
        ),
        // Sample named LEARNING_PATH_COMPLETED_BATCH carries the real-time name.
        (
            "learning_path_completed_batch",
            "e207104e-d554-4027-944b-086debefdddf",
            EventName::LearningPathCompleted,
            1_725_604_392,
            "1725604391000-040653-314618-0",
            12_345_678,
            "learningProgram:12345",
            "learningProgram:12345_95662",
            EnrollmentSource::AdminEnroll,
            1_725_604_380,
            Some(true),
        ),
        // Certification samples have no hasPassed.
        (
            "certification_completed",
            "b8b63bf8-7521-4bc0-bc51-7f951ff63ea9",
            EventName::CertificationCompleted,
            1_725_604_769,
            "1725604768000-040654-756257-0",
            12_345_678,
            "certification:1245678",
            "certification:1234567_160299",
            EnrollmentSource::SelfEnroll,
            1_725_604_740,
            None,
        ),
        (
            "certification_completed_batch",
            "b8b63bf8-7521-4bc0-bc51-7f951ff63ea9",
            EventName::CertificationCompletedBatch,
            1_725_604_769,
            "1725604768000-040654-756257-0",
            12_345_678,
            "certification:134567",
            "certification:1234567_160299",
            EnrollmentSource::AdminEnroll,
            1_725_604_740,
            None,
        ),
    ];
    for (file, id, name, ts, info, user, lo, instance, source, completed, passed) in cases {
        let e = single(file, id, name, ts, info);
        assert_eq!(e.family(), EventFamily::Completion);
        let EventData::Completion(d) = e.data else {
            panic!("{file}")
        };
        assert_eq!(d.user_id, UserId(user), "{file}");
        assert_eq!(d.lo_id.as_str(), lo, "{file}");
        assert_eq!(d.lo_instance_id.as_str(), instance, "{file}");
        assert_eq!(d.enrollment_source, Some(source), "{file}");
        assert_eq!(
            d.date_completed.unwrap().instant().unix_timestamp(),
            completed,
            "{file}"
        );
        assert_eq!(d.has_passed, passed, "{file}");
    }
}

#[test]
fn real_time_and_batch_samples_share_event_ids() {
    let id = |f: &str| {
        let envelope = Envelope::from_slice(&fixture(f)).unwrap();
        envelope.events[0].as_ref().unwrap().event_id.clone()
    };
    assert_eq!(id("course_completed"), id("course_completed_batch"));
    assert_eq!(
        id("certification_completed"),
        id("certification_completed_batch")
    );
    assert_eq!(
        id("certification_unenrollment"),
        id("certification_unenrollment_batch")
    );
    assert_ne!(id("course_enrollment"), id("course_enrollment_batch"));
}

#[test]
fn learner_progress() {
    let e = single(
        "learner_progress",
        "dd04d3a4-c3df-44fa-a1cf-7edd6e3d2075",
        EventName::LearnerProgress,
        1_725_604_552,
        "1725604551000-297002-5823-0",
    );
    let EventData::LearnerProgress(d) = e.data else {
        panic!()
    };
    assert_eq!(d.user_id, UserId(12_345_678));
    assert_eq!(d.lo_id.as_str(), "course:7542090");
    assert_eq!(d.lo_instance_id.as_str(), "course:1234567_11234567");
    assert_eq!(d.lo_type, Some(LoType::Course));
    assert_eq!(
        d.date_started.as_ref().unwrap().instant().unix_timestamp(),
        1_725_604_380
    );
    assert_eq!(d.progress_percent.map(Percent::get), Some(50.0));
}

#[test]
fn unenrollments() {
    let cases = [
        (
            "course_unenrollment_corrected",
            "f3417817-8cb8-40ea-a441-813bec1c7724",
            EventName::CourseUnenrollment,
            1_725_515_824,
            "1725506253000-040298-24078-0",
            12_345_671,
            "course:12345678_14450088",
            LoType::Course,
            EnrollmentSource::AdminEnroll,
        ),
        (
            "course_unenrollment_batch",
            "f3417817-8cb8-40ea-a441-8123e45724",
            EventName::CourseUnenrollmentBatch,
            1_725_515_824,
            "1725506253000-040298-24078-0",
            123_456_781,
            "course:12345678_14450088",
            LoType::Course,
            EnrollmentSource::SelfEnroll,
        ),
        (
            "learning_path_unenrollment_corrected",
            "8e5df878-1dfd-47ac-9bfe-7d123456d1",
            EventName::LearningPathUnenrollment,
            1_725_516_573,
            "1725506667000-040299-28209-0",
            12_345_678,
            "learning_program:1234567_109139",
            LoType::LearningProgram(ProgramSpelling::CamelCase),
            EnrollmentSource::SelfEnroll,
        ),
        (
            "learning_path_unenrollment_batch",
            "8e5df878-1dfd-47ac-9bfe-7d4952e3edd1",
            EventName::LearningPathUnenrollment,
            1_725_516_573,
            "1725506667000-040299-28209-0",
            1_234_567,
            "learning_program:1234567_109139",
            LoType::LearningProgram(ProgramSpelling::CamelCase),
            EnrollmentSource::AdminEnroll,
        ),
        (
            "certification_unenrollment",
            "7902766b-54d8-472d-b933-7e89d1b75ef8",
            EventName::CertificationUnenrollment,
            1_725_517_341,
            "1725507900000-040304-1065-0",
            12_345_678,
            "certification:12345678_162078",
            LoType::Certification,
            EnrollmentSource::SelfEnroll,
        ),
        (
            "certification_unenrollment_batch",
            "7902766b-54d8-472d-b933-7e89d1b75ef8",
            EventName::CertificationUnenrollmentBatch,
            1_725_517_341,
            "1725507900000-040304-1065-0",
            12_345_678,
            "certification:1234567_162078",
            LoType::Certification,
            EnrollmentSource::SelfEnroll,
        ),
    ];
    for (file, id, name, ts, info, user, instance, ty, source) in cases {
        let e = single(file, id, name, ts, info);
        assert_eq!(e.family(), EventFamily::Unenrollment);
        let EventData::Unenrollment(d) = e.data else {
            panic!("{file}")
        };
        assert_eq!(d.user_id, UserId(user), "{file}");
        assert_eq!(d.lo_instance_id.as_str(), instance, "{file}");
        assert_eq!(d.lo_type.as_ref(), Some(&ty), "{file}");
        assert_eq!(d.enrollment_source, Some(source), "{file}");
    }
    // `learning_program` is kept as spelled.
    let e = single(
        "learning_path_unenrollment_batch",
        "8e5df878-1dfd-47ac-9bfe-7d4952e3edd1",
        EventName::LearningPathUnenrollment,
        1_725_516_573,
        "1725506667000-040299-28209-0",
    );
    let EventData::Unenrollment(d) = e.data else {
        panic!()
    };
    assert_eq!(d.lo_type.unwrap().as_str(), "learning_program");
    assert_eq!(d.lo_id.as_str(), "learning_program:1234567");
}

#[test]
fn samples_with_trailing_commas_fail_at_the_comma() {
    for (file, line, column) in [
        ("course_unenrollment", 15, 7),
        ("learning_path_unenrollment", 16, 7),
    ] {
        let err = Envelope::from_slice(&fixture(file)).unwrap_err();
        let ParseError::Syntax {
            line: l,
            column: c,
            message,
        } = &err
        else {
            panic!("{file}: {err:?}")
        };
        assert_eq!((*l, *c), (line, column), "{file}: {err}");
        assert_eq!(message, "trailing comma", "{file}");
        assert_eq!(err.status(), http::StatusCode::BAD_REQUEST);
        assert_eq!(
            err.to_string(),
            format!("invalid JSON at line {line} column {column}: trailing comma")
        );
    }
}

#[test]
fn learning_objects() {
    let cases = [
        (
            "learning_object_draft",
            "1712349f-26ec-453c-b56a-cdf18a841948",
            EventName::LearningObjectDraft,
            1_725_519_188,
            "1725519188000-040344-48604-0",
            "course:12345671",
            LoType::Course,
        ),
        (
            "learning_object_deletion",
            "023456-5517-4c09-9cde-d953cdd8582c",
            EventName::LearningObjectDeletion,
            1_725_605_296,
            "1234567800-040656-662792-0",
            "course:1234567",
            LoType::Course,
        ),
        // The LEARNING_OBJECT_MODIFICATION sample carries the _BATCH name.
        (
            "learning_object_modification",
            "22345668-af3e-4dd3-a515-ce19d7234873",
            EventName::LearningObjectModificationBatch,
            1_725_523_081,
            "123456000-039736-54153-0",
            "learningProgram:1234567",
            LoType::LearningProgram(ProgramSpelling::CamelCase),
        ),
        (
            "learning_object_modification_batch",
            "2234567068-af3e-4dd3-a515-ce19d7234873",
            EventName::LearningObjectModificationBatch,
            1_725_523_081,
            "123456700-039736-54153-0",
            "learningProgram:1234567",
            LoType::LearningProgram(ProgramSpelling::CamelCase),
        ),
    ];
    for (file, id, name, ts, info, lo, ty) in cases {
        let e = single(file, id, name, ts, info);
        assert_eq!(e.family(), EventFamily::LearningObject);
        let EventData::LearningObject(d) = e.data else {
            panic!("{file}")
        };
        assert_eq!(d.lo_id.as_str(), lo, "{file}");
        assert_eq!(d.lo_type, Some(ty), "{file}");
    }
}

#[test]
fn learning_object_instances() {
    let cases = [
        (
            "learning_object_instance_modification",
            "b131da98-ab8d-43e9-b671-e79131cd69dc",
            EventName::LearningObjectInstanceModification,
            1_725_603_298,
            "1723456000-040649-741781-0",
            "course:12345678_14453691",
            "course:12345678",
        ),
        // The instance's own id and loId disagree in this sample; both are kept.
        (
            "learning_object_instance_modification_batch",
            "b23458-ab8d-43e9-b671-e79131cd69dc",
            EventName::LearningObjectInstanceModificationBatch,
            1_725_603_298,
            "112345000-040649-741781-0",
            "course:12345678_14453691",
            "course:1234568",
        ),
        (
            "learning_object_instance_deletion",
            "1234560-d73a-457b-83f3-666ba9654edb",
            EventName::LearningObjectInstanceDeletion,
            1_725_605_491,
            "17223456700-040657-236307-0",
            "course:1234567_14453849",
            "course:1234567",
        ),
    ];
    for (file, id, name, ts, info, instance, lo) in cases {
        let e = single(file, id, name, ts, info);
        assert_eq!(e.family(), EventFamily::LearningObjectInstance);
        let EventData::LearningObjectInstance(d) = e.data else {
            panic!("{file}")
        };
        assert_eq!(d.lo_instance_id.as_str(), instance, "{file}");
        assert_eq!(d.lo_id.as_str(), lo, "{file}");
        assert_eq!(d.lo_type, Some(LoType::Course), "{file}");
    }
}

/// Every fixture that is JSON serializes back to the same JSON value.
#[test]
fn every_fixture_round_trips() {
    let dir = format!("{}/tests/fixtures", env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let body = std::fs::read(&path).unwrap();
        let Ok(original) = serde_json::from_slice::<serde_json::Value>(&body) else {
            continue;
        };
        let envelope = Envelope::from_slice(&body).unwrap();
        assert_eq!(envelope.errors().count(), 0, "{}", path.display());
        let written = serde_json::to_value(&envelope).unwrap();
        assert_eq!(written, original, "{}", path.display());
        let again = Envelope::from_slice(&serde_json::to_vec(&envelope).unwrap()).unwrap();
        assert_eq!(again, envelope, "{}", path.display());
        checked += 1;
    }
    assert_eq!(checked, 28, "26 valid samples and 2 corrected twins");
}

#[test]
fn unknown_event_keeps_foreign_data() {
    let body = br#"{"accountId":1234,"events":[{"eventId":"my-own-id","eventName":"BULK_API_RESULT","timestamp":1727414643000,"data":{"status":"SUCCESS","request":{"ids":[1,2]}}},{"eventId":"x2","eventName":"TEST_WEBHOOK","timestamp":1727414643,"data":[1,"two"]},{"eventId":"x3","eventName":"NO_DATA","timestamp":1727414643}]}"#;
    let envelope = Envelope::from_slice(body).unwrap();
    let datas: Vec<_> = envelope.parsed().map(|e| &e.data).collect();
    assert_eq!(datas.len(), 3);
    let EventData::Unknown(Some(d)) = datas[0] else {
        panic!()
    };
    assert_eq!(d.get(), r#"{"status":"SUCCESS","request":{"ids":[1,2]}}"#);
    let EventData::Unknown(Some(d)) = datas[1] else {
        panic!()
    };
    assert_eq!(d.to_value().unwrap(), serde_json::json!([1, "two"]));
    assert_eq!(datas[2], &EventData::Unknown(None));
    let e = envelope.parsed().next().unwrap();
    assert_eq!(e.event_name.as_str(), "BULK_API_RESULT");
    assert_eq!(e.event_info, None);
    let _: &RawData = d;
    let written = serde_json::to_value(&envelope).unwrap();
    assert_eq!(
        written,
        serde_json::from_slice::<serde_json::Value>(body).unwrap()
    );
}
