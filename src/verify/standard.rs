//! Standard Webhooks and Svix: `webhook-id`, `webhook-timestamp` and `webhook-signature` (Svix:
//! `svix-*`, each falling back to `webhook-*`), signing `id + "." + timestamp + "." + body`.
//!
//! The signature header is a space-separated list of `<version>,<base64>`: `v1` is HMAC-SHA256
//! keyed with base64-decode(secret minus `whsec_`), `v1a` is Ed25519 under a `whpk_` public key.
//! Any entry may match (the sender signs with old and new keys during a rotation); unknown
//! versions are skipped; an entry that is not exactly `<version>,<value>`, or a v1/v1a value
//! of the wrong length, makes the header malformed (a length-unchecked compare would accept
//! `v1,` or a truncated value).

use ed25519_dalek::{Signature, VerifyingKey};

use super::encoding::Encoding;
use super::header::first_of;
use super::hmac::Algorithm;
use super::keys::lenient_base64;
use super::timestamp::{parse_digits, Window};
use super::{first_match, Input, Keys, SignError, SignInput, SigningKey, Verified, VerifyError};
use crate::secret::Secret;

/// The header names a flavour reads, preferred first.
#[derive(Debug, Clone, Copy)]
pub(super) struct Names {
    scheme: &'static str,
    id: &'static [&'static str],
    timestamp: &'static [&'static str],
    signature: &'static [&'static str],
}

impl Names {
    pub(super) const STANDARD: Self = Self {
        scheme: "standard-webhooks",
        id: &["webhook-id"],
        timestamp: &["webhook-timestamp"],
        signature: &["webhook-signature"],
    };
    pub(super) const SVIX: Self = Self {
        scheme: "svix",
        id: &["svix-id", "webhook-id"],
        timestamp: &["svix-timestamp", "webhook-timestamp"],
        signature: &["svix-signature", "webhook-signature"],
    };
}

pub(super) fn verify(
    names: Names,
    input: &Input<'_>,
    keys: &Keys,
    window: Window,
) -> Result<Verified, VerifyError> {
    let id = first_of(input.headers, names.id)?;
    let ts_text = first_of(input.headers, names.timestamp)?;
    let list = first_of(input.headers, names.signature)?;
    let ts = parse_digits(ts_text)?;
    let mut v1 = Vec::new();
    let mut v1a = Vec::new();
    for entry in list.split(' ').filter(|e| !e.is_empty()) {
        let (version, value) = entry
            .split_once(',')
            .filter(|(_, v)| !v.contains(','))
            .ok_or(VerifyError::MalformedHeader)?;
        match version {
            "v1" => v1.push(
                Encoding::Base64
                    .decode(value)
                    .filter(|s| s.len() == 32)
                    .ok_or(VerifyError::MalformedHeader)?,
            ),
            "v1a" => v1a.push(
                Encoding::Base64
                    .decode(value)
                    .and_then(|s| <[u8; 64]>::try_from(s).ok())
                    .map(|b| Signature::from_bytes(&b))
                    .ok_or(VerifyError::MalformedHeader)?,
            ),
            _ => {}
        }
    }
    window.check_secs(ts, input.now)?;
    let parts: [&[u8]; 5] = [id.as_bytes(), b".", ts_text.as_bytes(), b".", input.body];
    let verified = |key_id| Ok(Verified::new(key_id, Some(id)));
    if !v1.is_empty() {
        if let Ok(key_id) = first_match(&keys.secrets, |k| {
            Algorithm::Sha256.verify_any(k, &parts, &v1)
        }) {
            return verified(key_id);
        }
    }
    if !v1a.is_empty() && !keys.ed25519.is_empty() {
        let msg = parts.concat();
        if let Some((key_id, _)) = keys
            .ed25519
            .iter()
            .find(|(_, key)| v1a.iter().any(|sig| key.verify_strict(&msg, sig).is_ok()))
        {
            return verified(key_id.clone());
        }
    }
    Err(VerifyError::Mismatch)
}

/// The signed timestamp, in unix seconds (for the doctor).
pub(super) fn timestamp(names: Names, headers: &http::HeaderMap) -> Option<u64> {
    parse_digits(first_of(headers, names.timestamp).ok()?).ok()
}

/// `whsec_<base64>` (or bare base64, padded or not) to the HMAC key bytes.
pub(super) fn decode_secret(secret: &Secret) -> Result<Secret, String> {
    let text = std::str::from_utf8(secret.expose()).unwrap_or_default();
    if text.starts_with("whpk_") {
        return Err("this is a v1a public key (whpk_); put it under public_keys".into());
    }
    let b64 = text.strip_prefix("whsec_").unwrap_or(text);
    let key = lenient_base64(b64)
        .ok_or("not a Standard Webhooks secret: expected whsec_ followed by base64")?;
    Ok(Secret::new(secret.id(), key))
}

/// `whpk_<base64 of 32 bytes>` (the prefix is optional) to an Ed25519 public key.
pub(super) fn decode_public_key(key: &Secret) -> Result<VerifyingKey, String> {
    let text = std::str::from_utf8(key.expose()).unwrap_or_default().trim();
    if text.starts_with("whsec_") {
        return Err("this is a v1 secret (whsec_); put it under secrets".into());
    }
    let b64 = text.strip_prefix("whpk_").unwrap_or(text);
    let bytes: [u8; 32] = lenient_base64(b64).and_then(|b| b.try_into().ok()).ok_or(
        "not a Standard Webhooks public key: expected whpk_ followed by base64 of 32 bytes",
    )?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| "not a valid Ed25519 public key".to_string())
}

pub(super) fn sign(
    names: Names,
    key: &SigningKey,
    input: &SignInput<'_>,
) -> Result<Vec<(String, String)>, SignError> {
    let ts = input.now.to_string();
    let parts: [&[u8]; 5] = [input.id.as_bytes(), b".", ts.as_bytes(), b".", input.body];
    let signature = match key {
        SigningKey::Secret(s) => {
            let key = decode_secret(&Secret::new("sign", s.clone())).map_err(SignError::Key)?;
            let mac = Algorithm::Sha256.sign(key.expose(), &parts);
            format!("v1,{}", Encoding::Base64.encode(&mac))
        }
        SigningKey::Ed25519(sk) => {
            use ed25519_dalek::Signer;
            let sig = sk.sign(&parts.concat());
            format!("v1a,{}", Encoding::Base64.encode(&sig.to_bytes()))
        }
        SigningKey::P256(_) => {
            return Err(SignError::WrongKey {
                scheme: names.scheme,
                wants: "a whsec_ secret (--secret) or a whsk_ key (--private-key-file)",
                got: key.kind(),
            })
        }
    };
    Ok(vec![
        (names.id[0].to_string(), input.id.to_string()),
        (names.timestamp[0].to_string(), ts),
        (names.signature[0].to_string(), signature),
    ])
}
