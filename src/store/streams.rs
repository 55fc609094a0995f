//! The spool on Redis Streams (`store.kind: redis`), shared by every replica.
//!
//! Keys of one queue, under `p` ([`Keys::queue`]): the store prefix on one server or
//! Sentinel, where one queue holds every route's events (the layout of earlier versions); the
//! route's tag `{<prefix>route:<name>}` on a Cluster, where each route has a queue of its own
//! in the slot of its dedup keys and limit (every script's keys, those it finds as it runs
//! included, share that slot):
//! - `{p}queue`: a stream with one entry (`id <n>`) per pending event, read by the consumer
//!   group `hookgate` (named in the scripts). Every entry sits in the pending entries list
//!   (PEL) of the replica that owns it: the one that accepted, replayed or adopted it.
//! - `{p}event:<id>`: a hash per event: `event` and `meta` (the binary records of
//!   `record.rs`), `sid` (its queue entry) while pending, `dsid` (its dead-letter entry) once
//!   dead.
//! - `{p}dead`: a stream of dead letters; `{p}dead:count`: how many per route (the gauge).
//! - `{p}alive:<consumer>`: a replica's heartbeat, set for `store.lease` every third of it.
//!
//! Event ids come from one counter ([`Keys::seq`]), so they are unique across routes and the
//! store can address an event by its route and id. It starts from Redis's clock (ms × 1000),
//! so ids issued after a Redis that lost its data restarts never repeat ones replicas still
//! remember. On one server the enqueue script increments it; on a Cluster it lives in a slot
//! of its own and is incremented just before (with its own `WAIT`), and the route is added
//! once per process to [`Keys::routes`], the set the fleet-wide operations (lease rounds,
//! listings, replays) walk.
//!
//! Every operation on a queue is one Lua script, atomic on the server (`lua/*.lua`, built
//! in). Scripts that write the queue create it and its group when the stream is missing
//! (first use, or a Redis that lost its data). Accepting an event adds its entry, reads it
//! into this replica's PEL and marks its dedup key in the same script, so no other replica
//! ever sees it unowned.
//!
//! Liveness is per replica, not per entry: renewing each entry's idle time (so that
//! `XAUTOCLAIM` by idle time finds only the dead's) would cost Redis work in proportion to the
//! backlog every round, just when a backend is down and the backlog is large. A replica whose
//! heartbeat expired is dead: the first replica to notice claims its entries (`XPENDING` by
//! consumer, then `XCLAIM`), at most [`ADOPT_BUDGET`] per round over every queue. A replica
//! also looks through its own PELs, a slice per round, for entries older than the lease that
//! it does not know (an accepted event whose answer from Redis was lost), and adopts them too.
//! A replica whose own heartbeat had lapsed checks which of its events are still its own, and
//! an attempt starts only after checking ownership (`event`), so an event whose owner changed
//! is not attempted by both. Delivery is at least once: an owner that lost Redis for longer
//! than the lease mid-attempt can still deliver an event its adopter delivers too (the
//! `X-Webhook-Id` header lets the backend tell).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use redis::Script;

use super::connection::Connection;
use super::keys::Keys;
use super::replication::{self, Write};
use super::settings::Replicas;
use super::{Event, Leases, Meta, StoreError};

/// Where a scan of this replica's own PEL starts (again).
const FIRST: &str = "-";
/// Entries or ids per script call (ownership checks, listings, replays, drops): bounds the
/// time Redis spends in one script, and the size of one answer.
const BATCH: usize = 500;
/// Entries a replica claims from dead replicas per round, over every queue, leaving the rest
/// to the next round or to other replicas.
const ADOPT_BUDGET: usize = 1000;
/// Entries of its own PELs a replica looks through per round, over every queue.
const SCAN_COUNT: usize = 500;
/// Heartbeat values: set by a lease round, or (re)created by a write that found it missing.
/// A round that finds anything but its own value checks which events it still owns.
const BEAT: &str = "1";

/// KEYS: queue, heartbeat, [dedup key], [seq]. ARGV: consumer, event key prefix, event, meta,
/// dedup expiry (unix ms, or empty: no dedup key), lease ms, id (or empty: taken from seq).
/// Returns the id.
const ENQUEUE: &str = include_str!("lua/enqueue.lua");

/// KEYS: seq. The next event id, for an enqueue whose queue is in another slot.
const SEQ: &str = include_str!("lua/seq.lua");

