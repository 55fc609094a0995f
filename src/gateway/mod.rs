//! The request path: one plain function per stage, run in order; the first stage that refuses
//! answers, and nothing after it runs (docs/design.md, "The request path").
//!
//! route -> per-IP limit -> body -> verify -> route limit -> validate -> dedup -> deliver
//!
//! - `route.rs` (1), `body.rs` (3), `verify.rs` (4), `validate.rs` (6), `dedup.rs` (7),
//!   `deliver.rs` (8: sync, queue, hybrid); the limits (2, 5) are [`crate::limit`]'s.
//! - `authz.rs`: verify-only mode, where stages 1 to 7 run the same and a proxy is told the
//!   decision instead of stage 8.
//! - `reject.rs`: every refusal as (status, reason, outcome, body, metric), in one place.
//! - `diagnose.rs`: after a 401, the signature doctor within the route's budget, once the
//!   sender has its answer.
//! - `client_ip.rs`: the sender's address behind trusted proxies.
//! - `payload.rs`: the body's bytes, and its JSON tree for a dedup key, parsed at most once.

pub mod authz;
mod body;
mod client_ip;
mod dedup;
mod deliver;
mod diagnose;
mod payload;
mod reject;
mod replay;
mod route;
mod validate;
mod verify;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{Either, Full};

pub use self::client_ip::resolve as client_ip;
use self::diagnose::{Budgets, Examiner, Suspect};
use self::payload::Payload;
pub use self::reject::Rejection;
pub use self::replay::{ReplayError, Replayed};
pub use self::route::{Diagnose, Route, RoutePath};
use crate::clock::{Clock, SystemClock};
use crate::delivery::{DeliveryMode, Engine, Lane, Plan};
use crate::doctor::Diagnosis;
use crate::journal::{self, Entry, Journal};
use crate::limit::{self, Limits};
use crate::metrics::Metrics;
use crate::schema::Mode as SchemaMode;
use crate::store::{AnyStore, MemoryStore, StoreError};
use crate::telemetry::{self, ServerSpan};
use crate::upstream::{self, Forward, Trusted, UpstreamBody};
use crate::verify::{Verified, VerifyError};

/// What hookgate answers with: its own small bodies, or the backend's streamed through.
pub type Body = Either<Full<Bytes>, UpstreamBody>;

/// A request body the stages can read: a connection's, or the one a proxy's check carried.
pub trait RequestBody:
    http_body::Body<Data = Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
{
}

impl<B> RequestBody for B where
    B: http_body::Body<Data = Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
{
}

/// The connection a request came in on.
#[derive(Debug, Clone, Copy)]
pub struct Conn {
    pub peer: SocketAddr,
    pub tls: bool,
}

/// What the request path needs of a config; `config` builds it at each load.
#[derive(Debug, Clone)]
pub struct Settings {
    pub routes: Vec<Arc<Route>>,
    pub max_body_bytes: u64,
    pub body_timeout: Duration,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub forward: Forward,
    /// Fixed at start: a reload does not resize the journal.
    pub journal: journal::Settings,
    /// `authz`: its listener is fixed at start; the rest applies on reload.
    pub authz: Option<authz::Settings>,
}

/// How a request is answered once it passed stages 1 to 7.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Delivered to the route's upstream (stage 8).
    Inline,
    /// A proxy asks whether to let it through (`authz`).
    Authz(authz::Check),
}

impl Mode {
    /// The `mode` label of metrics and logs.
    pub fn label(self) -> &'static str {
        match self {
            Self::Inline => "gateway",
            Self::Authz(_) => "authz",
        }
    }
}

/// One config and what is derived from it; swapped whole on reload, so a request runs start to
/// end on the config it began with.
pub struct State {
    pub settings: Settings,
    pub trusted: Arc<Trusted>,
    pub limits: Arc<Limits>,
    /// The signature doctor's budget per route.
    budgets: Budgets,
}

