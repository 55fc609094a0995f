//! Scalars as the operator writes them: durations, sizes, counts, addresses, CIDRs.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;

use crate::config::file::Leaf;

use super::Validator;

/// One worker per core this process may run on (CPU affinity and cgroup quota respected).
pub(super) fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A size: a whole number of bytes, or a whole number and a unit in any case, with or without
/// a space between: `b`, decimal `kb`, `mb`, `gb` (10^3, 10^6, 10^9) or binary `kib`, `mib`,
/// `gib` (2^10, 2^20, 2^30). `512KiB`, `1MiB`, `2MB`, `1 mb`, `100` (bytes).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit.trim_start().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

impl Validator {
    pub(super) fn addr(&mut self, key: &str, v: Leaf, default: &str) -> SocketAddr {
        let fallback = || SocketAddr::from(([127, 0, 0, 1], 0));
        let Some(s) = self.text(key, v, &format!("an address such as {default}")) else {
            return default.parse().unwrap_or_else(|_| fallback());
        };
        s.parse().unwrap_or_else(|_| {
            self.problem(
                key,
                format!("`{s}` is not an address; use IP:PORT, e.g. {default}"),
            );
            fallback()
        })
    }

    pub(super) fn duration(&mut self, key: &str, v: Leaf, default_secs: u64) -> Duration {
        let default = Duration::from_secs(default_secs);
        let Some(s) = self.text(key, v, "a duration such as 9s") else {
            return default;
        };
        match humantime::parse_duration(&s) {
            Ok(d) if !d.is_zero() => d,
            Ok(_) => {
                self.problem(
                    key,
                    format!(
                        "`{s}`: zero is not allowed here; give a duration above zero, e.g. {}",
                        humantime::format_duration(default)
                    ),
                );
                default
            }
            Err(_) => {
                self.problem(
                    key,
                    format!("`{s}` is not a duration; write e.g. 500ms, 9s, 5m or 24h"),
                );
                default
            }
        }
    }

    pub(super) fn size(&mut self, key: &str, v: Leaf, default: u64) -> u64 {
        let size = match v {
            None => return default,
            Some(_) if self.spoiled(key) => return default,
            Some(Value::Number(n)) => n.as_u64().ok_or(n.to_string()),
            Some(Value::String(s)) => parse_size(&s).ok_or(s),
            Some(other) => {
                self.wrong_type(key, "a size such as 1MiB or a number of bytes", &other);
                return default;
            }
        };
        match size {
            Ok(0) => {
                self.problem(
                    key,
                    "`0`: zero is not allowed here; give a size above zero, e.g. 1MiB",
                );
                default
            }
            Ok(n) => n,
            Err(shown) => {
                self.problem(
                    key,
                    format!(
                        "`{shown}` is not a size; write a whole number of bytes, or one with a unit: kB, MB, GB (powers of 1000) or KiB, MiB, GiB (powers of 1024), e.g. 512KiB"
                    ),
                );
                default
            }
        }
    }

    pub(super) fn count(&mut self, key: &str, v: Leaf, default: usize) -> usize {
        self.whole(
            key,
            v,
            "a whole number above 0",
            "must be a whole number above 0",
        )
        .map_or(default, |n| usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// A whole number above 0; `None` when absent or wrong (reported with `refusal` after
    /// the number as written).
    pub(super) fn whole(
        &mut self,
        key: &str,
        v: Leaf,
        expected: &str,
        refusal: &str,
    ) -> Option<u64> {
        match v? {
            _ if self.spoiled(key) => None,
            Value::Number(n) => match n.as_u64() {
                Some(n) if n > 0 => Some(n),
                _ => {
                    self.problem(key, format!("`{n}` {refusal}"));
                    None
                }
            },
            other => {
                self.wrong_type(key, expected, &other);
                None
            }
        }
    }

    pub(super) fn cidr(&mut self, key: &str, v: Value) -> Option<ipnet::IpNet> {
        let s = self.text(key, Some(v), "a CIDR such as 10.0.0.0/8")?;
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

    /// Units in any case: decimal kB, MB, GB and binary KiB, MiB, GiB, with or without a
    /// space.
    #[test]
    fn size_units_in_any_case() {
        for (text, n) in [
            ("1mb", 1_000_000),
            ("1MB", 1_000_000),
            ("1 Mb", 1_000_000),
            ("2kb", 2_000),
            ("2KB", 2_000),
            ("3gb", 3_000_000_000),
            ("1mib", 1 << 20),
            ("1 MIB", 1 << 20),
            ("4kib", 4 << 10),
            ("1gib", 1 << 30),
            ("7b", 7),
            ("7 B", 7),
        ] {
            assert_eq!(parse_size(text), Some(n), "{text}");
        }
        for text in ["1m", "1k", "1 mbyte", "1tb", "1.5mb", "-1mb", "mb", ""] {
            assert_eq!(parse_size(text), None, "{text}");
        }
    }

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
