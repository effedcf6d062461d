//! `tickcast bench`'s lines for single runs and `--compare-modes`: what
//! runs, the live line, the end-of-run tables, and the files written. The
//! sweep's and the search's are in [`super::sweep`]. Plain string building
//! over the reports; no I/O.

use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

use super::{us, us_or_dash};
use tickcast::bench::{
    BenchConfig, BenchReport, Cpu, LanMode, LinkResult, Progress, ReceiverResult,
    ETHERNET_FRAME_OVERHEAD_BYTES, IPV4_UDP_HEADER_BYTES,
};
use tickcast::core::histogram::LatencySummary;
use tickcast::runtime::receiver::ReceiveMode;

/// The error of a bench whose receivers received nothing in any run.
pub const RECEIVED_NOTHING: &str = "no receiver received anything in any run: nothing was measured (is something between the broadcaster and the receivers dropping UDP?)";

/// Said when `--lan` cannot run here.
pub const LAN_UNAVAILABLE: &str = "tickcast: --lan needs root and ip netns (iproute2)";

/// Said when `--link-rate` cannot run here.
pub const TC_UNAVAILABLE: &str =
    "tickcast: --link-rate needs tc (iproute2), which is not installed or not on PATH";

/// Said after the table when a receiver's figures are not what its link
/// conditioner did.
pub const CONDITIONER_DIFFERS: &str =
    "tickcast: a receiver's figures differ from what its link conditioner did (see the table)";

/// The first line of a single run: what runs where, for how long.
pub fn start_line(config: &BenchConfig) -> String {
    format!(
        "bench: {} entities ({} world) at {} Hz to {} receiver(s) {}{} for {:?} (+{:?} warm-up); Ctrl-C ends early",
        config.entities,
        config.world,
        config.rate_hz,
        config.receivers,
        match config.lan {
            Some(LanMode::Unicast) => "as processes across a namespace LAN (unicast)",
            Some(LanMode::Multicast) => "as processes across a namespace LAN (multicast)",
            None if config.processes => "as child processes",
            None => "in this process",
        },
        link_words(config),
        config.duration,
        config.warmup
    )
}

/// `, the broadcaster's link shaped to 1gbit`, or nothing.
pub fn link_words(config: &BenchConfig) -> String {
    config.link_rate.map_or(String::new(), |r| {
        format!(", the broadcaster's link shaped to {r}")
    })
}

/// A figure of bytes per entity update, or `-`.
fn per_update(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.2}"))
}

/// Bytes on the wire per entity update, for one copy of the stream, and
/// how they were found.
fn wire_line(r: &BenchReport) -> String {
    let x = &r.sender;
    let ethernet = x.wire_bytes_per_entity_update_ip.map(|ip| {
        ip + ETHERNET_FRAME_OVERHEAD_BYTES as f64 * x.datagrams_per_copy
            / x.entity_updates_per_copy.max(1) as f64
    });
    format!(
        "wire: {} B per entity update (UDP payload), {} B with IPv4+UDP headers ({} B each), {} B on Ethernet ({} B more per frame: preamble, header, FCS, gap)\n\
         wire: the stream went out {}; one copy is {} in {:.0} datagrams for {} entity updates (entities × ticks sent)\n",
        per_update(x.wire_bytes_per_entity_update),
        per_update(x.wire_bytes_per_entity_update_ip),
        IPV4_UDP_HEADER_BYTES,
        per_update(ethernet),
        ETHERNET_FRAME_OVERHEAD_BYTES,
        match (r.setup.mode, x.stream_copies) {
            ("lan-multicast", _) => "once, to the group".to_string(),
            (_, 1) => "once, to the one receiver".to_string(),
            (_, n) => format!("{n} times, once to each receiver"),
        },
        bytes(x.bytes_per_copy as u64),
        x.datagrams_per_copy,
        x.entity_updates_per_copy,
    )
}

