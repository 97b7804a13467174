//! The admin API, framework-free: only when `ALM_ADMIN_TOKEN` is set
//! (otherwise every `/admin/…` path is `404`), and every call must carry
//! `Authorization: Bearer TOKEN` (else `401`, one body for every failure).
//!
//! - `GET /admin`: the operator's page ([`alm_webhooks::admin::PAGE_HTML`],
//!   no token needed: it holds no data and asks for the token itself)
//! - `GET /admin/decisions`: the engine's decision counts since start
//! - `GET /admin/inbox`: the inbox's counts
//!   (`pending`, `in_flight`, `retrying`, `dead_letters`, `quarantined`,
//!   `oldest_pending_age_ms`)
//! - `GET /admin/dead-letters`: `[{"id","accountId","eventId","eventName",
//!   "attempts","error","event"}]`, oldest first
//! - `POST /admin/dead-letters/{id}/replay`: `202` (the event is appended
//!   again as a one-event delivery of its account); `DELETE
//!   /admin/dead-letters/{id}`: `204`
//! - `GET /admin/quarantine`: `[{"id","accountId","receivedAt","bytes",
//!   "body","error"}]` (`body` as text, invalid UTF-8 replaced; the exact
//!   bytes stay in the inbox)
//! - `POST /admin/quarantine/{id}/replay`: `202` if the body parses now (it
//!   is appended with its exact bytes), `422` with the error if not;
//!   `DELETE /admin/quarantine/{id}`: `204`
//!
//! An unknown id is `404`. Listings return at most 1,000 entries.
#![allow(dead_code, unreachable_pub)]

use std::fmt;

use alm_webhooks::Envelope;
use alm_webhooks::inbox::{DeadLetterId, Inbox, InboxError, QuarantineId};
use http::{HeaderMap, Method, StatusCode, header};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::App;

const LIMIT: usize = 1000;
const UNAUTHORIZED: &str = r#"{"error":"unauthorized"}"#;

/// The admin token; its `Debug` never shows it.
#[derive(Clone)]
pub struct AdminToken(Box<[u8]>);

impl AdminToken {
    pub fn new(token: String) -> Self {
        Self(token.into_bytes().into_boxed_slice())
    }

    /// Whether the request's `Authorization: Bearer …` carries the token,
    /// compared in constant time.
    fn admits(&self, headers: &HeaderMap) -> bool {
        let Some(given) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        else {
            return false;
        };
        given.ct_eq(&self.0).into()
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken([REDACTED])")
    }
}

fn answer(status: StatusCode, body: Value) -> (StatusCode, String) {
    (status, body.to_string())
}

fn not_found() -> (StatusCode, String) {
    answer(StatusCode::NOT_FOUND, json!({"error": "not found"}))
}

fn unavailable(e: &InboxError) -> (StatusCode, String) {
    eprintln!("admin: {e}");
    answer(e.status(), json!({"error": "inbox unavailable"}))
}

