//! The HMAC family: one header holding `<prefix><encoded MAC>` over a message built from the
//! body and, optionally, other headers. MediaConvert, GitHub, Shopify, Linear's MAC and the
//! generic `hmac` scheme are all instances of it.

use std::sync::{Arc, LazyLock};

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Sha256, Sha512};

use super::header::{first_of, single};
use super::timestamp::{parse_digits, Window};
use super::{Encoding, Input, VerifyError};
use crate::secret::Secret;

/// The hash under the HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha1,
    Sha256,
    Sha512,
}

impl Algorithm {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "sha1" => Some(Self::Sha1),
            "sha256" => Some(Self::Sha256),
            "sha512" => Some(Self::Sha512),
            _ => None,
        }
    }

    /// Output length in bytes: a decoded signature of any other length is malformed.
    pub fn output_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha512 => 64,
        }
    }

    /// Constant-time check of `sig` against HMAC(key, parts...).
    pub fn verify(self, key: &[u8], parts: &[&[u8]], sig: &[u8]) -> bool {
        match self {
            Self::Sha1 => check::<Hmac<Sha1>>(key, parts, sig),
            Self::Sha256 => check::<Hmac<Sha256>>(key, parts, sig),
            Self::Sha512 => check::<Hmac<Sha512>>(key, parts, sig),
        }
    }

    /// Constant-time check of several candidate signatures (rotation: one per sender key)
    /// against HMAC(key, parts...), computing the MAC once.
    pub fn verify_any<S: AsRef<[u8]>>(self, key: &[u8], parts: &[&[u8]], sigs: &[S]) -> bool {
        match self {
            Self::Sha1 => check_any::<Hmac<Sha1>, S>(key, parts, sigs),
            Self::Sha256 => check_any::<Hmac<Sha256>, S>(key, parts, sigs),
            Self::Sha512 => check_any::<Hmac<Sha512>, S>(key, parts, sigs),
        }
    }

    pub fn sign(self, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        match self {
            Self::Sha1 => compute::<Hmac<Sha1>>(key, parts),
            Self::Sha256 => compute::<Hmac<Sha256>>(key, parts),
            Self::Sha512 => compute::<Hmac<Sha512>>(key, parts),
        }
    }
}

/// HMAC over the concatenation of `parts`. HMAC takes keys of any length, so `None` is
/// unreachable in practice; callers treat it as "no match".
fn mac<M: Mac + hmac::digest::KeyInit>(key: &[u8], parts: &[&[u8]]) -> Option<M> {
    let mut m = <M as hmac::digest::KeyInit>::new_from_slice(key).ok()?;
    for p in parts {
        m.update(p);
    }
    Some(m)
}

fn check<M: Mac + hmac::digest::KeyInit>(key: &[u8], parts: &[&[u8]], sig: &[u8]) -> bool {
    mac::<M>(key, parts).is_some_and(|m| m.verify_slice(sig).is_ok())
}

fn check_any<M: Mac + hmac::digest::KeyInit + Clone, S: AsRef<[u8]>>(
    key: &[u8],
    parts: &[&[u8]],
    sigs: &[S],
) -> bool {
    mac::<M>(key, parts).is_some_and(|m| {
        sigs.iter()
            .any(|s| m.clone().verify_slice(s.as_ref()).is_ok())
    })
}

fn compute<M: Mac + hmac::digest::KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    mac::<M>(key, parts)
        .map(|m| m.finalize().into_bytes().to_vec())
        .unwrap_or_default()
}

/// What is signed, e.g. `{body}` or `{header.X-Timestamp}.{body}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(Vec<Part>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    /// Lowercased header name.
    Header(String),
    Body,
}

impl Template {
    pub fn body() -> Self {
        Self(vec![Part::Body])
    }

