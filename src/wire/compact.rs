//! The compact snapshot part of protocol version 2 (kind 6): quantized
//! positions, delta-coded against each entity's own keyframe, bit-packed.
//! This file owns the bytes: the fixed fields (through the codec) and the
//! records (through [`bits`](super::bits)). What a record means (which
//! keyframe a delta is against, when keyframes are due) is the state of
//! [`crate::core::compact`]; a record here is only what it says.
//!
//! # Layout
//!
//! The header, then [`CompactHead`] (little-endian, fixed width, through
//! the codec), then `count` records packed bit by bit (least significant
//! bit first, see [`bits`](super::bits)), then zero bits to the end of the
//! last byte. Nothing follows.
//!
//! A record is:
//!
//! * the **id gap**, Elias gamma: this record's id minus the previous
//!   record's id in the part (the first record's: its id plus one), so ids
//!   rise strictly within a part and consecutive ids cost one bit;
//! * a **prefix**: `1` a delta against the scheduled keyframe, `01` a
//!   keyframe, `00` a delta against a keyframe of an explicit age;
//! * for a **keyframe**: x, y, z as 32-bit two's complement quanta, then
//!   the velocity along each axis in sixteenths of a quantum per tick,
//!   signed (zigzag, Exp-Golomb);
//! * for a **delta**, after `00` only: the keyframe's age in ticks,
//!   Elias gamma (at least 1); then the residual along x, y, z in quanta,
//!   signed (zigzag, Exp-Golomb).
//!
//! The decoder checks every field and never panics: a record cut short,
//! an impossible code, an id past `u32::MAX`, a count the bits cannot
//! hold, a keyframe whose position [`dequantize`]s beyond
//! [`MAX_COORD`](super::MAX_COORD), non-zero padding or bytes after it
//! are each a [`DecodeError`].

use serde::{Deserialize, Serialize};

use super::bits::{BitReader, BitWriter};
use super::codec::{U16, U32, U64};
use super::{DecodeError, SnapshotHead, HEADER_LEN, MAX_COORD, MAX_DATAGRAM};

/// Bytes of a compact part's fixed fields after the header.
pub const COMPACT_FIXED_LEN: usize = HEADER_LEN + 3 * U64 + 2 * U16 + U32 + 2 * U16;
/// The most bits one record can take: a 65-bit id gap, a 2-bit prefix, three
/// 32-bit positions and three 65-bit velocities (a delta is shorter).
pub const MAX_RECORD_BITS: usize = 65 + 2 + 3 * 32 + 3 * 65;
/// The smallest datagram a compact part may be given: the fixed fields
/// and the longest record.
pub const MIN_COMPACT_BUDGET: usize = COMPACT_FIXED_LEN + MAX_RECORD_BITS.div_ceil(8);
/// Most records in one part: the count is a `u16`.
pub const MAX_RECORDS: usize = u16::MAX as usize;

/// Fixed fields of a compact part (its records travel beside it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactHead {
    /// The tick number, the Count a game client shows.
    pub tick: u64,
    /// When this tick was due: nanoseconds since the Unix epoch.
    pub scheduled_ns: u64,
    /// When this datagram was sent: nanoseconds since the Unix epoch.
    pub sent_ns: u64,
    /// This part's index, `0..parts`.
    pub part: u16,
    /// How many parts this tick was split into.
    pub parts: u16,
    /// Quanta per world unit (at least 1): a position of `q` quanta is
    /// `q / quanta_per_unit` world units (1000: millimetres).
    pub quanta_per_unit: u32,
    /// Ticks between two scheduled keyframes of an entity (at least 1):
    /// entity `id`'s are the ticks `t` with `(t + id) mod interval = 0`.
    pub keyframe_interval: u16,
    /// Records in this part.
    pub count: u16,
}

/// One record of a compact part, as the bytes say it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record {
    /// Where entity `id` is, absolutely, and how fast it moves.
    Key {
        /// The entity.
        id: u32,
        /// Position in quanta.
        q: [i32; 3],
        /// Velocity in sixteenths of a quantum per tick.
        v: [i32; 3],
    },
    /// How far entity `id` is from where its keyframe predicts.
    Delta {
        /// The entity.
        id: u32,
        /// The keyframe's age in ticks; `None`: the scheduled keyframe.
        age: Option<u32>,
        /// Position minus the prediction, in quanta.
        r: [i32; 3],
    },
}

impl CompactHead {
    /// The fields it shares with a full part's head: a receiver applies a
    /// compact part, once decoded, as it applies a full one.
    pub fn snapshot_head(&self) -> SnapshotHead {
        SnapshotHead {
            tick: self.tick,
            scheduled_ns: self.scheduled_ns,
            sent_ns: self.sent_ns,
            part: self.part,
            parts: self.parts,
        }
    }
}

impl Record {
    /// The entity the record is about.
    pub fn id(&self) -> u32 {
        match *self {
            Record::Key { id, .. } | Record::Delta { id, .. } => id,
        }
    }
}

/// Whether a head is one the decoder takes: a part index in range, at
/// least one quantum per unit, a keyframe interval of at least 1.
pub fn head_ok(h: &CompactHead) -> bool {
    h.parts != 0 && h.part < h.parts && h.quanta_per_unit >= 1 && h.keyframe_interval >= 1
}

