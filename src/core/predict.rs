//! Predicts when the next tick's first datagram will arrive, so a receiver in
//! low-latency mode can sleep until just before it and busy-poll the socket
//! for the last stretch, instead of paying the operating system's wake-up
//! latency on every tick. Sans-IO: fed each fresh snapshot part's
//! `(tick, scheduled_ns)` and arrival time; never reads a clock.
//!
//! The sender's ticks are due at `scheduled_ns`, exactly one period apart.
//! The period is learned from two ticks' scheduled times; the arrival offset
//! (arrival − scheduled, in the receiver's clock, so it holds the one-way
//! delay plus any clock difference) is the smallest of the last
//! [`OFFSET_SAMPLES`] ticks' first arrivals: a lower envelope, because a
//! late arrival says the path was slow, not that the next one will be.

use std::time::Duration;

/// Ticks whose first-arrival offset is remembered.
pub const OFFSET_SAMPLES: usize = 16;
/// Spins [`SpinJudge`] weighs at a time.
pub const SPIN_WINDOW: usize = 16;
/// Misses among the last [`SPIN_WINDOW`] spins that stop the spinning.
pub const SPIN_MISSES: usize = 8;
/// How long a [`SpinJudge`] that stopped the spinning first waits before
/// it tries again, ns; each try that fails doubles it.
pub const SPIN_BACKOFF_NS: u64 = 2_000_000_000;
/// The longest a [`SpinJudge`] waits between two tries, ns.
pub const SPIN_BACKOFF_MAX_NS: u64 = 32_000_000_000;

/// Whether a predicting receiver's spinning pays, judged once per tick:
/// a tick whose first datagram a spin caught is a hit; one whose first
/// datagram woke the sleeping thread is a miss (it came before the spin
/// began, or after it gave up). When [`SPIN_MISSES`] of the last
/// [`SPIN_WINDOW`] ticks are misses, spinning stops: the receiver then
/// waits as `wait` does, and tries again after [`SPIN_BACKOFF_NS`], with a
/// clean slate; each try that fails doubles the wait, up to
/// [`SPIN_BACKOFF_MAX_NS`], and a full window that pays brings it back
/// down. Only a full window is judged, so the first ticks, missed while
/// the wake margin is learnt, do not stop it.
///
/// Why: when other work keeps every core busy, the spin takes the core
/// the broadcaster needs at its deadline, the tick leaves late, the spin
/// gives up before it arrives, and the datagram then wakes the receiver
/// as in `wait`, after a sleep that was meant to end earlier: predict was
/// measured at p50 50-60 µs against wait's 35-45 µs so. Backing off
/// makes it wait, at wait's cost and latency, while that lasts.
#[derive(Clone, Debug, Default)]
pub struct SpinJudge {
    /// The last spins' outcomes, `true` a miss (a ring of [`SPIN_WINDOW`]).
    misses: Vec<bool>,
    next: usize,
    /// While spinning is stopped: when it may resume (ns, the caller's clock).
    resume_at: Option<u64>,
    /// The wait the next stop takes, ns (0: [`SPIN_BACKOFF_NS`]).
    backoff_ns: u64,
}

impl SpinJudge {
    /// A judge that has seen nothing: spinning is on.
    pub fn new() -> SpinJudge {
        SpinJudge::default()
    }

    /// Whether to spin for the next tick at `now_ns`.
    pub fn spinning(&mut self, now_ns: u64) -> bool {
        match self.resume_at {
            Some(at) if now_ns < at => false,
            Some(_) => {
                // Try again, afresh, remembering how long the next stop lasts.
                *self = SpinJudge {
                    backoff_ns: self.backoff_ns,
                    ..SpinJudge::default()
                };
                true
            }
            None => true,
        }
    }

    /// Records one tick's outcome at `now_ns`: `hit` if a spin caught it.
    /// When this outcome stops the spinning, how long for, ns.
    pub fn record(&mut self, hit: bool, now_ns: u64) -> Option<u64> {
        if self.resume_at.is_some() {
            return None;
        }
        if self.misses.len() < SPIN_WINDOW {
            self.misses.push(!hit);
        } else {
            self.misses[self.next] = !hit;
        }
        self.next = (self.next + 1) % SPIN_WINDOW;
        // Judged on a full window only: the first ticks after a start are
        // missed while the wake margin is still being learnt.
        if self.misses.len() < SPIN_WINDOW {
            return None;
        }
        if self.misses.iter().filter(|&&m| m).count() < SPIN_MISSES {
            self.backoff_ns = 0; // it pays: a later stop starts short again
            return None;
        }
        let wait = match self.backoff_ns {
            0 => SPIN_BACKOFF_NS,
            n => n,
        };
        self.resume_at = Some(now_ns.saturating_add(wait));
        self.backoff_ns = wait.saturating_mul(2).min(SPIN_BACKOFF_MAX_NS);
        Some(wait)
    }
}

