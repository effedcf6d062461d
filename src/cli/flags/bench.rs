//! `tickcast bench`'s flags, and the [`BenchConfig`] they describe.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::{ModeArg, WorldArg, DEFAULT_PRIORITY_ARG};
use anyhow::Result;

use tickcast::bench::lan::shaper::LinkRate;
use tickcast::bench::{BenchConfig, LanMode};
use tickcast::core::conditioner::ConditionerConfig;
use tickcast::runtime::broadcaster::SendPath;
use tickcast::runtime::realtime::{RealtimeConfig, MAX_PRIORITY, MIN_PRIORITY};

/// Flags of `tickcast bench`.
#[derive(Args, Debug)]
pub(crate) struct BenchArgs {
    /// Receivers on 127.0.0.1, each a unicast destination.
    #[arg(long, default_value_t = 2)]
    pub(crate) receivers: usize,
    /// Entities in the simulated world: default 1000, and 10000 where
    /// --find-max-entities starts its search.
    #[arg(long)]
    pub(crate) entities: Option<u32>,
    /// Ticks per second.
    #[arg(long, value_name = "HZ", default_value_t = 60.0)]
    pub(crate) rate: f64,
    /// How long the broadcaster runs: default 10s, 3s per sweep point, 2s per search probe.
    #[arg(long, value_parser = super::parse_duration)]
    pub(crate) duration: Option<Duration>,
    /// Largest datagram to send, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = tickcast::wire::DEFAULT_PAYLOAD_BUDGET)]
    pub(crate) payload_budget: usize,
    /// Seed of the simulated world.
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
    #[command(flatten)]
    pub(crate) encoding: super::EncodingArgs,
    /// The simulated world: linear or players (see `tickcast broadcast --world`).
    #[arg(long, value_enum, default_value_t = WorldArg::Linear)]
    pub(crate) world: WorldArg,
    /// Pause between starting the receivers and the first tick (nothing is excluded).
    #[arg(long, value_parser = super::parse_duration, default_value = "500ms")]
    pub(crate) warmup: Duration,
    /// Run each receiver as a `tickcast receive` child process.
    #[arg(long)]
    pub(crate) processes: bool,
    /// Write the report as JSON to FILE (`-`: stdout, the tables then on stderr).
    #[arg(long, value_name = "FILE")]
    pub(crate) json: Option<PathBuf>,
    /// Draw latency percentiles and loss per second to FILE.svg (single
    /// runs; only SVG is written; `-`: stdout).
    #[arg(long, value_name = "FILE.svg", value_parser = crate::cli::output::svg_path, conflicts_with_all = ["sweep_entities", "sweep_receivers", "sweep_rate", "find_max_entities"])]
    pub(crate) plot: Option<PathBuf>,
    /// Sweep entity counts, e.g. 1k,10k,100k (one row per combination).
    #[arg(long, value_name = "LIST", value_parser = counts)]
    pub(crate) sweep_entities: Option<Counts>,
    /// Sweep receiver counts, e.g. 1,4,8.
    #[arg(long, value_name = "LIST", value_parser = counts)]
    pub(crate) sweep_receivers: Option<Counts>,
    /// Sweep tick rates in Hz, e.g. 30,60,120.
    #[arg(long, value_name = "LIST", value_parser = rates)]
    pub(crate) sweep_rate: Option<Rates>,
    /// Put a link-conditioner relay in front of each receiver: a preset (lan, wifi, mobile, bad) or a spec such as loss=0.05,delay=20ms; seeded from --seed unless the spec says seed=.
    #[arg(long, value_name = "PRESET|SPEC", value_parser = impairment)]
    pub(crate) impair: Option<Impairment>,
    /// Search for the most entities each receiver takes at --rate with zero loss and zero socket drops (with --link-rate: the most the link carries, no tick skipped).
    #[arg(long, conflicts_with_all = ["sweep_entities", "sweep_receivers", "sweep_rate"])]
    pub(crate) find_max_entities: bool,
    /// How the receiver threads wait for datagrams (see `tickcast receive --mode`).
    #[arg(long, value_enum, default_value_t = ModeArg::Wait)]
    pub(crate) receive_mode: ModeArg,
    /// Run once per receive mode (wait, predict, busy-poll) and print their
    /// latency and receiver CPU side by side.
    #[arg(long, conflicts_with_all = ["sweep_entities", "sweep_receivers", "sweep_rate", "find_max_entities", "plot", "receive_mode"])]
    pub(crate) compare_modes: bool,
    /// Run the broadcaster and each receiver as processes in their own
    /// network namespaces on a bridge (needs root and iproute2), sending
    /// unicast (default) or to a multicast group.
    #[arg(long, value_enum, num_args = 0..=1, default_missing_value = "unicast", value_name = "unicast|multicast", conflicts_with = "impair")]
    pub(crate) lan: Option<LanArg>,
    /// With --lan: shape the broadcaster's link to RATE, as tc writes
    /// rates (100mbit, 1gbit, 2.5gbit): a tbf qdisc on its interface,
    /// inside its namespace (needs tc, from iproute2). What the shaper
    /// dropped is reported beside the receivers' loss.
    // Taken as text and parsed by the library, so a bad rate is one line
    // and exit 2 like any value the library refuses.
    #[arg(long, value_name = "RATE", requires = "lan")]
    pub(crate) link_rate: Option<String>,
    /// How the broadcaster hands datagrams to the kernel (see `tickcast broadcast --send-path`).
    #[arg(long, value_name = "sendto|sendmmsg|gso", default_value_t = SendPath::Gso)]
    pub(crate) send_path: SendPath,
    /// Run every receiver thread under SCHED_FIFO at PRIORITY (1-99,
    /// default 10) and the broadcaster one above, the memory locked
    /// (mlockall); child processes (--processes, --lan) get it too. Needs
    /// root, or CAP_SYS_NICE and CAP_IPC_LOCK.
    #[arg(
        long,
        value_name = "PRIORITY",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = DEFAULT_PRIORITY_ARG,
        value_parser = clap::value_parser!(u8).range(i64::from(MIN_PRIORITY)..=i64::from(MAX_PRIORITY)),
    )]
    pub(crate) realtime: Option<u8>,
    /// Pin the broadcaster thread to CPU TX and the receivers, in turn, to
    /// the CPUs after it: `--cpu 0` pins the broadcaster alone, `--cpu 0,1`
    /// every receiver to CPU 1 too.
    #[arg(long, value_name = "TX[,RX...]", value_parser = cpu_list)]
    pub(crate) cpu: Option<CpuList>,
    /// Run twice, as ordinary threads, then with --realtime (priority 10 if
    /// not given) and --cpu, and print latency and tick lateness side by side.
    #[arg(long, conflicts_with_all = ["sweep_entities", "sweep_receivers", "sweep_rate", "find_max_entities", "plot", "compare_modes"])]
    pub(crate) compare_realtime: bool,
}

