//! The request path: one plain async function per stage, run in order; the first stage that
//! refuses answers, and nothing after it runs (DESIGN §1).
//!
//! route -> per-IP limit -> body -> verify -> route limit -> validate -> dedup -> deliver

mod body;
mod client_ip;
mod forward;
mod headers;
mod payload;
mod reject;
mod route;
mod validate;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{Either, Full};
use hyper::body::Incoming;

pub use self::client_ip::resolve as client_ip;
pub use self::headers::Trusted;
use self::payload::Payload;
pub use self::reject::Rejection;
use crate::config::{Config, Route};
use crate::limit::Limits;
use crate::metrics::Metrics;
use crate::schema::Mode;
use crate::verify::{Input, Verified};

/// What hookgate answers with: its own small bodies, or the backend's streamed through.
pub type Body = Either<Full<Bytes>, Incoming>;

/// The connection a request came in on.
#[derive(Debug, Clone, Copy)]
pub struct Conn {
    pub peer: SocketAddr,
    pub tls: bool,
}

/// One config and what is derived from it; swapped whole on reload, so a request runs start to
/// end on the config it began with.
pub struct State {
    pub config: Config,
    pub trusted: Trusted,
    pub limits: Limits,
}

impl State {
    /// The state for `config`; rate-limit buckets of routes unchanged since `previous` carry over.
    pub fn new(config: Config, previous: Option<&State>) -> Self {
        let trusted = Trusted::new(&config.forward.header_prefix);
        let limits = Limits::new(&config.routes, previous.map(|p| &p.limits));
        Self {
            config,
            trusted,
            limits,
        }
    }
}

/// The gateway shared by every connection.
pub struct Gateway {
    state: ArcSwap<State>,
    metrics: Metrics,
}

/// What one request came to, for its log line and metrics.
#[derive(Default)]
struct Record {
    route: Option<Arc<str>>,
    verified: Option<Verified>,
    spoofed: usize,
    /// A schema failure forwarded anyway (`mode: shadow`).
    shadowed: Option<Rejection>,
}

