//! The admin API from the command line: one JSON call to a running gateway, with its token.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// Why a call to the admin API failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error(
        "invalid --admin `{0}`; give host:port (as admin.listen) or a URL, e.g. 127.0.0.1:9090"
    )]
    BadAddress(String),
    #[error("cannot reach the admin API at {0}: {1}")]
    Unreachable(String, String),
    #[error("the admin API refused the token: give --token or HOOKGATE_ADMIN_TOKEN (admin.token)")]
    Unauthorized,
    #[error("the admin API answered {0}: {1}")]
    Api(u16, String),
}

impl RemoteError {
    /// 2 for what the user typed wrong, 1 for what went wrong at run time.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::BadAddress(_) | Self::Api(400, _) => 2,
            _ => 1,
        }
    }
}

/// `host:port` or `http://host:port[/]` as a base URL.
pub fn base_url(admin: &str) -> Result<String, RemoteError> {
    let bad = || RemoteError::BadAddress(admin.to_string());
    let with_scheme = if admin.contains("://") {
        admin.to_string()
    } else {
        format!("http://{admin}")
    };
    let uri: http::Uri = with_scheme.parse().map_err(|_| bad())?;
    if uri.scheme_str() != Some("http") || uri.authority().is_none() {
        return Err(bad());
    }
    Ok(with_scheme.trim_end_matches('/').to_string())
}

/// One call; a 2xx answer's JSON, else its `error`.
pub async fn call(
    admin: &str,
    token: Option<&str>,
    method: http::Method,
    path: &str,
    body: Option<Value>,
) -> Result<Value, RemoteError> {
    let base = base_url(admin)?;
    let uri: http::Uri = format!("{base}{path}")
        .parse()
        .map_err(|_| RemoteError::BadAddress(admin.into()))?;
    let payload = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
    let mut req = http::Request::builder()
        .method(method)
        .uri(uri)
        .header(http::header::CONTENT_TYPE, "application/json");
    if let Some(t) = token.filter(|t| !t.is_empty()) {
        req = req.header(http::header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = req
        .body(Full::new(payload))
        .map_err(|_| RemoteError::BadAddress(admin.into()))?;
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let unreachable = |e: String| RemoteError::Unreachable(base.clone(), e);
    let res = tokio::time::timeout(std::time::Duration::from_secs(30), client.request(req))
        .await
        .map_err(|_| unreachable("no answer within 30s".into()))?
        .map_err(|e| unreachable(connect_reason(&e)))?;
    let status = res.status().as_u16();
    let bytes = res
        .into_body()
        .collect()
        .await
        .map_err(|e| unreachable(e.to_string()))?
        .to_bytes();
    let text = String::from_utf8_lossy(&bytes).trim().to_string();
    if status == 401 {
        return Err(RemoteError::Unauthorized);
    }
    if !(200..300).contains(&status) {
        let msg = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or(text);
        return Err(RemoteError::Api(status, msg));
    }
    serde_json::from_str(&text)
        .map_err(|e| RemoteError::Api(status, format!("unreadable answer: {e}")))
}

/// The innermost cause of a client error, e.g. `Connection refused (os error 111)`.
fn connect_reason(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
