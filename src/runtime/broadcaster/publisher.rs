//! How a game puts its own world through a broadcaster: the [`Publisher`]
//! a game's thread writes frames into, and the broadcast thread's end of it.
//!
//! # Two clocks
//!
//! * [`PublishClock::Tickcast`]: tickcast owns the clock. The game writes
//!   its entities whenever it likes ([`Publisher::frame`], then
//!   [`FrameWriter::commit`], or [`Publisher::publish`]); on each of its
//!   ticks the broadcaster sends the latest committed frame, under its own
//!   tick number. A game that commits faster than the tick rate only
//!   replaces frames; one that commits slower has its last frame sent again
//!   (the receivers see the same positions under newer ticks).
//! * [`PublishClock::Game`]: the game owns the clock. Its fixed-step loop
//!   calls [`Publisher::send`] with its own tick number; the broadcast
//!   thread, woken at once, sends it under that tick number, stamped
//!   (`scheduled_ns`) with when the tick was due on the game's fixed step
//!   (see below).
//!
//! # Stamps under the game's clock
//!
//! A game's loop calls `send` a little late now and then (a long frame, the
//! OS scheduling it late), so the time of the call would make the stamps
//! jitter, and a client interpolating on them would see entities speed up
//! and slow down. So a tick is stamped with when it was due: `anchor +
//! (tick − first_tick) / rate_hz`, with [`BroadcastConfig::rate_hz`] the
//! game's fixed-step rate and `anchor` the earliest start that agrees
//! with every call of the last 64 ticks (the smallest `now − (tick −
//! first_tick) / rate_hz` among them), so a late call moves no stamp and
//! no stamp is after its call, and a game whose step is steadily slower
//! than its rate is followed within a second instead of falling behind.
//! A game that stalls (a call more than [`STALL_NS`] later than due) is
//! re-anchored at that call: one step in the stamps, then regular ones.
//! The calls' times are read from a monotonic clock (paired once with
//! the wall clock), so a wall clock stepped back moves no stamp back.
//!
//! [`BroadcastConfig::rate_hz`]: super::BroadcastConfig::rate_hz
//!
//! # Why a triple buffer
//!
//! The hand-off is a triple buffer (the `triple_buffer` crate): three
//! frames, one the game writes, one the broadcast thread reads, and one
//! waiting between them, swapped by a single atomic exchange. So:
//!
//! * a half-written frame never goes out: the game writes into a buffer
//!   nobody else can see, and [`FrameWriter::commit`] swaps it in whole;
//! * neither side ever waits on the other, not even for a lock: a commit
//!   and a read are each one atomic swap, whatever the other is doing (a
//!   mutex would let a slow encode stall the game's frame, and a seqlock
//!   would make the reader retry and copy while the game writes);
//! * no allocation once warm: each buffer keeps its capacity, and the game
//!   writes into a buffer it cleared, not a new one.
//!
//! The cost is that a frame committed while the previous one was not yet
//! taken replaces it; under [`PublishClock::Game`] that frame is lost, and
//! counted ([`BroadcastFigures::frames_replaced`](super::BroadcastFigures::frames_replaced)).
//!
//! # What a frame is
//!
//! A frame is the whole world: every entity that exists, once each. An id
//! in the previous frame sent and not in this one is despawned, and the
//! receivers remove it (protocol version 2's despawn and roster packets).
//! Everything that would make the broadcast thread refuse a frame is
//! checked at once, on the game's thread, and the commit refused with
//! nothing published: a coordinate out of range
//! ([`PublishError::BadCoordinate`], [`PublishError::OutOfBound`]), an id
//! listed twice ([`PublishError::DuplicateId`]: one pass for a frame in
//! id order, else found as the lifecycle finds it), more entities than
//! a tick's datagrams hold ([`PublishError::TooManyEntities`]) and, with
//! compact snapshots, an id the encoder keeps no state for
//! ([`PublishError::IdTooLarge`]). (The broadcast thread still checks, and
//! counts in `frames_refused` what it refuses.)

use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::core::compact::CompactConfig;
use crate::core::lifecycle::first_duplicate;
use crate::runtime::clock;
use crate::wire::{self, Entity};

/// How late against its fixed step a game's `send` may be before its
/// stamps are re-anchored: 100 ms.
pub const STALL_NS: u64 = 100_000_000;

/// Who decides when a published frame goes out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PublishClock {
    /// The broadcaster ticks at its rate and sends the latest committed frame.
    #[default]
    Tickcast,
    /// Each [`Publisher::send`] goes out at once under the game's tick number.
    Game,
}

