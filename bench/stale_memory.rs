//! What it costs this machine to write memory that has not been written for a while: the
//! memory journal's floor. A full ring of 100,000 events of 2,200 bytes (what the journal holds
//! with 1.5 KB bodies) is rewritten in order, one event at a time, with the ring turning over
//! every 0 s, 1 s and 4 s (a busy spin between events stands for the rest of a request). Only
//! the copies are timed.
//!
//!     rustc -O bench/stale_memory.rs -o /tmp/stale_memory && taskset -c 0 /tmp/stale_memory

use std::time::{Duration, Instant};

fn main() {
    let (events, size) = (100_000usize, 2_200usize);
    let event = vec![7u8; size];
    let mut ring = vec![1u8; events * size];
    for gap_us in [0u64, 10, 40] {
        let writes = 150_000;
        let mut copying = Duration::ZERO;
        for i in 0..writes {
            let at = (i % events) * size;
            let t = Instant::now();
            ring[at..at + size].copy_from_slice(&event);
            copying += t.elapsed();
            let spin = Instant::now();
            while spin.elapsed() < Duration::from_micros(gap_us) {
                std::hint::spin_loop();
            }
        }
        println!(
            "ring turns over every {:.1} s: {:.0} ns per 2,200-byte event",
            (events as u64 * gap_us) as f64 / 1e6,
            copying.as_nanos() as f64 / writes as f64
        );
    }
    println!("(checksum {})", ring.iter().step_by(4096).map(|&b| b as u64).sum::<u64>());
}
