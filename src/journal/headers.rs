//! A request's headers as the journal keeps them: copied, in order, into one buffer, with the
//! values of credentials and signatures replaced as they are copied.
//!
//! Copying matters: a header value hyper parsed shares the connection's read buffer, so an
//! entry holding it would pin a whole buffer per event (kilobytes, where the headers are a few
//! hundred bytes) and a full journal would cost many times its size.

use http::HeaderMap;

/// What replaces a redacted header value.
pub const REDACTED: &str = "[redacted]";

/// Headers whose values never reach the journal: credentials, and every signature header a
/// built-in scheme reads (a generic `hmac` route adds its own). Sorted, for the search.
const ALWAYS_REDACTED: &[&str] = &[
    "authorization",
    "cookie",
    "linear-signature",
    "paddle-signature",
    "proxy-authorization",
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

/// Names and values back to back in `buf`; `ends` holds where each name and each value ends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    buf: Vec<u8>,
    ends: Vec<(u32, u32)>,
}

impl Headers {
    /// Copies `map`, redacting credentials and the built-in schemes' signature headers.
    pub fn capture(map: &HeaderMap) -> Self {
        let size: usize = map.iter().map(|(k, v)| k.as_str().len() + v.len()).sum();
        let mut h = Self {
            buf: Vec::with_capacity(size),
            ends: Vec::with_capacity(map.len()),
        };
        for (k, v) in map {
            let name = k.as_str();
            let redacted = ALWAYS_REDACTED.binary_search(&name).is_ok();
            h.push(
                name,
                if redacted {
                    REDACTED.as_bytes()
                } else {
                    v.as_bytes()
                },
            );
        }
        h
    }

    /// Redacts `name` too (a generic route's own signature header), wherever it occurs.
    pub fn redact(&mut self, name: &str) {
        let done = ALWAYS_REDACTED.binary_search(&name).is_ok();
        if done || !self.iter().any(|(k, _)| k.eq_ignore_ascii_case(name)) {
            return;
        }
        let mut out = Self::default();
        for (k, v) in self.iter() {
            let v = if k.eq_ignore_ascii_case(name) {
                REDACTED.as_bytes()
            } else {
                v
            };
            out.push(k, v);
        }
        *self = out;
    }

    /// Appends one header.
    pub fn push(&mut self, name: &str, value: &[u8]) {
        self.buf.extend_from_slice(name.as_bytes());
        let name_end = self.buf.len();
        self.buf.extend_from_slice(value);
        let end = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        self.ends.push((end(name_end), end(self.buf.len())));
    }

    /// In the order received: (name, value).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        let mut start = 0usize;
        self.ends.iter().map(move |&(name_end, end)| {
            let (name_end, end) = (name_end as usize, end as usize);
            let name = self.buf.get(start..name_end).unwrap_or_default();
            let value = self.buf.get(name_end..end).unwrap_or_default();
            start = end;
            (std::str::from_utf8(name).unwrap_or_default(), value)
        })
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_stays_sorted() {
        assert!(ALWAYS_REDACTED.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn secrets_and_signatures_are_redacted_in_order() {
        let mut m = HeaderMap::new();
        m.insert("x-mediaconvert-signature", "sha256=abc".parse().unwrap());
        m.append("x-a", "1".parse().unwrap());
        m.insert("authorization", "Bearer t".parse().unwrap());
        m.insert("x-own-sig", "s".parse().unwrap());
        m.append("x-a", "2".parse().unwrap());
        m.insert("content-type", "application/json".parse().unwrap());
        let mut h = Headers::capture(&m);
        h.redact("X-Own-Sig");
        let got: Vec<(&str, &[u8])> = h.iter().collect();
        let want: Vec<(&str, &[u8])> = m
            .iter()
            .map(|(k, v)| {
                let v = match k.as_str() {
                    "x-mediaconvert-signature" | "authorization" | "x-own-sig" => {
                        REDACTED.as_bytes()
                    }
                    _ => v.as_bytes(),
                };
                (k.as_str(), v)
            })
            .collect();
        assert_eq!(got, want);
        assert_eq!(h.len(), 6);
        assert!(!h.buf.windows(3).any(|w| w == b"abc"));
    }
}