/// Whether one sleep of a predicting receiver, `asked` long, that ended
/// after `slept`, teaches how late this host wakes (its
/// [`WakeMargin`](crate::core::schedule::WakeMargin)). A wake-up by the
/// timer does; so does one by a datagram that came after the time asked
/// for, since the timer had not fired by then: it was at least `slept −
/// asked` late. A datagram that came first, earlier, says nothing of the
/// timer. Learning from the timer's wake-ups alone leaves out every one
/// late enough for the datagram to come first, so on a host that wakes
/// late the margin stays too small to be reached, and the receiver wakes
/// with its datagram, as `wait` does.
pub fn teaches_margin(asked: Duration, slept: Duration, woken_by_datagram: bool) -> bool {
    !asked.is_zero() && (!woken_by_datagram || slept > asked)
}

/// Learns the tick period and the arrival offset of a stream.
#[derive(Clone, Debug, Default)]
pub struct ArrivalPredictor {
    /// Newest tick seen and its scheduled time.
    last: Option<(u64, u64)>,
    /// Sender's period in nanoseconds, once two ticks were seen.
    period_ns: Option<u64>,
    /// First-arrival offsets (arrival − scheduled) of recent ticks, a ring.
    offsets: Vec<i64>,
    next: usize,
}

impl ArrivalPredictor {
    /// A predictor that has seen nothing.
    pub fn new() -> ArrivalPredictor {
        ArrivalPredictor::default()
    }

    /// Forgets everything (call on a new session).
    pub fn reset(&mut self) {
        *self = ArrivalPredictor::default();
    }

    /// Records a fresh snapshot part of `tick`, scheduled at `scheduled_ns`,
    /// that arrived at `arrival_ns`. Only a tick's first arrival teaches.
    pub fn on_part(&mut self, tick: u64, scheduled_ns: u64, arrival_ns: u64) {
        if let Some((last_tick, last_sched)) = self.last {
            if tick <= last_tick {
                if scheduled_ns <= last_sched {
                    return; // a later part, or a late one, of a known tick
                }
                // Ticks went back while time went on: a new session.
                self.reset();
                return self.on_part(tick, scheduled_ns, arrival_ns);
            }
            let (dt, ds) = (tick - last_tick, scheduled_ns.saturating_sub(last_sched));
            if ds > 0 {
                self.period_ns = Some(ds / dt);
            }
        }
        self.last = Some((tick, scheduled_ns));
        let offset = arrival_ns as i64 - scheduled_ns as i64;
        if self.offsets.len() < OFFSET_SAMPLES {
            self.offsets.push(offset);
        } else {
            self.offsets[self.next] = offset;
        }
        self.next = (self.next + 1) % OFFSET_SAMPLES;
    }

    /// The sender's period, once learned.
    pub fn period_ns(&self) -> Option<u64> {
        self.period_ns
    }

    /// The newest tick seen, if any.
    pub fn last_tick(&self) -> Option<u64> {
        self.last.map(|(tick, _)| tick)
    }

