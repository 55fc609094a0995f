//! The spool on Redis Streams (`store.kind: redis`), shared by every replica.
//!
//! Keys, under the store prefix `p`:
//! - `{p}queue`: a stream with one entry (`id <n>`) per pending event, read by the consumer
//!   group `hookgate` (named in the scripts). Every entry sits in the pending entries list (PEL) of the replica that
//!   owns it: the one that accepted it, replayed it or adopted it.
//! - `{p}event:<id>`: a hash per event: `event` and `meta` (the binary records of
//!   `record.rs`), `sid` (its queue entry) while pending, `dsid` (its dead-letter entry) once dead.
//! - `{p}dead`: a stream of dead letters; `{p}dead:count`: how many per route (the gauge).
//! - `{p}seq`: the id counter. It starts from Redis's clock (ms × 1000), so ids issued after a
//!   Redis that lost its data restarts never repeat ones replicas still remember.
//!
//! Every operation is one Lua script, atomic on the server. Scripts that write the queue create
//! it and its group when the stream is missing (first use, or a Redis that lost its data). Accepting an event adds its entry
//! and reads it into this replica's PEL in the same script, so no other replica ever sees it
//! unowned. Owners renew their entries (reset their idle time) every third of `store.lease`;
//! an entry idle longer than the lease belongs to a replica that died or lost Redis, and the
//! first replica to notice adopts it with `XAUTOCLAIM`. A renewal also reports entries this
//! replica no longer owns, and an attempt starts only after checking ownership (`event`), so
//! an event whose owner changed is not attempted by both. Delivery is at least once: an owner
//! that lost Redis for longer than the lease mid-attempt can still deliver an event its
//! adopter delivers too (the `X-Webhook-Id` header lets the backend tell).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::Script;

use super::{Event, Leases, Meta, StoreError};

/// The start of a stream, and the cursor `XAUTOCLAIM` returns when it has scanned everything.
const START: &str = "0-0";
/// Ids per renewal script: bounds the time Redis spends in one script.
const RENEW_BATCH: usize = 500;
/// Entries `XAUTOCLAIM` takes per call, and calls per lease round: a replica adopts at most
/// this many events per round, leaving the rest to the next round or to other replicas.
const ADOPT_COUNT: usize = 100;
const ADOPT_CALLS: usize = 10;

/// KEYS: queue, seq, [dedup key]. ARGV: consumer, event key prefix, event, meta, dedup expiry
/// (unix ms, or empty). Returns the new id.
const ENQUEUE: &str = r"
local q, g, me = KEYS[1], 'hookgate', ARGV[1]
if redis.call('EXISTS', q) == 0 then redis.call('XGROUP', 'CREATE', q, g, '0', 'MKSTREAM') end
if redis.call('EXISTS', KEYS[2]) == 0 then
  local t = redis.call('TIME')
  local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('SET', KEYS[2], string.format('%d', ms * 1000))
end
local id = string.format('%d', redis.call('INCR', KEYS[2]))
local sid = redis.call('XADD', q, '*', 'id', id)
redis.call('HSET', ARGV[2] .. id, 'event', ARGV[3], 'meta', ARGV[4], 'sid', sid)
local read = redis.call('XREADGROUP', 'GROUP', g, me, 'STREAMS', q, '>')
local entries = read and read[1] and read[1][2] or {}
if #entries == 0 or entries[#entries][1] ~= sid then
  return redis.error_reply('queue entry ' .. sid .. ' was not read by this replica')
end
if ARGV[5] ~= '' then redis.call('SET', KEYS[3], 'delivered', 'PXAT', ARGV[5]) end
return id
";

