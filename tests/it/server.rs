//! Listener behaviour: h2c, slow clients, connection limit, graceful shutdown, admin endpoints.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::common::*;

const SECRET: &str = "srv-secret-one";
const BODY: &[u8] = br#"{"job_id":"job_srv","status":"completed"}"#;

fn mc_routes(backend: &Backend) -> Value {
    route(
        "mc",
        "/webhooks/mediaconvert",
        &backend.url("/hooks/mc"),
        mc_verify(&[("current", SECRET)]),
    )
}

/// HTTP/2 with prior knowledge on the proxy port is verified and forwarded; HTTP/1.1 still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_prior_knowledge_verified_and_forwarded() {
    let backend = Backend::start();
    let gw = Gateway::start(config(&Opts::default(), mc_routes(&backend)));
    let sig = sha256_header(SECRET, BODY);
    let resp = send_h2(
        gw.addr(),
        "POST",
        "/webhooks/mediaconvert?via=h2",
        &[
            ("x-mediaconvert-signature", &sig),
            ("content-type", "application/json"),
        ],
        BODY,
    )
    .await
    .expect("h2c request");
    assert_eq!(resp.status, 200, "{}", resp.text());
    let r = backend.single();
    assert_eq!(r.body, BODY);
    assert_eq!(r.uri, "/hooks/mc?via=h2");
    assert_eq!(r.header("x-webhook-verified").as_deref(), Some("true"));
    assert_eq!(r.header("x-webhook-key-id").as_deref(), Some("current"));
    assert_eq!(r.header("x-mediaconvert-signature"), Some(sig));

    // A bad signature over h2 is refused the same way.
    let resp = send_h2(
        gw.addr(),
        "POST",
        "/webhooks/mediaconvert",
        &[("x-mediaconvert-signature", "sha256=00")],
        BODY,
    )
    .await
    .expect("h2c request");
    assert_eq!(resp.status, 401);
    assert_eq!(resp.text(), INVALID_SIGNATURE);
    // And HTTP/1.1 on the same port.
    assert_eq!(
        post_mc(gw.addr(), "/webhooks/mediaconvert", SECRET, BODY)
            .await
            .status,
        200
    );
    assert_eq!(backend.requests().len(), 2);
}

/// Over h2c the body cap and the 404/405 stages apply as over HTTP/1.1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_refusals() {
    let backend = Backend::start();
    let opts = Opts {
        max_body_bytes: "1KiB".into(),
        ..Opts::default()
    };
    let gw = Gateway::start(config(&opts, mc_routes(&backend)));
    let big = vec![b'x'; 4096];
    let sig = sha256_header(SECRET, &big);
    let resp = send_h2(
        gw.addr(),
        "POST",
        "/webhooks/mediaconvert",
        &[("x-mediaconvert-signature", &sig)],
        &big,
    )
    .await
    .expect("h2c request");
    assert_eq!(resp.status, 413);
    let resp = send_h2(gw.addr(), "POST", "/nope", &[], BODY)
        .await
        .expect("h2c request");
    assert_eq!(resp.status, 404);
    let resp = send_h2(gw.addr(), "GET", "/webhooks/mediaconvert", &[], b"")
        .await
        .expect("h2c request");
    assert_eq!(resp.status, 405);
    assert_eq!(resp.header("allow").as_deref(), Some("POST"));
    assert!(backend.requests().is_empty());
}

/// A client sending its headers a byte at a time is cut off after header_timeout while
/// another client is served normally in the meantime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_is_cut_off_others_served() {
    let backend = Backend::start();
    let opts = Opts {
        header_timeout: "2s".into(),
        ..Opts::default()
    };
    let gw = Gateway::start(config(&opts, mc_routes(&backend)));
    let addr = gw.addr();
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let slow = std::thread::spawn(move || {
        let mut head =
            b"POST /webhooks/mediaconvert HTTP/1.1\r\nHost: localhost\r\nX-Padding: ".to_vec();
        head.extend_from_slice(&[b'a'; 200]);
        slow_send(addr, &head, 100, Some(started_tx))
    });
    started_rx.recv_timeout(WAIT).expect("slow client started");
    // Meanwhile a normal client is served, while the slow one is still connected.
    let resp = post_mc(gw.addr(), "/webhooks/mediaconvert", SECRET, BODY).await;
    assert_eq!(resp.status, 200);
    assert!(
        !slow.is_finished(),
        "the normal request was only served after the slow client was gone"
    );
    let cut = tokio::task::spawn_blocking(move || slow.join().unwrap())
        .await
        .unwrap()
        .expect("slowloris client cut off");
    assert!(
        cut >= Duration::from_millis(1800),
        "cut off before header_timeout: {cut:?}"
    );
    assert!(cut < Duration::from_secs(7), "cut off too late: {cut:?}");
    assert_eq!(backend.requests().len(), 1);
}

