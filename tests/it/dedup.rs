//! Dedup: duplicates are answered without reaching the backend, a copy that races the first
//! gets 409, and only a delivered event makes later copies duplicates.

use std::time::Duration;

use crate::common::*;

const SECRET: &str = "dedup-secret";

/// A mediaconvert route at /hooks/NAME with `extra` keys (e.g. `dedup`).
fn mc_route(name: &str, backend: &Backend, extra: Value) -> Value {
    route(
        name,
        &format!("/hooks/{name}"),
        &backend.url("/up"),
        mc_verify(&[("k1", SECRET)]),
    )
    .merge(extra)
}

fn start(routes: impl Routes) -> Gateway {
    Gateway::start(config(&Opts::default(), routes))
}

fn ids(backend: &Backend) -> Vec<String> {
    backend
        .requests()
        .iter()
        .map(|r| r.header("x-webhook-id").unwrap_or_default())
        .collect()
}

/// The default key of a scheme without a delivery id is the body's SHA-256; the second copy is
/// answered 200 `{"status":"duplicate"}` and never forwarded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_is_answered_and_not_forwarded() {
    let backend = Backend::start();
    let gw = start(mc_route("mc", &backend, json!({"dedup": {}})));
    let body = br#"{"job_id":"j1","status":"COMPLETE"}"#;
    let first = post_mc(gw.addr(), "/hooks/mc", SECRET, body).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.text(), r#"{"received":true}"#, "the backend's answer");
    let second = post_mc(gw.addr(), "/hooks/mc", SECRET, body).await;
    assert_eq!(second.status, 200);
    assert_eq!(second.text(), r#"{"status":"duplicate"}"#);
    assert_eq!(
        ids(&backend),
        vec![sha256_hex(body)],
        "forwarded once, with X-Webhook-Id"
    );
    // Another body is another event.
    let other = post_mc(gw.addr(), "/hooks/mc", SECRET, br#"{"job_id":"j2"}"#).await;
    assert_eq!(other.text(), r#"{"received":true}"#);
    assert_eq!(backend.requests().len(), 2);

    assert_eq!(
        gw.metric("hookgate_duplicates_total", &[("route", "mc")]),
        1.0
    );
    assert_eq!(
        gw.metric(
            "hookgate_requests_total",
            &[
                ("route", "mc"),
                ("outcome", "duplicate"),
                ("reason", "delivered")
            ]
        ),
        1.0
    );
    let log = gw
        .wait_request_log(|l| l["outcome"] == "duplicate")
        .expect("duplicate log line");
    assert_eq!(log["dedup_key"], sha256_hex(body).as_str());
    assert_eq!(log["status"], 200);
}

/// Without `dedup:` nothing is deduplicated and no X-Webhook-Id is sent; a sender's own
/// X-Webhook-Id never reaches the backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dedup_is_off_unless_configured_and_the_id_cannot_be_spoofed() {
    let backend = Backend::start();
    let gw = start([
        mc_route("plain", &backend, Value::Null),
        mc_route(
            "dd",
            &backend,
            json!({"dedup": {"key": "{header.X-Event-Id}"}}),
        ),
    ]);
    let body = br#"{"a":1}"#;
    for _ in 0..2 {
        let r = post_mc(gw.addr(), "/hooks/plain", SECRET, body).await;
        assert_eq!(r.text(), r#"{"received":true}"#);
    }
    assert_eq!(backend.requests().len(), 2);
    assert!(backend.requests().iter().all(|r| !r.has("x-webhook-id")));

    let sig = sha256_header(SECRET, body);
    let r = post(
        gw.addr(),
        "/hooks/dd",
        &[
            ("x-mediaconvert-signature", &sig),
            ("x-event-id", "evt-1"),
            ("x-webhook-id", "forged"),
        ],
        body,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(backend.requests()[2].all("x-webhook-id"), vec!["evt-1"]);
}

/// `{body./pointer}` templates: the same job and status is the same event, whatever else
/// the body says; the key is what the backend gets as X-Webhook-Id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_template_from_body_fields() {
    let backend = Backend::start();
    let gw = start(mc_route(
        "mc",
        &backend,
        json!({"dedup": {"key": "{body./job_id}:{body./status}", "ttl": "1h"}}),
    ));
    let a = br#"{"job_id":"j9","status":"DONE","at":1}"#;
    let b = br#"{"at":2,"status":"DONE","job_id":"j9"}"#;
    let c = br#"{"job_id":"j9","status":"ERROR"}"#;
    assert_eq!(post_mc(gw.addr(), "/hooks/mc", SECRET, a).await.status, 200);
    let dup = post_mc(gw.addr(), "/hooks/mc", SECRET, b).await;
    assert_eq!(dup.text(), r#"{"status":"duplicate"}"#);
    assert_eq!(post_mc(gw.addr(), "/hooks/mc", SECRET, c).await.status, 200);
    assert_eq!(ids(&backend), vec!["j9:DONE", "j9:ERROR"]);
}

/// GitHub's X-GitHub-Delivery is the default key: a redelivery with the same id is a
/// duplicate even if the body changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_key_is_the_scheme_delivery_id() {
    let backend = Backend::start();
    let routes = route(
        "gh",
        "/hooks/gh",
        &backend.url("/up"),
        verify("github", &[secret_value("k1", SECRET)]),
    )
    .with("dedup", json!({}));
    let gw = start(&routes);
    let send = |body: &'static [u8]| {
        let sig = sha256_header(SECRET, body);
        let addr = gw.addr();
        async move {
            post(
                addr,
                "/hooks/gh",
                &[
                    ("x-hub-signature-256", &sig),
                    ("x-github-delivery", "72d3162e-cc78-11e3"),
                ],
                body,
            )
            .await
        }
    };
    assert_eq!(send(br#"{"n":1}"#).await.text(), r#"{"received":true}"#);
    assert_eq!(
        send(br#"{"n":2}"#).await.text(),
        r#"{"status":"duplicate"}"#
    );
    assert_eq!(ids(&backend), vec!["72d3162e-cc78-11e3"]);
}

/// While the first copy is at the backend, a second copy gets 409 and is not forwarded; once
/// the first was delivered, copies get 200 duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_racing_the_first_gets_409() {
    let backend = Backend::start();
    let gw = start(mc_route("mc", &backend, json!({"dedup": {}})));
    let body: &'static [u8] = br#"{"job_id":"race"}"#;
    backend.hold();
    let addr = gw.addr();
    let first = tokio::spawn(async move { post_mc(addr, "/hooks/mc", SECRET, body).await });
    assert!(
        backend.wait_count(1).await,
        "first copy reached the backend"
    );
    let second = post_mc(gw.addr(), "/hooks/mc", SECRET, body).await;
    assert_eq!(second.status, 409);
    assert_eq!(second.text(), r#"{"error":"duplicate in flight"}"#);
    backend.release(1);
    let first = first.await.unwrap();
    assert_eq!(first.status, 200);
    assert_eq!(first.text(), r#"{"received":true}"#);
    let third = post_mc(gw.addr(), "/hooks/mc", SECRET, body).await;
    assert_eq!(third.text(), r#"{"status":"duplicate"}"#);
    assert_eq!(backend.requests().len(), 1);
    assert_eq!(
        gw.metric(
            "hookgate_requests_total",
            &[("outcome", "duplicate"), ("reason", "in_flight")]
        ),
        1.0
    );
    assert_eq!(
        gw.metric("hookgate_duplicates_total", &[("route", "mc")]),
        2.0
    );
}

/// A first attempt that failed (backend 500, backend unreachable, backend too slow) does not
/// make the sender's retry a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_first_attempt_does_not_poison_the_key() {
    let backend = Backend::start();
    let dead = format!("http://127.0.0.1:{}/up", dead_port());
    let routes = [
        mc_route("mc", &backend, json!({"dedup": {}})),
        route_with_timeout(
            "down",
            "/hooks/down",
            &dead,
            "2s",
            mc_verify(&[("k1", SECRET)]),
        )
        .with("dedup", json!({})),
        route_with_timeout(
            "slow",
            "/hooks/slow",
            &backend.url("/slow"),
            "300ms",
            mc_verify(&[("k1", SECRET)]),
        )
        .with("dedup", json!({})),
    ];
    let gw = start(&routes);
    let body = br#"{"job_id":"retry-me"}"#;

    backend.script(vec![Behaviour {
        status: 500,
        body: b"boom".to_vec(),
        ..Behaviour::default()
    }]);
    let r = post_mc(gw.addr(), "/hooks/mc", SECRET, body).await;
    assert_eq!((r.status, r.text().as_str()), (500, "boom"));
    let r = post_mc(gw.addr(), "/hooks/mc", SECRET, body).await;
    assert_eq!(r.text(), r#"{"received":true}"#, "the retry is delivered");
    let r = post_mc(gw.addr(), "/hooks/mc", SECRET, body).await;
    assert_eq!(r.text(), r#"{"status":"duplicate"}"#);
    assert_eq!(backend.requests().len(), 2);

    for _ in 0..2 {
        let r = post_mc(gw.addr(), "/hooks/down", SECRET, body).await;
        assert_eq!(r.status, 502, "unreachable each time, never a duplicate");
    }

    backend.script(vec![Behaviour {
        delay: Duration::from_secs(1),
        ..Behaviour::default()
    }]);
    let r = post_mc(gw.addr(), "/hooks/slow", SECRET, body).await;
    assert_eq!(r.status, 504);
    let r = post_mc(gw.addr(), "/hooks/slow", SECRET, body).await;
    assert_eq!(r.text(), r#"{"received":true}"#);
}
