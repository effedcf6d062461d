//! What a game client pays to read a receiver's world, at 50,000 entities
//! (the goal: a tick-consistent read of them costs at most 200 µs a frame):
//!
//! * `client/frame_read`: take the latest frame ([`FeedReader::frame`], a
//!   swap) and walk every entity, summing a coordinate, as a renderer would;
//! * `client/frame_copy`: the same frame copied into the caller's buffer,
//!   what the C ABI's world call does;
//! * `client/world_read_all`: the old way, every entity through the
//!   world's per-page sequence locks ([`World::read_all`]), for comparison;
//! * `client/frame_publish`: the receiver thread's cost of making a frame
//!   (a copy of the world, once per tick);
//! * `client/event`: one event queued by the receiver and drained by the game.
//!
//! Run with `cargo bench --bench client`; throughput is in entities (events).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tickcast::core::feed::{self, Event, EventKind};
use tickcast::core::world::{EntityState, WorldWriter};
use tickcast::wire::Entity;

const ENTITIES: u32 = 50_000;

fn world() -> WorldWriter {
    let mut w = WorldWriter::new(1 << 20);
    let entities: Vec<Entity> = (0..ENTITIES)
        .map(|id| Entity {
            id,
            x: id as f32,
            y: 1.0,
            z: 2.0,
        })
        .collect();
    w.apply(1, 1, &entities);
    w
}

fn client(c: &mut Criterion) {
    let mut g = c.benchmark_group("client");
    g.throughput(Throughput::Elements(u64::from(ENTITIES)));
    let w = world();
    let (mut writer, mut reader) = feed::feed(1024);
    let mut tick = 1;
    writer.frame(&w, 1, tick, 0, true);
    g.bench_function("frame_read", |b| {
        b.iter(|| {
            // The frame is published once and re-read: the swap is one
            // atomic load when nothing is new, and the walk is the cost.
            let f = black_box(reader.frame());
            black_box(f.entities.iter().map(|e| e.x).sum::<f32>())
        })
    });
    let mut out: Vec<EntityState> = Vec::with_capacity(ENTITIES as usize);
    g.bench_function("frame_copy", |b| {
        b.iter(|| {
            out.clear();
            out.extend_from_slice(&reader.frame().entities);
            black_box(out.len())
        })
    });
    let world = w.world().clone();
    g.bench_function("world_read_all", |b| {
        b.iter(|| {
            out.clear();
            world.read_all(&mut out);
            black_box(out.len())
        })
    });
    g.bench_function("frame_publish", |b| {
        b.iter(|| {
            tick += 1;
            writer.frame(&w, 1, tick, 0, true);
        })
    });
    g.throughput(Throughput::Elements(1));
    let mut events = Vec::with_capacity(1);
    g.bench_function("event", |b| {
        b.iter(|| {
            writer.event(Event {
                kind: EventKind::Spawned,
                id: 7,
                tick: 1,
                session: 1,
            });
            events.clear();
            black_box(reader.drain_events(&mut events))
        })
    });
    g.finish();
}

criterion_group!(benches, client);
criterion_main!(benches);
