//! What a receiver hands a game client, sans-IO: tick-consistent
//! [`Frame`]s of the whole world and a bounded queue of [`Event`]s. The
//! receiver's [`Ingest`](crate::core::ingest::Ingest) writes them as it
//! applies datagrams ([`FeedWriter`]); the game reads them from its own
//! thread ([`FeedReader`]), never waiting on the receiver and never making
//! it wait.
//!
//! # Frames: a triple buffer
//!
//! When a tick is complete (every one of its parts applied), the receiver
//! copies its world (every entity alive, each with its own tick, arrival
//! time and the sender's stamp) into a [`Frame`] and swaps it into a
//! triple buffer (the `triple_buffer` crate): one buffer the receiver
//! writes, one the game reads, one between them, swapped by one atomic
//! exchange. So the game reads a whole frame without a lock or a retry,
//! as often as it likes, in `O(1)` ([`FeedReader::frame`]), and the
//! receiver never waits on it. A tick that lacks a part (lost, or late) is
//! swapped in marked incomplete when its last part arrives (parts are sent
//! in order, so the rest is not coming in order), or, if that one was lost
//! too, when a part of a newer tick arrives, before that part is applied:
//! then each entity is as of its own latest tick. A frame copies the world once per tick; a game that
//! reads less often sees only the latest.
//!
//! # Events: a bounded queue
//!
//! Spawns, despawns, session starts and restarts, the stream's end and
//! subscription changes go into a bounded queue (`std::sync::mpsc`'s
//! `sync_channel`: a fixed ring, `try_send` never blocks). When it is full
//! (the game does not drain it) an event is dropped and counted
//! ([`FeedReader::events_dropped`]): the receiver never waits for the game.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

use crate::core::world::{EntityState, WorldWriter};

/// Default capacity of the event queue: a whole large world spawning at
/// once fits.
pub const DEFAULT_EVENT_CAPACITY: usize = 1 << 16;

/// The world as of one tick, as a game reads it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Frame {
    /// The session it is from; `None` before the first frame.
    pub session: Option<u64>,
    /// The tick it is as of; `None` before the first frame.
    pub tick: Option<u64>,
    /// Whether every part of `tick` was applied. If not, a part was lost or
    /// late, and the entities it held are as of their own latest tick.
    pub complete: bool,
    /// The sender's stamp of `tick` (`scheduled_ns`, ns since the Unix epoch).
    pub tick_ns: u64,
    /// Every entity alive, ascending by id.
    pub entities: Vec<EntityState>,
}

/// What happened, for a game to react to.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// Entity `id` appeared at `tick` (first seen, or back after a despawn).
    Spawned = 1,
    /// Entity `id` is gone as of `tick` (a despawn record, or a roster
    /// that no longer lists it).
    Despawned = 2,
    /// The first session the receiver took (`session`).
    SessionStarted = 3,
    /// A new session replaced the one before (a restarted broadcaster).
    SessionRestarted = 4,
    /// The broadcaster said goodbye: the stream `session` ended.
    StreamEnded = 5,
    /// The subscription was accepted (`id` 0).
    Subscribed = 6,
    /// The subscription was refused (`id` is the reason), or given up on
    /// (`id` 0: no answer).
    SubscriptionFailed = 7,
}

/// One event. Plain data (`#[repr(C)]`, the same across the C ABI).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// The entity, for spawns and despawns; the refusal reason for
    /// [`EventKind::SubscriptionFailed`]; else 0.
    pub id: u32,
    /// The tick it happened at (0 where there is none).
    pub tick: u64,
    /// The session it happened in.
    pub session: u64,
}

/// The receiver's end: where frames and events go.
#[derive(Debug)]
pub struct FeedWriter {
    frames: triple_buffer::Input<Frame>,
    events: SyncSender<Event>,
    dropped: Arc<AtomicU64>,
}

