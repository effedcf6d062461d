//! Where a client draws each entity between snapshots: snapshot
//! interpolation (Gaffer on Games, "Snapshot Interpolation"; the Source
//! engine's `cl_interp`; Unity Netcode for Entities' interpolation buffer of
//! two ticks). Snapshots arrive at the sender's tick rate, late by a varying
//! amount; a game renders at its own frame rate. [`Interpolator`] keeps the
//! last [`HISTORY`] snapshots of every entity and, for a frame at local time
//! `now`, shows each entity as it was a little in the past, on the straight
//! line between the two snapshots around that moment. Sans-IO: the caller
//! passes every time; nothing here reads a clock.
//!
//! # Time mapping
//!
//! Two clocks are involved. A snapshot carries `tick_ns`, the sender's
//! scheduled time of its tick on the sender's clock; the caller stamps its
//! `arrival_ns` on the receiver's clock, and asks for a frame at `now_ns` on
//! that same receiver clock. The clocks differ by an unknown offset, and
//! each arrival is late by the path's delay plus a varying jitter.
//!
//! * **Offset.** Each tick's `offset = arrival_ns − tick_ns` is the clock
//!   difference plus the one-way delay plus that datagram's jitter. The
//!   estimate is the smallest offset of the last [`OFFSET_WINDOW`] distinct
//!   ticks (about a second at 60 Hz): a lower envelope, because a late
//!   arrival says the path was slow, not where the sender's clock is. It
//!   learns from the first arrival of each new tick only (one comparison
//!   per push; the later parts of a tick, and reordered older ticks, are
//!   skipped), and it follows a clock step or drift within the window:
//!   at once downwards, after [`OFFSET_WINDOW`] ticks upwards.
//! * **Period.** The median of the last [`PERIOD_SAMPLES`] differences of
//!   consecutive distinct ticks' `tick_ns`, each divided by the difference
//!   of their tick numbers (so lost ticks do not double it); until two
//!   ticks were seen, [`DEFAULT_PERIOD_NS`] (60 Hz).
//! * **Jitter.** The RFC 3550 (§6.4.1, A.8) estimate over the same first
//!   arrivals: `J += (|D| − J) / 16`, with `D` the difference of two
//!   consecutive distinct ticks' offsets.
//! * **Delay.** [`InterpolationConfig::delay_ns`] if set; otherwise two
//!   periods plus a margin. Two periods because the snapshot after the
//!   render time is at most one period ahead of it, and the second period
//!   lets one snapshot be lost without running out of data; the margin
//!   covers jitter on top of that. The margin is
//!   [`InterpolationConfig::jitter_margin_ns`], or, when
//!   [`InterpolationConfig::adaptive`], `max(jitter_margin_ns, 3 J)`, capped
//!   at [`MAX_ADAPTIVE_MARGIN_PERIODS`] periods (so the render time stays
//!   within the history kept), raised at once when the jitter grows and
//!   lowered by 1/64 of the difference per tick when it shrinks (about a
//!   second at 60 Hz), so a noisy estimate does not make it oscillate.
//! * **Render time.** `render = now_ns − (offset + delay)`, in the sender's
//!   clock. The *lag* `offset + delay` actually used is slewed towards its
//!   estimate at most [`SLEW_DIVISOR`]⁻¹ of the local time between two
//!   frames (the render clock runs between 0.9× and 1.1× while it catches
//!   up), so a new estimate never makes the picture jump; a difference of
//!   more than [`STEP_NS`] is a clock step, not drift, and is taken at once.
//!   [`Interpolator::delay_ns`] is the delay in force (the lag used minus
//!   the offset estimate); [`Interpolator::target_delay_ns`] what it moves
//!   towards.
//!
//! # Per entity, at the render time `t`
//!
//! * Between two kept snapshots `a`, `b` (`a.tick_ns ≤ t ≤ b.tick_ns`): the
//!   linear blend, [`SampleMode::Interpolated`].
//! * Past the newest: the line through the last two, continued for at most
//!   [`InterpolationConfig::max_extrapolation_ns`]
//!   ([`SampleMode::Extrapolated`]); beyond that it stays where the
//!   extrapolation stopped ([`SampleMode::Held`]): it does not jump back to
//!   the newest snapshot.
//! * One snapshot only, or `t` before the oldest kept: that snapshot,
//!   [`SampleMode::Held`].
//! * A teleport: two consecutive snapshots farther apart than
//!   [`InterpolationConfig::teleport_distance`] are not slid between. The
//!   earlier is shown until `t` reaches the later's time, then the later,
//!   both as [`SampleMode::Snapped`]; past a teleport's newest there is no
//!   extrapolation (held there). The teleport is counted once, when the
//!   later snapshot is pushed. Consecutive means consecutive *received*: a
//!   fast entity whose snapshots were lost for long enough snaps too, so
//!   choose the distance above speed × the longest gap worth sliding over.
//!
//! # When the guess was wrong
//!
//! A frame drawn past the newest snapshot is a guess. When the next
//! snapshot comes, the same moment may lie elsewhere: after an
//! extrapolation the entity turned, or a single held snapshot got a
//! successor. The interpolator does not jump there. At the first frame
//! after the news, it measures the difference at the *previous* frame's
//! render time between what it showed and what it would show now, and
//! carries that difference as a correction that fades out exponentially
//! with time constant [`CORRECTION_TAU_NS`] (85% of it is left after a
//! 60 fps frame): the entity slides onto the right path over a few frames.
//! The sample keeps the mode of the path it converges to. When the motion
//! was straight, the guess was right and there is nothing to correct
//! (differences under [`CORRECTION_FLOOR`] are not counted); a difference
//! beyond the teleport distance, or a snap, is taken at once.
//!
//! # Bounds
//!
//! History lives in pages of [`TRACK_PAGE`] ids, each made the first time
//! one of its ids is pushed and dropped when its last entity leaves: ids at
//! or above [`InterpolationConfig::capacity`] (by default the world's,
//! [`DEFAULT_CAPACITY`]) are counted and ignored, so memory is bounded
//! whatever arrives, and follows the ids in use, not the highest one seen
//! (one id near 2²⁰ costs a page, not a megabyte of tracks). A frame walks
//! only the pages that hold an entity. Each entity keeps a fixed ring of
//! [`HISTORY`] snapshots, so no push allocates but the first in a page, and
//! [`Interpolator::sample`] reuses the caller's buffer. The history reaches
//! back `HISTORY − 1` periods, so a fixed delay longer than that (about
//! 117 ms at 60 Hz) leaves the render time before the oldest snapshot.
//! No input makes it panic: times are compared, never trusted to be
//! ordered, and a snapshot whose tick or time does not advance its
//! entity's history is ignored.
//!
//! # Sessions
//!
//! Ticks that go back while the sender's time goes on are a restarted
//! sender (the rule of [`crate::core::predict`]): everything is forgotten
//! and the new session is learned afresh (counted in
//! [`InterpolationFigures::restarts`]). [`Interpolator::reset`] does the same
//! on the caller's word.

use crate::core::world::DEFAULT_CAPACITY;

/// Snapshots kept per entity.
pub const HISTORY: usize = 8;
/// Ids a page of the interpolator's history holds (about 60 KiB).
pub const TRACK_PAGE: usize = 256;
/// The tick period assumed until two ticks have taught it, ns (60 Hz).
pub const DEFAULT_PERIOD_NS: u64 = 16_666_667;
/// Default [`InterpolationConfig::jitter_margin_ns`], ns: 4 ms. The two
/// periods of the delay already absorb one lost snapshot or a period of
/// lateness; the margin is for the jitter on top of a loss. A few
/// milliseconds covers a wired path and most home broadband (whose RFC 3550
/// jitter is commonly 1–3 ms), costing 4 ms of latency over the 33 ms the
/// two ticks cost at 60 Hz. A path that jitters more wants
/// [`InterpolationConfig::adaptive`].
pub const DEFAULT_JITTER_MARGIN_NS: u64 = 4_000_000;
/// Default [`InterpolationConfig::max_extrapolation_ns`], ns: 250 ms.
pub const DEFAULT_MAX_EXTRAPOLATION_NS: u64 = 250_000_000;
/// Default [`InterpolationConfig::teleport_distance`], world units.
pub const DEFAULT_TELEPORT_DISTANCE: f32 = 10.0;
/// Distinct ticks whose smallest offset is the offset estimate.
pub const OFFSET_WINDOW: usize = 64;
/// Distinct-tick period measurements whose median is the period.
pub const PERIOD_SAMPLES: usize = 9;
/// The render clock gains or loses at most 1/`SLEW_DIVISOR` of local time
/// while the lag moves to a new estimate.
pub const SLEW_DIVISOR: u64 = 10;
/// A lag estimate farther than this from the lag in use is a clock step or
/// a new path, and is taken at once instead of slewed, ns.
pub const STEP_NS: u64 = 250_000_000;
/// The time constant a correction fades with, ns.
pub const CORRECTION_TAU_NS: u64 = 100_000_000;
/// A correction smaller than this (world units, Euclidean) is rounding, not
/// a wrong guess: it is neither counted nor carried.
pub const CORRECTION_FLOOR: f32 = 1e-4;
/// The adaptive margin is at most this many periods.
pub const MAX_ADAPTIVE_MARGIN_PERIODS: u64 = 4;
/// The adaptive margin moves down by 1/`MARGIN_RELEASE` of its excess per tick.
const MARGIN_RELEASE: u64 = 64;

