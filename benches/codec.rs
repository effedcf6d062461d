//! Micro-benchmarks of the hot paths, per entity and per packet:
//! encode a full snapshot part, decode + apply it to the world, and the
//! sequence tracker, and sealing plus opening a full part with a key
//! (`per_datagram/seal_and_open`). Run with `cargo bench --bench codec`.
// Tests, benches, examples and the binary own their clocks, sockets and files;
// the layer wall in clippy.toml is for the library core.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;

use tickcast::core::ingest::Ingest;
use tickcast::core::tracker::Tracker;
use tickcast::core::world::WorldWriter;
use tickcast::wire::auth::{self, Key};
use tickcast::wire::{self, Body, Entity, Packet, SnapshotHead};

fn part(n: usize) -> (Packet, Vec<Entity>) {
    let entities = (0..n as u32)
        .map(|id| Entity {
            id,
            x: id as f32,
            y: 1.5,
            z: -2.0,
        })
        .collect();
    let head = SnapshotHead {
        tick: 1,
        scheduled_ns: 1,
        sent_ns: 2,
        part: 0,
        parts: 1,
    };
    (
        Packet {
            session: 1,
            seq: 1,
            body: Body::Snapshot(head),
        },
        entities,
    )
}

fn codec(c: &mut Criterion) {
    let per_part = wire::entities_per_part(wire::DEFAULT_PAYLOAD_BUDGET).unwrap();
    let (packet, entities) = part(per_part);
    let mut buf = vec![0u8; wire::MAX_DATAGRAM];
    let len = wire::encode(&packet, &entities, &mut buf).unwrap();
    let datagram = buf[..len].to_vec();

    let mut g = c.benchmark_group("per_entity");
    g.throughput(Throughput::Elements(per_part as u64));
    g.bench_function("encode", |b| {
        b.iter(|| wire::encode(black_box(&packet), black_box(&entities), &mut buf).unwrap())
    });
    let mut scratch = Vec::with_capacity(per_part);
    g.bench_function("decode", |b| {
        b.iter(|| wire::decode(black_box(&datagram), &mut scratch).unwrap())
    });
    let mut world = WorldWriter::new(1 << 16);
    let mut tick = 0u64;
    g.bench_function("decode_and_apply", |b| {
        b.iter(|| {
            let p = wire::decode(black_box(&datagram), &mut scratch).unwrap();
            tick += 1;
            black_box(p);
            world.apply(1, tick, &scratch)
        })
    });
    g.finish();

    // The whole receive pipeline per datagram (decode, track, apply, measure),
    // each datagram with a fresh sequence number and tick.
    let mut g = c.benchmark_group("per_datagram");
    g.throughput(Throughput::Elements(1));
    g.bench_function("ingest", |b| {
        let mut ingest = Ingest::new(WorldWriter::new(1 << 16));
        let mut seq = 0u32;
        b.iter_batched_ref(
            || {
                seq = seq.wrapping_add(1);
                let mut p = packet;
                p.seq = seq;
                if let Body::Snapshot(h) = &mut p.body {
                    h.tick = seq as u64;
                }
                let n = wire::encode(&p, &entities, &mut buf).unwrap();
                buf[..n].to_vec()
            },
            |d| ingest.handle(d, 10),
            BatchSize::SmallInput,
        )
    });
    // What a key adds per datagram: seal a full part (1,200 bytes with its
    // tag) on the sender, open it on the receiver.
    let key = Key::from_bytes([0x42; auth::KEY_LEN]);
    let sealed_per_part =
        wire::entities_per_part(wire::DEFAULT_PAYLOAD_BUDGET - auth::TAG_LEN).unwrap();
    let (sealed_packet, sealed_entities) = part(sealed_per_part);
    let mut sealed = vec![0u8; wire::DEFAULT_PAYLOAD_BUDGET];
    let n = wire::encode(&sealed_packet, &sealed_entities, &mut sealed).unwrap();
    assert!(n + auth::TAG_LEN <= wire::DEFAULT_PAYLOAD_BUDGET);
    // The MAC covers whatever bytes are there: measure a full 1,200-byte
    // datagram (the part is 1,192 with its tag; zeros fill the rest).
    let packet_len = wire::DEFAULT_PAYLOAD_BUDGET - auth::TAG_LEN;
    g.bench_function("seal_and_open", |b| {
        b.iter(|| {
            let n = auth::seal_into(&key, black_box(&mut sealed), packet_len);
            auth::open(&key, black_box(&sealed[..n])).unwrap().len()
        })
    });
    g.bench_function("tracker_in_order", |b| {
        let mut t = Tracker::new();
        let mut seq = u32::MAX - 1_000;
        b.iter(|| {
            seq = seq.wrapping_add(1);
            t.on_packet(1, black_box(seq))
        })
    });
    g.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
