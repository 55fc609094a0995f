//! Where the memory ring keeps its packed events: back to back in mapped segments of
//! [`SEGMENT`] bytes, asking the kernel for transparent huge pages, filled in order and
//! unmapped once none of their events is left.
//!
//! Why: a full ring writes each new event over memory last written 100,000 events earlier,
//! seconds ago. On the virtual machines this was measured on, the first write to such a 4 KiB
//! page costs microseconds (`bench/stale_memory.rs`: up to 16 us per 2.2 KB event as the ring
//! turns over more slowly), which made a full journal cost a third of the gateway's throughput.
//! On 2 MiB pages the same writes cost 0.1-0.3 us. Huge pages need an aligned mapping of their
//! own, hence mapped segments rather than the allocator's memory; where the kernel gives no
//! huge pages the segments work the same, on small pages.

use memmap2::{MmapMut, MmapOptions};

/// A transparent huge page on x86-64 and most arm64 kernels.
pub const HUGE_PAGE: usize = 2 << 20;

/// A segment's size: a multiple of [`HUGE_PAGE`] (the kernel aligns such anonymous mappings to huge
/// pages), and small enough that a small journal holds little more than its events.
pub const SEGMENT: usize = 2 * HUGE_PAGE;

/// Where one event's bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Place {
    segment: usize,
    start: usize,
    len: usize,
}

impl Place {
    /// As 12 bytes for the ring's index; `None` past 4 GiB.
    pub fn encode(&self) -> Option<[u8; 12]> {
        let mut b = [0u8; 12];
        for (i, v) in [self.segment, self.start, self.len].into_iter().enumerate() {
            b[i * 4..i * 4 + 4].copy_from_slice(&u32::try_from(v).ok()?.to_le_bytes());
        }
        Some(b)
    }

    pub fn decode(b: [u8; 12]) -> Self {
        let at = |i: usize| {
            let word = [b[i], b[i + 1], b[i + 2], b[i + 3]];
            u32::from_le_bytes(word) as usize
        };
        Self {
            segment: at(0),
            start: at(4),
            len: at(8),
        }
    }
}

struct Segment {
    map: MmapMut,
    /// Bytes written.
    used: usize,
    /// Events whose bytes are here.
    live: usize,
}

#[derive(Default)]
pub struct Arena {
    /// Indexed by [`Place::segment`]; `None` once unmapped (the index is then reused).
    segments: Vec<Option<Segment>>,
    vacant: Vec<usize>,
    /// The segment being filled.
    head: Option<usize>,
    /// An emptied segment kept for the next: the ring empties one about as often as it opens
    /// one, and a new mapping starts with page faults.
    spare: Option<MmapMut>,
}

impl Arena {
    /// Copies `bytes` in after the last event; `None` when no memory could be mapped.
    #[cfg(test)]
    pub fn put(&mut self, bytes: &[u8]) -> Option<Place> {
        self.put_with(bytes.len(), |dst| dst.copy_from_slice(bytes))
    }

    /// `len` bytes after the last event, written by `fill`; `None` when no memory could be
    /// mapped.
    pub fn put_with(&mut self, len: usize, fill: impl FnOnce(&mut [u8])) -> Option<Place> {
        let segment = match self.head {
            Some(h) if self.room(h) >= len => h,
            _ => self.open(len)?,
        };
        let s = self.segments.get_mut(segment)?.as_mut()?;
        let start = s.used;
        fill(s.map.get_mut(start..start + len)?);
        s.used += len;
        s.live += 1;
        Some(Place {
            segment,
            start,
            len,
        })
    }

    pub fn get(&self, p: Place) -> &[u8] {
        self.segments
            .get(p.segment)
            .and_then(Option::as_ref)
            .and_then(|s| s.map.get(p.start..p.start + p.len))
            .unwrap_or_default()
    }

    /// The event at `p` is gone; its segment goes with its last event (unless being filled).
    pub fn release(&mut self, p: Place) {
        let Some(s) = self.segments.get_mut(p.segment).and_then(Option::as_mut) else {
            return;
        };
        s.live = s.live.saturating_sub(1);
        if s.live == 0 && self.head != Some(p.segment) {
            self.free(p.segment);
        }
    }