// One bit per kept snapshot in `Track::jumps`; a power of two, so the
// ring's `% HISTORY` is a mask.
const _: () = assert!(HISTORY <= 8 && HISTORY.is_power_of_two());

/// How an [`Interpolator`] draws.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InterpolationConfig {
    /// A fixed render delay, ns; `None`: two tick periods plus the jitter
    /// margin (the module docs say why).
    pub delay_ns: Option<u64>,
    /// The margin over two tick periods when `delay_ns` is `None`, ns
    /// (default [`DEFAULT_JITTER_MARGIN_NS`]); the floor of the adaptive one.
    pub jitter_margin_ns: u64,
    /// When `delay_ns` is `None`: make the margin `max(jitter_margin_ns,
    /// 3 × measured arrival jitter)`, smoothed (the module docs say how).
    pub adaptive: bool,
    /// How long past the newest snapshot an entity is extrapolated before it
    /// is held, ns (default [`DEFAULT_MAX_EXTRAPOLATION_NS`]; 0: never).
    pub max_extrapolation_ns: u64,
    /// Two consecutive snapshots of one entity farther apart than this
    /// (world units, Euclidean) are a teleport: snapped, not slid between
    /// (default [`DEFAULT_TELEPORT_DISTANCE`]; `f32::INFINITY`: never).
    pub teleport_distance: f32,
    /// Ids accepted are `0..capacity` (default [`DEFAULT_CAPACITY`], the
    /// world's); others are counted in [`InterpolationFigures::rejected`].
    pub capacity: u32,
}

impl Default for InterpolationConfig {
    fn default() -> InterpolationConfig {
        InterpolationConfig {
            delay_ns: None,
            jitter_margin_ns: DEFAULT_JITTER_MARGIN_NS,
            adaptive: false,
            max_extrapolation_ns: DEFAULT_MAX_EXTRAPOLATION_NS,
            teleport_distance: DEFAULT_TELEPORT_DISTANCE,
            capacity: DEFAULT_CAPACITY,
        }
    }
}

/// How a [`Sample`]'s position was found. `repr(u32)`: a `uint32_t` in C.
#[repr(u32)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SampleMode {
    /// Between two snapshots, on the line joining them.
    #[default]
    Interpolated = 0,
    /// Past the newest snapshot, on the line through the last two.
    Extrapolated = 1,
    /// Standing still for want of data: one snapshot only, the render time
    /// before the oldest kept, past a teleport, or extrapolated as far as
    /// allowed.
    Held = 2,
    /// Across a teleport: the earlier snapshot, then the later, never between.
    Snapped = 3,
}

/// One entity's position for a frame. `repr(C)`: 20 bytes, four-byte
/// aligned, the same layout in C; all zeroes is [`Sample::default`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Sample {
    /// Entity id.
    pub id: u32,
    /// X coordinate.
    pub x: f32,
    /// Y coordinate.
    pub y: f32,
    /// Z coordinate.
    pub z: f32,
    /// How the position was found.
    pub mode: SampleMode,
}

/// What an [`Interpolator`] did, as plain data, counted from its start
/// (across [`Interpolator::reset`]s). Counters only go up. Every entity
/// sampled counts in exactly one of the four modes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct InterpolationFigures {
    /// Samples drawn [`SampleMode::Interpolated`].
    pub interpolated: u64,
    /// Samples drawn [`SampleMode::Extrapolated`].
    pub extrapolated: u64,
    /// Samples drawn [`SampleMode::Held`].
    pub held: u64,
    /// Samples drawn [`SampleMode::Snapped`].
    pub snapped: u64,
    /// Teleports: snapshots pushed farther than the teleport distance from
    /// their entity's previous one, each counted once.
    pub teleports: u64,
    /// Wrong guesses corrected: frames at which new data showed that the
    /// previous frame, drawn past the newest snapshot, was more than
    /// [`CORRECTION_FLOOR`] off, and a fading correction began.
    pub corrections: u64,
    /// Pushes ignored because their entity already had the same or a newer
    /// tick, or a tick no later in the sender's time.
    pub ignored: u64,
    /// Pushes ignored because the id is at or above the capacity.
    pub rejected: u64,
    /// Restarted senders seen (ticks went back while time went on), and
    /// [`Interpolator::reset`] calls: each forgot every entity.
    pub restarts: u64,
}

/// One kept snapshot.
#[derive(Clone, Copy, Debug, Default)]
struct Snap {
    tick_ns: u64,
    pos: [f32; 3],
}

/// One entity's history and drawing state.
#[derive(Clone, Copy, Debug, Default)]
struct Track {
    /// A ring: the `i`-th oldest of the `len` kept is `snaps[slot(i)]`.
    snaps: [Snap; HISTORY],
    /// Where the oldest is.
    head: u8,
    len: u8,
    /// Bit `p`: the snapshot in `snaps[p]` is a teleport from the one
    /// before it (meaningless for the oldest, never asked).
    jumps: u8,
    /// The newest tick pushed.
    newest_tick: u64,
    /// The last frame was drawn past the newest snapshot: a guess.
    guessing: bool,
    /// A snapshot came since the last frame.
    fresh: bool,
    /// `err` is being faded out.
    correcting: bool,
    /// What the last frame showed (kept while guessing).
    shown: [f32; 3],
    /// Gone as of this time (the sender's clock): drawn until the render
    /// time reaches it, then forgotten ([`Interpolator::remove_at`]).
    gone_ns: Option<u64>,
    /// The correction added to the path.
    err: [f32; 3],
}

impl Track {
    /// The slot of the `i`-th oldest kept snapshot.
    fn slot(&self, i: usize) -> usize {
        (usize::from(self.head) + i) % HISTORY
    }

    /// The `i`-th oldest kept snapshot.
    fn get(&self, i: usize) -> Snap {
        self.snaps[self.slot(i)]
    }

    fn newest(&self) -> Snap {
        self.get(usize::from(self.len) - 1)
    }

    /// Whether the `i`-th oldest is a teleport from the one before it.
    fn jump(&self, i: usize) -> bool {
        self.jumps & (1 << self.slot(i)) != 0
    }

    fn append(&mut self, tick: u64, snap: Snap, jump: bool) {
        let slot = self.slot(usize::from(self.len));
        if usize::from(self.len) == HISTORY {
            self.head = ((usize::from(self.head) + 1) % HISTORY) as u8; // the oldest goes
        } else {
            self.len += 1;
        }
        self.snaps[slot] = snap;
        self.jumps = (self.jumps & !(1 << slot)) | (u8::from(jump) << slot);
        self.newest_tick = tick;
        self.fresh = true;
    }

    /// Position and mode at render time `t`, and whether `t` is past the
    /// newest snapshot. `len` must be at least 1.
    fn at(&self, t: u64, max_extrapolation_ns: u64) -> ([f32; 3], SampleMode, bool) {
        let n = usize::from(self.len);
        let newest = self.get(n - 1);
        if t > newest.tick_ns {
            if n == 1 || self.jump(n - 1) {
                return (newest.pos, SampleMode::Held, true);
            }
            let prev = self.get(n - 2);
            let ahead = t - newest.tick_ns;
            let (mode, ahead) = if ahead <= max_extrapolation_ns {
                (SampleMode::Extrapolated, ahead)
            } else {
                (SampleMode::Held, max_extrapolation_ns)
            };
            let f = ahead as f64 / (newest.tick_ns - prev.tick_ns) as f64;
            let pos = along(newest.pos, sub(newest.pos, prev.pos), f as f32);
            return (pos, mode, true);
        }
        let oldest = self.get(0);
        if n == 1 || t < oldest.tick_ns {
            return (oldest.pos, SampleMode::Held, false);
        }
        // oldest.tick_ns <= t <= newest.tick_ns: find the pair around t.
        let mut i = n - 1;
        let mut a = self.get(i - 1);
        while a.tick_ns > t {
            i -= 1;
            a = self.get(i - 1);
        }
        let b = self.get(i);
        if self.jump(i) {
            let pos = if t >= b.tick_ns { b.pos } else { a.pos };
            return (pos, SampleMode::Snapped, false);
        }
        let f = (t - a.tick_ns) as f64 / (b.tick_ns - a.tick_ns) as f64;
        (
            along(a.pos, sub(b.pos, a.pos), f as f32),
            SampleMode::Interpolated,
            false,
        )
    }
}

