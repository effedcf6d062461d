//! The sender's entity lifecycle, sans-IO: from the set of ids in each
//! tick, which entities were despawned, which despawn records are due to be
//! repeated, and when a roster (the statement of which ids exist) is due.
//! The [`Sender`](crate::core::sender::Sender) runs one when its config
//! asks for it, and turns what it says into despawn and roster packets
//! (`proto/PROTOCOL.md`, "Entity lifecycle").
//!
//! # The rules it keeps
//!
//! * **A tick is the whole world.** An id in a tick exists; an id in the
//!   previous tick and not in this one was despawned in this tick, so its
//!   record says `(id, tick)`. An id never seen before, or seen again after
//!   a despawn, is spawned (the receiver finds out from the snapshot).
//! * **Each despawn record is repeated** in the despawn packets of the
//!   ticks at the ages [`DESPAWN_COPY_AGES`] after its tick. A record whose
//!   age passes one of them while ticks are skipped goes out at the next
//!   tick sent, once, so a gap in the ticks loses no copy for good.
//! * **A roster is due** in the first tick and then whenever
//!   `roster_interval` ticks have passed since the last one. It is the
//!   tick's ids as runs of consecutive ids, which the sender splits into
//!   parts covering the whole id space.
//!
//! Its cost is linear in the tick's entities: the ids are collected and
//! sorted (a tick a game writes in id order is only checked), then merged
//! with the previous tick's.

use crate::wire::{Despawned, Entity, IdRun, DESPAWN_COPY_AGES};

/// Default ticks between two rosters: 1 s at 60 Hz.
pub const DEFAULT_ROSTER_INTERVAL: u64 = 60;

/// How the lifecycle is stated on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LifecycleConfig {
    /// Ticks between two rosters (at least 1). The ghost bound: an entity
    /// whose every despawn copy was lost lives on at a receiver for at most
    /// this many ticks, plus this many per lost roster part covering it.
    pub roster_interval: u64,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        LifecycleConfig {
            roster_interval: DEFAULT_ROSTER_INTERVAL,
        }
    }
}

/// A tick listed the same id twice: which one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("entity id {0} appears twice in one tick")]
pub struct DuplicateId(pub u32);

/// The smallest id `entities` lists twice, if any: one pass and no copy
/// when their ids rise (a frame kept in id order), else as
/// [`ascending_ids`] finds it, with `scratch` for the ids.
pub fn first_duplicate(entities: &[Entity], scratch: &mut Vec<u32>) -> Option<u32> {
    let rising = entities
        .windows(2)
        .fold(true, |ok, w| ok & (w[0].id < w[1].id));
    if rising {
        return None;
    }
    ascending_ids(entities, scratch)
        .err()
        .map(|DuplicateId(id)| id)
}

/// `entities`' ids, ascending, into `ids` (cleared first; sorted only when
/// they do not come in id order, as a game that keeps its entities by id
/// has them), or the smallest id listed twice.
pub fn ascending_ids(entities: &[Entity], ids: &mut Vec<u32>) -> Result<(), DuplicateId> {
    ids.clear();
    ids.extend(entities.iter().map(|e| e.id));
    if !ids.is_sorted() {
        ids.sort_unstable();
    }
    match ids.windows(2).find(|w| w[0] == w[1]) {
        Some(w) => Err(DuplicateId(w[0])),
        None => Ok(()),
    }
}

/// What the lifecycle has seen, as plain data. Counters only go up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LifecycleCounts {
    /// Entities that appeared: new ids, and ids back after a despawn.
    pub spawned: u64,
    /// Entities that disappeared from one tick to the next.
    pub despawned: u64,
    /// Rosters stated (each counted once, however many parts it took).
    pub rosters: u64,
}

/// One despawn record awaiting its copies.
#[derive(Clone, Copy, Debug)]
struct Pending {
    record: Despawned,
    /// Index in [`DESPAWN_COPY_AGES`] of the next copy to send.
    next_copy: usize,
}

/// The sender's lifecycle state (see the [module docs](self)).
#[derive(Clone, Debug)]
pub struct Lifecycle {
    roster_interval: u64,
    /// The previous tick's ids, ascending.
    live: Vec<u32>,
    /// This tick's ids while they are sorted (reused).
    next: Vec<u32>,
    /// Despawn records still to be repeated, oldest first.
    pending: Vec<Pending>,
    /// The records due in this tick's despawn packets.
    due: Vec<Despawned>,
    /// This tick's ids as runs, when a roster is due in it.
    runs: Vec<IdRun>,
    roster_due: bool,
    last_roster: Option<u64>,
    counts: LifecycleCounts,
}