impl State {
    /// The state for `settings`; rate-limit buckets of routes unchanged since `previous` carry
    /// over.
    pub fn new(settings: Settings, previous: Option<&State>) -> Self {
        let trusted = upstream::trusted(&settings.forward);
        let specs = settings.routes.iter().map(|r| (&r.name, &r.rate_limit));
        let limits = Arc::new(Limits::new(specs, previous.map(|p| &*p.limits)));
        let budgets = Budgets::new(&settings.routes, previous.map(|p| &p.budgets));
        Self {
            settings,
            trusted,
            limits,
            budgets,
        }
    }

    /// What background delivery needs of this state.
    fn plan(&self) -> Plan {
        let lanes = self.settings.routes.iter().map(|r| {
            let lane = Lane {
                name: r.name.clone(),
                target: r.upstream.clone(),
                timeout: r.timeout,
                policy: r.delivery.clone(),
                limit: r.rate_limit.route,
            };
            (r.name.clone(), Arc::new(lane))
        });
        Plan {
            lanes: lanes.collect(),
            trusted: self.trusted.clone(),
            attestation: self.settings.forward.attestation.clone(),
            limits: self.limits.clone(),
        }
    }
}

/// The gateway shared by every connection.
pub struct Gateway {
    state: ArcSwap<State>,
    metrics: Metrics,
    store: AnyStore,
    engine: Arc<Engine>,
    clock: Arc<dyn Clock>,
    journal: Arc<Journal>,
    /// Runs the signature doctor's examinations, off the workers.
    examiner: Examiner,
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
    /// The JSON pointers a schema refusal named.
    refused_at: Option<String>,
    /// A request that failed verification, kept for the signature doctor.
    suspect: Option<Suspect>,
    /// The body as received, once read.
    body: Option<Bytes>,
    /// The request's server span (`telemetry.otlp` on).
    span: Option<ServerSpan>,
}

/// What the journal needs of a finished request besides its [`Record`].
struct Finished {
    received_ms: u64,
    method: http::Method,
    path: String,
    query: Option<String>,
    client: IpAddr,
    headers: journal::Headers,
    outcome: &'static str,
    reason: &'static str,
    status: u16,
    duration: Duration,
}

/// How a request that passed verification was answered.
enum Reply {
    /// The backend's answer.
    Forwarded(Response<UpstreamBody>),
    /// hookgate's own JSON answer to a sender's challenge.
    Answered(String),
    /// Stored for background delivery: 202. `deferred`: hybrid, after the deadline.
    Spooled { deferred: bool },
    /// Verify-only: the proxy may let it through, with these headers.
    Allowed(authz::Allowed),
}

/// What stages 1 to 7 made of a request that passed them.
struct Admitted {
    route: Arc<Route>,
    parts: http::request::Parts,
    payload: Payload,
    verified: Verified,
    /// The dedup claim, settled by delivery (or at once, in verify-only mode).
    hold: Option<dedup::Hold>,
    received_ms: u64,
    /// Unix seconds at verification.
    now: u64,
    host: Option<String>,
}

/// How stages 1 to 7 ended when nothing refused.
enum Gate {
    Passed(Box<Admitted>),
    /// A sender's own challenge (Zoom's URL validation), answered with this JSON.
    Challenge(String),
}

impl Gateway {
    /// A gateway with the in-memory store and the wall clock.
    pub fn new(settings: Settings, metrics: Metrics) -> Self {
        let store = AnyStore::Memory(Arc::new(MemoryStore::new()));
        Self::with_store(settings, metrics, store, Arc::new(SystemClock))
    }

