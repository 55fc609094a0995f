//! Hostile HTTP against the running gateway: request smuggling shapes, oversized heads, slow
//! and flooding clients, HTTP/2 rapid reset and stream floods, and backends that reset, stall
//! or answer without end. Each test checks that the gateway stays up, answers what SECURITY.md
//! documents, keeps serving honest senders, and keeps its memory bounded (VmRSS / VmHWM of the
//! process). Figures are printed; run with `--nocapture` to see them.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;
use bytes::Bytes;

const SECRET: &str = "abuse-secret";
const BODY: &[u8] = br#"{"job_id":"job_1","status":"completed"}"#;
const PATH: &str = "/webhooks/mediaconvert";

/// Memory growth a flood may cause at most, in KiB: far above what a bounded gateway uses
/// (a few MiB), far below what buffering the floods would take.
const MAX_GROWTH_KIB: u64 = 96 * 1024;

fn routes(upstream: &str) -> Value {
    route("mc", PATH, upstream, mc_verify(&[("current", SECRET)]))
}

fn start(opts: &Opts, upstream: &str) -> Gateway {
    Gateway::start(config(opts, routes(upstream)))
}

fn quick() -> Opts {
    Opts {
        header_timeout: "1s".into(),
        body_timeout: "1s".into(),
        ..Opts::default()
    }
}

/// The request head of a correctly signed POST, without framing headers or the final CRLF.
fn signed_head() -> Vec<u8> {
    format!(
        "POST {PATH} HTTP/1.1\r\nHost: hooks.example\r\nX-MediaConvert-Signature: {}\r\n",
        sha256_header(SECRET, BODY)
    )
    .into_bytes()
}

fn chunked(body: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", body.len()).into_bytes();
    out.extend_from_slice(body);
    out.extend_from_slice(b"\r\n0\r\n\r\n");
    out
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// Everything the server sends until it closes the connection (or `wait` passes).
fn read_until_close(s: &mut TcpStream, wait: Duration) -> (Vec<u8>, bool) {
    let deadline = Instant::now() + wait;
    let mut out = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (out, false);
        }
        s.set_read_timeout(Some(left)).expect("timeout");
        match s.read(&mut buf) {
            Ok(0) => return (out, true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return (out, true),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return (out, false)
            }
            Err(_) => return (out, true),
        }
    }
}

/// The status codes of every response in a byte stream.
fn statuses(stream: &[u8]) -> Vec<u16> {
    let text = String::from_utf8_lossy(stream);
    text.match_indices("HTTP/1.1 ")
        .filter_map(|(i, _)| text[i + 9..].get(..3)?.parse().ok())
        .collect()
}

