//! The benchmark's human output: the end-of-run tables, the live line, the
//! sweep table with its cost summary, and the max-entities search. Plain
//! string building over the reports; no I/O.

use std::fmt::Write;

use super::us;
use tickcast::bench::sweep::{Probe, Scaling, Search, SweepRow};
use tickcast::bench::{BenchReport, Cpu, Progress, ReceiverResult};

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
        "tickcast bench: 1 broadcaster -> {} receiver{} ({}) on {}, {} entities at {} Hz, {}-byte datagrams, {:.1} s{}",
        s.receivers,
        if s.receivers == 1 { "" } else { "s" },
        s.mode,
        if s.mode.starts_with("lan-") {
            "a network-namespace LAN"
        } else {
            "127.0.0.1"
        },
        s.entities,
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
        let (a, b) = (&x.figures.latency_us, &x.figures.latency_scheduled_us);
        let _ = writeln!(
            out,
            "{:<w$} {:>8} {:>8} {:>8} {:>8} {:>8} | {:>9} {:>8} {:>8} {:>8} {:>8} | {:>8}",
            label(x),
            us(a.p50),
            us(a.p90),
            us(a.p99),
            us(a.p999),
            us(a.max),
            us(b.p50),
            us(b.p90),
            us(b.p99),
            us(b.p999),
            us(b.max),
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

    let b = &r.sender.figures;
    let l = &b.lateness_us;
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
        "tick lateness: p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  ({} ticks)",
        us(l.p50),
        us(l.p90),
        us(l.p99),
        us(l.p999),
        us(l.max),
        l.samples
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
        us(s.lateness_us.p99),
    );
    if !p.receivers.is_empty() {
        let lost: u64 = p.receivers.iter().map(|f| f.counters.lost).sum();
        let expected: u64 = p.receivers.iter().map(|f| f.counters.expected).sum();
        let drops: u64 = p.receivers.iter().map(|f| f.counters.socket_drops).sum();
        let worst = p.last_second_loss.iter().copied().fold(0.0, f64::max);
        let p50 = p
            .receivers
            .iter()
            .map(|f| f.latency.value_at_quantile(0.5))
            .max()
            .unwrap_or(0);
        let p99 = p
            .receivers
            .iter()
            .map(|f| f.latency.value_at_quantile(0.99))
            .max()
            .unwrap_or(0);
        let _ = write!(
            line,
            "  | {} rx lost {lost}/{expected} (worst last 1s {:.3}%) drops {drops}  latency p50 {} p99 {}",
            p.receivers.len(),
            worst * 100.0,
            us(p50 as f64 / 1e3),
            us(p99 as f64 / 1e3),
        );
    }
    line
}

fn opt_pct(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.1}"))
}

/// One row per sweep point.
pub fn sweep_table(rows: &[SweepRow]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>9} {:>9} {:>7} {:>8} {:>6} {:>7} {:>8} {:>8} {:>9} {:>8} {:>9} {:>11} {:>10}",
        "entities",
        "receivers",
        "rate",
        "loss%",
        "drops",
        "skipped",
        "p50",
        "p99",
        "p99 sched",
        "tx cpu%",
        "rx cpu%",
        "datagrams/s",
        "tx µs/tick"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:>9} {:>9} {:>7} {:>8.4} {:>6} {:>7} {:>8} {:>8} {:>9} {:>8} {:>9} {:>11} {:>10}",
            r.point.entities,
            r.point.receivers,
            r.point.rate_hz,
            r.loss_ratio * 100.0,
            r.socket_drops,
            r.ticks_skipped,
            us(r.p50_us),
            us(r.p99_us),
            us(r.p99_scheduled_us),
            opt_pct(r.sender_cpu_percent),
            opt_pct(r.receiver_cpu_percent),
            rate(r.datagrams_per_s),
            r.sender_us_per_tick()
                .map_or("-".into(), |v| format!("{v:.1}")),
        );
    }
    let _ = writeln!(
        out,
        "rx cpu% is per receiver (their total over their count); p50/p99 from send time, over every receiver"
    );
    out
}