/// Why a frame was not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// A coordinate is NaN, infinite or beyond [`wire::MAX_COORD`].
    #[error(
        "entity {id} has a coordinate that is not finite or beyond {}",
        wire::MAX_COORD
    )]
    BadCoordinate {
        /// The first entity at fault.
        id: u32,
    },
    /// With compact snapshots ([`BroadcastConfig::compact`]), a coordinate
    /// beyond the declared bound: refused, never wrapped.
    ///
    /// [`BroadcastConfig::compact`]: super::BroadcastConfig::compact
    #[error("entity {id} has a coordinate beyond the world's bound (BroadcastConfig::compact)")]
    OutOfBound {
        /// The first entity at fault.
        id: u32,
    },
    /// An id listed twice in one frame.
    #[error("entity id {0} appears twice in the frame")]
    DuplicateId(u32),
    /// With compact snapshots, an id at or past
    /// [`MAX_ENCODER_ID`](crate::core::compact::MAX_ENCODER_ID), which the
    /// encoder keeps no state for.
    #[error(
        "entity id {id} is beyond the {} ids compact snapshots carry",
        crate::core::compact::MAX_ENCODER_ID
    )]
    IdTooLarge {
        /// The first id at fault.
        id: u32,
    },
    /// More entities than the 65535 datagrams of a tick hold at the
    /// broadcaster's payload budget.
    #[error("{entities} entities are more than a tick's 65535 datagrams hold ({max} at this payload budget)")]
    TooManyEntities {
        /// The frame's entities.
        entities: usize,
        /// The most a frame may hold.
        max: usize,
    },
    /// Under [`PublishClock::Game`], a tick number not after the last one sent.
    #[error("tick {tick} is not after the last tick sent, {last}")]
    TickNotAfter {
        /// The tick given.
        tick: u64,
        /// The last tick given before.
        last: u64,
    },
    /// The call does not fit the publisher's clock: [`Publisher::send`]
    /// under [`PublishClock::Tickcast`], or a commit under [`PublishClock::Game`].
    #[error("{}", wrong_clock(*.0))]
    WrongClock(PublishClock),
    /// The broadcaster has stopped: nothing more goes out.
    #[error("the broadcaster has stopped")]
    Stopped,
}

fn wrong_clock(clock: PublishClock) -> &'static str {
    match clock {
        PublishClock::Game => "this publisher runs on the game's clock: use send(tick, entities)",
        PublishClock::Tickcast => {
            "this publisher runs on tickcast's clock: use publish(entities) or frame().commit()"
        }
    }
}

/// One frame as it crosses from the game to the broadcast thread.
#[derive(Clone, Debug, Default)]
pub(super) struct Frame {
    /// Under [`PublishClock::Game`], the game's tick number.
    pub(super) tick: u64,
    /// Under [`PublishClock::Game`], when the game sent it (ns since the epoch).
    pub(super) stamp_ns: u64,
    pub(super) entities: Vec<Entity>,
}

/// A game's handle on a broadcaster's world: `Send`, not `Clone` (one
/// writer). Get one from [`Broadcaster::start_published`](super::Broadcaster::start_published).
///
/// Thread-safety: every method takes `&mut self`, so one thread at a time
/// uses it; move it to the thread that owns the game's state. None of them
/// blocks, waits on the broadcast thread or allocates once the buffers
/// have grown to the largest frame.
#[derive(Debug)]
pub struct Publisher {
    clock: PublishClock,
    input: triple_buffer::Input<Frame>,
    /// Under [`PublishClock::Game`], the broadcast thread's wake-up.
    wake: Option<UnixDatagram>,
    last_tick: Option<u64>,
    /// Under the game's clock: the tick period and the step's anchor.
    step: GameStep,
    /// The clock the step reads: the protocol's (ns since the Unix
    /// epoch), paired once and then advancing with the monotonic clock,
    /// so a wall clock stepped back (NTP, an operator) moves no stamp
    /// back, which every client would take for time standing still.
    clock_anchor: clock::Anchor,
    /// With compact snapshots: their config, whose bound every coordinate
    /// must be within.
    compact: Option<CompactConfig>,
    /// The ids of a frame not in id order, sorted to find a duplicate
    /// (reused).
    ids: Vec<u32>,
    /// The most entities a frame may hold: 65535 full datagrams' worth.
    max_entities: usize,
    running: Arc<AtomicBool>,
    counts: Arc<PublishCounts>,
}

