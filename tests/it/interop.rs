//! Interop with the providers' own SDKs, at the current time: requests signed by
//! standardwebhooks, svix, stripe and slack_sdk (PyPI) and @octokit/webhooks-methods (npm) pass
//! through a running gateway and reach the backend; a copy with one byte changed is refused.
//! The other way round, what `hookgate sign` makes is accepted by the same SDKs' verifiers.
//!
//! The SDKs are installed by `bash tests/interop/setup.sh` (into `.venv/` and
//! `tests/interop/node_modules`); without them this test fails and says so.

use std::collections::BTreeSet;

use crate::common::*;
use serde_json::{json, Value};

/// Unicode, escapes and a trailing newline: SDKs that re-encode would break it.
const BODY: &str = "{\"job_id\":\"job_abc123xyz\",\"status\":\"completed\",\"note\":\"caf\u{e9} \u{2705} \u{4f1a}\u{8b70} \\u00e9\"}\n";

fn secrets() -> Value {
    json!({
        "github": "It's a Secret to Everybody",
        "mediaconvert": "mc_whsec_5f2b9c1e7a4d8b3f6e0c2a9d7b1f4e8c",
        "stripe": "whsec_test_5b3f1c9e7d2a4b6c8e0f1a3b5c7d9e1f",
        "standard-webhooks": "whsec_QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZX",
        "svix": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "slack": "8f742231b10e8888abcd99yyyzzz85a5",
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_sdks_and_hookgate_agree() {
    let (python, node) = tools();
    let secrets = secrets();
    let backend = Backend::start();
    let schemes = [
        "github",
        "mediaconvert",
        "stripe",
        "standard-webhooks",
        "svix",
        "slack",
    ];
    let routes: Vec<Value> = schemes
        .iter()
        .map(|s| {
            route(
                s,
                &format!("/hooks/{s}"),
                &backend.url(&format!("/recv/{s}")),
                verify(s, &[secret_value("current", secrets[s].as_str().unwrap())]),
            )
        })
        .collect();
    let gw = Gateway::start(config(&Opts::default(), &routes));

    // SDK-signed -> gateway.
    let input = json!({"secrets": secrets, "body": BODY});
    let mut signed = run_script(&python, "interop.py", "sign", &input);
    signed.extend(run_script(&node, "interop.mjs", "sign", &input));
    let mut covered = BTreeSet::new();
    for request in &signed {
        let scheme = request["scheme"].as_str().expect("scheme");
        let sdk = request["sdk"].as_str().expect("sdk");
        let body = request["body"].as_str().expect("body").as_bytes();
        assert_eq!(body, BODY.as_bytes(), "{sdk}: signed another body");
        let headers = headers_of(request);
        let refs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let path = format!("/hooks/{scheme}");

        backend.clear();
        let resp = post(gw.addr(), &path, &refs, body).await;
        assert_eq!(resp.status, 200, "{sdk} {scheme}: {}", resp.text());
        let got = backend.single();
        assert_eq!(
            got.body, body,
            "{sdk} {scheme}: body forwarded byte for byte"
        );
        assert_eq!(got.header("x-webhook-key-id").as_deref(), Some("current"));

        backend.clear();
        let tampered = BODY.replacen("completed", "completeD", 1);
        let resp = post(gw.addr(), &path, &refs, tampered.as_bytes()).await;
        assert_eq!(resp.status, 401, "{sdk} {scheme}: tampered copy");
        assert_eq!(resp.text(), INVALID_SIGNATURE);
        assert!(
            backend.requests().is_empty(),
            "{sdk} {scheme}: tampered copy forwarded"
        );
        covered.insert(scheme.to_string());
    }
    let want: BTreeSet<String> = schemes.iter().map(|s| s.to_string()).collect();
    assert_eq!(covered, want, "every scheme signed by an official SDK");

    // hookgate sign -> the SDKs' verifiers.
    let mut requests = Vec::new();
    for scheme in schemes {
        let s = hookgate_sign(
            &[
                "--scheme",
                scheme,
                "--secret",
                secrets[scheme].as_str().unwrap(),
            ],
            BODY.as_bytes(),
        );
        let headers: serde_json::Map<String, Value> = s
            .headers
            .iter()
            .map(|(n, v)| (n.clone(), Value::from(v.as_str())))
            .collect();
        let body = String::from_utf8(s.body).expect("utf-8");
        requests.push(json!({"scheme": scheme, "headers": headers.clone(), "body": body}));
        let tampered = body.replacen("completed", "completeD", 1);
        requests.push(
            json!({"scheme": scheme, "headers": headers, "body": tampered, "tampered": true}),
        );
    }
    let (py, js): (Vec<Value>, Vec<Value>) = requests
        .into_iter()
        .partition(|r| !matches!(r["scheme"].as_str(), Some("github" | "mediaconvert")));
    let mut verdicts = run_script(
        &python,
        "interop.py",
        "verify",
        &json!({"secrets": secrets, "requests": py.clone()}),
    );
    verdicts.extend(run_script(
        &node,
        "interop.mjs",
        "verify",
        &json!({"secrets": secrets, "requests": js.clone()}),
    ));
    let sent: Vec<Value> = py.into_iter().chain(js).collect();
    assert_eq!(verdicts.len(), sent.len(), "a verdict for every request");
    for (request, verdict) in sent.iter().zip(&verdicts) {
        let tampered = request["tampered"].as_bool().unwrap_or(false);
        assert_eq!(
            verdict["accepted"].as_bool(),
            Some(!tampered),
            "{} by {}: {verdict}",
            request["scheme"],
            verdict["sdk"]
        );
    }
}
