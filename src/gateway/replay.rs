//! An operator's replay of a journal event: the stored request sent again through its route's
//! delivery, not verified again (it was verified on arrival), with the trusted headers and
//! `X-Webhook-Replay: <original id>`, and journaled as a new event with `replay_of`.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request};
use http_body_util::Full;

use super::route::{self, Route};
use super::{duration_ms, Gateway, State};
use crate::delivery::DeliveryMode;
use crate::journal::{Entry, REDACTED};
use crate::store::{Claim, Meta, Selection, Store};
use crate::upstream::{self, strip_hop_by_hop};

/// Why an event cannot be replayed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReplayError {
    #[error("the event was never accepted (it did not pass verification)")]
    NotAccepted,
    #[error("the event's body was not kept (journal.capture_body is false, or it was cut at journal.max_body_bytes)")]
    NoBody,
    #[error("route {0} is no longer configured")]
    NoRoute(String),
    #[error("the stored request cannot be sent: {0}")]
    Unusable(String),
    #[error("the event could not be stored for delivery")]
    Store,
}

/// How one replay went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replayed {
    /// The new journal event's id.
    pub id: String,
    /// Its outcome: forwarded, failed, queued or duplicate.
    pub outcome: &'static str,
}

impl Gateway {
    /// The mode of route `name`, if it is configured.
    pub fn route_mode(&self, name: &str) -> Option<DeliveryMode> {
        let state = self.state();
        let route = state.settings.routes.iter().find(|r| &*r.name == name)?;
        Some(route.delivery.mode)
    }

    /// The journal's clock.
    pub fn journal_now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Replays `events` (sync routes) one after another on a task of their own, each waiting
    /// for its route's limit: a bulk replay answers at once and never floods a backend.
    pub fn replay_in_background(self: &Arc<Self>, events: Vec<Entry>, dedup: bool) {
        let gw = self.clone();
        tokio::spawn(async move {
            for e in events {
                let route = e.route.as_deref().unwrap_or_default().to_string();
                loop {
                    let state = gw.state();
                    let limit = state
                        .settings
                        .routes
                        .iter()
                        .find(|r| *r.name == route)
                        .and_then(|r| r.rate_limit.route);
                    let pace = crate::limit::check_route(
                        &gw.store,
                        &state.limits,
                        &route,
                        limit.as_ref(),
                        &gw.metrics,
                    );
                    match pace.await {
                        Ok(()) => break,
                        Err(l) => {
                            let wait = std::time::Duration::from_secs(l.retry_after.max(1));
                            tokio::time::sleep(wait).await;
                        }
                    }
                }
                if let Err(err) = gw.replay(&e, dedup).await {
                    tracing::warn!(target: "hookgate::admin", event = %e.id, error = %err, "replay failed");
                }
            }
        });
    }

    /// Sends `original` again. `dedup`: respect the route's dedup (off by default: a replay
    /// is meant to reach the backend though its key was seen).
    pub async fn replay(&self, original: &Entry, dedup: bool) -> Result<Replayed, ReplayError> {
        if !original.accepted() {
            return Err(ReplayError::NotAccepted);
        }
        let (Some(body), false) = (original.body.clone(), original.body_truncated) else {
            return Err(ReplayError::NoBody);
        };
        let state = self.state();
        let name = original.route.as_deref().unwrap_or_default();
        let route = state
            .settings
            .routes
            .iter()
            .find(|r| &*r.name == name)
            .cloned()
            .ok_or_else(|| ReplayError::NoRoute(name.to_string()))?;
        let request = replay_request(&state, &route, original, body.clone())?;
        let received_ms = self.clock.now_ms();
        let id = self.journal.next_id(received_ms);
        let started = Instant::now();
        self.metrics.replays.with_label_values(&[&route.name]).inc();

        let key = original.dedup_key.as_deref().filter(|_| dedup);
        if let (Some(key), Some(_)) = (key, &route.dedup) {
            let lease = super::dedup::lease_ms(&route);
            if let Ok(Claim::Duplicate | Claim::InFlight) =
                self.store.claim(&route.name, key, received_ms, lease).await
            {
                let done = Done {
                    id: &id,
                    received_ms,
                    started,
                    outcome: "duplicate",
                    status: 200,
                    queue_id: None,
                };
                self.journal_replay(original, done);
                return Ok(Replayed {
                    id,
                    outcome: "duplicate",
                });
            }
            self.store.release(&route.name, key);
        }

        let (outcome, status, queue_id) = match route.delivery.mode {
            DeliveryMode::Sync => {
                let (outcome, status) = self.send_now(&route, request).await;
                (outcome, status, None)
            }
            DeliveryMode::Queue | DeliveryMode::Hybrid => {
                let provider = route.verifier.scheme().name();
                let key_id = original.key_id.clone().unwrap_or_default();
                // An operator's replay starts a trace of its own.
                let event = upstream::to_event(&request, body.clone(), provider, &key_id, None);
                let meta = Meta {
                    id: 0,
                    route: route.name.to_string(),
                    key: original.dedup_key.clone(),
                    received_ms,
                    attempts: 0,
                    next_ms: received_ms,
                    deferred: false,
                    last_error: String::new(),
                };
                let meta = self
                    .engine
                    .accept(&event, meta, None)
                    .await
                    .map_err(|_| ReplayError::Store)?;
                ("queued", 202, Some(meta.id))
            }
        };
        let done = Done {
            id: &id,
            received_ms,
            started,
            outcome,
            status,
            queue_id,
        };
        self.journal_replay(original, done);
        self.retire_dead_letter(original).await;
        Ok(Replayed { id, outcome })
    }