    /// A gateway on an opened store; call [`Gateway::resume`] before serving.
    pub fn with_store(
        settings: Settings,
        metrics: Metrics,
        store: AnyStore,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let state = State::new(settings, None);
        prime(&metrics, &state.settings.routes);
        let journal = Journal::start(
            state.settings.journal.clone(),
            &store,
            metrics.clone(),
            clock.clone(),
        );
        let engine = Engine::new(store.clone(), clock.clone(), metrics.clone(), state.plan());
        engine.set_journal(journal.clone());
        Self {
            state: ArcSwap::from_pointee(state),
            metrics,
            store,
            engine,
            clock,
            journal,
            examiner: Examiner::start(),
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

    pub fn journal(&self) -> &Arc<Journal> {
        &self.journal
    }

    /// The config requests start with from now on.
    pub fn state(&self) -> Arc<State> {
        self.state.load_full()
    }

    /// Installs a new config; requests under way finish on the one they started with. Queued
    /// events are delivered under the config current at each attempt (a route's `concurrency`
    /// is fixed when its queue first starts).
    pub fn replace(&self, settings: Settings) {
        let previous = self.state.load_full();
        let state = State::new(settings, Some(&previous));
        prime(&self.metrics, &state.settings.routes);
        self.engine.set_plan(state.plan());
        self.state.store(Arc::new(state));
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
    ///
    /// Not an `async fn` of its own: that would be one more level that copies the whole request
    /// future (several KiB) when it starts.
    pub fn handle<'a, B: RequestBody + 'a>(
        &'a self,
        req: Request<B>,
        conn: Conn,
    ) -> impl std::future::Future<Output = Response<Body>> + 'a {
        self.run(req, conn, None, Mode::Inline)
    }

    /// [`Gateway::handle`] in either mode. `client`: the sender's address when the caller knows
    /// it better than the connection does (a proxy's check names the original client).
    pub async fn run<B: RequestBody>(
        &self,
        req: Request<B>,
        conn: Conn,
        client: Option<IpAddr>,
        mode: Mode,
    ) -> Response<Body> {
        let started = Instant::now();
        let state = self.state.load_full();
        let trusted_proxies = &state.settings.trusted_proxies;
        let client =
            client.unwrap_or_else(|| client_ip(conn.peer.ip(), req.headers(), trusted_proxies));
        // The journal's copy of what arrived; nothing is copied when the journal is off.
        let (query, headers) = if self.journal.settings().enabled {
            let headers = journal::Headers::capture(req.headers());
            (req.uri().query().map(str::to_owned), headers)
        } else {
            (None, journal::Headers::default())
        };
        let span = telemetry::tracer().map(|t| {
            let host = request_host(&req);
            t.server_span(&telemetry::Incoming {
                headers: req.headers(),
                method: req.method(),
                path: req.uri().path(),
                tls: conn.tls,
                client,
                host: host.as_deref(),
            })
        });
        let mut pending = Unfinished {
            gateway: self,
            state: state.clone(),
            rec: Record {
                span,
                ..Record::default()
            },
            started,
            received_ms: self.clock.now_ms(),
            method: req.method().clone(),
            path: req.uri().path().to_owned(),
            query,
            headers,
            client,
            h2: req.version() == http::Version::HTTP_2,
            mode,
            done: false,
        };
        let result = self
            .pipeline(&state, req, conn, client, &mut pending.rec, mode)
            .await;
        pending.done = true;
        let mut rec = std::mem::take(&mut pending.rec);
        let method = std::mem::take(&mut pending.method);
        let path = std::mem::take(&mut pending.path);
        let query = pending.query.take();
        let headers = std::mem::take(&mut pending.headers);
        let received_ms = pending.received_ms;
        drop(pending);
        let route = rec.route.as_deref().unwrap_or("none");
        let mut unverified = None;
        let (response, outcome, reason) = match result {
            Ok(Reply::Forwarded(res)) => (res.map(Either::Right), "forwarded", ""),
            Ok(Reply::Answered(json)) => (answer(json).map(Either::Left), "answered", "challenge"),
            Ok(Reply::Spooled { deferred }) => (
                accepted().map(Either::Left),
                "queued",
                if deferred { "deferred" } else { "" },
            ),
            Ok(Reply::Allowed(allowed)) => (allowed.response().map(Either::Left), "allowed", ""),
            Err(r) => {
                match &r {
                    // Counted with its diagnosis, below.
                    Rejection::Unverified(e) => unverified = Some(*e),
                    other => other.count(&self.metrics, route, None),
                }
                rec.refused_at = r.pointers();
                let res = match mode {
                    Mode::Inline => r.response(),
                    Mode::Authz(check) => authz::refusal(&r, check, &state, &rec),
                };
                (res.map(Either::Left), r.outcome(), r.reason())
            }
        };
        let elapsed = started.elapsed();
        self.account(&rec, route, outcome, reason, elapsed, mode);
        if let Some(span) = &rec.span {
            span.set("webhook.outcome", outcome);
            if !reason.is_empty() {
                span.set("webhook.reason", reason);
            }
            let delivery_id = rec.verified.as_ref().and_then(|v| v.delivery_id.clone());
            if let Some(id) = delivery_id {
                span.set("webhook.delivery_id", id);
            }
        }
        let finished = Finished {
            received_ms,
            method: method.clone(),
            path: path.clone(),
            query,
            client,
            headers,
            outcome,
            reason,
            status: response.status().as_u16(),
            duration: elapsed,
        };
        let entry = self.journal_entry(&state, &rec, finished, mode);
        let verified = rec.verified.take();
        let line = Line {
            mode: mode.label(),
            route: rec.route.clone().unwrap_or_else(|| Arc::from("none")),
            method,
            path,
            outcome,
            reason,
            status: response.status().as_u16(),
            elapsed,
            client,
            key_id: verified.as_ref().map(|v| v.key_id.clone()),
            delivery_id: verified.and_then(|v| v.delivery_id),
            dedup_key: rec.dedup_key.take(),
            queue_id: rec.queue_id,
            spoofed: rec.spoofed,
            schema_shadowed: rec.shadowed.as_ref().map(Rejection::reason),
            schema_pointers: rec
                .refused_at
                .take()
                .or(rec.shadowed.as_ref().and_then(Rejection::pointers)),
            diagnosis: None,
            trace_id: rec.span.as_ref().map(ServerSpan::trace_id),
            span: rec.span.take().map(|s| (s, std::time::SystemTime::now())),
        };
        match unverified {
            Some(error) => self.diagnose(&state, line, error, rec.suspect.take(), entry),
            None => {
                line.close();
                if let Some(e) = entry {
                    self.journal.record(e);
                }
            }
        }
        response
    }

    /// The journal event of a finished request; `None` for a refusal beyond its route's rate.
    fn journal_entry(
        &self,
        state: &State,
        rec: &Record,
        seen: Finished,
        mode: Mode,
    ) -> Option<Entry> {
        if !self.journal.settings().enabled {
            return None;
        }
        let route_name = rec.route.as_deref();
        let refused = !matches!(
            seen.outcome,
            "forwarded" | "queued" | "answered" | "allowed"
        );
        if refused && !self.journal.admit_refusal(route_name.unwrap_or("none")) {
            return None;
        }
        let route = route_name.and_then(|n| state.settings.routes.iter().find(|r| &*r.name == n));
        let mut headers = seen.headers;
        if let Some(own) = route.and_then(|r| r.verifier.scheme().signature_header()) {
            headers.redact(own);
        }
        let (body, body_truncated) = match &rec.body {
            Some(b) => self.journal.keep_body(b),
            None => (None, false),
        };
        let verified = rec.verified.as_ref();
        Some(Entry {
            id: self.journal.next_id(seen.received_ms),
            received_ms: seen.received_ms,
            route: rec.route.clone(),
            method: seen.method,
            path: seen.path,
            query: seen.query,
            client_ip: Some(seen.client),
            provider: route.map(|r| r.verifier.scheme().name().into()),
            outcome: seen.outcome.into(),
            reason: (!seen.reason.is_empty()).then_some(seen.reason.into()),
            status: seen.status,
            duration_ms: duration_ms(seen.duration),
            key_id: verified.map(|v| v.key_id.clone()),
            delivery_id: verified.and_then(|v| v.delivery_id.clone()),
            dedup_key: rec.dedup_key.clone(),
            diagnosis: None,
            headers,
            body,
            body_truncated,
            state: (seen.outcome == "queued").then(|| {
                let paused = route_name.is_some_and(|r| self.engine.is_paused(r));
                if paused { "paused" } else { "pending" }.into()
            }),
            attempts: Vec::new(),
            replay_of: None,
            queue_id: rec.queue_id,
            trace_id: rec.span.as_ref().map(ServerSpan::trace_id),
            authz: mode != Mode::Inline,
        })
    }

    /// A verification failure's metric and log line, with the signature doctor's diagnosis:
    /// examined on the examiner's thread when the route's budget allows (the response is
    /// already made and goes out meanwhile), `skipped` otherwise; the journal entry gets it too.
    fn diagnose(
        &self,
        state: &State,
        line: Line,
        error: VerifyError,
        suspect: Option<Suspect>,
        entry: Option<Entry>,
    ) {
        let (metrics, journal) = (self.metrics.clone(), self.journal.clone());
        let record = move |mut line: Line, diagnosis: &Diagnosis, took: Option<Duration>| {
            let kind = diagnosis.kind();
            Rejection::Unverified(error).count(&metrics, &line.route, Some(kind));
            line.diagnosis = Some((diagnosis.to_string(), took));
            line.close();
            if let Some(mut e) = entry {
                e.diagnosis = Some(diagnosis.to_string());
                journal.record(e);
            }
        };
        let suspect = suspect.filter(|_| state.budgets.take(&line.route));
        let Some(suspect) = suspect else {
            return record(line, &Diagnosis::Skipped, None);
        };
        self.examiner.submit(Box::new(move |examine| {
            if !examine {
                return record(line, &Diagnosis::Skipped, None);
            }
            let started = Instant::now();
            let diagnosis = suspect
                .examine()
                .map_or(Diagnosis::Skipped, |r| r.diagnosis);
            record(line, &diagnosis, Some(started.elapsed()));
        }));
    }

    /// The metrics every request updates, whatever its outcome.
    fn account(
        &self,
        rec: &Record,
        route: &str,
        outcome: &str,
        reason: &str,
        took: Duration,
        mode: Mode,
    ) {
        let m = &self.metrics;
        if rec.shadowed.is_some() {
            let shadow = [route, SchemaMode::Shadow.label()];
            m.schema_failures.with_label_values(&shadow).inc();
        }
        if rec.spoofed > 0 {
            let spoofed = rec.spoofed as u64;
            m.spoofed_headers
                .with_label_values(&[route])
                .inc_by(spoofed);
        }
        m.requests
            .with_label_values(&[route, outcome, reason, mode.label()])
            .inc();
        m.request_duration
            .with_label_values(&[route, outcome, mode.label()])
            .observe(took.as_secs_f64());
    }

    /// Stages 1 to 8, in order; the first refusal ends the request. Verify-only mode answers
    /// after stage 7 instead of delivering.
    async fn pipeline<B: RequestBody>(
        &self,
        state: &State,
        req: Request<B>,
        conn: Conn,
        client: IpAddr,
        rec: &mut Record,
        mode: Mode,
    ) -> Result<Reply, Rejection> {
        let admitted = match self.admit(state, req, client, rec, mode).await? {
            Gate::Passed(a) => a,
            Gate::Challenge(json) => return Ok(Reply::Answered(json)),
        };
        match mode {
            Mode::Inline => {
                // 8. deliver. `sync` is awaited in place; queue and hybrid are boxed: they
                // would otherwise size every request's future (and its copies).
                let out = outbound(state, *admitted, conn, client, rec)?;
                if out.route.delivery.mode == DeliveryMode::Sync {
                    self.sync(state, out).await
                } else {
                    Box::pin(self.spool(state, out, rec)).await
                }
            }
            Mode::Authz(check) => Ok(Reply::Allowed(
                self.allow(state, *admitted, check, rec).await,
            )),
        }
    }

    /// Stages 1 to 7: what every request passes, whatever answers it afterwards.
    async fn admit<B: RequestBody>(
        &self,
        state: &State,
        req: Request<B>,
        client: IpAddr,
        rec: &mut Record,
        mode: Mode,
    ) -> Result<Gate, Rejection> {
        let settings = &state.settings;
        let host = request_host(&req);

        // 1. route
        let route = route::find(&settings.routes, req.uri().path(), host.as_deref())?;
        rec.route = Some(route.name.clone());
        if let Some(span) = &rec.span {
            let provider = route.verifier.scheme().name();
            span.routed(
                req.method(),
                &route_template(&route.path),
                &route.name,
                provider,
            );
        }
        route::allow(req.method())?;

        // 2. per-IP limit, before a byte of the body is read.
        state.limits.check_ip(&route.name, client)?;

        // 3. body. A proxy that cut the body short says so; such a body can never verify.
        if let Mode::Authz(check) = mode {
            if check.partial {
                authz::warn_partial(&route.name);
                return Err(Rejection::PartialBody);
            }
        }
        let (mut parts, incoming) = req.into_parts();
        let (max, timeout) = (settings.max_body_bytes, settings.body_timeout);
        let payload = Payload::new(body::read(incoming, &parts.headers, max, timeout).await?);
        rec.body = Some(payload.raw().clone());

        // 4. verify: on the headers as received, before anything is stripped.
        let now = self.clock.now_secs();
        let stage = telemetry::stage(rec.span.as_ref(), "verify");
        let verified = verify::verify(&route, &parts, payload.raw(), now, &self.metrics);
        if let Err(r) = &verified {
            stage.refused(r.reason());
        }
        drop(stage);
        let verified = match verified {
            Ok(v) => v,
            Err(r) => {
                if let Rejection::Unverified(e) = r {
                    let url = route::sender_url(&route, &parts.uri);
                    let (headers, body) = (&mut parts.headers, payload.raw());
                    rec.suspect = Suspect::keep(&route, headers, body, now, url, e);
                }
                return Err(r);
            }
        };
        rec.verified = Some(verified.clone());
        // A sender's own challenge (Zoom's URL validation) is answered here, not forwarded.
        if let Some(json) = verified.challenge.clone() {
            return Ok(Gate::Challenge(json));
        }

        // 5. route limit: only verified traffic counts. A queue route spools instead of
        // refusing: its bucket paces the deliveries (see `delivery`), not the intake. A check
        // has no spool to fall back on, so it is always limited.
        if route.delivery.mode != DeliveryMode::Queue || mode != Mode::Inline {
            let limit = route.rate_limit.route.as_ref();
            let store = &self.store;
            limit::check_route(store, &state.limits, &route.name, limit, &self.metrics).await?;
        }

        // 6. validate: the schema reads the body in place (`schema/document.rs`).
        let stage = telemetry::stage(rec.span.as_ref(), "validate");
        let validated = validate::validate(&route, &payload);
        if let Err(r) = &validated {
            stage.refused(r.reason());
        }
        drop(stage);
        rec.shadowed = validated?;

        // 7. dedup: the key from the headers as received; the claim is held until delivery.
        let received_ms = self.clock.now_ms();
        let mut hold = None;
        if let Some(d) = &route.dedup {
            let key = dedup::key(&route, d, &verified, &parts.headers, &payload);
            rec.dedup_key = Some(key.clone());
            let lease = dedup::lease_ms(&route);
            let stage = telemetry::stage(rec.span.as_ref(), "dedup");
            let claimed =
                dedup::claim(&self.store, &self.metrics, &route, &key, received_ms, lease).await;
            if let Err(r) = &claimed {
                stage.refused(r.reason());
            }
            drop(stage);
            hold = claimed?;
        }
        Ok(Gate::Passed(Box::new(Admitted {
            route,
            parts,
            payload,
            verified,
            hold,
            received_ms,
            now,
            host,
        })))
    }
}

/// The header hygiene before stage 8: a request that passed stages 1 to 7, cleaned and
/// addressed. A plain function, not a stage of the request's future, so that future stays
/// smaller, and so do its copies.
fn outbound(
    state: &State,
    admitted: Admitted,
    conn: Conn,
    client: IpAddr,
    rec: &mut Record,
) -> Result<deliver::Outbound, Rejection> {
    let Admitted {
        route,
        mut parts,
        payload,
        verified,
        hold,
        received_ms,
        now,
        host,
    } = admitted;

    // Header hygiene, then the trusted headers.
    rec.spoofed = state.trusted.strip_spoofed(&mut parts.headers);
    if rec.span.is_some() {
        // Each attempt carries its own client span's context instead of the sender's.
        telemetry::strip_context(&mut parts.headers);
    }
    set_forwarded(&mut parts.headers, client, conn, host);
    set_trusted(&mut parts.headers, &state.trusted, &route, &verified, rec);

    // Aimed at the route's upstream.
    let path = route::upstream_path(&route, parts.uri.path());
    let body = payload.raw().clone();
    let request = upstream::upstream_request(&route.upstream, path, parts, body.clone())
        .map_err(|_| Rejection::BadBody)?;
    Ok(deliver::Outbound {
        route,
        request,
        body,
        key_id: verified.key_id.clone(),
        hold,
        received_ms,
        now,
        trace: rec.span.as_ref().map(|s| s.context().clone()),
    })
}

/// A request under way. Its future is dropped before it ends when the client resets its
/// HTTP/2 stream or closes the connection (or at the end of `shutdown_grace`): it is then still
/// counted, logged and journaled once, as `stream_reset` (HTTP/2) or `client_closed`, instead of
/// vanishing.
struct Unfinished<'a> {
    gateway: &'a Gateway,
    state: Arc<State>,
    rec: Record,
    started: Instant,
    received_ms: u64,
    method: Method,
    path: String,
    query: Option<String>,
    headers: journal::Headers,
    client: IpAddr,
    h2: bool,
    mode: Mode,
    done: bool,
}

impl Drop for Unfinished<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let reason = if self.h2 {
            Rejection::StreamReset.reason()
        } else {
            "client_closed"
        };
        let route = self.rec.route.clone().unwrap_or_else(|| Arc::from("none"));
        let elapsed = self.started.elapsed();
        let gw = self.gateway;
        gw.account(&self.rec, &route, "rejected", reason, elapsed, self.mode);
        let finished = Finished {
            received_ms: self.received_ms,
            method: self.method.clone(),
            path: self.path.clone(),
            query: self.query.take(),
            client: self.client,
            headers: std::mem::take(&mut self.headers),
            outcome: "rejected",
            reason,
            status: reject::CLIENT_CLOSED,
            duration: elapsed,
        };
        if let Some(entry) = gw.journal_entry(&self.state, &self.rec, finished, self.mode) {
            gw.journal.record(entry);
        }
        let verified = self.rec.verified.take();
        Line {
            mode: self.mode.label(),
            route,
            method: std::mem::take(&mut self.method),
            path: std::mem::take(&mut self.path),
            outcome: "rejected",
            reason,
            status: reject::CLIENT_CLOSED,
            elapsed,
            client: self.client,
            key_id: verified.as_ref().map(|v| v.key_id.clone()),
            delivery_id: verified.and_then(|v| v.delivery_id),
            dedup_key: self.rec.dedup_key.take(),
            queue_id: self.rec.queue_id,
            spoofed: self.rec.spoofed,
            schema_shadowed: None,
            schema_pointers: None,
            diagnosis: None,
            trace_id: self.rec.span.as_ref().map(ServerSpan::trace_id),
            span: self.rec.span.take().map(|span| {
                span.set("webhook.outcome", "rejected");
                span.set("webhook.reason", reason);
                (span, std::time::SystemTime::now())
            }),
        }
        .close();
    }
}

