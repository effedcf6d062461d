//! Fuzzing on the stable toolchain: a seeded, structure-aware [`Mutator`]
//! over the spec's own vectors (`proto/vectors/*.hex`) plus pure noise, and a
//! [`Harness`] that runs every input through the decoder and through one
//! sans-IO [`Ingest`] + [`World`], checking what the spec promises.
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
//! * [`wire::decode`] returns; it does not panic (caught with
//!   [`std::panic::catch_unwind`]; the first few crashers are kept as hex).
//! * A datagram that decodes re-encodes to exactly the same bytes: the
//!   encoding is canonical, so no two byte strings mean the same packet.
//! * [`Ingest::handle`] returns, reports `Malformed(e)` exactly when the
//!   decoder rejected the input with `e`, and a rejected input leaves the
//!   world as it was. A datagram of a subscription kind is handed back as
//!   exactly the packet the decoder made of it (the caller decodes nothing
//!   again).
//! * The world holds no garbage: every entity a reader can see has an id
//!   below the capacity and finite coordinates within [`wire::MAX_COORD`]
//!   (checked for the entities each input touched, and over the whole world
//!   every [`FULL_SCAN_EVERY`] inputs and at the end).
//! * At the end, the ingest's `malformed` equals the number of inputs the
//!   decoder rejected, and its `datagrams` the number of inputs.
//!
//! The same seed gives the same inputs (rand's `StdRng`, for one version of
//! rand), so any finding can be replayed.

use std::collections::BTreeMap;
use std::mem::Discriminant;
use std::ops::Range;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::{fmt, fs, io};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::core::ingest::{Ingest, Outcome};
use crate::core::world::{World, WorldWriter};
use crate::wire::vectors::{self, Vector};
use crate::wire::{self, Body, DecodeError, Entity, Packet, SnapshotHead};

/// Entity capacity of the harness's world: small, so mutated ids land on
/// both sides of it and its whole table can be scanned often.
pub const CAPACITY: u32 = 4096;
/// The whole world is scanned for garbage once per this many inputs.
pub const FULL_SCAN_EVERY: u64 = 1 << 16;
const _: () = assert!(FULL_SCAN_EVERY.is_power_of_two());
/// How many findings (crashers, mismatches) a report keeps, as hex.
pub const MAX_FINDINGS: usize = 8;

/// Arrival time of the first input (2023-11-14T22:13:20Z, as in the vectors);
/// each input arrives 1 µs after the one before.
const T0: u64 = 1_700_000_000_000_000_000;

// Field positions, as `wire` names them (proto/PROTOCOL.md, "Common
// header" and "Snapshot").
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

/// Byte values that sit on boundaries.
const INTERESTING_BYTES: [u8; 6] = [0, 1, 0x7f, 0x80, 0xfe, 0xff];
const INTERESTING_U16: [u16; 7] = [0, 1, 2, 0x7fff, 0x8000, 0xfffe, 0xffff];
const INTERESTING_U32: [u32; 10] = [
    0,
    1,
    CAPACITY - 1,
    CAPACITY,
    CAPACITY + 1,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_fffe,
    0xffff_ffff,
    0x0001_0000,
];
/// Boundaries of a u64, of an i64 seen through `as`, and around the arrival clock.
const INTERESTING_U64: [u64; 10] = [
    0,
    1,
    T0,
    T0 + 1_000_000,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0000,
    0x8000_0000_0000_0001,
    u64::MAX - 1,
    u64::MAX,
    u32::MAX as u64 + 1,
];
/// f32 bit patterns for coordinates: NaNs (quiet, signalling, negative),
/// infinities, the ±1e9 limits and their neighbours, extremes, subnormals, zeros.
const INTERESTING_F32: [u32; 17] = [
    0x7fc0_0000, // NaN
    0xffc0_0000, // -NaN
    0x7f80_0001, // signalling NaN
    0x7fff_ffff, // NaN, all payload bits
    0x7f80_0000, // +inf
    0xff80_0000, // -inf
    0x4e6e_6b28, // 1e9, the largest allowed
    0xce6e_6b28, // -1e9
    0x4e6e_6b29, // the first f32 above 1e9
    0xce6e_6b29, // the first below -1e9
    0x4e6e_6b27, // just below 1e9
    0x7f7f_ffff, // f32::MAX
    0xff7f_ffff, // f32::MIN
    0x0000_0001, // smallest subnormal
    0x807f_ffff, // largest negative subnormal
    0x8000_0000, // -0.0
    0x0080_0000, // f32::MIN_POSITIVE
];

