//! `tickcast bench`: flags in, a [`BenchConfig`] out, then one run, a
//! sweep, or the max-entities search from [`tickcast::bench`]; tables on
//! stdout, live lines on stderr (all rendered by `render::bench` and
//! `render::sweep`), `--json` and `--plot` files. The files are opened
//! before anything runs; `-` writes one of them to stdout instead, and
//! the tables then go to stderr, so stdout holds the document alone.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use super::flags::{ModeArg, DEFAULT_PRIORITY_ARG};
use super::output::Output;
use crate::cli::render::{bench as render, plot, sweep as sweep_render};
use crate::cli::render::{core_warning as render_core_warning, FIFO_BUSY_POLL_WARNING};
use tickcast::bench::sweep::{self, Limit, Scaling, Search, SweepRow};
use tickcast::bench::{self as lib, BenchConfig, BenchReport, LanMode, Progress};
use tickcast::core::conditioner::ConditionerConfig;
use tickcast::core::schema::Versioned;
use tickcast::runtime::broadcaster::SendPath;
use tickcast::runtime::realtime::{self, RealtimeConfig, MAX_PRIORITY, MIN_PRIORITY};
use tickcast::runtime::receiver::ReceiveMode;

/// Duration of a single run unless `--duration` says otherwise.
const DEFAULT_DURATION: Duration = Duration::from_secs(10);

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Receivers on 127.0.0.1, each a unicast destination.
    #[arg(long, default_value_t = 2)]
    receivers: usize,
    /// Entities in the simulated world (the search starts here; default 10000 there).
    #[arg(long)]
    entities: Option<u32>,
    /// Ticks per second.
    #[arg(long, value_name = "HZ", default_value_t = 60.0)]
    rate: f64,
    /// How long the broadcaster runs: default 10s, 3s per sweep point, 2s per search probe.
    #[arg(long, value_parser = super::flags::parse_duration)]
    duration: Option<Duration>,
    /// Largest datagram to send, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = tickcast::wire::DEFAULT_PAYLOAD_BUDGET)]
    payload_budget: usize,
    /// Seed of the simulated world.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Pause between starting the receivers and the first tick (nothing is excluded).
    #[arg(long, value_parser = super::flags::parse_duration, default_value = "500ms")]
    warmup: Duration,
    /// Run each receiver as a `tickcast receive` child process.
    #[arg(long)]
    processes: bool,
    /// Write the report as JSON to FILE (`-`: stdout, the tables then on stderr).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Draw latency percentiles and loss per second to FILE.svg (single
    /// runs; only SVG is written; `-`: stdout).
    #[arg(long, value_name = "FILE.svg", value_parser = super::output::svg_path, conflicts_with_all = ["sweep_entities", "sweep_receivers", "sweep_rate", "find_max_entities"])]
    plot: Option<PathBuf>,
    /// Sweep entity counts, e.g. 1k,10k,100k (one row per combination).
    #[arg(long, value_name = "LIST", value_parser = counts)]
    sweep_entities: Option<Counts>,
    /// Sweep receiver counts, e.g. 1,4,8.
    #[arg(long, value_name = "LIST", value_parser = counts)]
    sweep_receivers: Option<Counts>,
    /// Sweep tick rates in Hz, e.g. 30,60,120.
    #[arg(long, value_name = "LIST", value_parser = rates)]
    sweep_rate: Option<Rates>,
    /// Put a link-conditioner relay in front of each receiver: a preset (lan, wifi, mobile, bad) or a spec such as loss=0.05,delay=20ms; seeded from --seed unless the spec says seed=.
    #[arg(long, value_name = "PRESET|SPEC", value_parser = impairment)]
    impair: Option<Impairment>,
    /// Search for the most entities each receiver takes at --rate with zero loss and zero socket drops.
    #[arg(long, conflicts_with_all = ["sweep_entities", "sweep_receivers", "sweep_rate"])]
    find_max_entities: bool,
    /// How the receiver threads wait for datagrams (see `tickcast receive --mode`).
    #[arg(long, value_enum, default_value_t = ModeArg::Wait)]
    receive_mode: ModeArg,
    /// Run once per receive mode (wait, predict, busy-poll) and print their
    /// latency and receiver CPU side by side.
    #[arg(long, conflicts_with_all = ["sweep_entities", "sweep_receivers", "sweep_rate", "find_max_entities", "plot", "receive_mode"])]
    compare_modes: bool,
    /// Run the broadcaster and each receiver as processes in their own
    /// network namespaces on a bridge (needs root and iproute2), sending
    /// unicast (default) or to a multicast group.
    #[arg(long, value_enum, num_args = 0..=1, default_missing_value = "unicast", value_name = "unicast|multicast", conflicts_with = "impair")]
    lan: Option<LanArg>,
    /// How the broadcaster hands datagrams to the kernel (see `tickcast broadcast --send-path`).
    #[arg(long, value_name = "sendto|sendmmsg|gso", default_value_t = SendPath::Gso)]
    send_path: SendPath,
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
    realtime: Option<u8>,
    /// Pin the broadcaster thread to CPU TX and the receivers, in turn, to
    /// the CPUs after it: `--cpu 0` pins the broadcaster alone, `--cpu 0,1`
    /// every receiver to CPU 1 too.
    #[arg(long, value_name = "TX[,RX...]", value_parser = cpu_list)]
    cpu: Option<CpuList>,
    /// Run twice, as ordinary threads, then with --realtime (priority 10 if
    /// not given) and --cpu, and print latency and tick lateness side by side.
    #[arg(long, conflicts_with_all = ["sweep_entities", "sweep_receivers", "sweep_rate", "find_max_entities", "plot", "compare_modes"])]
    compare_realtime: bool,
}

