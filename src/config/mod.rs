//! Configuration: the YAML file (`file.rs`), its checked runtime form (`validate.rs`), and
//! secrets (`secret.rs`).
//!
//! Loading never stops at the first problem: the operator gets every problem at once, each
//! named by its key path (`routes[1].verify.secrets[0]`), with the fix.

mod file;
mod secret;
mod validate;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use self::secret::Secret;
pub use self::validate::parse_size;
use crate::dedup::KeyTemplate;
use crate::delivery::{Backoff, RetryOn};
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
    pub routes: Vec<Arc<Route>>,
}

/// Where dedup keys and the spool live (`store:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// In process, bounded; lost on restart.
    Memory,
    /// A redb file: durable across restarts and crashes.
    Redb { path: PathBuf },
}

impl StoreConfig {
    /// Whether accepted events survive a restart.
    pub fn durable(&self) -> bool {
        matches!(self, Self::Redb { .. })
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
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub shutdown_grace: Duration,
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
    /// `None`: dedup is off for this route.
    pub dedup: Option<Dedup>,
    pub delivery: Delivery,
}

impl Config {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Validates config text.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        validate::parse(text).map_err(ConfigError::Invalid)
    }
}
