//! The admin page in a real browser: headless Chromium driven through
//! WebDriver (chromedriver) against the axum example receiver in inbox mode.
//! A delivery makes a dead letter; the page, after the token is entered,
//! shows it; its Replay button replays it and the count drops to zero.
//! The learner search shows a user's records from the learner table
//! (`ALM_PROJECTION` on by default).
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs
//! them). Without them the test says it is skipped; under `CI=true` that is a
//! failure. `ALM_UPDATE_SCREENSHOT=1` writes the page's screenshot to
//! `docs/admin-page.png` (the README shows it).
#![cfg(all(feature = "axum", feature = "simulator", feature = "env"))]

mod support;

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alm_webhooks::simulator::scenario::{envelope, learner_event};
use fantoccini::{ClientBuilder, Locator};
use support::process::{request_to, signed_post, start};

const TOKEN: &str = "browser-test-token-0123456789abcdef";
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver as a child process, killed on drop (with Chromium's
/// profile directory removed).
struct Driver(Child, std::path::PathBuf);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

/// A Chromium profile directory, private to one test (the tests of this
/// file run at once, and two browsers cannot share a profile).
fn profile_dir() -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    std::env::temp_dir().join(format!("alm-admin-browser-{}-{n}", std::process::id()))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Whether the browser is here; `false` means skip (a failure in CI).
fn browser_available() -> bool {
    let found = Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists();
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{CHROMIUM} and {CHROMEDRIVER} are required in CI (apt-get install chromium chromium-driver)"
        );
        eprintln!(
            "skipped: {CHROMIUM} or {CHROMEDRIVER} missing (apt-get install chromium chromium-driver)"
        );
    }
    found
}

fn start_driver() -> (Driver, u16, std::path::PathBuf) {
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    let profile = profile_dir();
    (Driver(child, profile.clone()), port, profile)
}

fn capabilities(profile: &Path) -> serde_json::Map<String, serde_json::Value> {
    let options = serde_json::json!({
        "binary": CHROMIUM,
        "args": [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--window-size=1280,900",
            format!("--user-data-dir={}", profile.display()),
        ],
    });
    let mut caps = serde_json::Map::new();
    caps.insert("goog:chromeOptions".into(), options);
    caps
}

/// Polls the admin API until the dead letters number `count`.
fn wait_for_dead_letters(addr: SocketAddr, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, body) = request_to(
            addr,
            "GET",
            "/admin/dead-letters",
            &[("authorization", format!("Bearer {TOKEN}"))],
            b"",
        );
        let list: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        if list.as_array().is_some_and(|l| l.len() == count) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "dead letters never became {count}: {body}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_page_shows_a_dead_letter_and_replays_it() {
    if !browser_available() {
        return;
    }
    let receiver = start(
        "axum_receiver",
        &[
            ("ALM_MODE", "inbox"),
            ("ALM_ON_MALFORMED", "quarantine"),
            ("ALM_ADMIN_TOKEN", TOKEN),
            ("ALM_MAX_ATTEMPTS", "1"),
            ("ALM_HANDLER_FAIL_ON", "browser-dead-1"),
            // Fails once (the only attempt: a dead letter), then succeeds
            // (the replay).
            ("ALM_HANDLER_FAIL_TIMES", "1"),
        ],
    );
    let addr = receiver.addr;
    let body = envelope(
        4242,
        &[learner_event(
            "browser-dead-1",
            "COURSE_ENROLLMENT",
            1_750_000_000,
            77,
            "course:9_1",
        )],
    );
    let (status, _) = signed_post(addr, &body);
    assert_eq!(status, 202);
    wait_for_dead_letters(addr, 1);

    let (_driver, port, profile) = start_driver();
    let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
    connector.enforce_http(true);
    let client = ClientBuilder::new(connector)
        .capabilities(capabilities(&profile))
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a WebDriver session");
    let result = drive(&client, addr).await;
    let _ = client.close().await;
    result.unwrap();
}

/// A WebDriver session on a fresh chromedriver.
async fn session() -> (Driver, fantoccini::Client) {
    let (driver, port, profile) = start_driver();
    let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
    connector.enforce_http(true);
    let client = ClientBuilder::new(connector)
        .capabilities(capabilities(&profile))
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a WebDriver session");
    (driver, client)
}

