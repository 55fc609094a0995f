//! Rate limits through the real binary: per-IP before the body, per-route after verification,
//! `Retry-After`, client addresses from trusted proxies only, and the key cap.
//!
//! Rates are low (`1/m`) so a refill cannot happen while a test runs; exact timing is covered
//! by the unit tests with a fake clock.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::common::*;

const SECRET: &str = "limit-secret";
const BODY: &[u8] = br#"{"job_id":"job_lim","status":"completed"}"#;
const PATH: &str = "/webhooks/mediaconvert";

/// One mediaconvert route `mc` with `rate_limit`.
fn gateway(opts: &Opts, backend: &Backend, rate_limit: Value) -> Gateway {
    let routes = route(
        "mc",
        PATH,
        &backend.url("/hooks/mc"),
        mc_verify(&[("current", SECRET)]),
    )
    .with("rate_limit", rate_limit);
    Gateway::start(config(opts, &routes))
}

/// A signed POST with extra headers (e.g. `X-Forwarded-For`).
async fn post_signed(gw: &Gateway, extra: &[(&str, &str)]) -> Resp {
    let sig = sha256_header(SECRET, BODY);
    let mut headers = vec![
        ("content-type", "application/json"),
        ("x-mediaconvert-signature", sig.as_str()),
    ];
    headers.extend_from_slice(extra);
    post(gw.addr(), PATH, &headers, BODY).await
}

/// A 429 as the sender sees it: `Retry-After` in whole seconds, the same number in the body.
fn assert_429(resp: &Resp, what: &str) -> u64 {
    assert_eq!(resp.status, 429, "{what}: {}", resp.text());
    let retry: u64 = resp
        .header("retry-after")
        .unwrap_or_else(|| panic!("{what}: no Retry-After"))
        .parse()
        .unwrap_or_else(|e| panic!("{what}: Retry-After not whole seconds: {e}"));
    let body: serde_json::Value = serde_json::from_slice(&resp.body).expect("429 body is JSON");
    assert_eq!(
        body,
        serde_json::json!({"error": "rate limited", "retry_after": retry}),
        "{what}"
    );
    retry
}

/// `1/m` with burst 2: two pass, the third is 429 with `Retry-After: 60` (59 only if a whole
/// second passed between the requests), nothing of it reaches the backend, and it is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_ip_burst_then_429_with_retry_after() {
    let backend = Backend::start();
    let gw = gateway(
        &Opts::default(),
        &backend,
        json!({"per_ip": {"rate": "1/m", "burst": 2}}),
    );
    let started = Instant::now();
    assert_eq!(post_signed(&gw, &[]).await.status, 200);
    assert_eq!(post_signed(&gw, &[]).await.status, 200);
    let third = post_signed(&gw, &[]).await;
    let retry = assert_429(&third, "third request");
    let elapsed = started.elapsed().as_secs();
    assert!(
        retry <= 60 && retry + elapsed + 1 >= 60,
        "Retry-After {retry} after {elapsed}s"
    );
    assert_eq!(
        third.header("connection").as_deref(),
        Some("close"),
        "a per-IP refusal closes the connection"
    );
    assert_eq!(backend.requests().len(), 2);
    assert_eq!(
        gw.wait_metric(
            "hookgate_rate_limited_total",
            &[("route", "mc"), ("scope", "ip")],
            |v| v >= 1.0
        ),
        1.0
    );
    assert_eq!(
        gw.metric(
            "hookgate_requests_total",
            &[
                ("route", "mc"),
                ("outcome", "rejected"),
                ("reason", "rate_limited_ip")
            ]
        ),
        1.0
    );
    let log = gw
        .wait_request_log(|v| v["reason"] == "rate_limited_ip")
        .expect("a request log line for the 429");
    assert_eq!(log["status"], 429);
    assert_eq!(log["client_ip"], "127.0.0.1");
}

/// The per-IP limit answers before the body is read: an unsigned request gets 429 (not 401),
/// and a request whose declared body never arrives gets 429 at once instead of waiting for
/// `body_timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_ip_limit_comes_before_body_and_signature() {
    let backend = Backend::start();
    let opts = Opts {
        body_timeout: "10s".into(),
        ..Opts::default()
    };
    let gw = gateway(
        &opts,
        &backend,
        json!({"per_ip": {"rate": "1/m", "burst": 1}}),
    );
    assert_eq!(post_signed(&gw, &[]).await.status, 200);

    let unsigned = post(gw.addr(), PATH, &[], b"not even signed").await;
    assert_429(&unsigned, "unsigned request over the limit");

    let mut s = connect(gw.addr());
    let head = format!(
        "POST {PATH} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n",
        gw.addr()
    );
    s.write_all(head.as_bytes()).expect("write head");
    let asked = Instant::now();
    let resp = read_response(&mut s, Duration::from_secs(5)).expect("a response without a body");
    assert_eq!(resp.status, 429);
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "answered without waiting for the body"
    );
    assert_eq!(backend.requests().len(), 1);
    assert_eq!(
        gw.metric("hookgate_verify_failures_total", &[("route", "mc")]),
        0.0,
        "nothing was verified"
    );
}

