//! Just enough HTTP/1.1 for the double: one request per connection, read
//! within a bound.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A request as the double needs it.
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) method: String,
    /// The path, percent-decoded, without the query.
    pub(crate) path: String,
    /// The query, as sent.
    pub(crate) query: String,
    pub(crate) authorization: Option<String>,
    pub(crate) body: Vec<u8>,
    /// When its connection was accepted (every request has its own).
    pub(crate) accepted_at: std::time::Instant,
}

/// An answer: status, extra headers, content type and body.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) content_type: &'static str,
    pub(crate) body: Vec<u8>,
}

const READ_BOUND: Duration = Duration::from_secs(10);
const MAX_REQUEST: usize = 1 << 20;

pub(crate) async fn serve(mut socket: TcpStream, answer: impl FnOnce(Request) -> Response) {
    let accepted_at = std::time::Instant::now();
    let Ok(Some(mut request)) = tokio::time::timeout(READ_BOUND, read(&mut socket)).await else {
        return;
    };
    request.accepted_at = accepted_at;
    let response = answer(request);
    let mut head = format!(
        "HTTP/1.1 {} X\r\ncontent-type: {}\r\ncontent-length: {}\r\nconnection: close\r\n",
        response.status,
        response.content_type,
        response.body.len()
    );
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let write = async {
        socket.write_all(head.as_bytes()).await?;
        socket.write_all(&response.body).await?;
        socket.shutdown().await
    };
    let _ = tokio::time::timeout(READ_BOUND, write).await;
}

async fn read(socket: &mut TcpStream) -> Option<Request> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let (head_end, length) = loop {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 || buffer.len() > MAX_REQUEST {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).to_string();
            let length = header(&head, "content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            break (end + 4, length);
        }
    };
    while buffer.len() < head_end + length {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
    let mut words = head.lines().next()?.split_whitespace();
    let method = words.next()?.to_owned();
    let target = words.next()?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let path = url::form_urlencoded::parse(format!("p={path}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    Some(Request {
        method,
        path,
        query: query.to_owned(),
        authorization: header(&head, "authorization"),
        body: buffer[head_end..head_end + length].to_vec(),
        accepted_at: std::time::Instant::now(),
    })
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines().skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().to_owned())
    })
}
