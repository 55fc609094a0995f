//! HTTPS for the integration tests: certificates made on the spot, and a client that keeps one
//! TLS connection open (HTTP/1.1 or HTTP/2 by ALPN) and reports what the handshake gave.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{json, Value};
use tokio_rustls::TlsConnector;

use super::{Resp, WAIT};

/// A self-signed certificate for `localhost` and 127.0.0.1, and its key.
pub struct TestCert {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: CertificateDer<'static>,
}

impl TestCert {
    pub fn generate() -> TestCert {
        let c = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .expect("generate certificate");
        TestCert {
            cert_pem: c.cert.pem(),
            key_pem: c.signing_key.serialize_pem(),
            der: c.cert.der().clone(),
        }
    }

    /// Writes `tls.crt` and `tls.key` into `dir`; returns their paths.
    pub fn write_to(&self, dir: &Path) -> (PathBuf, PathBuf) {
        let (crt, key) = (dir.join("tls.crt"), dir.join("tls.key"));
        std::fs::write(&crt, &self.cert_pem).expect("write cert");
        std::fs::write(&key, &self.key_pem).expect("write key");
        (crt, key)
    }
}

/// The `server.tls` mapping for these PEM files.
pub fn server_tls(cert: &Path, key: &Path) -> Value {
    json!({
        "cert_file": cert.display().to_string(),
        "key_file": key.display().to_string(),
    })
}

/// A config made by [`super::config`] with `server.tls` set.
pub fn with_tls(mut config: Value, cert: &Path, key: &Path) -> Value {
    config["server"]["tls"] = server_tls(cert, key);
    config
}

/// Which protocol versions and ALPN ids the client offers.
#[derive(Clone, Copy, Debug)]
pub struct Offer {
    pub alpn: &'static [&'static [u8]],
    pub versions: &'static [&'static rustls::SupportedProtocolVersion],
}

pub const H1: Offer = Offer {
    alpn: &[b"http/1.1"],
    versions: rustls::DEFAULT_VERSIONS,
};
pub const H2: Offer = Offer {
    alpn: &[b"h2", b"http/1.1"],
    versions: rustls::DEFAULT_VERSIONS,
};
pub const TLS12_ONLY: Offer = Offer {
    alpn: &[b"http/1.1"],
    versions: &[&rustls::version::TLS12],
};
pub const TLS13_ONLY: Offer = Offer {
    alpn: &[b"http/1.1"],
    versions: &[&rustls::version::TLS13],
};

fn connector(trusted: &[&CertificateDer<'static>], offer: Offer) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for c in trusted {
        roots.add((*c).clone()).expect("trust certificate");
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(offer.versions)
    .expect("protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = offer.alpn.iter().map(|p| p.to_vec()).collect();
    TlsConnector::from(Arc::new(config))
}

enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

/// One open HTTPS connection.
pub struct HttpsConn {
    sender: Sender,
    addr: SocketAddr,
    /// The certificate the server presented in this connection's handshake.
    pub peer_cert: CertificateDer<'static>,
    /// The ALPN protocol agreed (`h2`, `http/1.1`).
    pub alpn: Option<Vec<u8>>,
    pub version: rustls::ProtocolVersion,
}

impl HttpsConn {
    /// Connects to `addr` as `localhost`, trusting only `trusted`.
    pub async fn open(
        addr: SocketAddr,
        trusted: &[&CertificateDer<'static>],
        offer: Offer,
    ) -> Result<HttpsConn, String> {
        let fut = async {
            let tcp = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            let name = ServerName::try_from("localhost").expect("server name");
            let tls = connector(trusted, offer)
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS handshake: {e}"))?;
            let (_, session) = tls.get_ref();
            let peer_cert = session
                .peer_certificates()
                .and_then(|c| c.first())
                .cloned()
                .ok_or("no peer certificate")?;
            let alpn = session.alpn_protocol().map(<[u8]>::to_vec);
            let version = session.protocol_version().ok_or("no protocol version")?;
            let io = TokioIo::new(tls);
            let sender = if alpn.as_deref() == Some(b"h2") {
                let (s, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                    .await
                    .map_err(|e| format!("h2 handshake: {e}"))?;
                tokio::spawn(conn);
                Sender::H2(s)
            } else {
                let (s, conn) = hyper::client::conn::http1::handshake(io)
                    .await
                    .map_err(|e| format!("h1 handshake: {e}"))?;
                tokio::spawn(conn);
                Sender::H1(s)
            };
            Ok(HttpsConn {
                sender,
                addr,
                peer_cert,
                alpn,
                version,
            })
        };
        tokio::time::timeout(WAIT, fut)
            .await
            .map_err(|_| "timed out".to_string())?
    }

    /// Sends one request on this connection; returns the response and its HTTP version.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(Resp, hyper::Version), String> {
        let h2 = matches!(self.sender, Sender::H2(_));
        let mut b = hyper::Request::builder().method(method);
        b = if h2 {
            b.version(hyper::Version::HTTP_2)
                .uri(format!("https://localhost:{}{path}", self.addr.port()))
        } else {
            b.uri(path)
                .header("host", format!("localhost:{}", self.addr.port()))
        };
        for (n, v) in headers {
            b = b.header(*n, *v);
        }
        let req = b
            .body(Full::new(Bytes::copy_from_slice(body)))
            .map_err(|e| e.to_string())?;
        let fut = async {
            let resp = match &mut self.sender {
                Sender::H1(s) => s.send_request(req).await,
                Sender::H2(s) => s.send_request(req).await,
            }
            .map_err(|e| format!("send: {e}"))?;
            let version = resp.version();
            Ok((super::client::to_resp(resp).await?, version))
        };
        tokio::time::timeout(WAIT, fut)
            .await
            .map_err(|_| "timed out".to_string())?
    }

    /// POSTs `body` signed for mediaconvert with `secret`.
    pub async fn post_mc(&mut self, path: &str, secret: &str, body: &[u8]) -> Resp {
        let sig = super::sha256_header(secret, body);
        self.send(
            "POST",
            path,
            &[
                ("content-type", "application/json"),
                ("x-mediaconvert-signature", &sig),
            ],
            body,
        )
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e}"))
        .0
    }
}
