//! `store.url` read as where Redis is: one server, a master watched by Sentinel, or a Cluster.
//!
//! - `redis://` / `rediss://`: one server, as the Redis crate reads it.
//! - `redis+sentinel://[user:password@]h1:26379,h2:26379/<master>[/<db>]`: the sentinels to ask
//!   for the master named `<master>`; the user and password are the master's (and its
//!   replicas'), not the sentinels'. `rediss+sentinel://`: TLS to the sentinels and the master.
//! - `redis+cluster://[user:password@]h1:6379,h2:6379`: some of the cluster's nodes (the rest are
//!   found from them); `rediss+cluster://` for TLS. A cluster has one database: no `/<db>`.
//!
//! Each node becomes a plain `redis://` URL so the Redis crate parses it (password decoding
//! included). Errors never show the URL: it may hold a password.

/// Where the store's Redis is.
#[derive(Clone, PartialEq, Eq)]
pub enum Address {
    /// One server: the URL as given.
    Single(String),
    /// A master found through Sentinel.
    Sentinel {
        /// `redis[s]://host:port` of each sentinel.
        sentinels: Vec<String>,
        /// The name the sentinels know the master by.
        master: String,
        /// `redis[s]://[auth@]host/<db>`: the master's credentials and database (its host is
        /// a placeholder: the sentinels give the real one).
        node: String,
        tls: bool,
    },
    /// A Redis Cluster: `redis[s]://[auth@]host:port` of each node given.
    Cluster { nodes: Vec<String> },
}

/// What is wrong with a `store.url`; never quotes the URL itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("must start with redis://, rediss://, redis+sentinel://, rediss+sentinel://, redis+cluster:// or rediss+cluster://; e.g. redis://127.0.0.1:6379/0")]
    Scheme,
    #[error("names no host; list them separated by commas, e.g. {0}")]
    NoHost(&'static str),
    #[error("host `{host}` has no valid port; write HOST:PORT, e.g. {example}")]
    Port { host: String, example: &'static str },
    #[error("names no master; write redis+sentinel://h1:26379,h2:26379/<master name>/<db>, e.g. redis+sentinel://h1:26379/mymaster/0")]
    NoMaster,
    #[error("`{0}` is not a database number; e.g. redis+sentinel://h1:26379/mymaster/0")]
    Db(String),
    #[error("a cluster has a single database: remove the path after the hosts")]
    ClusterPath,
    #[error("not a valid Redis URL; e.g. redis://:PASSWORD@HOST:6379/0")]
    Invalid,
}

const SENTINEL_EXAMPLE: &str = "redis+sentinel://h1:26379,h2:26379/mymaster/0";
const CLUSTER_EXAMPLE: &str = "redis+cluster://h1:6379,h2:6379";

impl Address {
    pub fn parse(url: &str) -> Result<Self, AddressError> {
        let (scheme, rest) = url.split_once("://").ok_or(AddressError::Scheme)?;
        let (tls, kind) = match scheme {
            "redis" | "rediss" => {
                redis::Client::open(url).map_err(|_| AddressError::Invalid)?;
                return Ok(Self::Single(url.to_string()));
            }
            "redis+sentinel" => (false, Kind::Sentinel),
            "rediss+sentinel" => (true, Kind::Sentinel),
            "redis+cluster" => (false, Kind::Cluster),
            "rediss+cluster" => (true, Kind::Cluster),
            _ => return Err(AddressError::Scheme),
        };
        let plain = if tls { "rediss" } else { "redis" };
        // The password may hold `@` or `/`: the hosts start after the last `@`.
        let (auth, rest) = match rest.rfind('@') {
            Some(i) => (&rest[..=i], &rest[i + 1..]),
            None => ("", rest),
        };
        let (hosts, path) = rest.split_once('/').unwrap_or((rest, ""));
        let example = kind.example();
        let default_port = kind.port();
        let mut addrs = Vec::new();
        for host in hosts.split(',').map(str::trim).filter(|h| !h.is_empty()) {
            addrs.push(host_port(host, default_port, example)?);
        }
        if addrs.is_empty() {
            return Err(AddressError::NoHost(example));
        }
        match kind {
            Kind::Sentinel => {
                let mut parts = path.splitn(2, '/');
                let master = parts.next().unwrap_or_default().to_string();
                if master.is_empty() {
                    return Err(AddressError::NoMaster);
                }
                let db = parts.next().unwrap_or("").trim_end_matches('/');
                let db = if db.is_empty() {
                    0
                } else {
                    db.parse::<u32>()
                        .map_err(|_| AddressError::Db(db.to_string()))?
                };
                let node = format!("{plain}://{auth}127.0.0.1/{db}");
                redis::Client::open(node.as_str()).map_err(|_| AddressError::Invalid)?;
                let sentinels = addrs
                    .iter()
                    .map(|a| format!("{plain}://{a}"))
                    .collect::<Vec<_>>();
                Ok(Self::Sentinel {
                    sentinels,
                    master,
                    node,
                    tls,
                })
            }
            Kind::Cluster => {
                if !path.trim_matches('/').is_empty() {
                    return Err(AddressError::ClusterPath);
                }
                let nodes = addrs
                    .iter()
                    .map(|a| format!("{plain}://{auth}{a}"))
                    .collect::<Vec<_>>();
                for n in &nodes {
                    redis::Client::open(n.as_str()).map_err(|_| AddressError::Invalid)?;
                }
                Ok(Self::Cluster { nodes })
            }
        }
    }

    /// Whether keys must carry hash tags: a Cluster runs a script only on keys of one slot.
    pub fn clustered(&self) -> bool {
        matches!(self, Self::Cluster { .. })
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Sentinel,
    Cluster,
}

impl Kind {
    fn example(self) -> &'static str {
        match self {
            Self::Sentinel => SENTINEL_EXAMPLE,
            Self::Cluster => CLUSTER_EXAMPLE,
        }
    }
    fn port(self) -> u16 {
        match self {
            Self::Sentinel => 26379,
            Self::Cluster => 6379,
        }
    }
}

/// `host:port` (the port may be left out), `[v6]:port` too.
fn host_port(host: &str, default: u16, example: &'static str) -> Result<String, AddressError> {
    let bad = || AddressError::Port {
        host: host.to_string(),
        example,
    };
    let (name, port) = if let Some(v6) = host.strip_prefix('[') {
        let (name, after) = v6.split_once(']').ok_or_else(bad)?;
        (format!("[{name}]"), after.strip_prefix(':'))
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) => (name.to_string(), Some(port)),
            None => (host.to_string(), None),
        }
    };
    let port = match port {
        None => default,
        Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(bad)?,
    };
    if name.is_empty() || name.contains(['/', '@', ' ']) {
        return Err(bad());
    }
    Ok(format!("{name}:{port}"))
}

