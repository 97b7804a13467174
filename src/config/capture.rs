//! `ALM_CAPTURE_DIR`: every authenticated delivery (one not answered
//! `401`) written to a file as the raw HTTP/1.1 request (request line,
//! headers, an empty line, the body), for `detect_signature` to find how
//! ALM signs. `Authorization`, `Proxy-Authorization`, `Cookie` and
//! `X-Api-Key` values are written as `[REDACTED]`; the folder is made
//! private (0700), each file 0600; at most `ALM_CAPTURE_MAX_FILES` files
//! and `ALM_CAPTURE_MAX_BYTES` bytes are written, then capture stops with
//! one warning.

use std::io::Write;
use std::path::{Path, PathBuf};
#[cfg(any(feature = "axum", feature = "actix"))]
use std::sync::atomic::AtomicBool;
use std::sync::atomic::{AtomicU64, Ordering};

use super::ConfigError;
use super::vars::Vars;

/// Files written before capture stops, by default: 100.
///
/// ```
/// assert_eq!(alm_webhooks::config::DEFAULT_CAPTURE_MAX_FILES, 100);
/// ```
pub const DEFAULT_CAPTURE_MAX_FILES: u64 = 100;

/// Bytes written before capture stops, by default: 64 MiB.
///
/// ```
/// assert_eq!(alm_webhooks::config::DEFAULT_CAPTURE_MAX_BYTES, 64 << 20);
/// ```
pub const DEFAULT_CAPTURE_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// Header values never written to a capture.
const REDACTED: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
];

/// Where deliveries are captured, when `ALM_CAPTURE_DIR` is set.
///
/// ```
/// use alm_webhooks::config::Config;
/// let config = Config::from_vars([("ALM_CAPTURE_DIR", "/tmp/alm-captures")]).unwrap();
/// let capture = config.capture.as_ref().unwrap();
/// assert_eq!(capture.max_files, alm_webhooks::config::DEFAULT_CAPTURE_MAX_FILES);
/// assert!(Config::from_vars([("ALM_CAPTURE_MAX_FILES", "none")]).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CaptureConfig {
    /// `ALM_CAPTURE_DIR`: the folder (created if absent, made private).
    pub dir: PathBuf,
    /// `ALM_CAPTURE_MAX_FILES` (default [`DEFAULT_CAPTURE_MAX_FILES`]).
    pub max_files: u64,
    /// `ALM_CAPTURE_MAX_BYTES` (default [`DEFAULT_CAPTURE_MAX_BYTES`]).
    pub max_bytes: u64,
}

impl CaptureConfig {
    pub(super) fn read(vars: &Vars) -> Result<Option<Self>, ConfigError> {
        let max_files =
            vars.positive("ALM_CAPTURE_MAX_FILES", DEFAULT_CAPTURE_MAX_FILES, "number")?;
        let max_bytes =
            vars.positive("ALM_CAPTURE_MAX_BYTES", DEFAULT_CAPTURE_MAX_BYTES, "number")?;
        Ok(vars.get("ALM_CAPTURE_DIR").map(|dir| Self {
            dir: PathBuf::from(dir),
            max_files,
            max_bytes,
        }))
    }

    /// The warning a receiver prints at start.
    pub(super) fn warning(&self) -> String {
        format!(
            "ALM_CAPTURE_DIR={}: every authenticated delivery is written there in full. Captures \
             hold signatures made with your secret (a forger can replay them) and learners' \
             data: keep the folder private and delete it once the signature is set up.",
            self.dir.display()
        )
    }
}

