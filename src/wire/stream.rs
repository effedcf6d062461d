//! The stream kinds, sequenced, broadcaster → receivers: snapshot (kind 1),
//! sender report (kind 2) and goodbye (kind 3). Their fields, their lengths
//! (derived from the field types, never typed twice), how many entity
//! records fit a payload budget, and the checked view a snapshot's records
//! are read through.
//!
//! # The entity-record view
//!
//! The codec reads a snapshot's fixed fields and its record count. The
//! records themselves have a fixed 16-byte layout ([`ENTITY_LEN`]) and are
//! read through a view checked once ([`records`]: the count must fit the
//! bytes present, so a lying count is refused before a record is read),
//! because serde's
//! per-element path costs about 100 instructions per entity (callgrind)
//! against about 10. The tests keep the serde path as a reference, and the
//! two must agree on any bytes.

use serde::{Deserialize, Serialize};

use super::codec::{self, U16, U32, U64};
use super::{DecodeError, HEADER_LEN, MAX_COORD, MAX_DATAGRAM};

/// Bytes of a snapshot part's fixed fields after the header, including the
/// entity count (bincode writes a sequence length as a u64).
pub const SNAPSHOT_FIXED_LEN: usize = HEADER_LEN + 3 * U64 + 2 * U16 + U64;
/// Bytes of one entity record: id and three f32 coordinates.
pub const ENTITY_LEN: usize = U32 + 3 * U32;
/// Bytes of a whole sender report datagram.
pub const SENDER_REPORT_LEN: usize = HEADER_LEN + 4 * U64;
/// Bytes of a whole goodbye datagram.
pub const GOODBYE_LEN: usize = HEADER_LEN + U64 + U32 + U64;

/// How many entity records fit in one snapshot datagram of `budget` bytes,
/// or `None` if the budget cannot hold even one (or exceeds [`MAX_DATAGRAM`]).
pub fn entities_per_part(budget: usize) -> Option<usize> {
    if !(SNAPSHOT_FIXED_LEN + ENTITY_LEN..=MAX_DATAGRAM).contains(&budget) {
        return None;
    }
    Some((budget - SNAPSHOT_FIXED_LEN) / ENTITY_LEN)
}

/// One entity's position in a snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Entity {
    /// Entity id, chosen by the broadcaster.
    pub id: u32,
    /// X coordinate, in world units.
    pub x: f32,
    /// Y coordinate, in world units.
    pub y: f32,
    /// Z coordinate, in world units.
    pub z: f32,
}

impl Entity {
    /// Reads one record: id, x, y, z, each 4 bytes little-endian, the same
    /// bytes bincode writes for this struct.
    pub(super) fn from_record(r: &[u8; ENTITY_LEN]) -> Entity {
        let word = |at: usize| u32::from_le_bytes([r[at], r[at + 1], r[at + 2], r[at + 3]]);
        Entity {
            id: word(0),
            x: f32::from_bits(word(4)),
            y: f32::from_bits(word(8)),
            z: f32::from_bits(word(12)),
        }
    }
}

/// Fixed fields of a snapshot part (its entity records travel beside it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotHead {
    /// The tick number, the Count a game client shows.
    pub tick: u64,
    /// When this tick was due: nanoseconds since the Unix epoch (CLOCK_REALTIME).
    pub scheduled_ns: u64,
    /// When this datagram was sent: nanoseconds since the Unix epoch.
    pub sent_ns: u64,
    /// This part's index, `0..parts`.
    pub part: u16,
    /// How many parts this tick was split into.
    pub parts: u16,
}

/// The periodic sender report: what this session has sent so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SenderReport {
    /// When this report was sent: nanoseconds since the Unix epoch.
    pub sent_ns: u64,
    /// Sequenced packets this session has sent, this report included.
    pub packets_sent: u64,
    /// Ticks sent so far.
    pub ticks_sent: u64,
    /// Ticks skipped so far because their deadline could not be met.
    pub ticks_skipped: u64,
}

/// The goodbye sent (several times, each copy sequenced) at clean shutdown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Goodbye {
    /// When this copy was sent: nanoseconds since the Unix epoch.
    pub sent_ns: u64,
    /// Sequence number of the session's very last packet (the last goodbye copy).
    pub final_seq: u32,
    /// Sequenced packets this session sends in all, every goodbye copy included.
    pub packets_sent: u64,
}

