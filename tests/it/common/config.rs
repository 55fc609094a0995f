//! Config files for the gateway under test, built as data.
//!
//! A config is a [`serde_json::Value`] written out as JSON, which is valid YAML: nothing depends
//! on indentation, and a test changes a piece with `config["server"]["tls"] = ...` or
//! [`Set::with`] rather than by editing text. Tests about the YAML text itself (syntax errors,
//! comments, `${VAR}` expansion) write their own text; [`ConfigText`] takes both.

use std::path::Path;

pub use serde_json::{json, Value};

/// What can be written as a config file: YAML text as it is, or a [`Value`] as JSON.
pub trait ConfigText {
    fn config_text(&self) -> String;
}

impl ConfigText for str {
    fn config_text(&self) -> String {
        self.to_string()
    }
}

impl ConfigText for String {
    fn config_text(&self) -> String {
        self.clone()
    }
}

impl ConfigText for Value {
    fn config_text(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("config as JSON");
        text.push('\n');
        text
    }
}

impl<T: ConfigText + ?Sized> ConfigText for &T {
    fn config_text(&self) -> String {
        (**self).config_text()
    }
}

/// Builder-style changes to a mapping.
pub trait Set {
    /// Sets `key` (replacing it).
    fn with(self, key: &str, value: impl Into<Value>) -> Value;
    /// Sets every key of the mapping `extra` (`null` changes nothing).
    fn merge(self, extra: Value) -> Value;
}

impl Set for Value {
    fn with(mut self, key: &str, value: impl Into<Value>) -> Value {
        self[key] = value.into();
        self
    }

    fn merge(mut self, extra: Value) -> Value {
        match extra {
            Value::Null => {}
            Value::Object(m) => {
                for (k, v) in m {
                    self[k.as_str()] = v;
                }
            }
            other => panic!("merge: not a mapping: {other}"),
        }
        self
    }
}

/// The route list of [`config`]: one route, several, or a JSON array of them.
pub trait Routes {
    fn routes(self) -> Vec<Value>;
}

impl Routes for Value {
    fn routes(self) -> Vec<Value> {
        match self {
            Value::Array(a) => a,
            one => vec![one],
        }
    }
}

impl Routes for &Value {
    fn routes(self) -> Vec<Value> {
        self.clone().routes()
    }
}

impl Routes for Vec<Value> {
    fn routes(self) -> Vec<Value> {
        self
    }
}

impl Routes for &Vec<Value> {
    fn routes(self) -> Vec<Value> {
        self.clone()
    }
}

impl Routes for &[Value] {
    fn routes(self) -> Vec<Value> {
        self.to_vec()
    }
}

impl<const N: usize> Routes for [Value; N] {
    fn routes(self) -> Vec<Value> {
        self.into()
    }
}

impl<const N: usize> Routes for &[Value; N] {
    fn routes(self) -> Vec<Value> {
        self.to_vec()
    }
}

/// Server-level knobs for [`config`].
#[derive(Clone, Debug)]
pub struct Opts {
    pub max_body_bytes: String,
    pub header_timeout: String,
    pub body_timeout: String,
    pub max_connections: u32,
    pub shutdown_grace: String,
    pub log_level: String,
    pub header_prefix: String,
    /// `forward.attestation_secret`, e.g. a [`secret_value`].
    pub attestation_secret: Option<Value>,
    /// `server.trusted_proxies` CIDRs.
    pub trusted_proxies: Vec<String>,
    /// The `store` mapping, e.g. `{kind: redb, path: ...}`; none: the default store.
    pub store: Option<Value>,
    /// `server.workers`; 0 leaves the default (one per CPU).
    pub workers: u32,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            max_body_bytes: "64KiB".into(),
            header_timeout: "5s".into(),
            body_timeout: "5s".into(),
            max_connections: 100,
            shutdown_grace: "5s".into(),
            log_level: "info".into(),
            header_prefix: "X-Webhook-".into(),
            attestation_secret: None,
            trusted_proxies: Vec::new(),
            workers: 0,
            store: None,
        }
    }
}

/// A size as YAML would read it written bare: a number when it is one (`1048576`), else a
/// string (`64KiB`).
fn size(s: &str) -> Value {
    s.parse::<u64>().map_or_else(|_| json!(s), |n| json!(n))
}

/// A whole config: both listeners on ephemeral ports, JSON logs, and `routes` (see [`route`]).
pub fn config(opts: &Opts, routes: impl Routes) -> Value {
    let mut server = json!({
        "listen": "127.0.0.1:0",
        "max_body_bytes": size(&opts.max_body_bytes),
        "header_timeout": opts.header_timeout,
        "body_timeout": opts.body_timeout,
        "max_connections": opts.max_connections,
        "shutdown_grace": opts.shutdown_grace,
        "trusted_proxies": opts.trusted_proxies,
    });
    if opts.workers > 0 {
        server["workers"] = json!(opts.workers);
    }
    let mut forward = json!({ "header_prefix": opts.header_prefix });
    if let Some(secret) = &opts.attestation_secret {
        forward["attestation_secret"] = secret.clone();
    }
    let mut c = json!({
        "server": server,
        "admin": { "listen": "127.0.0.1:0" },
        "log": { "format": "json", "level": opts.log_level },
        "forward": forward,
        "routes": routes.routes(),
    });
    if let Some(store) = &opts.store {
        c["store"] = store.clone();
    }
    c
}

/// A `{kind: redb, path}` store mapping for [`Opts::store`].
pub fn redb_store(path: &Path) -> Value {
    json!({ "kind": "redb", "path": path.display().to_string() })
}

/// One route with a 2 s upstream timeout; `verify` as made by [`verify`] or [`mc_verify`].
/// A MediaConvert route at `/hooks/<name>` with one key `k1`, plus `extra` keys.
pub fn hooks_route(name: &str, upstream: &str, secret: &str, extra: Value) -> Value {
    route(
        name,
        &format!("/hooks/{name}"),
        upstream,
        mc_verify(&[("k1", secret)]),
    )
    .merge(extra)
}

pub fn route(name: &str, path: &str, upstream: &str, verify: Value) -> Value {
    route_with_timeout(name, path, upstream, "2s", verify)
}

/// One route with an explicit upstream timeout.
pub fn route_with_timeout(
    name: &str,
    path: &str,
    upstream: &str,
    timeout: &str,
    verify: Value,
) -> Value {
    json!({
        "name": name,
        "path": path,
        "upstream": upstream,
        "timeout": timeout,
        "verify": verify,
    })
}

/// An inline `{id, value}` secret.
pub fn secret_value(id: &str, value: &str) -> Value {
    json!({ "id": id, "value": value })
}

/// An `{id, env}` secret.
pub fn secret_env(id: &str, var: &str) -> Value {
    json!({ "id": id, "env": var })
}

/// An `{id, file}` secret.
pub fn secret_file(id: &str, path: &Path) -> Value {
    json!({ "id": id, "file": path.display().to_string() })
}

/// A `verify` mapping for a built-in scheme with the given secrets; more keys with
/// [`Set::with`].
pub fn verify(scheme: &str, secrets: &[Value]) -> Value {
    json!({ "scheme": scheme, "secrets": secrets })
}

/// A `verify` mapping for the mediaconvert scheme with `{id, value}` secrets.
pub fn mc_verify(secrets: &[(&str, &str)]) -> Value {
    let s: Vec<Value> = secrets.iter().map(|(i, v)| secret_value(i, v)).collect();
    verify("mediaconvert", &s)
}
