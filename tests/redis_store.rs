//! The Redis store's operations against a real `redis-server`: the dedup claim's states,
//! ownership of a release, and the fleet GCRA's exact answers.

mod common;

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use common::redis::RedisServer;
use common::WAIT;
use hookgate::limit::{Limit, Rate};
use hookgate::store::{Claim, RedisStore, Store};

fn open(redis: &RedisServer) -> RedisStore {
    RedisStore::open(&redis.url(), "test:").expect("open")
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Waits (bounded) until `f` holds.
async fn eventually<F: std::future::Future<Output = bool>>(mut f: impl FnMut() -> F) {
    let deadline = Instant::now() + WAIT;
    while !f().await {
        assert!(Instant::now() < deadline, "condition never held");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn claim_in_flight_delivered_and_keys_per_route() {
    let redis = RedisServer::start();
    let (a, b) = (open(&redis), open(&redis));
    let t = now_ms();
    assert_eq!(a.claim("r", "k", t, 60_000).await.unwrap(), Claim::New);
    assert_eq!(b.claim("r", "k", t, 60_000).await.unwrap(), Claim::InFlight);
    assert_eq!(b.claim("r2", "k", t, 60_000).await.unwrap(), Claim::New);
    a.mark_delivered("r", "k", t + 60_000).await.unwrap();
    assert_eq!(
        b.claim("r", "k", t, 60_000).await.unwrap(),
        Claim::Duplicate
    );
    // The prefix is in the key, and the mark expires at the given time.
    let pttl = redis.command("PTTL \"test:dedup:r\\x00k\"");
    let ms: i64 = pttl.trim_start_matches(':').trim().parse().expect(&pttl);
    assert!((1..=60_000).contains(&ms), "{pttl}");
    // An expired mark frees the key.
    a.mark_delivered("r", "gone", t.saturating_sub(1))
        .await
        .unwrap();
    assert_eq!(b.claim("r", "gone", t, 60_000).await.unwrap(), Claim::New);
}

#[tokio::test]
async fn release_frees_only_the_holders_own_claim() {
    let redis = RedisServer::start();
    let (a, b, c) = (open(&redis), open(&redis), open(&redis));
    let t = now_ms();
    assert_eq!(a.claim("r", "k", t, 60_000).await.unwrap(), Claim::New);
    // Another holder's release does nothing: it holds no token for the key.
    b.release("r", "k");
    assert_eq!(c.claim("r", "k", t, 60_000).await.unwrap(), Claim::InFlight);
    a.release("r", "k");
    eventually(|| async { c.claim("r", "k", t, 60_000).await.unwrap() == Claim::New }).await;

    // a's claim lapses (short lease) and b takes the key: a's late release must not free it.
    assert_eq!(a.claim("r", "lapse", t, 1).await.unwrap(), Claim::New);
    eventually(|| async { b.claim("r", "lapse", t, 60_000).await.unwrap() == Claim::New }).await;
    a.release("r", "lapse");
    // The release runs in the background and has no completion signal: give it time, then
    // check that b still holds the key.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        c.claim("r", "lapse", t, 60_000).await.unwrap(),
        Claim::InFlight
    );
}

#[tokio::test]
async fn fleet_gcra_burst_then_retry_after() {
    let redis = RedisServer::start();
    let (a, b) = (open(&redis), open(&redis));
    let limit = Limit {
        rate: Rate::parse("1/m").unwrap(),
        burst: NonZeroU32::new(2).unwrap(),
    };
    assert_eq!(a.check_route("r", &limit).await.unwrap(), None);
    assert_eq!(b.check_route("r", &limit).await.unwrap(), None);
    let wait = a.check_route("r", &limit).await.unwrap().expect("limited");
    assert!(
        wait > Duration::from_secs(59) && wait <= Duration::from_secs(60),
        "{wait:?}"
    );
    // A refusal does not use up a cell; another route has its own bucket.
    let again = b.check_route("r", &limit).await.unwrap().expect("limited");
    assert!(again <= wait);
    assert_eq!(a.check_route("other", &limit).await.unwrap(), None);

    // A fast rate refills: 1000/s, burst 1 -> the next cell within about a millisecond.
    let fast = Limit {
        rate: Rate::parse("1000/s").unwrap(),
        burst: NonZeroU32::new(1).unwrap(),
    };
    assert_eq!(a.check_route("fast", &fast).await.unwrap(), None);
    eventually(|| async { a.check_route("fast", &fast).await.unwrap().is_none() }).await;
}

#[tokio::test]
async fn unreachable_redis_is_an_error_not_a_hang() {
    let mut redis = RedisServer::start();
    let s = open(&redis);
    s.ping().await.expect("up");
    redis.stop();
    let started = Instant::now();
    assert!(s.ping().await.is_err());
    assert!(s.claim("r", "k", now_ms(), 1_000).await.is_err());
    let limit = Limit {
        rate: Rate::parse("1/s").unwrap(),
        burst: NonZeroU32::new(1).unwrap(),
    };
    assert!(s.check_route("r", &limit).await.is_err());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    redis.restart();
    eventually(|| async { s.ping().await.is_ok() }).await;
    assert_eq!(
        s.claim("r", "k", now_ms(), 1_000).await.unwrap(),
        Claim::New
    );
}
