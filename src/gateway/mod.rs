//! The request path: one plain async function per stage, run in order; the first stage that
//! refuses answers, and nothing after it runs (DESIGN §1).
//!
//! route -> per-IP limit -> body -> verify -> route limit -> validate -> dedup -> deliver

mod body;
mod client_ip;
mod dedup;
pub(crate) mod forward;
mod headers;
mod payload;
mod reject;
mod route;
mod upstream;
mod validate;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use tokio::sync::oneshot;

pub use self::client_ip::resolve as client_ip;
use self::dedup::Hold;
pub use self::headers::Trusted;
use self::payload::Payload;
pub use self::reject::Rejection;
use crate::config::{Config, DeliveryMode, Route};
use crate::delivery::schedule::millis;
use crate::delivery::{attempt_of, Clock, Engine, SystemClock};
use crate::limit::Limits;
use crate::metrics::Metrics;
use crate::schema::Mode;
use crate::store::{AnyStore, Event, MemoryStore, Meta, StoreError};
use crate::verify::{Input, Verified};

/// What hookgate answers with: its own small bodies, or the backend's streamed through.
pub type Body = Either<Full<Bytes>, forward::UpstreamBody>;

/// How long past its holder's own deadline an unreleased dedup claim lasts: a safety net for
/// a store shared by several processes, where a crashed holder never releases.
const CLAIM_MARGIN: Duration = Duration::from_secs(30);

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
    state: Arc<ArcSwap<State>>,
    metrics: Metrics,
    store: AnyStore,
    engine: Arc<Engine>,
    clock: Arc<dyn Clock>,
}

/// What one request came to, for its log line and metrics.
#[derive(Default)]
struct Record {
    route: Option<Arc<str>>,
    verified: Option<Verified>,
    spoofed: usize,
    /// A schema failure forwarded anyway (`mode: shadow`).
    shadowed: Option<Rejection>,
    dedup_key: Option<String>,
    queue_id: Option<u64>,
}

impl Gateway {
    /// A gateway with the in-memory store and the wall clock.
    pub fn new(config: Config, metrics: Metrics) -> Self {
        let store = AnyStore::Memory(Arc::new(MemoryStore::new()));
        Self::with_store(config, metrics, store, Arc::new(SystemClock))
    }

    /// A gateway on an opened store; call [`Gateway::resume`] before serving.
    pub fn with_store(
        config: Config,
        metrics: Metrics,
        store: AnyStore,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let state = Arc::new(ArcSwap::from_pointee(State::new(config, None)));
        let engine = Engine::new(
            store.clone(),
            clock.clone(),
            forward::client(),
            metrics.clone(),
            state.clone(),
        );
        Self {
            state,
            metrics,
            store,
            engine,
            clock,
        }
    }

