//! `sign --route NAME` and `send --route NAME`: sign as a route of a config file verifies, and
//! send where the gateway running that config answers it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::config::{Config, ConfigError};
use crate::gateway::{Route, RoutePath};
use crate::verify::{Scheme, SigningKey};

/// Why `--route` could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("{path}: {source}")]
    Config { path: String, source: ConfigError },
    #[error("no route named `{name}` in {path}; its routes: {names}")]
    Unknown {
        name: String,
        path: String,
        names: String,
    },
}

/// What a route of the config says about signing a request for it and where to send it.
pub struct RouteTarget {
    pub name: String,
    pub scheme: Scheme,
    /// The route's first shared secret; `None` when it verifies with public keys only.
    pub key: Option<SigningKey>,
    /// Where the gateway answers the route: server.listen (a wildcard address as loopback),
    /// https when server.tls is set, and the route's path (a `/*` route's prefix).
    pub url: String,
    /// twilio: `verify.public_url`, the URL the sender calls.
    pub public_url: Option<String>,
    /// The route's `host`: requests must carry it as their Host.
    pub host: Option<String>,
}

/// The config file: `-c`, else `HOOKGATE_CONFIG`, else `hookgate.yaml`, as for `run`.
fn config_path(given: Option<&Path>) -> PathBuf {
    given.map(Path::to_path_buf).unwrap_or_else(|| {
        std::env::var_os("HOOKGATE_CONFIG").map_or_else(|| "hookgate.yaml".into(), PathBuf::from)
    })
}

/// Loads the config and finds the route `name` in it.
pub fn load(config: Option<&Path>, name: &str) -> Result<RouteTarget, RouteError> {
    let path = config_path(config);
    let shown = path.display().to_string();
    let config = Config::load(&path).map_err(|source| RouteError::Config {
        path: shown.clone(),
        source,
    })?;
    let route = config
        .routes
        .iter()
        .find(|r| &*r.name == name)
        .ok_or_else(|| RouteError::Unknown {
            name: name.to_string(),
            path: shown,
            names: route_names(&config),
        })?;
    Ok(target(&config, route))
}

fn target(config: &Config, route: &Route) -> RouteTarget {
    RouteTarget {
        name: route.name.to_string(),
        scheme: route.verifier.scheme().clone(),
        key: route.verifier.signing_secret(),
        url: url(config, route),
        public_url: route.verifier.public_url().map(str::to_owned),
        host: route.host.clone(),
    }
}

fn route_names(config: &Config) -> String {
    if config.routes.is_empty() {
        return "none".into();
    }
    config
        .routes
        .iter()
        .map(|r| r.name.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The URL of `route` on the gateway that runs `config`.
fn url(config: &Config, route: &Route) -> String {
    let scheme = if config.server.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let listen = config.server.listen;
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let path = match &route.path {
        RoutePath::Exact(p) | RoutePath::Prefix(p) => p,
    };
    format!("{scheme}://{}{path}", SocketAddr::new(ip, listen.port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(yaml: &str, name: &str) -> RouteTarget {
        let config = Config::parse(yaml).unwrap();
        let route = config.routes.iter().find(|r| &*r.name == name).unwrap();
        target(&config, route)
    }

    #[test]
    fn url_from_listen_and_path() {
        let routes = r#"
routes:
  - {name: a, path: /a, upstream: "http://127.0.0.1:1/", verify: {scheme: github, secrets: [{id: k, value: s}]}}
  - {name: p, path: /p/*, host: hooks.example.com, upstream: "http://127.0.0.1:1/", verify: {scheme: github, secrets: [{id: k, value: s}]}}
"#;
        let t = of(&format!("server: {{listen: 0.0.0.0:8443}}{routes}"), "a");
        assert_eq!(t.url, "http://127.0.0.1:8443/a");
        assert_eq!(t.host, None);
        let t = of(&format!("server: {{listen: \"[::]:80\"}}{routes}"), "p");
        assert_eq!(t.url, "http://[::1]:80/p/");
        assert_eq!(t.host.as_deref(), Some("hooks.example.com"));
        let t = of(&format!("server: {{listen: 10.1.2.3:9}}{routes}"), "a");
        assert_eq!(t.url, "http://10.1.2.3:9/a");
    }
}
