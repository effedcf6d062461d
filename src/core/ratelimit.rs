//! A token bucket for logging bad input, sans-IO: the caller passes the time.
//!
//! A flood of garbage must not fill a disk with log lines. Each line costs a
//! token; the bucket holds at most `burst` tokens and refills at `per_second`
//! tokens a second, so at most `burst + per_second × t` lines are written in
//! any `t` seconds, whatever arrives. What is held back is counted, and the
//! next line that goes out says how many were:
//!
//! ```
//! use tickcast::core::ratelimit::RateLimiter;
//!
//! let mut log = RateLimiter::new(1, 2);
//! let mut lines = Vec::new();
//! for i in 0..5u64 {
//!     let now_ns = i * 100_000_000; // five bad datagrams within 0.5 s
//!     if log.allow(now_ns) {
//!         lines.push(format!("bad datagram {i}{}", log.suppressed_note()));
//!     }
//! }
//! assert!(log.allow(1_500_000_000));
//! lines.push(format!("bad datagram 5{}", log.suppressed_note()));
//! assert_eq!(lines, ["bad datagram 0", "bad datagram 1", "bad datagram 5 (3 more suppressed)"]);
//! ```

/// Nanoseconds in a second: one token is this many token-nanoseconds.
const NS: u64 = 1_000_000_000;

/// A token bucket: `allow` says whether one more line may be written now.
#[derive(Clone, Debug)]
pub struct RateLimiter {
    per_second: u64,
    /// Capacity, in token-nanoseconds (`burst × 10⁹`).
    capacity: u64,
    /// Tokens held, in token-nanoseconds.
    tokens: u64,
    last_ns: Option<u64>,
    /// Denied since the last allowed call.
    pending: u64,
    /// Denied just before the last allowed call: what its line should mention.
    suppressed: u64,
    total_suppressed: u64,
}

impl RateLimiter {
    /// A bucket that starts full with `burst` tokens and refills at
    /// `per_second`. `burst` 0 allows nothing; `per_second` 0 allows only the
    /// first `burst`.
    pub fn new(per_second: u32, burst: u32) -> RateLimiter {
        let capacity = u64::from(burst) * NS;
        RateLimiter {
            per_second: per_second.into(),
            capacity,
            tokens: capacity,
            last_ns: None,
            pending: 0,
            suppressed: 0,
            total_suppressed: 0,
        }
    }

    /// Takes a token at `now_ns` (any monotonic nanosecond clock) if one is
    /// there. A clock that goes backwards refills nothing.
    pub fn allow(&mut self, now_ns: u64) -> bool {
        let elapsed = self.last_ns.map_or(0, |last| now_ns.saturating_sub(last));
        self.last_ns = Some(self.last_ns.map_or(now_ns, |last| last.max(now_ns)));
        let refill = elapsed.saturating_mul(self.per_second);
        self.tokens = self.tokens.saturating_add(refill).min(self.capacity);
        if self.tokens >= NS {
            self.tokens -= NS;
            self.suppressed = std::mem::take(&mut self.pending);
            true
        } else {
            self.pending += 1;
            self.total_suppressed += 1;
            false
        }
    }

    /// Lines held back between the previous allowed line and the last one
    /// [`allow`](Self::allow) let through: the N of "(N more suppressed)".
    pub fn suppressed(&self) -> u64 {
        self.suppressed
    }

    /// `" (N more suppressed)"`, or `""` when nothing was held back; append
    /// it to the line just allowed.
    pub fn suppressed_note(&self) -> String {
        match self.suppressed {
            0 => String::new(),
            n => format!(" ({n} more suppressed)"),
        }
    }

    /// Lines held back since the start (those not yet mentioned included).
    pub fn total_suppressed(&self) -> u64 {
        self.total_suppressed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn burst_then_the_rate() {
        let mut r = RateLimiter::new(10, 5);
        // A flood at t = 0: only the burst gets through.
        let allowed = (0..1_000).filter(|_| r.allow(0)).count();
        assert_eq!(allowed, 5);
        assert_eq!(r.total_suppressed(), 995);
        // One token every 100 ms.
        assert!(!r.allow(99 * MS));
        assert!(r.allow(100 * MS));
        assert_eq!(r.suppressed(), 996);
        assert_eq!(r.suppressed_note(), " (996 more suppressed)");
        assert!(!r.allow(150 * MS));
        assert!(r.allow(200 * MS));
        assert_eq!(r.suppressed(), 1);
    }

    #[test]
    fn a_flood_for_an_hour_writes_burst_plus_rate_times_seconds() {
        let mut r = RateLimiter::new(2, 10);
        let mut allowed = 0u64;
        // 1,000 bad datagrams a second for 3,600 s, every 1 ms.
        for i in 0..3_600_000u64 {
            allowed += u64::from(r.allow(i * MS));
        }
        // Time runs to 3,599.999 s: 7,199 refills plus the initial burst.
        assert_eq!(allowed, 10 + 7_199);
        assert_eq!(allowed + r.total_suppressed(), 3_600_000);
    }

    #[test]
    fn idle_time_refills_no_more_than_the_burst() {
        let mut r = RateLimiter::new(1_000, 3);
        assert!(r.allow(0));
        let later = 1_000_000 * NS; // 11 days idle
        assert_eq!((0..10).filter(|_| r.allow(later)).count(), 3);
    }

    #[test]
    fn nothing_suppressed_means_an_empty_note() {
        let mut r = RateLimiter::new(1, 1);
        assert!(r.allow(5 * NS));
        assert_eq!((r.suppressed(), r.suppressed_note()), (0, String::new()));
    }

    #[test]
    fn a_clock_going_backwards_refills_nothing() {
        let mut r = RateLimiter::new(1, 1);
        assert!(r.allow(10 * NS));
        assert!(!r.allow(5 * NS));
        assert!(!r.allow(10 * NS)); // no credit for the step back
        assert!(r.allow(11 * NS));
    }

    #[test]
    fn zero_burst_allows_nothing_and_zero_rate_only_the_burst() {
        let mut muted = RateLimiter::new(100, 0);
        assert!((0..10).all(|i| !muted.allow(i * NS)));
        let mut once = RateLimiter::new(0, 2);
        assert_eq!((0..10).filter(|&i| once.allow(i * NS)).count(), 2);
    }

    #[test]
    fn huge_times_do_not_overflow() {
        let mut r = RateLimiter::new(u32::MAX, u32::MAX);
        assert!(r.allow(0));
        assert!(r.allow(u64::MAX));
        assert!(r.allow(u64::MAX));
    }
}