/// The shaped link and what its shaper did.
fn link_line(l: &LinkResult) -> String {
    let counts = match (l.shaper_sent_packets, l.shaper_sent_bytes, l.shaper_drops) {
        (Some(p), Some(b), Some(d)) => format!(
            "the shaper passed {p} packets ({}{}) and dropped {d}{}",
            bytes(b),
            l.utilization.map_or(String::new(), |u| format!(
                ", {:.0}% of the rate over the run",
                u * 100.0
            )),
            if d > 0 {
                " (each a datagram some receiver lost)"
            } else {
                ""
            }
        ),
        _ => "the shaper's counts could not be read".to_string(),
    };
    format!(
        "link: the broadcaster's {} shaped to {} (tbf, burst {} B, at most {:.0} ms queued): {counts}\n",
        l.device,
        l.rate,
        l.burst_bytes,
        l.max_queue_delay_us / 1e3,
    )
}

/// Said after a file was written.
pub fn wrote(path: &Path) -> String {
    format!("wrote {}", path.display())
}

/// Bytes as `512 B`, `12.3 KiB`, `4.5 MiB`.
pub fn bytes(b: u64) -> String {
    let b = b as f64;
    if b >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", b / (1024.0 * 1024.0))
    } else if b >= 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{b:.0} B")
    }
}

/// A rate as `950`, `12.3k`, `4.56M`.
pub fn rate(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.2}M", r / 1e6)
    } else if r >= 1e4 {
        format!("{:.1}k", r / 1e3)
    } else {
        format!("{r:.0}")
    }
}

fn cpu(c: Option<Cpu>) -> (String, String) {
    match c {
        Some(c) => (
            format!("{:.3}", c.seconds),
            format!("{:.1}", c.percent_of_core),
        ),
        None => ("-".into(), "-".into()),
    }
}

fn opt_bytes(b: Option<u64>) -> String {
    b.map_or("-".into(), bytes)
}

fn label(r: &ReceiverResult) -> String {
    match (r.addr, r.pid) {
        (Some(a), Some(pid)) => format!("{} {a} pid {pid}", r.name),
        (Some(a), None) => format!("{} {a}", r.name),
        _ => r.name.clone(),
    }
}

