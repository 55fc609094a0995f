//! Writes that back a promise (an accepted event, a dedup mark, a dead letter), followed by
//! `WAIT` when `store.min_replicas` asks for it.
//!
//! `WAIT N timeout` answers how many replicas have acknowledged every write the *connection*
//! sent so far. So the write and its `WAIT` go as one pipeline: on the same connection, with
//! nothing between them, and never split by a reconnect (a `WAIT` on a fresh connection would
//! count nothing and pass). Those writes go over connections of their own (see
//! `RedisStore`), so a `WAIT` that blocks for `replica_timeout` holds back no dedup claim or
//! limit check queued behind it.

use redis::{Cmd, ErrorKind, FromRedisValue, Script, ServerErrorKind, ToRedisArgs};

use super::connection::Connection;
use super::settings::Replicas;
use super::StoreError;

fn backend(e: redis::RedisError) -> StoreError {
    StoreError::Backend(format!("redis: {e}"))
}

/// One write: a command, or a script with its keys and arguments.
pub enum Write<'a> {
    Command(Cmd),
    Script {
        script: &'a Script,
        keys: Vec<Vec<u8>>,
        args: Vec<Vec<u8>>,
    },
}

impl<'a> Write<'a> {
    pub fn script(script: &'a Script) -> Self {
        Self::Script {
            script,
            keys: Vec::new(),
            args: Vec::new(),
        }
    }

    pub fn key(&mut self, k: impl ToRedisArgs) -> &mut Self {
        match self {
            Self::Script { keys, .. } => k.write_redis_args(keys),
            Self::Command(c) => {
                c.arg(k);
            }
        }
        self
    }

    pub fn arg(&mut self, a: impl ToRedisArgs) -> &mut Self {
        match self {
            Self::Script { args, .. } => a.write_redis_args(args),
            Self::Command(c) => {
                c.arg(a);
            }
        }
        self
    }

    fn cmd(&self) -> Cmd {
        match self {
            Self::Command(c) => c.clone(),
            Self::Script { script, keys, args } => {
                let mut c = redis::cmd("EVALSHA");
                c.arg(script.get_hash())
                    .arg(keys.len())
                    .arg(keys.as_slice())
                    .arg(args.as_slice());
                c
            }
        }
    }

    fn script_of(&self) -> Option<&Script> {
        match self {
            Self::Script { script, .. } => Some(script),
            Self::Command(_) => None,
        }
    }
}

/// What a write answered, and whether enough replicas have it.
pub struct Written<T> {
    pub value: T,
    /// `Err(Unreplicated)` when fewer than `min_replicas` confirmed in time.
    pub replicated: Result<(), StoreError>,
}

/// Runs `write` (loading its script first if Redis does not know it) and, with
/// `replicas.min` > 0, `WAIT` right after it on the same connection.
pub async fn write<T: FromRedisValue>(
    conn: &mut Connection,
    write: &Write<'_>,
    replicas: Replicas,
) -> Result<Written<T>, StoreError> {
    let mut loaded = false;
    loop {
        let answer = if replicas.min == 0 {
            write
                .cmd()
                .query_async::<T>(conn)
                .await
                .map(|value| (value, 0))
        } else {
            let timeout_ms = u64::try_from(replicas.timeout.as_millis()).unwrap_or(u64::MAX);
            let mut pipe = redis::pipe();
            pipe.add_command(write.cmd())
                .cmd("WAIT")
                .arg(replicas.min)
                .arg(timeout_ms.max(1));
            pipe.query_async::<(T, u32)>(conn).await
        };
        match answer {
            Err(e) if !loaded && e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                let Some(script) = write.script_of() else {
                    return Err(backend(e));
                };
                script.load_async(conn).await.map_err(backend)?;
                loaded = true;
            }
            Err(e) => return Err(backend(e)),
            Ok((value, got)) => {
                let replicated = if got >= replicas.min {
                    Ok(())
                } else {
                    Err(StoreError::Unreplicated {
                        wanted: replicas.min,
                        got,
                        timeout: replicas.timeout,
                    })
                };
                return Ok(Written { value, replicated });
            }
        }
    }
}
