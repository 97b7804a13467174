//! The worker pool's sweep of the archive: a bounded step a minute, the
//! next at once while a step finds a full one.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::watch;

use super::pool::Phase;
use crate::inbox::{ARCHIVE_SWEEP_STEP, Inbox};

/// How long the sweep waits between steps that found less than a full one.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Sweeps what `inbox` archived more than `retention` ago, one
/// [`ARCHIVE_SWEEP_STEP`] at a time, until the pool stops. A failed step is
/// tried again a minute later (what is past its time waits; nothing is
/// lost).
pub(super) async fn sweep_task<I: Inbox>(
    inbox: Arc<I>,
    retention: Duration,
    mut phase: watch::Receiver<Phase>,
) {
    let mut watching = true;
    loop {
        if *phase.borrow() != Phase::Running {
            return;
        }
        let before = OffsetDateTime::now_utc() - retention;
        let full = matches!(
            inbox.sweep_archive(before, ARCHIVE_SWEEP_STEP).await,
            Ok(n) if n as usize >= ARCHIVE_SWEEP_STEP
        );
        let wait = if full { Duration::ZERO } else { SWEEP_EVERY };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            changed = phase.changed(), if watching => watching = changed.is_ok(),
        }
        tokio::task::yield_now().await;
    }
}
