//! The broadcaster's built-in worlds: `N` entities moving deterministically
//! from a seed, sans-IO and clock-free. [`SimWorld`] is either of two
//! [`WorldKind`]s:
//!
//! * [`WorldKind::Linear`] (the default, described below): entities gliding
//!   at constant velocity around a box, reflecting off its walls, their
//!   positions a closed-form function of the tick number, computed in
//!   integers. Easy on a dead-reckoning predictor: between bounces it is
//!   exact.
//! * [`WorldKind::Players`] ([`players`]): entities running about a ground
//!   plane like a game's avatars, at up to 10 units/s, turning, speeding up
//!   and slowing down with a bounded acceleration, and about a fifth of them
//!   standing still at any time; stepped leg by leg, still a pure function
//!   of `(seed, id, tick / rate)`.
//!
//! The rest of these docs are the linear world's.
//!
//! # Guarantees
//!
//! * **Reproducible everywhere.** Each entity's start and velocity come from
//!   [`splitmix64`] over `(seed, id)` (defined below, not from `rand`, whose
//!   generators may change between versions), and a position is integer
//!   arithmetic plus IEEE-754 operations that are correctly rounded
//!   everywhere (no `sin`, no `fmod`, no fused multiply-add), so a seed and
//!   a rate name the same world, bit for bit, in every build on every
//!   platform.
//! * **Closed form.** Each coordinate is a 32-bit *phase* that runs once
//!   around `2 × L` (the box side `L` there and back) in 2^32 steps. At
//!   tick `k` of a schedule at `r` Hz it is `φ(k) = φ0 + k × Δ (mod 2^32)`,
//!   where `Δ`, the steps per tick, is the entity's velocity over `r`
//!   rounded to a whole step (velocity × 2^31 / L / r, to nearest, halves
//!   away from zero). The position folds the phase back and forth into the
//!   box: `fold(φ) = min(φ, 2^32 − φ)` steps, rounded to the nearest `f32`,
//!   times `L / 2^31` (exact in `f32`), rounded to the nearest `f32`. The
//!   same tick always gives the same positions, bit for bit, whatever was
//!   computed before, for any `k` (the phase wraps exactly; a `u64` tick
//!   never overflows anything).
//! * **Bounded.** Every coordinate lies in `0..=L` of [`WORLD_SIZE`], for any
//!   tick (well within `wire::MAX_COORD`): `fold(φ) ≤ 2^31`, whose product
//!   with `L / 2^31` is `L` exactly.
//! * **Smooth.** The fold is 1-Lipschitz, so between consecutive ticks an
//!   entity moves at most `|v| / r` along each axis, plus half a step
//!   (`L / 2^32`, under 2.4e-7 units) of velocity rounding, plus the two
//!   `f32` roundings at each end (each coordinate is within 9.0e-5 units
//!   of `fold(φ) × L / 2^31` at `L` = 1000, less on the smaller z side).
//! * **Cheap.** Per coordinate a wrapping multiply-add, an integer to
//!   float conversion, an absolute value and a multiply, with no branch,
//!   axis by axis over arrays, so the loop runs in SIMD lanes on the
//!   baseline x86-64 and Arm targets (1.2 to 1.5 ns an entity in
//!   `benches/sim.rs`); the per-rate steps are computed once and kept
//!   until the rate changes.
//!
//! # Parameters of entity `id`
//!
//! A splitmix64 generator is started at state `mix(seed) ^ id` (`mix` being
//! splitmix64's finaliser) and its first six outputs `u0..u5` give, for
//! axes `i = x, y, z`: the starting phase `φ0[i] = u_i >> 32` (uniform over
//! the box and over both directions of travel), and the velocity
//! `v[i] = (2 f(u_{3+i}) − 1) × MAX_SPEED[i]`, with `f(u) = (u >> 11) / 2^53`
//! a fraction in `[0, 1)`.

pub mod players;

use std::fmt;
use std::str::FromStr;

use crate::wire::Entity;

/// Which built-in world a [`SimWorld`] runs: `linear` or `players` as text
/// ([`FromStr`], [`Display`](fmt::Display)), the names the command line's
/// `--world` takes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum WorldKind {
    /// Constant velocities, reflecting off the walls of a 1000 × 1000 × 100
    /// box, up to 100 units/s: the closed form of this module's docs.
    #[default]
    Linear,
    /// Steering avatars on the ground plane of a 1000 × 1000 square, up to
    /// 10 units/s, accelerating at most 8 units/s², a fifth of them at rest
    /// at any time: see [`players`].
    Players,
}

