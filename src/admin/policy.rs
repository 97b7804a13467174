//! The admin page's `Content-Security-Policy`: only its own inline script
//! and styles run (by their SHA-256), it connects only to the API beside
//! it, and no other site may frame it.

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::HeaderValue;
use sha2::{Digest, Sha256};

/// The text between `open` and `close` in the page.
fn between<'a>(page: &'a str, open: &str, close: &str) -> &'a str {
    page.split_once(open)
        .and_then(|(_, rest)| rest.split_once(close))
        .map_or("", |(inside, _)| inside)
}

fn hash(text: &str) -> String {
    format!(
        "'sha256-{}'",
        STANDARD.encode(Sha256::digest(text.as_bytes()))
    )
}

/// The policy, computed once from [`PAGE_HTML`](super::PAGE_HTML).
pub(super) fn csp() -> HeaderValue {
    static POLICY: OnceLock<HeaderValue> = OnceLock::new();
    POLICY
        .get_or_init(|| {
            let page = super::PAGE_HTML;
            let policy = format!(
                "default-src 'none'; script-src {}; style-src {}; connect-src 'self'; \
                 frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
                hash(between(page, "<script>", "</script>")),
                hash(between(page, "<style>", "</style>")),
            );
            HeaderValue::from_str(&policy).expect("base64 and ASCII")
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_names_the_page_script_and_forbids_frames() {
        let policy = csp();
        let policy = policy.to_str().unwrap();
        assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
        assert!(policy.contains("script-src 'sha256-"), "{policy}");
        assert!(!policy.contains("unsafe-inline"), "{policy}");
        assert!(!between(super::super::PAGE_HTML, "<script>", "</script>").is_empty());
    }
}
