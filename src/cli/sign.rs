//! `hookgate sign` and `hookgate send`: make the request a real sender would, so a route can be
//! tested end to end without the provider.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::SchemeArgs;
use crate::clock::unix_now;
use crate::verify::{
    add_body_hash, Algorithm, Encoding, HmacSpec, Scheme, SignInput, SigningKey, Template,
    SCHEME_NAMES,
};

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("unknown scheme `{0}`; use one of: {names}", names = SCHEME_NAMES.join(", "))]
    UnknownScheme(String),
    #[error("scheme hmac needs --header")]
    MissingHeader,
    #[error("--{0}: {1}")]
    BadOption(&'static str, String),
    #[error("cannot read {0}: {1}")]
    Read(String, std::io::Error),
    #[error("invalid URL `{0}`")]
    BadUrl(String),
    #[error(transparent)]
    Scheme(#[from] crate::verify::SignError),
    #[error("request failed: {0}")]
    Send(String),
}

impl SignError {
    /// 2 for what the user typed wrong, 1 for what went wrong at run time.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Send(_) | Self::Read(..) => 1,
            _ => 2,
        }
    }
}

/// The scheme described by the command-line flags.
pub fn scheme(args: &SchemeArgs) -> Result<Scheme, SignError> {
    if args.scheme != "hmac" {
        return Scheme::builtin(&args.scheme)
            .ok_or_else(|| SignError::UnknownScheme(args.scheme.clone()));
    }
    let header = args.header.as_deref().ok_or(SignError::MissingHeader)?;
    let header_name = |flag, h: &str| {
        http::HeaderName::from_bytes(h.as_bytes())
            .map(|_| h.to_ascii_lowercase())
            .map_err(|_| SignError::BadOption(flag, format!("`{h}` is not a header name")))
    };
    let encoding = match args.encoding.as_deref() {
        None => Encoding::Hex,
        Some(e) => Encoding::parse(e)
            .ok_or_else(|| SignError::BadOption("encoding", format!("`{e}`: use hex or base64")))?,
    };
    let algorithm = match args.algorithm.as_deref() {
        None => Algorithm::Sha256,
        Some(a) => Algorithm::parse(a).ok_or_else(|| {
            SignError::BadOption("algorithm", format!("`{a}`: use sha256, sha512 or sha1"))
        })?,
    };
    let signed = match args.signed.as_deref() {
        None => Template::body(),
        Some(t) => Template::parse(t).map_err(|e| SignError::BadOption("signed", e))?,
    };
    Ok(Scheme::Hmac(HmacSpec {
        header: header_name("header", header)?,
        fallback_header: None,
        prefix: args.prefix.clone().unwrap_or_default(),
        encoding,
        algorithm,
        signed,
        timestamp_header: args
            .timestamp_header
            .as_deref()
            .map(|h| header_name("timestamp-header", h))
            .transpose()?,
    }))
}

fn read(path: &std::path::Path) -> Result<Vec<u8>, SignError> {
    std::fs::read(path).map_err(|e| SignError::Read(path.display().to_string(), e))
}

/// The key from `--secret`, `--secret-file` or `--private-key-file`.
fn key(args: &SchemeArgs) -> Result<SigningKey, SignError> {
    if let Some(p) = &args.private_key_file {
        let text = String::from_utf8_lossy(&read(p)?).into_owned();
        return SigningKey::private_key(&text)
            .map_err(|e| SignError::BadOption("private-key-file", e));
    }
    match (&args.secret, &args.secret_file) {
        (Some(s), _) => Ok(SigningKey::Secret(s.as_bytes().to_vec())),
        (None, Some(p)) => {
            let mut b = read(p)?;
            while b.last().is_some_and(|c| *c == b'\n' || *c == b'\r') {
                b.pop();
            }
            Ok(SigningKey::Secret(b))
        }
        (None, None) => Err(SignError::BadOption(
            "secret",
            "give --secret, --secret-file or --private-key-file".into(),
        )),
    }
}

