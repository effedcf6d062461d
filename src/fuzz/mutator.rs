//! The structure-aware mutator: seeded inputs made from the spec's vectors
//! (whole, or with boundary values written into their fields, truncated,
//! extended, spliced), valid packets of every stream kind it builds itself
//! (some as version 1), and pure noise. Field edits know each kind's
//! records: a snapshot's coordinates, a despawn record's tick against its
//! packet's, a roster's range and runs against each other, a compact
//! part's head, its bit-packed section (bits flipped, cut at a bit, long
//! zero runs, padding set, bytes added) and its records' values (decoded,
//! edited, written again). Its compact parts come from a reference
//! encoder over a moving world, so their deltas meet the keyframes they
//! need, and from records it makes up at the codes' extremes.

use std::ops::Range;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{
    known_kinds, load_vectors, vectors_dir, RecordLayout, BODY_U64S, CAPACITY, COMPACT_COUNT,
    COMPACT_INTERVAL, COMPACT_QUANTA, FLAGS, KIND_AT, LIFECYCLE_U64S, PART, PARTS, ROSTER_FIRST_ID,
    ROSTER_LAST_ID, SEQ, SESSION, T0, TICK, VERSION_AT,
};
use crate::core::compact::{CompactConfig, Encoder};
use crate::core::sim::SimWorld;
use crate::wire::bits::BitWriter;
use crate::wire::{
    self, Body, CompactHead, DespawnHead, Despawned, Entity, IdRun, Kind, Packet, Payload, Record,
    Records, RosterHead, SnapshotHead, COMPACT_FIXED_LEN,
};

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