impl Lifecycle {
    /// A lifecycle that has seen no tick. A `roster_interval` of 0 is taken as 1.
    pub fn new(config: LifecycleConfig) -> Lifecycle {
        Lifecycle {
            roster_interval: config.roster_interval.max(1),
            live: Vec::new(),
            next: Vec::new(),
            pending: Vec::new(),
            due: Vec::new(),
            runs: Vec::new(),
            roster_due: false,
            last_roster: None,
            counts: LifecycleCounts::default(),
        }
    }

    /// Takes tick `tick` with `entities`, the whole world in it: works out
    /// the despawns, the records due ([`Lifecycle::despawns`]) and whether a
    /// roster is due ([`Lifecycle::roster`]). Ticks must go forward. On a
    /// duplicate id nothing changes and the error names it.
    pub fn on_tick(&mut self, tick: u64, entities: &[Entity]) -> Result<(), DuplicateId> {
        ascending_ids(entities, &mut self.next)?;
        // Merge the previous tick's ids with this tick's.
        let (old, new) = (&self.live, &self.next);
        let (mut i, mut j) = (0, 0);
        while i < old.len() || j < new.len() {
            match (old.get(i), new.get(j)) {
                (Some(a), Some(b)) if a == b => (i, j) = (i + 1, j + 1),
                (Some(&a), b) if b.is_none_or(|&b| a < b) => {
                    self.pending.push(Pending {
                        record: Despawned { id: a, tick },
                        next_copy: 0,
                    });
                    self.counts.despawned += 1;
                    i += 1;
                }
                _ => {
                    self.counts.spawned += 1;
                    j += 1;
                }
            }
        }
        std::mem::swap(&mut self.live, &mut self.next);

        // The copies due now: every record whose age reached its next copy.
        self.due.clear();
        for p in &mut self.pending {
            let age = tick.saturating_sub(p.record.tick);
            if DESPAWN_COPY_AGES
                .get(p.next_copy)
                .is_some_and(|&a| age >= a)
            {
                self.due.push(p.record);
                while DESPAWN_COPY_AGES
                    .get(p.next_copy)
                    .is_some_and(|&a| age >= a)
                {
                    p.next_copy += 1;
                }
            }
        }
        self.pending
            .retain(|p| p.next_copy < DESPAWN_COPY_AGES.len());

        self.roster_due = self
            .last_roster
            .is_none_or(|last| tick.saturating_sub(last) >= self.roster_interval);
        self.runs.clear();
        if self.roster_due {
            self.last_roster = Some(tick);
            self.counts.rosters += 1;
            for &id in &self.live {
                match self.runs.last_mut() {
                    Some(run) if run.first as u64 + run.count as u64 == id as u64 => run.count += 1,
                    _ => self.runs.push(IdRun {
                        first: id,
                        count: 1,
                    }),
                }
            }
        }
        Ok(())
    }

    /// The despawn records due in the last tick's despawn packets.
    pub fn despawns(&self) -> &[Despawned] {
        &self.due
    }

    /// The last tick's ids as ascending runs, if a roster is due in it.
    pub fn roster(&self) -> Option<&[IdRun]> {
        self.roster_due.then_some(&self.runs[..])
    }

    /// The ids in the last tick, ascending.
    pub fn live(&self) -> &[u32] {
        &self.live
    }

    /// What it has seen so far.
    pub fn counts(&self) -> LifecycleCounts {
        self.counts
    }
}

