//! The form a journal event takes in a redb file or in Redis: JSON, so an operator can read it
//! with `redis-cli` too, with the body in base64 and header values kept byte for byte.
//!
//! A queued event's attempts and state change after it is recorded, often on another replica,
//! and sometimes before the event itself is written. They are kept apart, as [`Update`] lines
//! appended under the event's queue link (route and queue id), and merged in when it is read:
//! nothing is rewritten, and the order in which they arrive does not matter.

use std::borrow::Cow;
use std::net::IpAddr;

use base64::Engine as _;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::entry::{AttemptRecord, Entry};
use super::headers::Headers;

/// A header as stored: `[name, value]`, or `[name, base64 value, 1]` for a value that is not
/// UTF-8.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Header {
    Text(String, String),
    Binary(String, String, u8),
}

#[derive(Serialize, Deserialize)]
struct Stored {
    id: String,
    received_ms: u64,
    route: Option<String>,
    method: String,
    path: String,
    query: Option<String>,
    client_ip: Option<IpAddr>,
    provider: Option<String>,
    outcome: String,
    reason: Option<String>,
    status: u16,
    duration_ms: f64,
    key_id: Option<String>,
    delivery_id: Option<String>,
    dedup_key: Option<String>,
    diagnosis: Option<String>,
    headers: Vec<Header>,
    body_b64: Option<String>,
    body_truncated: bool,
    state: Option<String>,
    #[serde(default)]
    attempts: Vec<AttemptRecord>,
    replay_of: Option<String>,
    queue_id: Option<u64>,
    /// Absent in events stored before tracing, or with it off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    trace_id: Option<String>,
    /// `authz` for a proxy's check; absent for the gateway's own requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mode: Option<String>,
}

fn b64() -> &'static base64::engine::GeneralPurpose {
    &base64::engine::general_purpose::STANDARD
}

/// `e` as stored.
pub fn encode(e: &Entry) -> Vec<u8> {
    let headers = e
        .headers
        .iter()
        .map(|(k, v)| match std::str::from_utf8(v) {
            Ok(s) => Header::Text(k.to_string(), s.to_string()),
            Err(_) => Header::Binary(k.to_string(), b64().encode(v), 1),
        })
        .collect();
    let s = Stored {
        id: e.id.clone(),
        received_ms: e.received_ms,
        route: e.route.as_deref().map(str::to_string),
        method: e.method.as_str().to_string(),
        path: e.path.clone(),
        query: e.query.clone(),
        client_ip: e.client_ip,
        provider: e.provider.as_deref().map(str::to_string),
        outcome: e.outcome.to_string(),
        reason: e.reason.as_deref().map(str::to_string),
        status: e.status,
        duration_ms: e.duration_ms,
        key_id: e.key_id.as_deref().map(str::to_string),
        delivery_id: e.delivery_id.clone(),
        dedup_key: e.dedup_key.clone(),
        diagnosis: e.diagnosis.clone(),
        headers,
        body_b64: e.body.as_ref().map(|b| b64().encode(b)),
        body_truncated: e.body_truncated,
        state: e.state.as_deref().map(str::to_string),
        attempts: e.attempts.clone(),
        replay_of: e.replay_of.clone(),
        queue_id: e.queue_id,
        trace_id: e.trace_id.clone(),
        mode: e.authz.then(|| "authz".to_string()),
    };
    serde_json::to_vec(&s).unwrap_or_default()
}

