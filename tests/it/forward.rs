//! What the backend receives and what the sender gets back.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::*;

const SECRET: &str = "fwd-secret-one";
const BODY: &[u8] = br#"{"job_id":"job_fwd","status":"completed"}"#;

/// A gateway with one mediaconvert route `mc` at /webhooks/mediaconvert -> backend /hooks/mc.
fn mc_gateway(backend: &Backend) -> Gateway {
    let routes = route(
        "mc",
        "/webhooks/mediaconvert",
        &backend.url("/hooks/mc"),
        mc_verify(&[("current", SECRET)]),
    );
    Gateway::start(config(&Opts::default(), &routes))
}

/// Hop-by-hop headers (including those named in Connection) are removed; XFF is appended,
/// X-Forwarded-Proto and X-Forwarded-Host are set; end-to-end headers pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hop_by_hop_removed_and_forwarded_headers_set() {
    let backend = Backend::start();
    let gw = mc_gateway(&backend);
    let sig = sha256_header(SECRET, BODY);
    let req = raw_post_bytes(
        "/webhooks/mediaconvert",
        &[
            ("Host", "hooks.example.test"),
            ("Connection", "close, X-Hop-Custom"),
            ("X-Hop-Custom", "drop-me"),
            ("Keep-Alive", "timeout=5"),
            ("TE", "trailers"),
            ("Trailer", "X-Some-Trailer"),
            ("Upgrade", "example/1"),
            ("Proxy-Authorization", "Basic Zm9vOmJhcg=="),
            ("Proxy-Connection", "keep-alive"),
            ("X-Forwarded-For", "203.0.113.7"),
            ("X-End-To-End", "keep-me"),
            ("User-Agent", "hookgate-tests/1"),
            ("Content-Type", "application/json"),
            ("X-MediaConvert-Signature", &sig),
        ],
        BODY,
    );
    let resp = raw_request(gw.addr(), &req).expect("response");
    assert_eq!(resp.status, 200, "body: {}", resp.text());
    let r = backend.single();
    for h in [
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
        "proxy-authorization",
        "proxy-connection",
        "x-hop-custom",
    ] {
        assert!(
            !r.has(h),
            "hop-by-hop header {h} reached the backend: {:?}",
            r.all(h)
        );
    }
    assert_eq!(r.header("x-end-to-end").as_deref(), Some("keep-me"));
    assert_eq!(r.header("user-agent").as_deref(), Some("hookgate-tests/1"));
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(r.header("x-mediaconvert-signature"), Some(sig));
    let xff = r.all("x-forwarded-for").join(", ");
    assert_eq!(xff, "203.0.113.7, 127.0.0.1", "X-Forwarded-For appended");
    assert_eq!(r.header("x-forwarded-proto").as_deref(), Some("http"));
    assert_eq!(
        r.header("x-forwarded-host").as_deref(),
        Some("hooks.example.test")
    );
    assert_eq!(r.body, BODY);
}

/// Without an inbound XFF the backend gets the client IP alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xff_set_from_client_ip() {
    let backend = Backend::start();
    let gw = mc_gateway(&backend);
    let resp = post_mc(gw.addr(), "/webhooks/mediaconvert", SECRET, BODY).await;
    assert_eq!(resp.status, 200);
    let r = backend.single();
    assert_eq!(r.all("x-forwarded-for").join(", "), "127.0.0.1");
    assert_eq!(r.header("x-forwarded-host"), Some(gw.addr().to_string()));
}

/// Method, query and body are forwarded as received.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_and_body_preserved() {
    let backend = Backend::start();
    let gw = mc_gateway(&backend);
    // Not UTF-8, with CR/LF and NUL: must arrive byte for byte.
    let body: Vec<u8> = (0u8..=255).chain(b"\r\n\0tail".iter().copied()).collect();
    let sig = sha256_header(SECRET, &body);
    let resp = post(
        gw.addr(),
        "/webhooks/mediaconvert?a=1&b=two%20words&c=",
        &[
            ("x-mediaconvert-signature", &sig),
            ("content-type", "application/octet-stream"),
        ],
        &body,
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let r = backend.single();
    assert_eq!(r.method, "POST");
    assert_eq!(r.uri, "/hooks/mc?a=1&b=two%20words&c=");
    assert_eq!(r.body, body);
}