/// KEYS: queue. ARGV: consumer, event key prefix, ids. The ids this consumer does not own
/// (taken over, delivered, dead or gone).
const CHECK: &str = include_str!("lua/check.lua");

/// KEYS: queue. ARGV: consumer, heartbeat key prefix, event key prefix, budget. Claims the
/// entries of consumers whose heartbeat expired (at most `budget`) and returns the budget left
/// and `{id, meta}` of each; entries whose event is gone are removed. Dead consumers that own
/// nothing are removed from the group (a restarted replica is a new consumer).
const ADOPT: &str = include_str!("lua/adopt.lua");

/// KEYS: queue. ARGV: consumer, min idle ms, start, count, event key prefix. A slice of this
/// consumer's PEL: the next start (`-` once the end was reached), the event ids of entries
/// idle longer than the lease, and how many entries it looked at. Entries whose event is gone
/// are removed.
const SCAN: &str = include_str!("lua/scan.lua");

/// KEYS: queue (only to say which node of a Cluster runs it). ARGV: event key prefix, ids.
/// `{id, meta}` of those still pending.
const METAS: &str = include_str!("lua/metas.lua");

/// KEYS: queue, event hash. ARGV: consumer. The event, if it is pending and this consumer's.
const EVENT: &str = include_str!("lua/event.lua");

/// KEYS: queue, event hash. Delivered: the entry and the event go.
const ACK: &str = include_str!("lua/ack.lua");

/// KEYS: queue, event hash, [dedup key]. An accepted event too few replicas confirmed: the
/// entry, the event and the dedup mark go.
const WITHDRAW: &str = include_str!("lua/withdraw.lua");

/// KEYS: queue, event hash. ARGV: meta, consumer. Only while the event is pending and this
/// consumer's: a replica that lost it to an adopter must not rewrite the adopter's schedule.
const RESCHEDULE: &str = include_str!("lua/reschedule.lua");

/// KEYS: queue, event hash, dead, dead count. ARGV: meta, id, route, consumer. Only this
/// consumer's events: an adopter may be delivering it.
const BURY: &str = include_str!("lua/bury.lua");

/// KEYS: a stream (queue or dead). ARGV: event key prefix, start, count. One page: where the
/// next starts (empty after the last) and `{id, meta}` of each entry, oldest first.
const LIST: &str = include_str!("lua/list.lua");

/// KEYS: queue, dead, dead count, heartbeat. ARGV: consumer, event key prefix, lease ms, then
/// `id, route, meta` per dead letter. Moves each one still dead back into the queue, owned by
/// this consumer.
const REPLAY: &str = include_str!("lua/replay.lua");

/// KEYS: dead, dead count. ARGV: event key prefix, then `id, route` per dead letter.
const DROP: &str = include_str!("lua/drop.lua");

/// The keys of one queue, all starting with its prefix ([`Keys::queue`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Area(String);

impl Area {
    fn queue(&self) -> String {
        format!("{}queue", self.0)
    }
    fn dead(&self) -> String {
        format!("{}dead", self.0)
    }
    fn dead_count(&self) -> String {
        format!("{}dead:count", self.0)
    }
    /// What every replica's heartbeat key in this queue starts with.
    fn alive(&self) -> String {
        format!("{}alive:", self.0)
    }
    fn heartbeat(&self, consumer: &str) -> String {
        format!("{}alive:{consumer}", self.0)
    }
    fn events(&self) -> String {
        format!("{}event:", self.0)
    }
    fn event(&self, id: u64) -> String {
        format!("{}event:{id}", self.0)
    }
}

/// The queues' keys, scripts and this process's consumer name.
pub struct Streams {
    keys: Keys,
    consumer: String,
    lease: Duration,
    replicas: Replicas,
    /// Routes this process has added to [`Keys::routes`]: once each is enough.
    listed: Mutex<HashSet<String>>,
    /// Which queue, and where in it, the next slice of this replica's own PELs starts.
    cursor: Mutex<(String, String)>,
    /// Which events are still this replica's must be checked (its heartbeat lapsed, or a check
    /// failed part-way): cleared only once a check has gone through whole.
    recheck: AtomicBool,
    enqueue: Script,
    seq: Script,
    check: Script,
    adopt: Script,
    scan: Script,
    metas: Script,
    event: Script,
    ack: Script,
    withdraw: Script,
    reschedule: Script,
    bury: Script,
    list: Script,
    replay: Script,
    drop: Script,
}

