//! What a benchmark run measured, as plain serializable data
//! ([`BenchReport`]), and how it is computed from what the run collected:
//! rates over the configured duration, CPU shares, the bytes on the wire
//! per entity update, the total row (counters added, latency histograms
//! merged), the latency percentile curve and the loss in each second.
//!
//! The report's keys only grow within JSON schema 1
//! ([`crate::core::schema`]): a key added here is one a reader of an older
//! report does not find, so it reads the report as before.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;

use super::lan::shaper::{self, LinkRate, ShaperCounts};
use super::relay::ConditionerCheck;
use super::{usage, BenchConfig, LanMode};
use crate::core::conditioner::ConditionerConfig;
use crate::core::cores::CoreWarning;
use crate::core::figures::{Figures, Summary};
use crate::core::histogram::LatencySummary;
use crate::runtime::broadcaster::BroadcastSummary;
use crate::runtime::receiver::Activity;
use crate::runtime::relay::ImpairFigures;

/// Percentile plot resolution: points per decade of `1 / (1 − q)`.
const POINTS_PER_DECADE: u32 = 50;

/// Bytes of the IPv4 header (20, no options) and the UDP header (8) in
/// front of every datagram's payload: what
/// [`SenderResult::wire_bytes_per_entity_update_ip`] adds per datagram.
pub const IPV4_UDP_HEADER_BYTES: u64 = 28;

/// What Ethernet adds to every frame on a real wire, beyond the IP
/// packet: preamble and start delimiter (8), header (14), FCS (4) and
/// the inter-frame gap (12). No figure of the report includes it; add it
/// per datagram for what a real Ethernet link carries.
pub const ETHERNET_FRAME_OVERHEAD_BYTES: u64 = 38;

/// CPU time used, and as a share of the run.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Cpu {
    /// Seconds on a CPU.
    pub seconds: f64,
    /// `seconds / duration × 100`: percent of one core.
    pub percent_of_core: f64,
}

impl Cpu {
    fn of(used: Duration, run: Duration) -> Cpu {
        let seconds = used.as_secs_f64();
        Cpu {
            seconds,
            percent_of_core: seconds / run.as_secs_f64().max(1e-9) * 100.0,
        }
    }
}

/// The configuration as it ran, for the report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Setup {
    /// Receivers.
    pub receivers: usize,
    /// Entities.
    pub entities: u32,
    /// Ticks per second.
    pub rate_hz: f64,
    /// Broadcast duration, s.
    pub duration_s: f64,
    /// Payload budget, bytes.
    pub payload_budget: usize,
    /// Seed.
    pub seed: u64,
    /// The simulated world: `"linear"` or `"players"`
    /// ([`WorldKind`](crate::core::sim::WorldKind)). Added within schema 1:
    /// a report written before it has no such key, and was of the linear
    /// world.
    pub world: &'static str,
    /// Warm-up before the first tick, s.
    pub warmup_s: f64,
    /// Always false: no sample is left out (the warm-up sends nothing).
    pub warmup_excluded: bool,
    /// `"in-process"`, `"processes"`, `"lan-unicast"` or `"lan-multicast"`.
    pub mode: &'static str,
    /// How the receiver threads waited: wait, predict or busy-poll.
    pub receive_mode: &'static str,
    /// How the broadcaster was asked to send: sendto, sendmmsg or gso (what
    /// it used is `sender.figures.send_path`).
    pub send_path: &'static str,
    /// The link conditioner in front of each receiver, as a spec string
    /// (receiver `i`'s seed is this seed + `i`), if any.
    pub impair: Option<String>,
    /// The SCHED_FIFO priority of the receiver threads, if they ran
    /// real-time (with the memory locked); the broadcaster's is
    /// `sender_realtime_priority`.
    pub realtime_priority: Option<u8>,
    /// The broadcaster thread's SCHED_FIFO priority: one above the
    /// receivers' (see [`BenchConfig::realtime`]).
    pub sender_realtime_priority: Option<u8>,
    /// The CPU the broadcaster thread was pinned to, if any.
    pub sender_cpu: Option<usize>,
    /// The CPUs the receivers were pinned to, in turn (empty: none).
    pub receiver_cpus: Vec<usize>,
    /// The rate the broadcaster's link was shaped to (`1gbit`), if it was
    /// ([`BenchConfig::link_rate`]); the shaper's counts are
    /// [`BenchReport::link`].
    pub link_rate: Option<String>,
}

