//! Properties of every verifier, over generated bodies, secrets, times and ids:
//! a request a scheme signs always verifies, and changing any single byte of what the scheme
//! signs (the body, the signature, the timestamp, the signed id) always fails.
//!
//! GitLab and Mailgun do not sign the body: for them the token, or Mailgun's timestamp, token
//! and signature fields, are what is tested, and a changed body is shown to pass (the limit
//! SECURITY.md states). Twilio signs the URL and the *decoded* form parameters, or, for a JSON
//! body, the URL carrying the body's SHA-256: both shapes are tested.

use std::time::Duration;

use base64::Engine as _;
use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;

use hookgate::secret::Secret;
use hookgate::verify::{
    add_body_hash, Algorithm, Encoding, HmacSpec, Input, Keys, Scheme, SignInput, SigningKey,
    Template, Verifier,
};

/// Headers that carry only a delivery id, which no scheme signs (Standard Webhooks' and Svix's
/// ids are signed, and are not listed).
const UNSIGNED: &[&str] = &[
    "x-github-delivery",
    "x-shopify-webhook-id",
    "i-twilio-idempotency-token",
    "linear-delivery",
    "idempotency-key",
];

const URL: &str = "https://hooks.example.com/in?tenant=a";

fn cases() -> ProptestConfig {
    ProptestConfig {
        cases: 96,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

struct Signer {
    scheme: Scheme,
    verifier: Verifier,
    key: SigningKey,
}

/// A verifier holding `secret` (decoded as the scheme wants) or the public half of `key`.
fn signer(scheme: Scheme, key: SigningKey) -> Signer {
    let mut keys = Keys::default();
    match &key {
        SigningKey::Secret(s) => scheme
            .add_secret(&mut keys, Secret::new("k", s.clone()))
            .expect("secret"),
        SigningKey::Ed25519(k) => {
            let b64 =
                base64::engine::general_purpose::STANDARD.encode(k.verifying_key().as_bytes());
            scheme
                .add_public_key(
                    &mut keys,
                    Secret::new("k", format!("whpk_{b64}").into_bytes()),
                )
                .expect("ed25519 public key")
        }
        SigningKey::P256(k) => {
            use p256::pkcs8::EncodePublicKey;
            let der = k.verifying_key().to_public_key_der().expect("der");
            let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_bytes());
            scheme
                .add_public_key(&mut keys, Secret::new("k", b64.into_bytes()))
                .expect("p256 public key")
        }
    }
    let verifier = Verifier::new(scheme.clone(), keys)
        .with_tolerance(Duration::from_secs(300))
        .with_public_url(URL);
    Signer {
        scheme,
        verifier,
        key,
    }
}

/// A signed request: headers, body, and the URL the sender called.
#[derive(Debug, Clone)]
struct Request {
    /// Values as bytes: a changed byte need not be UTF-8, and a header value need not be.
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    url: String,
}

impl Signer {
    fn sign(&self, body: &[u8], now: u64, id: &str, url: &str) -> Request {
        let signed = self
            .scheme
            .sign(
                &self.key,
                &SignInput {
                    body,
                    now,
                    url: Some(url),
                    id,
                },
            )
            .unwrap_or_else(|e| panic!("{}: {e}", self.scheme.name()));
        Request {
            headers: signed
                .headers
                .into_iter()
                .map(|(n, v)| (n, v.into_bytes()))
                .collect(),
            body: signed.body,
            url: url.to_string(),
        }
    }

    /// `None` when the request cannot even be sent (a header value with a control byte).
    fn verify(&self, r: &Request, now: u64) -> Option<Result<String, &'static str>> {
        let mut h = HeaderMap::new();
        for (n, v) in &r.headers {
            let name = HeaderName::from_bytes(n.as_bytes()).expect("header name");
            h.append(name, HeaderValue::from_bytes(v).ok()?);
        }
        let input = Input {
            headers: &h,
            body: &r.body,
            now,
            url: Some(&r.url),
        };
        Some(
            self.verifier
                .verify(&input)
                .map(|v| v.key_id.to_string())
                .map_err(|e| e.reason()),
        )
    }
}

/// `bytes` with byte `at % len` changed to a different value.
fn flip(bytes: &[u8], at: usize, xor: u8) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let i = at % out.len();
    out[i] ^= xor;
    out
}

/// `r` with one byte changed in the value of every signed header in turn; each must fail.
/// (A change to a byte no header value may hold, such as a newline, cannot be sent at all.)
fn each_header_changed_fails(s: &Signer, r: &Request, now: u64, at: usize, xor: u8) {
    for (i, (name, value)) in r.headers.iter().enumerate() {
        if UNSIGNED.contains(&name.to_ascii_lowercase().as_str()) || value.is_empty() {
            continue;
        }
        let mut bad = r.clone();
        bad.headers[i].1 = flip(value, at, xor);
        if let Some(got) = s.verify(&bad, now) {
            assert!(
                got.is_err(),
                "{}: header {name} changed to {:?} still verifies",
                s.scheme.name(),
                String::from_utf8_lossy(&bad.headers[i].1)
            );
        }
    }
}

