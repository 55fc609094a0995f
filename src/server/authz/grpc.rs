//! `envoy.service.auth.v3.Authorization/Check` (Envoy's `grpc_service`, Istio's
//! `envoyExtAuthzGrpc`): tonic's gRPC framing and codec over the messages of `pb.rs`.
//!
//! A `CheckRequest` is rebuilt into the request it describes (`attributes.request.http`:
//! method, path with query, host, `header_map` or `headers`, `raw_body` or `body`) and run
//! through the gateway's stages; the gateway's answer becomes an `ok_response` (trusted headers
//! set with `append: false`, look-alikes in `headers_to_remove`, `dynamic_metadata`) or a
//! `denied_response` with the status, headers and body the gateway would have sent.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderName, Method, Request, Response, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use tonic::server::{Grpc, UnaryService};
use tonic::Status as GrpcStatus;

use super::http::PARTIAL_BODY;
use super::pb::{
    BoolValue, CheckRequest, CheckResponse, DeniedHttpResponse, HeaderValue, HeaderValueOption,
    HttpRequest, HttpResponse, HttpStatus, OkHttpResponse, Status, Struct, Value,
};
use crate::gateway::authz::{Allowed, Caller, Check};
use crate::gateway::{Body, Conn, Gateway, Mode};

/// The one method served.
const CHECK: &str = "/envoy.service.auth.v3.Authorization/Check";

/// gRPC's codes for a check's answer: Envoy lets the request through only on `OK`.
const OK: i32 = 0;
const PERMISSION_DENIED: i32 = 7;

/// Answers the checks of one connection of the proxy.
#[derive(Clone)]
pub(super) struct Checker {
    gateway: Arc<Gateway>,
    conn: Conn,
    /// Largest `CheckRequest` accepted.
    max_message: usize,
}

impl Checker {
    pub(super) fn new(gateway: Arc<Gateway>, conn: Conn, max_message: usize) -> Self {
        Self {
            gateway,
            conn,
            max_message,
        }
    }

    /// Runs one gRPC call: framing, decoding, `grpc-status` and errors are tonic's.
    pub(super) async fn call(self, req: Request<Incoming>) -> Response<tonic::body::Body> {
        if req.uri().path() != CHECK {
            return GrpcStatus::unimplemented("only envoy.service.auth.v3.Authorization/Check")
                .into_http();
        }
        let codec = tonic_prost::ProstCodec::<CheckResponse, CheckRequest>::default();
        let max = self.max_message;
        let mut grpc = Grpc::new(codec).max_decoding_message_size(max);
        grpc.unary(self, req).await
    }

    async fn check(self, check: CheckRequest) -> CheckResponse {
        let Some(original) = original(check) else {
            // Not a request hookgate could rebuild (a path that is no URI): nothing to verify.
            tracing::warn!(target: "hookgate::authz", peer = %self.conn.peer, "check without a usable attributes.request.http; denied");
            return denied(400, Vec::new(), String::new());
        };
        let mode = Mode::Authz(Check {
            caller: Caller::Grpc,
            partial: original.partial,
        });
        let res = self
            .gateway
            .run(original.request, self.conn, original.client, mode)
            .await;
        answer(res).await
    }
}

impl UnaryService<CheckRequest> for Checker {
    type Response = CheckResponse;
    type Future =
        Pin<Box<dyn Future<Output = Result<tonic::Response<CheckResponse>, GrpcStatus>> + Send>>;

    fn call(&mut self, request: tonic::Request<CheckRequest>) -> Self::Future {
        let checker = self.clone();
        Box::pin(async move {
            let answer = checker.check(request.into_inner()).await;
            Ok(tonic::Response::new(answer))
        })
    }
}

/// gRPC requests say so in their content type (`application/grpc`, `application/grpc+proto`).
pub(super) fn is_grpc<B>(req: &Request<B>) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// The request a check describes.
struct Original {
    request: Request<Full<Bytes>>,
    client: Option<IpAddr>,
    partial: bool,
}

fn original(check: CheckRequest) -> Option<Original> {
    let attributes = check.attributes?;
    let client = attributes
        .source
        .and_then(|s| s.address)
        .and_then(|a| a.socket_address)
        .and_then(|s| s.address.parse().ok());
    let http = attributes.request?.http?;
    let HttpRequest {
        method,
        headers,
        header_map,
        path,
        host,
        body,
        raw_body,
        ..
    } = http;
    let mut map = HeaderMap::new();
    match header_map {
        // `encode_raw_headers: true`: each value as bytes, repeated names kept apart.
        Some(m) => {
            for h in m.headers {
                let value = if h.raw_value.is_empty() {
                    h.value
                } else {
                    h.raw_value
                };
                append(&mut map, &h.key, value);
            }
        }
        // Repeated names arrive joined with `,`, as HTTP allows.
        None => {
            for (k, v) in headers {
                append(&mut map, &k, v);
            }
        }
    }
    // Envoy puts the host in `host` (`:authority`), not among the headers.
    if !host.is_empty() {
        if let Ok(v) = http::HeaderValue::from_str(&host) {
            map.insert(header::HOST, v);
        }
    }
    let body = if raw_body.is_empty() {
        Bytes::from(body)
    } else {
        Bytes::from(raw_body)
    };
    let declared = map
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let partial = map
        .get(PARTIAL_BODY)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"))
        || declared.is_some_and(|n| n > body.len() as u64);
    let method = Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET);
    let uri = Uri::try_from(path.as_str()).ok()?;
    let mut request = Request::new(Full::new(body));
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.headers_mut() = map;
    Some(Original {
        request,
        client,
        partial,
    })
}

