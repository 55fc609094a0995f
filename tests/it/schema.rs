//! Payload schemas through the real binary: the builtin MediaConvert schema on the guide's
//! events, 400 / 422 answers, shadow mode, `by_field` selection with schema files beside the
//! config, and schema config errors.

use crate::common::*;

const SECRET: &str = "schema-secret";
const PATH: &str = "/webhooks/mediaconvert";

/// The job events of the MediaConvert.io webhook guide, byte for byte.
const COMPLETED: &str = r#"{"job_id":"job_abc123xyz","status":"completed","job_type":"video","progress_percentage":100,"cost_micros":1575000,"cost_cents":158,"processing_time_seconds":45,"output_size_bytes":8192000,"input_format":"mp4","output_format":"webm","created_at":"2024-01-15T10:30:00Z","completed_at":"2024-01-15T10:31:15Z"}"#;
const FAILED: &str = r#"{"job_id":"job_def456xyz","status":"failed","job_type":"video","progress_percentage":25,"error_message":"Input file corrupted or unreadable","error_code":"INVALID_INPUT","created_at":"2024-01-15T10:30:00Z","failed_at":"2024-01-15T10:30:45Z"}"#;
const PROCESSING: &str = "{\n  \"job_id\": \"job_ghi789xyz\", \n  \"status\": \"processing\",\n  \"progress_percentage\": 67,\n  \"estimated_completion\": \"2024-01-15T10:32:00Z\"\n}\n";
/// The guide's curl test delivery.
const SHORT: &str = r#"{"job_id":"job_test123","status":"completed","progress_percentage":100,"cost_micros":150000,"processing_time_seconds":45}"#;

/// One mediaconvert route `mc` with `schema`.
fn routes(backend: &Backend, schema: Value) -> Value {
    route(
        "mc",
        PATH,
        &backend.url("/hooks/mc"),
        mc_verify(&[("current", SECRET)]),
    )
    .with("schema", schema)
}

fn gateway(backend: &Backend, schema: Value) -> Gateway {
    Gateway::start(config(&Opts::default(), routes(backend, schema)))
}

async fn send_body(gw: &Gateway, body: &str) -> Resp {
    post_mc(gw.addr(), PATH, SECRET, body.as_bytes()).await
}

/// The `(pointer, message)` pairs of a 422, checking the body's shape on the way.
fn violations(resp: &Resp) -> Vec<(String, String)> {
    assert_eq!(resp.status, 422, "{}", resp.text());
    assert_eq!(
        resp.header("content-type").as_deref(),
        Some("application/json")
    );
    let v: serde_json::Value = serde_json::from_slice(&resp.body).expect("422 body is JSON");
    let obj = v.as_object().expect("object");
    assert_eq!(obj.len(), 2, "only error and violations: {v}");
    assert_eq!(v["error"], "schema");
    let list = v["violations"].as_array().expect("violations list");
    assert!(!list.is_empty() && list.len() <= 10, "{v}");
    list.iter()
        .map(|x| {
            let o = x.as_object().expect("violation object");
            assert_eq!(o.len(), 2, "only pointer and message: {x}");
            (
                o["pointer"].as_str().expect("pointer").to_string(),
                o["message"].as_str().expect("message").to_string(),
            )
        })
        .collect()
}

fn pointers(resp: &Resp) -> Vec<String> {
    violations(resp).into_iter().map(|(p, _)| p).collect()
}

/// The guide's completed, failed and processing events and its short test body pass the
/// builtin schema and reach the backend byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builtin_mediaconvert_accepts_the_guide_events() {
    let backend = Backend::start();
    let gw = gateway(&backend, json!({"builtin": "mediaconvert"}));
    for body in [COMPLETED, FAILED, PROCESSING, SHORT] {
        let resp = send_body(&gw, body).await;
        assert_eq!(resp.status, 200, "{body}: {}", resp.text());
    }
    let got: Vec<Vec<u8>> = backend.requests().into_iter().map(|r| r.body).collect();
    let sent: Vec<Vec<u8>> = [COMPLETED, FAILED, PROCESSING, SHORT]
        .iter()
        .map(|b| b.as_bytes().to_vec())
        .collect();
    assert_eq!(got, sent);
    assert_eq!(gw.metric("hookgate_schema_failures_total", &[]), 0.0);
}

