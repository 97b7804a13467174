//! The hash under an HMAC signature.

use std::fmt;
use std::str::FromStr;

use super::signature_text::strip_prefix_ignore_case;

/// The hash under the HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum SignatureAlgorithm {
    /// HMAC-SHA1, 20-byte tags (older senders only).
    Sha1,
    /// HMAC-SHA256 (the default), 32-byte tags.
    #[default]
    Sha256,
    /// HMAC-SHA512, 64-byte tags.
    Sha512,
}

impl SignatureAlgorithm {
    /// Every HMAC hash, in the order detection tries them.
    pub const ALL: [SignatureAlgorithm; 3] = [Self::Sha1, Self::Sha256, Self::Sha512];

    /// The name used in configuration: `hmac-sha256` and so on.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha1 => "hmac-sha1",
            Self::Sha256 => "hmac-sha256",
            Self::Sha512 => "hmac-sha512",
        }
    }

    /// The optional prefix senders put before a hex tag (`sha256=`).
    pub(crate) fn prefix(self) -> &'static str {
        match self {
            Self::Sha1 => "sha1=",
            Self::Sha256 => "sha256=",
            Self::Sha512 => "sha512=",
        }
    }

    /// The length of a tag in bytes.
    pub fn tag_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha512 => 64,
        }
    }
}

impl fmt::Display for SignatureAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown algorithm name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an HMAC algorithm: expected hmac-sha1, hmac-sha256 or hmac-sha512")]
pub struct UnknownAlgorithm(String);

impl FromStr for SignatureAlgorithm {
    type Err = UnknownAlgorithm;

    /// `hmac-sha256` or `sha256` (any case), and so on.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bare = strip_prefix_ignore_case(s, "hmac-").unwrap_or(s);
        Self::ALL
            .into_iter()
            .find(|a| a.as_str()[5..].eq_ignore_ascii_case(bare))
            .ok_or_else(|| UnknownAlgorithm(s.to_owned()))
    }
}
