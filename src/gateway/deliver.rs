//! Stage 8: deliver, by the route's mode.
//!
//! - `sync`: forward and pass the backend's answer back (502 unreachable, 504 too slow).
//! - `queue`: store the event durably, answer 202 (503 when it cannot be stored); the
//!   delivery engine takes it from there.
//! - `hybrid`: forward, but answer 202 and let the engine finish when the backend misses the
//!   route's deadline.
//!
//! A dedup claim is settled here: marked delivered after a 2xx, handed to the store with a
//! spooled event, or released (dropped) otherwise.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request};
use http_body_util::Full;
use tokio::sync::oneshot;

use super::dedup::Hold;
use super::route::Route;
use super::{Gateway, Record, Rejection, Reply, State};
use crate::clock::millis;
use crate::delivery::{attempt_of, DeliveryMode, Seen};
use crate::store::{Event, Meta, TraceContext};
use crate::telemetry;
use crate::upstream::{self, Sent, Traced};

/// A verified request, cleaned and addressed, ready for its route's delivery.
pub(super) struct Outbound {
    pub route: Arc<Route>,
    pub request: Request<Full<Bytes>>,
    /// The exact bytes that were verified.
    pub body: Bytes,
    pub key_id: Arc<str>,
    pub hold: Option<Hold>,
    /// When the request arrived (unix ms): the spooled event's age counts from here.
    pub received_ms: u64,
    /// Unix seconds, for the attestation.
    pub now: u64,
    /// The request's server span: the parent of every attempt, now or later.
    pub trace: Option<opentelemetry::Context>,
}

impl Outbound {
    fn provider(&self) -> &'static str {
        self.route.verifier.scheme().name()
    }

    /// The event as the store keeps it, and its first schedule.
    fn spooled(&self, rec: &Record, attempts: u32, next_ms: u64, deferred: bool) -> (Event, Meta) {
        let event = upstream::to_event(
            &self.request,
            self.body.clone(),
            self.provider(),
            &self.key_id,
            self.trace
                .as_ref()
                .and_then(telemetry::carried)
                .map(|(traceparent, tracestate)| TraceContext {
                    traceparent,
                    tracestate,
                }),
        );
        let meta = Meta {
            id: 0,
            route: self.route.name.to_string(),
            key: rec.dedup_key.clone(),
            received_ms: self.received_ms,
            attempts,
            next_ms,
            deferred,
            last_error: String::new(),
        };
        (event, meta)
    }

    /// When the event's dedup key, if it has one, stops marking duplicates.
    fn dedup_expires(&self, now_ms: u64) -> Option<u64> {
        let ttl = self.route.dedup.as_ref().map(|d| d.ttl)?;
        self.hold
            .as_ref()
            .map(|_| now_ms.saturating_add(millis(ttl)))
    }

    fn attest(&mut self, state: &State) {
        if let Some(secret) = &state.settings.forward.attestation {
            let provider = self.provider();
            upstream::attest(
                &mut self.request,
                &state.trusted,
                secret,
                &self.body,
                provider,
                &self.key_id,
                self.now,
            );
        }
    }
}

impl Gateway {
    /// Queue, and hybrid (spooled at once while its route is paused: nothing is sent until it
    /// is resumed).
    pub(super) async fn spool(
        &self,
        state: &State,
        out: Outbound,
        rec: &mut Record,
    ) -> Result<Reply, Rejection> {
        let paused = self.engine.is_paused(&out.route.name);
        match out.route.delivery.mode {
            DeliveryMode::Hybrid if !paused => self.hybrid(state, out, rec).await,
            _ => self.queue(out, rec).await,
        }
    }

    pub(super) async fn sync(&self, state: &State, mut out: Outbound) -> Result<Reply, Rejection> {
        out.attest(state);
        let (route, timeout) = (&out.route.name, out.route.timeout);
        let client = upstream::client();
        let traced = Traced {
            parent: out.trace.as_ref(),
            resend_count: 0,
        };
        let result =
            upstream::send_observed(&client, &self.metrics, route, timeout, out.request, traced)
                .await
                .map_err(Rejection::from);
        let ttl = out.route.dedup.as_ref().map_or(Duration::ZERO, |d| d.ttl);
        self.finish(result, out.hold, ttl).await
    }

    async fn queue(&self, out: Outbound, rec: &mut Record) -> Result<Reply, Rejection> {
        let (event, meta) = out.spooled(rec, 0, out.received_ms, false);
        let expires = out.dedup_expires(out.received_ms);
        match self.engine.accept(&event, meta, expires).await {
            Ok(meta) => {
                rec.queue_id = Some(meta.id);
                if let Some(h) = out.hold {
                    h.handed_over();
                }
                Ok(Reply::Spooled { deferred: false })
            }
            Err(e) => {
                self.metrics
                    .store_errors
                    .with_label_values(&[e.operation("enqueue")])
                    .inc();
                tracing::error!(route = %out.route.name, error = %e, "cannot store an event; refusing it so the sender retries");
                Err(Rejection::StoreFailed)
            }
        }
    }