/// Smuggling and framing shapes, each on its own connection: the status hookgate (or hyper
/// under it) answers, and whether the backend got the one honest request. A second request
/// hidden in the body or after it must never reach the backend, and no connection carries
/// more than one answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smuggling_shapes_get_their_documented_status() {
    let backend = Backend::start();
    let gw = start(&quick(), &backend.url("/in"));
    let head = signed_head();
    let smuggled = cat(&[
        format!("POST {PATH}?smuggled=1 HTTP/1.1\r\nHost: x\r\nX-MediaConvert-Signature: {}\r\nContent-Length: {}\r\n\r\n",
            sha256_header(SECRET, BODY), BODY.len()).as_bytes(),
        BODY,
    ]);
    let cl = |n: usize| format!("Content-Length: {n}\r\n");
    let body_cl = cl(BODY.len());
    let te_body = cat(&[&chunked(BODY), &smuggled]);
    let big_chunk = cat(&[b"20000\r\n", &[b'a'; 70_000]]);
    let many_headers: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
    let big_header = format!("X-Big: {}\r\n", "a".repeat(100_000));
    let bare_lf = String::from_utf8(head.clone())
        .unwrap()
        .replace("\r\n", "\n");

    // (name, bytes, status, forwarded to the backend, connection closed after the answer)
    let cases: Vec<(&str, Vec<u8>, u16, bool, bool)> = vec![
        // Transfer-Encoding wins over Content-Length, the CL is dropped, and the connection is
        // closed after the answer, so what follows the chunked body is never read as a request.
        (
            "CL then TE",
            cat(&[
                &head,
                b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
                &te_body,
            ]),
            200,
            true,
            true,
        ),
        (
            "TE then CL",
            cat(&[
                &head,
                b"Transfer-Encoding: chunked\r\n",
                cl(te_body.len()).as_bytes(),
                b"\r\n",
                &te_body,
            ]),
            200,
            true,
            true,
        ),
        (
            "two different Content-Lengths",
            cat(&[&head, body_cl.as_bytes(), cl(5).as_bytes(), b"\r\n", BODY]),
            400,
            false,
            true,
        ),
        (
            "Content-Length list",
            cat(&[
                &head,
                format!("Content-Length: {0}, {0}\r\n\r\n", BODY.len()).as_bytes(),
                BODY,
            ]),
            400,
            false,
            true,
        ),
        (
            "Content-Length with a sign",
            cat(&[
                &head,
                format!("Content-Length: +{}\r\n\r\n", BODY.len()).as_bytes(),
                BODY,
            ]),
            400,
            false,
            true,
        ),
        // Identical copies are one length (RFC 9110 §8.6 allows it).
        (
            "two equal Content-Lengths",
            cat(&[&head, body_cl.as_bytes(), body_cl.as_bytes(), b"\r\n", BODY]),
            200,
            true,
            false,
        ),
        (
            "obs-fold",
            cat(&[
                &head,
                b"X-Folded: a\r\n b\r\n",
                body_cl.as_bytes(),
                b"\r\n",
                BODY,
            ]),
            400,
            false,
            true,
        ),
        (
            "bare CR in a header",
            cat(&[&head, b"X-Cr: a\rb\r\n", body_cl.as_bytes(), b"\r\n", BODY]),
            400,
            false,
            true,
        ),
        (
            "space before the colon",
            cat(&[
                &head,
                format!("Content-Length : {}\r\n\r\n", BODY.len()).as_bytes(),
                BODY,
            ]),
            400,
            false,
            true,
        ),
        // A bare LF ends a line (RFC 9112 §2.2 allows it); the backend gets a re-framed request.
        (
            "bare LF line ends",
            cat(&[
                bare_lf.as_bytes(),
                format!("Content-Length: {}\n\n", BODY.len()).as_bytes(),
                BODY,
            ]),
            200,
            true,
            false,
        ),
        (
            "Transfer-Encoding not chunked",
            cat(&[
                &head,
                b"Transfer-Encoding: xchunked\r\n\r\n",
                &chunked(BODY),
            ]),
            400,
            false,
            true,
        ),
        (
            "chunked not last",
            cat(&[
                &head,
                b"Transfer-Encoding: chunked, identity\r\n\r\n",
                &chunked(BODY),
            ]),
            400,
            false,
            true,
        ),
        (
            "HTTP/1.0 with Transfer-Encoding",
            cat(&[
                &String::from_utf8(head.clone())
                    .unwrap()
                    .replace("HTTP/1.1", "HTTP/1.0")
                    .into_bytes(),
                b"Transfer-Encoding: chunked\r\n\r\n",
                &chunked(BODY),
            ]),
            400,
            false,
            true,
        ),
        (
            "bare LF in chunk framing",
            cat(&[
                &head,
                b"Transfer-Encoding: chunked\r\n\r\n",
                format!("{:x}\n", BODY.len()).as_bytes(),
                BODY,
                b"\n0\n\n",
            ]),
            400,
            false,
            true,
        ),
        (
            "chunk size overflowing 64 bits",
            cat(&[
                &head,
                b"Transfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFFFF\r\nabc",
            ]),
            400,
            false,
            true,
        ),
        (
            "chunk size not hex",
            cat(&[
                &head,
                b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
            ]),
            400,
            false,
            true,
        ),
        (
            "negative chunk size",
            cat(&[
                &head,
                b"Transfer-Encoding: chunked\r\n\r\n-5\r\nabcde\r\n0\r\n\r\n",
            ]),
            400,
            false,
            true,
        ),
        (
            "0x chunk size",
            cat(&[
                &head,
                b"Transfer-Encoding: chunked\r\n\r\n0x5\r\nabcde\r\n0\r\n\r\n",
            ]),
            400,
            false,
            true,
        ),
        (
            "100 KB chunk extension",
            cat(&[
                &head,
                b"Transfer-Encoding: chunked\r\n\r\n5;",
                &[b'a'; 100_000],
                b"\r\nabcde\r\n0\r\n\r\n",
            ]),
            400,
            false,
            true,
        ),
        // A chunk larger than max_body_bytes is refused as soon as the cap is passed...
        (
            "chunk over max_body_bytes",
            cat(&[&head, b"Transfer-Encoding: chunked\r\n\r\n", &big_chunk]),
            413,
            false,
            true,
        ),
        // ...and one that only announces 4 GiB and stops is cut at body_timeout.
        (
            "4 GiB chunk never sent",
            cat(&[&head, b"Transfer-Encoding: chunked\r\n\r\nFFFFFFFF\r\nabc"]),
            408,
            false,
            true,
        ),
        (
            "150 header fields",
            cat(&[
                &head,
                many_headers.as_bytes(),
                body_cl.as_bytes(),
                b"\r\n",
                BODY,
            ]),
            431,
            false,
            true,
        ),
        (
            "100 KB header",
            cat(&[
                &head,
                big_header.as_bytes(),
                body_cl.as_bytes(),
                b"\r\n",
                BODY,
            ]),
            431,
            false,
            true,
        ),
        (
            "70 KB request target",
            cat(&[format!("POST /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70_000)).as_bytes()]),
            431,
            false,
            true,
        ),
    ];

    let mut table = Vec::new();
    for (name, bytes, status, forwarded, closes) in cases {
        let before = backend.requests().len();
        let mut s = connect(gw.addr());
        // The server may answer and close before reading everything: a failed write is fine.
        let _ = s.write_all(&bytes);
        let (got, closed) = read_until_close(&mut s, Duration::from_secs(8));
        let seen = statuses(&got);
        assert_eq!(
            seen,
            vec![status],
            "{name}: {}",
            String::from_utf8_lossy(&got)
        );
        // Keep-alive answers stay open until header_timeout (1 s) closes the idle connection.
        assert!(closed, "{name}: connection neither closed nor timed out");
        let head_end = got
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or(got.len());
        let head_text = String::from_utf8_lossy(&got[..head_end]).to_ascii_lowercase();
        assert_eq!(
            head_text.contains("connection: close"),
            closes,
            "{name}: {head_text}"
        );
        if forwarded {
            assert!(
                backend.wait_count(before + 1).await,
                "{name}: not forwarded"
            );
        }
        let after = backend.requests();
        assert_eq!(
            after.len(),
            before + usize::from(forwarded),
            "{name}: backend saw {:?}",
            &after[before..]
        );
        for r in &after[before..] {
            assert_eq!(r.body, BODY, "{name}: body");
            assert!(
                !r.uri.contains("smuggled"),
                "{name}: smuggled request reached the backend"
            );
            assert_eq!(r.header("content-length").as_deref(), Some("39"), "{name}");
            assert!(!r.has("transfer-encoding"), "{name}");
        }
        table.push(format!("{name}: {status}"));
    }
    assert!(gw.is_running());
    // What hyper refused itself is counted and logged too.
    // The nine 400s above that are about the request head, and the three 431s.
    for (reason, n) in [("malformed_request", 9), ("head_too_large", 3)] {
        let labels = [
            ("route", "none"),
            ("outcome", "rejected"),
            ("reason", reason),
        ];
        // Counted and logged as the connection ends, which the client may see first.
        let counted = gw.wait_metric("hookgate_requests_total", &labels, |v| v >= n as f64);
        assert_eq!(counted, n as f64, "{reason}");
        let logged = || {
            gw.request_logs()
                .iter()
                .filter(|l| l["route"] == "none" && l["reason"] == reason)
                .count()
        };
        let deadline = std::time::Instant::now() + WAIT;
        while logged() < n && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(25));
        }
        assert_eq!(logged(), n, "{reason} log lines");
    }
    // Honest traffic after all of it.
    let r = post_mc(gw.addr(), PATH, SECRET, BODY).await;
    assert_eq!(r.status, 200);
    println!("smuggling shapes:\n  {}", table.join("\n  "));
}

