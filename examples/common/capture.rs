//! `ALM_CAPTURE_DIR`: every authenticated delivery (one not answered `401`)
//! written to a file as the raw HTTP/1.1 request (request line, headers,
//! an empty line, the body bytes), for `detect_signature` to find how ALM
//! signs. The `Authorization` (and cookie) values are written as
//! `[REDACTED]`; the folder is made private (0700), each file 0600; at most
//! `ALM_CAPTURE_MAX_FILES` files (default 100) and `ALM_CAPTURE_MAX_BYTES`
//! bytes (default 64 MiB) are written, then capture stops with a warning.
//!
//! The request line and headers are as the server parsed them (names in
//! lower case, values byte for byte); a chunked body is written back as one
//! chunk, so each file is itself a valid HTTP/1.1 request.
#![allow(dead_code, unreachable_pub)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use alm_webhooks::DeliveryRejection;

/// Where deliveries are captured.
#[derive(Debug)]
pub struct Capture {
    dir: PathBuf,
    /// The largest body captured (the receiver's limit); larger ones get
    /// the receiver's `413` without being captured.
    limit: usize,
    count: AtomicU64,
    /// Bytes written so far.
    written: AtomicU64,
    max_files: u64,
    max_bytes: u64,
    /// The caps were reached (and said so once).
    full: AtomicBool,
}

/// Header values never written to a capture.
const REDACTED: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
];

impl Capture {
    /// Reads `ALM_CAPTURE_DIR` (created if absent) and warns on stderr
    /// about what the files hold.
    pub fn from_env(limit: usize) -> Result<Option<Self>, String> {
        let Some(dir) = super::var("ALM_CAPTURE_DIR") else {
            return Ok(None);
        };
        let dir = PathBuf::from(dir);
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(&dir)
            .map_err(|e| format!("ALM_CAPTURE_DIR={}: {e}", dir.display()))?;
        // An existing folder is made private too.
        #[cfg(unix)]
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .map_err(|e| format!("ALM_CAPTURE_DIR={}: {e}", dir.display()))?;
        let number = |name: &str, default: u64| match super::var(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{name}={v:?} is not a positive number")),
        };
        let max_files = number("ALM_CAPTURE_MAX_FILES", 100)?;
        let max_bytes = number("ALM_CAPTURE_MAX_BYTES", 64 * 1024 * 1024)?;
        eprintln!(
            "warning: ALM_CAPTURE_DIR={}: every authenticated delivery is written there in full. Captures \
             hold signatures made with your secret (a forger can replay them) and learners' \
             data: keep the folder private and delete it once the signature is set up.",
            dir.display()
        );
        Ok(Some(Self {
            dir,
            limit,
            count: AtomicU64::new(0),
            written: AtomicU64::new(0),
            max_files,
            max_bytes,
            full: AtomicBool::new(false),
        }))
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes one request; returns its file. The file is written under a
    /// temporary name and renamed, so a reader never sees half of it, and
    /// is readable by its owner only.
    pub fn write<'h>(
        &self,
        request_line: &str,
        headers: impl Iterator<Item = (&'h str, &'h [u8])>,
        body: &[u8],
    ) -> std::io::Result<PathBuf> {
        let headers = headers.map(|(name, value)| {
            let secret = REDACTED.iter().any(|r| name.eq_ignore_ascii_case(r));
            (name, if secret { &b"[REDACTED]"[..] } else { value })
        });
        let bytes = raw_request(request_line, headers, body);
        let size = bytes.len() as u64;
        let over_bytes = self.written.fetch_add(size, Ordering::Relaxed) + size > self.max_bytes;
        let over_files = self.count.load(Ordering::Relaxed) >= self.max_files;
        if over_bytes || over_files {
            self.written.fetch_sub(size, Ordering::Relaxed);
            return Err(std::io::Error::other(
                "the capture caps are reached (ALM_CAPTURE_MAX_FILES, ALM_CAPTURE_MAX_BYTES)",
            ));
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let n = self.count.fetch_add(1, Ordering::Relaxed);
        let name = format!("{nanos}-{}-{n}.http", std::process::id());
        let path = self.dir.join(&name);
        let partial = self.dir.join(format!(".{name}.partial"));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&partial)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        std::fs::rename(&partial, &path)?;
        Ok(path)
    }

