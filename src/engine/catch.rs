//! Catching a handler's panic, so one bad event does not take the
//! process (or the other events of a delivery) down.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

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