/// The broadcaster's results.
#[derive(Clone, Debug, Serialize)]
pub struct SenderResult {
    /// Its figures, lateness percentiles included.
    pub figures: BroadcastSummary,
    /// Datagrams sent per second (every destination counted).
    pub datagrams_per_s: f64,
    /// UDP payload bytes sent per second.
    pub bytes_per_s: f64,
    /// Entity records put on the wire per second (every destination counted).
    pub entity_updates_per_s: f64,
    /// CPU time of its thread.
    pub cpu: Option<Cpu>,
    /// System calls per datagram handed to the OS: `send_syscalls /
    /// (datagrams_sent + send_errors)` (1 with `sendto`; 0 if none was sent).
    pub syscalls_per_datagram: f64,
    /// Its thread's CPU time per 1,000 entity records put on the wire
    /// (every destination counted), in µs: what an update costs to send,
    /// simulation, encoding and system calls included.
    pub cpu_us_per_1000_updates: Option<f64>,
    /// Copies of the stream it sent: one per unicast target (each
    /// receiver, or the relay in front of it), one for a multicast group
    /// (the network copies that one). A bench's targets are all fixed
    /// (nobody subscribes), so every copy is the same datagrams, and one
    /// copy is what its counters over all targets say divided by this.
    pub stream_copies: u64,
    /// UDP payload bytes of one copy: `bytes_sent / stream_copies`. The
    /// OS's accepted sends only: a datagram it refused is in no copy.
    pub bytes_per_copy: f64,
    /// Datagrams of one copy: `datagrams_sent / stream_copies`.
    pub datagrams_per_copy: f64,
    /// Entity updates one copy carried: `entities × ticks_sent`. Each tick
    /// sent brings a receiver up to date on every entity, however the
    /// encoding does it, so this does not depend on the encoding.
    pub entity_updates_per_copy: u64,
    /// UDP payload bytes on the wire per entity update:
    /// `bytes_per_copy / entity_updates_per_copy`. Everything the stream
    /// carried counts, not only the entity records: snapshot headers, the
    /// last datagram of a tick that is not full, sender reports, the
    /// goodbye. Version 1's 16-byte records in 1200-byte datagrams come to
    /// about 16.8. `null` when no tick was sent.
    pub wire_bytes_per_entity_update: Option<f64>,
    /// The same with each datagram's IPv4 and UDP headers
    /// ([`IPV4_UDP_HEADER_BYTES`]): `(bytes_per_copy + 28 ×
    /// datagrams_per_copy) / entity_updates_per_copy`: what an IP link
    /// carries. On a real Ethernet wire each datagram costs
    /// [`ETHERNET_FRAME_OVERHEAD_BYTES`] (38) more: preamble, header, FCS
    /// and gap. `null` when no tick was sent.
    pub wire_bytes_per_entity_update_ip: Option<f64>,
}

/// One copy of a stream: its bytes and datagrams, the entity updates it
/// carried, and the bytes per update, payload only and with IP headers
/// (the definitions are [`SenderResult`]'s fields of the same names).
#[derive(Clone, Copy, Debug, PartialEq)]
struct StreamCopy {
    bytes: f64,
    datagrams: f64,
    updates: u64,
    per_update: Option<f64>,
    per_update_ip: Option<f64>,
}

impl StreamCopy {
    /// One of `copies` identical copies whose datagrams add up to
    /// `datagrams` and `bytes`, carrying `ticks` ticks of `entities`.
    fn of(bytes: u64, datagrams: u64, copies: u64, entities: u32, ticks: u64) -> StreamCopy {
        let copies = copies.max(1) as f64;
        let bytes = bytes as f64 / copies;
        let datagrams = datagrams as f64 / copies;
        let updates = u64::from(entities) * ticks;
        let per = |b: f64| (updates > 0).then(|| b / updates as f64);
        StreamCopy {
            bytes,
            datagrams,
            updates,
            per_update: per(bytes),
            per_update_ip: per(bytes + datagrams * IPV4_UDP_HEADER_BYTES as f64),
        }
    }
}

