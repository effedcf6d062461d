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
use serde::Serialize;

use super::flags::bench::BenchArgs;
use super::output::Output;
use crate::cli::render::{bench as render, plot, sweep as sweep_render};
use crate::cli::render::{core_warning as render_core_warning, FIFO_BUSY_POLL_WARNING};
use tickcast::bench::scaling::Scaling;
use tickcast::bench::search::{self, Limit, Search};
use tickcast::bench::sweep::{self, SweepRow};
use tickcast::bench::{self as lib, BenchConfig, BenchReport, Progress};
use tickcast::core::schema::Versioned;
use tickcast::runtime::realtime::{self};
use tickcast::runtime::receiver::ReceiveMode;

/// Duration of a single run unless `--duration` says otherwise.
const DEFAULT_DURATION: Duration = Duration::from_secs(10);

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
        let dash = |p: &Option<PathBuf>| p.as_deref() == Some(std::path::Path::new("-"));
        if dash(&a.json) && dash(&a.plot) {
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

    /// Prints a table: on stdout, or on stderr when stdout carries a
    /// document. Called after the documents are written, so a closed
    /// stdout (`| head`) costs the table, not the files.
    fn table(&self, text: &str) -> Result<()> {
        if self.stdout_taken() {
            say_text!("{text}");
            Ok(())
        } else {
            super::output::stdout_text(text)
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
            say!("{}", render::wrote(path));
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
            say!("{}", render::wrote(path));
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
    let config = a.config(DEFAULT_DURATION)?;
    config.validate().map_err(super::flags::bad_flag)?;
    if a.compare_realtime {
        realtime_config(&a)?
            .validate()
            .map_err(super::flags::bad_flag)?;
    }
    let mut files = match Files::open(&a) {
        Ok(f) => f,
        Err(line) => {
            say!("tickcast: {line}");
            return Ok(ExitCode::from(2));
        }
    };
    if a.lan.is_some() && !lib::lan::available() {
        say!("{}", render::LAN_UNAVAILABLE);
        return Ok(ExitCode::FAILURE);
    }
    if config.link_rate.is_some() && !lib::lan::shaper::tc_available() {
        say!("{}", render::TC_UNAVAILABLE);
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

/// How a bench of `reports` ends: exit 1 with one line when no receiver
/// of any run received anything (a firewall, a LAN that does not carry
/// the stream), unless `--impair` was asked to drop it.
fn received_anything(a: &BenchArgs, reports: &[BenchReport]) -> Result<ExitCode> {
    let nothing = |r: &BenchReport| r.receivers.iter().all(|x| !x.figures.received_any);
    if a.impair.is_none() && !reports.is_empty() && reports.iter().all(nothing) {
        anyhow::bail!(render::RECEIVED_NOTHING);
    }
    Ok(ExitCode::SUCCESS)
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
        say!("{}", render_core_warning(&w));
    }
    if config.realtime.is_some() && config.receive_mode == ReceiveMode::BusyPoll {
        say!("{}", FIFO_BUSY_POLL_WARNING);
    }
}

fn single(a: &BenchArgs, stop: &mpsc::Receiver<()>, files: &mut Files) -> Result<ExitCode> {
    let config = a.config(DEFAULT_DURATION)?;
    config.validate()?;
    say!("{}", render::start_line(&config));
    warn_of_cores(&config);
    let report = lib::run(&config, |p: &Progress| {
        say!("{}", render::live_line("", p));
        stopped(stop)
    })?;
    files.json(&report)?;
    files.plot(&report)?;
    files.table(&format!("\n{}", render::table(&report)))?;
    if report.conditioner_equal == Some(false) {
        say!("{}", render::CONDITIONER_DIFFERS);
        return Ok(ExitCode::FAILURE);
    }
    received_anything(a, std::slice::from_ref(&report))
}

/// One run of a side-by-side comparison, its live lines prefixed by `label`.
fn run_labelled(
    config: &BenchConfig,
    label: &str,
    stop: &mpsc::Receiver<()>,
) -> Result<BenchReport> {
    Ok(lib::run(config, |p: &Progress| {
        say!("{}", render::live_line(&format!("{label:<9} "), p));
        stopped(stop)
    })?)
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
            ..a.config(DEFAULT_DURATION)?
        };
        config.validate()?;
        say!("{}", render::mode_start_line(mode, config.duration));
        warn_of_cores(&config);
        let report = run_labelled(&config, mode.name(), stop)?;
        let interrupted = report.interrupted;
        reports.push(report);
        if interrupted {
            break;
        }
    }
    files.json(&ModesOutput { modes: &reports })?;
    files.table(&render::modes_table(&reports))?;
    received_anything(a, &reports)
}

/// `--compare-realtime --json`: the ordinary run, then the real-time one.
#[derive(Serialize)]
struct RealtimeOutput<'a> {
    runs: &'a [BenchReport],
}

