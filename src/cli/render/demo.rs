//! `tickcast demo`'s lines: what it runs, each receiver's live line, and
//! the end: the broadcaster's figures and one row per receiver.

use std::fmt::Write;
use std::net::SocketAddr;
use std::time::Duration;

use super::{broadcast, receive, us, us_or_dash};
use tickcast::core::figures::{Figures, Summary};
use tickcast::runtime::broadcaster::{BroadcastConfig, BroadcastFigures};

/// The first line: the world, how many receivers, for how long.
pub fn start_line(config: &BroadcastConfig, receivers: usize, duration: Duration) -> String {
    let (entities, world, rate_hz) = (config.entities, config.world, config.rate_hz);
    format!(
        "demo: 1 broadcaster ({entities} entities, {world} world, at {rate_hz} Hz) -> {receivers} receivers on loopback for {duration:?}; Ctrl-C ends early"
    )
}

/// Receiver `i`'s line a second (see [`receive::live_line`]).
pub fn receiver_line(i: usize, t: Duration, now: &Figures, prev: &Figures) -> String {
    receive::live_line(&format!("  rx{i} "), t, now, prev)
}

/// Receiver `i`'s name in the table.
pub fn receiver_name(i: usize, addr: SocketAddr) -> String {
    format!("rx{i} {addr}")
}

/// The broadcaster's figures at the end, after a blank line.
pub fn broadcaster_line(duration: Duration, f: &BroadcastFigures) -> String {
    format!("\nbroadcaster: {}", broadcast::final_line(duration, f))
}

/// The error of a demo whose `receivers` all received nothing in `ran`.
pub fn received_nothing(receivers: usize, ran: Duration) -> String {
    format!(
        "none of the {receivers} receivers received anything in {:.1} s",
        ran.as_secs_f64()
    )
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
            s.counters.expected,
            s.counters.received,
            s.counters.lost,
            s.loss_ratio * 100.0,
            s.counters.duplicates,
            s.counters.reordered,
            s.counters.stale,
            s.counters.malformed,
            s.counters.ticks_applied,
            us_or_dash(s.latency_us.map(|l| l.p50)),
            us_or_dash(s.latency_us.map(|l| l.p99)),
            us_or_dash(s.latency_us.map(|l| l.p999)),
            us_or_dash(s.latency_us.map(|l| l.max)),
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
        (f.counters.expected, f.counters.received, f.counters.lost) = (10, 9, 1);
        let t = table(&[
            ("a".into(), f.summary()),
            ("b".into(), Figures::default().summary()),
        ]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(
            lines[1].starts_with("a ") && lines[1].contains(" 10 ") && lines[1].contains("10.0000")
        );
        // No latency samples: a dash in each latency column, not a measured 0 µs.
        let dashes = lines[2].split_whitespace().filter(|c| *c == "-").count();
        assert_eq!(dashes, 4, "{}", lines[2]);
    }
}
