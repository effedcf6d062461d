//! `tickcast impair`'s flags.

use std::time::Duration;

use clap::Args;

use super::HostPort;
use tickcast::core::conditioner::ConditionerConfig;

/// Flags of `tickcast impair`.
#[derive(Args, Debug)]
pub(crate) struct ImpairArgs {
    /// Address to receive on: the broadcaster's --to.
    #[arg(long, value_name = "ADDR:PORT")]
    pub(crate) listen: HostPort,
    /// Destination to forward to (repeatable): each receiver's address.
    #[arg(long = "to", value_name = "ADDR:PORT", required = true)]
    pub(crate) to: Vec<HostPort>,
    /// Named impairments: lan, wifi, mobile or bad.
    #[arg(long, value_name = "NAME", value_parser = parse_preset)]
    pub(crate) preset: Option<ConditionerConfig>,
    /// Impairments as key=value items, applied on top of --preset, e.g.
    /// loss=0.05,delay=20ms,jitter=5ms,reorder=0.01,gap=20ms,dup=0.01 or
    /// ge=0.01/0.3/0/0.5 for bursty loss.
    #[arg(long, value_name = "SPEC", value_parser = parse_spec)]
    pub(crate) spec: Option<String>,
    /// Seed of the decisions (overrides the spec's seed=); the same seed
    /// gives the same fates to the same stream.
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    /// Stop after this long (e.g. 10s). Default: until Ctrl-C.
    #[arg(long, value_parser = super::parse_run_duration)]
    pub(crate) duration: Option<Duration>,
    /// Print the final figures as one JSON object on stdout.
    #[arg(long)]
    pub(crate) json: bool,
}

pub(crate) fn parse_preset(s: &str) -> Result<ConditionerConfig, String> {
    ConditionerConfig::preset(s).map_err(|e| e.to_string())
}

pub(crate) fn parse_spec(s: &str) -> Result<String, String> {
    s.parse::<ConditionerConfig>()
        .map(|_| s.to_string())
        .map_err(|e| e.to_string())
}
