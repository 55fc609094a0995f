//! Verify-only mode (`authz`, docs/authz.md) through the real binary: Envoy's gRPC
//! `Authorization/Check` asked by a client built from Envoy's own API definitions in Python
//! (`envoy-data-plane` + `grpclib`, installed by `bash tests/authz/setup.sh` into `.venv/`), and
//! HTTP checks shaped as Envoy's `http_service` and Traefik's forwardAuth send them. Each:
//! allowed, forged, duplicate, rate-limited, schema-refused and truncated, with spoofed trusted
//! headers that never survive; counted, logged and journaled with `mode="authz"`.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use base64::Engine;

use crate::common::*;

const SECRET: &str = "authz-secret";
const TOKEN: &str = "authz-admin-token";
const SETUP: &str =
    "run `bash tests/authz/setup.sh` first (it installs envoy-data-plane and grpclib into .venv/)";

/// A JSON schema: an order has an integer `id`.
const ORDER_SCHEMA: &str =
    r#"{"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}}"#;

/// Routes: `mc` (dedup on `/id`, schema), `tight` (one request per address per hour). No
/// upstream is ever called: it points at a closed port.
fn gateway(http_duplicate: &str) -> Gateway {
    let mc = route(
        "mc",
        "/hooks/mc",
        "http://127.0.0.1:9/",
        mc_verify(&[("k", SECRET)]),
    )
    .with("dedup", json!({"key": "{body./id}"}))
    .with("schema", json!({"file": "order.json"}));
    let tight = route(
        "tight",
        "/hooks/tight",
        "http://127.0.0.1:9/",
        mc_verify(&[("k", SECRET)]),
    )
    .with("rate_limit", json!({"per_ip": {"rate": "1/h", "burst": 1}}));
    let c = config(&Opts::default(), vec![mc, tight])
        .with(
            "authz",
            json!({"listen": "127.0.0.1:0", "http_path_prefix": "/authz", "http_duplicate": http_duplicate}),
        )
        .with("admin", json!({"listen": "127.0.0.1:0", "token": {"id": "admin", "value": TOKEN}}));
    Gateway::start_with_files(c, &[("order.json", ORDER_SCHEMA)])
}

/// The trusted headers of the first allowed order on route `mc`.
const TRUSTED: [(&str, &str); 5] = [
    ("x-webhook-verified", "true"),
    ("x-webhook-provider", "mediaconvert"),
    ("x-webhook-route", "mc"),
    ("x-webhook-key-id", "k"),
    ("x-webhook-id", "1"),
];

/// The headers of a signed delivery, plus spoofed trusted headers in three spellings.
fn signed(body: &[u8]) -> Vec<(String, String)> {
    vec![
        ("content-type".into(), "application/json".into()),
        (
            "x-mediaconvert-signature".into(),
            sha256_header(SECRET, body),
        ),
        ("x-webhook-verified".into(), "spoofed".into()),
        ("x_webhook_route".into(), "spoofed".into()),
        ("X-Webhook-Delivery".into(), "spoofed".into()),
    ]
}

fn forged() -> Vec<(String, String)> {
    vec![(
        "x-mediaconvert-signature".to_string(),
        format!("sha256={}", "0".repeat(64)),
    )]
}

/// One check as `tests/authz/check.py` reads it.
fn grpc_check(path: &str, headers: &[(String, String)], body: &[u8], shape: (&str, bool)) -> Value {
    json!({
        "method": "POST",
        "path": path,
        "host": "hooks.example.com",
        "headers": headers,
        "body_b64": base64::engine::general_purpose::STANDARD.encode(body),
        "body_field": shape.0,
        "header_map": shape.1,
    })
}

/// Runs `checks` through Envoy's gRPC client in Python, in order, on one channel.
fn ask_grpc(addr: SocketAddr, checks: Vec<Value>) -> Vec<Value> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".venv/bin/python");
    assert!(python.exists(), "{} is missing: {SETUP}", python.display());
    let mut cmd = Command::new(&python);
    cmd.arg(root.join("tests/authz/check.py"));
    let input = json!({"addr": addr.to_string(), "checks": checks});
    run_json(cmd, "tests/authz/check.py", SETUP, &input)
}

/// `[name, value, append]` triples of a gRPC answer, by lowercase name.
fn grpc_header<'a>(answer: &'a Value, name: &str) -> Option<&'a Value> {
    answer["headers"]
        .as_array()?
        .iter()
        .find(|h| h[0].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)))
}