/// The fixed-size records of a body: `count` records of `N` bytes at the
/// start of `bytes` (a snapshot's entities, a despawn's records, a
/// roster's runs), or [`DecodeError::Truncated`] if the bytes present
/// cannot hold them (a count that overflows included). Checked once;
/// reading a record cannot fail.
pub(super) fn records<const N: usize>(bytes: &[u8], count: u64) -> Result<&[[u8; N]], DecodeError> {
    let len = usize::try_from(count)
        .ok()
        .and_then(|c| c.checked_mul(N))
        .filter(|&len| len <= bytes.len())
        .ok_or(DecodeError::Truncated)?;
    Ok(bytes[..len].as_chunks::<N>().0)
}

/// Decodes a snapshot's body (`rest`, the bytes after the header): the
/// fixed fields and the count through the codec, then the records through
/// [`records`], appended to `entities`. Checks the part index and every
/// coordinate; returns the head and the bytes used (trailing bytes are the
/// caller's to reject).
pub(super) fn decode_snapshot(
    rest: &[u8],
    entities: &mut Vec<Entity>,
) -> Result<(SnapshotHead, usize), DecodeError> {
    let ((head, count), n): ((SnapshotHead, u64), usize) = codec::read(rest)?;
    let records = records::<ENTITY_LEN>(&rest[n..], count)?;
    entities.extend(records.iter().map(Entity::from_record));
    if head.parts == 0 || head.part >= head.parts {
        return Err(DecodeError::BadPart);
    }
    if !entities_ok(entities) {
        return Err(DecodeError::BadCoordinate);
    }
    Ok((head, n + records.len() * ENTITY_LEN))
}

/// Whether every coordinate of `entities` is finite and within
/// [`MAX_COORD`], as [`encode`](super::encode) requires of a snapshot's
/// entities (a sender checks a tick once with this before it splits it
/// into parts).
pub fn entities_ok(entities: &[Entity]) -> bool {
    // NaN fails the comparison, so it is rejected too.
    let ok = |v: f32| v.abs() <= MAX_COORD;
    entities.iter().all(|e| ok(e.x) && ok(e.y) && ok(e.z))
}

/// The serde path for entity records, kept as the reference the fast
/// record view ([`records`]) must agree with.
#[cfg(test)]
mod reference {
    use super::*;
    use serde::de::{DeserializeSeed, SeqAccess, Visitor};
    use std::fmt;

    /// Decodes `count` (u64) then that many records, through serde.
    pub fn entities(bytes: &[u8]) -> Option<(Vec<Entity>, usize)> {
        let mut out = Vec::new();
        let fits = bytes.len().saturating_sub(U64) / ENTITY_LEN;
        let (_, n) = codec::read_seed(
            EntitiesInto {
                out: &mut out,
                fits,
            },
            bytes,
        )?;
        Some((out, n))
    }

