//! A whole signature scheme as one value: what `detect` reports, what the
//! receivers read from their environment, and how to build the check.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use http::HeaderName;

use super::{
    InvalidPublicKey, SecretEncoding, SecretEncodingError, SignatureAlgorithm, SignatureAuth,
    SignedContent,
};
use crate::Secret;

/// The algorithm of a scheme: an HMAC, or ed25519 under a public key.
///
/// ```
/// use alm_webhooks::auth::{SchemeAlgorithm, SignatureAlgorithm};
/// let hmac: SchemeAlgorithm = "hmac-sha256".parse().unwrap();
/// assert_eq!(hmac, SchemeAlgorithm::Hmac(SignatureAlgorithm::Sha256));
/// assert_eq!(hmac.signature_len(), 32);
/// let ed: SchemeAlgorithm = "Ed25519".parse().unwrap();
/// assert_eq!((ed.as_str(), ed.signature_len()), ("ed25519", 64));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SchemeAlgorithm {
    /// An HMAC keyed with the secret.
    Hmac(SignatureAlgorithm),
    /// An ed25519 signature; the "secret" is the sender's public key.
    Ed25519,
}

impl SchemeAlgorithm {
    /// `hmac-sha1`, `hmac-sha256`, `hmac-sha512` or `ed25519`.
    ///
    /// ```
    /// use alm_webhooks::auth::{SchemeAlgorithm, SignatureAlgorithm};
    /// assert_eq!(SchemeAlgorithm::Hmac(SignatureAlgorithm::Sha512).as_str(), "hmac-sha512");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hmac(hash) => hash.as_str(),
            Self::Ed25519 => "ed25519",
        }
    }

    /// The length of a signature in bytes.
    ///
    /// ```
    /// use alm_webhooks::auth::{SchemeAlgorithm, SignatureAlgorithm};
    /// assert_eq!(SchemeAlgorithm::Hmac(SignatureAlgorithm::Sha1).signature_len(), 20);
    /// ```
    pub fn signature_len(self) -> usize {
        match self {
            Self::Hmac(hash) => hash.tag_len(),
            Self::Ed25519 => 64,
        }
    }
}

impl fmt::Display for SchemeAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SchemeAlgorithm {
    type Err = super::UnknownAlgorithm;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("ed25519") {
            return Ok(Self::Ed25519);
        }
        s.parse().map(Self::Hmac)
    }
}

/// How the signature bytes are written in the header.
///
/// ```
/// use alm_webhooks::auth::SignatureEncoding;
/// assert_eq!(SignatureEncoding::Base64UrlNoPad.as_str(), "base64url-nopad");
/// assert_eq!(SignatureEncoding::HexUpper.to_string(), "hex-upper");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignatureEncoding {
    /// Lowercase hex.
    Hex,
    /// Uppercase hex.
    HexUpper,
    /// Standard base64, padded.
    Base64,
    /// Standard base64, unpadded.
    Base64NoPad,
    /// URL-safe base64, padded.
    Base64Url,
    /// URL-safe base64, unpadded.
    Base64UrlNoPad,
}

impl SignatureEncoding {
    /// `hex`, `hex-upper`, `base64`, `base64-nopad`, `base64url` or
    /// `base64url-nopad`. (Verification accepts any of them.)
    ///
    /// ```
    /// assert_eq!(alm_webhooks::auth::SignatureEncoding::Base64.as_str(), "base64");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hex => "hex",
            Self::HexUpper => "hex-upper",
            Self::Base64 => "base64",
            Self::Base64NoPad => "base64-nopad",
            Self::Base64Url => "base64url",
            Self::Base64UrlNoPad => "base64url-nopad",
        }
    }
}

