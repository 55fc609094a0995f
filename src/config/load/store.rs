//! `store`: which store, and where.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::config::file::{Leaf, StoreFile};
use crate::store::{Address, RedisUrl, Replicas, StoreConfig};

use super::{Checks, Validator};

/// The shortest `store.lease`: lease rounds run every third of it, a few Redis round trips each.
const MIN_LEASE: Duration = Duration::from_secs(1);

/// The most `store.min_replicas` may ask for: beyond it, a typo rather than a topology.
const MAX_REPLICAS: u64 = 100;

/// The first bytes of every redb database file: redb refuses to open a file that has others.
const REDB_SIGNATURE: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];

impl Validator {
    /// What opening the redb store at start-up would refuse, checked without creating or
    /// changing anything: a directory, a file that cannot be read and written or is not a
    /// redb database, a directory that cannot be created or written.
    fn redb_file(&mut self, path: &Path) {
        let shown = path.display();
        match fs::metadata(path) {
            Ok(m) if m.is_dir() => self.problem(
                "store.path",
                format!(
                    "`{shown}` is a directory; give the path of a file, e.g. {}",
                    path.join("hookgate.redb").display()
                ),
            ),
            Ok(_) => match OpenOptions::new().read(true).write(true).open(path) {
                Err(e) => self.problem(
                    "store.path",
                    format!("cannot open {shown} for reading and writing: {e}"),
                ),
                Ok(file) => {
                    let mut head = Vec::with_capacity(REDB_SIGNATURE.len());
                    let read = file
                        .take(REDB_SIGNATURE.len() as u64)
                        .read_to_end(&mut head);
                    match read {
                        Err(e) => self.problem("store.path", format!("cannot read {shown}: {e}")),
                        Ok(_) if !head.is_empty() && head != REDB_SIGNATURE => self.problem(
                            "store.path",
                            format!("{shown} is not a redb database, and hookgate does not overwrite it; give another path or move the file away"),
                        ),
                        Ok(_) => {}
                    }
                }
            },
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
                self.redb_directory(path);
            }
            Err(e) => self.problem("store.path", format!("cannot open {shown}: {e}")),
        }
    }

    /// A store file that does not exist yet: its nearest existing ancestor must be a directory
    /// this process can write in, where the missing directories and the file will be created.
    fn redb_directory(&mut self, path: &Path) {
        let shown = path.display();
        for dir in path.ancestors().skip(1) {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            match fs::metadata(dir) {
                Ok(m) if m.is_dir() => {
                    if let Err(e) = probe_writable(dir) {
                        self.problem(
                            "store.path",
                            format!(
                                "cannot create {shown}: directory {} is not writable ({e})",
                                dir.display()
                            ),
                        );
                    }
                    return;
                }
                Ok(_) => {
                    self.problem(
                        "store.path",
                        format!(
                            "cannot create {shown}: {} is not a directory",
                            dir.display()
                        ),
                    );
                    return;
                }
                Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {}
                Err(e) => {
                    self.problem(
                        "store.path",
                        format!("cannot create {shown}: {}: {e}", dir.display()),
                    );
                    return;
                }
            }
        }
        self.problem(
            "store.path",
            format!("cannot create {shown}: none of its directories exists"),
        );
    }

    pub(super) fn store(&mut self, f: StoreFile) -> StoreConfig {
        let given = [
            ("store.path", f.path.is_some()),
            ("store.url", f.url.is_some()),
            ("store.prefix", f.prefix.is_some()),
            ("store.lease", f.lease.is_some()),
            ("store.min_replicas", f.min_replicas.is_some()),
            ("store.replica_timeout", f.replica_timeout.is_some()),
        ];
        let kind = self.text("store.kind", f.kind, "memory, redb or redis");
        let path = self.text(
            "store.path",
            f.path,
            "a file name such as data/hookgate.redb",
        );
        let url = self.secret_text("store.url", f.url);
        let prefix = self.text("store.prefix", f.prefix, "text such as \"hookgate:\"");
        let kind = match kind.as_deref() {
            Some(kind) => kind,
            // Refused for its type: which keys belong is unknown.
            None if self.spoiled("store.kind") => return StoreConfig::Memory,
            None => "memory",
        };
        let set = |key: &str| given.iter().any(|(k, set)| *k == key && *set);
        if kind != "redis" {
            for key in [
                "store.url",
                "store.prefix",
                "store.lease",
                "store.min_replicas",
                "store.replica_timeout",
            ] {
                if set(key) {
                    self.problem(
                        key,
                        "only for kind redis; set store.kind: redis or remove the key",
                    );
                }
            }
        }
        match kind {
            "memory" => {
                if set("store.path") {
                    self.problem(
                        "store.path",
                        "only for kind redb; set store.kind: redb or remove the key",
                    );
                }
                StoreConfig::Memory
            }
            "redb" => match path.as_deref() {
                Some("") => {
                    self.problem("store.path", "empty; e.g. data/hookgate.redb");
                    StoreConfig::Memory
                }
                p => {
                    let path = PathBuf::from(p.unwrap_or("data/hookgate.redb"));
                    if self.checks == Checks::StartUp && !self.spoiled("store.path") {
                        self.redb_file(&path);
                    }
                    StoreConfig::Redb { path }
                }
            },
            "redis" => {
                if set("store.path") {
                    self.problem(
                        "store.path",
                        "only for kind redb; remove the key (kind redis uses store.url)",
                    );
                }
                let url = url.unwrap_or_default();
                let clustered = if url.is_empty() {
                    if !self.spoiled("store.url") {
                        self.problem(
                            "store.url",
                            "missing; set it, e.g. redis://127.0.0.1:6379/0 (rediss:// for TLS, redis+sentinel://h1:26379,h2:26379/mymaster/0 for Sentinel, redis+cluster://h1:6379,h2:6379 for a Cluster)",
                        );
                    }
                    false
                } else {
                    // The messages never quote the URL: it may hold a password.
                    match Address::parse(&url) {
                        Ok(a) => a.clustered(),
                        Err(e) => {
                            self.problem("store.url", e.to_string());
                            false
                        }
                    }
                };
                let prefix = prefix.unwrap_or_else(|| "hookgate:".into());
                if prefix.is_empty() {
                    self.problem(
                        "store.prefix",
                        "empty; every key would share the database's namespace; e.g. hookgate:",
                    );
                }
                if clustered && prefix.contains(['{', '}']) {
                    self.problem(
                        "store.prefix",
                        "on a Cluster hookgate puts its own hash tags (braces) in key names; remove the braces, e.g. hookgate:",
                    );
                }
                let replicas = self.replicas(f.min_replicas, f.replica_timeout);
                let lease = self.duration("store.lease", f.lease, 30);
                if lease < MIN_LEASE {
                    self.problem(
                        "store.lease",
                        format!(
                            "{} is too short: a replica renews its heartbeat every third of it, and a busy or briefly slow one would lose its events to the others; use at least 1s (default 30s)",
                            humantime::format_duration(lease)
                        ),
                    );
                }
                StoreConfig::Redis {
                    url: RedisUrl(url),
                    prefix,
                    lease,
                    replicas,
                }
            }
            other => {
                self.problem(
                    "store.kind",
                    format!("`{other}` is not a store; use memory, redb or redis"),
                );
                StoreConfig::Memory
            }
        }
    }
}

