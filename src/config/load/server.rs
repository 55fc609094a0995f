//! `server`, `admin`, `log`, `forward` and `reload`: the process around the routes.

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::file::{AdminFile, ForwardFile, Leaf, LogFile, ReloadFile, ServerFile, TlsFile};
use crate::config::{Admin, Log, Reload, Server, Tls};
use crate::telemetry::LogFormat::{self, Json};
use crate::upstream::Forward;

use super::scalars::default_workers;
use super::Validator;

impl Validator {
    pub(super) fn server(&mut self, f: ServerFile) -> Server {
        let listen = self.addr("server.listen", f.listen, "0.0.0.0:8080");
        let max_body_bytes = self.size("server.max_body_bytes", f.max_body_bytes, 1 << 20);
        let header_timeout = self.duration("server.header_timeout", f.header_timeout, 5);
        let body_timeout = self.duration("server.body_timeout", f.body_timeout, 10);
        let max_connections = self.count("server.max_connections", f.max_connections, 10_000);
        // The connection count is a semaphore, which cannot hold more permits.
        let most = tokio::sync::Semaphore::MAX_PERMITS;
        if max_connections > most {
            self.problem(
                "server.max_connections",
                format!("`{max_connections}` is more than can be counted; use at most {most} (default 10000)"),
            );
        }
        let max_connections_per_ip = self.whole(
            "server.max_connections_per_ip",
            f.max_connections_per_ip,
            "a whole number above 0, such as 256 (the default); to turn the cap off, set it to server.max_connections",
            "must be a whole number above 0: it is how many connections one address may hold open; to turn the cap off, set it to server.max_connections",
        );
        let max_connections_per_ip =
            max_connections_per_ip.map_or(256, |n| usize::try_from(n).unwrap_or(usize::MAX));
        let workers = self.count("server.workers", f.workers, default_workers());
        let proxies = self.list(
            "server.trusted_proxies",
            f.trusted_proxies,
            "a list of CIDRs such as [10.0.0.0/8]",
            false,
        );
        let trusted_proxies = proxies
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .filter_map(|(i, s)| self.cidr(&format!("server.trusted_proxies[{i}]"), s))
            .collect();
        let shutdown_grace = self.duration("server.shutdown_grace", f.shutdown_grace, 20);
        let tls = self.section(
            "server.tls",
            f.tls,
            "a mapping such as {cert_file: tls.crt, key_file: tls.key}",
        );
        Server {
            listen,
            max_body_bytes,
            header_timeout,
            body_timeout,
            max_connections,
            max_connections_per_ip,
            workers,
            trusted_proxies,
            shutdown_grace,
            tls: tls.and_then(|t| self.tls(t)),
        }
    }

    /// The admin listener cannot bind where the proxy listens: the same port (not 0) on the
    /// same address, or with either on every address (`0.0.0.0`, `[::]`).
    pub(super) fn listeners_apart(&mut self, server: &Server, admin: &Admin) {
        let (s, a) = (server.listen, admin.listen);
        let overlap = s.ip() == a.ip()
            || (s.ip().is_unspecified() && (s.is_ipv6() || a.is_ipv4()))
            || (a.ip().is_unspecified() && (a.is_ipv6() || s.is_ipv4()));
        if s.port() != 0 && s.port() == a.port() && overlap {
            self.problem(
                "admin.listen",
                format!("`{a}` takes the port server.listen (`{s}`) listens on; give the admin listener its own port, e.g. 127.0.0.1:9090"),
            );
        }
    }

    pub(super) fn admin(&mut self, f: AdminFile) -> Admin {
        let listen = self.addr("admin.listen", f.listen, "127.0.0.1:9090");
        let given = f.token.is_some();
        let token = self
            .secret_section("admin.token", f.token)
            .and_then(|s| self.secret("admin.token", &s));
        if !given && !listen.ip().is_loopback() {
            self.problem(
                "admin.listen",
                format!("{listen} is not a loopback address and admin.token is not set: the admin API holds payloads and can replay them; set admin.token (e.g. {{id: admin, env: HOOKGATE_ADMIN_TOKEN}}) or listen on 127.0.0.1"),
            );
        }
        Admin { listen, token }
    }

    pub(super) fn log(&mut self, f: LogFile) -> Log {
        let format = self.text("log.format", f.format, "json or pretty");
        let level = self.text(
            "log.level",
            f.level,
            "a level: trace, debug, info, warn or error",
        );
        Log {
            format: match format.as_deref() {
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
            level: match level.as_deref() {
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
        }
    }

    pub(super) fn forward(&mut self, f: ForwardFile) -> Forward {
        let header_prefix = self
            .text(
                "forward.header_prefix",
                f.header_prefix,
                "a header name prefix such as X-Webhook-",
            )
            .unwrap_or_else(|| "X-Webhook-".into());
        if header_prefix.len() < 3
            || http::HeaderName::from_bytes(header_prefix.as_bytes()).is_err()
        {
            self.problem(
                "forward.header_prefix",
                format!("`{header_prefix}` is not a usable header name prefix; use something like X-Webhook-"),
            );
        }
        let attestation = self
            .secret_section("forward.attestation_secret", f.attestation_secret)
            .and_then(|s| self.secret("forward.attestation_secret", &s));
        Forward {
            header_prefix,
            attestation,
        }
    }

    pub(super) fn reload(&mut self, r: ReloadFile) -> Reload {
        Reload {
            watch: self.flag("reload.watch", r.watch, true),
            interval: self.duration("reload.interval", r.interval, 2),
        }
    }

    /// Reads and checks the certificate and key now, so `check` and a reload refuse a broken
    /// pair instead of the first handshake failing.
    pub(super) fn tls(&mut self, t: TlsFile) -> Option<Tls> {
        let file = |v: &mut Self, key: &str, path: Leaf, what: &str| match v.text(
            key,
            path,
            "a file name",
        ) {
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
        match crate::certs::certified_key(&cert_pem, &key_pem) {
            Ok(certified) => Some(Tls {
                cert_file,
                key_file,
                certified: Arc::new(certified),
            }),
            Err(e) => {
                use crate::certs::TlsFileRole;
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
}
