//! Envelopes to send, and the faults ALM's delivery shows: duplicates,
//! reordering and dropped connections.

use serde_json::{Value, json};

use super::Delivery;

/// An event to send, as JSON in ALM's shape.
///
/// ```
/// use alm_webhooks::simulator::scenario::{envelope, EventJson};
/// let event: EventJson = serde_json::json!({"eventId": "e1", "eventName": "SOMETHING_NEW"});
/// let body = envelope(7, &[event]);
/// assert!(alm_webhooks::Envelope::from_slice(&body).is_ok());
/// ```
pub type EventJson = Value;

/// A learner lifecycle or progress event for (`userId`, `loInstanceId`).
///
/// `name` picks the data's shape by family; `timestamp` is epoch seconds.
///
/// ```
/// use alm_webhooks::simulator::scenario::learner_event;
/// let e = learner_event("e1", "COURSE_ENROLLMENT", 1725524713, 7, "course:1_2");
/// assert_eq!(e["data"]["userId"], 7);
/// assert_eq!(e["data"]["loId"], "course:1");
/// ```
pub fn learner_event(
    event_id: &str,
    name: &str,
    timestamp: i64,
    user_id: u64,
    lo_instance_id: &str,
) -> EventJson {
    let lo_id = lo_instance_id
        .rsplit_once('_')
        .map_or(lo_instance_id, |(lo, _)| lo);
    let lo_type = lo_id.split_once(':').map_or("course", |(t, _)| t);
    let mut data = json!({
        "userId": user_id,
        "loId": lo_id,
        "loInstanceId": lo_instance_id,
        "loType": lo_type,
    });
    let source = if name.ends_with("_BATCH") {
        "ADMIN_ENROLL"
    } else {
        "SELF_ENROLL"
    };
    if name.contains("ENROLLMENT") || name.contains("ROLLBACK") {
        data["enrollmentSource"] = json!(source);
        if !name.contains("UNENROLLMENT") {
            data["dateEnrolled"] = json!(timestamp);
        }
    } else if name.contains("COMPLETED") {
        data["enrollmentSource"] = json!(source);
        data["dateCompleted"] = json!(timestamp);
        data["hasPassed"] = json!(true);
    } else if name == "LEARNER_PROGRESS" {
        data["dateStarted"] = json!(timestamp);
        data["progressPercent"] = json!(50);
    }
    json!({
        "eventId": event_id,
        "eventName": name,
        "timestamp": timestamp,
        "eventInfo": format!("{timestamp}000-simulator"),
        "data": data,
    })
}

/// An envelope's JSON for `account_id` and `events`.
///
/// ```
/// use alm_webhooks::simulator::scenario::{envelope, learner_event};
/// let body = envelope(1234, &[learner_event("e1", "COURSE_COMPLETED", 1725524713, 7, "course:1_2")]);
/// let parsed = alm_webhooks::Envelope::from_slice(&body).unwrap();
/// assert_eq!(parsed.account_id.get(), 1234);
/// assert_eq!(parsed.events.len(), 1);
/// ```
pub fn envelope(account_id: u64, events: &[EventJson]) -> Vec<u8> {
    serde_json::to_vec(&json!({ "accountId": account_id, "events": events })).unwrap_or_default()
}

/// A bulk batch of `count` `COURSE_ENROLLMENT_BATCH` events, one per learner
/// (`userId` 1..=count) in one instance, with ids `"{prefix}-{n}"`.
///
/// ```
/// use alm_webhooks::simulator::scenario::bulk_enrollments;
/// let events = bulk_enrollments("bulk", 3, 1725524713);
/// assert_eq!(events.len(), 3);
/// assert_eq!(events[2]["eventId"], "bulk-3");
/// assert_eq!(events[0]["eventName"], "COURSE_ENROLLMENT_BATCH");
/// ```
pub fn bulk_enrollments(prefix: &str, count: usize, timestamp: i64) -> Vec<EventJson> {
    (1..=count)
        .map(|n| {
            learner_event(
                &format!("{prefix}-{n}"),
                "COURSE_ENROLLMENT_BATCH",
                timestamp,
                n as u64,
                "course:1000_2000",
            )
        })
        .collect()
}

