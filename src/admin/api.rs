//! The admin API, framework-neutral: see the [module docs](super).

use std::fmt;
use std::sync::Arc;

use http::{HeaderMap, Method, Response, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::answers::{answer, bad_query, method_not_allowed, not_found, respond, unavailable};
use super::answers::{too_many, unauthorized, unavailable_table};
use super::body::AdminBody;
use super::token::{AdminToken, Check};
use super::{listing, records};
use crate::Envelope;
use crate::engine::{CounterSnapshot, Engine};
use crate::inbox::{DeadLetterId, Inbox, InboxError, PoolWaker, QuarantineId};
use crate::store::LearnerReads;

/// Where the decision counts come from (an engine's
/// [`counters`](Engine::counters)).
type Decisions = Arc<dyn Fn() -> CounterSnapshot + Send + Sync>;

/// The admin API and page over an [`Inbox`], guarded by an [`AdminToken`]:
/// [`handle`](Self::handle) answers one request, in any web framework;
/// [`router`](super::router) (feature `axum`) mounts it in axum.
///
/// Paths are those below the mount point: `""` or `/` is the page (no token
/// needed), `/inbox`, `/decisions`, `/dead-letters`,
/// `/dead-letters/{id}/replay`… the API (see the [module docs](super)).
/// The listings are pages of at most 100, oldest first; pass the path
/// with its query, and `?after=ID` (the last id of a page) gives the next.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::sync::Arc;
/// use alm_webhooks::admin::{AdminApi, AdminToken};
/// use alm_webhooks::inbox::MemoryInbox;
/// use alm_webhooks::Engine;
/// use http::{HeaderMap, Method, StatusCode};
///
/// let engine = Engine::in_memory();
/// let api = AdminApi::new(Arc::new(MemoryInbox::new()), AdminToken::new("s3cret"))
///     .counting(&engine);
///
/// // The page needs no token; the API does.
/// let page = api.handle(&Method::GET, "/", &HeaderMap::new()).await;
/// assert_eq!(page.status(), StatusCode::OK);
/// let refused = api.handle(&Method::GET, "/inbox", &HeaderMap::new()).await;
/// assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
///
/// let mut headers = HeaderMap::new();
/// headers.insert("authorization", "Bearer s3cret".parse().unwrap());
/// let figures = api.handle(&Method::GET, "/inbox", &headers).await;
/// assert_eq!(figures.status(), StatusCode::OK);
/// let body: serde_json::Value = serde_json::from_slice(figures.body()).unwrap();
/// assert_eq!(body["pending"], 0);
/// # }
/// ```
pub struct AdminApi<I> {
    pub(super) inbox: Arc<I>,
    token: AdminToken,
    decisions: Option<Decisions>,
    pub(super) waker: Option<PoolWaker>,
    learners: Option<Arc<dyn LearnerReads>>,
    pub(super) replays: Option<crate::inbox::ReplayJobs>,
    #[cfg(feature = "alm-api")]
    reconcile: Option<crate::alm_api::reconcile::ReconcileRuns>,
}

impl<I> Clone for AdminApi<I> {
    fn clone(&self) -> Self {
        Self {
            inbox: Arc::clone(&self.inbox),
            token: self.token.clone(),
            decisions: self.decisions.clone(),
            waker: self.waker.clone(),
            learners: self.learners.clone(),
            replays: self.replays.clone(),
            #[cfg(feature = "alm-api")]
            reconcile: self.reconcile.clone(),
        }
    }
}

impl<I> fmt::Debug for AdminApi<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminApi")
            .field("token", &self.token)
            .field("decisions", &self.decisions.is_some())
            .field("waker", &self.waker)
            .field("learners", &self.learners.is_some())
            .field("reconciling", &self.has_reconcile_runs())
            .finish_non_exhaustive()
    }
}

impl<I> AdminApi<I> {
    fn has_reconcile_runs(&self) -> bool {
        #[cfg(feature = "alm-api")]
        return self.reconcile.is_some();
        #[cfg(not(feature = "alm-api"))]
        false
    }
}

