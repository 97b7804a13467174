//! The in-memory inbox: for tests, the demo and single-process receivers

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use time::OffsetDateTime;

use super::FoundEvent;
use super::types::age;
use super::{
    ArchiveCursor, ArchiveFilter, ArchivedDelivery, ArchivedEvent, DeadLetter, DeadLetterId,
    DeliveryId, Inbox, InboxError, InboxStats, KeptCounts, LEASE_RAN_OUT, LeaseToken,
    NewDeadLetter, NewDelivery, NewQuarantined, Pause, PauseScope, QuarantineId, Quarantined,
    Taken, replay_body, tally,
};
use crate::AccountId;
use state::State;

mod archive;
mod state;

/// The in-memory inbox: for tests, the demo and single-process receivers
/// that accept losing what is not processed when the process stops.
///
/// **Not durable**: a delivery acknowledged and not yet processed is lost
/// with the process, and ALM does not send it again (it was acknowledged).
/// Use SQLite, PostgreSQL or Redis for anything that matters.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
/// use alm_webhooks::AccountId;
/// use alm_webhooks::inbox::{Inbox, MemoryInbox, NewDelivery};
///
/// let inbox = MemoryInbox::new();
/// let now = time::OffsetDateTime::now_utc();
/// let body = br#"{"accountId":7,"events":[]}"#;
/// inbox.append(NewDelivery { account_id: AccountId(7), body, received_at: now }).await.unwrap();
/// let taken = inbox.take(Duration::from_secs(60), now).await.unwrap().unwrap();
/// assert_eq!(taken.body, body);
/// assert!(inbox.complete(taken.id, taken.token, &[]).await.unwrap());
/// # }
/// ```
#[derive(Debug, Default)]
pub struct MemoryInbox {
    state: Mutex<State>,
}

