//! Shared helpers for the integration tests: a running gateway process, a recording
//! backend, request signing, HTTP clients (HTTP/1.1, h2c, raw TCP) and test vectors.
#![allow(dead_code)]

pub mod redis;
pub mod tls;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use sha2::{Digest, Sha256};

/// How long to wait for anything that has a signal (start-up, a log line, a metric).
pub const WAIT: Duration = Duration::from_secs(15);

/// The exact body of every signature refusal.
pub const INVALID_SIGNATURE: &str = r#"{"error":"invalid signature"}"#;

// ---------------------------------------------------------------------------
// Config helpers
// ---------------------------------------------------------------------------

/// Quote a string as a YAML double-quoted scalar (JSON strings are valid YAML).
pub fn q(s: &str) -> String {
    serde_json::to_string(s).expect("quote")
}

/// Server-level knobs for [`config`].
#[derive(Clone, Debug)]
pub struct Opts {
    pub max_body_bytes: String,
    pub header_timeout: String,
    pub body_timeout: String,
    pub max_connections: u32,
    pub shutdown_grace: String,
    pub log_level: String,
    pub header_prefix: String,
    /// Extra lines inside `forward:` (already indented by 2 spaces), e.g. attestation.
    pub forward_extra: String,
    /// `server.trusted_proxies` CIDRs.
    pub trusted_proxies: Vec<String>,
    /// Top-level YAML lines placed before `routes:`, e.g. a `store:` block.
    pub top_extra: String,
    /// `server.workers`; 0 leaves the default (one per CPU).
    pub workers: u32,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            max_body_bytes: "64KiB".into(),
            header_timeout: "5s".into(),
            body_timeout: "5s".into(),
            max_connections: 100,
            shutdown_grace: "5s".into(),
            log_level: "info".into(),
            header_prefix: "X-Webhook-".into(),
            forward_extra: String::new(),
            trusted_proxies: Vec::new(),
            workers: 0,
            top_extra: String::new(),
        }
    }
}

/// A whole config file: `routes` is the YAML of the route list items (see [`route`]).
pub fn config(opts: &Opts, routes: &str) -> String {
    format!(
        "server:\n  listen: 127.0.0.1:0\n  max_body_bytes: {}\n  header_timeout: {}\n  body_timeout: {}\n  max_connections: {}\n{}  shutdown_grace: {}\n  trusted_proxies: [{}]\nadmin:\n  listen: 127.0.0.1:0\nlog: {{format: json, level: {}}}\nforward:\n  header_prefix: {}\n{}{}routes:\n{}",
        opts.max_body_bytes,
        opts.header_timeout,
        opts.body_timeout,
        opts.max_connections,
        if opts.workers > 0 {
            format!("  workers: {}\n", opts.workers)
        } else {
            String::new()
        },
        opts.shutdown_grace,
        opts
            .trusted_proxies
            .iter()
            .map(|c| q(c))
            .collect::<Vec<_>>()
            .join(", "),
        opts.log_level,
        opts.header_prefix,
        opts.forward_extra,
        opts.top_extra,
        routes
    )
}

/// One route list item with a 2 s upstream timeout. `verify` is a YAML flow mapping.
pub fn route(name: &str, path: &str, upstream: &str, verify: &str) -> String {
    route_with_timeout(name, path, upstream, "2s", verify)
}

/// One route list item with an explicit upstream timeout.
pub fn route_with_timeout(
    name: &str,
    path: &str,
    upstream: &str,
    timeout: &str,
    verify: &str,
) -> String {
    format!(
        "  - name: {}\n    path: {}\n    upstream: {}\n    timeout: {}\n    verify: {}\n",
        q(name),
        q(path),
        q(upstream),
        timeout,
        verify
    )
}

/// `{id, value}` secret as YAML flow mapping.
pub fn secret_value(id: &str, value: &str) -> String {
    format!("{{id: {}, value: {}}}", q(id), q(value))
}

/// `{id, env}` secret as YAML flow mapping.
pub fn secret_env(id: &str, var: &str) -> String {
    format!("{{id: {}, env: {}}}", q(id), q(var))
}

/// `{id, file}` secret as YAML flow mapping.
pub fn secret_file(id: &str, path: &Path) -> String {
    format!(
        "{{id: {}, file: {}}}",
        q(id),
        q(&path.display().to_string())
    )
}

/// A `verify:` mapping for a built-in scheme with the given secret mappings.
pub fn verify(scheme: &str, secrets: &[String]) -> String {
    format!("{{scheme: {}, secrets: [{}]}}", scheme, secrets.join(", "))
}

