//! `hookgate dlq list|replay|drop`: dead letters of a running gateway, through its admin API
//! (the gateway owns the store file, so the command asks it rather than opening the file).

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

use super::{DlqCommand, DlqSelectArgs};

#[derive(Debug, thiserror::Error)]
pub enum DlqError {
    #[error("invalid --admin URL `{0}`; e.g. http://127.0.0.1:9090")]
    BadUrl(String),
    #[error("cannot reach the admin API at {0}: {1}")]
    Unreachable(String, String),
    #[error("the admin API answered {0}: {1}")]
    Api(u16, String),
}

impl DlqError {
    /// 2 for what the user typed wrong, 1 for what went wrong at run time.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::BadUrl(_) | Self::Api(400, _) => 2,
            _ => 1,
        }
    }
}

/// Runs the command; returns what to print.
pub async fn run(cmd: &DlqCommand) -> Result<String, DlqError> {
    match cmd {
        DlqCommand::List(args) => {
            let mut path = "/admin/dlq".to_string();
            if let Some(r) = &args.route {
                path.push_str(&format!("?route={r}"));
            }
            let v = call(&args.admin.admin, http::Method::GET, &path, None).await?;
            if args.json {
                return Ok(format!("{v}\n"));
            }
            Ok(table(&v))
        }
        DlqCommand::Replay(args) => change(args, "replay").await,
        DlqCommand::Drop(args) => change(args, "drop").await,
    }
}

async fn change(args: &DlqSelectArgs, verb: &str) -> Result<String, DlqError> {
    let body = if args.all {
        json!({ "all": true })
    } else if let Some(r) = &args.route {
        json!({ "route": r })
    } else {
        json!({ "ids": args.id })
    };
    let path = format!("/admin/dlq/{verb}");
    let v = call(&args.admin.admin, http::Method::POST, &path, Some(body)).await?;
    let done = if verb == "replay" {
        "replayed"
    } else {
        "dropped"
    };
    let ids: Vec<String> = v["ids"]
        .as_array()
        .map(|a| a.iter().map(|i| i.to_string()).collect())
        .unwrap_or_default();
    Ok(format!(
        "{done} {} dead letter(s){}{}\n",
        ids.len(),
        if ids.is_empty() { "" } else { ": " },
        ids.join(" ")
    ))
}

fn table(v: &Value) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut out = String::from("ID\tROUTE\tATTEMPTS\tAGE\tDEDUP_KEY\tERROR\n");
    for d in v["dead_letters"].as_array().into_iter().flatten() {
        let age = now.saturating_sub(d["received_ms"].as_u64().unwrap_or(now)) / 1000;
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\n",
            d["id"],
            d["route"].as_str().unwrap_or(""),
            d["attempts"],
            humantime::format_duration(std::time::Duration::from_secs(age)),
            d["dedup_key"].as_str().unwrap_or("-"),
            d["error"].as_str().unwrap_or(""),
        ));
    }
    out
}

async fn call(
    admin: &str,
    method: http::Method,
    path: &str,
    body: Option<Value>,
) -> Result<Value, DlqError> {
    let base = admin.trim_end_matches('/');
    let url = format!("{base}{path}");
    let uri: http::Uri = url.parse().map_err(|_| DlqError::BadUrl(admin.into()))?;
    if uri.scheme_str() != Some("http") || uri.authority().is_none() {
        return Err(DlqError::BadUrl(admin.into()));
    }
    let payload = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
    let req = http::Request::builder()
        .method(method)
        .uri(uri)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(payload))
        .map_err(|_| DlqError::BadUrl(admin.into()))?;
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let unreachable = |e: String| DlqError::Unreachable(base.to_string(), e);
    let res = tokio::time::timeout(std::time::Duration::from_secs(30), client.request(req))
        .await
        .map_err(|_| unreachable("no answer within 30s".into()))?
        .map_err(|e| unreachable(e.to_string()))?;
    let status = res.status().as_u16();
    let bytes = res
        .into_body()
        .collect()
        .await
        .map_err(|e| unreachable(e.to_string()))?
        .to_bytes();
    let text = String::from_utf8_lossy(&bytes).trim().to_string();
    if status != 200 {
        let msg = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or(text);
        return Err(DlqError::Api(status, msg));
    }
    serde_json::from_str(&text)
        .map_err(|e| DlqError::Api(status, format!("unreadable answer: {e}")))
}