impl WorldKind {
    /// Every kind, in the order the command line lists them.
    pub const ALL: [WorldKind; 2] = [WorldKind::Linear, WorldKind::Players];

    /// Its name: `linear` or `players`.
    pub fn name(self) -> &'static str {
        match self {
            WorldKind::Linear => "linear",
            WorldKind::Players => "players",
        }
    }
}

impl fmt::Display for WorldKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not a [`WorldKind`]'s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown world (expected linear or players)")]
pub struct UnknownWorld;

impl FromStr for WorldKind {
    type Err = UnknownWorld;

    /// `linear` or `players`, exactly (as [`WorldKind::name`] gives them).
    fn from_str(s: &str) -> Result<WorldKind, UnknownWorld> {
        WorldKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or(UnknownWorld)
    }
}

/// Sides of the box the entities move in, in world units: x, y, z.
pub const WORLD_SIZE: [f64; 3] = [1000.0, 1000.0, 100.0];
/// Largest speed along each axis, in world units per second: x, y, z.
pub const MAX_SPEED: [f64; 3] = [100.0, 100.0, 10.0];

/// Phase steps from one wall of the box to the other: a phase runs over
/// `2 × L` in 2^32 steps, so over `L` in 2^31.
const HALF_TURN: f64 = (1u64 << 31) as f64;

/// World units per phase step along each axis, `L / 2^31`, exact in f32
/// (each side is a small integer, divided by a power of two).
const UNIT_PER_STEP: [f32; 3] = [
    (WORLD_SIZE[0] / HALF_TURN) as f32,
    (WORLD_SIZE[1] / HALF_TURN) as f32,
    (WORLD_SIZE[2] / HALF_TURN) as f32,
];

/// splitmix64's increment: 2^64 / φ, odd.
const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// splitmix64's output function (Steele, Lea and Flood, 2014): a bijective
/// mix of all 64 bits.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One step of the splitmix64 generator: advances `state` and returns the
/// next output.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(GOLDEN_GAMMA);
    mix64(*state)
}

