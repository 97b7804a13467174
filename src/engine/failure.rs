//! Why an event failed: the handler's error (kept, with its `source()`
//! chain), a panic, or a permanent store error about the event.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

use crate::BoxError;

/// Why an event's decision is [`Decision::Failed`](super::Decision::Failed):
/// the handler returned an error or panicked, or the store refused the
/// event for good.
///
/// [`message`](Self::message) is the error with its whole `source()` chain
/// (`"outer: inner: root"`); [`error`](Self::error) and
/// [`downcast_ref`](Self::downcast_ref) give back the error the handler
/// returned.
///
/// ```
/// use alm_webhooks::{Envelope, Decision, Engine};
///
/// #[derive(Debug)]
/// struct CrmDown;
/// impl std::fmt::Display for CrmDown {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         f.write_str("CRM down")
///     }
/// }
/// impl std::error::Error for CrmDown {}
///
/// #[derive(Debug)]
/// struct SyncFailed(CrmDown);
/// impl std::fmt::Display for SyncFailed {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         f.write_str("sync failed")
///     }
/// }
/// impl std::error::Error for SyncFailed {
///     fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
///         Some(&self.0)
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let body = br#"{"accountId":1,"events":[{"eventId":"e1","eventName":"LEARNING_OBJECT_DRAFT",
///   "timestamp":1725519188,"data":{"loId":"course:1","loType":"course"}}]}"#;
/// let envelope = Envelope::from_slice(body).unwrap();
/// let report = Engine::in_memory()
///     .process(envelope, |_event| async { Err(SyncFailed(CrmDown).into()) })
///     .await
///     .unwrap();
/// let outcome = &report.outcomes[0];
/// assert_eq!(outcome.decision, Decision::Failed);
/// let failure = outcome.error.as_ref().unwrap();
/// assert_eq!(failure.message(), "sync failed: CRM down");
/// assert!(failure.downcast_ref::<SyncFailed>().is_some());
/// assert!(!failure.is_panic());
/// # }
/// ```
#[derive(Clone)]
pub struct EventFailure {
    message: Box<str>,
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    /// The handler's (or the store's) error.
    Error(Arc<dyn Error + Send + Sync + 'static>),
    /// The handler panicked.
    Panic,
}

impl EventFailure {
    /// A failure from the handler's error.
    pub(crate) fn from_handler(error: BoxError) -> Self {
        Self::from_error(Arc::from(error))
    }

    /// A failure from any error, such as a permanent store error.
    pub(crate) fn from_error(error: Arc<dyn Error + Send + Sync + 'static>) -> Self {
        Self {
            message: chain(&*error).into(),
            kind: Kind::Error(error),
        }
    }

    /// The handler panicked (the panic's payload is not kept: it may hold
    /// anything).
    pub(crate) fn panicked() -> Self {
        Self {
            message: "the handler panicked".into(),
            kind: Kind::Panic,
        }
    }

    /// The error and its whole `source()` chain, joined by `": "`, or `the
    /// handler panicked`.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether the handler panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.kind, Kind::Panic)
    }

    /// The error itself (`None` after a panic).
    pub fn error(&self) -> Option<&(dyn Error + Send + Sync + 'static)> {
        match &self.kind {
            Kind::Error(error) => Some(&**error),
            Kind::Panic => None,
        }
    }

    /// The error as a `T`, if it is one (the outermost error, not its
    /// sources; walk [`Error::source`] from [`error`](Self::error) for those).
    pub fn downcast_ref<T: Error + 'static>(&self) -> Option<&T> {
        self.error()?.downcast_ref::<T>()
    }
}

/// `error: source: source …`: one walker of an error's `source()` chain for
/// the crate (the engine's failures, the workers' reasons).
pub(crate) fn chain(error: &(dyn Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        // Some errors already print their source; do not say it twice.
        if !message.ends_with(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

/// The message (the chain), as [`EventFailure::message`].
impl fmt::Display for EventFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for EventFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventFailure")
            .field("message", &self.message)
            .field("panic", &self.is_panic())
            .finish_non_exhaustive()
    }
}

/// Equal when the messages (and whether it was a panic) are.
impl PartialEq for EventFailure {
    fn eq(&self, other: &Self) -> bool {
        self.message == other.message && self.is_panic() == other.is_panic()
    }
}

impl Eq for EventFailure {}

impl PartialEq<str> for EventFailure {
    fn eq(&self, other: &str) -> bool {
        &*self.message == other
    }
}

impl PartialEq<&str> for EventFailure {
    fn eq(&self, other: &&str) -> bool {
        &*self.message == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);
    impl fmt::Display for Layer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }
    impl Error for Layer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.1.as_deref().map(|l| l as &(dyn Error + 'static))
        }
    }

    #[test]
    fn message_is_the_whole_chain() {
        let error = Layer(
            "outer",
            Some(Box::new(Layer(
                "inner",
                Some(Box::new(Layer("root", None))),
            ))),
        );
        let failure = EventFailure::from_handler(Box::new(error));
        assert_eq!(failure.message(), "outer: inner: root");
        assert_eq!(failure.to_string(), "outer: inner: root");
        assert_eq!(failure.downcast_ref::<Layer>().unwrap().0, "outer");
        assert!(!failure.is_panic());
    }

    #[test]
    fn a_source_already_in_the_message_is_not_repeated() {
        let error = Layer("outer: root", Some(Box::new(Layer("root", None))));
        let failure = EventFailure::from_handler(Box::new(error));
        assert_eq!(failure.message(), "outer: root");
    }

    #[test]
    fn strings_become_errors() {
        let failure = EventFailure::from_handler("CRM down".into());
        assert_eq!(failure, "CRM down");
        assert!(failure.error().is_some());
        let panic = EventFailure::panicked();
        assert!(panic.is_panic() && panic.error().is_none());
        assert_eq!(panic.message(), "the handler panicked");
    }
}
