//! Reading a captured delivery: a raw HTTP/1.1 request as written by the
//! example receivers' `ALM_CAPTURE_DIR` (or by `nc -l`, or by hand).

use http::{HeaderMap, HeaderName, HeaderValue};

/// The longest head (request line and headers) read.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// The most headers read.
const MAX_HEADERS: usize = 200;

/// One captured request: its request line, headers and exact body bytes.
///
/// ```
/// use alm_webhooks::detect::CapturedRequest;
/// let raw = b"POST /webhooks HTTP/1.1\r\nx-alm-signature: abc\r\ncontent-length: 2\r\n\r\n{}";
/// let capture = CapturedRequest::parse(raw).unwrap();
/// assert_eq!(capture.method, "POST");
/// assert_eq!(capture.headers["x-alm-signature"], "abc");
/// assert_eq!(capture.body, b"{}");
///
/// let err = CapturedRequest::parse(b"POST /webhooks HTTP/1.1\r\nno colon\r\n\r\n").unwrap_err();
/// assert!(err.to_string().contains("line 2"), "{err}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedRequest {
    /// The method (`POST`).
    pub method: String,
    /// The request target (`/webhooks`).
    pub target: String,
    /// The headers, in the order captured.
    pub headers: HeaderMap,
    /// The body: everything after the empty line, cut to `Content-Length`
    /// when there is one, de-chunked when the request was chunked.
    pub body: Vec<u8>,
}

/// Why a capture could not be read, with the line or byte it concerns.
///
/// ```
/// use alm_webhooks::detect::CapturedRequest;
/// let err = CapturedRequest::parse(b"POST /webhooks HTTP/1.1\r\ncontent-length: 9\r\n\r\n{}").unwrap_err();
/// assert!(err.to_string().starts_with("capture: "), "{err}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("capture: {0}")]
pub struct CaptureError(String);

impl CapturedRequest {
    /// Reads a raw request. Lines may end in CRLF or LF.
    ///
    /// # Errors
    ///
    /// [`CaptureError`] naming the line or byte: no empty line after the
    /// headers, a bad request line or header, a body shorter than its
    /// `Content-Length`, or bad chunking.
    ///
    /// ```
    /// use alm_webhooks::detect::CapturedRequest;
    /// let raw = b"POST /hook HTTP/1.1\ntransfer-encoding: chunked\n\n2\r\n{}\r\n0\r\n\r\n";
    /// let capture = CapturedRequest::parse(raw).unwrap();
    /// assert_eq!((capture.target.as_str(), capture.body.as_slice()), ("/hook", &b"{}"[..]));
    /// ```
    pub fn parse(raw: &[u8]) -> Result<Self, CaptureError> {
        let fail = |m: String| Err(CaptureError(m));
        let (head, rest) = match split_head(raw) {
            Some(split) => split,
            None if raw.len() > MAX_HEAD_BYTES => {
                return fail(format!("no empty line in the first {MAX_HEAD_BYTES} bytes"));
            }
            None => return fail("no empty line after the headers".to_owned()),
        };
        if head.len() > MAX_HEAD_BYTES {
            return fail(format!("the headers are over {MAX_HEAD_BYTES} bytes"));
        }
        let mut lines = head
            .split(|b| *b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
        let request_line = lines.next().unwrap_or_default();
        let request_line = std::str::from_utf8(request_line)
            .map_err(|_| CaptureError("line 1: the request line is not text".to_owned()))?;
        let mut words = request_line.split(' ');
        let (Some(method), Some(target), Some(version), None) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            return fail(format!(
                "line 1: {request_line:?} is not `METHOD TARGET HTTP/1.1`"
            ));
        };
        if method.is_empty() || !version.starts_with("HTTP/") {
            return fail(format!(
                "line 1: {request_line:?} is not `METHOD TARGET HTTP/1.1`"
            ));
        }
        let mut headers = HeaderMap::new();
        for (index, line) in lines.enumerate() {
            let number = index + 2;
            if headers.len() == MAX_HEADERS {
                return fail(format!("line {number}: more than {MAX_HEADERS} headers"));
            }
            let Some(colon) = line.iter().position(|b| *b == b':') else {
                return fail(format!("line {number}: a header line without `:`"));
            };
            let name = HeaderName::from_bytes(&line[..colon])
                .map_err(|_| CaptureError(format!("line {number}: not a header name")))?;
            let value = HeaderValue::from_bytes(line[colon + 1..].trim_ascii())
                .map_err(|_| CaptureError(format!("line {number}: `{name}` has a bad value")))?;
            headers.append(name, value);
        }
        let body = body(&headers, rest)?;
        Ok(Self {
            method: method.to_owned(),
            target: target.to_owned(),
            headers,
            body,
        })
    }
}

