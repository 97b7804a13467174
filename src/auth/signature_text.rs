//! Reading signatures out of header text: splitting a value into entries,
//! prefixes, and hex or base64 decoding to an exact length.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

use super::mac::Tag;

/// The four base64 alphabets and paddings a sender may use.
pub(crate) const BASE64_ENGINES: [&base64::engine::GeneralPurpose; 4] =
    [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD];

/// The entries of a header value: split on spaces and tabs, and on commas
/// too unless the expected prefix itself holds one (`v1,<sig>`).
pub(crate) fn entries(value: &str, split_commas: bool) -> impl Iterator<Item = &str> {
    let separators: &[char] = if split_commas {
        &[' ', '\t', ',']
    } else {
        &[' ', '\t']
    };
    value.split(separators).filter(|e| !e.is_empty())
}

/// `text` without `prefix`, compared without regard to ASCII case.
pub(crate) fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    match text.get(..prefix.len()) {
        Some(head) if head.eq_ignore_ascii_case(prefix) => Some(&text[prefix.len()..]),
        _ => None,
    }
}

/// Decodes hex (either case, exactly `len * 2` characters) or base64 (any
/// alphabet, padded or not) to a tag of exactly `len` bytes.
pub(crate) fn decode_exact(text: &str, len: usize) -> Option<Tag> {
    let hex = (text.len() == len * 2)
        .then(|| Tag::from_hex(text))
        .flatten();
    let tag = if let Some(tag) = hex {
        tag
    } else if text.len() <= len.div_ceil(3) * 4 {
        // Room for any base64 text of that length (the decoder wants its
        // conservative estimate to fit).
        let mut buffer = [0u8; 96];
        let decoded = BASE64_ENGINES
            .iter()
            .find_map(|engine| engine.decode_slice(text, &mut buffer).ok())?;
        Tag::from_slice(&buffer[..decoded])?
    } else {
        return None;
    };
    (tag.as_bytes().len() == len).then_some(tag)
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    base16ct::lower::encode_string(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_prefixes_and_exact_decoding() {
        let all: Vec<_> = entries("a, b\tc,,d", true).collect();
        assert_eq!(all, ["a", "b", "c", "d"]);
        let kept: Vec<_> = entries("v1,x v1,y", false).collect();
        assert_eq!(kept, ["v1,x", "v1,y"]);
        assert_eq!(strip_prefix_ignore_case("SHA256=ab", "sha256="), Some("ab"));
        assert_eq!(strip_prefix_ignore_case("sha2", "sha256="), None);
        assert_eq!(
            strip_prefix_ignore_case("é", "e"),
            None,
            "not at a char boundary"
        );
        assert_eq!(decode_exact("00ff", 2).unwrap().as_bytes(), [0, 255]);
        assert_eq!(decode_exact("AP8=", 2).unwrap().as_bytes(), [0, 255]);
        assert_eq!(decode_exact("AP8", 2).unwrap().as_bytes(), [0, 255]);
        assert_eq!(decode_exact("-_8", 2).unwrap().as_bytes(), [251, 255]);
        assert!(decode_exact("00ff0", 2).is_none(), "too long for either");
        assert!(decode_exact(&"A".repeat(200), 64).is_none());
        assert_eq!(hex(&[0, 171]), "00ab");
    }
}
