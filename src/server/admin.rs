//! The admin listener: `/metrics`, `/healthz`, `/readyz`, the web console at `/` (`console.rs`),
//! the admin API under `/api/` (`api.rs`), and the dead-letter API used by `hookgate dlq`. When `admin.token` is set,
//! `/api/*` and `/admin/dlq*` need `Authorization: Bearer <token>` (compared in constant time);
//! a non-loopback `admin.listen` without a token is refused when the config loads.
//!
//! - `GET /admin/dlq[?route=NAME]`: the dead letters, oldest first.
//! - `POST /admin/dlq/replay` and `POST /admin/dlq/drop` with a JSON body selecting
//!   `{"ids": [..]}`, `{"route": "NAME"}` or `{"all": true}`.
//!
//! Each answer names the store's kind (`"store": "redb"`): on `memory`, which holds no queue,
//! there are never dead letters.

use std::sync::Arc;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpListener;

use arc_swap::ArcSwap;
use subtle::ConstantTimeEq;

use super::{api, console};
use crate::gateway::Gateway;
use crate::secret::Secret;
use crate::store::{Meta, Selection};

/// Largest admin request body.
const MAX_BODY: usize = 64 * 1024;

/// The admin token in force: replaced by a reload.
pub type Token = Arc<ArcSwap<Option<Secret>>>;

pub async fn serve(listener: TcpListener, gateway: Arc<Gateway>, token: Token) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let (gw, token) = (gateway.clone(), token.clone());
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let (gw, token) = (gw.clone(), token.clone());
                async move {
                    let path = req.uri().path();
                    let guarded = path.starts_with("/api/") || path.starts_with("/admin/dlq");
                    if guarded && !authorized(&req, &token) {
                        let mut res = api::error(StatusCode::UNAUTHORIZED, "admin token required");
                        res.headers_mut().insert(
                            header::WWW_AUTHENTICATE,
                            header::HeaderValue::from_static("Bearer"),
                        );
                        return Ok::<_, std::convert::Infallible>(res);
                    }
                    if path.starts_with("/api/") {
                        return Ok(api::handle(&gw, req, peer).await);
                    }
                    if let Some(res) = console::serve(req.method(), path) {
                        return Ok(res);
                    }
                    Ok(handle(&gw, req).await)
                }
            });
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(5))
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Whether the request carries the admin token (always, when none is configured).
fn authorized(req: &Request<Incoming>, token: &Token) -> bool {
    let token = token.load();
    let Some(want) = token.as_ref() else {
        return true;
    };
    let got = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    bool::from(got.as_bytes().ct_eq(want.expose()))
}

fn respond(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(body));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    res
}

fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<Full<Bytes>> {
    respond(
        status,
        "application/json",
        Bytes::from(value.to_string() + "\n"),
    )
}

fn error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    json_response(status, &json!({ "error": message }))
}

async fn handle(gateway: &Gateway, req: Request<Incoming>) -> Response<Full<Bytes>> {
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => {
            gateway.engine().refresh_gauges();
            respond(
                StatusCode::OK,
                "text/plain; version=0.0.4",
                Bytes::from(gateway.metrics().render()),
            )
        }
        (&Method::GET, "/healthz") => {
            respond(StatusCode::OK, "text/plain", Bytes::from_static(b"ok\n"))
        }
        (&Method::GET, "/readyz") => match gateway.store().ready().await {
            Ok(()) => respond(StatusCode::OK, "text/plain", Bytes::from_static(b"ready\n")),
            Err(e) => {
                gateway
                    .metrics()
                    .store_errors
                    .with_label_values(&["ping"])
                    .inc();
                let kind = gateway.store().kind();
                tracing::warn!(error = %e, store = kind, "not ready: the store does not answer");
                respond(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain",
                    Bytes::from(format!("store unreachable ({kind}): {e}\n")),
                )
            }
        },
        (&Method::GET, "/admin/dlq") => {
            let which = query_route(req.uri().query()).map_or(Selection::All, Selection::Route);
            match gateway.engine().dead_letters(&which).await {
                Ok(list) => json_response(
                    StatusCode::OK,
                    &json!({
                        "dead_letters": list.iter().map(describe).collect::<Vec<_>>(),
                        "store": gateway.store().kind(),
                    }),
                ),
                Err(e) => {
                    tracing::error!(error = %e, "listing dead letters failed");
                    error(StatusCode::INTERNAL_SERVER_ERROR, "store error")
                }
            }
        }
        (&Method::POST, path @ ("/admin/dlq/replay" | "/admin/dlq/drop")) => {
            let replay = path.ends_with("replay");
            let which = match selection(req.into_body()).await {
                Ok(w) => w,
                Err(msg) => return error(StatusCode::BAD_REQUEST, &msg),
            };
            let engine = gateway.engine();
            let result = if replay {
                engine.replay(&which).await
            } else {
                engine.drop_dead(&which).await
            };
            match result {
                Ok(done) => {
                    let ids: Vec<u64> = done.iter().map(|m| m.id).collect();
                    let verb = if replay { "replayed" } else { "dropped" };
                    tracing::info!(count = ids.len(), ?ids, "dead letters {verb}");
                    json_response(
                        StatusCode::OK,
                        &json!({ verb: ids.len(), "ids": ids, "store": gateway.store().kind() }),
                    )
                }
                Err(e) => {
                    tracing::error!(error = %e, "dead-letter operation failed");
                    error(StatusCode::INTERNAL_SERVER_ERROR, "store error")
                }
            }
        }
        (_, "/admin/dlq" | "/admin/dlq/replay" | "/admin/dlq/drop") => {
            error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
        }
        _ => respond(
            StatusCode::NOT_FOUND,
            "text/plain",
            Bytes::from_static(b"not found\n"),
        ),
    }
}

/// One dead letter as the API shows it. Never the body or headers: they may hold secrets.
fn describe(m: &Meta) -> serde_json::Value {
    json!({
        "id": m.id,
        "route": m.route,
        "dedup_key": m.key,
        "attempts": m.attempts,
        "received_ms": m.received_ms,
        "error": m.last_error,
    })
}

fn query_route(query: Option<&str>) -> Option<String> {
    query?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "route")
        .map(|(_, v)| v.to_string())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SelectionBody {
    ids: Option<Vec<u64>>,
    route: Option<String>,
    all: Option<bool>,
}

async fn selection(body: Incoming) -> Result<Selection, String> {
    let bytes = Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map_err(|_| "body unreadable or too large".to_string())?
        .to_bytes();
    let b: SelectionBody = serde_json::from_slice(&bytes).map_err(|e| {
        format!("expected {{\"ids\": [..]}}, {{\"route\": \"NAME\"}} or {{\"all\": true}}: {e}")
    })?;
    match (b.ids, b.route, b.all) {
        (Some(ids), None, None) if !ids.is_empty() => Ok(Selection::Ids(ids)),
        (None, Some(r), None) if !r.is_empty() => Ok(Selection::Route(r)),
        (None, None, Some(true)) => Ok(Selection::All),
        _ => Err("select exactly one of a non-empty ids list, a route, or all: true".into()),
    }
}