/// Pausing an account on the page: its deliveries are acknowledged and
/// its backlog grows on the page; resuming it on the page drains them, in
/// the order they were acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_page_pauses_an_account_and_resumes_it() {
    if !browser_available() {
        return;
    }
    let receiver = start(
        "axum_receiver",
        &[("ALM_MODE", "inbox"), ("ALM_ADMIN_TOKEN", TOKEN)],
    );
    let (_driver, client) = session().await;
    let result = drive_pause(&client, &receiver).await;
    let _ = client.close().await;
    result.unwrap();
}

/// The dead letters' bulk form: account 4244's two dead letters replayed
/// with one click ("Replay all matching" with the account filled in),
/// account 4245's left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_page_replays_every_matching_dead_letter() {
    if !browser_available() {
        return;
    }
    let receiver = start(
        "axum_receiver",
        &[
            ("ALM_MODE", "inbox"),
            ("ALM_ADMIN_TOKEN", TOKEN),
            ("ALM_MAX_ATTEMPTS", "1"),
            ("ALM_HANDLER_FAIL_ON", "bulk-1,bulk-2,bulk-3"),
            ("ALM_HANDLER_FAIL_TIMES", "1"),
        ],
    );
    let addr = receiver.addr;
    let event =
        |id: &str, user| learner_event(id, "COURSE_ENROLLMENT", 1_750_000_000, user, "course:9_1");
    let two = envelope(4244, &[event("bulk-1", 1), event("bulk-2", 2)]);
    assert_eq!(signed_post(addr, &two).0, 202);
    assert_eq!(
        signed_post(addr, &envelope(4245, &[event("bulk-3", 3)])).0,
        202
    );
    wait_for_dead_letters(addr, 3);
    let (_driver, client) = session().await;
    let result = drive_bulk(&client, addr).await;
    let _ = client.close().await;
    result.unwrap();
}

async fn drive_bulk(client: &fantoccini::Client, addr: SocketAddr) -> Result<(), String> {
    let err = |what: &str| {
        let what = what.to_owned();
        move |e: fantoccini::error::CmdError| format!("{what}: {e}")
    };
    sign_in(client, addr).await?;
    let account = client
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(
            "form.bulk[data-kind='dead-letters'] input[name=accountId]",
        ));
    account
        .await
        .map_err(err("the filter's account field"))?
        .send_keys("4244")
        .await
        .map_err(err("type"))?;
    let replay = client.find(Locator::Css(
        "form.bulk[data-kind='dead-letters'] button[data-bulk=replay]",
    ));
    replay
        .await
        .map_err(err("the bulk replay button"))?
        .click()
        .await
        .map_err(err("replay"))?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let read = "return [document.getElementById('message').textContent, document.getElementById('dead-count').textContent];";
        let texts = client
            .execute(read, vec![])
            .await
            .map_err(err("the message"))?;
        if texts[0] == "replay: 2 matched" && texts[1] == "(1)" {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("the page shows {texts}"));
        }
        let refresh = client
            .find(Locator::Id("refresh"))
            .await
            .map_err(err("refresh"))?;
        refresh.click().await.map_err(err("refresh"))?;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    wait_for_dead_letters(addr, 1);
    Ok(())
}

/// The text of the inbox figure labelled `label` (read in one script:
/// the page draws its figures again at every refresh).
async fn figure(client: &fantoccini::Client, label: &str) -> Result<String, String> {
    let css = format!("#inbox [data-figure='{label}'] .value");
    let script = "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;";
    let value = client.execute(script, vec![serde_json::json!(css)]).await;
    let value = value.map_err(|e| format!("the {label} figure: {e}"))?;
    Ok(value.as_str().unwrap_or("(missing)").to_owned())
}

