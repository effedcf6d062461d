//! The lifecycle kinds of protocol version 2, sequenced, broadcaster →
//! receivers: despawn (kind 4) and roster (kind 5). They say which entities
//! no longer exist, so a receiver's world loses an entity the game removed.
//!
//! * A **despawn** lists `(id, tick)` records: entity `id` does not exist
//!   as of tick `tick` (it was in the tick before and is not in this one).
//!   A sender repeats each record in the despawn packets of several ticks
//!   ([`DESPAWN_COPY_AGES`]), so one lost datagram never loses it.
//! * A **roster** states, as of its `tick`, which ids in the range
//!   `first_id..=last_id` exist, as ascending runs of consecutive ids. An
//!   id in the range and in no run does not exist as of that tick. A
//!   sender states the whole id space every roster interval, split into
//!   parts whose ranges together cover `0..=u32::MAX`, so even an entity
//!   whose every despawn copy was lost is removed by the next roster.
//!
//! Both apply on their own, in any order, to any part of a world: the rule
//! for a receiver is one, "an entity whose last applied tick is older than
//! a stated tick, and which that statement says does not exist, is gone".
//!
//! Records are fixed-size and read through the same checked view as a
//! snapshot's entity records (`stream.rs`'s `records`).

use serde::{Deserialize, Serialize};

use super::codec::{self, U16, U32, U64};
use super::stream::records;
use super::{DecodeError, HEADER_LEN, MAX_DATAGRAM};

/// Bytes of a despawn's fixed fields after the header, the record count included.
pub const DESPAWN_FIXED_LEN: usize = HEADER_LEN + 2 * U64 + U64;
/// Bytes of one despawn record: id and tick.
pub const DESPAWN_RECORD_LEN: usize = U32 + U64;
/// Bytes of a roster part's fixed fields after the header, the run count included.
pub const ROSTER_FIXED_LEN: usize = HEADER_LEN + 2 * U64 + 2 * U32 + 2 * U16 + U64;
/// Bytes of one roster run: first id and count.
pub const ID_RUN_LEN: usize = 2 * U32;

/// The ages, in ticks, at which a sender repeats a despawn record: in the
/// despawn packet of the tick the entity disappeared in (age 0), and of the
/// ticks 1, 2, 4, 8, 16 and 32 later. Seven copies spread over 33 ticks
/// (0.55 s at 60 Hz): losing all of them to independent 5 % loss has a
/// chance of 8 × 10⁻¹⁰, and a burst must last over half a second.
pub const DESPAWN_COPY_AGES: [u64; 7] = [0, 1, 2, 4, 8, 16, 32];

/// Entity `id` does not exist as of tick `tick`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Despawned {
    /// The entity's id.
    pub id: u32,
    /// The first tick the entity is not in.
    pub tick: u64,
}

/// `count` consecutive ids from `first`: `first..=first + count - 1`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IdRun {
    /// The first id of the run.
    pub first: u32,
    /// How many ids; at least 1, and the run ends at or before `u32::MAX`.
    pub count: u32,
}

impl IdRun {
    /// The run's last id, or `None` if `count` is 0 or it would pass `u32::MAX`.
    pub fn last(&self) -> Option<u32> {
        self.first.checked_add(self.count.checked_sub(1)?)
    }
}

/// Fixed fields of a despawn packet (its records travel beside it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DespawnHead {
    /// The tick this packet was sent with (its records' ticks are at or before it).
    pub tick: u64,
    /// When this datagram was sent: nanoseconds since the Unix epoch.
    pub sent_ns: u64,
}

/// Fixed fields of a roster part (its runs travel beside it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterHead {
    /// The tick the roster describes: which ids exist as of this tick.
    pub tick: u64,
    /// When this datagram was sent: nanoseconds since the Unix epoch.
    pub sent_ns: u64,
    /// The first id this part speaks for.
    pub first_id: u32,
    /// The last id this part speaks for (inclusive; at least `first_id`).
    pub last_id: u32,
    /// This part's index, `0..parts`.
    pub part: u16,
    /// How many parts this roster was split into.
    pub parts: u16,
}

