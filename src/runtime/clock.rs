//! The shared clock of the protocol: nanoseconds since the Unix epoch
//! (CLOCK_REALTIME). Two processes on one host, or clock-synced hosts, share
//! it, which makes one-way latency measurable. Only the runtime layer calls it.
//!
//! [`Anchor`] is the one way a runtime thread reads a `now` in ns that never
//! steps: a monotonic instant plus a base, the wall clock at
//! [`paired_now`] (the broadcaster) or zero (the relay's conditioner).
//! [`WallToAnchor`] turns a wall-clock stamp (the kernel's receive time of
//! a datagram) into an anchor's reading.

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

/// A monotonic instant and a count of nanoseconds at it: "now" reads as
/// that count plus the monotonic time elapsed since, so it never steps back
/// or jumps, whatever the wall clock does. The runtime's threads keep one
/// to give the sans-IO core its `now` (leases, pongs, release times).
#[derive(Clone, Copy, Debug)]
pub struct Anchor {
    at: Instant,
    base_ns: u64,
}

impl Anchor {
    /// Anchored to the protocol's clock by [`paired_now`]: [`Anchor::now_ns`]
    /// reads as ns since the Unix epoch, advancing with the monotonic clock.
    pub fn paired() -> Anchor {
        let (at, base_ns) = paired_now();
        Anchor { at, base_ns }
    }

    /// Anchored at zero now: [`Anchor::now_ns`] reads as ns since this call.
    pub fn from_zero() -> Anchor {
        Anchor {
            at: Instant::now(),
            base_ns: 0,
        }
    }

    /// The count at the anchor: the wall-clock time of a paired anchor, 0
    /// for one from zero.
    pub fn base_ns(&self) -> u64 {
        self.base_ns
    }

    /// Monotonic time since the anchor.
    pub fn elapsed(&self) -> Duration {
        self.at.elapsed()
    }

    /// The reading `elapsed` after the anchor: the base plus `elapsed`, in
    /// ns, saturating at `u64::MAX`.
    pub fn ns_at(&self, elapsed: Duration) -> u64 {
        let elapsed = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.base_ns.saturating_add(elapsed)
    }

    /// Now: [`Anchor::ns_at`] the time elapsed since the anchor.
    pub fn now_ns(&self) -> u64 {
        self.ns_at(self.elapsed())
    }

    /// The reading at monotonic instant `t` (the base, for an instant
    /// before the anchor).
    pub fn ns_at_instant(&self, t: Instant) -> u64 {
        self.ns_at(t.saturating_duration_since(self.at))
    }
}

/// How often [`WallToAnchor`] reads the pair of clocks afresh.
pub const REPAIR_EVERY: Duration = Duration::from_millis(100);

/// Turns wall-clock times (ns since the Unix epoch, such as the kernel's
/// SO_TIMESTAMPNS receive stamps) into readings of an [`Anchor`], through
/// the offset between the two clocks at a [`paired_now`] reading. The pair
/// is read afresh every [`REPAIR_EVERY`], so a slewed wall clock drifts the
/// conversion by no more than its slew over that time (at most 50 µs at
/// NTP's 500 ppm), and a stepped one misleads it for no longer than that.
#[derive(Clone, Copy, Debug)]
pub struct WallToAnchor {
    anchor: Anchor,
    /// The anchor's reading minus the wall clock's, at `paired`.
    offset: i128,
    paired: Instant,
}

impl WallToAnchor {
    /// Converts into `anchor`'s readings.
    pub fn new(anchor: Anchor) -> WallToAnchor {
        let mut c = WallToAnchor {
            anchor,
            offset: 0,
            paired: Instant::now(),
        };
        c.pair();
        c
    }

    fn pair(&mut self) {
        let (at, wall) = paired_now();
        self.offset = i128::from(self.anchor.ns_at_instant(at)) - i128::from(wall);
        self.paired = at;
    }

    /// The anchor's reading at wall-clock time `wall_ns`, saturating at 0
    /// and `u64::MAX`. A wall clock stepped since the stamp was taken puts
    /// it off by the step, ahead of now or far behind: check it against
    /// [`Anchor::now_ns`].
    pub fn convert(&mut self, wall_ns: u64) -> u64 {
        if self.paired.elapsed() >= REPAIR_EVERY {
            self.pair();
        }
        let t = i128::from(wall_ns) + self.offset;
        u64::try_from(t.max(0)).unwrap_or(u64::MAX)
    }
}

/// Asks the OS to wake the calling thread at the times it sleeps to, not
/// up to its timer slack later: Linux rounds a sleeping thread's wake-up up
/// by that slack (50 µs by default) to batch wake-ups. For the threads that
/// sleep to deadlines (the broadcaster, the relay, a predicting receiver).
/// Best effort; nothing elsewhere.
pub fn precise_wakeups() {
    #[cfg(target_os = "linux")]
    let _ = nix::sys::prctl::set_timerslack(1);
}

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

    #[test]
    fn an_anchor_reads_its_base_plus_the_monotonic_time_since() {
        let zero = Anchor::from_zero();
        assert_eq!(zero.base_ns(), 0);
        assert_eq!(zero.ns_at(Duration::from_micros(3)), 3_000);
        assert_eq!(zero.ns_at(Duration::MAX), u64::MAX);
        let (a, b) = (zero.now_ns(), zero.now_ns());
        assert!(a <= b && b < 50_000_000, "{a} {b}");

        let paired = Anchor::paired();
        assert_eq!(paired.ns_at(Duration::ZERO), paired.base_ns());
        assert_eq!(paired.ns_at(Duration::MAX), u64::MAX);
        let drift = paired.now_ns() as i128 - now_ns() as i128;
        assert!(
            drift.abs() < 50_000_000,
            "paired anchor {drift} ns off the wall clock"
        );
    }

    #[test]
    fn a_wall_clock_time_converts_to_the_anchors_reading_then() {
        // A paired anchor is a second, monotonic wall clock: wall time 3 ms
        // ago reads as its reading 3 ms ago (generous bound: the test
        // checks the arithmetic, not timing).
        // A thread preempted between its two clock readings on a loaded
        // host would show the preemption as an offset: the arithmetic is
        // right if any of a bounded number of tries comes out right.
        let mut offs = Vec::new();
        for _ in 0..20 {
            let paired = Anchor::paired();
            let mut c = WallToAnchor::new(paired);
            let (wall, mono) = (now_ns(), paired.now_ns());
            let then = c.convert(wall - 3_000_000);
            offs.push(mono as i128 - 3_000_000 - then as i128);
            if offs.last().is_some_and(|o| o.abs() < 5_000_000) {
                break;
            }
        }
        assert!(offs.iter().any(|o| o.abs() < 5_000_000), "{offs:?} ns off");
        // The top of the range neither wraps nor panics: it saturates, or
        // (when the anchor's reading runs a few ns behind the wall clock)
        // comes out those few ns below the top.
        let mut c = WallToAnchor::new(Anchor::paired());
        assert!(c.convert(u64::MAX) >= u64::MAX - 1_000_000_000, "saturates");
        // From zero: the epoch is long before the anchor.
        assert_eq!(WallToAnchor::new(Anchor::from_zero()).convert(0), 0);
    }
}
