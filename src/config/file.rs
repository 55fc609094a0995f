//! The YAML file as written by the operator: a loose serde mirror.
//!
//! Values that need interpretation (durations, sizes, URLs, CIDRs) stay strings here, so one
//! pass in `validate.rs` can check them all and report every problem at once with its key path.
//! Unknown keys are collected by `serde_ignored` in `mod.rs`, not refused by serde, for the same
//! reason.

use serde::Deserialize;

/// A scalar the operator may write bare or quoted: `1048576`, `1MiB`, `9s`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Int(u64),
    Str(String),
}

/// The whole file.
#[derive(Debug, Default, Deserialize)]
pub struct FileConfig {
    #[serde(default)]
    pub server: ServerFile,
    #[serde(default)]
    pub admin: AdminFile,
    #[serde(default)]
    pub log: LogFile,
    #[serde(default)]
    pub store: StoreFile,
    #[serde(default)]
    pub forward: ForwardFile,
    #[serde(default)]
    pub reload: ReloadFile,
    #[serde(default)]
    pub routes: Vec<RouteFile>,
    #[serde(default)]
    pub journal: JournalFile,
}

/// `journal`: what is kept of each request, and for how long.
#[derive(Debug, Default, Deserialize)]
pub struct JournalFile {
    pub max_events: Option<Scalar>,
    pub max_age: Option<String>,
    pub capture_body: Option<bool>,
    pub max_body_bytes: Option<Scalar>,
    pub max_refusals_per_second: Option<Scalar>,
}

#[derive(Debug, Default, Deserialize)]
pub struct StoreFile {
    pub kind: Option<String>,
    pub path: Option<String>,
    pub url: Option<String>,
    pub prefix: Option<String>,
    pub lease: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ServerFile {
    pub listen: Option<String>,
    pub max_body_bytes: Option<Scalar>,
    pub header_timeout: Option<String>,
    pub body_timeout: Option<String>,
    pub max_connections: Option<Scalar>,
    pub workers: Option<Scalar>,
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    pub shutdown_grace: Option<String>,
    pub tls: Option<TlsFile>,
}

/// `server.tls`: PEM files, read at start-up and again on every reload.
#[derive(Debug, Default, Deserialize)]
pub struct TlsFile {
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
}

/// `reload`: how changes to the config and the files it reads are noticed.
#[derive(Debug, Default, Deserialize)]
pub struct ReloadFile {
    pub watch: Option<bool>,
    pub interval: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct AdminFile {
    pub listen: Option<String>,
    /// Bearer token for `/api/*` and the dead-letter endpoints.
    pub token: Option<SecretFile>,
}

#[derive(Debug, Default, Deserialize)]
pub struct LogFile {
    pub format: Option<String>,
    pub level: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ForwardFile {
    pub header_prefix: Option<String>,
    pub attestation_secret: Option<SecretFile>,
}

/// `{id, env: VAR}`, `{id, file: PATH}` or `{id, value: "..."}`.
#[derive(Debug, Default, Deserialize)]
pub struct SecretFile {
    pub id: Option<String>,
    pub env: Option<String>,
    pub file: Option<String>,
    pub value: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RouteFile {
    pub name: Option<String>,
    pub path: Option<String>,
    pub host: Option<String>,
    pub upstream: Option<String>,
    pub timeout: Option<String>,
    pub verify: Option<VerifyFile>,
    pub rate_limit: Option<RateLimitFile>,
    pub schema: Option<SchemaFile>,
    pub dedup: Option<DedupFile>,
    pub delivery: Option<DeliveryFile>,
}

#[derive(Debug, Default, Deserialize)]
pub struct DedupFile {
    pub key: Option<String>,
    pub ttl: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct DeliveryFile {
    pub mode: Option<String>,
    pub deadline: Option<String>,
    pub concurrency: Option<Scalar>,
    pub max_attempts: Option<Scalar>,
    pub max_age: Option<String>,
    pub retry_on: Option<Vec<Scalar>>,
    pub backoff: Option<BackoffFile>,
}

#[derive(Debug, Default, Deserialize)]
pub struct BackoffFile {
    pub base: Option<String>,
    pub max: Option<String>,
}

/// `rate_limit: {per_ip: {...}, route: {...}}`.
#[derive(Debug, Default, Deserialize)]
pub struct RateLimitFile {
    pub per_ip: Option<PerIpFile>,
    pub route: Option<LimitFile>,
}

/// `{rate: 20/s, burst: 40}`.
#[derive(Debug, Default, Deserialize)]
pub struct LimitFile {
    pub rate: Option<String>,
    pub burst: Option<Scalar>,
}

/// The per-IP limit also bounds how many addresses it remembers.
#[derive(Debug, Default, Deserialize)]
pub struct PerIpFile {
    pub rate: Option<String>,
    pub burst: Option<Scalar>,
    pub max_keys: Option<Scalar>,
    pub ipv6_prefix: Option<Scalar>,
}

/// `schema: {file | builtin | by_field, mode}`.
#[derive(Debug, Default, Deserialize)]
pub struct SchemaFile {
    pub file: Option<String>,
    pub builtin: Option<String>,
    pub by_field: Option<ByFieldFile>,
    pub mode: Option<String>,
}

/// `{pointer: /type, schemas: {order.created: schemas/created.json}, default: schemas/any.json}`.
#[derive(Debug, Default, Deserialize)]
pub struct ByFieldFile {
    pub pointer: Option<String>,
    #[serde(default)]
    pub schemas: std::collections::BTreeMap<String, String>,
    pub default: Option<String>,
}

/// One struct for every scheme: which keys a scheme accepts is checked in `validate.rs`, so a
/// key given to the wrong scheme gets a message that says so.
#[derive(Debug, Default, Deserialize)]
pub struct VerifyFile {
    pub scheme: Option<String>,
    #[serde(default)]
    pub secrets: Vec<SecretFile>,
    /// Asymmetric schemes (sendgrid, standard-webhooks/svix v1a): public keys, same form.
    #[serde(default)]
    pub public_keys: Vec<SecretFile>,
    pub tolerance: Option<String>,
    /// Twilio: the URL the sender calls.
    pub public_url: Option<String>,
    /// Generic `hmac` scheme.
    pub header: Option<String>,
    pub prefix: Option<String>,
    pub encoding: Option<String>,
    pub algorithm: Option<String>,
    pub signed: Option<String>,
    pub timestamp_header: Option<String>,
}
