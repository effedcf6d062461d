//! The benchmark: one [`Broadcaster`] and K receivers on 127.0.0.1 for a set
//! time, then every figure as plain data ([`BenchReport`]).
//!
//! # What is measured, and how
//!
//! * **Receiver figures** are each receiver's own [`Figures`] after the
//!   goodbye, with the definitions of [`crate::core::figures`]; the total row adds
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
//! * **Wire bytes per entity update**: the UDP payload bytes of one copy
//!   of the stream over the entity updates it carried, and the same with
//!   the IPv4 and UDP headers ([`SenderResult::wire_bytes_per_entity_update`]
//!   defines both). Measured from what the broadcaster sent, whatever its
//!   encoding.
//! * **CPU time** is per thread in-process (exact, see [`usage`]): the
//!   broadcaster thread and each receiver thread, found by name. With
//!   `processes`, each receiver is a `tickcast receive` child process and
//!   its CPU time is the whole process's, read once it has exited.
//! * **Memory**: each receiver's [`World::allocated_bytes`], and the
//!   resident size (`VmRSS`, `VmHWM`) of this process, or of each child.
//!
//! # Layout
//!
//! This file holds the configuration and the run itself. `results` turns
//! what a run collected into the [`BenchReport`]; [`usage`] reads `/proc`;
//! `child` runs receivers as processes; [`lan`] runs the broadcaster and
//! receivers as processes in network namespaces on a bridge (`--lan`), and
//! holds the namespace-LAN builder the tests use too ([`lan::netns`]);
//! [`sweep`] runs many points, [`scaling`] fits their cost model by
//! [`fit`]'s non-negative least squares, and [`search`] searches for the
//! most entities without loss; [`progress`] reads child processes'
//! per-second lines. The human tables and the SVG plot are the binary's
//! (`src/cli/render/`).

pub mod fit;
pub mod lan;
pub mod progress;
pub mod scaling;
pub mod search;
pub mod sweep;
pub mod usage;

mod child;
mod relay;
mod results;

pub use lan::LanMode;
pub use relay::{ConditionerCheck, Mismatch};
pub use results::{
    BenchReport, Cpu, LinkResult, Machine, PercentilePoint, ReceiverResult, SenderResult, Setup,
    ETHERNET_FRAME_OVERHEAD_BYTES, IPV4_UDP_HEADER_BYTES,
};
use results::{Phase, ReceiverEnd};

