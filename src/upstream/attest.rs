//! `X-Webhook-Attestation`: lets a backend on an untrusted network prove a request passed
//! through hookgate (docs/request-path.md, "Attestation").

use bytes::Bytes;
use http::{HeaderValue, Request};
use http_body_util::Full;
use sha2::{Digest, Sha256};

use super::Trusted;
use crate::secret::Secret;
use crate::verify::Algorithm;

/// `t=<unix>,v1=<hex HMAC-SHA256(secret, t.method.path.sha256(body).provider.key_id)>`.
pub fn attest(
    req: &mut Request<Full<Bytes>>,
    trusted: &Trusted,
    secret: &Secret,
    body: &[u8],
    provider: &str,
    key_id: &str,
    now: u64,
) {
    let msg = format!(
        "{now}.{}.{}.{}.{provider}.{}",
        req.method(),
        req.uri().path(),
        hex::encode(Sha256::digest(body)),
        key_id
    );
    let mac = Algorithm::Sha256.sign(secret.expose(), &[msg.as_bytes()]);
    if let Ok(v) = HeaderValue::from_str(&format!("t={now},v1={}", hex::encode(mac))) {
        req.headers_mut().insert(trusted.attestation.clone(), v);
    }
}
