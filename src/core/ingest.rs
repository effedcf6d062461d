//! The receive pipeline for one datagram, sans-IO: decode, classify by
//! sequence, apply to the world, measure. The caller passes the datagram and
//! its arrival time; nothing here reads a clock or touches a socket, so every
//! crafted stream is a plain unit test.
//!
//! An [`Ingest`] owns its world's one [`WorldWriter`]: whoever holds the
//! ingest is the world's single writer, and everyone else reads through the
//! [`World`] handles [`Ingest::world`] gives out.
//!
//! Only the stream kinds (snapshot, sender report, goodbye) are tracked. A
//! datagram of a subscription kind (16..=23) is valid but not part of the
//! stream: it is counted in `datagrams`, `bytes` and `control_datagrams`, never
//! in `malformed` or the sequence figures, and handed back decoded, as
//! [`Outcome::Subscription`], for the caller to route to its subscription
//! client ([`crate::core::subscriber::Subscriber::handle`]). Each datagram is
//! opened (with a key) and decoded here once; nothing downstream sees its
//! bytes again.
//!
//! The tracker decides what a stream packet is ([`Verdict`]); a packet it
//! holds on probation (a new session id not yet proven, a number far ahead
//! not yet confirmed: see [`crate::core::tracker`]) is [`Outcome::Unproven`]
//! and not applied, so one forged datagram can neither take the world over
//! nor make the real stream stale.
//!
//! With a key ([`Ingest::with_key`]) every datagram must pass
//! [`auth::open`] first (else `auth_failed`, nothing else counted but
//! `datagrams` and `bytes`), then, for the stream kinds, the freshness rule
//! (`sent_ns` within [`Ingest::with_freshness`]'s window of the arrival
//! time, default [`DEFAULT_FRESHNESS`]; else `stale_sealed`) and the replay
//! window (else `replayed`): both are only consulted after the tag checked,
//! so a forger cannot move the window. Without a key a sealed datagram is rejected by
//! the decoder ([`DecodeError::Sealed`]): it counts in `malformed` like every
//! decoder rejection, and in `auth_unexpected` so the mixed setup is loud.

use crate::core::compact::Decoder;
use crate::core::feed::{Event, EventKind, FeedWriter};
use crate::core::figures::Figures;
use crate::core::histogram::LATENCY_MAX_NS;
use std::time::Duration;

use crate::core::replay::{is_fresh, Replay, ReplayWindow, DEFAULT_FRESHNESS};
use crate::core::tracker::{serial_distance, Tracker, Verdict};
use crate::core::world::{Stamp, World, WorldWriter};
use crate::wire::auth::{self, AuthError, Key};
use crate::wire::{self, Body, DecodeError, Packet, Records, SnapshotHead};

/// What became of one datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Rejected by the decoder; counted as `malformed` (and, for
    /// [`DecodeError::Sealed`], as `auth_unexpected`).
    Malformed(DecodeError),
    /// With a key: refused by [`auth::open`]; counted as `auth_failed`.
    AuthFailed(AuthError),
    /// With a key: the tag checked but the replay window refused it;
    /// counted as `replayed`.
    Replayed(Replay),
    /// With a key: the tag checked but `sent_ns` is outside the freshness
    /// window of the arrival time; counted as `stale_sealed`.
    StaleSealed {
        /// Arrival − `sent_ns`, in ns (negative: sent "in the future", the
        /// sender's clock is ahead), saturated to the `i64` range.
        age_ns: i64,
    },
    /// A sequence number already received; counted as a duplicate.
    Duplicate,
    /// Not applied: older than what is applied, or from a replaced session.
    Stale,
    /// Held on probation and not applied (a new session id not yet
    /// proven, or a number far ahead not yet confirmed); counted as
    /// `unproven`.
    Unproven,
    /// A snapshot part that was applied (`applied` entities written).
    Applied {
        /// Entities written.
        applied: u32,
    },
    /// A sender report, goodbye, despawn or roster that was taken into account.
    Control,
    /// A valid datagram of a subscription kind, decoded (and, with a key,
    /// opened: its tag checked): not part of the stream, not tracked; the
    /// caller routes the packet to its subscription client.
    Subscription(Packet),
}

/// Decodes, tracks, applies and measures datagrams for one receiver, and
/// writes its world.
#[derive(Debug)]
pub struct Ingest {
    /// The world's one writer.
    world: WorldWriter,
    tracker: Tracker,
    figures: Figures,
    /// The decoded records of the datagram at hand (reused).
    records: Records,
    /// The keyframes of compact parts, per entity.
    compact: Decoder,
    /// With a game client: where frames and events go.
    feed: Option<FeedWriter>,
    /// The tick whose frame is being assembled.
    assembling: Option<Assembly>,
    /// The current session's id.
    session: Option<u64>,
    /// Sessions seen, counting from 1: the world's epoch for the current one.
    epoch: u32,
    /// Transit time (arrival − send) of the previous fresh packet, for jitter.
    last_transit: Option<i128>,
    /// Header of the newest fresh snapshot part handled.
    last_snapshot: Option<SnapshotHead>,
    /// Numbers of the sender reports and goodbyes the sender figures came from.
    newest: Newest,
    /// The key and replay window, when datagrams must be sealed.
    auth: Option<(Key, ReplayWindow)>,
    /// With a key: how far `sent_ns` may be from the arrival time; `None`
    /// checks nothing.
    freshness: Option<Duration>,
}

impl Ingest {
    /// An ingest that has seen nothing, writing `world`.
    pub fn new(world: WorldWriter) -> Ingest {
        Ingest::with_key(world, None)
    }

    /// An ingest that has seen nothing, writing `world`, and, with
    /// `Some(key)`, taking only datagrams sealed with that key (see the
    /// module docs).
    pub fn with_key(world: WorldWriter, key: Option<Key>) -> Ingest {
        let capacity = world.world().capacity();
        Ingest {
            world,
            auth: key.map(|k| (k, ReplayWindow::new())),
            tracker: Tracker::new(),
            figures: Figures::default(),
            records: Records {
                entities: Vec::with_capacity(wire::MAX_DATAGRAM / wire::ENTITY_LEN),
                ..Records::default()
            },
            compact: Decoder::new(capacity),
            feed: None,
            assembling: None,
            session: None,
            epoch: 0,
            last_transit: None,
            last_snapshot: None,
            newest: Newest::default(),
            freshness: Some(DEFAULT_FRESHNESS),
        }
    }

