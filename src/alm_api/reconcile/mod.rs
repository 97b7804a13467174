//! Reconciliation: compare the learner table this crate keeps with ALM's
//! view, and report each difference.
//!
//! The table is reached through [`LearnerTable`], a small read-only trait:
//! the learner projection ([`crate::projection`]) implements it on every
//! store that keeps it (`MemoryStore`, `SqliteStore`, `PostgresStore`,
//! and an `Arc` of one, shared with the engine that writes it); an
//! application can implement it over a table of its own. Repairs never write
//! the table: they are synthetic events for the engine
//! ([`Reconciliation::repair_envelope`]), so the rules apply to them as to
//! any event and a newer webhook event still wins.

mod diff;
mod run;
mod runs;
mod tables;

pub use diff::{
    Difference, DifferenceKind, LearnerRecord, LearnerStatus, LearnerTable, compare,
    parse_transcript_csv,
};
pub use run::{
    ORIGIN_FIELD, ORIGIN_RECONCILIATION, ReconcileError, ReconcileMode, Reconciler, Reconciliation,
};
pub use runs::{ReconcileRuns, RunState, RunStatus};