/// The route limit counts verified requests only: unsigned ones (401) do not use it up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_limit_counts_only_verified_requests() {
    let backend = Backend::start();
    let gw = gateway(
        &Opts::default(),
        &backend,
        json!({"route": {"rate": "1/m", "burst": 2}}),
    );
    for _ in 0..5 {
        let r = post(
            gw.addr(),
            PATH,
            &[("x-mediaconvert-signature", "sha256=00")],
            BODY,
        )
        .await;
        assert_eq!(r.status, 401);
    }
    assert_eq!(post_signed(&gw, &[]).await.status, 200);
    assert_eq!(post_signed(&gw, &[]).await.status, 200);
    let third = post_signed(&gw, &[]).await;
    let retry = assert_429(&third, "third verified request");
    assert!((58..=60).contains(&retry), "Retry-After {retry}");
    assert_eq!(
        third.header("connection"),
        None,
        "the body was read: the connection stays usable"
    );
    assert_eq!(backend.requests().len(), 2);
    assert_eq!(
        gw.wait_metric(
            "hookgate_rate_limited_total",
            &[("route", "mc"), ("scope", "route")],
            |v| v >= 1.0
        ),
        1.0
    );
    assert_eq!(
        gw.metric(
            "hookgate_rate_limited_total",
            &[("route", "mc"), ("scope", "ip")]
        ),
        0.0
    );
}

/// Behind a trusted proxy (127.0.0.0/8 here), the `X-Forwarded-For` hop decides the bucket:
/// read from the right, the first untrusted address is the client, so a spoofed left part
/// changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_proxy_xff_decides_the_bucket() {
    let backend = Backend::start();
    let opts = Opts {
        trusted_proxies: vec!["127.0.0.0/8".into()],
        ..Opts::default()
    };
    let gw = gateway(
        &opts,
        &backend,
        json!({"per_ip": {"rate": "1/m", "burst": 1}}),
    );
    let xff = |v: &'static str| [("x-forwarded-for", v)];
    assert_eq!(post_signed(&gw, &xff("203.0.113.1")).await.status, 200);
    assert_429(&post_signed(&gw, &xff("203.0.113.1")).await, "same client");
    assert_eq!(post_signed(&gw, &xff("203.0.113.2")).await.status, 200);
    // A spoofed address on the left, the real client appended by the proxy on the right.
    assert_429(
        &post_signed(&gw, &xff("198.51.100.77, 203.0.113.1")).await,
        "spoofed left part",
    );
    // A chain of trusted hops is walked through to the client.
    assert_429(
        &post_signed(&gw, &xff("203.0.113.2, 127.0.0.9")).await,
        "trusted hop skipped",
    );
    // Without the header the peer itself (the proxy) is the client: a bucket of its own.
    assert_eq!(post_signed(&gw, &[]).await.status, 200);
    assert_eq!(backend.requests().len(), 3);
    let log = gw
        .wait_request_log(|v| v["client_ip"] == "203.0.113.2" && v["status"] == 200)
        .expect("log line names the forwarded client");
    assert_eq!(log["outcome"], "forwarded");
}

/// From an untrusted peer, `X-Forwarded-For` is ignored: every request counts against the
/// peer's own address whatever the header says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_peer_xff_is_ignored() {
    let backend = Backend::start();
    let gw = gateway(
        &Opts::default(),
        &backend,
        json!({"per_ip": {"rate": "1/m", "burst": 1}}),
    );
    let first = post_signed(&gw, &[("x-forwarded-for", "203.0.113.1")]).await;
    assert_eq!(first.status, 200);
    for spoof in ["203.0.113.2", "198.51.100.1, 203.0.113.3", "::1"] {
        assert_429(
            &post_signed(&gw, &[("x-forwarded-for", spoof)]).await,
            spoof,
        );
    }
    let logs = gw.request_logs();
    assert!(!logs.is_empty());
    for log in &logs {
        assert_eq!(log["client_ip"], "127.0.0.1", "{log}");
    }
    assert_eq!(backend.requests().len(), 1);
}