    /// Sets the freshness window for sealed stream datagrams (with a key
    /// only): one whose `sent_ns` is further than `window` from its arrival
    /// time, either way, is refused as `stale_sealed`. `None` turns the check
    /// off, for hosts whose clocks are not kept within any window; then only
    /// the replay window guards against replays. The default is
    /// [`DEFAULT_FRESHNESS`]. The arrival times passed to
    /// [`Ingest::handle`] must then be the receiver's wall clock.
    pub fn with_freshness(mut self, window: Option<Duration>) -> Ingest {
        self.freshness = window;
        self
    }

    /// Hands frames and events to a game client through `feed` (see
    /// [`crate::core::feed`]): a frame of the whole world each time a tick
    /// is complete, and every spawn, despawn, session change and goodbye.
    /// Without one (the default) none of that work is done.
    pub fn with_feed(mut self, feed: FeedWriter) -> Ingest {
        self.feed = Some(feed);
        self
    }

    /// Queues `event` for the game client, if there is one (the runtime's
    /// own events: subscription changes).
    pub fn push_event(&mut self, event: Event) {
        if let Some(feed) = &mut self.feed {
            feed.event(event);
        }
    }

    /// A read handle on the world this ingest writes; clone it for readers.
    pub fn world(&self) -> &World {
        self.world.world()
    }

    /// Handles one datagram that arrived at `arrival_ns` (nanoseconds since
    /// the Unix epoch), applying it to the world if it is fresh.
    pub fn handle(&mut self, datagram: &[u8], arrival_ns: u64) -> Outcome {
        self.handle_taken(datagram, arrival_ns, arrival_ns)
    }

