//! A game's own world through a broadcaster, on loopback: both clocks,
//! spawns and despawns, a receiver with a game client. The client's frame
//! must end equal to the game's last frame, despawned entities gone, and
//! the events must say what happened.
// Tests own their clocks, sockets and threads; the layer wall in
// clippy.toml is for the library core.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::thread;
use std::time::{Duration, Instant};

use tickcast::core::feed::EventKind;
use tickcast::wire::Entity;
use tickcast::{
    BroadcastConfig, Broadcaster, ClientConfig, PublishClock, PublishError, Receiver,
    ReceiverConfig,
};

fn receiver() -> Receiver {
    Receiver::start(ReceiverConfig {
        client: Some(ClientConfig::default()),
        ..ReceiverConfig::unicast(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
    })
    .unwrap()
}

fn to(r: &Receiver) -> BroadcastConfig {
    BroadcastConfig {
        destinations: vec![r.local_addr()],
        max_subscribers: 0,
        ..BroadcastConfig::default()
    }
}

/// The game's world at step `step`: ids 0..n, minus every id that is a
/// multiple of 7 once step passes 30, plus ids 1000.. spawned one a step.
fn world(step: u64, n: u32) -> Vec<Entity> {
    let mut v: Vec<Entity> = (0..n)
        .filter(|id| step < 30 || id % 7 != 0)
        .map(|id| Entity {
            id,
            x: id as f32,
            y: step as f32,
            z: 0.5,
        })
        .collect();
    v.extend((0..step.min(40) as u32).map(|i| Entity {
        id: 1000 + i,
        x: -1.0,
        y: step as f32,
        z: 0.0,
    }));
    v
}

fn check_end(client: &mut tickcast::GameClient, last: &[Entity]) {
    let frame = client.frame();
    let got: Vec<(u32, f32, f32, f32)> = frame
        .entities
        .iter()
        .map(|e| (e.id, e.x, e.y, e.z))
        .collect();
    let want: Vec<(u32, f32, f32, f32)> = last.iter().map(|e| (e.id, e.x, e.y, e.z)).collect();
    assert!(frame.complete);
    assert_eq!(got, want);
}

#[test]
fn tickcast_clock_sends_the_latest_frame_and_despawns_reach_the_client() {
    let r = receiver();
    let mut client = r.take_client().expect("configured");
    assert!(r.take_client().is_none(), "taken once");
    let (b, mut publisher) = Broadcaster::start_published(
        BroadcastConfig {
            rate_hz: 200.0,
            ..to(&r)
        },
        PublishClock::Tickcast,
    )
    .unwrap();
    assert_eq!(
        publisher.send(1, &[]),
        Err(PublishError::WrongClock(PublishClock::Tickcast))
    );
    let mut last = Vec::new();
    for step in 0..60 {
        last = world(step, 100);
        let mut frame = publisher.frame();
        frame.extend_from_slice(&last);
        frame.commit().unwrap();
        thread::sleep(Duration::from_millis(5));
    }
    let bad = publisher.publish(&[Entity {
        id: 1,
        x: f32::NAN,
        y: 0.0,
        z: 0.0,
    }]);
    assert_eq!(bad, Err(PublishError::BadCoordinate { id: 1 }));
    // Let a few ticks carry the last frame.
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let f = client.frame();
        if f.complete && f.entities.len() == last.len() && f.entities.iter().all(|e| e.y == 59.0) {
            break;
        }
        thread::sleep(Duration::from_millis(5));
    }
    let figures = b.stop();
    check_end(&mut client, &last);
    assert_eq!(figures.frames_committed, 60);
    assert!(figures.frames_sent > 0 && figures.frames_refused == 0);
    assert_eq!(figures.despawned, 15, "ids 0, 7, ..., 98");
    assert_eq!(figures.live_entities, last.len() as u64);
    assert!(matches!(
        publisher.publish(&last),
        Err(PublishError::Stopped)
    ));
    // The goodbye is on its way when stop returns: let the receiver take
    // it (bounded; a loaded host delays its thread).
    common::wait_until(Duration::from_secs(5), || r.figures().goodbye);
    let mut events = Vec::new();
    client.drain_events(&mut events);
    let ids = |k| {
        let mut v: Vec<u32> = events
            .iter()
            .filter(|e| e.kind == k)
            .map(|e| e.id)
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        ids(EventKind::Despawned),
        (0..100).step_by(7).collect::<Vec<u32>>()
    );
    assert_eq!(ids(EventKind::Spawned).len(), 100 + 40);
    assert_eq!(events[0].kind, EventKind::SessionStarted);
    assert_eq!(events.last().unwrap().kind, EventKind::StreamEnded);
    let f = r.stop().unwrap();
    assert_eq!(f.counters.entities_despawned, 15);
    assert_eq!(f.counters.lost, 0);
}

