//! Replay jobs in the admin API: `POST /replays` starts one over a time
//! range and a filter, `GET /replays` lists them, `GET /replays/{id}`
//! shows one's progress, `DELETE /replays/{id}` cancels it.

use std::sync::Arc;

use http::{Response, StatusCode};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::AdminApi;
use super::answers::{answer, not_found};
use crate::inbox::{
    ArchiveFilter, Inbox, ReplayId, ReplayJobs, ReplayMode, ReplayRequest, ReplayState,
};
use crate::{AccountId, EventName, LoInstanceId, UserId};

/// The fields a replay's body may have.
const FIELDS: [&str; 7] = [
    "from",
    "to",
    "accountId",
    "eventNames",
    "userId",
    "loInstanceId",
    "mode",
];

/// `field` of `body` as an RFC 3339 time (required).
fn time_of(body: &Map<String, Value>, field: &str) -> Result<OffsetDateTime, String> {
    let text = body
        .get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("`{field}`: expected an RFC 3339 time"))?;
    OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|e| format!("`{field}`: expected an RFC 3339 time, {e}"))
}

/// `field` of `body` as a whole number, if present.
fn number_of(body: &Map<String, Value>, field: &str) -> Result<Option<u64>, String> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_u64()
            .map(Some)
            .ok_or_else(|| format!("`{field}`: expected a whole number")),
    }
}

/// A replay's JSON body as a request, or why it is not one (naming the
/// field).
pub(super) fn request(body: &[u8]) -> Result<ReplayRequest, String> {
    let body: Value = serde_json::from_slice(body).map_err(|e| format!("expected JSON: {e}"))?;
    let Value::Object(body) = body else {
        return Err("expected a JSON object".to_owned());
    };
    if let Some(unknown) = body.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(format!("`{unknown}`: unknown field"));
    }
    let (from, to) = (time_of(&body, "from")?, time_of(&body, "to")?);
    if to <= from {
        return Err("`to`: must be after `from`".to_owned());
    }
    let mode: ReplayMode = body
        .get("mode")
        .and_then(Value::as_str)
        .ok_or_else(|| "`mode`: expected \"unprocessed\" or \"rerun\"".to_owned())?
        .parse()
        .map_err(|e| format!("`mode`: {e}"))?;
    let mut filter = ArchiveFilter::new().received_from(from).received_before(to);
    if let Some(account) = number_of(&body, "accountId")? {
        filter = filter.with_account_id(AccountId(account));
    }
    if let Some(user) = number_of(&body, "userId")? {
        filter = filter.with_user_id(UserId(user));
    }
    match body.get("eventNames") {
        None | Some(Value::Null) => {}
        Some(Value::Array(names)) => {
            let names: Option<Vec<EventName>> = names
                .iter()
                .map(|n| n.as_str().map(EventName::from))
                .collect();
            let names = names.ok_or("`eventNames`: expected an array of names")?;
            filter = filter.with_event_names(names);
        }
        Some(_) => return Err("`eventNames`: expected an array of names".to_owned()),
    }
    match body.get("loInstanceId") {
        None | Some(Value::Null) => {}
        Some(value) => {
            let instance: LoInstanceId = value
                .as_str()
                .and_then(|s| s.parse().ok())
                .ok_or("`loInstanceId`: expected an instance id such as course:1_2")?;
            filter = filter.with_lo_instance_id(instance);
        }
    }
    Ok(ReplayRequest::new(filter, mode))
}

impl<I: Inbox> AdminApi<I> {
    /// `POST /replays` starts a replay job of `jobs` over this API's inbox
    /// (`202`, `{"id"}`), `GET /replays` lists them, `GET /replays/{id}`
    /// gives one's progress, `DELETE /replays/{id}` cancels it; without
    /// it, all are `404`. Give the same jobs to the workers
    /// ([`WorkerOptions::with_replays`](crate::inbox::WorkerOptions::with_replays)),
    /// so they report progress.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::sync::Arc;
    /// use alm_webhooks::admin::{AdminApi, AdminToken};
    /// use alm_webhooks::inbox::{MemoryInbox, ReplayJobs};
    /// use http::{HeaderMap, Method};
    /// let api = AdminApi::new(Arc::new(MemoryInbox::new()), AdminToken::new("s3cret"))
    ///     .replaying(ReplayJobs::new());
    /// let mut headers = HeaderMap::new();
    /// headers.insert("authorization", "Bearer s3cret".parse().unwrap());
    /// let body = br#"{"from": "2026-12-01T00:00:00Z", "to": "2026-12-02T00:00:00Z", "mode": "rerun"}"#;
    /// let started = api.handle_with_body(&Method::POST, "/replays", &headers, body).await;
    /// assert_eq!(started.status(), 202);
    /// let bad = api.handle_with_body(&Method::POST, "/replays", &headers, br#"{"mode": "all"}"#).await;
    /// assert_eq!(bad.status(), 400);
    /// # }
    /// ```
    #[must_use]
    pub fn replaying(mut self, jobs: ReplayJobs) -> Self {
        self.replays = Some(jobs);
        self
    }