/// A `verify:` mapping for the mediaconvert scheme with `{id, value}` secrets.
pub fn mc_verify(secrets: &[(&str, &str)]) -> String {
    let s: Vec<String> = secrets.iter().map(|(i, v)| secret_value(i, v)).collect();
    verify("mediaconvert", &s)
}

// ---------------------------------------------------------------------------
// Signing
// ---------------------------------------------------------------------------

/// Raw HMAC-SHA256(secret, msg).
pub fn hmac_sha256(secret: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("hmac key");
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

/// Lowercase hex HMAC-SHA256.
pub fn sign_hex(secret: &str, body: &[u8]) -> String {
    hex::encode(hmac_sha256(secret.as_bytes(), body))
}

/// Standard base64 HMAC-SHA256.
pub fn sign_b64(secret: &str, body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(hmac_sha256(secret.as_bytes(), body))
}

/// `sha256=<hex>`: the mediaconvert and github header value.
pub fn sha256_header(secret: &str, body: &[u8]) -> String {
    format!("sha256={}", sign_hex(secret, body))
}

/// Lowercase hex SHA-256 of bytes.
pub fn sha256_hex(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// A port on 127.0.0.1 where nothing listens (bound, then released). It is taken below the
/// kernel's ephemeral range, so no outgoing connection can be handed it as its source port
/// while a test waits to start a server there.
pub fn dead_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const FLOOR: u32 = 10_000;
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768);
    if low > FLOOR + 1_000 {
        let span = low - FLOOR;
        let seed = std::process::id().wrapping_mul(2_654_435_761)
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
        for _ in 0..1_000 {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let port = FLOOR + seed.wrapping_add(n.wrapping_mul(7_919)) % span;
            let port = u16::try_from(port).expect("below the ephemeral range");
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
    }
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

// ---------------------------------------------------------------------------
// The gateway process
// ---------------------------------------------------------------------------

/// Output lines of a child process, filled by reader threads.
#[derive(Default)]
pub struct OutputLines {
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
    /// Number of streams that reached EOF (0..=2).
    pub closed: usize,
}

type Shared = Arc<(Mutex<OutputLines>, Condvar)>;

fn spawn_reader<R: Read + Send + 'static>(r: R, shared: Shared, is_stdout: bool) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(r);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf)
                        .trim_end_matches(['\r', '\n'])
                        .to_string();
                    let (m, cv) = &*shared;
                    let mut g = m.lock().unwrap();
                    if is_stdout {
                        g.stdout.push(line);
                    } else {
                        g.stderr.push(line);
                    }
                    cv.notify_all();
                }
            }
        }
        let (m, cv) = &*shared;
        m.lock().unwrap().closed += 1;
        cv.notify_all();
    });
}

/// A running `hookgate run` process on ephemeral ports.
pub struct Gateway {
    child: Mutex<Child>,
    pid: u32,
    out: Shared,
    addr: SocketAddr,
    admin: SocketAddr,
    /// Directory holding the config file (and anything else the test puts there).
    pub dir: tempfile::TempDir,
}

impl Gateway {
    /// Start with the given config and no extra environment; panics if it is not ready within [`WAIT`].
    pub fn start(yaml: &str) -> Gateway {
        Self::start_with_env(yaml, &[])
    }

    /// Start with extra environment variables.
    pub fn start_with_env(yaml: &str, env: &[(&str, &str)]) -> Gateway {
        match Self::try_start(yaml, env) {
            Ok(g) => g,
            Err(e) => panic!("gateway did not start: {e}\n--- config ---\n{yaml}"),
        }
    }

    /// Start with `files` (`(relative path, contents)`) written beside the config first.
    pub fn start_with_files(yaml: &str, files: &[(&str, &str)]) -> Gateway {
        match Self::try_start_with_files(yaml, &[], files) {
            Ok(g) => g,
            Err(e) => panic!("gateway did not start: {e}\n--- config ---\n{yaml}"),
        }
    }

    /// Start and wait for the `listening` line; the error carries everything the process printed.
    pub fn try_start(yaml: &str, env: &[(&str, &str)]) -> Result<Gateway, String> {
        Self::try_start_with_files(yaml, env, &[])
    }