    /// When the first datagram of the next tick after `now_ns` should
    /// arrive, in the receiver's clock; `None` until two ticks were seen.
    pub fn next_arrival(&self, now_ns: u64) -> Option<u64> {
        let (_, sched) = self.last?;
        let period = self.period_ns?;
        let offset = *self.offsets.iter().min()?;
        let first = (sched as i64 + period as i64 + offset).max(0) as u64;
        if first > now_ns {
            return Some(first);
        }
        // Ticks were lost or skipped: the next one still falls on the grid.
        let behind = (now_ns - first) / period + 1;
        Some(first + behind * period)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: u64 = 16_666_666;

    #[test]
    fn learns_period_and_lower_envelope_of_delay() {
        let mut p = ArrivalPredictor::new();
        assert_eq!(p.next_arrival(0), None);
        // Ticks 10.., scheduled on a 60 Hz grid, delays 40, 25, 90 µs.
        for (i, delay) in [40_000u64, 25_000, 90_000].into_iter().enumerate() {
            let sched = 1_000_000_000 + (10 + i as u64) * P;
            p.on_part(10 + i as u64, sched, sched + delay);
        }
        assert_eq!(p.period_ns(), Some(P));
        let last_sched = 1_000_000_000 + 12 * P;
        assert_eq!(
            p.next_arrival(last_sched + 90_000),
            Some(last_sched + P + 25_000)
        );
    }

    #[test]
    fn later_parts_of_a_tick_do_not_teach() {
        let mut p = ArrivalPredictor::new();
        p.on_part(1, P, P + 10_000);
        p.on_part(2, 2 * P, 2 * P + 10_000);
        p.on_part(2, 2 * P, 2 * P + 500_000);
        assert_eq!(p.next_arrival(2 * P + 20_000), Some(3 * P + 10_000));
    }

    #[test]
    fn after_a_silence_the_prediction_stays_on_the_grid() {
        let mut p = ArrivalPredictor::new();
        p.on_part(1, P, P + 5_000);
        p.on_part(2, 2 * P, 2 * P + 5_000);
        // Five periods later, still on the grid, in the future.
        let now = 7 * P + 6_000;
        assert_eq!(p.next_arrival(now), Some(8 * P + 5_000));
    }

    #[test]
    fn a_restarted_sender_is_learned_afresh() {
        let mut p = ArrivalPredictor::new();
        p.on_part(500, 500 * P, 500 * P + 1_000);
        p.on_part(501, 501 * P, 501 * P + 1_000);
        // New session: ticks from 0, scheduled later, on a 30 Hz grid.
        let t0 = 600 * P;
        p.on_part(0, t0, t0 + 2_000);
        assert_eq!(
            p.next_arrival(t0 + 3_000),
            None,
            "one tick of the new session"
        );
        p.on_part(1, t0 + 2 * P, t0 + 2 * P + 2_000);
        assert_eq!(p.period_ns(), Some(2 * P));
        assert_eq!(p.next_arrival(t0 + 2 * P + 3_000), Some(t0 + 4 * P + 2_000));
    }

    #[test]
    fn a_datagram_that_woke_the_receiver_late_teaches_the_margin() {
        let us = Duration::from_micros;
        // The timer woke it: always a lesson, early or late.
        assert!(teaches_margin(us(16_000), us(16_010), false));
        assert!(teaches_margin(us(16_000), us(15_990), false));
        // A datagram woke it after the time asked for: the timer was late.
        assert!(teaches_margin(us(16_000), us(16_200), true));
        // A datagram came first: nothing learnt of the timer.
        assert!(!teaches_margin(us(16_000), us(9_000), true));
        assert!(!teaches_margin(us(16_000), us(16_000), true));
        // No sleep, nothing learnt.
        assert!(!teaches_margin(Duration::ZERO, us(5), false));
    }

    #[test]
    fn spinning_stops_when_half_the_spins_miss_and_resumes_after_the_backoff() {
        let mut j = SpinJudge::new();
        let mut now = 0;
        // Hits keep it spinning, whatever a few misses say.
        for i in 0..100 {
            assert!(j.spinning(now));
            assert_eq!(j.record(i % 4 != 0, now), None);
            now += P;
        }
        assert!(j.spinning(now));
        // Half of the window missing stops it...
        let stops: Vec<_> = (0..SPIN_WINDOW)
            .filter_map(|i| j.record(i % 2 == 0, now))
            .collect();
        assert_eq!(stops, [SPIN_BACKOFF_NS], "said once");
        let stopped = now;
        assert!(!j.spinning(stopped));
        assert!(!j.spinning(stopped + SPIN_BACKOFF_NS - 1));
        // ...and what comes meanwhile is not judged.
        assert_eq!(j.record(false, stopped + 1), None);
        // After the backoff it spins again, with a clean slate: one miss
        // does not stop it at once.
        let mut now = stopped + SPIN_BACKOFF_NS;
        assert!(j.spinning(now));
        assert_eq!(j.record(false, now), None);
        assert!(j.spinning(now + P));
        // A try that fails waits twice as long, up to the longest wait.
        let mut waits = Vec::new();
        for _ in 0..6 {
            let wait = (0..SPIN_WINDOW).find_map(|_| j.record(false, now)).unwrap();
            waits.push(wait / 1_000_000_000);
            now += wait;
            assert!(j.spinning(now));
        }
        assert_eq!(waits, [4, 8, 16, 32, 32, 32]);
        // A window that pays brings the wait back to the first.
        for _ in 0..SPIN_WINDOW {
            assert_eq!(j.record(true, now), None);
        }
        let wait = (0..SPIN_WINDOW).find_map(|_| j.record(false, now));
        assert_eq!(wait, Some(SPIN_BACKOFF_NS));
    }

    #[test]
    fn the_first_window_is_for_learning() {
        let mut j = SpinJudge::new();
        for i in 0..SPIN_WINDOW - 1 {
            assert_eq!(j.record(false, i as u64), None, "tick {i}");
            assert!(j.spinning(i as u64));
        }
        // The window full, and every tick missed: now it stops.
        assert!(j.record(false, SPIN_WINDOW as u64).is_some());
        assert!(!j.spinning(SPIN_WINDOW as u64));
    }

    #[test]
    fn last_tick_is_the_newest_seen() {
        let mut p = ArrivalPredictor::new();
        assert_eq!(p.last_tick(), None);
        p.on_part(4, 4 * P, 4 * P);
        p.on_part(3, 3 * P, 3 * P);
        assert_eq!(p.last_tick(), Some(4));
    }

    #[test]
    fn reset_forgets_the_stream() {
        let mut p = ArrivalPredictor::new();
        p.on_part(1, P, P);
        p.on_part(2, 2 * P, 2 * P);
        p.reset();
        assert_eq!(p.next_arrival(0), None);
    }
}
