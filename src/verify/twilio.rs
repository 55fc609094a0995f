//! Twilio: `X-Twilio-Signature: base64(HMAC-SHA1(auth token, url + params))`.
//!
//! `url` is the full URL Twilio requested, query included. Behind a proxy that is not the URL
//! hookgate sees, so each route names it in `verify.public_url` and the gateway rebuilds it with
//! [`sender_url`]. `params` is, for a form POST, every parameter name in sorted order, each
//! followed by each of its distinct values in sorted order (URL-decoded). When the URL's query
//! has `bodySHA256` (JSON bodies), nothing is appended and the body must hash to that value.
//! As Twilio's own validators do, the URL is also tried with the default port added or removed.
//!
//! The newer SharedKey mode (`X-Twilio-Webhooks-Signature-Settings: key=..,algorithm=
//! HMAC_SHA256`) is the same string under HMAC-SHA256. Twilio sends no timestamp: its delivery
//! id `I-Twilio-Idempotency-Token` is the replay guard.

use std::borrow::Cow;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::encoding::Encoding;
use super::header::{optional, single};
use super::hmac::Algorithm;
use super::{first_match, Input, Keys, SignError, SignInput, Verified, VerifyError};

const SIGNATURE: &str = "x-twilio-signature";
const SETTINGS: &str = "x-twilio-webhooks-signature-settings";
const DELIVERY: &str = "i-twilio-idempotency-token";
const BODY_HASH: &str = "bodySHA256";

/// The URL a sender called, as hookgate reconstructs it: `public_url`, then for a `/*` route
/// the rest of the request path after the route's prefix (joined by one `/`), then, when the
/// request line has a query, `?` and the query exactly as received (not decoded or re-encoded).
pub fn sender_url(public_url: &str, rest: &str, query: Option<&str>) -> String {
    let mut url = public_url.to_string();
    if !rest.is_empty() {
        if !url.ends_with('/') {
            url.push('/');
        }
        url.push_str(rest);
    }
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    url
}

/// For a JSON body, the URL with `bodySHA256=<hex sha256(body)>` added to its query, as Twilio
/// sends it; a form body (or a URL that already has it) leaves the URL as it is.
pub fn add_body_hash(url: &str, body: &[u8]) -> String {
    let is_json = matches!(
        body.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'{' | b'[')
    );
    if !is_json || query_param(url, BODY_HASH).is_some() {
        return url.to_string();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!(
        "{url}{sep}{BODY_HASH}={}",
        hex::encode(Sha256::digest(body))
    )
}

pub(super) fn verify(input: &Input<'_>, keys: &Keys) -> Result<Verified, VerifyError> {
    let sig = single(input.headers, SIGNATURE)?;
    let algorithm = match input.headers.get(SETTINGS) {
        None => Algorithm::Sha1,
        Some(v) if v.is_empty() => Algorithm::Sha1,
        Some(_) => settings_algorithm(single(input.headers, SETTINGS)?)?,
    };
    let sig = Encoding::Base64
        .decode(sig)
        .filter(|s| s.len() == algorithm.output_len())
        .ok_or(VerifyError::MalformedHeader)?;
    // Config validation requires verify.public_url for twilio, so the gateway always has one.
    let url = input.url.ok_or(VerifyError::NoSecret)?;
    let body_hash = query_param(url, BODY_HASH);
    let params = match body_hash {
        Some(_) => String::new(),
        None => form_params(input.body),
    };
    let urls = [Some(Cow::Borrowed(url)), port_variant(url).map(Cow::Owned)];
    let key_id = first_match(&keys.secrets, |k| {
        urls.iter()
            .flatten()
            .any(|u| algorithm.verify(k, &[u.as_bytes(), params.as_bytes()], &sig))
    })?;
    if let Some(expected) = body_hash {
        let expected = Encoding::Hex
            .decode(&expected)
            .filter(|h| h.len() == 32)
            .ok_or(VerifyError::Mismatch)?;
        if !bool::from(Sha256::digest(input.body).as_slice().ct_eq(&expected)) {
            return Err(VerifyError::Mismatch);
        }
    }
    Ok(Verified::new(key_id, optional(input.headers, &[DELIVERY])))
}

