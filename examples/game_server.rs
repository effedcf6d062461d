//! A small game server that publishes its own world through tickcast: its
//! own fixed-step loop at 60 Hz moves its entities in circles, and every
//! second despawns a few and spawns new ones. The game owns the clock: each
//! step hands its tick and its entities to `Publisher::send`, which
//! returns at once while the broadcast thread sends them.
//!
//! ```text
//! cargo run --release --example game_server -- --to 127.0.0.1:47474 --entities 10000 --seconds 10
//! cargo run --release --example game_client -- --listen 127.0.0.1:47474
//! ```
//!
//! Flags: `--to ADDR` (unicast, repeatable), `--group ADDR` (multicast, on
//! loopback), `--entities N` (default 1000), `--seconds S` (default 10),
//! `--churn N` (entities despawned and spawned each second, default 1 %),
//! `--clock game|tickcast` (default game). It ends standing still for half
//! a second, then prints the digest of its last state, which `game_client`
//! prints too when it holds the same world. Entities move at 3.14 units/s
//! (radius 2, a turn every 4 s).
// Examples own their clocks and threads; the layer wall in clippy.toml is
// for the library core.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use tickcast::wire::Entity;
use tickcast::{BroadcastConfig, Broadcaster, PublishClock};

const RATE_HZ: u64 = 60;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("game_server: {e}");
            ExitCode::from(2)
        }
    }
}

struct Args {
    to: Vec<SocketAddr>,
    group: Option<SocketAddr>,
    entities: u32,
    seconds: u64,
    churn: Option<u32>,
    clock: PublishClock,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        to: Vec::new(),
        group: None,
        entities: 1000,
        seconds: 10,
        churn: None,
        clock: PublishClock::Game,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value:?}: {e}");
        match flag.as_str() {
            "--to" => a.to.push(value.parse().map_err(|e| bad(&e))?),
            "--group" => a.group = Some(value.parse().map_err(|e| bad(&e))?),
            "--entities" => a.entities = value.parse().map_err(|e| bad(&e))?,
            "--seconds" => a.seconds = value.parse().map_err(|e| bad(&e))?,
            "--churn" => a.churn = Some(value.parse().map_err(|e| bad(&e))?),
            "--clock" => {
                a.clock = match value.as_str() {
                    "game" => PublishClock::Game,
                    "tickcast" => PublishClock::Tickcast,
                    _ => return Err(bad(&"not game or tickcast")),
                }
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if a.to.is_empty() && a.group.is_none() {
        a.to.push(SocketAddr::from(([127, 0, 0, 1], 47474)));
    }
    Ok(a)
}

/// The game's state: entities on circles around their own centres.
struct Game {
    entities: Vec<(u32, [f32; 2], f32)>,
    next_id: u32,
    /// Ids that left, and the tick they left at: reused once they have
    /// been gone a second, so ids stay below the receivers' capacity
    /// (2^20 by default) however long the game runs, and every receiver
    /// has seen a frame without an id before it comes back (an id back at
    /// once would look like the old entity moved, not a new one).
    free: std::collections::VecDeque<(u32, u64)>,
    /// A small seeded generator: which entity leaves.
    seed: u64,
}

impl Game {
    /// A new entity at `tick`: an id gone a second or more, else a new one.
    fn spawn(&mut self, tick: u64) {
        let id = match self.free.front() {
            Some(&(id, left)) if tick >= left + RATE_HZ => {
                self.free.pop_front();
                id
            }
            _ => {
                self.next_id += 1;
                self.next_id - 1
            }
        };
        let centre = [(id % 100) as f32 * 10.0, (id / 100 % 100) as f32 * 10.0];
        self.entities.push((id, centre, (id % 17) as f32));
    }

    fn random(&mut self) -> u64 {
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        self.seed
    }

    /// The world at `tick`: radius 2, one turn every 4 s, each its own phase.
    fn positions(&self, tick: u64, out: &mut Vec<Entity>) {
        out.clear();
        let t = tick as f32 / RATE_HZ as f32;
        out.extend(self.entities.iter().map(|&(id, [cx, cy], phase)| {
            let a = t * std::f32::consts::TAU / 4.0 + phase;
            Entity {
                id,
                x: cx + 2.0 * a.cos(),
                y: cy + 2.0 * a.sin(),
                z: 0.0,
            }
        }));
    }
}

fn run() -> Result<(), String> {
    let args = parse()?;
    let config = BroadcastConfig {
        destinations: args.to.clone(),
        group: args.group,
        rate_hz: RATE_HZ as f64,
        ..BroadcastConfig::default()
    };
    let (broadcaster, mut publisher) =
        Broadcaster::start_published(config, args.clock).map_err(|e| e.to_string())?;
    let mut game = Game {
        entities: Vec::new(),
        next_id: 0,
        free: std::collections::VecDeque::new(),
        seed: 0x9e37_79b9_7f4a_7c15,
    };
    for _ in 0..args.entities {
        game.spawn(0);
    }
    let churn = args.churn.unwrap_or((args.entities / 100).max(1));
    let step = Duration::from_nanos(1_000_000_000 / RATE_HZ);
    let start = Instant::now();
    let mut frame = Vec::new();
    let ticks = args.seconds * RATE_HZ;
    for tick in 0..ticks {
        // Every second: some leave, as many arrive (none in the last second,
        // so the end state is the same whatever was lost).
        if tick.is_multiple_of(RATE_HZ) && tick > 0 && tick + RATE_HZ < ticks {
            for _ in 0..churn.min(game.entities.len() as u32) {
                let i = (game.random() % game.entities.len() as u64) as usize;
                let (gone, ..) = game.entities.swap_remove(i);
                game.free.push_back((gone, tick));
                game.spawn(tick);
            }
        }
        game.positions(tick, &mut frame);
        match args.clock {
            PublishClock::Game => publisher.send(tick, &frame),
            _ => publisher.publish(&frame),
        }
        .map_err(|e| e.to_string())?;
        // The game's own fixed step, on absolute deadlines.
        if let Some(wait) =
            (start + step * (tick as u32 + 1)).checked_duration_since(Instant::now())
        {
            std::thread::sleep(wait);
        }
    }
    // The game ends standing still: its last state is sent for another
    // half second, so every receiver ends with it whatever was lost.
    for tick in ticks..ticks + RATE_HZ / 2 {
        match args.clock {
            PublishClock::Game => publisher.send(tick, &frame),
            _ => publisher.publish(&frame),
        }
        .map_err(|e| e.to_string())?;
        std::thread::sleep(step);
    }
    let f = broadcaster.stop();
    frame.sort_by_key(|e| e.id);
    println!(
        "sent {} ticks, {} datagrams; spawned {}, despawned {}; {} entities at the end",
        f.ticks_sent, f.datagrams_sent, f.spawned, f.despawned, f.live_entities
    );
    println!(
        "final entities {} digest {:016x}",
        frame.len(),
        digest(&frame)
    );
    if f.datagrams_sent == 0 {
        return Err("nothing was sent".into());
    }
    Ok(())
}

/// FNV-1a over every entity's id and coordinate bits, in id order.
fn digest(entities: &[Entity]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for e in entities {
        for w in [e.id, e.x.to_bits(), e.y.to_bits(), e.z.to_bits()] {
            for b in w.to_le_bytes() {
                h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
            }
        }
    }
    h
}