    /// Bytes mapped, used or not.
    #[cfg(test)]
    pub fn mapped(&self) -> usize {
        self.segments
            .iter()
            .flatten()
            .map(|s| s.map.len())
            .sum::<usize>()
            + self.spare.as_ref().map_or(0, |m| m.len())
    }

    fn room(&self, segment: usize) -> usize {
        self.segments
            .get(segment)
            .and_then(Option::as_ref)
            .map_or(0, |s| s.map.len() - s.used)
    }

    /// A new head with room for `len` bytes; an event larger than [`SEGMENT`] gets a segment of
    /// its own size.
    fn open(&mut self, len: usize) -> Option<usize> {
        if let Some(old) = self.head.take() {
            if self
                .segments
                .get(old)
                .and_then(Option::as_ref)
                .is_some_and(|s| s.live == 0)
            {
                self.free(old);
            }
        }
        let map = match self.spare.take() {
            Some(m) if len <= m.len() => m,
            other => {
                self.spare = other;
                map(len.max(SEGMENT))?
            }
        };
        let segment = Segment {
            map,
            used: 0,
            live: 0,
        };
        let index = match self.vacant.pop() {
            Some(i) => {
                self.segments[i] = Some(segment);
                i
            }
            None => {
                self.segments.push(Some(segment));
                self.segments.len() - 1
            }
        };
        self.head = Some(index);
        Some(index)
    }

    fn free(&mut self, segment: usize) {
        let Some(s) = self.segments.get_mut(segment).and_then(Option::take) else {
            return;
        };
        self.vacant.push(segment);
        if self.spare.is_none() && s.map.len() == SEGMENT {
            self.spare = Some(s.map);
        }
    }
}

/// `len` bytes of zeroed memory, on huge pages where the kernel has them.
pub fn map(len: usize) -> Option<MmapMut> {
    let map = MmapOptions::new().len(len).map_anon().ok()?;
    #[cfg(target_os = "linux")]
    {
        // Only advice: without huge pages the segment works the same.
        let _ = map.advise(memmap2::Advice::HugePage);
    }
    Some(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_read_back_and_segments_go_with_their_last_event() {
        let mut a = Arena::default();
        let event = vec![7u8; 1000];
        let mut places: std::collections::VecDeque<Place> = Default::default();
        for i in 0..20_000u32 {
            let mut e = event.clone();
            e[..4].copy_from_slice(&i.to_le_bytes());
            places.push_back(a.put(&e).unwrap());
            if places.len() > 5000 {
                a.release(places.pop_front().unwrap());
            }
        }
        for (i, p) in (15_000u32..).zip(&places) {
            assert_eq!(a.get(*p)[..4], i.to_le_bytes());
            assert_eq!(a.get(*p).len(), 1000);
        }
        // 5,000 events of 1,000 bytes span at most three segments, plus the spare.
        assert!(a.mapped() <= 4 * SEGMENT, "{} bytes mapped", a.mapped());
        while let Some(p) = places.pop_front() {
            a.release(p);
        }
        assert!(
            a.mapped() <= 2 * SEGMENT,
            "{} bytes mapped when empty",
            a.mapped()
        );
    }

    #[test]
    fn memory_that_cannot_be_mapped_is_no_segment() {
        assert!(map(usize::MAX / 4).is_none());
    }

    #[test]
    fn an_event_larger_than_a_segment_gets_its_own() {
        let mut a = Arena::default();
        let small = a.put(b"small").unwrap();
        let big = a.put(&vec![1u8; SEGMENT + 1]).unwrap();
        let after = a.put(b"after").unwrap();
        assert_eq!(a.get(small), b"small");
        assert_eq!(a.get(big).len(), SEGMENT + 1);
        assert_eq!(a.get(after), b"after");
        a.release(big);
        assert!(a.get(big).is_empty(), "unmapped with its only event");
        assert_eq!(a.get(after), b"after");
    }
}
