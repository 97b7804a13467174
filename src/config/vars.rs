//! The variables, read once into a map (an empty value is unset), and the
//! parsers every group shares.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use super::ConfigError;

/// The variables a configuration is read from. Never printed: values may
/// be secrets.
pub(super) struct Vars(BTreeMap<String, String>);

impl Vars {
    pub(super) fn new<K: Into<String>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self(
            vars.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .filter(|(_, v)| !v.is_empty())
                .collect(),
        )
    }

    /// The value, when set and not empty.
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub(super) fn string(&self, name: &str) -> Option<String> {
        self.get(name).map(str::to_owned)
    }

    /// The value, or an error saying it is needed `why`.
    pub(super) fn required(&self, name: &'static str, why: &str) -> Result<&str, ConfigError> {
        self.get(name)
            .ok_or_else(|| ConfigError::invalid(name, format!("must be set {why}")))
    }

    /// A number greater than zero (`default` when unset); the value is
    /// quoted in the error, so never use it for a secret.
    pub(super) fn positive<T: FromStr + PartialOrd + Default>(
        &self,
        name: &'static str,
        default: T,
        what: &str,
    ) -> Result<T, ConfigError> {
        Ok(self.positive_opt(name, what)?.unwrap_or(default))
    }

    /// [`Vars::positive`] without a default.
    pub(super) fn positive_opt<T: FromStr + PartialOrd + Default>(
        &self,
        name: &'static str,
        what: &str,
    ) -> Result<Option<T>, ConfigError> {
        self.get(name)
            .map(|v| {
                v.trim()
                    .parse()
                    .ok()
                    .filter(|n| *n > T::default())
                    .ok_or_else(|| {
                        ConfigError::invalid(name, format!("{v:?} is not a positive {what}"))
                    })
            })
            .transpose()
    }

    /// A positive number of milliseconds.
    pub(super) fn millis(
        &self,
        name: &'static str,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        let default = u64::try_from(default.as_millis()).unwrap_or(u64::MAX);
        Ok(Duration::from_millis(self.positive(
            name,
            default,
            "number of milliseconds",
        )?))
    }

    /// One of `choices` (`default` when unset).
    pub(super) fn choice<T: Copy>(
        &self,
        name: &'static str,
        default: T,
        choices: &[(&str, T)],
    ) -> Result<T, ConfigError> {
        let Some(v) = self.get(name) else {
            return Ok(default);
        };
        choices
            .iter()
            .find(|(word, _)| *word == v)
            .map(|(_, value)| *value)
            .ok_or_else(|| {
                let words: Vec<&str> = choices.iter().map(|(word, _)| *word).collect();
                ConfigError::invalid(name, format!("{v:?}: expected {}", words.join(" or ")))
            })
    }
}

/// A store or inbox URL as logs and `Debug` show it: its scheme alone
/// (the rest may hold a password).
pub(super) fn scheme(url: &str) -> &str {
    if url.is_empty() || url == "memory" {
        return "memory";
    }
    match url.split_once(':') {
        Some((scheme, _)) => crate::url_scheme::shown(scheme),
        None => "(not a URL)",
    }
}
