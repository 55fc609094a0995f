//! The client of `hookgate send` and `dlq`: one HTTP/1.1 request, plain or over TLS, whose
//! failures name the address and the reason (`cannot connect to 127.0.0.1:8080: connection
//! refused`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("invalid URL `{0}`; give http://HOST[:PORT]/PATH or https://HOST[:PORT]/PATH")]
    BadUrl(String),
    #[error("--cacert {path}: {reason}")]
    CaCert { path: String, reason: String },
    #[error("cannot resolve {host}: {reason}")]
    Resolve { host: String, reason: String },
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error("TLS handshake with {addr} failed: {reason}")]
    Tls { addr: String, reason: String },
    #[error("{addr} did not answer within {after}")]
    NoAnswer { addr: String, after: String },
    #[error("{addr} closed the connection without answering")]
    Closed { addr: String },
    #[error("request to {addr} failed: {reason}")]
    Http { addr: String, reason: String },
}

impl SendError {
    /// 2 for what the user typed wrong, 1 for what went wrong at run time.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::BadUrl(_) | Self::CaCert { .. } => 2,
            _ => 1,
        }
    }
}

/// One request.
pub struct Call<'a> {
    pub method: http::Method,
    pub url: &'a str,
    /// Sent as they are; `host` among them replaces the URL's authority as the Host header.
    pub headers: &'a [(String, String)],
    pub body: Vec<u8>,
    /// For everything: resolving, connecting, the handshake, the answer and its body.
    pub timeout: Duration,
    /// https: a CA certificate (PEM) trusted besides the system's.
    pub cacert: Option<PathBuf>,
}

/// An answer: its status and body.
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
}

pub async fn call(p: &Call<'_>) -> Result<Answer, SendError> {
    let uri: http::Uri = p
        .url
        .parse()
        .map_err(|_| SendError::BadUrl(p.url.to_string()))?;
    let tls = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => return Err(SendError::BadUrl(p.url.to_string())),
    };
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| SendError::BadUrl(p.url.to_string()))?;
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let addr = format!("{host}:{port}");
    let connector = if tls { Some(connector(p)?) } else { None };
    let deadline = Instant::now() + p.timeout;
    let after = humantime::format_duration(p.timeout).to_string();
    let timed_out = || format!("timed out after {after}");

    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let tcp = timeout_at(deadline, connect(bare, port, &addr))
        .await
        .map_err(|_| SendError::Connect {
            addr: addr.clone(),
            reason: timed_out(),
        })??;
    let io: Box<dyn Io> = match connector {
        None => Box::new(tcp),
        Some(c) => {
            let name = ServerName::try_from(bare.to_string())
                .map_err(|_| SendError::BadUrl(p.url.to_string()))?;
            let tls_stream = timeout_at(deadline, c.connect(name, tcp))
                .await
                .map_err(|_| SendError::Tls {
                    addr: addr.clone(),
                    reason: timed_out(),
                })?
                .map_err(|e| SendError::Tls {
                    addr: addr.clone(),
                    reason: tls_reason(&e),
                })?;
            Box::new(tls_stream)
        }
    };

    let request = request(&uri, p)?;
    let no_answer = || SendError::NoAnswer {
        addr: addr.clone(),
        after: after.clone(),
    };
    let failed = |e: hyper::Error| {
        if e.is_incomplete_message() || e.is_canceled() || e.is_closed() {
            SendError::Closed { addr: addr.clone() }
        } else {
            SendError::Http {
                addr: addr.clone(),
                reason: chain(&e),
            }
        }
    };
    let (mut sender, conn) = timeout_at(
        deadline,
        hyper::client::conn::http1::handshake(TokioIo::new(io)),
    )
    .await
    .map_err(|_| no_answer())?
    .map_err(failed)?;
    tokio::spawn(conn);
    let res = timeout_at(deadline, sender.send_request(request))
        .await
        .map_err(|_| no_answer())?
        .map_err(failed)?;
    let status = res.status().as_u16();
    let body = timeout_at(deadline, res.into_body().collect())
        .await
        .map_err(|_| no_answer())?
        .map_err(failed)?
        .to_bytes();
    Ok(Answer { status, body })
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The request line in origin form, the Host header from the URL unless `headers` has one.
fn request(uri: &http::Uri, p: &Call<'_>) -> Result<http::Request<Full<Bytes>>, SendError> {
    let path = uri.path_and_query().map_or("/", |pq| pq.as_str());
    let mut builder = http::Request::builder().method(p.method.clone()).uri(path);
    if !p
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("host"))
    {
        if let Some(authority) = uri.authority() {
            builder = builder.header(http::header::HOST, authority.as_str());
        }
    }
    for (k, v) in p.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    builder
        .body(Full::new(Bytes::from(p.body.clone())))
        .map_err(|e| SendError::Http {
            addr: p.url.to_string(),
            reason: e.to_string(),
        })
}

