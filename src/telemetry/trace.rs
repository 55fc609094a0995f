//! The spans hookgate makes, named and attributed after OpenTelemetry's HTTP semantic
//! conventions (docs/tracing.md lists every attribute). Every function here is a no-op that
//! builds nothing when `telemetry.otlp` is absent.
//!
//! Never an attribute from a header value, a query or a body: a span carries the route, the
//! outcome and ids that the log line carries too, and nothing a sender signed.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::SystemTime;

use http::{HeaderMap, HeaderName, HeaderValue, Method, Request};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{Link, SpanKind, Status, TraceContextExt, Tracer as _};
use opentelemetry::{Context, KeyValue, Value};
use opentelemetry_http::HeaderExtractor;
use opentelemetry_sdk::propagation::TraceContextPropagator;

use super::otlp::{installed, Tracing};

const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// Tracing, when `telemetry.otlp` is configured.
pub fn tracer() -> Option<&'static Tracing> {
    installed()
}

/// One request's server span, ended once the request is accounted for.
pub struct ServerSpan {
    cx: Context,
}

/// What the server span starts with; all known before the route is.
pub struct Incoming<'a> {
    pub headers: &'a HeaderMap,
    pub method: &'a Method,
    pub path: &'a str,
    pub tls: bool,
    pub client: IpAddr,
    /// The host the sender addressed, `host[:port]`.
    pub host: Option<&'a str>,
}

impl Tracing {
    /// The request's server span: a child of the sender's `traceparent` when incoming context
    /// is trusted, else the root of a new trace linked to it.
    pub fn server_span(&self, r: &Incoming<'_>) -> ServerSpan {
        let remote = TraceContextPropagator::new()
            .extract_with_context(&Context::new(), &HeaderExtractor(r.headers));
        let sent = remote.span().span_context().clone();
        let (parent, links) = match (sent.is_valid(), self.trust_incoming) {
            (true, true) => (remote, Vec::new()),
            (true, false) => (Context::new(), vec![Link::with_context(sent)]),
            (false, _) => (Context::new(), Vec::new()),
        };
        let scheme = if r.tls { "https" } else { "http" };
        let mut attrs = vec![
            KeyValue::new("http.request.method", r.method.as_str().to_string()),
            KeyValue::new("url.path", r.path.to_string()),
            KeyValue::new("url.scheme", scheme),
            KeyValue::new("client.address", r.client.to_string()),
        ];
        if let Some((host, port)) = r.host.map(|h| split_host(h, r.tls)) {
            attrs.push(KeyValue::new("server.address", host));
            attrs.push(KeyValue::new("server.port", i64::from(port)));
        }
        let span = self
            .tracer
            .span_builder(method_name(r.method))
            .with_kind(SpanKind::Server)
            .with_attributes(attrs)
            .with_links(links)
            .start_with_context(&self.tracer, &parent);
        ServerSpan {
            cx: Context::new().with_span(span),
        }
    }
}

impl ServerSpan {
    pub fn context(&self) -> &Context {
        &self.cx
    }

    /// 32 lowercase hex digits, as the log line and the journal show it.
    pub fn trace_id(&self) -> String {
        self.cx.span().span_context().trace_id().to_string()
    }

    /// The route is known: the span becomes `POST <route path>`.
    pub fn routed(&self, method: &Method, route_path: &str, route: &str, provider: &'static str) {
        let span = self.cx.span();
        span.update_name(format!("{} {route_path}", method_name(method)));
        span.set_attribute(KeyValue::new("http.route", route_path.to_string()));
        span.set_attribute(KeyValue::new("webhook.route", route.to_string()));
        span.set_attribute(KeyValue::new("webhook.provider", provider));
    }

    pub fn set(&self, key: &'static str, value: impl Into<Value>) {
        self.cx.span().set_attribute(KeyValue::new(key, value));
    }

