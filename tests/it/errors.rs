//! Every refusal on the request path: status, body, nothing forwarded, counted.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::common::*;

const SECRET: &str = "err-secret-one";
const BODY: &[u8] = br#"{"job_id":"job_err","status":"failed"}"#;

/// One mediaconvert route `mc` with the given server options and upstream.
fn gateway(opts: &Opts, upstream: &str, timeout: &str) -> Gateway {
    let routes = route_with_timeout(
        "mc",
        "/webhooks/mediaconvert",
        upstream,
        timeout,
        mc_verify(&[("current", SECRET)]),
    );
    Gateway::start(config(opts, &routes))
}

/// Unknown path: 404 `{"error":"not found"}`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_path_is_404() {
    let backend = Backend::start();
    let gw = gateway(&Opts::default(), &backend.url("/hooks/mc"), "2s");
    for path in ["/nope", "/webhooks/mediaconvert/extra", "/webhooks", "/"] {
        let resp = post_mc(gw.addr(), path, SECRET, BODY).await;
        assert_eq!(resp.status, 404, "{path}");
        let v: serde_json::Value = serde_json::from_slice(&resp.body).expect("404 body is JSON");
        assert_eq!(v, serde_json::json!({"error": "not found"}), "{path}");
    }
    // Any method on an unknown path is 404, not 405.
    let resp = send(gw.addr(), "GET", "/nope", &[], b"").await;
    assert_eq!(resp.status, 404);
    assert!(backend.requests().is_empty());
}

/// A known path with another method: 405 with `Allow: POST`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_post_is_405_with_allow() {
    let backend = Backend::start();
    let gw = gateway(&Opts::default(), &backend.url("/hooks/mc"), "2s");
    for method in ["GET", "PUT", "DELETE", "PATCH"] {
        let resp = send(gw.addr(), method, "/webhooks/mediaconvert", &[], b"").await;
        assert_eq!(resp.status, 405, "{method}");
        assert_eq!(resp.header("allow").as_deref(), Some("POST"), "{method}");
    }
    assert!(backend.requests().is_empty());
}

/// Content-Length over max_body_bytes: 413 without waiting for the body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_body_too_large_is_413() {
    let backend = Backend::start();
    let opts = Opts {
        max_body_bytes: "1KiB".into(),
        ..Opts::default()
    };
    let gw = gateway(&opts, &backend.url("/hooks/mc"), "2s");
    let sig = sha256_header(SECRET, BODY);
    // Declares 2 MB, sends none of it.
    let head = format!(
        "POST /webhooks/mediaconvert HTTP/1.1\r\nHost: localhost\r\nX-MediaConvert-Signature: {sig}\r\nContent-Length: 2000000\r\n\r\n"
    );
    let started = Instant::now();
    let resp = raw_request(gw.addr(), head.as_bytes()).expect("response to oversize declaration");
    assert_eq!(resp.status, 413);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "413 took {:?}",
        started.elapsed()
    );

    // Exactly at the cap is accepted; one byte over is refused.
    let at_cap = vec![b'a'; 1024];
    assert_eq!(
        post_mc(gw.addr(), "/webhooks/mediaconvert", SECRET, &at_cap)
            .await
            .status,
        200
    );
    let over = vec![b'a'; 1025];
    assert_eq!(
        post_mc(gw.addr(), "/webhooks/mediaconvert", SECRET, &over)
            .await
            .status,
        413
    );
    assert_eq!(backend.requests().len(), 1);
}

/// A chunked body that streams past the cap: 413 arrives while the sender is still sending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_body_too_large_is_413() {
    let backend = Backend::start();
    let opts = Opts {
        max_body_bytes: "1KiB".into(),
        ..Opts::default()
    };
    let gw = gateway(&opts, &backend.url("/hooks/mc"), "2s");
    let mut s = connect(gw.addr());
    s.write_all(
        b"POST /webhooks/mediaconvert HTTP/1.1\r\nHost: localhost\r\nX-MediaConvert-Signature: sha256=00\r\nTransfer-Encoding: chunked\r\n\r\n",
    )
    .unwrap();
    // 4 x 512 bytes = 2 KiB past a 1 KiB cap, and no terminating chunk.
    let chunk = [b'x'; 512];
    for _ in 0..4 {
        let mut c = format!("{:x}\r\n", chunk.len()).into_bytes();
        c.extend_from_slice(&chunk);
        c.extend_from_slice(b"\r\n");
        if s.write_all(&c).is_err() {
            break; // the gateway may already have answered and closed
        }
    }
    let resp = read_response(&mut s, WAIT).expect("413 response to an oversize chunked body");
    assert_eq!(resp.status, 413);
    assert!(backend.requests().is_empty());
}

/// A body that stalls: 408 after body_timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_body_is_408() {
    let backend = Backend::start();
    let opts = Opts {
        body_timeout: "1s".into(),
        header_timeout: "5s".into(),
        ..Opts::default()
    };
    let gw = gateway(&opts, &backend.url("/hooks/mc"), "2s");
    let mut s = connect(gw.addr());
    s.write_all(
        b"POST /webhooks/mediaconvert HTTP/1.1\r\nHost: localhost\r\nX-MediaConvert-Signature: sha256=00\r\nContent-Length: 100\r\n\r\n0123456789",
    )
    .unwrap();
    let started = Instant::now();
    let resp = read_response(&mut s, WAIT).expect("408 response to a stalled body");
    let took = started.elapsed();
    assert_eq!(resp.status, 408);
    assert!(
        took >= Duration::from_millis(800),
        "408 came too early: {took:?}"
    );
    assert!(took < Duration::from_secs(6), "408 came too late: {took:?}");
    assert!(backend.requests().is_empty());
}

