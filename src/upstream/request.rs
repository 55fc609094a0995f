//! The upstream request, built once from the sender's and converted to and from the stored
//! [`Event`] that queued deliveries retry.

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderName, HeaderValue, Request, Uri};
use http_body_util::Full;

use super::{strip_hop_by_hop, Target};
use crate::store::{Event, TraceContext};

/// The sender's request aimed at `target` with `path` (already mapped from the route's path),
/// its query kept, hop-by-hop headers removed. The body is the exact bytes that were verified.
pub fn upstream_request(
    target: &Target,
    path: String,
    mut parts: Parts,
    body: Bytes,
) -> Result<Request<Full<Bytes>>, http::Error> {
    let mut pq = path;
    if let Some(q) = parts.uri.query() {
        pq.push('?');
        pq.push_str(q);
    }
    let uri = aimed(target, &pq)?;
    strip_hop_by_hop(&mut parts.headers);
    // The client sets Host from the upstream URI; the original is in X-Forwarded-Host.
    parts.headers.remove(http::header::HOST);
    let mut req = Request::new(Full::new(body));
    *req.method_mut() = parts.method;
    *req.uri_mut() = uri;
    *req.headers_mut() = parts.headers;
    Ok(req)
}

/// What is stored of an upstream request to deliver it later: path, headers, body, and the
/// trace context its attempts continue.
pub fn to_event(
    req: &Request<Full<Bytes>>,
    body: Bytes,
    provider: &str,
    key_id: &str,
    trace: Option<TraceContext>,
) -> Event {
    Event {
        path_and_query: req
            .uri()
            .path_and_query()
            .map_or_else(|| "/".to_string(), |p| p.as_str().to_string()),
        headers: req
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.as_bytes().to_vec()))
            .collect(),
        body,
        provider: provider.to_string(),
        key_id: key_id.to_string(),
        trace,
    }
}

/// The stored request again, aimed at the route's current upstream.
pub fn from_event(target: &Target, event: &Event) -> Result<Request<Full<Bytes>>, http::Error> {
    let mut req = Request::new(Full::new(event.body.clone()));
    *req.method_mut() = http::Method::POST;
    *req.uri_mut() = aimed(target, &event.path_and_query)?;
    let h = req.headers_mut();
    for (k, v) in &event.headers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_bytes(v),
        ) {
            h.append(k, v);
        }
    }
    Ok(req)
}

fn aimed(target: &Target, path_and_query: &str) -> Result<Uri, http::Error> {
    Uri::builder()
        .scheme(target.scheme.clone())
        .authority(target.authority.clone())
        .path_and_query(path_and_query)
        .build()
}
