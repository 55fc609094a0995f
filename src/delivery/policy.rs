//! `routes[].delivery` as loaded: how a route's events reach its backend.

use std::time::Duration;

use super::schedule::{Backoff, RetryOn};

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
