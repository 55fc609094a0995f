//! SendGrid Event Webhook: ECDSA P-256 with SHA-256 over `timestamp + body`.
//! `X-Twilio-Email-Event-Webhook-Signature: base64(DER signature)` and
//! `X-Twilio-Email-Event-Webhook-Timestamp: <unix>`. The verification key is the base64 DER
//! SubjectPublicKeyInfo SendGrid shows (PEM is accepted too).
//!
//! SendGrid does not normalise `s`: its own signatures are often high-S, and the `p256` crate
//! accepts them, as it must. A raw `r||s` signature is not DER and is malformed.

use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::signature::MultipartSigner;
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use super::encoding::Encoding;
use super::header::single;
use super::keys::lenient_base64;
use super::timestamp::{parse_digits, Window};
use super::{Input, Keys, SignInput, Verified, VerifyError};
use crate::secret::Secret;

const SIGNATURE: &str = "x-twilio-email-event-webhook-signature";
const TIMESTAMP: &str = "x-twilio-email-event-webhook-timestamp";

pub(super) fn verify(
    input: &Input<'_>,
    keys: &Keys,
    window: Window,
) -> Result<Verified, VerifyError> {
    let sig = single(input.headers, SIGNATURE)?;
    let ts_text = single(input.headers, TIMESTAMP)?;
    let sig = Encoding::Base64
        .decode(sig)
        .and_then(|der| Signature::from_der(&der).ok())
        .ok_or(VerifyError::MalformedHeader)?;
    let ts = parse_digits(ts_text)?;
    window.check_secs(ts, input.now)?;
    // Hashed once for every key.
    let prehash = Sha256::new()
        .chain_update(ts_text.as_bytes())
        .chain_update(input.body)
        .finalize();
    keys.p256
        .iter()
        .find(|(_, key)| key.verify_prehash(&prehash, &sig).is_ok())
        .map(|(id, _)| Verified::new(id.clone(), None::<String>))
        .ok_or(VerifyError::Mismatch)
}

/// The signed timestamp, in unix seconds (for the doctor).
pub(super) fn timestamp(headers: &http::HeaderMap) -> Option<u64> {
    parse_digits(single(headers, TIMESTAMP).ok()?).ok()
}

/// The key from SendGrid's settings page (base64 DER SPKI), or a PEM `PUBLIC KEY`.
pub(super) fn decode_public_key(key: &Secret) -> Result<VerifyingKey, String> {
    use p256::pkcs8::DecodePublicKey;
    let text = std::str::from_utf8(key.expose()).unwrap_or_default().trim();
    let parsed = if text.starts_with("-----BEGIN PUBLIC KEY-----") {
        VerifyingKey::from_public_key_pem(text).ok()
    } else {
        lenient_base64(text).and_then(|der| VerifyingKey::from_public_key_der(&der).ok())
    };
    parsed.ok_or_else(|| {
        "not a P-256 public key: expected SendGrid's base64 key (DER SubjectPublicKeyInfo) or a PEM PUBLIC KEY".into()
    })
}

pub(super) fn sign(key: &SigningKey, input: &SignInput<'_>) -> Vec<(String, String)> {
    let ts = input.now.to_string();
    let sig: Signature = key.multipart_sign(&[ts.as_bytes(), input.body]);
    vec![
        (TIMESTAMP.to_string(), ts),
        (
            SIGNATURE.to_string(),
            Encoding::Base64.encode(sig.to_der().as_bytes()),
        ),
    ]
}
