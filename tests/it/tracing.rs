//! OpenTelemetry traces (`telemetry.otlp`, docs/tracing.md): spans received by a real OTLP/HTTP
//! collector for forwarded, rejected and duplicate requests, the upstream client span and the
//! backend's `traceparent`, queued retries in the original trace, a sender's context trusted or
//! not, and a collector that is down.

use std::time::Duration;

use crate::common::otlp::{Collector, Span};
use crate::common::*;

const SECRET: &str = "tracing-secret";
/// The sender's own trace: `traceparent` of a sampled span.
const SENDER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SENDER_SPAN: &str = "00f067aa0ba902b7";
const SPAN_WAIT: Duration = Duration::from_secs(15);

fn sender_traceparent() -> String {
    format!("00-{SENDER_TRACE}-{SENDER_SPAN}-01")
}

fn otlp(collector_endpoint: &str, extra: Value) -> Value {
    json!({ "otlp": json!({ "endpoint": collector_endpoint, "service_name": "gw-test" }).merge(extra) })
}

fn mc_route(name: &str, upstream: &str, extra: Value) -> Value {
    hooks_route(name, upstream, SECRET, extra)
}

/// A forwarded request: the server span continues the sender's trace with the HTTP and
/// webhook attributes; verify, validate and dedup are its children, and so is the upstream
/// client span, whose context the backend receives. Then a duplicate and a forgery, each with
/// its server span; the log line and the journal carry the trace id; no span carries the
/// secret, the signature or the body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_rejected_and_duplicate_requests_are_traced() {
    let collector = Collector::start();
    let backend = Backend::start();
    let cfg = config(
        &Opts::default(),
        [mc_route("t", &backend.url("/up/t"), json!({"dedup": {}}))],
    )
    .with("telemetry", otlp(&collector.endpoint(), Value::Null))
    .with(
        "admin",
        json!({"listen": "127.0.0.1:0", "token": {"id": "t", "value": "admin-token"}}),
    );
    let gw = Gateway::start(cfg);

    let body = br#"{"job_id":"job-secret-payload","status":"COMPLETE"}"#;
    let signature = sha256_header(SECRET, body);
    let parent = sender_traceparent();
    let headers = [
        ("content-type", "application/json"),
        ("x-mediaconvert-signature", signature.as_str()),
        ("traceparent", parent.as_str()),
        ("tracestate", "sender=1"),
    ];
    let r = post(gw.addr(), "/hooks/t?token=q", &headers, body).await;
    assert_eq!(r.status, 200, "{}", r.text());

    let server = collector
        .wait_span(SPAN_WAIT, |s| {
            s.kind == 2 && s.attr("webhook.outcome") == Some("forwarded")
        })
        .expect("the forwarded request's server span");
    assert_eq!(server.name, "POST /hooks/t");
    assert_eq!(
        server.trace_id, SENDER_TRACE,
        "continues the sender's trace"
    );
    assert_eq!(server.parent_span_id, SENDER_SPAN);
    for (k, v) in [
        ("http.request.method", "POST"),
        ("url.path", "/hooks/t"),
        ("url.scheme", "http"),
        ("http.route", "/hooks/t"),
        ("http.response.status_code", "200"),
        ("client.address", "127.0.0.1"),
        ("server.address", "127.0.0.1"),
        ("webhook.route", "t"),
        ("webhook.provider", "mediaconvert"),
        ("webhook.outcome", "forwarded"),
    ] {
        assert_eq!(server.attr(k), Some(v), "{k} in {:?}", server.attrs);
    }
    assert_eq!(
        server.attr("server.port"),
        Some(gw.addr().port().to_string().as_str())
    );
    assert_eq!(server.status, 0, "a success leaves the status unset");
    assert_eq!(
        server.resource.get("service.name").map(String::as_str),
        Some("gw-test")
    );
    assert!(server.resource.contains_key("service.version"));
    assert!(server.resource.contains_key("service.instance.id"));

    for stage in ["verify", "validate", "dedup"] {
        let s = collector
            .wait_span(SPAN_WAIT, |s| s.name == stage && s.trace_id == SENDER_TRACE)
            .unwrap_or_else(|| panic!("{stage} span"));
        assert_eq!(
            s.parent_span_id, server.span_id,
            "{stage} is the server span's child"
        );
    }
    let client = collector
        .wait_span(SPAN_WAIT, |s| s.kind == 3 && s.trace_id == SENDER_TRACE)
        .expect("the upstream client span");
    assert_eq!(client.parent_span_id, server.span_id);
    assert_eq!(client.name, "POST");
    assert_eq!(client.attr("server.address"), Some("127.0.0.1"));
    assert_eq!(
        client.attr("server.port"),
        Some(backend.addr().port().to_string().as_str())
    );
    let url = format!("http://{}/up/t", backend.addr());
    assert_eq!(client.attr("url.full"), Some(url.as_str()), "no query");
    assert_eq!(client.attr("http.response.status_code"), Some("200"));
    assert_eq!(
        client.attr("http.request.resend_count"),
        None,
        "a first attempt"
    );

    let seen = backend.single();
    assert_eq!(
        seen.header("traceparent"),
        Some(format!("00-{SENDER_TRACE}-{}-01", client.span_id)),
        "the backend continues from the client span"
    );
    assert_eq!(seen.header("tracestate").as_deref(), Some("sender=1"));

    let line = gw
        .wait_request_log(|l| l["outcome"] == "forwarded")
        .expect("log line");
    assert_eq!(line["trace_id"], SENDER_TRACE);

    // The same body again: a duplicate, in the same trace (the sender's retry).
    let r = post(gw.addr(), "/hooks/t", &headers, body).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), r#"{"status":"duplicate"}"#);
    let dup = collector
        .wait_span(SPAN_WAIT, |s| {
            s.kind == 2 && s.attr("webhook.outcome") == Some("duplicate")
        })
        .expect("the duplicate's server span");
    assert_eq!(dup.attr("http.response.status_code"), Some("200"));
    assert_eq!(
        dup.attr("webhook.reason"),
        Some("delivered"),
        "{:?}",
        dup.attrs
    );
    let dedup = collector
        .wait_span(SPAN_WAIT, |s| {
            s.name == "dedup" && s.parent_span_id == dup.span_id
        })
        .expect("the duplicate's dedup span");
    assert_eq!(dedup.attr("webhook.reason"), Some("delivered"));

    // A forgery: 401, status unset (the sender's fault), the doctor's diagnosis on the span.
    let forged = [
        ("content-type", "application/json"),
        ("x-mediaconvert-signature", "sha256=00ff"),
    ];
    let r = post(gw.addr(), "/hooks/t", &forged, b"{\"job_id\":\"x\"}").await;
    assert_eq!(r.status, 401);
    let rejected = collector
        .wait_span(SPAN_WAIT, |s| {
            s.kind == 2 && s.attr("webhook.outcome") == Some("rejected")
        })
        .expect("the rejected request's server span");
    assert_eq!(rejected.name, "POST /hooks/t");
    assert_eq!(
        rejected.parent_span_id, "",
        "no sender context: a new trace"
    );
    assert_eq!(rejected.attr("http.response.status_code"), Some("401"));
    assert!(
        rejected.attr("webhook.reason").is_some(),
        "{:?}",
        rejected.attrs
    );
    assert!(
        rejected.attr("webhook.diagnosis").is_some(),
        "{:?}",
        rejected.attrs
    );
    assert_eq!(rejected.status, 0, "a 4xx leaves the status unset");
    let verify = collector
        .wait_span(SPAN_WAIT, |s| {
            s.name == "verify" && s.parent_span_id == rejected.span_id
        })
        .expect("the forgery's verify span");
    assert_eq!(
        verify.attr("webhook.reason"),
        rejected.attr("webhook.reason")
    );

    // The journal event shows its trace id.
    let r = send(
        gw.admin(),
        "GET",
        "/api/events?outcome=forwarded",
        &[("authorization", "Bearer admin-token")],
        b"",
    )
    .await;
    let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    assert_eq!(v["events"][0]["trace_id"], SENDER_TRACE, "{v}");

    // Never a secret, a signature, a body value or the query in any span.
    let sig_hex = signature.trim_start_matches("sha256=");
    for s in collector.spans() {
        for (k, v) in s.attrs.iter().chain(s.resource.iter()) {
            for banned in [
                SECRET,
                sig_hex,
                "job-secret-payload",
                "token=q",
                "admin-token",
            ] {
                assert!(
                    !v.contains(banned),
                    "span {} attribute {k}={v} leaks {banned}",
                    s.name
                );
            }
        }
    }
}