impl<I: Inbox> AdminApi<I> {
    /// The API over `inbox`, for callers carrying `token`. Without
    /// [`counting`](Self::counting), `/decisions` is all zeros.
    pub fn new(inbox: Arc<I>, token: AdminToken) -> Self {
        Self {
            inbox,
            token,
            decisions: None,
            waker: None,
            learners: None,
            replays: None,
            #[cfg(feature = "alm-api")]
            reconcile: None,
        }
    }

    /// `/decisions` shows this engine's [counts](Engine::counters).
    #[must_use]
    pub fn counting<S: crate::store::Store>(mut self, engine: &Engine<S>) -> Self {
        let engine = engine.clone();
        self.decisions = Some(Arc::new(move || engine.counters()));
        self
    }

    /// A replay wakes an idle worker of this pool (see
    /// [`WorkerPool::waker`](crate::inbox::WorkerPool::waker)), so the
    /// replayed delivery is taken at once rather than at the next poll.
    #[must_use]
    pub fn waking(mut self, waker: PoolWaker) -> Self {
        self.waker = Some(waker);
        self
    }

    /// `GET /records?userId=U&loInstanceId=I` (either or both) answers the
    /// matching learner records of `table` as JSON, and `GET /records.csv`
    /// streams its CSV export (see [`respond`](Self::respond)); without
    /// it, both are `404`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::sync::Arc;
    /// use alm_webhooks::admin::{AdminApi, AdminToken};
    /// use alm_webhooks::inbox::MemoryInbox;
    /// use alm_webhooks::store::MemoryStore;
    /// use http::{HeaderMap, Method};
    ///
    /// let table = Arc::new(MemoryStore::new().with_learner_projection());
    /// let api = AdminApi::new(Arc::new(MemoryInbox::new()), AdminToken::new("s3cret"))
    ///     .showing_learners(table);
    /// let mut headers = HeaderMap::new();
    /// headers.insert("authorization", "Bearer s3cret".parse().unwrap());
    /// let rows = api.handle(&Method::GET, "/records?userId=7", &headers).await;
    /// assert_eq!(rows.status(), 200);
    /// assert_eq!(rows.body(), b"[]");
    /// let refused = api.handle(&Method::GET, "/records", &headers).await;
    /// assert_eq!(refused.status(), 400);
    /// # }
    /// ```
    #[must_use]
    pub fn showing_learners(mut self, table: Arc<dyn LearnerReads>) -> Self {
        self.learners = Some(table);
        self
    }

    /// `POST /reconcile` starts a run of `runs` (`202`, `{"id"}`), and
    /// `GET /reconcile/{id}` gives its state and the differences found and
    /// repaired (feature `alm-api`; without it, both are `404`).
    #[cfg(feature = "alm-api")]
    #[cfg_attr(docsrs, doc(cfg(feature = "alm-api")))]
    #[must_use]
    pub fn reconciling(mut self, runs: crate::alm_api::reconcile::ReconcileRuns) -> Self {
        self.reconcile = Some(runs);
        self
    }

    /// Answers one request: `path` is the request's path below the mount
    /// point (`/inbox` for `/ops/alm/inbox` mounted at `/ops/alm`). The body
    /// is JSON (`application/json`), the page (`text/html`), or the CSV
    /// export (`text/csv`), here collected whole: [`respond`](Self::respond)
    /// streams it.
    pub async fn handle(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
    ) -> Response<Vec<u8>> {
        self.handle_with_body(method, path, headers, &[]).await
    }

    /// [`handle`](Self::handle), with the CSV export (`GET /records.csv`)
    /// as a body the export writes as the client reads it
    /// ([`AdminBody::Chunks`]); every other answer is whole.
    pub async fn respond(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
    ) -> Response<AdminBody> {
        self.respond_body(method, path, headers, &[]).await
    }

