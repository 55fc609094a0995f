//! What the store keeps, and its compact binary form: an accepted event (written once) and its
//! delivery state (rewritten after each attempt, so a retry does not rewrite the body).

use bytes::Bytes;

/// An accepted event as it will be sent: the request after header hygiene and trusted headers,
/// minus what is set per attempt (attempt number, delivery mode, attestation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Upstream path and query: the route's mapping of the request path, the sender's query.
    pub path_and_query: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Bytes,
    /// For the attestation, recomputed at each attempt.
    pub provider: String,
    pub key_id: String,
    /// The W3C context of the request that accepted it (`telemetry.otlp` on), so every later
    /// attempt is a span of that request's trace. Records written before it have none.
    pub trace: Option<TraceContext>,
}

/// A W3C trace context as its two headers' values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    pub traceparent: String,
    pub tracestate: String,
}

/// The delivery state of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub id: u64,
    pub route: String,
    /// The dedup key, when dedup is on: sent as `X-Webhook-Id`, kept on replay.
    pub key: Option<String>,
    /// Unix ms when hookgate accepted it.
    pub received_ms: u64,
    /// Attempts made so far.
    pub attempts: u32,
    /// Unix ms of the next attempt.
    pub next_ms: u64,
    /// Hybrid: the sender got 202 after the deadline (`X-Webhook-Delivery: deferred`).
    pub deferred: bool,
    /// Why the last attempt failed; empty before the first.
    pub last_error: String,
}

/// Record format version, first byte of every value.
const VERSION: u8 = 1;

/// Marks the optional trace context after an event's body.
const TRACE_TRAILER: u8 = 1;

/// A stored value could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stored record is malformed")]
pub struct Malformed;

struct Writer(Vec<u8>);

impl Writer {
    fn new(capacity: usize) -> Self {
        let mut v = Vec::with_capacity(capacity + 1);
        v.push(VERSION);
        Self(v)
    }
    fn u64(&mut self, n: u64) {
        self.0.extend_from_slice(&n.to_le_bytes());
    }
    fn u32(&mut self, n: u32) {
        self.0.extend_from_slice(&n.to_le_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u32(u32::try_from(b.len()).unwrap_or(u32::MAX));
        self.0.extend_from_slice(b);
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn new(b: &'a [u8]) -> Result<Self, Malformed> {
        match b.split_first() {
            Some((&VERSION, rest)) => Ok(Self(rest)),
            _ => Err(Malformed),
        }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if self.0.len() < n {
            return Err(Malformed);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u64(&mut self) -> Result<u64, Malformed> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().map_err(|_| Malformed)?))
    }
    fn u32(&mut self) -> Result<u32, Malformed> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes(b.try_into().map_err(|_| Malformed)?))
    }
    fn bytes(&mut self) -> Result<&'a [u8], Malformed> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn string(&mut self) -> Result<String, Malformed> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| Malformed)
    }
}

impl Event {
    pub fn encode(&self) -> Vec<u8> {
        let size = self.body.len()
            + self.path_and_query.len()
            + self
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.len() + 8)
                .sum::<usize>()
            + 64;
        let mut w = Writer::new(size);
        w.bytes(self.path_and_query.as_bytes());
        w.bytes(self.provider.as_bytes());
        w.bytes(self.key_id.as_bytes());
        w.u32(u32::try_from(self.headers.len()).unwrap_or(u32::MAX));
        for (k, v) in &self.headers {
            w.bytes(k.as_bytes());
            w.bytes(v);
        }
        w.bytes(&self.body);
        // An optional trailer: a record without it (written by an earlier version) reads as
        // having no trace context, and an earlier version reading this one stops before it.
        if let Some(t) = &self.trace {
            w.0.push(TRACE_TRAILER);
            w.bytes(t.traceparent.as_bytes());
            w.bytes(t.tracestate.as_bytes());
        }
        w.0
    }

    pub fn decode(b: &[u8]) -> Result<Self, Malformed> {
        let mut r = Reader::new(b)?;
        let path_and_query = r.string()?;
        let provider = r.string()?;
        let key_id = r.string()?;
        let n = r.u32()? as usize;
        let mut headers = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            headers.push((r.string()?, r.bytes()?.to_vec()));
        }
        let body = Bytes::copy_from_slice(r.bytes()?);
        let trace = match r.0.split_first() {
            None => None,
            Some((&TRACE_TRAILER, rest)) => {
                r.0 = rest;
                Some(TraceContext {
                    traceparent: r.string()?,
                    tracestate: r.string()?,
                })
            }
            Some(_) => return Err(Malformed),
        };
        Ok(Self {
            path_and_query,
            headers,
            body,
            provider,
            key_id,
            trace,
        })
    }
}

