//! The event journal: what happened to each webhook, for the admin API, the console and replays
//! (docs/journal.md).
//!
//! The request path hands each finished request over with [`Journal::record`], which never
//! waits: entries go through a bounded queue to one writer task that applies them in batches.
//! When the queue is full an entry is dropped and counted, never the answer delayed. Refusals
//! are recorded up to `max_refusals_per_second` per route, so a flood of forgeries cannot wash
//! the journal out; the rest are only counted.
//!
//! The events live where the store does (`store.kind`): a bounded ring in memory, the redb
//! file, or Redis for the whole fleet.
//!
//! - `entry.rs`: the event, redaction, ids and times.
//! - `query.rs`: the API's filters.
//! - `ring.rs`: the bounded memory ring; `arena.rs`, where it keeps its events' bytes;
//!   `slots.rs`, its index.
//! - `stored.rs`: the event as redb and Redis keep it, and its later updates.
//! - `redb.rs`, `redis.rs`: the journal in those stores.

mod arena;
mod compact;
mod entry;
mod headers;
mod query;
mod redb;
mod redis;
mod ring;
mod slots;
mod stored;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

pub use self::entry::{rfc3339, AttemptRecord, Entry, Ids};
pub use self::headers::{Headers, REDACTED};
pub use self::query::{parse_time, Query};
use self::redb::RedbJournal;
use self::redis::RedisJournal;
use self::ring::{Evicted, Ring};
use self::stored::Update;
use crate::clock::{millis, Clock};
use crate::metrics::Metrics;
use crate::store::AnyStore;

/// Reading the journal failed (a store that does not answer).
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal: {0}")]
    Backend(String),
}

/// Entries waiting for the writer; beyond this they are dropped (and counted).
const QUEUE: usize = 10_000;
/// How long the writer lets a batch gather after its first entry wakes it. It is never woken
/// per entry: a wake-up per request (a cross-thread notification) would cost the request path
/// more than the entry. The memory ring takes short batches: an entry applied within a
/// millisecond is still in the CPU's caches, one applied 20 ms later (half a megabyte of
/// entries further on) is not, and re-reading it cost more than the rest of the journal
/// (docs/performance.md). redb and Redis pay per batch (a commit, a round trip), so theirs
/// are longer.
const GATHER_MEMORY: Duration = Duration::from_millis(1);
const GATHER_STORE: Duration = Duration::from_millis(20);
/// How often entries past `max_age` are dropped.
const EXPIRE_EVERY: Duration = Duration::from_secs(60);
/// redb: how often the journal's commits are made durable (the others skip the fsync).
const DURABLE_EVERY: Duration = Duration::from_secs(1);
/// A store that keeps failing is logged at most this often.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// `journal:` as loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `false`: nothing is captured or kept (the admin API then lists no events).
    pub enabled: bool,
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
            enabled: true,
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
    Update {
        queue_id: u64,
        route: String,
        attempt: Option<AttemptRecord>,
        state: &'static str,
    },
}

/// Where the events are kept.
#[derive(Clone)]
enum Backend {
    Memory(Arc<Mutex<Ring>>),
    Redb(Arc<RedbJournal>),
    Redis(Arc<RedisJournal>),
}

/// The journal shared by the request path, the delivery engine and the admin API.
pub struct Journal {
    settings: Settings,
    tx: mpsc::Sender<Op>,
    backend: Backend,
    /// Per route: (unix second, refusals recorded in it).
    refusals: Mutex<HashMap<String, (u64, u32)>>,
    ids: Ids,
    metrics: Metrics,
    clock: Arc<dyn Clock>,
    /// Operations handed to the writer, and those it has applied (or failed to): `flush`
    /// waits for the second to reach the first.
    sent: AtomicU64,
    applied: Arc<AtomicU64>,
}

