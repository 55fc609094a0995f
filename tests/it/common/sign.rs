//! Signing: HMAC helpers for building requests, and `hookgate sign` run and parsed.

use std::path::Path;

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use super::cli::run_cli;

/// Raw HMAC-SHA256(secret, msg).
pub fn hmac_sha256(secret: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("hmac key");
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

/// Lowercase hex HMAC-SHA256.
pub fn sign_hex(secret: &str, body: &[u8]) -> String {
    hex::encode(hmac_sha256(secret.as_bytes(), body))
}

/// Standard base64 HMAC-SHA256.
pub fn sign_b64(secret: &str, body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(hmac_sha256(secret.as_bytes(), body))
}

/// `sha256=<hex>`: the mediaconvert and github header value.
pub fn sha256_header(secret: &str, body: &[u8]) -> String {
    format!("sha256={}", sign_hex(secret, body))
}

/// Lowercase hex SHA-256 of bytes.
pub fn sha256_hex(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

// `hookgate sign`

/// A request as `hookgate sign` prints it: the header lines, then a curl command.
#[derive(Clone, Debug)]
pub struct SignedRequest {
    pub headers: Vec<(String, String)>,
    /// The body curl would send: the file, or the inline body when the scheme rewrote it.
    pub body: Vec<u8>,
    /// The URL curl would call.
    pub url: String,
}

impl SignedRequest {
    /// The headers as `post` takes them.
    pub fn header_refs(&self) -> Vec<(&str, &str)> {
        self.headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect()
    }

    /// Header value, case-insensitive.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Path and query of [`Self::url`].
    pub fn path_and_query(&self) -> String {
        let rest = self.url.split_once("://").map_or(&*self.url, |(_, r)| r);
        rest.find('/').map_or("/".into(), |i| rest[i..].to_string())
    }
}

/// Runs `hookgate sign ARGS BODY_FILE` (writing `body` to a temp file) and parses its output;
/// panics with the output when it fails.
pub fn hookgate_sign(args: &[&str], body: &[u8]) -> SignedRequest {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("body");
    std::fs::write(&file, body).expect("write body");
    let mut all = vec!["sign"];
    all.extend_from_slice(args);
    all.push(file.to_str().expect("utf-8 path"));
    let out = run_cli(&all, &[], None);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "hookgate {all:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (head, curl) = stdout
        .split_once("\n\n")
        .unwrap_or_else(|| panic!("no blank line in sign output:\n{stdout}"));
    let headers = head
        .lines()
        .map(|l| {
            let (n, v) = l.split_once(": ").expect("header line");
            (n.to_string(), v.to_string())
        })
        .collect();
    let words = shell_words(curl.trim_end());
    let data = words
        .iter()
        .position(|w| w == "--data-binary")
        .and_then(|i| words.get(i + 1))
        .expect("--data-binary in curl command");
    let body = match data.strip_prefix('@') {
        Some(path) if Path::new(path) == file => body.to_vec(),
        Some(path) => panic!("curl reads {path}, not the body file"),
        None => data.as_bytes().to_vec(),
    };
    SignedRequest {
        headers,
        body,
        url: words.last().expect("url").clone(),
    }
}

/// Splits a command line as a POSIX shell would, for the quoting `hookgate sign` uses
/// (plain words and '...' with '\'' for a quote).
pub fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    cur.push(q);
                }
            }
            '\\' => {
                in_word = true;
                cur.extend(chars.next());
            }
            ' ' if in_word => {
                words.push(std::mem::take(&mut cur));
                in_word = false;
            }
            ' ' => {}
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}
