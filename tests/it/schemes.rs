//! Every scheme end to end: `hookgate sign` (the real binary) makes the request, a running
//! gateway verifies it, the backend receives it; a changed byte is refused with 401 and the
//! right reason in `hookgate_verify_failures_total`; the matching key is counted in
//! `hookgate_key_matches_total` and the sender's delivery id is logged. Zoom's URL validation is
//! answered by the gateway itself.

use crate::common::*;
use base64::Engine as _;
use hmac::{KeyInit, Mac};
use p256::pkcs8::{EncodePrivateKey, EncodePublicKey};

const JOB: &str = "job_abc123xyz";
/// One body for the JSON schemes: it carries Stripe's event `id`, Slack's `event_id` and
/// Paddle's `notification_id`, the delivery ids those schemes read from the body.
const EVENT: &str = r#"{"id":"evt_test_1","event_id":"Ev01","notification_id":"ntf_01","job_id":"job_abc123xyz","status":"completed"}"#;
const TWILIO_FORM: &str = "MessageSid=SM1&Body=job_abc123xyz+done+%E2%9C%85&From=%2B15550100";
const MAILGUN_EVENT: &str = r#"{"event-data":{"event":"delivered","job_id":"job_abc123xyz"}}"#;
const SENDGRID_EVENTS: &str =
    "[{\"email\":\"ops@example.com\",\"event\":\"delivered\",\"job_id\":\"job_abc123xyz\"}]\r\n";
const STANDARD_SECRET: &str = "whsec_QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZX";
const TWILIO_PUBLIC: &str = "https://hooks.example.com/twilio";

