//! `hookgate doctor`: the signature doctor for a person wiring up a provider. Given the route's
//! scheme and keys and a request as hookgate received it, it verifies the request and, when that
//! fails, says in words what was checked, what matched and what to change. With `--event ID` it
//! explains the diagnosis a running gateway recorded for a journal event: the journal keeps
//! signature headers redacted, so the examination cannot be run again here.

use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use super::remote::{call, RemoteError};
use super::sign::{scheme, SignError};
use super::{DoctorArgs, SchemeArgs};
use crate::clock::unix_now;
use crate::doctor::{Check, Diagnosis, Doctor, Report, Step};
use crate::secret::Secret;
use crate::verify::{Input, Keys, Scheme, Verifier};

#[derive(Debug, thiserror::Error)]
pub enum DoctorError {
    #[error(transparent)]
    Scheme(#[from] SignError),
    #[error("--header `{0}`: write it as 'Name: value'")]
    Header(String),
    #[error("--{0}: {1}")]
    BadOption(&'static str, String),
    #[error("cannot read {0}: {1}")]
    Read(String, std::io::Error),
    #[error("--{0} is required")]
    Missing(&'static str),
    #[error("no event `{0}` in the gateway's journal (unknown id, dropped by journal.max_events or journal.max_age, or the journal is off): `hookgate events list` shows the ids")]
    NoEvent(String),
    #[error(transparent)]
    Remote(RemoteError),
    #[error("cannot start the async runtime: {0}")]
    Runtime(String),
}

impl DoctorError {
    /// 2 for what the user typed wrong, 1 for what went wrong at run time (the gateway cannot
    /// be reached, refuses the token, or has no such event); 1 also means "does not verify".
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::NoEvent(_) | Self::Runtime(_) => 1,
            Self::Remote(e) => e.exit_code(),
            _ => 2,
        }
    }
}

/// The analysis in words, and whether the request verifies.
pub fn run(args: &DoctorArgs) -> Result<(String, bool), DoctorError> {
    let scheme_name = args.scheme.clone().ok_or(DoctorError::Missing("scheme"))?;
    let body_file = args
        .body_file
        .as_deref()
        .ok_or(DoctorError::Missing("BODY_FILE"))?;
    let scheme = scheme(&SchemeArgs {
        route: None,
        config: None,
        scheme: Some(scheme_name),
        secret: None,
        secret_file: None,
        private_key_file: None,
        timestamp: None,
        header: args.signature_header.clone(),
        prefix: args.prefix.clone(),
        encoding: args.encoding.clone(),
        algorithm: args.algorithm.clone(),
        signed: args.signed.clone(),
        timestamp_header: args.timestamp_header.clone(),
    })
    .map_err(|e| match e {
        SignError::Missing { scheme: "hmac", .. } => {
            DoctorError::BadOption("signature-header", "scheme hmac needs it".into())
        }
        other => DoctorError::Scheme(other),
    })?;
    let keys = keys(&scheme, args)?;
    let retired = retired(&scheme, &args.retired_secrets)?;
    let headers = headers(&args.headers)?;
    let body = read(body_file)?;
    let tolerance = humantime::parse_duration(&args.tolerance)
        .map_err(|e| DoctorError::BadOption("tolerance", e.to_string()))?;
    let now = args.now.unwrap_or_else(unix_now);
    let mut verifier = Verifier::new(scheme.clone(), keys).with_tolerance(tolerance);
    if let Some(url) = &args.url {
        verifier = verifier.with_public_url(url.clone());
    }
    let input = Input {
        headers: &headers,
        body: &body,
        now,
        url: args.url.as_deref(),
    };

    let mut out = format!(
        "scheme {}, {} key(s), {} retired secret(s), body {} bytes, {} header(s), at unix time {now} (tolerance {})\n",
        scheme.name(),
        verifier.keys().len(),
        retired.len(),
        body.len(),
        headers.len(),
        humantime::format_duration(tolerance),
    );
    let error = match verifier.verify(&input) {
        Ok(v) => {
            out.push_str(&format!(
                "verification: passed, with key `{}`: hookgate forwards this request\n",
                v.key_id
            ));
            return Ok((out, true));
        }
        Err(e) => e,
    };
    out.push_str(&format!(
        "verification: failed ({}: {error}); the sender gets 401 {{\"error\":\"invalid signature\"}}\n",
        error.reason()
    ));
    let report = Doctor::new(&verifier, retired).examine(&input, error);
    out.push_str(&words(&report));
    Ok((out, false))
}

/// `--event ID`: the journal event's recorded diagnosis in words, and whether the event passed
/// verification (`false` for a signature failure, as for a request that does not verify).
pub async fn event(args: &DoctorArgs, id: &str) -> Result<(String, bool), DoctorError> {
    let path = format!(
        "/api/events/{}",
        form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
    );
    let event = call(
        &args.admin.admin,
        args.admin.token(),
        http::Method::GET,
        &path,
        None,
    )
    .await
    .map_err(|e| match e {
        // A gateway without the events API answers 404 too, in other words.
        RemoteError::Api(404, msg) if msg == "no such event" => {
            DoctorError::NoEvent(id.to_string())
        }
        e => DoctorError::Remote(e),
    })?;
    Ok(event_words(&event))
}

/// What a journal event says about its signature, for a person.
fn event_words(e: &Value) -> (String, bool) {
    let text = |v: &Value| match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut out = format!(
        "event {} received {} on route {} (provider {}): {} {}\n",
        text(&e["id"]),
        text(&e["received_at"]),
        text(&e["route"]),
        text(&e["provider"]),
        text(&e["method"]),
        text(&e["path"]),
    );
    out.push_str(&format!(
        "outcome {}, reason {}, status {}\n",
        text(&e["outcome"]),
        text(&e["reason"]),
        text(&e["status"]),
    ));
    let Some(recorded) = e["diagnosis"].as_str() else {
        let why = if e["key_id"].is_string() {
            format!(
                "it passed verification with key `{}`: there is nothing to diagnose",
                text(&e["key_id"])
            )
        } else {
            "it was not refused for its signature (the signature doctor examines only verification failures): there is nothing to diagnose".to_string()
        };
        out.push_str(&format!("\nno diagnosis: {why}\n"));
        return (out, true);
    };
    out.push_str("verification: failed; the sender got 401 {\"error\":\"invalid signature\"}\n");
    let Ok(diagnosis) = recorded.parse::<Diagnosis>() else {
        out.push_str(&format!(
            "\ndiagnosis: {recorded} (not one this version of hookgate knows: compare the gateway's version with this one)\n"
        ));
        // The gateway's own words for it, when it gives them.
        if let Some(advice) = e["diagnosis_advice"].as_str() {
            out.push_str(&format!("what to change: {advice}\n"));
        }
        return (out, false);
    };
    out.push_str(&recorded_words(&diagnosis));
    (out, false)
}

/// The checks a recorded diagnosis implies (they run in a fixed order and stop at the first
/// match), the diagnosis, and what to change.
fn recorded_words(diagnosis: &Diagnosis) -> String {
    let mut out = String::new();
    if *diagnosis == Diagnosis::Skipped {
        out.push_str("\nnot examined: the route's diagnosis budget (verify.diagnose_per_minute) was spent, the doctor is off for the route (0), or its queue was full\n");
    } else {
        let found = diagnosis.found_by();
        out.push_str("\nchecked by the gateway, in order (a check that does not apply to the route, such as retired secrets it has none of, is passed over):\n");
        for check in Check::ORDER {
            let matched = Some(check) == found;
            let outcome = if matched { "MATCH" } else { "no match" };
            out.push_str(&format!("  - {}: {outcome}\n", check.describe()));
            if matched {
                break;
            }
        }
    }
    out.push_str(&format!(
        "\ndiagnosis: {diagnosis}\nwhat to change: {}\n",
        diagnosis.advice()
    ));
    out
}

/// The report for a person.
fn words(report: &Report) -> String {
    let mut out = String::from("\nchecked, in order:\n");
    for step in &report.steps {
        out.push_str(&format!(
            "  - {}: {}\n",
            step.check.describe(),
            outcome(step)
        ));
    }
    out.push_str(&format!(
        "  {} key check(s) in all\n\ndiagnosis: {}\n",
        report.key_checks, report.diagnosis
    ));
    if let Some(detail) = &report.detail {
        out.push_str(&format!("  {detail}\n"));
    }
    out.push_str(&format!("what to change: {}\n", report.diagnosis.advice()));
    out
}

fn outcome(step: &Step) -> String {
    let tried = |n: usize, one: &str, many: &str| {
        if n == 1 {
            format!("1 {one}")
        } else {
            format!("{n} {many}")
        }
    };
    match (step.check, step.candidates, step.matched) {
        (_, _, true) => "MATCH".into(),
        (Check::OtherSchemes, _, false) => "none present".into(),
        (Check::AsReceived, _, false) => "no match with the route's keys".into(),
        (Check::SignatureEncoding, 0, false) => {
            "nothing to rewrite (already as defined, or nothing decodes to a signature)".into()
        }
        (Check::BodyAlterations, 0, false) => {
            "not tried (the signature cannot be read, or the scheme does not sign the body)".into()
        }
        (Check::BodyAlterations, n, false) => {
            format!("no match ({} tried)", tried(n, "body", "bodies"))
        }
        (_, n, false) => format!("no match ({} tried)", tried(n, "candidate", "candidates")),
    }
}

fn read(path: &std::path::Path) -> Result<Vec<u8>, DoctorError> {
    std::fs::read(path).map_err(|e| DoctorError::Read(path.display().to_string(), e))
}

/// The route's key: `--secret`, `--secret-file` or `--public-key`, decoded as config does.
fn keys(scheme: &Scheme, args: &DoctorArgs) -> Result<Keys, DoctorError> {
    let mut keys = Keys::default();
    let secret = match (&args.secret, &args.secret_file) {
        (Some(s), _) => Some(s.as_bytes().to_vec()),
        (None, Some(p)) => {
            let mut b = read(p)?;
            while b.last().is_some_and(|c| *c == b'\n' || *c == b'\r') {
                b.pop();
            }
            Some(b)
        }
        (None, None) => None,
    };
    if let Some(s) = secret {
        scheme
            .add_secret(&mut keys, Secret::new("secret", s))
            .map_err(|e| DoctorError::BadOption("secret", e))?;
    }
    if let Some(k) = &args.public_key {
        scheme
            .add_public_key(&mut keys, Secret::new("public-key", k.as_bytes().to_vec()))
            .map_err(|e| DoctorError::BadOption("public-key", e))?;
    }
    Ok(keys)
}

/// `--retired-secret ID=SECRET` (a bare `SECRET` is named `retired-N`).
fn retired(scheme: &Scheme, given: &[String]) -> Result<Keys, DoctorError> {
    let mut keys = Keys::default();
    for (i, r) in given.iter().enumerate() {
        let (id, secret) = match r.split_once('=') {
            Some((id, s)) if !id.is_empty() && !id.contains(['_', ' ']) => {
                (id.to_string(), s.to_string())
            }
            _ => (format!("retired-{}", i + 1), r.clone()),
        };
        scheme
            .add_secret(&mut keys, Secret::new(id, secret.into_bytes()))
            .map_err(|e| DoctorError::BadOption("retired-secret", e))?;
    }
    Ok(keys)
}

/// `Name: value` headers, as received (a name may repeat).
fn headers(given: &[String]) -> Result<HeaderMap, DoctorError> {
    let mut headers = HeaderMap::new();
    for h in given {
        let bad = || DoctorError::Header(h.clone());
        let (name, value) = h.split_once(':').ok_or_else(bad)?;
        let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| bad())?;
        let value = HeaderValue::from_str(value.trim_start()).map_err(|_| bad())?;
        headers.append(name, value);
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_as_curl_writes_them() {
        let h = headers(&["Stripe-Signature: t=1,v1=ab".into(), "X-A:b".into()]).unwrap();
        assert_eq!(h["stripe-signature"], "t=1,v1=ab");
        assert_eq!(h["x-a"], "b");
        assert!(matches!(
            headers(&["no colon".into()]),
            Err(DoctorError::Header(_))
        ));
        assert!(matches!(
            headers(&["bad name: x".into()]),
            Err(DoctorError::Header(_))
        ));
    }

    #[test]
    fn an_event_in_words() {
        let failed = serde_json::json!({
            "id": "e1", "route": "stripe", "provider": "stripe", "method": "POST",
            "path": "/hooks/stripe", "outcome": "rejected", "reason": "mismatch", "status": 401,
            "diagnosis": "body_altered:trailing_newline_added", "key_id": null,
        });
        let (out, verified) = event_words(&failed);
        assert!(!verified);
        assert!(
            out.contains("diagnosis: body_altered:trailing_newline_added"),
            "{out}"
        );
        assert!(
            out.contains("the body with known alterations undone: MATCH"),
            "{out}"
        );
        assert!(out.contains("the retired secrets (verify.retired_secrets): no match"));
        assert!(out.contains("a newline was added to the body"), "{out}");

        let mut skipped = failed.clone();
        skipped["diagnosis"] = "skipped".into();
        let (out, _) = event_words(&skipped);
        assert!(out.contains("not examined"), "{out}");
        assert!(!out.contains("MATCH"), "{out}");

        let mut unknown = failed.clone();
        unknown["diagnosis"] = "unknown".into();
        let (out, _) = event_words(&unknown);
        assert_eq!(out.matches("no match").count(), Check::ORDER.len(), "{out}");

        let mut forwarded = failed;
        forwarded["diagnosis"] = Value::Null;
        forwarded["key_id"] = "current".into();
        let (out, verified) = event_words(&forwarded);
        assert!(verified);
        assert!(out.contains("no diagnosis: it passed verification with key `current`"));
    }

    #[test]
    fn retired_ids() {
        let k = retired(&Scheme::GitHub, &["old=s1".into(), "s2".into()]).unwrap();
        let ids: Vec<&str> = k.ids().collect();
        assert_eq!(ids, ["old", "retired-2"]);
        // A Stripe secret's `whsec_` is not an id.
        let k = retired(&Scheme::Stripe, &["whsec_a=b".into()]).unwrap();
        assert_eq!(k.ids().collect::<Vec<_>>(), ["retired-1"]);
    }
}