/// The configuration of `--compare-realtime`'s second run: the flags'
/// with `--realtime` at its default priority when it was not given.
fn realtime_config(a: &BenchArgs) -> Result<BenchConfig> {
    let config = a.config(DEFAULT_DURATION)?;
    Ok(BenchConfig {
        realtime: Some(config.realtime.unwrap_or_default()),
        ..config
    })
}

/// The same run as ordinary threads, then real-time and pinned; latency
/// and tick lateness side by side.
fn compare_realtime(
    a: &BenchArgs,
    stop: &mpsc::Receiver<()>,
    files: &mut Files,
) -> Result<ExitCode> {
    let realtime = realtime_config(a)?;
    let ordinary = BenchConfig {
        realtime: None,
        sender_cpu: None,
        receiver_cpus: Vec::new(),
        ..realtime.clone()
    };
    warn_of_cores(&realtime);
    let mut reports = Vec::new();
    for config in [ordinary, realtime] {
        say!("{}", render::realtime_start_line(&config));
        let report = run_labelled(&config, &render::realtime_label(&config), stop)?;
        let interrupted = report.interrupted;
        reports.push(report);
        if interrupted {
            break;
        }
    }
    files.json(&RealtimeOutput { runs: &reports })?;
    files.table(&render::realtime_table(&reports))?;
    received_anything(a, &reports)
}

#[derive(Serialize)]
struct SweepOutput<'a> {
    rows: &'a [SweepRow],
    scaling: &'a Scaling,
    runs: &'a [BenchReport],
}

fn sweep(a: &BenchArgs, stop: &mpsc::Receiver<()>, files: &mut Files) -> Result<ExitCode> {
    let base = a.config(sweep::POINT_DURATION)?;
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
    // A point the library refuses is a bad flag value (exit 2), found
    // before the first point runs.
    sweep::validate(&base, &points).map_err(super::flags::bad_flag)?;
    say!("{}", sweep_render::start_line(&base, points.len()));
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
            say!("{}", sweep_render::point_line(i, n, &SweepRow::of(r)));
            stopped(stop)
        },
    )?;
    let rows: Vec<SweepRow> = reports.iter().map(SweepRow::of).collect();
    let scaling = Scaling::fit(&rows);
    files.json(&SweepOutput {
        rows: &rows,
        scaling: &scaling,
        runs: &reports,
    })?;
    files.table(&format!(
        "\n{}\n{}",
        sweep_render::sweep_table(&rows),
        sweep_render::scaling(&scaling)
    ))?;
    received_anything(a, &reports)
}

#[derive(Serialize)]
struct SearchOutput<'a> {
    receivers: usize,
    rate_hz: f64,
    probe_duration_s: f64,
    /// The rate the broadcaster's link was shaped to (`1gbit`), or `null`.
    link_rate: Option<String>,
    /// UDP payload bytes per entity update at the answer, or `null`.
    wire_bytes_per_entity_update: Option<f64>,
    search: &'a Search,
    /// What ran out at the first failing count ([`Search::limited_by`]).
    limited_by: &'a [Limit],
}

fn search(a: &BenchArgs, stop: &mpsc::Receiver<()>, files: &mut Files) -> Result<ExitCode> {
    let base = a.config(search::PROBE_DURATION)?;
    let start = a.entities.unwrap_or(search::SEARCH_START);
    say!("{}", sweep_render::search_start_line(&base, start));
    warn_of_cores(&base);
    let found = search::find_max_entities(
        &base,
        start,
        |_, _| stopped(stop),
        |p| {
            say!("{}", sweep_render::probe(p));
            stopped(stop)
        },
    )?;
    files.json(&SearchOutput {
        receivers: base.receivers,
        rate_hz: base.rate_hz,
        probe_duration_s: base.duration.as_secs_f64(),
        link_rate: base.link_rate.map(|r| r.to_string()),
        wire_bytes_per_entity_update: found
            .at_answer()
            .and_then(|p| p.wire_bytes_per_entity_update),
        search: &found,
        limited_by: found.limited_by(),
    })?;
    files.table(&format!("\n{}", sweep_render::search(&found, &base)))?;
    Ok(ExitCode::SUCCESS)
}
