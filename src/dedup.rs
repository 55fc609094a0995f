//! Dedup keys: which requests are "the same event" (`routes[].dedup.key`).
//!
//! A template joins literals with `{header.NAME}`, `{body./json/pointer}` and `{body_sha256}`.
//! Without a template the key is the scheme's own delivery id, else the body's SHA-256. When a
//! part is missing from a request, the key falls back to the body's SHA-256: collapsing every
//! event that lacks a field onto one key would drop distinct events as duplicates.

use std::time::Duration;

use http::{HeaderMap, HeaderName};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::verify::Verified;

/// `routes[].dedup`: duplicates are answered without reaching the backend.
#[derive(Debug, Clone)]
pub struct Dedup {
    /// `None`: the scheme's delivery id, else the body's SHA-256.
    pub key: Option<KeyTemplate>,
    pub ttl: Duration,
}

/// Keys longer than this, or with bytes a header value cannot carry, are replaced by
/// `sha256:<hex>` of themselves, so every key fits in `X-Webhook-Id` and in the store.
const MAX_KEY: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Header(HeaderName),
    /// A JSON pointer into the body, e.g. `/job_id`.
    Pointer(String),
    BodySha256,
}

/// A parsed `dedup.key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTemplate(Vec<Part>);

impl KeyTemplate {
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = s;
        while let Some(start) = rest.find('{') {
            if start > 0 {
                parts.push(Part::Literal(rest[..start].to_string()));
            }
            let Some(len) = rest[start..].find('}') else {
                return Err(format!("`{s}`: unclosed `{{`"));
            };
            let inner = &rest[start + 1..start + len];
            parts.push(if inner == "body_sha256" {
                Part::BodySha256
            } else if let Some(name) = inner.strip_prefix("header.") {
                let name = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| format!("`{s}`: `{name}` is not a header name"))?;
                Part::Header(name)
            } else if let Some(ptr) = inner.strip_prefix("body.") {
                if !ptr.starts_with('/') {
                    return Err(format!(
                        "`{s}`: `{{body.{ptr}}}` needs a JSON pointer starting with `/`, e.g. {{body./id}}"
                    ));
                }
                Part::Pointer(ptr.to_string())
            } else {
                return Err(format!(
                    "`{s}`: unknown `{{{inner}}}`; use {{header.NAME}}, {{body./json/pointer}} or {{body_sha256}}"
                ));
            });
            rest = &rest[start + len + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        if !parts.iter().any(|p| !matches!(p, Part::Literal(_))) {
            return Err(format!(
                "`{s}` has no placeholder, so every event would share one key; use e.g. {{header.X-Event-Id}} or {{body./id}}"
            ));
        }
        Ok(Self(parts))
    }

    /// The key for a request, or `None` when a part is missing from it. `json` gives the body's
    /// JSON tree, parsed only when a `{body./pointer}` asks for it.
    fn render<'a>(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        json: impl FnOnce() -> Option<&'a Value>,
    ) -> Option<String> {
        let needs_json = self.0.iter().any(|p| matches!(p, Part::Pointer(_)));
        let json = if needs_json { Some(json()?) } else { None };
        let mut out = String::new();
        for part in &self.0 {
            match part {
                Part::Literal(l) => out.push_str(l),
                Part::Header(name) => {
                    let v = headers.get(name)?;
                    out.push_str(&String::from_utf8_lossy(v.as_bytes()));
                }
                Part::Pointer(p) => match json?.pointer(p)? {
                    Value::String(s) => out.push_str(s),
                    other => out.push_str(&other.to_string()),
                },
                Part::BodySha256 => out.push_str(&hex::encode(Sha256::digest(body))),
            }
        }
        Some(out)
    }
}

