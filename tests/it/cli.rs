//! The helper commands as an operator runs them (docs/operations.md#command-line): `sign` and
//! `send` for a route of a config file, what they say when a flag is missing or a gateway
//! cannot be reached, `dlq` against the address `admin.listen` names, and the README's way of
//! putting `hookgate` on PATH.

use std::net::TcpListener;
use std::path::Path;
use std::process::Output;

use crate::common::tls::{with_tls, TestCert};
use crate::common::*;
use base64::Engine;

const SECRET: &str = "route-secret-7Qm2";
const SVIX_SECRET: &str = "whsec_U3RhbmRhcmRTZWNyZXRWYWx1ZS1rOWo4aDc=";
const BODY: &[u8] = br#"{"id":"evt_1","status":"completed"}"#;

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn text(o: &Output) -> String {
    format!("{}{}", stdout(o), stderr(o))
}

/// Writes `body` to `dir/name`; returns its path.
fn file(dir: &Path, name: &str, body: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path.display().to_string()
}

/// A P-256 key pair: the private key's PEM file in `dir`, and the public key as config takes it.
fn p256_keys(dir: &Path) -> (String, String) {
    use p256::pkcs8::{EncodePrivateKey, EncodePublicKey};
    let key = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
    let pem = key.to_pkcs8_pem(Default::default()).unwrap();
    let public = key.verifying_key().to_public_key_der().unwrap();
    (
        file(dir, "p256.pem", pem.as_bytes()),
        base64::engine::general_purpose::STANDARD.encode(public.as_bytes()),
    )
}

/// `config` with the proxy on a port chosen here, so the file says where the gateway answers.
fn on_fixed_port(mut c: Value) -> Value {
    c["server"]["listen"] = json!(format!("127.0.0.1:{}", dead_port()));
    c
}

/// A generic hmac route with each setting away from its default, a twilio route with its
/// public URL, a route that answers only for its host, a svix route with a whsec_ secret, and
/// a sendgrid route (public keys only).
fn routes(backend: &Backend, p256_public: &str) -> Vec<Value> {
    vec![
        route(
            "acme",
            "/hooks/acme",
            &backend.url("/acme"),
            json!({
                "scheme": "hmac",
                "header": "X-Acme-Signature",
                "prefix": "v1=",
                "encoding": "base64",
                "algorithm": "sha512",
                "signed": "{header.X-Acme-Timestamp}.{body}",
                "timestamp_header": "X-Acme-Timestamp",
                "secrets": [secret_value("current", SECRET), secret_value("previous", "old")],
            }),
        ),
        route(
            "sms",
            "/twilio/*",
            &backend.url("/sms"),
            json!({
                "scheme": "twilio",
                "public_url": "https://hooks.example.com/twilio",
                "secrets": [secret_value("current", SECRET)],
            }),
        ),
        route(
            "tenant",
            "/hooks/tenant",
            &backend.url("/tenant"),
            mc_verify(&[("current", SECRET)]),
        )
        .with("host", "tenant.example.com"),
        route(
            "svix",
            "/hooks/svix",
            &backend.url("/svix"),
            verify("svix", &[secret_value("current", SVIX_SECRET)]),
        ),
        route(
            "sg",
            "/hooks/sg",
            &backend.url("/sg"),
            json!({"scheme": "sendgrid", "public_keys": [secret_value("k", p256_public)]}),
        ),
    ]
}

