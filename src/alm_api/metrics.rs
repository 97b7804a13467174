//! The API client's metrics (feature `metrics`); no-ops without it.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `alm_webhooks_api_requests_total` | counter | `endpoint`, `outcome` |
//! | `alm_webhooks_api_budget_used_total` | counter | `endpoint` |
//! | `alm_webhooks_api_budget_waits_total` | counter | `endpoint` |
//! | `alm_webhooks_api_budget_wait_seconds_total` | counter | `endpoint` |
//! | `alm_webhooks_api_budget_refused_total` | counter | `endpoint` |
//! | `alm_webhooks_api_budget_per_hour` | gauge | |
//! | `alm_webhooks_api_cache_total` | counter | `result`: `hit`, `miss` |
//! | `alm_webhooks_api_token_refreshes_total` | counter | `outcome` |
//!
//! `endpoint` is one of `users`, `learningObjects`, `enrollments`, `jobs`,
//! `token`; `outcome` one of `ok`, `not_found`, `rate_limited`,
//! `unauthorized`, `error`. No id is ever a label.

#![cfg_attr(not(feature = "metrics"), allow(unused_variables))]

use std::time::Duration;

/// The metric names, as exported.
pub mod names {
    /// Requests sent, by endpoint family and outcome.
    pub const REQUESTS_TOTAL: &str = "alm_webhooks_api_requests_total";
    /// Requests the budget let through.
    pub const BUDGET_USED_TOTAL: &str = "alm_webhooks_api_budget_used_total";
    /// Lookups that waited for room in the budget.
    pub const BUDGET_WAITS_TOTAL: &str = "alm_webhooks_api_budget_waits_total";
    /// Time spent waiting for room.
    pub const BUDGET_WAIT_SECONDS_TOTAL: &str = "alm_webhooks_api_budget_wait_seconds_total";
    /// Lookups refused for want of room.
    pub const BUDGET_REFUSED_TOTAL: &str = "alm_webhooks_api_budget_refused_total";
    /// The configured budget, scaled to an hour.
    pub const BUDGET_PER_HOUR: &str = "alm_webhooks_api_budget_per_hour";
    /// Lookups answered from the cache (`hit`) or not (`miss`).
    pub const CACHE_TOTAL: &str = "alm_webhooks_api_cache_total";
    /// Access-token renewals.
    pub const TOKEN_REFRESHES_TOTAL: &str = "alm_webhooks_api_token_refreshes_total";

    /// Every name above.
    pub const ALL: &[&str] = &[
        REQUESTS_TOTAL,
        BUDGET_USED_TOTAL,
        BUDGET_WAITS_TOTAL,
        BUDGET_WAIT_SECONDS_TOTAL,
        BUDGET_REFUSED_TOTAL,
        BUDGET_PER_HOUR,
        CACHE_TOTAL,
        TOKEN_REFRESHES_TOTAL,
    ];
}

pub(crate) fn request(endpoint: &'static str, outcome: &'static str) {
    #[cfg(feature = "metrics")]
    ::metrics::counter!(names::REQUESTS_TOTAL, "endpoint" => endpoint, "outcome" => outcome)
        .increment(1);
}

pub(crate) fn budget_used(endpoint: &'static str) {
    #[cfg(feature = "metrics")]
    ::metrics::counter!(names::BUDGET_USED_TOTAL, "endpoint" => endpoint).increment(1);
}

pub(crate) fn budget_wait(endpoint: &'static str, wait: Duration) {
    #[cfg(feature = "metrics")]
    {
        ::metrics::counter!(names::BUDGET_WAITS_TOTAL, "endpoint" => endpoint).increment(1);
        ::metrics::counter!(names::BUDGET_WAIT_SECONDS_TOTAL, "endpoint" => endpoint)
            .increment(wait.as_secs());
    }
}

pub(crate) fn budget_refused(endpoint: &'static str) {
    #[cfg(feature = "metrics")]
    ::metrics::counter!(names::BUDGET_REFUSED_TOTAL, "endpoint" => endpoint).increment(1);
}

pub(crate) fn budget_per_hour(requests: u32, window: Duration) {
    #[cfg(feature = "metrics")]
    ::metrics::gauge!(names::BUDGET_PER_HOUR)
        .set(f64::from(requests) * 3600.0 / window.as_secs_f64().max(1e-9));
}

pub(crate) fn cache(hit: bool) {
    #[cfg(feature = "metrics")]
    ::metrics::counter!(names::CACHE_TOTAL, "result" => if hit { "hit" } else { "miss" })
        .increment(1);
}

pub(crate) fn token_refresh(outcome: &'static str) {
    #[cfg(feature = "metrics")]
    ::metrics::counter!(names::TOKEN_REFRESHES_TOTAL, "outcome" => outcome).increment(1);
}
