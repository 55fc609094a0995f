//! Signature verification: pure, synchronous, no I/O.
//!
//! Each scheme is a function of `(headers, body, now, keys)` to a verdict, so the conformance
//! vectors can run against it with the clock of each case, and the gateway calls it with the
//! wall clock. Every comparison of secret-derived bytes is constant-time (`Mac::verify_slice`,
//! `subtle`), and signatures are checked with the providers' algorithms from well-kept crates.
//!
//! Order of checks, for every scheme: the signature fields must be present (`missing_header`)
//! and well-formed (`malformed_header`); then a signed timestamp must be inside the window
//! (`timestamp_expired` / `timestamp_future`); then a key must match (`mismatch`). Linear keeps
//! its timestamp in the body, which is read only after the MAC over it has matched.
//!
//! One file per scheme family: `hmac` (mediaconvert, github, shopify, generic hmac), `stripe`,
//! `standard` (Standard Webhooks and Svix), `slack_zoom`, `twilio`, `token` (gitlab), `paddle`,
//! `linear`, `mailgun`, `sendgrid`. `wire` describes each scheme's signature on the wire for the
//! signature doctor (`crate::doctor`).

mod encoding;
mod header;
mod hmac;
mod keys;
mod linear;
mod mailgun;
mod paddle;
mod sendgrid;
mod slack_zoom;
mod standard;
mod stripe;
mod timestamp;
mod token;
mod twilio;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;

use crate::secret::Secret;

pub use self::encoding::Encoding;
pub use self::hmac::{Algorithm, HmacSpec, Template};
pub use self::keys::{Keys, SigningKey};
pub use self::timestamp::Window;
pub use self::twilio::{add_body_hash, sender_url};
pub use self::wire::{Layout, SignatureFormat};

/// For `crate::fuzzing`: the strict timestamp parser and the window check.
#[cfg(feature = "fuzzing")]
pub(crate) use self::timestamp::parse_digits as parse_timestamp;

#[cfg(feature = "fuzzing")]
pub(crate) fn check_window_secs(window: Window, ts: u64, now: u64) -> Result<(), VerifyError> {
    window.check_secs(ts, now)
}

/// What verification needs to know about one request.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub headers: &'a HeaderMap,
    /// The raw body, exactly as received.
    pub body: &'a [u8],
    /// Unix seconds; injected so tests can pin the clock.
    pub now: u64,
    /// The URL the sender called, for schemes that sign it (Twilio): see [`sender_url`].
    pub url: Option<&'a str>,
}

/// A request that passed: which key matched, and the sender's own id for this delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub key_id: Arc<str>,
    pub delivery_id: Option<String>,
    /// A JSON answer hookgate gives itself instead of forwarding (Zoom's URL validation).
    pub challenge: Option<String>,
}

impl Verified {
    fn new(key_id: Arc<str>, delivery_id: Option<impl Into<String>>) -> Self {
        Self {
            key_id,
            delivery_id: delivery_id.map(Into::into),
            challenge: None,
        }
    }
}

/// Why a request failed. Never shown to the sender: it is logged and counted by `reason()`.
///
/// For schemes that carry their signature fields in the body (Mailgun's `signature` object,
/// Linear's `webhookTimestamp`), "header" means that field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("signature header missing")]
    MissingHeader,
    #[error("signature header malformed")]
    MalformedHeader,
    #[error("signature does not match any key")]
    Mismatch,
    #[error("timestamp older than the tolerance")]
    TimestampExpired,
    #[error("timestamp further in the future than the tolerance")]
    TimestampFuture,
    #[error("route has no usable key")]
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
    /// `Stripe-Signature: t=..,v1=..`; delivery id: the event's `id` in the body.
    Stripe,
    /// `webhook-id/-timestamp/-signature`, v1 HMAC and v1a Ed25519.
    StandardWebhooks,
    /// Standard Webhooks under `svix-*` names, falling back to `webhook-*`.
    Svix,
    /// `X-Slack-Signature: v0=..` over `v0:<ts>:<body>`.
    Slack,
    /// `X-Shopify-Hmac-Sha256: <base64>` over the raw body.
    Shopify,
    /// `X-Twilio-Signature` over the public URL and the form parameters.
    Twilio,
    /// `X-Gitlab-Token`: a shared token, the body is not authenticated.
    GitLab,
    /// `Paddle-Signature: ts=..;h1=..`.
    Paddle,
    /// `x-zm-signature: v0=..`, and the `endpoint.url_validation` challenge.
    Zoom,
    /// `Linear-Signature: <hex>`, timestamp in the body.
    Linear,
    /// Signature fields inside the body; the event data is not authenticated.
    Mailgun,
    /// ECDSA P-256 over `<ts><body>`.
    SendGrid,
    /// Operator-described HMAC.
    Hmac(HmacSpec),
}

