//! `hookgate check` and `run` on broken and valid configs.

use std::path::Path;

use crate::common::*;

/// A valid config whose pieces the broken ones below replace.
fn base(routes: impl Routes) -> Value {
    json!({
        "server": {
            "listen": "127.0.0.1:0",
            "max_body_bytes": "1KiB",
            "header_timeout": "1s",
            "body_timeout": "1s",
            "max_connections": 100,
            "shutdown_grace": "5s",
        },
        "admin": {"listen": "127.0.0.1:0"},
        "log": {"format": "json", "level": "info"},
        "forward": {"header_prefix": "X-Webhook-"},
        "routes": routes.routes(),
    })
}

const UP: &str = "http://127.0.0.1:9/hooks";

fn ok_route(name: &str, path: &str) -> Value {
    route(name, path, UP, mc_verify(&[("current", "s3cret")]))
}

/// Run `check` and return (exit code, stderr lines).
fn check(yaml: &Value, env: &[(&str, &str)]) -> (Option<i32>, Vec<String>) {
    let out = run_with_config("check", yaml, env);
    let stderr = String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(str::to_string)
        .collect();
    (out.status.code(), stderr)
}

/// Assert exit 2 and some stderr line that starts with `path` (and contains `word` if given).
fn assert_problem(what: &str, yaml: &Value, path: &str, word: Option<&str>) {
    let (code, lines) = check(yaml, &[]);
    assert_eq!(
        code,
        Some(2),
        "{what}: exit code; stderr:\n{}",
        lines.join("\n")
    );
    let hit = lines.iter().any(|l| {
        l.trim_start().starts_with(path)
            && match word {
                Some(w) => l.to_lowercase().contains(&w.to_lowercase()),
                None => true,
            }
    });
    assert!(
        hit,
        "{what}: no stderr line starting with {path:?} (word {word:?}); stderr:\n{}",
        lines.join("\n")
    );
}

#[test]
fn valid_config_passes_check() {
    let (code, lines) = check(&base(ok_route("mc", "/webhooks/mediaconvert")), &[]);
    assert_eq!(code, Some(0), "stderr:\n{}", lines.join("\n"));
}

#[test]
fn missing_env_secret() {
    let var = "HOOKGATE_TEST_SURELY_UNSET_VAR_1";
    let yaml = base(route(
        "mc",
        "/webhooks/mediaconvert",
        UP,
        verify("mediaconvert", &[secret_env("current", var)]),
    ));
    let (code, lines) = check(&yaml, &[]);
    assert_eq!(code, Some(2), "stderr:\n{}", lines.join("\n"));
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("routes[0].verify.secrets[0]") && l.contains(var)),
        "stderr:\n{}",
        lines.join("\n")
    );
    // The same config passes once the variable is set.
    let (code, lines) = check(&yaml, &[(var, "from-env")]);
    assert_eq!(code, Some(0), "stderr:\n{}", lines.join("\n"));
}

#[test]
fn missing_file_secret() {
    let yaml = base(route(
        "mc",
        "/webhooks/mediaconvert",
        UP,
        verify(
            "mediaconvert",
            &[
                secret_value("a", "x"),
                secret_file("b", Path::new("/nonexistent/hookgate/secret")),
            ],
        ),
    ));
    assert_problem(
        "missing secret file",
        &yaml,
        "routes[0].verify.secrets[1]",
        None,
    );
}

#[test]
fn unknown_key() {
    let mut yaml = base(ok_route("mc", "/a"));
    yaml["server"]["bogus_key"] = json!(1);
    let (code, lines) = check(&yaml, &[]);
    assert_eq!(code, Some(2), "stderr:\n{}", lines.join("\n"));
    assert!(
        lines
            .iter()
            .any(|l| l.contains("bogus_key") && l.contains("server")),
        "unknown key not named with its path; stderr:\n{}",
        lines.join("\n")
    );
}

