//! The stored form of an id: what a database keys on, for any `eventId` or
//! `loInstanceId` ALM may send. A leaf module: the rules' and the store's
//! key types both build their [`storage_key`]s with it.

use std::borrow::Cow;
use std::fmt::Write;

use sha2::{Digest, Sha256};

/// The longest text stored as it is, in bytes. Longer texts are stored
/// under a digest: PostgreSQL cannot index a key of more than about 2.7 KB.
pub const MAX_PLAIN_KEY_BYTES: usize = 200;

/// How many bytes of a digested text are kept in front of the digest, to be
/// readable.
const READABLE_PREFIX_BYTES: usize = 64;

/// What separates a digested text's readable prefix from its digest. A text
/// that contains it is always digested, so a text stored as it is never
/// looks like a digested one.
const MARK: &str = "…sha256:";

/// The form an event id or a state key is stored under, by every store
/// that keys on text (PostgreSQL, Redis, SQLite; the memory store keys on a
/// hash).
///
/// A text of at most [`MAX_PLAIN_KEY_BYTES`] bytes with no NUL byte is
/// stored as it is, so ordinary ids read the same in the database. Any other
/// text (a 2.7 KB id, a NUL byte, which PostgreSQL's `TEXT` cannot hold) is
/// stored as its first 64 bytes (control characters shown as `?`), then
/// `…sha256:`, then the SHA-256 of the whole text in hex: at most 138 bytes,
/// whatever the text. Two texts get the same form only if they are equal
/// (or SHA-256 collides). This form is stable: changing it would make
/// stored decisions unreachable.
///
/// ```
/// use alm_webhooks::store::storage_key;
/// assert_eq!(storage_key("2c1e6f0a-7c5b-4b45-9b7e-1b8f4c1d2e3f"), "2c1e6f0a-7c5b-4b45-9b7e-1b8f4c1d2e3f");
/// let long = "x".repeat(2_700);
/// let stored = storage_key(&long);
/// assert!(stored.starts_with(&"x".repeat(64)));
/// assert!(stored.contains("…sha256:"));
/// assert!(stored.len() <= 138);
/// assert_ne!(storage_key("a\0b"), storage_key("a\0c"));
/// ```
pub fn storage_key(text: &str) -> Cow<'_, str> {
    if text.len() <= MAX_PLAIN_KEY_BYTES && !text.contains('\0') && !text.contains(MARK) {
        return Cow::Borrowed(text);
    }
    let mut end = READABLE_PREFIX_BYTES.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = String::with_capacity(end + MARK.len() + 64);
    out.extend(
        text[..end]
            .chars()
            .map(|c| if c.is_control() { '?' } else { c }),
    );
    out.push_str(MARK);
    for byte in Sha256::digest(text.as_bytes()) {
        let _ = write!(out, "{byte:02x}");
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_digested_forms_never_meet() {
        let plain = "a".repeat(MAX_PLAIN_KEY_BYTES);
        assert_eq!(storage_key(&plain), plain.as_str());
        let longer = "a".repeat(MAX_PLAIN_KEY_BYTES + 1);
        let digested = storage_key(&longer);
        assert!(digested.contains(MARK));
        // A short text that looks like a digested one is digested too.
        let lookalike = digested.clone().into_owned();
        assert_ne!(storage_key(&lookalike), lookalike.as_str());
        assert_ne!(storage_key(&lookalike), digested);
        // The prefix is cut on a character boundary.
        let wide = "é".repeat(300);
        assert!(storage_key(&wide).starts_with(&"é".repeat(32)));
        assert!(!storage_key("a\0b").contains('\0'));
    }
}
