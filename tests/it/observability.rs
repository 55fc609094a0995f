//! What an operator reads off a running gateway: its request lines, its start-up and shutdown
//! lines, and the metric series alerts need before the first webhook. Real binary, real backend.

use std::time::Duration;

use crate::common::*;
use serde_json::{json, Value};

const SECRET: &str = "obs-secret";
const BODY: &[u8] = br#"{"job_id":"job_abc123xyz","status":"completed","progress_percentage":100}"#;

fn start(backend: &Backend, opts: &Opts) -> Gateway {
    let mut r = route(
        "media",
        "/hooks/media",
        &backend.url("/in"),
        mc_verify(&[("current", SECRET)]),
    );
    r["schema"] = json!({"builtin": "mediaconvert"});
    Gateway::start(config(opts, [r]))
}

/// Milliseconds with at most three decimals: microseconds, no float noise.
fn rounded_to_micros(v: &Value) -> bool {
    let text = v.to_string();
    text.split_once('.').is_none_or(|(_, frac)| frac.len() <= 3)
}

#[tokio::test]
async fn every_request_line_names_method_and_path_and_omits_empty_fields() {
    let backend = Backend::start();
    let gw = start(&backend, &Opts::default());

    // A probe of an unknown path: visible, without its query.
    let r = post(gw.addr(), "/wp-login.php?x=1", &[], b"{}").await;
    assert_eq!(r.status, 404);
    let line = gw
        .wait_request_log(|v| v["status"] == 404)
        .expect("404 line");
    assert_eq!(line["method"], "POST");
    assert_eq!(line["path"], "/wp-login.php");
    assert_eq!(line["route"], "none");
    assert_eq!(line["reason"], "no_route");

    // A GET on a real route: that route, and why.
    let r = raw_get(gw.addr(), "/hooks/media").unwrap();
    assert_eq!(r.status, 405);
    let line = gw
        .wait_request_log(|v| v["status"] == 405)
        .expect("405 line");
    assert_eq!(line["route"], "media");
    assert_eq!(line["method"], "GET");
    assert_eq!(line["reason"], "method_not_allowed");
    assert!(
        gw.metric(
            "hookgate_requests_total",
            &[("route", "media"), ("reason", "method_not_allowed")]
        ) >= 1.0
    );

    // Forwarded: no empty `reason`; the duration rounded to the microsecond.
    let r = post_mc(gw.addr(), "/hooks/media", SECRET, BODY).await;
    assert_eq!(r.status, 200);
    let line = gw
        .wait_request_log(|v| v["outcome"] == "forwarded")
        .expect("forwarded line");
    assert!(line.get("reason").is_none(), "{line}");
    assert_eq!(line["path"], "/hooks/media");
    for l in gw.request_logs() {
        assert!(rounded_to_micros(&l["duration_ms"]), "{l}");
    }
}

#[tokio::test]
async fn a_schema_refusal_names_the_pointers_never_the_values() {
    let backend = Backend::start();
    let gw = start(&backend, &Opts::default());
    let body =
        br#"{"job_id":"job_abc123xyz","status":"exploded-SECRETVALUE","progress_percentage":100}"#;
    let r = post_mc(gw.addr(), "/hooks/media", SECRET, body).await;
    assert_eq!(r.status, 422);
    let line = gw
        .wait_request_log(|v| v["status"] == 422)
        .expect("422 line");
    assert_eq!(line["schema_pointers"], "/status", "{line}");
    assert!(!line.to_string().contains("SECRETVALUE"), "{line}");
}

#[test]
fn a_head_hyper_refuses_is_logged_with_its_status_and_duration() {
    let backend = Backend::start();
    let gw = start(&backend, &Opts::default());
    let r = raw_request(gw.addr(), b"POST /hooks/media HTTP/1.1\r\nHost x\r\n\r\n").unwrap();
    assert_eq!(r.status, 400);
    let line = gw
        .wait_request_log(|v| v["reason"] == "malformed_request")
        .expect("malformed line");
    assert_eq!(line["status"], 400);
    assert!(line["duration_ms"].as_f64().is_some(), "{line}");
    assert!(rounded_to_micros(&line["duration_ms"]), "{line}");
}

#[test]
fn start_up_names_version_listeners_and_routes_and_shutdown_is_said_once() {
    let backend = Backend::start();
    let opts = Opts {
        workers: 2,
        ..Opts::default()
    };
    let gw = start(&backend, &opts);
    let line = gw.wait_log("listening", |_| true).expect("listening line");
    assert_eq!(line["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(line["workers"], 2);
    assert!(line["listen"].as_str().is_some() && line["admin"].as_str().is_some());
    assert_eq!(
        line["routes"], "media /hooks/media (mediaconvert, sync)",
        "{line}"
    );

    gw.sigterm();
    assert!(gw.wait_exit(Duration::from_secs(15)).is_some(), "exited");
    let said = gw
        .logs()
        .iter()
        .filter(|l| l.contains("shutting down"))
        .count();
    assert_eq!(said, 1, "{:#?}", gw.logs());
}

#[test]
fn pretty_logs_carry_no_colour_codes_into_a_pipe() {
    let backend = Backend::start();
    let mut c = config(
        &Opts::default(),
        [route(
            "media",
            "/hooks/media",
            &backend.url("/in"),
            mc_verify(&[("current", SECRET)]),
        )],
    );
    c["log"]["format"] = json!("pretty");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hookgate.yaml");
    std::fs::write(&path, c.to_string()).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hookgate"))
        .args(["run", "-c", path.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut all = String::new();
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("listening") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let listening = rx.recv_timeout(Duration::from_secs(15)).is_ok();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let text = reader.join().unwrap();
    assert!(listening, "{text}");
    assert!(!text.contains('\u{1b}'), "colour codes in a pipe: {text:?}");
}

#[test]
fn alerting_series_exist_before_the_first_webhook() {
    let backend = Backend::start();
    let gw = start(&backend, &Opts::default());
    let text = gw.metrics();
    for (name, labels) in [
        (
            "hookgate_requests_total",
            vec![("route", "media"), ("outcome", "forwarded")],
        ),
        (
            "hookgate_verify_failures_total",
            vec![("route", "media"), ("reason", "mismatch")],
        ),
        ("hookgate_spoofed_headers_total", vec![("route", "media")]),
        (
            "hookgate_rate_limited_total",
            vec![("route", "media"), ("scope", "ip")],
        ),
        (
            "hookgate_upstream_duration_seconds_count",
            vec![("route", "media"), ("status_class", "5xx")],
        ),
    ] {
        let present = text.lines().filter_map(parse_sample).any(|(n, l, v)| {
            n == name
                && v == 0.0
                && labels
                    .iter()
                    .all(|(k, want)| l.get(*k).map(String::as_str) == Some(*want))
        });
        assert!(present, "no zero series {name}{labels:?} in:\n{text}");
    }
    let build = text
        .lines()
        .filter_map(parse_sample)
        .find(|(n, _, _)| n == "hookgate_build_info")
        .expect("build_info");
    assert_eq!(
        build.1.get("version").map(String::as_str),
        Some(env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(build.2, 1.0);
}
