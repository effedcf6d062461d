//! The tick schedule, sans-IO: which tick is due, when the next one is, and
//! which ticks can no longer be met. The caller passes the time elapsed since
//! its own `t0`; nothing here reads a clock.
//!
//! # Guarantees
//!
//! * Deadlines are absolute and exact: `deadline(k)` is computed from `k` in
//!   integer nanoseconds, never by adding periods up, so there is no drift
//!   however long the schedule runs.
//! * The period is a rational number of nanoseconds `num / den`, and
//!   `deadline(k) = floor(k × num / den)` ns (in 128-bit integers). A
//!   schedule built from a rate takes the rate to the nearest micro-hertz:
//!   `num = 10^15`, `den = round(rate × 10^6)`. So at 60 Hz the period is
//!   16_666_666.67 ns, `deadline(k) = floor(k × 10^9 / 60)`, and 60 ticks
//!   take exactly one second (as do 59.94 × 100 ticks at 59.94 Hz, 100 s).
//! * Ticks are sent in order, each at most once. When the caller is late by
//!   a whole period or more, the ticks it can no longer meet are skipped
//!   (counted, never sent in a burst) and the tick whose slot
//!   `[deadline(k), deadline(k + 1))` contains the present is sent.
//! * No input makes it panic: arithmetic that would overflow saturates.

use std::time::Duration;

const NANOS_PER_SEC: u128 = 1_000_000_000;
/// A rate is taken to this resolution: 10^6 per hertz, i.e. micro-hertz.
const RATE_SCALE: f64 = 1e6;
/// `num` for a rate-built schedule: 10^9 ns × 10^6 µHz per Hz.
const RATE_NUM: u128 = NANOS_PER_SEC * 1_000_000;

/// What the caller should do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing is due: poll again at `until`.
    Wait {
        /// The next tick's deadline, as time since `t0`.
        until: Duration,
    },
    /// Send tick `tick` now; the schedule has moved on to the tick after it.
    Send {
        /// The tick to send.
        tick: u64,
        /// How far past its deadline this tick is (less than one period).
        late: Duration,
        /// Ticks before `tick` given up because their slot had passed.
        skipped: u64,
    },
}

/// A fixed-rate schedule of ticks `0, 1, 2, …` with absolute deadlines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// Period numerator, in nanoseconds (≥ 1).
    num: u128,
    /// Period denominator (≥ 1).
    den: u128,
    /// The next tick to send.
    next: u64,
}

impl Schedule {
    /// A schedule with the given period, or `None` for a zero period.
    pub fn from_period(period: Duration) -> Option<Schedule> {
        let num = period.as_nanos();
        (num > 0).then_some(Schedule {
            num,
            den: 1,
            next: 0,
        })
    }

    /// A schedule at `rate_hz` ticks per second, taken to the nearest
    /// micro-hertz; `None` if that is not a positive finite rate below
    /// 2^64 µHz (so anything under 0.5 µHz, NaN and infinities).
    pub fn from_rate_hz(rate_hz: f64) -> Option<Schedule> {
        let scaled = (rate_hz * RATE_SCALE).round();
        if !(scaled >= 1.0 && scaled < u64::MAX as f64) {
            return None;
        }
        Some(Schedule {
            num: RATE_NUM,
            den: scaled as u128,
            next: 0,
        })
    }

    /// The next tick this schedule will send (the number of ticks sent or
    /// skipped so far).
    pub fn next_tick(&self) -> u64 {
        self.next
    }

    /// When tick `tick` is due, as time since `t0`: `floor(tick × num / den)` ns.
    pub fn deadline(&self, tick: u64) -> Duration {
        self.deadline_ns(tick)
            .map_or(Duration::MAX, duration_from_ns)
    }

    /// How many ticks are due strictly before `span` has elapsed: the ticks
    /// `k` with `deadline(k) < span`, which is `ceil(span × rate)` computed
    /// exactly. A run limited to `span` sends (or skips) these ticks.
    pub fn ticks_within(&self, span: Duration) -> u64 {
        let d = span.as_nanos();
        if d == 0 {
            return 0;
        }
        // deadline(k) < d  ⟺  k × num < d × den  ⟺  k ≤ (d × den − 1) / num.
        match d.checked_mul(self.den) {
            Some(x) => saturate_u64((x - 1) / self.num).saturating_add(1),
            None => u64::MAX,
        }
    }