/// The coordinate `q` quanta stand for: `q / quanta_per_unit` computed in
/// `f64`, rounded to the nearest `f32`. A keyframe's coordinates must come
/// out within [`MAX_COORD`], as a snapshot's must.
#[inline]
pub fn dequantize(q: i32, quanta_per_unit: u32) -> f32 {
    (f64::from(q) / f64::from(quanta_per_unit)) as f32
}

/// Whether `q` quanta stand for a coordinate within [`MAX_COORD`].
#[inline]
pub fn quanta_ok(q: i32, quanta_per_unit: u32) -> bool {
    dequantize(q, quanta_per_unit).abs() <= MAX_COORD
}

/// [`dequantize`] and [`quanta_ok`] for one `quanta_per_unit`, made once
/// per part: the same results, bit for bit, without a division where a
/// multiplication provably gives the same `f32`, and with the coordinate
/// limit as a bound on the quanta.
///
/// # Why the multiplication is exact
///
/// Let `p = quanta_per_unit = p_odd × 2^s` with `p_odd` odd, and
/// `y = q × fl(1/p)` rounded to `f64`. Both `y` and the division's
/// `fl(q / p)` are within 2⁻⁵² of `q / p`, relatively. They round to
/// different `f32`s only if a midpoint between two `f32`s, `m × 2^e` with
/// `m` odd and `2²⁴ ≤ m < 2²⁵`, lies between them or at one of them.
/// * If `q / p` is not that midpoint, it is at least `2^e / p_odd` from it
///   (its numerator `q × 2^-(e+s) − m × p_odd` is a non-zero integer), that
///   is at least `1 / (p_odd × 2²⁵)` relatively: more than 2⁻⁴⁹ when
///   `p_odd < 2²⁴`, far beyond both errors.
/// * If `q / p` is that midpoint, `q / p_odd = m × 2^(e+s)` is an integer
///   with an odd factor of at least 2²⁴, so `|q| ≥ 2²⁴ × p_odd`.
///
/// So for `p_odd < 2²⁴` and `|q| < 2²⁴ × p_odd` the product is the
/// division's `f32`; for a power of two (`p_odd = 1`) both are exact. Any
/// other `q` is divided.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dequantizer {
    quanta_per_unit: f64,
    inverse: f64,
    /// `|q|` below this multiplies.
    exact_below: i64,
    /// The largest `|q|` whose coordinate is within [`MAX_COORD`].
    limit: i64,
    /// The largest `|q|` below both `limit` and `exact_below` (or 0, whose
    /// product is exact anyway): `|q|` up to this multiplies.
    multiplied: i64,
}

impl Dequantizer {
    /// The dequantizer for `quanta_per_unit` (at least 1).
    pub fn new(quanta_per_unit: u32) -> Dequantizer {
        let p = quanta_per_unit.max(1);
        let odd = p >> p.trailing_zeros();
        let exact_below = match odd {
            1 => i64::MAX,
            o if o < 1 << 24 => i64::from(o) << 24,
            _ => 0,
        };
        // dequantize is odd and monotone in q: the limit is where it
        // crosses MAX_COORD, found from an estimate by a few steps.
        let within = |m: i64| (m as f64 / f64::from(p)) as f32 <= MAX_COORD;
        let top = 1i64 << 31; // |i32::MIN|
        let mut limit = ((f64::from(MAX_COORD) * f64::from(p)) as i64).min(top);
        while limit > 0 && !within(limit) {
            limit -= 1;
        }
        while limit < top && within(limit + 1) {
            limit += 1;
        }
        Dequantizer {
            quanta_per_unit: f64::from(p),
            inverse: 1.0 / f64::from(p),
            exact_below,
            limit,
            multiplied: limit.min(exact_below - 1).clamp(0, i64::from(i32::MAX)),
        }
    }

    /// [`dequantize`]`(q, quanta_per_unit)`, exactly.
    #[inline(always)]
    pub fn coord(&self, q: i32) -> f32 {
        if i64::from(q).abs() < self.exact_below {
            (f64::from(q) * self.inverse) as f32
        } else {
            (f64::from(q) / self.quanta_per_unit) as f32
        }
    }

    /// [`quanta_ok`]`(q, quanta_per_unit)`, exactly.
    #[inline(always)]
    pub fn ok(&self, q: i32) -> bool {
        i64::from(q).abs() <= self.limit
    }

    /// Whether `p` quanta (computed in `i64`) are an `i32` that passes
    /// [`Dequantizer::ok`]: one comparison.
    #[inline(always)]
    pub fn ok_wide(&self, p: i64) -> bool {
        // Within the limit and within the i32s: -2^31 ..= 2^31 - 1.
        let lo = (-self.limit).max(i64::from(i32::MIN));
        let hi = self.limit.min(i64::from(i32::MAX));
        (p.wrapping_sub(lo) as u64) <= (hi - lo) as u64
    }

    /// Whether `p` quanta pass [`Dequantizer::ok_wide`] and their
    /// coordinate is the product (as [`Dequantizer::coord`] proves it):
    /// then [`Dequantizer::coord_multiplied`] is their coordinate. One
    /// comparison; true of every position within the reference sender's
    /// bound.
    #[inline(always)]
    pub fn multiplies_wide(&self, p: i64) -> bool {
        let m = self.multiplied;
        (p.wrapping_add(m) as u64) <= 2 * m as u64
    }

