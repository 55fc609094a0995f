//! The journal on Redis, shared by the fleet: any replica lists and replays every replica's
//! events.
//!
//! Key names below are for one server or Sentinel; on a Cluster `<prefix>journal:` reads
//! `{<prefix>journal}`, one hash tag, so the batch's pipeline and the trim run on one node.
//!
//! - `<prefix>journal:ids`: a sorted set of event ids, all of score 0, so it sorts by id (time
//!   first) and pages by `ZREVRANGEBYLEX`;
//! - `<prefix>journal:events`: a hash, id -> stored event;
//! - `<prefix>journal:u:<route>\0<queue id>`: a queued event's appended updates, expiring
//!   with `max_age`;
//! - `<prefix>journal:m:<unix minute>`: a hash of events per route\0outcome, expiring after
//!   two hours.
//!
//! Each batch is one pipeline, then one script trims what is over `max_events` or older than
//! `max_age` (counted by whichever replica trims it).

use redis::Script;

use super::query::Query;
use super::ring::Evicted;
use super::stored::{self, Update};
use super::{Entry, JournalError};
use crate::store::Connection;

/// Trims the oldest events. KEYS: ids, events. ARGV: max events, the first id to keep by age.
const TRIM: &str = include_str!("trim.lua");

/// Ids read per round trip while listing.
const PAGE: isize = 500;

fn backend(e: redis::RedisError) -> JournalError {
    JournalError::Backend(format!("redis: {e}"))
}

pub struct RedisJournal {
    conn: Connection,
    /// What every key's name starts with.
    area: String,
    max_events: u64,
    max_age_ms: u64,
    trim: Script,
}

impl RedisJournal {
    /// `area`: what the journal's key names start with (`RedisStore::journal_keys`).
    pub fn new(conn: Connection, area: &str, max_events: usize, max_age_ms: u64) -> Self {
        Self {
            conn,
            area: area.to_string(),
            max_events: (max_events as u64).max(1),
            max_age_ms,
            trim: Script::new(TRIM),
        }
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.area)
    }

    fn updates_key(&self, link: &str) -> String {
        format!("{}u:{link}", self.area)
    }

    fn minute_key(&self, minute: u64) -> String {
        format!("{}m:{minute}", self.area)
    }

    /// Writes one batch, then trims. Returns what left the journal and how many it holds.
    pub async fn write(
        &self,
        records: &[Entry],
        updates: &[(String, Update)],
        now_ms: u64,
    ) -> Result<(Evicted, u64), JournalError> {
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        let (ids, events) = (self.key("ids"), self.key("events"));
        for e in records {
            pipe.zadd(&ids, e.id.as_str(), 0).ignore();
            pipe.hset(&events, e.id.as_str(), stored::encode(e))
                .ignore();
            if let Some(r) = &e.route {
                let m = self.minute_key(e.received_ms / 60_000);
                pipe.hincr(&m, format!("{r}\0{}", e.outcome), 1).ignore();
                pipe.expire(&m, 7200).ignore();
            }
        }
        let ttl = i64::try_from(self.max_age_ms).unwrap_or(i64::MAX);
        for (link, u) in updates {
            let k = self.updates_key(link);
            pipe.append(&k, stored::update_line(u)).ignore();
            pipe.pexpire(&k, ttl).ignore();
        }
        pipe.query_async::<()>(&mut conn).await.map_err(backend)?;
        let cutoff = now_ms.saturating_sub(self.max_age_ms);
        let (full, expired, count): (u64, u64, u64) = self
            .trim
            .key(&ids)
            .key(&events)
            .arg(self.max_events)
            .arg(format!("{:012x}", cutoff & 0xffff_ffff_ffff))
            .invoke_async(&mut conn)
            .await
            .map_err(backend)?;
        Ok((
            Evicted {
                full,
                expired,
                ..Evicted::default()
            },
            count,
        ))
    }

    pub async fn get(&self, id: &str) -> Result<Option<Entry>, JournalError> {
        let mut conn = self.conn.clone();
        let v: Option<Vec<u8>> = redis::cmd("HGET")
            .arg(self.key("events"))
            .arg(id)
            .query_async(&mut conn)
            .await
            .map_err(backend)?;
        let Some(mut e) = v.as_deref().and_then(stored::decode) else {
            return Ok(None);
        };
        self.merge(&mut conn, std::slice::from_mut(&mut e)).await?;
        Ok(Some(e))
    }

    /// Newest first, at most `limit`; a scan bounded by `max_events`.
    pub async fn list(&self, q: &Query, limit: usize) -> Result<Vec<Entry>, JournalError> {
        let mut conn = self.conn.clone();
        let mut out = Vec::new();
        let mut upper = match &q.before {
            Some(b) => format!("({b}"),
            None => "+".to_string(),
        };
        let mut scanned = 0u64;
        while out.len() < limit && scanned < self.max_events {
            let ids: Vec<String> = redis::cmd("ZREVRANGEBYLEX")
                .arg(self.key("ids"))
                .arg(&upper)
                .arg("-")
                .arg("LIMIT")
                .arg(0)
                .arg(PAGE)
                .query_async(&mut conn)
                .await
                .map_err(backend)?;
            let Some(last) = ids.last() else {
                break;
            };
            upper = format!("({last}");
            scanned += ids.len() as u64;
            let values: Vec<Option<Vec<u8>>> = redis::cmd("HMGET")
                .arg(self.key("events"))
                .arg(&ids)
                .query_async(&mut conn)
                .await
                .map_err(backend)?;
            let mut page: Vec<Entry> = values
                .iter()
                .flatten()
                .filter_map(|v| stored::decode(v))
                .collect();
            self.merge(&mut conn, &mut page).await?;
            let old = q
                .since_ms
                .is_some_and(|t| page.last().is_some_and(|e| e.received_ms < t));
            out.extend(page.into_iter().filter(|e| q.matches(e)));
            if old || ids.len() < PAGE as usize {
                break;
            }
        }
        out.truncate(limit);
        Ok(out)
    }

    /// Applies the queued events' updates, one round trip for the page.
    async fn merge(&self, conn: &mut Connection, page: &mut [Entry]) -> Result<(), JournalError> {
        let links: Vec<(usize, String)> = page
            .iter()
            .enumerate()
            .filter_map(|(i, e)| Some((i, self.updates_key(&stored::link_of(e)?))))
            .collect();
        if links.is_empty() {
            return Ok(());
        }
        let mut cmd = redis::cmd("MGET");
        for (_, k) in &links {
            cmd.arg(k);
        }
        let lines: Vec<Option<Vec<u8>>> = cmd.query_async(conn).await.map_err(backend)?;
        for ((i, _), l) in links.iter().zip(lines) {
            if let (Some(e), Some(l)) = (page.get_mut(*i), l) {
                stored::apply(e, &l);
            }
        }
        Ok(())
    }

    /// Events by (route, outcome, unix minute) from `first_minute` to `last_minute`.
    pub async fn minutes(
        &self,
        first_minute: u64,
        last_minute: u64,
    ) -> Result<Vec<(String, String, u64, u64)>, JournalError> {
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        for m in first_minute..=last_minute {
            pipe.hgetall(self.minute_key(m));
        }
        let maps: Vec<Vec<(String, u64)>> = pipe.query_async(&mut conn).await.map_err(backend)?;
        let mut out = Vec::new();
        for (m, map) in (first_minute..=last_minute).zip(maps) {
            for (key, n) in map {
                if let Some((route, outcome)) = key.split_once('\0') {
                    out.push((route.to_string(), outcome.to_string(), m, n));
                }
            }
        }
        Ok(out)
    }
}