/// Adds a header from a check; pseudo-headers (`:path`, `:method`...) and names or values that
/// HTTP cannot carry are left out.
fn append(map: &mut HeaderMap, key: &str, value: Vec<u8>) {
    if key.starts_with(':') {
        return;
    }
    if let (Ok(name), Ok(value)) = (
        HeaderName::from_bytes(key.as_bytes()),
        http::HeaderValue::from_bytes(&value),
    ) {
        map.append(name, value);
    }
}

/// The gateway's answer as a `CheckResponse`.
async fn answer(res: Response<Body>) -> CheckResponse {
    let (parts, body) = res.into_parts();
    if let Some(allowed) = parts.extensions.get::<Allowed>() {
        return ok(allowed);
    }
    let bytes = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let headers = parts
        .headers
        .iter()
        .filter(|(name, _)| *name != header::CONTENT_LENGTH)
        .filter_map(|(name, value)| Some(option(name.as_str(), value.to_str().ok()?)))
        .collect();
    let body = String::from_utf8_lossy(&bytes).into_owned();
    denied(parts.status.as_u16(), headers, body)
}

fn ok(allowed: &Allowed) -> CheckResponse {
    let headers = allowed
        .set
        .iter()
        .filter_map(|(name, value)| Some(option(name.as_str(), value.to_str().ok()?)))
        .collect();
    let headers_to_remove = allowed.remove.iter().map(|n| n.to_string()).collect();
    let mut fields = HashMap::new();
    let mut put = |key: &str, value: &str| {
        let value = Value {
            string_value: Some(value.to_string()),
        };
        fields.insert(key.to_string(), value);
    };
    put("route", &allowed.route);
    put("provider", allowed.provider);
    put("key_id", &allowed.key_id);
    if let Some(id) = &allowed.delivery_id {
        put("delivery_id", id);
    }
    if let Some(key) = &allowed.dedup_key {
        put("dedup_key", key);
    }
    CheckResponse {
        status: Some(Status {
            code: OK,
            message: String::new(),
        }),
        http_response: Some(HttpResponse::Ok(OkHttpResponse {
            headers,
            headers_to_remove,
        })),
        dynamic_metadata: Some(Struct { fields }),
    }
}

fn denied(status: u16, headers: Vec<HeaderValueOption>, body: String) -> CheckResponse {
    CheckResponse {
        status: Some(Status {
            code: PERMISSION_DENIED,
            message: String::new(),
        }),
        http_response: Some(HttpResponse::Denied(DeniedHttpResponse {
            status: Some(HttpStatus {
                code: i32::from(status),
            }),
            headers,
            body,
        })),
        dynamic_metadata: None,
    }
}

/// A header that replaces any copy of it (`append: false`).
fn option(key: &str, value: &str) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: key.to_string(),
            value: value.as_bytes().to_vec(),
            raw_value: Vec::new(),
        }),
        append: Some(BoolValue { value: false }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::pb::{self, AttributeContext, HeaderMap as PbHeaderMap};
    use super::*;

    fn check(http: HttpRequest) -> CheckRequest {
        CheckRequest {
            attributes: Some(AttributeContext {
                request: Some(pb::Request { http: Some(http) }),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn raw_headers_and_bytes_win() {
        let mut headers = HashMap::new();
        headers.insert(":path".to_string(), b"/ignored".to_vec());
        headers.insert("x-a".to_string(), b"from-map".to_vec());
        let o = original(check(HttpRequest {
            method: "POST".into(),
            path: "/hooks/a?x=1".into(),
            host: "example.com".into(),
            headers,
            header_map: Some(PbHeaderMap {
                headers: vec![
                    HeaderValue {
                        key: "x-a".into(),
                        value: Vec::new(),
                        raw_value: b"raw".to_vec(),
                    },
                    HeaderValue {
                        key: "bad name".into(),
                        value: b"v".to_vec(),
                        raw_value: Vec::new(),
                    },
                ],
            }),
            body: b"text".to_vec(),
            raw_body: vec![0xff, 0x00],
        }))
        .unwrap();
        let r = &o.request;
        assert_eq!(r.method(), Method::POST);
        assert_eq!(r.uri(), "/hooks/a?x=1");
        assert_eq!(r.headers()["host"], "example.com");
        assert_eq!(r.headers()["x-a"], "raw");
        assert_eq!(r.headers().len(), 2);
        assert!(!o.partial);
    }

    #[test]
    fn a_short_body_is_partial() {
        let mut headers = HashMap::new();
        headers.insert("content-length".to_string(), b"10".to_vec());
        let short = original(check(HttpRequest {
            method: "POST".into(),
            path: "/a".into(),
            headers: headers.clone(),
            body: b"12345".to_vec(),
            ..Default::default()
        }))
        .unwrap();
        assert!(short.partial);
        headers.insert("content-length".to_string(), b"5".to_vec());
        headers.insert(PARTIAL_BODY.to_string(), b"true".to_vec());
        let flagged = original(check(HttpRequest {
            method: "POST".into(),
            path: "/a".into(),
            headers,
            body: b"12345".to_vec(),
            ..Default::default()
        }))
        .unwrap();
        assert!(flagged.partial);
        assert!(original(CheckRequest::default()).is_none());
    }
}