fn backend(e: redis::RedisError) -> StoreError {
    StoreError::Backend(format!("redis: {e}"))
}

fn id_of(s: &str) -> Result<u64, StoreError> {
    s.parse()
        .map_err(|_| StoreError::Backend(format!("redis: `{s}` is not an event id")))
}

/// A stored meta; its id is the one the keys say (the record's own is written before the id
/// is known).
fn meta_of(id: &str, bytes: &[u8]) -> Result<Meta, StoreError> {
    let mut meta = Meta::decode(bytes)?;
    meta.id = id_of(id)?;
    Ok(meta)
}

/// Those of `chosen` whose id a script reported as done.
fn kept(chosen: Vec<Meta>, done: &HashSet<u64>) -> Vec<Meta> {
    chosen
        .into_iter()
        .filter(|m| done.contains(&m.id))
        .collect()
}

/// Adds the `{id, meta}` rows read from Redis to `out`. A row that cannot be read (say, a
/// record format this version does not know) is left in Redis and logged: it must not hold
/// back the events next to it.
fn read_rows(rows: &[(String, Vec<u8>)], out: &mut Vec<Meta>) {
    for (id, m) in rows {
        match meta_of(id, m) {
            Ok(meta) => out.push(meta),
            Err(e) => tracing::warn!(
                target: "hookgate::delivery",
                id = %id,
                error = %e,
                "a queued event's delivery state cannot be read; it stays in Redis"
            ),
        }
    }
}

/// Unique per process, so a restarted replica is a new consumer and never mistakes its
/// predecessor's entries for its own.
fn consumer_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into());
    format!("{host}:{}:{:08x}", std::process::id(), fastrand::u32(..))
}

/// `items` grouped by the queue each belongs to, in a stable order.
fn by_area<T>(
    items: impl IntoIterator<Item = T>,
    area: impl Fn(&T) -> Area,
) -> BTreeMap<Area, Vec<T>> {
    let mut groups: BTreeMap<Area, Vec<T>> = BTreeMap::new();
    for item in items {
        groups.entry(area(&item)).or_default().push(item);
    }
    groups
}

impl Streams {
    pub fn new(keys: Keys, lease: Duration, replicas: Replicas) -> Self {
        Self {
            keys,
            consumer: consumer_name(),
            lease,
            replicas,
            listed: Mutex::default(),
            cursor: Mutex::new((String::new(), FIRST.to_string())),
            recheck: AtomicBool::new(true),
            enqueue: Script::new(ENQUEUE),
            seq: Script::new(SEQ),
            check: Script::new(CHECK),
            adopt: Script::new(ADOPT),
            scan: Script::new(SCAN),
            metas: Script::new(METAS),
            event: Script::new(EVENT),
            ack: Script::new(ACK),
            withdraw: Script::new(WITHDRAW),
            reschedule: Script::new(RESCHEDULE),
            bury: Script::new(BURY),
            list: Script::new(LIST),
            replay: Script::new(REPLAY),
            drop: Script::new(DROP),
        }
    }

    pub fn lease(&self) -> Duration {
        self.lease
    }

    fn lease_ms(&self) -> u64 {
        u64::try_from(self.lease.as_millis()).unwrap_or(u64::MAX)
    }