impl App {
    /// The admin page, when the admin API is on.
    pub fn admin_page(&self) -> Option<&'static str> {
        self.queue
            .config
            .admin_token
            .as_ref()
            .map(|_| alm_webhooks::admin::PAGE_HTML)
    }

    /// Answers one admin request: `path` is the request's path (from
    /// `/admin`).
    pub async fn admin(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
    ) -> (StatusCode, String) {
        let Some(token) = &self.queue.config.admin_token else {
            return not_found();
        };
        if !token.admits(headers) {
            return (StatusCode::UNAUTHORIZED, UNAUTHORIZED.to_owned());
        }
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let result = match (method.as_str(), parts.as_slice()) {
            ("GET", ["admin", "inbox"]) => self.stats().await,
            ("GET", ["admin", "decisions"]) => Ok(answer(
                StatusCode::OK,
                serde_json::to_value(self.engine.counters()).unwrap_or_default(),
            )),
            ("GET", ["admin", "dead-letters"]) => self.dead_letters().await,
            ("POST", ["admin", "dead-letters", id, "replay"]) => match id.parse() {
                Ok(id) => self.replay_dead_letter(id).await,
                Err(_) => Ok(not_found()),
            },
            ("DELETE", ["admin", "dead-letters", id]) => match id.parse() {
                Ok(id) => self.discard_dead_letter(id).await,
                Err(_) => Ok(not_found()),
            },
            ("GET", ["admin", "quarantine"]) => self.quarantined().await,
            ("POST", ["admin", "quarantine", id, "replay"]) => match id.parse() {
                Ok(id) => self.replay_quarantined(id).await,
                Err(_) => Ok(not_found()),
            },
            ("DELETE", ["admin", "quarantine", id]) => match id.parse() {
                Ok(id) => self.discard_quarantined(id).await,
                Err(_) => Ok(not_found()),
            },
            _ => Ok(not_found()),
        };
        result.unwrap_or_else(|e| unavailable(&e))
    }

    async fn stats(&self) -> Result<(StatusCode, String), InboxError> {
        let s = self.queue.inbox.stats(OffsetDateTime::now_utc()).await?;
        let age = s
            .oldest_pending_age
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Ok(answer(
            StatusCode::OK,
            json!({
                "pending": s.pending,
                "in_flight": s.in_flight,
                "retrying": s.retrying,
                "dead_letters": s.dead_letters,
                "quarantined": s.quarantined,
                "oldest_pending_age_ms": age,
            }),
        ))
    }

    async fn dead_letters(&self) -> Result<(StatusCode, String), InboxError> {
        let letters = self.queue.inbox.dead_letters(LIMIT).await?;
        let list: Vec<Value> = letters
            .iter()
            .map(|d| {
                let l = &d.letter;
                let event = serde_json::from_str::<Value>(&l.event)
                    .unwrap_or_else(|_| Value::String(l.event.clone()));
                json!({
                    "id": d.id.get(),
                    "accountId": l.account_id.get(),
                    "eventId": l.event_id,
                    "eventName": l.event_name,
                    "attempts": l.attempts,
                    "error": l.error,
                    "event": event,
                })
            })
            .collect();
        Ok(answer(StatusCode::OK, Value::Array(list)))
    }

    async fn replay_dead_letter(
        &self,
        id: DeadLetterId,
    ) -> Result<(StatusCode, String), InboxError> {
        let now = OffsetDateTime::now_utc();
        Ok(match self.queue.inbox.replay_dead_letter(id, now).await? {
            Some(delivery) => {
                self.queue.pool.wake();
                answer(StatusCode::ACCEPTED, json!({"delivery": delivery.get()}))
            }
            None => not_found(),
        })
    }

    async fn discard_dead_letter(
        &self,
        id: DeadLetterId,
    ) -> Result<(StatusCode, String), InboxError> {
        Ok(match self.queue.inbox.discard_dead_letter(id).await? {
            true => (StatusCode::NO_CONTENT, String::new()),
            false => not_found(),
        })
    }

    async fn quarantined(&self) -> Result<(StatusCode, String), InboxError> {
        let bodies = self.queue.inbox.quarantined(LIMIT).await?;
        let list: Vec<Value> = bodies
            .iter()
            .map(|q| {
                json!({
                    "id": q.id.get(),
                    "accountId": q.account_id.map(|a| a.get()),
                    "receivedAt": q.received_at.format(&Rfc3339).unwrap_or_default(),
                    "bytes": q.body.len(),
                    "body": String::from_utf8_lossy(&q.body),
                    "error": q.error,
                })
            })
            .collect();
        Ok(answer(StatusCode::OK, Value::Array(list)))
    }

    async fn replay_quarantined(
        &self,
        id: QuarantineId,
    ) -> Result<(StatusCode, String), InboxError> {
        let Some(kept) = self.queue.inbox.quarantined_body(id).await? else {
            return Ok(not_found());
        };
        let envelope = match Envelope::from_slice(&kept.body) {
            Ok(envelope) => envelope,
            Err(e) => {
                return Ok(answer(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    json!({"error": e.to_string()}),
                ));
            }
        };
        let now = OffsetDateTime::now_utc();
        Ok(
            match self
                .queue
                .inbox
                .requeue_quarantined(id, envelope.account_id, now)
                .await?
            {
                Some(delivery) => {
                    self.queue.pool.wake();
                    answer(StatusCode::ACCEPTED, json!({"delivery": delivery.get()}))
                }
                None => not_found(),
            },
        )
    }

    async fn discard_quarantined(
        &self,
        id: QuarantineId,
    ) -> Result<(StatusCode, String), InboxError> {
        Ok(match self.queue.inbox.discard_quarantined(id).await? {
            true => (StatusCode::NO_CONTENT, String::new()),
            false => not_found(),
        })
    }
}
