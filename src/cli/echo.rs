//! `hookgate echo`: a receiver that prints every request it gets, to watch what a backend
//! behind hookgate would see.

use std::io::Write;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

/// Serves until the process is stopped.
pub async fn run(listen: SocketAddr) -> std::io::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    println!("echo listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            let service =
                service_fn(
                    |req| async move { Ok::<_, std::convert::Infallible>(handle(req).await) },
                );
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let mut out = format!("{} {} {:?}\n", parts.method, parts.uri, parts.version);
    let mut trusted = String::new();
    for (k, v) in &parts.headers {
        let line = format!("  {}: {}\n", k, String::from_utf8_lossy(v.as_bytes()));
        if k.as_str().starts_with("x-webhook-") {
            trusted.push_str(&line);
        } else {
            out.push_str(&line);
        }
    }
    if !trusted.is_empty() {
        out.push_str("trusted headers:\n");
        out.push_str(&trusted);
    }
    out.push_str(&format!("body ({} bytes):\n", body.len()));
    out.push_str(&String::from_utf8_lossy(&body));
    out.push_str("\n---\n");
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
    Response::new(Full::new(Bytes::from_static(b"{\"status\":\"ok\"}")))
}
