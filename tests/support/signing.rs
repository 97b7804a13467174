//! A signer of the tests' own (the `hmac`, `sha1`, `sha2` and
//! `ed25519-dalek` crates directly, not the crate's code), to make
//! deliveries signed in any scheme.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use ed25519_dalek::{Signer as _, SigningKey};
use hmac::{Hmac, Mac};

/// An algorithm with its key.
#[derive(Clone)]
pub enum Signer {
    Sha1(Vec<u8>),
    Sha256(Vec<u8>),
    Sha512(Vec<u8>),
    Ed25519(SigningKey),
}

impl Signer {
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        fn mac<M: Mac + hmac::digest::KeyInit>(key: &[u8], message: &[u8]) -> Vec<u8> {
            let mut mac = <M as Mac>::new_from_slice(key).unwrap();
            mac.update(message);
            mac.finalize().into_bytes().to_vec()
        }
        match self {
            Self::Sha1(key) => mac::<Hmac<sha1::Sha1>>(key, message),
            Self::Sha256(key) => mac::<Hmac<sha2::Sha256>>(key, message),
            Self::Sha512(key) => mac::<Hmac<sha2::Sha512>>(key, message),
            Self::Ed25519(key) => key.sign(message).to_bytes().to_vec(),
        }
    }
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `bytes` written as detect names the encoding.
pub fn encode(bytes: &[u8], encoding: &str) -> String {
    match encoding {
        "hex" => hex(bytes),
        "hex-upper" => hex(bytes).to_uppercase(),
        "base64" => STANDARD.encode(bytes),
        "base64-nopad" => STANDARD_NO_PAD.encode(bytes),
        "base64url" => URL_SAFE.encode(bytes),
        "base64url-nopad" => URL_SAFE_NO_PAD.encode(bytes),
        other => panic!("no encoding {other}"),
    }
}