    /// [`Dequantizer::coord`] of a `q` that passes
    /// [`Dequantizer::multiplies_wide`]: one multiplication.
    #[inline(always)]
    pub fn coord_multiplied(&self, q: i32) -> f32 {
        debug_assert!(self.multiplies_wide(i64::from(q)));
        (f64::from(q) * self.inverse) as f32
    }
}

/// Appends `record` to `w`, `prev` being the previous record's id in the
/// part (`None` for the first). The caller keeps ids rising within a part
/// and ages at least 1.
#[inline]
pub fn write_record(w: &mut BitWriter<'_>, prev: Option<u32>, record: &Record) {
    let gap = id_gap(prev, record.id());
    // A delta whose prefix and residuals fit a word (most records): the
    // gap's code, then that word.
    if let Record::Delta { age, r, .. } = *record {
        if let Some(tail) = delta_tail(age, residual_codes(r)) {
            write_delta(w, gap, tail);
            return;
        }
    }
    w.gamma(gap);
    match *record {
        Record::Key { q, v, .. } => {
            w.write(0b10, 2); // "0" then "1", least significant first
            for c in q {
                w.write(u64::from(c as u32), 32);
            }
            for c in v {
                w.signed(c);
            }
        }
        Record::Delta { age, r, .. } => {
            match age {
                None => w.write(1, 1),
                Some(a) => {
                    w.write(0, 2);
                    w.gamma(u64::from(a));
                }
            }
            for c in r {
                w.signed(c);
            }
        }
    }
}

/// The id gap a record after `prev` (`None`: the first in its part) codes.
#[inline(always)]
pub fn id_gap(prev: Option<u32>, id: u32) -> u64 {
    match prev {
        Some(p) => u64::from(id - p),
        None => u64::from(id) + 1,
    }
}

/// The codes of a delta's three residuals (signed: zigzag, Exp-Golomb),
/// each as its bits and length: what [`delta_tail`] packs, and what the
/// residuals cost (the sum of the lengths).
pub type ResidualCodes = [(u64, u32); 3];

/// A delta's [`ResidualCodes`].
#[inline(always)]
pub fn residual_codes(r: [i32; 3]) -> ResidualCodes {
    r.map(|c| gamma_code(u64::from(super::bits::zigzag(c)) + 1))
}

/// What follows a delta's id gap, as one word: its prefix (`1`, or `00`
/// then the age's code) and its three [`residual_codes`], least
/// significant first, and how many bits; `None` when they take more than
/// 64. [`write_delta`] puts an id gap before it.
#[inline(always)]
pub fn delta_tail(age: Option<u32>, residuals: ResidualCodes) -> Option<(u64, u32)> {
    let (a, al) = match age {
        None => (1, 1),
        Some(age) => {
            let (c, l) = gamma_code(u64::from(age));
            (c << 2, l + 2)
        }
    };
    let [(c0, l0), (c1, l1), (c2, l2)] = residuals;
    let total = al + l0 + l1 + l2;
    if total > 64 {
        return None;
    }
    // Every code is at least a bit long, so each starts below bit 64, and
    // within 64 bits in all nothing is shifted out.
    let (p0, p1, p2) = (al, al + l0, al + l0 + l1);
    Some((a | c0 << p0 | c1 << p1 | c2 << p2, total))
}

/// How many bits the gamma code of id gap `gap` (`1 ≤ gap ≤ 2^32`) takes.
#[inline(always)]
pub fn gap_bits(gap: u64) -> u32 {
    gamma_code(gap).1
}

/// Writes a delta record: the gamma code of its id gap `gap`, then its
/// [`delta_tail`], the bits [`write_record`] writes for it.
#[inline(always)]
pub fn write_delta(w: &mut BitWriter<'_>, gap: u64, (tail, tl): (u64, u32)) {
    let (g, gl) = gamma_code(gap);
    if gl + tl <= 64 {
        w.write(g | tail << gl, gl + tl);
    } else {
        w.gamma(gap);
        w.write(tail, tl);
    }
}

/// The gamma code of `n` (`1 ≤ n ≤ 2^32`) as its bits, least significant
/// first, and its length (at most 65: over 64 it does not fit a word, and
/// the bits are then only the low 64 of it).
#[inline(always)]
fn gamma_code(n: u64) -> (u64, u32) {
    // `| 1` leaves the leading one where it is (n ≥ 1) and tells the
    // compiler the count of a zero is never asked for.
    let len = 63 - (n | 1).leading_zeros();
    let rest = n ^ (1 << len);
    ((rest << (len + 1)) | (1 << len), 2 * len + 1)
}