/// The capture of deliveries into a folder, shared by every request
/// ([`Config::capture`](super::Config::capture)); bodies over `limit`
/// are not captured.
///
/// ```
/// use alm_webhooks::config::Config;
/// let dir = std::env::temp_dir().join(format!("alm-capture-doc-{}", std::process::id()));
/// let config = Config::from_vars([("ALM_CAPTURE_DIR", dir.to_str().unwrap())]).unwrap();
/// let capture = config.capture().unwrap().unwrap();
/// let headers = [("authorization", &b"Basic czNjcmV0"[..]), ("x-alm-signature", b"abc")];
/// let file = capture.write("POST /webhooks HTTP/1.1", headers.into_iter(), b"{}").unwrap();
/// let text = std::fs::read_to_string(&file).unwrap();
/// assert!(text.contains("authorization: [REDACTED]") && text.contains("x-alm-signature: abc"));
/// std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Debug)]
pub struct Capture {
    dir: PathBuf,
    limit: usize,
    count: AtomicU64,
    written: AtomicU64,
    max_files: u64,
    max_bytes: u64,
    /// The caps were reached (and said so once).
    #[cfg(any(feature = "axum", feature = "actix"))]
    full: AtomicBool,
}

impl Capture {
    /// Creates the folder (private) and the capture.
    pub(super) fn open(config: &CaptureConfig, limit: usize) -> Result<Self, ConfigError> {
        let failed = |e| ConfigError::unavailable("ALM_CAPTURE_DIR", e);
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&config.dir).map_err(failed)?;
        // An existing folder is made private too.
        #[cfg(unix)]
        std::fs::set_permissions(
            &config.dir,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .map_err(failed)?;
        Ok(Self {
            dir: config.dir.clone(),
            limit,
            count: AtomicU64::new(0),
            written: AtomicU64::new(0),
            max_files: config.max_files,
            max_bytes: config.max_bytes,
            #[cfg(any(feature = "axum", feature = "actix"))]
            full: AtomicBool::new(false),
        })
    }

    /// The folder.
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("alm-capture-dir-{}", std::process::id()));
    /// # let config = alm_webhooks::config::Config::from_vars([("ALM_CAPTURE_DIR", dir.to_str().unwrap())]).unwrap();
    /// let capture = config.capture().unwrap().unwrap();
    /// assert_eq!(capture.dir(), dir);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The largest body captured: the endpoint's limit
    /// (`ALM_MAX_BODY_BYTES`); a larger one is answered `413` uncaptured.
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("alm-capture-limit-{}", std::process::id()));
    /// # let config = alm_webhooks::config::Config::from_vars([
    /// #     ("ALM_CAPTURE_DIR", dir.to_str().unwrap()), ("ALM_MAX_BODY_BYTES", "4096")]).unwrap();
    /// let capture = config.capture().unwrap().unwrap();
    /// assert_eq!(capture.limit(), 4096);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Writes one request and returns its file: written under a
    /// temporary name and renamed (a reader never sees half of it),
    /// readable by its owner only.
    ///
    /// # Errors
    ///
    /// The file system's, or the caps reached.
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("alm-capture-write-{}", std::process::id()));
    /// # let config = alm_webhooks::config::Config::from_vars([
    /// #     ("ALM_CAPTURE_DIR", dir.to_str().unwrap()), ("ALM_CAPTURE_MAX_FILES", "1")]).unwrap();
    /// let capture = config.capture().unwrap().unwrap();
    /// assert!(capture.write("POST /webhooks HTTP/1.1", std::iter::empty(), b"{}").is_ok());
    /// assert!(capture.write("POST /webhooks HTTP/1.1", std::iter::empty(), b"{}").is_err(), "one file at most");
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
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

    /// [`Capture::write`]; when capture stops, it says so once (a
    /// `tracing` warning with the feature `tracing`): a flood must not
    /// become a flood of lines.
    #[cfg(any(feature = "axum", feature = "actix"))]
    pub(super) fn write_or_warn<'h>(
        &self,
        request_line: &str,
        headers: impl Iterator<Item = (&'h str, &'h [u8])>,
        body: &[u8],
    ) {
        if self.full.load(Ordering::Relaxed) {
            return;
        }
        if let Err(_e) = self.write(request_line, headers, body) {
            if !self.full.swap(true, Ordering::Relaxed) {
                #[cfg(feature = "tracing")]
                tracing::warn!(dir = %self.dir.display(), error = %_e, "capture stopped");
            }
        }
    }
}

/// The bytes of a request: request line, headers, empty line, body (as
/// one chunk when the request was chunked, so each file is itself a valid
/// HTTP/1.1 request).
fn raw_request<'h>(
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
