//! A rerun delivery (queued by a replay job in
//! [`ReplayMode::Rerun`](crate::inbox::ReplayMode::Rerun)): its events go
//! to the handler once more, without the engine, so no decision and no
//! record of the store changes.

use std::future::Future;

use time::OffsetDateTime;

use super::Workers;
use super::rate::Backlog;
use super::timeout::{HandlerTimedOut, bounded};
use crate::inbox::{Inbox, InboxError, NewDeadLetter, NewQuarantined, Taken};
use crate::store::Store;
use crate::{BoxError, Envelope, Event};

impl<S: Store, I: Inbox> Workers<S, I> {
    /// Runs each event of `bytes` (a rerun delivery's, without its
    /// mark) through `handler`, in order, within the handler timeout and
    /// the rate limits. All succeeded: completed, not archived (the
    /// archive keeps the first run's decisions). One failed before the
    /// last attempt: given back for a retry, which runs every event again
    /// (a rerun is at least once). On the last attempt, the failed ones
    /// are dead letters (replaying such a letter goes through the engine,
    /// which sees a duplicate: rerun the range instead). Whether it was
    /// completed.
    pub(super) async fn rerun<H, Fut>(
        &self,
        taken: &Taken,
        bytes: &[u8],
        handler: &H,
    ) -> Result<bool, InboxError>
    where
        H: Fn(Event) -> Fut + Send + Sync,
        Fut: Future<Output = Result<(), BoxError>> + Send,
    {
        let (id, token) = (taken.id, taken.token);
        let envelope = match Envelope::from_slice(bytes) {
            Ok(envelope) => envelope,
            Err(e) => {
                let error = format!("a rerun delivery that is not an envelope: {e}");
                self.inbox
                    .quarantine(NewQuarantined {
                        account_id: Some(taken.account_id),
                        body: &taken.body,
                        error: &error,
                        received_at: taken.received_at,
                    })
                    .await?;
                return self.inbox.complete(id, token, &[]).await.map(|_| true);
            }
        };
        let account_id = envelope.account_id;
        let raw = super::deliver::raw_events(bytes).unwrap_or_default();
        let attempt = taken.attempts.max(1);
        let limit = self.options.handler_timeout;
        let backlog = self
            .options
            .rate
            .as_deref()
            .map(|limits| Backlog::new(limits, envelope.events.len()));
        let mut failed = Vec::new();
        for (index, event) in envelope.events.into_iter().enumerate() {
            // Each was processed once, so it parses.
            let Ok(event) = event else { continue };
            if let Some(backlog) = &backlog {
                backlog.pass(account_id).await;
            }
            let (event_id, event_name) = (event.event_id.clone(), event.event_name.clone());
            if let Err(error) = bounded(handler(event), limit, HandlerTimedOut::after(limit)).await
            {
                let error = crate::engine::error_chain(&*error);
                failed.push(NewDeadLetter {
                    account_id,
                    event_id: Some(event_id.as_str().to_owned()),
                    event_name: Some(event_name.as_str().to_owned()),
                    event: raw
                        .get(index)
                        .map_or_else(String::new, |r| r.get().to_owned()),
                    error: format!("rerun: {error}"),
                    attempts: attempt,
                    at: OffsetDateTime::now_utc(),
                });
            }
        }
        if failed.is_empty() {
            return self.inbox.complete(id, token, &[]).await;
        }
        if self.options.retry.is_last(attempt) {
            return self.inbox.complete(id, token, &failed).await;
        }
        let not_before = OffsetDateTime::now_utc() + self.options.retry.backoff(attempt);
        let error = &failed[0].error;
        self.inbox
            .retry_later(id, token, not_before, error)
            .await
            .map(|_| false)
    }
}