impl Journal {
    /// A journal in `store`, with its writer running on the current runtime (none outside one:
    /// entries then wait in the queue until it is full).
    pub fn start(
        settings: Settings,
        store: &AnyStore,
        metrics: Metrics,
        clock: Arc<dyn Clock>,
    ) -> Arc<Self> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let max_age_ms = millis(settings.max_age);
        let backend = match store {
            AnyStore::Redb(s) => Backend::Redb(Arc::new(RedbJournal::new(
                s.database(),
                settings.max_events,
                max_age_ms,
            ))),
            AnyStore::Redis(s) => Backend::Redis(Arc::new(RedisJournal::new(
                s.connection(),
                &s.journal_keys(),
                settings.max_events,
                max_age_ms,
            ))),
            _ => Backend::Memory(Arc::new(Mutex::new(Ring::new(
                settings.max_events,
                max_age_ms,
            )))),
        };
        let journal = Arc::new(Self {
            settings,
            tx,
            backend: backend.clone(),
            refusals: Mutex::default(),
            ids: Ids::new(),
            metrics: metrics.clone(),
            clock: clock.clone(),
            sent: AtomicU64::new(0),
            applied: Arc::new(AtomicU64::new(0)),
        });
        if tokio::runtime::Handle::try_current().is_ok() {
            let applied = journal.applied.clone();
            tokio::spawn(write(rx, backend, metrics, clock, applied));
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

    /// The body as the journal keeps it: cut at `max_body_bytes` (then marked), and copied,
    /// since the request's own bytes may share the connection's whole read buffer.
    pub fn keep_body(&self, body: &Bytes) -> (Option<Bytes>, bool) {
        if !self.settings.capture_body {
            return (None, false);
        }
        let cut = body.len().min(self.settings.max_body_bytes);
        (Some(Bytes::copy_from_slice(&body[..cut])), cut < body.len())
    }

    /// Hands `e` to the writer; never waits.
    pub fn record(&self, e: Entry) {
        self.send(Op::Record(Box::new(e)));
    }

    /// A queued event's attempt, and the state it left the event in.
    pub fn attempt(&self, queue_id: u64, route: &str, attempt: AttemptRecord, state: &'static str) {
        self.send(Op::Update {
            queue_id,
            route: route.to_string(),
            attempt: Some(attempt),
            state,
        });
    }

    /// A queued event's new state without an attempt.
    pub fn state(&self, queue_id: u64, route: &str, state: &'static str) {
        self.send(Op::Update {
            queue_id,
            route: route.to_string(),
            attempt: None,
            state,
        });
    }

    fn send(&self, op: Op) {
        match self.tx.try_send(op) {
            Ok(()) => {
                self.sent.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => self.dropped("queue_full"),
        }
    }

    fn dropped(&self, reason: &str) {
        self.metrics
            .journal_dropped
            .with_label_values(&[reason])
            .inc();
    }

    pub async fn get(&self, id: &str) -> Result<Option<Entry>, JournalError> {
        match &self.backend {
            Backend::Memory(ring) => Ok(lock(ring).get(id)),
            Backend::Redb(j) => {
                let (j, id) = (j.clone(), id.to_string());
                blocking(move || j.get(&id)).await
            }
            Backend::Redis(j) => j.get(id).await,
        }
    }

    /// Newest first, at most `limit`.
    pub async fn list(&self, q: &Query, limit: usize) -> Result<Vec<Entry>, JournalError> {
        match &self.backend {
            Backend::Memory(ring) => Ok(lock(ring).list(q, limit)),
            Backend::Redb(j) => {
                let (j, q) = (j.clone(), q.clone());
                blocking(move || j.list(&q, limit)).await
            }
            Backend::Redis(j) => j.list(q, limit).await,
        }
    }

    /// Outcome counts per route since `since_ms`: (route, outcome, count). redb and Redis
    /// count whole minutes.
    pub async fn counts_since(
        &self,
        since_ms: u64,
    ) -> Result<Vec<(String, String, u64)>, JournalError> {
        if let Backend::Memory(ring) = &self.backend {
            return Ok(lock(ring).counts_since(since_ms));
        }
        let mut counts: std::collections::BTreeMap<(String, String), u64> = Default::default();
        for (r, o, _, n) in self.minutes(since_ms / 60_000).await? {
            *counts.entry((r, o)).or_default() += n;
        }
        Ok(counts.into_iter().map(|((r, o), n)| (r, o, n)).collect())
    }

    /// Outcomes per minute over the last `minutes`: (route, outcome, minute, count), minute 0
    /// the oldest.
    pub async fn per_minute(
        &self,
        minutes: u64,
    ) -> Result<Vec<(String, String, u64, u64)>, JournalError> {
        let now = self.clock.now_ms();
        if let Backend::Memory(ring) = &self.backend {
            return Ok(lock(ring).per_minute(now, minutes));
        }
        let first = (now / 60_000 + 1).saturating_sub(minutes);
        let mut out = self.minutes(first).await?;
        for row in &mut out {
            row.2 -= first;
        }
        Ok(out)
    }

    /// redb and Redis: counts by (route, outcome, unix minute) from `first` to now.
    async fn minutes(&self, first: u64) -> Result<Vec<(String, String, u64, u64)>, JournalError> {
        let last = self.clock.now_ms() / 60_000;
        let rows = match &self.backend {
            Backend::Memory(_) => Vec::new(),
            Backend::Redb(j) => {
                let j = j.clone();
                blocking(move || j.minutes(first)).await?
            }
            Backend::Redis(j) => j.minutes(first, last.max(first)).await?,
        };
        Ok(rows
            .into_iter()
            .filter(|r| (first..=last).contains(&r.2))
            .collect())
    }

    /// At shutdown: waits (bounded) until what was handed over is written, and makes a redb
    /// journal durable (its batches skip the fsync).
    pub async fn close(&self) {
        self.flush().await;
        if let Backend::Redb(j) = &self.backend {
            let (j, now) = (j.clone(), self.clock.now_ms());
            if let Err(e) = blocking(move || j.write(&[], &[], now, false, true)).await {
                tracing::warn!(error = %e, "journal: the last events may not be on disk");
            }
        }
    }

    /// Waits until every entry handed over so far is applied (bounded): for tests and replays
    /// that read what they just wrote.
    pub async fn flush(&self) {
        let target = self.sent.load(Ordering::Relaxed);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while self.applied.load(Ordering::Relaxed) < target
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

fn lock(ring: &Mutex<Ring>) -> MutexGuard<'_, Ring> {
    ring.lock().unwrap_or_else(|e| e.into_inner())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, JournalError> + Send + 'static,
) -> Result<T, JournalError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| JournalError::Backend(e.to_string()))?
}

/// The writer: applies what the request path and the engine hand over, in batches. Idle, it
/// sleeps until an entry arrives or timed work is due (expiry, redb's durable commit).
async fn write(
    mut rx: mpsc::Receiver<Op>,
    backend: Backend,
    metrics: Metrics,
    clock: Arc<dyn Clock>,
    applied: Arc<AtomicU64>,
) {
    use tokio::time::{sleep, sleep_until, Instant};
    let gather = match backend {
        Backend::Memory(_) => GATHER_MEMORY,
        _ => GATHER_STORE,
    };
    let mut next_expiry = Instant::now() + EXPIRE_EVERY;
    let mut last_durable = Instant::now();
    let mut unsynced = false;
    let mut last_warning: Option<Instant> = None;
    let mut ops: Vec<Op> = Vec::new();
    let mut open = true;
    while open {
        let due = if unsynced {
            next_expiry.min(last_durable + DURABLE_EVERY)
        } else {
            next_expiry
        };
        let first = tokio::select! {
            op = rx.recv() => op,
            () = sleep_until(due) => None,
        };
        if let Some(op) = first {
            ops.push(op);
            sleep(gather).await;
        }
        while ops.len() < QUEUE {
            match rx.try_recv() {
                Ok(op) => ops.push(op),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        let now = clock.now_ms();
        let woke = Instant::now();
        let expire = woke >= next_expiry;
        if expire {
            next_expiry = woke + EXPIRE_EVERY;
        }
        let taken = ops.len() as u64;
        let idle = taken == 0;
        let result = match &backend {
            Backend::Memory(ring) => {
                let mut r = lock(ring);
                let mut evicted = Evicted::default();
                for op in ops.drain(..) {
                    match op {
                        Op::Record(e) => {
                            let out = r.push(e);
                            evicted.full += out.full;
                            evicted.failed += out.failed;
                        }
                        Op::Update {
                            queue_id,
                            route,
                            attempt,
                            state,
                        } => r.update(queue_id, &route, attempt, state),
                    }
                }
                if expire {
                    evicted.expired = r.expire(now).expired;
                }
                Ok((evicted, r.count() as u64))
            }
            // Redis has nothing timed but expiry; redb also its durable commit.
            _ if idle && !expire && !(unsynced && last_durable.elapsed() >= DURABLE_EVERY) => {
                continue;
            }
            Backend::Redb(j) => {
                let durable = last_durable.elapsed() >= DURABLE_EVERY;
                if durable {
                    last_durable = Instant::now();
                }
                unsynced = !durable;
                let j = j.clone();
                let (records, updates) = split(std::mem::take(&mut ops));
                blocking(move || j.write(&records, &updates, now, expire, durable)).await
            }
            Backend::Redis(j) => {
                let (records, updates) = split(std::mem::take(&mut ops));
                j.write(&records, &updates, now).await
            }
        };
        applied.fetch_add(taken, Ordering::Relaxed);
        match result {
            Ok((evicted, count)) => account(&metrics, count, evicted),
            Err(e) => {
                metrics.journal_dropped.with_label_values(&["store"]).inc();
                if last_warning.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
                    last_warning = Some(Instant::now());
                    tracing::warn!(error = %e, "journal write failed; those events are not recorded (counted in hookgate_journal_dropped_total{{reason=\"store\"}})");
                }
            }
        }
    }
}

/// A batch as redb and Redis take it: the new events, and the updates keyed by their event's
/// queue link.
fn split(ops: Vec<Op>) -> (Vec<Entry>, Vec<(String, Update)>) {
    let mut records = Vec::new();
    let mut updates = Vec::new();
    for op in ops {
        match op {
            Op::Record(e) => records.push(*e),
            Op::Update {
                queue_id,
                route,
                attempt,
                state,
            } => updates.push((
                stored::link(&route, queue_id),
                Update {
                    state: state.to_string(),
                    attempt,
                },
            )),
        }
    }
    (records, updates)
}

fn account(metrics: &Metrics, count: u64, evicted: Evicted) {
    metrics
        .journal_events
        .set(i64::try_from(count).unwrap_or(i64::MAX));
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
    if evicted.failed > 0 {
        metrics
            .journal_dropped
            .with_label_values(&["store"])
            .inc_by(evicted.failed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    /// A wall clock the test sets.
    struct Manual(AtomicU64);

    impl Clock for Manual {
        fn now_ms(&self) -> u64 {
            self.0.load(Ordering::Relaxed)
        }
    }

    /// The writer sleeps between batches; expiry must still come due while nothing arrives.
    /// Tokio's paused clock jumps to each timer, so no test time passes.
    #[tokio::test(start_paused = true)]
    async fn an_idle_writer_still_expires_old_events() {
        let start = 1_700_000_000_000;
        let clock = Arc::new(Manual(AtomicU64::new(start)));
        let settings = Settings {
            max_age: Duration::from_secs(10),
            ..Settings::default()
        };
        let store = AnyStore::Memory(Arc::new(MemoryStore::new()));
        let journal = Journal::start(settings, &store, Metrics::new(), clock.clone());
        journal.record(ring::tests::entry("a", start));
        journal.flush().await;
        let all = Query::default();
        assert_eq!(journal.list(&all, 10).await.unwrap().len(), 1);

        clock.0.store(start + 20_000, Ordering::Relaxed);
        tokio::time::sleep(EXPIRE_EVERY + Duration::from_secs(1)).await;
        assert!(journal.list(&all, 10).await.unwrap().is_empty());
    }
}