/// The shaped link of a run with [`BenchConfig::link_rate`]
/// ([`super::lan::shaper`]), and what its shaper counted.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LinkResult {
    /// The rate, as tc writes it: `1gbit`, `50mbit`.
    pub rate: String,
    /// The rate in bits per second.
    pub rate_bit_per_s: u64,
    /// The interface shaped: the broadcaster host's `eth0`, in its namespace.
    pub device: &'static str,
    /// The `tc` command that shaped it, as run.
    pub tc: String,
    /// The shaper's token bucket, bytes.
    pub burst_bytes: u64,
    /// Longest a packet may wait in the shaper's queue, µs; one that would
    /// wait longer is dropped.
    pub max_queue_delay_us: f64,
    /// Packets the shaper dropped, its queue full (`tc -s qdisc show`'s
    /// `dropped`), read once the broadcast was over: each is also a
    /// datagram a receiver lost. Every copy counts (unicast sends one per
    /// receiver through it). `null` if its counts could not be read.
    pub shaper_drops: Option<u64>,
    /// Packets the shaper passed on: every datagram of every copy, and the
    /// hosts' own (ARP, IGMP). `null` if not read.
    pub shaper_sent_packets: Option<u64>,
    /// Bytes it passed on, as it charged them against the rate: IP packets
    /// with their 14-byte Ethernet header. `null` if not read.
    pub shaper_sent_bytes: Option<u64>,
    /// Times a packet had to wait for tokens. `null` if not read.
    pub shaper_overlimits: Option<u64>,
    /// How full the link was: `shaper_sent_bytes × 8 / (rate_bit_per_s ×
    /// elapsed_s)`, the bytes as the shaper charged them over the run. Near
    /// 1 the link was the limit; well under 1 with ticks skipped, the
    /// sending host could not fill it. `null` if not read.
    pub utilization: Option<f64>,
}

impl LinkResult {
    /// The link shaped to `rate`, with the shaper's `counts` if read.
    pub(super) fn new(rate: LinkRate, counts: Option<ShaperCounts>) -> LinkResult {
        LinkResult {
            rate: rate.to_string(),
            rate_bit_per_s: rate.bit_per_s(),
            device: shaper::DEVICE,
            tc: format!("tc {}", shaper::tbf_args(shaper::DEVICE, rate).join(" ")),
            burst_bytes: rate.burst_bytes(),
            max_queue_delay_us: shaper::MAX_QUEUE_DELAY.as_secs_f64() * 1e6,
            shaper_drops: counts.map(|c| c.drops),
            shaper_sent_packets: counts.map(|c| c.sent_packets),
            shaper_sent_bytes: counts.map(|c| c.sent_bytes),
            shaper_overlimits: counts.map(|c| c.overlimits),
            utilization: None,
        }
    }

    /// This link with its [`LinkResult::utilization`] over a run of `elapsed`.
    fn over(mut self, elapsed: Duration) -> LinkResult {
        let capacity = self.rate_bit_per_s as f64 * elapsed.as_secs_f64();
        self.utilization = self
            .shaper_sent_bytes
            .filter(|_| capacity > 0.0)
            .map(|b| b as f64 * 8.0 / capacity);
        self
    }
}

/// One receiver's results (or all of them added up, for the total).
#[derive(Clone, Debug, Serialize)]
pub struct ReceiverResult {
    /// `rx0`, `rx1`, … or `total`.
    pub name: String,
    /// Where it listened.
    pub addr: Option<SocketAddr>,
    /// Its child process id, with `processes`.
    pub pid: Option<u32>,
    /// Every figure, as [`Figures::summary`] defines it. For the total:
    /// counters added, jitter averaged, latency over every receiver's
    /// samples, or with `processes` the worst receiver's percentiles.
    pub figures: Summary,
    /// Datagrams received per second.
    pub datagrams_per_s: f64,
    /// Entity records applied per second (`entities_applied / duration`).
    pub entity_updates_per_s: f64,
    /// CPU time of its thread (in-process) or process.
    pub cpu: Option<Cpu>,
    /// System calls its thread made per datagram it took: waits, receives
    /// (`recvmmsg`, up to 32 datagrams each) and sends
    /// ([`Activity::syscalls_per_datagram`]; in-process only).
    pub receiver_syscalls_per_datagram: Option<f64>,
    /// Its CPU time per 1,000 entity records applied, µs: `cpu` over
    /// `entities_applied / 1000`.
    pub receiver_cpu_us_per_1000_updates: Option<f64>,
    /// Bytes of world memory allocated (in-process only).
    pub world_bytes: Option<u64>,
    /// Resident memory of its process at the end (child processes only;
    /// in-process see [`BenchReport::process_memory`]).
    pub rss_bytes: Option<u64>,
    /// Peak resident memory of its process (child processes only).
    pub rss_peak_bytes: Option<u64>,
    /// Loss fraction in each second of the run, the last entry covering the
    /// rest to the end (in-process only).
    pub loss_per_second: Vec<f64>,
    /// With a link conditioner: its counts, and these figures held against
    /// what it says they must be.
    pub conditioner: Option<ConditionerCheck>,
}