/// A seeded generator of hostile datagrams: mutated vectors, mutated valid
/// packets it builds itself, and pure noise.
#[derive(Debug)]
pub struct Mutator {
    rng: StdRng,
    seeds: Vec<Vec<u8>>,
    /// Per kind the decoder knows, the seeds of that kind: picking a kind
    /// first gives every kind's body decoder a fair share of inputs.
    by_kind: Vec<Vec<usize>>,
    known_kinds: Vec<u8>,
    /// Sequence number and tick of the next generated valid packet.
    next_seq: u32,
    next_tick: u64,
    entities: Vec<Entity>,
}

impl Mutator {
    /// A mutator over the spec's vectors ([`vectors_dir`]) whose inputs are
    /// fully determined by `seed` and the vectors.
    ///
    /// # Panics
    ///
    /// If the vectors cannot be read: it runs from the source tree.
    pub fn new(seed: u64) -> Mutator {
        let dir = vectors_dir();
        let vectors = load_vectors(&dir)
            .unwrap_or_else(|e| panic!("cannot read the vectors in {}: {e}", dir.display()));
        Mutator::with_seeds(seed, vectors.into_iter().map(|(_, v)| v.bytes).collect())
    }

    /// A mutator over the datagrams `seeds` (at least one).
    pub fn with_seeds(seed: u64, mut seeds: Vec<Vec<u8>>) -> Mutator {
        if seeds.is_empty() {
            seeds.push(Vec::new());
        }
        let known_kinds = known_kinds();
        let by_kind = known_kinds
            .iter()
            .map(|&k| {
                (0..seeds.len())
                    .filter(|&i| {
                        let d = &seeds[i];
                        d.len() > KIND_AT && d[..VERSION_AT] == wire::MAGIC && d[KIND_AT] == k
                    })
                    .collect::<Vec<_>>()
            })
            .filter(|group| !group.is_empty())
            .collect();
        Mutator {
            rng: StdRng::seed_from_u64(seed),
            seeds,
            by_kind,
            known_kinds,
            next_seq: u32::MAX - 1_000,
            next_tick: 1,
            entities: Vec::new(),
        }
    }

    /// Replaces `out` with the next input.
    pub fn next_input(&mut self, out: &mut Vec<u8>) {
        out.clear();
        let roll = self.rng.random_range(0..100u32);
        if roll < 15 {
            self.noise(out);
            return;
        }
        if roll < 40 {
            self.valid(out);
            // Most generated packets go in intact, so the world really fills.
            if roll < 30 {
                return;
            }
        } else {
            let r = &mut self.rng;
            let i = if r.random_bool(0.7) && !self.by_kind.is_empty() {
                let group = &self.by_kind[r.random_range(0..self.by_kind.len())];
                group[r.random_range(0..group.len())]
            } else {
                r.random_range(0..self.seeds.len())
            };
            out.extend_from_slice(&self.seeds[i]);
        }
        // 1 to 8 stacked mutations, fewer more often.
        let mut n = 1;
        while n < 8 && self.rng.random_bool(0.4) {
            n += 1;
        }
        for _ in 0..n {
            self.mutate(out);
        }
    }

    /// Random bytes; half of them behind a valid magic and version, so noise
    /// also reaches the kind, flag and body checks.
    fn noise(&mut self, out: &mut Vec<u8>) {
        let r = &mut self.rng;
        let len = match r.random_range(0..1000u32) {
            0 => r.random_range(0..=wire::MAX_DATAGRAM + 64),
            1..=100 => r.random_range(0..=4096),
            101..=400 => r.random_range(64..=1500),
            _ => r.random_range(0..=64),
        };
        out.resize(len, 0);
        r.fill(&mut out[..]);
        if len >= KIND_AT && r.random_bool(0.5) {
            out[..VERSION_AT].copy_from_slice(&wire::MAGIC);
            out[VERSION_AT] = wire::VERSION;
        }
    }

