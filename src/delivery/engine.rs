use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{HeaderValue, Request};
use http_body_util::Full;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use super::outcome::attempt_of;
use super::plan::{Lane, Plan};
use super::policy::DeliveryMode;
use super::queue::RouteQueue;
use super::schedule::{self, Attempt, Decision};
use crate::clock::{millis, Clock};
use crate::journal::{rfc3339, AttemptRecord, Journal};
use crate::limit;
use crate::metrics::Metrics;
use crate::store::{AnyStore, Event, Meta, Selection, Store, StoreError};
use crate::telemetry;
use crate::upstream::{self, UpstreamClient};

/// What the journal keeps of an attempt besides its outcome.
#[derive(Debug, Clone, Copy, Default)]
pub struct Seen {
    /// The backend's status, when it answered.
    pub status: Option<u16>,
    pub took: Duration,
}

/// How often expired dedup marks are purged from the store.
const PURGE_EVERY: Duration = Duration::from_secs(60);
/// How long to wait before retrying after the store itself failed.
const STORE_RETRY: Duration = Duration::from_secs(1);
/// Shared store: how often each replica reads the fleet's paused routes.
pub const PAUSE_SYNC: Duration = Duration::from_secs(1);

/// The delivery engine shared by the gateway and the admin API.
pub struct Engine {
    store: AnyStore,
    clock: Arc<dyn Clock>,
    client: UpstreamClient,
    metrics: Metrics,
    plan: ArcSwap<Plan>,
    queues: Mutex<HashMap<String, Arc<RouteQueue>>>,
    dead: Mutex<HashMap<String, i64>>,
    /// Shared store: delivered events whose ack failed, by id with their route, retried each
    /// lease round (until then they stay renewed, so no other replica delivers them again).
    unacked: Mutex<HashMap<u64, String>>,
    /// Set once the events are being handed back at shutdown: no lease round may renew them
    /// after. `rounds` is held by a lease round and by the hand-back, so they never overlap.
    closing: AtomicBool,
    rounds: tokio::sync::Mutex<()>,
    /// The runtime background deliveries run on (the one that called `resume`), whichever
    /// worker thread accepted the event.
    runtime: OnceLock<tokio::runtime::Handle>,
    /// Where each attempt is recorded against its event.
    journal: OnceLock<Arc<Journal>>,
    /// Routes whose deliveries an operator paused: they keep accepting and send nothing.
    paused: Mutex<HashSet<String>>,
}

impl Engine {
    pub fn new(store: AnyStore, clock: Arc<dyn Clock>, metrics: Metrics, plan: Plan) -> Arc<Self> {
        Arc::new(Self {
            store,
            clock,
            client: upstream::client(),
            metrics,
            plan: ArcSwap::from_pointee(plan),
            queues: Mutex::default(),
            dead: Mutex::default(),
            unacked: Mutex::default(),
            closing: AtomicBool::new(false),
            rounds: tokio::sync::Mutex::new(()),
            runtime: OnceLock::new(),
            journal: OnceLock::new(),
            paused: Mutex::default(),
        })
    }

    /// Stops starting attempts for `route` (those under way finish); events keep being
    /// accepted. Recorded in the store first: a pause survives a restart and, on Redis,
    /// reaches every replica within [`PAUSE_SYNC`].
    pub async fn pause(self: &Arc<Self>, route: &str) -> Result<(), StoreError> {
        self.store.set_paused(route, true).await?;
        self.set_paused(route, true);
        Ok(())
    }

    /// Starts delivering `route`'s events again.
    pub async fn resume_route(self: &Arc<Self>, route: &str) -> Result<(), StoreError> {
        self.store.set_paused(route, false).await?;
        self.set_paused(route, false);
        Ok(())
    }

    /// Applies a pause or a resume in this process.
    fn set_paused(self: &Arc<Self>, route: &str, paused: bool) {
        let changed = if paused {
            self.paused_set().insert(route.to_string())
        } else {
            self.paused_set().remove(route)
        };
        self.metrics
            .route_paused
            .with_label_values(&[route])
            .set(i64::from(paused));
        if changed && !paused {
            let q = self.queue(route);
            q.notify.notify_waiters();
            q.notify.notify_one();
        }
    }

