//! How an error names the store or inbox URL it was given: by its scheme
//! alone, and only when that looks like a scheme. A URL (or a libpq
//! `host=… password=…` string) can hold a password; it is never echoed.

/// `scheme` when it is a plausible URL scheme (letters, digits, `+`, `-`,
/// `.`, at most 32), else a description that quotes nothing.
pub(crate) fn shown(scheme: &str) -> &str {
    let plausible = !scheme.is_empty()
        && scheme.len() <= 32
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if plausible { scheme } else { "(not a URL)" }
}

#[cfg(test)]
mod tests {
    use super::shown;

    #[test]
    fn only_a_scheme_is_shown() {
        assert_eq!(shown("mysql"), "mysql");
        assert_eq!(shown("host=db password=hunter2 user=alm"), "(not a URL)");
        assert_eq!(shown("host=db password=pa"), "(not a URL)");
        assert_eq!(shown(""), "(not a URL)");
    }
}
