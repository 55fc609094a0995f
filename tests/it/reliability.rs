//! Failures that used to pass without a trace or without a bound: a request head left
//! unfinished, an HTTP/2 stream reset mid-request, one address holding every connection, a
//! redb store that no longer takes writes, a backend that sends its headers and stalls its
//! body. The real binary, real clients and backends on 127.0.0.1.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::common::*;

const SECRET: &str = "reliability-secret";
const BODY: &[u8] = br#"{"job_id":"job_1","status":"completed"}"#;

fn mc_route(upstream: &str) -> Value {
    route(
        "mc",
        "/hooks/mc",
        upstream,
        mc_verify(&[("current", SECRET)]),
    )
}

/// Reads until the peer closes (EOF or reset) or `within` passes; the bytes, and whether it
/// closed.
fn read_to_close(s: &mut TcpStream, within: Duration) -> (Vec<u8>, bool) {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (got, false);
        }
        s.set_read_timeout(Some(left)).expect("read timeout");
        match s.read(&mut buf) {
            Ok(0) => return (got, true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (got, true),
            Err(_) => return (got, false),
        }
    }
}

fn header_timeouts(gw: &Gateway) -> f64 {
    gw.metric(
        "hookgate_requests_total",
        &[
            ("route", "none"),
            ("outcome", "rejected"),
            ("reason", "header_timeout"),
        ],
    )
}

/// A client that starts a request head and never finishes it is cut at header_timeout with a
/// request line and a count (`reason="header_timeout"`); connections that are merely idle, before
/// their first request or between two, are closed the same way but are not counted.
#[tokio::test]
async fn an_unfinished_request_head_is_logged_and_counted() {
    let backend = Backend::start();
    let opts = Opts {
        header_timeout: "1s".into(),
        ..Opts::default()
    };
    let gw = Gateway::start(config(&opts, mc_route(&backend.url("/in"))));
    let addr = gw.addr();

    let mut slow = connect(addr);
    slow.write_all(b"POST /hooks/mc HTTP/1.1\r\nHost: gw\r\nContent-Type: appl")
        .unwrap();
    let mut silent = connect(addr);
    let mut kept = connect(addr);
    let sig = sha256_header(SECRET, BODY);
    kept.write_all(&raw_post_bytes(
        "/hooks/mc",
        &[("Host", "gw"), ("X-MediaConvert-Signature", &sig)],
        BODY,
    ))
    .unwrap();
    assert_eq!(read_response(&mut kept, WAIT).unwrap().status, 200);

    for (name, conn) in [
        ("slow", &mut slow),
        ("silent", &mut silent),
        ("kept", &mut kept),
    ] {
        let (_, closed) = read_to_close(conn, WAIT);
        assert!(closed, "{name}: closed after header_timeout");
    }
    let line = gw
        .wait_request_log(|l| l["reason"] == "header_timeout")
        .expect("a request line for the unfinished head");
    assert_eq!(line["route"], "none", "{line}");
    assert_eq!(line["outcome"], "rejected", "{line}");
    assert_eq!(line["status"], 408, "{line}");
    assert_eq!(line["client_ip"], "127.0.0.1", "{line}");
    assert!(line["duration_ms"].as_f64().unwrap() >= 900.0, "{line}");
    assert_eq!(header_timeouts(&gw), 1.0, "only the unfinished head");
    assert_eq!(
        gw.request_logs()
            .iter()
            .filter(|l| l["reason"] == "header_timeout")
            .count(),
        1
    );
}

/// An h2c connection for the raw `h2` client, driven on its own task.
async fn h2_client(addr: SocketAddr) -> h2::client::SendRequest<Bytes> {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (send, conn) = h2::client::handshake(tcp).await.expect("h2 handshake");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    send
}

fn h2_post(addr: SocketAddr, signature: &str) -> http::Request<()> {
    http::Request::builder()
        .method("POST")
        .uri(format!("http://{addr}/hooks/mc"))
        .header("x-mediaconvert-signature", signature)
        .body(())
        .unwrap()
}

