//! Finding how a sender signs, from captured deliveries and the secret.
//!
//! ALM does not publish its signature scheme (header, algorithm, encoding,
//! signed content). [`detect`] tries every plausible one on captured
//! deliveries ([`CapturedRequest`]) and returns the [`SignatureScheme`] that
//! verifies all of them, or, when none does, a [`NoMatch`] saying for each
//! header why. Neither ever holds the secret or a header value.
//!
//! Tried: every header whose value (or a comma- or space-separated part of
//! it, after a label such as `sha256=`, `v1=` or `v1,`) decodes as hex or
//! base64 to 20, 32 or 64 bytes; HMAC-SHA1, -SHA256 and -SHA512, and
//! ed25519; the body, `{timestamp}.{body}` and `{id}.{timestamp}.{body}`
//! with the timestamp and id from any header that holds one; the secret as
//! given, base64-decoded, hex-decoded, `whsec_`- or `whpk_`-stripped.
//!
//! ```
//! use alm_webhooks::Secret;
//! use alm_webhooks::auth::SignatureAuth;
//! use alm_webhooks::detect::{CapturedRequest, detect};
//!
//! let body = br#"{"accountId":1,"events":[]}"#;
//! let signature = SignatureAuth::new("s3cret").sign_base64(body);
//! let raw = format!(
//!     "POST /webhooks HTTP/1.1\r\nx-signature: sha256={signature}\r\n\r\n{}",
//!     std::str::from_utf8(body).unwrap()
//! );
//! let capture = CapturedRequest::parse(raw.as_bytes()).unwrap();
//! let found = detect(&Secret::from("s3cret"), &[capture]).unwrap();
//! assert_eq!(found.scheme.header, "x-signature");
//! assert_eq!(found.scheme.prefix, "sha256=");
//! assert_eq!(found.scheme.encoding.as_str(), "base64");
//! assert_eq!(found.to_json()["env"]["ALM_SIGNATURE_PREFIX"], "sha256=");
//! ```

mod candidates;
mod capture;
mod report;

use http::HeaderName;

use crate::Secret;
use crate::auth::ed25519;
use crate::auth::mac::HmacKey;
use crate::auth::{SchemeAlgorithm, SignatureAlgorithm, SignatureScheme, SignedContent};

pub use capture::{CaptureError, CapturedRequest};
pub use report::{HeaderVerdict, NoMatch};

/// A scheme that verifies every capture.
///
/// ```
/// use alm_webhooks::Secret;
/// use alm_webhooks::auth::SignatureAuth;
/// use alm_webhooks::detect::{CapturedRequest, detect};
///
/// let body = b"{}";
/// let raw = format!("POST / HTTP/1.1\r\nx-alm-signature: {}\r\n\r\n{{}}", SignatureAuth::new("k").sign(body));
/// let found = detect(&Secret::from("k"), &[CapturedRequest::parse(raw.as_bytes()).unwrap()]).unwrap();
/// assert_eq!(found.scheme.algorithm.as_str(), "hmac-sha256");
/// assert!(found.combinations >= 1);
/// let json = found.to_json();
/// assert_eq!((json["header"].as_str(), json["key"].as_str()), (Some("x-alm-signature"), Some("as-given")));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detection {
    /// The scheme found.
    pub scheme: SignatureScheme,
    /// How many combinations (signed content × algorithm × key form, and
    /// signature for ed25519) were computed before the match.
    pub combinations: usize,
}

impl Detection {
    /// The scheme as one JSON object: `header`, `algorithm`, `encoding`,
    /// `prefix`, `signed`, `key` and the receivers' `env` (without the
    /// secret).
    ///
    /// ```
    /// use alm_webhooks::Secret;
    /// use alm_webhooks::auth::SignatureAuth;
    /// use alm_webhooks::detect::{CapturedRequest, detect};
    /// let raw = format!("POST / HTTP/1.1\r\nx-sig: {}\r\n\r\n{{}}", SignatureAuth::new("k").sign(b"{}"));
    /// let found = detect(&Secret::from("k"), &[CapturedRequest::parse(raw.as_bytes()).unwrap()]).unwrap();
    /// let json = found.to_json();
    /// assert_eq!(json["env"]["ALM_SIGNATURE_HEADER"], "x-sig");
    /// assert!(!json.to_string().contains("\"k\""), "never the secret");
    /// ```
    pub fn to_json(&self) -> serde_json::Value {
        let s = &self.scheme;
        serde_json::json!({
            "header": s.header.as_str(),
            "algorithm": s.algorithm.as_str(),
            "encoding": s.encoding.as_str(),
            "prefix": s.prefix,
            "signed": s.signed.to_string(),
            "key": s.key.as_str(),
            "env": s.env(),
        })
    }
}

