//! `hookgate sign` and `hookgate send`: make the request a real sender would, so a route can be
//! tested end to end without the provider. The scheme, key and URL come from a route of a config
//! file (`--route`, `route.rs`) or from flags; `send` posts through `client.rs`.

use super::client::{self, SendError};
use super::route::{self, RouteError};
use super::{SchemeArgs, SendArgs, SignArgs};
use crate::clock::unix_now;
use crate::verify::{
    add_body_hash, Algorithm, Encoding, HmacSpec, Scheme, SignInput, SigningKey, Template,
    SCHEME_NAMES,
};

/// The URL `sign` puts in its curl command when it knows none: plainly not a real one.
pub const PLACEHOLDER_URL: &str = "http://HOOKGATE_HOST/ROUTE_PATH";

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("unknown scheme `{0}`; use one of: {names}", names = SCHEME_NAMES.join(", "))]
    UnknownScheme(String),
    #[error("scheme {scheme} needs {}", .needs.join(" and "))]
    Missing {
        scheme: &'static str,
        needs: Vec<&'static str>,
    },
    #[error("route `{route}` (scheme {scheme}) has no shared secret to sign with: give {needs}")]
    RouteKey {
        route: String,
        scheme: &'static str,
        needs: &'static str,
    },
    #[error("give the URL to send to, or --route NAME (and -c CONFIG) to send to that route")]
    NoUrl,
    #[error("--{0}: {1}")]
    BadOption(&'static str, String),
    #[error("cannot read {0}: {1}")]
    Read(String, std::io::Error),
    #[error(transparent)]
    Route(#[from] RouteError),
    #[error(transparent)]
    Scheme(#[from] crate::verify::SignError),
    #[error(transparent)]
    Send(#[from] SendError),
}

impl SignError {
    /// 2 for what the user typed wrong, 1 for what went wrong at run time.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Send(e) => e.exit_code(),
            Self::Read(..) => 1,
            _ => 2,
        }
    }
}

/// The flags that give `scheme` its key, for an error that says what to type.
fn key_flags(scheme: &Scheme) -> &'static str {
    match scheme {
        Scheme::SendGrid => "--private-key-file FILE (a PEM P-256 private key, PKCS#8 or SEC1)",
        Scheme::StandardWebhooks | Scheme::Svix => {
            "--secret whsec_... (or HOOKGATE_SECRET, --secret-file FILE) for v1, or --private-key-file FILE (whsk_...) for v1a"
        }
        _ => SECRET_FLAGS,
    }
}

const SECRET_FLAGS: &str = "--secret SECRET (or HOOKGATE_SECRET, --secret-file FILE)";
const HMAC_FLAGS: &str = "--header NAME (and --prefix, --encoding, --algorithm, --signed as in the route's verify settings)";

/// What to sign with and where the request goes: from a route of a config, or from the flags.
struct Plan {
    scheme: Scheme,
    key: SigningKey,
    /// With `--route`: the route's URL on the gateway.
    url: Option<String>,
    /// With `--route`, twilio: the route's `verify.public_url`.
    public_url: Option<String>,
    /// With `--route`: the route's `host`, sent as the Host header.
    host: Option<String>,
}

fn plan(args: &SchemeArgs) -> Result<Plan, SignError> {
    let given = key(args)?;
    if let Some(name) = &args.route {
        let target = route::load(args.config.as_deref(), name)?;
        let key = match given.or(target.key) {
            Some(k) => k,
            None => {
                return Err(SignError::RouteKey {
                    route: target.name,
                    scheme: target.scheme.name(),
                    needs: key_flags(&target.scheme),
                })
            }
        };
        return Ok(Plan {
            scheme: target.scheme,
            key,
            url: Some(target.url),
            public_url: target.public_url,
            host: target.host,
        });
    }
    let name = args.scheme.as_deref().unwrap_or_default();
    let needs_header = name == "hmac" && args.header.is_none();
    match given {
        Some(key) if !needs_header => Ok(Plan {
            scheme: scheme(args)?,
            key,
            url: None,
            public_url: None,
            host: None,
        }),
        given => {
            let builtin = Scheme::builtin(name);
            let mut needs = Vec::new();
            if needs_header {
                needs.push(HMAC_FLAGS);
            }
            if given.is_none() {
                needs.push(builtin.as_ref().map_or(SECRET_FLAGS, key_flags));
            }
            Err(SignError::Missing {
                scheme: builtin.as_ref().map_or("hmac", Scheme::name),
                needs,
            })
        }
    }
}

