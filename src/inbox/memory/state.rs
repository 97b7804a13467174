//! The memory inbox's state, changed whole under its lock.

use std::collections::{BTreeMap, HashMap, VecDeque};

use time::OffsetDateTime;

use super::super::{
    ArchivedDelivery, DeliveryId, KeptCounts, LeaseToken, NewDeadLetter, Pause, PauseScope,
    Quarantined, tally,
};
use crate::AccountId;

#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) next_id: u64,
    pub(super) deliveries: BTreeMap<u64, Delivery>,
    /// Each account's deliveries, in order; the front is its head.
    pub(super) accounts: HashMap<AccountId, VecDeque<u64>>,
    pub(super) dead_letters: BTreeMap<u64, NewDeadLetter>,
    pub(super) quarantined: BTreeMap<u64, Quarantined>,
    /// The pauses in force, by scope, with their start.
    pub(super) pauses: BTreeMap<PauseScope, OffsetDateTime>,
    /// The archived deliveries, by delivery id.
    pub(super) archive: BTreeMap<u64, ArchivedDelivery>,
}

#[derive(Debug)]
pub(super) struct Delivery {
    pub(super) account_id: AccountId,
    pub(super) body: Vec<u8>,
    pub(super) received_at: OffsetDateTime,
    pub(super) attempts: u32,
    pub(super) abandoned: u32,
    pub(super) last_error: Option<String>,
    pub(super) not_before: Option<OffsetDateTime>,
    pub(super) lease: Option<(LeaseToken, OffsetDateTime)>,
}

impl Delivery {
    pub(super) fn leased(&self, now: OffsetDateTime) -> bool {
        self.lease.is_some_and(|(_, until)| until > now)
    }

    pub(super) fn retrying(&self, now: OffsetDateTime) -> bool {
        self.not_before.is_some_and(|t| t > now)
    }
}

impl State {
    pub(super) fn next(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub(super) fn push(
        &mut self,
        account_id: AccountId,
        body: Vec<u8>,
        at: OffsetDateTime,
    ) -> DeliveryId {
        let id = self.next();
        self.deliveries.insert(
            id,
            Delivery {
                account_id,
                body,
                received_at: at,
                attempts: 0,
                abandoned: 0,
                last_error: None,
                not_before: None,
                lease: None,
            },
        );
        self.accounts.entry(account_id).or_default().push_back(id);
        DeliveryId(id)
    }

    /// The delivery if `token` holds its lease.
    pub(super) fn held(&mut self, id: DeliveryId, token: LeaseToken) -> Option<&mut Delivery> {
        self.deliveries
            .get_mut(&id.0)
            .filter(|d| d.lease.is_some_and(|(t, _)| t == token))
    }

    /// Ends the lease `token` holds: waiting until `not_before`, with
    /// `error` as the last error, and `uncount` attempts taken back.
    pub(super) fn give_back(
        &mut self,
        id: DeliveryId,
        token: LeaseToken,
        not_before: Option<OffsetDateTime>,
        error: Option<&str>,
        uncount: u32,
    ) -> bool {
        let Some(d) = self.held(id, token) else {
            return false;
        };
        d.lease = None;
        d.not_before = not_before;
        d.attempts = d.attempts.saturating_sub(uncount);
        if let Some(error) = error {
            d.last_error = Some(error.to_owned());
        }
        true
    }

    /// What is kept of each account.
    pub(super) fn per_account(&self) -> HashMap<AccountId, KeptCounts> {
        tally::per_account(
            self.dead_letters.values().map(|l| l.account_id),
            self.quarantined
                .values()
                .map(|q| (q.account_id, q.body.len())),
        )
    }

    pub(super) fn remove(&mut self, id: u64) -> Option<Delivery> {
        let d = self.deliveries.remove(&id)?;
        {
            if let Some(queue) = self.accounts.get_mut(&d.account_id) {
                queue.retain(|&other| other != id);
                if queue.is_empty() {
                    self.accounts.remove(&d.account_id);
                }
            }
        }
        Some(d)
    }

    /// Whether `account`'s deliveries are held back by a pause.
    pub(super) fn paused(&self, account: AccountId) -> bool {
        self.pauses.contains_key(&PauseScope::All)
            || self.pauses.contains_key(&PauseScope::Account(account))
    }

    /// The pauses in force, in order.
    pub(super) fn pause_list(&self) -> Vec<Pause> {
        self.pauses
            .iter()
            .map(|(scope, since)| Pause::new(*scope, *since))
            .collect()
    }
}
