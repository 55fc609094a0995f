//! The gateway process: `hookgate run` on ephemeral ports, waiting for its `listening` line,
//! its logs, signals and resource use.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::cli::write_files;
use super::client::{raw_get, RawResponse};
use super::config::ConfigText;
use super::WAIT;

/// Output lines of a child process, filled by reader threads.
#[derive(Default)]
pub struct OutputLines {
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
    /// Number of streams that reached EOF (0..=2).
    pub closed: usize,
}

pub(super) type Shared = Arc<(Mutex<OutputLines>, Condvar)>;

pub(super) fn spawn_reader<R: Read + Send + 'static>(r: R, shared: Shared, is_stdout: bool) {
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
    pub(super) out: Shared,
    addr: SocketAddr,
    admin: SocketAddr,
    /// Directory holding the config file (and anything else the test puts there).
    pub dir: tempfile::TempDir,
}

impl Gateway {
    /// Start with the given config and no extra environment; panics if it is not ready within [`WAIT`].
    pub fn start(config: impl ConfigText) -> Gateway {
        Self::start_with_env(config, &[])
    }

    /// Start with extra environment variables.
    pub fn start_with_env(config: impl ConfigText, env: &[(&str, &str)]) -> Gateway {
        let yaml = config.config_text();
        match Self::try_start(&yaml, env) {
            Ok(g) => g,
            Err(e) => panic!("gateway did not start: {e}\n--- config ---\n{yaml}"),
        }
    }

    /// Start with `files` (`(relative path, contents)`) written beside the config first.
    pub fn start_with_files(config: impl ConfigText, files: &[(&str, &str)]) -> Gateway {
        let yaml = config.config_text();
        match Self::try_start_with_files(&yaml, &[], files) {
            Ok(g) => g,
            Err(e) => panic!("gateway did not start: {e}\n--- config ---\n{yaml}"),
        }
    }

    /// Start and wait for the `listening` line; the error carries everything the process printed.
    pub fn try_start(config: impl ConfigText, env: &[(&str, &str)]) -> Result<Gateway, String> {
        Self::try_start_with_files(config, env, &[])
    }

    /// [`Gateway::try_start`] with files written into the config's directory first.
    pub fn try_start_with_files(
        config: impl ConfigText,
        env: &[(&str, &str)],
        files: &[(&str, &str)],
    ) -> Result<Gateway, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        write_files(dir.path(), files);
        let path = dir.path().join("hookgate.yaml");
        std::fs::write(&path, config.config_text()).map_err(|e| e.to_string())?;
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

    /// The verify-only listener's address (`authz.listen`), from the `listening` line.
    pub fn authz(&self) -> SocketAddr {
        let g = self.out.0.lock().unwrap();
        g.stdout
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["message"] == "listening")
            .and_then(|v| v["authz"].as_str()?.parse().ok())
            .expect("a `listening` line with `authz`: is the authz section in the config?")
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

    /// The process id, e.g. to change its resource limits.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Open file descriptors of the process (sockets included).
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// Whether the process is still running.
    /// Still running, and no line of its output says it panicked.
    pub fn assert_no_panic(&self) {
        assert!(self.is_running(), "the gateway exited");
        let panicked: Vec<String> = self
            .stderr()
            .into_iter()
            .filter(|l| l.contains("panicked"))
            .collect();
        assert!(panicked.is_empty(), "{panicked:?}");
    }

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