/// Scheme names accepted in `verify.scheme` and `hookgate sign --scheme`.
pub const SCHEME_NAMES: &[&str] = &[
    "mediaconvert",
    "github",
    "stripe",
    "standard-webhooks",
    "svix",
    "slack",
    "shopify",
    "twilio",
    "gitlab",
    "paddle",
    "zoom",
    "linear",
    "mailgun",
    "sendgrid",
    "hmac",
];

impl Scheme {
    /// The name used in config, metrics and `X-Webhook-Provider`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::MediaConvert => "mediaconvert",
            Self::GitHub => "github",
            Self::Stripe => "stripe",
            Self::StandardWebhooks => "standard-webhooks",
            Self::Svix => "svix",
            Self::Slack => "slack",
            Self::Shopify => "shopify",
            Self::Twilio => "twilio",
            Self::GitLab => "gitlab",
            Self::Paddle => "paddle",
            Self::Zoom => "zoom",
            Self::Linear => "linear",
            Self::Mailgun => "mailgun",
            Self::SendGrid => "sendgrid",
            Self::Hmac(_) => "hmac",
        }
    }

    /// Every scheme that needs no further description, by name (all but `hmac`).
    pub fn builtin(name: &str) -> Option<Self> {
        [
            Self::MediaConvert,
            Self::GitHub,
            Self::Stripe,
            Self::StandardWebhooks,
            Self::Svix,
            Self::Slack,
            Self::Shopify,
            Self::Twilio,
            Self::GitLab,
            Self::Paddle,
            Self::Zoom,
            Self::Linear,
            Self::Mailgun,
            Self::SendGrid,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }

    /// A generic `hmac` route's signature header: the journal redacts it like the built-in
    /// schemes' own.
    pub fn signature_header(&self) -> Option<&str> {
        match self {
            Self::Hmac(spec) => Some(&spec.header),
            _ => None,
        }
    }

    /// Whether `verify.secrets` (shared secrets) apply.
    pub fn takes_secrets(&self) -> bool {
        !matches!(self, Self::SendGrid)
    }

    /// Whether `verify.public_keys` apply.
    pub fn takes_public_keys(&self) -> bool {
        matches!(self, Self::StandardWebhooks | Self::Svix | Self::SendGrid)
    }

    /// Whether the scheme signs a timestamp, so `verify.tolerance` means something.
    pub fn has_timestamp(&self) -> bool {
        match self {
            Self::MediaConvert | Self::GitHub | Self::Shopify | Self::Twilio | Self::GitLab => {
                false
            }
            Self::Hmac(spec) => spec.timestamp_header.is_some(),
            _ => true,
        }
    }

    /// Decodes a `verify.secrets` entry into the key the scheme MACs with. The error never
    /// contains the secret.
    pub fn add_secret(&self, keys: &mut Keys, secret: Secret) -> Result<(), String> {
        let secret = match self {
            Self::StandardWebhooks | Self::Svix => standard::decode_secret(&secret)?,
            Self::SendGrid => {
                return Err(
                    "scheme sendgrid verifies with a public key; put it under public_keys".into(),
                )
            }
            _ => secret,
        };
        keys.secrets.push(secret);
        Ok(())
    }

    /// Decodes a `verify.public_keys` entry. The error never contains the key material.
    pub fn add_public_key(&self, keys: &mut Keys, key: Secret) -> Result<(), String> {
        let id: Arc<str> = Arc::from(key.id());
        match self {
            Self::StandardWebhooks | Self::Svix => {
                keys.ed25519.push((id, standard::decode_public_key(&key)?));
            }
            Self::SendGrid => keys.p256.push((id, sendgrid::decode_public_key(&key)?)),
            other => {
                return Err(format!(
                    "scheme {} verifies with shared secrets; put them under secrets",
                    other.name()
                ))
            }
        }
        Ok(())
    }

    /// The headers (and, for schemes that sign inside it, the body) a sender would send.
    pub fn sign(&self, key: &SigningKey, input: &SignInput<'_>) -> Result<Signed, SignError> {
        let wrong_key = |wants: &'static str| SignError::WrongKey {
            scheme: self.name(),
            wants,
            got: key.kind(),
        };
        let secret = || match key {
            SigningKey::Secret(s) => Ok(s.as_slice()),
            _ => Err(wrong_key("a shared secret (--secret)")),
        };
        let headers = |h: Vec<(String, String)>| Signed {
            headers: h,
            body: input.body.to_vec(),
        };
        let hmac = |spec: &HmacSpec| {
            let mut h = spec.sign(secret()?, input.body, input.now);
            if let Some(name) = self.delivery_headers().first() {
                h.push((name.to_string(), input.id.to_string()));
            }
            Ok::<_, SignError>(headers(h))
        };
        Ok(match self {
            Self::MediaConvert => hmac(&hmac::MEDIACONVERT)?,
            Self::GitHub => hmac(&hmac::GITHUB)?,
            Self::Shopify => hmac(&hmac::SHOPIFY)?,
            Self::Hmac(spec) => hmac(spec)?,
            Self::Stripe => headers(stripe::sign(secret()?, input)),
            Self::StandardWebhooks => {
                headers(standard::sign(standard::Names::STANDARD, key, input)?)
            }
            Self::Svix => headers(standard::sign(standard::Names::SVIX, key, input)?),
            Self::Slack => headers(slack_zoom::SLACK.sign(secret()?, input)),
            Self::Zoom => headers(slack_zoom::ZOOM.sign(secret()?, input)),
            Self::Twilio => headers(twilio::sign(secret()?, input)?),
            Self::GitLab => headers(token::sign(secret()?, input)),
            Self::Paddle => headers(paddle::sign(secret()?, input)),
            Self::Linear => linear::sign(secret()?, input)?,
            Self::Mailgun => mailgun::sign(secret()?, input)?,
            Self::SendGrid => match key {
                SigningKey::P256(k) => headers(sendgrid::sign(k, input)),
                _ => return Err(wrong_key("a P-256 private key (--private-key-file)")),
            },
        })
    }

    /// For the HMAC-over-body schemes: headers carrying the sender's delivery id, first found
    /// wins. (The other schemes read theirs in their own module.)
    fn delivery_headers(&self) -> &'static [&'static str] {
        match self {
            Self::GitHub => &["x-github-delivery"],
            Self::Shopify => &["x-shopify-webhook-id", "shopify-webhook-id"],
            _ => &[],
        }
    }
}

