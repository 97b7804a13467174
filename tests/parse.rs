//! Envelope and event parsing: time formats, per-event errors, hostile bodies.

use alm_webhooks::{AccountId, Envelope, EventName, ParseError, TimeFormat};

fn event(id: &str, timestamp: &str) -> String {
    format!(
        r#"{{"eventId":"{id}","eventName":"COURSE_ENROLLMENT","timestamp":{timestamp},"data":{{"userId":1,"loId":"course:1","loInstanceId":"course:1_2","dateEnrolled":{timestamp}}}}}"#
    )
}

fn envelope(events: &[String]) -> String {
    format!(r#"{{"accountId":1234,"events":[{}]}}"#, events.join(","))
}

#[test]
fn three_time_formats_are_the_same_instant() {
    let body = envelope(&[
        event("s", "1731037792"),
        event("ms", "1731037792000"),
        event("rfc", "\"2024-11-08T03:49:52.000Z\""),
        event("offset", "\"2024-11-08T04:49:52+01:00\""),
    ]);
    let parsed = Envelope::from_str(&body).unwrap();
    let times: Vec<_> = parsed
        .parsed()
        .map(|e| e.timestamp.clone().unwrap())
        .collect();
    assert_eq!(times.len(), 4);
    assert!(
        times
            .iter()
            .all(|t| t.instant().unix_timestamp() == 1_731_037_792)
    );
    assert_eq!(times[0].format(), &TimeFormat::EpochSeconds);
    assert_eq!(times[1].format(), &TimeFormat::EpochMillis);
    assert_eq!(
        times[2].format(),
        &TimeFormat::Rfc3339("2024-11-08T03:49:52.000Z".into())
    );
    assert_eq!(times[0], times[3]);
}

#[test]
fn seconds_millis_boundary_inside_events() {
    let body = envelope(&[event("a", "99999999999"), event("b", "100000000000")]);
    let parsed = Envelope::from_str(&body).unwrap();
    let times: Vec<_> = parsed
        .parsed()
        .map(|e| e.timestamp.clone().unwrap())
        .collect();
    assert_eq!(times[0].format(), &TimeFormat::EpochSeconds);
    assert_eq!(times[0].instant().unix_timestamp(), 99_999_999_999);
    assert_eq!(times[1].format(), &TimeFormat::EpochMillis);
    assert_eq!(times[1].instant().unix_timestamp(), 100_000_000);
}

#[test]
fn bad_events_in_a_batch_of_1000_do_not_touch_the_others() {
    let mut events: Vec<String> = (0..1000)
        .map(|i| event(&format!("e{i}"), "1725524713"))
        .collect();
    events[10] = r#"{"eventName":"COURSE_ENROLLMENT","timestamp":1,"data":{}}"#.to_owned();
    events[20] = r#"{"eventId":"e20","eventName":"COURSE_ENROLLMENT","timestamp":1,"data":{"userId":"x","loId":"course:1","loInstanceId":"course:1_2"}}"#.to_owned();
    events[30] =
        r#"{"eventId":"e30","eventName":"COURSE_ENROLLMENT","timestamp":"yesterday","data":{}}"#
            .to_owned();
    events[40] = r#""not an event""#.to_owned();
    events[50] = r#"{"eventId":"e50","eventName":"COURSE_COMPLETED","timestamp":1,"data":{"userId":1,"loId":"course1","loInstanceId":"course:1_2"}}"#.to_owned();
    events[60] = r#"{"eventId":"e60","eventName":"CI_STATS","timestamp":1}"#.to_owned();
    events[70] = r#"{"eventId":42,"eventName":"CI_STATS","timestamp":1,"data":{}}"#.to_owned();
    events[80] =
        r#"{"eventId":"e80","eventId":"again","eventName":"CI_STATS","timestamp":1}"#.to_owned();
    let body = envelope(&events);
    let parsed = Envelope::from_str(&body).unwrap();
    assert_eq!(parsed.account_id, AccountId(1234));
    assert_eq!(parsed.events.len(), 1000);
    assert_eq!(parsed.parsed().count(), 992);
    let errors: Vec<_> = parsed.errors().collect();
    let summary: Vec<_> = errors
        .iter()
        .map(|e| {
            (
                e.index,
                e.event_id.as_ref().map(|id| id.as_str().to_owned()),
                e.field.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (10, None, "eventId"),
            (20, Some("e20".into()), "data.userId"),
            (30, Some("e30".into()), "timestamp"),
            (40, None, ""),
            (50, Some("e50".into()), "data.loId"),
            (60, Some("e60".into()), "data"),
            (70, None, "eventId"),
            (80, None, ""),
        ]
    );
    assert_eq!(errors[0].message, "missing field `eventId`");
    assert_eq!(errors[1].event_name, Some(EventName::CourseEnrollment));
    // The kind, never the value the sender wrote.
    assert!(
        errors[1].message.contains("invalid type: string,") && !errors[1].message.contains("\"x\""),
        "{}",
        errors[1].message
    );
    assert!(
        errors[2].message.contains("RFC 3339"),
        "{}",
        errors[2].message
    );
    assert_eq!(
        errors[3].message,
        "expected an event object, found a string"
    );
    assert!(errors[4].message.contains("loId"), "{}", errors[4].message);
    assert!(
        errors[7].message.contains("duplicate field `eventId`"),
        "{}",
        errors[7].message
    );
    // The raw JSON of each bad event is kept verbatim.
    assert_eq!(errors[3].raw.get(), r#""not an event""#);
    assert_eq!(errors[1].raw.get(), events[20]);
    // The good neighbours are intact and in order.
    let ids: Vec<_> = parsed
        .parsed()
        .take(11)
        .map(|e| e.event_id.as_str().to_owned())
        .collect();
    assert_eq!(ids.last().unwrap(), "e11");
    assert_eq!(errors[1].path(), "events[20].data.userId");
    assert!(
        errors[1]
            .to_string()
            .starts_with("events[20].data.userId (eventId \"e20\"): invalid type")
    );
}

#[test]
fn event_error_positions_point_into_the_body() {
    let body = "{\"accountId\":1,\"events\":[\n  {\"eventId\":\"ok\",\"eventName\":\"CI_STATS\",\"timestamp\":1,\"data\":{\"loInstanceId\":\"course:1_2\"}},\n  {\"eventId\":\"bad\",\"eventName\":\"CI_STATS\",\"timestamp\":1,\n   \"data\":{\"loInstanceId\":\"course:1_2\",\"seatLimit\":-5}}\n]}";
    let parsed = Envelope::from_str(body).unwrap();
    let err = parsed.errors().next().unwrap();
    assert_eq!(err.field, "data.seatLimit");
    assert_eq!(err.line, 4);
    let line = body.lines().nth(3).unwrap();
    // serde_json points at the last byte of the offending value.
    assert_eq!(
        &line[..err.column],
        "   \"data\":{\"loInstanceId\":\"course:1_2\",\"seatLimit\":-5"
    );
}

#[test]
fn envelope_shape_errors_name_the_field() {
    let cases: &[(&[u8], ParseError)] = &[
        (b"", ParseError::Empty),
        (b"  \n ", ParseError::Empty),
        (b"[]", ParseError::NotAnObject),
        (b"42", ParseError::NotAnObject),
        (
            br#"{"events":[]}"#,
            ParseError::MissingField { field: "accountId" },
        ),
        (
            br#"{"accountId":1}"#,
            ParseError::MissingField { field: "events" },
        ),
    ];
    for (body, expected) in cases {
        assert_eq!(
            &Envelope::from_slice(body).unwrap_err(),
            expected,
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    let invalid = |body: &str| match Envelope::from_str(body).unwrap_err() {
        ParseError::InvalidField { field, message } => (field, message),
        other => panic!("{body}: {other:?}"),
    };
    let (field, message) = invalid(r#"{"accountId":"1234","events":[]}"#);
    assert_eq!(field, "accountId");
    assert!(message.contains("invalid type: string"), "{message}");
    assert_eq!(invalid(r#"{"accountId":-1,"events":[]}"#).0, "accountId");
    assert_eq!(invalid(r#"{"accountId":1.5,"events":[]}"#).0, "accountId");
    let (field, message) = invalid(r#"{"accountId":1,"events":{}}"#);
    assert_eq!(
        (field, message.as_str()),
        ("events", "expected an array, found an object")
    );
    assert_eq!(
        invalid(r#"{"accountId":1,"accountId":2,"events":[]}"#).0,
        "accountId"
    );
}

#[test]
fn empty_events_array_is_a_valid_envelope() {
    let parsed =
        Envelope::from_str(r#"{"accountId":7,"events":[],"extra":{"ignored":true}}"#).unwrap();
    assert_eq!(parsed.account_id, AccountId(7));
    assert!(parsed.events.is_empty());
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    for depth in [129, 10_000, 1_000_000] {
        // A deep body is not an object.
        let body = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert_eq!(
            Envelope::from_str(&body).unwrap_err(),
            ParseError::NotAnObject,
            "{depth}"
        );
        // Deep nesting where a typed value is expected hits serde_json's limit.
        let body = format!(
            r#"{{"accountId":{}{},"events":[]}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        );
        assert!(matches!(
            Envelope::from_str(&body).unwrap_err(),
            ParseError::InvalidField {
                field: "accountId",
                ..
            }
        ));
        // Deep `data` of an unknown event, which is kept verbatim, is refused
        // for that event only: nothing deeper than 128 reaches the user.
        let nested = format!(
            r#"{{"accountId":1,"events":[{{"eventId":"x","eventName":"X","timestamp":1,"data":{}{}}},{{"eventId":"y","eventName":"Y","timestamp":1,"data":{{}}}}]}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        );
        let parsed = Envelope::from_str(&nested).unwrap();
        let err = parsed.errors().next().unwrap();
        assert_eq!((err.index, err.field.as_str()), (0, "data"), "{depth}");
        assert_eq!(err.message, "nesting deeper than 128", "{depth}");
        assert_eq!(parsed.parsed().next().unwrap().event_id.as_str(), "y");
    }
    // `data` nested exactly 128 deep is kept.
    let ok = format!(
        r#"{{"accountId":1,"events":[{{"eventId":"x","eventName":"X","timestamp":1,"data":{}{}}}]}}"#,
        "[".repeat(128),
        "]".repeat(128)
    );
    assert_eq!(Envelope::from_str(&ok).unwrap().parsed().count(), 1);
}

#[test]
fn hostile_numbers_and_bytes() {
    // serde_json reports numbers beyond f64 as syntax errors, at the number.
    let err = Envelope::from_str(r#"{"accountId":1e400,"events":[]}"#).unwrap_err();
    assert_eq!(
        err,
        ParseError::Syntax {
            line: 1,
            column: 18,
            message: "number out of range".into()
        }
    );
    let huge = "9".repeat(1_000_000);
    let err = Envelope::from_str(&format!(r#"{{"accountId":{huge},"events":[]}}"#)).unwrap_err();
    assert!(
        matches!(err, ParseError::Syntax { ref message, .. } if message == "number out of range"),
        "{err:?}"
    );
    // An unknown field is skipped without being converted, whatever its size.
    let ok = Envelope::from_str(&format!(r#"{{"accountId":1,"events":[],"x":{huge}}}"#)).unwrap();
    assert_eq!(ok.account_id, AccountId(1));
    // 1e400 as a time fails that event only.
    let body = envelope(&[event("a", "1e400"), event("b", "1725524713")]);
    let parsed = Envelope::from_str(&body).unwrap();
    let err = parsed.errors().next().unwrap();
    assert_eq!((err.index, err.field.as_str()), (0, "timestamp"));
    assert_eq!(parsed.parsed().next().unwrap().event_id.as_str(), "b");
    let mut bytes = envelope(&[event("a", "1725524713")]).into_bytes();
    let at = bytes.iter().position(|&b| b == b'a').unwrap();
    bytes[at] = 0xff;
    let err = Envelope::from_slice(&bytes).unwrap_err();
    assert!(matches!(err, ParseError::Syntax { line: 1, .. }), "{err:?}");
    let body = envelope(&[event("a", "1725524713")]) + "garbage";
    assert!(matches!(
        Envelope::from_str(&body).unwrap_err(),
        ParseError::Syntax { .. }
    ));
}

#[test]
fn error_status_is_bad_request() {
    assert_eq!(ParseError::Empty.status(), http::StatusCode::BAD_REQUEST);
    assert_eq!(
        Envelope::from_str("{").unwrap_err().position(),
        Some((1, 1))
    );
}

#[test]
fn data_before_event_name_and_null_data() {
    let body = r#"{"accountId":1,"events":[
        {"data":{"loId":"course:9","loType":"course"},"timestamp":1,"eventName":"LEARNING_OBJECT_DRAFT","eventId":"late-name"},
        {"eventId":"n","eventName":"SOMETHING_NEW","timestamp":1,"data":null},
        {"eventId":"k","eventName":"CI_STATS","timestamp":1,"data":null}
    ]}"#;
    let parsed = Envelope::from_str(body).unwrap();
    let good: Vec<_> = parsed.parsed().collect();
    assert_eq!(good.len(), 2);
    let alm_webhooks::EventData::LearningObject(d) = &good[0].data else {
        panic!()
    };
    assert_eq!(d.lo_id.as_str(), "course:9");
    assert_eq!(good[1].data, alm_webhooks::EventData::Unknown(None));
    let err = parsed.errors().next().unwrap();
    assert_eq!(
        (err.index, err.field.as_str(), err.message.as_str()),
        (2, "data", "missing field `data`")
    );
}

/// The one-pass path (every event good) and the event-by-event path (some
/// event bad) give the same events.
#[test]
fn fast_and_isolating_paths_agree() {
    let dir = format!("{}/tests/fixtures", env!("CARGO_MANIFEST_DIR"));
    let mut events = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) {
            events.push(value["events"][0].to_string());
        }
    }
    let all_good = Envelope::from_str(&envelope(&events)).unwrap();
    events.push(r#"{"eventId":"bad"}"#.to_owned());
    let one_bad = Envelope::from_str(&envelope(&events)).unwrap();
    assert_eq!(one_bad.errors().count(), 1);
    let a: Vec<_> = all_good.parsed().collect();
    let b: Vec<_> = one_bad.parsed().collect();
    assert_eq!(a.len(), 28);
    assert_eq!(a, b);
}

#[test]
fn an_unknown_event_needs_only_its_id_and_name() {
    let unknown = r#"{"eventId":"sync-1","eventName":"RESPONSE:ASYNCAPI_USERGROUP_USER_REMOVED","data":{"status":"SUCCESS"}}"#;
    let known = r#"{"eventId":"k","eventName":"COURSE_ENROLLMENT","data":{"userId":1,"loId":"course:1","loInstanceId":"course:1_2"}}"#;
    let bare = r#"{"eventId":"b","eventName":"SOMETHING_NEW"}"#;
    // Both parsing paths: the whole delivery at once, and event by event
    // (the bad known event forces the second).
    for body in [
        envelope(&[unknown.to_owned(), bare.to_owned()]),
        envelope(&[unknown.to_owned(), known.to_owned(), bare.to_owned()]),
    ] {
        let parsed = Envelope::from_str(&body).unwrap();
        let first = parsed.events[0].as_ref().unwrap();
        assert_eq!(
            first.event_name,
            EventName::from("RESPONSE:ASYNCAPI_USERGROUP_USER_REMOVED")
        );
        assert_eq!(
            (first.timestamp.as_ref(), first.event_info.as_ref()),
            (None, None)
        );
        assert_eq!(
            serde_json::to_string(first).unwrap(),
            unknown,
            "serialized as received, without a timestamp"
        );
        let last = parsed.events.last().unwrap().as_ref().unwrap();
        assert_eq!(last.event_id.as_str(), "b");
    }
    // A known event still needs its time.
    let parsed = Envelope::from_str(&envelope(&[known.to_owned()])).unwrap();
    let error = parsed.events[0].as_ref().unwrap_err();
    assert_eq!(error.path(), "events[0].timestamp");
    assert_eq!(error.message, "missing field `timestamp`");
}
