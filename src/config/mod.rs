//! Configuration: the YAML file (`file.rs`), its checked runtime form (`load/`, one file per
//! area, secrets included), and reloading while running (`reload.rs`).
//!
//! Loading never stops at the first problem: the operator gets every problem at once, each
//! named by its key path (`routes[1].verify.secrets[0]`), with the fix.

mod file;
mod load;
pub mod reload;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use self::load::parse_size;
pub use self::reload::Fingerprint;
use crate::gateway::{self, Route};
use crate::journal;
use crate::store::StoreConfig;
use crate::telemetry::LogFormat;
use crate::upstream::Forward;

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
    #[error("{} in the config:\n{}", counted(.0.len(), "problem"), list(.0))]
    Invalid(Vec<Problem>),
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// `1 route`, `2 routes`: a count and its noun.
pub fn counted(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
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
    pub journal: journal::Settings,
    /// `telemetry.otlp`: traces are exported when present.
    pub otlp: Option<crate::telemetry::OtlpSettings>,
    /// `authz`: the verify-only listener, when the section is present.
    pub authz: Option<gateway::authz::Settings>,
    /// The file this config was read from (`None` when parsed from text).
    pub source: Option<PathBuf>,
    /// Every file this config was built from (itself, secret files, TLS files) with a digest of
    /// the bytes that were read: what the reload watcher compares against.
    pub files: Vec<Fingerprint>,
}

#[derive(Debug, Clone)]
pub struct Server {
    pub listen: SocketAddr,
    pub max_body_bytes: u64,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub max_connections: usize,
    /// Open connections from one address (an IPv6 /64), counted at accept on the TCP peer.
    pub max_connections_per_ip: usize,
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
    /// `admin.token`: required by `/api/*` and `/admin/dlq*` when set.
    pub token: Option<crate::secret::Secret>,
}

#[derive(Debug, Clone)]
pub struct Log {
    pub format: LogFormat,
    pub level: String,
}

impl Config {
    /// Reads and validates the file at `path`. Files it names (schemas) are read relative to
    /// the directory of `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::load_recording(path).0
    }

    /// [`Config::load`], and also what `run` would refuse when it starts that can be told
    /// without the network and without creating anything (a redb `store.path` it cannot open,
    /// `admin.listen` on the proxy's port): what `hookgate check` reports.
    pub fn check(path: &Path) -> Result<Self, ConfigError> {
        Self::load_with(path, load::Checks::StartUp).0
    }

    /// Like [`Config::load`], and also returns every file that was read (or could not be), so
    /// a reload watcher can notice when a file a refused config needs appears or is fixed.
    pub fn load_recording(path: &Path) -> (Result<Self, ConfigError>, Vec<Fingerprint>) {
        Self::load_with(path, load::Checks::Config)
    }

    fn load_with(
        path: &Path,
        checks: load::Checks,
    ) -> (Result<Self, ConfigError>, Vec<Fingerprint>) {
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
        let (result, read_files) = load::parse_recording(&text, &dir, Some(path), checks);
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
        load::parse(text, dir).map_err(ConfigError::Invalid)
    }

    /// What the request path needs of this config.
    pub fn gateway(&self) -> gateway::Settings {
        gateway::Settings {
            routes: self.routes.clone(),
            max_body_bytes: self.server.max_body_bytes,
            body_timeout: self.server.body_timeout,
            trusted_proxies: self.server.trusted_proxies.clone(),
            forward: self.forward.clone(),
            journal: self.journal.clone(),
            authz: self.authz.clone(),
        }
    }

    /// The paths of every file this config was built from: the config file itself, secret
    /// files, the TLS certificate and key, and schema files.
    pub fn watched_files(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().map(|f| f.path.as_path())
    }
}
