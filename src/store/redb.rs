//! The redb store: one file, durable, crash-safe (copy-on-write B-trees, checksummed commits).
//!
//! Every write goes through one writer thread that commits whatever has queued up in one
//! fsync'd transaction (group commit): a write returns only once it is on disk, and a burst of
//! writers shares one fsync instead of taking turns at one each. Reads run on the blocking pool.
//!
//! A file written before redb 3 (file format v2: hookgate on redb 2) is upgraded in place when
//! it is opened, and its dedup expiry index rebuilt; both are logged.

// The helpers below pass redb's own (large) error up to the one place that turns it into a
// `StoreError`; boxing it there would only add an allocation to the failure path.
#![allow(clippy::result_large_err)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use redb::{
    Database, DatabaseError, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    TableDefinition, TableError,
};
use tokio::sync::{mpsc, oneshot};

use super::{dedup_key, Claim, Event, InFlight, Meta, Selection, Store, StoreError};

/// id -> encoded [`Event`]; written once.
const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
/// id -> encoded [`Meta`] of events awaiting delivery.
const PENDING: TableDefinition<u64, &[u8]> = TableDefinition::new("pending");
/// id -> encoded [`Meta`] of dead letters.
const DEAD: TableDefinition<u64, &[u8]> = TableDefinition::new("dead");
/// route\0key -> unix ms until which the key counts as delivered.
const DELIVERED: TableDefinition<&str, u64> = TableDefinition::new("delivered");
/// Routes an operator paused.
const PAUSED: TableDefinition<&str, ()> = TableDefinition::new("paused");
/// (expiry, route\0key): finds expired marks without a full scan.
const EXPIRY: TableDefinition<(u64, &str), ()> = TableDefinition::new("delivered_expiry");

/// Readiness probes: one key, rewritten by each probe (`AnyStore::ready`).
const PROBE: TableDefinition<&str, u64> = TableDefinition::new("probe");
const PROBE_KEY: &str = "readyz";

/// Writes per commit at most; more wait for the next one.
const MAX_BATCH: usize = 512;
/// Expired marks removed per purge call at most, to keep one commit small.
const MAX_PURGE: usize = 10_000;

fn backend(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Backend(e.into().to_string())
}

enum Op {
    Mark {
        key: String,
        expires_ms: u64,
    },
    Enqueue {
        event: Vec<u8>,
        meta: Meta,
        dedup_expires_ms: Option<u64>,
    },
    Ack(u64),
    Reschedule(Meta),
    DeadLetter(Meta),
    Replay(Selection, u64),
    Drop(Selection),
    Purge(u64),
    /// Writes the probe key with this value.
    Probe(u64),
}

enum Done {
    Unit,
    Meta(Meta),
    Metas(Vec<Meta>),
    Count(usize),
}

type Reply = oneshot::Sender<Result<Done, StoreError>>;

pub struct RedbStore {
    db: Arc<Database>,
    path: PathBuf,
    in_flight: InFlight,
    writer: mpsc::UnboundedSender<(Op, Reply)>,
}