pub(super) fn sign(
    secret: &[u8],
    input: &SignInput<'_>,
) -> Result<Vec<(String, String)>, SignError> {
    let url = input.url.ok_or(SignError::NeedsUrl)?;
    let params = match query_param(url, BODY_HASH) {
        Some(_) => String::new(),
        None => form_params(input.body),
    };
    let mac = Algorithm::Sha1.sign(secret, &[url.as_bytes(), params.as_bytes()]);
    Ok(vec![
        (SIGNATURE.to_string(), Encoding::Base64.encode(&mac)),
        (DELIVERY.to_string(), input.id.to_string()),
    ])
}

/// `key=<id>,algorithm=HMAC_SHA256`: the hash named by `algorithm`.
fn settings_algorithm(value: &str) -> Result<Algorithm, VerifyError> {
    let algorithm = value
        .split(',')
        .filter_map(|item| item.split_once('='))
        .find(|(k, _)| k.trim() == "algorithm")
        .map(|(_, v)| v.trim());
    match algorithm {
        Some("HMAC_SHA256") => Ok(Algorithm::Sha256),
        Some("HMAC_SHA1") | None => Ok(Algorithm::Sha1),
        Some(_) => Err(VerifyError::MalformedHeader),
    }
}

/// The decoded value of query parameter `name` in `url`.
fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// `name1value1name1value2name2value..`: names sorted, each name's distinct values sorted.
fn form_params(body: &[u8]) -> String {
    let mut pairs: Vec<(Cow<'_, str>, Cow<'_, str>)> = form_urlencoded::parse(body).collect();
    pairs.sort();
    pairs.dedup();
    pairs.iter().fold(String::new(), |mut s, (k, v)| {
        s.push_str(k);
        s.push_str(v);
        s
    })
}

/// The same URL with the scheme's default port removed when present, or added when absent;
/// `None` for another port or scheme.
fn port_variant(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let default = match scheme.to_ascii_lowercase().as_str() {
        "https" => "443",
        "http" => "80",
        _ => return None,
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let host_start = authority.rfind('@').map_or(0, |i| i + 1);
    let host = &authority[host_start..];
    match host.rfind(':').filter(|&i| !host[i..].contains(']')) {
        Some(i) if &host[i + 1..] == default => {
            Some(format!("{scheme}://{}{tail}", &authority[..host_start + i]))
        }
        Some(_) => None,
        None => Some(format!("{scheme}://{authority}:{default}{tail}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sender_url_appends_rest_and_raw_query() {
        let base = "https://hooks.example.com/twilio";
        assert_eq!(sender_url(base, "", None), base);
        assert_eq!(
            sender_url(base, "sms", Some("a=1&b=%2B")),
            "https://hooks.example.com/twilio/sms?a=1&b=%2B"
        );
        assert_eq!(
            sender_url("https://h/t/", "sms", Some("")),
            "https://h/t/sms?"
        );
    }

    #[test]
    fn default_port_variants() {
        assert_eq!(
            port_variant("https://h.example/p?q=1").as_deref(),
            Some("https://h.example:443/p?q=1")
        );
        assert_eq!(
            port_variant("https://h.example:443/p").as_deref(),
            Some("https://h.example/p")
        );
        assert_eq!(
            port_variant("http://u:p@h.example").as_deref(),
            Some("http://u:p@h.example:80")
        );
        assert_eq!(
            port_variant("https://[::1]:443/x").as_deref(),
            Some("https://[::1]/x")
        );
        assert_eq!(port_variant("https://h.example:8443/p"), None);
        assert_eq!(port_variant("ftp://h/p"), None);
    }

    #[test]
    fn params_sorted_and_deduplicated() {
        assert_eq!(
            form_params(b"Digits=5678&Sid=CA1&Digits=1234&Digits=1234&B=a+b%2B"),
            "Ba b+Digits1234Digits5678SidCA1"
        );
    }

    #[test]
    fn body_hash_only_for_json() {
        assert_eq!(add_body_hash("https://h/p", b"a=1"), "https://h/p");
        let u = add_body_hash("https://h/p?x=1", b" {}");
        assert!(u.starts_with("https://h/p?x=1&bodySHA256="), "{u}");
        assert_eq!(add_body_hash(&u, b"{}"), u);
    }

    #[test]
    fn settings_header() {
        assert_eq!(
            settings_algorithm("key=k,algorithm=HMAC_SHA256"),
            Ok(Algorithm::Sha256)
        );
        assert_eq!(settings_algorithm("key=k"), Ok(Algorithm::Sha1));
        assert_eq!(
            settings_algorithm("algorithm=RSA"),
            Err(VerifyError::MalformedHeader)
        );
    }
}
