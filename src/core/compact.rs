//! Compact snapshots, sans-IO: the sender's [`Encoder`] and the receiver's
//! [`Decoder`] of protocol version 2's compact parts (kind 6, bytes in
//! [`crate::wire`]'s `compact.rs`). Multicast receivers never acknowledge,
//! so nothing here depends on what a receiver got: every record is
//! decodable from state every receiver can have.
//!
//! # The scheme: rolling keyframes, deltas against them
//!
//! * **Quantized.** A position is carried as whole quanta,
//!   `q = round(p × quanta_per_unit)` (default 1000: millimetres), within
//!   a declared bound `|p| ≤ bound` (default 10⁶ units); the encoder
//!   refuses a position outside it ([`CompactError::OutOfBound`]) rather
//!   than wrap it. A receiver reconstructs `q` exactly, and the position as
//!   [`dequantize`]`(q)`, the same `f32` the sender's [`quantized`] gives.
//! * **Keyframes, spread evenly.** Entity `id`'s keyframe is due at the
//!   ticks `t` with `(t + id) mod K = 0` (`K` = `keyframe_interval`,
//!   default 60: once a second at 60 Hz), so each tick carries `1/K` of
//!   the keyframes, with no burst. A keyframe holds the position and the
//!   velocity (sixteenths of a quantum per tick, from the last two ticks).
//!   An entity with no keyframe sent in its window (below): seen for the
//!   first time, or again after a gap that spanned its scheduled
//!   keyframe, gets a keyframe at once, off schedule; so does one whose
//!   delta would take more than [`REKEY_BITS`] (it bounced off a wall, or
//!   turned). One back after a shorter gap gets a delta against the
//!   keyframe it had, which every receiver that holds it can still use.
//! * **Deltas against the entity's own keyframe.** Between keyframes a
//!   record is the residual `q − predict(keyframe, age)`, `predict` being
//!   `q_k + ⌊(v_k × age + 8) / 16⌋` per axis. A delta names its keyframe.
//!   Its *window* is from the entity's latest scheduled keyframe tick
//!   (the latest tick `≤ t` with `(tick + id) mod K = 0`; tick 0 before
//!   the first) up to `t`. When the sender sent one keyframe of the entity
//!   in the window, the delta says so in its first bit and names nothing
//!   more: a receiver holding a keyframe from the window holds that one (it
//!   cannot hold one that was never sent). After a second keyframe in the
//!   window, deltas name theirs by its age.
//! * **Off-schedule keyframes are paced.** A tick carries at most
//!   `max(n / K, MIN_OFF_SCHEDULE_KEYS)` of them for a world of `n`. A
//!   new entity beyond that waits for a later tick (it is not sent: it
//!   has no keyframe a delta could name), at the latest its scheduled
//!   keyframe; a bounce beyond it is sent as a long delta. So a sender's
//!   first tick, when every entity is new, does not put the whole world's
//!   keyframes (about 24 bytes each: 4.8 MB for 200,000 entities) into one
//!   burst that a 1 Gbit/s link takes 40 ms to drain; they come over one
//!   keyframe cycle, as a late joiner's do.
//! * **Change-only.** An entity whose quantum position has not moved
//!   since its keyframe (at no tick since, not only at this one) and whose
//!   keyframe velocity is zero (it is at rest) is not sent between
//!   keyframes: the receiver already holds where it is. It is silent for
//!   at most `K − 1` ticks: its next keyframe is always sent.
//!
//! # Loss
//!
//! A lost keyframe costs its entity at most `K` ticks: its deltas until
//! the next keyframe name a keyframe the receiver lacks, so they are
//! counted (`undecodable`) and not applied, never applied to a wrong one.
//! A receiver that joins mid-stream holds every entity within one
//! keyframe cycle (`K` ticks). A lost delta costs nothing later.
//!
//! # Bounds
//!
//! The encoder keeps 64 bytes of state per id below [`MAX_ENCODER_ID`],
//! allocated a page at a time; the decoder 40 bytes per id below its
//! capacity (the world's).

use std::ops::Range;

use crate::wire::bits::BitWriter;
use crate::wire::{self, CompactHead, Entity, Record};

/// Default quanta per world unit: millimetres for a world in metres.
pub const DEFAULT_QUANTA_PER_UNIT: u32 = 1000;
/// Default bound on every coordinate, in world units.
pub const DEFAULT_BOUND: f32 = 1_000_000.0;
/// Default ticks between an entity's keyframes: 1 s at 60 Hz.
pub const DEFAULT_KEYFRAME_INTERVAL: u16 = 60;
/// Ids the encoder keeps state for: `0..MAX_ENCODER_ID` (a receiver's
/// world takes `0..2²⁰` by default).
pub const MAX_ENCODER_ID: u32 = 1 << 24;
/// Largest velocity a keyframe carries, in sixteenths of a quantum per
/// tick; a faster entity's is clamped (its residuals grow instead).
pub const MAX_VELOCITY: i32 = 1 << 24;
/// A delta whose residuals would take more bits than this is replaced by a
/// keyframe off schedule (a keyframe takes about 100 to 190).
pub const REKEY_BITS: u32 = 72;
/// Keyframes off schedule a tick carries at least (see
/// [`Encoder::encode_tick`]): a spawn of up to this many entities at once
/// is sent at once.
pub const MIN_OFF_SCHEDULE_KEYS: usize = 1024;
/// Ids a page of state holds.
const PAGE: usize = 1024;

/// How positions are quantized and how often keyframes come.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CompactConfig {
    /// Quanta per world unit, at least 1 (default 1000).
    pub quanta_per_unit: u32,
    /// Largest absolute coordinate, in world units (default 10⁶):
    /// `bound × quanta_per_unit` must fit in an `i32`.
    pub bound: f32,
    /// Ticks between an entity's scheduled keyframes, at least 1 (default
    /// 60): the most a lost keyframe costs, and how long a late joiner
    /// waits for every entity.
    pub keyframe_interval: u16,
}