/// A 64-bit output taken as a fraction in `[0, 1)` (its top 53 bits).
pub(crate) fn unit(u: u64) -> f64 {
    (u >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// The fold: a phase taken back and forth into `0..=2^31` steps (the
/// triangle wave of period 2^32): `min(φ, 2^32 − φ)`, which is the
/// magnitude of the phase read as a signed 32-bit number.
#[cfg(test)]
fn fold(phase: u32) -> u32 {
    phase.min(phase.wrapping_neg())
}

/// A phase as a coordinate: the fold, rounded to the nearest f32, times
/// `L / 2^31` (exact), rounded to the nearest f32. Written as the absolute
/// value of the phase read as an `i32` and converted (the same number: the
/// conversion of -2^31 is exact, and its absolute value is 2^31), which is
/// one SIMD instruction each on every x86-64 and Arm target.
fn coordinate(phase: u32, unit_per_step: f32) -> f32 {
    ((phase as i32) as f32).abs() * unit_per_step
}

/// Where an entity starts and how it moves: its starting phase on each
/// axis, and its velocity in units per second.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Motion {
    phase0: [u32; 3],
    velocity: [f64; 3],
}

impl Motion {
    fn of(seed: u64, id: u32) -> Motion {
        let mut state = mix64(seed) ^ u64::from(id);
        let mut phase0 = [0; 3];
        let mut velocity = [0.0; 3];
        for p in &mut phase0 {
            *p = (splitmix64(&mut state) >> 32) as u32;
        }
        for (v, max) in velocity.iter_mut().zip(MAX_SPEED) {
            *v = (2.0 * unit(splitmix64(&mut state)) - 1.0) * max;
        }
        Motion { phase0, velocity }
    }

    /// Phase steps per tick at `rate_hz`, to the nearest step, as the
    /// wrapping `u32` a negative velocity is modulo 2^32.
    fn steps(&self, rate_hz: f64) -> [u32; 3] {
        let mut d = [0; 3];
        for i in 0..3 {
            let per_tick = self.velocity[i] * (HALF_TURN / WORLD_SIZE[i]) / rate_hz;
            // |per_tick| < 2^63 for any rate of 1 µHz or more; the cast to
            // u32 takes it modulo 2^32, which is what a phase is.
            d[i] = per_tick.round() as i64 as u32;
        }
        d
    }
}

/// Each entity's starting phase and steps per tick at the current rate,
/// axis by axis (one slice per axis, so the hot loop runs in SIMD lanes).
#[derive(Clone, Debug)]
struct Lanes {
    phase0: [Vec<u32>; 3],
    step: [Vec<u32>; 3],
    /// The coordinates of the tick being computed, axis by axis (scratch).
    at: [Vec<f32>; 3],
}

/// The linear world's state: each entity's motion, and its lanes at the
/// current rate.
#[derive(Clone, Debug)]
struct Linear {
    motions: Vec<Motion>,
    lanes: Lanes,
    /// The rate the lanes' steps are for (its bits; NaN never matches).
    lanes_rate: Option<u64>,
}

impl Linear {
    fn new(entities: u32, seed: u64) -> Linear {
        let motions: Vec<Motion> = (0..entities).map(|id| Motion::of(seed, id)).collect();
        let n = motions.len();
        Linear {
            lanes: Lanes {
                phase0: [0, 1, 2].map(|axis| motions.iter().map(|m| m.phase0[axis]).collect()),
                step: [0, 1, 2].map(|_| vec![0; n]),
                at: [0, 1, 2].map(|_| vec![0.0; n]),
            },
            motions,
            lanes_rate: None,
        }
    }

    fn positions_into(&mut self, tick: u64, rate_hz: f64, out: &mut Vec<Entity>) {
        let lanes = &mut self.lanes;
        if self.lanes_rate != Some(rate_hz.to_bits()) {
            for (i, m) in self.motions.iter().enumerate() {
                for (lane, d) in lanes.step.iter_mut().zip(m.steps(rate_hz)) {
                    lane[i] = d;
                }
            }
            self.lanes_rate = Some(rate_hz.to_bits());
        }
        // The phase is modulo 2^32, so only the tick modulo 2^32 matters.
        let k = tick as u32;
        for (((at, p0), d), unit) in lanes
            .at
            .iter_mut()
            .zip(&lanes.phase0)
            .zip(&lanes.step)
            .zip(UNIT_PER_STEP)
        {
            for ((c, &p0), &d) in at.iter_mut().zip(p0).zip(d) {
                *c = coordinate(p0.wrapping_add(k.wrapping_mul(d)), unit);
            }
        }
        let [x, y, z] = &lanes.at;
        out.clear();
        out.extend(
            x.iter()
                .zip(y)
                .zip(z)
                .zip(0u32..)
                .map(|(((&x, &y), &z), id)| Entity { id, x, y, z }),
        );
    }
}

/// The world of one kind or the other.
#[derive(Clone, Debug)]
enum Model {
    /// Boxed: its nine lane vectors make it eight times the players' size.
    Linear(Box<Linear>),
    Players(players::Players),
}

/// The simulated world: entities `0..N` whose positions are a pure function
/// of `(seed, tick, rate)`, moving as its [`WorldKind`] says. It keeps one
/// buffer of [`Entity`] records that [`SimWorld::positions`] refills, so
/// computing a tick allocates nothing; [`SimWorld::positions_into`] writes
/// into the caller's buffer instead.
#[derive(Clone, Debug)]
pub struct SimWorld {
    model: Model,
    out: Vec<Entity>,
}

impl SimWorld {
    /// A [`WorldKind::Linear`] world of `entities` entities (ids
    /// `0..entities`) drawn from `seed`.
    pub fn new(entities: u32, seed: u64) -> SimWorld {
        SimWorld::with_kind(WorldKind::Linear, entities, seed)
    }

    /// A world of `kind` of `entities` entities (ids `0..entities`) drawn
    /// from `seed`.
    pub fn with_kind(kind: WorldKind, entities: u32, seed: u64) -> SimWorld {
        SimWorld {
            model: match kind {
                WorldKind::Linear => Model::Linear(Box::new(Linear::new(entities, seed))),
                WorldKind::Players => Model::Players(players::Players::new(entities, seed)),
            },
            out: Vec::with_capacity(entities as usize),
        }
    }

    /// Which world this is.
    pub fn kind(&self) -> WorldKind {
        match self.model {
            Model::Linear(_) => WorldKind::Linear,
            Model::Players(_) => WorldKind::Players,
        }
    }

    /// How many entities the world has.
    pub fn len(&self) -> usize {
        match &self.model {
            Model::Linear(l) => l.motions.len(),
            Model::Players(p) => p.len(),
        }
    }

    /// Whether the world has no entities.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every entity's position at `tick` of a schedule running at `rate_hz`
    /// (time `tick / rate_hz` seconds), in id order.
    ///
    /// The linear world's cost is the same for any tick. The players
    /// world's grows with the time since the last call, or since time 0 for
    /// a tick earlier than the last (see [`players`]: "Cost"): it is made
    /// for ticks that go forward, as a broadcaster's do, skips included.
    pub fn positions(&mut self, tick: u64, rate_hz: f64) -> &[Entity] {
        let mut out = std::mem::take(&mut self.out);
        self.positions_into(tick, rate_hz, &mut out);
        self.out = out;
        &self.out
    }

    /// [`SimWorld::positions`] written into `out` (cleared first), for a
    /// caller that keeps its own buffer, such as the sender's copy of a tick
    /// ([`Sender::push_tick_with`](crate::core::sender::Sender::push_tick_with)):
    /// the positions are then computed where they are encoded from, with no
    /// copy between. Allocates only if `out` is too small.
    pub fn positions_into(&mut self, tick: u64, rate_hz: f64, out: &mut Vec<Entity>) {
        match &mut self.model {
            Model::Linear(l) => l.positions_into(tick, rate_hz, out),
            Model::Players(p) => p.positions_into(tick, rate_hz, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(es: &[Entity]) -> Vec<[u32; 4]> {
        es.iter()
            .map(|e| [e.id, e.x.to_bits(), e.y.to_bits(), e.z.to_bits()])
            .collect()
    }

    #[test]
    fn world_kinds_read_and_print_their_names() {
        for kind in WorldKind::ALL {
            assert_eq!(kind.to_string().parse::<WorldKind>(), Ok(kind));
            assert_eq!(SimWorld::with_kind(kind, 3, 1).kind(), kind);
        }
        assert_eq!("players".parse(), Ok(WorldKind::Players));
        assert_eq!(WorldKind::default(), WorldKind::Linear);
        for bad in ["", "Linear", "player", " players", "nope"] {
            assert_eq!(bad.parse::<WorldKind>(), Err(UnknownWorld), "{bad:?}");
        }
        assert_eq!(
            UnknownWorld.to_string(),
            "unknown world (expected linear or players)"
        );
        // `new` is the linear world, as it always was.
        let mut a = SimWorld::new(20, 3);
        let mut b = SimWorld::with_kind(WorldKind::Linear, 20, 3);
        assert_eq!(a.kind(), WorldKind::Linear);
        assert_eq!(bits(a.positions(77, 60.0)), bits(b.positions(77, 60.0)));
        assert_eq!((a.len(), a.is_empty()), (20, false));
        let empty = SimWorld::with_kind(WorldKind::Players, 0, 3);
        assert_eq!((empty.len(), empty.is_empty()), (0, true));
    }

    #[test]
    fn splitmix64_matches_the_reference_outputs() {
        // The reference stream in rand_xoshiro's `splitmix64.rs` tests,
        // produced there with Vigna's splitmix64.c.
        let mut s = 1_477_776_061_723_855_037u64;
        let got: Vec<u64> = (0..5).map(|_| splitmix64(&mut s)).collect();
        assert_eq!(
            got,
            [
                1_985_237_415_132_408_290,
                2_979_275_885_539_914_483,
                13_511_426_838_097_143_398,
                8_488_337_342_461_049_707,
                15_141_737_807_933_549_159,
            ]
        );
    }

    /// The position the module docs define, written out the long way in
    /// u64 and f64, beside the code's u32 wrapping arithmetic.
    fn by_the_docs(seed: u64, id: u32, tick: u64, rate_hz: f64) -> [f32; 3] {
        let m = Motion::of(seed, id);
        let mut p = [0.0; 3];
        for i in 0..3 {
            let delta = (m.velocity[i] * (HALF_TURN / WORLD_SIZE[i]) / rate_hz).round() as i64;
            let turn = 1i128 << 32;
            let phase = (i128::from(m.phase0[i]) + i128::from(tick) * i128::from(delta))
                .rem_euclid(turn) as u64;
            let folded = phase.min((1u64 << 32) - phase);
            p[i] = folded as f32 * (WORLD_SIZE[i] / HALF_TURN) as f32;
        }
        p
    }

    #[test]
    fn positions_are_the_documented_closed_form() {
        let mut w = SimWorld::new(50, 11);
        for rate in [60.0, 7.5, 10_000.0, 0.001] {
            for tick in [0u64, 1, 59, 1 << 32, (1 << 32) + 7, u64::MAX] {
                for e in w.positions(tick, rate) {
                    let want = by_the_docs(11, e.id, tick, rate);
                    assert_eq!(
                        [e.x, e.y, e.z].map(f32::to_bits),
                        want.map(f32::to_bits),
                        "rate {rate} tick {tick} id {}",
                        e.id
                    );
                }
            }
        }
    }

    /// A few positions pinned, so a change to the world (which every
    /// receiver test compares against) is seen here first, and deliberately.
    #[test]
    fn seed_1_is_the_same_world_as_ever() {
        let mut w = SimWorld::new(3, 1);
        let got: Vec<[u32; 4]> = [0u64, 1, 1_000_000_007]
            .into_iter()
            .flat_map(|tick| bits(w.positions(tick, 60.0)))
            .collect();
        assert_eq!(got, PINNED, "{got:#x?}");
    }

    /// Seed 1, ids 0..3, at ticks 0, 1 and 1,000,000,007 of 60 Hz: id and the
    /// f32 bits of x, y, z (the values to 4 decimals in the comments).
    const PINNED: [[u32; 4]; 9] = [
        [0, 0x43fa4074, 0x443a325c, 0x42af5046], // tick 0: (500.5035, 744.7869, 87.6568)
        [1, 0x446e0506, 0x4160d398, 0x417cefd3], // tick 0: (952.0785, 14.0517, 15.8086)
        [2, 0x43ba5884, 0x43c950c5, 0x42367118], // tick 0: (372.6915, 402.6310, 45.6104)
        [0, 0x43f97eb1, 0x4439f2cc, 0x42af609e], // tick 1: (498.9898, 743.7937, 87.6887)
        [1, 0x446dab01, 0x416d4d85, 0x417a59e6], // tick 1: (950.6719, 14.8314, 15.6469)
        [2, 0x43ba6f56, 0x43c9c3e7, 0x4236fab4], // tick 1: (372.8698, 403.5305, 45.7448)
        [0, 0x43093952, 0x438df89a, 0x423e8179], // tick 1000000007: (137.2239, 283.9422, 47.6264)
        [1, 0x43e4e537, 0x430f407b, 0x419158c0], // tick 1000000007: (457.7907, 143.2519, 18.1683)
        [2, 0x446dbc32, 0x446fae00, 0x4093fd02], // tick 1000000007: (950.9406, 958.7188, 4.6246)
    ];

    #[test]
    fn same_seed_and_tick_give_the_same_bytes() {
        let mut a = SimWorld::new(500, 42);
        let mut b = SimWorld::new(500, 42);
        // b computes other ticks and rates first: positions depend on the
        // tick and rate alone.
        b.positions(999, 60.0);
        b.positions(3, 30.0);
        for tick in [0, 1, 1234, 1_000_000_007] {
            assert_eq!(bits(a.positions(tick, 60.0)), bits(b.positions(tick, 60.0)));
        }
        let ids: Vec<u32> = a.positions(0, 60.0).iter().map(|e| e.id).collect();
        assert_eq!(ids, (0..500).collect::<Vec<u32>>());
    }

    #[test]
    fn positions_into_writes_what_positions_returns() {
        let mut w = SimWorld::new(300, 5);
        let mut out = vec![Entity::default(); 7];
        for (tick, rate) in [(0, 60.0), (77, 60.0), (77, 120.0)] {
            w.positions_into(tick, rate, &mut out);
            let want = w.positions(tick, rate).to_vec();
            assert_eq!(bits(&out), bits(&want));
        }
        let mut empty = SimWorld::new(0, 5);
        empty.positions_into(3, 60.0, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn different_seeds_give_different_worlds() {
        let mut a = SimWorld::new(100, 1);
        let mut b = SimWorld::new(100, 2);
        let (pa, pb) = (bits(a.positions(10, 60.0)), bits(b.positions(10, 60.0)));
        // Every entity differs, not just some.
        assert!(pa.iter().zip(&pb).all(|(x, y)| x != y));
    }

    #[test]
    fn positions_stay_inside_the_box_for_any_tick() {
        let mut w = SimWorld::new(300, 7);
        let ticks = (0..2_000u64)
            .chain((0..2_000).map(|i| i * 499_999_999 + 1))
            .chain([999_999_999, 1_000_000_000, u32::MAX.into(), u64::MAX]);
        for tick in ticks {
            for e in w.positions(tick, 60.0) {
                for (c, side) in [e.x, e.y, e.z].into_iter().zip(WORLD_SIZE) {
                    assert!(
                        (0.0..=side as f32).contains(&c),
                        "tick {tick} id {}: {c}",
                        e.id
                    );
                }
            }
        }
    }

    #[test]
    fn consecutive_ticks_move_at_most_speed_over_rate() {
        let mut w = SimWorld::new(200, 3);
        let motions: Vec<Motion> = (0..200).map(|id| Motion::of(3, id)).collect();
        for rate in [60.0, 7.5] {
            for start in [0u64, 12_345, 1_000_000_000 - 400, u64::from(u32::MAX) - 200] {
                let mut prev = w.positions(start, rate).to_vec();
                for tick in start + 1..start + 400 {
                    let now = w.positions(tick, rate);
                    for ((a, b), m) in prev.iter().zip(now).zip(&motions) {
                        let speed = m.velocity.iter().map(|v| v * v).sum::<f64>().sqrt();
                        let step = [(b.x - a.x), (b.y - a.y), (b.z - a.z)]
                            .iter()
                            .map(|d| f64::from(*d).powi(2))
                            .sum::<f64>()
                            .sqrt();
                        // Velocity rounding (< 2.4e-7) and f32 rounding of
                        // each coordinate (< 6.2e-5 a step) together stay
                        // well under 1e-3 units.
                        assert!(
                            step <= speed / rate + 1e-3,
                            "tick {tick} id {}: {step} > {}",
                            a.id,
                            speed / rate
                        );
                    }
                    prev.copy_from_slice(now);
                }
            }
        }
    }

    #[test]
    fn entities_move_and_cover_the_box() {
        // Not stuck: over a minute at 60 Hz every entity moves, and the
        // world spreads over the whole box.
        let mut w = SimWorld::new(1000, 1);
        let start = w.positions(0, 60.0).to_vec();
        let later = w.positions(3600, 60.0);
        assert!(start.iter().zip(later).all(|(a, b)| a != b));
        for (i, side) in WORLD_SIZE.iter().enumerate() {
            let c = |e: &Entity| [e.x, e.y, e.z][i];
            let lo = later.iter().map(c).fold(f32::MAX, f32::min);
            let hi = later.iter().map(c).fold(f32::MIN, f32::max);
            assert!(
                lo < 0.01 * *side as f32 && hi > 0.99 * *side as f32,
                "axis {i}: {lo}..{hi}"
            );
        }
    }

    #[test]
    fn motion_parameters_are_within_their_ranges() {
        for id in 0..1000 {
            let m = Motion::of(99, id);
            for (v, max) in m.velocity.iter().zip(MAX_SPEED) {
                assert!(v.abs() <= max);
            }
        }
        // Steps per tick are the velocity over the rate, to the nearest step.
        let m = Motion {
            phase0: [0; 3],
            velocity: [-100.0, 0.0, 10.0],
        };
        let d = m.steps(60.0);
        assert_eq!(
            d[0],
            (-(100.0 * HALF_TURN / 1000.0 / 60.0f64).round() as i64) as u32
        );
        assert_eq!(d[1], 0);
        assert_eq!(
            i64::from(d[2]),
            (10.0 * HALF_TURN / 100.0 / 60.0f64).round() as i64
        );
    }

    #[test]
    fn fold_bounces_between_zero_and_half_a_turn() {
        assert_eq!(fold(0), 0);
        assert_eq!(fold(7), 7);
        assert_eq!(fold(1 << 31), 1 << 31);
        assert_eq!(fold((1 << 31) + 1), (1 << 31) - 1);
        assert_eq!(fold(u32::MAX), 1);
        assert_eq!(
            coordinate(1 << 31, UNIT_PER_STEP[0]),
            1000.0,
            "the far wall, exactly"
        );
        assert_eq!(coordinate(0, UNIT_PER_STEP[2]), 0.0);
        // The signed reading is the fold, at the edges and between.
        for p in [
            1,
            255,
            1 << 30,
            (1 << 31) - 1,
            1 << 31,
            (1 << 31) + 1,
            u32::MAX - 300,
            u32::MAX,
        ] {
            assert_eq!(
                coordinate(p, UNIT_PER_STEP[0]).to_bits(),
                (fold(p) as f32 * UNIT_PER_STEP[0]).to_bits(),
                "phase {p}"
            );
        }
        assert_eq!(UNIT_PER_STEP[0] as f64 * HALF_TURN, 1000.0, "exact");
    }
}
