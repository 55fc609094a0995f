//! Where dedup keys and the spool live (`store.kind`): `memory` (default, bounded, gone on
//! restart), `redb` (a file, durable: every write is an fsync'd commit before it returns) or
//! `redis` (shared by replicas: dedup keys, the route limits and the spool, on Redis Streams).
//!
//! The interface is the [`Store`] trait: a handful of async operations, each one atomic, so a
//! networked kind (Redis) can implement it the same way. `release` alone is synchronous: it
//! runs from drop guards when a request ends early.
//!
//! Dedup is claim / mark delivered / release. A claim is "in flight" until its request ends;
//! in-flight claims live in this process ([`InFlight`]) because a crash ends every request
//! with it, while delivered marks go to the store and outlive restarts.

mod address;
mod connection;
#[cfg(test)]
pub(crate) mod faulty;
mod keys;
mod memory;
mod record;
mod redb;
mod redis;
mod replication;
mod sentinel;
mod settings;
mod streams;

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

pub use self::address::{Address, AddressError};
pub use self::connection::Connection;
pub use self::memory::MemoryStore;
pub use self::record::{Event, Malformed, Meta, TraceContext};
pub use self::redb::RedbStore;
pub use self::redis::RedisStore;
pub use self::settings::{RedisUrl, Replicas, StoreConfig};

/// A store operation failed. Callers fail open for dedup and refuse (503) for the spool.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store.path {path}: cannot open: {message}")]
    Open { path: PathBuf, message: String },
    #[error("store: {0}")]
    Backend(String),
    #[error("store: {0}")]
    Malformed(#[from] Malformed),
    #[error("store writer has stopped")]
    Closed,
    #[error("store: no answer within {0:?}")]
    TimedOut(Duration),
    /// The write is on the Redis primary, but fewer replicas than `store.min_replicas`
    /// confirmed it within `store.replica_timeout`: a failover now could lose it.
    #[error("store: the write reached {got} of {wanted} required replicas within {timeout:?}")]
    Unreplicated {
        wanted: u32,
        got: u32,
        timeout: Duration,
    },
}

impl StoreError {
    /// The `operation` label of `hookgate_store_errors_total` for a failed `op`: a write
    /// that did not reach its replicas counts as `replicate`, whatever it was.
    pub fn operation<'a>(&self, op: &'a str) -> &'a str {
        match self {
            Self::Unreplicated { .. } => "replicate",
            _ => op,
        }
    }
}

/// How long a readiness probe of the store may take: a probe that waits longer (a disk that
/// hangs, a writer stuck behind a huge commit) is an answer too.
pub const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// What a dedup claim found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// First time seen (or its mark expired): the caller now holds the key.
    New,
    /// Another copy is being delivered right now.
    InFlight,
    /// Already delivered (or durably accepted) within the TTL.
    Duplicate,
}

/// Which dead letters an admin operation applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    Ids(Vec<u64>),
    Route(String),
    All,
}

impl Selection {
    pub fn matches(&self, m: &Meta) -> bool {
        match self {
            Self::Ids(ids) => ids.contains(&m.id),
            Self::Route(r) => m.route == *r,
            Self::All => true,
        }
    }
}

/// What a lease round on a shared store found: the events this process held but another has
/// taken (or delivered) since, the events it adopted from replicas that stopped renewing, and
/// the fleet's dead letters per route.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Leases {
    pub lost: Vec<u64>,
    pub adopted: Vec<Meta>,
    pub dead: HashMap<String, i64>,
}

