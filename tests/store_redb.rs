//! The redb store's file format across versions: a file written by an earlier release
//! (tests/fixtures/, see its README) still opens with everything in it.

use bytes::Bytes;
use hookgate::store::{Claim, Event, Meta, RedbStore, Selection, Store};

fn event(n: u8) -> Event {
    Event {
        path_and_query: format!("/up/{n}"),
        headers: vec![("x-n".into(), vec![n, 0xff])],
        body: Bytes::from(vec![n; 10]),
        provider: "github".into(),
        key_id: "current".into(),
    }
}

fn meta(route: &str, key: Option<&str>) -> Meta {
    Meta {
        id: 0,
        route: route.into(),
        key: key.map(str::to_string),
        received_ms: 1_700_000_000_000,
        attempts: 0,
        next_ms: 1_700_000_000_000,
        deferred: false,
        last_error: String::new(),
    }
}

/// Far in the future: the fixture's dedup marks never expire.
const FOREVER_MS: u64 = 4_000_000_000_000;

/// The fixture: tests/fixtures/store-redb2.redb.gz (see the README there).
const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/store-redb2.redb.gz"
);

/// Writes the fixture with the store of this version: two queued events (one with a dedup key
/// marked with it, one retried once), a dead letter and a plain dedup mark. The file is
/// gzipped: a redb file of this version is over a MiB, nearly all of it preallocated space.
#[tokio::test]
#[ignore = "writes the fixture; run by hand only"]
async fn write_fixture() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    {
        let s = RedbStore::open(&path).unwrap();
        let a = s
            .enqueue(
                &event(1),
                meta("github", Some("delivery-1")),
                Some(FOREVER_MS),
            )
            .await
            .unwrap();
        assert_eq!(a.id, 1);
        let mut b = s
            .enqueue(&event(2), meta("stripe", None), None)
            .await
            .unwrap();
        b.attempts = 1;
        b.next_ms = 1_700_000_060_000;
        b.last_error = "backend answered 503".into();
        s.reschedule(&b).await.unwrap();
        let mut c = s
            .enqueue(&event(3), meta("stripe", None), None)
            .await
            .unwrap();
        c.attempts = 8;
        c.last_error = "backend unreachable".into();
        s.dead_letter(&c).await.unwrap();
        s.mark_delivered("github", "delivery-0", FOREVER_MS)
            .await
            .unwrap();
    }
    // The writer thread holds the file until its channel closes: wait until it can be opened.
    let reopened = (0..100).any(|_| {
        RedbStore::open(&path).is_ok() || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            false
        }
    });
    assert!(reopened);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let raw = std::fs::read(&path).unwrap();
    let out = std::fs::File::create(FIXTURE).unwrap();
    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(out, flate2::Compression::best());
    std::io::Write::write_all(&mut gz, &raw).unwrap();
    gz.finish().unwrap();
}

/// The fixture unpacked into a temp dir.
fn unpack_fixture() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let mut raw = Vec::new();
    let gz = std::fs::File::open(FIXTURE).unwrap();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gz), &mut raw).unwrap();
    std::fs::write(&path, raw).unwrap();
    (dir, path)
}

#[tokio::test]
async fn fixture_opens_with_everything_in_it() {
    let (_dir, path) = unpack_fixture();
    let s = RedbStore::open(&path).unwrap();

    let mut a = meta("github", Some("delivery-1"));
    a.id = 1;
    let mut b = meta("stripe", None);
    b.id = 2;
    b.attempts = 1;
    b.next_ms = 1_700_000_060_000;
    b.last_error = "backend answered 503".into();
    let mut c = meta("stripe", None);
    c.id = 3;
    c.attempts = 8;
    c.last_error = "backend unreachable".into();
    assert_eq!(s.pending().await.unwrap(), vec![a, b]);
    assert_eq!(s.dead_letters().await.unwrap(), vec![c]);
    for n in 1..=3 {
        assert_eq!(s.event(u64::from(n)).await.unwrap(), Some(event(n)), "{n}");
    }

    // Both dedup marks hold: the one set with the event and the plain one; others are new.
    let now = 1_800_000_000_000;
    for key in ["delivery-1", "delivery-0"] {
        assert_eq!(
            s.claim("github", key, now, 1_000).await.unwrap(),
            Claim::Duplicate,
            "{key}"
        );
    }
    assert_eq!(
        s.claim("github", "delivery-2", now, 1_000).await.unwrap(),
        Claim::New
    );
    // Their expiry index came along: a purge past their expiry forgets them.
    assert_eq!(s.purge_expired(FOREVER_MS).await.unwrap(), 2);
    assert_eq!(
        s.claim("github", "delivery-0", now, 1_000).await.unwrap(),
        Claim::New
    );

    // New ids continue after the stored ones.
    let d = s
        .enqueue(&event(4), meta("stripe", None), None)
        .await
        .unwrap();
    assert_eq!(d.id, 4);
    // The dead letter replays.
    let replayed = s.replay(&Selection::All, now).await.unwrap();
    assert_eq!(replayed.len(), 1);
    assert_eq!(replayed[0].id, 3);
}