/// Broken events: 422 naming the failing place, nothing forwarded, each counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builtin_mediaconvert_refuses_broken_events() {
    let backend = Backend::start();
    let gw = gateway(
        &backend,
        json!({"builtin": "mediaconvert", "mode": "enforce"}),
    );
    let cases: [(&str, String, &str); 6] = [
        (
            "unknown status",
            COMPLETED.replace(r#""status":"completed""#, r#""status":"exploded""#),
            "/status",
        ),
        (
            "progress 101",
            COMPLETED.replace(
                r#""progress_percentage":100"#,
                r#""progress_percentage":101"#,
            ),
            "/progress_percentage",
        ),
        (
            "failed without error_code",
            FAILED.replace(r#""error_code":"INVALID_INPUT","#, ""),
            "",
        ),
        (
            "bad date-time",
            COMPLETED.replace("2024-01-15T10:31:15Z", "2024-01-15 25:99"),
            "/completed_at",
        ),
        (
            "missing job_id",
            SHORT.replace(r#""job_id":"job_test123","#, ""),
            "",
        ),
        (
            "cost as a string",
            SHORT.replace("150000", "\"150000\""),
            "/cost_micros",
        ),
    ];
    for (what, body, pointer) in &cases {
        let resp = send_body(&gw, body).await;
        let v = violations(&resp);
        assert_eq!(v.len(), 1, "{what}: {v:?}");
        assert_eq!(v[0].0, *pointer, "{what}: {v:?}");
    }
    let no_code = violations(&send_body(&gw, &cases[2].1).await);
    assert!(no_code[0].1.contains("error_code"), "{no_code:?}");
    let no_job = violations(&send_body(&gw, &cases[4].1).await);
    assert!(no_job[0].1.contains("job_id"), "{no_job:?}");
    assert!(backend.requests().is_empty());
    assert_eq!(
        gw.metric(
            "hookgate_schema_failures_total",
            &[("route", "mc"), ("mode", "enforce")]
        ),
        8.0
    );
    assert_eq!(
        gw.metric(
            "hookgate_requests_total",
            &[
                ("route", "mc"),
                ("outcome", "rejected"),
                ("reason", "schema")
            ]
        ),
        8.0
    );
}

/// A signed body that is not JSON: 400 with exactly `{"error":"body is not JSON"}`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_json_is_400() {
    let backend = Backend::start();
    let gw = gateway(&backend, json!({"builtin": "mediaconvert"}));
    for body in ["job_id=1&status=completed", "{\"job_id\":", ""] {
        let resp = send_body(&gw, body).await;
        assert_eq!(resp.status, 400, "{body:?}");
        assert_eq!(resp.text(), r#"{"error":"body is not JSON"}"#);
    }
    assert!(backend.requests().is_empty());
    assert_eq!(
        gw.metric(
            "hookgate_requests_total",
            &[("route", "mc"), ("reason", "not_json")]
        ),
        3.0
    );
}

/// Validation comes after the signature: unsigned junk is a 401, never parsed or counted as
/// a schema failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_junk_is_401_not_a_schema_failure() {
    let backend = Backend::start();
    let gw = gateway(&backend, json!({"builtin": "mediaconvert"}));
    let resp = post(
        gw.addr(),
        PATH,
        &[("x-mediaconvert-signature", &sha256_header("wrong", b"junk"))],
        b"junk {{{",
    )
    .await;
    assert_eq!(resp.status, 401);
    assert_eq!(resp.text(), INVALID_SIGNATURE);
    assert_eq!(gw.metric("hookgate_schema_failures_total", &[]), 0.0);
}

/// At most ten violations, each short, none quoting the payload's values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn violations_are_capped_and_do_not_echo_values() {
    let backend = Backend::start();
    let required: Vec<String> = (0..30).map(|i| format!("\"f{i}\"")).collect();
    let schema = format!(
        r#"{{"$schema": "http://json-schema.org/draft-07/schema#", "required": [{}], "properties": {{"big": {{"type": "integer"}}}}}}"#,
        required.join(",")
    );
    let yaml = config(
        &Opts::default(),
        routes(&backend, json!({"file": "s.json"})),
    );
    let gw = Gateway::start_with_files(&yaml, &[("s.json", &schema)]);
    let big = format!(r#"{{"big": "{}"}}"#, "SECRETISH".repeat(2000));
    let v = violations(&send_body(&gw, &big).await);
    assert_eq!(v.len(), 10, "{v:?}");
    for (_, message) in &v {
        assert!(message.len() <= 200, "{message}");
        assert!(!message.contains("SECRETISH"), "{message}");
    }
    // All required fields given: the one violation left is the large value's, not quoted.
    let fields: Vec<String> = (0..30).map(|i| format!("\"f{i}\": 1")).collect();
    let big = format!(
        r#"{{{}, "big": "{}"}}"#,
        fields.join(", "),
        "SECRETISH".repeat(2000)
    );
    let v = violations(&send_body(&gw, &big).await);
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].0, "/big");
    assert!(!v[0].1.contains("SECRETISH"), "{v:?}");
    assert!(v[0].1.contains("integer"), "{v:?}");
}

