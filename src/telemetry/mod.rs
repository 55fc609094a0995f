//! Logging set-up, and OpenTelemetry traces when `telemetry.otlp` is configured.
//!
//! - this file: JSON lines on stdout by default, fields flattened to the top level so a log
//!   pipeline can index `route`, `outcome` and `status` directly.
//! - `otlp.rs`: the tracer provider, its bounded span queue and the exporter's thread.
//! - `client.rs`: the exporter's HTTP client (plain or TLS), run on that thread.
//! - `trace.rs`: what the request path and the delivery engine ask of tracing: server, stage
//!   and client spans, W3C context in and out, and the context a queued event keeps.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

mod client;
mod otlp;
mod trace;

pub use self::otlp::{install, OtlpError, OtlpSettings, Tracing};
pub use self::trace::{
    carried, client_span, resumed, stage, strip_context, tracer, ClientSpan, Incoming, ServerSpan,
    Stage,
};

/// `log.format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// Installs the global subscriber. `RUST_LOG`, when set, overrides `level`.
pub fn init(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    // A second init (tests, reload) keeps the first subscriber.
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        // Colour only for a person at a terminal, never into a file or a log pipeline.
        LogFormat::Pretty => builder
            .with_ansi(std::io::stdout().is_terminal())
            .try_init(),
    };
}