    /// [`Gateway::try_start`] with files written into the config's directory first.
    pub fn try_start_with_files(
        yaml: &str,
        env: &[(&str, &str)],
        files: &[(&str, &str)],
    ) -> Result<Gateway, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        write_files(dir.path(), files);
        let path = dir.path().join("hookgate.yaml");
        std::fs::write(&path, yaml).map_err(|e| e.to_string())?;
        Self::try_start_at(dir, &path, env)
    }

    /// Start on a config file the test laid out itself (e.g. a symlink) inside `dir`, which the
    /// gateway keeps alive.
    pub fn try_start_at(
        dir: tempfile::TempDir,
        path: &Path,
        env: &[(&str, &str)],
    ) -> Result<Gateway, String> {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hookgate"));
        cmd.arg("run")
            .arg("-c")
            .arg(path)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().map_err(|e| format!("spawn: {e}"))?;
        let shared: Shared = Arc::new((Mutex::new(OutputLines::default()), Condvar::new()));
        spawn_reader(child.stdout.take().unwrap(), shared.clone(), true);
        spawn_reader(child.stderr.take().unwrap(), shared.clone(), false);
        let pid = child.id();

        let deadline = Instant::now() + WAIT;
        let (m, cv) = &*shared;
        let mut g = m.lock().unwrap();
        loop {
            for line in &g.stdout {
                if let Some((listen, admin)) = parse_listening(line) {
                    drop(g);
                    return Ok(Gateway {
                        child: Mutex::new(child),
                        pid,
                        out: shared,
                        addr: listen,
                        admin,
                        dir,
                    });
                }
            }
            let now = Instant::now();
            if g.closed == 2 || now >= deadline {
                let status = child.try_wait().ok().flatten();
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "no `listening` line (exit status {status:?})\n--- stdout ---\n{}\n--- stderr ---\n{}",
                    g.stdout.join("\n"),
                    g.stderr.join("\n")
                ));
            }
            g = cv.wait_timeout(g, deadline - now).unwrap().0;
        }
    }

    /// The proxy listener address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The admin listener address.
    pub fn admin(&self) -> SocketAddr {
        self.admin
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// `http://<addr><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// All stdout lines so far (the JSON logs).
    pub fn logs(&self) -> Vec<String> {
        self.out.0.lock().unwrap().stdout.clone()
    }

    /// All stderr lines so far.
    pub fn stderr(&self) -> Vec<String> {
        self.out.0.lock().unwrap().stderr.clone()
    }

    /// stdout and stderr, joined.
    pub fn all_output(&self) -> String {
        let g = self.out.0.lock().unwrap();
        format!("{}\n{}", g.stdout.join("\n"), g.stderr.join("\n"))
    }

    /// Parsed `"message":"request"` log lines so far.
    pub fn request_logs(&self) -> Vec<serde_json::Value> {
        self.logs()
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v.get("message").and_then(|m| m.as_str()) == Some("request"))
            .collect()
    }

    /// Wait (bounded) for a request log line that satisfies `pred`.
    pub fn wait_request_log(
        &self,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> Option<serde_json::Value> {
        let deadline = Instant::now() + WAIT;
        let (m, cv) = &*self.out;
        let mut g = m.lock().unwrap();
        loop {
            for l in &g.stdout {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(l) {
                    if v.get("message").and_then(|m| m.as_str()) == Some("request") && pred(&v) {
                        return Some(v);
                    }
                }
            }
            let now = Instant::now();
            if now >= deadline || g.closed == 2 {
                return None;
            }
            g = cv.wait_timeout(g, deadline - now).unwrap().0;
        }
    }

    /// GET a path on the admin listener.
    pub fn admin_get(&self, path: &str) -> RawResponse {
        raw_get(self.admin, path).unwrap_or_else(|e| panic!("admin GET {path}: {e}"))
    }

    /// The Prometheus text of `/metrics`.
    pub fn metrics(&self) -> String {
        let r = self.admin_get("/metrics");
        assert_eq!(r.status, 200, "GET /metrics");
        String::from_utf8_lossy(&r.body).into_owned()
    }

    /// Sum of the samples of `name` whose labels include all of `labels` (0 when absent).
    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        metric_sum(&self.metrics(), name, labels)
    }

    /// Poll `/metrics` (bounded) until the metric satisfies `pred`; returns the last value.
    pub fn wait_metric(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        pred: impl Fn(f64) -> bool,
    ) -> f64 {
        let deadline = Instant::now() + WAIT;
        loop {
            let v = self.metric(name, labels);
            if pred(v) || Instant::now() >= deadline {
                return v;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Resident memory now and its peak (`VmRSS`, `VmHWM` of /proc/PID/status), in KiB.
    pub fn memory_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .expect("read /proc/PID/status");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("no {name} in /proc/PID/status"))
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// Open file descriptors of the process (sockets included).
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// Whether the process is still running.
    pub fn is_running(&self) -> bool {
        matches!(self.child.lock().unwrap().try_wait(), Ok(None))
    }

    /// The config file written by [`Gateway::start`]; rewrite it to test reloads.
    pub fn config_file(&self) -> PathBuf {
        self.dir.path().join("hookgate.yaml")
    }

    /// Send SIGHUP (reload) with the `kill` command.
    pub fn sighup(&self) {
        let st = Command::new("kill")
            .arg("-HUP")
            .arg(self.pid.to_string())
            .status()
            .expect("run kill");
        assert!(st.success(), "kill -HUP failed");
    }

    /// Wait (bounded) for a stdout JSON line whose `message` is `message` and that satisfies
    /// `pred`.
    pub fn wait_log(
        &self,
        message: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> Option<serde_json::Value> {
        let deadline = Instant::now() + WAIT;
        let (m, cv) = &*self.out;
        let mut g = m.lock().unwrap();
        loop {
            for l in &g.stdout {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(l) {
                    if v.get("message").and_then(|m| m.as_str()) == Some(message) && pred(&v) {
                        return Some(v);
                    }
                }
            }
            let now = Instant::now();
            if now >= deadline || g.closed == 2 {
                return None;
            }
            g = cv.wait_timeout(g, deadline - now).unwrap().0;
        }
    }

    /// Send SIGTERM with the `kill` command.
    pub fn sigterm(&self) {
        let st = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status()
            .expect("run kill");
        assert!(st.success(), "kill -TERM failed");
    }

    /// Kill the process with SIGKILL (no chance to clean up), and reap it.
    pub fn kill9(&self) {
        let st = Command::new("kill")
            .arg("-KILL")
            .arg(self.pid.to_string())
            .status()
            .expect("run kill");
        assert!(st.success(), "kill -KILL failed");
        let _ = self.child.lock().unwrap().wait();
    }

    /// Wait (bounded) for the process to exit.
    pub fn wait_exit(&self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(st)) = self.child.lock().unwrap().try_wait() {
                return Some(st);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Ok(mut c) = self.child.lock() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `(listen, admin)` from a `"message":"listening"` JSON line.
pub fn parse_listening(line: &str) -> Option<(SocketAddr, SocketAddr)> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    if v.get("message")?.as_str()? != "listening" {
        return None;
    }
    let listen = v.get("listen")?.as_str()?.parse().ok()?;
    let admin = v.get("admin")?.as_str()?.parse().ok()?;
    Some((listen, admin))
}

/// Run `hookgate <args>` to completion (bounded by [`WAIT`]) with extra env and a cwd.
/// `hookgate dlq replay --id ID --admin ADMIN`, which must report replaying exactly that one.
pub fn dlq_replay_one(id: &str, admin: &str) {
    let replay = run_cli(&["dlq", "replay", "--id", id, "--admin", admin], &[], None);
    assert!(replay.status.success(), "{replay:?}");
    assert_eq!(
        String::from_utf8_lossy(&replay.stdout),
        format!("replayed 1 dead letter(s): {id}\n")
    );
}

pub fn run_cli(args: &[&str], env: &[(&str, &str)], cwd: Option<&Path>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hookgate"));
    cmd.args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    if let Some(d) = cwd {
        cmd.current_dir(d);
    }
    let mut child = cmd.spawn().expect("spawn hookgate");
    let shared: Shared = Arc::new((Mutex::new(OutputLines::default()), Condvar::new()));
    spawn_reader(child.stdout.take().unwrap(), shared.clone(), true);
    spawn_reader(child.stderr.take().unwrap(), shared.clone(), false);
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let g = shared.0.lock().unwrap();
            panic!(
                "hookgate {args:?} did not exit within {WAIT:?}\nstdout:\n{}\nstderr:\n{}",
                g.stdout.join("\n"),
                g.stderr.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // Let the readers drain both pipes.
    let (m, cv) = &*shared;
    let mut g = m.lock().unwrap();
    let end = Instant::now() + Duration::from_secs(5);
    while g.closed < 2 && Instant::now() < end {
        g = cv.wait_timeout(g, Duration::from_millis(100)).unwrap().0;
    }
    let join = |v: &Vec<String>| {
        let mut s = v.join("\n");
        if !s.is_empty() {
            s.push('\n');
        }
        s.into_bytes()
    };
    Output {
        status,
        stdout: join(&g.stdout),
        stderr: join(&g.stderr),
    }
}

/// Write `yaml` to a temp file and run `hookgate <cmd> -c FILE`.
pub fn run_with_config(cmd: &str, yaml: &str, env: &[(&str, &str)]) -> Output {
    run_with_config_files(cmd, yaml, env, &[])
}

/// [`run_with_config`] with `files` (`(relative path, contents)`) written beside the config.
pub fn run_with_config_files(
    cmd: &str,
    yaml: &str,
    env: &[(&str, &str)],
    files: &[(&str, &str)],
) -> Output {
    let dir = tempfile::tempdir().expect("tempdir");
    write_files(dir.path(), files);
    let path = dir.path().join("hookgate.yaml");
    std::fs::write(&path, yaml).expect("write config");
    run_cli(&[cmd, "-c", path.to_str().unwrap()], env, None)
}

/// Write `(relative path, contents)` pairs under `dir`, creating folders.
pub fn write_files(dir: &Path, files: &[(&str, &str)]) {
    for (rel, text) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create dir");
        }
        std::fs::write(&path, text).expect("write file");
    }
}

// ---------------------------------------------------------------------------
// Prometheus text
// ---------------------------------------------------------------------------

/// Parse one sample line: `name{k="v",...} value`.
pub fn parse_sample(line: &str) -> Option<(String, BTreeMap<String, String>, f64)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (name, rest) = match line.find(['{', ' ']) {
        Some(i) => (&line[..i], &line[i..]),
        None => return None,
    };
    let mut labels = BTreeMap::new();
    let rest = if let Some(r) = rest.strip_prefix('{') {
        let mut chars = r.char_indices().peekable();
        let mut end = None;
        loop {
            // skip separators
            while let Some(&(_, c)) = chars.peek() {
                if c == ',' || c == ' ' {
                    chars.next();
                } else {
                    break;
                }
            }
            match chars.peek() {
                Some(&(i, '}')) => {
                    end = Some(i);
                    break;
                }
                None => break,
                _ => {}
            }
            let mut key = String::new();
            for (_, c) in chars.by_ref() {
                if c == '=' {
                    break;
                }
                key.push(c);
            }
            if chars.next().map(|x| x.1) != Some('"') {
                return None;
            }
            let mut val = String::new();
            while let Some((_, c)) = chars.next() {
                match c {
                    '\\' => match chars.next().map(|x| x.1) {
                        Some('n') => val.push('\n'),
                        Some(o) => val.push(o),
                        None => return None,
                    },
                    '"' => break,
                    o => val.push(o),
                }
            }
            labels.insert(key.trim().to_string(), val);
        }
        &r[end? + 1..]
    } else {
        rest
    };
    let value = rest.split_whitespace().next()?.parse::<f64>().ok()?;
    Some((name.to_string(), labels, value))
}

/// Sum of the samples of `name` whose labels include all of `labels`.
pub fn metric_sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter_map(parse_sample)
        .filter(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| v)
        .sum()
}

