//! The store's connection to Redis, whatever the deployment: one server, a master found
//! through Sentinel, or a Cluster. One type, so the store, the queue and the journal send
//! their commands and scripts the same way (`query_async(&mut conn)`) on all three.
//!
//! Every kind connects lazily (a Redis that is down at start-up makes the process unready, not
//! dead), reconnects by itself, and bounds connecting and each answer.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisError, RedisFuture, Value};

use super::address::Address;
use super::sentinel::SentinelConnection;

/// Longest wait for a command's answer (and for a connection) before it counts as failed.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Clone)]
pub enum Connection {
    Single(ConnectionManager),
    Sentinel(SentinelConnection),
    /// Follows `MOVED` and `ASK`, and finds the slots again when they move.
    Cluster(ClusterConnection),
}

impl Connection {
    /// A connection to `address` whose answers may take up to `response_timeout`.
    pub fn open(address: &Address, response_timeout: Duration) -> Result<Self, RedisError> {
        let connect_timeout = RESPONSE_TIMEOUT;
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            .set_response_timeout(Some(response_timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        Ok(match address {
            Address::Single(url) => {
                let client = redis::Client::open(url.as_str())?;
                Self::Single(ConnectionManager::new_lazy_with_config(client, manager)?)
            }
            Address::Sentinel {
                sentinels,
                master,
                node,
                tls,
            } => Self::Sentinel(SentinelConnection::new(
                sentinels, master, node, *tls, manager,
            )?),
            Address::Cluster { nodes } => {
                let client = ClusterClient::builder(nodes.iter().map(String::as_str))
                    .retries(2)
                    .max_retry_wait(200)
                    .build()?;
                let config = ClusterConfig::new()
                    .set_connection_timeout(connect_timeout)
                    .set_response_timeout(response_timeout);
                Self::Cluster(client.get_pending_async_connection_with_config(config))
            }
        })
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Sentinel(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Sentinel(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Sentinel(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}
