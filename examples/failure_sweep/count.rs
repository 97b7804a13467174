//! What a run shows, counted from the ledger, the inbox's dead letters and
//! what the inbox still holds, against what the sender had acknowledged.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::time::Duration;

use super::committed::AtDeaths;
use super::ledger::Run;
use super::traffic::position;

/// One line of the report: a backend under one fault.
#[derive(Debug, Default, Clone)]
pub(crate) struct Row {
    pub(crate) backend: String,
    pub(crate) fault: String,
    /// Why the run did not happen, if it did not.
    pub(crate) skipped: Option<String>,
    pub(crate) acknowledged: usize,
    /// Distinct events the handler ran for (acknowledged or not).
    pub(crate) processed: usize,
    pub(crate) dead_lettered: usize,
    /// Dead letters of events whose handler was not made to fail: an event
    /// the handler would have processed, given up on.
    pub(crate) wrongly_dead: usize,
    /// Acknowledged, never run, not dead-lettered, and its account no
    /// longer held by the inbox.
    pub(crate) lost: usize,
    /// Handler runs beyond the first, over all events.
    pub(crate) extra_runs: usize,
    /// Handler runs (ledger rows) whose decision was not committed when
    /// their process died, over every death: the runs a death may repeat.
    pub(crate) uncommitted_at_deaths: usize,
    /// Repeated runs not explained by a death: the event's run before
    /// was not left uncommitted by a process that died (or was in the
    /// same process).
    pub(crate) unexplained_repeats: usize,
    /// Processes that died: killed by the sweep, or by themselves.
    pub(crate) deaths: usize,
    pub(crate) order_violations: usize,
    /// Accounts the inbox still held when the drain's time was up.
    pub(crate) stalled: usize,
    /// From the end of the faults to the last acknowledged event accounted
    /// for; `None` if that did not happen in time.
    pub(crate) drain: Option<Duration>,
    /// Rows in the user's hook table (`None`: no hook on this backend).
    pub(crate) hook_rows: Option<usize>,
    /// Hook rows repeated, missing or of events not processed.
    pub(crate) hook_wrong: usize,
    /// Learner records in the projection.
    pub(crate) learner_records: usize,
    /// Learner records missing, extra or not the merge of their events.
    pub(crate) learner_wrong: usize,
    /// Dead letters by reason.
    pub(crate) reasons: BTreeMap<String, usize>,
    /// Anything else worth reading (unaccounted events' last decisions,
    /// deaths not caused by the sweep).
    pub(crate) notes: Vec<String>,
}

impl Row {
    /// The invariants this row breaks (empty when it holds).
    pub(crate) fn violations(&self) -> Vec<String> {
        let mut broken = Vec::new();
        if self.lost > 0 {
            broken.push(format!("{} lost", self.lost));
        }
        if self.wrongly_dead > 0 {
            broken.push(format!("{} wrongly dead-lettered", self.wrongly_dead));
        }
        if self.order_violations > 0 {
            broken.push(format!("{} out of order", self.order_violations));
        }
        if self.stalled > 0 {
            broken.push(format!("{} accounts stalled", self.stalled));
        }
        if self.extra_runs > self.uncommitted_at_deaths {
            broken.push(format!(
                "{} extra runs for {} runs uncommitted at deaths",
                self.extra_runs, self.uncommitted_at_deaths
            ));
        }
        if self.hook_wrong > 0 {
            broken.push(format!("{} hook rows wrong", self.hook_wrong));
        }
        if self.learner_wrong > 0 {
            broken.push(format!("{} learner records wrong", self.learner_wrong));
        }
        if self.unexplained_repeats > 0 {
            broken.push(format!(
                "{} repeated runs without a death",
                self.unexplained_repeats
            ));
        }
        broken
    }
}

/// What the sweep gathered at the end of a run.
#[derive(Debug)]
pub(crate) struct Gathered<'a> {
    pub(crate) acknowledged: &'a HashSet<String>,
    pub(crate) runs: &'a [Run],
    /// Dead-lettered event id → reason.
    pub(crate) dead: &'a HashMap<String, String>,
    /// Event id → last (decision, reason) a receiver printed.
    pub(crate) decisions: &'a HashMap<String, (String, String)>,
    /// Accounts the inbox still holds a delivery of.
    pub(crate) held: &'a BTreeSet<u64>,
    /// The events whose handler the fault makes fail (hang, panic, abort).
    pub(crate) targets: &'a [String],
    /// What each dead process left uncommitted.
    pub(crate) at_deaths: &'a AtDeaths,
}