    /// A valid packet of a random kind: a snapshot (usually few entities,
    /// sometimes as many as fit), a sender report or a goodbye, from one of a
    /// few sessions, with sequence numbers and ticks that advance.
    fn valid(&mut self, out: &mut Vec<u8>) {
        let r = &mut self.rng;
        let session = [1, 2, 0xf0e1_d2c3_b4a5_9687, r.random()][r.random_range(0..4)];
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(r.random_range(1..=3));
        let body = match r.random_range(0..3u32) {
            0 => Body::SenderReport(wire::SenderReport {
                sent_ns: T0,
                packets_sent: r.random(),
                ticks_sent: r.random(),
                ticks_skipped: r.random(),
            }),
            1 => Body::Goodbye(wire::Goodbye {
                sent_ns: T0,
                final_seq: seq.wrapping_add(r.random_range(0..3)),
                packets_sent: r.random(),
            }),
            _ => {
                let parts = r.random_range(1..=u16::MAX);
                self.next_tick += 1;
                Body::Snapshot(SnapshotHead {
                    tick: self.next_tick,
                    scheduled_ns: T0 - 1_000,
                    sent_ns: T0,
                    part: r.random_range(0..parts),
                    parts,
                })
            }
        };
        self.entities.clear();
        if matches!(body, Body::Snapshot(_)) {
            let n = match r.random_range(0..100u32) {
                0 => r.random_range(0..=4090),
                _ => r.random_range(0..=8),
            };
            for _ in 0..n {
                let id = match r.random_range(0..4u32) {
                    0 => r.random(),
                    1 => INTERESTING_U32[r.random_range(0..INTERESTING_U32.len())],
                    _ => r.random_range(0..CAPACITY),
                };
                let mut coord = || loop {
                    let v = match r.random_range(0..4u32) {
                        0 => f32::from_bits(INTERESTING_F32[r.random_range(0..17)]),
                        _ => r.random_range(-wire::MAX_COORD..=wire::MAX_COORD),
                    };
                    if v.is_finite() && v.abs() <= wire::MAX_COORD {
                        return v;
                    }
                };
                let (x, y, z) = (coord(), coord(), coord());
                self.entities.push(Entity { id, x, y, z });
            }
        }
        let packet = Packet { session, seq, body };
        out.resize(wire::encoded_len(&body, self.entities.len()), 0);
        let n = wire::encode(&packet, &self.entities, out).expect("valid by construction");
        out.truncate(n);
    }

