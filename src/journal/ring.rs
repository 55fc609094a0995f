//! The memory journal: a bounded ring, oldest dropped first.

use std::collections::{HashMap, VecDeque};

use super::entry::{AttemptRecord, Entry};
use super::query::Query;

pub struct Ring {
    /// Boxed as they come from the request path: a slot is a pointer, so the ring's own
    /// array (grown by doubling) costs 8 bytes per event, not an entry's size.
    entries: VecDeque<Box<Entry>>,
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
}

impl Ring {
    pub fn new(max_events: usize, max_age_ms: u64) -> Self {
        Self {
            entries: VecDeque::new(),
            max_events: max_events.max(1),
            max_age_ms,
            early: HashMap::new(),
        }
    }

    /// Events held.
    pub fn count(&self) -> usize {
        self.entries.len()
    }

    /// Adds `e`, dropping the oldest entries beyond `max_events`.
    pub fn push(&mut self, mut e: Box<Entry>) -> Evicted {
        if let (Some(q), Some(r)) = (e.queue_id, &e.route) {
            for (attempt, state) in self.early.remove(&(r.to_string(), q)).unwrap_or_default() {
                e.attempts.extend(attempt);
                e.state = Some(state.into());
            }
        }
        self.entries.push_back(e);
        let mut out = Evicted::default();
        while self.entries.len() > self.max_events {
            self.entries.pop_front();
            out.full += 1;
        }
        out
    }

    /// Drops entries received before `now_ms - max_age`.
    pub fn expire(&mut self, now_ms: u64) -> Evicted {
        let cutoff = now_ms.saturating_sub(self.max_age_ms);
        let before = self.entries.len();
        self.entries.retain(|e| e.received_ms >= cutoff);
        Evicted {
            full: 0,
            expired: (before - self.entries.len()) as u64,
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
            .entries
            .iter_mut()
            .rev()
            .find(|e| e.queue_id == Some(queue_id) && e.route.as_deref() == Some(route));
        match found {
            Some(e) => {
                e.attempts.extend(attempt);
                e.state = Some(state.into());
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
        self.entries
            .iter()
            .rev()
            .find(|e| e.id == id)
            .map(|e| Entry::clone(e))
    }

    /// Newest first, at most `limit`.
    pub fn list(&self, q: &Query, limit: usize) -> Vec<Entry> {
        let mut hits: Vec<&Entry> = self
            .entries
            .iter()
            .map(|e| &**e)
            .filter(|e| q.matches(e))
            .collect();
        hits.sort_unstable_by(|a, b| b.id.cmp(&a.id));
        hits.into_iter().take(limit).cloned().collect()
    }

    /// Outcome counts per route since `since_ms`.
    pub fn counts_since(&self, since_ms: u64) -> Vec<(String, String, u64)> {
        let mut counts: std::collections::BTreeMap<(String, String), u64> = Default::default();
        for e in self
            .entries
            .iter()
            .rev()
            .take_while(|e| e.received_ms >= since_ms)
        {
            if let Some(r) = &e.route {
                *counts
                    .entry((r.to_string(), e.outcome.to_string()))
                    .or_default() += 1;
            }
        }
        counts.into_iter().map(|((r, o), n)| (r, o, n)).collect()
    }

    /// Per minute over the last `minutes` before `now_ms`: (route, outcome, minute index, count).
    pub fn per_minute(&self, now_ms: u64, minutes: u64) -> Vec<(String, String, u64, u64)> {
        let since = now_ms.saturating_sub(minutes * 60_000);
        let mut counts: std::collections::BTreeMap<(String, String, u64), u64> = Default::default();
        for e in self.entries.iter().filter(|e| e.received_ms >= since) {
            if let Some(r) = &e.route {
                let minute = (e.received_ms - since) / 60_000;
                *counts
                    .entry((r.to_string(), e.outcome.to_string(), minute))
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
