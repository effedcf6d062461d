//! The search for the most entities a receiver (and a shaped link) takes
//! at a rate without loss while the broadcaster keeps the rate (on a
//! shaped link, without a skipped tick): [`find_max`], run with real
//! probes by [`find_max_entities`], and what ran out where a probe failed
//! ([`Limit`]). The search itself is pure; only [`find_max_entities`] runs
//! benchmarks.

use std::ops::ControlFlow;
use std::time::Duration;

use serde::Serialize;

use super::sweep::SweepRow;
use super::{BenchConfig, BenchError, BenchReport, Progress};
use crate::runtime::receiver::ReceiveMode;
use crate::wire;

/// Duration of one probe of the max-entities search unless told otherwise.
pub const PROBE_DURATION: Duration = Duration::from_secs(2);
/// Most probes the max-entities search makes.
pub const MAX_PROBES: usize = 16;
/// The search stops once the bracket is this narrow, relative to its bottom.
pub const RESOLUTION: f64 = 0.02;
/// Where the max-entities search starts unless told otherwise.
pub const SEARCH_START: u32 = 10_000;
/// Share of ticks a probe's broadcaster may skip and still pass: a sender
/// descheduled for a tick period on a busy machine skips a few, which says
/// nothing about the receiver; a sender that cannot keep the rate skips many.
/// A probe on a shaped link ([`BenchConfig::link_rate`]) may skip none: it
/// asks what the link carries at the rate, every tick of it.
pub const MAX_SKIPPED_SHARE: f64 = 0.05;
/// Runs of one probe at most: a failure is run once more, because a busy
/// machine makes a probe fail by chance (a descheduled receiver overflows its
/// socket) but never makes a real overload pass.
pub const PROBE_ATTEMPTS: u32 = 2;

/// A receiver thread (or process) busy at least this share of one core,
/// in percent, while datagrams went missing ran out of CPU.
pub const RECEIVER_BUSY_PERCENT: f64 = 90.0;

/// A shaped link whose shaper passed at least this share of its rate over
/// the run ([`super::LinkResult::utilization`]) was full: a broadcaster
/// that fell behind then was waiting for the link. Below it, the sending
/// host could not fill the link (its CPU, or the kernel's forwarding
/// starved by other work), which is named as the sender's limit, as on a
/// link not shaped.
pub const LINK_FULL_SHARE: f64 = 0.9;

/// A broadcaster busy at least this share of one core, in percent, while
/// it fell behind ran out of CPU, on a full link too (its time includes
/// the kernel's sending and forwarding done on its behalf).
pub const SENDER_BUSY_PERCENT: f64 = 90.0;

/// What ran out in a failed probe, read from its figures ([`limits`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// The broadcaster could not keep the rate: it skipped more than
    /// [`MAX_SKIPPED_SHARE`] of its ticks, or its ticks went out more than
    /// a tick period late (p99), busy at least [`SENDER_BUSY_PERCENT`] of a
    /// core (or its CPU unmeasured). Its capacity, not the receivers', was
    /// reached.
    SenderCpu,
    /// The broadcaster fell behind as for [`Limit::SenderCpu`] with CPU to
    /// spare (busy less than [`SENDER_BUSY_PERCENT`] of a core): a stall,
    /// not its capacity. A send that blocked (a burst larger than the
    /// socket buffer drains into a shaped link) or the thread kept off its
    /// core by other work.
    SenderStalled,
    /// Sends failed: the sender's socket buffer or the network refused
    /// datagrams (the receivers then miss them too).
    SendErrors,
    /// A receiver was busy at least [`RECEIVER_BUSY_PERCENT`] of a core
    /// while it lost datagrams: it could not keep up (the kernel then
    /// drops at its socket).
    ReceiverCpu,
    /// The receivers' sockets overflowed (SO_RXQ_OVFL) although no
    /// receiver was that busy: bursts larger than the socket buffer, or a
    /// receiver not scheduled in time on a busy machine.
    SocketDrops,
    /// Datagrams went missing between the sockets: no socket drops, no
    /// send errors, no shaper drops, and the sender kept the rate. On
    /// loopback the kernel's backlog; on a LAN the wire, the bridge or a NIC.
    Link,
    /// The shaped link's rate ([`BenchConfig::link_rate`]) was reached: its
    /// shaper dropped datagrams, or the broadcaster fell behind (ticks
    /// skipped or late) while the shaper passed at least
    /// [`LINK_FULL_SHARE`] of the rate, so it was waiting for the full link
    /// (and, if it was busy [`SENDER_BUSY_PERCENT`] of a core as well, the
    /// probe names [`Limit::SenderCpu`] too).
    LinkRate,
}