/// The end-of-run report: what ran, then packets, latency, and rates and
/// cost, one row per receiver and a total row each, then the broadcaster.
pub fn table(r: &BenchReport) -> String {
    let s = &r.setup;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "tickcast bench: 1 broadcaster -> {} receiver{} ({}) on {}{}, {} entities ({} world) at {} Hz, {}-byte datagrams, {:.1} s{}",
        s.receivers,
        if s.receivers == 1 { "" } else { "s" },
        s.mode,
        if s.mode.starts_with("lan-") {
            "a network-namespace LAN"
        } else {
            "127.0.0.1"
        },
        s.link_rate
            .as_deref()
            .map_or(String::new(), |r| format!(" (broadcaster's link {r})")),
        s.entities,
        s.world,
        s.rate_hz,
        s.payload_budget,
        s.duration_s,
        if r.interrupted { " (interrupted)" } else { "" },
    );
    let _ = writeln!(
        out,
        "warm-up {:.1} s before the first tick; nothing excluded: every packet of the broadcast counts",
        s.warmup_s
    );
    let mut threads = Vec::new();
    if let (Some(tx), Some(rx)) = (s.sender_realtime_priority, s.realtime_priority) {
        threads.push(format!(
            "SCHED_FIFO, broadcaster at priority {tx}, receivers at {rx}, memory locked"
        ));
    }
    if let Some(c) = s.sender_cpu {
        threads.push(format!("broadcaster on CPU {c}"));
    }
    if !s.receiver_cpus.is_empty() {
        let rx: Vec<String> = s.receiver_cpus.iter().map(|c| c.to_string()).collect();
        threads.push(format!("receivers on CPU {} in turn", rx.join(",")));
    }
    if !threads.is_empty() {
        let _ = writeln!(out, "threads: {}", threads.join("; "));
    }
    if let Some(w) = &r.core_warning {
        let _ = writeln!(out, "warning: {w}");
    }
    let rows: Vec<&ReceiverResult> = r.receivers.iter().chain([&r.total]).collect();
    let w = rows
        .iter()
        .map(|x| label(x).len())
        .max()
        .unwrap_or(5)
        .max(8);

    let _ = writeln!(
        out,
        "\n{:<w$} {:>9} {:>9} {:>6} {:>8} {:>5} {:>6} {:>6} {:>5} {:>8} {:>6} {:>7}",
        "packets",
        "expected",
        "received",
        "lost",
        "loss%",
        "dup",
        "reord",
        "stale",
        "malf",
        "restarts",
        "drops",
        "ticks"
    );
    for x in &rows {
        let f = &x.figures;
        let _ = writeln!(
            out,
            "{:<w$} {:>9} {:>9} {:>6} {:>8.4} {:>5} {:>6} {:>6} {:>5} {:>8} {:>6} {:>7}",
            label(x),
            f.counters.expected,
            f.counters.received,
            f.counters.lost,
            f.loss_ratio * 100.0,
            f.counters.duplicates,
            f.counters.reordered,
            f.counters.stale,
            f.counters.malformed,
            f.counters.restarts,
            f.counters.socket_drops,
            f.counters.ticks_applied
        );
    }

    if r.receivers.iter().any(|x| x.conditioner.is_some()) {
        out.push_str(&conditioner_table(r, w));
    }
    let _ = writeln!(
        out,
        "\n{:<w$} {:>8} {:>8} {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8} {:>8} {:>8} | {:>8}",
        "latency",
        "send p50",
        "p90",
        "p99",
        "p99.9",
        "max",
        "sched p50",
        "p90",
        "p99",
        "p99.9",
        "max",
        "jitter"
    );
    for x in &rows {
        let (a, b) = (x.figures.latency_us, x.figures.latency_scheduled_us);
        let (a, b) = (
            |f: fn(&LatencySummary) -> f64| us_or_dash(a.as_ref().map(f)),
            |f: fn(&LatencySummary) -> f64| us_or_dash(b.as_ref().map(f)),
        );
        let _ = writeln!(
            out,
            "{:<w$} {:>8} {:>8} {:>8} {:>8} {:>8} | {:>9} {:>8} {:>8} {:>8} {:>8} | {:>8}",
            label(x),
            a(|l| l.p50),
            a(|l| l.p90),
            a(|l| l.p99),
            a(|l| l.p999),
            a(|l| l.max),
            b(|l| l.p50),
            b(|l| l.p90),
            b(|l| l.p99),
            b(|l| l.p999),
            b(|l| l.max),
            us(x.figures.jitter_us),
        );
    }
    let _ = writeln!(
        out,
        "{:<w$} send = arrival − send time; sched = arrival − the tick's scheduled time; total: {}",
        "", r.total_latency
    );

    let _ = writeln!(
        out,
        "\n{:<w$} {:>11} {:>11} {:>9} {:>7} {:>11} {:>11}",
        "rates, cost", "datagrams/s", "updates/s", "cpu s", "cpu%", "world", "rss"
    );
    for x in &rows {
        let (cs, cp) = cpu(x.cpu);
        let _ = writeln!(
            out,
            "{:<w$} {:>11} {:>11} {:>9} {:>7} {:>11} {:>11}",
            label(x),
            rate(x.datagrams_per_s),
            rate(x.entity_updates_per_s),
            cs,
            cp,
            opt_bytes(x.world_bytes),
            opt_bytes(x.rss_bytes),
        );
    }
    let (cs, cp) = cpu(r.sender.cpu);
    let _ = writeln!(
        out,
        "{:<w$} {:>11} {:>11} {:>9} {:>7}",
        "broadcaster",
        rate(r.sender.datagrams_per_s),
        rate(r.sender.entity_updates_per_s),
        cs,
        cp
    );

    out.push_str(&receiver_cost(&rows, w));

    let b = &r.sender.figures;
    let l = |f: fn(&LatencySummary) -> f64| us_or_dash(b.lateness_us.as_ref().map(f));
    let _ = writeln!(
        out,
        "\nbroadcaster: ticks sent {} skipped {}  packets {}  datagrams {} ({} B/s)  send errors {}{}",
        b.ticks_sent,
        b.ticks_skipped,
        b.packets_sent,
        b.datagrams_sent,
        rate(r.sender.bytes_per_s),
        b.send_errors,
        b.last_error
            .as_deref()
            .map_or(String::new(), |e| format!(" (last: {e})"))
    );
    let _ = writeln!(
        out,
        "sending: {} (asked {}), {:.3} system calls per datagram, {} of {} datagrams as GSO segments; cpu {} µs per 1,000 entity updates{}",
        b.send_path,
        s.send_path,
        r.sender.syscalls_per_datagram,
        b.gso_datagrams,
        b.datagrams_sent,
        r.sender
            .cpu_us_per_1000_updates
            .map_or("-".into(), |c| format!("{c:.2}")),
        b.gso_error
            .as_deref()
            .map_or(String::new(), |e| format!(" (GSO off: {e})"))
    );
    out.push_str(&wire_line(r));
    if let Some(c) = &b.compact {
        let _ = writeln!(
            out,
            "compact: {} keyframes, {} deltas; left out {} at rest, {} deferred to a later tick",
            c.keyframes, c.deltas, c.unchanged, c.deferred
        );
    }
    if let Some(l) = &r.link {
        out.push_str(&link_line(l));
    }
    let _ = writeln!(
        out,
        "tick lateness: p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  ({} ticks)",
        l(|l| l.p50),
        l(|l| l.p90),
        l(|l| l.p99),
        l(|l| l.p999),
        l(|l| l.max),
        b.lateness_us.map_or(0, |l| l.samples)
    );
    if let Some(m) = r.process_memory {
        let _ = writeln!(
            out,
            "memory: this process VmRSS {} (peak {}){}",
            bytes(m.rss),
            bytes(m.peak),
            match s.mode {
                "in-process" => " — broadcaster and every receiver",
                "processes" => " — broadcaster only",
                _ => " — the bench alone (broadcaster and receivers are child processes)",
            }
        );
    }
    let _ = writeln!(out, "cpu: {}", r.cpu_method);
    if let Some([one, five, _]) = r.machine.load_average_before {
        let _ = writeln!(
            out,
            "machine: {} CPUs, load average {one:.2} (1 min) {five:.2} (5 min) before the run{}",
            r.machine.cpus,
            if one > r.machine.cpus as f64 * 0.5 {
                " — busy: other work competes for the CPUs and skews latency and lateness"
            } else {
                ""
            }
        );
    }
    out
}

