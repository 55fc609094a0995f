//! Listeners, connection limits and graceful shutdown.
//!
//! One port speaks HTTP/1.1 and HTTP/2 (prior knowledge, and by ALPN under TLS). Slow clients are
//! bounded by `header_timeout` (TLS handshake, then request head) and `body_timeout` (in the
//! gateway); the number of open connections by `max_connections`, beyond which new ones wait in
//! the kernel's backlog. The config reloads in the background (`config::reload`).

mod admin;
mod idle;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::config::{reload, Config};
use crate::gateway::{Conn, Gateway};
use crate::metrics::Metrics;

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("server.tls: {0}")]
    Tls(#[from] tls::TlsError),
}

/// Largest request head accepted (HTTP/1 buffer, HTTP/2 header list).
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Runs the gateway until `shutdown` resolves, then drains in-flight requests for at most
/// `server.shutdown_grace`.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), ServerError> {
    let bind = |what, addr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind { what, addr, source })
    };
    let listener = bind("server.listen", config.server.listen).await?;
    let admin_listener = bind("admin.listen", config.admin.listen).await?;
    let local = listener.local_addr().map_err(|source| ServerError::Bind {
        what: "server.listen",
        addr: config.server.listen,
        source,
    })?;
    let admin_local = admin_listener
        .local_addr()
        .map_err(|source| ServerError::Bind {
            what: "admin.listen",
            addr: config.admin.listen,
            source,
        })?;

    let metrics = Metrics::new();
    let server_cfg = config.server.clone();
    // TLS is on or off for the life of the listener; a reload only swaps the certificate.
    let certs = server_cfg
        .tls
        .as_ref()
        .map(|t| Arc::new(tls::CertStore::new(t.certified.clone())));
    let acceptor = certs.clone().map(tls::acceptor).transpose()?;
    let hangup = reload::Hangup::install();
    let running = config.clone();
    let gateway = Arc::new(Gateway::new(config, metrics.clone()));
    let admin_task = tokio::spawn(admin::serve(admin_listener, gateway.clone()));
    let sweeper = tokio::spawn(sweep_limits(gateway.clone(), crate::limit::SWEEP_INTERVAL));
    let reload_task = {
        let gateway = gateway.clone();
        tokio::spawn(reload::watch(
            running,
            metrics,
            hangup,
            move |new: Config| {
                if let (Some(certs), Some(t)) = (&certs, &new.server.tls) {
                    certs.set(t.certified.clone());
                }
                gateway.replace(new);
            },
        ))
    };
    tracing::info!(listen = %local, admin = %admin_local, tls = acceptor.is_some(), "listening");

    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(server_cfg.header_timeout)
        .max_buf_size(MAX_HEADER_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEADER_BYTES as u32)
        .max_concurrent_streams(256)
        .keep_alive_interval(Some(Duration::from_secs(30)));
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(server_cfg.max_connections));

    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
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
        let _ = stream.set_nodelay(true);
        let ctx = Serve {
            builder: builder.clone(),
            watcher: graceful.watcher(),
            gateway: gateway.clone(),
            idle: server_cfg.header_timeout,
        };
        let acceptor = acceptor.clone();
        // From accept to the first request (TLS handshake included) within `header_timeout`:
        // a client that never finishes a handshake or a request head cannot hold a slot.
        let accepted = tokio::time::Instant::now();
        let deadline = accepted + server_cfg.header_timeout;
        tokio::spawn(async move {
            match acceptor {
                None => ctx.serve(stream, Conn { peer, tls: false }, accepted).await,
                Some(acceptor) => {
                    match tokio::time::timeout_at(deadline, acceptor.accept(stream)).await {
                        Ok(Ok(tls_stream)) => {
                            ctx.serve(tls_stream, Conn { peer, tls: true }, accepted)
                                .await
                        }
                        Ok(Err(e)) => tracing::debug!(error = %e, %peer, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
            drop(permit);
        });
    }

    drop(listener);
    reload_task.abort();
    // The grace of the config in force now: a reload may have changed it.
    let grace = gateway.state().config.server.shutdown_grace;
    tracing::info!(?grace, "shutting down: draining in-flight requests");
    match tokio::time::timeout(grace, graceful.shutdown()).await {
        Ok(()) => tracing::info!("all connections closed"),
        Err(_) => tracing::warn!("shutdown grace elapsed; closing remaining connections"),
    }
    admin_task.abort();
    sweeper.abort();
    Ok(())
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
        let gw = self.gateway;
        let activity = idle::Activity::new(accepted);
        let tracker = activity.clone();
        let service = service_fn(move |req| {
            let in_flight = tracker.begin();
            let gw = gw.clone();
            async move {
                let res = gw.handle(req, conn_info).await;
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
        let result = loop {
            let wake = activity
                .idle_deadline(self.idle)
                .unwrap_or_else(|| tokio::time::Instant::now() + self.idle);
            tokio::select! {
                r = &mut conn => break r,
                _ = tokio::time::sleep_until(wake) => {
                    if activity
                        .idle_deadline(self.idle)
                        .is_some_and(|at| at <= tokio::time::Instant::now())
                    {
                        tracing::debug!(%peer, "no request in flight for header_timeout; closing");
                        break Ok(());
                    }
                }
            }
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, %peer, "connection ended with an error");
        }
    }
}

/// Keeps the per-IP limits' memory to the addresses seen recently.
async fn sweep_limits(gateway: Arc<Gateway>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        gateway.sweep_limits();
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {},
                    _ = tokio::signal::ctrl_c() => {},
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sweeper runs on its timer: idle addresses go, busy ones stay, and the gauge says so.
    #[tokio::test]
    async fn sweeper_forgets_idle_addresses_and_publishes_the_count() {
        let route = |name: &str, rate: &str| {
            format!(
                "  - name: {name}\n    path: /{name}\n    upstream: http://127.0.0.1:9/x\n    verify: {{scheme: mediaconvert, secrets: [{{id: k, value: s}}]}}\n    rate_limit: {{per_ip: {{rate: {rate}, burst: 1}}}}\n"
            )
        };
        let yaml = format!(
            "routes:\n{}{}",
            route("slow", "1/h"),
            route("fast", "1000/s")
        );
        let gateway = Arc::new(Gateway::new(Config::parse(&yaml).unwrap(), Metrics::new()));
        let state = gateway.state();
        for i in 1..=3 {
            let ip = format!("192.0.2.{i}").parse().unwrap();
            state.limits.check_ip("slow", ip).unwrap();
            state.limits.check_ip("fast", ip).unwrap();
        }
        let sweeper = tokio::spawn(sweep_limits(gateway.clone(), Duration::from_millis(5)));
        let gauge = |route: &str| {
            gateway
                .metrics()
                .rate_limit_keys
                .with_label_values(&[route])
                .get()
        };
        let settled = tokio::time::timeout(Duration::from_secs(5), async {
            // A 1000/s bucket is full again after 1ms; a 1/h one not for an hour.
            while !(gauge("slow") == 3
                && gauge("fast") == 0
                && state.limits.get("fast").unwrap().keys() == 0)
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        sweeper.abort();
        assert!(
            settled.is_ok(),
            "slow {} fast {}",
            gauge("slow"),
            gauge("fast")
        );
        assert_eq!(state.limits.get("slow").unwrap().keys(), 3);
    }
}