/// The head (without the empty line) and what follows it.
fn split_head(raw: &[u8]) -> Option<(&[u8], &[u8])> {
    let window = &raw[..raw.len().min(MAX_HEAD_BYTES + 4)];
    let crlf = window.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = window.windows(2).position(|w| w == b"\n\n");
    match (crlf, lf) {
        (Some(c), Some(l)) if l < c => Some((&raw[..l], &raw[l + 2..])),
        (Some(c), _) => Some((&raw[..c], &raw[c + 4..])),
        (None, Some(l)) => Some((&raw[..l], &raw[l + 2..])),
        (None, None) => None,
    }
}

fn body(headers: &HeaderMap, rest: &[u8]) -> Result<Vec<u8>, CaptureError> {
    let chunked = headers
        .get_all(http::header::TRANSFER_ENCODING)
        .iter()
        .any(|v| v.as_bytes().to_ascii_lowercase().ends_with(b"chunked"));
    if chunked {
        return dechunk(rest);
    }
    match headers.get(http::header::CONTENT_LENGTH) {
        None => Ok(rest.to_vec()),
        Some(value) => {
            let length: usize = value
                .to_str()
                .ok()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| CaptureError("content-length is not a number".to_owned()))?;
            rest.get(..length).map(<[u8]>::to_vec).ok_or_else(|| {
                CaptureError(format!(
                    "the body has {} bytes, content-length says {length}: the capture is truncated",
                    rest.len()
                ))
            })
        }
    }
}

/// Decodes a chunked body (extensions ignored, trailers dropped).
fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, CaptureError> {
    let mut out = Vec::with_capacity(rest.len());
    let mut offset = 0usize;
    loop {
        let at = offset;
        let fail = |what: &str| CaptureError(format!("chunked body, byte {at}: {what}"));
        let end = rest
            .iter()
            .position(|b| *b == b'\n')
            .ok_or_else(|| fail("a chunk size line without end"))?;
        let line = rest[..end].strip_suffix(b"\r").unwrap_or(&rest[..end]);
        let size = line.split(|b| *b == b';').next().unwrap_or_default();
        let size = std::str::from_utf8(size)
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
            .ok_or_else(|| fail("not a hex chunk size"))?;
        rest = &rest[end + 1..];
        offset += end + 1;
        if size == 0 {
            return Ok(out);
        }
        let chunk = rest
            .get(..size)
            .ok_or_else(|| fail("the chunk is truncated"))?;
        out.extend_from_slice(chunk);
        rest = &rest[size..];
        offset += size;
        rest = rest
            .strip_prefix(b"\r\n")
            .or_else(|| rest.strip_prefix(b"\n"))
            .ok_or_else(|| fail("no line end after the chunk"))?;
        offset += 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_exact_cut_or_dechunked() {
        let c = CapturedRequest::parse(b"POST / HTTP/1.1\nA: 1\n\n{\"a\":\r\n1}").unwrap();
        assert_eq!(c.body, b"{\"a\":\r\n1}");
        let c =
            CapturedRequest::parse(b"POST / HTTP/1.1\r\ncontent-length: 2\r\n\r\n{}\n").unwrap();
        assert_eq!(c.body, b"{}");
        let err =
            CapturedRequest::parse(b"POST / HTTP/1.1\r\ncontent-length: 5\r\n\r\n{}").unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
        let raw = b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{\"\r\n3;x=y\r\na\":\r\n1\r\n1\r\n0\r\n\r\n";
        assert_eq!(CapturedRequest::parse(raw).unwrap().body, b"{\"a\":1");
        let bad = b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n";
        assert!(CapturedRequest::parse(bad).is_err());
        assert!(CapturedRequest::parse(b"GARBAGE\r\n\r\n").is_err());
        assert!(CapturedRequest::parse(b"POST / HTTP/1.1\r\nA: 1").is_err());
        let repeated = CapturedRequest::parse(b"POST / HTTP/1.1\r\nA: 1\r\na: 2\r\n\r\n").unwrap();
        assert_eq!(repeated.headers.get_all("a").iter().count(), 2);
    }
}
