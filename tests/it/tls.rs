//! HTTPS: end to end over TLS 1.2 and 1.3, HTTP/2 by ALPN, certificate reload without dropping
//! open connections, a broken new certificate, and the handshake timeout.

use std::io::Read;
use std::time::{Duration, Instant};

use crate::common::tls::{
    server_tls, with_tls, HttpsConn, TestCert, H1, H2, TLS12_ONLY, TLS13_ONLY,
};
use crate::common::*;

const SECRET: &str = "tls-secret-one";
const BODY: &[u8] = br#"{"job_id":"job_tls","status":"completed"}"#;
const PATH: &str = "/webhooks/mediaconvert";

/// One mediaconvert route `mc`, and `extra` top-level keys (e.g. `reload`).
fn mc_config(backend: &Backend, opts: &Opts, extra: Value) -> Value {
    let routes = route(
        "mc",
        PATH,
        &backend.url("/hooks/mc"),
        mc_verify(&[("current", SECRET)]),
    );
    config(opts, &routes).merge(extra)
}

/// Starts a TLS gateway whose cert and key live in the gateway's own temp dir.
fn start_tls(backend: &Backend, opts: &Opts, extra: Value, cert: &TestCert) -> Gateway {
    let dir = tempfile::tempdir().expect("tempdir");
    let (crt, key) = cert.write_to(dir.path());
    let path = dir.path().join("hookgate.yaml");
    let yaml = with_tls(mc_config(backend, opts, extra), &crt, &key).config_text();
    std::fs::write(&path, &yaml).expect("write config");
    Gateway::try_start_at(dir, &path, &[])
        .unwrap_or_else(|e| panic!("gateway did not start: {e}\n{yaml}"))
}

/// Over HTTPS with HTTP/1.1, on TLS 1.2 and on TLS 1.3: verified, forwarded byte-for-byte, and
/// the backend is told the sender used https.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_end_to_end_on_tls12_and_tls13() {
    let backend = Backend::start();
    let cert = TestCert::generate();
    let gw = start_tls(&backend, &Opts::default(), Value::Null, &cert);
    for (offer, version) in [
        (TLS12_ONLY, rustls::ProtocolVersion::TLSv1_2),
        (TLS13_ONLY, rustls::ProtocolVersion::TLSv1_3),
        (H1, rustls::ProtocolVersion::TLSv1_3),
    ] {
        backend.clear();
        let mut conn = HttpsConn::open(gw.addr(), &[&cert.der], offer)
            .await
            .expect("TLS connection");
        assert_eq!(conn.version, version);
        assert_eq!(conn.alpn.as_deref(), Some(&b"http/1.1"[..]));
        assert_eq!(conn.peer_cert, cert.der);
        let resp = conn.post_mc(PATH, SECRET, BODY).await;
        assert_eq!(resp.status, 200, "{}", resp.text());
        let r = backend.single();
        assert_eq!(r.body, BODY);
        assert_eq!(r.header("x-forwarded-proto").as_deref(), Some("https"));
        assert_eq!(r.header("x-webhook-verified").as_deref(), Some("true"));

        // A forged one over TLS gets the same 401 as over plain HTTP.
        let mut conn = HttpsConn::open(gw.addr(), &[&cert.der], offer)
            .await
            .expect("TLS connection");
        let resp = conn
            .send(
                "POST",
                PATH,
                &[("x-mediaconvert-signature", "sha256=00")],
                BODY,
            )
            .await
            .expect("request")
            .0;
        assert_eq!(resp.status, 401);
        assert_eq!(resp.text(), INVALID_SIGNATURE);
    }
    // Plain HTTP to the TLS port gets no HTTP answer.
    assert!(raw_get(gw.addr(), "/healthz").is_err());
}

