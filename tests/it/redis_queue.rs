//! Queue and hybrid routes on `store.kind: redis`: the spool on Redis Streams, shared by
//! gateway processes. An accepted event is delivered once, byte for byte, and leaves Redis; a
//! replica killed with events still queued has them delivered by another; dead letters are the
//! fleet's, managed with `hookgate dlq` against any replica; while Redis is down a queue route
//! answers 503, never 202, and takes events again once Redis is back.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::redis::RedisServer;
use crate::common::*;

const SECRET: &str = "queue-secret";

/// Dedup, and queue mode with up to 50 quick attempts.
fn queue() -> Value {
    json!({
        "dedup": {},
        "delivery": {"mode": "queue", "max_attempts": 50, "backoff": {"base": "10ms", "max": "200ms"}},
    })
}

/// A replica with one route `q` (`/hooks/q`) to `upstream`, on `redis` with a 1 s lease.
fn replica(redis: &RedisServer, upstream: &str, extra: Value) -> Gateway {
    let opts = Opts {
        store: Some(redis.store_leased("1s")),
        ..Opts::default()
    };
    let routes = route("q", "/hooks/q", upstream, mc_verify(&[("k1", SECRET)])).merge(extra);
    Gateway::start(config(&opts, &routes))
}

/// An integer reply (`:N`) of a raw Redis command.
fn int(redis: &RedisServer, command: &str) -> i64 {
    let reply = redis.command(command);
    reply
        .trim()
        .trim_start_matches(':')
        .parse()
        .unwrap_or_else(|_| panic!("{command}: {reply}"))
}

fn wait_ready(gw: &Gateway, want: u16) {
    wait_until(&format!("/readyz {want}"), WAIT, || {
        gw.admin_get("/readyz").status == want
    });
}

/// Nothing of the queue is left in Redis: no entry, no pending entry, no stored event.
fn queue_is_empty(redis: &RedisServer) -> bool {
    int(redis, "XLEN hookgate:queue") == 0
        && redis.command("KEYS hookgate:event:*").starts_with("*0")
}

/// How many times each body reached the backend.
fn bodies(backend: &Backend) -> HashMap<Vec<u8>, usize> {
    let mut seen = HashMap::new();
    for r in backend.requests() {
        *seen.entry(r.body).or_insert(0) += 1;
    }
    seen
}

