//! Compact snapshots (protocol version 2, kind 6) per entity, against the
//! goals of at most 10 ns to encode and 10 ns to decode and apply an
//! entity: `compact/encode` is one tick of the built-in world through the
//! [`Encoder`] (quantize, predict, choose the record, bit-pack, split into
//! parts), steady state; `compact/decode_and_apply` is one tick's
//! datagrams through the whole receive pipeline ([`Ingest::handle`]:
//! decode the header and the records, place each entity against its
//! keyframe, apply it to the world), steady state; `full/...` are the same
//! for full parts, for the ratio. `compact_players/...` are the same two
//! for the players world (steering avatars, some at rest: residuals
//! several bits longer than the linear world's). Throughput is in
//! entities. Run with `cargo bench --bench compact`.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tickcast::core::compact::{CompactConfig, Encoder};
use tickcast::core::ingest::Ingest;
use tickcast::core::sender::{Sender, SenderConfig};
use tickcast::core::sim::{SimWorld, WorldKind};
use tickcast::core::world::WorldWriter;
use tickcast::wire::{self, Entity};

const ENTITIES: u32 = 20_000;
const RATE_HZ: f64 = 60.0;
/// Ticks prepared for the receive benchmark: two keyframe cycles.
const TICKS: u64 = 120;

fn ticks(kind: WorldKind) -> Vec<Vec<Entity>> {
    let mut world = SimWorld::with_kind(kind, ENTITIES, 5);
    (0..TICKS + 60)
        .map(|t| world.positions(t, RATE_HZ).to_vec())
        .collect()
}

/// Each tick's datagrams, as a sender with `compact` sends them.
fn datagrams(ticks: &[Vec<Entity>], compact: Option<CompactConfig>) -> Vec<Vec<Vec<u8>>> {
    let mut sender = Sender::new(SenderConfig {
        compact,
        ..SenderConfig::default()
    })
    .unwrap();
    let mut buf = Vec::new();
    ticks
        .iter()
        .enumerate()
        .map(|(t, w)| {
            sender.push_tick(t as u64, t as u64, w).unwrap();
            let mut out = Vec::new();
            while let Some(tr) = sender.poll_transmit(t as u64, &mut buf) {
                out.push(buf[tr.range()].to_vec());
                buf.clear();
            }
            out
        })
        .collect()
}

fn encode(c: &mut Criterion, name: &str, kind: WorldKind) {
    let ticks = ticks(kind);
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(u64::from(ENTITIES)));
    let mut enc = Encoder::new(CompactConfig::default()).unwrap();
    let budget = wire::DEFAULT_PAYLOAD_BUDGET - wire::COMPACT_FIXED_LEN;
    // Warm: every entity has its keyframe and velocity.
    for (t, w) in ticks.iter().enumerate().take(60) {
        enc.encode_tick(t as u64, w, budget).unwrap();
    }
    let mut t = 60u64;
    g.bench_function("encode", |b| {
        b.iter(|| {
            let w = &ticks[(t as usize - 60) % TICKS as usize + 60];
            enc.encode_tick(t, black_box(w), budget).unwrap();
            t += 1;
            black_box(enc.bytes().len())
        })
    });
    g.finish();
}

/// Times each tick's datagrams through a fresh pipeline's steady state:
/// the first 60 ticks (a keyframe cycle) are fed untimed, then ticks are
/// timed one by one; at the end of the prepared ticks the pipeline starts
/// over, untimed.
fn receive(c: &mut Criterion, name: &str, kind: WorldKind, compact: Option<CompactConfig>) {
    let data = datagrams(&ticks(kind), compact);
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(u64::from(ENTITIES)));
    g.bench_function("decode_and_apply", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut ingest = Ingest::new(WorldWriter::new(1 << 20));
            let mut next = data.len();
            for _ in 0..iters {
                if next == data.len() {
                    ingest = Ingest::new(WorldWriter::new(1 << 20));
                    for tick in &data[..60] {
                        for d in tick {
                            ingest.handle(d, 1);
                        }
                    }
                    next = 60;
                }
                let start = Instant::now();
                for d in &data[next] {
                    black_box(ingest.handle(d, 1));
                }
                total += start.elapsed();
                next += 1;
            }
            assert_eq!(ingest.figures().counters.undecodable, 0);
            total
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    let compact = Some(CompactConfig::default());
    encode(c, "compact", WorldKind::Linear);
    receive(c, "compact", WorldKind::Linear, compact);
    receive(c, "full", WorldKind::Linear, None);
    encode(c, "compact_players", WorldKind::Players);
    receive(c, "compact_players", WorldKind::Players, compact);
}

criterion_group!(compact, benches);
criterion_main!(compact);