    /// Decodes a sequence of entities into a reused buffer, reserving no more
    /// than the datagram's remaining bytes could hold.
    struct EntitiesInto<'a> {
        out: &'a mut Vec<Entity>,
        fits: usize,
    }

    impl<'de> DeserializeSeed<'de> for EntitiesInto<'_> {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_seq(self)
        }
    }

    impl<'de> Visitor<'de> for EntitiesInto<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a sequence of entity records")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let claimed = seq.size_hint().unwrap_or(0);
            // A lying count fails at the end of the data, after at most `fits` records.
            self.out.reserve(claimed.min(self.fits));
            while let Some(e) = seq.next_element::<Entity>()? {
                self.out.push(e);
            }
            Ok(())
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::wire::{decode, encode, Body, Packet};

    /// A snapshot part of two entities, every header field non-zero.
    pub(in crate::wire) fn sample_snapshot() -> (Packet, Vec<Entity>) {
        let p = Packet {
            session: 0x0123_4567_89ab_cdef,
            seq: u32::MAX,
            body: Body::Snapshot(SnapshotHead {
                tick: 7,
                scheduled_ns: 1_000,
                sent_ns: 1_050,
                part: 1,
                parts: 2,
            }),
        };
        let e = vec![
            Entity {
                id: 1,
                x: 1.5,
                y: -2.0,
                z: 0.25,
            },
            Entity {
                id: 2,
                x: 0.0,
                y: 100.0,
                z: -0.5,
            },
        ];
        (p, e)
    }

    #[test]
    fn derived_sizes_match_what_bincode_writes() {
        let (p, e) = sample_snapshot();
        let mut buf = [0xa5u8; 256];
        assert_eq!(
            encode(&p, &e, &mut buf).unwrap(),
            SNAPSHOT_FIXED_LEN + 2 * ENTITY_LEN
        );
        assert_eq!(encode(&p, &[], &mut buf).unwrap(), SNAPSHOT_FIXED_LEN);
        let r = Packet {
            body: Body::SenderReport(SenderReport::default()),
            ..p
        };
        assert_eq!(encode(&r, &[], &mut buf).unwrap(), SENDER_REPORT_LEN);
        let g = Packet {
            body: Body::Goodbye(Goodbye::default()),
            ..p
        };
        assert_eq!(encode(&g, &[], &mut buf).unwrap(), GOODBYE_LEN);
        assert_eq!(HEADER_LEN, 20);
    }

    #[test]
    fn round_trip_reuses_entity_buffer() {
        let (p, e) = sample_snapshot();
        let mut buf = [0u8; 256];
        let n = encode(&p, &e, &mut buf).unwrap();
        let mut out = vec![Entity::default(); 9];
        assert_eq!(decode(&buf[..n], &mut out).unwrap(), p);
        assert_eq!(out, e);
    }

    #[test]
    fn every_truncation_is_rejected_without_panic() {
        let (p, e) = sample_snapshot();
        let mut buf = [0u8; 256];
        let n = encode(&p, &e, &mut buf).unwrap();
        let mut out = Vec::new();
        for len in 0..n {
            assert!(decode(&buf[..len], &mut out).is_err(), "len {len}");
            assert!(out.is_empty() || len >= SNAPSHOT_FIXED_LEN);
        }
    }

    #[test]
    fn lying_entity_count_is_bounded_by_the_bytes_present() {
        let (p, e) = sample_snapshot();
        let mut buf = [0u8; 256];
        let n = encode(&p, &e, &mut buf).unwrap();
        buf[SNAPSHOT_FIXED_LEN - 8..SNAPSHOT_FIXED_LEN].copy_from_slice(&u64::MAX.to_le_bytes());
        let mut out = Vec::new();
        assert_eq!(decode(&buf[..n], &mut out), Err(DecodeError::Truncated));
        // Two records fit in the bytes present; Vec rounds a small reservation up to 4.
        assert!(out.capacity() <= 4, "{}", out.capacity());
    }

    #[test]
    fn record_view_agrees_with_serde_on_any_bytes() {
        // A counter-based generator: every bit pattern class shows up
        // (NaN payloads, subnormals, -0.0, huge ids), and lengths that cut a
        // record short or leave bytes over.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 24) as u8
        };
        for round in 0..2_000usize {
            let count = round % 9;
            let extra = round % 5;
            let mut bytes = (count as u64).to_le_bytes().to_vec();
            bytes.extend((0..count * ENTITY_LEN + extra).map(|_| next()));
            if round % 7 == 0 {
                bytes.truncate(bytes.len().saturating_sub(3));
            }
            let (expected, used) = match reference::entities(&bytes) {
                Some(r) => r,
                None => {
                    assert!(bytes.len() < U64 + count * ENTITY_LEN, "round {round}");
                    let view = bytes
                        .get(U64..)
                        .map(|r| records::<ENTITY_LEN>(r, count as u64));
                    assert!(!matches!(view, Some(Ok(_))), "round {round}");
                    continue;
                }
            };
            let view: Vec<Entity> = records::<ENTITY_LEN>(&bytes[U64..], count as u64)
                .expect("the reference read them, so they are there")
                .iter()
                .map(Entity::from_record)
                .collect();
            assert_eq!(used, U64 + count * ENTITY_LEN);
            let bits = |v: &[Entity]| -> Vec<[u32; 4]> {
                v.iter()
                    .map(|e| [e.id, e.x.to_bits(), e.y.to_bits(), e.z.to_bits()])
                    .collect()
            };
            assert_eq!(bits(&view), bits(&expected), "round {round}");
        }
    }

    #[test]
    fn budget_split_is_derived_from_sizes() {
        assert_eq!(
            entities_per_part(1200),
            Some((1200 - SNAPSHOT_FIXED_LEN) / 16)
        );
        assert_eq!(entities_per_part(SNAPSHOT_FIXED_LEN + ENTITY_LEN - 1), None);
        assert_eq!(entities_per_part(MAX_DATAGRAM + 1), None);
    }
}
