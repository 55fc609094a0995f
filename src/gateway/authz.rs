//! Verify-only mode (docs/authz.md): a proxy (Envoy ext_authz, Istio, Traefik forwardAuth)
//! asks whether to let a webhook through and routes it itself. Stages 1 to 7 run exactly as
//! inline; instead of delivering, the answer names the trusted headers to set upstream and the
//! inbound look-alikes to remove. The listener and the wire formats are `server::authz`'s.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderName, HeaderValue, Response, StatusCode};
use http_body_util::Full;

use super::{trusted_headers, Admitted, Gateway, Record, Rejection, State};
use crate::clock::millis;

/// `authz`: where checks are answered, and how an HTTP check answers a duplicate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// gRPC and HTTP on one port.
    pub listen: SocketAddr,
    /// HTTP checks: Envoy sends `<prefix><original path>`; Traefik calls `<prefix>` itself.
    pub http_path_prefix: String,
    pub http_duplicate: HttpDuplicate,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9191)),
            http_path_prefix: "/authz".to_string(),
            http_duplicate: HttpDuplicate::Deny202,
        }
    }
}

/// How an HTTP check answers a duplicate; a gRPC check always denies it with 200.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpDuplicate {
    /// `202 {"status":"duplicate"}`: Envoy's `http_service` allows only on 200 and hands any
    /// other answer to the sender, so the sender stops retrying and the backend sees nothing.
    Deny202,
    /// 200 with `X-Webhook-Duplicate: true`: Traefik allows on every 2xx, so the duplicate goes
    /// through marked, for the backend to drop.
    AllowMarked,
}

/// Which protocol asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// `envoy.service.auth.v3.Authorization/Check`.
    Grpc,
    /// Envoy's `http_service` or Traefik's forwardAuth.
    Http(HttpDuplicate),
}

/// One check, as the listener read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Check {
    pub caller: Caller,
    /// The proxy says it sent only the start of the body (`x-envoy-auth-partial-body: true`,
    /// or fewer bytes than the original `Content-Length`).
    pub partial: bool,
}

/// An allowed check: what the proxy must do to the request before routing it.
#[derive(Debug, Clone)]
pub struct Allowed {
    /// Trusted headers to set upstream, replacing any inbound copy.
    pub set: Vec<(HeaderName, HeaderValue)>,
    /// Inbound names under the trusted prefix that are not set here, to remove. Envoy removes
    /// after setting, so a name that is set must never be listed.
    pub remove: Vec<HeaderName>,
    pub route: Arc<str>,
    pub provider: &'static str,
    pub key_id: Arc<str>,
    pub delivery_id: Option<String>,
    pub dedup_key: Option<String>,
}

/// Where Envoy's `http_service` reads the headers to remove (`headers_to_remove` in gRPC).
pub const HEADERS_TO_REMOVE: HeaderName = HeaderName::from_static("x-envoy-auth-headers-to-remove");

impl Allowed {
    /// The HTTP check's answer: 200 with the trusted headers as response headers, for Envoy's
    /// `allowed_upstream_headers` and Traefik's `authResponseHeaders`; the decision itself rides
    /// along as an extension for the gRPC listener.
    pub fn response(self) -> Response<Full<Bytes>> {
        let mut res = Response::new(Full::new(Bytes::new()));
        let h = res.headers_mut();
        for (name, value) in &self.set {
            h.insert(name.clone(), value.clone());
        }
        if !self.remove.is_empty() {
            let names: Vec<&str> = self.remove.iter().map(HeaderName::as_str).collect();
            if let Ok(v) = HeaderValue::from_str(&names.join(", ")) {
                h.insert(HEADERS_TO_REMOVE, v);
            }
        }
        res.extensions_mut().insert(self);
        res
    }
}

impl Gateway {
    /// After stage 7: the decision to let the request through.
    pub(super) async fn allow(
        &self,
        state: &State,
        admitted: Admitted,
        _check: Check,
        rec: &mut Record,
    ) -> Allowed {
        let Admitted {
            route,
            parts,
            verified,
            hold,
            received_ms,
            ..
        } = admitted;
        // The proxy delivers and hookgate never learns the backend's answer: the key is marked
        // now, so a copy arriving later is a duplicate even if the backend failed this one.
        if let (Some(hold), Some(d)) = (hold, &route.dedup) {
            let expires = received_ms.saturating_add(millis(d.ttl));
            if let Err(e) = hold.delivered(expires).await {
                self.metrics.store_errors.with_label_values(&["mark"]).inc();
                tracing::error!(route = %route.name, error = %e, "cannot mark a dedup key of an allowed check");
            }
        }
        let set = trusted_headers(
            &state.trusted,
            &route,
            &verified.key_id,
            rec.dedup_key.as_deref(),
        );
        let spoofed = state.trusted.spoofed(&parts.headers);
        rec.spoofed = spoofed.iter().map(|(_, n)| n).sum();
        let remove = spoofed
            .into_iter()
            .map(|(name, _)| name)
            .filter(|name| !set.iter().any(|(s, _)| s == name))
            .collect();
        Allowed {
            set,
            remove,
            route: route.name.clone(),
            provider: route.verifier.scheme().name(),
            key_id: verified.key_id.clone(),
            delivery_id: verified.delivery_id.clone(),
            dedup_key: rec.dedup_key.clone(),
        }
    }
}

/// A refusal as a check answers it: the gateway's own status and body, except a duplicate over
/// HTTP (DESIGN 13), and never `Connection: close` (the connection is the proxy's, not the
/// sender's).
pub(super) fn refusal(
    r: &Rejection,
    check: Check,
    state: &State,
    rec: &Record,
) -> Response<Full<Bytes>> {
    let mut res = r.response();
    match (r, check.caller) {
        (Rejection::Duplicate, Caller::Http(HttpDuplicate::Deny202)) => {
            *res.status_mut() = StatusCode::ACCEPTED;
        }
        (Rejection::Duplicate, Caller::Http(HttpDuplicate::AllowMarked)) => {
            mark_duplicate(res.headers_mut(), state, rec);
        }
        _ => {}
    }
    res.headers_mut().remove(header::CONNECTION);
    res
}

/// A duplicate let through (`allow_marked`): the trusted headers, and the mark.
fn mark_duplicate(headers: &mut http::HeaderMap, state: &State, rec: &Record) {
    let route = rec
        .route
        .as_ref()
        .and_then(|name| state.settings.routes.iter().find(|r| &r.name == name));
    if let (Some(route), Some(verified)) = (route, &rec.verified) {
        let set = trusted_headers(
            &state.trusted,
            route,
            &verified.key_id,
            rec.dedup_key.as_deref(),
        );
        for (name, value) in set {
            headers.insert(name, value);
        }
    }
    headers.insert(
        state.trusted.duplicate.clone(),
        HeaderValue::from_static("true"),
    );
}

/// Says why a truncated body was refused: the log line only carries `partial_body`.
pub(super) fn warn_partial(route: &str) {
    tracing::warn!(
        target: "hookgate::authz",
        route,
        "the proxy sent only part of the body, which can never verify: refused with 413; set with_request_body.allow_partial_message: false and max_request_bytes at least the largest webhook"
    );
}
