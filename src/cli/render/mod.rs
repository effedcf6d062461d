//! Human-readable renderings of the figures: the live line printed once a
//! second, the end-of-run summary and the per-receiver table. Plain string
//! building over [`Summary`]; no I/O.

pub mod bench;
pub mod plot;

use std::fmt::Write;
use std::time::Duration;

use tickcast::core::figures::{Figures, Summary};
use tickcast::core::histogram::LatencySummary;

/// One line of figures for a running receiver; `prev` is the figures of one
/// interval ago, for the interval loss.
pub fn live_line(label: &str, elapsed: Duration, now: &Figures, prev: &Figures) -> String {
    let s = now.summary();
    format!(
        "{label}{:>5.1}s  count {:>7}  recv {}/{}  lost {} ({:.3}%, last 1s {:.3}%)  dup {}  reord {}  stale {}  malformed {}  drops {}  lat p50 {} p99 {}",
        elapsed.as_secs_f64(),
        s.count.map_or("-".to_string(), |c| c.to_string()),
        s.received,
        s.expected,
        s.lost,
        s.loss_ratio * 100.0,
        now.interval_loss(prev) * 100.0,
        s.duplicates,
        s.reordered,
        s.stale,
        s.malformed,
        s.socket_drops,
        us(s.latency_us.p50),
        us(s.latency_us.p99),
    )
}

/// Formats microseconds compactly (`850µs`, `12.3ms`).
pub fn us(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.1}ms", v / 1e3)
    } else if v >= 100.0 {
        format!("{v:.0}µs")
    } else {
        format!("{v:.1}µs")
    }
}

fn latency_row(name: &str, l: &LatencySummary) -> String {
    format!(
        "  {name:<28} p50 {:>8}  p90 {:>8}  p99 {:>8}  p99.9 {:>8}  max {:>8}  ({} samples)\n",
        us(l.p50),
        us(l.p90),
        us(l.p99),
        us(l.p999),
        us(l.max),
        l.samples
    )
}

/// The multi-line end-of-run summary of one receiver.
pub fn summary(s: &Summary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "  packets   expected {}  received {}  lost {} ({:.4}%)",
        s.expected,
        s.received,
        s.lost,
        s.loss_ratio * 100.0
    );
    let _ = writeln!(
        out,
        "  anomalies duplicates {}  reordered {}  stale {}  malformed {}  restarts {}  socket drops {}",
        s.duplicates, s.reordered, s.stale, s.malformed, s.restarts, s.socket_drops
    );
    let _ = writeln!(
        out,
        "  world     ticks applied {}  count {}  entities applied {}  stale {}  rejected {}",
        s.ticks_applied,
        s.count.map_or("-".to_string(), |c| c.to_string()),
        s.entities_applied,
        s.entities_stale,
        s.entities_rejected
    );
    let _ = writeln!(
        out,
        "  sender    reported packets sent {}  ticks skipped {}  goodbye {}",
        s.sender_packets_sent
            .map_or("-".to_string(), |v| v.to_string()),
        s.sender_ticks_skipped
            .map_or("-".to_string(), |v| v.to_string()),
        if s.goodbye { "yes" } else { "no" }
    );
    if s.auth_failed + s.replayed + s.auth_unexpected + s.stale_sealed > 0 {
        let _ = writeln!(
            out,
            "  auth      failed {}  replayed {}  stale sealed {}  sealed but no key {}",
            s.auth_failed, s.replayed, s.stale_sealed, s.auth_unexpected
        );
    }
    if s.unproven + s.foreign > 0 {
        let _ = writeln!(
            out,
            "  guard     unproven {}  foreign {}",
            s.unproven, s.foreign
        );
    }
    let _ = writeln!(out, "  jitter    {} (RFC 3550)", us(s.jitter_us));
    out.push_str(&latency_row("latency from send time", &s.latency_us));
    out.push_str(&latency_row(
        "latency from tick schedule",
        &s.latency_scheduled_us,
    ));
    if s.rtt_us.samples > 0 {
        out.push_str(&latency_row("round trip (ping/pong)", &s.rtt_us));
    }
    if s.subscription != "none" {
        let _ = writeln!(out, "  subscription {}", s.subscription);
    }
    if s.latency_us.samples > 0 && !s.one_way_meaningful {
        let _ = writeln!(
            out,
            "  note: one-way latency is meaningful only with clocks shared or synced; compare the round trip"
        );
    }
    if s.latency_negative > 0 {
        let _ = writeln!(
            out,
            "  note: {} latency samples were negative (clocks not shared?); counted as 0",
            s.latency_negative
        );
    }
    out
}

/// One row per receiver: the figures side by side.
pub fn table(rows: &[(String, Summary)]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<22} {:>8} {:>8} {:>6} {:>8} {:>5} {:>6} {:>6} {:>5} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "receiver",
        "expected",
        "received",
        "lost",
        "loss%",
        "dup",
        "reord",
        "stale",
        "malf",
        "ticks",
        "p50",
        "p99",
        "p99.9",
        "max",
        "jitter"
    );
    for (name, s) in rows {
        let _ = writeln!(
            out,
            "{:<22} {:>8} {:>8} {:>6} {:>8.4} {:>5} {:>6} {:>6} {:>5} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8}",
            name,
            s.expected,
            s.received,
            s.lost,
            s.loss_ratio * 100.0,
            s.duplicates,
            s.reordered,
            s.stale,
            s.malformed,
            s.ticks_applied,
            us(s.latency_us.p50),
            us(s.latency_us.p99),
            us(s.latency_us.p999),
            us(s.latency_us.max),
            us(s.jitter_us),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_a_row_per_receiver_with_its_figures() {
        let mut f = Figures::default();
        (f.expected, f.received, f.lost) = (10, 9, 1);
        let t = table(&[
            ("a".into(), f.summary()),
            ("b".into(), Figures::default().summary()),
        ]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(
            lines[1].starts_with("a ") && lines[1].contains(" 10 ") && lines[1].contains("10.0000")
        );
    }

    #[test]
    fn microseconds_are_compact() {
        assert_eq!(us(12.34), "12.3µs");
        assert_eq!(us(850.0), "850µs");
        assert_eq!(us(12_345.0), "12.3ms");
    }
}
