//! `tickcast impair`: the link-conditioner relay between a broadcaster and
//! its receivers. Parses flags into an [`ImpairConfig`], runs the library's
//! [`Impair`] relay; its lines are in `render::impair`.

use std::process::ExitCode;
use std::sync::mpsc;

use anyhow::{Context, Result};

use super::flags::impair::ImpairArgs;
use super::flags::resolve_all;
use crate::cli::render::impair as render;
use serde::Serialize;
use tickcast::core::schema::Versioned;
use tickcast::runtime::relay::{Impair, ImpairConfig, ImpairFigures};

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
    let listen = relay.local_addr();
    let started = std::time::Instant::now();
    say!(
        "{}",
        render::start_line(relay.local_addr(), &to, &conditioner)
    );
    super::every_second(stop, a.duration, |t| {
        say!("{}", render::live_line(t, &relay.figures()));
        relay.is_running()
    });
    let f = relay.stop().context("relay thread failed")?;
    if a.json {
        let out = Versioned::new(ImpairOutput {
            figures: &f,
            spec: conditioner.to_string(),
        });
        super::output::stdout(&serde_json::to_string(&out)?)?;
    } else {
        say_text!("{}", render::summary(&f, to.len()));
    }
    match render::relayed_nothing(&f, listen, started.elapsed()) {
        Some(why) => anyhow::bail!(why),
        None => Ok(ExitCode::SUCCESS),
    }
}
