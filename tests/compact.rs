//! Compact snapshots (protocol version 2, kind 6) end to end: the bytes an
//! entity update costs on the wire, a broadcaster and a receiver over
//! loopback holding the quantized world exactly, and a late joiner holding
//! every entity within one keyframe cycle.
// Tests own their clocks, sockets and threads; the layer wall in
// clippy.toml is for the library core.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use tickcast::core::compact::{quantized, CompactConfig};
use tickcast::core::feed::EventKind;
use tickcast::core::sender::{Sender, SenderConfig};
use tickcast::core::sim::{SimWorld, WorldKind};
use tickcast::{BroadcastConfig, Broadcaster, ClientConfig, Receiver, ReceiverConfig};

/// Wire bytes (UDP payload, headers included) per entity update of the
/// built-in linear world, every entity moving, at 60 Hz.
fn bytes_per_update(compact: Option<CompactConfig>, entities: u32, ticks: u64) -> f64 {
    bytes_per_update_of(WorldKind::Linear, compact, entities, ticks)
}

fn bytes_per_update_of(
    kind: WorldKind,
    compact: Option<CompactConfig>,
    entities: u32,
    ticks: u64,
) -> f64 {
    let mut sender = Sender::new(SenderConfig {
        compact,
        ..SenderConfig::default()
    })
    .unwrap();
    let mut world = SimWorld::with_kind(kind, entities, 7);
    let (mut bytes, mut buf) = (0usize, Vec::new());
    for tick in 0..ticks {
        sender
            .push_tick_with(tick, tick, |b| world.positions_into(tick, 60.0, b))
            .unwrap();
        while let Some(t) = sender.poll_transmit(tick, &mut buf) {
            bytes += t.len;
            buf.clear();
        }
    }
    bytes as f64 / (f64::from(entities) * ticks as f64)
}

#[test]
fn a_moving_entity_costs_under_four_bytes_on_the_wire() {
    let full = bytes_per_update(None, 20_000, 120);
    let compact = bytes_per_update(Some(CompactConfig::default()), 20_000, 120);
    println!("linear world, 20,000 entities, 120 ticks: {full:.2} bytes an update full, {compact:.2} compact");
    assert!((16.0..17.0).contains(&full), "{full}");
    assert!(compact <= 4.0, "{compact}");
}

#[test]
fn a_running_player_costs_under_six_bytes_on_the_wire() {
    // Every entity update counts, the standing ones (left out) too: the
    // goal is per update of a world in which a fifth stand still.
    let full = bytes_per_update_of(WorldKind::Players, None, 20_000, 240);
    let compact = bytes_per_update_of(
        WorldKind::Players,
        Some(CompactConfig::default()),
        20_000,
        240,
    );
    println!("players world, 20,000 entities, 240 ticks: {full:.2} bytes an update full, {compact:.2} compact");
    assert!((16.0..17.0).contains(&full), "{full}");
    assert!(compact <= 6.0, "{compact}");
}

#[test]
fn a_receiver_holds_the_quantized_world_and_a_late_one_every_entity_within_a_cycle() {
    const N: u32 = 3000;
    let rx = |_: ()| {
        Receiver::start(ReceiverConfig::unicast(SocketAddr::from((
            Ipv4Addr::LOCALHOST,
            0,
        ))))
        .unwrap()
    };
    let (early, late) = (rx(()), rx(()));
    let config = CompactConfig::default();
    let b = Broadcaster::start(BroadcastConfig {
        destinations: vec![early.local_addr()],
        entities: N,
        seed: 3,
        rate_hz: 120.0,
        duration: Some(Duration::from_secs(3)),
        compact: Some(config),
        max_subscribers: 64,
        bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        ..BroadcastConfig::default()
    })
    .unwrap();
    // The late receiver subscribes a second in: it starts mid-stream.
    std::thread::sleep(Duration::from_secs(1));
    let late = {
        drop(late);
        Receiver::start(ReceiverConfig {
            client: Some(ClientConfig::default()),
            ..ReceiverConfig::subscribe(b.local_addr())
        })
        .unwrap()
    };
    let mut client = late.take_client().expect("a client was asked for");
    let joined = Instant::now();
    let world = late.world().clone();
    assert!(
        common::wait_until(Duration::from_secs(2), || world.len() == N as usize),
        "the late receiver holds {} of {N}",
        world.len()
    );
    let waited = joined.elapsed();
    // Each entity's spawn event carries the tick it first arrived in: the
    // wait, counted in the stream's ticks, which a loaded machine does not
    // stretch as it does wall-clock time.
    // The world counts an entity a moment before its spawn event is
    // queued: drained until all N are in (bounded).
    let mut events = Vec::new();
    let mut spawns: Vec<u64> = Vec::new();
    common::wait_until(Duration::from_secs(2), || {
        events.clear();
        client.drain_events(&mut events);
        spawns.extend(
            events
                .iter()
                .filter(|e| e.kind == EventKind::Spawned)
                .map(|e| e.tick),
        );
        spawns.len() >= N as usize
    });
    assert_eq!(spawns.len(), N as usize, "one spawn an entity");
    let (first, whole) = (spawns.iter().min(), spawns.iter().max());
    let ticks = whole.unwrap_or(&0) - first.unwrap_or(&0);
    println!(
        "late joiner held all {N} entities {ticks} ticks after its first, {:.0} ms after it started",
        waited.as_secs_f64() * 1e3
    );
    // One keyframe cycle is 60 ticks: each entity's scheduled keyframe
    // comes within it of the first tick taken whole (the first tick it
    // took may have begun before it joined).
    let cycle = u64::from(config.keyframe_interval);
    assert!(ticks <= cycle, "{ticks} ticks");
    let sent = b.wait();
    // Until the goodbye is in (bounded): then every datagram before it is.
    assert!(
        common::wait_until(Duration::from_secs(5), || early.figures().goodbye),
        "no goodbye arrived"
    );
    let f = early.figures();
    let last_tick = f.count.expect("ticks arrived");
    assert!(last_tick + 1 >= sent.ticks_sent);
    assert_eq!(f.counters.lost, 0);
    assert_eq!(
        f.counters.undecodable, 0,
        "no loss: every delta has its keyframe"
    );
    let mut sim = SimWorld::new(N, 3);
    let truth = sim.positions(last_tick, 120.0).to_vec();
    for e in &truth {
        let want = quantized(e, &config);
        let got = early.world().get(e.id).expect("every entity");
        assert_eq!(got.tick, last_tick, "entity {}", e.id);
        assert_eq!(
            (got.x, got.y, got.z),
            (want.x, want.y, want.z),
            "entity {}",
            e.id
        );
    }
    let lf = late.stop().unwrap();
    assert!(
        lf.counters.undecodable > 0,
        "a late joiner lacks keyframes at first"
    );
}
