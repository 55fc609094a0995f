//! `routes[]`: each route's path, host and upstream, and the problems between routes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::config::file::{RouteFile, Section};
use crate::delivery::DeliveryMode;
use crate::gateway::{Route, RoutePath};
use crate::limit::RateLimit;
use crate::store::StoreConfig;
use crate::upstream::Target as Upstream;

use super::Validator;

/// A route's path as the operator writes it.
fn written(path: &RoutePath) -> String {
    match path {
        RoutePath::Exact(p) => p.clone(),
        RoutePath::Prefix(p) => format!("{p}*"),
    }
}

impl Validator {
    /// Every route, and the problems between routes (names, paths, modes the store cannot keep).
    pub(super) fn routes(
        &mut self,
        files: Option<Vec<Section<RouteFile>>>,
        store: &StoreConfig,
    ) -> Vec<Arc<Route>> {
        let files = files.unwrap_or_default();
        if files.is_empty() {
            self.problem(
                "routes",
                "no routes; add at least one (see config.example.yaml)",
            );
        }
        let mut names = HashSet::new();
        // (host, path) -> the route that answers it: its index and name.
        let mut paths = HashMap::new();
        let mut routes = Vec::new();
        for (i, r) in files.into_iter().enumerate() {
            let key = format!("routes[{i}]");
            let expected = "a route such as {name: a, path: /a, upstream: ..., verify: ...}";
            let Some(r) = self.section(&key, Some(r), expected) else {
                continue;
            };
            if let Some(route) = self.route(&key, r) {
                if !names.insert(route.name.clone()) {
                    self.problem(
                        format!("{key}.name"),
                        format!(
                            "duplicate route name `{}`; names must be unique",
                            route.name
                        ),
                    );
                }
                let answers = (route.host.clone(), route.path.clone());
                if let Some((j, other)) = paths.get(&answers) {
                    let on_host = route
                        .host
                        .as_deref()
                        .map_or(String::new(), |h| format!(" on host {h}"));
                    self.problem(
                        format!("{key}.path"),
                        format!(
                            "duplicate path: route `{other}` (routes[{j}]) already answers {}{on_host}; change path or host",
                            written(&route.path)
                        ),
                    );
                } else {
                    paths.insert(answers, (i, route.name.clone()));
                }
                let store_refused = self.spoiled("store") || self.spoiled("store.kind");
                if route.delivery.mode != DeliveryMode::Sync && !store.durable() && !store_refused {
                    self.problem(
                        format!("{key}.delivery.mode"),
                        format!(
                            "{} mode promises that accepted events survive a restart, which needs a durable store; set store.kind: redb (and store.path), or store.kind: redis",
                            route.delivery.mode.name()
                        ),
                    );
                }
                routes.push(Arc::new(route));
            }
        }
        routes
    }

