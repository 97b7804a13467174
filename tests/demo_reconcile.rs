//! The demo, as users run it (built with `alm-api`): it ends by showing a
//! completion ALM never delivered, found by one report job of the ALM API
//! double and repaired through the engine into the learner table.
#![cfg(all(
    feature = "alm-api",
    feature = "axum",
    feature = "simulator",
    feature = "env"
))]

mod support;

#[test]
fn the_demo_finds_and_repairs_a_dropped_completion() {
    let out = std::process::Command::new(support::process::example("demo"))
        .output()
        .expect("the demo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let part = stdout
        .split("== reconciliation: a completion ALM never delivered ==")
        .nth(1)
        .unwrap_or_else(|| panic!("no reconciliation part: {stdout}"));
    let lines: Vec<&str> = part.lines().map(str::trim).collect();
    assert!(
        lines.contains(&r#"the learner table says: Some("in_progress (50 %)")"#),
        "{part}"
    );
    assert!(
        lines.contains(
            &"found by one report job: learner 7 in course:200_1: Status { table: Started, alm: Completed }"
        ),
        "{part}"
    );
    assert!(lines.contains(&"repair decided: processed"), "{part}");
    assert!(
        lines.iter().any(
            |l| l.starts_with("the handler sees COURSE_COMPLETED reconcile-7-")
                && l.ends_with(r#"(origin: "reconciliation")"#)
        ),
        "{part}"
    );
    assert!(
        lines.contains(&r#"the learner table now says: Some("completed (100 %)")"#),
        "{part}"
    );
    assert!(
        lines.contains(&"API calls: 1 report job, 0 budgeted requests, 1 token refresh"),
        "{part}"
    );
}
