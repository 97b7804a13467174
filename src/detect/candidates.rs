//! What a capture offers the search: signature-looking header values,
//! headers that hold a timestamp or an id, and the secret's key forms.

use http::{HeaderMap, HeaderName};

use crate::Secret;
use crate::Timestamp;
use crate::auth::{SecretEncoding, SignatureEncoding};
use crate::auth::{ed25519, signature_text};

/// Signature lengths looked for: SHA-1, SHA-256, SHA-512 and ed25519.
pub(crate) const LENGTHS: [usize; 3] = [20, 32, 64];

/// One decoded value that may be a signature.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub(crate) header: HeaderName,
    pub(crate) prefix: String,
    pub(crate) encoding: SignatureEncoding,
    pub(crate) bytes: Vec<u8>,
}

/// Every token of every header whose value looks like a signature.
pub(crate) fn tokens(headers: &HeaderMap) -> Vec<Token> {
    let mut out = Vec::new();
    for (name, value) in headers {
        let Ok(text) = value.to_str() else { continue };
        for piece in text.split_ascii_whitespace().take(32) {
            // `v1,<sig>`: a short label, a comma, the signature.
            if let Some((label, rest)) = piece.split_once(',') {
                if is_label(label) && !rest.trim_end_matches('=').contains([',', '=']) {
                    push(&mut out, name, &format!("{label},"), rest);
                }
            }
            for part in piece.split(',').filter(|p| !p.is_empty()).take(32) {
                push(&mut out, name, "", part);
                // `sha256=<sig>`, `v1=<sig>`, `v1:<sig>`: a label first.
                if let Some(at) = part.find(['=', ':']) {
                    let (label, rest) = (&part[..at], &part[at + 1..]);
                    if is_label(label) && !rest.is_empty() && !rest.starts_with('=') {
                        push(&mut out, name, &part[..=at], rest);
                    }
                }
            }
        }
    }
    out
}

fn is_label(label: &str) -> bool {
    (1..=16).contains(&label.len())
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn push(out: &mut Vec<Token>, header: &HeaderName, prefix: &str, text: &str) {
    for len in LENGTHS {
        if let Some(tag) = signature_text::decode_exact(text, len) {
            out.push(Token {
                header: header.clone(),
                prefix: prefix.to_owned(),
                encoding: encoding_of(text, len),
                bytes: tag.as_bytes().to_vec(),
            });
        }
    }
}

/// How `text` (which decodes to `len` bytes) is written.
fn encoding_of(text: &str, len: usize) -> SignatureEncoding {
    let is_hex = text.len() == len * 2 && text.bytes().all(|b| b.is_ascii_hexdigit());
    if is_hex {
        return if text.bytes().any(|b| b.is_ascii_uppercase()) {
            SignatureEncoding::HexUpper
        } else {
            SignatureEncoding::Hex
        };
    }
    let url = text.contains(['-', '_']);
    let padded = text.ends_with('=') || len % 3 == 0;
    match (url, padded) {
        (false, true) => SignatureEncoding::Base64,
        (false, false) => SignatureEncoding::Base64NoPad,
        (true, true) => SignatureEncoding::Base64Url,
        (true, false) => SignatureEncoding::Base64UrlNoPad,
    }
}

/// Headers never taken as a signed timestamp or id.
const NOT_SIGNED: [&str; 9] = [
    "host",
    "content-length",
    "content-type",
    "user-agent",
    "accept",
    "accept-encoding",
    "connection",
    "transfer-encoding",
    "expect",
];

/// The headers that hold a time (epoch seconds or milliseconds, RFC 3339),
/// and those that could hold an id (one short token that is not itself a
/// candidate signature).
pub(crate) fn context(headers: &HeaderMap, tokens: &[Token]) -> (Vec<HeaderName>, Vec<HeaderName>) {
    let mut times = Vec::new();
    let mut ids = Vec::new();
    for (name, value) in headers {
        if NOT_SIGNED.contains(&name.as_str())
            || times.contains(name)
            || ids.contains(name)
            || tokens.iter().any(|t| t.header == name)
        {
            continue;
        }
        let Ok(text) = value.to_str() else { continue };
        let epoch = (9..=13).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit());
        let is_time = if epoch {
            text.parse()
                .ok()
                .and_then(|n| Timestamp::from_epoch(n).ok())
                .is_some()
        } else {
            Timestamp::from_rfc3339(text).is_ok()
        };
        if is_time {
            times.push(name.clone());
        } else if (1..=200).contains(&text.len()) && !text.contains([' ', '\t', ',']) {
            ids.push(name.clone());
        }
    }
    (times, ids)
}

/// The secret's key forms that decode, first form first, without repeats.
pub(crate) fn keys(secret: &Secret) -> Vec<(SecretEncoding, Secret)> {
    let mut out: Vec<(SecretEncoding, Secret)> = Vec::new();
    for encoding in SecretEncoding::ALL {
        if let Ok(key) = encoding.decode(secret) {
            if !out.iter().any(|(_, k)| k.expose() == key.expose()) {
                out.push((encoding, key));
            }
        }
    }
    out
}

/// The key forms that are ed25519 public keys.
pub(crate) fn public_keys(
    keys: &[(SecretEncoding, Secret)],
) -> Vec<(SecretEncoding, ed25519_dalek::VerifyingKey)> {
    keys.iter()
        .filter_map(|(e, k)| ed25519::public_key_from_bytes(k.expose()).map(|key| (*e, key)))
        .collect()
}
