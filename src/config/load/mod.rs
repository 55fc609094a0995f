//! From the file's loose mirror to runtime types, collecting every problem on the way: one
//! file per area of the config, each adding `Validator` methods.

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
mod verify;

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::config::file::FileConfig;
use crate::config::reload::Fingerprint;
use crate::config::{Config, Problem};

use self::env::expand_env;
pub use self::scalars::parse_size;

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
pub(super) fn shown_key(key: &str) -> &str {
    if key.is_empty() {
        "\"\""
    } else {
        key
    }
}

pub(super) struct Validator {
    problems: Vec<Problem>,
    /// Every file read on the way, for the reload watcher.
    files: Vec<Fingerprint>,
    /// Where relative schema paths are read from: the config file's directory.
    dir: PathBuf,
}

impl Validator {
    pub(super) fn problem(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem::new(key, message));
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
        let server = self.server(f.server);
        let admin = self.admin(f.admin);
        let log = self.log(f.log);
        let store = self.store(&f.store);
        let forward = self.forward(f.forward);
        let routes = self.routes(f.routes, &store);
        let journal = self.journal(f.journal);
        Config {
            journal,
            server,
            admin,
            log,
            forward,
            routes,
            reload: self.reload(f.reload),
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
}
