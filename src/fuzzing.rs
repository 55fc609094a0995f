//! Entry points for the fuzz targets in `fuzz/` and for `tests/it/fuzz_replay.rs`, which replays
//! their seed corpus on stable Rust. Each takes arbitrary bytes, drives one parser that sees
//! sender (or operator) input, and panics only when an invariant of that parser breaks: a
//! panic here is a bug, in the gateway or in the invariant.
//!
//! Not part of the supported API: hidden from the docs, may change with any release.

use std::net::IpAddr;
use std::path::Path;
use std::sync::LazyLock;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use ipnet::IpNet;
use serde_json::Value;

use crate::config::{Config, ConfigError};
use crate::schema::{self, Mode, Schema, Select};
use crate::secret::Secret;
use crate::verify::{
    Algorithm, Encoding, HmacSpec, Input, Keys, Scheme, SignInput, SigningKey, Template, Verifier,
    VerifyError, Window, SCHEME_NAMES,
};

/// The shared secret every fuzzed verifier holds.
const SECRET: &[u8] = b"fuzz-secret";
/// A Standard Webhooks / Svix `whsec_` secret (base64 of 24 bytes).
const WHSEC: &[u8] = b"whsec_QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZX";
/// The URL Twilio signs, as `verify.public_url` would give it.
const PUBLIC_URL: &str = "https://hooks.example.com/twilio?a=1";

/// Splits a fuzz input in the format of `fuzz/seeds/verify/*`:
///
/// ```text
/// <first line: "<unix now>" or "sign <unix now>">
/// Header-Name: value
/// ...
/// <empty line>
/// body bytes
/// ```
///
/// Header lines that are not a valid name and value are skipped; without an empty line
/// everything after the first line is headers.
pub fn split_request(data: &[u8]) -> (&[u8], HeaderMap, &[u8]) {
    let (first, rest) = split_line(data);
    let (head, body) = match find(rest, b"\n\n") {
        Some(i) => (&rest[..i + 1], &rest[i + 2..]),
        None => (rest, &[][..]),
    };
    let mut headers = HeaderMap::new();
    for line in head.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let value = line[colon + 1..]
            .strip_prefix(b" ")
            .unwrap_or(&line[colon + 1..]);
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(value),
        ) {
            headers.append(n, v);
        }
    }
    (first, headers, body)
}

fn split_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// One verifier per scheme (two for `hmac`), each with a key the fuzzer can sign with.
struct Fixture {
    verifier: Verifier,
    signing: SigningKey,
}

static FIXTURES: LazyLock<Vec<Fixture>> = LazyLock::new(fixtures);

fn ed25519() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[9; 32])
}

fn p256() -> p256::ecdsa::SigningKey {
    // A fixed non-zero scalar below the curve order is always a valid key.
    p256::ecdsa::SigningKey::from_slice(&[7; 32]).unwrap_or_else(|_| unreachable!())
}

fn fixtures() -> Vec<Fixture> {
    use base64::Engine as _;
    use p256::pkcs8::EncodePublicKey;
    let b64 = base64::engine::general_purpose::STANDARD;
    let ed_public = format!("whpk_{}", b64.encode(ed25519().verifying_key().as_bytes()));
    let p256_public = p256()
        .verifying_key()
        .to_public_key_der()
        .map(|d| b64.encode(d.as_bytes()))
        .unwrap_or_default();

    let mut schemes: Vec<Scheme> = SCHEME_NAMES
        .iter()
        .filter_map(|n| Scheme::builtin(n))
        .collect();
    schemes.push(Scheme::Hmac(HmacSpec::sha256_hex_prefixed("x-signature")));
    let mut timed = HmacSpec::sha256_hex_prefixed("x-sig");
    timed.prefix = String::new();
    timed.encoding = Encoding::Base64;
    timed.algorithm = Algorithm::Sha512;
    timed.signed = Template::parse("{header.X-Ts}.{body}").unwrap_or_else(|_| Template::body());
    timed.timestamp_header = Some("x-ts".into());
    schemes.push(Scheme::Hmac(timed));

    schemes
        .into_iter()
        .map(|scheme| {
            let mut keys = Keys::default();
            let secret = match scheme {
                Scheme::StandardWebhooks | Scheme::Svix => WHSEC,
                _ => SECRET,
            };
            if scheme.takes_secrets() {
                let _ = scheme.add_secret(&mut keys, Secret::new("k", secret));
            }
            let public = match scheme {
                Scheme::StandardWebhooks | Scheme::Svix => Some(ed_public.as_bytes()),
                Scheme::SendGrid => Some(p256_public.as_bytes()),
                _ => None,
            };
            if let Some(p) = public {
                let _ = scheme.add_public_key(&mut keys, Secret::new("pk", p));
            }
            let signing = match scheme {
                Scheme::SendGrid => SigningKey::P256(p256()),
                _ => SigningKey::Secret(secret.to_vec()),
            };
            let verifier = Verifier::new(scheme, keys)
                .with_tolerance(Window::DEFAULT)
                .with_public_url(PUBLIC_URL);
            Fixture { verifier, signing }
        })
        .collect()
}

