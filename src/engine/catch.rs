//! Catching a handler's panic, so one bad event does not take the
//! process (or the other events of a delivery) down.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use super::failure::EventFailure;
use super::tally::Tally;
use crate::{BoxError, Event};

/// Polls a pinned future, turning a panic into `Err(())`.
pub(crate) struct CatchUnwind<'a, F>(Pin<&'a mut F>);

impl<'a, F: Future> CatchUnwind<'a, F> {
    pub(crate) fn new(future: Pin<&'a mut F>) -> Self {
        Self(future)
    }
}

impl<F: Future> Future for CatchUnwind<'_, F> {
    type Output = Result<F::Output, ()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(Err(())),
        }
    }
}

tokio::task_local! {
    /// How long the handlers of the delivery in hand waited for the
    /// workers' rate limit so far (set by the workers around a delivery):
    /// taken off the handler's recorded time.
    pub(crate) static RATE_WAITED: std::cell::Cell<std::time::Duration>;
}

/// How long this task's handlers waited for the rate limit so far.
#[cfg(feature = "metrics")]
fn rate_waited() -> std::time::Duration {
    RATE_WAITED
        .try_with(std::cell::Cell::get)
        .unwrap_or_default()
}

/// Runs the handler on the event in `event` (taken from it when the
/// handler is called); the failure if it fails or
/// panics, in its future or in the closure that makes the future. With the
/// `metrics` feature, how long it ran goes to the delivery's `tally`
/// (which records the longest per event name).
pub(super) async fn run<F, Fut>(
    handler: &mut F,
    event: &mut Option<Event>,
    tally: &mut Tally,
) -> Option<EventFailure>
where
    F: FnMut(Event) -> Fut,
    Fut: Future<Output = Result<(), BoxError>>,
{
    #[cfg(feature = "metrics")]
    let (label, started, waited) = (
        event
            .as_ref()
            .map_or("unknown", |e| crate::metrics::event_label(&e.event_name)),
        std::time::Instant::now(),
        rate_waited(),
    );
    let failure = run_caught(handler, event).await;
    #[cfg(feature = "metrics")]
    {
        // Not the time it waited for the rate limit: that has its own histogram.
        let rate_limited = rate_waited().saturating_sub(waited);
        tally.handler(label, started.elapsed().saturating_sub(rate_limited));
    }
    #[cfg(not(feature = "metrics"))]
    let _ = tally;
    failure
}

/// [`run`] without the timing. The event is taken from its slot when the
/// handler is called, so that it is moved once, into the handler, and no
/// future on the way holds a copy of it.
async fn run_caught<F, Fut>(handler: &mut F, event: &mut Option<Event>) -> Option<EventFailure>
where
    F: FnMut(Event) -> Fut,
    Fut: Future<Output = Result<(), BoxError>>,
{
    let event = event.take().expect("an event for each handler run");
    let Ok(future) = catch_unwind(AssertUnwindSafe(|| handler(event))) else {
        return Some(EventFailure::panicked());
    };
    let future = std::pin::pin!(future);
    match CatchUnwind::new(future).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(EventFailure::from_handler(e)),
        Err(()) => Some(EventFailure::panicked()),
    }
}