/// A 5xx is an error with `error.type`; the client span says why the backend gave no answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_backend_is_an_error_span() {
    let collector = Collector::start();
    let upstream = format!("http://127.0.0.1:{}/up", dead_port());
    let cfg = config(&Opts::default(), [mc_route("down", &upstream, Value::Null)])
        .with("telemetry", otlp(&collector.endpoint(), Value::Null));
    let gw = Gateway::start(cfg);
    let r = post_mc(gw.addr(), "/hooks/down", SECRET, b"{}").await;
    assert_eq!(r.status, 502);
    let server = collector
        .wait_span(SPAN_WAIT, |s| s.kind == 2)
        .expect("server span");
    assert_eq!(server.status, 2, "5xx: error");
    assert_eq!(server.attr("http.response.status_code"), Some("502"));
    assert!(server.attr("error.type").is_some(), "{:?}", server.attrs);
    let client = collector
        .wait_span(SPAN_WAIT, |s| s.kind == 3)
        .expect("client span");
    assert_eq!(client.status, 2);
    assert_eq!(client.attr("error.type"), Some("unreachable"));
    assert_eq!(client.parent_span_id, server.span_id);
}

/// `trust_incoming_context: false`: the sender's `traceparent` starts nothing; the request is a
/// new trace that links to it, and the backend gets hookgate's context, not the sender's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_sender_context_starts_a_new_linked_trace() {
    let collector = Collector::start();
    let backend = Backend::start();
    let cfg = config(
        &Opts::default(),
        [mc_route("u", &backend.url("/up"), Value::Null)],
    )
    .with(
        "telemetry",
        otlp(
            &collector.endpoint(),
            json!({"trust_incoming_context": false}),
        ),
    );
    let gw = Gateway::start(cfg);
    let body = b"{}";
    let sig = sha256_header(SECRET, body);
    let parent = sender_traceparent();
    let headers = [
        ("x-mediaconvert-signature", sig.as_str()),
        ("traceparent", parent.as_str()),
    ];
    assert_eq!(
        post(gw.addr(), "/hooks/u", &headers, body).await.status,
        200
    );
    let server = collector
        .wait_span(SPAN_WAIT, |s| s.kind == 2)
        .expect("server span");
    assert_ne!(server.trace_id, SENDER_TRACE);
    assert_eq!(server.parent_span_id, "");
    assert_eq!(server.links, vec![SENDER_TRACE.to_string()]);
    let tp = backend.single().header("traceparent").unwrap_or_default();
    assert!(tp.contains(&server.trace_id), "{tp}");
    assert!(!tp.contains(SENDER_TRACE), "{tp}");
}