// ---------------------------------------------------------------------------
// Recording backend
// ---------------------------------------------------------------------------

/// One request as the backend saw it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    /// Path and query, e.g. `/hooks/mc?a=1`.
    pub uri: String,
    pub version: String,
    /// Every header copy, names lowercase, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    /// All values of a header (case-insensitive name).
    pub fn all(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// The single value of a header; panics if it appears more than once.
    pub fn header(&self, name: &str) -> Option<String> {
        let v = self.all(name);
        assert!(
            v.len() <= 1,
            "header {name} appears {} times: {v:?}",
            v.len()
        );
        v.into_iter().next()
    }

    /// Whether any header name matches (case-insensitive).
    pub fn has(&self, name: &str) -> bool {
        !self.all(name).is_empty()
    }
}

/// How the backend answers.
#[derive(Clone, Debug)]
pub struct Behaviour {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub delay: Duration,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: br#"{"received":true}"#.to_vec(),
            delay: Duration::ZERO,
        }
    }
}

/// A hyper server on 127.0.0.1:0 running on its own runtime thread that records requests.
pub struct Backend {
    addr: SocketAddr,
    records: Arc<Mutex<Vec<Recorded>>>,
    behaviour: Arc<Mutex<Behaviour>>,
    extras: Extras,
    count: tokio::sync::watch::Receiver<usize>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Backend {
    /// Start a backend answering 200 `{"received":true}`.
    pub fn start() -> Backend {
        Self::start_with(Behaviour::default())
    }

    /// Start a backend with a given behaviour.
    pub fn start_with(b: Behaviour) -> Backend {
        Self::start_on(0, b)
    }

    /// Start a backend on a given port of 127.0.0.1 (0: any), e.g. one a gateway was already
    /// pointed at while nothing listened there ([`dead_port`]).
    pub fn start_on(port: u16, b: Behaviour) -> Backend {
        let records: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let extras = Extras::default();
        let x2 = extras.clone();
        let behaviour = Arc::new(Mutex::new(b));
        let (count_tx, count_rx) = tokio::sync::watch::channel(0usize);
        let count_tx = Arc::new(count_tx);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (r2, b2) = (records.clone(), behaviour.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("backend runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
                    .await
                    .expect("bind");
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                let accept = async {
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            continue;
                        };
                        let (r3, b3, c3) = (r2.clone(), b2.clone(), count_tx.clone());
                        let x3 = x2.clone();
                        tokio::spawn(async move {
                            let svc = service_fn(move |req: hyper::Request<Incoming>| {
                                let (r4, b4, c4) = (r3.clone(), b3.clone(), c3.clone());
                                let x4 = x3.clone();
                                async move {
                                    Ok::<_, hyper::Error>(handle(req, r4, b4, c4, x4).await)
                                }
                            });
                            let _ =
                                hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                                    .serve_connection(TokioIo::new(stream), svc)
                                    .await;
                        });
                    }
                };
                tokio::select! {
                    _ = accept => {}
                    _ = stop_rx => {}
                }
            });
            rt.shutdown_background();
        });
        let addr = addr_rx.recv_timeout(WAIT).expect("backend address");
        Backend {
            addr,
            records,
            behaviour,
            extras,
            count: count_rx,
            stop: Some(stop_tx),
        }
    }

    /// Listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Everything recorded so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.records.lock().unwrap().clone()
    }

    /// Forget recorded requests.
    pub fn clear(&self) {
        self.records.lock().unwrap().clear();
    }

    /// Replace the behaviour.
    pub fn set(&self, b: Behaviour) {
        *self.behaviour.lock().unwrap() = b;
    }

    /// Answer the next requests with these, one each, in order; then the behaviour again.
    pub fn script(&self, answers: Vec<Behaviour>) {
        self.extras.script.lock().unwrap().extend(answers);
    }

    /// From now on, hold every request (after recording it) until [`Backend::release`].
    pub fn hold(&self) {
        *self.extras.gate.lock().unwrap() = Some(Arc::new(tokio::sync::Semaphore::new(0)));
    }

    /// Let `n` held requests (present or future) answer.
    pub fn release(&self, n: usize) {
        if let Some(g) = self.extras.gate.lock().unwrap().as_ref() {
            g.add_permits(n);
        }
    }

    /// Stop holding: every held request answers, and later ones are not held.
    pub fn unhold(&self) {
        if let Some(g) = self.extras.gate.lock().unwrap().take() {
            g.add_permits(tokio::sync::Semaphore::MAX_PERMITS / 2);
        }
    }

    /// Set only the delay.
    pub fn set_delay(&self, d: Duration) {
        self.behaviour.lock().unwrap().delay = d;
    }

    /// Wait (bounded) until at least `n` requests arrived in total since start.
    pub async fn wait_count(&self, n: usize) -> bool {
        let mut rx = self.count.clone();
        tokio::time::timeout(WAIT, rx.wait_for(|c| *c >= n))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// The only request received; panics unless exactly one arrived.
    pub fn single(&self) -> Recorded {
        let r = self.requests();
        assert_eq!(
            r.len(),
            1,
            "backend expected exactly one request, got {}",
            r.len()
        );
        r.into_iter().next().unwrap()
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Per-request answers and a gate a test controls.
#[derive(Clone, Default)]
struct Extras {
    script: Arc<Mutex<std::collections::VecDeque<Behaviour>>>,
    gate: Arc<Mutex<Option<Arc<tokio::sync::Semaphore>>>>,
}

async fn handle(
    req: hyper::Request<Incoming>,
    records: Arc<Mutex<Vec<Recorded>>>,
    behaviour: Arc<Mutex<Behaviour>>,
    count: Arc<tokio::sync::watch::Sender<usize>>,
    extras: Extras,
) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    let rec = Recorded {
        method: parts.method.to_string(),
        uri: parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| parts.uri.to_string()),
        version: format!("{:?}", parts.version),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
    };
    records.lock().unwrap().push(rec);
    count.send_modify(|c| *c += 1);
    let scripted = extras.script.lock().unwrap().pop_front();
    let b = scripted.unwrap_or_else(|| behaviour.lock().unwrap().clone());
    let gate = extras.gate.lock().unwrap().clone();
    if let Some(g) = gate {
        if let Ok(p) = g.acquire().await {
            p.forget();
        }
    }
    if !b.delay.is_zero() {
        tokio::time::sleep(b.delay).await;
    }
    let mut resp = hyper::Response::builder().status(b.status);
    for (n, v) in &b.headers {
        resp = resp.header(n, v);
    }
    resp.body(Full::new(Bytes::from(b.body))).expect("response")
}

