//! HTTP checks, in the two shapes proxies send them (docs/authz.md, "What the proxies send"):
//!
//! - Envoy's `http_service` (and Istio's `envoyExtAuthzHttp`): the original method, the path
//!   `<path_prefix><original path and query>`, the original `Host`, the headers that
//!   `allowed_headers` lets through, and the body (`with_request_body`) with its own
//!   `Content-Length`.
//! - Traefik's forwardAuth: a GET (unless `preserveRequestMethod`) to its `address`, which is
//!   `<prefix>` itself, with the original request's headers, `X-Forwarded-Method`, `-Uri`,
//!   `-Host`, `-Proto` and `-For`, and the body when `forwardBody: true`.
//!
//! Either is rebuilt into the original request and run through the gateway's stages; the body
//! streams into the gateway's body stage, within `max_body_bytes` and `body_timeout`.

use std::net::IpAddr;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::{Either, Full};
use hyper::body::Incoming;

use crate::gateway::authz::{Allowed, Caller, Check};
use crate::gateway::{Body, Conn, Gateway, Mode};

/// Envoy says it cut the body at `max_request_bytes` (`allow_partial_message: true`); only
/// seen when `allowed_headers` lets it through.
pub(super) const PARTIAL_BODY: &str = "x-envoy-auth-partial-body";

/// Answers one HTTP check.
pub(super) async fn check(gateway: &Gateway, req: Request<Incoming>, conn: Conn) -> Response<Body> {
    let state = gateway.state();
    let Some(settings) = state.settings.authz.as_ref() else {
        return not_a_check(gateway);
    };
    let Some((req, client)) = original(req, &settings.http_path_prefix) else {
        return not_a_check(gateway);
    };
    let partial = req
        .headers()
        .get(PARTIAL_BODY)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
    let check = Check {
        caller: Caller::Http(settings.http_duplicate),
        partial,
    };
    drop(state);
    let mut res = gateway.run(req, conn, client, Mode::Authz(check)).await;
    // The decision is for the gRPC listener; over HTTP its headers already say it.
    res.extensions_mut().remove::<Allowed>();
    res
}

/// The original request an HTTP check describes, and its client when the proxy names it;
/// `None` for a path outside the prefix.
fn original<B>(req: Request<B>, prefix: &str) -> Option<(Request<B>, Option<IpAddr>)> {
    let rest = req.uri().path().strip_prefix(prefix)?.to_string();
    let traefik = rest.is_empty() || rest == "/";
    if !traefik && !rest.starts_with('/') {
        // `/authzfoo` is not under `/authz`.
        return None;
    }
    let (mut parts, body) = req.into_parts();
    let client = super::forwarded_client(&parts.headers);
    if traefik {
        let h = &parts.headers;
        let method = h
            .get("x-forwarded-method")
            .and_then(|v| Method::from_bytes(v.as_bytes()).ok())
            .unwrap_or(Method::GET);
        let uri = h
            .get("x-forwarded-uri")
            .and_then(|v| Uri::try_from(v.as_bytes()).ok())
            .filter(|u| u.path().starts_with('/'))
            .unwrap_or_else(|| Uri::from_static("/"));
        let host = h.get("x-forwarded-host").cloned();
        parts.method = method;
        parts.uri = path_and_query(&uri);
        if let Some(host) = host {
            parts.headers.insert(header::HOST, host);
        }
    } else {
        let target = match parts.uri.query() {
            Some(q) => format!("{rest}?{q}"),
            None => rest,
        };
        parts.uri = Uri::try_from(target).ok()?;
    }
    Some((Request::from_parts(parts, body), client))
}

/// The path and query of `uri`, without scheme or authority (the host is `Host`'s).
fn path_and_query(uri: &Uri) -> Uri {
    uri.path_and_query()
        .and_then(|pq| Uri::try_from(pq.as_str()).ok())
        .unwrap_or_else(|| Uri::from_static("/"))
}

/// A request outside `http_path_prefix`: not a check, and never let through.
fn not_a_check(gateway: &Gateway) -> Response<Body> {
    gateway
        .metrics()
        .requests
        .with_label_values(&["none", "rejected", "not_a_check", "authz"])
        .inc();
    let mut res = Response::new(Either::Left(Full::new(Bytes::from_static(
        br#"{"error":"not found"}"#,
    ))));
    *res.status_mut() = StatusCode::NOT_FOUND;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(req: Request<()>) -> Option<(Method, String, Option<String>)> {
        let (req, _) = original(req, "/authz")?;
        let host = req
            .headers()
            .get(header::HOST)
            .map(|v| v.to_str().unwrap().to_string());
        Some((req.method().clone(), req.uri().to_string(), host))
    }

    #[test]
    fn envoy_and_traefik_shapes() {
        let envoy = Request::post("/authz/hooks/a?x=1")
            .header("host", "example.com")
            .body(())
            .unwrap();
        let (m, u, h) = head(envoy).unwrap();
        assert_eq!(
            (m, u.as_str(), h.as_deref()),
            (Method::POST, "/hooks/a?x=1", Some("example.com"))
        );
        let traefik = Request::get("/authz")
            .header("host", "hookgate:9191")
            .header("x-forwarded-method", "POST")
            .header("x-forwarded-uri", "/hooks/a?x=1")
            .header("x-forwarded-host", "example.com")
            .body(())
            .unwrap();
        let (m, u, h) = head(traefik).unwrap();
        assert_eq!(
            (m, u.as_str(), h.as_deref()),
            (Method::POST, "/hooks/a?x=1", Some("example.com"))
        );
        // Without X-Forwarded-Method: GET, which no route accepts.
        let bare = Request::get("/authz/").body(()).unwrap();
        assert_eq!(head(bare).unwrap().0, Method::GET);
        assert!(head(Request::get("/authzx").body(()).unwrap()).is_none());
        assert!(head(Request::get("/other").body(()).unwrap()).is_none());
    }
}