impl Gateway {
    pub fn new(config: Config, metrics: Metrics) -> Self {
        Self {
            state: ArcSwap::from_pointee(State::new(config, None)),
            metrics,
        }
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The config requests start with from now on.
    pub fn state(&self) -> Arc<State> {
        self.state.load_full()
    }

    /// Installs a new config; requests under way finish on the one they started with.
    pub fn replace(&self, config: Config) {
        let previous = self.state.load_full();
        self.state
            .store(Arc::new(State::new(config, Some(&previous))));
    }

    /// Forgets idle addresses in the per-IP limits and publishes how many remain; run every
    /// [`crate::limit::SWEEP_INTERVAL`].
    pub fn sweep_limits(&self) {
        for (route, keys, full) in self.state.load().limits.sweep() {
            self.metrics
                .rate_limit_keys
                .with_label_values(&[&*route])
                .set(i64::try_from(keys).unwrap_or(i64::MAX));
            if full {
                tracing::warn!(
                    route = &*route,
                    keys,
                    "per-IP rate limit is tracking max_keys addresses; new addresses share one bucket"
                );
            }
        }
    }

    /// Runs one request through every stage and accounts for it: one log line, its metrics.
    pub async fn handle(&self, req: Request<Incoming>, conn: Conn) -> Response<Body> {
        let started = Instant::now();
        let state = self.state.load_full();
        let client = client_ip(
            conn.peer.ip(),
            req.headers(),
            &state.config.server.trusted_proxies,
        );
        let mut rec = Record::default();
        let result = self.pipeline(&state, req, conn, client, &mut rec).await;
        let route = rec.route.as_deref().unwrap_or("none");
        let (response, outcome, reason) = match result {
            Ok(Reply::Forwarded(res)) => (res.map(Either::Right), "forwarded", ""),
            Ok(Reply::Answered(json)) => (answer(json).map(Either::Left), "answered", "challenge"),
            Err(r) => {
                match &r {
                    Rejection::Unverified(e) => {
                        self.metrics
                            .verify_failures
                            .with_label_values(&[route, e.reason()])
                            .inc();
                    }
                    Rejection::RateLimited(l) => {
                        self.metrics
                            .rate_limited
                            .with_label_values(&[route, l.scope.label()])
                            .inc();
                    }
                    Rejection::NotJson | Rejection::Schema(_) => {
                        self.metrics
                            .schema_failures
                            .with_label_values(&[route, Mode::Enforce.label()])
                            .inc();
                    }
                    _ => {}
                }
                (r.response().map(Either::Left), r.outcome(), r.reason())
            }
        };
        if rec.shadowed.is_some() {
            self.metrics
                .schema_failures
                .with_label_values(&[route, Mode::Shadow.label()])
                .inc();
        }
        if rec.spoofed > 0 {
            self.metrics
                .spoofed_headers
                .with_label_values(&[route])
                .inc_by(rec.spoofed as u64);
        }
        let elapsed = started.elapsed();
        self.metrics
            .requests
            .with_label_values(&[route, outcome, reason])
            .inc();
        self.metrics
            .request_duration
            .with_label_values(&[route, outcome])
            .observe(elapsed.as_secs_f64());
        let verified = rec.verified.as_ref();
        tracing::info!(
            target: "hookgate::request",
            route,
            outcome,
            reason,
            status = response.status().as_u16(),
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            client_ip = %client,
            key_id = verified.map(|v| &*v.key_id),
            delivery_id = verified.and_then(|v| v.delivery_id.as_deref()),
            spoofed_headers = rec.spoofed,
            schema_shadowed = rec.shadowed.as_ref().map(Rejection::reason),
            "request"
        );
        response
    }

    async fn pipeline(
        &self,
        state: &State,
        req: Request<Incoming>,
        conn: Conn,
        client: std::net::IpAddr,
        rec: &mut Record,
    ) -> Result<Reply, Rejection> {
        let config = &state.config;
        let host = req
            .uri()
            .authority()
            .map(|a| a.as_str().to_owned())
            .or_else(|| {
                req.headers()
                    .get(http::header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .map(str::to_owned)
            });

        // 1. route
        let route = route::find(
            &config.routes,
            req.method(),
            req.uri().path(),
            host.as_deref(),
        )?;
        rec.route = Some(route.name.clone());

        // 2. per-IP limit, before a byte of the body is read.
        state.limits.check_ip(&route.name, client)?;

        // 3. body
        let (mut parts, incoming) = req.into_parts();
        let server = &config.server;
        let payload = Payload::new(
            body::read(
                incoming,
                &parts.headers,
                server.max_body_bytes,
                server.body_timeout,
            )
            .await?,
        );
        let body = payload.raw();

        // 4. verify: on the headers as received, before anything is stripped.
        let now = unix_now();
        let url = route::sender_url(&route, &parts.uri);
        let input = Input {
            headers: &parts.headers,
            body,
            now,
            url: url.as_deref(),
        };
        let verified = self.verify(&route, &input)?;
        rec.verified = Some(verified.clone());
        // A sender's own challenge (Zoom's URL validation) is answered here, not forwarded.
        if let Some(json) = verified.challenge {
            return Ok(Reply::Answered(json));
        }

        // 5. route limit: only verified traffic counts.
        state.limits.check_route(&route.name)?;

        // 6. validate: the JSON tree is built here, once, and kept in `payload`.
        rec.shadowed = validate::validate(&route, &payload)?;

        // Header hygiene, then the trusted headers.
        rec.spoofed = state.trusted.strip_spoofed(&mut parts.headers);
        let original_host = parts
            .headers
            .get(http::header::HOST)
            .cloned()
            .or_else(|| host.and_then(|h| h.parse().ok()));
        let proto = if conn.tls { "https" } else { "http" };
        headers::set_forwarded(&mut parts.headers, client, proto, original_host);
        let provider = route.verifier.scheme().name();
        set_trusted(
            &mut parts.headers,
            &state.trusted,
            &route,
            provider,
            &verified,
        );

        // 8. deliver
        let mut upstream = forward::upstream_request(&route, parts, body.clone())?;
        if let Some(secret) = &config.forward.attestation {
            forward::attest(
                &mut upstream,
                &state.trusted,
                secret,
                body,
                provider,
                &verified,
                now,
            );
        }
        let result = forward::send(&forward::client(), upstream, route.timeout).await;
        let class = match &result {
            Ok((res, _)) => status_class(res.status()),
            Err(Rejection::UpstreamTimeout) => "timeout",
            Err(_) => "error",
        };
        let elapsed = match &result {
            Ok((_, d)) => d.as_secs_f64(),
            Err(_) => route.timeout.as_secs_f64(),
        };
        self.metrics
            .upstream_duration
            .with_label_values(&[&route.name, class])
            .observe(elapsed);
        result.map(|(res, _)| Reply::Forwarded(res))
    }

    fn verify(&self, route: &Route, input: &Input<'_>) -> Result<Verified, Rejection> {
        let verified = route
            .verifier
            .verify(input)
            .map_err(Rejection::Unverified)?;
        self.metrics
            .key_matches
            .with_label_values(&[&route.name, &verified.key_id])
            .inc();
        Ok(verified)
    }
}

/// How a request that passed verification was answered.
enum Reply {
    /// The backend's answer.
    Forwarded(Response<Incoming>),
    /// hookgate's own JSON answer to a sender's challenge.
    Answered(String),
}

fn answer(json: String) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::from(json)));
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    res
}

fn set_trusted(
    headers: &mut http::HeaderMap,
    trusted: &Trusted,
    route: &Route,
    provider: &'static str,
    verified: &Verified,
) {
    use http::HeaderValue;
    headers.insert(trusted.verified.clone(), HeaderValue::from_static("true"));
    headers.insert(trusted.provider.clone(), HeaderValue::from_static(provider));
    if let Ok(v) = HeaderValue::from_str(&route.name) {
        headers.insert(trusted.route.clone(), v);
    }
    if let Ok(v) = HeaderValue::from_str(&verified.key_id) {
        headers.insert(trusted.key_id.clone(), v);
    }
}

fn status_class(s: http::StatusCode) -> &'static str {
    match s.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// Wall-clock unix seconds; a clock before 1970 reads as 0 and fails timestamp checks.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
