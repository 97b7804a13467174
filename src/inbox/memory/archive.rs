//! The memory inbox's archive: the completed deliveries, searched by
//! reading them all (for tests and the demo).

use time::OffsetDateTime;

use super::state::State;
use crate::inbox::{ArchiveCursor, ArchiveFilter, ArchivedDelivery, FoundEvent};

impl State {
    /// The archived events `filter` matches, in order, at most `limit`.
    pub(super) fn search_archive(&self, filter: &ArchiveFilter, limit: usize) -> Vec<FoundEvent> {
        let mut found: Vec<FoundEvent> = self
            .archive
            .values()
            .filter(|d| filter.delivery_matches(d.account_id, d.received_at))
            .flat_map(|d| {
                d.events
                    .iter()
                    .filter(|e| filter.event_matches(e))
                    .map(|e| FoundEvent::new(d.id, d.account_id, d.received_at, e.clone()))
            })
            .collect();
        found.sort_by_key(|f| (f.received_at, f.delivery, f.event.index));
        found.truncate(limit);
        found
    }

    /// The archived deliveries `filter` matches after `after`, in order,
    /// at most `limit`.
    pub(super) fn archived(
        &self,
        filter: &ArchiveFilter,
        after: Option<ArchiveCursor>,
        limit: usize,
    ) -> Vec<ArchivedDelivery> {
        let mut found: Vec<&ArchivedDelivery> = self
            .archive
            .values()
            .filter(|d| after.is_none_or(|a| d.cursor() > a))
            .filter(|d| filter.delivery_matches(d.account_id, d.received_at))
            .filter(|d| {
                !filter.has_event_condition() || d.events.iter().any(|e| filter.event_matches(e))
            })
            .collect();
        found.sort_by_key(|d| d.cursor());
        found.into_iter().take(limit).cloned().collect()
    }

    /// Removes at most `limit` archived deliveries received before
    /// `before`, oldest first.
    pub(super) fn sweep_archive(&mut self, before: OffsetDateTime, limit: usize) -> u64 {
        let mut old: Vec<ArchiveCursor> = self
            .archive
            .values()
            .filter(|d| d.received_at < before)
            .map(ArchivedDelivery::cursor)
            .collect();
        old.sort();
        old.truncate(limit);
        for cursor in &old {
            self.archive.remove(&cursor.id.0);
        }
        old.len() as u64
    }
}