    /// Parses `{body}`, `{header.NAME}` and literal text.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = s;
        while !rest.is_empty() {
            match rest.find('{') {
                Some(0) => {
                    let end = rest
                        .find('}')
                        .ok_or_else(|| format!("unclosed `{{` in `{s}`"))?;
                    let field = &rest[1..end];
                    if field == "body" {
                        parts.push(Part::Body);
                    } else if let Some(name) = field.strip_prefix("header.") {
                        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                            return Err(format!("`{name}` is not a valid header name"));
                        }
                        parts.push(Part::Header(name.to_ascii_lowercase()));
                    } else {
                        return Err(format!(
                            "unknown field `{{{field}}}`; use {{body}} or {{header.NAME}}"
                        ));
                    }
                    rest = &rest[end + 1..];
                }
                Some(i) => {
                    parts.push(Part::Literal(rest[..i].to_string()));
                    rest = &rest[i..];
                }
                None => {
                    parts.push(Part::Literal(rest.to_string()));
                    rest = "";
                }
            }
        }
        if !parts.contains(&Part::Body) {
            return Err(format!(
                "`{s}` does not include {{body}}: the body would not be authenticated"
            ));
        }
        Ok(Self(parts))
    }

    /// The header names the template reads.
    pub fn headers(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter_map(|p| match p {
            Part::Header(h) => Some(h.as_str()),
            _ => None,
        })
    }

    fn resolve<'a>(&'a self, input: &Input<'a>) -> Result<Vec<&'a [u8]>, VerifyError> {
        self.0
            .iter()
            .map(|p| match p {
                Part::Literal(s) => Ok(s.as_bytes()),
                Part::Body => Ok(input.body),
                Part::Header(h) => single(input.headers, h).map(str::as_bytes),
            })
            .collect()
    }
}

/// `X-MediaConvert-Signature: sha256=<hex>` over the raw body.
pub(super) static MEDIACONVERT: LazyLock<HmacSpec> =
    LazyLock::new(|| HmacSpec::sha256_hex_prefixed("x-mediaconvert-signature"));
/// `X-Hub-Signature-256: sha256=<hex>` over the raw body.
pub(super) static GITHUB: LazyLock<HmacSpec> =
    LazyLock::new(|| HmacSpec::sha256_hex_prefixed("x-hub-signature-256"));
/// `X-Shopify-Hmac-Sha256: <base64>` over the raw body.
pub(super) static SHOPIFY: LazyLock<HmacSpec> = LazyLock::new(HmacSpec::shopify);

/// A fully described HMAC scheme.
#[derive(Debug, Clone)]
pub struct HmacSpec {
    /// Lowercased header name.
    pub header: String,
    /// Read when `header` is absent (lowercased): Shopify's un-prefixed Events headers.
    pub fallback_header: Option<String>,
    pub prefix: String,
    pub encoding: Encoding,
    pub algorithm: Algorithm,
    pub signed: Template,
    /// Lowercased header with the signed unix time, checked against `verify.tolerance`.
    pub timestamp_header: Option<String>,
}

impl HmacSpec {
    /// `<header>: sha256=<lowercase hex HMAC-SHA256(body)>`, as MediaConvert and GitHub send.
    pub fn sha256_hex_prefixed(header: &str) -> Self {
        Self {
            header: header.to_string(),
            fallback_header: None,
            prefix: "sha256=".to_string(),
            encoding: Encoding::Hex,
            algorithm: Algorithm::Sha256,
            signed: Template::body(),
            timestamp_header: None,
        }
    }

    /// `X-Shopify-Hmac-Sha256: <base64 HMAC-SHA256(body)>`; Events deliveries drop the `X-`.
    pub fn shopify() -> Self {
        Self {
            header: "x-shopify-hmac-sha256".to_string(),
            fallback_header: Some("shopify-hmac-sha256".to_string()),
            prefix: String::new(),
            encoding: Encoding::Base64,
            algorithm: Algorithm::Sha256,
            signed: Template::body(),
            timestamp_header: None,
        }
    }

    pub(super) fn verify(
        &self,
        input: &Input<'_>,
        secrets: &[Secret],
        window: Window,
    ) -> Result<Arc<str>, VerifyError> {
        let value = match &self.fallback_header {
            Some(fallback) => first_of(input.headers, &[&self.header, fallback])?,
            None => single(input.headers, &self.header)?,
        };
        let encoded = value
            .strip_prefix(self.prefix.as_str())
            .ok_or(VerifyError::MalformedHeader)?;
        let sig = self
            .encoding
            .decode(encoded)
            .filter(|s| s.len() == self.algorithm.output_len())
            .ok_or(VerifyError::MalformedHeader)?;
        let parts = self.signed.resolve(input)?;
        if let Some(h) = &self.timestamp_header {
            let ts = parse_digits(single(input.headers, h)?)?;
            window.check_secs(ts, input.now)?;
        }
        secrets
            .iter()
            .find(|s| self.algorithm.verify(s.expose(), &parts, &sig))
            .map(|s| Arc::from(s.id()))
            .ok_or(VerifyError::Mismatch)
    }