    fn cursor(&self) -> std::sync::MutexGuard<'_, (String, String)> {
        self.cursor.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn listed(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.listed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// This process's name in the consumer group.
    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    /// The queue holding `route`'s events.
    fn area(&self, route: &str) -> Area {
        Area(self.keys.queue(route))
    }

    /// Every queue, sorted: the only one on one server; on a Cluster, one per route that ever
    /// had one (those this process listed included, should the set have lost them).
    async fn areas(&self, conn: &mut Connection) -> Result<Vec<Area>, StoreError> {
        let Some(set) = self.keys.routes() else {
            return Ok(vec![self.area("")]);
        };
        let mut routes: HashSet<String> = redis::cmd("SMEMBERS")
            .arg(set)
            .query_async(conn)
            .await
            .map_err(backend)?;
        routes.extend(self.listed().iter().cloned());
        let mut areas: Vec<Area> = routes.iter().map(|r| self.area(r)).collect();
        areas.sort();
        areas.dedup();
        Ok(areas)
    }

    /// Cluster: adds `route` to the set of routes with a queue (once per process), before its
    /// first event is stored, so that the fleet finds the queue even if this process dies.
    async fn list_route(
        &self,
        conn: &mut Connection,
        set: String,
        route: &str,
    ) -> Result<(), StoreError> {
        if self.listed().contains(route) {
            return Ok(());
        }
        let mut add = redis::cmd("SADD");
        add.arg(set).arg(route);
        let written: replication::Written<u8> =
            replication::write(conn, &Write::Command(add), self.replicas).await?;
        written.replicated?;
        self.listed().insert(route.to_string());
        Ok(())
    }

    /// Cluster: the next event id, from the counter in its own slot. Confirmed by the replicas
    /// like the event: a counter a failover rolled back would issue an id again.
    async fn next_id(&self, conn: &mut Connection) -> Result<u64, StoreError> {
        let mut call = Write::script(&self.seq);
        call.key(self.keys.seq());
        let written = replication::write::<u64>(conn, &call, self.replicas).await?;
        written.replicated?;
        Ok(written.value)
    }

    /// Shutting down: the heartbeats go, so the other replicas adopt this one's events at
    /// their next round instead of after the lease. Returns how many events it held.
    pub async fn hand_back(
        &self,
        conn: &mut Connection,
        owns: &[(String, u64)],
    ) -> Result<usize, StoreError> {
        for area in self.areas(conn).await? {
            redis::cmd("DEL")
                .arg(area.heartbeat(&self.consumer))
                .query_async::<u8>(conn)
                .await
                .map_err(backend)?;
        }
        Ok(owns.len())
    }

    /// Stores the event, owned by this process; `dedup` is the key to mark delivered until
    /// the given unix ms, in the same script. Also says whether enough replicas confirmed it.
    pub async fn enqueue(
        &self,
        conn: &mut Connection,
        event: &Event,
        mut meta: Meta,
        dedup: Option<(String, u64)>,
    ) -> Result<(Meta, Result<(), StoreError>), StoreError> {
        let area = self.area(&meta.route);
        let mut call = Write::script(&self.enqueue);
        call.key(area.queue()).key(area.heartbeat(&self.consumer));
        let expiry = match dedup {
            Some((key, expires_ms)) => {
                call.key(key);
                expires_ms.max(1).to_string()
            }
            None => String::new(),
        };
        let id = match self.keys.routes() {
            Some(set) => {
                self.list_route(conn, set, &meta.route).await?;
                self.next_id(conn).await?.to_string()
            }
            None => {
                call.key(self.keys.seq());
                String::new()
            }
        };
        call.arg(&self.consumer)
            .arg(area.events())
            .arg(event.encode())
            .arg(meta.encode())
            .arg(expiry)
            .arg(self.lease_ms())
            .arg(id);
        let written = replication::write::<String>(conn, &call, self.replicas).await?;
        meta.id = id_of(&written.value)?;
        Ok((meta, written.replicated))
    }

    /// Takes back an event `enqueue` stored but too few replicas confirmed, and its dedup
    /// mark.
    pub async fn withdraw(
        &self,
        conn: &mut Connection,
        meta: &Meta,
        dedup: Option<String>,
    ) -> Result<(), StoreError> {
        let area = self.area(&meta.route);
        let mut call = self.withdraw.key(area.queue());
        call.key(area.event(meta.id));
        if let Some(k) = dedup {
            call.key(k);
        }
        call.invoke_async::<u8>(conn)
            .await
            .map(drop)
            .map_err(backend)
    }

    pub async fn event(
        &self,
        conn: &mut Connection,
        route: &str,
        id: u64,
    ) -> Result<Option<Event>, StoreError> {
        let area = self.area(route);
        let bytes: Option<Vec<u8>> = self
            .event
            .key(area.queue())
            .key(area.event(id))
            .arg(&self.consumer)
            .invoke_async(conn)
            .await
            .map_err(backend)?;
        Ok(bytes.map(|b| Event::decode(&b)).transpose()?)
    }

    pub async fn ack(&self, conn: &mut Connection, route: &str, id: u64) -> Result<(), StoreError> {
        let area = self.area(route);
        self.ack
            .key(area.queue())
            .key(area.event(id))
            .invoke_async::<u8>(conn)
            .await
            .map(drop)
            .map_err(backend)
    }

    pub async fn reschedule(&self, conn: &mut Connection, meta: &Meta) -> Result<(), StoreError> {
        let area = self.area(&meta.route);
        self.reschedule
            .key(area.queue())
            .key(area.event(meta.id))
            .arg(meta.encode())
            .arg(&self.consumer)
            .invoke_async::<u8>(conn)
            .await
            .map(drop)
            .map_err(backend)
    }

    /// Buries the event, confirmed by the replicas: one they did not confirm stays a dead
    /// letter on the primary, and pending (so retried) on a replica promoted meanwhile.
    pub async fn dead_letter(&self, conn: &mut Connection, meta: &Meta) -> Result<(), StoreError> {
        let area = self.area(&meta.route);
        let mut call = Write::script(&self.bury);
        call.key(area.queue())
            .key(area.event(meta.id))
            .key(area.dead())
            .key(area.dead_count())
            .arg(meta.encode())
            .arg(meta.id)
            .arg(&meta.route)
            .arg(&self.consumer);
        let written = replication::write::<u8>(conn, &call, self.replicas).await?;
        written.replicated
    }

    /// Every entry of `stream` (a queue's or its dead letters'), a page per script call.
    async fn list(
        &self,
        conn: &mut Connection,
        stream: String,
        events: String,
        all: &mut Vec<Meta>,
    ) -> Result<(), StoreError> {
        let mut start = FIRST.to_string();
        loop {
            let (next, rows): (String, Vec<(String, Vec<u8>)>) = self
                .list
                .key(&stream)
                .arg(&events)
                .arg(&start)
                .arg(BATCH)
                .invoke_async(conn)
                .await
                .map_err(backend)?;
            read_rows(&rows, all);
            if next.is_empty() {
                return Ok(());
            }
            start = next;
        }
    }

    /// Every pending event of the fleet, queue by queue.
    pub async fn pending(&self, conn: &mut Connection) -> Result<Vec<Meta>, StoreError> {
        let mut all = Vec::new();
        for area in self.areas(conn).await? {
            self.list(conn, area.queue(), area.events(), &mut all)
                .await?;
        }
        Ok(all)
    }

    /// Every dead letter of the fleet, queue by queue, oldest first in each.
    pub async fn dead_letters(&self, conn: &mut Connection) -> Result<Vec<Meta>, StoreError> {
        let mut all = Vec::new();
        for area in self.areas(conn).await? {
            self.list(conn, area.dead(), area.events(), &mut all)
                .await?;
        }
        Ok(all)
    }

    /// Moves these dead letters (as read, with the state they resume with) back into their
    /// queues, owned by this process; returns those that were still dead.
    pub async fn replay(
        &self,
        conn: &mut Connection,
        chosen: Vec<Meta>,
    ) -> Result<Vec<Meta>, StoreError> {
        let mut moved = HashSet::new();
        for (area, metas) in by_area(&chosen, |m| self.area(&m.route)) {
            for batch in metas.chunks(BATCH) {
                let mut call = self.replay.key(area.queue());
                call.key(area.dead())
                    .key(area.dead_count())
                    .key(area.heartbeat(&self.consumer))
                    .arg(&self.consumer)
                    .arg(area.events())
                    .arg(self.lease_ms());
                for m in batch {
                    call.arg(m.id).arg(&m.route).arg(m.encode());
                }
                let ids: Vec<String> = call.invoke_async(conn).await.map_err(backend)?;
                for s in &ids {
                    moved.insert(id_of(s)?);
                }
            }
        }
        Ok(kept(chosen, &moved))
    }

    /// Deletes these dead letters; returns those that were still there.
    pub async fn drop_dead(
        &self,
        conn: &mut Connection,
        chosen: Vec<Meta>,
    ) -> Result<Vec<Meta>, StoreError> {
        let mut gone = HashSet::new();
        for (area, metas) in by_area(&chosen, |m| self.area(&m.route)) {
            for batch in metas.chunks(BATCH) {
                let mut call = self.drop.key(area.dead());
                call.key(area.dead_count()).arg(area.events());
                for m in batch {
                    call.arg(m.id).arg(&m.route);
                }
                let ids: Vec<String> = call.invoke_async(conn).await.map_err(backend)?;
                for s in &ids {
                    gone.insert(id_of(s)?);
                }
            }
        }
        Ok(kept(chosen, &gone))
    }

    /// One lease round: beat the heartbeats (and, if one had lapsed, find which of the events
    /// this process `owns`, as `(route, id)`, are no longer its own), adopt the events of dead
    /// replicas and the unknown ones in this replica's own PELs, and read the fleet's
    /// dead-letter counts.
    pub async fn renew(
        &self,
        conn: &mut Connection,
        owns: &[(String, u64)],
    ) -> Result<Leases, StoreError> {
        let mut leases = Leases::default();
        let areas = self.areas(conn).await?;
        for area in &areas {
            let before: Option<String> = redis::cmd("SET")
                .arg(area.heartbeat(&self.consumer))
                .arg(BEAT)
                .arg("PX")
                .arg(self.lease_ms())
                .arg("GET")
                .query_async(conn)
                .await
                .map_err(backend)?;
            if before.as_deref() != Some(BEAT) {
                // First round, or the heartbeat lapsed (Redis was out of reach for a lease, or
                // lost its data): others may have adopted some of these.
                self.recheck.store(true, Ordering::SeqCst);
            }
        }
        if self.recheck.load(Ordering::SeqCst) {
            for (area, held) in by_area(owns, |(route, _)| self.area(route)) {
                for batch in held.chunks(BATCH) {
                    let mut call = self.check.key(area.queue());
                    call.arg(&self.consumer).arg(area.events());
                    for (_, id) in batch {
                        call.arg(id);
                    }
                    let lost: Vec<String> = call.invoke_async(conn).await.map_err(backend)?;
                    for s in &lost {
                        leases.lost.push(id_of(s)?);
                    }
                }
            }
            self.recheck.store(false, Ordering::SeqCst);
        }
        let mut budget = ADOPT_BUDGET;
        for area in &areas {
            if budget == 0 {
                break;
            }
            let (left, rows): (usize, Vec<(String, Vec<u8>)>) = self
                .adopt
                .key(area.queue())
                .arg(&self.consumer)
                .arg(area.alive())
                .arg(area.events())
                .arg(budget)
                .invoke_async(conn)
                .await
                .map_err(backend)?;
            budget = left.min(budget);
            read_rows(&rows, &mut leases.adopted);
        }
        self.scan_own(conn, &areas, owns, &mut leases).await?;
        for area in &areas {
            let counts: HashMap<String, i64> = redis::cmd("HGETALL")
                .arg(area.dead_count())
                .query_async(conn)
                .await
                .map_err(backend)?;
            for (route, n) in counts {
                if n > 0 {
                    *leases.dead.entry(route).or_default() += n;
                }
            }
        }
        Ok(leases)
    }

    /// Looks through the next slice of this replica's own PELs for entries idle longer than
    /// the lease that it does not know: an event whose enqueue ran in Redis but whose answer
    /// was lost (the sender got 503, and its retry is a duplicate) must still be delivered.
    /// The slice goes on into the next queue when one ends, [`SCAN_COUNT`] entries in all.
    async fn scan_own(
        &self,
        conn: &mut Connection,
        areas: &[Area],
        owns: &[(String, u64)],
        leases: &mut Leases,
    ) -> Result<(), StoreError> {
        if areas.is_empty() {
            return Ok(());
        }
        let (mut at, mut start) = {
            let cursor = self.cursor();
            match areas.iter().position(|a| a.0 == cursor.0) {
                Some(i) => (i, cursor.1.clone()),
                None => (0, FIRST.to_string()),
            }
        };
        let known: HashSet<u64> = owns
            .iter()
            .map(|(_, id)| *id)
            .chain(leases.lost.iter().copied())
            .collect();
        let mut budget = SCAN_COUNT;
        for _ in 0..areas.len() {
            let area = &areas[at];
            let (next, ids, seen): (String, Vec<String>, usize) = self
                .scan
                .key(area.queue())
                .arg(&self.consumer)
                .arg(self.lease_ms())
                .arg(&start)
                .arg(budget)
                .arg(area.events())
                .invoke_async(conn)
                .await
                .map_err(backend)?;
            let mut unknown = Vec::new();
            for s in &ids {
                let id = id_of(s)?;
                if !known.contains(&id) {
                    unknown.push(id);
                }
            }
            if !unknown.is_empty() {
                let mut call = self.metas.key(area.queue());
                call.arg(area.events());
                for id in &unknown {
                    call.arg(id);
                }
                let rows: Vec<(String, Vec<u8>)> =
                    call.invoke_async(conn).await.map_err(backend)?;
                read_rows(&rows, &mut leases.adopted);
            }
            budget = budget.saturating_sub(seen);
            if next != FIRST {
                start = next;
                break;
            }
            at = (at + 1) % areas.len();
            start = FIRST.to_string();
            if budget == 0 {
                break;
            }
        }
        *self.cursor() = (areas[at].0.clone(), start);
        Ok(())
    }
}
