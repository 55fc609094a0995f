//! The signature header written the way the scheme defines it: hex that is uppercase, base64
//! where hex is expected (or the other way), unpadded or URL-safe base64, a missing or extra
//! prefix, spaces after list separators. One rewritten header, or none when the received one is
//! already in the scheme's form or holds nothing that decodes to a signature.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;

use crate::verify::{Encoding, Layout, SignatureFormat};

/// The header value in the scheme's own form, and what was different, in words.
pub fn canonical(format: &SignatureFormat, value: &str) -> Option<(String, String)> {
    let mut notes: Vec<String> = Vec::new();
    let rebuilt = match &format.layout {
        Layout::Whole { prefix } => {
            let (token, note) = strip_prefix(value, prefix);
            notes.extend(note);
            let (sig, note) = decode(token, format)?;
            notes.extend(note);
            format!("{prefix}{}", format.encoding.encode(&sig))
        }
        Layout::List { sep, key, kv } => {
            let mut items = Vec::new();
            let mut found = false;
            for raw in value.split(*sep) {
                let item = raw.trim();
                if item.is_empty() {
                    continue;
                }
                if item != raw && !notes.iter().any(|n| n.starts_with("spaces")) {
                    notes.push("spaces around the list separators".into());
                }
                match item.split_once(*kv) {
                    Some((k, v)) if k == *key => {
                        let Some((sig, note)) = decode(v, format) else {
                            items.push(item.to_string());
                            continue;
                        };
                        found = true;
                        notes.extend(note);
                        items.push(format!("{key}{kv}{}", format.encoding.encode(&sig)));
                    }
                    Some(_) => items.push(item.to_string()),
                    // A bare signature without its `v1,` / `v1=` marker.
                    None => match decode(item, format) {
                        Some((sig, note)) => {
                            found = true;
                            notes.push(format!("without the `{key}{kv}` marker"));
                            notes.extend(note);
                            items.push(format!("{key}{kv}{}", format.encoding.encode(&sig)));
                        }
                        None => items.push(item.to_string()),
                    },
                }
            }
            if !found {
                return None;
            }
            items.join(&sep.to_string())
        }
    };
    (rebuilt != value && !notes.is_empty()).then(|| (rebuilt, notes.join(", ")))
}

/// The encoded signature without the prefix, and a note when the prefix was not as defined.
fn strip_prefix<'a>(value: &'a str, prefix: &str) -> (&'a str, Option<String>) {
    if let Some(rest) = value.strip_prefix(prefix).filter(|_| !prefix.is_empty()) {
        return (rest, None);
    }
    if let Some(head) = value.get(..prefix.len()) {
        if !prefix.is_empty() && head.eq_ignore_ascii_case(prefix) {
            return (
                &value[prefix.len()..],
                Some(format!("`{head}` for `{prefix}`")),
            );
        }
    }
    // Another `name=` prefix (`sha1=`, `sha256=` where none is defined).
    if let Some((head, rest)) = value.split_once('=') {
        let looks_like_prefix = !head.is_empty()
            && head.len() <= 10
            && head.bytes().all(|b| b.is_ascii_alphanumeric())
            && !rest.is_empty();
        if looks_like_prefix {
            let want = if prefix.is_empty() {
                "no prefix".to_string()
            } else {
                format!("`{prefix}`")
            };
            return (rest, Some(format!("prefix `{head}=` instead of {want}")));
        }
    }
    if prefix.is_empty() {
        (value, None)
    } else {
        (value, Some(format!("without its `{prefix}` prefix")))
    }
}

/// `token` decoded in whichever encoding gives a signature of the scheme's length, with a note
/// when that is not the scheme's own encoding.
fn decode(token: &str, format: &SignatureFormat) -> Option<(Vec<u8>, Option<String>)> {
    let len = format.len;
    if token.len() == 2 * len && token.bytes().all(|b| b.is_ascii_hexdigit()) {
        let sig = hex::decode(token.to_ascii_lowercase()).ok()?;
        let note = match format.encoding {
            Encoding::Hex if token.bytes().any(|b| b.is_ascii_uppercase()) => {
                Some("uppercase hex".to_string())
            }
            Encoding::Hex => None,
            Encoding::Base64 => Some("hex where base64 is defined".to_string()),
        };
        return Some((sig, note));
    }
    let engines = [
        (&STANDARD, "base64"),
        (&STANDARD_NO_PAD, "unpadded base64"),
        (&URL_SAFE, "URL-safe base64"),
        (&URL_SAFE_NO_PAD, "unpadded URL-safe base64"),
    ];
    for (engine, name) in engines {
        if let Some(sig) = engine.decode(token).ok().filter(|s| s.len() == len) {
            let note = match (format.encoding, name) {
                (Encoding::Base64, "base64") => None,
                (Encoding::Base64, other) => Some(other.to_string()),
                (Encoding::Hex, other) => Some(format!("{other} where hex is defined")),
            };
            return Some((sig, note));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::Scheme;

    const HEX: &str = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    fn fmt(scheme: Scheme) -> SignatureFormat {
        scheme.signature_format().unwrap()
    }

    fn b64() -> String {
        STANDARD.encode(hex::decode(HEX).unwrap())
    }

    #[test]
    fn whole_values() {
        let gh = fmt(Scheme::GitHub);
        let want = format!("sha256={HEX}");
        let fixed = |v: &str| canonical(&gh, v).map(|(v, _)| v);
        assert_eq!(fixed(&want), None, "already right");
        assert_eq!(fixed(HEX).as_deref(), Some(&*want));
        assert_eq!(fixed(&HEX.to_uppercase()).as_deref(), Some(&*want));
        assert_eq!(fixed(&format!("SHA256={HEX}")).as_deref(), Some(&*want));
        assert_eq!(fixed(&format!("sha256={}", b64())).as_deref(), Some(&*want));
        assert_eq!(fixed("sha256=abc"), None, "nothing decodes");
        let (_, note) = canonical(&gh, &HEX.to_uppercase()).unwrap();
        assert!(
            note.contains("without its `sha256=` prefix") && note.contains("uppercase hex"),
            "{note}"
        );

        let shopify = fmt(Scheme::Shopify);
        assert_eq!(canonical(&shopify, &b64()), None);
        let url_safe = b64().replace('+', "-").replace('/', "_").replace('=', "");
        assert_eq!(canonical(&shopify, &url_safe).map(|v| v.0), Some(b64()));
        assert_eq!(canonical(&shopify, HEX).map(|v| v.0), Some(b64()));
        assert_eq!(
            canonical(&shopify, &format!("sha256={}", b64())).map(|v| v.0),
            Some(b64())
        );
    }

    #[test]
    fn lists() {
        let stripe = fmt(Scheme::Stripe);
        let want = format!("t=17,v1={HEX}");
        assert_eq!(canonical(&stripe, &want), None);
        let fixed = canonical(&stripe, &format!("t=17, v1={}", HEX.to_uppercase())).unwrap();
        assert_eq!(fixed.0, want);
        assert!(fixed.1.contains("spaces"), "{}", fixed.1);
        assert_eq!(canonical(&stripe, "t=17,v1=zz"), None);

        let sw = fmt(Scheme::StandardWebhooks);
        let want = format!("v1,{}", b64());
        assert_eq!(canonical(&sw, &want), None);
        assert_eq!(canonical(&sw, &b64()).map(|v| v.0).as_deref(), Some(&*want));
        assert_eq!(
            canonical(&sw, &format!("v1,{HEX}")).map(|v| v.0).as_deref(),
            Some(&*want)
        );
    }
}