    /// One mutation, chosen at random; a field edit on a datagram too short
    /// for that field falls back to a bit flip.
    fn mutate(&mut self, d: &mut Vec<u8>) {
        let r = &mut self.rng;
        let records = d.len().saturating_sub(wire::SNAPSHOT_FIXED_LEN) / wire::ENTITY_LEN;
        let len = d.len();
        match r.random_range(0..20u32) {
            0 if len > KIND_AT => {
                d[KIND_AT] = match r.random_range(0..3u32) {
                    0 if !self.known_kinds.is_empty() => pick(r, &self.known_kinds),
                    1 => pick(r, &[0, 4, 15, 31, 32, 0x7f, 0x80, 0xff]),
                    _ => r.random(),
                }
            }
            1 if len > VERSION_AT => {
                d[VERSION_AT] = [0, 1, 2, 0x7f, 0x80, 0xff][r.random_range(0..6)]
            }
            2 if len >= FLAGS.end => put_u16(d, FLAGS, pick(r, &INTERESTING_U16)),
            3 if len >= SESSION.end => put_u64(d, SESSION, pick_or_random(r, &INTERESTING_U64)),
            4 if len >= SEQ.end => put_u32(d, SEQ, pick_or_random(r, &INTERESTING_U32)),
            5 if len >= PARTS.end => {
                put_u16(d, PART, pick(r, &INTERESTING_U16));
                if r.random_bool(0.5) {
                    put_u16(d, PARTS, pick(r, &INTERESTING_U16));
                }
            }
            6 if len >= COUNT.end => {
                let n = records as u64;
                let lie = [
                    0,
                    n.wrapping_sub(1),
                    n + 1,
                    n * 2,
                    n, // the truth: repairs a count earlier mutations broke
                    n,
                    4090,
                    4091,
                    u64::MAX / wire::ENTITY_LEN as u64 + 1, // 16 × count overflows
                    1 << 32,
                    u64::MAX,
                    r.random(),
                ];
                put_u64(d, COUNT, pick(r, &lie));
            }
            7 if records > 0 => {
                let at = wire::SNAPSHOT_FIXED_LEN
                    + r.random_range(0..records) * wire::ENTITY_LEN
                    + 4 * r.random_range(1..4);
                put_u32(d, at..at + 4, pick(r, &INTERESTING_F32));
            }
            8 if records > 0 => {
                let at = wire::SNAPSHOT_FIXED_LEN + r.random_range(0..records) * wire::ENTITY_LEN;
                put_u32(d, at..at + 4, pick_or_random(r, &INTERESTING_U32));
            }
            9 if len >= BODY_U64S.start + 8 => {
                let slots = (len.min(BODY_U64S.end) - BODY_U64S.start) / 8;
                let at = BODY_U64S.start + 8 * r.random_range(0..slots);
                put_u64(d, at..at + 8, pick_or_random(r, &INTERESTING_U64));
            }
            10 if records > 0 => {
                // Duplicate the entity array; usually fix the count to match.
                let array =
                    wire::SNAPSHOT_FIXED_LEN..wire::SNAPSHOT_FIXED_LEN + records * wire::ENTITY_LEN;
                d.truncate(array.end);
                d.extend_from_within(array);
                if r.random_bool(0.75) {
                    put_u64(d, COUNT, 2 * records as u64);
                }
            }
            11 => {
                let other = &self.seeds[r.random_range(0..self.seeds.len())];
                let a = r.random_range(0..=len);
                let b = r.random_range(0..=other.len());
                d.truncate(a);
                d.extend_from_slice(&other[b..]);
            }
            12 => d.truncate(r.random_range(0..=len)),
            13 => {
                let n = r.random_range(1..=64);
                let fill = [0u8, 0xff, r.random()][r.random_range(0..3)];
                d.extend(std::iter::repeat_n(fill, n));
                if r.random_bool(0.5) {
                    let len = d.len();
                    r.fill(&mut d[len - n..]);
                }
            }
            14 if len <= wire::MAX_DATAGRAM => {
                let at = r.random_range(0..=len);
                let n = r.random_range(1..=16);
                for _ in 0..n {
                    d.insert(at, r.random());
                }
            }
            15 if len > 0 => {
                let at = r.random_range(0..len);
                let n = r.random_range(1..=16).min(len - at);
                d.drain(at..at + n);
            }
            16 if len > 0 => {
                let at = r.random_range(0..len);
                d[at] = pick(r, &INTERESTING_BYTES);
            }
            17 if len > 0 => {
                let at = r.random_range(0..len);
                d[at] = r.random();
            }
            _ if len > 0 => {
                let at = r.random_range(0..len);
                d[at] ^= 1 << r.random_range(0..8);
            }
            _ => d.push(r.random()),
        }
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

fn pick<T: Copy>(r: &mut StdRng, from: &[T]) -> T {
    from[r.random_range(0..from.len())]
}

fn pick_or_random<T: Copy>(r: &mut StdRng, from: &[T]) -> T
where
    rand::distr::StandardUniform: rand::distr::Distribution<T>,
{
    if r.random_bool(0.25) {
        r.random()
    } else {
        pick(r, from)
    }
}

fn put_u16(d: &mut [u8], at: Range<usize>, v: u16) {
    d[at].copy_from_slice(&v.to_le_bytes());
}

fn put_u32(d: &mut [u8], at: Range<usize>, v: u32) {
    d[at].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(d: &mut [u8], at: Range<usize>, v: u64) {
    d[at].copy_from_slice(&v.to_le_bytes());
}

/// Which check an input failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// `wire::decode` panicked.
    DecodePanic,
    /// `Ingest::handle` panicked.
    IngestPanic,
    /// A decoded packet did not re-encode to the same bytes.
    ReencodeMismatch,
    /// The ingest's outcome disagreed with the decoder (malformed or not),
    /// or it handed back a subscription packet other than the decoded one.
    MalformedMismatch,
    /// The world held an entity it must not, or changed on a rejected input.
    Garbage,
}

/// One failing input, kept so it can become a regression case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The check it failed.
    pub failure: Failure,
    /// The panic message, or what was wrong.
    pub message: String,
    /// The input, as space-separated hex byte pairs (a vector file's body).
    pub hex: String,
}

/// How one packet kind's decoder was exercised.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KindReach {
    /// The kind's name, once an input of it decoded.
    pub name: Option<&'static str>,
    /// Inputs with a valid magic, version and flags and this kind byte: the
    /// ones that reached this kind's body decoder.
    pub reached: u64,
    /// Of those, the ones that decoded.
    pub decoded_ok: u64,
}