impl Default for CompactConfig {
    fn default() -> Self {
        CompactConfig {
            quanta_per_unit: DEFAULT_QUANTA_PER_UNIT,
            bound: DEFAULT_BOUND,
            keyframe_interval: DEFAULT_KEYFRAME_INTERVAL,
        }
    }
}

/// Why a [`CompactConfig`] cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CompactConfigError {
    /// Zero quanta per unit, or a keyframe interval of zero.
    #[error("quanta per unit and the keyframe interval must be at least 1")]
    Zero,
    /// The bound is not finite and positive, or its quanta overflow an `i32`.
    #[error("the bound times the quanta per unit must be a positive number of quanta below 2^31")]
    BadBound,
}

impl CompactConfig {
    /// Checks the config.
    pub fn validate(&self) -> Result<(), CompactConfigError> {
        if self.quanta_per_unit == 0 || self.keyframe_interval == 0 {
            return Err(CompactConfigError::Zero);
        }
        let quanta = f64::from(self.bound) * f64::from(self.quanta_per_unit);
        if !(self.bound.is_finite() && self.bound > 0.0 && quanta < f64::from(i32::MAX)) {
            return Err(CompactConfigError::BadBound);
        }
        Ok(())
    }

    /// `v` in quanta, to nearest, ties to even (the caller checked the
    /// bound).
    #[inline]
    pub fn quantize(&self, v: f32) -> i32 {
        round(f64::from(v) * f64::from(self.quanta_per_unit)) as i32
    }

    /// Whether every coordinate of `e` is within the bound (NaN is not).
    #[inline]
    pub fn in_bound(&self, e: &Entity) -> bool {
        // `&`, not `&&`: no branch per coordinate.
        (e.x.abs() <= self.bound) & (e.y.abs() <= self.bound) & (e.z.abs() <= self.bound)
    }
}

/// `t` to the nearest integer, ties to even, for `|t| < 2^51`: the sum
/// with 1.5 × 2^52 leaves the rounded integer in the low bits of its
/// mantissa, read as bits. No float-to-integer conversion, whose
/// saturation checks cost the encoder a tenth of its time (perf). The
/// bound keeps a position's quanta under 2^31 and a velocity's under
/// 2^37; beyond 2^51 the result is wrong, never undefined.
#[inline(always)]
fn round(t: f64) -> i64 {
    const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5 × 2^52
    ((t + MAGIC).to_bits() as i64).wrapping_sub(MAGIC.to_bits() as i64)
}

/// The position a receiver reconstructs from `q` quanta (the wire's
/// [`wire::dequantize`]).
#[inline]
pub fn dequantize(q: i32, quanta_per_unit: u32) -> f32 {
    wire::dequantize(q, quanta_per_unit)
}

/// `e` as a receiver of compact parts holds it: each coordinate quantized
/// and reconstructed.
pub fn quantized(e: &Entity, config: &CompactConfig) -> Entity {
    let f = |v| dequantize(config.quantize(v), config.quanta_per_unit);
    Entity {
        id: e.id,
        x: f(e.x),
        y: f(e.y),
        z: f(e.z),
    }
}

/// The tick of entity `id`'s latest scheduled keyframe at or before
/// `tick`; `None` if the first is after it (ticks count from 0).
#[inline]
pub fn scheduled_keyframe(tick: u64, id: u32, interval: u16) -> Option<u64> {
    let k = u64::from(interval.max(1));
    // (tick + id) mod k, exactly, even where tick + id would overflow.
    tick.checked_sub((tick % k + u64::from(id) % k) % k)
}

/// `(tick + id) mod interval` for ids met in rising order, without a
/// division per id: the phase moves on by the gap between ids, folded
/// back by whole intervals (one subtraction for the consecutive ids of a
/// world; a division only after a gap of a whole interval or more).
#[derive(Clone, Copy, Debug)]
struct Phase {
    interval: u64,
    /// The last id asked about and its phase.
    id: u32,
    phase: u64,
}

impl Phase {
    fn new(tick: u64, interval: u16) -> Phase {
        let Schedule {
            interval, phase, ..
        } = Schedule::new(tick, interval);
        Phase {
            interval,
            id: 0,
            phase,
        }
    }

    /// `(tick + id) mod interval`, for `id` at or after the last one asked.
    #[inline(always)]
    fn of(&mut self, id: u32) -> u64 {
        let gap = u64::from(id - self.id);
        let mut p = self.phase + gap;
        if gap >= self.interval {
            p %= self.interval;
        } else if p >= self.interval {
            p -= self.interval;
        }
        (self.id, self.phase) = (id, p);
        p
    }

    /// The window's start for `id` at `tick`: its latest scheduled
    /// keyframe tick, or 0 before the first (as [`scheduled_keyframe`]).
    #[inline(always)]
    fn window(&mut self, tick: u64, id: u32) -> u64 {
        tick.saturating_sub(self.of(id))
    }
}

/// Entities' keyframe schedule at one tick, for the encoder, which asks
/// only when it sends a keyframe: whether one is scheduled now, and when
/// the next is.
#[derive(Clone, Copy, Debug)]
struct Schedule {
    tick: u64,
    interval: u64,
    /// `tick mod interval`.
    phase: u64,
}

impl Schedule {
    fn new(tick: u64, interval: u16) -> Schedule {
        let interval = u64::from(interval.max(1));
        Schedule {
            tick,
            interval,
            phase: tick % interval,
        }
    }

    /// `(tick + id) mod interval`, exactly, even where `tick + id` would
    /// overflow.
    fn phase_of(&self, id: u32) -> u64 {
        (self.phase + u64::from(id) % self.interval) % self.interval
    }

    /// Whether `id`'s keyframe is scheduled at this tick.
    fn due(&self, id: u32) -> bool {
        self.phase_of(id) == 0
    }

    /// The last tick of the window a keyframe of `id` sent now is in: the
    /// tick before `id`'s next scheduled one, or `u64::MAX` when that
    /// would be past the end of the ticks.
    fn window_last(&self, id: u32) -> u64 {
        self.tick
            .saturating_add(self.interval - self.phase_of(id) - 1)
    }
}