/// One request's log line, written once it is complete (after the doctor, for a 401).
struct Line {
    /// `gateway` or `authz`.
    mode: &'static str,
    route: Arc<str>,
    method: Method,
    path: String,
    outcome: &'static str,
    reason: &'static str,
    status: u16,
    elapsed: Duration,
    client: IpAddr,
    key_id: Option<Arc<str>>,
    delivery_id: Option<String>,
    dedup_key: Option<String>,
    queue_id: Option<u64>,
    spoofed: usize,
    schema_shadowed: Option<&'static str>,
    schema_pointers: Option<String>,
    /// The signature doctor's diagnosis, and how long it took when it ran.
    diagnosis: Option<(String, Option<Duration>)>,
    trace_id: Option<String>,
    /// The server span, ended with the line, and when the answer was made.
    span: Option<(ServerSpan, std::time::SystemTime)>,
}

impl Line {
    fn log(&self) {
        let (diagnosis, took) = match &self.diagnosis {
            Some((d, took)) => (Some(d.as_str()), *took),
            None => (None, None),
        };
        tracing::info!(
            target: "hookgate::request",
            mode = self.mode,
            route = &*self.route,
            method = %self.method,
            path = self.path,
            outcome = self.outcome,
            reason = (!self.reason.is_empty()).then_some(self.reason),
            status = self.status,
            duration_ms = duration_ms(self.elapsed),
            client_ip = %self.client,
            key_id = self.key_id.as_deref(),
            delivery_id = self.delivery_id.as_deref(),
            dedup_key = self.dedup_key.as_deref(),
            queue_id = self.queue_id,
            spoofed_headers = self.spoofed,
            schema_shadowed = self.schema_shadowed,
            schema_pointers = self.schema_pointers.as_deref(),
            diagnosis,
            diagnosis_ms = took.map(duration_ms),
            trace_id = self.trace_id.as_deref(),
            "request"
        );
    }

