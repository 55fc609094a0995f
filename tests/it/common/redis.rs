//! A private `redis-server` on a free loopback port, killed on drop; no persistence unless
//! started with [`RedisServer::start_durable`].
//!
//! Tests that need it fail (never skip) when `redis-server` is not installed.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{dead_port, WAIT};

pub struct RedisServer {
    port: u16,
    child: Option<Child>,
    /// Certificate and key: TLS only on `port`.
    tls: Option<(PathBuf, PathBuf)>,
    /// Durable: an append-only file here, fsync'd before each write is acknowledged.
    dir: Option<tempfile::TempDir>,
    /// More `redis-server` arguments (a replica's `--replicaof`, a cluster node's settings).
    extra: Vec<String>,
    /// The server's working directory (`--dir`) unless durable: a replica writes the data it
    /// syncs there, which no other server may load at start-up.
    work: tempfile::TempDir,
}

impl RedisServer {
    /// On a free port, not yet running; `dir` keeps its data across restarts.
    fn unstarted(tls: Option<(PathBuf, PathBuf)>, dir: Option<tempfile::TempDir>) -> RedisServer {
        RedisServer {
            port: dead_port(),
            child: None,
            tls,
            dir,
            extra: Vec::new(),
            work: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// Starts a server on a free port and waits until it answers PING.
    pub fn start() -> RedisServer {
        let mut server = RedisServer::unstarted(None, None);
        server.restart();
        server
    }

    /// A server started with these extra arguments.
    pub fn start_with(extra: &[&str]) -> RedisServer {
        let mut server = RedisServer::unstarted(None, None);
        server.restart_with(extra);
        server
    }

    /// A replica of `primary`, once its link to the primary is up and the first sync done.
    pub fn start_replica_of(primary: &RedisServer) -> RedisServer {
        let port = primary.port.to_string();
        let replica = RedisServer::start_with(&["--replicaof", "127.0.0.1", &port]);
        replica.wait_replicating();
        replica
    }

    /// Waits until this replica's link to its primary is up (bounded).
    pub fn wait_replicating(&self) {
        let deadline = Instant::now() + WAIT;
        while !self
            .command("INFO replication")
            .contains("master_link_status:up")
        {
            assert!(
                Instant::now() < deadline,
                "replica on port {} did not sync with its primary",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts again on the same port with other extra arguments.
    pub fn restart_with(&mut self, extra: &[&str]) {
        self.extra = extra.iter().map(|s| s.to_string()).collect();
        self.restart();
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A server that keeps its data across [`RedisServer::stop`] and [`RedisServer::restart`]:
    /// `appendonly yes`, `appendfsync always` (a write is on disk before Redis answers it).
    pub fn start_durable() -> RedisServer {
        let mut server = RedisServer::unstarted(None, Some(tempfile::tempdir().expect("tempdir")));
        server.restart();
        server
    }

    /// A server that speaks only TLS, with this certificate (PEM files).
    pub fn start_tls(cert: PathBuf, key: PathBuf) -> RedisServer {
        let mut server = RedisServer::unstarted(Some((cert, key)), None);
        server.restart();
        server
    }

    /// `redis://127.0.0.1:PORT/0` (`rediss://` for a TLS server).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}/0", self.port)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The `store` mapping for [`super::Opts::store`].
    pub fn store(&self) -> Value {
        json!({ "kind": "redis", "url": self.url() })
    }

    /// [`RedisServer::store`] with a `lease` (queue ownership).
    pub fn store_leased(&self, lease: &str) -> Value {
        json!({ "kind": "redis", "url": self.url(), "lease": lease })
    }

    /// Kills the server (SIGKILL): its data is gone, as with a lost pod (unless durable).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts a fresh server on the same port (after [`RedisServer::stop`]).
    pub fn restart(&mut self) {
        self.stop();
        let port = self.port.to_string();
        let dir = self
            .dir
            .as_ref()
            .map(|d| d.path().to_str().expect("utf-8 path").to_string());
        let work = self.work.path().to_str().expect("utf-8 path").to_string();
        // A fresh server starts empty, whatever a replica synced before.
        let _ = std::fs::remove_file(self.work.path().join("dump.rdb"));
        let mut args = vec!["--bind", "127.0.0.1", "--save", ""];
        match &dir {
            None => args.extend(["--appendonly", "no", "--dir", &work]),
            Some(d) => args.extend(["--appendonly", "yes", "--appendfsync", "always", "--dir", d]),
        }
        match &self.tls {
            None => args.extend(["--port", &port]),
            Some((cert, key)) => args.extend([
                "--port",
                "0",
                "--tls-port",
                &port,
                "--tls-cert-file",
                cert.to_str().expect("utf-8 path"),
                "--tls-key-file",
                key.to_str().expect("utf-8 path"),
                "--tls-ca-cert-file",
                cert.to_str().expect("utf-8 path"),
                "--tls-auth-clients",
                "no",
            ]),
        }
        let child = Command::new("redis-server")
            .args(&args)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run redis-server ({e}); these tests need it: apt-get install redis-server"
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + WAIT;
        while !self.pong() {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!(
                    "redis-server exited at start-up ({status}) on port {}",
                    self.port
                );
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends one command (inline protocol) and returns the raw reply.
    pub fn command(&self, line: &str) -> String {
        command_on(self.port, line)
    }

    /// PING answered; for a TLS server, the port accepting connections.
    fn pong(&self) -> bool {
        if self.tls.is_some() {
            return TcpStream::connect_timeout(&self.addr(), Duration::from_millis(200)).is_ok();
        }
        let Ok(mut s) = TcpStream::connect_timeout(&self.addr(), Duration::from_millis(200)) else {
            return false;
        };
        s.set_read_timeout(Some(Duration::from_millis(500))).ok();
        if s.write_all(b"PING\r\n").is_err() {
            return false;
        }
        let mut buf = [0u8; 16];
        matches!(s.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG"))
    }
}

/// Sends one command (inline protocol) to the Redis or Sentinel on `port` and returns the
/// raw reply (what one read brings: enough for the short replies tests look at).
pub fn command_on(port: u16, line: &str) -> String {
    let mut s =
        TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).expect("connect to redis");
    s.set_read_timeout(Some(Duration::from_secs(2))).ok();
    s.write_all(format!("{line}\r\n").as_bytes())
        .expect("write");
    let mut buf = vec![0u8; 64 * 1024];
    let n = s.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