    /// Takes the store's paused routes as this process's (at start, and on a shared store
    /// every [`PAUSE_SYNC`], so a pause made through any replica holds on all).
    async fn sync_paused(self: &Arc<Self>) -> Result<(), StoreError> {
        let stored: HashSet<String> = self.store.paused().await?.into_iter().collect();
        let local = self.paused_set().clone();
        for r in stored.difference(&local) {
            self.set_paused(r, true);
        }
        for r in local.difference(&stored) {
            self.set_paused(r, false);
        }
        Ok(())
    }

    pub fn is_paused(&self, route: &str) -> bool {
        self.paused_set().contains(route)
    }

    fn paused_set(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.paused.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Events indexed for `route` (queued or in flight) and the oldest one's age in seconds.
    pub fn depth(&self, route: &str) -> (usize, f64) {
        let now = self.now_ms();
        let queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        let Some(q) = queues.get(route) else {
            return (0, 0.0);
        };
        let idx = q.index();
        let oldest = idx.items.values().map(|m| m.received_ms).min();
        let age = oldest.map_or(0.0, |t| now.saturating_sub(t) as f64 / 1000.0);
        (idx.items.len(), age)
    }

    /// Dead letters counted for `route`.
    pub fn dead_count(&self, route: &str) -> i64 {
        self.dead_counts().get(route).copied().unwrap_or(0)
    }

    /// Records every attempt in `journal` from now on.
    pub fn set_journal(&self, journal: Arc<Journal>) {
        let _ = self.journal.set(journal);
    }

    /// Attempts from now on run on `plan` (a reload); those under way finish on theirs.
    pub fn set_plan(&self, plan: Plan) {
        self.plan.store(Arc::new(plan));
    }

    pub fn store(&self) -> &AnyStore {
        &self.store
    }

    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Loads every pending event and dead-letter count from the store and starts delivering.
    /// Returns how many events were resumed.
    pub async fn resume(self: &Arc<Self>) -> Result<usize, StoreError> {
        let _ = self.runtime.set(tokio::runtime::Handle::current());
        if let Some(lease) = self.store.lease() {
            let me = Arc::downgrade(self);
            self.spawn(async move {
                let mut tick = tokio::time::interval(PAUSE_SYNC);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut failing = false;
                loop {
                    tick.tick().await;
                    let Some(engine) = me.upgrade() else { return };
                    match engine.sync_paused().await {
                        Ok(()) => failing = false,
                        Err(e) if !failing => {
                            failing = true;
                            tracing::warn!(error = %e, "reading the fleet's paused routes failed; will retry");
                        }
                        Err(_) => {}
                    }
                }
            });
            // A shared store: this process owns nothing yet, and Redis may be down at start-up
            // (the process then starts unready). The lease task adopts and counts.
            let me = Arc::downgrade(self);
            self.spawn(async move {
                let mut tick = tokio::time::interval(lease / 3);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    let Some(engine) = me.upgrade() else { return };
                    engine.lease_round().await;
                }
            });
            return Ok(0);
        }
        self.sync_paused().await?;
        let pending = self.store.pending().await?;
        let n = pending.len();
        for meta in pending {
            self.queue(&meta.route).schedule(meta);
        }
        let dead = self.store.dead_letters().await?;
        {
            let mut counts = self.dead_counts();
            for m in &dead {
                *counts.entry(m.route.clone()).or_default() += 1;
            }
        }
        let me = Arc::downgrade(self);
        self.spawn(async move {
            let mut tick = tokio::time::interval(PURGE_EVERY);
            loop {
                tick.tick().await;
                let Some(engine) = me.upgrade() else { return };
                if let Err(e) = engine.store.purge_expired(engine.now_ms()).await {
                    tracing::warn!(error = %e, "purging expired dedup keys failed");
                }
            }
        });
        Ok(n)
    }

