//! Reading the headers a scheme needs, the same way for every scheme.
//!
//! Header names are case-insensitive (`HeaderMap` stores them lowercased). A repeated signature
//! header is ambiguous (proxies join copies differently), so it is refused as malformed rather
//! than guessed at; an empty value is malformed too, since the sender did send the header.

use http::HeaderMap;

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
