//! A game client: a 60 fps loop that reads interpolated positions from a
//! tickcast receiver each frame and renders them as text, reacting to the
//! receiver's events (spawns, despawns, the stream's end).
//!
//! ```text
//! cargo run --release --example game_client -- --listen 127.0.0.1:47474
//! ```
//!
//! Flags: `--listen ADDR` (unicast), `--group ADDR` (multicast on
//! loopback), `--seconds S` (give up after, default 30), `--quiet` (only
//! the final lines). It ends when the server says goodbye and prints the
//! digest of its world, which equals the server's when it holds the same.
// Examples own their clocks and threads; the layer wall in clippy.toml is
// for the library core.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use tickcast::core::feed::EventKind;
use tickcast::core::interpolate::SampleMode;
use tickcast::{ClientConfig, Receiver, ReceiverConfig};

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("game_client: {e}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<ExitCode, String> {
    let (mut listen, mut group, mut seconds, mut quiet) = (None, None, 30u64, false);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--quiet" {
            quiet = true;
            continue;
        }
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value:?}: {e}");
        match flag.as_str() {
            "--listen" => listen = Some(value.parse::<SocketAddr>().map_err(|e| bad(&e))?),
            "--group" => group = Some(value.parse::<SocketAddr>().map_err(|e| bad(&e))?),
            "--seconds" => seconds = value.parse().map_err(|e| bad(&e))?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    let mut config = match group {
        Some(g) => ReceiverConfig::multicast(g, IpAddr::V4(Ipv4Addr::LOCALHOST)),
        None => {
            ReceiverConfig::unicast(listen.unwrap_or(SocketAddr::from(([127, 0, 0, 1], 47474))))
        }
    };
    config.client = Some(ClientConfig::default());
    let receiver = Receiver::start(config).map_err(|e| e.to_string())?;
    let mut client = receiver.take_client().expect("started with a client");
    println!("listening on {}", receiver.local_addr());

    let frame_time = Duration::from_nanos(1_000_000_000 / 60);
    let (start, mut samples, mut events) = (Instant::now(), Vec::new(), Vec::new());
    let (mut spawned, mut despawned, mut ended) = (0u64, 0u64, false);
    let mut frame_no = 0u64;
    // Continuity: the fastest an entity moved between two frames, in
    // units per second (each step over the time between the two samples).
    // The first second of data is kept apart: the interpolator is still
    // learning the tick period and the clock offset then.
    let (mut previous, mut max_speed, mut sampled_at) = (Vec::new(), [0f64; 2], None::<u64>);
    let mut frames_with_data = 0u64;
    while start.elapsed() < Duration::from_secs(seconds) && !ended {
        // One render frame: events first, then where to draw everything.
        events.clear();
        client.drain_events(&mut events);
        for e in &events {
            match e.kind {
                EventKind::Spawned => spawned += 1,
                EventKind::Despawned => despawned += 1,
                EventKind::StreamEnded => ended = true,
                _ => {}
            }
        }
        // One clock reading for the frame: where everything is drawn.
        let now = tickcast::runtime::clock::now_ns();
        client.sample_at(now, &mut samples);
        // The wall clock may step back between two frames: no speed then.
        if let Some(before) = sampled_at.filter(|&b| now > b) {
            let dt = (now - before) as f64 / 1e9;
            let v = f64::from(largest_step(&previous, &samples)) / dt;
            let settled = usize::from(frames_with_data > 60);
            max_speed[settled] = max_speed[settled].max(v);
        }
        if !samples.is_empty() {
            frames_with_data += 1;
        }
        sampled_at = Some(now);
        std::mem::swap(&mut previous, &mut samples);
        let samples = &previous;
        if !quiet && frame_no.is_multiple_of(60) {
            render(
                frame_no,
                samples,
                &client.interpolation_figures(),
                client.interpolation_delay_ns(),
            );
        }
        frame_no += 1;
        if let Some(wait) =
            (start + frame_time * frame_no as u32).checked_duration_since(Instant::now())
        {
            std::thread::sleep(wait);
        }
    }
    let delay_ns = client.interpolation_delay_ns();
    let frame = client.frame();
    let figures = receiver.stop().map_err(|e| e.to_string())?;
    println!(
        "received {} of {} datagrams ({} lost); spawned {spawned}, despawned {despawned}; \
         interpolation delay {:.1} ms; fastest move between two frames {:.2} units/s ({:.2} in the first second)",
        figures.counters.received,
        figures.counters.expected,
        figures.counters.lost,
        delay_ns as f64 / 1e6,
        max_speed[1],
        max_speed[0],
    );
    let digest = digest(
        frame
            .entities
            .iter()
            .map(|e| [e.id, e.x.to_bits(), e.y.to_bits(), e.z.to_bits()]),
    );
    println!(
        "final entities {} digest {digest:016x}",
        frame.entities.len()
    );
    if figures.counters.received == 0 {
        eprintln!("game_client: nothing was received");
        return Ok(ExitCode::FAILURE);
    }
    Ok(if ended {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The largest distance an entity moved from `before` to `after` (both
/// ascending by id; entities in only one are new or gone).
fn largest_step(
    before: &[tickcast::core::interpolate::Sample],
    after: &[tickcast::core::interpolate::Sample],
) -> f32 {
    let mut b = before.iter().peekable();
    let mut largest = 0f32;
    for a in after {
        while b.next_if(|s| s.id < a.id).is_some() {}
        if let Some(s) = b.peek().filter(|s| s.id == a.id) {
            let d = ((a.x - s.x).powi(2) + (a.y - s.y).powi(2) + (a.z - s.z).powi(2)).sqrt();
            largest = largest.max(d);
        }
    }
    largest
}

/// One line of text for the frame, and the first three entities.
fn render(
    frame_no: u64,
    samples: &[tickcast::core::interpolate::Sample],
    f: &tickcast::core::interpolate::InterpolationFigures,
    delay_ns: u64,
) {
    let count = |m| samples.iter().filter(|s| s.mode == m).count();
    let shown: Vec<String> = samples
        .iter()
        .take(3)
        .map(|s| format!("#{} ({:.2}, {:.2}, {:.2})", s.id, s.x, s.y, s.z))
        .collect();
    println!(
        "frame {frame_no}: {} entities ({} interpolated, {} extrapolated, {} held) delay {:.1} ms; {}; totals {} / {} / {}",
        samples.len(),
        count(SampleMode::Interpolated),
        count(SampleMode::Extrapolated),
        count(SampleMode::Held),
        delay_ns as f64 / 1e6,
        shown.join(" "),
        f.interpolated,
        f.extrapolated,
        f.held,
    );
}

/// FNV-1a over every entity's id and coordinate bits, in id order (the
/// same as `game_server`'s).
fn digest(words: impl Iterator<Item = [u32; 4]>) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for w in words.flatten() {
        for b in w.to_le_bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    h
}