/// Nothing listens at the upstream: 502.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_refused_is_502() {
    let port = dead_port();
    let gw = gateway(
        &Opts::default(),
        &format!("http://127.0.0.1:{port}/hooks/mc"),
        "2s",
    );
    let resp = post_mc(gw.addr(), "/webhooks/mediaconvert", SECRET, BODY).await;
    assert_eq!(resp.status, 502);
    let line = gw
        .wait_request_log(|v| v["status"].as_u64() == Some(502))
        .unwrap_or_else(|| panic!("no request log line for 502:\n{}", gw.logs().join("\n")));
    assert_eq!(line["outcome"], "failed", "{line}");
    let failed = gw.wait_metric(
        "hookgate_requests_total",
        &[("route", "mc"), ("outcome", "failed")],
        |v| v >= 1.0,
    );
    assert_eq!(failed, 1.0);
}

/// The backend is slower than the route timeout: 504, in about the timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_timeout_is_504() {
    let backend = Backend::start_with(Behaviour {
        delay: Duration::from_secs(5),
        ..Behaviour::default()
    });
    let gw = gateway(&Opts::default(), &backend.url("/hooks/mc"), "500ms");
    let started = Instant::now();
    let resp = post_mc(gw.addr(), "/webhooks/mediaconvert", SECRET, BODY).await;
    let took = started.elapsed();
    assert_eq!(resp.status, 504);
    assert!(
        took >= Duration::from_millis(400),
        "504 too early: {took:?}"
    );
    assert!(took < Duration::from_secs(4), "504 too late: {took:?}");
    assert_eq!(
        backend.requests().len(),
        1,
        "the backend did get the request"
    );
}

/// Missing, malformed and mismatching signatures: 401 with the exact body, nothing
/// forwarded, counted by reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signature_failures_are_401_and_counted() {
    let backend = Backend::start();
    let gw = gateway(&Opts::default(), &backend.url("/hooks/mc"), "2s");
    let good = sign_hex(SECRET, BODY);
    let cases: Vec<(&str, Option<String>)> = vec![
        ("missing_header", None),
        ("malformed_header", Some("sha256=not-hex".into())),
        (
            "malformed_header",
            Some(format!("sha256={}", good.to_uppercase())),
        ),
        ("malformed_header", Some(good.clone())),
        ("mismatch", Some(sha256_header("some-other-secret", BODY))),
        ("mismatch", Some(sha256_header(SECRET, b"a different body"))),
    ];
    for (reason, sig) in &cases {
        let mut headers = vec![("content-type", "application/json")];
        if let Some(s) = sig {
            headers.push(("x-mediaconvert-signature", s.as_str()));
        }
        let resp = post(gw.addr(), "/webhooks/mediaconvert", &headers, BODY).await;
        assert_eq!(resp.status, 401, "{reason} {sig:?}");
        assert_eq!(
            resp.text(),
            INVALID_SIGNATURE,
            "{reason}: body must be exactly this"
        );
        assert_eq!(resp.header("www-authenticate"), None);
    }
    assert!(
        backend.requests().is_empty(),
        "rejected requests reached the backend"
    );

    let want = [
        ("missing_header", 1.0),
        ("malformed_header", 3.0),
        ("mismatch", 2.0),
    ];
    for (reason, n) in want {
        let got = gw.wait_metric(
            "hookgate_verify_failures_total",
            &[("route", "mc"), ("reason", reason)],
            |v| v >= n,
        );
        assert_eq!(got, n, "hookgate_verify_failures_total reason={reason}");
        let got = gw.wait_metric(
            "hookgate_requests_total",
            &[("route", "mc"), ("outcome", "rejected"), ("reason", reason)],
            |v| v >= n,
        );
        assert_eq!(
            got, n,
            "hookgate_requests_total outcome=rejected reason={reason}"
        );
    }
    // A good one afterwards is still forwarded and counted.
    let resp = post_mc(gw.addr(), "/webhooks/mediaconvert", SECRET, BODY).await;
    assert_eq!(resp.status, 200);
    let fwd = gw.wait_metric(
        "hookgate_requests_total",
        &[("route", "mc"), ("outcome", "forwarded")],
        |v| v >= 1.0,
    );
    assert_eq!(fwd, 1.0);
}

/// A route refusal is logged once with outcome rejected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejection_logged_once() {
    let backend = Backend::start();
    let gw = gateway(&Opts::default(), &backend.url("/hooks/mc"), "2s");
    let resp = post(
        gw.addr(),
        "/webhooks/mediaconvert",
        &[("x-mediaconvert-signature", "sha256=zz")],
        BODY,
    )
    .await;
    assert_eq!(resp.status, 401);
    let line = gw
        .wait_request_log(|v| v["status"].as_u64() == Some(401))
        .unwrap_or_else(|| panic!("no request log line for 401:\n{}", gw.logs().join("\n")));
    assert_eq!(line["outcome"], "rejected");
    assert_eq!(line["reason"], "malformed_header");
    assert_eq!(line["route"], "mc");
    // Exactly one line for that one request.
    let n = gw
        .request_logs()
        .iter()
        .filter(|v| v["status"].as_u64() == Some(401))
        .count();
    assert_eq!(n, 1, "request log lines for one refused request");
}
