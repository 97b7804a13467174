//! The admin token: compared as HMAC digests under a random key (neither
//! its content nor its length leaks through timing), at least 32
//! characters when read from configuration, and failed attempts limited.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{HeaderMap, header};

use crate::auth::mac::{HmacKey, Tag};

/// The fewest characters [`AdminToken::parse`] accepts: 32.
pub const MIN_ADMIN_TOKEN_CHARS: usize = 32;

/// Failed attempts allowed per [`FAILURE_WINDOW`]; past them the API
/// answers `429` without looking at the token.
const MAX_FAILURES: u32 = 20;
const FAILURE_WINDOW: Duration = Duration::from_secs(1);

/// The admin token the API's callers must send as `Authorization: Bearer
/// TOKEN`. Its `Debug` never shows it. It is kept as an HMAC digest under a
/// key drawn at random when it is made, and a presented token is compared
/// digest to digest in constant time, so neither its content nor its
/// length leaks. At most 20 failed attempts a second are looked at; the
/// rest are answered `429`.
///
/// ```
/// use alm_webhooks::admin::AdminToken;
///
/// let token = AdminToken::new("s3cret-admin-token");
/// assert_eq!(format!("{token:?}"), "AdminToken([REDACTED])");
/// ```
#[derive(Clone)]
pub struct AdminToken(Arc<Inner>);

struct Inner {
    key: HmacKey,
    digest: Tag,
    empty: bool,
    /// The start of the current window and the failures in it.
    failures: Mutex<(Instant, u32)>,
}

/// Why [`AdminToken::parse`] refused a token: it is shorter than
/// [`MIN_ADMIN_TOKEN_CHARS`] (its text is not kept).
///
/// ```
/// use alm_webhooks::admin::AdminToken;
/// let err = AdminToken::parse("t").unwrap_err();
/// assert_eq!(err.to_string(), "the admin token has 1 characters: at least 32 are needed (try `openssl rand -hex 32`)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the admin token has {chars} characters: at least {MIN_ADMIN_TOKEN_CHARS} are needed (try `openssl rand -hex 32`)"
)]
#[non_exhaustive]
pub struct WeakAdminToken {
    /// How many characters it had.
    pub chars: usize,
}

/// What a request's credentials are worth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Check {
    Admitted,
    Refused,
    /// Too many failures lately: not even looked at.
    TooMany,
}

impl AdminToken {
    /// A token from its text, whatever its length (tests, demos). Read a
    /// configured one with [`AdminToken::parse`], which refuses short
    /// ones. An empty token admits nobody.
    pub fn new(token: impl Into<String>) -> Self {
        let token = token.into();
        let key = HmacKey::random();
        let digest = key.tag(&[token.as_bytes()]);
        Self(Arc::new(Inner {
            key,
            digest,
            empty: token.is_empty(),
            failures: Mutex::new((Instant::now(), 0)),
        }))
    }

    /// A token from configuration (for instance `ALM_ADMIN_TOKEN`): at
    /// least [`MIN_ADMIN_TOKEN_CHARS`] characters.
    ///
    /// # Errors
    ///
    /// [`WeakAdminToken`] when it is shorter.
    ///
    /// ```
    /// use alm_webhooks::admin::AdminToken;
    /// assert!(AdminToken::parse("0123456789abcdef0123456789abcdef").is_ok());
    /// assert!(AdminToken::parse("short").is_err());
    /// ```
    pub fn parse(token: &str) -> Result<Self, WeakAdminToken> {
        let chars = token.chars().count();
        if chars < MIN_ADMIN_TOKEN_CHARS {
            return Err(WeakAdminToken { chars });
        }
        Ok(Self::new(token))
    }

    /// Whether the request's `Authorization: Bearer …` carries the token;
    /// a failure is counted (and logged with the `tracing` feature).
    pub(super) fn check(&self, headers: &HeaderMap) -> Check {
        let inner = &*self.0;
        if self.recent_failures() >= MAX_FAILURES {
            return Check::TooMany;
        }
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
        let admitted = given.is_some_and(|given| {
            let digest = inner.key.tag(&[given]);
            digest.matches(&inner.digest) && !inner.empty
        });
        if admitted {
            return Check::Admitted;
        }
        let mut failures = inner.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.0.elapsed() >= FAILURE_WINDOW {
            *failures = (Instant::now(), 0);
        }
        failures.1 += 1;
        #[cfg(feature = "tracing")]
        tracing::warn!(
            failures_this_second = failures.1,
            "admin API: a request without the admin token was refused"
        );
        Check::Refused
    }

    /// Failures in the current window.
    fn recent_failures(&self) -> u32 {
        let failures = self.0.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.0.elapsed() >= FAILURE_WINDOW {
            0
        } else {
            failures.1
        }
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        headers
    }

    #[test]
    fn admits_the_token_only_and_limits_guesses() {
        let token = AdminToken::new("0123456789abcdef0123456789abcdef");
        assert_eq!(
            token.check(&bearer("0123456789abcdef0123456789abcdef")),
            Check::Admitted
        );
        assert_eq!(
            token.check(&bearer("0123456789abcdef0123456789abcde")),
            Check::Refused
        );
        for _ in 1..MAX_FAILURES {
            assert_eq!(token.check(&bearer("guess")), Check::Refused);
        }
        assert_eq!(
            token.check(&bearer("0123456789abcdef0123456789abcdef")),
            Check::TooMany,
            "past the limit, not even the right token is looked at"
        );
    }

    #[test]
    fn an_empty_token_admits_nobody() {
        assert_eq!(AdminToken::new("").check(&bearer("")), Check::Refused);
    }
}