/// Finds the scheme that verifies every capture under `secret`: searched
/// on the first capture, confirmed on the others.
///
/// # Errors
///
/// [`NoMatch`] with a verdict per header of the first capture.
///
/// ```
/// use alm_webhooks::Secret;
/// use alm_webhooks::auth::SignatureAuth;
/// use alm_webhooks::detect::{CapturedRequest, detect};
///
/// let body = br#"{"accountId":1,"events":[]}"#;
/// let capture = |signature: String| {
///     let raw = format!("POST / HTTP/1.1\r\nx-sig: v1={signature}\r\n\r\n");
///     let mut capture = CapturedRequest::parse(raw.as_bytes()).unwrap();
///     capture.body = body.to_vec();
///     capture
/// };
/// let signed = capture(SignatureAuth::new("s3cret").sign(body));
/// let found = detect(&Secret::from("s3cret"), &[signed.clone()]).unwrap();
/// assert_eq!((found.scheme.header.as_str(), found.scheme.prefix.as_str()), ("x-sig", "v1="));
/// // The auth it configures accepts the capture.
/// let auth = found.scheme.auth(&Secret::from("s3cret")).unwrap();
/// assert!(auth.verify(&signed.headers, &signed.body).is_ok());
/// // Under another secret: no match, and why, header by header.
/// let missed = detect(&Secret::from("other"), &[signed]).unwrap_err();
/// assert_eq!(missed.verdicts[0].header, "x-sig");
/// ```
pub fn detect(secret: &Secret, captures: &[CapturedRequest]) -> Result<Detection, NoMatch> {
    let Some(first) = captures.first() else {
        return Err(NoMatch::no_capture());
    };
    let tokens = candidates::tokens(&first.headers);
    let (times, ids) = candidates::context(&first.headers, &tokens);
    let keys = candidates::keys(secret);
    let public_keys = candidates::public_keys(&keys);
    let hmac_keys: Vec<_> = SignatureAlgorithm::ALL
        .into_iter()
        .filter(|hash| tokens.iter().any(|t| t.bytes.len() == hash.tag_len()))
        .flat_map(|hash| {
            keys.iter()
                .map(move |(encoding, key)| (hash, *encoding, HmacKey::new(hash, key.expose())))
        })
        .collect();
    let signatures: Vec<_> = tokens
        .iter()
        .filter_map(|t| Some((t, ed25519::signature_from_bytes(&t.bytes)?)))
        .collect();
    let contents = signed_contents(&times, &ids);
    let mut combinations = 0;
    let mut partial = Vec::new();
    let mut confirmed = Vec::new();
    for (content, timestamp) in &contents {
        let Ok(pieces) = content.pieces(&first.headers, &first.body) else {
            continue;
        };
        let mut found = Vec::new();
        for (hash, key, hmac) in &hmac_keys {
            combinations += 1;
            let tag = hmac.tag(&pieces);
            for token in tokens.iter().filter(|t| t.bytes == tag.as_bytes()) {
                found.push((SchemeAlgorithm::Hmac(*hash), *key, token));
            }
        }
        if !public_keys.is_empty() && !signatures.is_empty() {
            let message = pieces.concat();
            for (key, public) in &public_keys {
                for (token, signature) in &signatures {
                    combinations += 1;
                    if ed25519::verify_any(&[*public], &[*signature], &message) {
                        found.push((SchemeAlgorithm::Ed25519, *key, token));
                    }
                }
            }
        }
        for (algorithm, key, token) in found {
            let scheme = SignatureScheme {
                header: token.header.clone(),
                algorithm,
                encoding: token.encoding,
                prefix: token.prefix.clone(),
                signed: content.clone(),
                timestamp_header: timestamp.clone(),
                key,
            };
            // Confirmed with the verifier itself, on every capture (the
            // first too), so that what is reported is what verifies.
            match confirm(&scheme, secret, captures) {
                Ok(()) => confirmed.push(scheme),
                Err(0) => {}
                Err(index) => partial.push((scheme, index + 1)),
            }
        }
    }
    // Equal values in two headers (a timestamp sent twice) make several
    // schemes fit: prefer a labelled signature, then signed headers named
    // like the signature header, then the search order.
    let best = confirmed
        .into_iter()
        .enumerate()
        .max_by_key(|(order, scheme)| (preference(scheme), std::cmp::Reverse(*order)));
    match best {
        Some((_, scheme)) => Ok(Detection {
            scheme,
            combinations,
        }),
        None => Err(NoMatch::new(
            first,
            &tokens,
            &times,
            &ids,
            &keys,
            &contents,
            combinations,
            partial,
        )),
    }
}

/// How well a scheme's parts fit together: a non-empty prefix, and the
/// characters each signed header shares with the signature header's name
/// (`webhook-timestamp` with `webhook-signature`).
fn preference(scheme: &SignatureScheme) -> (bool, usize) {
    let header = scheme.header.as_str().as_bytes();
    let shared = scheme
        .signed
        .header_names()
        .map(|name| {
            name.as_str()
                .bytes()
                .zip(header)
                .take_while(|(a, b)| a == *b)
                .count()
        })
        .sum();
    (!scheme.prefix.is_empty(), shared)
}

/// The signed contents tried: the body, `{t}.{body}` for each time header,
/// `{id}.{t}.{body}` for each id and time header; with the time header.
fn signed_contents(
    times: &[HeaderName],
    ids: &[HeaderName],
) -> Vec<(SignedContent, Option<HeaderName>)> {
    let mut out = vec![(SignedContent::body(), None)];
    for time in times {
        out.push((
            SignedContent::header_then_body(time.clone()),
            Some(time.clone()),
        ));
    }
    for time in times {
        for id in ids {
            let content = SignedContent::headers_then_body(id.clone(), time.clone());
            out.push((content, Some(time.clone())));
        }
    }
    out
}

/// Checks the scheme on the captures (without the timestamp's tolerance:
/// captures are old); the index of the first that fails.
fn confirm(
    scheme: &SignatureScheme,
    secret: &Secret,
    captures: &[CapturedRequest],
) -> Result<(), usize> {
    let mut relaxed = scheme.clone();
    relaxed.timestamp_header = None;
    let auth = relaxed.auth(secret).map_err(|_| 0usize)?;
    for (index, capture) in captures.iter().enumerate() {
        if auth.verify(&capture.headers, &capture.body).is_err() {
            return Err(index);
        }
    }
    Ok(())
}
