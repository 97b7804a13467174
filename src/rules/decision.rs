//! What the engine decided for each event.

use std::fmt;

/// The engine's decision for one event.
///
/// `Processed`, `Duplicate`, `Ignored` and `Malformed` are final: the event is
/// dealt with. `Failed`, `InFlight` and `Deferred` are not: the delivery must be
/// answered with a `5xx` so that ALM sends it again (see
/// [`DeliveryReport::status`](crate::DeliveryReport::status)).
///
/// ```
/// use alm_webhooks::{Decision, IgnoreReason};
///
/// fn log(decision: Decision) -> String {
///     match decision {
///         Decision::Processed => "done".to_owned(),
///         Decision::Duplicate => "seen before".to_owned(),
///         Decision::Ignored(reason) => format!("ignored ({})", reason.code()),
///         Decision::Malformed => "did not parse: kept for a person".to_owned(),
///         Decision::Failed | Decision::InFlight | Decision::Deferred => {
///             format!("{decision}: ALM will deliver it again")
///         }
///         other => other.to_string(),
///     }
/// }
/// assert_eq!(log(Decision::Ignored(IgnoreReason::Stale)), "ignored (stale)");
/// assert_eq!(log(Decision::InFlight), "busy: ALM will deliver it again");
/// assert!(Decision::Malformed.is_final() && !Decision::InFlight.is_final());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Decision {
    /// The handler ran and succeeded; the event is recorded.
    Processed,
    /// This `eventId` was already decided for this account.
    Duplicate,
    /// An ordering rule says the event adds nothing; the handler did not run.
    Ignored(IgnoreReason),
    /// The event did not parse (or lacked what its configured family needs);
    /// see [`EventOutcome::event_error`](crate::engine::EventOutcome::event_error).
    Malformed,
    /// The handler failed or panicked; nothing was recorded.
    Failed,
    /// Another attempt is still processing this event after the bounded wait
    /// (or took the event over while this attempt's handler ran).
    InFlight,
    /// An earlier event of the same entity in this delivery failed, is busy
    /// or was deferred itself, so this one was not decided: it must not be
    /// processed before its predecessor. Nothing was recorded; the
    /// redelivery decides both, in order.
    Deferred,
}

impl Decision {
    /// Whether the event is dealt with for good (no redelivery needed).
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Failed | Self::InFlight | Self::Deferred)
    }

    /// The decision's name as printed in logs and metric labels:
    /// `processed`, `duplicate`, `ignored`, `rejected` (for
    /// [`Malformed`](Self::Malformed)), `failed`, `busy` (for
    /// [`InFlight`](Self::InFlight)), `deferred`. These strings are the
    /// receivers' stable output (dashboards and alerts match them), so they
    /// kept their names when the variants were renamed.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Processed => "processed",
            Self::Duplicate => "duplicate",
            Self::Ignored(_) => "ignored",
            Self::Malformed => "rejected",
            Self::Failed => "failed",
            Self::InFlight => "busy",
            Self::Deferred => "deferred",
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ignored(reason) => write!(f, "ignored: {reason}"),
            other => f.write_str(other.as_str()),
        }
    }
}

/// Why an event was ignored: one of ALM's documented rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IgnoreReason {
    /// Rule 1: a `LEARNER_PROGRESS` for the record was processed since its
    /// latest lifecycle event, so the enrollment adds nothing.
    EnrollmentAfterProgress,
    /// Rule 2: the record's latest lifecycle event is a completion, and
    /// completion means 100 %.
    ProgressAfterCompletion,
    /// Rule 3: the event is strictly older than the newest one already
    /// applied to the same entity.
    Stale,
    /// Rule 4: a `LEARNER_PROGRESS` strictly older (by `timestamp`) than
    /// one already processed for the record, so the record's progress
    /// would go back (a delayed or replayed progress, say 40 % after 60 %).
    OlderProgress,
}

impl IgnoreReason {
    /// A short machine-readable code: `enrollment_after_progress`,
    /// `progress_after_completion`, `stale`, `older_progress`.
    pub fn code(self) -> &'static str {
        match self {
            Self::EnrollmentAfterProgress => "enrollment_after_progress",
            Self::ProgressAfterCompletion => "progress_after_completion",
            Self::Stale => "stale",
            Self::OlderProgress => "older_progress",
        }
    }
}

impl fmt::Display for IgnoreReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::EnrollmentAfterProgress => {
                "enrollment after learner progress (rule 1: progress implies enrollment)"
            }
            Self::ProgressAfterCompletion => {
                "learner progress after completion (rule 2: completion means 100 %)"
            }
            Self::Stale => "older than the newest event applied to the same entity (rule 3)",
            Self::OlderProgress => {
                "learner progress older than one already processed for the record (rule 4: progress never goes back)"
            }
        })
    }
}
