//! What the store makes of Redis's answers and errors.

use serde::Deserialize;

use crate::rules::EntityState;
use crate::store::{CommitOutcome, StoreError, StoreErrorKind, Versioned};

pub(super) fn redis_error(what: &str, e: ::redis::RedisError) -> StoreError {
    let kind = kind_of(&e);
    StoreError::with_source(format!("redis: {what}"), e).with_kind(kind)
}

/// Whether Redis refused the data itself: an answer that does not parse, a
/// key holding another type (`WRONGTYPE`), a stored event or state the
/// scripts cannot read (`malformed event`, `malformed state`), or a server
/// older than the scripts need (`Redis 7.0 or later`).
/// Everything else (no connection, a timeout, a loading or failing-over
/// server, a cluster redirection) is transient.
pub(super) fn kind_of(e: &::redis::RedisError) -> StoreErrorKind {
    use ::redis::ErrorKind;
    let permanent = matches!(e.kind(), ErrorKind::Parse | ErrorKind::UnexpectedReturnType)
        || e.code() == Some("WRONGTYPE")
        || e.detail().is_some_and(|d| {
            ["malformed state", "malformed event", "Redis 7.0 or later"]
                .iter()
                .any(|m| d.contains(m))
        });
    if permanent {
        StoreErrorKind::Permanent
    } else {
        StoreErrorKind::Transient
    }
}

/// A permanent error about data the store cannot read or write.
pub(super) fn bad_data(
    what: &str,
    e: impl std::error::Error + Send + Sync + 'static,
) -> StoreError {
    StoreError::with_source(format!("redis: {what}"), e).with_kind(StoreErrorKind::Permanent)
}

#[derive(Deserialize)]
struct StoredState {
    v: u64,
    s: EntityState,
}

/// The commit script's answer.
pub(super) fn commit_outcome(answer: i64) -> Result<CommitOutcome, StoreError> {
    match answer {
        0 => Ok(CommitOutcome::Committed),
        1 => Ok(CommitOutcome::StateChanged),
        2 => Ok(CommitOutcome::LeaseLost),
        other => Err(StoreError::new(format!(
            "redis: commit script answered {other}"
        ))),
    }
}

/// A stored state (`{"v":…,"e":…,"s":…}`), or the default when there is none.
pub(super) fn parse_state(stored: Option<String>) -> Result<Versioned, StoreError> {
    let Some(text) = stored else {
        return Ok(Versioned::default());
    };
    let stored: StoredState =
        serde_json::from_str(&text).map_err(|e| bad_data("stored state is malformed", e))?;
    Ok(Versioned {
        state: stored.s,
        version: stored.v,
    })
}

/// Escapes the glob characters of `text` for `SCAN … MATCH`.
pub(super) fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use ::redis::{ErrorKind, RedisError};

    use super::kind_of;
    use crate::store::StoreErrorKind;

    /// A stored value the scripts cannot read, and a server older than
    /// they need, stay so: permanent. A lost connection is transient.
    #[test]
    fn unreadable_data_and_an_old_server_are_permanent() {
        for detail in [
            "user_script:18: malformed event at app:ev:1:61",
            "user_script:40: malformed state at app:st:learner/1/7/course:1_2",
            "user_script:5: SET with NX and GET refused (the store needs Redis 7.0 or later): \
             ERR syntax error",
        ] {
            let e = RedisError::from((ErrorKind::Extension, "script failed", detail.to_owned()));
            assert_eq!(kind_of(&e), StoreErrorKind::Permanent, "{detail}");
        }
        let e = RedisError::from((ErrorKind::Io, "connection reset", "by peer".to_owned()));
        assert_eq!(kind_of(&e), StoreErrorKind::Transient);
    }
}
