//! A record kept as slots, for a store that merges without running Rust
//! (the Redis commit script): each field of the record's [`Summary`] is a
//! slot holding its winning event's sort key and value, and merging an
//! event is, for each slot it feeds, "keep the greater key". That is
//! exactly what [`Summary::add`] does, so the row rebuilt from the slots
//! is the row [`merge`](super::merge) makes.

use time::OffsetDateTime;

use super::event::{EventKey, LearnerEvent};
use super::record::LearnerRecord;
use super::summary::Summary;
use crate::{AccountId, LoInstanceId, UserId};

/// The key as bytes whose byte order is the merge order: `timestamp` and
/// the tie as fixed-width hex (the sign bit flipped, so negative times
/// sort first), the kind as one digit, then the event id's bytes.
pub(crate) fn sort_key(key: &EventKey) -> Vec<u8> {
    let at = (key.at as u64) ^ (1 << 63);
    let mut out = format!("{at:016x}{}{:016x}", key.kind as u8, key.tie).into_bytes();
    out.extend_from_slice(key.event_id.as_str().as_bytes());
    out
}

/// The slots one event feeds, each with the value it gives it (JSON);
/// every slot's winner is the event itself, so one sort key serves all.
pub(crate) fn slots_of(event: &LearnerEvent) -> Vec<(String, String)> {
    let mut summary = Summary::default();
    summary.add(event);
    let value = serde_json::to_value(&summary).unwrap_or_default();
    value
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, v)| !v.is_null())
        .map(|(slot, v)| (slot.clone(), v.to_string()))
        .collect()
}

/// The record its stored slots (slot name, value JSON) describe.
pub(crate) fn record_from_slots(
    account_id: AccountId,
    user_id: UserId,
    lo_instance_id: LoInstanceId,
    slots: impl IntoIterator<Item = (String, String)>,
    updated_at: OffsetDateTime,
) -> Result<LearnerRecord, serde_json::Error> {
    let mut object = serde_json::Map::new();
    for (slot, json) in slots {
        object.insert(slot, serde_json::from_str(&json)?);
    }
    let summary: Summary = serde_json::from_value(serde_json::Value::Object(object))?;
    LearnerRecord::from_summary(account_id, user_id, lo_instance_id, summary, updated_at)
        .ok_or_else(|| serde::de::Error::custom("stored slots without an event"))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::projection::LearnerEventKind as K;

    fn key(at: i64, kind: K, tie: u64, id: &str) -> EventKey {
        EventKey {
            at,
            kind,
            tie,
            event_id: id.parse().unwrap(),
        }
    }

    proptest! {
        #[test]
        fn byte_order_is_the_merge_order(
            a in (any::<i64>(), 0u8..5, any::<u64>(), "[a-c\u{0}é]{1,3}"),
            b in (any::<i64>(), 0u8..5, any::<u64>(), "[a-c\u{0}é]{1,3}"),
        ) {
            let kinds = [K::Enrollment, K::Progress, K::Completion, K::Rollback, K::Unenrollment];
            let a = key(a.0, kinds[usize::from(a.1)], a.2, &a.3);
            let b = key(b.0, kinds[usize::from(b.1)], b.2, &b.3);
            prop_assert_eq!(a.cmp(&b), sort_key(&a).cmp(&sort_key(&b)));
        }
    }
}
