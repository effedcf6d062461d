//! The broadcaster's built-in world: `N` entities gliding around a box,
//! deterministically from a seed. Sans-IO and clock-free: positions are a
//! closed-form function of the tick number.
//!
//! # Guarantees
//!
//! * **Reproducible everywhere.** Each entity's origin and velocity come from
//!   [`splitmix64`] over `(seed, id)` (defined below, not from `rand`, whose
//!   generators may change between versions), so a seed names the same world
//!   in every build, on every platform.
//! * **Closed form.** At tick `k` and rate `r`, with `t = k / r` seconds, each
//!   coordinate is `fold(p0 + v × t, L)` where `fold` is a triangle wave that
//!   bounces between 0 and the box side `L`. The same tick always gives the
//!   same positions, bit for bit, whatever was computed before.
//! * **Bounded.** Every coordinate lies in `0..=L` of [`WORLD_SIZE`], for any
//!   tick (well within `wire::MAX_COORD`).
//! * **Smooth.** `fold` is 1-Lipschitz, so between consecutive ticks an
//!   entity moves at most `|v| / r` (up to f32 rounding).
//! * **Cheap.** A multiply, an add and a remainder per coordinate; no sin/cos.
//!
//! # Parameters of entity `id`
//!
//! A splitmix64 generator is started at state `mix(seed) ^ id` (`mix` being
//! splitmix64's finaliser) and its first six outputs `u0..u5`, each taken as
//! a fraction `f = (u >> 11) / 2^53` in `[0, 1)`, give the origin
//! `p0[i] = f(u_i) × WORLD_SIZE[i]` and the velocity
//! `v[i] = (2 f(u_{3+i}) − 1) × MAX_SPEED[i]`, for axes `i = x, y, z`.

use crate::wire::Entity;

/// Sides of the box the entities move in, in world units: x, y, z.
pub const WORLD_SIZE: [f64; 3] = [1000.0, 1000.0, 100.0];
/// Largest speed along each axis, in world units per second: x, y, z.
pub const MAX_SPEED: [f64; 3] = [100.0, 100.0, 10.0];

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
fn unit(u: u64) -> f64 {
    (u >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// The triangle wave of period `2L`: `u` folded back and forth into `[0, L]`.
fn fold(u: f64, side: f64) -> f64 {
    let m = u.rem_euclid(2.0 * side);
    if m > side {
        2.0 * side - m
    } else {
        m
    }
}

/// Where an entity starts and how it moves (units and units per second).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Motion {
    origin: [f64; 3],
    velocity: [f64; 3],
}

impl Motion {
    fn of(seed: u64, id: u32) -> Motion {
        let mut state = mix64(seed) ^ u64::from(id);
        let mut origin = [0.0; 3];
        let mut velocity = [0.0; 3];
        for (o, side) in origin.iter_mut().zip(WORLD_SIZE) {
            *o = unit(splitmix64(&mut state)) * side;
        }
        for (v, max) in velocity.iter_mut().zip(MAX_SPEED) {
            *v = (2.0 * unit(splitmix64(&mut state)) - 1.0) * max;
        }
        Motion { origin, velocity }
    }

    fn at(&self, t: f64) -> [f64; 3] {
        let mut p = [0.0; 3];
        for i in 0..3 {
            p[i] = fold(self.origin[i] + self.velocity[i] * t, WORLD_SIZE[i]);
        }
        p
    }
}

/// The simulated world: entities `0..N` whose positions are a pure function
/// of `(seed, tick, rate)`. It keeps one buffer of [`Entity`] records that
/// [`SimWorld::positions`] refills, so computing a tick allocates nothing.
#[derive(Clone, Debug)]
pub struct SimWorld {
    motions: Vec<Motion>,
    out: Vec<Entity>,
}

impl SimWorld {
    /// A world of `entities` entities (ids `0..entities`) drawn from `seed`.
    pub fn new(entities: u32, seed: u64) -> SimWorld {
        SimWorld {
            motions: (0..entities).map(|id| Motion::of(seed, id)).collect(),
            out: vec![Entity::default(); entities as usize],
        }
    }

    /// How many entities the world has.
    pub fn len(&self) -> usize {
        self.motions.len()
    }

    /// Whether the world has no entities.
    pub fn is_empty(&self) -> bool {
        self.motions.is_empty()
    }

    /// Every entity's position at `tick` of a schedule running at `rate_hz`
    /// (time `tick / rate_hz` seconds), in id order.
    pub fn positions(&mut self, tick: u64, rate_hz: f64) -> &[Entity] {
        let t = tick as f64 / rate_hz;
        for ((e, m), id) in self.out.iter_mut().zip(&self.motions).zip(0u32..) {
            let [x, y, z] = m.at(t);
            *e = Entity {
                id,
                x: x as f32,
                y: y as f32,
                z: z as f32,
            };
        }
        &self.out
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

    #[test]
    fn same_seed_and_tick_give_the_same_bytes() {
        let mut a = SimWorld::new(500, 42);
        let mut b = SimWorld::new(500, 42);
        // b computes other ticks first: positions depend on the tick alone.
        b.positions(999, 60.0);
        b.positions(3, 60.0);
        for tick in [0, 1, 1234, 1_000_000_007] {
            assert_eq!(bits(a.positions(tick, 60.0)), bits(b.positions(tick, 60.0)));
        }
        let ids: Vec<u32> = a.positions(0, 60.0).iter().map(|e| e.id).collect();
        assert_eq!(ids, (0..500).collect::<Vec<u32>>());
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
    fn positions_stay_inside_the_box_for_a_billion_ticks() {
        let mut w = SimWorld::new(300, 7);
        let ticks = (0..2_000u64)
            .chain((0..2_000).map(|i| i * 499_999_999 + 1))
            .chain([999_999_999, 1_000_000_000]);
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
        let motions = w.motions.clone();
        for rate in [60.0, 7.5] {
            for start in [0u64, 12_345, 1_000_000_000 - 400] {
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
                        // f32 rounding of each coordinate adds at most ~1e-4 units.
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
    fn motion_parameters_are_within_their_ranges() {
        for id in 0..1000 {
            let m = Motion::of(99, id);
            for i in 0..3 {
                assert!((0.0..WORLD_SIZE[i]).contains(&m.origin[i]));
                assert!(m.velocity[i].abs() <= MAX_SPEED[i]);
            }
        }
    }

    #[test]
    fn fold_bounces_between_zero_and_the_side() {
        assert_eq!(fold(0.0, 10.0), 0.0);
        assert_eq!(fold(7.0, 10.0), 7.0);
        assert_eq!(fold(13.0, 10.0), 7.0);
        assert_eq!(fold(20.0, 10.0), 0.0);
        assert_eq!(fold(-3.0, 10.0), 3.0);
        // rem_euclid of a tiny negative rounds up to 2L; the fold maps it to 0.
        assert_eq!(fold(-1e-300, 10.0), 0.0);
    }
}
