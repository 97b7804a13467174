//! Bodies shared by the benchmarks.

#![allow(dead_code)]

/// One event in ALM's shape, about 330 bytes.
pub(crate) fn event(n: usize) -> String {
    format!(
        r#"{{"eventId":"29123ec1-4576-4ec5-a057-{n:012}","eventName":"COURSE_ENROLLMENT","timestamp":1725524713,"eventInfo":"1725524713000-040366-10488-0","data":{{"userId":{user},"loId":"course:1234567","loInstanceId":"course:1234567_1234567","loType":"course","enrollmentSource":"SELF_ENROLL","dateEnrolled":1725524713}}}}"#,
        user = 1_000_000 + n
    )
}

/// An envelope of `count` events, ids starting at `first`.
pub(crate) fn body(first: usize, count: usize) -> Vec<u8> {
    let events: Vec<String> = (first..first + count).map(event).collect();
    format!(r#"{{"accountId":1234,"events":[{}]}}"#, events.join(",")).into_bytes()
}