/// A signed request, ready to send.
#[derive(Debug)]
pub struct Request {
    /// Headers, `content-type` included.
    pub headers: Vec<(String, String)>,
    /// The body: the file's bytes, or a copy with the signature fields in it (mailgun, linear).
    pub body: Vec<u8>,
    /// The target URL; twilio adds `bodySHA256` to a JSON body's URL, as Twilio does.
    pub url: Option<String>,
}

/// Signs `body` for the scheme in `args`. `signed_url` is the URL the sender calls (twilio),
/// `target` where the request goes.
pub fn request(
    args: &SchemeArgs,
    body: &[u8],
    signed_url: Option<&str>,
    target: Option<&str>,
) -> Result<Request, SignError> {
    let scheme = scheme(args)?;
    let key = key(args)?;
    let (signed_url, target) = match scheme {
        Scheme::Twilio => (
            signed_url.map(|u| add_body_hash(u, body)),
            target.map(|u| add_body_hash(u, body)),
        ),
        _ => (signed_url.map(str::to_owned), target.map(str::to_owned)),
    };
    let id = fresh_id();
    let signed = scheme.sign(
        &key,
        &SignInput {
            body,
            now: args.timestamp.unwrap_or_else(unix_now),
            url: signed_url.as_deref(),
            id: &id,
        },
    )?;
    let mut headers = signed.headers;
    let content_type = if looks_like_json(&signed.body) {
        "application/json"
    } else {
        "application/x-www-form-urlencoded"
    };
    headers.push(("content-type".into(), content_type.into()));
    Ok(Request {
        headers,
        body: signed.body,
        url: target,
    })
}

fn looks_like_json(body: &[u8]) -> bool {
    matches!(
        body.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'{' | b'[')
    )
}

/// A delivery id that does not repeat: 128 bits from the process's random hasher keys.
fn fresh_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let half = || {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(nanos);
        h.finish()
    };
    format!("{:016x}{:016x}", half(), half())
}

/// `hookgate sign`: headers, then a ready curl command.
pub fn sign(args: &super::SignArgs) -> Result<String, SignError> {
    let file = read(&args.body_file)?;
    let url = args.url.as_deref();
    let req = request(&args.scheme, &file, url, url)?;
    let mut out = String::new();
    for (k, v) in &req.headers {
        out.push_str(&format!("{k}: {v}\n"));
    }
    out.push_str("\ncurl -sS -X POST");
    for (k, v) in &req.headers {
        out.push_str(&format!(" -H {}", shell_quote(&format!("{k}: {v}"))));
    }
    let data = if req.body == file {
        format!("@{}", args.body_file.display())
    } else {
        // The scheme put its signature fields into the body: send that body, not the file.
        String::from_utf8_lossy(&req.body).into_owned()
    };
    out.push_str(&format!(
        " --data-binary {} {}\n",
        shell_quote(&data),
        shell_quote(req.url.as_deref().unwrap_or("http://127.0.0.1:8080/"))
    ));
    Ok(out)
}

fn shell_quote(s: &str) -> String {
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-@:".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// `hookgate send`: POSTs the signed body; returns the status line and body.
pub async fn send(args: &super::SendArgs) -> Result<(u16, String), SignError> {
    let file = read(&args.body_file)?;
    let signed_url = args.public_url.as_deref().unwrap_or(&args.url);
    let req = request(&args.scheme, &file, Some(signed_url), Some(&args.url))?;
    let url = req.url.as_deref().unwrap_or(&args.url);
    let uri: http::Uri = url
        .parse()
        .map_err(|_| SignError::BadUrl(url.to_string()))?;
    let mut builder = http::Request::post(uri);
    for (k, v) in &req.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    let request = builder
        .body(Full::new(Bytes::from(req.body)))
        .map_err(|e| SignError::BadUrl(e.to_string()))?;
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let res = tokio::time::timeout(std::time::Duration::from_secs(30), client.request(request))
        .await
        .map_err(|_| SignError::Send("no answer within 30s".into()))?
        .map_err(|e| SignError::Send(e.to_string()))?;
    let status = res.status().as_u16();
    let body = res
        .into_body()
        .collect()
        .await
        .map_err(|e| SignError::Send(e.to_string()))?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}
