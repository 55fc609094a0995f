//! Certificates and keys: PEM parsed and checked when the config loads, so `check` and a reload
//! refuse a broken pair instead of the first handshake failing.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why a certificate or key could not be used. The messages name the file's role, never its
/// contents (a private key must not reach a log).
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("no PEM certificate found (expected -----BEGIN CERTIFICATE-----)")]
    NoCertificate,
    #[error("certificate PEM is malformed: {0}")]
    BadCertificate(String),
    #[error("no PEM private key found (expected PKCS#8, PKCS#1 or SEC1 -----BEGIN ... PRIVATE KEY-----)")]
    NoKey,
    #[error("private key is not usable: {0}")]
    BadKey(String),
    #[error("the private key does not belong to the first certificate in cert_file")]
    KeyMismatch,
    #[error("the first certificate in cert_file is not valid: {0}")]
    BadEndEntity(String),
    #[error("cannot build the TLS configuration: {0}")]
    Config(String),
}

/// Which file a [`TlsError`] is about, so validation can name the right key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFileRole {
    Cert,
    Key,
    Pair,
}

impl TlsError {
    pub fn role(&self) -> TlsFileRole {
        match self {
            Self::NoCertificate | Self::BadCertificate(_) | Self::BadEndEntity(_) => {
                TlsFileRole::Cert
            }
            Self::NoKey | Self::BadKey(_) => TlsFileRole::Key,
            Self::KeyMismatch | Self::Config(_) => TlsFileRole::Pair,
        }
    }
}

/// The only crypto provider hookgate uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Parses a PEM certificate chain and private key and checks that they belong together.
pub fn certified_key(cert_pem: &[u8], key_pem: &[u8]) -> Result<CertifiedKey, TlsError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadCertificate(e.to_string()))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => TlsError::NoKey,
        other => TlsError::BadKey(other.to_string()),
    })?;
    CertifiedKey::from_der(chain, key, &provider()).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => TlsError::KeyMismatch,
        rustls::Error::General(_) => TlsError::BadKey(e.to_string()),
        other => TlsError::BadEndEntity(other.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (String, String) {
        let c = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        (c.cert.pem(), c.signing_key.serialize_pem())
    }

    #[test]
    fn matching_pair_loads() {
        let (cert, key) = pair();
        assert!(certified_key(cert.as_bytes(), key.as_bytes()).is_ok());
    }

    #[test]
    fn each_failure_names_its_file() {
        let (cert, key) = pair();
        let (_, other_key) = pair();
        let role = |c: &str, k: &str| certified_key(c.as_bytes(), k.as_bytes()).unwrap_err();
        assert!(matches!(role("", &key), TlsError::NoCertificate));
        assert_eq!(role("", &key).role(), TlsFileRole::Cert);
        assert!(matches!(role(&cert, "nothing here"), TlsError::NoKey));
        assert_eq!(role(&cert, "").role(), TlsFileRole::Key);
        assert!(matches!(role(&cert, &other_key), TlsError::KeyMismatch));
        let truncated = &cert[..cert.len() / 2];
        assert_eq!(role(truncated, &key).role(), TlsFileRole::Cert);
        // The key's PEM as the certificate: no certificate found.
        assert_eq!(role(&key, &key).role(), TlsFileRole::Cert);
    }

    #[test]
    fn errors_never_show_key_material() {
        let (cert, key) = pair();
        let (_, other_key) = pair();
        let e = certified_key(cert.as_bytes(), other_key.as_bytes()).unwrap_err();
        let body: String = key.lines().nth(1).unwrap().into();
        assert!(!e.to_string().contains(&body));
    }
}