impl RedbStore {
    /// Opens (or creates) the file. Any failure names the path; nothing panics on a bad file.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let open_err = |message: String| StoreError::Open {
            path: path.to_path_buf(),
            message,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| open_err(format!("cannot create directory {}: {e}", dir.display())))?;
        }
        let db = match create(path) {
            Ok(Err(DatabaseError::UpgradeRequired(version))) => {
                upgrade(path, version).map_err(open_err)?;
                create(path)
            }
            opened => opened,
        }
        .map_err(|_| open_err(NOT_REDB.into()))?
        .map_err(|e| open_err(e.to_string()))?;
        let next_id = (|| -> Result<u64, redb::Error> {
            let tx = db.begin_write()?;
            let mut max = 0;
            {
                tx.open_table(DELIVERED)?;
                match tx.open_table(EXPIRY) {
                    Err(TableError::TableTypeMismatch { .. }) => {
                        rebuild_expiry(&tx, path)?;
                    }
                    opened => {
                        opened?;
                    }
                }
                for def in [EVENTS, PENDING, DEAD] {
                    let t = tx.open_table(def)?;
                    let last = t.last()?.map(|(k, _)| k.value());
                    max = max.max(last.unwrap_or(0));
                }
            }
            tx.commit()?;
            Ok(max + 1)
        })()
        .map_err(|e| open_err(e.to_string()))?;
        let db = Arc::new(db);
        let (tx, rx) = mpsc::unbounded_channel();
        let writer_db = db.clone();
        std::thread::Builder::new()
            .name("hookgate-store".into())
            .spawn(move || write_loop(&writer_db, rx, AtomicU64::new(next_id)))
            .map_err(|e| open_err(format!("cannot start the writer thread: {e}")))?;
        Ok(Self {
            db,
            path: path.to_path_buf(),
            in_flight: InFlight::default(),
            writer: tx,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open file, for the journal that lives in it too (a redb file opens only once).
    pub fn database(&self) -> Arc<Database> {
        self.db.clone()
    }

    /// Writes a fresh value under the probe key through the writer (one committed
    /// transaction) and reads it back: the file takes writes and returns what was written.
    pub async fn probe(&self) -> Result<(), StoreError> {
        static NONCE: AtomicU64 = AtomicU64::new(1);
        let value = NONCE.fetch_add(1, Ordering::Relaxed);
        self.write(Op::Probe(value)).await?;
        let read = self
            .read(|db| {
                let tx = db.begin_read().map_err(backend)?;
                let t = tx.open_table(PROBE).map_err(backend)?;
                Ok(t.get(PROBE_KEY).map_err(backend)?.map(|v| v.value()))
            })
            .await?;
        // A later probe may have overwritten it meanwhile: at least this one's value.
        match read {
            Some(v) if v >= value => Ok(()),
            other => Err(StoreError::Backend(format!(
                "the readiness probe read back {other:?}, not the {value} it wrote"
            ))),
        }
    }

    async fn write(&self, op: Op) -> Result<Done, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.writer.send((op, tx)).map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|e| StoreError::Backend(format!("read task failed: {e}")))?
    }
}

/// What a file that makes redb panic is.
const NOT_REDB: &str = "the file is not a readable redb database (corrupt?)";

/// Opens (or creates) the file with redb. redb asserts on some malformed files instead of
/// returning an error: a corrupt file must be a clear start-up error, not a crash, so a panic
/// is caught and returned as the outer `Err`.
fn create(path: &Path) -> std::thread::Result<Result<Database, DatabaseError>> {
    std::panic::catch_unwind(|| Database::create(path))
}

/// Upgrades a file written before redb 3 (file format v2, hookgate before redb 4) to the
/// current format, in place, with the last redb that reads both. The tables and their data are
/// kept as they are; [`rebuild_expiry`] then redoes the one index whose encoding changed.
fn upgrade(path: &Path, version: u8) -> Result<(), String> {
    let upgraded = std::panic::catch_unwind(|| -> Result<bool, String> {
        let mut db = redb2::Database::open(path).map_err(|e| e.to_string())?;
        db.upgrade().map_err(|e| e.to_string())
    })
    .map_err(|_| NOT_REDB.to_string())?
    .map_err(|e| format!("cannot upgrade it from redb file format v{version}: {e}"))?;
    if upgraded {
        tracing::info!(
            path = %path.display(),
            from = version,
            to = 3,
            "store file upgraded to the current redb file format"
        );
    }
    Ok(())
}

/// Rebuilds the expiry index from the delivered marks: a file from before redb 3 has it with
/// the old encoding of tuple keys, which redb now refuses to open as `(u64, &str)`.
fn rebuild_expiry(tx: &redb::WriteTransaction, path: &Path) -> Result<(), redb::Error> {
    tx.delete_table(EXPIRY)?;
    let delivered = tx.open_table(DELIVERED)?;
    let mut expiry = tx.open_table(EXPIRY)?;
    let mut marks = 0usize;
    for row in delivered.iter()? {
        let (key, exp) = row?;
        expiry.insert((exp.value(), key.value()), ())?;
        marks += 1;
    }
    tracing::info!(
        path = %path.display(),
        marks,
        "store dedup expiry index rebuilt in the current encoding"
    );
    Ok(())
}

