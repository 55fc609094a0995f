//! The admin API from the command line (`dlq`, `events`, `routes`): one JSON call to a running
//! gateway, with its token.

use serde_json::Value;

use super::client::{self, SendError};

/// Why a call to the admin API failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("invalid --admin `{0}`; give host:port as admin.listen has it (127.0.0.1:9090), or an http:// URL (the admin API speaks plain HTTP)")]
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

/// The admin API's base URL from `--admin`: `host:port` as `admin.listen` has it, or a URL.
pub fn base_url(admin: &str) -> Result<String, RemoteError> {
    let trimmed = admin.trim().trim_end_matches('/');
    let base = if trimmed.contains("://") {
        trimmed.to_string()
    } else {
        format!("http://{trimmed}")
    };
    let bad = || RemoteError::BadAddress(admin.into());
    let uri: http::Uri = base.parse().map_err(|_| bad())?;
    if uri.scheme_str() != Some("http") || uri.host().is_none_or(str::is_empty) {
        return Err(bad());
    }
    Ok(base)
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
    let url = format!("{base}{path}");
    let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
    if let Some(t) = token.filter(|t| !t.is_empty()) {
        headers.push(("authorization".to_string(), format!("Bearer {t}")));
    }
    let answer = client::call(&client::Call {
        method,
        url: &url,
        headers: &headers,
        body: body.map(|b| b.to_string().into_bytes()).unwrap_or_default(),
        timeout: std::time::Duration::from_secs(30),
        cacert: None,
    })
    .await
    .map_err(|e| match e {
        SendError::BadUrl(_) => RemoteError::BadAddress(admin.into()),
        e => RemoteError::Unreachable(base.clone(), e.to_string()),
    })?;
    let (status, bytes) = (answer.status, answer.body);
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