/// Every scheme's `Verifier::verify` on the same headers and body.
///
/// With a first line `sign <now>`, each scheme first signs the body with its own key and the
/// signed headers replace fuzzed ones of the same name, so the code behind a matching MAC
/// (delivery ids, Linear's timestamp in the body, Zoom's challenge, Mailgun's fields) is
/// reached too.
///
/// Invariants: never a panic; a refusal has a classified reason; a request that passes names
/// the key that matched.
pub fn verify(data: &[u8]) {
    for (scheme, result) in verify_each(data) {
        match result {
            Ok(key_id) => assert!(
                matches!(&*key_id, "k" | "pk"),
                "{scheme}: passed with key {key_id:?}"
            ),
            Err(e) => assert!(!e.reason().is_empty()),
        }
    }
}

/// For a `sign` input: `Err` names every scheme that signed the body but refused it.
pub fn signed_passes(data: &[u8]) -> Result<(), String> {
    let failed: Vec<String> = verify_each(data)
        .into_iter()
        .filter_map(|(scheme, r)| r.err().map(|e| format!("{scheme}: {}", e.reason())))
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed.join(", "))
    }
}

/// Each scheme's verdict on an input of [`verify`]: `ok`, or the refusal's reason. For
/// checking that the corpus reaches every scheme's parser, well-formed and not.
pub fn verdicts(data: &[u8]) -> Vec<(&'static str, &'static str)> {
    verify_each(data)
        .into_iter()
        .map(|(scheme, r)| (scheme, r.map_or_else(VerifyError::reason, |_| "ok")))
        .collect()
}

/// Each scheme's verdict (the matching key's id, or why not); a scheme that cannot sign a
/// `sign` input's body is left out.
fn verify_each(data: &[u8]) -> Vec<(&'static str, Result<String, VerifyError>)> {
    let (first, headers, body) = split_request(data);
    let first = std::str::from_utf8(first).unwrap_or("");
    let (sign, now) = match first.strip_prefix("sign ") {
        Some(n) => (true, n),
        None => (false, first),
    };
    let now = now.trim().parse::<u64>().unwrap_or(1_700_000_000);
    let mut out = Vec::new();
    for f in FIXTURES.iter() {
        let scheme = f.verifier.scheme();
        let mut h = headers.clone();
        let mut signed_body = body.to_vec();
        if sign {
            let input = SignInput {
                body,
                now,
                url: Some(PUBLIC_URL),
                id: "msg_fuzz",
            };
            let Ok(signed) = scheme.sign(&f.signing, &input) else {
                continue;
            };
            for (n, v) in &signed.headers {
                if let (Ok(n), Ok(v)) = (
                    HeaderName::from_bytes(n.as_bytes()),
                    HeaderValue::from_str(v),
                ) {
                    h.insert(n, v);
                }
            }
            signed_body = signed.body;
        }
        let input = Input {
            headers: &h,
            body: &signed_body,
            now,
            url: Some(PUBLIC_URL),
        };
        let verdict = f.verifier.verify(&input).map(|v| v.key_id.to_string());
        out.push((scheme.name(), verdict));
    }
    out
}

