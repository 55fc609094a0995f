//! Slack and Zoom: the same `v0` construction under different header names.
//! `<signature header>: v0=<hex HMAC-SHA256(secret, "v0:" + timestamp + ":" + body)>`, with the
//! unix timestamp in its own header.
//!
//! Zoom also checks that an endpoint is really the app's by sending a signed
//! `endpoint.url_validation` event; hookgate answers it itself (a backend behind the gateway
//! need not know the secret): `{"plainToken": .., "encryptedToken": hex(HMAC(secret,
//! plainToken))}` with the secret that verified the request.

use super::body_field;
use super::encoding::Encoding;
use super::header::single;
use super::hmac::Algorithm;
use super::timestamp::{parse_digits, Window};
use super::{Input, Keys, SignInput, Verified, VerifyError};

/// One `v0` flavour.
pub(super) struct V0 {
    signature: &'static str,
    timestamp: &'static str,
    /// Top-level body fields holding the sender's event id.
    delivery_fields: &'static [&'static str],
    /// Whether `endpoint.url_validation` is answered (Zoom).
    answers_validation: bool,
}

pub(super) const SLACK: V0 = V0 {
    signature: "x-slack-signature",
    timestamp: "x-slack-request-timestamp",
    delivery_fields: &["event_id"],
    answers_validation: false,
};

pub(super) const ZOOM: V0 = V0 {
    signature: "x-zm-signature",
    timestamp: "x-zm-request-timestamp",
    delivery_fields: &[],
    answers_validation: true,
};

impl V0 {
    pub(super) fn verify(
        &self,
        input: &Input<'_>,
        keys: &Keys,
        window: Window,
    ) -> Result<Verified, VerifyError> {
        let sig = single(input.headers, self.signature)?;
        let ts_text = single(input.headers, self.timestamp)?;
        let sig = sig
            .strip_prefix("v0=")
            .and_then(|h| Encoding::Hex.decode(h))
            .filter(|s| s.len() == 32)
            .ok_or(VerifyError::MalformedHeader)?;
        let ts = parse_digits(ts_text)?;
        window.check_secs(ts, input.now)?;
        let parts: [&[u8]; 4] = [b"v0:", ts_text.as_bytes(), b":", input.body];
        let secret = keys
            .secrets
            .iter()
            .find(|k| Algorithm::Sha256.verify(k.expose(), &parts, &sig))
            .ok_or(VerifyError::Mismatch)?;
        let mut verified = Verified::new(
            secret.id().into(),
            body_field(input.body, self.delivery_fields),
        );
        if self.answers_validation {
            verified.challenge = url_validation(input.body, secret.expose());
        }
        Ok(verified)
    }

    /// The signed timestamp, in unix seconds (for the doctor).
    pub(super) fn timestamp(&self, headers: &http::HeaderMap) -> Option<u64> {
        parse_digits(single(headers, self.timestamp).ok()?).ok()
    }

    pub(super) fn sign(&self, secret: &[u8], input: &SignInput<'_>) -> Vec<(String, String)> {
        let ts = input.now.to_string();
        let mac = Algorithm::Sha256.sign(secret, &[b"v0:", ts.as_bytes(), b":", input.body]);
        vec![
            (self.timestamp.to_string(), ts),
            (
                self.signature.to_string(),
                format!("v0={}", Encoding::Hex.encode(&mac)),
            ),
        ]
    }
}

/// The fields of a Zoom event that URL validation needs; the rest is skipped, not built.
#[derive(serde::Deserialize)]
struct Event {
    event: Option<String>,
    payload: Option<Payload>,
}

#[derive(serde::Deserialize)]
struct Payload {
    #[serde(rename = "plainToken")]
    plain_token: Option<String>,
}

/// Zoom's answer to a verified `endpoint.url_validation` event, or `None` for other events.
fn url_validation(body: &[u8], secret: &[u8]) -> Option<String> {
    let event: Event = serde_json::from_slice(body).ok()?;
    if event.event.as_deref() != Some("endpoint.url_validation") {
        return None;
    }
    let plain = event.payload?.plain_token?;
    let encrypted = Encoding::Hex.encode(&Algorithm::Sha256.sign(secret, &[plain.as_bytes()]));
    Some(serde_json::json!({"plainToken": plain, "encryptedToken": encrypted}).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_url_validation_is_answered() {
        let answer = url_validation(
            br#"{"event":"endpoint.url_validation","payload":{"plainToken":"abc"}}"#,
            b"s",
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(v["plainToken"], "abc");
        assert_eq!(v["encryptedToken"].as_str().unwrap().len(), 64);
        assert_eq!(
            url_validation(br#"{"event":"meeting.ended","payload":{}}"#, b"s"),
            None
        );
        assert_eq!(
            url_validation(br#"{"event":"endpoint.url_validation"}"#, b"s"),
            None
        );
        assert_eq!(url_validation(b"not json", b"s"), None);
    }
}