/// Slowloris on many connections: 150 clients each dribble a request head a byte every 100 ms
/// while an honest sender keeps getting answers; every slow client is cut at header_timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_on_many_connections_while_honest_traffic_flows() {
    const SLOW: usize = 150;
    let backend = Backend::start();
    let opts = Opts {
        header_timeout: "2s".into(),
        max_connections: 1000,
        ..Opts::default()
    };
    let gw = start(&opts, &backend.url("/in"));
    let (rss0, _) = gw.memory_kib();
    let addr = gw.addr();
    let done = Arc::new(AtomicBool::new(false));
    let cut = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let dribbler = {
        let (done, cut) = (done.clone(), cut.clone());
        std::thread::spawn(move || {
            let mut socks: Vec<Option<TcpStream>> = (0..SLOW)
                .map(|_| {
                    let s = connect(addr);
                    s.set_nonblocking(true).expect("nonblocking");
                    Some(s)
                })
                .collect();
            let head = b"POST /webhooks/mediaconvert HTTP/1.1\r\nHost: x\r\nX-Slow: ";
            let mut i = 0usize;
            let mut buf = [0u8; 512];
            let mut last_cut = None;
            while !done.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(12) {
                for slot in socks.iter_mut() {
                    let Some(s) = slot else { continue };
                    let byte = head.get(i).copied().unwrap_or(b'a');
                    let gone = match s.read(&mut buf) {
                        Ok(_) => true,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => s.write(&[byte]).is_err(),
                        Err(_) => true,
                    };
                    if gone {
                        *slot = None;
                        cut.fetch_add(1, Ordering::Relaxed);
                        last_cut = Some(started.elapsed());
                    }
                }
                if socks.iter().all(Option::is_none) {
                    break;
                }
                i += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            last_cut
        })
    };
    // The honest sender, while the slow clients hold their connections.
    let mut worst = Duration::ZERO;
    for _ in 0..15 {
        let t = Instant::now();
        let r = post_mc(gw.addr(), PATH, SECRET, BODY).await;
        assert_eq!(r.status, 200);
        worst = worst.max(t.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        cut.load(Ordering::Relaxed) < SLOW,
        "the slow clients were gone before the honest requests ran"
    );
    let last_cut = tokio::task::spawn_blocking(move || dribbler.join().unwrap())
        .await
        .unwrap();
    done.store(true, Ordering::Relaxed);
    assert_eq!(
        cut.load(Ordering::Relaxed),
        SLOW,
        "slow clients still connected"
    );
    let last_cut = last_cut.expect("cut");
    assert!(
        last_cut < Duration::from_secs(8),
        "last slow client cut after {last_cut:?}"
    );
    let (rss, hwm) = gw.memory_kib();
    assert!(hwm < rss0 + MAX_GROWTH_KIB, "VmHWM {hwm} KiB from {rss0}");
    assert!(
        worst < Duration::from_secs(2),
        "honest request took {worst:?}"
    );
    println!(
        "slowloris x{SLOW}: honest worst {worst:?}; all cut by {last_cut:?}; VmRSS {rss0} -> {rss} KiB, VmHWM {hwm} KiB"
    );
}

/// A flood of silent connections, 6 times `max_connections`: the gateway holds at most
/// `max_connections` sockets (the rest wait in the kernel's backlog), cuts each after
/// header_timeout, and an honest sender queued behind the flood is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_flood_beyond_max_connections() {
    const MAX: u32 = 25;
    const FLOOD: usize = 150;
    let backend = Backend::start();
    let opts = Opts {
        header_timeout: "1s".into(),
        max_connections: MAX,
        ..Opts::default()
    };
    let gw = start(&opts, &backend.url("/in"));
    let (rss0, _) = gw.memory_kib();
    let fds0 = gw.open_fds();
    let flood: Vec<TcpStream> = (0..FLOOD).map(|_| connect(gw.addr())).collect();
    // While the flood is queued, the gateway holds at most MAX of those sockets, plus one per
    // worker waiting for a permit (and a few descriptors of its own): not the 150.
    let mut most = 0;
    for _ in 0..10 {
        most = most.max(gw.open_fds().saturating_sub(fds0));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        most <= MAX as usize + 8,
        "{most} more descriptors than before the flood"
    );
    let t = Instant::now();
    let r = post_mc(gw.addr(), PATH, SECRET, BODY).await;
    let queued = t.elapsed();
    assert_eq!(r.status, 200, "honest sender behind the flood");
    assert!(gw.is_running());
    drop(flood);
    let t = Instant::now();
    assert_eq!(post_mc(gw.addr(), PATH, SECRET, BODY).await.status, 200);
    let after = t.elapsed();
    let (rss, hwm) = gw.memory_kib();
    assert!(hwm < rss0 + MAX_GROWTH_KIB, "VmHWM {hwm} KiB from {rss0}");
    println!(
        "connection flood {FLOOD} on max_connections {MAX}: at most {most} extra fds; honest sender behind it served after {queued:?}, after it in {after:?}; VmRSS {rss0} -> {rss} KiB, VmHWM {hwm} KiB"
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

fn h2_post(addr: SocketAddr, headers: &[(&str, &str)]) -> http::Request<()> {
    let mut b = http::Request::builder()
        .method("POST")
        .uri(format!("http://{addr}{PATH}"));
    for (n, v) in headers {
        b = b.header(*n, *v);
    }
    b.body(()).expect("request")
}

/// HTTP/2 rapid reset (CVE-2023-44487): thousands of streams opened and cancelled at once.
/// The gateway stays up and bounded, and honest senders on other connections are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_rapid_reset() {
    const STREAMS: usize = 5000;
    let backend = Backend::start();
    let gw = start(&quick(), &backend.url("/in"));
    let (rss0, _) = gw.memory_kib();
    let addr = gw.addr();
    let mut send = h2_client(addr).await;
    let sig = sha256_header(SECRET, BODY);
    let mut opened = 0;
    let mut refused = None;
    for _ in 0..STREAMS {
        let ready = tokio::time::timeout(WAIT, send.clone().ready()).await;
        let Ok(Ok(mut s)) = ready else {
            refused = Some("connection closed by the gateway");
            break;
        };
        match s.send_request(h2_post(addr, &[("x-mediaconvert-signature", &sig)]), false) {
            Ok((_response, mut stream)) => {
                stream.send_reset(h2::Reason::CANCEL);
                opened += 1;
            }
            Err(_) => {
                refused = Some("stream refused");
                break;
            }
        }
        send = s;
    }
    // Honest senders on fresh connections, h2 and HTTP/1.1.
    let r = send_h2(
        addr,
        "POST",
        PATH,
        &[("x-mediaconvert-signature", &sig)],
        BODY,
    )
    .await
    .expect("honest h2");
    assert_eq!(r.status, 200);
    assert_eq!(post_mc(addr, PATH, SECRET, BODY).await.status, 200);
    assert!(gw.is_running());
    let (rss, hwm) = gw.memory_kib();
    assert!(hwm < rss0 + MAX_GROWTH_KIB, "VmHWM {hwm} KiB from {rss0}");
    // No cancelled stream reached the backend: none had sent its body.
    assert_eq!(backend.requests().len(), 2);
    let handled = gw.metric("hookgate_requests_total", &[("route", "mc")]);
    println!(
        "h2 rapid reset: {opened} streams opened and reset ({}); {handled} requests accounted; VmRSS {rss0} -> {rss} KiB, VmHWM {hwm} KiB",
        refused.unwrap_or("connection kept")
    );
}

/// HTTP/2 stream flood: 4 connections each open 300 streams whose body never ends. The 256
/// the gateway allows per connection get 408 at body_timeout, the rest are refused
/// (REFUSED_STREAM), honest senders are served meanwhile, memory stays bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_stream_flood() {
    const CONNS: usize = 4;
    const STREAMS: usize = 300;
    let backend = Backend::start();
    let opts = Opts {
        body_timeout: "2s".into(),
        ..Opts::default()
    };
    let gw = start(&opts, &backend.url("/in"));
    let (rss0, _) = gw.memory_kib();
    let addr = gw.addr();
    let sig = sha256_header(SECRET, BODY);
    let mut pending = Vec::new();
    let mut keep = Vec::new();
    let mut outcomes = Vec::new();
    for _ in 0..CONNS {
        let send = h2_client(addr).await;
        let sig = sig.clone();
        pending.push(tokio::spawn(async move {
            let mut responses = Vec::new();
            let mut streams = Vec::new();
            let mut send = send;
            for _ in 0..STREAMS {
                let mut s = send.ready().await.expect("ready");
                let (resp, mut stream) = s
                    .send_request(h2_post(addr, &[("x-mediaconvert-signature", &sig)]), false)
                    .expect("send");
                // Half the body, then nothing.
                let _ = stream.send_data(Bytes::from_static(&BODY[..10]), false);
                streams.push(stream);
                responses.push(resp);
                send = s;
            }
            let mut statuses = Vec::new();
            for r in responses {
                statuses.push(match r.await {
                    Ok(r) => r.status().to_string(),
                    Err(e) if e.reason() == Some(h2::Reason::REFUSED_STREAM) => "refused".into(),
                    Err(_) => "closed".into(),
                });
            }
            (statuses, streams, send)
        }));
    }
    // Honest senders while the streams are held.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = Instant::now();
    for _ in 0..5 {
        let r = send_h2(
            addr,
            "POST",
            PATH,
            &[("x-mediaconvert-signature", &sig)],
            BODY,
        )
        .await
        .expect("honest h2");
        assert_eq!(r.status, 200);
        assert_eq!(post_mc(addr, PATH, SECRET, BODY).await.status, 200);
    }
    let honest = t.elapsed();
    let (_, hwm_during) = gw.memory_kib();
    for p in pending {
        let (statuses, streams, send) = tokio::time::timeout(Duration::from_secs(30), p)
            .await
            .expect("stalled streams answered in time")
            .expect("task");
        assert_eq!(statuses.len(), STREAMS);
        // At least the first 256 (max_concurrent_streams) are served and time out. A client
        // that waits for the SETTINGS queues the rest and gets 408 for them too; streams it
        // opened past the limit before reading them are refused (or end with the connection).
        let timed_out = statuses.iter().filter(|s| s.starts_with("408")).count();
        let refused = statuses
            .iter()
            .filter(|s| *s == "refused" || *s == "closed")
            .count();
        assert!(timed_out >= 256, "{statuses:?}");
        assert_eq!(timed_out + refused, STREAMS, "{statuses:?}");
        outcomes.push(format!("{timed_out} x 408, {refused} refused"));
        keep.push((streams, send));
    }
    assert!(gw.is_running());
    let (rss, hwm) = gw.memory_kib();
    assert!(hwm < rss0 + MAX_GROWTH_KIB, "VmHWM {hwm} KiB from {rss0}");
    assert_eq!(backend.requests().len(), 10);
    println!(
        "h2 stream flood {CONNS}x{STREAMS}: {outcomes:?}; 10 honest requests in {honest:?}; VmRSS {rss0} -> {rss} KiB, VmHWM {hwm_during} KiB during, {hwm} KiB after"
    );
}

