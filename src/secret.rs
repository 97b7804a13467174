//! Secret bytes that never print, zeroed when dropped (on `secrecy`).

use std::fmt;

pub use secrecy::ExposeSecret;
use secrecy::SecretBox;

/// A password or signing key.
///
/// Built on [`secrecy::SecretBox`]: its memory is zeroed when it is
/// dropped, its `Debug` prints `Secret([REDACTED])`, and it has no
/// `Display` and no `PartialEq`, so it cannot reach a log line or an error
/// message by accident, nor be compared with `==` (which would not run in
/// constant time). Reading the bytes takes a deliberate
/// [`ExposeSecret::expose_secret`].
///
/// ```
/// use alm_webhooks::{ExposeSecret, Secret};
/// let secret = Secret::from("hunter2");
/// assert_eq!(format!("{secret:?}"), "Secret([REDACTED])");
/// assert_eq!(secret.expose_secret(), b"hunter2");
/// assert!(!secret.is_empty());
/// ```
pub struct Secret(SecretBox<[u8]>);

impl Secret {
    /// Wraps secret bytes.
    ///
    /// ```
    /// use alm_webhooks::{ExposeSecret, Secret};
    /// let key = Secret::new([0xde, 0xad]);
    /// assert_eq!(key.expose_secret(), [0xde, 0xad]);
    /// ```
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(SecretBox::new(bytes.into().into_boxed_slice()))
    }

    /// The secret's bytes, for the crate's own checks.
    pub(crate) fn expose(&self) -> &[u8] {
        self.0.expose_secret()
    }

    /// Whether the secret is empty.
    ///
    /// ```
    /// assert!(alm_webhooks::Secret::from("").is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }
}

impl ExposeSecret<[u8]> for Secret {
    fn expose_secret(&self) -> &[u8] {
        self.expose()
    }
}

impl Clone for Secret {
    fn clone(&self) -> Self {
        Self::new(self.expose())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self::new(s.as_bytes())
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self::new(s.into_bytes())
    }
}

impl From<Vec<u8>> for Secret {
    fn from(v: Vec<u8>) -> Self {
        Self::new(v)
    }
}

impl From<&[u8]> for Secret {
    fn from(v: &[u8]) -> Self {
        Self::new(v)
    }
}

/// `N` bytes from the operating system's random source (`getrandom`), for
/// keys and tokens an attacker must not predict.
///
/// # Panics
///
/// When the operating system has no random source to offer (no crate
/// check can be made safe without one).
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the operating system's random source is unavailable");
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_hold_the_same_bytes_and_random_bytes_differ() {
        let secret = Secret::from(String::from("k"));
        assert_eq!(secret.clone().expose_secret(), b"k");
        assert_eq!(Secret::from(vec![1u8]).expose_secret(), [1]);
        assert_eq!(Secret::from(&b"ab"[..]).expose_secret(), b"ab");
        let (a, b) = (random_bytes::<32>(), random_bytes::<32>());
        assert_ne!(a, b, "two draws of 256 bits do not collide");
        assert_ne!(a, [0; 32]);
    }
}
