//! The built-in worlds' cost per entity, so the benchmark of the network
//! path (`tickcast bench`) is known not to be measuring the simulator:
//! `sim/positions` computes one tick of 20,000 entities of the linear world,
//! `sim/positions_players` of the players world (ticks in order, as the
//! broadcaster asks for them: a leg drawn now and then, a parabola each),
//! and `sim/positions_players_250k` of 250,000 of them, beyond the caches;
//! `sim/into_sender`
//! puts a tick into a [`Sender`] by copying it (`copy`: `positions` then
//! `push_tick`) or by computing it in the sender's buffer (`in_place`:
//! `push_tick_with` and `positions_into`, what the broadcaster does). Run
//! with `cargo bench --bench sim`; throughput is in entities.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use tickcast::core::sender::{Sender, SenderConfig};
use tickcast::core::sim::{SimWorld, WorldKind};

const ENTITIES: u32 = 20_000;
/// The players world of the link benchmark's goal.
const LARGE: u32 = 250_000;
const RATE_HZ: f64 = 60.0;

fn sim(c: &mut Criterion) {
    let mut g = c.benchmark_group("sim");
    g.throughput(Throughput::Elements(u64::from(ENTITIES)));
    let mut world = SimWorld::new(ENTITIES, 1);
    let mut tick = 0u64;
    g.bench_function("positions", |b| {
        b.iter(|| {
            tick += 1;
            black_box(world.positions(black_box(tick), RATE_HZ)).len()
        })
    });

    // Ticks in order, each entity counted, for a world of `kind`.
    let mut positions = |name: &str, kind: WorldKind, entities: u32| {
        g.throughput(Throughput::Elements(u64::from(entities)));
        let mut world = SimWorld::with_kind(kind, entities, 1);
        let mut tick = 0u64;
        g.bench_function(name, |b| {
            b.iter(|| {
                tick += 1;
                black_box(world.positions(black_box(tick), RATE_HZ)).len()
            })
        });
    };
    positions("positions_players", WorldKind::Players, ENTITIES);
    // A world far beyond the caches, as the link benchmark runs it: an
    // ending leg's state is then fetched from memory.
    positions("positions_players_250k", WorldKind::Players, LARGE);
    g.throughput(Throughput::Elements(u64::from(ENTITIES)));

    // A sender that has taken one tick already, so its buffer has grown;
    // each iteration pushes into a clone of it (cloned outside the timing).
    let mut warm = Sender::new(SenderConfig::default()).unwrap();
    warm.push_tick(0, 0, world.positions(0, RATE_HZ)).unwrap();
    let mut buf = Vec::new();
    while warm.poll_transmit(0, &mut buf).is_some() {
        buf.clear();
    }
    g.bench_function("into_sender/copy", |b| {
        b.iter_batched(
            || warm.clone(),
            |mut s| {
                tick += 1;
                s.push_tick(tick, 0, world.positions(tick, RATE_HZ))
                    .unwrap();
                s
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("into_sender/in_place", |b| {
        b.iter_batched(
            || warm.clone(),
            |mut s| {
                tick += 1;
                let w = &mut world;
                s.push_tick_with(tick, 0, |buf| w.positions_into(tick, RATE_HZ, buf))
                    .unwrap();
                s
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = sim
}
criterion_main!(benches);
