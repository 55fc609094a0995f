//! The floor contestant of `bench/run.py`: the least a hyper proxy that verifies a webhook can
//! do, so every figure shows how far hookgate is above what hyper itself costs.
//!
//! One current-thread runtime; hyper's HTTP/1-only server; the body collected; the
//! `X-MediaConvert-Signature` HMAC-SHA256 checked in constant time (401 otherwise); the request
//! sent upstream, headers and body as they came, on an upstream connection kept for the
//! downstream connection's life. Nothing else: no limits, no schema, no metrics, no logs.
//!
//!     cargo build --release --example floor
//!     floor LISTEN_PORT UPSTREAM_ADDR SECRET

use std::net::SocketAddr;
use std::rc::Rc;

use bytes::Bytes;
use hmac::{KeyInit, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::Mutex;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

fn answer(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r
}

fn verified(secret: &[u8], header: Option<&[u8]>, body: &[u8]) -> bool {
    let Some(hex_sig) = header.and_then(|h| h.strip_prefix(b"sha256=")) else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let Ok(mut mac) = HmacSha256::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

/// The upstream connection of one downstream connection, opened on its first request.
type Upstream = Rc<Mutex<Option<SendRequest<Full<Bytes>>>>>;

async fn proxy(
    req: Request<Incoming>,
    secret: Rc<Vec<u8>>,
    upstream_addr: SocketAddr,
    upstream: Upstream,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    let sig = parts.headers.get("x-mediaconvert-signature");
    if !verified(&secret, sig.map(|v| v.as_bytes()), &body) {
        return Ok(answer(
            StatusCode::UNAUTHORIZED,
            "{\"error\":\"invalid signature\"}",
        ));
    }
    let mut slot = upstream.lock().await;
    if slot.as_ref().is_none_or(|s| s.is_closed()) {
        let Ok(tcp) = tokio::net::TcpStream::connect(upstream_addr).await else {
            return Ok(answer(StatusCode::BAD_GATEWAY, "{\"error\":\"upstream\"}"));
        };
        let _ = tcp.set_nodelay(true);
        let Ok((send, conn)) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await
        else {
            return Ok(answer(StatusCode::BAD_GATEWAY, "{\"error\":\"upstream\"}"));
        };
        tokio::task::spawn_local(conn);
        *slot = Some(send);
    }
    let Some(send) = slot.as_mut() else {
        return Ok(answer(StatusCode::BAD_GATEWAY, "{\"error\":\"upstream\"}"));
    };
    let up = Request::from_parts(parts, Full::new(body));
    match send.send_request(up).await {
        Ok(resp) => {
            let (parts, body) = resp.into_parts();
            let body = body.collect().await?.to_bytes();
            Ok(Response::from_parts(parts, Full::new(body)))
        }
        Err(_) => {
            *slot = None;
            Ok(answer(StatusCode::BAD_GATEWAY, "{\"error\":\"upstream\"}"))
        }
    }
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, port, upstream, secret] = args.as_slice() else {
        eprintln!("usage: floor LISTEN_PORT UPSTREAM_ADDR SECRET");
        std::process::exit(2);
    };
    let listen: SocketAddr = format!("127.0.0.1:{port}")
        .parse()
        .map_err(std::io::Error::other)?;
    let upstream: SocketAddr = upstream.parse().map_err(std::io::Error::other)?;
    let secret = Rc::new(secret.clone().into_bytes());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        println!("listening on {listen}");
        loop {
            let (tcp, _) = listener.accept().await?;
            let _ = tcp.set_nodelay(true);
            let secret = secret.clone();
            let conn_upstream: Upstream = Rc::new(Mutex::new(None));
            tokio::task::spawn_local(async move {
                let service = hyper::service::service_fn(move |req| {
                    proxy(req, secret.clone(), upstream, conn_upstream.clone())
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    })
}