/// KEYS: queue. ARGV: consumer, event key prefix, ids. Resets the idle time of the entries this
/// consumer still owns; returns the ids it does not (taken over, delivered, dead or gone).
const RENEW: &str = r"
local q, me, lost = KEYS[1], ARGV[1], {}
for i = 3, #ARGV do
  local sid = redis.call('HGET', ARGV[2] .. ARGV[i], 'sid')
  local mine = false
  if sid then
    local p = redis.pcall('XPENDING', q, 'hookgate', sid, sid, 1, me)
    mine = type(p) == 'table' and p.err == nil and #p > 0
  end
  if mine then
    redis.call('XCLAIM', q, 'hookgate', me, 0, sid, 'JUSTID')
  else
    lost[#lost + 1] = ARGV[i]
  end
end
return lost
";

/// KEYS: queue. ARGV: consumer, lease ms, cursor, count, event key prefix. Takes over entries
/// idle longer than the lease; returns the next cursor and `{id, meta}` of each. Entries whose
/// event is gone are removed. On the first page, consumers that own nothing and have been idle
/// longer than the lease are removed (a restarted replica is a new consumer); a live one is
/// recreated by its next read.
const ADOPT: &str = r"
local q, g, me = KEYS[1], 'hookgate', ARGV[1]
if redis.call('EXISTS', q) == 0 then redis.call('XGROUP', 'CREATE', q, g, '0', 'MKSTREAM') end
local r = redis.call('XAUTOCLAIM', q, g, me, ARGV[2], ARGV[3], 'COUNT', ARGV[4])
local out = {}
for _, e in ipairs(r[2]) do
  local id, f = false, e[2]
  if f then
    for j = 1, #f, 2 do if f[j] == 'id' then id = f[j + 1] end end
  end
  local meta = id and redis.call('HGET', ARGV[5] .. id, 'meta')
  if meta then
    out[#out + 1] = {id, meta}
  else
    redis.call('XACK', q, g, e[1])
    redis.call('XDEL', q, e[1])
  end
end
if ARGV[3] == '0-0' then
  for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', q, g)) do
    local name, pending, idle
    for j = 1, #c, 2 do
      if c[j] == 'name' then name = c[j + 1]
      elseif c[j] == 'pending' then pending = c[j + 1]
      elseif c[j] == 'idle' then idle = c[j + 1] end
    end
    if name ~= me and pending == 0 and idle and idle > tonumber(ARGV[2]) then
      redis.call('XGROUP', 'DELCONSUMER', q, g, name)
    end
  end
end
return {r[1], out}
";

/// KEYS: queue. ARGV: consumer, idle ms, event key prefix, ids. Marks the entries this consumer
/// owns as idle for `idle ms`, so the next lease round of any replica adopts them.
const HAND_BACK: &str = r"
local q, me, n = KEYS[1], ARGV[1], 0
for i = 4, #ARGV do
  local sid = redis.call('HGET', ARGV[3] .. ARGV[i], 'sid')
  if sid then
    local p = redis.pcall('XPENDING', q, 'hookgate', sid, sid, 1, me)
    if type(p) == 'table' and p.err == nil and #p > 0 then
      redis.call('XCLAIM', q, 'hookgate', me, 0, sid, 'IDLE', ARGV[2], 'JUSTID')
      n = n + 1
    end
  end
end
return n
";

/// KEYS: queue, event hash. ARGV: consumer. The event, if it is pending and this consumer's.
const EVENT: &str = r"
local v = redis.call('HMGET', KEYS[2], 'event', 'sid')
if not v[1] or not v[2] then return false end
local p = redis.pcall('XPENDING', KEYS[1], 'hookgate', v[2], v[2], 1, ARGV[1])
if type(p) ~= 'table' or p.err or #p == 0 then return false end
return v[1]
";

/// KEYS: queue, event hash. Delivered: the entry and the event go.
const ACK: &str = r"
local sid = redis.call('HGET', KEYS[2], 'sid')
if not sid then return 0 end
redis.pcall('XACK', KEYS[1], 'hookgate', sid)
redis.call('XDEL', KEYS[1], sid)
redis.call('DEL', KEYS[2])
return 1
";

/// KEYS: event hash. ARGV: meta. Only while the event is pending.
const RESCHEDULE: &str = r"
if redis.call('HEXISTS', KEYS[1], 'sid') == 0 then return 0 end
redis.call('HSET', KEYS[1], 'meta', ARGV[1])
return 1
";

/// KEYS: queue, event hash, dead, dead count. ARGV: meta, id, route.
const BURY: &str = r"
local sid = redis.call('HGET', KEYS[2], 'sid')
if not sid then return 0 end
redis.pcall('XACK', KEYS[1], 'hookgate', sid)
redis.call('XDEL', KEYS[1], sid)
local dsid = redis.call('XADD', KEYS[3], '*', 'id', ARGV[2])
redis.call('HSET', KEYS[2], 'meta', ARGV[1], 'dsid', dsid)
redis.call('HDEL', KEYS[2], 'sid')
redis.call('HINCRBY', KEYS[4], ARGV[3], 1)
return 1
";

/// KEYS: a stream (queue or dead). ARGV: event key prefix. `{id, meta}` of each entry, oldest
/// first.
const LIST: &str = r"
local out = {}
for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do
  local id, f = false, e[2]
  for j = 1, #f, 2 do if f[j] == 'id' then id = f[j + 1] end end
  local meta = id and redis.call('HGET', ARGV[1] .. id, 'meta')
  if meta then out[#out + 1] = {id, meta} end
end
return out
";

/// KEYS: queue, dead, dead count. ARGV: consumer, event key prefix, then `id, route, meta` per
/// dead letter. Moves each one still dead back into the queue, owned by this consumer.
const REPLAY: &str = r"
local q, g, me = KEYS[1], 'hookgate', ARGV[1]
if redis.call('EXISTS', q) == 0 then redis.call('XGROUP', 'CREATE', q, g, '0', 'MKSTREAM') end
local moved = {}
for i = 3, #ARGV, 3 do
  local h = ARGV[2] .. ARGV[i]
  local dsid = redis.call('HGET', h, 'dsid')
  if dsid and redis.call('XDEL', KEYS[2], dsid) == 1 then
    local sid = redis.call('XADD', q, '*', 'id', ARGV[i])
    redis.call('XREADGROUP', 'GROUP', g, me, 'STREAMS', q, '>')
    redis.call('HSET', h, 'meta', ARGV[i + 2], 'sid', sid)
    redis.call('HDEL', h, 'dsid')
    if redis.call('HINCRBY', KEYS[3], ARGV[i + 1], -1) <= 0 then redis.call('HDEL', KEYS[3], ARGV[i + 1]) end
    moved[#moved + 1] = ARGV[i]
  end
end
return moved
";

/// KEYS: dead, dead count. ARGV: event key prefix, then `id, route` per dead letter.
const DROP: &str = r"
local gone = {}
for i = 2, #ARGV, 2 do
  local h = ARGV[1] .. ARGV[i]
  local dsid = redis.call('HGET', h, 'dsid')
  if dsid and redis.call('XDEL', KEYS[1], dsid) == 1 then
    redis.call('DEL', h)
    if redis.call('HINCRBY', KEYS[2], ARGV[i + 1], -1) <= 0 then redis.call('HDEL', KEYS[2], ARGV[i + 1]) end
    gone[#gone + 1] = ARGV[i]
  end
end
return gone
";

/// The queue's keys, scripts and this process's consumer name.
pub struct Streams {
    prefix: String,
    consumer: String,
    lease: Duration,
    /// Where the next adoption scan starts: `XAUTOCLAIM` looks at a bounded part of the pending
    /// entries per call, so each round goes on where the last one stopped.
    cursor: Mutex<String>,
    enqueue: Script,
    renew: Script,
    adopt: Script,
    event: Script,
    ack: Script,
    reschedule: Script,
    bury: Script,
    list: Script,
    replay: Script,
    drop: Script,
    hand_back: Script,
}

fn backend(e: redis::RedisError) -> StoreError {
    StoreError::Backend(format!("redis: {e}"))
}

fn id_of(s: &str) -> Result<u64, StoreError> {
    s.parse()
        .map_err(|_| StoreError::Backend(format!("redis: `{s}` is not an event id")))
}

/// A stored meta; its id is the one the keys say (the record's own is written before the id
/// is known).
fn meta_of(id: &str, bytes: &[u8]) -> Result<Meta, StoreError> {
    let mut meta = Meta::decode(bytes)?;
    meta.id = id_of(id)?;
    Ok(meta)
}

/// Unique per process, so a restarted replica is a new consumer and never mistakes its
/// predecessor's entries for its own.
fn consumer_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into());
    format!("{host}:{}:{:08x}", std::process::id(), fastrand::u32(..))
}

impl Streams {
    pub fn new(prefix: &str, lease: Duration) -> Self {
        Self {
            prefix: prefix.to_string(),
            consumer: consumer_name(),
            lease,
            cursor: Mutex::new(START.to_string()),
            enqueue: Script::new(ENQUEUE),
            renew: Script::new(RENEW),
            adopt: Script::new(ADOPT),
            event: Script::new(EVENT),
            ack: Script::new(ACK),
            reschedule: Script::new(RESCHEDULE),
            bury: Script::new(BURY),
            list: Script::new(LIST),
            replay: Script::new(REPLAY),
            drop: Script::new(DROP),
            hand_back: Script::new(HAND_BACK),
        }
    }

    pub fn lease(&self) -> Duration {
        self.lease
    }

    fn lease_ms(&self) -> u64 {
        u64::try_from(self.lease.as_millis()).unwrap_or(u64::MAX)
    }

    fn cursor(&self) -> std::sync::MutexGuard<'_, String> {
        self.cursor.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Shutting down: the entries this process owns become adoptable at once (idle for the
    /// lease) instead of after the lease. Returns how many.
    pub async fn hand_back(
        &self,
        conn: &mut ConnectionManager,
        owns: &[u64],
    ) -> Result<usize, StoreError> {
        let mut n = 0;
        for batch in owns.chunks(RENEW_BATCH) {
            let mut call = self.hand_back.key(self.queue());
            call.arg(&self.consumer)
                .arg(self.lease_ms().saturating_add(1))
                .arg(self.events());
            for id in batch {
                call.arg(id);
            }
            n += call.invoke_async::<usize>(conn).await.map_err(backend)?;
        }
        Ok(n)
    }

    /// This process's name in the consumer group.
    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    fn queue(&self) -> String {
        format!("{}queue", self.prefix)
    }
    fn dead(&self) -> String {
        format!("{}dead", self.prefix)
    }
    fn dead_count(&self) -> String {
        format!("{}dead:count", self.prefix)
    }
    fn events(&self) -> String {
        format!("{}event:", self.prefix)
    }
    fn event_key(&self, id: u64) -> String {
        format!("{}event:{id}", self.prefix)
    }

    /// Stores the event, owned by this process; `dedup` is the key to mark delivered until
    /// the given unix ms, in the same script.
    pub async fn enqueue(
        &self,
        conn: &mut ConnectionManager,
        event: &Event,
        mut meta: Meta,
        dedup: Option<(String, u64)>,
    ) -> Result<Meta, StoreError> {
        let mut call = self.enqueue.key(self.queue());
        call.key(format!("{}seq", self.prefix));
        let expiry = match dedup {
            Some((key, expires_ms)) => {
                call.key(key);
                expires_ms.max(1).to_string()
            }
            None => String::new(),
        };
        call.arg(&self.consumer)
            .arg(self.events())
            .arg(event.encode())
            .arg(meta.encode())
            .arg(expiry);
        let id: String = call.invoke_async(conn).await.map_err(backend)?;
        meta.id = id_of(&id)?;
        Ok(meta)
    }

    pub async fn event(
        &self,
        conn: &mut ConnectionManager,
        id: u64,
    ) -> Result<Option<Event>, StoreError> {
        let bytes: Option<Vec<u8>> = self
            .event
            .key(self.queue())
            .key(self.event_key(id))
            .arg(&self.consumer)
            .invoke_async(conn)
            .await
            .map_err(backend)?;
        Ok(bytes.map(|b| Event::decode(&b)).transpose()?)
    }

    pub async fn ack(&self, conn: &mut ConnectionManager, id: u64) -> Result<(), StoreError> {
        self.ack
            .key(self.queue())
            .key(self.event_key(id))
            .invoke_async::<u8>(conn)
            .await
            .map(drop)
            .map_err(backend)
    }

    pub async fn reschedule(
        &self,
        conn: &mut ConnectionManager,
        meta: &Meta,
    ) -> Result<(), StoreError> {
        self.reschedule
            .key(self.event_key(meta.id))
            .arg(meta.encode())
            .invoke_async::<u8>(conn)
            .await
            .map(drop)
            .map_err(backend)
    }

    pub async fn dead_letter(
        &self,
        conn: &mut ConnectionManager,
        meta: &Meta,
    ) -> Result<(), StoreError> {
        self.bury
            .key(self.queue())
            .key(self.event_key(meta.id))
            .key(self.dead())
            .key(self.dead_count())
            .arg(meta.encode())
            .arg(meta.id)
            .arg(&meta.route)
            .invoke_async::<u8>(conn)
            .await
            .map(drop)
            .map_err(backend)
    }

    async fn list(
        &self,
        conn: &mut ConnectionManager,
        stream: String,
    ) -> Result<Vec<Meta>, StoreError> {
        let rows: Vec<(String, Vec<u8>)> = self
            .list
            .key(stream)
            .arg(self.events())
            .invoke_async(conn)
            .await
            .map_err(backend)?;
        rows.iter().map(|(id, m)| meta_of(id, m)).collect()
    }

    /// Every pending event of the fleet.
    pub async fn pending(&self, conn: &mut ConnectionManager) -> Result<Vec<Meta>, StoreError> {
        self.list(conn, self.queue()).await
    }

    /// Every dead letter of the fleet, oldest first.
    pub async fn dead_letters(
        &self,
        conn: &mut ConnectionManager,
    ) -> Result<Vec<Meta>, StoreError> {
        self.list(conn, self.dead()).await
    }

    /// Moves these dead letters (as read, with the state they resume with) back into the
    /// queue, owned by this process; returns those that were still dead.
    pub async fn replay(
        &self,
        conn: &mut ConnectionManager,
        chosen: Vec<Meta>,
    ) -> Result<Vec<Meta>, StoreError> {
        if chosen.is_empty() {
            return Ok(chosen);
        }
        let mut call = self.replay.key(self.queue());
        call.key(self.dead())
            .key(self.dead_count())
            .arg(&self.consumer)
            .arg(self.events());
        for m in &chosen {
            call.arg(m.id).arg(&m.route).arg(m.encode());
        }
        let moved: Vec<String> = call.invoke_async(conn).await.map_err(backend)?;
        let moved = moved
            .iter()
            .map(|s| id_of(s))
            .collect::<Result<Vec<u64>, _>>()?;
        Ok(chosen
            .into_iter()
            .filter(|m| moved.contains(&m.id))
            .collect())
    }

    /// Deletes these dead letters; returns those that were still there.
    pub async fn drop_dead(
        &self,
        conn: &mut ConnectionManager,
        chosen: Vec<Meta>,
    ) -> Result<Vec<Meta>, StoreError> {
        if chosen.is_empty() {
            return Ok(chosen);
        }
        let mut call = self.drop.key(self.dead());
        call.key(self.dead_count()).arg(self.events());
        for m in &chosen {
            call.arg(m.id).arg(&m.route);
        }
        let gone: Vec<String> = call.invoke_async(conn).await.map_err(backend)?;
        let gone = gone
            .iter()
            .map(|s| id_of(s))
            .collect::<Result<Vec<u64>, _>>()?;
        Ok(chosen
            .into_iter()
            .filter(|m| gone.contains(&m.id))
            .collect())
    }

    /// One lease round: renew what this process owns, adopt what nobody renewed, and read the
    /// fleet's dead-letter counts.
    pub async fn renew(
        &self,
        conn: &mut ConnectionManager,
        owns: &[u64],
    ) -> Result<Leases, StoreError> {
        let mut leases = Leases::default();
        for batch in owns.chunks(RENEW_BATCH) {
            let mut call = self.renew.key(self.queue());
            call.arg(&self.consumer).arg(self.events());
            for id in batch {
                call.arg(id);
            }
            let lost: Vec<String> = call.invoke_async(conn).await.map_err(backend)?;
            for s in &lost {
                leases.lost.push(id_of(s)?);
            }
        }
        let lease_ms = self.lease_ms();
        let mut cursor = self.cursor().clone();
        for _ in 0..ADOPT_CALLS {
            let (next, rows): (String, Vec<(String, Vec<u8>)>) = self
                .adopt
                .key(self.queue())
                .arg(&self.consumer)
                .arg(lease_ms)
                .arg(&cursor)
                .arg(ADOPT_COUNT)
                .arg(self.events())
                .invoke_async(conn)
                .await
                .map_err(backend)?;
            for (id, m) in &rows {
                leases.adopted.push(meta_of(id, m)?);
            }
            *self.cursor() = next.clone();
            if next == START {
                break;
            }
            cursor = next;
        }
        let counts: HashMap<String, i64> = redis::cmd("HGETALL")
            .arg(self.dead_count())
            .query_async(conn)
            .await
            .map_err(backend)?;
        leases.dead = counts.into_iter().filter(|(_, n)| *n > 0).collect();
        Ok(leases)
    }
}
