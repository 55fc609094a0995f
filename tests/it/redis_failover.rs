//! Redis behind Sentinel, and writes the replicas must confirm (`store.min_replicas`): the
//! primary is killed under load and Sentinel promotes its replica; every event a queue route
//! answered 202 for is still delivered, exactly once; the answers are only 202 or 503; the
//! gateways find the new primary and are ready again.
//!
//! The replica reads its primary through a 20 ms link ([`LagProxy`]) that loses what is in
//! flight when the primary dies, as a network between two machines does: on loopback alone a
//! replica receives each write in the same instant as the client its answer, and a killed
//! primary loses nothing even without `min_replicas` (measured: 0 of 5 runs lost an event).
//!
//! [`LagProxy`]: crate::common::lag::LagProxy

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::redis::RedisServer;
use crate::common::redis_ha::Sentinels;
use crate::common::*;

const SECRET: &str = "failover-secret";
/// Failover and promotion take longer than a start-up.
const FAILOVER_WAIT: Duration = Duration::from_secs(30);
/// Events sent in all.
const EVENTS: usize = 2000;
/// The primary is killed (SIGKILL) once this many have been answered, while the next ones are
/// in flight.
const KILL_AT: usize = 1000;
/// The last ones are sent once the failover is over and the new primary has a replica again.
const AFTER: usize = 200;
/// Requests in flight at once.
const SENDERS: usize = 8;
/// How late the replica gets what its primary writes: a network between two machines, where
/// writes in flight when the primary dies never arrive.
const LINK: Duration = Duration::from_millis(20);

/// Two gateways on the sentinels' master, each with queue route `q` to a backend that is not
/// up yet.
fn gateways(ha: &Sentinels, min_replicas: u32, upstream: &str) -> Vec<Gateway> {
    let opts = Opts {
        store: Some(json!({
            "kind": "redis",
            "url": ha.url(),
            "lease": "5s",
            "min_replicas": min_replicas,
            "replica_timeout": "500ms",
        })),
        ..Opts::default()
    };
    let routes = route("q", "/hooks/q", upstream, mc_verify(&[("k1", SECRET)])).merge(json!({
        "dedup": {},
        "delivery": {"mode": "queue", "max_attempts": 1000, "backoff": {"base": "10ms", "max": "200ms"}},
    }));
    (0..2)
        .map(|_| Gateway::start(config(&opts, &routes)))
        .collect()
}

fn body(i: usize) -> Vec<u8> {
    format!("{{\"job_id\":\"failover-{i}\",\"status\":\"COMPLETE\"}}").into_bytes()
}