/// What a sender signs: for `hookgate sign`, `hookgate send` and tests.
#[derive(Debug, Clone, Copy)]
pub struct SignInput<'a> {
    pub body: &'a [u8],
    /// Unix seconds.
    pub now: u64,
    /// The URL the sender calls (Twilio), query included.
    pub url: Option<&'a str>,
    /// A fresh delivery id, for schemes that send one.
    pub id: &'a str,
}

/// A signed request: headers to add, and the body to send (changed only by schemes that carry
/// signature fields inside it: Mailgun, Linear).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Why a request could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("scheme {scheme} signs with {wants}, not {got}")]
    WrongKey {
        scheme: &'static str,
        wants: &'static str,
        got: &'static str,
    },
    #[error("scheme twilio signs the URL the sender calls: give --url (query included)")]
    NeedsUrl,
    #[error("{0}")]
    Key(String),
    #[error("{0}")]
    Body(String),
}

/// A scheme with the keys and settings of one route.
#[derive(Debug, Clone)]
pub struct Verifier {
    scheme: Scheme,
    keys: Keys,
    window: Window,
    public_url: Option<String>,
}

impl Verifier {
    pub fn new(scheme: Scheme, keys: Keys) -> Self {
        Self {
            scheme,
            keys,
            window: Window::default(),
            public_url: None,
        }
    }

    /// `verify.tolerance`: how far a signed timestamp may be from now, either way.
    pub fn with_tolerance(mut self, tolerance: Duration) -> Self {
        self.window = Window::new(tolerance);
        self
    }

