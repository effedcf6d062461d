//! The sender's protocol, sans-IO: what goes on the wire, with which
//! number, in which order. [`Sender`] numbers every stream packet, splits
//! each tick's entities into parts that fit the payload budget, seals them
//! with the key, and adds the sender reports and the goodbye. It owns the
//! session's sequence and the counts the reports and the goodbye carry
//! ([`SenderCounts`]). It never reads a clock and never touches a socket:
//! the caller passes the times in, and sends what
//! [`Sender::poll_transmit`] encodes wherever it sends (the
//! [`broadcaster`](crate::runtime::broadcaster) sends each datagram to every
//! target), so the shape is quinn-proto's `poll_transmit`.
//!
//! # Use
//!
//! ```
//! use std::time::Duration;
//! use tickcast::core::sender::{Sender, SenderConfig};
//! use tickcast::wire::Entity;
//!
//! let mut sender = Sender::new(SenderConfig::default()).unwrap();
//! let world = [Entity { id: 7, x: 1.0, y: 2.0, z: 3.0 }];
//! let mut buf = Vec::new();
//! // Each tick: push it, then take its datagrams until there are none.
//! sender.push_tick(0, 1_000, &world).unwrap();
//! // Reports are due on the caller's monotonic time.
//! sender.handle_timeout(Duration::from_secs(1));
//! // `now_ns` is the protocol's clock when each datagram is encoded.
//! let mut now_ns = 1_000;
//! while let Some(t) = sender.poll_transmit(now_ns, &mut buf) {
//!     let datagram = &buf[t.range()]; // send it to every target
//!     # assert!(!datagram.is_empty());
//!     buf.clear();
//!     now_ns += 10;
//! }
//! // The end: the goodbye's copies.
//! sender.finish();
//! while sender.poll_transmit(now_ns, &mut buf).is_some() {
//!     buf.clear();
//! }
//! assert_eq!(sender.counts().packets_sent, 1 + 1 + 3); // a part, a report, the goodbye
//! ```
//!
//! A runtime that sends a whole tick in one system call (`sendmmsg`) calls
//! [`Sender::poll_transmit`] in a loop without clearing the buffer: each
//! datagram is appended, and each [`Transmit`] says where it is.
//! [`Sender::queued`] says how many are coming.
//!
//! # Two clocks, on purpose
//!
//! * **Stamps** (`sent_ns` of every packet, and the `scheduled_ns` the
//!   caller gives each tick) are in the protocol's shared clock, ns since the
//!   Unix epoch, so receivers can measure one-way latency. The caller passes
//!   the time to stamp to each [`Sender::poll_transmit`], so each part of a
//!   tick carries the time it was encoded, not the tick's start.
//! * **The report schedule** runs on the caller's monotonic time since its
//!   own start, as [`schedule`](crate::core::schedule) does
//!   ([`Sender::handle_timeout`], [`Sender::poll_timeout`]): a step of the
//!   wall clock neither bunches reports up nor stops them.
//!
//! # Guarantees
//!
//! * **One sequence.** Snapshot parts, sender reports and goodbyes share one
//!   32-bit sequence that starts at `first_seq` and goes up by exactly one
//!   per packet [`Sender::poll_transmit`] encodes, wrapping. A number is
//!   taken when its datagram is encoded and never again: a caller that sends
//!   each datagram to every target gives each receiver the same numbers.
//! * **Exact counts.** `packets_sent` counts the numbers used, whatever
//!   became of the sends; each sender report's `packets_sent` includes the
//!   report itself; the goodbye is [`GOODBYE_COPIES`] sequenced copies, each
//!   naming the last copy's number as `final_seq` and the session's total,
//!   all copies included, as `packets_sent`.
//! * **Parts.** A tick of `n` entities is sent as `max(1, ceil(n /
//!   per_part))` parts numbered `0..parts` in order, all with the tick's
//!   number and `scheduled_ns`; each holds [`Sender::per_part`] entities
//!   but the last, which holds the rest; together they hold the pushed
//!   entities once each, in the order pushed. An empty tick is one empty
//!   part. `per_part` is the most that fit the payload budget, less the
//!   tag when sealing, so every datagram, sealed or not, fits the budget.
//! * **Reports on whole intervals.** A report is due at the first
//!   [`Sender::handle_timeout`] at or after `report_interval`, then at the
//!   first at or after the next whole multiple of it past the last report;
//!   a late call gives one report, never a burst.
//! * **Order.** [`Sender::poll_transmit`] hands out the pushed tick's parts,
//!   then a due report, then the goodbye's copies. Nothing follows the goodbye.
//! * **No allocation per tick.** The pushed entities are copied into a
//!   buffer the sender keeps and reuses (it grows to the largest tick once),
//!   and datagrams are appended to the caller's buffer, which stops growing
//!   after the first tick when it is reused. The entities are copied rather
//!   than borrowed so that the caller's world is free again the moment
//!   [`Sender::push_tick`] returns (a game can move its entities on while
//!   the parts go out), and so that the sender needs no lifetime tying it to
//!   one frame's data; the copy is one `memcpy` of 16 bytes per entity, less
//!   than encoding them, and a caller that computes its positions anyway
//!   writes them into the sender's buffer with [`Sender::push_tick_with`]
//!   and saves even that.
//! * **No sequence of calls makes it panic.** What could not be encoded
//!   (too many parts, a coordinate out of range) is refused by
//!   [`Sender::push_tick`] (and [`Sender::push_tick_with`]) with a
//!   [`PushError`], and nothing is queued or counted.

use std::ops::Range;
use std::time::Duration;

use crate::core::compact::{self, CompactConfig, CompactCounts, CompactError, Encoder};
use crate::core::lifecycle::{self, Lifecycle, LifecycleConfig, LifecycleCounts};
use crate::wire::auth::{self, Key};
use crate::wire::{
    self, Body, DespawnHead, Entity, Goodbye, Kind, Packet, Payload, RosterHead, SenderReport,
    SnapshotHead, MAX_DATAGRAM,
};

/// How many copies of the goodbye are sent, each sequenced.
pub const GOODBYE_COPIES: u32 = 3;