    /// [`Ingest::handle`] for a datagram that arrived at `arrival_ns` (the
    /// kernel's stamp) and was taken off its socket at `taken_ns`, after
    /// waiting in its queue: `latency_taken` measures to `taken_ns`, every
    /// other figure uses `arrival_ns`.
    pub fn handle_taken(&mut self, datagram: &[u8], arrival_ns: u64, taken_ns: u64) -> Outcome {
        let f = &mut self.figures;
        f.counters.datagrams += 1;
        f.counters.bytes += datagram.len() as u64;
        let decoded = match &self.auth {
            Some((key, _)) => match auth::open(key, datagram) {
                Ok(inner) => wire::decode_records_opened(inner, &mut self.records),
                Err(e) => {
                    f.counters.auth_failed += 1;
                    return Outcome::AuthFailed(e);
                }
            },
            None => wire::decode_records(datagram, &mut self.records),
        };
        let packet = match decoded {
            Ok(p) => p,
            Err(e) => {
                f.counters.malformed += 1;
                if e == DecodeError::Sealed {
                    f.counters.auth_unexpected += 1;
                }
                return Outcome::Malformed(e);
            }
        };
        if !packet.body.kind().is_sequenced() {
            f.counters.control_datagrams += 1;
            return Outcome::Subscription(packet);
        }
        if let Some((_, window)) = &mut self.auth {
            let sent_ns = match &packet.body {
                Body::Snapshot(h) => h.sent_ns,
                Body::SenderReport(r) => r.sent_ns,
                Body::Goodbye(g) => g.sent_ns,
                Body::Despawn(d) => d.sent_ns,
                Body::Roster(r) => r.sent_ns,
                Body::Compact(c) => c.sent_ns,
                _ => 0, // not sequenced: returned above
            };
            if self
                .freshness
                .is_some_and(|w| !is_fresh(sent_ns, arrival_ns, w))
            {
                f.counters.stale_sealed += 1;
                let age = i128::from(arrival_ns) - i128::from(sent_ns);
                return Outcome::StaleSealed {
                    age_ns: age.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64,
                };
            }
            if let Err(r) = window.check(packet.session, packet.seq, sent_ns) {
                f.counters.replayed += 1;
                return Outcome::Replayed(r);
            }
        }
        match self.tracker.on_packet(packet.session, packet.seq) {
            Verdict::Duplicate => return Outcome::Duplicate,
            Verdict::Stale => return Outcome::Stale,
            Verdict::Unproven => return Outcome::Unproven,
            Verdict::Fresh { new_session, .. } => {
                if new_session {
                    let kind = match self.session {
                        None => EventKind::SessionStarted,
                        Some(_) => EventKind::SessionRestarted,
                    };
                    self.session = Some(packet.session);
                    self.assembling = None;
                    notify(&mut self.feed, kind, 0, 0, packet.session);
                    self.epoch = self.epoch.wrapping_add(1).max(1);
                    self.last_transit = None;
                    f.sender_packets_sent = None;
                    f.sender_ticks_skipped = None;
                    self.newest = Newest::default();
                    f.goodbye = false;
                    f.count = None;
                }
            }
        }
        // A compact part is decoded into entities here, then applied as a
        // full part is.
        // Whether the part carried no record at all: it still applies (an
        // empty world ticks), where one whose every record was refused
        // (undecodable, or beyond the capacity) does not.
        let (snapshot, no_records) = match packet.body {
            Body::Snapshot(head) => (Some(head), self.records.entities.is_empty()),
            Body::Compact(c) => {
                let o = self.compact.decode(
                    self.epoch,
                    &c,
                    &self.records.compact,
                    &mut self.records.entities,
                );
                f.counters.undecodable += u64::from(o.undecodable);
                f.counters.entities_rejected += u64::from(o.rejected);
                (Some(c.snapshot_head()), self.records.compact.is_empty())
            }
            _ => (None, false),
        };
        match packet.body {
            Body::Snapshot(_) | Body::Compact(_) => {
                let head = snapshot.expect("set for both part kinds");
                self.last_snapshot = Some(head);
                // In i128: exact for any two u64 times, so no sent_ns can
                // overflow it (the fuzzer found sent_ns >= 2^63 did in i64).
                let transit = i128::from(arrival_ns) - i128::from(head.sent_ns);
                if let Some(prev) = self.last_transit {
                    // RFC 3550 section 6.4.1: J += (|D| - J) / 16.
                    let d = (transit - prev).unsigned_abs() as f64;
                    f.jitter_ns += (d - f.jitter_ns) / 16.0;
                }
                self.last_transit = Some(transit);
                for (hist, from) in [
                    (&mut f.latency, head.sent_ns),
                    (&mut f.latency_scheduled, head.scheduled_ns),
                ] {
                    let ns = arrival_ns.checked_sub(from).unwrap_or_else(|| {
                        f.counters.latency_negative += 1;
                        0
                    });
                    hist.saturating_record(ns.min(LATENCY_MAX_NS));
                }
                let taken = taken_ns.saturating_sub(head.sent_ns);
                f.latency_taken.saturating_record(taken.min(LATENCY_MAX_NS));
                let stamp = Stamp {
                    epoch: self.epoch,
                    tick: head.tick,
                    tick_ns: head.scheduled_ns,
                    arrival_ns,
                };
                let session = packet.session;
                if let Some(feed) = &mut self.feed {
                    // A newer tick's part: the tick before is as whole as
                    // it will get, so its frame goes first.
                    match &mut self.assembling {
                        Some(a) if a.tick >= head.tick => {}
                        slot => {
                            if let Some(a) = slot.filter(|a| !a.published) {
                                feed.frame(&self.world, session, a.tick, a.tick_ns, false);
                            }
                            *slot = Some(Assembly {
                                tick: head.tick,
                                tick_ns: head.scheduled_ns,
                                parts: head.parts,
                                got: 0,
                                published: false,
                            });
                        }
                    }
                }
                let (world, feed) = (&mut self.world, &mut self.feed);
                let out = world.apply_stamped(stamp, &self.records.entities, |id| {
                    notify(feed, EventKind::Spawned, id, head.tick, session);
                });
                if let (Some(feed), Some(a)) = (&mut self.feed, &mut self.assembling) {
                    if a.tick == head.tick {
                        a.got = a.got.saturating_add(1);
                        // Complete, or its last part is in: parts go out
                        // in order, so one still missing then was lost (or
                        // is late), and waiting for the next tick would
                        // cost the game a tick.
                        let complete = a.got >= a.parts;
                        if (complete || head.part + 1 == head.parts) && !a.published {
                            a.published = true;
                            feed.frame(&self.world, session, a.tick, a.tick_ns, complete);
                        }
                    }
                }
                f.counters.entities_applied += out.applied as u64;
                f.counters.entities_stale += out.stale as u64;
                f.counters.entities_rejected += out.rejected as u64;
                if out.applied == 0 && out.stale > 0 {
                    self.tracker.count_stale();
                    return Outcome::Stale;
                }
                if (out.applied > 0 || no_records) && f.count.is_none_or(|c| head.tick > c) {
                    f.counters.ticks_applied += 1;
                    f.count = Some(head.tick);
                }
                Outcome::Applied {
                    applied: out.applied,
                }
            }
            Body::SenderReport(r) => {
                // The newest by number, not the latest to arrive: a report
                // reordered behind a newer one is older news.
                if Newest::take(&mut self.newest.packets_sent, packet.seq) {
                    f.sender_packets_sent = Some(r.packets_sent);
                }
                if Newest::take(&mut self.newest.ticks_skipped, packet.seq) {
                    f.sender_ticks_skipped = Some(r.ticks_skipped);
                }
                let tracker = &mut self.tracker;
                tracker.on_packets_sent(packet.session, packet.seq, r.packets_sent);
                Outcome::Control
            }
            Body::Goodbye(g) => {
                self.tracker.on_goodbye(packet.session, g.final_seq);
                let tracker = &mut self.tracker;
                tracker.on_packets_sent(packet.session, g.final_seq, g.packets_sent);
                if Newest::take(&mut self.newest.packets_sent, packet.seq) {
                    f.sender_packets_sent = Some(g.packets_sent);
                }
                if !f.goodbye {
                    let tick = f.count.unwrap_or(0);
                    notify(
                        &mut self.feed,
                        EventKind::StreamEnded,
                        0,
                        tick,
                        packet.session,
                    );
                }
                f.goodbye = true;
                Outcome::Control
            }
            Body::Despawn(_) => {
                let (epoch, session) = (self.epoch, packet.session);
                for d in &self.records.despawned {
                    if self.world.despawn(epoch, d.id, d.tick) {
                        f.counters.entities_despawned += 1;
                        notify(&mut self.feed, EventKind::Despawned, d.id, d.tick, session);
                    }
                }
                Outcome::Control
            }
            Body::Roster(r) => {
                let (epoch, session) = (self.epoch, packet.session);
                let feed = &mut self.feed;
                let range = (r.first_id, r.last_id);
                let removed =
                    self.world
                        .apply_roster(epoch, r.tick, range, &self.records.runs, |id| {
                            notify(feed, EventKind::Despawned, id, r.tick, session);
                        });
                f.counters.entities_removed_by_roster += u64::from(removed);
                Outcome::Control
            }
            // Returned above, before tracking.
            _ => Outcome::Subscription(packet),
        }
    }

    /// Counts a datagram of `len` bytes that the caller dropped before
    /// handing it on, because it came from a source the receiver does not
    /// accept: `foreign`, `datagrams` and `bytes`, nothing else.
    pub fn count_foreign(&mut self, len: usize) {
        self.figures.counters.datagrams += 1;
        self.figures.counters.bytes += len as u64;
        self.figures.counters.foreign += 1;
    }

    /// Records the kernel's cumulative drop count for this receiver's sockets.
    pub fn set_socket_drops(&mut self, total: u64) {
        self.figures.counters.socket_drops = total;
    }

    /// The header of the most recent fresh (not duplicate, not stale by
    /// sequence) snapshot part, applied or not: its tick and scheduled time
    /// let a receiver predict when the next tick will arrive.
    pub fn last_snapshot(&self) -> Option<SnapshotHead> {
        self.last_snapshot
    }