/// A chunked request body is verified and forwarded byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_request_body_forwarded_exact() {
    let backend = Backend::start();
    let gw = mc_gateway(&backend);
    let body: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    let sig = sha256_header(SECRET, &body);
    let mut s = connect(gw.addr());
    s.write_all(
        format!(
            "POST /webhooks/mediaconvert HTTP/1.1\r\nHost: localhost\r\nX-MediaConvert-Signature: {sig}\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    for part in body.chunks(700) {
        let mut c = format!("{:x}\r\n", part.len()).into_bytes();
        c.extend_from_slice(part);
        c.extend_from_slice(b"\r\n");
        s.write_all(&c).unwrap();
    }
    s.write_all(b"0\r\n\r\n").unwrap();
    let resp = read_response(&mut s, WAIT).expect("response");
    assert_eq!(resp.status, 200, "{}", resp.text());
    let r = backend.single();
    assert_eq!(r.body, body);
    assert!(!r.has("transfer-encoding") || r.header("content-length").is_none());
}

/// `/gh/*` routes append the rest of the request path to the upstream path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefix_route_maps_rest_of_path() {
    let backend = Backend::start();
    let routes = route(
        "gh",
        "/gh/*",
        &backend.url("/github"),
        verify("github", &[secret_value("k1", "gh-secret")]),
    );
    let gw = Gateway::start(config(&Opts::default(), &routes));
    let sig = sha256_header("gh-secret", BODY);
    let resp = post(
        gw.addr(),
        "/gh/org/repo/events?x=1",
        &[("x-hub-signature-256", &sig), ("x-github-delivery", "d-1")],
        BODY,
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let r = backend.single();
    assert_eq!(r.uri, "/github/org/repo/events?x=1");
    assert_eq!(r.header("x-webhook-provider").as_deref(), Some("github"));
    assert_eq!(r.header("x-webhook-route").as_deref(), Some("gh"));
    assert_eq!(r.header("x-webhook-key-id").as_deref(), Some("k1"));
    // A path outside the prefix is not routed.
    let resp = post(
        gw.addr(),
        "/ghx/org",
        &[("x-hub-signature-256", &sig)],
        BODY,
    )
    .await;
    assert_eq!(resp.status, 404);
}

/// The backend's status, headers and body come back to the sender.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_response_passed_back() {
    let backend = Backend::start_with(Behaviour {
        status: 201,
        headers: vec![
            ("x-backend".into(), "yes".into()),
            ("content-type".into(), "text/plain".into()),
        ],
        body: b"created by backend".to_vec(),
        delay: Duration::ZERO,
    });
    let gw = mc_gateway(&backend);
    let resp = post_mc(gw.addr(), "/webhooks/mediaconvert", SECRET, BODY).await;
    assert_eq!(resp.status, 201);
    assert_eq!(resp.header("x-backend").as_deref(), Some("yes"));
    assert_eq!(resp.header("content-type").as_deref(), Some("text/plain"));
    assert_eq!(resp.text(), "created by backend");

    backend.set(Behaviour {
        status: 500,
        headers: vec![],
        body: b"backend broke".to_vec(),
        delay: Duration::ZERO,
    });
    let resp = post_mc(gw.addr(), "/webhooks/mediaconvert", SECRET, BODY).await;
    assert_eq!(resp.status, 500, "backend 500 passed back as is");
    assert_eq!(resp.text(), "backend broke");
}

