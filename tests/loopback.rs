//! A real broadcaster drives real receivers over loopback (unicast and
//! multicast with the outgoing interface set to 127.0.0.1): every figure must
//! agree exactly with what the broadcaster says it sent.
//!
//! No test here asserts how fast anything is; waits are generous (≤ 10 s)
//! and only behaviour is checked.
// Tests, benches, examples and the binary own their clocks, sockets and files;
// the layer wall in clippy.toml is for the library core.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::{collect_until_goodbye, free_udp_port, last_tick, tap, wait_until};
use tickcast::core::figures::Figures;
use tickcast::core::sim::SimWorld;
use tickcast::runtime::broadcaster::{BroadcastConfig, BroadcastFigures, Broadcaster};
use tickcast::runtime::receiver::{ReceiveMode, Receiver, ReceiverConfig};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// Longest wait for anything in flight to arrive.
const PATIENCE: Duration = Duration::from_secs(10);

fn unicast_receiver() -> Receiver {
    Receiver::start(ReceiverConfig::unicast((Ipv4Addr::LOCALHOST, 0).into())).unwrap()
}

/// Waits until `r` has handled every datagram `b` sent to it (one per
/// packet), then a short grace so a stray extra datagram would show too.
fn settle(r: &Receiver, b: &BroadcastFigures) -> Figures {
    let arrived = wait_until(PATIENCE, || {
        r.figures().counters.datagrams >= b.packets_sent
    });
    std::thread::sleep(Duration::from_millis(200));
    let f = r.figures();
    assert!(
        arrived,
        "only {} of {} datagrams arrived: {f:?}",
        f.counters.datagrams, b.packets_sent
    );
    f
}

/// Exact agreement of one receiver with the broadcaster that fed it alone.
fn assert_got_everything(f: &Figures, b: &BroadcastFigures) {
    assert_eq!(f.counters.lost, 0, "{f:?}");
    assert_eq!(f.counters.expected, b.packets_sent, "{f:?}");
    assert_eq!(f.counters.received, b.packets_sent, "{f:?}");
    assert_eq!(f.counters.received + f.counters.lost, f.counters.expected);
    assert_eq!(
        (
            f.counters.duplicates,
            f.counters.reordered,
            f.counters.stale
        ),
        (0, 0, 0),
        "{f:?}"
    );
    assert_eq!(f.counters.malformed, 0, "{f:?}");
    assert!(f.goodbye, "{f:?}");
    assert_eq!(f.sender_packets_sent, Some(b.packets_sent));
}

#[test]
fn two_receivers_get_every_packet_and_the_sim_world_exactly() {
    let rxs = [unicast_receiver(), unicast_receiver()];
    let config = BroadcastConfig {
        destinations: rxs.iter().map(Receiver::local_addr).collect(),
        entities: 100,
        rate_hz: 60.0,
        duration: Some(Duration::from_secs(3)),
        ..BroadcastConfig::default()
    };
    let (entities, seed, rate) = (config.entities, config.seed, config.rate_hz);
    let b = Broadcaster::start(config).unwrap().wait();
    // A 3 s run is 180 ticks, each either sent or skipped.
    assert_eq!(b.ticks_sent + b.ticks_skipped, 180, "{b:?}");
    assert_eq!(b.send_errors, 0, "{b:?}");

    let mut sim = SimWorld::new(entities, seed);
    for r in &rxs {
        let f = settle(r, &b);
        assert_got_everything(&f, &b);
        // Skipped ticks are neither sent nor applied.
        assert_eq!(f.counters.ticks_applied, b.ticks_sent, "{f:?}");

        let world = r.world();
        assert_eq!(world.len(), entities as usize);
        let count = world.count().expect("ticks were applied");
        assert_eq!(f.count, Some(count));
        let want = sim.positions(count, rate);
        let mut got = Vec::new();
        world.read_all(&mut got);
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g.id, w.id);
            assert_eq!(g.tick, count, "entity {} is behind the count", g.id);
            assert_eq!(
                [g.x.to_bits(), g.y.to_bits(), g.z.to_bits()],
                [w.x.to_bits(), w.y.to_bits(), w.z.to_bits()],
                "entity {} at tick {count}: got {g:?}, sim says {w:?}",
                g.id
            );
        }
    }
}

