//! The signature doctor on a running gateway: requests signed by the providers' official SDKs
//! (tests/interop/), altered the way senders, frameworks and proxies alter them, each get the
//! same 401 and the diagnosis that explains them in the request's log line and in
//! `hookgate_verify_failures_total{diagnosis}` (the kind only). A burst of forgeries is
//! diagnosed only within the route's budget.
//!
//! The SDKs are installed by `bash tests/interop/setup.sh`; without them the first test fails
//! and says so.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::{json, Value};

/// Compact JSON with non-ASCII and a slash, as a provider signs it.
const BODY: &str = "{\"id\":\"evt_doctor\",\"object\":\"event\",\"type\":\"payment_intent.succeeded\",\"data\":{\"object\":{\"id\":\"pi_1\",\"description\":\"caf\u{e9} \u{2603}\",\"receipt_url\":\"https://pay.example.com/r/1\"}}}";

fn secrets() -> Value {
    json!({
        "github": "It's a Secret to Everybody",
        "mediaconvert": "mc_whsec_5f2b9c1e7a4d8b3f6e0c2a9d7b1f4e8c",
        "stripe": "whsec_test_5b3f1c9e7d2a4b6c8e0f1a3b5c7d9e1f",
        "standard-webhooks": "whsec_QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZX",
    })
}

/// A request to send: path, headers, body, and the diagnosis it should get.
type Case = (String, Vec<(String, String)>, Vec<u8>, String);

/// What the sender of a refused request sees, minus the `date` header.
fn seen(resp: &Resp) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut headers: Vec<(String, String)> = resp
        .headers
        .iter()
        .filter(|(n, _)| !n.eq_ignore_ascii_case("date"))
        .cloned()
        .collect();
    headers.sort();
    (resp.status, headers, resp.body.clone())
}

