//! The `players` world ([`WorldKind::Players`](super::WorldKind::Players)):
//! entities that run about a ground plane like a game's avatars, turning,
//! speeding up and slowing down, stopping and starting again, so that a
//! dead-reckoning predictor is not flattered by straight lines, and a
//! change-only encoder has entities standing still to skip.
//!
//! # The motion, exactly
//!
//! Entities move on the ground plane `z = 0` of the square
//! `0..=PLAYERS_SIDE` (1000 units) in `x` and `y`. Each one's path is a
//! chain of *legs* of constant acceleration `a`, each starting and ending
//! on the grid of [`TIME_UNIT`] (1/1024 s, so every leg boundary is exact
//! in `f64`):
//!
//! ```text
//! p(t) = p0 + dt × (v0 + dt × (a / 2)),   v(t) = v0 + a × dt,   dt = t − t0
//! ```
//!
//! so the path is continuous in position and velocity, and piecewise
//! parabolic. The legs make up *steps*, of three kinds:
//!
//! * **walk**, 0.5 to 2 s long (512..=2048 units, uniform). At its start
//!   the entity picks a target velocity `u`, uniform over the ring of radii
//!   [`PLAYERS_MIN_TARGET`] and [`PLAYERS_MAX_SPEED`] (4 and 10 units/s,
//!   from a jog to a sprint; by rejection from the square), with each
//!   component across a wall made to point away from it if the entity is
//!   less than [`WALL_MARGIN`] (50 units) from that wall. Then a *turn* leg
//!   accelerates towards `u` as hard as [`PLAYERS_MAX_ACCEL`] (8 units/s²)
//!   lets it, in the fewest whole units `n = ⌈|u − v0| × 1024 / A⌉` (at
//!   least 1), `a = (u − v0) / (n / 1024)`, ending at `u` exactly; and a
//!   *cruise* leg holds `u` (`a = 0`) to the end of the walk. A turn that
//!   would outlast its walk (`n` more than the units left) is cut off at
//!   the walk's end, accelerating at `(u − v0) × A / |u − v0|` all the way,
//!   and so ends short of `u`, on the way to it.
//! * **brake**, after a walk with probability [`P_STOP`] (0.14): a turn to
//!   a halt (`u = 0`, ending at `v = 0` exactly), at most 1.25 s.
//! * **rest**, after a brake: standing still (`v = a = 0`: every sample is
//!   bit for bit the same position) for 1 to 4 s (1024..=4096 units),
//!   then a walk.
//!
//! A walk is followed by another walk with probability `1 − P_STOP`. At
//! time 0 an entity stands at a position uniform over
//! `WALL_MARGIN..=PLAYERS_SIDE − WALL_MARGIN` on each axis; with
//! probability [`P_REST_AT_START`] (0.2) it starts with a rest, else with a
//! walk from a velocity drawn as a target is. With these figures about
//! 20 % of the entities are at rest at any time (the tests keep it within
//! 12–30 % in every second of a 200-entity world, 17–24 % over the run),
//! and the moving ones average about 5 units/s.
//!
//! Every draw comes from the entity's own splitmix64 stream, started at
//! `mix64(seed ^ SALT) ^ id` ([`super::mix64`], [`super::splitmix64`]; the
//! salt keeps it apart from the linear world's stream of the same seed and
//! id), in the order written above: at time 0 `x`, `y`, rest or not, then
//! for a walk its length and target; each rest its length; after each walk,
//! stop or not. A fraction is a draw's top 53 bits over 2^53; a length in
//! `lo..=hi` is `lo + ((draw >> 32) × (hi − lo + 1)) >> 32`.
//!
//! # Guarantees
//!
//! * **Bounded speed**: `|v| ≤ 10` units/s always (a turn's velocity runs in
//!   a straight line between two points of the disc), so between ticks an
//!   entity moves at most `10 / rate` units.
//! * **Bounded acceleration**: `|a| ≤ 8` units/s² always (up to the
//!   rounding of a division, a few ulps), so the second difference of
//!   consecutive samples is at most `8 / rate²` (the path is C¹).
//! * **Inside the box**: every coordinate stays more than 4.9 units from
//!   the walls. Along an axis, a step that starts `WALL_MARGIN` (50) or more
//!   from a wall moves at most 20 units (10 units/s for at most 2 s). A step
//!   that starts closer is a walk whose target points away from that wall,
//!   a brake or a rest; in each, while the entity still moves towards the
//!   wall at speed `w`, its acceleration away from it is at least
//!   `0.3998 w` (a turn's `(u_x + w) / (n / 1024)` with
//!   `n / 1024 ≤ |u − v0| / A + 1/1024 ≤ 2.501 s`, or a cut-off turn's
//!   `A (u_x + w) / |u − v0| ≥ 0.4 w`, or a brake's `w / (n / 1024)` with
//!   `n / 1024 ≤ 1.251 s`), and once it no longer moves towards the wall it
//!   does not start again; so it halts within `w / 0.3998 ≤ 25.01` more
//!   units: 50 − 20 − 25.01 > 4.9.
//! * **A pure function of `(seed, id, t)`**, with `t = tick / rate_hz`
//!   seconds (the same motion sampled at any rate): what was computed
//!   before never matters, so a skipped tick, a jump forward or back, or a
//!   change of rate gives the same bits as stepping through every tick.
//! * **Reproducible**: the arithmetic is `+ − × /`, `sqrt`, `ceil` and
//!   exact conversions in IEEE-754 binary64, each correctly rounded (no
//!   `sin`/`cos`, no fused multiply-add: Rust never contracts), the result
//!   rounded once to `f32`; so a seed names the same world bit for bit in
//!   every build on every target whose `f64` is binary64 without excess
//!   precision (every tier-1 target; not the x87-only `i586` ones).
//!
//! # Cost
//!
//! Not closed-form in the tick: each entity keeps the leg it is in.
//! Computing a tick evaluates one parabola per entity (two axes); an entity
//! whose leg has ended draws the next (about 1.1 legs a second of world
//! time), so a jump forward costs that per leg jumped over (a minute of
//! skipped ticks is about 65 legs an entity). A time before an entity's
//! current leg (a tick going back, or a rate raised) replays that entity
//! from time 0: a cost in proportion to `t`, which for a broadcaster (whose
//! ticks only go forward) never happens. A tick whose time is negative or
//! not finite (a rate of zero, below zero, or NaN) is taken as time 0.