/// The operations hookgate needs from a store. Times are unix milliseconds, passed in so tests
/// control the clock.
pub trait Store: Send + Sync {
    /// Claims `key` of `route` for delivery, for at most `lease_ms` if never released.
    fn claim(
        &self,
        route: &str,
        key: &str,
        now_ms: u64,
        lease_ms: u64,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send;

    /// Gives a claim back without marking it: the sender's retry will be delivered.
    fn release(&self, route: &str, key: &str);

    /// Records `key` as delivered until `expires_ms`, then drops the claim.
    fn mark_delivered(
        &self,
        route: &str,
        key: &str,
        expires_ms: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Stores an event for delivery; with `dedup_expires_ms`, marks its key delivered in the
    /// same commit. Durable when this returns (for durable kinds). Returns the event's id.
    fn enqueue(
        &self,
        event: &Event,
        meta: Meta,
        dedup_expires_ms: Option<u64>,
    ) -> impl Future<Output = Result<Meta, StoreError>> + Send;

    /// The event of a pending or dead id of `route` (a Redis Cluster keeps each route's
    /// events apart; the other stores go by the id alone). On a shared store, only a pending
    /// event this process owns: `None` tells the caller another process has it (or it is
    /// gone).
    fn event(
        &self,
        route: &str,
        id: u64,
    ) -> impl Future<Output = Result<Option<Event>, StoreError>> + Send;

    /// Delivered: forget the event.
    fn ack(&self, route: &str, id: u64) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Saves the delivery state after a failed attempt.
    fn reschedule(&self, meta: &Meta) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Moves a pending event to the dead letters.
    fn dead_letter(&self, meta: &Meta) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every pending event's state (to resume after a restart).
    fn pending(&self) -> impl Future<Output = Result<Vec<Meta>, StoreError>> + Send;

    /// Every dead letter's state.
    fn dead_letters(&self) -> impl Future<Output = Result<Vec<Meta>, StoreError>> + Send;

    /// Moves the selected dead letters back to pending, due now, attempts reset.
    fn replay(
        &self,
        which: &Selection,
        now_ms: u64,
    ) -> impl Future<Output = Result<Vec<Meta>, StoreError>> + Send;

    /// Deletes the selected dead letters; returns what was deleted.
    fn drop_dead(
        &self,
        which: &Selection,
    ) -> impl Future<Output = Result<Vec<Meta>, StoreError>> + Send;

    /// Forgets delivered marks that expired; returns how many.
    fn purge_expired(&self, now_ms: u64) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// Shared stores: renews this process's hold on the pending events (it `owns` these, as
    /// `(route, id)`) and adopts those of processes that stopped renewing theirs. Local stores
    /// have a single owner: nothing to do.
    fn renew(
        &self,
        owns: &[(String, u64)],
    ) -> impl Future<Output = Result<Leases, StoreError>> + Send {
        let _ = owns;
        async { Ok(Leases::default()) }
    }

    /// The routes an operator paused: kept in durable stores so a pause survives a restart,
    /// and in a shared store so it holds for the whole fleet. The memory store keeps none.
    fn paused(&self) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send {
        async { Ok(Vec::new()) }
    }

    /// Records `route` as paused or not.
    fn set_paused(
        &self,
        route: &str,
        paused: bool,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let _ = (route, paused);
        async { Ok(()) }
    }

    /// Shared stores, at shutdown: makes the pending events this process `owns` adoptable by
    /// the others now rather than after the lease. Returns how many it handed back.
    fn hand_back(
        &self,
        owns: &[(String, u64)],
    ) -> impl Future<Output = Result<usize, StoreError>> + Send {
        let _ = owns;
        async { Ok(0) }
    }
}

/// The configured store.
#[derive(Clone)]
pub enum AnyStore {
    Memory(std::sync::Arc<MemoryStore>),
    Redb(std::sync::Arc<RedbStore>),
    Redis(std::sync::Arc<RedisStore>),
    /// Fails every operation: drives the error paths in tests.
    #[cfg(test)]
    Faulty(std::sync::Arc<faulty::FaultyStore>),
}

impl AnyStore {
    /// Opens the configured store; a file that cannot be opened is an error naming its path.
    pub fn open(config: &StoreConfig) -> Result<Self, StoreError> {
        Ok(match config {
            StoreConfig::Memory => Self::Memory(std::sync::Arc::new(MemoryStore::new())),
            StoreConfig::Redb { path } => Self::Redb(std::sync::Arc::new(RedbStore::open(path)?)),
            StoreConfig::Redis {
                url,
                prefix,
                lease,
                replicas,
            } => Self::Redis(std::sync::Arc::new(RedisStore::open(
                &url.0, prefix, *lease, *replicas,
            )?)),
        })
    }

    /// The shared store, when there is one: the route limits then hold for the whole fleet.
    pub fn redis(&self) -> Option<&RedisStore> {
        match self {
            Self::Redis(s) => Some(s),
            _ => None,
        }
    }

    /// Whether the store answers: Redis to a ping; redb by writing a probe key through its
    /// writer (a committed, fsync'd transaction, as an event's) and reading it back, within
    /// [`READY_TIMEOUT`]; memory always.
    pub async fn ready(&self) -> Result<(), StoreError> {
        match self {
            Self::Redis(s) => s.ping().await,
            Self::Redb(s) => tokio::time::timeout(READY_TIMEOUT, s.probe())
                .await
                .unwrap_or(Err(StoreError::TimedOut(READY_TIMEOUT))),
            _ => Ok(()),
        }
    }

    /// Shared stores: how long a process may go without renewing before another adopts its
    /// events.
    /// `None`: this process is the store's only user.
    pub fn lease(&self) -> Option<Duration> {
        match self {
            Self::Redis(s) => Some(s.lease()),
            _ => None,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Self::Memory(_) => "memory",
            Self::Redb(_) => "redb",
            Self::Redis(_) => "redis",
            #[cfg(test)]
            Self::Faulty(_) => "faulty",
        }
    }

    pub fn path(&self) -> Option<&Path> {
        match self {
            Self::Redb(s) => Some(s.path()),
            _ => None,
        }
    }
}

macro_rules! dispatch {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            AnyStore::Memory($s) => $call,
            AnyStore::Redb($s) => $call,
            AnyStore::Redis($s) => $call,
            #[cfg(test)]
            AnyStore::Faulty($s) => $call,
        }
    };
}

