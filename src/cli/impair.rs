//! `tickcast impair`: the link-conditioner relay between a broadcaster and
//! its receivers. Parses flags into an [`ImpairConfig`], runs the library's
//! [`Impair`] relay; its lines are in `render::impair`.

use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

use super::flags::{resolve_all, HostPort};
use crate::cli::render::impair as render;
use serde::Serialize;
use tickcast::core::conditioner::ConditionerConfig;
use tickcast::core::schema::Versioned;
use tickcast::runtime::relay::{Impair, ImpairConfig, ImpairFigures};

/// Flags of `tickcast impair`.
#[derive(Args, Debug)]
pub struct ImpairArgs {
    /// Address to receive on: the broadcaster's --to.
    #[arg(long, value_name = "ADDR:PORT")]
    listen: HostPort,
    /// Destination to forward to (repeatable): each receiver's address.
    #[arg(long = "to", value_name = "ADDR:PORT", required = true)]
    to: Vec<HostPort>,
    /// Named impairments: lan, wifi, mobile or bad.
    #[arg(long, value_name = "NAME", value_parser = parse_preset)]
    preset: Option<ConditionerConfig>,
    /// Impairments as key=value items, applied on top of --preset, e.g.
    /// loss=0.05,delay=20ms,jitter=5ms,reorder=0.01,gap=20ms,dup=0.01 or
    /// ge=0.01/0.3/0/0.5 for bursty loss.
    #[arg(long, value_name = "SPEC", value_parser = parse_spec)]
    spec: Option<String>,
    /// Seed of the decisions (overrides the spec's seed=); the same seed
    /// gives the same fates to the same stream.
    #[arg(long)]
    seed: Option<u64>,
    /// Stop after this long (e.g. 10s). Default: until Ctrl-C.
    #[arg(long, value_parser = super::flags::parse_duration)]
    duration: Option<Duration>,
    /// Print the final figures as one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

fn parse_preset(s: &str) -> Result<ConditionerConfig, String> {
    ConditionerConfig::preset(s).map_err(|e| e.to_string())
}

fn parse_spec(s: &str) -> Result<String, String> {
    s.parse::<ConditionerConfig>()
        .map(|_| s.to_string())
        .map_err(|e| e.to_string())
}

/// `impair --json`: the relay's figures and the spec it ran.
#[derive(Serialize)]
struct ImpairOutput<'a> {
    #[serde(flatten)]
    figures: &'a ImpairFigures,
    spec: String,
}

/// Runs the relay until `--duration` or Ctrl-C, then prints its counts.
pub fn run(a: ImpairArgs, stop: &mpsc::Receiver<()>) -> Result<ExitCode> {
    let mut conditioner = a.preset.clone().unwrap_or_default();
    if let Some(spec) = &a.spec {
        conditioner
            .apply_spec(spec)
            .map_err(super::flags::bad_flag)?;
    }
    if let Some(seed) = a.seed {
        conditioner.seed = seed;
    }
    let to = resolve_all(&a.to)?;
    let config = ImpairConfig::new(a.listen.resolve()?, to.clone(), conditioner.clone());
    config.validate().map_err(super::flags::bad_flag)?;
    let relay = Impair::start(config)?;
    eprintln!(
        "{}",
        render::start_line(relay.local_addr(), &to, &conditioner)
    );
    super::every_second(stop, a.duration, |t| {
        eprintln!("{}", render::live_line(t, &relay.figures()));
        relay.is_running()
    });
    let f = relay.stop().context("relay thread failed")?;
    if a.json {
        let out = Versioned::new(ImpairOutput {
            figures: &f,
            spec: conditioner.to_string(),
        });
        println!("{}", serde_json::to_string(&out)?);
    } else {
        eprint!("{}", render::summary(&f, to.len()));
    }
    Ok(ExitCode::SUCCESS)
}
