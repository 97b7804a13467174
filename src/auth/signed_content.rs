//! What a signature covers: the body, or the body with header values
//! before it (`{timestamp}.{body}`, `{id}.{timestamp}.{body}`).

use std::fmt;
use std::str::FromStr;

use http::{HeaderMap, HeaderName};

use super::AuthError;

/// The longest header value put into the signed content.
const MAX_HEADER_BYTES: usize = 1024;

/// The bytes a signature covers, written as a template: `{body}` is the raw
/// body, `{header-name}` the value of that request header, and any other
/// text is taken literally. The body must appear exactly once.
///
/// ```
/// use alm_webhooks::auth::SignedContent;
/// let content: SignedContent = "{webhook-id}.{webhook-timestamp}.{body}".parse().unwrap();
/// assert_eq!(content.to_string(), "{webhook-id}.{webhook-timestamp}.{body}");
/// assert_eq!(content.header_names().count(), 2);
/// assert_eq!(SignedContent::body().to_string(), "{body}");
///
/// let err = "{x-timestamp}.".parse::<SignedContent>().unwrap_err();
/// assert!(err.to_string().contains("{body}"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedContent {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Header(HeaderName),
    Body,
}

/// Why a signed-content template was refused; names the position.
///
/// ```
/// use alm_webhooks::auth::SignedContent;
/// let err = "{x-ts}.{body".parse::<SignedContent>().unwrap_err();
/// assert!(err.to_string().starts_with("signed content \"{x-ts}.{body\""), "{err}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("signed content {template:?}: {reason}")]
pub struct InvalidSignedContent {
    template: String,
    reason: String,
}

impl SignedContent {
    /// The raw body alone (the default).
    ///
    /// ```
    /// use alm_webhooks::auth::SignedContent;
    /// assert_eq!(SignedContent::body().to_string(), "{body}");
    /// ```
    pub fn body() -> Self {
        Self {
            parts: vec![Part::Body],
        }
    }

    /// `{header}.{body}`: a header's value (often a timestamp), a dot, the body.
    ///
    /// ```
    /// use alm_webhooks::auth::SignedContent;
    /// let content = SignedContent::header_then_body(http::HeaderName::from_static("x-ts"));
    /// assert_eq!(content, "{x-ts}.{body}".parse().unwrap());
    /// ```
    pub fn header_then_body(header: HeaderName) -> Self {
        Self {
            parts: vec![Part::Header(header), Part::Text(".".into()), Part::Body],
        }
    }

    /// `{first}.{second}.{body}` (Standard Webhooks' `{id}.{timestamp}.{body}`).
    ///
    /// ```
    /// use alm_webhooks::auth::SignedContent;
    /// use http::HeaderName;
    /// let content = SignedContent::headers_then_body(
    ///     HeaderName::from_static("webhook-id"),
    ///     HeaderName::from_static("webhook-timestamp"),
    /// );
    /// assert_eq!(content.to_string(), "{webhook-id}.{webhook-timestamp}.{body}");
    /// ```
    pub fn headers_then_body(first: HeaderName, second: HeaderName) -> Self {
        Self {
            parts: vec![
                Part::Header(first),
                Part::Text(".".into()),
                Part::Header(second),
                Part::Text(".".into()),
                Part::Body,
            ],
        }
    }

    /// Whether the content is the body alone.
    ///
    /// ```
    /// use alm_webhooks::auth::SignedContent;
    /// assert!(SignedContent::body().is_body());
    /// assert!(!SignedContent::header_then_body(http::HeaderName::from_static("x-ts")).is_body());
    /// ```
    pub fn is_body(&self) -> bool {
        self.parts == [Part::Body]
    }

    /// The headers whose values are signed, in order.
    ///
    /// ```
    /// use alm_webhooks::auth::SignedContent;
    /// let content: SignedContent = "{webhook-id}.{webhook-timestamp}.{body}".parse().unwrap();
    /// let names: Vec<_> = content.header_names().map(|h| h.as_str()).collect();
    /// assert_eq!(names, ["webhook-id", "webhook-timestamp"]);
    /// ```
    pub fn header_names(&self) -> impl Iterator<Item = &HeaderName> {
        self.parts.iter().filter_map(|p| match p {
            Part::Header(name) => Some(name),
            _ => None,
        })
    }

