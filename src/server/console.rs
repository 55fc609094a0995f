//! The web console (docs/console.md): one page and its script, style and icon, compiled into
//! the binary so the console works offline and cannot drift from the API it calls. They hold
//! no data, so they are served without the admin token; the script calls `/api/*` with it.
//!
//! Every answer carries a strict Content-Security-Policy (scripts, styles and API calls from
//! this listener only, no inline code, no framing), `nosniff` and `no-referrer`: the console
//! shows what senders sent, and the policy is the second line of defence behind rendering all
//! of it as text.

use bytes::Bytes;
use http::{header, HeaderValue, Method, Response, StatusCode};
use http_body_util::Full;

const INDEX: &str = include_str!("console/index.html");
const SCRIPT: &str = include_str!("console/console.js");
const STYLE: &str = include_str!("console/console.css");
const ICON: &str = include_str!("console/icon.svg");

/// What the page may load and do: only this origin's script, style and API, no inline code.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
frame-ancestors 'none'";

/// The console's page or asset at `path`, or `None` when `path` is not one of them.
pub fn serve(method: &Method, path: &str) -> Option<Response<Full<Bytes>>> {
    let (body, content_type) = match path {
        "/" | "/index.html" => (INDEX, "text/html; charset=utf-8"),
        "/console/console.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "/console/console.css" => (STYLE, "text/css; charset=utf-8"),
        "/console/icon.svg" => (ICON, "image/svg+xml"),
        _ => return None,
    };
    let (status, body) = match *method {
        // hyper leaves the body out of an answer to HEAD, keeping its length.
        Method::GET | Method::HEAD => (StatusCode::OK, Bytes::from_static(body.as_bytes())),
        _ => (
            StatusCode::METHOD_NOT_ALLOWED,
            Bytes::from_static(b"method not allowed\n"),
        ),
    };
    let mut res = Response::new(Full::new(body));
    *res.status_mut() = status;
    let h = res.headers_mut();
    let ct = if status == StatusCode::OK {
        content_type
    } else {
        h.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        "text/plain"
    };
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // The files change with the binary: revalidate instead of keeping an old script.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Some(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_has_no_inline_code() {
        assert!(!INDEX.contains("<script>"), "inline script");
        assert!(!INDEX.contains("<style"), "inline style");
        assert!(!INDEX.contains(" style="), "inline style attribute");
        let handler = INDEX.split(" on").skip(1).any(|rest| {
            let name = rest.trim_start_matches(|c: char| c.is_ascii_alphabetic());
            name.len() < rest.len() && name.starts_with('=')
        });
        assert!(!handler, "inline event handler");
        assert!(
            !SCRIPT.contains("innerHTML"),
            "sender data must go in as text"
        );
        assert!(!SCRIPT.contains("insertAdjacentHTML") && !SCRIPT.contains("document.write"));
    }

    #[test]
    fn assets_carry_the_policy() {
        let res = serve(&Method::GET, "/console/console.js").unwrap();
        assert_eq!(res.headers()[header::CONTENT_SECURITY_POLICY], CSP);
        assert_eq!(res.headers()[header::X_FRAME_OPTIONS], "DENY");
        assert!(serve(&Method::GET, "/console/other.js").is_none());
        let post = serve(&Method::POST, "/").unwrap();
        assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
    }
}