/// Each receiver's cost: system calls per datagram (in-process) and CPU
/// per 1,000 entity updates.
fn receiver_cost(rows: &[&ReceiverResult], w: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{:<w$} {:>17} {:>20}",
        "receiver cost", "syscalls/datagram", "cpu µs/1k updates"
    );
    let f = |v: Option<f64>, digits: usize| v.map_or("-".into(), |v| format!("{v:.digits$}"));
    for x in rows {
        let _ = writeln!(
            out,
            "{:<w$} {:>17} {:>20}",
            label(x),
            f(x.receiver_syscalls_per_datagram, 3),
            f(x.receiver_cpu_us_per_1000_updates, 1),
        );
    }
    out
}

/// What each receiver's link conditioner did, and whether the receiver's
/// figures equal what it says they must be.
fn conditioner_table(r: &BenchReport, w: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nlink conditioner, a relay in front of each receiver: {} (receiver i's seed: this seed + i)",
        r.setup.impair.as_deref().unwrap_or("-")
    );
    let _ = writeln!(
        out,
        "{:<w$} {:>9} {:>8} {:>6} {:>9} {:>9} | {:>9} {:>9} {:>6} {:>5} {:>6} | receiver's figures",
        "conditioner",
        "in",
        "dropped",
        "dup",
        "held back",
        "reordered",
        "expected",
        "received",
        "lost",
        "dup",
        "reord"
    );
    for x in &r.receivers {
        let Some(c) = &x.conditioner else { continue };
        let verdict = if c.equal {
            "equal, every figure".to_string()
        } else {
            let diffs: Vec<String> = c
                .mismatches
                .iter()
                .map(|m| {
                    format!(
                        "{} {} (conditioner) vs {}",
                        m.figure, m.conditioner, m.receiver
                    )
                })
                .collect();
            format!("DIFFER: {}", diffs.join(", "))
        };
        let premise = if c.relay_socket_drops > 0 || c.relay_send_errors > 0 {
            format!(
                " (relay socket drops {}, send errors {})",
                c.relay_socket_drops, c.relay_send_errors
            )
        } else {
            String::new()
        };
        let (d, e) = (&c.did, &c.expected);
        let _ = writeln!(
            out,
            "{:<w$} {:>9} {:>8} {:>6} {:>9} {:>9} | {:>9} {:>9} {:>6} {:>5} {:>6} | {verdict}{premise}",
            label(x),
            d.datagrams_in,
            d.dropped,
            d.duplicated,
            d.held_back,
            d.reordered,
            e.expected,
            e.received,
            e.lost + e.unseen,
            e.duplicates,
            e.reordered,
        );
    }
    out
}