impl std::fmt::Debug for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Single(_) => write!(f, "Address::Single(<redacted>)"),
            Self::Sentinel {
                sentinels, master, ..
            } => write!(f, "Address::Sentinel({sentinels:?}, {master})"),
            Self::Cluster { nodes } => write!(f, "Address::Cluster({} nodes)", nodes.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinel_urls() {
        let a = Address::parse("redis+sentinel://:p%40ss@h1:26380,h2/mymaster/3").unwrap();
        let Address::Sentinel {
            sentinels,
            master,
            node,
            tls,
        } = &a
        else {
            panic!("{a:?}");
        };
        assert_eq!(sentinels, &["redis://h1:26380", "redis://h2:26379"]);
        assert_eq!(master, "mymaster");
        assert_eq!(node, "redis://:p%40ss@127.0.0.1/3");
        assert!(!tls);
        assert!(!format!("{a:?}").contains("p%40ss"));
        let a = Address::parse("rediss+sentinel://[::1]:26379/m").unwrap();
        assert!(
            matches!(&a, Address::Sentinel { tls: true, sentinels, .. } if sentinels == &["rediss://[::1]:26379"])
        );
        for (url, want) in [
            ("redis+sentinel://h1:26379", AddressError::NoMaster),
            (
                "redis+sentinel:///m",
                AddressError::NoHost(SENTINEL_EXAMPLE),
            ),
            (
                "redis+sentinel://h1:26379/m/x",
                AddressError::Db("x".into()),
            ),
            (
                "redis+sentinel://h1:x/m",
                AddressError::Port {
                    host: "h1:x".into(),
                    example: SENTINEL_EXAMPLE,
                },
            ),
            ("redis+sentinal://h1/m", AddressError::Scheme),
        ] {
            assert_eq!(Address::parse(url), Err(want), "{url}");
        }
    }

    #[test]
    fn cluster_urls() {
        let a = Address::parse("redis+cluster://u:pw@a:7000, b:7001").unwrap();
        assert_eq!(
            a,
            Address::Cluster {
                nodes: vec!["redis://u:pw@a:7000".into(), "redis://u:pw@b:7001".into()]
            }
        );
        assert!(a.clustered());
        assert_eq!(
            Address::parse("redis+cluster://a:7000/1"),
            Err(AddressError::ClusterPath)
        );
        assert!(Address::parse("redis://127.0.0.1:6379/0").is_ok_and(|a| !a.clustered()));
        assert_eq!(Address::parse("http://x"), Err(AddressError::Scheme));
    }
}