    /// [`respond`](Self::respond) with the request's body.
    pub(super) async fn respond_body(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        request: &[u8],
    ) -> Response<AdminBody> {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let path = path.trim_matches('/');
        if path.is_empty() {
            let page = if *method == Method::GET || *method == Method::HEAD {
                respond(
                    StatusCode::OK,
                    "text/html; charset=utf-8",
                    super::PAGE_HTML.as_bytes().to_vec(),
                )
            } else {
                method_not_allowed()
            };
            return page.map(AdminBody::Whole);
        }
        if let Some(refused) = self.refused(headers) {
            return refused.map(AdminBody::Whole);
        }
        match (&self.learners, method.as_str(), path) {
            (Some(learners), "GET", "records.csv") => records::records_csv(Arc::clone(learners)),
            _ => (self.route(method, path, query, request).await).map(AdminBody::Whole),
        }
    }

    /// The answer to a caller without the token; `None` for one with it.
    fn refused(&self, headers: &HeaderMap) -> Option<Response<Vec<u8>>> {
        match self.token.check(headers) {
            Check::Admitted => None,
            Check::Refused => Some(unauthorized()),
            Check::TooMany => Some(too_many()),
        }
    }

    /// An API call of a caller with the token.
    async fn route(
        &self,
        method: &Method,
        path: &str,
        query: &str,
        body: &[u8],
    ) -> Response<Vec<u8>> {
        let parts: Vec<&str> = path.split('/').collect();
        let result = match (method.as_str(), parts.as_slice()) {
            ("GET", ["inbox"]) => self.stats().await,
            ("GET", ["decisions"]) => Ok(self.decision_counts()),
            ("GET", ["events"]) => self.events(query).await,
            (_, ["replays", ..]) => Ok(self.replay_call(method.as_str(), &parts, body)),
            ("GET", ["dead-letters"]) => match listing::after(query) {
                Ok(after) => self.dead_letters(after.map(DeadLetterId)).await,
                Err(()) => Ok(bad_query()),
            },
            ("GET", ["dead-letters", id]) => match id.parse() {
                Ok(id) => self.dead_letter(id).await,
                Err(_) => Ok(not_found()),
            },
            ("POST", ["dead-letters", id, "replay"]) => match id.parse() {
                Ok(id) => self.replay_dead_letter(id).await,
                Err(_) => Ok(not_found()),
            },
            ("DELETE", ["dead-letters", id]) => match id.parse() {
                Ok(id) => self.discard_dead_letter(id).await,
                Err(_) => Ok(not_found()),
            },
            ("GET", ["quarantine"]) => match listing::after(query) {
                Ok(after) => self.quarantined(after.map(QuarantineId)).await,
                Err(()) => Ok(bad_query()),
            },
            ("GET", ["quarantine", id]) => match id.parse() {
                Ok(id) => self.quarantined_one(id).await,
                Err(_) => Ok(not_found()),
            },
            ("POST", ["quarantine", id, "replay"]) => match id.parse() {
                Ok(id) => self.replay_quarantined(id).await,
                Err(_) => Ok(not_found()),
            },
            ("DELETE", ["quarantine", id]) => match id.parse() {
                Ok(id) => self.discard_quarantined(id).await,
                Err(_) => Ok(not_found()),
            },
            ("GET", ["records"]) => match &self.learners {
                Some(learners) => match records::records(learners.as_ref(), query).await {
                    Ok(response) => Ok(response),
                    Err(e) => Ok(unavailable_table(&e)),
                },
                None => Ok(not_found()),
            },
            #[cfg(feature = "alm-api")]
            ("POST", ["reconcile"]) | ("GET", ["reconcile", _]) => Ok(self.reconcile(&parts)),
            (method, parts) => self.lever(method, parts, body).await,
        };
        result.unwrap_or_else(|e| unavailable(&e))
    }

