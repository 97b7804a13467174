//! Keeping a chunk's claims while its handlers run: every third of the
//! lease, the claims still held are renewed ([`Store::renew_many`]: one
//! round trip per chunk on the shared stores), before a handler and while
//! a slow one runs, so that no claim expires under a handler however long
//! the chunk's handlers take together. A renewal under way when a handler
//! finishes is finished before the next handler starts, never started
//! again from scratch.

use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;

use tokio::time::Instant;

use super::Engine;
use super::batch::{Item, Pending};
use super::catch::run;
use super::counters::counted;
use super::failure::EventFailure;
use super::tally::Tally;
use crate::BoxError;
use crate::Event;
use crate::store::{ClaimOwner, DedupKey, Store};

/// The claims a delivery holds while a handler runs: the decisions waiting
/// for their commit, the event being decided, and the chunk's events not
/// decided yet.
pub(super) struct Held<'a> {
    pub(super) pending: &'a [Pending],
    pub(super) current: (&'a DedupKey, ClaimOwner),
    pub(super) rest: &'a [Option<Item>],
}

impl<S: Store> Engine<S> {
    /// Runs the handler on the event in `event` (taken from it when the
    /// handler is called), renewing the `held` claims every third
    /// of the lease since `renewed` (when they were taken or last renewed)
    /// for as long as it runs. The handler's failure message, as [`run`]
    /// (which notes its time in `tally`).
    pub(super) async fn run_holding<F, Fut>(
        &self,
        handler: &mut F,
        event: &mut Option<Event>,
        held: &Held<'_>,
        renewed: &mut Instant,
        tally: &mut Tally,
    ) -> Option<EventFailure>
    where
        F: FnMut(Event) -> Fut,
        Fut: Future<Output = Result<(), BoxError>>,
    {
        if Instant::now() >= *renewed + self.renew_every() {
            // Rare (a chunk whose handlers took a third of the lease): out
            // of this future, which every event's decision carries.
            Box::pin(self.renew_held(held, renewed)).await;
        }
        let renewing = AtomicBool::new(false);
        let mut handled = pin!(run(handler, event, tally));
        // The handler first: one that finishes at once arms no timer and
        // builds no keep-alive (its future is boxed, and made only for a
        // handler that waits, so that a decision's future stays small).
        let mut renewed = Some(renewed);
        let mut keep: Option<Pin<Box<dyn Future<Output = Infallible> + Send + '_>>> = None;
        let failure = poll_fn(|cx| match handled.as_mut().poll(cx) {
            Poll::Ready(failure) => Poll::Ready(failure),
            Poll::Pending => {
                let keep = keep.get_or_insert_with(|| {
                    let renewed = renewed.take().expect("taken once, with the keep-alive");
                    Box::pin(self.keep_alive(held, renewed, &renewing))
                });
                match keep.as_mut().poll(cx) {
                    Poll::Ready(never) => match never {},
                    Poll::Pending => Poll::Pending,
                }
            }
        })
        .await;
        // A renewal under way is finished, not dropped: the next handler
        // would otherwise start it again from scratch, and under handlers
        // shorter than a renewal the claims would never be renewed. (None
        // is under way if the handler finished at its first poll.)
        if let Some(keep) = keep.as_mut() {
            poll_fn(|cx| match keep.as_mut().poll(cx) {
                Poll::Ready(never) => match never {},
                Poll::Pending if renewing.load(Ordering::Relaxed) => Poll::Pending,
                Poll::Pending => Poll::Ready(()),
            })
            .await;
        }
        failure
    }

    /// How often held claims are renewed: a third of the lease, so that a
    /// renewal that meets a slow store still lands in time.
    fn renew_every(&self) -> std::time::Duration {
        self.inner.lease / 3
    }

    /// Renews the held claims every third of the lease, for ever;
    /// `renewing` is set while a renewal is under way.
    async fn keep_alive(
        &self,
        held: &Held<'_>,
        renewed: &mut Instant,
        renewing: &AtomicBool,
    ) -> Infallible {
        loop {
            tokio::time::sleep_until(*renewed + self.renew_every()).await;
            renewing.store(true, Ordering::Relaxed);
            self.renew_held(held, renewed).await;
            renewing.store(false, Ordering::Relaxed);
        }
    }

    /// Renews every held claim now. A claim found lost is left to its
    /// commit ([`CommitOutcome::LeaseLost`](crate::store::CommitOutcome)
    /// claims it again); a store error too (the next renewal, or the
    /// commit, meets the store again).
    async fn renew_held(&self, held: &Held<'_>, renewed: &mut Instant) {
        let claims: Vec<(&DedupKey, ClaimOwner)> = held
            .pending
            .iter()
            .map(|p| (&p.key, p.token))
            .chain(std::iter::once(held.current))
            .chain(held.rest.iter().flatten().filter_map(Item::held))
            .collect();
        let inner = &*self.inner;
        let renewal = inner
            .store
            .renew_many(&claims, inner.lease, inner.clock.now().into())
            .await;
        if let Err(_error) = counted("renew", renewal) {
            #[cfg(feature = "tracing")]
            tracing::warn!(error = %_error, claims = claims.len(), "claims not renewed");
        }
        *renewed = Instant::now();
    }
}