use super::{mix64, splitmix64, unit};
use crate::wire::Entity;

/// Side of the square ground the entities run on, in world units (x and
/// y; z is 0).
pub const PLAYERS_SIDE: f64 = 1000.0;
/// Fastest an entity runs, in units per second.
pub const PLAYERS_MAX_SPEED: f64 = 10.0;
/// Slowest target speed of a walk, in units per second: a jog.
pub const PLAYERS_MIN_TARGET: f64 = 4.0;
/// Largest acceleration, in units per second squared.
pub const PLAYERS_MAX_ACCEL: f64 = 8.0;
/// How near a wall (units) a walk's target is turned away from it.
pub const WALL_MARGIN: f64 = 50.0;
/// The grid legs start and end on: 1/1024 s (exact in `f64`).
pub const TIME_UNIT: f64 = 1.0 / 1024.0;
/// Probability that a walk ends in a stop (a brake, then a rest).
pub const P_STOP: f64 = 0.14;
/// Probability that an entity starts at rest.
pub const P_REST_AT_START: f64 = 0.2;

/// Shortest and longest walk, in [`TIME_UNIT`]s (0.5 s and 2 s).
const WALK_UNITS: (u64, u64) = (512, 2048);
/// Shortest and longest rest, in [`TIME_UNIT`]s (1 s and 4 s).
const REST_UNITS: (u64, u64) = (1024, 4096);
/// Keeps the players' streams apart from the linear world's ("players!").
const SALT: u64 = 0x706c_6179_6572_7321;