#[test]
fn multicast_on_loopback_reaches_every_member_sharing_the_port() {
    let group: SocketAddr = (Ipv4Addr::new(239, 255, 74, 1), free_udp_port()).into();
    let rxs: Vec<Receiver> = (0..3)
        .map(|_| Receiver::start(ReceiverConfig::multicast(group, LOCALHOST)).unwrap())
        .collect();
    let b = Broadcaster::start(BroadcastConfig {
        group: Some(group),
        interface: LOCALHOST,
        multicast_loop: true,
        multicast_ttl: 1,
        duration: Some(Duration::from_secs(1)),
        ..BroadcastConfig::default()
    })
    .unwrap()
    .wait();
    assert_eq!(b.send_errors, 0, "{b:?}");
    assert!(b.ticks_sent > 0, "{b:?}");
    for r in &rxs {
        let f = settle(r, &b);
        assert_got_everything(&f, &b);
        assert_eq!(f.counters.ticks_applied, b.ticks_sent, "{f:?}");
    }
}

/// Runs broadcaster `session` at 60 Hz for `duration` to `to` and to a tap,
/// and returns its figures and the newest tick it sent.
fn run_session(to: SocketAddr, session: u64, duration: Duration) -> (BroadcastFigures, u64) {
    let tap = tap();
    let b = Broadcaster::start(BroadcastConfig {
        destinations: vec![to, tap.local_addr().unwrap()],
        duration: Some(duration),
        session: Some(session),
        ..BroadcastConfig::default()
    })
    .unwrap()
    .wait();
    let last = last_tick(&collect_until_goodbye(&tap, PATIENCE)).expect("the tap saw ticks");
    (b, last)
}

#[test]
fn restarted_broadcaster_is_a_new_session_not_stale() {
    let r = unicast_receiver();
    let to = r.local_addr();

    let (a, _) = run_session(to, 1, Duration::from_secs(1));
    let fa = settle(&r, &a);
    assert_got_everything(&fa, &a);
    let a_count = r.world().count().expect("A's ticks were applied");

    let (b, b_last) = run_session(to, 2, Duration::from_millis(500));
    let arrived = wait_until(PATIENCE, || {
        r.figures().counters.datagrams >= a.packets_sent + b.packets_sent
    });
    std::thread::sleep(Duration::from_millis(200));
    let f = r.stop().unwrap();
    assert!(arrived, "{f:?}");

    assert_eq!(f.counters.restarts, 1, "{f:?}");
    assert!(
        b_last < a_count,
        "B counts from 0: {b_last} vs A's {a_count}"
    );
    assert_eq!(f.count, Some(b_last), "the world follows B at once: {f:?}");
    assert_eq!(f.counters.received + f.counters.lost, f.counters.expected);
    assert_eq!(f.counters.lost, 0, "{f:?}");
    assert_eq!(
        f.counters.expected,
        a.packets_sent + b.packets_sent,
        "{f:?}"
    );
    assert_eq!(
        f.counters.ticks_applied,
        a.ticks_sent + b.ticks_sent,
        "{f:?}"
    );
    assert_eq!(f.counters.stale, 0, "{f:?}");
    assert!(f.goodbye, "B's goodbye: {f:?}");
}