impl Limit {
    /// The limit in a few words, for tables.
    pub fn words(self) -> &'static str {
        match self {
            Limit::SenderCpu => "sender CPU (ticks skipped or late)",
            Limit::SenderStalled => "the sender stalled (ticks skipped or late with CPU to spare)",
            Limit::SendErrors => "send errors",
            Limit::ReceiverCpu => "receiver CPU",
            Limit::SocketDrops => "receiver socket drops",
            Limit::Link => "the link (lost with no socket drops)",
            Limit::LinkRate => "the link rate (shaper drops, or the sender waiting on a full link)",
        }
    }
}

/// What ran out in probe `p`, a run at `rate_hz` (`busy_polls`: the
/// receivers spin, so their CPU says nothing), most upstream first; empty
/// for a probe that passed. Every way a probe fails names at least one.
pub fn limits(p: &Probe, rate_hz: f64, busy_polls: bool) -> Vec<Limit> {
    if p.ok {
        return Vec::new();
    }
    let mut out = Vec::new();
    let period_us = 1e6 / rate_hz;
    let late = p.lateness_p99_us.is_some_and(|l| l > period_us);
    let shaper_drops = p.shaper_drops.unwrap_or(0);
    if !p.kept_rate() || late {
        // Behind on a full shaped link: it was waiting for the link, and
        // short of CPU too if it was that busy.
        let full = p.link_utilization.is_some_and(|u| u >= LINK_FULL_SHARE);
        let busy = p
            .sender_cpu_percent
            .is_some_and(|c| c >= SENDER_BUSY_PERCENT);
        if !full || busy {
            // Measured and not busy: it had CPU to spare.
            let spare = p.sender_cpu_percent.is_some() && !busy;
            out.push(if spare {
                Limit::SenderStalled
            } else {
                Limit::SenderCpu
            });
        }
        if full {
            out.push(Limit::LinkRate);
        }
    }
    if p.send_errors > 0 {
        out.push(Limit::SendErrors);
    }
    if shaper_drops > 0 && !out.contains(&Limit::LinkRate) {
        out.push(Limit::LinkRate);
    }
    if p.lost > 0 || p.unseen > 0 || p.socket_drops > 0 {
        let busy = !busy_polls
            && p.busiest_receiver_cpu_percent
                .is_some_and(|c| c >= RECEIVER_BUSY_PERCENT);
        if busy {
            out.push(Limit::ReceiverCpu);
        } else if p.socket_drops > 0 {
            out.push(Limit::SocketDrops);
        } else if p.send_errors == 0 && shaper_drops == 0 {
            out.push(Limit::Link);
        }
    }
    out
}