    /// Logs the line and ends the request's span (at the answer's time: a 401's diagnosis
    /// comes later and is added to the span then).
    fn close(mut self) {
        self.log();
        if let Some((span, answered)) = self.span.take() {
            if let Some((diagnosis, _)) = &self.diagnosis {
                span.set("webhook.diagnosis", diagnosis.clone());
            }
            span.finish(self.status, self.reason, answered);
        }
    }
}

/// A route's path as `http.route` shows it: `/hooks/*` for a prefix.
fn route_template(path: &RoutePath) -> String {
    match path {
        RoutePath::Exact(p) => p.clone(),
        RoutePath::Prefix(p) => format!("{p}*"),
    }
}

/// Zero series for every route's alerting inputs.
fn prime(metrics: &Metrics, routes: &[Arc<Route>]) {
    for r in routes {
        metrics.prime_route(&r.name, r.delivery.mode != DeliveryMode::Sync);
    }
}

/// Milliseconds rounded to the microsecond, as logs show durations.
pub fn duration_ms(d: Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}

/// The host the sender addressed: the request target's authority, else `Host`.
fn request_host<B>(req: &Request<B>) -> Option<String> {
    req.uri()
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            req.headers()
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        })
}

/// `X-Forwarded-For`, `-Proto` and `-Host` (the sender's `Host`, else the request target's).
fn set_forwarded(headers: &mut HeaderMap, client: IpAddr, conn: Conn, host: Option<String>) {
    let original_host = headers
        .get(http::header::HOST)
        .cloned()
        .or_else(|| host.and_then(|h| h.parse().ok()));
    let proto = if conn.tls { "https" } else { "http" };
    upstream::set_forwarded(headers, client, proto, original_host);
}

