//! The memory journal: a bounded ring, oldest dropped first. Each event is held packed
//! ([`super::compact`]), back to back with the others ([`super::arena`]), beside the few fields
//! the ring itself reads ([`super::slots`]).

use std::collections::HashMap;
use std::sync::Arc;

use super::arena::{Arena, Place};
use super::compact::{pack_into, packed_id, packed_len, unpack};
use super::entry::{AttemptRecord, Entry};
use super::query::Query;
use super::slots::{Slot, Slots};

pub struct Ring {
    slots: Slots,
    arena: Arena,
    /// Route and outcome names, which the slots hold as indexes into `names`.
    names: Vec<Arc<str>>,
    name_ids: HashMap<Arc<str>, u32>,
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
    /// Not kept: no memory could be mapped for it (or it is 4 GiB or larger).
    pub failed: u64,
}

impl Ring {
    pub fn new(max_events: usize, max_age_ms: u64) -> Self {
        Self {
            slots: Slots::new(max_events),
            arena: Arena::default(),
            names: Vec::new(),
            name_ids: HashMap::new(),
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
        if self.slots.is_full() {
            if let Some(old) = self.slots.pop_front() {
                self.arena.release(old.place);
            }
            out.full += 1;
        }
        let route = e.route.as_deref().map(|r| self.name_id(r));
        let outcome = self.name_id(&e.outcome);
        let placed = self.put(&e);
        let kept = placed.is_some_and(|place| {
            let slot = Slot {
                place,
                received_ms: e.received_ms,
                route,
                outcome,
                queue_id: e.queue_id,
            };
            let pushed = self.slots.push_back(&slot);
            if !pushed {
                self.arena.release(place);
            }
            pushed
        });
        if !kept {
            out.failed += 1;
        }
        out
    }

    /// `e` packed into the arena.
    fn put(&mut self, e: &Entry) -> Option<Place> {
        self.arena.put_with(packed_len(e), |dst| pack_into(e, dst))
    }

    /// The index of `name` in `names`, added when new (routes and outcomes: a few dozen).
    fn name_id(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.name_ids.get(name) {
            return id;
        }
        let id = u32::try_from(self.names.len()).unwrap_or(u32::MAX - 1);
        let name: Arc<str> = name.into();
        self.names.push(name.clone());
        self.name_ids.insert(name, id);
        id
    }

    fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", |n| n)
    }

    /// What cheap fields rule out, before unpacking.
    fn may_match(&self, s: &Slot, q: &Query) -> bool {
        let eq = |want: &Option<String>, got: Option<&str>| {
            want.as_deref().is_none_or(|w| Some(w) == got)
        };
        eq(&q.route, s.route.map(|r| self.name(r)))
            && eq(&q.outcome, Some(self.name(s.outcome)))
            && q.since_ms.is_none_or(|t| s.received_ms >= t)
            && q.until_ms.is_none_or(|t| s.received_ms < t)
            && q.before
                .as_deref()
                .is_none_or(|b| packed_id(self.arena.get(s.place)) < b)
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
        let route_id = self.name_ids.get(route).copied();
        let found = self.slots.iter().rev().find(|(_, s)| {
            s.queue_id == Some(queue_id) && s.route.is_some() && s.route == route_id
        });
        match found.and_then(|(i, s)| Some((i, s, unpack(self.arena.get(s.place))?))) {
            Some((i, slot, mut e)) => {
                e.attempts.extend(attempt);
                e.state = Some(state.into());
                // Written anew after the last event, as it may have grown; where no memory
                // is left for that, the event stays as it was.
                if let Some(new) = self.put(&e) {
                    self.slots.set_place(i, new);
                    self.arena.release(slot.place);
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
        let (_, slot) = self
            .slots
            .iter()
            .rev()
            .find(|(_, s)| packed_id(self.arena.get(s.place)) == id)?;
        unpack(self.arena.get(slot.place))
    }

    /// Newest first, at most `limit`.
    pub fn list(&self, q: &Query, limit: usize) -> Vec<Entry> {
        let arena = &self.arena;
        let mut candidates: Vec<(&str, Place)> = self
            .slots
            .iter()
            .filter(|(_, s)| self.may_match(s, q))
            .map(|(_, s)| (packed_id(arena.get(s.place)), s.place))
            .collect();
        candidates.sort_unstable_by(|a, b| b.0.cmp(a.0));
        candidates
            .into_iter()
            .filter_map(|(_, place)| unpack(arena.get(place)))
            .filter(|e| q.matches(e))
            .take(limit)
            .collect()
    }

    /// Outcome counts per route since `since_ms`.
    pub fn counts_since(&self, since_ms: u64) -> Vec<(String, String, u64)> {
        let mut counts: std::collections::BTreeMap<(String, String), u64> = Default::default();
        for (_, s) in self
            .slots
            .iter()
            .rev()
            .take_while(|(_, s)| s.received_ms >= since_ms)
        {
            if let Some(r) = s.route {
                let (route, outcome) = (self.name(r), self.name(s.outcome));
                *counts
                    .entry((route.to_string(), outcome.to_string()))
                    .or_default() += 1;
            }
        }
        counts.into_iter().map(|((r, o), n)| (r, o, n)).collect()
    }

    /// Per minute over the last `minutes` before `now_ms`: (route, outcome, minute index, count).
    pub fn per_minute(&self, now_ms: u64, minutes: u64) -> Vec<(String, String, u64, u64)> {
        let since = now_ms.saturating_sub(minutes * 60_000);
        let mut counts: std::collections::BTreeMap<(String, String, u64), u64> = Default::default();
        for (_, s) in self.slots.iter().filter(|(_, s)| s.received_ms >= since) {
            if let Some(r) = s.route {
                let minute = (s.received_ms - since) / 60_000;
                let (route, outcome) = (self.name(r), self.name(s.outcome));
                *counts
                    .entry((route.to_string(), outcome.to_string(), minute))
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
pub(super) mod tests {
    use super::*;

    pub(in crate::journal) fn entry(id: &str, ms: u64) -> Entry {
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
