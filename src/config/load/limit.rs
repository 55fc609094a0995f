//! `routes[].rate_limit`.

use std::num::NonZeroU32;

use serde_json::Value;

use crate::config::file::{Leaf, LimitFile, PerIpFile, RateLimitFile};
use crate::limit::{Limit, PerIp, Rate, RateLimit};

use super::Validator;

impl Validator {
    pub(super) fn rate_limit(&mut self, key: &str, f: RateLimitFile) -> RateLimit {
        if f.per_ip.is_none() && f.route.is_none() {
            self.problem(
                key,
                "empty; give per_ip and/or route, e.g. {per_ip: {rate: 20/s, burst: 40}}",
            );
        }
        let limit = "a mapping such as {rate: 20/s, burst: 40}";
        let per_ip = self
            .section(&format!("{key}.per_ip"), f.per_ip, limit)
            .and_then(|p| self.per_ip(&format!("{key}.per_ip"), p));
        let route = self.section(&format!("{key}.route"), f.route, limit);
        let route = route.and_then(|l| {
            let LimitFile { rate, burst } = l;
            self.limit(&format!("{key}.route"), rate, burst)
        });
        RateLimit { per_ip, route }
    }

    pub(super) fn per_ip(&mut self, key: &str, p: PerIpFile) -> Option<PerIp> {
        let max_keys = self.count(&format!("{key}.max_keys"), p.max_keys, 100_000);
        let pkey = format!("{key}.ipv6_prefix");
        let ipv6_prefix = match p.ipv6_prefix {
            None => 64,
            Some(Value::Number(n)) => match n.as_u64() {
                Some(n @ 1..=128) => n as u8,
                _ => {
                    self.problem(
                        pkey,
                        format!("`{n}` is not a prefix length; use 1 to 128 (default 64)"),
                    );
                    64
                }
            },
            Some(other) => {
                self.wrong_type(&pkey, "a prefix length from 1 to 128", &other);
                64
            }
        };
        let limit = self.limit(key, p.rate, p.burst)?;
        Some(PerIp {
            limit,
            max_keys,
            ipv6_prefix,
        })
    }

    pub(super) fn limit(&mut self, key: &str, rate: Leaf, burst: Leaf) -> Option<Limit> {
        let rate_key = format!("{key}.rate");
        let rate = self.text(&rate_key, rate, "a rate such as 20/s");
        let rate = match rate {
            None => {
                self.problem(format!("{key}.rate"), "missing; write e.g. 20/s, 600/m or 1000/h");
                None
            }
            Some(r) => Rate::parse(&r).or_else(|| {
                self.problem(
                    format!("{key}.rate"),
                    format!("`{r}` is not a rate; write a whole number of requests per s, m, h or a duration, e.g. 20/s, 600/m, 5/10s"),
                );
                None
            }),
        };
        let burst_key = format!("{key}.burst");
        let burst = match burst {
            None => rate.map(|r| r.count),
            given => self
                .whole(
                    &burst_key,
                    given,
                    "a whole number above 0",
                    "must be a whole number above 0 (default: the rate's number)",
                )
                .map(|n| {
                    NonZeroU32::new(u32::try_from(n).unwrap_or(u32::MAX)).unwrap_or(NonZeroU32::MIN)
                }),
        };
        let limit = Limit {
            rate: rate?,
            burst: burst?,
        };
        if limit.quota().is_none() {
            self.problem(
                format!("{key}.rate"),
                "too fast to measure (more than one request a nanosecond); lower it",
            );
            return None;
        }
        Some(limit)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::testing::*;

    #[test]
    fn rate_limit_defaults() {
        let c = parse(&format!(
            "{ROUTE}    rate_limit: {{per_ip: {{rate: 600/m}}, route: {{rate: 20/s, burst: 40}}}}\n"
        ))
        .unwrap();
        let rl = c.routes[0].rate_limit;
        let p = rl.per_ip.unwrap();
        assert_eq!(p.limit.rate.count.get(), 600);
        assert_eq!(p.limit.rate.per, Duration::from_secs(60));
        assert_eq!(
            p.limit.burst.get(),
            600,
            "burst defaults to the rate's number"
        );
        assert_eq!(p.max_keys, 100_000);
        assert_eq!(p.ipv6_prefix, 64);
        let r = rl.route.unwrap();
        assert_eq!((r.rate.count.get(), r.burst.get()), (20, 40));
        assert!(parse(ROUTE).unwrap().routes[0].rate_limit.is_empty());
    }

    #[test]
    fn rate_limit_problems_all_at_once() {
        let p = problems(&format!(
            "{ROUTE}    rate_limit: {{per_ip: {{rate: 20/fortnight, burst: 0, max_keys: 0, ipv6_prefix: 129}}, route: {{burst: 3, max_keys: 3}}}}\n"
        ));
        for key in [
            "routes[0].rate_limit.per_ip.rate:",
            "routes[0].rate_limit.per_ip.burst:",
            "routes[0].rate_limit.per_ip.max_keys:",
            "routes[0].rate_limit.per_ip.ipv6_prefix:",
            "routes[0].rate_limit.route.rate: missing",
            "routes[0].rate_limit.route.max_keys: unknown key",
        ] {
            assert!(p.iter().any(|p| p.starts_with(key)), "{key} not in {p:?}");
        }
        let p = problems(&format!("{ROUTE}    rate_limit: {{}}\n"));
        assert!(p[0].starts_with("routes[0].rate_limit: empty"), "{p:?}");
        let p = problems(&format!(
            "{ROUTE}    rate_limit: {{route: {{rate: 4000000000/s}}}}\n"
        ));
        assert!(
            p[0].starts_with("routes[0].rate_limit.route.rate:"),
            "{p:?}"
        );
        let p = problems(&format!(
            "{ROUTE}    rate_limit: {{route: {{rate: 2000000000/s}}}}\n"
        ));
        assert!(p[0].contains("too fast"), "{p:?}");
    }
}
