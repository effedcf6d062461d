//! Latency histograms: the one histogram shape every latency figure uses
//! (nanoseconds, 1 ns to 10 s, [`LATENCY_SIGFIG`] significant digits) and
//! its summary in microseconds for JSON and tables. An empty histogram has
//! no summary: `None`, JSON `null`, never percentiles of zero that would
//! read as a measured 0 µs.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Largest latency the histograms resolve (10 s); larger samples are clamped.
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
    /// holds no sample.
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