/// 202 once Redis holds the event; the backend gets it once, byte for byte, as a queued
/// delivery; a copy sent to another replica is a duplicate; once delivered nothing is left in
/// Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_on_redis_delivered_once_and_removed() {
    let redis = RedisServer::start();
    let backend = Backend::start();
    let a = replica(&redis, &backend.url("/up"), queue());
    let b = replica(&redis, &backend.url("/up"), queue());
    let body = b"{\"job_id\":\"r1\",\"status\":\"COMPLETE\"}\n\x01";
    let r = post(
        a.addr(),
        "/hooks/q?x=1",
        &[
            ("x-mediaconvert-signature", &sha256_header(SECRET, body)),
            ("content-type", "application/json"),
        ],
        body,
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.text(), r#"{"status":"queued"}"#);
    let dup = post_mc(b.addr(), "/hooks/q", SECRET, body).await;
    assert_eq!(dup.text(), r#"{"status":"duplicate"}"#);

    assert!(backend.wait_count(1).await);
    let got = backend.single();
    assert_eq!(got.body, body);
    assert_eq!(got.uri, "/up?x=1");
    assert_eq!(got.header("x-webhook-delivery").as_deref(), Some("queued"));
    assert_eq!(got.header("x-webhook-attempt").as_deref(), Some("1"));
    assert_eq!(got.header("x-webhook-id"), Some(sha256_hex(body)));
    a.wait_metric(
        "hookgate_delivery_attempts_total",
        &[("route", "q"), ("result", "delivered")],
        |v| v == 1.0,
    );
    wait_until("the queue entry and the event to leave Redis", WAIT, || {
        queue_is_empty(&redis)
    });
    assert_eq!(a.metric("hookgate_queue_depth", &[("route", "q")]), 0.0);
    assert_eq!(backend.requests().len(), 1);
    assert_eq!(
        b.metric("hookgate_delivery_attempts_total", &[("route", "q")]),
        0.0,
        "b never owned it"
    );
}

/// Replica A holds 50 queued events its backend cannot take yet; A is killed with SIGKILL.
/// Replica B adopts them once A's lease (1 s) has run out and delivers every one exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_replica_events_are_delivered_by_another_once() {
    const N: usize = 50;
    let redis = RedisServer::start();
    let port = dead_port();
    let upstream = format!("http://127.0.0.1:{port}/up");
    let a = replica(&redis, &upstream, queue());
    let b = replica(&redis, &upstream, queue());
    let mut sent = Vec::new();
    for i in 0..N {
        let body = format!("{{\"job_id\":\"kill-{i}\"}}").into_bytes();
        let r = post_mc(a.addr(), "/hooks/q", SECRET, &body).await;
        assert_eq!(r.status, 202, "{}", r.text());
        sent.push(body);
    }
    // A is trying and failing (the backend is down): the events are A's, not B's.
    a.wait_metric(
        "hookgate_delivery_attempts_total",
        &[("route", "q"), ("result", "retry")],
        |v| v >= N as f64,
    );
    assert_eq!(
        a.metric("hookgate_queue_depth", &[("route", "q")]),
        N as f64
    );
    assert_eq!(b.metric("hookgate_queue_depth", &[("route", "q")]), 0.0);
    assert_eq!(int(&redis, "XLEN hookgate:queue"), N as i64);

    a.kill9();
    let backend = Backend::start_on(port, Behaviour::default());
    assert!(
        b.wait_log(
            "adopted queued events whose replica stopped renewing them",
            |_| true
        )
        .is_some(),
        "B adopted A's events"
    );
    assert!(backend.wait_count(N).await, "all {N} delivered");
    b.wait_metric(
        "hookgate_delivery_attempts_total",
        &[("route", "q"), ("result", "delivered")],
        |v| v == N as f64,
    );
    // Every entry acknowledged and deleted: nothing is left that anyone could deliver again.
    wait_until("the queue to empty", WAIT, || queue_is_empty(&redis));
    let seen = bodies(&backend);
    assert_eq!(seen.len(), N, "every event arrived");
    for body in &sent {
        assert_eq!(
            seen.get(body),
            Some(&1),
            "{} delivered once",
            String::from_utf8_lossy(body)
        );
    }
    assert_eq!(backend.requests().len(), N);
    assert_eq!(b.metric("hookgate_queue_depth", &[("route", "q")]), 0.0);
    b.assert_no_panic();
}

/// A replica shut down (SIGTERM) with events still queued hands them back: its heartbeat is
/// gone when it exits, and another replica delivers them at its next lease round, well before
/// a lease would have run out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_hands_queued_events_to_another_replica() {
    const N: usize = 10;
    let redis = RedisServer::start();
    let port = dead_port();
    let opts = Opts {
        store: Some(redis.store_leased("10s")),
        shutdown_grace: "1s".into(),
        ..Opts::default()
    };
    let routes = route(
        "q",
        "/hooks/q",
        &format!("http://127.0.0.1:{port}/up"),
        mc_verify(&[("k1", SECRET)]),
    )
    .merge(queue());
    let a = Gateway::start(config(&opts, &routes));
    let b = Gateway::start(config(&opts, &routes));
    for i in 0..N {
        let body = format!("{{\"job_id\":\"term-{i}\"}}");
        let r = post_mc(a.addr(), "/hooks/q", SECRET, body.as_bytes()).await;
        assert_eq!(r.status, 202, "{}", r.text());
    }
    a.wait_metric(
        "hookgate_delivery_attempts_total",
        &[("route", "q"), ("result", "retry")],
        |v| v >= N as f64,
    );
    a.sigterm();
    assert!(a.wait_exit(WAIT).is_some_and(|s| s.success()));
    assert!(a
        .wait_log("handed queued events back to the other replicas", |v| v
            ["events"]
            == N)
        .is_some());
    let exited = Instant::now();
    // A's heartbeat is gone: B's next lease round adopts its events.
    let beats = redis.command("KEYS hookgate:alive:*");
    assert!(beats.starts_with("*1\r\n"), "only B's heartbeat: {beats}");
    let backend = Backend::start_on(port, Behaviour::default());
    assert!(backend.wait_count(N).await);
    assert!(
        exited.elapsed() < Duration::from_secs(9),
        "delivered by b {:?} after a exited: before a lease (10s) would have run out",
        exited.elapsed()
    );
    b.wait_metric(
        "hookgate_delivery_attempts_total",
        &[("route", "q"), ("result", "delivered")],
        |v| v == N as f64,
    );
    wait_until("the queue to empty", WAIT, || queue_is_empty(&redis));
    assert_eq!(backend.requests().len(), N);
}