/// A request head or header list over the limits on HTTP/2: refused, the connection lives on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_oversized_headers_refused() {
    let backend = Backend::start();
    let gw = start(&quick(), &backend.url("/in"));
    let addr = gw.addr();
    let big = "a".repeat(100_000);
    let many: Vec<(String, String)> = (0..2000)
        .map(|i| (format!("x-h{i}"), "v".repeat(40)))
        .collect();
    let mut refused = Vec::new();
    for headers in [vec![("x-big".to_string(), big)], many] {
        let refs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let got = send_h2(addr, "POST", PATH, &refs, BODY).await;
        match got {
            Ok(r) => {
                assert_eq!(r.status, 431, "{}", r.text());
                refused.push("431".to_string());
            }
            Err(e) => refused.push(format!("stream reset ({e})")),
        }
    }
    assert!(backend.requests().is_empty());
    let sig = sha256_header(SECRET, BODY);
    let r = send_h2(
        addr,
        "POST",
        PATH,
        &[("x-mediaconvert-signature", &sig)],
        BODY,
    )
    .await
    .expect("honest h2");
    assert_eq!(r.status, 200);
    println!("h2 oversized headers: {refused:?}");
}

/// A backend listening on 127.0.0.1 that runs `serve` on every connection, in a thread each.
struct RawBackend {
    addr: SocketAddr,
}

