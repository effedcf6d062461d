//! What a child process says each second, read back: the counters of the
//! per-second line `tickcast broadcast` and `tickcast receive` print on
//! stderr (`  2.0s  ticks sent 120  skipped 0  packets 121 ...`, `  2.0s
//! count 119  recv 242/242  lost 0 ...`). With `--processes` or `--lan`
//! the figures are in other processes until they end; these lines are how
//! a live line knows them meanwhile.
//!
//! Only counters are read (the histograms stay in the child), and a line
//! is as old as the child's last second. The lines are the binary's
//! (`src/cli/render/`), whose tests parse them with these functions, so
//! the two cannot drift apart unnoticed.

use crate::core::figures::{Counters, Figures};
use crate::runtime::broadcaster::BroadcastFigures;

/// Whether `line` is a per-second line: its first word is a time in
/// seconds with one decimal (`2.0s`).
pub fn is_live_line(line: &str) -> bool {
    line.split_whitespace().next().is_some_and(|w| {
        w.strip_suffix('s')
            .is_some_and(|t| t.contains('.') && t.parse::<f64>().is_ok())
    })
}

/// The number right after `key ` in `line` (the first occurrence of the
/// key at the start of a word).
fn after(line: &str, key: &str) -> Option<u64> {
    let at = line
        .match_indices(key)
        .find(|&(i, _)| i == 0 || line[..i].ends_with(' '))?
        .0;
    let rest = line[at + key.len()..].strip_prefix(' ')?.trim_start();
    let digits: &str = &rest[..rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len())];
    digits.parse().ok()
}

/// The broadcaster's counters in its per-second line: ticks sent and
/// skipped, packets, datagrams, send errors. `None` if it is not one.
pub fn sender_figures(line: &str) -> Option<BroadcastFigures> {
    if !is_live_line(line) {
        return None;
    }
    Some(BroadcastFigures {
        ticks_sent: after(line, "ticks sent")?,
        ticks_skipped: after(line, "skipped")?,
        packets_sent: after(line, "packets")?,
        datagrams_sent: after(line, "datagrams")?,
        send_errors: after(line, "send errors")?,
        ..BroadcastFigures::default()
    })
}

/// A receiver's counters in its per-second line: received, expected,
/// lost, duplicates, reordered, stale, malformed, socket drops, and the
/// Count. `None` if it is not one.
pub fn receiver_figures(line: &str) -> Option<Figures> {
    if !is_live_line(line) {
        return None;
    }
    let recv = line.split("recv ").nth(1)?;
    let (received, expected) = recv.split_whitespace().next()?.split_once('/')?;
    let counters = Counters {
        received: received.parse().ok()?,
        expected: expected.parse().ok()?,
        lost: after(line, "lost")?,
        duplicates: after(line, "dup")?,
        reordered: after(line, "reord")?,
        stale: after(line, "stale")?,
        malformed: after(line, "malformed")?,
        socket_drops: after(line, "drops")?,
        ..Counters::default()
    };
    Some(Figures {
        counters,
        count: after(line, "count"),
        ..Figures::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broadcasters_line_gives_its_counters() {
        let line = "  2.0s  ticks sent 118  skipped 2  packets 121  datagrams 242  send errors 1  lateness p50 2.0µs p99 - max 36.4µs";
        let f = sender_figures(line).unwrap();
        assert_eq!(
            (
                f.ticks_sent,
                f.ticks_skipped,
                f.packets_sent,
                f.datagrams_sent,
                f.send_errors
            ),
            (118, 2, 121, 242, 1)
        );
        assert!(f.lateness.is_empty());
        assert!(sender_figures("broadcasting 100 entities at 60 Hz").is_none());
    }

    #[test]
    fn a_receivers_line_gives_its_counters() {
        let line = " 12.0s  count     719  recv 1430/1440  lost 10 (0.694%, last 1s 0.000%)  dup 3  reord 4  stale 5  malformed 6  drops 7  lat p50 48.0µs p99 -";
        let f = receiver_figures(line).unwrap();
        let c = f.counters;
        assert_eq!(
            (c.received, c.expected, c.lost, c.duplicates, c.reordered),
            (1430, 1440, 10, 3, 4)
        );
        assert_eq!((c.stale, c.malformed, c.socket_drops), (5, 6, 7));
        assert_eq!(f.count, Some(719));
        let none_yet = "  1.0s  count       -  recv 0/0  lost 0 (0.000%, last 1s 0.000%)  dup 0  reord 0  stale 0  malformed 0  drops 0  lat p50 - p99 -";
        assert_eq!(receiver_figures(none_yet).unwrap().count, None);
        assert!(receiver_figures("receiving on 127.0.0.1:4000").is_none());
        assert!(receiver_figures("1.0s garbage").is_none());
    }
}