    /// `verify.public_url` (Twilio): the URL the sender calls for this route.
    pub fn with_public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = Some(url.into());
        self
    }

    pub fn scheme(&self) -> &Scheme {
        &self.scheme
    }

    pub fn tolerance(&self) -> Duration {
        self.window.tolerance()
    }

    pub fn public_url(&self) -> Option<&str> {
        self.public_url.as_deref()
    }

    /// The first shared secret, in the form `hookgate sign --secret` takes it (a Standard
    /// Webhooks secret as `whsec_<base64>` again); `None` when the route has only public keys.
    pub fn signing_secret(&self) -> Option<SigningKey> {
        let secret = self.keys.secrets.first()?.expose();
        Some(SigningKey::Secret(match self.scheme {
            Scheme::StandardWebhooks | Scheme::Svix => {
                format!("whsec_{}", Encoding::Base64.encode(secret)).into_bytes()
            }
            _ => secret.to_vec(),
        }))
    }

    /// Checks one request. Every key is tried; the first that matches is reported.
    pub fn verify(&self, input: &Input<'_>) -> Result<Verified, VerifyError> {
        if self.keys.is_empty() {
            return Err(VerifyError::NoSecret);
        }
        let (keys, window) = (&self.keys, self.window);
        let hmac = |spec: &HmacSpec| {
            let key_id = spec.verify(input, &keys.secrets, window)?;
            let id = header::optional(input.headers, self.scheme.delivery_headers());
            Ok(Verified::new(key_id, id))
        };
        match &self.scheme {
            Scheme::MediaConvert => hmac(&hmac::MEDIACONVERT),
            Scheme::GitHub => hmac(&hmac::GITHUB),
            Scheme::Shopify => hmac(&hmac::SHOPIFY),
            Scheme::Hmac(spec) => hmac(spec),
            Scheme::Linear => linear::verify(input, keys, window),
            Scheme::Stripe => stripe::verify(input, keys, window),
            Scheme::StandardWebhooks => {
                standard::verify(standard::Names::STANDARD, input, keys, window)
            }
            Scheme::Svix => standard::verify(standard::Names::SVIX, input, keys, window),
            Scheme::Slack => slack_zoom::SLACK.verify(input, keys, window),
            Scheme::Zoom => slack_zoom::ZOOM.verify(input, keys, window),
            Scheme::Twilio => twilio::verify(input, keys),
            Scheme::GitLab => token::verify(input, keys),
            Scheme::Paddle => paddle::verify(input, keys, window),
            Scheme::Mailgun => mailgun::verify(input, keys, window),
            Scheme::SendGrid => sendgrid::verify(input, keys, window),
        }
    }
}

/// The id of the first secret for which `matches` holds, or a mismatch.
fn first_match(
    secrets: &[Secret],
    mut matches: impl FnMut(&[u8]) -> bool,
) -> Result<Arc<str>, VerifyError> {
    secrets
        .iter()
        .find(|s| matches(s.expose()))
        .map(|s| Arc::from(s.id()))
        .ok_or(VerifyError::Mismatch)
}