impl RawBackend {
    fn start(serve: impl Fn(TcpStream) + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let serve = Arc::new(serve);
        std::thread::spawn(move || {
            for s in listener.incoming().flatten() {
                let serve = serve.clone();
                std::thread::spawn(move || serve(s));
            }
        });
        Self { addr }
    }

    fn url(&self) -> String {
        format!("http://{}/in", self.addr)
    }
}

/// Reads one request head and its Content-Length body.
fn read_request(s: &mut TcpStream) -> bool {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    s.set_read_timeout(Some(WAIT)).ok();
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return true;
            }
        }
        match s.read(&mut tmp) {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
        }
    }
}

/// Closes with a TCP reset rather than a FIN.
fn reset(s: TcpStream) {
    let sock = socket2::Socket::from(s);
    let _ = sock.set_linger(Some(Duration::ZERO));
    drop(sock);
}

/// A backend that resets the connection: before answering (502), or in the middle of its
/// body (the 200 head is already on its way: the sender's connection is cut short, never
/// left hanging). The gateway serves the next request either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_reset_before_and_mid_response() {
    let before = RawBackend::start(|mut s| {
        read_request(&mut s);
        reset(s);
    });
    let gw = start(&quick(), &before.url());
    let r = post_mc(gw.addr(), PATH, SECRET, BODY).await;
    assert_eq!(r.status, 502);
    assert_eq!(r.text(), r#"{"error":"bad gateway"}"#);

    let mid = RawBackend::start(|mut s| {
        if read_request(&mut s) {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n");
            let _ = s.write_all(&[b'x'; 1000]);
            let _ = s.flush();
            std::thread::sleep(Duration::from_millis(100));
        }
        reset(s);
    });
    let gw = start(&quick(), &mid.url());
    let mut s = connect(gw.addr());
    s.write_all(&raw_post_bytes(
        PATH,
        &[
            ("Host", "x"),
            ("X-MediaConvert-Signature", &sha256_header(SECRET, BODY)),
        ],
        BODY,
    ))
    .unwrap();
    let t = Instant::now();
    let (got, closed) = read_until_close(&mut s, Duration::from_secs(8));
    assert!(closed, "the sender's connection was left hanging");
    assert_eq!(statuses(&got), vec![200]);
    let head_end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(
        got.len() - head_end < 100_000,
        "a truncated body cannot look complete"
    );
    assert!(gw.is_running());
    println!(
        "backend reset mid-body: sender got the 200 head and {} of 100000 body bytes, connection closed after {:?}",
        got.len() - head_end,
        t.elapsed()
    );
}