    /// Decides what to do at `elapsed` (time since `t0`, from the caller's
    /// monotonic clock). Sending advances the schedule; waiting does not.
    pub fn poll(&mut self, elapsed: Duration) -> Action {
        let due = self.deadline(self.next);
        if elapsed < due {
            return Action::Wait { until: due };
        }
        // The last tick whose deadline is at or before `elapsed`:
        // deadline(k) ≤ e  ⟺  k × num < (e + 1) × den  ⟺  k ≤ ((e + 1) × den − 1) / num.
        let e = elapsed.as_nanos();
        let tick = e
            .checked_add(1)
            .and_then(|e1| e1.checked_mul(self.den))
            .map_or(u64::MAX, |x| saturate_u64((x - 1) / self.num))
            .max(self.next);
        let late = elapsed.saturating_sub(self.deadline(tick));
        let skipped = tick - self.next;
        self.next = tick.saturating_add(1);
        Action::Send {
            tick,
            late,
            skipped,
        }
    }

    fn deadline_ns(&self, tick: u64) -> Option<u128> {
        u128::from(tick).checked_mul(self.num).map(|x| x / self.den)
    }
}

fn saturate_u64(x: u128) -> u64 {
    u64::try_from(x).unwrap_or(u64::MAX)
}

fn duration_from_ns(ns: u128) -> Duration {
    match u64::try_from(ns / NANOS_PER_SEC) {
        Ok(secs) => Duration::new(secs, (ns % NANOS_PER_SEC) as u32),
        Err(_) => Duration::MAX,
    }
}

/// How many recent sleeps [`WakeMargin`] remembers.
pub const WAKE_SAMPLES: usize = 32;
/// The most [`WakeMargin`] will ever spin before a deadline.
pub const MAX_WAKE_MARGIN: Duration = Duration::from_millis(2);

/// Learns how late this machine wakes a sleeping thread, so the sender can
/// sleep until `deadline − margin` and busy-spin only the last stretch.
///
/// Sans-IO: the caller reports each sleep (asked vs. actually slept). The
/// margin is `base` plus the 90th-percentile overshoot of the last
/// [`WAKE_SAMPLES`] sleeps, capped at [`MAX_WAKE_MARGIN`]. On a quiet host it
/// stays near `base`; on a virtual machine whose timer wakes hundreds of
/// microseconds late it grows to cover that, at the cost of spinning longer.
#[derive(Clone, Debug)]
pub struct WakeMargin {
    base: Duration,
    recent: [Duration; WAKE_SAMPLES],
    next: usize,
    margin: Duration,
}

impl WakeMargin {
    /// A margin that starts at `base` (the configured minimum spin).
    pub fn new(base: Duration) -> WakeMargin {
        WakeMargin {
            base,
            recent: [Duration::ZERO; WAKE_SAMPLES],
            next: 0,
            margin: base.min(MAX_WAKE_MARGIN),
        }
    }

    /// Time to spin before a deadline rather than sleep.
    pub fn margin(&self) -> Duration {
        self.margin
    }