/// Ticks whose calls the anchor is the earliest start of: a game whose
/// step is steadily slower than its declared rate is followed within
/// this many ticks (about a second at 60 Hz), not re-anchored with a
/// jump each time it falls [`STALL_NS`] behind.
const STEP_WINDOW: u64 = 64;

/// The game's fixed step: when each tick was due (see the module docs).
#[derive(Clone, Debug)]
struct GameStep {
    period_ns: f64,
    /// The first tick sent: ticks are counted from it.
    first: Option<u64>,
    /// The starts the calls of the last [`STEP_WINDOW`] ticks agree with
    /// (`now − (tick − first) × period`, whole ns: an f64 near 1.7e18 ns is
    /// 256 ns coarse), as (tick, start), rising in both: the first is the
    /// smallest of the window, the anchor (a sliding minimum; a start no
    /// smaller than a later one's is never the minimum again, and is
    /// dropped).
    starts: std::collections::VecDeque<(u64, i128)>,
}

impl GameStep {
    fn new(period_ns: f64) -> GameStep {
        GameStep {
            period_ns,
            first: None,
            starts: std::collections::VecDeque::new(),
        }
    }

    /// When `tick` (after every tick before) was due, for a call at
    /// `now_ns`; updates the anchor.
    fn due(&mut self, tick: u64, now_ns: u64) -> u64 {
        let first = *self.first.get_or_insert(tick);
        // Within an f64's exact integers for 2^53 ns (104 days) of ticks,
        // and rounded, not truncated, past that.
        let offset = ((tick - first) as f64 * self.period_ns).round() as i128;
        let start = i128::from(now_ns) - offset;
        if let Some(&(_, anchor)) = self.starts.front() {
            if start - anchor > i128::from(STALL_NS) {
                self.starts.clear(); // a stall: start the step again here
            }
        }
        while self.starts.back().is_some_and(|&(_, s)| s >= start) {
            self.starts.pop_back();
        }
        self.starts.push_back((tick, start));
        while self
            .starts
            .front()
            .is_some_and(|&(t, _)| t + STEP_WINDOW <= tick)
        {
            self.starts.pop_front();
        }
        let anchor = self.starts.front().map_or(start, |&(_, s)| s);
        // At most `now_ns`: the anchor is at most this call's start.
        u64::try_from(anchor + offset).unwrap_or(0)
    }
}

/// What the game's side did, counted where the broadcast thread can read it.
#[derive(Debug, Default)]
pub(super) struct PublishCounts {
    /// Frames committed.
    pub(super) committed: AtomicU64,
    /// Frames committed over one the broadcast thread had not taken yet.
    pub(super) replaced: AtomicU64,
}

/// A frame being written: [`FrameWriter::push`] the entities, then
/// [`FrameWriter::commit`]. Dropped without a commit, nothing is published.
#[derive(Debug)]
pub struct FrameWriter<'a> {
    publisher: &'a mut Publisher,
}

impl FrameWriter<'_> {
    /// Adds one entity.
    pub fn push(&mut self, entity: Entity) {
        self.entities().push(entity);
    }

    /// Adds entity `id` at `(x, y, z)`.
    pub fn set(&mut self, id: u32, x: f32, y: f32, z: f32) {
        self.push(Entity { id, x, y, z });
    }

    /// Adds every entity of `entities`.
    pub fn extend_from_slice(&mut self, entities: &[Entity]) {
        self.entities().extend_from_slice(entities);
    }

    /// The frame's entities so far, to write in place.
    pub fn entities(&mut self) -> &mut Vec<Entity> {
        &mut self.publisher.input.input_buffer_mut().entities
    }

    /// Publishes the frame whole: the next tick sends it (or a later frame).
    /// Refused, and nothing published, if a coordinate is out of range.
    pub fn commit(self) -> Result<(), PublishError> {
        self.publisher.commit(None)
    }
}

impl Publisher {
    pub(super) fn new(
        clock: PublishClock,
        rate_hz: f64,
        compact: Option<CompactConfig>,
        max_entities: usize,
        running: Arc<AtomicBool>,
    ) -> std::io::Result<(Publisher, Feed)> {
        let (input, output) = triple_buffer::triple_buffer(&Frame::default());
        let (wake, woken) = match clock {
            PublishClock::Tickcast => (None, None),
            PublishClock::Game => {
                let (a, b) = UnixDatagram::pair()?;
                a.set_nonblocking(true)?;
                b.set_nonblocking(true)?;
                (Some(a), Some(b))
            }
        };
        let counts = Arc::new(PublishCounts::default());
        let publisher = Publisher {
            clock,
            input,
            wake,
            last_tick: None,
            step: GameStep::new(1e9 / rate_hz),
            clock_anchor: clock::Anchor::paired(),
            compact,
            ids: Vec::new(),
            max_entities,
            running: Arc::clone(&running),
            counts: Arc::clone(&counts),
        };
        Ok((
            publisher,
            Feed {
                output,
                woken,
                counts,
                running,
            },
        ))
    }

