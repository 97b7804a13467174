//! The operator's admin page: one self-contained HTML page (no CDN, no build
//! step, nothing fetched but the admin API beside it) that asks for the
//! admin token, then shows the inbox figures, the decision counts, the dead
//! letters and the quarantined bodies (each with its error and raw JSON),
//! replays or discards one with a button, or all that match a filter,
//! pauses and resumes accounts, replays the archive over a time range
//! and watches the job, searches the archive for an event, a
//! learner or an instance, and with a learner table
//! ([`AdminApi::showing_learners`]) searches a learner's records by user
//! id.
//!
//! Serve [`PAGE_HTML`] at `…/admin` without authentication (it holds no
//! data), next to the admin API it calls with `Authorization: Bearer TOKEN`,
//! relative to its own path:
//!
//! | call | answer |
//! |---|---|
//! | `GET …/admin/inbox` | `{"pending", "in_flight", "retrying", "dead_letters", "quarantined", "oldest_pending_age_ms", "paused": [accountId…], "pausedAll"}` |
//! | `POST …/admin/accounts/{accountId}/pause`, `…/resume` (`all` for every account) | `204`: see [pausing](crate::inbox#pausing-an-account) |
//! | `GET …/admin/decisions` | `{"processed": n, "duplicate": n, …}`: decisions counted since start |
//! | `GET …/admin/dead-letters` | `[{"id", "accountId", "eventId", "eventName", "attempts", "error", "bytes", "preview"}]`: the oldest 100, error cut at 500 characters, event at 200 |
//! | `GET …/admin/dead-letters/{id}` | `{"id", "accountId", "eventId", "eventName", "attempts", "error", "event"}`, whole |
//! | `POST …/admin/dead-letters/{id}/replay`, `DELETE …/admin/dead-letters/{id}` | `202`, `204` |
//! | `GET …/admin/quarantine` | `[{"id", "accountId", "receivedAt", "bytes", "preview", "error"}]`: the oldest 100, body cut at 200 characters |
//! | `GET …/admin/quarantine/{id}` | `{"id", "accountId", "receivedAt", "bytes", "body", "error"}`, whole |
//! | `POST …/admin/quarantine/{id}/replay`, `DELETE …/admin/quarantine/{id}` | `202` (or `422` with the error), `204` |
//! | `POST …/admin/dead-letters/replay`, `…/discard`, `POST …/admin/quarantine/replay`, `…/discard`, with a JSON filter `{"accountId"?, "eventName"?, "errorContains"?, "from"?, "to"?}` (RFC 3339 times; `{}` takes all) | `200`, `{"matched": N}` (and `"done"` when fewer were acted on: a body that still does not parse); a bad filter is `400` naming the field. A page at a time ([`bulk_dead_letters`](crate::inbox::bulk_dead_letters)) |
//! | `GET …/admin/events?eventId=E` \| `userId=U` \| `loInstanceId=I`, with `&from=…&to=…` (RFC 3339, received in `[from, to)`), `&accountId=A`, `&eventName=N`, `&limit=L` (default 100, at most 1000) | `[{"accountId", "eventId", "eventName", "timestamp", "receivedAt", "decision", "reason", "attempts", "error"}]`: the archived events ([`Inbox::search_archive`](crate::inbox::Inbox::search_archive)), oldest received first; a bad or unknown parameter, or none of the three ids, is `400` naming it |
//! | `POST …/admin/replays` with `{"from", "to", "accountId"?, "eventNames"?: […], "userId"?, "loInstanceId"?, "mode": "unprocessed" \| "rerun"}` (RFC 3339 times, received in `[from, to)`; with [`AdminApi::replaying`]) | `202`, `{"id"}`: a replay job started ([replaying](crate::inbox#replaying-the-archive)); a bad body is `400` naming the field |
//! | `GET …/admin/replays`, `GET …/admin/replays/{id}` | `[{"id", "mode", "state", "matched", "done", "error"}]`, one of them: `state` is `running`, `done`, `cancelled` or `failed` |
//! | `DELETE …/admin/replays/{id}` | `200` with the job, now `cancelled` (`409` for a job that is over) |
//! | `GET …/admin/records?userId=U&loInstanceId=I` (with [`AdminApi::showing_learners`]) | `[{"accountId", "userId", "loId", "loInstanceId", "loType", "status", "progressPercent", "dateEnrolled", "dateStarted", "dateCompleted", "hasPassed", "enrollmentSource", "lastEventId", "lastEventName", "lastEventTime", "updatedAt"}]`: the learner records of that user, of that instance, or that one, in every account; times RFC 3339 UTC, absent values `null`; neither parameter is `400` |
//! | `GET …/admin/records.csv` | the learner table's CSV export (`text/csv`), streamed ([`AdminApi::respond`]) |
//! | `POST …/admin/reconcile` (feature `alm-api`, with [`AdminApi::reconciling`]) | `202`, `{"id"}`: a reconciliation run started |
//! | `GET …/admin/reconcile/{id}` | `{"id", "mode", "state", "found", "repaired", "byKind", "error"}`: `state` is `running`, `done` or `failed` |
//!
//! An unknown id is `404`; an inbox
//! that cannot answer is `503` (`{"error":"inbox unavailable"}`, the cause
//! only in the `tracing` log).
//!
//! [`AdminApi`] answers all of it, the page included, whatever the web
//! framework: give it the method, the path below the mount point and the
//! headers, and send back the `http::Response` it returns. With the feature
//! `axum`, [`router`] is that API as an `axum::Router` to nest under a path
//! of your own (and behind your own guards).
//!
//! Keep these endpoints off the public internet (see `SECURITY.md`): the
//! token guards them, but they show learners' data. Every answer carries a
//! `Content-Security-Policy` (the page's own script only, `frame-ancestors
//! 'none'`), `X-Content-Type-Options: nosniff` and `Cache-Control:
//! no-store`; a missing or wrong token is `401` with `WWW-Authenticate:
//! Bearer`, and past 20 failures in a second, `429` without a look at the
//! token. Read a configured token with [`AdminToken::parse`] (at least 32
//! characters).
//!
//! ```
//! let page = alm_webhooks::admin::PAGE_HTML;
//! assert!(page.starts_with("<!doctype html>"));
//! assert!(page.contains("Dead letters"));
//! ```

mod answers;
mod api;
#[cfg(feature = "axum")]
mod axum;
mod body;
mod events;
mod levers;
mod listing;
mod policy;
mod records;
mod replays;
mod token;

pub use api::AdminApi;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use axum::router;
pub use body::{AdminBody, AdminChunks};
pub use token::{AdminToken, MIN_ADMIN_TOKEN_CHARS, WeakAdminToken};

/// The admin page, as served at `…/admin` (`Content-Type: text/html;
/// charset=utf-8`).
pub const PAGE_HTML: &str = concat!(
    include_str!("page.html"),
    include_str!("page.js"),
    include_str!("replays.js"),
    "</script>\n</body>\n</html>\n"
);
