//! What one examination by the signature doctor costs in the worst case: nothing matches, so
//! every candidate is made and checked. Prints, per scheme and body size, the (candidate, key)
//! pairs checked and the time per examination (median and slowest of the runs).
//!
//! ```text
//! cargo run --release --example doctor_cost -- [RUNS]
//! ```
//! The route has 3 secrets (each with two other forms) and 3 retired secrets; the body is JSON
//! in which every alteration applies and every candidate differs, signed with a secret the
//! route does not have. Bodies over 64 KiB are checked as received only. It only measures.

use std::time::{Duration, Instant};

use hookgate::doctor::{Doctor, MAX_KEY_CHECKS};
use hookgate::secret::Secret;
use hookgate::verify::{Input, Keys, Scheme, SignInput, SigningKey, Verifier};
use http::HeaderMap;

const NOW: u64 = 1_700_000_000;
const URL: &str = "https://hooks.example.com/twilio/sms";

/// About `size` bytes of JSON in which every alteration applies and every candidate differs:
/// Latin-1 letters, slashes, both CRLF and LF line endings, a trailing newline.
fn body(size: usize) -> Vec<u8> {
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

fn route(scheme: &Scheme) -> (Verifier, Keys) {
    let mut keys = Keys::default();
    let mut retired = Keys::default();
    match scheme {
        Scheme::SendGrid => {
            for i in 1..=3u8 {
                let sk = p256::ecdsa::SigningKey::from_slice(&[i; 32]).expect("key");
                let der = p256::pkcs8::EncodePublicKey::to_public_key_der(sk.verifying_key())
                    .expect("der");
                let b64 = base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    der.as_bytes(),
                );
                scheme
                    .add_public_key(&mut keys, Secret::new(format!("k{i}"), b64.into_bytes()))
                    .expect("public key");
            }
        }
        _ => {
            for i in 1..=3 {
                let s = format!("whsec_c2VjcmV0LW51bWJlci0{i}");
                scheme
                    .add_secret(&mut keys, Secret::new(format!("k{i}"), s.into_bytes()))
                    .expect("secret");
                let r = format!("whsec_cmV0aXJlZC0{i}");
                scheme
                    .add_secret(&mut retired, Secret::new(format!("r{i}"), r.into_bytes()))
                    .expect("retired");
            }
        }
    }
    let mut v = Verifier::new(scheme.clone(), keys);
    if matches!(scheme, Scheme::Twilio) {
        v = v.with_public_url(URL);
    }
    (v, retired)
}

fn signed(scheme: &Scheme, body: &[u8]) -> HeaderMap {
    let key = match scheme {
        Scheme::SendGrid => {
            SigningKey::P256(p256::ecdsa::SigningKey::from_slice(&[9; 32]).expect("key"))
        }
        _ => SigningKey::Secret(b"whsec_bm90LXRoZS1yb3V0ZXMtc2VjcmV0".to_vec()),
    };
    let s = scheme
        .sign(
            &key,
            &SignInput {
                body,
                now: NOW,
                url: Some(URL),
                id: "msg_1",
            },
        )
        .expect("sign");
    let mut h = HeaderMap::new();
    for (k, v) in s.headers {
        h.append(
            http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
            v.parse().expect("value"),
        );
    }
    h
}

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("a number of runs"))
        .unwrap_or(200);
    println!("bound: {MAX_KEY_CHECKS} (candidate, key) pairs per failure");
    println!("| scheme | body bytes | candidates | key checks | median us | slowest us |");
    println!("|---|---|---|---|---|---|");
    let cases: &[(Scheme, &[usize])] = &[
        (
            Scheme::Stripe,
            &[1 << 10, 4 << 10, 16 << 10, 63 << 10, 256 << 10, 1 << 20],
        ),
        (Scheme::StandardWebhooks, &[4 << 10]),
        (Scheme::Twilio, &[4 << 10]),
        (Scheme::SendGrid, &[4 << 10]),
    ];
    for (scheme, sizes) in cases {
        let (verifier, retired) = route(scheme);
        let doctor = Doctor::new(&verifier, retired);
        for size in *sizes {
            let body = body(*size);
            let headers = signed(scheme, &body);
            let input = Input {
                headers: &headers,
                body: &body,
                now: NOW,
                url: Some(URL),
            };
            let error = verifier
                .verify(&input)
                .expect_err("signed with another key");
            let n = if *size >= 256 << 10 { runs / 10 } else { runs }.max(3);
            let mut times: Vec<Duration> = Vec::with_capacity(n);
            let mut report = None;
            for _ in 0..n {
                let started = Instant::now();
                let r = doctor.examine(&input, error);
                times.push(started.elapsed());
                report = Some(r);
            }
            times.sort();
            let report = report.expect("ran");
            let candidates: usize = report.steps.iter().map(|s| s.candidates).sum();
            println!(
                "| {} | {} | {} | {} | {} | {} |",
                scheme.name(),
                body.len(),
                candidates,
                report.key_checks,
                times[n / 2].as_micros(),
                times[n - 1].as_micros()
            );
            assert_eq!(report.diagnosis.to_string(), "unknown");
        }
    }
}