/// What a fuzz run found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FuzzReport {
    /// Inputs fed.
    pub inputs: u64,
    /// Inputs the decoder accepted.
    pub decoded_ok: u64,
    /// Inputs the decoder rejected, per `DecodeError` variant.
    pub rejected: BTreeMap<String, u64>,
    /// Per kind byte the decoder knows: inputs that reached its body decoder.
    pub kinds: BTreeMap<u8, KindReach>,
    /// Inputs on which the decoder or the ingest panicked.
    pub panics: u64,
    /// Of those, the ones where the decoder returned and the ingest panicked.
    pub ingest_panics: u64,
    /// Entities seen in the world with an id at or above the capacity, or a
    /// coordinate non-finite or beyond `MAX_COORD`; and rejected inputs that
    /// changed the world.
    pub garbage_applied: u64,
    /// Decoded packets that did not re-encode to the same bytes.
    pub reencode_mismatch: u64,
    /// Inputs whose ingest outcome disagreed with the decoder.
    pub malformed_mismatch: u64,
    /// The ingest's own `malformed` figure at the end.
    pub malformed: u64,
    /// The ingest's own `datagrams` figure at the end.
    pub datagrams: u64,
    /// Entities in the world at the end.
    pub world_entities: usize,
    /// The first [`MAX_FINDINGS`] failing inputs.
    pub findings: Vec<Finding>,
}

impl FuzzReport {
    /// Inputs the decoder rejected, over all reasons.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }

    /// Every broken promise, in words; empty for a clean run.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let mut nonzero = |n: u64, what: &str| {
            if n > 0 {
                p.push(format!("{n} {what}"));
            }
        };
        nonzero(self.panics, "panics");
        nonzero(self.garbage_applied, "garbage entities or changes applied");
        nonzero(self.reencode_mismatch, "re-encode mismatches");
        nonzero(
            self.malformed_mismatch,
            "outcomes disagreeing with the decoder",
        );
        if self.malformed != self.rejected_total() {
            p.push(format!(
                "ingest counted {} malformed, the decoder rejected {}",
                self.malformed,
                self.rejected_total()
            ));
        }
        if self.datagrams != self.inputs {
            p.push(format!(
                "ingest counted {} datagrams of {} inputs",
                self.datagrams, self.inputs
            ));
        }
        p
    }

    /// True when no promise was broken.
    pub fn is_clean(&self) -> bool {
        self.problems().is_empty()
    }
}

impl fmt::Display for FuzzReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "inputs            {}", self.inputs)?;
        writeln!(f, "decoded ok        {}", self.decoded_ok)?;
        writeln!(
            f,
            "rejected          {} (ingest counted {} malformed)",
            self.rejected_total(),
            self.malformed
        )?;
        for (reason, n) in &self.rejected {
            writeln!(f, "  {reason:<20}{n}")?;
        }
        writeln!(f, "per kind          reached body decoder / decoded ok")?;
        for (kind, k) in &self.kinds {
            let name = format!("{kind} {}", k.name.unwrap_or("?"));
            writeln!(f, "  {name:<20}{} / {}", k.reached, k.decoded_ok)?;
        }
        writeln!(
            f,
            "panics            {} ({} in the ingest)",
            self.panics, self.ingest_panics
        )?;
        writeln!(f, "garbage applied   {}", self.garbage_applied)?;
        writeln!(f, "re-encode diffs   {}", self.reencode_mismatch)?;
        writeln!(f, "outcome diffs     {}", self.malformed_mismatch)?;
        writeln!(f, "world entities    {}", self.world_entities)?;
        for x in &self.findings {
            writeln!(f, "finding {:?}: {}\n  {}", x.failure, x.message, x.hex)?;
        }
        match self.problems() {
            p if p.is_empty() => write!(f, "clean"),
            p => write!(f, "NOT CLEAN: {}", p.join("; ")),
        }
    }
}

