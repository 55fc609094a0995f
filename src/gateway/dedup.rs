//! Stage 7: dedup. The first copy of an event claims its key; a copy that arrives while the
//! first is being delivered gets 409 (the sender retries later), one that arrives after it
//! was delivered gets 200 `{"status":"duplicate"}`. A key is marked delivered only once the
//! backend answered 2xx or the event was stored durably, so a failed first attempt does not
//! turn the sender's retry into a "duplicate". If the store fails, dedup fails open.

use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;

use super::payload::Payload;
use super::route::Route;
use super::Rejection;
use crate::clock::millis;
use crate::dedup::{self, Dedup};
use crate::delivery::DeliveryMode;
use crate::metrics::Metrics;
use crate::store::{AnyStore, Claim, Store, StoreError};
use crate::verify::Verified;

/// How long past its holder's own deadline an unreleased dedup claim lasts: a safety net for
/// a store shared by several processes, where a crashed holder never releases.
const CLAIM_MARGIN: Duration = Duration::from_secs(30);

/// How long a claim lasts: as long as the sender may wait for the backend, plus the margin.
pub fn lease_ms(route: &Route) -> u64 {
    let busy = match route.delivery.mode {
        DeliveryMode::Sync => route.timeout,
        DeliveryMode::Hybrid => route.delivery.deadline,
        DeliveryMode::Queue => Duration::ZERO,
    };
    millis(busy + CLAIM_MARGIN)
}

/// A claim on a key, given back when dropped unless the key was marked or handed to the
/// spool: a request that ends any other way (failure, client gone) leaves no trace.
pub struct Hold {
    store: AnyStore,
    route: Arc<str>,
    key: String,
    armed: bool,
}

impl Hold {
    /// The backend answered 2xx: remember the key until `expires_ms`.
    pub async fn delivered(mut self, expires_ms: u64) -> Result<(), StoreError> {
        self.armed = false;
        self.store
            .mark_delivered(&self.route, &self.key, expires_ms)
            .await
    }

    /// The store took the key over (marked in the same commit as the spooled event).
    pub fn handed_over(mut self) {
        self.armed = false;
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        if self.armed {
            self.store.release(&self.route, &self.key);
        }
    }
}

/// The request's dedup key (logged even when the request is then refused).
pub fn key(
    route: &Route,
    config: &Dedup,
    verified: &Verified,
    headers: &HeaderMap,
    payload: &Payload,
) -> String {
    let (key, fallback) = dedup::key(
        config.key.as_ref(),
        verified,
        headers,
        payload.raw(),
        || payload.json(),
    );
    if fallback {
        tracing::debug!(route = %route.name, "dedup key template incomplete; using the body hash");
    }
    key
}

/// Claims the key; refuses duplicates. `None` when the store failed: dedup fails open.
pub async fn claim(
    store: &AnyStore,
    metrics: &Metrics,
    route: &Route,
    key: &str,
    now_ms: u64,
    lease_ms: u64,
) -> Result<Option<Hold>, Rejection> {
    match store.claim(&route.name, key, now_ms, lease_ms).await {
        Ok(Claim::New) => Ok(Some(Hold {
            store: store.clone(),
            route: route.name.clone(),
            key: key.to_string(),
            armed: true,
        })),
        Ok(dup @ (Claim::Duplicate | Claim::InFlight)) => {
            metrics.duplicates.with_label_values(&[&route.name]).inc();
            Err(if dup == Claim::Duplicate {
                Rejection::Duplicate
            } else {
                Rejection::InFlight
            })
        }
        Err(e) => {
            metrics.store_errors.with_label_values(&["claim"]).inc();
            tracing::error!(route = %route.name, error = %e, "dedup store failed; forwarding without dedup");
            Ok(None)
        }
    }
}
