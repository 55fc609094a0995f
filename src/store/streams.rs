//! The spool on Redis Streams (`store.kind: redis`), shared by every replica.
//!
//! Keys, under `p`: the store prefix on one server or Sentinel, `{<prefix>queue}` on a Cluster
//! (one hash tag, so every script's keys, those it finds as it runs included, share a slot):
//! - `{p}queue`: a stream with one entry (`id <n>`) per pending event, read by the consumer
//!   group `hookgate` (named in the scripts). Every entry sits in the pending entries list
//!   (PEL) of the replica that owns it: the one that accepted, replayed or adopted it.
//! - `{p}event:<id>`: a hash per event: `event` and `meta` (the binary records of
//!   `record.rs`), `sid` (its queue entry) while pending, `dsid` (its dead-letter entry) once
//!   dead.
//! - `{p}dead`: a stream of dead letters; `{p}dead:count`: how many per route (the gauge).
//! - `{p}alive:<consumer>`: a replica's heartbeat, set for `store.lease` every third of it.
//! - `{p}seq`: the id counter. It starts from Redis's clock (ms × 1000), so ids issued after a
//!   Redis that lost its data restarts never repeat ones replicas still remember.
//!
//! Every operation is one Lua script, atomic on the server (`lua/*.lua`, built in). Scripts that write the queue create
//! it and its group when the stream is missing (first use, or a Redis that lost its data).
//! Accepting an event adds its entry and reads it into this replica's PEL in the same script,
//! so no other replica ever sees it unowned.
//!
//! Liveness is per replica, not per entry: renewing each entry's idle time (so that
//! `XAUTOCLAIM` by idle time finds only the dead's) would cost Redis work in proportion to the
//! backlog every round, just when a backend is down and the backlog is large. A replica whose
//! heartbeat expired is dead: the first replica to notice claims its entries (`XPENDING` by
//! consumer, then `XCLAIM`), at most [`ADOPT_BUDGET`] per round. A replica also looks through
//! its own PEL, a slice per round, for entries older than the lease that it does not know
//! (an accepted event whose answer from Redis was lost), and adopts them too. A replica whose
//! own heartbeat had lapsed checks which of its events are still its own, and an attempt
//! starts only after checking ownership (`event`), so an event whose owner changed is not
//! attempted by both. Delivery is at least once: an owner that lost Redis for longer than the
//! lease mid-attempt can still deliver an event its adopter delivers too (the `X-Webhook-Id`
//! header lets the backend tell).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use redis::Script;

use super::connection::Connection;
use super::replication::{self, Write};
use super::settings::Replicas;
use super::{Event, Leases, Meta, StoreError};

/// Where a scan of this replica's own PEL starts (again).
const FIRST: &str = "-";
/// Entries or ids per script call (ownership checks, listings, replays, drops): bounds the
/// time Redis spends in one script, and the size of one answer.
const BATCH: usize = 500;
/// Entries a replica claims from dead replicas per round, leaving the rest to the next round
/// or to other replicas.
const ADOPT_BUDGET: usize = 1000;
/// Entries of its own PEL a replica looks through per round.
const SCAN_COUNT: usize = 500;
/// Heartbeat values: set by a lease round, or (re)created by a write that found it missing.
/// A round that finds anything but its own value checks which events it still owns.
const BEAT: &str = "1";

/// KEYS: queue, seq, heartbeat, [dedup key]. ARGV: consumer, event key prefix, event, meta,
/// dedup expiry (unix ms, or empty), lease ms. Returns the new id.
const ENQUEUE: &str = include_str!("lua/enqueue.lua");

/// KEYS: queue. ARGV: consumer, event key prefix, ids. The ids this consumer does not own
/// (taken over, delivered, dead or gone).
const CHECK: &str = include_str!("lua/check.lua");

/// KEYS: queue. ARGV: consumer, heartbeat key prefix, event key prefix, budget. Claims the
/// entries of consumers whose heartbeat expired (at most `budget`) and returns `{id, meta}` of
/// each; entries whose event is gone are removed. Dead consumers that own nothing are removed
/// from the group (a restarted replica is a new consumer).
const ADOPT: &str = include_str!("lua/adopt.lua");

/// KEYS: queue. ARGV: consumer, min idle ms, start, count, event key prefix. A slice of this
/// consumer's PEL: the next start (`-` once the end was reached) and the event ids of entries
/// idle longer than the lease. Entries whose event is gone are removed.
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

