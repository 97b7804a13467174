//! A client for ALM's admin API (feature `alm-api`): the few calls a
//! webhook receiver needs, within a budget.
//!
//! Webhook events carry ids only. Names, e-mails and course titles come
//! from the API, which allows 500 requests an hour for `GET /users` and
//! `GET /learningObjects` and answers `429` with `Retry-After` beyond that.
//! [`AlmApi`] is one account's client:
//!
//! - **calls**: [`user`](AlmApi::user), [`learning_object`](AlmApi::learning_object),
//!   [`lo_instance`](AlmApi::lo_instance), [`enrollments`](AlmApi::enrollments),
//!   and report jobs ([`create_report_job`](AlmApi::create_report_job),
//!   [`job`](AlmApi::job), [`download_report`](AlmApi::download_report),
//!   [`run_report`](AlmApi::run_report)), on `/primeapi/v2/` with JSON:API
//!   documents ([`model`](self#types) cites the pages each shape comes from);
//! - **OAuth**: the refresh-token flow; the access token is renewed
//!   [`refresh_margin`](ApiConfig::refresh_margin) before it expires, once
//!   for all concurrent callers;
//! - **budget**: one token bucket per client (per account), by default
//!   [`DEFAULT_BUDGET_PER_HOUR`] (10 % of ALM's limit), sized so that no
//!   hour holds more; ALM's `Retry-After` holds every request back; a
//!   lookup over budget waits or fails, as the caller chooses
//!   ([`WhenOverBudget`]);
//! - **cache**: answers kept for a TTL, at most a number of them;
//!   concurrent lookups of one id share one request;
//! - **enrichment**: [`Event::user`](crate::Event::user),
//!   [`Event::learning_object`](crate::Event::learning_object),
//!   [`Event::lo_instance`](crate::Event::lo_instance);
//! - **secrets** (client secret, refresh token, access token) live in
//!   [`secrecy::SecretString`]s: never in `Debug`, an error or a log; the
//!   `Authorization` header is marked sensitive.
//!
//! The metrics (feature `metrics`) are listed in [`metrics`].
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use alm_webhooks::alm_api::{AlmApi, ApiConfig, WhenOverBudget};
//! use alm_webhooks::LoId;
//!
//! let config = ApiConfig::new("https://learningmanager.adobe.com", "client-id", "secret", "refresh")
//!     .with_budget(50, Duration::from_secs(3600));
//! let api = AlmApi::new(config)?;
//! let course: LoId = "course:1234567".parse()?;
//! let lo = api.learning_object(&course, WhenOverBudget::Fail).await?;
//! println!("{:?}", lo.name);
//! # Ok(()) }
//! ```
//!
//! # Types
//!
//! [`User`], [`LearningObject`], [`LoInstance`], [`Enrollment`] and [`Job`]
//! keep the attributes this crate reads as fields and every attribute as
//! sent.

mod budget;
mod client;
mod config;
mod enrich;
mod error;
mod jobs;
pub mod metrics;
mod model;
pub mod reconcile;
mod token;

pub use budget::WhenOverBudget;
pub use client::AlmApi;
pub use config::{ALM_REQUESTS_PER_HOUR, ApiConfig, DEFAULT_BASE, DEFAULT_BUDGET_PER_HOUR};
pub use error::ApiError;
pub use jobs::{Job, JobStatus, ReportKind};
pub use model::{Enrollment, LearningObject, LoInstance, User};
