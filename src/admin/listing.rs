//! How the admin API shows what the inbox keeps: listings carry metadata
//! and a short preview (a listing of large bodies must not cost their
//! size, let alone six times it once JSON-escaped); one entry by id
//! carries it whole.

use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;

use crate::inbox::{DeadLetter, Quarantined};

/// At most this many entries in a listing.
pub(super) const PAGE: usize = 100;
/// Characters of a body or event shown in a listing.
const PREVIEW_CHARS: usize = 200;
/// Characters of an error shown in a listing.
const ERROR_CHARS: usize = 500;

/// The `after` of a listing's query (`after=ID`, other parameters
/// ignored): `Err` when it is not a number.
pub(super) fn after(query: &str) -> Result<Option<u64>, ()> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("after="))
        .map(|id| id.parse().map_err(|_| ()))
        .transpose()
}

/// `text` cut at `max` characters, with `…` when cut.
fn preview(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// A dead letter in a listing: metadata and a preview of its event.
pub(super) fn letter_summary(d: &DeadLetter) -> Value {
    let l = &d.letter;
    json!({
        "id": d.id.get(),
        "accountId": l.account_id.get(),
        "eventId": l.event_id,
        "eventName": l.event_name,
        "attempts": l.attempts,
        "error": preview(&l.error, ERROR_CHARS),
        "bytes": l.event.len(),
        "preview": preview(&l.event, PREVIEW_CHARS),
    })
}

/// One dead letter whole: its event as JSON (as text if it is not).
pub(super) fn letter_full(d: &DeadLetter) -> Value {
    let l = &d.letter;
    let event =
        serde_json::from_str::<Value>(&l.event).unwrap_or_else(|_| Value::String(l.event.clone()));
    json!({
        "id": d.id.get(),
        "accountId": l.account_id.get(),
        "eventId": l.event_id,
        "eventName": l.event_name,
        "attempts": l.attempts,
        "error": l.error,
        "event": event,
    })
}

/// A quarantined body in a listing: metadata and a preview.
pub(super) fn quarantined_summary(q: &Quarantined) -> Value {
    let text = String::from_utf8_lossy(&q.body[..q.body.len().min(PREVIEW_CHARS * 4)]);
    let mut shown = preview(&text, PREVIEW_CHARS);
    if q.body.len() > PREVIEW_CHARS * 4 && !shown.ends_with('…') {
        shown.push('…');
    }
    json!({
        "id": q.id.get(),
        "accountId": q.account_id.map(|a| a.get()),
        "receivedAt": q.received_at.format(&Rfc3339).unwrap_or_default(),
        "bytes": q.body.len(),
        "preview": shown,
        "error": preview(&q.error, ERROR_CHARS),
    })
}

/// One quarantined body whole.
pub(super) fn quarantined_full(q: &Quarantined) -> Value {
    json!({
        "id": q.id.get(),
        "accountId": q.account_id.map(|a| a.get()),
        "receivedAt": q.received_at.format(&Rfc3339).unwrap_or_default(),
        "bytes": q.body.len(),
        "body": String::from_utf8_lossy(&q.body),
        "error": q.error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_starts_after_the_id_asked() {
        assert_eq!(after(""), Ok(None));
        assert_eq!(after("after=42"), Ok(Some(42)));
        assert_eq!(after("x=1&after=7"), Ok(Some(7)));
        assert_eq!(after("after=seven"), Err(()));
    }

    #[test]
    fn previews_are_cut_on_characters() {
        assert_eq!(preview("abc", 3), "abc");
        assert_eq!(preview("abcd", 3), "abc…");
        assert_eq!(preview("ééééé", 2), "éé…");
    }
}