/// A backend that accepts and never answers: 504 at the route's timeout. One that answers the
/// head and then stalls: the sender gets the head, and when the sender gives up (before the
/// route's timeout, which would cut the answer: tests/it/reliability.rs) the gateway lets go of
/// the backend connection too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_never_answers_or_stalls_mid_body() {
    let silent = RawBackend::start(|mut s| {
        read_request(&mut s);
        std::thread::sleep(Duration::from_secs(10));
    });
    let routes = route_with_timeout(
        "mc",
        PATH,
        &silent.url(),
        "1s",
        mc_verify(&[("current", SECRET)]),
    );
    let gw = Gateway::start(config(&quick(), &routes));
    let t = Instant::now();
    let r = post_mc(gw.addr(), PATH, SECRET, BODY).await;
    assert_eq!(r.status, 504);
    assert_eq!(r.text(), r#"{"error":"gateway timeout"}"#);
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "504 after {:?}",
        t.elapsed()
    );

    let released = Arc::new(AtomicBool::new(false));
    let stall = {
        let released = released.clone();
        RawBackend::start(move |mut s| {
            if read_request(&mut s) {
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nabc");
                // Wait for the gateway to close its side (bounded).
                let mut b = [0u8; 64];
                s.set_read_timeout(Some(WAIT)).ok();
                if matches!(s.read(&mut b), Ok(0) | Err(_)) {
                    released.store(true, Ordering::SeqCst);
                }
            }
        })
    };
    let routes = route_with_timeout(
        "mc",
        PATH,
        &stall.url(),
        "10s",
        mc_verify(&[("current", SECRET)]),
    );
    let gw = Gateway::start(config(&quick(), &routes));
    let mut s = connect(gw.addr());
    s.write_all(&raw_post_bytes(
        PATH,
        &[
            ("Host", "x"),
            ("X-MediaConvert-Signature", &sha256_header(SECRET, BODY)),
        ],
        BODY,
    ))
    .unwrap();
    let (got, closed) = read_until_close(&mut s, Duration::from_millis(1500));
    assert_eq!(statuses(&got), vec![200]);
    assert!(!closed, "the backend is still sending, slowly");
    drop(s);
    let deadline = Instant::now() + WAIT;
    while !released.load(Ordering::SeqCst) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        released.load(Ordering::SeqCst),
        "gateway kept the backend connection after the sender left"
    );
    assert!(gw.is_running());
}