// ---------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------

/// A response as the sender saw it.
#[derive(Clone, Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    /// First value of a header (case-insensitive).
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }

    /// Body as lossy UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Send one HTTP/1.1 request on a fresh connection with hyper. `Host` is set to `addr`
/// unless given in `headers`.
pub async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    try_send(addr, method, path, headers, body)
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// Like [`send`] but returns errors.
pub async fn try_send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Resp, String> {
    let fut = async {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut b = hyper::Request::builder().method(method).uri(path);
        if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
            b = b.header("host", addr.to_string());
        }
        for (n, v) in headers {
            b = b.header(*n, *v);
        }
        let req = b
            .body(Full::new(Bytes::copy_from_slice(body)))
            .map_err(|e| e.to_string())?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("send: {e}"))?;
        to_resp(resp).await
    };
    tokio::time::timeout(WAIT, fut)
        .await
        .map_err(|_| "timed out".to_string())?
}

/// POST `body` to `path` with extra headers.
pub async fn post(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    send(addr, "POST", path, headers, body).await
}

/// POST `body` signed for mediaconvert with `secret`.
pub async fn post_mc(addr: SocketAddr, path: &str, secret: &str, body: &[u8]) -> Resp {
    let sig = sha256_header(secret, body);
    post(
        addr,
        path,
        &[
            ("content-type", "application/json"),
            ("x-mediaconvert-signature", &sig),
        ],
        body,
    )
    .await
}

