//! Supervised workers: each worker's loop, the lease it holds on a
//! delivery, and what happens when something in it panics (the handler,
//! the observer, the store or the inbox): the panic is caught and
//! reported, the delivery is a failed attempt, and the worker goes on.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::{Notify, watch};

use super::alone::{Alone, Shared};
use super::deliver::{Trail, raw_events};
use super::pool::{Health, Phase, WorkerPool};
use super::{Progress, Workers};
use crate::engine::CatchUnwind;
use crate::inbox::{Inbox, NewDeadLetter, Taken};
use crate::store::Store;
use crate::{BoxError, Event};

/// The error a delivery is given back with (and, after the last attempt,
/// its undecided events' dead letters say) when a worker panicked on it.
const PANICKED: &str = "a worker panicked while handling the delivery";

impl<S: Store, I: Inbox> Workers<S, I> {
    /// Starts the workers on the current tokio runtime, each running
    /// `handler` for the events to process, each supervised (see
    /// [`WorkerPool`]). With the `metrics` feature the pool also sets the
    /// inbox gauges (`alm_webhooks_inbox_pending`, …) from the inbox's
    /// counts every 5 s while it runs.
    pub fn start<H, Fut>(self, handler: H) -> WorkerPool
    where
        H: Fn(Event) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        let (phase, watcher) = watch::channel(Phase::Running);
        let wake = Arc::new(Notify::new());
        let health = Arc::new(super::pool::Health::new(self.options.restart_limit));
        let alone = Arc::new(Alone::default());
        let count = self.options.count;
        let shared = Arc::new((self, handler));
        let tasks = (0..count)
            .map(|_| {
                let (shared, watcher, wake, health, alone) = (
                    Arc::clone(&shared),
                    watcher.clone(),
                    Arc::clone(&wake),
                    Arc::clone(&health),
                    Arc::clone(&alone),
                );
                tokio::spawn(async move {
                    let (workers, handler) = &*shared;
                    let pool = Pooled {
                        wake: &wake,
                        health: &health,
                        alone: &alone,
                    };
                    workers.supervise(handler, watcher, pool).await;
                })
            })
            .collect::<Vec<_>>();
        let mut tasks = tasks;
        if let Some(retention) = shared.0.options.archive {
            let inbox = Arc::clone(&shared.0.inbox);
            tasks.push(tokio::spawn(super::sweep::sweep_task(
                inbox,
                retention,
                watcher.clone(),
            )));
        }
        #[cfg(feature = "metrics")]
        let tasks = {
            let mut tasks = tasks;
            tasks.push(tokio::spawn(super::gauges(
                Arc::clone(&shared.0.inbox),
                shared.0.kept_caps,
                watcher,
            )));
            tasks
        };
        WorkerPool {
            phase,
            wake,
            tasks: std::sync::Mutex::new(tasks),
            health,
        }
    }

    /// Runs a worker's loop until the pool stops, restarting it after a
    /// panic outside a delivery (in `take`, say) after a short pause.
    async fn supervise<H, Fut>(
        &self,
        handler: &H,
        mut phase: watch::Receiver<Phase>,
        pool: Pooled<'_>,
    ) where
        H: Fn(Event) -> Fut + Send + Sync,
        Fut: Future<Output = Result<(), BoxError>> + Send,
    {
        loop {
            let work = std::pin::pin!(self.work(handler, phase.clone(), pool));
            if CatchUnwind::new(work).await.is_ok() {
                return;
            }
            pool.health.restarted();
            self.report_panic(None);
            tokio::select! {
                () = tokio::time::sleep(self.options.poll.max(Duration::from_millis(100))) => {}
                _ = phase.wait_for(|p| *p != Phase::Running) => return,
            }
        }
    }

    async fn work<H, Fut>(&self, handler: &H, mut phase: watch::Receiver<Phase>, pool: Pooled<'_>)
    where
        H: Fn(Event) -> Fut + Send + Sync,
        Fut: Future<Output = Result<(), BoxError>> + Send,
    {
        // An idle worker looks again after `poll`, then less and less often
        // (up to 16 × `poll`, at most 1 s unless `poll` is longer), so idle
        // receivers do not keep a shared database busy; a wake, or work,
        // brings it back to `poll`.
        let longest = self
            .options
            .poll
            .max((self.options.poll * 16).min(Duration::from_secs(1)));
        let mut idle = self.options.poll;
        while *phase.borrow() == Phase::Running {
            // No delivery is taken while a suspect runs alone (see
            // `alone`); the turn is waited for only while running.
            let shared = tokio::select! {
                shared = pool.alone.shared() => shared,
                _ = phase.wait_for(|p| *p != Phase::Running) => return,
            };
            // A `take` that does not answer is abandoned at shutdown (a
            // delivery it may have leased is taken again after its lease).
            let (lease, batch) = (self.options.lease, self.options.take_batch);
            let taken = tokio::select! {
                taken = self.inbox.take_many(lease, OffsetDateTime::now_utc(), batch) => taken,
                _ = phase.wait_for(|p| *p == Phase::Abandon) => return,
            };
            match taken {
                Ok(run) if !run.is_empty() => {
                    idle = self.options.poll;
                    self.hold_run(run, handler, &mut phase, pool, shared).await;
                }
                Ok(_) => {
                    drop(shared);
                    tokio::select! {
                        () = tokio::time::sleep(idle) => idle = (idle * 2).min(longest),
                        () = pool.wake.notified() => idle = self.options.poll,
                        _ = phase.changed() => {}
                    }
                }
                Err(e) => {
                    drop(shared);
                    self.report(Progress::Unavailable { error: &e });
                    tokio::select! {
                        () = tokio::time::sleep(self.options.poll.max(Duration::from_millis(200))) => {}
                        _ = phase.changed() => {}
                    }
                }
            }
        }
    }

    /// Works on a taken delivery while renewing its lease; gives it back
    /// untouched if the pool is told to abandon its work, and as a failed
    /// attempt if anything panics on it.
    ///
    /// A suspect (taken after an abandoned attempt) first waits until it is
    /// alone in the process (see `alone`), its lease renewed meanwhile; if
    /// another suspect is in hand it is given back untouched at once.
    ///
    /// The heartbeat runs in the same task as the handler, which is bounded
    /// by the handler timeout: the lease is renewed only while a handler
    /// is within its time (a handler that blocks its thread stops the
    /// renewals too, and the lease runs out).
    ///
    /// Whether the delivery was completed. `shared` is the shared side
    /// of the pool's turn when this delivery holds it alone (`None` when
    /// a run holds it for all its deliveries, which are no suspects).
    pub(super) async fn hold<H, Fut>(
        &self,
        taken: Taken,
        handler: &H,
        phase: &mut watch::Receiver<Phase>,
        pool: Pooled<'_>,
        shared: Option<Shared>,
    ) -> bool
    where
        H: Fn(Event) -> Fut + Send + Sync,
        Fut: Future<Output = Result<(), BoxError>> + Send,
    {
        let (id, token) = (taken.id, taken.token);
        let (mut shared, mut suspect) = (shared, None);
        if taken.abandoned > 0 {
            let Some(claimed) = pool.alone.suspect(shared.take()) else {
                if let Err(e) = self.inbox.release(id, token).await {
                    self.report(Progress::Unavailable { error: &e });
                }
                return false;
            };
            suspect = Some(claimed);
        }
        let heartbeat = async {
            loop {
                tokio::time::sleep(self.options.lease / 3).await;
                let _ = self
                    .inbox
                    .renew(id, token, self.options.lease, OffsetDateTime::now_utc())
                    .await;
            }
        };
        let abandon = async {
            let _ = phase.wait_for(|p| *p == Phase::Abandon).await.map(drop);
        };
        let trail = Trail::default();
        let finish = std::pin::pin!(async {
            if let Some(suspect) = &mut suspect {
                suspect.alone().await;
            }
            self.finish(&taken, handler, &trail).await
        });
        let completed = tokio::select! {
            finished = CatchUnwind::new(finish) => match finished {
                Ok(completed) => completed,
                Err(_) => {
                    pool.health.restarted();
                    self.give_back_panicked(&taken, &trail).await;
                    self.report_panic(Some(&taken));
                    false
                }
            },
            () = heartbeat => false,
            () = abandon => {
                if let Err(e) = self.inbox.release(id, token).await {
                    self.report(Progress::Unavailable { error: &e });
                }
                false
            }
        };
        drop(shared);
        // `suspect` is given up when this returns.
        completed
    }

    /// A panic on a delivery is a failed attempt: it is given back for a
    /// retry, or, on the last attempt, completed with its undecided events
    /// as dead letters. An observer that panics again here is ignored, so
    /// the delivery is given back whatever it does.
    async fn give_back_panicked(&self, taken: &Taken, trail: &Trail) {
        // The take counted this attempt.
        let attempt = taken.attempts.max(1);
        let given_back = if self.options.retry.is_last(attempt) {
            let letters = panicked_letters(taken, trail, attempt);
            // Archived without decisions: the panic took them.
            let kept = self.complete_keeping(taken, &letters, &[]).await;
            if matches!(kept, Ok(true)) {
                for letter in &letters {
                    self.report_caught(Progress::DeadLettered { letter });
                }
            }
            kept
        } else {
            let not_before = OffsetDateTime::now_utc() + self.options.retry.backoff(attempt);
            self.inbox
                .retry_later(taken.id, taken.token, not_before, PANICKED)
                .await
        };
        if let Err(e) = given_back {
            self.report_caught(Progress::Unavailable { error: &e });
        }
    }

    /// Reports `progress`, ignoring a panic of the observer.
    fn report_caught(&self, progress: Progress<'_>) {
        let _ = catch_unwind(AssertUnwindSafe(|| self.report(progress)));
    }

    /// Reports a caught panic (logged with the `tracing` feature); an
    /// observer that panics on this report too is ignored.
    fn report_panic(&self, taken: Option<&Taken>) {
        let (account_id, delivery) = (taken.map(|t| t.account_id), taken.map(|t| t.id));
        #[cfg(feature = "tracing")]
        tracing::error!(
            account_id = account_id.map(|a| a.get()),
            delivery = delivery.map(|d| d.0),
            "a worker panicked: restarted; the delivery in hand is a failed attempt"
        );
        self.report_caught(Progress::Panicked {
            account_id,
            delivery,
        });
    }
}

