//! The admin API from a test: the bearer token, JSON in and out, bounded waits.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::{send, Gateway};

/// One call; the answer's status and JSON (`null` when it is not JSON).
pub async fn admin_call(
    gw: &Gateway,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let auth = format!("Bearer {token}");
    let text = body.map(|b| b.to_string()).unwrap_or_default();
    let r = send(
        gw.admin(),
        method,
        path,
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        text.as_bytes(),
    )
    .await;
    (
        r.status,
        serde_json::from_slice(&r.body).unwrap_or(Value::Null),
    )
}

/// Waits (10 s at most) until `GET path` answers 200 with JSON that satisfies `f`.
pub async fn admin_until(
    gw: &Gateway,
    token: &str,
    path: &str,
    f: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, v) = admin_call(gw, token, "GET", path, None).await;
        if status == 200 && f(&v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out on {path}: {status} {v}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The `events` of a list answer.
pub fn events(v: &Value) -> Vec<Value> {
    v["events"].as_array().cloned().unwrap_or_default()
}
