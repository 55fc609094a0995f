//! A real OTLP/HTTP collector for the tracing tests: `POST /v1/traces` bodies decoded with the
//! official protobuf definitions (`opentelemetry-proto`), each span kept flat.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use prost::Message;

/// One exported span.
#[derive(Clone, Debug)]
pub struct Span {
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    pub name: String,
    /// 2 server, 3 client, 1 internal (the protobuf's `SpanKind`).
    pub kind: i32,
    pub attrs: BTreeMap<String, String>,
    /// 0 unset, 1 ok, 2 error.
    pub status: i32,
    /// Trace ids of the span's links.
    pub links: Vec<String>,
    pub resource: BTreeMap<String, String>,
}

impl Span {
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attrs.get(key).map(String::as_str)
    }
}

type Spans = Arc<(Mutex<Vec<Span>>, Condvar)>;

/// The collector, on 127.0.0.1 on its own runtime thread.
pub struct Collector {
    addr: SocketAddr,
    spans: Spans,
}

impl Collector {
    pub fn start() -> Collector {
        let spans: Spans = Arc::default();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let kept = spans.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("collector runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                while let Ok((stream, _)) = listener.accept().await {
                    let kept = kept.clone();
                    tokio::spawn(async move {
                        let svc = service_fn(move |req: hyper::Request<Incoming>| {
                            let kept = kept.clone();
                            async move { Ok::<_, hyper::Error>(receive(req, kept).await) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), svc)
                            .await;
                    });
                }
            });
        });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("collector address");
        Collector { addr, spans }
    }

    /// The base URL, as `telemetry.otlp.endpoint` takes it.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn spans(&self) -> Vec<Span> {
        self.spans.0.lock().unwrap().clone()
    }

    /// Waits (bounded by `timeout`) until some span satisfies `pred`; returns it.
    pub fn wait_span(&self, timeout: Duration, pred: impl Fn(&Span) -> bool) -> Option<Span> {
        let deadline = Instant::now() + timeout;
        let (m, cv) = &*self.spans;
        let mut g = m.lock().unwrap();
        loop {
            if let Some(s) = g.iter().find(|s| pred(s)) {
                return Some(s.clone());
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            g = cv.wait_timeout(g, deadline - now).unwrap().0;
        }
    }
}

async fn receive(req: hyper::Request<Incoming>, kept: Spans) -> hyper::Response<Full<Bytes>> {
    let answer = |status: u16| {
        let mut r = hyper::Response::new(Full::new(Bytes::new()));
        *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
        r
    };
    if req.uri().path() != "/v1/traces"
        || req.headers().get("content-type").map(|v| v.as_bytes())
            != Some(b"application/x-protobuf")
    {
        return answer(404);
    }
    let Ok(body) = req.into_body().collect().await else {
        return answer(400);
    };
    let Ok(export) = ExportTraceServiceRequest::decode(body.to_bytes()) else {
        return answer(400);
    };
    let mut got = Vec::new();
    for rs in export.resource_spans {
        let resource = rs.resource.map(|r| flat(&r.attributes)).unwrap_or_default();
        for ss in rs.scope_spans {
            for s in ss.spans {
                got.push(Span {
                    trace_id: hex::encode(&s.trace_id),
                    span_id: hex::encode(&s.span_id),
                    parent_span_id: hex::encode(&s.parent_span_id),
                    name: s.name,
                    kind: s.kind,
                    attrs: flat(&s.attributes),
                    status: s.status.map_or(0, |st| st.code),
                    links: s.links.iter().map(|l| hex::encode(&l.trace_id)).collect(),
                    resource: resource.clone(),
                });
            }
        }
    }
    let (m, cv) = &*kept;
    m.lock().unwrap().extend(got);
    cv.notify_all();
    answer(200)
}

fn flat(attrs: &[KeyValue]) -> BTreeMap<String, String> {
    attrs
        .iter()
        .map(|kv| {
            let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Any::StringValue(s)) => s.clone(),
                Some(Any::IntValue(i)) => i.to_string(),
                Some(Any::BoolValue(b)) => b.to_string(),
                Some(Any::DoubleValue(d)) => d.to_string(),
                Some(other) => format!("{other:?}"),
                None => String::new(),
            };
            (kv.key.clone(), v)
        })
        .collect()
}