/// Inbound headers that look like trusted headers never reach the backend and are counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spoofed_trusted_headers_removed_and_counted() {
    let backend = Backend::start();
    let gw = mc_gateway(&backend);
    let before = gw.metric("hookgate_spoofed_headers_total", &[("route", "mc")]);
    assert_eq!(before, 0.0);
    let sig = sha256_header(SECRET, BODY);
    // Raw TCP so the header names go out exactly as written.
    let req = raw_post_bytes(
        "/webhooks/mediaconvert",
        &[
            ("Host", "localhost"),
            ("Connection", "close"),
            ("X-Webhook-Verified", "spoofed"),
            ("x_webhook_verified", "spoofed"),
            ("X-WEBHOOK-PROVIDER", "evil"),
            ("X-Webhook-Anything", "spoofed"),
            ("X-Webhook-Key-Id", "spoofed"),
            ("X-MediaConvert-Signature", &sig),
        ],
        BODY,
    );
    let resp = raw_request(gw.addr(), &req).expect("response");
    assert_eq!(resp.status, 200, "{}", resp.text());
    let r = backend.single();
    for (n, v) in &r.headers {
        assert!(
            v != "spoofed" && v != "evil",
            "spoofed header reached backend: {n}: {v}"
        );
        let norm = n.to_ascii_lowercase().replace('_', "-");
        if norm.starts_with("x-webhook-") {
            assert!(
                [
                    "x-webhook-verified",
                    "x-webhook-provider",
                    "x-webhook-route",
                    "x-webhook-key-id"
                ]
                .contains(&n.as_str()),
                "unexpected prefixed header at backend: {n}: {v}"
            );
        }
    }
    assert_eq!(r.all("x-webhook-verified"), vec!["true".to_string()]);
    assert_eq!(
        r.all("x-webhook-provider"),
        vec!["mediaconvert".to_string()]
    );
    assert_eq!(r.all("x-webhook-key-id"), vec!["current".to_string()]);
    let after = gw.wait_metric("hookgate_spoofed_headers_total", &[("route", "mc")], |v| {
        v > 0.0
    });
    assert!(
        after > before,
        "hookgate_spoofed_headers_total did not rise: {after}"
    );
}

/// A second (and third) secret verifies; Key-Id names it and key_matches counts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_rotation_reports_key_id() {
    let backend = Backend::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("older.secret");
    std::fs::write(&file, "rot-secret-older").unwrap();
    let env_var = format!("HOOKGATE_TEST_ROT_{}", std::process::id());
    let routes = route(
        "mc",
        "/webhooks/mediaconvert",
        &backend.url("/hooks/mc"),
        verify(
            "mediaconvert",
            &[
                secret_value("current", "rot-secret-current"),
                secret_env("previous", &env_var),
                secret_file("older", &file),
            ],
        ),
    );
    let gw = Gateway::start_with_env(
        config(&Opts::default(), &routes),
        &[(env_var.as_str(), "rot-secret-previous")],
    );
    for (secret, id) in [
        ("rot-secret-previous", "previous"),
        ("rot-secret-current", "current"),
        ("rot-secret-older", "older"),
        ("rot-secret-previous", "previous"),
    ] {
        backend.clear();
        let resp = post_mc(gw.addr(), "/webhooks/mediaconvert", secret, BODY).await;
        assert_eq!(resp.status, 200, "signed with {id}: {}", resp.text());
        assert_eq!(
            backend.single().header("x-webhook-key-id").as_deref(),
            Some(id)
        );
    }
    let labels = |id| [("route", "mc"), ("key_id", id)];
    assert_eq!(
        gw.wait_metric("hookgate_key_matches_total", &labels("previous"), |v| v
            >= 2.0),
        2.0
    );
    assert_eq!(
        gw.metric("hookgate_key_matches_total", &labels("current")),
        1.0
    );
    assert_eq!(
        gw.metric("hookgate_key_matches_total", &labels("older")),
        1.0
    );
    // A secret the route does not hold is refused.
    let resp = post_mc(
        gw.addr(),
        "/webhooks/mediaconvert",
        "rot-secret-unknown",
        BODY,
    )
    .await;
    assert_eq!(resp.status, 401);
}