/// What an entity is doing during a leg.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Gait {
    /// The first part of a walk: accelerating towards its target, which
    /// it reaches at the leg's end.
    Turn,
    /// A turn cut off by the end of its walk, short of its target.
    CutTurn,
    /// The rest of a walk: at its target velocity.
    Cruise,
    /// Slowing to a halt.
    Brake,
    /// Standing still.
    Rest,
}

/// The leg an entity is in, as the hot loop reads it: 64 bytes, one cache
/// line. Times in seconds (multiples of [`TIME_UNIT`], exact).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Leg {
    t0: f64,
    end: f64,
    p: [f64; 2],
    v: [f64; 2],
    /// Half the acceleration.
    half_a: [f64; 2],
}

impl Leg {
    /// Position `dt` seconds into the leg, per axis.
    #[inline(always)]
    fn at(&self, dt: f64) -> [f64; 2] {
        [0, 1].map(|i| self.p[i] + dt * (self.v[i] + dt * self.half_a[i]))
    }

    /// Velocity `dt` seconds into the leg.
    fn velocity(&self, dt: f64) -> [f64; 2] {
        [0, 1].map(|i| self.v[i] + dt * (2.0 * self.half_a[i]))
    }

    /// A leg of `a` from `start` to `end` (units) at `p` with velocity `v`.
    fn new(start: u64, end: u64, p: [f64; 2], v: [f64; 2], a: [f64; 2]) -> Leg {
        Leg {
            t0: start as f64 * TIME_UNIT,
            end: end as f64 * TIME_UNIT,
            p,
            v,
            half_a: a.map(|a| 0.5 * a),
        }
    }
}

/// The rest of an entity's state: its generator, gait, and the walk or
/// brake it is in.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Walker {
    rng: u64,
    gait: Gait,
    /// The leg's end, in [`TIME_UNIT`]s since time 0.
    end: u64,
    /// The walk's end (a turn is followed by a cruise up to it).
    walk_end: u64,
    /// The velocity the turn or brake ends at (exactly).
    target: [f64; 2],
}

/// A draw below `n` (multiply-shift of the top 32 bits: no modulo bias
/// to speak of for `n` this small).
fn below(u: u64, n: u64) -> u64 {
    ((u >> 32) * n) >> 32
}

/// A draw in `lo..=hi`.
fn between(u: u64, (lo, hi): (u64, u64)) -> u64 {
    lo + below(u, hi - lo + 1)
}

fn norm([x, y]: [f64; 2]) -> f64 {
    (x * x + y * y).sqrt()
}

impl Walker {
    fn next(&mut self) -> u64 {
        splitmix64(&mut self.rng)
    }

    /// A velocity uniform over the ring of radii [`PLAYERS_MIN_TARGET`]
    /// and [`PLAYERS_MAX_SPEED`], by rejection from the square.
    fn in_ring(&mut self) -> [f64; 2] {
        const INNER: f64 = PLAYERS_MIN_TARGET / PLAYERS_MAX_SPEED;
        loop {
            let x = 2.0 * unit(self.next()) - 1.0;
            let y = 2.0 * unit(self.next()) - 1.0;
            if (INNER * INNER..=1.0).contains(&(x * x + y * y)) {
                return [x * PLAYERS_MAX_SPEED, y * PLAYERS_MAX_SPEED];
            }
        }
    }

    /// Entity `id` of `seed` at time 0, and its first leg.
    fn start(seed: u64, id: u32) -> (Walker, Leg) {
        let mut w = Walker {
            rng: mix64(seed ^ SALT) ^ u64::from(id),
            gait: Gait::Rest,
            end: 0,
            walk_end: 0,
            target: [0.0; 2],
        };
        let span = PLAYERS_SIDE - 2.0 * WALL_MARGIN;
        let p = [0, 1].map(|_| WALL_MARGIN + unit(w.next()) * span);
        let leg = if unit(w.next()) < P_REST_AT_START {
            w.rest(0, p)
        } else {
            let v = w.in_ring();
            w.walk(0, p, v)
        };
        (w, leg)
    }

    /// A rest from `start` (units) at `p`.
    fn rest(&mut self, start: u64, p: [f64; 2]) -> Leg {
        self.gait = Gait::Rest;
        self.end = start + between(self.next(), REST_UNITS);
        Leg::new(start, self.end, p, [0.0; 2], [0.0; 2])
    }

