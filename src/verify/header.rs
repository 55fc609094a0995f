//! Reading the headers a scheme needs, the same way for every scheme.
//!
//! Header names are case-insensitive (`HeaderMap` stores them lowercased). A repeated signature
//! header is ambiguous (proxies join copies differently), so it is refused as malformed rather
//! than guessed at; an empty value is malformed too, since the sender did send the header.

use http::HeaderMap;

use super::encoding::Encoding;
use super::timestamp::parse_digits;
use super::VerifyError;

/// The one value of header `name` (lowercase).
pub(crate) fn single<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, VerifyError> {
    let mut values = headers.get_all(name).iter();
    let first = values.next().ok_or(VerifyError::MissingHeader)?;
    if values.next().is_some() {
        return Err(VerifyError::MalformedHeader);
    }
    let s = first.to_str().map_err(|_| VerifyError::MalformedHeader)?;
    if s.is_empty() {
        return Err(VerifyError::MalformedHeader);
    }
    Ok(s)
}

/// The first of `names` that is present, read like [`single`]: for senders that renamed a
/// header (Shopify Events, Svix's `svix-*` over `webhook-*`).
pub(crate) fn first_of<'a>(headers: &'a HeaderMap, names: &[&str]) -> Result<&'a str, VerifyError> {
    let name = names
        .iter()
        .find(|n| headers.contains_key(**n))
        .ok_or(VerifyError::MissingHeader)?;
    single(headers, name)
}

/// A header that only informs (a delivery id): its value when there is exactly one, readable
/// and non-empty; otherwise nothing, never an error.
pub(crate) fn optional<'a>(headers: &'a HeaderMap, names: &[&str]) -> Option<&'a str> {
    names.iter().find_map(|n| single(headers, n).ok())
}

/// A `key=value` list holding one timestamp and one or more HMAC-SHA256 signatures, as Stripe
/// (`t=..,v1=..`) and Paddle (`ts=..;h1=..`) send it.
pub(crate) struct TimestampedSignatures<'a> {
    /// The timestamp as sent: it is part of the signed message.
    pub ts_text: &'a str,
    pub ts: u64,
    /// Every signature under the signature key, decoded (32 bytes each).
    pub signatures: Vec<Vec<u8>>,
}

/// Parses `value`, split on `sep`. Keys are compared exactly and unknown keys are skipped; a
/// second timestamp, a signature that is not 64 lowercase hex digits, no timestamp or no
/// signature is malformed. An item without `=` is skipped when `lenient` (Stripe's libraries do
/// so), malformed otherwise.
pub(crate) fn timestamped_signatures<'a>(
    value: &'a str,
    sep: char,
    ts_key: &str,
    sig_key: &str,
    lenient: bool,
) -> Result<TimestampedSignatures<'a>, VerifyError> {
    let mut ts = None;
    let mut signatures = Vec::new();
    for item in value.split(sep) {
        let Some((k, v)) = item.split_once('=') else {
            if lenient {
                continue;
            }
            return Err(VerifyError::MalformedHeader);
        };
        if k == ts_key {
            if ts.is_some() {
                return Err(VerifyError::MalformedHeader);
            }
            ts = Some(v);
        } else if k == sig_key {
            signatures.push(
                Encoding::Hex
                    .decode(v)
                    .filter(|s| s.len() == 32)
                    .ok_or(VerifyError::MalformedHeader)?,
            );
        }
    }
    let ts_text = ts.ok_or(VerifyError::MalformedHeader)?;
    let ts = parse_digits(ts_text)?;
    if signatures.is_empty() {
        return Err(VerifyError::MalformedHeader);
    }
    Ok(TimestampedSignatures {
        ts_text,
        ts,
        signatures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn single_value_rules() {
        let h = map(&[("x-a", "1"), ("x-b", "1"), ("x-b", "2"), ("x-e", "")]);
        assert_eq!(single(&h, "x-a"), Ok("1"));
        assert_eq!(single(&h, "x-b"), Err(VerifyError::MalformedHeader));
        assert_eq!(single(&h, "x-e"), Err(VerifyError::MalformedHeader));
        assert_eq!(single(&h, "x-none"), Err(VerifyError::MissingHeader));
    }

    #[test]
    fn fallback_names() {
        let h = map(&[("b", "2")]);
        assert_eq!(first_of(&h, &["a", "b"]), Ok("2"));
        assert_eq!(first_of(&h, &["c"]), Err(VerifyError::MissingHeader));
        assert_eq!(optional(&h, &["a", "b"]), Some("2"));
        assert_eq!(optional(&h, &["a"]), None);
    }
}
