//! Listeners, connection limits and graceful shutdown.
//!
//! One port speaks HTTP/1.1 and HTTP/2 (prior knowledge, and by ALPN under TLS). Slow clients are
//! bounded by `header_timeout` (TLS handshake, then request head) and `body_timeout` (in the
//! gateway); the number of open connections by `max_connections`, beyond which new ones wait in
//! the kernel's backlog, and by `max_connections_per_ip` per address, beyond which they are
//! closed at once. The config reloads in the background (`config::reload`).

mod admin;
mod api;
mod authz;
mod console;
mod idle;
mod listen;
mod per_ip;
pub mod tls;
mod worker;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use crate::clock::{millis, SystemClock};
use crate::config::{reload, Config};
use crate::gateway::Gateway;
use crate::metrics::Metrics;
use crate::store::AnyStore;

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
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Tracing(#[from] crate::telemetry::OtlpError),
}

/// Runs the gateway until `shutdown` resolves, then drains in-flight requests for at most
/// `server.shutdown_grace`.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), ServerError> {
    let workers = config.server.workers;
    let listeners =
        listen::bind(config.server.listen, workers).map_err(|source| ServerError::Bind {
            what: "server.listen",
            addr: config.server.listen,
            source,
        })?;
    let admin_listener = TcpListener::bind(config.admin.listen)
        .await
        .map_err(|source| ServerError::Bind {
            what: "admin.listen",
            addr: config.admin.listen,
            source,
        })?;
    // The verify-only listener, when configured; its address is fixed for the process's life.
    let authz_listener = match &config.authz {
        Some(a) => Some(
            TcpListener::bind(a.listen)
                .await
                .map_err(|source| ServerError::Bind {
                    what: "authz.listen",
                    addr: a.listen,
                    source,
                })?,
        ),
        None => None,
    };
    let authz_local = authz_listener.as_ref().and_then(|l| l.local_addr().ok());
    let local = listeners.local_addr;
    let admin_local = admin_listener
        .local_addr()
        .map_err(|source| ServerError::Bind {
            what: "admin.listen",
            addr: config.admin.listen,
            source,
        })?;

    let store = AnyStore::open(&config.store)?;
    let metrics = Metrics::new();
    // Before the first request: with tracing off, nothing of it exists.
    let tracing = match &config.otlp {
        Some(otlp) => {
            let dropped = metrics.trace_spans_dropped.clone();
            let t = crate::telemetry::install(otlp, dropped)?;
            tracing::info!(
                endpoint = otlp
                    .endpoint
                    .as_deref()
                    .unwrap_or("(OTEL_EXPORTER_OTLP_* or http://localhost:4318)"),
                trust_incoming_context = otlp.trust_incoming_context,
                "exporting traces over OTLP"
            );
            Some(t)
        }
        None => None,
    };
    let server_cfg = config.server.clone();
    // A file size limit (`ulimit -f`, systemd's LimitFSIZE=) reached by the store's file must
    // fail that write (EFBIG: the event is refused with 503, /readyz says why), not kill the
    // process, which is what SIGXFSZ does by default. Once caught, it stays caught.
    #[cfg(unix)]
    let _xfsz =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(libc::SIGXFSZ))
            .map_err(|e| tracing::warn!(error = %e, "cannot catch SIGXFSZ"));
    // TLS is on or off for the life of the listener; a reload only swaps the certificate.
    let certs = server_cfg
        .tls
        .as_ref()
        .map(|t| Arc::new(tls::CertStore::new(t.certified.clone())));
    let acceptor = certs.clone().map(tls::acceptor).transpose()?;
    let hangup = reload::Hangup::install();
    let running = config.clone();
    let gateway = Arc::new(Gateway::with_store(
        config.gateway(),
        metrics.clone(),
        store.clone(),
        Arc::new(SystemClock),
    ));
    let resumed = gateway.resume().await?;
    tracing::info!(
        kind = store.kind(),
        path = store.path().map(|p| p.display().to_string()),
        resumed,
        "store open"
    );
    let admin_token: admin::Token = Arc::new(ArcSwap::from_pointee(config.admin.token.clone()));
    let admin_task = tokio::spawn(admin::serve(
        admin_listener,
        gateway.clone(),
        admin_token.clone(),
    ));
    let sweeper = tokio::spawn(sweep_limits(gateway.clone(), crate::limit::SWEEP_INTERVAL));
    // The grace of the config in force at shutdown: a reload may change it.
    let grace = Arc::new(AtomicU64::new(millis(server_cfg.shutdown_grace)));
    let reload_task = {
        let gateway = gateway.clone();
        let grace = grace.clone();
        tokio::spawn(reload::watch(
            running,
            metrics,
            hangup,
            move |new: Config| {
                if let (Some(certs), Some(t)) = (&certs, &new.server.tls) {
                    certs.set(t.certified.clone());
                }
                grace.store(millis(new.server.shutdown_grace), Ordering::Relaxed);
                admin_token.store(Arc::new(new.admin.token.clone()));
                gateway.replace(new.gateway());
            },
        ))
    };
    // The signal handlers are registered when `shutdown` is first polled: poll it once before
    // saying "listening", or a SIGTERM right after that line would kill the process outright.
    tokio::pin!(shutdown);
    let signalled = tokio::select! {
        biased;
        _ = &mut shutdown => true,
        _ = std::future::ready(()) => false,
    };
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        listen = %local,
        admin = %admin_local,
        authz = authz_local.map(|a| a.to_string()),
        tls = acceptor.is_some(),
        workers,
        routes = %route_summary(&gateway.state().settings.routes),
        "listening"
    );

    let grace_at_stop = grace.clone();
    let shared = Arc::new(Shared {
        gateway: gateway.clone(),
        acceptor,
        permits: Arc::new(Semaphore::new(server_cfg.max_connections)),
        per_ip: per_ip::PerIp::new(server_cfg.max_connections_per_ip),
        header_timeout: server_cfg.header_timeout,
        shutdown_grace_ms: grace.clone(),
    });
    let (stop, stopped) = watch::channel(false);
    let authz_task = authz_listener.map(|listener| {
        tokio::spawn(authz::serve(
            listener,
            gateway.clone(),
            shared.permits.clone(),
            server_cfg.header_timeout,
            stopped.clone(),
            server_cfg.shutdown_grace,
        ))
    });
    let mut sockets = listeners.sockets.into_iter();
    let first = sockets.next();
    // Workers 1..n: a thread each, with its own single-threaded runtime, listener and upstream
    // pool, like nginx's worker processes. Worker 0 runs here, beside the admin listener.
    let threads: Vec<_> = sockets
        .enumerate()
        .map(|(i, socket)| {
            let shared = shared.clone();
            let stopped = stopped.clone();
            std::thread::Builder::new()
                .name(format!("hookgate-worker-{}", i + 1))
                .spawn(move || worker::run_thread(i + 1, socket, shared, stopped))
        })
        .collect::<Result<_, _>>()
        .map_err(|source| ServerError::Bind {
            what: "server.workers",
            addr: local,
            source,
        })?;
    let first = first.map(|socket| tokio::spawn(worker::run(0, socket, shared, stopped)));

    if !signalled {
        shutdown.await;
    }
    tracing::info!(
        grace = ?Duration::from_millis(grace_at_stop.load(Ordering::Relaxed)),
        "shutting down: draining in-flight requests"
    );
    let _ = stop.send(true);
    reload_task.abort();
    if let Some(first) = first {
        let _ = first.await;
    }
    if let Some(task) = authz_task {
        let _ = task.await;
    }
    // Worker threads drain on their own runtimes; wait for them off this one.
    let _ = tokio::task::spawn_blocking(move || {
        for t in threads {
            let _ = t.join();
        }
    })
    .await;
    // No admin request (a `dlq replay`) may give this process events after it handed back.
    admin_task.abort();
    // On a shared store, queued events this process holds go to the other replicas now.
    if tokio::time::timeout(HAND_BACK_TIMEOUT, gateway.engine().hand_back())
        .await
        .is_err()
    {
        tracing::warn!(
            target: "hookgate::delivery",
            "handing queued events back timed out; the other replicas adopt them after store.lease"
        );
    }
    gateway.journal().close().await;
    sweeper.abort();
    // The spans of the last requests and attempts, exported within a few seconds.
    if let Some(t) = tracing {
        let _ = tokio::task::spawn_blocking(move || t.shutdown()).await;
    }
    Ok(())
}

