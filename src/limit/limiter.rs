//! The buckets of each route, and their housekeeping.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{NotUntil, RateLimiter};

use super::{key, retry_after, KeyStore, Limited, PerIp, RateLimit, Scope};

type Keyed<C> = RateLimiter<IpAddr, KeyStore, C, NoOpMiddleware<<C as Clock>::Instant>>;
type Direct<C> = RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// One route's buckets: per address, and for the route as a whole.
pub struct RouteLimiter<C: Clock = DefaultClock> {
    spec: RateLimit,
    per_ip: Option<(Keyed<C>, PerIp)>,
    route: Option<Direct<C>>,
    clock: C,
}

impl<C: Clock + Clone> RouteLimiter<C> {
    /// Buckets for `spec`, reading time from `clock`. A limit whose quota cannot be represented
    /// was refused by config validation; here it is left out rather than panicking.
    pub fn new(spec: RateLimit, clock: C) -> Self {
        let per_ip = spec.per_ip.and_then(|p| {
            let quota = p.limit.quota()?;
            let store = KeyStore::new(p.max_keys);
            Some((RateLimiter::new(quota, store, clock.clone()), p))
        });
        let route = spec
            .route
            .and_then(|l| l.quota())
            .map(|q| RateLimiter::direct_with_clock(q, clock.clone()));
        Self {
            spec,
            per_ip,
            route,
            clock,
        }
    }

    pub fn spec(&self) -> &RateLimit {
        &self.spec
    }

    /// Stage 2: one request from `ip`.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Limited> {
        let Some((limiter, p)) = &self.per_ip else {
            return Ok(());
        };
        limiter
            .check_key(&key(ip, p.ipv6_prefix))
            .map_err(|n| self.limited(Scope::Ip, &n))
    }

    /// Stage 5: one verified request.
    pub fn check_route(&self) -> Result<(), Limited> {
        let Some(limiter) = &self.route else {
            return Ok(());
        };
        limiter.check().map_err(|n| self.limited(Scope::Route, &n))
    }

    fn limited(&self, scope: Scope, not_until: &NotUntil<C::Instant>) -> Limited {
        Limited {
            scope,
            retry_after: retry_after(not_until.wait_time_from(self.clock.now())),
        }
    }

    /// Forgets addresses whose buckets are full again (indistinguishable from new ones) and
    /// returns how many are still tracked.
    pub fn sweep(&self) -> usize {
        let Some((limiter, _)) = &self.per_ip else {
            return 0;
        };
        limiter.retain_recent();
        limiter.shrink_to_fit();
        limiter.len()
    }

    /// Addresses tracked now.
    pub fn keys(&self) -> usize {
        self.per_ip.as_ref().map_or(0, |(l, _)| l.len())
    }

    /// Whether new addresses are sharing the overflow bucket.
    pub fn full(&self) -> bool {
        self.per_ip
            .as_ref()
            .is_some_and(|(l, p)| l.len() >= p.max_keys)
    }
}

/// The limiters of every route that has one, by route name.
#[derive(Default)]
pub struct Limits {
    routes: HashMap<Arc<str>, Arc<RouteLimiter>>,
}

