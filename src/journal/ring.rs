//! The memory journal: a bounded ring, oldest dropped first. Each event is held packed
//! ([`super::compact`]), back to back with the others ([`super::arena`]), beside the few fields
//! the ring itself reads.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::arena::{Arena, Place};
use super::compact::{pack_into, unpack};
use super::entry::{AttemptRecord, Entry};
use super::query::Query;

/// One event: packed, with what pushing, updating, paging and counting need unpacked.
struct Slot {
    place: Place,
    received_ms: u64,
    route: Option<Arc<str>>,
    outcome: Cow<'static, str>,
    queue_id: Option<u64>,
}

impl Slot {
    /// `e`, packed into `arena` through `scratch`; `None` when the arena has no memory.
    fn new(e: &Entry, arena: &mut Arena, scratch: &mut Vec<u8>) -> Option<Self> {
        pack_into(e, scratch);
        Some(Self {
            place: arena.put(scratch)?,
            received_ms: e.received_ms,
            route: e.route.clone(),
            outcome: e.outcome.clone(),
            queue_id: e.queue_id,
        })
    }

    /// The event's id, read in place: it is packed first.
    fn id<'a>(&self, arena: &'a Arena) -> &'a str {
        let packed = arena.get(self.place);
        let len = packed
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u64::from_le_bytes);
        let end = usize::try_from(len).map_or(0, |n| n.saturating_add(8));
        packed
            .get(8..end)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or_default()
    }

    /// What cheap fields rule out, before unpacking.
    fn may_match(&self, q: &Query, arena: &Arena) -> bool {
        let eq = |want: &Option<String>, got: Option<&str>| {
            want.as_deref().is_none_or(|w| Some(w) == got)
        };
        eq(&q.route, self.route.as_deref())
            && eq(&q.outcome, Some(&self.outcome))
            && q.since_ms.is_none_or(|t| self.received_ms >= t)
            && q.until_ms.is_none_or(|t| self.received_ms < t)
            && q.before.as_deref().is_none_or(|b| self.id(arena) < b)
    }
}

pub struct Ring {
    slots: VecDeque<Slot>,
    arena: Arena,
    /// Where an event is packed before it is copied into the arena.
    scratch: Vec<u8>,
    max_events: usize,
    max_age_ms: u64,
    /// Attempts that arrived before their event (the engine can be faster than the request's
    /// own end), applied when it comes.
    early: HashMap<(String, u64), Vec<Update>>,
}

/// An attempt (if any) and the state it left its event in.
type Update = (Option<AttemptRecord>, &'static str);

/// Early attempts kept at most: bounded whatever happens.
const MAX_EARLY: usize = 10_000;

/// Why entries left the ring.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Evicted {
    /// Over `max_events`.
    pub full: u64,
    /// Older than `max_age`.
    pub expired: u64,
    /// Not kept: no memory could be mapped for it.
    pub failed: u64,
}

impl Ring {
    pub fn new(max_events: usize, max_age_ms: u64) -> Self {
        Self {
            slots: VecDeque::new(),
            arena: Arena::default(),
            scratch: Vec::new(),
            max_events: max_events.max(1),
            max_age_ms,
            early: HashMap::new(),
        }
    }

    /// Events held.
    pub fn count(&self) -> usize {
        self.slots.len()
    }

    /// Adds `e`, dropping the oldest entries beyond `max_events`.
    pub fn push(&mut self, mut e: Box<Entry>) -> Evicted {
        if let (Some(q), Some(r)) = (e.queue_id, &e.route) {
            for (attempt, state) in self.early.remove(&(r.to_string(), q)).unwrap_or_default() {
                e.attempts.extend(attempt);
                e.state = Some(state.into());
            }
        }
        let mut out = Evicted::default();
        while self.slots.len() >= self.max_events {
            if let Some(old) = self.slots.pop_front() {
                self.arena.release(old.place);
            }
            out.full += 1;
        }
        match Slot::new(&e, &mut self.arena, &mut self.scratch) {
            Some(slot) => self.slots.push_back(slot),
            None => out.failed += 1,
        }
        out
    }

    /// Drops entries received before `now_ms - max_age`.
    pub fn expire(&mut self, now_ms: u64) -> Evicted {
        let cutoff = now_ms.saturating_sub(self.max_age_ms);
        let before = self.slots.len();
        let arena = &mut self.arena;
        self.slots.retain(|s| {
            let keep = s.received_ms >= cutoff;
            if !keep {
                arena.release(s.place);
            }
            keep
        });
        Evicted {
            expired: (before - self.slots.len()) as u64,
            ..Evicted::default()
        }
    }

