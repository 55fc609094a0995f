//! Floods the per-IP limiter with distinct source addresses and prints the process's memory
//! (VmRSS from /proc/self/status) as it goes, to show that the key cap holds it flat.
//!
//! ```text
//! cargo run --release --example limiter_flood -- [ADDRESSES] [MAX_KEYS]
//! ```
//! Defaults: 1000000 addresses, max_keys 100000 (the config default). Addresses are IPv6,
//! each in a /64 of its own so that prefix grouping does not merge them: the worst case.

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use governor::clock::DefaultClock;
use hookgate::limit::{Limit, PerIp, Rate, RateLimit, RouteLimiter};

fn status(field: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .map(|l| l[field.len()..].trim().to_string())
        })
        .unwrap_or_else(|| "n/a".into())
}

fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .nth(n)
        .map(|a| a.replace('_', "").parse().expect("a whole number"))
        .unwrap_or(default)
}

fn main() {
    let addresses = arg(1, 1_000_000);
    let max_keys = arg(2, 100_000);
    let spec = RateLimit {
        per_ip: Some(PerIp {
            limit: Limit {
                rate: Rate {
                    count: NonZeroU32::new(20).unwrap(),
                    per: Duration::from_secs(1),
                },
                burst: NonZeroU32::new(40).unwrap(),
            },
            max_keys,
            ipv6_prefix: 64,
        }),
        route: None,
    };
    println!("per_ip: 20/s burst 40, max_keys {max_keys}; {addresses} distinct /64s");
    println!("before:            VmRSS {}", status("VmRSS:"));
    let limiter = RouteLimiter::new(spec, DefaultClock::default());
    let base: u128 = 0x2001_0db8 << 96;
    let started = Instant::now();
    let (mut passed, mut refused) = (0u64, 0u64);
    let step = (addresses / 10).max(1);
    for i in 0..addresses {
        let ip = IpAddr::V6(Ipv6Addr::from(base | ((i as u128) << 64)));
        match limiter.check_ip(ip) {
            Ok(()) => passed += 1,
            Err(_) => refused += 1,
        }
        if (i + 1) % step == 0 {
            println!(
                "after {:>9}:   VmRSS {:>10}   keys {:>7}",
                i + 1,
                status("VmRSS:"),
                limiter.keys()
            );
        }
    }
    let elapsed = started.elapsed();
    println!(
        "done in {:.2}s ({:.0} checks/s): {passed} passed, {refused} refused (the overflow bucket)",
        elapsed.as_secs_f64(),
        addresses as f64 / elapsed.as_secs_f64()
    );
    println!("peak:              VmHWM {}", status("VmHWM:"));
}
