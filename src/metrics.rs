//! Prometheus metrics (docs/metrics.md, "Metric reference"). Labels are route names, scheme reasons, secret ids and status
//! classes: small, operator-chosen sets. Never a raw path, an address or a payload value.

use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// Every metric hookgate exports, registered in its own registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub verify_failures: IntCounterVec,
    pub key_matches: IntCounterVec,
    pub spoofed_headers: IntCounterVec,
    pub rate_limited: IntCounterVec,
    pub rate_limit_keys: IntGaugeVec,
    pub schema_failures: IntCounterVec,
    pub request_duration: HistogramVec,
    pub upstream_duration: HistogramVec,
    pub config_reloads: IntCounterVec,
    pub duplicates: IntCounterVec,
    pub delivery_attempts: IntCounterVec,
    pub store_errors: IntCounterVec,
    pub queue_depth: IntGaugeVec,
    pub queue_oldest_age: GaugeVec,
    pub dead_letters: IntGaugeVec,
    /// 1 when the last reload applied, 0 when it was refused: an alert can tell "the config on
    /// disk is broken now" from "a reload failed once and was fixed since".
    pub config_last_reload_successful: IntGauge,
    /// Always 1; the version is the label.
    pub build_info: IntGaugeVec,
    pub journal_events: IntGauge,
    pub journal_dropped: IntCounterVec,
    pub replays: IntCounterVec,
    pub route_paused: IntGaugeVec,
    /// Connections closed at accept, before any byte is read (`max_connections_per_ip`).
    pub connections_refused: IntCounterVec,
    /// Spans that never reached the collector, by reason: `queue_full` (the collector is
    /// slower than the traffic, or down) or `export_failed`.
    pub trace_spans_dropped: IntCounterVec,
}