impl MemoryInbox {
    /// An empty inbox.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use alm_webhooks::inbox::{Inbox, MemoryInbox};
    /// let inbox = MemoryInbox::new();
    /// assert_eq!(inbox.stats(time::OffsetDateTime::now_utc()).await.unwrap().pending, 0);
    /// # }
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Completes a delivery `token` holds, keeping its dead letters, and
    /// archiving it with `events` if there are some to keep.
    fn finish(
        &self,
        id: DeliveryId,
        token: LeaseToken,
        dead_letters: &[NewDeadLetter],
        events: Option<&[ArchivedEvent]>,
    ) -> bool {
        let mut state = self.lock();
        if state.held(id, token).is_none() {
            return false;
        }
        let done = state.remove(id.0).expect("a held delivery");
        if let Some(events) = events {
            let archived = ArchivedDelivery::new(
                id,
                done.account_id,
                done.body,
                done.received_at,
                events.to_vec(),
            );
            state.archive.insert(id.0, archived);
        }
        for letter in dead_letters {
            let n = state.next();
            state.dead_letters.insert(n, letter.clone());
        }
        true
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every change is made whole under the lock, so a poisoned one is
        // consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Inbox for MemoryInbox {
    fn is_durable(&self) -> bool {
        false
    }

    async fn append(&self, delivery: NewDelivery<'_>) -> Result<DeliveryId, InboxError> {
        Ok(self.lock().push(
            delivery.account_id,
            delivery.body.to_vec(),
            delivery.received_at,
        ))
    }

    async fn take(
        &self,
        lease: Duration,
        now: OffsetDateTime,
    ) -> Result<Option<Taken>, InboxError> {
        Ok(self.take_many(lease, now, 1).await?.into_iter().next())
    }

    /// The oldest head that may be processed now and the deliveries behind
    /// it, up to `max`, under one lock; the run shares one lease token.
    async fn take_many(
        &self,
        lease: Duration,
        now: OffsetDateTime,
        max: usize,
    ) -> Result<Vec<Taken>, InboxError> {
        let mut state = self.lock();
        let state = &mut *state;
        let head = state
            .accounts
            .iter()
            .filter(|(account, _)| !state.paused(**account))
            .filter_map(|(_, queue)| queue.front().copied())
            .filter(|id| {
                state
                    .deliveries
                    .get(id)
                    .is_some_and(|d| !d.leased(now) && !d.retrying(now))
            })
            .min();
        let Some(head) = head.filter(|_| max > 0) else {
            return Ok(Vec::new());
        };
        let account = state.deliveries[&head].account_id;
        let run: Vec<u64> = state.accounts[&account]
            .iter()
            .copied()
            .enumerate()
            .take_while(|&(i, id)| {
                i == 0 || {
                    let d = &state.deliveries[&id];
                    !d.leased(now) && !d.retrying(now)
                }
            })
            .take(max)
            .map(|(_, id)| id)
            .collect();
        let token = LeaseToken::random();
        Ok(run
            .into_iter()
            .map(|id| {
                let delivery = state.deliveries.get_mut(&id).expect("queued is a delivery");
                if delivery.lease.is_some() {
                    // The previous lease ran out with no word from its worker.
                    delivery.abandoned = delivery.abandoned.saturating_add(1);
                    delivery.last_error = Some(LEASE_RAN_OUT.to_owned());
                }
                delivery.attempts = delivery.attempts.saturating_add(1);
                delivery.lease = Some((token, now + lease));
                delivery.not_before = None;
                Taken::new(
                    DeliveryId(id),
                    token,
                    delivery.account_id,
                    delivery.body.clone(),
                    delivery.received_at,
                    delivery.attempts,
                    delivery.last_error.clone(),
                )
                .with_abandoned(delivery.abandoned)
            })
            .collect())
    }

    async fn renew(
        &self,
        id: DeliveryId,
        token: LeaseToken,
        lease: Duration,
        now: OffsetDateTime,
    ) -> Result<bool, InboxError> {
        Ok(match self.lock().held(id, token) {
            Some(d) => {
                d.lease = Some((token, now + lease));
                true
            }
            None => false,
        })
    }

    async fn complete(
        &self,
        id: DeliveryId,
        token: LeaseToken,
        dead_letters: &[NewDeadLetter],
    ) -> Result<bool, InboxError> {
        Ok(self.finish(id, token, dead_letters, None))
    }

    async fn complete_archived(
        &self,
        id: DeliveryId,
        token: LeaseToken,
        dead_letters: &[NewDeadLetter],
        events: &[ArchivedEvent],
    ) -> Result<bool, InboxError> {
        Ok(self.finish(id, token, dead_letters, Some(events)))
    }

    async fn search_archive(
        &self,
        filter: &ArchiveFilter,
        limit: usize,
    ) -> Result<Vec<FoundEvent>, InboxError> {
        Ok(self.lock().search_archive(filter, limit))
    }

    async fn archived(
        &self,
        filter: &ArchiveFilter,
        after: Option<ArchiveCursor>,
        limit: usize,
    ) -> Result<Vec<ArchivedDelivery>, InboxError> {
        Ok(self.lock().archived(filter, after, limit))
    }

    async fn sweep_archive(&self, before: OffsetDateTime, limit: usize) -> Result<u64, InboxError> {
        Ok(self.lock().sweep_archive(before, limit))
    }

    async fn retry_later(
        &self,
        id: DeliveryId,
        token: LeaseToken,
        not_before: OffsetDateTime,
        error: &str,
    ) -> Result<bool, InboxError> {
        Ok(self
            .lock()
            .give_back(id, token, Some(not_before), Some(error), 0))
    }

    async fn postpone(
        &self,
        id: DeliveryId,
        token: LeaseToken,
        not_before: OffsetDateTime,
        error: &str,
    ) -> Result<bool, InboxError> {
        Ok(self
            .lock()
            .give_back(id, token, Some(not_before), Some(error), 1))
    }

    async fn release(&self, id: DeliveryId, token: LeaseToken) -> Result<bool, InboxError> {
        Ok(self.lock().give_back(id, token, None, None, 1))
    }

    async fn quarantine(&self, body: NewQuarantined<'_>) -> Result<QuarantineId, InboxError> {
        let mut state = self.lock();
        let id = QuarantineId(state.next());
        state.quarantined.insert(
            id.0,
            Quarantined::new(
                id,
                body.account_id,
                body.body.to_vec(),
                body.error.to_owned(),
                body.received_at,
            ),
        );
        Ok(id)
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, InboxError> {
        self.dead_letters_after(None, limit).await
    }

    async fn dead_letters_after(
        &self,
        after: Option<DeadLetterId>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, InboxError> {
        let from = after.map_or(0, |a| a.0.saturating_add(1));
        Ok(self
            .lock()
            .dead_letters
            .range(from..)
            .take(limit)
            .map(|(id, letter)| DeadLetter::new(DeadLetterId(*id), letter.clone()))
            .collect())
    }

    async fn dead_letter(&self, id: DeadLetterId) -> Result<Option<DeadLetter>, InboxError> {
        Ok(self
            .lock()
            .dead_letters
            .get(&id.0)
            .map(|letter| DeadLetter::new(id, letter.clone())))
    }

    async fn discard_dead_letter(&self, id: DeadLetterId) -> Result<bool, InboxError> {
        Ok(self.lock().dead_letters.remove(&id.0).is_some())
    }

    async fn replay_dead_letter(
        &self,
        id: DeadLetterId,
        now: OffsetDateTime,
    ) -> Result<Option<DeliveryId>, InboxError> {
        let mut state = self.lock();
        let Some(letter) = state.dead_letters.remove(&id.0) else {
            return Ok(None);
        };
        let body = replay_body(letter.account_id, &letter.event);
        Ok(Some(state.push(letter.account_id, body, now)))
    }

    async fn quarantined(&self, limit: usize) -> Result<Vec<Quarantined>, InboxError> {
        self.quarantined_after(None, limit).await
    }

    async fn quarantined_after(
        &self,
        after: Option<QuarantineId>,
        limit: usize,
    ) -> Result<Vec<Quarantined>, InboxError> {
        let from = after.map_or(0, |a| a.0.saturating_add(1));
        let state = self.lock();
        Ok(state
            .quarantined
            .range(from..)
            .map(|(_, q)| q.clone())
            .take(limit)
            .collect())
    }

    async fn quarantined_body(&self, id: QuarantineId) -> Result<Option<Quarantined>, InboxError> {
        Ok(self.lock().quarantined.get(&id.0).cloned())
    }

    async fn discard_quarantined(&self, id: QuarantineId) -> Result<bool, InboxError> {
        Ok(self.lock().quarantined.remove(&id.0).is_some())
    }

    async fn replay_quarantined(
        &self,
        id: QuarantineId,
        account_id: AccountId,
        now: OffsetDateTime,
    ) -> Result<Option<DeliveryId>, InboxError> {
        let mut state = self.lock();
        let Some(body) = state.quarantined.remove(&id.0) else {
            return Ok(None);
        };
        Ok(Some(state.push(account_id, body.body, now)))
    }

    async fn stats(&self, now: OffsetDateTime) -> Result<InboxStats, InboxError> {
        let state = self.lock();
        let (mut pending, mut in_flight, mut retrying) = (0, 0, 0);
        for d in state.deliveries.values() {
            if d.leased(now) {
                in_flight += 1;
            } else if d.retrying(now) {
                retrying += 1;
            } else {
                pending += 1;
            }
        }
        let oldest = state
            .deliveries
            .values()
            .map(|d| d.received_at)
            .min()
            .map(|t| age(now, t));
        Ok(InboxStats::new(
            pending,
            in_flight,
            retrying,
            state.dead_letters.len() as u64,
            state.quarantined.len() as u64,
            oldest,
        )
        .with_quarantined_bytes(
            state
                .quarantined
                .values()
                .map(|q| q.body.len() as u64)
                .sum(),
        ))
    }

    async fn most_kept_of_one_account(&self) -> Result<KeptCounts, InboxError> {
        Ok(tally::most_of_one_account(&self.lock().per_account()))
    }

    async fn kept_of(&self, account_id: AccountId) -> Result<KeptCounts, InboxError> {
        let kept = self.lock().per_account();
        Ok(kept.get(&account_id).copied().unwrap_or_default())
    }

    async fn pause(&self, scope: PauseScope, now: OffsetDateTime) -> Result<(), InboxError> {
        self.lock().pauses.entry(scope).or_insert(now);
        Ok(())
    }

    async fn resume(&self, scope: PauseScope) -> Result<bool, InboxError> {
        let mut state = self.lock();
        Ok(match scope {
            PauseScope::All => {
                let any = !state.pauses.is_empty();
                state.pauses.clear();
                any
            }
            one => state.pauses.remove(&one).is_some(),
        })
    }

    async fn pauses(&self) -> Result<Vec<Pause>, InboxError> {
        Ok(self.lock().pause_list())
    }
}
