//! A handler bounded in time: one that does not return within its limit is
//! a failed attempt, with an error that says so.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use crate::BoxError;

/// How long a worker lets a handler run on one event, by default
/// ([`WorkerOptions::with_handler_timeout`](super::WorkerOptions::with_handler_timeout)).
///
/// ```
/// assert_eq!(alm_webhooks::inbox::DEFAULT_HANDLER_TIMEOUT.as_secs(), 30);
/// ```
pub const DEFAULT_HANDLER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The error of a handler that did not return within its time: the
/// event's attempt failed (its [`EventFailure`](crate::engine::EventFailure)
/// holds this error, for `downcast_ref`), and it is tried again or, after
/// the last attempt, dead-lettered with this message.
///
/// ```
/// use std::time::Duration;
/// use alm_webhooks::inbox::HandlerTimedOut;
///
/// let error = HandlerTimedOut::after(Duration::from_secs(30));
/// assert_eq!(error.to_string(), "handler timed out after 30 s");
/// assert_eq!(error.limit(), Duration::from_secs(30));
/// let error = HandlerTimedOut::after(Duration::from_millis(250));
/// assert_eq!(error.to_string(), "handler timed out after 250 ms");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct HandlerTimedOut {
    limit: Duration,
    /// Inline: the limit was what remained of the delivery's budget.
    budget: Option<Duration>,
}

impl HandlerTimedOut {
    /// A handler stopped after `limit`.
    pub fn after(limit: Duration) -> Self {
        Self {
            limit,
            budget: None,
        }
    }

    /// A handler stopped after `limit`, what remained of a delivery's
    /// `budget` (an endpoint's inline mode).
    pub(crate) fn within_budget(limit: Duration, budget: Duration) -> Self {
        Self {
            limit,
            budget: Some(budget),
        }
    }

    /// How long the handler was given.
    pub fn limit(&self) -> Duration {
        self.limit
    }
}

/// `30 s`, or `250 ms` when not whole seconds.
fn seconds(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{} s", duration.as_secs())
    } else {
        format!("{} ms", duration.as_millis())
    }
}

impl fmt::Display for HandlerTimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "handler timed out after {}", seconds(self.limit))?;
        if let Some(budget) = self.budget {
            write!(
                f,
                " (the rest of the delivery's {} budget)",
                seconds(budget)
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for HandlerTimedOut {}

/// Runs one handler's future for at most `limit`; past it the future is
/// dropped (the handler cancelled) and the attempt fails with `timed_out`.
pub(crate) async fn bounded<Fut>(
    handler: Fut,
    limit: Duration,
    timed_out: HandlerTimedOut,
) -> Result<(), BoxError>
where
    Fut: Future<Output = Result<(), BoxError>>,
{
    match tokio::time::timeout(limit, handler).await {
        Ok(result) => result,
        Err(_) => Err(Box::new(timed_out)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_handler_that_never_returns_fails_at_its_limit() {
        let limit = Duration::from_secs(30);
        let never = std::future::pending::<Result<(), BoxError>>();
        let error = bounded(never, limit, HandlerTimedOut::after(limit))
            .await
            .unwrap_err();
        assert_eq!(error.to_string(), "handler timed out after 30 s");
        assert!(error.downcast_ref::<HandlerTimedOut>().is_some());
        let quick = bounded(async { Ok(()) }, limit, HandlerTimedOut::after(limit)).await;
        assert!(quick.is_ok());
    }

    #[test]
    fn inline_says_which_budget() {
        let error =
            HandlerTimedOut::within_budget(Duration::from_millis(1500), Duration::from_secs(4));
        assert_eq!(
            error.to_string(),
            "handler timed out after 1500 ms (the rest of the delivery's 4 s budget)"
        );
    }
}
