//! The admin page is self-contained and calls exactly the admin API.

use alm_webhooks::admin::PAGE_HTML;

#[test]
fn the_page_loads_nothing_from_elsewhere() {
    for outside in ["http://", "https://", "src=", "@import", "<link"] {
        assert!(
            !PAGE_HTML.contains(outside),
            "the page refers to {outside:?}"
        );
    }
}

#[test]
fn the_page_calls_the_admin_api_relative_to_itself() {
    for call in [
        r#"api("GET", "inbox")"#,
        r#"api("GET", "decisions")"#,
        r#"api("GET", listing("dead-letters"))"#,
        r#"api("GET", listing("quarantine"))"#,
        // A listing's next page starts after the last id shown.
        r#"kind + "?after=" + after[kind]"#,
        r#"after[kind] = items[items.length - 1].id"#,
        r#"act("POST", kind + "/" + encodeURIComponent(id) + "/replay""#,
        r#"act("DELETE", kind + "/" + encodeURIComponent(id)"#,
        r#""Authorization": "Bearer " + token"#,
        // The levers: pause and resume an account (or all), bulk actions.
        r#"act("POST", "accounts/" + account + "/pause""#,
        r#"act("POST", "accounts/all/pause""#,
        r#""accounts/" + encodeURIComponent(scope) + "/resume""#,
        r#"api("POST", kind + "/" + action, filter)"#,
    ] {
        assert!(PAGE_HTML.contains(call), "the page does not make {call}");
    }
}

#[test]
fn the_page_writes_data_as_text_never_as_html() {
    // Event data and bodies come from outside: they go through textContent.
    assert!(!PAGE_HTML.contains("innerHTML"));
    assert!(PAGE_HTML.contains("pre.textContent = d.preview"));
    assert!(PAGE_HTML.contains("pre.textContent = q.preview"));
    // The whole event or body, fetched by id on demand, as text too.
    assert!(PAGE_HTML.contains("pre.textContent = text(await api(\"GET\", kind + \"/\""));
}
