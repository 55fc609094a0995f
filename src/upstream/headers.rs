//! Header hygiene: what may cross hookgate, and the trusted headers only hookgate sets.

use http::header::{self, HeaderName};
use http::{HeaderMap, HeaderValue};

/// Headers that describe one hop, never the message (RFC 9110 §7.6.1), plus the framing headers
/// hookgate recomputes from the body it verified. Parsed once: this runs twice per request.
static HOP_BY_HOP: [HeaderName; 10] = [
    header::CONNECTION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::CONTENT_LENGTH,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
];

/// Removes hop-by-hop headers, including every header the `Connection` header names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Names beyond the fixed ones are rare (a backend's `Connection: keep-alive` names none),
    // so this usually allocates nothing.
    let mut named: Vec<HeaderName> = Vec::new();
    for value in headers.get_all(header::CONNECTION) {
        for token in value.to_str().unwrap_or_default().split(',') {
            let token = token.trim();
            let fixed = HOP_BY_HOP
                .iter()
                .any(|h| h.as_str().eq_ignore_ascii_case(token));
            if token.is_empty() || fixed || token.eq_ignore_ascii_case("close") {
                continue;
            }
            if let Ok(name) = HeaderName::from_bytes(token.as_bytes()) {
                named.push(name);
            }
        }
    }
    for name in named.iter().chain(&HOP_BY_HOP) {
        headers.remove(name);
    }
}

/// The trusted header names for one prefix, built once per config.
#[derive(Debug, Clone)]
pub struct Trusted {
    /// Lowercase, `_` read as `-`: what inbound names are compared against.
    normalized_prefix: String,
    pub verified: HeaderName,
    pub provider: HeaderName,
    pub route: HeaderName,
    pub key_id: HeaderName,
    pub attestation: HeaderName,
    /// The dedup key, when dedup is on.
    pub id: HeaderName,
    /// `sync` (hybrid's first attempt), `queued` or `deferred`.
    pub delivery: HeaderName,
    /// 1 for the first attempt.
    pub attempt: HeaderName,
    /// An operator's replay: the original event's journal id.
    pub replay: HeaderName,
    /// Verify-only mode: a duplicate let through for the backend to drop.
    pub duplicate: HeaderName,
}

impl Trusted {
    /// `prefix` was checked by config validation to form valid header names.
    pub fn new(prefix: &str) -> Self {
        let name = |suffix: &str| {
            HeaderName::from_bytes(format!("{prefix}{suffix}").to_ascii_lowercase().as_bytes())
                .unwrap_or_else(|_| HeaderName::from_static("x-webhook-invalid"))
        };
        Self {
            normalized_prefix: normalize(prefix),
            verified: name("Verified"),
            provider: name("Provider"),
            route: name("Route"),
            key_id: name("Key-Id"),
            attestation: name("Attestation"),
            id: name("Id"),
            delivery: name("Delivery"),
            attempt: name("Attempt"),
            replay: name("Replay"),
            duplicate: name("Duplicate"),
        }
    }

    /// Removes every inbound header that could pass for one of ours, whatever its case or
    /// `_`/`-` spelling, and returns how many there were.
    pub fn strip_spoofed(&self, headers: &mut HeaderMap) -> usize {
        let mut count = 0;
        for (name, _) in self.spoofed(headers) {
            if let header::Entry::Occupied(e) = headers.entry(name) {
                count += e.remove_entry_mult().1.count();
            }
        }
        count
    }

    /// The inbound names that could pass for one of ours, each with how many values it has.
    pub fn spoofed(&self, headers: &HeaderMap) -> Vec<(HeaderName, usize)> {
        headers
            .keys()
            .filter(|k| self.imitates(k.as_str()))
            .map(|k| (k.clone(), headers.get_all(k).iter().count()))
            .collect()
    }

    fn imitates(&self, name: &str) -> bool {
        // Header names from hyper are already lowercase; compare with `_` read as `-`.
        let p = self.normalized_prefix.as_bytes();
        name.len() >= p.len()
            && name
                .bytes()
                .zip(p)
                .all(|(a, &b)| a.to_ascii_lowercase() == b || (a == b'_' && b == b'-'))
    }
}

fn normalize(s: &str) -> String {
    s.to_ascii_lowercase().replace('_', "-")
}

/// Appends the client to `X-Forwarded-For` and sets `X-Forwarded-Proto` / `-Host`, replacing
/// whatever the sender put there.
pub fn set_forwarded(
    headers: &mut HeaderMap,
    client: std::net::IpAddr,
    proto: &'static str,
    host: Option<HeaderValue>,
) {
    const XFF: HeaderName = HeaderName::from_static("x-forwarded-for");
    const XFP: HeaderName = HeaderName::from_static("x-forwarded-proto");
    const XFH: HeaderName = HeaderName::from_static("x-forwarded-host");
    let prior: Vec<&str> = headers
        .get_all(&XFF)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let xff = if prior.is_empty() {
        client.to_string()
    } else {
        format!("{}, {client}", prior.join(", "))
    };
    if let Ok(v) = HeaderValue::from_str(&xff) {
        headers.insert(XFF, v);
    }
    headers.insert(XFP, HeaderValue::from_static(proto));
    headers.remove(&XFH);
    if let Some(h) = host {
        headers.insert(XFH, h);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spoofed_spellings_are_stripped() {
        let t = Trusted::new("X-Webhook-");
        let mut h = HeaderMap::new();
        h.insert("x-webhook-verified", "true".parse().unwrap());
        h.append("x-webhook-verified", "true".parse().unwrap());
        h.insert("x_webhook_verified", "true".parse().unwrap());
        h.insert("x-webhook_provider", "evil".parse().unwrap());
        h.insert("x-webhook-anything", "1".parse().unwrap());
        h.insert("x-webhooks", "1".parse().unwrap());
        h.insert("x-mediaconvert-signature", "sha256=00".parse().unwrap());
        assert_eq!(t.strip_spoofed(&mut h), 5);
        assert_eq!(h.len(), 2);
        assert!(h.contains_key("x-webhooks"));
    }

    #[test]
    fn hop_by_hop_and_connection_named() {
        let mut h = HeaderMap::new();
        h.insert("connection", "close, x-secret-hop".parse().unwrap());
        h.insert("x-secret-hop", "1".parse().unwrap());
        h.insert("keep-alive", "timeout=5".parse().unwrap());
        h.insert("te", "trailers".parse().unwrap());
        h.insert("content-type", "application/json".parse().unwrap());
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);

        // Several `Connection` values, any case, fixed names among them, and empty tokens.
        let mut h = HeaderMap::new();
        h.append("connection", "Keep-Alive, , X-Hop-A".parse().unwrap());
        h.append("connection", "x-hop-b".parse().unwrap());
        h.insert("x-hop-a", "1".parse().unwrap());
        h.insert("x-hop-b", "1".parse().unwrap());
        h.insert("proxy-connection", "keep-alive".parse().unwrap());
        h.insert("content-length", "2".parse().unwrap());
        h.insert("x-kept", "1".parse().unwrap());
        strip_hop_by_hop(&mut h);
        assert_eq!(h.keys().collect::<Vec<_>>(), ["x-kept"]);
    }

    #[test]
    fn forwarded_for_is_appended() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "1.2.3.4".parse().unwrap());
        h.insert("x-forwarded-proto", "gopher".parse().unwrap());
        set_forwarded(&mut h, "10.0.0.1".parse().unwrap(), "http", None);
        assert_eq!(h["x-forwarded-for"], "1.2.3.4, 10.0.0.1");
        assert_eq!(h["x-forwarded-proto"], "http");
    }
}
