//! The user's handler, stored once without its type, and the error it
//! reports with its whole `source()` chain.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::{BoxError, Event};

/// A boxed, `Send` future.
pub(super) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The handler without its type: one `Arc`, cloned into every request and
/// every worker.
pub(super) type Handler =
    Arc<dyn Fn(Event) -> BoxFuture<'static, Result<(), BoxError>> + Send + Sync>;

/// Erases `handler`'s type. Its error comes back as a [`Chain`], so the
/// engine's one-line report of a failure names every cause.
pub(super) fn erase<F, Fut>(handler: F) -> Handler
where
    F: Fn(Event) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
{
    Arc::new(move |event| {
        let future = handler(event);
        Box::pin(async move { future.await.map_err(Chain::boxed) })
    })
}

/// A handler's error flattened into one message: its `Display`, then each
/// `source()` in turn, joined by `": "` (`"CRM refused: connection reset"`).
///
/// It has no `source()` of its own: the whole chain is already in its text,
/// so a report that walks sources does not repeat them.
#[derive(Debug)]
pub(super) struct Chain(String);

impl Chain {
    /// The boxed flattened form of `error`.
    fn boxed(error: BoxError) -> BoxError {
        Box::new(Self(chain_text(&*error)))
    }
}

/// `error`'s message followed by those of its sources, joined by `": "`.
/// A source whose text its parent already ends with is not repeated.
pub(super) fn chain_text(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        let part = cause.to_string();
        if !part.is_empty() && !text.ends_with(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        next = cause.source();
    }
    text
}

impl fmt::Display for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Chain {}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("CRM refused the learner")
        }
    }

    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn the_chain_is_one_line_with_every_cause() {
        let error = Outer(std::io::Error::other("connection reset"));
        assert_eq!(
            chain_text(&error),
            "CRM refused the learner: connection reset"
        );
        let plain: BoxError = "plain".into();
        assert_eq!(Chain::boxed(plain).to_string(), "plain");
    }
}
