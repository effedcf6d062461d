//! The broadcaster's send path, per datagram, on loopback only: one tick of
//! a 20,000-entity world (282 datagrams of up to 1,200 bytes, encoded once
//! beforehand) handed to the kernel for 1 and for 4 receivers, by each
//! [`SendPath`] (`send/<targets>/<path>`); the same tick in batches of 16,
//! 64 and 282 datagrams with GSO (`batch_size/*`), which chose
//! `BATCH_DATAGRAMS`; a connected socket beside an unconnected one
//! (`route/*`: what a route lookup per datagram costs, which decided
//! against connected sockets); and one reading of the protocol's clock
//! (`clock/now_ns`: what stamping each datagram instead of each batch
//! would add).
//!
//! Every receiver is a socket on 127.0.0.1 that is emptied between
//! iterations, outside the timing, so each datagram is delivered, as in a
//! real run; the time includes the kernel's delivery to the receiving
//! sockets, which on loopback runs on the sending thread. Criterion bounds
//! each benchmark's time (about 3 s). Throughput is in datagrams (every
//! receiver counted). Run with `cargo bench --bench send`.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::hint::black_box;
use std::io::{self, IoSlice};
use std::net::{SocketAddr, UdpSocket};
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use nix::sys::socket::{self, MsgFlags, MultiHeaders, SockaddrIn};
use tickcast::core::sender::{Sender, SenderConfig};
use tickcast::core::sim::SimWorld;
use tickcast::runtime::batch::{BatchSender, SendPath, Target};
use tickcast::runtime::clock;

const ENTITIES: u32 = 20_000;

/// One tick of the built-in world, encoded: its datagrams back to back.
fn tick() -> (Vec<u8>, Vec<Range<usize>>) {
    let mut sender = Sender::new(SenderConfig::default()).unwrap();
    let mut world = SimWorld::new(ENTITIES, 1);
    sender
        .push_tick(0, 0, world.positions(0, 60.0))
        .expect("a valid tick");
    let (mut buf, mut ranges) = (Vec::new(), Vec::new());
    while let Some(t) = sender.poll_transmit(0, &mut buf) {
        ranges.push(t.range());
    }
    (buf, ranges)
}

/// A loopback receiver with room for several ticks (forced past
/// `rmem_max` where allowed).
fn receiver() -> UdpSocket {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let bytes = 16 << 20;
    if socket::setsockopt(&sock, socket::sockopt::RcvBufForce, &bytes).is_err() {
        let _ = socket2::SockRef::from(&sock).set_recv_buffer_size(bytes);
    }
    sock.set_nonblocking(true).unwrap();
    sock
}

/// Reads everything waiting on `socks` (bounded: what a tick sent).
fn drain(socks: &[UdpSocket], buf: &mut [u8]) {
    for s in socks {
        for _ in 0..100_000 {
            if s.recv(buf).is_err() {
                break;
            }
        }
    }
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

fn send(c: &mut Criterion) {
    let (buf, datagrams) = tick();
    let mut scratch = vec![0u8; 65536];
    for k in [1usize, 4] {
        let rx: Vec<UdpSocket> = (0..k).map(|_| receiver()).collect();
        let targets: Vec<Target> = rx
            .iter()
            .map(|r| Target::new(r.local_addr().unwrap()))
            .collect();
        let mut g = c.benchmark_group(format!("send/{k}_targets"));
        g.throughput(Throughput::Elements((datagrams.len() * k) as u64));
        for path in SendPath::ALL {
            let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
            let mut s = BatchSender::new(&tx, path);
            assert_eq!(s.path(), path, "this kernel takes {path}");
            g.bench_function(path.name(), |b| {
                b.iter_batched(
                    || drain(&rx, &mut scratch),
                    |()| {
                        s.send(&tx, &buf, &datagrams, &targets, &mut |a, e| {
                            panic!("{a}: {e}")
                        })
                    },
                    BatchSize::PerIteration,
                )
            });
        }
        g.finish();
    }

    // The tick in batches of n datagrams, as the broadcaster sends it.
    let rx = [receiver()];
    let targets = [Target::new(rx[0].local_addr().unwrap())];
    let mut g = c.benchmark_group("batch_size");
    g.throughput(Throughput::Elements(datagrams.len() as u64));
    for n in [16, 64, 128, datagrams.len()] {
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut s = BatchSender::new(&tx, SendPath::Gso);
        g.bench_function(format!("gso_{n}"), |b| {
            b.iter_batched(
                || drain(&rx, &mut scratch),
                |()| {
                    for batch in datagrams.chunks(n) {
                        s.send(&tx, &buf, batch, &targets, &mut |a, e| panic!("{a}: {e}"));
                    }
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();

    // One target, one datagram a call or one sendmmsg: does a connected
    // socket (a cached route) beat a route lookup per datagram?
    let to = rx[0].local_addr().unwrap();
    let SocketAddr::V4(to4) = to else {
        unreachable!("127.0.0.1")
    };
    let mut g = c.benchmark_group("route");
    g.throughput(Throughput::Elements(datagrams.len() as u64));
    let unconnected = UdpSocket::bind("127.0.0.1:0").unwrap();
    let connected = UdpSocket::bind("127.0.0.1:0").unwrap();
    connected.connect(to).unwrap();
    g.bench_function("sendto_unconnected", |b| {
        b.iter_batched(
            || drain(&rx, &mut scratch),
            |()| {
                for d in &datagrams {
                    unconnected.send_to(&buf[d.clone()], to).unwrap();
                }
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("send_connected", |b| {
        b.iter_batched(
            || drain(&rx, &mut scratch),
            |()| {
                for d in &datagrams {
                    connected.send(&buf[d.clone()]).unwrap();
                }
            },
            BatchSize::PerIteration,
        )
    });
    let mut headers = MultiHeaders::<SockaddrIn>::preallocate(datagrams.len(), None);
    let slices: Vec<[IoSlice<'_>; 1]> = datagrams
        .iter()
        .map(|d| [IoSlice::new(&buf[d.clone()])])
        .collect();
    for (name, sock, addr) in [
        (
            "sendmmsg_unconnected",
            &unconnected,
            Some(SockaddrIn::from(to4)),
        ),
        ("sendmmsg_connected", &connected, None),
    ] {
        let addrs = vec![addr; datagrams.len()];
        g.bench_function(name, |b| {
            b.iter_batched(
                || drain(&rx, &mut scratch),
                |()| {
                    let sent = socket::sendmmsg(
                        sock.as_raw_fd(),
                        &mut headers,
                        &slices,
                        &addrs,
                        [] as [socket::ControlMessage; 0],
                        MsgFlags::empty(),
                    )
                    .map_err(io::Error::from)
                    .unwrap();
                    assert_eq!(sent.count(), datagrams.len());
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();

    let mut g = c.benchmark_group("clock");
    g.throughput(Throughput::Elements(1));
    g.bench_function("now_ns", |b| b.iter(|| black_box(clock::now_ns())));
    g.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = send
}
criterion_main!(benches);
