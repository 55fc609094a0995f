//! The memory ring's form of an event: its fields packed into bytes by the journal's writer.
//!
//! An [`Entry`] is a dozen allocations made on the request's thread. Held for 100,000 events
//! and freed when the oldest leave, they were freed cold and from another thread, which cost
//! more than the rest of a request. Packed, an event is one run of bytes in the ring's arena
//! and the entry is freed at once, warm, by the writer. Packing is copying, no formatting; an
//! event is unpacked only when the API reads it.

use std::borrow::Cow;
use std::net::IpAddr;

use bytes::Bytes;

use super::entry::{AttemptRecord, Entry};
use super::headers::Headers;

/// Where packed bytes go: counted first, then written straight into the arena, so an event's
/// bytes are copied once.
trait Sink {
    fn put(&mut self, b: &[u8]);
}

/// Only counts.
struct Count(usize);

impl Sink for Count {
    fn put(&mut self, b: &[u8]) {
        self.0 += b.len();
    }
}

/// Fills a slice of exactly the counted length.
struct Fill<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Sink for Fill<'_> {
    fn put(&mut self, b: &[u8]) {
        let end = self.at + b.len();
        if let Some(dst) = self.buf.get_mut(self.at..end) {
            dst.copy_from_slice(b);
        }
        self.at = end;
    }
}

#[cfg(test)]
impl Sink for Vec<u8> {
    fn put(&mut self, b: &[u8]) {
        self.extend_from_slice(b);
    }
}

struct Out<'s, S>(&'s mut S);

impl<S: Sink> Out<'_, S> {
    fn u8(&mut self, n: u8) {
        self.0.put(&[n]);
    }
    fn u64(&mut self, n: u64) {
        self.0.put(&n.to_le_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u64(b.len() as u64);
        self.0.put(b);
    }
    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
    fn opt_bytes(&mut self, b: Option<&[u8]>) {
        match b {
            Some(b) => {
                self.u8(1);
                self.bytes(b);
            }
            None => self.u8(0),
        }
    }
    fn opt(&mut self, s: Option<&str>) {
        self.opt_bytes(s.map(str::as_bytes));
    }
}

struct In<'a>(&'a [u8]);

impl<'a> In<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.u64()?).ok()?;
        self.take(n)
    }
    fn str(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.bytes()?).ok()
    }
    fn string(&mut self) -> Option<String> {
        self.str().map(str::to_string)
    }
    fn opt(&mut self) -> Option<Option<&'a str>> {
        match self.u8()? {
            0 => Some(None),
            _ => self.str().map(Some),
        }
    }
    fn opt_string(&mut self) -> Option<Option<String>> {
        Some(self.opt()?.map(str::to_string))
    }
}

/// How many bytes `e` packs into.
pub fn packed_len(e: &Entry) -> usize {
    let mut n = Count(0);
    pack_to(e, &mut n);
    n.0
}

/// `e` packed into `buf`, which is [`packed_len`] bytes long.
pub fn pack_into(e: &Entry, buf: &mut [u8]) {
    pack_to(e, &mut Fill { buf, at: 0 });
}

fn pack_to<S: Sink>(e: &Entry, sink: &mut S) {
    let mut o = Out(sink);
    o.str(&e.id);
    o.u64(e.received_ms);
    o.opt(e.route.as_deref());
    o.str(e.method.as_str());
    o.str(&e.path);
    o.opt(e.query.as_deref());
    match e.client_ip {
        Some(IpAddr::V4(ip)) => o.opt_bytes(Some(&ip.octets())),
        Some(IpAddr::V6(ip)) => o.opt_bytes(Some(&ip.octets())),
        None => o.opt_bytes(None),
    }
    o.opt(e.provider.as_deref());
    o.str(&e.outcome);
    o.opt(e.reason.as_deref());
    o.u64(u64::from(e.status));
    o.u64(e.duration_ms.to_bits());
    o.opt(e.key_id.as_deref());
    o.opt(e.delivery_id.as_deref());
    o.opt(e.dedup_key.as_deref());
    o.opt(e.diagnosis.as_deref());
    o.u64(e.headers.len() as u64);
    for (k, v) in e.headers.iter() {
        o.str(k);
        o.bytes(v);
    }
    o.opt_bytes(e.body.as_deref());
    o.u8(u8::from(e.body_truncated));
    o.opt(e.state.as_deref());
    o.u64(e.attempts.len() as u64);
    for a in &e.attempts {
        o.str(&a.at);
        o.u64(a.status.map_or(u64::MAX, u64::from));
        o.u64(a.duration_ms.to_bits());
        o.opt(a.error.as_deref());
    }
    o.opt(e.replay_of.as_deref());
    o.u64(e.queue_id.map_or(u64::MAX, |q| q));
    o.opt(e.trace_id.as_deref());
    o.u8(u8::from(e.authz));
}