/// What a [`Sender`] sends: its session, where its sequence starts, how
/// large its datagrams may be, how often it reports, and its key.
#[derive(Clone, Debug, PartialEq)]
pub struct SenderConfig {
    /// Session id every packet carries (a runtime picks a random one).
    pub session: u64,
    /// Sequence number of the first packet (a runtime picks a random one, like RTP).
    pub first_seq: u32,
    /// Largest datagram, in bytes, the tag included when sealing (default
    /// [`wire::DEFAULT_PAYLOAD_BUDGET`]).
    pub payload_budget: usize,
    /// How often a sender report is due, on the caller's monotonic time
    /// (default 1 s; must not be zero).
    pub report_interval: Duration,
    /// With a key every datagram is sealed ([`auth::seal_into`]); the tag's
    /// [`auth::TAG_LEN`] bytes come out of `payload_budget`.
    pub key: Option<Key>,
    /// With a lifecycle, each tick is the whole world: ids missing from a
    /// tick are despawned, and despawn and roster packets say so
    /// ([`crate::core::lifecycle`]). Without one (the default, and the
    /// built-in simulated world, whose entities never leave), only
    /// snapshots are sent.
    pub lifecycle: Option<LifecycleConfig>,
    /// With a compact config, snapshots go as compact parts (kind 6):
    /// quantized, delta-coded against each entity's keyframe, change-only
    /// ([`crate::core::compact`]). Without one (the default), as full
    /// snapshot parts (kind 1, `f32` coordinates).
    pub compact: Option<CompactConfig>,
}

impl Default for SenderConfig {
    fn default() -> Self {
        SenderConfig {
            session: 0,
            first_seq: 0,
            payload_budget: wire::DEFAULT_PAYLOAD_BUDGET,
            report_interval: Duration::from_secs(1),
            key: None,
            lifecycle: None,
            compact: None,
        }
    }
}

impl SenderConfig {
    /// Bytes an encoded packet may take before sealing: the payload budget,
    /// less the tag when there is a key.
    pub fn packet_budget(&self) -> usize {
        match self.key {
            Some(_) => self.payload_budget.saturating_sub(auth::TAG_LEN),
            None => self.payload_budget,
        }
    }
}

/// Why a [`SenderConfig`] cannot send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SenderConfigError {
    /// The payload budget cannot hold one entity (and the tag, when
    /// sealing), or exceeds a UDP datagram.
    #[error("payload budget {budget} bytes cannot hold one entity{} or exceeds {MAX_DATAGRAM}", if *.sealed { " and the tag" } else { "" })]
    BadPayloadBudget {
        /// The configured budget.
        budget: usize,
        /// Whether the datagrams are sealed (the tag takes part of it).
        sealed: bool,
    },
    /// Reports cannot be due every zero seconds.
    #[error("report interval must be greater than zero")]
    ZeroReportInterval,
    /// The compact config is invalid.
    #[error(transparent)]
    Compact(#[from] compact::CompactConfigError),
}

/// Why [`Sender::push_tick`] refused a tick. Nothing was queued or counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PushError {
    /// The previous tick still has parts to hand out: call
    /// [`Sender::poll_transmit`] until it returns `None` first.
    #[error("the previous tick still has parts queued")]
    Pending,
    /// [`Sender::finish`] was called: nothing follows the goodbye.
    #[error("the sender has said goodbye")]
    Finished,
    /// The tick needs more parts than the `u16` part count can number.
    #[error(
        "{entities} entities at {per_part} per part need {parts} parts, more than the 65535 a tick can have"
    )]
    TooManyParts {
        /// Entities pushed.
        entities: usize,
        /// Entities that fit in one part.
        per_part: usize,
        /// Parts the tick would need.
        parts: u64,
    },
    /// A coordinate is NaN, infinite or beyond [`wire::MAX_COORD`].
    #[error("an entity coordinate is not finite or beyond {}", wire::MAX_COORD)]
    BadCoordinate,
    /// With a lifecycle, a tick listed one id twice.
    #[error("entity id {0} appears twice in one tick")]
    DuplicateId(u32),
    /// Compact: a coordinate beyond the world's bound.
    #[error("entity {id} is outside the world's bound")]
    OutOfBound {
        /// The first entity at fault.
        id: u32,
    },
    /// Compact: an id beyond what the encoder keeps ([`compact::MAX_ENCODER_ID`]).
    #[error(
        "entity id {id} is beyond the {} ids a compact encoder keeps",
        compact::MAX_ENCODER_ID
    )]
    IdTooLarge {
        /// The first id at fault.
        id: u32,
    },
}

/// What a sender has done, as plain data. Counters only go up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SenderCounts {
    /// Ticks whose every part was handed out by [`Sender::poll_transmit`].
    pub ticks_sent: u64,
    /// Ticks the caller gave up on ([`Sender::skip`]).
    pub ticks_skipped: u64,
    /// Sequence numbers used: snapshot parts, reports and goodbye copies
    /// handed out, each counted once however many targets it goes to.
    pub packets_sent: u64,
}

/// One datagram [`Sender::poll_transmit`] appended to the caller's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The sequence number it carries.
    pub seq: u32,
    /// What it is: a stream kind ([`Kind::is_sequenced`]).
    pub kind: Kind,
    /// Where it starts in the buffer (the buffer's length before the call).
    pub start: usize,
    /// Its length in bytes, the tag included when sealed.
    pub len: usize,
}

impl Transmit {
    /// Where the datagram is in the buffer: `start..start + len`.
    pub fn range(&self) -> Range<usize> {
        self.start..self.start + self.len
    }
}

/// The tick being handed out part by part.
#[derive(Clone, Copy, Debug)]
struct QueuedTick {
    tick: u64,
    scheduled_ns: u64,
    /// The next part to hand out.
    part: u16,
    parts: u16,
    /// The next despawn record to hand out, of [`Lifecycle::despawns`].
    despawn_next: usize,
    /// The next roster part to hand out and how many there are (0 when no
    /// roster is due in this tick).
    roster_part: u16,
    roster_parts: u16,
}