/// `forward.attestation_secret` adds X-Webhook-Attestation, checked here independently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attestation_header_verifies() {
    let backend = Backend::start();
    let opts = Opts {
        attestation_secret: Some(secret_value("gw1", "attest-secret-xyz")),
        ..Opts::default()
    };
    let routes = route(
        "mc",
        "/webhooks/mediaconvert",
        &backend.url("/hooks/mc"),
        mc_verify(&[("current", SECRET), ("next", "fwd-secret-two")]),
    );
    let gw = Gateway::start(config(&opts, &routes));
    let before = unix_now();
    let resp = post_mc(gw.addr(), "/webhooks/mediaconvert", "fwd-secret-two", BODY).await;
    let after = unix_now();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let r = backend.single();
    let att = r
        .header("x-webhook-attestation")
        .expect("X-Webhook-Attestation");
    let (t, v1) = att
        .split_once(',')
        .and_then(|(t, v)| Some((t.strip_prefix("t=")?, v.strip_prefix("v1=")?)))
        .unwrap_or_else(|| panic!("attestation format: {att}"));
    let t: i64 = t.parse().expect("t is unix seconds");
    assert!(
        t >= before - 2 && t <= after + 2,
        "t={t} not within [{before},{after}]"
    );
    let msg = format!("{t}.POST.{}.{}.mediaconvert.next", r.uri, sha256_hex(BODY));
    let want = hex::encode(hmac_sha256(b"attest-secret-xyz", msg.as_bytes()));
    assert_eq!(v1, want, "attestation HMAC over {msg:?}");
    // A spoofed inbound attestation is stripped and replaced.
    backend.clear();
    let sig = sha256_header(SECRET, BODY);
    let resp = post(
        gw.addr(),
        "/webhooks/mediaconvert",
        &[
            ("x-mediaconvert-signature", &sig),
            ("x-webhook-attestation", "t=1,v1=00"),
        ],
        BODY,
    )
    .await;
    assert_eq!(resp.status, 200);
    let all = backend.single().all("x-webhook-attestation");
    assert_eq!(all.len(), 1, "{all:?}");
    assert_ne!(all[0], "t=1,v1=00");
}

/// Generic hmac scheme with hex and with base64 encoding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generic_hmac_hex_and_base64() {
    let backend = Backend::start();
    let hmac = |header: &str, prefix: &str, encoding: &str, secret: Value| {
        json!({
            "scheme": "hmac",
            "header": header,
            "prefix": prefix,
            "encoding": encoding,
            "algorithm": "sha256",
            "secrets": [secret],
        })
    };
    let routes = [
        route(
            "generic-hex",
            "/generic/hex",
            &backend.url("/in/hex"),
            hmac(
                "X-Signature",
                "sha256=",
                "hex",
                secret_value("g1", "generic-secret"),
            ),
        ),
        route(
            "generic-b64",
            "/generic/b64",
            &backend.url("/in/b64"),
            hmac(
                "X-Sig-B64",
                "v1=",
                "base64",
                secret_value("g2", "generic-secret-b64"),
            ),
        ),
    ];
    let gw = Gateway::start(config(&Opts::default(), &routes));

    let hex_sig = format!("sha256={}", sign_hex("generic-secret", BODY));
    let resp = post(
        gw.addr(),
        "/generic/hex",
        &[("X-Signature", &hex_sig)],
        BODY,
    )
    .await;
    assert_eq!(resp.status, 200, "hex: {}", resp.text());
    let r = backend.single();
    assert_eq!(r.uri, "/in/hex");
    assert_eq!(r.header("x-webhook-provider").as_deref(), Some("hmac"));
    assert_eq!(r.header("x-webhook-route").as_deref(), Some("generic-hex"));
    assert_eq!(r.header("x-webhook-key-id").as_deref(), Some("g1"));

    backend.clear();
    let b64_sig = format!("v1={}", sign_b64("generic-secret-b64", BODY));
    let resp = post(gw.addr(), "/generic/b64", &[("X-Sig-B64", &b64_sig)], BODY).await;
    assert_eq!(resp.status, 200, "base64: {}", resp.text());
    let r = backend.single();
    assert_eq!(r.uri, "/in/b64");
    assert_eq!(r.header("x-webhook-key-id").as_deref(), Some("g2"));
    assert_eq!(r.body, BODY);

    // Wrong encoding, wrong secret, missing prefix: all refused, nothing forwarded.
    backend.clear();
    let bad = [
        (
            "/generic/hex",
            "X-Signature",
            format!("sha256={}", sign_b64("generic-secret", BODY)),
        ),
        (
            "/generic/hex",
            "X-Signature",
            format!("sha256={}", sign_hex("other", BODY)),
        ),
        (
            "/generic/hex",
            "X-Signature",
            sign_hex("generic-secret", BODY),
        ),
        (
            "/generic/b64",
            "X-Sig-B64",
            format!("v1={}", sign_hex("generic-secret-b64", BODY)),
        ),
        (
            "/generic/b64",
            "X-Sig-B64",
            format!("v1={}", sign_b64("other", BODY)),
        ),
    ];
    for (path, h, v) in &bad {
        let resp = post(gw.addr(), path, &[(h, v)], BODY).await;
        assert_eq!(resp.status, 401, "{path} {h}: {v}");
        assert_eq!(resp.text(), INVALID_SIGNATURE);
    }
    assert!(backend.requests().is_empty());
}