/// `send -c CONFIG --route NAME` signs with the route's scheme, settings and first secret and
/// posts to its URL on the gateway (server.listen and the route's path, its host as Host);
/// `sign` prints the same URL; `--secret` and `--private-key-file` stand in for the config's.
#[test]
fn sign_and_send_use_a_route_of_the_config() {
    let backend = Backend::start();
    let dir = tempfile::tempdir().unwrap();
    let (p256_private, p256_public) = p256_keys(dir.path());
    let gw = Gateway::start(on_fixed_port(config(
        &Opts::default(),
        routes(&backend, &p256_public),
    )));
    let cfg = gw.config_file().display().to_string();
    let body = file(dir.path(), "event.json", BODY);
    let form = file(dir.path(), "form.txt", b"From=%2B15551234567&Body=hi");

    for (name, body, path, provider) in [
        ("acme", &body, "/acme", "hmac"),
        ("sms", &form, "/sms", "twilio"),
        ("tenant", &body, "/tenant", "mediaconvert"),
        ("svix", &body, "/svix", "svix"),
    ] {
        backend.clear();
        let out = run_cli(&["send", "-c", &cfg, "--route", name, body], &[], None);
        assert!(out.status.success(), "send --route {name}: {}", text(&out));
        let got = backend.single();
        assert_eq!(got.uri, path, "{name}");
        assert_eq!(got.header("x-webhook-provider").as_deref(), Some(provider));
        assert_eq!(
            got.header("x-webhook-key-id").as_deref(),
            Some("current"),
            "{name}: signed with the route's first secret"
        );
        assert!(!text(&out).contains(SECRET), "{name}: the secret leaked");
    }

    // The hmac route's settings are all in the request: no flag repeats them.
    let acme = hookgate_sign(&["-c", &cfg, "--route", "acme"], BODY);
    assert_eq!(acme.url, gw.url("/hooks/acme"));
    let ts = acme.header("x-acme-timestamp").expect("timestamp header");
    let mac = hmac_sha512(SECRET.as_bytes(), format!("{ts}.").as_bytes(), BODY);
    assert_eq!(acme.header("x-acme-signature"), Some(&*format!("v1={mac}")));
    let resp = tokio_run(post(
        gw.addr(),
        "/hooks/acme",
        &acme.header_refs(),
        &acme.body,
    ));
    assert_eq!(resp.status, 200, "{}", resp.text());
    let tenant = hookgate_sign(&["-c", &cfg, "--route", "tenant"], BODY);
    assert_eq!(tenant.header("host"), Some("tenant.example.com"));

    // A key on the command line wins over the route's.
    backend.clear();
    let out = run_cli(
        &[
            "send", "-c", &cfg, "--route", "acme", "--secret", "old", &body,
        ],
        &[],
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        backend.single().header("x-webhook-key-id").as_deref(),
        Some("previous")
    );

    // sendgrid verifies with a public key: the private one must be given.
    let out = run_cli(&["send", "-c", &cfg, "--route", "sg", &body], &[], None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        stderr(&out).contains("route `sg` (scheme sendgrid) has no shared secret to sign with: give --private-key-file FILE"),
        "{}",
        text(&out)
    );
    backend.clear();
    let out = run_cli(
        &[
            "send",
            "-c",
            &cfg,
            "--route",
            "sg",
            "--private-key-file",
            &p256_private,
            &body,
        ],
        &[],
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(backend.single().uri, "/sg");

    // A route the config does not have, and flags that describe a scheme besides --route.
    let out = run_cli(&["send", "-c", &cfg, "--route", "nope", &body], &[], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no route named `nope`")
            && stderr(&out).contains("its routes: acme, sms, tenant, svix, sg"),
        "{}",
        text(&out)
    );
    let out = run_cli(
        &[
            "sign", "-c", &cfg, "--route", "acme", "--header", "X-Sig", &body,
        ],
        &[],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot be used with"),
        "{}",
        text(&out)
    );
}

/// HMAC-SHA512 of `prefix` then `body`, base64.
fn hmac_sha512(key: &[u8], prefix: &[u8], body: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha512>::new_from_slice(key).unwrap();
    mac.update(prefix);
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn tokio_run<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Without a route or --url, `sign`'s curl command goes to a placeholder nobody would take for
/// a real URL (it used to be http://127.0.0.1:8080/, a 404), and stderr says what to do.
#[test]
fn sign_without_a_route_prints_a_placeholder_url() {
    let signed = hookgate_sign(&["--scheme", "github", "--secret", SECRET], BODY);
    assert_eq!(signed.url, "http://HOOKGATE_HOST/ROUTE_PATH");
    let dir = tempfile::tempdir().unwrap();
    let body = file(dir.path(), "b", BODY);
    let out = run_cli(
        &["sign", "--scheme", "github", "--secret", SECRET, &body],
        &[],
        None,
    );
    assert!(
        stderr(&out).contains("placeholder") && stderr(&out).contains("--route"),
        "{}",
        text(&out)
    );
    let out = run_cli(
        &["send", "--scheme", "github", "--secret", SECRET, &body],
        &[],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("give the URL"), "{}", text(&out));
}

/// A missing key or setting is named by the flags the scheme needs (sendgrid was asked for
/// --secret, which it cannot use).
#[test]
fn missing_flags_are_the_ones_the_scheme_needs() {
    let dir = tempfile::tempdir().unwrap();
    let body = file(dir.path(), "b", BODY);
    for (scheme, wants, not) in [
        ("sendgrid", "scheme sendgrid needs --private-key-file FILE", "--secret"),
        ("github", "scheme github needs --secret SECRET (or HOOKGATE_SECRET, --secret-file FILE)", "--private-key-file"),
        ("svix", "--secret whsec_... (or HOOKGATE_SECRET, --secret-file FILE) for v1, or --private-key-file FILE (whsk_...) for v1a", "--header"),
        ("hmac", "scheme hmac needs --header NAME", "--private-key-file"),
    ] {
        let out = run_cli(&["sign", "--scheme", scheme, &body], &[], None);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{scheme}: {err}");
        assert!(err.contains(wants), "{scheme}: {err}");
        assert!(!err.contains(not), "{scheme}: {err}");
    }
    let out = run_cli(
        &["sign", "--scheme", "hmac", "--secret", "s", &body],
        &[],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("scheme hmac needs --header NAME")
            && !stderr(&out).contains("--secret"),
        "{}",
        text(&out)
    );
}

/// `send` says where it could not connect and why, in words.
#[test]
fn send_failures_name_the_address_and_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let body = file(dir.path(), "b", BODY);
    let send = |url: &str, extra: &[&str]| {
        let mut args = vec!["send", "--scheme", "github", "--secret", SECRET];
        args.extend_from_slice(extra);
        args.extend([url, body.as_str()]);
        run_cli(&args, &[], None)
    };

    let port = dead_port();
    let out = send(&format!("http://127.0.0.1:{port}/hooks/github"), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!("hookgate: cannot connect to 127.0.0.1:{port}: connection refused\n")
    );

    // Accepts (the kernel's backlog does) and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let out = send(&format!("http://{addr}/x"), &["--timeout", "300ms"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!("hookgate: {addr} did not answer within 300ms\n")
    );

    // https to a plain HTTP server.
    let backend = Backend::start();
    let out = send(&format!("https://{}/x", backend.addr()), &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.starts_with(&format!(
            "hookgate: TLS handshake with {} failed:",
            backend.addr()
        )) && err.contains("try http://"),
        "{err}"
    );

    let out = send("http://no-such-host.invalid/x", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("hookgate: cannot resolve no-such-host.invalid: "),
        "{}",
        text(&out)
    );
}