/// After `max_attempts` the event is a dead letter in Redis, seen by every replica:
/// `hookgate dlq list` against B shows what A buried, `dlq replay` against B delivers it (B owns
/// it now), `dlq drop` against A deletes another; the gauge is the fleet's on each replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_the_fleets_and_dlq_works_against_any_replica() {
    let redis = RedisServer::start();
    let backend = Backend::start_with(Behaviour {
        status: 500,
        ..Behaviour::default()
    });
    let extra = json!({
        "dedup": {},
        "delivery": {"mode": "queue", "max_attempts": 3, "backoff": {"base": "10ms", "max": "50ms"}},
    });
    let a = replica(&redis, &backend.url("/up"), extra.clone());
    let b = replica(&redis, &backend.url("/up"), extra);
    let first = br#"{"job_id":"dead-1"}"#;
    let second = br#"{"job_id":"dead-2"}"#;
    for body in [first, second] {
        assert_eq!(
            post_mc(a.addr(), "/hooks/q", SECRET, body).await.status,
            202
        );
    }
    a.wait_metric("hookgate_dead_letters", &[("route", "q")], |v| v == 2.0);
    assert_eq!(backend.requests().len(), 6, "max_attempts: 3, twice");
    // B learns the fleet's count on its next lease round.
    b.wait_metric("hookgate_dead_letters", &[("route", "q")], |v| v == 2.0);
    assert_eq!(int(&redis, "XLEN hookgate:dead"), 2);
    assert_eq!(int(&redis, "XLEN hookgate:queue"), 0);
    // Still a duplicate while dead, on any replica.
    let dup = post_mc(b.addr(), "/hooks/q", SECRET, first).await;
    assert_eq!(dup.text(), r#"{"status":"duplicate"}"#);

    let admin_b = format!("http://{}", b.admin());
    let list = run_cli(&["dlq", "list", "--admin", &admin_b], &[], None);
    let out = String::from_utf8_lossy(&list.stdout).to_string();
    assert!(list.status.success(), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    let row = |body: &[u8]| {
        lines[1..]
            .iter()
            .map(|l| l.split('\t').collect::<Vec<_>>())
            .find(|c| c[4] == sha256_hex(body))
            .unwrap_or_else(|| panic!("no row for the body in {out}"))
    };
    let cols = row(first);
    assert_eq!((cols[1], cols[2]), ("q", "3"));
    assert!(
        cols[5].contains("500") && cols[5].contains("max_attempts"),
        "{out}"
    );
    let id = cols[0].to_string();
    let other = row(second)[0].to_string();

    backend.set(Behaviour::default());
    let seen = backend.requests().len();
    dlq_replay_one(&id, &admin_b);
    assert!(backend.wait_count(seen + 1).await);
    let last = backend.requests().pop().unwrap();
    assert_eq!(last.body, first);
    assert_eq!(last.header("x-webhook-id"), Some(sha256_hex(first)));
    assert_eq!(last.header("x-webhook-attempt").as_deref(), Some("1"));
    b.wait_metric(
        "hookgate_delivery_attempts_total",
        &[("route", "q"), ("result", "delivered")],
        |v| v == 1.0,
    );

    let admin_a = format!("http://{}", a.admin());
    let drop = run_cli(
        &["dlq", "drop", "--id", &other, "--admin", &admin_a],
        &[],
        None,
    );
    assert!(drop.status.success());
    assert!(String::from_utf8_lossy(&drop.stdout).starts_with("dropped 1 dead letter(s)"));
    let list = run_cli(&["dlq", "list", "--admin", &admin_b], &[], None);
    assert_eq!(
        String::from_utf8_lossy(&list.stdout).lines().count(),
        1,
        "only the heading"
    );
    for gw in [&a, &b] {
        gw.wait_metric("hookgate_dead_letters", &[("route", "q")], |v| v == 0.0);
        assert_eq!(gw.metric("hookgate_dead_letters", &[("route", "q")]), 0.0);
    }
    wait_until("nothing left in Redis", WAIT, || {
        queue_is_empty(&redis) && int(&redis, "XLEN hookgate:dead") == 0
    });
    assert_eq!(backend.requests().len(), seen + 1);
}

/// Hybrid on Redis: a backend slower than the deadline gets 202 sent to the sender; the first
/// attempt still runs and its success settles the event (not delivered twice, nothing left).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hybrid_on_redis_settles_the_first_attempt() {
    let redis = RedisServer::start();
    let backend = Backend::start();
    backend.set_delay(Duration::from_millis(600));
    let gw = replica(
        &redis,
        &backend.url("/up"),
        json!({"delivery": {"mode": "hybrid", "deadline": "200ms"}}),
    );
    let r = post_mc(gw.addr(), "/hooks/q", SECRET, b"{\"h\":1}").await;
    assert_eq!(r.status, 202, "{}", r.text());
    gw.wait_metric(
        "hookgate_delivery_attempts_total",
        &[("route", "q"), ("result", "delivered")],
        |v| v == 1.0,
    );
    wait_until("the event to leave Redis", WAIT, || queue_is_empty(&redis));
    assert_eq!(backend.requests().len(), 1);
    let got = backend.single();
    assert_eq!(got.header("x-webhook-delivery").as_deref(), Some("sync"));
}