#[test]
fn unknown_key_in_route() {
    let yaml = base(ok_route("mc", "/a").with("retries", 3));
    let (code, lines) = check(&yaml, &[]);
    assert_eq!(code, Some(2), "stderr:\n{}", lines.join("\n"));
    assert!(
        lines
            .iter()
            .any(|l| l.contains("retries") && l.contains("routes[0]")),
        "unknown route key not named with its path; stderr:\n{}",
        lines.join("\n")
    );
}

#[test]
fn bad_duration() {
    let mut yaml = base(ok_route("mc", "/a"));
    yaml["server"]["header_timeout"] = json!("soon");
    assert_problem("bad duration", &yaml, "server.header_timeout", None);
}

/// `store.lease` (kind redis): a duration of at least 1s, and only for redis; a queue route on
/// redis passes.
#[test]
fn store_lease_checked_and_queue_on_redis_accepted() {
    let queue = base(ok_route("mc", "/a").with("delivery", json!({"mode": "queue"})));
    let store = |lease: &str| {
        queue.clone().with(
            "store",
            json!({"kind": "redis", "url": "redis://127.0.0.1:9/0", "lease": lease}),
        )
    };
    let (code, lines) = check(&store("5s"), &[]);
    assert_eq!(code, Some(0), "stderr:\n{}", lines.join("\n"));
    assert_problem(
        "lease not a duration",
        &store("soon"),
        "store.lease",
        Some("not a duration"),
    );
    assert_problem(
        "lease too short",
        &store("100ms"),
        "store.lease",
        Some("at least 1s"),
    );
    assert_problem(
        "lease on redb",
        &queue.clone().with(
            "store",
            json!({"kind": "redb", "path": "x.redb", "lease": "5s"}),
        ),
        "store.lease",
        Some("only for kind redis"),
    );
}

#[test]
fn bad_route_timeout() {
    let yaml = base(route_with_timeout(
        "mc",
        "/a",
        UP,
        "10 parsecs",
        mc_verify(&[("c", "s")]),
    ));
    assert_problem("bad route timeout", &yaml, "routes[0].timeout", None);
}

#[test]
fn bad_size() {
    let mut yaml = base(ok_route("mc", "/a"));
    yaml["server"]["max_body_bytes"] = json!("lots");
    assert_problem("bad size", &yaml, "server.max_body_bytes", None);
}

#[test]
fn duplicate_route_name() {
    let yaml = base([ok_route("mc", "/a"), ok_route("mc", "/b")]);
    assert_problem(
        "duplicate route name",
        &yaml,
        "routes[1].name",
        Some("duplicate"),
    );
}

/// YAML 1.2: a plain `on`, `no`, `y` or `yes` where a string is expected is that string, not a
/// YAML 1.1 boolean. Route names and a secret id spelled so pass `check` and are kept as
/// written.
#[test]
fn yaml_1_1_boolean_words_are_strings() {
    let plain_route = |name: &str, path: &str, id: &str| {
        format!(
            "  - name: {name}\n    path: {path}\n    upstream: {UP}\n    verify: {{scheme: mediaconvert, secrets: [{{id: {id}, value: s3cret}}]}}\n"
        )
    };
    // YAML text on purpose: as JSON the names would be quoted strings anyway.
    let yaml = format!(
        "admin: {{listen: 127.0.0.1:0}}\nroutes:\n{}",
        [
            plain_route("on", "/on", "yes"),
            plain_route("no", "/no", "k"),
            plain_route("y", "/y", "k"),
        ]
        .concat()
    );
    let out = run_with_config("check", yaml.as_str(), &[]);
    let (code, lines): (Option<i32>, Vec<String>) = (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .map(str::to_string)
            .collect(),
    );
    assert_eq!(code, Some(0), "stderr:\n{}", lines.join("\n"));

    let config = hookgate::config::Config::parse(&yaml).expect("valid config");
    let names: Vec<&str> = config.routes.iter().map(|r| &*r.name).collect();
    assert_eq!(names, ["on", "no", "y"]);
    // The secret id is the one a request signed with that secret is verified under.
    let verifier = &config.routes[0].verifier;
    let key = hookgate::verify::SigningKey::Secret(b"s3cret".to_vec());
    let body = br#"{"detail":{}}"#;
    let now = 1_700_000_000;
    let signed = verifier
        .scheme()
        .sign(
            &key,
            &hookgate::verify::SignInput {
                body,
                now,
                url: None,
                id: "d1",
            },
        )
        .expect("sign");
    let mut headers = http::HeaderMap::new();
    for (name, value) in &signed.headers {
        headers.insert(
            http::HeaderName::try_from(name.as_str()).unwrap(),
            http::HeaderValue::try_from(value.as_str()).unwrap(),
        );
    }
    let verified = verifier
        .verify(&hookgate::verify::Input {
            headers: &headers,
            body: &signed.body,
            now,
            url: None,
        })
        .expect("verified");
    assert_eq!(&*verified.key_id, "yes");
}