/// Decodes a compact part's body (`rest`, after the header): the head
/// through the codec, then its records, appended to `out` when given.
/// Returns the head and the bytes used (all of `rest`, or an error).
pub(super) fn decode_compact(
    rest: &[u8],
    out: Option<&mut Vec<Record>>,
) -> Result<(CompactHead, usize), DecodeError> {
    let (head, n): (CompactHead, usize) = super::codec::read(rest)?;
    if head.parts == 0 || head.part >= head.parts {
        return Err(DecodeError::BadPart);
    }
    if !head_ok(&head) {
        return Err(DecodeError::BadCompact);
    }
    let body = &rest[n..];
    // Each record takes at least 4 bits: a lying count is refused before
    // anything is reserved.
    if usize::from(head.count) * 4 > body.len() * 8 {
        return Err(DecodeError::Truncated);
    }
    let mut r = BitReader::new(body);
    let mut sink = out;
    if let Some(v) = sink.as_deref_mut() {
        v.reserve(usize::from(head.count));
    }
    let deq = Dequantizer::new(head.quanta_per_unit);
    // A part of short records (the linear world's, about 14 bits each)
    // is read by table; one of longer ones (the players world's, about
    // 31), which the table would only miss, code by code.
    if body.len() * 8 <= usize::from(head.count) * TABLE_PART_BITS {
        read_records::<true>(&mut r, head.count, &deq, sink)?;
    } else {
        read_records::<false>(&mut r, head.count, &deq, sink)?;
    }
    if !r.at_padding() {
        // Bits left that are not padding: a whole byte more, or non-zero bits.
        return Err(if r.remaining() >= 8 {
            DecodeError::TrailingBytes(body.len() - r.bytes_used())
        } else {
            DecodeError::BadCompact
        });
    }
    Ok((head, rest.len()))
}

/// Most bits a record of a part takes on average for the part to be read
/// by table ([`read_records`]).
const TABLE_PART_BITS: usize = 20;

/// Reads `count` records: with `BY_TABLE`, by [`SHORT`] where it holds
/// them, else each code by code. One function, made twice: the loop that
/// does not ask the table has nothing of it.
#[inline(never)]
fn read_records<const BY_TABLE: bool>(
    r: &mut BitReader<'_>,
    count: u16,
    deq: &Dequantizer,
    mut sink: Option<&mut Vec<Record>>,
) -> Result<(), DecodeError> {
    let mut prev: Option<u32> = None;
    let mut left = count;
    while left > 0 {
        if BY_TABLE {
            // The shortest records, as many as one word holds, by table.
            let (word, avail) = r.word();
            let (mut used, mut missed) = (0, false);
            while left > 0 && used + SHORT_BITS <= 57 {
                let e = SHORT[((word >> used) & SHORT_MASK) as usize];
                let len = e & 15;
                if len == 0 || used + len > avail {
                    missed = true;
                    break;
                }
                let gap = (e >> 4) & 15;
                let id = match prev {
                    Some(p) => p.checked_add(gap).ok_or(DecodeError::BadCompact)?,
                    None => gap - 1,
                };
                let res = [(e >> 8) as i8, (e >> 16) as i8, (e >> 24) as i8].map(i32::from);
                used += len;
                if let Some(v) = sink.as_deref_mut() {
                    v.push(Record::Delta {
                        id,
                        age: None,
                        r: res,
                    });
                }
                left -= 1;
                prev = Some(id);
            }
            r.skip(used);
            if left == 0 {
                break;
            }
            if !missed {
                continue; // the word ran out: the next one
            }
        }
        let rec = read_checked(r, prev, deq)?;
        prev = Some(rec.id());
        if let Some(v) = sink.as_deref_mut() {
            v.push(rec);
        }
        left -= 1;
    }
    Ok(())
}

/// [`read_record`], and a keyframe's coordinates checked.
#[inline(always)]
fn read_checked(
    r: &mut BitReader<'_>,
    prev: Option<u32>,
    deq: &Dequantizer,
) -> Result<Record, DecodeError> {
    let rec = read_record(r, prev)?;
    if let Record::Key { q, .. } = rec {
        if !q.iter().all(|&c| deq.ok(c)) {
            return Err(DecodeError::BadCoordinate);
        }
    }
    Ok(rec)
}

/// Bits of the word [`SHORT`] is indexed by.
const SHORT_BITS: u32 = 12;
const SHORT_MASK: u64 = (1 << SHORT_BITS) - 1;

/// The records of [`SHORT_BITS`] bits or fewer that are a delta against
/// the unnamed keyframe, by their first [`SHORT_BITS`] bits: bits 0..4 the
/// record's length (0: not such a record), 4..8 its id gap, then each
/// residual as an `i8`. The common record, parsed with one look-up instead
/// of five codes each waiting for the one before.
static SHORT: [u32; 1 << SHORT_BITS] = short_table();

const fn short_table() -> [u32; 1 << SHORT_BITS] {
    let mut t = [0u32; 1 << SHORT_BITS];
    let mut i = 0;
    while i < t.len() {
        t[i] = short_entry(i as u64);
        i += 1;
    }
    t
}

/// The gamma code at bit `at` of `word` (`at` < 64): its value and the
/// bits it takes, if it has fewer than 28 zeros and ends within the first
/// `avail` bits.
#[inline(always)]
const fn gamma_in(word: u64, at: u32, avail: u32) -> Option<(u64, u32)> {
    let w = word >> at;
    let zeros = w.trailing_zeros();
    let len = 2 * zeros + 1;
    if zeros >= 28 || at + len > avail {
        return None;
    }
    Some((
        (1 << zeros) | ((w >> (zeros + 1)) & ((1 << zeros) - 1)),
        len,
    ))
}