/// Splits a roster's `runs` into parts of at most `per_part` runs (at
/// least one part), each with the id range it speaks for: contiguous
/// ranges that together cover `0..=u32::MAX`, each part's starting at its
/// first run (the first part's at 0) and ending just before the next
/// part's first run (the last part's at `u32::MAX`).
pub fn roster_parts(runs: &[IdRun], per_part: usize) -> impl Iterator<Item = (u32, u32, &[IdRun])> {
    let per_part = per_part.max(1);
    let parts = runs.len().div_ceil(per_part).max(1);
    (0..parts).map(move |i| {
        let chunk = &runs[(i * per_part).min(runs.len())..((i + 1) * per_part).min(runs.len())];
        let first_id = if i == 0 { 0 } else { chunk[0].first };
        let last_id = match runs.get((i + 1) * per_part) {
            Some(next) => next.first - 1,
            None => u32::MAX,
        };
        (first_id, last_id, chunk)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{runs_ok, RosterHead};

    fn ents(ids: &[u32]) -> Vec<Entity> {
        ids.iter()
            .map(|&id| Entity {
                id,
                ..Entity::default()
            })
            .collect()
    }

    #[test]
    fn a_missing_id_is_despawned_and_repeated_at_the_copy_ages() {
        let mut l = Lifecycle::new(LifecycleConfig::default());
        l.on_tick(0, &ents(&[1, 2, 3])).unwrap();
        assert_eq!(l.counts().spawned, 3);
        let mut copies = Vec::new();
        for tick in 1..=40 {
            // Out of order on purpose: the lifecycle sorts.
            l.on_tick(tick, &ents(&[3, 1])).unwrap();
            if !l.despawns().is_empty() {
                assert_eq!(l.despawns(), [Despawned { id: 2, tick: 1 }]);
                copies.push(tick - 1);
            }
        }
        assert_eq!(copies, DESPAWN_COPY_AGES);
        assert_eq!(l.counts().despawned, 1);
    }

    #[test]
    fn skipped_ticks_lose_no_copy_for_good() {
        let mut l = Lifecycle::new(LifecycleConfig::default());
        l.on_tick(0, &ents(&[5])).unwrap();
        l.on_tick(1, &[]).unwrap();
        assert_eq!(l.despawns().len(), 1);
        // Ages 1 to 4 pass unseen: one copy at age 5, then 8, 16, 32.
        let mut copies = Vec::new();
        for tick in [6, 7, 9, 17, 30, 33, 34, 60] {
            l.on_tick(tick, &[]).unwrap();
            if !l.despawns().is_empty() {
                copies.push(tick - 1);
            }
        }
        assert_eq!(copies, [5, 8, 16, 32]);
    }

    #[test]
    fn respawn_counts_and_duplicates_are_refused() {
        let mut l = Lifecycle::new(LifecycleConfig::default());
        l.on_tick(0, &ents(&[1])).unwrap();
        l.on_tick(1, &[]).unwrap();
        l.on_tick(2, &ents(&[1])).unwrap();
        assert_eq!(l.counts().spawned, 2);
        assert_eq!(l.on_tick(3, &ents(&[4, 1, 4])), Err(DuplicateId(4)));
        assert_eq!(l.live(), [1], "a refused tick changes nothing");
    }

    #[test]
    fn rosters_come_every_interval_as_runs() {
        let mut l = Lifecycle::new(LifecycleConfig { roster_interval: 3 });
        let ids = [0, 1, 2, 7, 9, 10, u32::MAX];
        let mut due = Vec::new();
        for tick in 10..20 {
            l.on_tick(tick, &ents(&ids)).unwrap();
            if let Some(runs) = l.roster() {
                due.push(tick);
                assert_eq!(
                    runs,
                    [
                        IdRun { first: 0, count: 3 },
                        IdRun { first: 7, count: 1 },
                        IdRun { first: 9, count: 2 },
                        IdRun {
                            first: u32::MAX,
                            count: 1
                        },
                    ]
                );
            }
        }
        assert_eq!(due, [10, 13, 16, 19]);
        assert_eq!(l.counts().rosters, 4);
    }

    #[test]
    fn roster_parts_cover_the_id_space_and_each_is_valid() {
        let runs: Vec<IdRun> = (0..7)
            .map(|i| IdRun {
                first: i * 10,
                count: 2,
            })
            .collect();
        for per_part in 1..9 {
            let parts: Vec<_> = roster_parts(&runs, per_part).collect();
            assert_eq!(parts.len(), 7usize.div_ceil(per_part));
            assert_eq!(parts[0].0, 0);
            assert_eq!(parts.last().unwrap().1, u32::MAX);
            for w in parts.windows(2) {
                assert_eq!(w[0].1 + 1, w[1].0, "contiguous");
            }
            let mut all = Vec::new();
            for (first_id, last_id, chunk) in &parts {
                let head = RosterHead {
                    first_id: *first_id,
                    last_id: *last_id,
                    part: 0,
                    parts: 1,
                    ..RosterHead::default()
                };
                assert!(runs_ok(&head, chunk.iter().copied()));
                all.extend_from_slice(chunk);
            }
            assert_eq!(all, runs);
        }
        let empty: Vec<_> = roster_parts(&[], 4).collect();
        assert_eq!(empty, [(0, u32::MAX, &[][..])]);
    }
}
