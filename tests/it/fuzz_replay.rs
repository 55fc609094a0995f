//! The fuzz targets on stable Rust: every seed of `fuzz/seeds/<target>/`, then deterministic
//! mutations of them (byte flips, insertions, deletions, splices, dictionary tokens), through
//! the same `hookgate::fuzzing` functions the libFuzzer targets in `fuzz/` call. Coverage-guided
//! fuzzing finds more (`fuzz/run.sh`); this keeps every target's invariants checked by
//! `cargo test` on any toolchain.

use std::path::{Path, PathBuf};

/// Mutated inputs per target; the generator is seeded, so every run tries the same ones.
const MUTANTS: usize = 4000;

/// xorshift64*: small, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Bytes that parsers care about, spliced in to reach their branches.
const TOKENS: &[&[u8]] = &[
    b"\n",
    b"\n\n",
    b",",
    b"=",
    b";",
    b":",
    b" ",
    b"{",
    b"}",
    b"\"",
    b"\\u0000",
    b"sha256=",
    b"t=",
    b"v1=",
    b"v1,",
    b"v0=",
    b"ts=",
    b"h1=",
    b"sign 1700000000\n",
    b"18446744073709551616",
    b"-1",
    b"\xff\xfe",
    b"::ffff:",
    b"10.0.0.1",
    b"${HOME}",
    b"&a ",
    b"*a",
    b"~1",
    b"~0",
    b"routes:\n  - ",
    b"{body./",
    b"{header.",
    b"{body_sha256}",
];

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut data = seeds[rng.below(seeds.len())].clone();
    for _ in 0..=rng.below(4) {
        let at = rng.below(data.len() + 1);
        match rng.below(6) {
            0 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] ^= 1 << rng.below(8);
            }
            1 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] = rng.next() as u8;
            }
            2 => {
                let end = (at + 1 + rng.below(16)).min(data.len());
                data.drain(at.min(end)..end);
            }
            3 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                data.splice(at..at, t.iter().copied());
            }
            4 => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len() + 1);
                let take = rng.below(other.len() - from + 1);
                data.splice(at..at, other[from..from + take].iter().copied());
            }
            _ => {
                let n = rng.below(8) + 1;
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                data.splice(at..at, bytes);
            }
        }
    }
    data
}

fn seeds(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let mut out: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let path = e.expect("dir entry").path();
            let data = std::fs::read(&path).expect("read seed");
            (path, data)
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no seeds in {}", dir.display());
    out
}

/// Runs `target` on every seed and on [`MUTANTS`] mutants; a panic names the input.
fn replay(target: &str, run: fn(&[u8])) {
    let seeds = seeds(target);
    for (path, data) in &seeds {
        if std::panic::catch_unwind(|| run(data)).is_err() {
            panic!("{target}: seed {} fails", path.display());
        }
    }
    let corpus: Vec<Vec<u8>> = seeds.into_iter().map(|(_, d)| d).collect();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ target.len() as u64);
    for i in 0..MUTANTS {
        let data = mutate(&mut rng, &corpus);
        if std::panic::catch_unwind(|| run(&data)).is_err() {
            panic!(
                "{target}: mutant {i} fails; input (escaped): {}",
                data.escape_ascii()
            );
        }
    }
}

#[test]
fn verify_every_scheme() {
    replay("verify", hookgate::fuzzing::verify);
}

#[test]
fn timestamp_and_window() {
    replay("timestamp", hookgate::fuzzing::timestamp);
}

#[test]
fn client_ip_from_forwarded_for() {
    replay("client_ip", hookgate::fuzzing::client_ip);
}

#[test]
fn config_loader() {
    replay("config", hookgate::fuzzing::config);
}

#[test]
fn payload_parse_and_schema_selection() {
    replay("payload", hookgate::fuzzing::payload);
}

#[test]
fn dedup_key_template() {
    replay("dedup_key", hookgate::fuzzing::dedup_key);
}

/// The `sign` seeds do reach past the MAC: each scheme verifies what it signed itself. (A form
/// body that already has a `token` field, like Slack's, gets Mailgun's fields appended next to
/// it: two `token`s are ambiguous and refused, as they should be.)
#[test]
fn sign_seeds_pass_every_scheme() {
    use hookgate::fuzzing::split_request;
    let mut checked = 0;
    for (path, data) in seeds("verify") {
        let (first, _, body) = split_request(&data);
        if !first.starts_with(b"sign ") {
            continue;
        }
        let has_token = body.windows(6).any(|w| w == b"token=");
        match hookgate::fuzzing::signed_passes(&data) {
            Ok(()) => {}
            Err(e) if has_token && e == "mailgun: malformed_header" => {}
            Err(e) => panic!("{}: {e}", path.display()),
        }
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} sign seeds");
}

/// Rough coverage of the `verify` corpus: every scheme's parser is reached by inputs it
/// accepts, inputs whose signature does not match, and inputs it finds malformed. Set
/// `FUZZ_CORPUS` to a directory (e.g. `fuzz/corpus/verify`) to count a grown corpus too.
#[test]
fn verify_seeds_reach_every_scheme() {
    use std::collections::{BTreeMap, BTreeSet};
    let mut inputs: Vec<Vec<u8>> = seeds("verify").into_iter().map(|(_, d)| d).collect();
    if let Ok(dir) = std::env::var("FUZZ_CORPUS") {
        for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir}: {e}")) {
            inputs.push(std::fs::read(e.expect("entry").path()).expect("read"));
        }
    }
    let mut seen: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
    for data in &inputs {
        for (scheme, verdict) in hookgate::fuzzing::verdicts(data) {
            *seen.entry(scheme).or_default().entry(verdict).or_default() += 1;
        }
    }
    println!("{} inputs", inputs.len());
    for (scheme, verdicts) in &seen {
        println!("{scheme:18} {verdicts:?}");
        let reached: BTreeSet<&str> = verdicts.keys().copied().collect();
        for want in ["ok", "mismatch", "malformed_header"] {
            assert!(
                reached.contains(want),
                "{scheme}: no `{want}` input: {verdicts:?}"
            );
        }
    }
    assert_eq!(seen.len(), 15, "schemes reached: {:?}", seen.keys());
}