/// `send` speaks HTTPS to a TLS gateway: a self-signed certificate is refused with the flag that
/// trusts it, and accepted with `--cacert`; with `--route` the URL from the config is https.
#[test]
fn send_over_tls_trusts_cacert() {
    let backend = Backend::start();
    let dir = tempfile::tempdir().unwrap();
    let cert = TestCert::generate();
    let (crt, key) = cert.write_to(dir.path());
    let routes = route(
        "mc",
        "/hooks/mc",
        &backend.url("/mc"),
        mc_verify(&[("current", SECRET)]),
    );
    let gw = Gateway::start(on_fixed_port(with_tls(
        config(&Opts::default(), routes),
        &crt,
        &key,
    )));
    let cfg = gw.config_file().display().to_string();
    let body = file(dir.path(), "b", BODY);
    let crt = crt.display().to_string();

    let out = run_cli(&["send", "-c", &cfg, "--route", "mc", &body], &[], None);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.starts_with(&format!(
            "hookgate: TLS handshake with 127.0.0.1:{} failed:",
            gw.addr().port()
        )) && err.contains("--cacert FILE"),
        "{err}"
    );
    let out = run_cli(
        &["send", "-c", &cfg, "--route", "mc", "--cacert", &crt, &body],
        &[],
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(backend.single().uri, "/mc");
    let url = format!("https://localhost:{}/hooks/mc", gw.addr().port());
    let out = run_cli(
        &[
            "send",
            "--scheme",
            "mediaconvert",
            "--secret",
            SECRET,
            "--cacert",
            &crt,
            &url,
            &body,
        ],
        &[],
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
}

/// A gateway on a redb store whose queue route `q` holds one dead letter; its id.
async fn gateway_with_a_dead_letter(dir: &Path, backend: &Backend) -> (Gateway, u64) {
    let opts = Opts {
        store: Some(redb_store(&dir.join("hookgate.redb"))),
        ..Opts::default()
    };
    let q = route(
        "q",
        "/hooks/q",
        &backend.url("/q"),
        mc_verify(&[("k", SECRET)]),
    )
    .with("delivery", json!({"mode": "queue"}));
    let gw = Gateway::start(config(&opts, q));
    assert_eq!(
        post_mc(gw.addr(), "/hooks/q", SECRET, BODY).await.status,
        202
    );
    gw.wait_metric("hookgate_dead_letters", &[("route", "q")], |v| v == 1.0);
    let admin = format!("http://{}", gw.admin());
    let list = run_cli(&["dlq", "list", "--json", "--admin", &admin], &[], None);
    assert!(list.status.success(), "{}", text(&list));
    let v: Value = serde_json::from_slice(&list.stdout).unwrap();
    let id = v["dead_letters"][0]["id"].as_u64().unwrap();
    (gw, id)
}

fn refusing_backend() -> Backend {
    Backend::start_with(Behaviour {
        status: 400,
        ..Behaviour::default()
    })
}

/// `dlq --admin` takes admin.listen's own form (host:port) as well as a URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlq_admin_is_host_port_or_a_url() {
    let backend = refusing_backend();
    let dir = tempfile::tempdir().unwrap();
    let (gw, id) = gateway_with_a_dead_letter(dir.path(), &backend).await;
    for admin in [gw.admin().to_string(), format!("http://{}/", gw.admin())] {
        let list = run_cli(&["dlq", "list", "--admin", &admin], &[], None);
        assert!(list.status.success(), "{admin}: {}", text(&list));
        let lines: Vec<String> = stdout(&list).lines().map(str::to_owned).collect();
        assert_eq!(lines.len(), 2, "{admin}: {}", text(&list));
        assert!(lines[1].starts_with(&format!("{id}\tq\t")), "{lines:?}");
    }
    for bad in ["https://127.0.0.1:9", "ftp://x", ":9090"] {
        let out = run_cli(&["dlq", "list", "--admin", bad], &[], None);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", text(&out));
        assert!(stderr(&out).contains("host:port"), "{}", text(&out));
    }
}

