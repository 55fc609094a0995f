//! Every way a request can be refused, mapped in one place to its status, its metric/log reason
//! and what the sender sees. Bodies say what happened, never why a signature failed.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;

use crate::limit::{Limited, Scope};
use crate::metrics::Metrics;
use crate::schema::Mode;
use crate::schema::{Failure, Violation};
use crate::upstream::UpstreamError;
use crate::verify::VerifyError;

/// The status logged for a request its client cancelled: nothing reaches the client.
pub const CLIENT_CLOSED: u16 = 499;

/// A refusal or failure that ends a request before (or instead of) the backend's answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("no route for this path")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("body larger than max_body_bytes")]
    TooLarge,
    /// Verify-only mode: the proxy sent only part of the body, which can never verify.
    #[error("the proxy sent only part of the body")]
    PartialBody,
    #[error("body not received within body_timeout")]
    BodyTimeout,
    #[error("body could not be read")]
    BadBody,
    /// The client reset its HTTP/2 stream (or closed the connection) before the answer.
    #[error("the client cancelled the request")]
    StreamReset,
    #[error("signature verification failed: {0}")]
    Unverified(VerifyError),
    #[error("{0}")]
    RateLimited(Limited),
    #[error("body is not JSON")]
    NotJson,
    #[error("payload violates the route's schema")]
    Schema(Box<[Violation]>),
    #[error("backend unreachable")]
    UpstreamUnreachable,
    #[error("backend did not answer within the route's timeout")]
    UpstreamTimeout,
    #[error("duplicate of a delivered event")]
    Duplicate,
    #[error("duplicate of an event still being delivered")]
    InFlight,
    #[error("the event could not be stored")]
    StoreFailed,
}

impl From<Limited> for Rejection {
    fn from(l: Limited) -> Self {
        Self::RateLimited(l)
    }
}

impl From<UpstreamError> for Rejection {
    fn from(e: UpstreamError) -> Self {
        match e {
            UpstreamError::Timeout => Self::UpstreamTimeout,
            UpstreamError::Unreachable(_) => Self::UpstreamUnreachable,
        }
    }
}

impl From<Failure> for Rejection {
    fn from(f: Failure) -> Self {
        match f {
            Failure::NotJson => Self::NotJson,
            Failure::Invalid(v) => Self::Schema(v),
        }
    }
}

impl Rejection {
    /// The refusal's own counter, beside `hookgate_requests_total` which counts every outcome.
    /// A verification failure is counted with the kind of its diagnosis (`skipped` if none).
    pub fn count(&self, metrics: &Metrics, route: &str, diagnosis: Option<&str>) {
        match self {
            Self::Unverified(e) => metrics
                .verify_failures
                .with_label_values(&[route, e.reason(), diagnosis.unwrap_or("skipped")])
                .inc(),
            Self::RateLimited(l) => metrics
                .rate_limited
                .with_label_values(&[route, l.scope.label()])
                .inc(),
            Self::NotJson | Self::Schema(_) => metrics
                .schema_failures
                .with_label_values(&[route, Mode::Enforce.label()])
                .inc(),
            _ => {}
        }
    }

    /// The JSON pointers a schema refusal names, for the log line (never the values there).
    pub fn pointers(&self) -> Option<String> {
        let Self::Schema(violations) = self else {
            return None;
        };
        let pointers: Vec<&str> = violations.iter().map(|v| v.pointer.as_str()).collect();
        Some(pointers.join(","))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::TooLarge | Self::PartialBody => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::BadBody => StatusCode::BAD_REQUEST,
            // Never sent (the stream is gone); nginx's "client closed request", for the log.
            Self::StreamReset => {
                StatusCode::from_u16(CLIENT_CLOSED).unwrap_or(StatusCode::BAD_REQUEST)
            }
            Self::Unverified(_) => StatusCode::UNAUTHORIZED,
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::NotJson => StatusCode::BAD_REQUEST,
            Self::Schema(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::UpstreamUnreachable => StatusCode::BAD_GATEWAY,
            Self::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            Self::Duplicate => StatusCode::OK,
            Self::InFlight => StatusCode::CONFLICT,
            // Not a fault in the request, nor one a retry cannot fix: the store (a Redis that
            // is down, a full disk) cannot take the event now. Never 202 for an unstored event.
            Self::StoreFailed => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The `reason` label of metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotFound => "no_route",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::TooLarge => "too_large",
            Self::PartialBody => "partial_body",
            Self::BodyTimeout => "body_timeout",
            Self::BadBody => "bad_body",
            Self::StreamReset => "stream_reset",
            Self::Unverified(e) => e.reason(),
            Self::RateLimited(Limited {
                scope: Scope::Ip, ..
            }) => "rate_limited_ip",
            Self::RateLimited(Limited {
                scope: Scope::Route,
                ..
            }) => "rate_limited_route",
            Self::NotJson => "not_json",
            Self::Schema(_) => "schema",
            Self::UpstreamUnreachable => "upstream_unreachable",
            Self::UpstreamTimeout => "upstream_timeout",
            Self::Duplicate => "delivered",
            Self::InFlight => "in_flight",
            Self::StoreFailed => "store",
        }
    }

