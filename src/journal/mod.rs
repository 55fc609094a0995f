//! The event journal: what happened to each webhook, for the admin API, the console and replays
//! (docs/journal.md).
//!
//! The request path hands each finished request over with [`Journal::record`], which never
//! waits: entries go through a bounded queue to one writer task that applies them in batches.
//! When the queue is full an entry is dropped and counted, never the answer delayed. Refusals
//! are recorded up to `max_refusals_per_second` per route, so a flood of forgeries cannot wash
//! the journal out; the rest are only counted.
//!
//! - `entry.rs`: the event, redaction, ids and times.
//! - `query.rs`: the API's filters.
//! - `ring.rs`: the bounded memory ring that holds the events.

mod entry;
mod query;
mod ring;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

pub use self::entry::{redact, rfc3339, AttemptRecord, Entry, Ids, REDACTED};
pub use self::query::{parse_time, Query};
use self::ring::{Evicted, Ring};
use crate::clock::{millis, Clock};
use crate::metrics::Metrics;

/// Entries waiting for the writer; beyond this they are dropped (and counted).
const QUEUE: usize = 10_000;
/// How often the writer takes what has queued up. It is never woken per entry: a wake-up per
/// request (a cross-thread notification) would cost the request path more than the entry.
const TICK: Duration = Duration::from_millis(20);
/// How often entries past `max_age` are dropped.
const EXPIRE_EVERY: Duration = Duration::from_secs(60);

/// `journal:` as loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub max_events: usize,
    pub max_age: Duration,
    /// `false`: bodies are not kept, so sync events cannot be replayed.
    pub capture_body: bool,
    /// A larger body is kept truncated, marked, and cannot be replayed.
    pub max_body_bytes: usize,
    /// Per route; refusals beyond it are counted, not recorded.
    pub max_refusals_per_second: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_events: 100_000,
            max_age: Duration::from_secs(72 * 3600),
            capture_body: true,
            max_body_bytes: 256 * 1024,
            max_refusals_per_second: 100,
        }
    }
}

enum Op {
    Record(Box<Entry>),
    Attempt {
        queue_id: u64,
        route: String,
        attempt: AttemptRecord,
        state: &'static str,
    },
    State {
        queue_id: u64,
        route: String,
        state: &'static str,
    },
}

/// The journal shared by the request path, the delivery engine and the admin API.
pub struct Journal {
    settings: Settings,
    tx: mpsc::Sender<Op>,
    ring: Arc<Mutex<Ring>>,
    /// Per route: (unix second, refusals recorded in it).
    refusals: Mutex<HashMap<String, (u64, u32)>>,
    ids: Ids,
    metrics: Metrics,
    clock: Arc<dyn Clock>,
}

impl Journal {
    /// A journal with its writer running on the current runtime (none outside one: entries
    /// then wait in the queue until it is full).
    pub fn start(settings: Settings, metrics: Metrics, clock: Arc<dyn Clock>) -> Arc<Self> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let ring = Arc::new(Mutex::new(Ring::new(
            settings.max_events,
            millis(settings.max_age),
        )));
        let journal = Arc::new(Self {
            settings,
            tx,
            ring: ring.clone(),
            refusals: Mutex::default(),
            ids: Ids::new(),
            metrics: metrics.clone(),
            clock: clock.clone(),
        });
        if tokio::runtime::Handle::try_current().is_ok() {
            tokio::spawn(write(rx, ring, metrics, clock));
        }
        journal
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn next_id(&self, ms: u64) -> String {
        self.ids.next(ms)
    }

    /// Whether a refusal on `route` may be recorded now; counted as dropped when not.
    pub fn admit_refusal(&self, route: &str) -> bool {
        let second = self.clock.now_ms() / 1000;
        let mut map = self.refusals.lock().unwrap_or_else(|e| e.into_inner());
        if !map.contains_key(route) && map.len() > 10_000 {
            // Routes are few; unknown paths all count as "none". Stay bounded regardless.
            map.clear();
        }
        let slot = map.entry(route.to_string()).or_insert((second, 0));
        if slot.0 != second {
            *slot = (second, 0);
        }
        if slot.1 >= self.settings.max_refusals_per_second {
            self.dropped("refusal_rate");
            return false;
        }
        slot.1 += 1;
        true
    }