/// One point of the latency percentile curve.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct PercentilePoint {
    /// The quantile, in [0, 1].
    pub quantile: f64,
    /// Latency from send time at that quantile, µs.
    pub send_us: f64,
    /// Latency from scheduled time at that quantile, µs.
    pub scheduled_us: f64,
}

/// The machine the run shared, for reading its figures.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Machine {
    /// CPUs available to this process.
    pub cpus: usize,
    /// Load average (1, 5, 15 min) just before the run: other work on the
    /// machine competes with the broadcaster and receivers for the CPUs.
    pub load_average_before: Option<[f64; 3]>,
}

impl Machine {
    /// This machine now: the CPUs this process may use
    /// ([`std::thread::available_parallelism`]: its affinity mask and CPU
    /// quota) and the load average.
    pub fn now() -> Machine {
        Machine {
            cpus: crate::runtime::realtime::cores_available(),
            load_average_before: usage::load_average(),
        }
    }
}

/// Everything a benchmark run measured. Plain data.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// What ran.
    pub setup: Setup,
    /// Where it ran.
    pub machine: Machine,
    /// Spinning receivers that leave the broadcaster no core of its own,
    /// or one to share ([`crate::core::cores`]), as said on stderr at the
    /// start; `null` when it had a core to spare.
    pub core_warning: Option<CoreWarning>,
    /// With a link conditioner: true when every receiver's figures equal
    /// what its conditioner says they must be.
    pub conditioner_equal: Option<bool>,
    /// True if it was stopped before its duration.
    pub interrupted: bool,
    /// Time from the first tick to the broadcaster's end, s.
    pub elapsed_s: f64,
    /// The broadcaster.
    pub sender: SenderResult,
    /// Each receiver.
    pub receivers: Vec<ReceiverResult>,
    /// All receivers together.
    pub total: ReceiverResult,
    /// How the total row's latency was formed.
    pub total_latency: &'static str,
    /// Latency percentile curve over every receiver's samples; with
    /// `processes` only p50, p90, p99, p99.9 and max of the worst receiver.
    pub latency_percentiles: Vec<PercentilePoint>,
    /// Resident memory of this process (broadcaster and, in-process, every
    /// receiver) at the end.
    pub process_memory: Option<usage::Memory>,
    /// With a link rate: the shaped link and what its shaper passed and
    /// dropped; `null` without one.
    pub link: Option<LinkResult>,
    /// How CPU time was measured.
    pub cpu_method: &'static str,
}

/// What the run learnt of one receiver at its end.
pub(super) struct ReceiverEnd {
    pub(super) addr: SocketAddr,
    pub(super) pid: Option<u32>,
    /// The full figures, histograms included (in-process).
    pub(super) figures: Option<Figures>,
    pub(super) summary: Summary,
    pub(super) cpu: Option<Duration>,
    /// What its thread did (in-process).
    pub(super) activity: Option<Activity>,
    pub(super) world_bytes: Option<u64>,
    pub(super) memory: Option<usage::Memory>,
}

/// CPU µs per 1,000 entity updates; `None` without a CPU time or updates.
fn cpu_per_1000(cpu: Option<Duration>, updates: u64) -> Option<f64> {
    let cpu = cpu?;
    (updates > 0).then(|| cpu.as_secs_f64() * 1e6 / (updates as f64 / 1000.0))
}

/// What the broadcast phase yields.
pub(super) struct Phase {
    pub(super) figures: BroadcastSummary,
    pub(super) sender_cpu: Option<Duration>,
    pub(super) elapsed: Duration,
    pub(super) interrupted: bool,
    /// Each receiver's loss in each whole second (in-process).
    pub(super) loss_per_second: Vec<Vec<f64>>,
    /// Each receiver's figures at the last whole second (in-process).
    pub(super) last: Vec<Figures>,
}