/// How many bytes a backend streams in the gigantic-answer test.
const GIGANTIC: u64 = 512 * 1024 * 1024;

/// A backend that answers with a chunked body of `GIGANTIC` bytes, written as fast as the
/// gateway takes them.
fn gigantic_backend() -> RawBackend {
    RawBackend::start(|mut s| {
        if !read_request(&mut s) {
            return;
        }
        if s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            .is_err()
        {
            return;
        }
        let chunk = vec![b'z'; 64 * 1024];
        let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
        frame.extend_from_slice(&chunk);
        frame.extend_from_slice(b"\r\n");
        let mut sent = 0u64;
        while sent < GIGANTIC {
            if s.write_all(&frame).is_err() {
                return;
            }
            sent += chunk.len() as u64;
        }
        let _ = s.write_all(b"0\r\n\r\n");
    })
}

/// A backend answering 512 MiB: the gateway streams it through to a sender that reads it all
/// and holds it back from one that reads nothing, its memory bounded either way. The route's
/// timeout covers the whole answer, so it is set to the sender's own bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gigantic_backend_answer_streams_in_bounded_memory() {
    let backend = gigantic_backend();
    let routes = route_with_timeout(
        "mc",
        PATH,
        &backend.url(),
        "120s",
        mc_verify(&[("current", SECRET)]),
    );
    let gw = Gateway::start(config(&quick(), &routes));
    let (rss0, _) = gw.memory_kib();
    let request = raw_post_bytes(
        PATH,
        &[
            ("Host", "x"),
            ("X-MediaConvert-Signature", &sha256_header(SECRET, BODY)),
        ],
        BODY,
    );

    // A sender that reads nothing for 2 s while the backend pushes as fast as it can.
    let mut idle = connect(gw.addr());
    idle.write_all(&request).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let (rss_idle, _) = gw.memory_kib();
    drop(idle);

    // A sender that reads everything.
    let addr = gw.addr();
    let request2 = request.clone();
    let (total, took) = tokio::task::spawn_blocking(move || {
        let mut s = connect(addr);
        s.write_all(&request2).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        let t = Instant::now();
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0u64;
        // Reads the whole chunked stream: the framing overhead is small and counted too.
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    total += n as u64;
                    if buf[..n].ends_with(b"0\r\n\r\n") {
                        break;
                    }
                }
                Err(e) => panic!("read after {total} bytes: {e}"),
            }
            assert!(
                t.elapsed() < Duration::from_secs(120),
                "too slow: {total} bytes"
            );
        }
        (total, t.elapsed())
    })
    .await
    .unwrap();
    assert!(total > GIGANTIC, "sender got {total} of {GIGANTIC} bytes");
    let (rss, hwm) = gw.memory_kib();
    assert!(hwm < rss0 + MAX_GROWTH_KIB, "VmHWM {hwm} KiB from {rss0}");
    assert!(gw.is_running());
    println!(
        "gigantic answer: {} MiB streamed in {took:?}; idle reader: VmRSS {rss_idle} KiB after 2 s; VmRSS {rss0} -> {rss} KiB, VmHWM {hwm} KiB",
        total / (1024 * 1024)
    );
}