async fn to_resp(resp: hyper::Response<Incoming>) -> Result<Resp, String> {
    let (parts, body) = resp.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| format!("body: {e}"))?
        .to_bytes()
        .to_vec();
    Ok(Resp {
        status: parts.status.as_u16(),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
    })
}

/// Send one HTTP/2 prior-knowledge (h2c) request on a fresh connection.
pub async fn send_h2(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Resp, String> {
    let fut = async {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .map_err(|e| format!("h2 handshake: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut b = hyper::Request::builder()
            .method(method)
            .version(hyper::Version::HTTP_2)
            .uri(format!("http://{addr}{path}"));
        for (n, v) in headers {
            b = b.header(*n, *v);
        }
        let req = b
            .body(Full::new(Bytes::copy_from_slice(body)))
            .map_err(|e| e.to_string())?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("h2 send: {e}"))?;
        if resp.version() != hyper::Version::HTTP_2 {
            return Err(format!("response version {:?}", resp.version()));
        }
        to_resp(resp).await
    };
    tokio::time::timeout(WAIT, fut)
        .await
        .map_err(|_| "timed out".to_string())?
}

// ---------------------------------------------------------------------------
// Raw TCP (for malformed, slow and hop-by-hop cases)
// ---------------------------------------------------------------------------

/// A response parsed from raw bytes: the same shape as [`Resp`].
pub type RawResponse = Resp;

/// Connect with a bounded timeout.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_nodelay(true).ok();
    s
}

fn read_some(s: &mut TcpStream, buf: &mut Vec<u8>, deadline: Instant) -> std::io::Result<usize> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "deadline",
        ));
    }
    s.set_read_timeout(Some(left))?;
    let mut tmp = [0u8; 8192];
    let n = s.read(&mut tmp)?;
    buf.extend_from_slice(&tmp[..n]);
    Ok(n)
}

