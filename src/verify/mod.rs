//! Signature verification: pure, synchronous, no I/O.
//!
//! Each scheme is a function of `(headers, body, now, secrets)` to a verdict, so the conformance
//! vectors can run against it with the clock of each case, and the gateway calls it with the
//! wall clock. Every comparison of secret-derived bytes is constant-time (`Mac::verify_slice`).

mod encoding;
mod hmac;

use std::sync::Arc;

use http::HeaderMap;

use crate::config::Secret;

pub use self::encoding::Encoding;
pub use self::hmac::{Algorithm, HmacSpec, Template};

/// What verification needs to know about one request.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub headers: &'a HeaderMap,
    /// The raw body, exactly as received.
    pub body: &'a [u8],
    /// Unix seconds; injected so tests can pin the clock.
    pub now: u64,
}

/// A request that passed: which secret matched, and the sender's own id for this delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub key_id: Arc<str>,
    pub delivery_id: Option<String>,
}

/// Why a request failed. Never shown to the sender: it is logged and counted by `reason()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("signature header missing")]
    MissingHeader,
    #[error("signature header malformed")]
    MalformedHeader,
    #[error("signature does not match any secret")]
    Mismatch,
    #[error("timestamp older than the tolerance")]
    TimestampExpired,
    #[error("timestamp further in the future than the tolerance")]
    TimestampFuture,
    #[error("route has no usable secret")]
    NoSecret,
}

impl VerifyError {
    /// The metric and log label.
    pub fn reason(self) -> &'static str {
        match self {
            Self::MissingHeader => "missing_header",
            Self::MalformedHeader => "malformed_header",
            Self::Mismatch => "mismatch",
            Self::TimestampExpired => "timestamp_expired",
            Self::TimestampFuture => "timestamp_future",
            Self::NoSecret => "no_secret",
        }
    }
}

/// The schemes hookgate knows.
#[derive(Debug, Clone)]
pub enum Scheme {
    /// `X-MediaConvert-Signature: sha256=<hex>` over the raw body.
    MediaConvert,
    /// `X-Hub-Signature-256: sha256=<hex>` over the raw body; delivery id `X-GitHub-Delivery`.
    GitHub,
    /// Operator-described HMAC.
    Hmac(HmacSpec),
}

/// Scheme names accepted in `verify.scheme`.
pub const SCHEME_NAMES: &[&str] = &["mediaconvert", "github", "hmac"];

impl Scheme {
    /// The name used in config, metrics and `X-Webhook-Provider`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::MediaConvert => "mediaconvert",
            Self::GitHub => "github",
            Self::Hmac(_) => "hmac",
        }
    }

    fn hmac_spec(&self) -> std::borrow::Cow<'_, HmacSpec> {
        use std::borrow::Cow;
        match self {
            Self::MediaConvert => {
                Cow::Owned(HmacSpec::sha256_hex_prefixed("x-mediaconvert-signature"))
            }
            Self::GitHub => Cow::Owned(HmacSpec::sha256_hex_prefixed("x-hub-signature-256")),
            Self::Hmac(spec) => Cow::Borrowed(spec),
        }
    }

    /// Which header carries the sender's delivery id, if the scheme has one.
    fn delivery_header(&self) -> Option<&'static str> {
        match self {
            Self::GitHub => Some("x-github-delivery"),
            _ => None,
        }
    }
}

/// A scheme with the secrets of one route.
#[derive(Debug, Clone)]
pub struct Verifier {
    scheme: Scheme,
    secrets: Vec<Secret>,
    /// Cached so the request path does not rebuild it.
    spec: HmacSpec,
}

impl Verifier {
    pub fn new(scheme: Scheme, secrets: Vec<Secret>) -> Self {
        let spec = scheme.hmac_spec().into_owned();
        Self {
            scheme,
            secrets,
            spec,
        }
    }

    pub fn scheme(&self) -> &Scheme {
        &self.scheme
    }

    /// Checks one request. Every secret is tried; the first that matches is reported.
    pub fn verify(&self, input: &Input<'_>) -> Result<Verified, VerifyError> {
        if self.secrets.is_empty() {
            return Err(VerifyError::NoSecret);
        }
        let key_id = self.spec.verify(input, &self.secrets)?;
        let delivery_id = self
            .scheme
            .delivery_header()
            .and_then(|h| input.headers.get(h))
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(Verified {
            key_id,
            delivery_id,
        })
    }

    /// The headers a sender would attach to `body`, signed with `secret`: for `hookgate sign`,
    /// `hookgate send` and tests.
    pub fn sign(&self, secret: &[u8], body: &[u8], now: u64) -> Vec<(String, String)> {
        self.spec.sign(secret, body, now)
    }
}

/// The one value of a header the scheme reads. A repeated signature header is ambiguous (proxies
/// join copies differently), so it is refused as malformed rather than guessed at.
pub(crate) fn single_header<'a>(
    headers: &'a HeaderMap,
    name: &str,
) -> Result<&'a str, VerifyError> {
    let mut values = headers.get_all(name).iter();
    let first = values.next().ok_or(VerifyError::MissingHeader)?;
    if values.next().is_some() {
        return Err(VerifyError::MalformedHeader);
    }
    let s = first.to_str().map_err(|_| VerifyError::MalformedHeader)?;
    if s.is_empty() {
        return Err(VerifyError::MissingHeader);
    }
    Ok(s)
}
