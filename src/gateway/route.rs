//! Stage 1: which route answers a request.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use http::Method;

use super::Rejection;
use crate::dedup::Dedup;
use crate::delivery::Delivery;
use crate::doctor::Doctor;
use crate::limit::RateLimit;
use crate::schema::Schema;
use crate::upstream::Target;
use crate::verify::Verifier;

/// (has a host, is exact, path length): larger is more specific.
type Rank = (bool, bool, usize);

/// Which request paths a route answers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RoutePath {
    Exact(String),
    /// `/hooks/*`: stored as `/hooks/`; also answers `/hooks`.
    Prefix(String),
}

/// A route's signature doctor and how many failures a minute it may examine.
#[derive(Debug, Clone)]
pub struct Diagnose {
    pub doctor: Arc<Doctor>,
    /// `verify.diagnose_per_minute` (0 means no `Diagnose` at all); also the burst.
    pub per_minute: NonZeroU32,
}

/// One `routes[]` entry as loaded: everything each stage needs for it.
#[derive(Debug, Clone)]
pub struct Route {
    pub name: Arc<str>,
    pub path: RoutePath,
    /// Lowercase host without port.
    pub host: Option<String>,
    pub upstream: Target,
    pub timeout: Duration,
    pub verifier: Verifier,
    /// The signature doctor after a failed verification; `None`: off.
    pub diagnose: Option<Diagnose>,
    /// Stages 2 and 5; empty when the route has no `rate_limit`.
    pub rate_limit: RateLimit,
    /// Stage 6; compiled when the config loads.
    pub schema: Option<Schema>,
    /// `None`: dedup is off for this route.
    pub dedup: Option<Dedup>,
    pub delivery: Delivery,
}

/// Finds the route for `path` (and `host`, when routes name one). A route with a host wins over
/// one without; an exact path wins over a prefix; the longest prefix wins among prefixes.
pub fn find(
    routes: &[Arc<Route>],
    path: &str,
    host: Option<&str>,
) -> Result<Arc<Route>, Rejection> {
    let host = host.map(strip_port);
    // Rank: a host match first, then an exact path, then the longest path.
    let mut best: Option<(&Arc<Route>, Rank)> = None;
    for r in routes {
        if let Some(h) = &r.host {
            if !host.is_some_and(|got| got.eq_ignore_ascii_case(h)) {
                continue;
            }
        }
        let rank = match &r.path {
            RoutePath::Exact(p) if p == path => (r.host.is_some(), true, p.len()),
            RoutePath::Prefix(p) if prefix_rest(p, path).is_some() => {
                (r.host.is_some(), false, p.len())
            }
            _ => continue,
        };
        if best.as_ref().is_none_or(|(_, b)| rank > *b) {
            best = Some((r, rank));
        }
    }
    best.map(|(r, _)| r.clone()).ok_or(Rejection::NotFound)
}

/// Webhooks are POSTs: another method on a known path is 405.
pub fn allow(method: &Method) -> Result<(), Rejection> {
    if method == Method::POST {
        Ok(())
    } else {
        Err(Rejection::MethodNotAllowed)
    }
}

/// For prefix `/hooks/`, the part of `path` after it: `/hooks/a/b` -> `a/b`, `/hooks` -> ``.
pub fn prefix_rest<'a>(prefix: &str, path: &'a str) -> Option<&'a str> {
    path.strip_prefix(prefix)
        .or_else(|| (path == prefix.trim_end_matches('/')).then_some(""))
}

/// The URL the sender called, for routes with `verify.public_url` (Twilio): see
/// [`crate::verify::sender_url`].
pub fn sender_url(route: &Route, uri: &http::Uri) -> Option<String> {
    let public_url = route.verifier.public_url()?;
    let rest = match &route.path {
        RoutePath::Exact(_) => "",
        RoutePath::Prefix(p) => prefix_rest(p, uri.path()).unwrap_or(""),
    };
    Some(crate::verify::sender_url(public_url, rest, uri.query()))
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        // [v6]:port
        return host.split_once(']').map_or(host, |(h, _)| &h[1..]);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

/// The upstream path for a request: the upstream's own path, plus the rest after a prefix route.
pub fn upstream_path(route: &Route, request_path: &str) -> String {
    let base = &route.upstream.path;
    match &route.path {
        RoutePath::Exact(_) => base.clone(),
        RoutePath::Prefix(p) => {
            let rest = prefix_rest(p, request_path).unwrap_or("");
            if rest.is_empty() {
                base.clone()
            } else if base.ends_with('/') {
                format!("{base}{rest}")
            } else {
                format!("{base}/{rest}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stage 1 as the pipeline runs it: the route, then the method.
    fn lookup(
        rs: &[Arc<Route>],
        method: &Method,
        path: &str,
        host: Option<&str>,
    ) -> Result<Arc<Route>, Rejection> {
        let route = find(rs, path, host)?;
        allow(method)?;
        Ok(route)
    }
    use crate::config::Config;

    fn routes() -> Vec<Arc<Route>> {
        let yaml = r#"
routes:
  - {name: a, path: /a, upstream: "http://127.0.0.1:1/up/a", verify: {scheme: github, secrets: [{id: k, value: s}]}}
  - {name: p, path: /p/*, upstream: "http://127.0.0.1:1/up", verify: {scheme: github, secrets: [{id: k, value: s}]}}
  - {name: pq, path: /p/q/*, upstream: "http://127.0.0.1:1/", verify: {scheme: github, secrets: [{id: k, value: s}]}}
  - {name: h, path: /a, host: example.com, upstream: "http://127.0.0.1:1/h", verify: {scheme: github, secrets: [{id: k, value: s}]}}
"#;
        Config::parse(yaml).unwrap().routes
    }

    fn name(r: Result<Arc<Route>, Rejection>) -> Result<String, Rejection> {
        r.map(|r| r.name.to_string())
    }

    #[test]
    fn matching() {
        let rs = routes();
        let post = Method::POST;
        assert_eq!(name(lookup(&rs, &post, "/a", None)), Ok("a".into()));
        assert_eq!(
            name(lookup(&rs, &post, "/a", Some("EXAMPLE.com:8080"))),
            Ok("h".into())
        );
        assert_eq!(name(lookup(&rs, &post, "/p/x/y", None)), Ok("p".into()));
        assert_eq!(name(lookup(&rs, &post, "/p", None)), Ok("p".into()));
        assert_eq!(name(lookup(&rs, &post, "/p/q/z", None)), Ok("pq".into()));
        assert_eq!(
            name(lookup(&rs, &post, "/px", None)),
            Err(Rejection::NotFound)
        );
        assert_eq!(
            name(lookup(&rs, &post, "/a/", None)),
            Err(Rejection::NotFound)
        );
        assert_eq!(
            name(lookup(&rs, &Method::GET, "/a", None)),
            Err(Rejection::MethodNotAllowed)
        );
        assert_eq!(
            name(lookup(&rs, &Method::GET, "/nope", None)),
            Err(Rejection::NotFound)
        );
    }

    #[test]
    fn upstream_paths() {
        let rs = routes();
        assert_eq!(upstream_path(&rs[0], "/a"), "/up/a");
        assert_eq!(upstream_path(&rs[1], "/p/x/y"), "/up/x/y");
        assert_eq!(upstream_path(&rs[1], "/p"), "/up");
        assert_eq!(upstream_path(&rs[2], "/p/q/z"), "/z");
    }
}
