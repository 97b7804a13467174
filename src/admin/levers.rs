//! The operator's levers in the admin API: pausing and resuming an
//! account (or every account), and acting on every dead letter or
//! quarantined body a filter matches.

use http::{HeaderMap, Method, Response, StatusCode};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::AdminApi;
use super::answers::unavailable_export;
use super::answers::{answer, not_found, respond};
use super::body::AdminBody;
use crate::AccountId;
use crate::inbox::{
    BulkAction, Inbox, InboxError, KeptFilter, PauseScope, bulk_dead_letters, bulk_quarantined,
};

/// A bulk action's JSON body, as sent.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FilterBody {
    account_id: Option<u64>,
    event_name: Option<String>,
    error_contains: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// `time` as RFC 3339, or the error naming `field`.
fn instant(field: &str, time: Option<String>) -> Result<Option<OffsetDateTime>, String> {
    time.map(|t| {
        OffsetDateTime::parse(&t, &Rfc3339)
            .map_err(|e| format!("`{field}`: expected an RFC 3339 time, {e}"))
    })
    .transpose()
}

/// The filter in a bulk action's body, or why it is not one.
fn filter(body: &[u8]) -> Result<KeptFilter, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err("expected a JSON filter: {} takes every one".to_owned());
    }
    let sent: FilterBody = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let filter = KeptFilter {
        account_id: sent.account_id.map(AccountId),
        event_name: sent.event_name,
        error_contains: sent.error_contains,
        from: instant("from", sent.from)?,
        to: instant("to", sent.to)?,
    };
    Ok(filter)
}

/// `all` or an account id.
fn scope(id: &str) -> Option<PauseScope> {
    if id == "all" {
        return Some(PauseScope::All);
    }
    id.parse().ok().map(|id| PauseScope::Account(AccountId(id)))
}

impl<I: Inbox> AdminApi<I> {
    /// Answers one request with its body (the bulk actions take a JSON
    /// filter); otherwise as [`handle`](Self::handle).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::sync::Arc;
    /// use alm_webhooks::admin::{AdminApi, AdminToken};
    /// use alm_webhooks::inbox::MemoryInbox;
    /// use http::{HeaderMap, Method};
    /// let api = AdminApi::new(Arc::new(MemoryInbox::new()), AdminToken::new("s3cret"));
    /// let mut headers = HeaderMap::new();
    /// headers.insert("authorization", "Bearer s3cret".parse().unwrap());
    /// let filter = br#"{"errorContains": "timed out"}"#;
    /// let answer = api.handle_with_body(&Method::POST, "/dead-letters/replay", &headers, filter).await;
    /// assert_eq!(answer.body().as_slice(), br#"{"matched":0}"#);
    /// # }
    /// ```
    pub async fn handle_with_body(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Response<Vec<u8>> {
        let response = self.respond_with_body(method, path, headers, body).await;
        self.collected(response).await
    }

    /// [`respond`](Self::respond) with the request's body (the bulk
    /// actions' JSON filter).
    pub async fn respond_with_body(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Response<AdminBody> {
        self.respond_body(method, path, headers, body).await
    }

    /// An answer, collected whole.
    pub(super) async fn collected(&self, response: Response<AdminBody>) -> Response<Vec<u8>> {
        let (parts, body) = response.into_parts();
        match body.collect().await {
            Ok(bytes) => Response::from_parts(parts, bytes),
            Err(e) => unavailable_export(&e),
        }
    }

    /// Wakes an idle worker, if the API was given a waker.
    pub(super) fn wake(&self) {
        if let Some(waker) = &self.waker {
            waker.wake();
        }
    }

    /// The paused accounts, and whether every account is paused.
    pub(super) async fn paused(&self) -> Result<(Vec<u64>, bool), InboxError> {
        let pauses = self.inbox.pauses().await?;
        let accounts = pauses
            .iter()
            .filter_map(|p| p.scope.account_id().map(AccountId::get))
            .collect();
        Ok((accounts, pauses.iter().any(|p| p.scope == PauseScope::All)))
    }

    /// Answers a lever's call; `404` for any other path.
    pub(super) async fn lever(
        &self,
        method: &str,
        parts: &[&str],
        body: &[u8],
    ) -> Result<Response<Vec<u8>>, InboxError> {
        let now = OffsetDateTime::now_utc();
        match (method, parts) {
            ("POST", ["accounts", id, "pause"]) => match scope(id) {
                Some(scope) => {
                    self.inbox.pause(scope, now).await?;
                    Ok(respond(
                        StatusCode::NO_CONTENT,
                        "application/json",
                        Vec::new(),
                    ))
                }
                None => Ok(not_found()),
            },
            ("POST", ["accounts", id, "resume"]) => match scope(id) {
                Some(scope) => {
                    self.inbox.resume(scope).await?;
                    self.wake();
                    Ok(respond(
                        StatusCode::NO_CONTENT,
                        "application/json",
                        Vec::new(),
                    ))
                }
                None => Ok(not_found()),
            },
            ("POST", [kind @ ("dead-letters" | "quarantine"), action]) => {
                let action = match *action {
                    "replay" => BulkAction::Replay,
                    "discard" => BulkAction::Discard,
                    _ => return Ok(not_found()),
                };
                let filter = match filter(body) {
                    Ok(filter) => filter,
                    Err(error) => {
                        return Ok(answer(StatusCode::BAD_REQUEST, json!({"error": error})));
                    }
                };
                let outcome = if *kind == "dead-letters" {
                    bulk_dead_letters(&*self.inbox, &filter, action, now).await?
                } else {
                    bulk_quarantined(&*self.inbox, &filter, action, now).await?
                };
                if action == BulkAction::Replay && outcome.done > 0 {
                    self.wake();
                }
                let mut answered = json!({"matched": outcome.matched});
                if outcome.done != outcome.matched {
                    answered["done"] = json!(outcome.done);
                }
                Ok(answer(StatusCode::OK, answered))
            }
            _ => Ok(not_found()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_names_the_field_it_cannot_read() {
        let error = filter(br#"{"from": "yesterday"}"#).unwrap_err();
        assert!(
            error.starts_with("`from`: expected an RFC 3339 time"),
            "{error}"
        );
        let error = filter(br#"{"account": 7}"#).unwrap_err();
        assert!(error.contains("unknown field `account`"), "{error}");
        assert!(filter(b"").unwrap_err().contains("{} takes every one"));
        let read = filter(br#"{"accountId": 7, "to": "2026-12-06T10:00:00Z"}"#).unwrap();
        assert_eq!(read.account_id, Some(AccountId(7)));
        assert!(read.to.is_some() && read.from.is_none());
    }
}
