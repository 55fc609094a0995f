//! `envoy.service.auth.v3.Authorization/Check` (Envoy's `grpc_service`, Istio's
//! `envoyExtAuthzGrpc`), with the message types of `envoy-types`.
//!
//! A `CheckRequest` is rebuilt into the request it describes (`attributes.request.http`:
//! method, path with query, host, `header_map` or `headers`, `raw_body` or `body`) and run
//! through the gateway's stages; the gateway's answer becomes an `ok_response` (trusted headers
//! set with `append: false`, look-alikes in `headers_to_remove`, `dynamic_metadata`) or a
//! `denied_response` with the status, headers and body the gateway would have sent.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use envoy_types::pb::envoy::config::core::v3::{address, HeaderValue, HeaderValueOption};
use envoy_types::pb::envoy::r#type::v3::HttpStatus;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::HttpRequest;
use envoy_types::pb::envoy::service::auth::v3::authorization_server::{
    Authorization, AuthorizationServer,
};
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{
    CheckRequest, CheckResponse, DeniedHttpResponse, OkHttpResponse,
};
use envoy_types::pb::google::protobuf::{value::Kind, BoolValue, Struct, Value};
use envoy_types::pb::google::rpc;
use http::{header, HeaderMap, HeaderName, Method, Request, Response, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use tonic::codegen::Service;

use super::http::PARTIAL_BODY;
use crate::gateway::authz::{Allowed, Caller, Check};
use crate::gateway::{Body, Conn, Gateway, Mode};

/// gRPC's codes for a check's answer: Envoy lets the request through only on `OK`.
const OK: i32 = 0;
const PERMISSION_DENIED: i32 = 7;

/// The tonic service for one connection.
pub(super) type Server = AuthorizationServer<Checker>;

/// Answers checks for one connection of the proxy.
pub(super) struct Checker {
    gateway: Arc<Gateway>,
    conn: Conn,
}

pub(super) fn server(gateway: Arc<Gateway>, conn: Conn, max_message: usize) -> Server {
    AuthorizationServer::new(Checker { gateway, conn }).max_decoding_message_size(max_message)
}

/// gRPC requests say so in their content type (`application/grpc`, `application/grpc+proto`).
pub(super) fn is_grpc<B>(req: &Request<B>) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// Runs one gRPC call on `server`.
pub(super) async fn call(
    server: &mut Server,
    req: Request<Incoming>,
) -> Response<tonic::body::Body> {
    match server.call(req).await {
        Ok(res) => res,
        // The generated service never fails as a service: errors are gRPC statuses.
        Err(never) => match never {},
    }
}

#[async_trait::async_trait]
impl Authorization for Checker {
    async fn check(
        &self,
        request: tonic::Request<CheckRequest>,
    ) -> Result<tonic::Response<CheckResponse>, tonic::Status> {
        let check = request.into_inner();
        let Some(original) = original(check) else {
            // Not a request hookgate could rebuild (a path that is no URI): nothing to verify.
            tracing::warn!(target: "hookgate::authz", peer = %self.conn.peer, "check without a usable attributes.request.http; denied");
            return Ok(tonic::Response::new(denied(400, Vec::new(), String::new())));
        };
        let mode = Mode::Authz(Check {
            caller: Caller::Grpc,
            partial: original.partial,
        });
        let res = self
            .gateway
            .run(original.request, self.conn, original.client, mode)
            .await;
        Ok(tonic::Response::new(answer(res).await))
    }
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
        .and_then(|a| a.address)
        .and_then(|a| match a {
            address::Address::SocketAddress(s) => s.address.parse().ok(),
            _ => None,
        });
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
                    h.value.into_bytes()
                } else {
                    h.raw_value
                };
                append(&mut map, &h.key, value);
            }
        }
        // Repeated names arrive joined with `,`, as HTTP allows.
        None => {
            for (k, v) in headers {
                append(&mut map, &k, v.into_bytes());
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
        fields.insert(
            key.to_string(),
            Value {
                kind: Some(Kind::StringValue(value.to_string())),
            },
        );
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
        status: Some(rpc::Status {
            code: OK,
            ..Default::default()
        }),
        http_response: Some(HttpResponse::OkResponse(OkHttpResponse {
            headers,
            headers_to_remove,
            ..Default::default()
        })),
        dynamic_metadata: Some(Struct { fields }),
    }
}

fn denied(status: u16, headers: Vec<HeaderValueOption>, body: String) -> CheckResponse {
    CheckResponse {
        status: Some(rpc::Status {
            code: PERMISSION_DENIED,
            ..Default::default()
        }),
        http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
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
#[allow(deprecated)]
fn option(key: &str, value: &str) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: key.to_string(),
            value: value.to_string(),
            raw_value: Vec::new(),
        }),
        // The field the ext_authz contract names; Envoy reads it before `append_action`.
        append: Some(BoolValue { value: false }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use envoy_types::pb::envoy::config::core::v3::HeaderMap as PbHeaderMap;
    use envoy_types::pb::envoy::service::auth::v3::{attribute_context, AttributeContext};

    use super::*;

    fn check(http: HttpRequest) -> CheckRequest {
        CheckRequest {
            attributes: Some(AttributeContext {
                request: Some(attribute_context::Request {
                    http: Some(http),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn raw_headers_and_bytes_win() {
        let mut headers = HashMap::new();
        headers.insert(":path".to_string(), "/ignored".to_string());
        headers.insert("x-a".to_string(), "from-map".to_string());
        let o = original(check(HttpRequest {
            method: "POST".into(),
            path: "/hooks/a?x=1".into(),
            host: "example.com".into(),
            headers,
            header_map: Some(PbHeaderMap {
                headers: vec![
                    HeaderValue {
                        key: "x-a".into(),
                        value: String::new(),
                        raw_value: b"raw".to_vec(),
                    },
                    HeaderValue {
                        key: "bad name".into(),
                        value: "v".into(),
                        raw_value: Vec::new(),
                    },
                ],
            }),
            body: "text".into(),
            raw_body: vec![0xff, 0x00],
            ..Default::default()
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
        headers.insert("content-length".to_string(), "10".to_string());
        let short = original(check(HttpRequest {
            method: "POST".into(),
            path: "/a".into(),
            headers: headers.clone(),
            body: "12345".into(),
            ..Default::default()
        }))
        .unwrap();
        assert!(short.partial);
        headers.insert("content-length".to_string(), "5".to_string());
        headers.insert(PARTIAL_BODY.to_string(), "true".to_string());
        let flagged = original(check(HttpRequest {
            method: "POST".into(),
            path: "/a".into(),
            headers,
            body: "12345".into(),
            ..Default::default()
        }))
        .unwrap();
        assert!(flagged.partial);
        assert!(original(CheckRequest::default()).is_none());
    }
}
