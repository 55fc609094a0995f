//! The memory ring's index: one fixed-size record per event, oldest first, in a single mapping
//! that asks for transparent huge pages, as [`super::arena`] does for the events themselves.
//!
//! Why not a `VecDeque` of structs: a full ring writes each record over one written
//! `max_events` events earlier, seconds ago, and the first write to such a 4 KiB page is slow on
//! the machines measured (see `arena.rs`). As a deque of 88-byte structs the index cost as much
//! per request as packing and copying the event itself.

use memmap2::MmapMut;

use super::arena::{self, Place};

/// Bytes per record: the event's place, when it was received, route and outcome (as indexes
/// into the ring's names) and its queue id.
const RECORD: usize = 40;

/// What the ring reads of an event without unpacking it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub place: Place,
    pub received_ms: u64,
    /// Index of the route's name; `None` for a request refused before routing.
    pub route: Option<u32>,
    /// Index of the outcome's name.
    pub outcome: u32,
    pub queue_id: Option<u64>,
}

impl Slot {
    /// `None` when the place does not fit a record (an event of 4 GiB or more).
    fn encode(&self) -> Option<[u8; RECORD]> {
        let mut r = [0u8; RECORD];
        r[..12].copy_from_slice(&self.place.encode()?);
        r[12..16].copy_from_slice(&self.route.map_or(u32::MAX, |i| i).to_le_bytes());
        r[16..20].copy_from_slice(&self.outcome.to_le_bytes());
        r[20] = u8::from(self.queue_id.is_some());
        r[24..32].copy_from_slice(&self.received_ms.to_le_bytes());
        r[32..40].copy_from_slice(&self.queue_id.unwrap_or(0).to_le_bytes());
        Some(r)
    }

    fn decode(r: &[u8]) -> Self {
        let u32_at = |i: usize| {
            r.get(i..i + 4)
                .and_then(|b| b.try_into().ok())
                .map_or(0, u32::from_le_bytes)
        };
        let u64_at = |i: usize| {
            r.get(i..i + 8)
                .and_then(|b| b.try_into().ok())
                .map_or(0, u64::from_le_bytes)
        };
        let place = r
            .get(..12)
            .and_then(|b| b.try_into().ok())
            .map_or_else(Place::default, Place::decode);
        let route = u32_at(12);
        Self {
            place,
            received_ms: u64_at(24),
            route: (route != u32::MAX).then_some(route),
            outcome: u32_at(16),
            queue_id: (r.get(20) == Some(&1)).then(|| u64_at(32)),
        }
    }
}

/// Where the records live: mapped where the kernel allows it, else on the heap.
enum Memory {
    Mapped(MmapMut),
    Heap(Vec<u8>),
}

impl Memory {
    fn bytes(&self) -> &[u8] {
        match self {
            Self::Mapped(m) => m,
            Self::Heap(v) => v,
        }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        match self {
            Self::Mapped(m) => m,
            Self::Heap(v) => v,
        }
    }
}

/// A ring of at most `capacity` records, oldest first.
pub struct Slots {
    memory: Memory,
    capacity: usize,
    /// Position of the oldest record.
    head: usize,
    len: usize,
}