use std::net::{Ipv4Addr, SocketAddr};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::core::conditioner::ConditionerConfig;
use crate::core::cores::{self, CoreWarning};
use crate::core::figures::Figures;
use crate::core::sim::WorldKind;
use crate::core::world::World;
use crate::runtime::broadcaster::{
    self, BroadcastConfig, BroadcastError, BroadcastFigures, Broadcaster, SendPath,
};
use crate::runtime::realtime::{self as rt, RealtimeConfig};
use crate::runtime::receiver::{self, ReceiveMode, Receiver, ReceiverConfig, ReceiverError};
use crate::runtime::relay::ImpairError;

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
    /// Send compact parts with this config (`None`: full parts).
    pub compact: Option<crate::core::compact::CompactConfig>,
    /// Which simulated world the broadcaster sends (default
    /// [`WorldKind::Linear`]).
    pub world: WorldKind,
    /// Pause between starting the receivers and the first tick (default
    /// 0.5 s). Not excluded from anything: no tick is sent during it.
    pub warmup: Duration,
    /// Run each receiver as a `tickcast receive` child process (default false).
    pub processes: bool,
    /// The `tickcast` executable for `processes`; `None` means this very
    /// executable ([`std::env::current_exe`]), right for the `tickcast` CLI.
    pub program: Option<PathBuf>,
    /// Put a link-conditioner relay in front of each receiver (default
    /// none); receiver `i`'s conditioner is seeded with this seed + `i`.
    /// The report then holds each receiver's figures against what its
    /// conditioner says they must be.
    pub impair: Option<ConditionerConfig>,
    /// How each receiver thread waits for datagrams (default
    /// [`ReceiveMode::Wait`]); compare modes' latency and CPU with it.
    pub receive_mode: ReceiveMode,
    /// Run the broadcaster and each receiver as child processes in their
    /// own network namespaces on a bridge ([`lan`]; needs root), instead of
    /// on loopback (default none).
    pub lan: Option<LanMode>,
    /// How the broadcaster hands datagrams to the kernel (default
    /// [`SendPath::Gso`]); compare paths' cost with it.
    pub send_path: SendPath,
    /// Run every receiver thread under SCHED_FIFO at this priority, and
    /// the broadcaster one above it (up to [`rt::MAX_PRIORITY`]), with the
    /// memory locked ([`crate::runtime::realtime`]; default none). The
    /// broadcaster is above so that a receiver spinning at the same
    /// priority (busy-poll, or predict around a tick) can never keep it
    /// off a CPU at its deadline: among equal SCHED_FIFO threads, none
    /// preempts another. Child processes get it as `--realtime`.
    pub realtime: Option<RealtimeConfig>,
    /// Pin the broadcaster thread to this CPU (default none).
    pub sender_cpu: Option<usize>,
    /// Pin receiver `i` to `receiver_cpus[i % len]` (default empty: no pinning).
    pub receiver_cpus: Vec<usize>,
    /// With `lan`: shape the broadcaster's link to this rate
    /// ([`lan::shaper`]: a `tbf` qdisc on its `eth0`; needs `tc`), so the
    /// run says what a link of that rate carries (default none: the veth's
    /// own speed). The report's `link` then holds the rate and what the
    /// shaper passed and dropped.
    pub link_rate: Option<lan::shaper::LinkRate>,
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
            compact: None,
            world: WorldKind::Linear,
            warmup: Duration::from_millis(500),
            processes: false,
            program: None,
            impair: None,
            receive_mode: ReceiveMode::Wait,
            lan: None,
            send_path: SendPath::default(),
            realtime: None,
            sender_cpu: None,
            receiver_cpus: Vec::new(),
            link_rate: None,
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
    /// A link-conditioner relay could not start.
    #[error(transparent)]
    Impair(#[from] ImpairError),
    /// A link-conditioner relay failed during the run.
    #[error("link-conditioner relay failed: {0}")]
    RelayFailed(#[source] std::io::Error),
    /// The network-namespace LAN could not be built.
    #[error("cannot build the network-namespace LAN: {0}")]
    Lan(lan::NetnsError),
    /// `lan` and `impair` were both asked for.
    #[error("a LAN run cannot have a link conditioner (its relays are on loopback)")]
    LanImpair,
    /// `link_rate` without `lan`: only a LAN's link can be shaped.
    #[error(
        "a link rate shapes the broadcaster's link on a namespace LAN: it needs a LAN run (--lan)"
    )]
    LinkRateWithoutLan,
    /// `link_rate` was asked for and `tc` cannot be started.
    #[error("a link rate needs tc (iproute2), which is not installed or not on PATH")]
    NoTc,
    /// The broadcaster's link could not be shaped (`tc qdisc replace ...`
    /// failed: no `sch_tbf` in the kernel, say).
    #[error("cannot shape the broadcaster's link: {0}")]
    Shaper(lan::NetnsError),
    /// A real-time priority is out of range, or a CPU is not one this
    /// process may run on.
    #[error(transparent)]
    Realtime(#[from] rt::RealtimeError),
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
        if self.lan.is_some() && self.impair.is_some() {
            return Err(BenchError::LanImpair);
        }
        if self.link_rate.is_some() && self.lan.is_none() {
            return Err(BenchError::LinkRateWithoutLan);
        }
        if let Some(c) = &self.impair {
            c.validate().map_err(|e| BenchError::Impair(e.into()))?;
        }
        if let Some(r) = &self.realtime {
            r.validate()?;
        }
        for &cpu in self.sender_cpu.iter().chain(&self.receiver_cpus) {
            rt::check_cpu(cpu)?;
        }
        let placeholder = SocketAddr::from((Ipv4Addr::LOCALHOST, 9));
        self.broadcast_config(vec![placeholder])
            .validate_simulated()
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
            world: self.world,
            payload_budget: self.payload_budget,
            compact: self.compact,
            send_path: self.send_path,
            realtime: self.sender_realtime(),
            cpu: self.sender_cpu,
            ..BroadcastConfig::default()
        }
    }

    /// The broadcaster's real-time settings: [`BenchConfig::realtime`],
    /// one priority up.
    pub fn sender_realtime(&self) -> Option<RealtimeConfig> {
        self.realtime.map(|r| RealtimeConfig {
            priority: r.priority.saturating_add(1).min(rt::MAX_PRIORITY),
            ..r
        })
    }

    /// The CPU receiver `i` is pinned to, if any.
    pub fn receiver_cpu(&self, i: usize) -> Option<usize> {
        (!self.receiver_cpus.is_empty()).then(|| self.receiver_cpus[i % self.receiver_cpus.len()])
    }

    /// The warning for this run's spinning receivers, all on this machine
    /// with the broadcaster, on `cores` cores ([`cores::core_warning`]).
    pub fn core_warning(&self, cores: usize) -> Option<CoreWarning> {
        let n = self.receivers;
        match self.receive_mode {
            ReceiveMode::BusyPoll => cores::core_warning(n, 0, cores, true),
            ReceiveMode::Predict => cores::core_warning(0, n, cores, true),
            ReceiveMode::Wait => None,
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
    /// The broadcaster's figures so far. With `lan` the broadcaster is a
    /// child process: the counters of its latest per-second line, no
    /// lateness.
    pub sender: &'a BroadcastFigures,
    /// Each receiver's figures so far. With `processes` or `lan` they are in
    /// other processes until they end: then only the counters of each
    /// child's latest per-second line ([`progress`]), up to a second old,
    /// and no latency.
    pub receivers: &'a [Figures],
    /// Each receiver's loss fraction over the last second.
    pub last_second_loss: &'a [f64],
}

/// Runs one benchmark. `progress` is called about once a second while the
/// broadcaster runs; returning `Break` stops the run early (the report then
/// says `interrupted`).
pub fn run(
    config: &BenchConfig,
    progress: impl FnMut(&Progress) -> ControlFlow<()>,
) -> Result<BenchReport, BenchError> {
    config.validate()?;
    let machine = Machine::now();
    if let Some(mode) = config.lan {
        return lan::run(config, mode, machine, progress);
    }
    let mut fleet = if config.processes {
        Fleet::Processes(child::Children::spawn(config)?)
    } else {
        Fleet::InProcess(start_local(config)?)
    };
    let relays = match &config.impair {
        Some(c) => Some(relay::Relays::start(c, &fleet.addrs())?),
        None => None,
    };
    let targets = relays.as_ref().map_or_else(|| fleet.addrs(), |r| r.addrs());
    std::thread::sleep(config.warmup);
    let phase = broadcast(config, targets, &mut fleet, progress)?;
    std::thread::sleep(GRACE);
    let relayed = match relays {
        Some(r) => {
            // Stopping releases what the relays still hold; let it arrive.
            let figures = r.stop().map_err(BenchError::RelayFailed)?;
            std::thread::sleep(GRACE);
            Some(figures)
        }
        None => None,
    };
    let ends = fleet.finish()?;
    Ok(results::assemble(
        config, machine, phase, ends, relayed, None,
    ))
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

fn start_local(config: &BenchConfig) -> Result<Vec<Local>, BenchError> {
    let mut locals = Vec::with_capacity(config.receivers);
    for i in 0..config.receivers {
        let before = usage::threads_named(receiver::THREAD_NAME);
        let receiver = Receiver::start(ReceiverConfig {
            capacity: config.capacity(),
            mode: config.receive_mode,
            realtime: config.realtime,
            cpu: config.receiver_cpu(i),
            ..ReceiverConfig::unicast(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        })?;
        let tid = usage::new_thread_named(receiver::THREAD_NAME, &before, Duration::from_secs(1));
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

    /// Figures so far (in-process), or the children's latest counters, and
    /// a chance for children to be sampled.
    fn live(&mut self) -> Vec<Figures> {
        match self {
            Fleet::InProcess(l) => l.iter().map(|l| l.receiver.figures()).collect(),
            Fleet::Processes(c) => {
                c.sample();
                c.live()
            }
        }
    }

    fn finish(self) -> Result<Vec<ReceiverEnd>, BenchError> {
        match self {
            Fleet::InProcess(locals) => {
                // Read what needs the thread alive before stopping it (its
                // activity is as of its last publication, after the grace:
                // every datagram is in it).
                let cpus: Vec<_> = locals
                    .iter()
                    .map(|l| (l.tid.and_then(usage::thread_cpu), l.receiver.activity()))
                    .collect();
                let mut ends = Vec::with_capacity(locals.len());
                for (index, (l, (cpu, activity))) in locals.into_iter().zip(cpus).enumerate() {
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
                        activity: Some(activity),
                        world_bytes,
                        memory: None,
                    });
                }
                Ok(ends)
            }
            Fleet::Processes(children) => Ok(children
                .finish()?
                .into_iter()
                .map(ReceiverEnd::from)
                .collect()),
        }
    }
}

fn world_bytes(w: &World) -> u64 {
    w.allocated_bytes() as u64
}

/// Runs the broadcaster, sending to `targets`, until its duration ends.
fn broadcast(
    config: &BenchConfig,
    targets: Vec<SocketAddr>,
    fleet: &mut Fleet,
    mut progress: impl FnMut(&Progress) -> ControlFlow<()>,
) -> Result<Phase, BenchError> {
    let before = usage::threads_named(broadcaster::THREAD_NAME);
    let b = Broadcaster::start(config.broadcast_config(targets))?;
    let start = Instant::now();
    let tid = usage::new_thread_named(broadcaster::THREAD_NAME, &before, Duration::from_secs(1));
    let end_watch = config.duration.saturating_sub(END_WATCH);
    let mut next = Duration::from_secs(1);
    let mut sender_cpu = None;
    let mut interrupted = false;
    // Only the latest figures are kept: each holds three histograms.
    let mut loss_per_second: Vec<Vec<f64>> = vec![Vec::new(); config.receivers];
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
                for (timeline, l) in loss_per_second.iter_mut().zip(&loss) {
                    timeline.push(*l);
                }
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
    let figures = b.stop().summary();
    Ok(Phase {
        figures,
        sender_cpu,
        elapsed,
        interrupted,
        loss_per_second,
        last,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
            assert_eq!(f.counters.lost, 0, "{rx:?}");
            assert_eq!(f.counters.received, f.counters.expected, "{rx:?}");
            assert_eq!(f.counters.expected, sent, "{rx:?}");
            assert!(f.goodbye);
            assert_eq!(f.counters.socket_drops, 0);
            assert_eq!(
                f.counters.entities_applied,
                100 * r.sender.figures.ticks_sent
            );
            assert!(!rx.loss_per_second.is_empty());
            assert!(rx.world_bytes.is_some_and(|b| b > 0));
        }
        assert_eq!(r.total.figures.counters.expected, 2 * sent);
        assert_eq!(r.total.figures.counters.lost, 0);
        // A 1 s run is 60 ticks, each sent or (on a loaded machine) skipped.
        let b = &r.sender.figures;
        assert_eq!(b.ticks_sent + b.ticks_skipped, 60);
        assert!(!r.latency_percentiles.is_empty());
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["total"]["figures"]["lost"], 0);
        assert_eq!(json["setup"]["warmup_excluded"], false);
    }

    /// The link conditioner's counts and the receivers' figures agree exactly.
    #[test]
    fn receivers_behind_a_conditioner_report_exactly_what_it_did() {
        let config = BenchConfig {
            receivers: 2,
            entities: 100,
            duration: Duration::from_secs(1),
            warmup: Duration::from_millis(50),
            impair: Some("loss=0.05,dup=0.02,reorder=0.05,seed=7".parse().unwrap()),
            ..BenchConfig::default()
        };
        let r = run(&config, |_| ControlFlow::Continue(())).unwrap();
        assert_eq!(r.conditioner_equal, Some(true), "{:#?}", r.receivers);
        for rx in &r.receivers {
            let c = rx.conditioner.as_ref().unwrap();
            assert!(c.equal && c.mismatches.is_empty());
            assert_eq!(c.expected.received, rx.figures.counters.received);
            assert_eq!(
                c.expected.lost + c.expected.unseen,
                rx.figures.counters.lost
            );
            // A drop before the first delivered number is invisible to any receiver.
            assert!(c.did.dropped >= rx.figures.counters.lost);
            assert!(c.did.datagrams_in > 0);
        }
        let seeds: Vec<&str> = r
            .receivers
            .iter()
            .map(|x| {
                x.conditioner
                    .as_ref()
                    .unwrap()
                    .spec
                    .rsplit("seed=")
                    .next()
                    .unwrap()
            })
            .collect();
        assert_eq!(
            seeds,
            ["7", "8"],
            "receiver i's conditioner is seeded with seed + i"
        );
    }
}