/// Read one HTTP/1.x response (skipping 1xx) from a raw stream within `timeout`.
pub fn read_response(s: &mut TcpStream, timeout: Duration) -> std::io::Result<RawResponse> {
    let deadline = Instant::now() + timeout;
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            if read_some(s, &mut buf, deadline)? == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("EOF before response head ({} bytes)", buf.len()),
                ));
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut rest = buf[head_end + 4..].to_vec();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|x| x.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad status line {status_line:?}")))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        if (100..200).contains(&status) {
            buf = rest;
            continue;
        }
        let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let body = if let Some(len) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
            while rest.len() < len {
                if read_some(s, &mut rest, deadline)? == 0 {
                    break;
                }
            }
            rest.truncate(len);
            rest
        } else if get("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
        {
            let mut out = Vec::new();
            let mut pos = 0;
            loop {
                let line_end = loop {
                    if let Some(i) = rest[pos..].windows(2).position(|w| w == b"\r\n") {
                        break pos + i;
                    }
                    if read_some(s, &mut rest, deadline)? == 0 {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "chunk",
                        ));
                    }
                };
                let size_str = String::from_utf8_lossy(&rest[pos..line_end]).into_owned();
                let size =
                    usize::from_str_radix(size_str.split(';').next().unwrap_or("").trim(), 16)
                        .map_err(|e| {
                            std::io::Error::other(format!("chunk size {size_str:?}: {e}"))
                        })?;
                pos = line_end + 2;
                if size == 0 {
                    break;
                }
                while rest.len() < pos + size + 2 {
                    if read_some(s, &mut rest, deadline)? == 0 {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "chunk",
                        ));
                    }
                }
                out.extend_from_slice(&rest[pos..pos + size]);
                pos += size + 2;
            }
            out
        } else if status == 204 || status == 304 {
            Vec::new()
        } else {
            // Until EOF.
            loop {
                match read_some(s, &mut rest, deadline) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                    Err(e) => return Err(e),
                }
            }
            rest
        };
        return Ok(RawResponse {
            status,
            headers,
            body,
        });
    }
}

