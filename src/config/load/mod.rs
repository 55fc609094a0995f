//! From the file's loose mirror to runtime types, collecting every problem on the way: one
//! file per area of the config, each adding `Validator` methods.

mod authz;
mod delivery;
mod env;
mod journal;
mod limit;
mod route;
mod scalars;
mod schema;
pub(super) mod secret;
mod server;
mod store;
mod telemetry;
mod types;
mod verify;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::config::file::{FileConfig, Section};
use crate::config::reload::Fingerprint;
use crate::config::{Config, Problem};

use self::env::expand_env;
pub use self::scalars::parse_size;

/// Parses YAML text into a `Config`, or every problem found. Relative schema paths in it are
/// read from `dir`.
pub fn parse(text: &str, dir: &Path) -> Result<Config, Vec<Problem>> {
    parse_recording(text, dir, None, Checks::Config).0
}

/// What is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checks {
    /// The config itself: what `run` and a reload refuse to load.
    Config,
    /// Also what `run` would refuse when it starts serving, as far as the file system tells:
    /// `hookgate check`.
    StartUp,
}

/// [`parse`], and every file that validation read (secrets, TLS, schemas), whatever the
/// outcome. Problems with the file as a whole are reported under `file` (its name), or under
/// `(file)` when the text has none.
pub fn parse_recording(
    text: &str,
    dir: &Path,
    file: Option<&Path>,
    checks: Checks,
) -> (Result<Config, Vec<Problem>>, Vec<Fingerprint>) {
    let mut v = Validator {
        checks,
        problems: Vec::new(),
        spoiled: HashSet::new(),
        files: Vec::new(),
        dir: dir.to_path_buf(),
        file: file.map_or_else(|| "(file)".to_string(), |f| f.display().to_string()),
    };
    let result = v.parse(text);
    (result, v.files)
}

impl Validator {
    fn parse(&mut self, text: &str) -> Result<Config, Vec<Problem>> {
        let mut value: Value = serde_saphyr::from_str_with_options(text, yaml_options())
            .map_err(|e| vec![self.not_yaml(&e)])?;
        if value.is_null() {
            value = Value::Object(Default::default());
        }
        let mut problems = Vec::new();
        expand_env(&mut value, &self.file, &mut String::new(), &mut problems);
        // A value with an unset variable is unusable: its key's problem is the variable.
        self.spoiled = problems.iter().map(|p| p.key.clone()).collect();
        self.problems = problems;

        let mut unknown = Vec::new();
        let mut on_unknown = |path: serde_ignored::Path<'_>| unknown.push(ignored_path(&path));
        let de = serde_ignored::Deserializer::new(value, &mut on_unknown);
        // Never fails: every value of an unexpected type is kept for `load/` to report.
        let file: Result<Section<FileConfig>, _> = Section::deserialize(de);
        for key in unknown {
            self.problem(
                key,
                "unknown key; check its spelling against config.example.yaml",
            );
        }
        let expected = "a mapping of keys such as server and routes";
        let whole = self.file.clone();
        let file = match file.map(|f| self.section(&whole, Some(f), expected)) {
            Ok(Some(f)) => f,
            // Not a mapping: there are no keys to check.
            Ok(None) => return Err(std::mem::take(&mut self.problems)),
            Err(e) => {
                self.problem(whole, format!("cannot be read as a config: {e}"));
                return Err(std::mem::take(&mut self.problems));
            }
        };
        let mut config = self.config(file);
        config.files = self.files.clone();
        if self.problems.is_empty() {
            Ok(config)
        } else {
            Err(std::mem::take(&mut self.problems))
        }
    }
}