#[test]
fn duplicate_path() {
    let yaml = base([ok_route("one", "/same"), ok_route("two", "/same")]);
    assert_problem("duplicate path", &yaml, "routes[1].path", Some("duplicate"));
}

#[test]
fn unknown_scheme() {
    let yaml = base(route(
        "mc",
        "/a",
        UP,
        verify("carrier-pigeon", &[secret_value("a", "x")]),
    ));
    let (code, lines) = check(&yaml, &[]);
    assert_eq!(code, Some(2), "stderr:\n{}", lines.join("\n"));
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("routes[0].verify") && l.contains("carrier-pigeon")),
        "unknown scheme not named with its path; stderr:\n{}",
        lines.join("\n")
    );
}

#[test]
fn upstream_not_a_url() {
    let yaml = base(route("mc", "/a", "not a url", mc_verify(&[("c", "s")])));
    assert_problem("upstream not a URL", &yaml, "routes[0].upstream", None);
}

#[test]
fn hmac_missing_header() {
    let hmac = verify("hmac", &[secret_value("a", "x")]).merge(json!({
        "prefix": "sha256=",
        "encoding": "hex",
        "algorithm": "sha256",
    }));
    let yaml = base(route("g", "/a", UP, hmac));
    assert_problem(
        "hmac without header",
        &yaml,
        "routes[0].verify",
        Some("header"),
    );
}

#[test]
fn route_without_secrets() {
    let yaml = base(route("mc", "/a", UP, verify("mediaconvert", &[])));
    assert_problem("no secrets", &yaml, "routes[0].verify.secrets", None);
}

/// Several problems in one file are all printed, one line each.
#[test]
fn several_problems_all_reported() {
    let routes = [
        route(
            "a",
            "/a",
            UP,
            verify(
                "mediaconvert",
                &[secret_env("k", "HOOKGATE_TEST_SURELY_UNSET_VAR_2")],
            ),
        ),
        ok_route("a", "/b"),
        ok_route("c", "/b"),
        route(
            "d",
            "/d",
            UP,
            verify("hmac", &[secret_value("a", "x")])
                .merge(json!({"encoding": "hex", "algorithm": "sha256"})),
        ),
    ];
    let (code, lines) = check(&base(routes), &[]);
    assert_eq!(code, Some(2), "stderr:\n{}", lines.join("\n"));
    for path in [
        "routes[0].verify.secrets[0]",
        "routes[1].name",
        "routes[2].path",
        "routes[3].verify",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(path)),
            "problem at {path} not reported; stderr:\n{}",
            lines.join("\n")
        );
    }
}