    /// A walk from `start` (units) at `p` with velocity `v`: its length, its
    /// target (turned away from a near wall), and its first leg.
    fn walk(&mut self, start: u64, p: [f64; 2], v: [f64; 2]) -> Leg {
        self.walk_end = start + between(self.next(), WALK_UNITS);
        let mut u = self.in_ring();
        for (u, p) in u.iter_mut().zip(p) {
            if p < WALL_MARGIN {
                *u = u.abs();
            } else if p > PLAYERS_SIDE - WALL_MARGIN {
                *u = -u.abs();
            }
        }
        self.turn(Gait::Turn, start, p, v, u)
    }

    /// Accelerating from `v` at `p` towards `u`, from `start` (units): as
    /// hard as [`PLAYERS_MAX_ACCEL`] allows, so in the fewest whole units
    /// (then the leg ends at `u` exactly); a turn that would outlast its
    /// walk ends with it, short of `u`. A turn with nothing to do is a
    /// cruise.
    fn turn(&mut self, gait: Gait, start: u64, p: [f64; 2], v: [f64; 2], u: [f64; 2]) -> Leg {
        self.target = u;
        let d = [u[0] - v[0], u[1] - v[1]];
        let dn = norm(d);
        if dn == 0.0 && gait == Gait::Turn {
            return self.cruise(start, p);
        }
        let units = ((dn / (PLAYERS_MAX_ACCEL * TIME_UNIT)).ceil() as u64).max(1);
        self.gait = gait;
        // A turn of exactly the walk's length still reaches its target;
        // one cut shorter than `units` stops short of it (`units − 1` units
        // at A are less than `|u − v|`), so it never overshoots.
        if gait == Gait::Turn && start + units > self.walk_end {
            self.gait = Gait::CutTurn;
            self.end = self.walk_end;
            return Leg::new(
                start,
                self.end,
                p,
                v,
                d.map(|d| d * (PLAYERS_MAX_ACCEL / dn)),
            );
        }
        self.end = start + units;
        let len = units as f64 * TIME_UNIT;
        Leg::new(start, self.end, p, v, d.map(|d| d / len))
    }

    /// At the target velocity from `start` to the walk's end.
    fn cruise(&mut self, start: u64, p: [f64; 2]) -> Leg {
        self.gait = Gait::Cruise;
        self.end = self.walk_end;
        Leg::new(start, self.end, p, self.target, [0.0; 2])
    }

    /// The leg after `leg`, which has just ended.
    fn follow(&mut self, leg: &Leg) -> Leg {
        let dt = leg.end - leg.t0;
        let p = leg.at(dt);
        let start = self.end;
        // A turn or brake ends at its target: exactly, whatever the
        // rounding of `a × dt`.
        let v = match self.gait {
            Gait::Turn => self.target,
            Gait::Brake | Gait::Rest => [0.0; 2],
            Gait::CutTurn | Gait::Cruise => leg.velocity(dt),
        };
        match self.gait {
            Gait::Turn if start < self.walk_end => self.cruise(start, p),
            Gait::Turn | Gait::CutTurn | Gait::Cruise => {
                if unit(self.next()) >= P_STOP {
                    self.walk(start, p, v)
                } else if v == [0.0; 2] {
                    self.rest(start, p)
                } else {
                    self.turn(Gait::Brake, start, p, v, [0.0; 2])
                }
            }
            Gait::Brake => self.rest(start, p),
            Gait::Rest => self.walk(start, p, v),
        }
    }
}

/// One entity of the players world: its leg (read every tick) and the
/// rest of its state (touched once a leg), side by side. Apart, the
/// walkers were a second array that only an ending leg touched: each of
/// those touches (about 1.8 % of the entities a tick at 60 Hz) missed the
/// cache, and a 250,000-entity world spent more on them than streaming
/// both in one array costs: 7.1-7.5 ns an entity a tick apart, 5.3-5.4
/// side by side, the same positions bit for bit.
#[derive(Clone, Debug)]
struct Runner {
    leg: Leg,
    walker: Walker,
}

