//! `store:` as loaded: which kind of store, and where.

use std::path::PathBuf;
use std::time::Duration;

/// Where dedup keys and the spool live (`store:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// In process, bounded; lost on restart.
    Memory,
    /// A redb file: durable across restarts and crashes.
    Redb { path: PathBuf },
    /// A Redis server shared by every replica: dedup keys, the route limits and the queue.
    Redis {
        url: RedisUrl,
        prefix: String,
        /// How long a replica's heartbeat lasts (`store.lease`): the time to notice a replica
        /// has died, after which another adopts its queued events.
        lease: Duration,
        /// `WAIT` after the writes that back a promise (`store.min_replicas`).
        replicas: Replicas,
    },
}

/// How many replicas must hold a write that backs a promise (a 202, a dedup mark, a dead
/// letter) before it counts as done, and how long to wait for them (`store.min_replicas`,
/// `store.replica_timeout`). Redis replicates asynchronously: without this, a primary that
/// dies right after answering takes the write with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replicas {
    /// 0: no `WAIT`.
    pub min: u32,
    pub timeout: Duration,
}

impl Default for Replicas {
    fn default() -> Self {
        Self {
            min: 0,
            timeout: Duration::from_millis(500),
        }
    }
}

impl StoreConfig {
    /// Whether accepted events survive a restart of this process.
    pub fn durable(&self) -> bool {
        matches!(self, Self::Redb { .. } | Self::Redis { .. })
    }
}

/// `store.url`: may carry a password, so its `Debug` shows only the scheme.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl(pub String);

impl std::fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = self.0.split_once("://").map_or("?", |(s, _)| s);
        write!(f, "RedisUrl({scheme}://<redacted>)")
    }
}