    pub(super) fn route(&mut self, key: &str, r: RouteFile) -> Option<Route> {
        let name = self.text(&format!("{key}.name"), r.name, "a name such as github");
        let path = self.text(&format!("{key}.path"), r.path, "a path such as /webhooks/a");
        let host = self.text(&format!("{key}.host"), r.host, "a host name");
        let upstream = self.text(
            &format!("{key}.upstream"),
            r.upstream,
            "a URL such as http://127.0.0.1:3000/webhooks",
        );
        let name = match name {
            Some(n)
                if !n.is_empty()
                    && n.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) =>
            {
                Some(Arc::<str>::from(n))
            }
            Some(n) => {
                self.problem(
                    format!("{key}.name"),
                    format!("`{n}` is not a usable name; use letters, digits, `-`, `_` or `.`"),
                );
                None
            }
            None => {
                self.problem(format!("{key}.name"), "missing; give the route a name");
                None
            }
        };
        let path = match path {
            Some(p) if p.starts_with('/') => match p.strip_suffix('*') {
                Some(prefix) if prefix.ends_with('/') && !prefix.contains('*') => {
                    Some(RoutePath::Prefix(prefix.to_string()))
                }
                None if !p.contains('*') => Some(RoutePath::Exact(p)),
                _ => {
                    self.problem(
                        format!("{key}.path"),
                        format!("`{p}`: `*` is only allowed as a final `/*`"),
                    );
                    None
                }
            },
            Some(p) => {
                self.problem(format!("{key}.path"), format!("`{p}` must start with `/`"));
                None
            }
            None => {
                self.problem(
                    format!("{key}.path"),
                    "missing; e.g. /webhooks/mediaconvert",
                );
                None
            }
        };
        let host = host.map(|h| h.to_ascii_lowercase());
        let upstream = self.upstream(&format!("{key}.upstream"), upstream.as_deref());
        let timeout = self.duration(&format!("{key}.timeout"), r.timeout, 9);
        let section = "a mapping of keys (see config.example.yaml)";
        let verify = self.section(
            &format!("{key}.verify"),
            r.verify,
            "a mapping such as {scheme: github, secrets: [{id: current, env: VAR}]}",
        );
        let verifier = match verify {
            Some(v) => self.verifier(&format!("{key}.verify"), v),
            None => {
                self.problem(
                    format!("{key}.verify"),
                    "missing; every route verifies signatures (e.g. {scheme: mediaconvert, secrets: [...]})",
                );
                None
            }
        };
        let rate_limit = match self.section(&format!("{key}.rate_limit"), r.rate_limit, section) {
            Some(rl) => self.rate_limit(&format!("{key}.rate_limit"), rl),
            None => RateLimit::default(),
        };
        let schema = self
            .section(&format!("{key}.schema"), r.schema, section)
            .and_then(|s| self.schema(&format!("{key}.schema"), s));
        let dedup = self
            .section(&format!("{key}.dedup"), r.dedup, section)
            .map(|d| self.dedup(&format!("{key}.dedup"), d));
        let delivery = self.section(&format!("{key}.delivery"), r.delivery, section);
        let timeout_known = (!self.spoiled(&format!("{key}.timeout"))).then_some(timeout);
        let delivery = self.delivery(&format!("{key}.delivery"), delivery, timeout_known);
        Some(Route {
            name: name?,
            path: path?,
            host,
            upstream: upstream?,
            timeout,
            verifier: verifier.as_ref()?.0.clone(),
            diagnose: verifier?.1,
            rate_limit,
            schema,
            dedup,
            delivery,
        })
    }

    pub(super) fn upstream(&mut self, key: &str, s: Option<&str>) -> Option<Upstream> {
        let Some(s) = s else {
            self.problem(key, "missing; e.g. http://127.0.0.1:3000/webhooks");
            return None;
        };
        let uri: http::Uri = match s.parse() {
            Ok(u) => u,
            Err(e) => {
                self.problem(
                    key,
                    format!("`{s}` is not a URL ({e}); e.g. http://127.0.0.1:3000/webhooks"),
                );
                return None;
            }
        };
        let (Some(scheme), Some(authority)) = (uri.scheme(), uri.authority()) else {
            self.problem(
                key,
                format!("`{s}` needs a scheme and host, e.g. http://127.0.0.1:3000/path"),
            );
            return None;
        };
        if scheme != &http::uri::Scheme::HTTP {
            self.problem(
                key,
                format!("`{s}`: only http:// upstreams are supported; hookgate sits next to the backend"),
            );
            return None;
        }
        if uri.query().is_some() {
            self.problem(
                key,
                format!(
                    "`{s}`: the upstream URL cannot carry a query; the sender's query is forwarded"
                ),
            );
            return None;
        }
        Some(Upstream {
            scheme: scheme.clone(),
            authority: authority.clone(),
            path: if uri.path().is_empty() {
                "/".into()
            } else {
                uri.path().into()
            },
        })
    }
}
