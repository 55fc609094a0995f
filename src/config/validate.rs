//! From the file's loose mirror to runtime types, collecting every problem on the way.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::file::{
    ByFieldFile, DedupFile, DeliveryFile, FileConfig, LimitFile, PerIpFile, RateLimitFile,
    ReloadFile, RouteFile, Scalar, SchemaFile, SecretFile, StoreFile, TlsFile, VerifyFile,
};
use super::reload::Fingerprint;
use super::secret::{self, SecretSource};
use super::{Admin, Config, Forward, Log, LogFormat, Problem, Reload, Route, RoutePath, Secret};
use super::{Dedup, Delivery, DeliveryMode, StoreConfig};
use super::{LogFormat::Json, Upstream};
use super::{Server, Tls};
use crate::dedup::KeyTemplate;
use crate::delivery::{Backoff, RetryOn, StatusMatch};
use crate::limit::{Limit, PerIp, Rate, RateLimit};
use crate::schema::{self, Mode, Schema, Select, BUILTIN_NAMES};
use crate::verify::{
    Algorithm, Encoding, HmacSpec, Keys, Scheme, Template, Verifier, SCHEME_NAMES,
};

/// The shortest `store.lease`: lease rounds run every third of it, a few Redis round trips each.
const MIN_LEASE: Duration = Duration::from_secs(1);

/// Parses YAML text into a `Config`, or every problem found. Relative schema paths in it are
/// read from `dir`.
pub fn parse(text: &str, dir: &Path) -> Result<Config, Vec<Problem>> {
    parse_recording(text, dir).0
}

/// [`parse`], and every file that validation read (secrets, TLS, schemas), whatever the
/// outcome.
pub fn parse_recording(text: &str, dir: &Path) -> (Result<Config, Vec<Problem>>, Vec<Fingerprint>) {
    let mut v = Validator {
        problems: Vec::new(),
        files: Vec::new(),
        dir: dir.to_path_buf(),
    };
    let result = v.parse(text);
    (result, v.files)
}

impl Validator {
    fn parse(&mut self, text: &str) -> Result<Config, Vec<Problem>> {
        let mut value: Value = serde_saphyr::from_str_with_options(text, yaml_options())
            .map_err(|e| vec![Problem::new("(file)", format!("not valid YAML: {e}"))])?;
        if value.is_null() {
            value = Value::Object(Default::default());
        }
        let mut problems = Vec::new();
        expand_env(&mut value, &mut String::new(), &mut problems);

        let mut unknown = Vec::new();
        let mut on_unknown = |path: serde_ignored::Path<'_>| unknown.push(ignored_path(&path));
        let de = serde_ignored::Deserializer::new(value, &mut on_unknown);
        let file: Result<FileConfig, _> = serde_path_to_error::deserialize(de);
        for key in unknown {
            problems.push(Problem::new(
                key,
                "unknown key; check its spelling against config.example.yaml",
            ));
        }
        let file = match file {
            Ok(f) => f,
            Err(e) => {
                let key = e.path().to_string();
                problems.push(Problem::new(key, e.into_inner().to_string()));
                return Err(problems);
            }
        };
        self.problems = problems;
        let mut config = self.config(file);
        config.files = self.files.clone();
        if self.problems.is_empty() {
            Ok(config)
        } else {
            Err(std::mem::take(&mut self.problems))
        }
    }
}

/// How the file is read. YAML 1.2 booleans: only `true` and `false` (in any of their three
/// cases) are booleans, so a plain `on`, `no`, `y` or `yes` is the string it reads as (a route
/// named `on`, a secret id `yes`), not YAML 1.1's boolean.
fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        strict_booleans: true,
    }
}

/// `routes[0].verify.foo` from serde_ignored's path.
fn ignored_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path as P;
    match path {
        P::Root => String::new(),
        P::Seq { parent, index } => format!("{}[{index}]", ignored_path(parent)),
        P::Map { parent, key } => {
            let p = ignored_path(parent);
            if p.is_empty() {
                shown_key(key).to_string()
            } else {
                format!("{p}.{}", shown_key(key))
            }
        }
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
            ignored_path(parent)
        }
    }
}

/// A mapping key as it appears in a key path: an empty one is shown quoted, so a problem never
/// starts with a bare `:`.
fn shown_key(key: &str) -> &str {
    if key.is_empty() {
        "\"\""
    } else {
        key
    }
}

/// The key a `${VAR}` problem is reported under: a document that is a lone string has none.
fn env_key(path: &str) -> String {
    if path.is_empty() {
        "(file)".to_string()
    } else {
        path.to_string()
    }
}

