//! The HMAC family: one header holding `<prefix><encoded MAC>` over a message built from the
//! body and, optionally, other headers. MediaConvert, GitHub and the generic `hmac` scheme are
//! all instances of it.

use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Sha256, Sha512};

use super::{single_header, Encoding, Input, VerifyError};
use crate::config::Secret;

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
                Part::Header(h) => single_header(input.headers, h).map(str::as_bytes),
            })
            .collect()
    }
}

/// A fully described HMAC scheme.
#[derive(Debug, Clone)]
pub struct HmacSpec {
    /// Lowercased header name.
    pub header: String,
    pub prefix: String,
    pub encoding: Encoding,
    pub algorithm: Algorithm,
    pub signed: Template,
}

impl HmacSpec {
    /// `<header>: sha256=<lowercase hex HMAC-SHA256(body)>`, as MediaConvert and GitHub send.
    pub fn sha256_hex_prefixed(header: &str) -> Self {
        Self {
            header: header.to_string(),
            prefix: "sha256=".to_string(),
            encoding: Encoding::Hex,
            algorithm: Algorithm::Sha256,
            signed: Template::body(),
        }
    }

    pub(super) fn verify(
        &self,
        input: &Input<'_>,
        secrets: &[Secret],
    ) -> Result<Arc<str>, VerifyError> {
        let value = single_header(input.headers, &self.header)?;
        let encoded = value
            .strip_prefix(self.prefix.as_str())
            .ok_or(VerifyError::MalformedHeader)?;
        let sig = self
            .encoding
            .decode(encoded)
            .filter(|s| s.len() == self.algorithm.output_len())
            .ok_or(VerifyError::MalformedHeader)?;
        let parts = self.signed.resolve(input)?;
        secrets
            .iter()
            .find(|s| self.algorithm.verify(s.expose(), &parts, &sig))
            .map(|s| Arc::from(s.id()))
            .ok_or(VerifyError::Mismatch)
    }

    /// Signs `body`; header parts of the template that look like timestamps get `now`.
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
                    out.push((h.clone(), now_s.clone()));
                    now_s.as_bytes()
                }
            })
            .collect();
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
            now: 0,
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
        let got = spec.verify(&input(&h, b"Hello, World!"), &secrets);
        assert_eq!(got.as_deref(), Ok("k"));
        let got = spec.verify(&input(&h, b"Hello, World?"), &secrets);
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
            prefix: String::new(),
            encoding: Encoding::Base64,
            algorithm: Algorithm::Sha512,
            signed: Template::parse("{header.X-Ts}.{body}").unwrap(),
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
        assert_eq!(
            spec.verify(&input(&h, b"payload"), &secrets).as_deref(),
            Ok("b")
        );
    }
}
