//! The names of the store's keys in Redis.
//!
//! On one server or behind Sentinel they are as they have always been (`<prefix>queue`,
//! `<prefix>dedup:<route>\0<key>`, ...), so an upgrade finds its queue where it left it. On a
//! Cluster every key carries a hash tag (the part in braces, which alone picks the slot), so
//! each script's keys share a slot:
//! - the queue's keys (stream, events, heartbeats, dead letters, id counter) and the journal's
//!   keys each share one tag, `{<prefix>queue}` and `{<prefix>journal}`: their scripts find
//!   keys as they run (an event named by a stream entry, a replica's heartbeat), so those keys
//!   must all be in the slot the script runs on;
//! - a route's dedup keys and its limit share the tag `{<prefix>route:<name>}`: the keys of one
//!   route are in one slot, and routes spread over the cluster's nodes.

/// The key layout of one store.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
    clustered: bool,
}

impl Keys {
    pub fn new(prefix: &str, clustered: bool) -> Self {
        Self {
            prefix: prefix.to_string(),
            clustered,
        }
    }

    /// Whether keys carry hash tags (a Cluster): a route's dedup key is then in another slot
    /// than the queue's.
    pub fn clustered(&self) -> bool {
        self.clustered
    }

    /// What the queue's key names start with.
    pub fn queue(&self) -> String {
        if self.clustered {
            format!("{{{}queue}}", self.prefix)
        } else {
            self.prefix.clone()
        }
    }

    /// What the journal's key names start with.
    pub fn journal(&self) -> String {
        if self.clustered {
            format!("{{{}journal}}", self.prefix)
        } else {
            format!("{}journal:", self.prefix)
        }
    }

    /// A dedup key of `route`.
    pub fn dedup(&self, route: &str, key: &str) -> String {
        if self.clustered {
            format!("{}dedup:{key}", self.route(route))
        } else {
            format!("{}dedup:{}", self.prefix, super::dedup_key(route, key))
        }
    }

    /// The fleet-wide limit bucket of `route`.
    pub fn limit(&self, route: &str) -> String {
        if self.clustered {
            format!("{}limit", self.route(route))
        } else {
            format!("{}limit:{route}", self.prefix)
        }
    }

    /// The set of paused routes (one key: any slot).
    pub fn paused(&self) -> String {
        format!("{}paused", self.prefix)
    }

    fn route(&self, route: &str) -> String {
        format!("{{{}route:{route}}}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The slot-deciding part of a key, as Redis Cluster reads it.
    fn tag(key: &str) -> &str {
        key.find('{')
            .and_then(|i| {
                let rest = &key[i + 1..];
                rest.find('}').filter(|&j| j > 0).map(|j| &rest[..j])
            })
            .unwrap_or(key)
    }

    #[test]
    fn single_server_names_are_unchanged() {
        let k = Keys::new("hookgate:", false);
        assert_eq!(k.queue(), "hookgate:");
        assert_eq!(k.journal(), "hookgate:journal:");
        assert_eq!(k.dedup("r", "k"), "hookgate:dedup:r\0k");
        assert_eq!(k.limit("r"), "hookgate:limit:r");
        assert_eq!(k.paused(), "hookgate:paused");
    }

    #[test]
    fn cluster_names_share_a_tag_per_area_and_route() {
        let k = Keys::new("hookgate:", true);
        assert_eq!(tag(&format!("{}event:12", k.queue())), "hookgate:queue");
        assert_eq!(tag(&format!("{}alive:x", k.queue())), "hookgate:queue");
        assert_eq!(tag(&format!("{}ids", k.journal())), "hookgate:journal");
        assert_eq!(tag(&k.dedup("a", "{x}")), "hookgate:route:a");
        assert_eq!(tag(&k.limit("a")), "hookgate:route:a");
        assert_ne!(tag(&k.limit("a")), tag(&k.limit("b")));
    }
}
