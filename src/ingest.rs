//! The receive pipeline for one datagram, sans-IO: decode, classify by
//! sequence, apply to the world, measure. The caller passes the datagram and
//! its arrival time; nothing here reads a clock or touches a socket, so every
//! crafted stream is a plain unit test.

use crate::stats::{Figures, LATENCY_MAX_NS};
use crate::tracker::{Tracker, Verdict};
use crate::wire::{self, Body, DecodeError, Entity};
use crate::world::World;

/// What became of one datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Rejected by the decoder; counted as `malformed`.
    Malformed(DecodeError),
    /// A sequence number already received; counted as a duplicate.
    Duplicate,
    /// Not applied: older than what is applied, or from a replaced session.
    Stale,
    /// A snapshot part that was applied (`applied` entities written).
    Applied {
        /// Entities written.
        applied: u32,
    },
    /// A sender report or goodbye that was taken into account.
    Control,
}

/// Decodes, tracks, applies and measures datagrams for one receiver.
#[derive(Debug)]
pub struct Ingest {
    tracker: Tracker,
    figures: Figures,
    entities: Vec<Entity>,
    /// Sessions seen, counting from 1: the world's epoch for the current one.
    epoch: u32,
    /// Transit time (arrival − send) of the previous fresh packet, for jitter.
    last_transit: Option<i64>,
}

impl Default for Ingest {
    fn default() -> Self {
        Ingest::new()
    }
}

impl Ingest {
    /// An ingest that has seen nothing.
    pub fn new() -> Ingest {
        Ingest {
            tracker: Tracker::new(),
            figures: Figures::default(),
            entities: Vec::with_capacity(wire::MAX_DATAGRAM / wire::ENTITY_LEN),
            epoch: 0,
            last_transit: None,
        }
    }

    /// Handles one datagram that arrived at `arrival_ns` (nanoseconds since
    /// the Unix epoch), applying it to `world` if it is fresh.
    pub fn handle(&mut self, datagram: &[u8], arrival_ns: u64, world: &World) -> Outcome {
        let f = &mut self.figures;
        f.datagrams += 1;
        f.bytes += datagram.len() as u64;
        let packet = match wire::decode(datagram, &mut self.entities) {
            Ok(p) => p,
            Err(e) => {
                f.malformed += 1;
                return Outcome::Malformed(e);
            }
        };
        match self.tracker.on_packet(packet.session, packet.seq) {
            Verdict::Duplicate => return Outcome::Duplicate,
            Verdict::Stale => return Outcome::Stale,
            Verdict::Fresh { new_session, .. } => {
                if new_session {
                    self.epoch = self.epoch.wrapping_add(1).max(1);
                    self.last_transit = None;
                    f.sender_packets_sent = None;
                    f.sender_ticks_skipped = None;
                    f.goodbye = false;
                    f.count = None;
                }
            }
        }
        match packet.body {
            Body::Snapshot(head) => {
                let transit = arrival_ns as i64 - head.sent_ns as i64;
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
                        f.latency_negative += 1;
                        0
                    });
                    hist.saturating_record(ns.min(LATENCY_MAX_NS));
                }
                let out = world.apply(self.epoch, head.tick, &self.entities);
                f.entities_applied += out.applied as u64;
                f.entities_stale += out.stale as u64;
                f.entities_rejected += out.rejected as u64;
                if out.applied == 0 && out.stale > 0 {
                    self.tracker.count_stale();
                    return Outcome::Stale;
                }
                if out.applied > 0 || self.entities.is_empty() {
                    if f.count.is_none_or(|c| head.tick > c) {
                        f.ticks_applied += 1;
                        f.count = Some(head.tick);
                    }
                }
                Outcome::Applied {
                    applied: out.applied,
                }
            }
            Body::SenderReport(r) => {
                f.sender_packets_sent = Some(r.packets_sent);
                f.sender_ticks_skipped = Some(r.ticks_skipped);
                Outcome::Control
            }
            Body::Goodbye(g) => {
                self.tracker.on_goodbye(packet.session, g.final_seq);
                f.sender_packets_sent = Some(g.packets_sent);
                f.goodbye = true;
                Outcome::Control
            }
        }
    }

    /// Records the kernel's cumulative drop count for this receiver's sockets.
    pub fn set_socket_drops(&mut self, total: u64) {
        self.figures.socket_drops = total;
    }

    /// The figures so far.
    pub fn figures(&self) -> Figures {
        let mut f = self.figures.clone();
        let c = self.tracker.counts();
        f.expected = c.expected;
        f.received = c.received;
        f.lost = c.lost();
        f.duplicates = c.duplicates;
        f.reordered = c.reordered;
        f.stale = c.stale;
        f.restarts = c.restarts;
        f
    }
}