fn shared(secret: &[u8]) -> SigningKey {
    SigningKey::Secret(secret.to_vec())
}

fn whsec(raw: &[u8]) -> SigningKey {
    let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
    SigningKey::Secret(format!("whsec_{b64}").into_bytes())
}

fn ed25519(seed: [u8; 32]) -> SigningKey {
    SigningKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&seed))
}

fn p256_key(seed: [u8; 32]) -> Option<SigningKey> {
    p256::ecdsa::SigningKey::from_slice(&seed)
        .ok()
        .map(SigningKey::P256)
}

fn generic(timestamped: bool) -> Scheme {
    let mut spec = HmacSpec::sha256_hex_prefixed("x-signature");
    if timestamped {
        spec.prefix = String::new();
        spec.encoding = Encoding::Base64;
        spec.algorithm = Algorithm::Sha512;
        spec.signed = Template::parse("{header.X-Ts}.{body}").expect("template");
        spec.timestamp_header = Some("x-ts".into());
    }
    Scheme::Hmac(spec)
}

/// The body-signing schemes, with a key made from the generated material.
fn body_signers(secret: &[u8], seed: [u8; 32]) -> Vec<Signer> {
    let mut out: Vec<Signer> = [
        "mediaconvert",
        "github",
        "stripe",
        "slack",
        "shopify",
        "paddle",
        "zoom",
        "linear",
    ]
    .iter()
    .map(|n| signer(Scheme::builtin(n).expect("scheme"), shared(secret)))
    .collect();
    out.push(signer(generic(false), shared(secret)));
    out.push(signer(generic(true), shared(secret)));
    out.push(signer(Scheme::StandardWebhooks, whsec(secret)));
    out.push(signer(Scheme::Svix, whsec(secret)));
    out.push(signer(Scheme::StandardWebhooks, ed25519(seed)));
    out.push(signer(Scheme::Svix, ed25519(seed)));
    if let Some(k) = p256_key(seed) {
        out.push(signer(Scheme::SendGrid, k));
    }
    out
}

fn json_object() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::btree_map("[a-z]{1,8}", "[ -~]{0,24}", 0..6)
        .prop_map(|m| serde_json::to_vec(&m).expect("json"))
}

fn any_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 1..300),
        json_object()
    ]
}

fn secret() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 1..48)
}

fn now() -> impl Strategy<Value = u64> {
    1_000_000_000u64..4_000_000_000
}

fn id() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_]{1,24}"
}

