//! Test backends: a recording hyper server whose answers a test scripts, holds and releases,
//! and free ports for backends started later.

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::WAIT;

/// A port on 127.0.0.1 where nothing listens (bound, then released). It is taken below the
/// kernel's ephemeral range, so no outgoing connection can be handed it as its source port
/// while a test waits to start a server there.
pub fn dead_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const FLOOR: u32 = 10_000;
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768);
    if low > FLOOR + 1_000 {
        let span = low - FLOOR;
        let seed = std::process::id().wrapping_mul(2_654_435_761)
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
        for _ in 0..1_000 {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let port = FLOOR + seed.wrapping_add(n.wrapping_mul(7_919)) % span;
            let port = u16::try_from(port).expect("below the ephemeral range");
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
    }
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// One request as the backend saw it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    /// Path and query, e.g. `/hooks/mc?a=1`.
    pub uri: String,
    /// The version the backend saw (`HTTP/1.1`, `HTTP/2.0`); no test checks it at present.
    #[allow(dead_code)]
    pub version: String,
    /// Every header copy, names lowercase, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    /// All values of a header (case-insensitive name).
    pub fn all(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// The single value of a header; panics if it appears more than once.
    pub fn header(&self, name: &str) -> Option<String> {
        let v = self.all(name);
        assert!(
            v.len() <= 1,
            "header {name} appears {} times: {v:?}",
            v.len()
        );
        v.into_iter().next()
    }

    /// Whether any header name matches (case-insensitive).
    pub fn has(&self, name: &str) -> bool {
        !self.all(name).is_empty()
    }
}

/// How the backend answers.
#[derive(Clone, Debug)]
pub struct Behaviour {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub delay: Duration,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: br#"{"received":true}"#.to_vec(),
            delay: Duration::ZERO,
        }
    }
}

/// A hyper server on 127.0.0.1:0 running on its own runtime thread that records requests.
pub struct Backend {
    addr: SocketAddr,
    records: Arc<Mutex<Vec<Recorded>>>,
    behaviour: Arc<Mutex<Behaviour>>,
    extras: Extras,
    count: tokio::sync::watch::Receiver<usize>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Backend {
    /// Start a backend answering 200 `{"received":true}`.
    pub fn start() -> Backend {
        Self::start_with(Behaviour::default())
    }

    /// Start a backend with a given behaviour.
    pub fn start_with(b: Behaviour) -> Backend {
        Self::start_on(0, b)
    }

    /// Start a backend on a given port of 127.0.0.1 (0: any), e.g. one a gateway was already
    /// pointed at while nothing listened there ([`dead_port`]).
    pub fn start_on(port: u16, b: Behaviour) -> Backend {
        let records: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let extras = Extras::default();
        let x2 = extras.clone();
        let behaviour = Arc::new(Mutex::new(b));
        let (count_tx, count_rx) = tokio::sync::watch::channel(0usize);
        let count_tx = Arc::new(count_tx);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (r2, b2) = (records.clone(), behaviour.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("backend runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
                    .await
                    .expect("bind");
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                let accept = async {
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            continue;
                        };
                        let (r3, b3, c3) = (r2.clone(), b2.clone(), count_tx.clone());
                        let x3 = x2.clone();
                        tokio::spawn(async move {
                            let svc = service_fn(move |req: hyper::Request<Incoming>| {
                                let (r4, b4, c4) = (r3.clone(), b3.clone(), c3.clone());
                                let x4 = x3.clone();
                                async move {
                                    Ok::<_, hyper::Error>(handle(req, r4, b4, c4, x4).await)
                                }
                            });
                            let _ =
                                hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                                    .serve_connection(TokioIo::new(stream), svc)
                                    .await;
                        });
                    }
                };
                tokio::select! {
                    _ = accept => {}
                    _ = stop_rx => {}
                }
            });
            rt.shutdown_background();
        });
        let addr = addr_rx.recv_timeout(WAIT).expect("backend address");
        Backend {
            addr,
            records,
            behaviour,
            extras,
            count: count_rx,
            stop: Some(stop_tx),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Everything recorded so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.records.lock().unwrap().clone()
    }

    /// Forget recorded requests.
    pub fn clear(&self) {
        self.records.lock().unwrap().clear();
    }

    /// Replace the behaviour.
    pub fn set(&self, b: Behaviour) {
        *self.behaviour.lock().unwrap() = b;
    }

    /// Answer the next requests with these, one each, in order; then the behaviour again.
    pub fn script(&self, answers: Vec<Behaviour>) {
        self.extras.script.lock().unwrap().extend(answers);
    }

    /// From now on, hold every request (after recording it) until [`Backend::release`].
    pub fn hold(&self) {
        *self.extras.gate.lock().unwrap() = Some(Arc::new(tokio::sync::Semaphore::new(0)));
    }

    /// Let `n` held requests (present or future) answer.
    pub fn release(&self, n: usize) {
        if let Some(g) = self.extras.gate.lock().unwrap().as_ref() {
            g.add_permits(n);
        }
    }

    /// Stop holding: every held request answers, and later ones are not held.
    pub fn unhold(&self) {
        if let Some(g) = self.extras.gate.lock().unwrap().take() {
            g.add_permits(tokio::sync::Semaphore::MAX_PERMITS / 2);
        }
    }

    /// Set only the delay.
    pub fn set_delay(&self, d: Duration) {
        self.behaviour.lock().unwrap().delay = d;
    }

    /// Wait (bounded) until at least `n` requests arrived in total since start.
    pub async fn wait_count(&self, n: usize) -> bool {
        let mut rx = self.count.clone();
        tokio::time::timeout(WAIT, rx.wait_for(|c| *c >= n))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// The only request received; panics unless exactly one arrived.
    pub fn single(&self) -> Recorded {
        let r = self.requests();
        assert_eq!(
            r.len(),
            1,
            "backend expected exactly one request, got {}",
            r.len()
        );
        r.into_iter().next().unwrap()
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Per-request answers and a gate a test controls.
#[derive(Clone, Default)]
struct Extras {
    script: Arc<Mutex<std::collections::VecDeque<Behaviour>>>,
    gate: Arc<Mutex<Option<Arc<tokio::sync::Semaphore>>>>,
}

async fn handle(
    req: hyper::Request<Incoming>,
    records: Arc<Mutex<Vec<Recorded>>>,
    behaviour: Arc<Mutex<Behaviour>>,
    count: Arc<tokio::sync::watch::Sender<usize>>,
    extras: Extras,
) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    let rec = Recorded {
        method: parts.method.to_string(),
        uri: parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| parts.uri.to_string()),
        version: format!("{:?}", parts.version),
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
    };
    records.lock().unwrap().push(rec);
    count.send_modify(|c| *c += 1);
    let scripted = extras.script.lock().unwrap().pop_front();
    let b = scripted.unwrap_or_else(|| behaviour.lock().unwrap().clone());
    let gate = extras.gate.lock().unwrap().clone();
    if let Some(g) = gate {
        if let Ok(p) = g.acquire().await {
            p.forget();
        }
    }
    if !b.delay.is_zero() {
        tokio::time::sleep(b.delay).await;
    }
    let mut resp = hyper::Response::builder().status(b.status);
    for (n, v) in &b.headers {
        resp = resp.header(n, v);
    }
    resp.body(Full::new(Bytes::from(b.body))).expect("response")
}