#[test]
fn game_clock_sends_each_frame_at_once_under_the_games_tick() {
    let r = receiver();
    let mut client = r.take_client().unwrap();
    let (b, mut publisher) = Broadcaster::start_published(to(&r), PublishClock::Game).unwrap();
    assert!(matches!(
        publisher.publish(&[]),
        Err(PublishError::WrongClock(PublishClock::Game))
    ));
    let mut last = Vec::new();
    for step in 0..50u64 {
        last = world(step, 50);
        publisher.send(100 + step, &last).unwrap();
        // Each frame goes out at once: the client sees its tick soon.
        let sent = Instant::now();
        assert!(
            common::wait_until(Duration::from_secs(2), || client.frame().tick
                == Some(100 + step)),
            "tick {} never arrived",
            100 + step
        );
        assert!(sent.elapsed() < Duration::from_secs(2));
    }
    assert_eq!(
        publisher.send(120, &last),
        Err(PublishError::TickNotAfter {
            tick: 120,
            last: 149
        })
    );
    // A frame with an id twice is refused at once, on the game's thread,
    // with nothing sent (it used to pass, and be refused by the thread);
    // so is an unsorted one, and the tick stays free for the next frame.
    let twice = [Entity::default(), Entity::default()];
    assert_eq!(
        publisher.send(150, &twice),
        Err(PublishError::DuplicateId(0))
    );
    let mut shuffled = last.clone();
    shuffled.reverse();
    shuffled.push(shuffled[3]);
    let id = shuffled[3].id;
    assert_eq!(
        publisher.send(150, &shuffled),
        Err(PublishError::DuplicateId(id))
    );
    let figures = b.stop();
    check_end(&mut client, &last);
    assert_eq!(figures.frames_sent, 50);
    assert_eq!(figures.frames_committed, 50);
    assert_eq!(figures.frames_refused, 0);
    assert_eq!(figures.despawned, 8, "ids 0, 7, ..., 49");
    let f = r.stop().unwrap();
    assert_eq!(f.count, Some(149));
}

/// Subscriptions, the key, reports and the goodbye work for a published
/// world as for the simulated one: a sealed, subscribed receiver gets the
/// game's world, its despawns, and nothing lost.
#[test]
fn a_keyed_subscriber_gets_a_published_world() {
    let key = tickcast::Key::from_bytes([7; tickcast::wire::auth::KEY_LEN]);
    let (b, mut publisher) = Broadcaster::start_published(
        BroadcastConfig {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            key: Some(key.clone()),
            report_interval: Duration::from_millis(100),
            ..BroadcastConfig::default()
        },
        PublishClock::Game,
    )
    .unwrap();
    let r = Receiver::start(ReceiverConfig {
        client: Some(ClientConfig::default()),
        key: Some(key),
        ..ReceiverConfig::subscribe(b.local_addr())
    })
    .unwrap();
    let mut client = r.take_client().unwrap();
    let mut events = Vec::new();
    assert!(
        common::wait_until(Duration::from_secs(5), || {
            client.drain_events(&mut events);
            events.iter().any(|e| e.kind == EventKind::Subscribed)
        }),
        "never subscribed"
    );
    let mut last = Vec::new();
    for step in 0..40u64 {
        last = world(step, 60);
        publisher.send(step, &last).unwrap();
        thread::sleep(Duration::from_millis(10));
    }
    assert!(common::wait_until(Duration::from_secs(2), || client
        .frame()
        .tick
        == Some(39)));
    let figures = b.stop();
    check_end(&mut client, &last);
    assert_eq!(figures.subscriptions.accepted, 1);
    assert_eq!(figures.despawned, 9, "ids 0, 7, ..., 56");
    // The goodbye is on its way when stop returns: let the receiver take
    // it before it stops (bounded; a loaded host delays its thread).
    common::wait_until(Duration::from_secs(5), || r.figures().goodbye);
    let f = r.stop().unwrap();
    assert_eq!((f.counters.lost, f.counters.auth_failed), (0, 0));
    assert_eq!(f.counters.entities_despawned, 9);
    assert!(f.goodbye && f.sender_packets_sent.is_some());
}
