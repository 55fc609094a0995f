//! Config files for the gateway under test.

use std::path::Path;

/// Quote a string as a YAML double-quoted scalar (JSON strings are valid YAML).
pub fn q(s: &str) -> String {
    serde_json::to_string(s).expect("quote")
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
    /// Extra lines inside `forward:` (already indented by 2 spaces), e.g. attestation.
    pub forward_extra: String,
    /// `server.trusted_proxies` CIDRs.
    pub trusted_proxies: Vec<String>,
    /// Top-level YAML lines placed before `routes:`, e.g. a `store:` block.
    pub top_extra: String,
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
            forward_extra: String::new(),
            trusted_proxies: Vec::new(),
            workers: 0,
            top_extra: String::new(),
        }
    }
}

/// A whole config file: `routes` is the YAML of the route list items (see [`route`]).
pub fn config(opts: &Opts, routes: &str) -> String {
    format!(
        "server:\n  listen: 127.0.0.1:0\n  max_body_bytes: {}\n  header_timeout: {}\n  body_timeout: {}\n  max_connections: {}\n{}  shutdown_grace: {}\n  trusted_proxies: [{}]\nadmin:\n  listen: 127.0.0.1:0\nlog: {{format: json, level: {}}}\nforward:\n  header_prefix: {}\n{}{}routes:\n{}",
        opts.max_body_bytes,
        opts.header_timeout,
        opts.body_timeout,
        opts.max_connections,
        if opts.workers > 0 {
            format!("  workers: {}\n", opts.workers)
        } else {
            String::new()
        },
        opts.shutdown_grace,
        opts
            .trusted_proxies
            .iter()
            .map(|c| q(c))
            .collect::<Vec<_>>()
            .join(", "),
        opts.log_level,
        opts.header_prefix,
        opts.forward_extra,
        opts.top_extra,
        routes
    )
}

/// One route list item with a 2 s upstream timeout. `verify` is a YAML flow mapping.
pub fn route(name: &str, path: &str, upstream: &str, verify: &str) -> String {
    route_with_timeout(name, path, upstream, "2s", verify)
}

/// One route list item with an explicit upstream timeout.
pub fn route_with_timeout(
    name: &str,
    path: &str,
    upstream: &str,
    timeout: &str,
    verify: &str,
) -> String {
    format!(
        "  - name: {}\n    path: {}\n    upstream: {}\n    timeout: {}\n    verify: {}\n",
        q(name),
        q(path),
        q(upstream),
        timeout,
        verify
    )
}

/// `{id, value}` secret as YAML flow mapping.
pub fn secret_value(id: &str, value: &str) -> String {
    format!("{{id: {}, value: {}}}", q(id), q(value))
}

/// `{id, env}` secret as YAML flow mapping.
pub fn secret_env(id: &str, var: &str) -> String {
    format!("{{id: {}, env: {}}}", q(id), q(var))
}

/// `{id, file}` secret as YAML flow mapping.
pub fn secret_file(id: &str, path: &Path) -> String {
    format!(
        "{{id: {}, file: {}}}",
        q(id),
        q(&path.display().to_string())
    )
}

/// A `verify:` mapping for a built-in scheme with the given secret mappings.
pub fn verify(scheme: &str, secrets: &[String]) -> String {
    format!("{{scheme: {}, secrets: [{}]}}", scheme, secrets.join(", "))
}

/// A `verify:` mapping for the mediaconvert scheme with `{id, value}` secrets.
pub fn mc_verify(secrets: &[(&str, &str)]) -> String {
    let s: Vec<String> = secrets.iter().map(|(i, v)| secret_value(i, v)).collect();
    verify("mediaconvert", &s)
}