/// A request's dedup key, and whether it had to fall back to the body's hash.
pub fn key<'a>(
    template: Option<&KeyTemplate>,
    verified: &Verified,
    headers: &HeaderMap,
    body: &[u8],
    json: impl FnOnce() -> Option<&'a Value>,
) -> (String, bool) {
    let (raw, fallback) = match template {
        Some(t) => match t.render(headers, body, json) {
            Some(k) => (k, false),
            None => (hex::encode(Sha256::digest(body)), true),
        },
        None => match verified.delivery_id.as_deref() {
            Some(id) if !id.is_empty() => (id.to_string(), false),
            _ => (hex::encode(Sha256::digest(body)), false),
        },
    };
    (fit(raw), fallback)
}

/// Keeps keys short and header-safe.
fn fit(raw: String) -> String {
    if !raw.is_empty() && raw.len() <= MAX_KEY && raw.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        raw
    } else {
        format!("sha256:{}", hex::encode(Sha256::digest(raw.as_bytes())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verified(id: Option<&str>) -> Verified {
        Verified {
            key_id: "k".into(),
            delivery_id: id.map(str::to_string),
            challenge: None,
        }
    }

    /// `key` with the JSON parsed from the body, as the gateway does.
    fn k(t: Option<&KeyTemplate>, v: &Verified, h: &HeaderMap, body: &[u8]) -> (String, bool) {
        let json: Option<Value> = serde_json::from_slice(body).ok();
        key(t, v, h, body, || json.as_ref())
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn templates_render() {
        let t = KeyTemplate::parse("{body./job_id}:{body./status}").unwrap();
        let body = br#"{"job_id":"j-1","status":"COMPLETE","n":3}"#;
        let h = HeaderMap::new();
        assert_eq!(
            k(Some(&t), &verified(None), &h, body),
            ("j-1:COMPLETE".into(), false)
        );
        let t = KeyTemplate::parse("evt-{header.X-Event-Id}-{body./n}").unwrap();
        let h = headers(&[("x-event-id", "abc")]);
        assert_eq!(
            k(Some(&t), &verified(None), &h, body).0,
            "evt-abc-3".to_string()
        );
        let t = KeyTemplate::parse("{body_sha256}").unwrap();
        assert_eq!(
            k(Some(&t), &verified(None), &h, b"x").0,
            hex::encode(Sha256::digest(b"x"))
        );
    }

    #[test]
    fn missing_parts_fall_back_to_the_body_hash() {
        let t = KeyTemplate::parse("{header.X-Event-Id}").unwrap();
        let (got, fallback) = k(Some(&t), &verified(None), &HeaderMap::new(), b"{}");
        assert!(fallback);
        assert_eq!(got, hex::encode(Sha256::digest(b"{}")));
        let t = KeyTemplate::parse("{body./id}").unwrap();
        assert!(k(Some(&t), &verified(None), &HeaderMap::new(), b"not json").1);
        assert!(k(Some(&t), &verified(None), &HeaderMap::new(), b"{\"x\":1}").1);
    }

    #[test]
    fn default_is_the_delivery_id_then_the_body_hash() {
        let h = HeaderMap::new();
        assert_eq!(k(None, &verified(Some("d-1")), &h, b"x").0, "d-1");
        assert_eq!(
            k(None, &verified(None), &h, b"x").0,
            hex::encode(Sha256::digest(b"x"))
        );
    }

    #[test]
    fn unsafe_or_long_keys_are_hashed() {
        let t = KeyTemplate::parse("{body./id}").unwrap();
        let h = HeaderMap::new();
        let got = k(Some(&t), &verified(None), &h, br#"{"id":"a b\n"}"#).0;
        assert!(got.starts_with("sha256:") && got.len() == 71, "{got}");
        let long = format!(r#"{{"id":"{}"}}"#, "x".repeat(300));
        assert!(k(Some(&t), &verified(None), &h, long.as_bytes())
            .0
            .starts_with("sha256:"));
    }

    #[test]
    fn bad_templates() {
        for bad in [
            "{body}",
            "{body.id}",
            "{nope}",
            "{header.a b}",
            "{body./x",
            "fixed",
        ] {
            assert!(KeyTemplate::parse(bad).is_err(), "{bad}");
        }
    }
}