/// Where a scheme's delivery id comes from, to check the log line.
enum Delivery {
    None,
    /// The value of this header of the signed request.
    Header(&'static str),
    Fixed(&'static str),
    /// Mailgun: the token inside the signed body.
    MailgunToken,
}

struct Case {
    /// Route name and path segment.
    route: &'static str,
    scheme: &'static str,
    /// Arguments to `hookgate sign` besides the body file.
    args: Vec<String>,
    body: &'static str,
    key_id: &'static str,
    delivery: Delivery,
}

/// The test's keys, written where the config and `hookgate sign` read them.
struct Keys {
    dir: tempfile::TempDir,
    ed25519_public: String,
    p256_public: String,
}

impl Keys {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let seed = [9u8; 32];
        let ed = ed25519_dalek::SigningKey::from_bytes(&seed);
        let b64 = base64::engine::general_purpose::STANDARD;
        std::fs::write(
            dir.path().join("ed25519.key"),
            format!("whsk_{}\n", b64.encode(seed)),
        )
        .unwrap();
        let ec = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
        let pem = ec.to_pkcs8_pem(Default::default()).unwrap();
        std::fs::write(dir.path().join("p256.pem"), pem.as_bytes()).unwrap();
        let spki = ec.verifying_key().to_public_key_der().unwrap();
        Keys {
            ed25519_public: format!("whpk_{}", b64.encode(ed.verifying_key().to_bytes())),
            p256_public: b64.encode(spki.as_bytes()),
            dir,
        }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

fn secret_of(scheme: &str) -> String {
    match scheme {
        "standard-webhooks" | "svix" => STANDARD_SECRET.to_string(),
        "stripe" => "whsec_test_5b3f1c9e7d2a4b6c".to_string(),
        other => format!("{other}-secret-0123456789"),
    }
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn cases(keys: &Keys) -> Vec<Case> {
    let with_secret = |scheme: &str, extra: &[&str]| {
        let mut a = args(&["--scheme", scheme, "--secret"]);
        a.push(secret_of(scheme));
        a.extend(args(extra));
        a
    };
    let hmac_args = [
        "--header",
        "X-Acme-Signature",
        "--prefix",
        "sha256=",
        "--encoding",
        "base64",
        "--signed",
        "{header.X-Acme-Timestamp}.{body}",
        "--timestamp-header",
        "X-Acme-Timestamp",
    ];
    let twilio_url = format!("{TWILIO_PUBLIC}/sms?tenant=acme&x=%2B1");
    let twilio_json_url = format!("{TWILIO_PUBLIC}/events");
    let simple = |scheme: &'static str, delivery: Delivery| Case {
        route: scheme,
        scheme,
        args: with_secret(scheme, &[]),
        body: EVENT,
        key_id: "current",
        delivery,
    };
    vec![
        simple("mediaconvert", Delivery::None),
        simple("github", Delivery::Header("x-github-delivery")),
        simple("stripe", Delivery::Fixed("evt_test_1")),
        simple("standard-webhooks", Delivery::Header("webhook-id")),
        Case {
            route: "standard-webhooks",
            scheme: "standard-webhooks",
            args: args(&[
                "--scheme",
                "standard-webhooks",
                "--private-key-file",
                &keys.path("ed25519.key"),
            ]),
            body: EVENT,
            key_id: "ed25519",
            delivery: Delivery::Header("webhook-id"),
        },
        simple("svix", Delivery::Header("svix-id")),
        Case {
            route: "svix",
            scheme: "svix",
            args: args(&[
                "--scheme",
                "svix",
                "--private-key-file",
                &keys.path("ed25519.key"),
            ]),
            body: EVENT,
            key_id: "ed25519",
            delivery: Delivery::Header("svix-id"),
        },
        simple("slack", Delivery::Fixed("Ev01")),
        simple("shopify", Delivery::Header("x-shopify-webhook-id")),
        Case {
            route: "twilio",
            scheme: "twilio",
            args: with_secret("twilio", &["--url", &twilio_url]),
            body: TWILIO_FORM,
            key_id: "current",
            delivery: Delivery::Header("i-twilio-idempotency-token"),
        },
        Case {
            route: "twilio",
            scheme: "twilio",
            args: with_secret("twilio", &["--url", &twilio_json_url]),
            body: EVENT,
            key_id: "current",
            delivery: Delivery::Header("i-twilio-idempotency-token"),
        },
        simple("gitlab", Delivery::Header("idempotency-key")),
        simple("paddle", Delivery::Fixed("ntf_01")),
        simple("zoom", Delivery::None),
        simple("linear", Delivery::Header("linear-delivery")),
        Case {
            route: "mailgun",
            scheme: "mailgun",
            args: with_secret("mailgun", &[]),
            body: MAILGUN_EVENT,
            key_id: "current",
            delivery: Delivery::MailgunToken,
        },
        Case {
            route: "mailgun",
            scheme: "mailgun",
            args: with_secret("mailgun", &[]),
            body: TWILIO_FORM,
            key_id: "current",
            delivery: Delivery::MailgunToken,
        },
        Case {
            route: "sendgrid",
            scheme: "sendgrid",
            args: args(&[
                "--scheme",
                "sendgrid",
                "--private-key-file",
                &keys.path("p256.pem"),
            ]),
            body: SENDGRID_EVENTS,
            key_id: "sendgrid",
            delivery: Delivery::None,
        },
        Case {
            route: "hmac",
            scheme: "hmac",
            args: with_secret("hmac", &hmac_args),
            body: EVENT,
            key_id: "current",
            delivery: Delivery::None,
        },
    ]
}

/// One route per scheme; each also holds a `previous` secret that never matches, so the
/// key-id metric proves which key verified.
fn routes(keys: &Keys, backend: &Backend) -> Vec<Value> {
    let mut out = Vec::new();
    for scheme in hookgate::verify::SCHEME_NAMES {
        let path = if *scheme == "twilio" {
            "/hooks/twilio/*".to_string()
        } else {
            format!("/hooks/{scheme}")
        };
        let previous = secret_value("previous", &format!("{scheme}-old-secret"));
        let keys = match *scheme {
            "sendgrid" => json!({
                "public_keys": [secret_value("sendgrid", &keys.p256_public)],
            }),
            "standard-webhooks" | "svix" => json!({
                "secrets": [
                    secret_value("previous", "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
                    secret_value("current", STANDARD_SECRET),
                ],
                "public_keys": [secret_value("ed25519", &keys.ed25519_public)],
            }),
            s => json!({
                "secrets": [previous, secret_value("current", &secret_of(s))],
            }),
        };
        let extra = match *scheme {
            "twilio" => json!({ "public_url": TWILIO_PUBLIC }),
            "hmac" => json!({
                "header": "X-Acme-Signature",
                "prefix": "sha256=",
                "encoding": "base64",
                "signed": "{header.X-Acme-Timestamp}.{body}",
                "timestamp_header": "X-Acme-Timestamp",
            }),
            _ => Value::Null,
        };
        out.push(route(
            scheme,
            &path,
            &backend.url(&format!("/recv/{scheme}")),
            json!({ "scheme": scheme }).merge(keys).merge(extra),
        ));
    }
    out
}

/// The same bytes with `from` replaced by `to` once.
fn tamper(body: &[u8], from: &str, to: &str) -> Vec<u8> {
    let text = String::from_utf8(body.to_vec()).expect("utf-8 body");
    assert!(text.contains(from), "{from} not in {text}");
    text.replacen(from, to, 1).into_bytes()
}

fn forwarded_logs(gw: &Gateway, route: &str) -> Vec<serde_json::Value> {
    gw.request_logs()
        .into_iter()
        .filter(|l| l["route"] == route && l["outcome"] == "forwarded")
        .collect()
}

/// The forwarded request log line of `route` after the first `n`, waiting (bounded) for it.
fn nth_forwarded_log(gw: &Gateway, route: &str, n: usize) -> serde_json::Value {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if let Some(l) = forwarded_logs(gw, route).into_iter().nth(n) {
            return l;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{route}: no request log line #{n}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

fn mailgun_token(body: &[u8]) -> String {
    if body.starts_with(b"{") {
        let v: serde_json::Value = serde_json::from_slice(body).unwrap();
        v["signature"]["token"].as_str().unwrap().to_string()
    } else {
        form_urlencoded::parse(body)
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scheme_signed_by_hookgate_sign_passes_and_a_changed_byte_does_not() {
    let keys = Keys::new();
    let backend = Backend::start();
    let gw = Gateway::start(config(&Opts::default(), routes(&keys, &backend)));
    let cases = cases(&keys);
    let mut covered: Vec<&str> = cases.iter().map(|c| c.scheme).collect();
    covered.sort();
    covered.dedup();
    let mut all: Vec<&str> = hookgate::verify::SCHEME_NAMES.to_vec();
    all.sort();
    assert_eq!(covered, all, "every scheme has a round trip");

    for case in &cases {
        let name = format!("{} ({})", case.scheme, case.args.join(" "));
        let arg_refs: Vec<&str> = case.args.iter().map(String::as_str).collect();
        let signed = hookgate_sign(&arg_refs, case.body.as_bytes());
        let path = match case.scheme {
            // The gateway sees its own address; the query is the one the sender used.
            "twilio" => format!("/hooks{}", signed.path_and_query()),
            s => format!("/hooks/{s}"),
        };

        // Genuine: forwarded byte for byte, with the trusted headers.
        backend.clear();
        let forwarded_before = forwarded_logs(&gw, case.route).len();
        let resp = post(gw.addr(), &path, &signed.header_refs(), &signed.body).await;
        assert_eq!(resp.status, 200, "{name}: {}", resp.text());
        let got = backend.single();
        assert_eq!(
            got.body, signed.body,
            "{name}: body forwarded byte for byte"
        );
        assert_eq!(got.header("x-webhook-verified").as_deref(), Some("true"));
        assert_eq!(
            got.header("x-webhook-provider").as_deref(),
            Some(case.scheme),
            "{name}"
        );
        assert_eq!(
            got.header("x-webhook-key-id").as_deref(),
            Some(case.key_id),
            "{name}"
        );
        let matched = gw.wait_metric(
            "hookgate_key_matches_total",
            &[("route", case.route), ("key_id", case.key_id)],
            |v| v >= 1.0,
        );
        assert!(matched >= 1.0, "{name}: key match not counted");
        let want_id = match &case.delivery {
            Delivery::None => None,
            Delivery::Header(h) => Some(
                signed
                    .header(h)
                    .unwrap_or_else(|| panic!("{name}: sign sent no {h}"))
                    .to_string(),
            ),
            Delivery::Fixed(id) => Some(id.to_string()),
            Delivery::MailgunToken => Some(mailgun_token(&signed.body)),
        };
        let logged = nth_forwarded_log(&gw, case.route, forwarded_before);
        assert_eq!(
            logged["delivery_id"].as_str().map(str::to_owned),
            want_id,
            "{name}: delivery_id in {logged}"
        );

        // One byte changed.
        let before = gw.metric(
            "hookgate_verify_failures_total",
            &[("route", case.route), ("reason", "mismatch")],
        );
        let (changed, headers) = match case.scheme {
            // Only timestamp and token are signed: changed event data still passes (below),
            // a changed token does not.
            "mailgun" => {
                let token = mailgun_token(&signed.body);
                let mut other = token.clone().into_bytes();
                other[0] = if other[0] == b'0' { b'1' } else { b'0' };
                let other = String::from_utf8(other).unwrap();
                (tamper(&signed.body, &token, &other), signed.headers.clone())
            }
            // The body is not authenticated: a changed token is what fails.
            "gitlab" => {
                let mut h = signed.headers.clone();
                for (n, v) in h.iter_mut() {
                    if n.eq_ignore_ascii_case("x-gitlab-token") {
                        v.push('x');
                    }
                }
                (signed.body.clone(), h)
            }
            _ => (
                tamper(&signed.body, JOB, "job_abc123xyY"),
                signed.headers.clone(),
            ),
        };
        backend.clear();
        let refs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let resp = post(gw.addr(), &path, &refs, &changed).await;
        assert_eq!(resp.status, 401, "{name}: changed request");
        assert_eq!(resp.text(), INVALID_SIGNATURE, "{name}");
        assert!(
            backend.requests().is_empty(),
            "{name}: changed request forwarded"
        );
        let after = gw.wait_metric(
            "hookgate_verify_failures_total",
            &[("route", case.route), ("reason", "mismatch")],
            |v| v > before,
        );
        assert!(after > before, "{name}: mismatch not counted");

        // What these two schemes cannot detect, documented as such.
        if matches!(case.scheme, "gitlab" | "mailgun") {
            let unauthenticated = tamper(&signed.body, JOB, "job_abc123xyY");
            let resp = post(gw.addr(), &path, &signed.header_refs(), &unauthenticated).await;
            assert_eq!(resp.status, 200, "{name}: the body is not authenticated");
        }
    }
}

/// Without any signature field, every scheme refuses with `missing_header`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scheme_counts_a_missing_signature() {
    let keys = Keys::new();
    let backend = Backend::start();
    let gw = Gateway::start(config(&Opts::default(), routes(&keys, &backend)));
    for scheme in hookgate::verify::SCHEME_NAMES {
        let path = if *scheme == "twilio" {
            "/hooks/twilio/sms".to_string()
        } else {
            format!("/hooks/{scheme}")
        };
        let resp = post(
            gw.addr(),
            &path,
            &[("content-type", "application/json")],
            EVENT.as_bytes(),
        )
        .await;
        assert_eq!(resp.status, 401, "{scheme}");
        assert_eq!(resp.text(), INVALID_SIGNATURE, "{scheme}");
        let n = gw.wait_metric(
            "hookgate_verify_failures_total",
            &[("route", scheme), ("reason", "missing_header")],
            |v| v >= 1.0,
        );
        assert_eq!(n, 1.0, "{scheme}: missing_header");
    }
    assert!(backend.requests().is_empty());
}

/// A signed timestamp outside the route's window is refused as expired or future.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamps_outside_the_window_are_refused_with_their_reason() {
    let keys = Keys::new();
    let backend = Backend::start();
    let gw = Gateway::start(config(&Opts::default(), routes(&keys, &backend)));
    let now = unix_now();
    for scheme in [
        "stripe",
        "slack",
        "paddle",
        "standard-webhooks",
        "sendgrid",
        "hmac",
        "linear",
    ] {
        for (offset, reason) in [(-3600i64, "timestamp_expired"), (3600, "timestamp_future")] {
            let at = (now + offset).to_string();
            let mut a = vec![
                "--scheme".to_string(),
                scheme.to_string(),
                "--timestamp".into(),
                at,
            ];
            match scheme {
                "sendgrid" => a.extend(args(&["--private-key-file", &keys.path("p256.pem")])),
                _ => a.extend(["--secret".to_string(), secret_of(scheme)]),
            }
            if scheme == "hmac" {
                a.extend(args(&[
                    "--header",
                    "X-Acme-Signature",
                    "--prefix",
                    "sha256=",
                    "--encoding",
                    "base64",
                    "--signed",
                    "{header.X-Acme-Timestamp}.{body}",
                    "--timestamp-header",
                    "X-Acme-Timestamp",
                ]));
            }
            let refs: Vec<&str> = a.iter().map(String::as_str).collect();
            let body = if scheme == "sendgrid" {
                SENDGRID_EVENTS
            } else {
                EVENT
            };
            let signed = hookgate_sign(&refs, body.as_bytes());
            let resp = post(
                gw.addr(),
                &format!("/hooks/{scheme}"),
                &signed.header_refs(),
                &signed.body,
            )
            .await;
            assert_eq!(resp.status, 401, "{scheme} {offset}");
            let n = gw.wait_metric(
                "hookgate_verify_failures_total",
                &[("route", scheme), ("reason", reason)],
                |v| v >= 1.0,
            );
            assert_eq!(n, 1.0, "{scheme}: {reason}");
        }
    }
    assert!(backend.requests().is_empty());
}

/// Zoom's `endpoint.url_validation` is answered by the gateway with the encrypted token, and
/// never forwarded; an unsigned one gets 401.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zoom_url_validation_is_answered_by_the_gateway() {
    let keys = Keys::new();
    let backend = Backend::start();
    let gw = Gateway::start(config(&Opts::default(), routes(&keys, &backend)));
    let body = r#"{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1705314670123,"event":"endpoint.url_validation"}"#;
    let secret = secret_of("zoom");
    let signed = hookgate_sign(&["--scheme", "zoom", "--secret", &secret], body.as_bytes());
    let resp = post(
        gw.addr(),
        "/hooks/zoom",
        &signed.header_refs(),
        &signed.body,
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        resp.header("content-type").as_deref(),
        Some("application/json")
    );
    let answer: serde_json::Value = serde_json::from_slice(&resp.body).expect("JSON answer");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(b"qgg8vlvZRS6UYooatFL8Aw");
    let encrypted = hex::encode(mac.finalize().into_bytes());
    assert_eq!(
        answer,
        serde_json::json!({"plainToken": "qgg8vlvZRS6UYooatFL8Aw", "encryptedToken": encrypted})
    );
    assert!(
        backend.requests().is_empty(),
        "validation must not be forwarded"
    );
    let log = gw
        .wait_request_log(|l| l["route"] == "zoom")
        .expect("request log");
    assert_eq!(log["outcome"], "answered", "{log}");
    assert_eq!(log["status"], 200, "{log}");

    let forged = post(
        gw.addr(),
        "/hooks/zoom",
        &[
            ("x-zm-request-timestamp", &unix_now().to_string()),
            ("x-zm-signature", &format!("v0={}", "0".repeat(64))),
        ],
        body.as_bytes(),
    )
    .await;
    assert_eq!(forged.status, 401);
    assert_eq!(forged.text(), INVALID_SIGNATURE);
    assert!(backend.requests().is_empty());
}

/// `hookgate send` signs and posts for the asymmetric schemes and for twilio behind a proxy
/// (`--public-url`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_posts_signed_requests() {
    let keys = Keys::new();
    let backend = Backend::start();
    let gw = Gateway::start(config(&Opts::default(), routes(&keys, &backend)));
    let dir = tempfile::tempdir().unwrap();
    let body_file = dir.path().join("events.json");
    std::fs::write(&body_file, SENDGRID_EVENTS).unwrap();
    let body_path = body_file.to_str().unwrap();
    let form_file = dir.path().join("form");
    std::fs::write(&form_file, TWILIO_FORM).unwrap();
    let twilio_target = gw.url("/hooks/twilio/sms?tenant=acme");
    let twilio_public = format!("{TWILIO_PUBLIC}/sms?tenant=acme");
    let twilio_secret = secret_of("twilio");
    let p256 = keys.path("p256.pem");
    let ed = keys.path("ed25519.key");
    let sendgrid_url = gw.url("/hooks/sendgrid");
    let svix_url = gw.url("/hooks/svix");
    let runs: [(&str, Vec<&str>); 3] = [
        (
            "sendgrid",
            vec![
                "send",
                "--scheme",
                "sendgrid",
                "--private-key-file",
                &p256,
                &sendgrid_url,
                body_path,
            ],
        ),
        (
            "svix",
            vec![
                "send",
                "--scheme",
                "svix",
                "--private-key-file",
                &ed,
                &svix_url,
                body_path,
            ],
        ),
        (
            "twilio",
            vec![
                "send",
                "--scheme",
                "twilio",
                "--secret",
                &twilio_secret,
                "--public-url",
                &twilio_public,
                &twilio_target,
                form_file.to_str().unwrap(),
            ],
        ),
    ];
    for (scheme, argv) in runs {
        backend.clear();
        let out = run_cli(&argv, &[], None);
        assert!(
            out.status.success(),
            "{scheme}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let got = backend.single();
        assert_eq!(got.header("x-webhook-provider").as_deref(), Some(scheme));
    }
}

/// `sign --help` lists every scheme, and a key or URL the scheme cannot use is a usage error.
#[test]
fn sign_lists_schemes_and_refuses_unusable_keys() {
    let out = run_cli(&["sign", "--help"], &[], None);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for scheme in hookgate::verify::SCHEME_NAMES {
        assert!(
            help.contains(scheme),
            "sign --help does not list {scheme}:\n{help}"
        );
    }
    let keys = Keys::new();
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("b");
    std::fs::write(&body, EVENT).unwrap();
    let body = body.to_str().unwrap();
    let p256 = keys.path("p256.pem");
    for (argv, message) in [
        (
            vec!["sign", "--scheme", "twilio", "--secret", "s", body],
            "give --url",
        ),
        (
            vec!["sign", "--scheme", "sendgrid", "--secret", "s", body],
            "P-256 private key",
        ),
        (
            vec![
                "sign",
                "--scheme",
                "stripe",
                "--private-key-file",
                &p256,
                body,
            ],
            "shared secret",
        ),
        (
            vec!["sign", "--scheme", "nope", "--secret", "s", body],
            "invalid value 'nope'",
        ),
    ] {
        let out = run_cli(&argv, &[], None);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{argv:?}: {err}");
        assert!(err.contains(message), "{argv:?}: {err}");
    }
}

/// A key that does not decode stops the gateway at start-up with its key path.
#[test]
fn bad_keys_are_config_errors_naming_their_path() {
    let routes = [
        route(
            "sg",
            "/sg",
            "http://127.0.0.1:9/x",
            json!({
                "scheme": "sendgrid",
                "public_keys": [secret_value("k", "bm90IGEga2V5")],
            }),
        ),
        route(
            "sw",
            "/sw",
            "http://127.0.0.1:9/x",
            verify("standard-webhooks", &[secret_value("k", "whsec_%%%")]),
        ),
    ];
    let out = run_with_config("check", config(&Opts::default(), &routes), &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("routes[0].verify.public_keys[0]: not a P-256 public key"),
        "{err}"
    );
    assert!(
        err.contains("routes[1].verify.secrets[0]: not a Standard Webhooks secret"),
        "{err}"
    );
    assert!(!err.contains("%%%"), "the secret leaked: {err}");
}