impl Validator {
    /// A YAML syntax error, on one line: `FILE:LINE:COLUMN: not valid YAML: what`.
    fn not_yaml(&self, e: &serde_saphyr::Error) -> Problem {
        use serde_saphyr::MessageFormatter;
        let e = e.without_snippet();
        let what: String = serde_saphyr::UserMessageFormatter
            .format_message(e)
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let key = match e.location() {
            Some(at) if at.line() > 0 => format!("{}:{}:{}", self.file, at.line(), at.column()),
            _ => self.file.clone(),
        };
        Problem::new(key, format!("not valid YAML: {what}"))
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
pub(super) fn shown_key(key: &str) -> &str {
    if key.is_empty() {
        "\"\""
    } else {
        key
    }
}

pub(super) struct Validator {
    checks: Checks,
    problems: Vec<Problem>,
    /// Keys whose value is unusable for a reason already reported (a value of the wrong
    /// type, an unset environment variable): what follows from it is not reported again.
    spoiled: HashSet<String>,
    /// Every file read on the way, for the reload watcher.
    files: Vec<Fingerprint>,
    /// Where relative schema paths are read from: the config file's directory.
    dir: PathBuf,
    /// What problems with the whole file are filed under: its name, or `(file)`.
    file: String,
}

impl Validator {
    pub(super) fn problem(&mut self, key: impl Into<String>, message: impl Into<String>) {
        let key = key.into();
        if !self.spoiled.contains(&key) {
            self.problems.push(Problem::new(key, message));
        }
    }

    /// A problem that makes the value at `key` unusable; nothing more is reported there.
    pub(super) fn spoil(&mut self, key: &str, message: impl Into<String>) {
        if self.spoiled.insert(key.to_string()) {
            self.problems.push(Problem::new(key, message));
        }
    }

    /// Reads a file the config names and remembers what was read.
    pub(super) fn read(&mut self, path: impl AsRef<Path>) -> std::io::Result<Vec<u8>> {
        let path = path.as_ref();
        let read = std::fs::read(path);
        self.files.push(Fingerprint::of(path, read.as_ref().ok()));
        read
    }

    /// Each area in turn; problems come out in this order.
    pub(super) fn config(&mut self, f: FileConfig) -> Config {
        let mapping = "a mapping of keys (see config.example.yaml)";
        let server = self.section("server", f.server, mapping);
        let server = self.server(server.unwrap_or_default());
        let admin = self.section("admin", f.admin, mapping);
        let admin = self.admin(admin.unwrap_or_default());
        if self.checks == Checks::StartUp {
            self.listeners_apart(&server, &admin);
        }
        let log = self.section("log", f.log, mapping);
        let log = self.log(log.unwrap_or_default());
        let store = self.section("store", f.store, mapping);
        let store = self.store(store.unwrap_or_default());
        let forward = self.section("forward", f.forward, mapping);
        let forward = self.forward(forward.unwrap_or_default());
        let routes = self.list(
            "routes",
            f.routes,
            "a list of routes such as [{name: a, path: /a, ...}]",
            false,
        );
        let routes = self.routes(routes, &store);
        let reload = self.section("reload", f.reload, mapping);
        let reload = self.reload(reload.unwrap_or_default());
        let journal = self.section("journal", f.journal, mapping);
        let journal = self.journal(journal.unwrap_or_default());
        let telemetry = self.section("telemetry", f.telemetry, mapping);
        let otlp = self.telemetry(telemetry.unwrap_or_default());
        let authz = self.section("authz", f.authz, mapping);
        let authz = authz.map(|a| self.authz(a));
        if let (Some(a), Checks::StartUp) = (&authz, self.checks) {
            self.authz_apart(a, &server, &admin);
        }
        Config {
            authz,
            journal,
            otlp,
            server,
            admin,
            log,
            forward,
            routes,
            reload,
            store,
            source: None,
            files: Vec::new(),
        }
    }
}

/// What the tests of every area share.
#[cfg(test)]
mod testing {
    pub use std::path::Path;

    pub use crate::config::{Config, Problem};

    pub fn parse(text: &str) -> Result<Config, Vec<Problem>> {
        super::parse(text, Path::new("."))
    }

    pub fn problems(yaml: &str) -> Vec<String> {
        match parse(yaml) {
            Ok(_) => vec![],
            Err(p) => p.into_iter().map(|p| p.to_string()).collect(),
        }
    }

    pub const ROUTE: &str = "routes:\n  - name: a\n    path: /a\n    upstream: http://127.0.0.1:1/x\n    verify: {scheme: mediaconvert, secrets: [{id: k, value: s}]}\n";
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::testing::*;

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
    fn secrets_never_in_problems() {
        let p = problems("routes:\n  - name: a\n    path: /a\n    upstream: http://127.0.0.1:1/x\n    verify: {scheme: nope, secrets: [{id: k, value: topsecretvalue}]}\n");
        assert!(!p.is_empty());
        assert!(p.iter().all(|p| !p.contains("topsecretvalue")));
    }

    /// A secret written with the wrong type is reported by its type alone, never its value.
    #[test]
    fn wrong_types_never_show_secrets() {
        let p = problems("routes:\n  - name: a\n    path: /a\n    upstream: http://127.0.0.1:1/x\n    verify: {scheme: github, secrets: [{id: k, value: 987654321}, topsecretvalue]}\nforward: {attestation_secret: [othersecret]}\n");
        for key in [
            "routes[0].verify.secrets[0].value: expected a string, got a number",
            "routes[0].verify.secrets[1]: expected a secret",
            "forward.attestation_secret: expected a secret",
        ] {
            assert!(p.iter().any(|p| p.starts_with(key)), "{key} not in {p:?}");
        }
        for secret in ["987654321", "topsecretvalue", "othersecret"] {
            assert!(p.iter().all(|p| !p.contains(secret)), "{p:?}");
        }
    }

    /// A file that is not a mapping of keys says so, under `(file)`.
    #[test]
    fn file_must_be_a_mapping() {
        assert_eq!(
            problems("[1, 2]"),
            ["(file): expected a mapping of keys such as server and routes, got a list"]
        );
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
    fn max_connections_per_ip_defaults_and_refuses_zero() {
        let c = parse(ROUTE).expect("valid");
        assert_eq!(c.server.max_connections_per_ip, 256);
        let c = parse(&format!("{ROUTE}server: {{max_connections_per_ip: 8}}\n")).expect("valid");
        assert_eq!(c.server.max_connections_per_ip, 8);
        for bad in ["0", "-1", "many"] {
            let p = problems(&format!(
                "{ROUTE}server: {{max_connections_per_ip: {bad}}}\n"
            ));
            assert!(
                p.iter()
                    .any(|p| p.starts_with("server.max_connections_per_ip:")
                        && p.contains("set it to server.max_connections")),
                "{bad}: {p:?}"
            );
        }
    }
}
