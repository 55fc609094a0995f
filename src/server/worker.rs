//! One worker: an accept loop on its own listener, serving each connection with hyper
//! (HTTP/1.1 and HTTP/2, plain or TLS), and draining its connections on shutdown.
//!
//! Workers run on single-threaded runtimes, one per core: a connection, its requests and their
//! upstream connections stay on one thread, with no work stealing or cross-thread wake-ups.

use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::{idle, Shared};
use crate::gateway::{Conn, Gateway};

/// Largest request head accepted (HTTP/1 buffer, HTTP/2 header list).
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Runs a worker on a new single-threaded runtime, on the calling thread.
pub fn run_thread(
    id: usize,
    socket: std::net::TcpListener,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
) {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(run(id, socket, shared, stop)),
        Err(e) => tracing::error!(error = %e, "worker runtime failed to start"),
    }
}

/// Accepts until `stop` turns true, then drains this worker's connections within the
/// configured `shutdown_grace`. `id` names the worker in its log lines.
pub async fn run(
    id: usize,
    socket: std::net::TcpListener,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let listener = match TcpListener::from_std(socket) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "worker cannot use its listener");
            return;
        }
    };
    let builder = Arc::new(builder(shared.header_timeout));
    // Each worker sweeps its own thread's upstream pool.
    let evictor = tokio::spawn(crate::upstream::evict_idle());
    let graceful = GracefulShutdown::new();
    let stopping = async move {
        while !*stop.borrow_and_update() {
            if stop.changed().await.is_err() {
                break;
            }
        }
    };
    tokio::pin!(stopping);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut stopping => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Over its address's share: closed before a byte is read (per_ip.rs says why).
        let Some(slot) = shared.per_ip.enter(peer.ip()) else {
            shared.per_ip.refused(peer.ip(), shared.gateway.metrics());
            drop(stream);
            continue;
        };
        // The permit is taken after accept, so idle workers hold none: past `max_connections`
        // each worker keeps at most this one connection waiting, the rest wait in the backlog.
        let permit = tokio::select! {
            _ = &mut stopping => break,
            p = shared.permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let _ = stream.set_nodelay(true);
        let ctx = Serve {
            builder: builder.clone(),
            watcher: graceful.watcher(),
            gateway: shared.gateway.clone(),
            idle: shared.header_timeout,
        };
        let acceptor = shared.acceptor.clone();
        // From accept to the first request (TLS handshake included) within `header_timeout`:
        // a client that never finishes a handshake or a request head cannot hold a slot.
        let accepted = tokio::time::Instant::now();
        let deadline = accepted + shared.header_timeout;
        // Each branch's future is boxed: inline, the task would be sized for the largest (a
        // TLS handshake, then a TLS connection: 5.9 KiB), and every plain connection would
        // carry that much for its whole life instead of its own 2.1 KiB.
        tokio::spawn(async move {
            match acceptor {
                None => Box::pin(ctx.serve(stream, Conn { peer, tls: false }, accepted)).await,
                Some(acceptor) => {
                    let handshake = Box::pin(acceptor.accept(stream));
                    match tokio::time::timeout_at(deadline, handshake).await {
                        Ok(Ok(tls_stream)) => {
                            Box::pin(ctx.serve(tls_stream, Conn { peer, tls: true }, accepted))
                                .await
                        }
                        Ok(Err(e)) => tracing::debug!(error = %e, %peer, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
            drop((permit, slot));
        });
    }

    drop(listener);
    let grace_ms = shared
        .shutdown_grace_ms
        .load(std::sync::atomic::Ordering::Relaxed);
    let grace = Duration::from_millis(grace_ms);
    tracing::debug!(worker = id, ?grace, "draining in-flight requests");
    match tokio::time::timeout(grace, graceful.shutdown()).await {
        Ok(()) => tracing::debug!(worker = id, "all connections closed"),
        Err(_) => tracing::warn!(
            worker = id,
            "shutdown grace elapsed; closing remaining connections"
        ),
    }
    evictor.abort();
}

pub(super) fn builder(header_timeout: Duration) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(MAX_HEADER_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEADER_BYTES as u32)
        .max_concurrent_streams(256)
        .keep_alive_interval(Some(Duration::from_secs(30)));
    builder
}

/// What serving one connection needs, plain or TLS.
struct Serve {
    builder: Arc<auto::Builder<TokioExecutor>>,
    watcher: Watcher,
    gateway: Arc<Gateway>,
    /// A connection with no request in flight for this long is closed (`header_timeout`).
    idle: Duration,
}

impl Serve {
    /// Serves `io` until it closes, or until it has had no request in flight for `idle`: from
    /// `accepted` until the first request (hyper's own header timeout only starts once HTTP/1
    /// is detected), and between requests (HTTP/2 has no such timeout of its own).
    async fn serve<I>(self, io: I, conn_info: Conn, accepted: tokio::time::Instant)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let gw = self.gateway.clone();
        let activity = idle::Activity::new(accepted);
        let io = idle::Counted::new(io, activity.clone());
        let tracker = activity.clone();
        let service = service_fn(move |req| {
            let in_flight = tracker.begin();
            let gw = gw.clone();
            async move {
                // Boxed per request: hyper keeps the slot for this future for as long as the
                // connection lives, so an unboxed one (6.7 KiB) would cost every idle
                // keep-alive connection that much.
                let res = Box::pin(gw.handle(req, conn_info)).await;
                Ok::<_, std::convert::Infallible>(res.map(|b| idle::Tracked::new(b, in_flight)))
            }
        });
        let conn = self
            .builder
            .serve_connection(TokioIo::new(io), service)
            .into_owned();
        let conn = self.watcher.watch(conn);
        tokio::pin!(conn);
        let peer = conn_info.peer;
        let result: Result<(), Closed> = loop {
            let wake = activity
                .idle_deadline(self.idle)
                .unwrap_or_else(|| tokio::time::Instant::now() + self.idle);
            tokio::select! {
                r = &mut conn => break r.map_err(Closed::Error),
                _ = tokio::time::sleep_until(wake) => {
                    if activity
                        .idle_deadline(self.idle)
                        .is_some_and(|at| at <= tokio::time::Instant::now())
                    {
                        tracing::debug!(%peer, "no request in flight for header_timeout; closing");
                        break Err(Closed::Idle);
                    }
                }
            }
        };
        let Err(closed) = result else {
            return;
        };
        // Since the head began: the connection's start, or the end of its last request.
        let since = activity
            .idle_deadline(self.idle)
            .and_then(|at| at.checked_sub(self.idle))
            .unwrap_or(accepted);
        let timed_out = match &closed {
            Closed::Idle => true,
            Closed::Error(e) => hyper_error(&**e).is_some_and(hyper::Error::is_timeout),
        };
        // Closed for header_timeout in the middle of a request head (slowloris, a stalled
        // client): nothing was answered, so nothing else would record it. An idle connection
        // closed between requests is a normal end.
        if timed_out && activity.head_started() {
            return count_refused(&self.gateway, peer, "header_timeout", 408, since);
        }
        let Closed::Error(e) = closed else {
            return;
        };
        match refused(&*e) {
            // Answered by hyper itself, never seen by the gateway: still one line and one
            // count, so a probe with malformed requests shows up.
            Some((reason, status)) => count_refused(&self.gateway, peer, reason, status, since),
            None => tracing::debug!(error = %e, %peer, "connection ended with an error"),
        }
    }
}

/// One request refused before it reached the gateway: counted and logged as the gateway does a
/// request (route `none`). `status` is what hyper answered, or for a header timeout 408, as
/// nginx logs it (nothing is sent).
fn count_refused(
    gateway: &Gateway,
    peer: std::net::SocketAddr,
    reason: &'static str,
    status: u16,
    since: tokio::time::Instant,
) {
    gateway
        .metrics()
        .requests
        .with_label_values(&["none", "rejected", reason, "gateway"])
        .inc();
    tracing::info!(
        target: "hookgate::request",
        route = "none",
        outcome = "rejected",
        reason,
        status,
        duration_ms = crate::gateway::duration_ms(since.elapsed()),
        client_ip = %peer.ip(),
        "request"
    );
}

/// Why a connection ended other than by closing cleanly.
enum Closed {
    /// No request in flight for the idle timeout.
    Idle,
    Error(Box<dyn std::error::Error + Send + Sync>),
}

fn hyper_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a hyper::Error> {
    e.downcast_ref::<hyper::Error>()
}

/// A request that hyper refused while parsing it, answering it itself: the reason to report
/// and the status hyper sent (431 for a head over the limit, 400 for the rest).
fn refused(e: &(dyn std::error::Error + 'static)) -> Option<(&'static str, u16)> {
    let e = hyper_error(e)?;
    if e.is_parse_too_large() {
        Some(("head_too_large", 431))
    } else if e.is_parse() {
        Some(("malformed_request", 400))
    } else {
        None
    }
}
