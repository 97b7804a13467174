//! Traces (feature `tracing`): one span per delivery (`alm.delivery`) and
//! one per event (`alm.event`, a child of its delivery's), with
//! OpenTelemetry's messaging attribute names, so that a
//! `tracing-opentelemetry` user gets useful traces with no glue:
//!
//! | field | value |
//! |---|---|
//! | `otel.kind` | `consumer` |
//! | `messaging.system` | `alm` |
//! | `messaging.operation`, `messaging.operation.name` | `process` |
//! | `messaging.operation.type` | `process` |
//! | `messaging.destination.name` | the account id (ALM sends each account's events to its webhook) |
//! | `messaging.batch.message_count` | the delivery's event count (delivery span) |
//! | `messaging.message.id` | the `eventId` (event span) |
//! | `alm.event.name` | the `eventName` (event span) |
//! | `alm.decision` | the decision, once final (event span) |
//!
//! An event's span covers its decision (its handler included when the
//! handler runs then) and closes when the decision is final. Without the
//! feature, these are no-ops.

use std::future::Future;

use crate::Decision;
use crate::{AccountId, EventId, EventName};

/// The open event spans of one delivery, by the event's index.
#[derive(Default)]
pub(super) struct EventSpans {
    #[cfg(feature = "tracing")]
    open: Vec<Option<tracing::Span>>,
}

/// A span with the attributes every span of ours has, then `$field`s.
#[cfg(feature = "tracing")]
macro_rules! messaging_span {
    ($name:literal, $account_id:expr, $($field:tt)*) => {
        tracing::info_span!(
            $name,
            "otel.kind" = "consumer",
            "messaging.system" = "alm",
            "messaging.operation" = "process",
            "messaging.operation.name" = "process",
            "messaging.operation.type" = "process",
            // Displayed (a text attribute, as OpenTelemetry wants it),
            // without a `String` of its own per span.
            "messaging.destination.name" = tracing::field::display($account_id.get()),
            $($field)*
        )
    };
}

/// `future` inside the delivery's span.
pub(super) fn in_delivery<F: Future>(
    account_id: AccountId,
    events: usize,
    future: F,
) -> impl Future<Output = F::Output> {
    #[cfg(feature = "tracing")]
    {
        use tracing::Instrument;
        let span = messaging_span!(
            "alm.delivery",
            account_id,
            "messaging.batch.message_count" = events,
        );
        future.instrument(span)
    }
    #[cfg(not(feature = "tracing"))]
    {
        let _ = (account_id, events);
        future
    }
}

impl EventSpans {
    /// Forgets every span (a finished delivery's), keeping the buffer.
    pub(super) fn clear(&mut self) {
        #[cfg(feature = "tracing")]
        self.open.clear();
    }

    /// The buffer's capacity, in spans.
    pub(super) fn capacity(&self) -> usize {
        #[cfg(feature = "tracing")]
        return self.open.capacity();
        #[cfg(not(feature = "tracing"))]
        0
    }

    /// Opens the span of the event at `index`.
    pub(super) fn open(
        &mut self,
        index: usize,
        account_id: AccountId,
        event_id: Option<&EventId>,
        event_name: Option<&EventName>,
    ) {
        #[cfg(feature = "tracing")]
        {
            let span = messaging_span!(
                "alm.event",
                account_id,
                "messaging.message.id" = event_id.map(EventId::as_str),
                "alm.event.name" = event_name.map(EventName::as_str),
                "alm.decision" = tracing::field::Empty,
            );
            if self.open.len() <= index {
                self.open.resize(index + 1, None);
            }
            self.open[index] = Some(span);
        }
        #[cfg(not(feature = "tracing"))]
        let _ = (index, account_id, event_id, event_name);
    }

    /// `future` inside the span of the event at `index`.
    pub(super) fn within<F: Future>(
        &self,
        index: usize,
        future: F,
    ) -> impl Future<Output = F::Output> {
        #[cfg(feature = "tracing")]
        {
            use tracing::Instrument;
            let span = self
                .open
                .get(index)
                .and_then(Option::as_ref)
                .cloned()
                .unwrap_or_else(tracing::Span::none);
            future.instrument(span)
        }
        #[cfg(not(feature = "tracing"))]
        {
            let _ = index;
            future
        }
    }

    /// Records the final decision of the event at `index` and closes its
    /// span.
    pub(super) fn decided(&mut self, index: usize, event_id: Option<&EventId>, decision: Decision) {
        #[cfg(feature = "tracing")]
        if let Some(span) = self.open.get_mut(index).and_then(Option::take) {
            if let Some(id) = event_id {
                span.record("messaging.message.id", id.as_str());
            }
            span.record("alm.decision", decision.as_str());
        }
        #[cfg(not(feature = "tracing"))]
        let _ = (index, event_id, decision);
    }
}