impl Meta {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(64 + self.route.len() + self.last_error.len());
        w.u64(self.id);
        w.bytes(self.route.as_bytes());
        match &self.key {
            Some(k) => {
                w.0.push(1);
                w.bytes(k.as_bytes());
            }
            None => w.0.push(0),
        }
        w.u64(self.received_ms);
        w.u32(self.attempts);
        w.u64(self.next_ms);
        w.0.push(u8::from(self.deferred));
        w.bytes(self.last_error.as_bytes());
        w.0
    }

    pub fn decode(b: &[u8]) -> Result<Self, Malformed> {
        let mut r = Reader::new(b)?;
        let id = r.u64()?;
        let route = r.string()?;
        let key = match r.take(1)? {
            [0] => None,
            [1] => Some(r.string()?),
            _ => return Err(Malformed),
        };
        Ok(Self {
            id,
            route,
            key,
            received_ms: r.u64()?,
            attempts: r.u32()?,
            next_ms: r.u64()?,
            deferred: r.take(1)? == [1],
            last_error: r.string()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let e = Event {
            path_and_query: "/up?a=1".into(),
            headers: vec![("x-a".into(), b"1".to_vec()), ("x-b".into(), vec![0xff])],
            body: Bytes::from_static(b"{\"a\":1}"),
            provider: "github".into(),
            key_id: "k1".into(),
            trace: None,
        };
        assert_eq!(Event::decode(&e.encode()), Ok(e.clone()));
        let traced = Event {
            trace: Some(TraceContext {
                traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(),
                tracestate: "k=v".into(),
            }),
            ..e.clone()
        };
        assert_eq!(Event::decode(&traced.encode()), Ok(traced.clone()));
        let enc = traced.encode();
        for cut in [enc.len() - 1, e.encode().len() + 2] {
            assert_eq!(Event::decode(&enc[..cut]), Err(Malformed), "cut at {cut}");
        }
        let m = Meta {
            id: 7,
            route: "r".into(),
            key: Some("abc".into()),
            received_ms: 1,
            attempts: 2,
            next_ms: 3,
            deferred: true,
            last_error: "backend answered 503".into(),
        };
        assert_eq!(Meta::decode(&m.encode()), Ok(m.clone()));
        let m2 = Meta { key: None, ..m };
        assert_eq!(Meta::decode(&m2.encode()), Ok(m2));
        let enc = e.encode();
        for cut in [0, 1, 5, enc.len() - 1] {
            assert_eq!(Event::decode(&enc[..cut]), Err(Malformed), "cut at {cut}");
        }
        assert_eq!(Meta::decode(&[2, 0, 0]), Err(Malformed));
    }

    /// A record as the previous version wrote it (no trace trailer), byte for byte, still reads.
    #[test]
    fn records_without_trace_context_still_read() {
        let mut old = vec![VERSION];
        for field in [&b"/up"[..], b"github", b"k1"] {
            old.extend_from_slice(&(field.len() as u32).to_le_bytes());
            old.extend_from_slice(field);
        }
        old.extend_from_slice(&0u32.to_le_bytes());
        old.extend_from_slice(&2u32.to_le_bytes());
        old.extend_from_slice(b"{}");
        let e = Event::decode(&old).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(e.path_and_query, "/up");
        assert_eq!(&e.body[..], b"{}");
        assert_eq!(e.trace, None);
    }
}