    #[cfg(feature = "alm-api")]
    fn reconcile(&self, parts: &[&str]) -> Response<Vec<u8>> {
        let Some(runs) = &self.reconcile else {
            return not_found();
        };
        match parts {
            [_, id] => match id.parse().ok().and_then(|id| runs.status(id)) {
                Some(status) => answer(StatusCode::OK, status.to_json()),
                None => not_found(),
            },
            _ => answer(
                StatusCode::ACCEPTED,
                json!({"id": runs.start().to_string()}),
            ),
        }
    }

    fn decision_counts(&self) -> Response<Vec<u8>> {
        let counts = self
            .decisions
            .as_ref()
            .map_or_else(CounterSnapshot::default, |counts| counts());
        answer(
            StatusCode::OK,
            serde_json::to_value(counts).unwrap_or_default(),
        )
    }

    async fn stats(&self) -> Result<Response<Vec<u8>>, InboxError> {
        let s = self.inbox.stats(OffsetDateTime::now_utc()).await?;
        let (paused, paused_all) = self.paused().await?;
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
                "paused": paused,
                "pausedAll": paused_all,
            }),
        ))
    }

    async fn dead_letters(
        &self,
        after: Option<DeadLetterId>,
    ) -> Result<Response<Vec<u8>>, InboxError> {
        let letters = self.inbox.dead_letters_after(after, listing::PAGE).await?;
        let list = letters.iter().map(listing::letter_summary).collect();
        Ok(answer(StatusCode::OK, Value::Array(list)))
    }

    async fn dead_letter(&self, id: DeadLetterId) -> Result<Response<Vec<u8>>, InboxError> {
        Ok(match self.inbox.dead_letter(id).await? {
            Some(letter) => answer(StatusCode::OK, listing::letter_full(&letter)),
            None => not_found(),
        })
    }

    async fn replay_dead_letter(&self, id: DeadLetterId) -> Result<Response<Vec<u8>>, InboxError> {
        let now = OffsetDateTime::now_utc();
        Ok(match self.inbox.replay_dead_letter(id, now).await? {
            Some(delivery) => {
                self.wake();
                answer(StatusCode::ACCEPTED, json!({"delivery": delivery.get()}))
            }
            None => not_found(),
        })
    }

    async fn discard_dead_letter(&self, id: DeadLetterId) -> Result<Response<Vec<u8>>, InboxError> {
        Ok(if self.inbox.discard_dead_letter(id).await? {
            respond(StatusCode::NO_CONTENT, "application/json", Vec::new())
        } else {
            not_found()
        })
    }

    async fn quarantined(
        &self,
        after: Option<QuarantineId>,
    ) -> Result<Response<Vec<u8>>, InboxError> {
        let bodies = self.inbox.quarantined_after(after, listing::PAGE).await?;
        let list = bodies.iter().map(listing::quarantined_summary).collect();
        Ok(answer(StatusCode::OK, Value::Array(list)))
    }

    async fn quarantined_one(&self, id: QuarantineId) -> Result<Response<Vec<u8>>, InboxError> {
        Ok(match self.inbox.quarantined_body(id).await? {
            Some(kept) => answer(StatusCode::OK, listing::quarantined_full(&kept)),
            None => not_found(),
        })
    }

    async fn replay_quarantined(&self, id: QuarantineId) -> Result<Response<Vec<u8>>, InboxError> {
        let Some(kept) = self.inbox.quarantined_body(id).await? else {
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
                .inbox
                .replay_quarantined(id, envelope.account_id, now)
                .await?
            {
                Some(delivery) => {
                    self.wake();
                    answer(StatusCode::ACCEPTED, json!({"delivery": delivery.get()}))
                }
                None => not_found(),
            },
        )
    }

    async fn discard_quarantined(&self, id: QuarantineId) -> Result<Response<Vec<u8>>, InboxError> {
        Ok(if self.inbox.discard_quarantined(id).await? {
            respond(StatusCode::NO_CONTENT, "application/json", Vec::new())
        } else {
            not_found()
        })
    }
}
