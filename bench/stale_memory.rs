//! What it costs this machine to write memory that has not been written for a while: what a
//! full memory journal pays per event. A ring of 100,000 events of 2,200 bytes (what the
//! journal holds with 1.5 KB bodies) is rewritten in order, one event at a time, with the ring
//! turning over every 0 s, 1 s and 4 s (a busy spin between events stands for the rest of a
//! request), on ordinary 4 KiB pages and then on a mapping advised onto transparent huge
//! pages, as the journal's arena does. Only the copies are timed.
//!
//!     cargo run --release --example stale_memory

use std::time::{Duration, Instant};

const EVENTS: usize = 100_000;
const SIZE: usize = 2_200;

fn rewrite(ring: &mut [u8], what: &str) {
    let event = vec![7u8; SIZE];
    for gap_us in [0u64, 10, 40] {
        let writes = 150_000;
        let mut copying = Duration::ZERO;
        for i in 0..writes {
            let at = (i % EVENTS) * SIZE;
            let t = Instant::now();
            ring[at..at + SIZE].copy_from_slice(&event);
            copying += t.elapsed();
            let spin = Instant::now();
            while spin.elapsed() < Duration::from_micros(gap_us) {
                std::hint::spin_loop();
            }
        }
        println!(
            "{what}: ring turns over every {:.1} s: {:.0} ns per 2,200-byte event",
            (EVENTS as u64 * gap_us) as f64 / 1e6,
            copying.as_nanos() as f64 / writes as f64
        );
    }
}

fn main() -> std::io::Result<()> {
    let mut small = vec![1u8; EVENTS * SIZE];
    rewrite(&mut small, "4 KiB pages");
    drop(small);
    let mut huge = memmap2::MmapOptions::new()
        .len((EVENTS * SIZE).next_multiple_of(2 << 20))
        .map_anon()?;
    #[cfg(target_os = "linux")]
    huge.advise(memmap2::Advice::HugePage)?;
    huge.fill(1);
    rewrite(&mut huge, "huge pages");
    Ok(())
}