/// An id that is not a dead letter is reported and fails the command (it used to print
/// `replayed 0` and exit 0); the ids that were found are still done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlq_unknown_id_is_not_found() {
    let backend = refusing_backend();
    let dir = tempfile::tempdir().unwrap();
    let (gw, id) = gateway_with_a_dead_letter(dir.path(), &backend).await;
    let admin = format!("http://{}", gw.admin());
    let missing = id + 1000;
    for verb in ["replay", "drop"] {
        let out = run_cli(
            &["dlq", verb, "--id", &missing.to_string(), "--admin", &admin],
            &[],
            None,
        );
        assert_eq!(out.status.code(), Some(1), "{verb}: {}", text(&out));
        assert_eq!(stdout(&out), "", "{verb}");
        assert_eq!(
            stderr(&out),
            format!("hookgate: no dead letter with id {missing}\n"),
            "{verb}"
        );
    }
    let both = format!("{id},{missing}");
    let out = run_cli(
        &["dlq", "replay", "--id", &both, "--admin", &admin],
        &[],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(stdout(&out), format!("replayed 1 dead letter(s): {id}\n"));
    assert_eq!(
        stderr(&out),
        format!("hookgate: no dead letter with id {missing}\n")
    );
}

/// A gateway on the memory store has no queue: `dlq` says so instead of an empty list.
#[test]
fn dlq_on_the_memory_store_says_there_is_no_queue() {
    let backend = Backend::start();
    let gw = Gateway::start(config(
        &Opts::default(),
        route("s", "/s", &backend.url("/s"), mc_verify(&[("k", SECRET)])),
    ));
    let admin = format!("http://{}", gw.admin());
    for args in [
        vec!["dlq", "list", "--admin", &admin],
        vec!["dlq", "list", "--json", "--admin", &admin],
        vec!["dlq", "replay", "--all", "--admin", &admin],
    ] {
        let out = run_cli(&args, &[], None);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
        assert_eq!(stdout(&out), "", "{args:?}");
        assert!(
            stderr(&out).contains("runs on the memory store, which has no queue"),
            "{args:?}: {}",
            text(&out)
        );
    }
}

