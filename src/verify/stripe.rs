//! Stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>..][,v0=..]`, HMAC-SHA256 over
//! `t + "." + body`, keyed with the whole `whsec_..` string as given (not base64-decoded).
//!
//! Parsing follows the official libraries: items split on `,`, keys compared exactly (so
//! `t=.., v1=..` with a space has no `v1`), unknown keys such as the test-mode `v0` ignored.
//! Every `v1` is tried: Stripe sends one per active secret while a secret is rolled.

use super::encoding::Encoding;
use super::header::{single, timestamped_signatures};
use super::hmac::Algorithm;
use super::timestamp::Window;
use super::{body_field, first_match, Input, Keys, SignInput, Verified, VerifyError};

const HEADER: &str = "stripe-signature";

pub(super) fn verify(
    input: &Input<'_>,
    keys: &Keys,
    window: Window,
) -> Result<Verified, VerifyError> {
    let value = single(input.headers, HEADER)?;
    let parsed = timestamped_signatures(value, ',', "t", "v1", true)?;
    window.check_secs(parsed.ts, input.now)?;
    let parts: [&[u8]; 3] = [parsed.ts_text.as_bytes(), b".", input.body];
    let key_id = first_match(&keys.secrets, |k| {
        Algorithm::Sha256.verify_any(k, &parts, &parsed.signatures)
    })?;
    Ok(Verified::new(key_id, body_field(input.body, &["id"])))
}

pub(super) fn sign(secret: &[u8], input: &SignInput<'_>) -> Vec<(String, String)> {
    let t = input.now.to_string();
    let mac = Algorithm::Sha256.sign(secret, &[t.as_bytes(), b".", input.body]);
    vec![(
        HEADER.to_string(),
        format!("t={t},v1={}", Encoding::Hex.encode(&mac)),
    )]
}