/// The players world's entities, in id order.
#[derive(Clone, Debug)]
pub(super) struct Players {
    seed: u64,
    runners: Vec<Runner>,
}

impl Players {
    pub(super) fn new(entities: u32, seed: u64) -> Players {
        let runners = (0..entities)
            .map(|id| {
                let (walker, leg) = Walker::start(seed, id);
                Runner { leg, walker }
            })
            .collect();
        Players { seed, runners }
    }

    pub(super) fn len(&self) -> usize {
        self.runners.len()
    }

    /// Every entity's position at `tick / rate_hz` seconds, into `out`
    /// (cleared first).
    pub(super) fn positions_into(&mut self, tick: u64, rate_hz: f64, out: &mut Vec<Entity>) {
        let t = time(tick, rate_hz);
        let seed = self.seed;
        out.clear();
        out.extend(self.runners.iter_mut().zip(0u32..).map(|(r, id)| {
            let leg = &mut r.leg;
            if !(t >= leg.t0 && t < leg.end) {
                catch_up(seed, id, &mut r.walker, leg, t);
            }
            let [x, y] = leg.at(t - leg.t0);
            Entity {
                id,
                x: x as f32,
                y: y as f32,
                z: 0.0,
            }
        }));
    }
}

/// `tick / rate_hz` seconds; 0 when that is negative or not a number, or
/// infinite.
fn time(tick: u64, rate_hz: f64) -> f64 {
    let t = tick as f64 / rate_hz;
    if t.is_finite() && t > 0.0 {
        t
    } else {
        0.0
    }
}

/// Moves entity `id` to the leg holding `t`: forward leg by leg, or, for a
/// time before its leg, from time 0 again.
#[cold]
fn catch_up(seed: u64, id: u32, w: &mut Walker, leg: &mut Leg, t: f64) {
    if t < leg.t0 {
        (*w, *leg) = Walker::start(seed, id);
    }
    while t >= leg.end {
        *leg = w.follow(leg);
    }
}

#[cfg(test)]
mod tests {
    use super::super::{SimWorld, WorldKind};
    use super::*;

    fn world(entities: u32, seed: u64) -> SimWorld {
        SimWorld::with_kind(WorldKind::Players, entities, seed)
    }

    fn bits(es: &[Entity]) -> Vec<[u32; 4]> {
        es.iter()
            .map(|e| [e.id, e.x.to_bits(), e.y.to_bits(), e.z.to_bits()])
            .collect()
    }

    /// Every entity's exact (f64) position at `t`, with its velocity.
    fn states(p: &mut Players, t: f64) -> Vec<([f64; 2], [f64; 2])> {
        let seed = p.seed;
        p.runners
            .iter_mut()
            .zip(0u32..)
            .map(|(Runner { leg, walker: w }, id)| {
                catch_up(seed, id, w, leg, t);
                let dt = t - leg.t0;
                (leg.at(dt), leg.velocity(dt))
            })
            .collect()
    }

    fn sub(a: [f64; 2], b: [f64; 2]) -> [f64; 2] {
        [a[0] - b[0], a[1] - b[1]]
    }

