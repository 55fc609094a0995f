//! Config reload: by SIGHUP, by a file change, by a Kubernetes-style `..data` symlink swap;
//! invalid configs refused while the old one serves; secret rotation; requests under way finish
//! on the config they started with; settings that need a restart say so.

use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::*;

const BODY: &[u8] = br#"{"job_id":"job_reload","status":"completed"}"#;
const OLD: &str = "reload-secret-old";
const NEW: &str = "reload-secret-new";

fn reloads(gw: &Gateway, result: &str) -> f64 {
    gw.metric("hookgate_config_reloads_total", &[("result", result)])
}

/// Waits (bounded) until `hookgate_config_reloads_total{result}` reaches `n`.
fn wait_reloads(gw: &Gateway, result: &str, n: f64) {
    let got = gw.wait_metric(
        "hookgate_config_reloads_total",
        &[("result", result)],
        |v| v >= n,
    );
    assert_eq!(got, n, "reloads{{result={result}}}\n{}", gw.all_output());
}

fn write_atomically(path: &Path, config: impl ConfigText) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, config.config_text()).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// The same config with the route's path changed.
fn with_path(config: &Value, path: &str) -> Value {
    let mut c = config.clone();
    c["routes"][0]["path"] = json!(path);
    c
}

fn one_route(backend: &Backend, path: &str, secrets: &[Value]) -> Value {
    route(
        "mc",
        path,
        &backend.url("/hooks/mc"),
        verify("mediaconvert", secrets),
    )
}

/// With file watching off, a changed file is not applied until SIGHUP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads() {
    let backend = Backend::start();
    let before = config(
        &Opts::default(),
        one_route(&backend, "/a", &[secret_value("k", OLD)]),
    )
    .with("reload", json!({"watch": false}));
    let gw = Gateway::start(&before);
    assert_eq!(reloads(&gw, "ok"), 0.0);
    assert_eq!(reloads(&gw, "error"), 0.0);
    assert_eq!(post_mc(gw.addr(), "/a", OLD, BODY).await.status, 200);

    let after = with_path(&before, "/b");
    assert_ne!(before, after);
    std::fs::write(gw.config_file(), after.config_text()).unwrap();
    // Not watched: still the old routes (checked after a few would-be poll intervals).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(reloads(&gw, "ok"), 0.0);
    assert_eq!(post_mc(gw.addr(), "/b", OLD, BODY).await.status, 404);

    gw.sighup();
    wait_reloads(&gw, "ok", 1.0);
    assert_eq!(post_mc(gw.addr(), "/b", OLD, BODY).await.status, 200);
    assert_eq!(post_mc(gw.addr(), "/a", OLD, BODY).await.status, 404);
    let line = gw
        .wait_log("config reloaded", |v| v["trigger"] == "sighup")
        .expect("reload log line");
    assert_eq!(line["files"], 1);
    // A SIGHUP with nothing changed reloads again (and does not kill the process).
    gw.sighup();
    wait_reloads(&gw, "ok", 2.0);
    assert_eq!(post_mc(gw.addr(), "/b", OLD, BODY).await.status, 200);
}

/// Editing the config file is noticed by polling; the time from write to the new config in
/// force is printed (bounded by `reload.interval` plus the reload itself).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_change_reloads() {
    let backend = Backend::start();
    let before = config(
        &Opts::default(),
        one_route(&backend, "/a", &[secret_value("k", OLD)]),
    )
    .with("reload", json!({"interval": "200ms"}));
    let gw = Gateway::start(&before);
    let mut latencies = Vec::new();
    for (i, path) in ["/b", "/c", "/d"].iter().enumerate() {
        let text = with_path(&before, path);
        let written = Instant::now();
        write_atomically(&gw.config_file(), &text);
        wait_reloads(&gw, "ok", (i + 1) as f64);
        latencies.push(written.elapsed());
        assert_eq!(post_mc(gw.addr(), path, OLD, BODY).await.status, 200);
    }
    gw.wait_log("config reloaded", |v| v["trigger"] == "file_changed")
        .expect("reload log line");
    let max = latencies.iter().max().copied().unwrap_or_default();
    println!("reload latency with interval 200ms: {latencies:?} (max {max:?})");
    assert!(max < Duration::from_secs(2), "{latencies:?}");
    // Rewriting identical content is not a change.
    std::fs::write(gw.config_file(), std::fs::read(gw.config_file()).unwrap()).unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(reloads(&gw, "ok"), 3.0);
}

