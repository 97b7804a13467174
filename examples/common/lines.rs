//! The receivers' stdout: one JSON line per decided event, dead letter or
//! quarantined body (the demo keeps them in a journal). Outages go to stderr.

use std::io::Write;
use std::sync::{Arc, Mutex};

use alm_webhooks::engine::EventOutcome;
use alm_webhooks::inbox::Progress;

use alm_webhooks::{AccountId, Answer, Decision};

/// Where decision lines go: stdout (the receivers) or a journal (the demo).
pub type Sink = Arc<dyn Fn(String) + Send + Sync>;

/// Lines to stdout, each flushed (nothing else goes there).
pub fn stdout() -> Sink {
    Arc::new(|line| drop(writeln!(std::io::stdout().lock(), "{line}")))
}

/// Lines kept in `journal`.
pub fn journal(journal: Arc<Mutex<Vec<String>>>) -> Sink {
    Arc::new(move |line| journal.lock().unwrap_or_else(|e| e.into_inner()).push(line))
}

/// Lines made and counted, not kept: a load test's receivers, which make
/// hundreds of thousands of them.
pub fn counted(count: Arc<std::sync::atomic::AtomicUsize>) -> Sink {
    Arc::new(move |_line| {
        count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    })
}

/// What an answer decided, inline (one line per decided event, or one
/// for a quarantined body); an outage on stderr.
pub fn answer(sink: &Sink, answer: &Answer) {
    match answer {
        Answer::Processed { account_id, report } => {
            for outcome in &report.outcomes {
                sink(outcome_line(account_id.get(), outcome));
            }
        }
        Answer::Quarantined {
            account_id, error, ..
        } => sink(quarantined_line(*account_id, error)),
        Answer::StoreUnavailable(e) => eprintln!("store error: {e}"),
        Answer::InboxUnavailable(e) => eprintln!("{e}"),
        _ => {}
    }
}

/// The line for what a worker did, if it makes one.
pub fn progress(sink: &Sink, progress: Progress<'_>) {
    let line = match progress {
        Progress::Decided {
            account_id,
            outcome,
            ..
        } => outcome_line(account_id.get(), outcome),
        Progress::DeadLettered { letter } => serde_json::json!({
            "accountId": letter.account_id.get(),
            "eventId": letter.event_id,
            "eventName": letter.event_name,
            "decision": "dead_lettered",
            "reason": letter.error,
            "attempts": letter.attempts,
        })
        .to_string(),
        Progress::Quarantined { account_id, error } => quarantined_line(account_id, error),
        Progress::Unavailable { error } => return eprintln!("inbox worker: {error}"),
        Progress::Panicked {
            account_id,
            delivery,
        } => {
            return eprintln!(
                "inbox worker panicked (account {:?}, delivery {:?}): restarted",
                account_id.map(AccountId::get),
                delivery.map(|d| d.0)
            );
        }
        _ => return,
    };
    sink(line);
}

/// The line for a quarantined body.
pub fn quarantined_line(account_id: Option<AccountId>, error: &str) -> String {
    serde_json::json!({
        "accountId": account_id.map(AccountId::get),
        "eventId": null,
        "eventName": null,
        "decision": "quarantined",
        "reason": error,
    })
    .to_string()
}

/// The decision line of one event. Written from borrowed fields, in the
/// order `serde_json::json!` gives them (alphabetical): one per event, so
/// no map of values is built for it.
pub fn outcome_line(account_id: u64, o: &EventOutcome) -> String {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Line<'a> {
        account_id: u64,
        decision: &'a str,
        event_id: Option<&'a str>,
        event_name: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<&'a str>,
    }
    let reason = match (o.decision, &o.error) {
        (Decision::Ignored(reason), _) => Some(reason.code()),
        (Decision::Failed, Some(e)) => Some(e.message()),
        (Decision::Duplicate, _) => Some("already decided"),
        (Decision::Malformed, _) => Some("event did not parse"),
        (Decision::InFlight, _) => Some("in flight elsewhere"),
        _ => None,
    };
    let line = Line {
        account_id,
        decision: o.decision.as_str(),
        event_id: o.event_id.as_ref().map(|id| id.as_str()),
        event_name: o.event_name.as_ref().map(|n| n.as_str()),
        reason,
    };
    serde_json::to_string(&line).expect("a line of strings and a number serializes")
}
