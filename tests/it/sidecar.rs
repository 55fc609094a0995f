//! The sidecar manifest (deploy/k8s/sidecar.yaml) fits its own memory limit: its ConfigMap's
//! config, run as shipped (only addresses and secret files replaced), with every connection it
//! allows open and kept alive after a forwarded request and its journal full of events at the
//! largest body it keeps, stays under the hookgate container's `limits.memory`.
//!
//! One setting is changed besides: `header_timeout` (5 s by default, how long an idle
//! connection is kept) is raised, so the connections opened first are still open when the last
//! one is. It decides how long a connection lives, not what it holds.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::common::*;

const SECRET: &str = "sidecar-secret";
const PATH: &str = "/webhooks/mediaconvert";
/// Requests in flight at once while the connections are opened: the backend's side stays small.
const IN_FLIGHT: usize = 64;

/// The manifest's documents, parsed.
fn manifest() -> Vec<Value> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/k8s/sidecar.yaml");
    let text = std::fs::read_to_string(path).expect("read the sidecar manifest");
    serde_saphyr::from_multiple(&text).expect("the sidecar manifest is YAML")
}

/// The ConfigMap's `config.yaml`, parsed.
fn shipped_config(docs: &[Value]) -> Value {
    let text = docs
        .iter()
        .find(|d| d["kind"] == "ConfigMap")
        .and_then(|d| d["data"]["config.yaml"].as_str())
        .expect("a ConfigMap with config.yaml");
    serde_saphyr::from_str(text).expect("config.yaml is YAML")
}

/// The hookgate container's `resources.limits.memory`, in KiB.
fn memory_limit_kib(docs: &[Value]) -> u64 {
    let limit = docs
        .iter()
        .filter(|d| d["kind"] == "Deployment")
        .flat_map(|d| {
            d["spec"]["template"]["spec"]["containers"]
                .as_array()
                .cloned()
        })
        .flatten()
        .find(|c| c["name"] == "hookgate")
        .and_then(|c| {
            c["resources"]["limits"]["memory"]
                .as_str()
                .map(str::to_string)
        })
        .expect("the hookgate container's memory limit");
    let (n, unit) = limit.split_at(limit.trim_end_matches(char::is_alphabetic).len());
    let n: u64 = n.parse().expect("a number of bytes");
    n * match unit {
        "Ki" => 1,
        "Mi" => 1024,
        "Gi" => 1024 * 1024,
        other => panic!("memory unit {other:?}"),
    }
}

/// A JSON body of exactly `len` bytes.
fn body_of(len: usize) -> Vec<u8> {
    let mut b = br#"{"event":"job.completed","pad":""#.to_vec();
    b.resize(len - 2, b'x');
    b.extend_from_slice(br#""}"#);
    b
}

/// One connection kept open: its sender and the task driving it.
struct Kept {
    _send: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    _conn: tokio::task::JoinHandle<()>,
}

/// Opens a connection, sends `requests` signed requests on it one after another, and keeps it.
async fn open(addr: std::net::SocketAddr, body: Bytes, requests: usize) -> Kept {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .expect("handshake");
    let conn = tokio::spawn(async move {
        let _ = conn.await;
    });
    let sig = sha256_header(SECRET, &body);
    for _ in 0..requests {
        let req = hyper::Request::post(PATH)
            .header("host", addr.to_string())
            .header("content-type", "application/json")
            .header("x-mediaconvert-signature", &sig)
            .body(Full::new(body.clone()))
            .expect("request");
        let resp = send.send_request(req).await.expect("an answer");
        assert_eq!(resp.status(), 200);
        resp.into_body().collect().await.expect("the answer's body");
    }
    Kept {
        _send: send,
        _conn: conn,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sidecar_fits_its_memory_limit_with_every_connection_open_and_the_journal_full() {
    let docs = manifest();
    let limit_kib = memory_limit_kib(&docs);
    let mut config = shipped_config(&docs);
    let backend = Backend::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("mediaconvert-current");
    let token = dir.path().join("admin-token");
    std::fs::write(&secret, SECRET).expect("secret");
    std::fs::write(&token, "sidecar-admin-token").expect("token");
    config["server"]["listen"] = "127.0.0.1:0".into();
    config["admin"]["listen"] = "127.0.0.1:0".into();
    config["server"]["header_timeout"] = "5m".into();
    config["admin"]["token"]["file"] = token.to_string_lossy().into_owned().into();
    let route = &mut config["routes"][0];
    assert_eq!(route["path"], PATH, "the manifest's route");
    route["upstream"] = backend.url("/in").into();
    route["verify"]["secrets"][0]["file"] = secret.to_string_lossy().into_owned().into();

    let connections = config["server"]["max_connections"]
        .as_u64()
        .expect("the sidecar sets server.max_connections") as usize;
    let events = config["journal"]["max_events"]
        .as_u64()
        .expect("the sidecar sets journal.max_events") as usize;
    let body_bytes = config["journal"]["max_body_bytes"]
        .as_u64()
        .expect("the sidecar sets journal.max_body_bytes") as usize;
    let gw = Gateway::start(&config);
    let (rss0, _) = gw.memory_kib();

    // Enough requests per connection to fill the journal, at the largest body it keeps whole.
    let per_connection = events.div_ceil(connections);
    let body = Bytes::from(body_of(body_bytes));
    let permits = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let started = std::time::Instant::now();
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let (addr, body, permits) = (gw.addr(), body.clone(), permits.clone());
            tokio::spawn(async move {
                let _permit = permits.acquire_owned().await.expect("permit");
                open(addr, body, per_connection).await
            })
        })
        .collect();
    let mut kept = Vec::with_capacity(connections);
    for t in tasks {
        kept.push(
            tokio::time::timeout(WAIT * 4, t)
                .await
                .expect("every connection opened in time")
                .expect("no client task failed"),
        );
    }
    let opened = started.elapsed();
    gw.wait_metric("hookgate_journal_events", &[], |n| n >= events as f64);
    assert!(
        gw.open_fds() >= connections,
        "every allowed connection is still open: {} descriptors",
        gw.open_fds()
    );
    let (rss, hwm) = gw.memory_kib();
    println!(
        "sidecar: {connections} kept-alive connections, {events} journal events of {body_bytes} B \
         (opened in {opened:?}): VmRSS {rss0} -> {rss} KiB, VmHWM {hwm} KiB, limit {limit_kib} KiB, \
         {:.1} KiB per connection and event pair",
        (rss - rss0) as f64 / connections as f64
    );
    assert!(
        hwm < limit_kib,
        "VmHWM {hwm} KiB is over the manifest's limit of {limit_kib} KiB"
    );
    gw.assert_no_panic();
    drop(kept);
}