proptest! {
    #![proptest_config(cases())]

    /// Every body-signing scheme: what it signs verifies; one changed byte of the body, of any
    /// signed header (signature, timestamp, signed id) fails.
    #[test]
    fn body_signing_schemes(
        body in json_object(),
        raw in any_body(),
        secret in secret(),
        seed in any::<[u8; 32]>(),
        now in now(),
        id in id(),
        at in any::<usize>(),
        xor in 1u8..=255,
    ) {
        for s in body_signers(&secret, seed) {
            // Linear carries its timestamp in a JSON object body; the others take any bytes.
            let body = if s.scheme.name() == "linear" { &body } else { &raw };
            let r = s.sign(body, now, &id, URL);
            prop_assert_eq!(s.verify(&r, now), Some(Ok("k".to_string())), "{}", s.scheme.name());
            let mut bad = r.clone();
            bad.body = if r.body.is_empty() { vec![xor] } else { flip(&r.body, at, xor) };
            let got = s.verify(&bad, now).expect("sendable");
            prop_assert!(got.is_err(), "{}: changed body verifies", s.scheme.name());
            each_header_changed_fails(&s, &r, now, at, xor);
        }
    }

    /// Twilio with a JSON body: the URL carries the body's SHA-256, so any changed body byte, any
    /// changed signature byte and any changed URL byte fails.
    #[test]
    fn twilio_json_body(
        body in json_object(),
        secret in secret(),
        now in now(),
        at in any::<usize>(),
        xor in 1u8..=255,
    ) {
        let s = signer(Scheme::Twilio, shared(&secret));
        let url = add_body_hash(URL, &body);
        let r = s.sign(&body, now, "RQ1", &url);
        prop_assert_eq!(s.verify(&r, now), Some(Ok("k".to_string())));
        let mut bad = r.clone();
        bad.body = flip(&r.body, at, xor);
        prop_assert!(s.verify(&bad, now).expect("sendable").is_err(), "changed body verifies");
        each_header_changed_fails(&s, &r, now, at, xor);
        let mut bad = r.clone();
        let Ok(changed) = String::from_utf8(flip(url.as_bytes(), at, xor)) else {
            return Ok(());
        };
        bad.url = changed;
        prop_assert!(s.verify(&bad, now).expect("sendable").is_err(), "changed URL {} verifies", bad.url);
    }

    /// Twilio with a form body signs the decoded, sorted parameters: a changed byte fails
    /// whenever it changes what the parameters decode to. (A change that decodes the same, such
    /// as `+` for a space, passes: SECURITY.md says so.)
    #[test]
    fn twilio_form_body(
        params in proptest::collection::vec(("[A-Za-z]{1,8}", "[ -~]{0,16}"), 1..6),
        secret in secret(),
        now in now(),
        at in any::<usize>(),
        xor in 1u8..=255,
    ) {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&params)
            .finish()
            .into_bytes();
        let s = signer(Scheme::Twilio, shared(&secret));
        let r = s.sign(&body, now, "RQ1", URL);
        prop_assert_eq!(s.verify(&r, now), Some(Ok("k".to_string())));
        let mut bad = r.clone();
        bad.body = flip(&r.body, at, xor);
        let decoded = |b: &[u8]| {
            let mut p: Vec<(String, String)> =
                form_urlencoded::parse(b).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
            p.sort();
            p.dedup();
            p
        };
        let got = s.verify(&bad, now).expect("sendable");
        if decoded(&bad.body) == decoded(&r.body) {
            prop_assert!(got.is_ok(), "same parameters refused");
        } else {
            prop_assert!(got.is_err(), "changed parameters verify: {:?}", String::from_utf8_lossy(&bad.body));
        }
        each_header_changed_fails(&s, &r, now, at, xor);
    }

    /// GitLab sends the shared token itself: any changed token byte fails; the body is not
    /// authenticated, so a changed body passes.
    #[test]
    fn gitlab_token(
        body in any_body(),
        token in "[ -~]{1,40}",
        at in any::<usize>(),
        xor in 1u8..=255,
    ) {
        let s = signer(Scheme::GitLab, shared(token.as_bytes()));
        let r = s.sign(&body, 1_700_000_000, "uuid-1", URL);
        prop_assert_eq!(s.verify(&r, 1_700_000_000), Some(Ok("k".to_string())));
        each_header_changed_fails(&s, &r, 1_700_000_000, at, xor);
        let mut other = r.clone();
        other.body = flip(&r.body, at, xor);
        prop_assert_eq!(s.verify(&other, 1_700_000_000), Some(Ok("k".to_string())));
    }

    /// Mailgun signs the timestamp and token in its `signature` fields: a changed byte in those
    /// fields (form body: the appended `timestamp=..&token=..&signature=..`) fails; the event
    /// data before them is not authenticated and passes changed.
    #[test]
    fn mailgun_signed_fields(
        event in proptest::collection::vec(("[a-z]{1,8}", "[A-Za-z0-9]{0,16}"), 1..5),
        secret in secret(),
        now in now(),
        id in "[A-Za-z0-9]{1,24}",
        at in any::<usize>(),
        xor in 1u8..=255,
    ) {
        let event: Vec<(String, String)> = event
            .into_iter()
            .filter(|(k, _)| !matches!(k.as_str(), "timestamp" | "token" | "signature"))
            .collect();
        prop_assume!(!event.is_empty());
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&event)
            .finish()
            .into_bytes();
        let s = signer(Scheme::Mailgun, shared(&secret));
        let r = s.sign(&body, now, &id, URL);
        prop_assert_eq!(s.verify(&r, now), Some(Ok("k".to_string())));
        // The signed fields follow the event data and its `&`.
        let fields_at = body.len() + 1;
        let signed = &r.body[fields_at..];
        let mut bad = r.clone();
        bad.body = [&r.body[..fields_at], &flip(signed, at, xor)[..]].concat();
        prop_assert!(
            s.verify(&bad, now).expect("sendable").is_err(),
            "changed signed field verifies: {:?}",
            String::from_utf8_lossy(&bad.body)
        );
        let mut other = r.clone();
        let data = flip(&body, at, xor);
        let fields = form_urlencoded::parse(&data).map(|(k, _)| k.into_owned()).collect::<Vec<_>>();
        prop_assume!(!fields.iter().any(|k| matches!(k.as_str(), "timestamp" | "token" | "signature")));
        prop_assume!(!data.contains(&b'&'));
        // A body that now starts with `{` is read as Mailgun's JSON form, not as fields.
        prop_assume!(data.first() != Some(&b'{'));
        other.body = [&data[..], &r.body[body.len()..]].concat();
        prop_assert_eq!(s.verify(&other, now), Some(Ok("k".to_string())));
    }
}