    #[test]
    fn every_leg_keeps_to_the_documented_rules() {
        let mut p = Players::new(300, 17);
        let mut counts = [0u32; 5];
        for (id, Runner { leg, walker: w }) in p.runners.iter_mut().enumerate() {
            let mut walk_start = 0;
            for _ in 0..400 {
                let a = 2.0 * norm(leg.half_a);
                assert!(a <= PLAYERS_MAX_ACCEL * (1.0 + 1e-12), "id {id}: {a}");
                let dt = leg.end - leg.t0;
                for v in [leg.v, leg.velocity(dt)] {
                    assert!(norm(v) <= PLAYERS_MAX_SPEED * (1.0 + 1e-12), "id {id}");
                }
                assert_eq!(leg.t0, (w.end as f64 * TIME_UNIT) - dt);
                let units = (dt / TIME_UNIT) as u64;
                assert!(units >= 1);
                match w.gait {
                    Gait::Turn | Gait::CutTurn | Gait::Cruise => {
                        assert!(w.end <= w.walk_end);
                        let walk = w.walk_end - walk_start;
                        assert!((512..=2048).contains(&walk), "{walk}");
                    }
                    Gait::Brake => assert!(units <= 1281, "{units}"),
                    Gait::Rest => {
                        assert!((1024..=4096).contains(&units), "{units}");
                        assert_eq!((leg.v, leg.half_a), ([0.0; 2], [0.0; 2]));
                    }
                }
                if w.gait == Gait::Cruise {
                    assert_eq!((leg.v, leg.half_a), (w.target, [0.0; 2]));
                }
                if w.gait == Gait::CutTurn {
                    // Short of the target, on the way to it, never past.
                    let (done, whole) = (sub(leg.velocity(dt), leg.v), sub(w.target, leg.v));
                    assert!(norm(done) < norm(whole), "id {id}");
                }
                counts[w.gait as usize] += 1;
                let (gait, end, walk_end, target) = (w.gait, w.end, w.walk_end, w.target);
                *leg = w.follow(leg);
                if gait == Gait::Brake {
                    assert_eq!(leg.v, [0.0; 2], "a brake ends at rest, exactly");
                }
                if gait == Gait::Turn {
                    assert_eq!(leg.v, target, "the turn reached its target");
                    if end < walk_end {
                        assert_eq!(w.gait, Gait::Cruise);
                    }
                }
                if w.walk_end != walk_end {
                    walk_start = end;
                }
            }
        }
        // Every gait happens; a brake is always followed by a rest.
        assert!(counts.iter().all(|&c| c > 1000), "{counts:?}");
        // About 1.1 legs a second of world time, as the docs say.
        let seconds: f64 = p.runners.iter().map(|r| r.leg.t0).sum();
        let per_second = f64::from(counts.iter().sum::<u32>()) / seconds;
        assert!((0.95..=1.25).contains(&per_second), "{per_second}");
        assert!(counts[Gait::Rest as usize] >= counts[Gait::Brake as usize]);
    }

    #[test]
    fn positions_and_velocities_are_continuous_across_legs() {
        let mut p = Players::new(50, 4);
        for Runner { leg, walker: w } in &mut p.runners {
            for _ in 0..300 {
                let dt = leg.end - leg.t0;
                let (pe, ve) = (leg.at(dt), leg.velocity(dt));
                *leg = w.follow(leg);
                assert_eq!(leg.p, pe, "the next leg starts where this one ends");
                // Equal, or snapped to the target from a rounding away.
                let dv = norm([leg.v[0] - ve[0], leg.v[1] - ve[1]]);
                assert!(dv < 1e-12, "{ve:?} then {:?}", leg.v);
            }
        }
    }

    #[test]
    fn the_exact_path_keeps_the_proven_distance_from_the_walls() {
        let mut p = Players::new(200, 23);
        let (mut lo, mut hi) = (f64::MAX, f64::MIN);
        for k in 0..40_000 {
            for (pos, _) in states(&mut p, f64::from(k) * 0.05) {
                lo = lo.min(pos[0]).min(pos[1]);
                hi = hi.max(pos[0]).max(pos[1]);
            }
        }
        assert!(lo >= 4.9 && hi <= PLAYERS_SIDE - 4.9, "{lo}..{hi}");
        // And the world does go near the walls, not only the middle.
        assert!(lo < 40.0 && hi > PLAYERS_SIDE - 40.0, "{lo}..{hi}");
    }