impl fmt::Display for SignatureEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a secret does not fit a scheme. Never shows the secret.
///
/// ```
/// use alm_webhooks::Secret;
/// use alm_webhooks::auth::{SchemeAlgorithm, SchemeKeyError, SecretEncoding, SignatureAlgorithm, SignatureScheme};
/// let scheme = SignatureScheme::new(http::HeaderName::from_static("x-alm-signature"))
///     .with_algorithm(SchemeAlgorithm::Hmac(SignatureAlgorithm::Sha256))
///     .with_key(SecretEncoding::Hex);
/// let err = scheme.auth(&Secret::from("not hex, and secret")).unwrap_err();
/// assert!(matches!(err, SchemeKeyError::Encoding(_, SecretEncoding::Hex)));
/// assert!(!err.to_string().contains("and secret"), "the secret is never shown");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SchemeKeyError {
    /// The secret is not in the scheme's secret encoding.
    #[error("{0} (secret encoding {1})")]
    Encoding(SecretEncodingError, SecretEncoding),
    /// The key is not an ed25519 public key.
    #[error(transparent)]
    PublicKey(InvalidPublicKey),
    /// The timestamp header is checked but not signed: anyone could send
    /// an old signature with a fresh time, so the check would bound
    /// nothing.
    #[error("the timestamp header `{0}` is not in the signed content: add `{{{0}}}` to it")]
    UnsignedTimestamp(HeaderName),
}

/// A signature scheme: where the signature is, how it is made and written,
/// and how the secret becomes the key. `detect` finds one; the example
/// receivers read one from their environment ([`SignatureScheme::env`] and
/// [`SignatureScheme::from_env`] are inverses, but for the informative
/// [`SignatureScheme::encoding`]).
///
/// ```
/// use alm_webhooks::Secret;
/// use alm_webhooks::auth::{SchemeAlgorithm, SecretEncoding, SignatureAlgorithm, SignatureScheme};
///
/// let scheme = SignatureScheme::new(http::HeaderName::from_static("x-alm-signature"))
///     .with_algorithm(SchemeAlgorithm::Hmac(SignatureAlgorithm::Sha512))
///     .with_key(SecretEncoding::Base64);
/// let env = scheme.env();
/// assert_eq!(env["ALM_SIGNATURE_ALGORITHM"], "hmac-sha512");
/// assert_eq!(env["ALM_SECRET_ENCODING"], "base64");
/// let again = SignatureScheme::from_env(|name| env.get(name).cloned()).unwrap();
/// assert_eq!(again, scheme);
/// assert!(scheme.auth(&Secret::from("c2VjcmV0")).is_ok());
/// assert!(scheme.auth(&Secret::from("not base64!")).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureScheme {
    /// The header holding the signature.
    pub header: HeaderName,
    /// The algorithm.
    pub algorithm: SchemeAlgorithm,
    /// How the signature is written (informative: any is accepted).
    pub encoding: SignatureEncoding,
    /// The text before each signature (`sha256=`, `v1,`), or empty.
    pub prefix: String,
    /// What is signed.
    pub signed: SignedContent,
    /// A signed header that holds a time, checked against a tolerance.
    pub timestamp_header: Option<HeaderName>,
    /// How the secret's text becomes the key.
    pub key: SecretEncoding,
}

impl SignatureScheme {
    /// HMAC-SHA256 of the body, lowercase hex, in `header`, keyed with the
    /// secret as given.
    ///
    /// ```
    /// use alm_webhooks::auth::{SecretEncoding, SignatureScheme};
    /// let scheme = SignatureScheme::new(http::HeaderName::from_static("x-alm-signature"));
    /// assert_eq!((scheme.algorithm.as_str(), scheme.encoding.as_str()), ("hmac-sha256", "hex"));
    /// assert!(scheme.signed.is_body() && scheme.prefix.is_empty() && scheme.key == SecretEncoding::AsGiven);
    /// ```
    pub fn new(header: HeaderName) -> Self {
        Self {
            header,
            algorithm: SchemeAlgorithm::Hmac(SignatureAlgorithm::Sha256),
            encoding: SignatureEncoding::Hex,
            prefix: String::new(),
            signed: SignedContent::body(),
            timestamp_header: None,
            key: SecretEncoding::AsGiven,
        }
    }

