//! Keep-alive HTTP/1.1 connections to the backends, one pool per worker thread.
//!
//! A worker's requests and their upstream connections live on the same single-threaded
//! runtime, so the pool needs no lock and no hand-off between threads: a checkout is a pop
//! from a thread-local list. A connection goes back to the pool only once the backend's answer
//! has been read to its end (see [`UpstreamBody`]), so a pooled connection is free for the next
//! request. A request that a reused connection could not even start to send (the backend
//! closed it meanwhile) is sent again on another one; nothing that may have reached the backend
//! is ever sent twice.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::uri::Authority;
use http::{HeaderValue, Request, Response, Uri};
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Idle connections are not reused after this: shorter than common backends' keep-alive
/// timeouts (Node's is 5 s), so a request is rarely written to a connection being closed.
const POOL_IDLE: Duration = Duration::from_secs(4);

/// Idle connections kept per backend and worker: enough for bursts, without keeping one per
/// client connection after a spike.
const MAX_IDLE_PER_BACKEND: usize = 256;

/// TCP keep-alive probes on upstream connections, so a backend that vanished is noticed.
const TCP_KEEPALIVE: Duration = Duration::from_secs(30);

type Sender = SendRequest<Full<Bytes>>;

struct Idle {
    sender: Sender,
    since: Instant,
}

/// Idle connections by backend, oldest first.
#[derive(Default)]
struct Pool {
    idle: HashMap<Authority, VecDeque<Idle>>,
}

thread_local! {
    static POOL: RefCell<Pool> = RefCell::default();
}

/// Why a request did not get an answer from the backend.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("upstream URL has no host")]
    NoAuthority,
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error(transparent)]
    Http(#[from] hyper::Error),
}

/// A handle on this thread's pool; the client every delivery uses.
#[derive(Debug, Clone, Copy, Default)]
pub struct UpstreamClient;

impl UpstreamClient {
    /// Sends `req` (absolute URI) to its backend on a pooled connection or a new one.
    pub async fn request(
        &self,
        mut req: Request<Full<Bytes>>,
    ) -> Result<Response<UpstreamBody>, PoolError> {
        let authority = req
            .uri()
            .authority()
            .cloned()
            .ok_or(PoolError::NoAuthority)?;
        if !req.headers().contains_key(http::header::HOST) {
            if let Ok(host) = HeaderValue::from_str(host_header(&authority)) {
                req.headers_mut().insert(http::header::HOST, host);
            }
        }
        // A server gets the origin form: `/path?query`.
        let origin = req.uri().path_and_query().cloned();
        *req.uri_mut() = origin.map_or_else(|| Uri::from_static("/"), Uri::from);
        loop {
            let (mut sender, reused) = match checkout(&authority) {
                Some(s) => (s, true),
                None => (connect(&authority).await?, false),
            };
            if let Err(e) = sender.ready().await {
                if reused {
                    continue;
                }
                return Err(e.into());
            }
            match sender.try_send_request(req).await {
                Ok(res) => {
                    let slot = Some((authority, sender));
                    return Ok(res.map(move |inner| UpstreamBody {
                        inner,
                        slot,
                        deadline: None,
                        expired: false,
                    }));
                }
                Err(mut e) => match e.take_message() {
                    // Never written: the pooled connection had closed. Try another.
                    Some(unsent) if reused => req = unsent,
                    _ => return Err(e.into_error().into()),
                },
            }
        }
    }
}

/// The Host header for `authority`, without any userinfo.
fn host_header(authority: &Authority) -> &str {
    let s = authority.as_str();
    s.rsplit_once('@').map_or(s, |(_, host)| host)
}

fn checkout(authority: &Authority) -> Option<Sender> {
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let list = pool.idle.get_mut(authority)?;
        while let Some(idle) = list.pop_back() {
            if idle.since.elapsed() < POOL_IDLE && !idle.sender.is_closed() {
                return Some(idle.sender);
            }
        }
        None
    })
}

