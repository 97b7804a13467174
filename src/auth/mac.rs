//! The MAC primitives every signature check shares: the hash
//! ([`SignatureAlgorithm`]), HMAC keys prepared once ([`HmacKey`]), tags
//! compared in constant time ([`Tag`]) and the candidate tags a request
//! carries ([`Candidates`]).
//!
//! A leaf of `auth`: `signature`, `scheme`, `standard`, `basic` and
//! `detect` use it; it uses none of them.
//!
//! Keying an HMAC hashes the key's inner and outer pads: two compression
//! blocks that are the same for every request. [`HmacKey`] does it when the
//! secret is configured; each check then starts from a copy of the prepared
//! state and hashes only the message.

use std::fmt;
use std::str::FromStr;

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Sha256, Sha512};
use subtle::ConstantTimeEq;

/// The hash under the HMAC.
///
/// ```
/// use alm_webhooks::auth::SignatureAlgorithm;
/// let hash: SignatureAlgorithm = "HMAC-SHA512".parse().unwrap();
/// assert_eq!(hash, SignatureAlgorithm::Sha512);
/// assert_eq!(hash.as_str(), "hmac-sha512");
/// assert_eq!(hash.tag_len(), 64);
/// assert_eq!("sha1".parse::<SignatureAlgorithm>().unwrap().to_string(), "hmac-sha1");
/// assert_eq!(SignatureAlgorithm::default(), SignatureAlgorithm::Sha256);
/// assert_eq!(SignatureAlgorithm::ALL.len(), 3);
/// ```
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
    ///
    /// ```
    /// use alm_webhooks::auth::SignatureAlgorithm;
    /// let names: Vec<_> = SignatureAlgorithm::ALL.iter().map(|a| a.as_str()).collect();
    /// assert_eq!(names, ["hmac-sha1", "hmac-sha256", "hmac-sha512"]);
    /// ```
    pub const ALL: [SignatureAlgorithm; 3] = [Self::Sha1, Self::Sha256, Self::Sha512];

    /// The name used in configuration: `hmac-sha256` and so on.
    ///
    /// ```
    /// assert_eq!(alm_webhooks::auth::SignatureAlgorithm::Sha256.as_str(), "hmac-sha256");
    /// ```
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
    ///
    /// ```
    /// use alm_webhooks::auth::SignatureAlgorithm;
    /// assert_eq!(SignatureAlgorithm::Sha1.tag_len(), 20);
    /// ```
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
///
/// ```
/// use alm_webhooks::auth::SignatureAlgorithm;
/// let err = "md5".parse::<SignatureAlgorithm>().unwrap_err();
/// assert!(err.to_string().contains("expected hmac-sha1, hmac-sha256 or hmac-sha512"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an HMAC algorithm: expected hmac-sha1, hmac-sha256 or hmac-sha512")]
pub struct UnknownAlgorithm(String);

impl FromStr for SignatureAlgorithm {
    type Err = UnknownAlgorithm;

    /// `hmac-sha256` or `sha256` (any case), and so on.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bare = match s.get(..5) {
            Some(head) if head.eq_ignore_ascii_case("hmac-") => &s[5..],
            _ => s,
        };
        Self::ALL
            .into_iter()
            .find(|a| a.as_str()[5..].eq_ignore_ascii_case(bare))
            .ok_or_else(|| UnknownAlgorithm(s.to_owned()))
    }
}

/// The longest tag (HMAC-SHA512).
const MAX_TAG: usize = 64;

/// An HMAC keyed with one secret, ready to tag messages. Holds key-derived
/// state, so it has no `Debug`. Boxed: a prepared SHA-512 state is about
/// 350 bytes, and each check copies it to the stack anyway.
#[derive(Clone)]
pub(crate) enum HmacKey {
    Sha1(Box<Hmac<Sha1>>),
    Sha256(Box<Hmac<Sha256>>),
    Sha512(Box<Hmac<Sha512>>),
}

impl HmacKey {
    /// Prepares `secret` for `algorithm`.
    pub(crate) fn new(algorithm: SignatureAlgorithm, secret: &[u8]) -> Self {
        const ANY: &str = "HMAC takes keys of any length";
        match algorithm {
            SignatureAlgorithm::Sha1 => {
                Self::Sha1(Box::new(Mac::new_from_slice(secret).expect(ANY)))
            }
            SignatureAlgorithm::Sha256 => {
                Self::Sha256(Box::new(Mac::new_from_slice(secret).expect(ANY)))
            }
            SignatureAlgorithm::Sha512 => {
                Self::Sha512(Box::new(Mac::new_from_slice(secret).expect(ANY)))
            }
        }
    }

    /// HMAC-SHA256 under 32 bytes from the operating system's random
    /// source (an attacker cannot predict them), to blind comparisons.
    pub(crate) fn random() -> Self {
        Self::new(
            SignatureAlgorithm::Sha256,
            &crate::secret::random_bytes::<32>(),
        )
    }

    /// The tag of the concatenation of `parts`.
    pub(crate) fn tag(&self, parts: &[&[u8]]) -> Tag {
        fn run<M: Mac + Clone>(key: &M, parts: &[&[u8]]) -> Tag {
            let mut mac = key.clone();
            for part in parts {
                mac.update(part);
            }
            Tag::from_slice(&mac.finalize().into_bytes()).expect("HMAC tags fit")
        }
        match self {
            Self::Sha1(key) => run(&**key, parts),
            Self::Sha256(key) => run(&**key, parts),
            Self::Sha512(key) => run(&**key, parts),
        }
    }
}

/// A MAC tag or a decoded candidate, on the stack.
#[derive(Clone, Copy)]
pub(crate) struct Tag {
    bytes: [u8; MAX_TAG],
    len: usize,
}