    /// Records one sleep: `asked` for, `slept` in fact.
    pub fn record(&mut self, asked: Duration, slept: Duration) {
        self.recent[self.next] = slept.saturating_sub(asked);
        self.next = (self.next + 1) % WAKE_SAMPLES;
        let mut sorted = self.recent;
        sorted.sort_unstable();
        let p90 = sorted[WAKE_SAMPLES * 9 / 10];
        self.margin = (self.base + p90).min(MAX_WAKE_MARGIN);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn steady_state_waits_then_sends_each_tick_once() {
        let mut s = Schedule::from_period(ms(10)).unwrap();
        assert_eq!(
            s.poll(Duration::ZERO),
            Action::Send {
                tick: 0,
                late: Duration::ZERO,
                skipped: 0
            }
        );
        assert_eq!(s.poll(Duration::ZERO), Action::Wait { until: ms(10) });
        assert_eq!(s.poll(ms(9)), Action::Wait { until: ms(10) });
        for k in 1..100u64 {
            assert_eq!(
                s.poll(ms(10 * k)),
                Action::Send {
                    tick: k,
                    late: Duration::ZERO,
                    skipped: 0
                }
            );
            assert_eq!(
                s.poll(ms(10 * k)),
                Action::Wait {
                    until: ms(10 * (k + 1))
                }
            );
        }
        assert_eq!(s.next_tick(), 100);
    }

    #[test]
    fn late_within_the_period_sends_that_tick_with_its_lateness() {
        let mut s = Schedule::from_period(ms(10)).unwrap();
        s.poll(Duration::ZERO);
        let at = ms(19) + Duration::from_micros(999);
        assert_eq!(
            s.poll(at),
            Action::Send {
                tick: 1,
                late: at - ms(10),
                skipped: 0
            }
        );
        // The next deadline does not move because this tick was late.
        assert_eq!(s.poll(at), Action::Wait { until: ms(20) });
    }

    #[test]
    fn a_stall_skips_the_missed_ticks_instead_of_bursting() {
        let mut s = Schedule::from_period(ms(10)).unwrap();
        s.poll(Duration::ZERO);
        // Stalled until 53 ms: ticks 1..=4 can no longer be met, tick 5's slot holds 53 ms.
        assert_eq!(
            s.poll(ms(53)),
            Action::Send {
                tick: 5,
                late: 3 * MS,
                skipped: 4
            }
        );
        assert_eq!(s.poll(ms(53)), Action::Wait { until: ms(60) });
        // Exactly on the next-but-one deadline: that tick is sent, one skipped.
        assert_eq!(
            s.poll(ms(70)),
            Action::Send {
                tick: 7,
                late: Duration::ZERO,
                skipped: 1
            }
        );
    }

    #[test]
    fn no_drift_after_ten_million_periods_at_60_hz() {
        let mut s = Schedule::from_rate_hz(60.0).unwrap();
        let n = 10_000_000u64;
        for k in 0..n {
            let at = s.deadline(k);
            assert!(matches!(s.poll(at), Action::Send { tick, skipped: 0, .. } if tick == k));
        }
        // deadline(k) = floor(k × 10^9 / 60) exactly, whatever came before.
        assert_eq!(s.deadline(n).as_nanos(), u128::from(n) * 1_000_000_000 / 60);
        assert_eq!(
            s.poll(Duration::ZERO),
            Action::Wait {
                until: s.deadline(n)
            }
        );
        // Adding a rounded period up would be 6.7 ms off by now.
        assert_ne!(s.deadline(n).as_nanos(), u128::from(n) * 16_666_666);
    }

    #[test]
    fn a_rate_that_does_not_divide_a_second_still_fits_exactly() {
        let s = Schedule::from_rate_hz(60.0).unwrap();
        assert_eq!(s.deadline(1).as_nanos(), 16_666_666);
        assert_eq!(s.deadline(2).as_nanos(), 33_333_333);
        assert_eq!(s.deadline(60), Duration::from_secs(1));
        assert_eq!(s.deadline(600_000_000), Duration::from_secs(10_000_000));
        let ntsc = Schedule::from_rate_hz(59.94).unwrap();
        assert_eq!(ntsc.deadline(5994), Duration::from_secs(100));
        let odd = Schedule::from_rate_hz(7.0).unwrap();
        assert_eq!(odd.deadline(7 * 1000), Duration::from_secs(1000));
    }

    #[test]
    fn ticks_within_a_span_is_the_exact_ceiling() {
        let s = Schedule::from_rate_hz(60.0).unwrap();
        assert_eq!(s.ticks_within(Duration::from_secs(3)), 180);
        assert_eq!(s.ticks_within(Duration::from_millis(300)), 18);
        assert_eq!(s.ticks_within(Duration::from_nanos(1)), 1);
        assert_eq!(s.ticks_within(Duration::ZERO), 0);
        assert_eq!(s.ticks_within(s.deadline(5)), 5);
        assert_eq!(s.ticks_within(s.deadline(5) + Duration::from_nanos(1)), 6);
        assert_eq!(s.ticks_within(Duration::MAX), u64::MAX);
    }

    #[test]
    fn rates_and_periods_out_of_range_are_refused() {
        assert_eq!(Schedule::from_period(Duration::ZERO), None);
        for r in [0.0, -1.0, 1e-7, f64::NAN, f64::INFINITY, 1e20] {
            assert_eq!(Schedule::from_rate_hz(r), None, "{r}");
        }
        assert!(Schedule::from_rate_hz(1e-6).is_some());
        assert!(Schedule::from_rate_hz(10_000.0).is_some());
    }

    #[test]
    fn extreme_times_saturate_instead_of_panicking() {
        let mut s = Schedule::from_period(Duration::from_secs(u64::MAX / 2)).unwrap();
        assert_eq!(s.deadline(u64::MAX), Duration::MAX);
        assert!(matches!(
            s.poll(Duration::MAX),
            Action::Send { tick: 2, .. }
        ));
        let mut r = Schedule::from_rate_hz(10_000.0).unwrap();
        assert!(matches!(r.poll(Duration::MAX), Action::Send { .. }));
    }

    #[test]
    fn wake_margin_covers_typical_overshoot_and_is_capped() {
        let base = Duration::from_micros(50);
        let mut m = WakeMargin::new(base);
        assert_eq!(m.margin(), base);
        let ms = Duration::from_millis(10);
        // A host that wakes 300 µs late most of the time, 5 ms late rarely.
        for i in 0..WAKE_SAMPLES {
            let late = if i == 7 { 5_000 } else { 300 };
            m.record(ms, ms + Duration::from_micros(late));
        }
        assert_eq!(m.margin(), base + Duration::from_micros(300));
        for _ in 0..WAKE_SAMPLES {
            m.record(ms, ms + Duration::from_millis(9));
        }
        assert_eq!(m.margin(), MAX_WAKE_MARGIN);
        // Waking early (a spurious unpark) counts as no overshoot.
        for _ in 0..WAKE_SAMPLES {
            m.record(ms, Duration::ZERO);
        }
        assert_eq!(m.margin(), base);
    }
}