fn checkin(authority: Authority, sender: Sender) {
    if sender.is_closed() {
        return;
    }
    // A body dropped while its thread is exiting has no pool to go back to.
    let _ = POOL.try_with(|pool| {
        let mut pool = pool.borrow_mut();
        let list = pool.idle.entry(authority).or_default();
        while list
            .front()
            .is_some_and(|idle| idle.since.elapsed() >= POOL_IDLE)
        {
            list.pop_front();
        }
        if list.len() >= MAX_IDLE_PER_BACKEND {
            list.pop_front();
        }
        list.push_back(Idle {
            sender,
            since: Instant::now(),
        });
    });
}

/// Closes this thread's pooled connections once they have been idle for [`POOL_IDLE`], so an
/// idle backend is not left holding them until its own timeout. Runs on every worker.
pub async fn evict_idle() {
    let mut tick = tokio::time::interval(POOL_IDLE);
    loop {
        tick.tick().await;
        POOL.with(|pool| {
            pool.borrow_mut().idle.retain(|_, list| {
                list.retain(|idle| idle.since.elapsed() < POOL_IDLE && !idle.sender.is_closed());
                !list.is_empty()
            });
        });
    }
}

async fn connect(authority: &Authority) -> Result<Sender, PoolError> {
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = authority.port_u16().unwrap_or(80);
    let stream = TcpStream::connect((host, port))
        .await
        .map_err(PoolError::Connect)?;
    let _ = stream.set_nodelay(true);
    let keepalive = socket2::TcpKeepalive::new().with_time(TCP_KEEPALIVE);
    let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive);
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "upstream connection ended");
        }
    });
    Ok(sender)
}

/// The backend's answer body. Once it has been read to its end, its connection goes back to
/// the pool; dropped earlier, the connection is closed. With a deadline
/// ([`UpstreamBody::with_deadline`]), a body still unfinished then ends in
/// [`UpstreamBodyError::Deadline`]: a backend that sends its headers and stalls cannot hold the
/// sender's connection (or a delivery) for ever.
pub struct UpstreamBody {
    inner: Incoming,
    slot: Option<(Authority, Sender)>,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    expired: bool,
}

/// Why the backend's answer body could not be read to its end.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamBodyError {
    #[error(transparent)]
    Backend(#[from] hyper::Error),
    #[error("the backend's answer did not end within the route's timeout")]
    Deadline,
}

impl UpstreamBody {
    /// The whole answer must have arrived by `at`.
    pub fn with_deadline(mut self, at: tokio::time::Instant) -> Self {
        self.deadline = Some(Box::pin(tokio::time::sleep_until(at)));
        self
    }

    fn release(&mut self) {
        if let Some((authority, sender)) = self.slot.take() {
            checkin(authority, sender);
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = UpstreamBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, UpstreamBodyError>>> {
        let this = self.get_mut();
        if this.expired {
            return Poll::Ready(Some(Err(UpstreamBodyError::Deadline)));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(None) => {
                this.release();
                Poll::Ready(None)
            }
            Poll::Ready(Some(frame)) => Poll::Ready(Some(frame.map_err(Into::into))),
            Poll::Pending => {
                let due = this
                    .deadline
                    .as_mut()
                    .is_some_and(|d| d.as_mut().poll(cx).is_ready());
                if !due {
                    return Poll::Pending;
                }
                // The connection is dropped with the body, never pooled half-read.
                this.expired = true;
                let upstream = this.slot.as_ref().map(|(a, _)| a.to_string());
                tracing::warn!(
                    upstream,
                    "the backend's answer body did not end within routes[].timeout; cut"
                );
                Poll::Ready(Some(Err(UpstreamBodyError::Deadline)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for UpstreamBody {
    /// An answer with nothing left to read (an empty body is never polled) frees its
    /// connection too.
    fn drop(&mut self) {
        if self.is_end_stream() {
            self.release();
        }
    }
}
