//! `routes[].delivery` as loaded: how a route's events reach its backend.

use std::time::Duration;

/// `routes[].delivery.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryMode {
    /// Forward and pass the backend's answer back.
    Sync,
    /// Store durably, answer 202, deliver in the background with retries.
    Queue,
    /// Forward; if the backend misses the deadline, answer 202 and keep retrying.
    Hybrid,
}

impl DeliveryMode {
    pub fn name(self) -> &'static str {
        match self {
            Self::Sync => "sync",
            Self::Queue => "queue",
            Self::Hybrid => "hybrid",
        }
    }
}

/// `routes[].delivery`.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub mode: DeliveryMode,
    /// Hybrid: how long the sender waits for the backend before getting 202.
    pub deadline: Duration,
    /// Background deliveries in flight for this route.
    pub concurrency: usize,
    /// Attempts (the first included) before an event becomes a dead letter.
    pub max_attempts: u32,
    /// Age after which an undelivered event becomes a dead letter.
    pub max_age: Duration,
    pub retry_on: RetryOn,
    pub backoff: Backoff,
}

impl Default for Delivery {
    fn default() -> Self {
        Self {
            mode: DeliveryMode::Sync,
            deadline: Duration::from_secs(8),
            concurrency: 16,
            max_attempts: 12,
            max_age: Duration::from_secs(72 * 3600),
            retry_on: RetryOn::default(),
            backoff: Backoff::default(),
        }
    }
}

/// Exponential backoff with full jitter: the wait before attempt n+1 is uniform in
/// `[0, min(max, base * 2^(n-1))]`, so senders that failed together do not retry together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            max: Duration::from_secs(600),
        }
    }
}

impl Backoff {
    /// The longest wait after `failed` attempts (1 after the first failure).
    pub fn ceiling(&self, failed: u32) -> Duration {
        let shift = failed.saturating_sub(1).min(40);
        self.base
            .checked_mul(1u32 << shift.min(31))
            .map_or(self.max, |d| d.min(self.max))
    }

    /// The wait after `failed` attempts; `unit` is a uniform random number in `[0, 1)`.
    pub fn delay(&self, failed: u32, unit: f64) -> Duration {
        self.ceiling(failed).mul_f64(unit.clamp(0.0, 1.0))
    }
}

/// One `retry_on` entry: an exact status or a class such as `5xx`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusMatch {
    Exact(u16),
    /// The hundreds digit: `5` for `5xx`.
    Class(u8),
}

impl StatusMatch {
    /// `503`, `"503"`, `"5xx"` (also `5XX`).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if let Some(d) = s.strip_suffix("xx").or_else(|| s.strip_suffix("XX")) {
            return match d.parse::<u8>() {
                Ok(c @ 1..=5) if d.len() == 1 => Some(Self::Class(c)),
                _ => None,
            };
        }
        match s.parse::<u16>() {
            Ok(n @ 100..=599) => Some(Self::Exact(n)),
            _ => None,
        }
    }

    fn matches(self, status: u16) -> bool {
        match self {
            Self::Exact(n) => n == status,
            Self::Class(c) => status / 100 == u16::from(c),
        }
    }
}

/// Which backend statuses are retried; unreachable backends and timeouts always are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryOn(pub Vec<StatusMatch>);

impl Default for RetryOn {
    /// `[408, 429, 5xx]`.
    fn default() -> Self {
        Self(vec![
            StatusMatch::Exact(408),
            StatusMatch::Exact(429),
            StatusMatch::Class(5),
        ])
    }
}

impl RetryOn {
    pub fn retries(&self, status: u16) -> bool {
        self.0.iter().any(|m| m.matches(status))
    }
}