    /// With another algorithm.
    ///
    /// ```
    /// use alm_webhooks::auth::{SchemeAlgorithm, SignatureScheme};
    /// let scheme = SignatureScheme::new(http::HeaderName::from_static("x-sig")).with_algorithm(SchemeAlgorithm::Ed25519);
    /// assert_eq!(scheme.algorithm.signature_len(), 64);
    /// ```
    #[must_use]
    pub fn with_algorithm(mut self, algorithm: SchemeAlgorithm) -> Self {
        self.algorithm = algorithm;
        self
    }

    /// With another secret encoding.
    ///
    /// ```
    /// use alm_webhooks::auth::{SecretEncoding, SignatureScheme};
    /// let scheme = SignatureScheme::new(http::HeaderName::from_static("x-sig")).with_key(SecretEncoding::Whsec);
    /// assert_eq!(scheme.key, SecretEncoding::Whsec);
    /// ```
    #[must_use]
    pub fn with_key(mut self, key: SecretEncoding) -> Self {
        self.key = key;
        self
    }

    /// The check for this scheme under `secret` (the text the admin holds).
    ///
    /// # Errors
    ///
    /// [`SchemeKeyError`] (never showing the secret) when the secret does
    /// not decode as [`SignatureScheme::key`] says, or is not an ed25519
    /// public key.
    ///
    /// ```
    /// use alm_webhooks::Secret;
    /// use alm_webhooks::auth::{SecretEncoding, SignatureScheme};
    /// let scheme = SignatureScheme::new(http::HeaderName::from_static("x-sig")).with_key(SecretEncoding::Hex);
    /// let auth = scheme.auth(&Secret::from("6b6579")).unwrap(); // the key is the bytes "key"
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("x-sig", alm_webhooks::auth::SignatureAuth::new("key").sign(b"{}").parse().unwrap());
    /// assert!(auth.verify(&headers, b"{}").is_ok());
    /// ```
    pub fn auth(&self, secret: &Secret) -> Result<SignatureAuth, SchemeKeyError> {
        self.check_timestamp_signed()?;
        let key = self
            .key
            .decode(secret)
            .map_err(|e| SchemeKeyError::Encoding(e, self.key))?;
        let auth = match self.algorithm {
            SchemeAlgorithm::Hmac(hash) => SignatureAuth::new(key).with_algorithm(hash),
            SchemeAlgorithm::Ed25519 => {
                SignatureAuth::ed25519(key.expose()).map_err(SchemeKeyError::PublicKey)?
            }
        };
        let auth = auth
            .with_header(self.header.clone())
            .with_prefix(self.prefix.clone())
            .with_signed_content(self.signed.clone());
        Ok(match &self.timestamp_header {
            Some(header) => auth.with_timestamp_header(header.clone()),
            None => auth,
        })
    }

