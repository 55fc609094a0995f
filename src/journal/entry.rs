//! One journal event: what happened to one request, as the admin API shows it.

use std::time::{SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use serde::{Deserialize, Serialize};

/// What replaces a redacted header value.
pub const REDACTED: &str = "[redacted]";

/// Headers whose values never reach the journal: credentials, and every signature header a
/// built-in scheme reads (a generic `hmac` route adds its own).
const ALWAYS_REDACTED: &[&str] = &[
    "authorization",
    "cookie",
    "proxy-authorization",
    "linear-signature",
    "paddle-signature",
    "stripe-signature",
    "svix-signature",
    "webhook-signature",
    "x-gitlab-token",
    "x-hub-signature",
    "x-hub-signature-256",
    "x-mediaconvert-signature",
    "x-shopify-hmac-sha256",
    "x-slack-signature",
    "x-twilio-email-event-webhook-signature",
    "x-twilio-signature",
    "x-zm-signature",
];

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

/// A journal event (docs/journal.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Sortable (time first) and unique across replicas.
    pub id: String,
    /// RFC 3339, UTC.
    pub received_at: String,
    /// Unix ms: what filters and the age limit compare.
    pub received_ms: u64,
    pub route: Option<String>,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub client_ip: String,
    pub provider: Option<String>,
    /// forwarded | rejected | duplicate | queued | failed | answered
    pub outcome: String,
    pub reason: Option<String>,
    pub status: u16,
    pub duration_ms: f64,
    pub key_id: Option<String>,
    pub delivery_id: Option<String>,
    pub dedup_key: Option<String>,
    pub diagnosis: Option<String>,
    /// As received, in order; secrets and signatures replaced by `[redacted]`.
    pub headers: Vec<(String, String)>,
    /// The body as received, base64; `None` when not kept (refused before it was read, or
    /// `capture_body: false`).
    pub body_b64: Option<String>,
    pub body_truncated: bool,
    /// Queued events: pending | delivered | dead | paused.
    pub state: Option<String>,
    pub attempts: Vec<AttemptRecord>,
    /// The original's id, for replays.
    pub replay_of: Option<String>,
    /// The spool's id of a queued event, linking its attempts.
    pub queue_id: Option<u64>,
}

impl Entry {
    /// Whether the request passed verification: only such events can be replayed.
    pub fn accepted(&self) -> bool {
        self.key_id.is_some() && self.route.is_some()
    }

    /// The list view: everything but headers, body and attempts.
    pub fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "received_at": self.received_at,
            "route": self.route,
            "method": self.method,
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
            "replay_of": self.replay_of,
        })
    }

    /// Roughly what the entry holds in memory, for the ring's accounting.
    pub fn weight(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|(k, v)| k.len() + v.len() + 48)
            .sum();
        std::mem::size_of::<Self>()
            + self.id.len()
            + self.path.len()
            + headers
            + self.body_b64.as_ref().map_or(0, String::len)
    }
}

/// The headers as received, with the values of credentials, of known signature headers and of
/// `signature` (a generic route's own header) replaced.
pub fn redacted_headers(headers: &HeaderMap, signature: &[&str]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| {
            let name = k.as_str();
            let secret = ALWAYS_REDACTED.contains(&name)
                || signature.iter().any(|s| s.eq_ignore_ascii_case(name));
            let value = if secret {
                REDACTED.to_string()
            } else {
                String::from_utf8_lossy(v.as_bytes()).into_owned()
            };
            (name.to_string(), value)
        })
        .collect()
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
        format!("{:012x}{:08x}{n:06x}", ms & 0xffff_ffff_ffff, self.instance)
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
    }

    #[test]
    fn secrets_and_signatures_are_redacted() {
        let mut h = HeaderMap::new();
        h.insert("x-mediaconvert-signature", "sha256=abc".parse().unwrap());
        h.insert("authorization", "Bearer t".parse().unwrap());
        h.insert("content-type", "application/json".parse().unwrap());
        let r = redacted_headers(&h, &["X-MediaConvert-Signature"]);
        let get = |n: &str| r.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        assert_eq!(get("x-mediaconvert-signature"), Some(REDACTED));
        assert_eq!(get("authorization"), Some(REDACTED));
        assert_eq!(get("content-type"), Some("application/json"));
    }

    #[test]
    fn times_round_trip() {
        let s = rfc3339(1_700_000_000_123);
        assert_eq!(s, "2023-11-14T22:13:20.123Z");
        assert_eq!(parse_rfc3339(&s), Some(1_700_000_000_123));
    }
}
