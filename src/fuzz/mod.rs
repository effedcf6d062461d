//! Fuzzing on the stable toolchain: a seeded, structure-aware [`Mutator`]
//! over the spec's own vectors (`proto/vectors/*.hex`) plus pure noise, and a
//! [`Harness`] that runs every input through the decoder and through one
//! sans-IO [`Ingest`](crate::core::ingest::Ingest) + [`World`](crate::core::world::World), checking what the spec promises.
//!
//! No nightly, no `cargo-fuzz`: [`run`] is a plain loop, so CI runs a short
//! form (`tests/fuzz.rs`) and the full run is one command:
//!
//! ```text
//! CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS=true \
//!     cargo run --release --example fuzz -- --iterations 10000000 --seed 1
//! ```
//!
//! (overflow checks on, so an arithmetic overflow is a panic there as it is
//! in a debug build, not a silent wrap).
//!
//! # What every input is checked for
//!
//! * [`wire::decode_records`] returns; it does not panic (caught with
//!   [`std::panic::catch_unwind`]; the first few crashers are kept as hex).
//! * A datagram that decodes re-encodes, with its records (a snapshot's
//!   entities, a despawn's records, a roster's runs, a compact part's
//!   bit-packed section) through [`wire::encode_records`], to exactly the
//!   same bytes but the version byte, which becomes [`wire::VERSION`] (a
//!   version 1 datagram re-encodes as version 2, its layout unchanged):
//!   the encoding is canonical, so no two byte strings of one version mean
//!   the same packet. A compact part's decoded records, written again with
//!   [`wire::write_record`], are exactly its section's bits, padding
//!   included: its bit codes are canonical too.
//! * [`Ingest::handle`](crate::core::ingest::Ingest::handle) returns, reports `Malformed(e)` exactly when the
//!   decoder rejected the input with `e`, and a rejected input leaves the
//!   world as it was. A datagram of a subscription kind is handed back as
//!   exactly the packet the decoder made of it (the caller decodes nothing
//!   again).
//! * The world holds no garbage: every entity a reader can see has an id
//!   below the capacity and finite coordinates within [`wire::MAX_COORD`]
//!   (checked for the entities each input touched, and over the whole world
//!   every [`FULL_SCAN_EVERY`] inputs and at the end). Every decoded compact
//!   part also goes through the harness's own keyframe decoder, one
//!   session per [`COMPACT_EPOCH_INPUTS`] inputs whatever its header
//!   says, so its keyframes and deltas
//!   are reconstructed even when the ingest refuses the datagram as stale:
//!   it must not panic, and may place only such entities. A lifecycle packet
//!   (despawn, roster) only ever removes entities: the world holds no more
//!   after it than before.
//! * At the end, the ingest's `malformed` equals the number of inputs the
//!   decoder rejected, and its `datagrams` the number of inputs.
//!
//! The same seed gives the same inputs (rand's `StdRng`, for one version of
//! rand), so any finding can be replayed.

mod harness;
mod mutator;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::{fs, io};

use crate::wire::vectors::{self, Vector};
use crate::wire::{self, DecodeError};

pub use harness::{
    Failure, Finding, FuzzReport, Harness, KindReach, COMPACT_EPOCH_INPUTS, FULL_SCAN_EVERY,
    MAX_FINDINGS,
};
pub use mutator::Mutator;

/// Entity capacity of the harness's world: small, so mutated ids land on
/// both sides of it and its whole table can be scanned often.
pub const CAPACITY: u32 = 4096;
/// Arrival time of the first input (2023-11-14T22:13:20Z, as in the vectors);
/// each input arrives 1 µs after the one before.
const T0: u64 = 1_700_000_000_000_000_000;

