//! The receiver's world state: the latest applied position of every entity,
//! written by the one receiver thread and read by any number of other threads.
//!
//! # One writer, by type
//!
//! The sequence locks below are correct only with a single writer: two threads
//! applying at once could both make a page's version odd and even again
//! around each other's stores, and a reader would take a torn entity for a
//! whole one. So the right to write is a value, not a convention:
//!
//! * [`WorldWriter`] is the only way to make a world and the only type with
//!   [`WorldWriter::apply`], which takes `&mut self`. It is not `Clone`, so
//!   each world has exactly one, and the borrow checker lets one caller at a
//!   time use it. The receiver thread's [`crate::core::ingest::Ingest`] owns
//!   it.
//! * [`World`] is a read handle: cheap to clone (an `Arc` of the shared
//!   table), `Send` and `Sync`, with [`World::get`], [`World::read_all`],
//!   [`World::len`], [`World::count`] and the like, and no way to write.
//!   [`WorldWriter::world`] gives one; clone it for every reading thread.
//!
//! ```
//! use tickcast::core::world::WorldWriter;
//! use tickcast::wire::Entity;
//!
//! let mut writer = WorldWriter::new(1024);
//! let reader = writer.world().clone();
//! writer.apply(1, 7, &[Entity { id: 3, x: 1.0, y: 2.0, z: 3.0 }]);
//! assert_eq!(reader.get(3).map(|e| e.tick), Some(7));
//! ```
//!
//! A reader cannot write, and the writer cannot be copied:
//!
//! ```compile_fail,E0599
//! # use tickcast::core::world::WorldWriter;
//! let writer = WorldWriter::new(1024);
//! let reader = writer.world().clone();
//! reader.apply(1, 7, &[]); // no `apply` on a `World`
//! ```
//!
//! ```compile_fail,E0599
//! # use tickcast::core::world::WorldWriter;
//! let writer = WorldWriter::new(1024);
//! let second: WorldWriter = writer.clone(); // `WorldWriter` is not `Clone`
//! ```
//!
//! # Why a sequence lock per page
//!
//! Every datagram is applied the moment it arrives, at up to millions of
//! entity updates a second, while a game's render or logic threads read.
//! A `Mutex`/`RwLock` would make the receiver wait on readers; copying the
//! world into a fresh `Arc` per datagram (RCU, `arc-swap`) costs a copy of
//! every entity per datagram. Instead the slots are guarded by sequence locks
//! made of atomics, one per page of [`PAGE`] entities: the writer bumps the
//! page's version to odd, stores the fields of the run of entities it is
//! applying in that page, and bumps it to even; a reader retries if it saw an
//! odd or changed version. So the writer is wait-free and never waits on a
//! reader, readers never block it, and a reader always sees one entity's
//! `(tick, x, y, z)` from the same update. A snapshot part carries a run of
//! neighbouring ids, so the version is written twice per part and page, not
//! twice per entity (measured: that halved the cost of applying an entity).
//! There is no cross-page snapshot: entities arrive in independent parts,
//! and a reader sees each at the tick it was last updated. All of it is safe
//! Rust (orderings per Boehm, "Can seqlocks get along with programming
//! language memory models?", 2012).
//!
//! # Entities that leave
//!
//! Protocol version 2 says when an entity is gone (a despawn record or a
//! roster, see [`crate::wire`]): [`WorldWriter::despawn`] and
//! [`WorldWriter::apply_roster`] remove it, leaving a tombstone that holds
//! the tick it was stated gone at, so a late snapshot of an older tick
//! cannot bring it back while a newer one does (a respawn). Readers see
//! only the entities alive: [`World::get`] is `None` for a removed one,
//! and [`World::len`] counts the living.
//!
//! # Bounds
//!
//! Slots live in pages of [`PAGE`] entities allocated on first write, and ids
//! at or above `capacity` are rejected (counted by the caller), so memory is
//! bounded by `capacity` whatever arrives.