/// A client that connects and sends nothing is also cut off after header_timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connection_cut_off() {
    let backend = Backend::start();
    let opts = Opts {
        header_timeout: "1s".into(),
        ..Opts::default()
    };
    let gw = Gateway::start(config(&opts, mc_routes(&backend)));
    let mut s = connect(gw.addr());
    let start = Instant::now();
    s.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
    let mut buf = [0u8; 256];
    let r = s.read(&mut buf);
    let took = start.elapsed();
    assert!(
        !matches!(&r, Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "silent connection still open after {took:?}"
    );
    assert!(took < Duration::from_secs(5), "cut off after {took:?}");
}

/// A client dribbling the HTTP/2 preface a byte at a time is cut off after header_timeout too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_h2_preface_cut_off() {
    let backend = Backend::start();
    let opts = Opts {
        header_timeout: "1s".into(),
        ..Opts::default()
    };
    let gw = Gateway::start(config(&opts, mc_routes(&backend)));
    let addr = gw.addr();
    let res = tokio::task::spawn_blocking(move || {
        slow_send(addr, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 300, None)
    })
    .await
    .unwrap();
    let cut = res.expect("slow h2 preface cut off");
    assert!(cut < Duration::from_secs(5), "cut off too late: {cut:?}");
}

/// Send `bytes` one at a time every `gap_ms` (signalling `started` after the first),
/// checking for a close (or an early answer) in between; Ok(elapsed) when cut off before
/// the last byte, Err when everything was sent.
fn slow_send(
    addr: std::net::SocketAddr,
    bytes: &[u8],
    gap_ms: u64,
    started: Option<std::sync::mpsc::Sender<()>>,
) -> Result<Duration, String> {
    let mut s = connect(addr);
    let start = Instant::now();
    s.set_read_timeout(Some(Duration::from_millis(gap_ms)))
        .unwrap();
    let mut buf = [0u8; 1024];
    for (i, b) in bytes.iter().enumerate() {
        if s.write_all(&[*b]).is_err() {
            return Ok(start.elapsed());
        }
        if i == 0 {
            if let Some(tx) = &started {
                let _ = tx.send(());
            }
        }
        let last = i + 1 == bytes.len();
        match s.read(&mut buf) {
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            // Bytes once the whole message is out are the server's normal answer.
            Ok(n) if n > 0 && last => break,
            // EOF, reset, or an answer (e.g. 408) before the end: cut off.
            _ => return Ok(start.elapsed()),
        }
    }
    Err(format!(
        "sent all {} bytes over {:?} without being cut off",
        bytes.len(),
        start.elapsed()
    ))
}

/// Whether a raw connection on which `GET /nope` was sent gets a real (non-503) answer
/// within `wait`. None: no answer (timeout), EOF, reset, or 503.
fn served(s: &mut TcpStream, wait: Duration) -> Option<u16> {
    match read_response(s, wait) {
        Ok(r) if r.status != 503 => Some(r.status),
        _ => None,
    }
}

fn get_nope(s: &mut TcpStream) -> bool {
    s.write_all(b"GET /nope HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .is_ok()
}

/// With max_connections 4 and 4 connections held open, a 5th is not served; after they
/// are released new connections are served again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_enforced() {
    let backend = Backend::start();
    let opts = Opts {
        max_connections: 4,
        header_timeout: "30s".into(),
        ..Opts::default()
    };
    let gw = Gateway::start(config(&opts, mc_routes(&backend)));
    // Four keep-alive connections, each proven in use by one served request.
    let mut held = Vec::new();
    for i in 0..4 {
        let mut s = connect(gw.addr());
        assert!(get_nope(&mut s));
        assert_eq!(
            served(&mut s, WAIT),
            Some(404),
            "held connection {i} served"
        );
        held.push(s);
    }
    // The fifth: connect may succeed (backlog) but it must not be served.
    let fifth = TcpStream::connect_timeout(&gw.addr(), Duration::from_secs(2));
    if let Ok(mut s) = fifth {
        if get_nope(&mut s) {
            let got = served(&mut s, Duration::from_millis(1500));
            assert_eq!(got, None, "5th connection was served while 4 were held");
        }
    }
    // The admin listener is not affected by the proxy's limit.
    assert_eq!(gw.admin_get("/healthz").status, 200);
    // Release the held connections; a fresh connection is served again (bounded retries).
    drop(held);
    let deadline = Instant::now() + WAIT;
    loop {
        let mut s = connect(gw.addr());
        if get_nope(&mut s) && served(&mut s, Duration::from_secs(2)) == Some(404) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not served again after releasing the connections"
        );
    }
}