/// Clicks Refresh until the figure `label` reads `want` (20 s at most).
async fn until_figure(client: &fantoccini::Client, label: &str, want: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = figure(client, label).await?;
        if now == want {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{label} stayed {now}, expected {want}"));
        }
        let refresh = client.find(Locator::Id("refresh")).await;
        refresh
            .map_err(|e| format!("refresh: {e}"))?
            .click()
            .await
            .map_err(|e| format!("refresh: {e}"))?;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn drive_pause(
    client: &fantoccini::Client,
    receiver: &support::process::Running,
) -> Result<(), String> {
    let addr = receiver.addr;
    let err = |what: &str| {
        let what = what.to_owned();
        move |e: fantoccini::error::CmdError| format!("{what}: {e}")
    };
    sign_in(client, addr).await?;
    let account = client
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Id("pause-account"));
    account
        .await
        .map_err(err("the account field"))?
        .send_keys("4343")
        .await
        .map_err(err("type"))?;
    client
        .find(Locator::Id("pause"))
        .await
        .map_err(err("pause"))?
        .click()
        .await
        .map_err(err("pause"))?;
    let row = client
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css("#paused tr[data-account='4343']"));
    row.await.map_err(err("the paused account's row"))?;
    until_figure(client, "paused", "1").await?;
    for n in 1..=3 {
        let id = format!("paused-{n}");
        let event = learner_event(
            &id,
            "COURSE_ENROLLMENT",
            1_750_000_000 + n,
            77,
            "course:9_1",
        );
        let (status, _) = signed_post(addr, &envelope(4343, &[event]));
        assert_eq!(status, 202, "a paused account's delivery is acknowledged");
    }
    until_figure(client, "pending", "3").await?;
    assert!(
        receiver.lines.lock().unwrap().is_empty(),
        "nothing handled while paused"
    );
    // The table is drawn again at each refresh: find the button and
    // click it in one script, so it cannot go stale in between.
    let click = "const b = document.querySelector(\"#paused tr[data-account='4343'] button[data-action=resume]\"); \
                 if (b) { b.click(); return true; } return false;";
    let clicked = client.execute(click, vec![]).await.map_err(err("resume"))?;
    assert_eq!(clicked, serde_json::Value::Bool(true), "the resume button");
    until_figure(client, "pending", "0").await?;
    until_figure(client, "paused", "0").await?;
    let lines = support::process::wait_for_lines(receiver, 3);
    let handled: Vec<_> = support::process::decisions(&lines);
    let expected: Vec<_> = (1..=3)
        .map(|n| (format!("paused-{n}"), "processed".to_owned()))
        .collect();
    assert_eq!(handled, expected, "drained in the order acknowledged");
    Ok(())
}

/// Clicks the search button `button` and gives the text of each row
/// matching `rows` once one is on the page.
async fn search_rows(
    client: &fantoccini::Client,
    button: &str,
    rows: &str,
) -> Result<Vec<String>, String> {
    let err = |what: &str| {
        let what = what.to_owned();
        move |e: fantoccini::error::CmdError| format!("{what}: {e}")
    };
    client
        .find(Locator::Id(button))
        .await
        .map_err(err("the search button"))?
        .click()
        .await
        .map_err(err("search"))?;
    client
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(rows))
        .await
        .map_err(err("a row on the page"))?;
    let found = client
        .find_all(Locator::Css(rows))
        .await
        .map_err(err("the rows"))?;
    let mut texts = Vec::new();
    for row in &found {
        texts.push(row.text().await.map_err(err("a row's text"))?);
    }
    Ok(texts)
}

async fn sign_in(client: &fantoccini::Client, addr: SocketAddr) -> Result<(), String> {
    let err = |what: &str| {
        let what = what.to_owned();
        move |e: fantoccini::error::CmdError| format!("{what}: {e}")
    };
    client
        .goto(&format!("http://{addr}/admin"))
        .await
        .map_err(err("load the page"))?;
    let token = client
        .wait()
        .for_element(Locator::Id("token"))
        .await
        .map_err(err("the token field"))?;
    token
        .send_keys(TOKEN)
        .await
        .map_err(err("type the token"))?;
    client
        .find(Locator::Id("sign-in"))
        .await
        .map_err(err("the sign-in button"))?
        .click()
        .await
        .map_err(err("sign in"))
}