pub(super) fn assemble(
    config: &BenchConfig,
    machine: Machine,
    phase: Phase,
    ends: Vec<ReceiverEnd>,
    relayed: Option<Vec<(ImpairFigures, ConditionerConfig)>>,
    link: Option<LinkResult>,
) -> BenchReport {
    let run = if phase.interrupted {
        phase.elapsed.min(config.duration)
    } else {
        config.duration
    };
    let secs = run.as_secs_f64().max(1e-9);
    let sender_summary = phase.figures;
    // Every tick carries every entity, to every receiver.
    let entities_on_wire =
        u64::from(config.entities) * sender_summary.ticks_sent * ends.len() as u64;
    let handed = sender_summary.datagrams_sent + sender_summary.send_errors;
    // Every receiver (or its relay) is a unicast target, but a group is one.
    let copies = match config.lan {
        Some(LanMode::Multicast) => 1,
        _ => config.receivers as u64,
    };
    let copy = StreamCopy::of(
        sender_summary.bytes_sent,
        sender_summary.datagrams_sent,
        copies,
        config.entities,
        sender_summary.ticks_sent,
    );
    let sender = SenderResult {
        datagrams_per_s: sender_summary.datagrams_sent as f64 / secs,
        bytes_per_s: sender_summary.bytes_sent as f64 / secs,
        entity_updates_per_s: entities_on_wire as f64 / secs,
        cpu: phase.sender_cpu.map(|c| Cpu::of(c, run)),
        syscalls_per_datagram: match handed {
            0 => 0.0,
            n => sender_summary.send_syscalls as f64 / n as f64,
        },
        cpu_us_per_1000_updates: phase
            .sender_cpu
            .filter(|_| entities_on_wire > 0)
            .map(|c| c.as_secs_f64() * 1e6 / (entities_on_wire as f64 / 1000.0)),
        stream_copies: copies,
        bytes_per_copy: copy.bytes,
        datagrams_per_copy: copy.datagrams,
        entity_updates_per_copy: copy.updates,
        wire_bytes_per_entity_update: copy.per_update,
        wire_bytes_per_entity_update_ip: copy.per_update_ip,
        figures: sender_summary,
    };
    let mut receivers = Vec::with_capacity(ends.len());
    for (i, e) in ends.iter().enumerate() {
        let loss_per_second = match &e.figures {
            Some(fin) => loss_timeline(&phase.loss_per_second[i], &phase.last[i], fin),
            None => Vec::new(),
        };
        receivers.push(ReceiverResult {
            name: format!("rx{i}"),
            addr: Some(e.addr),
            pid: e.pid,
            datagrams_per_s: e.summary.counters.datagrams as f64 / secs,
            entity_updates_per_s: e.summary.counters.entities_applied as f64 / secs,
            cpu: e.cpu.map(|c| Cpu::of(c, run)),
            receiver_syscalls_per_datagram: e.activity.and_then(|a| a.syscalls_per_datagram()),
            receiver_cpu_us_per_1000_updates: cpu_per_1000(
                e.cpu,
                e.summary.counters.entities_applied,
            ),
            world_bytes: e.world_bytes,
            rss_bytes: e.memory.map(|m| m.rss),
            rss_peak_bytes: e.memory.map(|m| m.peak),
            conditioner: relayed
                .as_ref()
                .and_then(|r| r.get(i))
                .map(|(f, c)| ConditionerCheck::of(f, c, &e.summary)),
            figures: e.summary.clone(),
            loss_per_second,
        });
    }
    let full: Option<Vec<&Figures>> = ends.iter().map(|e| e.figures.as_ref()).collect();
    let (total_figures, total_latency, latency_percentiles) = match &full {
        Some(figs) => {
            let merged = merge(figs);
            (
                merged.summary(),
                "every receiver's samples, histograms merged",
                percentile_curve(&merged),
            )
        }
        None => {
            let summaries: Vec<&Summary> = ends.iter().map(|e| &e.summary).collect();
            let t = add_summaries(&summaries);
            let curve = coarse_curve(&t);
            (
                t,
                "worst receiver's percentile (child processes report percentiles only)",
                curve,
            )
        }
    };
    let sum_opt = |f: &dyn Fn(&ReceiverEnd) -> Option<u64>| -> Option<u64> {
        ends.iter().map(f).sum::<Option<u64>>()
    };
    let total_cpu: Option<Duration> = ends.iter().map(|e| e.cpu).sum();
    let total_syscalls: Option<u64> = ends.iter().map(|e| e.activity.map(|a| a.syscalls())).sum();
    let total_taken: Option<u64> = ends.iter().map(|e| e.activity.map(|a| a.datagrams)).sum();
    let total = ReceiverResult {
        name: "total".into(),
        addr: None,
        pid: None,
        datagrams_per_s: total_figures.counters.datagrams as f64 / secs,
        entity_updates_per_s: total_figures.counters.entities_applied as f64 / secs,
        cpu: total_cpu.map(|c| Cpu::of(c, run)),
        receiver_syscalls_per_datagram: match (total_syscalls, total_taken) {
            (Some(s), Some(d)) if d > 0 => Some(s as f64 / d as f64),
            _ => None,
        },
        receiver_cpu_us_per_1000_updates: cpu_per_1000(
            total_cpu,
            total_figures.counters.entities_applied,
        ),
        world_bytes: sum_opt(&|e| e.world_bytes),
        rss_bytes: sum_opt(&|e| e.memory.map(|m| m.rss)),
        rss_peak_bytes: sum_opt(&|e| e.memory.map(|m| m.peak)),
        figures: total_figures,
        loss_per_second: total_timeline(&receivers),
        conditioner: None,
    };
    let conditioner_equal = relayed.as_ref().map(|_| {
        receivers
            .iter()
            .all(|r| r.conditioner.as_ref().is_some_and(|c| c.equal))
    });
    BenchReport {
        setup: Setup {
            receivers: config.receivers,
            entities: config.entities,
            rate_hz: config.rate_hz,
            duration_s: config.duration.as_secs_f64(),
            payload_budget: config.payload_budget,
            seed: config.seed,
            world: config.world.name(),
            warmup_s: config.warmup.as_secs_f64(),
            warmup_excluded: false,
            mode: match config.lan {
                Some(lan) => lan.name(),
                None if config.processes => "processes",
                None => "in-process",
            },
            receive_mode: config.receive_mode.name(),
            send_path: config.send_path.name(),
            impair: config.impair.as_ref().map(|c| c.to_string()),
            realtime_priority: config.realtime.map(|r| r.priority),
            sender_realtime_priority: config.sender_realtime().map(|r| r.priority),
            sender_cpu: config.sender_cpu,
            receiver_cpus: config.receiver_cpus.clone(),
            link_rate: config.link_rate.map(|r| r.to_string()),
        },
        core_warning: config.core_warning(machine.cpus),
        conditioner_equal,
        machine,
        interrupted: phase.interrupted,
        elapsed_s: phase.elapsed.as_secs_f64(),
        sender,
        receivers,
        total,
        total_latency,
        latency_percentiles,
        process_memory: usage::memory(None),
        link: link.map(|l| l.over(phase.elapsed)),
        cpu_method: usage::CPU_METHOD,
    }
}

