//! The benchmark: one [`Broadcaster`] and K receivers on 127.0.0.1 for a set
//! time, then every figure as plain data ([`BenchReport`]).
//!
//! # What is measured, and how
//!
//! * **Receiver figures** are each receiver's own [`Figures`] after the
//!   goodbye, with the definitions of [`crate::stats`]; the total row adds
//!   the counters and merges the latency histograms (in-process), so its
//!   percentiles are over every sample of every receiver.
//! * **Nothing is excluded.** The warm-up is a pause between starting the
//!   receivers and the first tick (so receiver threads or processes are
//!   waiting in `poll`); every packet of the broadcast counts.
//! * **Latency** from the send time and from the tick's scheduled time
//!   (so a late sender cannot hide latency), p50/p90/p99/p99.9/max, plus
//!   the broadcaster's tick lateness.
//! * **Rates** are over the configured duration: datagrams/s sent and
//!   received, entity updates/s (`entities_applied / duration`).
//! * **CPU time** is per thread in-process (exact, see [`usage`]): the
//!   broadcaster thread and each receiver thread, found by name. With
//!   `processes`, each receiver is a `tickcast receive` child process and
//!   its CPU time is the whole process's, read once it has exited.
//! * **Memory**: each receiver's [`World::allocated_bytes`], and the
//!   resident size (`VmRSS`, `VmHWM`) of this process, or of each child.
//!
//! # Layout
//!
//! [`usage`] reads `/proc`; `child` runs receivers as processes; [`sweep`]
//! runs many points and searches for the most entities without loss;
//! [`render`] makes the human tables; [`plot`] draws the SVG.

pub mod plot;
pub mod render;
pub mod sweep;
pub mod usage;

mod child;

use std::net::{Ipv4Addr, SocketAddr};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::broadcaster::{
    self, BroadcastConfig, BroadcastError, BroadcastFigures, BroadcastSummary, Broadcaster,
};
use crate::receiver::{Receiver, ReceiverConfig, ReceiverError};
use crate::stats::{Figures, LatencySummary, Summary};
use crate::world::World;

/// Name the receiver thread gives itself (set in `receiver.rs`).
pub const RECEIVER_THREAD: &str = "tickcast-receive";
/// Most receivers one bench runs.
pub const MAX_RECEIVERS: usize = 64;
/// Longest run accepted.
pub const MAX_DURATION: Duration = Duration::from_secs(3600);
/// Longest warm-up accepted.
pub const MAX_WARMUP: Duration = Duration::from_secs(60);
/// How long receivers keep listening after the broadcaster ends, so the
/// goodbye and anything in flight are counted.
pub const GRACE: Duration = Duration::from_millis(200);
/// How long before the end of the broadcast the sender's CPU time is
/// sampled every millisecond (its thread is gone once it has finished).
const END_WATCH: Duration = Duration::from_millis(50);
/// How far past its duration a broadcaster may run (a last tick of a huge
/// world) before it is stopped.
const OVERRUN: Duration = Duration::from_secs(30);
/// Percentile plot resolution: points per decade of `1 / (1 − q)`.
const POINTS_PER_DECADE: u32 = 50;