/// Where a keyframe at `q` moving at `v` sixteenths of a quantum per tick
/// is `age` ticks later, in quanta (`i64`: it may leave the `i32` range).
#[inline]
pub fn predict(q: i32, v: i32, age: u64) -> i64 {
    match u32::try_from(age) {
        Ok(age) => predict_within(q, v, age),
        Err(_) => {
            let age = i64::try_from(age).unwrap_or(i64::MAX);
            i64::from(q).saturating_add(i64::from(v).saturating_mul(age).saturating_add(8) >> 4)
        }
    }
}

/// [`predict`] for an age that fits a `u32` (every age a record can
/// name), in plain arithmetic: `|v × age| < 2^63 − 2^31`, so nothing
/// overflows.
#[inline(always)]
fn predict_within(q: i32, v: i32, age: u32) -> i64 {
    i64::from(q) + ((i64::from(v) * i64::from(age) + 8) >> 4)
}

/// Fixed-size state kept per id, a page at a time.
#[derive(Clone, Debug)]
struct Table<T> {
    pages: Vec<Option<Box<[T]>>>,
    limit: u32,
}

impl<T: Default + Clone> Table<T> {
    fn new(limit: u32) -> Table<T> {
        Table {
            // One pointer per page, up front: 128 KiB for the encoder's
            // 2^24 ids, 8 KiB for a default world's 2^20.
            pages: (0..(limit as usize).div_ceil(PAGE)).map(|_| None).collect(),
            limit,
        }
    }

    /// The ids it keeps state for (`0..limit`) and its pages, for a
    /// caller that walks ids page by page ([`Table::page`]).
    fn pages_mut(&mut self) -> (u32, &mut [Option<Box<[T]>>]) {
        (self.limit, &mut self.pages)
    }

    /// A page of [`Table::pages_mut`], made on first use: the state of id
    /// `i × PAGE + j` is its slot `j`.
    #[inline]
    fn page(slot: &mut Option<Box<[T]>>) -> &mut [T] {
        slot.get_or_insert_with(|| vec![T::default(); PAGE].into())
    }

    fn clear(&mut self) {
        self.pages.iter_mut().for_each(|p| *p = None);
    }
}

/// The encoder's memory of one id. Its keyframe's window is kept as the
/// window's last tick, so whether a tick is in it is two comparisons and
/// no modulo.
#[derive(Clone, Copy, Debug)]
struct EncState {
    /// The last tick it was in (0 with `seen` false: never).
    last_tick: u64,
    seen: bool,
    last_pos: [f32; 3],
    /// Its last keyframe sent: its tick, and the last tick of its window,
    /// the tick before the entity's next scheduled one (`u64::MAX` when
    /// none comes before the end of the ticks). Before the first, the tick
    /// is [`NO_KEY`] and the window's last 0: no tick is in that window.
    key_tick: u64,
    key_last: u64,
    /// Whether a delta was sent since the last keyframe: it moved away
    /// from it, so the receiver may hold another position than the
    /// keyframe's, and change-only no longer leaves it out.
    moved: bool,
    /// Whether the keyframe before the last one is in the last one's
    /// window: then deltas name their keyframe by age.
    named: bool,
    key_q: [i32; 3],
    key_v: [i32; 3],
}

/// [`EncState::key_tick`] before the first keyframe: after every tick, so
/// no tick finds it before itself, and after its window's last (0), which
/// no real keyframe is.
const NO_KEY: u64 = u64::MAX;

impl Default for EncState {
    fn default() -> EncState {
        EncState {
            last_tick: 0,
            seen: false,
            last_pos: [0.0; 3],
            key_tick: NO_KEY,
            key_last: 0,
            moved: false,
            named: false,
            key_q: [0; 3],
            key_v: [0; 3],
        }
    }
}

/// Why a tick could not be encoded compactly. Nothing was changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CompactError {
    /// A coordinate is beyond [`CompactConfig::bound`] (or NaN).
    #[error("entity {id} is outside the world's bound")]
    OutOfBound {
        /// The first entity at fault.
        id: u32,
    },
    /// An id at or past [`MAX_ENCODER_ID`].
    #[error("entity id {id} is beyond the {MAX_ENCODER_ID} ids a compact encoder keeps")]
    IdTooLarge {
        /// The first id at fault.
        id: u32,
    },
    /// The same id twice in one tick.
    #[error("entity id {0} appears twice in one tick")]
    DuplicateId(u32),
    /// The tick needs more than 65535 parts.
    #[error("the tick needs more than 65535 parts")]
    TooManyParts,
}

/// One part of an encoded tick: its records' bytes in [`Encoder::bytes`]
/// and how many records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartSpan {
    /// Where its bit-packed records are.
    pub bytes: Range<usize>,
    /// How many records.
    pub count: u16,
}

/// What the encoder has done, as plain data. Counters only go up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct CompactCounts {
    /// Keyframe records written (scheduled and off schedule).
    pub keyframes: u64,
    /// Delta records written.
    pub deltas: u64,
    /// Entities not sent because they had not moved since their keyframe.
    pub unchanged: u64,
    /// Entities not sent because they needed a keyframe off schedule and
    /// the tick's were used up (they are sent at a later tick).
    pub deferred: u64,
}

/// The sender's side (see the [module docs](self)).
#[derive(Clone, Debug)]
pub struct Encoder {
    config: CompactConfig,
    states: Table<EncState>,
    /// The tick's entities in id order, when they did not come so (reused).
    sorted: Vec<Entity>,
    bytes: Vec<u8>,
    parts: Vec<PartSpan>,
    counts: CompactCounts,
}

impl Encoder {
    /// An encoder that has sent nothing.
    pub fn new(config: CompactConfig) -> Result<Encoder, CompactConfigError> {
        config.validate()?;
        Ok(Encoder {
            config,
            states: Table::new(MAX_ENCODER_ID),
            sorted: Vec::new(),
            bytes: Vec::new(),
            parts: Vec::new(),
            counts: CompactCounts::default(),
        })
    }

    /// The config.
    pub fn config(&self) -> &CompactConfig {
        &self.config
    }

    /// What it has done.
    pub fn counts(&self) -> CompactCounts {
        self.counts
    }