/// The layout Kubernetes gives a mounted ConfigMap or Secret: `config.yaml -> ..data/config.yaml`,
/// `..data -> ..2026_01_01_00_00_00.1`, updated by pointing `..data` at a new directory
/// (atomically, by renaming a new symlink over it). Neither file's own mtime changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_symlink_swap_reloads_config_and_secret() {
    let backend = Backend::start();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (config_dir, secret_dir) = (root.join("config"), root.join("secrets"));
    let secret_path = secret_dir.join("mediaconvert");
    let yaml = |secret_id: &str| {
        config(
            &Opts::default(),
            one_route(&backend, "/a", &[secret_file(secret_id, &secret_path)]),
        )
        .with("reload", json!({"interval": "100ms"}))
        .config_text()
    };
    /// Writes a new timestamped directory and swaps `..data` to it, as the kubelet does.
    fn publish(dir: &Path, generation: &str, name: &str, content: &str) {
        std::fs::create_dir_all(dir).unwrap();
        let ts = dir.join(format!("..2026_01_01_00_00_00.{generation}"));
        std::fs::create_dir(&ts).unwrap();
        std::fs::write(ts.join(name), content).unwrap();
        let tmp = dir.join("..data_tmp");
        symlink(ts.file_name().unwrap(), &tmp).unwrap();
        std::fs::rename(&tmp, dir.join("..data")).unwrap();
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            symlink(Path::new("..data").join(name), &link).unwrap();
        }
    }
    publish(&secret_dir, "1", "mediaconvert", &format!("{OLD}\n"));
    publish(&config_dir, "1", "config.yaml", &yaml("v1"));
    let config_path = config_dir.join("config.yaml");
    let gw = Gateway::try_start_at(dir, &config_path, &[]).unwrap();
    assert_eq!(post_mc(gw.addr(), "/a", OLD, BODY).await.status, 200);
    assert_eq!(post_mc(gw.addr(), "/a", NEW, BODY).await.status, 401);

    // The Secret is updated: only the secret changes.
    publish(&secret_dir, "2", "mediaconvert", &format!("{NEW}\n"));
    wait_reloads(&gw, "ok", 1.0);
    assert_eq!(post_mc(gw.addr(), "/a", NEW, BODY).await.status, 200);
    assert_eq!(post_mc(gw.addr(), "/a", OLD, BODY).await.status, 401);

    // The ConfigMap is updated: the key id changes.
    publish(&config_dir, "2", "config.yaml", &yaml("v2"));
    wait_reloads(&gw, "ok", 2.0);
    assert_eq!(post_mc(gw.addr(), "/a", NEW, BODY).await.status, 200);
    assert_eq!(
        backend
            .requests()
            .last()
            .unwrap()
            .header("x-webhook-key-id")
            .as_deref(),
        Some("v2")
    );
    assert_eq!(reloads(&gw, "error"), 0.0);
}

/// An invalid new config is refused whole: every problem is logged with its key, the error is
/// counted, the old config keeps serving; fixing the file applies it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_reload_keeps_serving_and_counts_an_error() {
    let backend = Backend::start();
    let good = config(
        &Opts::default(),
        one_route(&backend, "/a", &[secret_value("k", OLD)]),
    )
    .with("reload", json!({"interval": "100ms"}));
    let gw = Gateway::start(&good);
    assert_eq!(
        gw.metric("hookgate_config_last_reload_successful", &[]),
        1.0
    );

    let mut bad = with_path(&good, "/b");
    bad["server"]["body_timeout"] = json!("soon");
    bad["servr"] = json!({});
    write_atomically(&gw.config_file(), &bad);
    wait_reloads(&gw, "error", 1.0);
    assert_eq!(reloads(&gw, "ok"), 0.0);
    assert_eq!(
        gw.metric("hookgate_config_last_reload_successful", &[]),
        0.0
    );
    for key in ["server.body_timeout", "servr"] {
        gw.wait_log("config reload: problem", |v| v["key"] == key)
            .unwrap_or_else(|| panic!("no problem logged for {key}:\n{}", gw.all_output()));
    }
    gw.wait_log(
        "config reload refused; still serving the previous config",
        |_| true,
    )
    .expect("summary line");
    assert_eq!(post_mc(gw.addr(), "/a", OLD, BODY).await.status, 200);
    assert_eq!(post_mc(gw.addr(), "/b", OLD, BODY).await.status, 404);

    // Not valid YAML at all, and a config file that disappears: refused too.
    write_atomically(&gw.config_file(), "routes: [\n");
    wait_reloads(&gw, "error", 2.0);
    std::fs::remove_file(gw.config_file()).unwrap();
    wait_reloads(&gw, "error", 3.0);
    gw.wait_log("config reload: problem", |v| {
        v["problem"]
            .as_str()
            .is_some_and(|p| p.contains("cannot read config file"))
    })
    .expect("missing file logged");
    assert_eq!(post_mc(gw.addr(), "/a", OLD, BODY).await.status, 200);

    write_atomically(&gw.config_file(), with_path(&good, "/c"));
    wait_reloads(&gw, "ok", 1.0);
    assert_eq!(
        gw.metric("hookgate_config_last_reload_successful", &[]),
        1.0
    );
    assert_eq!(post_mc(gw.addr(), "/c", OLD, BODY).await.status, 200);
}

