//! A connection to the master that Sentinel names, found again after a failover.
//!
//! The sentinels are asked for the master (the Redis crate checks that the server they name
//! calls itself master), and commands then go to a [`ConnectionManager`] on it. A command that
//! fails for its connection (refused, dropped, timed out) or is refused with `READONLY` (the
//! server was demoted to a replica) marks the master stale: the next command asks the sentinels
//! again. Asking is bounded by [`RESOLVE_TIMEOUT`] and happens at most every
//! [`RESOLVE_INTERVAL`], so a fleet whose master is down does not flood the sentinels; until
//! Sentinel has promoted a replica, commands fail and the callers' fallbacks apply (503 for
//! queue routes).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{Cmd, ErrorKind, IntoConnectionInfo, Pipeline, RedisError, RedisFuture, Value};

/// Longest a lookup through the sentinels may take.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(1);
/// Least time between two lookups.
const RESOLVE_INTERVAL: Duration = Duration::from_millis(100);

#[derive(Clone)]
pub struct SentinelConnection(Arc<Shared>);

struct Shared {
    /// Held while asking the sentinels: one lookup at a time.
    client: tokio::sync::Mutex<SentinelClient>,
    state: Mutex<State>,
    config: ConnectionManagerConfig,
}

#[derive(Default)]
struct State {
    /// The master's address (as the sentinels named it) and the connection to it.
    master: Option<(String, ConnectionManager)>,
    /// The master must be asked for again before the next command.
    stale: bool,
    /// When the sentinels were last asked.
    asked: Option<Instant>,
}

impl SentinelConnection {
    /// Nothing is contacted until the first command.
    pub fn new(
        sentinels: &[String],
        master: &str,
        node: &str,
        tls: bool,
        config: ConnectionManagerConfig,
    ) -> Result<Self, RedisError> {
        let settings = node.into_connection_info()?.redis_settings().clone();
        let mut info = SentinelNodeConnectionInfo::default().set_redis_connection_info(settings);
        if tls {
            info = info.set_tls_mode(redis::TlsMode::Secure);
        }
        let client = SentinelClient::build(
            sentinels.to_vec(),
            master,
            Some(info),
            SentinelServerType::Master,
        )?;
        Ok(Self(Arc::new(Shared {
            client: tokio::sync::Mutex::new(client),
            state: Mutex::new(State {
                stale: true,
                ..State::default()
            }),
            config,
        })))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current master's connection, unless it must be looked up again.
    fn current(&self) -> Option<ConnectionManager> {
        let s = self.state();
        if s.stale {
            return None;
        }
        s.master.as_ref().map(|(_, c)| c.clone())
    }

    /// The master's connection, asking the sentinels first when it is stale.
    async fn connection(&self) -> Result<ConnectionManager, RedisError> {
        if let Some(c) = self.current() {
            return Ok(c);
        }
        let mut client = self.0.client.lock().await;
        if let Some(c) = self.current() {
            return Ok(c);
        }
        {
            let mut s = self.state();
            if s.asked.is_some_and(|t| t.elapsed() < RESOLVE_INTERVAL) {
                // Asked a moment ago: the last answer stands.
                return s.master.as_ref().map(|(_, c)| c.clone()).ok_or_else(|| {
                    RedisError::from((
                        ErrorKind::MasterNameNotFoundBySentinel,
                        "no master known yet",
                    ))
                });
            }
            s.asked = Some(Instant::now());
        }
        let found = tokio::time::timeout(RESOLVE_TIMEOUT, client.async_get_client())
            .await
            .map_err(|_| {
                RedisError::from(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the sentinels did not name a master in time",
                ))
            })??;
        let addr = found.get_connection_info().addr().to_string();
        let mut s = self.state();
        let same = s.master.as_ref().filter(|(a, _)| *a == addr);
        let conn = match same {
            Some((_, c)) => c.clone(),
            None => {
                let c = ConnectionManager::new_lazy_with_config(found, self.0.config.clone())?;
                tracing::info!(master = %addr, "Redis master found through Sentinel");
                s.master = Some((addr, c.clone()));
                c
            }
        };
        s.stale = false;
        Ok(conn)
    }

    /// The master must be looked up again before the next command (it answered as a replica).
    pub fn forget_master(&self) {
        self.state().stale = true;
    }

    /// Looks at a command's error: one that says the master is gone or demoted marks it stale.
    fn check<T>(&self, result: Result<T, RedisError>) -> Result<T, RedisError> {
        if let Err(e) = &result {
            if lost_master(e) {
                self.state().stale = true;
            }
        }
        result
    }
}

/// Whether an error means the connection's server is no longer the master to write to.
pub fn lost_master(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || matches!(
            e.kind(),
            ErrorKind::Server(redis::ServerErrorKind::ReadOnly)
                | ErrorKind::Server(redis::ServerErrorKind::MasterDown)
        )
        || e.code().is_some_and(|c| c == "READONLY")
        // A script's write refused on a replica.
        || e.to_string().contains("READONLY")
}

impl ConnectionLike for SentinelConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let mut conn = self.connection().await?;
            let result = conn.req_packed_command(cmd).await;
            self.check(result)
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let mut conn = self.connection().await?;
            let result = conn.req_packed_commands(pipeline, offset, count).await;
            self.check(result)
        })
    }

    fn get_db(&self) -> i64 {
        self.state().master.as_ref().map_or(0, |(_, c)| c.get_db())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_without_connecting_plain_and_tls() {
        for (tls, scheme) in [(false, "redis"), (true, "rediss")] {
            let sentinels = [
                format!("{scheme}://127.0.0.1:1"),
                format!("{scheme}://[::1]:2"),
            ];
            let node = format!("{scheme}://:pw@127.0.0.1/2");
            let c = SentinelConnection::new(
                &sentinels,
                "mymaster",
                &node,
                tls,
                ConnectionManagerConfig::new(),
            );
            assert!(c.is_ok(), "{scheme}");
        }
    }

    #[test]
    fn a_demoted_or_unreachable_master_is_looked_up_again() {
        let readonly = RedisError::from((
            ErrorKind::Server(redis::ServerErrorKind::ReadOnly),
            "You can't write against a read only replica.",
        ));
        assert!(lost_master(&readonly));
        let refused = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(lost_master(&refused));
        let script = RedisError::from((ErrorKind::Extension, "NOSCRIPT", "no such script".into()));
        assert!(!lost_master(&script));
    }
}
