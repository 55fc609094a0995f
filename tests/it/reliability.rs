//! Failures that used to pass without a trace or without a bound: a request head left
//! unfinished, an HTTP/2 stream reset mid-request, one address holding every connection, a
//! redb store that no longer takes writes, a backend that sends its headers and stalls its
//! body. The real binary, real clients and backends on 127.0.0.1.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

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
