//! `telemetry.otlp`: the tracer provider and the way spans leave the process.
//!
//! A finished span goes into a bounded queue with `try_send`: when the queue is full (a dead or
//! slow collector) the span is dropped and counted, never waited for, so the request path
//! cannot be slowed by the collector. One thread, `hookgate-otlp`, batches the queue and exports
//! each batch over OTLP/HTTP (protobuf) on a runtime of its own.

use std::collections::HashMap;
use std::fmt;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender, TrySendError};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry::{Context, InstrumentationScope, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{
    Sampler, SdkTracer, SdkTracerProvider, Span, SpanData, SpanExporter, SpanProcessor,
};
use opentelemetry_sdk::Resource;
use prometheus::{IntCounter, IntCounterVec};

use super::client::Client;

/// Spans in one export request, at most.
const MAX_BATCH: usize = 512;
/// How long a span may wait for its batch to fill.
const BATCH_DELAY: Duration = Duration::from_secs(1);
/// One export request, connection included.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a flush or shutdown waits for the exporter's thread.
const WAIT: Duration = Duration::from_secs(5);

/// `telemetry.otlp` as loaded.
#[derive(Clone, PartialEq)]
pub struct OtlpSettings {
    /// The collector's base URL; traces go to `<endpoint>/v1/traces`. `None`: the standard
    /// `OTEL_EXPORTER_OTLP_*` variables decide, else `http://localhost:4318`.
    pub endpoint: Option<String>,
    /// Sent with every export (a collector's credentials, typically).
    pub headers: Vec<(String, String)>,
    /// `None`: `OTEL_SERVICE_NAME`, else `hookgate`.
    pub service_name: Option<String>,
    /// `None`: the `OTEL_TRACES_SAMPLER` variables, else every trace.
    pub sample_ratio: Option<f64>,
    /// Continue a sender's `traceparent`; off at an edge that does not trust its senders.
    pub trust_incoming_context: bool,
    /// Finished spans waiting for export; more are dropped and counted.
    pub max_queue: usize,
}

impl Default for OtlpSettings {
    fn default() -> Self {
        Self {
            endpoint: None,
            headers: Vec::new(),
            service_name: None,
            sample_ratio: None,
            trust_incoming_context: true,
            max_queue: 2048,
        }
    }
}

impl fmt::Debug for OtlpSettings {
    /// Header values are left out: they are usually credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("OtlpSettings")
            .field("endpoint", &self.endpoint)
            .field("headers", &names)
            .field("service_name", &self.service_name)
            .field("sample_ratio", &self.sample_ratio)
            .field("trust_incoming_context", &self.trust_incoming_context)
            .field("max_queue", &self.max_queue)
            .finish()
    }
}

/// Why tracing could not start.
#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    #[error("telemetry.otlp: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("telemetry.otlp: TLS set-up failed: {0}")]
    Tls(#[from] rustls::Error),
    #[error("telemetry.otlp: cannot start the exporter's thread: {0}")]
    Thread(#[from] std::io::Error),
    #[error("telemetry.otlp: tracing is already installed in this process")]
    Installed,
}

/// Tracing as installed: the tracer every span comes from.
pub struct Tracing {
    pub(super) tracer: SdkTracer,
    pub(super) trust_incoming: bool,
    provider: SdkTracerProvider,
}

static TRACING: OnceLock<Tracing> = OnceLock::new();

/// The installed tracing, if `telemetry.otlp` is configured: one atomic load when it is not.
pub(super) fn installed() -> Option<&'static Tracing> {
    TRACING.get()
}

impl Tracing {
    /// Exports what is queued and stops the exporter, within a few seconds. Blocks.
    pub fn shutdown(&self) {
        if let Err(e) = self.provider.shutdown_with_timeout(WAIT) {
            tracing::warn!(error = %e, "spans still queued at shutdown were not all exported");
        }
    }
}

/// Starts exporting traces; `dropped` counts spans lost to a full queue or a failed export.
pub fn install(s: &OtlpSettings, dropped: IntCounterVec) -> Result<&'static Tracing, OtlpError> {
    if TRACING.get().is_some() {
        return Err(OtlpError::Installed);
    }
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(Client::new(EXPORT_TIMEOUT)?)
        .with_protocol(Protocol::HttpBinary)
        .with_timeout(EXPORT_TIMEOUT);
    if let Some(e) = &s.endpoint {
        exporter = exporter.with_endpoint(format!("{}/v1/traces", e.trim_end_matches('/')));
    }
    if !s.headers.is_empty() {
        exporter = exporter.with_headers(s.headers.iter().cloned().collect::<HashMap<_, _>>());
    }
    let mut exporter = exporter.build()?;

    let mut resource = Resource::builder();
    match &s.service_name {
        Some(name) => resource = resource.with_service_name(name.clone()),
        None if std::env::var_os("OTEL_SERVICE_NAME").is_none() => {
            resource = resource.with_service_name("hookgate");
        }
        None => {}
    }
    let resource = resource
        .with_attributes([
            KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
            KeyValue::new(
                "service.instance.id",
                format!("{:032x}", fastrand::u128(..)),
            ),
        ])
        .build();
    exporter.set_resource(&resource);

    let processor = Queue::start(exporter, s.max_queue.max(1), dropped)?;
    let mut provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(resource);
    if let Some(ratio) = s.sample_ratio {
        let root = Sampler::TraceIdRatioBased(ratio);
        provider = provider.with_sampler(Sampler::ParentBased(Box::new(root)));
    }
    let provider = provider.build();
    let scope = InstrumentationScope::builder("hookgate")
        .with_version(env!("CARGO_PKG_VERSION"))
        .build();
    let tracing = Tracing {
        tracer: provider.tracer_with_scope(scope),
        trust_incoming: s.trust_incoming_context,
        provider,
    };
    TRACING.set(tracing).map_err(|_| OtlpError::Installed)?;
    TRACING.get().ok_or(OtlpError::Installed)
}

