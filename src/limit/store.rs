//! Per-address bucket state with a hard bound on its size.
//!
//! An attacker choosing source addresses (cheap with IPv6) must not be able to grow memory
//! without limit: once `cap` addresses are tracked, addresses not yet seen share one overflow
//! bucket until idle ones are swept away. Addresses already tracked keep their own bucket, so
//! a known sender is not punished for a flood from elsewhere.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use governor::nanos::Nanos;
use governor::state::keyed::ShrinkableKeyedStateStore;
use governor::state::{InMemoryState, NotKeyed, StateStore};

/// A governor state store keyed by address, bounded to `cap` keys plus one overflow bucket.
pub struct KeyStore {
    map: DashMap<IpAddr, InMemoryState>,
    /// Counted separately: `DashMap::len` locks every shard.
    len: AtomicUsize,
    cap: usize,
    overflow: InMemoryState,
}

impl KeyStore {
    pub fn new(cap: usize) -> Self {
        Self {
            map: DashMap::new(),
            len: AtomicUsize::new(0),
            cap,
            overflow: InMemoryState::default(),
        }
    }

    /// Claims room for one more key, or says the store is full.
    fn reserve(&self) -> bool {
        self.len
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.cap).then_some(n + 1)
            })
            .is_ok()
    }

    /// The state's theoretical arrival time, read without changing it.
    fn arrival(state: &InMemoryState) -> Option<Nanos> {
        match state.measure_and_replace(&NotKeyed::NonKey, Err::<((), Nanos), _>) {
            Ok(()) => None,
            Err(t) => t,
        }
    }
}

impl StateStore for KeyStore {
    type Key = IpAddr;

    fn measure_and_replace<T, F, E>(&self, key: &IpAddr, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        if let Some(state) = self.map.get(key) {
            return state.measure_and_replace(&NotKeyed::NonKey, f);
        }
        if !self.reserve() {
            return self.overflow.measure_and_replace(&NotKeyed::NonKey, f);
        }
        match self.map.entry(*key) {
            Entry::Occupied(e) => {
                // Another request inserted it first: give the reservation back.
                self.len.fetch_sub(1, Ordering::AcqRel);
                e.get().measure_and_replace(&NotKeyed::NonKey, f)
            }
            Entry::Vacant(v) => v
                .insert(InMemoryState::default())
                .measure_and_replace(&NotKeyed::NonKey, f),
        }
    }
}

impl ShrinkableKeyedStateStore<IpAddr> for KeyStore {
    fn retain_recent(&self, drop_below: Nanos) {
        self.map.retain(|_, state| {
            let keep = Self::arrival(state).is_some_and(|t| t > drop_below);
            if !keep {
                self.len.fetch_sub(1, Ordering::AcqRel);
            }
            keep
        });
    }

    /// Gives memory back once most of the table is empty, not on every sweep.
    fn shrink_to_fit(&self) {
        if self.map.len().saturating_mul(4) < self.map.capacity() {
            self.map.shrink_to_fit();
        }
    }

    fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