    /// Shared store: retries failed acks, renews every event this process holds, forgets those
    /// it lost, schedules those it adopted and takes the fleet's dead-letter counts.
    async fn lease_round(self: &Arc<Self>) {
        let _round = self.rounds.lock().await;
        if self.closing.load(Ordering::SeqCst) {
            return;
        }
        let queues = self.queues();
        let owns = self.owned();
        let leases = match self.store.renew(&owns).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "renewing queue leases failed; will retry");
                self.store_error("lease");
                return;
            }
        };
        let mut lost = 0usize;
        for id in &leases.lost {
            self.unacked().remove(id);
            for (_, q) in &queues {
                // Not there any more: settled here while the round ran, not lost.
                lost += usize::from(q.forget(*id));
            }
        }
        if lost > 0 {
            tracing::warn!(
                target: "hookgate::delivery",
                events = lost,
                "queued events taken over by another replica (this one did not renew them within store.lease) or gone from Redis"
            );
        }
        let mut adopted = 0usize;
        for meta in leases.adopted {
            let q = self.queue(&meta.route);
            if q.index().items.contains_key(&meta.id) {
                continue;
            }
            adopted += 1;
            q.schedule(meta);
        }
        if adopted > 0 {
            tracing::info!(
                target: "hookgate::delivery",
                events = adopted,
                "adopted queued events whose replica stopped renewing them"
            );
        }
        {
            let mut counts = self.dead_counts();
            // A route whose last dead letter went keeps its gauge, at zero.
            for n in counts.values_mut() {
                *n = 0;
            }
            counts.extend(leases.dead);
        }
        // After the heartbeat: however many acks are waiting, they cannot make it lapse.
        let unacked: Vec<(u64, String)> = self
            .unacked()
            .iter()
            .map(|(id, route)| (*id, route.clone()))
            .collect();
        for (id, route) in unacked {
            match self.store.ack(&route, id).await {
                Ok(()) => drop(self.unacked().remove(&id)),
                Err(_) => {
                    self.store_error("ack");
                    break;
                }
            }
        }
    }

    /// Every event this process holds, as `(route, id)`: indexed, in flight, or delivered but
    /// not acknowledged.
    fn owned(&self) -> Vec<(String, u64)> {
        let mut owns: Vec<(String, u64)> = self
            .queues()
            .iter()
            .flat_map(|(route, q)| {
                q.index()
                    .items
                    .keys()
                    .map(|id| (route.clone(), *id))
                    .collect::<Vec<_>>()
            })
            .collect();
        owns.extend(
            self.unacked()
                .iter()
                .map(|(id, route)| (route.clone(), *id)),
        );
        owns
    }

    /// Shutting down on a shared store: the events this process holds go to the other replicas
    /// at their next lease round instead of after the lease. Attempts still in flight are
    /// abandoned as in a crash (at least once).
    pub async fn hand_back(&self) {
        if self.store.lease().is_none() {
            return;
        }
        self.closing.store(true, Ordering::SeqCst);
        let _round = self.rounds.lock().await;
        // Even owning nothing it knows of: its pending list may hold entries whose enqueue
        // answer was lost.
        let owns = self.owned();
        match self.store.hand_back(&owns).await {
            Ok(n) => tracing::info!(
                target: "hookgate::delivery",
                events = n,
                "handed queued events back to the other replicas"
            ),
            Err(e) => {
                self.store_error("lease");
                tracing::warn!(error = %e, "handing queued events back failed; the other replicas adopt them after store.lease");
            }
        }
    }

    fn unacked(&self) -> std::sync::MutexGuard<'_, HashMap<u64, String>> {
        self.unacked.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn queues(&self) -> Vec<(String, Arc<RouteQueue>)> {
        self.queues
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        match self.runtime.get() {
            Some(rt) => drop(rt.spawn(task)),
            None => drop(tokio::spawn(task)),
        }
    }

    fn dead_counts(&self) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        self.dead.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The route's queue, its dispatcher started on first use.
    fn queue(self: &Arc<Self>, route: &str) -> Arc<RouteQueue> {
        let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(q) = queues.get(route) {
            return q.clone();
        }
        let concurrency = self.lane(route).map_or(1, |l| l.policy.concurrency.max(1));
        let q = Arc::new(RouteQueue {
            index: Mutex::default(),
            notify: Notify::new(),
            permits: Arc::new(Semaphore::new(concurrency)),
        });
        queues.insert(route.to_string(), q.clone());
        self.spawn(self.clone().dispatch(route.to_string(), q.clone()));
        q
    }

    fn lane(&self, name: &str) -> Option<Arc<Lane>> {
        self.plan.load().lane(name)
    }

    /// Stores an accepted event durably and schedules it now. The event's dedup key, if any,
    /// is marked delivered in the same commit.
    pub async fn accept(
        self: &Arc<Self>,
        event: &Event,
        meta: Meta,
        dedup_expires_ms: Option<u64>,
    ) -> Result<Meta, StoreError> {
        let meta = self.store.enqueue(event, meta, dedup_expires_ms).await?;
        self.queue(&meta.route).schedule(meta.clone());
        Ok(meta)
    }

    /// Hybrid: stores an event whose first attempt is still in flight. It is not scheduled:
    /// [`Engine::settle`] does that with the first attempt's result. If the process dies
    /// first, `meta.next_ms` is when a restart retries it.
    pub async fn defer(
        self: &Arc<Self>,
        event: &Event,
        meta: Meta,
        dedup_expires_ms: Option<u64>,
    ) -> Result<Meta, StoreError> {
        let meta = self.store.enqueue(event, meta, dedup_expires_ms).await?;
        self.queue(&meta.route)
            .index()
            .items
            .insert(meta.id, meta.clone());
        Ok(meta)
    }

    /// Waits for due events and starts their attempts, `concurrency` at a time.
    async fn dispatch(self: Arc<Self>, route: String, q: Arc<RouteQueue>) {
        loop {
            let Ok(permit) = q.permits.clone().acquire_owned().await else {
                return;
            };
            let meta = loop {
                if self.is_paused(&route) {
                    // Resumed (or new events): look again.
                    q.notify.notified().await;
                    continue;
                }
                let next = q.index().due.first().copied();
                match next {
                    None => q.notify.notified().await,
                    Some((at, id)) => {
                        let now = self.now_ms();
                        if at <= now {
                            let mut idx = q.index();
                            idx.due.remove(&(at, id));
                            if let Some(m) = idx.items.get(&id) {
                                break m.clone();
                            }
                            continue;
                        }
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_millis(at - now)) => {}
                            _ = q.notify.notified() => {}
                        }
                    }
                }
            };
            self.spawn(self.clone().attempt(q.clone(), meta, permit));
        }
    }

    /// One delivery attempt of a stored event.
    async fn attempt(
        self: Arc<Self>,
        q: Arc<RouteQueue>,
        mut meta: Meta,
        _permit: OwnedSemaphorePermit,
    ) {
        let plan = self.plan.load_full();
        let Some(lane) = plan.lane(&meta.route) else {
            meta.last_error = format!("route {} is no longer configured", meta.route);
            self.bury(&q, meta).await;
            return;
        };
        if lane.policy.mode == DeliveryMode::Queue {
            let limit = lane.limit.as_ref();
            let pace =
                limit::check_route(&self.store, &plan.limits, &lane.name, limit, &self.metrics);
            if let Err(limited) = pace.await {
                // The route's rate limit paces queued deliveries: wait for the bucket without
                // counting an attempt (nothing is written; a restart simply tries again).
                meta.next_ms = self.now_ms() + limited.retry_after.saturating_mul(1000);
                q.schedule(meta);
                return;
            }
        }
        let event = match self.store.event(&meta.route, meta.id).await {
            Ok(Some(e)) => e,
            Ok(None) => {
                q.forget(meta.id);
                return;
            }
            Err(e) => {
                self.store_error("event");
                tracing::error!(error = %e, id = meta.id, "cannot read a queued event; will retry");
                meta.next_ms = self.now_ms() + millis(STORE_RETRY);
                q.schedule(meta);
                return;
            }
        };
        meta.attempts += 1;
        let req = match self.request(&plan, &lane, &event, &meta) {
            Ok(r) => r,
            Err(e) => {
                meta.last_error = e;
                self.bury(&q, meta).await;
                return;
            }
        };
        let started = std::time::Instant::now();
        // A span of the trace of the request that brought the event, however much later.
        let parent = event
            .trace
            .as_ref()
            .and_then(|t| telemetry::resumed(&t.traceparent, &t.tracestate));
        let traced = upstream::Traced {
            parent: parent.as_ref(),
            resend_count: meta.attempts.saturating_sub(1),
        };
        let result = upstream::send_observed(
            &self.client,
            &self.metrics,
            &lane.name,
            lane.timeout,
            req,
            traced,
        )
        .await;
        let seen = Seen {
            status: result.as_ref().ok().map(|(r, _)| r.status().as_u16()),
            took: started.elapsed(),
        };
        let outcome = attempt_of(result, self.clock.now_system());
        self.settle_in(&q, &lane, meta, outcome, seen).await;
    }

    /// The request for one attempt: the stored request, to the route's current upstream, with
    /// the per-attempt trusted headers.
    fn request(
        &self,
        plan: &Plan,
        lane: &Lane,
        event: &Event,
        meta: &Meta,
    ) -> Result<Request<Full<Bytes>>, String> {
        let mut req = upstream::from_event(&lane.target, event)
            .map_err(|e| format!("stored path is not usable: {e}"))?;
        let h = req.headers_mut();
        let trusted = &plan.trusted;
        let mode = if meta.deferred { "deferred" } else { "queued" };
        h.insert(trusted.delivery.clone(), HeaderValue::from_static(mode));
        h.insert(trusted.attempt.clone(), HeaderValue::from(meta.attempts));
        if let Some(secret) = &plan.attestation {
            upstream::attest(
                &mut req,
                trusted,
                secret,
                &event.body,
                &event.provider,
                &event.key_id,
                self.clock.now_secs(),
            );
        }
        Ok(req)
    }

    /// Hybrid: the first attempt (made while the sender waited) has ended after the sender got
    /// 202; act on its result as on any attempt's.
    pub async fn settle(self: &Arc<Self>, meta: Meta, outcome: Attempt, seen: Seen) {
        let q = self.queue(&meta.route);
        match self.lane(&meta.route) {
            Some(lane) => self.settle_in(&q, &lane, meta, outcome, seen).await,
            None => {
                let mut meta = meta;
                meta.last_error = format!("route {} is no longer configured", meta.route);
                self.bury(&q, meta).await;
            }
        }
    }

    async fn settle_in(
        &self,
        q: &RouteQueue,
        lane: &Lane,
        mut meta: Meta,
        outcome: Attempt,
        seen: Seen,
    ) {
        let now = self.now_ms();
        let decision = schedule::decide(
            &lane.policy,
            &outcome,
            meta.attempts,
            meta.received_ms,
            now,
            fastrand::f64(),
        );
        let label = match &decision {
            Decision::Done => "delivered",
            Decision::Retry { .. } => "retry",
            Decision::Dead { .. } => "dead_letter",
        };
        if let Some(journal) = self.journal.get() {
            let record = AttemptRecord {
                at: rfc3339(now),
                status: seen.status,
                duration_ms: seen.took.as_micros() as f64 / 1000.0,
                error: (outcome != Attempt::Delivered).then(|| outcome.describe()),
            };
            let state = match &decision {
                Decision::Done => "delivered",
                Decision::Retry { .. } => "pending",
                Decision::Dead { .. } => "dead",
            };
            journal.attempt(meta.id, &meta.route, record, state);
        }
        match decision {
            Decision::Done => {
                if let Err(e) = self.store.ack(&meta.route, meta.id).await {
                    // Still pending in the store: delivered again after a restart. A shared
                    // store is asked again each lease round, and meanwhile keeps it renewed.
                    tracing::error!(error = %e, id = meta.id, "cannot remove a delivered event");
                    self.store_error("ack");
                    if self.store.lease().is_some() {
                        self.unacked().insert(meta.id, meta.route.clone());
                    }
                }
                q.forget(meta.id);
                tracing::info!(
                    target: "hookgate::delivery",
                    route = %meta.route,
                    id = meta.id,
                    attempt = meta.attempts,
                    dedup_key = meta.key.as_deref(),
                    "delivered"
                );
            }
            Decision::Retry { at_ms } => {
                meta.next_ms = at_ms;
                meta.last_error = outcome.describe();
                if let Err(e) = self.store.reschedule(&meta).await {
                    tracing::error!(error = %e, id = meta.id, "cannot save the retry state");
                    self.store_error("reschedule");
                }
                tracing::info!(
                    target: "hookgate::delivery",
                    route = %meta.route,
                    id = meta.id,
                    attempt = meta.attempts,
                    error = %meta.last_error,
                    retry_in_ms = at_ms.saturating_sub(now),
                    "attempt failed; will retry"
                );
                q.schedule(meta);
            }
            Decision::Dead { reason } => {
                meta.last_error = reason;
                self.bury(q, meta).await;
            }
        }
        // Counted once the store and the index reflect it.
        self.metrics
            .delivery_attempts
            .with_label_values(&[&lane.name, label])
            .inc();
    }

    /// Moves an event to the dead letters.
    async fn bury(&self, q: &RouteQueue, meta: Meta) {
        tracing::warn!(
            target: "hookgate::delivery",
            route = %meta.route,
            id = meta.id,
            attempts = meta.attempts,
            error = %meta.last_error,
            dedup_key = meta.key.as_deref(),
            "dead letter"
        );
        match self.store.dead_letter(&meta).await {
            Ok(()) => *self.dead_counts().entry(meta.route.clone()).or_default() += 1,
            Err(e) => {
                tracing::error!(error = %e, id = meta.id, "cannot store a dead letter");
                self.store_error(e.operation("dead_letter"));
            }
        }
        q.forget(meta.id);
    }

    fn store_error(&self, op: &str) {
        self.metrics.store_errors.with_label_values(&[op]).inc();
    }

    /// The dead letters `which` selects.
    pub async fn dead_letters(&self, which: &Selection) -> Result<Vec<Meta>, StoreError> {
        let all = self.store.dead_letters().await?;
        Ok(all.into_iter().filter(|m| which.matches(m)).collect())
    }

    /// Puts dead letters back in the queue, due now, attempts reset; their dedup keys stay.
    pub async fn replay(self: &Arc<Self>, which: &Selection) -> Result<Vec<Meta>, StoreError> {
        let replayed = self.store.replay(which, self.now_ms()).await?;
        for m in &replayed {
            if let Some(j) = self.journal.get() {
                j.state(m.id, &m.route, "pending");
            }
            *self.dead_counts().entry(m.route.clone()).or_default() -= 1;
            self.queue(&m.route).schedule(m.clone());
        }
        Ok(replayed)
    }

    /// Deletes dead letters for good.
    pub async fn drop_dead(&self, which: &Selection) -> Result<Vec<Meta>, StoreError> {
        let dropped = self.store.drop_dead(which).await?;
        for m in &dropped {
            if let Some(j) = self.journal.get() {
                j.state(m.id, &m.route, "dropped");
            }
            *self.dead_counts().entry(m.route.clone()).or_default() -= 1;
        }
        Ok(dropped)
    }

    /// Sets the queue gauges from the index (called before each scrape).
    pub fn refresh_gauges(&self) {
        let now = self.now_ms();
        for (route, q) in self.queues() {
            let idx = q.index();
            let depth = idx.items.len();
            let oldest = idx.items.values().map(|m| m.received_ms).min();
            drop(idx);
            self.metrics
                .queue_depth
                .with_label_values(&[&route])
                .set(i64::try_from(depth).unwrap_or(i64::MAX));
            let age = oldest.map_or(0.0, |t| now.saturating_sub(t) as f64 / 1000.0);
            self.metrics
                .queue_oldest_age
                .with_label_values(&[&route])
                .set(age);
        }
        for (route, n) in self.dead_counts().iter() {
            self.metrics
                .dead_letters
                .with_label_values(&[route])
                .set(*n);
        }
    }
}