impl Store for AnyStore {
    async fn claim(
        &self,
        route: &str,
        key: &str,
        now_ms: u64,
        lease_ms: u64,
    ) -> Result<Claim, StoreError> {
        dispatch!(self, s => s.claim(route, key, now_ms, lease_ms).await)
    }
    fn release(&self, route: &str, key: &str) {
        dispatch!(self, s => s.release(route, key))
    }
    async fn mark_delivered(
        &self,
        route: &str,
        key: &str,
        expires_ms: u64,
    ) -> Result<(), StoreError> {
        dispatch!(self, s => s.mark_delivered(route, key, expires_ms).await)
    }
    async fn enqueue(
        &self,
        event: &Event,
        meta: Meta,
        dedup_expires_ms: Option<u64>,
    ) -> Result<Meta, StoreError> {
        dispatch!(self, s => s.enqueue(event, meta, dedup_expires_ms).await)
    }
    async fn event(&self, route: &str, id: u64) -> Result<Option<Event>, StoreError> {
        dispatch!(self, s => s.event(route, id).await)
    }
    async fn ack(&self, route: &str, id: u64) -> Result<(), StoreError> {
        dispatch!(self, s => s.ack(route, id).await)
    }
    async fn reschedule(&self, meta: &Meta) -> Result<(), StoreError> {
        dispatch!(self, s => s.reschedule(meta).await)
    }
    async fn dead_letter(&self, meta: &Meta) -> Result<(), StoreError> {
        dispatch!(self, s => s.dead_letter(meta).await)
    }
    async fn pending(&self) -> Result<Vec<Meta>, StoreError> {
        dispatch!(self, s => s.pending().await)
    }
    async fn dead_letters(&self) -> Result<Vec<Meta>, StoreError> {
        dispatch!(self, s => s.dead_letters().await)
    }
    async fn replay(&self, which: &Selection, now_ms: u64) -> Result<Vec<Meta>, StoreError> {
        dispatch!(self, s => s.replay(which, now_ms).await)
    }
    async fn drop_dead(&self, which: &Selection) -> Result<Vec<Meta>, StoreError> {
        dispatch!(self, s => s.drop_dead(which).await)
    }
    async fn purge_expired(&self, now_ms: u64) -> Result<usize, StoreError> {
        dispatch!(self, s => s.purge_expired(now_ms).await)
    }
    async fn renew(&self, owns: &[(String, u64)]) -> Result<Leases, StoreError> {
        dispatch!(self, s => s.renew(owns).await)
    }
    async fn hand_back(&self, owns: &[(String, u64)]) -> Result<usize, StoreError> {
        dispatch!(self, s => s.hand_back(owns).await)
    }
    async fn paused(&self) -> Result<Vec<String>, StoreError> {
        dispatch!(self, s => s.paused().await)
    }
    async fn set_paused(&self, route: &str, paused: bool) -> Result<(), StoreError> {
        dispatch!(self, s => s.set_paused(route, paused).await)
    }
}

/// `route` and `key` as one store key; `\0` cannot occur in a route name.
fn dedup_key(route: &str, key: &str) -> String {
    format!("{route}\0{key}")
}

/// Claims of keys whose first copy is being delivered by this process.
#[derive(Debug, Default)]
pub struct InFlight(Mutex<HashMap<String, u64>>);