    /// `rejected` when the sender is at fault, `failed` when hookgate or the backend is,
    /// `duplicate` when the event was seen before.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::UpstreamUnreachable | Self::UpstreamTimeout | Self::StoreFailed => "failed",
            Self::Duplicate | Self::InFlight => "duplicate",
            _ => "rejected",
        }
    }

    fn body(&self) -> Bytes {
        let fixed = match self {
            Self::NotFound => r#"{"error":"not found"}"#,
            Self::MethodNotAllowed => r#"{"error":"method not allowed"}"#,
            Self::TooLarge | Self::PartialBody => r#"{"error":"payload too large"}"#,
            Self::BodyTimeout => r#"{"error":"request timeout"}"#,
            Self::BadBody => r#"{"error":"bad request"}"#,
            Self::StreamReset => r#"{"error":"cancelled"}"#,
            Self::Unverified(_) => r#"{"error":"invalid signature"}"#,
            Self::RateLimited(l) => {
                return Bytes::from(format!(
                    r#"{{"error":"rate limited","retry_after":{}}}"#,
                    l.retry_after
                ))
            }
            Self::NotJson => r#"{"error":"body is not JSON"}"#,
            Self::Schema(violations) => {
                let body = serde_json::json!({"error": "schema", "violations": violations});
                return Bytes::from(body.to_string());
            }
            Self::UpstreamUnreachable => r#"{"error":"bad gateway"}"#,
            Self::UpstreamTimeout => r#"{"error":"gateway timeout"}"#,
            Self::Duplicate => r#"{"status":"duplicate"}"#,
            Self::InFlight => r#"{"error":"duplicate in flight"}"#,
            Self::StoreFailed => r#"{"error":"service unavailable"}"#,
        };
        Bytes::from_static(fixed.as_bytes())
    }

    /// Whether the connection must not be reused: the request body may be partly unread. A
    /// per-address refusal comes before the body is read; closing also makes a flooding client
    /// pay for a new connection.
    fn closes(&self) -> bool {
        matches!(
            self,
            Self::TooLarge
                | Self::BodyTimeout
                | Self::BadBody
                | Self::StreamReset
                | Self::RateLimited(Limited {
                    scope: Scope::Ip,
                    ..
                })
        )
    }

    pub fn response(&self) -> Response<Full<Bytes>> {
        let mut res = Response::new(Full::new(self.body()));
        *res.status_mut() = self.status();
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        match self {
            Self::MethodNotAllowed => {
                h.insert(header::ALLOW, HeaderValue::from_static("POST"));
            }
            Self::RateLimited(l) => {
                h.insert(header::RETRY_AFTER, HeaderValue::from(l.retry_after));
            }
            _ => {}
        }
        if self.closes() {
            h.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_verify_failure_looks_the_same_to_the_sender() {
        let all = [
            VerifyError::MissingHeader,
            VerifyError::MalformedHeader,
            VerifyError::Mismatch,
            VerifyError::TimestampExpired,
            VerifyError::TimestampFuture,
            VerifyError::NoSecret,
        ];
        for e in all {
            let r = Rejection::Unverified(e);
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
            assert_eq!(r.body(), r#"{"error":"invalid signature"}"#);
            assert_eq!(r.response().headers().len(), 1);
        }
    }

    #[test]
    fn rate_limited_says_when_to_retry() {
        let ip = Rejection::from(Limited {
            scope: Scope::Ip,
            retry_after: 60,
        });
        let res = ip.response();
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(res.headers()[header::RETRY_AFTER], "60");
        assert_eq!(res.headers()[header::CONNECTION], "close");
        assert_eq!(ip.body(), r#"{"error":"rate limited","retry_after":60}"#);
        assert_eq!(ip.reason(), "rate_limited_ip");
        let route = Rejection::from(Limited {
            scope: Scope::Route,
            retry_after: 1,
        });
        let res = route.response();
        assert_eq!(res.headers()[header::RETRY_AFTER], "1");
        assert!(res.headers().get(header::CONNECTION).is_none());
        assert_eq!(route.reason(), "rate_limited_route");
    }

    #[test]
    fn an_event_that_cannot_be_stored_is_503() {
        let r = Rejection::StoreFailed;
        let res = r.response();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.body(), r#"{"error":"service unavailable"}"#);
        assert_eq!((r.reason(), r.outcome()), ("store", "failed"));
    }

    #[test]
    fn schema_failures() {
        let r = Rejection::from(Failure::NotJson);
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(r.body(), r#"{"error":"body is not JSON"}"#);
        let r = Rejection::from(Failure::Invalid(Box::new([Violation::new(
            "/status",
            "value is not one of \"a\" or \"b\"",
        )])));
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body: serde_json::Value = serde_json::from_slice(&r.body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"error": "schema", "violations": [
                {"pointer": "/status", "message": "value is not one of \"a\" or \"b\""}
            ]})
        );
    }
}
