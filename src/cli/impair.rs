//! `tickcast impair`: the link-conditioner relay between a broadcaster and
//! its receivers. Parses flags into an [`ImpairConfig`], runs the library's
//! [`Impair`] relay, prints a live line a second and the final counts.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

use tickcast::core::conditioner::ConditionerConfig;
use tickcast::runtime::relay::{Impair, ImpairConfig, ImpairFigures};

/// Flags of `tickcast impair`.
#[derive(Args, Debug)]
pub struct ImpairArgs {
    /// Address to receive on: the broadcaster's --to.
    #[arg(long, value_name = "ADDR:PORT")]
    listen: SocketAddr,
    /// Destination to forward to (repeatable): each receiver's address.
    #[arg(long = "to", value_name = "ADDR:PORT", required = true)]
    to: Vec<SocketAddr>,
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
    #[arg(long, value_parser = super::parse_duration)]
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

/// Runs the relay until `--duration` or Ctrl-C, then prints its counts.
pub fn run(a: ImpairArgs, stop: &mpsc::Receiver<()>) -> Result<ExitCode> {
    let mut conditioner = a.preset.clone().unwrap_or_default();
    if let Some(spec) = &a.spec {
        conditioner.apply_spec(spec)?;
    }
    if let Some(seed) = a.seed {
        conditioner.seed = seed;
    }
    let relay = Impair::start(ImpairConfig::new(
        a.listen,
        a.to.clone(),
        conditioner.clone(),
    ))?;
    let to: Vec<String> = a.to.iter().map(|d| d.to_string()).collect();
    eprintln!(
        "impair: relaying {} -> {} with {} (long-run loss {:.2}%)",
        relay.local_addr(),
        to.join(", "),
        conditioner,
        conditioner.loss.long_run_rate() * 100.0
    );
    super::every_second(stop, a.duration, |t| {
        eprintln!("{}", live_line(t, &relay.figures()));
        relay.is_running()
    });
    let f = relay.stop().context("relay thread failed")?;
    if a.json {
        let mut v = serde_json::to_value(&f)?;
        v["spec"] = conditioner.to_string().into();
        println!("{v}");
    } else {
        eprint!("{}", summary(&f, a.to.len()));
    }
    Ok(ExitCode::SUCCESS)
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

fn live_line(t: Duration, f: &ImpairFigures) -> String {
    let c = &f.conditioner;
    format!(
        "{:>5.1}s  in {}  dropped {} ({:.2}%)  dup {}  held back {}  reord {}  delivered {}  held {}  undecoded {}  drops {}  send errors {}",
        t.as_secs_f64(),
        c.datagrams_in,
        c.dropped,
        percent(c.dropped, c.datagrams_in - c.passed_undecoded),
        c.duplicated,
        c.held_back,
        c.reordered,
        c.delivered,
        c.held,
        c.passed_undecoded,
        f.socket_drops,
        f.send_errors,
    )
}

fn summary(f: &ImpairFigures, destinations: usize) -> String {
    let (c, e) = (&f.conditioner, &f.expected_receiver);
    let mut out = format!(
        "conditioner: in {} (undecoded {}), dropped {} ({:.2}%), duplicated {}, held back {}, delivered {}, reordered {}\n",
        c.datagrams_in,
        c.passed_undecoded,
        c.dropped,
        percent(c.dropped, c.datagrams_in - c.passed_undecoded),
        c.duplicated,
        c.held_back,
        c.delivered,
        c.reordered,
    );
    out += &format!(
        "relay: sent {} datagrams to {} destination(s), socket drops {}, send errors {}\n",
        f.datagrams_sent, destinations, f.socket_drops, f.send_errors
    );
    if let Some(err) = &f.last_error {
        out += &format!("  last error: {err}\n");
    }
    out += &format!(
        "each receiver must report: expected {}  received {}  lost {}  duplicates {}  reordered {}  malformed {}  restarts {}  (numbers the relay never saw: {})\n",
        e.expected, e.received, e.lost, e.duplicates, e.reordered, e.malformed, e.restarts, e.unseen
    );
    out
}