/// The request log line of the request to `path`, once it has its diagnosis.
fn diagnosis(gw: &Gateway, path: &str) -> String {
    let line = gw
        .wait_request_log(|l| l["path"] == path && l.get("diagnosis").is_some())
        .unwrap_or_else(|| panic!("no request log line with a diagnosis for {path}"));
    assert_eq!(line["status"], 401, "{line}");
    line["diagnosis"].as_str().expect("a string").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_diagnosis_from_an_official_sdk() {
    let (python, node) = tools();
    let secrets = secrets();
    let retired = json!({"stripe": "whsec_test_0ld0ld0ld0ld0ld0ld0ld0ld0ld0ld0l"});
    let backend = Backend::start();
    let mut stripe = verify(
        "stripe",
        &[secret_value("current", secrets["stripe"].as_str().unwrap())],
    );
    stripe["retired_secrets"] = json!([secret_value("old", retired["stripe"].as_str().unwrap())]);
    let routes = vec![
        route("stripe", "/hooks/stripe/*", &backend.url("/recv"), stripe),
        route(
            "standard-webhooks",
            "/hooks/standard-webhooks/*",
            &backend.url("/recv"),
            verify(
                "standard-webhooks",
                &[secret_value(
                    "current",
                    secrets["standard-webhooks"].as_str().unwrap(),
                )],
            ),
        ),
    ];
    let gw = Gateway::start(config(&Opts::default(), &routes));

    // SDK-signed requests, altered as senders, frameworks and proxies alter them.
    let mut cases: Vec<Case> = run_script(
        &python,
        "interop.py",
        "doctor",
        &json!({"secrets": secrets, "retired": retired, "body": BODY}),
    )
    .iter()
    .map(|c| {
        let path = format!(
            "/hooks/{}/{}",
            c["scheme"].as_str().unwrap(),
            c["case"].as_str().unwrap()
        );
        let body = c["body"].as_str().unwrap().as_bytes().to_vec();
        (
            path,
            headers_of(c),
            body,
            c["expect"].as_str().unwrap().to_string(),
        )
    })
    .collect();
    // A GitHub delivery (octokit) posted to the Stripe route.
    let github = run_script(
        &node,
        "interop.mjs",
        "sign",
        &json!({"secrets": secrets, "body": BODY}),
    )
    .into_iter()
    .find(|r| r["scheme"] == "github")
    .expect("octokit signed a github request");
    cases.push((
        "/hooks/stripe/github".into(),
        headers_of(&github),
        BODY.as_bytes().to_vec(),
        "wrong_scheme:github".into(),
    ));
    // Random bytes under a Stripe-shaped header.
    let noise: Vec<u8> = (0..512).map(|_| fastrand::u8(..)).collect();
    cases.push((
        "/hooks/stripe/random".into(),
        vec![(
            "Stripe-Signature".into(),
            format!("t={},v1={}", unix_now(), hex::encode(&noise[..32])),
        )],
        noise,
        "unknown".into(),
    ));

    let mut answers = BTreeSet::new();
    for (path, headers, body, _) in &cases {
        let refs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let resp = post(gw.addr(), path, &refs, body).await;
        assert_eq!(resp.status, 401, "{path}: {}", resp.text());
        assert_eq!(resp.text(), INVALID_SIGNATURE, "{path}");
        answers.insert(seen(&resp));
    }
    assert_eq!(
        answers.len(),
        1,
        "the sender sees one and the same 401: {answers:?}"
    );
    assert!(backend.requests().is_empty(), "nothing was forwarded");

    for (path, _, _, expect) in &cases {
        let got = diagnosis(&gw, path);
        match expect.strip_prefix("clock_skew:") {
            // Signed by the SDK 400 s before its script ended; the gateway read its clock a
            // moment later.
            Some(_) => {
                let secs: i64 = got
                    .strip_prefix("clock_skew:")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| panic!("{path}: {got}"));
                assert!((-405..=-399).contains(&secs), "{path}: {got}");
            }
            None => assert_eq!(&got, expect, "{path}"),
        }
    }

    // The metric carries the kind only: never the scheme, the seconds or the key id.
    let text = gw.metrics();
    let mut kinds = BTreeSet::new();
    for (name, labels, value) in text.lines().filter_map(parse_sample) {
        if name == "hookgate_verify_failures_total" && value > 0.0 {
            let kind = labels["diagnosis"].clone();
            assert!(!kind.contains(':'), "{kind}");
            kinds.insert(kind);
        }
    }
    let want: BTreeSet<String> = [
        "body_altered",
        "clock_skew",
        "retired_secret",
        "secret_encoding",
        "wrong_scheme",
        "unknown",
    ]
    .map(String::from)
    .into();
    assert_eq!(kinds, want);
    let n = |route, reason, diagnosis| {
        gw.metric(
            "hookgate_verify_failures_total",
            &[
                ("route", route),
                ("reason", reason),
                ("diagnosis", diagnosis),
            ],
        )
    };
    assert_eq!(n("stripe", "mismatch", "body_altered"), 2.0);
    assert_eq!(n("stripe", "timestamp_expired", "clock_skew"), 1.0);
    assert_eq!(n("stripe", "mismatch", "retired_secret"), 1.0);
    assert_eq!(n("stripe", "missing_header", "wrong_scheme"), 1.0);
    assert_eq!(n("standard-webhooks", "mismatch", "secret_encoding"), 1.0);
}

