//! A [`Summary`] as stored (`merge_state`): each winning event's key
//! written once, in a list, and each field naming its winner by position.
//! One event usually wins several fields (an enrollment wins five), so
//! this is about a quarter of the summary's own JSON (about 170 bytes for
//! an enrollment instead of 675): a smaller row to write and to read on
//! every merge. Rows written in the summary's own JSON (before this
//! format) are read too, and written packed at their next change.

use serde::{Deserialize, Serialize};

use super::event::{EventKey, LearnerEventKind};
use super::summary::{Summary, Won};
use crate::event::EnrollmentSource;
use crate::{EventId, EventName};

/// A key as `[at, kind, tie, eventId]`.
type Key = (i64, LearnerEventKind, u64, EventId);

/// The stored form: `k` the distinct winning keys, every other field the
/// position of its winner in `k` (and the value it won).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Packed {
    k: Vec<Key>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last: Option<(usize, EventName)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lifecycle: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    attempt: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    progress: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    percent: Option<(usize, f64)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    started: Option<(usize, i64)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    completion: Option<(usize, (i64, Option<bool>))>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    enrolled: Option<(usize, i64)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source: Option<(usize, EnrollmentSource)>,
}

impl Packed {
    /// The position of `key` in `k`, added if new.
    fn at(&mut self, key: &EventKey) -> usize {
        let same =
            |k: &Key| k.0 == key.at && k.1 == key.kind && k.2 == key.tie && k.3 == key.event_id;
        match self.k.iter().position(same) {
            Some(n) => n,
            None => {
                let k = (key.at, key.kind, key.tie, key.event_id.clone());
                self.k.push(k);
                self.k.len() - 1
            }
        }
    }

    fn won<V: Clone>(&mut self, won: &Option<Won<V>>) -> Option<(usize, V)> {
        won.as_ref().map(|w| (self.at(&w.key), w.value.clone()))
    }

    fn key(&self, n: usize) -> Result<EventKey, serde_json::Error> {
        let (at, kind, tie, event_id) = self
            .k
            .get(n)
            .cloned()
            .ok_or_else(|| serde::de::Error::custom("a packed summary names a missing key"))?;
        Ok(EventKey {
            at,
            kind,
            tie,
            event_id,
        })
    }

    fn unwon<V>(&self, slot: Option<(usize, V)>) -> Result<Option<Won<V>>, serde_json::Error> {
        slot.map(|(n, value)| {
            Ok(Won {
                key: self.key(n)?,
                value,
            })
        })
        .transpose()
    }

    fn unkey(&self, slot: Option<usize>) -> Result<Option<EventKey>, serde_json::Error> {
        slot.map(|n| self.key(n)).transpose()
    }
}

/// `summary` as stored.
pub(crate) fn to_json(summary: &Summary) -> String {
    let mut p = Packed::default();
    p.last = p.won(&summary.last);
    p.lifecycle = summary.lifecycle.as_ref().map(|k| p.at(k));
    p.attempt = summary.attempt.as_ref().map(|k| p.at(k));
    p.progress = summary.progress.as_ref().map(|k| p.at(k));
    p.percent = p.won(&summary.percent);
    p.started = p.won(&summary.started);
    p.completion = p.won(&summary.completion);
    p.enrolled = p.won(&summary.enrolled);
    p.source = p.won(&summary.source);
    serde_json::to_string(&p).unwrap_or_default()
}

/// A stored summary: packed, or the summary's own JSON (rows written
/// before the packed form).
pub(crate) fn from_json(text: &str) -> Result<Summary, serde_json::Error> {
    let p: Packed = match serde_json::from_str(text) {
        Ok(p) => p,
        Err(packed) => return serde_json::from_str(text).map_err(|_| packed),
    };
    Ok(Summary {
        last: p.unwon(p.last.clone())?,
        lifecycle: p.unkey(p.lifecycle)?,
        attempt: p.unkey(p.attempt)?,
        progress: p.unkey(p.progress)?,
        percent: p.unwon(p.percent)?,
        started: p.unwon(p.started)?,
        completion: p.unwon(p.completion)?,
        enrolled: p.unwon(p.enrolled)?,
        source: p.unwon(p.source.clone())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::projection::LearnerEvent;

    fn summary(events: &[&str]) -> Summary {
        let body = format!(r#"{{"accountId":1,"events":[{}]}}"#, events.join(","));
        let envelope = crate::Envelope::from_slice(body.as_bytes()).unwrap();
        let mut summary = Summary::default();
        for event in envelope.parsed() {
            summary.add(&LearnerEvent::from_event(event).unwrap());
        }
        summary
    }

    const ENROLL: &str = r#"{"eventId":"a","eventName":"COURSE_ENROLLMENT","timestamp":10,"data":{"userId":7,"loId":"course:1","loInstanceId":"course:1_2","enrollmentSource":"SELF_ENROLL"}}"#;
    const PROGRESS: &str = r#"{"eventId":"c","eventName":"LEARNER_PROGRESS","timestamp":20,"data":{"userId":7,"loId":"course:1","loInstanceId":"course:1_2","progressPercent":33.3,"dateStarted":15}}"#;
    const COMPLETE: &str = r#"{"eventId":"b","eventName":"COURSE_COMPLETED","timestamp":30,"data":{"userId":7,"loId":"course:1","loInstanceId":"course:1_2","dateCompleted":30,"hasPassed":true}}"#;

    #[test]
    fn a_packed_summary_reads_back_the_same_and_is_smaller() {
        for events in [
            &[ENROLL][..],
            &[ENROLL, PROGRESS],
            &[PROGRESS, COMPLETE, ENROLL],
        ] {
            let summary = summary(events);
            let packed = to_json(&summary);
            assert_eq!(from_json(&packed).unwrap(), summary, "{packed}");
            let plain = serde_json::to_string(&summary).unwrap();
            assert!(packed.len() * 2 < plain.len(), "{packed} vs {plain}");
        }
    }

    #[test]
    fn a_summary_in_its_own_json_still_reads() {
        let summary = summary(&[ENROLL, PROGRESS, COMPLETE]);
        let plain = serde_json::to_string(&summary).unwrap();
        assert_eq!(from_json(&plain).unwrap(), summary);
        // PostgreSQL's jsonb gives the keys back reordered and spaced.
        let value: serde_json::Value = serde_json::from_str(&to_json(&summary)).unwrap();
        let pretty = serde_json::to_string_pretty(&value).unwrap();
        assert_eq!(from_json(&pretty).unwrap(), summary);
    }

    #[test]
    fn a_packed_summary_naming_a_missing_key_does_not_read() {
        assert!(from_json(r#"{"k":[],"lifecycle":0}"#).is_err());
        assert!(
            from_json(r#"{"k":[[1,"Enrollment",0,"a"]],"last":[1,"COURSE_ENROLLMENT"]}"#).is_err()
        );
    }
}
