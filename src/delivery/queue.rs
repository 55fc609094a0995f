//! One route's spool index: what is due when, and how many attempts may run at once.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, Semaphore};

use crate::store::Meta;

#[derive(Default)]
pub(super) struct Index {
    /// (due ms, id) of events waiting for their next attempt.
    pub(super) due: BTreeSet<(u64, u64)>,
    /// Every event of the route not yet delivered or dead, including those in flight.
    pub(super) items: HashMap<u64, Meta>,
}

pub(super) struct RouteQueue {
    pub(super) index: Mutex<Index>,
    pub(super) notify: Notify,
    pub(super) permits: Arc<Semaphore>,
}

impl RouteQueue {
    pub(super) fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn schedule(&self, meta: Meta) {
        let mut idx = self.index();
        idx.due.insert((meta.next_ms, meta.id));
        idx.items.insert(meta.id, meta);
        drop(idx);
        self.notify.notify_one();
    }

    /// Drops the event from the index; whether it was there.
    pub(super) fn forget(&self, id: u64) -> bool {
        let mut idx = self.index();
        match idx.items.remove(&id) {
            Some(m) => {
                // Usually already taken off `due` by the dispatcher; this covers the rest.
                idx.due.remove(&(m.next_ms, id));
                true
            }
            None => false,
        }
    }
}
