//! The admin API under `/api/` (docs/journal.md): the journal's events, replays, pausing a
//! route's deliveries, and a summary per route. JSON in and out; errors `{"error": "..."}`.
//! The console (`console.rs`) calls this and nothing else.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::json;

use crate::delivery::DeliveryMode;
use crate::doctor::Diagnosis;
use crate::gateway::{Gateway, ReplayError};
use crate::journal::{parse_time, JournalError, Query};
use crate::store::Selection;

/// Events a list answers at most, whatever `limit` asks.
const MAX_LIMIT: usize = 1000;
/// Events a bulk replay sends at most in one call.
const MAX_BULK: usize = 100_000;
/// Largest request body the API reads.
const MAX_BODY: usize = 64 * 1024;

type Reply = Response<Full<Bytes>>;

pub fn json_response(status: StatusCode, value: &serde_json::Value) -> Reply {
    let mut res = Response::new(Full::new(Bytes::from(value.to_string() + "\n")));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    res
}

pub fn error(status: StatusCode, message: &str) -> Reply {
    json_response(status, &json!({ "error": message }))
}

/// The journal's store did not answer: 503, logged (the store's error names no secret).
fn unavailable(e: &JournalError) -> Reply {
    tracing::warn!(target: "hookgate::admin", error = %e, "admin API: the journal is unavailable");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "the journal's store is unavailable",
    )
}

/// Answers one `/api/` request; the caller has checked the token.
pub async fn handle(gw: &Arc<Gateway>, req: Request<Incoming>, peer: SocketAddr) -> Reply {
    let path = req.uri().path().to_string();
    let parts: Vec<&str> = path.trim_start_matches("/api/").split('/').collect();
    let method = req.method().clone();
    if method == Method::POST && !is_json(&req) {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send Content-Type: application/json",
        );
    }
    match (&method, parts.as_slice()) {
        (&Method::GET, ["events"]) => list(gw, req.uri().query()).await,
        (&Method::GET, ["events", id]) => match gw.journal().get(id).await {
            Ok(Some(e)) => {
                let mut v = e.to_json();
                // The doctor's advice in words, so no client has to know every diagnosis.
                v["diagnosis_advice"] = json!(e
                    .diagnosis
                    .as_deref()
                    .and_then(|d| d.parse::<Diagnosis>().ok())
                    .map(|d| d.advice()));
                json_response(StatusCode::OK, &v)
            }
            Ok(None) => error(StatusCode::NOT_FOUND, "no such event"),
            Err(e) => unavailable(&e),
        },
        (&Method::POST, ["events", id, "replay"]) => {
            let body: ReplayOne = match read_json(req.into_body()).await {
                Ok(b) => b,
                Err(e) => return error(StatusCode::BAD_REQUEST, &e),
            };
            replay_one(gw, id, body.dedup, peer).await
        }
        (&Method::POST, ["replay"]) => match read_json::<Bulk>(req.into_body()).await {
            Ok(b) => bulk(gw, b, peer).await,
            Err(e) => error(StatusCode::BAD_REQUEST, &e),
        },
        (&Method::GET, ["routes"]) => routes(gw).await,
        (&Method::POST, ["routes", name, action @ ("pause" | "resume")]) => {
            pause(gw, name, *action == "pause", peer).await
        }
        (_, ["events"] | ["events", _] | ["events", _, "replay"] | ["replay"] | ["routes"])
        | (_, ["routes", _, "pause" | "resume"]) => {
            error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
        }
        _ => error(StatusCode::NOT_FOUND, "no such API endpoint"),
    }
}

fn is_json(req: &Request<Incoming>) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
        })
}

async fn read_json<T: for<'de> Deserialize<'de> + Default>(body: Incoming) -> Result<T, String> {
    let bytes = Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map_err(|_| "body unreadable or too large".to_string())?
        .to_bytes();
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(&bytes).map_err(|e| format!("body is not the expected JSON: {e}"))
}

