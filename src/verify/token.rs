//! GitLab: `X-Gitlab-Token: <secret token>`, the configured token sent in plain text.
//!
//! Nothing is signed: the token proves the sender knows it, but **the body is not
//! authenticated** and there is no timestamp, so a captured request can be altered and replayed.
//! The comparison is over SHA-256 digests of both sides, in constant time, so neither the
//! token's bytes nor its length leak through timing.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::header::{optional, single};
use super::{first_match, Input, Keys, SignInput, Verified, VerifyError};

const HEADER: &str = "x-gitlab-token";
/// `Idempotency-Key` stays the same across retries; older GitLab sends only the event UUID.
const DELIVERY: &[&str] = &["idempotency-key", "x-gitlab-event-uuid"];

pub(super) fn verify(input: &Input<'_>, keys: &Keys) -> Result<Verified, VerifyError> {
    let token = Sha256::digest(single(input.headers, HEADER)?.as_bytes());
    let key_id = first_match(&keys.secrets, |k| Sha256::digest(k).ct_eq(&token).into())?;
    Ok(Verified::new(key_id, optional(input.headers, DELIVERY)))
}

pub(super) fn sign(secret: &[u8], input: &SignInput<'_>) -> Vec<(String, String)> {
    vec![
        (
            HEADER.to_string(),
            String::from_utf8_lossy(secret).into_owned(),
        ),
        (DELIVERY[0].to_string(), input.id.to_string()),
    ]
}
