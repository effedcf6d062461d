//! End to end through real loopback sockets: a broadcaster sends to an
//! `impair` relay, which forwards to tickcast receivers. Every receiver's
//! figures must equal what the conditioner says they must be, exactly.
//!
//! Only 127.0.0.1 is used; every send loop is bounded, and every wait is
//! bounded (a wait that runs out shows up as an unequal figure, never as a
//! timing assertion).
// Tests, benches, examples and the binary own their clocks, sockets and files;
// the layer wall in clippy.toml is for the library core.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use tickcast::core::conditioner::ConditionerConfig;
use tickcast::core::figures::Figures;
use tickcast::runtime::broadcaster::{BroadcastConfig, BroadcastFigures, Broadcaster};
use tickcast::runtime::receiver::{Receiver, ReceiverConfig};
use tickcast::runtime::relay::{Impair, ImpairConfig, ImpairFigures};

use common::wait_until;

fn loopback() -> SocketAddr {
    (Ipv4Addr::LOCALHOST, 0).into()
}

struct Run {
    broadcast: BroadcastFigures,
    relay: ImpairFigures,
    receivers: Vec<Figures>,
    garbage: u64,
}

/// Receivers ← relay(`spec`) ← a broadcaster of 100 entities at 60 Hz for
/// 2 s (plus `garbage` undecodable datagrams sent to the relay first). After
/// the broadcaster stops and the relay has taken in all it sent, the relay
/// stops (releasing what it holds), then the receivers, once they have it all.
fn run(spec: &str, receivers: usize, garbage: u64) -> Run {
    let rx: Vec<Receiver> = (0..receivers)
        .map(|_| Receiver::start(ReceiverConfig::unicast(loopback())).unwrap())
        .collect();
    let config: ConditionerConfig = spec.parse().unwrap();
    let relay = Impair::start(ImpairConfig::new(
        loopback(),
        rx.iter().map(Receiver::local_addr).collect(),
        config,
    ))
    .unwrap();
    let noise = UdpSocket::bind(loopback()).unwrap();
    for i in 0..garbage {
        noise
            .send_to(format!("not tickcast {i}").as_bytes(), relay.local_addr())
            .unwrap();
    }
    let b = Broadcaster::start(BroadcastConfig {
        destinations: vec![relay.local_addr()],
        entities: 100,
        rate_hz: 60.0,
        duration: Some(Duration::from_secs(2)),
        ..BroadcastConfig::default()
    })
    .unwrap();
    let broadcast = b.wait();
    let sent = broadcast.datagrams_sent + garbage;
    wait_until(Duration::from_secs(5), || {
        relay.counts().datagrams_in >= sent
    });
    let relay = relay.stop().unwrap();
    let delivered = relay.conditioner.delivered;
    wait_until(Duration::from_secs(5), || {
        rx.iter()
            .all(|r| r.figures().counters.datagrams >= delivered)
    });
    let receivers = rx.into_iter().map(|r| r.stop().unwrap()).collect();
    Run {
        broadcast,
        relay,
        receivers,
        garbage,
    }
}

/// The premise (nothing lost outside the conditioner) and the exact equality.
fn assert_exact(spec: &str, run: &Run) {
    let (b, r, e) = (&run.broadcast, &run.relay, &run.relay.expected_receiver);
    eprintln!(
        "{spec}: broadcaster sent {} packets; conditioner {:?}; receivers must report {:?}",
        b.packets_sent, r.conditioner, e
    );
    assert_eq!(b.send_errors, 0, "{:?}", b.last_error);
    assert_eq!(
        r.conditioner.datagrams_in,
        b.datagrams_sent + run.garbage,
        "every datagram sent reached the relay"
    );
    assert_eq!(r.conditioner.passed_undecoded, run.garbage);
    assert_eq!(r.socket_drops, 0, "the relay's socket dropped datagrams");
    assert_eq!(r.send_errors, 0, "{:?}", r.last_error);
    assert_eq!(r.conditioner.held, 0, "stop releases everything held");
    assert_eq!(
        r.datagrams_sent,
        r.conditioner.delivered * run.receivers.len() as u64
    );
    assert_eq!(
        e.unseen, 0,
        "every number in the span went through the relay"
    );
    assert!(e.expected <= b.packets_sent);
    for (i, f) in run.receivers.iter().enumerate() {
        assert_eq!(
            f.counters.socket_drops, 0,
            "receiver {i}'s socket dropped datagrams"
        );
        assert_eq!(
            (
                f.counters.expected,
                f.counters.received,
                f.counters.lost,
                f.counters.duplicates,
                f.counters.reordered
            ),
            (e.expected, e.received, e.lost, e.duplicates, e.reordered),
            "receiver {i}: (expected, received, lost, duplicates, reordered)"
        );
        assert_eq!(
            (
                f.counters.malformed,
                f.counters.control_datagrams,
                f.counters.restarts,
                f.counters.datagrams
            ),
            (e.malformed, e.control_datagrams, e.restarts, e.datagrams),
            "receiver {i}: (malformed, control_datagrams, restarts, datagrams)"
        );
        assert_eq!(f.counters.received + f.counters.lost, f.counters.expected);
    }
}

#[test]
fn lossy_reordering_duplicating_relay_gives_receivers_exactly_the_conditioners_figures() {
    let spec = "loss=0.05,dup=0.02,reorder=0.02,delay=2ms,seed=42";
    let run = run(spec, 2, 5);
    assert_exact(spec, &run);
    // The run exercised every impairment (the seed fixes the fates of the
    // first datagrams, whatever the timing).
    let (c, e) = (&run.relay.conditioner, &run.relay.expected_receiver);
    assert!(
        c.dropped > 0 && c.duplicated > 0 && c.held_back > 0,
        "{c:?}"
    );
    assert!(e.lost > 0 && e.duplicates > 0 && e.reordered > 0, "{e:?}");
    assert_eq!(e.duplicates, c.duplicated, "each copy is one duplicate");
    assert_eq!(e.malformed, 5);
}

#[test]
fn gilbert_elliott_preset_gives_receivers_exactly_the_conditioners_figures() {
    let spec = "preset=bad,seed=7";
    let run = run(spec, 1, 0);
    assert_exact(spec, &run);
    assert!(run.relay.conditioner.dropped > 0);
}

#[test]
fn lan_preset_loses_and_reorders_nothing() {
    let spec = "preset=lan";
    let run = run(spec, 1, 0);
    assert_exact(spec, &run);
    let e = &run.relay.expected_receiver;
    assert_eq!((e.lost, e.reordered, e.duplicates), (0, 0, 0));
    assert_eq!(e.expected, run.broadcast.packets_sent);
}