/// 1,000 forgeries at once: at most the route's budget (60 a minute, refilled one a second)
/// is examined, the rest is `skipped`, and every sender gets the same 401.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_forgeries_is_examined_within_the_budget() {
    const FORGERIES: usize = 1000;
    let backend = Backend::start();
    let mut off = mc_verify(&[("current", "s3cret")]);
    off["diagnose_per_minute"] = json!(0);
    let routes = vec![
        route(
            "flood",
            "/flood/*",
            &backend.url("/recv"),
            mc_verify(&[("current", "s3cret")]),
        ),
        route("off", "/off", &backend.url("/recv"), off),
    ];
    let opts = Opts {
        max_connections: 1000,
        ..Opts::default()
    };
    let gw = Gateway::start(config(&opts, &routes));
    let addr = gw.addr();

    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..20 {
        tasks.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            for i in 0..FORGERIES / 20 {
                let body = format!("{{\"job_id\":\"forged-{t}-{i}\",\"status\":\"completed\"}}");
                let sig = format!("sha256={}", hex::encode([(t * 7 + i) as u8; 32]));
                let resp = post(
                    addr,
                    &format!("/flood/{t}-{i}"),
                    &[("X-MediaConvert-Signature", &sig)],
                    body.as_bytes(),
                )
                .await;
                answers.push(seen(&resp));
            }
            answers
        }));
    }
    let mut answers = BTreeSet::new();
    for t in tasks {
        answers.extend(t.await.expect("sender"));
    }
    let elapsed = started.elapsed();
    assert_eq!(answers.len(), 1, "{answers:?}");
    let (status, _, body) = answers.into_iter().next().unwrap();
    assert_eq!(
        (status, String::from_utf8_lossy(&body).into_owned()),
        (401, INVALID_SIGNATURE.to_string())
    );

    // Every request gets its line, with its diagnosis.
    let deadline = Instant::now() + WAIT;
    let lines = loop {
        let lines: Vec<Value> = gw
            .request_logs()
            .into_iter()
            .filter(|l| l["route"] == "flood")
            .collect();
        if lines.len() >= FORGERIES || Instant::now() >= deadline {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(lines.len(), FORGERIES);
    let examined = lines.iter().filter(|l| l["diagnosis"] != "skipped").count();
    let skipped = lines.iter().filter(|l| l["diagnosis"] == "skipped").count();
    // The bucket starts full (60) and refills one a second.
    let budget = 60 + elapsed.as_secs() as usize + 1;
    assert!(
        examined >= 60 && examined <= budget,
        "{examined} examined in {elapsed:?}"
    );
    assert_eq!(examined + skipped, FORGERIES);
    assert!(lines
        .iter()
        .filter(|l| l["diagnosis"] != "skipped")
        .all(|l| l["diagnosis"] == "unknown" && l["diagnosis_ms"].is_number()));
    let metric = |d| {
        gw.metric(
            "hookgate_verify_failures_total",
            &[("route", "flood"), ("diagnosis", d)],
        )
    };
    assert_eq!(metric("unknown"), examined as f64);
    assert_eq!(metric("skipped"), skipped as f64);

    // diagnose_per_minute: 0 turns the doctor off: every failure is `skipped`.
    let resp = post(
        addr,
        "/off",
        &[("X-MediaConvert-Signature", "sha256=00")],
        b"{}",
    )
    .await;
    assert_eq!(resp.text(), INVALID_SIGNATURE);
    let line = gw
        .wait_request_log(|l| l["route"] == "off")
        .expect("a log line");
    assert_eq!(line["diagnosis"], "skipped");
    assert!(line.get("diagnosis_ms").is_none());
}

/// `hookgate doctor --event ID` reads a failed request back from the journal through the
/// admin API and explains the diagnosis the gateway recorded; an unknown id, a request that
/// verified and a missing token each get a clear answer.
#[tokio::test]
async fn doctor_event_explains_a_journal_event() {
    const TOKEN: &str = "doctor-admin-token";
    const SECRET: &str = "s3cret";
    let backend = Backend::start();
    let mut c = config(
        &Opts::default(),
        route(
            "mc",
            "/hooks/mc",
            &backend.url("/recv"),
            mc_verify(&[("current", SECRET)]),
        ),
    );
    c["admin"]["token"] = json!({"id": "admin", "value": TOKEN});
    let gw = Gateway::start(c);

    // Signed, then a newline appended on the way (`curl -d @file`, a proxy).
    let body = br#"{"job_id":"job_1","status":"completed"}"#;
    let sig = sha256_header(SECRET, body);
    let mut altered = body.to_vec();
    altered.push(b'\n');
    let resp = post(
        gw.addr(),
        "/hooks/mc",
        &[("X-MediaConvert-Signature", &sig)],
        &altered,
    )
    .await;
    assert_eq!(resp.text(), INVALID_SIGNATURE);
    let resp = post_mc(gw.addr(), "/hooks/mc", SECRET, body).await;
    assert_eq!(resp.status, 200);

    // Both events, once the failure has its diagnosis (recorded after the examination).
    let auth = format!("Bearer {TOKEN}");
    let deadline = Instant::now() + WAIT;
    let (failed, forwarded) = loop {
        let r = send(
            gw.admin(),
            "GET",
            "/api/events?route=mc",
            &[("authorization", &auth)],
            b"",
        )
        .await;
        let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        let events = v["events"].as_array().cloned().unwrap_or_default();
        let id = |outcome: &str| {
            events
                .iter()
                .find(|e| {
                    e["outcome"] == outcome && (outcome != "rejected" || e["diagnosis"].is_string())
                })
                .and_then(|e| e["id"].as_str())
                .map(str::to_string)
        };
        if let (Some(f), Some(ok)) = (id("rejected"), id("forwarded")) {
            break (f, ok);
        }
        assert!(Instant::now() < deadline, "no events: {v}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    let admin = gw.admin().to_string();
    let doctor = |id: &str, env: &[(&str, &str)]| {
        let out = run_cli_unset(
            &["doctor", "--event", id, "--admin", &admin],
            env,
            &["HOOKGATE_ADMIN_TOKEN", "HOOKGATE_ADMIN", "HOOKGATE_SECRET"],
            None,
        );
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };
    let token = [("HOOKGATE_ADMIN_TOKEN", TOKEN)];

    let (code, out, err) = doctor(&failed, &token);
    assert_eq!(code, Some(1), "a signature failure: {out}{err}");
    for want in [
        format!("event {failed} "),
        "on route mc (provider mediaconvert)".into(),
        "outcome rejected, reason mismatch, status 401".into(),
        "  - other providers' signature headers: no match".into(),
        "  - the body with known alterations undone: MATCH".into(),
        "diagnosis: body_altered:trailing_newline_added".into(),
        "what to change: a newline was added to the body on its way".into(),
    ] {
        assert!(out.contains(&want), "missing {want:?} in:\n{out}");
    }

    let (code, out, _) = doctor(&forwarded, &token);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("no diagnosis: it passed verification with key `current`"),
        "{out}"
    );

    let (code, out, err) = doctor("0000000000000000-unknown", &token);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("no event `0000000000000000-unknown` in the gateway's journal"),
        "{err}"
    );

    for env in [&[][..], &[("HOOKGATE_ADMIN_TOKEN", "wrong")][..]] {
        let (code, out, err) = doctor(&failed, env);
        assert_eq!(code, Some(1), "{env:?}: {out}");
        assert!(
            err.contains("the admin API refused the token: give --token or HOOKGATE_ADMIN_TOKEN"),
            "{env:?}: {err}"
        );
    }

    // --event takes no request description.
    let out = run_cli(
        &["doctor", "--event", &failed, "--scheme", "github"],
        &[],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
}

/// The examiner's thread runs at the lowest CPU priority, so examinations only take CPU the
/// workers leave idle.
#[test]
fn the_examiner_runs_at_the_lowest_priority() {
    let backend = Backend::start();
    let routes = vec![route(
        "mc",
        "/mc",
        &backend.url("/recv"),
        mc_verify(&[("current", "s3cret")]),
    )];
    let gw = Gateway::start(config(&Opts::default(), &routes));
    let tasks = std::path::PathBuf::from(format!("/proc/{}/task", gw.pid()));
    let doctor_nice = || {
        let mut nice = None;
        for task in std::fs::read_dir(&tasks).expect("the gateway's threads") {
            let dir = task.expect("a thread").path();
            let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
            if comm.trim() == "hookgate-doctor" {
                let stat = std::fs::read_to_string(dir.join("stat")).unwrap_or_default();
                // Fields after the command's closing parenthesis; nice is field 19 of stat(5).
                let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
                nice = rest.split_whitespace().nth(16).map(str::to_string);
            }
        }
        nice
    };
    // The thread lowers its own priority when it first runs, which on a busy machine may be
    // after the gateway is listening.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut nice = doctor_nice();
    while nice.as_deref() != Some("19") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        nice = doctor_nice();
    }
    assert_eq!(
        nice.as_deref(),
        Some("19"),
        "the doctor's thread and its nice value"
    );
}