/// The sender's protocol state machine (see the [module docs](self)).
#[derive(Clone, Debug)]
pub struct Sender {
    session: u64,
    /// The next sequence number.
    seq: u32,
    per_part: usize,
    key: Option<Key>,
    report_interval: Duration,
    /// When the next report is due, on the caller's monotonic time.
    next_report: Duration,
    counts: SenderCounts,
    /// The queued tick's entities, copied in by `push_tick` (reused).
    entities: Vec<Entity>,
    /// With a lifecycle: which ids went, which records are due, rosters.
    lifecycle: Option<Lifecycle>,
    /// With a compact config: the encoder, holding the queued tick's parts.
    compact: Option<Encoder>,
    /// Bytes a datagram may take before sealing.
    packet_budget: usize,
    despawns_per_packet: usize,
    runs_per_part: usize,
    tick: Option<QueuedTick>,
    report_due: bool,
    /// Goodbye copies still to hand out.
    goodbyes_left: u32,
    finished: bool,
}

impl Sender {
    /// A sender with nothing queued, its first report due at
    /// `report_interval`.
    pub fn new(config: SenderConfig) -> Result<Sender, SenderConfigError> {
        let bad_budget = SenderConfigError::BadPayloadBudget {
            budget: config.payload_budget,
            sealed: config.key.is_some(),
        };
        if config.payload_budget > MAX_DATAGRAM {
            // Sealed, the tag would take a part past the largest datagram.
            return Err(bad_budget);
        }
        let packet_budget = config.packet_budget();
        let per_part = wire::entities_per_part(packet_budget).ok_or(bad_budget)?;
        if config.report_interval.is_zero() {
            return Err(SenderConfigError::ZeroReportInterval);
        }
        // A budget that holds an entity holds a despawn record and a run:
        // the fixed parts are no longer and the records shorter.
        let despawns_per_packet =
            wire::despawns_per_packet(config.packet_budget()).ok_or(bad_budget)?;
        let runs_per_part = wire::runs_per_part(config.packet_budget()).ok_or(bad_budget)?;
        let compact = match config.compact {
            // A compact part must hold the longest record.
            Some(_) if config.packet_budget() < wire::MIN_COMPACT_BUDGET => return Err(bad_budget),
            Some(c) => Some(Encoder::new(c)?),
            None => None,
        };
        Ok(Sender {
            session: config.session,
            seq: config.first_seq,
            per_part,
            key: config.key,
            report_interval: config.report_interval,
            next_report: config.report_interval,
            counts: SenderCounts::default(),
            entities: Vec::new(),
            lifecycle: config.lifecycle.map(Lifecycle::new),
            compact,
            packet_budget,
            despawns_per_packet,
            runs_per_part,
            tick: None,
            report_due: false,
            goodbyes_left: 0,
            finished: false,
        })
    }

    /// The session id every packet carries.
    pub fn session(&self) -> u64 {
        self.session
    }

    /// The sequence number the next datagram will carry.
    pub fn next_seq(&self) -> u32 {
        self.seq
    }

    /// Most entities in one snapshot part.
    pub fn per_part(&self) -> usize {
        self.per_part
    }

    /// The longest datagram [`Sender::poll_transmit`] can append (a full
    /// part, a report or a goodbye, sealed when there is a key); never more
    /// than the payload budget. A batch buffer of `n` datagrams needs at
    /// most `n` times this.
    pub fn max_datagram_len(&self) -> usize {
        let part = wire::SNAPSHOT_FIXED_LEN + self.per_part * wire::ENTITY_LEN;
        let despawn = wire::DESPAWN_FIXED_LEN + self.despawns_per_packet * wire::DESPAWN_RECORD_LEN;
        let roster = wire::ROSTER_FIXED_LEN + self.runs_per_part * wire::ID_RUN_LEN;
        let tag = if self.key.is_some() { auth::TAG_LEN } else { 0 };
        let compact = if self.compact.is_some() {
            self.packet_budget
        } else {
            0
        };
        let longest = part.max(despawn).max(roster).max(compact);
        longest.max(wire::SENDER_REPORT_LEN).max(wire::GOODBYE_LEN) + tag
    }

    /// What has been sent so far.
    pub fn counts(&self) -> SenderCounts {
        self.counts
    }

    /// What the compact encoder has written (keyframes, deltas, entities
    /// left out unchanged or deferred); `None` without one.
    pub fn compact_counts(&self) -> Option<CompactCounts> {
        self.compact.as_ref().map(Encoder::counts)
    }

    /// What the lifecycle has seen (spawns, despawns, rosters); `None`
    /// without one.
    pub fn lifecycle_counts(&self) -> Option<LifecycleCounts> {
        self.lifecycle.as_ref().map(Lifecycle::counts)
    }

    /// The ids in the last tick pushed, ascending; `None` without a lifecycle.
    pub fn live_ids(&self) -> Option<&[u32]> {
        self.lifecycle.as_ref().map(Lifecycle::live)
    }

    /// How many datagrams [`Sender::poll_transmit`] will hand out before it
    /// returns `None`: the queued tick's remaining despawn packets, roster
    /// parts and snapshot parts, a due report and the goodbye's remaining
    /// copies.
    pub fn queued(&self) -> usize {
        let parts = self.tick.map_or(0, |t| {
            let despawns = self.lifecycle.as_ref().map_or(0, |l| l.despawns().len());
            let despawn_packets = (despawns - t.despawn_next).div_ceil(self.despawns_per_packet);
            despawn_packets
                + usize::from(t.roster_parts - t.roster_part)
                + usize::from(t.parts - t.part)
        });
        parts + usize::from(self.report_due) + self.goodbyes_left as usize
    }

    /// Whether [`Sender::finish`] was called and its last copy handed out.
    pub fn is_finished(&self) -> bool {
        self.finished && self.queued() == 0
    }

    /// Queues tick `tick`, due at `scheduled_ns` (the protocol's clock), with
    /// `entities` (copied: the caller may change them at once). Its parts
    /// come out of [`Sender::poll_transmit`]; the tick counts as sent when
    /// the last one does.
    pub fn push_tick(
        &mut self,
        tick: u64,
        scheduled_ns: u64,
        entities: &[Entity],
    ) -> Result<(), PushError> {
        self.push_tick_with(tick, scheduled_ns, |buf| buf.extend_from_slice(entities))
    }