/// [`SHORT`]'s entry for the bits `w`.
const fn short_entry(w: u64) -> u32 {
    let Some((gap, mut used)) = gamma_in(w, 0, SHORT_BITS) else {
        return 0;
    };
    if used >= SHORT_BITS || (w >> used) & 1 == 0 || gap > 15 {
        return 0;
    }
    used += 1; // the prefix "1"
    let mut entry = 0u32;
    let mut axis = 0;
    while axis < 3 {
        let Some((v, len)) = gamma_in(w, used, SHORT_BITS) else {
            return 0;
        };
        used += len;
        let s = super::bits::unzigzag((v - 1) as u32);
        entry |= ((s as i8 as u8) as u32) << (8 + 8 * axis);
        axis += 1;
    }
    entry | used | (gap as u32) << 4
}

/// Reads one record after the one with id `prev`.
#[inline(always)]
fn read_record(r: &mut BitReader<'_>, prev: Option<u32>) -> Result<Record, DecodeError> {
    if let Some(rec) = read_short_delta(r, prev) {
        return Ok(rec);
    }
    let short = |_| DecodeError::Truncated;
    let gap = r.gamma().map_err(short)?;
    let id = match prev {
        Some(p) => u64::from(p) + gap,
        None => gap - 1,
    };
    let id = u32::try_from(id).map_err(|_| DecodeError::BadCompact)?;
    if r.read(1).map_err(short)? == 1 {
        let mut res = [0; 3];
        for c in &mut res {
            *c = r.signed().map_err(short)?;
        }
        return Ok(Record::Delta {
            id,
            age: None,
            r: res,
        });
    }
    if r.read(1).map_err(short)? == 1 {
        let mut q = [0; 3];
        for c in &mut q {
            *c = r.read(32).map_err(short)? as u32 as i32;
        }
        let mut v = [0; 3];
        for c in &mut v {
            *c = r.signed().map_err(short)?;
        }
        return Ok(Record::Key { id, q, v });
    }
    let age = u32::try_from(r.gamma().map_err(short)?).map_err(|_| DecodeError::BadCompact)?;
    let mut res = [0; 3];
    for c in &mut res {
        *c = r.signed().map_err(short)?;
    }
    Ok(Record::Delta {
        id,
        age: Some(age),
        r: res,
    })
}

/// The common record, a delta whose codes all fit in one 57-bit word,
/// parsed from that word at once; `None` (and nothing read) for any other
/// (a keyframe, a long delta), which [`read_record`] reads code by code.
#[inline(always)]
fn read_short_delta(r: &mut BitReader<'_>, prev: Option<u32>) -> Option<Record> {
    let (word, avail) = r.word();
    let mut used = 0u32;
    let gamma = |at| gamma_in(word, at, avail);
    let (gap, len) = gamma(used)?;
    used += len;
    let age = match (word >> used) & 0b11 {
        _ if used + 2 > avail => return None,
        0b01 | 0b11 => {
            used += 1; // "1": against the unnamed keyframe
            None
        }
        0b00 => {
            let (age, len) = gamma(used + 2)?; // "00", then its age
            used += 2 + len;
            Some(age as u32) // below 2^28
        }
        _ => return None, // "01" (bit 0 then bit 1): a keyframe
    };
    let mut res = [0i32; 3];
    for c in &mut res {
        let (v, len) = gamma(used)?;
        used += len;
        *c = super::bits::unzigzag((v - 1) as u32);
    }
    let id = match prev {
        Some(p) => u32::try_from(u64::from(p) + gap).ok()?,
        None => u32::try_from(gap - 1).ok()?,
    };
    r.skip(used);
    Some(Record::Delta { id, age, r: res })
}

