//! Entity lifecycle end to end, sans-IO: a sender with a lifecycle, its
//! datagrams through a seeded lossy link, an ingest with a game feed. The
//! receiver's world must end equal to the sender's last tick, no entity
//! may outlive the ghost bound, and every event must be true.
// Tests own their clocks, sockets and threads; the layer wall in
// clippy.toml is for the library core.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tickcast::core::feed::{self, EventKind};
use tickcast::core::ingest::Ingest;
use tickcast::core::lifecycle::LifecycleConfig;
use tickcast::core::sender::{Sender, SenderConfig};
use tickcast::core::world::WorldWriter;
use tickcast::wire::Entity;

const T0: u64 = 1_700_000_000_000_000_000;
const TICK_NS: u64 = 16_666_667;

/// A game world whose entities come and go: each tick a seeded few spawn
/// and despawn, and every entity moves.
struct Game {
    rng: StdRng,
    next_id: u32,
    alive: BTreeMap<u32, [f32; 3]>,
}

impl Game {
    fn new(seed: u64, n: u32) -> Game {
        let alive = (0..n).map(|id| (id, [id as f32, 0.0, 0.0])).collect();
        Game {
            rng: StdRng::seed_from_u64(seed),
            next_id: n,
            alive,
        }
    }

    fn step(&mut self, churn: u32) -> Vec<Entity> {
        for _ in 0..churn {
            if let Some(&id) = self
                .alive
                .keys()
                .nth(self.rng.random_range(0..self.alive.len().max(1)))
            {
                self.alive.remove(&id);
            }
            self.alive.insert(self.next_id, [0.0; 3]);
            self.next_id += 1;
        }
        for p in self.alive.values_mut() {
            p[1] += 0.5;
        }
        self.alive
            .iter()
            .map(|(&id, p)| Entity {
                id,
                x: p[0],
                y: p[1],
                z: p[2],
            })
            .collect()
    }
}

struct Run {
    /// Ticks from a despawn to its removal at the receiver, for every
    /// entity the receiver held when it was despawned.
    removal_delays: Vec<u64>,
    /// Whether the world equalled the sender's tick at the end.
    equal_at_end: bool,
    despawn_events: u64,
    spawn_events: u64,
    /// Distinct ids the sender ever sent.
    ids_sent: u64,
    by_roster: u64,
    frames_complete: u64,
}

fn run(loss: f64, ticks: u64, roster_interval: u64) -> Run {
    let mut sender = Sender::new(SenderConfig {
        lifecycle: Some(LifecycleConfig { roster_interval }),
        report_interval: Duration::from_secs(1),
        ..SenderConfig::default()
    })
    .unwrap();
    let (feed_w, mut feed_r) = feed::feed(1 << 20);
    let mut ingest = Ingest::new(WorldWriter::new(1 << 16)).with_feed(feed_w);
    let world = ingest.world().clone();
    let mut game = Game::new(7, 500);
    let mut link = StdRng::seed_from_u64(11);
    let mut buf = Vec::new();
    // When each entity was despawned by the game, while the receiver still holds it.
    let mut despawned_at: BTreeMap<u32, u64> = BTreeMap::new();
    let mut removal_delays = Vec::new();
    let mut last = Vec::new();
    let mut frames_complete = 0;
    let mut events = Vec::new();
    let mut ids_sent = BTreeSet::new();
    for tick in 0..ticks {
        let before: BTreeSet<u32> = last.iter().map(|e: &Entity| e.id).collect();
        // The last 40 ticks are without churn so the end state settles.
        let entities = game.step(if tick + 40 < ticks { 3 } else { 0 });
        let now: BTreeSet<u32> = entities.iter().map(|e| e.id).collect();
        ids_sent.extend(now.iter().copied());
        for id in before.difference(&now) {
            if world.get(*id).is_some() {
                despawned_at.insert(*id, tick);
            }
        }
        let now_ns = T0 + tick * TICK_NS;
        sender.push_tick(tick, now_ns, &entities).unwrap();
        sender.handle_timeout(Duration::from_nanos(tick * TICK_NS));
        while let Some(t) = sender.poll_transmit(now_ns, &mut buf) {
            if !link.random_bool(loss) {
                ingest.handle(&buf[t.range()], now_ns + 100_000);
            }
            buf.clear();
        }
        despawned_at.retain(|id, at| {
            let gone = world.get(*id).is_none();
            if gone {
                removal_delays.push(tick - *at);
            }
            !gone
        });
        if feed_r.has_new_frame() && feed_r.frame().complete {
            frames_complete += 1;
        }
        feed_r.drain_events(&mut events);
        last = entities;
    }
    assert!(despawned_at.is_empty(), "ghosts left: {despawned_at:?}");
    let mut held = Vec::new();
    world.read_all(&mut held);
    let equal_at_end = held.len() == last.len()
        && held
            .iter()
            .zip(&last)
            .all(|(h, e)| (h.id, h.x, h.y, h.z) == (e.id, e.x, e.y, e.z));
    let f = ingest.figures();
    let count = |k| events.iter().filter(|e| e.kind == k).count() as u64;
    assert_eq!(feed_r.events_dropped(), 0);
    Run {
        removal_delays,
        equal_at_end,
        despawn_events: count(EventKind::Despawned),
        spawn_events: count(EventKind::Spawned),
        ids_sent: ids_sent.len() as u64,
        by_roster: f.counters.entities_removed_by_roster,
        frames_complete,
    }
}