/// The trusted headers only hookgate sets, replacing any inbound copy.
fn set_trusted(
    headers: &mut HeaderMap,
    trusted: &Trusted,
    route: &Route,
    verified: &Verified,
    rec: &Record,
) {
    for (name, value) in trusted_headers(trusted, route, &verified.key_id, rec.dedup_key.as_deref())
    {
        headers.insert(name, value);
    }
}

/// The trusted headers of a verified request: verified, provider, route, key id and the dedup
/// key (when dedup is on). A value that cannot be a header value is left out.
fn trusted_headers(
    trusted: &Trusted,
    route: &Route,
    key_id: &str,
    dedup_key: Option<&str>,
) -> Vec<(http::HeaderName, HeaderValue)> {
    let provider = route.verifier.scheme().name();
    let mut set = vec![
        (trusted.verified.clone(), HeaderValue::from_static("true")),
        (trusted.provider.clone(), HeaderValue::from_static(provider)),
    ];
    if let Ok(v) = HeaderValue::from_str(&route.name) {
        set.push((trusted.route.clone(), v));
    }
    if let Ok(v) = HeaderValue::from_str(key_id) {
        set.push((trusted.key_id.clone(), v));
    }
    if let Some(Ok(v)) = dedup_key.map(HeaderValue::from_str) {
        set.push((trusted.id.clone(), v));
    }
    set
}

fn answer(json: String) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::from(json)));
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// 202 for an event stored for background delivery.
fn accepted() -> Response<Full<Bytes>> {
    let mut res = answer(r#"{"status":"queued"}"#.to_string());
    *res.status_mut() = StatusCode::ACCEPTED;
    res
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::BodyExt;
    use hyper::body::Incoming;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;

    use super::*;
    use crate::config::Config;
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
        let gw = Gateway::with_store(
            config.gateway(),
            metrics.clone(),
            store,
            Arc::new(SystemClock),
        );
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
                .with_label_values(&["q", "failed", "store", "gateway"])
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
