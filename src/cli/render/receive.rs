//! `tickcast receive`'s lines: where it listens, one line of figures a
//! second (also each receiver's in `demo`), the warnings for sealed
//! datagrams without a key and for receiving nothing, a subscription that
//! gave up, and the end-of-run summary.

use std::fmt::Write;
use std::net::SocketAddr;
use std::time::Duration;

use super::{us, us_or_dash};
use tickcast::core::figures::{Figures, Summary};
use tickcast::core::histogram::LatencySummary;
use tickcast::core::silence::Cause;
use tickcast::core::subscriber::{SubscribeFailure, SubscriberCounts, GIVE_UP_UNANSWERED};
use tickcast::wire::REFUSE_FULL;

/// Printed once when a keyless receiver gets sealed datagrams.
pub const AUTH_UNEXPECTED_WARNING: &str =
    "tickcast: receiving authenticated datagrams but no --key-file was given; they are not applied";

/// Printed once when a keyed receiver refuses sealed datagrams as stale.
pub const STALE_SEALED_WARNING: &str =
    "tickcast: refusing sealed datagrams sent outside the freshness window of this host's clock \
     (stale_sealed): replays, or the sender's clock is that far off; sync the clocks or widen --freshness";

/// The first line: every address listened on. `tickcast bench
/// --processes` reads the first address of it back.
pub fn listening(addrs: &[SocketAddr]) -> String {
    let addrs: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
    format!("receiving on {}", addrs.join(", "))
}

/// Said once when subscribing to the broadcaster at `server` from `from`.
pub fn subscribing(server: SocketAddr, from: SocketAddr) -> String {
    format!("subscribing to {server} from {from}")
}

/// One line of figures for a running receiver; `prev` is the figures of one
/// interval ago, for the interval loss.
pub fn live_line(label: &str, elapsed: Duration, now: &Figures, prev: &Figures) -> String {
    let s = now.summary();
    format!(
        "{label}{:>5.1}s  count {:>7}  recv {}/{}  lost {} ({:.3}%, last 1s {:.3}%)  dup {}  reord {}  stale {}  malformed {}  drops {}  lat p50 {} p99 {}",
        elapsed.as_secs_f64(),
        s.count.map_or("-".to_string(), |c| c.to_string()),
        s.counters.received,
        s.counters.expected,
        s.counters.lost,
        s.loss_ratio * 100.0,
        now.interval_loss(prev) * 100.0,
        s.counters.duplicates,
        s.counters.reordered,
        s.counters.stale,
        s.counters.malformed,
        s.counters.socket_drops,
        us_or_dash(s.latency_us.map(|l| l.p50)),
        us_or_dash(s.latency_us.map(|l| l.p99)),
    )
}

/// The `receive` command's line a second: [`live_line`], and with a
/// subscription its state and the round trip's median.
pub fn receive_line(elapsed: Duration, now: &Figures, prev: &Figures, subscribed: bool) -> String {
    let mut line = live_line("", elapsed, now, prev);
    let c = &now.counters;
    if c.auth_failed > 0 {
        line.push_str(&format!("  auth failed {}", c.auth_failed));
    }
    if c.auth_unexpected > 0 {
        line.push_str(&format!("  sealed, no key {}", c.auth_unexpected));
    }
    if subscribed {
        let rtt = LatencySummary::of(&now.rtt).map(|r| r.p50);
        line.push_str(&format!(
            "  {}  rtt p50 {}",
            now.subscription,
            us_or_dash(rtt)
        ));
    }
    line
}

/// The warning of a receiver that has taken no stream datagram `elapsed`
/// into its run: a line, then one indented line per likely cause.
pub fn silence_warning(elapsed: Duration, causes: &[Cause]) -> String {
    let mut out = format!(
        "tickcast: no stream datagram received in {:.1} s; likely causes:\n",
        elapsed.as_secs_f64()
    );
    for cause in causes {
        let _ = writeln!(out, "  - {cause}");
    }
    out
}

/// The error of a receive that ends having taken nothing, after its
/// [`silence_warning`] said why.
pub fn received_nothing(elapsed: Duration) -> String {
    format!(
        "received no stream datagram in {:.1} s (likely causes above)",
        elapsed.as_secs_f64()
    )
}

