//! `routes[].dedup` and `routes[].delivery`.

use std::time::Duration;

use serde_json::Value;

use crate::config::file::{DedupFile, DeliveryFile};
use crate::dedup::{Dedup, KeyTemplate};
use crate::delivery::{Backoff, Delivery, DeliveryMode, RetryOn, StatusMatch};

use super::Validator;

impl Validator {
    pub(super) fn dedup(&mut self, key: &str, f: DedupFile) -> Dedup {
        let template = self.text(
            &format!("{key}.key"),
            f.key,
            "a template such as \"{body_sha256}\"",
        );
        let template = template.and_then(|k| {
            KeyTemplate::parse(&k)
                .map_err(|e| self.problem(format!("{key}.key"), e))
                .ok()
        });
        Dedup {
            key: template,
            ttl: self.duration(&format!("{key}.ttl"), f.ttl, 24 * 3600),
        }
    }

    pub(super) fn delivery(
        &mut self,
        key: &str,
        f: Option<DeliveryFile>,
        // The route's timeout, unless its value was refused.
        timeout: Option<Duration>,
    ) -> Delivery {
        let d = Delivery::default();
        let Some(f) = f else { return d };
        let mode = self.text(&format!("{key}.mode"), f.mode, "sync, queue or hybrid");
        let mode = match mode.as_deref() {
            None | Some("sync") => DeliveryMode::Sync,
            Some("queue") => DeliveryMode::Queue,
            Some("hybrid") => DeliveryMode::Hybrid,
            Some(other) => {
                self.problem(
                    format!("{key}.mode"),
                    format!("`{other}` is not a mode; use sync, queue or hybrid"),
                );
                DeliveryMode::Sync
            }
        };
        let deadline_given = f.deadline.is_some();
        let deadline = self.duration(&format!("{key}.deadline"), f.deadline, 8);
        let timeout_too_short = timeout.filter(|t| deadline >= *t);
        if let (DeliveryMode::Hybrid, Some(timeout)) = (mode, timeout_too_short) {
            let hint = if deadline_given {
                "shorten it"
            } else {
                "the default is 8s; set a shorter deadline"
            };
            self.problem(
                format!("{key}.deadline"),
                format!(
                    "{deadline:?} is not shorter than the route's timeout ({timeout:?}), so the backend would time out first; {hint}"
                ),
            );
        }
        let concurrency = self.count(&format!("{key}.concurrency"), f.concurrency, 16);
        let max_attempts = self.count(&format!("{key}.max_attempts"), f.max_attempts, 12);
        let max_age = self.duration(&format!("{key}.max_age"), f.max_age, 72 * 3600);
        let retry_key = format!("{key}.retry_on");
        let statuses = "a list of statuses such as [429, 5xx]";
        let retry_on = match self.list(&retry_key, f.retry_on, statuses, false) {
            None => RetryOn::default(),
            Some(items) => RetryOn(
                items
                    .into_iter()
                    .enumerate()
                    .filter_map(|(i, item)| {
                        let ikey = format!("{retry_key}[{i}]");
                        let text = match item {
                            Value::Number(n) => n.to_string(),
                            Value::String(s) => s,
                            other => {
                                self.wrong_type(&ikey, "a status such as 429 or 5xx", &other);
                                return None;
                            }
                        };
                        StatusMatch::parse(&text).or_else(|| {
                            self.problem(
                                ikey,
                                format!("`{text}` is not a status; write e.g. 429 or 5xx"),
                            );
                            None
                        })
                    })
                    .collect(),
            ),
        };
        let backoff = self.section(
            &format!("{key}.backoff"),
            f.backoff,
            "a mapping such as {base: 1s, max: 10m}",
        );
        let backoff = match backoff {
            None => Backoff::default(),
            Some(b) => {
                let def = Backoff::default();
                let base = self.duration(&format!("{key}.backoff.base"), b.base, 1);
                let max = self.duration(&format!("{key}.backoff.max"), b.max, def.max.as_secs());
                if base > max {
                    self.problem(
                        format!("{key}.backoff.base"),
                        format!("{base:?} is longer than backoff.max ({max:?}); lower it"),
                    );
                }
                Backoff { base, max }
            }
        };
        Delivery {
            mode,
            deadline,
            concurrency,
            max_attempts: u32::try_from(max_attempts).unwrap_or(u32::MAX),
            max_age,
            retry_on,
            backoff,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::store::StoreConfig;

    #[test]
    fn dedup_and_delivery_defaults() {
        let c = parse(&format!("{ROUTE}    dedup: {{}}\n")).unwrap();
        let r = &c.routes[0];
        assert_eq!(c.store, StoreConfig::Memory);
        let d = r.dedup.as_ref().unwrap();
        assert!(d.key.is_none());
        assert_eq!(d.ttl, Duration::from_secs(24 * 3600));
        assert_eq!(r.delivery.mode, DeliveryMode::Sync);
        assert_eq!(r.delivery.max_attempts, 12);
        assert_eq!(r.delivery.concurrency, 16);
        assert_eq!(r.delivery.deadline, Duration::from_secs(8));
        assert_eq!(r.delivery.max_age, Duration::from_secs(72 * 3600));
        assert_eq!(r.delivery.retry_on, RetryOn::default());
        assert!(parse(ROUTE).unwrap().routes[0].dedup.is_none());
    }

    #[test]
    fn queue_config_loads() {
        let c = parse(&format!(
            "store: {{kind: redb, path: /tmp/x.redb}}\n{ROUTE}    dedup: {{key: \"{{header.X-Id}}\", ttl: 1h}}\n    delivery: {{mode: queue, concurrency: 2, max_attempts: 3, max_age: 1h, retry_on: [503, 4xx], backoff: {{base: 10ms, max: 1s}}}}\n"
        ))
        .unwrap();
        let d = &c.routes[0].delivery;
        assert_eq!(
            c.store,
            StoreConfig::Redb {
                path: "/tmp/x.redb".into()
            }
        );
        assert_eq!(d.mode, DeliveryMode::Queue);
        assert_eq!(
            d.retry_on,
            RetryOn(vec![StatusMatch::Exact(503), StatusMatch::Class(4)])
        );
        assert_eq!(d.backoff.base, Duration::from_millis(10));
        assert_eq!(d.max_attempts, 3);
    }

    #[test]
    fn dedup_and_delivery_problems_are_named() {
        let p = problems(&format!(
            "store: {{kind: nosql, url: redis://x}}\n{ROUTE}    dedup: {{key: \"{{nope}}\", ttl: forever, extra: 1}}\n    delivery: {{mode: queue, deadline: 20s, concurrency: 0, max_attempts: 0, retry_on: [200x, 503], backoff: {{base: 2m, max: 1m}}}}\n"
        ));
        for key in [
            "store.kind:",
            "store.url:",
            "routes[0].dedup.key:",
            "routes[0].dedup.ttl:",
            "routes[0].dedup.extra: unknown key",
            "routes[0].delivery.concurrency:",
            "routes[0].delivery.max_attempts:",
            "routes[0].delivery.retry_on[0]:",
            "routes[0].delivery.backoff.base:",
            "routes[0].delivery.mode: queue mode",
        ] {
            assert!(p.iter().any(|p| p.starts_with(key)), "{key} not in {p:?}");
        }
        let p = problems(&format!(
            "store: {{kind: redb}}\n{ROUTE}    delivery: {{mode: hybrid, deadline: 9s}}\n"
        ));
        assert!(
            p.iter()
                .any(|p| p.starts_with("routes[0].delivery.deadline:")),
            "{p:?}"
        );
        let p = problems(&format!("store: {{kind: memory, path: x}}\n{ROUTE}"));
        assert!(p.iter().any(|p| p.starts_with("store.path:")), "{p:?}");
    }
}