impl Limits {
    /// Limiters for `routes`. A route whose name and limits are unchanged from `previous` (the
    /// config being replaced) keeps its buckets, so a reload does not hand out fresh bursts.
    pub fn new<'a>(
        routes: impl IntoIterator<Item = (&'a Arc<str>, &'a RateLimit)>,
        previous: Option<&Limits>,
    ) -> Self {
        let routes = routes
            .into_iter()
            .filter(|(_, spec)| !spec.is_empty())
            .map(|(name, spec)| {
                let kept = previous
                    .and_then(|p| p.routes.get(name))
                    .filter(|l| l.spec() == spec)
                    .cloned();
                let limiter = kept
                    .unwrap_or_else(|| Arc::new(RouteLimiter::new(*spec, DefaultClock::default())));
                (name.clone(), limiter)
            })
            .collect();
        Self { routes }
    }

    pub fn get(&self, route: &str) -> Option<&RouteLimiter> {
        self.routes.get(route).map(|l| &**l)
    }

    /// Stage 2 for `route`: one request from `ip`, before its body is read.
    pub fn check_ip(&self, route: &str, ip: IpAddr) -> Result<(), Limited> {
        self.get(route).map_or(Ok(()), |l| l.check_ip(ip))
    }

    /// Stage 5 for `route`: one verified request.
    pub fn check_route(&self, route: &str) -> Result<(), Limited> {
        self.get(route).map_or(Ok(()), |l| l.check_route())
    }

    /// Sweeps every route; returns `(route, addresses tracked, overflowing)` for each.
    pub fn sweep(&self) -> Vec<(Arc<str>, usize, bool)> {
        self.routes
            .iter()
            .map(|(name, l)| (name.clone(), l.sweep(), l.full()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;
    use std::time::Duration;

    use governor::clock::FakeRelativeClock;

    use super::*;
    use crate::limit::{Limit, Rate};

    fn limit(rate: &str, burst: u32) -> Limit {
        Limit {
            rate: Rate::parse(rate).unwrap(),
            burst: NonZeroU32::new(burst).unwrap(),
        }
    }

    fn per_ip(rate: &str, burst: u32, max_keys: usize) -> RateLimit {
        RateLimit {
            per_ip: Some(PerIp {
                limit: limit(rate, burst),
                max_keys,
                ipv6_prefix: 64,
            }),
            route: None,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn per_ip_burst_then_exact_retry_after() {
        let clock = FakeRelativeClock::default();
        let l = RouteLimiter::new(per_ip("1/m", 2, 100), clock.clone());
        let a = ip("192.0.2.1");
        assert_eq!(l.check_ip(a), Ok(()));
        assert_eq!(l.check_ip(a), Ok(()));
        let refused = Limited {
            scope: Scope::Ip,
            retry_after: 60,
        };
        assert_eq!(l.check_ip(a), Err(refused));
        // Another address has its own bucket.
        assert_eq!(l.check_ip(ip("192.0.2.2")), Ok(()));
        // 59.5 s later one cell is half a second away: rounded up to 1.
        clock.advance(Duration::from_millis(59_500));
        assert_eq!(
            l.check_ip(a),
            Err(Limited {
                scope: Scope::Ip,
                retry_after: 1
            })
        );
        clock.advance(Duration::from_millis(500));
        assert_eq!(l.check_ip(a), Ok(()));
        assert_eq!(l.check_ip(a), Err(refused));
    }

    #[test]
    fn per_second_rate_replenishes_one_cell_per_interval() {
        let clock = FakeRelativeClock::default();
        let l = RouteLimiter::new(per_ip("20/s", 40, 100), clock.clone());
        let a = ip("198.51.100.9");
        for i in 0..40 {
            assert_eq!(l.check_ip(a), Ok(()), "request {i} of the burst");
        }
        let e = l.check_ip(a).unwrap_err();
        assert_eq!((e.scope, e.retry_after), (Scope::Ip, 1));
        clock.advance(Duration::from_millis(50));
        assert_eq!(l.check_ip(a), Ok(()));
        assert!(l.check_ip(a).is_err());
    }

    #[test]
    fn route_limit_counts_everyone_together() {
        let clock = FakeRelativeClock::default();
        let spec = RateLimit {
            per_ip: None,
            route: Some(limit("2/s", 3)),
        };
        let l = RouteLimiter::new(spec, clock.clone());
        for _ in 0..3 {
            assert_eq!(l.check_route(), Ok(()));
        }
        assert_eq!(
            l.check_route(),
            Err(Limited {
                scope: Scope::Route,
                retry_after: 1
            })
        );
        // No per-IP limit configured: addresses are never refused, nothing is tracked.
        assert_eq!(l.check_ip(ip("192.0.2.1")), Ok(()));
        assert_eq!(l.keys(), 0);
        clock.advance(Duration::from_millis(500));
        assert_eq!(l.check_route(), Ok(()));
        assert!(l.check_route().is_err());
    }

    #[test]
    fn retry_after_for_a_long_period() {
        let clock = FakeRelativeClock::default();
        let spec = RateLimit {
            per_ip: None,
            route: Some(limit("1/h", 1)),
        };
        let l = RouteLimiter::new(spec, clock.clone());
        assert_eq!(l.check_route(), Ok(()));
        assert_eq!(l.check_route().unwrap_err().retry_after, 3600);
        clock.advance(Duration::from_secs(3599));
        assert_eq!(l.check_route().unwrap_err().retry_after, 1);
    }

    #[test]
    fn key_cap_sends_new_addresses_to_one_shared_bucket() {
        let clock = FakeRelativeClock::default();
        let l = RouteLimiter::new(per_ip("1/m", 1, 3), clock.clone());
        for i in 1..=3 {
            assert_eq!(l.check_ip(ip(&format!("10.0.0.{i}"))), Ok(()));
        }
        assert_eq!(l.keys(), 3);
        assert!(l.full());
        // Beyond the cap: the first new address takes the overflow bucket's only cell...
        assert_eq!(l.check_ip(ip("10.0.1.1")), Ok(()));
        // ...and every other new address shares that empty bucket.
        for i in 2..50 {
            assert!(l.check_ip(ip(&format!("10.0.1.{i}"))).is_err());
        }
        assert_eq!(l.keys(), 3, "the cap holds");
        // Tracked addresses keep their own buckets.
        clock.advance(Duration::from_secs(60));
        assert_eq!(l.check_ip(ip("10.0.0.1")), Ok(()));
    }

    #[test]
    fn sweep_forgets_idle_addresses_only() {
        let clock = FakeRelativeClock::default();
        let l = RouteLimiter::new(per_ip("1/s", 5, 1000), clock.clone());
        for i in 0..100 {
            assert_eq!(l.check_ip(ip(&format!("10.1.0.{i}"))), Ok(()));
        }
        assert_eq!(l.sweep(), 100, "buckets not yet full again stay");
        clock.advance(Duration::from_secs(10));
        // One address stays busy.
        for _ in 0..3 {
            let _ = l.check_ip(ip("10.1.0.7"));
        }
        assert_eq!(l.sweep(), 1);
        assert_eq!(l.keys(), 1);
        // Room again for new addresses under the cap.
        assert_eq!(l.check_ip(ip("10.2.0.1")), Ok(()));
        assert_eq!(l.keys(), 2);
    }

    #[test]
    fn swept_cap_makes_room_again() {
        let clock = FakeRelativeClock::default();
        let l = RouteLimiter::new(per_ip("1/s", 1, 2), clock.clone());
        assert_eq!(l.check_ip(ip("10.0.0.1")), Ok(()));
        assert_eq!(l.check_ip(ip("10.0.0.2")), Ok(()));
        assert!(l.full());
        clock.advance(Duration::from_secs(5));
        assert_eq!(l.sweep(), 0);
        assert!(!l.full());
        assert_eq!(l.check_ip(ip("10.0.0.3")), Ok(()));
        assert_eq!(l.keys(), 1);
    }

    #[test]
    fn ipv6_hosts_in_one_prefix_share_a_bucket() {
        let clock = FakeRelativeClock::default();
        let l = RouteLimiter::new(per_ip("1/m", 1, 100), clock);
        assert_eq!(l.check_ip(ip("2001:db8:0:1::1")), Ok(()));
        assert!(l.check_ip(ip("2001:db8:0:1::2")).is_err());
        assert_eq!(l.check_ip(ip("2001:db8:0:2::1")), Ok(()));
        assert_eq!(l.keys(), 2);
    }

    /// Route `a` with a per-IP limit of `per_ip_rate`, route `b` without limits.
    fn limits(per_ip_rate: &str, previous: Option<&Limits>) -> Limits {
        let routes: [(Arc<str>, RateLimit); 2] = [
            ("a".into(), per_ip(per_ip_rate, 1, 10_000)),
            ("b".into(), RateLimit::default()),
        ];
        Limits::new(routes.iter().map(|(n, s)| (n, s)), previous)
    }

    #[test]
    fn limits_exist_only_for_routes_that_ask() {
        let limits = limits("1/h", None);
        assert!(limits.get("a").is_some());
        assert!(limits.get("b").is_none());
        assert_eq!(limits.check_ip("b", ip("192.0.2.1")), Ok(()));
        assert_eq!(limits.check_route("b"), Ok(()));
        assert_eq!(limits.check_route("unknown"), Ok(()));
    }

    #[test]
    fn unchanged_limits_survive_a_reload_changed_ones_start_fresh() {
        let a = ip("192.0.2.1");
        let old = limits("1/h", None);
        assert_eq!(old.check_ip("a", a), Ok(()));
        assert!(old.check_ip("a", a).is_err());
        let same = limits("1/h", Some(&old));
        assert!(
            same.check_ip("a", a).is_err(),
            "a reload hands out no fresh burst"
        );
        let changed = limits("2/h", Some(&same));
        assert_eq!(changed.check_ip("a", a), Ok(()));
    }
}