const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels)
                .unwrap_or_else(|e| unreachable!("static metric {name}: {e}"));
            registry
                .register(Box::new(c.clone()))
                .unwrap_or_else(|e| unreachable!("register {name}: {e}"));
            c
        };
        let histogram = |name: &str, help: &str, labels: &[&str]| {
            let h = HistogramVec::new(
                HistogramOpts::new(name, help).buckets(BUCKETS.to_vec()),
                labels,
            )
            .unwrap_or_else(|e| unreachable!("static metric {name}: {e}"));
            registry
                .register(Box::new(h.clone()))
                .unwrap_or_else(|e| unreachable!("register {name}: {e}"));
            h
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            let g = IntGaugeVec::new(Opts::new(name, help), labels)
                .unwrap_or_else(|e| unreachable!("static metric {name}: {e}"));
            registry
                .register(Box::new(g.clone()))
                .unwrap_or_else(|e| unreachable!("register {name}: {e}"));
            g
        };
        let queue_oldest_age = GaugeVec::new(
            Opts::new(
                "hookgate_queue_oldest_age_seconds",
                "Age of the oldest event not yet delivered.",
            ),
            &["route"],
        )
        .unwrap_or_else(|e| unreachable!("static metric: {e}"));
        registry
            .register(Box::new(queue_oldest_age.clone()))
            .unwrap_or_else(|e| unreachable!("register: {e}"));
        let m = Self {
            duplicates: counter(
                "hookgate_duplicates_total",
                "Requests answered as duplicates (200 delivered before, 409 in flight).",
                &["route"],
            ),
            delivery_attempts: counter(
                "hookgate_delivery_attempts_total",
                "Background delivery attempts by what followed: delivered, retry, dead_letter.",
                &["route", "result"],
            ),
            store_errors: counter(
                "hookgate_store_errors_total",
                "Store operations that failed, by operation (dedup fails open; a shared route limit goes local; spooling refuses with 503).",
                &["operation"],
            ),
            queue_depth: gauge(
                "hookgate_queue_depth",
                "Events stored and not yet delivered (in flight included).",
                &["route"],
            ),
            queue_oldest_age,
            dead_letters: gauge(
                "hookgate_dead_letters",
                "Events that exhausted their retries, kept for replay.",
                &["route"],
            ),
            requests: counter(
                "hookgate_requests_total",
                "Requests by route and outcome; mode: gateway (inline) or authz (a proxy's check).",
                &["route", "outcome", "reason", "mode"],
            ),
            verify_failures: counter(
                "hookgate_verify_failures_total",
                "Signature verification failures by reason, and the kind of the signature doctor's diagnosis.",
                &["route", "reason", "diagnosis"],
            ),
            key_matches: counter(
                "hookgate_key_matches_total",
                "Which secret verified each request (rotation telemetry).",
                &["route", "key_id"],
            ),
            trace_spans_dropped: counter(
                "hookgate_trace_spans_dropped_total",
                "Spans dropped instead of exported (telemetry.otlp), by reason: queue_full or export_failed.",
                &["reason"],
            ),
            spoofed_headers: counter(
                "hookgate_spoofed_headers_total",
                "Inbound headers that imitated hookgate's trusted headers and were removed.",
                &["route"],
            ),
            rate_limited: counter(
                "hookgate_rate_limited_total",
                "Requests refused by a rate limit, by scope (ip: per address, route: verified traffic).",
                &["route", "scope"],
            ),
            rate_limit_keys: gauge(
                "hookgate_rate_limit_keys",
                "Addresses the per-IP limit tracks, as of the last sweep (capped by max_keys).",
                &["route"],
            ),
            schema_failures: counter(
                "hookgate_schema_failures_total",
                "Payloads that were not JSON or violated the route's schema, by mode.",
                &["route", "mode"],
            ),
            request_duration: histogram(
                "hookgate_request_duration_seconds",
                "Whole-request duration; mode: gateway or authz.",
                &["route", "outcome", "mode"],
            ),
            upstream_duration: histogram(
                "hookgate_upstream_duration_seconds",
                "Time to the backend's response headers.",
                &["route", "status_class"],
            ),
            config_reloads: counter(
                "hookgate_config_reloads_total",
                "Config reloads by result.",
                &["result"],
            ),
            config_last_reload_successful: {
                let g = IntGauge::new(
                    "hookgate_config_last_reload_successful",
                    "1 if the last config reload applied (or none was tried), 0 if it was refused.",
                )
                .unwrap_or_else(|e| unreachable!("static metric: {e}"));
                registry
                    .register(Box::new(g.clone()))
                    .unwrap_or_else(|e| unreachable!("register: {e}"));
                g.set(1);
                g
            },
            journal_events: {
                let g = IntGauge::new(
                    "hookgate_journal_events",
                    "Events the journal holds.",
                )
                .unwrap_or_else(|e| unreachable!("static metric: {e}"));
                registry
                    .register(Box::new(g.clone()))
                    .unwrap_or_else(|e| unreachable!("register: {e}"));
                g
            },
            journal_dropped: counter(
                "hookgate_journal_dropped_total",
                "Journal events not kept: max_events, max_age, queue_full, refusal_rate.",
                &["reason"],
            ),
            replays: counter(
                "hookgate_replays_total",
                "Events sent again from the journal or the dead letters by an operator.",
                &["route"],
            ),
            route_paused: gauge(
                "hookgate_route_paused",
                "1 while a route's background delivery is paused.",
                &["route"],
            ),
            connections_refused: counter(
                "hookgate_connections_refused_total",
                "Connections closed as soon as they were accepted, by reason: max_connections_per_ip.",
                &["reason"],
            ),
            build_info: gauge(
                "hookgate_build_info",
                "Always 1; the running version in the label.",
                &["version"],
            ),
            registry,
        };
        // Both results exported from the start, so `increase()` sees the first error.
        for result in ["ok", "error"] {
            m.config_reloads.with_label_values(&[result]);
        }
        m.connections_refused
            .with_label_values(&["max_connections_per_ip"]);
        m.build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        m
    }

    /// Zero series for a route's alerting inputs, so alert expressions have data before its
    /// first webhook. `queued`: the route delivers in the background (queue gauges too).
    pub fn prime_route(&self, route: &str, queued: bool) {
        self.requests
            .with_label_values(&[route, "forwarded", "", "gateway"]);
        // The doctor's findings that need someone to act: a sender or a proxy to fix.
        for diagnosis in ["unknown", "retired_secret", "body_altered"] {
            self.verify_failures
                .with_label_values(&[route, "mismatch", diagnosis]);
        }
        self.spoofed_headers.with_label_values(&[route]);
        for scope in ["ip", "route"] {
            self.rate_limited.with_label_values(&[route, scope]);
        }
        for class in ["2xx", "5xx", "error", "timeout"] {
            self.upstream_duration.with_label_values(&[route, class]);
        }
        if queued {
            self.queue_depth.with_label_values(&[route]);
            self.queue_oldest_age.with_label_values(&[route]);
            self.dead_letters.with_label_values(&[route]);
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metrics.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