/// `e` packed into a new buffer.
#[cfg(test)]
pub fn pack(e: &Entry) -> Vec<u8> {
    let mut buf = Vec::new();
    pack_to(e, &mut buf);
    buf
}

/// A packed event's id, read in place (it is packed first); empty when `b` is not an event.
pub fn packed_id(b: &[u8]) -> &str {
    In(b).str().unwrap_or_default()
}

/// A packed event unpacked; `None` only if `b` was not made by [`pack_into`].
pub fn unpack(b: &[u8]) -> Option<Entry> {
    let mut i = In(b);
    let id = i.string()?;
    let received_ms = i.u64()?;
    let route = i.opt()?.map(Into::into);
    let method = i.str()?.parse().ok()?;
    let path = i.string()?;
    let query = i.opt_string()?;
    let client_ip = match i.u8()? {
        0 => None,
        _ => Some(ip(i.bytes()?)?),
    };
    let provider = i.opt_string()?.map(Cow::Owned);
    let outcome = Cow::Owned(i.string()?);
    let reason = i.opt_string()?.map(Cow::Owned);
    let status = u16::try_from(i.u64()?).ok()?;
    let duration_ms = f64::from_bits(i.u64()?);
    let key_id = i.opt()?.map(Into::into);
    let delivery_id = i.opt_string()?;
    let dedup_key = i.opt_string()?;
    let diagnosis = i.opt_string()?;
    let mut headers = Headers::default();
    for _ in 0..i.u64()? {
        let k = i.str()?;
        headers.push(k, i.bytes()?);
    }
    let body = match i.u8()? {
        0 => None,
        _ => Some(Bytes::copy_from_slice(i.bytes()?)),
    };
    let body_truncated = i.u8()? != 0;
    let state = i.opt_string()?.map(Cow::Owned);
    let mut attempts = Vec::new();
    for _ in 0..i.u64()? {
        let at = i.string()?;
        let status = u16::try_from(i.u64()?).ok();
        let duration_ms = f64::from_bits(i.u64()?);
        let error = i.opt_string()?;
        attempts.push(AttemptRecord {
            at,
            status,
            duration_ms,
            error,
        });
    }
    let replay_of = i.opt_string()?;
    let queue_id = Some(i.u64()?).filter(|&q| q != u64::MAX);
    let trace_id = i.opt_string()?;
    let authz = i.u8()? == 1;
    Some(Entry {
        id,
        received_ms,
        route,
        method,
        path,
        query,
        client_ip,
        provider,
        outcome,
        reason,
        status,
        duration_ms,
        key_id,
        delivery_id,
        dedup_key,
        diagnosis,
        headers,
        body,
        body_truncated,
        state,
        attempts,
        replay_of,
        queue_id,
        trace_id,
        authz,
    })
}

fn ip(octets: &[u8]) -> Option<IpAddr> {
    Some(match octets.len() {
        4 => IpAddr::from(<[u8; 4]>::try_from(octets).ok()?),
        _ => IpAddr::from(<[u8; 16]>::try_from(octets).ok()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_survives_packing() {
        let mut headers = Headers::default();
        headers.push("x-a", b"1");
        headers.push("x-bin", b"caf\xe9");
        let e = Entry {
            id: "0001".into(),
            received_ms: 1_700_000_000_000,
            route: Some("r".into()),
            method: http::Method::POST,
            path: "/hook".into(),
            query: Some("a=1".into()),
            client_ip: Some("::1".parse().unwrap()),
            provider: Some("github".into()),
            outcome: "queued".into(),
            reason: Some("deferred".into()),
            status: 202,
            duration_ms: 1.5,
            key_id: Some("k".into()),
            delivery_id: None,
            dedup_key: Some("d".into()),
            diagnosis: None,
            headers,
            body: Some(Bytes::from_static(b"{}\x00")),
            body_truncated: true,
            state: Some("pending".into()),
            attempts: vec![AttemptRecord {
                at: "2023-11-14T22:13:20.000Z".into(),
                status: None,
                duration_ms: 2.0,
                error: Some("refused".into()),
            }],
            replay_of: Some("0000".into()),
            queue_id: Some(7),
            trace_id: Some("abc".into()),
            authz: false,
        };
        let packed = pack(&e);
        let back = unpack(&packed).unwrap();
        assert_eq!(back.to_json(), e.to_json());
        assert_eq!(back.headers, e.headers);
        assert!(unpack(&packed[..packed.len() - 1]).is_none());
        // What the arena gets: counted, then filled in place, byte for byte the same.
        let mut filled = vec![0u8; packed_len(&e)];
        pack_into(&e, &mut filled);
        assert_eq!(filled, packed);
        let v4 = Entry {
            client_ip: Some("192.0.2.7".parse().unwrap()),
            ..e
        };
        assert_eq!(unpack(&pack(&v4)).unwrap().client_ip, v4.client_ip);
    }
}