impl Slots {
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let bytes = capacity.saturating_mul(RECORD);
        // Mapped memory is only touched as records are written: a large, mostly empty ring
        // costs its address space, not its size. The kernel puts only whole, aligned 2 MiB
        // ranges on huge pages, and aligns only mappings of whole huge pages.
        let mapped = match bytes.checked_next_multiple_of(arena::HUGE_PAGE) {
            Some(whole) if bytes >= arena::HUGE_PAGE => arena::map(whole),
            _ => arena::map(bytes),
        };
        let memory = mapped.map_or_else(|| Memory::Heap(vec![0; bytes]), Memory::Mapped);
        Self {
            memory,
            capacity,
            head: 0,
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_full(&self) -> bool {
        self.len == self.capacity
    }

    /// The `i`th oldest record.
    pub fn get(&self, i: usize) -> Option<Slot> {
        (i < self.len).then(|| Slot::decode(self.record(self.position(i))))
    }

    /// Appends `s`; `false` when the ring is full or `s` does not fit a record.
    pub fn push_back(&mut self, s: &Slot) -> bool {
        if self.is_full() {
            return false;
        }
        let Some(record) = s.encode() else {
            return false;
        };
        let at = self.position(self.len);
        self.record_mut(at).copy_from_slice(&record);
        self.len += 1;
        true
    }

    pub fn pop_front(&mut self) -> Option<Slot> {
        let oldest = self.get(0)?;
        self.head = (self.head + 1) % self.capacity;
        self.len -= 1;
        Some(oldest)
    }

    /// Moves the `i`th oldest record's event to `place`.
    pub fn set_place(&mut self, i: usize, place: Place) {
        if let Some(mut s) = self.get(i) {
            s.place = place;
            if let Some(record) = s.encode() {
                let at = self.position(i);
                self.record_mut(at).copy_from_slice(&record);
            }
        }
    }

    /// Keeps the records for which `keep` holds, in order.
    pub fn retain(&mut self, mut keep: impl FnMut(&Slot) -> bool) {
        let mut kept = 0;
        for i in 0..self.len {
            let Some(s) = self.get(i) else { break };
            if keep(&s) {
                if kept != i {
                    let (from, to) = (self.position(i) * RECORD, self.position(kept) * RECORD);
                    let bytes = self.memory.bytes_mut();
                    if from.max(to) + RECORD <= bytes.len() {
                        bytes.copy_within(from..from + RECORD, to);
                    }
                }
                kept += 1;
            }
        }
        self.len = kept;
    }

    /// Oldest first; `.rev()` for newest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (usize, Slot)> + '_ {
        (0..self.len).filter_map(|i| Some((i, self.get(i)?)))
    }

    fn position(&self, i: usize) -> usize {
        (self.head + i) % self.capacity
    }

    fn record(&self, at: usize) -> &[u8] {
        self.memory
            .bytes()
            .get(at * RECORD..(at + 1) * RECORD)
            .unwrap_or_default()
    }

    fn record_mut(&mut self, at: usize) -> &mut [u8] {
        self.memory
            .bytes_mut()
            .get_mut(at * RECORD..(at + 1) * RECORD)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(ms: u64, queue_id: Option<u64>) -> Slot {
        Slot {
            place: Place::default(),
            received_ms: ms,
            route: ms.is_multiple_of(2).then_some(7),
            outcome: 3,
            queue_id,
        }
    }

    #[test]
    fn records_come_back_as_written_and_wrap_around() {
        let mut s = Slots::new(3);
        for ms in 0..3 {
            assert!(s.push_back(&slot(ms, Some(ms * 10))));
        }
        assert!(!s.push_back(&slot(9, None)), "full");
        assert_eq!(s.pop_front(), Some(slot(0, Some(0))));
        assert!(s.push_back(&slot(3, None)));
        let all: Vec<Slot> = s.iter().map(|(_, s)| s).collect();
        assert_eq!(all, [slot(1, Some(10)), slot(2, Some(20)), slot(3, None)]);
        let newest = s.iter().next_back().map(|(_, s)| s);
        assert_eq!(newest, Some(slot(3, None)));
    }

    #[test]
    fn retain_keeps_order_across_the_wrap() {
        let mut s = Slots::new(4);
        for ms in 0..4 {
            s.push_back(&slot(ms, None));
        }
        s.pop_front();
        s.pop_front();
        s.push_back(&slot(4, None));
        s.push_back(&slot(5, None));
        s.retain(|x| x.received_ms != 3);
        let kept: Vec<u64> = s.iter().map(|(_, s)| s.received_ms).collect();
        assert_eq!(kept, [2, 4, 5]);
        assert!(s.push_back(&slot(6, None)));
        assert_eq!(s.len(), 4);
    }
}