impl InFlight {
    /// Takes the key unless someone holds an unexpired claim on it.
    fn try_take(&self, k: &str, now_ms: u64, lease_ms: u64) -> bool {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(k) {
            Some(&until) if until > now_ms => false,
            _ => {
                map.insert(k.to_string(), now_ms.saturating_add(lease_ms));
                true
            }
        }
    }

    fn remove(&self, k: &str) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn stores() -> (Vec<AnyStore>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let redb = RedbStore::open(&dir.path().join("s.redb")).unwrap();
        (
            vec![
                AnyStore::Memory(std::sync::Arc::new(MemoryStore::new())),
                AnyStore::Redb(std::sync::Arc::new(redb)),
            ],
            dir,
        )
    }

    fn event(n: u8) -> Event {
        Event {
            path_and_query: "/up".into(),
            headers: vec![("x-n".into(), vec![n])],
            body: Bytes::from(vec![n; 10]),
            provider: "github".into(),
            key_id: "k".into(),
            trace: None,
        }
    }

    fn meta(route: &str, key: Option<&str>) -> Meta {
        Meta {
            id: 0,
            route: route.into(),
            key: key.map(str::to_string),
            received_ms: 1_000,
            attempts: 0,
            next_ms: 1_000,
            deferred: false,
            last_error: String::new(),
        }
    }

    #[tokio::test]
    async fn claims_in_flight_delivered_and_expired() {
        let (stores, _dir) = stores();
        for s in stores {
            let kind = s.kind();
            let t = 1_000_000;
            assert_eq!(
                s.claim("r", "k", t, 5_000).await.unwrap(),
                Claim::New,
                "{kind}"
            );
            assert_eq!(
                s.claim("r", "k", t, 5_000).await.unwrap(),
                Claim::InFlight,
                "{kind}"
            );
            // Keys are per route.
            assert_eq!(
                s.claim("r2", "k", t, 5_000).await.unwrap(),
                Claim::New,
                "{kind}"
            );
            s.mark_delivered("r", "k", t + 60_000).await.unwrap();
            assert_eq!(
                s.claim("r", "k", t + 1, 5_000).await.unwrap(),
                Claim::Duplicate,
                "{kind}"
            );
            // The TTL runs out on the injected clock.
            assert_eq!(
                s.claim("r", "k", t + 59_999, 5_000).await.unwrap(),
                Claim::Duplicate,
                "{kind}"
            );
            assert_eq!(
                s.claim("r", "k", t + 60_000, 5_000).await.unwrap(),
                Claim::New,
                "{kind}"
            );
            // A released claim is free again: a failed attempt does not poison the key.
            s.release("r", "k");
            assert_eq!(
                s.claim("r", "k", t + 60_001, 5_000).await.unwrap(),
                Claim::New,
                "{kind}"
            );
            // An unreleased claim lapses after its lease.
            assert_eq!(
                s.claim("r", "k", t + 60_001 + 5_000, 5_000).await.unwrap(),
                Claim::New,
                "{kind}"
            );
        }
    }

    #[tokio::test]
    async fn purge_forgets_expired_marks_only() {
        let (stores, _dir) = stores();
        for s in stores {
            s.mark_delivered("r", "old", 100).await.unwrap();
            s.mark_delivered("r", "new", 10_000).await.unwrap();
            // Re-marking moves the expiry; the stale index entry must not delete the new one.
            s.mark_delivered("r", "moved", 100).await.unwrap();
            s.mark_delivered("r", "moved", 20_000).await.unwrap();
            assert_eq!(s.purge_expired(5_000).await.unwrap(), 1, "{}", s.kind());
            assert_eq!(s.claim("r", "old", 50, 1).await.unwrap(), Claim::New);
            assert_eq!(s.claim("r", "new", 50, 1).await.unwrap(), Claim::Duplicate);
            assert_eq!(
                s.claim("r", "moved", 50, 1).await.unwrap(),
                Claim::Duplicate
            );
        }
    }