fn sub(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

/// `p + d × f`.
fn along(p: [f32; 3], d: [f32; 3], f: f32) -> [f32; 3] {
    [p[0] + d[0] * f, p[1] + d[1] * f, p[2] + d[2] * f]
}

fn length(d: [f32; 3]) -> f32 {
    (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt()
}

/// What a push's `(tick, tick_ns)` is to the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TickNews {
    /// The first arrival of a newer tick: it was learned from.
    New,
    /// A tick already seen, an older one, or one whose time does not advance.
    Known,
    /// The tick went back while the time went on: a new session.
    Restart,
}

/// The stream's clock: the sender's period, the offset to the receiver's
/// clock, the jitter and the margin it asks for (the module docs).
#[derive(Clone, Debug)]
struct StreamClock {
    /// Newest distinct tick, its `tick_ns` and its first arrival's offset.
    last: Option<(u64, u64, i64)>,
    offsets: [i64; OFFSET_WINDOW],
    offsets_len: usize,
    offsets_next: usize,
    offset: Option<i64>,
    periods: [u64; PERIOD_SAMPLES],
    periods_len: usize,
    periods_next: usize,
    period_ns: Option<u64>,
    /// 16 × the RFC 3550 jitter, ns (the RFC's integer form).
    jitter16: u64,
    /// The adaptive margin in force, ns.
    margin_ns: u64,
}

impl StreamClock {
    fn new(config: &InterpolationConfig) -> StreamClock {
        StreamClock {
            last: None,
            offsets: [0; OFFSET_WINDOW],
            offsets_len: 0,
            offsets_next: 0,
            offset: None,
            periods: [0; PERIOD_SAMPLES],
            periods_len: 0,
            periods_next: 0,
            period_ns: None,
            jitter16: 0,
            margin_ns: config.jitter_margin_ns,
        }
    }

    fn period_ns(&self) -> u64 {
        self.period_ns.unwrap_or(DEFAULT_PERIOD_NS)
    }

    fn on_push(
        &mut self,
        config: &InterpolationConfig,
        tick: u64,
        tick_ns: u64,
        arrival_ns: u64,
    ) -> TickNews {
        // The difference of two epoch stamps: exact while they are within
        // 2^63 ns (292 years) of each other.
        let offset = arrival_ns.wrapping_sub(tick_ns) as i64;
        if let Some((last_tick, last_ns, last_offset)) = self.last {
            if tick_ns <= last_ns {
                return TickNews::Known;
            }
            if tick <= last_tick {
                return TickNews::Restart;
            }
            self.learn_period((tick_ns - last_ns) / (tick - last_tick));
            // RFC 3550 A.8: J += |D| - J/16, in sixteenths.
            let d = offset.wrapping_sub(last_offset).unsigned_abs();
            self.jitter16 = self
                .jitter16
                .saturating_add(d)
                .saturating_sub((self.jitter16 + 8) >> 4);
            self.adapt_margin(config);
        }
        self.last = Some((tick, tick_ns, offset));
        if self.offsets_len < OFFSET_WINDOW {
            self.offsets_len += 1;
        }
        self.offsets[self.offsets_next] = offset;
        self.offsets_next = (self.offsets_next + 1) % OFFSET_WINDOW;
        self.offset = self.offsets[..self.offsets_len].iter().copied().min();
        TickNews::New
    }

    fn learn_period(&mut self, period: u64) {
        if period == 0 {
            return; // ticks closer than a nanosecond: nothing to learn
        }
        if self.periods_len < PERIOD_SAMPLES {
            self.periods_len += 1;
        }
        self.periods[self.periods_next] = period;
        self.periods_next = (self.periods_next + 1) % PERIOD_SAMPLES;
        let mut sorted = self.periods;
        let sorted = &mut sorted[..self.periods_len];
        sorted.sort_unstable();
        self.period_ns = Some(sorted[sorted.len() / 2]);
    }

    /// Fast up, slow down: raised to `max(floor, 3 J)` at once, lowered by
    /// 1/[`MARGIN_RELEASE`] of the excess per tick.
    fn adapt_margin(&mut self, config: &InterpolationConfig) {
        let floor = config.jitter_margin_ns;
        let cap = floor.max(self.period_ns().saturating_mul(MAX_ADAPTIVE_MARGIN_PERIODS));
        let want = (3 * (self.jitter16 >> 4)).clamp(floor, cap);
        if want >= self.margin_ns {
            self.margin_ns = want;
        } else {
            self.margin_ns -= (self.margin_ns - want).div_ceil(MARGIN_RELEASE);
        }
    }

    fn jitter_ns(&self) -> u64 {
        self.jitter16 >> 4
    }
}

/// Draws every entity of a snapshot stream, a frame at a time: fed each
/// entity's snapshots with their times ([`Interpolator::push`]), asked for
/// positions at a local time ([`Interpolator::sample`]). The module docs
/// give the time mapping and every rule.
///
/// ```
/// use tickcast::core::interpolate::{InterpolationConfig, Interpolator, SampleMode};
///
/// let mut interp = Interpolator::new(InterpolationConfig {
///     delay_ns: Some(50_000_000), // draw 50 ms in the past
///     ..InterpolationConfig::default()
/// });
/// // Entity 7 moves 1 unit per 100 ms tick; each snapshot arrives 2 ms after its tick.
/// for tick in 0..3u64 {
///     let tick_ns = tick * 100_000_000;
///     interp.push(7, tick, tick_ns, tick_ns + 2_000_000, [tick as f32, 0.0, 0.0]);
/// }
/// let mut frame = Vec::new();
/// // 202 ms local = 200 ms sender; 50 ms back is 150 ms: half way from 1 to 2.
/// interp.sample(202_000_000, &mut frame);
/// assert_eq!(frame[0].id, 7);
/// assert!((frame[0].x - 1.5).abs() < 1e-6);
/// assert_eq!(frame[0].mode, SampleMode::Interpolated);
/// ```
#[derive(Clone)]
pub struct Interpolator {
    config: InterpolationConfig,
    /// Page `p` holds ids `p × TRACK_PAGE ..`, made on first use; a
    /// track of `len == 0` is an unknown entity.
    pages: Vec<Option<TrackPage>>,
    known: usize,
    clock: StreamClock,
    /// The lag (offset + delay) in use, ns, once a frame was drawn.
    lag: Option<i64>,
    /// The last frame's `now_ns` and render time.
    last_frame: Option<(u64, u64)>,
    figures: InterpolationFigures,
}

/// [`TRACK_PAGE`] tracks and how many of them hold an entity.
#[derive(Clone)]
struct TrackPage {
    tracks: Box<[Track]>,
    known: usize,
}

/// The page of id `id` and its slot there.
fn place(id: u32) -> (usize, usize) {
    (id as usize / TRACK_PAGE, id as usize % TRACK_PAGE)
}

impl TrackPage {
    /// Forgets the entity in slot `i`, if one is there; whether it was.
    fn forget(&mut self, i: usize) -> bool {
        let held = self.tracks[i].len > 0;
        if held {
            self.tracks[i] = Track::default();
            self.known -= 1;
        }
        held
    }
}

impl std::fmt::Debug for Interpolator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interpolator")
            .field("config", &self.config)
            .field("entities", &self.known)
            .field("period_ns", &self.period_ns())
            .field("delay_ns", &self.delay_ns())
            .field("figures", &self.figures)
            .finish_non_exhaustive()
    }
}

impl Interpolator {
    /// An interpolator that has seen nothing.
    pub fn new(config: InterpolationConfig) -> Interpolator {
        Interpolator {
            clock: StreamClock::new(&config),
            config,
            pages: Vec::new(),
            known: 0,
            lag: None,
            last_frame: None,
            figures: InterpolationFigures::default(),
        }
    }

    /// The configuration it was made with.
    pub fn config(&self) -> &InterpolationConfig {
        &self.config
    }