    /// Ends the span at `end`: a 5xx is an error whose `error.type` is the refusal's reason
    /// (else the status); a 4xx is the sender's problem and leaves the status unset.
    pub fn finish(self, status: u16, reason: &str, end: SystemTime) {
        let span = self.cx.span();
        span.set_attribute(KeyValue::new(
            "http.response.status_code",
            i64::from(status),
        ));
        if status >= 500 {
            let kind = if reason.is_empty() {
                status.to_string()
            } else {
                reason.to_string()
            };
            span.set_attribute(KeyValue::new("error.type", kind));
            span.set_status(Status::error(""));
        }
        span.end_with_timestamp(end);
    }
}

/// A stage's child span (verify, validate, dedup), ended when dropped.
pub struct Stage(Option<Context>);

/// `name`'s span under `parent`, or nothing when the request is not traced.
pub fn stage(parent: Option<&ServerSpan>, name: &'static str) -> Stage {
    Stage(parent.and_then(|p| {
        let t = installed()?;
        let span = t.tracer.start_with_context(name, &p.cx);
        Some(Context::new().with_span(span))
    }))
}

impl Stage {
    /// What the stage decided, when it refused: `webhook.reason` on its span.
    pub fn refused(&self, reason: &'static str) {
        if let Some(cx) = &self.0 {
            cx.span()
                .set_attribute(KeyValue::new("webhook.reason", reason));
        }
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        if let Some(cx) = &self.0 {
            cx.span().end();
        }
    }
}

/// One upstream attempt's client span.
pub struct ClientSpan {
    cx: Context,
}

/// Starts the attempt's client span under `parent` (a new trace without one) and puts its
/// `traceparent` (and the trace's `tracestate`) on the request. `resend_count`: attempts
/// before this one.
pub fn client_span<B>(
    parent: Option<&Context>,
    req: &mut Request<B>,
    resend_count: u32,
) -> Option<ClientSpan> {
    let t = installed()?;
    let uri = req.uri();
    let tls = uri.scheme_str() == Some("https");
    let mut attrs = vec![
        KeyValue::new("http.request.method", req.method().as_str().to_string()),
        // The query is left out: it may carry a token.
        KeyValue::new(
            "url.full",
            format!(
                "{}://{}{}",
                uri.scheme_str().unwrap_or("http"),
                uri.authority().map_or("", |a| a.as_str()),
                uri.path()
            ),
        ),
    ];
    if let Some(host) = uri.host() {
        attrs.push(KeyValue::new("server.address", host.to_string()));
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        attrs.push(KeyValue::new("server.port", i64::from(port)));
    }
    if resend_count > 0 {
        attrs.push(KeyValue::new(
            "http.request.resend_count",
            i64::from(resend_count),
        ));
    }
    let root = Context::new();
    let span = t
        .tracer
        .span_builder(method_name(req.method()))
        .with_kind(SpanKind::Client)
        .with_attributes(attrs)
        .start_with_context(&t.tracer, parent.unwrap_or(&root));
    let cx = Context::new().with_span(span);
    inject(&cx, req.headers_mut());
    Some(ClientSpan { cx })
}

impl ClientSpan {
    /// Ends the span with the backend's status, or the reason there was none
    /// (`timeout`, `unreachable`).
    pub fn finish(self, status: Option<u16>, error: &'static str) {
        let span = self.cx.span();
        match status {
            Some(s) => {
                span.set_attribute(KeyValue::new("http.response.status_code", i64::from(s)));
                if s >= 400 {
                    span.set_attribute(KeyValue::new("error.type", s.to_string()));
                    span.set_status(Status::error(""));
                }
            }
            None => {
                span.set_attribute(KeyValue::new("error.type", error));
                span.set_status(Status::error(""));
            }
        }
        span.end();
    }
}

/// Removes the sender's W3C trace headers: when tracing is on, each upstream attempt carries
/// its own client span's instead. (With tracing off they pass through untouched, as any
/// end-to-end header does.)
pub fn strip_context(headers: &mut HeaderMap) {
    headers.remove(TRACEPARENT);
    headers.remove(TRACESTATE);
}

