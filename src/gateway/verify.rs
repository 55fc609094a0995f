//! Stage 4: the route's scheme over the headers and body exactly as received. The schemes
//! themselves are pure ([`crate::verify`]); this adds the route's public URL and the metrics.

use http::request::Parts;

use super::route::{self, Route};
use super::Rejection;
use crate::metrics::Metrics;
use crate::verify::{Input, Verified};

/// Verifies the request at unix time `now`; which key matched is counted for rotations.
pub fn verify(
    route: &Route,
    parts: &Parts,
    body: &[u8],
    now: u64,
    metrics: &Metrics,
) -> Result<Verified, Rejection> {
    let url = route::sender_url(route, &parts.uri);
    let input = Input {
        headers: &parts.headers,
        body,
        now,
        url: url.as_deref(),
    };
    let verified = route
        .verifier
        .verify(&input)
        .map_err(Rejection::Unverified)?;
    metrics
        .key_matches
        .with_label_values(&[&route.name, &verified.key_id])
        .inc();
    Ok(verified)
}