async fn drive(client: &fantoccini::Client, addr: SocketAddr) -> Result<(), String> {
    let err = |what: &str| {
        let what = what.to_owned();
        move |e: fantoccini::error::CmdError| format!("{what}: {e}")
    };
    client
        .goto(&format!("http://{addr}/admin"))
        .await
        .map_err(err("load the page"))?;
    let token = client
        .wait()
        .for_element(Locator::Id("token"))
        .await
        .map_err(err("the token field"))?;
    token
        .send_keys(TOKEN)
        .await
        .map_err(err("type the token"))?;
    client
        .find(Locator::Id("sign-in"))
        .await
        .map_err(err("the sign-in button"))?
        .click()
        .await
        .map_err(err("sign in"))?;
    let row = client
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css("#dead-letters tr[data-id]"))
        .await
        .map_err(err("a dead letter on the page"))?;
    let text = row.text().await.map_err(err("the row's text"))?;
    assert!(text.contains("browser-dead-1"), "{text}");
    assert!(text.contains("COURSE_ENROLLMENT"), "{text}");
    let count = client
        .find(Locator::Id("dead-count"))
        .await
        .map_err(err("the count"))?;
    assert_eq!(count.text().await.map_err(err("count text"))?, "(1)");
    let shot = client.screenshot().await.map_err(err("screenshot"))?;
    let target = if std::env::var_os("ALM_UPDATE_SCREENSHOT").is_some() {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/admin-page.png")
    } else {
        std::env::temp_dir().join("alm-admin-page.png")
    };
    std::fs::write(&target, shot).map_err(|e| format!("{}: {e}", target.display()))?;
    assert!(std::fs::metadata(&target).is_ok_and(|m| m.len() > 1000));

    row.find(Locator::Css("button[data-action=replay]"))
        .await
        .map_err(err("the replay button"))?
        .click()
        .await
        .map_err(err("replay"))?;
    // The replay succeeds (the handler fails only once): the list empties.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = client
            .find(Locator::Id("dead-count"))
            .await
            .map_err(err("the count"))?
            .text()
            .await
            .map_err(err("count text"))?;
        if text == "(0)" {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("the dead letter count stayed {text}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let message = client
        .find(Locator::Id("message"))
        .await
        .map_err(err("the message"))?
        .text()
        .await
        .map_err(err("message text"))?;
    assert!(message.starts_with("replayed "), "{message}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_page_shows_a_learners_records() {
    if !browser_available() {
        return;
    }
    let receiver = start(
        "axum_receiver",
        &[
            ("ALM_MODE", ""),
            ("ALM_ON_MALFORMED", ""),
            ("ALM_ADMIN_TOKEN", TOKEN),
        ],
    );
    let addr = receiver.addr;
    let body = envelope(
        4242,
        &[
            learner_event("l-1", "COURSE_ENROLLMENT", 1_750_000_000, 77, "course:9_1"),
            learner_event("l-2", "COURSE_COMPLETED", 1_750_000_100, 77, "course:9_1"),
            learner_event("l-3", "COURSE_ENROLLMENT", 1_750_000_200, 77, "course:8_1"),
            learner_event("l-4", "COURSE_ENROLLMENT", 1_750_000_300, 78, "course:8_1"),
        ],
    );
    assert_eq!(signed_post(addr, &body).0, 202);
    // The inbox decides after the 202: wait until the table has them.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, body) = request_to(
            addr,
            "GET",
            "/admin/records?userId=77",
            &[("authorization", format!("Bearer {TOKEN}"))],
            b"",
        );
        let list: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        if list.as_array().is_some_and(|l| l.len() == 2) {
            break;
        }
        assert!(Instant::now() < deadline, "the records never came: {body}");
        std::thread::sleep(Duration::from_millis(50));
    }

    let (_driver, client) = session().await;
    let result = search(&client, addr).await;
    let _ = client.close().await;
    result.unwrap();
}