#[test]
fn world_resyncs_to_a_restarted_broadcaster_on_its_first_tick() {
    let r = unicast_receiver();
    let to = r.local_addr();
    // A ticks fast so its count is far above anything B reaches while this
    // test looks (B would need 10 s at 60 Hz to reach 600).
    let a = Broadcaster::start(BroadcastConfig {
        destinations: vec![to],
        rate_hz: 600.0,
        duration: Some(Duration::from_secs(1)),
        session: Some(1),
        ..BroadcastConfig::default()
    })
    .unwrap()
    .wait();
    settle(&r, &a);
    let a_count = r.world().count().expect("A's ticks were applied");

    let b = Broadcaster::start(BroadcastConfig {
        destinations: vec![to],
        duration: Some(Duration::from_secs(60)),
        session: Some(2),
        ..BroadcastConfig::default()
    })
    .unwrap();
    // The first figures that show the restart: restarts and count are read
    // together, under the receiver's lock.
    let mut seen = None;
    wait_until(PATIENCE, || {
        let f = r.figures();
        let restarted = f.counters.restarts == 1;
        seen = restarted.then_some(f);
        restarted
    });
    let world_count = r.world().count();
    let bf = b.stop();
    // Until B's goodbye is in (bounded): then every tick of B's is.
    let goodbye = wait_until(PATIENCE, || r.figures().goodbye);
    let end = r.stop().unwrap();
    assert!(goodbye, "B's goodbye never arrived: {end:?}");
    let seen = seen.expect("the receiver saw B's session within 10 s");
    let count = seen.count.expect("B's first packet set the count");
    let b_last = (bf.ticks_sent + bf.ticks_skipped).saturating_sub(1);

    assert!(
        count < a_count,
        "count {count} stayed on A's ticks (A ended at {a_count})"
    );
    assert!(count <= b_last, "count {count} is not one of B's ticks");
    let world_count = world_count.expect("a count");
    assert!(
        (count..=b_last).contains(&world_count),
        "world count {world_count} is not on B's ticks (first seen {count}, B ended at {b_last})"
    );
    // Every tick of both was applied: none of B's, from its first on, was
    // taken for stale against A's higher count.
    assert_eq!(end.counters.lost, 0, "{end:?}");
    assert_eq!(
        end.counters.ticks_applied,
        a.ticks_sent + bf.ticks_sent,
        "A sent {} ticks and B {}: {end:?}",
        a.ticks_sent,
        bf.ticks_sent
    );
}

#[test]
fn sequence_wrap_loses_and_reorders_nothing() {
    let r = unicast_receiver();
    let first_seq = u32::MAX - 30;
    let config = BroadcastConfig {
        destinations: vec![r.local_addr()],
        entities: 300,
        rate_hz: 60.0,
        duration: Some(Duration::from_secs(1)),
        first_seq: Some(first_seq),
        ..BroadcastConfig::default()
    };
    let per_part = tickcast::wire::entities_per_part(config.payload_budget).unwrap();
    assert_eq!(300usize.div_ceil(per_part), 5, "5 parts per tick");
    let b = Broadcaster::start(config).unwrap().wait();
    assert!(
        b.packets_sent > 31,
        "the run must cross the wrap: {} packets",
        b.packets_sent
    );
    let f = settle(&r, &b);
    assert_got_everything(&f, &b);
    assert_eq!(f.counters.ticks_applied, b.ticks_sent, "{f:?}");
    assert_eq!(
        (f.counters.lost, f.counters.reordered, f.counters.duplicates),
        (0, 0, 0),
        "across the wrap: {f:?}"
    );
}

/// Every receive mode gets every packet; predict mode also follows a
/// restarted broadcaster (its ticks start again from 0). Latency and CPU of
/// the modes are measured by `tickcast bench`, not here.
#[test]
fn every_receive_mode_gets_every_packet_across_a_restart() {
    for mode in [ReceiveMode::Predict, ReceiveMode::BusyPoll] {
        let r = Receiver::start(ReceiverConfig {
            mode,
            ..ReceiverConfig::unicast((Ipv4Addr::LOCALHOST, 0).into())
        })
        .unwrap();
        let mut sent = 0;
        for session in [1, 2] {
            let (b, _) = run_session(r.local_addr(), session, Duration::from_millis(700));
            sent += b.packets_sent;
            assert!(wait_until(PATIENCE, || r.figures().counters.received == sent));
        }
        let f = r.stop().unwrap();
        assert_eq!(
            (f.counters.expected, f.counters.received, f.counters.lost),
            (sent, sent, 0),
            "{mode:?}"
        );
        assert_eq!(f.counters.restarts, 1, "{mode:?}");
    }
}
