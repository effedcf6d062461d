//! Streams and runs shared by the conditioner's tests: broadcaster-like
//! datagrams, a driver that pushes and releases them, and what the real
//! receive pipeline makes of what was released.

use super::{Conditioner, ExpectedFigures};
use crate::core::ingest::Ingest;
use crate::core::world::WorldWriter;
use crate::wire::{self, Body, Entity, Goodbye, Packet, SenderReport, SnapshotHead};

/// One millisecond in nanoseconds.
pub(super) const MS: u64 = 1_000_000;

/// A one-part snapshot of `tick` with one entity.
pub(super) fn snap(session: u64, seq: u32, tick: u64) -> Vec<u8> {
    let p = Packet {
        session,
        seq,
        body: Body::Snapshot(SnapshotHead {
            tick,
            scheduled_ns: 1,
            sent_ns: 2,
            part: 0,
            parts: 1,
        }),
    };
    let e = [Entity {
        id: (tick % 7) as u32,
        x: 1.0,
        y: 2.0,
        z: 3.0,
    }];
    wire::encode_to_vec(&p, &e).unwrap()
}

/// A datagram of `body` with no entities.
pub(super) fn control(session: u64, seq: u32, body: Body) -> Vec<u8> {
    wire::encode_to_vec(&Packet { session, seq, body }, &[]).unwrap()
}

/// A goodbye numbered `seq` announcing `final_seq`.
pub(super) fn goodbye(session: u64, seq: u32, final_seq: u32) -> Vec<u8> {
    let g = Goodbye {
        sent_ns: 1,
        final_seq,
        packets_sent: 0,
    };
    control(session, seq, Body::Goodbye(g))
}

/// A broadcaster-like stream: `n` numbered packets of `session` from
/// `first`, a report every 50, and three goodbye copies at the end.
pub(super) fn stream(session: u64, first: u32, n: u32) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let s = |i: u32| first.wrapping_add(i);
    for i in 0..n {
        if i % 50 == 49 {
            let r = SenderReport {
                sent_ns: 1,
                packets_sent: u64::from(i) + 1,
                ticks_sent: 0,
                ticks_skipped: 0,
            };
            out.push(control(session, s(i), Body::SenderReport(r)));
        } else {
            out.push(snap(session, s(i), u64::from(i)));
        }
    }
    for c in 0..3 {
        out.push(goodbye(session, s(n + c), s(n + 2)));
    }
    out
}

/// Pushes each datagram 1 ms apart, releasing as time passes, then
/// flushes. Returns the released datagrams in order.
pub(super) fn run(c: &mut Conditioner, input: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (i, d) in input.iter().enumerate() {
        let now = i as u64 * MS;
        c.push(now, d);
        while let Some(d) = c.poll_transmit(now) {
            out.push(d);
        }
    }
    while let Some(d) = c.poll_transmit(u64::MAX) {
        out.push(d);
    }
    out
}

/// A conditioner from a spec string.
pub(super) fn cond(spec: &str) -> Conditioner {
    Conditioner::new(spec.parse().unwrap()).unwrap()
}

/// What a real receiver pipeline reports for `released`.
pub(super) fn receiver_figures(released: &[Vec<u8>]) -> ExpectedFigures {
    let mut ing = Ingest::new(WorldWriter::new(1024));
    for d in released {
        ing.handle(d, 10);
    }
    let f = ing.figures().counters;
    ExpectedFigures {
        expected: f.expected,
        received: f.received,
        lost: f.lost,
        duplicates: f.duplicates,
        reordered: f.reordered,
        restarts: f.restarts,
        malformed: f.malformed,
        control_datagrams: f.control_datagrams,
        datagrams: f.datagrams,
        unseen: 0,
    }
}

/// The invariants between the counts, and between the expected figures.
pub(super) fn check_invariants(c: &Conditioner) {
    let k = c.counts();
    assert_eq!(
        k.datagrams_in + k.duplicated,
        k.dropped + k.delivered + k.held,
        "{k:?}"
    );
    let e = c.expected_receiver_figures();
    assert_eq!(e.received + e.lost + e.unseen, e.expected, "{e:?}");
}