/// Runs inputs through the decoder and one ingest + world, checking each.
pub struct Harness {
    /// Writes the world (it holds the one writer).
    ingest: Ingest,
    /// Reads it, as any reader would.
    world: World,
    entities: Vec<Entity>,
    buf: Vec<u8>,
    /// Rejections per `DecodeError` variant, named on first sight.
    rejections: Vec<(Discriminant<DecodeError>, String, u64)>,
    report: FuzzReport,
}

impl Default for Harness {
    fn default() -> Self {
        Harness::new()
    }
}

impl fmt::Debug for Harness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Harness")
            .field("inputs", &self.report.inputs)
            .finish()
    }
}

impl Harness {
    /// A harness with a fresh ingest and a world of [`CAPACITY`] entities.
    pub fn new() -> Harness {
        let mut report = FuzzReport::default();
        for k in known_kinds() {
            report.kinds.insert(k, KindReach::default());
        }
        let ingest = Ingest::new(WorldWriter::new(CAPACITY));
        Harness {
            world: ingest.world().clone(),
            ingest,
            entities: Vec::new(),
            buf: vec![0; wire::MAX_DATAGRAM],
            rejections: Vec::new(),
            report,
        }
    }

    /// Feeds one input and checks it (see the module docs).
    pub fn feed(&mut self, input: &[u8]) {
        let i = self.report.inputs;
        self.report.inputs += 1;
        if let Some(k) = self.reached_kind(input) {
            k.reached += 1;
        }
        let entities = &mut self.entities;
        let decoded = match panic::catch_unwind(AssertUnwindSafe(|| wire::decode(input, entities)))
        {
            Ok(d) => d,
            Err(payload) => {
                self.report.panics += 1;
                self.find(Failure::DecodePanic, panic_message(&*payload), input);
                return; // the ingest would run the same decode
            }
        };
        match &decoded {
            Ok(packet) => self.check_reencode(packet, input),
            Err(e) => self.count_rejection(e),
        }
        let before = (self.world.len(), self.world.count());
        let arrival = T0 + i * 1_000;
        let ingest = &mut self.ingest;
        let outcome = match panic::catch_unwind(AssertUnwindSafe(|| ingest.handle(input, arrival)))
        {
            Ok(o) => o,
            Err(payload) => {
                self.report.panics += 1;
                self.report.ingest_panics += 1;
                self.find(Failure::IngestPanic, panic_message(&*payload), input);
                return;
            }
        };
        match (decoded, outcome) {
            (Err(e), Outcome::Malformed(m)) if e == m => {
                if (self.world.len(), self.world.count()) != before {
                    self.report.garbage_applied += 1;
                    self.find(
                        Failure::Garbage,
                        "a rejected input changed the world",
                        input,
                    );
                }
            }
            (Ok(p), Outcome::Subscription(q)) if p != q => {
                self.report.malformed_mismatch += 1;
                let msg = format!("decoder said {p:?}, ingest handed back {q:?}");
                self.find(Failure::MalformedMismatch, msg, input);
            }
            (Ok(_), o) if !matches!(o, Outcome::Malformed(_)) => {
                self.check_touched(matches!(o, Outcome::Applied { .. }), input)
            }
            (d, o) => {
                self.report.malformed_mismatch += 1;
                let msg = format!("decoder said {:?}, ingest said {o:?}", d.map(|_| ()));
                self.find(Failure::MalformedMismatch, msg, input);
            }
        }
        // A mask, not `%`: FULL_SCAN_EVERY is a power of two.
        if self.report.inputs & (FULL_SCAN_EVERY - 1) == 0 {
            self.scan_world();
        }
    }

