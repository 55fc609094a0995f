//! Secrets and signatures never show up in logs or metrics.

use crate::common::*;

const INLINE: &str = "InlineSecretValue-7f3k9q2m";
const FROM_ENV: &str = "EnvSecretValue-p4x8w1z6";
const FROM_FILE: &str = "FileSecretValue-b5n2c8v0";
const GH: &str = "GithubSecretValue-r9t4y7u1";
const GENERIC: &str = "GenericSecretValue-e3d6f9g2";
const ATTEST: &str = "AttestationSecretValue-h1j4k7l0";
const BODY: &[u8] = br#"{"job_id":"job_secret","status":"completed"}"#;

fn expect(status: u16, resp: Resp, what: &str) {
    assert_eq!(resp.status, status, "{what}: {}", resp.text());
}

/// Drive valid, invalid and spoofed traffic at `level`, then scan all output and /metrics.
async fn no_secret_leaks(level: &str) {
    let backend = Backend::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mc.secret");
    std::fs::write(&file, FROM_FILE).unwrap();
    let var = format!(
        "HOOKGATE_TEST_LEAK_{}_{}",
        level.to_uppercase(),
        std::process::id()
    );
    let mut routes = vec![route(
        "mc",
        "/webhooks/mediaconvert",
        &backend.url("/hooks/mc"),
        verify(
            "mediaconvert",
            &[
                secret_value("inline", INLINE),
                secret_env("env", &var),
                secret_file("file", &file),
            ],
        ),
    )];
    routes.push(route(
        "gh",
        "/gh",
        &backend.url("/gh"),
        verify("github", &[secret_value("k1", GH)]),
    ));
    routes.push(route(
        "generic",
        "/generic",
        &backend.url("/generic"),
        verify("hmac", &[secret_value("g1", GENERIC)]).merge(json!({
            "header": "X-Signature",
            "prefix": "sha256=",
            "encoding": "hex",
            "algorithm": "sha256",
        })),
    ));
    let opts = Opts {
        log_level: level.into(),
        attestation_secret: Some(secret_value("gw1", ATTEST)),
        ..Opts::default()
    };
    let gw = Gateway::start_with_env(config(&opts, &routes), &[(var.as_str(), FROM_ENV)]);

    let mut sent_signatures: Vec<String> = Vec::new();

    // Valid with each secret.
    for s in [INLINE, FROM_ENV, FROM_FILE] {
        let sig = sha256_header(s, BODY);
        sent_signatures.push(sig.clone());
        let r = post(
            gw.addr(),
            "/webhooks/mediaconvert",
            &[("x-mediaconvert-signature", &sig)],
            BODY,
        )
        .await;
        expect(200, r, "valid mediaconvert");
    }
    // Invalid: wrong secret, tampered body, malformed.
    let wrong = sha256_header("NotTheSecret-q8w7e6r5", BODY);
    let tampered = sha256_header(INLINE, b"{\"other\":1}");
    let malformed = format!("sha256={}", sign_hex(INLINE, BODY).to_uppercase());
    for sig in [&wrong, &tampered, &malformed] {
        sent_signatures.push(sig.clone());
        let r = post(
            gw.addr(),
            "/webhooks/mediaconvert",
            &[("x-mediaconvert-signature", sig)],
            BODY,
        )
        .await;
        expect(401, r, "invalid mediaconvert");
    }
    // Spoofed trusted headers on a valid request.
    let sig = sha256_header(FROM_ENV, BODY);
    sent_signatures.push(sig.clone());
    let r = post(
        gw.addr(),
        "/webhooks/mediaconvert",
        &[
            ("x-mediaconvert-signature", &sig),
            ("x-webhook-verified", "true"),
            ("x-webhook-key-id", "inline"),
            ("x_webhook_provider", "evil"),
        ],
        BODY,
    )
    .await;
    expect(200, r, "spoofed");
    // github valid and invalid.
    let gh_ok = sha256_header(GH, BODY);
    let gh_bad = sha256_header("NotTheGithubSecret", BODY);
    for (sig, st) in [(&gh_ok, 200), (&gh_bad, 401)] {
        sent_signatures.push(sig.clone());
        let r = post(
            gw.addr(),
            "/gh",
            &[
                ("x-hub-signature-256", sig),
                ("x-github-delivery", "leak-test-1"),
            ],
            BODY,
        )
        .await;
        expect(st, r, "github");
    }
    // generic valid and invalid.
    let g_ok = format!("sha256={}", sign_hex(GENERIC, BODY));
    let g_bad = format!("sha256={}", sign_hex("NotTheGenericSecret", BODY));
    for (sig, st) in [(&g_ok, 200), (&g_bad, 401)] {
        sent_signatures.push(sig.clone());
        let r = post(gw.addr(), "/generic", &[("X-Signature", sig)], BODY).await;
        expect(st, r, "generic");
    }
    // Make sure every request has been logged before scanning.
    let n_requests = 3 + 3 + 1 + 2 + 2;
    let deadline = std::time::Instant::now() + WAIT;
    while gw.request_logs().len() < n_requests && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    assert_eq!(
        gw.request_logs().len(),
        n_requests,
        "one request log line per request"
    );

    let output = gw.all_output();
    let metrics = gw.metrics();
    for (where_, text) in [("logs", &output), ("metrics", &metrics)] {
        for secret in [INLINE, FROM_ENV, FROM_FILE, GH, GENERIC, ATTEST] {
            assert!(
                !text.contains(secret),
                "secret {secret} appears in {where_}"
            );
        }
        for sig in &sent_signatures {
            assert!(
                !text.contains(sig.as_str()),
                "signature {sig} appears in {where_}"
            );
            // Nor the bare hex digest.
            let bare = sig.trim_start_matches("sha256=");
            assert!(
                !text.to_lowercase().contains(&bare.to_lowercase()),
                "signature hex {bare} appears in {where_}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_or_signature_in_output_info() {
    no_secret_leaks("info").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_or_signature_in_output_debug() {
    no_secret_leaks("debug").await;
}

/// `check` on a config with inline secrets and a problem does not print the secret values.
#[test]
fn check_output_has_no_secrets() {
    let yaml = config(
        &Opts::default(),
        [
            route(
                "mc",
                "/a",
                "http://127.0.0.1:9/x",
                mc_verify(&[("inline", INLINE)]),
            ),
            route(
                "mc",
                "/b",
                "http://127.0.0.1:9/y",
                mc_verify(&[("inline", GH)]),
            ),
        ],
    );
    let out = run_with_config("check", &yaml, &[]);
    assert_eq!(out.status.code(), Some(2));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for s in [INLINE, GH] {
        assert!(!text.contains(s), "check printed secret {s}:\n{text}");
    }
}

// ---------------------------------------------------------------------------
// Every refusal path, every command, and the shape of a 401
// ---------------------------------------------------------------------------

const STRIPE: &str = "whsec_StripeSecretValue-m2n5b8v1";
const ZOOM: &str = "ZoomSecretValue-z7x4c1v8";
const LIMITED: &str = "LimitedSecretValue-w3e6r9t2";
const SCHEMA: &str = "SchemaSecretValue-a8s5d2f7";
const ALL: [&str; 10] = [
    INLINE, FROM_ENV, FROM_FILE, GH, GENERIC, ATTEST, STRIPE, ZOOM, LIMITED, SCHEMA,
];

/// What a sender saw: status line, every header, body.
fn shown(r: &Resp) -> String {
    let headers: Vec<String> = r.headers.iter().map(|(n, v)| format!("{n}: {v}")).collect();
    format!("{}\n{}\n\n{}", r.status, headers.join("\n"), r.text())
}

fn raw_shown(r: &RawResponse) -> String {
    let headers: Vec<String> = r.headers.iter().map(|(n, v)| format!("{n}: {v}")).collect();
    format!("{}\n{}\n\n{}", r.status, headers.join("\n"), r.text())
}

/// Fails naming the first secret or signature found in `text`.
fn assert_clean(what: &str, text: &str, secrets: &[&str], signatures: &[String]) {
    let lower = text.to_lowercase();
    for s in secrets {
        assert!(!text.contains(s), "secret {s} appears in {what}");
    }
    for sig in signatures {
        let bare = sig.rsplit(['=', ',']).next().unwrap_or(sig);
        assert!(
            !lower.contains(&bare.to_lowercase()),
            "signature {sig} appears in {what}"
        );
    }
}

fn stripe_header(secret: &str, t: i64, body: &[u8]) -> String {
    let mut msg = format!("{t}.").into_bytes();
    msg.extend_from_slice(body);
    format!(
        "t={t},v1={}",
        hex::encode(hmac_sha256(secret.as_bytes(), &msg))
    )
}

fn zoom_headers(secret: &str, t: i64, body: &[u8]) -> (String, String) {
    let mut msg = format!("v0:{t}:").into_bytes();
    msg.extend_from_slice(body);
    (
        t.to_string(),
        format!("v0={}", hex::encode(hmac_sha256(secret.as_bytes(), &msg))),
    )
}

/// Every way a request can be refused or answered, at debug level, with secrets from every
/// source: no response, log line or metric carries a secret or a signature that was sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_path_is_free_of_secrets() {
    let backend = Backend::start();
    let slow = Backend::start_with(Behaviour {
        delay: std::time::Duration::from_secs(3),
        ..Behaviour::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mc.secret");
    std::fs::write(&file, FROM_FILE).unwrap();
    let var = format!("HOOKGATE_TEST_REFUSALS_{}", std::process::id());
    let mc = verify(
        "mediaconvert",
        &[
            secret_value("inline", INLINE),
            secret_env("env", &var),
            secret_file("file", &file),
        ],
    );
    let mut routes = vec![route("mc", "/mc", &backend.url("/mc"), mc)];
    routes.push(route(
        "stripe",
        "/stripe",
        &backend.url("/stripe"),
        verify("stripe", &[secret_value("s", STRIPE)]),
    ));
    routes.push(route(
        "zoom",
        "/zoom",
        &backend.url("/zoom"),
        verify("zoom", &[secret_value("z", ZOOM)]),
    ));
    routes.push(
        route(
            "limited",
            "/limited",
            &backend.url("/limited"),
            mc_verify(&[("l", LIMITED)]),
        )
        .with(
            "rate_limit",
            json!({"per_ip": {"rate": "2/h", "burst": 2}, "route": {"rate": "1/h", "burst": 1}}),
        ),
    );
    routes.push(
        route(
            "schema",
            "/schema",
            &backend.url("/schema"),
            mc_verify(&[("sc", SCHEMA)]),
        )
        .with("schema", json!({"builtin": "mediaconvert"})),
    );
    routes.push(route(
        "dead",
        "/dead",
        &format!("http://127.0.0.1:{}/x", dead_port()),
        mc_verify(&[("inline", INLINE)]),
    ));
    routes.push(route_with_timeout(
        "slow",
        "/slow",
        &slow.url("/slow"),
        "1s",
        mc_verify(&[("inline", INLINE)]),
    ));
    let opts = Opts {
        log_level: "debug".into(),
        body_timeout: "1s".into(),
        max_body_bytes: "1KiB".into(),
        attestation_secret: Some(secret_value("gw1", ATTEST)),
        ..Opts::default()
    };
    let gw = Gateway::start_with_env(config(&opts, &routes), &[(var.as_str(), FROM_ENV)]);
    let addr = gw.addr();
    let now = unix_now();
    let mut sigs: Vec<String> = Vec::new();
    let mut seen: Vec<(String, String)> = Vec::new();
    let mut hit = |what: &str, want: u16, r: Resp, sigs: &mut Vec<String>, sent: &[String]| {
        assert_eq!(r.status, want, "{what}: {}", r.text());
        sigs.extend_from_slice(sent);
        seen.push((what.to_string(), shown(&r)));
    };

    let ok = sha256_header(FROM_FILE, BODY);
    let r = post(addr, "/mc", &[("x-mediaconvert-signature", &ok)], BODY).await;
    hit("forwarded", 200, r, &mut sigs, std::slice::from_ref(&ok));
    let r = post(addr, "/nope", &[("x-mediaconvert-signature", &ok)], BODY).await;
    hit("404", 404, r, &mut sigs, &[]);
    let r = send(
        addr,
        "PUT",
        "/mc",
        &[("x-mediaconvert-signature", &ok)],
        BODY,
    )
    .await;
    hit("405", 405, r, &mut sigs, &[]);
    let big = vec![b'x'; 4096];
    let big_sig = sha256_header(INLINE, &big);
    let r = post(addr, "/mc", &[("x-mediaconvert-signature", &big_sig)], &big).await;
    hit("413", 413, r, &mut sigs, std::slice::from_ref(&big_sig));
    // 401 for every reason, on a scheme with a timestamp.
    let wrong = stripe_header("whsec_wrong", now, BODY);
    let expired = stripe_header(STRIPE, now - 3600, BODY);
    let future = stripe_header(STRIPE, now + 3600, BODY);
    let malformed = format!("t={now},v1={}", "Z".repeat(64));
    for (what, h) in [
        ("401 mismatch", Some(&wrong)),
        ("401 expired", Some(&expired)),
        ("401 future", Some(&future)),
        ("401 malformed", Some(&malformed)),
        ("401 missing", None),
    ] {
        let headers: Vec<(&str, &str)> =
            h.iter().map(|v| ("stripe-signature", v.as_str())).collect();
        let r = post(addr, "/stripe", &headers, BODY).await;
        hit(
            what,
            401,
            r,
            &mut sigs,
            &h.cloned().into_iter().collect::<Vec<_>>(),
        );
    }
    // Zoom's challenge is answered by the gateway itself.
    let challenge = br#"{"event":"endpoint.url_validation","payload":{"plainToken":"plain-1"}}"#;
    let (ts, zsig) = zoom_headers(ZOOM, now, challenge);
    let r = post(
        addr,
        "/zoom",
        &[("x-zm-request-timestamp", &ts), ("x-zm-signature", &zsig)],
        challenge,
    )
    .await;
    hit(
        "zoom challenge",
        200,
        r,
        &mut sigs,
        std::slice::from_ref(&zsig),
    );
    // Rate limits: the route's budget (1) first, then the address's (2).
    let lim = sha256_header(LIMITED, BODY);
    let r = post(
        addr,
        "/limited",
        &[("x-mediaconvert-signature", &lim)],
        BODY,
    )
    .await;
    hit("limited ok", 200, r, &mut sigs, std::slice::from_ref(&lim));
    let r = post(
        addr,
        "/limited",
        &[("x-mediaconvert-signature", &lim)],
        BODY,
    )
    .await;
    hit("429 route", 429, r, &mut sigs, &[]);
    let r = post(
        addr,
        "/limited",
        &[("x-mediaconvert-signature", &lim)],
        BODY,
    )
    .await;
    hit("429 ip", 429, r, &mut sigs, &[]);
    // Schema: not JSON, then a violation.
    let not_json = b"job_id=1";
    let nj = sha256_header(SCHEMA, not_json);
    let r = post(
        addr,
        "/schema",
        &[("x-mediaconvert-signature", &nj)],
        not_json,
    )
    .await;
    hit("400 not json", 400, r, &mut sigs, std::slice::from_ref(&nj));
    let bad = br#"{"job_id":"j","status":"exploded"}"#;
    let bs = sha256_header(SCHEMA, bad);
    let r = post(addr, "/schema", &[("x-mediaconvert-signature", &bs)], bad).await;
    hit("422 schema", 422, r, &mut sigs, std::slice::from_ref(&bs));
    // Backends that cannot be reached, or are too slow.
    let inl = sha256_header(INLINE, BODY);
    let r = post(addr, "/dead", &[("x-mediaconvert-signature", &inl)], BODY).await;
    hit("502", 502, r, &mut sigs, std::slice::from_ref(&inl));
    let r = post(addr, "/slow", &[("x-mediaconvert-signature", &inl)], BODY).await;
    hit("504", 504, r, &mut sigs, &[]);
    // Spoofed trusted headers on a valid request.
    let env_sig = sha256_header(FROM_ENV, BODY);
    let r = post(
        addr,
        "/mc",
        &[
            ("x-mediaconvert-signature", &env_sig),
            ("x-webhook-verified", "true"),
            ("x_webhook_key_id", "inline"),
        ],
        BODY,
    )
    .await;
    hit("spoofed", 200, r, &mut sigs, std::slice::from_ref(&env_sig));
    // Refusals on the raw wire: a body too slow (408), a malformed head (400 from hyper).
    let mut s = connect(addr);
    use std::io::Write;
    s.write_all(
        format!("POST /mc HTTP/1.1\r\nHost: x\r\nX-MediaConvert-Signature: {inl}\r\nContent-Length: 100\r\n\r\n{{")
            .as_bytes(),
    )
    .unwrap();
    let r = read_response(&mut s, WAIT).expect("408");
    assert_eq!(r.status, 408);
    seen.push(("408".into(), raw_shown(&r)));
    let r = raw_request(
        addr,
        format!("POST /mc HTTP/1.1\r\nHost: x\r\nX-MediaConvert-Signature: {inl}\r\nX-Fold: a\r\n b\r\n\r\n").as_bytes(),
    )
    .expect("400");
    assert_eq!(r.status, 400);
    seen.push(("400 malformed head".into(), raw_shown(&r)));

    // Wait until every request has its log line, the malformed head's (refused by hyper
    // before the gateway, logged as the connection ends) included.
    let requests = 20;
    let deadline = std::time::Instant::now() + WAIT;
    while gw.request_logs().len() < requests && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    assert_eq!(
        gw.request_logs().len(),
        requests,
        "one log line per request"
    );
    let logs = gw.all_output();
    assert!(logs.contains("\"level\":\"DEBUG\""), "debug logs were on");
    for (what, text) in &seen {
        assert_clean(&format!("the {what} response"), text, &ALL, &sigs);
    }
    assert_clean("the logs", &logs, &ALL, &sigs);
    assert_clean("the metrics", &gw.metrics(), &ALL, &sigs);
}

/// A 401 looks the same whatever the reason: status, every header but Date, and body, on
/// HTTP/1.1 and on HTTP/2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthorized_is_identical_whatever_the_reason() {
    let backend = Backend::start();
    let routes = route(
        "stripe",
        "/stripe",
        &backend.url("/stripe"),
        verify("stripe", &[secret_value("s", STRIPE)]),
    );
    let gw = Gateway::start(config(&Opts::default(), &routes));
    let now = unix_now();
    let cases: Vec<(&str, Option<String>)> = vec![
        ("missing_header", None),
        ("malformed_header", Some(format!("t={now},v1=XYZ"))),
        ("malformed_header", Some("garbage".into())),
        ("mismatch", Some(stripe_header("whsec_other", now, BODY))),
        ("mismatch", Some(stripe_header(STRIPE, now, b"{}"))),
        (
            "timestamp_expired",
            Some(stripe_header(STRIPE, now - 3600, BODY)),
        ),
        (
            "timestamp_future",
            Some(stripe_header(STRIPE, now + 3600, BODY)),
        ),
    ];
    let normal = |r: &Resp| {
        let mut h: Vec<(String, String)> = r
            .headers
            .iter()
            .filter(|(n, _)| !n.eq_ignore_ascii_case("date"))
            .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
            .collect();
        h.sort();
        (r.status, h, r.body.clone())
    };
    for h2 in [false, true] {
        let mut first = None;
        for (reason, header) in &cases {
            let headers: Vec<(&str, &str)> = header
                .iter()
                .map(|v| ("stripe-signature", v.as_str()))
                .collect();
            let r = if h2 {
                send_h2(gw.addr(), "POST", "/stripe", &headers, BODY)
                    .await
                    .expect("h2")
            } else {
                post(gw.addr(), "/stripe", &headers, BODY).await
            };
            let got = normal(&r);
            assert_eq!(got.0, 401, "{reason}");
            assert_eq!(r.text(), INVALID_SIGNATURE, "{reason}");
            match &first {
                None => first = Some(got),
                Some(f) => assert_eq!(&got, f, "{reason} (h2: {h2}) differs"),
            }
        }
        let (_, headers, _) = first.expect("responses");
        let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["content-length", "content-type"], "h2: {h2}");
    }
    // Each reason was really taken (the log says which), so the sameness is not an accident.
    for (reason, _) in &cases {
        assert!(
            gw.wait_request_log(|l| l["reason"] == *reason).is_some(),
            "no request refused for {reason}"
        );
    }
    assert!(backend.requests().is_empty());
}

/// `sign`, `send`, `check` and a `run` that refuses its config never print a secret, and
/// `send` never prints the signature it sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_is_free_of_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let body_file = dir.path().join("body.json");
    std::fs::write(&body_file, BODY).unwrap();
    let key_file = dir.path().join("secret");
    std::fs::write(&key_file, format!("{FROM_FILE}\n")).unwrap();
    let body_path = body_file.to_str().unwrap();
    let secret_path = key_file.to_str().unwrap();
    let text = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };

    // sign: every shared-secret scheme, from --secret, --secret-file and HOOKGATE_SECRET. The
    // signature is what sign prints; the secret never is (GitLab's token is the header itself).
    for scheme in hookgate::verify::SCHEME_NAMES {
        let secret = match *scheme {
            "sendgrid" | "gitlab" => continue,
            "standard-webhooks" | "svix" => "whsec_U3RhbmRhcmRTZWNyZXRWYWx1ZS1rOWo4aDc=",
            _ => INLINE,
        };
        let mut args = vec!["sign", "--scheme", scheme, "--url", "https://h.example/t"];
        if *scheme == "hmac" {
            args.extend(["--header", "X-Signature"]);
        }
        let with_flag = [&args[..], &["--secret", secret, body_path]].concat();
        let out = run_cli(&with_flag, &[], None);
        assert!(out.status.success(), "sign {scheme}: {}", text(&out));
        assert_clean(
            &format!("sign --scheme {scheme}"),
            &text(&out),
            &[secret],
            &[],
        );
        let from_env = [&args[..], &[body_path]].concat();
        let out = run_cli(&from_env, &[("HOOKGATE_SECRET", secret)], None);
        assert!(out.status.success(), "sign {scheme} (env): {}", text(&out));
        assert_clean(
            &format!("sign --scheme {scheme} (env)"),
            &text(&out),
            &[secret],
            &[],
        );
    }
    let out = run_cli(
        &[
            "sign",
            "--scheme",
            "mediaconvert",
            "--secret-file",
            secret_path,
            body_path,
        ],
        &[],
        None,
    );
    assert!(out.status.success());
    assert!(
        text(&out).contains(&sign_hex(FROM_FILE, BODY)),
        "signed with the file's secret"
    );
    assert_clean("sign --secret-file", &text(&out), &[FROM_FILE], &[]);
    // sign refusals.
    for (args, secret) in [
        (
            vec!["sign", "--scheme", "twilio", "--secret", INLINE, body_path],
            INLINE,
        ),
        (
            vec![
                "sign", "--scheme", "sendgrid", "--secret", INLINE, body_path,
            ],
            INLINE,
        ),
        (
            vec![
                "sign",
                "--scheme",
                "standard-webhooks",
                "--secret",
                "whsec_%%Bad-Secret-9q8w",
                body_path,
            ],
            "Bad-Secret-9q8w",
        ),
        (
            vec!["sign", "--scheme", "nope", "--secret", INLINE, body_path],
            INLINE,
        ),
        (
            vec![
                "sign",
                "--scheme",
                "mediaconvert",
                "--secret",
                INLINE,
                "/nonexistent/body",
            ],
            INLINE,
        ),
    ] {
        let out = run_cli(&args, &[], None);
        assert!(!out.status.success(), "{args:?}");
        assert_clean(&format!("{args:?}"), &text(&out), &[secret], &[]);
    }

    // send, to a gateway: accepted and refused.
    let backend = Backend::start();
    let routes = route(
        "mc",
        "/mc",
        &backend.url("/mc"),
        mc_verify(&[("k", INLINE)]),
    );
    let opts = Opts {
        log_level: "debug".into(),
        ..Opts::default()
    };
    let gw = Gateway::start(config(&opts, &routes));
    let url = gw.url("/mc");
    let sig = sign_hex(INLINE, BODY);
    let wrong_sig = sign_hex(GH, BODY);
    let out = run_cli(
        &[
            "send",
            "--scheme",
            "mediaconvert",
            "--secret",
            INLINE,
            &url,
            body_path,
        ],
        &[],
        None,
    );
    assert!(out.status.success(), "send: {}", text(&out));
    assert_clean("send", &text(&out), &[INLINE], std::slice::from_ref(&sig));
    let out = run_cli(
        &[
            "send",
            "--scheme",
            "mediaconvert",
            "--secret",
            GH,
            &url,
            body_path,
        ],
        &[],
        None,
    );
    assert!(!out.status.success(), "send with the wrong secret");
    assert!(text(&out).contains("401"), "{}", text(&out));
    assert_clean(
        "send (refused)",
        &text(&out),
        &[GH],
        std::slice::from_ref(&wrong_sig),
    );
    let dead = format!("http://127.0.0.1:{}/mc", dead_port());
    let out = run_cli(
        &[
            "send",
            "--scheme",
            "mediaconvert",
            "--secret",
            INLINE,
            &dead,
            body_path,
        ],
        &[],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert_clean(
        "send (unreachable)",
        &text(&out),
        &[INLINE],
        std::slice::from_ref(&sig),
    );
    assert!(gw.wait_request_log(|_| true).is_some());
    assert_clean(
        "the gateway's logs",
        &gw.all_output(),
        &[INLINE, GH],
        &[sig, wrong_sig],
    );

    // check and run on configs with problems next to secrets from every source.
    let var = format!("HOOKGATE_TEST_CMD_{}", std::process::id());
    let bad = config(
        &Opts {
            attestation_secret: Some(secret_value("gw", ATTEST)),
            ..Opts::default()
        },
        &[
            route(
                "mc",
                "/a",
                "ftp://nowhere",
                verify(
                    "mediaconvert",
                    &[
                        secret_value("i", INLINE),
                        secret_env("e", &var),
                        secret_file("f", &key_file),
                    ],
                ),
            ),
            route(
                "sw",
                "/b",
                "http://127.0.0.1:9/",
                verify(
                    "standard-webhooks",
                    &[secret_value("bad", "whsec_%%Bad-Secret-9q8w")],
                ),
            ),
            route(
                "sg",
                "/c",
                "http://127.0.0.1:9/",
                verify("sendgrid", &[secret_value("wrong-kind", SCHEMA)]),
            ),
        ],
    );
    for cmd in ["check", "run"] {
        let out = run_with_config(cmd, &bad, &[(var.as_str(), FROM_ENV)]);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {}", text(&out));
        let t = text(&out);
        assert!(
            t.contains("routes[0].upstream"),
            "{cmd} names the problem: {t}"
        );
        assert_clean(
            cmd,
            &t,
            &[
                INLINE,
                FROM_ENV,
                FROM_FILE,
                ATTEST,
                SCHEMA,
                "Bad-Secret-9q8w",
            ],
            &[],
        );
    }
}
