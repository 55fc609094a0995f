//! HTTP clients: one request per connection over HTTP/1.1 or h2c with hyper, and raw TCP for
//! malformed, slow and hop-by-hop cases.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::sign::sha256_header;
use super::WAIT;

/// A response as the sender saw it.
#[derive(Clone, Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    /// First value of a header (case-insensitive).
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }

    /// Body as lossy UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Send one HTTP/1.1 request on a fresh connection with hyper. `Host` is set to `addr`
/// unless given in `headers`.
pub async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    try_send(addr, method, path, headers, body)
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// Like [`send`] but returns errors.
pub async fn try_send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Resp, String> {
    let fut = async {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut b = hyper::Request::builder().method(method).uri(path);
        if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
            b = b.header("host", addr.to_string());
        }
        for (n, v) in headers {
            b = b.header(*n, *v);
        }
        let req = b
            .body(Full::new(Bytes::copy_from_slice(body)))
            .map_err(|e| e.to_string())?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("send: {e}"))?;
        to_resp(resp).await
    };
    tokio::time::timeout(WAIT, fut)
        .await
        .map_err(|_| "timed out".to_string())?
}

/// POST `body` to `path` with extra headers.
pub async fn post(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    send(addr, "POST", path, headers, body).await
}

/// POST `body` signed for mediaconvert with `secret`.
pub async fn post_mc(addr: SocketAddr, path: &str, secret: &str, body: &[u8]) -> Resp {
    let sig = sha256_header(secret, body);
    post(
        addr,
        path,
        &[
            ("content-type", "application/json"),
            ("x-mediaconvert-signature", &sig),
        ],
        body,
    )
    .await
}

pub(super) async fn to_resp(resp: hyper::Response<Incoming>) -> Result<Resp, String> {
    let (parts, body) = resp.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| format!("body: {e}"))?
        .to_bytes()
        .to_vec();
    Ok(Resp {
        status: parts.status.as_u16(),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
    })
}

/// Send one HTTP/2 prior-knowledge (h2c) request on a fresh connection.
pub async fn send_h2(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Resp, String> {
    let fut = async {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .map_err(|e| format!("h2 handshake: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut b = hyper::Request::builder()
            .method(method)
            .version(hyper::Version::HTTP_2)
            .uri(format!("http://{addr}{path}"));
        for (n, v) in headers {
            b = b.header(*n, *v);
        }
        let req = b
            .body(Full::new(Bytes::copy_from_slice(body)))
            .map_err(|e| e.to_string())?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("h2 send: {e}"))?;
        if resp.version() != hyper::Version::HTTP_2 {
            return Err(format!("response version {:?}", resp.version()));
        }
        to_resp(resp).await
    };
    tokio::time::timeout(WAIT, fut)
        .await
        .map_err(|_| "timed out".to_string())?
}

// Raw TCP, for malformed, slow and hop-by-hop cases.

/// A response parsed from raw bytes: the same shape as [`Resp`].
pub type RawResponse = Resp;

/// Connect with a bounded timeout.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_nodelay(true).ok();
    s
}

fn read_some(s: &mut TcpStream, buf: &mut Vec<u8>, deadline: Instant) -> std::io::Result<usize> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "deadline",
        ));
    }
    s.set_read_timeout(Some(left))?;
    let mut tmp = [0u8; 8192];
    let n = s.read(&mut tmp)?;
    buf.extend_from_slice(&tmp[..n]);
    Ok(n)
}

/// Read one HTTP/1.x response (skipping 1xx) from a raw stream within `timeout`.
pub fn read_response(s: &mut TcpStream, timeout: Duration) -> std::io::Result<RawResponse> {
    let deadline = Instant::now() + timeout;
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            if read_some(s, &mut buf, deadline)? == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("EOF before response head ({} bytes)", buf.len()),
                ));
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut rest = buf[head_end + 4..].to_vec();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|x| x.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad status line {status_line:?}")))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        if (100..200).contains(&status) {
            buf = rest;
            continue;
        }
        let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let body = if let Some(len) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
            while rest.len() < len {
                if read_some(s, &mut rest, deadline)? == 0 {
                    break;
                }
            }
            rest.truncate(len);
            rest
        } else if get("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
        {
            let mut out = Vec::new();
            let mut pos = 0;
            loop {
                let line_end = loop {
                    if let Some(i) = rest[pos..].windows(2).position(|w| w == b"\r\n") {
                        break pos + i;
                    }
                    if read_some(s, &mut rest, deadline)? == 0 {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "chunk",
                        ));
                    }
                };
                let size_str = String::from_utf8_lossy(&rest[pos..line_end]).into_owned();
                let size =
                    usize::from_str_radix(size_str.split(';').next().unwrap_or("").trim(), 16)
                        .map_err(|e| {
                            std::io::Error::other(format!("chunk size {size_str:?}: {e}"))
                        })?;
                pos = line_end + 2;
                if size == 0 {
                    break;
                }
                while rest.len() < pos + size + 2 {
                    if read_some(s, &mut rest, deadline)? == 0 {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "chunk",
                        ));
                    }
                }
                out.extend_from_slice(&rest[pos..pos + size]);
                pos += size + 2;
            }
            out
        } else if status == 204 || status == 304 {
            Vec::new()
        } else {
            // Until EOF.
            loop {
                match read_some(s, &mut rest, deadline) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                    Err(e) => return Err(e),
                }
            }
            rest
        };
        return Ok(RawResponse {
            status,
            headers,
            body,
        });
    }
}

/// Write raw bytes and read one response.
pub fn raw_request(addr: SocketAddr, bytes: &[u8]) -> std::io::Result<RawResponse> {
    let mut s = connect(addr);
    s.write_all(bytes)?;
    read_response(&mut s, WAIT)
}

/// `GET path` with `Connection: close` over raw TCP.
pub fn raw_get(addr: SocketAddr, path: &str) -> std::io::Result<RawResponse> {
    raw_request(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

/// Build a raw HTTP/1.1 request with `Content-Length` from the body.
pub fn raw_post_bytes(path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("POST {path} HTTP/1.1\r\n");
    for (n, v) in headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}
