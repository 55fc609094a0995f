//! The YAML file as written by the operator: a loose serde mirror.
//!
//! Reading the mirror never fails. Every leaf is whatever YAML value was written there
//! (`serde_json::Value`), and every mapping or list is a [`Section`] or [`List`] that keeps a
//! value of another type instead of refusing it, so `load/` can check every value's type and
//! meaning in one pass and report every problem at once with its key path. Unknown keys are
//! collected by `serde_ignored` in `load/mod.rs`, not refused by serde, for the same reason.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize as DeriveDeserialize;
pub use serde_json::Value;

/// A leaf: any value, or none. `null` (a key with nothing after it) is the same as no key.
pub type Leaf = Option<Value>;

/// A mapping read into `T`, or the value written where the mapping was expected.
#[derive(Debug)]
pub enum Section<T> {
    Given(T),
    Wrong(Value),
}

/// A list of `T`, or the value written where the list was expected.
#[derive(Debug)]
pub enum List<T> {
    Given(Vec<T>),
    Wrong(Value),
}

/// What a visitor of a mapping or a list makes of a scalar: the value, kept for the problem.
macro_rules! keep_scalars {
    ($wrong:path) => {
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok($wrong(Value::Bool(v)))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok($wrong(Value::from(v)))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok($wrong(Value::from(v)))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok($wrong(Value::from(v)))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok($wrong(Value::String(v.to_string())))
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            Ok($wrong(Value::String(v)))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($wrong(Value::Null))
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($wrong(Value::Null))
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            Value::deserialize(d).map($wrong)
        }
    };
}

struct SectionVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for SectionVisitor<T> {
    type Value = Section<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map)).map(Section::Given)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Value::deserialize(SeqAccessDeserializer::new(seq)).map(Section::Wrong)
    }

    keep_scalars!(Section::Wrong);
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Section<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SectionVisitor(PhantomData))
    }
}

struct ListVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ListVisitor<T> {
    type Value = List<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Vec::<T>::deserialize(SeqAccessDeserializer::new(seq)).map(List::Given)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Value::deserialize(MapAccessDeserializer::new(map)).map(List::Wrong)
    }

    keep_scalars!(List::Wrong);
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ListVisitor(PhantomData))
    }
}

/// The whole file.
#[derive(Debug, Default, DeriveDeserialize)]
pub struct FileConfig {
    pub server: Option<Section<ServerFile>>,
    pub admin: Option<Section<AdminFile>>,
    pub log: Option<Section<LogFile>>,
    pub store: Option<Section<StoreFile>>,
    pub forward: Option<Section<ForwardFile>>,
    pub reload: Option<Section<ReloadFile>>,
    pub routes: Option<List<Section<RouteFile>>>,
    pub journal: Option<Section<JournalFile>>,
    pub telemetry: Option<Section<TelemetryFile>>,
    pub authz: Option<Section<AuthzFile>>,
}

/// `authz`: the verify-only listener for Envoy ext_authz and Traefik forwardAuth (docs/authz.md).
#[derive(Debug, Default, DeriveDeserialize)]
pub struct AuthzFile {
    pub listen: Leaf,
    pub http_path_prefix: Leaf,
    pub http_duplicate: Leaf,
}

/// `telemetry`: traces (docs/tracing.md).
#[derive(Debug, Default, DeriveDeserialize)]
pub struct TelemetryFile {
    pub otlp: Option<Section<OtlpFile>>,
}

/// `telemetry.otlp`: where spans go and which are kept.
#[derive(Debug, Default, DeriveDeserialize)]
pub struct OtlpFile {
    pub endpoint: Leaf,
    pub protocol: Leaf,
    pub headers: Option<Section<BTreeMap<String, Value>>>,
    pub service_name: Leaf,
    pub sample_ratio: Leaf,
    pub trust_incoming_context: Leaf,
    pub max_queue: Leaf,
}

/// `journal`: what is kept of each request, and for how long.
#[derive(Debug, Default, DeriveDeserialize)]
pub struct JournalFile {
    pub enabled: Leaf,
    pub max_events: Leaf,
    pub max_age: Leaf,
    pub capture_body: Leaf,
    pub max_body_bytes: Leaf,
    pub max_refusals_per_second: Leaf,
}

#[derive(Debug, Default, DeriveDeserialize)]
pub struct StoreFile {
    pub kind: Leaf,
    pub path: Leaf,
    pub url: Leaf,
    pub prefix: Leaf,
    pub lease: Leaf,
    pub min_replicas: Leaf,
    pub replica_timeout: Leaf,
}

#[derive(Debug, Default, DeriveDeserialize)]
pub struct ServerFile {
    pub listen: Leaf,
    pub max_body_bytes: Leaf,
    pub header_timeout: Leaf,
    pub body_timeout: Leaf,
    pub max_connections: Leaf,
    pub max_connections_per_ip: Leaf,
    pub workers: Leaf,
    pub trusted_proxies: Option<List<Value>>,
    pub shutdown_grace: Leaf,
    pub tls: Option<Section<TlsFile>>,
}

