//! The receivers' authentication from the environment.
//!
//! - `ALM_AUTH` = `none` (default; warns) | `basic` | `signature` | `standard`
//! - `basic`: `ALM_BASIC_USER`, `ALM_BASIC_PASSWORD`
//! - `signature`: the secret from `ALM_SIGNING_SECRET` or from ALM's
//!   downloaded file `ALM_SECRET_FILE` (field `ALM_SECRET_FIELD`, found by
//!   itself when unset), and the scheme: `ALM_SIGNATURE_HEADER` (default
//!   `x-alm-signature`), `ALM_SIGNATURE_ALGORITHM` (`hmac-sha256` default,
//!   `hmac-sha1`, `hmac-sha512`, `ed25519`), `ALM_SIGNATURE_PREFIX`,
//!   `ALM_SIGNED_CONTENT` (default `{body}`, e.g. `{x-timestamp}.{body}`),
//!   `ALM_TIMESTAMP_HEADER` (checked within `ALM_TIMESTAMP_TOLERANCE_SECS` of
//!   now, default 300),
//!   `ALM_SECRET_ENCODING` (`as-given` default, `base64`, `hex`, `whsec`,
//!   `whpk`). `detect_signature` prints these.
//! - `standard`: `ALM_SIGNING_SECRET` holds one or several space-separated
//!   keys: `whsec_…` (`v1`), `whpk_…` (`v1a`). (A Standard Webhooks key in a
//!   file: `ALM_AUTH=signature` with the scheme `detect_signature` prints.)
#![allow(dead_code, unreachable_pub)]

use alm_webhooks::auth::{BasicAuth, SignatureScheme, StandardWebhooksAuth};
use alm_webhooks::{Authentication, Secret};

use super::{required, var};

/// Reads `ALM_AUTH` and what it needs.
pub fn from_env() -> Result<Authentication, String> {
    Ok(match var("ALM_AUTH").as_deref().unwrap_or("none") {
        "none" => {
            eprintln!("warning: ALM_AUTH=none: anyone who knows the URL can post deliveries");
            Authentication::None
        }
        "basic" => {
            let user = required("ALM_BASIC_USER", "for ALM_AUTH=basic")?;
            let password = required("ALM_BASIC_PASSWORD", "for ALM_AUTH=basic")?;
            Authentication::Basic(BasicAuth::new(&user, password))
        }
        "signature" => {
            let scheme = SignatureScheme::from_env(var)?;
            let secret = secret("for ALM_AUTH=signature")?;
            let source = if var("ALM_SECRET_FILE").is_some() {
                "ALM_SECRET_FILE"
            } else {
                "ALM_SIGNING_SECRET"
            };
            let mut auth = scheme.auth(&secret).map_err(|e| format!("{source}: {e}"))?;
            if let Some(v) = var("ALM_TIMESTAMP_TOLERANCE_SECS") {
                let secs = v.parse().map_err(|_| {
                    format!("ALM_TIMESTAMP_TOLERANCE_SECS={v:?} is not a number of seconds")
                })?;
                auth = auth.with_tolerance(std::time::Duration::from_secs(secs));
            }
            Authentication::Signature(auth)
        }
        "standard" => {
            let keys = required("ALM_SIGNING_SECRET", "for ALM_AUTH=standard")?;
            let mut keys = keys.split_whitespace();
            let bad = |e| format!("ALM_SIGNING_SECRET: {e}");
            let first = keys.next().ok_or("ALM_SIGNING_SECRET holds no key")?;
            let mut auth = StandardWebhooksAuth::new(first).map_err(bad)?;
            for key in keys {
                auth = auth.also_accept(key).map_err(bad)?;
            }
            Authentication::StandardWebhooks(auth)
        }
        other => {
            return Err(format!(
                "ALM_AUTH={other:?}: expected none, basic, signature or standard"
            ));
        }
    })
}

/// The secret, from `ALM_SIGNING_SECRET` or `ALM_SECRET_FILE` (not both).
fn secret(why: &str) -> Result<Secret, String> {
    match (var("ALM_SIGNING_SECRET"), var("ALM_SECRET_FILE")) {
        (Some(_), Some(_)) => Err("set ALM_SIGNING_SECRET or ALM_SECRET_FILE, not both".to_owned()),
        (Some(secret), None) => Ok(Secret::from(secret)),
        (None, Some(_)) => secret_file(),
        (None, None) => Err(format!(
            "ALM_SIGNING_SECRET or ALM_SECRET_FILE must be set {why}"
        )),
    }
}

/// The secret in ALM's downloaded file.
fn secret_file() -> Result<Secret, String> {
    let path = required("ALM_SECRET_FILE", "")?;
    let json = std::fs::read(&path).map_err(|e| format!("ALM_SECRET_FILE={path:?}: {e}"))?;
    Secret::from_alm_secret_file(&json, var("ALM_SECRET_FIELD").as_deref())
        .map_err(|e| format!("ALM_SECRET_FILE={path:?}: {e}"))
}