    /// [`Sender::push_tick`] with the entities written by `fill` straight
    /// into the sender's own (cleared) buffer, so a world that computes its
    /// positions, such as [`SimWorld::positions_into`], saves the copy.
    /// `fill` is not called when the sender cannot take a tick
    /// ([`PushError::Pending`], [`PushError::Finished`]); what it wrote is
    /// checked as `push_tick` checks its slice, and on an error nothing is
    /// queued or counted.
    ///
    /// [`SimWorld::positions_into`]: crate::core::sim::SimWorld::positions_into
    pub fn push_tick_with(
        &mut self,
        tick: u64,
        scheduled_ns: u64,
        fill: impl FnOnce(&mut Vec<Entity>),
    ) -> Result<(), PushError> {
        if self.finished {
            return Err(PushError::Finished);
        }
        if self.tick.is_some() {
            return Err(PushError::Pending);
        }
        self.entities.clear();
        fill(&mut self.entities);
        let (parts, roster_parts) = match self.check_tick(tick) {
            Ok(p) => p,
            Err(e) => {
                self.entities.clear();
                return Err(e);
            }
        };
        self.tick = Some(QueuedTick {
            tick,
            scheduled_ns,
            part: 0,
            parts,
            despawn_next: 0,
            roster_part: 0,
            roster_parts,
        });
        Ok(())
    }

    /// Checks the tick just filled in and has it encoded: its part count,
    /// its coordinates, then the compact encoder (which refuses, changing
    /// nothing, what the lifecycle would and more, and whose parts replace
    /// the full ones), then the lifecycle. Returns the tick's parts and its
    /// roster's parts.
    fn check_tick(&mut self, tick: u64) -> Result<(u16, u16), PushError> {
        let (n, per_part) = (self.entities.len(), self.per_part);
        let full = parts_for(n, per_part);
        let mut parts = u16::try_from(full).map_err(|_| PushError::TooManyParts {
            entities: n,
            per_part,
            parts: full,
        })?;
        if !wire::entities_ok(&self.entities) {
            return Err(PushError::BadCoordinate);
        }
        if let Some(enc) = &mut self.compact {
            let body = self.packet_budget - wire::COMPACT_FIXED_LEN;
            enc.encode_tick(tick, &self.entities, body)
                .map_err(|e| match e {
                    CompactError::OutOfBound { id } => PushError::OutOfBound { id },
                    CompactError::IdTooLarge { id } => PushError::IdTooLarge { id },
                    CompactError::DuplicateId(id) => PushError::DuplicateId(id),
                    CompactError::TooManyParts => PushError::TooManyParts {
                        entities: n,
                        per_part,
                        parts: u64::from(u16::MAX) + 1,
                    },
                })?;
            parts = enc.parts().len() as u16;
        }
        let Some(l) = &mut self.lifecycle else {
            return Ok((parts, 0));
        };
        l.on_tick(tick, &self.entities)
            .map_err(|dup| PushError::DuplicateId(dup.0))?;
        let roster_parts = l
            .roster()
            .map_or(0, |r| parts_for(r.len(), self.runs_per_part));
        // Fewer runs than entities and more runs than entities per part: a
        // tick that fits its parts fits its roster.
        Ok((
            parts,
            u16::try_from(roster_parts).expect("runs fit the parts"),
        ))
    }

    /// Counts `ticks` ticks the caller gave up on (their slot passed); the
    /// next report carries the total.
    pub fn skip(&mut self, ticks: u64) {
        self.counts.ticks_skipped = self.counts.ticks_skipped.saturating_add(ticks);
    }

    /// Tells the sender the caller's monotonic time since its start: if a
    /// report is due by `elapsed`, one is queued, and the next falls due at
    /// the next whole multiple of the interval after `elapsed`. Does nothing
    /// once finished.
    pub fn handle_timeout(&mut self, elapsed: Duration) {
        if !self.finished && elapsed >= self.next_report {
            self.report_due = true;
            self.next_report = next_multiple(elapsed, self.report_interval);
        }
    }

    /// When the next report falls due (the caller's monotonic time since
    /// its start), for a caller that sleeps until then; `None` once finished.
    pub fn poll_timeout(&self) -> Option<Duration> {
        (!self.finished).then_some(self.next_report)
    }

    /// Queues the goodbye: [`GOODBYE_COPIES`] copies after whatever is still
    /// queued. Afterwards no tick is taken and no report falls due.
    /// Idempotent.
    pub fn finish(&mut self) {
        if !self.finished {
            self.finished = true;
            self.goodbyes_left = GOODBYE_COPIES;
        }
    }

    /// Encodes the next queued datagram, stamped `sent_ns = now_ns` (the
    /// protocol's clock), appends it to `buf` and says where it is; `None`
    /// when nothing is queued. Each call takes the next sequence number.
    pub fn poll_transmit(&mut self, now_ns: u64, buf: &mut Vec<u8>) -> Option<Transmit> {
        if let Some(t) = self.tick.as_mut() {
            // A tick's lifecycle goes before its snapshot parts, so a
            // receiver's complete tick never holds an entity it lacks.
            if let Some(l) = &self.lifecycle {
                let due = l.despawns();
                if t.despawn_next < due.len() {
                    let to = (t.despawn_next + self.despawns_per_packet).min(due.len());
                    let range = t.despawn_next..to;
                    t.despawn_next = to;
                    let head = DespawnHead {
                        tick: t.tick,
                        sent_ns: now_ns,
                    };
                    return Some(self.emit(Body::Despawn(head), Records::Despawned(range), buf));
                }
                if t.roster_part < t.roster_parts {
                    let head = RosterHead {
                        tick: t.tick,
                        sent_ns: now_ns,
                        first_id: 0,
                        last_id: u32::MAX,
                        part: t.roster_part,
                        parts: t.roster_parts,
                    };
                    t.roster_part += 1;
                    return Some(self.emit(Body::Roster(head), Records::RosterPart, buf));
                }
            }
        }
        let (body, entities) = if let Some(t) = self.tick.as_mut() {
            let len = self.entities.len();
            let from = (usize::from(t.part) * self.per_part).min(len);
            let to = (from + self.per_part).min(len);
            let head = SnapshotHead {
                tick: t.tick,
                scheduled_ns: t.scheduled_ns,
                sent_ns: now_ns,
                part: t.part,
                parts: t.parts,
            };
            let part = usize::from(t.part);
            t.part += 1;
            if t.part == t.parts {
                self.tick = None;
                self.counts.ticks_sent += 1;
            }
            match &self.compact {
                Some(enc) => {
                    let compact = wire::CompactHead {
                        scheduled_ns: head.scheduled_ns,
                        sent_ns: now_ns,
                        ..enc.head(head.tick, part)
                    };
                    (Body::Compact(compact), Records::CompactPart(part))
                }
                None => (Body::Snapshot(head), Records::Entities(from..to)),
            }
        } else if self.report_due {
            self.report_due = false;
            let report = SenderReport {
                sent_ns: now_ns,
                packets_sent: self.counts.packets_sent + 1,
                ticks_sent: self.counts.ticks_sent,
                ticks_skipped: self.counts.ticks_skipped,
            };
            (Body::SenderReport(report), Records::None)
        } else if self.goodbyes_left > 0 {
            let left = self.goodbyes_left;
            self.goodbyes_left -= 1;
            let goodbye = Goodbye {
                sent_ns: now_ns,
                final_seq: self.seq.wrapping_add(left - 1),
                packets_sent: self.counts.packets_sent + u64::from(left),
            };
            (Body::Goodbye(goodbye), Records::None)
        } else {
            return None;
        };
        Some(self.emit(body, entities, buf))
    }

