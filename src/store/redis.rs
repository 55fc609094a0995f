//! The Redis store (`store.kind: redis`): dedup keys, route limits and the queue shared by
//! every replica.
//!
//! Dedup is two steps on one key per event: `SET k processing:<token> NX PX <lease>` claims it
//! (a copy reaching another replica meanwhile sees it in flight: 409), then `SET k delivered
//! PXAT <expiry>` once the backend took it (a later copy: duplicate). A request that ends
//! otherwise deletes the key only if it still holds its own token (compare-and-delete in Lua),
//! so a replica whose lease ran out cannot free a claim another replica has taken since.
//!
//! The route limit is a GCRA in a Lua script, on Redis's clock: one round trip per request and
//! no skew between replicas. The scripts are in `lua/`, built in. The spool is a stream with a
//! consumer group ([`super::streams`]).
//!
//! Redis may be one server, a master found through Sentinel or a Cluster ([`Connection`]);
//! on a Cluster the keys carry hash tags, one per route, and each route has its own queue in
//! the slot of its dedup keys and limit ([`Keys`]). Each connection reconnects by itself;
//! connecting and each answer are bounded by [`RESPONSE_TIMEOUT`], so a hung Redis costs a
//! command about a second before the caller's fallback applies (dedup fails open, the route
//! limit goes local, spooling refuses with 503).
//!
//! With `store.min_replicas`, the writes that back a promise (an accepted event, a dedup
//! mark, a dead letter) are followed by `WAIT` ([`replication`]), over connections of their
//! own whose answers may take `replica_timeout` longer. An event and its dedup mark are stored
//! by one script (on a Cluster too: they share their route's slot). An accepted event that too
//! few replicas confirmed is withdrawn (its entry, event and dedup mark deleted) before the
//! 503, so the sender's retry is taken afresh instead of being told "duplicate" about an event
//! a failover could still lose.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use redis::Script;

use super::address::Address;
use super::connection::{Connection, RESPONSE_TIMEOUT};
use super::keys::Keys;
use super::replication::{self, Write};
use super::settings::Replicas;
use super::streams::Streams;
use super::{Claim, Event, Leases, Meta, Selection, Store, StoreError};

/// Connections for the writes followed by `WAIT`, taken in turn. `WAIT` blocks its connection
/// until the replicas answer: with replicas slow or gone, the writes queued behind it on one
/// connection would wait for every `WAIT` before theirs.
const ACKED_CONNECTIONS: usize = 4;

const DELIVERED: &str = "delivered";

/// 1: claimed; 2: delivered already; 3: in flight elsewhere.
const CLAIM: &str = include_str!("lua/claim.lua");

/// Deletes the claim only if it is still this holder's.
const RELEASE: &str = include_str!("lua/release.lua");

/// GCRA on Redis's clock, in microseconds. ARGV: emission interval, burst. Returns 0 when the
/// request passes, else the microseconds until it would.
const GCRA: &str = include_str!("lua/gcra.lua");

pub struct RedisStore {
    conn: Connection,
    /// The writes that back a promise, each followed by `WAIT`: `conn` itself when
    /// `min_replicas` is 0.
    acked: Vec<Connection>,
    /// Which of `acked` the next write takes.
    turn: AtomicUsize,
    replicas: Replicas,
    keys: Keys,
    /// Tokens of the claims this process holds, by store key.
    tokens: Mutex<HashMap<String, String>>,
    /// Makes tokens unique within the process; `instance` across processes.
    counter: AtomicU64,
    instance: u64,
    claim: Script,
    release: Script,
    gcra: Script,
    streams: Streams,
}

fn backend(e: redis::RedisError) -> StoreError {
    // The error's text names the command or the connection, never the URL's password.
    StoreError::Backend(format!("redis: {e}"))
}