/// Write raw bytes and read one response.
pub fn raw_request(addr: SocketAddr, bytes: &[u8]) -> std::io::Result<RawResponse> {
    let mut s = connect(addr);
    s.write_all(bytes)?;
    read_response(&mut s, WAIT)
}

/// `GET path` with `Connection: close` over raw TCP.
pub fn raw_get(addr: SocketAddr, path: &str) -> std::io::Result<RawResponse> {
    raw_request(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

/// Build a raw HTTP/1.1 request with `Content-Length` from the body.
pub fn raw_post_bytes(path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("POST {path} HTTP/1.1\r\n");
    for (n, v) in headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

// ---------------------------------------------------------------------------
// Test vectors
// ---------------------------------------------------------------------------

/// One case of a `tests/vectors/*.json` file.
#[derive(Clone, Debug)]
pub struct Case {
    pub id: String,
    pub expected: String,
    pub secret: String,
    pub additional_secrets: Vec<String>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub now: Option<i64>,
}

impl Case {
    /// Header value, case-insensitive.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Path of a vectors file.
pub fn vectors_path(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(file)
}

/// The `signature_header` field of a vectors file.
pub fn vectors_signature_header(file: &str) -> String {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(vectors_path(file)).expect("read vectors"))
            .expect("json");
    v["signature_header"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// All cases of a vectors file.
pub fn vectors(file: &str) -> Vec<Case> {
    let text = std::fs::read_to_string(vectors_path(file)).expect("read vectors");
    let v: serde_json::Value = serde_json::from_str(&text).expect("vectors json");
    let b64 = base64::engine::general_purpose::STANDARD;
    v["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| Case {
            id: c["id"].as_str().expect("id").to_string(),
            expected: c["expected"].as_str().expect("expected").to_string(),
            secret: c["secret"].as_str().unwrap_or_default().to_string(),
            additional_secrets: c["additional_secrets"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            headers: c["headers"]
                .as_object()
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default(),
            body: b64
                .decode(c["body_b64"].as_str().expect("body_b64"))
                .expect("body base64"),
            now: c["now"].as_i64(),
        })
        .collect()
}

/// Current unix time in seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

// ---------------------------------------------------------------------------
// `hookgate sign`
// ---------------------------------------------------------------------------

/// A request as `hookgate sign` prints it: the header lines, then a curl command.
#[derive(Clone, Debug)]
pub struct SignedRequest {
    pub headers: Vec<(String, String)>,
    /// The body curl would send: the file, or the inline body when the scheme rewrote it.
    pub body: Vec<u8>,
    /// The URL curl would call.
    pub url: String,
}

impl SignedRequest {
    /// The headers as `post` takes them.
    pub fn header_refs(&self) -> Vec<(&str, &str)> {
        self.headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect()
    }

    /// Header value, case-insensitive.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Path and query of [`Self::url`].
    pub fn path_and_query(&self) -> String {
        let rest = self.url.split_once("://").map_or(&*self.url, |(_, r)| r);
        rest.find('/').map_or("/".into(), |i| rest[i..].to_string())
    }
}

/// Runs `hookgate sign ARGS BODY_FILE` (writing `body` to a temp file) and parses its output;
/// panics with the output when it fails.
pub fn hookgate_sign(args: &[&str], body: &[u8]) -> SignedRequest {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("body");
    std::fs::write(&file, body).expect("write body");
    let mut all = vec!["sign"];
    all.extend_from_slice(args);
    all.push(file.to_str().expect("utf-8 path"));
    let out = run_cli(&all, &[], None);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "hookgate {all:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (head, curl) = stdout
        .split_once("\n\n")
        .unwrap_or_else(|| panic!("no blank line in sign output:\n{stdout}"));
    let headers = head
        .lines()
        .map(|l| {
            let (n, v) = l.split_once(": ").expect("header line");
            (n.to_string(), v.to_string())
        })
        .collect();
    let words = shell_words(curl.trim_end());
    let data = words
        .iter()
        .position(|w| w == "--data-binary")
        .and_then(|i| words.get(i + 1))
        .expect("--data-binary in curl command");
    let body = match data.strip_prefix('@') {
        Some(path) if Path::new(path) == file => body.to_vec(),
        Some(path) => panic!("curl reads {path}, not the body file"),
        None => data.as_bytes().to_vec(),
    };
    SignedRequest {
        headers,
        body,
        url: words.last().expect("url").clone(),
    }
}

/// Splits a command line as a POSIX shell would, for the quoting `hookgate sign` uses
/// (plain words and '...' with '\'' for a quote).
pub fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    cur.push(q);
                }
            }
            '\\' => {
                in_word = true;
                cur.extend(chars.next());
            }
            ' ' if in_word => {
                words.push(std::mem::take(&mut cur));
                in_word = false;
            }
            ' ' => {}
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}
