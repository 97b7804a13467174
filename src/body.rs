//! Reading a request's body within the receiver's limit, for any
//! `http_body::Body` (feature `tower`): what the tower service and the
//! axum extractor share.

use http::HeaderMap;
use http_body_util::{BodyExt, Limited};

use crate::{BoxError, DeliveryReceiver, DeliveryRejection};

/// Reads a request's body within the receiver's limit: `413` before reading
/// when `Content-Length` is already over it, or as soon as the body is;
/// `400` when the body cannot be read to the length it declared.
pub(crate) async fn read_body<B>(
    receiver: &DeliveryReceiver,
    headers: &HeaderMap,
    body: B,
) -> Result<impl AsRef<[u8]> + use<B>, DeliveryRejection>
where
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    receiver.check_declared_length(headers)?;
    let limit = receiver.max_body_bytes();
    // Read one byte past the limit so an oversized body is seen as such
    // whatever Content-Length claimed.
    let bytes = match Limited::new(body, limit.saturating_add(1)).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(DeliveryRejection::PayloadTooLarge { limit });
        }
        Err(_) => return Err(DeliveryRejection::UnreadableBody),
    };
    receiver.check_read_length(headers, bytes.len())?;
    Ok(bytes)
}