use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use crate::wire::{Entity, IdRun};

/// Entities per lazily allocated page.
pub const PAGE: usize = 1024;
/// Default entity capacity: ids `0..DEFAULT_CAPACITY` are accepted.
pub const DEFAULT_CAPACITY: u32 = 1 << 20;

/// One entity's fields; `epoch` 0 means never written, `alive` 0 a
/// tombstone (its `epoch` and `tick` say when it was stated gone).
#[derive(Default)]
struct Slot {
    epoch: AtomicU32,
    alive: AtomicU32,
    tick: AtomicU64,
    x: AtomicU32,
    y: AtomicU32,
    z: AtomicU32,
    /// When the datagram that set this position arrived (the receiver's
    /// clock, ns since the Unix epoch).
    arrival_ns: AtomicU64,
    /// The sender's stamp of the tick that set it (`scheduled_ns`).
    tick_ns: AtomicU64,
}

/// One entity as a reader sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EntityState {
    /// Entity id.
    pub id: u32,
    /// Tick (Count) of the update that set this position.
    pub tick: u64,
    /// X coordinate.
    pub x: f32,
    /// Y coordinate.
    pub y: f32,
    /// Z coordinate.
    pub z: f32,
    /// When the datagram that set this position arrived: the receiver's
    /// clock (the kernel's stamp where there is one), ns since the Unix epoch.
    pub arrival_ns: u64,
    /// The sender's stamp of the tick that set it (its `scheduled_ns`, ns
    /// since the Unix epoch on the sender's clock).
    pub tick_ns: u64,
}

/// [`PAGE`] slots and the sequence lock that guards them.
struct Page {
    /// Odd while the writer is storing into this page.
    version: AtomicU32,
    slots: Box<[Slot]>,
}

impl Page {
    fn new() -> Page {
        Page {
            version: AtomicU32::new(0),
            slots: (0..PAGE).map(|_| Slot::default()).collect(),
        }
    }

    /// Marks the start of a write (odd version).
    fn begin_write(&self) {
        let v = self.version.load(Ordering::Relaxed);
        self.version.store(v.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
    }

    /// Marks the end of a write (even version).
    fn end_write(&self) {
        let v = self.version.load(Ordering::Relaxed);
        self.version.store(v.wrapping_add(1), Ordering::Release);
    }
}

/// What applying one snapshot part did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApplyOutcome {
    /// Entities whose position was updated.
    pub applied: u32,
    /// Entities not updated because an equal or newer tick was already applied.
    pub stale: u32,
    /// Entities rejected because their id is at or above the capacity.
    pub rejected: u32,
    /// Of those applied, entities that were not alive before: never seen,
    /// removed, or from an older session.
    pub spawned: u32,
}

/// The table the writer and every reader share.
struct Table {
    pages: Box<[OnceLock<Page>]>,
    capacity: u32,
    count: AtomicU64,
    epoch_of_count: AtomicU32,
    len: AtomicU32,
}

/// A read handle on a world: clone it for every thread that reads (a clone
/// is one `Arc` increment). It has no way to write; the one
/// [`WorldWriter`] does that (see the module docs).
#[derive(Clone)]
pub struct World {
    table: Arc<Table>,
}

/// The one writer of a world: makes it, applies snapshot parts to it, and
/// hands out read handles ([`WorldWriter::world`]). Not `Clone`: the
/// sequence locks rely on there being one writer (see the module docs).
pub struct WorldWriter {
    world: World,
}

impl World {
    /// Ids accepted are `0..capacity()`.
    pub fn capacity(&self) -> u32 {
        self.table.capacity
    }

    /// Entities alive: applied and not removed since.
    pub fn len(&self) -> usize {
        self.table.len.load(Ordering::Relaxed) as usize
    }