/// `GET /api/events?...`: newest first, with a cursor for the next page.
async fn list(gw: &Gateway, query: Option<&str>) -> Reply {
    let params: BTreeMap<String, String> = query
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let q = match query_of(gw, &params) {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    let limit = match params.get("limit").map(|l| l.parse::<usize>()) {
        None => 50,
        Some(Ok(n)) if n > 0 => n.min(MAX_LIMIT),
        Some(_) => return error(StatusCode::BAD_REQUEST, "limit: expected a positive number"),
    };
    let mut events = match gw.journal().list(&q, limit + 1).await {
        Ok(events) => events,
        Err(e) => return unavailable(&e),
    };
    let next = (events.len() > limit).then(|| {
        events.truncate(limit);
        events.last().map(|e| e.id.clone())
    });
    let summaries: Vec<_> = events.iter().map(|e| e.summary()).collect();
    json_response(
        StatusCode::OK,
        &json!({ "events": summaries, "next": next.flatten() }),
    )
}

/// The filters shared by the list and a bulk replay.
fn query_of(gw: &Gateway, p: &BTreeMap<String, String>) -> Result<Query, String> {
    let now = gw.journal_now_ms();
    let time = |key: &str| -> Result<Option<u64>, String> {
        p.get(key)
            .filter(|v| !v.is_empty())
            .map(|v| {
                parse_time(v, now).ok_or(format!(
                    "{key}: expected RFC 3339 or a duration such as 1h, got `{v}`"
                ))
            })
            .transpose()
    };
    let status = p
        .get("status")
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse::<u16>()
                .map_err(|_| format!("status: expected a number, got `{v}`"))
        })
        .transpose()?;
    let text = |key: &str| p.get(key).filter(|v| !v.is_empty()).cloned();
    Ok(Query {
        route: text("route"),
        outcome: text("outcome"),
        reason: text("reason"),
        status,
        state: text("state"),
        since_ms: time("since")?,
        until_ms: time("until")?,
        text: text("q"),
        before: text("cursor"),
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayOne {
    /// Respect the route's dedup (default: a replay is delivered though its key was seen).
    #[serde(default)]
    dedup: bool,
}

async fn replay_one(gw: &Gateway, id: &str, dedup: bool, peer: SocketAddr) -> Reply {
    let original = match gw.journal().get(id).await {
        Ok(Some(e)) => e,
        Ok(None) => return error(StatusCode::NOT_FOUND, "no such event"),
        Err(e) => return unavailable(&e),
    };
    match gw.replay(&original, dedup).await {
        Ok(r) => {
            // The new event is readable once this answers.
            gw.journal().flush().await;
            tracing::info!(target: "hookgate::admin", client = %peer, event = id, new = %r.id, outcome = r.outcome, "replayed one event");
            json_response(
                StatusCode::OK,
                &json!({ "replayed": 1, "id": r.id, "outcome": r.outcome }),
            )
        }
        Err(e @ (ReplayError::NotAccepted | ReplayError::NoBody | ReplayError::NoRoute(_))) => {
            error(StatusCode::CONFLICT, &e.to_string())
        }
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Bulk {
    route: Option<String>,
    outcome: Option<String>,
    reason: Option<String>,
    state: Option<String>,
    since: Option<String>,
    until: Option<String>,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    dedup: bool,
}

/// `POST /api/replay`: every accepted event the filter matches, oldest first. Queued routes
/// take them into their queue (paced by their `concurrency` and route limit); sync routes get
/// them one after another, in the background.
async fn bulk(gw: &Arc<Gateway>, b: Bulk, peer: SocketAddr) -> Reply {
    let mut p = BTreeMap::new();
    for (k, v) in [
        ("route", &b.route),
        ("outcome", &b.outcome),
        ("reason", &b.reason),
        ("state", &b.state),
        ("since", &b.since),
        ("until", &b.until),
    ] {
        if let Some(v) = v {
            p.insert(k.to_string(), v.clone());
        }
    }
    let q = match query_of(gw, &p) {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    // Dead letters are revived from the store's copy, so the journal's body does not matter.
    let dead = b.state.as_deref() == Some("dead");
    let mut events: Vec<_> = match gw.journal().list(&q, MAX_BULK).await {
        Ok(events) => events,
        Err(e) => return unavailable(&e),
    }
    .into_iter()
    .filter(|e| {
        if dead {
            e.queue_id.is_some()
        } else {
            e.accepted() && e.body.is_some() && !e.body_truncated
        }
    })
    .collect();
    events.reverse();
    let matched = events.len();
    if b.dry_run {
        return json_response(StatusCode::OK, &json!({ "matched": matched }));
    }
    tracing::info!(target: "hookgate::admin", client = %peer, matched, route = ?b.route, outcome = ?b.outcome, state = ?b.state, "bulk replay");
    if dead {
        return revive(gw, &events).await;
    }
    let mut replayed = 0usize;
    let mut background = Vec::new();
    for e in events {
        let sync = gw.route_mode(e.route.as_deref().unwrap_or("")) == Some(DeliveryMode::Sync);
        if sync {
            background.push(e);
            replayed += 1;
        } else if gw.replay(&e, b.dedup).await.is_ok() {
            replayed += 1;
        }
    }
    if !background.is_empty() {
        gw.replay_in_background(background, b.dedup);
    }
    json_response(StatusCode::OK, &json!({ "replayed": replayed }))
}

/// Dead letters go back into their queue as `hookgate dlq replay` puts them (due now, attempts
/// counted afresh), rather than as copies: they leave the dead letters, and their events'
/// timelines go on with the new attempts.
async fn revive(gw: &Arc<Gateway>, events: &[crate::journal::Entry]) -> Reply {
    let ids: Vec<u64> = events.iter().filter_map(|e| e.queue_id).collect();
    if ids.is_empty() {
        return json_response(StatusCode::OK, &json!({ "replayed": 0 }));
    }
    match gw.engine().replay(&Selection::Ids(ids)).await {
        Ok(back) => {
            // The engine recorded each one's new state.
            gw.journal().flush().await;
            json_response(StatusCode::OK, &json!({ "replayed": back.len() }))
        }
        Err(e) => {
            tracing::error!(error = %e, "replaying dead letters failed");
            error(StatusCode::SERVICE_UNAVAILABLE, "store error")
        }
    }
}

async fn pause(gw: &Gateway, name: &str, pause: bool, peer: SocketAddr) -> Reply {
    match gw.route_mode(name) {
        None => error(StatusCode::NOT_FOUND, "no such route"),
        Some(DeliveryMode::Sync) => error(
            StatusCode::CONFLICT,
            "a sync route delivers while the sender waits: only queue and hybrid routes can be paused",
        ),
        Some(_) => {
            let done = if pause {
                gw.engine().pause(name).await
            } else {
                gw.engine().resume_route(name).await
            };
            if let Err(e) = done {
                tracing::warn!(target: "hookgate::admin", error = %e, route = name, "pausing or resuming failed");
                return error(StatusCode::SERVICE_UNAVAILABLE, "the store did not record the change; try again");
            }
            let verb = if pause { "paused" } else { "resumed" };
            tracing::info!(target: "hookgate::admin", client = %peer, route = name, "route {verb}");
            json_response(StatusCode::OK, &json!({ "route": name, "paused": pause }))
        }
    }
}

/// `GET /api/routes`: mode, pause, queue, dead letters, outcomes over 5 minutes and an hour,
/// and outcomes per minute over the last hour (for the console's chart).
async fn routes(gw: &Gateway) -> Reply {
    let now = gw.journal_now_ms();
    let counts = |rows: Vec<(String, String, u64)>| {
        let mut by_route: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        for (r, o, n) in rows {
            by_route.entry(r).or_default().insert(o, n);
        }
        by_route
    };
    let journal = gw.journal();
    let read = async {
        Ok::<_, JournalError>((
            journal.counts_since(now.saturating_sub(300_000)).await?,
            journal.counts_since(now.saturating_sub(3_600_000)).await?,
            journal.per_minute(60).await?,
        ))
    };
    let (five, hour, per_minute) = match read.await {
        Ok(r) => r,
        Err(e) => return unavailable(&e),
    };
    let (five, hour) = (counts(five), counts(hour));
    let mut minutes: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    for (r, o, m, n) in per_minute {
        minutes
            .entry(r)
            .or_default()
            .push(json!({ "minute": m, "outcome": o, "count": n }));
    }
    let state = gw.state();
    let list: Vec<_> = state
        .settings
        .routes
        .iter()
        .map(|r| {
            let name = &*r.name;
            let (depth, oldest) = gw.engine().depth(name);
            json!({
                "name": name,
                "mode": r.delivery.mode.name(),
                "paused": gw.engine().is_paused(name),
                "queue_depth": depth,
                "oldest_queued_age_seconds": oldest,
                "dead_letters": gw.engine().dead_count(name),
                "last_5m": five.get(name).cloned().unwrap_or_default(),
                "last_1h": hour.get(name).cloned().unwrap_or_default(),
                "per_minute": minutes.get(name).cloned().unwrap_or_default(),
            })
        })
        .collect();
    json_response(StatusCode::OK, &json!({ "routes": list }))
}