    /// Which clock this publisher runs on.
    pub fn clock(&self) -> PublishClock {
        self.clock
    }

    /// Starts a new frame, empty (under [`PublishClock::Tickcast`]).
    pub fn frame(&mut self) -> FrameWriter<'_> {
        self.input.input_buffer_mut().entities.clear();
        FrameWriter { publisher: self }
    }

    /// Publishes `entities` as the whole world (under
    /// [`PublishClock::Tickcast`]): a copy, so the game may change them at once.
    pub fn publish(&mut self, entities: &[Entity]) -> Result<(), PublishError> {
        let mut frame = self.frame();
        frame.extend_from_slice(entities);
        frame.commit()
    }

    /// Sends `entities` as the whole world of tick `tick` at once (under
    /// [`PublishClock::Game`]): stamped with when the tick was due on the
    /// game's step (see the module docs), handed to the broadcast thread,
    /// and the call returns; it does not wait for the send.
    pub fn send(&mut self, tick: u64, entities: &[Entity]) -> Result<(), PublishError> {
        if self.clock != PublishClock::Game {
            return Err(PublishError::WrongClock(self.clock));
        }
        if let Some(last) = self.last_tick.filter(|&last| tick <= last) {
            return Err(PublishError::TickNotAfter { tick, last });
        }
        let buf = self.input.input_buffer_mut();
        buf.entities.clear();
        buf.entities.extend_from_slice(entities);
        self.commit(Some(tick))
    }

    fn commit(&mut self, tick: Option<u64>) -> Result<(), PublishError> {
        if tick.is_none() && self.clock == PublishClock::Game {
            return Err(PublishError::WrongClock(self.clock));
        }
        if !self.running.load(Ordering::Acquire) {
            return Err(PublishError::Stopped);
        }
        let buf = self.input.input_buffer_mut();
        if buf.entities.len() > self.max_entities {
            return Err(PublishError::TooManyEntities {
                entities: buf.entities.len(),
                max: self.max_entities,
            });
        }
        if let Some(bad) = buf
            .entities
            .iter()
            .find(|e| !wire::entities_ok(std::slice::from_ref(e)))
        {
            return Err(PublishError::BadCoordinate { id: bad.id });
        }
        if let Some(c) = &self.compact {
            if let Some(bad) = buf.entities.iter().find(|e| !c.in_bound(e)) {
                return Err(PublishError::OutOfBound { id: bad.id });
            }
            let limit = crate::core::compact::MAX_ENCODER_ID;
            if let Some(bad) = buf.entities.iter().find(|e| e.id >= limit) {
                return Err(PublishError::IdTooLarge { id: bad.id });
            }
        }
        // On the game's thread, every frame: no copy for one in id order.
        if let Some(id) = first_duplicate(&buf.entities, &mut self.ids) {
            return Err(PublishError::DuplicateId(id));
        }
        if let Some(tick) = tick {
            buf.tick = tick;
            buf.stamp_ns = self.step.due(tick, self.clock_anchor.now_ns());
            self.last_tick = Some(tick);
        }
        let replaced = self.input.publish();
        self.counts.committed.fetch_add(1, Ordering::Relaxed);
        if replaced {
            self.counts.replaced.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(wake) = &self.wake {
            // Full means a wake-up is already waiting: enough.
            let _ = wake.send(&[1]);
        }
        Ok(())
    }
}

/// The broadcast thread's end: the latest frame, and (under
/// [`PublishClock::Game`]) the socket a send wakes it on.
pub(super) struct Feed {
    output: triple_buffer::Output<Frame>,
    pub(super) woken: Option<UnixDatagram>,
    pub(super) counts: Arc<PublishCounts>,
    /// Cleared when the thread stops, so the [`Publisher`] says
    /// [`PublishError::Stopped`].
    running: Arc<AtomicBool>,
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.running.store(false, Ordering::Release);
    }
}

impl Feed {
    /// Takes the latest committed frame if there is a new one.
    pub(super) fn take_new(&mut self) -> Option<&Frame> {
        self.output
            .update()
            .then(|| self.output.peek_output_buffer())
    }

    /// The latest committed frame (empty before the first).
    pub(super) fn latest(&mut self) -> &Frame {
        self.output.read()
    }

