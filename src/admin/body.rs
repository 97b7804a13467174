//! The body of an admin answer: whole, or the CSV export as it is written.

use std::fmt;
use std::io;

use tokio::sync::mpsc;

/// The body of an answer of [`AdminApi::respond`](super::AdminApi::respond):
/// whole (JSON, the page), or written as it goes (`GET /records.csv`).
/// With the feature `axum` it is an `http_body::Body`; with `actix`,
/// [`AdminChunks`] is a `Stream`.
#[non_exhaustive]
pub enum AdminBody {
    /// The whole body.
    Whole(Vec<u8>),
    /// The body in chunks, as the export writes them.
    Chunks(AdminChunks),
}

impl fmt::Debug for AdminBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Whole(bytes) => write!(f, "Whole({} bytes)", bytes.len()),
            Self::Chunks(_) => f.write_str("Chunks"),
        }
    }
}

impl AdminBody {
    /// The whole body, its chunks read to the end (the export of a large
    /// table then sits in memory: stream it instead where you can).
    ///
    /// # Errors
    ///
    /// When the export failed midway.
    pub async fn collect(self) -> io::Result<Vec<u8>> {
        match self {
            Self::Whole(bytes) => Ok(bytes),
            Self::Chunks(mut chunks) => {
                let mut out = Vec::new();
                while let Some(chunk) = chunks.next().await {
                    out.extend_from_slice(&chunk?);
                }
                Ok(out)
            }
        }
    }
}

/// The chunks of a streamed body, in order; an `Err` ends it (the export
/// failed midway).
pub struct AdminChunks {
    rx: mpsc::Receiver<io::Result<Vec<u8>>>,
}

impl fmt::Debug for AdminChunks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminChunks").finish_non_exhaustive()
    }
}

impl AdminChunks {
    pub(super) fn new(rx: mpsc::Receiver<io::Result<Vec<u8>>>) -> Self {
        Self { rx }
    }

    /// The next chunk; `None` at the end.
    pub async fn next(&mut self) -> Option<io::Result<Vec<u8>>> {
        self.rx.recv().await
    }
}

#[cfg(feature = "actix")]
impl futures_core::Stream for AdminChunks {
    type Item = io::Result<actix_web::web::Bytes>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.rx
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| c.map(actix_web::web::Bytes::from)))
    }
}

#[cfg(feature = "axum")]
impl http_body::Body for AdminBody {
    type Data = axum::body::Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        use std::task::Poll;
        match self.get_mut() {
            Self::Whole(bytes) if bytes.is_empty() => Poll::Ready(None),
            Self::Whole(bytes) => {
                let data = std::mem::take(bytes);
                Poll::Ready(Some(Ok(http_body::Frame::data(data.into()))))
            }
            Self::Chunks(chunks) => chunks
                .rx
                .poll_recv(cx)
                .map(|chunk| chunk.map(|c| c.map(|c| http_body::Frame::data(c.into())))),
        }
    }

    /// A whole body's length is known (sent as `Content-Length`).
    fn size_hint(&self) -> http_body::SizeHint {
        match self {
            Self::Whole(bytes) => http_body::SizeHint::with_exact(bytes.len() as u64),
            Self::Chunks(_) => http_body::SizeHint::default(),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Self::Whole(bytes) if bytes.is_empty())
    }
}