/// `mode: shadow`: failures are forwarded byte for byte, counted and logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_mode_forwards_and_counts() {
    let backend = Backend::start();
    let gw = gateway(
        &backend,
        json!({"builtin": "mediaconvert", "mode": "shadow"}),
    );
    let bad = COMPLETED.replace(r#""status":"completed""#, r#""status":"exploded""#);
    let resp = send_body(&gw, &bad).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let resp = send_body(&gw, "not json").await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(send_body(&gw, COMPLETED).await.status, 200);
    let got: Vec<Vec<u8>> = backend.requests().into_iter().map(|r| r.body).collect();
    assert_eq!(
        got,
        [bad.as_bytes(), b"not json", COMPLETED.as_bytes()]
            .map(<[u8]>::to_vec)
            .to_vec()
    );
    let m = |mode| {
        gw.metric(
            "hookgate_schema_failures_total",
            &[("route", "mc"), ("mode", mode)],
        )
    };
    assert_eq!((m("shadow"), m("enforce")), (2.0, 0.0));
    assert_eq!(
        gw.metric(
            "hookgate_requests_total",
            &[("route", "mc"), ("outcome", "forwarded")]
        ),
        3.0
    );
    gw.wait_request_log(|v| v["schema_shadowed"] == "schema")
        .expect("log line marks the shadowed violation");
    gw.wait_request_log(|v| v["schema_shadowed"] == "not_json")
        .expect("log line marks the shadowed non-JSON body");
}

