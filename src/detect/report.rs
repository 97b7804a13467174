//! Why detection found nothing, header by header. Names only: never a
//! header value, a signature or the secret.

use std::fmt;

use http::HeaderName;

use super::CapturedRequest;
use super::candidates::{LENGTHS, Token};
use crate::Secret;
use crate::auth::{SecretEncoding, SignatureScheme, SignedContent};

/// Why one header of the first capture is not the signature.
///
/// ```
/// use alm_webhooks::Secret;
/// use alm_webhooks::detect::{CapturedRequest, detect};
///
/// let raw = b"POST / HTTP/1.1\r\ncontent-type: application/json\r\n\r\n{}";
/// let missed = detect(&Secret::from("k"), &[CapturedRequest::parse(raw).unwrap()]).unwrap_err();
/// let verdict = &missed.verdicts[0];
/// assert_eq!(verdict.header, "content-type");
/// assert!(!verdict.reason.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderVerdict {
    /// The header's name.
    pub header: String,
    /// Why it failed.
    pub reason: String,
}

/// No scheme verifies the captures: what was tried and why each header
/// failed.
///
/// ```
/// use alm_webhooks::Secret;
/// use alm_webhooks::detect::{CapturedRequest, detect};
///
/// let raw = b"POST / HTTP/1.1\r\nx-alm-signature: 0123456789abcdef0123456789abcdef01234567\r\n\r\n{}";
/// let missed = detect(&Secret::from("s3cret"), &[CapturedRequest::parse(raw).unwrap()]).unwrap_err();
/// assert_eq!(missed.verdicts.len(), 1);
/// assert!(missed.combinations > 0);
/// // The report names headers and what was tried, never a value or the secret.
/// let text = missed.to_string();
/// assert!(text.contains("x-alm-signature") && !text.contains("0123456789abcdef") && !text.contains("s3cret"), "{text}");
/// assert!(detect(&Secret::from("s3cret"), &[]).is_err(), "no capture, no match");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoMatch {
    /// One verdict per header of the first capture.
    pub verdicts: Vec<HeaderVerdict>,
    /// The secret encodings under which the secret decoded.
    pub key_forms: Vec<SecretEncoding>,
    /// Headers taken as timestamps, then as ids.
    pub context: (Vec<String>, Vec<String>),
    /// How many combinations were computed.
    pub combinations: usize,
}

impl NoMatch {
    pub(super) fn no_capture() -> Self {
        Self {
            verdicts: Vec::new(),
            key_forms: Vec::new(),
            context: (Vec::new(), Vec::new()),
            combinations: 0,
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        first: &CapturedRequest,
        tokens: &[Token],
        times: &[HeaderName],
        ids: &[HeaderName],
        keys: &[(SecretEncoding, Secret)],
        contents: &[(SignedContent, Option<HeaderName>)],
        combinations: usize,
        partial: Vec<(SignatureScheme, usize)>,
    ) -> Self {
        let mut verdicts: Vec<HeaderVerdict> = Vec::new();
        for name in first.headers.keys() {
            let mine: Vec<&Token> = tokens.iter().filter(|t| t.header == name).collect();
            let reason = if let Some((scheme, capture)) =
                partial.iter().find(|(s, _)| s.header == name)
            {
                format!(
                    "matches the first capture as {} over {} (key {}), but not capture {capture}",
                    scheme.algorithm, scheme.signed, scheme.key
                )
            } else if mine.is_empty() {
                format!("not a signature: no part decodes to {LENGTHS:?} bytes as hex or base64")
            } else {
                let mut shapes: Vec<String> = mine
                    .iter()
                    .map(|t| {
                        let prefix = if t.prefix.is_empty() {
                            String::new()
                        } else {
                            format!(" after {:?}", t.prefix)
                        };
                        format!("{} bytes of {}{prefix}", t.bytes.len(), t.encoding)
                    })
                    .collect();
                shapes.dedup();
                format!(
                    "{} candidate(s) ({}): none is an HMAC-SHA1/256/512 under {} key form(s) \
                     or an ed25519 signature under {} public key(s), over {} signed content(s)",
                    mine.iter()
                        .map(|t| &t.bytes)
                        .collect::<std::collections::HashSet<_>>()
                        .len(),
                    shapes.join("; "),
                    keys.len(),
                    keys.iter()
                        .filter(
                            |(_, k)| crate::auth::ed25519::public_key_from_bytes(k.expose())
                                .is_some()
                        )
                        .count(),
                    contents.len(),
                )
            };
            verdicts.push(HeaderVerdict {
                header: name.to_string(),
                reason,
            });
        }
        Self {
            verdicts,
            key_forms: keys.iter().map(|(e, _)| *e).collect(),
            context: (
                times.iter().map(ToString::to_string).collect(),
                ids.iter().map(ToString::to_string).collect(),
            ),
            combinations,
        }
    }
}

impl fmt::Display for NoMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.verdicts.is_empty() && self.combinations == 0 && self.key_forms.is_empty() {
            return f.write_str("no signature scheme found: no capture was given");
        }
        let forms: Vec<&str> = self.key_forms.iter().map(|e| e.as_str()).collect();
        let list = |v: &[String]| {
            if v.is_empty() {
                "none".to_owned()
            } else {
                v.join(", ")
            }
        };
        writeln!(
            f,
            "no signature scheme matches ({} combinations tried). The secret decodes as: {}. \
             Timestamp headers: {}. Id headers: {}.",
            self.combinations,
            if forms.is_empty() {
                "nothing".to_owned()
            } else {
                forms.join(", ")
            },
            list(&self.context.0),
            list(&self.context.1),
        )?;
        for verdict in &self.verdicts {
            writeln!(f, "  {}: {}", verdict.header, verdict.reason)?;
        }
        Ok(())
    }
}

impl std::error::Error for NoMatch {}