    /// True when no entity is alive.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of slot memory allocated so far.
    pub fn allocated_bytes(&self) -> usize {
        let pages = self
            .table
            .pages
            .iter()
            .filter(|p| p.get().is_some())
            .count();
        pages * (PAGE * std::mem::size_of::<Slot>() + std::mem::size_of::<Page>())
    }

    /// The newest tick applied (the Count a game client shows), or `None`
    /// before the first one.
    pub fn count(&self) -> Option<u64> {
        let t = &self.table;
        match t.epoch_of_count.load(Ordering::Acquire) {
            0 => None,
            _ => Some(t.count.load(Ordering::Relaxed)),
        }
    }

    fn page(&self, id: u32) -> Option<&Page> {
        self.table.pages.get(id as usize / PAGE)?.get()
    }

    /// The latest state of entity `id`, or `None` if it was never applied
    /// or has been removed.
    /// Never blocks the writer; retries only while its page is mid-write.
    pub fn get(&self, id: u32) -> Option<EntityState> {
        let page = self.page(id)?;
        let slot = &page.slots[id as usize % PAGE];
        loop {
            let v1 = page.version.load(Ordering::Acquire);
            if v1 % 2 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let alive = slot.alive.load(Ordering::Relaxed);
            let state = slot.state(id);
            fence(Ordering::Acquire);
            if page.version.load(Ordering::Relaxed) == v1 {
                return (alive != 0).then_some(state);
            }
        }
    }

    /// Appends every entity alive, in id order, to `out`.
    pub fn read_all(&self, out: &mut Vec<EntityState>) {
        for (p, page) in self.table.pages.iter().enumerate() {
            if page.get().is_some() {
                let base = (p * PAGE) as u32;
                out.extend((base..base + PAGE as u32).filter_map(|id| self.get(id)));
            }
        }
    }
}

impl Slot {
    /// The fields as they are; the caller guards against torn reads.
    fn state(&self, id: u32) -> EntityState {
        EntityState {
            id,
            tick: self.tick.load(Ordering::Relaxed),
            x: f32::from_bits(self.x.load(Ordering::Relaxed)),
            y: f32::from_bits(self.y.load(Ordering::Relaxed)),
            z: f32::from_bits(self.z.load(Ordering::Relaxed)),
            arrival_ns: self.arrival_ns.load(Ordering::Relaxed),
            tick_ns: self.tick_ns.load(Ordering::Relaxed),
        }
    }

    /// `(epoch, tick)` as the writer last stored them.
    fn stamp(&self) -> (u32, u64) {
        (
            self.epoch.load(Ordering::Relaxed),
            self.tick.load(Ordering::Relaxed),
        )
    }
}

/// When a snapshot part is applied: its session's epoch, its tick, the
/// sender's stamp of the tick and the datagram's arrival.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stamp {
    /// The receiver's count of sessions, from 1.
    pub epoch: u32,
    /// The tick.
    pub tick: u64,
    /// The tick's `scheduled_ns` (the sender's clock).
    pub tick_ns: u64,
    /// When the datagram arrived (the receiver's clock).
    pub arrival_ns: u64,
}

impl WorldWriter {
    /// A world accepting ids `0..capacity`, and its writer; memory grows a
    /// page at a time.
    pub fn new(capacity: u32) -> WorldWriter {
        let pages = (capacity as usize).div_ceil(PAGE);
        let table = Table {
            pages: (0..pages).map(|_| OnceLock::new()).collect(),
            capacity,
            count: AtomicU64::new(0),
            epoch_of_count: AtomicU32::new(0),
            len: AtomicU32::new(0),
        };
        WorldWriter {
            world: World {
                table: Arc::new(table),
            },
        }
    }

    /// A read handle on this writer's world; clone it for other threads.
    pub fn world(&self) -> &World {
        &self.world
    }