impl Validator {
    /// `store.min_replicas` (a whole number, 0 by default) and `store.replica_timeout`.
    fn replicas(&mut self, min: Leaf, timeout: Leaf) -> Replicas {
        let mut r = Replicas::default();
        match min {
            None => {}
            Some(_) if self.spoiled("store.min_replicas") => {}
            Some(Value::Number(n)) => match n.as_u64() {
                Some(n) if n <= MAX_REPLICAS => r.min = n as u32,
                _ => self.problem(
                    "store.min_replicas",
                    format!("`{n}` must be a whole number from 0 to {MAX_REPLICAS}: how many replicas must confirm a write before it counts (0: none, the default)"),
                ),
            },
            Some(other) => self.wrong_type("store.min_replicas", "a whole number such as 1", &other),
        }
        if timeout.is_some() {
            r.timeout = self.duration("store.replica_timeout", timeout, 1);
        }
        r
    }
}

/// Whether a file can be created in `dir`: creates one and removes it at once. (Permission
/// bits alone do not tell: the user, ACLs and read-only mounts all count.)
fn probe_writable(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".hookgate-check-{}", std::process::id()));
    match OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(_) => {
            let _ = fs::remove_file(&probe);
            Ok(())
        }
        // Another check of this process left it: the directory was writable then.
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    /// A kind of the wrong type is the one problem: nothing is judged against a kind that is
    /// not known (`path` only for redb, a queue route needing a durable store).
    #[test]
    fn wrong_kind_type_is_the_only_problem() {
        let p = problems(&format!(
            "store: {{kind: 5, path: x.redb}}\n{ROUTE}    delivery: {{mode: queue}}\n"
        ));
        assert_eq!(
            p,
            ["store.kind: expected memory, redb or redis, got the number 5"],
            "{p:?}"
        );
    }

    #[test]
    fn redis_store_config() {
        let c = parse(&format!(
            "store: {{kind: redis, url: \"rediss://:pw@cache:6380/2\"}}\n{ROUTE}    dedup: {{}}\n"
        ))
        .unwrap();
        let StoreConfig::Redis {
            url,
            prefix,
            lease,
            replicas,
        } = &c.store
        else {
            panic!("{:?}", c.store);
        };
        assert_eq!(url.0, "rediss://:pw@cache:6380/2");
        assert_eq!(prefix, "hookgate:");
        assert_eq!(*lease, Duration::from_secs(30));
        assert_eq!(*replicas, Replicas::default());
        // The password never shows in debug output.
        assert!(!format!("{:?}", c.store).contains("pw"));
        for (store, key) in [
            ("{kind: redis}", "store.url: missing"),
            (
                "{kind: redis, url: \"http://x\"}",
                "store.url: must start with",
            ),
            (
                "{kind: redis, url: \"redis://a b:x\"}",
                "store.url: not a valid",
            ),
            (
                "{kind: redis, url: \"redis://x\", prefix: \"\"}",
                "store.prefix: empty",
            ),
            (
                "{kind: redis, url: \"redis://x\", path: a}",
                "store.path: only for kind redb",
            ),
            (
                "{kind: memory, url: \"redis://x\"}",
                "store.url: only for kind redis",
            ),
            (
                "{kind: redb, prefix: x}",
                "store.prefix: only for kind redis",
            ),
        ] {
            let p = problems(&format!("store: {store}\n{ROUTE}"));
            assert!(p.iter().any(|p| p.starts_with(key)), "{key} not in {p:?}");
        }
        // The queue lives in Redis too: queue and hybrid routes are accepted, with the lease.
        let c = parse(&format!(
            "store: {{kind: redis, url: \"redis://x\", lease: 1500ms}}\n{ROUTE}    delivery: {{mode: queue}}\n"
        ))
        .unwrap();
        assert!(
            matches!(c.store, StoreConfig::Redis { lease, .. } if lease == Duration::from_millis(1500))
        );
        assert!(parse(&format!(
            "store: {{kind: redis, url: \"redis://x\"}}\n{ROUTE}    delivery: {{mode: hybrid, deadline: 1s}}\n"
        ))
        .is_ok());
        for (store, key) in [
            (
                "{kind: redis, url: \"redis://x\", lease: soon}",
                "store.lease: `soon` is not a duration",
            ),
            (
                "{kind: redis, url: \"redis://x\", lease: 0s}",
                "store.lease: `0s`: zero is not allowed",
            ),
            (
                "{kind: redis, url: \"redis://x\", lease: 200ms}",
                "store.lease: 200ms is too short",
            ),
            (
                "{kind: redb, lease: 30s}",
                "store.lease: only for kind redis",
            ),
            ("{lease: 30s}", "store.lease: only for kind redis"),
            (
                "{kind: redis, url: \"redis://x\", min_replicas: -1}",
                "store.min_replicas: `-1` must be a whole number from 0 to 100",
            ),
            (
                "{kind: redis, url: \"redis://x\", min_replicas: two}",
                "store.min_replicas: expected a whole number",
            ),
            (
                "{kind: redis, url: \"redis://x\", replica_timeout: 0s}",
                "store.replica_timeout: `0s`: zero is not allowed",
            ),
            (
                "{kind: redb, min_replicas: 1}",
                "store.min_replicas: only for kind redis",
            ),
            (
                "{kind: redis, url: \"redis+sentinel://h1:26379\"}",
                "store.url: names no master",
            ),
            (
                "{kind: redis, url: \"redis+cluster://a:1,b:x\"}",
                "store.url: host `b:x` has no valid port",
            ),
            (
                "{kind: redis, url: \"redis+cluster://a:1\", prefix: \"{h}:\"}",
                "store.prefix: on a Cluster",
            ),
        ] {
            let p = problems(&format!("store: {store}\n{ROUTE}"));
            assert!(p.iter().any(|p| p.starts_with(key)), "{key} not in {p:?}");
        }
        // Sentinel and Cluster URLs, and replica-acknowledged writes.
        let c = parse(&format!(
            "store: {{kind: redis, url: \"rediss+sentinel://:secretpw@s1:26379,s2:26380/mymaster/1\", min_replicas: 1, replica_timeout: 250ms}}\n{ROUTE}"
        ))
        .unwrap();
        assert!(
            matches!(c.store, StoreConfig::Redis { replicas, .. } if replicas == Replicas { min: 1, timeout: Duration::from_millis(250) })
        );
        assert!(!format!("{:?}", c.store).contains("secretpw"));
        assert!(parse(&format!(
            "store: {{kind: redis, url: \"redis+cluster://a:7000,b:7001\"}}\n{ROUTE}"
        ))
        .is_ok());
        // A bad URL's message never shows its password.
        let p = problems(&format!(
            "store: {{kind: redis, url: \"redis+sentinel://:secretpw@h1:x/m\"}}\n{ROUTE}"
        ));
        assert!(p.iter().all(|p| !p.contains("secretpw")), "{p:?}");
        // The memory store still refuses them, naming both durable kinds.
        let p = problems(&format!("{ROUTE}    delivery: {{mode: queue}}\n"));
        assert!(
            p.iter().any(
                |p| p.starts_with("routes[0].delivery.mode: queue mode promises")
                    && p.contains("store.kind: redis")
            ),
            "{p:?}"
        );
    }
}
