//! Buffering a body within the size limit and the shared byte budget,
//! chunk by chunk, whatever the framework delivers the chunks.

use http::{HeaderMap, header};

use super::budget::Held;
use super::summary::Refusal;

/// The first bytes of every body, not held against the shared budget: the
/// cap on requests in progress bounds them (256 × 64 KiB = 16 MiB by
/// default), so a few large bodies held by stalled clients cannot keep
/// ordinary deliveries (a few KiB) out.
pub(super) const UNCHARGED_BYTES: usize = 64 * 1024;

/// A body being read, holding what it buffers beyond [`UNCHARGED_BYTES`]
/// against the budget: `TooLarge` past the limit, `Busy` when the budget
/// has no room, `Malformed` when it ends before its `Content-Length`. The
/// caller bounds the time.
pub(super) struct BodyBuffer<'a> {
    buffer: Vec<u8>,
    declared: Option<usize>,
    limit: usize,
    held: &'a mut Held,
}

impl<'a> BodyBuffer<'a> {
    /// Starts a body whose size was checked against `limit` already.
    /// Declared within the limit, it is held at once, so a request that
    /// cannot fit is refused before it is read.
    pub(super) fn start(
        headers: &HeaderMap,
        limit: usize,
        held: &'a mut Held,
    ) -> Result<Self, Refusal> {
        let declared = declared_length(headers);
        let mut buffer = Vec::new();
        if let Some(declared) = declared {
            if !held.grow_to(declared.saturating_sub(UNCHARGED_BYTES)) {
                return Err(Refusal::Busy);
            }
            buffer.reserve_exact(declared);
        }
        Ok(Self {
            buffer,
            declared,
            limit,
            held,
        })
    }

    /// Adds a chunk.
    pub(super) fn push(&mut self, data: &[u8]) -> Result<(), Refusal> {
        let length = self.buffer.len() + data.len();
        if length > self.limit {
            return Err(Refusal::TooLarge);
        }
        if length > self.buffer.capacity() {
            let capacity = length.max(self.buffer.capacity() * 2).min(self.limit);
            if !self.held.grow_to(capacity.saturating_sub(UNCHARGED_BYTES)) {
                return Err(Refusal::Busy);
            }
            self.buffer.reserve_exact(capacity - self.buffer.len());
        }
        self.buffer.extend_from_slice(data);
        Ok(())
    }

    /// The whole body, once it ended: as long as it said it would be.
    pub(super) fn finish(self) -> Result<Vec<u8>, Refusal> {
        if self.declared.is_some_and(|n| n != self.buffer.len()) {
            return Err(Refusal::Malformed);
        }
        Ok(self.buffer)
    }
}

fn declared_length(headers: &HeaderMap) -> Option<usize> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}