/// The first address of `host` that accepts; the error of the last one that did not.
async fn connect(host: &str, port: u16, addr: &str) -> Result<TcpStream, SendError> {
    let resolved: Vec<_> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| SendError::Resolve {
            host: host.to_string(),
            reason: os_reason(&e),
        })?
        .collect();
    let mut last = None;
    for a in resolved {
        match TcpStream::connect(a).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(SendError::Connect {
        addr: addr.to_string(),
        reason: last.map_or_else(|| "no address found".into(), |e| os_reason(&e)),
    })
}

fn connector(p: &Call<'_>) -> Result<tokio_rustls::TlsConnector, SendError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if let Some(path) = &p.cacert {
        let bad = |reason: String| SendError::CaCert {
            path: path.display().to_string(),
            reason,
        };
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| bad(e.to_string()))?;
        if certs.is_empty() {
            return Err(bad(
                "no PEM certificate found (expected -----BEGIN CERTIFICATE-----)".into(),
            ));
        }
        for c in certs {
            roots.add(c).map_err(|e| bad(e.to_string()))?;
        }
    }
    let mut config = rustls::ClientConfig::builder_with_provider(crate::certs::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| SendError::Http {
            addr: p.url.to_string(),
            reason: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// What went wrong in a handshake, with the likely fix where there is one.
fn tls_reason(e: &std::io::Error) -> String {
    use rustls::{CertificateError, Error};
    match e.get_ref().and_then(|i| i.downcast_ref::<Error>()) {
        Some(r @ Error::InvalidCertificate(CertificateError::UnknownIssuer)) => {
            format!("{r}: the certificate is not signed by a trusted CA (self-signed? give --cacert FILE)")
        }
        Some(r @ Error::InvalidMessage(_)) => {
            format!("{r} (does it speak plain HTTP? try http://)")
        }
        Some(r) => r.to_string(),
        None => os_reason(e),
    }
}

/// The OS's reason in a few lowercase words: `connection refused`, `timed out`, ...
fn os_reason(e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused
        | K::ConnectionReset
        | K::ConnectionAborted
        | K::TimedOut
        | K::HostUnreachable
        | K::NetworkUnreachable
        | K::AddrNotAvailable
        | K::PermissionDenied
        | K::UnexpectedEof => e.kind().to_string(),
        _ => {
            let text = e.to_string();
            let text = text.split(" (os error").next().unwrap_or(&text);
            let mut chars = text.chars();
            chars.next().map_or_else(String::new, |c| {
                c.to_lowercase().chain(chars).collect::<String>()
            })
        }
    }
}

/// An error and its sources, `: `-separated.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_reasons_are_short() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(os_reason(&refused), "connection refused");
        let raw = std::io::Error::from_raw_os_error(111);
        assert_eq!(os_reason(&raw), "connection refused");
        let other = std::io::Error::other("Name or service not known");
        assert_eq!(os_reason(&other), "name or service not known");
    }
}