impl RedisStore {
    /// A store on `url`; connects lazily (on first use), so a Redis that is down at start-up
    /// makes the process unready, not dead. Must run inside a Tokio runtime.
    /// `lease`: how long this replica's heartbeat lasts; others adopt its events once it lapsed.
    pub fn open(
        url: &str,
        prefix: &str,
        lease: Duration,
        replicas: Replicas,
    ) -> Result<Self, StoreError> {
        let address =
            Address::parse(url).map_err(|e| StoreError::Backend(format!("store.url: {e}")))?;
        let conn = Connection::open(&address, RESPONSE_TIMEOUT).map_err(backend)?;
        let acked = if replicas.min == 0 {
            vec![conn.clone()]
        } else {
            (0..ACKED_CONNECTIONS)
                .map(|_| Connection::open(&address, RESPONSE_TIMEOUT + replicas.timeout))
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend)?
        };
        let keys = Keys::new(prefix, address.clustered());
        Ok(Self {
            conn,
            acked,
            turn: AtomicUsize::new(0),
            replicas,
            streams: Streams::new(keys.clone(), lease, replicas),
            keys,
            tokens: Mutex::default(),
            counter: AtomicU64::new(0),
            instance: fastrand::u64(..),
            claim: Script::new(CLAIM),
            release: Script::new(RELEASE),
            gcra: Script::new(GCRA),
        })
    }

    /// The connection, for the journal kept beside the store's keys.
    pub fn connection(&self) -> Connection {
        self.conn.clone()
    }

    /// What the journal's key names start with.
    pub fn journal_keys(&self) -> String {
        self.keys.journal()
    }

    pub fn lease(&self) -> Duration {
        self.streams.lease()
    }

    /// This process's consumer name in the queue's group.
    pub fn consumer(&self) -> &str {
        self.streams.consumer()
    }

    fn key(&self, route: &str, key: &str) -> String {
        self.keys.dedup(route, key)
    }

    /// The connection for the next write followed by `WAIT`.
    fn acked(&self) -> Connection {
        let n = self.turn.fetch_add(1, Ordering::Relaxed);
        self.acked[n % self.acked.len()].clone()
    }

    fn tokens(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.tokens.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The fleet's dead letters that `which` selects.
    async fn chosen(
        &self,
        conn: &mut Connection,
        which: &Selection,
    ) -> Result<Vec<Meta>, StoreError> {
        let all = self.streams.dead_letters(conn).await?;
        Ok(all.into_iter().filter(|m| which.matches(m)).collect())
    }

    /// What `/readyz` asks: every node of a Cluster answers; one server, or Sentinel's
    /// master, answers as the primary (a demoted primary is a replica: it takes no write,
    /// and behind Sentinel the master is looked up again).
    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        if let Connection::Cluster(_) = conn {
            return redis::cmd("PING")
                .query_async::<String>(&mut conn)
                .await
                .map(drop)
                .map_err(backend);
        }
        let role: Vec<redis::Value> = redis::cmd("ROLE")
            .query_async(&mut conn)
            .await
            .map_err(backend)?;
        let role = role
            .first()
            .and_then(|v| redis::from_redis_value_ref::<String>(v).ok());
        if role.as_deref() == Some("master") {
            return Ok(());
        }
        if let Connection::Sentinel(s) = &self.conn {
            s.forget_master();
        }
        Err(StoreError::Backend(format!(
            "redis: the server is a {}, not the primary",
            role.as_deref().unwrap_or("server of unknown role")
        )))
    }

    /// One request against the fleet-wide GCRA bucket of `route` (one request per
    /// `interval_us`, bursts of `burst`): `None` if it passes, else how long until it would.
    pub async fn check_route(
        &self,
        route: &str,
        interval_us: u64,
        burst: u32,
    ) -> Result<Option<Duration>, StoreError> {
        let mut conn = self.conn.clone();
        let wait: u64 = self
            .gcra
            .key(self.keys.limit(route))
            .arg(interval_us)
            .arg(burst)
            .invoke_async(&mut conn)
            .await
            .map_err(backend)?;
        Ok((wait > 0).then(|| Duration::from_micros(wait)))
    }

    /// Marks a dedup key delivered until `expires_ms`, confirmed by the replicas.
    async fn mark(&self, k: &str, expires_ms: u64) -> Result<(), StoreError> {
        let mut set = redis::cmd("SET");
        set.arg(k).arg(DELIVERED).arg("PXAT").arg(expires_ms.max(1));
        let written: replication::Written<()> =
            replication::write(&mut self.acked(), &Write::Command(set), self.replicas).await?;
        written.replicated
    }
}

impl Store for RedisStore {
    /// `now_ms` is not used: leases run on Redis's clock, shared by the fleet.
    async fn claim(
        &self,
        route: &str,
        key: &str,
        _now_ms: u64,
        lease_ms: u64,
    ) -> Result<Claim, StoreError> {
        let k = self.key(route, key);
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let token = format!("processing:{:016x}{n:x}", self.instance);
        let mut conn = self.conn.clone();
        let found: u8 = self
            .claim
            .key(&k)
            .arg(&token)
            .arg(lease_ms.max(1))
            .invoke_async(&mut conn)
            .await
            .map_err(backend)?;
        Ok(match found {
            1 => {
                self.tokens().insert(k, token);
                Claim::New
            }
            2 => Claim::Duplicate,
            _ => Claim::InFlight,
        })
    }

