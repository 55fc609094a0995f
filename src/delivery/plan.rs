//! What the engine needs of the config: each route's lane (where, how long, what policy, what
//! pace) and the headers every attempt carries. The gateway hands a new plan over at each
//! reload; an attempt runs on the plan current when it starts.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::policy::Delivery;
use crate::limit::{Limit, Limits};
use crate::secret::Secret;
use crate::upstream::{Target, Trusted};

/// One route as background delivery sees it.
#[derive(Debug, Clone)]
pub struct Lane {
    pub name: Arc<str>,
    pub target: Target,
    pub timeout: Duration,
    pub policy: Delivery,
    /// `rate_limit.route`: paces queued deliveries.
    pub limit: Option<Limit>,
}

/// Every lane, and what is common to all attempts.
pub struct Plan {
    pub lanes: HashMap<Arc<str>, Arc<Lane>>,
    pub trusted: Arc<Trusted>,
    pub attestation: Option<Secret>,
    /// This replica's route buckets, shared with the request path.
    pub limits: Arc<Limits>,
}

impl Plan {
    pub fn lane(&self, route: &str) -> Option<Arc<Lane>> {
        self.lanes.get(route).cloned()
    }
}