/// The strict timestamp parser and the replay window.
///
/// Input: `<text>\n<24 bytes: ts, now, tolerance_ms as u64 LE>`. The text is parsed as a
/// signed timestamp; the numbers go through the window.
///
/// Invariants: only plain ASCII digits that fit a u64 parse, to exactly their value; the window
/// answers as the arithmetic on unbounded integers would, and never overflows.
pub fn timestamp(data: &[u8]) {
    let (text, numbers) = split_line(data);
    if let Ok(s) = std::str::from_utf8(text) {
        let got = crate::verify::parse_timestamp(s);
        let plain = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        match (plain, s.parse::<u64>(), got) {
            (true, Ok(n), Ok(m)) => assert_eq!(n, m, "{s:?}"),
            (true, Err(_), Err(VerifyError::MalformedHeader)) => {}
            (false, _, Err(VerifyError::MalformedHeader)) => {}
            (_, _, got) => panic!("{s:?} parsed as {got:?}"),
        }
    }
    let mut n = numbers.chunks_exact(8).map(|c| {
        let mut b = [0u8; 8];
        b.copy_from_slice(c);
        u64::from_le_bytes(b)
    });
    let (Some(ts), Some(now), Some(tol_ms)) = (n.next(), n.next(), n.next()) else {
        return;
    };
    let window = Window::new(Duration::from_millis(tol_ms));
    let got = crate::verify::check_window_secs(window, ts, now);
    // Saturating to u64 milliseconds, as the window does: a timestamp that far out is refused.
    let (ts_ms, now_ms) = (
        u128::from(ts)
            .saturating_mul(1000)
            .min(u128::from(u64::MAX)),
        u128::from(now)
            .saturating_mul(1000)
            .min(u128::from(u64::MAX)),
    );
    let want = if now_ms > ts_ms + u128::from(tol_ms) {
        Err(VerifyError::TimestampExpired)
    } else if ts_ms > now_ms + u128::from(tol_ms) {
        Err(VerifyError::TimestampFuture)
    } else {
        Ok(())
    };
    assert_eq!(got, want, "ts {ts} now {now} tolerance {tol_ms}ms");
}

static TRUSTED: LazyLock<Vec<IpNet>> = LazyLock::new(|| {
    ["10.0.0.0/8", "192.0.2.0/24", "2001:db8::/32", "::1/128"]
        .iter()
        .filter_map(|c| c.parse().ok())
        .collect()
});

/// `X-Forwarded-For` resolution (`server.trusted_proxies`).
///
/// Input: first byte picks the socket peer (trusted or not, v4, v6 or v4-mapped); every
/// following line is one `X-Forwarded-For` header copy.
///
/// Invariants: an untrusted peer is the client whatever the header says; otherwise the client
/// is the peer or an address written in the header, and every hop to its right is trusted.
pub fn client_ip(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let peers: [IpAddr; 6] = [
        IpAddr::from([10, 0, 0, 2]),
        IpAddr::from([203, 0, 113, 9]),
        IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]),
        IpAddr::from([0x2001, 0xdb9, 0, 0, 0, 0, 0, 1]),
        IpAddr::from([0, 0, 0, 0, 0, 0xffff, 0x0a00, 0x0002]),
        IpAddr::from([0, 0, 0, 0, 0, 0, 0, 1]),
    ];
    let peer = peers[usize::from(pick) % peers.len()];
    let mut headers = HeaderMap::new();
    for line in rest.split(|b| *b == b'\n') {
        if let Ok(v) = HeaderValue::from_bytes(line) {
            headers.append("x-forwarded-for", v);
        }
    }
    let trusted = &*TRUSTED;
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    let got = crate::gateway::client_ip(peer, &headers, trusted);
    if !is_trusted(&peer) {
        assert_eq!(
            got, peer,
            "an untrusted peer's X-Forwarded-For was believed"
        );
        return;
    }
    if got == peer {
        return;
    }
    // The hops as written, nearest first; the client is one of them and all nearer are trusted.
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .rev()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.rsplit(','))
        .map(str::trim)
        .collect();
    let at = hops
        .iter()
        .position(|h| h.parse::<IpAddr>().ok() == Some(got))
        .unwrap_or_else(|| panic!("client {got} is not in X-Forwarded-For {hops:?}"));
    for nearer in &hops[..at] {
        let ip: IpAddr = nearer
            .parse()
            .unwrap_or_else(|_| panic!("walked past the garbled hop {nearer:?}"));
        assert!(is_trusted(&ip), "walked past the untrusted hop {ip}");
    }
}

/// The config loader on arbitrary YAML (`hookgate check` / `run` / reload).
///
/// Files named by the text are read relative to a directory that does not exist, so only
/// absolute paths reach the disk.
///
/// Invariants: never a panic; a refusal lists at least one problem, each naming a key and
/// saying something; a config that loads has at least one route.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::parse_in(text, Path::new("/nonexistent/hookgate-fuzz")) {
        Ok(c) => assert!(!c.routes.is_empty(), "a config without routes loaded"),
        Err(ConfigError::Invalid(problems)) => {
            assert!(!problems.is_empty(), "refused without a problem");
            for p in problems {
                assert!(
                    !p.key.is_empty() && !p.message.is_empty(),
                    "problem without key or message: {p:?}"
                );
            }
        }
        Err(ConfigError::Read { .. }) => panic!("parsing text read a config file"),
    }
}

