//! The cost of drawing a large world on the client:
//! `interpolate/push_tick` pushes one tick of 50,000 entities into a warm
//! [`Interpolator`] (50,000 calls of `push`); `interpolate/sample` draws all
//! 50,000 for one frame (one call of `sample`, into a reused buffer). Run
//! with `cargo bench --bench interpolate`; throughput is in entities.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tickcast::core::interpolate::{InterpolationConfig, Interpolator, Sample};

const ENTITIES: u32 = 50_000;
/// 60 Hz.
const PERIOD_NS: u64 = 16_666_667;
/// The sender's tick 0, ns since the epoch.
const T0: u64 = 1_700_000_000_000_000_000;
/// Arrival − scheduled time: clock difference and path delay.
const OFFSET_NS: u64 = 5_000_000_000 + 20_000_000;

fn push_tick(interp: &mut Interpolator, tick: u64) {
    let tick_ns = T0 + tick * PERIOD_NS;
    for id in 0..ENTITIES {
        let x = id as f32 + tick as f32 * 0.1;
        interp.push(id, tick, tick_ns, tick_ns + OFFSET_NS, [x, 0.5, -x]);
    }
}

fn interpolate(c: &mut Criterion) {
    let mut g = c.benchmark_group("interpolate");
    g.throughput(Throughput::Elements(u64::from(ENTITIES)));
    let mut interp = Interpolator::new(InterpolationConfig::default());
    for tick in 0..10 {
        push_tick(&mut interp, tick);
    }
    let mut tick = 10;
    g.bench_function("push_tick", |b| {
        b.iter(|| {
            push_tick(black_box(&mut interp), tick);
            tick += 1;
        })
    });

    // A frame between the last ticks pushed: every entity interpolated.
    let now = T0 + tick * PERIOD_NS + OFFSET_NS;
    let mut out: Vec<Sample> = Vec::with_capacity(ENTITIES as usize);
    g.bench_function("sample", |b| {
        b.iter(|| {
            interp.sample(black_box(now), &mut out);
            black_box(out.len())
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = interpolate
}
criterion_main!(benches);
