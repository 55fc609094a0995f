//! Reloading the config while running: on SIGHUP, or when the config file or any file it reads
//! (secrets, TLS certificate and key) changes.
//!
//! Changes are found by polling a SHA-256 of each file's content every `reload.interval`, not
//! by file-system events or modification times: Kubernetes updates a mounted ConfigMap or
//! Secret by swapping a `..data` symlink, which leaves the files' own mtimes alone and fires
//! events on the directory, not the file. Reading a few small files every couple of seconds
//! costs nothing and sees every kind of update, including an editor's rename-over.
//!
//! A new config is validated fully, exactly as at start-up. When valid it replaces the old one
//! atomically (requests under way finish on the config they started with); when not, every
//! problem is logged and the old config keeps serving. Either way
//! `hookgate_config_reloads_total{result}` counts it.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{Config, ConfigError, Problem};
use crate::delivery::DeliveryMode;
use crate::metrics::Metrics;

/// A file a config was built from, and a digest of the bytes read (`None`: it could not be
/// read).
#[derive(Clone, PartialEq, Eq)]
pub struct Fingerprint {
    pub path: PathBuf,
    pub digest: Option<[u8; 32]>,
}

/// Without the digest: a hash of a secret file is still something to brute-force offline.
impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fingerprint")
            .field("path", &self.path)
            .field("readable", &self.digest.is_some())
            .finish()
    }
}

impl Fingerprint {
    /// The fingerprint of `bytes` read from `path` (`None` when reading failed).
    pub fn of(path: &Path, bytes: Option<&Vec<u8>>) -> Self {
        Self {
            path: path.to_path_buf(),
            digest: bytes.map(|b| Sha256::digest(b).into()),
        }
    }

    /// Reads the file now.
    pub fn read(path: &Path) -> Self {
        Self::of(path, std::fs::read(path).ok().as_ref())
    }

    /// Whether the file's content differs from when this fingerprint was taken.
    pub fn is_stale(&self) -> bool {
        Self::read(&self.path).digest != self.digest
    }
}

/// Whether any of `files` changed since it was read.
pub fn any_changed(files: &[Fingerprint]) -> bool {
    files.iter().any(Fingerprint::is_stale)
}

/// Settings a reload cannot change because they shape listeners and tasks made at start-up;
/// the keys whose new value differs from the running one.
pub fn restart_only_changes(running: &Config, new: &Config) -> Vec<&'static str> {
    let (a, b) = (&running.server, &new.server);
    [
        ("server.listen", a.listen != b.listen),
        ("admin.listen", running.admin.listen != new.admin.listen),
        ("server.tls", a.tls.is_some() != b.tls.is_some()),
        (
            "server.max_connections",
            a.max_connections != b.max_connections,
        ),
        (
            "server.max_connections_per_ip",
            a.max_connections_per_ip != b.max_connections_per_ip,
        ),
        ("server.workers", a.workers != b.workers),
        (
            "server.header_timeout",
            a.header_timeout != b.header_timeout,
        ),
        ("log.format", running.log.format != new.log.format),
        ("log.level", running.log.level != new.log.level),
        ("store", running.store != new.store),
        ("telemetry", running.otlp != new.otlp),
    ]
    .into_iter()
    .filter_map(|(key, differs)| differs.then_some(key))
    .collect()
}

/// Queue and hybrid routes promise durability, so a reload cannot add them while the process
/// runs on the memory store it started with (the store changes only with a restart).
pub fn store_problems(running: &Config, new: &Config) -> Vec<Problem> {
    if running.store.durable() {
        return Vec::new();
    }
    new.routes
        .iter()
        .enumerate()
        .filter(|(_, r)| r.delivery.mode != DeliveryMode::Sync)
        .map(|(i, r)| {
            Problem::new(
                format!("routes[{i}].delivery.mode"),
                format!(
                    "{} mode needs a durable store, and this process runs on the memory store; restart it to change store.kind",
                    r.delivery.mode.name()
                ),
            )
        })
        .collect()
}

/// What started a reload: logged with it.
#[derive(Debug, Clone, Copy)]
pub enum Trigger {
    Signal,
    FileChanged,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Self::Signal => "sighup",
            Self::FileChanged => "file_changed",
        }
    }
}

/// The SIGHUP stream. Made before the server says it is listening, so a SIGHUP sent as soon as
/// it is up reloads instead of killing the process (the default action).
pub struct Hangup {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Hangup {
    pub fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let signal = signal(SignalKind::hangup())
                .map_err(|e| tracing::warn!(error = %e, "cannot listen for SIGHUP; reload by file change only"))
                .ok();
            Self { signal }
        }
        #[cfg(not(unix))]
        Self {}
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some(s) = &mut self.signal {
            if s.recv().await.is_some() {
                return;
            }
        }
        std::future::pending::<()>().await
    }
}