/// Without `telemetry.otlp` the sender's W3C headers pass through untouched, as before.
#[tokio::test]
async fn without_tracing_the_senders_context_passes_through() {
    let backend = Backend::start();
    let gw = Gateway::start(config(
        &Opts::default(),
        [mc_route("p", &backend.url("/up"), Value::Null)],
    ));
    let body = b"{}";
    let sig = sha256_header(SECRET, body);
    let parent = sender_traceparent();
    let headers = [
        ("x-mediaconvert-signature", sig.as_str()),
        ("traceparent", parent.as_str()),
        ("tracestate", "sender=1"),
    ];
    assert_eq!(
        post(gw.addr(), "/hooks/p", &headers, body).await.status,
        200
    );
    let seen = backend.single();
    assert_eq!(seen.header("traceparent"), Some(parent));
    assert_eq!(seen.header("tracestate").as_deref(), Some("sender=1"));
    let line = gw.wait_request_log(|_| true).expect("log line");
    assert!(line.get("trace_id").is_none(), "{line}");
}

/// A queued event whose backend is down: every attempt, those after the backend comes back
/// included, is a client span of the accepting request's trace, a child of its server span;
/// retries count their resends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_retries_stay_in_the_original_trace() {
    let collector = Collector::start();
    let port = dead_port();
    let dir = tempfile::tempdir().unwrap();
    let opts = Opts {
        store: Some(redb_store(&dir.path().join("hookgate.redb"))),
        ..Opts::default()
    };
    let queue = json!({"delivery": {"mode": "queue", "max_attempts": 50, "backoff": {"base": "50ms", "max": "200ms"}}});
    let cfg = config(
        &opts,
        [mc_route("q", &format!("http://127.0.0.1:{port}/up"), queue)],
    )
    .with("telemetry", otlp(&collector.endpoint(), Value::Null));
    let gw = Gateway::start(cfg);
    let body = b"{\"job_id\":\"q\"}";
    let sig = sha256_header(SECRET, body);
    let parent = sender_traceparent();
    let headers = [
        ("x-mediaconvert-signature", sig.as_str()),
        ("traceparent", parent.as_str()),
    ];
    assert_eq!(
        post(gw.addr(), "/hooks/q", &headers, body).await.status,
        202
    );

    let server = collector
        .wait_span(SPAN_WAIT, |s| {
            s.kind == 2 && s.attr("webhook.outcome") == Some("queued")
        })
        .expect("the queued request's server span");
    assert_eq!(server.trace_id, SENDER_TRACE);
    collector
        .wait_span(SPAN_WAIT, |s| {
            s.kind == 3 && s.attr("http.request.resend_count").is_some()
        })
        .expect("a failed retry's client span");

    // The backend comes back.
    let backend = Backend::start_on(port, Behaviour::default());
    assert!(
        backend.wait_count(1).await,
        "delivered once the backend is back"
    );
    let delivered = collector
        .wait_span(SPAN_WAIT, |s| {
            s.kind == 3 && s.attr("http.response.status_code") == Some("200")
        })
        .expect("the delivering attempt's client span");
    assert_eq!(delivered.trace_id, SENDER_TRACE, "the original trace");
    assert_eq!(delivered.parent_span_id, server.span_id);
    assert!(
        delivered
            .attr("http.request.resend_count")
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| n >= 1),
        "{:?}",
        delivered.attrs
    );
    let attempts: Vec<Span> = collector
        .spans()
        .into_iter()
        .filter(|s| s.kind == 3)
        .collect();
    assert!(attempts.len() >= 2, "{attempts:?}");
    for a in &attempts {
        assert_eq!(a.trace_id, SENDER_TRACE);
        assert_eq!(a.parent_span_id, server.span_id);
    }
    let tp = backend.single().header("traceparent").unwrap_or_default();
    assert_eq!(tp, format!("00-{SENDER_TRACE}-{}-01", delivered.span_id));
}

/// A collector that is down changes no answer; the spans it could not take are counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_collector_changes_no_answer() {
    let backend = Backend::start();
    let dead = format!("http://127.0.0.1:{}", dead_port());
    let cfg = config(
        &Opts::default(),
        [mc_route("d", &backend.url("/up"), Value::Null)],
    )
    .with("telemetry", otlp(&dead, json!({"max_queue": 4})));
    let gw = Gateway::start(cfg);
    for i in 0..20 {
        let body = format!("{{\"n\":{i}}}");
        let r = post_mc(gw.addr(), "/hooks/d", SECRET, body.as_bytes()).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.text(), r#"{"received":true}"#);
    }
    let bad = post(
        gw.addr(),
        "/hooks/d",
        &[("x-mediaconvert-signature", "sha256=00")],
        b"{}",
    )
    .await;
    assert_eq!(bad.status, 401);
    assert_eq!(bad.text(), INVALID_SIGNATURE);
    let dropped = gw.wait_metric("hookgate_trace_spans_dropped_total", &[], |v| v > 0.0);
    assert!(
        dropped > 0.0,
        "spans that could not be exported are counted"
    );
}