/// Redis down: a queue route answers 503 (not 202: the event is not stored; not 500), counted
/// as a store error, and the process stays up and unready; an event queued before the outage
/// waits (its attempts count store errors) and is not dropped. Back up (Redis keeps its data
/// here), the queued event is delivered and new ones get 202 again, without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_answers_503_while_redis_is_down_then_202() {
    let mut redis = RedisServer::start_durable();
    let backend = Backend::start_with(Behaviour {
        status: 503,
        ..Behaviour::default()
    });
    let gw = replica(&redis, &backend.url("/up"), queue());
    wait_ready(&gw, 200);
    let waiting = b"{\"queued\":\"before the outage\"}";
    let r = post_mc(gw.addr(), "/hooks/q", SECRET, waiting).await;
    assert_eq!(r.status, 202, "{}", r.text());
    gw.wait_metric(
        "hookgate_delivery_attempts_total",
        &[("route", "q"), ("result", "retry")],
        |v| v >= 1.0,
    );

    redis.stop();
    wait_ready(&gw, 503);
    for i in 0..3 {
        let body = format!("{{\"down\":{i}}}");
        let r = post_mc(gw.addr(), "/hooks/q", SECRET, body.as_bytes()).await;
        assert_eq!(r.status, 503, "{}", r.text());
        assert_eq!(r.text(), r#"{"error":"service unavailable"}"#);
    }
    assert_eq!(
        gw.metric("hookgate_store_errors_total", &[("operation", "enqueue")]),
        3.0
    );
    assert_eq!(
        gw.metric(
            "hookgate_requests_total",
            &[("route", "q"), ("outcome", "failed"), ("reason", "store")]
        ),
        3.0
    );
    // The queued event's attempts cannot read it, and lease rounds fail: both counted.
    for op in ["event", "lease"] {
        let v = gw.wait_metric("hookgate_store_errors_total", &[("operation", op)], |v| {
            v >= 1.0
        });
        assert!(v >= 1.0, "{op}: {v}");
    }
    assert_eq!(gw.metric("hookgate_queue_depth", &[("route", "q")]), 1.0);

    backend.set(Behaviour::default());
    redis.restart();
    wait_ready(&gw, 200);
    gw.wait_metric(
        "hookgate_delivery_attempts_total",
        &[("route", "q"), ("result", "delivered")],
        |v| v == 1.0,
    );
    let r = post_mc(gw.addr(), "/hooks/q", SECRET, b"{\"up\":1}").await;
    assert_eq!(r.status, 202, "{}", r.text());
    gw.wait_metric(
        "hookgate_delivery_attempts_total",
        &[("route", "q"), ("result", "delivered")],
        |v| v == 2.0,
    );
    wait_until("the queue to empty", WAIT, || queue_is_empty(&redis));
    let seen = bodies(&backend);
    assert_eq!(seen.get(b"{\"up\":1}".as_slice()), Some(&1));
    assert!(seen.contains_key(waiting.as_slice()));
    assert!(
        seen.keys().all(|b| !b.starts_with(b"{\"down\"")),
        "refused events never reach the backend"
    );
    gw.assert_no_panic();
}