/// Watches the files `running` was built from and reloads on a change or SIGHUP, handing each
/// valid new config to `apply`. Never returns; abort its task to stop it.
pub async fn watch<F>(running: Config, metrics: Metrics, mut hangup: Hangup, apply: F)
where
    F: Fn(Config) + Send + 'static,
{
    let Some(path) = running.source.clone() else {
        return;
    };
    let mut seen = running.files.clone();
    let mut settings = running.reload.clone();
    loop {
        let trigger = tokio::select! {
            () = hangup.recv() => Trigger::Signal,
            () = tokio::time::sleep(settings.interval), if settings.watch => {
                let files = seen.clone();
                let changed = tokio::task::spawn_blocking(move || any_changed(&files))
                    .await
                    .unwrap_or(false);
                if !changed {
                    continue;
                }
                Trigger::FileChanged
            }
        };
        let load_path = path.clone();
        let Ok((result, files)) =
            tokio::task::spawn_blocking(move || Config::load_recording(&load_path)).await
        else {
            continue;
        };
        seen = files;
        let result = result.and_then(|new| {
            let problems = store_problems(&running, &new);
            if problems.is_empty() {
                Ok(new)
            } else {
                Err(ConfigError::Invalid(problems))
            }
        });
        match result {
            Ok(new) => {
                for key in restart_only_changes(&running, &new) {
                    tracing::warn!(
                        key,
                        "config reload: this setting changed but only takes effect after a restart; the running value stays"
                    );
                }
                settings = new.reload.clone();
                let files = new.files.len();
                apply(new);
                metrics.config_reloads.with_label_values(&["ok"]).inc();
                metrics.config_last_reload_successful.set(1);
                tracing::info!(trigger = trigger.as_str(), files, "config reloaded");
            }
            Err(e) => {
                report(&e);
                metrics.config_reloads.with_label_values(&["error"]).inc();
                metrics.config_last_reload_successful.set(0);
                tracing::error!(
                    trigger = trigger.as_str(),
                    "config reload refused; still serving the previous config"
                );
            }
        }
    }
}

/// One log line per problem, each naming its key, as `check` prints them.
fn report(e: &ConfigError) {
    match e {
        ConfigError::Invalid(problems) => {
            for p in problems {
                tracing::error!(key = %p.key, problem = %p.message, "config reload: problem");
            }
        }
        ConfigError::Read { path, .. } => {
            tracing::error!(key = %path, problem = %e, "config reload: problem");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTE: &str = "routes:\n  - name: a\n    path: /a\n    upstream: http://127.0.0.1:1/x\n    verify: {scheme: mediaconvert, secrets: [{id: k, value: s}]}\n";

    #[test]
    fn fingerprint_sees_content_not_mtime() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"one").unwrap();
        let f = Fingerprint::read(&p);
        assert!(!f.is_stale());
        std::fs::write(&p, b"two").unwrap();
        assert!(f.is_stale());
        std::fs::remove_file(&p).unwrap();
        assert!(f.is_stale());
        let gone = Fingerprint::read(&p);
        assert_eq!(gone.digest, None);
        assert!(!gone.is_stale());
    }

    #[test]
    fn debug_shows_no_digest() {
        let f = Fingerprint::of(Path::new("/s"), Some(&b"hunter2".to_vec()));
        let hex = hex::encode(f.digest.unwrap());
        assert!(!format!("{f:?}").contains(&hex[..8]));
    }

    #[test]
    fn load_records_config_and_secret_files() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, b"s3cret\n").unwrap();
        let cfg = dir.path().join("c.yaml");
        let text = ROUTE.replace("value: s", &format!("file: {}", secret.display()));
        std::fs::write(&cfg, text).unwrap();
        let c = Config::load(&cfg).unwrap();
        let watched: Vec<&Path> = c.watched_files().collect();
        assert_eq!(watched, vec![cfg.as_path(), secret.as_path()]);
        assert!(!any_changed(&c.files));
        std::fs::write(&secret, b"rotated\n").unwrap();
        assert!(any_changed(&c.files));
    }

    #[test]
    fn a_refused_config_still_names_the_files_it_needs() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("not-yet");
        let cfg = dir.path().join("c.yaml");
        std::fs::write(
            &cfg,
            ROUTE.replace("value: s", &format!("file: {}", missing.display())),
        )
        .unwrap();
        let (result, files) = Config::load_recording(&cfg);
        assert!(result.is_err());
        assert_eq!(files.len(), 2);
        assert_eq!(files[1].digest, None);
        std::fs::write(&missing, b"now here").unwrap();
        assert!(any_changed(&files));
    }

    #[test]
    fn restart_only_settings_are_named() {
        let a = Config::parse(ROUTE).unwrap();
        let b = Config::parse(&format!(
            "{ROUTE}server: {{listen: 127.0.0.1:1, body_timeout: 3s}}\nadmin: {{listen: 127.0.0.1:2}}\n"
        ))
        .unwrap();
        assert_eq!(
            restart_only_changes(&a, &b),
            vec!["server.listen", "admin.listen"]
        );
        assert!(restart_only_changes(&a, &a).is_empty());
    }

    #[test]
    fn a_reload_cannot_add_queues_to_a_memory_store() {
        let memory = Config::parse(ROUTE).unwrap();
        let queued = Config::parse(&format!(
            "store: {{kind: redb, path: x.redb}}\n{ROUTE}    delivery: {{mode: queue}}\n"
        ))
        .unwrap();
        let p = store_problems(&memory, &queued);
        assert_eq!(p.len(), 1);
        assert!(p[0]
            .to_string()
            .starts_with("routes[0].delivery.mode: queue mode needs a durable store"));
        assert!(store_problems(&queued, &queued).is_empty());
        assert!(store_problems(&memory, &memory).is_empty());
        assert_eq!(restart_only_changes(&memory, &queued), vec!["store"]);
    }
}
