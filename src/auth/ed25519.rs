//! Ed25519 keys in Standard Webhooks form (`whpk_…` public, `whsk_…`
//! secret) and strict verification of 64-byte signatures.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};

use crate::Secret;

/// The length of an ed25519 signature.
pub(crate) const SIGNATURE_LEN: usize = 64;

/// Reads a public key: `whpk_` (optional) then the standard base64 of the
/// 32-byte key. `None` unless it is a valid curve point.
pub(crate) fn public_key_from_text(text: &str) -> Option<VerifyingKey> {
    let encoded = text.strip_prefix("whpk_").unwrap_or(text);
    let bytes = Secret::new(STANDARD.decode(encoded).ok()?);
    public_key_from_bytes(bytes.expose())
}

/// A public key from its 32 bytes; `None` for another length or a point
/// that is not on the curve.
pub(crate) fn public_key_from_bytes(bytes: &[u8]) -> Option<VerifyingKey> {
    let bytes: &[u8; 32] = bytes.try_into().ok()?;
    VerifyingKey::from_bytes(bytes).ok()
}

/// Reads a secret key: `whsk_` then the standard base64 of the 32-byte seed,
/// or of the 64-byte seed-and-public-key form (whose public half must be
/// the seed's).
pub(crate) fn signing_key_from_text(text: &str) -> Option<SigningKey> {
    let encoded = text.strip_prefix("whsk_")?;
    let bytes = Secret::new(STANDARD.decode(encoded).ok()?);
    match bytes.expose().len() {
        32 => {
            let seed: &[u8; 32] = bytes.expose().try_into().ok()?;
            Some(SigningKey::from_bytes(seed))
        }
        64 => {
            let pair: &[u8; 64] = bytes.expose().try_into().ok()?;
            SigningKey::from_keypair_bytes(pair).ok()
        }
        _ => None,
    }
}

/// Whether any of `signatures` is a valid signature of `message` under any
/// of `keys`, with strict verification (no small-order keys, canonical
/// encodings only). Public values only: no constant-time care is needed.
pub(crate) fn verify_any(keys: &[VerifyingKey], signatures: &[Signature], message: &[u8]) -> bool {
    keys.iter().any(|key| {
        signatures
            .iter()
            .any(|signature| key.verify_strict(message, signature).is_ok())
    })
}

/// A signature from its 64 bytes.
pub(crate) fn signature_from_bytes(bytes: &[u8]) -> Option<Signature> {
    let bytes: &[u8; SIGNATURE_LEN] = bytes.try_into().ok()?;
    Some(Signature::from_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::Signer;

    #[test]
    fn keys_read_in_both_secret_forms_and_refuse_the_rest() {
        let seed = [7u8; 32];
        let key = SigningKey::from_bytes(&seed);
        let short = format!("whsk_{}", STANDARD.encode(seed));
        let long = format!("whsk_{}", STANDARD.encode(key.to_keypair_bytes()));
        assert_eq!(signing_key_from_text(&short).unwrap().to_bytes(), seed);
        assert_eq!(signing_key_from_text(&long).unwrap().to_bytes(), seed);
        let mut wrong_half = key.to_keypair_bytes();
        wrong_half[40] ^= 1;
        assert!(signing_key_from_text(&format!("whsk_{}", STANDARD.encode(wrong_half))).is_none());
        assert!(
            signing_key_from_text(&STANDARD.encode(seed)).is_none(),
            "needs whsk_"
        );
        assert!(signing_key_from_text("whsk_AAAA").is_none(), "three bytes");

        let public = format!("whpk_{}", STANDARD.encode(key.verifying_key().as_bytes()));
        assert_eq!(public_key_from_text(&public), Some(key.verifying_key()));
        assert!(public_key_from_text("whpk_!!").is_none());
        assert!(public_key_from_bytes(&[1; 31]).is_none());

        let signature = key.sign(b"message");
        let keys = [key.verifying_key()];
        assert!(verify_any(&keys, &[signature], b"message"));
        assert!(!verify_any(&keys, &[signature], b"messagf"));
        let parsed = signature_from_bytes(&signature.to_bytes()).unwrap();
        assert!(verify_any(&keys, &[parsed], b"message"));
        assert!(signature_from_bytes(&signature.to_bytes()[..63]).is_none());
    }
}