/// A request to the exporter's thread.
enum Control {
    Flush(SyncSender<()>),
    Shutdown(SyncSender<()>),
}

/// The span processor: a bounded queue in front of the exporter's thread.
struct Queue {
    spans: SyncSender<SpanData>,
    control: Sender<Control>,
    full: IntCounter,
}

impl fmt::Debug for Queue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Queue")
    }
}

impl Queue {
    fn start<E: SpanExporter + 'static>(
        exporter: E,
        capacity: usize,
        dropped: IntCounterVec,
    ) -> Result<Self, std::io::Error> {
        let (spans, rx) = mpsc::sync_channel(capacity);
        let (control, control_rx) = mpsc::channel();
        let failed = dropped.with_label_values(&["export_failed"]);
        std::thread::Builder::new()
            .name("hookgate-otlp".into())
            .spawn(move || export_loop(exporter, rx, control_rx, failed))?;
        Ok(Self {
            spans,
            control,
            full: dropped.with_label_values(&["queue_full"]),
        })
    }

    fn ask(&self, make: fn(SyncSender<()>) -> Control) -> OTelSdkResult {
        let (tx, rx) = mpsc::sync_channel(1);
        self.control
            .send(make(tx))
            .map_err(|_| OTelSdkError::AlreadyShutdown)?;
        rx.recv_timeout(WAIT)
            .map_err(|_| OTelSdkError::Timeout(WAIT))
    }
}

impl SpanProcessor for Queue {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        match self.spans.try_send(span) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => self.full.inc(),
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.ask(Control::Flush)
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.ask(Control::Shutdown)
    }
}

/// The exporter's thread: a batch goes out when it is full, a second after its first span,
/// or when asked to flush.
fn export_loop<E: SpanExporter>(
    exporter: E,
    spans: Receiver<SpanData>,
    control: Receiver<Control>,
    failed: IntCounter,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the span exporter; no traces will be exported");
            return;
        }
    };
    let mut batch: Vec<SpanData> = Vec::with_capacity(MAX_BATCH);
    let mut first_at = Instant::now();
    let mut failing = false;
    loop {
        match spans.recv_timeout(Duration::from_millis(100)) {
            Ok(span) => {
                if batch.is_empty() {
                    first_at = Instant::now();
                }
                batch.push(span);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let asked = control.try_recv().ok();
        if asked.is_some() {
            batch.extend(spans.try_iter());
        }
        let due = batch.len() >= MAX_BATCH
            || (!batch.is_empty() && first_at.elapsed() >= BATCH_DELAY)
            || asked.is_some();
        while due && !batch.is_empty() {
            let rest = batch.split_off(batch.len().min(MAX_BATCH));
            let chunk = std::mem::replace(&mut batch, rest);
            let n = chunk.len() as u64;
            let result = rt.block_on(async {
                tokio::time::timeout(EXPORT_TIMEOUT, exporter.export(chunk)).await
            });
            match result {
                Ok(Ok(())) => {
                    if failing {
                        tracing::info!("spans are being exported to the collector again");
                    }
                    failing = false;
                }
                Ok(Err(_)) | Err(_) => {
                    failed.inc_by(n);
                    if !failing {
                        let error = match result {
                            Ok(Err(e)) => e.to_string(),
                            _ => format!("no answer within {EXPORT_TIMEOUT:?}"),
                        };
                        tracing::warn!(%error, "cannot export spans to the collector; dropping them (counted in hookgate_trace_spans_dropped_total)");
                    }
                    failing = true;
                }
            }
        }
        match asked {
            Some(Control::Flush(done)) => {
                let _ = done.send(());
            }
            Some(Control::Shutdown(done)) => {
                let _ = exporter.shutdown();
                let _ = done.send(());
                return;
            }
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{Span as _, Tracer as _};
    use prometheus::Opts;

    use super::*;

    /// An exporter whose every export hangs: a collector that accepts and never answers.
    #[derive(Debug)]
    struct Stuck;

    impl SpanExporter for Stuck {
        async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
            std::future::pending::<()>().await;
            Ok(())
        }
    }

    /// Ending a span never waits for the exporter: past the queue's bound spans are dropped
    /// and counted.
    #[test]
    fn a_stuck_exporter_never_blocks_and_drops_are_counted() {
        let dropped =
            IntCounterVec::new(Opts::new("d", "d"), &["reason"]).unwrap_or_else(|e| panic!("{e}"));
        let queue = Queue::start(Stuck, 4, dropped.clone()).unwrap_or_else(|e| panic!("{e}"));
        let provider = SdkTracerProvider::builder()
            .with_span_processor(queue)
            .build();
        let tracer = provider.tracer("t");
        let started = Instant::now();
        for _ in 0..2000 {
            tracer.start("s").end();
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        let full = dropped.with_label_values(&["queue_full"]).get();
        assert!(full >= 2000 - (MAX_BATCH as u64 + 4), "{full}");
        // Its shutdown would wait for the hung export; the test process ends instead.
        std::mem::forget(provider);
    }
}
