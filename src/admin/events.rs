//! `GET /events?eventId=…|userId=…|loInstanceId=…&from=…&to=…`: the
//! archived events of an `eventId`, a learner or an instance, with what
//! was decided for each ([`Inbox::search_archive`]).

use http::{Response, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::AdminApi;
use super::answers::answer;
use super::records::url_pairs;
use crate::inbox::{ArchiveFilter, FoundEvent, Inbox, InboxError};
use crate::projection::utc_text;
use crate::{AccountId, EventName};

/// How many events a search answers by default, and at most (`limit`).
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

/// An event found, as the API shows it: times in RFC 3339 UTC, absent
/// values `null`.
fn event_json(found: &FoundEvent) -> Value {
    let e = &found.event;
    json!({
        "accountId": found.account_id.get(),
        "eventId": e.event_id.as_ref().map(|i| i.as_str()),
        "eventName": e.event_name.as_ref().map(EventName::as_str),
        "timestamp": e.timestamp.map(utc_text),
        "receivedAt": utc_text(found.received_at),
        "decision": e.decision,
        "reason": e.reason,
        "attempts": e.attempts,
        "error": e.error,
    })
}

/// The search's filter and limit from the query, or the error naming the
/// parameter that is wrong.
pub(super) fn parse_query(query: &str) -> Result<(ArchiveFilter, usize), String> {
    let mut filter = ArchiveFilter::new();
    let mut limit = DEFAULT_LIMIT;
    let time = |name: &str, value: &str| {
        OffsetDateTime::parse(value, &Rfc3339)
            .map_err(|_| format!("{name}: expected an RFC 3339 time, not {value:?}"))
    };
    for (name, value) in url_pairs(query) {
        filter = match name.as_str() {
            "eventId" => filter.with_event_id(
                value
                    .parse()
                    .map_err(|_| "eventId: must not be empty".to_owned())?,
            ),
            "userId" => {
                filter.with_user_id(value.parse().map_err(|_| {
                    format!("userId: must be a number (ALM's user id), not {value:?}")
                })?)
            }
            "loInstanceId" => filter.with_lo_instance_id(value.parse().map_err(|_| {
                format!("loInstanceId: must look like course:1234_5678, not {value:?}")
            })?),
            "accountId" => filter.with_account_id(AccountId(
                value
                    .parse()
                    .map_err(|_| format!("accountId: must be a number, not {value:?}"))?,
            )),
            "eventName" if !value.is_empty() => {
                filter.with_event_names([EventName::from(value.as_str())])
            }
            "from" => filter.received_from(time("from", &value)?),
            "to" => filter.received_before(time("to", &value)?),
            "limit" => {
                limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| format!("limit: expected 1 to {MAX_LIMIT}, not {value:?}"))?;
                filter
            }
            other => return Err(format!("{other}: not a parameter of this search")),
        };
    }
    if filter.event_id.is_none() && filter.user_id.is_none() && filter.lo_instance_id.is_none() {
        return Err("eventId, userId or loInstanceId: give one (each is indexed)".to_owned());
    }
    Ok((filter, limit))
}

impl<I: Inbox> AdminApi<I> {
    /// `GET /events?…`: the archived events the query asks for, oldest
    /// received first.
    pub(super) async fn events(&self, query: &str) -> Result<Response<Vec<u8>>, InboxError> {
        let (filter, limit) = match parse_query(query) {
            Ok(asked) => asked,
            Err(error) => return Ok(answer(StatusCode::BAD_REQUEST, json!({"error": error}))),
        };
        let found = self.inbox.search_archive(&filter, limit).await?;
        let shown: Vec<Value> = found.iter().map(event_json).collect();
        Ok(answer(StatusCode::OK, Value::Array(shown)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::UserId;

    #[test]
    fn a_bad_parameter_is_named() {
        let error = |q: &str| parse_query(q).unwrap_err();
        assert!(error("userId=x").starts_with("userId:"));
        assert!(error("loInstanceId=7").starts_with("loInstanceId:"));
        assert!(error("userId=1&from=yesterday").starts_with("from:"));
        assert!(error("userId=1&to=2026-13-01").starts_with("to:"));
        assert!(error("userId=1&limit=0").starts_with("limit:"));
        assert!(error("userId=1&color=red").starts_with("color:"));
        assert!(error("from=2026-12-01T00:00:00Z").starts_with("eventId, userId or loInstanceId"));
        let (filter, limit) =
            parse_query("userId=42&from=2026-12-01T00%3A00%3A00Z&limit=5").unwrap();
        assert_eq!((filter.user_id, limit), (Some(UserId(42)), 5));
        assert_eq!(
            filter.from,
            Some(time::macros::datetime!(2026-12-01 00:00 UTC))
        );
    }
}
