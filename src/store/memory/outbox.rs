//! The outbox in memory: a queue per account, appended under the locks of
//! the commit that decides the event (for tests and single-process
//! receivers: it is lost with the process).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use super::super::outbox::{OutboxEntry, OutboxStats, OutboxStore, highest_sent};
use super::super::{Decided, StoreError};
use super::MemoryStore;

/// The queued entries, by (account, seq), and the accounts' counters and
/// leases.
#[derive(Debug, Default)]
pub(super) struct Queue {
    entries: BTreeMap<(u64, u64), OutboxEntry>,
    next_seq: HashMap<u64, u64>,
    leases: HashMap<u64, (String, SystemTime)>,
}

impl Queue {
    /// Queues the processed event of a commit just made.
    pub(super) fn push(&mut self, decided: &Decided<'_>) {
        if !decided.is_processed() {
            return;
        }
        // Every event the crate parsed serializes (its fields are JSON
        // values it read).
        let Ok(mut entry) = OutboxEntry::of(decided.event) else {
            return;
        };
        let next = self.next_seq.entry(entry.account_id.get()).or_insert(0);
        *next += 1;
        entry.seq = *next;
        self.entries
            .insert((entry.account_id.get(), entry.seq), entry);
    }
}

impl MemoryStore {
    /// Keeps an outbox in memory: an entry for every processed event,
    /// queued under the locks of the commit that decides it, for a relay
    /// ([`crate::outbox::Relay`]) to forward.
    ///
    /// ```
    /// use alm_webhooks::store::{MemoryStore, OutboxStore};
    /// let store = MemoryStore::new().with_outbox();
    /// assert!(store.keeps_outbox());
    /// ```
    pub fn with_outbox(mut self) -> Self {
        self.outbox = Some(Mutex::new(Queue::default()));
        self
    }

    pub(super) fn queue(&self) -> Option<std::sync::MutexGuard<'_, Queue>> {
        self.outbox
            .as_ref()
            .map(|q| q.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl OutboxStore for MemoryStore {
    fn keeps_outbox(&self) -> bool {
        self.outbox.is_some()
    }

    async fn lease_outbox(
        &self,
        relay: &str,
        max: usize,
        lease: Duration,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let Some(mut queue) = self.queue() else {
            return Ok(Vec::new());
        };
        let now = SystemTime::now();
        let queue = &mut *queue;
        let mut out = Vec::new();
        let mut account = None;
        for ((a, _), entry) in &queue.entries {
            if out.len() >= max {
                break;
            }
            if account != Some(*a) {
                let free = match queue.leases.get(a) {
                    Some((holder, until)) => holder == relay || *until <= now,
                    None => true,
                };
                if !free {
                    continue;
                }
                queue.leases.insert(*a, (relay.to_owned(), now + lease));
                account = Some(*a);
            }
            out.push(entry.clone());
        }
        Ok(out)
    }

    async fn mark_sent(&self, relay: &str, sent: &[OutboxEntry]) -> Result<(), StoreError> {
        let Some(mut queue) = self.queue() else {
            return Ok(());
        };
        for (account, upto) in highest_sent(sent) {
            let a = account.get();
            let done: Vec<(u64, u64)> = queue
                .entries
                .range((a, 0)..=(a, upto))
                .map(|(k, _)| *k)
                .collect();
            for key in done {
                queue.entries.remove(&key);
            }
            if queue
                .leases
                .get(&a)
                .is_some_and(|(holder, _)| holder == relay)
            {
                queue.leases.remove(&a);
            }
        }
        Ok(())
    }

    async fn outbox_stats(&self) -> Result<OutboxStats, StoreError> {
        let Some(queue) = self.queue() else {
            return Ok(OutboxStats::default());
        };
        let oldest = queue.entries.values().map(|e| e.decided_at).min();
        Ok(OutboxStats::new(queue.entries.len() as u64, oldest))
    }
}
