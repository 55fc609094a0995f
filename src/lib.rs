//! hookgate: a reverse proxy that lets through only genuine webhooks.
//!
//! It stands in front of any web backend, verifies each webhook's signature over the raw body,
//! refuses what fails, and forwards the rest byte-for-byte with headers the backend can trust.
//!
//! # Layout
//! Layers, each importing only from those below it (`tests/layers.rs` checks there is no cycle):
//! - [`cli`]: the command line and its helper tools (`sign`, `send`, `dlq`, `echo`).
//! - [`server`]: listeners, workers, TLS, connection limits, graceful shutdown, admin endpoints.
//! - [`config`]: the YAML file, its validation into runtime types, reloading; builds everything
//!   below.
//! - [`gateway`]: the request path, one function per stage; [`Rejection`](gateway::Rejection)
//!   maps every refusal to its answer and metrics.
//! - [`delivery`]: background delivery for queue and hybrid routes: retries, dead letters.
//! - [`upstream`]: the hop to the backend: pool, send, attestation, trusted headers.
//! - [`verify`], [`limit`], [`schema`], [`dedup`], [`store`], [`certs`], [`telemetry`]: leaves
//!   that own their policy types; `verify` is pure, with time passed in.
//! - [`doctor`]: after a verification failure, what would have matched; pure, over `verify`.
//! - [`secret`], [`clock`], [`metrics`]: what everything else shares.
//!
//! # Request lifecycle
//! 1. **route**: path (exact or `/*` prefix) and optional host; 404 / 405.
//! 2. **per-IP limit** ([`limit`]): the client's bucket, before the body is read; 429.
//! 3. **body**: read within `max_body_bytes` (413) and `body_timeout` (408), raw bytes kept.
//! 4. **verify**: the route's scheme against every key, constant-time, timestamps held to the
//!    route's window; 401 says nothing more. A sender's challenge (Zoom's URL validation) is
//!    answered here and not forwarded.
//! 5. **route limit** ([`limit`]): the route's bucket, counting verified requests only; 429.
//! 6. **validate** ([`schema`]): the JSON payload against the route's schema; 400 / 422, or
//!    counted and forwarded in shadow mode. The parsed payload is kept for later stages.
//! 7. **dedup** (routes with `dedup:`): a key seen and delivered within its TTL gets 200
//!    `{"status":"duplicate"}`; one whose first copy is still in flight gets 409.
//! 8. **deliver**: inbound copies of trusted headers stripped, hop-by-hop headers removed,
//!    `X-Forwarded-*` and the trusted headers set, the exact body sent to the upstream; its
//!    answer streams back (502 unreachable, 504 too slow). `queue` routes store the event
//!    durably and answer 202 (503 when the store cannot take it); `hybrid` routes answer 202 when the backend misses the deadline.
//!
//! In verify-only mode (`authz`, `server::authz`) a proxy asks instead: stages 1 to 7 run the
//! same, and the answer says which trusted headers to set, or how to refuse, instead of stage 8.
//!
//! Every request is counted, timed and logged once.
#![forbid(unsafe_code)]

pub mod certs;
pub mod cli;
pub mod clock;
pub mod config;
pub mod dedup;
pub mod delivery;
pub mod doctor;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod gateway;
pub mod journal;
pub mod limit;
pub mod metrics;
pub mod schema;
pub mod secret;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod upstream;
pub mod verify;