    /// Signs `body`; header parts of the template (the timestamp, typically) get `now`.
    pub(super) fn sign(&self, secret: &[u8], body: &[u8], now: u64) -> Vec<(String, String)> {
        let now_s = now.to_string();
        let mut out = Vec::new();
        let parts: Vec<&[u8]> = self
            .signed
            .0
            .iter()
            .map(|p| match p {
                Part::Literal(s) => s.as_bytes(),
                Part::Body => body,
                Part::Header(h) => {
                    if !out.iter().any(|(name, _)| name == h) {
                        out.push((h.clone(), now_s.clone()));
                    }
                    now_s.as_bytes()
                }
            })
            .collect();
        if let Some(h) = &self.timestamp_header {
            if !out.iter().any(|(name, _)| name == h) {
                out.push((h.clone(), now_s.clone()));
            }
        }
        let sig = self.algorithm.sign(secret, &parts);
        out.push((
            self.header.clone(),
            format!("{}{}", self.prefix, self.encoding.encode(&sig)),
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;

    fn input<'a>(headers: &'a HeaderMap, body: &'a [u8]) -> Input<'a> {
        Input {
            headers,
            body,
            now: 1700000000,
            url: None,
        }
    }

    #[test]
    fn github_docs_vector() {
        let spec = HmacSpec::sha256_hex_prefixed("x-hub-signature-256");
        let mut h = HeaderMap::new();
        h.insert(
            "x-hub-signature-256",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
                .parse()
                .unwrap(),
        );
        let secrets = [Secret::new("k", b"It's a Secret to Everybody".to_vec())];
        let w = Window::default();
        let got = spec.verify(&input(&h, b"Hello, World!"), &secrets, w);
        assert_eq!(got.as_deref(), Ok("k"));
        let got = spec.verify(&input(&h, b"Hello, World?"), &secrets, w);
        assert_eq!(got, Err(VerifyError::Mismatch));
    }

    #[test]
    fn template_with_header() {
        let t = Template::parse("{header.X-Timestamp}.{body}").unwrap();
        assert_eq!(t.headers().collect::<Vec<_>>(), vec!["x-timestamp"]);
        assert!(Template::parse("{header.X-Timestamp}").is_err());
        assert!(Template::parse("{nope}{body}").is_err());
        assert!(Template::parse("{body").is_err());
    }

    #[test]
    fn sign_then_verify_round_trips() {
        let spec = HmacSpec {
            header: "x-sig".into(),
            fallback_header: None,
            prefix: String::new(),
            encoding: Encoding::Base64,
            algorithm: Algorithm::Sha512,
            signed: Template::parse("{header.X-Ts}.{body}").unwrap(),
            timestamp_header: Some("x-ts".into()),
        };
        let mut h = HeaderMap::new();
        for (k, v) in spec.sign(b"s3cret", b"payload", 1700000000) {
            h.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        let secrets = [
            Secret::new("a", b"other".to_vec()),
            Secret::new("b", b"s3cret".to_vec()),
        ];
        let w = Window::default();
        assert_eq!(
            spec.verify(&input(&h, b"payload"), &secrets, w).as_deref(),
            Ok("b")
        );
        // The timestamp header is in the window check: an hour later it has expired.
        let later = Input {
            now: 1700003600,
            ..input(&h, b"payload")
        };
        assert_eq!(
            spec.verify(&later, &secrets, w),
            Err(VerifyError::TimestampExpired)
        );
        let mut bad = h.clone();
        bad.insert("x-ts", "1.7e9".parse().unwrap());
        assert_eq!(
            spec.verify(&input(&bad, b"payload"), &secrets, w),
            Err(VerifyError::MalformedHeader)
        );
    }
}
