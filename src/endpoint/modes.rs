//! Where an [`Endpoint`](super::Endpoint) runs the handler, and what it does with a
//! malformed body.

use std::time::Duration;

/// Where an [`Endpoint`](super::Endpoint) runs the handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mode {
    /// Append each delivery to the inbox and answer `202` at once; workers
    /// run the handler behind (ALM's 5 s do not constrain the handler).
    Inbox,
    /// Run the handler inside the request, and answer with the decisions'
    /// status: the delivery's handlers share a budget inside ALM's 5 s
    /// ([`EndpointBuilder::inline_budget`](super::EndpointBuilder::inline_budget)(super::EndpointBuilder::inline_budget),
    /// 4 s by default); a handler still running past it fails its event
    /// (`500`, and ALM sends the delivery again).
    Inline,
}

/// What an [`Endpoint`](super::Endpoint) does with a body that passed authentication but is
/// not an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OnMalformed {
    /// Keep it in the inbox's quarantine (exact bytes, error, time) and
    /// answer `202`, so the account's later deliveries are not held back.
    Quarantine,
    /// Answer `400`: ALM retries it for 7 days, holding the account back.
    Refuse,
}

/// How long the handlers of one delivery may run in inline mode, by
/// default ([`EndpointBuilder::inline_budget`](super::EndpointBuilder::inline_budget)): well inside the 5 s after
/// which ALM hangs up, leaving time for the store's two round trips.
///
/// ```
/// assert_eq!(alm_webhooks::endpoint::DEFAULT_INLINE_BUDGET.as_secs(), 4);
/// ```
pub const DEFAULT_INLINE_BUDGET: Duration = Duration::from_secs(4);

/// The path of the webhook route in [`Endpoint::router`](super::Endpoint::router)
/// and [`Endpoint::actix_scope`](super::Endpoint::actix_scope), unless
/// [`EndpointBuilder::webhook_path`](super::EndpointBuilder::webhook_path)
/// says otherwise: `/webhooks`.
///
/// ```
/// assert_eq!(alm_webhooks::endpoint::DEFAULT_WEBHOOK_PATH, "/webhooks");
/// ```
pub const DEFAULT_WEBHOOK_PATH: &str = "/webhooks";
