//! Signed timestamps: strict parsing and the replay window.
//!
//! Senders put unix time in a header, a header field or the body; `float()`/`parseInt()`-style
//! parsing would accept `1.7e9` or `123abc`, so only plain ASCII digits are a timestamp here.
//! The window is symmetric: a timestamp further than the tolerance from `now` on either side is
//! refused, and exactly the tolerance passes.

use std::time::Duration;

use super::VerifyError;

/// Digits only (no sign, space, dot or exponent), fitting in a u64; else malformed.
pub(crate) fn parse_digits(s: &str) -> Result<u64, VerifyError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VerifyError::MalformedHeader);
    }
    s.parse().map_err(|_| VerifyError::MalformedHeader)
}

/// How far a signed timestamp may be from the verifier's clock (`verify.tolerance`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    tolerance_ms: u64,
}

impl Window {
    /// The default `verify.tolerance`: five minutes, as most providers' own libraries use.
    pub const DEFAULT: Duration = Duration::from_secs(300);

    pub fn new(tolerance: Duration) -> Self {
        Self {
            tolerance_ms: u64::try_from(tolerance.as_millis()).unwrap_or(u64::MAX),
        }
    }

    pub fn tolerance(self) -> Duration {
        Duration::from_millis(self.tolerance_ms)
    }

    /// `ts` and `now` in unix seconds.
    pub(crate) fn check_secs(self, ts: u64, now: u64) -> Result<(), VerifyError> {
        self.check_ms(ts.saturating_mul(1000), now.saturating_mul(1000))
    }

    /// `ts_ms` and `now_ms` in unix milliseconds (Linear).
    pub(crate) fn check_ms(self, ts_ms: u64, now_ms: u64) -> Result<(), VerifyError> {
        if now_ms > ts_ms && now_ms - ts_ms > self.tolerance_ms {
            Err(VerifyError::TimestampExpired)
        } else if ts_ms > now_ms && ts_ms - now_ms > self.tolerance_ms {
            Err(VerifyError::TimestampFuture)
        } else {
            Ok(())
        }
    }
}

impl Default for Window {
    fn default() -> Self {
        Self::new(Self::DEFAULT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_only() {
        assert_eq!(parse_digits("1705314670"), Ok(1705314670));
        assert_eq!(parse_digits("0"), Ok(0));
        for bad in [
            "",
            " 1",
            "1 ",
            "+1",
            "-1",
            "1.5",
            "1e9",
            "123abc",
            "99999999999999999999",
        ] {
            assert_eq!(
                parse_digits(bad),
                Err(VerifyError::MalformedHeader),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn symmetric_window_boundaries() {
        let w = Window::new(Duration::from_secs(300));
        let now = 1_000_000;
        assert_eq!(w.check_secs(now - 300, now), Ok(()));
        assert_eq!(w.check_secs(now + 300, now), Ok(()));
        assert_eq!(
            w.check_secs(now - 301, now),
            Err(VerifyError::TimestampExpired)
        );
        assert_eq!(
            w.check_secs(now + 301, now),
            Err(VerifyError::TimestampFuture)
        );
        // A millisecond value in a seconds field is far in the future, never an overflow.
        assert_eq!(
            w.check_secs(u64::MAX, now),
            Err(VerifyError::TimestampFuture)
        );
        assert_eq!(
            Window::new(Duration::from_secs(60)).check_ms(now * 1000 - 60_001, now * 1000),
            Err(VerifyError::TimestampExpired)
        );
    }
}
