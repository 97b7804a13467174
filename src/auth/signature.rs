//! HMAC signatures over the raw body (ALM's "Signature" method).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use http::{HeaderMap, HeaderName};

use super::AuthError;
use super::hmac_key::{Candidates, HmacKey, Tag};
use crate::Secret;

/// The header read by default: `x-alm-signature`. ALM does not publish the
/// name it uses; set yours with [`SignatureAuth::header`].
pub const DEFAULT_SIGNATURE_HEADER: &str = "x-alm-signature";

/// The longest signature header value looked at.
const MAX_HEADER_BYTES: usize = 8192;

/// The hash under the HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SignatureAlgorithm {
    /// HMAC-SHA256 (the default), 32-byte tags.
    #[default]
    Sha256,
    /// HMAC-SHA512, 64-byte tags.
    Sha512,
}

impl SignatureAlgorithm {
    fn prefix(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256=",
            Self::Sha512 => "sha512=",
        }
    }

    fn tag_len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha512 => 64,
        }
    }

    /// The longest base64 text of a tag (padded).
    fn base64_len(self) -> usize {
        self.tag_len().div_ceil(3) * 4
    }
}

/// Checks an HMAC of the exact raw body, keyed with the secret's bytes.
///
/// The header's value may be hex (either case) or base64 (standard or
/// URL-safe, padded or not), optionally prefixed `sha256=` (or `sha512=`),
/// and may carry several signatures separated by commas or spaces; any valid
/// one passes. Several secrets may be configured for rotation. Each secret's
/// HMAC key is prepared once, when it is configured; a check computes one tag
/// per secret and compares it with every candidate in constant time. A
/// candidate must have the full length: an empty or truncated signature never
/// passes.
///
/// ```
/// use alm_webhooks::auth::SignatureAuth;
/// let auth = SignatureAuth::new("It's a Secret to Everybody");
/// let signature = auth.sign(b"Hello, World!");
/// assert_eq!(signature, "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
///
/// let mut headers = http::HeaderMap::new();
/// headers.insert("x-alm-signature", format!("sha256={signature}").parse().unwrap());
/// assert!(auth.verify(&headers, b"Hello, World!").is_ok());
/// assert!(auth.verify(&headers, b"Hello, World?").is_err());
/// ```
#[derive(Clone)]
pub struct SignatureAuth {
    secrets: Vec<Secret>,
    /// `secrets`, keyed for `algorithm`.
    keys: Vec<HmacKey>,
    header: HeaderName,
    algorithm: SignatureAlgorithm,
}

impl fmt::Debug for SignatureAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignatureAuth")
            .field("secrets", &self.secrets.len())
            .field("header", &self.header)
            .field("algorithm", &self.algorithm)
            .finish()
    }
}

impl SignatureAuth {
    /// HMAC-SHA256 with `secret`, read from `x-alm-signature`.
    pub fn new(secret: impl Into<Secret>) -> Self {
        let secret = secret.into();
        let algorithm = SignatureAlgorithm::Sha256;
        Self {
            keys: vec![HmacKey::new(algorithm, secret.expose())],
            secrets: vec![secret],
            header: HeaderName::from_static(DEFAULT_SIGNATURE_HEADER),
            algorithm,
        }
    }

    /// Reads the signature from another header.
    #[must_use]
    pub fn header(mut self, name: HeaderName) -> Self {
        self.header = name;
        self
    }

    /// Uses another hash.
    #[must_use]
    pub fn algorithm(mut self, algorithm: SignatureAlgorithm) -> Self {
        self.algorithm = algorithm;
        self.keys = self
            .secrets
            .iter()
            .map(|s| HmacKey::new(algorithm, s.expose()))
            .collect();
        self
    }

    /// Also accepts signatures made with `secret` (for rotation).
    #[must_use]
    pub fn also_accept(mut self, secret: impl Into<Secret>) -> Self {
        let secret = secret.into();
        self.keys
            .push(HmacKey::new(self.algorithm, secret.expose()));
        self.secrets.push(secret);
        self
    }

    /// The header the signature is read from.
    pub fn header_name(&self) -> &HeaderName {
        &self.header
    }

    /// The signature of `body` under the first secret, as lowercase hex.
    pub fn sign(&self, body: &[u8]) -> String {
        hex(self.keys[0].tag(&[body]).as_bytes())
    }

    /// The signature of `body` under the first secret, as standard base64.
    pub fn sign_base64(&self, body: &[u8]) -> String {
        STANDARD.encode(self.keys[0].tag(&[body]).as_bytes())
    }

    /// Checks the signature header against `body`.
    ///
    /// # Errors
    ///
    /// [`AuthError::MissingHeader`], [`AuthError::Malformed`] (no candidate
    /// decodes to a tag of the right length) or
    /// [`AuthError::SignatureMismatch`].
    pub fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), AuthError> {
        if self.candidates(headers)?.match_any(&self.keys, &[body]) {
            Ok(())
        } else {
            Err(AuthError::SignatureMismatch)
        }
    }

    /// Decodes the candidate tags of every value of the header.
    fn candidates(&self, headers: &HeaderMap) -> Result<Candidates, AuthError> {
        let name = "signature";
        let mut values = headers.get_all(&self.header).iter().peekable();
        if values.peek().is_none() {
            return Err(AuthError::MissingHeader(name));
        }
        let mut out = Candidates::new();
        let mut total = 0usize;
        for value in values {
            total += value.len();
            if total > MAX_HEADER_BYTES {
                return Err(AuthError::Malformed(name));
            }
            let text =
                std::str::from_utf8(value.as_bytes()).map_err(|_| AuthError::Malformed(name))?;
            for part in text.split([',', ' ', '\t']).filter(|p| !p.is_empty()) {
                if out.is_full() {
                    break;
                }
                if let Some(tag) = decode(part, self.algorithm) {
                    out.push(tag);
                }
            }
        }
        if out.is_empty() {
            return Err(AuthError::Malformed(name));
        }
        Ok(out)
    }
}

/// Decodes one candidate: an optional `sha256=` prefix, then hex or base64.
/// Returns only tags of the algorithm's full length.
fn decode(part: &str, algorithm: SignatureAlgorithm) -> Option<Tag> {
    let prefix = algorithm.prefix();
    let part = match part.get(..prefix.len()) {
        Some(p) if p.eq_ignore_ascii_case(prefix) => &part[prefix.len()..],
        _ => part,
    };
    let want = algorithm.tag_len();
    let tag = if part.len() == want * 2 {
        Tag::from_hex(part)?
    } else if part.len() <= algorithm.base64_len() {
        // Room for any base64 text of that length (the decoder wants its
        // conservative estimate to fit).
        let mut buffer = [0u8; 96];
        let len = [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD]
            .iter()
            .find_map(|engine| engine.decode_slice(part, &mut buffer).ok())?;
        Tag::from_slice(&buffer[..len])?
    } else {
        return None;
    };
    (tag.as_bytes().len() == want).then_some(tag)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