/// SIGTERM during a slow request: the request completes with 200, then the process exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_then_exits_0() {
    let backend = Backend::start_with(Behaviour {
        delay: Duration::from_millis(1500),
        ..Behaviour::default()
    });
    let opts = Opts {
        shutdown_grace: "10s".into(),
        ..Opts::default()
    };
    let routes = route_with_timeout(
        "mc",
        "/webhooks/mediaconvert",
        &backend.url("/hooks/mc"),
        "8s",
        mc_verify(&[("current", SECRET)]),
    );
    let gw = Gateway::start(config(&opts, &routes));
    let addr = gw.addr();
    let inflight =
        tokio::spawn(async move { post_mc(addr, "/webhooks/mediaconvert", SECRET, BODY).await });
    assert!(backend.wait_count(1).await, "request reached the backend");
    let signalled = Instant::now();
    gw.sigterm();
    let resp = inflight.await.expect("in-flight request task");
    assert_eq!(
        resp.status,
        200,
        "in-flight request after SIGTERM: {}",
        resp.text()
    );
    assert_eq!(resp.text(), r#"{"received":true}"#);
    let status = tokio::task::block_in_place(|| gw.wait_exit(Duration::from_secs(12)))
        .unwrap_or_else(|| panic!("did not exit after SIGTERM; logs:\n{}", gw.all_output()));
    assert_eq!(
        status.code(),
        Some(0),
        "exit status; logs:\n{}",
        gw.all_output()
    );
    assert!(
        signalled.elapsed() < Duration::from_secs(11),
        "exit took {:?}",
        signalled.elapsed()
    );
    // Stopped accepting: nothing is served on the port any more.
    if let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
        assert!(!get_nope(&mut s) || served(&mut s, Duration::from_secs(1)).is_none());
    }
}

/// SIGTERM on an idle gateway exits 0 promptly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_idle_exits_0() {
    let backend = Backend::start();
    let gw = Gateway::start(config(&Opts::default(), mc_routes(&backend)));
    // An idle keep-alive connection must not hold shutdown beyond the grace period.
    let mut idle = connect(gw.addr());
    assert!(get_nope(&mut idle));
    assert_eq!(served(&mut idle, WAIT), Some(404));
    gw.sigterm();
    let status = gw
        .wait_exit(Duration::from_secs(8))
        .expect("exit after SIGTERM");
    assert_eq!(status.code(), Some(0));
}

/// /healthz, /readyz, /metrics on the admin listener; the admin paths are not on the proxy port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_endpoints() {
    let backend = Backend::start();
    let gw = Gateway::start(config(&Opts::default(), mc_routes(&backend)));
    assert_eq!(gw.admin_get("/healthz").status, 200);
    assert_eq!(gw.admin_get("/readyz").status, 200);
    assert_ne!(gw.addr(), gw.admin());

    assert_eq!(
        post_mc(gw.addr(), "/webhooks/mediaconvert", SECRET, BODY)
            .await
            .status,
        200
    );
    let r = gw.admin_get("/metrics");
    assert_eq!(r.status, 200);
    let ct = r.header("content-type").unwrap_or_default();
    assert!(ct.starts_with("text/plain"), "metrics content-type {ct:?}");
    let text = r.text();
    for name in [
        "hookgate_requests_total",
        "hookgate_key_matches_total",
        "hookgate_request_duration_seconds_bucket",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(name)),
            "{name} missing from /metrics:\n{text}"
        );
    }
    let n = gw.wait_metric(
        "hookgate_requests_total",
        &[("route", "mc"), ("outcome", "forwarded")],
        |v| v >= 1.0,
    );
    assert_eq!(n, 1.0);
    // No raw path or IP as a label value.
    for l in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(
            !l.contains("127.0.0.1") && !l.contains("/webhooks/"),
            "raw label value: {l}"
        );
    }
    // The proxy port does not serve admin paths.
    let resp = send(gw.addr(), "GET", "/metrics", &[], b"").await;
    assert_eq!(resp.status, 404);
}
