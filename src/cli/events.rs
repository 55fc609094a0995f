//! `hookgate events list|show|replay` and `hookgate routes list|pause|resume`: the journal and
//! the routes of a running gateway, through its admin API.

use serde_json::{json, Value};

use super::remote::{call, RemoteError};
use super::{EventsCommand, RoutesCommand};

/// Runs an `events` command; returns what to print.
pub async fn events(cmd: &EventsCommand) -> Result<String, RemoteError> {
    match cmd {
        EventsCommand::List(a) => {
            let mut q = form_urlencoded::Serializer::new(String::new());
            for (k, v) in [
                ("route", &a.route),
                ("outcome", &a.outcome),
                ("reason", &a.reason),
                ("state", &a.state),
                ("since", &a.since),
                ("q", &a.query),
                ("cursor", &a.cursor),
            ] {
                if let Some(v) = v {
                    q.append_pair(k, v);
                }
            }
            q.append_pair("limit", &a.limit.to_string());
            let path = format!("/api/events?{}", q.finish());
            let v = call(
                &a.admin.admin,
                a.admin.token(),
                http::Method::GET,
                &path,
                None,
            )
            .await?;
            if a.json {
                return Ok(format!("{v}\n"));
            }
            Ok(event_table(&v))
        }
        EventsCommand::Show(a) => {
            let path = format!("/api/events/{}", a.id);
            let v = call(
                &a.admin.admin,
                a.admin.token(),
                http::Method::GET,
                &path,
                None,
            )
            .await?;
            Ok(format!(
                "{}\n",
                serde_json::to_string_pretty(&v).unwrap_or_default()
            ))
        }
        EventsCommand::Replay(a) => {
            let token = a.admin.token();
            if a.ids.is_empty() {
                let body = json!({
                    "route": a.route, "outcome": a.outcome, "state": a.state, "since": a.since,
                    "dry_run": a.dry_run, "dedup": a.dedup,
                });
                let v = call(
                    &a.admin.admin,
                    token,
                    http::Method::POST,
                    "/api/replay",
                    Some(body),
                )
                .await?;
                return Ok(match v.get("matched") {
                    Some(n) => format!("{n} event(s) would be replayed\n"),
                    None => format!("replayed {} event(s)\n", v["replayed"]),
                });
            }
            let mut out = String::new();
            for id in &a.ids {
                let path = format!("/api/events/{id}/replay");
                let body = json!({ "dedup": a.dedup });
                let v = call(&a.admin.admin, token, http::Method::POST, &path, Some(body)).await?;
                out.push_str(&format!(
                    "{id}: replayed as {} ({})\n",
                    v["id"].as_str().unwrap_or("?"),
                    v["outcome"].as_str().unwrap_or("?")
                ));
            }
            Ok(out)
        }
    }
}

/// Runs a `routes` command; returns what to print.
pub async fn routes(cmd: &RoutesCommand) -> Result<String, RemoteError> {
    match cmd {
        RoutesCommand::List(a) => {
            let v = call(
                &a.admin.admin,
                a.admin.token(),
                http::Method::GET,
                "/api/routes",
                None,
            )
            .await?;
            if a.json {
                return Ok(format!("{v}\n"));
            }
            Ok(route_table(&v))
        }
        RoutesCommand::Pause(a) | RoutesCommand::Resume(a) => {
            let verb = if matches!(cmd, RoutesCommand::Pause(_)) {
                "pause"
            } else {
                "resume"
            };
            let path = format!("/api/routes/{}/{verb}", a.name);
            call(
                &a.admin.admin,
                a.admin.token(),
                http::Method::POST,
                &path,
                Some(json!({})),
            )
            .await?;
            Ok(format!("{} {verb}d\n", a.name))
        }
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn event_table(v: &Value) -> String {
    let events = v["events"].as_array().cloned().unwrap_or_default();
    if events.is_empty() {
        return "no events match\n".to_string();
    }
    let mut out = String::from("ID\tRECEIVED\tROUTE\tOUTCOME\tREASON\tSTATUS\tMS\n");
    for e in events {
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            text(&e["id"]),
            text(&e["received_at"]),
            text(&e["route"]),
            text(&e["outcome"]),
            text(&e["reason"]),
            text(&e["status"]),
            text(&e["duration_ms"]),
        ));
    }
    if let Some(next) = v["next"].as_str() {
        out.push_str(&format!("(more: --cursor {next})\n"));
    }
    out
}

fn route_table(v: &Value) -> String {
    let mut out = String::from("ROUTE\tMODE\tPAUSED\tQUEUED\tOLDEST_S\tDEAD\tLAST_5M\n");
    for r in v["routes"].as_array().into_iter().flatten() {
        let last: Vec<String> = r["last_5m"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, n)| format!("{k}={n}"))
            .collect();
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\t{:.0}\t{}\t{}\n",
            text(&r["name"]),
            text(&r["mode"]),
            text(&r["paused"]),
            text(&r["queue_depth"]),
            r["oldest_queued_age_seconds"].as_f64().unwrap_or(0.0),
            text(&r["dead_letters"]),
            if last.is_empty() {
                "-".to_string()
            } else {
                last.join(",")
            },
        ));
    }
    out
}
