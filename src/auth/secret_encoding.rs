//! How the secret an admin holds becomes the key bytes a signature uses.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

use crate::Secret;

/// How a secret's text is turned into key bytes.
///
/// ```
/// use alm_webhooks::{ExposeSecret, Secret};
/// use alm_webhooks::auth::SecretEncoding;
/// let key = SecretEncoding::Hex.decode(&Secret::from("616263")).unwrap();
/// assert_eq!(key.expose_secret(), b"abc");
/// let key = SecretEncoding::Whsec.decode(&Secret::from("whsec_YWJj")).unwrap();
/// assert_eq!(key.expose_secret(), b"abc");
/// assert_eq!("base64".parse::<SecretEncoding>().unwrap(), SecretEncoding::Base64);
/// assert!(SecretEncoding::Hex.decode(&Secret::from("xyz")).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum SecretEncoding {
    /// The text's bytes, unchanged (`as-given`; the default).
    #[default]
    AsGiven,
    /// Base64, standard or URL-safe, padded or not (`base64`).
    Base64,
    /// Hex of either case (`hex`).
    Hex,
    /// `whsec_` then base64, as Standard Webhooks writes secrets (`whsec`).
    Whsec,
    /// `whpk_` then base64, as Standard Webhooks writes ed25519 public keys
    /// (`whpk`).
    Whpk,
}

/// Why a secret could not be decoded. Never shows the secret.
///
/// ```
/// use alm_webhooks::Secret;
/// use alm_webhooks::auth::SecretEncoding;
/// let err = SecretEncoding::Whsec.decode(&Secret::from("hunter2")).unwrap_err();
/// assert_eq!(err.to_string(), "the secret is not `whsec_` followed by base64 (or decodes to nothing)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the secret is not {expected} (or decodes to nothing)")]
pub struct SecretEncodingError {
    expected: &'static str,
}

impl SecretEncoding {
    /// Every encoding, in the order detection tries them.
    ///
    /// ```
    /// use alm_webhooks::auth::SecretEncoding;
    /// assert_eq!(SecretEncoding::ALL[0], SecretEncoding::default());
    /// ```
    pub const ALL: [SecretEncoding; 5] = [
        Self::AsGiven,
        Self::Base64,
        Self::Hex,
        Self::Whsec,
        Self::Whpk,
    ];

    /// The name used in configuration and by detection.
    ///
    /// ```
    /// use alm_webhooks::auth::SecretEncoding;
    /// assert_eq!(SecretEncoding::AsGiven.as_str(), "as-given");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AsGiven => "as-given",
            Self::Base64 => "base64",
            Self::Hex => "hex",
            Self::Whsec => "whsec",
            Self::Whpk => "whpk",
        }
    }

    /// The key bytes of `secret`.
    ///
    /// # Errors
    ///
    /// [`SecretEncodingError`] when the text is not in this encoding or
    /// decodes to no bytes.
    ///
    /// ```
    /// use alm_webhooks::{ExposeSecret, Secret};
    /// use alm_webhooks::auth::SecretEncoding;
    /// let key = SecretEncoding::Base64.decode(&Secret::from("a2V5")).unwrap();
    /// assert_eq!(key.expose_secret(), b"key");
    /// assert!(SecretEncoding::Base64.decode(&Secret::from("")).is_err(), "nothing is no key");
    /// ```
    pub fn decode(self, secret: &Secret) -> Result<Secret, SecretEncodingError> {
        let text = secret.expose();
        let fail = || SecretEncodingError {
            expected: match self {
                Self::AsGiven => "empty",
                Self::Base64 => "base64",
                Self::Hex => "hex",
                Self::Whsec => "`whsec_` followed by base64",
                Self::Whpk => "`whpk_` followed by base64",
            },
        };
        let bytes = match self {
            Self::AsGiven => Some(text.to_vec()),
            Self::Base64 => base64_any(text),
            Self::Hex => hex(text),
            Self::Whsec => text.strip_prefix(b"whsec_").and_then(base64_any),
            Self::Whpk => text.strip_prefix(b"whpk_").and_then(base64_any),
        };
        match bytes {
            Some(bytes) if !bytes.is_empty() => Ok(Secret::new(bytes)),
            _ => Err(fail()),
        }
    }
}

impl fmt::Display for SecretEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown encoding name.
///
/// ```
/// use alm_webhooks::auth::SecretEncoding;
/// let err = "rot13".parse::<SecretEncoding>().unwrap_err();
/// assert!(err.to_string().starts_with("\"rot13\" is not a secret encoding"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a secret encoding: expected as-given, base64, hex, whsec or whpk")]
pub struct UnknownSecretEncoding(String);

impl FromStr for SecretEncoding {
    type Err = UnknownSecretEncoding;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|e| e.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownSecretEncoding(s.to_owned()))
    }
}

fn base64_any(text: &[u8]) -> Option<Vec<u8>> {
    [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
}

/// Hex of either case, decoded in constant time (`base16ct`): the text is
/// a secret.
fn hex(text: &[u8]) -> Option<Vec<u8>> {
    base16ct::mixed::decode_vec(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_encoding_decodes_its_own_form_only() {
        let s = |t: &str| Secret::from(t);
        assert_eq!(
            SecretEncoding::AsGiven.decode(&s("k")).unwrap().expose(),
            b"k"
        );
        assert!(SecretEncoding::AsGiven.decode(&s("")).is_err());
        for b64 in ["YWJjZA==", "YWJjZA", "-_8", "+/8="] {
            assert!(SecretEncoding::Base64.decode(&s(b64)).is_ok(), "{b64}");
        }
        assert_eq!(
            SecretEncoding::Hex.decode(&s("FF00")).unwrap().expose(),
            [255, 0]
        );
        assert!(SecretEncoding::Hex.decode(&s("+f")).is_err());
        assert!(
            SecretEncoding::Whsec.decode(&s("YWJj")).is_err(),
            "needs the prefix"
        );
        assert!(SecretEncoding::Whpk.decode(&s("whpk_YWJj")).is_ok());
        let err = SecretEncoding::Hex.decode(&s("secret-value")).unwrap_err();
        assert!(!err.to_string().contains("secret-value"));
        for e in SecretEncoding::ALL {
            assert_eq!(e.to_string().parse::<SecretEncoding>().unwrap(), e);
        }
        assert!("rot13".parse::<SecretEncoding>().is_err());
    }
}