/// How many despawn records fit in one despawn datagram of `budget` bytes,
/// or `None` if the budget cannot hold one (or exceeds [`MAX_DATAGRAM`]).
pub fn despawns_per_packet(budget: usize) -> Option<usize> {
    per_datagram(budget, DESPAWN_FIXED_LEN, DESPAWN_RECORD_LEN)
}

/// How many runs fit in one roster part of `budget` bytes, or `None` if
/// the budget cannot hold one (or exceeds [`MAX_DATAGRAM`]).
pub fn runs_per_part(budget: usize) -> Option<usize> {
    per_datagram(budget, ROSTER_FIXED_LEN, ID_RUN_LEN)
}

fn per_datagram(budget: usize, fixed: usize, record: usize) -> Option<usize> {
    if !(fixed + record..=MAX_DATAGRAM).contains(&budget) {
        return None;
    }
    Some((budget - fixed) / record)
}

impl Despawned {
    fn from_record(r: &[u8; DESPAWN_RECORD_LEN]) -> Despawned {
        let (id, tick) = r.split_at(U32);
        Despawned {
            id: u32::from_le_bytes(id.try_into().expect("4 bytes")),
            tick: u64::from_le_bytes(tick.try_into().expect("8 bytes")),
        }
    }
}

impl IdRun {
    fn from_record(r: &[u8; ID_RUN_LEN]) -> IdRun {
        let (first, count) = r.split_at(U32);
        IdRun {
            first: u32::from_le_bytes(first.try_into().expect("4 bytes")),
            count: u32::from_le_bytes(count.try_into().expect("4 bytes")),
        }
    }
}

/// Decodes a despawn's body (`rest`, after the header), appending its
/// records to `out` when given; returns the head and the bytes used.
pub(super) fn decode_despawn(
    rest: &[u8],
    out: Option<&mut Vec<Despawned>>,
) -> Result<(DespawnHead, usize), DecodeError> {
    let ((head, count), n): ((DespawnHead, u64), usize) = codec::read(rest)?;
    let recs = records::<DESPAWN_RECORD_LEN>(&rest[n..], count)?;
    if recs
        .iter()
        .map(Despawned::from_record)
        .any(|d| d.tick > head.tick)
    {
        return Err(DecodeError::BadLifecycle);
    }
    if let Some(out) = out {
        out.extend(recs.iter().map(Despawned::from_record));
    }
    Ok((head, n + recs.len() * DESPAWN_RECORD_LEN))
}

/// Decodes a roster part's body (`rest`, after the header), appending its
/// runs to `out` when given; returns the head and the bytes used. Checks
/// the part index, the range, and that the runs are non-empty, ascending,
/// apart and inside the range.
pub(super) fn decode_roster(
    rest: &[u8],
    out: Option<&mut Vec<IdRun>>,
) -> Result<(RosterHead, usize), DecodeError> {
    let ((head, count), n): ((RosterHead, u64), usize) = codec::read(rest)?;
    let recs = records::<ID_RUN_LEN>(&rest[n..], count)?;
    if head.parts == 0 || head.part >= head.parts {
        return Err(DecodeError::BadPart);
    }
    if !runs_ok(&head, recs.iter().map(IdRun::from_record)) {
        return Err(DecodeError::BadLifecycle);
    }
    if let Some(out) = out {
        out.extend(recs.iter().map(IdRun::from_record));
    }
    Ok((head, n + recs.len() * ID_RUN_LEN))
}

/// Whether `runs` are valid for a roster part with `head`: its range is not
/// empty, and every run is non-empty, inside the range, and after the one
/// before it (runs may touch, never overlap).
pub fn runs_ok(head: &RosterHead, runs: impl IntoIterator<Item = IdRun>) -> bool {
    if head.first_id > head.last_id {
        return false;
    }
    let mut next_free = Some(head.first_id);
    for run in runs {
        let Some(last) = run.last() else {
            return false;
        };
        if next_free.is_none_or(|free| run.first < free) || last > head.last_id {
            return false;
        }
        next_free = last.checked_add(1);
    }
    true
}