/// The github delivery id appears in the request log line, with the other fields.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_delivery_id_logged() {
    let backend = Backend::start();
    let routes = route(
        "gh",
        "/github",
        &backend.url("/gh"),
        verify("github", &[secret_value("k1", "gh-log-secret")]),
    );
    let gw = Gateway::start(config(&Opts::default(), &routes));
    let sig = sha256_header("gh-log-secret", BODY);
    let delivery = "72d3162e-cc78-11e3-81ab-4c9367dc0958";
    let resp = post(
        gw.addr(),
        "/github",
        &[
            ("x-hub-signature-256", &sig),
            ("x-github-delivery", delivery),
            ("x-github-event", "push"),
        ],
        BODY,
    )
    .await;
    assert_eq!(resp.status, 200);
    let line = gw
        .wait_request_log(|v| v["delivery_id"] == delivery)
        .unwrap_or_else(|| {
            panic!(
                "no request log line with delivery_id; logs:\n{}",
                gw.logs().join("\n")
            )
        });
    assert_eq!(line["route"], "gh", "{line}");
    assert_eq!(line["outcome"], "forwarded", "{line}");
    assert_eq!(line["status"].as_u64(), Some(200), "{line}");
    assert_eq!(line["client_ip"], "127.0.0.1", "{line}");
    assert!(line["duration_ms"].is_number(), "duration_ms: {line}");
    // A forwarded request has no reason: the field is left out rather than empty.
    assert!(line.get("reason").is_none(), "reason field: {line}");

    // A rejected one is logged too, with its reason.
    let bad = sha256_header("wrong", BODY);
    let resp = post(
        gw.addr(),
        "/github",
        &[
            ("x-hub-signature-256", &bad),
            ("x-github-delivery", "d-rejected-1"),
        ],
        BODY,
    )
    .await;
    assert_eq!(resp.status, 401);
    let line = gw
        .wait_request_log(|v| v["outcome"] == "rejected")
        .unwrap_or_else(|| {
            panic!(
                "no rejected request log line; logs:\n{}",
                gw.logs().join("\n")
            )
        });
    assert_eq!(line["reason"], "mismatch", "{line}");
    assert_eq!(line["status"].as_u64(), Some(401), "{line}");
    assert_eq!(line["route"], "gh", "{line}");
}

/// Keep-alive: several requests on one connection are each verified and forwarded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_connection_serves_several_requests() {
    let backend = Backend::start();
    let gw = mc_gateway(&backend);
    assert_eq!(sequential(&gw, 3), vec![200; 3]);
    assert_eq!(backend.requests().len(), 3);
}

/// A custom `forward.header_prefix` renames the trusted headers and is what spoof removal uses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_header_prefix() {
    let backend = Backend::start();
    let opts = Opts {
        header_prefix: "X-Gate-".into(),
        ..Opts::default()
    };
    let routes = route(
        "mc",
        "/webhooks/mediaconvert",
        &backend.url("/hooks/mc"),
        mc_verify(&[("current", SECRET)]),
    );
    let gw = Gateway::start(config(&opts, &routes));
    let sig = sha256_header(SECRET, BODY);
    let resp = post(
        gw.addr(),
        "/webhooks/mediaconvert",
        &[
            ("x-mediaconvert-signature", &sig),
            ("x-gate-verified", "spoofed"),
            ("x_gate_route", "spoofed"),
        ],
        BODY,
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let r = backend.single();
    assert_eq!(r.all("x-gate-verified"), vec!["true".to_string()]);
    assert_eq!(r.all("x-gate-provider"), vec!["mediaconvert".to_string()]);
    assert_eq!(r.all("x-gate-route"), vec!["mc".to_string()]);
    assert_eq!(r.all("x-gate-key-id"), vec!["current".to_string()]);
    assert!(!r.has("x_gate_route"));
    assert!(!r.has("x-webhook-verified"), "old prefix still used");
    let n = gw.wait_metric("hookgate_spoofed_headers_total", &[("route", "mc")], |v| {
        v > 0.0
    });
    assert!(n > 0.0);
}