/// A client that offers h2 gets HTTP/2 over TLS, and its requests are verified and forwarded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_over_tls_by_alpn() {
    let backend = Backend::start();
    let cert = TestCert::generate();
    let gw = start_tls(&backend, &Opts::default(), Value::Null, &cert);
    let mut conn = HttpsConn::open(gw.addr(), &[&cert.der], H2)
        .await
        .expect("TLS connection");
    assert_eq!(conn.alpn.as_deref(), Some(&b"h2"[..]));
    let sig = sha256_header(SECRET, BODY);
    for i in 0..3 {
        let (resp, version) = conn
            .send(
                "POST",
                &format!("{PATH}?n={i}"),
                &[("x-mediaconvert-signature", &sig)],
                BODY,
            )
            .await
            .expect("h2 request");
        assert_eq!(version, hyper::Version::HTTP_2);
        assert_eq!(resp.status, 200, "{}", resp.text());
    }
    let got = backend.requests();
    assert_eq!(got.len(), 3);
    for r in got {
        assert_eq!(r.body, BODY);
        assert_eq!(r.header("x-forwarded-proto").as_deref(), Some("https"));
    }
}

/// A new certificate on disk is picked up by reload: new handshakes get it, and a connection
/// opened before keeps working on the old one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_swap_keeps_open_connections() {
    let backend = Backend::start();
    let (old, new) = (TestCert::generate(), TestCert::generate());
    let gw = start_tls(
        &backend,
        &Opts::default(),
        json!({"reload": {"interval": "100ms"}}),
        &old,
    );
    let trusted = [&old.der, &new.der];

    let mut h1_before = HttpsConn::open(gw.addr(), &trusted, H1).await.unwrap();
    let mut h2_before = HttpsConn::open(gw.addr(), &trusted, H2).await.unwrap();
    assert_eq!(h1_before.peer_cert, old.der);
    assert_eq!(h1_before.post_mc(PATH, SECRET, BODY).await.status, 200);
    assert_eq!(h2_before.post_mc(PATH, SECRET, BODY).await.status, 200);

    new.write_to(gw.dir.path());
    let ok = gw.wait_metric("hookgate_config_reloads_total", &[("result", "ok")], |v| {
        v >= 1.0
    });
    assert_eq!(ok, 1.0, "no reload after the certificate changed");

    let mut after = HttpsConn::open(gw.addr(), &trusted, H1).await.unwrap();
    assert_eq!(
        after.peer_cert, new.der,
        "new handshake got the old certificate"
    );
    assert_eq!(after.post_mc(PATH, SECRET, BODY).await.status, 200);
    // The connections opened before still work, on the certificate they started with.
    assert_eq!(h1_before.peer_cert, old.der);
    assert_eq!(h1_before.post_mc(PATH, SECRET, BODY).await.status, 200);
    assert_eq!(h2_before.post_mc(PATH, SECRET, BODY).await.status, 200);
    assert_eq!(backend.requests().len(), 5);
    // Only the new certificate is trusted now: a client that trusts only the old one fails.
    assert!(HttpsConn::open(gw.addr(), &[&old.der], H1).await.is_err());
}

