//! How parse errors are worded: serde_json's messages without their
//! position, trailing commas recognised, JSON kinds named.

use serde_json::value::RawValue;

/// serde_json's message without its " at line L column C" suffix.
pub(super) fn message_of(e: &serde_json::Error) -> String {
    let text = e.to_string();
    if e.line() == 0 {
        return text;
    }
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// Whether the syntax error at (line, column) is a `}` or `]` right after a
/// comma, which serde_json reports by what it expected instead.
pub(super) fn is_trailing_comma(body: &[u8], line: usize, column: usize) -> bool {
    let line_start = body
        .split_inclusive(|&b| b == b'\n')
        .take(line.saturating_sub(1))
        .map(<[u8]>::len)
        .sum::<usize>();
    let offset = line_start + column.saturating_sub(1);
    let (Some(before), Some(at)) = (body.get(..offset), body.get(offset)) else {
        return false;
    };
    matches!(at, b'}' | b']')
        && before.iter().rev().find(|b| !b.is_ascii_whitespace()) == Some(&b',')
}

/// How a JSON value is called in an error: "an object", "a number"….
pub(super) fn kind_of(raw: &RawValue) -> &'static str {
    match raw.get().as_bytes().first() {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

/// What `data_error` says when `data` parses on its own.
pub(super) const INVALID_DATA: &str = "invalid data";

/// The name in serde's "duplicate field `name`".
pub(super) fn duplicate_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("duplicate field `")?;
    Some(rest[..rest.find('`')?].to_owned())
}