/// The error of a subscription to `server` that gave up.
pub fn subscription_failed(
    server: SocketAddr,
    why: SubscribeFailure,
    counts: Option<SubscriberCounts>,
) -> String {
    let sent = counts.map_or(0, |c| c.subscribes_sent + c.confirms_sent);
    match why {
        SubscribeFailure::Unanswered => format!(
            "subscription to {server} failed: no answer in {} s to {sent} requests (is a broadcaster running with --bind {server}, and does UDP get through both ways?)",
            GIVE_UP_UNANSWERED.as_secs()
        ),
        SubscribeFailure::Refused(REFUSE_FULL) => format!(
            "subscription to {server} failed: refused {} times, the broadcaster is full (its --max-subscribers)",
            counts.map_or(0, |c| c.refusals)
        ),
        SubscribeFailure::Refused(reason) => format!(
            "subscription to {server} failed: refused {} times (unknown reason {reason})",
            counts.map_or(0, |c| c.refusals)
        ),
    }
}

fn latency_row(name: &str, l: Option<&LatencySummary>) -> String {
    let Some(l) = l else {
        return format!("  {name:<28} -  (no samples)\n");
    };
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
        s.counters.expected,
        s.counters.received,
        s.counters.lost,
        s.loss_ratio * 100.0
    );
    let _ = writeln!(
        out,
        "  anomalies duplicates {}  reordered {}  stale {}  malformed {}  restarts {}  socket drops {}",
        s.counters.duplicates, s.counters.reordered, s.counters.stale, s.counters.malformed, s.counters.restarts, s.counters.socket_drops
    );
    let _ = writeln!(
        out,
        "  world     ticks applied {}  count {}  entities applied {}  stale {}  rejected {}",
        s.counters.ticks_applied,
        s.count.map_or("-".to_string(), |c| c.to_string()),
        s.counters.entities_applied,
        s.counters.entities_stale,
        s.counters.entities_rejected
    );
    let _ = writeln!(
        out,
        "  sender    reported packets sent {}  ticks skipped {}  goodbye {}  sent before the first received {}",
        s.sender_packets_sent
            .map_or("-".to_string(), |v| v.to_string()),
        s.sender_ticks_skipped
            .map_or("-".to_string(), |v| v.to_string()),
        if s.goodbye { "yes" } else { "no" },
        s.counters.head_loss
    );
    let c = &s.counters;
    if c.auth_failed + c.replayed + c.auth_unexpected + c.stale_sealed > 0 {
        let _ = writeln!(
            out,
            "  auth      failed {}  replayed {}  stale sealed {}  sealed but no key {}",
            c.auth_failed, c.replayed, c.stale_sealed, c.auth_unexpected
        );
    }
    if c.unproven + c.foreign > 0 {
        let _ = writeln!(
            out,
            "  guard     unproven {}  foreign {}",
            c.unproven, c.foreign
        );
    }
    let _ = writeln!(out, "  jitter    {} (RFC 3550)", us(s.jitter_us));
    out.push_str(&latency_row(
        "latency from send time",
        s.latency_us.as_ref(),
    ));
    out.push_str(&latency_row(
        "latency from tick schedule",
        s.latency_scheduled_us.as_ref(),
    ));
    if s.rtt_us.is_some() {
        out.push_str(&latency_row("round trip (ping/pong)", s.rtt_us.as_ref()));
    }
    if s.counters.latency_negative > 0 {
        let _ = writeln!(
            out,
            "  note: {} latency samples were negative (clocks not shared?); counted as 0",
            s.counters.latency_negative
        );
    }
    out
}

/// The summary's lines about the subscription (its round trip is the
/// summary's "round trip" row) and what the one-way figures are worth.
pub fn subscription_summary(s: &Summary) -> String {
    let mut out = String::new();
    if s.subscription != "none" {
        out.push_str(&format!("  subscription {}\n", s.subscription));
    }
    let verdict = if s.one_way_meaningful {
        "meaningful (same host, or within the round trip and never negative)"
    } else {
        "not known to be meaningful (clocks not shown to be shared or synced)"
    };
    out.push_str(&format!("  one-way latency {verdict}\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `bench --processes` and `--lan` read a receiver child's line back
    /// (`tickcast::bench::progress`); this keeps the two in step.
    #[test]
    fn the_live_line_reads_back_as_the_same_counters() {
        let mut now = Figures::default();
        let c = &mut now.counters;
        (c.expected, c.received, c.lost) = (1440, 1430, 10);
        (c.duplicates, c.reordered, c.stale) = (3, 4, 5);
        (c.malformed, c.socket_drops) = (6, 7);
        let counters = now.counters;
        now.count = Some(719);
        let line = receive_line(Duration::from_secs(12), &now, &Figures::default(), true);
        let back = tickcast::bench::progress::receiver_figures(&line).expect(&line);
        assert_eq!(back.counters, counters, "{line}");
        assert_eq!(back.count, Some(719));
    }
}