    /// Answers a replay call.
    pub(super) fn replay_call(
        &self,
        method: &str,
        parts: &[&str],
        body: &[u8],
    ) -> Response<Vec<u8>> {
        let Some(jobs) = &self.replays else {
            return not_found();
        };
        let id = |id: &str| id.parse::<ReplayId>().ok();
        match (method, parts) {
            ("POST", [_]) => match request(body) {
                Ok(request) => {
                    let id = jobs.start(Arc::clone(&self.inbox), request);
                    answer(StatusCode::ACCEPTED, json!({"id": id.to_string()}))
                }
                Err(error) => answer(StatusCode::BAD_REQUEST, json!({"error": error})),
            },
            ("GET", [_]) => {
                let list: Vec<Value> = jobs.list().iter().map(|s| s.to_json()).collect();
                answer(StatusCode::OK, Value::Array(list))
            }
            ("GET", [_, job]) => match id(job).and_then(|id| jobs.status(id)) {
                Some(status) => answer(StatusCode::OK, status.to_json()),
                None => not_found(),
            },
            ("DELETE", [_, job]) => {
                let Some(status) = id(job).and_then(|id| jobs.status(id)) else {
                    return not_found();
                };
                if status.state == ReplayState::Running {
                    jobs.cancel(status.id);
                } else {
                    let error = format!("the replay is over ({})", status.state.as_str());
                    return answer(StatusCode::CONFLICT, json!({"error": error}));
                }
                let status = jobs.status(status.id).unwrap_or(status);
                answer(StatusCode::OK, status.to_json())
            }
            _ => not_found(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replay_body_names_the_field_it_cannot_read() {
        let error = |body: &str| request(body.as_bytes()).unwrap_err();
        let range = r#""from":"2026-12-01T00:00:00Z","to":"2026-12-02T00:00:00Z""#;
        assert!(error(r#"{"to":"2026-12-02T00:00:00Z","mode":"rerun"}"#).starts_with("`from`"));
        assert!(error(&format!(r#"{{{range}}}"#)).starts_with("`mode`"));
        assert!(error(&format!(r#"{{{range},"mode":"all"}}"#)).starts_with("`mode`"));
        assert!(
            error(&format!(r#"{{{range},"mode":"rerun","userId":"x"}}"#)).starts_with("`userId`")
        );
        assert!(
            error(&format!(r#"{{{range},"mode":"rerun","eventNames":"X"}}"#))
                .starts_with("`eventNames`")
        );
        assert!(
            error(&format!(r#"{{{range},"mode":"rerun","loInstanceId":"?"}}"#))
                .starts_with("`loInstanceId`")
        );
        assert!(
            error(&format!(r#"{{{range},"mode":"rerun","account":7}}"#)).starts_with("`account`")
        );
        assert!(
            error(r#"{"from":"2026-12-02T00:00:00Z","to":"2026-12-01T00:00:00Z","mode":"rerun"}"#)
                .starts_with("`to`")
        );
        let read = request(
            format!(r#"{{{range},"mode":"unprocessed","accountId":7,"eventNames":["COURSE_COMPLETION"],"userId":3,"loInstanceId":"course:1_2"}}"#)
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(read.mode, ReplayMode::Unprocessed);
        assert_eq!(
            (read.filter.account_id, read.filter.user_id),
            (Some(AccountId(7)), Some(UserId(3)))
        );
        assert_eq!(read.filter.event_names.len(), 1);
        assert_eq!(read.filter.lo_instance_id.unwrap().as_str(), "course:1_2");
    }
}
