//! The load examples' side of HTTP/1.1: reading one answer on a
//! keep-alive connection.

use std::io::Read;
use std::net::TcpStream;

/// Reads one HTTP response and tells whether it was a `202`.
pub fn accepted(stream: &mut TcpStream) -> bool {
    let (mut got, mut buf) = (Vec::new(), [0u8; 1024]);
    loop {
        let Ok(k) = stream.read(&mut buf) else {
            return false;
        };
        if k == 0 {
            return false;
        }
        got.extend_from_slice(&buf[..k]);
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).to_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if got.len() >= end + 4 + length {
                return head.starts_with("http/1.1 202");
            }
        }
    }
}
