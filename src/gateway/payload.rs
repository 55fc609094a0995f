//! The request body kept for the stages after it is read: the raw bytes (verified, validated and
//! forwarded exactly as received) and their JSON tree, parsed at most once and only when a stage
//! asks (a dedup key that reads the body).
//!
//! Building the tree costs more than verifying the signature, so no stage before verification
//! asks for it, and the schema check reads the bytes in place instead ([`crate::schema`]).

use std::sync::OnceLock;

use bytes::Bytes;
use serde_json::Value;

pub struct Payload {
    raw: Bytes,
    json: OnceLock<Option<Value>>,
}

impl Payload {
    pub fn new(raw: Bytes) -> Self {
        Self {
            raw,
            json: OnceLock::new(),
        }
    }

    /// The bytes as received.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    /// The body as JSON, or `None` when it is not JSON; parsed on the first call only.
    pub fn json(&self) -> Option<&Value> {
        self.json
            .get_or_init(|| serde_json::from_slice(&self.raw).ok())
            .as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_once_and_keeps_bytes() {
        let p = Payload::new(Bytes::from_static(b"{\"a\": 1}\n"));
        assert_eq!(
            p.json().and_then(|v| v.pointer("/a")),
            Some(&Value::from(1))
        );
        assert!(std::ptr::eq(p.json().unwrap(), p.json().unwrap()));
        assert_eq!(p.raw().as_ref(), b"{\"a\": 1}\n");
        assert_eq!(Payload::new(Bytes::from_static(b"a=1")).json(), None);
        assert_eq!(Payload::new(Bytes::from_static(b"\xff\xfe")).json(), None);
    }
}
