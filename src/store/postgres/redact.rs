//! Keeping passwords out of errors and `Debug`.

use std::fmt;

use tokio_postgres::config::Host;

/// `host:port/dbname` of a parsed configuration: what errors and `Debug` may
/// show (no user, no password).
pub(crate) fn describe(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(host)) => host.clone(),
        #[cfg(unix)]
        Some(Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config.get_dbname().unwrap_or("(default)");
    format!("{host}:{port}/{db}")
}

/// The password written in a connection string, if one can be found
/// (`scheme://user:password@…` or `password=…`), to scrub it from error text
/// even when the string does not parse.
pub(super) fn password_in(url: &str) -> Option<&str> {
    if let Some((_, rest)) = url.split_once("://") {
        let authority = rest.split(['/', '?']).next().unwrap_or(rest);
        let userinfo = authority.rsplit_once('@')?.0;
        let password = userinfo.split_once(':')?.1;
        return (!password.is_empty()).then_some(password);
    }
    let start = url.find("password=")? + "password=".len();
    let rest = &url[start..];
    let password = match rest.strip_prefix('\'') {
        Some(quoted) => quoted.split('\'').next().unwrap_or(quoted),
        None => rest.split_whitespace().next().unwrap_or(rest),
    };
    (!password.is_empty()).then_some(password)
}

/// An error's text (with its causes), with any password scrubbed. Used for
/// the errors of parsing and connecting, whose text comes from the URL.
#[derive(Debug)]
pub(crate) struct Scrubbed(String);

impl fmt::Display for Scrubbed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Scrubbed {}

pub(crate) fn scrubbed(error: &dyn std::error::Error, url: &str) -> Scrubbed {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    if let Some(password) = password_in(url) {
        text = text.replace(password, "***");
    }
    Scrubbed(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_found() {
        assert_eq!(password_in("postgres://u:pw@h/db"), Some("pw"));
        assert_eq!(password_in("postgres://u:p@w@h:1/db?x=1"), Some("p@w"));
        assert_eq!(password_in("postgres://u@h/db"), None);
        assert_eq!(password_in("host=h password=pw user=u"), Some("pw"));
        assert_eq!(password_in("host=h password='p w' user=u"), Some("p w"));
        assert_eq!(password_in("host=h"), None);
    }
}
