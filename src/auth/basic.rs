//! HTTP Basic authentication (RFC 7617).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, HeaderValue, header};

use super::AuthError;
use super::mac::{HmacKey, Tag};
use crate::Secret;

/// The longest `Authorization` header looked at; longer ones are refused
/// before decoding.
const MAX_HEADER_BYTES: usize = 4096;

/// Accepted Basic credentials: one pair, or several during a rotation.
///
/// The password may contain `:` (the user name may not, per RFC 7617) and
/// any UTF-8. Every configured pair is compared, in constant time, whatever
/// matched: the time taken says nothing about which part was wrong.
///
/// ```
/// use alm_webhooks::auth::BasicAuth;
/// let auth = BasicAuth::new("alm", "old password").with_credential("alm", "new password");
/// let mut headers = http::HeaderMap::new();
/// headers.insert(http::header::AUTHORIZATION, BasicAuth::header_value("alm", "new password"));
/// assert!(auth.verify(&headers).is_ok());
/// ```
#[derive(Clone)]
pub struct BasicAuth {
    /// A random key of this instance's, under which credentials are compared
    /// as HMAC tags: equal-length values, so the comparison leaks neither the
    /// content nor the length of the accepted credentials.
    blinding: HmacKey,
    /// The tag of each accepted `user:password`.
    accepted: Vec<Tag>,
}

impl fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicAuth")
            .field("credentials", &self.accepted.len())
            .finish_non_exhaustive()
    }
}

impl BasicAuth {
    /// Accepts `user` with `password`.
    ///
    /// ```
    /// use alm_webhooks::auth::BasicAuth;
    /// let auth = BasicAuth::new("alm", "p:ss w0rd");
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert(http::header::AUTHORIZATION, BasicAuth::header_value("alm", "p:ss w0rd"));
    /// assert!(auth.verify(&headers).is_ok());
    /// ```
    pub fn new(user: &str, password: impl Into<Secret>) -> Self {
        let blinding = HmacKey::random();
        let accepted = vec![blinding.tag(&joined(user, &password.into()))];
        Self { blinding, accepted }
    }

    /// Also accepts `user` with `password` (for rotation).
    ///
    /// ```
    /// use alm_webhooks::auth::BasicAuth;
    /// // During a rotation both passwords pass; afterwards, drop the old one.
    /// let auth = BasicAuth::new("alm", "old").with_credential("alm", "new");
    /// for password in ["old", "new"] {
    ///     let mut headers = http::HeaderMap::new();
    ///     headers.insert(http::header::AUTHORIZATION, BasicAuth::header_value("alm", password));
    ///     assert!(auth.verify(&headers).is_ok());
    /// }
    /// ```
    #[must_use]
    pub fn with_credential(mut self, user: &str, password: impl Into<Secret>) -> Self {
        let tag = self.blinding.tag(&joined(user, &password.into()));
        self.accepted.push(tag);
        self
    }

    /// The `Authorization` value for `user` and `password`, marked sensitive
    /// so that `http` and the frameworks keep it out of their logs.
    ///
    /// ```
    /// use alm_webhooks::auth::BasicAuth;
    /// let value = BasicAuth::header_value("alm", "pw");
    /// assert_eq!(value, "Basic YWxtOnB3");
    /// assert!(value.is_sensitive(), "kept out of logs");
    /// ```
    pub fn header_value(user: &str, password: &str) -> HeaderValue {
        let encoded = STANDARD.encode(format!("{user}:{password}"));
        let mut value = HeaderValue::from_str(&format!("Basic {encoded}"))
            .unwrap_or_else(|_| HeaderValue::from_static("Basic"));
        value.set_sensitive(true);
        value
    }

    /// Checks the request's `Authorization` header.
    ///
    /// # Errors
    ///
    /// [`AuthError::MissingHeader`], [`AuthError::WrongScheme`],
    /// [`AuthError::Malformed`] (oversized, bad base64, no colon, not UTF-8)
    /// or [`AuthError::BadCredentials`].
    ///
    /// ```
    /// use alm_webhooks::auth::{AuthError, BasicAuth};
    /// let auth = BasicAuth::new("alm", "pw");
    /// let mut headers = http::HeaderMap::new();
    /// assert_eq!(auth.verify(&headers), Err(AuthError::MissingHeader("authorization")));
    /// headers.insert(http::header::AUTHORIZATION, "Bearer abc".parse().unwrap());
    /// assert_eq!(auth.verify(&headers), Err(AuthError::WrongScheme));
    /// headers.insert(http::header::AUTHORIZATION, BasicAuth::header_value("alm", "PW"));
    /// assert_eq!(auth.verify(&headers), Err(AuthError::BadCredentials));
    /// ```
    pub fn verify(&self, headers: &HeaderMap) -> Result<(), AuthError> {
        let presented = self.blinding.tag(&[&presented_credentials(headers)?]);
        let mut matched = false;
        for accepted in &self.accepted {
            matched |= presented.matches(accepted);
        }
        if matched {
            Ok(())
        } else {
            Err(AuthError::BadCredentials)
        }
    }
}

/// `user:password`, as the parts of one message (nothing copied).
fn joined<'a>(user: &'a str, password: &'a Secret) -> [&'a [u8]; 3] {
    [user.as_bytes(), b":", password.expose()]
}

/// Decodes `Authorization: Basic <base64(user:password)>` into
/// `user:password` bytes, checking its shape.
fn presented_credentials(headers: &HeaderMap) -> Result<Vec<u8>, AuthError> {
    const NAME: &str = "authorization";
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next().ok_or(AuthError::MissingHeader(NAME))?;
    if values.next().is_some() {
        return Err(AuthError::Malformed(NAME));
    }
    let value = value.as_bytes();
    if value.len() > MAX_HEADER_BYTES {
        return Err(AuthError::Malformed(NAME));
    }
    // The scheme and the token are ASCII; only SP and HTAB count as white
    // space around them (RFC 7235), not Unicode spaces such as U+0085.
    if !value.is_ascii() {
        return Err(AuthError::Malformed(NAME));
    }
    let text = std::str::from_utf8(value).map_err(|_| AuthError::Malformed(NAME))?;
    let is_space = |c: char| c == ' ' || c == '\t';
    let text = text.trim_matches(is_space);
    let (scheme, rest) = text.split_once(is_space).unwrap_or((text, ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(AuthError::WrongScheme);
    }
    let decoded = STANDARD
        .decode(rest.trim_matches(is_space))
        .map_err(|_| AuthError::Malformed(NAME))?;
    let text = std::str::from_utf8(&decoded).map_err(|_| AuthError::Malformed(NAME))?;
    if !text.contains(':') {
        return Err(AuthError::Malformed(NAME));
    }
    Ok(decoded)
}