    /// A synchronous attempt's answer goes back to the sender; 2xx marks the key delivered.
    async fn finish(
        &self,
        result: Result<Sent, Rejection>,
        hold: Option<Hold>,
        ttl: Duration,
    ) -> Result<Reply, Rejection> {
        let (res, _) = result?;
        if res.status().is_success() {
            if let Some(h) = hold {
                let expires = self.clock.now_ms().saturating_add(millis(ttl));
                if let Err(e) = h.delivered(expires).await {
                    self.metrics
                        .store_errors
                        .with_label_values(&[e.operation("mark")])
                        .inc();
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
    async fn hybrid(
        &self,
        state: &State,
        mut out: Outbound,
        rec: &mut Record,
    ) -> Result<Reply, Rejection> {
        // Stored as it would be spooled, due once the first attempt has surely ended: if the
        // process dies meanwhile, a restart retries it then.
        let lease = millis(out.route.timeout + Duration::from_secs(1));
        let (event, meta) = out.spooled(rec, 1, out.received_ms.saturating_add(lease), true);
        out.attest(state);
        let h = out.request.headers_mut();
        h.insert(
            state.trusted.delivery.clone(),
            HeaderValue::from_static("sync"),
        );
        h.insert(state.trusted.attempt.clone(), HeaderValue::from_static("1"));
        let ttl = out.route.dedup.as_ref().map_or(Duration::ZERO, |d| d.ttl);

        let (result_tx, mut result_rx) = oneshot::channel();
        let (meta_tx, meta_rx) = oneshot::channel::<Meta>();
        let (metrics, engine, clock) = (
            self.metrics.clone(),
            self.engine.clone(),
            self.clock.clone(),
        );
        let (route, timeout) = (out.route.name.clone(), out.route.timeout);
        let request = out.request;
        let trace = out.trace.clone();
        let first_started = std::time::Instant::now();
        tokio::spawn(async move {
            let client = upstream::client();
            let started = std::time::Instant::now();
            let traced = Traced {
                parent: trace.as_ref(),
                resend_count: 0,
            };
            let result =
                upstream::send_observed(&client, &metrics, &route, timeout, request, traced).await;
            // Either the sender is still waiting and takes the result, or it got 202 and the
            // spooled event's state is in `meta_rx`.
            if let Err(result) = result_tx.send(result) {
                let seen = seen_of(&result, started);
                let outcome = attempt_of(result, clock.now_system());
                if let Ok(meta) = meta_rx.await {
                    engine.settle(meta, outcome, seen).await;
                }
            }
        });
        let waited = |r: Result<Result<Sent, upstream::UpstreamError>, _>| {
            r.map_err(|_| Rejection::UpstreamUnreachable)
                .and_then(|r| r.map_err(Rejection::from))
        };
        tokio::select! {
            r = &mut result_rx => return self.finish(waited(r), out.hold, ttl).await,
            _ = tokio::time::sleep(out.route.delivery.deadline) => {}
        }
        let expires = out
            .hold
            .as_ref()
            .map(|_| self.clock.now_ms().saturating_add(millis(ttl)));
        match self.engine.defer(&event, meta, expires).await {
            Ok(meta) => {
                rec.queue_id = Some(meta.id);
                if let Some(h) = out.hold {
                    h.handed_over();
                }
                let _ = meta_tx.send(meta.clone());
                result_rx.close();
                // The attempt ended while the event was being stored: its result is ours.
                if let Ok(result) = result_rx.try_recv() {
                    let seen = seen_of(&result, first_started);
                    let outcome = attempt_of(result, self.clock.now_system());
                    let engine = self.engine.clone();
                    tokio::spawn(async move { engine.settle(meta, outcome, seen).await });
                }
                Ok(Reply::Spooled { deferred: true })
            }
            Err(e) => {
                // Not stored: stay synchronous rather than answer 202 for an event that
                // could be lost.
                self.metrics
                    .store_errors
                    .with_label_values(&[e.operation("enqueue")])
                    .inc();
                tracing::error!(route = %out.route.name, error = %e, "cannot store a deferred event; waiting for the backend");
                self.finish(waited(result_rx.await), out.hold, ttl).await
            }
        }
    }
}

/// What the journal keeps of the first attempt: its status and how long it took.
fn seen_of(result: &Result<Sent, upstream::UpstreamError>, started: std::time::Instant) -> Seen {
    Seen {
        status: result.as_ref().ok().map(|(r, _)| r.status().as_u16()),
        took: started.elapsed(),
    }
}
