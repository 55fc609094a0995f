//! Conformance: every case of every file in `tests/vectors/` gives its expected verdict, with
//! the clock at the case's `now` and the window from the file's `tolerance_seconds` (the route
//! default, 5 minutes, where the file gives none).
//!
//! Verdicts map to errors as: `valid` -> Ok; `invalid-*` -> Mismatch; `expired-timestamp` ->
//! TimestampExpired; `future-timestamp` -> TimestampFuture; `missing-header` and Linear's
//! `missing-timestamp` -> MissingHeader; `malformed-header` -> MalformedHeader. Zoom's
//! `expected_challenge_response` must equal the answer hookgate gives.
//!
//! The test fails if a vector file, or any case in one, is not run.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use hookgate::secret::Secret;
use hookgate::verify::{Input, Keys, Scheme, Verifier, VerifyError};
use serde_json::Value;

/// Every vector file and its number of cases.
const FILES: &[(&str, usize)] = &[
    ("github.json", 13),
    ("gitlab.json", 11),
    ("linear.json", 14),
    ("mailgun.json", 14),
    ("mediaconvert.json", 21),
    ("paddle.json", 19),
    ("sendgrid.json", 17),
    ("shopify.json", 11),
    ("slack.json", 19),
    ("standard_webhooks.json", 37),
    ("stripe.json", 21),
    ("svix.json", 30),
    ("twilio.json", 13),
    ("zoom.json", 13),
];
const TOTAL: usize = 253;

fn expected_result(verdict: &str) -> Option<Result<(), VerifyError>> {
    Some(match verdict {
        "valid" => Ok(()),
        "invalid-tampered-body" | "invalid-wrong-secret" | "invalid-signature" => {
            Err(VerifyError::Mismatch)
        }
        "expired-timestamp" => Err(VerifyError::TimestampExpired),
        "future-timestamp" => Err(VerifyError::TimestampFuture),
        "missing-header" | "missing-timestamp" => Err(VerifyError::MissingHeader),
        "malformed-header" => Err(VerifyError::MalformedHeader),
        _ => return None,
    })
}

fn str_field<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v.get(name).and_then(Value::as_str)
}

/// The route's verifier for one case: its secret (id `primary`), additional secrets
/// (`additional-N`) and public key (`public-key`).
fn verifier(scheme: &Scheme, case: &Value, tolerance: Duration) -> Result<Verifier, String> {
    let mut keys = Keys::default();
    if let Some(s) = str_field(case, "secret") {
        scheme.add_secret(&mut keys, Secret::new("primary", s.as_bytes().to_vec()))?;
    }
    for (i, s) in case
        .get("additional_secrets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let s = s.as_str().ok_or("additional secret is not a string")?;
        let id = format!("additional-{i}");
        scheme.add_secret(&mut keys, Secret::new(id, s.as_bytes().to_vec()))?;
    }
    if let Some(k) = str_field(case, "public_key") {
        scheme.add_public_key(&mut keys, Secret::new("public-key", k.as_bytes().to_vec()))?;
    }
    Ok(Verifier::new(scheme.clone(), keys).with_tolerance(tolerance))
}

/// Runs one case; `Err` describes how it failed.
fn run_case(scheme: &Scheme, tolerance: Duration, case: &Value) -> Result<(), String> {
    let verdict = str_field(case, "expected").ok_or("no expected verdict")?;
    let want = expected_result(verdict).ok_or_else(|| format!("unknown verdict {verdict}"))?;
    let verifier = verifier(scheme, case, tolerance)?;
    let mut headers = http::HeaderMap::new();
    for (name, value) in case
        .get("headers")
        .and_then(Value::as_object)
        .ok_or("no headers")?
    {
        let value = value.as_str().ok_or("header value is not a string")?;
        headers.append(
            http::HeaderName::from_bytes(name.as_bytes()).map_err(|e| e.to_string())?,
            http::HeaderValue::from_str(value).map_err(|e| e.to_string())?,
        );
    }
    let body = base64::engine::general_purpose::STANDARD
        .decode(str_field(case, "body_b64").ok_or("no body_b64")?)
        .map_err(|e| e.to_string())?;
    let now = case.get("now").and_then(Value::as_u64).ok_or("no now")?;
    let got = verifier.verify(&Input {
        headers: &headers,
        body: &body,
        now,
        url: str_field(case, "url"),
    });
    match (&got, &want) {
        (Ok(verified), Ok(())) => {
            let expected_answer = case.get("expected_challenge_response");
            let answer = verified
                .challenge
                .as_deref()
                .map(serde_json::from_str::<Value>)
                .transpose()
                .map_err(|e| format!("challenge answer is not JSON: {e}"))?;
            if answer.as_ref() != expected_answer {
                return Err(format!(
                    "challenge answer {answer:?}, expected {expected_answer:?}"
                ));
            }
            Ok(())
        }
        (Err(g), Err(w)) if g == w => Ok(()),
        _ => Err(format!("expected {verdict} ({want:?}), got {got:?}")),
    }
}

#[test]
fn every_vector_gives_its_expected_verdict() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .expect("tests/vectors")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(".json"))
        .collect();
    on_disk.sort();
    let listed: Vec<String> = FILES.iter().map(|(f, _)| f.to_string()).collect();
    assert_eq!(
        on_disk, listed,
        "vector files on disk vs. files this test runs"
    );

    let mut ran: BTreeMap<&str, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for (file, count) in FILES {
        let text = std::fs::read_to_string(dir.join(file)).expect("read vector file");
        let doc: Value = serde_json::from_str(&text).expect("vector file is JSON");
        let name = str_field(&doc, "scheme").expect("file names its scheme");
        let scheme = Scheme::builtin(&name.replace('_', "-"))
            .unwrap_or_else(|| panic!("{file}: no scheme named {name}"));
        let tolerance = doc
            .get("tolerance_seconds")
            .and_then(Value::as_u64)
            .map_or(Duration::from_secs(300), Duration::from_secs);
        let cases = doc["cases"].as_array().expect("cases");
        assert_eq!(cases.len(), *count, "{file}: number of cases");
        for case in cases {
            let id = str_field(case, "id").unwrap_or("?");
            if let Err(e) = run_case(&scheme, tolerance, case) {
                failures.push(format!("{file} {id}: {e}"));
            }
            *ran.entry(scheme.name()).or_default() += 1;
        }
        assert_eq!(ran[scheme.name()], *count, "{file}: cases run");
    }
    for (scheme, n) in &ran {
        println!("{scheme:>18}: {n} cases");
    }
    let total: usize = ran.values().sum();
    println!("{:>18}: {total} cases", "total");
    assert!(
        failures.is_empty(),
        "{} of {total} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(total, TOTAL, "cases run in all");
}