/// Sends events `from..to`, `SENDERS` at a time, alternating gateways, pausing `pace` between
/// sends of each sender; records every answer's status.
async fn send(
    addrs: &[std::net::SocketAddr],
    from: usize,
    to: usize,
    pace: Duration,
    answers: &Arc<Mutex<HashMap<usize, u16>>>,
) {
    let next = Arc::new(AtomicUsize::new(from));
    let mut tasks = Vec::new();
    for _ in 0..SENDERS {
        let (next, answers, addrs) = (next.clone(), answers.clone(), addrs.to_vec());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= to {
                    return;
                }
                let r = post_mc(addrs[i % addrs.len()], "/hooks/q", SECRET, &body(i)).await;
                answers.lock().unwrap().insert(i, r.status);
                if !pace.is_zero() {
                    tokio::time::sleep(pace).await;
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("sender");
    }
}

/// What one run saw.
struct Run {
    accepted: usize,
    refused: usize,
    /// 202'd events the backend never got.
    lost: usize,
    /// 202'd events the backend got more than once.
    duplicated: usize,
    /// Bodies the backend got that were never sent, or a refused event more than once.
    unexpected: Vec<String>,
    /// Answers other than 202 and 503.
    other_answers: Vec<(usize, u16)>,
    /// 202s among the events sent after the failover.
    accepted_after: usize,
}

/// One failover under load (see the module's doc), with `min_replicas`.
async fn failover(min_replicas: u32) -> Run {
    let mut ha = Sentinels::start(LINK);
    let port = dead_port();
    let gws = gateways(&ha, min_replicas, &format!("http://127.0.0.1:{port}/up"));
    let addrs: Vec<_> = gws.iter().map(Gateway::addr).collect();
    for gw in &gws {
        wait_until("the gateway to be ready", FAILOVER_WAIT, || {
            gw.admin_get("/readyz").status == 200
        });
    }
    let answers = Arc::new(Mutex::new(HashMap::new()));

    // Full speed until the kill, which lands while requests are in flight.
    let before = {
        let (addrs, answers) = (addrs.clone(), answers.clone());
        tokio::spawn(async move { send(&addrs, 0, KILL_AT + 100, Duration::ZERO, &answers).await })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while answers.lock().unwrap().len() < KILL_AT {
        assert!(
            Instant::now() < deadline,
            "the first events were not answered"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    ha.primary.stop();
    let old_port = ha.primary.port();
    let new_port = ha.replica.port();
    before.await.expect("senders");
    // Sending goes on through the failover, at a pace that spreads it over a few seconds.
    let during = {
        let (addrs, answers) = (addrs.clone(), answers.clone());
        tokio::spawn(async move {
            send(
                &addrs,
                KILL_AT + 100,
                EVENTS - AFTER,
                Duration::from_millis(20),
                &answers,
            )
            .await
        })
    };
    // Sentinel promotes the replica; the old primary comes back (empty) as its replica.
    let promoted = tokio::task::spawn_blocking({
        let waiter = SentinelWait::of(&ha);
        move || waiter.wait(new_port)
    });
    promoted.await.expect("waiting for the promotion");
    ha.primary
        .restart_with(&["--replicaof", "127.0.0.1", &new_port.to_string()]);
    ha.primary.wait_replicating();
    during.await.expect("senders");
    assert_ne!(old_port, new_port);

    // Readiness returns: each gateway answers from the new primary.
    for gw in &gws {
        wait_until("the gateway to be ready again", FAILOVER_WAIT, || {
            gw.admin_get("/readyz").status == 200
        });
    }
    send(&addrs, EVENTS - AFTER, EVENTS, Duration::ZERO, &answers).await;

    let answers = answers.lock().unwrap().clone();
    assert_eq!(answers.len(), EVENTS, "every event was answered");
    let accepted: HashSet<usize> = answers
        .iter()
        .filter(|(_, s)| **s == 202)
        .map(|(i, _)| *i)
        .collect();
    let mut other_answers: Vec<(usize, u16)> = answers
        .iter()
        .filter(|(_, s)| **s != 202 && **s != 503)
        .map(|(i, s)| (*i, *s))
        .collect();
    other_answers.sort();
    let accepted_after = (EVENTS - AFTER..EVENTS)
        .filter(|i| accepted.contains(i))
        .count();

    // The backend comes up: the queue drains into it.
    let backend = Backend::start_on(port, Behaviour::default());
    let new_primary = &ha.replica;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let delivered: HashSet<Vec<u8>> = backend.requests().into_iter().map(|r| r.body).collect();
        let all_in = accepted.iter().all(|i| delivered.contains(&body(*i)));
        // Without min_replicas some are lost: the queue emptying is the end then.
        if (all_in || min_replicas == 0) && queue_is_empty(new_primary) {
            break;
        }
        if Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut seen: HashMap<Vec<u8>, usize> = HashMap::new();
    for r in backend.requests() {
        *seen.entry(r.body).or_insert(0) += 1;
    }
    let sent: HashMap<Vec<u8>, usize> = (0..EVENTS).map(|i| (body(i), i)).collect();
    let mut unexpected = Vec::new();
    for (b, n) in &seen {
        match sent.get(b) {
            None => unexpected.push(String::from_utf8_lossy(b).into_owned()),
            Some(i) if !accepted.contains(i) && *n > 1 => {
                unexpected.push(format!("refused event {i} delivered {n} times"))
            }
            _ => {}
        }
    }
    let lost = accepted
        .iter()
        .filter(|i| !seen.contains_key(&body(**i)))
        .count();
    let duplicated = accepted
        .iter()
        .filter(|i| seen.get(&body(**i)).is_some_and(|n| *n > 1))
        .count();
    for gw in &gws {
        gw.assert_no_panic();
    }
    Run {
        accepted: accepted.len(),
        refused: answers.values().filter(|s| **s == 503).count(),
        lost,
        duplicated,
        unexpected,
        other_answers,
        accepted_after,
    }
}

/// Waits for every sentinel to name a new master (a blocking wait, off the runtime).
struct SentinelWait {
    ports: Vec<u16>,
}

impl SentinelWait {
    fn of(ha: &Sentinels) -> Self {
        Self {
            ports: ha.sentinels.iter().map(|s| s.port()).collect(),
        }
    }

    fn wait(&self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.ports.iter().all(|s| {
            let reply = crate::common::redis::command_on(
                *s,
                &format!(
                    "SENTINEL get-master-addr-by-name {}",
                    crate::common::redis_ha::MASTER
                ),
            );
            reply.contains(&format!("\r\n{port}\r\n"))
        }) {
            assert!(
                Instant::now() < deadline,
                "the sentinels did not promote the replica on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Nothing of the queue is left: no entry, no stored event.
fn queue_is_empty(redis: &RedisServer) -> bool {
    redis.command("XLEN hookgate:queue").trim() == ":0"
        && redis.command("KEYS hookgate:event:*").starts_with("*0")
}

/// `min_replicas: 1` on a primary with no replica: the event is refused with 503 (never 202),
/// counted as `replicate`, and withdrawn, so nothing of it is left to deliver and the sender's
/// retry is not taken for a duplicate; once a replica is attached the retry gets 202 and is
/// delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unconfirmed_write_is_refused_and_withdrawn() {
    let redis = RedisServer::start();
    let backend = Backend::start();
    let opts = Opts {
        store: Some(json!({
            "kind": "redis",
            "url": redis.url(),
            "min_replicas": 1,
            // Long enough for a replica on a loaded machine to answer once attached: the
            // first request waits it out for nothing, the second must not.
            "replica_timeout": "2s",
        })),
        ..Opts::default()
    };
    let routes = route(
        "q",
        "/hooks/q",
        &backend.url("/up"),
        mc_verify(&[("k1", SECRET)]),
    )
    .merge(json!({
        "dedup": {},
        "delivery": {"mode": "queue"},
    }));
    let gw = Gateway::start(config(&opts, &routes));
    let event = b"{\"job_id\":\"unconfirmed\",\"status\":\"COMPLETE\"}";
    let r = post_mc(gw.addr(), "/hooks/q", SECRET, event).await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(
        gw.metric("hookgate_store_errors_total", &[("operation", "replicate")]),
        1.0
    );
    assert_eq!(
        gw.metric("hookgate_store_errors_total", &[("operation", "enqueue")]),
        0.0
    );
    assert!(queue_is_empty(&redis), "the refused event was withdrawn");
    assert!(
        redis.command("KEYS hookgate:dedup:*").starts_with("*0"),
        "its dedup mark too"
    );

    let _replica = RedisServer::start_replica_of(&redis);
    let r = post_mc(gw.addr(), "/hooks/q", SECRET, event).await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert!(backend.wait_count(1).await);
    assert_eq!(backend.single().body, event);
    gw.assert_no_panic();
}

/// `min_replicas: 1`: the primary is killed with 1,000 of 2,000 events answered; every 202'd
/// event is delivered exactly once, the others were refused with 503 (and the sender would
/// retry them), the gateways follow Sentinel to the promoted replica and accept again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sentinel_failover_under_load_loses_no_accepted_event() {
    let run = failover(1).await;
    eprintln!(
        "min_replicas 1: {} accepted, {} refused, {} lost, {} duplicated",
        run.accepted, run.refused, run.lost, run.duplicated
    );
    assert!(run.other_answers.is_empty(), "{:?}", run.other_answers);
    assert!(run.unexpected.is_empty(), "{:?}", run.unexpected);
    assert_eq!(run.lost, 0, "202'd events lost");
    assert_eq!(run.duplicated, 0, "202'd events delivered twice");
    assert!(run.accepted >= KILL_AT / 2, "{} accepted", run.accepted);
    assert!(
        run.accepted_after > 0,
        "no event was accepted after the failover"
    );
}

/// The same with `min_replicas: 0`, five times: how many 202'd events a failover loses when
/// nothing waits for the replica. Reports, asserts nothing about the count (it depends on
/// timing); run with `cargo test --test it -- --ignored without_min_replicas --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a measurement: reports how many events a failover loses without min_replicas"]
async fn sentinel_failover_without_min_replicas_loses_events() {
    let mut report = Vec::new();
    for run in 0..5 {
        let r = failover(0).await;
        assert!(r.other_answers.is_empty(), "{:?}", r.other_answers);
        report.push(format!(
            "run {run}: {} accepted, {} refused, {} lost, {} duplicated",
            r.accepted, r.refused, r.lost, r.duplicated
        ));
    }
    eprintln!("min_replicas 0:\n{}", report.join("\n"));
}

/// A planned failover (`SENTINEL FAILOVER`): the old primary stays up as a replica, so the
/// gateway's connection to it still answers, but refuses writes with `READONLY`. The gateway
/// asks the sentinels again and accepts events on the new primary; `/readyz` never stays on a
/// replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demoted_primary_is_left_for_the_new_one() {
    let ha = Sentinels::start(Duration::ZERO);
    let backend = Backend::start();
    let opts = Opts {
        store: Some(json!({"kind": "redis", "url": ha.url()})),
        ..Opts::default()
    };
    let routes = route(
        "q",
        "/hooks/q",
        &backend.url("/up"),
        mc_verify(&[("k1", SECRET)]),
    )
    .merge(json!({"delivery": {"mode": "queue"}}));
    let gw = Gateway::start(config(&opts, &routes));
    let r = post_mc(gw.addr(), "/hooks/q", SECRET, &body(0)).await;
    assert_eq!(r.status, 202, "{}", r.text());

    let sentinel = ha.sentinels[0].port();
    let reply = crate::common::redis::command_on(
        sentinel,
        &format!("SENTINEL FAILOVER {}", crate::common::redis_ha::MASTER),
    );
    assert!(reply.starts_with("+OK"), "{reply}");
    let new_port = ha.replica.port();
    tokio::task::spawn_blocking({
        let waiter = SentinelWait::of(&ha);
        move || waiter.wait(new_port)
    })
    .await
    .expect("waiting for the promotion");
    // The old primary is demoted: it answers, as a replica.
    wait_until("the old primary to become a replica", FAILOVER_WAIT, || {
        ha.primary.command("ROLE").contains("slave")
    });

    let deadline = Instant::now() + Duration::from_secs(30);
    let mut i = 1;
    loop {
        let r = post_mc(gw.addr(), "/hooks/q", SECRET, &body(i)).await;
        assert!(matches!(r.status, 202 | 503), "{}: {}", r.status, r.text());
        if r.status == 202 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never accepted on the new primary"
        );
        i += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(gw.admin_get("/readyz").status, 200);
    assert!(backend.wait_count(2).await, "both events delivered");
    gw.assert_no_panic();
}
