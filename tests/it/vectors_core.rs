//! Every mediaconvert and github vector through a running gateway.

use crate::common::*;

/// Route name for case `i` of a scheme.
fn route_name(scheme: &str, i: usize) -> String {
    format!("{scheme}-{i}")
}

/// Secret id for the primary (`primary`) and additional (`additional-N`) secrets.
fn secret_ids(case: &Case) -> Vec<(String, String)> {
    let mut v = vec![("primary".to_string(), case.secret.clone())];
    for (i, s) in case.additional_secrets.iter().enumerate() {
        v.push((format!("additional-{i}"), s.clone()));
    }
    v
}

/// Run every case of `file` (scheme `scheme`) through one gateway with one route per case.
async fn run_file(file: &str, scheme: &str) {
    let cases = vectors(file);
    assert!(!cases.is_empty(), "{file} has no cases");
    let sig_header = vectors_signature_header(file);
    assert!(!sig_header.is_empty());
    let backend = Backend::start();

    let mut routes = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let secrets: Vec<Value> = secret_ids(c)
            .iter()
            .map(|(id, v)| secret_value(id, v))
            .collect();
        routes.push(route(
            &route_name(scheme, i),
            &format!("/v/{scheme}/{i}"),
            &backend.url(&format!("/recv/{scheme}/{i}")),
            verify(scheme, &secrets),
        ));
    }
    let gw = Gateway::start(config(&Opts::default(), &routes));

    let mut ran = 0usize;
    let mut failures = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        backend.clear();
        let headers: Vec<(&str, &str)> = c
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let resp = post(gw.addr(), &format!("/v/{scheme}/{i}"), &headers, &c.body).await;
        ran += 1;
        let got = backend.requests();
        if c.expected == "valid" {
            if resp.status != 200 {
                failures.push(format!(
                    "{}: expected 200, got {} {}",
                    c.id,
                    resp.status,
                    resp.text()
                ));
                continue;
            }
            if got.len() != 1 {
                failures.push(format!("{}: backend got {} requests", c.id, got.len()));
                continue;
            }
            let r = &got[0];
            // The secret that signed it: the one whose HMAC equals the header.
            let sig = c.header(&sig_header).unwrap_or_default();
            let key_id = secret_ids(c)
                .into_iter()
                .find(|(_, s)| sha256_header(s, &c.body) == sig)
                .map(|(id, _)| id)
                .expect("a valid vector is signed by one of its secrets");
            let checks = [
                (r.body == c.body, "body byte-exact".to_string()),
                (r.method == "POST", format!("method {}", r.method)),
                (
                    r.uri == format!("/recv/{scheme}/{i}"),
                    format!("uri {}", r.uri),
                ),
                (
                    r.header("x-webhook-verified").as_deref() == Some("true"),
                    "X-Webhook-Verified".into(),
                ),
                (
                    r.header("x-webhook-provider").as_deref() == Some(scheme),
                    "X-Webhook-Provider".into(),
                ),
                (
                    r.header("x-webhook-route") == Some(route_name(scheme, i)),
                    format!("X-Webhook-Route {:?}", r.header("x-webhook-route")),
                ),
                (
                    r.header("x-webhook-key-id") == Some(key_id.clone()),
                    format!(
                        "X-Webhook-Key-Id {:?}, want {key_id}",
                        r.header("x-webhook-key-id")
                    ),
                ),
                (
                    r.header(&sig_header).as_deref() == Some(sig),
                    "signature header forwarded".into(),
                ),
            ];
            for (ok, what) in checks {
                if !ok {
                    failures.push(format!("{}: {what}", c.id));
                }
            }
        } else {
            if resp.status != 401 || resp.body != INVALID_SIGNATURE.as_bytes() {
                failures.push(format!(
                    "{} ({}): expected 401 {INVALID_SIGNATURE}, got {} {:?}",
                    c.id,
                    c.expected,
                    resp.status,
                    resp.text()
                ));
            }
            if !got.is_empty() {
                failures.push(format!("{}: rejected case reached the backend", c.id));
            }
        }
    }
    assert_eq!(ran, cases.len(), "cases run");
    assert!(
        failures.is_empty(),
        "{file}: {} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// All mediaconvert.json cases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mediaconvert_vectors() {
    let n = vectors("mediaconvert.json").len();
    assert_eq!(n, 21, "mediaconvert.json case count");
    run_file("mediaconvert.json", "mediaconvert").await;
}

/// All github.json cases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_vectors() {
    let n = vectors("github.json").len();
    assert_eq!(n, 13, "github.json case count");
    run_file("github.json", "github").await;
}

/// The sample signature from the MediaConvert docs is not a real signature.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mediaconvert_sample_signature_rejected() {
    let backend = Backend::start();
    let routes = route(
        "mediaconvert",
        "/webhooks/mediaconvert",
        &backend.url("/hooks/mc"),
        mc_verify(&[("current", "mc_whsec_5f2b9c1e7a4d8b3f6e0c2a9d7b1f4e8c")]),
    );
    let gw = Gateway::start(config(&Opts::default(), &routes));
    let resp = post(
        gw.addr(),
        "/webhooks/mediaconvert",
        &[
            ("content-type", "application/json"),
            ("x-mediaconvert-signature", "sha256=test_signature"),
        ],
        br#"{"job_id":"job_1","status":"completed"}"#,
    )
    .await;
    assert_eq!(resp.status, 401);
    assert_eq!(resp.text(), INVALID_SIGNATURE);
    assert!(
        backend.requests().is_empty(),
        "backend must receive nothing"
    );
}