/// How many bytes a body of `bits` bits takes, and whether a part of
/// `budget` bytes can hold it.
pub fn body_fits(bits: usize, budget: usize) -> bool {
    COMPACT_FIXED_LEN + bits.div_ceil(8) <= budget.min(MAX_DATAGRAM)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{decode_records, encode_records, Body, Packet, Payload, Records};

    fn head(count: u16) -> CompactHead {
        CompactHead {
            tick: 100,
            scheduled_ns: 1_000,
            sent_ns: 1_050,
            part: 0,
            parts: 1,
            quanta_per_unit: 1000,
            keyframe_interval: 60,
            count,
        }
    }

    fn body(records: &[Record]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = BitWriter::new(&mut out);
        let mut prev = None;
        for r in records {
            write_record(&mut w, prev, r);
            prev = Some(r.id());
        }
        w.finish();
        out
    }

    fn sample() -> Vec<Record> {
        vec![
            Record::Key {
                id: 0,
                q: [1_000_000, -2, i32::MIN],
                v: [16, 0, -1],
            },
            Record::Delta {
                id: 1,
                age: None,
                r: [0, 0, 0],
            },
            Record::Delta {
                id: 2,
                age: None,
                r: [1, -1, 2],
            },
            Record::Delta {
                id: 900,
                age: Some(7),
                r: [-300, 40_000, 0],
            },
            Record::Key {
                id: u32::MAX,
                q: [i32::MAX, 0, 5],
                v: [i32::MAX, i32::MIN, 0],
            },
        ]
    }

    /// The sample records, their bit-packed body, a packet of them and its
    /// datagram.
    fn sample_datagram() -> (Vec<Record>, Vec<u8>, Packet, Vec<u8>) {
        let recs = sample();
        let bytes = body(&recs);
        let p = Packet {
            session: 9,
            seq: 3,
            body: Body::Compact(head(recs.len() as u16)),
        };
        let d = crate::wire::encode_records_to_vec(&p, Payload::Compact(&bytes)).unwrap();
        (recs, bytes, p, d)
    }

    #[test]
    fn records_round_trip_through_a_datagram() {
        let (recs, bytes, p, d) = sample_datagram();
        assert_eq!(d.len(), COMPACT_FIXED_LEN + bytes.len());
        let mut out = Records::default();
        assert_eq!(decode_records(&d, &mut out), Ok(p));
        assert_eq!(out.compact, recs);
        // A delta against the scheduled keyframe with a zero residual is
        // 1 + 1 + 3 bits: five bits for an entity that moved as predicted.
        let one = body(&[
            Record::Delta {
                id: 0,
                age: None,
                r: [0; 3],
            },
            Record::Delta {
                id: 1,
                age: None,
                r: [0; 3],
            },
        ]);
        assert_eq!(one.len(), 2, "10 bits");
        let mut buf = vec![0u8; 8];
        assert!(encode_records(&p, Payload::Compact(&bytes), &mut buf).is_err());
    }

    #[test]
    fn every_cut_and_every_bad_field_is_an_error() {
        let (recs, _, p, d) = sample_datagram();
        let mut out = Records::default();
        for len in 0..d.len() {
            assert!(decode_records(&d[..len], &mut out).is_err(), "cut at {len}");
            assert!(out.compact.is_empty());
        }
        let mut long = d.clone();
        long.push(0);
        assert_eq!(
            decode_records(&long, &mut out),
            Err(DecodeError::TrailingBytes(1))
        );
        // The count says one more record than the bits hold.
        let mut more = d.clone();
        let count_at = COMPACT_FIXED_LEN - 2;
        more[count_at] += 1;
        assert!(decode_records(&more, &mut out).is_err());
        // A non-zero padding bit.
        let mut pad = d.clone();
        *pad.last_mut().unwrap() |= 0x80;
        let bits: usize = {
            let mut w_out = Vec::new();
            let mut w = BitWriter::new(&mut w_out);
            let mut prev = None;
            for r in &recs {
                write_record(&mut w, prev, r);
                prev = Some(r.id());
            }
            w.bit_len(0)
        };
        // The sample leaves padding in its last byte, so that bit is one.
        assert!(!bits.is_multiple_of(8), "{bits} bits: no padding to set");
        assert_eq!(decode_records(&pad, &mut out), Err(DecodeError::BadCompact));
        // Heads the decoder refuses.
        for bad in [
            CompactHead {
                quanta_per_unit: 0,
                ..head(0)
            },
            CompactHead {
                keyframe_interval: 0,
                ..head(0)
            },
        ] {
            let p = Packet {
                body: Body::Compact(bad),
                ..p
            };
            assert!(crate::wire::encode_records_to_vec(&p, Payload::Compact(&[])).is_err());
        }
        let p = Packet {
            body: Body::Compact(CompactHead { part: 1, ..head(0) }),
            ..p
        };
        assert_eq!(
            crate::wire::encode_records_to_vec(&p, Payload::Compact(&[])),
            Err(crate::wire::EncodeError::BadPart)
        );
    }

    #[test]
    fn a_keyframe_beyond_the_coordinate_limit_is_refused() {
        // At one quantum a unit, 1e9 quanta are the limit itself and
        // 1000000064, the first f32 above it, are beyond it.
        let d = |x: i32| {
            let mut out = Vec::new();
            let mut w = BitWriter::new(&mut out);
            let key = Record::Key {
                id: 0,
                q: [0, x, 0],
                v: [0; 3],
            };
            write_record(&mut w, None, &key);
            w.finish();
            let p = Packet {
                session: 1,
                seq: 1,
                body: Body::Compact(CompactHead {
                    quanta_per_unit: 1,
                    ..head(1)
                }),
            };
            crate::wire::encode_records_to_vec(&p, Payload::Compact(&out)).unwrap()
        };
        let mut out = Records::default();
        for ok in [1_000_000_000, -1_000_000_000, 1_000_000_032] {
            assert!(decode_records(&d(ok), &mut out).is_ok(), "{ok}");
        }
        for bad in [1_000_000_064, i32::MIN, i32::MAX] {
            assert_eq!(
                decode_records(&d(bad), &mut out),
                Err(DecodeError::BadCoordinate),
                "{bad}"
            );
        }
        assert_eq!(dequantize(1_000_000_032, 1), 1.0e9);
    }

    /// Two records: a delta of id `u32::MAX`, then one of a gap of one
    /// more (five bits: the gap, the prefix, three zero residuals).
    fn past_u32_max() -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = BitWriter::new(&mut out);
        write_record(
            &mut w,
            None,
            &Record::Delta {
                id: u32::MAX,
                age: None,
                r: [0; 3],
            },
        );
        w.gamma(1);
        w.write(1, 1);
        for _ in 0..3 {
            w.signed(0);
        }
        w.finish();
        out
    }

    #[test]
    fn an_id_past_u32_max_is_refused() {
        let out = past_u32_max();
        let p = Packet {
            session: 1,
            seq: 1,
            body: Body::Compact(head(2)),
        };
        let d = crate::wire::encode_records_to_vec(&p, Payload::Compact(&out)).unwrap();
        assert_eq!(
            decode_records(&d, &mut Records::default()),
            Err(DecodeError::BadCompact)
        );
    }

    /// The dequantizer gives the division's f32 and limit for every q:
    /// near the ties (|q| from 2^24 × the odd part of quanta_per_unit up,
    /// where the product alone can go wrong: it does for 49 quanta per
    /// unit at q = 49 × 23342215, found by a search of every tie below
    /// 2^31), at the ends of the i32 range, and at random.
    #[test]
    fn the_dequantizer_is_the_division_exactly() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut product_wrong = 0;
        for qpu in [
            1,
            2,
            3,
            7,
            10,
            49,
            125,
            1000,
            1024,
            999_999,
            (1 << 24) - 1,
            1 << 24,
        ]
        .into_iter()
        .chain([(1u32 << 24) + 1, 3 << 25, u32::MAX])
        {
            let deq = Dequantizer::new(qpu);
            let odd = i64::from(qpu >> qpu.trailing_zeros());
            let mut qs: Vec<i64> = vec![0, 1, -1, i32::MAX.into(), i32::MIN.into()];
            for base in [odd << 24, 49 * 23_342_215, 1 << 24, deq.limit] {
                qs.extend((-64..=64).map(|d| base + 2 * d * odd));
                qs.extend((-64..=64).map(|d| base + d));
            }
            qs.extend((0..20_000).map(|_| i64::from(rng.random::<i32>())));
            for q in qs.into_iter().filter_map(|q| i32::try_from(q).ok()) {
                for q in [q, q.saturating_neg()] {
                    let want = dequantize(q, qpu);
                    assert_eq!(deq.coord(q).to_bits(), want.to_bits(), "q {q} qpu {qpu}");
                    assert_eq!(deq.ok(q), quanta_ok(q, qpu), "q {q} qpu {qpu}");
                    if deq.multiplies_wide(i64::from(q)) {
                        assert!(deq.ok(q), "q {q} qpu {qpu}");
                        assert_eq!(deq.coord_multiplied(q).to_bits(), want.to_bits());
                    }
                    let product = (f64::from(q) * (1.0 / f64::from(qpu))) as f32;
                    product_wrong += usize::from(product.to_bits() != want.to_bits());
                }
            }
        }
        // The ties are really there: the product alone would be wrong.
        assert!(product_wrong > 0);
    }

    /// A delta written as its id gap and [`delta_tail`] is the record
    /// written field by field, as the spec orders them, for short and long
    /// gaps, ages and residuals; a tail over 64 bits is refused.
    #[test]
    fn a_delta_from_its_tail_is_the_record_field_by_field() {
        let gaps = [1, 2, 15, 1000, 1 << 31, 1 << 32];
        let ages = [None, Some(1), Some(59), Some(u32::MAX)];
        let residuals = [
            [0, 0, 0],
            [1, -1, 2],
            [-40, 300, 0],
            [1 << 20, -(1 << 20), 7],
            [i32::MIN, i32::MAX, 0],
        ];
        let (mut one_word, mut two_writes, mut refused) = (0, 0, 0);
        for gap in gaps {
            for age in ages {
                for r in residuals {
                    let mut want = Vec::new();
                    let mut w = BitWriter::new(&mut want);
                    w.gamma(gap);
                    match age {
                        None => w.write(1, 1),
                        Some(a) => {
                            w.write(0, 2);
                            w.gamma(u64::from(a));
                        }
                    }
                    r.iter().for_each(|&c| w.signed(c));
                    let want_bits = w.bit_len(0);
                    w.finish();
                    let tail_bits = want_bits - gamma_code(gap).1 as usize;
                    let Some(tail) = delta_tail(age, residual_codes(r)) else {
                        assert!(tail_bits > 64, "{gap} {age:?} {r:?}");
                        refused += 1;
                        continue;
                    };
                    assert_eq!(tail.1 as usize, tail_bits);
                    let mut got = Vec::new();
                    let mut w = BitWriter::new(&mut got);
                    write_delta(&mut w, gap, tail);
                    w.finish();
                    assert_eq!(got, want, "{gap} {age:?} {r:?}");
                    if want_bits <= 64 {
                        one_word += 1;
                    } else {
                        two_writes += 1;
                    }
                }
            }
        }
        // Each way of writing was met.
        assert!(one_word > 0 && two_writes > 0 && refused > 0);
    }

    /// Both record loops read the same bytes to the same records or the
    /// same error: short deltas (the table's), the sample's long records,
    /// an id past `u32::MAX` after a short record, and every cut of each.
    #[test]
    fn the_table_and_the_code_by_code_loops_agree() {
        let short: Vec<Record> = (0..40)
            .map(|i| Record::Delta {
                id: 5 + i + i / 7,
                age: None,
                r: [(i % 3) as i32 - 1, 0, (i % 5) as i32 - 2],
            })
            .collect();
        let mut mixed = short.clone();
        mixed.extend(sample().into_iter().skip(3)); // ids 900 and u32::MAX
        let mut bodies: Vec<(Vec<u8>, u16)> = vec![
            (body(&short), short.len() as u16),
            (body(&sample()), sample().len() as u16),
            (body(&mixed), mixed.len() as u16),
        ];
        // The table's id check.
        bodies.push((past_u32_max(), 2));
        let deq = Dequantizer::new(1000);
        let mut compared = 0;
        for (bytes, count) in &bodies {
            for cut in 0..=bytes.len() {
                let data = &bytes[..cut];
                let run = |table: bool| {
                    let mut r = BitReader::new(data);
                    let mut recs = Vec::new();
                    let res = if table {
                        read_records::<true>(&mut r, *count, &deq, Some(&mut recs))
                    } else {
                        read_records::<false>(&mut r, *count, &deq, Some(&mut recs))
                    };
                    // Where the reader stopped matters only when it read
                    // every record (the padding is checked from there).
                    res.map(|()| (recs, r.remaining()))
                };
                let (by_table, by_code) = (run(true), run(false));
                assert_eq!(by_table, by_code, "cut {cut} of {}", bytes.len());
                compared += 1;
            }
        }
        assert!(compared > 100);
        // And the table reads the short deltas right, whole.
        let (bytes, count) = &bodies[0];
        let mut recs = Vec::new();
        read_records::<true>(&mut BitReader::new(bytes), *count, &deq, Some(&mut recs)).unwrap();
        assert_eq!(recs, short);
    }

    /// `ok_wide` is `ok` of an `i32` and false beyond the `i32`s, and
    /// `multiplies_wide` holds exactly up to the smaller of the limit and
    /// the multiplied range, at both ends, and only where `ok_wide` holds
    /// and the product is the coordinate.
    #[test]
    fn the_wide_checks_are_the_narrow_ones_and_the_i32_range() {
        for qpu in [1, 49, 1000, 1024, 3 << 25, u32::MAX] {
            let deq = Dequantizer::new(qpu);
            let fast = deq.limit.min(deq.exact_below - 1).clamp(0, i32::MAX.into());
            let edges = [0, deq.limit, fast, 1 << 31, 1 << 40, i64::MAX / 4];
            for p in edges
                .iter()
                .flat_map(|&e| (-3..=3).flat_map(move |d| [e + d, -(e + d)]))
            {
                let narrow = i32::try_from(p).is_ok_and(|q| deq.ok(q));
                assert_eq!(deq.ok_wide(p), narrow, "p {p} qpu {qpu}");
                assert_eq!(deq.multiplies_wide(p), p.abs() <= fast, "p {p} qpu {qpu}");
                // The decoder's one check: what multiplies is an i32 within
                // the limit, whose coordinate is the product.
                if deq.multiplies_wide(p) {
                    assert!(deq.ok_wide(p), "p {p} qpu {qpu}");
                    assert_eq!(
                        deq.coord_multiplied(p as i32).to_bits(),
                        dequantize(p as i32, qpu).to_bits(),
                        "p {p} qpu {qpu}"
                    );
                }
            }
        }
        // The reference sender's whole bound multiplies at 1000 a unit.
        assert!(Dequantizer::new(1000).multiplies_wide(1_000_000_000));
    }

    /// Every entry of the short-record table is what reading its bits code
    /// by code gives (the gap, the prefix `1`, three residuals, and the
    /// bits they took), and every such record of at most `SHORT_BITS`
    /// bits with a gap up to 15 has an entry.
    #[test]
    fn the_short_table_is_the_codes_read_one_by_one() {
        let mut entries = 0;
        for w in 0..1u64 << SHORT_BITS {
            let bytes = w.to_le_bytes();
            let mut r = BitReader::new(&bytes[..2]);
            let mut read = || -> Result<(u64, [i32; 3]), crate::wire::bits::Short> {
                let gap = r.gamma()?;
                if r.read(1)? != 1 {
                    return Err(crate::wire::bits::Short);
                }
                Ok((gap, [r.signed()?, r.signed()?, r.signed()?]))
            };
            let slow = read();
            let used = (16 - r.remaining()) as u32;
            let slow = slow
                .ok()
                .filter(|&(gap, _)| gap <= 15 && used <= SHORT_BITS);
            let e = SHORT[w as usize];
            match slow {
                Some((gap, res)) => {
                    entries += 1;
                    let len = e & 15;
                    assert_eq!(len, used, "w {w:#x}");
                    assert_eq!(u64::from((e >> 4) & 15), gap, "w {w:#x}");
                    let got = [e >> 8, e >> 16, e >> 24].map(|b| i32::from(b as u8 as i8));
                    assert_eq!(got, res, "w {w:#x}");
                    // The record's length: re-read it from a reader that
                    // stops there.
                    let mut cut = Vec::new();
                    let mut wr = BitWriter::new(&mut cut);
                    wr.write(w & ((1 << len) - 1), len);
                    wr.finish();
                    let mut r = BitReader::new(&cut);
                    let back = read_record(&mut r, Some(0)).unwrap();
                    assert_eq!(
                        back,
                        Record::Delta {
                            id: gap as u32,
                            age: None,
                            r: res
                        }
                    );
                    assert!(r.at_padding(), "w {w:#x} len {len}");
                }
                None => assert_eq!(e, 0, "w {w:#x}"),
            }
        }
        assert!(entries > 100, "{entries}");
    }
}
