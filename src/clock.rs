//! The one source of time: every stage and the delivery engine read the wall clock through a
//! [`Clock`], so tests can drive time without waiting. Pure code (`verify`, the retry schedule)
//! takes `now` as an argument instead.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Unix time in milliseconds.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> u64;

    /// Unix seconds, as signature timestamps count them.
    fn now_secs(&self) -> u64 {
        self.now_ms() / 1000
    }

    /// The same instant as a `SystemTime`, for parsing HTTP dates (`Retry-After`).
    fn now_system(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.now_ms())
    }
}

/// The wall clock; a clock before 1970 reads as 0 and fails timestamp checks.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, millis)
    }
}

/// Wall-clock unix seconds, for the command-line tools that sign requests.
pub fn unix_now() -> u64 {
    SystemClock.now_secs()
}

/// A duration in whole milliseconds, saturating.
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
