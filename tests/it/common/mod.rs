//! Shared helpers for the integration tests, one module per concern:
//!
//! - [`gateway`]: a running `hookgate run` process, its logs and signals;
//! - [`cli`]: one-shot `hookgate` commands (`check`, `dlq`, ...);
//! - [`config`]: config files for both;
//! - [`backends`]: a recording backend and free ports;
//! - [`client`]: HTTP/1.1, h2c and raw TCP clients;
//! - [`metrics`]: the Prometheus text of the admin listener;
//! - [`sdk`]: the providers' official SDKs (`tests/interop/`);
//! - [`sign`]: request signing and `hookgate sign`;
//! - [`vectors`]: the shared test vectors;
//! - [`redis`], [`tls`]: a private `redis-server`, HTTPS;
//! - [`redis_ha`]: Sentinel and Cluster deployments of `redis-server`; [`lag`]: a TCP proxy
//!   that delays one direction (a replica that lags behind its primary);
//! - [`otlp`]: an OTLP/HTTP collector that keeps the spans it receives.
//!
//! Everything but `redis`, `redis_ha`, `lag`, `tls`, `otlp` and the Prometheus parser in `metrics` is re-exported here, so a
//! test's `use crate::common::*;` has it. All the tests are one binary (`tests/it/main.rs`), so a
//! helper no test uses is reported as dead code.

pub mod admin;
pub mod backends;
pub mod cli;
pub mod client;
pub mod config;
pub mod gateway;
pub mod lag;
pub mod metrics;
pub mod otlp;
pub mod redis;
pub mod redis_ha;
pub mod sdk;
pub mod sign;
pub mod store;
pub mod tls;
pub mod vectors;

pub use admin::*;
pub use backends::*;
pub use cli::*;
pub use client::*;
pub use config::*;
pub use gateway::*;
pub use metrics::parse_sample;
pub use sdk::*;
pub use sign::*;
pub use vectors::*;

use std::time::Duration;

/// How long to wait for anything that has a signal (start-up, a log line, a metric).
pub const WAIT: Duration = Duration::from_secs(15);

/// Polls every 20 ms until `f` holds; fails the test after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, f: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + timeout;
    while !f() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The exact body of every signature refusal.
pub const INVALID_SIGNATURE: &str = r#"{"error":"invalid signature"}"#;