    /// The example receivers' environment for this scheme, except the
    /// secret itself (`ALM_SIGNING_SECRET` or `ALM_SECRET_FILE`).
    ///
    /// ```
    /// use alm_webhooks::auth::SignatureScheme;
    /// let env = SignatureScheme::new(http::HeaderName::from_static("x-sig")).env();
    /// assert_eq!(env["ALM_AUTH"], "signature");
    /// assert_eq!(env["ALM_SIGNATURE_HEADER"], "x-sig");
    /// ```
    pub fn env(&self) -> BTreeMap<&'static str, String> {
        let mut env = BTreeMap::new();
        env.insert("ALM_AUTH", "signature".to_owned());
        env.insert("ALM_SIGNATURE_HEADER", self.header.to_string());
        env.insert("ALM_SIGNATURE_ALGORITHM", self.algorithm.to_string());
        if !self.prefix.is_empty() {
            env.insert("ALM_SIGNATURE_PREFIX", self.prefix.clone());
        }
        if !self.signed.is_body() {
            env.insert("ALM_SIGNED_CONTENT", self.signed.to_string());
        }
        if let Some(header) = &self.timestamp_header {
            env.insert("ALM_TIMESTAMP_HEADER", header.to_string());
        }
        if self.key != SecretEncoding::AsGiven {
            env.insert("ALM_SECRET_ENCODING", self.key.to_string());
        }
        env
    }

    /// Reads a scheme from variables named as in [`SignatureScheme::env`]
    /// (all optional but the header, which defaults to `x-alm-signature`).
    /// The encoding is not configured (any is accepted) and reads as hex.
    ///
    /// # Errors
    ///
    /// A message naming the variable and what it expected.
    ///
    /// ```
    /// use alm_webhooks::auth::SignatureScheme;
    /// let env = |name: &str| match name {
    ///     "ALM_SIGNATURE_HEADER" => Some("x-sig".to_owned()),
    ///     "ALM_SIGNATURE_PREFIX" => Some("sha256=".to_owned()),
    ///     _ => None,
    /// };
    /// let scheme = SignatureScheme::from_env(env).unwrap();
    /// assert_eq!((scheme.header.as_str(), scheme.prefix.as_str()), ("x-sig", "sha256="));
    /// assert_eq!(scheme.algorithm.as_str(), "hmac-sha256", "the default");
    /// ```
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let header_name = |name: &str, value: String| {
            HeaderName::from_bytes(value.as_bytes())
                .map_err(|_| format!("{name}={value:?} is not a header name"))
        };
        let header = var("ALM_SIGNATURE_HEADER")
            .unwrap_or_else(|| super::DEFAULT_SIGNATURE_HEADER.to_owned());
        let mut scheme = Self::new(header_name("ALM_SIGNATURE_HEADER", header)?);
        if let Some(v) = var("ALM_SIGNATURE_ALGORITHM") {
            scheme.algorithm = v
                .parse()
                .map_err(|e| format!("ALM_SIGNATURE_ALGORITHM: {e} (or ed25519)"))?;
        }
        scheme.prefix = var("ALM_SIGNATURE_PREFIX").unwrap_or_default();
        if let Some(v) = var("ALM_SIGNED_CONTENT") {
            scheme.signed = v.parse().map_err(|e| format!("ALM_SIGNED_CONTENT: {e}"))?;
        }
        if let Some(v) = var("ALM_TIMESTAMP_HEADER") {
            scheme.timestamp_header = Some(header_name("ALM_TIMESTAMP_HEADER", v)?);
        }
        if let Some(v) = var("ALM_SECRET_ENCODING") {
            scheme.key = v.parse().map_err(|e| format!("ALM_SECRET_ENCODING: {e}"))?;
        }
        scheme
            .check_timestamp_signed()
            .map_err(|e| format!("ALM_TIMESTAMP_HEADER: {e} (ALM_SIGNED_CONTENT)"))?;
        Ok(scheme)
    }

    /// Refuses a timestamp header that the signature does not cover: the
    /// check would bound nothing (a signature made a month ago passes with
    /// a fresh time).
    ///
    /// ```
    /// use alm_webhooks::auth::SignatureScheme;
    /// let env = |name: &str| match name {
    ///     "ALM_TIMESTAMP_HEADER" => Some("x-ts".to_owned()),
    ///     _ => None,
    /// };
    /// let err = SignatureScheme::from_env(env).unwrap_err();
    /// assert!(err.contains("`x-ts` is not in the signed content"), "{err}");
    /// let signed = |name: &str| match name {
    ///     "ALM_TIMESTAMP_HEADER" => Some("x-ts".to_owned()),
    ///     "ALM_SIGNED_CONTENT" => Some("{x-ts}.{body}".to_owned()),
    ///     _ => None,
    /// };
    /// assert!(SignatureScheme::from_env(signed).is_ok());
    /// ```
    fn check_timestamp_signed(&self) -> Result<(), SchemeKeyError> {
        match &self.timestamp_header {
            Some(header) if !self.signed.header_names().any(|h| h == header) => {
                Err(SchemeKeyError::UnsignedTimestamp(header.clone()))
            }
            _ => Ok(()),
        }
    }
}
