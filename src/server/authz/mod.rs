//! The verify-only listener (`authz`, docs/authz.md): one port for Envoy's gRPC
//! `envoy.service.auth.v3.Authorization/Check` and for plain HTTP checks (Envoy's
//! `http_service`, Traefik's forwardAuth).
//!
//! hyper serves the port (HTTP/1.1 and h2c, as the proxy listener does) and each request is
//! dispatched on its `content-type`: `application/grpc*` goes to the gRPC service (tonic's
//! framing and codec, `grpc.rs`), anything else is an HTTP check (`http.rs`). This keeps one
//! connection stack (limits, timeouts, graceful shutdown) for both, and needs none of tonic's
//! own transport or router.

mod grpc;
mod http;
mod pb;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Either;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use crate::gateway::{Conn, Gateway};

/// A gRPC message carries the headers besides the body: room for both, so a body just over
/// `max_body_bytes` still gets the gateway's 413 rather than a transport error.
const HEADROOM: usize = 1 << 20;

/// Serves checks on `listener` until `stop` turns true, then drains them within `grace`.
pub(super) async fn serve(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    permits: Arc<Semaphore>,
    header_timeout: Duration,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
) {
    let builder = Arc::new(super::worker::builder(header_timeout));
    let max_message = {
        let max = gateway.state().settings.max_body_bytes;
        // A body as `raw_body` or as `body` (both are counted), plus the headers.
        usize::try_from(max)
            .unwrap_or(usize::MAX)
            .saturating_mul(2)
            .saturating_add(HEADROOM)
    };
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "authz: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let _ = stream.set_nodelay(true);
        let conn = Conn { peer, tls: false };
        let checker = grpc::Checker::new(gateway.clone(), conn, max_message);
        let gw = gateway.clone();
        let service = service_fn(move |req: ::http::Request<Incoming>| {
            let gw = gw.clone();
            let checker = checker.clone();
            async move {
                let res = if grpc::is_grpc(&req) {
                    checker.call(req).await.map(Either::Left)
                } else {
                    http::check(&gw, req, conn).await.map(Either::Right)
                };
                Ok::<_, std::convert::Infallible>(res)
            }
        });
        let conn = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, %peer, "authz: connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("authz: shutdown grace elapsed; closing remaining connections");
    }
}

/// The rightmost address of `X-Forwarded-For`: the one the calling proxy appended.
fn forwarded_client(headers: &::http::HeaderMap) -> Option<IpAddr> {
    let last = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .next_back()?;
    let last = last.trim();
    last.parse::<IpAddr>()
        .ok()
        .or_else(|| last.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_client_is_the_last_hop() {
        let mut h = ::http::HeaderMap::new();
        assert_eq!(forwarded_client(&h), None);
        h.append("x-forwarded-for", "203.0.113.9, 10.0.0.1".parse().unwrap());
        assert_eq!(forwarded_client(&h), Some("10.0.0.1".parse().unwrap()));
        h.append("x-forwarded-for", "198.51.100.7".parse().unwrap());
        assert_eq!(forwarded_client(&h), Some("198.51.100.7".parse().unwrap()));
        let mut h = ::http::HeaderMap::new();
        h.insert("x-forwarded-for", "not an address".parse().unwrap());
        assert_eq!(forwarded_client(&h), None);
    }
}
