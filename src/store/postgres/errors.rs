//! How the store's errors are told apart: transient or permanent, and a
//! lost race (tried again).

use crate::store::{StoreError, StoreErrorKind};

/// How many times in all a call that lost a race (`40001`, `40P01`) runs.
pub(super) const ATTEMPTS: usize = 3;

/// Whether the error is a serialization failure or a deadlock: the
/// transaction was rolled back, and running it again can succeed.
pub(super) fn lost_a_race(e: &StoreError) -> bool {
    use tokio_postgres::error::SqlState;
    let mut cause = std::error::Error::source(e);
    while let Some(error) = cause {
        if let Some(code) = error
            .downcast_ref::<tokio_postgres::Error>()
            .and_then(tokio_postgres::Error::code)
        {
            return *code == SqlState::T_R_SERIALIZATION_FAILURE
                || *code == SqlState::T_R_DEADLOCK_DETECTED;
        }
        cause = error.source();
    }
    false
}

pub(super) fn pg_error(
    what: &str,
    error: impl std::error::Error + Send + Sync + 'static,
) -> StoreError {
    let kind = kind_of(&error);
    StoreError::with_source(format!("postgres: {what}"), error).with_kind(kind)
}

/// Whether an error (or one of its causes) is about the data itself: a
/// SQLSTATE of class 22 (data exception, e.g. a NUL byte in text), 23
/// (integrity constraint) or 54 (program limit, e.g. an index row too
/// large), a state that does not serialize or parse, a number out of range.
/// Everything else (no connection, a timeout, a pool wait, 40001, 40P01,
/// 57P01, a missing table or right that an operator can fix) is transient.
fn kind_of(error: &(dyn std::error::Error + 'static)) -> StoreErrorKind {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if let Some(code) = error
            .downcast_ref::<tokio_postgres::Error>()
            .and_then(tokio_postgres::Error::code)
        {
            return match code.code().get(..2) {
                Some("22" | "23" | "54") => StoreErrorKind::Permanent,
                _ => StoreErrorKind::Transient,
            };
        }
        if error.is::<serde_json::Error>() || error.is::<std::num::TryFromIntError>() {
            return StoreErrorKind::Permanent;
        }
        cause = error.source();
    }
    StoreErrorKind::Transient
}