/// One probe of the max-entities search.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Probe {
    /// Entities tried.
    pub entities: u32,
    /// True when every receiver got every packet the broadcaster sent
    /// (`lost` and `unseen` both 0), no socket dropped anything, no send
    /// failed, no shaper dropped anything, and the broadcaster kept the
    /// rate: on a shaped link (`link_rate`) it skipped no tick, otherwise
    /// at most [`MAX_SKIPPED_SHARE`] of them.
    pub ok: bool,
    /// What ran out, when it failed ([`limits`]); empty when it passed.
    pub limits: Vec<Limit>,
    /// Packets lost, all receivers.
    pub lost: u64,
    /// Packets the broadcaster sent that receivers neither received nor
    /// counted lost, all receivers: `packets_sent − expected` of each,
    /// added. Those before the first a receiver got, or after the last
    /// when every goodbye copy was lost too (as a full link can).
    pub unseen: u64,
    /// Socket drops, all receivers.
    pub socket_drops: u64,
    /// Ticks the broadcaster sent.
    pub ticks_sent: u64,
    /// Ticks the broadcaster skipped.
    pub ticks_skipped: u64,
    /// p99 of the broadcaster's tick lateness, µs (`None` before a tick).
    pub lateness_p99_us: Option<f64>,
    /// Send errors.
    pub send_errors: u64,
    /// p99 latency from send time, µs (`None` without samples).
    pub p99_us: Option<f64>,
    /// Sender CPU, percent of one core.
    pub sender_cpu_percent: Option<f64>,
    /// CPU of one receiver on average, percent of one core.
    pub receiver_cpu_percent: Option<f64>,
    /// CPU of the busiest receiver, percent of one core.
    pub busiest_receiver_cpu_percent: Option<f64>,
    /// Runs it took (a failure is tried again, up to [`PROBE_ATTEMPTS`]).
    pub attempts: u32,
    /// The machine's 1-minute load average before the (last) run.
    pub load_average: Option<f64>,
    /// The rate the broadcaster's link was shaped to, if it was (`1gbit`).
    pub link_rate: Option<String>,
    /// Packets the shaper dropped ([`super::LinkResult::shaper_drops`]);
    /// `null` on a link not shaped, or whose counts could not be read.
    pub shaper_drops: Option<u64>,
    /// How full the shaped link was ([`super::LinkResult::utilization`]);
    /// `null` as `shaper_drops`.
    pub link_utilization: Option<f64>,
    /// UDP payload bytes per entity update
    /// ([`super::SenderResult::wire_bytes_per_entity_update`]).
    pub wire_bytes_per_entity_update: Option<f64>,
    /// The same with IPv4 and UDP headers
    /// ([`super::SenderResult::wire_bytes_per_entity_update_ip`]).
    pub wire_bytes_per_entity_update_ip: Option<f64>,
}

impl Probe {
    /// A probe that only passed or failed (for tests and callers without figures).
    pub fn verdict(entities: u32, ok: bool) -> Probe {
        Probe {
            entities,
            ok,
            limits: Vec::new(),
            lost: 0,
            unseen: 0,
            socket_drops: 0,
            ticks_sent: 0,
            ticks_skipped: 0,
            lateness_p99_us: None,
            send_errors: 0,
            p99_us: None,
            sender_cpu_percent: None,
            receiver_cpu_percent: None,
            busiest_receiver_cpu_percent: None,
            attempts: 1,
            load_average: None,
            link_rate: None,
            shaper_drops: None,
            link_utilization: None,
            wire_bytes_per_entity_update: None,
            wire_bytes_per_entity_update_ip: None,
        }
    }

    /// The probe of a finished run, with what ran out if it failed.
    pub fn of(r: &BenchReport) -> Probe {
        let row = SweepRow::of(r);
        let send_errors = r.sender.figures.send_errors;
        let sent = r.sender.figures.packets_sent;
        let unseen = r
            .receivers
            .iter()
            .map(|x| sent.saturating_sub(x.figures.counters.expected))
            .sum();
        let mut p = Probe {
            entities: r.setup.entities,
            ok: false,
            limits: Vec::new(),
            lost: row.lost,
            unseen,
            socket_drops: row.socket_drops,
            ticks_sent: row.ticks_sent,
            ticks_skipped: row.ticks_skipped,
            lateness_p99_us: r.sender.figures.lateness_us.map(|l| l.p99),
            send_errors,
            p99_us: row.p99_us,
            sender_cpu_percent: row.sender_cpu_percent,
            receiver_cpu_percent: row.receiver_cpu_percent,
            busiest_receiver_cpu_percent: r
                .receivers
                .iter()
                .filter_map(|x| x.cpu.map(|c| c.percent_of_core))
                .reduce(f64::max),
            attempts: 1,
            load_average: r.machine.load_average_before.map(|l| l[0]),
            link_rate: r.setup.link_rate.clone(),
            shaper_drops: r.link.as_ref().and_then(|l| l.shaper_drops),
            link_utilization: r.link.as_ref().and_then(|l| l.utilization),
            wire_bytes_per_entity_update: r.sender.wire_bytes_per_entity_update,
            wire_bytes_per_entity_update_ip: r.sender.wire_bytes_per_entity_update_ip,
        };
        p.ok = p.passes();
        let busy_polls = r.setup.receive_mode == ReceiveMode::BusyPoll.name();
        p.limits = limits(&p, r.setup.rate_hz, busy_polls);
        p
    }
}