/// `traceparent` and `tracestate` of `cx`'s span: what a queued event keeps so that attempts
/// hours later are spans of the same trace.
pub fn carried(cx: &Context) -> Option<(String, String)> {
    let sc = cx.span().span_context().clone();
    if !sc.is_valid() {
        return None;
    }
    let parent = format!(
        "00-{}-{}-{:02x}",
        sc.trace_id(),
        sc.span_id(),
        sc.trace_flags().to_u8()
    );
    Some((parent, sc.trace_state().header()))
}

/// The context a queued event kept, as a parent for its attempts' spans.
pub fn resumed(traceparent: &str, tracestate: &str) -> Option<Context> {
    installed()?;
    let mut fields = HashMap::new();
    fields.insert("traceparent".to_string(), traceparent.to_string());
    if !tracestate.is_empty() {
        fields.insert("tracestate".to_string(), tracestate.to_string());
    }
    let cx = TraceContextPropagator::new().extract_with_context(&Context::new(), &fields);
    cx.span().span_context().is_valid().then_some(cx)
}

fn inject(cx: &Context, headers: &mut HeaderMap) {
    if let Some((parent, state)) = carried(cx) {
        if let Ok(v) = HeaderValue::from_str(&parent) {
            headers.insert(TRACEPARENT, v);
        }
        headers.remove(TRACESTATE);
        if let Ok(v) = HeaderValue::from_str(&state) {
            if !state.is_empty() {
                headers.insert(TRACESTATE, v);
            }
        }
    }
}

/// `POST`, or `HTTP` for a method outside the known set (semantic conventions: no raw
/// method in a span name).
fn method_name(m: &Method) -> &'static str {
    match *m {
        Method::POST => "POST",
        Method::GET => "GET",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "HTTP",
    }
}

/// `host[:port]` (or `[v6]:port`) as host and port, the scheme's port when none is given.
fn split_host(h: &str, tls: bool) -> (String, u16) {
    let default = if tls { 443 } else { 80 };
    if let Some(rest) = h.strip_prefix('[') {
        let (host, after) = rest.split_once(']').unwrap_or((rest, ""));
        let port = after.strip_prefix(':').and_then(|p| p.parse().ok());
        return (host.to_string(), port.unwrap_or(default));
    }
    match h.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => {
            (host.to_string(), port.parse().unwrap_or(default))
        }
        _ => (h.to_string(), default),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_ports() {
        assert_eq!(
            split_host("a.example:8443", false),
            ("a.example".into(), 8443)
        );
        assert_eq!(split_host("a.example", true), ("a.example".into(), 443));
        assert_eq!(split_host("[::1]:9", false), ("::1".into(), 9));
        assert_eq!(split_host("[::1]", false), ("::1".into(), 80));
    }

    #[test]
    fn nothing_is_built_without_tracing() {
        let mut req = Request::new(());
        assert!(client_span(None, &mut req, 0).is_none());
        assert!(req.headers().is_empty());
        assert!(stage(None, "verify").0.is_none());
        assert!(resumed(
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            ""
        )
        .is_none());
    }

    #[test]
    fn carried_context_round_trips() {
        let sc = opentelemetry::trace::SpanContext::new(
            opentelemetry::trace::TraceId::from(0x0af7_6519_16cd_43dd_8448_eb21_1c80_319c),
            opentelemetry::trace::SpanId::from(0xb7ad_6b71_6920_3331),
            opentelemetry::trace::TraceFlags::SAMPLED,
            true,
            "k=v".parse().unwrap_or_default(),
        );
        let cx = Context::new().with_remote_span_context(sc);
        let (parent, state) = carried(&cx).unwrap_or_default();
        assert_eq!(
            parent,
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        );
        assert_eq!(state, "k=v");
    }
}
