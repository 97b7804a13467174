//! The deploy files (`deploy/`): the Prometheus alerting rules pass
//! `promtool check rules` and their unit tests (`promtool test rules`), and
//! the rules and the Grafana dashboard use only the crate's metric names,
//! every one of which the dashboard shows.
#![cfg(feature = "metrics")]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use alm_webhooks::metrics::names;

const RULES: &str = "deploy/prometheus/alerts.yml";
const RULE_TESTS: &str = "deploy/prometheus/alerts.test.yml";
const DASHBOARD: &str = "deploy/grafana/alm-webhooks.json";

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Runs promtool with `args`; `None` when promtool is not installed (a
/// failure under `CI=true`, where `.ci/run` installs it).
fn promtool(args: &[&str]) -> Option<std::process::Output> {
    match Command::new("promtool")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
    {
        Ok(output) => Some(output),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("promtool is required in CI (Debian package prometheus): {e}")
        }
        Err(e) => {
            eprintln!("skipped: promtool not found ({e}); apt-get install prometheus");
            None
        }
    }
}

fn assert_success(output: &std::process::Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn alerting_rules_pass_promtool_check() {
    if let Some(output) = promtool(&["check", "rules", RULES]) {
        assert_success(&output, "promtool check rules");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains("SUCCESS: 12 rules found"), "{stdout}");
    }
}

#[test]
fn alerting_rules_pass_their_unit_tests() {
    if let Some(output) = promtool(&["test", "rules", RULE_TESTS]) {
        assert_success(&output, "promtool test rules");
    }
}

/// The metric names a file mentions (`alm_webhooks_…`), with the suffixes
/// Prometheus adds to a histogram's series taken off.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("alm_webhooks_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .filter(|base| base.ends_with("_seconds"))
            .unwrap_or(&name);
        found.insert(base.to_owned());
    }
    found
}

#[test]
fn deploy_files_use_only_the_crates_metric_names() {
    let known: BTreeSet<String> = names::ALL.iter().map(|n| (*n).to_owned()).collect();
    for path in [RULES, RULE_TESTS, DASHBOARD] {
        let used = metric_names(&read(path));
        assert!(!used.is_empty(), "{path} names no metric");
        let unknown: Vec<_> = used.difference(&known).collect();
        assert!(
            unknown.is_empty(),
            "{path} uses unknown metrics {unknown:?}"
        );
    }
}

#[test]
fn the_dashboard_shows_every_metric_and_is_valid_json() {
    let text = read(DASHBOARD);
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(dashboard["uid"], "alm-webhooks");
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(
        panels
            .iter()
            .all(|p| p["targets"].as_array().is_some_and(|t| !t.is_empty()))
    );
    let used = metric_names(&text);
    let missing: Vec<_> = names::ALL.iter().filter(|n| !used.contains(**n)).collect();
    assert!(
        missing.is_empty(),
        "the dashboard does not show {missing:?}"
    );
}
