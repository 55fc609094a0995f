//! The Redis store on a Redis Cluster of three primaries (`redis+cluster://`): dedup across
//! replicas, the fleet's route limit, queue delivery and dead letters all work; a route's keys
//! share one slot, and two routes can live on different nodes.

use crate::common::redis_ha::Cluster;
use crate::common::*;

const SECRET: &str = "cluster-secret";

/// Two route names whose keys the cluster keeps on different nodes (by their hash tags).
fn routes_on_different_nodes(cluster: &Cluster) -> (String, String) {
    let owner = |name: &str| cluster.owner(cluster.slot(&format!("{{hookgate:route:{name}}}")));
    let first = "queued".to_string();
    let second = (0..100)
        .map(|i| format!("limited{i}"))
        .find(|n| owner(n) != owner(&first))
        .expect("a route name on another node");
    (first, second)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_runs_dedup_limits_queue_and_dead_letters() {
    let cluster = Cluster::start(3);
    let (queued, limited) = routes_on_different_nodes(&cluster);
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
            "dead",
            "/hooks/d",
            &failing.url("/d"),
            mc_verify(&[("k1", SECRET)]),
        )
        .merge(json!({
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
        let deadline = std::time::Instant::now() + WAIT;
        while gw.admin_get("/readyz").status != 200 {
            assert!(
                std::time::Instant::now() < deadline,
                "not ready on the cluster"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    // Queue delivery, and dedup across replicas.
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
    assert!(backend.wait_count(11).await, "every queued event delivered");

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
    a.wait_metric("hookgate_dead_letters", &[("route", "dead")], |v| v == 1.0);
    b.wait_metric("hookgate_dead_letters", &[("route", "dead")], |v| v == 1.0);

    let seen: Vec<Vec<u8>> = backend.requests().into_iter().map(|r| r.body).collect();
    assert_eq!(seen.iter().filter(|b| b.as_slice() == event).count(), 1);
    assert_eq!(seen.len(), 11 + 3);

    // Each route's keys in one slot, on the node serving it; the two routes on two nodes.
    let mut homes = Vec::new();
    for name in [&queued, &limited] {
        let tag = format!("{{hookgate:route:{name}}}");
        let found = cluster.keys(&format!("{tag}*"));
        assert_eq!(found.len(), 1, "{name}'s keys on one node: {found:?}");
        let (port, keys) = &found[0];
        assert!(keys.iter().any(|k| k.ends_with("limit")), "{keys:?}");
        assert!(keys.iter().any(|k| k.contains("dedup:")), "{keys:?}");
        let slot = cluster.slot(&tag);
        assert!(keys.iter().all(|k| cluster.slot(k) == slot), "{keys:?}");
        assert_eq!(*port, cluster.owner(slot));
        homes.push(*port);
    }
    assert_ne!(homes[0], homes[1], "the two routes on different nodes");
    // The queue's keys (stream, events, dead letters, heartbeats) together on one node.
    let queue = cluster.keys("{hookgate:queue}*");
    assert_eq!(queue.len(), 1, "{queue:?}");
    assert!(queue[0].1.iter().any(|k| k.ends_with("dead")), "{queue:?}");
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
        // 12 queued (one a duplicate), 6 sync, 1 dead: every request is an event.
        if recorded >= 19 {
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