    /// Picks up every event the store still holds (after a restart or a crash).
    pub async fn resume(&self) -> Result<usize, StoreError> {
        self.engine.resume().await
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn store(&self) -> &AnyStore {
        &self.store
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The config requests start with from now on.
    pub fn state(&self) -> Arc<State> {
        self.state.load_full()
    }

    /// Installs a new config; requests under way finish on the one they started with. Queued
    /// events are delivered under the config current at each attempt (a route's `concurrency`
    /// is fixed when its queue first starts).
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
            Ok(Reply::Spooled { deferred }) => (
                accepted().map(Either::Left),
                "queued",
                if deferred { "deferred" } else { "" },
            ),
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
            dedup_key = rec.dedup_key.as_deref(),
            queue_id = rec.queue_id,
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
        let body = payload.raw().clone();

        // 4. verify: on the headers as received, before anything is stripped.
        let now = unix_now();
        let url = route::sender_url(&route, &parts.uri);
        let input = Input {
            headers: &parts.headers,
            body: &body,
            now,
            url: url.as_deref(),
        };
        let verified = self.verify(&route, &input)?;
        rec.verified = Some(verified.clone());
        // A sender's own challenge (Zoom's URL validation) is answered here, not forwarded.
        if let Some(json) = verified.challenge {
            return Ok(Reply::Answered(json));
        }

        // 5. route limit: only verified traffic counts. A queue route spools instead of
        // refusing: its bucket paces the deliveries (see `delivery`), not the intake.
        if route.delivery.mode != DeliveryMode::Queue {
            self.check_route_limit(state, &route).await?;
        }

        // 6. validate: the JSON tree is built here, once, and kept in `payload`.
        rec.shadowed = validate::validate(&route, &payload)?;

        // 7. dedup: the key from the headers as received; the claim is held until delivery.
        let now_ms = self.clock.now_ms();
        let mode = route.delivery.mode;
        let mut hold = None;
        if let Some(d) = &route.dedup {
            let busy = match mode {
                DeliveryMode::Sync => route.timeout,
                DeliveryMode::Hybrid => route.delivery.deadline,
                DeliveryMode::Queue => Duration::ZERO,
            };
            let lease = millis(busy + CLAIM_MARGIN);
            let key = dedup::key(&route, d, &verified, &parts.headers, &payload);
            rec.dedup_key = Some(key.clone());
            hold = dedup::claim(&self.store, &self.metrics, &route, &key, now_ms, lease).await?;
        }

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
        if let Some(key) = &rec.dedup_key {
            if let Ok(v) = HeaderValue::from_str(key) {
                parts.headers.insert(state.trusted.id.clone(), v);
            }
        }

        // 8. deliver
        let mut upstream = forward::upstream_request(&route, parts, body.clone())?;
        let ttl = route.dedup.as_ref().map_or(Duration::ZERO, |d| d.ttl);
        let spool = |upstream: &Request<Full<Bytes>>, attempts: u32, next_ms: u64, deferred| {
            let event = Event {
                path_and_query: upstream
                    .uri()
                    .path_and_query()
                    .map_or_else(|| "/".to_string(), |p| p.as_str().to_string()),
                headers: upstream
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.as_str().to_string(), v.as_bytes().to_vec()))
                    .collect(),
                body: body.clone(),
                provider: provider.to_string(),
                key_id: verified.key_id.to_string(),
            };
            let meta = Meta {
                id: 0,
                route: route.name.to_string(),
                key: rec.dedup_key.clone(),
                received_ms: now_ms,
                attempts,
                next_ms,
                deferred,
                last_error: String::new(),
            };
            (event, meta)
        };
        if mode == DeliveryMode::Queue {
            let (event, meta) = spool(&upstream, 0, now_ms, false);
            let expires = hold.as_ref().map(|_| now_ms.saturating_add(millis(ttl)));
            return match self.engine.accept(&event, meta, expires).await {
                Ok(meta) => {
                    rec.queue_id = Some(meta.id);
                    if let Some(h) = hold {
                        h.handed_over();
                    }
                    Ok(Reply::Spooled { deferred: false })
                }
                Err(e) => {
                    self.metrics
                        .store_errors
                        .with_label_values(&["enqueue"])
                        .inc();
                    tracing::error!(route = %route.name, error = %e, "cannot store an event; refusing it so the sender retries");
                    Err(Rejection::StoreFailed)
                }
            };
        }
        // Hybrid stores the request without this attempt's headers; a retry sets its own.
        let deferred = (mode == DeliveryMode::Hybrid).then(|| {
            // If the process dies during the first attempt, a restart retries once that
            // attempt would have timed out.
            let lease = now_ms.saturating_add(millis(route.timeout + Duration::from_secs(1)));
            spool(&upstream, 1, lease, true)
        });
        if let Some(secret) = &config.forward.attestation {
            forward::attest(
                &mut upstream,
                &state.trusted,
                secret,
                &body,
                provider,
                &verified.key_id,
                now,
            );
        }
        match deferred {
            None => {
                let result =
                    forward::send_observed(&forward::client(), &self.metrics, &route, upstream)
                        .await;
                self.finish(result, hold, ttl).await
            }
            Some((event, meta)) => {
                let h = upstream.headers_mut();
                h.insert(
                    state.trusted.delivery.clone(),
                    HeaderValue::from_static("sync"),
                );
                h.insert(state.trusted.attempt.clone(), HeaderValue::from_static("1"));
                self.hybrid(route, upstream, event, meta, hold, ttl, rec)
                    .await
            }
        }
    }

    /// Stage 5. On a shared store the route's bucket is the fleet's (in Redis); when Redis
    /// fails, this replica's own bucket for the route decides instead, so a route stays limited
    /// (per replica) through an outage.
    async fn check_route_limit(&self, state: &State, route: &Route) -> Result<(), Rejection> {
        let (Some(redis), Some(limit)) = (self.store.redis(), route.rate_limit.route.as_ref())
        else {
            return Ok(state.limits.check_route(&route.name)?);
        };
        match redis.check_route(&route.name, limit).await {
            Ok(None) => Ok(()),
            Ok(Some(wait)) => Err(crate::limit::Limited {
                scope: crate::limit::Scope::Route,
                retry_after: crate::limit::retry_after(wait),
            }
            .into()),
            Err(e) => {
                self.metrics
                    .store_errors
                    .with_label_values(&["limit"])
                    .inc();
                tracing::warn!(route = %route.name, error = %e, "fleet rate limit unavailable; using this replica's own");
                Ok(state.limits.check_route(&route.name)?)
            }
        }
    }

    /// A synchronous attempt's answer goes back to the sender; 2xx marks the key delivered.
    async fn finish(
        &self,
        result: Result<(Response<forward::UpstreamBody>, Duration), Rejection>,
        hold: Option<Hold>,
        ttl: Duration,
    ) -> Result<Reply, Rejection> {
        let (res, _) = result?;
        if res.status().is_success() {
            if let Some(h) = hold {
                let expires = self.clock.now_ms().saturating_add(millis(ttl));
                if let Err(e) = h.delivered(expires).await {
                    self.metrics.store_errors.with_label_values(&["mark"]).inc();
                    tracing::error!(error = %e, "cannot mark a dedup key delivered");
                }
            }
        }
        Ok(Reply::Forwarded(res))
    }

    /// Hybrid: forward, but answer 202 if the backend has not answered by the deadline. The
    /// first attempt is not abandoned then: it runs on, and its result decides (2xx: done;
    /// anything else: the retry schedule), so the backend never gets a second copy while the
    /// first may still succeed.
    #[allow(clippy::too_many_arguments)]
    async fn hybrid(
        &self,
        route: Arc<Route>,
        upstream: Request<Full<Bytes>>,
        event: Event,
        meta: Meta,
        hold: Option<Hold>,
        ttl: Duration,
        rec: &mut Record,
    ) -> Result<Reply, Rejection> {
        let (result_tx, mut result_rx) = oneshot::channel();
        let (meta_tx, meta_rx) = oneshot::channel::<Meta>();
        let (client, metrics, engine) =
            (forward::client(), self.metrics.clone(), self.engine.clone());
        let attempt_route = route.clone();
        tokio::spawn(async move {
            let result = forward::send_observed(&client, &metrics, &attempt_route, upstream).await;
            // Either the sender is still waiting and takes the result, or it got 202 and the
            // spooled event's state is in `meta_rx`.
            if let Err(result) = result_tx.send(result) {
                let outcome = attempt_of(result);
                if let Ok(meta) = meta_rx.await {
                    engine.settle(meta, outcome).await;
                }
            }
        });
        tokio::select! {
            r = &mut result_rx => {
                let result = r.unwrap_or(Err(Rejection::UpstreamUnreachable));
                return self.finish(result, hold, ttl).await;
            }
            _ = tokio::time::sleep(route.delivery.deadline) => {}
        }
        let expires = hold
            .as_ref()
            .map(|_| self.clock.now_ms().saturating_add(millis(ttl)));
        match self.engine.defer(&event, meta, expires).await {
            Ok(meta) => {
                rec.queue_id = Some(meta.id);
                if let Some(h) = hold {
                    h.handed_over();
                }
                let _ = meta_tx.send(meta.clone());
                result_rx.close();
                // The attempt ended while the event was being stored: its result is ours.
                if let Ok(result) = result_rx.try_recv() {
                    let outcome = attempt_of(result);
                    let engine = self.engine.clone();
                    tokio::spawn(async move { engine.settle(meta, outcome).await });
                }
                Ok(Reply::Spooled { deferred: true })
            }
            Err(e) => {
                // Not stored: stay synchronous rather than answer 202 for an event that
                // could be lost.
                self.metrics
                    .store_errors
                    .with_label_values(&["enqueue"])
                    .inc();
                tracing::error!(route = %route.name, error = %e, "cannot store a deferred event; waiting for the backend");
                let result = result_rx
                    .await
                    .unwrap_or(Err(Rejection::UpstreamUnreachable));
                self.finish(result, hold, ttl).await
            }
        }
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
    Forwarded(Response<forward::UpstreamBody>),
    /// hookgate's own JSON answer to a sender's challenge.
    Answered(String),
    /// Stored for background delivery: 202. `deferred`: hybrid, after the deadline.
    Spooled { deferred: bool },
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

/// 202 for an event stored for background delivery.
fn accepted() -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::from_static(br#"{"status":"queued"}"#)));
    *res.status_mut() = StatusCode::ACCEPTED;
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::BodyExt;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;

    use super::*;
    use crate::store::faulty::FaultyStore;
    use crate::verify::Algorithm;

    type Client = hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        Full<Bytes>,
    >;

    /// A backend that counts requests and answers 200.
    async fn backend() -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                let h = h.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        h.fetch_add(1, Ordering::SeqCst);
                        let slow = req.uri().path() == "/slow";
                        async move {
                            if slow {
                                tokio::time::sleep(Duration::from_millis(300)).await;
                            }
                            Ok::<_, std::convert::Infallible>(Response::new(Full::new(
                                Bytes::from_static(b"ok"),
                            )))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(s), svc)
                        .await;
                });
            }
        });
        (addr, hits)
    }

    /// Serves `gw` on 127.0.0.1.
    async fn serve(gw: Gateway) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let gw = Arc::new(gw);
        tokio::spawn(async move {
            while let Ok((s, peer)) = listener.accept().await {
                let gw = gw.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let gw = gw.clone();
                        async move {
                            Ok::<_, std::convert::Infallible>(
                                gw.handle(req, Conn { peer, tls: false }).await,
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(s), svc)
                        .await;
                });
            }
        });
        addr
    }

    async fn post(client: &Client, url: String, body: &'static [u8]) -> (u16, String) {
        let sig = hex::encode(Algorithm::Sha256.sign(b"s", &[body]));
        let req = Request::post(url)
            .header("x-mediaconvert-signature", format!("sha256={sig}"))
            .body(Full::new(Bytes::from_static(body)))
            .unwrap();
        let res = client.request(req).await.unwrap();
        let status = res.status().as_u16();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// When the store fails, dedup fails open (forwarded, counted) and queue mode refuses with
    /// 503 so the sender retries; nothing is answered 202 that was not stored.
    #[tokio::test]
    async fn store_failures_fail_open_for_dedup_and_closed_for_the_queue() {
        let (up, hits) = backend().await;
        let yaml = format!(
            "store: {{kind: redb, path: unused.redb}}\nroutes:\n  - {{name: s, path: /s, upstream: \"http://{up}/\", verify: {{scheme: mediaconvert, secrets: [{{id: k, value: s}}]}}, dedup: {{}}}}\n  - {{name: q, path: /q, upstream: \"http://{up}/\", verify: {{scheme: mediaconvert, secrets: [{{id: k, value: s}}]}}, dedup: {{}}, delivery: {{mode: queue}}}}\n  - {{name: h, path: /h, upstream: \"http://{up}/slow\", verify: {{scheme: mediaconvert, secrets: [{{id: k, value: s}}]}}, delivery: {{mode: hybrid, deadline: 50ms}}}}\n"
        );
        let config = Config::parse(&yaml).unwrap();
        let metrics = Metrics::new();
        let store = AnyStore::Faulty(Arc::new(FaultyStore));
        let gw = Gateway::with_store(config, metrics.clone(), store, Arc::new(SystemClock));
        assert!(
            gw.resume().await.is_err(),
            "a store that cannot list its queue"
        );
        let addr = serve(gw).await;
        let client: Client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http();

        for _ in 0..2 {
            let r = post(&client, format!("http://{addr}/s"), b"{\"a\":1}").await;
            assert_eq!(r, (200, "ok".to_string()), "forwarded without dedup");
        }
        assert_eq!(hits.load(Ordering::SeqCst), 2);
        assert_eq!(metrics.store_errors.with_label_values(&["claim"]).get(), 2);

        let r = post(&client, format!("http://{addr}/q"), b"{\"a\":2}").await;
        assert_eq!(r, (503, r#"{"error":"service unavailable"}"#.to_string()));
        assert_eq!(
            metrics.store_errors.with_label_values(&["enqueue"]).get(),
            1
        );
        assert_eq!(
            metrics
                .requests
                .with_label_values(&["q", "failed", "store"])
                .get(),
            1
        );
        assert_eq!(hits.load(Ordering::SeqCst), 2, "not forwarded");

        // Hybrid past the deadline with no store to spool to: stays synchronous rather than
        // answering 202 for an event that could be lost.
        let started = Instant::now();
        let r = post(&client, format!("http://{addr}/h"), b"{\"a\":3}").await;
        assert_eq!(r, (200, "ok".to_string()));
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(
            metrics.store_errors.with_label_values(&["enqueue"]).get(),
            2
        );
    }
}