/// The game's end: the latest frame and the events. `Send`, not `Clone`:
/// one reader.
#[derive(Debug)]
pub struct FeedReader {
    frames: triple_buffer::Output<Frame>,
    events: Receiver<Event>,
    dropped: Arc<AtomicU64>,
}

/// A feed whose event queue holds `event_capacity` events (at least 1).
pub fn feed(event_capacity: usize) -> (FeedWriter, FeedReader) {
    let (input, output) = triple_buffer::triple_buffer(&Frame::default());
    let (tx, rx) = mpsc::sync_channel(event_capacity.max(1));
    let dropped = Arc::new(AtomicU64::new(0));
    (
        FeedWriter {
            frames: input,
            events: tx,
            dropped: Arc::clone(&dropped),
        },
        FeedReader {
            frames: output,
            events: rx,
            dropped,
        },
    )
}

impl FeedWriter {
    /// Queues `event`; drops and counts it if the queue is full. Never blocks.
    pub fn event(&mut self, event: Event) {
        match self.events.try_send(event) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => {}
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Copies `world`'s living entities into a frame as of `tick` and swaps it in.
    pub fn frame(
        &mut self,
        world: &WorldWriter,
        session: u64,
        tick: u64,
        tick_ns: u64,
        complete: bool,
    ) {
        let f = self.frames.input_buffer_mut();
        f.session = Some(session);
        f.tick = Some(tick);
        f.tick_ns = tick_ns;
        f.complete = complete;
        f.entities.clear();
        world.copy_alive(&mut f.entities);
        self.frames.publish();
    }
}

impl FeedReader {
    /// The latest frame, swapped in if a newer one came: `O(1)`, no copy,
    /// no lock. The reference is valid until the next call.
    pub fn frame(&mut self) -> &Frame {
        self.frames.read()
    }

    /// Whether a frame newer than the one last read is waiting.
    pub fn has_new_frame(&self) -> bool {
        self.frames.updated()
    }

    /// Appends every waiting event to `out`, oldest first; returns how many.
    pub fn drain_events(&mut self, out: &mut Vec<Event>) -> usize {
        let before = out.len();
        out.extend(self.events.try_iter());
        out.len() - before
    }

    /// Takes the oldest waiting event, if any.
    pub fn next_event(&mut self) -> Option<Event> {
        self.events.try_recv().ok()
    }

    /// Events dropped so far because the queue was full.
    pub fn events_dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Entity;

    #[test]
    fn a_full_queue_drops_and_counts_and_never_blocks() {
        let (mut w, mut r) = feed(2);
        let ev = |id| Event {
            kind: EventKind::Spawned,
            id,
            tick: 1,
            session: 9,
        };
        for id in 0..5 {
            w.event(ev(id));
        }
        let mut out = Vec::new();
        assert_eq!(r.drain_events(&mut out), 2);
        assert_eq!(out, [ev(0), ev(1)]);
        assert_eq!(r.events_dropped(), 3);
        assert_eq!(r.next_event(), None);
    }

    #[test]
    fn the_reader_sees_whole_frames_and_only_the_latest() {
        let (mut w, mut r) = feed(4);
        assert_eq!(r.frame().tick, None);
        let mut world = WorldWriter::new(64);
        world.apply(
            1,
            1,
            &[Entity {
                id: 3,
                ..Entity::default()
            }],
        );
        w.frame(&world, 7, 1, 100, true);
        world.apply(
            1,
            2,
            &[Entity {
                id: 4,
                ..Entity::default()
            }],
        );
        w.frame(&world, 7, 2, 200, false);
        assert!(r.has_new_frame());
        let f = r.frame();
        assert_eq!(
            (f.session, f.tick, f.tick_ns, f.complete),
            (Some(7), Some(2), 200, false)
        );
        let ids: Vec<u32> = f.entities.iter().map(|e| e.id).collect();
        assert_eq!(ids, [3, 4]);
        assert!(!r.has_new_frame());
    }
}
