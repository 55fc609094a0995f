//! Stage 8 (sync delivery): send the verified request to the backend and hand back its answer.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, Request, Response, Uri};
use http_body_util::Full;
use sha2::{Digest, Sha256};

use super::headers::{strip_hop_by_hop, Trusted};
pub use super::upstream::{evict_idle, UpstreamBody, UpstreamClient};
use super::{route, Rejection};
use crate::config::{Route, Secret};
use crate::metrics::Metrics;
use crate::verify::Algorithm;

/// The client every delivery uses: this worker thread's upstream pool.
pub fn client() -> UpstreamClient {
    UpstreamClient
}

/// Builds the upstream request from the sender's, whose headers were already cleaned and given
/// the trusted headers. The body is the exact bytes that were verified.
pub fn upstream_request(
    route: &Route,
    mut parts: Parts,
    body: Bytes,
) -> Result<Request<Full<Bytes>>, Rejection> {
    let path = route::upstream_path(route, parts.uri.path());
    let mut pq = path;
    if let Some(q) = parts.uri.query() {
        pq.push('?');
        pq.push_str(q);
    }
    let uri = Uri::builder()
        .scheme(route.upstream.scheme.clone())
        .authority(route.upstream.authority.clone())
        .path_and_query(pq)
        .build()
        .map_err(|_| Rejection::BadBody)?;
    strip_hop_by_hop(&mut parts.headers);
    // The client sets Host from the upstream URI; the original is in X-Forwarded-Host.
    parts.headers.remove(http::header::HOST);
    let mut req = Request::new(Full::new(body));
    *req.method_mut() = parts.method;
    *req.uri_mut() = uri;
    *req.headers_mut() = parts.headers;
    Ok(req)
}

/// `X-Webhook-Attestation: t=<unix>,v1=<hex HMAC-SHA256(secret, t.method.path.sha256(body).provider.key_id)>`.
pub fn attest(
    req: &mut Request<Full<Bytes>>,
    trusted: &Trusted,
    secret: &Secret,
    body: &[u8],
    provider: &str,
    key_id: &str,
    now: u64,
) {
    let msg = format!(
        "{now}.{}.{}.{}.{provider}.{}",
        req.method(),
        req.uri().path(),
        hex::encode(Sha256::digest(body)),
        key_id
    );
    let mac = Algorithm::Sha256.sign(secret.expose(), &[msg.as_bytes()]);
    if let Ok(v) = HeaderValue::from_str(&format!("t={now},v1={}", hex::encode(mac))) {
        req.headers_mut().insert(trusted.attestation.clone(), v);
    }
}

/// Sends the request within the route's timeout: 502 when the backend cannot be reached, 504
/// when it does not answer in time. The response body streams back to the sender.
pub async fn send(
    client: &UpstreamClient,
    req: Request<Full<Bytes>>,
    timeout: Duration,
) -> Result<(Response<UpstreamBody>, Duration), Rejection> {
    let started = Instant::now();
    match tokio::time::timeout(timeout, client.request(req)).await {
        Err(_) => Err(Rejection::UpstreamTimeout),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "upstream request failed");
            Err(Rejection::UpstreamUnreachable)
        }
        Ok(Ok(mut res)) => {
            strip_hop_by_hop(res.headers_mut());
            Ok((res, started.elapsed()))
        }
    }
}

/// [`send`], timed in `hookgate_upstream_duration_seconds`.
pub async fn send_observed(
    client: &UpstreamClient,
    metrics: &Metrics,
    route: &Route,
    req: Request<Full<Bytes>>,
) -> Result<(Response<UpstreamBody>, Duration), Rejection> {
    let result = send(client, req, route.timeout).await;
    let (class, elapsed) = match &result {
        Ok((res, d)) => (super::status_class(res.status()), d.as_secs_f64()),
        Err(Rejection::UpstreamTimeout) => ("timeout", route.timeout.as_secs_f64()),
        Err(_) => ("error", route.timeout.as_secs_f64()),
    };
    metrics
        .upstream_duration
        .with_label_values(&[&route.name, class])
        .observe(elapsed);
    result
}