/// Fills the counts of `row` from what was gathered.
pub(crate) fn count(row: &mut Row, g: &Gathered<'_>) {
    row.acknowledged = g.acknowledged.len();
    let mut runs: HashMap<&str, usize> = HashMap::new();
    for run in g.runs {
        *runs.entry(run.event_id.as_str()).or_default() += 1;
    }
    row.processed = runs.len();
    row.extra_runs = runs.values().map(|n| n - 1).sum();
    row.uncommitted_at_deaths = g.at_deaths.values().map(HashSet::len).sum();
    row.unexplained_repeats = unexplained_repeats(g.runs, g.at_deaths);
    row.dead_lettered = g.dead.len();
    row.wrongly_dead = g.dead.keys().filter(|id| !g.targets.contains(id)).count();
    for reason in g.dead.values() {
        let short: String = reason.chars().take(90).collect();
        *row.reasons.entry(short).or_default() += 1;
    }
    row.order_violations = order_violations(g.runs);
    let processes: HashSet<i32> = g.runs.iter().map(|r| r.pid).collect();
    row.notes
        .push(format!("handler ran in {} processes", processes.len()));
    row.stalled = g.held.len();
    let mut lost_decisions: BTreeMap<String, usize> = BTreeMap::new();
    for id in g.acknowledged {
        if runs.contains_key(id.as_str()) || g.dead.contains_key(id) {
            continue;
        }
        let account = position(id).map_or(0, |p| p.account);
        if g.held.contains(&account) {
            continue;
        }
        row.lost += 1;
        let last = g
            .decisions
            .get(id)
            .map_or("no decision printed".to_owned(), |(d, r)| {
                format!("{d}: {r}")
            });
        *lost_decisions.entry(last).or_default() += 1;
    }
    for (last, n) in lost_decisions {
        row.notes.push(format!("lost, last decision `{last}`: {n}"));
    }
}

/// Runs of an event after its first whose run before was not in a process
/// that died leaving it uncommitted, or was in the same process.
fn unexplained_repeats(runs: &[Run], at_deaths: &AtDeaths) -> usize {
    let mut previous: HashMap<&str, i32> = HashMap::new();
    let mut unexplained = 0;
    for run in runs {
        if let Some(before) = previous.insert(run.event_id.as_str(), run.pid) {
            let left = at_deaths
                .get(&before)
                .is_some_and(|events| events.contains(&run.event_id));
            if before == run.pid || !left {
                unexplained += 1;
            }
        }
    }
    unexplained
}

/// First runs that come after the first run of a later delivery of the
/// same account, and completions first run before their enrollment.
fn order_violations(runs: &[Run]) -> usize {
    let mut seen = HashSet::new();
    let mut latest: HashMap<u64, u64> = HashMap::new();
    let mut run_seqs: HashSet<(u64, u64)> = HashSet::new();
    let all: HashSet<(u64, u64)> = runs
        .iter()
        .filter_map(|r| position(&r.event_id))
        .map(|p| (p.account, p.seq))
        .collect();
    let mut violations = 0;
    for run in runs {
        if !seen.insert(run.event_id.as_str()) {
            continue;
        }
        let Some(p) = position(&run.event_id) else {
            continue;
        };
        let latest = latest.entry(p.account).or_default();
        if p.delivery < *latest {
            violations += 1;
        }
        *latest = (*latest).max(p.delivery);
        let enrollment = (p.account, p.seq - p.seq % 2);
        if p.seq % 2 == 1 && all.contains(&enrollment) && !run_seqs.contains(&enrollment) {
            violations += 1;
        }
        run_seqs.insert((p.account, p.seq));
    }
    violations
}

/// The report: one markdown table, then the dead letters' reasons and the
/// notes of each run.
pub(crate) fn table(rows: &[Row], events_per_run: u64) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| backend | fault | acknowledged | processed | dead-lettered (wrongly) | lost | extra runs / uncommitted at deaths (deaths) | order violations | stalled accounts | hook rows / learner records | drain after recovery | verdict |"
    );
    let _ = writeln!(out, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|");
    for r in rows {
        if let Some(why) = &r.skipped {
            let _ = writeln!(
                out,
                "| {} | {} | | | | | | | | | | skipped: {why} |",
                r.backend, r.fault
            );
            continue;
        }
        let drain = r.drain.map_or("not drained".to_owned(), |d| {
            format!("{:.1} s", d.as_secs_f64())
        });
        let broken = r.violations();
        let verdict = if broken.is_empty() {
            "ok".to_owned()
        } else {
            format!("**FAIL**: {}", broken.join(", "))
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} ({}) | {} | {} / {} ({}) | {} | {} | {} / {} | {drain} | {verdict} |",
            r.backend,
            r.fault,
            r.acknowledged,
            r.processed,
            r.dead_lettered,
            r.wrongly_dead,
            r.lost,
            r.extra_runs,
            r.uncommitted_at_deaths,
            r.deaths,
            r.order_violations,
            r.stalled,
            r.hook_rows.map_or("-".to_owned(), |n| n.to_string()),
            r.learner_records,
        );
    }
    let _ = writeln!(out, "\n{events_per_run} events sent per run.");
    for r in rows
        .iter()
        .filter(|r| !r.reasons.is_empty() || !r.notes.is_empty())
    {
        let _ = writeln!(out, "\n{} / {}:", r.backend, r.fault);
        for (reason, n) in &r.reasons {
            let _ = writeln!(out, "- dead letter ×{n}: {reason}");
        }
        for note in &r.notes {
            let _ = writeln!(out, "- {note}");
        }
    }
    out
}