    /// Scans the whole world once more and returns the report.
    pub fn finish(mut self) -> FuzzReport {
        self.scan_world();
        let f = self.ingest.figures();
        self.report.malformed = f.counters.malformed;
        self.report.datagrams = f.counters.datagrams;
        self.report.world_entities = self.world.len();
        for (_, name, n) in &self.rejections {
            self.report.rejected.insert(name.clone(), *n);
        }
        self.report
    }

    fn reached_kind(&mut self, d: &[u8]) -> Option<&mut KindReach> {
        let header_ok = d.len() >= wire::HEADER_LEN
            && d[..VERSION_AT] == wire::MAGIC
            && d[VERSION_AT] == wire::VERSION
            && d[FLAGS] == [0, 0];
        let kind = d.get(KIND_AT).filter(|_| header_ok)?;
        self.report.kinds.get_mut(kind)
    }

    fn check_reencode(&mut self, packet: &Packet, input: &[u8]) {
        self.report.decoded_ok += 1;
        let kind = packet.body.kind();
        if let Some(k) = self.report.kinds.get_mut(&(kind as u8)) {
            k.decoded_ok += 1;
            k.name = Some(kind.name());
        }
        match wire::encode(packet, &self.entities, &mut self.buf) {
            Ok(n) if self.buf[..n] == *input => {}
            other => {
                self.report.reencode_mismatch += 1;
                let msg = format!("re-encoded as {:?}", other.map(|n| &self.buf[..n]));
                self.find(Failure::ReencodeMismatch, msg, input);
            }
        }
    }

    fn count_rejection(&mut self, e: &DecodeError) {
        let d = std::mem::discriminant(e);
        match self.rejections.iter_mut().find(|(x, _, _)| *x == d) {
            Some((_, _, n)) => *n += 1,
            None => {
                let name = format!("{e:?}");
                let name = name.split('(').next().unwrap_or_default().to_string();
                self.rejections.push((d, name, 1));
            }
        }
    }

    /// The entities of the input just handled: absent if their id is at or
    /// above the capacity, sound if present, and present if the part was
    /// `applied` (each record was written, or a newer one is held).
    fn check_touched(&mut self, applied: bool, input: &[u8]) {
        for i in 0..self.entities.len() {
            let e = self.entities[i];
            let bad = match self.world.get(e.id) {
                Some(s) => e.id >= CAPACITY || !sound(&[s.x, s.y, s.z]),
                None => applied && e.id < CAPACITY,
            };
            if bad {
                self.report.garbage_applied += 1;
                let msg = format!("entity {} after applying {e:?}", e.id);
                self.find(Failure::Garbage, msg, input);
            }
        }
    }

    fn scan_world(&mut self) {
        let mut all = Vec::new();
        self.world.read_all(&mut all);
        for s in all {
            if s.id >= CAPACITY || !sound(&[s.x, s.y, s.z]) {
                self.report.garbage_applied += 1;
                self.find(Failure::Garbage, format!("world holds {s:?}"), &[]);
            }
        }
        if self.world.len() > CAPACITY as usize {
            self.report.garbage_applied += 1;
            let msg = format!("world holds {} entities", self.world.len());
            self.find(Failure::Garbage, msg, &[]);
        }
    }

    fn find(&mut self, failure: Failure, message: impl Into<String>, input: &[u8]) {
        if self.report.findings.len() < MAX_FINDINGS {
            self.report.findings.push(Finding {
                failure,
                message: message.into(),
                hex: hex(input),
            });
        }
    }
}

fn sound(coords: &[f32]) -> bool {
    coords
        .iter()
        .all(|v| v.is_finite() && v.abs() <= wire::MAX_COORD)
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    match (
        payload.downcast_ref::<&str>(),
        payload.downcast_ref::<String>(),
    ) {
        (Some(s), _) => s.to_string(),
        (_, Some(s)) => s.clone(),
        _ => "panic with a non-string payload".to_string(),
    }
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
        assert!(r.kinds.len() >= 3, "{r}");
        assert!(r.kinds.values().all(|k| k.decoded_ok > 0), "{r}");
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
