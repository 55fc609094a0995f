//! The names of the store's keys in Redis, and the one place that decides how they differ
//! between one server (or Sentinel) and a Cluster.
//!
//! On one server or behind Sentinel they are as they have always been (`<prefix>queue`,
//! `<prefix>dedup:<route>\0<key>`, ...): one queue holds every route's events, so an upgrade
//! finds its queue where it left it. On a Cluster every key carries a hash tag (the part in
//! braces, which alone picks the slot), so each script's keys share a slot:
//! - everything of one route shares the tag `{<prefix>route:<name>}`: its dedup keys, its
//!   limit and its own queue (stream, events, heartbeats, dead letters, dead count). The queue's
//!   scripts find keys as they run (an event named by a stream entry, a replica's heartbeat),
//!   so those keys must be in the slot the script runs on; and one slot per route lets an
//!   event and its dedup mark be written by one script, while routes spread over the nodes;
//! - the event id counter has a tag of its own, `{<prefix>seq}`: ids stay unique across
//!   routes, as the store addresses events by id;
//! - `<prefix>routes` lists the routes that ever had a queue, so the fleet walks every
//!   route's queue, those of routes removed from the configuration since included;
//! - the journal's keys share the tag `{<prefix>journal}`.

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

    /// What the queue keys holding `route`'s events start with: the prefix itself on one
    /// server (one queue for every route), the route's tag on a Cluster (a queue per route).
    pub fn queue(&self, route: &str) -> String {
        if self.clustered {
            self.route(route)
        } else {
            self.prefix.clone()
        }
    }

    /// The event id counter, shared by every route. On one server the enqueue script
    /// increments it; on a Cluster it is in a slot of its own, incremented just before.
    pub fn seq(&self) -> String {
        if self.clustered {
            format!("{{{}seq}}", self.prefix)
        } else {
            format!("{}seq", self.prefix)
        }
    }

    /// The set of routes that ever had a queue, when each route has its own (a Cluster):
    /// `None` when one queue holds every route.
    pub fn routes(&self) -> Option<String> {
        self.clustered.then(|| format!("{}routes", self.prefix))
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
        assert_eq!(k.queue("a"), "hookgate:");
        assert_eq!(k.queue("b"), "hookgate:");
        assert_eq!(k.seq(), "hookgate:seq");
        assert_eq!(k.routes(), None);
        assert_eq!(k.journal(), "hookgate:journal:");
        assert_eq!(k.dedup("r", "k"), "hookgate:dedup:r\0k");
        assert_eq!(k.limit("r"), "hookgate:limit:r");
        assert_eq!(k.paused(), "hookgate:paused");
    }

    #[test]
    fn cluster_names_share_a_tag_per_route() {
        let k = Keys::new("hookgate:", true);
        assert_eq!(
            tag(&format!("{}event:12", k.queue("a"))),
            "hookgate:route:a"
        );
        assert_eq!(tag(&format!("{}alive:x", k.queue("a"))), "hookgate:route:a");
        assert_eq!(tag(&format!("{}dead", k.queue("b"))), "hookgate:route:b");
        assert_eq!(tag(&k.seq()), "hookgate:seq");
        assert_eq!(k.routes().as_deref(), Some("hookgate:routes"));
        assert_eq!(tag(&format!("{}ids", k.journal())), "hookgate:journal");
        assert_eq!(tag(&k.dedup("a", "{x}")), "hookgate:route:a");
        assert_eq!(tag(&k.limit("a")), "hookgate:route:a");
        assert_ne!(tag(&k.limit("a")), tag(&k.limit("b")));
    }
}