    /// The last tick's parts.
    pub fn parts(&self) -> &[PartSpan] {
        &self.parts
    }

    /// The last tick's bit-packed records, every part's back to back.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The head of part `part` of the last tick, stamped by the caller.
    pub fn head(&self, tick: u64, part: usize) -> CompactHead {
        CompactHead {
            tick,
            scheduled_ns: 0,
            sent_ns: 0,
            part: part as u16,
            parts: self.parts.len() as u16,
            quanta_per_unit: self.config.quanta_per_unit,
            keyframe_interval: self.config.keyframe_interval,
            count: self.parts[part].count,
        }
    }

    /// Encodes tick `tick` of `entities` (the whole world, any order) into
    /// parts whose records take at most `body_budget` bytes each (at least
    /// one part, empty for an empty world). Checks every entity first: on
    /// an error nothing is changed.
    pub fn encode_tick(
        &mut self,
        tick: u64,
        entities: &[Entity],
        body_budget: usize,
    ) -> Result<(), CompactError> {
        // Every entity in the bound and every id kept, in a loop without
        // a branch; the first at fault is looked for only when there is
        // one.
        let config = self.config;
        let valid = |e: &Entity| config.in_bound(e) & (e.id < MAX_ENCODER_ID);
        let all_valid = entities.iter().fold(true, |ok, e| ok & valid(e));
        let fault = (!all_valid).then(|| entities.iter().find(|e| !valid(e)));
        if let Some(e) = fault.flatten() {
            return Err(if config.in_bound(e) {
                CompactError::IdTooLarge { id: e.id }
            } else {
                CompactError::OutOfBound { id: e.id }
            });
        }
        let in_order = entities
            .windows(2)
            .fold(true, |ok, w| ok & (w[0].id < w[1].id));
        let entities = if in_order {
            entities
        } else {
            self.sorted.clear();
            self.sorted.extend_from_slice(entities);
            self.sorted.sort_unstable_by_key(|e| e.id);
            if let Some(w) = self.sorted.windows(2).find(|w| w[0].id == w[1].id) {
                return Err(CompactError::DuplicateId(w[0].id));
            }
            &self.sorted
        };
        self.bytes.clear();
        self.parts.clear();
        let budget_bits = body_budget.saturating_mul(8).max(wire::MAX_RECORD_BITS);
        let schedule = Schedule::new(tick, config.keyframe_interval);
        let mut part_start = 0;
        let mut count = 0usize;
        let mut prev: Option<u32> = None;
        let mut off_schedule =
            (entities.len() / usize::from(config.keyframe_interval)).max(MIN_OFF_SCHEDULE_KEYS);
        // About 2 bytes a record at rest and 3 in motion: one growth at most.
        self.bytes.reserve(entities.len() * 3);
        let mut w = BitWriter::new(&mut self.bytes);
        // Bits in this part so far, kept here for the one-word path.
        let mut part_bits = 0;
        // The page of states the last id was in, and its index (ids were
        // checked against the limit).
        let (_, pages) = self.states.pages_mut();
        let (mut states, mut at): (&mut [EncState], usize) = (&mut [], usize::MAX);
        for e in entities {
            if e.id as usize / PAGE != at {
                at = e.id as usize / PAGE;
                states = Table::page(&mut pages[at]);
            }
            let st = &mut states[e.id as usize % PAGE];
            let step = next_record(
                st,
                e,
                tick,
                &config,
                &schedule,
                &mut off_schedule,
                &mut self.counts,
            );
            // Most records are a delta that fits the part: its id gap and
            // tail written at once.
            match step {
                Step::Skip => continue,
                Step::Delta(tail) => {
                    let gap = wire::id_gap(prev, e.id);
                    let len = (wire::gap_bits(gap) + tail.1) as usize;
                    if part_bits + len <= budget_bits && count < wire::MAX_RECORDS {
                        wire::write_delta(&mut w, gap, tail);
                        part_bits += len;
                        prev = Some(e.id);
                        count += 1;
                        continue;
                    }
                }
                Step::Record(_) => {}
            }
            let mark = w.mark();
            step.write(&mut w, prev, e.id);
            if w.bit_len(part_start) > budget_bits || count == wire::MAX_RECORDS {
                // It does not fit: close this part, start the next with it.
                w.rewind(mark);
                w.finish();
                let end = self.bytes.len();
                self.parts.push(PartSpan {
                    bytes: part_start..end,
                    count: count as u16,
                });
                part_start = end;
                w = BitWriter::new(&mut self.bytes);
                step.write(&mut w, None, e.id);
                count = 0;
            }
            part_bits = w.bit_len(part_start);
            prev = Some(e.id);
            count += 1;
        }
        w.finish();
        let end = self.bytes.len();
        self.parts.push(PartSpan {
            bytes: part_start..end,
            count: count as u16,
        });
        if self.parts.len() > usize::from(u16::MAX) {
            // Unreachable in practice (65,535 full datagrams in a tick); the
            // keyframes just noted were never sent, so all are forgotten.
            self.states.clear();
            self.parts.clear();
            self.bytes.clear();
            return Err(CompactError::TooManyParts);
        }
        Ok(())
    }
}

/// What the encoder sends of one entity in a tick.
#[derive(Clone, Copy, Debug)]
enum Step {
    /// Nothing: at rest and unchanged since its keyframe, or waiting for a
    /// keyframe off schedule.
    Skip,
    /// A delta of 64 bits or fewer after its id gap: its
    /// [`wire::delta_tail`].
    Delta((u64, u32)),
    /// A keyframe, or a longer delta.
    Record(Record),
}

impl Step {
    /// Writes the record, entity `id`'s, after `prev` in its part.
    fn write(&self, w: &mut BitWriter<'_>, prev: Option<u32>, id: u32) {
        match self {
            Step::Skip => {}
            Step::Delta(tail) => wire::write_delta(w, wire::id_gap(prev, id), *tail),
            Step::Record(record) => wire::write_record(w, prev, record),
        }
    }
}

