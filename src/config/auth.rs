//! `ALM_AUTH` and the variables each method needs.

use std::time::Duration;

use super::ConfigError;
use super::vars::Vars;
use crate::auth::{BasicAuth, SignatureScheme, StandardWebhooksAuth};
use crate::{Authentication, Secret};

/// The variables of a signature scheme ([`SignatureScheme::from_env`]).
const SCHEME: [&str; 6] = [
    "ALM_SIGNATURE_HEADER",
    "ALM_SIGNATURE_ALGORITHM",
    "ALM_SIGNATURE_PREFIX",
    "ALM_SIGNED_CONTENT",
    "ALM_TIMESTAMP_HEADER",
    "ALM_SECRET_ENCODING",
];

/// `ALM_AUTH` (default `none`) and what it needs.
pub(super) fn authentication(vars: &Vars) -> Result<Authentication, ConfigError> {
    const AUTH: &[(&str, &str)] = &[
        ("none", "none"),
        ("basic", "basic"),
        ("signature", "signature"),
        ("standard", "standard"),
    ];
    Ok(match vars.choice("ALM_AUTH", "none", AUTH)? {
        "basic" => {
            let user = vars.required("ALM_BASIC_USER", "for ALM_AUTH=basic")?;
            let password = vars.required("ALM_BASIC_PASSWORD", "for ALM_AUTH=basic")?;
            Authentication::Basic(BasicAuth::new(user, password.to_owned()))
        }
        "signature" => Authentication::Signature(signature(vars)?),
        "standard" => Authentication::StandardWebhooks(standard(vars)?),
        _ => Authentication::None,
    })
}

fn signature(vars: &Vars) -> Result<crate::auth::SignatureAuth, ConfigError> {
    let scheme = SignatureScheme::from_env(|name| vars.string(name))
        .map_err(|message| ConfigError::from_message(message, &SCHEME))?;
    let (secret, source) = match (vars.get("ALM_SIGNING_SECRET"), vars.get("ALM_SECRET_FILE")) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::invalid(
                "ALM_SIGNING_SECRET",
                "set ALM_SIGNING_SECRET or ALM_SECRET_FILE, not both",
            ));
        }
        (Some(secret), None) => (Secret::from(secret.to_owned()), "ALM_SIGNING_SECRET"),
        (None, Some(path)) => (secret_file(vars, path)?, "ALM_SECRET_FILE"),
        (None, None) => {
            return Err(ConfigError::invalid(
                "ALM_SIGNING_SECRET",
                "ALM_SIGNING_SECRET or ALM_SECRET_FILE must be set for ALM_AUTH=signature",
            ));
        }
    };
    let mut auth = scheme
        .auth(&secret)
        .map_err(|e| ConfigError::invalid(source, e.to_string()))?;
    if let Some(v) = vars.get("ALM_TIMESTAMP_TOLERANCE_SECS") {
        let secs = v.trim().parse().map_err(|_| {
            ConfigError::invalid(
                "ALM_TIMESTAMP_TOLERANCE_SECS",
                format!("{v:?} is not a number of seconds"),
            )
        })?;
        auth = auth.with_tolerance(Duration::from_secs(secs));
    }
    Ok(auth)
}

/// The secret in ALM's downloaded file (its path is shown, never its
/// content).
fn secret_file(vars: &Vars, path: &str) -> Result<Secret, ConfigError> {
    let bad = |e: &dyn std::fmt::Display| {
        ConfigError::invalid("ALM_SECRET_FILE", format!("{path:?}: {e}"))
    };
    let json = std::fs::read(path).map_err(|e| bad(&e))?;
    Secret::from_alm_secret_file(&json, vars.get("ALM_SECRET_FIELD")).map_err(|e| bad(&e))
}

/// `ALM_AUTH=standard`: one or several space-separated keys.
fn standard(vars: &Vars) -> Result<StandardWebhooksAuth, ConfigError> {
    let keys = vars.required("ALM_SIGNING_SECRET", "for ALM_AUTH=standard")?;
    let bad =
        |e: crate::auth::InvalidSecret| ConfigError::invalid("ALM_SIGNING_SECRET", e.to_string());
    let mut keys = keys.split_whitespace();
    let first = keys
        .next()
        .ok_or_else(|| ConfigError::invalid("ALM_SIGNING_SECRET", "holds no key"))?;
    let mut auth = StandardWebhooksAuth::new(first).map_err(bad)?;
    for key in keys {
        auth = auth.also_accept(key).map_err(bad)?;
    }
    Ok(auth)
}