    /// 200 entities for 10,000 ticks at 60 Hz, as the broadcaster samples
    /// them: in the box, on the ground, no faster than the top speed, no
    /// harder than the top acceleration, a fifth at rest, and turning.
    #[test]
    fn sampled_ticks_keep_every_bound_and_keep_changing() {
        const N: usize = 200;
        let rate = 60.0;
        let mut w = world(N as u32, 5);
        let ticks: Vec<Vec<Entity>> = (0..10_000).map(|k| w.positions(k, rate).to_vec()).collect();
        let xy = |e: &Entity| [f64::from(e.x), f64::from(e.y)];
        let sub = |a: [f64; 2], b: [f64; 2]| [a[0] - b[0], a[1] - b[1]];
        let side = PLAYERS_SIDE as f32;
        // An f32 coordinate here is within 3.1e-5 of the exact path.
        let slack = 4.0 * 3.1e-5 * 2f64.sqrt();
        let mut still = Vec::new();
        for (k, now) in ticks.iter().enumerate() {
            for e in now {
                assert!((0.0..=side).contains(&e.x) && (0.0..=side).contains(&e.y));
                assert_eq!(e.z.to_bits(), 0, "on the ground");
            }
            if k == 0 {
                continue;
            }
            let before = &ticks[k - 1];
            let mut at_rest = 0;
            for (i, (a, b)) in before.iter().zip(now).enumerate() {
                let step = norm(sub(xy(b), xy(a)));
                assert!(
                    step <= PLAYERS_MAX_SPEED / rate + slack,
                    "tick {k} id {i}: {step}"
                );
                at_rest += usize::from(a == b);
                if k >= 2 {
                    let c = &ticks[k - 2][i];
                    let second = norm(sub(sub(xy(b), xy(a)), sub(xy(a), xy(c))));
                    let most = PLAYERS_MAX_ACCEL / (rate * rate) + slack;
                    assert!(second <= most, "tick {k} id {i}: {second} > {most}");
                }
            }
            still.push(at_rest as f64 / N as f64);
        }
        // At rest: about a fifth in every second, and on the whole.
        for (s, window) in still.chunks(60).enumerate() {
            let f = window.iter().sum::<f64>() / window.len() as f64;
            assert!((0.12..=0.30).contains(&f), "second {s}: {f} at rest");
        }
        let mean = still.iter().sum::<f64>() / still.len() as f64;
        assert!((0.17..=0.24).contains(&mean), "{mean} at rest");
        // Not constant velocity: over 2 s, most entities' velocity (from
        // consecutive samples) changes by more than 2 units/s.
        let velocity =
            |k: usize, i: usize| sub(xy(&ticks[k + 1][i]), xy(&ticks[k][i])).map(|d| d * rate);
        let (mut turned, mut seen) = (0, 0);
        for k in (0..9_800).step_by(250) {
            for i in 0..N {
                seen += 1;
                turned += usize::from(norm(sub(velocity(k + 120, i), velocity(k, i))) > 2.0);
            }
        }
        let share = turned as f64 / f64::from(seen);
        assert!(share > 0.7, "{share} changed velocity by 2 units/s in 2 s");
        // And it gets about: the mean speed of the moving is a runner's.
        let moving: Vec<f64> = (0..N)
            .map(|i| norm(velocity(5_000, i)))
            .filter(|&v| v > 0.0)
            .collect();
        let mean_speed = moving.iter().sum::<f64>() / moving.len() as f64;
        assert!((4.0..=8.0).contains(&mean_speed), "{mean_speed}");
    }

    #[test]
    fn the_same_seed_is_the_same_world_and_another_is_not() {
        let (mut a, mut b, mut c) = (world(300, 42), world(300, 42), world(300, 43));
        for tick in 0..2_000 {
            let pa = bits(a.positions(tick, 60.0));
            assert_eq!(pa, bits(b.positions(tick, 60.0)), "tick {tick}");
            if tick == 10 || tick == 1_999 {
                let pc = bits(c.positions(tick, 60.0));
                assert!(pa.iter().zip(&pc).all(|(x, y)| x != y), "tick {tick}");
            }
        }
        // Nor is it the linear world of the same seed.
        let linear = bits(SimWorld::new(300, 42).positions(10, 60.0));
        assert!(bits(a.positions(10, 60.0))
            .iter()
            .zip(&linear)
            .all(|(x, y)| x != y));
    }

