//! `tickcast bench`'s lines for sweeps and the max-entities search: what
//! runs, a line per point or probe as it finishes, the sweep table with how
//! cost grows, and the search's answer. Plain string building; no I/O.

use std::fmt::Write;

use super::bench::{link_words, rate};
use super::us_or_dash;
use tickcast::bench::scaling::{FitQuality, Scaling};
use tickcast::bench::search::{self, Limit, Probe, Search};
use tickcast::bench::sweep::SweepRow;
use tickcast::bench::{BenchConfig, LanMode, GRACE};

/// The first line of a sweep of `points` runs like `base`, with how long it takes.
pub fn start_line(base: &BenchConfig, points: usize) -> String {
    let per_point = base.duration + base.warmup + GRACE;
    format!(
        "sweep: {} points of {:?} each, {} world (about {:.0} s in all); Ctrl-C ends early",
        points,
        base.duration,
        base.world,
        per_point.as_secs_f64() * points as f64
    )
}

/// Point `i` (from 0) of `n`, as it finishes.
pub fn point_line(i: usize, n: usize, row: &SweepRow) -> String {
    let check = match row.conditioner_equal {
        Some(true) => "  conditioner: equal",
        Some(false) => "  conditioner: DIFFER",
        None => "",
    };
    format!(
        "[{}/{n}] {} entities × {} receivers × {} Hz: loss {:.4}%  p99 {}  tx cpu {}{check}",
        i + 1,
        row.point.entities,
        row.point.receivers,
        row.point.rate_hz,
        row.loss_ratio * 100.0,
        us_or_dash(row.p99_us),
        row.sender_cpu_percent
            .map_or("-".into(), |c| format!("{c:.1}%")),
    )
}