/// Replaces `${VAR}` in every string with the variable's value.
fn expand_env(value: &mut Value, path: &mut String, problems: &mut Vec<Problem>) {
    match value {
        Value::String(s) if s.contains("${") => {
            let mut out = String::with_capacity(s.len());
            let mut rest = s.as_str();
            while let Some(start) = rest.find("${") {
                out.push_str(&rest[..start]);
                let Some(len) = rest[start..].find('}') else {
                    problems.push(Problem::new(env_key(path), "unclosed `${` in value"));
                    return;
                };
                let var = &rest[start + 2..start + len];
                match std::env::var(var) {
                    Ok(v) => out.push_str(&v),
                    Err(_) => problems.push(Problem::new(
                        env_key(path),
                        format!(
                            "environment variable {var} is not set (used as ${{{var}}}); export it"
                        ),
                    )),
                }
                rest = &rest[start + len + 1..];
            }
            out.push_str(rest);
            *s = out;
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                expand_env(item, path, problems);
                path.truncate(len);
            }
        }
        Value::Object(map) => {
            for (k, item) in map.iter_mut() {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(shown_key(k));
                expand_env(item, path, problems);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// One worker per core this process may run on (CPU affinity and cgroup quota respected).
fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `512KiB`, `1MiB`, `2MB`, `100` (bytes).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return None,
    };
    n.checked_mul(mult)
}

struct Validator {
    problems: Vec<Problem>,
    /// Every file read on the way, for the reload watcher.
    files: Vec<Fingerprint>,
    /// Where relative schema paths are read from: the config file's directory.
    dir: PathBuf,
}

impl Validator {
    fn problem(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem::new(key, message));
    }

    /// Reads a file the config names and remembers what was read.
    fn read(&mut self, path: impl AsRef<Path>) -> std::io::Result<Vec<u8>> {
        let path = path.as_ref();
        let read = std::fs::read(path);
        self.files.push(Fingerprint::of(path, read.as_ref().ok()));
        read
    }

    fn config(&mut self, f: FileConfig) -> Config {
        let server = Server {
            listen: self.addr("server.listen", f.server.listen.as_deref(), "0.0.0.0:8080"),
            max_body_bytes: self.size("server.max_body_bytes", f.server.max_body_bytes, 1 << 20),
            header_timeout: self.duration("server.header_timeout", f.server.header_timeout, 5),
            body_timeout: self.duration("server.body_timeout", f.server.body_timeout, 10),
            max_connections: self.count("server.max_connections", f.server.max_connections, 10_000),
            workers: self.count("server.workers", f.server.workers, default_workers()),
            trusted_proxies: f
                .server
                .trusted_proxies
                .iter()
                .enumerate()
                .filter_map(|(i, s)| self.cidr(&format!("server.trusted_proxies[{i}]"), s))
                .collect(),
            shutdown_grace: self.duration("server.shutdown_grace", f.server.shutdown_grace, 20),
            tls: f.server.tls.and_then(|t| self.tls(t)),
        };
        let admin = Admin {
            listen: self.addr("admin.listen", f.admin.listen.as_deref(), "127.0.0.1:9090"),
        };
        let log = Log {
            format: match f.log.format.as_deref() {
                None | Some("json") => Json,
                Some("pretty") => LogFormat::Pretty,
                Some(other) => {
                    self.problem(
                        "log.format",
                        format!("`{other}` is not a format; use json or pretty"),
                    );
                    Json
                }
            },
            level: match f.log.level.as_deref() {
                None => "info".to_string(),
                Some(l @ ("trace" | "debug" | "info" | "warn" | "error")) => l.to_string(),
                Some(other) => {
                    self.problem(
                        "log.level",
                        format!("`{other}` is not a level; use trace, debug, info, warn or error"),
                    );
                    "info".to_string()
                }
            },
        };
        let store = self.store(&f.store);
        let header_prefix = f
            .forward
            .header_prefix
            .unwrap_or_else(|| "X-Webhook-".into());
        if header_prefix.len() < 3
            || http::HeaderName::from_bytes(header_prefix.as_bytes()).is_err()
        {
            self.problem(
                "forward.header_prefix",
                format!("`{header_prefix}` is not a usable header name prefix; use something like X-Webhook-"),
            );
        }
        let attestation = f
            .forward
            .attestation_secret
            .as_ref()
            .and_then(|s| self.secret("forward.attestation_secret", s));
        let forward = Forward {
            header_prefix,
            attestation,
        };

        if f.routes.is_empty() {
            self.problem(
                "routes",
                "no routes; add at least one (see config.example.yaml)",
            );
        }
        let mut names = HashSet::new();
        let mut paths = HashSet::new();
        let mut routes = Vec::new();
        for (i, r) in f.routes.into_iter().enumerate() {
            let key = format!("routes[{i}]");
            if let Some(route) = self.route(&key, r) {
                if !names.insert(route.name.clone()) {
                    self.problem(
                        format!("{key}.name"),
                        format!(
                            "duplicate route name `{}`; names must be unique",
                            route.name
                        ),
                    );
                }
                if !paths.insert((route.host.clone(), route.path.clone())) {
                    self.problem(
                        format!("{key}.path"),
                        "duplicate path: another route already answers it; change path or host",
                    );
                }
                if route.delivery.mode != DeliveryMode::Sync && !store.durable() {
                    self.problem(
                        format!("{key}.delivery.mode"),
                        format!(
                            "{} mode promises that accepted events survive a restart, which needs a durable store; set store.kind: redb (and store.path), or store.kind: redis",
                            route.delivery.mode.name()
                        ),
                    );
                }
                routes.push(Arc::new(route));
            }
        }
        let reload = self.reload(f.reload);
        Config {
            server,
            admin,
            log,
            store,
            forward,
            reload,
            routes,
            source: None,
            files: Vec::new(),
        }
    }

    fn reload(&mut self, r: ReloadFile) -> Reload {
        Reload {
            watch: r.watch.unwrap_or(true),
            interval: self.duration("reload.interval", r.interval, 2),
        }
    }

    /// Reads and checks the certificate and key now, so `check` and a reload refuse a broken
    /// pair instead of the first handshake failing.
    fn tls(&mut self, t: TlsFile) -> Option<Tls> {
        let file = |v: &mut Self, key: &str, path: Option<String>, what: &str| match path {
            Some(p) if !p.is_empty() => match v.read(&p) {
                Ok(bytes) => Some((PathBuf::from(p), bytes)),
                Err(e) => {
                    v.problem(
                        key,
                        format!("cannot read {p}: {e}; check the path and its permissions"),
                    );
                    None
                }
            },
            _ => {
                v.problem(key, format!("missing; the path to the PEM {what}"));
                None
            }
        };
        let cert = file(
            self,
            "server.tls.cert_file",
            t.cert_file,
            "certificate chain (leaf first)",
        );
        let key = file(self, "server.tls.key_file", t.key_file, "private key");
        let ((cert_file, cert_pem), (key_file, key_pem)) = (cert?, key?);
        match crate::server::tls::certified_key(&cert_pem, &key_pem) {
            Ok(certified) => Some(Tls {
                cert_file,
                key_file,
                certified: Arc::new(certified),
            }),
            Err(e) => {
                use crate::server::tls::TlsFileRole;
                let (key, path) = match e.role() {
                    TlsFileRole::Cert => ("server.tls.cert_file", &cert_file),
                    TlsFileRole::Key => ("server.tls.key_file", &key_file),
                    TlsFileRole::Pair => ("server.tls", &cert_file),
                };
                self.problem(key, format!("{}: {e}", path.display()));
                None
            }
        }
    }

    fn store(&mut self, f: &StoreFile) -> StoreConfig {
        let kind = f.kind.as_deref().unwrap_or("memory");
        if kind != "redis" {
            for (key, set) in [
                ("store.url", f.url.is_some()),
                ("store.prefix", f.prefix.is_some()),
                ("store.lease", f.lease.is_some()),
            ] {
                if set {
                    self.problem(
                        key,
                        "only for kind redis; set store.kind: redis or remove the key",
                    );
                }
            }
        }
        match kind {
            "memory" => {
                if f.path.is_some() {
                    self.problem(
                        "store.path",
                        "only for kind redb; set store.kind: redb or remove the key",
                    );
                }
                StoreConfig::Memory
            }
            "redb" => match f.path.as_deref() {
                Some("") => {
                    self.problem("store.path", "empty; e.g. data/hookgate.redb");
                    StoreConfig::Memory
                }
                p => StoreConfig::Redb {
                    path: p.unwrap_or("data/hookgate.redb").into(),
                },
            },
            "redis" => {
                if f.path.is_some() {
                    self.problem(
                        "store.path",
                        "only for kind redb; remove the key (kind redis uses store.url)",
                    );
                }
                let url = f.url.clone().unwrap_or_default();
                match redis::Client::open(url.as_str()) {
                    _ if url.is_empty() => self.problem(
                        "store.url",
                        "missing; set it, e.g. redis://127.0.0.1:6379/0 (rediss:// for TLS)",
                    ),
                    _ if !(url.starts_with("redis://") || url.starts_with("rediss://")) => self
                        .problem(
                            "store.url",
                            "must start with redis:// or rediss:// (TLS); e.g. redis://127.0.0.1:6379/0",
                        ),
                    // The parser's message may echo the URL, password included: not shown.
                    Err(_) => self.problem(
                        "store.url",
                        "not a valid Redis URL; e.g. redis://:PASSWORD@HOST:6379/0",
                    ),
                    Ok(_) => {}
                }
                let prefix = f.prefix.clone().unwrap_or_else(|| "hookgate:".into());
                if prefix.is_empty() {
                    self.problem(
                        "store.prefix",
                        "empty; every key would share the database's namespace; e.g. hookgate:",
                    );
                }
                let lease = self.duration("store.lease", f.lease.clone(), 30);
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
                    url: super::RedisUrl(url),
                    prefix,
                    lease,
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

    fn dedup(&mut self, key: &str, f: DedupFile) -> Dedup {
        let template = f.key.and_then(|k| {
            KeyTemplate::parse(&k)
                .map_err(|e| self.problem(format!("{key}.key"), e))
                .ok()
        });
        Dedup {
            key: template,
            ttl: self.duration(&format!("{key}.ttl"), f.ttl, 24 * 3600),
        }
    }

    fn delivery(&mut self, key: &str, f: Option<DeliveryFile>, timeout: Duration) -> Delivery {
        let d = Delivery::default();
        let Some(f) = f else { return d };
        let mode = match f.mode.as_deref() {
            None | Some("sync") => DeliveryMode::Sync,
            Some("queue") => DeliveryMode::Queue,
            Some("hybrid") => DeliveryMode::Hybrid,
            Some(other) => {
                self.problem(
                    format!("{key}.mode"),
                    format!("`{other}` is not a mode; use sync, queue or hybrid"),
                );
                DeliveryMode::Sync
            }
        };
        let deadline_given = f.deadline.is_some();
        let deadline = self.duration(&format!("{key}.deadline"), f.deadline, 8);
        if mode == DeliveryMode::Hybrid && deadline >= timeout {
            let hint = if deadline_given {
                "shorten it"
            } else {
                "the default is 8s; set a shorter deadline"
            };
            self.problem(
                format!("{key}.deadline"),
                format!(
                    "{deadline:?} is not shorter than the route's timeout ({timeout:?}), so the backend would time out first; {hint}"
                ),
            );
        }
        let concurrency = self.count(&format!("{key}.concurrency"), f.concurrency, 16);
        let max_attempts = self.count(&format!("{key}.max_attempts"), f.max_attempts, 12);
        let max_age = self.duration(&format!("{key}.max_age"), f.max_age, 72 * 3600);
        let retry_on = match f.retry_on {
            None => RetryOn::default(),
            Some(items) => RetryOn(
                items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, item)| {
                        let text = match item {
                            Scalar::Int(n) => n.to_string(),
                            Scalar::Str(s) => s.clone(),
                        };
                        StatusMatch::parse(&text).or_else(|| {
                            self.problem(
                                format!("{key}.retry_on[{i}]"),
                                format!("`{text}` is not a status; write e.g. 429 or 5xx"),
                            );
                            None
                        })
                    })
                    .collect(),
            ),
        };
        let backoff = match f.backoff {
            None => Backoff::default(),
            Some(b) => {
                let def = Backoff::default();
                let base = self.duration(&format!("{key}.backoff.base"), b.base, 1);
                let max = self.duration(&format!("{key}.backoff.max"), b.max, def.max.as_secs());
                if base > max {
                    self.problem(
                        format!("{key}.backoff.base"),
                        format!("{base:?} is longer than backoff.max ({max:?}); lower it"),
                    );
                }
                Backoff { base, max }
            }
        };
        Delivery {
            mode,
            deadline,
            concurrency,
            max_attempts: u32::try_from(max_attempts).unwrap_or(u32::MAX),
            max_age,
            retry_on,
            backoff,
        }
    }

    fn route(&mut self, key: &str, r: RouteFile) -> Option<Route> {
        let name = match r.name {
            Some(n)
                if !n.is_empty()
                    && n.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) =>
            {
                Some(Arc::<str>::from(n))
            }
            Some(n) => {
                self.problem(
                    format!("{key}.name"),
                    format!("`{n}` is not a usable name; use letters, digits, `-`, `_` or `.`"),
                );
                None
            }
            None => {
                self.problem(format!("{key}.name"), "missing; give the route a name");
                None
            }
        };
        let path = match r.path {
            Some(p) if p.starts_with('/') => match p.strip_suffix('*') {
                Some(prefix) if prefix.ends_with('/') && !prefix.contains('*') => {
                    Some(RoutePath::Prefix(prefix.to_string()))
                }
                None if !p.contains('*') => Some(RoutePath::Exact(p)),
                _ => {
                    self.problem(
                        format!("{key}.path"),
                        format!("`{p}`: `*` is only allowed as a final `/*`"),
                    );
                    None
                }
            },
            Some(p) => {
                self.problem(format!("{key}.path"), format!("`{p}` must start with `/`"));
                None
            }
            None => {
                self.problem(
                    format!("{key}.path"),
                    "missing; e.g. /webhooks/mediaconvert",
                );
                None
            }
        };
        let host = r.host.map(|h| h.to_ascii_lowercase());
        let upstream = self.upstream(&format!("{key}.upstream"), r.upstream.as_deref());
        let timeout = self.duration(&format!("{key}.timeout"), r.timeout, 9);
        let verifier = match r.verify {
            Some(v) => self.verifier(&format!("{key}.verify"), v),
            None => {
                self.problem(
                    format!("{key}.verify"),
                    "missing; every route verifies signatures (e.g. {scheme: mediaconvert, secrets: [...]})",
                );
                None
            }
        };
        let rate_limit = match r.rate_limit {
            Some(rl) => self.rate_limit(&format!("{key}.rate_limit"), rl),
            None => RateLimit::default(),
        };
        let schema = r
            .schema
            .and_then(|s| self.schema(&format!("{key}.schema"), s));
        let dedup = r.dedup.map(|d| self.dedup(&format!("{key}.dedup"), d));
        let delivery = self.delivery(&format!("{key}.delivery"), r.delivery, timeout);
        Some(Route {
            name: name?,
            path: path?,
            host,
            upstream: upstream?,
            timeout,
            verifier: verifier?,
            rate_limit,
            schema,
            dedup,
            delivery,
        })
    }

    fn rate_limit(&mut self, key: &str, f: RateLimitFile) -> RateLimit {
        if f.per_ip.is_none() && f.route.is_none() {
            self.problem(
                key,
                "empty; give per_ip and/or route, e.g. {per_ip: {rate: 20/s, burst: 40}}",
            );
        }
        let per_ip = f
            .per_ip
            .and_then(|p| self.per_ip(&format!("{key}.per_ip"), p));
        let route = f.route.and_then(|l| {
            let LimitFile { rate, burst } = l;
            self.limit(&format!("{key}.route"), rate, burst)
        });
        RateLimit { per_ip, route }
    }

    fn per_ip(&mut self, key: &str, p: PerIpFile) -> Option<PerIp> {
        let max_keys = self.count(&format!("{key}.max_keys"), p.max_keys, 100_000);
        let ipv6_prefix = match p.ipv6_prefix {
            None => 64,
            Some(Scalar::Int(n @ 1..=128)) => n as u8,
            Some(other) => {
                self.problem(
                    format!("{key}.ipv6_prefix"),
                    format!(
                        "`{}` is not a prefix length; use 1 to 128 (default 64)",
                        shown(&other)
                    ),
                );
                64
            }
        };
        let limit = self.limit(key, p.rate, p.burst)?;
        Some(PerIp {
            limit,
            max_keys,
            ipv6_prefix,
        })
    }

    fn limit(&mut self, key: &str, rate: Option<String>, burst: Option<Scalar>) -> Option<Limit> {
        let rate = match rate {
            None => {
                self.problem(format!("{key}.rate"), "missing; write e.g. 20/s, 600/m or 1000/h");
                None
            }
            Some(r) => Rate::parse(&r).or_else(|| {
                self.problem(
                    format!("{key}.rate"),
                    format!("`{r}` is not a rate; write a whole number of requests per s, m, h or a duration, e.g. 20/s, 600/m, 5/10s"),
                );
                None
            }),
        };
        let burst = match burst {
            None => rate.map(|r| r.count),
            Some(Scalar::Int(n)) if n > 0 => Some(
                NonZeroU32::new(u32::try_from(n).unwrap_or(u32::MAX)).unwrap_or(NonZeroU32::MIN),
            ),
            Some(other) => {
                self.problem(
                    format!("{key}.burst"),
                    format!(
                        "`{}` must be a whole number above 0 (default: the rate's number)",
                        shown(&other)
                    ),
                );
                None
            }
        };
        let limit = Limit {
            rate: rate?,
            burst: burst?,
        };
        if limit.quota().is_none() {
            self.problem(
                format!("{key}.rate"),
                "too fast to measure (more than one request a nanosecond); lower it",
            );
            return None;
        }
        Some(limit)
    }

    fn schema(&mut self, key: &str, f: SchemaFile) -> Option<Schema> {
        let mode = match f.mode.as_deref() {
            None | Some("enforce") => Mode::Enforce,
            Some("shadow") => Mode::Shadow,
            Some(other) => {
                self.problem(
                    format!("{key}.mode"),
                    format!("`{other}` is not a mode; use enforce or shadow"),
                );
                Mode::Enforce
            }
        };
        let given = [f.file.is_some(), f.builtin.is_some(), f.by_field.is_some()];
        let select = match given.iter().filter(|g| **g).count() {
            0 => {
                self.problem(key, "no schema; give one of file, builtin or by_field");
                None
            }
            1 => {
                if let Some(file) = &f.file {
                    self.schema_file(&format!("{key}.file"), file)
                        .map(Select::One)
                } else if let Some(name) = &f.builtin {
                    self.builtin(&format!("{key}.builtin"), name)
                        .map(Select::One)
                } else {
                    f.by_field
                        .and_then(|b| self.by_field(&format!("{key}.by_field"), b))
                }
            }
            _ => {
                self.problem(
                    key,
                    "several schemas; give exactly one of file, builtin or by_field",
                );
                None
            }
        };
        Some(Schema {
            mode,
            select: select?,
        })
    }

    fn builtin(&mut self, key: &str, name: &str) -> Option<jsonschema::Validator> {
        let Some(text) = schema::builtin(name) else {
            self.problem(
                key,
                format!(
                    "unknown builtin schema `{name}`; use one of: {}",
                    BUILTIN_NAMES.join(", ")
                ),
            );
            return None;
        };
        let doc: Value = serde_json::from_str(text)
            .map_err(|e| self.problem(key, format!("builtin schema `{name}` is broken: {e}")))
            .ok()?;
        schema::compile(&doc)
            .map_err(|e| self.problem(key, format!("builtin schema `{name}` is broken: {e}")))
            .ok()
    }

    /// Reads and compiles a schema file, relative to the config file's directory.
    fn schema_file(&mut self, key: &str, file: &str) -> Option<jsonschema::Validator> {
        let path = self.dir.join(file);
        let text = match self.read(&path) {
            Ok(t) => t,
            Err(e) => {
                self.problem(
                    key,
                    format!(
                        "cannot read schema file {} ({e}); paths are relative to the config file's directory",
                        path.display()
                    ),
                );
                return None;
            }
        };
        let doc: Value = match serde_json::from_slice(&text) {
            Ok(d) => d,
            Err(e) => {
                self.problem(
                    key,
                    format!("schema file {} is not JSON: {e}", path.display()),
                );
                return None;
            }
        };
        match schema::compile(&doc) {
            Ok(v) => Some(v),
            Err(e) => {
                self.problem(
                    key,
                    format!(
                        "schema file {} is not a usable JSON Schema: {e} ($ref may only point inside the file)",
                        path.display()
                    ),
                );
                None
            }
        }
    }

    fn by_field(&mut self, key: &str, b: ByFieldFile) -> Option<Select> {
        let pointer = match b.pointer {
            Some(p) if p.starts_with('/') => Some(p),
            Some(p) => {
                self.problem(
                    format!("{key}.pointer"),
                    format!("`{p}` is not a JSON pointer; write e.g. /type"),
                );
                None
            }
            None => {
                self.problem(
                    format!("{key}.pointer"),
                    "missing; the JSON pointer of the field that names the event, e.g. /type",
                );
                None
            }
        };
        if b.schemas.is_empty() {
            self.problem(
                format!("{key}.schemas"),
                "no schemas; map values of the field to schema files, e.g. {order.created: schemas/created.json}",
            );
        }
        let mut schemas = HashMap::new();
        let mut ok = true;
        for (value, file) in &b.schemas {
            match self.schema_file(&format!("{key}.schemas[\"{value}\"]"), file) {
                Some(v) => {
                    schemas.insert(value.clone(), v);
                }
                None => ok = false,
            }
        }
        let default = match &b.default {
            Some(file) => {
                let v = self.schema_file(&format!("{key}.default"), file);
                ok &= v.is_some();
                v
            }
            None => None,
        };
        (ok && !schemas.is_empty()).then_some(())?;
        Some(Select::ByField {
            pointer: pointer?,
            schemas,
            default,
        })
    }

    fn upstream(&mut self, key: &str, s: Option<&str>) -> Option<Upstream> {
        let Some(s) = s else {
            self.problem(key, "missing; e.g. http://127.0.0.1:3000/webhooks");
            return None;
        };
        let uri: http::Uri = match s.parse() {
            Ok(u) => u,
            Err(e) => {
                self.problem(
                    key,
                    format!("`{s}` is not a URL ({e}); e.g. http://127.0.0.1:3000/webhooks"),
                );
                return None;
            }
        };
        let (Some(scheme), Some(authority)) = (uri.scheme(), uri.authority()) else {
            self.problem(
                key,
                format!("`{s}` needs a scheme and host, e.g. http://127.0.0.1:3000/path"),
            );
            return None;
        };
        if scheme != &http::uri::Scheme::HTTP {
            self.problem(
                key,
                format!("`{s}`: only http:// upstreams are supported; hookgate sits next to the backend"),
            );
            return None;
        }
        if uri.query().is_some() {
            self.problem(
                key,
                format!(
                    "`{s}`: the upstream URL cannot carry a query; the sender's query is forwarded"
                ),
            );
            return None;
        }
        Some(Upstream {
            scheme: scheme.clone(),
            authority: authority.clone(),
            path: if uri.path().is_empty() {
                "/".into()
            } else {
                uri.path().into()
            },
        })
    }

    fn verifier(&mut self, key: &str, v: VerifyFile) -> Option<Verifier> {
        let scheme = match v.scheme.as_deref() {
            Some("hmac") => self.hmac_spec(key, &v).map(Scheme::Hmac),
            Some(name) => match Scheme::builtin(name) {
                Some(scheme) => {
                    let hmac_only = [
                        ("header", v.header.is_some()),
                        ("prefix", v.prefix.is_some()),
                        ("encoding", v.encoding.is_some()),
                        ("algorithm", v.algorithm.is_some()),
                        ("signed", v.signed.is_some()),
                        ("timestamp_header", v.timestamp_header.is_some()),
                    ];
                    for (k, _) in hmac_only.iter().filter(|(_, given)| *given) {
                        self.problem(
                            format!("{key}.{k}"),
                            format!("only for scheme hmac; scheme {name} fixes it, remove the key"),
                        );
                    }
                    Some(scheme)
                }
                None => {
                    self.problem(
                        format!("{key}.scheme"),
                        format!(
                            "unknown scheme `{name}`; use one of: {}",
                            SCHEME_NAMES.join(", ")
                        ),
                    );
                    None
                }
            },
            None => {
                self.problem(
                    format!("{key}.scheme"),
                    format!("missing; use one of: {}", SCHEME_NAMES.join(", ")),
                );
                None
            }
        };
        let keys = self.keys(key, &v, scheme.as_ref());
        let tolerance = self.duration(&format!("{key}.tolerance"), v.tolerance.clone(), 300);
        if tolerance < Duration::from_secs(1) {
            self.problem(
                format!("{key}.tolerance"),
                "must be at least 1s (timestamps are whole seconds); e.g. 5m",
            );
        }
        let public_url = self.public_url(key, v.public_url.as_deref(), scheme.as_ref());
        let mut verifier = Verifier::new(scheme?, keys?).with_tolerance(tolerance);
        if let Some(url) = public_url {
            verifier = verifier.with_public_url(url);
        }
        Some(verifier)
    }

    /// `verify.secrets` and `verify.public_keys`, each decoded for the scheme (a key that does
    /// not decode is a problem at its own path; the others are kept, so that the route is still
    /// built and checked against the rest of the config).
    fn keys(&mut self, key: &str, v: &VerifyFile, scheme: Option<&Scheme>) -> Option<Keys> {
        let mut keys = Keys::default();
        let mut ids = HashSet::new();
        let lists = [("secrets", &v.secrets), ("public_keys", &v.public_keys)];
        for (list, entries) in lists {
            for (i, s) in entries.iter().enumerate() {
                let skey = format!("{key}.{list}[{i}]");
                let Some(secret) = self.secret(&skey, s) else {
                    continue;
                };
                if !ids.insert(secret.id().to_string()) {
                    self.problem(
                        format!("{skey}.id"),
                        format!("duplicate key id `{}`", secret.id()),
                    );
                }
                let Some(scheme) = scheme else { continue };
                let added = if list == "secrets" {
                    scheme.add_secret(&mut keys, secret)
                } else {
                    scheme.add_public_key(&mut keys, secret)
                };
                if let Err(message) = added {
                    self.problem(skey, message);
                }
            }
        }
        let scheme = scheme?;
        if v.secrets.is_empty() && v.public_keys.is_empty() {
            let (k, message) = match (scheme.takes_secrets(), scheme.takes_public_keys()) {
                (false, _) => (
                    "public_keys",
                    format!(
                        "no public keys; scheme {} needs the sender's verification key as {{id, env: VAR}} (or file: / value:)",
                        scheme.name()
                    ),
                ),
                (true, true) => (
                    "secrets",
                    "no keys; add a whsec_ secret under secrets, or a whpk_ key under public_keys".to_string(),
                ),
                (true, false) => (
                    "secrets",
                    "no secrets; add at least one {id, env: VAR} (or file: / value:)".to_string(),
                ),
            };
            self.problem(format!("{key}.{k}"), message);
        }
        Some(keys)
    }

    /// `verify.public_url`: required by twilio (it signs the URL the sender called), refused
    /// elsewhere.
    fn public_url(
        &mut self,
        key: &str,
        url: Option<&str>,
        scheme: Option<&Scheme>,
    ) -> Option<String> {
        let key = format!("{key}.public_url");
        let twilio = matches!(scheme, Some(Scheme::Twilio));
        let Some(url) = url else {
            if twilio {
                self.problem(
                    key,
                    "missing; scheme twilio signs the URL the sender calls: give it as configured at Twilio, without the query, e.g. https://hooks.example.com/twilio/sms",
                );
            }
            return None;
        };
        if !twilio {
            if let Some(s) = scheme {
                self.problem(
                    key,
                    format!(
                        "only for scheme twilio; scheme {} does not sign the URL, remove the key",
                        s.name()
                    ),
                );
            }
            return None;
        }
        let parsed = url.parse::<http::Uri>().ok().filter(|u| {
            matches!(u.scheme_str(), Some("http" | "https")) && u.authority().is_some()
        });
        if parsed.is_none() || url.contains(['?', '#']) {
            self.problem(
                key,
                format!("`{url}` must be an absolute http(s) URL without query or fragment (the request's own query is appended), e.g. https://hooks.example.com/twilio/sms"),
            );
            return None;
        }
        Some(url.to_string())
    }

    fn hmac_spec(&mut self, key: &str, v: &VerifyFile) -> Option<HmacSpec> {
        let header = match v.header.as_deref() {
            Some(h) if http::HeaderName::from_bytes(h.as_bytes()).is_ok() => {
                Some(h.to_ascii_lowercase())
            }
            Some(h) => {
                self.problem(
                    format!("{key}.header"),
                    format!("`{h}` is not a valid header name"),
                );
                None
            }
            None => {
                self.problem(
                    format!("{key}.header"),
                    "missing; scheme hmac needs the signature header, e.g. X-Signature",
                );
                None
            }
        };
        let encoding = match v.encoding.as_deref() {
            None => Some(Encoding::Hex),
            Some(e) => Encoding::parse(e).or_else(|| {
                self.problem(
                    format!("{key}.encoding"),
                    format!("`{e}`: use hex or base64"),
                );
                None
            }),
        };
        let algorithm = match v.algorithm.as_deref() {
            None => Some(Algorithm::Sha256),
            Some(a) => Algorithm::parse(a).or_else(|| {
                self.problem(
                    format!("{key}.algorithm"),
                    format!("`{a}`: use sha256, sha512 or sha1"),
                );
                None
            }),
        };
        let signed = match v.signed.as_deref() {
            None => Some(Template::body()),
            Some(t) => Template::parse(t)
                .map_err(|e| self.problem(format!("{key}.signed"), e))
                .ok(),
        };
        let timestamp_header = match v.timestamp_header.as_deref() {
            None => Some(None),
            Some(h) => {
                let lower = h.to_ascii_lowercase();
                let signed_reads_it = signed
                    .as_ref()
                    .is_none_or(|t| t.headers().any(|n| n == lower));
                if http::HeaderName::from_bytes(h.as_bytes()).is_err() {
                    self.problem(
                        format!("{key}.timestamp_header"),
                        format!("`{h}` is not a valid header name"),
                    );
                    None
                } else if !signed_reads_it {
                    self.problem(
                        format!("{key}.timestamp_header"),
                        format!("`{h}` is not in `signed`, so anyone could change it; sign it, e.g. signed: \"{{header.{h}}}.{{body}}\""),
                    );
                    None
                } else {
                    Some(Some(lower))
                }
            }
        };
        Some(HmacSpec {
            header: header?,
            fallback_header: None,
            prefix: v.prefix.clone().unwrap_or_default(),
            encoding: encoding?,
            algorithm: algorithm?,
            signed: signed?,
            timestamp_header: timestamp_header?,
        })
    }

    fn secret(&mut self, key: &str, s: &SecretFile) -> Option<Secret> {
        let id = match s.id.as_deref() {
            Some(id) if !id.is_empty() => Some(id),
            _ => {
                self.problem(
                    format!("{key}.id"),
                    "missing; name the secret, e.g. current",
                );
                None
            }
        };
        let sources: Vec<SecretSource> = [
            s.env.clone().map(SecretSource::Env),
            s.file.clone().map(SecretSource::File),
            s.value.as_ref().map(|_| SecretSource::Value),
        ]
        .into_iter()
        .flatten()
        .collect();
        let source = match sources.as_slice() {
            [one] => one,
            [] => {
                self.problem(key, "no source; give exactly one of env, file or value");
                return None;
            }
            _ => {
                self.problem(
                    key,
                    "several sources; give exactly one of env, file or value",
                );
                return None;
            }
        };
        let loaded = match source {
            SecretSource::File(path) => {
                let read = self.read(path);
                secret::file_contents(path, read)
            }
            other => secret::load(other, s.value.as_deref()),
        };
        match loaded {
            Ok(bytes) => Some(Secret::new(id?, bytes)),
            Err(message) => {
                self.problem(key, message);
                None
            }
        }
    }

    fn addr(&mut self, key: &str, s: Option<&str>, default: &str) -> SocketAddr {
        let s = s.unwrap_or(default);
        s.parse().unwrap_or_else(|_| {
            self.problem(
                key,
                format!("`{s}` is not an address; use IP:PORT, e.g. {default}"),
            );
            SocketAddr::from(([127, 0, 0, 1], 0))
        })
    }

    fn duration(&mut self, key: &str, s: Option<String>, default_secs: u64) -> Duration {
        let Some(s) = s else {
            return Duration::from_secs(default_secs);
        };
        match humantime::parse_duration(&s) {
            Ok(d) if !d.is_zero() => d,
            _ => {
                self.problem(
                    key,
                    format!("`{s}` is not a duration; write e.g. 500ms, 9s, 5m or 24h"),
                );
                Duration::from_secs(default_secs)
            }
        }
    }

    fn size(&mut self, key: &str, s: Option<Scalar>, default: u64) -> u64 {
        match s {
            None => default,
            Some(Scalar::Int(n)) if n > 0 => n,
            Some(Scalar::Str(ref t)) if parse_size(t).is_some_and(|n| n > 0) => {
                parse_size(t).unwrap_or(default)
            }
            Some(other) => {
                let shown = match other {
                    Scalar::Int(n) => n.to_string(),
                    Scalar::Str(t) => t,
                };
                self.problem(
                    key,
                    format!(
                        "`{shown}` is not a size; write e.g. 512KiB, 1MiB or a number of bytes"
                    ),
                );
                default
            }
        }
    }

    fn count(&mut self, key: &str, s: Option<Scalar>, default: usize) -> usize {
        match s {
            None => default,
            Some(Scalar::Int(n)) if n > 0 => usize::try_from(n).unwrap_or(usize::MAX),
            Some(other) => {
                self.problem(
                    key,
                    format!("`{}` must be a whole number above 0", shown(&other)),
                );
                default
            }
        }
    }

    fn cidr(&mut self, key: &str, s: &str) -> Option<ipnet::IpNet> {
        s.parse::<ipnet::IpNet>()
            .ok()
            .or_else(|| s.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
            .or_else(|| {
                self.problem(key, format!("`{s}` is not a CIDR; write e.g. 10.0.0.0/8"));
                None
            })
    }
}

/// A scalar as the operator wrote it, for messages.
fn shown(s: &Scalar) -> String {
    match s {
        Scalar::Int(n) => n.to_string(),
        Scalar::Str(t) => t.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, Vec<Problem>> {
        super::parse(text, Path::new("."))
    }

    fn problems(yaml: &str) -> Vec<String> {
        match parse(yaml) {
            Ok(_) => vec![],
            Err(p) => p.into_iter().map(|p| p.to_string()).collect(),
        }
    }

    const ROUTE: &str = "routes:\n  - name: a\n    path: /a\n    upstream: http://127.0.0.1:1/x\n    verify: {scheme: mediaconvert, secrets: [{id: k, value: s}]}\n";

    #[test]
    fn minimal_config_loads_with_defaults() {
        let c = parse(ROUTE).unwrap();
        assert_eq!(c.server.max_body_bytes, 1 << 20);
        assert_eq!(c.routes[0].timeout, Duration::from_secs(9));
        assert_eq!(c.forward.header_prefix, "X-Webhook-");
    }

    /// Found by fuzzing: a document that is one string had its `${` problem under an empty key.
    #[test]
    fn every_problem_names_a_key() {
        for text in ["se${x", "${HOOKGATE_TEST_UNSET_VAR_7}", "[${x", "\"\": ${"] {
            let p = problems(text);
            assert!(!p.is_empty(), "{text:?}");
            assert!(
                p.iter().all(|p| !p.starts_with(':') && !p.starts_with(' ')),
                "{text:?}: {p:?}"
            );
        }
        assert!(problems("se${x")
            .iter()
            .any(|p| p.starts_with("(file): unclosed")));
    }

    /// YAML 1.2 booleans: `true` and `false` only. A YAML 1.1 spelling is a string, refused
    /// where a boolean is expected.
    #[test]
    fn booleans_are_yaml_1_2() {
        for (text, watch) in [("true", true), ("False", false), ("FALSE", false)] {
            let c = parse(&format!("{ROUTE}reload: {{watch: {text}}}\n")).unwrap();
            assert_eq!(c.reload.watch, watch, "{text}");
        }
        for text in ["yes", "no", "on", "off", "y", "n"] {
            let p = problems(&format!("{ROUTE}reload: {{watch: {text}}}\n"));
            assert!(
                p.iter()
                    .any(|p| p.starts_with("reload.watch:") && p.contains("expected a boolean")),
                "{text}: {p:?}"
            );
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512KiB"), Some(512 * 1024));
        assert_eq!(parse_size("1MiB"), Some(1 << 20));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("1 MiB"), Some(1 << 20));
        assert_eq!(parse_size("MiB"), None);
        assert_eq!(parse_size("1XB"), None);
    }

    #[test]
    fn unknown_keys_are_all_reported() {
        let p = problems(&format!("{ROUTE}servr: {{}}\nadmin: {{lsten: x}}\n"));
        assert!(
            p.iter().any(|p| p.starts_with("servr: unknown key")),
            "{p:?}"
        );
        assert!(
            p.iter().any(|p| p.starts_with("admin.lsten: unknown key")),
            "{p:?}"
        );
    }

    #[test]
    fn every_problem_at_once() {
        let p = problems(
            "server: {max_body_bytes: lots, header_timeout: soon}\nroutes:\n  - name: a\n    path: nope\n    upstream: ftp://x\n    verify: {scheme: rot13, secrets: [{id: k, env: HOOKGATE_SURELY_UNSET}]}\n",
        );
        for key in [
            "server.max_body_bytes:",
            "server.header_timeout:",
            "routes[0].path:",
            "routes[0].upstream:",
            "routes[0].verify.scheme:",
            "routes[0].verify.secrets[0]:",
        ] {
            assert!(p.iter().any(|p| p.starts_with(key)), "{key} not in {p:?}");
        }
    }

    #[test]
    fn env_expansion() {
        std::env::set_var("HOOKGATE_TEST_UPSTREAM_PORT", "4567");
        let c = parse(&ROUTE.replace("1/x", "${HOOKGATE_TEST_UPSTREAM_PORT}/x")).unwrap();
        assert_eq!(c.routes[0].upstream.authority.port_u16(), Some(4567));
        let p = problems(&ROUTE.replace("1/x", "${HOOKGATE_SURELY_UNSET_2}/x"));
        assert!(
            p[0].starts_with("routes[0].upstream: environment variable HOOKGATE_SURELY_UNSET_2"),
            "{p:?}"
        );
    }

    #[test]
    fn dedup_and_delivery_defaults() {
        let c = parse(&format!("{ROUTE}    dedup: {{}}\n")).unwrap();
        let r = &c.routes[0];
        assert_eq!(c.store, StoreConfig::Memory);
        let d = r.dedup.as_ref().unwrap();
        assert!(d.key.is_none());
        assert_eq!(d.ttl, Duration::from_secs(24 * 3600));
        assert_eq!(r.delivery.mode, DeliveryMode::Sync);
        assert_eq!(r.delivery.max_attempts, 12);
        assert_eq!(r.delivery.concurrency, 16);
        assert_eq!(r.delivery.deadline, Duration::from_secs(8));
        assert_eq!(r.delivery.max_age, Duration::from_secs(72 * 3600));
        assert_eq!(r.delivery.retry_on, RetryOn::default());
        assert!(parse(ROUTE).unwrap().routes[0].dedup.is_none());
    }

    #[test]
    fn queue_config_loads() {
        let c = parse(&format!(
            "store: {{kind: redb, path: /tmp/x.redb}}\n{ROUTE}    dedup: {{key: \"{{header.X-Id}}\", ttl: 1h}}\n    delivery: {{mode: queue, concurrency: 2, max_attempts: 3, max_age: 1h, retry_on: [503, 4xx], backoff: {{base: 10ms, max: 1s}}}}\n"
        ))
        .unwrap();
        let d = &c.routes[0].delivery;
        assert_eq!(
            c.store,
            StoreConfig::Redb {
                path: "/tmp/x.redb".into()
            }
        );
        assert_eq!(d.mode, DeliveryMode::Queue);
        assert_eq!(
            d.retry_on,
            RetryOn(vec![StatusMatch::Exact(503), StatusMatch::Class(4)])
        );
        assert_eq!(d.backoff.base, Duration::from_millis(10));
        assert_eq!(d.max_attempts, 3);
    }

    #[test]
    fn dedup_and_delivery_problems_are_named() {
        let p = problems(&format!(
            "store: {{kind: nosql, url: redis://x}}\n{ROUTE}    dedup: {{key: \"{{nope}}\", ttl: forever, extra: 1}}\n    delivery: {{mode: queue, deadline: 20s, concurrency: 0, max_attempts: 0, retry_on: [200x, 503], backoff: {{base: 2m, max: 1m}}}}\n"
        ));
        for key in [
            "store.kind:",
            "store.url:",
            "routes[0].dedup.key:",
            "routes[0].dedup.ttl:",
            "routes[0].dedup.extra: unknown key",
            "routes[0].delivery.concurrency:",
            "routes[0].delivery.max_attempts:",
            "routes[0].delivery.retry_on[0]:",
            "routes[0].delivery.backoff.base:",
            "routes[0].delivery.mode: queue mode",
        ] {
            assert!(p.iter().any(|p| p.starts_with(key)), "{key} not in {p:?}");
        }
        let p = problems(&format!(
            "store: {{kind: redb}}\n{ROUTE}    delivery: {{mode: hybrid, deadline: 9s}}\n"
        ));
        assert!(
            p.iter()
                .any(|p| p.starts_with("routes[0].delivery.deadline:")),
            "{p:?}"
        );
        let p = problems(&format!("store: {{kind: memory, path: x}}\n{ROUTE}"));
        assert!(p.iter().any(|p| p.starts_with("store.path:")), "{p:?}");
    }

    #[test]
    fn redis_store_config() {
        let c = parse(&format!(
            "store: {{kind: redis, url: \"rediss://:pw@cache:6380/2\"}}\n{ROUTE}    dedup: {{}}\n"
        ))
        .unwrap();
        let StoreConfig::Redis { url, prefix, lease } = &c.store else {
            panic!("{:?}", c.store);
        };
        assert_eq!(url.0, "rediss://:pw@cache:6380/2");
        assert_eq!(prefix, "hookgate:");
        assert_eq!(*lease, Duration::from_secs(30));
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
                "store.lease: `0s` is not a duration",
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
        ] {
            let p = problems(&format!("store: {store}\n{ROUTE}"));
            assert!(p.iter().any(|p| p.starts_with(key)), "{key} not in {p:?}");
        }
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

    #[test]
    fn secrets_never_in_problems() {
        let p = problems("routes:\n  - name: a\n    path: /a\n    upstream: http://127.0.0.1:1/x\n    verify: {scheme: nope, secrets: [{id: k, value: topsecretvalue}]}\n");
        assert!(!p.is_empty());
        assert!(p.iter().all(|p| !p.contains("topsecretvalue")));
    }

    #[test]
    fn rate_limit_defaults() {
        let c = parse(&format!(
            "{ROUTE}    rate_limit: {{per_ip: {{rate: 600/m}}, route: {{rate: 20/s, burst: 40}}}}\n"
        ))
        .unwrap();
        let rl = c.routes[0].rate_limit;
        let p = rl.per_ip.unwrap();
        assert_eq!(p.limit.rate.count.get(), 600);
        assert_eq!(p.limit.rate.per, Duration::from_secs(60));
        assert_eq!(
            p.limit.burst.get(),
            600,
            "burst defaults to the rate's number"
        );
        assert_eq!(p.max_keys, 100_000);
        assert_eq!(p.ipv6_prefix, 64);
        let r = rl.route.unwrap();
        assert_eq!((r.rate.count.get(), r.burst.get()), (20, 40));
        assert!(parse(ROUTE).unwrap().routes[0].rate_limit.is_empty());
    }

    #[test]
    fn rate_limit_problems_all_at_once() {
        let p = problems(&format!(
            "{ROUTE}    rate_limit: {{per_ip: {{rate: 20/fortnight, burst: 0, max_keys: 0, ipv6_prefix: 129}}, route: {{burst: 3, max_keys: 3}}}}\n"
        ));
        for key in [
            "routes[0].rate_limit.per_ip.rate:",
            "routes[0].rate_limit.per_ip.burst:",
            "routes[0].rate_limit.per_ip.max_keys:",
            "routes[0].rate_limit.per_ip.ipv6_prefix:",
            "routes[0].rate_limit.route.rate: missing",
            "routes[0].rate_limit.route.max_keys: unknown key",
        ] {
            assert!(p.iter().any(|p| p.starts_with(key)), "{key} not in {p:?}");
        }
        let p = problems(&format!("{ROUTE}    rate_limit: {{}}\n"));
        assert!(p[0].starts_with("routes[0].rate_limit: empty"), "{p:?}");
        let p = problems(&format!(
            "{ROUTE}    rate_limit: {{route: {{rate: 4000000000/s}}}}\n"
        ));
        assert!(
            p[0].starts_with("routes[0].rate_limit.route.rate:"),
            "{p:?}"
        );
        let p = problems(&format!(
            "{ROUTE}    rate_limit: {{route: {{rate: 2000000000/s}}}}\n"
        ));
        assert!(p[0].contains("too fast"), "{p:?}");
    }

    #[test]
    fn schema_files_are_read_from_the_config_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("schemas")).unwrap();
        std::fs::write(dir.path().join("schemas/s.json"), r#"{"required": ["a"]}"#).unwrap();
        let yaml = format!("{ROUTE}    schema: {{file: schemas/s.json, mode: shadow}}\n");
        let c = super::parse(&yaml, dir.path()).unwrap();
        let s = c.routes[0].schema.as_ref().unwrap();
        assert_eq!(s.mode, Mode::Shadow);
        assert!(s.check(Some(&serde_json::json!({"a": 1}))).is_ok());
        assert!(s.check(Some(&serde_json::json!({}))).is_err());
        let p = problems(&yaml);
        assert!(
            p[0].starts_with("routes[0].schema.file: cannot read"),
            "{p:?}"
        );
    }

    fn verify_problems(verify: &str) -> Vec<String> {
        problems(&format!(
            "routes:\n  - name: a\n    path: /a\n    upstream: http://127.0.0.1:1/x\n    verify: {verify}\n"
        ))
    }

    fn has(p: &[String], prefix: &str) -> bool {
        p.iter().any(|l| l.starts_with(prefix))
    }

    #[test]
    fn every_builtin_scheme_loads() {
        for name in SCHEME_NAMES.iter().filter(|n| **n != "hmac") {
            let keys = match *name {
                "sendgrid" => "public_keys: [{id: k, value: \"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe62gw+2fNNRaINXvVpiglSI8eNEc6wEA3F+g==\"}]",
                "standard-webhooks" | "svix" => "secrets: [{id: k, value: whsec_QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZX}]",
                _ => "secrets: [{id: k, value: s}]",
            };
            let url = if *name == "twilio" {
                ", public_url: \"https://h.example/t\""
            } else {
                ""
            };
            let p = verify_problems(&format!("{{scheme: {name}, {keys}{url}}}"));
            assert!(p.is_empty(), "{name}: {p:?}");
        }
    }

    #[test]
    fn tolerance_is_per_route_with_a_default() {
        let c = parse(ROUTE).unwrap();
        assert_eq!(c.routes[0].verifier.tolerance(), Duration::from_secs(300));
        let c = parse(&ROUTE.replace("secrets:", "tolerance: 90s, secrets:")).unwrap();
        assert_eq!(c.routes[0].verifier.tolerance(), Duration::from_secs(90));
        let p = problems(&ROUTE.replace("secrets:", "tolerance: 500ms, secrets:"));
        assert!(
            has(&p, "routes[0].verify.tolerance: must be at least 1s"),
            "{p:?}"
        );
        let p = problems(&ROUTE.replace("secrets:", "tolerance: soon, secrets:"));
        assert!(has(&p, "routes[0].verify.tolerance:"), "{p:?}");
    }

    #[test]
    fn bad_keys_name_their_path_and_never_their_value() {
        let p = verify_problems(
            "{scheme: standard-webhooks, secrets: [{id: a, value: whsec_%%notbase64%%}], public_keys: [{id: b, value: whpk_AAAA}]}",
        );
        assert!(
            has(
                &p,
                "routes[0].verify.secrets[0]: not a Standard Webhooks secret"
            ),
            "{p:?}"
        );
        assert!(
            has(
                &p,
                "routes[0].verify.public_keys[0]: not a Standard Webhooks public key"
            ),
            "{p:?}"
        );
        assert!(p.iter().all(|l| !l.contains("notbase64")), "{p:?}");
        let p = verify_problems("{scheme: standard-webhooks, secrets: [{id: a, value: whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=}]}");
        assert!(
            has(&p, "routes[0].verify.secrets[0]: this is a v1a public key"),
            "{p:?}"
        );
        let p = verify_problems("{scheme: sendgrid, public_keys: [{id: a, value: bm90IGEga2V5}]}");
        assert!(
            has(
                &p,
                "routes[0].verify.public_keys[0]: not a P-256 public key"
            ),
            "{p:?}"
        );
        let p = verify_problems("{scheme: sendgrid, secrets: [{id: a, value: s}]}");
        assert!(
            has(
                &p,
                "routes[0].verify.secrets[0]: scheme sendgrid verifies with a public key"
            ),
            "{p:?}"
        );
        let p = verify_problems("{scheme: sendgrid}");
        assert!(
            has(&p, "routes[0].verify.public_keys: no public keys"),
            "{p:?}"
        );
        let p = verify_problems(
            "{scheme: github, secrets: [{id: a, value: s}], public_keys: [{id: b, value: k}]}",
        );
        assert!(
            has(
                &p,
                "routes[0].verify.public_keys[0]: scheme github verifies with shared secrets"
            ),
            "{p:?}"
        );
        let p = verify_problems("{scheme: svix, secrets: [{id: a, value: whsec_QUFB}], public_keys: [{id: a, value: whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=}]}");
        assert!(
            has(&p, "routes[0].verify.public_keys[0].id: duplicate key id"),
            "{p:?}"
        );
    }

    #[test]
    fn twilio_needs_an_absolute_public_url_without_query() {
        let base = "{scheme: twilio, secrets: [{id: a, value: s}]";
        let p = verify_problems(&format!("{base}}}"));
        assert!(has(&p, "routes[0].verify.public_url: missing"), "{p:?}");
        for bad in [
            "/twilio",
            "ftp://h/x",
            "https://h/x?tenant=a",
            "https://h/x#f",
        ] {
            let p = verify_problems(&format!("{base}, public_url: \"{bad}\"}}"));
            assert!(has(&p, "routes[0].verify.public_url: `"), "{bad}: {p:?}");
        }
        let c = parse(&format!(
            "routes:\n  - name: a\n    path: /a\n    upstream: http://127.0.0.1:1/x\n    verify: {base}, public_url: \"https://h.example/t\"}}\n"
        ))
        .unwrap();
        assert_eq!(
            c.routes[0].verifier.public_url(),
            Some("https://h.example/t")
        );
        let p = verify_problems(
            "{scheme: github, public_url: \"https://h/x\", secrets: [{id: a, value: s}]}",
        );
        assert!(
            has(&p, "routes[0].verify.public_url: only for scheme twilio"),
            "{p:?}"
        );
    }

    #[test]
    fn hmac_timestamp_header_must_be_signed() {
        let p = verify_problems(
            "{scheme: hmac, header: X-Sig, timestamp_header: X-Ts, secrets: [{id: a, value: s}]}",
        );
        assert!(
            has(
                &p,
                "routes[0].verify.timestamp_header: `X-Ts` is not in `signed`"
            ),
            "{p:?}"
        );
        let p = verify_problems("{scheme: hmac, header: X-Sig, signed: \"{header.X-Ts}.{body}\", timestamp_header: X-Ts, secrets: [{id: a, value: s}]}");
        assert!(p.is_empty(), "{p:?}");
        let p = verify_problems(
            "{scheme: stripe, timestamp_header: X-Ts, secrets: [{id: a, value: s}]}",
        );
        assert!(
            has(
                &p,
                "routes[0].verify.timestamp_header: only for scheme hmac"
            ),
            "{p:?}"
        );
    }
}