// Field positions, as `wire` names them (proto/PROTOCOL.md, "Common
// header", "Snapshot", "Despawn", "Roster" and "Compact snapshot part"),
// derived from the lengths `wire` derives: each kind with whole-byte
// records ends its fixed part with the u64 record count; a compact part
// ends its with quanta_per_unit, keyframe_interval and a u16 count.
const VERSION_AT: usize = wire::field::VERSION;
const KIND_AT: usize = wire::field::KIND;
const FLAGS: Range<usize> = wire::field::FLAGS;
const SESSION: Range<usize> = wire::field::SESSION;
const SEQ: Range<usize> = wire::field::SEQ;
const COUNT: Range<usize> = wire::SNAPSHOT_FIXED_LEN - 8..wire::SNAPSHOT_FIXED_LEN;
const PARTS: Range<usize> = COUNT.start - 2..COUNT.start;
const PART: Range<usize> = PARTS.start - 2..PARTS.start;
/// `tick`, `scheduled_ns` and `sent_ns` of a snapshot; any body's u64 slots.
const BODY_U64S: Range<usize> = wire::HEADER_LEN..PART.start;
/// A despawn's and a roster's `tick` (a snapshot's too).
const TICK: Range<usize> = wire::HEADER_LEN..wire::HEADER_LEN + 8;
/// `tick` and `sent_ns` of a despawn or a roster.
const LIFECYCLE_U64S: Range<usize> = TICK.start..TICK.end + 8;
/// A roster's fixed fields end in `part`, `parts`, `count`, as a
/// snapshot's do; `first_id` and `last_id` come before them.
const ROSTER_PARTS: Range<usize> = wire::ROSTER_FIXED_LEN - 10..wire::ROSTER_FIXED_LEN - 8;
const ROSTER_PART: Range<usize> = ROSTER_PARTS.start - 2..ROSTER_PARTS.start;
const ROSTER_LAST_ID: Range<usize> = ROSTER_PART.start - 4..ROSTER_PART.start;
const ROSTER_FIRST_ID: Range<usize> = ROSTER_LAST_ID.start - 4..ROSTER_LAST_ID.start;
const _: () = assert!(ROSTER_FIRST_ID.start == LIFECYCLE_U64S.end);
/// A compact part's record count, a u16, the last of its fixed fields.
const COMPACT_COUNT: Range<usize> = wire::COMPACT_FIXED_LEN - 2..wire::COMPACT_FIXED_LEN;
const COMPACT_INTERVAL: Range<usize> = COMPACT_COUNT.start - 2..COMPACT_COUNT.start;
const COMPACT_QUANTA: Range<usize> = COMPACT_INTERVAL.start - 4..COMPACT_INTERVAL.start;
/// Its `part` and `parts` sit where a snapshot's do.
const _: () = assert!(COMPACT_QUANTA.start == PARTS.end);

/// Where a datagram's records are, for the kinds that have records: the
/// bytes of its fixed fields (the count is their last 8) and of one record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct RecordLayout {
    kind: wire::Kind,
    fixed: usize,
    record: usize,
}

impl RecordLayout {
    /// The layout of the kind byte of `d`, if that kind has whole-byte
    /// records (a compact part's are bits: the mutator edits them itself).
    fn of(d: &[u8]) -> Option<RecordLayout> {
        let kind = wire::Kind::from_u8(*d.get(KIND_AT)?)?;
        if kind == wire::Kind::Compact {
            return None;
        }
        Some(RecordLayout {
            kind,
            fixed: kind.records_fixed_len()?,
            record: kind.record_len()?,
        })
    }

    /// A snapshot's: what a datagram of a kind without records is mutated as.
    const SNAPSHOT: RecordLayout = RecordLayout {
        kind: wire::Kind::Snapshot,
        fixed: wire::SNAPSHOT_FIXED_LEN,
        record: wire::ENTITY_LEN,
    };

    fn count(&self) -> Range<usize> {
        self.fixed - 8..self.fixed
    }

    /// How many whole records `len` bytes hold after the fixed fields.
    fn records(&self, len: usize) -> usize {
        len.saturating_sub(self.fixed) / self.record
    }

    /// The byte range of record `i`.
    fn record_at(&self, i: usize) -> Range<usize> {
        let at = self.fixed + i * self.record;
        at..at + self.record
    }

    /// The most records one datagram can carry.
    fn max_records(&self) -> usize {
        (wire::MAX_DATAGRAM - self.fixed) / self.record
    }
}

/// The kind bytes the decoder knows: a bare header of a known kind fails
/// later than the kind check (as in tests/vectors.rs), so a kind added to
/// `wire` is fuzzed without this module naming it.
fn known_kinds() -> Vec<u8> {
    (0..=u8::MAX)
        .filter(|&b| {
            let mut header = [0u8; wire::HEADER_LEN];
            header[..VERSION_AT].copy_from_slice(&wire::MAGIC);
            header[VERSION_AT] = wire::VERSION;
            header[KIND_AT] = b;
            !matches!(
                wire::decode(&header, &mut Vec::new()),
                Err(DecodeError::UnknownKind(_))
            )
        })
        .collect()
}

