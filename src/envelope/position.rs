//! Where a fault is in the body: lines and columns for the errors of bad
//! events.

use crate::error::EventError;

/// A 1-based line and byte column in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Position {
    pub(super) line: usize,
    pub(super) column: usize,
}

/// Turns byte offsets into lines and columns, walking forward through the
/// body once (events are visited in order), so that reporting many bad events
/// costs one pass.
pub(super) struct Cursor<'a> {
    body: &'a [u8],
    offset: usize,
    at: Position,
}

impl<'a> Cursor<'a> {
    pub(super) fn new(body: &'a [u8]) -> Self {
        Self {
            body,
            offset: 0,
            at: Position { line: 1, column: 1 },
        }
    }

    /// Where `part` (a slice borrowed from the body) begins.
    pub(super) fn locate(&mut self, part: &str) -> Position {
        let target = (part.as_ptr() as usize)
            .checked_sub(self.body.as_ptr() as usize)
            .filter(|&o| o <= self.body.len());
        let Some(target) = target else {
            return self.at;
        };
        if target < self.offset {
            self.offset = 0;
            self.at = Position { line: 1, column: 1 };
        }
        self.at = advance(self.at, &self.body[self.offset..target]);
        self.offset = target;
        self.at
    }

    /// Where `inner`, a slice of `outer` that begins at `base`, begins.
    pub(super) fn locate_within(&self, base: Position, outer: &str, inner: &str) -> Position {
        let start = (inner.as_ptr() as usize)
            .checked_sub(outer.as_ptr() as usize)
            .filter(|&o| o <= outer.len())
            .unwrap_or(0);
        advance(base, &outer.as_bytes()[..start])
    }
}

fn advance(mut at: Position, bytes: &[u8]) -> Position {
    for &b in bytes {
        if b == b'\n' {
            at.line += 1;
            at.column = 1;
        } else {
            at.column += 1;
        }
    }
    at
}

impl EventError {
    /// Places the error at serde's position inside `part`, which begins at
    /// `start` in the body.
    pub(super) fn set_position(&mut self, start: Position, _part: &str, e: &serde_json::Error) {
        let (line, column) = (e.line(), e.column());
        let at = if line <= 1 {
            Position {
                line: start.line,
                column: start.column + column.saturating_sub(1),
            }
        } else {
            Position {
                line: start.line + line - 1,
                column,
            }
        };
        self.line = at.line;
        self.column = at.column;
    }
}