    /// A queued event's attempt (if any) and new state; recent events are searched first.
    pub fn update(
        &mut self,
        queue_id: u64,
        route: &str,
        attempt: Option<AttemptRecord>,
        state: &'static str,
    ) {
        let found = self
            .slots
            .iter_mut()
            .rev()
            .find(|s| s.queue_id == Some(queue_id) && s.route.as_deref() == Some(route));
        let arena = &mut self.arena;
        match found.and_then(|s| Some((unpack(arena.get(s.place))?, s))) {
            Some((mut e, slot)) => {
                e.attempts.extend(attempt);
                e.state = Some(state.into());
                // Written anew after the last event, as it may have grown; where no memory
                // is left for that, the event stays as it was.
                pack_into(&e, &mut self.scratch);
                if let Some(new) = arena.put(&self.scratch) {
                    arena.release(std::mem::replace(&mut slot.place, new));
                }
            }
            None if self.early.len() < MAX_EARLY => self
                .early
                .entry((route.to_string(), queue_id))
                .or_default()
                .push((attempt, state)),
            None => {}
        }
    }

    pub fn get(&self, id: &str) -> Option<Entry> {
        let slot = self.slots.iter().rev().find(|s| s.id(&self.arena) == id)?;
        unpack(self.arena.get(slot.place))
    }

    /// Newest first, at most `limit`.
    pub fn list(&self, q: &Query, limit: usize) -> Vec<Entry> {
        let arena = &self.arena;
        let mut candidates: Vec<&Slot> = self
            .slots
            .iter()
            .filter(|s| s.may_match(q, arena))
            .collect();
        candidates.sort_unstable_by(|a, b| b.id(arena).cmp(a.id(arena)));
        candidates
            .into_iter()
            .filter_map(|s| unpack(arena.get(s.place)))
            .filter(|e| q.matches(e))
            .take(limit)
            .collect()
    }

    /// Outcome counts per route since `since_ms`.
    pub fn counts_since(&self, since_ms: u64) -> Vec<(String, String, u64)> {
        let mut counts: std::collections::BTreeMap<(String, String), u64> = Default::default();
        for s in self
            .slots
            .iter()
            .rev()
            .take_while(|s| s.received_ms >= since_ms)
        {
            if let Some(r) = &s.route {
                *counts
                    .entry((r.to_string(), s.outcome.to_string()))
                    .or_default() += 1;
            }
        }
        counts.into_iter().map(|((r, o), n)| (r, o, n)).collect()
    }

    /// Per minute over the last `minutes` before `now_ms`: (route, outcome, minute index, count).
    pub fn per_minute(&self, now_ms: u64, minutes: u64) -> Vec<(String, String, u64, u64)> {
        let since = now_ms.saturating_sub(minutes * 60_000);
        let mut counts: std::collections::BTreeMap<(String, String, u64), u64> = Default::default();
        for s in self.slots.iter().filter(|s| s.received_ms >= since) {
            if let Some(r) = &s.route {
                let minute = (s.received_ms - since) / 60_000;
                *counts
                    .entry((r.to_string(), s.outcome.to_string(), minute))
                    .or_default() += 1;
            }
        }
        counts
            .into_iter()
            .map(|((r, o, m), n)| (r, o, m, n))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, ms: u64) -> Entry {
        Entry {
            id: id.into(),
            received_ms: ms,
            route: Some("r".into()),
            method: http::Method::POST,
            path: "/".into(),
            query: None,
            client_ip: None,
            provider: None,
            outcome: "forwarded".into(),
            reason: None,
            status: 200,
            duration_ms: 1.0,
            key_id: None,
            delivery_id: None,
            dedup_key: None,
            diagnosis: None,
            headers: Default::default(),
            body: None,
            body_truncated: false,
            state: None,
            attempts: vec![],
            replay_of: None,
            queue_id: None,
            trace_id: None,
            authz: false,
        }
    }

    #[test]
    fn the_oldest_go_first() {
        let mut r = Ring::new(3, u64::MAX);
        let mut dropped = 0;
        for i in 0..5u64 {
            dropped += r.push(Box::new(entry(&format!("{i:02}"), i))).full;
        }
        assert_eq!(dropped, 2);
        let ids: Vec<String> = r
            .list(&Query::default(), 10)
            .into_iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(ids, ["04", "03", "02"]);
        assert!(r.get("00").is_none());
    }

    #[test]
    fn old_entries_expire_and_pages_follow_the_cursor() {
        let mut r = Ring::new(10, 1_000);
        for i in 0..5u64 {
            r.push(Box::new(entry(&format!("{i:02}"), i * 400)));
        }
        assert_eq!(r.expire(2_000).expired, 3);
        let page = r.list(
            &Query {
                before: Some("04".into()),
                ..Query::default()
            },
            10,
        );
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].id, "03");
    }
}
