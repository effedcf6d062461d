//! The link's jitter as a function of time: a datagram arriving at `t` is
//! delayed by `delay + j(t)`, where `j` moves in straight lines between
//! knots drawn uniformly in `[-jitter, +jitter]`, one knot every
//! `2 × jitter` of the caller's clock.
//!
//! Why a process in time and not a draw per datagram: a broadcaster sends a
//! tick as a burst of parts microseconds apart. Drawn per datagram and then
//! raised to keep the order (a datagram may not leave before the one ahead
//! of it), every part of a burst took the largest delay drawn so far in the
//! burst, so the median delay was about `delay + jitter`, not `delay` (the
//! `wifi` preset, 12 ms ± 3 ms, measured p50 15.3 ms; `bad`, 300 ms ± 75 ms,
//! 342 ms). Here the delay is one value at each instant, shared by every
//! datagram crossing the link then, like a queue's:
//!
//! * it stays within `delay ± jitter`, and its distribution is symmetric
//!   about `delay` (each value is a weighted mean of two independent
//!   uniform knots), so the median is `delay`;
//! * it never falls faster than time passes (the steepest fall is
//!   `2 × jitter` over one knot interval of `2 × jitter`), so
//!   `t + delay(t)` never decreases: jitter alone keeps the order, with no
//!   datagram raised to the one ahead of it;
//! * datagrams a knot interval or more apart see independent delays; those
//!   of one burst, nearly the same.
//!
//! The knots come from a hash of the seed and the knot's index
//! (splitmix64), not from the decision stream: the fates of datagrams do
//! not depend on their arrival times, and the delay does not depend on
//! which datagrams arrived. Integer arithmetic throughout; sans-IO.

/// The jitter of a link at each instant; see the module docs.
#[derive(Clone, Copy, Debug)]
pub(super) struct LinkJitter {
    jitter_ns: u64,
    seed: u64,
}

/// Added to the seed so that the knots and the decision stream, both
/// seeded from one `seed=`, are unrelated.
const KNOT_SALT: u64 = 0x6a09_e667_f3bc_c909;
/// splitmix64's increment.
const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// splitmix64's output function: a bijection of u64 that mixes every bit.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl LinkJitter {
    /// Jitter within `±jitter_ns`, its knots seeded by `seed`.
    pub(super) fn new(jitter_ns: u64, seed: u64) -> LinkJitter {
        LinkJitter { jitter_ns, seed }
    }

    /// Time between knots: `2 × jitter`, the shortest for which the
    /// release time `t + delay(t)` never decreases.
    fn period_ns(&self) -> u64 {
        self.jitter_ns.saturating_mul(2)
    }

    /// Knot `k`: uniform in `[-jitter, +jitter]` (in ns).
    fn knot(&self, k: u64) -> i64 {
        let x = mix((self.seed ^ KNOT_SALT).wrapping_add(k.wrapping_add(1).wrapping_mul(GAMMA)));
        let width = self.period_ns() + 1; // 2J + 1 values, −J..=J
        (x % width) as i64 - self.jitter_ns as i64
    }

    /// The jitter at `t_ns`: the straight line between the knots on either
    /// side of it, in ns, within `±jitter`.
    pub(super) fn jitter_at(&self, t_ns: u64) -> i64 {
        let period = self.period_ns();
        if period == 0 {
            return 0;
        }
        let k = t_ns / period;
        let into = i128::from(t_ns % period);
        let (a, b) = (i128::from(self.knot(k)), i128::from(self.knot(k + 1)));
        (a + (b - a) * into / i128::from(period)) as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    /// A link of `delay_ns` and this jitter: its whole delay at `t_ns`.
    fn delay_at(delay_ns: u64, j: &LinkJitter, t_ns: u64) -> u64 {
        delay_ns.saturating_add_signed(j.jitter_at(t_ns))
    }

    #[test]
    fn no_jitter_is_the_base_delay_at_every_instant() {
        let j = LinkJitter::new(0, 1);
        for t in [0, 1, 17 * MS, u64::MAX] {
            assert_eq!(delay_at(12 * MS, &j, t), 12 * MS);
        }
    }

    #[test]
    fn the_delay_stays_within_its_bounds_centred_on_the_base() {
        let j = LinkJitter::new(75 * MS, 7);
        let mut samples: Vec<u64> = (0..200_000u64)
            .map(|i| delay_at(300 * MS, &j, i * 997_123))
            .collect();
        assert!(samples.iter().all(|&d| (225 * MS..=375 * MS).contains(&d)));
        samples.sort_unstable();
        let median = samples[samples.len() / 2] as f64;
        assert!((median - 300e6).abs() < 0.02 * 300e6, "median {median} ns");
    }

    #[test]
    fn release_times_never_go_backwards() {
        for (jitter, seed) in [(3 * MS, 1), (75 * MS, 2), (200_000, 3), (1, 4)] {
            let j = LinkJitter::new(jitter, seed);
            let mut last = 0;
            for i in 0..100_000u64 {
                let t = i * 13_337;
                let release = t + delay_at(10 * MS, &j, t);
                // Integer rounding may take back one nanosecond, no more.
                assert!(release + 1 >= last, "jitter {jitter}: at {t}");
                last = last.max(release);
            }
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_delays_and_another_seed_others() {
        let (a, b, c) = (
            LinkJitter::new(MS, 5),
            LinkJitter::new(MS, 5),
            LinkJitter::new(MS, 6),
        );
        let at = |j: &LinkJitter| {
            (0..50)
                .map(|i| j.jitter_at(i * 700_001))
                .collect::<Vec<_>>()
        };
        assert_eq!(at(&a), at(&b));
        assert_ne!(at(&a), at(&c));
    }
}
