//! The full fuzz run of the decoder and the receive pipeline (see
//! `tickcast::fuzz` for what each input is checked for):
//!
//! ```text
//! CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS=true \
//!     cargo run --profile fuzz --example fuzz -- --iterations 10000000 --seed 1
//! ```
//!
//! Prints the report and inputs per second; exits non-zero on any panic,
//! garbage or broken count. Inputs are fed in chunks with a progress line
//! every ten seconds, so a long run shows it is alive.
// Tests, benches, examples and the binary own their clocks, sockets and files;
// the layer wall in clippy.toml is for the library core.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tickcast::fuzz::{Harness, Mutator};

/// Panics whose location is printed; the report keeps the inputs.
const PRINTED_PANICS: u64 = 3;

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("fuzz: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<ExitCode> {
    let (mut iterations, mut seed) = (10_000_000u64, 1u64);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = |name: &str| -> Result<u64> {
            let v = args
                .next()
                .with_context(|| format!("{name} needs a value"))?;
            v.replace('_', "")
                .parse()
                .with_context(|| format!("{name} {v:?} is not a whole number"))
        };
        match flag.as_str() {
            "--iterations" => iterations = value("--iterations")?,
            "--seed" => seed = value("--seed")?,
            other => bail!("unknown argument {other:?} (use --iterations N --seed S)"),
        }
    }
    // A panic is counted and its input kept by the harness; print where the
    // first few happened, then stay quiet so a crash loop cannot flood stderr.
    static PANICS: AtomicU64 = AtomicU64::new(0);
    std::panic::set_hook(Box::new(|info| {
        if PANICS.fetch_add(1, Ordering::Relaxed) < PRINTED_PANICS {
            eprintln!("panic: {info}");
        }
    }));
    eprintln!("fuzzing {iterations} inputs, seed {seed}");
    let start = Instant::now();
    let mut mutator = Mutator::new(seed);
    let mut harness = Harness::new();
    let mut input = Vec::new();
    let mut next_progress = Duration::from_secs(10);
    for i in 0..iterations {
        mutator.next_input(&mut input);
        harness.feed(&input);
        if i % 65_536 == 0 && start.elapsed() >= next_progress {
            eprintln!("  {i} inputs after {:.0?}", start.elapsed());
            next_progress += Duration::from_secs(10);
        }
    }
    let report = harness.finish();
    let secs = start.elapsed().as_secs_f64();
    println!("{report}");
    println!(
        "{} inputs in {secs:.1} s: {:.0} inputs/s",
        report.inputs,
        report.inputs as f64 / secs
    );
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
