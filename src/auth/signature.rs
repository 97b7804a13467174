//! HMAC signatures over the raw body (ALM's "Signature" method).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName};
use sha2::{Sha256, Sha512};

use super::AuthError;
use crate::Secret;

/// The header read by default: `x-alm-signature`. ALM does not publish the
/// name it uses; set yours with [`SignatureAuth::header`].
pub const DEFAULT_SIGNATURE_HEADER: &str = "x-alm-signature";

/// Candidate signatures looked at per request, at most: a hostile header
/// cannot make the check cost more than this many HMAC comparisons per
/// secret.
const MAX_CANDIDATES: usize = 16;

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
}

/// Checks an HMAC of the exact raw body, keyed with the secret's bytes.
///
/// The header's value may be hex (either case) or base64 (standard or
/// URL-safe, padded or not), optionally prefixed `sha256=` (or `sha512=`),
/// and may carry several signatures separated by commas or spaces; any valid
/// one passes. Several secrets may be configured for rotation. Tags are
/// compared with `Mac::verify_slice` and must have the full length: an empty
/// or truncated signature never passes.
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
        Self {
            secrets: vec![secret.into()],
            header: HeaderName::from_static(DEFAULT_SIGNATURE_HEADER),
            algorithm: SignatureAlgorithm::Sha256,
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
        self
    }

    /// Also accepts signatures made with `secret` (for rotation).
    #[must_use]
    pub fn also_accept(mut self, secret: impl Into<Secret>) -> Self {
        self.secrets.push(secret.into());
        self
    }

    /// The header the signature is read from.
    pub fn header_name(&self) -> &HeaderName {
        &self.header
    }

    /// The signature of `body` under the first secret, as lowercase hex.
    pub fn sign(&self, body: &[u8]) -> String {
        hex(&self.tag(&self.secrets[0], body))
    }

    /// The signature of `body` under the first secret, as standard base64.
    pub fn sign_base64(&self, body: &[u8]) -> String {
        STANDARD.encode(self.tag(&self.secrets[0], body))
    }

    fn tag(&self, secret: &Secret, body: &[u8]) -> Vec<u8> {
        match self.algorithm {
            SignatureAlgorithm::Sha256 => mac::<Hmac<Sha256>>(secret, body)
                .finalize()
                .into_bytes()
                .to_vec(),
            SignatureAlgorithm::Sha512 => mac::<Hmac<Sha512>>(secret, body)
                .finalize()
                .into_bytes()
                .to_vec(),
        }
    }

    fn matches(&self, secret: &Secret, body: &[u8], candidate: &[u8]) -> bool {
        if candidate.len() != self.algorithm.tag_len() {
            return false;
        }
        match self.algorithm {
            SignatureAlgorithm::Sha256 => mac::<Hmac<Sha256>>(secret, body)
                .verify_slice(candidate)
                .is_ok(),
            SignatureAlgorithm::Sha512 => mac::<Hmac<Sha512>>(secret, body)
                .verify_slice(candidate)
                .is_ok(),
        }
    }

    /// Checks the signature header against `body`.
    ///
    /// # Errors
    ///
    /// [`AuthError::MissingHeader`], [`AuthError::Malformed`] (no candidate
    /// decodes to a tag of the right length) or
    /// [`AuthError::SignatureMismatch`].
    pub fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), AuthError> {
        let candidates = self.candidates(headers)?;
        let mut matched = false;
        for secret in &self.secrets {
            for candidate in &candidates {
                matched |= self.matches(secret, body, candidate);
            }
        }
        if matched {
            Ok(())
        } else {
            Err(AuthError::SignatureMismatch)
        }
    }

    /// Decodes the candidate tags of every value of the header.
    fn candidates(&self, headers: &HeaderMap) -> Result<Vec<Vec<u8>>, AuthError> {
        let name = "signature";
        let mut values = headers.get_all(&self.header).iter().peekable();
        if values.peek().is_none() {
            return Err(AuthError::MissingHeader(name));
        }
        let mut out = Vec::new();
        let mut total = 0usize;
        for value in values {
            total += value.len();
            if total > MAX_HEADER_BYTES {
                return Err(AuthError::Malformed(name));
            }
            let text =
                std::str::from_utf8(value.as_bytes()).map_err(|_| AuthError::Malformed(name))?;
            for part in text.split([',', ' ', '\t']).filter(|p| !p.is_empty()) {
                if out.len() == MAX_CANDIDATES {
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

fn mac<M: Mac + hmac::digest::KeyInit>(secret: &Secret, body: &[u8]) -> M {
    let mut mac =
        <M as Mac>::new_from_slice(secret.expose()).expect("HMAC takes keys of any length");
    mac.update(body);
    mac
}

/// Decodes one candidate: an optional `sha256=` prefix, then hex or base64.
/// Returns only tags of the algorithm's full length.
fn decode(part: &str, algorithm: SignatureAlgorithm) -> Option<Vec<u8>> {
    let prefix = algorithm.prefix();
    let part = match part.get(..prefix.len()) {
        Some(p) if p.eq_ignore_ascii_case(prefix) => &part[prefix.len()..],
        _ => part,
    };
    let want = algorithm.tag_len();
    let tag = if part.len() == want * 2 && part.bytes().all(|b| b.is_ascii_hexdigit()) {
        unhex(part)?
    } else {
        [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD]
            .iter()
            .find_map(|engine| engine.decode(part).ok())?
    };
    (tag.len() == want).then_some(tag)
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    text.as_bytes()
        .chunks(2)
        .map(|pair| {
            let s = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(s, 16).ok()
        })
        .collect()
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