/// Faults to inject into a stream of events, as ALM's delivery shows them.
///
/// ```
/// use alm_webhooks::simulator::scenario::{bulk_enrollments, deliveries, Faults};
/// let faults = Faults { duplicate_every: Some(2), drop_every: Some(2), ..Faults::default() };
/// let plan = deliveries(1, bulk_enrollments("e", 4, 0), 2, faults);
/// // Two deliveries of two, then one more with every second event again.
/// assert_eq!(plan.len(), 3);
/// assert_eq!(plan[0].drop_attempts, [0], "the first attempt is cut");
/// assert!(plan[1].drop_attempts.is_empty());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    /// Send every n-th event again in a later delivery (at-least-once).
    pub duplicate_every: Option<usize>,
    /// Let real-time events overtake batch events.
    pub real_time_first: bool,
    /// Hold `LEARNER_PROGRESS` back to the end (it is aggregated, late).
    pub delay_progress: bool,
    /// Cut the connection of the first attempt of every n-th delivery.
    pub drop_every: Option<usize>,
}

/// Orders events as ALM may deliver them under `faults` (stable otherwise).
///
/// ```
/// use alm_webhooks::simulator::scenario::{Faults, learner_event, reorder};
/// let events = vec![
///     learner_event("a", "COURSE_ENROLLMENT_BATCH", 1, 1, "course:1_1"),
///     learner_event("b", "LEARNER_PROGRESS", 2, 1, "course:1_1"),
///     learner_event("c", "COURSE_COMPLETED", 3, 1, "course:1_1"),
/// ];
/// let faults = Faults { real_time_first: true, delay_progress: true, ..Faults::default() };
/// let ids: Vec<_> = reorder(events, faults).iter().map(|e| e["eventId"].clone()).collect();
/// assert_eq!(ids, ["c", "a", "b"]);
/// ```
pub fn reorder(events: Vec<EventJson>, faults: Faults) -> Vec<EventJson> {
    let rank = |e: &EventJson| {
        let name = e["eventName"].as_str().unwrap_or_default();
        let progress = name == "LEARNER_PROGRESS";
        let batch = name.ends_with("_BATCH") || progress;
        match (
            faults.delay_progress && progress,
            faults.real_time_first && batch,
        ) {
            (true, _) => 2,
            (false, true) => 1,
            (false, false) => 0,
        }
    };
    let mut events = events;
    events.sort_by_key(rank);
    events
}

/// Splits events into deliveries of at most `per_delivery` events, adds the
/// duplicates and dropped connections of `faults`, and returns what to send.
///
/// ```
/// use alm_webhooks::simulator::scenario::{bulk_enrollments, deliveries, Faults};
/// let plan = deliveries(1234, bulk_enrollments("e", 5, 0), 2, Faults::default());
/// assert_eq!(plan.len(), 3, "2 + 2 + 1 events");
/// ```
pub fn deliveries(
    account_id: u64,
    events: Vec<EventJson>,
    per_delivery: usize,
    faults: Faults,
) -> Vec<Delivery> {
    let events = reorder(events, faults);
    let mut out: Vec<Delivery> = events
        .chunks(per_delivery.max(1))
        .map(|chunk| Delivery::from(envelope(account_id, chunk)))
        .collect();
    if let Some(every) = faults.duplicate_every.filter(|&n| n > 0) {
        let again: Vec<EventJson> = events.iter().step_by(every).cloned().collect();
        if !again.is_empty() {
            out.push(Delivery::from(envelope(account_id, &again)));
        }
    }
    if let Some(every) = faults.drop_every.filter(|&n| n > 0) {
        for delivery in out.iter_mut().step_by(every) {
            delivery.drop_attempts.push(0);
        }
    }
    out
}

/// Drops a share of the events before they are sent, as ALM does when it
/// loses events ("if events are produced faster than they are consumed,
/// some events may be lost"): returns `(sent, dropped)`. The choice is a
/// pure function of `seed` and each event's position, so a run repeats.
///
/// Give every event, sent or dropped, to
/// [`AlmApiDouble::record_sent`](super::alm_api::AlmApiDouble::record_sent):
/// ALM knows what it lost.
///
/// ```
/// use alm_webhooks::simulator::scenario::{bulk_enrollments, drop_share};
/// let (sent, dropped) = drop_share(bulk_enrollments("e", 10_000, 0), 0.01, 7);
/// assert_eq!(sent.len() + dropped.len(), 10_000);
/// assert!((50..150).contains(&dropped.len()), "about 1 %: {}", dropped.len());
/// ```
pub fn drop_share(
    events: Vec<EventJson>,
    share: f64,
    seed: u64,
) -> (Vec<EventJson>, Vec<EventJson>) {
    let threshold = (share.clamp(0.0, 1.0) * u64::MAX as f64) as u64;
    let mut sent = Vec::with_capacity(events.len());
    let mut dropped = Vec::new();
    for (index, event) in events.into_iter().enumerate() {
        // splitmix64: a well-spread 64-bit value per (seed, index).
        let mut z = seed.wrapping_add((index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        if share > 0.0 && z <= threshold {
            dropped.push(event);
        } else {
            sent.push(event);
        }
    }
    (sent, dropped)
}
