//! Linear: `Linear-Signature: <hex HMAC-SHA256(secret, body)>`, no prefix. Freshness comes from
//! the body: `webhookTimestamp`, unix **milliseconds**, which the MAC covers. The body is
//! parsed only after the MAC has matched, so unauthenticated JSON is never parsed.

use std::sync::LazyLock;

use serde::Deserialize;

use super::header::optional;
use super::hmac::{HmacSpec, Template};
use super::timestamp::Window;
use super::{
    Algorithm, Encoding, Input, Keys, SignError, SignInput, Signed, Verified, VerifyError,
};

const HEADER: &str = "linear-signature";
const DELIVERY: &str = "linear-delivery";

/// The MAC part: bare lowercase hex of HMAC-SHA256 over the body.
static SPEC: LazyLock<HmacSpec> = LazyLock::new(|| HmacSpec {
    header: HEADER.to_string(),
    fallback_header: None,
    prefix: String::new(),
    encoding: Encoding::Hex,
    algorithm: Algorithm::Sha256,
    signed: Template::body(),
    timestamp_header: None,
});

/// The fields Linear's own verifier reads from the body.
#[derive(Deserialize)]
struct Body {
    #[serde(rename = "webhookTimestamp")]
    timestamp: Option<serde_json::Value>,
    #[serde(rename = "webhookId")]
    id: Option<serde_json::Value>,
}

pub(super) fn verify(
    input: &Input<'_>,
    keys: &Keys,
    window: Window,
) -> Result<Verified, VerifyError> {
    let key_id = SPEC.verify(input, &keys.secrets, window)?;
    let body: Body =
        serde_json::from_slice(input.body).map_err(|_| VerifyError::MalformedHeader)?;
    let ts_ms = body
        .timestamp
        .ok_or(VerifyError::MissingHeader)?
        .as_u64()
        .ok_or(VerifyError::MalformedHeader)?;
    window.check_ms(ts_ms, input.now.saturating_mul(1000))?;
    let id = optional(input.headers, &[DELIVERY])
        .map(str::to_owned)
        .or_else(|| body.id.and_then(|v| v.as_str().map(str::to_owned)));
    Ok(Verified::new(key_id, id))
}

/// `webhookTimestamp`, in unix milliseconds (for the doctor).
pub(super) fn timestamp_ms(body: &[u8]) -> Option<u64> {
    let body: Body = serde_json::from_slice(body).ok()?;
    body.timestamp?.as_u64()
}

/// Sets `webhookTimestamp` to now (the body must be a JSON object), then signs.
pub(super) fn sign(secret: &[u8], input: &SignInput<'_>) -> Result<Signed, SignError> {
    let mut event: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(input.body)
        .map_err(|_| {
            SignError::Body(
                "scheme linear needs a JSON object body (it carries webhookTimestamp)".into(),
            )
        })?;
    event.insert(
        "webhookTimestamp".into(),
        input.now.saturating_mul(1000).into(),
    );
    let body = serde_json::to_vec(&event).map_err(|e| SignError::Body(e.to_string()))?;
    let mac = Algorithm::Sha256.sign(secret, &[&body]);
    Ok(Signed {
        headers: vec![
            (HEADER.to_string(), Encoding::Hex.encode(&mac)),
            (DELIVERY.to_string(), input.id.to_string()),
        ],
        body,
    })
}