    /// The content's pieces for `headers` and `body`, to stream into a MAC.
    ///
    /// # Errors
    ///
    /// [`AuthError::MissingHeader`] or [`AuthError::Malformed`] (repeated,
    /// not text, over 1 KiB) for a signed header.
    pub(crate) fn pieces<'a>(
        &'a self,
        headers: &'a HeaderMap,
        body: &'a [u8],
    ) -> Result<Vec<&'a [u8]>, AuthError> {
        const NAME: &str = "signed-content header";
        self.parts
            .iter()
            .map(|part| match part {
                Part::Text(text) => Ok(text.as_bytes()),
                Part::Body => Ok(body),
                Part::Header(name) => {
                    let mut values = headers.get_all(name).iter();
                    let value = values.next().ok_or(AuthError::MissingHeader(NAME))?;
                    if values.next().is_some() || value.len() > MAX_HEADER_BYTES {
                        return Err(AuthError::Malformed(NAME));
                    }
                    value.to_str().map_err(|_| AuthError::Malformed(NAME))?;
                    Ok(value.as_bytes())
                }
            })
            .collect()
    }
}

impl Default for SignedContent {
    fn default() -> Self {
        Self::body()
    }
}

impl FromStr for SignedContent {
    type Err = InvalidSignedContent;

    fn from_str(template: &str) -> Result<Self, Self::Err> {
        let fail = |reason: String| InvalidSignedContent {
            template: template.to_owned(),
            reason,
        };
        let mut parts = Vec::new();
        let mut rest = template;
        let mut offset = 0;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| fail(format!("`{{` at byte {} is not closed", offset + open)))?;
            let name = &rest[open + 1..open + close];
            if name == "body" {
                parts.push(Part::Body);
            } else {
                let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                    fail(format!(
                        "`{{{name}}}` at byte {} is neither {{body}} nor a header name",
                        offset + open
                    ))
                })?;
                parts.push(Part::Header(header));
            }
            offset += open + close + 1;
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        match parts.iter().filter(|p| **p == Part::Body).count() {
            1 => Ok(Self { parts }),
            n => Err(fail(format!("`{{body}}` must appear once, not {n} times"))),
        }
    }
}

impl fmt::Display for SignedContent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &self.parts {
            match part {
                Part::Text(text) => f.write_str(text)?,
                Part::Header(name) => write!(f, "{{{name}}}")?,
                Part::Body => f.write_str("{body}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_round_trip_and_errors_name_the_position() {
        for t in [
            "{body}",
            "{x-ts}.{body}",
            "{a}.{b}.{body}",
            "v0:{x-ts}:{body}",
            "{body}\n",
        ] {
            assert_eq!(t.parse::<SignedContent>().unwrap().to_string(), t);
        }
        let err = "{x-ts".parse::<SignedContent>().unwrap_err().to_string();
        assert!(err.contains("byte 0"), "{err}");
        let err = "{body}.{bad name}"
            .parse::<SignedContent>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("byte 7"), "{err}");
        let err = "{body}{body}"
            .parse::<SignedContent>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("2 times"), "{err}");
    }

    #[test]
    fn pieces_read_the_headers() {
        let content: SignedContent = "{x-ts}.{body}".parse().unwrap();
        let mut headers = HeaderMap::new();
        assert_eq!(
            content.pieces(&headers, b"b"),
            Err(AuthError::MissingHeader("signed-content header"))
        );
        headers.insert("x-ts", "123".parse().unwrap());
        assert_eq!(content.pieces(&headers, b"b").unwrap().concat(), b"123.b");
        headers.append("x-ts", "124".parse().unwrap());
        assert!(content.pieces(&headers, b"b").is_err(), "repeated");
        assert!(content == SignedContent::header_then_body(HeaderName::from_static("x-ts")));
    }
}
