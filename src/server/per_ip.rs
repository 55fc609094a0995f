//! `server.max_connections_per_ip`: how many connections one address may hold open at once.
//!
//! Counted on the TCP peer address at accept, shared by all workers: the client address behind
//! `trusted_proxies` comes from a request's `X-Forwarded-For`, which is not known until a request
//! head has been read, and by then the connection already holds a slot. Behind a trusted proxy
//! every connection has the proxy's address, so the cap then bounds what the proxy may open
//! (docs/configuration.md). IPv6 addresses count per /64, as a host usually owns a whole one.
//!
//! A connection over the cap is closed at once, before any byte is read: answering 503 would
//! mean reading a request head (or, for HTTP/2, exchanging settings) for a client that already
//! holds its share, which is the work the cap is there to refuse.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use crate::metrics::Metrics;

/// IPv6 addresses are counted under this prefix.
const IPV6_PREFIX: u8 = 64;

/// The reason label of `hookgate_connections_refused_total`.
pub const REASON: &str = "max_connections_per_ip";

/// Open connections per address, across workers.
pub struct PerIp {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
    /// When the last refusal was logged (ms after `epoch`) and how many went unlogged since.
    logged_ms: AtomicU64,
    unlogged: AtomicU64,
    epoch: Instant,
}

/// One open connection's place in its address's count; given back when dropped.
pub struct Slot {
    owner: Arc<PerIp>,
    key: IpAddr,
}

impl PerIp {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            open: Mutex::new(HashMap::new()),
            logged_ms: AtomicU64::new(0),
            unlogged: AtomicU64::new(0),
            epoch: Instant::now(),
        })
    }

    /// A slot for a new connection from `ip`, or `None` when the address holds `max` already.
    pub fn enter(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let key = crate::limit::key(ip, IPV6_PREFIX);
        // A panic while holding the lock leaves the counts consistent (each update is one
        // statement), so a poisoned lock is used as it is.
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let n = open.entry(key).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(Slot {
            owner: self.clone(),
            key,
        })
    }

    /// Counts a refused connection; logs at most one line a second, with how many were
    /// refused since the last one, so a flood cannot flood the log.
    pub fn refused(&self, ip: IpAddr, metrics: &Metrics) {
        metrics
            .connections_refused
            .with_label_values(&[REASON])
            .inc();
        self.unlogged.fetch_add(1, Ordering::Relaxed);
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.logged_ms.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= 1000;
        if due
            && self
                .logged_ms
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            // This one included.
            let refused = self.unlogged.swap(0, Ordering::Relaxed);
            tracing::warn!(
                client_ip = %ip,
                max_connections_per_ip = self.max,
                refused,
                "connection refused: the address holds server.max_connections_per_ip connections already"
            );
        }
    }

    #[cfg(test)]
    fn open(&self, ip: IpAddr) -> usize {
        let key = crate::limit::key(ip, IPV6_PREFIX);
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.get(&key).copied().unwrap_or(0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self
            .owner
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_holds_at_most_max_and_gets_its_slots_back() {
        let cap = PerIp::new(2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let s1 = cap.enter(a).expect("first");
        let s2 = cap.enter(a).expect("second");
        assert!(cap.enter(a).is_none(), "third from the same address");
        assert!(cap.enter(b).is_some(), "another address has its own count");
        drop(s1);
        let s3 = cap.enter(a).expect("a slot given back");
        drop((s2, s3));
        assert_eq!(cap.open(a), 0);
        assert!(
            cap.open.lock().unwrap().is_empty(),
            "no entry kept for idle addresses"
        );
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let cap = PerIp::new(1);
        let _one = cap.enter("2001:db8:1:2::1".parse().unwrap()).unwrap();
        assert!(cap.enter("2001:db8:1:2::ffff".parse().unwrap()).is_none());
        assert!(cap.enter("2001:db8:1:3::1".parse().unwrap()).is_some());
        let _v4 = cap.enter("192.0.2.9".parse().unwrap()).unwrap();
        assert!(cap.enter("::ffff:192.0.2.9".parse().unwrap()).is_none());
    }

    #[test]
    fn refusals_are_counted_each_and_logged_at_most_once_a_second() {
        let cap = PerIp::new(1);
        let metrics = Metrics::new();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..5 {
            cap.refused(ip, &metrics);
        }
        let refused = metrics
            .connections_refused
            .with_label_values(&[REASON])
            .get();
        assert_eq!(refused, 5);
        // The first was logged; the next four wait for the next line.
        assert_eq!(cap.unlogged.load(Ordering::Relaxed), 4);
    }
}