/// What to benchmark. Build it with `..Default::default()`.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchConfig {
    /// Receivers, each a unicast destination on 127.0.0.1 (default 2).
    pub receivers: usize,
    /// Entities in the simulated world (default 1000).
    pub entities: u32,
    /// Ticks per second (default 60).
    pub rate_hz: f64,
    /// How long the broadcaster runs (default 10 s).
    pub duration: Duration,
    /// Largest snapshot datagram, bytes (default [`crate::wire::DEFAULT_PAYLOAD_BUDGET`]).
    pub payload_budget: usize,
    /// Seed of the simulated world (default 1).
    pub seed: u64,
    /// Pause between starting the receivers and the first tick (default
    /// 0.5 s). Not excluded from anything: no tick is sent during it.
    pub warmup: Duration,
    /// Run each receiver as a `tickcast receive` child process (default false).
    pub processes: bool,
    /// The `tickcast` executable for `processes`; `None` means this very
    /// executable ([`std::env::current_exe`]), right for the `tickcast` CLI.
    pub program: Option<PathBuf>,
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            receivers: 2,
            entities: 1000,
            rate_hz: 60.0,
            duration: Duration::from_secs(10),
            payload_budget: crate::wire::DEFAULT_PAYLOAD_BUDGET,
            seed: 1,
            warmup: Duration::from_millis(500),
            processes: false,
            program: None,
        }
    }
}

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// Receivers must be `1..=MAX_RECEIVERS`.
    #[error("receivers must be between 1 and {MAX_RECEIVERS}, not {0}")]
    Receivers(usize),
    /// The duration must be in `(0, MAX_DURATION]`.
    #[error("duration must be more than 0 and at most {} s", MAX_DURATION.as_secs())]
    Duration,
    /// The warm-up must be at most `MAX_WARMUP`.
    #[error("warm-up must be at most {} s", MAX_WARMUP.as_secs())]
    Warmup,
    /// The broadcaster could not start (or its configuration is invalid).
    #[error(transparent)]
    Broadcast(#[from] BroadcastError),
    /// A receiver could not start.
    #[error(transparent)]
    Receiver(#[from] ReceiverError),
    /// A receiver thread failed during the run.
    #[error("receiver {index} failed: {source}")]
    ReceiverFailed {
        /// Which receiver.
        index: usize,
        /// What ended it.
        source: std::io::Error,
    },
    /// A receiver child process failed.
    #[error(transparent)]
    Child(#[from] child::ChildError),
}

impl BenchConfig {
    /// Checks that this configuration can run; the first problem found is returned.
    pub fn validate(&self) -> Result<(), BenchError> {
        if !(1..=MAX_RECEIVERS).contains(&self.receivers) {
            return Err(BenchError::Receivers(self.receivers));
        }
        if self.duration.is_zero() || self.duration > MAX_DURATION {
            return Err(BenchError::Duration);
        }
        if self.warmup > MAX_WARMUP {
            return Err(BenchError::Warmup);
        }
        let placeholder = SocketAddr::from((Ipv4Addr::LOCALHOST, 9));
        self.broadcast_config(vec![placeholder])
            .validate()
            .map_err(|e| BenchError::Broadcast(e.into()))
    }

    fn broadcast_config(&self, destinations: Vec<SocketAddr>) -> BroadcastConfig {
        BroadcastConfig {
            destinations,
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            entities: self.entities,
            rate_hz: self.rate_hz,
            duration: Some(self.duration),
            seed: self.seed,
            payload_budget: self.payload_budget,
            ..BroadcastConfig::default()
        }
    }

    /// World capacity each receiver needs: every id the broadcaster sends.
    fn capacity(&self) -> u32 {
        self.entities.max(1)
    }
}

/// What a running benchmark reports once a second.
#[derive(Debug)]
pub struct Progress<'a> {
    /// Time since the broadcaster started.
    pub elapsed: Duration,
    /// The configured duration.
    pub duration: Duration,
    /// The broadcaster's figures so far.
    pub sender: &'a BroadcastFigures,
    /// Each receiver's figures so far; empty with `processes` (they are in
    /// other processes until they end).
    pub receivers: &'a [Figures],
    /// Each receiver's loss fraction over the last second.
    pub last_second_loss: &'a [f64],
}

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
    /// Warm-up before the first tick, s.
    pub warmup_s: f64,
    /// Always false: no sample is left out (the warm-up sends nothing).
    pub warmup_excluded: bool,
    /// `"in-process"` or `"processes"`.
    pub mode: &'static str,
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

/// Everything a benchmark run measured. Plain data.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// What ran.
    pub setup: Setup,
    /// Where it ran.
    pub machine: Machine,
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
    /// How CPU time was measured.
    pub cpu_method: &'static str,
}

/// Runs one benchmark. `progress` is called about once a second while the
/// broadcaster runs; returning `Break` stops the run early (the report then
/// says `interrupted`).
pub fn run(
    config: &BenchConfig,
    progress: impl FnMut(&Progress) -> ControlFlow<()>,
) -> Result<BenchReport, BenchError> {
    config.validate()?;
    let machine = Machine {
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average_before: usage::load_average(),
    };
    let mut fleet = if config.processes {
        Fleet::Processes(child::Children::spawn(config)?)
    } else {
        Fleet::InProcess(start_local(config)?)
    };
    std::thread::sleep(config.warmup);
    let phase = broadcast(config, &mut fleet, progress)?;
    std::thread::sleep(GRACE);
    let ends = fleet.finish()?;
    Ok(assemble(config, machine, phase, ends))
}