fn write_loop(db: &Database, mut rx: mpsc::UnboundedReceiver<(Op, Reply)>, next_id: AtomicU64) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let first_id = next_id.load(Ordering::Relaxed);
        match commit(db, &batch, &next_id) {
            Ok(results) => {
                for ((_, reply), result) in batch.drain(..).zip(results) {
                    let _ = reply.send(Ok(result));
                }
            }
            Err(e) => {
                // Nothing of this batch is on disk; ids handed out in it are free again.
                next_id.store(first_id, Ordering::Relaxed);
                tracing::error!(error = %e, "store commit failed");
                for (_, reply) in batch.drain(..) {
                    let _ = reply.send(Err(StoreError::Backend(e.clone())));
                }
            }
        }
    }
}

/// Applies a batch in one transaction and commits it (fsync) before anyone hears back.
fn commit(db: &Database, batch: &[(Op, Reply)], next_id: &AtomicU64) -> Result<Vec<Done>, String> {
    let run = || -> Result<Vec<Done>, redb::Error> {
        let tx = db.begin_write()?;
        let mut out = Vec::with_capacity(batch.len());
        {
            let mut events = tx.open_table(EVENTS)?;
            let mut pending = tx.open_table(PENDING)?;
            let mut dead = tx.open_table(DEAD)?;
            let mut delivered = tx.open_table(DELIVERED)?;
            let mut expiry = tx.open_table(EXPIRY)?;
            let mut probe = tx.open_table(PROBE)?;
            for (op, _) in batch {
                out.push(match op {
                    Op::Mark { key, expires_ms } => {
                        mark(&mut delivered, &mut expiry, key, *expires_ms)?;
                        Done::Unit
                    }
                    Op::Enqueue {
                        event,
                        meta,
                        dedup_expires_ms,
                    } => {
                        let mut meta = meta.clone();
                        meta.id = next_id.fetch_add(1, Ordering::Relaxed);
                        events.insert(meta.id, event.as_slice())?;
                        pending.insert(meta.id, meta.encode().as_slice())?;
                        if let (Some(exp), Some(key)) = (dedup_expires_ms, &meta.key) {
                            mark(
                                &mut delivered,
                                &mut expiry,
                                &dedup_key(&meta.route, key),
                                *exp,
                            )?;
                        }
                        Done::Meta(meta)
                    }
                    Op::Ack(id) => {
                        pending.remove(*id)?;
                        events.remove(*id)?;
                        Done::Unit
                    }
                    Op::Reschedule(meta) => {
                        if pending.get(meta.id)?.is_some() {
                            pending.insert(meta.id, meta.encode().as_slice())?;
                        }
                        Done::Unit
                    }
                    Op::DeadLetter(meta) => {
                        if pending.remove(meta.id)?.is_some() {
                            dead.insert(meta.id, meta.encode().as_slice())?;
                        }
                        Done::Unit
                    }
                    Op::Replay(which, now_ms) => {
                        let chosen = select(&dead, which)?;
                        for m in &chosen {
                            dead.remove(m.id)?;
                        }
                        let replayed: Vec<Meta> = chosen
                            .into_iter()
                            .map(|mut m| {
                                m.attempts = 0;
                                m.next_ms = *now_ms;
                                m
                            })
                            .collect();
                        for m in &replayed {
                            pending.insert(m.id, m.encode().as_slice())?;
                        }
                        Done::Metas(replayed)
                    }
                    Op::Drop(which) => {
                        let chosen = select(&dead, which)?;
                        for m in &chosen {
                            dead.remove(m.id)?;
                            events.remove(m.id)?;
                        }
                        Done::Metas(chosen)
                    }
                    Op::Purge(now_ms) => {
                        let expired: Vec<(u64, String)> = expiry
                            .range::<(u64, &str)>(..(now_ms.saturating_add(1), ""))?
                            .take(MAX_PURGE)
                            .map(|r| r.map(|(k, _)| (k.value().0, k.value().1.to_string())))
                            .collect::<Result<_, _>>()?;
                        for (exp, key) in &expired {
                            expiry.remove((*exp, key.as_str()))?;
                            let current = delivered.get(key.as_str())?.map(|v| v.value());
                            if current == Some(*exp) {
                                delivered.remove(key.as_str())?;
                            }
                        }
                        Done::Count(expired.len())
                    }
                    Op::Probe(value) => {
                        probe.insert(PROBE_KEY, *value)?;
                        Done::Unit
                    }
                });
            }
        }
        tx.commit()?;
        Ok(out)
    };
    run().map_err(|e| e.to_string())
}

