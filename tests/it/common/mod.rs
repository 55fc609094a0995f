//! Shared helpers for the integration tests, one module per concern:
//!
//! - [`gateway`]: a running `hookgate run` process, its logs and signals;
//! - [`cli`]: one-shot `hookgate` commands (`check`, `dlq`, ...);
//! - [`config`]: config files for both;
//! - [`backends`]: a recording backend and free ports;
//! - [`client`]: HTTP/1.1, h2c and raw TCP clients;
//! - [`metrics`]: the Prometheus text of the admin listener;
//! - [`sign`]: request signing and `hookgate sign`;
//! - [`vectors`]: the shared test vectors;
//! - [`redis`], [`tls`]: a private `redis-server`, HTTPS.
//!
//! Everything but `redis` and `tls` is re-exported here, so a test's `use common::*;` has it.
#![allow(dead_code)]

pub mod backends;
pub mod cli;
pub mod client;
pub mod config;
pub mod gateway;
pub mod metrics;
pub mod redis;
pub mod sign;
pub mod tls;
pub mod vectors;

#[allow(unused_imports)]
pub use backends::*;
#[allow(unused_imports)]
pub use cli::*;
#[allow(unused_imports)]
pub use client::*;
#[allow(unused_imports)]
pub use config::*;
#[allow(unused_imports)]
pub use gateway::*;
#[allow(unused_imports)]
pub use metrics::*;
#[allow(unused_imports)]
pub use sign::*;
#[allow(unused_imports)]
pub use vectors::*;

use std::time::Duration;

/// How long to wait for anything that has a signal (start-up, a log line, a metric).
pub const WAIT: Duration = Duration::from_secs(15);

/// The exact body of every signature refusal.
pub const INVALID_SIGNATURE: &str = r#"{"error":"invalid signature"}"#;
