//! Scalars as the operator writes them: durations, sizes, counts, addresses, CIDRs.

use std::net::SocketAddr;
use std::time::Duration;

use crate::config::file::Scalar;

use super::Validator;

/// One worker per core this process may run on (CPU affinity and cgroup quota respected).
pub(super) fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `512KiB`, `1MiB`, `2MB`, `100` (bytes).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// A scalar as the operator wrote it, for messages.
pub(super) fn shown(s: &Scalar) -> String {
    match s {
        Scalar::Int(n) => n.to_string(),
        Scalar::Str(t) => t.clone(),
    }
}

impl Validator {
    pub(super) fn addr(&mut self, key: &str, s: Option<&str>, default: &str) -> SocketAddr {
        let s = s.unwrap_or(default);
        s.parse().unwrap_or_else(|_| {
            self.problem(
                key,
                format!("`{s}` is not an address; use IP:PORT, e.g. {default}"),
            );
            SocketAddr::from(([127, 0, 0, 1], 0))
        })
    }

    pub(super) fn duration(&mut self, key: &str, s: Option<String>, default_secs: u64) -> Duration {
        let Some(s) = s else {
            return Duration::from_secs(default_secs);
        };
        match humantime::parse_duration(&s) {
            Ok(d) if !d.is_zero() => d,
            _ => {
                self.problem(
                    key,
                    format!("`{s}` is not a duration; write e.g. 500ms, 9s, 5m or 24h"),
                );
                Duration::from_secs(default_secs)
            }
        }
    }

    pub(super) fn size(&mut self, key: &str, s: Option<Scalar>, default: u64) -> u64 {
        match s {
            None => default,
            Some(Scalar::Int(n)) if n > 0 => n,
            Some(Scalar::Str(ref t)) if parse_size(t).is_some_and(|n| n > 0) => {
                parse_size(t).unwrap_or(default)
            }
            Some(other) => {
                let shown = match other {
                    Scalar::Int(n) => n.to_string(),
                    Scalar::Str(t) => t,
                };
                self.problem(
                    key,
                    format!(
                        "`{shown}` is not a size; write e.g. 512KiB, 1MiB or a number of bytes"
                    ),
                );
                default
            }
        }
    }

    pub(super) fn count(&mut self, key: &str, s: Option<Scalar>, default: usize) -> usize {
        match s {
            None => default,
            Some(Scalar::Int(n)) if n > 0 => usize::try_from(n).unwrap_or(usize::MAX),
            Some(other) => {
                self.problem(
                    key,
                    format!("`{}` must be a whole number above 0", shown(&other)),
                );
                default
            }
        }
    }

    pub(super) fn cidr(&mut self, key: &str, s: &str) -> Option<ipnet::IpNet> {
        s.parse::<ipnet::IpNet>()
            .ok()
            .or_else(|| s.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
            .or_else(|| {
                self.problem(key, format!("`{s}` is not a CIDR; write e.g. 10.0.0.0/8"));
                None
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512KiB"), Some(512 * 1024));
        assert_eq!(parse_size("1MiB"), Some(1 << 20));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("1 MiB"), Some(1 << 20));
        assert_eq!(parse_size("MiB"), None);
        assert_eq!(parse_size("1XB"), None);
    }
}