impl Tag {
    /// No bytes.
    pub(crate) const EMPTY: Self = Self {
        bytes: [0; MAX_TAG],
        len: 0,
    };

    /// A tag holding `bytes`, if they fit.
    pub(crate) fn from_slice(bytes: &[u8]) -> Option<Self> {
        let mut tag = Self {
            bytes: [0; MAX_TAG],
            len: bytes.len(),
        };
        tag.bytes.get_mut(..bytes.len())?.copy_from_slice(bytes);
        Some(tag)
    }

    /// Decodes hex of either case; `None` unless it is whole bytes that fit.
    /// Constant-time in the text's content (`base16ct`), like the compare.
    pub(crate) fn from_hex(text: &str) -> Option<Self> {
        let mut tag = Self::EMPTY;
        tag.len = base16ct::mixed::decode(text, &mut tag.bytes).ok()?.len();
        Some(tag)
    }

    /// The bytes.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// Whether `self` and `other` are equal, in time that depends only on
    /// their lengths (which are public: every tag of an algorithm has the
    /// same).
    pub(crate) fn matches(&self, other: &Tag) -> bool {
        bool::from(self.as_bytes().ct_eq(other.as_bytes()))
    }
}

/// The candidate tags a request's signature header carries, at most
/// [`Candidates::MAX`] of them, on the stack.
pub(crate) struct Candidates {
    tags: [Tag; Candidates::MAX],
    count: usize,
}

impl Candidates {
    /// Candidate signatures looked at per request, at most: a hostile header
    /// cannot make a check cost more than this many comparisons per secret.
    pub(crate) const MAX: usize = 16;

    /// None yet.
    pub(crate) fn new() -> Self {
        Self {
            tags: [Tag::EMPTY; Self::MAX],
            count: 0,
        }
    }

    /// Whether no more fit.
    #[cfg(test)]
    pub(crate) fn is_full(&self) -> bool {
        self.count == Self::MAX
    }

    /// Whether there are none.
    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Adds `tag` (ignored when full).
    pub(crate) fn push(&mut self, tag: Tag) {
        if let Some(slot) = self.tags.get_mut(self.count) {
            *slot = tag;
            self.count += 1;
        }
    }

    /// Whether any candidate is the tag of `message` under any of `keys`.
    /// Every key's tag is compared with every candidate, in constant time,
    /// whatever matches.
    pub(crate) fn match_any(&self, keys: &[HmacKey], message: &[&[u8]]) -> bool {
        let mut matched = false;
        for key in keys {
            let expected = key.tag(message);
            for candidate in &self.tags[..self.count] {
                matched |= expected.matches(candidate);
            }
        }
        matched
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_decodes_both_cases_and_refuses_the_rest() {
        let tag = Tag::from_hex("00ff10Ab").unwrap();
        assert_eq!(tag.as_bytes(), [0x00, 0xff, 0x10, 0xab]);
        assert!(Tag::from_hex("abc").is_none(), "odd length");
        assert!(Tag::from_hex("zz").is_none(), "not hex");
        assert!(Tag::from_hex("+1").is_none(), "a sign is not hex");
        assert!(Tag::from_hex(&"00".repeat(65)).is_none(), "too long");
        assert_eq!(Tag::from_hex("").unwrap().as_bytes(), [0u8; 0]);
    }

    #[test]
    fn matching_needs_equal_length_and_bytes() {
        let a = Tag::from_slice(&[1, 2, 3]).unwrap();
        assert!(a.matches(&Tag::from_slice(&[1, 2, 3]).unwrap()));
        assert!(!a.matches(&Tag::from_slice(&[1, 2, 4]).unwrap()));
        assert!(!a.matches(&Tag::from_slice(&[1, 2]).unwrap()));
        assert!(Tag::from_slice(&[0; 65]).is_none());
    }

    #[test]
    fn candidates_hold_at_most_max_and_match_any_key() {
        let keys = [
            HmacKey::new(SignatureAlgorithm::Sha256, b"old"),
            HmacKey::new(SignatureAlgorithm::Sha256, b"new"),
        ];
        let mut candidates = Candidates::new();
        assert!(candidates.is_empty());
        assert!(!candidates.match_any(&keys, &[b"body"]));
        for _ in 0..Candidates::MAX {
            candidates.push(Tag::from_slice(&[0; 32]).unwrap());
        }
        assert!(candidates.is_full());
        // Full: the valid tag is not taken, so it cannot match.
        candidates.push(keys[1].tag(&[b"body"]));
        assert!(!candidates.match_any(&keys, &[b"body"]));
        let mut candidates = Candidates::new();
        candidates.push(keys[1].tag(&[b"bo", b"dy"]));
        assert!(candidates.match_any(&keys, &[b"body"]));
        assert!(!candidates.match_any(&keys[..1], &[b"body"]));
    }

    #[test]
    fn prepared_key_tags_like_a_fresh_hmac() {
        // RFC 4231 test case 2.
        let key = HmacKey::new(SignatureAlgorithm::Sha256, b"Jefe");
        let tag = key.tag(&[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            tag.as_bytes(),
            Tag::from_hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
                .unwrap()
                .as_bytes()
        );
        // The key is reusable: the same message gives the same tag again.
        let again = key.tag(&[b"what do ya want for nothing?"]);
        assert!(tag.matches(&again));
        let sha512 = HmacKey::new(SignatureAlgorithm::Sha512, b"Jefe");
        assert_eq!(
            sha512.tag(&[b"what do ya want for nothing?"]).as_bytes(),
            Tag::from_hex(
                "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554\
                 9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
            )
            .unwrap()
            .as_bytes()
        );
    }
}