/// Signed values at the codes' edges: zero, one step either way, the
/// lengths where a gamma code grows a bit, the i32 extremes.
const INTERESTING_I32: [i32; 12] = [
    0,
    1,
    -1,
    2,
    -2,
    63,
    -64,
    1 << 15,
    -(1 << 15),
    1 << 24,
    i32::MAX,
    i32::MIN,
];
/// Entities of the world the mutator's compact encoder sends.
const COMPACT_WORLD: u32 = 96;

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
    despawned: Vec<Despawned>,
    runs: Vec<IdRun>,
    /// A compact part's bit-packed records.
    section: Vec<u8>,
    /// A reference encoder over a moving world, short keyframe interval.
    encoder: Encoder,
    sim: SimWorld,
    /// Scratch for decoding a compact part to edit its records.
    records: Records,
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
            despawned: Vec::new(),
            runs: Vec::new(),
            section: Vec::new(),
            encoder: Encoder::new(CompactConfig {
                keyframe_interval: 8,
                ..CompactConfig::default()
            })
            .expect("a valid config"),
            sim: SimWorld::new(COMPACT_WORLD, seed),
            records: Records::default(),
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
            out[VERSION_AT] = r.random_range(wire::MIN_VERSION..=wire::VERSION);
        }
    }

    /// A valid packet of a random stream kind: a snapshot (usually few
    /// entities, sometimes as many as fit), a compact part (of the
    /// encoder's world, or of made-up records), a despawn, a roster part, a
    /// sender report or a goodbye, from one of a few sessions, with sequence
    /// numbers and ticks that advance; one in ten of the version 1 kinds is
    /// written as version 1 (the same bytes but the version byte).
    fn valid(&mut self, out: &mut Vec<u8>) {
        let r = &mut self.rng;
        let session = [1, 2, 0xf0e1_d2c3_b4a5_9687, r.random()][r.random_range(0..4)];
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(r.random_range(1..=3));
        self.entities.clear();
        self.despawned.clear();
        self.runs.clear();
        self.section.clear();
        let body = match r.random_range(0..10u32) {
            8 => {
                self.next_tick += 1;
                self.encoded_part(self.next_tick)
            }
            9 => made_up_part(r, self.next_tick, &mut self.section),
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
            2 => {
                let head = DespawnHead {
                    tick: self.next_tick,
                    sent_ns: T0,
                };
                let n = match r.random_range(0..100u32) {
                    0 => r.random_range(0..=wire::despawns_per_packet(wire::MAX_DATAGRAM).unwrap()),
                    _ => r.random_range(1..=8),
                };
                for _ in 0..n {
                    let age = match r.random_range(0..4u32) {
                        0 => r.random_range(0..=head.tick),
                        _ => pick(r, &wire::DESPAWN_COPY_AGES).min(head.tick),
                    };
                    self.despawned.push(Despawned {
                        id: entity_id(r),
                        tick: head.tick - age,
                    });
                }
                Body::Despawn(head)
            }
            3 => Body::Roster(roster(r, self.next_tick, &mut self.runs)),
            _ => {
                let parts = r.random_range(1..=u16::MAX);
                self.next_tick += 1;
                let n = match r.random_range(0..100u32) {
                    0 => r.random_range(0..=4090),
                    _ => r.random_range(0..=8),
                };
                for _ in 0..n {
                    let id = entity_id(r);
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
                Body::Snapshot(SnapshotHead {
                    tick: self.next_tick,
                    scheduled_ns: T0 - 1_000,
                    sent_ns: T0,
                    part: r.random_range(0..parts),
                    parts,
                })
            }
        };
        let records = match body.kind() {
            Kind::Snapshot => Payload::Entities(&self.entities),
            Kind::Despawn => Payload::Despawned(&self.despawned),
            Kind::Roster => Payload::Runs(&self.runs),
            Kind::Compact => Payload::Compact(&self.section),
            _ => Payload::None,
        };
        let packet = Packet { session, seq, body };
        out.resize(wire::encoded_len(&body, records.len()), 0);
        let n = wire::encode_records(&packet, records, out).expect("valid by construction");
        out.truncate(n);
        if body.kind().since_version() < wire::VERSION && self.rng.random_bool(0.1) {
            out[VERSION_AT] = body.kind().since_version();
        }
    }

    /// Tick `tick` of the encoder's moving world, one of its parts (part 0
    /// most often), its records' bits in `self.section`.
    fn encoded_part(&mut self, tick: u64) -> Body {
        let world = self.sim.positions(tick, 60.0);
        // Small parts, so a tick often has several.
        let budget = [120, 300, 1200][self.rng.random_range(0..3)];
        self.encoder
            .encode_tick(tick, world, budget)
            .expect("the world is within the bound");
        let parts = self.encoder.parts();
        let part = match self.rng.random_range(0..3u32) {
            0 => self.rng.random_range(0..parts.len()),
            _ => 0,
        };
        self.section
            .extend_from_slice(&self.encoder.bytes()[parts[part].bytes.clone()]);
        Body::Compact(CompactHead {
            scheduled_ns: T0 - 1_000,
            sent_ns: T0,
            ..self.encoder.head(tick, part)
        })
    }

    /// One mutation, chosen at random; a field edit on a datagram too short
    /// for that field falls back to a bit flip.
    fn mutate(&mut self, d: &mut Vec<u8>) {
        if d.len() >= COMPACT_FIXED_LEN
            && d[KIND_AT] == Kind::Compact as u8
            && self.rng.random_bool(0.6)
        {
            self.mutate_compact(d);
            return;
        }
        let r = &mut self.rng;
        // The records of the datagram's kind; a kind without records is
        // mutated as if it were a snapshot.
        let layout = RecordLayout::of(d).unwrap_or(RecordLayout::SNAPSHOT);
        let records = layout.records(d.len());
        let len = d.len();
        let kind = layout.kind;
        match r.random_range(0..22u32) {
            0 if len > KIND_AT => {
                d[KIND_AT] = match r.random_range(0..3u32) {
                    0 if !self.known_kinds.is_empty() => pick(r, &self.known_kinds),
                    1 => pick(r, &[0, 4, 5, 6, 15, 31, 32, 0x7f, 0x80, 0xff]),
                    _ => r.random(),
                }
            }
            1 if len > VERSION_AT => {
                d[VERSION_AT] = pick(
                    r,
                    &[
                        0,
                        wire::MIN_VERSION,
                        wire::VERSION,
                        wire::VERSION + 1,
                        0x7f,
                        0x80,
                        0xff,
                    ],
                )
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
            6 if len >= layout.count().end => {
                let n = records as u64;
                let most = layout.max_records() as u64;
                let lie = [
                    0,
                    n.wrapping_sub(1),
                    n + 1,
                    n * 2,
                    n, // the truth: repairs a count earlier mutations broke
                    n,
                    most,
                    most + 1,
                    u64::MAX / layout.record as u64 + 1, // record × count overflows
                    1 << 32,
                    u64::MAX,
                    r.random(),
                ];
                put_u64(d, layout.count(), pick(r, &lie));
            }
            7 if records > 0 => {
                let rec = layout.record_at(r.random_range(0..records));
                match kind {
                    // A coordinate.
                    Kind::Snapshot => {
                        let at = rec.start + 4 * r.random_range(1..4);
                        put_u32(d, at..at + 4, pick(r, &INTERESTING_F32));
                    }
                    // The record's tick, against the packet's: at it, just
                    // after it (invalid), at a copy age before it, extremes.
                    Kind::Despawn => {
                        let head = get_u64(d, TICK);
                        let age = pick(r, &wire::DESPAWN_COPY_AGES);
                        let any = r.random();
                        let tick = pick(
                            r,
                            &[
                                head,
                                head.wrapping_add(1),
                                head.wrapping_sub(age),
                                head.wrapping_sub(1),
                                0,
                                u64::MAX,
                                any,
                            ],
                        );
                        put_u64(d, rec.start + 4..rec.end, tick);
                    }
                    // A run's first id or count, against the range and the
                    // run before: on its edges, one past them, empty, huge.
                    _ => {
                        let lo = get_u32(d, ROSTER_FIRST_ID);
                        let hi = get_u32(d, ROSTER_LAST_ID);
                        // One past the previous run's last id (or the range's
                        // first id): where this run may start at the earliest.
                        let prev_end = if rec.start > layout.fixed {
                            let p = rec.start - layout.record;
                            get_u32(d, p..p + 4).wrapping_add(get_u32(d, p + 4..p + 8))
                        } else {
                            lo
                        };
                        let first = get_u32(d, rec.start..rec.start + 4);
                        let any = r.random();
                        if r.random_bool(0.5) {
                            let v = pick(
                                r,
                                &[
                                    lo,
                                    lo.wrapping_sub(1),
                                    hi,
                                    hi.wrapping_add(1),
                                    prev_end,
                                    prev_end.wrapping_sub(1),
                                    u32::MAX,
                                    any,
                                ],
                            );
                            put_u32(d, rec.start..rec.start + 4, v);
                        } else {
                            let fits = hi.wrapping_sub(first).wrapping_add(1);
                            let v = pick(r, &[0, 1, fits, fits.wrapping_add(1), u32::MAX, any]);
                            put_u32(d, rec.start + 4..rec.end, v);
                        }
                    }
                }
            }
            8 if records > 0 => {
                // The record's first u32: an entity's id, a despawned id,
                // a run's first id.
                let at = layout.record_at(r.random_range(0..records)).start;
                put_u32(d, at..at + 4, pick_or_random(r, &INTERESTING_U32));
            }
            9 if len >= BODY_U64S.start + 8 => {
                let u64s = match kind {
                    Kind::Snapshot => BODY_U64S,
                    _ => LIFECYCLE_U64S,
                };
                let slots = (len.min(u64s.end) - u64s.start) / 8;
                let at = u64s.start + 8 * r.random_range(0..slots);
                put_u64(d, at..at + 8, pick_or_random(r, &INTERESTING_U64));
            }
            10 if records > 0 => {
                // Duplicate the record array (for a roster, runs that
                // overlap); usually fix the count to match.
                let array = layout.fixed..layout.fixed + records * layout.record;
                d.truncate(array.end);
                d.extend_from_within(array);
                if r.random_bool(0.75) {
                    put_u64(d, layout.count(), 2 * records as u64);
                }
            }
            20 if kind == Kind::Roster && len >= ROSTER_LAST_ID.end => {
                // The range: empty, one id, the whole space, around the
                // runs' ends, or the two bounds swapped.
                let (lo, hi) = (get_u32(d, ROSTER_FIRST_ID), get_u32(d, ROSTER_LAST_ID));
                let (lo, hi) = match r.random_range(0..5u32) {
                    0 => (hi, lo),
                    1 => (lo, lo),
                    2 => (0, u32::MAX),
                    3 => (lo.wrapping_add(1), hi),
                    _ => (
                        pick_or_random(r, &INTERESTING_U32),
                        pick_or_random(r, &INTERESTING_U32),
                    ),
                };
                put_u32(d, ROSTER_FIRST_ID, lo);
                put_u32(d, ROSTER_LAST_ID, hi);
            }
            21 if records > 1 => {
                // Swap two records: a roster's runs out of order.
                let (a, b) = (r.random_range(0..records), r.random_range(0..records));
                let (a, b) = (layout.record_at(a.min(b)), layout.record_at(a.max(b)));
                if a != b {
                    let (head, tail) = d.split_at_mut(b.start);
                    head[a].swap_with_slice(&mut tail[..layout.record]);
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

impl Mutator {
    /// One edit of a compact part (at least its fixed fields long): a head
    /// field, its section's bits, or its records' values.
    fn mutate_compact(&mut self, d: &mut Vec<u8>) {
        let r = &mut self.rng;
        let bits = 8 * (d.len() - COMPACT_FIXED_LEN);
        match r.random_range(0..9u32) {
            0 => {
                let q = pick_or_random(r, &[0, 1, 2, 3, 16, 1000, 1 << 20, u32::MAX]);
                put_u32(d, COMPACT_QUANTA, q);
            }
            1 => {
                let k = pick_or_random(r, &[0, 1, 2, 8, 60, 0x7fff, u16::MAX]);
                put_u16(d, COMPACT_INTERVAL, k);
            }
            2 => {
                // The count against the records present: one off either
                // way, none, twice, the most a u16 says, the bits' limit.
                let n = u16::from_le_bytes([d[COMPACT_COUNT.start], d[COMPACT_COUNT.start + 1]]);
                let room = (bits / 4).min(usize::from(u16::MAX)) as u16;
                let lie = [
                    n.wrapping_sub(1),
                    n.wrapping_add(1),
                    0,
                    n.wrapping_mul(2),
                    u16::MAX,
                    room,
                    room.wrapping_add(1),
                    r.random(),
                ];
                put_u16(d, COMPACT_COUNT, pick(r, &lie));
            }
            3 if bits > 0 => {
                // Flip bits, most often in the first records' codes.
                for _ in 0..r.random_range(1..=3) {
                    let at = match r.random_range(0..2u32) {
                        0 => r.random_range(0..bits.min(64)),
                        _ => r.random_range(0..bits),
                    };
                    d[COMPACT_FIXED_LEN + at / 8] ^= 1 << (at % 8);
                }
            }
            4 if bits > 0 => {
                // Cut the section at a bit: what follows is zero padding.
                let at = r.random_range(0..bits);
                d.truncate(COMPACT_FIXED_LEN + at.div_ceil(8));
                if at % 8 != 0 {
                    let last = d.len() - 1;
                    d[last] &= (1u8 << (at % 8)) - 1;
                }
            }
            5 if bits > 0 => {
                // A padding bit (if the last byte has any): its top bit.
                let last = d.len() - 1;
                d[last] |= 0x80;
            }
            6 => {
                // A long run of zero bits at a byte: a gamma prefix of more
                // than 32 zeros, or a code pushed past the end.
                let at = COMPACT_FIXED_LEN + r.random_range(0..=bits / 8);
                let n = r.random_range(4..=6);
                for _ in 0..n {
                    d.insert(at, 0);
                }
            }
            7 => d.push(pick(r, &[0, 1, 0x80, 0xff])),
            _ => self.edit_records(d),
        }
    }

    /// Decodes `d` as a compact part and, if it decodes, writes it again
    /// with one record's value changed: its id (within its neighbours,
    /// so ids still ascend), its kind, or a position, velocity, residual or
    /// age at a code's edge. Otherwise flips a bit.
    fn edit_records(&mut self, d: &mut Vec<u8>) {
        let r = &mut self.rng;
        if wire::decode_records(d, &mut self.records).is_err() || self.records.compact.is_empty() {
            let at = r.random_range(0..d.len());
            d[at] ^= 1 << r.random_range(0..8);
            return;
        }
        let recs = &mut self.records.compact;
        let i = r.random_range(0..recs.len());
        let lo = if i == 0 { 0 } else { recs[i - 1].id() + 1 };
        let hi = recs.get(i + 1).map_or(u32::MAX, |n| n.id() - 1);
        let axis = r.random_range(0..3);
        let value = pick_or_random(r, &INTERESTING_I32);
        let rec = &mut recs[i];
        match r.random_range(0..4u32) {
            0 => {
                let any = r.random_range(lo..=hi);
                let id = pick(r, &[lo, hi, lo.saturating_add(1).min(hi), any]);
                match rec {
                    Record::Key { id: x, .. } | Record::Delta { id: x, .. } => *x = id,
                }
            }
            1 => {
                // Another kind of record for the same id.
                let id = rec.id();
                let age = pick(r, &[1, 2, 7, 8, 9, 59, 60, u32::MAX]);
                *rec = match r.random_range(0..3u32) {
                    0 => Record::Key {
                        id,
                        q: [value; 3],
                        v: [0; 3],
                    },
                    1 => Record::Delta {
                        id,
                        age: None,
                        r: [value; 3],
                    },
                    _ => Record::Delta {
                        id,
                        age: Some(age),
                        r: [0; 3],
                    },
                };
            }
            _ => match rec {
                Record::Key { q, v, .. } => {
                    if r.random_bool(0.5) {
                        q[axis] = value;
                    } else {
                        v[axis] = value;
                    }
                }
                Record::Delta { age, r: res, .. } => {
                    if r.random_bool(0.25) {
                        let a = pick_or_random(r, &[1, 2, 8, 60, u32::MAX]).max(1);
                        *age = match age {
                            Some(_) if r.random_bool(0.3) => None,
                            _ => Some(a),
                        };
                    } else {
                        res[axis] = value;
                    }
                }
            },
        }
        self.section.clear();
        let mut w = BitWriter::new(&mut self.section);
        let mut prev = None;
        for rec in &self.records.compact {
            wire::write_record(&mut w, prev, rec);
            prev = Some(rec.id());
        }
        w.finish();
        d.truncate(COMPACT_FIXED_LEN);
        d.extend_from_slice(&self.section);
    }
}

/// A compact part of tick `tick` with made-up records, its bits in
/// `section`: a head of any valid quanta and interval, ids ascending from
/// anywhere (up to `u32::MAX`), each record a keyframe or a delta of
/// either form, their values at the codes' edges; positions within the
/// coordinate limit for the quanta, so the part is valid.
fn made_up_part(r: &mut StdRng, tick: u64, section: &mut Vec<u8>) -> Body {
    let quanta_per_unit = pick_or_random(r, &[1, 2, 3, 16, 1000, u32::MAX]).max(1);
    let keyframe_interval = pick_or_random(r, &[1, 2, 8, 60, u16::MAX]).max(1);
    let parts = r.random_range(1..=u16::MAX);
    let n = match r.random_range(0..100u32) {
        0 => r.random_range(0..=1400),
        _ => r.random_range(0..=8),
    };
    let mut w = BitWriter::new(section);
    let mut prev: Option<u32> = None;
    let mut count = 0u16;
    let mut id = match r.random_range(0..4u32) {
        0 => u64::from(r.random::<u32>()),
        _ => u64::from(r.random_range(0..CAPACITY)),
    };
    for _ in 0..n {
        if id > u64::from(u32::MAX) {
            break;
        }
        let value = |r: &mut StdRng| pick_or_random(r, &INTERESTING_I32);
        let record = match r.random_range(0..3u32) {
            0 => {
                let mut q = [0i32; 3];
                for c in &mut q {
                    *c = value(r);
                    if !wire::quanta_ok(*c, quanta_per_unit) {
                        *c = 0;
                    }
                }
                Record::Key {
                    id: id as u32,
                    q,
                    v: [value(r), value(r), value(r)],
                }
            }
            k => Record::Delta {
                id: id as u32,
                age: (k == 2).then(|| pick_or_random(r, &[1, 2, 7, 59, 60, u32::MAX]).max(1)),
                r: [value(r), value(r), value(r)],
            },
        };
        wire::write_record(&mut w, prev, &record);
        prev = Some(id as u32);
        count += 1;
        id += match r.random_range(0..8u32) {
            0 => u64::from(r.random::<u32>()),
            1 => r.random_range(2..=64),
            _ => 1,
        };
    }
    w.finish();
    Body::Compact(CompactHead {
        tick,
        scheduled_ns: T0 - 1_000,
        sent_ns: T0,
        part: r.random_range(0..parts),
        parts,
        quanta_per_unit,
        keyframe_interval,
        count,
    })
}

/// An entity id: usually below the harness's capacity, so it meets the world.
fn entity_id(r: &mut StdRng) -> u32 {
    match r.random_range(0..4u32) {
        0 => r.random(),
        1 => pick(r, &INTERESTING_U32),
        _ => r.random_range(0..CAPACITY),
    }
}

/// A valid roster part of `tick`, its runs in `runs`: a range (the whole
/// id space, one part of an even split of it, or one near the harness's
/// capacity) and ascending runs inside it, some touching, some reaching
/// the range's ends.
fn roster(r: &mut StdRng, tick: u64, runs: &mut Vec<IdRun>) -> RosterHead {
    let (first_id, last_id, part, parts) = match r.random_range(0..3u32) {
        0 => (0, u32::MAX, 0, 1),
        1 => {
            let parts = r.random_range(1..=16u16);
            let part = r.random_range(0..parts);
            let width = (1u64 << 32) / u64::from(parts);
            let first = u64::from(part) * width;
            // The last part takes the remainder, up to u32::MAX.
            let last = if part + 1 == parts {
                u64::from(u32::MAX)
            } else {
                first + width - 1
            };
            (first as u32, last as u32, part, parts)
        }
        _ => {
            let first = r.random_range(0..2 * CAPACITY);
            let parts = r.random_range(1..=4u16);
            let part = r.random_range(0..parts);
            (first, r.random_range(first..=2 * CAPACITY), part, parts)
        }
    };
    let n = match r.random_range(0..100u32) {
        0 => r.random_range(0..=wire::runs_per_part(wire::MAX_DATAGRAM).unwrap()),
        _ => r.random_range(0..=8),
    };
    let (mut next, last) = (u64::from(first_id), u64::from(last_id));
    for _ in 0..n {
        let gap = match r.random_range(0..3u32) {
            0 => 0,
            1 => r.random_range(0..=16),
            _ => r.random_range(0..=last.saturating_sub(next).min(1 << 20)),
        };
        let first = next + gap;
        if first > last {
            break;
        }
        let room = (last - first + 1).min(u64::from(u32::MAX));
        let count = match r.random_range(0..8u32) {
            0 => room,
            _ => r.random_range(1..=room.min(64)),
        };
        runs.push(IdRun {
            first: first as u32,
            count: count as u32,
        });
        next = first + count;
    }
    RosterHead {
        tick,
        sent_ns: T0,
        first_id,
        last_id,
        part,
        parts,
    }
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

fn get_u32(d: &[u8], at: Range<usize>) -> u32 {
    u32::from_le_bytes(d[at].try_into().expect("4 bytes"))
}

fn get_u64(d: &[u8], at: Range<usize>) -> u64 {
    u64::from_le_bytes(d[at].try_into().expect("8 bytes"))
}
