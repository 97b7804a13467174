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

/// The stored value of `update`'s state once committed, as
/// [`parse_state`] reads it: `{"v":expected + 1,"e":state_until_ms,"s":…}`.
/// The commit scripts write it whole when the stored version is still
/// the expected one.
pub(super) fn stored_state(
    update: &crate::store::StateUpdate<'_>,
    state_until: std::time::SystemTime,
) -> Result<String, StoreError> {
    let json = serde_json::to_string(update.state)
        .map_err(|e| bad_data("cannot serialize the state", e))?;
    Ok(format!(
        r#"{{"v":{},"e":{},"s":{json}}}"#,
        update.expected_version.saturating_add(1),
        crate::store::unix_millis(state_until)
    ))
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

    use super::{kind_of, parse_state, stored_state};
    use crate::rules::{EntityState, StateKey};
    use crate::store::{StateUpdate, StoreErrorKind};

    /// What a commit writes reads back as the next version of its state,
    /// in the form the scripts' version check and the sweep read
    /// (`{"v":…,"e":…,` first).
    #[test]
    fn a_stored_state_reads_back_as_the_next_version() {
        let state = EntityState::default();
        let body = br#"{"accountId":1234,"events":[{"eventId":"e1","eventName":"COURSE_ENROLLMENT",
            "timestamp":1725519188,"data":{"userId":7,"loId":"course:1","loInstanceId":"course:1_2",
            "loType":"course"}}]}"#;
        let envelope = crate::Envelope::from_slice(body).unwrap();
        let event = envelope.parsed().next().unwrap();
        let key = StateKey::for_event(crate::AccountId(1234), event).unwrap();
        let update = StateUpdate {
            key: &key,
            expected_version: 4,
            state: &state,
        };
        let until = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_725_519_188_123);
        let stored = stored_state(&update, until).unwrap();
        assert!(
            stored.starts_with(r#"{"v":5,"e":1725519188123,"s":"#),
            "{stored}"
        );
        let read = parse_state(Some(stored)).unwrap();
        assert_eq!((read.version, read.state), (5, state));
    }

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
