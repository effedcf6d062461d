//! `tickcast impair`'s lines: what it relays with which impairments, its
//! counts once a second, and at the end what it did and the figures each
//! receiver behind it must report.

use std::net::SocketAddr;
use std::time::Duration;

use tickcast::core::conditioner::ConditionerConfig;
use tickcast::runtime::relay::ImpairFigures;

/// The first line: from where to where, the impairments, the loss they make in the long run.
pub fn start_line(from: SocketAddr, to: &[SocketAddr], conditioner: &ConditionerConfig) -> String {
    let to: Vec<String> = to.iter().map(|d| d.to_string()).collect();
    format!(
        "impair: relaying {} -> {} with {} (long-run loss {:.2}%)",
        from,
        to.join(", "),
        conditioner,
        conditioner.loss.long_run_rate() * 100.0
    )
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// One line of the relay's counts, `t` into the run.
pub fn live_line(t: Duration, f: &ImpairFigures) -> String {
    let c = &f.conditioner;
    format!(
        "{:>5.1}s  in {}  dropped {} ({:.2}%)  dup {}  held back {}  reord {}  delivered {}  held {}  undecoded {}  drops {}  send errors {}",
        t.as_secs_f64(),
        c.datagrams_in,
        c.dropped,
        percent(c.dropped, c.datagrams_in - c.passed_undecoded),
        c.duplicated,
        c.held_back,
        c.reordered,
        c.delivered,
        c.held,
        c.passed_undecoded,
        f.socket_drops,
        f.send_errors,
    )
}

/// Why a relay run of `ran` on `listen` achieved nothing, in one line,
/// or `None` when it did: nothing arrived, or every forward failed.
/// (Every datagram dropped by the impairments asked for is not nothing:
/// that is what was asked.)
pub fn relayed_nothing(f: &ImpairFigures, listen: SocketAddr, ran: Duration) -> Option<String> {
    let ran = ran.as_secs_f64();
    if f.conditioner.datagrams_in == 0 {
        return Some(format!(
            "relayed nothing in {ran:.1} s: no datagram arrived on {listen} (is the broadcaster sending --to {listen}?)"
        ));
    }
    (f.datagrams_sent == 0 && f.send_errors > 0).then(|| {
        format!(
            "relayed nothing in {ran:.1} s: all {} forwards failed (last error: {})",
            f.send_errors,
            f.last_error.as_deref().unwrap_or("unknown")
        )
    })
}

/// The end: what the conditioner did, what the relay sent to its
/// `destinations`, and the figures each receiver must report.
pub fn summary(f: &ImpairFigures, destinations: usize) -> String {
    let (c, e) = (&f.conditioner, &f.expected_receiver);
    let mut out = format!(
        "conditioner: in {} (undecoded {}), dropped {} ({:.2}%), duplicated {}, held back {}, delivered {}, reordered {}\n",
        c.datagrams_in,
        c.passed_undecoded,
        c.dropped,
        percent(c.dropped, c.datagrams_in - c.passed_undecoded),
        c.duplicated,
        c.held_back,
        c.delivered,
        c.reordered,
    );
    out += &format!(
        "relay: sent {} datagrams to {} destination(s), socket drops {}, send errors {}\n",
        f.datagrams_sent, destinations, f.socket_drops, f.send_errors
    );
    if let Some(err) = &f.last_error {
        out += &format!("  last error: {err}\n");
    }
    out += &format!(
        "each receiver must report: expected {}  received {}  lost {}  duplicates {}  reordered {}  malformed {}  restarts {}  (numbers the relay never saw: {})\n",
        e.expected, e.received, e.lost, e.duplicates, e.reordered, e.malformed, e.restarts, e.unseen
    );
    out
}