    /// One snapshot of entity `id`: its `tick`, the sender's time for that
    /// tick `tick_ns` (ns since the Unix epoch on the sender's clock: the
    /// snapshot's scheduled time), its local `arrival_ns` (ns since the Unix
    /// epoch on the receiver's clock) and its position. Ignored (and counted
    /// in [`InterpolationFigures::ignored`]) unless both `tick` and `tick_ns`
    /// are later than the entity's newest; ids at or above the capacity are
    /// counted in [`InterpolationFigures::rejected`]. Allocates only for
    /// the first entity of a page of ids.
    pub fn push(&mut self, id: u32, tick: u64, tick_ns: u64, arrival_ns: u64, pos: [f32; 3]) {
        if id >= self.config.capacity {
            self.figures.rejected += 1;
            return;
        }
        if self.clock.on_push(&self.config, tick, tick_ns, arrival_ns) == TickNews::Restart {
            self.forget();
            self.clock.on_push(&self.config, tick, tick_ns, arrival_ns);
        }
        let (p, i) = place(id);
        if p >= self.pages.len() {
            self.pages.resize_with(p + 1, || None);
        }
        let page = self.pages[p].get_or_insert_with(|| TrackPage {
            tracks: vec![Track::default(); TRACK_PAGE].into(),
            known: 0,
        });
        if page.tracks[i].gone_ns.is_some() && page.forget(i) {
            // Back after it left: a new entity under an old id, started
            // afresh, never slid to from where the old one was.
            self.known -= 1;
        }
        let track = &mut page.tracks[i];
        let jump = if track.len == 0 {
            self.known += 1;
            page.known += 1;
            false
        } else {
            let newest = track.newest();
            if tick <= track.newest_tick || tick_ns <= newest.tick_ns {
                self.figures.ignored += 1;
                return;
            }
            length(sub(pos, newest.pos)) > self.config.teleport_distance
        };
        self.figures.teleports += u64::from(jump);
        track.append(tick, Snap { tick_ns, pos }, jump);
    }

    /// Entity `id` is gone (despawned) as of the sender's time `gone_ns`
    /// (the stamp of a tick without it): it is drawn until the render time
    /// reaches the earlier of `gone_ns` and one tick period after its
    /// newest snapshot, a render delay after it left the sender's world,
    /// so its last snapshots are shown as every other entity's are; then it
    /// is forgotten. (So a despawn seen late, a frame or a lost part after
    /// the tick it left at, does not keep it on screen extrapolated.) A
    /// push before then starts it afresh, as a new entity. An earlier time
    /// given twice wins.
    pub fn remove_at(&mut self, id: u32, gone_ns: u64) {
        let period = self.clock.period_ns();
        let (p, i) = place(id);
        let Some(Some(page)) = self.pages.get_mut(p) else {
            return;
        };
        let track = &mut page.tracks[i];
        if track.len > 0 {
            let after_newest = track.newest().tick_ns.saturating_add(period);
            let gone = gone_ns.min(after_newest);
            track.gone_ns = Some(track.gone_ns.map_or(gone, |g| g.min(gone)));
        }
    }

    /// Entity `id` is gone: forgets it at once, whatever the render time.
    /// Its next push, of any tick, starts it afresh.
    pub fn remove(&mut self, id: u32) {
        let (p, i) = place(id);
        let Some(slot) = self.pages.get_mut(p) else {
            return;
        };
        if slot.as_mut().is_some_and(|page| page.forget(i)) {
            self.known -= 1;
            if slot.as_ref().is_some_and(|page| page.known == 0) {
                *slot = None; // its last entity left: the page goes too
            }
        }
    }

    /// Forgets every entity and everything learnt of the stream, keeping
    /// the figures: for a new session, when the caller knows of one (a
    /// restarted sender is also detected, see the module docs).
    pub fn reset(&mut self) {
        self.forget();
    }

    fn forget(&mut self) {
        self.pages.clear();
        self.known = 0;
        self.clock = StreamClock::new(&self.config);
        self.lag = None;
        self.last_frame = None;
        self.figures.restarts += 1;
    }

    /// Clears `out` and appends one [`Sample`] per known entity, in id
    /// order, for the frame at local time `now_ns` (the receiver's clock, as
    /// `arrival_ns`). Frames are expected in time order; an earlier `now_ns`
    /// is drawn, but does not move the lag or fade corrections.
    pub fn sample(&mut self, now_ns: u64, out: &mut Vec<Sample>) {
        out.clear();
        let Some(target) = self.target_lag() else {
            return; // nothing pushed since the start or the last reset
        };
        let dt = self
            .last_frame
            .map_or(0, |(then, _)| now_ns.saturating_sub(then));
        let lag = match self.lag {
            Some(lag) if target.abs_diff(lag) <= STEP_NS => {
                let step = i64::try_from(dt / SLEW_DIVISOR).unwrap_or(i64::MAX);
                lag + (target - lag).clamp(-step, step)
            }
            _ => target,
        };
        self.lag = Some(lag);
        let t = (i128::from(now_ns) - i128::from(lag)).clamp(0, i128::from(u64::MAX)) as u64;
        let prev_t = self.last_frame.map(|(_, t)| t);
        let keep = (-(dt as f64) / CORRECTION_TAU_NS as f64).exp() as f32;
        let max_ex = self.config.max_extrapolation_ns;
        let teleport = self.config.teleport_distance;
        let mut modes = [0u64; 4];
        let mut corrections = 0;
        out.reserve(self.known);
        let mut left = 0;
        for (p, slot) in self.pages.iter_mut().enumerate() {
            let Some(page) = slot else {
                continue;
            };
            for (i, track) in page.tracks.iter_mut().enumerate() {
                if track.len == 0 {
                    continue;
                }
                if track.gone_ns.is_some_and(|gone| t >= gone) {
                    // The render time reached its departure.
                    *track = Track::default();
                    page.known -= 1;
                    left += 1;
                    continue;
                }
                let id = p * TRACK_PAGE + i;
                let (mut pos, mode, beyond) = track.at(t, max_ex);
                if mode == SampleMode::Snapped {
                    track.correcting = false;
                } else {
                    if let Some(prev_t) = prev_t.filter(|_| track.fresh && track.guessing) {
                        // Where the last frame should have been, knowing what we know now.
                        let (then, then_mode, _) = track.at(prev_t, max_ex);
                        let err = sub(track.shown, then);
                        let size = length(err);
                        if then_mode != SampleMode::Snapped
                            && size > CORRECTION_FLOOR
                            && size <= teleport
                        {
                            track.err = err;
                            track.correcting = true;
                            corrections += 1;
                        } else {
                            track.correcting = false;
                        }
                    }
                    if track.correcting {
                        track.err = track.err.map(|e| e * keep);
                        if length(track.err) <= CORRECTION_FLOOR {
                            track.correcting = false;
                        } else {
                            pos = along(pos, track.err, 1.0);
                        }
                    }
                }
                track.fresh = false;
                track.guessing = beyond;
                if beyond {
                    track.shown = pos;
                }
                modes[mode as usize] += 1;
                out.push(Sample {
                    id: id as u32,
                    x: pos[0],
                    y: pos[1],
                    z: pos[2],
                    mode,
                });
            }
            if page.known == 0 {
                *slot = None;
            }
        }
        self.known -= left;
        self.last_frame = Some((now_ns, t));
        let f = &mut self.figures;
        f.interpolated += modes[SampleMode::Interpolated as usize];
        f.extrapolated += modes[SampleMode::Extrapolated as usize];
        f.held += modes[SampleMode::Held as usize];
        f.snapped += modes[SampleMode::Snapped as usize];
        f.corrections += corrections;
    }

    /// The lag (offset + delay) the estimates ask for, once a tick was seen.
    fn target_lag(&self) -> Option<i64> {
        let delay = i64::try_from(self.target_delay_ns()).unwrap_or(i64::MAX);
        Some(self.clock.offset?.saturating_add(delay))
    }

    /// The render delay in force, ns: how far behind the sender's present
    /// (as estimated) the last frame was drawn, which moves towards
    /// [`Interpolator::target_delay_ns`] by at most a tenth of the time
    /// between frames; before the first frame, the target.
    pub fn delay_ns(&self) -> u64 {
        match (self.lag, self.clock.offset) {
            (Some(lag), Some(offset)) => lag.saturating_sub(offset).max(0) as u64,
            _ => self.target_delay_ns(),
        }
    }

