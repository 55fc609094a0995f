//! The web console on the admin listener: its page and assets are open and carry a strict
//! security policy, `/api/*` still needs the token, the API calls the console relies on (the
//! dead-letter filter, their bulk replay, the diagnosis in words), and the whole console in a
//! real browser (`tests/console/browser_test.py`: Debian's chromium driven by Selenium).
//!
//! The browser test needs `chromium`, `chromium-driver` (apt) and Selenium in `.venv/`:
//! `bash scripts/test.sh` installs them. Without them it fails and says so.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

const SECRET: &str = "console-secret-0123";
const TOKEN: &str = "console-token-abc";
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn mc(name: &str, upstream: &str, extra: Value) -> Value {
    hooks_route(name, upstream, SECRET, extra)
}

fn with_token(mut c: Value) -> Value {
    c["admin"]["token"] = json!({"id": "admin", "value": TOKEN});
    c
}

async fn api(gw: &Gateway, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    admin_call(gw, TOKEN, method, path, body).await
}

async fn api_until(gw: &Gateway, path: &str, f: impl Fn(&Value) -> bool) -> Value {
    admin_until(gw, TOKEN, path, f).await
}

#[tokio::test]
async fn the_page_and_assets_are_open_with_a_strict_policy_and_the_api_is_not() {
    let backend = Backend::start();
    let gw = Gateway::start(with_token(config(
        &Opts::default(),
        [mc("mc", &backend.url("/in"), json!({}))],
    )));
    for (path, kind) in [
        ("/", "text/html"),
        ("/console/console.js", "text/javascript"),
        ("/console/console.css", "text/css"),
        ("/console/icon.svg", "image/svg+xml"),
    ] {
        let r = send(gw.admin(), "GET", path, &[], b"").await;
        assert_eq!(r.status, 200, "{path} without a token");
        let header = |name: &str| r.header(name).unwrap_or_default();
        assert!(header("content-type").starts_with(kind), "{path}");
        assert_eq!(header("content-security-policy"), CSP, "{path}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{path}");
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
        assert!(!r.body.is_empty());
    }
    let page = send(gw.admin(), "GET", "/", &[], b"").await.text();
    assert!(page.contains(r#"<script src="/console/console.js" defer></script>"#));
    assert!(
        !page.contains(TOKEN) && !page.contains(SECRET),
        "the page holds no data"
    );
    let r = send(gw.admin(), "POST", "/", &[], b"").await;
    assert_eq!(r.status, 405);
    let r = send(gw.admin(), "GET", "/console/nothing.js", &[], b"").await;
    assert_eq!(r.status, 404);

    for path in ["/api/events", "/api/routes"] {
        let r = send(gw.admin(), "GET", path, &[], b"").await;
        assert_eq!(r.status, 401, "{path} without the token");
        let (status, _) = api(&gw, "GET", path, None).await;
        assert_eq!(status, 200, "{path} with the token");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_and_revived_through_the_api() {
    let backend = Backend::start_with(Behaviour {
        status: 500,
        ..Behaviour::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let opts = Opts {
        store: Some(redb_store(&dir.path().join("hookgate.redb"))),
        ..Opts::default()
    };
    let q = json!({"delivery": {"mode": "queue", "max_attempts": 2, "backoff": {"base": "10ms", "max": "20ms"}}});
    let mut c = with_token(config(&opts, [mc("q", &backend.url("/q"), q)]));
    // Revived from the store's copy: the journal need not keep bodies.
    c["journal"] = json!({"capture_body": false});
    let gw = Gateway::start(c);
    let body = b"{\"invoice\":\"in_1\",\r\n \"total\":12}\n";
    let r = post_mc(gw.addr(), "/hooks/q", SECRET, body).await;
    assert_eq!(r.status, 202);
    let dead = api_until(&gw, "/api/events?state=dead", |v| events(v).len() == 1).await;
    let event = &events(&dead)[0];
    assert_eq!(event["attempts"], 2);
    assert!(
        event["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("500")),
        "{event}"
    );
    let (_, pending) = api(&gw, "GET", "/api/events?state=pending", None).await;
    assert!(events(&pending).is_empty(), "{pending}");

    // The backend saw the two failed attempts.
    assert_eq!(backend.requests().len(), 2);
    backend.set(Behaviour::default());
    let select = json!({"state": "dead", "route": "q", "dry_run": true});
    let (status, v) = api(&gw, "POST", "/api/replay", Some(select)).await;
    assert_eq!((status, v["matched"].as_u64()), (200, Some(1)), "{v}");
    assert_eq!(backend.requests().len(), 2, "a dry run sends nothing");
    let (status, v) = api(
        &gw,
        "POST",
        "/api/replay",
        Some(json!({"state": "dead", "route": "q"})),
    )
    .await;
    assert_eq!((status, v["replayed"].as_u64()), (200, Some(1)), "{v}");
    let list = api_until(&gw, "/api/events?route=q", |v| {
        events(v).first().is_some_and(|e| e["state"] == "delivered")
    })
    .await;
    assert_eq!(events(&list).len(), 1, "the event itself, not a copy");
    assert_eq!(events(&list)[0]["attempts"], 3, "its timeline goes on");
    let delivered = backend.requests();
    assert_eq!(delivered.len(), 3);
    assert_eq!(delivered[2].body, body, "byte for byte");
    // It left the dead letters, here and for `hookgate dlq`.
    let (_, dead) = api(&gw, "GET", "/api/events?state=dead", None).await;
    assert!(events(&dead).is_empty(), "{dead}");
    assert_eq!(
        gw.metric("hookgate_dead_letters", &[("route", "q")]),
        0.0,
        "the dead-letter count"
    );
}

#[tokio::test]
async fn an_event_carries_its_diagnosis_in_words() {
    let backend = Backend::start();
    let gw = Gateway::start(with_token(config(
        &Opts::default(),
        [mc("mc", &backend.url("/in"), json!({}))],
    )));
    let body = br#"{"job_id":"j1"}"#;
    let forged = sha256_header("wrong-secret", body);
    let r = post(
        gw.addr(),
        "/hooks/mc",
        &[("x-mediaconvert-signature", &forged)],
        body,
    )
    .await;
    assert_eq!(r.status, 401);
    let list = api_until(&gw, "/api/events?outcome=rejected", |v| {
        events(v).len() == 1
    })
    .await;
    let id = events(&list)[0]["id"].as_str().unwrap().to_string();
    let (_, full) = api(&gw, "GET", &format!("/api/events/{id}"), None).await;
    assert_eq!(full["diagnosis"], "unknown");
    assert!(
        full["diagnosis_advice"]
            .as_str()
            .is_some_and(|a| a.contains("a wrong secret or a forgery")),
        "{full}"
    );
}

/// How long the browser test may take at most (it takes about 13 s, 17 s with both cores busy).
const BROWSER_BUDGET: Duration = Duration::from_secs(240);

#[test]
fn the_console_in_a_real_browser() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".venv/bin/python");
    let setup = "run `bash scripts/test.sh` (or, with chromium and chromium-driver installed from apt, `bash tests/console/setup.sh`) first";
    assert!(python.exists(), "{} is missing: {setup}", python.display());
    for tool in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
        assert!(
            Path::new(tool).exists(),
            "{tool} is missing: install Debian's chromium and chromium-driver ({setup})"
        );
    }
    let started = Instant::now();
    let mut child = Command::new(&python)
        .arg(root.join("tests/console/browser_test.py"))
        .env("HOOKGATE_BIN", env!("CARGO_BIN_EXE_hookgate"))
        .env("PYTHONUNBUFFERED", "1")
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}; {setup}", python.display()));
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let stdout = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if started.elapsed() > BROWSER_BUDGET {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the browser test took over {BROWSER_BUDGET:?}:\n{}\n{}",
                stdout.join().unwrap_or_default(),
                stderr.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (stdout, stderr) = (
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default(),
    );
    println!("{stdout}");
    assert!(
        status.success(),
        "the browser test failed ({status}):\n{stdout}\n{stderr}\n(screenshots in tests/console/output/)"
    );
}