    #[tokio::test]
    async fn spool_lifecycle() {
        let (stores, _dir) = stores();
        for s in stores {
            let kind = s.kind();
            let a = s
                .enqueue(&event(1), meta("r", Some("ka")), Some(99_000))
                .await
                .unwrap();
            let b = s.enqueue(&event(2), meta("r", None), None).await.unwrap();
            let c = s
                .enqueue(&event(3), meta("other", None), None)
                .await
                .unwrap();
            assert!(a.id < b.id && b.id < c.id, "{kind}");
            // Enqueue with a dedup expiry marks the key delivered.
            assert_eq!(
                s.claim("r", "ka", 2_000, 1).await.unwrap(),
                Claim::Duplicate,
                "{kind}"
            );
            assert_eq!(s.event("r", b.id).await.unwrap(), Some(event(2)), "{kind}");
            assert_eq!(s.pending().await.unwrap().len(), 3, "{kind}");

            let mut retry = a.clone();
            retry.attempts = 1;
            retry.next_ms = 5_000;
            retry.last_error = "backend answered 503".into();
            s.reschedule(&retry).await.unwrap();
            let pending = s.pending().await.unwrap();
            assert!(pending.contains(&retry), "{kind}");

            s.ack("r", b.id).await.unwrap();
            assert_eq!(s.event("r", b.id).await.unwrap(), None, "{kind}");

            s.dead_letter(&retry).await.unwrap();
            s.dead_letter(&c).await.unwrap();
            assert_eq!(s.pending().await.unwrap().len(), 0, "{kind}");
            assert_eq!(s.dead_letters().await.unwrap().len(), 2, "{kind}");
            // Dead letters keep their event for replay.
            assert_eq!(s.event("r", a.id).await.unwrap(), Some(event(1)), "{kind}");

            let replayed = s
                .replay(&Selection::Route("r".into()), 7_000)
                .await
                .unwrap();
            assert_eq!(replayed.len(), 1, "{kind}");
            assert_eq!(replayed[0].attempts, 0);
            assert_eq!(replayed[0].next_ms, 7_000);
            assert_eq!(replayed[0].key.as_deref(), Some("ka"));
            assert_eq!(s.pending().await.unwrap(), replayed, "{kind}");

            let dropped = s
                .drop_dead(&Selection::Ids(vec![c.id, 12345]))
                .await
                .unwrap();
            assert_eq!(dropped.len(), 1, "{kind}");
            assert!(s.dead_letters().await.unwrap().is_empty(), "{kind}");
            assert_eq!(s.event("other", c.id).await.unwrap(), None, "{kind}");
        }
    }

    #[tokio::test]
    async fn redb_keeps_everything_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/dir/s.redb");
        let (a, dead) = {
            let s = RedbStore::open(&path).unwrap();
            let a = s
                .enqueue(&event(1), meta("r", Some("k1")), Some(u64::MAX))
                .await
                .unwrap();
            let d = s.enqueue(&event(2), meta("r", None), None).await.unwrap();
            s.dead_letter(&d).await.unwrap();
            (a, d)
        };
        // The writer thread holds the database until its channel closes.
        let s = (0..100)
            .find_map(|_| match RedbStore::open(&path) {
                Ok(s) => Some(s),
                Err(_) => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    None
                }
            })
            .expect("reopen");
        assert_eq!(s.pending().await.unwrap(), vec![a.clone()]);
        assert_eq!(s.dead_letters().await.unwrap(), vec![dead.clone()]);
        assert_eq!(s.event("r", a.id).await.unwrap(), Some(event(1)));
        assert_eq!(s.claim("r", "k1", 5, 1).await.unwrap(), Claim::Duplicate);
        // New ids continue after the highest stored one.
        let next = s.enqueue(&event(3), meta("r", None), None).await.unwrap();
        assert!(next.id > dead.id);
    }

    #[test]
    fn redb_open_errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let corrupt = dir.path().join("corrupt.redb");
        std::fs::write(&corrupt, vec![0x5a; 64 * 1024]).unwrap();
        let dir_as_file = dir.path().join("a-dir");
        std::fs::create_dir(&dir_as_file).unwrap();
        let file = dir.path().join("plain");
        std::fs::write(&file, b"x").unwrap();
        for path in [corrupt, dir_as_file, file.join("under-a-file.redb")] {
            let err = RedbStore::open(&path)
                .err()
                .expect("open must fail")
                .to_string();
            assert!(
                err.starts_with(&format!("store.path {}: cannot open", path.display())),
                "{err}"
            );
        }
    }

    #[test]
    fn memory_marks_are_bounded() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let s = MemoryStore::with_capacity(3);
        rt.block_on(async {
            for (i, k) in ["a", "b", "c", "d"].iter().enumerate() {
                s.mark_delivered("r", k, 100 + i as u64).await.unwrap();
            }
            assert_eq!(s.marks_len(), 3);
            // The soonest to expire went first.
            assert_eq!(s.claim("r", "a", 0, 1).await.unwrap(), Claim::New);
            assert_eq!(s.claim("r", "d", 0, 1).await.unwrap(), Claim::Duplicate);
        });
    }
}