    #[test]
    fn skipped_ticks_jumps_back_and_rates_give_the_stepped_positions() {
        let mut stepped = world(100, 8);
        let all: Vec<Vec<[u32; 4]>> = (0..6_000)
            .map(|k| bits(stepped.positions(k, 60.0)))
            .collect();
        // Skipping ticks, as a late broadcaster does, by small and large
        // strides, then going back (which replays from time 0).
        let mut skipping = world(100, 8);
        for k in [
            0u64, 1, 2, 5, 6, 65, 66, 3_000, 5_999, 4, 3_001, 3_001, 0, 5_998,
        ] {
            assert_eq!(
                bits(skipping.positions(k, 60.0)),
                all[k as usize],
                "tick {k}"
            );
        }
        // The same time at another rate is the same position.
        let mut fast = world(100, 8);
        for k in [0u64, 1, 599, 600, 5_999] {
            assert_eq!(
                bits(fast.positions(2 * k, 120.0)),
                all[k as usize],
                "tick {k}"
            );
            assert_eq!(bits(fast.positions(k, 60.0)), all[k as usize], "tick {k}");
        }
        // positions_into writes what positions returns.
        let mut out = vec![Entity::default(); 3];
        skipping.positions_into(1234, 60.0, &mut out);
        assert_eq!(bits(&out), all[1234]);
    }

    /// A few positions pinned, so a change to the players world is seen
    /// here first, and deliberately.
    #[test]
    fn seed_1_is_the_same_players_world_as_ever() {
        let mut w = world(3, 1);
        let got: Vec<[u32; 4]> = [0u64, 1, 600, 36_000]
            .into_iter()
            .flat_map(|tick| bits(w.positions(tick, 60.0)))
            .collect();
        assert_eq!(got, PINNED, "{got:#x?}");
    }

    /// Seed 1, ids 0..3, at ticks 0, 1, 600 (10 s) and 36,000 (10 min) of
    /// 60 Hz: id and the f32 bits of x, y, z.
    const PINNED: [[u32; 4]; 12] = [
        [0, 0x43b2e645, 0x43ba9d8b, 0], // tick 0: (357.7990, 373.2308)
        [1, 0x43ab482b, 0x4411e55e, 0], // tick 0: (342.5638, 583.5839)
        [2, 0x42eb94a1, 0x440ae2d0, 0], // tick 0: (117.7903, 555.5439)
        [0, 0x43b2e315, 0x43baafaa, 0], // tick 1: (357.7741, 373.3724)
        [1, 0x43ab49fd, 0x4411eb79, 0], // tick 1: (342.5780, 583.6793)
        [2, 0x42eb94a1, 0x440ae2d0, 0], // tick 1: (117.7903, 555.5439)
        [0, 0x43a725c3, 0x43c17be4, 0], // tick 600: (334.2950, 386.9679)
        [1, 0x43a4efe0, 0x4413f591, 0], // tick 600: (329.8740, 591.8370)
        [2, 0x42bce52a, 0x440cf710, 0], // tick 600: (94.4476, 563.8604)
        [0, 0x4400d004, 0x43a5de87, 0], // tick 36000: (515.2502, 331.7385)
        [1, 0x432a9644, 0x4444392d, 0], // tick 36000: (170.5870, 784.8934)
        [2, 0x4352734f, 0x440e4b65, 0], // tick 36000: (210.4504, 569.1780)
    ];

    #[test]
    fn draws_and_times_cover_their_ranges() {
        assert_eq!(below(0, 7), 0);
        assert_eq!(below(u64::MAX, 7), 6);
        assert_eq!(between(0, WALK_UNITS), 512);
        assert_eq!(between(u64::MAX, WALK_UNITS), 2048);
        assert_eq!(time(60, 60.0), 1.0);
        assert_eq!(time(0, 60.0), 0.0);
        // No time to go back to forever, or forward to forever.
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(time(60, rate), 0.0, "{rate}");
        }
        let mut w = world(10, 1);
        let at_0 = bits(w.positions(0, 60.0));
        assert_eq!(bits(w.positions(60, 0.0)), at_0);
        assert_eq!(bits(w.positions(60, f64::NAN)), at_0);
        assert!(world(0, 1).positions(100, 60.0).is_empty());
        assert_eq!(TIME_UNIT * 1024.0, 1.0);
    }
}
