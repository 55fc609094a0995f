//! Events and their metadata for tests that drive a store directly.

use bytes::Bytes;
use hookgate::store::{Event, Meta};

/// Event `n`: its header value and body are made of `n`, with a byte that is not UTF-8.
pub fn event(n: u8) -> Event {
    Event {
        path_and_query: "/up".into(),
        headers: vec![("x-n".into(), vec![n, 0xff])],
        body: Bytes::from(vec![n; 10]),
        provider: "github".into(),
        key_id: "k".into(),
        trace: None,
    }
}

/// A new event's metadata on `route`, with dedup key `key`.
pub fn meta(route: &str, key: Option<&str>) -> Meta {
    Meta {
        id: 0,
        route: route.into(),
        key: key.map(str::to_string),
        received_ms: 1_000,
        attempts: 0,
        next_ms: 1_000,
        deferred: false,
        last_error: String::new(),
    }
}