/// `run` refuses a broken config with exit 2 and the same message.
#[test]
fn run_refuses_broken_config() {
    let yaml = base([ok_route("mc", "/a"), ok_route("mc", "/b")]);
    let out = run_with_config("run", &yaml, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{stderr}");
    assert!(
        stderr.lines().any(|l| l.starts_with("routes[1].name")),
        "stderr:\n{stderr}"
    );
}

/// A config file that does not exist: exit 2.
#[test]
fn missing_config_file() {
    let out = run_cli(&["check", "-c", "/nonexistent/hookgate.yaml"], &[], None);
    assert_eq!(
        out.status.code(),
        Some(2),
        "stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Names of `env: NAME` secrets and `${NAME}` expansions in a YAML text.
fn env_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        let code = line.split(" #").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("env:") {
            let before = rest[..i].chars().last();
            let after = rest[i + 4..].trim_start();
            let name: String = after
                .trim_start_matches(['"', '\''])
                .chars()
                .take_while(|c| is_name(*c))
                .collect();
            if !before.is_some_and(is_name) && !name.is_empty() {
                names.push(name);
            }
            rest = &rest[i + 4..];
        }
        let mut rest = code;
        while let Some(i) = rest.find("${") {
            let name: String = rest[i + 2..].chars().take_while(|c| is_name(*c)).collect();
            if !name.is_empty() {
                names.push(name);
            }
            rest = &rest[i + 2..];
        }
    }
    names.sort();
    names.dedup();
    names
}

/// The shipped `config.example.yaml` passes `check` once its env secrets are set.
#[test]
fn example_config_passes_check() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = root.join("config.example.yaml");
    let text = std::fs::read_to_string(&path).expect("config.example.yaml at the repo root");
    let names = env_names(&text);
    let values: Vec<(String, String)> = names
        .iter()
        .map(|n| (n.clone(), format!("example-value-for-{}", n.to_lowercase())))
        .collect();
    let env: Vec<(&str, &str)> = values
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let out = run_cli(&["check", "-c", path.to_str().unwrap()], &env, Some(root));
    assert_eq!(
        out.status.code(),
        Some(0),
        "check config.example.yaml (env set: {names:?})\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn env_names_parser() {
    let t = "secrets:\n  - {id: a, env: FOO_1}\n  - id: b\n    env: \"BAR\"\n  # env: IGNORED\nurl: ${BAZ}/x\nenvironment: x\n";
    assert_eq!(env_names(t), vec!["BAR", "BAZ", "FOO_1"]);
}

/// The problem lines of `check`'s stderr (the header line set aside).
fn problem_lines(lines: &[String]) -> Vec<&str> {
    lines
        .iter()
        .map(String::as_str)
        .filter(|l| !l.starts_with("hookgate: "))
        .collect()
}

/// Asserts that each of `keys` starts exactly one problem line, and that no line speaks of
/// the program's own types instead of the config.
fn assert_each_once(lines: &[String], keys: &[(&str, &str)]) {
    let problems = problem_lines(lines);
    for (key, word) in keys {
        let hits: Vec<_> = problems
            .iter()
            .filter(|l| l.starts_with(&format!("{key}: ")))
            .collect();
        assert_eq!(
            hits.len(),
            1,
            "{key}: expected exactly one problem; stderr:\n{}",
            lines.join("\n")
        );
        assert!(
            hits[0].contains(word),
            "{key}: problem without {word:?}; stderr:\n{}",
            lines.join("\n")
        );
    }
    for l in &problems {
        for rust in [
            "struct ",
            "enum ",
            "invalid type",
            "Scalar",
            "File`",
            "variant",
        ] {
            assert!(!l.contains(rust), "{rust:?} in {l:?}");
        }
    }
}

/// The operator's report: one value of the wrong type hid every other problem.
#[test]
fn wrong_type_does_not_hide_other_problems() {
    let mut yaml = base(json!({
        "name": "mc",
        "path": "/a",
        "verify": verify("githib", &[secret_value("k", "s")]),
    }));
    yaml["server"]["max_connections"] = json!(-1);
    yaml["server"]["bogus"] = json!(1);
    let (code, lines) = check(&yaml, &[]);
    assert_eq!(code, Some(2), "stderr:\n{}", lines.join("\n"));
    assert_each_once(
        &lines,
        &[
            ("server.max_connections", "-1"),
            ("server.bogus", "unknown key"),
            ("routes[0].upstream", "missing"),
            ("routes[0].verify.scheme", "githib"),
        ],
    );
    assert_eq!(problem_lines(&lines).len(), 4, "{}", lines.join("\n"));
}

/// Every value of the wrong type is reported at its key, in words, and nothing derived from
/// it (a "missing" at the same key) is added.
#[test]
fn every_wrong_type_reported_at_its_key() {
    let mut yaml = base([
        route_with_timeout("a", "/a", UP, "2s", mc_verify(&[("k", "s")])).with("timeout", 9),
        ok_route("b", "/b").with("verify", "github"),
        ok_route("c", "/c").with("verify", json!({"scheme": "github", "secrets": "abc"})),
        ok_route("d", "/d").with("upstream", json!(["http://127.0.0.1:9/"])),
    ]);
    yaml["server"]["workers"] = json!(2.5);
    yaml["server"]["max_body_bytes"] = json!(-5);
    yaml["server"]["listen"] = json!(8080);
    yaml["server"]["header_timeout"] = json!(true);
    yaml["reload"] = json!({"watch": "yes"});
    yaml["server"]["trusted_proxies"] = json!("10.0.0.0/8");
    yaml["log"]["level"] = json!({"a": 1});
    let (code, lines) = check(&yaml, &[]);
    assert_eq!(code, Some(2), "stderr:\n{}", lines.join("\n"));
    assert_each_once(
        &lines,
        &[
            ("server.listen", "got the number 8080"),
            ("server.workers", "2.5"),
            ("server.max_body_bytes", "-5"),
            ("server.header_timeout", "got true"),
            ("server.trusted_proxies", "got the string `10.0.0.0/8`"),
            ("log.level", "got a mapping"),
            ("reload.watch", "expected a boolean"),
            ("routes[0].timeout", "got the number 9"),
            ("routes[1].verify", "got the string `github`"),
            // What is written where secrets go may be a secret: its type only.
            ("routes[2].verify.secrets", "got a string"),
            ("routes[3].upstream", "got a list"),
        ],
    );
    assert!(
        lines
            .iter()
            .any(|l| l == "routes[0].timeout: expected a duration such as 9s, got the number 9"),
        "stderr:\n{}",
        lines.join("\n")
    );
    assert_eq!(problem_lines(&lines).len(), 11, "{}", lines.join("\n"));
    assert!(
        lines.iter().all(|l| !l.contains("abc")),
        "{}",
        lines.join("\n")
    );
}

/// Zero where it is not allowed says so, instead of calling `0s` no duration.
#[test]
fn zero_is_refused_as_zero() {
    let mut yaml = base(ok_route("mc", "/a"));
    yaml["server"]["body_timeout"] = json!("0s");
    yaml["server"]["max_body_bytes"] = json!(0);
    let (code, lines) = check(&yaml, &[]);
    assert_eq!(code, Some(2), "stderr:\n{}", lines.join("\n"));
    assert_each_once(
        &lines,
        &[
            ("server.body_timeout", "zero is not allowed"),
            ("server.max_body_bytes", "zero is not allowed"),
        ],
    );
    assert!(
        lines
            .iter()
            .all(|l| !l.contains("not a duration") && !l.contains("not a size")),
        "stderr:\n{}",
        lines.join("\n")
    );
}

/// An unset `${VAR}` is reported once, as the cause, without what follows from the value
/// it leaves behind.
#[test]
fn unset_variable_reported_once() {
    let var = "HOOKGATE_TEST_SURELY_UNSET_UPSTREAM";
    let yaml = base([
        ok_route("a", "/a").with("upstream", format!("${{{var}}}")),
        ok_route("b", "/b").with("upstream", format!("http://${{{var}}}:3000/x")),
        ok_route("c", "/c").with(
            "verify",
            verify("github", &[secret_value("k", &format!("${{{var}}}"))]),
        ),
    ]);
    let (code, lines) = check(&yaml, &[]);
    assert_eq!(code, Some(2), "stderr:\n{}", lines.join("\n"));
    assert_each_once(
        &lines,
        &[
            ("routes[0].upstream", var),
            ("routes[1].upstream", var),
            ("routes[2].verify.secrets[0].value", var),
        ],
    );
    assert_eq!(problem_lines(&lines).len(), 3, "{}", lines.join("\n"));
}

/// A duplicate path names the route that already answers it.
#[test]
fn duplicate_path_names_the_other_route() {
    let yaml = base([
        ok_route("one", "/same"),
        ok_route("two", "/other"),
        ok_route("three", "/same"),
    ]);
    let (code, lines) = check(&yaml, &[]);
    assert_eq!(code, Some(2), "stderr:\n{}", lines.join("\n"));
    assert_each_once(&lines, &[("routes[2].path", "route `one` (routes[0])")]);
}

/// A YAML syntax error names the file, with its line and column once, on one line.
#[test]
fn yaml_syntax_error_names_the_file_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("hookgate.yaml");
    std::fs::write(&path, "server:\n  listen: [\n").expect("write config");
    let file = path.to_str().expect("utf-8 path");
    let out = run_cli(&["check", "-c", file], &[], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{stderr}");
    let lines: Vec<String> = stderr.lines().map(str::to_string).collect();
    let problems = problem_lines(&lines);
    assert_eq!(problems.len(), 1, "stderr:\n{stderr}");
    assert!(
        problems[0].starts_with(&format!("{file}:2:11: not valid YAML: ")),
        "stderr:\n{stderr}"
    );
    for wrong in ["(file)", "<input>", "line 2", "column"] {
        assert!(!stderr.contains(wrong), "{wrong:?} in stderr:\n{stderr}");
    }
    assert_eq!(stderr.matches("2:11").count(), 1, "stderr:\n{stderr}");
}

/// Size units are read in any case: `1mb` passes like `1MB` and `1 MB`.
#[test]
fn size_units_in_any_case_pass_check() {
    for size in ["1mb", "1MB", "1 MB", "1mib", "512kib", "64KB"] {
        let mut yaml = base(ok_route("mc", "/a"));
        yaml["server"]["max_body_bytes"] = json!(size);
        let (code, lines) = check(&yaml, &[]);
        assert_eq!(code, Some(0), "{size}: stderr:\n{}", lines.join("\n"));
    }
}

/// `check` refuses what `run` would refuse before serving: a redb store it cannot open.
#[test]
fn check_refuses_a_redb_path_run_cannot_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let with_store = |path: &Path| {
        base(ok_route("mc", "/a")).with(
            "store",
            json!({"kind": "redb", "path": path.display().to_string()}),
        )
    };
    // A directory: what the operator's report found `check` accepting and `run` refusing.
    let yaml = with_store(dir.path());
    assert_problem("directory", &yaml, "store.path", Some("is a directory"));
    let out = run_with_config("run", &yaml, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "run: {stderr}");
    assert!(stderr.contains("store.path "), "run: {stderr}");

    // Under a regular file: its directory cannot be created.
    let file = dir.path().join("plain");
    std::fs::write(&file, "not a directory").expect("write");
    assert_problem(
        "parent is a file",
        &with_store(&file.join("x.redb")),
        "store.path",
        Some("not a directory"),
    );
    // A file that is not a redb database: redb refuses to open it.
    assert_problem(
        "not redb",
        &with_store(&file),
        "store.path",
        Some("not a redb database"),
    );

    // A directory that cannot be written (unless the tests run as root, who may write
    // anyway, as `run` could).
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).expect("mkdir");
    set_mode(&locked, 0o555);
    let root = std::fs::write(locked.join("probe"), "x").is_ok();
    if !root {
        assert_problem(
            "not writable",
            &with_store(&locked.join("x.redb")),
            "store.path",
            Some("not writable"),
        );
    }
    set_mode(&locked, 0o755);

    // A file in directories that do not exist yet is fine: `run` creates them. `check`
    // leaves no trace.
    let fresh = dir.path().join("new/sub/x.redb");
    let (code, lines) = check(&with_store(&fresh), &[]);
    assert_eq!(code, Some(0), "stderr:\n{}", lines.join("\n"));
    assert!(!dir.path().join("new").exists());
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// `check` refuses what `run` would refuse or crash on before serving: the admin listener on
/// the proxy's port, more connections than can be counted.
#[test]
fn check_refuses_listeners_and_limits_run_cannot_use() {
    let mut yaml = base(ok_route("mc", "/a"));
    yaml["server"]["listen"] = json!("0.0.0.0:18080");
    yaml["admin"]["listen"] = json!("127.0.0.1:18080");
    assert_problem(
        "admin on the proxy port",
        &yaml,
        "admin.listen",
        Some("server.listen"),
    );
    let mut yaml = base(ok_route("mc", "/a"));
    yaml["server"]["max_connections"] = json!(3_000_000_000_000_000_000u64);
    assert_problem(
        "too many connections",
        &yaml,
        "server.max_connections",
        Some("at most"),
    );
    // Distinct ports, or port 0 (any free port), are fine.
    let mut yaml = base(ok_route("mc", "/a"));
    yaml["server"]["listen"] = json!("127.0.0.1:0");
    yaml["admin"]["listen"] = json!("127.0.0.1:0");
    let (code, lines) = check(&yaml, &[]);
    assert_eq!(code, Some(0), "stderr:\n{}", lines.join("\n"));
}