    /// Applies one snapshot part of `tick` in session `epoch` (the receiver's
    /// count of sessions, starting at 1): each entity is written if the world
    /// holds an older epoch, or the same epoch and an older tick, for it
    /// (a tombstone included). Arrival and tick stamps are left 0: see
    /// [`WorldWriter::apply_stamped`].
    pub fn apply(&mut self, epoch: u32, tick: u64, entities: &[Entity]) -> ApplyOutcome {
        let stamp = Stamp {
            epoch,
            tick,
            ..Stamp::default()
        };
        self.apply_stamped(stamp, entities, |_| {})
    }

    /// [`WorldWriter::apply`] with the part's stamps stored beside each
    /// entity, calling `on_spawn` with the id of each entity that was not
    /// alive before (never seen, removed, or of an older session).
    pub fn apply_stamped(
        &mut self,
        stamp: Stamp,
        entities: &[Entity],
        mut on_spawn: impl FnMut(u32),
    ) -> ApplyOutcome {
        let Stamp { epoch, tick, .. } = stamp;
        debug_assert!(epoch != 0, "epoch 0 marks an empty slot");
        let t = &*self.world.table;
        let mut out = ApplyOutcome::default();
        // The page being written: its version stays odd for the whole run of
        // this part's entities that fall in it.
        let mut open: Option<(usize, &Page)> = None;
        for e in entities {
            if e.id >= t.capacity {
                out.rejected += 1;
                continue;
            }
            let index = e.id as usize / PAGE;
            let page = match open {
                Some((i, page)) if i == index => page,
                _ => {
                    if let Some((_, page)) = open {
                        page.end_write();
                    }
                    let page = t.pages[index].get_or_init(Page::new);
                    page.begin_write();
                    open = Some((index, page));
                    page
                }
            };
            let slot = &page.slots[e.id as usize % PAGE];
            // Only this writer stores, so these plain loads see its own last stores.
            let (old_epoch, old_tick) = slot.stamp();
            if (old_epoch, old_tick) >= (epoch, tick) {
                out.stale += 1;
                continue;
            }
            let was_alive = slot.alive.load(Ordering::Relaxed) != 0 && old_epoch == epoch;
            if slot.alive.load(Ordering::Relaxed) == 0 {
                t.len.fetch_add(1, Ordering::Relaxed);
            }
            slot.epoch.store(epoch, Ordering::Relaxed);
            slot.alive.store(1, Ordering::Relaxed);
            slot.tick.store(tick, Ordering::Relaxed);
            slot.x.store(e.x.to_bits(), Ordering::Relaxed);
            slot.y.store(e.y.to_bits(), Ordering::Relaxed);
            slot.z.store(e.z.to_bits(), Ordering::Relaxed);
            slot.arrival_ns.store(stamp.arrival_ns, Ordering::Relaxed);
            slot.tick_ns.store(stamp.tick_ns, Ordering::Relaxed);
            if !was_alive {
                out.spawned += 1;
                on_spawn(e.id);
            }
            out.applied += 1;
        }
        if let Some((_, page)) = open {
            page.end_write();
        }
        if out.applied > 0 || entities.is_empty() {
            self.note_tick(epoch, tick);
        }
        out
    }

    /// Entity `id` does not exist as of `tick` of session `epoch` (a
    /// despawn record): if the world holds it from an older tick (or an
    /// older session) it is removed, and `true` returned. Either way a
    /// tombstone at `(epoch, tick)` is left unless the world holds a newer
    /// state, so an older snapshot cannot bring it back. Ids at or above
    /// the capacity are ignored.
    pub fn despawn(&mut self, epoch: u32, id: u32, tick: u64) -> bool {
        let t = &*self.world.table;
        if id >= t.capacity {
            return false;
        }
        let page = t.pages[id as usize / PAGE].get_or_init(Page::new);
        page.begin_write();
        let removed = Self::bury(t, &page.slots[id as usize % PAGE], epoch, tick);
        page.end_write();
        removed
    }