/// An in-process receiver and what is known of its thread.
struct Local {
    receiver: Receiver,
    tid: Option<u32>,
}

enum Fleet {
    InProcess(Vec<Local>),
    Processes(child::Children),
}

/// What the run learnt of one receiver at its end.
struct ReceiverEnd {
    addr: SocketAddr,
    pid: Option<u32>,
    /// The full figures, histograms included (in-process).
    figures: Option<Figures>,
    summary: Summary,
    cpu: Option<Duration>,
    world_bytes: Option<u64>,
    memory: Option<usage::Memory>,
}

fn start_local(config: &BenchConfig) -> Result<Vec<Local>, BenchError> {
    let mut locals = Vec::with_capacity(config.receivers);
    for _ in 0..config.receivers {
        let before = usage::threads_named(RECEIVER_THREAD);
        let receiver = Receiver::start(ReceiverConfig {
            capacity: config.capacity(),
            ..ReceiverConfig::unicast(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        })?;
        let tid = usage::new_thread_named(RECEIVER_THREAD, &before, Duration::from_secs(1));
        locals.push(Local { receiver, tid });
    }
    Ok(locals)
}

impl Fleet {
    fn addrs(&self) -> Vec<SocketAddr> {
        match self {
            Fleet::InProcess(l) => l.iter().map(|l| l.receiver.local_addr()).collect(),
            Fleet::Processes(c) => c.addrs(),
        }
    }

    /// Figures so far (in-process), and a chance for children to be sampled.
    fn live(&mut self) -> Vec<Figures> {
        match self {
            Fleet::InProcess(l) => l.iter().map(|l| l.receiver.figures()).collect(),
            Fleet::Processes(c) => {
                c.sample();
                Vec::new()
            }
        }
    }

    fn finish(self) -> Result<Vec<ReceiverEnd>, BenchError> {
        match self {
            Fleet::InProcess(locals) => {
                // Read what needs the thread alive before stopping it.
                let cpus: Vec<_> = locals
                    .iter()
                    .map(|l| l.tid.and_then(usage::thread_cpu))
                    .collect();
                let mut ends = Vec::with_capacity(locals.len());
                for (index, (l, cpu)) in locals.into_iter().zip(cpus).enumerate() {
                    let addr = l.receiver.local_addr();
                    let world_bytes = Some(world_bytes(l.receiver.world()));
                    let figures = l
                        .receiver
                        .stop()
                        .map_err(|source| BenchError::ReceiverFailed { index, source })?;
                    ends.push(ReceiverEnd {
                        addr,
                        pid: None,
                        summary: figures.summary(),
                        figures: Some(figures),
                        cpu,
                        world_bytes,
                        memory: None,
                    });
                }
                Ok(ends)
            }
            Fleet::Processes(children) => Ok(children
                .finish()?
                .into_iter()
                .map(|c| ReceiverEnd {
                    addr: c.addr,
                    pid: Some(c.pid),
                    figures: None,
                    summary: c.summary,
                    cpu: c.cpu,
                    world_bytes: None,
                    memory: c.memory,
                })
                .collect()),
        }
    }
}

fn world_bytes(w: &World) -> u64 {
    w.allocated_bytes() as u64
}

/// What the broadcast phase yields.
struct Phase {
    figures: BroadcastFigures,
    sender_cpu: Option<Duration>,
    elapsed: Duration,
    interrupted: bool,
    /// Each receiver's figures at each whole second (in-process).
    snapshots: Vec<Vec<Figures>>,
}

fn broadcast(
    config: &BenchConfig,
    fleet: &mut Fleet,
    mut progress: impl FnMut(&Progress) -> ControlFlow<()>,
) -> Result<Phase, BenchError> {
    let before = usage::threads_named(broadcaster::THREAD_NAME);
    let b = Broadcaster::start(config.broadcast_config(fleet.addrs()))?;
    let start = Instant::now();
    let tid = usage::new_thread_named(broadcaster::THREAD_NAME, &before, Duration::from_secs(1));
    let end_watch = config.duration.saturating_sub(END_WATCH);
    let mut next = Duration::from_secs(1);
    let mut sender_cpu = None;
    let mut interrupted = false;
    let mut snapshots: Vec<Vec<Figures>> = Vec::new();
    let mut last = vec![Figures::default(); config.receivers];
    // Bounded: ends at the broadcaster's own end, or OVERRUN past its duration.
    loop {
        let elapsed = start.elapsed();
        if b.is_finished() {
            break;
        }
        if elapsed >= config.duration + OVERRUN {
            interrupted = true;
            break;
        }
        if elapsed >= end_watch {
            // Its thread ends with the broadcast; keep the last reading.
            if let Some(cpu) = tid.and_then(usage::thread_cpu) {
                sender_cpu = Some(cpu);
            }
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        if elapsed >= next {
            let now = fleet.live();
            let loss: Vec<f64> = now
                .iter()
                .zip(&last)
                .map(|(n, l)| n.interval_loss(l))
                .collect();
            let sender = b.figures();
            let flow = progress(&Progress {
                elapsed,
                duration: config.duration,
                sender: &sender,
                receivers: &now,
                last_second_loss: &loss,
            });
            if !now.is_empty() {
                snapshots.push(now.clone());
                last = now;
            }
            if flow.is_break() {
                interrupted = true;
                if let Some(cpu) = tid.and_then(usage::thread_cpu) {
                    sender_cpu = Some(cpu);
                }
                break;
            }
            next += Duration::from_secs(1);
        }
        let wake = next.min(end_watch);
        std::thread::sleep(wake.saturating_sub(start.elapsed()));
    }
    let elapsed = start.elapsed();
    let figures = b.stop();
    Ok(Phase {
        figures,
        sender_cpu,
        elapsed,
        interrupted,
        snapshots,
    })
}

fn assemble(
    config: &BenchConfig,
    machine: Machine,
    phase: Phase,
    ends: Vec<ReceiverEnd>,
) -> BenchReport {
    let run = if phase.interrupted {
        phase.elapsed.min(config.duration)
    } else {
        config.duration
    };
    let secs = run.as_secs_f64().max(1e-9);
    let sender_summary = phase.figures.summary();
    // Every tick carries every entity, to every receiver.
    let entities_on_wire =
        u64::from(config.entities) * sender_summary.ticks_sent * ends.len() as u64;
    let sender = SenderResult {
        datagrams_per_s: sender_summary.datagrams_sent as f64 / secs,
        bytes_per_s: sender_summary.bytes_sent as f64 / secs,
        entity_updates_per_s: entities_on_wire as f64 / secs,
        cpu: phase.sender_cpu.map(|c| Cpu::of(c, run)),
        figures: sender_summary,
    };
    let mut receivers = Vec::with_capacity(ends.len());
    for (i, e) in ends.iter().enumerate() {
        let loss_per_second = match &e.figures {
            Some(fin) => loss_timeline(&phase.snapshots, i, fin),
            None => Vec::new(),
        };
        receivers.push(ReceiverResult {
            name: format!("rx{i}"),
            addr: Some(e.addr),
            pid: e.pid,
            datagrams_per_s: e.summary.datagrams as f64 / secs,
            entity_updates_per_s: e.summary.entities_applied as f64 / secs,
            cpu: e.cpu.map(|c| Cpu::of(c, run)),
            world_bytes: e.world_bytes,
            rss_bytes: e.memory.map(|m| m.rss),
            rss_peak_bytes: e.memory.map(|m| m.peak),
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
    let total = ReceiverResult {
        name: "total".into(),
        addr: None,
        pid: None,
        datagrams_per_s: total_figures.datagrams as f64 / secs,
        entity_updates_per_s: total_figures.entities_applied as f64 / secs,
        cpu: total_cpu.map(|c| Cpu::of(c, run)),
        world_bytes: sum_opt(&|e| e.world_bytes),
        rss_bytes: sum_opt(&|e| e.memory.map(|m| m.rss)),
        rss_peak_bytes: sum_opt(&|e| e.memory.map(|m| m.peak)),
        figures: total_figures,
        loss_per_second: total_timeline(&receivers),
    };
    BenchReport {
        setup: Setup {
            receivers: config.receivers,
            entities: config.entities,
            rate_hz: config.rate_hz,
            duration_s: config.duration.as_secs_f64(),
            payload_budget: config.payload_budget,
            seed: config.seed,
            warmup_s: config.warmup.as_secs_f64(),
            warmup_excluded: false,
            mode: if config.processes {
                "processes"
            } else {
                "in-process"
            },
        },
        machine,
        interrupted: phase.interrupted,
        elapsed_s: phase.elapsed.as_secs_f64(),
        sender,
        receivers,
        total,
        total_latency,
        latency_percentiles,
        process_memory: usage::memory(None),
        cpu_method: usage::CPU_METHOD,
    }
}

/// Loss per second of receiver `i` from whole-second snapshots, the last
/// entry running from the last snapshot to the final figures.
fn loss_timeline(snapshots: &[Vec<Figures>], i: usize, fin: &Figures) -> Vec<f64> {
    let mut prev = Figures::default();
    let mut out = Vec::with_capacity(snapshots.len() + 1);
    for s in snapshots {
        if let Some(f) = s.get(i) {
            out.push(f.interval_loss(&prev));
            prev = f.clone();
        }
    }
    out.push(fin.interval_loss(&prev));
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
        t.expected += f.expected;
        t.received += f.received;
        t.lost += f.lost;
        t.duplicates += f.duplicates;
        t.reordered += f.reordered;
        t.stale += f.stale;
        t.malformed += f.malformed;
        t.restarts += f.restarts;
        t.socket_drops += f.socket_drops;
        t.ticks_applied += f.ticks_applied;
        t.entities_applied += f.entities_applied;
        t.entities_stale += f.entities_stale;
        t.entities_rejected += f.entities_rejected;
        t.datagrams += f.datagrams;
        t.bytes += f.bytes;
        t.control_datagrams += f.control_datagrams;
        t.jitter_ns += f.jitter_ns / figs.len() as f64;
        // Same bounds, no auto-resize: adding cannot fail; saturate if it did.
        let _ = t.latency.add(&f.latency);
        let _ = t.latency_scheduled.add(&f.latency_scheduled);
        let _ = t.rtt.add(&f.rtt);
        t.latency_negative += f.latency_negative;
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
    let sum = |f: fn(&Summary) -> u64| s.iter().map(|x| f(x)).sum::<u64>();
    let worst = |f: fn(&Summary) -> LatencySummary| {
        s.iter()
            .map(|x| f(x))
            .fold(LatencySummary::default(), |a, b| LatencySummary {
                samples: a.samples + b.samples,
                p50: a.p50.max(b.p50),
                p90: a.p90.max(b.p90),
                p99: a.p99.max(b.p99),
                p999: a.p999.max(b.p999),
                max: a.max.max(b.max),
            })
    };
    let mut t = Figures::default().summary();
    t.expected = sum(|x| x.expected);
    t.received = sum(|x| x.received);
    t.lost = sum(|x| x.lost);
    t.loss_ratio = if t.expected == 0 {
        0.0
    } else {
        t.lost as f64 / t.expected as f64
    };
    t.duplicates = sum(|x| x.duplicates);
    t.reordered = sum(|x| x.reordered);
    t.stale = sum(|x| x.stale);
    t.malformed = sum(|x| x.malformed);
    t.restarts = sum(|x| x.restarts);
    t.socket_drops = sum(|x| x.socket_drops);
    t.ticks_applied = sum(|x| x.ticks_applied);
    t.entities_applied = sum(|x| x.entities_applied);
    t.entities_stale = sum(|x| x.entities_stale);
    t.entities_rejected = sum(|x| x.entities_rejected);
    t.datagrams = sum(|x| x.datagrams);
    t.bytes = sum(|x| x.bytes);
    t.jitter_us = s.iter().map(|x| x.jitter_us).sum::<f64>() / s.len().max(1) as f64;
    t.latency_us = worst(|x| x.latency_us);
    t.latency_scheduled_us = worst(|x| x.latency_scheduled_us);
    t.latency_negative = sum(|x| x.latency_negative);
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
    let (a, b) = (&s.latency_us, &s.latency_scheduled_us);
    if a.samples == 0 {
        return Vec::new();
    }
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

    fn figures(expected: u64, received: u64, lat_us: &[u64]) -> Figures {
        let mut f = Figures {
            expected,
            received,
            lost: expected - received,
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
        assert_eq!((t.expected, t.received, t.lost), (150, 140, 10));
        assert_eq!(t.received + t.lost, t.expected);
        assert_eq!(t.latency.len(), 4);
        assert_eq!(t.count, Some(50));
        assert!(t.goodbye);
        let s = add_summaries(&[&a.summary(), &b.summary()]);
        assert_eq!((s.expected, s.received, s.lost), (150, 140, 10));
        assert!((s.loss_ratio - 10.0 / 150.0).abs() < 1e-12);
        assert!(s.latency_us.max >= 39.9, "worst receiver's max");
    }

    #[test]
    fn loss_timeline_has_a_point_per_second_and_one_for_the_rest() {
        let snaps = vec![vec![figures(60, 60, &[])], vec![figures(120, 90, &[])]];
        let fin = figures(150, 120, &[]);
        assert_eq!(loss_timeline(&snaps, 0, &fin), vec![0.0, 0.5, 0.0]);
    }

    #[test]
    fn percentile_curve_rises_to_the_max() {
        let lat: Vec<u64> = (1..=1000).collect();
        let c = percentile_curve(&figures(1, 1, &lat));
        assert!(c.len() > 100);
        assert!(c
            .windows(2)
            .all(|w| w[0].send_us <= w[1].send_us && w[0].quantile <= w[1].quantile));
        assert!((c.last().unwrap().send_us - 1000.0).abs() < 1.0);
        assert!(c.iter().all(|p| p.scheduled_us > p.send_us));
    }

    #[test]
    fn bad_configs_are_refused_before_anything_starts() {
        let bad = [
            BenchConfig {
                receivers: 0,
                ..BenchConfig::default()
            },
            BenchConfig {
                duration: Duration::ZERO,
                ..BenchConfig::default()
            },
            BenchConfig {
                rate_hz: 0.0,
                ..BenchConfig::default()
            },
            BenchConfig {
                payload_budget: 10,
                ..BenchConfig::default()
            },
        ];
        for c in bad {
            assert!(run(&c, |_| ControlFlow::Continue(())).is_err(), "{c:?}");
        }
    }

    /// The end-to-end check: two receivers in-process, every packet arrives.
    #[test]
    fn short_run_on_loopback_loses_nothing_and_reports_everything() {
        let config = BenchConfig {
            receivers: 2,
            entities: 100,
            duration: Duration::from_secs(1),
            warmup: Duration::from_millis(50),
            ..BenchConfig::default()
        };
        let mut calls = 0;
        let r = run(&config, |_| {
            calls += 1;
            ControlFlow::Continue(())
        })
        .unwrap();
        assert!(!r.interrupted);
        assert_eq!(r.receivers.len(), 2);
        let sent = r.sender.figures.packets_sent;
        for rx in &r.receivers {
            let f = &rx.figures;
            assert_eq!(f.lost, 0, "{rx:?}");
            assert_eq!(f.received, f.expected, "{rx:?}");
            assert_eq!(f.expected, sent, "{rx:?}");
            assert!(f.goodbye);
            assert_eq!(f.socket_drops, 0);
            assert_eq!(f.entities_applied, 100 * r.sender.figures.ticks_sent);
            assert!(!rx.loss_per_second.is_empty());
            assert!(rx.world_bytes.is_some_and(|b| b > 0));
        }
        assert_eq!(r.total.figures.expected, 2 * sent);
        assert_eq!(r.total.figures.lost, 0);
        assert_eq!(r.sender.figures.ticks_sent, 60);
        assert!(!r.latency_percentiles.is_empty());
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["total"]["figures"]["lost"], 0);
        assert_eq!(json["setup"]["warmup_excluded"], false);
    }
}