/// The line printed once a second while a benchmark runs.
pub fn live_line(prefix: &str, p: &Progress) -> String {
    let s = p.sender.summary();
    let mut line = format!(
        "{prefix}{:>5.1}s/{:.0}s  sent {} ticks ({} skipped) {} datagrams  lateness p99 {}",
        p.elapsed.as_secs_f64(),
        p.duration.as_secs_f64(),
        s.ticks_sent,
        s.ticks_skipped,
        s.datagrams_sent,
        us_or_dash(s.lateness_us.map(|l| l.p99)),
    );
    if !p.receivers.is_empty() {
        let lost: u64 = p.receivers.iter().map(|f| f.counters.lost).sum();
        let expected: u64 = p.receivers.iter().map(|f| f.counters.expected).sum();
        let drops: u64 = p.receivers.iter().map(|f| f.counters.socket_drops).sum();
        let worst = p.last_second_loss.iter().copied().fold(0.0, f64::max);
        // The worst receiver's, among those with samples.
        let worst_at = |q: f64| {
            p.receivers
                .iter()
                .filter(|f| !f.latency.is_empty())
                .map(|f| f.latency.value_at_quantile(q) as f64 / 1e3)
                .reduce(f64::max)
        };
        let _ = write!(
            line,
            "  | {} rx lost {lost}/{expected} (worst last 1s {:.3}%) drops {drops}  latency p50 {} p99 {}",
            p.receivers.len(),
            worst * 100.0,
            us_or_dash(worst_at(0.5)),
            us_or_dash(worst_at(0.99)),
        );
    }
    line
}

/// The first line of one mode's run in `--compare-modes`.
pub fn mode_start_line(mode: ReceiveMode, duration: Duration) -> String {
    format!("bench: receive mode {} for {:?}", mode.name(), duration)
}

/// `--compare-modes`' table, after a blank line: one row per mode run,
/// with the receivers' latency to their threads (so the wake-up each mode
/// trades is in it), CPU and the sender's lateness.
pub fn modes_table(reports: &[BenchReport]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nlatency = taken by the receiver thread − send time (the kernel-stamped latency leaves the wake-up out)"
    );
    let _ = writeln!(
        out,
        "\n{:<10} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>11} {:>9}",
        "mode", "lost", "p50", "p90", "p99", "p99.9", "max", "rx cpu%", "tx late99"
    );
    for r in reports {
        let t = &r.total;
        let l =
            |f: fn(&LatencySummary) -> f64| us_or_dash(t.figures.latency_taken_us.as_ref().map(f));
        let _ = writeln!(
            out,
            "{:<10} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>11} {:>9}",
            r.setup.receive_mode,
            t.figures.counters.lost,
            l(|l| l.p50),
            l(|l| l.p90),
            l(|l| l.p99),
            l(|l| l.p999),
            l(|l| l.max),
            t.cpu
                .as_ref()
                .map_or("-".into(), |c| format!("{:.1}", c.percent_of_core)),
            us_or_dash(r.sender.figures.lateness_us.map(|l| l.p99)),
        );
    }
    out
}

/// How `--compare-realtime` names a run: `ordinary`, or `FIFO P` and the
/// CPUs pinned (`FIFO 10 cpu 0/1`: the broadcaster on 0, receivers on 1).
pub fn realtime_label(config: &BenchConfig) -> String {
    run_label(
        config.sender_realtime().map(|r| r.priority),
        config.realtime.map(|r| r.priority),
        config.sender_cpu,
        &config.receiver_cpus,
    )
}

