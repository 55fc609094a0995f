//! `hookgate sign` and `hookgate send`: make the request a real sender would, so a route can be
//! tested end to end without the provider.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::cli::SchemeArgs;
use crate::config::Secret;
use crate::gateway::unix_now;
use crate::verify::{Algorithm, Encoding, HmacSpec, Scheme, Template, Verifier, SCHEME_NAMES};

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
    match args.scheme.as_str() {
        "mediaconvert" => Ok(Scheme::MediaConvert),
        "github" => Ok(Scheme::GitHub),
        "hmac" => {
            let header = args.header.as_deref().ok_or(SignError::MissingHeader)?;
            if http::HeaderName::from_bytes(header.as_bytes()).is_err() {
                return Err(SignError::BadOption(
                    "header",
                    format!("`{header}` is not a header name"),
                ));
            }
            let encoding = match args.encoding.as_deref() {
                None => Encoding::Hex,
                Some(e) => Encoding::parse(e).ok_or_else(|| {
                    SignError::BadOption("encoding", format!("`{e}`: use hex or base64"))
                })?,
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
                header: header.to_ascii_lowercase(),
                prefix: args.prefix.clone().unwrap_or_default(),
                encoding,
                algorithm,
                signed,
            }))
        }
        other => Err(SignError::UnknownScheme(other.to_string())),
    }
}

fn secret(args: &SchemeArgs) -> Result<Vec<u8>, SignError> {
    match (&args.secret, &args.secret_file) {
        (Some(s), _) => Ok(s.as_bytes().to_vec()),
        (None, Some(p)) => {
            let mut b =
                std::fs::read(p).map_err(|e| SignError::Read(p.display().to_string(), e))?;
            while b.last().is_some_and(|c| *c == b'\n' || *c == b'\r') {
                b.pop();
            }
            Ok(b)
        }
        (None, None) => Err(SignError::BadOption(
            "secret",
            "give --secret or --secret-file".into(),
        )),
    }
}

fn read_body(path: &std::path::Path) -> Result<Vec<u8>, SignError> {
    std::fs::read(path).map_err(|e| SignError::Read(path.display().to_string(), e))
}

/// The signed headers for `body`.
pub fn headers(args: &SchemeArgs, body: &[u8]) -> Result<Vec<(String, String)>, SignError> {
    let scheme = scheme(args)?;
    let key = secret(args)?;
    let verifier = Verifier::new(scheme, vec![Secret::new("cli", key.clone())]);
    let mut h = verifier.sign(&key, body, unix_now());
    h.push(("content-type".into(), "application/json".into()));
    Ok(h)
}

/// `hookgate sign`: headers, then a ready curl command.
pub fn sign(args: &crate::cli::SignArgs) -> Result<String, SignError> {
    let body = read_body(&args.body_file)?;
    let headers = headers(&args.scheme, &body)?;
    let mut out = String::new();
    for (k, v) in &headers {
        out.push_str(&format!("{k}: {v}\n"));
    }
    out.push_str("\ncurl -sS -X POST");
    for (k, v) in &headers {
        out.push_str(&format!(" -H '{k}: {v}'"));
    }
    out.push_str(&format!(
        " --data-binary @{} '{}'\n",
        shell_quote(&args.body_file.display().to_string()),
        args.url
    ));
    Ok(out)
}

fn shell_quote(s: &str) -> String {
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// `hookgate send`: POSTs the signed body; returns the status line and body.
pub async fn send(args: &crate::cli::SendArgs) -> Result<(u16, String), SignError> {
    let body = read_body(&args.body_file)?;
    let headers = headers(&args.scheme, &body)?;
    let uri: http::Uri = args
        .url
        .parse()
        .map_err(|_| SignError::BadUrl(args.url.clone()))?;
    let mut req = http::Request::post(uri);
    for (k, v) in &headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let req = req
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| SignError::BadUrl(e.to_string()))?;
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let res = tokio::time::timeout(std::time::Duration::from_secs(30), client.request(req))
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