/// How cost grows, in words.
pub fn scaling(s: &Scaling) -> String {
    let mut out = String::from("cost:\n");
    match (
        s.sender_fixed_us,
        s.sender_ns_per_entity,
        s.sender_us_per_datagram,
    ) {
        (Some(a), Some(b), Some(c)) => {
            let _ = writeln!(
                out,
                "  sender CPU per tick ≈ {a:.1} µs + {b:.1} ns × entities + {c:.2} µs × datagrams sent (least squares over the points;"
            );
            let _ = writeln!(
                out,
                "  the fixed part is mostly the sender's busy-wait before each deadline, which its CPU time includes)"
            );
            if a < 0.0 || b < 0.0 || c < 0.0 {
                let _ = writeln!(
                    out,
                    "  a negative term means the points disagree (noise, a busy machine): take longer --duration or more points"
                );
            }
            let _ = writeln!(
                out,
                "  so an entity costs {b:.1} ns to simulate and encode once per tick, and every receiver adds {c:.2} µs per datagram sent to it"
            );
        }
        _ => {
            let _ = writeln!(
                out,
                "  (vary both entities and receivers over 3+ points to separate per-entity from per-datagram sender cost)"
            );
        }
    }
    if let Some(v) = s.sender_ns_per_entity_receiver {
        let _ = writeln!(
            out,
            "  sender CPU per entity per tick per receiver: {v:.1} ns (median over the points)"
        );
    }
    if let Some(v) = s.receiver_ns_per_entity {
        let _ = writeln!(
            out,
            "  receiver CPU per entity applied: {v:.1} ns (median; each receiver pays it for every entity of every tick)"
        );
    }
    out
}

fn probe_line(p: &Probe) -> String {
    format!(
        "{:>9} entities  {}  lost {}  drops {}  skipped {}  send errors {}  p99 {}  tx cpu {}%  rx cpu {}%  (run {}, load {})",
        p.entities,
        if p.ok { "ok  " } else { "FAIL" },
        p.lost,
        p.socket_drops,
        p.ticks_skipped,
        p.send_errors,
        us(p.p99_us),
        opt_pct(p.sender_cpu_percent),
        opt_pct(p.receiver_cpu_percent),
        p.attempts,
        p.load_average.map_or("-".into(), |l| format!("{l:.1}")),
    )
}

/// One probe as it finishes.
pub fn probe(p: &Probe) -> String {
    probe_line(p)
}

/// The search's answer and every probe.
pub fn search(s: &Search, receivers: usize, rate_hz: f64) -> String {
    let mut out = String::new();
    let each = if receivers == 1 {
        "one receiver".to_string()
    } else {
        format!("each of {receivers} receivers")
    };
    match s.answer {
        Some(n) => {
            let _ = write!(
                out,
                "max entities at {rate_hz} Hz to {each} with zero loss and zero socket drops (sender skipping at most {:.0}% of ticks): {n}",
                tickcast::bench::sweep::MAX_SKIPPED_SHARE * 100.0
            );
            if let Some(f) = s.failed_at {
                let _ = write!(out, " (failed at {f})");
            }
        }
        None => {
            let _ = write!(out, "no entity count passed at {rate_hz} Hz to {each}");
        }
    }
    if s.cut_short {
        out.push_str(" — search cut short before the bracket was narrow");
    }
    out.push_str("\nprobes (in order):\n");
    for p in &s.probes {
        let _ = writeln!(out, "  {}", probe_line(p));
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

    #[test]
    fn search_text_names_the_answer_and_every_probe() {
        let s = Search {
            answer: Some(40_000),
            failed_at: Some(80_000),
            probes: vec![
                Probe::verdict(10_000, true),
                Probe::verdict(20_000, true),
                Probe::verdict(40_000, true),
                Probe::verdict(80_000, false),
            ],
            cut_short: false,
        };
        let t = search(&s, 1, 60.0);
        assert!(t.starts_with("max entities at 60 Hz to one receiver"));
        assert!(t.contains(": 40000 (failed at 80000)"));
        assert_eq!(t.lines().count(), 2 + 4);
    }
}