    /// Numbers `body` with the next sequence number, encodes it with its
    /// records and seals it onto the end of `buf`.
    fn emit(&mut self, mut body: Body, records: Records, buf: &mut Vec<u8>) -> Transmit {
        let seq = self.seq;
        self.seq = seq.wrapping_add(1);
        self.counts.packets_sent += 1;
        let lifecycle = self.lifecycle.as_ref();
        let payload = match records {
            Records::None => Payload::None,
            Records::Entities(range) => Payload::Entities(&self.entities[range]),
            Records::CompactPart(part) => {
                let enc = self.compact.as_ref().expect("compact parts come from it");
                Payload::Compact(&enc.bytes()[enc.parts()[part].bytes.clone()])
            }
            Records::Despawned(range) => {
                Payload::Despawned(&lifecycle.expect("despawns come from it").despawns()[range])
            }
            Records::RosterPart => {
                let Body::Roster(head) = &mut body else {
                    unreachable!("a roster part's records go with a roster head")
                };
                let runs = lifecycle
                    .and_then(Lifecycle::roster)
                    .expect("a roster is due");
                let (first_id, last_id, chunk) = lifecycle::roster_parts(runs, self.runs_per_part)
                    .nth(usize::from(head.part))
                    .expect("the part count came from these runs");
                (head.first_id, head.last_id) = (first_id, last_id);
                Payload::Runs(chunk)
            }
        };
        let packet = Packet {
            session: self.session,
            seq,
            body,
        };
        let tag = if self.key.is_some() { auth::TAG_LEN } else { 0 };
        let start = buf.len();
        buf.resize(start + wire::encoded_len(&body, payload.len()) + tag, 0);
        let out = &mut buf[start..];
        let mut len = wire::encode_records(&packet, payload, out).expect(
            "a validated budget, counts checked by push_tick, coordinates checked by push_tick and records made by the lifecycle always encode",
        );
        if let Some(key) = &self.key {
            len = auth::seal_into(key, out, len);
        }
        buf.truncate(start + len);
        Transmit {
            seq,
            kind: body.kind(),
            start,
            len,
        }
    }
}

/// Which of the sender's records a datagram carries.
enum Records {
    None,
    Entities(Range<usize>),
    Despawned(Range<usize>),
    /// The runs of the roster part the head names.
    RosterPart,
    /// Part `n` of the compact encoder's tick.
    CompactPart(usize),
}

/// Parts a tick of `entities` needs at `per_part` a part: at least one, so
/// an empty world still ticks (a `per_part` of 0 is taken as 1).
pub fn parts_for(entities: usize, per_part: usize) -> u64 {
    let entities = u64::try_from(entities).unwrap_or(u64::MAX);
    let per_part = u64::try_from(per_part.max(1)).unwrap_or(u64::MAX);
    entities.div_ceil(per_part).max(1)
}

/// The most entities a tick holds at `per_part` a part: 65535 parts (the
/// part count is a `u16`), so `parts_for(n, per_part)` fits exactly when
/// `n` is at most this.
pub fn max_entities(per_part: usize) -> usize {
    per_part.max(1).saturating_mul(usize::from(u16::MAX))
}

