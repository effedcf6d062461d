//! The structure-aware mutator: seeded inputs made from the spec's vectors
//! (whole, or with boundary values written into their fields, truncated,
//! extended, spliced) and pure noise.

use std::ops::Range;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{
    known_kinds, load_vectors, vectors_dir, BODY_U64S, CAPACITY, COUNT, FLAGS, KIND_AT, PART,
    PARTS, SEQ, SESSION, T0, VERSION_AT,
};
use crate::wire::{self, Body, Entity, Packet, SnapshotHead};

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