/// How the raw backend of the pool tests ends its answers.
#[derive(Clone, Copy)]
enum Answer {
    /// `Content-Length` body.
    Sized,
    /// `Content-Length: 0`: a body the gateway never has to read.
    Empty,
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// `Connection: close`, then closes.
    Close,
}

/// A keep-alive HTTP/1.1 backend that counts the connections it accepted and those the other
/// side closed.
async fn counting_backend(
    answer: Answer,
) -> (std::net::SocketAddr, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let conns = Arc::new(AtomicUsize::new(0));
    let closed = Arc::new(AtomicUsize::new(0));
    let (counter, closes) = (conns.clone(), closed.clone());
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let closes = closes.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    // One request: its head, then Content-Length bytes of body.
                    let head_end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        let mut chunk = [0u8; 4096];
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => {
                                closes.fetch_add(1, Ordering::SeqCst);
                                return;
                            }
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse().unwrap());
                    while buf.len() < head_end + len {
                        let mut chunk = [0u8; 4096];
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    buf.drain(..head_end + len);
                    let res: &[u8] = match answer {
                        Answer::Sized => b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
                        Answer::Empty => b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                        Answer::Chunked => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
                        Answer::Close => b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
                    };
                    if s.write_all(res).await.is_err() {
                        return;
                    }
                    if matches!(answer, Answer::Close) {
                        return;
                    }
                }
            });
        }
    });
    (addr, conns, closed)
}

/// A gateway with one worker (so one upstream pool) and the `mc` route to `addr`.
fn one_worker_gateway(addr: std::net::SocketAddr) -> Gateway {
    let routes = route(
        "mc",
        "/webhooks/mediaconvert",
        &format!("http://{addr}/hooks/mc"),
        mc_verify(&[("current", SECRET)]),
    );
    let opts = Opts {
        workers: 1,
        ..Opts::default()
    };
    Gateway::start(config(&opts, &routes))
}

/// Sends `n` requests one after another on one client connection; returns the statuses.
fn sequential(gw: &Gateway, n: usize) -> Vec<u16> {
    let mut s = connect(gw.addr());
    let mut statuses = Vec::new();
    for i in 0..n {
        let body = format!("{{\"n\":{i}}}");
        let sig = sha256_header(SECRET, body.as_bytes());
        let req = raw_post_bytes(
            "/webhooks/mediaconvert",
            &[("Host", "localhost"), ("X-MediaConvert-Signature", &sig)],
            body.as_bytes(),
        );
        s.write_all(&req).unwrap();
        statuses.push(read_response(&mut s, WAIT).expect("response").status);
    }
    statuses
}

/// Upstream connections are pooled: sequential requests share one, whether the backend's
/// answer has a sized, empty or chunked body; a backend that says `Connection: close` gets a
/// new connection for every request and none fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_connections_are_pooled_and_closed_ones_not_reused() {
    for (answer, name, expected) in [
        (Answer::Sized, "sized", 1),
        (Answer::Empty, "empty", 1),
        (Answer::Chunked, "chunked", 1),
        (Answer::Close, "close", 10),
    ] {
        let (addr, conns, _) = counting_backend(answer).await;
        let gw = one_worker_gateway(addr);
        assert_eq!(sequential(&gw, 10), vec![200; 10], "{name}");
        assert_eq!(conns.load(Ordering::SeqCst), expected, "{name}");
    }
}

/// A pooled upstream connection left idle is closed by hookgate after 4 s, not kept open until
/// the backend's own keep-alive timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_upstream_connections_are_closed() {
    let (addr, conns, closed) = counting_backend(Answer::Sized).await;
    let gw = one_worker_gateway(addr);
    assert_eq!(sequential(&gw, 2), vec![200; 2]);
    assert_eq!(conns.load(Ordering::SeqCst), 1);
    assert_eq!(closed.load(Ordering::SeqCst), 0, "pooled, not closed");
    // Idle for 4 s, then closed at the next sweep (every 4 s): well within 15 s.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while closed.load(Ordering::SeqCst) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "idle upstream connection never closed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(conns.load(Ordering::SeqCst), 1);
}
