//! Stage 3: read the body, exactly as sent, within a size cap and a deadline.
//!
//! A declared `Content-Length` over the cap is refused before any byte is read; a chunked body
//! is counted as it streams, so an oversized one never sits in memory whole.

use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderMap};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::Rejection;

pub async fn read<B>(
    body: B,
    headers: &HeaderMap,
    max: u64,
    timeout: Duration,
) -> Result<Bytes, Rejection>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(Rejection::TooLarge);
    }
    let limit = usize::try_from(max).unwrap_or(usize::MAX);
    match tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await {
        Err(_) => Err(Rejection::BodyTimeout),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => Err(Rejection::TooLarge),
        Ok(Err(e)) if reset_by_client(&*e) => Err(Rejection::StreamReset),
        Ok(Err(_)) => Err(Rejection::BadBody),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

/// Whether a body error is the client resetting its HTTP/2 stream: the request was cancelled,
/// not malformed.
fn reset_by_client(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(err) = cause {
        if let Some(h2) = err.downcast_ref::<h2::Error>() {
            return h2.is_reset() && h2.is_remote();
        }
        cause = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;

    #[tokio::test]
    async fn caps_and_passes() {
        let h = HeaderMap::new();
        let t = Duration::from_secs(1);
        let ok = read(Full::new(Bytes::from_static(b"12345")), &h, 5, t).await;
        assert_eq!(ok, Ok(Bytes::from_static(b"12345")));
        let big = read(Full::new(Bytes::from_static(b"123456")), &h, 5, t).await;
        assert_eq!(big, Err(Rejection::TooLarge));
        let mut declared = HeaderMap::new();
        declared.insert(header::CONTENT_LENGTH, "6".parse().unwrap());
        let big = read(Full::new(Bytes::new()), &declared, 5, t).await;
        assert_eq!(big, Err(Rejection::TooLarge));
    }
}
