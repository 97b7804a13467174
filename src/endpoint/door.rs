//! The engine and the inbox behind an [`Endpoint`](super::Endpoint),
//! without their types: the endpoint is one type whatever the store and the
//! inbox.

use std::sync::Arc;

use super::handler::Handler;
use crate::inbox::{
    DeliveryId, Inbox, InboxError, InboxStats, NewDelivery, NewQuarantined, QuarantineId,
};
use crate::store::BoxFuture;
use crate::store::{Store, StoreError};
use crate::{DeliveryReport, Engine, Envelope};

/// What the endpoint asks of its engine and inbox.
pub(super) trait Door: Send + Sync {
    /// Decides `envelope`'s events inline.
    fn process(
        &self,
        envelope: Envelope,
        handler: Handler,
    ) -> BoxFuture<'_, Result<DeliveryReport, StoreError>>;

    /// Appends a delivery to the inbox (there is one in inbox mode).
    fn append<'a>(
        &'a self,
        delivery: NewDelivery<'a>,
    ) -> Option<BoxFuture<'a, Result<DeliveryId, InboxError>>>;

    /// Keeps a malformed body in the inbox's quarantine, when there is an
    /// inbox.
    fn quarantine<'a>(
        &'a self,
        body: NewQuarantined<'a>,
    ) -> Option<BoxFuture<'a, Result<QuarantineId, InboxError>>>;

    /// What the inbox holds, when there is one.
    fn stats(
        &self,
        now: time::OffsetDateTime,
    ) -> Option<BoxFuture<'_, Result<InboxStats, InboxError>>>;
}

/// The engine and, when configured, the inbox.
pub(super) struct Parts<S: Store, I: Inbox> {
    pub(super) engine: Engine<S>,
    pub(super) inbox: Option<Arc<I>>,
}

impl<S: Store, I: Inbox> Door for Parts<S, I> {
    fn process(
        &self,
        envelope: Envelope,
        handler: Handler,
    ) -> BoxFuture<'_, Result<DeliveryReport, StoreError>> {
        Box::pin(self.engine.process(envelope, move |event| handler(event)))
    }

    fn append<'a>(
        &'a self,
        delivery: NewDelivery<'a>,
    ) -> Option<BoxFuture<'a, Result<DeliveryId, InboxError>>> {
        let inbox = self.inbox.as_ref()?;
        Some(Box::pin(inbox.append(delivery)))
    }

    fn quarantine<'a>(
        &'a self,
        body: NewQuarantined<'a>,
    ) -> Option<BoxFuture<'a, Result<QuarantineId, InboxError>>> {
        let inbox = self.inbox.as_ref()?;
        Some(Box::pin(inbox.quarantine(body)))
    }

    fn stats(
        &self,
        now: time::OffsetDateTime,
    ) -> Option<BoxFuture<'_, Result<InboxStats, InboxError>>> {
        let inbox = self.inbox.as_ref()?;
        Some(Box::pin(inbox.stats(now)))
    }
}
