//! The front door's bounds from the environment (the library's defaults
//! when unset); the axum receiver puts the library's `Guard` on `POST
//! /webhooks` and serves with its read timeout; the actix receiver wraps
//! the route in the same guard's middleware and gives its read timeout and
//! connection cap to actix-web's server.
//!
//! - `ALM_READ_TIMEOUT_MS`: headers, then the body, within this (default
//!   10 s)
//! - `ALM_MAX_CONCURRENT_REQUESTS`: requests in progress before `503`
//!   (default 256)
//! - `ALM_MAX_BUFFERED_BYTES`: body bytes held at once, all requests
//!   together, before `503` (default 32 MiB)
//! - `ALM_REFUSAL_SUMMARY_MS`: refused requests are summarised on stderr
//!   once per this interval (default 60 s), never one line each
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use super::var;

/// The bounds set in the environment; `None` keeps the library's default.
#[derive(Debug, Default, Clone)]
pub struct GuardConfig {
    pub read_timeout: Option<Duration>,
    pub max_requests: Option<usize>,
    pub max_buffered_bytes: Option<usize>,
    pub summary_every: Option<Duration>,
}

fn positive(name: &str) -> Result<Option<u64>, String> {
    var(name)
        .map(|v| {
            v.parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{name}={v:?} is not a positive number"))
        })
        .transpose()
}

impl GuardConfig {
    /// Reads the variables above; a bad value is an error naming it.
    pub fn from_env() -> Result<Self, String> {
        let size = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        Ok(Self {
            read_timeout: positive("ALM_READ_TIMEOUT_MS")?.map(Duration::from_millis),
            max_requests: positive("ALM_MAX_CONCURRENT_REQUESTS")?.map(size),
            max_buffered_bytes: positive("ALM_MAX_BUFFERED_BYTES")?.map(size),
            summary_every: positive("ALM_REFUSAL_SUMMARY_MS")?.map(Duration::from_millis),
        })
    }

    /// The library's guard for `receiver`, with these bounds; refusals
    /// are summarised on stderr.
    #[cfg(any(feature = "axum", feature = "actix"))]
    pub fn guard(
        &self,
        receiver: &alm_webhooks::DeliveryReceiver,
    ) -> alm_webhooks::endpoint::Guard {
        let mut guard = alm_webhooks::endpoint::Guard::new(receiver)
            .with_summary(|summary| eprintln!("{summary}"));
        if let Some(timeout) = self.read_timeout {
            guard = guard.with_read_timeout(timeout);
        }
        if let Some(requests) = self.max_requests {
            guard = guard.with_max_concurrent_requests(requests);
        }
        if let Some(bytes) = self.max_buffered_bytes {
            guard = guard.with_max_buffered_bytes(bytes);
        }
        if let Some(every) = self.summary_every {
            guard = guard.with_summary_every(every);
        }
        guard
    }
}