    fn write_or_warn<'h>(
        &self,
        request_line: &str,
        headers: impl Iterator<Item = (&'h str, &'h [u8])>,
        body: &[u8],
    ) {
        if self.full.load(Ordering::Relaxed) {
            return;
        }
        if let Err(e) = self.write(request_line, headers, body) {
            // Said once: a flood must not become a flood of lines.
            if !self.full.swap(true, Ordering::Relaxed) {
                eprintln!(
                    "warning: capture stopped, nothing more written to {}: {e}",
                    self.dir.display()
                );
            }
        }
    }
}

/// The bytes of a request: request line, headers, empty line, body (as one
/// chunk when the request was chunked).
pub fn raw_request<'h>(
    request_line: &str,
    headers: impl Iterator<Item = (&'h str, &'h [u8])>,
    body: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 1024);
    out.extend_from_slice(request_line.as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut chunked = false;
    for (name, value) in headers {
        chunked |= name.eq_ignore_ascii_case("transfer-encoding")
            && value.to_ascii_lowercase().ends_with(b"chunked");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if chunked {
        if !body.is_empty() {
            out.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
            out.extend_from_slice(body);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
    } else {
        out.extend_from_slice(body);
    }
    out
}

fn request_line(method: &str, target: &str, version: http::Version) -> String {
    let version = match version {
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2",
        _ => "HTTP/1.1",
    };
    format!("{method} {target} {version}")
}

/// The axum middleware: reads the body, captures, and passes the request on.
#[cfg(feature = "axum")]
pub async fn axum_layer(
    axum::extract::State(capture): axum::extract::State<std::sync::Arc<Capture>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, capture.limit).await else {
        let rejection = DeliveryRejection::PayloadTooLarge {
            limit: capture.limit,
        };
        let (parts, body) = rejection.to_response().into_parts();
        return (parts.status, parts.headers, body).into_response();
    };
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let line = request_line(parts.method.as_str(), target, parts.version);
    let headers = parts.headers.clone();
    let response = next
        .run(axum::extract::Request::from_parts(
            parts,
            bytes.clone().into(),
        ))
        .await;
    // Only what passed authentication is kept.
    if response.status() != http::StatusCode::UNAUTHORIZED {
        capture.write_or_warn(
            &line,
            headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())),
            &bytes,
        );
    }
    response
}

/// The actix-web middleware: reads the payload, captures, and puts it back.
#[cfg(feature = "actix")]
pub async fn actix_layer(
    mut request: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    use actix_web::web;
    // Deliveries only: the scope's other routes pass by.
    let delivery = request.method() == actix_web::http::Method::POST
        && request.path() == alm_webhooks::endpoint::DEFAULT_WEBHOOK_PATH;
    let capture = request.app_data::<web::Data<Capture>>().cloned();
    let Some(capture) = capture.filter(|_| delivery) else {
        return next.call(request).await.map(|r| r.map_into_boxed_body());
    };
    let payload = request.extract::<web::Payload>().await?;
    let Ok(Ok(bytes)) = payload.to_bytes_limited(capture.limit).await else {
        let (parts, body) = DeliveryRejection::PayloadTooLarge {
            limit: capture.limit,
        }
        .to_response()
        .into_parts();
        let response = actix_web::HttpResponse::build(
            actix_web::http::StatusCode::from_u16(parts.status.as_u16())
                .unwrap_or(actix_web::http::StatusCode::PAYLOAD_TOO_LARGE),
        )
        .content_type("application/json")
        .body(body);
        return Ok(request.into_response(response));
    };
    let line = request_line(
        request.method().as_str(),
        request.uri().path_and_query().map_or("/", |p| p.as_str()),
        match request.version() {
            actix_web::http::Version::HTTP_10 => http::Version::HTTP_10,
            actix_web::http::Version::HTTP_2 => http::Version::HTTP_2,
            _ => http::Version::HTTP_11,
        },
    );
    let headers: Vec<(String, Vec<u8>)> = request
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect();
    request.set_payload(actix_web::dev::Payload::from(bytes.clone()));
    let response = next.call(request).await.map(|r| r.map_into_boxed_body())?;
    // Only what passed authentication is kept.
    if response.status() != actix_web::http::StatusCode::UNAUTHORIZED {
        capture.write_or_warn(
            &line,
            headers.iter().map(|(n, v)| (n.as_str(), v.as_slice())),
            &bytes,
        );
    }
    Ok(response)
}