fn denied(answer: &Value) -> (u64, Value) {
    assert_eq!(answer["allowed"], false, "{answer}");
    assert_ne!(answer["code"], 0, "a denial is not OK: {answer}");
    let body =
        serde_json::from_str(answer["body"].as_str().unwrap_or("null")).unwrap_or(Value::Null);
    (answer["status"].as_u64().unwrap_or(0), body)
}

#[tokio::test]
async fn grpc_checks_as_envoy_sends_them() {
    let gw = gateway("deny_202");
    let order = |id: u32| format!(r#"{{"id":{id},"status":"COMPLETE"}}"#).into_bytes();
    let one = order(1);
    let two = order(2);
    let bad_schema = br#"{"id":"not a number"}"#.to_vec();
    let mut cl_long = signed(&one);
    cl_long.push(("content-length".into(), "4096".into()));
    let mut flagged = signed(&one);
    flagged.push(("x-envoy-auth-partial-body".into(), "true".into()));
    let raw = ("raw_body", true);
    let text = ("body", false);
    let answers = ask_grpc(
        gw.authz(),
        vec![
            grpc_check("/hooks/mc", &signed(&one), &one, raw),
            grpc_check("/hooks/mc?x=1", &signed(&two), &two, text),
            grpc_check("/hooks/mc", &forged(), &order(3), raw),
            grpc_check("/hooks/mc", &signed(&one), &one, text),
            grpc_check("/hooks/tight", &signed(&one), &one, raw),
            grpc_check("/hooks/tight", &signed(&one), &one, raw),
            grpc_check("/hooks/mc", &signed(&bad_schema), &bad_schema, raw),
            grpc_check("/hooks/mc", &flagged, &one, raw),
            grpc_check("/hooks/mc", &cl_long, &order(4), text),
        ],
    );
    assert_eq!(answers.len(), 9);

    // Allowed, raw_body + header_map: the trusted headers overwrite, the other look-alikes go.
    let a = &answers[0];
    assert_eq!(
        (a["allowed"].as_bool(), a["code"].as_u64()),
        (Some(true), Some(0)),
        "{a}"
    );
    for (name, value) in TRUSTED {
        let h = grpc_header(a, name).unwrap_or_else(|| panic!("{name} not set: {a}"));
        assert_eq!(h[1], value, "{a}");
        assert_eq!(
            h[2], false,
            "{name} must replace any inbound copy (append: false)"
        );
    }
    let mut removed: Vec<&str> = a["headers_to_remove"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    removed.sort_unstable();
    // Envoy removes after setting: a name that is set is never listed.
    assert_eq!(removed, ["x-webhook-delivery", "x_webhook_route"], "{a}");
    assert_eq!(a["metadata"]["route"], "mc", "{a}");
    assert_eq!(a["metadata"]["provider"], "mediaconvert", "{a}");
    assert_eq!(a["metadata"]["dedup_key"], "1", "{a}");

    // Allowed, body + headers map, with a query.
    assert_eq!(answers[1]["allowed"], true, "{}", answers[1]);
    // Forged: 401 and nothing more.
    assert_eq!(
        denied(&answers[2]),
        (401, json!({"error": "invalid signature"}))
    );
    // The first copy again, this time as `body`: a duplicate, success for the sender.
    assert_eq!(denied(&answers[3]), (200, json!({"status": "duplicate"})));
    // Rate-limited per address: the second from the same source.
    assert_eq!(answers[4]["allowed"], true, "{}", answers[4]);
    let (status, body) = denied(&answers[5]);
    assert_eq!((status, &body["error"]), (429, &json!("rate limited")));
    let retry = grpc_header(&answers[5], "retry-after").expect("Retry-After");
    assert!(retry[1].as_str().unwrap().parse::<u64>().unwrap() > 0);
    // Schema-refused.
    let (status, body) = denied(&answers[6]);
    assert_eq!((status, &body["error"]), (422, &json!("schema")));
    // Truncated: flagged by Envoy, or shorter than its Content-Length.
    assert_eq!(
        denied(&answers[7]),
        (413, json!({"error": "payload too large"}))
    );
    assert_eq!(
        denied(&answers[8]),
        (413, json!({"error": "payload too large"}))
    );

    // Counted, logged and journaled as checks.
    let allowed = [("route", "mc"), ("outcome", "allowed"), ("mode", "authz")];
    assert_eq!(gw.metric("hookgate_requests_total", &allowed), 2.0);
    let partial = [("reason", "partial_body"), ("mode", "authz")];
    assert_eq!(gw.metric("hookgate_requests_total", &partial), 2.0);
    let spoofed = gw.metric("hookgate_spoofed_headers_total", &[("route", "mc")]);
    assert!(spoofed >= 6.0, "{spoofed}");
    let line = gw
        .wait_request_log(|l| l["reason"] == "partial_body")
        .expect("a log line for the truncated body");
    assert_eq!(
        (line["mode"].as_str(), line["status"].as_u64()),
        (Some("authz"), Some(413))
    );
    assert!(
        gw.wait_log("the proxy sent only part of the body, which can never verify: refused with 413; set with_request_body.allow_partial_message: false and max_request_bytes at least the largest webhook", |_| true).is_some(),
        "the log says why"
    );
    let v = admin_until(&gw, TOKEN, "/api/events?reason=partial_body", |v| {
        events(v).len() == 2
    })
    .await;
    for e in events(&v) {
        assert_eq!(
            (e["mode"].as_str(), e["status"].as_u64()),
            (Some("authz"), Some(413)),
            "{e}"
        );
    }
    let v = admin_until(&gw, TOKEN, "/api/events?outcome=allowed", |v| {
        events(v).len() == 3
    })
    .await;
    let first = events(&v)
        .into_iter()
        .find(|e| e["dedup_key"] == "1")
        .expect("the first order");
    assert_eq!(first["mode"], "authz");
    // A check's event was delivered by the proxy: hookgate does not replay it.
    let id = first["id"].as_str().unwrap();
    let (status, _) = admin_call(
        &gw,
        TOKEN,
        "POST",
        &format!("/api/events/{id}/replay"),
        None,
    )
    .await;
    assert_eq!(status, 409);
}

/// Spoofed trusted headers never come back in an answer, in any spelling.
fn no_spoof_echoed(res: &Resp) {
    for (name, value) in &res.headers {
        assert_ne!(value, "spoofed", "{name} echoed");
        assert!(
            !name.eq_ignore_ascii_case("x-webhook-delivery") && !name.contains('_'),
            "{name} set"
        );
    }
}

/// An HTTP check; `headers` as the proxy sends them.
async fn ask_http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Resp {
    let refs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    send(addr, method, path, &refs, body).await
}

/// What Envoy's `http_service` sends (docs/authz.md): the original method, `<path_prefix>` and
/// the original path, the original Host, the headers `allowed_headers` lets through, and the
/// body with its own Content-Length.
fn envoy_http(headers: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut h = vec![("host".to_string(), "hooks.example.com".to_string())];
    h.extend(headers);
    h
}

/// An Envoy `http_service` check of a POST to `path` with these headers and body.
async fn ask_envoy(
    addr: SocketAddr,
    path: &str,
    headers: Vec<(String, String)>,
    body: &[u8],
) -> Resp {
    ask_http(addr, "POST", path, &envoy_http(headers), body).await
}

#[tokio::test]
async fn http_checks_as_envoy_http_service_sends_them() {
    let gw = gateway("deny_202");
    let addr = gw.authz();
    let one = br#"{"id":1}"#;
    let res = ask_envoy(addr, "/authz/hooks/mc", signed(one), one).await;
    assert_eq!(res.status, 200, "{}", res.text());
    no_spoof_echoed(&res);
    for (name, value) in TRUSTED {
        assert_eq!(res.header(name).as_deref(), Some(value), "{name}");
    }
    let remove = res
        .header("x-envoy-auth-headers-to-remove")
        .expect("look-alikes to remove");
    let mut remove: Vec<&str> = remove.split(", ").collect();
    remove.sort_unstable();
    assert_eq!(remove, ["x-webhook-delivery", "x_webhook_route"]);

    // Duplicate: 202, which Envoy hands to the sender instead of allowing.
    let res = ask_envoy(addr, "/authz/hooks/mc", signed(one), one).await;
    assert_eq!(
        (res.status, res.text().as_str()),
        (202, r#"{"status":"duplicate"}"#)
    );
    assert!(res.header("x-webhook-verified").is_none());
    // Forged.
    let two = br#"{"id":2}"#;
    let res = ask_envoy(addr, "/authz/hooks/mc", forged(), two).await;
    assert_eq!((res.status, res.text().as_str()), (401, INVALID_SIGNATURE));
    assert!(res.header("connection").is_none_or(|c| c != "close"));
    // Schema.
    let bad = br#"{"id":"x"}"#;
    let res = ask_envoy(addr, "/authz/hooks/mc", signed(bad), bad).await;
    assert_eq!(res.status, 422, "{}", res.text());
    // Rate-limited: the client is the last X-Forwarded-For hop.
    let mut h = envoy_http(signed(one));
    h.push(("x-forwarded-for".into(), "198.51.100.4".into()));
    let first = ask_http(addr, "POST", "/authz/hooks/tight", &h, one).await;
    assert_eq!(first.status, 200, "{}", first.text());
    let second = ask_http(addr, "POST", "/authz/hooks/tight", &h, one).await;
    assert_eq!(second.status, 429);
    assert!(second.header("retry-after").is_some());
    // Truncated, when `allowed_headers` lets Envoy's flag through.
    let mut h = envoy_http(signed(two));
    h.push(("x-envoy-auth-partial-body".into(), "true".into()));
    let res = ask_http(addr, "POST", "/authz/hooks/mc", &h, &two[..4]).await;
    assert_eq!(res.status, 413);
    // Not a check: outside the prefix.
    let res = ask_envoy(addr, "/hooks/mc", signed(two), two).await;
    assert_eq!(res.status, 404);
    // Not POST: 405, as inline.
    let res = ask_http(addr, "GET", "/authz/hooks/mc", &envoy_http(Vec::new()), b"").await;
    assert_eq!(res.status, 405);
    assert_eq!(res.header("allow").as_deref(), Some("POST"));

    let line = gw
        .wait_request_log(|l| l["status"] == 202)
        .expect("the duplicate's log line");
    assert_eq!(
        (line["mode"].as_str(), line["outcome"].as_str()),
        (Some("authz"), Some("duplicate"))
    );
}

/// What Traefik's forwardAuth sends with `forwardBody: true` (docs/authz.md): a GET to its
/// `address` with every header of the original request, `X-Forwarded-Method`, `-Proto`,
/// `-Host`, `-Uri` and `-For`, and the body.
fn traefik(uri: &str, headers: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut h = headers;
    h.extend([
        ("x-forwarded-method".to_string(), "POST".to_string()),
        ("x-forwarded-proto".to_string(), "https".to_string()),
        (
            "x-forwarded-host".to_string(),
            "hooks.example.com".to_string(),
        ),
        ("x-forwarded-uri".to_string(), uri.to_string()),
        ("x-forwarded-for".to_string(), "192.0.2.44".to_string()),
    ]);
    h
}

/// A Traefik check of a POST to `uri` with these headers and body.
async fn ask_traefik(
    addr: SocketAddr,
    uri: &str,
    headers: Vec<(String, String)>,
    body: &[u8],
) -> Resp {
    ask_http(addr, "GET", "/authz", &traefik(uri, headers), body).await
}

#[tokio::test]
async fn http_checks_as_traefik_forward_auth_sends_them() {
    let gw = gateway("allow_marked");
    let addr = gw.authz();
    let one = br#"{"id":1}"#;
    let res = ask_traefik(addr, "/hooks/mc?src=t", signed(one), one).await;
    assert_eq!(res.status, 200, "{}", res.text());
    no_spoof_echoed(&res);
    assert_eq!(res.header("x-webhook-verified").as_deref(), Some("true"));
    assert_eq!(res.header("x-webhook-route").as_deref(), Some("mc"));
    assert!(res.header("x-webhook-duplicate").is_none());
    // Duplicate: let through marked (Traefik allows every 2xx), for the backend to drop.
    let res = ask_traefik(addr, "/hooks/mc", signed(one), one).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.header("x-webhook-duplicate").as_deref(), Some("true"));
    assert_eq!(res.header("x-webhook-id").as_deref(), Some("1"));
    no_spoof_echoed(&res);
    // Forged: Traefik passes the answer to the sender.
    let two = br#"{"id":2}"#;
    let res = ask_traefik(addr, "/hooks/mc", forged(), two).await;
    assert_eq!((res.status, res.text().as_str()), (401, INVALID_SIGNATURE));
    for name in ["x-webhook-verified", "x-webhook-duplicate"] {
        assert!(res.header(name).is_none(), "{name} on a refusal");
    }
    // Rate-limited by the X-Forwarded-For client.
    let first = ask_traefik(addr, "/hooks/tight", signed(one), one).await;
    assert_eq!(first.status, 200);
    let second = ask_traefik(addr, "/hooks/tight", signed(one), one).await;
    assert_eq!(second.status, 429);
    // Schema.
    let bad = br#"{"id":[]}"#;
    let res = ask_traefik(addr, "/hooks/mc", signed(bad), bad).await;
    assert_eq!(res.status, 422);
    // Without forwardBody the body is empty: it cannot verify.
    let res = ask_traefik(addr, "/hooks/mc", signed(two), b"").await;
    assert_eq!(res.status, 401);

    let journal = admin_until(&gw, TOKEN, "/api/events?outcome=duplicate", |v| {
        !events(v).is_empty()
    })
    .await;
    let e = &events(&journal)[0];
    assert_eq!(
        (e["mode"].as_str(), e["path"].as_str()),
        (Some("authz"), Some("/hooks/mc"))
    );
    assert_eq!(e["method"], "POST");
}