/// `max_keys: 2`: two addresses get buckets of their own; every further address shares one
/// overflow bucket, while the tracked ones keep theirs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_cap_puts_new_addresses_in_one_shared_bucket() {
    let backend = Backend::start();
    let opts = Opts {
        trusted_proxies: vec!["127.0.0.0/8".into()],
        ..Opts::default()
    };
    let gw = gateway(
        &opts,
        &backend,
        json!({"per_ip": {"rate": "1/m", "burst": 1, "max_keys": 2}}),
    );
    let from = |ip: &'static str| [("x-forwarded-for", ip)];
    assert_eq!(post_signed(&gw, &from("192.0.2.1")).await.status, 200);
    assert_eq!(post_signed(&gw, &from("192.0.2.2")).await.status, 200);
    // Third address: the overflow bucket's one cell.
    assert_eq!(post_signed(&gw, &from("192.0.2.3")).await.status, 200);
    for ip in ["192.0.2.4", "192.0.2.5", "2001:db8::1"] {
        assert_429(&post_signed(&gw, &from(ip)).await, ip);
    }
    // Tracked addresses still have buckets of their own (empty now, so 429, not overflow).
    assert_429(&post_signed(&gw, &from("192.0.2.1")).await, "tracked");
    assert_eq!(backend.requests().len(), 3);
}

/// Both limits on one route: per-IP first, the route's own after verification.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_limits_on_one_route() {
    let backend = Backend::start();
    let opts = Opts {
        trusted_proxies: vec!["127.0.0.0/8".into()],
        ..Opts::default()
    };
    let gw = gateway(
        &opts,
        &backend,
        json!({"per_ip": {"rate": "1/m", "burst": 2}, "route": {"rate": "1/m", "burst": 3}}),
    );
    let from = |ip: &'static str| [("x-forwarded-for", ip)];
    assert_eq!(post_signed(&gw, &from("192.0.2.1")).await.status, 200);
    assert_eq!(post_signed(&gw, &from("192.0.2.1")).await.status, 200);
    assert_429(&post_signed(&gw, &from("192.0.2.1")).await, "per-IP");
    assert_eq!(post_signed(&gw, &from("192.0.2.2")).await.status, 200);
    assert_429(&post_signed(&gw, &from("192.0.2.3")).await, "route");
    let m = |scope| {
        gw.metric(
            "hookgate_rate_limited_total",
            &[("route", "mc"), ("scope", scope)],
        )
    };
    assert_eq!((m("ip"), m("route")), (1.0, 1.0));
}

/// Over HTTP/2 (h2c) the same 429 and `Retry-After` arrive; the connection header of the
/// HTTP/1 answer has no place there and must not break the response.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_ip_429_over_h2c() {
    let backend = Backend::start();
    let gw = gateway(
        &Opts::default(),
        &backend,
        json!({"per_ip": {"rate": "1/m", "burst": 1}}),
    );
    let sig = sha256_header(SECRET, BODY);
    let headers = [("x-mediaconvert-signature", sig.as_str())];
    let first = send_h2(gw.addr(), "POST", PATH, &headers, BODY)
        .await
        .expect("h2c request");
    assert_eq!(first.status, 200);
    let second = send_h2(gw.addr(), "POST", PATH, &headers, BODY)
        .await
        .expect("h2c request");
    assert_429(&second, "h2c");
    assert_eq!(backend.requests().len(), 1);
}

/// A reload keeps the buckets of a route whose limits did not change (no fresh burst for
/// anyone), and starts fresh ones when the limits change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buckets_survive_a_reload_unless_the_limits_change() {
    let backend = Backend::start();
    let yaml = |burst: u32| {
        let routes = route(
            "mc",
            PATH,
            &backend.url("/hooks/mc"),
            mc_verify(&[("current", SECRET)]),
        )
        .with(
            "rate_limit",
            json!({"per_ip": {"rate": "1/m", "burst": burst}}),
        );
        config(&Opts::default(), &routes).with("reload", json!({"watch": false}))
    };
    let gw = Gateway::start(yaml(1));
    assert_eq!(post_signed(&gw, &[]).await.status, 200);
    assert_429(&post_signed(&gw, &[]).await, "before the reload");

    gw.sighup();
    let reloads = |n: f64| {
        gw.wait_metric("hookgate_config_reloads_total", &[("result", "ok")], |v| {
            v >= n
        })
    };
    assert_eq!(reloads(1.0), 1.0, "{}", gw.all_output());
    assert_429(&post_signed(&gw, &[]).await, "same limits after a reload");

    std::fs::write(gw.config_file(), yaml(2).config_text()).unwrap();
    gw.sighup();
    assert_eq!(reloads(2.0), 2.0, "{}", gw.all_output());
    assert_eq!(post_signed(&gw, &[]).await.status, 200);
    assert_eq!(post_signed(&gw, &[]).await.status, 200);
    assert_429(&post_signed(&gw, &[]).await, "new limits, used up");
}
