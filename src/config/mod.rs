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
    pub forward: Forward,
    pub routes: Vec<Arc<Route>>,
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
    /// Stages 2 and 5; empty when the route has no `rate_limit`.
    pub rate_limit: RateLimit,
    /// Stage 6; compiled when the config loads.
    pub schema: Option<Schema>,
}

impl Config {
    /// Reads and validates the file at `path`. Files it names (schemas) are read relative to
    /// the directory of `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Self::parse_in(&text, &dir)
    }

    /// Validates config text; relative file names are read from the current directory.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        Self::parse_in(text, Path::new("."))
    }

    /// Validates config text; relative file names are read from `dir`.
    pub fn parse_in(text: &str, dir: &Path) -> Result<Self, ConfigError> {
        validate::parse(text, dir).map_err(ConfigError::Invalid)
    }
}
