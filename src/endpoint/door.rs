//! The engine and the inbox behind an [`Endpoint`](super::Endpoint),
//! without their types: the endpoint is one type whatever the store and the
//! inbox.

use std::sync::Arc;

use http::{HeaderMap, Method};

use super::handler::Handler;
use crate::AccountId;
use crate::admin::{AdminApi, AdminBody, AdminToken};
use crate::inbox::{
    DeliveryId, Inbox, InboxError, InboxStats, KeptCounts, NewDelivery, NewQuarantined, Pause,
    PoolWaker, QuarantineId,
};
use crate::rules::StateKey;
use crate::store::BoxFuture;
use crate::store::{Store, StoreError};
use crate::{DeliveryReport, Engine, Envelope};

/// What the endpoint asks of its engine and inbox.
pub(super) trait Door: Send + Sync {
    /// Decides `envelope`'s events inline.
    fn process(
        &self,
        envelope: Envelope,
        handler: Handler,
    ) -> BoxFuture<'_, Result<DeliveryReport, StoreError>>;

    /// Appends a delivery to the inbox (there is one in inbox mode).
    fn append<'a>(
        &'a self,
        delivery: NewDelivery<'a>,
    ) -> Option<BoxFuture<'a, Result<DeliveryId, InboxError>>>;

    /// Keeps a malformed body in the inbox's quarantine, when there is an
    /// inbox.
    fn quarantine<'a>(
        &'a self,
        body: NewQuarantined<'a>,
    ) -> Option<BoxFuture<'a, Result<QuarantineId, InboxError>>>;

    /// What the inbox holds, when there is one.
    fn stats(
        &self,
        now: time::OffsetDateTime,
    ) -> Option<BoxFuture<'_, Result<InboxStats, InboxError>>>;

    /// What the inbox keeps of one account, when there is an inbox.
    fn kept_of(&self, account: AccountId) -> Option<BoxFuture<'_, Result<KeptCounts, InboxError>>>;

    /// The most one account keeps of each count, when there is an inbox
    /// (for the gauges).
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    fn most_kept_of_one_account(&self) -> Option<BoxFuture<'_, Result<KeptCounts, InboxError>>>;

    /// The pauses in force, when there is an inbox (for the gauges).
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    fn pauses(&self) -> Option<BoxFuture<'_, Result<Vec<Pause>, InboxError>>>;

    /// One read of the engine's store: the state of a record no event
    /// names (one indexed read on a database, through the tables the
    /// receiver's role must be able to read).
    fn read_store(&self) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Starts a replay job of `jobs` on the inbox; `None` without one.
    fn start_replay(
        &self,
        jobs: &crate::inbox::ReplayJobs,
        request: crate::inbox::ReplayRequest,
    ) -> Option<crate::inbox::ReplayId>;

    /// The admin API over the inbox, the engine's counts and `waker`; `None`
    /// without an inbox.
    fn admin(
        &self,
        token: AdminToken,
        waker: Option<PoolWaker>,
        extras: AdminExtras,
    ) -> Option<AdminCall>;
}

/// What the admin API serves beyond the inbox's own calls.
#[derive(Default)]
pub(super) struct AdminExtras {
    /// `POST /reconcile`, `GET /reconcile/{id}` ([`Endpoint::reconciling`](super::Endpoint::reconciling)).
    #[cfg(feature = "alm-api")]
    pub(super) reconcile: Option<crate::alm_api::reconcile::ReconcileRuns>,
    /// `GET /records`, `GET /records.csv` ([`Endpoint::showing_learners`](super::Endpoint::showing_learners)).
    pub(super) learners: Option<Arc<dyn crate::store::LearnerReads>>,
    /// `POST /replays`, `GET /replays`, `GET`, `DELETE /replays/{id}`.
    pub(super) replays: Option<crate::inbox::ReplayJobs>,
}

