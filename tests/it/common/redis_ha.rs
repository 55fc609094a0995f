//! Redis deployments that survive a server: Sentinel processes watching a primary, and a
//! Redis Cluster of several primaries, all on free loopback ports, killed on drop.
//!
//! Sentinels are `redis-server <conf> --sentinel` (what `redis-sentinel` runs); the cluster is
//! made with `redis-cli --cluster create`. Tests that need them fail (never skip) when
//! `redis-server` or `redis-cli` is not installed.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::lag::LagProxy;
use super::redis::{command_on, RedisServer};
use super::{dead_port, WAIT};

/// The name the sentinels know the primary by.
pub const MASTER: &str = "mymaster";

/// One Sentinel process watching [`MASTER`]: it calls the master down after 1 s without an
/// answer and fails over with a quorum of 2.
pub struct Sentinel {
    port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Sentinel {
    pub fn start(master_port: u16) -> Sentinel {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = dead_port();
        let conf = dir.path().join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\ndir {}\n\
                 sentinel monitor {MASTER} 127.0.0.1 {master_port} 2\n\
                 sentinel down-after-milliseconds {MASTER} 1000\n\
                 sentinel failover-timeout {MASTER} 10000\n\
                 sentinel parallel-syncs {MASTER} 1\n",
                dir.path().display()
            ),
        )
        .expect("write sentinel.conf");
        let child = Command::new("redis-server")
            .arg(&conf)
            .arg("--sentinel")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run redis-server --sentinel ({e}); apt-get install redis-server")
            });
        let mut s = Sentinel {
            port,
            child,
            _dir: dir,
        };
        let deadline = Instant::now() + WAIT;
        while !std::net::TcpStream::connect(("127.0.0.1", port))
            .is_ok_and(|_| command_on(port, "PING").starts_with("+PONG"))
        {
            if let Ok(Some(status)) = s.child.try_wait() {
                panic!("sentinel exited at start-up ({status})");
            }
            assert!(
                Instant::now() < deadline,
                "sentinel did not answer on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        s
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether this sentinel can fail over: it knows a replica and enough other sentinels.
    fn armed(&self) -> bool {
        command_on(self.port, &format!("SENTINEL ckquorum {MASTER}")).starts_with("+OK")
            && !command_on(self.port, &format!("SENTINEL replicas {MASTER}")).starts_with("*0")
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A primary, one replica and three sentinels watching them.
pub struct Sentinels {
    pub primary: RedisServer,
    pub replica: RedisServer,
    pub sentinels: Vec<Sentinel>,
}

impl Sentinels {
    /// Started, the replica in sync and every sentinel able to fail over. The replica reads
    /// its primary through `link`'s delay (a network between two machines), so it lags behind.
    pub fn start(link: Duration) -> Sentinels {
        let primary = RedisServer::start();
        let proxy = LagProxy::start(primary.port(), link);
        let replica =
            RedisServer::start_with(&["--replicaof", "127.0.0.1", &proxy.port().to_string()]);
        replica.wait_replicating();
        let sentinels: Vec<Sentinel> = (0..3).map(|_| Sentinel::start(primary.port())).collect();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !sentinels.iter().all(Sentinel::armed) {
            assert!(
                Instant::now() < deadline,
                "the sentinels did not find each other and the replica"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Sentinels {
            primary,
            replica,
            sentinels,
        }
    }

    /// `redis+sentinel://` naming every sentinel.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port()))
            .collect();
        format!("redis+sentinel://{}/{MASTER}/0", hosts.join(","))
    }
}

/// A Redis Cluster of primaries (no replicas), every slot assigned.
pub struct Cluster {
    pub nodes: Vec<RedisServer>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    pub fn start(n: usize) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let nodes: Vec<RedisServer> = (0..n)
            .map(|i| {
                let file = dir.path().join(format!("nodes-{i}.conf"));
                // The bus port would otherwise be the port + 10000: a port another test's
                // server may have taken, or one in the ephemeral range.
                let bus = dead_port().to_string();
                RedisServer::start_with(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    file.to_str().expect("utf-8 path"),
                    "--cluster-node-timeout",
                    "5000",
                    "--cluster-port",
                    &bus,
                ])
            })
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .arg("--cluster-yes")
            .output()
            .unwrap_or_else(|e| panic!("cannot run redis-cli ({e}); apt-get install redis-tools"));
        assert!(
            out.status.success(),
            "redis-cli --cluster create: {}\n{:?}",
            String::from_utf8_lossy(&out.stdout),
            nodes
                .iter()
                .map(|n| (n.port(), n.command("CLUSTER NODES"), n.command("DBSIZE")))
                .collect::<Vec<_>>()
        );
        let deadline = Instant::now() + WAIT;
        while !nodes
            .iter()
            .all(|n| n.command("CLUSTER INFO").contains("cluster_state:ok"))
        {
            assert!(Instant::now() < deadline, "the cluster did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        Cluster { nodes, _dir: dir }
    }

    /// `redis+cluster://` naming two of the nodes (the others are found from them).
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .nodes
            .iter()
            .take(2)
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        format!("redis+cluster://{}", hosts.join(","))
    }

    /// The slot of `key`.
    pub fn slot(&self, key: &str) -> u16 {
        let reply = self.nodes[0].command(&format!("CLUSTER KEYSLOT \"{key}\""));
        reply
            .trim()
            .trim_start_matches(':')
            .parse()
            .unwrap_or_else(|_| panic!("CLUSTER KEYSLOT: {reply}"))
    }

    /// The port of the node that serves `slot`.
    pub fn owner(&self, slot: u16) -> u16 {
        for n in &self.nodes {
            let nodes = n.command("CLUSTER NODES");
            let Some(me) = nodes.lines().find(|l| l.contains("myself")) else {
                continue;
            };
            // `<id> <addr> <flags> <master> <ping> <pong> <epoch> <link> <slot ranges...>`
            for range in me.split_whitespace().skip(8) {
                let (lo, hi) = range.split_once('-').unwrap_or((range, range));
                if let (Ok(lo), Ok(hi)) = (lo.parse::<u16>(), hi.parse::<u16>()) {
                    if (lo..=hi).contains(&slot) {
                        return n.port();
                    }
                }
            }
        }
        panic!("no node serves slot {slot}");
    }

    /// The keys matching `pattern` on each node, by node port (nodes with none left out).
    pub fn keys(&self, pattern: &str) -> Vec<(u16, Vec<String>)> {
        self.nodes
            .iter()
            .filter_map(|n| {
                let reply = n.command(&format!("KEYS \"{pattern}\""));
                let keys: Vec<String> = reply
                    .lines()
                    .filter(|l| !l.starts_with(['*', '$']))
                    .map(str::to_string)
                    .collect();
                (!keys.is_empty()).then_some((n.port(), keys))
            })
            .collect()
    }
}
