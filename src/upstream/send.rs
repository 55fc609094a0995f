//! One request to the backend within a deadline, timed in
//! `hookgate_upstream_duration_seconds`. Failures are this module's own [`UpstreamError`]:
//! the gateway turns them into 502/504, the delivery engine into retry decisions.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;

use super::{strip_hop_by_hop, UpstreamBody, UpstreamClient};
use crate::metrics::Metrics;
use crate::telemetry;

/// The backend's answer, and how long it took to arrive.
pub type Sent = (Response<UpstreamBody>, Duration);

/// Why the backend gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("backend did not answer in time")]
    Timeout,
    #[error("backend unreachable: {0}")]
    Unreachable(#[from] super::PoolError),
}

/// Where an attempt belongs in a trace.
#[derive(Clone, Copy, Default)]
pub struct Traced<'a> {
    /// The server span of the request that brought the event (`None`: a new trace).
    pub parent: Option<&'a opentelemetry::Context>,
    /// Attempts made before this one.
    pub resend_count: u32,
}

/// Sends the request within `timeout`, timed under the route's name, as a client span when
/// tracing is on (its `traceparent` goes to the backend).
pub async fn send_observed(
    client: &UpstreamClient,
    metrics: &Metrics,
    route: &str,
    timeout: Duration,
    mut req: Request<Full<Bytes>>,
    traced: Traced<'_>,
) -> Result<Sent, UpstreamError> {
    let span = telemetry::client_span(traced.parent, &mut req, traced.resend_count);
    // The deadline covers the whole answer: its headers here, and its body as it streams back
    // to the caller (it ends in an error if not complete by then). One function, not two
    // nested ones: each level would copy the whole future once more per request.
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + timeout;
    let result = match tokio::time::timeout_at(deadline, client.request(req)).await {
        Err(_) => Err(UpstreamError::Timeout),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "upstream request failed");
            Err(e.into())
        }
        Ok(Ok(res)) => {
            let mut res = res.map(|body| body.with_deadline(deadline));
            strip_hop_by_hop(res.headers_mut());
            Ok((res, started.elapsed()))
        }
    };
    if let Some(span) = span {
        match &result {
            Ok((res, _)) => span.finish(Some(res.status().as_u16()), ""),
            Err(UpstreamError::Timeout) => span.finish(None, "timeout"),
            Err(UpstreamError::Unreachable(_)) => span.finish(None, "unreachable"),
        }
    }
    let (class, elapsed) = match &result {
        Ok((res, d)) => (status_class(res.status()), d.as_secs_f64()),
        Err(UpstreamError::Timeout) => ("timeout", timeout.as_secs_f64()),
        Err(_) => ("error", timeout.as_secs_f64()),
    };
    metrics
        .upstream_duration
        .with_label_values(&[route, class])
        .observe(elapsed);
    result
}

/// `2xx`, `4xx`, ...: the label of an answer's status.
pub fn status_class(s: http::StatusCode) -> &'static str {
    match s.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}
