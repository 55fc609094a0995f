//! Every diagnosis from a real transformation of a correctly signed request.

use std::time::Duration;

use http::HeaderMap;

use super::*;
use crate::verify::{SignInput, SigningKey};

const NOW: u64 = 1_700_000_000;
const EVENT: &[u8] = "{\"id\":\"evt_1\",\"object\":\"event\",\"data\":{\"note\":\"café ☃\",\"url\":\"https://example.com/a/b\"},\"n\":[1,2.5,-3e2,true,null]}".as_bytes();
const STANDARD_SECRET: &str = "whsec_QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZX";

/// A route's verifier for `scheme` with `secrets` (as configured), and its doctor with
/// `retired`.
fn route(scheme: Scheme, secrets: &[(&str, &str)], retired: &[(&str, &str)]) -> (Verifier, Doctor) {
    let keys = |list: &[(&str, &str)]| {
        let mut keys = Keys::default();
        for (id, s) in list {
            scheme
                .add_secret(&mut keys, Secret::new(*id, s.as_bytes().to_vec()))
                .unwrap();
        }
        keys
    };
    let verifier =
        Verifier::new(scheme.clone(), keys(secrets)).with_tolerance(Duration::from_secs(300));
    let doctor = Doctor::new(&verifier, keys(retired));
    (verifier, doctor)
}