/// `--cpu TX[,RX...]`: the broadcaster's CPU, then the receivers'.
#[derive(Clone, Debug)]
struct CpuList(Vec<usize>);

fn cpu_list(s: &str) -> Result<CpuList, String> {
    let cpus = s
        .split(',')
        .map(|c| c.trim().parse::<usize>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| "expected CPU numbers separated by commas, e.g. 0 or 0,1".to_string())?;
    Ok(CpuList(cpus))
}

/// `--lan` values, mapped onto [`LanMode`].
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum LanArg {
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
struct Counts(Vec<u32>);
#[derive(Clone, Debug)]
struct Rates(Vec<f64>);

/// A parsed `--impair`, and whether it named its own seed.
#[derive(Clone, Debug)]
struct Impairment {
    config: ConditionerConfig,
    seeded: bool,
}

fn impairment(s: &str) -> Result<Impairment, String> {
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

fn counts(s: &str) -> Result<Counts, String> {
    sweep::parse_counts(s).map(Counts)
}

fn rates(s: &str) -> Result<Rates, String> {
    sweep::parse_rates(s).map(Rates)
}

impl BenchArgs {
    fn config(&self, default_duration: Duration) -> BenchConfig {
        BenchConfig {
            receivers: self.receivers,
            entities: self.entities.unwrap_or(BenchConfig::default().entities),
            rate_hz: self.rate,
            duration: self.duration.unwrap_or(default_duration),
            payload_budget: self.payload_budget,
            seed: self.seed,
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
        }
    }

    fn is_sweep(&self) -> bool {
        self.sweep_entities.is_some() || self.sweep_receivers.is_some() || self.sweep_rate.is_some()
    }
}

/// Where the bench's documents go, opened before it runs.
struct Files {
    json: Option<Output>,
    plot: Option<Output>,
}

impl Files {
    /// Opens `--json` and `--plot`: one line naming the flag if either
    /// cannot be written, or if both ask for stdout.
    fn open(a: &BenchArgs) -> Result<Files, String> {
        let open = |flag, path: &Option<PathBuf>| {
            path.as_deref()
                .map(|p| Output::open(flag, p))
                .transpose()
                .map_err(|e| e.to_string())
        };
        let files = Files {
            json: open("--json", &a.json)?,
            plot: open("--plot", &a.plot)?,
        };
        if files.json.as_ref().is_some_and(Output::is_stdout)
            && files.plot.as_ref().is_some_and(Output::is_stdout)
        {
            return Err("--json - and --plot - cannot both write to stdout".into());
        }
        Ok(files)
    }

    /// True when a document goes to stdout, so tables must not.
    fn stdout_taken(&self) -> bool {
        [&self.json, &self.plot]
            .into_iter()
            .flatten()
            .any(Output::is_stdout)
    }

    /// Prints a table: on stdout, or on stderr when stdout carries a document.
    fn table(&self, text: &str) {
        if self.stdout_taken() {
            eprint!("{text}");
        } else {
            print!("{text}");
        }
    }

    /// Writes `value` as the `--json` document, with its schema, if asked for.
    fn json(&mut self, value: &impl Serialize) -> Result<()> {
        let Some(out) = &mut self.json else {
            return Ok(());
        };
        let text = serde_json::to_string_pretty(&Versioned::new(value))?;
        out.write(&(text + "\n"))?;
        if let Some(path) = out.path() {
            eprintln!("{}", render::wrote(path));
        }
        Ok(())
    }

    /// Draws `report` as the `--plot` document, if asked for.
    fn plot(&mut self, report: &BenchReport) -> Result<()> {
        let Some(out) = &mut self.plot else {
            return Ok(());
        };
        out.write(&plot::svg(report)?)?;
        if let Some(path) = out.path() {
            eprintln!("{}", render::wrote(path));
        }
        Ok(())
    }
}

/// Runs `tickcast bench`; Ctrl-C ends the current run early and skips the
/// rest. An output path that cannot be written is refused before anything
/// runs, with exit code 2 like any bad flag.
pub fn bench(a: BenchArgs, stop: &mpsc::Receiver<()>) -> Result<ExitCode> {
    // Flag values the library refuses are flag errors (exit 2), found
    // before anything starts.
    a.config(DEFAULT_DURATION)
        .validate()
        .map_err(super::flags::bad_flag)?;
    if a.compare_realtime {
        realtime_config(&a)
            .validate()
            .map_err(super::flags::bad_flag)?;
    }
    let mut files = match Files::open(&a) {
        Ok(f) => f,
        Err(line) => {
            eprintln!("tickcast: {line}");
            return Ok(ExitCode::from(2));
        }
    };
    if a.lan.is_some() && !lib::lan::available() {
        eprintln!("{}", render::LAN_UNAVAILABLE);
        return Ok(ExitCode::FAILURE);
    }
    if a.find_max_entities {
        search(&a, stop, &mut files)
    } else if a.compare_modes {
        compare_modes(&a, stop, &mut files)
    } else if a.compare_realtime {
        compare_realtime(&a, stop, &mut files)
    } else if a.is_sweep() {
        sweep(&a, stop, &mut files)
    } else {
        single(&a, stop, &mut files)
    }
}

fn stopped(stop: &mpsc::Receiver<()>) -> ControlFlow<()> {
    match stop.try_recv() {
        Ok(()) => ControlFlow::Break(()),
        Err(_) => ControlFlow::Continue(()),
    }
}

/// Says on stderr what in `config` would leave the broadcaster short of a
/// core: spinning receivers ([`BenchConfig::core_warning`]), and a
/// busy-polling receiver under SCHED_FIFO.
fn warn_of_cores(config: &BenchConfig) {
    if let Some(w) = config.core_warning(realtime::cores_available()) {
        eprintln!("{}", render_core_warning(&w));
    }
    if config.realtime.is_some() && config.receive_mode == ReceiveMode::BusyPoll {
        eprintln!("{}", FIFO_BUSY_POLL_WARNING);
    }
}

fn single(a: &BenchArgs, stop: &mpsc::Receiver<()>, files: &mut Files) -> Result<ExitCode> {
    let config = a.config(DEFAULT_DURATION);
    config.validate()?;
    eprintln!("{}", render::start_line(&config));
    warn_of_cores(&config);
    let report = lib::run(&config, |p: &Progress| {
        eprintln!("{}", render::live_line("", p));
        stopped(stop)
    })?;
    files.table(&format!("\n{}", render::table(&report)));
    files.json(&report)?;
    files.plot(&report)?;
    if report.conditioner_equal == Some(false) {
        eprintln!("{}", render::CONDITIONER_DIFFERS);
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// `--compare-modes --json`: one report per mode, in the order run.
#[derive(Serialize)]
struct ModesOutput<'a> {
    modes: &'a [BenchReport],
}

/// The same run once per receive mode; latency and the receivers' CPU side by side.
fn compare_modes(a: &BenchArgs, stop: &mpsc::Receiver<()>, files: &mut Files) -> Result<ExitCode> {
    let mut reports = Vec::new();
    for mode in ReceiveMode::ALL {
        let config = BenchConfig {
            receive_mode: mode,
            ..a.config(DEFAULT_DURATION)
        };
        config.validate()?;
        eprintln!("{}", render::mode_start_line(mode, config.duration));
        warn_of_cores(&config);
        let report = lib::run(&config, |p: &Progress| {
            eprintln!("{}", render::mode_live_line(mode, p));
            stopped(stop)
        })?;
        let interrupted = report.interrupted;
        reports.push(report);
        if interrupted {
            break;
        }
    }
    files.table(&render::modes_table(&reports));
    files.json(&ModesOutput { modes: &reports })?;
    Ok(ExitCode::SUCCESS)
}

/// `--compare-realtime --json`: the ordinary run, then the real-time one.
#[derive(Serialize)]
struct RealtimeOutput<'a> {
    runs: &'a [BenchReport],
}

/// The configuration of `--compare-realtime`'s second run: the flags'
/// with `--realtime` at its default priority when it was not given.
fn realtime_config(a: &BenchArgs) -> BenchConfig {
    let config = a.config(DEFAULT_DURATION);
    BenchConfig {
        realtime: Some(config.realtime.unwrap_or_default()),
        ..config
    }
}

/// The same run as ordinary threads, then real-time and pinned; latency
/// and tick lateness side by side.
fn compare_realtime(
    a: &BenchArgs,
    stop: &mpsc::Receiver<()>,
    files: &mut Files,
) -> Result<ExitCode> {
    let realtime = realtime_config(a);
    let ordinary = BenchConfig {
        realtime: None,
        sender_cpu: None,
        receiver_cpus: Vec::new(),
        ..realtime.clone()
    };
    warn_of_cores(&realtime);
    let mut reports = Vec::new();
    for config in [ordinary, realtime] {
        eprintln!("{}", render::realtime_start_line(&config));
        let label = render::realtime_label(&config);
        let report = lib::run(&config, |p: &Progress| {
            eprintln!("{}", render::live_line(&format!("{label:<9} "), p));
            stopped(stop)
        })?;
        let interrupted = report.interrupted;
        reports.push(report);
        if interrupted {
            break;
        }
    }
    files.table(&render::realtime_table(&reports));
    files.json(&RealtimeOutput { runs: &reports })?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct SweepOutput<'a> {
    rows: &'a [SweepRow],
    scaling: &'a Scaling,
    runs: &'a [BenchReport],
}

fn sweep(a: &BenchArgs, stop: &mpsc::Receiver<()>, files: &mut Files) -> Result<ExitCode> {
    let base = a.config(sweep::POINT_DURATION);
    let entities = a
        .sweep_entities
        .as_ref()
        .map_or(vec![base.entities], |c| c.0.clone());
    let receivers: Vec<usize> = match &a.sweep_receivers {
        Some(c) => c.0.iter().map(|&r| r as usize).collect(),
        None => vec![base.receivers],
    };
    let rates = a
        .sweep_rate
        .as_ref()
        .map_or(vec![base.rate_hz], |r| r.0.clone());
    let points = sweep::product(&entities, &receivers, &rates);
    eprintln!("{}", sweep_render::start_line(&base, points.len()));
    warn_of_cores(&BenchConfig {
        receivers: receivers.iter().copied().max().unwrap_or(base.receivers),
        ..base.clone()
    });
    let n = points.len();
    let reports = sweep::run(
        &base,
        &points,
        |_, _| stopped(stop),
        |i, r| {
            eprintln!("{}", sweep_render::point_line(i, n, &SweepRow::of(r)));
            stopped(stop)
        },
    )?;
    let rows: Vec<SweepRow> = reports.iter().map(SweepRow::of).collect();
    let scaling = Scaling::fit(&rows);
    files.table(&format!(
        "\n{}\n{}",
        sweep_render::sweep_table(&rows),
        sweep_render::scaling(&scaling)
    ));
    files.json(&SweepOutput {
        rows: &rows,
        scaling: &scaling,
        runs: &reports,
    })?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct SearchOutput<'a> {
    receivers: usize,
    rate_hz: f64,
    probe_duration_s: f64,
    search: &'a Search,
    /// What ran out at the first failing count ([`Search::limited_by`]).
    limited_by: &'a [Limit],
}

fn search(a: &BenchArgs, stop: &mpsc::Receiver<()>, files: &mut Files) -> Result<ExitCode> {
    let base = a.config(sweep::PROBE_DURATION);
    let start = a.entities.unwrap_or(sweep::SEARCH_START);
    eprintln!("{}", sweep_render::search_start_line(&base, start));
    warn_of_cores(&base);
    let found = sweep::find_max_entities(
        &base,
        start,
        |_, _| stopped(stop),
        |p| {
            eprintln!("{}", sweep_render::probe(p));
            stopped(stop)
        },
    )?;
    files.table(&format!(
        "\n{}",
        sweep_render::search(&found, base.receivers, base.rate_hz)
    ));
    files.json(&SearchOutput {
        receivers: base.receivers,
        rate_hz: base.rate_hz,
        probe_duration_s: base.duration.as_secs_f64(),
        search: &found,
        limited_by: found.limited_by(),
    })?;
    Ok(ExitCode::SUCCESS)
}
