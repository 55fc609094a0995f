//! The Redis store on a Redis Cluster of three primaries (`redis+cluster://`): dedup across
//! replicas, the fleet's route limit, queue delivery and dead letters all work; all keys of a
//! route (dedup, limit and its own queue) share one slot, and routes live on different nodes.

use crate::common::redis_ha::Cluster;
use crate::common::store::{event, meta};
use crate::common::*;
use hookgate::store::{Claim, Meta, RedisStore, Replicas, Selection, Store};

const SECRET: &str = "cluster-secret";

/// The hash tag of a route's keys.
fn tag(name: &str) -> String {
    format!("{{hookgate:route:{name}}}")
}

/// A route name starting with `stem` whose keys the cluster keeps on another node than
/// `other`'s (by their hash tags).
fn elsewhere(cluster: &Cluster, stem: &str, other: &str) -> String {
    let owner = |name: &str| cluster.owner(cluster.slot(&tag(name)));
    (0..100)
        .map(|i| format!("{stem}{i}"))
        .find(|n| owner(n) != owner(other))
        .expect("a route name on another node")
}

/// An integer reply (`:1`) as a number; -1 for anything else.
fn int_reply(reply: &str) -> i64 {
    reply.trim().trim_start_matches(':').parse().unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_runs_dedup_limits_queue_and_dead_letters() {
    let cluster = Cluster::start(3);
    let queued = "queued".to_string();
    let limited = elsewhere(&cluster, "limited", &queued);
    let other = elsewhere(&cluster, "other", &queued);
    let dead = elsewhere(&cluster, "dead", &queued);
    let backend = Backend::start();
    let failing = Backend::start_with(Behaviour {
        status: 500,
        ..Behaviour::default()
    });
    let routes = vec![
        route(
            &queued,
            "/hooks/q",
            &backend.url("/q"),
            mc_verify(&[("k1", SECRET)]),
        )
        .merge(json!({
            "dedup": {},
            // A slow rate keeps the bucket's key for a minute, to be looked at below.
            "rate_limit": {"route": {"rate": "1/m", "burst": 100}},
            "delivery": {"mode": "queue", "backoff": {"base": "10ms", "max": "100ms"}},
        })),
        route(
            &other,
            "/hooks/o",
            &backend.url("/o"),
            mc_verify(&[("k1", SECRET)]),
        )
        .merge(json!({
            "dedup": {},
            "delivery": {"mode": "queue", "backoff": {"base": "10ms", "max": "100ms"}},
        })),
        route(
            &limited,
            "/hooks/s",
            &backend.url("/s"),
            mc_verify(&[("k1", SECRET)]),
        )
        .merge(json!({
            "dedup": {},
            "rate_limit": {"route": {"rate": "1/m", "burst": 3}},
        })),
        route(
            &dead,
            "/hooks/d",
            &failing.url("/d"),
            mc_verify(&[("k1", SECRET)]),
        )
        .merge(json!({
            "dedup": {},
            "rate_limit": {"route": {"rate": "1/m", "burst": 100}},
            "delivery": {"mode": "queue", "max_attempts": 1},
        })),
    ];
    let opts = Opts {
        store: Some(json!({"kind": "redis", "url": cluster.url(), "lease": "2s"})),
        ..Opts::default()
    };
    let a = Gateway::start(config(&opts, &routes));
    let b = Gateway::start(config(&opts, &routes));
    for gw in [&a, &b] {
        wait_until("ready on the cluster", WAIT, || {
            gw.admin_get("/readyz").status == 200
        });
    }

    // Queue delivery on two routes on two nodes, and dedup across replicas.
    let event = b"{\"job_id\":\"c1\",\"status\":\"COMPLETE\"}";
    let r = post_mc(a.addr(), "/hooks/q", SECRET, event).await;
    assert_eq!(r.status, 202, "{}", r.text());
    let dup = post_mc(b.addr(), "/hooks/q", SECRET, event).await;
    assert_eq!(dup.text(), r#"{"status":"duplicate"}"#);
    for i in 0..10 {
        let body = format!("{{\"job_id\":\"q{i}\"}}");
        let gw = if i % 2 == 0 { &a } else { &b };
        let r = post_mc(gw.addr(), "/hooks/q", SECRET, body.as_bytes()).await;
        assert_eq!(r.status, 202, "{}", r.text());
    }
    for i in 0..4 {
        let body = format!("{{\"job_id\":\"o{i}\"}}");
        let gw = if i % 2 == 0 { &b } else { &a };
        let r = post_mc(gw.addr(), "/hooks/o", SECRET, body.as_bytes()).await;
        assert_eq!(r.status, 202, "{}", r.text());
    }
    let dup = post_mc(a.addr(), "/hooks/o", SECRET, b"{\"job_id\":\"o0\"}").await;
    assert_eq!(dup.text(), r#"{"status":"duplicate"}"#);
    assert!(backend.wait_count(15).await, "every queued event delivered");
    let paths = |p: &str| backend.requests().iter().filter(|r| r.uri == p).count();
    assert_eq!((paths("/q"), paths("/o")), (11, 4), "both routes delivered");

    // The fleet's limit: burst 3 across both replicas.
    let mut statuses = Vec::new();
    for i in 0..6 {
        let gw = if i % 2 == 0 { &a } else { &b };
        let body = format!("{{\"job_id\":\"s{i}\"}}");
        statuses.push(
            post_mc(gw.addr(), "/hooks/s", SECRET, body.as_bytes())
                .await
                .status,
        );
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429, 429]);

    // A dead letter, seen by the whole fleet.
    let r = post_mc(a.addr(), "/hooks/d", SECRET, b"{\"job_id\":\"d1\"}").await;
    assert_eq!(r.status, 202, "{}", r.text());
    a.wait_metric("hookgate_dead_letters", &[("route", &dead)], |v| v == 1.0);
    b.wait_metric("hookgate_dead_letters", &[("route", &dead)], |v| v == 1.0);
    // Paused, the route keeps its next event pending (a owns it: it accepted it).
    let (status, v) = admin_call(&a, "", "POST", &format!("/api/routes/{dead}/pause"), None).await;
    assert_eq!(status, 200, "{v}");
    let r = post_mc(a.addr(), "/hooks/d", SECRET, b"{\"job_id\":\"d2\"}").await;
    assert_eq!(r.status, 202, "{}", r.text());

    let seen: Vec<Vec<u8>> = backend.requests().into_iter().map(|r| r.body).collect();
    assert_eq!(seen.iter().filter(|b| b.as_slice() == event).count(), 1);
    assert_eq!(seen.len(), 11 + 4 + 3);

    // All keys of a route in one slot, on the node serving it: dedup, limit and its queue.
    let mut homes = Vec::new();
    for name in [&queued, &other, &limited, &dead] {
        let found = cluster.keys(&format!("{}*", tag(name)));
        assert_eq!(found.len(), 1, "{name}'s keys on one node: {found:?}");
        let (port, keys) = &found[0];
        assert!(keys.iter().any(|k| k.contains("dedup:")), "{keys:?}");
        let slot = cluster.slot(&tag(name));
        assert!(keys.iter().all(|k| cluster.slot(k) == slot), "{keys:?}");
        assert_eq!(*port, cluster.owner(slot));
        homes.push(*port);
    }
    assert_ne!(
        homes[0], homes[1],
        "the two delivering routes on different nodes"
    );
    assert_ne!(
        homes[0], homes[3],
        "the dead letters on another node than queued's"
    );
    let (_, queued_keys) = &cluster.keys(&format!("{}*", tag(&queued)))[0];
    for k in ["queue", "limit"] {
        assert!(
            queued_keys.iter().any(|q| q.ends_with(k)),
            "{k}: {queued_keys:?}"
        );
    }
    // The dead route's queue: its stream, an event pending and one dead, the dead letters and
    // the count, a heartbeat, next to its dedup marks and its limit.
    let (port, dead_keys) = &cluster.keys(&format!("{}*", tag(&dead)))[0];
    for k in ["queue", "dead", "dead:count", "limit"] {
        let key = format!("{}{k}", tag(&dead));
        assert!(dead_keys.contains(&key), "{key}: {dead_keys:?}");
    }
    assert!(
        dead_keys.iter().any(|k| k.contains("alive:")),
        "{dead_keys:?}"
    );
    let node = cluster
        .nodes
        .iter()
        .find(|n| n.port() == *port)
        .expect("the dead route's node");
    let events: Vec<&String> = dead_keys.iter().filter(|k| k.contains("event:")).collect();
    assert_eq!(events.len(), 2, "{dead_keys:?}");
    let fields = |f: &str| {
        events
            .iter()
            .filter(|k| int_reply(&node.command(&format!("HEXISTS \"{k}\" {f}"))) == 1)
            .count()
    };
    assert_eq!(
        (fields("sid"), fields("dsid")),
        (1, 1),
        "one pending, one dead"
    );
    // Nothing is left under the single queue tag of earlier versions.
    assert!(cluster.keys("{hookgate:queue}*").is_empty());

    // The dead letter, on another node than the first route's queue, is listed and replayed
    // through the admin API of either replica; resumed, the paused event is delivered too.
    let (status, v) = admin_call(&b, "", "GET", "/admin/dlq", None).await;
    assert_eq!(status, 200, "{v}");
    let listed = v["dead_letters"].as_array().cloned().unwrap_or_default();
    assert_eq!(listed.len(), 1, "{v}");
    assert_eq!(listed[0]["route"], json!(dead), "{v}");
    failing.set(Behaviour::default());
    let (status, v) = admin_call(&b, "", "POST", &format!("/api/routes/{dead}/resume"), None).await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = admin_call(
        &b,
        "",
        "POST",
        "/admin/dlq/replay",
        Some(json!({"route": dead})),
    )
    .await;
    assert_eq!((status, &v["replayed"]), (200, &json!(1)), "{v}");
    assert!(failing.wait_count(3).await, "d1 twice, d2 once");
    let bodies: Vec<Vec<u8>> = failing.requests().into_iter().map(|r| r.body).collect();
    for body in [&b"{\"job_id\":\"d1\"}"[..], b"{\"job_id\":\"d2\"}"] {
        assert!(bodies.iter().any(|b| b.as_slice() == body), "{bodies:?}");
    }
    for gw in [&a, &b] {
        gw.wait_metric("hookgate_dead_letters", &[("route", &dead)], |v| v == 0.0);
    }
    wait_until("the dead route's queue to empty", WAIT, || {
        int_reply(&node.command(&format!("XLEN \"{}queue\"", tag(&dead)))) == 0
            && int_reply(&node.command(&format!("XLEN \"{}dead\"", tag(&dead)))) == 0
    });

    // The journal's too, written by both replicas (its writer batches in the background).
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let journal = cluster.keys("{hookgate:journal}*");
        assert!(journal.len() <= 1, "{journal:?}");
        let recorded = journal.first().map_or(0, |(port, _)| {
            let n = cluster
                .nodes
                .iter()
                .find(|n| n.port() == *port)
                .map(|n| n.command("HLEN {hookgate:journal}events"))
                .unwrap_or_default();
            n.trim()
                .trim_start_matches(':')
                .parse::<usize>()
                .unwrap_or(0)
        });
        // 12 + 5 queued (two duplicates), 6 sync, 2 dead: every request is an event.
        if recorded >= 25 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the journal holds {recorded} events"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    for gw in [&a, &b] {
        assert_eq!(
            gw.metric("hookgate_journal_dropped_total", &[("reason", "store")]),
            0.0
        );
    }
}

fn by_id(mut metas: Vec<Meta>) -> Vec<Meta> {
    metas.sort_by_key(|m| m.id);
    metas
}

/// The store on a Cluster, where each route has a queue of its own: an event and its dedup mark
/// are written together; a replica that never queued on a route still lists its events, adopts
/// them from a replica that stopped renewing, and lists, counts and replays its dead letters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_routes_queue_is_walked_by_the_fleet() {
    let cluster = Cluster::start(3);
    let lease = std::time::Duration::from_millis(300);
    let open =
        || RedisStore::open(&cluster.url(), "hookgate:", lease, Replicas::default()).expect("open");
    let (a, b) = (open(), open());
    let first = "queued".to_string();
    let second = elsewhere(&cluster, "other", &first);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    let m1 = a
        .enqueue(&event(1), meta(&first, Some("k1")), Some(now + 60_000))
        .await
        .unwrap();
    let m2 = a
        .enqueue(&event(2), meta(&second, None), None)
        .await
        .unwrap();
    assert!(m1.id < m2.id, "one counter for every route");
    assert_eq!(
        b.claim(&first, "k1", now, 1_000).await.unwrap(),
        Claim::Duplicate,
        "marked with the event"
    );
    assert_eq!(
        cluster.keys("hookgate:routes").len(),
        1,
        "the routes with a queue: {:?}",
        cluster.keys("*")
    );
    assert_eq!(
        by_id(b.pending().await.unwrap()),
        vec![m1.clone(), m2.clone()]
    );
    assert_eq!(b.event(&first, m1.id).await.unwrap(), None, "a's, not b's");

    // a never renews (as if killed): once its heartbeats lapse b adopts on both routes.
    let deadline = std::time::Instant::now() + WAIT;
    let mut adopted = Vec::new();
    while adopted.len() < 2 {
        adopted.extend(b.renew(&[]).await.unwrap().adopted);
        assert!(std::time::Instant::now() < deadline, "adopted {adopted:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(by_id(adopted), vec![m1.clone(), m2.clone()]);
    assert_eq!(b.event(&first, m1.id).await.unwrap(), Some(event(1)));
    assert_eq!(b.event(&second, m2.id).await.unwrap(), Some(event(2)));
    let held = [(first.clone(), m1.id), (second.clone(), m2.id)];
    let mut lost = a.renew(&held).await.unwrap().lost;
    lost.sort_unstable();
    assert_eq!(lost, vec![m1.id, m2.id], "a learns it lost both");

    // Dead letters on both routes, seen, counted and replayed by a.
    b.dead_letter(&m1).await.unwrap();
    b.dead_letter(&m2).await.unwrap();
    assert_eq!(
        by_id(a.dead_letters().await.unwrap()),
        vec![m1.clone(), m2.clone()]
    );
    let dead = a.renew(&[]).await.unwrap().dead;
    assert_eq!((dead.get(&first), dead.get(&second)), (Some(&1), Some(&1)));
    let replayed = a.replay(&Selection::All, now).await.unwrap();
    assert_eq!(replayed.len(), 2);
    assert_eq!(a.event(&second, m2.id).await.unwrap(), Some(event(2)));
    assert!(a.dead_letters().await.unwrap().is_empty());
    for (route, id) in held {
        a.ack(&route, id).await.unwrap();
    }
    assert!(b.pending().await.unwrap().is_empty());
}