/// The rotation walk-through of the README: add the new secret next to the old, see it match,
/// remove the old. Secrets come from files; a request signed with the new secret fails before
/// the reload and passes after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_rotation_by_reload() {
    let backend = Backend::start();
    let secrets = tempfile::tempdir().unwrap();
    let (old_file, new_file) = (secrets.path().join("current"), secrets.path().join("next"));
    std::fs::write(&old_file, format!("{OLD}\n")).unwrap();
    let with = |s: &[Value]| {
        config(&Opts::default(), one_route(&backend, "/a", s))
            .with("reload", json!({"interval": "100ms"}))
    };
    let gw = Gateway::start(with(&[secret_file("current", &old_file)]));
    let matches = |id: &str| {
        gw.metric(
            "hookgate_key_matches_total",
            &[("route", "mc"), ("key_id", id)],
        )
    };

    assert_eq!(post_mc(gw.addr(), "/a", NEW, BODY).await.status, 401);

    // 1. Add the new secret; both verify.
    std::fs::write(&new_file, format!("{NEW}\n")).unwrap();
    write_atomically(
        &gw.config_file(),
        with(&[
            secret_file("current", &old_file),
            secret_file("next", &new_file),
        ]),
    );
    wait_reloads(&gw, "ok", 1.0);
    assert_eq!(post_mc(gw.addr(), "/a", NEW, BODY).await.status, 200);
    assert_eq!(post_mc(gw.addr(), "/a", OLD, BODY).await.status, 200);
    assert_eq!(matches("next"), 1.0);
    assert_eq!(matches("current"), 1.0);
    let keys: Vec<String> = backend
        .requests()
        .iter()
        .filter_map(|r| r.header("x-webhook-key-id"))
        .collect();
    assert_eq!(keys, ["next", "current"]);

    // 2. The sender switched: only `next` matches from now on. 3. Remove the old secret.
    write_atomically(&gw.config_file(), with(&[secret_file("next", &new_file)]));
    wait_reloads(&gw, "ok", 2.0);
    assert_eq!(post_mc(gw.addr(), "/a", OLD, BODY).await.status, 401);
    assert_eq!(post_mc(gw.addr(), "/a", NEW, BODY).await.status, 200);
    assert_eq!(matches("next"), 2.0);
    assert_eq!(matches("current"), 1.0);
}

/// A request that started before a reload finishes on the config it started with: its head
/// arrives, the reload removes the secret that signed it, then its body arrives, and it is still
/// verified with the old secret. The next request sees the new config.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_in_flight_finishes_on_its_config() {
    let backend = Backend::start();
    let before = config(
        &Opts::default(),
        one_route(&backend, "/a", &[secret_value("k", OLD)]),
    )
    .with("reload", json!({"watch": false}));
    let gw = Gateway::start(&before);

    let sig = sha256_header(OLD, BODY);
    let raw = raw_post_bytes(
        "/a",
        &[("Host", "localhost"), ("X-MediaConvert-Signature", &sig)],
        BODY,
    );
    let head_len = raw.len() - BODY.len();
    let mut s = connect(gw.addr());
    s.write_all(&raw[..head_len]).unwrap();
    // The request has started once the gateway waits for its body; give hyper the head first.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut after = before.clone();
    after["routes"][0]["verify"]["secrets"] = json!([secret_value("k", NEW)]);
    std::fs::write(gw.config_file(), after.config_text()).unwrap();
    gw.sighup();
    wait_reloads(&gw, "ok", 1.0);

    s.write_all(BODY).unwrap();
    let resp = read_response(&mut s, WAIT).unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(backend.single().body, BODY);
    // New requests use the new secret.
    assert_eq!(post_mc(gw.addr(), "/a", OLD, BODY).await.status, 401);
    assert_eq!(post_mc(gw.addr(), "/a", NEW, BODY).await.status, 200);
}

/// Listener addresses (and other start-up-only settings) cannot change by reload: the rest of
/// the config applies, a warning names each such key, and the old listener keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_change_warns_and_keeps_the_listener() {
    let backend = Backend::start();
    let before = config(
        &Opts::default(),
        one_route(&backend, "/a", &[secret_value("k", OLD)]),
    )
    .with("reload", json!({"watch": false}));
    let gw = Gateway::start(&before);
    let port = dead_port();
    let mut after = with_path(&before, "/b");
    after["server"]["listen"] = json!(format!("127.0.0.1:{port}"));
    after["server"]["header_timeout"] = json!("3s");
    std::fs::write(gw.config_file(), after.config_text()).unwrap();
    gw.sighup();
    wait_reloads(&gw, "ok", 1.0);
    for key in ["server.listen", "server.header_timeout"] {
        let line = gw
            .wait_log(
                "config reload: this setting changed but only takes effect after a restart; the running value stays",
                |v| v["key"] == key,
            )
            .unwrap_or_else(|| panic!("no warning for {key}:\n{}", gw.all_output()));
        assert_eq!(line["level"], "WARN");
    }
    // admin.listen did not change: no warning for it.
    assert!(!gw
        .logs()
        .iter()
        .any(|l| l.contains("\"key\":\"admin.listen\"")));
    assert_eq!(post_mc(gw.addr(), "/b", OLD, BODY).await.status, 200);
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}
