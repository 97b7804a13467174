//! The signing secret ALM lets an admin download as a JSON file.

use crate::Secret;

/// Field names tried, in order, when no field is named: ALM does not publish
/// the file's layout.
///
/// ```
/// use alm_webhooks::{ExposeSecret, Secret};
/// use alm_webhooks::auth::DEFAULT_SECRET_FIELDS;
/// assert_eq!(DEFAULT_SECRET_FIELDS[0], "signingSecret");
/// // Found one object down, under one of the default names:
/// let file = br#"{"webhook":{"name":"crm","hmacKey":"k3y"}}"#;
/// assert_eq!(Secret::from_alm_secret_file(file, None).unwrap().expose_secret(), b"k3y");
/// ```
pub const DEFAULT_SECRET_FIELDS: &[&str] = &[
    "signingSecret",
    "secret",
    "signatureSecret",
    "signingKey",
    "key",
    "hmacKey",
    "value",
];

/// Why no secret could be read from the file. Lists field names only, never
/// values.
///
/// ```
/// use alm_webhooks::Secret;
/// use alm_webhooks::auth::SecretFileError;
/// let err = Secret::from_alm_secret_file(b"[1, 2]", None).unwrap_err();
/// assert_eq!(err, SecretFileError::NotAnObject);
/// let err = Secret::from_alm_secret_file(br#"{"pwd":"p4ss"}"#, None).unwrap_err();
/// assert!(matches!(&err, SecretFileError::NoSecretField { found, .. } if found == &["pwd"]));
/// assert!(!err.to_string().contains("p4ss"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretFileError {
    /// The file is not a JSON object.
    #[error("the secret file is not a JSON object")]
    NotAnObject,
    /// No usable field: names the fields looked for and the fields found.
    #[error("no secret in the file: looked for {wanted:?}, found fields {found:?}")]
    NoSecretField {
        /// The names looked for.
        wanted: Vec<String>,
        /// The names present in the file (top level and one level down).
        found: Vec<String>,
    },
}

impl Secret {
    /// Reads the secret from ALM's downloaded JSON file: from `field` if
    /// given, otherwise from the first of [`DEFAULT_SECRET_FIELDS`] present,
    /// at the top level or one object down. The value must be a non-empty
    /// string.
    ///
    /// ```
    /// use alm_webhooks::{ExposeSecret, Secret};
    /// let file = br#"{"name":"CRM sync","signingSecret":"s3cr3t"}"#;
    /// let secret = Secret::from_alm_secret_file(file, None).unwrap();
    /// assert_eq!(secret.expose_secret(), b"s3cr3t");
    /// let err = Secret::from_alm_secret_file(br#"{"token":"s3cr3t"}"#, None).unwrap_err();
    /// assert!(err.to_string().contains("\"token\""));
    /// assert!(!err.to_string().contains("s3cr3t"));
    /// ```
    ///
    /// # Errors
    ///
    /// [`SecretFileError`], listing the field names found.
    pub fn from_alm_secret_file(
        json: &[u8],
        field: Option<&str>,
    ) -> Result<Secret, SecretFileError> {
        let value: serde_json::Value =
            serde_json::from_slice(json).map_err(|_| SecretFileError::NotAnObject)?;
        let object = value.as_object().ok_or(SecretFileError::NotAnObject)?;
        let wanted: Vec<&str> = match field {
            Some(f) => vec![f],
            None => DEFAULT_SECRET_FIELDS.to_vec(),
        };
        let nested = object.values().filter_map(serde_json::Value::as_object);
        for map in std::iter::once(object).chain(nested) {
            for name in &wanted {
                if let Some(secret) = map.get(*name).and_then(serde_json::Value::as_str) {
                    if !secret.is_empty() {
                        return Ok(Secret::from(secret));
                    }
                }
            }
        }
        let mut found: Vec<String> = object.keys().cloned().collect();
        for (outer, inner) in object {
            if let Some(inner) = inner.as_object() {
                found.extend(inner.keys().map(|k| format!("{outer}.{k}")));
            }
        }
        Err(SecretFileError::NoSecretField {
            wanted: wanted.iter().map(|s| (*s).to_owned()).collect(),
            found,
        })
    }
}
