//! Rate limits (stages 2 and 5 of the request path, docs/design.md): a per-address limit checked before the body is read,
//! and a per-route limit that counts only verified requests.
//!
//! Both are GCRA buckets from `governor`. The clock is a type parameter so tests drive time by
//! hand ([`governor::clock::FakeRelativeClock`]) instead of sleeping.

mod fleet;
mod limiter;
mod store;

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::Quota;

pub use self::fleet::check_route;
pub use self::limiter::{Limits, RouteLimiter};
use self::store::KeyStore;

/// How often idle addresses are forgotten.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(10);

/// `20/s`, `600/m`, `1000/h`, or `5/10s`: `count` requests per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: NonZeroU32,
    pub per: Duration,
}

impl Rate {
    /// Parses `N/s`, `N/m`, `N/h` or `N/<duration>` (`5/10s`).
    pub fn parse(s: &str) -> Option<Self> {
        let (count, per) = s.trim().split_once('/')?;
        let count: NonZeroU32 = count.trim().parse().ok()?;
        let per = match per.trim() {
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            other => humantime::parse_duration(other).ok()?,
        };
        (!per.is_zero()).then_some(Self { count, per })
    }
}

/// One bucket's settings: a rate and how many requests may come at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub rate: Rate,
    pub burst: NonZeroU32,
}

impl Limit {
    /// The time between two requests at the steady rate, in whole microseconds (at least 1):
    /// the emission interval of the fleet's GCRA bucket.
    pub fn interval_us(&self) -> u64 {
        let interval = (self.rate.per / self.rate.count.get()).as_micros().max(1);
        u64::try_from(interval).unwrap_or(u64::MAX)
    }

    /// The governor quota, or `None` when the rate is too fine to represent (under 1ns a request).
    pub fn quota(&self) -> Option<Quota> {
        let interval = self.rate.per / self.rate.count.get();
        Quota::with_period(interval).map(|q| q.allow_burst(self.burst))
    }
}

/// The per-address limit and the bounds on the state it keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PerIp {
    pub limit: Limit,
    /// Addresses remembered at most; beyond, new addresses share one overflow bucket.
    pub max_keys: usize,
    /// IPv6 addresses are keyed by this prefix (a host usually owns a whole /64).
    pub ipv6_prefix: u8,
}

/// `routes[].rate_limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RateLimit {
    pub per_ip: Option<PerIp>,
    pub route: Option<Limit>,
}

impl RateLimit {
    pub fn is_empty(&self) -> bool {
        self.per_ip.is_none() && self.route.is_none()
    }
}

/// Which limit refused a request: the metric's `scope` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Ip,
    Route,
}

impl Scope {
    pub fn label(self) -> &'static str {
        match self {
            Self::Ip => "ip",
            Self::Route => "route",
        }
    }
}

/// A refusal: which limit, and the whole seconds (rounded up, at least 1) until a retry can pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("rate limited ({}); retry after {retry_after}s", .scope.label())]
pub struct Limited {
    pub scope: Scope,
    pub retry_after: u64,
}

/// Whole seconds, rounded up, never 0: `Retry-After: 0` would invite an immediate retry.
pub fn retry_after(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

/// The key an address is counted under: IPv4-mapped IPv6 as IPv4, IPv6 cut to its prefix.
pub fn key(ip: IpAddr, ipv6_prefix: u8) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u32::from(ipv6_prefix.clamp(1, 128));
            let mask = u128::MAX << (128 - prefix);
            IpAddr::V6((u128::from(v6) & mask).into())
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        let r = Rate::parse("20/s").unwrap();
        assert_eq!((r.count.get(), r.per), (20, Duration::from_secs(1)));
        let r = Rate::parse("600/m").unwrap();
        assert_eq!((r.count.get(), r.per), (600, Duration::from_secs(60)));
        let r = Rate::parse("5/10s").unwrap();
        assert_eq!((r.count.get(), r.per), (5, Duration::from_secs(10)));
        assert_eq!(Rate::parse("1/h").unwrap().per, Duration::from_secs(3600));
        for bad in [
            "",
            "20",
            "0/s",
            "-1/s",
            "x/s",
            "20/fortnight",
            "20/0s",
            "/s",
        ] {
            assert_eq!(Rate::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after(Duration::from_millis(1)), 1);
        assert_eq!(retry_after(Duration::ZERO), 1);
        assert_eq!(retry_after(Duration::from_secs(60)), 60);
        assert_eq!(retry_after(Duration::from_millis(59_001)), 60);
    }

    #[test]
    fn keys() {
        let k = |s: &str, p| key(s.parse().unwrap(), p).to_string();
        assert_eq!(k("192.0.2.7", 64), "192.0.2.7");
        assert_eq!(k("::ffff:192.0.2.7", 64), "192.0.2.7");
        assert_eq!(k("2001:db8:1:2:3:4:5:6", 64), "2001:db8:1:2::");
        assert_eq!(k("2001:db8:1:2:3:4:5:6", 48), "2001:db8:1::");
        assert_eq!(k("2001:db8:1:2:3:4:5:6", 128), "2001:db8:1:2:3:4:5:6");
    }

    #[test]
    fn quota_of_a_limit() {
        let l = Limit {
            rate: Rate::parse("600/m").unwrap(),
            burst: NonZeroU32::new(40).unwrap(),
        };
        let q = l.quota().unwrap();
        assert_eq!(q.replenish_interval(), Duration::from_millis(100));
        assert_eq!(q.burst_size().get(), 40);
    }
}
