//! The shared clock of the protocol: nanoseconds since the Unix epoch
//! (CLOCK_REALTIME). Two processes on one host, or clock-synced hosts, share
//! it, which makes one-way latency measurable. Only the runtime layer calls it.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Now, in nanoseconds since the Unix epoch.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// A monotonic instant and the wall-clock time (ns since the Unix epoch)
/// at that instant, so deadlines kept on the monotonic clock can be stamped
/// in the protocol's shared clock.
///
/// The two clocks cannot be read at once, and a thread preempted between
/// the reads would shift every stamp derived from the pair. So the wall
/// clock is read between two monotonic readings, a few times, and the
/// narrowest bracket wins, with the wall time placed at its middle.
pub fn paired_now() -> (Instant, u64) {
    let mut best: Option<(Duration, Instant, u64)> = None;
    for _ in 0..PAIR_TRIES {
        let before = Instant::now();
        let wall = now_ns();
        let after = Instant::now();
        let width = after - before;
        if best.is_none_or(|(w, _, _)| width < w) {
            best = Some((width, before + width / 2, wall));
        }
    }
    let (_, at, wall) = best.expect("at least one try");
    (at, wall)
}

/// Readings [`paired_now`] takes to find a narrow bracket.
const PAIR_TRIES: usize = 5;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paired_now_is_consistent_with_both_clocks() {
        let (at, wall) = paired_now();
        let (now, wall_now) = (Instant::now(), now_ns());
        // Wall time moved forward by about as much as monotonic time did
        // (generous bound: the test checks the pairing, not timing).
        let mono = (now - at).as_nanos() as i128;
        let real = wall_now as i128 - wall as i128;
        assert!((real - mono).abs() < 50_000_000, "mono {mono} real {real}");
    }
}