    /// Stores a tombstone at `(epoch, tick)` in `slot` if what it holds is
    /// older; returns whether an entity alive was removed. The caller holds
    /// the slot's page open for writing.
    fn bury(t: &Table, slot: &Slot, epoch: u32, tick: u64) -> bool {
        if slot.stamp() >= (epoch, tick) {
            return false;
        }
        let alive = slot.alive.load(Ordering::Relaxed) != 0;
        slot.epoch.store(epoch, Ordering::Relaxed);
        slot.tick.store(tick, Ordering::Relaxed);
        slot.alive.store(0, Ordering::Relaxed);
        if alive {
            t.len.fetch_sub(1, Ordering::Relaxed);
        }
        alive
    }

    /// A roster part of session `epoch`: as of `tick`, the ids in
    /// `first_id..=last_id` that exist are those in `runs` (ascending, apart;
    /// [`crate::wire::runs_ok`]). Every entity alive in the range, in no
    /// run, and older than `(epoch, tick)` is removed (tombstoned at it);
    /// `on_remove` is called with each id removed. Returns how many.
    /// Costs one look at every slot allocated in the range.
    pub fn apply_roster(
        &mut self,
        epoch: u32,
        tick: u64,
        (first_id, last_id): (u32, u32),
        runs: &[IdRun],
        mut on_remove: impl FnMut(u32),
    ) -> u32 {
        let t = &*self.world.table;
        if t.capacity == 0 {
            return 0;
        }
        let last_id = last_id.min(t.capacity - 1);
        if first_id > last_id {
            return 0;
        }
        let mut removed = 0;
        let mut runs = runs.iter().peekable();
        let (first_page, last_page) = (first_id as usize / PAGE, last_id as usize / PAGE);
        for (p, cell) in t.pages[first_page..=last_page].iter().enumerate() {
            let Some(page) = cell.get() else { continue };
            let base = ((first_page + p) * PAGE) as u32;
            let from = first_id.max(base);
            let to = last_id.min(base + (PAGE as u32 - 1));
            let mut opened = false;
            for id in from..=to {
                // Skip the runs that end before this id.
                while runs.peek().is_some_and(|r| r.last().is_none_or(|l| l < id)) {
                    runs.next();
                }
                if runs.peek().is_some_and(|r| r.first <= id) {
                    continue; // listed: it exists
                }
                let slot = &page.slots[(id - base) as usize];
                if slot.alive.load(Ordering::Relaxed) == 0 || slot.stamp() >= (epoch, tick) {
                    continue;
                }
                if !opened {
                    page.begin_write();
                    opened = true;
                }
                if Self::bury(t, slot, epoch, tick) {
                    removed += 1;
                    on_remove(id);
                }
            }
            if opened {
                page.end_write();
            }
        }
        removed
    }

    /// Appends every entity alive, in id order, to `out`: the writer's own
    /// view, read without the readers' retries (nothing else writes).
    pub fn copy_alive(&self, out: &mut Vec<EntityState>) {
        for (p, page) in self.world.table.pages.iter().enumerate() {
            let Some(page) = page.get() else { continue };
            let base = (p * PAGE) as u32;
            out.extend(
                page.slots
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.alive.load(Ordering::Relaxed) != 0)
                    .map(|(i, s)| s.state(base + i as u32)),
            );
        }
    }

    fn note_tick(&mut self, epoch: u32, tick: u64) {
        let t = &*self.world.table;
        let (e, c) = (
            t.epoch_of_count.load(Ordering::Relaxed),
            t.count.load(Ordering::Relaxed),
        );
        if (epoch, tick) > (e, c) {
            t.count.store(tick, Ordering::Relaxed);
            t.epoch_of_count.store(epoch, Ordering::Release);
        }
    }
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("capacity", &self.capacity())
            .field("len", &self.len())
            .field("count", &self.count())
            .finish()
    }
}