/// Marks `key` delivered until `exp`, keeping the expiry index in step.
fn mark(
    delivered: &mut redb::Table<&str, u64>,
    expiry: &mut redb::Table<(u64, &str), ()>,
    key: &str,
    exp: u64,
) -> Result<(), redb::Error> {
    let old = delivered.insert(key, exp)?.map(|v| v.value());
    if let Some(old) = old {
        expiry.remove((old, key))?;
    }
    expiry.insert((exp, key), ())?;
    Ok(())
}

/// The dead letters `which` selects, skipping any that cannot be decoded (logged).
fn select(
    dead: &impl ReadableTable<u64, &'static [u8]>,
    which: &Selection,
) -> Result<Vec<Meta>, redb::Error> {
    let mut out = Vec::new();
    if let Selection::Ids(ids) = which {
        for id in ids {
            if let Some(v) = dead.get(*id)? {
                if let Ok(m) = Meta::decode(v.value()) {
                    out.push(m);
                }
            }
        }
        return Ok(out);
    }
    for row in dead.iter()? {
        let (_, v) = row?;
        match Meta::decode(v.value()) {
            Ok(m) if which.matches(&m) => out.push(m),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "skipping unreadable dead letter"),
        }
    }
    Ok(out)
}

fn metas(db: &Database, def: TableDefinition<u64, &[u8]>) -> Result<Vec<Meta>, StoreError> {
    let tx = db.begin_read().map_err(backend)?;
    let t = tx.open_table(def).map_err(backend)?;
    let mut out = Vec::with_capacity(usize::try_from(t.len().map_err(backend)?).unwrap_or(0));
    for row in t.iter().map_err(backend)? {
        let (_, v) = row.map_err(backend)?;
        match Meta::decode(v.value()) {
            Ok(m) => out.push(m),
            Err(e) => tracing::error!(error = %e, "skipping unreadable queue entry"),
        }
    }
    Ok(out)
}

impl Store for RedbStore {
    async fn claim(
        &self,
        route: &str,
        key: &str,
        now_ms: u64,
        lease_ms: u64,
    ) -> Result<Claim, StoreError> {
        let k = dedup_key(route, key);
        if !self.in_flight.try_take(&k, now_ms, lease_ms) {
            return Ok(Claim::InFlight);
        }
        let k2 = k.clone();
        let found = self
            .read(move |db| {
                let tx = db.begin_read().map_err(backend)?;
                let t = tx.open_table(DELIVERED).map_err(backend)?;
                Ok(t.get(k2.as_str()).map_err(backend)?.map(|v| v.value()))
            })
            .await;
        match found {
            Ok(Some(exp)) if exp > now_ms => {
                self.in_flight.remove(&k);
                Ok(Claim::Duplicate)
            }
            Ok(_) => Ok(Claim::New),
            Err(e) => {
                self.in_flight.remove(&k);
                Err(e)
            }
        }
    }

    fn release(&self, route: &str, key: &str) {
        self.in_flight.remove(&dedup_key(route, key));
    }

    async fn mark_delivered(
        &self,
        route: &str,
        key: &str,
        expires_ms: u64,
    ) -> Result<(), StoreError> {
        let k = dedup_key(route, key);
        let result = self
            .write(Op::Mark {
                key: k.clone(),
                expires_ms,
            })
            .await;
        self.in_flight.remove(&k);
        result.map(|_| ())
    }