/// Whether every record of a despawn with `head` is at or before its tick.
pub fn despawns_ok(head: &DespawnHead, records: &[Despawned]) -> bool {
    records.iter().all(|d| d.tick <= head.tick)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{decode_records, encode_records, Body, Packet, Payload, Records};

    fn roster(first_id: u32, last_id: u32) -> RosterHead {
        RosterHead {
            tick: 9,
            sent_ns: 10,
            first_id,
            last_id,
            part: 0,
            parts: 1,
        }
    }

    #[test]
    fn sizes_are_what_the_codec_writes() {
        let p = Packet {
            session: 1,
            seq: 2,
            body: Body::Despawn(DespawnHead {
                tick: 5,
                sent_ns: 6,
            }),
        };
        let d = [Despawned { id: 3, tick: 4 }, Despawned { id: 7, tick: 5 }];
        let mut buf = [0xa5u8; 256];
        let n = encode_records(&p, Payload::Despawned(&d), &mut buf).unwrap();
        assert_eq!(n, DESPAWN_FIXED_LEN + 2 * DESPAWN_RECORD_LEN);
        let mut out = Records::default();
        assert_eq!(decode_records(&buf[..n], &mut out), Ok(p));
        assert_eq!(out.despawned, d);

        let r = Packet {
            body: Body::Roster(roster(0, u32::MAX)),
            ..p
        };
        let runs = [
            IdRun { first: 0, count: 3 },
            IdRun { first: 3, count: 1 },
            IdRun {
                first: u32::MAX,
                count: 1,
            },
        ];
        let n = encode_records(&r, Payload::Runs(&runs), &mut buf).unwrap();
        assert_eq!(n, ROSTER_FIXED_LEN + 3 * ID_RUN_LEN);
        assert_eq!(decode_records(&buf[..n], &mut out), Ok(r));
        assert_eq!(out.runs, runs);
        assert!(out.despawned.is_empty(), "each decode clears the records");
    }

    #[test]
    fn bad_runs_and_future_despawns_are_refused() {
        let run = |first, count| IdRun { first, count };
        assert!(runs_ok(&roster(5, 5), [run(5, 1)]));
        assert!(runs_ok(&roster(5, 9), []));
        assert!(!runs_ok(&roster(6, 5), []), "empty range");
        assert!(!runs_ok(&roster(0, 9), [run(1, 0)]), "empty run");
        assert!(!runs_ok(&roster(0, 9), [run(4, 2), run(5, 1)]), "overlap");
        assert!(
            !runs_ok(&roster(0, 9), [run(4, 1), run(2, 1)]),
            "descending"
        );
        assert!(!runs_ok(&roster(0, 9), [run(8, 3)]), "past the range");
        assert!(!runs_ok(&roster(2, 9), [run(1, 2)]), "before the range");
        assert!(
            !runs_ok(&roster(0, u32::MAX), [run(u32::MAX, 2)]),
            "past u32::MAX"
        );
        assert!(!runs_ok(
            &roster(0, u32::MAX),
            [run(u32::MAX, 1), run(0, 1)]
        ));

        let head = DespawnHead {
            tick: 5,
            sent_ns: 0,
        };
        let p = Packet {
            session: 1,
            seq: 2,
            body: Body::Despawn(head),
        };
        let future = [Despawned { id: 1, tick: 6 }];
        assert!(!despawns_ok(&head, &future));
        let mut buf = [0u8; 128];
        assert!(encode_records(&p, Payload::Despawned(&future), &mut buf).is_err());
    }

    #[test]
    fn budgets_are_derived_from_sizes() {
        assert_eq!(
            despawns_per_packet(1200),
            Some((1200 - DESPAWN_FIXED_LEN) / DESPAWN_RECORD_LEN)
        );
        assert_eq!(runs_per_part(ROSTER_FIXED_LEN + ID_RUN_LEN - 1), None);
        assert_eq!(runs_per_part(MAX_DATAGRAM + 1), None);
        assert_eq!(HEADER_LEN + 16 + 8, DESPAWN_FIXED_LEN);
        assert_eq!(ROSTER_FIXED_LEN, 20 + 16 + 8 + 4 + 8);
    }
}