/// The admin API without its inbox's type: method, path below the mount
/// point, headers, body → response.
pub(super) type AdminCall = Arc<
    dyn Fn(Method, String, HeaderMap, Vec<u8>) -> BoxFuture<'static, http::Response<AdminBody>>
        + Send
        + Sync,
>;

/// The record [`Door::read_store`] reads: account 0, which ALM never
/// uses, and an id no learning object has.
fn probe() -> StateKey {
    StateKey::LearningObject {
        account_id: AccountId(0),
        lo_id: "alm-webhooks:readiness-probe"
            .parse()
            .expect("a constant learning object id"),
    }
}

/// The engine and, when configured, the inbox.
pub(super) struct Parts<S: Store, I: Inbox> {
    pub(super) engine: Engine<S>,
    pub(super) inbox: Option<Arc<I>>,
}

impl<S: Store, I: Inbox> Door for Parts<S, I> {
    fn process(
        &self,
        envelope: Envelope,
        handler: Handler,
    ) -> BoxFuture<'_, Result<DeliveryReport, StoreError>> {
        Box::pin(self.engine.process(envelope, move |event| handler(event)))
    }

    fn append<'a>(
        &'a self,
        delivery: NewDelivery<'a>,
    ) -> Option<BoxFuture<'a, Result<DeliveryId, InboxError>>> {
        let inbox = self.inbox.as_ref()?;
        Some(Box::pin(inbox.append(delivery)))
    }

    fn quarantine<'a>(
        &'a self,
        body: NewQuarantined<'a>,
    ) -> Option<BoxFuture<'a, Result<QuarantineId, InboxError>>> {
        let inbox = self.inbox.as_ref()?;
        Some(Box::pin(inbox.quarantine(body)))
    }

    fn stats(
        &self,
        now: time::OffsetDateTime,
    ) -> Option<BoxFuture<'_, Result<InboxStats, InboxError>>> {
        let inbox = self.inbox.as_ref()?;
        Some(Box::pin(inbox.stats(now)))
    }

    fn kept_of(&self, account: AccountId) -> Option<BoxFuture<'_, Result<KeptCounts, InboxError>>> {
        let inbox = self.inbox.as_ref()?;
        Some(Box::pin(inbox.kept_of(account)))
    }

    fn most_kept_of_one_account(&self) -> Option<BoxFuture<'_, Result<KeptCounts, InboxError>>> {
        let inbox = self.inbox.as_ref()?;
        Some(Box::pin(inbox.most_kept_of_one_account()))
    }

    fn pauses(&self) -> Option<BoxFuture<'_, Result<Vec<Pause>, InboxError>>> {
        let inbox = self.inbox.as_ref()?;
        Some(Box::pin(inbox.pauses()))
    }

    fn start_replay(
        &self,
        jobs: &crate::inbox::ReplayJobs,
        request: crate::inbox::ReplayRequest,
    ) -> Option<crate::inbox::ReplayId> {
        Some(jobs.start(Arc::clone(self.inbox.as_ref()?), request))
    }

    fn read_store(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move { self.engine.store().load(&probe()).await.map(drop) })
    }

    fn admin(
        &self,
        token: AdminToken,
        waker: Option<PoolWaker>,
        extras: AdminExtras,
    ) -> Option<AdminCall> {
        let inbox = Arc::clone(self.inbox.as_ref()?);
        let mut api = AdminApi::new(inbox, token).counting(&self.engine);
        if let Some(waker) = waker {
            api = api.waking(waker);
        }
        #[cfg(feature = "alm-api")]
        if let Some(runs) = extras.reconcile {
            api = api.reconciling(runs);
        }
        if let Some(learners) = extras.learners {
            api = api.showing_learners(learners);
        }
        if let Some(jobs) = extras.replays {
            api = api.replaying(jobs);
        }
        Some(Arc::new(move |method, path, headers, body| {
            let api = api.clone();
            Box::pin(async move { api.respond_with_body(&method, &path, &headers, &body).await })
        }))
    }
}