    /// The render delay the configuration and the stream ask for, ns:
    /// [`InterpolationConfig::delay_ns`], or two periods plus the margin.
    pub fn target_delay_ns(&self) -> u64 {
        self.config.delay_ns.unwrap_or_else(|| {
            let margin = if self.config.adaptive {
                self.clock.margin_ns
            } else {
                self.config.jitter_margin_ns
            };
            self.clock
                .period_ns()
                .saturating_mul(2)
                .saturating_add(margin)
        })
    }

    /// The sender's tick period, ns: learnt, or [`DEFAULT_PERIOD_NS`] until
    /// two ticks were seen.
    pub fn period_ns(&self) -> u64 {
        self.clock.period_ns()
    }

    /// The arrival jitter measured (RFC 3550 style), ns; 0 until two ticks
    /// were seen.
    pub fn jitter_ns(&self) -> u64 {
        self.clock.jitter_ns()
    }

    /// What it did so far.
    pub fn figures(&self) -> InterpolationFigures {
        self.figures
    }

    /// Entities known: pushed and not removed since (one removed with
    /// [`Interpolator::remove_at`] until the render time reaches its
    /// departure).
    pub fn len(&self) -> usize {
        self.known
    }

    /// True when no entity is known.
    pub fn is_empty(&self) -> bool {
        self.known == 0
    }
}