#[test]
fn without_loss_every_despawn_is_immediate_and_the_worlds_are_equal() {
    let r = run(0.0, 300, 60);
    assert!(r.equal_at_end);
    assert!(!r.removal_delays.is_empty());
    assert!(
        r.removal_delays.iter().all(|&d| d == 0),
        "{:?}",
        r.removal_delays
    );
    assert_eq!(r.by_roster, 0, "nothing is left for the roster");
    assert_eq!(r.despawn_events, r.removal_delays.len() as u64);
    // Each id once (none comes back in this game).
    assert_eq!(r.spawn_events, r.ids_sent);
    assert!(r.ids_sent > 500 + 2 * 260);
    assert_eq!(r.frames_complete, 300, "one complete frame a tick");
}

#[test]
fn under_five_percent_loss_no_ghost_outlives_the_roster_bound() {
    let interval = 30;
    let r = run(0.05, 600, interval);
    assert!(r.equal_at_end, "the world equals the last tick after loss");
    let worst = *r.removal_delays.iter().max().unwrap();
    // The bound: the next roster (at most `interval` ticks on), or the one
    // after it if that one was lost too.
    assert!(worst <= 2 * interval, "a ghost lived {worst} ticks");
    // Most are caught by a despawn copy at once or within a few ticks.
    let quick = r.removal_delays.iter().filter(|&&d| d <= 2).count();
    assert!(
        quick * 10 >= r.removal_delays.len() * 9,
        "{:?}",
        r.removal_delays
    );
}

#[test]
fn with_every_despawn_lost_the_roster_still_removes_the_ghosts() {
    // Drop every despawn packet: only rosters remain to say who left.
    let mut sender = Sender::new(SenderConfig {
        lifecycle: Some(LifecycleConfig {
            roster_interval: 20,
        }),
        ..SenderConfig::default()
    })
    .unwrap();
    let mut ingest = Ingest::new(WorldWriter::new(1024));
    let world = ingest.world().clone();
    let mut buf = Vec::new();
    let mut gone_at = None;
    for tick in 0..100u64 {
        let ids: Vec<u32> = if tick < 5 {
            (0..10).collect()
        } else {
            (0..5).collect()
        };
        let entities: Vec<Entity> = ids
            .iter()
            .map(|&id| Entity {
                id,
                ..Entity::default()
            })
            .collect();
        sender.push_tick(tick, T0 + tick, &entities).unwrap();
        while let Some(t) = sender.poll_transmit(T0 + tick, &mut buf) {
            if t.kind != tickcast::wire::Kind::Despawn {
                ingest.handle(&buf[t.range()], T0 + tick);
            }
            buf.clear();
        }
        if gone_at.is_none() && world.len() == 5 {
            gone_at = Some(tick);
        }
    }
    // Despawned at tick 5; the roster of tick 20 removes them.
    assert_eq!(gone_at, Some(20));
    assert_eq!(ingest.figures().counters.entities_removed_by_roster, 5);
}