/// The first line of the search, from `start` entities, probes like `base`.
pub fn search_start_line(base: &BenchConfig, start: u32) -> String {
    format!(
        "searching for the most entities ({} world) at {} Hz to {} receiver(s){}: doubling from {start}, then bisecting to {:.0}%, at most {} probes of {:?}; Ctrl-C ends early",
        base.world,
        base.rate_hz,
        base.receivers,
        link_words(base),
        search::RESOLUTION * 100.0,
        search::MAX_PROBES,
        base.duration
    )
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
            us_or_dash(r.p50_us),
            us_or_dash(r.p99_us),
            us_or_dash(r.p99_scheduled_us),
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

/// How well a fit fits, in words: `R² 0.998, 6 points`.
fn fit_words(q: &FitQuality) -> String {
    let r2 = q
        .r_squared
        .map_or("R² - (the cost did not vary)".to_string(), |r| {
            format!("R² {r:.3}")
        });
    format!("{r2}, {} points", q.points)
}

/// The notes a fit needs: the terms held at zero, and a loose fit.
fn fit_notes(out: &mut String, q: &FitQuality) {
    if !q.clamped.is_empty() {
        let _ = writeln!(
            out,
            "  note: least squares wanted {} below 0, which a cost cannot be: held at 0 and the rest fitted without it (the points disagree: noise or a busy machine; take a longer --duration or more points)",
            q.clamped.join(" and ")
        );
    }
    if q.r_squared.is_some_and(|r| r < LOOSE_FIT) {
        let _ = writeln!(
            out,
            "  note: a loose fit (R² below {LOOSE_FIT}): the model explains little of how the cost varied; read its terms as rough"
        );
    }
}

/// R² below which a fit is called loose.
const LOOSE_FIT: f64 = 0.9;

/// How cost grows, in words, with how well each fit fits.
pub fn scaling(s: &Scaling) -> String {
    let mut out = String::from("cost (non-negative least squares over the points):\n");
    match (&s.sender_fit, s.sender_fixed_us, s.sender_ns_per_entity) {
        (Some(q), Some(a), Some(b)) => {
            match s.sender_us_per_datagram {
                Some(c) => {
                    let _ = writeln!(
                        out,
                        "  sender CPU per tick ≈ {a:.1} µs + {b:.1} ns × entities + {c:.2} µs × datagrams sent  ({})",
                        fit_words(q)
                    );
                    let _ = writeln!(
                        out,
                        "  so an entity costs {b:.1} ns to simulate and encode once per tick, and every receiver adds {c:.2} µs per datagram sent to it"
                    );
                }
                None => {
                    let _ = writeln!(
                        out,
                        "  sender CPU per tick ≈ {a:.1} µs + {b:.1} ns × entities  ({}; datagrams grow with entities here, so their cost is in the per-entity term: vary receivers too to separate them)",
                        fit_words(q)
                    );
                }
            }
            let _ = writeln!(
                out,
                "  the fixed part is mostly the sender's busy-wait before each deadline, which its CPU time includes"
            );
            fit_notes(&mut out, q);
        }
        _ => {
            let _ = writeln!(
                out,
                "  (vary entities over 3+ points, and receivers too, to fit the sender's cost)"
            );
        }
    }
    if let Some(v) = s.sender_ns_per_entity_receiver {
        let _ = writeln!(
            out,
            "  sender CPU per entity per tick per receiver: {v:.1} ns (median over the points)"
        );
    }
    if let (Some(q), Some(a), Some(b)) = (
        &s.receiver_fit,
        s.receiver_fixed_us,
        s.receiver_ns_per_entity,
    ) {
        let _ = writeln!(
            out,
            "  receiver CPU per tick ≈ {a:.1} µs + {b:.1} ns × entities applied, each receiver  ({})",
            fit_words(q)
        );
        fit_notes(&mut out, q);
    }
    out
}

fn probe_line(p: &Probe) -> String {
    let unseen = if p.unseen > 0 {
        format!(" (+{} unseen)", p.unseen)
    } else {
        String::new()
    };
    let shaper = match (p.shaper_drops, p.link_utilization) {
        (Some(d), Some(u)) => format!("  shaper drops {d}  link {:.0}% full", u * 100.0),
        (Some(d), None) => format!("  shaper drops {d}"),
        _ => String::new(),
    };
    format!(
        "{:>9} entities  {}  lost {}{unseen}  drops {}{shaper}  skipped {}  send errors {}  p99 {}  tx cpu {}%  rx cpu {}%  (run {}, load {})",
        p.entities,
        if p.ok { "ok  " } else { "FAIL" },
        p.lost,
        p.socket_drops,
        p.ticks_skipped,
        p.send_errors,
        us_or_dash(p.p99_us),
        opt_pct(p.sender_cpu_percent),
        opt_pct(p.receiver_cpu_percent),
        p.attempts,
        p.load_average.map_or("-".into(), |l| format!("{l:.1}")),
    ) + &limited(&p.limits)
}

/// `  limited by: sender CPU (ticks skipped or late), ...`, or nothing.
fn limited(limits: &[Limit]) -> String {
    if limits.is_empty() {
        return String::new();
    }
    let words: Vec<&str> = limits.iter().map(|l| l.words()).collect();
    format!("  limited by: {}", words.join(", "))
}

/// One probe as it finishes, indented as in [`search`]'s list.
pub fn probe(p: &Probe) -> String {
    format!("  {}", probe_line(p))
}

/// `118000` as `118,000`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// The answer of a search on a shaped link: what the link carries.
fn link_answer(s: &Search, rate: &str, base: &BenchConfig) -> String {
    let copies = match base.lan {
        Some(LanMode::Unicast) if base.receivers > 1 => format!(
            ", {} copies of the stream (unicast to {} receivers)",
            base.receivers, base.receivers
        ),
        _ => String::new(),
    };
    let hz = base.rate_hz;
    match (s.answer, s.at_answer()) {
        (Some(n), Some(p)) => {
            let wire = match (p.wire_bytes_per_entity_update, p.wire_bytes_per_entity_update_ip) {
                (Some(b), Some(ip)) => format!(
                    " (wire: {b:.1} bytes per entity-update, {ip:.1} with IPv4+UDP headers{copies})"
                ),
                _ => copies,
            };
            // Only a failure on the full link bounds what it carries;
            // anything else (the sender, the cap, a search cut short)
            // leaves room above.
            let bounded = s.limited_by().contains(&Limit::LinkRate) && !s.cut_short;
            format!(
                "the {rate} link carries {}{} entities at {hz} Hz with zero loss and no skipped ticks{wire}",
                if bounded { "" } else { "at least " },
                thousands(u64::from(n))
            )
        }
        _ => format!(
            "the {rate} link carried no entity count tried at {hz} Hz with zero loss and no skipped ticks{copies}"
        ),
    }
}

/// The search's answer and every probe.
pub fn search(s: &Search, base: &BenchConfig) -> String {
    let (receivers, rate_hz) = (base.receivers, base.rate_hz);
    let mut out = String::new();
    let each = if receivers == 1 {
        "one receiver".to_string()
    } else {
        format!("each of {receivers} receivers")
    };
    match s.answer {
        _ if base.link_rate.is_some() => {
            let rate = base.link_rate.map(|r| r.to_string()).unwrap_or_default();
            out.push_str(&link_answer(s, &rate, base));
            if let Some(f) = s.failed_at {
                let _ = write!(out, "\nfailed at {}", thousands(u64::from(f)));
            }
        }
        Some(n) => {
            let _ = write!(
                out,
                "max entities at {rate_hz} Hz to {each} with zero loss and zero socket drops (sender skipping at most {:.0}% of ticks): {n}",
                search::MAX_SKIPPED_SHARE * 100.0
            );
            if let Some(f) = s.failed_at {
                let _ = write!(out, " (failed at {f})");
            }
        }
        None => {
            let _ = write!(out, "no entity count passed at {rate_hz} Hz to {each}");
        }
    }
    let why = s.limited_by();
    if !why.is_empty() {
        let sep = if base.link_rate.is_some() && s.failed_at.is_some() {
            ": "
        } else {
            "\n"
        };
        let _ = write!(out, "{sep}{}", limited(why).trim_start());
        match why.first() {
            Some(Limit::SenderCpu) => out.push_str(
                " — the sender ran out first: this is the sender's capacity at this rate, not the receivers'",
            ),
            Some(Limit::SenderStalled) => out.push_str(
                " — the sender fell behind with CPU to spare: a stall on this machine, not its capacity; a rerun may find more",
            ),
            _ => {}
        }
    }
    if s.cut_short {
        out.push_str(" — search cut short before the bracket was narrow");
    }
    out.push_str("\nprobes (in order):\n");
    for p in &s.probes {
        let _ = writeln!(out, "{}", probe(p));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cost_says_how_well_it_fits_and_what_it_held_at_zero() {
        let q = |clamped: Vec<&'static str>, r2| FitQuality {
            model: "m",
            points: 6,
            r_squared: Some(r2),
            clamped,
        };
        let s = Scaling {
            sender_fixed_us: Some(5.0),
            sender_ns_per_entity: Some(0.0),
            sender_us_per_datagram: Some(2.0),
            sender_fit: Some(q(vec!["sender_ns_per_entity"], 0.75)),
            receiver_fixed_us: Some(3.0),
            receiver_ns_per_entity: Some(1.0),
            receiver_fit: Some(q(vec![], 0.999)),
            ..Scaling::default()
        };
        let t = scaling(&s);
        assert!(
            t.contains(
                "5.0 µs + 0.0 ns × entities + 2.00 µs × datagrams sent  (R² 0.750, 6 points)"
            ),
            "{t}"
        );
        assert!(t.contains("wanted sender_ns_per_entity below 0"), "{t}");
        assert!(t.contains("a loose fit"), "{t}");
        assert!(t.contains("receiver CPU per tick ≈ 3.0 µs + 1.0 ns × entities applied, each receiver  (R² 0.999, 6 points)"), "{t}");
        assert_eq!(t.matches("note:").count(), 2, "{t}");
        assert!(scaling(&Scaling::default()).contains("vary entities"));
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
        let one = BenchConfig {
            receivers: 1,
            ..BenchConfig::default()
        };
        let t = search(&s, &one);
        assert!(t.starts_with("max entities at 60 Hz to one receiver"));
        assert!(t.contains(": 40000 (failed at 80000)"));
        assert_eq!(t.lines().count(), 2 + 4);
        // What ran out where it failed, on its own line and on the probe's.
        let mut s = s;
        s.probes[3].limits = vec![Limit::SenderCpu, Limit::SocketDrops];
        let t = search(&s, &one);
        let second = t.lines().nth(1).unwrap();
        assert!(
            second.starts_with("limited by: sender CPU (ticks skipped or late), receiver socket drops — the sender ran out first"),
            "{t}"
        );
        assert!(
            t.lines()
                .last()
                .unwrap()
                .ends_with("limited by: sender CPU (ticks skipped or late), receiver socket drops"),
            "{t}"
        );
        assert_eq!(t.lines().count(), 3 + 4);
    }

    #[test]
    fn a_search_on_a_shaped_link_says_what_the_link_carries() {
        let mut pass = Probe::verdict(118_000, true);
        pass.wire_bytes_per_entity_update = Some(16.81);
        pass.wire_bytes_per_entity_update_ip = Some(17.22);
        let mut fail = Probe::verdict(120_500, false);
        fail.limits = vec![Limit::LinkRate];
        let s = Search {
            answer: Some(118_000),
            failed_at: Some(120_500),
            probes: vec![pass, fail],
            cut_short: false,
        };
        let mut base = BenchConfig {
            receivers: 1,
            lan: Some(LanMode::Multicast),
            link_rate: Some("1gbit".parse().unwrap()),
            ..BenchConfig::default()
        };
        let t = search(&s, &base);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0],
            "the 1gbit link carries 118,000 entities at 60 Hz with zero loss and no skipped ticks (wire: 16.8 bytes per entity-update, 17.2 with IPv4+UDP headers)"
        );
        assert_eq!(
            lines[1],
            "failed at 120,500: limited by: the link rate (shaper drops, or the sender waiting on a full link)"
        );
        assert_eq!(lines.len(), 3 + 2, "{t}");
        // When the sender ran out first, the link carries at least that.
        let mut by_sender = s.clone();
        by_sender.probes[1].limits = vec![Limit::SenderCpu];
        assert!(search(&by_sender, &base).starts_with(
            "the 1gbit link carries at least 118,000 entities at 60 Hz with zero loss and no skipped ticks"
        ));
        // Unicast puts a copy per receiver on the link, and says so.
        (base.lan, base.receivers) = (Some(LanMode::Unicast), 2);
        assert!(search(&s, &base)
            .lines()
            .next()
            .unwrap()
            .ends_with("with IPv4+UDP headers, 2 copies of the stream (unicast to 2 receivers))"));
        let none = Search {
            answer: None,
            failed_at: Some(1),
            probes: vec![Probe::verdict(1, false)],
            cut_short: false,
        };
        assert!(search(&none, &base).starts_with(
            "the 1gbit link carried no entity count tried at 60 Hz with zero loss and no skipped ticks"
        ));
    }

    #[test]
    fn counts_are_grouped_in_thousands() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(118_000), "118,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
