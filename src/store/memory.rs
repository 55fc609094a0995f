//! The in-process store: fast, bounded, and gone on restart. Queue and hybrid modes refuse it
//! (config validation): their promise is that an accepted event survives a restart.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use super::{dedup_key, Claim, Event, InFlight, Meta, Selection, Store, StoreError};

/// At most this many delivered marks are kept; past it the soonest to expire go first. A few
/// hundred bytes each: about 200 MB at the limit.
pub const MAX_KEYS: usize = 1_000_000;

#[derive(Default)]
struct Marks {
    expires: HashMap<String, u64>,
    by_expiry: BTreeSet<(u64, String)>,
}

#[derive(Default)]
struct Spool {
    pending: BTreeMap<u64, (Event, Meta)>,
    dead: BTreeMap<u64, (Event, Meta)>,
}

pub struct MemoryStore {
    in_flight: InFlight,
    marks: Mutex<Marks>,
    spool: Mutex<Spool>,
    next_id: AtomicU64,
    max_keys: usize,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::with_capacity(MAX_KEYS)
    }

    pub fn with_capacity(max_keys: usize) -> Self {
        Self {
            in_flight: InFlight::default(),
            marks: Mutex::default(),
            spool: Mutex::default(),
            next_id: AtomicU64::new(1),
            max_keys: max_keys.max(1),
        }
    }

    fn marks(&self) -> std::sync::MutexGuard<'_, Marks> {
        self.marks.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn spool(&self) -> std::sync::MutexGuard<'_, Spool> {
        self.spool.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn delivered(&self, k: &str, now_ms: u64) -> bool {
        self.marks().expires.get(k).is_some_and(|&e| e > now_ms)
    }

    fn mark(&self, k: String, expires_ms: u64) {
        let mut m = self.marks();
        if let Some(old) = m.expires.insert(k.clone(), expires_ms) {
            m.by_expiry.remove(&(old, k.clone()));
        }
        m.by_expiry.insert((expires_ms, k));
        while m.expires.len() > self.max_keys {
            let Some((_, victim)) = m.by_expiry.pop_first() else {
                break;
            };
            m.expires.remove(&victim);
        }
    }

    /// Delivered marks currently kept.
    pub fn marks_len(&self) -> usize {
        self.marks().expires.len()
    }
}

impl Store for MemoryStore {
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
        if self.delivered(&k, now_ms) {
            self.in_flight.remove(&k);
            return Ok(Claim::Duplicate);
        }
        Ok(Claim::New)
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
        self.mark(k.clone(), expires_ms);
        self.in_flight.remove(&k);
        Ok(())
    }

    async fn enqueue(
        &self,
        event: &Event,
        mut meta: Meta,
        dedup_expires_ms: Option<u64>,
    ) -> Result<Meta, StoreError> {
        meta.id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.spool()
            .pending
            .insert(meta.id, (event.clone(), meta.clone()));
        if let (Some(exp), Some(key)) = (dedup_expires_ms, &meta.key) {
            let k = dedup_key(&meta.route, key);
            self.mark(k.clone(), exp);
            self.in_flight.remove(&k);
        }
        Ok(meta)
    }

    async fn event(&self, _route: &str, id: u64) -> Result<Option<Event>, StoreError> {
        let s = self.spool();
        Ok(s.pending
            .get(&id)
            .or_else(|| s.dead.get(&id))
            .map(|(e, _)| e.clone()))
    }

    async fn ack(&self, _route: &str, id: u64) -> Result<(), StoreError> {
        self.spool().pending.remove(&id);
        Ok(())
    }

    async fn reschedule(&self, meta: &Meta) -> Result<(), StoreError> {
        if let Some((_, m)) = self.spool().pending.get_mut(&meta.id) {
            *m = meta.clone();
        }
        Ok(())
    }

    async fn dead_letter(&self, meta: &Meta) -> Result<(), StoreError> {
        let mut s = self.spool();
        if let Some((e, _)) = s.pending.remove(&meta.id) {
            s.dead.insert(meta.id, (e, meta.clone()));
        }
        Ok(())
    }

    async fn pending(&self) -> Result<Vec<Meta>, StoreError> {
        Ok(self
            .spool()
            .pending
            .values()
            .map(|(_, m)| m.clone())
            .collect())
    }

    async fn dead_letters(&self) -> Result<Vec<Meta>, StoreError> {
        Ok(self.spool().dead.values().map(|(_, m)| m.clone()).collect())
    }

    async fn replay(&self, which: &Selection, now_ms: u64) -> Result<Vec<Meta>, StoreError> {
        let mut s = self.spool();
        let ids: Vec<u64> = s
            .dead
            .values()
            .filter(|(_, m)| which.matches(m))
            .map(|(_, m)| m.id)
            .collect();
        let mut out = Vec::new();
        for id in ids {
            if let Some((e, mut m)) = s.dead.remove(&id) {
                m.attempts = 0;
                m.next_ms = now_ms;
                out.push(m.clone());
                s.pending.insert(id, (e, m));
            }
        }
        Ok(out)
    }

    async fn drop_dead(&self, which: &Selection) -> Result<Vec<Meta>, StoreError> {
        let mut s = self.spool();
        let ids: Vec<u64> = s
            .dead
            .values()
            .filter(|(_, m)| which.matches(m))
            .map(|(_, m)| m.id)
            .collect();
        Ok(ids
            .into_iter()
            .filter_map(|id| s.dead.remove(&id).map(|(_, m)| m))
            .collect())
    }

    async fn purge_expired(&self, now_ms: u64) -> Result<usize, StoreError> {
        let mut m = self.marks();
        let mut n = 0;
        while let Some((exp, _)) = m.by_expiry.first() {
            if *exp > now_ms {
                break;
            }
            if let Some((_, k)) = m.by_expiry.pop_first() {
                m.expires.remove(&k);
                n += 1;
            }
        }
        Ok(n)
    }
}