/// One request on a fresh HTTP/2 connection, which the client then keeps open.
async fn h2_used_once(addr: SocketAddr, sig: &str) -> h2::client::SendRequest<Bytes> {
    let h2 = h2_client(addr).await;
    let mut ready = h2.ready().await.expect("ready");
    let (resp, mut stream) = ready
        .send_request(h2_post(addr, &[("x-mediaconvert-signature", sig)]), false)
        .expect("send");
    stream
        .send_data(Bytes::from_static(BODY), true)
        .expect("data");
    assert_eq!(resp.await.expect("h2 answer").status(), 200);
    ready
}

/// Connections that went idle after a request (HTTP/2, HTTP/1.1 keep-alive) do not hold
/// `max_connections` slots for ever: each is closed once idle for header_timeout, and a new
/// sender gets a slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_give_their_slots_back() {
    let backend = Backend::start();
    let opts = Opts {
        header_timeout: "1s".into(),
        max_connections: 2,
        ..Opts::default()
    };
    let gw = start(&opts, &backend.url("/in"));
    let addr = gw.addr();
    let sig = sha256_header(SECRET, BODY);
    for shape in ["HTTP/2", "HTTP/1.1"] {
        // Both slots taken by connections that are used once, then kept open and idle.
        let mut h2 = Vec::new();
        let mut h1 = Vec::new();
        for _ in 0..2 {
            if shape == "HTTP/2" {
                h2.push(h2_used_once(addr, &sig).await);
            } else {
                let mut s = connect(addr);
                s.write_all(&raw_post_bytes(
                    PATH,
                    &[("Host", "x"), ("X-MediaConvert-Signature", &sig)],
                    BODY,
                ))
                .unwrap();
                assert_eq!(read_response(&mut s, WAIT).expect("h1 answer").status, 200);
                h1.push(s);
            }
        }
        let t = Instant::now();
        let r =
            tokio::time::timeout(Duration::from_secs(10), post_mc(addr, PATH, SECRET, BODY)).await;
        let waited = t.elapsed();
        assert!(
            matches!(&r, Ok(r) if r.status == 200),
            "{shape}: third sender not served within 10 s"
        );
        assert!(
            waited < Duration::from_secs(4),
            "{shape}: third sender waited {waited:?}"
        );
        println!("idle {shape} connections: a new sender served after {waited:?}");
    }
}

/// SIGTERM the moment the gateway says it listens is a clean shutdown (exit 0), not death by
/// signal: the handlers are in place before the `listening` line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_at_once_exits_cleanly() {
    for _ in 0..20 {
        let gw = start(&quick(), "http://127.0.0.1:9/in");
        gw.sigterm();
        let status = gw.wait_exit(WAIT).expect("exit after SIGTERM");
        assert_eq!(status.code(), Some(0), "{status:?}");
    }
}