/// The scheme described by the command-line flags.
pub fn scheme(args: &SchemeArgs) -> Result<Scheme, SignError> {
    let name = args.scheme.as_deref().unwrap_or_default();
    if name != "hmac" {
        return Scheme::builtin(name).ok_or_else(|| SignError::UnknownScheme(name.to_string()));
    }
    let header = args.header.as_deref().ok_or(SignError::Missing {
        scheme: "hmac",
        needs: vec!["--header NAME"],
    })?;
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

/// The key from `--secret`, `--secret-file` or `--private-key-file`, if one was given.
fn key(args: &SchemeArgs) -> Result<Option<SigningKey>, SignError> {
    if let Some(p) = &args.private_key_file {
        let text = String::from_utf8_lossy(&read(p)?).into_owned();
        return SigningKey::private_key(&text)
            .map(Some)
            .map_err(|e| SignError::BadOption("private-key-file", e));
    }
    match (&args.secret, &args.secret_file) {
        (Some(s), _) => Ok(Some(SigningKey::Secret(s.as_bytes().to_vec()))),
        (None, Some(p)) => {
            let mut b = read(p)?;
            while b.last().is_some_and(|c| *c == b'\n' || *c == b'\r') {
                b.pop();
            }
            Ok(Some(SigningKey::Secret(b)))
        }
        (None, None) => Ok(None),
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

/// Signs `body` as `plan` says. `signed_url` is the URL the sender calls (twilio), `target`
/// where the request goes.
fn request(
    plan: &Plan,
    body: &[u8],
    timestamp: Option<u64>,
    signed_url: Option<&str>,
    target: Option<&str>,
) -> Result<Request, SignError> {
    let (signed_url, target) = match plan.scheme {
        Scheme::Twilio => (
            signed_url.map(|u| add_body_hash(u, body)),
            target.map(|u| add_body_hash(u, body)),
        ),
        _ => (signed_url.map(str::to_owned), target.map(str::to_owned)),
    };
    let id = fresh_id();
    let signed = plan.scheme.sign(
        &plan.key,
        &SignInput {
            body,
            now: timestamp.unwrap_or_else(unix_now),
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
    if let Some(host) = &plan.host {
        headers.push(("host".into(), host.clone()));
    }
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

/// What `hookgate sign` prints: the headers and a curl command on stdout, and a note for stderr.
pub struct Printed {
    pub out: String,
    pub note: Option<String>,
}

/// `hookgate sign`: headers, then a ready curl command.
pub fn sign(args: &SignArgs) -> Result<Printed, SignError> {
    let file = read(&args.body_file)?;
    let plan = plan(&args.scheme)?;
    let target = args.url.clone().or_else(|| plan.url.clone());
    let signed_url = plan.public_url.clone().or_else(|| target.clone());
    let req = request(
        &plan,
        &file,
        args.scheme.timestamp,
        signed_url.as_deref(),
        target.as_deref(),
    )?;
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
    let note = req.url.is_none().then(|| {
        format!("{PLACEHOLDER_URL} is a placeholder: put the route's URL in its place, or give --url URL, or --route NAME -c CONFIG")
    });
    out.push_str(&format!(
        " --data-binary {} {}\n",
        shell_quote(&data),
        shell_quote(req.url.as_deref().unwrap_or(PLACEHOLDER_URL))
    ));
    Ok(Printed { out, note })
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

/// `hookgate send`: POSTs the signed body; returns the answer's status and body.
pub async fn send(args: &SendArgs) -> Result<(u16, String), SignError> {
    if args.url.is_none() && args.scheme.route.is_none() {
        return Err(SignError::NoUrl);
    }
    let file = read(&args.body_file)?;
    let plan = plan(&args.scheme)?;
    let url = args
        .url
        .clone()
        .or_else(|| plan.url.clone())
        .ok_or(SignError::NoUrl)?;
    let signed_url = args
        .public_url
        .clone()
        .or_else(|| plan.public_url.clone())
        .unwrap_or_else(|| url.clone());
    let req = request(
        &plan,
        &file,
        args.scheme.timestamp,
        Some(&signed_url),
        Some(&url),
    )?;
    let answer = client::call(&client::Call {
        method: http::Method::POST,
        url: req.url.as_deref().unwrap_or(&url),
        headers: &req.headers,
        body: req.body,
        timeout: args.timeout,
        cacert: args.cacert.clone(),
    })
    .await?;
    Ok((
        answer.status,
        String::from_utf8_lossy(&answer.body).into_owned(),
    ))
}