static SCHEMAS: LazyLock<Option<(schema::Validator, schema::Validator)>> = LazyLock::new(|| {
    let builtin: Value = serde_json::from_str(schema::builtin("mediaconvert")?).ok()?;
    let builtin = schema::compile(&builtin).ok()?;
    let typed = schema::compile(&serde_json::json!({
        "type": "object",
        "required": ["id"],
        "properties": {"id": {"type": "string", "maxLength": 64}, "at": {"format": "date-time"}}
    }))
    .ok()?;
    Some((builtin, typed))
});

/// The payload stage: the body read as JSON in place, the schema chosen by the string at a JSON
/// pointer (`schema.by_field`), and the builtin MediaConvert schema.
///
/// Input: `<JSON pointer>\n<body>`.
///
/// Invariants: never a panic; a body that is not JSON is `NotJson`, anything else passes or
/// lists between one and `MAX_VIOLATIONS` violations, each with a pointer and a bounded message.
pub fn payload(data: &[u8]) {
    let Some((builtin, typed)) = &*SCHEMAS else {
        panic!("the fuzz schemas do not compile");
    };
    let (pointer, body) = split_line(data);
    let pointer = String::from_utf8_lossy(pointer).into_owned();
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let by_field = Schema {
        mode: Mode::Enforce,
        select: Select::ByField {
            pointer,
            schemas: [("order.created".to_string(), typed.clone())].into(),
            default: None,
        },
    };
    let one = Schema {
        mode: Mode::Enforce,
        select: Select::One(builtin.clone()),
    };
    for s in [&by_field, &one] {
        match s.check(body) {
            Ok(()) => assert!(json.is_some()),
            Err(schema::Failure::NotJson) => assert!(json.is_none()),
            Err(schema::Failure::Invalid(v)) => {
                assert!(json.is_some());
                assert!(!v.is_empty() && v.len() <= schema::MAX_VIOLATIONS);
                for v in v.iter() {
                    assert!(!v.message.is_empty() && v.message.len() <= 256, "{v:?}");
                    assert!(v.pointer.len() <= 256, "{v:?}");
                }
            }
        }
    }
}

/// The dedup key (`routes[].dedup.key`) of a request: the template parsed, then rendered over
/// arbitrary headers and an arbitrary (JSON or not) body.
///
/// Input: `<template>\n<headers as in verify>\n\n<body>`; an empty template line means no
/// template, and the scheme's delivery id (the `x-delivery` header here) is the key.
///
/// Invariants: never a panic; every key is 1 to 200 visible ASCII bytes, so it fits a header
/// value and the store; the same request gives the same key; a template that cannot be filled
/// falls back to the body's SHA-256.
pub fn dedup_key(data: &[u8]) {
    use sha2::{Digest, Sha256};

    let (template, headers, body) = split_request(data);
    let Ok(template) = std::str::from_utf8(template) else {
        return;
    };
    let template = if template.is_empty() {
        None
    } else {
        match crate::dedup::KeyTemplate::parse(template) {
            Ok(t) => Some(t),
            Err(e) => {
                assert!(!e.is_empty());
                return;
            }
        }
    };
    let verified = crate::verify::Verified {
        key_id: "k".into(),
        delivery_id: headers
            .get("x-delivery")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        challenge: None,
    };
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let (key, fallback) = crate::dedup::key(template.as_ref(), &verified, &headers, body, || {
        json.as_ref()
    });
    assert!(!key.is_empty() && key.len() <= 200, "key {key:?}");
    assert!(
        key.bytes().all(|b| (0x21..=0x7e).contains(&b)),
        "key {key:?} cannot be a header value"
    );
    assert!(HeaderValue::from_str(&key).is_ok());
    let again = crate::dedup::key(template.as_ref(), &verified, &headers, body, || {
        json.as_ref()
    });
    assert_eq!((key.as_str(), fallback), (again.0.as_str(), again.1));
    if fallback {
        assert_eq!(key, hex::encode(Sha256::digest(body)));
    }
}