    /// The figures so far.
    pub fn figures(&self) -> Figures {
        let mut f = self.figures.clone();
        let c = self.tracker.counts();
        f.counters.expected = c.expected;
        f.counters.received = c.received;
        f.counters.lost = c.lost();
        f.counters.duplicates = c.duplicates;
        f.counters.reordered = c.reordered;
        f.counters.stale = c.stale;
        f.counters.restarts = c.restarts;
        f.counters.unproven = c.unproven;
        f.counters.head_loss = c.head_loss;
        f
    }
}

/// The sequence numbers, in the current session, of the packets the sender
/// figures were taken from, so that only a newer one (RFC 1982 order)
/// replaces them.
#[derive(Clone, Copy, Debug, Default)]
struct Newest {
    /// The sender report or goodbye `sender_packets_sent` is from.
    packets_sent: Option<u32>,
    /// The sender report `sender_ticks_skipped` is from.
    ticks_skipped: Option<u32>,
}

impl Newest {
    /// Whether `seq` is after `held` (or nothing is held); if so, it is held.
    fn take(held: &mut Option<u32>, seq: u32) -> bool {
        if held.is_some_and(|h| serial_distance(h, seq) <= 0) {
            return false;
        }
        *held = Some(seq);
        true
    }
}

/// Queues an event for the game client, if there is one.
fn notify(feed: &mut Option<FeedWriter>, kind: EventKind, id: u32, tick: u64, session: u64) {
    if let Some(feed) = feed {
        feed.event(Event {
            kind,
            id,
            tick,
            session,
        });
    }
}

