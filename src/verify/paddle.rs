//! Paddle Billing: `Paddle-Signature: ts=<unix>;h1=<hex>[;h1=<hex>..]`, HMAC-SHA256 over
//! `ts + ":" + body` keyed with the whole `pdl_ntfset_..` secret.
//!
//! Every `h1` is tried (Paddle's node SDK keeps only the last one and so fails rotations) and
//! unknown keys are ignored (its Python SDK raises on them). Paddle's SDKs allow only 5 s of
//! skew; hookgate uses the route's `verify.tolerance`, because retries keep the original `ts`.

use super::encoding::Encoding;
use super::header::{single, timestamped_signatures};
use super::hmac::Algorithm;
use super::timestamp::Window;
use super::{body_field, first_match, Input, Keys, SignInput, Verified, VerifyError};

const HEADER: &str = "paddle-signature";

pub(super) fn verify(
    input: &Input<'_>,
    keys: &Keys,
    window: Window,
) -> Result<Verified, VerifyError> {
    let value = single(input.headers, HEADER)?;
    let parsed = timestamped_signatures(value, ';', "ts", "h1", false)?;
    window.check_secs(parsed.ts, input.now)?;
    let parts: [&[u8]; 3] = [parsed.ts_text.as_bytes(), b":", input.body];
    let key_id = first_match(&keys.secrets, |k| {
        Algorithm::Sha256.verify_any(k, &parts, &parsed.signatures)
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
