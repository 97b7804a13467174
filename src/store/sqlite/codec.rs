//! What the store makes of SQLite's rows and errors.

use super::{account, rows, token_bytes, unix_millis};
use crate::rules::EntityState;
use crate::store::{Commit, StoreError, StoreErrorKind, Versioned};

pub(super) fn duration_millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub(super) fn sqlite_error(what: &str, e: rusqlite::Error) -> StoreError {
    let kind = kind_of(&e);
    StoreError::with_source(format!("sqlite: {what}"), e).with_kind(kind)
}

/// Whether SQLite refused the data itself (a constraint, a value too big, a
/// value that does not convert): permanent. A busy or locked database, a
/// file that cannot be opened or written, anything else: transient.
pub(super) fn kind_of(e: &rusqlite::Error) -> StoreErrorKind {
    use rusqlite::ErrorCode;
    match e {
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::Utf8Error(..)
        | rusqlite::Error::NulError(..)
        | rusqlite::Error::ToSqlConversionFailure(..) => StoreErrorKind::Permanent,
        _ => match e.sqlite_error_code() {
            Some(ErrorCode::ConstraintViolation | ErrorCode::TooBig | ErrorCode::TypeMismatch) => {
                StoreErrorKind::Permanent
            }
            _ => StoreErrorKind::Transient,
        },
    }
}

/// A permanent error about data the store cannot read or write.
pub(super) fn bad_data(
    what: &str,
    e: impl std::error::Error + Send + Sync + 'static,
) -> StoreError {
    StoreError::with_source(format!("sqlite: {what}"), e).with_kind(StoreErrorKind::Permanent)
}

/// A stored state row (version, JSON) as a [`Versioned`]; the default when
/// there is none.
pub(super) fn versioned(row: Option<(i64, String)>) -> Result<Versioned, StoreError> {
    let Some((version, json)) = row else {
        return Ok(Versioned::default());
    };
    let version = u64::try_from(version).map_err(|e| bad_data("stored version is negative", e))?;
    let state: EntityState =
        serde_json::from_str(&json).map_err(|e| bad_data("stored state is malformed", e))?;
    Ok(Versioned { state, version })
}

/// A commit as the row operation runs it.
pub(super) fn commit_row(commit: &Commit<'_>) -> Result<rows::CommitRow, StoreError> {
    let update = match commit.update {
        Some(u) => {
            let json = serde_json::to_string(u.state)
                .map_err(|e| bad_data("cannot serialize the state", e))?;
            let expected = i64::try_from(u.expected_version)
                .map_err(|e| bad_data("expected version out of range", e))?;
            Some((u.key.storage_key(), expected, json))
        }
        None => None,
    };
    Ok(rows::CommitRow {
        account: account(commit.key),
        event: commit.key.storage_key().1.into_owned(),
        token: token_bytes(commit.token),
        until: unix_millis(commit.remember_until),
        state_until: unix_millis(commit.state_until),
        update,
    })
}
