//! `store.kind: redis`: several gateway processes share dedup and the route limit through one
//! Redis, and an unreachable Redis degrades as documented (dedup fails open, the route limit
//! goes local, `/readyz` answers 503) and recovers by itself.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::redis::RedisServer;
use crate::common::*;

const SECRET: &str = "fleet-secret";

/// A replica on `redis` with one route `mc` and its `extra` keys (`dedup`, `rate_limit`).
fn replica(redis: &RedisServer, backend: &Backend, extra: Value) -> Gateway {
    let opts = Opts {
        store: Some(redis.store()),
        ..Opts::default()
    };
    let routes = route(
        "mc",
        "/hooks/mc",
        &backend.url("/up"),
        mc_verify(&[("k1", SECRET)]),
    )
    .merge(extra);
    Gateway::start(config(&opts, &routes))
}

fn ready(gw: &Gateway) -> u16 {
    gw.admin_get("/readyz").status
}

/// Polls `/readyz` until it answers `want` (bounded).
fn wait_ready(gw: &Gateway, want: u16) {
    let deadline = Instant::now() + WAIT;
    while ready(gw) != want {
        assert!(Instant::now() < deadline, "/readyz never answered {want}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A copy that reaches another replica while the first is in flight gets 409; once the first
/// was delivered, any replica answers "duplicate"; the backend sees the event once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_on_another_replica_is_not_forwarded() {
    let redis = RedisServer::start();
    let backend = Backend::start();
    let a = replica(&redis, &backend, json!({"dedup": {"ttl": "1h"}}));
    let b = replica(&redis, &backend, json!({"dedup": {"ttl": "1h"}}));
    let c = replica(&redis, &backend, json!({"dedup": {"ttl": "1h"}}));
    assert_eq!(ready(&a), 200);

    let body = br#"{"job_id":"j1","status":"COMPLETE"}"#.to_vec();
    backend.hold();
    let first = {
        let (addr, body) = (a.addr(), body.clone());
        tokio::spawn(async move { post_mc(addr, "/hooks/mc", SECRET, &body).await })
    };
    assert!(
        backend.wait_count(1).await,
        "the first copy reached the backend"
    );
    let racing = post_mc(b.addr(), "/hooks/mc", SECRET, &body).await;
    assert_eq!(
        racing.status,
        409,
        "in flight on replica a: {}",
        racing.text()
    );
    backend.unhold();
    let first = first.await.expect("first copy");
    assert_eq!(first.status, 200);
    assert_eq!(first.text(), r#"{"received":true}"#);

    for gw in [&b, &c, &a] {
        let dup = post_mc(gw.addr(), "/hooks/mc", SECRET, &body).await;
        assert_eq!(dup.status, 200);
        assert_eq!(dup.text(), r#"{"status":"duplicate"}"#);
    }
    assert_eq!(backend.requests().len(), 1, "forwarded once by the fleet");
    assert_eq!(
        b.metric("hookgate_duplicates_total", &[("route", "mc")]),
        2.0
    );
    assert_eq!(
        c.metric("hookgate_duplicates_total", &[("route", "mc")]),
        1.0
    );
}

/// A first attempt the backend refused leaves no mark: the retry, on another replica, is
/// delivered (the claim was released by compare-and-delete).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_attempt_releases_the_claim_for_the_fleet() {
    let redis = RedisServer::start();
    let backend = Backend::start();
    let a = replica(&redis, &backend, json!({"dedup": {}}));
    let b = replica(&redis, &backend, json!({"dedup": {}}));
    let body = br#"{"job_id":"j2"}"#;
    backend.script(vec![Behaviour {
        status: 503,
        ..Behaviour::default()
    }]);
    let failed = post_mc(a.addr(), "/hooks/mc", SECRET, body).await;
    assert_eq!(failed.status, 503);
    // The release runs right after the answer: poll until the key is gone (bounded).
    let deadline = Instant::now() + WAIT;
    loop {
        let retry = post_mc(b.addr(), "/hooks/mc", SECRET, body).await;
        if retry.status == 200 && retry.text() == r#"{"received":true}"# {
            break;
        }
        assert_eq!(retry.status, 409, "{}", retry.text());
        assert!(Instant::now() < deadline, "the claim was never released");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(backend.requests().len(), 2);
}

/// The route limit is one bucket for the fleet: burst 3 across three replicas lets 3 requests
/// through in total, and each refusal is a 429 with the local limiter's `Retry-After`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_route_limit_holds_across_replicas() {
    let redis = RedisServer::start();
    let backend = Backend::start();
    let limit = || json!({"rate_limit": {"route": {"rate": "1/m", "burst": 3}}});
    let gws = [
        replica(&redis, &backend, limit()),
        replica(&redis, &backend, limit()),
        replica(&redis, &backend, limit()),
    ];
    let mut passed = 0;
    let mut refused = 0;
    for i in 0..9 {
        let gw = &gws[i % 3];
        let r = post_mc(
            gw.addr(),
            "/hooks/mc",
            SECRET,
            format!("{{\"n\":{i}}}").as_bytes(),
        )
        .await;
        match r.status {
            200 => passed += 1,
            429 => {
                refused += 1;
                let after: u64 = r
                    .header("retry-after")
                    .and_then(|v| v.parse().ok())
                    .expect("Retry-After");
                // One cell per minute: the next one is at most 60 s away.
                assert!((1..=60).contains(&after), "Retry-After {after}");
            }
            other => panic!("unexpected {other}: {}", r.text()),
        }
    }
    assert_eq!((passed, refused), (3, 6), "one bucket for the fleet");
    assert_eq!(backend.requests().len(), 3);
    let limited: f64 = gws
        .iter()
        .map(|g| {
            g.metric(
                "hookgate_rate_limited_total",
                &[("route", "mc"), ("scope", "route")],
            )
        })
        .sum();
    assert_eq!(limited, 6.0);
}

/// Redis killed and started again under load: no request fails with a 5xx, dedup fails open
/// (counted), the route limit falls back to the replica's own bucket, `/readyz` says 503, and
/// everything shared works again once Redis is back, without a restart of the gateway.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_outage_degrades_and_recovers() {
    let mut redis = RedisServer::start();
    let backend = Backend::start();
    let extra = json!({
        "dedup": {},
        "rate_limit": {"route": {"rate": "1/m", "burst": 1000}},
    });
    let gw = replica(&redis, &backend, extra);
    wait_ready(&gw, 200);

    // Background load: distinct events, as fast as one client sends them.
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (addr, stop) = (gw.addr(), stop.clone());
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let body = format!("{{\"load\":{n}}}");
                statuses.push(
                    post_mc(addr, "/hooks/mc", SECRET, body.as_bytes())
                        .await
                        .status,
                );
            }
            statuses
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;

    redis.stop();
    wait_ready(&gw, 503);
    // The same event twice while Redis is down: both forwarded (fail open), errors counted.
    let body = br#"{"outage":1}"#;
    for _ in 0..2 {
        let r = post_mc(gw.addr(), "/hooks/mc", SECRET, body).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), r#"{"received":true}"#);
    }
    assert!(gw.metric("hookgate_store_errors_total", &[("operation", "claim")]) >= 2.0);
    assert!(gw.metric("hookgate_store_errors_total", &[("operation", "limit")]) >= 2.0);
    assert!(gw.metric("hookgate_store_errors_total", &[("operation", "ping")]) >= 1.0);

    redis.restart();
    wait_ready(&gw, 200);
    stop.store(true, Ordering::Relaxed);
    let statuses = load.await.expect("load task");
    assert!(statuses.len() > 2, "the load ran: {}", statuses.len());
    assert!(
        statuses.iter().all(|&s| s == 200),
        "every load request forwarded, none refused: {statuses:?}"
    );

    // Shared again: a new event goes through once, its copy is a duplicate.
    let body = br#"{"after":1}"#;
    let first = post_mc(gw.addr(), "/hooks/mc", SECRET, body).await;
    assert_eq!(first.text(), r#"{"received":true}"#);
    let dup = post_mc(gw.addr(), "/hooks/mc", SECRET, body).await;
    assert_eq!(dup.text(), r#"{"status":"duplicate"}"#);
    assert!(
        gw.wait_exit(Duration::from_millis(10)).is_none(),
        "still running"
    );
}

/// While Redis is down the route limit is this replica's own bucket: burst 2 lets two through,
/// the third gets 429. Back up, the fleet bucket (fresh) decides again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_limit_falls_back_to_local_while_redis_is_down() {
    let mut redis = RedisServer::start();
    let backend = Backend::start();
    let gw = replica(
        &redis,
        &backend,
        json!({"rate_limit": {"route": {"rate": "1/m", "burst": 2}}}),
    );
    redis.stop();
    wait_ready(&gw, 503);
    let mut statuses = Vec::new();
    for i in 0..3 {
        let body = format!("{{\"n\":{i}}}");
        statuses.push(
            post_mc(gw.addr(), "/hooks/mc", SECRET, body.as_bytes())
                .await
                .status,
        );
    }
    assert_eq!(statuses, vec![200, 200, 429]);
    redis.restart();
    wait_ready(&gw, 200);
    let r = post_mc(gw.addr(), "/hooks/mc", SECRET, b"{\"n\":9}").await;
    assert_eq!(r.status, 200, "the fleet bucket is used again");
}

