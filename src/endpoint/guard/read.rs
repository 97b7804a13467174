//! Reading a body within the size limit and the shared byte budget.

use axum_core::body::Body;
use http::{HeaderMap, header};
use http_body_util::BodyExt;

use super::budget::Held;
use super::summary::Refusal;

/// The first bytes of every body, not held against the shared budget: the
/// cap on requests in progress bounds them (256 × 64 KiB = 16 MiB by
/// default), so a few large bodies held by stalled clients cannot keep
/// ordinary deliveries (a few KiB) out.
pub(super) const UNCHARGED_BYTES: usize = 64 * 1024;

/// Reads `body` whole, holding what it buffers beyond
/// [`UNCHARGED_BYTES`] against the budget:
/// `TooLarge` past `limit`, `Busy` when the budget has no room, `Malformed`
/// when the body breaks off or ends before its `Content-Length`. The caller
/// bounds the time.
pub(super) async fn read_body(
    mut body: Body,
    headers: &HeaderMap,
    limit: usize,
    held: &mut Held,
) -> Result<Vec<u8>, Refusal> {
    let declared = declared_length(headers);
    let mut buffer = Vec::new();
    if let Some(declared) = declared {
        // Declared within the limit (checked before): hold it at once, so
        // a request that cannot fit is refused before it is read.
        if !held.grow_to(declared.saturating_sub(UNCHARGED_BYTES)) {
            return Err(Refusal::Busy);
        }
        buffer.reserve_exact(declared);
    }
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| Refusal::Malformed)?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        let length = buffer.len() + data.len();
        if length > limit {
            return Err(Refusal::TooLarge);
        }
        if length > buffer.capacity() {
            let capacity = length.max(buffer.capacity() * 2).min(limit);
            if !held.grow_to(capacity.saturating_sub(UNCHARGED_BYTES)) {
                return Err(Refusal::Busy);
            }
            buffer.reserve_exact(capacity - buffer.len());
        }
        buffer.extend_from_slice(&data);
    }
    if declared.is_some_and(|n| n != buffer.len()) {
        return Err(Refusal::Malformed);
    }
    Ok(buffer)
}

fn declared_length(headers: &HeaderMap) -> Option<usize> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}