/// `by_field`: the schema is chosen by the event type, files are read relative to the config
/// file's directory, and other types fall to `default`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_field_selects_by_pointer_and_falls_back_to_default() {
    let backend = Backend::start();
    let created = r#"{"$schema": "https://json-schema.org/draft/2020-12/schema", "required": ["order_id"], "properties": {"order_id": {"type": "integer"}}}"#;
    let any = r#"{"required": ["type"], "properties": {"type": {"type": "string"}}}"#;
    let yaml = config(
        &Opts::default(),
        routes(
            &backend,
            json!({"by_field": {"pointer": "/type", "schemas": {"order.created": "schemas/created.json"}, "default": "schemas/any.json"}}),
        ),
    );
    let gw = Gateway::start_with_files(
        &yaml,
        &[("schemas/created.json", created), ("schemas/any.json", any)],
    );
    let ok = send_body(&gw, r#"{"type":"order.created","order_id":7}"#).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    let v = violations(&send_body(&gw, r#"{"type":"order.created","order_id":"7"}"#).await);
    assert_eq!(v[0].0, "/order_id");
    let v = violations(&send_body(&gw, r#"{"type":"order.created"}"#).await);
    assert!(v[0].1.contains("order_id"), "{v:?}");
    // Another type: the default schema, which does not need order_id.
    let other = send_body(&gw, r#"{"type":"order.paid"}"#).await;
    assert_eq!(other.status, 200, "{}", other.text());
    // No type at all: the default schema requires one.
    assert_eq!(pointers(&send_body(&gw, r#"{"kind":"x"}"#).await), [""]);
    assert_eq!(backend.requests().len(), 2);
}

/// Without a `default`, a value with no schema of its own is a violation at the pointer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_field_without_default_refuses_unknown_values() {
    let backend = Backend::start();
    let yaml = config(
        &Opts::default(),
        routes(
            &backend,
            json!({"by_field": {"pointer": "/event/type", "schemas": {"a": "a.json"}}}),
        ),
    );
    let gw = Gateway::start_with_files(&yaml, &[("a.json", "{}")]);
    assert_eq!(
        send_body(&gw, r#"{"event":{"type":"a"}}"#).await.status,
        200
    );
    let v = violations(&send_body(&gw, r#"{"event":{"type":"b"}}"#).await);
    assert_eq!(v[0].0, "/event/type");
}

/// A schema file is watched like the config: editing it reloads, and the new schema applies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_a_schema_file_reloads_it() {
    let backend = Backend::start();
    let yaml = config(
        &Opts::default(),
        routes(&backend, json!({"file": "schemas/s.json"})),
    )
    .with("reload", json!({"interval": "100ms"}));
    let gw = Gateway::start_with_files(&yaml, &[("schemas/s.json", r#"{"required": ["a"]}"#)]);
    assert_eq!(pointers(&send_body(&gw, "{}").await), [""]);

    let file = gw.dir.path().join("schemas/s.json");
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, r#"{"required": ["b"]}"#).unwrap();
    std::fs::rename(&tmp, &file).unwrap();
    let ok = gw.wait_metric("hookgate_config_reloads_total", &[("result", "ok")], |v| {
        v >= 1.0
    });
    assert_eq!(ok, 1.0, "{}", gw.all_output());
    assert_eq!(send_body(&gw, r#"{"b": 1}"#).await.status, 200);
    let v = violations(&send_body(&gw, r#"{"a": 1}"#).await);
    assert!(v[0].1.contains("\"b\""), "{v:?}");

    // A broken edit is refused; the last good schema keeps applying.
    std::fs::write(&tmp, "{ nope").unwrap();
    std::fs::rename(&tmp, &file).unwrap();
    let failed = gw.wait_metric(
        "hookgate_config_reloads_total",
        &[("result", "error")],
        |v| v >= 1.0,
    );
    assert_eq!(failed, 1.0, "{}", gw.all_output());
    assert_eq!(send_body(&gw, r#"{"b": 1}"#).await.status, 200);
    assert_eq!(send_body(&gw, r#"{"a": 1}"#).await.status, 422);
}

// ---------------------------------------------------------------------------
// Config errors
// ---------------------------------------------------------------------------

/// Runs `check` with `files` beside the config; asserts exit 2 and a stderr line starting with
/// `key` that contains `word`.
fn assert_problem(schema: Value, files: &[(&str, &str)], key: &str, word: &str) {
    let backend_url = "http://127.0.0.1:9/hooks";
    let r = route("mc", PATH, backend_url, mc_verify(&[("current", SECRET)]))
        .with("schema", schema.clone());
    let yaml = config(&Opts::default(), &r);
    let out = run_with_config_files("check", &yaml, &[], files);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{schema}: {stderr}");
    assert!(
        stderr
            .lines()
            .any(|l| l.trim_start().starts_with(key)
                && l.to_lowercase().contains(&word.to_lowercase())),
        "{schema}: no line starting with {key:?} containing {word:?}:\n{stderr}"
    );
}

#[test]
fn schema_config_errors_name_the_key() {
    assert_problem(
        json!({"file": "missing.json"}),
        &[],
        "routes[0].schema.file:",
        "cannot read schema file",
    );
    assert_problem(
        json!({"file": "broken.json"}),
        &[("broken.json", "{\"type\": ")],
        "routes[0].schema.file:",
        "not JSON",
    );
    assert_problem(
        json!({"file": "ref.json"}),
        &[("ref.json", r##"{"$ref": "#/$defs/nowhere"}"##)],
        "routes[0].schema.file:",
        "$ref",
    );
    assert_problem(
        json!({"file": "remote.json"}),
        &[(
            "remote.json",
            r#"{"$ref": "https://schemas.example.com/order.json"}"#,
        )],
        "routes[0].schema.file:",
        "not a usable JSON Schema",
    );
    assert_problem(
        json!({"file": "bad.json"}),
        &[("bad.json", r#"{"type": "nonsense"}"#)],
        "routes[0].schema.file:",
        "not a usable JSON Schema",
    );
    assert_problem(
        json!({"builtin": "stripe"}),
        &[],
        "routes[0].schema.builtin:",
        "use one of: mediaconvert",
    );
    assert_problem(
        json!({"builtin": "mediaconvert", "file": "a.json"}),
        &[("a.json", "{}")],
        "routes[0].schema:",
        "exactly one",
    );
    assert_problem(
        json!({"mode": "shadow"}),
        &[],
        "routes[0].schema:",
        "no schema",
    );
    assert_problem(
        json!({"builtin": "mediaconvert", "mode": "loud"}),
        &[],
        "routes[0].schema.mode:",
        "enforce or shadow",
    );
    assert_problem(
        json!({"by_field": {"pointer": "type", "schemas": {"a": "a.json"}}}),
        &[("a.json", "{}")],
        "routes[0].schema.by_field.pointer:",
        "JSON pointer",
    );
    assert_problem(
        json!({"by_field": {"pointer": "/type", "schemas": {"order.created": "gone.json"}}}),
        &[],
        "routes[0].schema.by_field.schemas[\"order.created\"]:",
        "cannot read",
    );
    assert_problem(
        json!({"by_field": {"pointer": "/type", "schemas": {"a": "a.json"}, "default": "nope.json"}}),
        &[("a.json", "{}")],
        "routes[0].schema.by_field.default:",
        "cannot read",
    );
    assert_problem(
        json!({"builtin": "mediaconvert", "strict": true}),
        &[],
        "routes[0].schema.strict:",
        "unknown key",
    );
}

/// Every problem at once: two broken schemas on two routes are both reported.
#[test]
fn every_schema_problem_at_once() {
    let up = "http://127.0.0.1:9/hooks";
    let r = [
        route("a", "/a", up, mc_verify(&[("current", SECRET)]))
            .with("schema", json!({"file": "nope.json"})),
        route("b", "/b", up, mc_verify(&[("current", SECRET)]))
            .with("schema", json!({"builtin": "nope"})),
    ];
    let out = run_with_config_files("check", config(&Opts::default(), &r), &[], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("routes[0].schema.file:"), "{stderr}");
    assert!(stderr.contains("routes[1].schema.builtin:"), "{stderr}");
}