/// A gateway whose Redis is down at start-up starts anyway, unready, and becomes ready when
/// Redis comes up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_unready_without_redis() {
    let mut redis = RedisServer::start();
    redis.stop();
    let backend = Backend::start();
    let gw = replica(&redis, &backend, json!({"dedup": {}}));
    assert_eq!(ready(&gw), 503);
    redis.restart();
    wait_ready(&gw, 200);
}

/// `rediss://`: the store talks TLS (rustls with ring) to a Redis that speaks only TLS, trusting
/// the certificate through the system roots' `SSL_CERT_FILE`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_url_connects_over_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (crt, key) = tls::TestCert::generate().write_to(dir.path());
    let redis = RedisServer::start_tls(crt.clone(), key);
    assert!(redis.url().starts_with("rediss://"));
    let backend = Backend::start();
    let opts = Opts {
        store: Some(redis.store()),
        ..Opts::default()
    };
    let routes = route(
        "mc",
        "/hooks/mc",
        &backend.url("/up"),
        mc_verify(&[("k1", SECRET)]),
    )
    .with("dedup", json!({}));
    let yaml = config(&opts, &routes);
    let crt = crt.to_str().expect("utf-8 path");
    let a = Gateway::start_with_env(&yaml, &[("SSL_CERT_FILE", crt)]);
    let b = Gateway::start_with_env(&yaml, &[("SSL_CERT_FILE", crt)]);
    wait_ready(&a, 200);
    let body = br#"{"tls":1}"#;
    assert_eq!(
        post_mc(a.addr(), "/hooks/mc", SECRET, body).await.text(),
        r#"{"received":true}"#
    );
    assert_eq!(
        post_mc(b.addr(), "/hooks/mc", SECRET, body).await.text(),
        r#"{"status":"duplicate"}"#
    );
    // Without the certificate trusted, the handshake fails: unready, dedup fails open.
    let untrusted = Gateway::start(&yaml);
    assert_eq!(ready(&untrusted), 503);
}

