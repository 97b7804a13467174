//! Parameters that ride along in a store URL's query (`?prefix=…`,
//! `?schema=…`, `?sslmode=…`), taken out with the `url` crate before the
//! rest goes to the client library.

/// Removes `name=value` from a URL's query, returning the URL without it and
/// the value (percent-decoded): how a key prefix or schema rides along in
/// `ALM_STORE`. A URL without the parameter, or that does not parse as a
/// URL, comes back unchanged; when a name appears twice, the last one wins.
pub(crate) fn take_param(url: &str, name: &str) -> (String, Option<String>) {
    let (url, mut values) = take_params(url, &[name]);
    (url, values.pop().flatten())
}

/// [`take_param`] for several names at once: their values in the order of
/// `names`.
#[cfg(any(feature = "redis", feature = "postgres"))]
pub(crate) fn take_params(url: &str, names: &[&str]) -> (String, Vec<Option<String>>) {
    let mut values = vec![None; names.len()];
    let Ok(mut parsed) = url::Url::parse(url) else {
        return (url.to_owned(), values);
    };
    let mut kept = Vec::new();
    for (key, value) in parsed.query_pairs() {
        match names.iter().position(|name| *name == key) {
            Some(i) => values[i] = Some(value.into_owned()),
            None => kept.push((key.into_owned(), value.into_owned())),
        }
    }
    if values.iter().all(Option::is_none) {
        return (url.to_owned(), values);
    }
    if kept.is_empty() {
        parsed.set_query(None);
    } else {
        // Percent-encoded, as the client libraries read a URL: the form
        // encoding's `+` for a space would reach them as a `+` (libpq's
        // `options=-c%20…` would become `-c+…`). A `+` of a value is
        // `%2B` here, so every `+` left is a space.
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(kept)
            .finish()
            .replace('+', "%20");
        parsed.set_query(Some(&query));
    }
    (parsed.into(), values)
}

#[cfg(all(test, any(feature = "redis", feature = "postgres")))]
mod tests {
    use super::take_param;

    #[test]
    fn take_param_removes_only_the_named_pair() {
        assert_eq!(
            take_param("redis://h:1/", "prefix"),
            ("redis://h:1/".to_owned(), None)
        );
        assert_eq!(
            take_param("redis://h:1/?prefix=a:b", "prefix"),
            ("redis://h:1/".to_owned(), Some("a:b".to_owned()))
        );
        assert_eq!(
            take_param("postgres://h/db?sslmode=disable&schema=s1", "schema"),
            (
                "postgres://h/db?sslmode=disable".to_owned(),
                Some("s1".to_owned())
            )
        );
    }

    #[test]
    fn take_param_decodes_the_value_and_keeps_urls_it_cannot_read() {
        assert_eq!(
            take_param("redis://h:1/?prefix=alm%2Fprod&db=2&prefix=last", "prefix"),
            ("redis://h:1/?db=2".to_owned(), Some("last".to_owned()))
        );
        assert_eq!(
            take_param("not a url?prefix=x", "prefix"),
            ("not a url?prefix=x".to_owned(), None)
        );
        assert_eq!(
            take_param(
                "postgres://h/db?schema=s&options=-c%20plan_cache_mode%3Dauto&x=a%2Bb",
                "schema"
            ),
            (
                "postgres://h/db?options=-c%20plan_cache_mode%3Dauto&x=a%2Bb".to_owned(),
                Some("s".to_owned())
            )
        );
        assert_eq!(
            take_param("postgres://u:p%40ss@h/db?schema=a%20b", "schema"),
            (
                "postgres://u:p%40ss@h/db".to_owned(),
                Some("a b".to_owned())
            )
        );
    }
}
