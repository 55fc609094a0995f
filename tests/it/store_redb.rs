//! The redb store's file format across versions: a file written by an earlier release
//! (tests/fixtures/, see its README) is upgraded on open, with a log line, and keeps
//! everything in it.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hookgate::store::{Claim, Event, Meta, RedbStore, Selection, Store};

fn event(n: u8) -> Event {
    Event {
        path_and_query: format!("/up/{n}"),
        headers: vec![("x-n".into(), vec![n, 0xff])],
        body: Bytes::from(vec![n; 10]),
        provider: "github".into(),
        key_id: "current".into(),
        trace: None,
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

/// Log lines written while `f` runs (JSON, one per line).
fn logs_of<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(move || writer.clone())
        .finish();
    let out = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    (out, text.lines().map(str::to_string).collect())
}

/// Opens the store at `path` once the previous store's writer thread has let go of it.
fn reopen(path: &Path) -> RedbStore {
    (0..100)
        .find_map(|_| match RedbStore::open(path) {
            Ok(s) => Some(s),
            Err(_) => {
                std::thread::sleep(Duration::from_millis(20));
                None
            }
        })
        .expect("reopen")
}

#[tokio::test]
async fn fixture_is_upgraded_with_everything_in_it() {
    let (_dir, path) = unpack_fixture();
    // Written by redb 2.6 in its file format v2, which redb 4 does not open as it is.
    assert!(matches!(
        redb::Database::open(&path),
        Err(redb::DatabaseError::UpgradeRequired(2))
    ));
    let (s, logs) = logs_of(|| RedbStore::open(&path));
    let s = s.unwrap();
    let line = |message: &str| {
        logs.iter()
            .find(|l| l.contains(message))
            .unwrap_or_else(|| panic!("no log line {message:?} in {logs:#?}"))
            .clone()
    };
    let upgraded = line("store file upgraded to the current redb file format");
    assert!(upgraded.contains(r#""from":2"#), "{upgraded}");
    assert!(upgraded.contains(r#""to":3"#), "{upgraded}");
    assert!(upgraded.contains(&path.display().to_string()), "{upgraded}");
    let rebuilt = line("store dedup expiry index rebuilt");
    assert!(rebuilt.contains(r#""marks":2"#), "{rebuilt}");

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
    for (n, m) in [(1, &a), (2, &b), (3, &c)] {
        assert_eq!(
            s.event(&m.route, m.id).await.unwrap(),
            Some(event(n)),
            "{n}"
        );
    }
    assert_eq!(s.pending().await.unwrap(), vec![a, b]);
    assert_eq!(s.dead_letters().await.unwrap(), vec![c]);

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
    drop(s);

    // The file is in the current format now: opened again, it needs no upgrade and logs none.
    let (s, logs) = logs_of(|| reopen(&path));
    assert!(logs.is_empty(), "{logs:#?}");
    assert_eq!(s.pending().await.unwrap().len(), 4);
    drop(s);
    let db = (0..100)
        .find_map(|_| {
            redb::Database::open(&path).ok().or_else(|| {
                std::thread::sleep(Duration::from_millis(20));
                None
            })
        })
        .expect("the file opens with redb 4 as it is");
    drop(db);
}

/// Stopped between the file's upgrade and the index rebuild (both are committed apart): the
/// next open finds the old index by its type and rebuilds it.
#[tokio::test]
async fn an_upgraded_file_with_the_old_index_is_rebuilt() {
    let (_dir, path) = unpack_fixture();
    assert!(redb2::Database::open(&path).unwrap().upgrade().unwrap());
    let (s, logs) = logs_of(|| RedbStore::open(&path));
    let s = s.unwrap();
    assert!(
        !logs.iter().any(|l| l.contains("store file upgraded")),
        "{logs:#?}"
    );
    assert!(
        logs.iter()
            .any(|l| l.contains("store dedup expiry index rebuilt") && l.contains(r#""marks":2"#)),
        "{logs:#?}"
    );
    assert_eq!(
        s.claim("github", "delivery-1", 1_800_000_000_000, 1_000)
            .await
            .unwrap(),
        Claim::Duplicate
    );
    assert_eq!(s.purge_expired(FOREVER_MS).await.unwrap(), 2);
}
