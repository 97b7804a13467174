//! Catching a handler's panic, so one bad event does not take the
//! process (or the other events of a delivery) down.

use std::fmt::Display;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::Event;

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

/// Runs the handler on one event; the failure message if it fails or
/// panics, in its future or in the closure that makes the future. With the
/// `metrics` feature, how long it ran is recorded per event name.
pub(super) async fn run<F, Fut, E>(handler: &mut F, event: Event) -> Option<String>
where
    F: FnMut(Event) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    #[cfg(feature = "metrics")]
    let (name, started) = (event.event_name.clone(), std::time::Instant::now());
    let failure = run_caught(handler, event).await;
    #[cfg(feature = "metrics")]
    crate::metrics::record_handler(&name, started.elapsed());
    failure
}

/// [`run`] without the timing.
async fn run_caught<F, Fut, E>(handler: &mut F, event: Event) -> Option<String>
where
    F: FnMut(Event) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    const PANICKED: &str = "the handler panicked";
    let Ok(future) = catch_unwind(AssertUnwindSafe(|| handler(event))) else {
        return Some(PANICKED.to_owned());
    };
    let future = std::pin::pin!(future);
    match CatchUnwind::new(future).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(()) => Some(PANICKED.to_owned()),
    }
}
