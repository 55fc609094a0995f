//! `hookgate dlq list|replay|drop`: dead letters of a running gateway, through its admin API
//! (the gateway owns the store file, so the command asks it rather than opening the file).

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::remote::{self, RemoteError};
use super::{AdminArgs, DlqCommand, DlqSelectArgs};

#[derive(Debug, thiserror::Error)]
pub enum DlqError {
    #[error(transparent)]
    Remote(#[from] RemoteError),
    #[error("the gateway at {0} runs on the memory store, which has no queue and so no dead letters (queue and hybrid routes need store.kind redb or redis)")]
    NoQueue(String),
    #[error("no dead letter with id {}", list(.missing))]
    NotFound {
        missing: Vec<u64>,
        /// What was done with the ids that were found, for stdout.
        done: Option<String>,
    },
}

fn list(ids: &[u64]) -> String {
    ids.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl DlqError {
    /// 2 for what the user typed wrong, 1 for what went wrong at run time.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Remote(e) => e.exit_code(),
            _ => 1,
        }
    }

    /// What to print on stdout all the same: the dead letters that were replayed or dropped
    /// when others were not found.
    pub fn output(&self) -> Option<&str> {
        match self {
            Self::NotFound { done, .. } => done.as_deref(),
            _ => None,
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
            let v = call(&args.admin, http::Method::GET, &path, None).await?;
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
    let v = call(&args.admin, http::Method::POST, &path, Some(body)).await?;
    let done = if verb == "replay" {
        "replayed"
    } else {
        "dropped"
    };
    let ids: Vec<u64> = v["ids"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    let out = format!(
        "{done} {} dead letter(s){}{}\n",
        ids.len(),
        if ids.is_empty() { "" } else { ": " },
        ids.iter().map(u64::to_string).collect::<Vec<_>>().join(" ")
    );
    let mut missing: Vec<u64> = args
        .id
        .iter()
        .filter(|i| !ids.contains(i))
        .copied()
        .collect();
    missing.sort_unstable();
    missing.dedup();
    if missing.is_empty() {
        return Ok(out);
    }
    Err(DlqError::NotFound {
        missing,
        done: (!ids.is_empty()).then_some(out),
    })
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
    admin: &AdminArgs,
    method: http::Method,
    path: &str,
    body: Option<Value>,
) -> Result<Value, DlqError> {
    let v = remote::call(&admin.admin, admin.token(), method, path, body).await?;
    if v["store"] == "memory" {
        return Err(DlqError::NoQueue(remote::base_url(&admin.admin)?));
    }
    Ok(v)
}