    /// Runs the compare-and-delete in the background: called from drop guards. Outside a
    /// runtime, or if Redis fails, the claim simply lapses at the end of its lease.
    fn release(&self, route: &str, key: &str) {
        let k = self.key(route, key);
        let Some(token) = self.tokens().remove(&k) else {
            return;
        };
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut conn = self.conn.clone();
        let script = self.release.clone();
        handle.spawn(async move {
            let done: Result<u8, _> = script.key(&k).arg(&token).invoke_async(&mut conn).await;
            if let Err(e) = done {
                tracing::warn!(error = %e, "releasing a dedup claim failed; it lapses with its lease");
            }
        });
    }

    async fn mark_delivered(
        &self,
        route: &str,
        key: &str,
        expires_ms: u64,
    ) -> Result<(), StoreError> {
        let k = self.key(route, key);
        self.tokens().remove(&k);
        self.mark(&k, expires_ms).await
    }

    async fn enqueue(
        &self,
        event: &Event,
        meta: Meta,
        dedup_expires_ms: Option<u64>,
    ) -> Result<Meta, StoreError> {
        let dedup = match (&meta.key, dedup_expires_ms) {
            (Some(key), Some(expires)) => Some((self.key(&meta.route, key), expires)),
            _ => None,
        };
        let mut conn = self.acked();
        let (stored, replicated) = self
            .streams
            .enqueue(&mut conn, event, meta, dedup.clone())
            .await?;
        let dedup = dedup.map(|(k, _)| k);
        if let Err(e) = replicated {
            let withdrawn = self
                .streams
                .withdraw(&mut self.conn.clone(), &stored, dedup)
                .await;
            if let Err(w) = withdrawn {
                tracing::warn!(id = stored.id, error = %w, "cannot withdraw an event too few replicas confirmed; it will be delivered if the primary keeps it");
            }
            return Err(e);
        }
        if let Some(k) = dedup {
            // Marked delivered: the claim's token is no longer needed.
            self.tokens().remove(&k);
        }
        Ok(stored)
    }
    async fn event(&self, route: &str, id: u64) -> Result<Option<Event>, StoreError> {
        self.streams.event(&mut self.conn.clone(), route, id).await
    }
    async fn ack(&self, route: &str, id: u64) -> Result<(), StoreError> {
        self.streams.ack(&mut self.conn.clone(), route, id).await
    }
    async fn reschedule(&self, meta: &Meta) -> Result<(), StoreError> {
        self.streams.reschedule(&mut self.conn.clone(), meta).await
    }
    async fn dead_letter(&self, meta: &Meta) -> Result<(), StoreError> {
        self.streams.dead_letter(&mut self.acked(), meta).await
    }
    /// The fleet's pending events (the engine does not load these: it adopts with `renew`).
    async fn pending(&self) -> Result<Vec<Meta>, StoreError> {
        self.streams.pending(&mut self.conn.clone()).await
    }
    async fn dead_letters(&self) -> Result<Vec<Meta>, StoreError> {
        self.streams.dead_letters(&mut self.conn.clone()).await
    }
    async fn replay(&self, which: &Selection, now_ms: u64) -> Result<Vec<Meta>, StoreError> {
        let mut conn = self.conn.clone();
        let chosen = self
            .chosen(&mut conn, which)
            .await?
            .into_iter()
            .map(|mut m| {
                m.attempts = 0;
                m.next_ms = now_ms;
                m
            })
            .collect();
        self.streams.replay(&mut conn, chosen).await
    }
    async fn drop_dead(&self, which: &Selection) -> Result<Vec<Meta>, StoreError> {
        let mut conn = self.conn.clone();
        let chosen = self.chosen(&mut conn, which).await?;
        self.streams.drop_dead(&mut conn, chosen).await
    }
    async fn renew(&self, owns: &[(String, u64)]) -> Result<Leases, StoreError> {
        self.streams.renew(&mut self.conn.clone(), owns).await
    }
    async fn hand_back(&self, owns: &[(String, u64)]) -> Result<usize, StoreError> {
        self.streams.hand_back(&mut self.conn.clone(), owns).await
    }
    async fn paused(&self) -> Result<Vec<String>, StoreError> {
        redis::cmd("SMEMBERS")
            .arg(self.keys.paused())
            .query_async(&mut self.conn.clone())
            .await
            .map_err(backend)
    }
    async fn set_paused(&self, route: &str, paused: bool) -> Result<(), StoreError> {
        redis::cmd(if paused { "SADD" } else { "SREM" })
            .arg(self.keys.paused())
            .arg(route)
            .query_async::<()>(&mut self.conn.clone())
            .await
            .map_err(backend)
    }
    /// Redis expires keys itself.
    async fn purge_expired(&self, _: u64) -> Result<usize, StoreError> {
        Ok(0)
    }
}
