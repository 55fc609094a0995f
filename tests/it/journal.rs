//! The event journal and the admin API through the real binary: what each request came to,
//! replays, pausing a route, the admin token. Real backends on 127.0.0.1.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::*;
use base64::Engine as _;

const SECRET: &str = "journal-secret-0123";
const TOKEN: &str = "admin-token-abc";

fn mc(name: &str, upstream: &str, extra: Value) -> Value {
    hooks_route(name, upstream, SECRET, extra)
}

fn with_token(mut c: Value) -> Value {
    c["admin"]["token"] = json!({"id": "admin", "value": TOKEN});
    c
}

fn durable(dir: &Path, routes: impl Routes) -> Value {
    let opts = Opts {
        store: Some(redb_store(&dir.join("hookgate.redb"))),
        ..Opts::default()
    };
    with_token(config(&opts, routes))
}

async fn api(gw: &Gateway, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    admin_call(gw, TOKEN, method, path, body).await
}

async fn api_until(gw: &Gateway, path: &str, f: impl Fn(&Value) -> bool) -> Value {
    admin_until(gw, TOKEN, path, f).await
}

#[tokio::test]
async fn refusals_are_journaled_with_reason_and_redacted_headers() {
    let backend = Backend::start();
    let gw = Gateway::start(with_token(config(
        &Opts::default(),
        [mc("mc", &backend.url("/in"), json!({}))],
    )));
    let body = br#"{"job_id":"j1","status":"completed"}"#;
    let forged = sha256_header("wrong-secret", body);
    let r = post(
        gw.addr(),
        "/hooks/mc?trace=1",
        &[
            ("x-mediaconvert-signature", &forged),
            ("authorization", "Bearer sender-credential"),
        ],
        body,
    )
    .await;
    assert_eq!(r.status, 401);
    let r = post(gw.addr(), "/nowhere", &[], b"{}").await;
    assert_eq!(r.status, 404);

    let list = api_until(&gw, "/api/events?outcome=rejected", |v| {
        events(v).len() == 2
    })
    .await;
    let newest = &events(&list)[0];
    assert_eq!(
        newest["route"],
        Value::Null,
        "refused before routing: {newest}"
    );
    assert_eq!(newest["reason"], "no_route");
    let forged_event = &events(&list)[1];
    assert_eq!(forged_event["route"], "mc");
    assert_eq!(forged_event["reason"], "mismatch");
    assert_eq!(forged_event["status"], 401);

    let id = forged_event["id"].as_str().unwrap();
    let (status, full) = api(&gw, "GET", &format!("/api/events/{id}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(full["query"], "trace=1");
    let headers = full["headers"].as_array().unwrap();
    let value = |name: &str| {
        headers
            .iter()
            .find(|h| h[0] == name)
            .map(|h| h[1].as_str().unwrap().to_string())
    };
    assert_eq!(
        value("x-mediaconvert-signature").as_deref(),
        Some("[redacted]")
    );
    assert_eq!(value("authorization").as_deref(), Some("[redacted]"));
    let kept = base64::engine::general_purpose::STANDARD
        .decode(full["body_b64"].as_str().unwrap())
        .unwrap();
    assert_eq!(kept, body);
    let (status, _) = api(&gw, "GET", "/api/events/nope", None).await;
    assert_eq!(status, 404);

    // A rejected event was never accepted: it cannot be replayed.
    let (status, v) = api(
        &gw,
        "POST",
        &format!("/api/events/{id}/replay"),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 409, "{v}");

    // Nothing secret anywhere in what the API shows.
    let (_, all) = api(&gw, "GET", "/api/events?limit=100", None).await;
    let (_, one) = api(&gw, "GET", &format!("/api/events/{id}"), None).await;
    for text in [all.to_string(), one.to_string()] {
        assert!(
            !text.contains(&forged[7..]),
            "signature value in the journal"
        );
        assert!(!text.contains("sender-credential"));
        assert!(!text.contains(SECRET));
    }
}

#[tokio::test]
async fn replay_sends_the_exact_body_again_with_the_replay_header() {
    let backend = Backend::start();
    let gw = Gateway::start(with_token(config(
        &Opts::default(),
        [mc("mc", &backend.url("/in"), json!({"dedup": {}}))],
    )));
    let body = b"{\"job_id\":\"j2\",\n \"status\":\"completed\"}\n";
    let r = post_mc(gw.addr(), "/hooks/mc", SECRET, body).await;
    assert_eq!(r.status, 200);
    let list = api_until(&gw, "/api/events?outcome=forwarded", |v| {
        events(v).len() == 1
    })
    .await;
    let id = events(&list)[0]["id"].as_str().unwrap().to_string();

    let (status, v) = api(
        &gw,
        "POST",
        &format!("/api/events/{id}/replay"),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["outcome"], "forwarded");
    let seen = backend.requests();
    assert_eq!(
        seen.len(),
        2,
        "delivered again though its dedup key was seen"
    );
    let again = &seen[1];
    assert_eq!(again.body, body, "byte for byte");
    assert_eq!(
        again.header("x-webhook-replay").as_deref(),
        Some(id.as_str())
    );
    assert_eq!(again.header("x-webhook-verified").as_deref(), Some("true"));
    assert!(
        !again.has("x-mediaconvert-signature"),
        "the redacted signature is not sent"
    );

    let replay_id = v["id"].as_str().unwrap().to_string();
    let (_, replayed) = api(&gw, "GET", &format!("/api/events/{replay_id}"), None).await;
    assert_eq!(replayed["replay_of"], id.as_str());

    // With the route's dedup respected, the seen key is not sent a third time.
    let (status, v) = api(
        &gw,
        "POST",
        &format!("/api/events/{id}/replay"),
        Some(json!({"dedup": true})),
    )
    .await;
    assert_eq!((status, v["outcome"].as_str()), (200, Some("duplicate")));
    assert_eq!(backend.requests().len(), 2);
    assert!(gw.metric("hookgate_replays_total", &[("route", "mc")]) >= 2.0);
}

#[tokio::test]
async fn bulk_replay_counts_what_it_sends() {
    let backend = Backend::start_with(Behaviour {
        status: 503,
        ..Behaviour::default()
    });
    let gw = Gateway::start(with_token(config(
        &Opts::default(),
        [mc("mc", &backend.url("/in"), json!({}))],
    )));
    for i in 0..4 {
        let body = format!("{{\"job_id\":\"b{i}\",\"status\":\"completed\"}}");
        let r = post_mc(gw.addr(), "/hooks/mc", SECRET, body.as_bytes()).await;
        assert_eq!(r.status, 503);
    }
    api_until(&gw, "/api/events?route=mc", |v| events(v).len() == 4).await;
    backend.set(Behaviour::default());
    let filter = json!({"route": "mc", "outcome": "forwarded", "since": "1h", "dry_run": true});
    let (status, v) = api(&gw, "POST", "/api/replay", Some(filter)).await;
    assert_eq!((status, v["matched"].as_u64()), (200, Some(4)), "{v}");
    assert_eq!(backend.requests().len(), 4, "a dry run sends nothing");
    let (status, v) = api(
        &gw,
        "POST",
        "/api/replay",
        Some(json!({"route": "mc", "outcome": "forwarded"})),
    )
    .await;
    assert_eq!((status, v["replayed"].as_u64()), (200, Some(4)), "{v}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while backend.requests().len() < 8 {
        assert!(Instant::now() < deadline, "replays not delivered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let delivered = backend.requests();
    let replayed: Vec<_> = delivered[4..].iter().map(|r| r.body.clone()).collect();
    for i in 0..4 {
        let body = format!("{{\"job_id\":\"b{i}\",\"status\":\"completed\"}}");
        assert_eq!(
            replayed.iter().filter(|b| **b == body.as_bytes()).count(),
            1,
            "each once"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_route_accepts_and_delivers_after_resume() {
    let backend = Backend::start();
    let dir = tempfile::tempdir().unwrap();
    let q = json!({"delivery": {"mode": "queue", "backoff": {"base": "10ms", "max": "50ms"}}});
    let sync = mc("s", &backend.url("/s"), json!({}));
    let gw = Gateway::start(durable(dir.path(), [mc("q", &backend.url("/q"), q), sync]));
    let (status, v) = api(&gw, "POST", "/api/routes/q/pause", Some(json!({}))).await;
    assert_eq!((status, v["paused"].as_bool()), (200, Some(true)), "{v}");
    let (status, _) = api(&gw, "POST", "/api/routes/s/pause", Some(json!({}))).await;
    assert_eq!(status, 409, "a sync route cannot be paused");
    let (status, _) = api(&gw, "POST", "/api/routes/nope/pause", Some(json!({}))).await;
    assert_eq!(status, 404);
    assert_eq!(gw.metric("hookgate_route_paused", &[("route", "q")]), 1.0);

    for i in 0..3 {
        let body = format!("{{\"job_id\":\"p{i}\",\"status\":\"completed\"}}");
        let r = post_mc(gw.addr(), "/hooks/q", SECRET, body.as_bytes()).await;
        assert_eq!(r.status, 202);
    }
    let routes = api_until(&gw, "/api/routes", |v| {
        v["routes"][0]["queue_depth"] == 3 && v["routes"][0]["paused"] == true
    })
    .await;
    assert_eq!(routes["routes"][0]["mode"], "queue");
    assert!(
        backend.requests().is_empty(),
        "nothing delivered while paused"
    );

    let (status, _) = api(&gw, "POST", "/api/routes/q/resume", Some(json!({}))).await;
    assert_eq!(status, 200);
    let list = api_until(&gw, "/api/events?route=q", |v| {
        let e = events(v);
        e.len() == 3 && e.iter().all(|e| e["state"] == "delivered")
    })
    .await;
    assert_eq!(backend.requests().len(), 3, "each once");
    let id = events(&list)[0]["id"].as_str().unwrap().to_string();
    let (_, full) = api(&gw, "GET", &format!("/api/events/{id}"), None).await;
    let attempts = full["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{full}");
    assert_eq!(attempts[0]["status"], 200);
}

#[tokio::test]
async fn the_admin_api_needs_the_token_and_mutations_need_json() {
    let backend = Backend::start();
    let gw = Gateway::start(with_token(config(
        &Opts::default(),
        [mc("mc", &backend.url("/in"), json!({}))],
    )));
    for path in ["/api/events", "/api/routes", "/admin/dlq"] {
        let r = send(gw.admin(), "GET", path, &[], b"").await;
        assert_eq!(r.status, 401, "{path} without a token");
        let r = send(
            gw.admin(),
            "GET",
            path,
            &[("authorization", "Bearer wrong")],
            b"",
        )
        .await;
        assert_eq!(r.status, 401, "{path} with a wrong token");
        assert!(!r.text().contains(TOKEN));
    }
    let (status, _) = api(&gw, "GET", "/api/events", None).await;
    assert_eq!(status, 200);
    let auth = format!("Bearer {TOKEN}");
    let r = send(
        gw.admin(),
        "POST",
        "/api/routes/mc/pause",
        &[("authorization", &auth), ("content-type", "text/plain")],
        b"",
    )
    .await;
    assert_eq!(r.status, 415, "mutations are JSON");
    // Probes and metrics stay open.
    let r = send(gw.admin(), "GET", "/healthz", &[], b"").await;
    assert_eq!(r.status, 200);
    let r = send(gw.admin(), "GET", "/metrics", &[], b"").await;
    assert_eq!(r.status, 200);
}

#[test]
fn a_public_admin_listener_without_a_token_is_refused() {
    let backend = Backend::start();
    let mut c = config(&Opts::default(), [mc("mc", &backend.url("/in"), json!({}))]);
    c["admin"]["listen"] = json!("0.0.0.0:0");
    let out = run_with_config("check", &c, &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("admin.listen") && err.contains("admin.token"),
        "{err}"
    );
    c["admin"]["token"] = json!({"id": "admin", "value": TOKEN});
    let out = run_with_config("check", &c, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn a_refusal_flood_is_counted_not_recorded() {
    let backend = Backend::start();
    let mut c = with_token(config(
        &Opts::default(),
        [mc("mc", &backend.url("/in"), json!({}))],
    ));
    c["journal"] = json!({"max_refusals_per_second": 3});
    let gw = Gateway::start(c);
    for _ in 0..20 {
        let r = post(
            gw.addr(),
            "/hooks/mc",
            &[("x-mediaconvert-signature", "sha256=00")],
            b"{}",
        )
        .await;
        assert_eq!(r.status, 401);
    }
    let dropped = gw.wait_metric(
        "hookgate_journal_dropped_total",
        &[("reason", "refusal_rate")],
        |v| v > 0.0,
    );
    let list = api_until(&gw, "/api/events?limit=100", |v| {
        events(v).len() as f64 + dropped >= 20.0
    })
    .await;
    let recorded = events(&list).len();
    assert_eq!(recorded as f64 + dropped, 20.0);
    assert!((3..20).contains(&recorded), "{recorded} recorded");
}

#[test]
fn the_cli_lists_events_and_pauses_routes() {
    let backend = Backend::start();
    let dir = tempfile::tempdir().unwrap();
    let q = json!({"delivery": {"mode": "queue"}});
    let gw = Gateway::start(durable(dir.path(), [mc("q", &backend.url("/q"), q)]));
    let admin = gw.admin().to_string();
    let env = [("HOOKGATE_ADMIN_TOKEN", TOKEN)];
    let out = run_cli(&["routes", "pause", "q", "--admin", &admin], &env, None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run_cli(&["routes", "list", "--admin", &admin], &env, None);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.contains("q\tqueue\ttrue"), "{text}");
    let out = run_cli(&["events", "list", "--admin", &admin], &env, None);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("no events match"));
    let out = run_cli(&["events", "list", "--admin", &admin], &[], None);
    assert_eq!(out.status.code(), Some(1), "no token");
    assert!(String::from_utf8_lossy(&out.stderr).contains("token"));
}

#[tokio::test]
async fn a_restart_keeps_the_redb_journal_and_the_pause() {
    let backend = Backend::start();
    let dir = tempfile::tempdir().unwrap();
    let q = json!({"delivery": {"mode": "queue", "backoff": {"base": "10ms", "max": "50ms"}}});
    let cfg = durable(
        dir.path(),
        [
            mc("q", &backend.url("/q"), q),
            mc("s", &backend.url("/s"), json!({})),
        ],
    );
    let gw = Gateway::start(cfg.clone());
    let (status, _) = api(&gw, "POST", "/api/routes/q/pause", Some(json!({}))).await;
    assert_eq!(status, 200);
    let queued = b"{\"job_id\":\"kept\",\"status\":\"completed\"}";
    assert_eq!(
        post_mc(gw.addr(), "/hooks/q", SECRET, queued).await.status,
        202
    );
    let forged = sha256_header("forged-secret", b"{}");
    let r = post(
        gw.addr(),
        "/hooks/s",
        &[
            ("x-mediaconvert-signature", &forged),
            ("authorization", "Bearer sender-credential"),
        ],
        b"{}",
    )
    .await;
    assert_eq!(r.status, 401);
    api_until(&gw, "/api/events", |v| events(v).len() == 2).await;
    gw.sigterm();
    assert!(gw.wait_exit(WAIT).is_some(), "stops on SIGTERM");
    // The file holds the journal, and not the refused request's signature or credential.
    let file = std::fs::read(dir.path().join("hookgate.redb")).unwrap();
    let holds = |s: &str| file.windows(s.len()).any(|w| w == s.as_bytes());
    assert!(
        holds("\"outcome\":\"rejected\""),
        "the journal is in the file"
    );
    assert!(!holds(&forged[7..]), "a signature value in the file");
    assert!(!holds("sender-credential"));
    assert!(!holds(SECRET));

    let gw = Gateway::start(cfg);
    let list = api_until(&gw, "/api/events", |v| events(v).len() == 2).await;
    let outcomes: Vec<String> = events(&list)
        .iter()
        .map(|e| e["outcome"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(outcomes, ["rejected", "queued"], "{list}");
    let routes = api_until(&gw, "/api/routes", |v| v["routes"][0]["queue_depth"] == 1).await;
    assert_eq!(
        routes["routes"][0]["paused"], true,
        "the pause outlived the restart"
    );
    assert_eq!(gw.metric("hookgate_route_paused", &[("route", "q")]), 1.0);
    assert!(backend.requests().is_empty(), "nothing sent while paused");

    let (status, _) = api(&gw, "POST", "/api/routes/q/resume", Some(json!({}))).await;
    assert_eq!(status, 200);
    api_until(&gw, "/api/events?route=q&state=delivered", |v| {
        events(v).len() == 1
    })
    .await;
    let seen = backend.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body, queued);
}

#[tokio::test]
async fn replicas_on_redis_share_the_journal_and_the_pause() {
    let redis = crate::common::redis::RedisServer::start();
    let backend = Backend::start();
    let q = json!({"delivery": {"mode": "queue", "backoff": {"base": "10ms", "max": "50ms"}}});
    let opts = Opts {
        store: Some(redis.store()),
        ..Opts::default()
    };
    let cfg = with_token(config(
        &opts,
        [
            mc("q", &backend.url("/q"), q),
            mc("s", &backend.url("/s"), json!({})),
        ],
    ));
    let a = Gateway::start(cfg.clone());
    let b = Gateway::start(cfg);

    // Accepted by A, listed and replayed through B.
    let body = b"{\"job_id\":\"fleet\",\"status\":\"completed\"}";
    assert_eq!(
        post_mc(a.addr(), "/hooks/s", SECRET, body).await.status,
        200
    );
    let list = api_until(&b, "/api/events?route=s", |v| events(v).len() == 1).await;
    let id = events(&list)[0]["id"].as_str().unwrap().to_string();
    let (status, v) = api(
        &b,
        "POST",
        &format!("/api/events/{id}/replay"),
        Some(json!({})),
    )
    .await;
    assert_eq!(
        (status, v["outcome"].as_str()),
        (200, Some("forwarded")),
        "{v}"
    );
    let seen = backend.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].body, body);
    assert_eq!(
        seen[1].header("x-webhook-replay").as_deref(),
        Some(id.as_str())
    );
    let (_, replay) = api(
        &a,
        "GET",
        &format!("/api/events/{}", v["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(replay["replay_of"], id.as_str(), "A sees B's replay");
    // What Redis holds of a refused request: redacted, like the API's view.
    let forged = sha256_header("forged-secret", body);
    let r = post(
        a.addr(),
        "/hooks/s",
        &[("x-mediaconvert-signature", &forged)],
        body,
    )
    .await;
    assert_eq!(r.status, 401);
    api_until(&b, "/api/events?outcome=rejected", |v| events(v).len() == 1).await;
    let out = std::process::Command::new("redis-cli")
        .args(["-u", &redis.url(), "HVALS", "hookgate:journal:events"])
        .output()
        .expect("run redis-cli");
    let stored = String::from_utf8_lossy(&out.stdout);
    assert!(stored.contains("[redacted]"), "{stored}");
    assert!(!stored.contains(&forged[7..]), "a signature value in Redis");
    assert!(!stored.contains(SECRET));

    // Paused through A: B holds its events too, and resumes when told through B.
    let (status, _) = api(&a, "POST", "/api/routes/q/pause", Some(json!({}))).await;
    assert_eq!(status, 200);
    api_until(&b, "/api/routes", |v| {
        v["routes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "q" && r["paused"] == true)
    })
    .await;
    let queued = b"{\"job_id\":\"held\",\"status\":\"completed\"}";
    assert_eq!(
        post_mc(b.addr(), "/hooks/q", SECRET, queued).await.status,
        202
    );
    api_until(&a, "/api/events?route=q", |v| events(v).len() == 1).await;
    assert_eq!(
        backend.requests().len(),
        2,
        "nothing delivered while paused"
    );
    let (status, _) = api(&b, "POST", "/api/routes/q/resume", Some(json!({}))).await;
    assert_eq!(status, 200);
    let list = api_until(&a, "/api/events?route=q&state=delivered", |v| {
        events(v).len() == 1
    })
    .await;
    assert_eq!(events(&list)[0]["attempts"], 1, "{list}");
    let seen = backend.requests();
    assert_eq!(seen.len(), 3, "delivered once");
    assert_eq!(seen[2].body, queued);
}

/// Each kind of answer is one event: forwarded, queued with its attempts, hybrid deferred with
/// the synchronous attempt and the later one, and a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_queued_hybrid_and_duplicate_events_carry_their_attempts() {
    let backend = Backend::start();
    let dir = tempfile::tempdir().unwrap();
    let retry = json!({"base": "10ms", "max": "50ms"});
    let q = json!({"dedup": {}, "delivery": {"mode": "queue", "backoff": retry}});
    let h = json!({"delivery": {"mode": "hybrid", "deadline": "200ms", "backoff": retry}});
    let gw = Gateway::start(durable(
        dir.path(),
        [
            mc("s", &backend.url("/s"), json!({"dedup": {}})),
            mc("q", &backend.url("/q"), q),
            mc("h", &backend.url("/h"), h),
        ],
    ));
    let body = br#"{"job_id":"once","status":"completed"}"#;
    assert_eq!(
        post_mc(gw.addr(), "/hooks/s", SECRET, body).await.status,
        200
    );
    assert_eq!(
        post_mc(gw.addr(), "/hooks/s", SECRET, body).await.status,
        200
    );
    let list = api_until(&gw, "/api/events?route=s", |v| events(v).len() == 2).await;
    let outcomes: Vec<Value> = events(&list).iter().map(|e| e["outcome"].clone()).collect();
    assert_eq!(outcomes, ["duplicate", "forwarded"], "{list}");

    // Queued: the backend fails once, then takes it.
    backend.script(vec![Behaviour {
        status: 503,
        ..Behaviour::default()
    }]);
    assert_eq!(
        post_mc(gw.addr(), "/hooks/q", SECRET, body).await.status,
        202
    );
    let list = api_until(&gw, "/api/events?route=q&state=delivered", |v| {
        events(v).len() == 1
    })
    .await;
    let id = events(&list)[0]["id"].as_str().unwrap().to_string();
    let (_, e) = api(&gw, "GET", &format!("/api/events/{id}"), None).await;
    let statuses: Vec<Value> = e["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].clone())
        .collect();
    assert_eq!(statuses, [json!(503), json!(200)], "{e}");
    assert_eq!(
        e["attempts"][0]["error"]
            .as_str()
            .map(|s| s.contains("503")),
        Some(true),
        "{e}"
    );

    // Hybrid: the synchronous attempt misses the deadline; the sender gets 202, a later
    // attempt delivers.
    backend.script(vec![Behaviour {
        status: 503,
        delay: Duration::from_millis(600),
        ..Behaviour::default()
    }]);
    let r = post_mc(gw.addr(), "/hooks/h", SECRET, body).await;
    assert_eq!(r.status, 202);
    let list = api_until(&gw, "/api/events?route=h&state=delivered", |v| {
        events(v).len() == 1
    })
    .await;
    let e = &events(&list)[0];
    assert_eq!(
        (e["outcome"].as_str(), e["reason"].as_str()),
        (Some("queued"), Some("deferred")),
        "{e}"
    );
    assert!(e["attempts"].as_u64().unwrap_or(0) >= 1, "{e}");
}