/// The queue's keys, scripts and this process's consumer name.
pub struct Streams {
    prefix: String,
    consumer: String,
    lease: Duration,
    replicas: Replicas,
    /// Where the next slice of this replica's own PEL starts.
    cursor: Mutex<String>,
    /// Which events are still this replica's must be checked (its heartbeat lapsed, or a check
    /// failed part-way): cleared only once a check has gone through whole.
    recheck: AtomicBool,
    enqueue: Script,
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

impl Streams {
    /// `prefix`: what every queue key's name starts with ([`super::keys::Keys::queue`]).
    pub fn new(prefix: &str, lease: Duration, replicas: Replicas) -> Self {
        Self {
            prefix: prefix.to_string(),
            consumer: consumer_name(),
            lease,
            replicas,
            cursor: Mutex::new(FIRST.to_string()),
            recheck: AtomicBool::new(true),
            enqueue: Script::new(ENQUEUE),
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

    fn cursor(&self) -> std::sync::MutexGuard<'_, String> {
        self.cursor.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Shutting down: the heartbeat goes, so the other replicas adopt this one's events at
    /// their next round instead of after the lease. Returns how many events it held.
    pub async fn hand_back(
        &self,
        conn: &mut Connection,
        owns: &[u64],
    ) -> Result<usize, StoreError> {
        redis::cmd("DEL")
            .arg(self.heartbeat())
            .query_async::<u8>(conn)
            .await
            .map_err(backend)?;
        Ok(owns.len())
    }

    /// This process's name in the consumer group.
    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    fn queue(&self) -> String {
        format!("{}queue", self.prefix)
    }
    fn dead(&self) -> String {
        format!("{}dead", self.prefix)
    }
    fn dead_count(&self) -> String {
        format!("{}dead:count", self.prefix)
    }
    fn heartbeat(&self) -> String {
        format!("{}alive:{}", self.prefix, self.consumer)
    }
    fn events(&self) -> String {
        format!("{}event:", self.prefix)
    }
    fn event_key(&self, id: u64) -> String {
        format!("{}event:{id}", self.prefix)
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
        let mut call = Write::script(&self.enqueue);
        call.key(self.queue())
            .key(format!("{}seq", self.prefix))
            .key(self.heartbeat());
        let expiry = match dedup {
            Some((key, expires_ms)) => {
                call.key(key);
                expires_ms.max(1).to_string()
            }
            None => String::new(),
        };
        call.arg(&self.consumer)
            .arg(self.events())
            .arg(event.encode())
            .arg(meta.encode())
            .arg(expiry)
            .arg(self.lease_ms());
        let written = replication::write::<String>(conn, &call, self.replicas).await?;
        meta.id = id_of(&written.value)?;
        Ok((meta, written.replicated))
    }

    /// Takes back an event `enqueue` stored but too few replicas confirmed (and its dedup
    /// mark, when the same script set it).
    pub async fn withdraw(
        &self,
        conn: &mut Connection,
        id: u64,
        dedup: Option<String>,
    ) -> Result<(), StoreError> {
        let mut call = self.withdraw.key(self.queue());
        call.key(self.event_key(id));
        if let Some(k) = dedup {
            call.key(k);
        }
        call.invoke_async::<u8>(conn)
            .await
            .map(drop)
            .map_err(backend)
    }

    pub async fn event(&self, conn: &mut Connection, id: u64) -> Result<Option<Event>, StoreError> {
        let bytes: Option<Vec<u8>> = self
            .event
            .key(self.queue())
            .key(self.event_key(id))
            .arg(&self.consumer)
            .invoke_async(conn)
            .await
            .map_err(backend)?;
        Ok(bytes.map(|b| Event::decode(&b)).transpose()?)
    }

    pub async fn ack(&self, conn: &mut Connection, id: u64) -> Result<(), StoreError> {
        self.ack
            .key(self.queue())
            .key(self.event_key(id))
            .invoke_async::<u8>(conn)
            .await
            .map(drop)
            .map_err(backend)
    }

    pub async fn reschedule(&self, conn: &mut Connection, meta: &Meta) -> Result<(), StoreError> {
        self.reschedule
            .key(self.queue())
            .key(self.event_key(meta.id))
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
        let mut call = Write::script(&self.bury);
        call.key(self.queue())
            .key(self.event_key(meta.id))
            .key(self.dead())
            .key(self.dead_count())
            .arg(meta.encode())
            .arg(meta.id)
            .arg(&meta.route)
            .arg(&self.consumer);
        let written = replication::write::<u8>(conn, &call, self.replicas).await?;
        written.replicated
    }

    /// Every entry of `stream`, a page per script call.
    async fn list(&self, conn: &mut Connection, stream: String) -> Result<Vec<Meta>, StoreError> {
        let mut all = Vec::new();
        let mut start = FIRST.to_string();
        loop {
            let (next, rows): (String, Vec<(String, Vec<u8>)>) = self
                .list
                .key(&stream)
                .arg(self.events())
                .arg(&start)
                .arg(BATCH)
                .invoke_async(conn)
                .await
                .map_err(backend)?;
            read_rows(&rows, &mut all);
            if next.is_empty() {
                return Ok(all);
            }
            start = next;
        }
    }

    /// Every pending event of the fleet.
    pub async fn pending(&self, conn: &mut Connection) -> Result<Vec<Meta>, StoreError> {
        self.list(conn, self.queue()).await
    }

    /// Every dead letter of the fleet, oldest first.
    pub async fn dead_letters(&self, conn: &mut Connection) -> Result<Vec<Meta>, StoreError> {
        self.list(conn, self.dead()).await
    }

    /// Moves these dead letters (as read, with the state they resume with) back into the
    /// queue, owned by this process; returns those that were still dead.
    pub async fn replay(
        &self,
        conn: &mut Connection,
        chosen: Vec<Meta>,
    ) -> Result<Vec<Meta>, StoreError> {
        let mut moved = HashSet::new();
        for batch in chosen.chunks(BATCH) {
            let mut call = self.replay.key(self.queue());
            call.key(self.dead())
                .key(self.dead_count())
                .key(self.heartbeat())
                .arg(&self.consumer)
                .arg(self.events())
                .arg(self.lease_ms());
            for m in batch {
                call.arg(m.id).arg(&m.route).arg(m.encode());
            }
            let ids: Vec<String> = call.invoke_async(conn).await.map_err(backend)?;
            for s in &ids {
                moved.insert(id_of(s)?);
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
        for batch in chosen.chunks(BATCH) {
            let mut call = self.drop.key(self.dead());
            call.key(self.dead_count()).arg(self.events());
            for m in batch {
                call.arg(m.id).arg(&m.route);
            }
            let ids: Vec<String> = call.invoke_async(conn).await.map_err(backend)?;
            for s in &ids {
                gone.insert(id_of(s)?);
            }
        }
        Ok(kept(chosen, &gone))
    }

    /// One lease round: beat the heartbeat (and, if it had lapsed, find which of the events
    /// this process `owns` are no longer its own), adopt the events of dead replicas and the
    /// unknown ones in this replica's own PEL, and read the fleet's dead-letter counts.
    pub async fn renew(&self, conn: &mut Connection, owns: &[u64]) -> Result<Leases, StoreError> {
        let mut leases = Leases::default();
        let before: Option<String> = redis::cmd("SET")
            .arg(self.heartbeat())
            .arg(BEAT)
            .arg("PX")
            .arg(self.lease_ms())
            .arg("GET")
            .query_async(conn)
            .await
            .map_err(backend)?;
        if before.as_deref() != Some(BEAT) {
            // First round, or the heartbeat lapsed (Redis was out of reach for a lease, or lost
            // its data): others may have adopted some of these.
            self.recheck.store(true, Ordering::SeqCst);
        }
        if self.recheck.load(Ordering::SeqCst) {
            for batch in owns.chunks(BATCH) {
                let mut call = self.check.key(self.queue());
                call.arg(&self.consumer).arg(self.events());
                for id in batch {
                    call.arg(id);
                }
                let lost: Vec<String> = call.invoke_async(conn).await.map_err(backend)?;
                for s in &lost {
                    leases.lost.push(id_of(s)?);
                }
            }
            self.recheck.store(false, Ordering::SeqCst);
        }
        let rows: Vec<(String, Vec<u8>)> = self
            .adopt
            .key(self.queue())
            .arg(&self.consumer)
            .arg(format!("{}alive:", self.prefix))
            .arg(self.events())
            .arg(ADOPT_BUDGET)
            .invoke_async(conn)
            .await
            .map_err(backend)?;
        read_rows(&rows, &mut leases.adopted);
        self.scan_own(conn, owns, &mut leases).await?;
        let counts: HashMap<String, i64> = redis::cmd("HGETALL")
            .arg(self.dead_count())
            .query_async(conn)
            .await
            .map_err(backend)?;
        leases.dead = counts.into_iter().filter(|(_, n)| *n > 0).collect();
        Ok(leases)
    }

    /// Looks through the next slice of this replica's own PEL for entries idle longer than the
    /// lease that it does not know: an event whose enqueue ran in Redis but whose answer was
    /// lost (the sender got 503, and its retry is a duplicate) must still be delivered.
    async fn scan_own(
        &self,
        conn: &mut Connection,
        owns: &[u64],
        leases: &mut Leases,
    ) -> Result<(), StoreError> {
        let start = self.cursor().clone();
        let (next, ids): (String, Vec<String>) = self
            .scan
            .key(self.queue())
            .arg(&self.consumer)
            .arg(self.lease_ms())
            .arg(&start)
            .arg(SCAN_COUNT)
            .arg(self.events())
            .invoke_async(conn)
            .await
            .map_err(backend)?;
        *self.cursor() = next;
        let known: HashSet<u64> = owns.iter().chain(&leases.lost).copied().collect();
        let mut unknown = Vec::new();
        for s in &ids {
            let id = id_of(s)?;
            if !known.contains(&id) {
                unknown.push(id);
            }
        }
        if unknown.is_empty() {
            return Ok(());
        }
        let mut call = self.metas.key(self.queue());
        call.arg(self.events());
        for id in &unknown {
            call.arg(id);
        }
        let rows: Vec<(String, Vec<u8>)> = call.invoke_async(conn).await.map_err(backend)?;
        read_rows(&rows, &mut leases.adopted);
        Ok(())
    }
}