/// Longest wait at shutdown for handing queued events back to the other replicas: a few Redis
/// round trips, after waiting for a lease round under way; well inside a pod's grace period.
const HAND_BACK_TIMEOUT: Duration = Duration::from_secs(5);

/// What every worker shares.
pub(crate) struct Shared {
    pub gateway: Arc<Gateway>,
    pub acceptor: Option<tokio_rustls::TlsAcceptor>,
    /// `max_connections`, across all workers.
    pub permits: Arc<Semaphore>,
    /// `max_connections_per_ip`, across all workers.
    pub per_ip: Arc<per_ip::PerIp>,
    pub header_timeout: Duration,
    /// `server.shutdown_grace` in force now, in ms.
    pub shutdown_grace_ms: Arc<AtomicU64>,
}

/// Each route as `name POST path (scheme, mode)`, for the start-up line.
fn route_summary(routes: &[Arc<crate::gateway::Route>]) -> String {
    let one = |r: &Arc<crate::gateway::Route>| {
        let path = match &r.path {
            crate::gateway::RoutePath::Exact(p) => p.clone(),
            crate::gateway::RoutePath::Prefix(p) => format!("{p}*"),
        };
        let scheme = r.verifier.scheme().name();
        format!("{} {path} ({scheme}, {})", r.name, r.delivery.mode.name())
    };
    routes.iter().map(one).collect::<Vec<_>>().join("; ")
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
        let gateway = Arc::new(Gateway::new(
            Config::parse(&yaml).unwrap().gateway(),
            Metrics::new(),
        ));
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