/// Headers and body a sender signing with `key` (as the provider shows it) at `at` sends.
fn sign(scheme: &Scheme, key: &[u8], body: &[u8], at: u64) -> (HeaderMap, Vec<u8>) {
    let signed = scheme
        .sign(
            &SigningKey::Secret(key.to_vec()),
            &SignInput {
                body,
                now: at,
                url: Some("https://hooks.example.com/t"),
                id: "msg_1",
            },
        )
        .unwrap();
    let mut h = HeaderMap::new();
    for (k, v) in &signed.headers {
        h.append(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    (h, signed.body)
}

/// Verifies (it must fail), then examines.
fn examine(v: &Verifier, d: &Doctor, headers: &HeaderMap, body: &[u8]) -> Report {
    let input = Input {
        headers,
        body,
        now: NOW,
        url: Some("https://hooks.example.com/t"),
    };
    let error = v
        .verify(&input)
        .expect_err("the request must fail verification");
    let report = d.examine(&input, error);
    assert!(
        report.key_checks <= MAX_KEY_CHECKS,
        "{} checks",
        report.key_checks
    );
    report
}

fn diagnose(v: &Verifier, d: &Doctor, headers: &HeaderMap, body: &[u8]) -> String {
    examine(v, d, headers, body).diagnosis.to_string()
}

fn header(h: &mut HeaderMap, name: &'static str, value: &str) {
    h.insert(name, value.parse().unwrap());
}

#[test]
fn wrong_scheme() {
    let (v, d) = route(Scheme::Stripe, &[("k", "whsec_abc")], &[]);
    let (h, b) = sign(&Scheme::GitHub, b"gh-secret", EVENT, NOW);
    assert_eq!(diagnose(&v, &d, &h, &b), "wrong_scheme:github");
    let (v, d) = route(Scheme::StandardWebhooks, &[("k", STANDARD_SECRET)], &[]);
    let (h, b) = sign(&Scheme::Svix, STANDARD_SECRET.as_bytes(), EVENT, NOW);
    assert_eq!(diagnose(&v, &d, &h, &b), "wrong_scheme:svix");
    // Svix reads webhook-* too: Standard Webhooks headers are its own.
    let (v, d) = route(Scheme::Svix, &[("k", STANDARD_SECRET)], &[]);
    let (h, b) = sign(
        &Scheme::StandardWebhooks,
        b"whsec_QUFBQUFBQUFBQUFB",
        EVENT,
        NOW,
    );
    assert_eq!(diagnose(&v, &d, &h, &b), "unknown");
    // The route's own header present: not a wrong scheme, whatever else is there.
    let (v, d) = route(Scheme::GitHub, &[("k", "s")], &[]);
    let (mut h, b) = sign(&Scheme::GitHub, b"other", EVENT, NOW);
    header(&mut h, "stripe-signature", "t=1,v1=00");
    assert_eq!(diagnose(&v, &d, &h, &b), "unknown");
}

#[test]
fn clock_skew_either_way() {
    let (v, d) = route(Scheme::Stripe, &[("k", "whsec_abc")], &[]);
    let (h, b) = sign(&Scheme::Stripe, b"whsec_abc", EVENT, NOW - 400);
    assert_eq!(diagnose(&v, &d, &h, &b), "clock_skew:-400");
    let (h, b) = sign(&Scheme::Stripe, b"whsec_abc", EVENT, NOW + 3600);
    let r = examine(&v, &d, &h, &b);
    assert_eq!(r.diagnosis, Diagnosis::ClockSkew(3600));
    assert_eq!(r.diagnosis.kind(), "clock_skew");
    // Linear: milliseconds inside the body.
    let (v, d) = route(Scheme::Linear, &[("k", "lin")], &[]);
    let (h, b) = sign(
        &Scheme::Linear,
        b"lin",
        br#"{"action":"create"}"#,
        NOW - 400,
    );
    assert_eq!(diagnose(&v, &d, &h, &b), "clock_skew:-400");
    // Old and wrongly signed: not a clock problem.
    let (v, d) = route(Scheme::Slack, &[("k", "s")], &[]);
    let (h, b) = sign(&Scheme::Slack, b"not-s", EVENT, NOW - 400);
    assert_eq!(diagnose(&v, &d, &h, &b), "unknown");
}

#[test]
fn retired_secret() {
    let (v, d) = route(
        Scheme::GitHub,
        &[("current", "new-secret")],
        &[("2024-q1", "older"), ("2024-q2", "old-secret")],
    );
    let (h, b) = sign(&Scheme::GitHub, b"old-secret", EVENT, NOW);
    let r = examine(&v, &d, &h, &b);
    assert_eq!(r.diagnosis.to_string(), "retired_secret:2024-q2");
    assert_eq!(r.diagnosis.kind(), "retired_secret");
    // Retired Standard Webhooks secrets are decoded like current ones.
    let (v, d) = route(
        Scheme::StandardWebhooks,
        &[("now", "whsec_QUFBQUFBQUFBQUFB")],
        &[("then", STANDARD_SECRET)],
    );
    let (h, b) = sign(
        &Scheme::StandardWebhooks,
        STANDARD_SECRET.as_bytes(),
        EVENT,
        NOW,
    );
    assert_eq!(diagnose(&v, &d, &h, &b), "retired_secret:then");
}

#[test]
fn secret_encoding() {
    // Standard Webhooks keyed with the secret's text, without its base64 layer.
    let (v, d) = route(Scheme::StandardWebhooks, &[("k", STANDARD_SECRET)], &[]);
    for key in [STANDARD_SECRET, &STANDARD_SECRET[6..]] {
        // What a sender that skips the decoding sends: the MAC keyed with the text.
        let (h, b) = sign_standard_with_raw_key(key.as_bytes(), EVENT, NOW);
        let r = examine(&v, &d, &h, &b);
        assert_eq!(r.diagnosis, Diagnosis::SecretEncoding, "{key}");
        assert!(
            r.detail.as_deref().unwrap_or("").contains("secret `k`"),
            "{r:?}"
        );
    }
    // Stripe keyed with the decoded secret; GitHub with the hex-decoded one.
    let (v, d) = route(Scheme::Stripe, &[("k", "whsec_QUJDREVG")], &[]);
    let (h, b) = sign(&Scheme::Stripe, b"ABCDEF", EVENT, NOW);
    assert_eq!(diagnose(&v, &d, &h, &b), "secret_encoding");
    let (v, d) = route(Scheme::GitHub, &[("k", "00ff10")], &[]);
    let (h, b) = sign(&Scheme::GitHub, &[0x00, 0xff, 0x10], EVENT, NOW);
    assert_eq!(diagnose(&v, &d, &h, &b), "secret_encoding");
}

/// A Standard Webhooks request whose v1 HMAC is keyed with `key` as given (not decoded).
fn sign_standard_with_raw_key(key: &[u8], body: &[u8], at: u64) -> (HeaderMap, Vec<u8>) {
    use crate::verify::{Algorithm, Encoding};
    let ts = at.to_string();
    let mac = Algorithm::Sha256.sign(key, &[b"msg_1", b".", ts.as_bytes(), b".", body]);
    let mut h = HeaderMap::new();
    header(&mut h, "webhook-id", "msg_1");
    header(&mut h, "webhook-timestamp", &ts);
    header(
        &mut h,
        "webhook-signature",
        &format!("v1,{}", Encoding::Base64.encode(&mac)),
    );
    (h, body.to_vec())
}

#[test]
fn signature_encoding() {
    let (v, d) = route(Scheme::GitHub, &[("k", "s")], &[]);
    let (h, b) = sign(&Scheme::GitHub, b"s", EVENT, NOW);
    let sig = h["x-hub-signature-256"].to_str().unwrap().to_string();
    for bad in [
        sig.to_uppercase(),
        sig.trim_start_matches("sha256=").to_string(),
    ] {
        let mut h = h.clone();
        header(&mut h, "x-hub-signature-256", &bad);
        let r = examine(&v, &d, &h, &b);
        assert_eq!(r.diagnosis, Diagnosis::SignatureEncoding, "{bad}");
        assert!(r.detail.is_some());
    }
    // A generic hmac route set to hex, a sender sending base64.
    let mut spec = crate::verify::HmacSpec::sha256_hex_prefixed("x-sig");
    spec.prefix = String::new();
    let (v, d) = route(Scheme::Hmac(spec.clone()), &[("k", "s")], &[]);
    spec.encoding = crate::verify::Encoding::Base64;
    let (h, b) = sign(&Scheme::Hmac(spec), b"s", EVENT, NOW);
    let r = examine(&v, &d, &h, &b);
    assert_eq!(r.diagnosis, Diagnosis::SignatureEncoding);
    assert!(r.detail.unwrap().contains("base64 where hex is defined"));
    // Stripe with a space after the comma, as some hand-written senders do.
    let (v, d) = route(Scheme::Stripe, &[("k", "whsec_abc")], &[]);
    let (mut h, b) = sign(&Scheme::Stripe, b"whsec_abc", EVENT, NOW);
    let spaced = h["stripe-signature"].to_str().unwrap().replace(',', ", ");
    header(&mut h, "stripe-signature", &spaced);
    assert_eq!(diagnose(&v, &d, &h, &b), "signature_encoding");
}

#[test]
fn body_alterations() {
    let (v, d) = route(Scheme::Stripe, &[("k", "whsec_abc")], &[]);
    let cases: [(&[u8], Vec<u8>, &str); 6] = [
        (b"a=1&b=2", b"a=1&b=2\n".to_vec(), "trailing_newline_added"),
        (
            b"a=1&b=2\n",
            b"a=1&b=2".to_vec(),
            "trailing_newline_removed",
        ),
        (b"l1\r\nl2\r\n", b"l1\nl2\n".to_vec(), "crlf_to_lf"),
        (b"l1\nl2", b"l1\r\nl2".to_vec(), "lf_to_crlf"),
        (EVENT, python_indent_2(EVENT), "json_reserialized"),
        (
            "caf\u{e9}".as_bytes(),
            b"caf\xe9".to_vec(),
            "charset_transcoded",
        ),
    ];
    for (signed, received, how) in cases {
        let (h, _) = sign(&Scheme::Stripe, b"whsec_abc", signed, NOW);
        let r = examine(&v, &d, &h, &received);
        assert_eq!(
            r.diagnosis.to_string(),
            format!("body_altered:{how}"),
            "{r:?}"
        );
        assert_eq!(r.diagnosis.kind(), "body_altered");
    }
    // Latin-1 signed, UTF-8 received.
    let (h, _) = sign(&Scheme::GitHub, b"s", b"caf\xe9", NOW);
    let (v, d) = route(Scheme::GitHub, &[("k", "s")], &[]);
    assert_eq!(
        diagnose(&v, &d, &h, "caf\u{e9}".as_bytes()),
        "body_altered:charset_transcoded"
    );
}

/// `json.dumps(json.loads(body), indent=2)`: 2-space indent, non-ASCII as `\u` escapes.
fn python_indent_2(body: &[u8]) -> Vec<u8> {
    json::reprint(
        body,
        json::Style {
            layout: json::Layout::Pretty(2),
            escapes: json::Escapes::Ascii,
        },
    )
    .unwrap()
}

#[test]
fn unknown_for_a_wrong_secret_or_random_bytes() {
    let (v, d) = route(
        Scheme::Stripe,
        &[("k", "whsec_abc")],
        &[("old", "whsec_old")],
    );
    let (h, b) = sign(&Scheme::Stripe, b"whsec_other", EVENT, NOW);
    let r = examine(&v, &d, &h, &b);
    assert_eq!(r.diagnosis, Diagnosis::Unknown);
    assert!(r.steps.iter().all(|s| !s.matched));
    let mut h = HeaderMap::new();
    header(&mut h, "stripe-signature", "t=1700000000,v1=4f2a");
    let r = examine(&v, &d, &h, b"\x93\x07\xfe random");
    assert_eq!(r.diagnosis, Diagnosis::Unknown);
    assert_eq!(r.diagnosis.to_string(), "unknown");
}

#[test]
fn every_kind_and_its_words() {
    let all = [
        Diagnosis::WrongScheme("github"),
        Diagnosis::BodyAltered(Alteration::CrlfToLf),
        Diagnosis::SecretEncoding,
        Diagnosis::SignatureEncoding,
        Diagnosis::RetiredSecret("old".into()),
        Diagnosis::ClockSkew(-400),
        Diagnosis::Unknown,
        Diagnosis::Skipped,
    ];
    for (d, kind) in all.iter().zip(Diagnosis::KINDS) {
        assert_eq!(d.kind(), kind);
        assert!(d.to_string().starts_with(kind));
        assert!(!d.advice().is_empty());
    }
    assert!(Diagnosis::ClockSkew(-400)
        .advice()
        .contains("400 s in the past"));
}

/// A journal event's diagnosis reads back as written, with the check that found it.
#[test]
fn diagnoses_read_back_from_their_text() {
    let mut all = vec![
        Diagnosis::WrongScheme("github"),
        Diagnosis::SecretEncoding,
        Diagnosis::SignatureEncoding,
        Diagnosis::RetiredSecret("2024-q4".into()),
        Diagnosis::ClockSkew(-400),
        Diagnosis::ClockSkew(12),
        Diagnosis::Unknown,
        Diagnosis::Skipped,
    ];
    all.extend(Alteration::ALL.map(Diagnosis::BodyAltered));
    for d in all {
        assert_eq!(d.to_string().parse::<Diagnosis>(), Ok(d.clone()), "{d}");
        if let Some(check) = d.found_by() {
            assert!(Check::ORDER.contains(&check));
        }
    }
    for bad in [
        "",
        "wrong_scheme:nope",
        "body_altered:rot13",
        "clock_skew:soon",
        "retired_secret:",
        "unknown:1",
        "new_kind",
    ] {
        assert_eq!(bad.parse::<Diagnosis>(), Err(()), "{bad}");
    }
}

/// The worst case: 3 secrets, 3 retired, a JSON body in which every style differs, CRLF and a
/// trailing newline, nothing matching: every candidate is checked, within the bound.
#[test]
fn the_work_is_bounded() {
    let secrets = [
        ("a", "whsec_QUJD"),
        ("b", "00ff"),
        ("c", "whsec_R0hJ"),
        ("d", "sd"),
    ];
    let retired = [("r1", "r1"), ("r2", "r2"), ("r3", "r3")];
    let (v, d) = route(Scheme::Stripe, &secrets, &retired);
    let body = worst_case_body(4096);
    let (h, _) = sign(&Scheme::Stripe, b"whsec_unrelated", &body, NOW);
    let r = examine(&v, &d, &h, &body);
    assert_eq!(r.diagnosis, Diagnosis::Unknown);
    let made: usize = r.steps.iter().map(|s| s.candidates).sum();
    // Every alteration applies: 18 bodies, 6 secret forms, 3 retired, the request as received.
    assert_eq!(made, 1 + 3 + 6 + 18, "{r:?}");
    assert_eq!(r.key_checks, 3 + 3 + 6 + 18 * 3, "{r:?}");
    assert!(r.key_checks <= MAX_KEY_CHECKS);
    // An over-long signature header is not examined at all.
    let mut long = h.clone();
    let value = format!(
        "{},v0={}",
        h["stripe-signature"].to_str().unwrap(),
        "0".repeat(600)
    );
    header(&mut long, "stripe-signature", &value);
    let r = examine(&v, &d, &long, &body);
    assert_eq!((r.diagnosis, r.key_checks), (Diagnosis::Unknown, 0));
    // A body too large to re-write is checked as received only.
    let large = worst_case_body(MAX_ALTERED_BODY + 1);
    let (h, _) = sign(&Scheme::Stripe, b"whsec_unrelated", &large, NOW);
    let r = examine(&v, &d, &h, &large);
    assert_eq!(r.key_checks, 3 + 3 + 6, "{r:?}");
    assert!(r.detail.unwrap().contains("larger than 64 KiB"));
}

/// A JSON body of about `size` bytes with Latin-1 letters, slashes, both CRLF and LF line
/// endings and a trailing newline, so that every candidate applies and differs from the others.
pub(crate) fn worst_case_body(size: usize) -> Vec<u8> {
    let mut out = String::from("[\r\n");
    let mut n = 0;
    while out.len() < size {
        if n > 0 {
            out.push_str(if n % 2 == 0 { ",\r\n" } else { ",\n" });
        }
        out.push_str(&format!(
            "  {{\"id\": {n}, \"url\": \"https://ex.com/a/{n}\", \"note\": \"caf\u{e9} \u{fc}ber\"}}"
        ));
        n += 1;
    }
    out.push_str("\r\n]\n");
    out.into_bytes()
}

#[test]
fn a_diagnosis_reads_back_from_its_text() {
    for d in [
        Diagnosis::WrongScheme("github"),
        Diagnosis::BodyAltered(Alteration::JsonReserialized),
        Diagnosis::SecretEncoding,
        Diagnosis::SignatureEncoding,
        Diagnosis::RetiredSecret("old".into()),
        Diagnosis::ClockSkew(-400),
        Diagnosis::Unknown,
        Diagnosis::Skipped,
    ] {
        assert_eq!(d.to_string().parse::<Diagnosis>(), Ok(d.clone()), "{d}");
    }
    assert!("clock_skew:soon".parse::<Diagnosis>().is_err());
    assert!("wrong_scheme:nobody".parse::<Diagnosis>().is_err());
    assert!("unknown:x".parse::<Diagnosis>().is_err());
}