/// A stored event read back; `None` when it is not one (a foreign or damaged value).
pub fn decode(bytes: &[u8]) -> Option<Entry> {
    let s: Stored = serde_json::from_slice(bytes).ok()?;
    let mut headers = Headers::default();
    for h in s.headers {
        match h {
            Header::Text(n, v) => headers.push(&n, v.as_bytes()),
            Header::Binary(n, v, _) => headers.push(&n, &b64().decode(v).ok()?),
        }
    }
    let body = match s.body_b64 {
        Some(b) => Some(Bytes::from(b64().decode(b).ok()?)),
        None => None,
    };
    Some(Entry {
        id: s.id,
        received_ms: s.received_ms,
        route: s.route.map(Into::into),
        method: s.method.parse().ok()?,
        path: s.path,
        query: s.query,
        client_ip: s.client_ip,
        provider: s.provider.map(Cow::Owned),
        outcome: Cow::Owned(s.outcome),
        reason: s.reason.map(Cow::Owned),
        status: s.status,
        duration_ms: s.duration_ms,
        key_id: s.key_id.map(Into::into),
        delivery_id: s.delivery_id,
        dedup_key: s.dedup_key,
        diagnosis: s.diagnosis,
        headers,
        body,
        body_truncated: s.body_truncated,
        state: s.state.map(Cow::Owned),
        attempts: s.attempts,
        replay_of: s.replay_of,
        queue_id: s.queue_id,
        trace_id: s.trace_id,
        authz: s.mode.as_deref() == Some("authz"),
    })
}

/// A queued event's attempt (if any) and the state it left the event in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Update {
    pub state: String,
    pub attempt: Option<AttemptRecord>,
}

/// Where a queued event's updates are kept: its route and queue id (`\0` cannot occur in a
/// route name).
pub fn link(route: &str, queue_id: u64) -> String {
    format!("{route}\0{queue_id}")
}

/// The link of a stored event, if it was queued.
pub fn link_of(e: &Entry) -> Option<String> {
    Some(link(e.route.as_deref()?, e.queue_id?))
}

/// One update as a line to append.
pub fn update_line(u: &Update) -> Vec<u8> {
    let mut v = serde_json::to_vec(u).unwrap_or_default();
    v.push(b'\n');
    v
}

/// Applies the appended `lines` to `e`, in the order they were written.
pub fn apply(e: &mut Entry, lines: &[u8]) {
    for line in lines.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        if let Ok(u) = serde_json::from_slice::<Update>(line) {
            e.attempts.extend(u.attempt);
            e.state = Some(Cow::Owned(u.state));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_round_trips_with_binary_headers_and_updates() {
        let mut headers = Headers::default();
        headers.push("x-a", b"1");
        headers.push("x-a", b"2");
        headers.push("x-bin", b"caf\xe9");
        let e = Entry {
            id: "0001".into(),
            received_ms: 1_700_000_000_000,
            route: Some("r".into()),
            method: http::Method::POST,
            path: "/hook".into(),
            query: Some("a=1".into()),
            client_ip: Some("10.0.0.1".parse().unwrap()),
            provider: Some("github".into()),
            outcome: "queued".into(),
            reason: None,
            status: 202,
            duration_ms: 1.5,
            key_id: Some("k".into()),
            delivery_id: Some("d".into()),
            dedup_key: None,
            diagnosis: None,
            headers,
            body: Some(Bytes::from_static(b"{\"a\":1}\n\x00\xff")),
            body_truncated: false,
            state: Some("pending".into()),
            attempts: vec![],
            replay_of: None,
            queue_id: Some(7),
            trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
            authz: false,
        };
        let mut back = decode(&encode(&e)).unwrap();
        assert_eq!(back.to_json(), e.to_json());
        assert_eq!(back.headers, e.headers);
        assert_eq!(link_of(&back).as_deref(), Some("r\x007"));
        let attempt = AttemptRecord {
            at: "2023-11-14T22:13:20.000Z".into(),
            status: Some(503),
            duration_ms: 2.0,
            error: Some("backend answered 503".into()),
        };
        let mut lines = update_line(&Update {
            state: "pending".into(),
            attempt: Some(attempt.clone()),
        });
        lines.extend(update_line(&Update {
            state: "dead".into(),
            attempt: None,
        }));
        apply(&mut back, &lines);
        assert_eq!(back.attempts, vec![attempt]);
        assert_eq!(back.state.as_deref(), Some("dead"));
        assert!(decode(b"not json").is_none());
    }
}