/// `server.tls`: PEM files, read at start-up and again on every reload.
#[derive(Debug, Default, DeriveDeserialize)]
pub struct TlsFile {
    pub cert_file: Leaf,
    pub key_file: Leaf,
}

/// `reload`: how changes to the config and the files it reads are noticed.
#[derive(Debug, Default, DeriveDeserialize)]
pub struct ReloadFile {
    pub watch: Leaf,
    pub interval: Leaf,
}

#[derive(Debug, Default, DeriveDeserialize)]
pub struct AdminFile {
    pub listen: Leaf,
    /// Bearer token for `/api/*` and the dead-letter endpoints.
    pub token: Option<Section<SecretFile>>,
}

#[derive(Debug, Default, DeriveDeserialize)]
pub struct LogFile {
    pub format: Leaf,
    pub level: Leaf,
}

#[derive(Debug, Default, DeriveDeserialize)]
pub struct ForwardFile {
    pub header_prefix: Leaf,
    pub attestation_secret: Option<Section<SecretFile>>,
}

/// `{id, env: VAR}`, `{id, file: PATH}` or `{id, value: "..."}`.
#[derive(Debug, Default, DeriveDeserialize)]
pub struct SecretFile {
    pub id: Leaf,
    pub env: Leaf,
    pub file: Leaf,
    pub value: Leaf,
}

#[derive(Debug, Default, DeriveDeserialize)]
pub struct RouteFile {
    pub name: Leaf,
    pub path: Leaf,
    pub host: Leaf,
    pub upstream: Leaf,
    pub timeout: Leaf,
    pub verify: Option<Section<VerifyFile>>,
    pub rate_limit: Option<Section<RateLimitFile>>,
    pub schema: Option<Section<SchemaFile>>,
    pub dedup: Option<Section<DedupFile>>,
    pub delivery: Option<Section<DeliveryFile>>,
}

#[derive(Debug, Default, DeriveDeserialize)]
pub struct DedupFile {
    pub key: Leaf,
    pub ttl: Leaf,
}

#[derive(Debug, Default, DeriveDeserialize)]
pub struct DeliveryFile {
    pub mode: Leaf,
    pub deadline: Leaf,
    pub concurrency: Leaf,
    pub max_attempts: Leaf,
    pub max_age: Leaf,
    pub retry_on: Option<List<Value>>,
    pub backoff: Option<Section<BackoffFile>>,
}

#[derive(Debug, Default, DeriveDeserialize)]
pub struct BackoffFile {
    pub base: Leaf,
    pub max: Leaf,
}

/// `rate_limit: {per_ip: {...}, route: {...}}`.
#[derive(Debug, Default, DeriveDeserialize)]
pub struct RateLimitFile {
    pub per_ip: Option<Section<PerIpFile>>,
    pub route: Option<Section<LimitFile>>,
}

/// `{rate: 20/s, burst: 40}`.
#[derive(Debug, Default, DeriveDeserialize)]
pub struct LimitFile {
    pub rate: Leaf,
    pub burst: Leaf,
}

/// The per-IP limit also bounds how many addresses it remembers.
#[derive(Debug, Default, DeriveDeserialize)]
pub struct PerIpFile {
    pub rate: Leaf,
    pub burst: Leaf,
    pub max_keys: Leaf,
    pub ipv6_prefix: Leaf,
}

/// `schema: {file | builtin | by_field, mode}`.
#[derive(Debug, Default, DeriveDeserialize)]
pub struct SchemaFile {
    pub file: Leaf,
    pub builtin: Leaf,
    pub by_field: Option<Section<ByFieldFile>>,
    pub mode: Leaf,
}

/// `{pointer: /type, schemas: {order.created: schemas/created.json}, default: schemas/any.json}`.
#[derive(Debug, Default, DeriveDeserialize)]
pub struct ByFieldFile {
    pub pointer: Leaf,
    pub schemas: Option<Section<BTreeMap<String, Value>>>,
    pub default: Leaf,
}

/// One struct for every scheme: which keys a scheme accepts is checked in `load/verify.rs`, so
/// a key given to the wrong scheme gets a message that says so.
#[derive(Debug, Default, DeriveDeserialize)]
pub struct VerifyFile {
    pub scheme: Leaf,
    pub secrets: Option<List<Section<SecretFile>>>,
    /// Asymmetric schemes (sendgrid, standard-webhooks/svix v1a): public keys, same form.
    pub public_keys: Option<List<Section<SecretFile>>>,
    /// Secrets rotated out: never verify, only recognized by the signature doctor.
    pub retired_secrets: Option<List<Section<SecretFile>>>,
    /// Failures the doctor examines per minute on this route; 0 turns it off.
    pub diagnose_per_minute: Leaf,
    pub tolerance: Leaf,
    /// Twilio: the URL the sender calls.
    pub public_url: Leaf,
    /// Generic `hmac` scheme.
    pub header: Leaf,
    pub prefix: Leaf,
    pub encoding: Leaf,
    pub algorithm: Leaf,
    pub signed: Leaf,
    pub timestamp_header: Leaf,
}