    /// Empties the wake-up socket.
    pub(super) fn drain_wakes(&self) {
        if let Some(w) = &self.woken {
            let mut b = [0u8; 16];
            while w.recv(&mut b).is_ok() {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the broadcast thread would refuse is refused at the commit,
    /// with nothing published: too many entities, an id the compact
    /// encoder keeps no state for, an id twice.
    #[test]
    fn a_frame_the_thread_would_refuse_is_refused_at_the_commit() {
        let running = Arc::new(AtomicBool::new(true));
        let compact = Some(CompactConfig::default());
        let (mut p, mut feed) =
            Publisher::new(PublishClock::Tickcast, 60.0, compact, 3, running).unwrap();
        let e = |id| Entity {
            id,
            x: 1.0,
            y: 2.0,
            z: 3.0,
        };
        assert_eq!(
            p.publish(&[e(0), e(1), e(2), e(3)]),
            Err(PublishError::TooManyEntities {
                entities: 4,
                max: 3
            })
        );
        let limit = crate::core::compact::MAX_ENCODER_ID;
        assert_eq!(
            p.publish(&[e(0), e(limit)]),
            Err(PublishError::IdTooLarge { id: limit })
        );
        assert_eq!(
            p.publish(&[e(5), e(2), e(5)]),
            Err(PublishError::DuplicateId(5))
        );
        assert!(feed.take_new().is_none(), "nothing was published");
        p.publish(&[e(2), e(0), e(5)]).unwrap();
        assert_eq!(feed.take_new().unwrap().entities.len(), 3);
        assert_eq!(p.counts.committed.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_duplicate_id_is_found_in_order_or_not() {
        let e = |id| Entity {
            id,
            x: 0.0,
            y: 0.0,
            z: 0.0,
        };
        let mut scratch = Vec::new();
        let mut check = |ids: &[u32]| {
            let frame: Vec<Entity> = ids.iter().map(|&i| e(i)).collect();
            first_duplicate(&frame, &mut scratch)
        };
        assert_eq!(check(&[]), None);
        assert_eq!(check(&[7]), None);
        assert_eq!(check(&[1, 2, 5, 9]), None);
        assert_eq!(check(&[9, 1, 5, 2]), None);
        assert_eq!(check(&[1, 2, 2, 3]), Some(2));
        assert_eq!(check(&[9, 4, 1, 4, 9]), Some(4));
    }

    /// A game whose step is steadily slower than it declared (1 % here) is
    /// followed: its stamps keep a step near its real one and stay at
    /// most a window's drift behind its calls, never after them; they
    /// used to fall behind until the stall rule re-anchored them with a
    /// jump of STALL_NS.
    #[test]
    fn a_steadily_slow_step_is_followed_without_jumps() {
        let mut step = GameStep::new(1e6); // declared: 1 ms
        let real = 1.01e6;
        let mut last = None;
        for tick in 0..20_000u64 {
            // Late by 0 to 30 µs now and then, on top of the slow step.
            let call = (tick as f64 * real) as u64 + (tick * 7919 % 31) * 1_000;
            let stamp = step.due(tick, call);
            assert!(
                stamp <= call,
                "tick {tick}: stamp {stamp} after call {call}"
            );
            let behind = call - stamp;
            assert!(
                behind <= 31_000 + STEP_WINDOW * 10_000,
                "tick {tick}: {behind} ns behind"
            );
            if let Some(prev) = last {
                let gap = stamp - prev;
                assert!(
                    (900_000..=1_200_000).contains(&gap),
                    "tick {tick}: gap {gap}"
                );
            }
            last = Some(stamp);
        }
    }

    #[test]
    fn stamps_follow_the_fixed_step_not_the_calls() {
        let mut step = GameStep::new(10.0);
        // Calls late by 0..4 ns: the stamps stay on the step.
        let calls = [(5, 1000), (6, 1013), (7, 1020), (8, 1034), (9, 1040)];
        let stamps: Vec<u64> = calls.iter().map(|&(t, now)| step.due(t, now)).collect();
        assert_eq!(stamps, [1000, 1010, 1020, 1030, 1040]);
        // An early call moves the anchor back, and no stamp is after its call.
        assert_eq!(step.due(10, 1045), 1045);
        assert_eq!(step.due(11, 1056), 1055);
        // A stall re-anchors: one step, then regular again.
        let late = 1065 + STALL_NS + 1;
        assert_eq!(step.due(12, late), late);
        assert_eq!(step.due(13, late + 12), late + 10);
    }
}
