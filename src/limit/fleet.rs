//! The one route-limit decision, for intake (stage 5) and for pacing queued deliveries alike.
//!
//! On a shared store the route's bucket is the fleet's (in Redis); when Redis fails, this
//! replica's own bucket for the route decides instead, so a route stays limited (per replica)
//! through an outage.

use super::{retry_after, Limit, Limited, Limits, Scope};
use crate::metrics::Metrics;
use crate::store::AnyStore;

/// One request against `route`'s limit: `Err` says how long until it would pass.
pub async fn check_route(
    store: &AnyStore,
    local: &Limits,
    route: &str,
    limit: Option<&Limit>,
    metrics: &Metrics,
) -> Result<(), Limited> {
    let (Some(redis), Some(limit)) = (store.redis(), limit) else {
        return local.check_route(route);
    };
    match redis
        .check_route(route, limit.interval_us(), limit.burst.get())
        .await
    {
        Ok(None) => Ok(()),
        Ok(Some(wait)) => Err(Limited {
            scope: Scope::Route,
            retry_after: retry_after(wait),
        }),
        Err(e) => {
            metrics.store_errors.with_label_values(&["limit"]).inc();
            tracing::warn!(route, error = %e, "fleet rate limit unavailable; using this replica's own");
            local.check_route(route)
        }
    }
}