impl std::fmt::Debug for WorldWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("WorldWriter").field(&self.world).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(id: u32, v: f32) -> Entity {
        Entity {
            id,
            x: v,
            y: v,
            z: v,
        }
    }

    #[test]
    fn newer_ticks_apply_and_older_ones_are_stale() {
        let mut w = WorldWriter::new(4096);
        assert_eq!(w.apply(1, 10, &[e(1, 1.0), e(2, 2.0)]).applied, 2);
        let late = w.apply(1, 9, &[e(1, 9.0), e(3, 3.0)]);
        assert_eq!(
            late,
            ApplyOutcome {
                applied: 1,
                stale: 1,
                rejected: 0,
                spawned: 1,
            }
        );
        let r = w.world().clone();
        assert_eq!(r.get(1).unwrap().x, 1.0);
        assert_eq!(r.get(3).unwrap().tick, 9);
        // Same tick again is stale too.
        assert_eq!(w.apply(1, 10, &[e(2, 5.0)]).stale, 1);
        assert_eq!(r.count(), Some(10));
        assert_eq!(r.len(), 3);
    }

    #[test]
    fn despawn_removes_an_older_entity_and_its_tombstone_blocks_older_ticks() {
        let mut w = WorldWriter::new(4096);
        let r = w.world().clone();
        w.apply(1, 10, &[e(1, 1.0), e(2, 2.0)]);
        assert_eq!(r.len(), 2);
        // Stated gone at tick 10: not older than what is held, so kept.
        assert!(!w.despawn(1, 1, 10));
        assert!(w.despawn(1, 1, 11));
        assert!(!w.despawn(1, 1, 12), "already gone");
        assert_eq!((r.get(1), r.len()), (None, 1));
        // A late snapshot of tick 11 or before cannot bring it back ...
        assert_eq!(w.apply(1, 11, &[e(1, 9.0)]).stale, 1);
        assert!(r.get(1).is_none());
        // ... a newer one does, as a spawn.
        let back = w.apply(1, 13, &[e(1, 3.0), e(2, 3.0)]);
        assert_eq!((back.applied, back.spawned), (2, 1));
        assert_eq!(r.get(1).map(|s| s.x), Some(3.0));
        assert_eq!(r.len(), 2);
        // A despawn of an id never seen leaves a tombstone all the same.
        assert!(!w.despawn(1, 77, 20));
        assert_eq!(w.apply(1, 19, &[e(77, 1.0)]).stale, 1);
        assert!(!w.despawn(1, u32::MAX, 20), "beyond the capacity: ignored");
    }

    #[test]
    fn a_roster_removes_the_unlisted_in_its_range_only() {
        let mut w = WorldWriter::new(4 * PAGE as u32);
        let r = w.world().clone();
        let ids: Vec<Entity> = (0..3000).map(|id| e(id, 1.0)).collect();
        w.apply(1, 5, &ids);
        // Ids 1000..=2999 spoken for; only 1000..1010 and 2500 exist.
        let runs = [
            IdRun {
                first: 1000,
                count: 10,
            },
            IdRun {
                first: 2500,
                count: 1,
            },
        ];
        let mut gone = Vec::new();
        let n = w.apply_roster(1, 6, (1000, 2999), &runs, |id| gone.push(id));
        assert_eq!(n as usize, 2000 - 11);
        assert_eq!(gone.len(), n as usize);
        assert!(gone
            .iter()
            .all(|&id| (1010..3000).contains(&id) && id != 2500));
        assert_eq!(r.len(), 1000 + 11);
        assert!(r.get(999).is_some() && r.get(1009).is_some() && r.get(2500).is_some());
        assert!(r.get(1010).is_none() && r.get(2999).is_none());
        // An entity newer than the roster is not touched by it.
        w.apply(1, 8, &[e(2000, 1.0)]);
        assert_eq!(w.apply_roster(1, 7, (0, u32::MAX), &[], |_| {}), 1000 + 11);
        assert_eq!(r.len(), 1);
        assert!(r.get(2000).is_some());
        // A new session's roster removes the old session's entities.
        assert_eq!(w.apply_roster(2, 0, (0, u32::MAX), &[], |_| {}), 1);
        assert!(r.is_empty());
    }

    #[test]
    fn copy_alive_is_what_readers_see() {
        let mut w = WorldWriter::new(4 * PAGE as u32);
        let stamp = Stamp {
            epoch: 1,
            tick: 3,
            tick_ns: 30,
            arrival_ns: 40,
        };
        let mut spawned = Vec::new();
        w.apply_stamped(stamp, &[e(5, 1.0), e(2000, 2.0)], |id| spawned.push(id));
        assert_eq!(spawned, [5, 2000]);
        w.despawn(1, 5, 4);
        let mut mine = Vec::new();
        w.copy_alive(&mut mine);
        let mut theirs = Vec::new();
        w.world().read_all(&mut theirs);
        assert_eq!(mine, theirs);
        assert_eq!(mine.len(), 1);
        assert_eq!(
            (mine[0].id, mine[0].arrival_ns, mine[0].tick_ns),
            (2000, 40, 30)
        );
    }

    #[test]
    fn a_new_epoch_overrides_higher_ticks() {
        let mut w = WorldWriter::new(64);
        w.apply(1, 1_000, &[e(5, 1.0)]);
        assert_eq!(w.apply(2, 0, &[e(5, 2.0)]).applied, 1);
        assert_eq!(
            w.world().get(5).unwrap(),
            EntityState {
                id: 5,
                tick: 0,
                x: 2.0,
                y: 2.0,
                z: 2.0,
                arrival_ns: 0,
                tick_ns: 0,
            }
        );
        assert_eq!(w.world().count(), Some(0));
    }

    #[test]
    fn ids_beyond_capacity_are_rejected_and_memory_is_bounded() {
        let mut w = WorldWriter::new(2 * PAGE as u32);
        let out = w.apply(
            1,
            1,
            &[e(u32::MAX, 0.0), e(2 * PAGE as u32, 0.0), e(0, 0.0)],
        );
        assert_eq!(
            out,
            ApplyOutcome {
                applied: 1,
                stale: 0,
                rejected: 2,
                spawned: 1,
            }
        );
        let r = w.world();
        assert_eq!(
            r.allocated_bytes(),
            PAGE * std::mem::size_of::<Slot>() + std::mem::size_of::<Page>()
        );
        assert!(r.get(u32::MAX).is_none());
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // a reader thread against the writer
    fn readers_never_see_a_torn_entity() {
        use std::sync::atomic::AtomicBool;
        // The writer always stores x == y == z == tick mod 2^24; a torn read would differ.
        // It keeps writing until the reader has read many times while it
        // wrote (bounded in count), so the two really overlap however the
        // threads are scheduled.
        let mut w = WorldWriter::new(PAGE as u32);
        let reads = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let reader = {
            let (w, reads, done) = (w.world().clone(), Arc::clone(&reads), Arc::clone(&done));
            std::thread::spawn(move || {
                while !done.load(Ordering::Acquire) {
                    if let Some(s) = w.get(7) {
                        let expect = (s.tick % (1 << 24)) as f32;
                        assert!(s.x == expect && s.y == expect && s.z == expect, "{s:?}");
                        reads.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        };
        let mut t = 0u64;
        while reads.load(Ordering::Relaxed) < 100_000 && t < 50_000_000 {
            t += 1;
            // Coordinates are the tick modulo 2^24, exact as f32.
            w.apply(1, t, &[e(7, (t % (1 << 24)) as f32)]);
        }
        done.store(true, Ordering::Release);
        reader.join().unwrap();
        assert!(
            reads.load(Ordering::Relaxed) > 0,
            "the reader never overlapped {t} writes"
        );
    }
}
