//! The journal in the store's redb file: it outlives a restart beside the queue it describes.
//!
//! The writer commits one batch per tick without an fsync (`Durability::None`) and makes the
//! file durable at most once a second, so journaling never adds an fsync per event (a crash
//! loses at most the last second of events, never the queue, whose own commits are fsync'd).
//! Outcome counts per minute are kept beside the events, so the routes summary reads an
//! hour's worth of counters rather than an hour's worth of events.

// redb's own (large) error is passed up to the one place that turns it into a `JournalError`.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata};
use redb::{ReadTransaction, TableDefinition};

use super::query::Query;
use super::ring::Evicted;
use super::stored::{self, Update};
use super::{Entry, JournalError};

/// id -> stored event.
const EVENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("journal");
/// queue link -> unix ms of the last update, then the update lines.
const UPDATES: TableDefinition<&str, &[u8]> = TableDefinition::new("journal_updates");
/// (unix minute, route\0outcome) -> events.
const MINUTES: TableDefinition<(u64, &str), u64> = TableDefinition::new("journal_minutes");

/// Minutes of counters kept: the routes summary looks back an hour.
const KEEP_MINUTES: u64 = 61;
/// Events removed per expiry pass at most, to keep one commit small.
const MAX_EXPIRE: usize = 10_000;

fn backend(e: impl Into<redb::Error>) -> JournalError {
    JournalError::Backend(e.into().to_string())
}

pub struct RedbJournal {
    db: Arc<Database>,
    max_events: u64,
    max_age_ms: u64,
}

impl RedbJournal {
    pub fn new(db: Arc<Database>, max_events: usize, max_age_ms: u64) -> Self {
        Self {
            db,
            max_events: (max_events as u64).max(1),
            max_age_ms,
        }
    }

    /// Writes one batch; `durable` makes this commit (and those before it) reach the disk.
    /// Returns what left the journal and how many events it holds.
    pub fn write(
        &self,
        records: &[Entry],
        updates: &[(String, Update)],
        now_ms: u64,
        expire: bool,
        durable: bool,
    ) -> Result<(Evicted, u64), JournalError> {
        let run = || -> Result<(Evicted, u64), redb::Error> {
            let mut tx = self.db.begin_write()?;
            tx.set_durability(if durable {
                Durability::Immediate
            } else {
                Durability::None
            })?;
            let mut out = Evicted::default();
            let count;
            {
                let mut events = tx.open_table(EVENTS)?;
                let mut lines = tx.open_table(UPDATES)?;
                let mut minutes = tx.open_table(MINUTES)?;
                for e in records {
                    events.insert(e.id.as_str(), stored::encode(e).as_slice())?;
                    if let Some(r) = &e.route {
                        let key = format!("{r}\0{}", e.outcome);
                        let minute = e.received_ms / 60_000;
                        let n = minutes
                            .get((minute, key.as_str()))?
                            .map_or(0, |v| v.value());
                        minutes.insert((minute, key.as_str()), n + 1)?;
                    }
                }
                for (link, u) in updates {
                    let mut value = match lines.get(link.as_str())? {
                        Some(v) => v.value().to_vec(),
                        None => vec![0; 8],
                    };
                    value[..8].copy_from_slice(&now_ms.to_le_bytes());
                    value.extend(stored::update_line(u));
                    lines.insert(link.as_str(), value.as_slice())?;
                }
                while events.len()? > self.max_events {
                    let Some((_, v)) = events.pop_first()? else {
                        break;
                    };
                    if let Some(link) = stored::decode(v.value()).as_ref().and_then(stored::link_of)
                    {
                        lines.remove(link.as_str())?;
                    }
                    out.full += 1;
                }
                if expire {
                    let cutoff = now_ms.saturating_sub(self.max_age_ms);
                    let bound = format!("{:012x}", cutoff & 0xffff_ffff_ffff);
                    for _ in 0..MAX_EXPIRE {
                        let old = events
                            .first()?
                            .is_some_and(|(k, _)| k.value() < bound.as_str());
                        if !old {
                            break;
                        }
                        events.pop_first()?;
                        out.expired += 1;
                    }
                    lines.retain(|_, v| {
                        v.get(..8)
                            .and_then(|b| b.try_into().ok())
                            .is_some_and(|b| u64::from_le_bytes(b) >= cutoff)
                    })?;
                    let first_minute = (now_ms / 60_000).saturating_sub(KEEP_MINUTES);
                    minutes.retain(|(m, _), _| m >= first_minute)?;
                }
                count = events.len()?;
            }
            tx.commit()?;
            Ok((out, count))
        };
        run().map_err(backend)
    }

    pub fn get(&self, id: &str) -> Result<Option<Entry>, JournalError> {
        let tx = self.db.begin_read().map_err(backend)?;
        let Some(events) = open(&tx, EVENTS)? else {
            return Ok(None);
        };
        let Some(v) = events.get(id).map_err(backend)? else {
            return Ok(None);
        };
        let Some(mut e) = stored::decode(v.value()) else {
            return Ok(None);
        };
        merge(&tx, &mut e)?;
        Ok(Some(e))
    }

    /// Newest first, at most `limit`; a scan bounded by `max_events`.
    pub fn list(&self, q: &Query, limit: usize) -> Result<Vec<Entry>, JournalError> {
        let tx = self.db.begin_read().map_err(backend)?;
        let Some(events) = open(&tx, EVENTS)? else {
            return Ok(Vec::new());
        };
        let range = match q.before.as_deref() {
            Some(b) => events.range(..b),
            None => events.range::<&str>(..),
        }
        .map_err(backend)?;
        let mut out = Vec::new();
        for item in range.rev() {
            let (_, v) = item.map_err(backend)?;
            let Some(mut e) = stored::decode(v.value()) else {
                continue;
            };
            if q.since_ms.is_some_and(|t| e.received_ms < t) {
                break;
            }
            merge(&tx, &mut e)?;
            if q.matches(&e) {
                out.push(e);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Events by (route, outcome, unix minute) from `first_minute` on.
    pub fn minutes(
        &self,
        first_minute: u64,
    ) -> Result<Vec<(String, String, u64, u64)>, JournalError> {
        let tx = self.db.begin_read().map_err(backend)?;
        let Some(minutes) = open(&tx, MINUTES)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for item in minutes.range((first_minute, "")..).map_err(backend)? {
            let (k, n) = item.map_err(backend)?;
            let (minute, key) = k.value();
            if let Some((route, outcome)) = key.split_once('\0') {
                out.push((route.to_string(), outcome.to_string(), minute, n.value()));
            }
        }
        Ok(out)
    }
}

/// A table of a read transaction; `None` before the journal's first write made it.
fn open<K: redb::Key + 'static, V: redb::Value + 'static>(
    tx: &ReadTransaction,
    def: TableDefinition<K, V>,
) -> Result<Option<redb::ReadOnlyTable<K, V>>, JournalError> {
    match tx.open_table(def) {
        Ok(t) => Ok(Some(t)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(backend(e)),
    }
}

/// Applies a queued event's updates.
fn merge(tx: &ReadTransaction, e: &mut Entry) -> Result<(), JournalError> {
    let Some(link) = stored::link_of(e) else {
        return Ok(());
    };
    if let Some(lines) = open(tx, UPDATES)? {
        if let Some(v) = lines.get(link.as_str()).map_err(backend)? {
            stored::apply(e, v.value().get(8..).unwrap_or_default());
        }
    }
    Ok(())
}