    /// The body as the journal keeps it: shared with the request (no copy), cut at
    /// `max_body_bytes` (then marked).
    pub fn keep_body(&self, body: &Bytes) -> (Option<Bytes>, bool) {
        if !self.settings.capture_body {
            return (None, false);
        }
        let cut = body.len().min(self.settings.max_body_bytes);
        (Some(body.slice(..cut)), cut < body.len())
    }

    /// Hands `e` to the writer; never waits.
    pub fn record(&self, e: Entry) {
        self.send(Op::Record(Box::new(e)));
    }

    /// A queued event's attempt, and the state it left the event in.
    pub fn attempt(&self, queue_id: u64, route: &str, attempt: AttemptRecord, state: &'static str) {
        self.send(Op::Attempt {
            queue_id,
            route: route.to_string(),
            attempt,
            state,
        });
    }

    /// A queued event's new state without an attempt.
    pub fn state(&self, queue_id: u64, route: &str, state: &'static str) {
        self.send(Op::State {
            queue_id,
            route: route.to_string(),
            state,
        });
    }

    fn send(&self, op: Op) {
        if self.tx.try_send(op).is_err() {
            self.dropped("queue_full");
        }
    }

    fn dropped(&self, reason: &str) {
        self.metrics
            .journal_dropped
            .with_label_values(&[reason])
            .inc();
    }

    fn ring(&self) -> MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, id: &str) -> Option<Entry> {
        self.ring().get(id)
    }

    /// Newest first, at most `limit`.
    pub fn list(&self, q: &Query, limit: usize) -> Vec<Entry> {
        self.ring().list(q, limit)
    }

    /// Outcome counts per route since `since_ms`: (route, outcome, count).
    pub fn counts_since(&self, since_ms: u64) -> Vec<(String, String, u64)> {
        self.ring().counts_since(since_ms)
    }

    /// Outcomes per minute over the last `minutes`: (route, outcome, minute, count), minute 0
    /// the oldest.
    pub fn per_minute(&self, minutes: u64) -> Vec<(String, String, u64, u64)> {
        let now = self.clock.now_ms();
        self.ring().per_minute(now, minutes)
    }

    /// Waits until every entry handed over so far is applied (bounded): for tests and replays
    /// that read what they just wrote.
    pub async fn flush(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while self.tx.capacity() < self.tx.max_capacity() && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// The writer: applies what the request path and the engine hand over, in batches.
async fn write(
    mut rx: mpsc::Receiver<Op>,
    ring: Arc<Mutex<Ring>>,
    metrics: Metrics,
    clock: Arc<dyn Clock>,
) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_expiry = tokio::time::Instant::now();
    loop {
        tick.tick().await;
        let mut evicted = Evicted::default();
        let mut r = ring.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            match rx.try_recv() {
                Ok(Op::Record(e)) => evicted.full += r.push(*e).full,
                Ok(Op::Attempt {
                    queue_id,
                    route,
                    attempt,
                    state,
                }) => r.update(queue_id, &route, Some(attempt), state),
                Ok(Op::State {
                    queue_id,
                    route,
                    state,
                }) => r.update(queue_id, &route, None, state),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => return,
            }
        }
        if last_expiry.elapsed() >= EXPIRE_EVERY {
            last_expiry = tokio::time::Instant::now();
            evicted.expired = r.expire(clock.now_ms()).expired;
        }
        account(&metrics, &r, evicted);
    }
}

fn account(metrics: &Metrics, r: &Ring, evicted: Evicted) {
    metrics
        .journal_events
        .set(i64::try_from(r.count()).unwrap_or(i64::MAX));
    if evicted.full > 0 {
        metrics
            .journal_dropped
            .with_label_values(&["max_events"])
            .inc_by(evicted.full);
    }
    if evicted.expired > 0 {
        metrics
            .journal_dropped
            .with_label_values(&["max_age"])
            .inc_by(evicted.expired);
    }
}
