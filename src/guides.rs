//! Guides: short chapters on using the crate well, beyond the API reference.
//! Their Rust examples are compiled and run as doctests.
//!
//! - [`handlers`]: writing handlers: fast, idempotent, what runs where
//!   (inline or inbox mode), retries, dead letters, what a handler error does.
//! - [`choosing`]: choosing a mode (inline or inbox) and a store (memory,
//!   SQLite, PostgreSQL, Redis), and running replicas.
//! - [`production`]: running it in production: authentication, the body
//!   limit, TLS, health, metrics and admin endpoints, alerts, retention,
//!   backups.

#[doc = include_str!("../docs/handlers.md")]
pub mod handlers {}

#[doc = include_str!("../docs/choosing.md")]
pub mod choosing {}

#[doc = include_str!("../docs/production.md")]
pub mod production {}
