//! A replay job's run: read the archive a page at a time, queue each
//! matched delivery again at the tail of its account, wait for the step.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::value::RawValue;
use time::OffsetDateTime;

use super::book::Waited;
use super::{ReplayId, ReplayJobs, ReplayMode, ReplayRequest};
use crate::inbox::{ArchivedDelivery, Inbox, NewDelivery};

/// What a rerun delivery's stored bytes begin with: a NUL, which no JSON
/// body starts with, so neither ALM nor a quarantined body replayed can
/// make one (the front door and [`Inbox::replay_quarantined`] take only
/// bodies that parse).
const RERUN_MARK: &[u8] = b"\0alm-webhooks rerun\n";

/// The envelope of a rerun delivery, without its mark; `None` for any
/// other delivery.
pub(crate) fn strip_rerun(body: &[u8]) -> Option<&[u8]> {
    body.strip_prefix(RERUN_MARK)
}

impl ReplayJobs {
    /// Starts a replay of `request` on `inbox` in the background (on the
    /// current Tokio runtime) and gives its id at once. A filter with no
    /// end (or one in the future) ends now, so the job never replays what
    /// it queues itself.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::sync::Arc;
    /// use alm_webhooks::AccountId;
    /// use alm_webhooks::inbox::{ArchiveFilter, MemoryInbox, ReplayJobs, ReplayMode, ReplayRequest, ReplayState};
    /// let jobs = ReplayJobs::new();
    /// let filter = ArchiveFilter::new().with_account_id(AccountId(7));
    /// let id = jobs.start(Arc::new(MemoryInbox::new()), ReplayRequest::new(filter, ReplayMode::Unprocessed));
    /// let status = jobs.status(id).unwrap();
    /// assert_eq!((status.state, status.matched), (ReplayState::Running, 0));
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime.
    pub fn start<I: Inbox>(&self, inbox: Arc<I>, mut request: ReplayRequest) -> ReplayId {
        let now = OffsetDateTime::now_utc();
        if request.filter.to.is_none_or(|to| to > now) {
            request.filter = request.filter.received_before(now);
        }
        let id = self.begin(request.mode);
        tokio::spawn(run(self.clone(), inbox, id, request, self.step()));
        id
    }
}

/// Runs the job to its end and records how it ended.
async fn run<I: Inbox>(
    jobs: ReplayJobs,
    inbox: Arc<I>,
    id: ReplayId,
    request: ReplayRequest,
    step: usize,
) {
    let error = steps(&jobs, &*inbox, id, &request, step).await.err();
    #[cfg(feature = "tracing")]
    if let Some(error) = &error {
        tracing::warn!(replay = %id, %error, "a replay job failed");
    }
    jobs.finish(id, error);
}

async fn steps<I: Inbox>(
    jobs: &ReplayJobs,
    inbox: &I,
    id: ReplayId,
    request: &ReplayRequest,
    step: usize,
) -> Result<(), String> {
    let mut after = None;
    while jobs.is_running(id) {
        let page = inbox
            .archived(&request.filter, after, step)
            .await
            .map_err(|e| {
                format!(
                    "cannot read the archive: {}",
                    crate::engine::error_chain(&e)
                )
            })?;
        // A delivery archived with a finer time than its cursor's (before
        // the archive kept milliseconds) may come again: skip it.
        let seen = after;
        let fresh: Vec<_> = page
            .iter()
            .filter(|d| seen.is_none_or(|seen| d.cursor() > seen))
            .collect();
        let Some(last) = fresh.last() else {
            return Ok(());
        };
        after = Some(last.cursor());
        for delivery in fresh {
            let Some((body, events)) = replay_body(delivery, request) else {
                continue;
            };
            let appended = inbox
                .append(NewDelivery {
                    account_id: delivery.account_id,
                    body: &body,
                    received_at: OffsetDateTime::now_utc(),
                })
                .await
                .map_err(|e| {
                    format!(
                        "cannot queue a delivery: {}",
                        crate::engine::error_chain(&e)
                    )
                })?;
            jobs.queued(id, appended, events);
        }
        if let Waited::Stalled = jobs.wait_step(id).await {
            return Err(
                "no delivery of the step was done within the stall limit: are this \
                 process's workers running (and given the jobs)?"
                    .to_owned(),
            );
        }
    }
    Ok(())
}

/// The body to queue again for `delivery`, and how many events it holds:
/// its events that the filter's conditions on events match (in rerun
/// mode, of those, the ones the archive says were processed), each
/// exactly as ALM sent it, in their order. `None` when none is left.
pub(super) fn replay_body(
    delivery: &ArchivedDelivery,
    request: &ReplayRequest,
) -> Option<(Vec<u8>, u64)> {
    #[derive(Deserialize)]
    struct Raw<'a> {
        #[serde(borrow)]
        events: Vec<&'a RawValue>,
    }
    let raw: Raw<'_> = serde_json::from_slice(&delivery.body).ok()?;
    let chosen: Vec<&str> = delivery
        .events
        .iter()
        .filter(|e| request.filter.event_matches(e))
        .filter(|e| request.mode == ReplayMode::Unprocessed || e.decision == "processed")
        .filter_map(|e| raw.events.get(usize::try_from(e.index).ok()?))
        .map(|r| r.get())
        .collect();
    if chosen.is_empty() {
        return None;
    }
    let mut body = match request.mode {
        ReplayMode::Rerun => RERUN_MARK.to_vec(),
        ReplayMode::Unprocessed => Vec::new(),
    };
    body.extend_from_slice(
        format!(
            r#"{{"accountId":{},"events":[{}]}}"#,
            delivery.account_id,
            chosen.join(",")
        )
        .as_bytes(),
    );
    Some((body, chosen.len() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AccountId;
    use crate::inbox::{ArchiveFilter, ArchivedEvent, DeliveryId};

    #[test]
    fn a_rerun_body_holds_the_processed_events_exactly_and_is_marked() {
        let body =
            br#"{"accountId":7,"events":[{"eventId":"a"}, {"eventId": "b"},{"eventId":"c"}]}"#;
        let events = vec![
            ArchivedEvent::new(0, "processed"),
            ArchivedEvent::new(1, "processed"),
            ArchivedEvent::new(2, "failed"),
        ];
        let at = OffsetDateTime::UNIX_EPOCH;
        let delivery =
            ArchivedDelivery::new(DeliveryId(1), AccountId(7), body.to_vec(), at, events);
        let rerun = ReplayRequest::new(ArchiveFilter::new(), ReplayMode::Rerun);
        let (bytes, n) = replay_body(&delivery, &rerun).unwrap();
        assert_eq!(n, 2);
        assert_eq!(
            strip_rerun(&bytes).unwrap(),
            br#"{"accountId":7,"events":[{"eventId":"a"},{"eventId": "b"}]}"#
        );
        let again = ReplayRequest::new(ArchiveFilter::new(), ReplayMode::Unprocessed);
        let (bytes, n) = replay_body(&delivery, &again).unwrap();
        assert_eq!(n, 3);
        assert!(strip_rerun(&bytes).is_none());
        let none =
            ArchivedDelivery::new(DeliveryId(2), AccountId(7), body.to_vec(), at, Vec::new());
        assert!(replay_body(&none, &rerun).is_none());
    }
}
