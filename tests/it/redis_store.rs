//! The Redis store's operations against a real `redis-server`: the dedup claim's states,
//! ownership of a release, the fleet GCRA's exact answers, and the queue on Redis Streams
//! (lifecycle, ownership, adoption after a lease, dead letters shared by the fleet).

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use crate::common::redis::RedisServer;
use crate::common::store::{event, meta};
use crate::common::WAIT;
use hookgate::limit::{Limit, Rate};
use hookgate::store::{Claim, RedisStore, Replicas, Selection, Store, StoreError};

fn open(redis: &RedisServer) -> RedisStore {
    open_leased(redis, Duration::from_secs(1))
}

fn open_leased(redis: &RedisServer, lease: Duration) -> RedisStore {
    RedisStore::open(&redis.url(), "test:", lease, Replicas::default()).expect("open")
}

/// An integer reply (`:N`) of a raw command.
fn int(redis: &RedisServer, command: &str) -> i64 {
    let reply = redis.command(command);
    reply
        .trim()
        .trim_start_matches(':')
        .parse()
        .unwrap_or_else(|_| panic!("{command}: {reply}"))
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
    assert_eq!(
        a.check_route("r", limit.interval_us(), limit.burst.get())
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        b.check_route("r", limit.interval_us(), limit.burst.get())
            .await
            .unwrap(),
        None
    );
    let wait = a
        .check_route("r", limit.interval_us(), limit.burst.get())
        .await
        .unwrap()
        .expect("limited");
    assert!(
        wait > Duration::from_secs(59) && wait <= Duration::from_secs(60),
        "{wait:?}"
    );
    // A refusal does not use up a cell; another route has its own bucket.
    let again = b
        .check_route("r", limit.interval_us(), limit.burst.get())
        .await
        .unwrap()
        .expect("limited");
    assert!(again <= wait);
    assert_eq!(
        a.check_route("other", limit.interval_us(), limit.burst.get())
            .await
            .unwrap(),
        None
    );

    // A fast rate refills: 1000/s, burst 1 -> the next cell within about a millisecond.
    let fast = Limit {
        rate: Rate::parse("1000/s").unwrap(),
        burst: NonZeroU32::new(1).unwrap(),
    };
    assert_eq!(
        a.check_route("fast", fast.interval_us(), fast.burst.get())
            .await
            .unwrap(),
        None
    );
    eventually(|| async {
        a.check_route("fast", fast.interval_us(), fast.burst.get())
            .await
            .unwrap()
            .is_none()
    })
    .await;
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
    assert!(s
        .check_route("r", limit.interval_us(), limit.burst.get())
        .await
        .is_err());
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

/// The same lifecycle the local stores pass (see `store::tests::spool_lifecycle`), on Redis:
/// enqueue (with its dedup mark), reschedule, ack, dead letter, replay, drop; and what it leaves
/// in Redis: nothing once everything is settled.
#[tokio::test]
async fn queue_lifecycle_on_streams() {
    let redis = RedisServer::start();
    let s = open(&redis);
    let t = now_ms();
    assert_eq!(s.claim("r", "ka", t, 60_000).await.unwrap(), Claim::New);
    let a = s
        .enqueue(&event(1), meta("r", Some("ka")), Some(t + 60_000))
        .await
        .unwrap();
    let b = s.enqueue(&event(2), meta("r", None), None).await.unwrap();
    let c = s
        .enqueue(&event(3), meta("other", None), None)
        .await
        .unwrap();
    assert!(a.id < b.id && b.id < c.id, "{a:?} {b:?} {c:?}");
    // Ids start from Redis's clock (ms x 1000), so they never repeat after Redis lost its data.
    assert!(
        a.id / 1000 >= t - 5_000 && a.id / 1000 <= t + 5_000,
        "{}",
        a.id
    );
    // Enqueued with a dedup expiry: the key is delivered for the fleet.
    assert_eq!(s.claim("r", "ka", t, 1).await.unwrap(), Claim::Duplicate);
    assert_eq!(s.event(&b.route, b.id).await.unwrap(), Some(event(2)));
    assert_eq!(
        s.pending().await.unwrap(),
        vec![a.clone(), b.clone(), c.clone()]
    );
    assert_eq!(int(&redis, "XLEN test:queue"), 3);
    // Each entry is in this replica's pending list from the start.
    assert_eq!(
        redis.command("XPENDING test:queue hookgate").lines().nth(1),
        Some(":3")
    );

    let mut retry = a.clone();
    retry.attempts = 1;
    retry.next_ms = 5_000;
    retry.last_error = "backend answered 503".into();
    s.reschedule(&retry).await.unwrap();
    assert!(s.pending().await.unwrap().contains(&retry));

    s.ack(&b.route, b.id).await.unwrap();
    assert_eq!(s.event(&b.route, b.id).await.unwrap(), None);
    assert_eq!(int(&redis, "XLEN test:queue"), 2);
    assert_eq!(int(&redis, &format!("EXISTS test:event:{}", b.id)), 0);

    s.dead_letter(&retry).await.unwrap();
    s.dead_letter(&c).await.unwrap();
    assert!(s.pending().await.unwrap().is_empty());
    assert_eq!(
        s.dead_letters().await.unwrap(),
        vec![retry.clone(), c.clone()]
    );
    // A dead letter is not attempted.
    assert_eq!(s.event(&a.route, a.id).await.unwrap(), None);
    let leases = s.renew(&[]).await.unwrap();
    assert_eq!(leases.dead.get("r"), Some(&1));
    assert_eq!(leases.dead.get("other"), Some(&1));

    let replayed = s
        .replay(&Selection::Route("r".into()), 7_000)
        .await
        .unwrap();
    assert_eq!(replayed.len(), 1);
    assert_eq!(
        (replayed[0].id, replayed[0].attempts, replayed[0].next_ms),
        (a.id, 0, 7_000)
    );
    assert_eq!(replayed[0].key.as_deref(), Some("ka"));
    assert_eq!(s.pending().await.unwrap(), replayed);
    assert_eq!(
        s.event(&a.route, a.id).await.unwrap(),
        Some(event(1)),
        "owned by the replayer"
    );
    // `c` is the only dead letter left: replaying everything moves just it; then none is left.
    let all = s.replay(&Selection::All, 8_000).await.unwrap();
    assert_eq!(all.iter().map(|m| m.id).collect::<Vec<_>>(), vec![c.id]);
    assert!(s.replay(&Selection::All, 9_000).await.unwrap().is_empty());
    let dropped = s
        .drop_dead(&Selection::Ids(vec![c.id, 12345]))
        .await
        .unwrap();
    assert!(dropped.is_empty(), "c is pending again: {dropped:?}");
    assert!(s.renew(&[]).await.unwrap().dead.is_empty());

    for m in s.pending().await.unwrap() {
        s.ack(&m.route, m.id).await.unwrap();
    }
    assert_eq!(int(&redis, "XLEN test:queue"), 0);
    assert_eq!(int(&redis, "XLEN test:dead"), 0);
    assert_eq!(int(&redis, "EXISTS test:dead:count"), 0);
    let keys = redis.command("KEYS test:event:*");
    assert!(keys.starts_with("*0"), "{keys}");
}

/// Dropping deletes the dead letter and its event; a second drop finds nothing.
#[tokio::test]
async fn drop_dead_deletes_event_and_count() {
    let redis = RedisServer::start();
    let (a, b) = (open(&redis), open(&redis));
    let m = a.enqueue(&event(1), meta("r", None), None).await.unwrap();
    a.dead_letter(&m).await.unwrap();
    // Another replica sees the fleet's dead letters and drops them.
    assert_eq!(b.dead_letters().await.unwrap(), vec![m.clone()]);
    assert_eq!(b.drop_dead(&Selection::All).await.unwrap(), vec![m.clone()]);
    assert!(a.drop_dead(&Selection::All).await.unwrap().is_empty());
    assert!(a.dead_letters().await.unwrap().is_empty());
    assert_eq!(int(&redis, &format!("EXISTS test:event:{}", m.id)), 0);
    assert!(a.renew(&[]).await.unwrap().dead.is_empty());
}

/// Dead letters are listed, replayed and dropped a page at a time: more than one page of them
/// (a page is 500) comes back whole, in order, and each operation takes every one.
#[tokio::test]
async fn many_dead_letters_are_handled_in_pages() {
    const N: usize = 1_234;
    let redis = RedisServer::start();
    let (a, b) = (open(&redis), open(&redis));
    let mut dead = Vec::new();
    for i in 0..N {
        let m = a
            .enqueue(
                &event((i % 250) as u8),
                meta(if i % 2 == 0 { "r" } else { "s" }, None),
                None,
            )
            .await
            .unwrap();
        a.dead_letter(&m).await.unwrap();
        dead.push(m);
    }
    assert_eq!(b.dead_letters().await.unwrap(), dead, "all, oldest first");
    let replayed = b
        .replay(&Selection::Route("r".into()), now_ms())
        .await
        .unwrap();
    assert_eq!(replayed.len(), N / 2);
    assert!(replayed.iter().all(|m| m.route == "r" && m.attempts == 0));
    assert_eq!(b.pending().await.unwrap().len(), N / 2);
    let dropped = a.drop_dead(&Selection::All).await.unwrap();
    assert_eq!(dropped.len(), N / 2);
    assert!(dropped.iter().all(|m| m.route == "s"));
    assert!(b.dead_letters().await.unwrap().is_empty());
}

/// Only the owner may attempt an event. While its owner's heartbeat goes on, it stays its
/// owner's; once the heartbeat has lapsed for the lease, another replica adopts it, and the old
/// owner learns it lost it (and can no longer read it for an attempt).
#[tokio::test]
async fn ownership_renewal_and_adoption() {
    let redis = RedisServer::start();
    let lease = Duration::from_millis(300);
    let (a, b) = (open_leased(&redis, lease), open_leased(&redis, lease));
    assert_ne!(a.consumer(), b.consumer());
    let m = a
        .enqueue(&event(1), meta("r", Some("k")), None)
        .await
        .unwrap();
    // Enqueueing started a's heartbeat: b cannot take the event before a's first lease round.
    assert!(b.renew(&[]).await.unwrap().adopted.is_empty());
    assert_eq!(b.event(&m.route, m.id).await.unwrap(), None, "not b's");
    assert_eq!(a.event(&m.route, m.id).await.unwrap(), Some(event(1)));

    // a renews well within the lease for a while: b adopts nothing.
    let until = Instant::now() + lease * 3;
    while Instant::now() < until {
        let l = a.renew(&[(m.route.clone(), m.id)]).await.unwrap();
        assert!(l.lost.is_empty() && l.adopted.is_empty(), "{l:?}");
        assert!(
            b.renew(&[]).await.unwrap().adopted.is_empty(),
            "renewed: not adoptable"
        );
        tokio::time::sleep(lease / 6).await;
    }

    // a stops renewing (as if killed): b adopts it once it has been idle for the lease.
    let deadline = Instant::now() + WAIT;
    let adopted = loop {
        let l = b.renew(&[]).await.unwrap();
        if !l.adopted.is_empty() {
            break l.adopted;
        }
        assert!(Instant::now() < deadline, "never adopted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(adopted, vec![m.clone()]);
    assert_eq!(b.event(&m.route, m.id).await.unwrap(), Some(event(1)));
    assert_eq!(a.event(&m.route, m.id).await.unwrap(), None, "a lost it");
    let l = a.renew(&[(m.route.clone(), m.id)]).await.unwrap();
    assert_eq!(l.lost, vec![m.id]);
    // Nor can a change it any more: its retry state and its dead letter are refused.
    let mut stale = m.clone();
    stale.attempts = 9;
    stale.last_error = "stale attempt".into();
    a.reschedule(&stale).await.unwrap();
    a.dead_letter(&stale).await.unwrap();
    assert!(
        a.dead_letters().await.unwrap().is_empty(),
        "not buried by a"
    );
    assert_eq!(
        b.pending().await.unwrap(),
        vec![m.clone()],
        "b's state kept"
    );
    assert_eq!(
        b.event(&m.route, m.id).await.unwrap(),
        Some(event(1)),
        "still b's"
    );
    // b renews it as its own; nobody adopts it again.
    assert!(b
        .renew(&[(m.route.clone(), m.id)])
        .await
        .unwrap()
        .lost
        .is_empty());
    b.ack(&m.route, m.id).await.unwrap();
    assert_eq!(
        b.event(&m.route, m.id).await.unwrap(),
        None,
        "delivered: gone"
    );
    // a, which owns nothing and whose heartbeat lapsed, is removed from the group.
    let deadline = Instant::now() + WAIT;
    while redis
        .command("XINFO CONSUMERS test:queue hookgate")
        .contains(a.consumer())
    {
        assert!(Instant::now() < deadline, "idle consumer never removed");
        b.renew(&[]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Redis restarted without its data: the queue and its group are recreated on the next write,
/// and what replicas still remember is reported lost instead of failing forever.
#[tokio::test]
async fn lost_redis_data_recreates_the_queue() {
    let mut redis = RedisServer::start();
    let s = open(&redis);
    let m = s.enqueue(&event(1), meta("r", None), None).await.unwrap();
    redis.restart();
    eventually(|| async { s.ping().await.is_ok() }).await;
    assert_eq!(
        s.renew(&[(m.route.clone(), m.id)]).await.unwrap().lost,
        vec![m.id]
    );
    assert_eq!(s.event(&m.route, m.id).await.unwrap(), None);
    let n = s.enqueue(&event(2), meta("r", None), None).await.unwrap();
    assert!(n.id > m.id, "ids keep growing: {} then {}", m.id, n.id);
    assert_eq!(s.event(&n.route, n.id).await.unwrap(), Some(event(2)));
}

/// An event stored in a replica's name that the replica does not know (its enqueue ran in
/// Redis but the answer was lost, so the sender got 503 and its retry is a duplicate) is found
/// in the replica's own pending list once older than the lease, and adopted, once.
#[tokio::test]
async fn unknown_entries_in_own_pending_list_are_adopted() {
    let redis = RedisServer::start();
    let lease = Duration::from_millis(300);
    let a = open_leased(&redis, lease);
    let known = a.enqueue(&event(1), meta("r", None), None).await.unwrap();
    let stranded = a.enqueue(&event(2), meta("r", None), None).await.unwrap();
    // An entry whose event was deleted by hand is cleared away, not adopted.
    let orphan = a.enqueue(&event(3), meta("r", None), None).await.unwrap();
    assert_eq!(int(&redis, &format!("DEL test:event:{}", orphan.id)), 1);
    // Younger than the lease: not looked at (it may be an enqueue still on its way back).
    assert!(a
        .renew(&[(known.route.clone(), known.id)])
        .await
        .unwrap()
        .adopted
        .is_empty());
    let deadline = Instant::now() + WAIT;
    let adopted = loop {
        let l = a.renew(&[(known.route.clone(), known.id)]).await.unwrap();
        if !l.adopted.is_empty() {
            break l.adopted;
        }
        assert!(Instant::now() < deadline, "never found");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(adopted, vec![stranded.clone()]);
    assert_eq!(
        a.event(&stranded.route, stranded.id).await.unwrap(),
        Some(event(2))
    );
    assert_eq!(
        int(&redis, "XLEN test:queue"),
        2,
        "the orphan entry is gone"
    );
    // Known now: not adopted again.
    for _ in 0..3 {
        let l = a
            .renew(&[
                (known.route.clone(), known.id),
                (stranded.route.clone(), stranded.id),
            ])
            .await
            .unwrap();
        assert!(l.adopted.is_empty() && l.lost.is_empty(), "{l:?}");
    }
}

/// `min_replicas: 1` on a server without a replica: every write that backs a promise reports
/// it was not confirmed. An accepted event is then withdrawn (no entry, no event, no dedup
/// mark left to deliver or to call a retry a duplicate); once a replica is attached, the same
/// writes pass.
#[tokio::test]
async fn writes_wait_for_their_replicas() {
    let redis = RedisServer::start();
    let replicas = Replicas {
        min: 1,
        timeout: Duration::from_millis(100),
    };
    let s = RedisStore::open(&redis.url(), "test:", Duration::from_secs(1), replicas).unwrap();
    let t = now_ms();
    assert_eq!(s.claim("r", "k", t, 60_000).await.unwrap(), Claim::New);
    let err = s
        .enqueue(&event(1), meta("r", Some("k")), Some(t + 60_000))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Unreplicated {
                wanted: 1,
                got: 0,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(int(&redis, "XLEN test:queue"), 0);
    assert!(redis.command("KEYS test:event:*").starts_with("*0"));
    assert!(s.pending().await.unwrap().is_empty());
    assert_eq!(int(&redis, "EXISTS \"test:dedup:r\\x00k\""), 0);
    let err = s.mark_delivered("r", "k", t + 60_000).await.unwrap_err();
    assert!(matches!(err, StoreError::Unreplicated { .. }), "{err}");

    let _replica = RedisServer::start_replica_of(&redis);
    // Confirmed writes return as soon as the replica acknowledges: a generous timeout costs
    // nothing, where 100 ms failed when the machine was busy.
    let patient = Replicas {
        min: 1,
        timeout: Duration::from_secs(5),
    };
    let s = RedisStore::open(&redis.url(), "test:", Duration::from_secs(1), patient).unwrap();
    let m = s
        .enqueue(&event(2), meta("r", Some("k2")), Some(t + 60_000))
        .await
        .unwrap();
    assert_eq!(s.pending().await.unwrap(), vec![m.clone()]);
    s.dead_letter(&m).await.unwrap();
    assert_eq!(s.dead_letters().await.unwrap().len(), 1);
    s.mark_delivered("r", "k3", t + 60_000).await.unwrap();
}
