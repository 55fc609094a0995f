//! Secrets and signatures never show up in logs or metrics.

mod common;

use common::*;

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
    let mut routes = route(
        "mc",
        "/webhooks/mediaconvert",
        &backend.url("/hooks/mc"),
        &verify(
            "mediaconvert",
            &[
                secret_value("inline", INLINE),
                secret_env("env", &var),
                secret_file("file", &file),
            ],
        ),
    );
    routes.push_str(&route(
        "gh",
        "/gh",
        &backend.url("/gh"),
        &verify("github", &[secret_value("k1", GH)]),
    ));
    routes.push_str(&route(
        "generic",
        "/generic",
        &backend.url("/generic"),
        &format!(
            "{{scheme: hmac, header: X-Signature, prefix: \"sha256=\", encoding: hex, algorithm: sha256, secrets: [{}]}}",
            secret_value("g1", GENERIC)
        ),
    ));
    let opts = Opts {
        log_level: level.into(),
        forward_extra: format!("  attestation_secret: {}\n", secret_value("gw1", ATTEST)),
        ..Opts::default()
    };
    let gw = Gateway::start_with_env(&config(&opts, &routes), &[(var.as_str(), FROM_ENV)]);

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
        &format!(
            "{}{}",
            route(
                "mc",
                "/a",
                "http://127.0.0.1:9/x",
                &mc_verify(&[("inline", INLINE)])
            ),
            route(
                "mc",
                "/b",
                "http://127.0.0.1:9/y",
                &mc_verify(&[("inline", GH)])
            ),
        ),
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