/// A broken certificate (or a key that does not match it) is refused: the last good one keeps
/// serving, the reload counts as an error and the log names the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_certificate_keeps_the_last_good_one() {
    let backend = Backend::start();
    let (good, other) = (TestCert::generate(), TestCert::generate());
    let gw = start_tls(
        &backend,
        &Opts::default(),
        json!({"reload": {"interval": "100ms"}}),
        &good,
    );
    let crt = gw.dir.path().join("tls.crt");
    let key = gw.dir.path().join("tls.key");

    // Truncated certificate.
    std::fs::write(&crt, &good.cert_pem[..good.cert_pem.len() / 2]).unwrap();
    let errors = gw.wait_metric(
        "hookgate_config_reloads_total",
        &[("result", "error")],
        |v| v >= 1.0,
    );
    assert_eq!(errors, 1.0, "the broken certificate was not reported");
    assert_eq!(
        gw.metric("hookgate_config_last_reload_successful", &[]),
        0.0
    );
    let line = gw
        .wait_log("config reload: problem", |v| {
            v["key"] == "server.tls.cert_file"
        })
        .expect("a log line naming server.tls.cert_file");
    assert!(!line
        .to_string()
        .contains(good.key_pem.lines().nth(1).unwrap()));
    let mut conn = HttpsConn::open(gw.addr(), &[&good.der], H1).await.unwrap();
    assert_eq!(conn.peer_cert, good.der);
    assert_eq!(conn.post_mc(PATH, SECRET, BODY).await.status, 200);

    // A valid certificate with somebody else's key.
    std::fs::write(&crt, &good.cert_pem).unwrap();
    std::fs::write(&key, &other.key_pem).unwrap();
    let errors = gw.wait_metric(
        "hookgate_config_reloads_total",
        &[("result", "error")],
        |v| v >= 2.0,
    );
    assert_eq!(errors, 2.0, "the mismatched key was not reported");
    gw.wait_log("config reload: problem", |v| {
        v["key"] == "server.tls"
            && v["problem"]
                .as_str()
                .unwrap_or("")
                .contains("does not belong")
    })
    .expect("a log line about the mismatched key");
    let conn = HttpsConn::open(gw.addr(), &[&good.der], H1).await.unwrap();
    assert_eq!(conn.peer_cert, good.der);
    assert_eq!(
        gw.metric("hookgate_config_reloads_total", &[("result", "ok")]),
        0.0
    );

    // Fixed: the next poll applies it.
    std::fs::write(&crt, &other.cert_pem).unwrap();
    gw.wait_metric("hookgate_config_reloads_total", &[("result", "ok")], |v| {
        v >= 1.0
    });
    let conn = HttpsConn::open(gw.addr(), &[&other.der], H1).await.unwrap();
    assert_eq!(conn.peer_cert, other.der);
    assert_eq!(
        gw.metric("hookgate_config_last_reload_successful", &[]),
        1.0
    );
}

/// A client that connects and never finishes its handshake is cut off after `header_timeout`,
/// and its connection slot goes to the next client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_handshake_is_cut_off_and_frees_its_slot() {
    let backend = Backend::start();
    let cert = TestCert::generate();
    let opts = Opts {
        header_timeout: "1s".into(),
        max_connections: 1,
        // One listener, so connections are taken in the order they arrive: with several, the
        // second client may reach an idle worker before the stalled one is taken.
        workers: 1,
        ..Opts::default()
    };
    let gw = start_tls(&backend, &opts, Value::Null, &cert);

    let started = Instant::now();
    let mut stalled = connect(gw.addr());
    // Half a ClientHello record header, then nothing.
    std::io::Write::write_all(&mut stalled, &[0x16, 0x03, 0x01]).unwrap();
    // The only slot is taken: a real client waits for it, and gets it once the stalled one is
    // dropped.
    let mut conn = HttpsConn::open(gw.addr(), &[&cert.der], H1)
        .await
        .expect("the second client gets the slot after the timeout");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "second client got in after {waited:?}: the slot was not taken"
    );
    assert_eq!(conn.post_mc(PATH, SECRET, BODY).await.status, 200);
    stalled
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 64];
    let n = stalled.read(&mut buf);
    assert!(
        matches!(n, Ok(0)) || n.is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "the stalled connection is still open"
    );
}

/// `check` and `run` refuse a TLS block whose files are missing or wrong, naming each key.
#[test]
fn bad_tls_config_is_refused_with_its_key() {
    let cert = TestCert::generate();
    let dir = tempfile::tempdir().unwrap();
    let (crt, _) = cert.write_to(dir.path());
    let missing = dir.path().join("missing.key");
    let yaml = json!({
        "server": {"tls": server_tls(&crt, &missing)},
        "routes": [{
            "name": "a",
            "path": "/a",
            "upstream": "http://127.0.0.1:1/",
            "verify": mc_verify(&[("k", "s")]),
        }],
    });
    for cmd in ["check", "run"] {
        let out = run_with_config(cmd, &yaml, &[]);
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("server.tls.key_file: cannot read"),
            "{cmd}: {err}"
        );
    }
    let yaml = json!({"server": {"tls": {"cert_file": ""}}, "routes": []});
    let out = run_with_config("check", &yaml, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("server.tls.cert_file: missing"), "{err}");
    assert!(err.contains("server.tls.key_file: missing"), "{err}");
}
