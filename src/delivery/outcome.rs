//! What a finished send came to, as the retry schedule sees it.

use std::time::{Duration, SystemTime};

use http_body_util::{BodyExt, Limited};

use super::schedule::{self, Attempt};
use crate::upstream::{Sent, UpstreamError};

/// The part of a backend's answer read (and dropped) so its connection can be reused.
const DRAIN_LIMIT: usize = 64 * 1024;

/// What a finished send came to. The backend's body is read (bounded) in the background so
/// its connection can be reused.
/// `now` reads an HTTP-date `Retry-After`.
pub fn attempt_of(result: Result<Sent, UpstreamError>, now: SystemTime) -> Attempt {
    match result {
        Ok((res, _)) => {
            let status = res.status().as_u16();
            let retry_after = res
                .headers()
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| schedule::retry_after(v, now));
            tokio::spawn(async move {
                let body = Limited::new(res.into_body(), DRAIN_LIMIT);
                let _ = tokio::time::timeout(Duration::from_secs(5), body.collect()).await;
            });
            if (200..300).contains(&status) {
                Attempt::Delivered
            } else {
                Attempt::Status {
                    status,
                    retry_after,
                }
            }
        }
        Err(UpstreamError::Timeout) => Attempt::Timeout,
        Err(UpstreamError::Unreachable(_)) => Attempt::Unreachable,
    }
}