/// Entity `e`'s record at `tick`, updating its state: [`Step::Skip`] when
/// it is at rest and has not moved since its keyframe, or needs a
/// keyframe off schedule when `off_schedule` (the tick's keyframes off
/// schedule left) is 0.
#[inline(always)]
fn next_record(
    st: &mut EncState,
    e: &Entity,
    tick: u64,
    config: &CompactConfig,
    schedule: &Schedule,
    off_schedule: &mut usize,
    counts: &mut CompactCounts,
) -> Step {
    let pos = [e.x, e.y, e.z];
    let q = pos.map(|c| config.quantize(c));
    let consecutive = st.seen && tick == st.last_tick.wrapping_add(1);
    let last_pos = st.last_pos;
    st.seen = true;
    st.last_tick = tick;
    st.last_pos = pos;
    // Due unless the last keyframe is in this tick's window: before this
    // tick, and no scheduled tick since.
    let key_due = !(st.key_tick < tick && tick <= st.key_last);
    let mut fits = true;
    if !key_due {
        // Within the window: below the interval, a u16.
        let age = tick - st.key_tick;
        let mut r = [0i32; 3];
        for i in 0..3 {
            let d = i64::from(q[i]) - predict_within(st.key_q[i], st.key_v[i], age as u32);
            r[i] = d as i32;
            fits &= i64::from(r[i]) == d;
        }
        // A residual this large (a bounce, a turn) costs more, tick after
        // tick, than a fresh keyframe off schedule.
        let codes = wire::residual_codes(r);
        let bits: u32 = codes.iter().map(|&(_, len)| len).sum();
        // With the tick's keyframes off schedule used up, a long delta.
        if fits && (bits <= REKEY_BITS || *off_schedule == 0) {
            if !st.moved && st.key_v == [0; 3] && q == st.key_q {
                counts.unchanged += 1;
                return Step::Skip;
            }
            st.moved = true;
            counts.deltas += 1;
            // The keyframe goes unnamed when it is the only one sent in the
            // window; after a second, deltas name theirs by age.
            let age = st.named.then(|| u32::try_from(age).unwrap_or(u32::MAX));
            return match wire::delta_tail(age, codes) {
                Some(tail) => Step::Delta(tail),
                None => Step::Record(Record::Delta { id: e.id, age, r }),
            };
        }
    }
    // A keyframe: at its scheduled tick always, else if the tick has one
    // left (or the residuals overflow: it must).
    if !schedule.due(e.id) && fits {
        if *off_schedule == 0 {
            counts.deferred += 1;
            return Step::Skip;
        }
        *off_schedule -= 1;
    }
    // The velocity, from the last two ticks, only for a keyframe.
    let v = if consecutive {
        let scale = 16.0 * f64::from(config.quanta_per_unit);
        let mut v = [0i32; 3];
        for i in 0..3 {
            let d = (f64::from(pos[i]) - f64::from(last_pos[i])) * scale;
            v[i] = round(d).clamp(-i64::from(MAX_VELOCITY), i64::from(MAX_VELOCITY)) as i32;
        }
        v
    } else {
        [0; 3]
    };
    // The last keyframe is in this one's window when its window has not
    // ended (then this one is off schedule).
    // (There is one: a real keyframe's window ends at or after it.)
    st.named = st.key_tick <= st.key_last && tick <= st.key_last;
    st.moved = false;
    st.key_tick = tick;
    st.key_last = schedule.window_last(e.id);
    st.key_q = q;
    st.key_v = v;
    counts.keyframes += 1;
    Step::Record(Record::Key { id: e.id, q, v })
}

/// The decoder's memory of one id: its latest keyframe (epoch 0: none).
#[derive(Clone, Copy, Debug, Default)]
struct DecState {
    epoch: u32,
    tick: u64,
    q: [i32; 3],
    v: [i32; 3],
}

/// What decoding one part did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PartOutcome {
    /// Deltas whose keyframe this receiver lacks, or whose position would
    /// leave the `i32` quanta or the coordinate limit
    /// ([`MAX_COORD`](crate::wire::MAX_COORD)): not applied.
    pub undecodable: u32,
    /// Records whose id is at or beyond the capacity: not applied.
    pub rejected: u32,
}

/// The receiver's side (see the [module docs](self)).
#[derive(Debug)]
pub struct Decoder {
    states: Table<DecState>,
}

impl Decoder {
    /// A decoder holding no keyframe, taking ids `0..capacity`.
    pub fn new(capacity: u32) -> Decoder {
        Decoder {
            states: Table::new(capacity),
        }
    }

