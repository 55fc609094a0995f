//! One journal event: what happened to one request, as the admin API shows it.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::headers::Headers;

/// One delivery attempt of a queued (or replayed) event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// RFC 3339.
    pub at: String,
    /// The backend's status, when it answered.
    pub status: Option<u16>,
    pub duration_ms: f64,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

/// A journal event (docs/journal.md). Built on the request path, so it holds what is cheap to
/// keep (shared strings, the header map and body as received) and is formatted only when the
/// API shows it.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Sortable (time first) and unique across replicas.
    pub id: String,
    /// Unix ms.
    pub received_ms: u64,
    pub route: Option<Arc<str>>,
    pub method: http::Method,
    pub path: String,
    pub query: Option<String>,
    pub client_ip: Option<IpAddr>,
    pub provider: Option<Cow<'static, str>>,
    /// forwarded | rejected | duplicate | queued | failed | answered
    pub outcome: Cow<'static, str>,
    pub reason: Option<Cow<'static, str>>,
    pub status: u16,
    pub duration_ms: f64,
    pub key_id: Option<Arc<str>>,
    pub delivery_id: Option<String>,
    pub dedup_key: Option<String>,
    pub diagnosis: Option<String>,
    /// As received, in order; secrets and signatures already replaced by `[redacted]`.
    pub headers: Headers,
    /// The body as received (cut at `max_body_bytes`); `None` when not kept.
    pub body: Option<Bytes>,
    pub body_truncated: bool,
    /// Queued events: pending | paused | delivered | dead | replayed | dropped.
    pub state: Option<Cow<'static, str>>,
    pub attempts: Vec<AttemptRecord>,
    /// The original's id, for replays.
    pub replay_of: Option<String>,
    /// The spool's id of a queued event, linking its attempts.
    pub queue_id: Option<u64>,
    /// The request's trace (`telemetry.otlp` on): 32 hex digits.
    pub trace_id: Option<String>,
    /// A proxy's check (verify-only mode): hookgate decided, the proxy delivered.
    pub authz: bool,
}

impl Entry {
    /// Whether the request passed verification: only such events can be replayed.
    /// A check's event is not: the proxy delivered it, and hookgate may not deliver it again.
    pub fn accepted(&self) -> bool {
        self.key_id.is_some() && self.route.is_some() && !self.authz
    }

    /// `gateway` or `authz`.
    pub fn mode(&self) -> &'static str {
        if self.authz {
            "authz"
        } else {
            "gateway"
        }
    }

    /// The list view: everything but headers, body and attempts (their number and the last
    /// one's error, which a list of dead letters needs).
    pub fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "received_at": rfc3339(self.received_ms),
            "route": self.route.as_deref(),
            "mode": self.mode(),
            "method": self.method.as_str(),
            "path": self.path,
            "provider": self.provider,
            "outcome": self.outcome,
            "reason": self.reason,
            "status": self.status,
            "duration_ms": self.duration_ms,
            "delivery_id": self.delivery_id,
            "dedup_key": self.dedup_key,
            "diagnosis": self.diagnosis,
            "state": self.state,
            "attempts": self.attempts.len(),
            "last_error": self.attempts.last().and_then(|a| a.error.as_deref()),
            "replay_of": self.replay_of,
            "queue_id": self.queue_id,
            "trace_id": self.trace_id,
        })
    }

    /// The whole event as the API shows it.
    pub fn to_json(&self) -> serde_json::Value {
        use base64::Engine;
        let headers: Vec<(&str, String)> = self
            .headers
            .iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(v).into_owned()))
            .collect();
        let mut v = self.summary();
        v["query"] = serde_json::json!(self.query);
        v["client_ip"] = serde_json::json!(self.client_ip.map(|ip| ip.to_string()));
        v["key_id"] = serde_json::json!(self.key_id.as_deref());
        v["headers"] = serde_json::json!(headers);
        v["body_b64"] = serde_json::json!(self
            .body
            .as_ref()
            .map(|b| base64::engine::general_purpose::STANDARD.encode(b)));
        v["body_truncated"] = serde_json::json!(self.body_truncated);
        v["attempts"] = serde_json::json!(self.attempts);
        v
    }
}

/// RFC 3339 in UTC with milliseconds, from unix ms.
pub fn rfc3339(ms: u64) -> String {
    let t = UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime::format_rfc3339_millis(t).to_string()
}

/// Unix ms from RFC 3339.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let t: SystemTime = humantime::parse_rfc3339_weak(s).ok()?;
    let d = t.duration_since(UNIX_EPOCH).ok()?;
    u64::try_from(d.as_millis()).ok()
}

/// Event ids: 12 hex digits of unix ms, 8 of this process's random instance, 6 of a counter. A
/// string sort is a time sort; two replicas never collide.
pub struct Ids {
    instance: u32,
    counter: std::sync::atomic::AtomicU32,
}

impl Ids {
    pub fn new() -> Self {
        Self {
            instance: fastrand::u32(..),
            counter: std::sync::atomic::AtomicU32::new(0),
        }
    }

    pub fn next(&self, ms: u64) -> String {
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            & 0xff_ffff;
        // Written digit by digit: `format!` cost more than the rest of the entry's fields.
        let mut id = String::with_capacity(26);
        let fields = [
            (ms & 0xffff_ffff_ffff, 12),
            (u64::from(self.instance), 8),
            (u64::from(n), 6),
        ];
        for (value, digits) in fields {
            for i in (0..digits).rev() {
                id.push(char::from(
                    b"0123456789abcdef"[((value >> (i * 4)) & 0xf) as usize],
                ));
            }
        }
        id
    }
}

impl Default for Ids {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_time_and_differ() {
        let ids = Ids::new();
        let a = ids.next(1_700_000_000_000);
        let b = ids.next(1_700_000_000_000);
        let c = ids.next(1_700_000_000_001);
        assert!(a < c && b < c && a != b);
        assert_eq!(a.len(), 26);
        let n = u64::from(ids.counter.load(std::sync::atomic::Ordering::Relaxed));
        let want = format!("{:012x}{:08x}{:06x}", 1_700_000_000_002u64, ids.instance, n);
        assert_eq!(ids.next(1_700_000_000_002), want);
    }

    #[test]
    fn times_round_trip() {
        let s = rfc3339(1_700_000_000_123);
        assert_eq!(s, "2023-11-14T22:13:20.123Z");
        assert_eq!(parse_rfc3339(&s), Some(1_700_000_000_123));
    }
}