    /// A sync route's replay, sent now: its outcome and the backend's status (502/504 when it
    /// gave none).
    async fn send_now(&self, route: &Route, request: Request<Full<Bytes>>) -> (&'static str, u16) {
        let client = upstream::client();
        let (name, timeout) = (&route.name, route.timeout);
        let traced = upstream::Traced::default();
        let sent =
            upstream::send_observed(&client, &self.metrics, name, timeout, request, traced).await;
        match sent {
            Ok((res, _)) => {
                let status = res.status().as_u16();
                // Read (bounded) and dropped, so the connection goes back to the pool.
                tokio::spawn(async move {
                    use http_body_util::BodyExt;
                    let body = http_body_util::Limited::new(res.into_body(), 64 * 1024);
                    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), body.collect())
                        .await;
                });
                let ok = (200..300).contains(&status);
                (if ok { "forwarded" } else { "failed" }, status)
            }
            Err(upstream::UpstreamError::Timeout) => ("failed", 504),
            Err(upstream::UpstreamError::Unreachable(_)) => ("failed", 502),
        }
    }

    /// A dead letter replayed as a new event leaves the dead letters (so it is not replayed
    /// twice from there), and its event reads `state: replayed`.
    async fn retire_dead_letter(&self, original: &Entry) {
        let (Some("dead"), Some(q), Some(route)) = (
            original.state.as_deref(),
            original.queue_id,
            original.route.as_deref(),
        ) else {
            return;
        };
        match self.engine.drop_dead(&Selection::Ids(vec![q])).await {
            Ok(_) => self.journal.state(q, route, "replayed"),
            Err(e) => tracing::warn!(
                target: "hookgate::admin",
                error = %e,
                event = %original.id,
                "replayed, but the dead letter could not be removed; it is still listed"
            ),
        }
    }

    /// The replay as a new journal event, linked to the original.
    fn journal_replay(&self, original: &Entry, done: Done<'_>) {
        let Done {
            id,
            received_ms,
            started,
            outcome,
            status,
            queue_id,
        } = done;
        let mut e = original.clone();
        e.id = id.to_string();
        e.received_ms = received_ms;
        e.outcome = outcome.into();
        e.reason = None;
        e.status = status;
        e.duration_ms = duration_ms(started.elapsed());
        e.client_ip = None;
        e.diagnosis = None;
        e.state = queue_id.map(|_| "pending".into());
        e.attempts = Vec::new();
        e.replay_of = Some(original.id.clone());
        e.queue_id = queue_id;
        e.trace_id = None;
        self.journal.record(e);
    }
}

/// How a replay went, for its journal event.
struct Done<'a> {
    id: &'a str,
    received_ms: u64,
    started: Instant,
    outcome: &'static str,
    status: u16,
    queue_id: Option<u64>,
}

/// The stored request again: its headers less what was redacted, hop-by-hop and any trusted
/// look-alike, then the trusted headers and `X-Webhook-Replay`.
fn replay_request(
    state: &State,
    route: &Arc<Route>,
    original: &Entry,
    body: Bytes,
) -> Result<Request<Full<Bytes>>, ReplayError> {
    let mut headers = HeaderMap::new();
    for (k, v) in original.headers.iter() {
        if v == REDACTED.as_bytes() {
            continue;
        }
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_bytes(v),
        ) {
            headers.append(k, v);
        }
    }
    strip_hop_by_hop(&mut headers);
    headers.remove(http::header::HOST);
    state.trusted.strip_spoofed(&mut headers);
    let t = &state.trusted;
    let set = |h: &mut HeaderMap, name: &HeaderName, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name.clone(), v);
        }
    };
    set(&mut headers, &t.verified, "true");
    set(&mut headers, &t.provider, route.verifier.scheme().name());
    set(&mut headers, &t.route, &route.name);
    if let Some(k) = &original.key_id {
        set(&mut headers, &t.key_id, k);
    }
    if let Some(k) = &original.dedup_key {
        set(&mut headers, &t.id, k);
    }
    set(&mut headers, &t.replay, &original.id);

    let mut pq = route::upstream_path(route, &original.path);
    if let Some(q) = &original.query {
        pq.push('?');
        pq.push_str(q);
    }
    let mut req = Request::new(Full::new(body));
    *req.method_mut() = http::Method::POST;
    *req.uri_mut() = http::Uri::builder()
        .scheme(route.upstream.scheme.clone())
        .authority(route.upstream.authority.clone())
        .path_and_query(pq)
        .build()
        .map_err(|e| ReplayError::Unusable(e.to_string()))?;
    *req.headers_mut() = headers;
    Ok(req)
}
