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
//! # Bounds
//!
//! Slots live in pages of [`PAGE`] entities allocated on first write, and ids
//! at or above `capacity` are rejected (counted by the caller), so memory is
//! bounded by `capacity` whatever arrives.

use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use crate::wire::Entity;

/// Entities per lazily allocated page.
pub const PAGE: usize = 1024;
/// Default entity capacity: ids `0..DEFAULT_CAPACITY` are accepted.
pub const DEFAULT_CAPACITY: u32 = 1 << 20;

/// One entity's fields; `epoch` 0 means never written.
#[derive(Default)]
struct Slot {
    epoch: AtomicU32,
    tick: AtomicU64,
    x: AtomicU32,
    y: AtomicU32,
    z: AtomicU32,
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

    /// Distinct entities ever applied.
    pub fn len(&self) -> usize {
        self.table.len.load(Ordering::Relaxed) as usize
    }

    /// True before any entity was applied.
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

    /// The latest state of entity `id`, or `None` if it was never applied.
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
            let epoch = slot.epoch.load(Ordering::Relaxed);
            let state = EntityState {
                id,
                tick: slot.tick.load(Ordering::Relaxed),
                x: f32::from_bits(slot.x.load(Ordering::Relaxed)),
                y: f32::from_bits(slot.y.load(Ordering::Relaxed)),
                z: f32::from_bits(slot.z.load(Ordering::Relaxed)),
            };
            fence(Ordering::Acquire);
            if page.version.load(Ordering::Relaxed) == v1 {
                return (epoch != 0).then_some(state);
            }
        }
    }

    /// Appends every applied entity, in id order, to `out`.
    pub fn read_all(&self, out: &mut Vec<EntityState>) {
        for (p, page) in self.table.pages.iter().enumerate() {
            if page.get().is_some() {
                let base = (p * PAGE) as u32;
                out.extend((base..base + PAGE as u32).filter_map(|id| self.get(id)));
            }
        }
    }
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
    /// holds an older epoch, or the same epoch and an older tick, for it.
    pub fn apply(&mut self, epoch: u32, tick: u64, entities: &[Entity]) -> ApplyOutcome {
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
            let (old_epoch, old_tick) = (
                slot.epoch.load(Ordering::Relaxed),
                slot.tick.load(Ordering::Relaxed),
            );
            if (old_epoch, old_tick) >= (epoch, tick) {
                out.stale += 1;
                continue;
            }
            slot.epoch.store(epoch, Ordering::Relaxed);
            slot.tick.store(tick, Ordering::Relaxed);
            slot.x.store(e.x.to_bits(), Ordering::Relaxed);
            slot.y.store(e.y.to_bits(), Ordering::Relaxed);
            slot.z.store(e.z.to_bits(), Ordering::Relaxed);
            if old_epoch == 0 {
                t.len.fetch_add(1, Ordering::Relaxed);
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
                rejected: 0
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
                z: 2.0
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
                rejected: 2
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