    /// Decodes the records of one part of `head`'s tick, in session
    /// `epoch` (the receiver's count of sessions, from 1), appending each
    /// entity it can place to `out`; a keyframe newer than the one held
    /// for its id replaces it.
    pub fn decode(
        &mut self,
        epoch: u32,
        head: &CompactHead,
        records: &[Record],
        out: &mut Vec<Entity>,
    ) -> PartOutcome {
        let deq = wire::Dequantizer::new(head.quanta_per_unit);
        let mut outcome = PartOutcome::default();
        let tick = head.tick;
        // Records rise by id within a part.
        let mut phase = Phase::new(tick, head.keyframe_interval);
        let place = |id: u32, q: [i32; 3]| {
            // One check a record: all three multiply, or each is asked.
            let multiply = q.iter().all(|&c| deq.multiplies_wide(i64::from(c)));
            let coord = |c| {
                if multiply {
                    deq.coord_multiplied(c)
                } else {
                    deq.coord(c)
                }
            };
            Entity {
                id,
                x: coord(q[0]),
                y: coord(q[1]),
                z: coord(q[2]),
            }
        };
        out.reserve(records.len());
        // The page of states the last record's id was in, and its index.
        let (limit, pages) = self.states.pages_mut();
        let (mut states, mut at): (&mut [DecState], usize) = (&mut [], usize::MAX);
        for rec in records {
            let id = rec.id();
            if id >= limit {
                outcome.rejected += 1;
                continue;
            }
            if id as usize / PAGE != at {
                at = id as usize / PAGE;
                states = Table::page(&mut pages[at]);
            }
            let st = &mut states[id as usize % PAGE];
            match *rec {
                Record::Key { id, q, v } => {
                    if (st.epoch, st.tick) < (epoch, tick) {
                        *st = DecState { epoch, tick, q, v };
                    }
                    out.push(place(id, q));
                }
                Record::Delta { id, age, r } => {
                    let held = st.epoch == epoch
                        && match age {
                            // The one keyframe sent since the scheduled one.
                            None => {
                                let window = phase.window(tick, id);
                                st.tick >= window && st.tick < tick
                            }
                            Some(a) => tick.checked_sub(u64::from(a)) == Some(st.tick),
                        };
                    // Held, its age is below the interval or is the
                    // record's own: a u32.
                    let age = tick.wrapping_sub(st.tick) as u32;
                    // In i64 nothing overflows: |p| < 2^60, |r| ≤ 2^31.
                    let p: [i64; 3] = std::array::from_fn(|i| {
                        predict_within(st.q[i], st.v[i], age) + i64::from(r[i])
                    });
                    // One check an axis where every position the sender's
                    // bound allows lies: within it the coordinate is the
                    // product, and the position is an i32 within the
                    // limit. Otherwise each axis is asked: a position no
                    // sender can have sent (beyond the i32 quanta or the
                    // coordinate limit) is not placed.
                    if held && p.iter().all(|&p| deq.multiplies_wide(p)) {
                        out.push(Entity {
                            id,
                            x: deq.coord_multiplied(p[0] as i32),
                            y: deq.coord_multiplied(p[1] as i32),
                            z: deq.coord_multiplied(p[2] as i32),
                        });
                    } else if held && p.iter().all(|&p| deq.ok_wide(p)) {
                        out.push(place(id, p.map(|p| p as i32)));
                    } else {
                        outcome.undecodable += 1;
                    }
                }
            }
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{decode_records, encode_records_to_vec, Body, Packet, Payload, Records};

    fn ent(id: u32, x: f32, y: f32, z: f32) -> Entity {
        Entity { id, x, y, z }
    }

    /// Every datagram of tick `tick` as bytes, through the wire format.
    fn datagrams(enc: &Encoder, tick: u64) -> Vec<Vec<u8>> {
        (0..enc.parts().len())
            .map(|p| {
                let packet = Packet {
                    session: 1,
                    seq: p as u32,
                    body: Body::Compact(enc.head(tick, p)),
                };
                let body = &enc.bytes()[enc.parts()[p].bytes.clone()];
                encode_records_to_vec(&packet, Payload::Compact(body)).unwrap()
            })
            .collect()
    }

    /// Decodes a datagram into `world` (id → position); returns the outcome.
    fn receive(
        dec: &mut Decoder,
        d: &[u8],
        world: &mut std::collections::BTreeMap<u32, (f32, f32, f32)>,
    ) -> PartOutcome {
        let mut recs = Records::default();
        let p = decode_records(d, &mut recs).unwrap();
        let Body::Compact(head) = p.body else {
            panic!()
        };
        let mut out = Vec::new();
        let o = dec.decode(1, &head, &recs.compact, &mut out);
        for e in out {
            world.insert(e.id, (e.x, e.y, e.z));
        }
        o
    }

    /// A world where entity `id` moves in a circle, one third at rest.
    fn world_at(tick: u64, n: u32) -> Vec<Entity> {
        (0..n)
            .map(|id| {
                if id % 3 == 0 {
                    return ent(id, id as f32, 5.0, 0.0);
                }
                let a = tick as f32 * 0.05 + id as f32;
                ent(id, 100.0 + 3.0 * a.cos(), 200.0 + 3.0 * a.sin(), 1.5)
            })
            .collect()
    }

    #[test]
    fn the_receiver_holds_the_quantized_world_exactly_even_after_loss() {
        let config = CompactConfig {
            keyframe_interval: 20,
            ..CompactConfig::default()
        };
        let mut enc = Encoder::new(config).unwrap();
        let mut dec = Decoder::new(1 << 20);
        let mut world = std::collections::BTreeMap::new();
        let mut rng = 0x1234_5678u64;
        let mut undecodable = 0;
        for tick in 0..200u64 {
            let w = world_at(tick, 500);
            enc.encode_tick(tick, &w, 1200 - wire::COMPACT_FIXED_LEN)
                .unwrap();
            for d in datagrams(&enc, tick) {
                rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1);
                // 10 % loss until tick 150, none after.
                if tick >= 150 || !(rng >> 33).is_multiple_of(10) {
                    undecodable += receive(&mut dec, &d, &mut world).undecodable;
                }
            }
            if tick >= 150 + 20 {
                // One keyframe cycle after the loss stopped: exact.
                for e in &w {
                    let q = quantized(e, &config);
                    assert_eq!(
                        world.get(&e.id),
                        Some(&(q.x, q.y, q.z)),
                        "tick {tick} id {}",
                        e.id
                    );
                }
            }
        }
        assert!(undecodable > 0, "loss made some deltas undecodable");
        let c = enc.counts();
        assert!(c.unchanged > 0 && c.deltas > c.keyframes, "{c:?}");
    }

    /// A sender's first tick, every entity new, carries the scheduled
    /// keyframes and the tick's share off schedule, not the whole world;
    /// a receiver there from the start holds every entity, exactly, within
    /// one keyframe cycle all the same.
    #[test]
    fn a_first_tick_is_paced_and_the_world_is_whole_within_a_cycle() {
        let (n, k) = (3 * MIN_OFF_SCHEDULE_KEYS as u32, 10u16);
        let config = CompactConfig {
            keyframe_interval: k,
            ..CompactConfig::default()
        };
        let mut enc = Encoder::new(config).unwrap();
        let mut dec = Decoder::new(1 << 20);
        let mut world = std::collections::BTreeMap::new();
        for tick in 0..u64::from(k) {
            let w = world_at(tick, n);
            let before = enc.counts();
            enc.encode_tick(tick, &w, 1200 - wire::COMPACT_FIXED_LEN)
                .unwrap();
            let keys = enc.counts().keyframes - before.keyframes;
            let share = (0..n).filter(|id| (tick + u64::from(*id)) % u64::from(k) == 0);
            let share = share.count() as u64; // scheduled this tick
            let off = (n as usize / usize::from(k)).max(MIN_OFF_SCHEDULE_KEYS) as u64;
            assert!(keys <= share + off, "tick {tick}: {keys} keyframes");
            if tick == 0 {
                assert_eq!(keys, share + off, "tick 0 uses its share");
                assert_eq!(enc.counts().deferred, u64::from(n) - keys);
            }
            for d in datagrams(&enc, tick) {
                assert_eq!(receive(&mut dec, &d, &mut world).undecodable, 0);
            }
        }
        assert_eq!(world.len(), n as usize, "every entity within one cycle");
        for e in world_at(u64::from(k) - 1, n) {
            let q = quantized(&e, &config);
            assert_eq!(world.get(&e.id), Some(&(q.x, q.y, q.z)), "id {}", e.id);
        }
    }

    #[test]
    fn keyframes_are_spread_and_a_late_joiner_holds_all_within_a_cycle() {
        let config = CompactConfig {
            keyframe_interval: 30,
            ..CompactConfig::default()
        };
        let mut enc = Encoder::new(config).unwrap();
        let (mut late, mut world) = (Decoder::new(1 << 20), std::collections::BTreeMap::new());
        for tick in 0..100u64 {
            let w = world_at(tick, 300);
            let before = enc.counts().keyframes;
            enc.encode_tick(tick, &w, 1200).unwrap();
            if tick > 0 {
                // 300 entities, 30 ticks a cycle: 10 keyframes a tick.
                assert_eq!(enc.counts().keyframes - before, 10, "tick {tick}");
            }
            if tick >= 40 {
                for d in datagrams(&enc, tick) {
                    receive(&mut late, &d, &mut world);
                }
                if tick == 40 + 29 {
                    assert_eq!(world.len(), 300, "all held within one cycle");
                }
                if tick < 40 + 29 {
                    assert!(world.len() < 300);
                }
            }
        }
    }

    /// An entity at rest that moves away from its keyframe and comes back
    /// to it before the next one is sent every tick until then: left out,
    /// a receiver would hold where it went for up to K - 1 ticks.
    #[test]
    fn an_entity_back_at_its_keyframe_position_is_still_sent() {
        let mut enc = Encoder::new(CompactConfig::default()).unwrap();
        let mut dec = Decoder::new(1 << 20);
        let mut world = std::collections::BTreeMap::new();
        // Entity 1's keyframe at tick 0 (first seen: velocity 0), a step
        // away at tick 1, back at tick 2, then still.
        let xs = [0.0, 1.0, 0.0, 0.0, 0.0];
        for (tick, &x) in xs.iter().enumerate() {
            let tick = tick as u64;
            enc.encode_tick(tick, &[ent(1, x, 2.0, 3.0)], 1200).unwrap();
            for d in datagrams(&enc, tick) {
                assert_eq!(receive(&mut dec, &d, &mut world).undecodable, 0);
            }
            assert_eq!(world.get(&1), Some(&(x, 2.0, 3.0)), "tick {tick}");
        }
        // Left out only while it had not moved since its keyframe: never
        // here, as it moved at tick 1.
        let c = enc.counts();
        assert_eq!((c.keyframes, c.deltas, c.unchanged), (1, 4, 0), "{c:?}");
    }

    /// At the very end of the ticks: a keyframe off schedule at
    /// `u64::MAX − 1` is still in its window at `u64::MAX` (no scheduled
    /// tick comes between), so an entity at rest is left out, not keyed
    /// again; and `u64::MAX` then 0 are consecutive ticks, so the keyframe
    /// at 0 carries the step between them as its velocity.
    #[test]
    fn the_window_and_the_velocity_hold_at_the_end_of_the_ticks() {
        let mut enc = Encoder::new(CompactConfig::default()).unwrap();
        // u64::MAX mod 60 = 15: id 0's last scheduled tick is MAX − 15.
        enc.encode_tick(u64::MAX - 1, &[ent(0, 0.0, 0.0, 0.0)], 1200)
            .unwrap();
        enc.encode_tick(u64::MAX, &[ent(0, 0.0, 0.0, 0.0)], 1200)
            .unwrap();
        let c = enc.counts();
        assert_eq!((c.keyframes, c.unchanged), (1, 1), "{c:?}");
        enc.encode_tick(0, &[ent(0, 1.0, 0.0, 0.0)], 1200).unwrap();
        let mut records = Records::default();
        decode_records(&datagrams(&enc, 0)[0], &mut records).unwrap();
        // One unit in one tick, in sixteenths of a quantum.
        let key = Record::Key {
            id: 0,
            q: [1000, 0, 0],
            v: [16_000, 0, 0],
        };
        assert_eq!(records.compact, [key]);
    }

    #[test]
    fn a_spawned_entity_gets_a_keyframe_at_once_and_deltas_name_its_age() {
        let mut enc = Encoder::new(CompactConfig::default()).unwrap();
        let mut dec = Decoder::new(1 << 20);
        let mut world = std::collections::BTreeMap::new();
        for tick in 0..70u64 {
            let mut w = vec![ent(5, tick as f32, 0.0, 0.0)];
            if tick >= 10 {
                w.push(ent(6, 0.0, tick as f32 * 0.5, 0.0));
            }
            enc.encode_tick(tick, &w, 1200).unwrap();
            for d in datagrams(&enc, tick) {
                assert_eq!(receive(&mut dec, &d, &mut world).undecodable, 0);
            }
            assert_eq!(world.get(&5).map(|p| p.0), Some(tick as f32));
            if tick >= 10 {
                assert_eq!(world.get(&6).map(|p| p.1), Some(tick as f32 * 0.5));
            }
        }
    }

    #[test]
    fn rounding_is_to_nearest_ties_to_even() {
        for (t, want) in [
            (0.0, 0),
            (0.4, 0),
            (0.5, 0),
            (0.6, 1),
            (1.5, 2),
            (2.5, 2),
            (-0.5, 0),
            (-1.5, -2),
            (-2.6, -3),
            (2147483647.4, 2147483647),
            (-2147483648.0, -2147483648),
            (1e12 + 0.7, 1_000_000_000_001),
        ] {
            assert_eq!(round(t), want, "{t}");
            assert_eq!(round(t), t.round_ties_even() as i64, "{t}");
        }
    }

    #[test]
    fn the_phase_is_the_modulo_whatever_the_gaps() {
        for interval in [1u16, 7, 60, 65535] {
            for tick in [0u64, 5, 59, 60, 1_000_003, u64::MAX - 3] {
                let mut phase = Phase::new(tick, interval);
                for id in [0u32, 1, 2, 3, 10, 70, 71, 200_000, 200_001, u32::MAX] {
                    let want = scheduled_keyframe(tick, id, interval).unwrap_or(0);
                    assert_eq!(phase.window(tick, id), want, "{interval} {tick} {id}");
                }
            }
        }
    }

    /// The encoder's schedule agrees with [`scheduled_keyframe`]: due
    /// exactly at a scheduled tick, and a window ends just before the next
    /// scheduled tick, or at the last tick there is.
    #[test]
    fn the_schedule_says_what_scheduled_keyframe_says() {
        for interval in [1u16, 7, 60, 65535] {
            for tick in [0u64, 5, 59, 60, 1_000_003, u64::MAX - 70_000, u64::MAX - 3] {
                let schedule = Schedule::new(tick, interval);
                for id in [0u32, 1, 2, 3, 10, 70, 71, 200_000, 200_001, u32::MAX] {
                    let due = scheduled_keyframe(tick, id, interval) == Some(tick);
                    assert_eq!(schedule.due(id), due, "{interval} {tick} {id}");
                    let last = (tick + 1..=tick.saturating_add(u64::from(interval)))
                        .find(|&t| scheduled_keyframe(t, id, interval) == Some(t))
                        .map_or(u64::MAX, |next| next - 1);
                    assert_eq!(schedule.window_last(id), last, "{interval} {tick} {id}");
                }
            }
        }
    }

    #[test]
    fn out_of_bound_and_bad_ids_are_refused_without_changing_anything() {
        let mut enc = Encoder::new(CompactConfig::default()).unwrap();
        enc.encode_tick(0, &[ent(1, 1.0, 0.0, 0.0)], 1200).unwrap();
        let before = enc.counts();
        assert_eq!(
            enc.encode_tick(1, &[ent(2, 2e6, 0.0, 0.0)], 1200),
            Err(CompactError::OutOfBound { id: 2 })
        );
        assert_eq!(
            enc.encode_tick(1, &[ent(3, f32::NAN, 0.0, 0.0)], 1200),
            Err(CompactError::OutOfBound { id: 3 })
        );
        assert_eq!(
            enc.encode_tick(1, &[ent(MAX_ENCODER_ID, 0.0, 0.0, 0.0)], 1200),
            Err(CompactError::IdTooLarge { id: MAX_ENCODER_ID })
        );
        assert_eq!(
            enc.encode_tick(1, &[ent(4, 0.0, 0.0, 0.0), ent(4, 1.0, 0.0, 0.0)], 1200),
            Err(CompactError::DuplicateId(4))
        );
        assert_eq!(enc.counts(), before);
        assert!(CompactConfig {
            bound: 3e6,
            ..CompactConfig::default()
        }
        .validate()
        .is_err());
        assert!(CompactConfig {
            keyframe_interval: 0,
            ..CompactConfig::default()
        }
        .validate()
        .is_err());
    }

    /// A delta that would place its entity beyond the coordinate limit (a
    /// hostile or corrupted part: no sender's can) is undecodable, not
    /// applied, so no compact part puts garbage into a world.
    #[test]
    fn a_delta_beyond_the_coordinate_limit_is_not_placed() {
        let head = CompactHead {
            tick: 10,
            scheduled_ns: 0,
            sent_ns: 0,
            part: 0,
            parts: 1,
            quanta_per_unit: 1,
            keyframe_interval: 60,
            count: 1,
        };
        let mut dec = Decoder::new(64);
        let mut out = Vec::new();
        let key = Record::Key {
            id: 1,
            q: [1_000_000_000, 0, 0],
            v: [0; 3],
        };
        let o = dec.decode(1, &CompactHead { tick: 9, ..head }, &[key], &mut out);
        assert_eq!((o, out.len()), (PartOutcome::default(), 1));
        let beyond = |age, r| Record::Delta {
            id: 1,
            age,
            r: [r, 0, 0],
        };
        out.clear();
        let o = dec.decode(1, &head, &[beyond(None, 64), beyond(Some(1), 64)], &mut out);
        assert_eq!((o.undecodable, out.len()), (2, 0));
        let o = dec.decode(1, &head, &[beyond(None, -1)], &mut out);
        // 999999999 quanta round to the f32 1e9, within the limit.
        assert_eq!((o.undecodable, out[0].x), (0, 1.0e9));
    }

    #[test]
    fn parts_fit_the_budget_and_apply_alone() {
        // Every tick scheduled: all 5000 keyframes in the first tick.
        let mut enc = Encoder::new(CompactConfig {
            keyframe_interval: 1,
            ..CompactConfig::default()
        })
        .unwrap();
        let w: Vec<Entity> = (0..5000)
            .map(|id| ent(id, id as f32 * 0.37, -3.0, 2.0))
            .collect();
        enc.encode_tick(0, &w, 300).unwrap();
        assert!(enc.parts().len() > 1);
        let total: usize = enc.parts().iter().map(|p| usize::from(p.count)).sum();
        assert_eq!(total, 5000);
        for d in datagrams(&enc, 0) {
            assert!(d.len() <= 300 + wire::COMPACT_FIXED_LEN, "{}", d.len());
        }
        // Any one part alone places its own entities.
        let ds = datagrams(&enc, 0);
        let mut world = std::collections::BTreeMap::new();
        receive(&mut Decoder::new(1 << 20), &ds[1], &mut world);
        assert_eq!(world.len(), usize::from(enc.parts()[1].count));
    }

    #[test]
    fn per_id_state_is_the_size_the_docs_state() {
        assert_eq!(std::mem::size_of::<EncState>(), 64);
        assert_eq!(std::mem::size_of::<DecState>(), 40);
    }
}
