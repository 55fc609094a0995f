//! Configuration: the YAML file (`file.rs`), its checked runtime form (`validate.rs`),
//! secrets (`secret.rs`), and reloading while running (`reload.rs`).
//!
//! Loading never stops at the first problem: the operator gets every problem at once, each
//! named by its key path (`routes[1].verify.secrets[0]`), with the fix.

mod file;
pub mod reload;
mod secret;
mod validate;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use self::reload::Fingerprint;
pub use self::secret::Secret;
pub use self::validate::parse_size;
use crate::dedup::KeyTemplate;
use crate::delivery::{Backoff, RetryOn};
use crate::limit::RateLimit;
use crate::schema::Schema;
use crate::verify::Verifier;

/// One thing wrong with a config, named by its key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl Problem {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{} problem(s) in the config:\n{}", .0.len(), list(.0))]
    Invalid(Vec<Problem>),
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The validated, ready-to-run configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: Server,
    pub admin: Admin,
    pub log: Log,
    pub store: StoreConfig,
    pub forward: Forward,
    pub reload: Reload,
    pub routes: Vec<Arc<Route>>,
    /// The file this config was read from (`None` when parsed from text).
    pub source: Option<PathBuf>,
    /// Every file this config was built from (itself, secret files, TLS files) with a digest of
    /// the bytes that were read: what the reload watcher compares against.
    pub files: Vec<Fingerprint>,
}

/// Where dedup keys and the spool live (`store:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// In process, bounded; lost on restart.
    Memory,
    /// A redb file: durable across restarts and crashes.
    Redb { path: PathBuf },
    /// A Redis server shared by every replica: dedup keys, the route limits and the queue.
    Redis {
        url: RedisUrl,
        prefix: String,
        /// How long a replica's heartbeat lasts (`store.lease`): the time to notice a replica
        /// has died, after which another adopts its queued events.
        lease: Duration,
    },
}

impl StoreConfig {
    /// Whether accepted events survive a restart of this process.
    pub fn durable(&self) -> bool {
        matches!(self, Self::Redb { .. } | Self::Redis { .. })
    }
}

/// `store.url`: may carry a password, so its `Debug` shows only the scheme.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl(pub String);

impl std::fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = self.0.split_once("://").map_or("?", |(s, _)| s);
        write!(f, "RedisUrl({scheme}://<redacted>)")
    }
}

/// `routes[].dedup`: duplicates are answered without reaching the backend.
#[derive(Debug, Clone)]
pub struct Dedup {
    /// `None`: the scheme's delivery id, else the body's SHA-256.
    pub key: Option<KeyTemplate>,
    pub ttl: Duration,
}

/// `routes[].delivery.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryMode {
    /// Forward and pass the backend's answer back.
    Sync,
    /// Store durably, answer 202, deliver in the background with retries.
    Queue,
    /// Forward; if the backend misses the deadline, answer 202 and keep retrying.
    Hybrid,
}

impl DeliveryMode {
    pub fn name(self) -> &'static str {
        match self {
            Self::Sync => "sync",
            Self::Queue => "queue",
            Self::Hybrid => "hybrid",
        }
    }
}

/// `routes[].delivery`.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub mode: DeliveryMode,
    /// Hybrid: how long the sender waits for the backend before getting 202.
    pub deadline: Duration,
    /// Background deliveries in flight for this route.
    pub concurrency: usize,
    /// Attempts (the first included) before an event becomes a dead letter.
    pub max_attempts: u32,
    /// Age after which an undelivered event becomes a dead letter.
    pub max_age: Duration,
    pub retry_on: RetryOn,
    pub backoff: Backoff,
}

impl Default for Delivery {
    fn default() -> Self {
        Self {
            mode: DeliveryMode::Sync,
            deadline: Duration::from_secs(8),
            concurrency: 16,
            max_attempts: 12,
            max_age: Duration::from_secs(72 * 3600),
            retry_on: RetryOn::default(),
            backoff: Backoff::default(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Server {
    pub listen: SocketAddr,
    pub max_body_bytes: u64,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub max_connections: usize,
    /// Worker threads, each with its own runtime, listener and upstream pool.
    pub workers: usize,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub shutdown_grace: Duration,
    pub tls: Option<Tls>,
}

/// `server.tls`: the certificate and key as loaded, with the paths they came from.
#[derive(Clone)]
pub struct Tls {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub certified: Arc<rustls::sign::CertifiedKey>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .finish_non_exhaustive()
    }
}

/// `reload`: whether and how often the files are polled for changes (SIGHUP always reloads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reload {
    pub watch: bool,
    pub interval: Duration,
}

#[derive(Debug, Clone)]
pub struct Admin {
    pub listen: SocketAddr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone)]
pub struct Log {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Clone)]
pub struct Forward {
    /// As configured, e.g. `X-Webhook-`.
    pub header_prefix: String,
    pub attestation: Option<Secret>,
}

/// Which request paths a route answers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RoutePath {
    Exact(String),
    /// `/hooks/*`: stored as `/hooks/`; also answers `/hooks`.
    Prefix(String),
}

/// Where verified requests go.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub scheme: http::uri::Scheme,
    pub authority: http::uri::Authority,
    /// Never empty; starts with `/`.
    pub path: String,
}

#[derive(Debug, Clone)]
pub struct Route {
    pub name: Arc<str>,
    pub path: RoutePath,
    /// Lowercase host without port.
    pub host: Option<String>,
    pub upstream: Upstream,
    pub timeout: Duration,
    pub verifier: Verifier,
    /// Stages 2 and 5; empty when the route has no `rate_limit`.
    pub rate_limit: RateLimit,
    /// Stage 6; compiled when the config loads.
    pub schema: Option<Schema>,
    /// `None`: dedup is off for this route.
    pub dedup: Option<Dedup>,
    pub delivery: Delivery,
}

impl Config {
    /// Reads and validates the file at `path`. Files it names (schemas) are read relative to
    /// the directory of `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::load_recording(path).0
    }

    /// Like [`Config::load`], and also returns every file that was read (or could not be), so
    /// a reload watcher can notice when a file a refused config needs appears or is fixed.
    pub fn load_recording(path: &Path) -> (Result<Self, ConfigError>, Vec<Fingerprint>) {
        let read = std::fs::read(path);
        let mut files = vec![Fingerprint::of(path, read.as_ref().ok())];
        let text = match read.and_then(|b| {
            String::from_utf8(b)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
        }) {
            Ok(t) => t,
            Err(source) => {
                let path = path.display().to_string();
                return (Err(ConfigError::Read { path, source }), files);
            }
        };
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let (result, read_files) = validate::parse_recording(&text, &dir);
        files.extend(read_files);
        let result = result.map_err(ConfigError::Invalid).map(|mut c| {
            c.source = Some(path.to_path_buf());
            c.files = files.clone();
            c
        });
        (result, files)
    }

    /// Validates config text; relative file names are read from the current directory.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        Self::parse_in(text, Path::new("."))
    }

    /// Validates config text; relative file names are read from `dir`.
    pub fn parse_in(text: &str, dir: &Path) -> Result<Self, ConfigError> {
        validate::parse(text, dir).map_err(ConfigError::Invalid)
    }

    /// The paths of every file this config was built from: the config file itself, secret
    /// files, the TLS certificate and key, and schema files.
    pub fn watched_files(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().map(|f| f.path.as_path())
    }
}