/// The spec's vectors in this source tree, `proto/vectors/`.
pub fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("proto/vectors")
}

/// Every `*.hex` file in `dir`, sorted by name, as (file name, parsed
/// vector): the one loader of vector files (the spec's, and the fuzz
/// regressions in `tests/regressions/`); the format is
/// [`wire::vectors`]. Read at run time, so a vector added to the spec
/// joins the corpus. A file that is not in the format is an
/// [`io::ErrorKind::InvalidData`] error naming the file and the line.
pub fn load_vectors(dir: &Path) -> io::Result<Vec<(String, Vector)>> {
    let mut paths = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|x| x == "hex") {
            paths.push(path);
        }
    }
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            let vector = vectors::parse(&fs::read_to_string(&path)?)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{name}: {e}")))?;
            Ok((name.into_owned(), vector))
        })
        .collect()
}

/// Bytes as space-separated lower-case hex pairs, the vector file format.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Feeds `iterations` inputs from [`Mutator::new`]`(seed)` through a fresh
/// [`Harness`] and returns its report.
pub fn run(iterations: u64, seed: u64) -> FuzzReport {
    let mut mutator = Mutator::new(seed);
    let mut harness = Harness::new();
    let mut input = Vec::with_capacity(wire::MAX_DATAGRAM + 64);
    for _ in 0..iterations {
        mutator.next_input(&mut input);
        harness.feed(&input);
    }
    harness.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Body, Entity, Packet, SnapshotHead};

    #[test]
    fn field_positions_match_what_encode_writes() {
        let p = Packet {
            session: 0x1111_1111_1111_1111,
            seq: 0x2222_2222,
            body: Body::Snapshot(SnapshotHead {
                tick: 0x3333_3333_3333_3333,
                scheduled_ns: 0x4444_4444_4444_4444,
                sent_ns: 0x5555_5555_5555_5555,
                part: 0x6666,
                parts: 0x7777,
            }),
        };
        let e = [Entity {
            id: 0x8888_8888,
            x: 1.0,
            y: 2.0,
            z: 3.0,
        }];
        let d = wire::encode_to_vec(&p, &e).unwrap();
        assert_eq!(d[VERSION_AT], wire::VERSION);
        assert_eq!(d[KIND_AT], wire::Kind::Snapshot as u8);
        assert_eq!(d[FLAGS], [0, 0]);
        assert_eq!(d[SESSION], [0x11; 8]);
        assert_eq!(d[SEQ], [0x22; 4]);
        assert_eq!(d[BODY_U64S], [[0x33; 8], [0x44; 8], [0x55; 8]].concat()[..]);
        assert_eq!(d[PART], [0x66; 2]);
        assert_eq!(d[PARTS], [0x77; 2]);
        assert_eq!(d[COUNT], 1u64.to_le_bytes());
        assert_eq!(d[COUNT.end..COUNT.end + 4], [0x88; 4]);
    }

    #[test]
    fn lifecycle_field_positions_match_what_encode_records_writes() {
        use crate::wire::{DespawnHead, Despawned, IdRun, Payload, RosterHead};
        let p = |body| Packet {
            session: 1,
            seq: 2,
            body,
        };
        let despawn = p(Body::Despawn(DespawnHead {
            tick: 0x3333_3333_3333_3333,
            sent_ns: 0x4444_4444_4444_4444,
        }));
        let recs = [Despawned {
            id: 0x5555_5555,
            tick: 7,
        }];
        let d = wire::encode_records_to_vec(&despawn, Payload::Despawned(&recs)).unwrap();
        let layout = RecordLayout::of(&d).unwrap();
        assert_eq!(layout.kind, wire::Kind::Despawn);
        assert_eq!(d[LIFECYCLE_U64S], [[0x33; 8], [0x44; 8]].concat()[..]);
        assert_eq!(d[layout.count()], 1u64.to_le_bytes());
        assert_eq!(d[layout.record_at(0)][..4], [0x55; 4]);
        assert_eq!(layout.records(d.len()), 1);

        let roster = p(Body::Roster(RosterHead {
            tick: 0x3333_3333_3333_3333,
            sent_ns: 0x4444_4444_4444_4444,
            first_id: 0x6666_6666,
            last_id: 0x7777_7777,
            part: 0x0101,
            parts: 0x0202,
        }));
        let runs = [IdRun {
            first: 0x6666_6666,
            count: 0x10,
        }];
        let d = wire::encode_records_to_vec(&roster, Payload::Runs(&runs)).unwrap();
        let layout = RecordLayout::of(&d).unwrap();
        assert_eq!(layout.kind, wire::Kind::Roster);
        assert_eq!(d[TICK], [0x33; 8]);
        assert_eq!(d[ROSTER_FIRST_ID], [0x66; 4]);
        assert_eq!(d[ROSTER_LAST_ID], [0x77; 4]);
        assert_eq!(d[ROSTER_PART], [0x01; 2]);
        assert_eq!(d[ROSTER_PARTS], [0x02; 2]);
        assert_eq!(d[layout.count()], 1u64.to_le_bytes());
        assert_eq!(
            d[layout.record_at(0)],
            [[0x66; 4], 0x10u32.to_le_bytes()].concat()[..]
        );
        assert_eq!(
            layout.max_records(),
            wire::runs_per_part(wire::MAX_DATAGRAM).unwrap()
        );
    }

    #[test]
    fn compact_field_positions_match_what_encode_records_writes() {
        use crate::wire::{CompactHead, Payload};
        let p = Packet {
            session: 1,
            seq: 2,
            body: Body::Compact(CompactHead {
                tick: 0x3333_3333_3333_3333,
                scheduled_ns: 0x4444_4444_4444_4444,
                sent_ns: 0x5555_5555_5555_5555,
                part: 0x0101,
                parts: 0x0202,
                quanta_per_unit: 0x6666_6666,
                keyframe_interval: 0x0707,
                count: 0x0808,
            }),
        };
        let d = wire::encode_records_to_vec(&p, Payload::Compact(&[0x99])).unwrap();
        assert_eq!(RecordLayout::of(&d), None);
        assert_eq!(d[BODY_U64S], [[0x33; 8], [0x44; 8], [0x55; 8]].concat()[..]);
        assert_eq!(d[PART], [0x01; 2]);
        assert_eq!(d[PARTS], [0x02; 2]);
        assert_eq!(d[COMPACT_QUANTA], [0x66; 4]);
        assert_eq!(d[COMPACT_INTERVAL], [0x07; 2]);
        assert_eq!(d[COMPACT_COUNT], [0x08; 2]);
        assert_eq!(d[COMPACT_COUNT.end..], [0x99]);
    }

    #[test]
    fn same_seed_same_inputs() {
        let (mut a, mut b) = (Mutator::new(3), Mutator::new(3));
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for _ in 0..1_000 {
            a.next_input(&mut x);
            b.next_input(&mut y);
            assert_eq!(x, y);
        }
    }

    #[test]
    fn mutator_reaches_every_kind_and_both_verdicts() {
        let r = run(5_000, 5);
        assert!(r.decoded_ok > 500 && r.rejected_total() > 500, "{r}");
        assert!(r.kinds.len() >= 13, "{r}");
        assert!(r.kinds.values().all(|k| k.decoded_ok > 0), "{r}");
        for k in [wire::Kind::Despawn, wire::Kind::Roster, wire::Kind::Compact] {
            assert!(r.kinds[&(k as u8)].reached > 50, "{r}");
        }
        assert!(r.compact_deltas_placed > 0, "{r}");
        // Both versions a decoder reads are decoded.
        for v in wire::MIN_VERSION..=wire::VERSION {
            assert!(r.decoded_by_version.get(&v).is_some_and(|&n| n > 0), "{r}");
        }
        assert!(r.rejected.contains_key("BadLifecycle"), "{r}");
        assert!(r.rejected.contains_key("BadCompact"), "{r}");
        assert!(r.world_entities > 0, "{r}");
    }

    #[test]
    fn a_broken_promise_shows_in_problems() {
        let r = FuzzReport {
            inputs: 2,
            datagrams: 2,
            malformed: 1,
            ..FuzzReport::default()
        };
        assert_eq!(
            r.problems(),
            ["ingest counted 1 malformed, the decoder rejected 0"]
        );
    }
}