/// [`realtime_label`] of the parts it names: `FIFO 11/10 cpu 0/1` is the
/// broadcaster at priority 11 on CPU 0, the receivers at 10 on CPU 1.
fn run_label(
    sender_priority: Option<u8>,
    priority: Option<u8>,
    sender_cpu: Option<usize>,
    receiver_cpus: &[usize],
) -> String {
    let mut label = match (sender_priority, priority) {
        (Some(s), Some(p)) => format!("FIFO {s}/{p}"),
        _ => "ordinary".to_string(),
    };
    if sender_cpu.is_some() || !receiver_cpus.is_empty() {
        let rx: Vec<String> = receiver_cpus.iter().map(|c| c.to_string()).collect();
        let _ = write!(
            label,
            " cpu {}/{}",
            sender_cpu.map_or("-".into(), |c| c.to_string()),
            if rx.is_empty() {
                "-".into()
            } else {
                rx.join(",")
            }
        );
    }
    label
}

/// The first line of one of `--compare-realtime`'s runs.
pub fn realtime_start_line(config: &BenchConfig) -> String {
    format!(
        "bench: {} for {:?}: {} entities ({} world) at {} Hz to {} receiver(s), receive mode {}",
        match config.realtime {
            None => "as ordinary threads".to_string(),
            Some(_) => format!("real-time ({})", realtime_label(config)),
        },
        config.duration,
        config.entities,
        config.world,
        config.rate_hz,
        config.receivers,
        config.receive_mode.name()
    )
}

/// `--compare-realtime`'s table, after a blank line: one row per run, the
/// receivers' latency (from the send time) and CPU, and the broadcaster's
/// tick lateness.
pub fn realtime_table(reports: &[BenchReport]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{:<18} {:>6} {:>9} {:>9} {:>9} {:>9} {:>8} | {:>9} {:>9} {:>9} {:>9}",
        "run",
        "lost",
        "p50",
        "p99",
        "p99.9",
        "max",
        "rx cpu%",
        "late p50",
        "late p99",
        "p99.9",
        "max"
    );
    for r in reports {
        let t = &r.total;
        let l = |f: fn(&LatencySummary) -> f64| us_or_dash(t.figures.latency_us.as_ref().map(f));
        let late = |f: fn(&LatencySummary) -> f64| {
            us_or_dash(r.sender.figures.lateness_us.as_ref().map(f))
        };
        let s = &r.setup;
        let label = run_label(
            s.sender_realtime_priority,
            s.realtime_priority,
            s.sender_cpu,
            &s.receiver_cpus,
        );
        let _ = writeln!(
            out,
            "{:<18} {:>6} {:>9} {:>9} {:>9} {:>9} {:>8} | {:>9} {:>9} {:>9} {:>9}",
            label,
            t.figures.counters.lost,
            l(|l| l.p50),
            l(|l| l.p99),
            l(|l| l.p999),
            l(|l| l.max),
            t.cpu
                .as_ref()
                .map_or("-".into(), |c| format!("{:.1}", c.percent_of_core)),
            late(|l| l.p50),
            late(|l| l.p99),
            late(|l| l.p999),
            late(|l| l.max),
        );
    }
    let _ = writeln!(
        out,
        "latency = arrival − send time, every receiver's samples; late = the broadcaster's tick lateness; \
         FIFO tx/rx = the broadcaster's and the receivers' SCHED_FIFO priorities, cpu tx/rx their CPUs"
    );
    if let Some(r) = reports.first() {
        if let Some([one, five, _]) = r.machine.load_average_before {
            let _ = writeln!(
                out,
                "machine: {} CPUs, load average {one:.2} (1 min) {five:.2} (5 min) before the first run",
                r.machine.cpus
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_compact() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(2048), "2.0 KiB");
        assert_eq!(bytes(3 << 20), "3.0 MiB");
        assert_eq!(rate(950.0), "950");
        assert_eq!(rate(12_345.0), "12.3k");
        assert_eq!(rate(4_560_000.0), "4.56M");
    }
}