    async fn enqueue(
        &self,
        event: &Event,
        meta: Meta,
        dedup_expires_ms: Option<u64>,
    ) -> Result<Meta, StoreError> {
        let k = meta.key.as_ref().map(|key| dedup_key(&meta.route, key));
        let result = self
            .write(Op::Enqueue {
                event: event.encode(),
                meta,
                dedup_expires_ms,
            })
            .await;
        if let (Some(k), Some(_)) = (k, dedup_expires_ms) {
            if result.is_ok() {
                self.in_flight.remove(&k);
            }
        }
        match result? {
            Done::Meta(m) => Ok(m),
            _ => Err(StoreError::Backend("unexpected writer reply".into())),
        }
    }

    async fn event(&self, _route: &str, id: u64) -> Result<Option<Event>, StoreError> {
        self.read(move |db| {
            let tx = db.begin_read().map_err(backend)?;
            let t = tx.open_table(EVENTS).map_err(backend)?;
            let row = t.get(id).map_err(backend)?;
            Ok(match row {
                Some(v) => Some(Event::decode(v.value())?),
                None => None,
            })
        })
        .await
    }

    async fn ack(&self, _route: &str, id: u64) -> Result<(), StoreError> {
        self.write(Op::Ack(id)).await.map(|_| ())
    }

    async fn reschedule(&self, meta: &Meta) -> Result<(), StoreError> {
        self.write(Op::Reschedule(meta.clone())).await.map(|_| ())
    }

    async fn dead_letter(&self, meta: &Meta) -> Result<(), StoreError> {
        self.write(Op::DeadLetter(meta.clone())).await.map(|_| ())
    }

    async fn pending(&self) -> Result<Vec<Meta>, StoreError> {
        self.read(|db| metas(db, PENDING)).await
    }

    async fn dead_letters(&self) -> Result<Vec<Meta>, StoreError> {
        self.read(|db| metas(db, DEAD)).await
    }

    async fn replay(&self, which: &Selection, now_ms: u64) -> Result<Vec<Meta>, StoreError> {
        match self.write(Op::Replay(which.clone(), now_ms)).await? {
            Done::Metas(m) => Ok(m),
            _ => Err(StoreError::Backend("unexpected writer reply".into())),
        }
    }

    async fn drop_dead(&self, which: &Selection) -> Result<Vec<Meta>, StoreError> {
        match self.write(Op::Drop(which.clone())).await? {
            Done::Metas(m) => Ok(m),
            _ => Err(StoreError::Backend("unexpected writer reply".into())),
        }
    }

    async fn purge_expired(&self, now_ms: u64) -> Result<usize, StoreError> {
        match self.write(Op::Purge(now_ms)).await? {
            Done::Count(n) => Ok(n),
            _ => Err(StoreError::Backend("unexpected writer reply".into())),
        }
    }

    async fn paused(&self) -> Result<Vec<String>, StoreError> {
        self.read(|db| {
            let tx = db.begin_read().map_err(backend)?;
            let table = match tx.open_table(PAUSED) {
                Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                t => t.map_err(backend)?,
            };
            let mut out = Vec::new();
            for item in table.iter().map_err(backend)? {
                out.push(item.map_err(backend)?.0.value().to_string());
            }
            Ok(out)
        })
        .await
    }

    /// Rare (an operator's call): its own fsync'd commit, beside the writer's.
    async fn set_paused(&self, route: &str, paused: bool) -> Result<(), StoreError> {
        let route = route.to_string();
        self.read(move |db| {
            let tx = db.begin_write().map_err(backend)?;
            {
                let mut table = tx.open_table(PAUSED).map_err(backend)?;
                if paused {
                    table.insert(route.as_str(), ()).map_err(backend)?;
                } else {
                    table.remove(route.as_str()).map_err(backend)?;
                }
            }
            tx.commit().map_err(backend)
        })
        .await
    }
}
