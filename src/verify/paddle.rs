//! Paddle Billing: `Paddle-Signature: ts=<unix>;h1=<hex>[;h1=<hex>..]`, HMAC-SHA256 over
//! `ts + ":" + body` keyed with the whole `pdl_ntfset_..` secret.
//!
//! Every `h1` is tried (Paddle's node SDK keeps only the last one and so fails rotations) and
//! unknown keys are ignored (its Python SDK raises on them). Paddle's SDKs allow only 5 s of
//! skew; hookgate uses the route's `verify.tolerance`, because retries keep the original `ts`.

use super::encoding::Encoding;
use super::header::single;
use super::hmac::Algorithm;
use super::timestamp::{parse_digits, Window};
use super::{body_field, first_match, Input, Keys, SignInput, Verified, VerifyError};

const HEADER: &str = "paddle-signature";

pub(super) fn verify(
    input: &Input<'_>,
    keys: &Keys,
    window: Window,
) -> Result<Verified, VerifyError> {
    let value = single(input.headers, HEADER)?;
    let mut ts = None;
    let mut h1 = Vec::new();
    for item in value.split(';') {
        let (k, v) = item.split_once('=').ok_or(VerifyError::MalformedHeader)?;
        match k {
            "ts" if ts.is_some() => return Err(VerifyError::MalformedHeader),
            "ts" => ts = Some(v),
            "h1" => h1.push(
                Encoding::Hex
                    .decode(v)
                    .filter(|s| s.len() == 32)
                    .ok_or(VerifyError::MalformedHeader)?,
            ),
            _ => {}
        }
    }
    let ts_text = ts.ok_or(VerifyError::MalformedHeader)?;
    let ts = parse_digits(ts_text)?;
    if h1.is_empty() {
        return Err(VerifyError::MalformedHeader);
    }
    window.check_secs(ts, input.now)?;
    let parts: [&[u8]; 3] = [ts_text.as_bytes(), b":", input.body];
    let key_id = first_match(&keys.secrets, |k| {
        Algorithm::Sha256.verify_any(k, &parts, &h1)
    })?;
    let id = body_field(input.body, &["notification_id", "event_id"]);
    Ok(Verified::new(key_id, id))
}

pub(super) fn sign(secret: &[u8], input: &SignInput<'_>) -> Vec<(String, String)> {
    let ts = input.now.to_string();
    let mac = Algorithm::Sha256.sign(secret, &[ts.as_bytes(), b":", input.body]);
    vec![(
        HEADER.to_string(),
        format!("ts={ts};h1={}", Encoding::Hex.encode(&mac)),
    )]
}