/// `--cpu TX[,RX...]`: the broadcaster's CPU, then the receivers'.
#[derive(Clone, Debug)]
pub(crate) struct CpuList(pub(crate) Vec<usize>);

pub(crate) fn cpu_list(s: &str) -> Result<CpuList, String> {
    let cpus = s
        .split(',')
        .map(|c| c.trim().parse::<usize>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| "expected CPU numbers separated by commas, e.g. 0 or 0,1".to_string())?;
    Ok(CpuList(cpus))
}

/// `--lan` values, mapped onto [`LanMode`].
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum LanArg {
    Unicast,
    Multicast,
}

impl From<LanArg> for LanMode {
    fn from(l: LanArg) -> LanMode {
        match l {
            LanArg::Unicast => LanMode::Unicast,
            LanArg::Multicast => LanMode::Multicast,
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Counts(pub(crate) Vec<u32>);
#[derive(Clone, Debug)]
pub(crate) struct Rates(pub(crate) Vec<f64>);

/// A parsed `--impair`, and whether it named its own seed.
#[derive(Clone, Debug)]
pub(crate) struct Impairment {
    pub(crate) config: ConditionerConfig,
    pub(crate) seeded: bool,
}

pub(crate) fn impairment(s: &str) -> Result<Impairment, String> {
    let parsed = if s.contains('=') {
        s.parse::<ConditionerConfig>()
    } else {
        ConditionerConfig::preset(s)
    };
    Ok(Impairment {
        config: parsed.map_err(|e| e.to_string())?,
        seeded: s.split(',').any(|kv| kv.trim().starts_with("seed=")),
    })
}

pub(crate) fn counts(s: &str) -> Result<Counts, String> {
    tickcast::bench::sweep::parse_counts(s).map(Counts)
}

pub(crate) fn rates(s: &str) -> Result<Rates, String> {
    tickcast::bench::sweep::parse_rates(s).map(Rates)
}

impl BenchArgs {
    /// The configuration the flags describe; a `--link-rate` that is not a
    /// rate is a bad flag value (one line, exit 2).
    pub(crate) fn config(&self, default_duration: Duration) -> Result<BenchConfig> {
        let link_rate = self
            .link_rate
            .as_deref()
            .map(|s| {
                s.parse::<LinkRate>()
                    .map_err(|e| super::bad_flag(anyhow::anyhow!("--link-rate {s:?}: {e}")))
            })
            .transpose()?;
        Ok(BenchConfig {
            receivers: self.receivers,
            entities: self.entities.unwrap_or(BenchConfig::default().entities),
            rate_hz: self.rate,
            duration: self.duration.unwrap_or(default_duration),
            payload_budget: self.payload_budget,
            seed: self.seed,
            compact: self.encoding.compact()?,
            world: self.world.into(),
            warmup: self.warmup,
            processes: self.processes,
            program: None,
            impair: self.impair.as_ref().map(|i| ConditionerConfig {
                seed: if i.seeded { i.config.seed } else { self.seed },
                ..i.config.clone()
            }),
            receive_mode: self.receive_mode.into(),
            lan: self.lan.map(LanMode::from),
            send_path: self.send_path,
            realtime: self.realtime.map(RealtimeConfig::fifo),
            sender_cpu: self.cpu.as_ref().map(|c| c.0[0]),
            receiver_cpus: self.cpu.as_ref().map_or(Vec::new(), |c| c.0[1..].to_vec()),
            link_rate,
        })
    }

    pub(crate) fn is_sweep(&self) -> bool {
        self.sweep_entities.is_some() || self.sweep_receivers.is_some() || self.sweep_rate.is_some()
    }
}