/// Runs `once` until it passes, at most `attempts` times; the last probe,
/// with the number of runs it took. `None` as soon as `once` gives up.
pub fn with_retries(attempts: u32, mut once: impl FnMut() -> Option<Probe>) -> Option<Probe> {
    let mut last = None;
    for n in 1..=attempts.max(1) {
        let mut p = once()?;
        p.attempts = n;
        let ok = p.ok;
        last = Some(p);
        if ok {
            break;
        }
    }
    last
}

impl Probe {
    /// The pass condition ([`Probe::ok`]) over this probe's figures: zero
    /// loss, strictly (every receiver got every packet sent, nothing
    /// dropped at a socket or the shaper, no send refused), and the rate
    /// kept ([`Probe::kept_rate`]).
    pub fn passes(&self) -> bool {
        self.lost == 0
            && self.unseen == 0
            && self.socket_drops == 0
            && self.send_errors == 0
            && self.shaper_drops.unwrap_or(0) == 0
            && self.kept_rate()
    }

    /// True when the broadcaster kept the rate by this probe's rule: on a
    /// shaped link no tick skipped, otherwise at most [`MAX_SKIPPED_SHARE`].
    pub fn kept_rate(&self) -> bool {
        if self.link_rate.is_some() {
            self.ticks_skipped == 0
        } else {
            kept_rate(self.ticks_sent, self.ticks_skipped)
        }
    }
}

/// True when at most [`MAX_SKIPPED_SHARE`] of the ticks were skipped.
fn kept_rate(sent: u64, skipped: u64) -> bool {
    skipped as f64 <= (sent + skipped) as f64 * MAX_SKIPPED_SHARE
}

/// What the max-entities search found.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Search {
    /// The most entities that passed, if any did.
    pub answer: Option<u32>,
    /// The fewest entities that failed above the answer, if any did.
    pub failed_at: Option<u32>,
    /// Every probe, in the order made.
    pub probes: Vec<Probe>,
    /// True if the search was cut short (probe budget, or stopped) before
    /// the bracket was narrow enough.
    pub cut_short: bool,
}

impl Search {
    /// The (last) probe at [`Search::answer`], which passed; `None` if
    /// nothing did.
    pub fn at_answer(&self) -> Option<&Probe> {
        let n = self.answer?;
        self.probes.iter().rev().find(|p| p.entities == n && p.ok)
    }

    /// What ran out at [`Search::failed_at`]: the limits of its (last)
    /// probe; empty if nothing failed.
    pub fn limited_by(&self) -> &[Limit] {
        self.failed_at
            .and_then(|n| self.probes.iter().rev().find(|p| p.entities == n))
            .map_or(&[], |p| &p.limits)
    }
}

/// Searches for the largest count in `1..=cap` that passes `probe`: doubling
/// (or halving, if `start` fails) until the result changes, then bisecting
/// until the bracket is within `resolution` of its bottom. At most
/// `max_probes` probes; `probe` returning `None` stops the search.
///
/// It assumes that more entities never make it easier; a machine's noise can
/// break that, so every probe is kept for the reader to judge.
pub fn find_max(
    start: u32,
    cap: u32,
    max_probes: usize,
    resolution: f64,
    mut probe: impl FnMut(u32) -> Option<Probe>,
) -> Search {
    let cap = cap.max(1);
    let mut s = Search {
        answer: None,
        failed_at: None,
        probes: Vec::new(),
        cut_short: false,
    };
    let mut try_n = |n: u32, s: &mut Search| -> Option<bool> {
        if s.probes.len() >= max_probes {
            s.cut_short = true;
            return None;
        }
        let Some(p) = probe(n) else {
            s.cut_short = true;
            return None;
        };
        let ok = p.ok;
        s.probes.push(p);
        if ok {
            s.answer = s.answer.max(Some(n));
        } else {
            s.failed_at = Some(s.failed_at.map_or(n, |f| f.min(n)));
        }
        Some(ok)
    };
    // Bracket: lo passes (or 0), hi fails (or cap + 1).
    let mut n = start.clamp(1, cap);
    let (mut lo, mut hi) = (0u64, u64::from(cap) + 1);
    let Some(first) = try_n(n, &mut s) else {
        return s;
    };
    if first {
        lo = u64::from(n);
        while hi > u64::from(cap) && u64::from(n) < u64::from(cap) {
            n = n.saturating_mul(2).min(cap);
            match try_n(n, &mut s) {
                None => return s,
                Some(true) => lo = u64::from(n),
                Some(false) => hi = u64::from(n),
            }
        }
    } else {
        hi = u64::from(n);
        while lo == 0 && n > 1 {
            n /= 2;
            match try_n(n, &mut s) {
                None => return s,
                Some(true) => lo = u64::from(n),
                Some(false) => hi = u64::from(n),
            }
        }
    }
    // Bisect while the bracket is wider than the resolution.
    while lo > 0 && hi <= u64::from(cap) && (hi - lo) as f64 > (lo as f64 * resolution).max(1.0) {
        let mid = lo + (hi - lo) / 2;
        match try_n(mid as u32, &mut s) {
            None => return s,
            Some(true) => lo = mid,
            Some(false) => hi = mid,
        }
    }
    s
}

