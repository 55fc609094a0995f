//! Crash safety of queue mode: `kill -9` in the middle of an intake burst while the backend is
//! down, restart on the same redb file, bring the backend up. Every event that got 202 must
//! arrive, and each dedup key exactly once.
//!
//! Why exactly once holds here: no delivery can succeed before the kill (the backend is down),
//! so there is no "delivered but not yet acknowledged in the store" window for the kill to
//! hit. Requests cut off by the kill got no answer: the sender retries them, and dedup
//! answers "duplicate" for those that were stored before the kill.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::*;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

const SECRET: &str = "crash-secret";
const EVENTS: usize = 2000;
const SENDERS: usize = 16;

fn body(i: usize) -> Vec<u8> {
    // About 1.5 KB, like a real notification.
    format!(
        r#"{{"job_id":"crash-{i:05}","status":"COMPLETE","detail":"{}"}}"#,
        "x".repeat(1450)
    )
    .into_bytes()
}

type Answers = Arc<Mutex<Vec<Option<(u16, String)>>>>;
type Http = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

/// POSTs one signed event; `None` when no answer came (connection refused or cut).
async fn send(client: &Http, url: &str, body: &[u8]) -> Option<(u16, String)> {
    let req = hyper::Request::post(url)
        .header("x-mediaconvert-signature", sha256_header(SECRET, body))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::copy_from_slice(body)))
        .ok()?;
    let res = tokio::time::timeout(WAIT, client.request(req))
        .await
        .ok()?
        .ok()?;
    let status = res.status().as_u16();
    let text = res.into_body().collect().await.ok()?.to_bytes();
    Some((status, String::from_utf8_lossy(&text).into_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_intake_loses_no_accepted_event() {
    let port = dead_port();
    let dir = tempfile::tempdir().unwrap();
    let routes = route_with_timeout(
        "q",
        "/hooks/q",
        &format!("http://127.0.0.1:{port}/up"),
        "2s",
        mc_verify(&[("k1", SECRET)]),
    )
    .merge(json!({
        "dedup": {},
        "delivery": {
            "mode": "queue",
            "max_attempts": 10000,
            "max_age": "1h",
            "backoff": {"base": "200ms", "max": "2s"},
        },
    }));
    let opts = Opts {
        store: Some(redb_store(&dir.path().join("hookgate.redb"))),
        ..Opts::default()
    };
    let yaml = config(&opts, &routes);
    let gw = Gateway::start(&yaml);
    let url = gw.url("/hooks/q");

    // Intake: SENDERS concurrent keep-alive senders; the gateway dies half-way.
    let answers: Answers = Arc::new(Mutex::new(vec![None; EVENTS]));
    let accepted = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for t in 0..SENDERS {
        let (answers, accepted, url) = (answers.clone(), accepted.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let client: Http = Client::builder(TokioExecutor::new()).build_http();
            for i in (t..EVENTS).step_by(SENDERS) {
                let a = send(&client, &url, &body(i)).await;
                if matches!(a, Some((202, _))) {
                    accepted.fetch_add(1, Ordering::Relaxed);
                }
                answers.lock().unwrap()[i] = a;
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while accepted.load(Ordering::Relaxed) < EVENTS / 2 {
        assert!(Instant::now() < deadline, "intake too slow");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    gw.kill9();
    for t in tasks {
        t.await.unwrap();
    }
    let answers = answers.lock().unwrap().clone();
    let acked: Vec<usize> = (0..EVENTS)
        .filter(|&i| matches!(answers[i], Some((202, _))))
        .collect();
    let unanswered: Vec<usize> = (0..EVENTS).filter(|&i| answers[i].is_none()).collect();
    assert_eq!(
        acked.len() + unanswered.len(),
        EVENTS,
        "every answer was 202 or none: {:?}",
        answers.iter().flatten().find(|a| a.0 != 202)
    );
    assert!(
        !unanswered.is_empty(),
        "the kill happened during the intake"
    );
    drop(gw);

    // Restart on the same file: everything acknowledged is still there.
    let gw = Gateway::start(&yaml);
    let store_line = gw
        .logs()
        .into_iter()
        .find(|l| l.contains("\"store open\""))
        .expect("store open line");
    let v: serde_json::Value = serde_json::from_str(&store_line).unwrap();
    let resumed = v["resumed"].as_u64().unwrap() as usize;
    assert!(
        resumed >= acked.len(),
        "resumed {resumed} < acknowledged {}",
        acked.len()
    );

    // The backend comes up; the senders retry what got no answer.
    let backend = Backend::start_on(port, Behaviour::default());
    let client: Http = Client::builder(TokioExecutor::new()).build_http();
    let url = gw.url("/hooks/q");
    let (mut retried_202, mut retried_dup) = (0, 0);
    for &i in &unanswered {
        match send(&client, &url, &body(i)).await {
            Some((202, _)) => retried_202 += 1,
            Some((200, t)) if t == r#"{"status":"duplicate"}"# => retried_dup += 1,
            other => panic!("retry of event {i}: {other:?}"),
        }
    }
    assert_eq!(retried_202 + retried_dup, unanswered.len());
    assert_eq!(
        resumed,
        acked.len() + retried_dup,
        "stored before the kill = acknowledged + unanswered-but-stored"
    );

    let deadline = Instant::now() + Duration::from_secs(180);
    while backend.requests().len() < EVENTS
        || gw.metric("hookgate_queue_depth", &[("route", "q")]) != 0.0
    {
        assert!(
            Instant::now() < deadline,
            "delivered {} of {EVENTS}",
            backend.requests().len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let received = backend.requests();
    let mut per_key = std::collections::HashMap::<String, usize>::new();
    for r in &received {
        let key = r.header("x-webhook-id").expect("X-Webhook-Id");
        assert_eq!(key, sha256_hex(&r.body), "the key is the body's hash");
        *per_key.entry(key).or_default() += 1;
    }
    let duplicates: usize = per_key.values().map(|n| n - 1).sum();
    eprintln!(
        "crash test: sent {EVENTS}, 202 before kill {}, unanswered at kill {}, stored at kill {resumed}, \
         retried after restart: {retried_202} accepted + {retried_dup} duplicate, \
         delivered {} requests for {} distinct keys, duplicates {duplicates}",
        acked.len(),
        unanswered.len(),
        received.len(),
        per_key.len(),
    );
    for i in 0..EVENTS {
        let key = sha256_hex(&body(i));
        assert_eq!(
            per_key.get(&key),
            Some(&1),
            "event {i} delivered exactly once"
        );
    }
    assert_eq!(received.len(), EVENTS);
    assert_eq!(duplicates, 0);
}