/// The `console` blocks of docs/configuration.md's "Checking a config": each a `$ hookgate
/// check -c hookgate.yaml` line and the output that follows it.
fn documented_check_outputs() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("docs/configuration.md")).expect("docs");
    let section = text
        .split("## Checking a config")
        .nth(1)
        .expect("a section `Checking a config`");
    let section = section.split("\n## ").next().unwrap_or(section);
    section
        .split("```console\n")
        .skip(1)
        .map(|block| {
            let block = block.split("```").next().expect("closed block");
            let (command, output) = block.split_once('\n').expect("command line");
            assert_eq!(command, "$ hookgate check -c hookgate.yaml");
            output.to_string()
        })
        .collect()
}

/// `check`'s output is exactly what the docs show: the header line and one line per problem
/// on stderr; `FILE: ok (N routes)` on stdout, `ok (1 route)` for one.
#[test]
fn check_output_is_exactly_as_documented() {
    let samples = documented_check_outputs();
    assert_eq!(samples.len(), 2, "{samples:?}");
    let var = "MEDIACONVERT_WEBHOOK_SECRET";
    let broken = base([
        route(
            "mediaconvert",
            "/webhooks/mediaconvert",
            UP,
            verify("mediaconvert", &[secret_env("current", var)]),
        ),
        route(
            "github",
            "/webhooks/github",
            "ftp://x",
            mc_verify(&[("c", "s")]),
        ),
    ]);
    let two = base([ok_route("a", "/a"), ok_route("b", "/b")]);
    let one = base(ok_route("a", "/a"));
    let run = |yaml: &Value| {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("hookgate.yaml"), yaml.config_text()).expect("write");
        let args = ["check", "-c", "hookgate.yaml"];
        let out = run_cli_unset(&args, &[], &[var], Some(dir.path()));
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };
    assert_eq!(run(&broken), (Some(2), String::new(), samples[0].clone()));
    assert_eq!(run(&two), (Some(0), samples[1].clone(), String::new()));
    assert_eq!(
        run(&one),
        (
            Some(0),
            "hookgate.yaml: ok (1 route)\n".into(),
            String::new()
        )
    );
}