/// A receiver's loss in each whole second, then from the last whole second
/// (`last`) to its final figures.
fn loss_timeline(whole_seconds: &[f64], last: &Figures, fin: &Figures) -> Vec<f64> {
    let mut out = whole_seconds.to_vec();
    out.push(fin.interval_loss(last));
    out
}

/// The mean of the receivers' per-second loss.
fn total_timeline(receivers: &[ReceiverResult]) -> Vec<f64> {
    let len = receivers
        .iter()
        .map(|r| r.loss_per_second.len())
        .max()
        .unwrap_or(0);
    (0..len)
        .map(|t| {
            let v: Vec<f64> = receivers
                .iter()
                .filter_map(|r| r.loss_per_second.get(t).copied())
                .collect();
            v.iter().sum::<f64>() / v.len().max(1) as f64
        })
        .collect()
}

/// All receivers' figures as one: counters added, histograms merged,
/// jitter averaged, the Count the lowest, the goodbye only if all saw it.
fn merge(figs: &[&Figures]) -> Figures {
    let mut t = Figures::default();
    let mut count: Option<u64> = None;
    for f in figs {
        t.counters.add(&f.counters);
        t.jitter_ns += f.jitter_ns / figs.len() as f64;
        // Same bounds, no auto-resize: adding cannot fail; saturate if it did.
        let _ = t.latency.add(&f.latency);
        let _ = t.latency_scheduled.add(&f.latency_scheduled);
        let _ = t.latency_taken.add(&f.latency_taken);
        let _ = t.rtt.add(&f.rtt);
        count = match (count, f.count) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    t.count = count;
    t.goodbye = !figs.is_empty() && figs.iter().all(|f| f.goodbye);
    // Every receiver here shares the broadcaster's host, or none does.
    t.sender_on_this_host = figs.iter().map(|f| f.sender_on_this_host).min().flatten();
    t.sender_packets_sent = figs.first().and_then(|f| f.sender_packets_sent);
    t.sender_ticks_skipped = figs.first().and_then(|f| f.sender_ticks_skipped);
    t
}

/// Summaries added up when only summaries exist (child processes): counters
/// summed, jitter averaged, each latency percentile the worst receiver's.
/// Figures this function does not know keep their defaults.
fn add_summaries(s: &[&Summary]) -> Summary {
    // Receivers without samples have no percentiles to be worst in.
    let worst = |f: fn(&Summary) -> Option<LatencySummary>| {
        s.iter().filter_map(|x| f(x)).reduce(|a, b| LatencySummary {
            samples: a.samples + b.samples,
            p50: a.p50.max(b.p50),
            p90: a.p90.max(b.p90),
            p99: a.p99.max(b.p99),
            p999: a.p999.max(b.p999),
            max: a.max.max(b.max),
        })
    };
    let mut t = Figures::default().summary();
    for x in s {
        t.counters.add(&x.counters);
    }
    t.loss_ratio = t.counters.loss_ratio();
    t.jitter_us = s.iter().map(|x| x.jitter_us).sum::<f64>() / s.len().max(1) as f64;
    t.latency_us = worst(|x| x.latency_us);
    t.latency_scheduled_us = worst(|x| x.latency_scheduled_us);
    t.latency_taken_us = worst(|x| x.latency_taken_us);
    t.sender_packets_sent = s.first().and_then(|x| x.sender_packets_sent);
    t.sender_ticks_skipped = s.first().and_then(|x| x.sender_ticks_skipped);
    t.goodbye = !s.is_empty() && s.iter().all(|x| x.goodbye);
    t.count = s.iter().filter_map(|x| x.count).min();
    t
}

/// The percentile curve of merged figures: quantiles spaced evenly in
/// `log10(1 / (1 − q))` from 0 up to where samples run out, then the max.
fn percentile_curve(f: &Figures) -> Vec<PercentilePoint> {
    let n = f.latency.len();
    if n == 0 {
        return Vec::new();
    }
    let us = |ns: u64| ns as f64 / 1e3;
    let decades = (n as f64).log10().min(6.0);
    let steps = (decades * f64::from(POINTS_PER_DECADE)) as u32;
    let mut out: Vec<PercentilePoint> = (0..=steps)
        .map(|i| {
            let x = f64::from(i) / f64::from(POINTS_PER_DECADE);
            let q = 1.0 - 10f64.powf(-x);
            PercentilePoint {
                quantile: q,
                send_us: us(f.latency.value_at_quantile(q)),
                scheduled_us: us(f.latency_scheduled.value_at_quantile(q)),
            }
        })
        .collect();
    out.push(PercentilePoint {
        quantile: 1.0,
        send_us: us(f.latency.max()),
        scheduled_us: us(f.latency_scheduled.max()),
    });
    out
}

/// The few points a summary has.
fn coarse_curve(s: &Summary) -> Vec<PercentilePoint> {
    let (Some(a), Some(b)) = (&s.latency_us, &s.latency_scheduled_us) else {
        return Vec::new();
    };
    [
        (0.5, a.p50, b.p50),
        (0.9, a.p90, b.p90),
        (0.99, a.p99, b.p99),
        (0.999, a.p999, b.p999),
        (1.0, a.max, b.max),
    ]
    .into_iter()
    .map(|(quantile, send_us, scheduled_us)| PercentilePoint {
        quantile,
        send_us,
        scheduled_us,
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::figures::Counters;

    fn figures(expected: u64, received: u64, lat_us: &[u64]) -> Figures {
        let mut f = Figures {
            counters: Counters {
                expected,
                received,
                lost: expected - received,
                ..Counters::default()
            },
            goodbye: true,
            count: Some(expected),
            ..Figures::default()
        };
        for us in lat_us {
            f.latency.record(us * 1000).unwrap();
            f.latency_scheduled.record(us * 1000 + 5_000).unwrap();
        }
        f
    }

    #[test]
    fn merged_totals_add_counters_and_pool_samples() {
        let (a, b) = (figures(100, 100, &[10, 20]), figures(50, 40, &[30, 40]));
        let t = merge(&[&a, &b]);
        assert_eq!(
            (t.counters.expected, t.counters.received, t.counters.lost),
            (150, 140, 10)
        );
        assert_eq!(t.counters.received + t.counters.lost, t.counters.expected);
        assert_eq!(t.latency.len(), 4);
        assert_eq!(t.count, Some(50));
        assert!(t.goodbye);
        let s = add_summaries(&[&a.summary(), &b.summary()]);
        assert_eq!(
            (s.counters.expected, s.counters.received, s.counters.lost),
            (150, 140, 10)
        );
        assert!((s.loss_ratio - 10.0 / 150.0).abs() < 1e-12);
        assert!(s.latency_us.unwrap().max >= 39.9, "worst receiver's max");
        // A receiver without samples has no say in the worst percentiles.
        let none = add_summaries(&[&a.summary(), &figures(5, 5, &[]).summary()]);
        assert_eq!(none.latency_us, a.summary().latency_us);
        assert_eq!(
            add_summaries(&[&figures(5, 5, &[]).summary()]).latency_us,
            None
        );
    }

    /// A version 1 stream at the default budget, in its own numbers (so
    /// the test is of the arithmetic, whatever the encoding becomes): 71
    /// records of 16 bytes after a 56-byte snapshot header per datagram.
    #[test]
    fn wire_bytes_per_update_are_one_copys_bytes_over_its_updates() {
        let (header, record, per_part) = (56u64, 16u64, 71u64);
        let (entities, ticks, copies) = (1000u32, 60u64, 3u64);
        let parts = u64::from(entities).div_ceil(per_part);
        let tick_bytes = parts * header + u64::from(entities) * record;
        // Sent to three targets: every counter is three copies' worth.
        let c = StreamCopy::of(
            tick_bytes * ticks * copies,
            parts * ticks * copies,
            copies,
            entities,
            ticks,
        );
        assert_eq!(c.updates, 60_000);
        assert_eq!(c.bytes, (tick_bytes * ticks) as f64);
        assert_eq!(c.datagrams, (parts * ticks) as f64);
        let payload = tick_bytes as f64 / f64::from(entities);
        assert_eq!(c.per_update, Some(payload));
        assert!((16.0..17.0).contains(&payload), "{payload}");
        let ip = (tick_bytes + parts * IPV4_UDP_HEADER_BYTES) as f64 / f64::from(entities);
        assert!((c.per_update_ip.unwrap() - ip).abs() < 1e-9);
        assert!(c.per_update_ip > c.per_update);
        // Nothing sent: no figure, never a division by zero.
        let none = StreamCopy::of(0, 0, 2, entities, 0);
        assert_eq!((none.per_update, none.per_update_ip), (None, None));
        assert_eq!(StreamCopy::of(100, 1, 0, 1, 1).per_update, Some(100.0));
    }

    #[test]
    fn loss_timeline_has_a_point_per_second_and_one_for_the_rest() {
        let last = figures(120, 90, &[]);
        let fin = figures(150, 120, &[]);
        assert_eq!(loss_timeline(&[0.0, 0.5], &last, &fin), vec![0.0, 0.5, 0.0]);
        assert_eq!(loss_timeline(&[], &fin, &figures(160, 120, &[])), vec![1.0]);
    }

    #[test]
    fn percentile_curve_rises_to_the_max() {
        let lat: Vec<u64> = (1..=1000).collect();
        let c = percentile_curve(&figures(1, 1, &lat));
        assert!(c.len() > 100);
        assert!(c
            .windows(2)
            .all(|w| w[0].send_us <= w[1].send_us && w[0].quantile <= w[1].quantile));
        // Within the histograms' resolution: 1 % of the value.
        assert!((c.last().unwrap().send_us - 1000.0).abs() <= 10.0);
        assert!(c.iter().all(|p| p.scheduled_us > p.send_us));
    }
}
