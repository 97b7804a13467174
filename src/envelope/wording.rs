//! How parse errors are worded: serde_json's messages without their
//! position, trailing commas recognised, JSON kinds named.

use serde_json::value::RawValue;

use crate::error::ParseError;

/// serde_json's message without its " at line L column C" suffix, and
/// without the body's values: a quoted string (`invalid type: string
/// "…"`) is dropped, a backquoted name or number cut at 64 characters,
/// the whole at 300. Errors go to logs and answers: they describe the
/// JSON kind and position, never copy what the sender wrote.
pub(super) fn message_of(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let text = match text.rfind(" at line ") {
        Some(at) if e.line() != 0 => &text[..at],
        _ => &text[..],
    };
    without_values(text)
}

/// The longest backquoted text kept, and the longest message.
const QUOTED_CHARS: usize = 64;
const MESSAGE_CHARS: usize = 300;

/// `text` with `"…"` strings removed (with the space before them) and
/// `` `…` `` cut at [`QUOTED_CHARS`], then cut at [`MESSAGE_CHARS`].
fn without_values(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MESSAGE_CHARS + 4));
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                // serde writes strings as Rust debug text: `\"` inside.
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
                if out.ends_with(' ') {
                    out.pop();
                }
            }
            '`' => {
                out.push('`');
                for (kept, c) in chars.by_ref().enumerate() {
                    if c == '`' {
                        break;
                    }
                    if kept < QUOTED_CHARS {
                        out.push(c);
                    } else if kept == QUOTED_CHARS {
                        out.push('…');
                    }
                }
                out.push('`');
            }
            c => out.push(c),
        }
        if out.chars().count() > MESSAGE_CHARS {
            let end = out
                .char_indices()
                .nth(MESSAGE_CHARS)
                .map_or(out.len(), |(i, _)| i);
            out.truncate(end);
            out.push('…');
            break;
        }
    }
    out
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

/// A body that is not JSON: where, and what (a trailing comma named).
pub(super) fn syntax_error(body: &[u8], err: &serde_json::Error) -> ParseError {
    let (line, column) = (err.line(), err.column());
    let message = if is_trailing_comma(body, line, column) {
        "trailing comma".to_owned()
    } else {
        message_of(err)
    };
    ParseError::Syntax {
        line,
        column,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::without_values;

    #[test]
    fn values_are_dropped_and_names_cut() {
        assert_eq!(
            without_values(r#"invalid type: string "jane@example.com", expected u64"#),
            "invalid type: string, expected u64"
        );
        assert_eq!(
            without_values(r#"invalid type: string "a \"quoted\" one", expected u64"#),
            "invalid type: string, expected u64"
        );
        assert_eq!(
            without_values("missing field `eventId`"),
            "missing field `eventId`"
        );
        let long = format!("unknown variant `{}`", "x".repeat(1_000));
        assert_eq!(
            without_values(&long).len(),
            "unknown variant ``".len() + 64 + "…".len()
        );
        assert!(without_values(&"y".repeat(10_000)).chars().count() <= 301);
    }
}