/// A client that resets its HTTP/2 stream mid-request (while sending the body, or while the
/// backend is still answering) gets a request line and a count with `reason="stream_reset"`;
/// before, the first was logged as a bad body and the second not at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_stream_reset_mid_request_is_logged_and_counted() {
    let backend = Backend::start();
    backend.hold();
    let gw = Gateway::start(config(&Opts::default(), mc_route(&backend.url("/in"))));
    let addr = gw.addr();
    let sig = sha256_header(SECRET, BODY);

    // Reset while the body is still arriving.
    let mut h2 = h2_client(addr).await;
    h2 = h2.ready().await.unwrap();
    let (_answer, mut stream) = h2.send_request(h2_post(addr, &sig), false).unwrap();
    stream
        .send_data(Bytes::from_static(&BODY[..10]), false)
        .unwrap();
    // Nothing outside the gateway says when it has begun reading the body; a stream reset
    // before the gateway has even taken the stream would never reach it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    stream.send_reset(h2::Reason::CANCEL);
    let line = gw
        .wait_request_log(|l| l["reason"] == "stream_reset")
        .expect("a request line for the stream reset while sending its body");
    assert_eq!(line["route"], "mc", "{line}");
    assert_eq!(line["outcome"], "rejected", "{line}");
    assert_eq!(line["status"], 499, "{line}");

    // Reset while the backend holds the verified request.
    let mut h2 = h2.ready().await.unwrap();
    let (_answer, mut stream) = h2.send_request(h2_post(addr, &sig), false).unwrap();
    stream.send_data(Bytes::from_static(BODY), true).unwrap();
    assert!(backend.wait_count(1).await, "the backend got the request");
    stream.send_reset(h2::Reason::CANCEL);
    let deadline = Instant::now() + WAIT;
    let lines = loop {
        let lines: Vec<Value> = gw
            .request_logs()
            .into_iter()
            .filter(|l| l["reason"] == "stream_reset")
            .collect();
        if lines.len() >= 2 || Instant::now() >= deadline {
            break lines;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[1]["route"], "mc");
    assert_eq!(lines[1]["key_id"], "current", "it had passed verification");
    let resets = gw.metric(
        "hookgate_requests_total",
        &[
            ("route", "mc"),
            ("outcome", "rejected"),
            ("reason", "stream_reset"),
        ],
    );
    assert_eq!(resets, 2.0);
    // Both in the journal too, as the log has them.
    let deadline = Instant::now() + WAIT;
    loop {
        let r = send(gw.admin(), "GET", "/api/events?route=mc", &[], b"").await;
        let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        let reset: Vec<&Value> = v["events"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["reason"] == "stream_reset")
            .collect();
        if reset.len() == 2 {
            assert!(reset
                .iter()
                .all(|e| e["outcome"] == "rejected" && e["status"] == 499));
            break;
        }
        assert!(Instant::now() < deadline, "journal: {v}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    backend.unhold();
    // The connection and the gateway carry on.
    h2 = h2.ready().await.unwrap();
    let (answer, mut stream) = h2.send_request(h2_post(addr, &sig), false).unwrap();
    stream.send_data(Bytes::from_static(BODY), true).unwrap();
    let answer = tokio::time::timeout(WAIT, answer).await.unwrap().unwrap();
    assert_eq!(answer.status(), 200);
}

/// `server.max_connections_per_ip`: a third connection from an address holding two is closed
/// at once, counted, and logged at most once a second however many follow; a slot given back
/// is usable again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_per_address_are_capped() {
    let backend = Backend::start();
    let mut c = config(&Opts::default(), mc_route(&backend.url("/in")));
    c["server"]["max_connections_per_ip"] = json!(2);
    let gw = Gateway::start(c);
    let addr = gw.addr();
    let sig = sha256_header(SECRET, BODY);
    let request = raw_post_bytes(
        "/hooks/mc",
        &[("Host", "gw"), ("X-MediaConvert-Signature", &sig)],
        BODY,
    );
    // Two served, kept open (keep-alive).
    let mut held: Vec<TcpStream> = (0..2).map(|_| connect(addr)).collect();
    for s in &mut held {
        s.write_all(&request).unwrap();
        assert_eq!(read_response(s, WAIT).unwrap().status, 200);
    }

    let started = Instant::now();
    let mut over = connect(addr);
    let _ = over.write_all(&request);
    let (got, closed) = read_to_close(&mut over, Duration::from_secs(3));
    assert!(
        closed && got.is_empty(),
        "closed without an answer: {got:?}"
    );
    let refused = |gw: &Gateway| {
        gw.metric(
            "hookgate_connections_refused_total",
            &[("reason", "max_connections_per_ip")],
        )
    };
    assert_eq!(refused(&gw), 1.0);

    // A flood beyond the cap: each counted, the log line at most once a second.
    for _ in 0..30 {
        let mut s = connect(addr);
        let (_, closed) = read_to_close(&mut s, Duration::from_secs(3));
        assert!(closed);
    }
    assert_eq!(refused(&gw), 31.0);
    let elapsed = started.elapsed().as_secs() as usize;
    let lines: Vec<Value> = gw
        .logs()
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("connection refused"))
        })
        .collect();
    assert!(
        !lines.is_empty() && lines.len() <= elapsed + 1,
        "{} lines in {elapsed} s",
        lines.len()
    );
    assert_eq!(lines[0]["client_ip"], "127.0.0.1");
    assert_eq!(lines[0]["max_connections_per_ip"], 2);
    // The held connections still work.
    held[0].write_all(&request).unwrap();
    assert_eq!(read_response(&mut held[0], WAIT).unwrap().status, 200);

    // One closed: its slot is free again (once the gateway has seen it close).
    drop(held.pop());
    let deadline = Instant::now() + WAIT;
    loop {
        let mut s = connect(addr);
        s.write_all(&request).unwrap();
        if read_response(&mut s, Duration::from_secs(2)).is_ok_and(|r| r.status == 200) {
            break;
        }
        assert!(Instant::now() < deadline, "the slot never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `/readyz` on a redb store writes and reads a probe key: a file that no longer takes writes
/// (here, a file size limit set on the running process) makes it answer 503 with the reason,
/// and the process stays up (SIGXFSZ does not kill it).
#[test]
fn readyz_answers_503_when_the_redb_store_takes_no_writes() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Opts {
        store: Some(redb_store(&dir.path().join("hookgate.redb"))),
        ..Opts::default()
    };
    let backend = Backend::start();
    let gw = Gateway::start(config(&opts, mc_route(&backend.url("/in"))));
    let ready = gw.admin_get("/readyz");
    assert_eq!((ready.status, ready.text()), (200, "ready\n".to_string()));

    let limit = std::process::Command::new("prlimit")
        .args(["--pid", &gw.pid().to_string(), "--fsize=1:1"])
        .output()
        .expect("run prlimit (util-linux)");
    assert!(limit.status.success(), "{limit:?}");

    let started = Instant::now();
    let ready = gw.admin_get("/readyz");
    assert_eq!(ready.status, 503, "{}", ready.text());
    assert!(
        ready.text().starts_with("store unreachable (redb): "),
        "{}",
        ready.text()
    );
    assert!(started.elapsed() < Duration::from_secs(5), "bounded");
    assert!(
        gw.is_running(),
        "a file size limit does not kill the process"
    );
    assert!(gw.metric("hookgate_store_errors_total", &[("operation", "ping")]) >= 1.0);
}

/// A backend that answers its headers, then stalls its body: `routes[].timeout` covers the whole
/// answer, so the sender's connection is cut when it passes instead of hanging.
#[test]
fn a_stalled_backend_body_is_cut_at_the_route_timeout() {
    let backend = TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream = format!("http://{}/in", backend.local_addr().unwrap());
    let (release, released) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = backend.accept() else {
            return;
        };
        let mut buf = [0u8; 8192];
        let mut got = Vec::new();
        while !got.windows(BODY.len()).any(|w| w == BODY) {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        let _ = s.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n0123456789",
        );
        // Stalled until the test ends.
        let _ = released.recv_timeout(Duration::from_secs(30));
    });
    let gw = Gateway::start(config(
        &Opts::default(),
        route_with_timeout(
            "mc",
            "/hooks/mc",
            &upstream,
            "1s",
            mc_verify(&[("current", SECRET)]),
        ),
    ));

    let sig = sha256_header(SECRET, BODY);
    let mut s = connect(gw.addr());
    let started = Instant::now();
    s.write_all(&raw_post_bytes(
        "/hooks/mc",
        &[("Host", "gw"), ("X-MediaConvert-Signature", &sig)],
        BODY,
    ))
    .unwrap();
    let (got, closed) = read_to_close(&mut s, Duration::from_secs(6));
    let took = started.elapsed();
    drop(release);
    let text = String::from_utf8_lossy(&got).into_owned();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\n0123456789"), "{text}");
    assert!(closed, "the answer was cut, not left hanging ({took:?})");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "cut at the route's timeout: {took:?}"
    );
    assert!(
        gw.wait_log(
            "the backend's answer body did not end within routes[].timeout; cut",
            |_| true
        )
        .is_some(),
        "logged"
    );
}
