//! HTTPS on the main listener: rustls with the `ring` provider, TLS 1.2 and 1.3, ALPN `h2` and
//! `http/1.1`.
//!
//! The certificate is not fixed in the `ServerConfig`: [`CertStore`] hands out whichever
//! certified key the last good config loaded, so a reload swaps it for new handshakes while
//! connections already open keep the one they were made with.

use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

pub use crate::certs::{certified_key, provider, TlsError};

/// The certified key handed to every new handshake; replaced by a reload.
pub struct CertStore {
    current: ArcSwap<CertifiedKey>,
}

impl CertStore {
    pub fn new(key: Arc<CertifiedKey>) -> Self {
        Self {
            current: ArcSwap::new(key),
        }
    }

    /// New handshakes get `key` from now on; open connections are not touched.
    pub fn set(&self, key: Arc<CertifiedKey>) {
        self.current.store(key);
    }
}

impl fmt::Debug for CertStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CertStore")
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// A TLS acceptor that reads its certificate from `store` at each handshake.
pub fn acceptor(store: Arc<CertStore>) -> Result<TlsAcceptor, TlsError> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(store);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (String, String) {
        let c = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        (c.cert.pem(), c.signing_key.serialize_pem())
    }

    #[test]
    fn acceptor_offers_h2_and_http11() {
        let (cert, key) = pair();
        let ck = Arc::new(certified_key(cert.as_bytes(), key.as_bytes()).unwrap());
        assert!(acceptor(Arc::new(CertStore::new(ck))).is_ok());
    }
}
