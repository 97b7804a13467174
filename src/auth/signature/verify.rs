//! Checking a request's signature header: reading the candidates, the
//! timestamp, and comparing in constant time.

use http::{HeaderMap, HeaderName};
use time::OffsetDateTime;

use super::{MAX_HEADER_BYTES, SignatureAuth};
use crate::Timestamp;
use crate::auth::mac::Candidates;
use crate::auth::signature_text::{decode_exact, entries, strip_prefix_ignore_case};
use crate::auth::{AuthError, ed25519};

impl SignatureAuth {
    /// Checks the signature header against `body`, now.
    ///
    /// # Errors
    ///
    /// As [`SignatureAuth::verify_at`].
    ///
    /// ```
    /// use alm_webhooks::auth::{AuthError, SignatureAuth};
    ///
    /// // Rotation: the old and the new secret are both accepted.
    /// let auth = SignatureAuth::new("old").also_accept("new");
    /// let mut headers = http::HeaderMap::new();
    /// let signed = SignatureAuth::new("new").sign_base64(b"{}");
    /// headers.insert("x-alm-signature", format!("sha256={signed}").parse().unwrap());
    /// assert!(auth.verify(&headers, b"{}").is_ok());
    /// // A truncated signature is malformed, never a match.
    /// headers.insert("x-alm-signature", signed[..20].parse().unwrap());
    /// assert_eq!(auth.verify(&headers, b"{}"), Err(AuthError::Malformed("signature")));
    /// ```
    pub fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), AuthError> {
        self.verify_at(headers, body, OffsetDateTime::now_utc())
    }

    /// Checks the signature header against `body`, with "now" given.
    ///
    /// # Errors
    ///
    /// [`AuthError::MissingHeader`], [`AuthError::Malformed`] (no candidate
    /// decodes to a signature of the right length, or a signed header or
    /// the timestamp is unreadable), [`AuthError::TimestampOutOfTolerance`]
    /// or [`AuthError::SignatureMismatch`].
    ///
    /// ```
    /// use alm_webhooks::auth::{AuthError, SignatureAuth};
    /// use http::HeaderName;
    /// let auth = SignatureAuth::new("k")
    ///     .with_signed_content("{x-ts}.{body}".parse().unwrap())
    ///     .with_timestamp_header(HeaderName::from_static("x-ts"));
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("x-ts", "1725524713".parse().unwrap());
    /// headers.insert("x-alm-signature", auth.sign_request(&headers, b"{}").unwrap().parse().unwrap());
    /// let then = time::OffsetDateTime::from_unix_timestamp(1725524713).unwrap();
    /// assert!(auth.verify_at(&headers, b"{}", then).is_ok());
    /// let later = then + time::Duration::minutes(6);
    /// assert_eq!(auth.verify_at(&headers, b"{}", later), Err(AuthError::TimestampOutOfTolerance));
    /// ```
    pub fn verify_at(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<(), AuthError> {
        let (tags, signatures) = self.candidates(headers)?;
        if let Some(header) = &self.timestamp {
            self.check_time(headers, header, now)?;
        }
        let pieces = self.signed.pieces(headers, body)?;
        let hmac = !tags.is_empty() && tags.match_any(&self.keys, &pieces);
        let ed25519 = !hmac
            && !signatures.is_empty()
            && ed25519::verify_any(&self.public_keys, &signatures, &pieces.concat());
        if hmac || ed25519 {
            Ok(())
        } else {
            Err(AuthError::SignatureMismatch)
        }
    }

    /// The checks that need only the headers, for a front door that
    /// refuses before reading the body: the signature header is present
    /// and holds a candidate of the right length, the signed headers are
    /// there, and the timestamp (when one is configured) is within the
    /// tolerance. Passing says nothing about the signature itself.
    pub(crate) fn verify_headers_at(
        &self,
        headers: &HeaderMap,
        now: OffsetDateTime,
    ) -> Result<(), AuthError> {
        self.candidates(headers)?;
        if let Some(header) = &self.timestamp {
            self.check_time(headers, header, now)?;
        }
        self.signed.pieces(headers, b"").map(drop)
    }

    fn check_time(
        &self,
        headers: &HeaderMap,
        header: &HeaderName,
        now: OffsetDateTime,
    ) -> Result<(), AuthError> {
        let value = headers
            .get(header)
            .ok_or(AuthError::MissingHeader("timestamp"))?;
        let text = value
            .to_str()
            .map_err(|_| AuthError::Malformed("timestamp"))?;
        let time = match text.parse::<i64>() {
            Ok(n) if text.bytes().all(|b| b.is_ascii_digit()) => Timestamp::from_epoch(n),
            _ => Timestamp::from_rfc3339(text),
        }
        .map_err(|_| AuthError::Malformed("timestamp"))?;
        let distance = (now - time.instant()).unsigned_abs();
        if distance > self.tolerance {
            return Err(AuthError::TimestampOutOfTolerance);
        }
        Ok(())
    }

    /// Decodes the candidate HMAC tags and ed25519 signatures of every
    /// value of the header.
    fn candidates(
        &self,
        headers: &HeaderMap,
    ) -> Result<(Candidates, Vec<ed25519_dalek::Signature>), AuthError> {
        let name = "signature";
        let mut values = headers.get_all(&self.header).iter().peekable();
        if values.peek().is_none() {
            return Err(AuthError::MissingHeader(name));
        }
        let mut tags = Candidates::new();
        let mut signatures = Vec::new();
        let mut total = 0usize;
        let split_commas = !self.prefix.as_deref().unwrap_or("").contains(',');
        let mut looked_at = 0;
        for value in values {
            total += value.len();
            if total > MAX_HEADER_BYTES {
                return Err(AuthError::Malformed(name));
            }
            // A value that is not text carries no signature; others may.
            let Ok(text) = std::str::from_utf8(value.as_bytes()) else {
                continue;
            };
            for entry in entries(text, split_commas) {
                if looked_at == Candidates::MAX {
                    break;
                }
                looked_at += 1;
                let Some(entry) = self.strip_prefix(entry) else {
                    continue;
                };
                if !self.keys.is_empty() {
                    if let Some(tag) = decode_exact(entry, self.algorithm.tag_len()) {
                        tags.push(tag);
                    }
                }
                if !self.public_keys.is_empty() {
                    if let Some(sig) = decode_exact(entry, ed25519::SIGNATURE_LEN)
                        .and_then(|t| ed25519::signature_from_bytes(t.as_bytes()))
                    {
                        signatures.push(sig);
                    }
                }
            }
        }
        if tags.is_empty() && signatures.is_empty() {
            return Err(AuthError::Malformed(name));
        }
        Ok((tags, signatures))
    }

    /// The entry without the configured prefix (`None` when it lacks it),
    /// or without the algorithm's optional one when none is configured.
    fn strip_prefix<'a>(&self, entry: &'a str) -> Option<&'a str> {
        match &self.prefix {
            Some(prefix) => strip_prefix_ignore_case(entry, prefix),
            None => Some(strip_prefix_ignore_case(entry, self.algorithm.prefix()).unwrap_or(entry)),
        }
    }
}