/// The first of the body's top-level string fields `names` that is present, read only from an
/// already verified body, for delivery ids (Stripe's event `id`, Paddle's `notification_id`).
/// Other values are skipped, not built: no JSON tree is made for a large body.
fn body_field(body: &[u8], names: &[&str]) -> Option<String> {
    use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};

    /// Which of `names` a key is (its rank), or `None`.
    struct Key<'n>(&'n [&'n str]);
    impl<'de> DeserializeSeed<'de> for Key<'_> {
        type Value = Option<usize>;
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_str(self)
        }
    }
    impl Visitor<'_> for Key<'_> {
        type Value = Option<usize>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a key")
        }
        fn visit_str<E>(self, key: &str) -> Result<Self::Value, E> {
            Ok(self.0.iter().position(|n| *n == key))
        }
    }

    struct Fields<'n>(&'n [&'n str]);
    impl<'de> Visitor<'de> for Fields<'_> {
        type Value = Option<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut best: Option<(usize, String)> = None;
            while let Some(rank) = map.next_key_seed(Key(self.0))? {
                match rank {
                    Some(r) if best.as_ref().is_none_or(|(b, _)| r < *b) => {
                        if let serde_json::Value::String(v) = map.next_value()? {
                            best = Some((r, v));
                        }
                    }
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(best.map(|(_, v)| v))
        }
    }

    if names.is_empty() {
        return None;
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    serde::Deserializer::deserialize_map(&mut de, Fields(names))
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_a_scheme() {
        for name in SCHEME_NAMES {
            match Scheme::builtin(name) {
                Some(s) => assert_eq!(s.name(), *name),
                None => assert_eq!(*name, "hmac"),
            }
        }
    }

    #[test]
    fn no_keys_is_no_secret() {
        let h = HeaderMap::new();
        let v = Verifier::new(Scheme::Stripe, Keys::default());
        let input = Input {
            headers: &h,
            body: b"",
            now: 0,
            url: None,
        };
        assert_eq!(v.verify(&input), Err(VerifyError::NoSecret));
    }

    const EVENT: &[u8] =
        br#"{"id":"evt_1","event_id":"Ev1","notification_id":"ntf_1","n":[1,{"id":2}]}"#;
    const NOW: u64 = 1_700_000_000;

    fn ed25519() -> SigningKey {
        SigningKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&[9; 32]))
    }

    fn p256() -> SigningKey {
        SigningKey::P256(p256::ecdsa::SigningKey::from_slice(&[7; 32]).unwrap())
    }

    /// A verifier holding the public half of `key` (or the secret itself), plus an unrelated key.
    fn verifier_for(scheme: &Scheme, key: &SigningKey) -> Verifier {
        let mut keys = Keys::default();
        match key {
            SigningKey::Secret(s) => {
                scheme
                    .add_secret(&mut keys, Secret::new("k", s.clone()))
                    .unwrap();
            }
            SigningKey::Ed25519(k) => keys.ed25519.push(("k".into(), k.verifying_key())),
            SigningKey::P256(k) => keys.p256.push(("k".into(), *k.verifying_key())),
        }
        Verifier::new(scheme.clone(), keys)
    }

    fn headers(signed: &Signed) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in &signed.headers {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    /// A route's first secret signs requests it verifies, a Standard Webhooks one included
    /// (stored decoded, handed back as whsec_).
    #[test]
    fn signing_secret_is_the_first_secret_in_sign_form() {
        for (scheme, secret) in [
            (Scheme::GitHub, &b"s3cret"[..]),
            (
                Scheme::StandardWebhooks,
                b"whsec_QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZX",
            ),
            (Scheme::Svix, b"whsec_QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZX"),
        ] {
            let mut keys = Keys::default();
            scheme
                .add_secret(&mut keys, Secret::new("k", secret.to_vec()))
                .unwrap();
            scheme
                .add_secret(&mut keys, Secret::new("other", b"whsec_AAAA".to_vec()))
                .unwrap();
            let verifier = Verifier::new(scheme.clone(), keys);
            let key = verifier.signing_secret().expect("a shared secret");
            assert!(matches!(&key, SigningKey::Secret(s) if s == secret));
            let input = SignInput {
                body: EVENT,
                now: NOW,
                url: None,
                id: "d1",
            };
            let signed = scheme.sign(&key, &input).unwrap();
            let h = headers(&signed);
            let got = verifier.verify(&Input {
                headers: &h,
                body: &signed.body,
                now: NOW,
                url: None,
            });
            assert_eq!(got.map(|v| v.key_id.to_string()), Ok("k".into()));
        }
        let only_public = verifier_for(&Scheme::SendGrid, &p256());
        assert!(only_public.signing_secret().is_none());
    }

    #[test]
    fn sign_then_verify_every_scheme() {
        let url = "https://hooks.example.com/t?a=1";
        let mut schemes: Vec<(Scheme, SigningKey)> = SCHEME_NAMES
            .iter()
            .filter_map(|n| Scheme::builtin(n))
            .map(|s| {
                let key = match s {
                    Scheme::SendGrid => p256(),
                    Scheme::StandardWebhooks | Scheme::Svix => {
                        SigningKey::Secret(b"whsec_QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZX".to_vec())
                    }
                    _ => SigningKey::Secret(b"s3cret".to_vec()),
                };
                (s, key)
            })
            .collect();
        schemes.push((Scheme::StandardWebhooks, ed25519()));
        schemes.push((Scheme::Svix, ed25519()));
        let mut spec = HmacSpec::sha256_hex_prefixed("x-sig");
        spec.signed = Template::parse("{header.X-Ts}:{body}").unwrap();
        spec.timestamp_header = Some("x-ts".into());
        schemes.push((Scheme::Hmac(spec), SigningKey::Secret(b"s3cret".to_vec())));
        for (scheme, key) in &schemes {
            let signed = scheme
                .sign(
                    key,
                    &SignInput {
                        body: EVENT,
                        now: NOW,
                        url: Some(url),
                        id: "d1",
                    },
                )
                .unwrap_or_else(|e| panic!("{}: {e}", scheme.name()));
            let h = headers(&signed);
            let input = Input {
                headers: &h,
                body: &signed.body,
                now: NOW,
                url: Some(url),
            };
            let verifier = verifier_for(scheme, key);
            let got = verifier.verify(&input);
            assert_eq!(
                got.as_ref().map(|v| &*v.key_id),
                Ok("k"),
                "{}",
                scheme.name()
            );
            let later = Input {
                now: NOW + 301,
                ..input
            };
            let want = if scheme.has_timestamp() {
                Err(VerifyError::TimestampExpired)
            } else {
                Ok(())
            };
            assert_eq!(
                verifier.verify(&later).map(|_| ()),
                want,
                "{}",
                scheme.name()
            );
            if !matches!(scheme, Scheme::GitLab | Scheme::Mailgun) {
                let mut changed = signed.body.clone();
                let i = changed.iter().position(|b| *b == b'v').unwrap();
                changed[i] = b'w';
                let tampered = Input {
                    body: &changed,
                    ..input
                };
                assert_eq!(
                    verifier.verify(&tampered),
                    Err(VerifyError::Mismatch),
                    "{}",
                    scheme.name()
                );
            }
        }
    }

    #[test]
    fn delivery_ids_from_the_body_skip_other_values() {
        assert_eq!(body_field(EVENT, &["id"]).as_deref(), Some("evt_1"));
        assert_eq!(
            body_field(EVENT, &["notification_id", "event_id"]).as_deref(),
            Some("ntf_1")
        );
        assert_eq!(
            body_field(
                br#"{"event_id":"e","notification_id":"n"}"#,
                &["notification_id", "event_id"]
            )
            .as_deref(),
            Some("n")
        );
        assert_eq!(body_field(br#"{"id":7}"#, &["id"]), None);
        assert_eq!(
            body_field(br#"{"i\u0064":"x"}"#, &["id"]).as_deref(),
            Some("x")
        );
        assert_eq!(body_field(b"[1]", &["id"]), None);
        assert_eq!(body_field(b"a=1", &["id"]), None);
        assert_eq!(body_field(EVENT, &[]), None);
    }

    #[test]
    fn sign_refuses_what_a_scheme_cannot_sign() {
        let input = |body: &'static [u8], url| SignInput {
            body,
            now: NOW,
            url,
            id: "d",
        };
        let secret = SigningKey::Secret(b"s".to_vec());
        let err = |s: Scheme, k: &SigningKey, i: SignInput<'_>| s.sign(k, &i).unwrap_err();
        assert_eq!(
            err(Scheme::Twilio, &secret, input(b"a=1", None)),
            SignError::NeedsUrl
        );
        assert!(matches!(
            err(Scheme::SendGrid, &secret, input(EVENT, None)),
            SignError::WrongKey { .. }
        ));
        assert!(matches!(
            err(Scheme::Stripe, &ed25519(), input(EVENT, None)),
            SignError::WrongKey { .. }
        ));
        assert!(matches!(
            err(Scheme::Svix, &p256(), input(EVENT, None)),
            SignError::WrongKey { .. }
        ));
        assert!(matches!(
            err(
                Scheme::StandardWebhooks,
                &SigningKey::Secret(b"whsec_%%".to_vec()),
                input(EVENT, None)
            ),
            SignError::Key(_)
        ));
        assert!(matches!(
            err(Scheme::Linear, &secret, input(b"[1]", None)),
            SignError::Body(_)
        ));
        assert!(matches!(
            err(Scheme::Mailgun, &secret, input(b"{oops", None)),
            SignError::Body(_)
        ));
    }
}
