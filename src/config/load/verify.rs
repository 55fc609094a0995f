//! `routes[].verify` and every secret: the scheme, its keys and its options.

use std::collections::HashSet;
use std::num::NonZeroU32;
use std::time::Duration;

use serde_json::Value;

use super::secret::{self, SecretSource};
use crate::config::file::{Leaf, SecretFile, VerifyFile};
use crate::doctor::{Doctor, MAX_RETIRED};
use crate::gateway::Diagnose;
use crate::secret::Secret;
use crate::verify::{
    Algorithm, Encoding, HmacSpec, Keys, Scheme, Template, Verifier, SCHEME_NAMES,
};

use super::Validator;

/// `verify` with each value of its type: `None` for a key not given, or refused for its type.
struct Verify {
    scheme: Option<String>,
    /// Each entry of `secrets`, `None` where it is not a mapping.
    secrets: Vec<Option<SecretFile>>,
    public_keys: Vec<Option<SecretFile>>,
    retired: Vec<Option<SecretFile>>,
    diagnose_per_minute: Leaf,
    /// Whether `secrets` or `public_keys` was refused for its type.
    lists_spoiled: bool,
    tolerance: Leaf,
    public_url: Option<String>,
    header: Option<String>,
    prefix: Option<String>,
    encoding: Option<String>,
    algorithm: Option<String>,
    signed: Option<String>,
    timestamp_header: Option<String>,
    /// The keys of the generic `hmac` scheme that were given, whatever their value.
    hmac_keys: Vec<&'static str>,
}

/// `verify.diagnose_per_minute` when not given.
const DIAGNOSE_PER_MINUTE: u32 = 60;

impl Validator {
    fn verify_fields(&mut self, key: &str, v: VerifyFile) -> Verify {
        let hmac_keys = [
            ("header", v.header.is_some()),
            ("prefix", v.prefix.is_some()),
            ("encoding", v.encoding.is_some()),
            ("algorithm", v.algorithm.is_some()),
            ("signed", v.signed.is_some()),
            ("timestamp_header", v.timestamp_header.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, given)| given.then_some(k))
        .collect();
        let text = |v: &mut Self, k: &str, leaf: Leaf, expected: &str| {
            v.text(&format!("{key}.{k}"), leaf, expected)
        };
        let scheme = text(self, "scheme", v.scheme, "a scheme name such as github");
        let public_url = text(self, "public_url", v.public_url, "a URL");
        let header = text(self, "header", v.header, "a header name");
        let prefix = text(self, "prefix", v.prefix, "text such as \"sha256=\"");
        let encoding = text(self, "encoding", v.encoding, "hex or base64");
        let algorithm = text(self, "algorithm", v.algorithm, "sha256, sha512 or sha1");
        let signed = text(self, "signed", v.signed, "a template such as \"{body}\"");
        let timestamp_header = text(
            self,
            "timestamp_header",
            v.timestamp_header,
            "a header name",
        );
        let entries = |v: &mut Self, list: &str, given| {
            let lkey = format!("{key}.{list}");
            let expected = "a list such as [{id: current, env: VAR}]";
            v.list(&lkey, given, expected, true)
                .unwrap_or_default()
                .into_iter()
                .enumerate()
                .map(|(i, s)| v.secret_section(&format!("{lkey}[{i}]"), Some(s)))
                .collect()
        };
        let secrets = entries(self, "secrets", v.secrets);
        let public_keys = entries(self, "public_keys", v.public_keys);
        let retired = entries(self, "retired_secrets", v.retired_secrets);
        Verify {
            scheme,
            secrets,
            public_keys,
            retired,
            diagnose_per_minute: v.diagnose_per_minute,
            lists_spoiled: self.spoiled(&format!("{key}.secrets"))
                || self.spoiled(&format!("{key}.public_keys")),
            tolerance: v.tolerance,
            public_url,
            header,
            prefix,
            encoding,
            algorithm,
            signed,
            timestamp_header,
            hmac_keys,
        }
    }