/// A Redis that accepts connections but never answers (a hung server, a black-holed network):
/// every command gives up after its timeout, so requests are still answered, promptly, and
/// `/readyz` says 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_never_answers_costs_a_bounded_wait() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in silent.incoming() {
            match conn {
                Ok(c) => held.push(c),
                Err(_) => break,
            }
        }
    });
    let backend = Backend::start();
    let opts = Opts {
        store: Some(json!({"kind": "redis", "url": format!("redis://127.0.0.1:{port}/0")})),
        ..Opts::default()
    };
    let routes = route(
        "mc",
        "/hooks/mc",
        &backend.url("/up"),
        mc_verify(&[("k1", SECRET)]),
    )
    .merge(json!({
        "dedup": {},
        "rate_limit": {"route": {"rate": "10/s", "burst": 10}},
    }));
    let gw = Gateway::start(config(&opts, &routes));
    assert_eq!(ready(&gw), 503);
    let started = Instant::now();
    let r = post_mc(gw.addr(), "/hooks/mc", SECRET, b"{\"hung\":1}").await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Two commands (limit, claim), each bounded by 500 ms to connect and 500 ms to answer
    // (measured: about 2.3 s in all).
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(backend.requests().len(), 1);
    assert!(gw.metric("hookgate_store_errors_total", &[("operation", "claim")]) >= 1.0);
}
