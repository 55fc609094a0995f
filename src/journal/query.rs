//! Which events a list or a bulk replay selects: the admin API's filters.

use super::entry::{parse_rfc3339, Entry};

/// The filters of `GET /api/events` and `POST /api/replay`. Empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pub route: Option<String>,
    pub outcome: Option<String>,
    pub reason: Option<String>,
    pub status: Option<u16>,
    /// Queued events' state (`dead`: the dead letters).
    pub state: Option<String>,
    /// Unix ms, inclusive.
    pub since_ms: Option<u64>,
    /// Unix ms, exclusive.
    pub until_ms: Option<u64>,
    /// The delivery id, the dedup key, or a substring of the body.
    pub text: Option<String>,
    /// Only events older than this id (the previous page's `next`).
    pub before: Option<String>,
}

impl Query {
    pub fn matches(&self, e: &Entry) -> bool {
        let eq = |want: &Option<String>, got: Option<&str>| {
            want.as_deref().is_none_or(|w| Some(w) == got)
        };
        eq(&self.route, e.route.as_deref())
            && eq(&self.outcome, Some(&e.outcome))
            && eq(&self.reason, e.reason.as_deref())
            && eq(&self.state, e.state.as_deref())
            && self.status.is_none_or(|s| s == e.status)
            && self.since_ms.is_none_or(|t| e.received_ms >= t)
            && self.until_ms.is_none_or(|t| e.received_ms < t)
            && self.before.as_deref().is_none_or(|b| e.id.as_str() < b)
            && self.text.as_deref().is_none_or(|q| text_matches(e, q))
    }
}

fn text_matches(e: &Entry, q: &str) -> bool {
    if e.delivery_id.as_deref() == Some(q) || e.dedup_key.as_deref() == Some(q) || e.id == q {
        return true;
    }
    let (Some(body), q) = (&e.body, q.as_bytes()) else {
        return false;
    };
    !q.is_empty() && body.windows(q.len()).any(|w| w == q)
}

/// `since`/`until` as the API takes them: RFC 3339, or a duration back from `now_ms` (`1h`).
pub fn parse_time(s: &str, now_ms: u64) -> Option<u64> {
    if let Some(ms) = parse_rfc3339(s) {
        return Some(ms);
    }
    let d = humantime::parse_duration(s).ok()?;
    Some(now_ms.saturating_sub(u64::try_from(d.as_millis()).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_or_a_duration_back() {
        assert_eq!(parse_time("1h", 10_000_000), Some(10_000_000 - 3_600_000));
        assert_eq!(
            parse_time("2023-11-14T22:13:20Z", 0),
            Some(1_700_000_000_000)
        );
        assert_eq!(parse_time("soon", 0), None);
    }
}