/// The first multiple of `interval` after `now` (`interval` not zero).
fn next_multiple(now: Duration, interval: Duration) -> Duration {
    let step = interval.as_nanos().max(1);
    let ns = (now.as_nanos() / step + 1) * step;
    Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_entities_is_where_parts_stop_fitting_the_part_count() {
        for per_part in [1, 7, 70] {
            let max = max_entities(per_part);
            assert_eq!(parts_for(max, per_part), u64::from(u16::MAX));
            assert_eq!(parts_for(max + 1, per_part), u64::from(u16::MAX) + 1);
        }
    }
    use crate::wire::{ENTITY_LEN, SNAPSHOT_FIXED_LEN};

    const MS: Duration = Duration::from_millis(1);

    fn key() -> Key {
        Key::from_bytes([7; auth::KEY_LEN])
    }

    /// `n` entities with distinct ids and in-range coordinates.
    fn entities(n: usize) -> Vec<Entity> {
        (0..n)
            .map(|i| Entity {
                id: i as u32 * 3 + 1,
                x: i as f32,
                y: -(i as f32),
                z: 0.5,
            })
            .collect()
    }

    /// Every datagram queued, each polled into a cleared buffer at
    /// `now_ns`, `now_ns + 1`, …, as bytes with its [`Transmit`].
    fn drain(sender: &mut Sender, now_ns: u64) -> Vec<(Transmit, Vec<u8>)> {
        let mut out = Vec::new();
        let mut buf = Vec::new();
        while let Some(t) = sender.poll_transmit(now_ns + out.len() as u64, &mut buf) {
            assert_eq!(t.range(), 0..buf.len());
            out.push((t, buf.clone()));
            buf.clear();
        }
        out
    }

    /// Decodes a datagram, opening it with `key` when given.
    fn decode(datagram: &[u8], key: Option<&Key>) -> (Packet, Vec<Entity>) {
        let mut entities = Vec::new();
        let packet = match key {
            Some(k) => {
                let opened = auth::open(k, datagram).expect("sealed with the key");
                wire::decode_opened(opened, &mut entities)
            }
            None => wire::decode(datagram, &mut entities),
        }
        .expect("every datagram decodes");
        (packet, entities)
    }

    fn sender(config: SenderConfig) -> Sender {
        Sender::new(config).unwrap()
    }

    #[test]
    fn one_sequence_numbers_parts_reports_and_goodbyes_across_the_u32_wrap() {
        let mut s = sender(SenderConfig {
            session: 42,
            first_seq: u32::MAX - 1,
            report_interval: 10 * MS,
            ..SenderConfig::default()
        });
        let per_part = s.per_part();
        s.push_tick(0, 100, &entities(2 * per_part + 1)).unwrap();
        s.handle_timeout(10 * MS);
        s.finish();
        assert_eq!(s.queued(), 3 + 1 + 3);
        let got = drain(&mut s, 1000);
        let seqs: Vec<u32> = got.iter().map(|(t, _)| t.seq).collect();
        let want: Vec<u32> = (0..7).map(|i| (u32::MAX - 1).wrapping_add(i)).collect();
        assert_eq!(seqs, want);
        assert_eq!(seqs[..3], [u32::MAX - 1, u32::MAX, 0]);
        for (t, bytes) in &got {
            let (p, _) = decode(bytes, None);
            assert_eq!((p.session, p.seq, p.body.kind()), (42, t.seq, t.kind));
        }
        let kinds: Vec<Kind> = got.iter().map(|(t, _)| t.kind).collect();
        let mut order = vec![Kind::Snapshot; 3];
        order.push(Kind::SenderReport);
        order.extend([Kind::Goodbye; 3]);
        assert_eq!(kinds, order);
        assert_eq!(s.next_seq(), 5);
        assert_eq!(s.counts().packets_sent, 7);
        assert!(s.is_finished());
    }

    #[test]
    fn parts_split_at_every_budget_edge_with_and_without_a_key() {
        let max_k = (MAX_DATAGRAM - SNAPSHOT_FIXED_LEN) / ENTITY_LEN;
        for keyed in [false, true] {
            let tag = if keyed { auth::TAG_LEN } else { 0 };
            for k in [1, 2, 3, 10, 71, max_k - 1, max_k] {
                for delta in [-1isize, 0, 1] {
                    let edge = SNAPSHOT_FIXED_LEN + k * ENTITY_LEN + tag;
                    let budget = edge.checked_add_signed(delta).unwrap();
                    let config = SenderConfig {
                        payload_budget: budget,
                        key: keyed.then(key),
                        ..SenderConfig::default()
                    };
                    let per_part = if delta < 0 { k - 1 } else { k };
                    if per_part == 0 || budget > MAX_DATAGRAM {
                        assert_eq!(
                            Sender::new(config).unwrap_err(),
                            SenderConfigError::BadPayloadBudget {
                                budget,
                                sealed: keyed
                            },
                            "budget {budget}, keyed {keyed}"
                        );
                        continue;
                    }
                    check_split(config, per_part);
                }
            }
        }
    }

    /// Sends ticks of several sizes around multiples of `per_part` and
    /// checks every datagram against the budget and the parts against the
    /// entities pushed.
    fn check_split(config: SenderConfig, per_part: usize) {
        let budget = config.payload_budget;
        let key = config.key.clone();
        let tag = if key.is_some() { auth::TAG_LEN } else { 0 };
        let mut s = sender(config);
        let at = format!("budget {budget}, keyed {}", key.is_some());
        assert_eq!(s.per_part(), per_part, "{at}");
        assert!(s.max_datagram_len() <= budget, "{at}");
        // The edge: one more entity would not fit.
        assert!(SNAPSHOT_FIXED_LEN + (per_part + 1) * ENTITY_LEN + tag > budget);
        let sizes = [0, 1, per_part - 1, per_part, per_part + 1, 3 * per_part + 1];
        for (tick, &n) in sizes.iter().enumerate() {
            let pushed = entities(n);
            s.push_tick(tick as u64, 5_000 + tick as u64, &pushed)
                .unwrap();
            let parts = n.div_ceil(per_part).max(1);
            assert_eq!(s.queued(), parts, "{at}, {n} entities");
            let got = drain(&mut s, 0);
            assert_eq!(got.len(), parts, "{at}, {n} entities");
            let mut together = Vec::new();
            for (i, (t, bytes)) in got.iter().enumerate() {
                assert!(bytes.len() <= budget, "{at}: {} bytes", bytes.len());
                assert_eq!(t.len, bytes.len());
                let (p, e) = decode(bytes, key.as_ref());
                let Body::Snapshot(h) = p.body else {
                    panic!("{at}: expected a snapshot, got {:?}", p.body)
                };
                assert_eq!((h.tick, h.scheduled_ns), (tick as u64, 5_000 + tick as u64));
                assert_eq!((usize::from(h.part), usize::from(h.parts)), (i, parts));
                let full = if i + 1 < parts {
                    per_part
                } else {
                    n - i * per_part
                };
                assert_eq!(e.len(), full, "{at}, {n} entities, part {i}");
                together.extend(e);
            }
            assert_eq!(together, pushed, "{at}, {n} entities: each once, in order");
        }
        assert_eq!(s.counts().ticks_sent, sizes.len() as u64);
    }

    #[test]
    fn reports_fall_due_at_each_whole_interval_and_count_themselves() {
        let mut s = sender(SenderConfig {
            report_interval: 100 * MS,
            ..SenderConfig::default()
        });
        assert_eq!(s.poll_timeout(), Some(100 * MS));
        let mut reports = Vec::new();
        let mut packets = 0u64;
        // Ticks every 30 ms, two of them skipped; a report is looked for
        // after each tick, as the broadcaster does.
        for tick in 0..20u64 {
            let elapsed = 30 * MS * tick as u32;
            if tick == 5 {
                s.skip(2);
            }
            s.push_tick(tick, 0, &entities(3)).unwrap();
            s.handle_timeout(elapsed);
            for (t, bytes) in drain(&mut s, elapsed.as_nanos() as u64) {
                packets += 1;
                if let Body::SenderReport(r) = decode(&bytes, None).0.body {
                    assert_eq!(t.kind, Kind::SenderReport);
                    assert_eq!(r.packets_sent, packets, "a report counts itself");
                    assert_eq!(r.ticks_sent, tick + 1, "this tick included");
                    assert_eq!(r.ticks_skipped, if tick >= 5 { 2 } else { 0 });
                    assert_eq!(r.sent_ns, elapsed.as_nanos() as u64 + 1);
                    reports.push(elapsed);
                }
            }
        }
        // Ticks at 0, 30, …, 570 ms: the first at or after each 100 ms.
        let want: Vec<Duration> = [120, 210, 300, 420, 510].map(|ms| ms * MS).to_vec();
        assert_eq!(reports, want);
        assert_eq!(s.poll_timeout(), Some(600 * MS));
        assert_eq!(s.counts().packets_sent, packets);
    }

    #[test]
    fn a_late_look_gives_one_report_and_the_next_at_the_next_whole_interval() {
        let mut s = sender(SenderConfig {
            report_interval: 100 * MS,
            ..SenderConfig::default()
        });
        s.handle_timeout(99 * MS);
        assert_eq!(s.queued(), 0, "none before the interval");
        s.handle_timeout(350 * MS);
        s.handle_timeout(360 * MS);
        assert_eq!(s.queued(), 1, "one report, not one per missed interval");
        assert_eq!(s.poll_timeout(), Some(400 * MS));
        assert_eq!(drain(&mut s, 0).len(), 1);
        s.handle_timeout(399 * MS);
        assert_eq!(s.queued(), 0);
        s.handle_timeout(400 * MS);
        assert_eq!(s.queued(), 1);
        assert_eq!(s.poll_timeout(), Some(500 * MS));
    }

    #[test]
    fn next_report_is_the_next_whole_interval() {
        let s = Duration::from_secs(1);
        assert_eq!(next_multiple(1000 * MS, s), Duration::from_secs(2));
        assert_eq!(next_multiple(3500 * MS, s), Duration::from_secs(4));
        assert_eq!(
            next_multiple(Duration::MAX, s),
            Duration::from_nanos(u64::MAX)
        );
    }

    #[test]
    fn the_goodbye_is_three_consecutive_copies_naming_the_last_and_the_total() {
        let mut s = sender(SenderConfig {
            first_seq: 10,
            ..SenderConfig::default()
        });
        s.push_tick(0, 0, &entities(1)).unwrap();
        assert_eq!(drain(&mut s, 0).len(), 1);
        // Queued behind a pushed tick: the tick's part goes first.
        s.push_tick(1, 0, &entities(1)).unwrap();
        s.finish();
        s.finish();
        assert_eq!(s.poll_timeout(), None);
        s.handle_timeout(Duration::MAX);
        assert_eq!(
            s.queued(),
            1 + GOODBYE_COPIES as usize,
            "no report after finish"
        );
        let got = drain(&mut s, 500);
        assert_eq!(got[0].0.kind, Kind::Snapshot);
        let goodbyes: Vec<(u32, Goodbye)> = got[1..]
            .iter()
            .map(|(t, bytes)| match decode(bytes, None).0.body {
                Body::Goodbye(g) => (t.seq, g),
                other => panic!("expected a goodbye, got {other:?}"),
            })
            .collect();
        assert_eq!(goodbyes.len(), GOODBYE_COPIES as usize);
        assert_eq!(
            goodbyes.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(),
            [12, 13, 14]
        );
        for (i, (_, g)) in goodbyes.iter().enumerate() {
            assert_eq!(g.final_seq, 14);
            assert_eq!(g.packets_sent, 5, "2 parts and 3 copies");
            assert_eq!(g.sent_ns, 501 + i as u64, "each copy stamped when encoded");
        }
        assert_eq!(s.counts().packets_sent, 5);
        assert_eq!(s.counts().ticks_sent, 2);
        assert!(s.is_finished());
        assert_eq!(s.push_tick(2, 0, &entities(1)), Err(PushError::Finished));
        assert!(drain(&mut s, 0).is_empty(), "nothing follows the goodbye");
    }

    #[test]
    fn the_goodbye_names_the_last_copy_across_the_wrap() {
        let mut s = sender(SenderConfig {
            first_seq: u32::MAX - 1,
            ..SenderConfig::default()
        });
        s.finish();
        let got = drain(&mut s, 0);
        for (_, bytes) in &got {
            let Body::Goodbye(g) = decode(bytes, None).0.body else {
                panic!("expected a goodbye")
            };
            assert_eq!((g.final_seq, g.packets_sent), (0, 3));
        }
    }

    #[test]
    fn sealed_datagrams_open_with_the_key_and_no_other() {
        let mut s = sender(SenderConfig {
            key: Some(key()),
            report_interval: MS,
            ..SenderConfig::default()
        });
        let pushed = entities(2 * s.per_part());
        s.push_tick(3, 9, &pushed).unwrap();
        s.handle_timeout(MS);
        s.finish();
        let got = drain(&mut s, 0);
        assert_eq!(got.len(), 2 + 1 + 3);
        let mut together = Vec::new();
        for (t, bytes) in &got {
            assert!(auth::is_sealed(bytes));
            assert!(bytes.len() <= wire::DEFAULT_PAYLOAD_BUDGET);
            let (p, e) = decode(bytes, Some(&key()));
            assert_eq!((p.seq, p.body.kind()), (t.seq, t.kind));
            together.extend(e);
            let other = Key::from_bytes([8; auth::KEY_LEN]);
            assert!(auth::open(&other, bytes).is_err());
            assert_eq!(
                wire::decode(bytes, &mut Vec::new()),
                Err(wire::DecodeError::Sealed)
            );
        }
        assert_eq!(together, pushed);
    }

    #[test]
    fn an_empty_world_sends_one_empty_part() {
        let mut s = sender(SenderConfig::default());
        s.push_tick(8, 80, &[]).unwrap();
        let got = drain(&mut s, 0);
        assert_eq!(got.len(), 1);
        let (p, e) = decode(&got[0].1, None);
        let Body::Snapshot(h) = p.body else {
            panic!("expected a snapshot")
        };
        assert_eq!((h.tick, h.part, h.parts, e.len()), (8, 0, 1, 0));
        assert_eq!(got[0].1.len(), SNAPSHOT_FIXED_LEN);
        assert_eq!(s.counts().ticks_sent, 1);
    }

    #[test]
    fn each_part_is_stamped_when_it_is_encoded() {
        let mut s = sender(SenderConfig::default());
        s.push_tick(1, 777, &entities(3 * s.per_part())).unwrap();
        for (i, (_, bytes)) in drain(&mut s, 1_000).iter().enumerate() {
            let Body::Snapshot(h) = decode(bytes, None).0.body else {
                panic!("expected a snapshot")
            };
            assert_eq!((h.scheduled_ns, h.sent_ns), (777, 1_000 + i as u64));
        }
    }

    #[test]
    fn a_tick_polled_into_one_buffer_is_a_batch_of_back_to_back_datagrams() {
        let mut s = sender(SenderConfig::default());
        s.push_tick(0, 0, &entities(2 * s.per_part() + 5)).unwrap();
        s.finish();
        let mut buf = vec![0xa5; 3];
        let mut batch = Vec::new();
        let n = s.queued();
        while let Some(t) = s.poll_transmit(0, &mut buf) {
            batch.push(t);
        }
        assert_eq!(batch.len(), n);
        assert_eq!(buf[..3], [0xa5; 3], "what was in the buffer stays");
        let mut at = 3;
        for t in &batch {
            assert_eq!(t.start, at);
            assert!(t.len <= s.max_datagram_len());
            assert_eq!(decode(&buf[t.range()], None).0.seq, t.seq);
            at += t.len;
        }
        assert_eq!(at, buf.len());
    }

    #[test]
    fn push_refuses_what_it_cannot_send_and_counts_nothing() {
        // One entity a part, so 65,536 entities are one part too many.
        let mut s = sender(SenderConfig {
            payload_budget: SNAPSHOT_FIXED_LEN + ENTITY_LEN,
            ..SenderConfig::default()
        });
        let too_many = usize::from(u16::MAX) + 1;
        assert_eq!(
            s.push_tick(0, 0, &vec![Entity::default(); too_many]),
            Err(PushError::TooManyParts {
                entities: too_many,
                per_part: 1,
                parts: u64::from(u16::MAX) + 1,
            })
        );
        assert_eq!((s.queued(), s.counts()), (0, SenderCounts::default()));
        s.push_tick(0, 0, &vec![Entity::default(); too_many - 1])
            .unwrap();
        assert_eq!(s.queued(), usize::from(u16::MAX));
        let mut s = sender(SenderConfig::default());
        let mut bad = entities(3);
        for v in [f32::NAN, f32::INFINITY, -wire::MAX_COORD * 1.5] {
            bad[2].y = v;
            assert_eq!(s.push_tick(0, 0, &bad), Err(PushError::BadCoordinate));
        }
        assert_eq!((s.queued(), s.counts()), (0, SenderCounts::default()));
        // The edge is wire's: what push takes, encode takes.
        bad[2].y = -wire::MAX_COORD;
        s.push_tick(0, 0, &bad).unwrap();
        assert_eq!(s.push_tick(1, 0, &bad), Err(PushError::Pending));
        assert_eq!(drain(&mut s, 0).len(), 1);
        s.push_tick(1, 0, &bad).unwrap();
    }

    #[test]
    fn push_tick_with_sends_what_it_wrote_and_refuses_as_push_tick_does() {
        let pushed = entities(150);
        let mut a = sender(SenderConfig::default());
        let mut b = sender(SenderConfig::default());
        a.push_tick(4, 40, &pushed).unwrap();
        b.push_tick_with(4, 40, |buf| {
            assert!(buf.is_empty(), "the buffer is cleared first");
            buf.extend_from_slice(&pushed);
        })
        .unwrap();
        assert_eq!(drain(&mut a, 9), drain(&mut b, 9));
        // Refused: nothing queued or counted, and the next tick goes out.
        let mut bad = entities(3);
        bad[1].x = f32::NAN;
        let before = b.counts();
        assert_eq!(
            b.push_tick_with(5, 0, |buf| buf.extend_from_slice(&bad)),
            Err(PushError::BadCoordinate)
        );
        assert_eq!((b.queued(), b.counts()), (0, before));
        b.push_tick_with(5, 0, |buf| buf.push(pushed[0])).unwrap();
        // Pending: `fill` is not called.
        let called = std::cell::Cell::new(false);
        assert_eq!(
            b.push_tick_with(6, 0, |_| called.set(true)),
            Err(PushError::Pending)
        );
        assert!(!called.get());
        assert_eq!(drain(&mut b, 0).len(), 1);
    }

    #[test]
    fn the_buffers_stop_growing_after_the_first_tick() {
        let mut s = sender(SenderConfig::default());
        let world = entities(500);
        let mut buf = Vec::new();
        let mut caps = Vec::new();
        for tick in 0..5 {
            s.push_tick(tick, 0, &world).unwrap();
            while s.poll_transmit(0, &mut buf).is_some() {
                buf.clear();
            }
            caps.push((s.entities.capacity(), buf.capacity()));
        }
        assert!(caps.windows(2).all(|w| w[0] == w[1]), "{caps:?}");
    }

    #[test]
    fn a_bad_config_is_refused() {
        let zero = SenderConfig {
            report_interval: Duration::ZERO,
            ..SenderConfig::default()
        };
        let err = Sender::new(zero).unwrap_err();
        assert_eq!(err, SenderConfigError::ZeroReportInterval);
        assert_eq!(err.to_string(), "report interval must be greater than zero");
        let sealed = SenderConfig {
            payload_budget: SNAPSHOT_FIXED_LEN + ENTITY_LEN,
            key: Some(key()),
            ..SenderConfig::default()
        };
        assert_eq!(
            Sender::new(sealed).unwrap_err().to_string(),
            "payload budget 72 bytes cannot hold one entity and the tag or exceeds 65507"
        );
    }

    #[test]
    fn parts_for_is_at_least_one() {
        assert_eq!(parts_for(0, 71), 1);
        assert_eq!(parts_for(71, 71), 1);
        assert_eq!(parts_for(72, 71), 2);
        assert_eq!(parts_for(5, 0), 5);
    }
}
