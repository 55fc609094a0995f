//! The hop to the backend, shared by the request path (`gateway`) and background delivery
//! (`delivery`): the per-worker connection pool, sending with a deadline and its own error
//! type, header hygiene and the trusted header names, attestation, and the one conversion
//! between a stored [`Event`](crate::store::Event) and an upstream request.

mod attest;
mod headers;
mod pool;
mod request;
mod send;

use std::sync::Arc;

pub use self::attest::attest;
pub use self::headers::{set_forwarded, strip_hop_by_hop, Trusted};
pub use self::pool::{evict_idle, PoolError, UpstreamBody, UpstreamBodyError, UpstreamClient};
pub use self::request::{from_event, to_event, upstream_request};
pub use self::send::{send_observed, status_class, Sent, Traced, UpstreamError};
use crate::secret::Secret;

/// Where a route's verified requests go (`routes[].upstream`).
#[derive(Debug, Clone)]
pub struct Target {
    pub scheme: http::uri::Scheme,
    pub authority: http::uri::Authority,
    /// Never empty; starts with `/`.
    pub path: String,
}

/// `forward:`: what every upstream request carries besides the sender's own headers.
#[derive(Debug, Clone)]
pub struct Forward {
    /// As configured, e.g. `X-Webhook-`.
    pub header_prefix: String,
    pub attestation: Option<Secret>,
}

/// The client every delivery uses: this worker thread's upstream pool.
pub fn client() -> UpstreamClient {
    UpstreamClient
}

/// The header names of a `Forward`, built once per config.
pub fn trusted(forward: &Forward) -> Arc<Trusted> {
    Arc::new(Trusted::new(&forward.header_prefix))
}
