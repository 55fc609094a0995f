//! Mailgun: the signature is **inside the body**, as
//! `{"signature": {"timestamp", "token", "signature"}, "event-data": {..}}` (JSON webhooks) or
//! as the form fields `timestamp`, `token`, `signature` (legacy webhooks).
//! `signature = hex(HMAC-SHA256(signing key, timestamp + token))`.
//!
//! Only the timestamp and token are signed: **the event data is not authenticated**, so a
//! captured request can be altered. The token is reported as the delivery id, so that
//! deduplication on it stops replays, and the timestamp is held to the route's window.
//! Subaccount events also carry `parent-signature`, the same MAC under the primary account's
//! key; either may match.

use std::borrow::Cow;

use serde::Deserialize;

use super::encoding::Encoding;
use super::hmac::Algorithm;
use super::timestamp::{parse_digits, Window};
use super::{first_match, Input, Keys, SignError, SignInput, Signed, Verified, VerifyError};

/// The signed fields, wherever the body carries them.
struct Fields<'a> {
    timestamp: Cow<'a, str>,
    token: Cow<'a, str>,
    signatures: Vec<Cow<'a, str>>,
}

pub(super) fn verify(
    input: &Input<'_>,
    keys: &Keys,
    window: Window,
) -> Result<Verified, VerifyError> {
    let fields = if is_json(input.body) {
        json_fields(input.body)?
    } else {
        form_fields(input.body)?
    };
    let ts = parse_digits(&fields.timestamp)?;
    let sigs = fields
        .signatures
        .iter()
        .map(|s| {
            Encoding::Hex
                .decode(s)
                .filter(|s| s.len() == 32)
                .ok_or(VerifyError::MalformedHeader)
        })
        .collect::<Result<Vec<_>, _>>()?;
    window.check_secs(ts, input.now)?;
    let parts: [&[u8]; 2] = [fields.timestamp.as_bytes(), fields.token.as_bytes()];
    let key_id = first_match(&keys.secrets, |k| {
        Algorithm::Sha256.verify_any(k, &parts, &sigs)
    })?;
    Ok(Verified::new(key_id, Some(fields.token)))
}

/// The signed timestamp, in unix seconds, wherever the body carries it (for the doctor).
pub(super) fn timestamp(body: &[u8]) -> Option<u64> {
    let fields = if is_json(body) {
        json_fields(body).ok()?
    } else {
        form_fields(body).ok()?
    };
    parse_digits(&fields.timestamp).ok()
}

fn is_json(body: &[u8]) -> bool {
    body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

#[derive(Deserialize)]
struct Envelope {
    signature: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Signature {
    timestamp: serde_json::Value,
    token: String,
    signature: String,
    #[serde(rename = "parent-signature")]
    parent_signature: Option<String>,
}

fn json_fields(body: &[u8]) -> Result<Fields<'static>, VerifyError> {
    let envelope: Envelope =
        serde_json::from_slice(body).map_err(|_| VerifyError::MalformedHeader)?;
    let sig: Signature =
        serde_json::from_value(envelope.signature.ok_or(VerifyError::MissingHeader)?)
            .map_err(|_| VerifyError::MalformedHeader)?;
    let timestamp = match sig.timestamp {
        serde_json::Value::String(s) => s,
        serde_json::Value::Number(n) if n.is_u64() => n.to_string(),
        _ => return Err(VerifyError::MalformedHeader),
    };
    let mut signatures = vec![Cow::Owned(sig.signature)];
    signatures.extend(sig.parent_signature.map(Cow::Owned));
    Ok(Fields {
        timestamp: Cow::Owned(timestamp),
        token: Cow::Owned(sig.token),
        signatures,
    })
}

fn form_fields(body: &[u8]) -> Result<Fields<'_>, VerifyError> {
    let (mut timestamp, mut token, mut signature) = (None, None, None);
    for (k, v) in form_urlencoded::parse(body) {
        let slot = match &*k {
            "timestamp" => &mut timestamp,
            "token" => &mut token,
            "signature" => &mut signature,
            _ => continue,
        };
        if slot.replace(v).is_some() {
            return Err(VerifyError::MalformedHeader);
        }
    }
    match (timestamp, token, signature) {
        (Some(timestamp), Some(token), Some(signature)) => Ok(Fields {
            timestamp,
            token,
            signatures: vec![signature],
        }),
        (None, None, None) => Err(VerifyError::MissingHeader),
        _ => Err(VerifyError::MalformedHeader),
    }
}

/// Puts the signature fields into the body: a `signature` object for a JSON object body,
/// form fields appended otherwise. The token is the delivery id.
pub(super) fn sign(secret: &[u8], input: &SignInput<'_>) -> Result<Signed, SignError> {
    let timestamp = input.now.to_string();
    let token = input.id;
    let mac = Encoding::Hex
        .encode(&Algorithm::Sha256.sign(secret, &[timestamp.as_bytes(), token.as_bytes()]));
    let body = if is_json(input.body) {
        let mut event: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(input.body)
                .map_err(|_| SignError::Body("the body is not a JSON object".into()))?;
        event.insert(
            "signature".into(),
            serde_json::json!({"timestamp": timestamp, "token": token, "signature": mac}),
        );
        serde_json::to_vec(&event).map_err(|e| SignError::Body(e.to_string()))?
    } else {
        let mut body = input.body.to_vec();
        if !body.is_empty() {
            body.push(b'&');
        }
        let fields: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("timestamp", &timestamp)
            .append_pair("token", token)
            .append_pair("signature", &mac)
            .finish();
        body.extend_from_slice(fields.as_bytes());
        body
    };
    Ok(Signed {
        headers: Vec::new(),
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_missing_partial_and_repeated() {
        assert!(matches!(
            form_fields(b"event=delivered"),
            Err(VerifyError::MissingHeader)
        ));
        assert!(matches!(
            form_fields(b"timestamp=1&token=t"),
            Err(VerifyError::MalformedHeader)
        ));
        assert!(matches!(
            form_fields(b"timestamp=1&token=t&signature=s&token=u"),
            Err(VerifyError::MalformedHeader)
        ));
    }

    #[test]
    fn json_fields_shapes() {
        assert!(matches!(
            json_fields(br#"{"event-data":{}}"#),
            Err(VerifyError::MissingHeader)
        ));
        assert!(matches!(
            json_fields(br#"{"signature":{"token":"t"}}"#),
            Err(VerifyError::MalformedHeader)
        ));
        assert!(matches!(
            json_fields(br#"{"signature":{"timestamp":1.5,"token":"t","signature":"s"}}"#),
            Err(VerifyError::MalformedHeader)
        ));
        assert!(matches!(
            json_fields(br#"{"signature":"#),
            Err(VerifyError::MalformedHeader)
        ));
        let f = json_fields(br#"{"signature":{"timestamp":17,"token":"t","signature":"s"}}"#)
            .ok()
            .unwrap();
        assert_eq!(f.timestamp, "17");
    }
}
