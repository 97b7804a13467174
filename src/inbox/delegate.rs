//! How the backends implement the [`Inbox`](super::Inbox) methods
//! about what they keep for a person.

/// The [`Inbox`] methods about what an inbox keeps for a person (dead
/// letters, quarantined bodies), delegated to inherent `kept_…` methods of
/// the same names (`kept_of` to `kept_of_account`): how the SQL backends
/// keep those in their own file.
#[cfg(any(feature = "postgres", feature = "sqlite"))]
macro_rules! delegate_kept {
    () => {
        async fn quarantine(
            &self,
            body: $crate::inbox::NewQuarantined<'_>,
        ) -> Result<$crate::inbox::QuarantineId, $crate::inbox::InboxError> {
            self.kept_quarantine(body).await
        }

        async fn dead_letters(
            &self,
            limit: usize,
        ) -> Result<Vec<$crate::inbox::DeadLetter>, $crate::inbox::InboxError> {
            self.kept_dead_letters(0, limit).await
        }

        async fn dead_letters_after(
            &self,
            after: Option<$crate::inbox::DeadLetterId>,
            limit: usize,
        ) -> Result<Vec<$crate::inbox::DeadLetter>, $crate::inbox::InboxError> {
            self.kept_dead_letters(after.map_or(0, |a| a.0), limit)
                .await
        }

        async fn dead_letter(
            &self,
            id: $crate::inbox::DeadLetterId,
        ) -> Result<Option<$crate::inbox::DeadLetter>, $crate::inbox::InboxError> {
            self.kept_dead_letter(id).await
        }

        async fn discard_dead_letter(
            &self,
            id: $crate::inbox::DeadLetterId,
        ) -> Result<bool, $crate::inbox::InboxError> {
            self.kept_discard_dead_letter(id).await
        }

        async fn replay_dead_letter(
            &self,
            id: $crate::inbox::DeadLetterId,
            now: time::OffsetDateTime,
        ) -> Result<Option<$crate::inbox::DeliveryId>, $crate::inbox::InboxError> {
            self.kept_replay_dead_letter(id, now).await
        }

        async fn quarantined(
            &self,
            limit: usize,
        ) -> Result<Vec<$crate::inbox::Quarantined>, $crate::inbox::InboxError> {
            self.kept_quarantined(0, limit).await
        }

        async fn quarantined_after(
            &self,
            after: Option<$crate::inbox::QuarantineId>,
            limit: usize,
        ) -> Result<Vec<$crate::inbox::Quarantined>, $crate::inbox::InboxError> {
            self.kept_quarantined(after.map_or(0, |a| a.0), limit).await
        }

        async fn quarantined_body(
            &self,
            id: $crate::inbox::QuarantineId,
        ) -> Result<Option<$crate::inbox::Quarantined>, $crate::inbox::InboxError> {
            self.kept_quarantined_body(id).await
        }

        async fn discard_quarantined(
            &self,
            id: $crate::inbox::QuarantineId,
        ) -> Result<bool, $crate::inbox::InboxError> {
            self.kept_discard_quarantined(id).await
        }

        async fn kept_of(
            &self,
            account_id: $crate::AccountId,
        ) -> Result<$crate::inbox::KeptCounts, $crate::inbox::InboxError> {
            self.kept_of_account(account_id).await
        }

        async fn most_kept_of_one_account(
            &self,
        ) -> Result<$crate::inbox::KeptCounts, $crate::inbox::InboxError> {
            self.kept_most_kept_of_one_account().await
        }

        async fn replay_quarantined(
            &self,
            id: $crate::inbox::QuarantineId,
            account_id: $crate::AccountId,
            now: time::OffsetDateTime,
        ) -> Result<Option<$crate::inbox::DeliveryId>, $crate::inbox::InboxError> {
            self.kept_replay_quarantined(id, account_id, now).await
        }
    };
}

/// The [`Inbox`] methods about pauses, delegated to inherent
/// `pause_scope`, `resume_scope` and `pause_list` methods: how the SQL
/// backends (and Redis) keep those in their own file.
#[cfg(any(feature = "postgres", feature = "sqlite", feature = "redis"))]
macro_rules! delegate_pause {
    () => {
        async fn pause(
            &self,
            scope: $crate::inbox::PauseScope,
            now: time::OffsetDateTime,
        ) -> Result<(), $crate::inbox::InboxError> {
            self.pause_scope(scope, now).await
        }

        async fn resume(
            &self,
            scope: $crate::inbox::PauseScope,
        ) -> Result<bool, $crate::inbox::InboxError> {
            self.resume_scope(scope).await
        }

        async fn pauses(&self) -> Result<Vec<$crate::inbox::Pause>, $crate::inbox::InboxError> {
            self.pause_list().await
        }
    };
}

/// The [`Inbox`](super::Inbox) methods about the archive, delegated to
/// inherent `archive_complete`, `archive_search`, `archive_read` and
/// `archive_sweep` methods: how the backends keep the archive in its own
/// file.
#[cfg(any(feature = "postgres", feature = "sqlite", feature = "redis"))]
macro_rules! delegate_archive {
    () => {
        async fn complete_archived(
            &self,
            id: $crate::inbox::DeliveryId,
            token: $crate::inbox::LeaseToken,
            dead_letters: &[$crate::inbox::NewDeadLetter],
            events: &[$crate::inbox::ArchivedEvent],
        ) -> Result<bool, $crate::inbox::InboxError> {
            self.archive_complete(id, token, dead_letters, events).await
        }

        async fn search_archive(
            &self,
            filter: &$crate::inbox::ArchiveFilter,
            limit: usize,
        ) -> Result<Vec<$crate::inbox::FoundEvent>, $crate::inbox::InboxError> {
            self.archive_search(filter, limit).await
        }

        async fn archived(
            &self,
            filter: &$crate::inbox::ArchiveFilter,
            after: Option<$crate::inbox::ArchiveCursor>,
            limit: usize,
        ) -> Result<Vec<$crate::inbox::ArchivedDelivery>, $crate::inbox::InboxError> {
            self.archive_read(filter, after, limit).await
        }

        async fn sweep_archive(
            &self,
            before: time::OffsetDateTime,
            limit: usize,
        ) -> Result<u64, $crate::inbox::InboxError> {
            self.archive_sweep(before, limit).await
        }
    };
}