async fn search(client: &fantoccini::Client, addr: SocketAddr) -> Result<(), String> {
    let err = |what: &str| {
        let what = what.to_owned();
        move |e: fantoccini::error::CmdError| format!("{what}: {e}")
    };
    sign_in(client, addr).await?;
    let user = client
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css("#learner-user"))
        .await
        .map_err(err("the user id field"))?;
    client
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css("#dashboard:not([hidden])"))
        .await
        .map_err(err("the dashboard"))?;
    user.send_keys("77")
        .await
        .map_err(err("type the user id"))?;
    let texts = search_rows(client, "learner-search", "#learners tr[data-instance]").await?;
    assert_eq!(texts.len(), 2, "{texts:?}");
    let completed = texts.iter().find(|t| t.contains("course:9_1")).unwrap();
    assert!(completed.contains("completed"), "{completed}");
    assert!(completed.contains("100 %"), "{completed}");
    assert!(completed.contains("COURSE_COMPLETED"), "{completed}");
    let enrolled = texts.iter().find(|t| t.contains("course:8_1")).unwrap();
    assert!(enrolled.contains("enrolled"), "{enrolled}");

    // A user without records says so.
    user.clear().await.map_err(err("clear the field"))?;
    user.send_keys("5").await.map_err(err("type another id"))?;
    client
        .find(Locator::Id("learner-search"))
        .await
        .map_err(err("the search button"))?
        .click()
        .await
        .map_err(err("search again"))?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = client
            .find(Locator::Id("learners"))
            .await
            .map_err(err("the table"))?
            .text()
            .await
            .map_err(err("the table's text"))?;
        if text.contains("no records for user 5") {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("the table shows {text}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// The event search: the example receiver archives what its workers
/// complete (`ALM_ARCHIVE_DAYS` by default); the page finds a learner's
/// events with their decisions, a failed one with its reason and error,
/// and says when nothing is archived for a value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_page_searches_the_archive() {
    if !browser_available() {
        return;
    }
    let receiver = start(
        "axum_receiver",
        &[
            ("ALM_MODE", "inbox"),
            ("ALM_ADMIN_TOKEN", TOKEN),
            ("ALM_MAX_ATTEMPTS", "1"),
            ("ALM_HANDLER_FAIL_ON", "arch-2"),
            ("ALM_HANDLER_FAIL_TIMES", "1"),
        ],
    );
    let addr = receiver.addr;
    let body = envelope(
        4246,
        &[
            learner_event(
                "arch-1",
                "COURSE_ENROLLMENT",
                1_750_000_000,
                91,
                "course:9_1",
            ),
            learner_event(
                "arch-2",
                "COURSE_ENROLLMENT",
                1_750_000_100,
                91,
                "course:8_1",
            ),
        ],
    );
    assert_eq!(signed_post(addr, &body).0, 202);
    wait_archived(addr, 91, 2);
    let (_driver, client) = session().await;
    let result = drive_events(&client, addr).await;
    let _ = client.close().await;
    result.unwrap();
}

async fn drive_events(client: &fantoccini::Client, addr: SocketAddr) -> Result<(), String> {
    let err = |what: &str| {
        let what = what.to_owned();
        move |e: fantoccini::error::CmdError| format!("{what}: {e}")
    };
    sign_in(client, addr).await?;
    client
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css("#dashboard:not([hidden])"))
        .await
        .map_err(err("the dashboard"))?;
    let value = client
        .find(Locator::Id("events-value"))
        .await
        .map_err(err("the search field"))?;
    value
        .send_keys("91")
        .await
        .map_err(err("type the user id"))?;
    let texts = search_rows(client, "events-search", "#events tr[data-event]").await?;
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(
        texts[0].contains("arch-1") && texts[0].contains("processed"),
        "{texts:?}"
    );
    assert!(texts[1].contains("arch-2"), "{texts:?}");
    assert!(texts[1].contains("failed (dead_lettered)"), "{texts:?}");
    assert!(texts[1].contains("4246"), "the account: {texts:?}");

    // An event id nothing archived says so.
    client
        .find(Locator::Css("#events-by option[value=eventId]"))
        .await
        .map_err(err("the event id choice"))?
        .click()
        .await
        .map_err(err("choose event id"))?;
    value.clear().await.map_err(err("clear the field"))?;
    value
        .send_keys("nowhere")
        .await
        .map_err(err("type an id"))?;
    client
        .find(Locator::Id("events-search"))
        .await
        .map_err(err("the search button"))?
        .click()
        .await
        .map_err(err("search again"))?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = client
            .find(Locator::Id("events"))
            .await
            .map_err(err("the table"))?
            .text()
            .await
            .map_err(err("the table's text"))?;
        if text.contains("no archived events for nowhere") {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("the table shows {text}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A replay from the page: a rerun of account 4248's archived range
/// started with the form, watched until it is done (one event matched,
/// one done); then, the account paused so its step waits, a second replay
/// is seen running and cancelled with its button.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_page_replays_a_range_and_cancels_a_replay() {
    if !browser_available() {
        return;
    }
    let receiver = start(
        "axum_receiver",
        &[("ALM_MODE", "inbox"), ("ALM_ADMIN_TOKEN", TOKEN)],
    );
    let addr = receiver.addr;
    let event = learner_event(
        "replay-1",
        "COURSE_ENROLLMENT",
        1_750_000_000,
        93,
        "course:9_1",
    );
    assert_eq!(signed_post(addr, &envelope(4248, &[event])).0, 202);
    wait_archived(addr, 93, 1);
    let (_driver, client) = session().await;
    let result = drive_replays(&client, addr).await;
    let _ = client.close().await;
    result.unwrap();
}

/// The state of the newest replay row once it reads `want` (20 s at
/// most), with the row's text.
async fn newest_replay(client: &fantoccini::Client, want: &str) -> Result<String, String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let script = "const r = document.querySelector('#replays tr[data-replay]'); \
                  return r ? [r.dataset.state, r.textContent] : null;";
    loop {
        let row = client.execute(script, vec![]).await;
        let row = row.map_err(|e| format!("the replay rows: {e}"))?;
        if row[0] == want {
            return Ok(row[1].as_str().unwrap_or_default().to_owned());
        }
        if Instant::now() > deadline {
            return Err(format!("the newest replay is {row}, expected {want}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn drive_replays(client: &fantoccini::Client, addr: SocketAddr) -> Result<(), String> {
    let err = |what: &str| {
        let what = what.to_owned();
        move |e: fantoccini::error::CmdError| format!("{what}: {e}")
    };
    sign_in(client, addr).await?;
    client
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css("#replays-section:not([hidden])"))
        .await
        .map_err(err("the replays section"))?;
    let rfc = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let now = time::OffsetDateTime::now_utc();
    let fields = [
        ("replay-from", rfc(now - time::Duration::hours(1))),
        ("replay-to", rfc(now + time::Duration::hours(1))),
        ("replay-account", "4248".to_owned()),
    ];
    for (id, text) in &fields {
        let field = client.find(Locator::Id(id)).await.map_err(err(id))?;
        field.send_keys(text).await.map_err(err(id))?;
    }
    client
        .find(Locator::Css("#replay-mode option[value=rerun]"))
        .await
        .map_err(err("the rerun mode"))?
        .click()
        .await
        .map_err(err("choose rerun"))?;
    let start = client
        .find(Locator::Id("replay-start"))
        .await
        .map_err(err("the start button"))?;
    start.click().await.map_err(err("start a replay"))?;
    let done = newest_replay(client, "done").await?;
    assert!(done.contains("rerun") && done.contains("done11"), "{done}");

    // Held behind a pause, the next replay's step waits: cancel it.
    let auth = [("authorization", format!("Bearer {TOKEN}"))];
    let (status, _) = request_to(addr, "POST", "/admin/accounts/4248/pause", &auth, b"");
    assert_eq!(status, 204);
    start.click().await.map_err(err("start another"))?;
    newest_replay(client, "running").await?;
    client
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(
            "#replays tr[data-state=running] button[data-action=cancel]",
        ))
        .await
        .map_err(err("the cancel button"))?
        .click()
        .await
        .map_err(err("cancel"))?;
    let cancelled = newest_replay(client, "cancelled").await?;
    assert!(
        cancelled.contains("cancelled10"),
        "matched 1, done 0: {cancelled}"
    );
    let (status, _) = request_to(addr, "POST", "/admin/accounts/4248/resume", &auth, b"");
    assert_eq!(status, 204);
    Ok(())
}

/// Waits (20 s at most) until the archive holds `events` events of
/// learner `user`.
fn wait_archived(addr: SocketAddr, user: u64, events: usize) {
    let auth = [("authorization", format!("Bearer {TOKEN}"))];
    let path = format!("/admin/events?userId={user}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, body) = request_to(addr, "GET", &path, &auth, b"");
        let list: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        if list.as_array().is_some_and(|l| l.len() == events) {
            return;
        }
        assert!(Instant::now() < deadline, "never archived: {body}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
