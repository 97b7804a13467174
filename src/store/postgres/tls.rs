//! TLS to PostgreSQL, as libpq spells it in the connection string:
//! `sslmode` (`disable`, `prefer`, `require`, `verify-ca`, `verify-full`)
//! and `sslrootcert` (a PEM file of trusted certificates).

use native_tls::{Certificate, TlsConnector};
use postgres_native_tls::MakeTlsConnector;
use tokio_postgres::config::SslMode;

use super::pg_error;
use crate::store::StoreError;

/// The TLS settings taken out of a connection string.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct TlsSettings {
    /// `sslmode`, if given.
    mode: Option<String>,
    /// `sslrootcert`, if given.
    root_cert: Option<String>,
}

/// Removes `sslmode` and `sslrootcert` from `url` (either form: a URL's
/// query, or `key=value` words), returning the rest and the settings.
pub(super) fn split_tls(url: &str) -> (String, TlsSettings) {
    if url.contains("://") {
        let (rest, mut values) =
            crate::store::url_params::take_params(url, &["sslmode", "sslrootcert"]);
        let root_cert = values.pop().flatten();
        let mode = values.pop().flatten();
        return (rest, TlsSettings { mode, root_cert });
    }
    // libpq's `key=value` words: not a URL.
    let mut settings = TlsSettings::default();
    let rest = url
        .split_whitespace()
        .filter(|word| match word.split_once('=') {
            Some(("sslmode", v)) => {
                settings.mode = Some(v.to_owned());
                false
            }
            Some(("sslrootcert", v)) => {
                settings.root_cert = Some(v.to_owned());
                false
            }
            _ => true,
        })
        .collect::<Vec<_>>()
        .join(" ");
    (rest, settings)
}

/// How to connect: without TLS, or with this connector.
pub(crate) enum Tls {
    Off,
    On(MakeTlsConnector),
}

impl TlsSettings {
    /// The connector and the mode for `tokio-postgres`, like libpq: no
    /// `sslmode` (or `disable`) is plain TCP; `prefer` tries TLS and falls
    /// back; `require` insists on TLS, and verifies the server's
    /// certificate chain only if `sslrootcert` is given; `verify-ca`
    /// verifies the chain (against `sslrootcert` alone when given, else the
    /// system's roots); `verify-full` the chain and the host name.
    pub(super) fn connector(&self) -> Result<(SslMode, Tls), StoreError> {
        let (mode, verify_chain, verify_host) = match self.mode.as_deref() {
            None | Some("disable") => return Ok((SslMode::Disable, Tls::Off)),
            Some("prefer") => (SslMode::Prefer, self.root_cert.is_some(), false),
            Some("require") => (SslMode::Require, self.root_cert.is_some(), false),
            Some("verify-ca") => (SslMode::Require, true, false),
            Some("verify-full") => (SslMode::Require, true, true),
            Some(other) => {
                return Err(StoreError::new(format!(
                    "postgres: unknown sslmode {other:?} (expected disable, prefer, require, \
                     verify-ca or verify-full)"
                )));
            }
        };
        let mut builder = TlsConnector::builder();
        builder
            .danger_accept_invalid_certs(!verify_chain)
            .danger_accept_invalid_hostnames(!verify_host);
        if let Some(path) = &self.root_cert {
            let pem = std::fs::read(path)
                .map_err(|e| pg_error(&format!("cannot read sslrootcert {path}"), e))?;
            let cert = Certificate::from_pem(&pem).map_err(|e| {
                pg_error(&format!("sslrootcert {path} is not a PEM certificate"), e)
            })?;
            // As libpq: the file is the only trust anchor.
            builder
                .disable_built_in_roots(true)
                .add_root_certificate(cert);
        }
        let connector = builder
            .build()
            .map_err(|e| pg_error("cannot set up TLS", e))?;
        Ok((mode, Tls::On(MakeTlsConnector::new(connector))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_settings_come_out_of_both_forms() {
        let (rest, tls) = split_tls("postgres://u@h/db?sslmode=verify-ca&sslrootcert=/r.pem&x=1");
        assert_eq!(rest, "postgres://u@h/db?x=1");
        assert_eq!(tls.mode.as_deref(), Some("verify-ca"));
        assert_eq!(tls.root_cert.as_deref(), Some("/r.pem"));
        let (rest, tls) = split_tls("host=h sslmode=require user=u");
        assert_eq!(rest, "host=h user=u");
        assert_eq!(tls.mode.as_deref(), Some("require"));
        let (rest, tls) = split_tls("postgres://u@h/db");
        assert_eq!(
            (rest.as_str(), tls),
            ("postgres://u@h/db", TlsSettings::default())
        );
        assert!(
            TlsSettings {
                mode: Some("bogus".into()),
                root_cert: None
            }
            .connector()
            .is_err()
        );
    }
}