    /// The route's verifier, and its signature doctor unless `diagnose_per_minute` is 0.
    pub(super) fn verifier(
        &mut self,
        key: &str,
        v: VerifyFile,
    ) -> Option<(Verifier, Option<Diagnose>)> {
        let v = self.verify_fields(key, v);
        let scheme = match v.scheme.as_deref() {
            Some("hmac") => self.hmac_spec(key, &v).map(Scheme::Hmac),
            Some(name) => match Scheme::builtin(name) {
                Some(scheme) => {
                    for k in &v.hmac_keys {
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
        let tolerance = self.duration(&format!("{key}.tolerance"), v.tolerance, 300);
        if tolerance < Duration::from_secs(1) {
            self.problem(
                format!("{key}.tolerance"),
                "must be at least 1s (timestamps are whole seconds); e.g. 5m",
            );
        }
        let public_url = self.public_url(key, v.public_url.as_deref(), scheme.as_ref());
        let per_minute = self.diagnose_per_minute(key, v.diagnose_per_minute.clone());
        let (keys, retired) = keys?;
        let mut verifier = Verifier::new(scheme?, keys).with_tolerance(tolerance);
        if let Some(url) = public_url {
            verifier = verifier.with_public_url(url);
        }
        let diagnose = per_minute.map(|per_minute| Diagnose {
            doctor: std::sync::Arc::new(Doctor::new(&verifier, retired)),
            per_minute,
        });
        Some((verifier, diagnose))
    }

    /// `verify.diagnose_per_minute`: a whole number, 0 (off) included; `None` when off.
    fn diagnose_per_minute(&mut self, key: &str, v: Leaf) -> Option<NonZeroU32> {
        let k = format!("{key}.diagnose_per_minute");
        let n = match v {
            None => DIAGNOSE_PER_MINUTE,
            Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n <= 1_000_000) => {
                u32::try_from(n.as_u64().unwrap_or(0)).unwrap_or(u32::MAX)
            }
            Some(other) => {
                self.problem(
                    k,
                    format!("`{other}` must be a whole number from 0 (off) to 1000000, e.g. 60"),
                );
                DIAGNOSE_PER_MINUTE
            }
        };
        NonZeroU32::new(n)
    }

    /// `verify.secrets` and `verify.public_keys`, each decoded for the scheme (a key that does
    /// not decode is a problem at its own path; the others are kept, so that the route is still
    /// built and checked against the rest of the config).
    /// ... and `verify.retired_secrets`, decoded the same way, apart: they never verify, the
    /// doctor only recognizes them.
    fn keys(&mut self, key: &str, v: &Verify, scheme: Option<&Scheme>) -> Option<(Keys, Keys)> {
        let mut keys = Keys::default();
        let mut retired = Keys::default();
        if v.retired.len() > MAX_RETIRED {
            self.problem(
                format!("{key}.retired_secrets"),
                format!("{} given; at most {MAX_RETIRED} (the signature doctor tries each on every failure it examines): keep the most recent", v.retired.len()),
            );
        }
        let mut ids = HashSet::new();
        let lists = [
            ("secrets", &v.secrets),
            ("public_keys", &v.public_keys),
            ("retired_secrets", &v.retired),
        ];
        for (list, entries) in lists {
            for (i, s) in entries.iter().enumerate() {
                let skey = format!("{key}.{list}[{i}]");
                let Some(secret) = s.as_ref().and_then(|s| self.secret(&skey, s)) else {
                    continue;
                };
                if !ids.insert(secret.id().to_string()) {
                    self.problem(
                        format!("{skey}.id"),
                        format!("duplicate key id `{}`", secret.id()),
                    );
                }
                let Some(scheme) = scheme else { continue };
                let added = match list {
                    "secrets" => scheme.add_secret(&mut keys, secret),
                    "retired_secrets" => scheme.add_secret(&mut retired, secret),
                    _ => scheme.add_public_key(&mut keys, secret),
                };
                if let Err(message) = added {
                    self.problem(skey, message);
                }
            }
        }
        let scheme = scheme?;
        if v.secrets.is_empty() && v.public_keys.is_empty() && !v.lists_spoiled {
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
        Some((keys, retired))
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

    fn hmac_spec(&mut self, key: &str, v: &Verify) -> Option<HmacSpec> {
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

    pub(super) fn secret(&mut self, key: &str, s: &SecretFile) -> Option<Secret> {
        let id = self.text(&format!("{key}.id"), s.id.clone(), "a name such as current");
        let id = match id.as_deref() {
            Some(id) if !id.is_empty() => Some(id),
            _ => {
                self.problem(
                    format!("{key}.id"),
                    "missing; name the secret, e.g. current",
                );
                None
            }
        };
        let env = self.text(
            &format!("{key}.env"),
            s.env.clone(),
            "the name of an environment variable",
        );
        let file = self.text(&format!("{key}.file"), s.file.clone(), "a file name");
        let value = self.secret_text(&format!("{key}.value"), s.value.clone());
        // A part of the wrong type, or with an unset variable, is the problem already told.
        if self.spoiled_within(key) {
            return None;
        }
        let sources: Vec<SecretSource> = [
            env.map(SecretSource::Env),
            file.map(SecretSource::File),
            value.as_ref().map(|_| SecretSource::Value),
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
            other => secret::load(other, value.as_deref()),
        };
        match loaded {
            Ok(bytes) => Some(Secret::new(id?, bytes)),
            Err(message) => {
                self.problem(key, message);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

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
