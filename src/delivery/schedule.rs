//! The retry schedule: which failures are retried, when, and when to give up. Pure functions of
//! the attempt's result and an injected clock and jitter, so every branch is tested without
//! waiting.

use std::time::{Duration, SystemTime};

use super::policy::Delivery;
use crate::clock::millis;

/// `Retry-After`: delay-seconds or an HTTP date, as a wait from `now`.
pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// What one delivery attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The backend answered 2xx.
    Delivered,
    /// Another status, with its `Retry-After` if it sent one.
    Status {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// No connection or no answer: always retried.
    Unreachable,
    Timeout,
}

impl Attempt {
    /// The `result` label of `hookgate_delivery_attempts_total` and the dead letter's reason.
    pub fn describe(&self) -> String {
        match self {
            Self::Delivered => "delivered".into(),
            Self::Status { status, .. } => format!("backend answered {status}"),
            Self::Unreachable => "backend unreachable".into(),
            Self::Timeout => "backend did not answer in time".into(),
        }
    }
}

/// What to do after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Done,
    /// Try again at this unix time (ms).
    Retry {
        at_ms: u64,
    },
    /// Give up: keep it as a dead letter, with why.
    Dead {
        reason: String,
    },
}

/// Decides after the `attempts`-th attempt (1-based) of an event received at `received_ms`.
/// `unit` is the jitter draw in `[0, 1)`.
pub fn decide(
    policy: &Delivery,
    result: &Attempt,
    attempts: u32,
    received_ms: u64,
    now_ms: u64,
    unit: f64,
) -> Decision {
    let hint = match result {
        Attempt::Delivered => return Decision::Done,
        Attempt::Status {
            status,
            retry_after,
        } => {
            if !policy.retry_on.retries(*status) {
                return Decision::Dead {
                    reason: format!("{} (not in retry_on)", result.describe()),
                };
            }
            *retry_after
        }
        Attempt::Unreachable | Attempt::Timeout => None,
    };
    if attempts >= policy.max_attempts {
        return Decision::Dead {
            reason: format!(
                "{} after {attempts} attempts (max_attempts)",
                result.describe()
            ),
        };
    }
    let wait = hint.unwrap_or_else(|| policy.backoff.delay(attempts, unit));
    let at_ms = now_ms.saturating_add(millis(wait));
    let expires_ms = received_ms.saturating_add(millis(policy.max_age));
    if at_ms > expires_ms {
        return Decision::Dead {
            reason: format!(
                "{}; the next attempt would be past max_age",
                result.describe()
            ),
        };
    }
    Decision::Retry { at_ms }
}

#[cfg(test)]
mod tests {
    use super::super::policy::{Backoff, RetryOn, StatusMatch};
    use super::*;

    fn policy() -> Delivery {
        Delivery {
            max_attempts: 4,
            max_age: Duration::from_secs(3600),
            backoff: Backoff {
                base: Duration::from_secs(1),
                max: Duration::from_secs(10),
            },
            ..Delivery::default()
        }
    }

    fn status(status: u16) -> Attempt {
        Attempt::Status {
            status,
            retry_after: None,
        }
    }

    #[test]
    fn ceiling_doubles_then_caps() {
        let b = policy().backoff;
        let secs: Vec<u64> = (1..=6).map(|n| b.ceiling(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 10, 10]);
        assert_eq!(b.ceiling(1000), Duration::from_secs(10));
        assert_eq!(b.delay(3, 0.5), Duration::from_secs(2));
        assert_eq!(b.delay(3, 0.0), Duration::ZERO);
    }

    #[test]
    fn full_jitter_spreads_over_the_whole_window() {
        let b = policy().backoff;
        let draws: Vec<Duration> = (0..1000).map(|_| b.delay(4, fastrand::f64())).collect();
        assert!(draws.iter().all(|d| *d <= Duration::from_secs(8)));
        assert!(draws.iter().any(|d| *d < Duration::from_secs(1)));
        assert!(draws.iter().any(|d| *d > Duration::from_secs(7)));
    }

    #[test]
    fn retry_on_matches_exact_and_classes() {
        let r = RetryOn::default();
        for s in [408, 429, 500, 502, 503, 599] {
            assert!(r.retries(s), "{s}");
        }
        for s in [200, 400, 401, 404, 409, 422] {
            assert!(!r.retries(s), "{s}");
        }
        assert_eq!(StatusMatch::parse("4xx"), Some(StatusMatch::Class(4)));
        assert_eq!(StatusMatch::parse("503"), Some(StatusMatch::Exact(503)));
        for bad in ["6xx", "0xx", "55xx", "99", "600", "abc", ""] {
            assert_eq!(StatusMatch::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(retry_after("120", now), Some(Duration::from_secs(120)));
        // 784111777 is Sun, 06 Nov 1994 08:49:37 GMT.
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon", now), None);
    }

    #[test]
    fn decisions() {
        let p = policy();
        let t0 = 1_000_000;
        assert_eq!(
            decide(&p, &Attempt::Delivered, 1, t0, t0, 0.5),
            Decision::Done
        );
        // Retryable: backoff from now, with the jitter draw.
        assert_eq!(
            decide(&p, &status(503), 2, t0, t0 + 10, 0.5),
            Decision::Retry {
                at_ms: t0 + 10 + 1000
            }
        );
        assert_eq!(
            decide(&p, &Attempt::Unreachable, 1, t0, t0, 0.999),
            Decision::Retry { at_ms: t0 + 999 }
        );
        // Retry-After wins over the backoff.
        let ra = Attempt::Status {
            status: 429,
            retry_after: Some(Duration::from_secs(7)),
        };
        assert_eq!(
            decide(&p, &ra, 1, t0, t0, 0.0),
            Decision::Retry { at_ms: t0 + 7000 }
        );
        // Not in retry_on: dead at once.
        assert!(matches!(
            decide(&p, &status(400), 1, t0, t0, 0.5),
            Decision::Dead { reason } if reason.contains("400") && reason.contains("retry_on")
        ));
        // The last attempt.
        assert!(matches!(
            decide(&p, &Attempt::Timeout, 4, t0, t0, 0.5),
            Decision::Dead { reason } if reason.contains("max_attempts")
        ));
        // The next attempt would be too old.
        let late = t0 + 3_600_000 - 500;
        assert!(matches!(
            decide(&p, &status(500), 1, t0, late, 0.9),
            Decision::Dead { reason } if reason.contains("max_age")
        ));
    }
}