/// The README installs `hookgate` before its commands use it, and neither it nor docs/ runs
/// the binary from target/.
#[test]
fn readme_puts_hookgate_on_path_before_using_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let install = readme
        .find("cargo install --path .")
        .expect("README.md gives the install step");
    let code_lines = |text: &str| -> Vec<(usize, String)> {
        let mut inside = false;
        let mut out = Vec::new();
        let mut offset = 0;
        for line in text.split_inclusive('\n') {
            if line.trim_start().starts_with("```") {
                inside = !inside;
            } else if inside {
                out.push((offset, line.trim().to_string()));
            }
            offset += line.len();
        }
        out
    };
    let runs_hookgate = |line: &str| {
        line.split_whitespace()
            .find(|w| !w.contains('='))
            .is_some_and(|w| w == "hookgate")
    };
    let first = code_lines(&readme)
        .into_iter()
        .find(|(_, l)| runs_hookgate(l))
        .expect("README.md shows hookgate commands");
    assert!(
        install < first.0,
        "README.md uses `{}` before installing hookgate",
        first.1
    );
    let mut pages = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        // The pages only: docs/ also holds the console's screenshots.
        if path.extension().is_some_and(|e| e == "md") {
            pages.push(path);
        }
    }
    for page in pages {
        let text = std::fs::read_to_string(&page).unwrap();
        assert!(
            !text.contains("target/release/hookgate"),
            "{}: runs the binary from target/",
            page.display()
        );
        for (_, line) in code_lines(&text) {
            if let Some((_, rest)) = line.split_once("cargo run --release -- ") {
                assert!(
                    rest == "run -c config.example.yaml",
                    "{}: `{line}`: write it as `hookgate ...`",
                    page.display()
                );
            }
        }
    }
}

/// Every command's help starts with what it does and reads without clap's defaults leaking a
/// real-looking URL.
#[test]
fn help_of_every_command() {
    for args in [
        vec!["--help"],
        vec!["run", "--help"],
        vec!["check", "--help"],
        vec!["sign", "--help"],
        vec!["send", "--help"],
        vec!["echo", "--help"],
        vec!["dlq", "--help"],
        vec!["dlq", "list", "--help"],
        vec!["dlq", "replay", "--help"],
        vec!["dlq", "drop", "--help"],
    ] {
        let out = run_cli(&args, &[], None);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        let help = stdout(&out);
        assert!(!help.contains("127.0.0.1:8080"), "{args:?}:\n{help}");
        if args.contains(&"sign") || args.contains(&"send") {
            assert!(
                help.contains("--route <NAME>") && help.contains("-c, --config <FILE>"),
                "{args:?}:\n{help}"
            );
        }
        if args.contains(&"list") || args.contains(&"replay") || args.contains(&"drop") {
            assert!(help.contains("host:port"), "{args:?}:\n{help}");
        }
    }
}

/// A reader that stops early (`hookgate sign ... | head -1`) ends the output quietly: the
/// pipe's reading end is closed before the command starts, so every write meets a closed pipe.
#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let body = file(dir.path(), "b", BODY);
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_hookgate"))
        .args(["sign", "--scheme", "github", "--secret", SECRET, &body])
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(!err.contains("panicked"), "{err}");
    assert!(!err.contains("Broken pipe"), "{err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
}

/// Output that cannot be written for another reason (a full disk: `/dev/full`) is said, and the
/// command fails instead of claiming success.
#[test]
fn output_that_cannot_be_written_fails_the_command() {
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let body = file(dir.path(), "b", BODY);
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hookgate"))
        .args(["sign", "--scheme", "github", "--secret", SECRET, &body])
        .stdin(Stdio::null())
        .stdout(full)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot write the output"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
