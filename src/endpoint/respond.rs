//! What the front door does with one request once it was read: refuse,
//! acknowledge a replay, decide inline, append to the inbox or quarantine.

use std::time::Instant;

use http::HeaderMap;
use time::OffsetDateTime;

use super::{Answer, Endpoint, Mode, OnMalformed, account, handler};
use crate::inbox::{InboxError, NewDelivery, NewQuarantined};
use crate::{AccountId, DeliveryRejection, Envelope};

/// A delivery past the front door's checks: parsed (inline mode), or
/// only its envelope's account known (inbox mode).
enum Checked {
    Parsed(Envelope),
    Account(AccountId),
}

impl Checked {
    fn account_id(&self) -> AccountId {
        match self {
            Self::Parsed(envelope) => envelope.account_id,
            Self::Account(account_id) => *account_id,
        }
    }
}

impl Endpoint {
    pub(super) async fn answer(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        started: Instant,
    ) -> Answer {
        let now = OffsetDateTime::now_utc();
        let receiver = &self.inner.receiver;
        // In inbox mode the events are typed once, by the worker: the
        // `202` needs only the checks and the envelope's account.
        let checked = match self.inner.mode {
            Mode::Inline => receiver.receive_at(headers, body, now).map(Checked::Parsed),
            Mode::Inbox => receiver.verify_at(headers, body, now).map(Checked::Account),
        };
        let received = match checked {
            Ok(checked) => Ok(checked),
            Err(DeliveryRejection::BadRequest(e))
                if self.inner.on_malformed == OnMalformed::Quarantine =>
            {
                Err(e)
            }
            Err(rejection) => return Answer::Refused(rejection),
        };
        // Authenticated: a replay within the tolerance is acknowledged
        // and not kept again.
        let replay = receiver.authentication().replay_key(headers, body);
        if let Some(key) = &replay {
            if !self.inner.replays.first_time(key, Instant::now()) {
                let account_id = match &received {
                    Ok(checked) => Some(checked.account_id()),
                    Err(_) => account::account_of(body),
                };
                return Answer::Replayed { account_id };
            }
        }
        let answer = match received {
            Ok(Checked::Parsed(envelope)) => self.process(envelope, started).await,
            Ok(Checked::Account(account_id)) => self.append(account_id, body, now).await,
            Err(e) => self.quarantine(body, e.to_string(), now).await,
        };
        if let Some(key) = replay.filter(|_| !answer.is_acknowledged()) {
            self.inner.replays.forget(&key); // its redelivery must be kept
        }
        answer
    }

    /// Decides the delivery inline, its handlers within the budget counted
    /// from when the request came in.
    async fn process(&self, envelope: Envelope, started: Instant) -> Answer {
        let account_id = envelope.account_id;
        let started = tokio::time::Instant::from_std(started);
        let handler =
            handler::within_budget(&self.inner.handler, self.inner.inline_budget, started);
        match self.inner.door.process(envelope, handler).await {
            Ok(report) => Answer::Processed { account_id, report },
            Err(e) => {
                #[cfg(feature = "tracing")]
                tracing::warn!(error = %e, "store unavailable: answering 503");
                Answer::StoreUnavailable(e)
            }
        }
    }

    async fn append(&self, account_id: AccountId, body: &[u8], now: OffsetDateTime) -> Answer {
        let delivery = NewDelivery {
            account_id,
            body,
            received_at: now,
        };
        let full = self.inner.kept.full(&*self.inner.door, Some(account_id));
        if let Some(full) = full.await {
            return Answer::InboxUnavailable(full);
        }
        // `build` refuses `Mode::Inbox` without an inbox.
        let Some(appended) = self.inner.door.append(delivery) else {
            return Answer::InboxUnavailable(InboxError::new("no inbox configured"));
        };
        match self.bounded(appended).await {
            Ok(delivery) => {
                self.wake();
                Answer::Accepted {
                    account_id,
                    delivery,
                }
            }
            Err(e) => {
                #[cfg(feature = "tracing")]
                tracing::warn!(error = %e, "inbox unavailable: answering 503");
                Answer::InboxUnavailable(e)
            }
        }
    }

    /// `call` to the inbox, failing once the append timeout is over.
    async fn bounded<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, InboxError>>,
    ) -> Result<T, InboxError> {
        let limit = self.inner.append_timeout;
        tokio::time::timeout(limit, call).await.unwrap_or_else(|_| {
            Err(InboxError::new(format!(
                "the inbox did not keep the delivery within {limit:?}"
            )))
        })
    }

    async fn quarantine(&self, body: &[u8], error: String, now: OffsetDateTime) -> Answer {
        let account_id = account::account_of(body);
        let kept = NewQuarantined {
            account_id,
            body,
            error: &error,
            received_at: now,
        };
        if let Some(full) = self.inner.kept.full(&*self.inner.door, account_id).await {
            return Answer::InboxUnavailable(full);
        }
        // `build` refuses `OnMalformed::Quarantine` without an inbox.
        let Some(kept) = self.inner.door.quarantine(kept) else {
            return Answer::InboxUnavailable(InboxError::new("no inbox configured"));
        };
        match self.bounded(kept).await {
            Ok(id) => Answer::Quarantined {
                account_id,
                id,
                error,
            },
            Err(e) => {
                #[cfg(feature = "tracing")]
                tracing::warn!(error = %e, "inbox unavailable: answering 503");
                Answer::InboxUnavailable(e)
            }
        }
    }
}
