//! Durable delivery: queue mode (202 once stored, delivered with retries), hybrid mode (202
//! when the backend misses the deadline), dead letters and `hookgate dlq`, store faults.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::*;

const SECRET: &str = "delivery-secret";

/// A config on a redb store in `dir`.
fn durable(dir: &Path, routes: impl Routes) -> Value {
    let opts = Opts {
        store: Some(redb_store(&dir.join("hookgate.redb"))),
        ..Opts::default()
    };
    config(&opts, routes)
}

/// A mediaconvert route at /hooks/NAME with `extra` keys (`delivery`, `dedup`, ...).
fn mc_route(name: &str, upstream: &str, timeout: &str, extra: Value) -> Value {
    route_with_timeout(
        name,
        &format!("/hooks/{name}"),
        upstream,
        timeout,
        mc_verify(&[("k1", SECRET)]),
    )
    .merge(extra)
}

/// Dedup, and queue mode with 4 quick attempts.
fn queue() -> Value {
    json!({
        "dedup": {},
        "delivery": {"mode": "queue", "max_attempts": 4, "backoff": {"base": "10ms", "max": "50ms"}},
    })
}

fn admin_url(gw: &Gateway) -> String {
    format!("http://{}", gw.admin())
}

/// 202 once stored; the backend gets the exact body with `X-Webhook-Delivery: queued` and
/// `X-Webhook-Attempt: 1`; a copy sent after acceptance is a duplicate even before delivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_mode_answers_202_and_delivers() {
    let backend = Backend::start();
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(durable(
        dir.path(),
        mc_route("q", &backend.url("/up/q"), "2s", queue()),
    ));
    let body = br#"{"job_id":"q1","status":"COMPLETE"}"#;
    let r = post(
        gw.addr(),
        "/hooks/q?x=1",
        &[
            ("x-mediaconvert-signature", &sha256_header(SECRET, body)),
            ("content-type", "application/json"),
            ("x-custom", "kept"),
        ],
        body,
    )
    .await;
    assert_eq!(r.status, 202);
    assert_eq!(r.text(), r#"{"status":"queued"}"#);
    assert!(backend.wait_count(1).await);
    let got = backend.single();
    assert_eq!(got.body, body);
    assert_eq!(got.uri, "/up/q?x=1");
    assert_eq!(got.header("x-webhook-delivery").as_deref(), Some("queued"));
    assert_eq!(got.header("x-webhook-attempt").as_deref(), Some("1"));
    assert_eq!(got.header("x-webhook-id"), Some(sha256_hex(body)));
    assert_eq!(got.header("x-webhook-verified").as_deref(), Some("true"));
    assert_eq!(got.header("x-custom").as_deref(), Some("kept"));
    assert_eq!(
        got.header("x-mediaconvert-signature"),
        Some(sha256_header(SECRET, body))
    );

    let dup = post_mc(gw.addr(), "/hooks/q", SECRET, body).await;
    assert_eq!(dup.text(), r#"{"status":"duplicate"}"#);
    assert_eq!(
        gw.metric(
            "hookgate_requests_total",
            &[("route", "q"), ("outcome", "queued")]
        ),
        1.0
    );
    let delivered = gw.wait_metric(
        "hookgate_delivery_attempts_total",
        &[("route", "q"), ("result", "delivered")],
        |v| v == 1.0,
    );
    assert_eq!(delivered, 1.0);
    assert_eq!(
        gw.wait_metric("hookgate_queue_depth", &[("route", "q")], |v| v == 0.0),
        0.0
    );
    assert_eq!(backend.requests().len(), 1);
}

/// The backend is down: every event gets 202 and waits (depth and age visible); when it comes
/// up, each arrives exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_down_then_up_delivers_everything() {
    let port = dead_port();
    let dir = tempfile::tempdir().unwrap();
    let upstream = format!("http://127.0.0.1:{port}/up");
    let extra = json!({
        "dedup": {},
        "delivery": {"mode": "queue", "max_attempts": 1000, "backoff": {"base": "20ms", "max": "200ms"}},
    });
    let gw = Gateway::start(durable(dir.path(), mc_route("q", &upstream, "2s", extra)));
    let n = 30;
    for i in 0..n {
        let body = format!(r#"{{"job_id":"down-{i}"}}"#);
        let r = post_mc(gw.addr(), "/hooks/q", SECRET, body.as_bytes()).await;
        assert_eq!(r.status, 202, "event {i}");
    }
    assert_eq!(
        gw.metric("hookgate_queue_depth", &[("route", "q")]),
        n as f64
    );
    gw.wait_metric(
        "hookgate_delivery_attempts_total",
        &[("result", "retry")],
        |v| v >= n as f64,
    );
    std::thread::sleep(Duration::from_millis(1100));
    assert!(gw.metric("hookgate_queue_oldest_age_seconds", &[("route", "q")]) >= 1.0);

    let backend = Backend::start_on(port, Behaviour::default());
    wait_until("every event delivered", Duration::from_secs(20), || {
        gw.metric("hookgate_queue_depth", &[("route", "q")]) == 0.0
    });
    let mut keys: Vec<String> = backend
        .requests()
        .iter()
        .map(|r| r.header("x-webhook-id").unwrap())
        .collect();
    keys.sort();
    let mut want: Vec<String> = (0..n)
        .map(|i| sha256_hex(format!(r#"{{"job_id":"down-{i}"}}"#).as_bytes()))
        .collect();
    want.sort();
    assert_eq!(keys, want, "each event exactly once");
    assert!(backend.requests().iter().all(|r| r
        .header("x-webhook-attempt")
        .unwrap()
        .parse::<u32>()
        .unwrap()
        > 1));
    assert_eq!(
        gw.metric("hookgate_queue_oldest_age_seconds", &[("route", "q")]),
        0.0
    );
}

/// Backoff between attempts, and `Retry-After` from the backend taking its place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_follow_the_schedule_and_retry_after() {
    let backend = Backend::start();
    let dir = tempfile::tempdir().unwrap();
    let extra = json!({
        "delivery": {"mode": "queue", "retry_on": [503, 429], "backoff": {"base": "10ms", "max": "40ms"}},
    });
    let gw = Gateway::start(durable(
        dir.path(),
        mc_route("q", &backend.url("/up"), "2s", extra),
    ));
    let unavailable = Behaviour {
        status: 503,
        ..Behaviour::default()
    };
    let slow_down = Behaviour {
        status: 429,
        headers: vec![("retry-after".into(), "1".into())],
        ..Behaviour::default()
    };
    backend.script(vec![unavailable.clone(), unavailable, slow_down]);
    let r = post_mc(gw.addr(), "/hooks/q", SECRET, b"{\"n\":1}").await;
    assert_eq!(r.status, 202);
    let mut times = Vec::new();
    for n in 1..=4 {
        assert!(backend.wait_count(n).await, "attempt {n}");
        times.push(Instant::now());
    }
    let attempts: Vec<String> = backend
        .requests()
        .iter()
        .map(|r| r.header("x-webhook-attempt").unwrap())
        .collect();
    assert_eq!(attempts, ["1", "2", "3", "4"]);
    // Backoff: at most base*2^(n-1) (+ scheduling slack); Retry-After: 1s, at least.
    assert!(
        times[1] - times[0] < Duration::from_millis(500),
        "{:?}",
        times[1] - times[0]
    );
    assert!(
        times[2] - times[1] < Duration::from_millis(500),
        "{:?}",
        times[2] - times[1]
    );
    assert!(
        times[3] - times[2] >= Duration::from_millis(900),
        "{:?}",
        times[3] - times[2]
    );
    gw.wait_metric(
        "hookgate_delivery_attempts_total",
        &[("result", "delivered")],
        |v| v == 1.0,
    );
    assert_eq!(
        gw.metric("hookgate_delivery_attempts_total", &[("result", "retry")]),
        3.0
    );
}

/// After `max_attempts` failures the event is a dead letter; `hookgate dlq list` shows it,
/// `dlq replay` delivers it with its dedup key, `dlq drop` deletes; a status not in
/// `retry_on` is a dead letter at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_listed_replayed_and_dropped_with_the_cli() {
    let backend = Backend::start_with(Behaviour {
        status: 500,
        ..Behaviour::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let routes = [
        mc_route("q", &backend.url("/up"), "2s", queue()),
        mc_route("other", &backend.url("/other"), "2s", queue()),
    ];
    let gw = Gateway::start(durable(dir.path(), &routes));
    let body = br#"{"job_id":"dead-1"}"#;
    assert_eq!(
        post_mc(gw.addr(), "/hooks/q", SECRET, body).await.status,
        202
    );
    gw.wait_metric("hookgate_dead_letters", &[("route", "q")], |v| v == 1.0);
    assert_eq!(backend.requests().len(), 4, "max_attempts: 4");
    assert_eq!(gw.metric("hookgate_queue_depth", &[("route", "q")]), 0.0);
    // Still a duplicate while dead: the sender's copy must not bypass the dead letter.
    let dup = post_mc(gw.addr(), "/hooks/q", SECRET, body).await;
    assert_eq!(dup.text(), r#"{"status":"duplicate"}"#);

    let admin = admin_url(&gw);
    let list = run_cli(&["dlq", "list", "--admin", &admin], &[], None);
    let out = String::from_utf8_lossy(&list.stdout).to_string();
    assert!(
        list.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&list.stderr)
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let cols: Vec<&str> = lines[1].split('\t').collect();
    let id = cols[0].to_string();
    assert_eq!(cols[1], "q");
    assert_eq!(cols[2], "4");
    assert_eq!(cols[4], sha256_hex(body));
    assert!(
        cols[5].contains("500") && cols[5].contains("max_attempts"),
        "{out}"
    );

    // A 400 is not retried.
    backend.set(Behaviour {
        status: 400,
        ..Behaviour::default()
    });
    let seen = backend.requests().len();
    assert_eq!(
        post_mc(gw.addr(), "/hooks/other", SECRET, b"{\"o\":1}")
            .await
            .status,
        202
    );
    gw.wait_metric("hookgate_dead_letters", &[("route", "other")], |v| v == 1.0);
    assert_eq!(backend.requests().len(), seen + 1);
    let json = run_cli(
        &[
            "dlq", "list", "--json", "--route", "other", "--admin", &admin,
        ],
        &[],
        None,
    );
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let dl = &v["dead_letters"];
    assert_eq!(dl.as_array().unwrap().len(), 1, "{v}");
    assert!(
        dl[0]["error"].as_str().unwrap().contains("not in retry_on"),
        "{v}"
    );

    backend.set(Behaviour::default());
    dlq_replay_one(&id, &admin);
    assert!(backend.wait_count(seen + 2).await);
    let last = backend.requests().pop().unwrap();
    assert_eq!(last.body, body);
    assert_eq!(last.header("x-webhook-id"), Some(sha256_hex(body)));
    assert_eq!(last.header("x-webhook-attempt").as_deref(), Some("1"));
    gw.wait_metric("hookgate_dead_letters", &[("route", "q")], |v| v == 0.0);

    let drop = run_cli(
        &["dlq", "drop", "--route", "other", "--admin", &admin],
        &[],
        None,
    );
    assert!(drop.status.success());
    assert!(String::from_utf8_lossy(&drop.stdout).starts_with("dropped 1 dead letter(s)"));
    let list = run_cli(&["dlq", "list", "--admin", &admin], &[], None);
    assert_eq!(
        String::from_utf8_lossy(&list.stdout).lines().count(),
        1,
        "only the heading"
    );
    assert_eq!(gw.metric("hookgate_dead_letters", &[]), 0.0);

    // Nothing selected / nothing there.
    let none = run_cli(&["dlq", "replay", "--all", "--admin", &admin], &[], None);
    assert_eq!(
        String::from_utf8_lossy(&none.stdout),
        "replayed 0 dead letter(s)\n"
    );
    let usage = run_cli(&["dlq", "replay", "--admin", &admin], &[], None);
    assert_eq!(usage.status.code(), Some(2), "a selection is required");
}

/// A queue route's rate limit spools instead of refusing (stage 5, docs/request-path.md): every event gets
/// 202, and the backend receives them no faster than the route's rate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_limit_paces_queue_deliveries_instead_of_refusing() {
    let backend = Backend::start();
    let dir = tempfile::tempdir().unwrap();
    let extra = json!({
        "rate_limit": {"route": {"rate": "1/s", "burst": 1}},
        "delivery": {"mode": "queue"},
    });
    let gw = Gateway::start(durable(
        dir.path(),
        mc_route("q", &backend.url("/up"), "2s", extra),
    ));
    for i in 0..3 {
        let r = post_mc(
            gw.addr(),
            "/hooks/q",
            SECRET,
            format!("{{\"i\":{i}}}").as_bytes(),
        )
        .await;
        assert_eq!(r.status, 202, "event {i}: {}", r.text());
    }
    assert!(backend.wait_count(1).await);
    let first = Instant::now();
    assert!(backend.wait_count(3).await);
    assert!(
        first.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        first.elapsed()
    );
    assert_eq!(gw.metric("hookgate_rate_limited_total", &[]), 0.0);
    let attempts: Vec<String> = backend
        .requests()
        .iter()
        .map(|r| r.header("x-webhook-attempt").unwrap())
        .collect();
    assert_eq!(
        attempts,
        ["1", "1", "1"],
        "waiting for the bucket is not an attempt"
    );
}

/// At most `concurrency` deliveries of a route are in flight at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_bounds_deliveries_in_flight() {
    let backend = Backend::start();
    let dir = tempfile::tempdir().unwrap();
    let extra = json!({"delivery": {"mode": "queue", "concurrency": 2}});
    let gw = Gateway::start(durable(
        dir.path(),
        mc_route("q", &backend.url("/up"), "5s", extra),
    ));
    backend.hold();
    for i in 0..5 {
        let r = post_mc(
            gw.addr(),
            "/hooks/q",
            SECRET,
            format!("{{\"i\":{i}}}").as_bytes(),
        )
        .await;
        assert_eq!(r.status, 202);
    }
    assert!(backend.wait_count(2).await);
    // Nothing signals "a third did not start": give it time to, then look.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(backend.requests().len(), 2, "two in flight, three waiting");
    assert_eq!(gw.metric("hookgate_queue_depth", &[("route", "q")]), 5.0);
    backend.release(1);
    assert!(backend.wait_count(3).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        backend.requests().len(),
        3,
        "one finished, one more started"
    );
    backend.unhold();
    assert!(backend.wait_count(5).await);
    gw.wait_metric("hookgate_queue_depth", &[("route", "q")], |v| v == 0.0);
    assert_eq!(backend.requests().len(), 5);
}

/// The admin API refuses malformed selections, and the CLI says when it cannot reach it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlq_errors() {
    let backend = Backend::start();
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(durable(
        dir.path(),
        mc_route("q", &backend.url("/up"), "2s", queue()),
    ));
    for body in [
        "",
        "{}",
        r#"{"ids": []}"#,
        r#"{"all": false}"#,
        r#"{"all": true, "route": "q"}"#,
        r#"{"nope": 1}"#,
    ] {
        let r = post(gw.admin(), "/admin/dlq/replay", &[], body.as_bytes()).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert!(r.text().contains("error"));
    }
    let r = post(gw.admin(), "/admin/dlq", &[], b"").await;
    assert_eq!(r.status, 405);
    let out = run_cli(
        &[
            "dlq",
            "list",
            "--admin",
            &format!("http://127.0.0.1:{}", dead_port()),
        ],
        &[],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach the admin API"));
    let out = run_cli(&["dlq", "list", "--admin", "ftp://x"], &[], None);
    assert_eq!(out.status.code(), Some(2));
}

/// Hybrid: a backend slower than the deadline; the sender gets 202 at the deadline, the first
/// attempt runs on, its 503 schedules a retry, which carries `X-Webhook-Delivery: deferred`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hybrid_answers_202_at_the_deadline_and_retries_later() {
    let backend = Backend::start();
    let dir = tempfile::tempdir().unwrap();
    let extra = json!({
        "dedup": {},
        "delivery": {"mode": "hybrid", "deadline": "300ms", "backoff": {"base": "10ms", "max": "50ms"}},
    });
    let gw = Gateway::start(durable(
        dir.path(),
        mc_route("h", &backend.url("/up"), "3s", extra),
    ));
    backend.script(vec![Behaviour {
        status: 503,
        delay: Duration::from_millis(1200),
        ..Behaviour::default()
    }]);
    let body = br#"{"job_id":"slow"}"#;
    let started = Instant::now();
    let r = post_mc(gw.addr(), "/hooks/h", SECRET, body).await;
    let took = started.elapsed();
    assert_eq!(r.status, 202);
    assert_eq!(r.text(), r#"{"status":"queued"}"#);
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_millis(1000),
        "{took:?}"
    );
    let first = backend.requests()[0].clone();
    assert_eq!(first.header("x-webhook-delivery").as_deref(), Some("sync"));
    assert_eq!(first.header("x-webhook-attempt").as_deref(), Some("1"));
    // Accepted durably: a copy now is a duplicate.
    let dup = post_mc(gw.addr(), "/hooks/h", SECRET, body).await;
    assert_eq!(dup.text(), r#"{"status":"duplicate"}"#);

    assert!(backend.wait_count(2).await);
    let second = backend.requests()[1].clone();
    assert_eq!(
        second.header("x-webhook-delivery").as_deref(),
        Some("deferred")
    );
    assert_eq!(second.header("x-webhook-attempt").as_deref(), Some("2"));
    assert_eq!(second.header("x-webhook-id"), Some(sha256_hex(body)));
    assert_eq!(second.body, body);
    gw.wait_metric(
        "hookgate_delivery_attempts_total",
        &[("result", "delivered")],
        |v| v == 1.0,
    );
    assert_eq!(gw.metric("hookgate_queue_depth", &[("route", "h")]), 0.0);
    assert_eq!(
        gw.metric(
            "hookgate_requests_total",
            &[("outcome", "queued"), ("reason", "deferred")]
        ),
        1.0
    );
    assert_eq!(backend.requests().len(), 2);
}

/// Hybrid: when the slow first attempt succeeds after the 202, that is the delivery: no
/// second copy is sent. A backend within the deadline answers the sender itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hybrid_first_attempt_success_is_not_repeated() {
    let backend = Backend::start();
    let dir = tempfile::tempdir().unwrap();
    let extra = json!({
        "delivery": {"mode": "hybrid", "deadline": "200ms", "backoff": {"base": "10ms", "max": "50ms"}},
    });
    let gw = Gateway::start(durable(
        dir.path(),
        mc_route("h", &backend.url("/up"), "3s", extra),
    ));
    backend.script(vec![Behaviour {
        delay: Duration::from_millis(600),
        ..Behaviour::default()
    }]);
    let r = post_mc(gw.addr(), "/hooks/h", SECRET, b"{\"n\":1}").await;
    assert_eq!(r.status, 202);
    gw.wait_metric(
        "hookgate_delivery_attempts_total",
        &[("result", "delivered")],
        |v| v == 1.0,
    );
    assert_eq!(gw.metric("hookgate_queue_depth", &[("route", "h")]), 0.0);
    assert_eq!(
        backend.requests().len(),
        1,
        "the first attempt was the delivery"
    );

    let r = post_mc(gw.addr(), "/hooks/h", SECRET, b"{\"n\":2}").await;
    assert_eq!((r.status, r.text().as_str()), (200, r#"{"received":true}"#));
    assert_eq!(
        gw.metric("hookgate_requests_total", &[("outcome", "forwarded")]),
        1.0
    );
}

/// Pending events survive a graceful restart too, and resume.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resumes_pending_events() {
    let port = dead_port();
    let dir = tempfile::tempdir().unwrap();
    let upstream = format!("http://127.0.0.1:{port}/up");
    let extra = json!({
        "delivery": {"mode": "queue", "max_attempts": 100, "backoff": {"base": "50ms", "max": "200ms"}},
    });
    let yaml = durable(dir.path(), mc_route("q", &upstream, "2s", extra));
    let gw = Gateway::start(&yaml);
    for i in 0..5 {
        let r = post_mc(
            gw.addr(),
            "/hooks/q",
            SECRET,
            format!("{{\"i\":{i}}}").as_bytes(),
        )
        .await;
        assert_eq!(r.status, 202);
    }
    gw.sigterm();
    assert!(gw.wait_exit(WAIT).is_some());
    drop(gw);
    let backend = Backend::start_on(port, Behaviour::default());
    let gw = Gateway::start(&yaml);
    let store_line = gw
        .logs()
        .into_iter()
        .find(|l| l.contains("\"store open\""))
        .expect("store open line");
    assert!(store_line.contains("\"resumed\":5"), "{store_line}");
    assert!(backend.wait_count(5).await);
    gw.wait_metric("hookgate_queue_depth", &[("route", "q")], |v| v == 0.0);
    assert_eq!(backend.requests().len(), 5);
}

/// A store that cannot be opened stops start-up with a message naming store.path; queue mode
/// on the memory store is a config error.
#[test]
fn store_faults_are_startup_errors() {
    let dir = tempfile::tempdir().unwrap();
    let corrupt = dir.path().join("corrupt.redb");
    std::fs::write(&corrupt, vec![0x42; 8192]).unwrap();
    let plain = dir.path().join("plain-file");
    std::fs::write(&plain, b"x").unwrap();
    let routes = mc_route("q", "http://127.0.0.1:9/up", "2s", queue());
    for path in [
        corrupt.clone(),
        plain.join("under-a-file.redb"),
        dir.path().to_path_buf(),
    ] {
        let opts = Opts {
            store: Some(redb_store(&path)),
            ..Opts::default()
        };
        let yaml = config(&opts, &routes);
        let out = run_with_config("run", &yaml, &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains(&format!("store.path {}: cannot open", path.display())),
            "{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    // The corrupt file is left as it was for the operator to inspect.
    assert_eq!(std::fs::read(&corrupt).unwrap(), vec![0x42; 8192]);

    let out = run_with_config("check", config(&Opts::default(), &routes), &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("routes[0].delivery.mode: queue mode"), "{err}");
    assert!(err.contains("store.kind: redb"), "{err}");
}

/// Two gateways cannot share one redb file: the second refuses to start, naming it.
#[test]
fn a_store_file_has_one_owner() {
    let dir = tempfile::tempdir().unwrap();
    let routes = mc_route("q", "http://127.0.0.1:9/up", "2s", queue());
    let yaml = durable(dir.path(), &routes);
    let _first = Gateway::start(&yaml);
    let out = run_with_config("run", &yaml, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("store.path"), "{err}");
}
