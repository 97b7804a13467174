//! Guides: short chapters on using the crate well, beyond the API reference.
//! Their Rust examples are compiled and run as doctests.
//!
//! - [`choosing`]: choosing a mode (inline or inbox) and a store (memory,
//!   SQLite, PostgreSQL, Redis), and running replicas.
//! - [`inbox`]: the inbox: acknowledging in one write, and how each failure
//!   is handled.
//! - [`inline`]: inline mode: deciding inside the request, with any
//!   framework.
//! - [`handlers`]: writing handlers: fast, idempotent, what runs where,
//!   retries, dead letters, what a handler error does.
//! - [`learner_table`]: the learner table, kept in the same transaction as
//!   the decisions.
//! - [`forwarding`]: forwarding processed events to NATS JetStream or
//!   RabbitMQ through a transactional outbox.
//! - [`signatures`]: finding ALM's unpublished signature scheme from one
//!   captured delivery.
//! - [`operations`]: health, metrics, traces, alerts and the admin page.
//! - [`production`]: running it in production: authentication, the body
//!   limit, TLS, health, metrics and admin endpoints, alerts, retention,
//!   backups.
//! - [`environment`]: every `ALM_*` variable of the example receivers.
//! - [`alm_api`]: ALM's API within its rate limit, and reconciliation.
//! - [`overview`]: what the crate does, part by part.

#[doc = include_str!("../docs/choosing.md")]
pub mod choosing {}

#[doc = include_str!("../docs/inbox.md")]
pub mod inbox {}

#[doc = include_str!("../docs/inline.md")]
pub mod inline {}

#[doc = include_str!("../docs/handlers.md")]
pub mod handlers {}

#[doc = include_str!("../docs/learner-table.md")]
pub mod learner_table {}

#[doc = include_str!("../docs/forwarding.md")]
pub mod forwarding {}

#[doc = include_str!("../docs/signatures.md")]
pub mod signatures {}

#[doc = include_str!("../docs/operations.md")]
pub mod operations {}

#[doc = include_str!("../docs/production.md")]
pub mod production {}

#[doc = include_str!("../docs/environment.md")]
pub mod environment {}

#[doc = include_str!("../docs/alm-api.md")]
pub mod alm_api {}

#[doc = include_str!("../docs/overview.md")]
pub mod overview {}
