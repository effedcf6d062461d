//! The receive path over loopback, per datagram. Run with
//! `cargo bench --bench receive`.
//!
//! * `receive/recvmsg_each` and `receive/recvmmsg_batch`: taking a burst of
//!   64 datagrams of 1,200 bytes off a socket, one `recvmsg` per datagram
//!   (the receiver before batching) against `recvmmsg` batches of up to 32
//!   with the kernel's arrival stamps (the receiver now). Wall time of the
//!   receiving thread; the sends are not timed.
//! * `figures_reader/idle` and `figures_reader/hammered`: the receiver
//!   thread's own CPU time (from `/proc/self/task/<tid>/schedstat`) per
//!   datagram of a real stream, without and with another thread calling
//!   `Receiver::figures()` in a tight loop: issue 11 item 4 says a reader
//!   must not raise it. The ratio of the two is the figure to quote.
//!
//! Every send goes to 127.0.0.1 and is bounded: 64 datagrams per iteration,
//! at most `MAX_ITERS` iterations per sample (criterion's time per
//! iteration is then extrapolated from those), and criterion's measurement
//! time bounds the samples.
// Tests, benches, examples and the binary own their clocks, sockets and files;
// the layer wall in clippy.toml is for the library core.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use tickcast::bench::usage;
use tickcast::runtime::mmsg::RecvBatch;
use tickcast::runtime::receiver::{self, Receiver, ReceiverConfig};
use tickcast::runtime::{clock, net};
use tickcast::wire::{self, Body, Entity, Packet, SnapshotHead};

/// Datagrams per iteration.
const BURST: usize = 64;
/// Most iterations run per sample; criterion's count beyond it is
/// extrapolated from the time of these, so no sample sends without bound.
const MAX_ITERS: u64 = 300;
/// Longest wait for a burst to be taken before the bench gives up.
const STUCK: Duration = Duration::from_secs(5);

/// A snapshot part of `tick` carrying as many entities as a 1,200-byte
/// datagram holds, stamped now.
fn part(seq: u32, tick: u64) -> Vec<u8> {
    let per_part = wire::entities_per_part(wire::DEFAULT_PAYLOAD_BUDGET).unwrap();
    let entities: Vec<Entity> = (0..per_part as u32)
        .map(|id| Entity {
            id,
            x: tick as f32,
            y: 1.5,
            z: -2.0,
        })
        .collect();
    let now = clock::now_ns();
    let head = SnapshotHead {
        tick,
        scheduled_ns: now,
        sent_ns: now,
        part: 0,
        parts: 1,
    };
    let p = Packet {
        session: 0x5eed,
        seq,
        body: Body::Snapshot(head),
    };
    wire::encode_to_vec(&p, &entities).unwrap()
}

/// A receive socket on loopback with room for many bursts, and a sender.
fn sockets() -> (UdpSocket, UdpSocket, SocketAddr) {
    let rx = net::unicast_socket(
        "127.0.0.1:0".parse().unwrap(),
        Some(receiver::DEFAULT_RECV_BUFFER),
    )
    .unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = rx.local_addr().unwrap();
    (rx, tx, to)
}

/// Runs `one` (which sends and takes one burst, returning the time to
/// count) `min(iters, MAX_ITERS)` times and scales the total to `iters`.
fn bounded(iters: u64, mut one: impl FnMut() -> Duration) -> Duration {
    let run = iters.clamp(1, MAX_ITERS);
    let total: Duration = (0..run).map(|_| one()).sum();
    total.mul_f64(iters as f64 / run as f64)
}

fn receive_path(c: &mut Criterion) {
    let datagram = part(1, 1);
    let mut g = c.benchmark_group("receive");
    g.throughput(Throughput::Elements(BURST as u64));
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));

    let (rx, tx, to) = sockets();
    let (mut buf, mut cmsg) = (vec![0u8; 1 << 16], Vec::new());
    g.bench_function("recvmsg_each", |b| {
        b.iter_custom(|iters| {
            bounded(iters, || {
                for _ in 0..BURST {
                    tx.send_to(&datagram, to).unwrap();
                }
                let start = Instant::now();
                let mut got = 0;
                while got < BURST && start.elapsed() < STUCK {
                    if net::recv_from_counting_drops(&rx, &mut buf, &mut cmsg).is_ok() {
                        got += 1;
                    }
                }
                start.elapsed()
            })
        })
    });

    let (rx, tx, to) = sockets();
    net::enable_arrival_stamps(&rx);
    let mut batch = RecvBatch::new();
    g.bench_function("recvmmsg_batch", |b| {
        b.iter_custom(|iters| {
            bounded(iters, || {
                for _ in 0..BURST {
                    tx.send_to(&datagram, to).unwrap();
                }
                let start = Instant::now();
                let mut got = 0;
                while got < BURST && start.elapsed() < STUCK {
                    if let Ok(n) = batch.recv(&rx) {
                        got += n;
                    }
                }
                start.elapsed()
            })
        })
    });
    g.finish();
}

/// A receiver on loopback, its thread's id, and where to send to it.
fn receiver() -> (Arc<Receiver>, u32, SocketAddr) {
    let before = usage::threads_named(receiver::THREAD_NAME);
    let rx = Receiver::start(ReceiverConfig::unicast("127.0.0.1:0".parse().unwrap())).unwrap();
    let tid = usage::new_thread_named(receiver::THREAD_NAME, &before, Duration::from_secs(1))
        .expect("the receiver thread (Linux /proc)");
    let to = rx.local_addr();
    (Arc::new(rx), tid, to)
}

fn figures_reader(c: &mut Criterion) {
    let mut g = c.benchmark_group("figures_reader");
    g.throughput(Throughput::Elements(BURST as u64));
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    for hammered in [false, true] {
        let (rx, tid, to) = receiver();
        let world = rx.world().clone();
        let stop = Arc::new(AtomicBool::new(false));
        let reader = hammered.then(|| {
            let (rx, stop) = (Arc::clone(&rx), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut reads = 0u64;
                // Bounded by the stop flag, raised when the bench ends.
                while !stop.load(Ordering::Relaxed) {
                    std::hint::black_box(rx.figures());
                    reads += 1;
                }
                reads
            })
        });
        let mut seq = 0u32;
        let name = if hammered { "hammered" } else { "idle" };
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                bounded(iters, || {
                    let before = usage::thread_cpu(tid).unwrap_or_default();
                    for _ in 0..BURST {
                        seq += 1;
                        tx.send_to(&part(seq, u64::from(seq)), to).unwrap();
                    }
                    let start = Instant::now();
                    // Sleeps, so this thread leaves the CPUs to the
                    // receiver and the reader.
                    while world.count() != Some(u64::from(seq)) && start.elapsed() < STUCK {
                        std::thread::sleep(Duration::from_micros(20));
                    }
                    usage::thread_cpu(tid)
                        .unwrap_or_default()
                        .saturating_sub(before)
                })
            })
        });
        stop.store(true, Ordering::Relaxed);
        if let Some(r) = reader {
            let reads = r.join().unwrap();
            eprintln!("figures_reader/hammered: the reader called figures() {reads} times");
        }
        let f = rx.figures();
        assert_eq!(f.counters.lost, 0, "the stream arrived whole");
    }
    g.finish();
}

criterion_group!(benches, receive_path, figures_reader);
criterion_main!(benches);
