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
//! A [`ConnectionManager`] reconnects by itself; connecting and each answer are bounded by
//! [`RESPONSE_TIMEOUT`], so a hung Redis costs a command about a second before the caller's
//! fallback applies (dedup fails open, the route limit goes local, spooling refuses with 503).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Script;

use super::streams::Streams;
use super::{dedup_key, Claim, Event, Leases, Meta, Selection, Store, StoreError};

/// Longest wait for a command's answer (and for a connection) before it counts as failed.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);

const DELIVERED: &str = "delivered";

/// 1: claimed; 2: delivered already; 3: in flight elsewhere.
const CLAIM: &str = include_str!("lua/claim.lua");

/// Deletes the claim only if it is still this holder's.
const RELEASE: &str = include_str!("lua/release.lua");

/// GCRA on Redis's clock, in microseconds. ARGV: emission interval, burst. Returns 0 when the
/// request passes, else the microseconds until it would.
const GCRA: &str = include_str!("lua/gcra.lua");

pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
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
    pub fn open(url: &str, prefix: &str, lease: Duration) -> Result<Self, StoreError> {
        let client = redis::Client::open(url)
            .map_err(|_| StoreError::Backend("store.url: not a valid Redis URL".into()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(RESPONSE_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let conn = ConnectionManager::new_lazy_with_config(client, config).map_err(backend)?;
        Ok(Self {
            conn,
            prefix: prefix.to_string(),
            tokens: Mutex::default(),
            counter: AtomicU64::new(0),
            instance: fastrand::u64(..),
            claim: Script::new(CLAIM),
            release: Script::new(RELEASE),
            gcra: Script::new(GCRA),
            streams: Streams::new(prefix, lease),
        })
    }

    /// The connection, for the journal kept beside the store's keys.
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// What every key of this store starts with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn lease(&self) -> Duration {
        self.streams.lease()
    }

    /// This process's consumer name in the queue's group.
    pub fn consumer(&self) -> &str {
        self.streams.consumer()
    }

    fn key(&self, route: &str, key: &str) -> String {
        format!("{}dedup:{}", self.prefix, dedup_key(route, key))
    }

    fn tokens(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.tokens.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The fleet's dead letters that `which` selects.
    async fn chosen(
        &self,
        conn: &mut ConnectionManager,
        which: &Selection,
    ) -> Result<Vec<Meta>, StoreError> {
        let all = self.streams.dead_letters(conn).await?;
        Ok(all.into_iter().filter(|m| which.matches(m)).collect())
    }

    /// Answers when Redis does: what `/readyz` asks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(drop)
            .map_err(backend)
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
            .key(format!("{}limit:{route}", self.prefix))
            .arg(interval_us)
            .arg(burst)
            .invoke_async(&mut conn)
            .await
            .map_err(backend)?;
        Ok((wait > 0).then(|| Duration::from_micros(wait)))
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
        let mut conn = self.conn.clone();
        redis::cmd("SET")
            .arg(&k)
            .arg(DELIVERED)
            .arg("PXAT")
            .arg(expires_ms.max(1))
            .query_async::<()>(&mut conn)
            .await
            .map_err(backend)
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
        let mut conn = self.conn.clone();
        let stored = self
            .streams
            .enqueue(&mut conn, event, meta, dedup.clone())
            .await?;
        if let Some((k, _)) = dedup {
            // Marked delivered by the script: the claim's token is no longer needed.
            self.tokens().remove(&k);
        }
        Ok(stored)
    }
    async fn event(&self, id: u64) -> Result<Option<Event>, StoreError> {
        self.streams.event(&mut self.conn.clone(), id).await
    }
    async fn ack(&self, id: u64) -> Result<(), StoreError> {
        self.streams.ack(&mut self.conn.clone(), id).await
    }
    async fn reschedule(&self, meta: &Meta) -> Result<(), StoreError> {
        self.streams.reschedule(&mut self.conn.clone(), meta).await
    }
    async fn dead_letter(&self, meta: &Meta) -> Result<(), StoreError> {
        self.streams.dead_letter(&mut self.conn.clone(), meta).await
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
    async fn renew(&self, owns: &[u64]) -> Result<Leases, StoreError> {
        self.streams.renew(&mut self.conn.clone(), owns).await
    }
    async fn hand_back(&self, owns: &[u64]) -> Result<usize, StoreError> {
        self.streams.hand_back(&mut self.conn.clone(), owns).await
    }
    async fn paused(&self) -> Result<Vec<String>, StoreError> {
        redis::cmd("SMEMBERS")
            .arg(format!("{}paused", self.prefix))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(backend)
    }
    async fn set_paused(&self, route: &str, paused: bool) -> Result<(), StoreError> {
        redis::cmd(if paused { "SADD" } else { "SREM" })
            .arg(format!("{}paused", self.prefix))
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