/// The tick whose frame a game client is waiting for.
#[derive(Clone, Copy, Debug)]
struct Assembly {
    tick: u64,
    tick_ns: u64,
    parts: u16,
    /// Its fresh parts applied so far (duplicates never reach here).
    got: u16,
    /// Whether its frame was handed over.
    published: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Entity, Goodbye, Packet, SenderReport, SnapshotHead};

    /// A crafted snapshot part of `tick` carrying entity ids `ids`, sent at `sent_ns`.
    fn part(session: u64, seq: u32, tick: u64, ids: &[u32], sent_ns: u64) -> Vec<u8> {
        let entities: Vec<Entity> = ids
            .iter()
            .map(|&id| Entity {
                id,
                x: tick as f32,
                y: 0.0,
                z: 0.0,
            })
            .collect();
        let p = Packet {
            session,
            seq,
            body: Body::Snapshot(SnapshotHead {
                tick,
                scheduled_ns: sent_ns - 1_000,
                sent_ns,
                part: 0,
                parts: 1,
            }),
        };
        wire::encode_to_vec(&p, &entities).unwrap()
    }

    fn control(session: u64, seq: u32, body: Body) -> Vec<u8> {
        wire::encode_to_vec(&Packet { session, seq, body }, &[]).unwrap()
    }

    const T0: u64 = 1_700_000_000_000_000_000;

    #[test]
    fn latency_is_to_the_kernels_stamp_and_latency_taken_to_the_thread() {
        let mut ing = Ingest::new(WorldWriter::new(64));
        let d = part(1, 1, 1, &[0], T0);
        // Stamped 20 µs after sending, taken 70 µs after sending.
        ing.handle_taken(&d, T0 + 20_000, T0 + 70_000);
        // A duplicate is not fresh: no sample in either.
        assert_eq!(
            ing.handle_taken(&d, T0 + 30_000, T0 + 90_000),
            Outcome::Duplicate
        );
        let f = ing.figures();
        let one = |h: &hdrhistogram::Histogram<u64>| (h.len(), h.max());
        assert_eq!(one(&f.latency), (1, f.latency.highest_equivalent(20_000)));
        assert_eq!(
            one(&f.latency_taken),
            (1, f.latency_taken.highest_equivalent(70_000))
        );
        // Without a separate time, both are the same.
        ing.handle(&part(1, 2, 2, &[0], T0), T0 + 40_000);
        let f = ing.figures();
        assert_eq!(f.latency_taken.len(), 2);
        assert_eq!(
            f.latency_taken.max(),
            f.latency_taken.highest_equivalent(70_000)
        );
        assert_eq!(f.counters.latency_negative, 0);
    }

    #[test]
    fn crafted_stream_gives_exact_counts() {
        let mut ing = Ingest::new(WorldWriter::new(1024));
        let w = ing.world().clone();
        let s = 0xfeed;
        let base = u32::MAX - 2; // wraps after three packets
        let seq = |i: u32| base.wrapping_add(i);
        let mut feed = |d: &[u8]| ing.handle(d, T0 + 50_000);
        // Ticks 1..=6, one part each, entities 0 and 1; seq i carries tick i+1.
        assert_eq!(
            feed(&part(s, seq(0), 1, &[0, 1], T0)),
            Outcome::Applied { applied: 2 }
        );
        feed(&part(s, seq(1), 2, &[0, 1], T0));
        // seq 2 (tick 3) lost; seq 3 (tick 4) arrives, then seq 2 late: stale (tick 3 < 4).
        feed(&part(s, seq(3), 4, &[0, 1], T0));
        assert_eq!(feed(&part(s, seq(2), 3, &[0, 1], T0)), Outcome::Stale);
        // Duplicate of seq 3.
        assert_eq!(feed(&part(s, seq(3), 4, &[0, 1], T0)), Outcome::Duplicate);
        // seq 4 lost; seq 5 (tick 6) arrives.
        feed(&part(s, seq(5), 6, &[0, 1], T0));
        // Garbage.
        assert!(matches!(
            feed(b"not a tickcast datagram at all"),
            Outcome::Malformed(_)
        ));
        assert!(matches!(
            feed(&[]),
            Outcome::Malformed(DecodeError::TooShort)
        ));
        let f = ing.figures();
        assert_eq!(
            (f.counters.expected, f.counters.received, f.counters.lost),
            (6, 5, 1)
        );
        assert_eq!(
            (
                f.counters.duplicates,
                f.counters.reordered,
                f.counters.stale,
                f.counters.malformed
            ),
            (1, 1, 1, 2)
        );
        assert_eq!(
            (f.counters.ticks_applied, f.count, f.counters.restarts),
            (4, Some(6), 0)
        );
        assert_eq!(
            (f.counters.entities_applied, f.counters.entities_stale),
            (8, 2)
        );
        assert_eq!(f.counters.datagrams, 8);
        assert_eq!(f.latency.len(), 5, "fresh snapshot parts only");
        assert_eq!(w.get(1).unwrap().tick, 6);
        assert_eq!(f.counters.received + f.counters.lost, f.counters.expected);
    }

    #[test]
    fn late_part_of_an_older_tick_applies_its_own_entities() {
        // Tick 10 in two parts (entities 0..2 and 2..4); part B arrives after tick 11's part A.
        let mut ing = Ingest::new(WorldWriter::new(64));
        let w = ing.world().clone();
        ing.handle(&part(1, 0, 10, &[0, 1], T0), T0);
        ing.handle(&part(1, 2, 11, &[0, 1], T0), T0);
        assert_eq!(
            ing.handle(&part(1, 1, 10, &[2, 3], T0), T0),
            Outcome::Applied { applied: 2 }
        );
        let f = ing.figures().counters;
        assert_eq!((f.reordered, f.stale, f.ticks_applied), (1, 0, 2));
        assert_eq!(w.get(2).unwrap().tick, 10);
        assert_eq!(w.count(), Some(11));
    }

    #[test]
    fn restart_resyncs_once_proven_and_old_session_is_stale() {
        let mut ing = Ingest::new(WorldWriter::new(64));
        let w = ing.world().clone();
        ing.handle(&part(1, 100, 5_000, &[0], T0), T0);
        // New broadcaster (the old one died without a goodbye): ticks start
        // again from 0 and apply from its second consecutive number.
        assert_eq!(ing.handle(&part(2, 7, 0, &[0], T0), T0), Outcome::Unproven);
        assert_eq!(w.get(0).unwrap().tick, 5_000, "not applied on probation");
        assert_eq!(
            ing.handle(&part(2, 8, 1, &[0], T0), T0),
            Outcome::Applied { applied: 1 }
        );
        assert_eq!(
            ing.handle(&part(1, 101, 5_001, &[0], T0), T0),
            Outcome::Stale
        );
        let f = ing.figures();
        assert_eq!(
            (
                f.counters.restarts,
                f.counters.stale,
                f.counters.expected,
                f.counters.received,
                f.counters.lost
            ),
            (1, 1, 3, 3, 0)
        );
        assert_eq!((f.counters.unproven, f.counters.ticks_applied), (1, 2));
        assert_eq!(w.get(0).unwrap().tick, 1);
        assert_eq!(f.count, Some(1));
    }

    #[test]
    fn after_a_goodbye_a_new_session_applies_its_first_packet() {
        let mut ing = Ingest::new(WorldWriter::new(64));
        ing.handle(&part(1, 10, 50, &[0], T0), T0);
        let bye = Goodbye {
            sent_ns: T0,
            final_seq: 11,
            packets_sent: 2,
        };
        ing.handle(&control(1, 11, Body::Goodbye(bye)), T0);
        assert_eq!(
            ing.handle(&part(2, 0, 0, &[0], T0), T0),
            Outcome::Applied { applied: 1 }
        );
        let f = ing.figures();
        assert_eq!(
            (f.counters.restarts, f.counters.unproven, f.count, f.goodbye),
            (1, 0, Some(0), false)
        );
    }

    #[test]
    fn a_forged_new_session_changes_nothing() {
        // Attack (a) of issue 10: one datagram of a new session id in the
        // middle of a live keyless stream.
        let mut ing = Ingest::new(WorldWriter::new(64));
        let w = ing.world().clone();
        for i in 0..100u32 {
            ing.handle(&part(1, 1_000 + i, u64::from(i), &[0, 1], T0), T0);
            if i == 30 {
                let forged = part(0xf0e1_d2c3_b4a5_9687, 0, 900_000_000, &[0, 1], T0);
                assert_eq!(ing.handle(&forged, T0), Outcome::Unproven);
            }
        }
        let f = ing.figures();
        assert_eq!(
            (f.counters.restarts, f.counters.stale, f.counters.unproven),
            (0, 0, 1)
        );
        assert_eq!(
            (f.counters.expected, f.counters.received, f.counters.lost),
            (100, 100, 0)
        );
        assert_eq!((f.counters.ticks_applied, f.count), (100, Some(99)));
        assert_eq!(w.get(1).unwrap().tick, 99);
    }

    #[test]
    fn a_forged_jump_changes_nothing() {
        // Attack (b): one datagram of the live session, 100,000 numbers ahead.
        let mut ing = Ingest::new(WorldWriter::new(64));
        for i in 0..100u32 {
            ing.handle(&part(1, i, u64::from(i), &[0], T0), T0);
            if i == 30 {
                let forged = part(1, 100_000 + i, 900_000_000, &[0], T0);
                assert_eq!(ing.handle(&forged, T0), Outcome::Unproven);
            }
        }
        let f = ing.figures();
        assert_eq!(
            (f.counters.expected, f.counters.received, f.counters.lost),
            (100, 100, 0)
        );
        assert_eq!(
            (
                f.counters.stale,
                f.counters.unproven,
                f.counters.ticks_applied
            ),
            (0, 1, 100)
        );
        assert_eq!(f.count, Some(99));
    }

    #[test]
    fn freshness_refuses_sealed_datagrams_outside_the_window_either_way() {
        let key = Key::from_bytes([9; 32]);
        let sealed = |d: Vec<u8>| {
            let mut d = d;
            auth::seal(&key, &mut d);
            d
        };
        let window = DEFAULT_FRESHNESS.as_nanos() as u64;
        let now = T0 + 10 * window;
        let mut ing = Ingest::with_key(WorldWriter::new(64), Some(key.clone()));
        // Exactly the window old, and exactly the window ahead: accepted.
        let edge_old = sealed(part(1, 10, 1, &[0], now - window));
        assert_eq!(ing.handle(&edge_old, now), Outcome::Applied { applied: 1 });
        let edge_new = sealed(part(1, 11, 2, &[0], now + window));
        assert_eq!(ing.handle(&edge_new, now), Outcome::Applied { applied: 1 });
        // One ns beyond, either way: refused before the replay window.
        let old = sealed(part(1, 12, 3, &[0], now - window - 1));
        let ahead = sealed(part(1, 13, 4, &[0], now + window + 1));
        assert_eq!(
            ing.handle(&old, now),
            Outcome::StaleSealed {
                age_ns: window as i64 + 1
            }
        );
        assert_eq!(
            ing.handle(&ahead, now),
            Outcome::StaleSealed {
                age_ns: -(window as i64) - 1
            }
        );
        // ...so it did not use up its number: sent again in time, it applies.
        let fresh12 = sealed(part(1, 12, 3, &[0], now));
        assert_eq!(ing.handle(&fresh12, now), Outcome::Applied { applied: 1 });
        let f = ing.figures();
        assert_eq!(
            (
                f.counters.stale_sealed,
                f.counters.replayed,
                f.counters.received
            ),
            (2, 0, 3)
        );
        assert_eq!((f.counters.lost, f.count), (0, Some(3)));
        // Off: a skewed but honest clock is taken.
        let mut off =
            Ingest::with_key(WorldWriter::new(64), Some(key.clone())).with_freshness(None);
        assert_eq!(ing.figures().counters.malformed, 0);
        assert_eq!(off.handle(&old, now), Outcome::Applied { applied: 1 });
        // Keyless: no freshness rule (sent_ns proves nothing without a tag).
        let mut keyless = Ingest::new(WorldWriter::new(64));
        assert_eq!(
            keyless.handle(&part(1, 0, 1, &[0], 1_000_000), now),
            Outcome::Applied { applied: 1 }
        );
    }

    #[test]
    fn a_keyed_late_joiner_refuses_replays_of_what_was_sent_before_it() {
        // Attack (c): a recording of numbers 100..200 replayed to a
        // receiver whose first packet was number 240.
        let key = Key::from_bytes([9; 32]);
        let sealed = |seq: u32, tick: u64| {
            let mut d = part(1, seq, tick, &[0], T0 + u64::from(seq));
            auth::seal(&key, &mut d);
            d
        };
        let mut ing = Ingest::with_key(WorldWriter::new(64), Some(key.clone()));
        let t = |seq: u32| T0 + u64::from(seq) + 1_000;
        for seq in 240..250 {
            ing.handle(&sealed(seq, u64::from(seq)), t(seq));
        }
        for seq in 100..200 {
            assert_eq!(
                ing.handle(&sealed(seq, u64::from(seq)), t(250)),
                Outcome::Replayed(Replay::BeforeJoin)
            );
        }
        let f = ing.figures();
        assert_eq!(
            (
                f.counters.replayed,
                f.counters.expected,
                f.counters.received,
                f.counters.lost
            ),
            (100, 10, 10, 0)
        );
        assert_eq!(
            (f.counters.reordered, f.counters.ticks_applied, f.count),
            (0, 10, Some(249))
        );
    }

    #[test]
    fn goodbye_counts_tail_loss_and_report_is_recorded() {
        let mut ing = Ingest::new(WorldWriter::new(64));
        ing.handle(&part(3, 0, 1, &[0], T0), T0);
        let report = SenderReport {
            sent_ns: T0,
            packets_sent: 2,
            ticks_sent: 1,
            ticks_skipped: 4,
        };
        ing.handle(&control(3, 1, Body::SenderReport(report)), T0);
        // seq 2, 3 (data) and goodbye copies 4, 5 lost; copy 6 arrives.
        let bye = Goodbye {
            sent_ns: T0,
            final_seq: 6,
            packets_sent: 7,
        };
        assert_eq!(
            ing.handle(&control(3, 6, Body::Goodbye(bye)), T0),
            Outcome::Control
        );
        let f = ing.figures();
        assert_eq!(
            (f.counters.expected, f.counters.received, f.counters.lost),
            (7, 3, 4)
        );
        assert_eq!((f.sender_packets_sent, f.goodbye), (Some(7), true));
    }

    fn report(packets_sent: u64, ticks_skipped: u64) -> Body {
        Body::SenderReport(SenderReport {
            sent_ns: T0,
            packets_sent,
            ticks_sent: 1,
            ticks_skipped,
        })
    }

    #[test]
    fn a_reordered_sender_report_does_not_move_the_sender_figures_back() {
        // The session's first packet is 10; report 20 counts 11 packets.
        let mut ing = Ingest::new(WorldWriter::new(64));
        ing.handle(&part(1, 10, 1, &[0], T0), T0);
        ing.handle(&control(1, 20, report(11, 4)), T0);
        // Report 15, sent before it, arrives after it: older news.
        assert_eq!(
            ing.handle(&control(1, 15, report(6, 2)), T0),
            Outcome::Control
        );
        let f = ing.figures();
        assert_eq!(
            (f.sender_packets_sent, f.sender_ticks_skipped),
            (Some(11), Some(4))
        );
        // A goodbye (copy 30 of final 32) is newer than any report...
        let bye = Goodbye {
            sent_ns: T0,
            final_seq: 32,
            packets_sent: 23,
        };
        ing.handle(&control(1, 30, Body::Goodbye(bye)), T0);
        // ...so report 25, arriving late, leaves its packets_sent alone;
        // its ticks_skipped is still the newest report's.
        ing.handle(&control(1, 25, report(16, 5)), T0);
        let f = ing.figures();
        assert_eq!(
            (f.sender_packets_sent, f.sender_ticks_skipped),
            (Some(23), Some(5))
        );
        assert_eq!(f.counters.head_loss, 0, "the session began at 10");
    }

    #[test]
    fn a_sender_report_or_goodbye_reveals_the_packets_before_the_first_received() {
        // The session began at 5; this receiver's first packet is 10.
        let mut ing = Ingest::new(WorldWriter::new(64));
        ing.handle(&part(1, 10, 1, &[0], T0), T0);
        assert_eq!(ing.figures().counters.head_loss, 0, "nothing tells yet");
        // Report 12 counts itself: 5..=12, 8 packets.
        ing.handle(&control(1, 12, report(8, 0)), T0);
        let c = ing.figures().counters;
        assert_eq!((c.expected, c.received, c.lost, c.head_loss), (3, 2, 1, 5));
        // The goodbye says the same from its final_seq: 5..=15, 11 packets.
        let bye = Goodbye {
            sent_ns: T0,
            final_seq: 15,
            packets_sent: 11,
        };
        ing.handle(&control(1, 13, Body::Goodbye(bye)), T0);
        let c = ing.figures().counters;
        assert_eq!((c.expected, c.lost, c.head_loss), (6, 3, 5));
        assert_eq!(c.expected + c.head_loss, bye.packets_sent);
    }

    #[test]
    fn latency_and_jitter_follow_their_definitions() {
        let mut ing = Ingest::new(WorldWriter::new(64));
        // Transit times 10 µs, 30 µs, 10 µs: D = 20 µs twice.
        for (i, transit) in [10_000u64, 30_000, 10_000].into_iter().enumerate() {
            let sent = T0 + i as u64 * 16_666_667;
            ing.handle(&part(1, i as u32, i as u64, &[0], sent), sent + transit);
        }
        let f = ing.figures();
        let j1 = 20_000.0 / 16.0;
        let j2 = j1 + (20_000.0 - j1) / 16.0;
        assert!((f.jitter_ns - j2).abs() < 1e-6, "{}", f.jitter_ns);
        assert_eq!(f.latency.len(), 3);
        assert!(f.latency.equivalent(f.latency.max(), 30_000));
        // Scheduled time is 1 µs before send time in `part`.
        assert!(f
            .latency_scheduled
            .equivalent(f.latency_scheduled.max(), 31_000));
        // A clock behind the sender gives negative samples, counted and
        // clamped: latency_negative counts those of latency and of
        // latency_scheduled, so both of this part's samples count...
        ing.handle(&part(1, 9, 9, &[0], T0), T0 - 5_000);
        assert_eq!(ing.figures().counters.latency_negative, 2);
        // ...and an arrival between scheduled_ns and sent_ns counts one.
        ing.handle(&part(1, 10, 10, &[0], T0), T0 - 500);
        assert_eq!(ing.figures().counters.latency_negative, 3);
    }

    #[test]
    fn subscription_kinds_are_handed_back_untracked() {
        use crate::wire::{Accept, Ping, Subscribe};
        let mut ing = Ingest::new(WorldWriter::new(64));
        ing.handle(&part(1, 10, 1, &[0], T0), T0);
        // seq 0 (or anything) in a subscription kind never enters the sequence.
        for body in [
            Body::Subscribe(Subscribe { nonce: 1 }),
            Body::Accept(Accept {
                nonce: 2,
                lease_ms: 5_000,
            }),
            Body::Ping(Ping {
                nonce: 3,
                sent_ns: T0,
            }),
        ] {
            let d = control(99, 0, body);
            // Handed back decoded: the caller never decodes it again.
            let packet = Packet {
                session: 99,
                seq: 0,
                body,
            };
            assert_eq!(ing.handle(&d, T0), Outcome::Subscription(packet));
        }
        ing.handle(&part(1, 11, 2, &[0], T0), T0);
        let f = ing.figures().counters;
        assert_eq!((f.expected, f.received, f.lost), (2, 2, 0));
        assert_eq!((f.malformed, f.restarts, f.stale), (0, 0, 0));
        assert_eq!((f.control_datagrams, f.datagrams), (3, 5));
    }

    #[test]
    fn with_a_key_forged_replayed_and_unsealed_datagrams_are_counted_not_applied() {
        let key = Key::from_bytes([9; 32]);
        let other = Key::from_bytes([8; 32]);
        let sealed = |k: &Key, d: Vec<u8>| {
            let mut d = d;
            auth::seal(k, &mut d);
            d
        };
        let mut ing = Ingest::with_key(WorldWriter::new(64), Some(key.clone()));
        let w = ing.world().clone();
        let good = sealed(&key, part(1, 0, 1, &[0], T0));
        assert_eq!(ing.handle(&good, T0), Outcome::Applied { applied: 1 });
        // Replayed: the same sealed bytes again.
        assert_eq!(ing.handle(&good, T0), Outcome::Replayed(Replay::Seen));
        // Forged (another key), tampered (one bit), unsealed: auth_failed.
        let forged = sealed(&other, part(1, 1, 2, &[0], T0 + 1));
        let mut tampered = sealed(&key, part(1, 1, 2, &[0], T0 + 1));
        tampered[30] ^= 1;
        let plain = part(1, 1, 2, &[0], T0 + 1);
        for d in [&forged, &tampered, &plain] {
            assert!(matches!(ing.handle(d, T0), Outcome::AuthFailed(_)));
        }
        let f = ing.figures().counters;
        assert_eq!((f.auth_failed, f.replayed, f.malformed), (3, 1, 0));
        assert_eq!((f.received, f.duplicates, f.datagrams), (1, 0, 5));
        assert_eq!((w.count(), w.get(0).unwrap().tick), (Some(1), 1));

        // Keyless: a sealed datagram is malformed and auth_unexpected.
        let mut keyless = Ingest::new(WorldWriter::new(64));
        assert_eq!(
            keyless.handle(&good, T0),
            Outcome::Malformed(DecodeError::Sealed)
        );
        let f = keyless.figures().counters;
        assert_eq!((f.auth_unexpected, f.malformed, f.received), (1, 1, 0));
    }

    /// `auth_unexpected` follows the order of the header checks
    /// (PROTOCOL.md, "Order of checks"): magic, version, kind and reserved
    /// flags first, then AUTH, before anything of the body.
    #[test]
    fn auth_unexpected_counts_only_what_the_header_checks_call_sealed() {
        let mut sealed = part(1, 0, 1, &[0], T0);
        sealed[wire::field::FLAGS.start] = wire::FLAG_AUTH as u8;
        let mut keyless = Ingest::new(WorldWriter::new(64));
        let mut check = |d: &[u8], want: DecodeError, unexpected: u64| {
            assert_eq!(keyless.handle(d, T0), Outcome::Malformed(want));
            assert_eq!(keyless.figures().counters.auth_unexpected, unexpected);
        };
        // AUTH with a version it does not speak: the version, not Sealed.
        let mut bad_version = sealed.clone();
        bad_version[wire::field::VERSION] = 3;
        check(&bad_version, DecodeError::UnsupportedVersion(3), 0);
        // AUTH and a reserved bit: UnknownFlags, not Sealed.
        let mut reserved = sealed.clone();
        reserved[wire::field::FLAGS.start + 1] = 0x80;
        check(&reserved, DecodeError::UnknownFlags(0x8001), 0);
        // AUTH on a 25-byte datagram: Sealed, though its body is truncated.
        check(&sealed[..25], DecodeError::Sealed, 1);
        check(&sealed, DecodeError::Sealed, 2);
        let f = keyless.figures().counters;
        assert_eq!((f.malformed, f.datagrams, f.received), (4, 4, 0));
        // With a key the same 25 bytes do not open: auth_failed, not malformed.
        let key = Key::from_bytes([9; 32]);
        let mut keyed = Ingest::with_key(WorldWriter::new(64), Some(key));
        assert!(matches!(
            keyed.handle(&sealed[..25], T0),
            Outcome::AuthFailed(_)
        ));
        let f = keyed.figures().counters;
        assert_eq!((f.auth_failed, f.malformed, f.auth_unexpected), (1, 0, 0));
    }

    #[test]
    fn with_a_key_a_sealed_subscription_datagram_is_handed_back_opened() {
        use crate::wire::Pong;
        let key = Key::from_bytes([9; 32]);
        let mut ing = Ingest::with_key(WorldWriter::new(64), Some(key.clone()));
        let packet = Packet {
            session: 5,
            seq: 0,
            body: Body::Pong(Pong {
                nonce: 1,
                ping_sent_ns: T0,
                bc_recv_ns: T0 + 1,
            }),
        };
        let mut sealed = wire::encode_to_vec(&packet, &[]).unwrap();
        auth::seal(&key, &mut sealed);
        assert_eq!(ing.handle(&sealed, T0), Outcome::Subscription(packet));
        // A forged one stops at the tag: nothing to hand on.
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert_eq!(
            ing.handle(&sealed, T0),
            Outcome::AuthFailed(AuthError::BadTag)
        );
        let f = ing.figures().counters;
        assert_eq!((f.control_datagrams, f.auth_failed, f.datagrams), (1, 1, 2));
        assert_eq!((f.malformed, f.expected), (0, 0));
    }

    #[test]
    fn ids_beyond_capacity_are_counted_not_applied() {
        let mut ing = Ingest::new(WorldWriter::new(16));
        ing.handle(&part(1, 0, 1, &[3, 16, u32::MAX], T0), T0);
        let f = ing.figures().counters;
        assert_eq!((f.entities_applied, f.entities_rejected), (1, 2));
    }

    /// A sealed compact part is fresh by its own `sent_ns` (offset 36),
    /// as every stream kind is: it was once read as 0, so with a key every
    /// compact part was refused as `stale_sealed`.
    #[test]
    fn a_sealed_compact_part_is_fresh_by_its_own_sent_ns() {
        use crate::wire::{bits::BitWriter, CompactHead, Payload, Record};
        let key = Key::from_bytes([9; 32]);
        let mut ing = Ingest::with_key(WorldWriter::new(64), Some(key.clone()));
        let mut body = Vec::new();
        let mut w = BitWriter::new(&mut body);
        let key_record = Record::Key {
            id: 3,
            q: [1500, -2250, 0],
            v: [0; 3],
        };
        wire::write_record(&mut w, None, &key_record);
        w.finish();
        let packet = Packet {
            session: 1,
            seq: 0,
            body: Body::Compact(CompactHead {
                tick: 1,
                scheduled_ns: T0 - 1_000,
                sent_ns: T0,
                part: 0,
                parts: 1,
                quanta_per_unit: 1000,
                keyframe_interval: 60,
                count: 1,
            }),
        };
        let mut d = wire::encode_records_to_vec(&packet, Payload::Compact(&body)).unwrap();
        auth::seal(&key, &mut d);
        assert_eq!(ing.handle(&d, T0 + 1_000), Outcome::Applied { applied: 1 });
        let f = ing.figures().counters;
        assert_eq!((f.stale_sealed, f.entities_applied), (0, 1));
        let e = ing.world().get(3).unwrap();
        assert_eq!((e.x, e.y, e.z), (1.5, -2.25, 0.0));
    }

    /// A compact part whose every record is refused applies no tick, as a
    /// snapshot part's does: refused for its id (beyond the capacity) as
    /// for an undecodable delta. An empty one applies its tick.
    #[test]
    fn a_compact_part_of_refused_records_applies_no_tick() {
        use crate::wire::{bits::BitWriter, CompactHead, Payload, Record};
        let mut ing = Ingest::new(WorldWriter::new(16));
        let part = |seq: u32, tick: u64, records: &[Record]| {
            let mut body = Vec::new();
            let mut w = BitWriter::new(&mut body);
            let mut prev = None;
            for r in records {
                wire::write_record(&mut w, prev, r);
                prev = Some(r.id());
            }
            w.finish();
            let p = Packet {
                session: 1,
                seq,
                body: Body::Compact(CompactHead {
                    tick,
                    scheduled_ns: T0,
                    sent_ns: T0,
                    part: 0,
                    parts: 1,
                    quanta_per_unit: 1000,
                    keyframe_interval: 60,
                    count: records.len() as u16,
                }),
            };
            wire::encode_records_to_vec(&p, Payload::Compact(&body)).unwrap()
        };
        let beyond = Record::Key {
            id: 16,
            q: [0; 3],
            v: [0; 3],
        };
        let lacking = Record::Delta {
            id: 3,
            age: None,
            r: [0; 3],
        };
        ing.handle(&part(0, 1, &[beyond]), T0);
        ing.handle(&part(1, 2, &[lacking]), T0);
        let f = ing.figures();
        assert_eq!((f.count, f.counters.ticks_applied), (None, 0));
        assert_eq!(
            (f.counters.entities_rejected, f.counters.undecodable),
            (1, 1)
        );
        ing.handle(&part(2, 3, &[]), T0);
        let f = ing.figures();
        assert_eq!((f.count, f.counters.ticks_applied), (Some(3), 1));
    }
}
