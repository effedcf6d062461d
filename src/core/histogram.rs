//! Latency histograms: the one histogram shape every latency figure uses
//! (nanoseconds, 1 ns to 10 s, [`LATENCY_SIGFIG`] significant digits) and
//! its summary in microseconds for JSON and tables. An empty histogram has
//! no summary: `None`, JSON `null`, never percentiles of zero that would
//! read as a measured 0 µs.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Largest latency the histograms resolve (10 s); larger samples are clamped.
/// A clamped sample reads as its bucket's highest equivalent value,
/// 10,066,329,599 ns (see [`reported`]).
pub const LATENCY_MAX_NS: u64 = 10_000_000_000;

/// Significant decimal digits the latency histograms keep: every recorded
/// value is resolved to within 1 % of itself.
///
/// Why not 3: a 3-digit histogram over 1 ns..10 s is 200 KiB, above glibc's
/// 128 KiB mmap threshold, so every clone of the figures (a live line, a
/// reader thread) mapped fresh pages and page-faulted for about 130 µs per
/// histogram, under the lock the receiver thread needs for its next
/// datagram (measured by `tickcast bench`: 380 µs per `figures()`). At 2
/// digits a histogram is 28 KiB and clones in under a microsecond.
pub const LATENCY_SIGFIG: u8 = 2;

/// The value a latency histogram reports for a sample of `ns` (after
/// clamping to [`LATENCY_MAX_NS`]): its bucket's highest equivalent value,
/// as `proto/PROTOCOL.md` ("Histograms") defines it without naming
/// HdrHistogram. Below 256 ns a bucket is one value wide; from 256 ns it is
/// `2^(⌊log2 ns⌋ − 7)` ns wide, so the reported value is never below the
/// sample and less than 1/128 (0.79 %) above it.
pub fn reported(ns: u64) -> u64 {
    if ns < 256 {
        return ns;
    }
    let width = 1u64 << (ns.ilog2() - 7);
    ns / width * width + width - 1
}

/// A latency histogram in nanoseconds, [`LATENCY_SIGFIG`] significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_MAX_NS, LATENCY_SIGFIG)
        .expect("constant bounds are valid")
}

/// Percentiles of a latency histogram, in microseconds: always of at least
/// one sample (see [`LatencySummary::of`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Samples recorded.
    pub samples: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest sample.
    pub max: f64,
}

impl LatencySummary {
    /// Summarises a nanosecond histogram in microseconds; `None` when it
    /// holds no sample. Each percentile `q` is the [`reported`] value of the
    /// `⌈q × samples⌉`-th smallest sample (at least the first), `max` that
    /// of the largest, divided by 1000.
    pub fn of(h: &Histogram<u64>) -> Option<LatencySummary> {
        if h.is_empty() {
            return None;
        }
        let us = |ns: u64| ns as f64 / 1e3;
        Some(LatencySummary {
            samples: h.len(),
            p50: us(h.value_at_quantile(0.50)),
            p90: us(h.value_at_quantile(0.90)),
            p99: us(h.value_at_quantile(0.99)),
            p999: us(h.value_at_quantile(0.999)),
            max: us(h.max()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spec defines the buckets without HdrHistogram; this holds the
    /// two to the same values, from 0 to the clamp.
    #[test]
    fn reported_values_are_the_buckets_highest_equivalent() {
        let h = latency_histogram();
        let mut v = 0u64;
        while v <= LATENCY_MAX_NS {
            for ns in [v, v + 1, v.saturating_sub(1)] {
                assert_eq!(reported(ns), h.highest_equivalent(ns), "{ns} ns");
                assert!(
                    ns <= reported(ns) && reported(ns) - ns <= ns / 128,
                    "{ns} ns"
                );
            }
            v = v * 9 / 8 + 1;
        }
        // A sample clamped at 10 s reads 10,066,329.599 µs, not 10 s.
        assert_eq!(reported(LATENCY_MAX_NS), 10_066_329_599);
        let mut h = latency_histogram();
        h.saturating_record(LATENCY_MAX_NS);
        let s = LatencySummary::of(&h).unwrap();
        assert_eq!((s.p50, s.max), (10_066_329.599, 10_066_329.599));
    }

    #[test]
    fn a_percentile_is_the_reported_value_of_the_sample_at_its_rank() {
        let mut h = latency_histogram();
        for ns in 1..=1000u64 {
            h.record(ns).unwrap();
        }
        let s = LatencySummary::of(&h).unwrap();
        // Ranks ⌈q × 1000⌉: 500, 900, 990, 999; the largest is 1000.
        let want = [500, 900, 990, 999, 1000].map(|ns| reported(ns) as f64 / 1e3);
        assert_eq!([s.p50, s.p90, s.p99, s.p999, s.max], want);
        assert_eq!(want[2], 0.991, "990 ns is in the bucket 988..=991");
    }

    /// Regression (issue 10): an empty histogram was written as
    /// `{"samples":0,"p50":0.0,...}`, which reads as a measured 0 µs.
    #[test]
    fn an_empty_histogram_has_no_summary_and_is_null_in_json() {
        let mut h = latency_histogram();
        assert_eq!(LatencySummary::of(&h), None);
        assert_eq!(
            serde_json::to_string(&LatencySummary::of(&h)).unwrap(),
            "null"
        );
        h.record(20_000).unwrap();
        let s = LatencySummary::of(&h).expect("one sample");
        assert_eq!(s.samples, 1);
        let back: Option<LatencySummary> =
            serde_json::from_str(&serde_json::to_string(&Some(s)).unwrap()).unwrap();
        assert_eq!(back, Some(s));
        let none: Option<LatencySummary> = serde_json::from_str("null").unwrap();
        assert_eq!(none, None);
    }
}