#[cfg(test)]
impl Interpolator {
    /// Entity `id`'s track, if its page exists.
    fn track(&self, id: u32) -> Option<&Track> {
        let (p, i) = place(id);
        Some(&self.pages.get(p)?.as_ref()?.tracks[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// 60 Hz.
    const P: u64 = DEFAULT_PERIOD_NS;
    const MS: u64 = 1_000_000;
    const S: u64 = 1_000_000_000;
    /// The sender's tick 0, ns since the epoch.
    const T0: u64 = 1_700_000_000 * S;

    /// One snapshot as it reaches the receiver.
    #[derive(Clone, Copy, Debug)]
    struct Event {
        arrival: u64,
        id: u32,
        tick: u64,
        tick_ns: u64,
        pos: [f32; 3],
    }

    /// One frame: local time, render time, what was drawn.
    struct Frame {
        now: u64,
        t: u64,
        samples: Vec<Sample>,
    }

    /// Position at `s` seconds after tick 0 of something moving at `v`
    /// units per second from `p0`.
    fn line(p0: [f32; 3], v: [f64; 3], s: f64) -> [f32; 3] {
        [0, 1, 2].map(|k| (f64::from(p0[k]) + v[k] * s) as f32)
    }

    fn secs(t: u64) -> f64 {
        (t as f64 - T0 as f64) / 1e9
    }

    /// Entity `id`'s snapshots of `ticks` at `period`, moving along `path`
    /// (a function of seconds since tick 0); `arrival` gives each tick's
    /// arrival (local clock), `None` to lose it.
    fn stream(
        id: u32,
        ticks: std::ops::Range<u64>,
        period: u64,
        path: impl Fn(f64) -> [f32; 3],
        mut arrival: impl FnMut(u64, u64) -> Option<u64>,
    ) -> Vec<Event> {
        ticks
            .filter_map(|tick| {
                let tick_ns = T0 + tick * period;
                let arrival = arrival(tick, tick_ns)?;
                Some(Event {
                    arrival,
                    id,
                    tick,
                    tick_ns,
                    pos: path(secs(tick_ns)),
                })
            })
            .collect()
    }

    /// Pushes every event (in arrival order) that arrived by each frame's
    /// time, then draws the frame.
    fn simulate(
        interp: &mut Interpolator,
        mut events: Vec<Event>,
        frames: impl IntoIterator<Item = u64>,
    ) -> Vec<Frame> {
        events.sort_by_key(|e| e.arrival);
        let mut next = 0;
        let mut out = Vec::new();
        frames
            .into_iter()
            .map(|now| {
                while next < events.len() && events[next].arrival <= now {
                    let e = events[next];
                    interp.push(e.id, e.tick, e.tick_ns, e.arrival, e.pos);
                    next += 1;
                }
                interp.sample(now, &mut out);
                Frame {
                    now,
                    t: interp.last_frame.unwrap().1,
                    samples: out.clone(),
                }
            })
            .collect()
    }

    /// Local times from `from` to `to`, `step` apart.
    fn every(from: u64, to: u64, step: u64) -> impl Iterator<Item = u64> {
        (0..)
            .map(move |k| from + k * step)
            .take_while(move |&t| t <= to)
    }

    fn pos(s: &Sample) -> [f32; 3] {
        [s.x, s.y, s.z]
    }

    fn near(a: [f32; 3], b: [f32; 3], tolerance: f32) -> bool {
        length(sub(a, b)) <= tolerance
    }

    fn fixed(delay_ns: u64) -> InterpolationConfig {
        InterpolationConfig {
            delay_ns: Some(delay_ns),
            ..InterpolationConfig::default()
        }
    }

    const P0: [f32; 3] = [1.0, -2.0, 0.5];
    const V: [f64; 3] = [3.0, -1.0, 0.25];

    #[test]
    fn a_straight_motion_is_drawn_on_its_line_between_snapshots() {
        const OFFSET: u64 = MS;
        const DELAY: u64 = 40 * MS;
        let mut interp = Interpolator::new(fixed(DELAY));
        let events = stream(0, 0..30, P, |s| line(P0, V, s), |_, t| Some(t + OFFSET));
        // Frames 1.37 ms apart (not a divisor of the period), from the
        // render time at tick 0 to the last tick's arrival.
        let frames = simulate(
            &mut interp,
            events,
            every(T0 + OFFSET + DELAY, T0 + 29 * P + OFFSET, 1_370_000),
        );
        assert!(frames.len() > 300);
        for f in &frames {
            assert_eq!(f.t, f.now - OFFSET - DELAY, "the lag is offset + delay");
            let s = &f.samples[0];
            assert_eq!(s.mode, SampleMode::Interpolated, "at {}", f.t);
            let want = line(P0, V, secs(f.t));
            assert!(near(pos(s), want, 1e-5), "{s:?} at {}: want {want:?}", f.t);
        }
        assert_eq!(interp.figures().interpolated, frames.len() as u64);
        assert_eq!(interp.delay_ns(), DELAY);
    }

    /// Frames of one entity under the default configuration, with the given
    /// ticks lost, checking every frame is on the line and moves as far as
    /// the entity does.
    fn across_a_gap(lost: &[u64]) -> InterpolationFigures {
        const OFFSET: u64 = 5 * MS;
        let mut interp = Interpolator::new(InterpolationConfig::default());
        let events = stream(
            0,
            0..40,
            P,
            |s| line(P0, V, s),
            |tick, t| (!lost.contains(&tick)).then_some(t + OFFSET),
        );
        let frames = simulate(&mut interp, events, every(T0 + 60 * MS, T0 + 38 * P, P));
        let speed = length(V.map(|v| v as f32));
        for w in frames.windows(2) {
            let (a, b) = (&w[0].samples[0], &w[1].samples[0]);
            assert_eq!(w[1].t - w[0].t, P, "the render clock runs steadily");
            assert!(near(pos(b), line(P0, V, secs(w[1].t)), 1e-5), "{b:?}");
            let step = length(sub(pos(b), pos(a)));
            assert!((step - speed * P as f32 / 1e9).abs() < 1e-4, "step {step}");
        }
        interp.figures()
    }

    #[test]
    fn a_lost_snapshot_is_interpolated_across_smoothly() {
        let f = across_a_gap(&[10]);
        assert_eq!(f.extrapolated + f.held + f.snapped, 0, "{f:?}");
        assert!(f.interpolated > 30);
    }

    #[test]
    fn three_lost_snapshots_are_extrapolated_then_rejoined_without_a_jump() {
        let f = across_a_gap(&[10, 11, 12]);
        assert!(f.extrapolated > 0, "{f:?}");
        assert_eq!(f.held + f.snapped, 0, "{f:?}");
        assert_eq!(f.corrections, 0, "a straight line was guessed right");
    }

    #[test]
    fn missing_data_is_extrapolated_up_to_the_bound_then_held_and_counted() {
        const OFFSET: u64 = 2 * MS;
        const DELAY: u64 = 50 * MS;
        let mut interp = Interpolator::new(fixed(DELAY));
        for e in stream(0, 0..6, P, |s| line(P0, V, s), |_, t| Some(t + OFFSET)) {
            interp.push(e.id, e.tick, e.tick_ns, e.arrival, e.pos);
        }
        // Entity 1: one snapshot only.
        interp.push(1, 3, T0 + 3 * P, T0 + 3 * P + OFFSET, [7.0, 7.0, 7.0]);
        let t5 = T0 + 5 * P;
        let max = DEFAULT_MAX_EXTRAPOLATION_NS;
        let renders = [
            (t5 - P / 2, SampleMode::Interpolated),
            (t5, SampleMode::Interpolated),
            (t5 + MS, SampleMode::Extrapolated),
            (t5 + 100 * MS, SampleMode::Extrapolated),
            (t5 + max, SampleMode::Extrapolated),
            (t5 + max + 1, SampleMode::Held),
            (t5 + S, SampleMode::Held),
            (t5 + 10 * S, SampleMode::Held),
        ];
        let mut out = Vec::new();
        for (t, mode) in renders {
            interp.sample(t + OFFSET + DELAY, &mut out);
            assert_eq!(out.len(), 2);
            let (moving, still) = (&out[0], &out[1]);
            assert_eq!(moving.mode, mode, "at t5 + {} ns", t as i64 - t5 as i64);
            let want = line(P0, V, secs(t.min(t5 + max)));
            assert!(near(pos(moving), want, 1e-4), "{moving:?}, want {want:?}");
            assert_eq!((still.id, pos(still)), (1, [7.0; 3]));
            assert_eq!(still.mode, SampleMode::Held);
        }
        let f = interp.figures();
        assert_eq!(
            (f.interpolated, f.extrapolated, f.held, f.snapped),
            (2, 3, 3 + renders.len() as u64, 0),
            "{f:?}"
        );
        assert_eq!(f.corrections, 0);
    }

    #[test]
    fn a_teleport_is_snapped_not_slid_and_counted_once() {
        const OFFSET: u64 = MS;
        const DELAY: u64 = 50 * MS;
        let mut interp = Interpolator::new(fixed(DELAY));
        let x = |tick: u64| {
            if tick < 4 {
                tick as f32
            } else {
                100.0 + tick as f32
            }
        };
        let events: Vec<Event> = (0..10)
            .map(|tick| Event {
                arrival: T0 + tick * P + OFFSET,
                id: 0,
                tick,
                tick_ns: T0 + tick * P,
                pos: [x(tick), 0.0, 0.0],
            })
            .collect();
        let frames = simulate(
            &mut interp,
            events,
            every(T0 + OFFSET + DELAY, T0 + 9 * P + OFFSET, 2 * MS),
        );
        let tick_at = |t: u64| (t - T0) as f64 / P as f64;
        let mut snapped = 0;
        for f in &frames {
            let s = &f.samples[0];
            let k = tick_at(f.t);
            if (3.0..4.0).contains(&k) {
                assert_eq!((s.x, s.mode), (3.0, SampleMode::Snapped), "tick {k}");
                snapped += 1;
            } else {
                let want = if k < 3.0 { k } else { 100.0 + k };
                assert!((f64::from(s.x) - want).abs() < 1e-4, "{s:?} at tick {k}");
                assert_eq!(s.mode, SampleMode::Interpolated, "tick {k}");
            }
        }
        assert!(snapped >= 8);
        let f = interp.figures();
        assert_eq!((f.teleports, f.snapped), (1, snapped), "{f:?}");
        assert_eq!(f.corrections, 0);
        // A teleport at the newest snapshot is not extrapolated across.
        let mut interp = Interpolator::new(fixed(DELAY));
        for tick in 0..5 {
            let t = T0 + tick * P;
            interp.push(0, tick, t, t + OFFSET, [x(tick), 0.0, 0.0]);
        }
        let mut out = Vec::new();
        interp.sample(T0 + 4 * P + 30 * MS + OFFSET + DELAY, &mut out);
        assert_eq!((out[0].x, out[0].mode), (104.0, SampleMode::Held));
    }

    /// The x of every frame of two entities moving at 10 units/s, frames at
    /// 60 fps at the same sender-clock times whatever the receiver's clock;
    /// checks the frame-to-frame continuity on the way.
    fn sixty_fps(clock_ahead: u64, jitter_ns: u64, loss: f64, seed: u64) -> Vec<[f32; 3]> {
        const TRANSIT: u64 = 20 * MS;
        const SPEED: f64 = 10.0;
        let mut rng = StdRng::seed_from_u64(seed);
        let paths: [[f64; 3]; 2] = [[SPEED, 0.0, 0.0], [0.0, SPEED * 0.6, SPEED * 0.8]];
        let mut events = Vec::new();
        for tick in 0..1200 {
            for (id, v) in paths.iter().enumerate() {
                if rng.random_bool(loss) {
                    continue;
                }
                let tick_ns = T0 + tick * P;
                events.push(Event {
                    arrival: tick_ns + clock_ahead + TRANSIT + rng.random_range(0..=jitter_ns),
                    id: id as u32,
                    tick,
                    tick_ns,
                    pos: line([0.0; 3], *v, secs(tick_ns)),
                });
            }
        }
        let mut interp = Interpolator::new(InterpolationConfig::default());
        let start = T0 + clock_ahead + TRANSIT + 100 * MS + 7 * MS;
        let frames = simulate(&mut interp, events, every(start, start + 19 * S, P));
        let bound = (SPEED * P as f64 / 1e9 * 1.5) as f32;
        for w in frames.windows(2) {
            for (a, b) in w[0].samples.iter().zip(&w[1].samples) {
                let step = length(sub(pos(b), pos(a)));
                assert!(step <= bound, "{a:?} to {b:?}: {step} > {bound}");
            }
        }
        let f = interp.figures();
        assert_eq!(f.held + f.snapped + f.teleports, 0, "{f:?}");
        frames.iter().map(|f| pos(&f.samples[0])).collect()
    }

    #[test]
    fn clock_offset_jitter_and_loss_change_the_picture_by_no_more_than_the_jitter() {
        let ideal = sixty_fps(0, 0, 0.0, 1);
        let skewed = sixty_fps(5 * S, 0, 0.0, 1);
        assert_eq!(ideal, skewed, "a clock offset alone changes nothing");
        let rough = sixty_fps(5 * S, 3 * MS, 0.05, 2);
        // After the first half second, a frame is drawn at most the 3 ms of
        // jitter (30 mm at 10 units/s) away from where the ideal link draws it.
        for (k, (a, b)) in ideal.iter().zip(&rough).enumerate().skip(30) {
            assert!(near(*a, *b, 0.03 + 1e-3), "frame {k}: {a:?} against {b:?}");
        }
    }

    /// The target delay after 10 s of a 60 Hz stream with arrival jitter
    /// uniform in `0..=jitter_ns`.
    fn delay_after(config: InterpolationConfig, jitter_ns: u64) -> (Interpolator, u64) {
        let mut rng = StdRng::seed_from_u64(3);
        let mut interp = Interpolator::new(config);
        let mut events = stream(
            0,
            0..600,
            P,
            |_| [0.0; 3],
            |_, t| Some(t + 10 * MS + rng.random_range(0..=jitter_ns)),
        );
        events.sort_by_key(|e| e.arrival);
        for e in events {
            interp.push(e.id, e.tick, e.tick_ns, e.arrival, e.pos);
        }
        let delay = interp.target_delay_ns();
        (interp, delay)
    }

    #[test]
    fn the_adaptive_delay_grows_with_the_jitter_and_shrinks_slowly() {
        let adaptive = InterpolationConfig {
            adaptive: true,
            ..InterpolationConfig::default()
        };
        let floor = 2 * P + DEFAULT_JITTER_MARGIN_NS;
        let (low, low_delay) = delay_after(adaptive, MS);
        assert!(
            low.jitter_ns() > 0 && low.jitter_ns() < MS,
            "{}",
            low.jitter_ns()
        );
        assert_eq!(low_delay, floor, "1 ms of jitter stays under the margin");
        let (mut high, high_delay) = delay_after(adaptive, 20 * MS);
        assert!(high.jitter_ns() > 4 * MS, "{}", high.jitter_ns());
        // 3 J, within the cap of four periods.
        assert!(
            (2 * P + 12 * MS..=2 * P + 4 * P).contains(&high_delay),
            "{high_delay}"
        );
        let (_, fixed_delay) = delay_after(InterpolationConfig::default(), 20 * MS);
        assert_eq!(fixed_delay, floor, "not adaptive: the margin is fixed");
        // The jitter stops: the delay comes down tick by tick, slowly.
        let mut delays = Vec::new();
        for tick in 600..2400 {
            let t = T0 + tick * P;
            high.push(0, tick, t, t + 10 * MS, [0.0; 3]);
            delays.push(high.target_delay_ns());
        }
        assert!(delays.windows(2).all(|w| w[1] <= w[0]), "never up");
        assert!(
            delays[6] - floor >= (high_delay - floor) * 9 / 10,
            "not at once"
        );
        assert_eq!(*delays.last().unwrap(), floor, "back to the floor in 30 s");
    }

    #[test]
    fn the_default_delay_is_two_periods_and_the_margin_once_the_period_is_learned() {
        let mut interp = Interpolator::new(InterpolationConfig::default());
        assert_eq!(interp.period_ns(), DEFAULT_PERIOD_NS);
        assert_eq!(interp.delay_ns(), 2 * DEFAULT_PERIOD_NS + 4 * MS);
        // 30 Hz, with the second tick lost: learned from the tick numbers.
        const P30: u64 = 33_333_333;
        for tick in [0, 2, 3] {
            let t = T0 + tick * P30;
            interp.push(0, tick, t, t + MS, [0.0; 3]);
        }
        assert_eq!(interp.period_ns(), P30);
        assert_eq!(interp.delay_ns(), 2 * P30 + DEFAULT_JITTER_MARGIN_NS);
        assert_eq!(interp.target_delay_ns(), interp.delay_ns());
        let margin = InterpolationConfig {
            jitter_margin_ns: 9 * MS,
            ..InterpolationConfig::default()
        };
        assert_eq!(Interpolator::new(margin).delay_ns(), 2 * P + 9 * MS);
        assert_eq!(Interpolator::new(fixed(77)).delay_ns(), 77);
    }

    #[test]
    fn a_longer_path_is_followed_by_slewing_not_jumping() {
        // At 6 s the path's delay grows by 50 ms: the offset estimate rises
        // when the window has forgotten the shorter path, and the render
        // clock then runs slow until the lag has caught up.
        const SPEED: f64 = 10.0;
        let mut interp = Interpolator::new(InterpolationConfig::default());
        let events = stream(
            0,
            0..600,
            P,
            |s| line([0.0; 3], [SPEED, 0.0, 0.0], s),
            |tick, t| Some(t + if tick < 360 { 5 * MS } else { 55 * MS }),
        );
        let frames = simulate(&mut interp, events, every(T0 + 100 * MS, T0 + 9 * S, P));
        let mut slowest = u64::MAX;
        for w in frames.windows(2) {
            let dt = w[1].t - w[0].t;
            slowest = slowest.min(dt);
            assert!(dt >= P - P / SLEW_DIVISOR, "the render clock ran at {dt}");
            let step = (w[1].samples[0].x - w[0].samples[0].x).abs();
            assert!(
                step <= (SPEED * 1.1 * P as f64 / 1e9) as f32 + 1e-4,
                "{step}"
            );
        }
        assert_eq!(slowest, P - P / SLEW_DIVISOR, "it did slew");
        assert_eq!(interp.delay_ns(), 2 * P + DEFAULT_JITTER_MARGIN_NS);
        let f = interp.figures();
        assert!(f.extrapolated > 0 && f.held == 0, "{f:?}");
    }

    #[test]
    fn a_wrong_guess_is_corrected_by_sliding_not_jumping() {
        // Out at 10 units/s to tick 20, back after it; ticks 21..=24 lost,
        // so the frames past tick 20 are extrapolated outwards.
        const SPEED: f64 = 10.0;
        const OFFSET: u64 = 5 * MS;
        let out_and_back = |s: f64| {
            let turn = 20.0 * P as f64 / 1e9;
            [(SPEED * (turn - (s - turn).abs())) as f32, 0.0, 0.0]
        };
        let mut interp = Interpolator::new(InterpolationConfig::default());
        let events = stream(0, 0..120, P, out_and_back, |tick, t| {
            (!(21..=24).contains(&tick)).then_some(t + OFFSET)
        });
        let frames = simulate(&mut interp, events, every(T0 + 60 * MS, T0 + 118 * P, P));
        let frame_motion = (SPEED * P as f64 / 1e9) as f32;
        let mut worst_guess = 0.0f32;
        for w in frames.windows(2) {
            let (a, b) = (&w[0].samples[0], &w[1].samples[0]);
            if a.mode == SampleMode::Extrapolated {
                worst_guess = worst_guess.max(a.x - out_and_back(secs(w[0].t))[0]);
            }
            assert!((b.x - a.x).abs() <= 2.0 * frame_motion, "{a:?} to {b:?}");
        }
        assert!(
            worst_guess > 3.0 * frame_motion,
            "the guess was wrong: {worst_guess}"
        );
        assert_eq!(interp.figures().corrections, 1);
        // And the correction has faded out (ln(0.9 / floor) = 9 time
        // constants, a second) by the end: back on the true path.
        let last = frames.last().unwrap();
        let want = out_and_back(secs(last.t));
        assert!(
            near(pos(&last.samples[0]), want, 1e-3),
            "{:?}, want {want:?}",
            last.samples[0]
        );
        assert!(!interp.track(0).unwrap().correcting);
    }

    #[test]
    fn a_single_snapshot_joined_by_a_second_slides_onto_the_line() {
        let mut interp = Interpolator::new(fixed(10 * MS));
        let mut out = Vec::new();
        interp.push(0, 0, T0, T0, [0.0; 3]);
        interp.sample(T0 + 30 * MS, &mut out); // held, 20 ms past it
        assert_eq!((out[0].x, out[0].mode), (0.0, SampleMode::Held));
        interp.push(0, 3, T0 + 3 * P, T0 + 3 * P, [3.0, 0.0, 0.0]);
        interp.sample(T0 + 30 * MS + P, &mut out);
        // The line from 0 to 3 over 50 ms puts the last frame (20 ms) at
        // 1.2 and this one at 2.2; it was drawn at 0, so it starts 1.2
        // short, and that fades.
        let x = |t: u64| 3.0 * (t - T0) as f64 / (3 * P) as f64;
        let keep = (-(P as f64) / CORRECTION_TAU_NS as f64).exp();
        let want = x(T0 + 20 * MS + P) - x(T0 + 20 * MS) * keep;
        assert_eq!(out[0].mode, SampleMode::Interpolated);
        assert!(
            (f64::from(out[0].x) - want).abs() < 1e-4,
            "{:?}, want {want}",
            out[0]
        );
        assert_eq!(interp.figures().corrections, 1);
    }

    #[test]
    fn remove_forgets_and_stale_or_duplicate_pushes_are_ignored() {
        let mut interp = Interpolator::new(fixed(0));
        assert!(interp.is_empty());
        interp.push(3, 1, T0 + P, T0 + P, [1.0; 3]);
        interp.push(3, 2, T0 + 2 * P, T0 + 2 * P, [2.0; 3]);
        interp.push(3, 2, T0 + 2 * P, T0 + 3 * P, [9.0; 3]); // duplicate
        interp.push(3, 1, T0 + P, T0 + 3 * P, [9.0; 3]); // older
        interp.push(3, 5, T0 + 2 * P, T0 + 3 * P, [9.0; 3]); // no later in time
        assert_eq!(interp.figures().ignored, 3);
        assert_eq!(interp.len(), 1);
        let mut out = Vec::new();
        interp.sample(T0 + 2 * P, &mut out);
        assert_eq!((out[0].id, pos(&out[0])), (3, [2.0; 3]));
        interp.push(1, 2, T0 + 2 * P, T0 + 2 * P, [5.0; 3]);
        interp.sample(T0 + 2 * P, &mut out);
        assert_eq!(
            out.iter().map(|s| s.id).collect::<Vec<_>>(),
            [1, 3],
            "id order"
        );
        interp.remove(3);
        interp.remove(3);
        interp.remove(99);
        assert_eq!(interp.len(), 1);
        interp.sample(T0 + 2 * P, &mut out);
        assert_eq!(out.iter().map(|s| s.id).collect::<Vec<_>>(), [1]);
        // Forgotten: an older tick starts it afresh.
        interp.push(3, 1, T0 + P, T0 + 3 * P, [4.0; 3]);
        interp.sample(T0 + 3 * P, &mut out);
        assert_eq!((out[1].id, pos(&out[1])), (3, [4.0; 3]));
        assert_eq!(interp.len(), 2);
        assert_eq!(interp.figures().ignored, 3);
    }

    #[test]
    fn a_restarted_sender_is_learned_afresh() {
        let mut interp = Interpolator::new(InterpolationConfig::default());
        for tick in 500..504 {
            let t = T0 + tick * P;
            interp.push(0, tick, t, t + MS, [1.0; 3]);
            interp.push(1, tick, t, t + MS, [1.0; 3]);
        }
        // Tick 0 again, later in the sender's time, at 30 Hz.
        let t = T0 + 600 * P;
        interp.push(1, 0, t, t + MS, [2.0; 3]);
        interp.push(1, 1, t + 2 * P, t + 2 * P + MS, [3.0; 3]);
        assert_eq!(interp.len(), 1, "entity 0 belonged to the old session");
        assert_eq!(interp.period_ns(), 2 * P);
        assert_eq!(interp.figures().restarts, 1);
        let mut out = Vec::new();
        interp.sample(t + 2 * P + MS, &mut out);
        assert_eq!(out.len(), 1);
        interp.reset();
        assert!(interp.is_empty());
        interp.sample(t + 3 * P, &mut out);
        assert!(out.is_empty());
        assert_eq!(interp.figures().restarts, 2);
    }

    #[test]
    fn ids_beyond_the_capacity_are_counted_not_kept() {
        let mut interp = Interpolator::new(InterpolationConfig {
            capacity: 10,
            ..InterpolationConfig::default()
        });
        interp.push(10, 1, T0, T0, [0.0; 3]);
        interp.push(u32::MAX, 1, T0, T0, [0.0; 3]);
        interp.push(9, 1, T0, T0, [0.0; 3]);
        assert_eq!(interp.figures().rejected, 2);
        assert_eq!((interp.len(), interp.pages.len()), (1, 1));
    }

    /// A despawned entity is drawn until the render time reaches the tick
    /// it left at, a render delay after it left, so its last moves are
    /// shown; then it is forgotten. Back before then, it is a new entity:
    /// drawn where it came back, never slid to from where it was.
    #[test]
    fn a_despawned_entity_is_drawn_until_the_render_time_reaches_its_departure() {
        // Offset 0 (arrival = tick time), delay two periods.
        let mut interp = Interpolator::new(fixed(2 * P));
        let at = |tick: u64| T0 + tick * P;
        for tick in 0..=5 {
            if tick < 5 {
                interp.push(1, tick, at(tick), at(tick), [tick as f32, 0.0, 0.0]);
            }
            interp.push(2, tick, at(tick), at(tick), [0.0, tick as f32, 0.0]);
        }
        // A frame of tick 9, late, is the first seen without entity 1: it
        // goes a period after its newest snapshot (tick 4), at tick 5.
        interp.remove_at(1, at(9));
        let mut out = Vec::new();
        let ids = |out: &[Sample]| out.iter().map(|s| s.id).collect::<Vec<_>>();
        // Render time tick 3: entity 1 is still drawn, on its path.
        interp.sample(at(5), &mut out);
        assert_eq!(ids(&out), [1, 2]);
        assert!((out[0].x - 3.0).abs() < 1e-4, "{:?}", out[0]);
        assert_eq!(out[0].mode, SampleMode::Interpolated);
        // Render time tick 4.5: its last snapshot passed, still drawn.
        interp.sample(at(6) + P / 2, &mut out);
        assert_eq!(ids(&out), [1, 2]);
        // Render time tick 5, the tick it left at: gone.
        interp.sample(at(7), &mut out);
        assert_eq!(ids(&out), [2]);
        assert_eq!(interp.len(), 1);
        // Entity 2 leaves and is back, far away, before the render time
        // got there: a new entity, held where it came back.
        interp.remove_at(2, at(8));
        interp.push(2, 6, at(6) + 1, at(6) + 1, [50.0, 50.0, 0.0]);
        interp.sample(at(7), &mut out);
        assert_eq!(ids(&out), [2]);
        assert_eq!((out[0].x, out[0].y), (50.0, 50.0));
        assert_eq!(out[0].mode, SampleMode::Held);
        assert_eq!(
            interp.figures().teleports,
            0,
            "not a teleport: a new entity"
        );
    }

    /// Memory follows the ids in use: one entity of a high id costs one
    /// page, not a track for every id below it, and its page goes when it
    /// leaves; samples come out in id order across pages.
    #[test]
    fn history_is_paged_by_the_ids_in_use() {
        let mut interp = Interpolator::new(fixed(0));
        let high = DEFAULT_CAPACITY - 1;
        interp.push(high, 1, T0, T0, [1.0; 3]);
        interp.push(3, 1, T0, T0, [2.0; 3]);
        let pages = interp.pages.iter().filter(|p| p.is_some()).count();
        assert_eq!((interp.len(), pages), (2, 2));
        let mut out = Vec::new();
        interp.sample(T0, &mut out);
        let ids: Vec<u32> = out.iter().map(|s| s.id).collect();
        assert_eq!(ids, [3, high]);
        interp.remove(high);
        assert!(interp.pages[high as usize / TRACK_PAGE].is_none());
        interp.remove(high); // gone already: nothing
        assert_eq!(interp.len(), 1);
        interp.sample(T0, &mut out);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn pushes_after_warm_up_do_not_allocate_and_the_ring_keeps_the_newest() {
        let mut interp = Interpolator::new(fixed(0));
        for tick in 0..3 * HISTORY as u64 {
            interp.push(4, tick, T0 + tick * P, T0 + tick * P, [tick as f32; 3]);
        }
        let track = interp.track(4).unwrap();
        let ticks: Vec<u64> = (0..usize::from(track.len))
            .map(|i| (track.get(i).tick_ns - T0) / P)
            .collect();
        assert_eq!(
            ticks,
            (2 * HISTORY as u64..3 * HISTORY as u64).collect::<Vec<_>>()
        );
        let page = interp.pages[0].as_ref().unwrap().tracks.as_ptr();
        for tick in 3 * HISTORY as u64..100 {
            interp.push(4, tick, T0 + tick * P, T0 + tick * P, [0.0; 3]);
        }
        assert_eq!(interp.pages[0].as_ref().unwrap().tracks.as_ptr(), page);
    }

    #[test]
    fn a_teleport_survives_the_ring_wrapping_and_goes_with_its_slot() {
        // Delay and offset 0: the render time is `now`.
        let mut interp = Interpolator::new(fixed(0));
        let x = |tick: u64| {
            if tick < 9 {
                tick as f32
            } else {
                50.0 + tick as f32
            }
        };
        let push = |interp: &mut Interpolator, tick: u64| {
            let t = T0 + tick * P;
            interp.push(0, tick, t, t, [x(tick), 0.0, 0.0]);
        };
        for tick in 0..12 {
            push(&mut interp, tick); // wraps: tick 9 is in slot 1
        }
        let mut out = Vec::new();
        let mut at = |interp: &mut Interpolator, tick: f64| {
            interp.sample(T0 + (tick * P as f64) as u64, &mut out);
            (out[0].x, out[0].mode)
        };
        assert_eq!(at(&mut interp, 8.5), (8.0, SampleMode::Snapped));
        // At the later's time, the pair after it takes over.
        assert_eq!(at(&mut interp, 9.0), (59.0, SampleMode::Interpolated));
        assert_eq!(at(&mut interp, 10.5), (60.5, SampleMode::Interpolated));
        for tick in 12..20 {
            push(&mut interp, tick); // slot 1 now holds tick 17
        }
        assert_eq!(at(&mut interp, 16.5), (66.5, SampleMode::Interpolated));
        assert_eq!(interp.figures().teleports, 1);
    }

    #[test]
    fn samples_have_the_c_layout() {
        assert_eq!(std::mem::size_of::<Sample>(), 20);
        assert_eq!(std::mem::align_of::<Sample>(), 4);
        assert_eq!(std::mem::size_of::<SampleMode>(), 4);
        let modes = [
            SampleMode::Interpolated,
            SampleMode::Extrapolated,
            SampleMode::Held,
            SampleMode::Snapped,
        ];
        assert_eq!(modes.map(|m| m as u32), [0, 1, 2, 3]);
        assert_eq!(std::mem::offset_of!(Sample, mode), 16);
        assert_eq!(Sample::default().mode, SampleMode::Interpolated);
    }

    #[test]
    fn nonsense_times_do_not_panic() {
        let mut interp = Interpolator::new(InterpolationConfig::default());
        let mut out = Vec::new();
        interp.sample(0, &mut out);
        interp.push(0, u64::MAX, u64::MAX, 0, [f32::NAN; 3]);
        interp.push(1, 1, 1, u64::MAX, [f32::INFINITY; 3]);
        interp.push(1, 2, 2, 0, [0.0; 3]);
        for now in [0, u64::MAX, 1, u64::MAX / 2] {
            interp.sample(now, &mut out);
            assert_eq!(out.len(), interp.len());
        }
    }
}