/// What a pool's workers share.
#[derive(Clone, Copy)]
pub(super) struct Pooled<'a> {
    wake: &'a Notify,
    health: &'a Health,
    alone: &'a Alone,
}

/// The dead letters of a delivery whose last attempt panicked: every event
/// not decided for good before the panic, as sent.
fn panicked_letters(taken: &Taken, trail: &Trail, attempt: u32) -> Vec<NewDeadLetter> {
    let decided = trail.decided();
    let letter =
        |event: String, event_id: Option<String>, event_name: Option<String>| NewDeadLetter {
            account_id: taken.account_id,
            event_id,
            event_name,
            event,
            error: format!("{PANICKED} ({attempt} attempts)"),
            attempts: attempt,
            at: OffsetDateTime::now_utc(),
        };
    let Some(raw) = raw_events(&taken.body) else {
        // Not an envelope: keep the whole body rather than lose it.
        let body = String::from_utf8_lossy(&taken.body).into_owned();
        return vec![letter(body, None, None)];
    };
    raw.iter()
        .enumerate()
        .filter(|(index, _)| !decided.contains(index))
        .map(|(_, event)| {
            let (id, name) = names(event.get());
            letter(event.get().to_owned(), id, name)
        })
        .collect()
}

/// An event's `eventId` and `eventName`, when it says them.
fn names(event: &str) -> (Option<String>, Option<String>) {
    #[derive(serde::Deserialize)]
    struct Names {
        #[serde(rename = "eventId")]
        event_id: Option<serde_json::Value>,
        #[serde(rename = "eventName")]
        event_name: Option<String>,
    }
    match serde_json::from_str::<Names>(event) {
        Ok(n) => (
            n.event_id.map(|v| match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            }),
            n.event_name,
        ),
        Err(_) => (None, None),
    }
}