/// The largest entity count the wire can carry in one tick at `payload_budget`.
pub fn entity_cap(payload_budget: usize) -> u32 {
    let per_part = wire::entities_per_part(payload_budget).unwrap_or(1) as u64;
    (per_part * u64::from(u16::MAX)).min(u64::from(u32::MAX)) as u32
}

/// Runs [`find_max`] with real benchmark probes of `base` (its receivers,
/// rate, duration, mode), starting at `start` entities. `progress` is called
/// every second of each probe, `done` after each.
pub fn find_max_entities(
    base: &BenchConfig,
    start: u32,
    mut progress: impl FnMut(u32, &Progress) -> ControlFlow<()>,
    mut done: impl FnMut(&Probe) -> ControlFlow<()>,
) -> Result<Search, BenchError> {
    base.validate()?;
    let mut error = None;
    let search = find_max(
        start,
        entity_cap(base.payload_budget),
        MAX_PROBES,
        RESOLUTION,
        |n| {
            let config = BenchConfig {
                entities: n,
                ..base.clone()
            };
            let p = with_retries(PROBE_ATTEMPTS, || {
                match super::run(&config, |p| progress(n, p)) {
                    Ok(r) if r.interrupted => None,
                    Ok(r) => Some(Probe::of(&r)),
                    Err(e) => {
                        error = Some(e);
                        None
                    }
                }
            })?;
            done(&p).is_continue().then_some(p)
        },
    );
    match error {
        Some(e) => Err(e),
        None => Ok(search),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search_with_limit(limit: u32, start: u32, cap: u32) -> Search {
        find_max(start, cap, MAX_PROBES, RESOLUTION, |n| {
            Some(Probe::verdict(n, n <= limit))
        })
    }

    #[test]
    fn search_brackets_the_limit_within_the_resolution() {
        for limit in [1, 7, 999, 10_000, 123_456, 1_000_000] {
            let s = search_with_limit(limit, 10_000, 5_000_000);
            let answer = s.answer.expect("something passes");
            assert!(
                answer <= limit,
                "{limit}: answer {answer} is above the limit"
            );
            assert!(
                (limit - answer) as f64 <= (answer as f64 * RESOLUTION).max(1.0),
                "{limit}: answer {answer} not within the resolution: {:?}",
                s.probes
            );
            assert!(s.probes.len() <= MAX_PROBES);
            assert!(!s.cut_short, "{limit}: {:?}", s.probes);
        }
    }

    #[test]
    fn search_stops_at_the_cap_and_when_nothing_passes() {
        let s = search_with_limit(u32::MAX, 10_000, 50_000);
        assert_eq!(s.answer, Some(50_000));
        assert_eq!(s.failed_at, None);
        let s = search_with_limit(0, 10_000, 50_000);
        assert_eq!(s.answer, None);
        assert_eq!(s.failed_at, Some(1));
        assert!(s.probes.len() <= MAX_PROBES);
    }

    #[test]
    fn search_is_bounded_and_stops_when_the_probe_says_so() {
        let s = find_max(10, 1 << 30, 5, 0.0, |n| {
            Some(Probe::verdict(n, n < 1_000_000))
        });
        assert_eq!(s.probes.len(), 5);
        assert!(s.cut_short);
        let mut calls = 0;
        let s = find_max(10, 1 << 30, 16, 0.02, |n| {
            calls += 1;
            (calls < 3).then(|| Probe::verdict(n, true))
        });
        assert_eq!(s.probes.len(), 2);
        assert!(s.cut_short);
        assert_eq!(s.answer, Some(20));
    }

    #[test]
    fn a_probe_tolerates_a_few_skipped_ticks_in_a_hundred() {
        assert!(kept_rate(120, 0));
        assert!(kept_rate(114, 6));
        assert!(!kept_rate(110, 10));
        assert!(!kept_rate(0, 1));
        assert!(kept_rate(0, 0));
    }

    #[test]
    fn a_failed_probe_is_run_once_more_and_a_pass_is_not() {
        let mut runs = 0;
        let p = with_retries(2, || {
            runs += 1;
            Some(Probe::verdict(5, runs == 2))
        })
        .unwrap();
        assert!(p.ok);
        assert_eq!((p.attempts, runs), (2, 2));
        let mut runs = 0;
        let p = with_retries(2, || {
            runs += 1;
            Some(Probe::verdict(5, true))
        })
        .unwrap();
        assert_eq!((p.attempts, runs), (1, 1));
        let p = with_retries(2, || Some(Probe::verdict(5, false))).unwrap();
        assert!(!p.ok);
        assert_eq!(p.attempts, 2);
        assert!(with_retries(2, || None).is_none());
    }

    /// A failed probe at 60 Hz with these figures.
    fn failed(f: impl FnOnce(&mut Probe)) -> Probe {
        let mut p = Probe::verdict(50_000, false);
        (p.ticks_sent, p.lateness_p99_us) = (120, Some(40.0));
        p.busiest_receiver_cpu_percent = Some(30.0);
        f(&mut p);
        p
    }

    /// Regression (issue 10): the search reported a receiver capacity when
    /// the sender's CPU was the limit. Each failed probe now says what ran
    /// out, from its own figures.
    #[test]
    fn a_failed_probe_says_what_ran_out() {
        let at = |p: &Probe| limits(p, 60.0, false);
        // The sender skipped a tick in five: its CPU, not the receivers'.
        let p = failed(|p| (p.ticks_sent, p.ticks_skipped) = (96, 24));
        assert_eq!(at(&p), [Limit::SenderCpu]);
        // Or kept every tick but sent them more than a period (16.7 ms) late.
        assert_eq!(
            at(&failed(|p| p.lateness_p99_us = Some(25_000.0))),
            [Limit::SenderCpu]
        );
        // Socket overflow at a receiver working flat out: its CPU.
        let p = failed(|p| {
            (p.lost, p.socket_drops) = (500, 500);
            p.busiest_receiver_cpu_percent = Some(97.0);
        });
        assert_eq!(at(&p), [Limit::ReceiverCpu]);
        // The same at a busy-polling receiver, whose CPU is always 100 %:
        // what overflowed is the socket.
        assert_eq!(limits(&p, 60.0, true), [Limit::SocketDrops]);
        // Overflow at a receiver with CPU to spare: the socket buffer.
        assert_eq!(
            at(&failed(|p| (p.lost, p.socket_drops) = (40, 40))),
            [Limit::SocketDrops]
        );
        // Loss that no socket saw, the sender keeping the rate: the link.
        assert_eq!(at(&failed(|p| p.lost = 7)), [Limit::Link]);
        // Loss explained by failed sends is the sender's, not the link's.
        assert_eq!(
            at(&failed(|p| (p.lost, p.send_errors) = (7, 7))),
            [Limit::SendErrors]
        );
        // Several at once, upstream first.
        let p = failed(|p| {
            (p.ticks_sent, p.ticks_skipped) = (90, 30);
            (p.lost, p.socket_drops) = (9, 9);
        });
        assert_eq!(at(&p), [Limit::SenderCpu, Limit::SocketDrops]);
        // A passing probe names nothing, however late or busy.
        let mut ok = failed(|p| p.busiest_receiver_cpu_percent = Some(99.0));
        ok.ok = true;
        assert!(at(&ok).is_empty());
        assert_eq!(
            serde_json::to_value(Limit::SenderCpu).unwrap(),
            "sender_cpu"
        );
    }

    /// A probe on a 1gbit link whose figures are all clean.
    fn shaped() -> Probe {
        let mut p = Probe::verdict(100_000, true);
        (p.ticks_sent, p.lateness_p99_us) = (120, Some(40.0));
        (p.sender_cpu_percent, p.busiest_receiver_cpu_percent) = (Some(40.0), Some(30.0));
        p.link_rate = Some("1gbit".into());
        p.shaper_drops = Some(0);
        p.link_utilization = Some(0.7);
        p
    }

    #[test]
    fn a_probe_on_a_shaped_link_may_skip_no_tick() {
        assert!(shaped().passes());
        let mut p = shaped();
        (p.ticks_sent, p.ticks_skipped) = (119, 1);
        assert!(!p.kept_rate() && !p.passes());
        // The same tick skipped on a link not shaped is within the share.
        (p.link_rate, p.shaper_drops) = (None, None);
        assert!(p.kept_rate() && p.passes());
    }

    /// Zero loss is strict: the receivers must have every packet sent,
    /// and a drop at the shaper fails the probe even if nobody counted it.
    #[test]
    fn a_probe_passes_only_if_every_packet_sent_arrived() {
        for spoil in [
            (|p: &mut Probe| p.lost = 1) as fn(&mut Probe),
            |p| p.unseen = 1,
            |p| p.socket_drops = 1,
            |p| p.send_errors = 1,
            |p| p.shaper_drops = Some(1),
        ] {
            let mut p = shaped();
            spoil(&mut p);
            assert!(!p.passes(), "{p:?}");
        }
        // A shaper whose counts could not be read drops nothing we know of.
        let mut p = shaped();
        p.shaper_drops = None;
        assert!(p.passes());
    }

    #[test]
    fn a_full_shaped_link_is_named_as_the_limit() {
        let at = |p: &Probe| limits(p, 60.0, false);
        let fail = |f: fn(&mut Probe)| {
            let mut p = shaped();
            f(&mut p);
            p.ok = p.passes();
            p
        };
        // The sender waited on the link: ticks skipped, the link full.
        let p = fail(|p| {
            (p.ticks_sent, p.ticks_skipped) = (90, 30);
            p.link_utilization = Some(0.98);
        });
        assert_eq!(at(&p), [Limit::LinkRate]);
        // Full, and the sender flat out as well: both ran out.
        let p = fail(|p| {
            (p.ticks_sent, p.ticks_skipped) = (90, 30);
            (p.link_utilization, p.sender_cpu_percent) = (Some(0.97), Some(99.0));
        });
        assert_eq!(at(&p), [Limit::SenderCpu, Limit::LinkRate]);
        // The link only 70 % full and the thread with CPU to spare: the
        // sender stalled (a send blocked on a burst, the kernel's
        // forwarding starved), which is not the thread's capacity.
        let p = fail(|p| (p.ticks_sent, p.ticks_skipped) = (90, 30));
        assert!(p
            .sender_cpu_percent
            .is_some_and(|c| c < SENDER_BUSY_PERCENT));
        assert_eq!(at(&p), [Limit::SenderStalled]);
        assert_eq!(
            serde_json::to_value(Limit::SenderStalled).unwrap(),
            "sender_stalled"
        );
        // Its CPU unmeasured: named as the sender's CPU, as before.
        let p = fail(|p| {
            (p.ticks_sent, p.ticks_skipped) = (90, 30);
            p.sender_cpu_percent = None;
        });
        assert_eq!(at(&p), [Limit::SenderCpu]);
        // The shaper dropped what the receivers lost: the link rate, not
        // the unexplained loss of `Link`.
        let p = fail(|p| (p.lost, p.shaper_drops) = (12, Some(12)));
        assert_eq!(at(&p), [Limit::LinkRate]);
        // Packets never seen at the end, nothing dropped anywhere known.
        let p = fail(|p| p.unseen = 3);
        assert_eq!(at(&p), [Limit::Link]);
        assert_eq!(serde_json::to_value(Limit::LinkRate).unwrap(), "link_rate");
    }

    #[test]
    fn the_search_says_what_ran_out_where_it_failed() {
        let mut s = search_with_limit(20_000, 10_000, 1_000_000);
        let at = s.failed_at.expect("something above 20000 failed");
        // Another failed probe ran out of something else: only the probes
        // where the search stopped say what limited it.
        let other = s.probes.iter().position(|p| !p.ok && p.entities != at);
        let other = other.expect("a second failed probe");
        s.probes[other].limits = vec![Limit::Link];
        for p in s.probes.iter_mut().filter(|p| p.entities == at) {
            p.limits = vec![Limit::SenderCpu];
        }
        assert_eq!(s.limited_by(), [Limit::SenderCpu]);
        assert!(search_with_limit(u32::MAX, 10, 100).limited_by().is_empty());
    }
}
