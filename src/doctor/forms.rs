//! The other forms a secret is commonly used in by mistake: a `whsec_` string taken as text or
//! base64-decoded, with or without its prefix, or a hex or base64 text decoded.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::secret::Secret;
use crate::verify::Scheme;

/// At most this many other forms per secret.
pub const PER_SECRET: usize = 2;

/// The other forms of `secret` (as the scheme MACs with it), each with words for a person.
pub fn of(scheme: &Scheme, secret: &Secret) -> Vec<(Vec<u8>, &'static str)> {
    let key = secret.expose();
    let mut out: Vec<(Vec<u8>, &'static str)> = Vec::new();
    if scheme.decodes_secrets() {
        // The key is base64-decode(text after whsec_): the sender MACed with the text instead.
        let text = STANDARD.encode(key);
        out.push((
            format!("whsec_{text}").into_bytes(),
            "the whole whsec_ string as text, without base64-decoding it",
        ));
        out.push((
            text.into_bytes(),
            "the base64 text after whsec_, without decoding it",
        ));
    } else if let Some(rest) = key.strip_prefix(b"whsec_") {
        out.push((rest.to_vec(), "without its whsec_ prefix"));
        if let Some(decoded) = lenient_base64(rest) {
            out.push((
                decoded,
                "base64-decoded after whsec_, as Standard Webhooks secrets are",
            ));
        }
    } else {
        let hex_text = key.len().is_multiple_of(2) && key.iter().all(u8::is_ascii_hexdigit);
        if hex_text {
            if let Ok(decoded) = hex::decode(key) {
                out.push((decoded, "hex-decoded"));
            }
        }
        if let Some(decoded) = lenient_base64(key) {
            out.push((decoded, "base64-decoded"));
        }
    }
    out.retain(|(form, _)| !form.is_empty() && form != key);
    out.truncate(PER_SECRET);
    out
}

/// Standard base64, padded or not.
fn lenient_base64(text: &[u8]) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::STANDARD_NO_PAD;
    let trimmed = text.strip_suffix(b"==").or_else(|| text.strip_suffix(b"="));
    STANDARD_NO_PAD.decode(trimmed.unwrap_or(text)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forms(scheme: Scheme, key: &[u8]) -> Vec<Vec<u8>> {
        of(&scheme, &Secret::new("k", key.to_vec()))
            .into_iter()
            .map(|(f, _)| f)
            .collect()
    }

    #[test]
    fn standard_webhooks_keys_as_text() {
        // Keys hold the decoded bytes; the forms are the texts the operator pasted.
        let got = forms(Scheme::StandardWebhooks, b"@ABCDEFGHIJKLMNOPQRSTUVW");
        assert_eq!(
            got,
            [
                b"whsec_QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZX".to_vec(),
                b"QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZX".to_vec()
            ]
        );
    }

    #[test]
    fn text_secrets_decoded() {
        let got = forms(Scheme::Stripe, b"whsec_QUJD");
        assert_eq!(got, [b"QUJD".to_vec(), b"ABC".to_vec()]);
        let got = forms(Scheme::GitHub, b"00ff");
        assert_eq!(got, [vec![0x00, 0xff], vec![211, 71, 223]]);
        assert_eq!(forms(Scheme::GitHub, b"It's a Secret").len(), 0);
    }
}
