//! The OTLP exporter's HTTP client: one HTTP/1.1 POST per batch, plain or over TLS (the
//! system's roots), on the exporter's own thread and runtime. A batch goes out at most about
//! once a second, so a fresh connection each time costs nothing that matters, and nothing of
//! it is shared with the request path's upstream pool.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use opentelemetry_http::{HttpClient, HttpError};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

/// A collector's answer is small; anything larger is not read.
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// Why one export request failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("the collector URL {0} has no host")]
    NoHost(String),
    #[error("{0} did not answer within {1:?}")]
    TimedOut(String, Duration),
    #[error("cannot connect to {0}: {1}")]
    Connect(String, std::io::Error),
    #[error("TLS with {0} failed: {1}")]
    Tls(String, std::io::Error),
    #[error("request to {0} failed: {1}")]
    Http(String, String),
}

#[derive(Clone)]
pub struct Client {
    tls: tokio_rustls::TlsConnector,
    timeout: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Client {
    pub fn new(timeout: Duration) -> Result<Self, rustls::Error> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        let mut config = rustls::ClientConfig::builder_with_provider(crate::certs::provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
            timeout,
        })
    }

    async fn post(&self, req: Request<Bytes>) -> Result<Response<Bytes>, ExportError> {
        let uri = req.uri().clone();
        let tls = uri.scheme_str() == Some("https");
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| ExportError::NoHost(uri.to_string()))?;
        let bare = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let addr = format!("{host}:{port}");
        let deadline = Instant::now() + self.timeout;
        let late = |addr: &str| ExportError::TimedOut(addr.to_string(), self.timeout);

        let tcp = timeout_at(deadline, TcpStream::connect((bare.as_str(), port)))
            .await
            .map_err(|_| late(&addr))?
            .map_err(|e| ExportError::Connect(addr.clone(), e))?;
        let io: Box<dyn Io> = if tls {
            let name = ServerName::try_from(bare).map_err(|_| ExportError::NoHost(addr.clone()))?;
            let stream = timeout_at(deadline, self.tls.connect(name, tcp))
                .await
                .map_err(|_| late(&addr))?
                .map_err(|e| ExportError::Tls(addr.clone(), e))?;
            Box::new(stream)
        } else {
            Box::new(tcp)
        };
        let http_err = |e: hyper::Error| ExportError::Http(addr.clone(), e.to_string());
        let (mut sender, conn) = timeout_at(
            deadline,
            hyper::client::conn::http1::handshake(TokioIo::new(io)),
        )
        .await
        .map_err(|_| late(&addr))?
        .map_err(http_err)?;
        tokio::spawn(conn);

        let (mut parts, body) = req.into_parts();
        if let Some(authority) = uri.authority() {
            if let Ok(v) = http::HeaderValue::from_str(authority.as_str()) {
                parts.headers.insert(http::header::HOST, v);
            }
        }
        let path = uri.path_and_query().map_or("/", |pq| pq.as_str());
        parts.uri = path
            .parse()
            .map_err(|e: http::uri::InvalidUri| ExportError::Http(addr.clone(), e.to_string()))?;
        let req = Request::from_parts(parts, Full::new(body));
        let res = timeout_at(deadline, sender.send_request(req))
            .await
            .map_err(|_| late(&addr))?
            .map_err(http_err)?;
        let (parts, body) = res.into_parts();
        let body = timeout_at(deadline, Limited::new(body, MAX_ANSWER_BYTES).collect())
            .await
            .map_err(|_| late(&addr))?
            .map_err(|e| ExportError::Http(addr.clone(), e.to_string()))?
            .to_bytes();
        Ok(Response::from_parts(parts, body))
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

#[async_trait::async_trait]
impl HttpClient for Client {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        Ok(self.post(request).await?)
    }
}