/// Redis killed and restarted (with its append-only file, fsync'd on every write) while a
/// client keeps sending: every answer is 202 or 503, every event answered 202 is delivered
/// exactly once, and the process neither panics nor needs a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_restart_mid_load_loses_no_accepted_event() {
    let mut redis = RedisServer::start_durable();
    let backend = Backend::start();
    let gw = replica(&redis, &backend.url("/up"), queue());
    wait_ready(&gw, 200);

    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (addr, stop) = (gw.addr(), stop.clone());
        tokio::spawn(async move {
            let mut answers = Vec::new();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let body = format!("{{\"load\":{n}}}").into_bytes();
                let status = post_mc(addr, "/hooks/q", SECRET, &body).await.status;
                answers.push((body, status));
            }
            answers
        })
    };
    backend.wait_count(20).await;
    redis.stop();
    wait_ready(&gw, 503);
    gw.wait_metric(
        "hookgate_store_errors_total",
        &[("operation", "enqueue")],
        |v| v >= 3.0,
    );
    redis.restart();
    wait_ready(&gw, 200);
    // Some events accepted after the restart, then stop.
    let after = backend.requests().len() + 20;
    assert!(backend.wait_count(after).await);
    stop.store(true, Ordering::Relaxed);
    let answers = load.await.expect("load task");

    let accepted: Vec<&Vec<u8>> = answers
        .iter()
        .filter(|(_, s)| *s == 202)
        .map(|(b, _)| b)
        .collect();
    let refused = answers.iter().filter(|(_, s)| *s == 503).count();
    assert!(
        answers.iter().all(|(_, s)| *s == 202 || *s == 503),
        "only 202 or 503: {:?}",
        answers.iter().map(|(_, s)| *s).collect::<Vec<_>>()
    );
    assert!(refused >= 1, "some refused while Redis was down");
    // Each delivery is a distinct accepted event: 20 before the kill, 20 after the restart.
    assert!(accepted.len() >= 40, "load ran: {}", accepted.len());
    wait_until("every accepted event delivered", WAIT, || {
        let seen = bodies(&backend);
        accepted.iter().all(|b| seen.contains_key(*b))
    });
    wait_until("the queue to empty", WAIT, || queue_is_empty(&redis));
    let seen = bodies(&backend);
    for body in &accepted {
        assert_eq!(
            seen.get(*body),
            Some(&1),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    // A refused event can still have been stored (Redis died after running the write, before
    // answering): then it is delivered, once. Nothing was delivered twice either way.
    assert!(seen.values().all(|&n| n == 1), "{seen:?}");
    gw.assert_no_panic();
}
