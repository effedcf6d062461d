//! The link conditioner, sans-IO: a seeded model of a bad network that
//! decides each datagram's fate (dropped, delayed, held back so later ones
//! overtake it, duplicated) and counts exactly what it did. Like smoltcp's
//! `FaultInjector` and quinn's test `Pair`, it never reads a clock and never
//! touches a socket: the caller passes `now_ns` (any monotonic nanosecond
//! count) to [`Conditioner::push`] and [`Conditioner::poll_transmit`] and
//! sleeps until [`Conditioner::poll_timeout`]. [`crate::runtime::relay`] is the UDP
//! relay around it.
//!
//! # Impairments, per datagram
//!
//! 1. **Loss**: none, uniform with probability `p`, or bursty
//!    Gilbert–Elliott: a two-state Markov chain stepped once per datagram
//!    (first the state may flip, good→bad with `p_good_to_bad`, bad→good
//!    with `p_bad_to_good`, then the datagram is lost with the state's
//!    `loss_in_good` / `loss_in_bad`). Its long-run loss rate is
//!    [`GilbertElliott::stationary_loss`].
//! 2. **Delay and jitter**: release at `arrival + delay + j`, `j` uniform in
//!    `[-jitter, +jitter]` (never before arrival). Jitter alone never
//!    reorders: the release time is raised to the previous in-order
//!    release, unless [`ConditionerConfig::allow_jitter_reorder`] is set.
//! 3. **Reordering**: with probability `reorder` a datagram is held back by
//!    a further `reorder_gap`, so datagrams arriving within that gap overtake
//!    it. It does not hold back the ones behind it.
//! 4. **Duplication**: with probability `dup` a copy is released right after
//!    the original (same release time, next in order: nothing comes between).
//!
//! Datagrams released at the same time leave in arrival order. A datagram
//! that does not decode as tickcast ([`wire::decode`]) is forwarded
//! unimpaired (base delay, in order, never lost, held back or copied) and
//! counted as `passed_undecoded`; it draws nothing from the random stream,
//! so garbage mixed into a stream does not change the fates of the rest.
//! Valid datagrams outside the stream (the subscription kinds, for which
//! [`wire::Kind::is_sequenced`] is false) are impaired like stream
//! datagrams but carry no sequence number: a receiver counts them only as
//! `control_datagrams`.
//!
//! # Reproducibility
//!
//! Decisions come from [`rand::rngs::StdRng`] seeded with
//! [`SeedableRng::seed_from_u64`]`(seed)`. For a given seed, configuration,
//! sequence of datagrams (decodable or not) and `rand` version, the stream
//! of decisions is the same, whatever the arrival times: a run can be
//! replayed exactly. `StdRng`'s algorithm is not promised across `rand`
//! releases, so a different `rand` version may decide differently. Each
//! decodable datagram draws, in this order and only for non-zero settings:
//! the loss model (Gilbert–Elliott: transition, then loss), then for a kept
//! datagram the jitter, the reorder and the duplicate draws.
//!
//! # Exact counts, in the receiver's terms
//!
//! [`ConditionerCounts`] is what the conditioner did. From those same
//! decisions, and never from [`crate::core::tracker::Tracker`], it also keeps what
//! a tickcast receiver that gets exactly the released datagrams, in release
//! order, must report: [`Conditioner::expected_receiver_figures`]. It reads
//! each datagram's `(session, seq)` and, for a goodbye, `final_seq`, and
//! applies the receiver's definitions (`src/stats.rs`, `src/tracker.rs`):
//!
//! * per session, `expected = highest − lowest delivered + 1`, the highest
//!   raised to a delivered goodbye's `final_seq`, summed over sessions;
//! * `lost` = numbers in that span that the conditioner saw but the
//!   receiver did not receive: dropped, still held (in flight: they leave
//!   `lost` when released, as they do at the receiver), or released too late
//!   to count (after their session was replaced, or [`crate::core::tracker::WINDOW`]
//!   numbers late). Drops before the first delivered number or after the
//!   last (with no goodbye to announce them) are invisible to every
//!   receiver, so they are counted in [`ConditionerCounts::dropped`] but not
//!   in `lost`. A later, reordered arrival below the first one widens the
//!   span and makes the drops it covers visible; so does a goodbye at the
//!   end;
//! * `received` = distinct numbers delivered; `duplicates` = deliveries of
//!   a number already delivered; `reordered` = first deliveries after a
//!   higher number of the same session (RFC 1982 serial arithmetic, so
//!   wrap-around is invisible); `restarts`, `malformed`,
//!   `control_datagrams` as the receiver defines them; a delivery from a replaced session, or
//!   [`crate::core::tracker::WINDOW`] or more behind the highest, is stale and counts in
//!   none of these;
//! * the receiver's probation rules (`src/core/tracker.rs`): a new session
//!   id replaces the current one only after [`MIN_SEQUENTIAL`] consecutive
//!   numbers with no fresh delivery of the current session in between, or
//!   at once after the current session's goodbye (nothing delivered after
//!   its `final_seq`); a number more than [`MAX_DROPOUT`] ahead is held
//!   until another within [`MAX_MISORDER`] of it confirms it; a goodbye's
//!   `final_seq` more than [`MAX_DROPOUT`] ahead is not believed. A held
//!   delivery that is never promoted or confirmed is not received: if the
//!   span comes to cover it, it is lost.
//!
//! The receiver computes `lost = expected − received`; the conditioner
//! counts the numbers it saw go missing. The two agree, at every instant,
//! when the conditioner is the only thing that loses or delays datagrams:
//! numbers in the span that never reached the conditioner show as
//! [`ExpectedFigures::unseen`], and then the receiver's `lost` is
//! `lost + unseen`. This assumes what a tickcast broadcaster does: each
//! number is sent once, and numbers of a session in flight together lie
//! within 2^31 of each other. Stale-by-tick (a late snapshot part whose
//! entities are all older than those applied) depends on the world, not on
//! sequence numbers, and is not modelled; it does not affect the figures
//! above.
//!
//! Memory: the held queue, plus per session the numbers delivered within
//! the last [`crate::core::tracker::WINDOW`] and the missing numbers not yet settled
//! (those above `highest − WINDOW`; a long total blackout keeps one entry
//! per dropped datagram until something is delivered again).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::core::tracker::{MAX_DROPOUT, MAX_MISORDER, MIN_SEQUENTIAL, PAST_SESSIONS, WINDOW};
use crate::wire::{self, Body, Entity};

/// Default extra hold of a reordered datagram (`gap=`): a little more than
/// one 60 Hz tick, so the next tick's datagrams overtake it.
pub const DEFAULT_REORDER_GAP: Duration = Duration::from_millis(20);
/// Default seed of the decision stream.
pub const DEFAULT_SEED: u64 = 1;
/// Longest delay, jitter or reorder gap accepted.
pub const MAX_DELAY: Duration = Duration::from_secs(3600);
/// Names accepted by [`ConditionerConfig::preset`], mildest first.
pub const PRESETS: [&str; 4] = ["lan", "wifi", "mobile", "bad"];
/// The keys a spec string may use, in the order [`fmt::Display`] writes them.
pub const SPEC_KEYS: &str =
    "preset, loss, ge, delay, jitter, jitter_reorder, reorder, gap, dup, seed";

/// Extended numbers start here (a multiple of 2^32, so an extended number's
/// low 32 bits are its sequence number) so that arrivals below the first
/// one never underflow.
const EXT_ORIGIN: u64 = 1 << 40;
/// Sessions whose drops are remembered at once; the oldest beyond that
/// (never the one being tracked) is forgotten.
const MAX_BOOKS: usize = 64;

/// Bursty loss: the two-state Gilbert–Elliott model, stepped per datagram.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct GilbertElliott {
    /// Probability of moving from the good state to the bad one.
    pub p_good_to_bad: f64,
    /// Probability of moving from the bad state back to the good one (the
    /// bad state lasts `1 / p_bad_to_good` datagrams on average).
    pub p_bad_to_good: f64,
    /// Loss probability in the good state.
    pub loss_in_good: f64,
    /// Loss probability in the bad state.
    pub loss_in_bad: f64,
}

impl GilbertElliott {
    /// Long-run share of time in the bad state: `p_gb / (p_gb + p_bg)`
    /// (0 when neither transition can happen: the chain stays good).
    pub fn stationary_bad(&self) -> f64 {
        let s = self.p_good_to_bad + self.p_bad_to_good;
        if s == 0.0 {
            0.0
        } else {
            self.p_good_to_bad / s
        }
    }

    /// Long-run loss rate: `π_bad × loss_in_bad + (1 − π_bad) × loss_in_good`.
    pub fn stationary_loss(&self) -> f64 {
        let bad = self.stationary_bad();
        bad * self.loss_in_bad + (1.0 - bad) * self.loss_in_good
    }

    fn probabilities(&self) -> [(&'static str, f64); 4] {
        [
            ("ge", self.p_good_to_bad),
            ("ge", self.p_bad_to_good),
            ("ge", self.loss_in_good),
            ("ge", self.loss_in_bad),
        ]
    }
}

/// The loss model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub enum Loss {
    /// Nothing is lost.
    #[default]
    None,
    /// Each datagram is lost with this probability, independently.
    Uniform(f64),
    /// Bursty loss.
    GilbertElliott(GilbertElliott),
}

impl Loss {
    /// The long-run loss rate of the model.
    pub fn long_run_rate(&self) -> f64 {
        match self {
            Loss::None => 0.0,
            Loss::Uniform(p) => *p,
            Loss::GilbertElliott(g) => g.stationary_loss(),
        }
    }
}

/// What the conditioner does to datagrams. Build one from a preset, a spec
/// string (`"loss=0.05,delay=20ms"`, see [`ConditionerConfig::apply_spec`])
/// or by hand with `..Default::default()`; the default impairs nothing.
/// Its `Display` is a spec string that parses back to the same config.
#[derive(Clone, Debug, PartialEq)]
pub struct ConditionerConfig {
    /// The loss model (`loss=` or `ge=`).
    pub loss: Loss,
    /// Base one-way delay (`delay=`).
    pub delay: Duration,
    /// Jitter: each datagram's delay varies uniformly within ± this (`jitter=`).
    pub jitter: Duration,
    /// Let jitter alone reorder datagrams (`jitter_reorder=true`); by default
    /// a release time is never earlier than the previous in-order one.
    pub allow_jitter_reorder: bool,
    /// Probability that a datagram is held back by `reorder_gap` (`reorder=`).
    pub reorder: f64,
    /// How long a reordered datagram is held back beyond its delay (`gap=`).
    pub reorder_gap: Duration,
    /// Probability that a datagram is duplicated (`dup=`).
    pub duplicate: f64,
    /// Seed of the decision stream (`seed=`).
    pub seed: u64,
}

impl Default for ConditionerConfig {
    fn default() -> Self {
        ConditionerConfig {
            loss: Loss::None,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            allow_jitter_reorder: false,
            reorder: 0.0,
            reorder_gap: DEFAULT_REORDER_GAP,
            duplicate: 0.0,
            seed: DEFAULT_SEED,
        }
    }
}

/// Why a spec string, preset name or configuration was refused. Each message
/// is one line naming the offending item.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// A key no spec defines.
    #[error("unknown key `{0}` in impairment spec (known: {SPEC_KEYS})")]
    UnknownKey(String),
    /// An item without `=`.
    #[error("`{0}` is not key=value (example: loss=0.05,delay=20ms)")]
    NotKeyValue(String),
    /// A key given twice.
    #[error("`{0}` given twice in one spec")]
    Repeated(String),
    /// Both `loss=` and `ge=`.
    #[error("loss= and ge= are both loss models: give one")]
    TwoLossModels,
    /// `preset=` after other keys.
    #[error("preset= must come first in a spec, as it replaces every setting")]
    PresetNotFirst,
    /// A probability outside 0..=1.
    #[error("{key}={value}: not a probability (give 0..1, or 0%..100%)")]
    BadProbability {
        /// The key.
        key: &'static str,
        /// The value given.
        value: String,
    },
    /// A duration that does not parse or is too long.
    #[error("{key}={value}: not a duration of at most 1h (examples: 0, 250us, 20ms, 1.5s)")]
    BadDuration {
        /// The key.
        key: &'static str,
        /// The value given.
        value: String,
    },
    /// A `ge=` value without four parts.
    #[error(
        "ge={0}: give four probabilities p_good_to_bad/p_bad_to_good/loss_in_good/loss_in_bad"
    )]
    BadGilbertElliott(String),
    /// A seed that is not a u64.
    #[error("seed={0}: not a whole number from 0 to 18446744073709551615")]
    BadSeed(String),
    /// A flag that is not true/false.
    #[error("{key}={value}: give true or false")]
    BadBool {
        /// The key.
        key: &'static str,
        /// The value given.
        value: String,
    },
    /// A preset name that does not exist.
    #[error("unknown preset `{0}` (known: lan, wifi, mobile, bad)")]
    UnknownPreset(String),
}

fn probability(key: &'static str, value: &str) -> Result<f64, SpecError> {
    let bad = || SpecError::BadProbability {
        key,
        value: value.to_string(),
    };
    let v = value.trim();
    let p = match v.strip_suffix('%') {
        Some(pct) => pct.trim().parse::<f64>().map_err(|_| bad())? / 100.0,
        None => v.parse::<f64>().map_err(|_| bad())?,
    };
    check_probability(key, p).map_err(|_| bad())
}

fn check_probability(key: &'static str, p: f64) -> Result<f64, SpecError> {
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(SpecError::BadProbability {
            key,
            value: p.to_string(),
        })
    }
}

/// Parses `0`, `250ns`, `250us`/`250µs`, `20ms`, `1.5s` (fractions allowed).
fn duration(key: &'static str, value: &str) -> Result<Duration, SpecError> {
    let bad = || SpecError::BadDuration {
        key,
        value: value.to_string(),
    };
    let v = value.trim();
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (number, unit) = v.split_at(split);
    let scale = match unit.trim() {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "" if number.parse::<f64>().ok() == Some(0.0) => 0.0,
        _ => return Err(bad()),
    };
    let n: f64 = number.parse().map_err(|_| bad())?;
    let ns = (n * scale).round();
    if !ns.is_finite() || ns > MAX_DELAY.as_nanos() as f64 {
        return Err(bad());
    }
    Ok(Duration::from_nanos(ns as u64))
}

fn boolean(key: &'static str, value: &str) -> Result<bool, SpecError> {
    match value.trim() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(SpecError::BadBool {
            key,
            value: value.to_string(),
        }),
    }
}

/// Writes a duration the way [`duration`] reads it back exactly.
fn fmt_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        "0".into()
    } else if ns.is_multiple_of(1_000_000) {
        format!("{}ms", ns / 1_000_000)
    } else if ns.is_multiple_of(1_000) {
        format!("{}us", ns / 1_000)
    } else {
        format!("{ns}ns")
    }
}

impl ConditionerConfig {
    /// A named preset, with the default seed. The numbers follow the ladder
    /// game network simulators use (Unity's Network Simulator presets, and
    /// issue 4: from about 12 ms / 3 ms jitter / 0.1 % loss up to
    /// 300 ms / 75 ms / 6 %):
    ///
    /// | preset   | delay  | jitter  | loss                                   | dup  | reorder (gap 20 ms) |
    /// |----------|--------|---------|----------------------------------------|------|---------------------|
    /// | `lan`    | 1 ms   | ±0.2 ms | 0                                      | 0    | 0                   |
    /// | `wifi`   | 12 ms  | ±3 ms   | 0.1 % uniform                          | 0    | 0                   |
    /// | `mobile` | 60 ms  | ±15 ms  | 1 % bursty: `ge=0.005/0.245/0/0.5`     | 0    | 0                   |
    /// | `bad`    | 300 ms | ±75 ms  | 6 % bursty: `ge=0.03/0.22/0/0.5`       | 1 %  | 1 %                 |
    ///
    /// The bursty presets spend 2 % (`mobile`) and 12 % (`bad`) of the time in
    /// the bad state, in stays of about 4 datagrams, and lose half of the
    /// datagrams there: stationary loss exactly 1 % and 6 %.
    pub fn preset(name: &str) -> Result<ConditionerConfig, SpecError> {
        let ms = Duration::from_millis;
        let c = ConditionerConfig::default();
        Ok(match name.trim() {
            "lan" => ConditionerConfig {
                delay: ms(1),
                jitter: Duration::from_micros(200),
                ..c
            },
            "wifi" => ConditionerConfig {
                loss: Loss::Uniform(0.001),
                delay: ms(12),
                jitter: ms(3),
                ..c
            },
            "mobile" => ConditionerConfig {
                loss: Loss::GilbertElliott(GilbertElliott {
                    p_good_to_bad: 0.005,
                    p_bad_to_good: 0.245,
                    loss_in_good: 0.0,
                    loss_in_bad: 0.5,
                }),
                delay: ms(60),
                jitter: ms(15),
                ..c
            },
            "bad" => ConditionerConfig {
                loss: Loss::GilbertElliott(GilbertElliott {
                    p_good_to_bad: 0.03,
                    p_bad_to_good: 0.22,
                    loss_in_good: 0.0,
                    loss_in_bad: 0.5,
                }),
                delay: ms(300),
                jitter: ms(75),
                reorder: 0.01,
                duplicate: 0.01,
                ..c
            },
            other => return Err(SpecError::UnknownPreset(other.to_string())),
        })
    }

    /// Applies a spec string on top of this config: comma-separated
    /// `key=value` items, each setting one field, later items never
    /// contradicting earlier ones (a key given twice is an error).
    ///
    /// | key | value | sets |
    /// |---|---|---|
    /// | `preset` | `lan`, `wifi`, `mobile`, `bad` (first item only) | everything, to the preset |
    /// | `loss` | probability: `0.05` or `5%` | uniform loss |
    /// | `ge` | `p_gb/p_bg/loss_good/loss_bad`, four probabilities | Gilbert–Elliott loss |
    /// | `delay`, `jitter`, `gap` | `0`, `250us`, `20ms`, `1.5s` (≤ 1 h) | base delay, ± jitter, reorder gap |
    /// | `jitter_reorder` | `true` / `false` | [`allow_jitter_reorder`](Self::allow_jitter_reorder) |
    /// | `reorder`, `dup` | probability | reordering, duplication |
    /// | `seed` | u64 | the decision stream |
    ///
    /// Example: `loss=0.05,delay=20ms,jitter=5ms,reorder=0.01,dup=0.01,seed=7`.
    /// On error `self` is left unchanged.
    pub fn apply_spec(&mut self, spec: &str) -> Result<(), SpecError> {
        let mut c = self.clone();
        let mut seen: Vec<&str> = Vec::new();
        for item in spec.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| SpecError::NotKeyValue(item.to_string()))?;
            let key = key.trim();
            if seen.contains(&key) {
                return Err(SpecError::Repeated(key.to_string()));
            }
            match key {
                "preset" if !seen.is_empty() => return Err(SpecError::PresetNotFirst),
                "preset" => c = ConditionerConfig::preset(value)?,
                "loss" | "ge" if seen.contains(&"loss") || seen.contains(&"ge") => {
                    return Err(SpecError::TwoLossModels)
                }
                "loss" => c.loss = Loss::Uniform(probability("loss", value)?),
                "ge" => {
                    let parts: Vec<&str> = value.split('/').collect();
                    let [gb, bg, lg, lb] = parts[..] else {
                        return Err(SpecError::BadGilbertElliott(value.to_string()));
                    };
                    c.loss = Loss::GilbertElliott(GilbertElliott {
                        p_good_to_bad: probability("ge", gb)?,
                        p_bad_to_good: probability("ge", bg)?,
                        loss_in_good: probability("ge", lg)?,
                        loss_in_bad: probability("ge", lb)?,
                    });
                }
                "delay" => c.delay = duration("delay", value)?,
                "jitter" => c.jitter = duration("jitter", value)?,
                "gap" => c.reorder_gap = duration("gap", value)?,
                "jitter_reorder" => c.allow_jitter_reorder = boolean("jitter_reorder", value)?,
                "reorder" => c.reorder = probability("reorder", value)?,
                "dup" => c.duplicate = probability("dup", value)?,
                "seed" => {
                    c.seed = value
                        .trim()
                        .parse()
                        .map_err(|_| SpecError::BadSeed(value.to_string()))?
                }
                other => return Err(SpecError::UnknownKey(other.to_string())),
            }
            seen.push(key);
        }
        *self = c;
        Ok(())
    }

    /// Checks a hand-built config: probabilities in 0..=1 (not NaN) and
    /// durations at most [`MAX_DELAY`]. Parsed configs always pass.
    pub fn validate(&self) -> Result<(), SpecError> {
        let mut probabilities = vec![("reorder", self.reorder), ("dup", self.duplicate)];
        match self.loss {
            Loss::None => {}
            Loss::Uniform(p) => probabilities.push(("loss", p)),
            Loss::GilbertElliott(g) => probabilities.extend(g.probabilities()),
        }
        for (key, p) in probabilities {
            check_probability(key, p)?;
        }
        for (key, d) in [
            ("delay", self.delay),
            ("jitter", self.jitter),
            ("gap", self.reorder_gap),
        ] {
            if d > MAX_DELAY {
                return Err(SpecError::BadDuration {
                    key,
                    value: fmt_duration(d),
                });
            }
        }
        Ok(())
    }
}

impl FromStr for ConditionerConfig {
    type Err = SpecError;

    /// A spec string applied to the default (unimpaired) config.
    fn from_str(spec: &str) -> Result<Self, SpecError> {
        let mut c = ConditionerConfig::default();
        c.apply_spec(spec)?;
        Ok(c)
    }
}

impl fmt::Display for ConditionerConfig {
    /// The spec string of this config (settings that differ from the
    /// default, and always the seed); it parses back to an equal config.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = ConditionerConfig::default();
        match self.loss {
            Loss::None => {}
            Loss::Uniform(p) => write!(f, "loss={p},")?,
            Loss::GilbertElliott(g) => write!(
                f,
                "ge={}/{}/{}/{},",
                g.p_good_to_bad, g.p_bad_to_good, g.loss_in_good, g.loss_in_bad
            )?,
        }
        if self.delay != d.delay {
            write!(f, "delay={},", fmt_duration(self.delay))?;
        }
        if self.jitter != d.jitter {
            write!(f, "jitter={},", fmt_duration(self.jitter))?;
        }
        if self.allow_jitter_reorder {
            write!(f, "jitter_reorder=true,")?;
        }
        if self.reorder != d.reorder {
            write!(f, "reorder={},", self.reorder)?;
        }
        if self.reorder_gap != d.reorder_gap {
            write!(f, "gap={},", fmt_duration(self.reorder_gap))?;
        }
        if self.duplicate != d.duplicate {
            write!(f, "dup={},", self.duplicate)?;
        }
        write!(f, "seed={}", self.seed)
    }
}

/// What the conditioner did, exactly. `datagrams_in + duplicated ==
/// dropped + delivered + held` always holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ConditionerCounts {
    /// Datagrams pushed in.
    pub datagrams_in: u64,
    /// Of those, datagrams that did not decode as tickcast, forwarded unimpaired.
    pub passed_undecoded: u64,
    /// Datagrams dropped by the loss model (never released).
    pub dropped: u64,
    /// Extra copies made by duplication.
    pub duplicated: u64,
    /// Datagrams held back by the reorder gap (they are overtaken if others
    /// arrive within the gap).
    pub held_back: u64,
    /// Datagrams released, copies included.
    pub delivered: u64,
    /// Delivered datagrams, not duplicate copies, released after one with a
    /// higher sequence number of the same session (RFC 1982).
    pub reordered: u64,
    /// Datagrams waiting for their release time now.
    pub held: u64,
}

/// The figures a tickcast receiver that gets exactly the released datagrams,
/// in release order, must report (same names and meanings as
/// [`crate::core::figures::Figures`]); computed from the conditioner's own decisions.
/// `received + lost + unseen == expected` always holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ExpectedFigures {
    /// Per session, highest − lowest number delivered + 1, the highest
    /// raised to a delivered goodbye's `final_seq`; summed over sessions.
    pub expected: u64,
    /// Distinct numbers delivered (each once).
    pub received: u64,
    /// Numbers in the expected span that the conditioner saw and the
    /// receiver did not receive: dropped, held right now, or released too
    /// late to count. A receiver's `lost` is `lost + unseen`.
    pub lost: u64,
    /// Deliveries of a number already delivered in that session.
    pub duplicates: u64,
    /// First deliveries after a higher number of the same session.
    pub reordered: u64,
    /// New session ids delivered after the first.
    pub restarts: u64,
    /// Delivered datagrams that do not decode.
    pub malformed: u64,
    /// Delivered valid datagrams outside the stream (subscription kinds).
    pub control_datagrams: u64,
    /// Every datagram delivered (the receiver's `datagrams`).
    pub datagrams: u64,
    /// Numbers in the expected span that never reached the conditioner (lost
    /// before it): 0 when it is the only place datagrams are lost.
    pub unseen: u64,
}

/// What [`Conditioner::push`] decided for one datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Dropped: it will never be released.
    Dropped,
    /// Queued for release at `release_ns`.
    Queued {
        /// When it is released.
        release_ns: u64,
        /// It was held back by the reorder gap.
        held_back: bool,
        /// A copy is released right after it.
        duplicated: bool,
    },
    /// Not a tickcast datagram: queued unimpaired for release at `release_ns`.
    Undecoded {
        /// When it is released.
        release_ns: u64,
    },
}

/// One datagram's decision, as [`Conditioner::push`] draws it, or as a test
/// scripts it for [`Conditioner::push_decided`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Decision {
    /// Drop it (the other fields are then ignored).
    pub drop: bool,
    /// Signed jitter added to the base delay, in nanoseconds.
    pub jitter_ns: i64,
    /// Hold it back by the reorder gap.
    pub hold_back: bool,
    /// Release a copy right after it.
    pub duplicate: bool,
}

/// What the conditioner read from a datagram.
#[derive(Clone, Copy, Debug)]
enum Class {
    /// Not tickcast: forwarded unimpaired.
    Undecoded,
    /// Valid, outside the stream (no sequence number).
    Unsequenced,
    /// A stream datagram.
    Sequenced(Tag),
}

/// What the conditioner read from a stream datagram.
#[derive(Clone, Copy, Debug)]
struct Tag {
    session: u64,
    seq: u32,
    /// Extended against the newest number pushed in this session.
    ext: u64,
    goodbye_final: Option<u32>,
}

#[derive(Debug)]
struct Held {
    datagram: Vec<u8>,
    class: Class,
    copy: bool,
}

/// Signed RFC 1982 distance from `a` to `b` (positive when `b` is after
/// `a`; exactly 2^31 reads as behind, as in the receiver).
fn serial(a: u32, b: u32) -> i64 {
    i64::from(b.wrapping_sub(a) as i32)
}

/// `seq` extended against the extended number `near`.
fn extend(near: u64, seq: u32) -> u64 {
    near.wrapping_add_signed(serial(near as u32, seq))
}

/// What a receiver tracks of one session, rebuilt from the delivered order.
#[derive(Debug)]
struct Span {
    lowest: u64,
    highest: u64,
    /// A delivered goodbye's final number, while nothing after it was delivered.
    final_ext: Option<u64>,
    /// A number more than `MAX_DROPOUT` ahead of `highest`, held until confirmed.
    jump: Option<u64>,
    received: u64,
    /// Numbers delivered within the window behind `highest`.
    delivered: BTreeSet<u64>,
}

impl Span {
    fn top(&self) -> u64 {
        self.highest.max(self.final_ext.unwrap_or(0))
    }

    fn expected(&self) -> u64 {
        self.top() - self.lowest + 1
    }

    /// The highest moves up to `ext`: a goodbye it passes and a held jump
    /// it comes within `MAX_DROPOUT` of are forgotten, as the receiver does.
    fn raise(&mut self, ext: u64) {
        self.highest = ext;
        if self.final_ext.is_some_and(|f| ext > f) {
            self.final_ext = None;
        }
        if self.jump.is_some_and(|j| j <= ext + MAX_DROPOUT) {
            self.jump = None;
        }
    }
}

/// Everything known about one session: drops, and the receiver's view once
/// something of it was delivered.
#[derive(Debug)]
struct Book {
    id: u64,
    /// Newest number pushed, extended.
    pushed_highest: u64,
    /// Newest number delivered, extended (for [`ConditionerCounts::reordered`]).
    delivered_highest: Option<u64>,
    /// Numbers pushed (dropped, held, or released too late) and not
    /// received, extended; those `WINDOW` behind the highest are settled.
    missing: BTreeSet<u64>,
    /// Missing numbers settled as inside the span for good.
    settled_lost: u64,
    span: Option<Span>,
}

impl Book {
    fn new(id: u64, ext: u64) -> Book {
        Book {
            id,
            pushed_highest: ext,
            delivered_highest: None,
            missing: BTreeSet::new(),
            settled_lost: 0,
            span: None,
        }
    }

    /// Lost as a receiver counts it: missing numbers in the span.
    fn lost(&self) -> u64 {
        self.span.as_ref().map_or(0, |s| {
            self.settled_lost + self.missing.range(s.lowest..=s.top()).count() as u64
        })
    }

    /// Notes a number the conditioner saw that is not received (yet).
    fn note_missing(&mut self, ext: u64) {
        match &self.span {
            Some(s) if s.delivered.contains(&ext) => {}
            // Stale if it is ever released: missing for good, if in the span.
            Some(s) if s.highest - ext.min(s.highest) >= WINDOW => {
                self.settled_lost += u64::from(ext >= s.lowest);
            }
            _ => {
                self.missing.insert(ext);
            }
        }
    }

    /// Forgets what is `WINDOW` or more behind the highest delivered: such
    /// numbers are stale for the receiver, so a missing one there is settled
    /// (inside the span now means inside it for good, as the lowest can only
    /// move to numbers within the window) and a delivery there is never a
    /// duplicate.
    fn settle(&mut self) {
        let Some(s) = &mut self.span else { return };
        let keep_from = s.highest.saturating_sub(WINDOW) + 1;
        s.delivered = s.delivered.split_off(&keep_from);
        let recent = self.missing.split_off(&keep_from);
        let old = std::mem::replace(&mut self.missing, recent);
        self.settled_lost += old.range(s.lowest..).count() as u64;
    }
}

/// How a delivered datagram looks to the receiver's sequence tracking.
enum Verdict {
    Fresh {
        reordered: bool,
    },
    Duplicate,
    Stale,
    /// Held by the receiver's probation: not received (yet).
    Unproven,
}

/// A new session id on probation, as the receiver keeps it.
#[derive(Clone, Copy, Debug)]
struct Candidate {
    id: u64,
    /// Extended number of the first of its run of consecutive numbers.
    first_ext: u64,
    last: u32,
    run: u32,
}

/// The seeded, sans-IO link conditioner. See the module docs.
#[derive(Debug)]
pub struct Conditioner {
    config: ConditionerConfig,
    delay_ns: u64,
    jitter_ns: i64,
    gap_ns: u64,
    rng: StdRng,
    /// Gilbert–Elliott state: in the bad state.
    bad: bool,
    /// Held datagrams by (release time, arrival order).
    queue: BTreeMap<(u64, u64), Held>,
    next_order: u64,
    /// Release time of the last datagram queued in order (not held back).
    floor_ns: u64,
    counts: ConditionerCounts,
    entities: Vec<Entity>,
    books: Vec<Book>,
    /// The session the receiver tracks now.
    current: Option<u64>,
    /// The new session the receiver holds on probation.
    candidate: Option<Candidate>,
    /// Sessions the receiver replaced, newest last, at most [`PAST_SESSIONS`].
    past: VecDeque<u64>,
    /// Figures of replaced sessions plus the session-independent counters.
    totals: ExpectedFigures,
}

impl Conditioner {
    /// A conditioner that has seen nothing, after checking `config`.
    pub fn new(config: ConditionerConfig) -> Result<Conditioner, SpecError> {
        config.validate()?;
        let ns = |d: Duration| u64::try_from(d.as_nanos()).expect("validated: at most 1h");
        Ok(Conditioner {
            delay_ns: ns(config.delay),
            jitter_ns: ns(config.jitter) as i64,
            gap_ns: ns(config.reorder_gap),
            rng: StdRng::seed_from_u64(config.seed),
            config,
            bad: false,
            queue: BTreeMap::new(),
            next_order: 0,
            floor_ns: 0,
            counts: ConditionerCounts::default(),
            entities: Vec::new(),
            books: Vec::new(),
            current: None,
            candidate: None,
            past: VecDeque::new(),
            totals: ExpectedFigures::default(),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &ConditionerConfig {
        &self.config
    }

    /// Decides the fate of `datagram`, which arrived at `now_ns`, drawing
    /// from the seeded stream, and queues it (and any copy) for release.
    pub fn push(&mut self, now_ns: u64, datagram: &[u8]) -> Fate {
        match self.read(datagram) {
            Class::Undecoded => self.queue_undecoded(now_ns, datagram),
            class => {
                let decision = self.decide();
                self.apply(now_ns, datagram, class, decision)
            }
        }
    }

    /// Like [`push`](Self::push) with the decision given instead of drawn:
    /// the random stream is not advanced (the Gilbert–Elliott state neither).
    /// For scripted scenarios with exactly known outcomes.
    pub fn push_decided(&mut self, now_ns: u64, datagram: &[u8], decision: Decision) -> Fate {
        match self.read(datagram) {
            Class::Undecoded => self.queue_undecoded(now_ns, datagram),
            class => self.apply(now_ns, datagram, class, decision),
        }
    }

    /// Releases the next datagram whose release time is at or before
    /// `now_ns`, in release-time order (ties in arrival order; a copy right
    /// after its original). `poll_transmit(u64::MAX)` flushes everything.
    pub fn poll_transmit(&mut self, now_ns: u64) -> Option<Vec<u8>> {
        let (&(release, _), _) = self.queue.first_key_value()?;
        if release > now_ns {
            return None;
        }
        let (_, held) = self.queue.pop_first()?;
        self.counts.held -= 1;
        self.counts.delivered += 1;
        self.totals.datagrams += 1;
        match held.class {
            Class::Undecoded => self.totals.malformed += 1,
            Class::Unsequenced => self.totals.control_datagrams += 1,
            Class::Sequenced(tag) => self.deliver(tag, held.copy),
        }
        Some(held.datagram)
    }

    /// The next release time, if anything is held: sleep until then.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.queue.first_key_value().map(|(&(t, _), _)| t)
    }

    /// What the conditioner did so far.
    pub fn counts(&self) -> ConditionerCounts {
        self.counts
    }

    /// The figures a receiver of exactly the datagrams released so far, in
    /// release order, must report (see the module docs).
    pub fn expected_receiver_figures(&self) -> ExpectedFigures {
        let mut f = self.totals;
        if let Some(b) = self.current.and_then(|id| self.book(id)) {
            let s = b.span.as_ref().expect("the current session has a span");
            f.expected += s.expected();
            f.received += s.received;
            f.lost += b.lost();
        }
        // Never negative for a source that sends each number once.
        f.unseen = f.expected.saturating_sub(f.received + f.lost);
        f
    }

    fn read(&mut self, datagram: &[u8]) -> Class {
        self.counts.datagrams_in += 1;
        let Ok(packet) = wire::decode(datagram, &mut self.entities) else {
            return Class::Undecoded;
        };
        if !packet.body.kind().is_sequenced() {
            return Class::Unsequenced;
        }
        let goodbye_final = match packet.body {
            Body::Goodbye(g) => Some(g.final_seq),
            _ => None,
        };
        let i = self.book_index(packet.session, EXT_ORIGIN + u64::from(packet.seq));
        let book = &mut self.books[i];
        let ext = extend(book.pushed_highest, packet.seq);
        book.pushed_highest = book.pushed_highest.max(ext);
        Class::Sequenced(Tag {
            session: packet.session,
            seq: packet.seq,
            ext,
            goodbye_final,
        })
    }

    fn chance(rng: &mut StdRng, p: f64) -> bool {
        p > 0.0 && rng.random_bool(p)
    }

    fn decide(&mut self) -> Decision {
        let rng = &mut self.rng;
        let drop = match self.config.loss {
            Loss::None => false,
            Loss::Uniform(p) => Self::chance(rng, p),
            Loss::GilbertElliott(g) => {
                let flip = if self.bad {
                    g.p_bad_to_good
                } else {
                    g.p_good_to_bad
                };
                if Self::chance(rng, flip) {
                    self.bad = !self.bad;
                }
                Self::chance(
                    rng,
                    if self.bad {
                        g.loss_in_bad
                    } else {
                        g.loss_in_good
                    },
                )
            }
        };
        if drop {
            return Decision {
                drop,
                ..Decision::default()
            };
        }
        let j = self.jitter_ns;
        Decision {
            drop,
            jitter_ns: if j > 0 { rng.random_range(-j..=j) } else { 0 },
            hold_back: Self::chance(rng, self.config.reorder),
            duplicate: Self::chance(rng, self.config.duplicate),
        }
    }

    fn enqueue(&mut self, release_ns: u64, datagram: Vec<u8>, class: Class, copy: bool) {
        self.queue.insert(
            (release_ns, self.next_order),
            Held {
                datagram,
                class,
                copy,
            },
        );
        self.next_order += 1;
        self.counts.held += 1;
    }

    fn queue_undecoded(&mut self, now_ns: u64, datagram: &[u8]) -> Fate {
        self.counts.passed_undecoded += 1;
        let release_ns = now_ns.saturating_add(self.delay_ns).max(self.floor_ns);
        self.floor_ns = release_ns;
        self.enqueue(release_ns, datagram.to_vec(), Class::Undecoded, false);
        Fate::Undecoded { release_ns }
    }

    fn apply(&mut self, now_ns: u64, datagram: &[u8], class: Class, d: Decision) -> Fate {
        if let Class::Sequenced(tag) = class {
            let i = self.book_index(tag.session, tag.ext);
            self.books[i].note_missing(tag.ext);
        }
        if d.drop {
            self.counts.dropped += 1;
            return Fate::Dropped;
        }
        let target = now_ns
            .saturating_add(self.delay_ns)
            .saturating_add_signed(d.jitter_ns)
            .max(now_ns);
        let mut release_ns = if self.config.allow_jitter_reorder {
            target
        } else {
            target.max(self.floor_ns)
        };
        if d.hold_back {
            self.counts.held_back += 1;
            release_ns = release_ns.saturating_add(self.gap_ns);
        } else {
            self.floor_ns = release_ns;
        }
        if d.duplicate {
            self.counts.duplicated += 1;
            self.enqueue(release_ns, datagram.to_vec(), class, false);
            self.enqueue(release_ns, datagram.to_vec(), class, true);
        } else {
            self.enqueue(release_ns, datagram.to_vec(), class, false);
        }
        Fate::Queued {
            release_ns,
            held_back: d.hold_back,
            duplicated: d.duplicate,
        }
    }

    fn book(&self, id: u64) -> Option<&Book> {
        self.books.iter().find(|b| b.id == id)
    }

    /// The book of session `id`, created with `ext` as its newest number if
    /// there is none.
    fn book_index(&mut self, id: u64, ext: u64) -> usize {
        if let Some(i) = self.books.iter().position(|b| b.id == id) {
            return i;
        }
        if self.books.len() == MAX_BOOKS {
            let current = self.current;
            if let Some(i) = self.books.iter().position(|b| Some(b.id) != current) {
                self.books.remove(i);
            }
        }
        self.books.push(Book::new(id, ext));
        self.books.len() - 1
    }

    /// Accounts one released, decodable datagram as the receiver will see it.
    fn deliver(&mut self, tag: Tag, copy: bool) {
        let i = self.book_index(tag.session, tag.ext);
        let book = &mut self.books[i];
        if !copy && book.delivered_highest.is_some_and(|h| tag.ext < h) {
            self.counts.reordered += 1;
        }
        book.delivered_highest = Some(book.delivered_highest.map_or(tag.ext, |h| h.max(tag.ext)));

        let verdict = if self.current == Some(tag.session) {
            let v = Self::classify(&mut self.books[i], tag.seq);
            if matches!(v, Verdict::Fresh { .. }) {
                self.candidate = None;
            }
            v
        } else if self.past.contains(&tag.session) {
            Verdict::Stale
        } else if self.current_said_goodbye() == Some(false) {
            self.probation(tag)
        } else {
            self.start_session(tag.session, tag.ext, 1);
            Verdict::Fresh { reordered: false }
        };
        match verdict {
            Verdict::Stale | Verdict::Unproven => {}
            Verdict::Duplicate => self.totals.duplicates += 1,
            Verdict::Fresh { reordered } => {
                self.totals.reordered += u64::from(reordered);
                if let Some(final_seq) = tag.goodbye_final {
                    let i = self.book_index(tag.session, tag.ext);
                    let s = self.books[i].span.as_mut().expect("fresh means tracked");
                    let f = extend(s.highest, final_seq);
                    if f >= s.highest && f - s.highest <= MAX_DROPOUT {
                        s.final_ext = Some(f);
                    }
                }
            }
        }
    }

    /// Whether the current session said goodbye (`None`: there is none).
    fn current_said_goodbye(&self) -> Option<bool> {
        let b = self.book(self.current?)?;
        Some(b.span.as_ref().is_some_and(|s| s.final_ext.is_some()))
    }

    /// A delivery of a new session id while the current one has not said
    /// goodbye: the receiver's probation.
    fn probation(&mut self, tag: Tag) -> Verdict {
        let c = match self.candidate {
            Some(c) if c.id == tag.session && tag.seq == c.last.wrapping_add(1) => Candidate {
                last: tag.seq,
                run: c.run + 1,
                ..c
            },
            _ => Candidate {
                id: tag.session,
                first_ext: tag.ext,
                last: tag.seq,
                run: 1,
            },
        };
        if c.run >= MIN_SEQUENTIAL {
            self.start_session(c.id, c.first_ext, c.run);
            Verdict::Fresh { reordered: false }
        } else {
            self.candidate = Some(c);
            Verdict::Unproven
        }
    }

    /// The receiver's classification of a number of the current session.
    fn classify(book: &mut Book, seq: u32) -> Verdict {
        let s = book.span.as_mut().expect("the current session has a span");
        let ext = extend(s.highest, seq);
        let reordered = if ext > s.highest + MAX_DROPOUT {
            match s.jump {
                Some(held) if held != ext && held.abs_diff(ext) <= MAX_MISORDER => {
                    s.raise(held.max(ext));
                    s.jump = None;
                    s.delivered.insert(held);
                    s.received += 1;
                    book.missing.remove(&held);
                    ext < held
                }
                _ => {
                    s.jump = Some(ext);
                    return Verdict::Unproven;
                }
            }
        } else if ext > s.highest {
            s.raise(ext);
            false
        } else if s.highest - ext >= WINDOW {
            return Verdict::Stale;
        } else if ext >= s.lowest && s.delivered.contains(&ext) {
            return Verdict::Duplicate;
        } else {
            s.lowest = s.lowest.min(ext);
            true
        };
        let s = book.span.as_mut().expect("the current session has a span");
        s.delivered.insert(ext);
        s.received += 1;
        book.missing.remove(&ext);
        book.settle();
        Verdict::Fresh { reordered }
    }

    /// A session the receiver takes over, with the `run` consecutive
    /// numbers from `first_ext` received: the current session's figures go
    /// to the totals and counting starts afresh.
    fn start_session(&mut self, session: u64, first_ext: u64, run: u32) {
        self.candidate = None;
        if let Some(old) = self.current.take() {
            if let Some(i) = self.books.iter().position(|b| b.id == old) {
                let b = self.books.remove(i);
                let s = b.span.as_ref().expect("the current session has a span");
                self.totals.expected += s.expected();
                self.totals.received += s.received;
                self.totals.lost += b.lost();
            }
            self.totals.restarts += 1;
            if self.past.len() == PAST_SESSIONS {
                self.past.pop_front();
            }
            self.past.push_back(old);
        }
        let i = self.book_index(session, first_ext);
        let book = &mut self.books[i];
        let run: Vec<u64> = (0..u64::from(run)).map(|k| first_ext + k).collect();
        for ext in &run {
            book.missing.remove(ext);
        }
        book.span = Some(Span {
            lowest: first_ext,
            highest: first_ext + run.len() as u64 - 1,
            final_ext: None,
            jump: None,
            received: run.len() as u64,
            delivered: run.into_iter().collect(),
        });
        book.settle();
        self.current = Some(session);
    }
}

/// RFC 1982 distance, re-exported for callers that compare numbers the
/// way the conditioner does (the same rule as [`crate::core::tracker::serial_distance`]).
pub fn serial_distance(a: u32, b: u32) -> i64 {
    serial(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ingest::Ingest;
    use crate::core::world::WorldWriter;
    use crate::wire::{Goodbye, Packet, Ping, Pong, SenderReport, SnapshotHead};

    const MS: u64 = 1_000_000;

    fn snap(session: u64, seq: u32, tick: u64) -> Vec<u8> {
        let p = Packet {
            session,
            seq,
            body: Body::Snapshot(SnapshotHead {
                tick,
                scheduled_ns: 1,
                sent_ns: 2,
                part: 0,
                parts: 1,
            }),
        };
        let e = [Entity {
            id: (tick % 7) as u32,
            x: 1.0,
            y: 2.0,
            z: 3.0,
        }];
        wire::encode_to_vec(&p, &e).unwrap()
    }

    fn control(session: u64, seq: u32, body: Body) -> Vec<u8> {
        wire::encode_to_vec(&Packet { session, seq, body }, &[]).unwrap()
    }

    fn goodbye(session: u64, seq: u32, final_seq: u32) -> Vec<u8> {
        let g = Goodbye {
            sent_ns: 1,
            final_seq,
            packets_sent: 0,
        };
        control(session, seq, Body::Goodbye(g))
    }

    /// A broadcaster-like stream: `n` numbered packets of `session` from
    /// `first`, a report every 50, and three goodbye copies at the end.
    fn stream(session: u64, first: u32, n: u32) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let s = |i: u32| first.wrapping_add(i);
        for i in 0..n {
            if i % 50 == 49 {
                let r = SenderReport {
                    sent_ns: 1,
                    packets_sent: u64::from(i) + 1,
                    ticks_sent: 0,
                    ticks_skipped: 0,
                };
                out.push(control(session, s(i), Body::SenderReport(r)));
            } else {
                out.push(snap(session, s(i), u64::from(i)));
            }
        }
        for c in 0..3 {
            out.push(goodbye(session, s(n + c), s(n + 2)));
        }
        out
    }

    /// Pushes each datagram 1 ms apart, releasing as time passes, then
    /// flushes. Returns the released datagrams in order.
    fn run(c: &mut Conditioner, input: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for (i, d) in input.iter().enumerate() {
            let now = i as u64 * MS;
            c.push(now, d);
            while let Some(d) = c.poll_transmit(now) {
                out.push(d);
            }
        }
        while let Some(d) = c.poll_transmit(u64::MAX) {
            out.push(d);
        }
        out
    }

    fn cond(spec: &str) -> Conditioner {
        Conditioner::new(spec.parse().unwrap()).unwrap()
    }

    /// What a real receiver pipeline reports for `released`.
    fn receiver_figures(released: &[Vec<u8>]) -> ExpectedFigures {
        let mut ing = Ingest::new(WorldWriter::new(1024));
        for d in released {
            ing.handle(d, 10);
        }
        let f = ing.figures();
        ExpectedFigures {
            expected: f.expected,
            received: f.received,
            lost: f.lost,
            duplicates: f.duplicates,
            reordered: f.reordered,
            restarts: f.restarts,
            malformed: f.malformed,
            control_datagrams: f.control_datagrams,
            datagrams: f.datagrams,
            unseen: 0,
        }
    }

    fn check_invariants(c: &Conditioner) {
        let k = c.counts();
        assert_eq!(
            k.datagrams_in + k.duplicated,
            k.dropped + k.delivered + k.held,
            "{k:?}"
        );
        let e = c.expected_receiver_figures();
        assert_eq!(e.received + e.lost + e.unseen, e.expected, "{e:?}");
    }

    #[test]
    fn same_seed_same_fates_different_seed_different_fates() {
        let input = stream(7, u32::MAX - 100, 2_000);
        let spec = "ge=0.05/0.3/0.01/0.6,delay=5ms,jitter=3ms,reorder=0.05,dup=0.05";
        let outcome = |seed: u64| {
            let mut c = cond(&format!("{spec},seed={seed}"));
            let fates: Vec<Fate> = input
                .iter()
                .enumerate()
                .map(|(i, d)| c.push(i as u64 * MS, d))
                .collect();
            (fates, run(&mut c, &[]), c.counts())
        };
        assert_eq!(outcome(3), outcome(3));
        assert_ne!(outcome(3).0, outcome(4).0);
    }

    #[test]
    fn zero_impairment_is_the_identity_in_order_and_at_once() {
        let input = stream(1, 5, 300);
        let mut c = Conditioner::new(ConditionerConfig::default()).unwrap();
        for (i, d) in input.iter().enumerate() {
            let now = 1_000 + i as u64;
            assert_eq!(
                c.push(now, d),
                Fate::Queued {
                    release_ns: now,
                    held_back: false,
                    duplicated: false
                }
            );
            assert_eq!(c.poll_timeout(), Some(now));
            assert_eq!(c.poll_transmit(now).as_ref(), Some(d));
            assert_eq!(c.poll_transmit(now), None);
        }
        let k = c.counts();
        assert_eq!(
            (k.datagrams_in, k.delivered, k.dropped, k.held),
            (303, 303, 0, 0)
        );
        let e = c.expected_receiver_figures();
        assert_eq!(
            (e.expected, e.received, e.lost, e.reordered),
            (303, 303, 0, 0)
        );
    }

    #[test]
    fn delay_holds_until_due_and_poll_timeout_says_when() {
        let mut c = cond("delay=10ms");
        let d = snap(1, 0, 0);
        c.push(5 * MS, &d);
        assert_eq!(c.poll_timeout(), Some(15 * MS));
        assert_eq!(c.poll_transmit(15 * MS - 1), None);
        assert_eq!(c.poll_transmit(15 * MS), Some(d));
        assert_eq!(c.poll_timeout(), None);
    }

    #[test]
    fn jitter_alone_never_reorders_unless_allowed() {
        let input = stream(1, 0, 3_000);
        let mut c = cond("delay=5ms,jitter=4ms,seed=9");
        assert_eq!(run(&mut c, &input), input);
        assert_eq!(c.counts().reordered, 0);
        let mut c = cond("delay=5ms,jitter=4ms,jitter_reorder=true,seed=9");
        let out = run(&mut c, &input);
        assert_ne!(out, input);
        assert!(c.counts().reordered > 0);
        assert_eq!(receiver_figures(&out), c.expected_receiver_figures());
    }

    /// The hand-built case: every figure is known in advance.
    #[test]
    fn scripted_decisions_give_exact_counts() {
        let s = |i: u32| (u32::MAX - 2).wrapping_add(i); // wraps between 2 and 3
        let keep = Decision::default();
        let drop = Decision { drop: true, ..keep };
        let hold = Decision {
            hold_back: true,
            ..keep
        };
        let dup = Decision {
            duplicate: true,
            ..keep
        };
        let ping = control(
            1,
            0,
            Body::Ping(Ping {
                nonce: 1,
                sent_ns: 1,
            }),
        );
        let mut c = cond("gap=10ms");
        let script: Vec<(Vec<u8>, Decision)> = vec![
            (snap(1, s(0), 0), drop), // before the first delivered: invisible
            (snap(1, s(1), 1), hold), // overtaken by 2 and 3: reordered, widens the span
            (snap(1, s(2), 2), keep),
            (snap(1, s(3), 3), drop),         // inside the span: lost
            (snap(1, s(4), 4), dup),          // one duplicate
            (b"not tickcast".to_vec(), drop), // undecodable: passed, the decision is ignored
            (snap(1, s(5), 5), keep),
            (ping, keep),                   // outside the stream: control
            (goodbye(1, s(6), s(8)), drop), // goodbye copies 6 and 7 dropped,
            (goodbye(1, s(7), s(8)), drop),
            (goodbye(1, s(8), s(8)), keep), // 8 delivered: tail loss 6, 7 counted
            (snap(1, s(9), 9), drop),       // after the goodbye's end: invisible
        ];
        let mut out = Vec::new();
        for (i, (d, decision)) in script.iter().enumerate() {
            c.push_decided(i as u64 * MS, d, *decision);
            while let Some(d) = c.poll_transmit(i as u64 * MS) {
                out.push(d);
            }
        }
        while let Some(d) = c.poll_transmit(u64::MAX) {
            out.push(d);
        }
        let k = c.counts();
        assert_eq!(
            (k.datagrams_in, k.passed_undecoded, k.dropped, k.duplicated),
            (12, 1, 5, 1)
        );
        assert_eq!(
            (k.held_back, k.delivered, k.reordered, k.held),
            (1, 8, 1, 0)
        );
        let e = c.expected_receiver_figures();
        // Span s(1)..=s(8): 8 numbers; received 1, 2, 4, 5, 8; lost 3, 6, 7.
        assert_eq!(
            (e.expected, e.received, e.lost, e.duplicates, e.reordered),
            (8, 5, 3, 1, 1)
        );
        assert_eq!(
            (
                e.malformed,
                e.control_datagrams,
                e.datagrams,
                e.unseen,
                e.restarts
            ),
            (1, 1, 8, 0, 0)
        );
        assert_eq!(receiver_figures(&out), e);
        check_invariants(&c);
    }

    #[test]
    fn drops_before_the_first_delivered_are_invisible_until_a_late_one_widens_the_span() {
        let keep = Decision::default();
        let drop = Decision { drop: true, ..keep };
        let mut c = cond("gap=10ms");
        c.push_decided(0, &snap(1, 10, 0), drop);
        c.push_decided(
            0,
            &snap(1, 11, 0),
            Decision {
                hold_back: true,
                ..keep
            },
        );
        c.push_decided(0, &snap(1, 12, 0), drop);
        c.push_decided(0, &snap(1, 13, 0), keep);
        c.poll_transmit(0);
        let e = c.expected_receiver_figures();
        assert_eq!((e.expected, e.received, e.lost), (1, 1, 0));
        assert_eq!(c.counts().dropped, 2);
        c.poll_transmit(u64::MAX);
        let e = c.expected_receiver_figures();
        // 11 arrives late: span 11..=13, and the drop of 12 is now visible; 10 never is.
        assert_eq!((e.expected, e.received, e.lost, e.reordered), (3, 2, 1, 1));
    }

    #[test]
    fn restart_and_late_packets_of_the_old_session() {
        let keep = Decision::default();
        let hold = Decision {
            hold_back: true,
            ..keep
        };
        let drop = Decision { drop: true, ..keep };
        let mut c = cond("gap=10ms");
        let mut out = Vec::new();
        let script = [
            (snap(1, 100, 0), keep),
            (snap(1, 101, 1), drop),
            (snap(1, 102, 2), hold), // released after session 2 started: stale
            (snap(1, 103, 3), keep),
            // No goodbye: session 2 takes over at its second consecutive number.
            (snap(2, 7, 0), keep),
            (snap(2, 8, 1), keep),
            (snap(2, 9, 2), drop),
            (snap(2, 10, 3), keep),
        ];
        for (d, decision) in &script {
            c.push_decided(0, d, *decision);
            while let Some(d) = c.poll_transmit(0) {
                out.push(d);
            }
        }
        while let Some(d) = c.poll_transmit(u64::MAX) {
            out.push(d);
        }
        let e = c.expected_receiver_figures();
        // Session 1: span 100..=103, received 100 and 103, lost 101 (dropped)
        // and 102 (held at the restart, released stale after it).
        // Session 2: 7..=10, lost 9.
        assert_eq!(
            (e.expected, e.received, e.lost, e.restarts, e.unseen),
            (4 + 4, 2 + 3, 2 + 1, 1, 0)
        );
        assert_eq!(receiver_figures(&out), e);
    }

    /// The receiver's probation and jump rules, modelled: a candidate
    /// dropped by a late packet of the current session, one promoted, a
    /// forged jump ignored and a real one confirmed.
    #[test]
    fn probation_and_jumps_match_the_receiver() {
        let keep = Decision::default();
        let hold = Decision {
            hold_back: true,
            ..keep
        };
        let mut c = cond("gap=10ms");
        let mut out = Vec::new();
        let far = MAX_DROPOUT as u32 + 50;
        let script = [
            (snap(1, 0, 0), keep),
            (snap(1, 1, 1), hold), // released after session 2 took over: stale
            (snap(1, 2, 2), keep),
            (snap(1, 2 + far, 3), keep), // a lone jump: held, never confirmed
            (snap(1, 3, 4), keep),
            (snap(2, 40, 0), keep),
            (snap(2, 41, 1), keep),
        ];
        for (i, (d, decision)) in script.iter().enumerate() {
            let now = i as u64 * MS;
            c.push_decided(now, d, *decision);
            while let Some(d) = c.poll_transmit(now) {
                out.push(d);
            }
        }
        for (d, decision) in [
            (snap(2, 42, 2), keep),
            (snap(2, 42 + far, 3), keep), // a real outage: held...
            (snap(2, 43 + far, 4), keep), // ...and confirmed
            (snap(3, 0, 0), keep),        // a candidate...
            (snap(2, 44 + far, 5), keep), // ...dropped by the live session
            (snap(3, 1, 1), keep),        // so this starts a new run
        ] {
            c.push_decided(100 * MS, &d, decision);
            while let Some(d) = c.poll_transmit(100 * MS) {
                out.push(d);
            }
        }
        while let Some(d) = c.poll_transmit(u64::MAX) {
            out.push(d);
        }
        let e = c.expected_receiver_figures();
        // Session 1: 0..=3, 1 lost (stale), the lone jump outside the span.
        // Session 2: 40..=44+far, 6 received; the outage was never pushed.
        assert_eq!(
            (e.expected, e.received, e.lost),
            (4 + 5 + u64::from(far), 3 + 6, 1)
        );
        assert_eq!((e.restarts, e.unseen), (1, u64::from(far) - 1));
        let r = receiver_figures(&out);
        assert_eq!(
            (r.expected, r.received, r.lost, r.restarts),
            (e.expected, e.received, e.lost + e.unseen, e.restarts)
        );
        check_invariants(&c);
    }

    /// Random fates against the real receive pipeline (`Ingest`), across the
    /// wrap, with restarts (after a goodbye, and on probation without one),
    /// goodbyes, reports and garbage: every figure equal.
    #[test]
    fn random_runs_match_the_receive_pipeline_exactly() {
        let specs = [
            "loss=0.05,dup=0.02,reorder=0.02,gap=20ms,delay=2ms",
            "preset=bad",
            "preset=mobile,reorder=0.1,gap=3ms",
            "ge=0.2/0.2/0.1/0.9,dup=0.3,reorder=0.3,gap=5ms,jitter=10ms,jitter_reorder=true",
            "loss=0.5,reorder=0.5,gap=50ms",
            "loss=1",
        ];
        for spec in specs {
            for seed in 0..6 {
                let mut input = stream(0xa, u32::MAX - 500, 1_500);
                input.insert(700, b"garbage in the middle".to_vec());
                for at in [0, 300, 900] {
                    let pong = Pong {
                        nonce: at as u64,
                        ping_sent_ns: 1,
                        bc_recv_ns: 2,
                    };
                    input.insert(at, control(0xa, 0, Body::Pong(pong)));
                }
                // 0xb dies without a goodbye: 0xc passes probation, with
                // 0xb's late packets in its way.
                let mut b = stream(0xb, 12, 400);
                b.truncate(b.len() - 3);
                input.extend(b);
                input.extend(stream(0xc, u32::MAX - 1, 300));
                input.extend(stream(0xa, 2_000, 5)); // an old session, stale
                let mut c = cond(&format!("{spec},seed={seed}"));
                let out = run(&mut c, &input);
                let e = c.expected_receiver_figures();
                assert_eq!(e.unseen, 0, "{spec} seed {seed}");
                assert_eq!(receiver_figures(&out), e, "{spec} seed {seed}");
                check_invariants(&c);
            }
        }
    }

    #[test]
    fn duplicate_copy_follows_its_original_at_once() {
        let mut c = cond("dup=1,delay=1ms");
        let (a, b) = (snap(1, 0, 0), snap(1, 1, 1));
        c.push(0, &a);
        c.push(0, &b); // same release time as a's pair, but arrived later
        let out: Vec<_> = std::iter::from_fn(|| c.poll_transmit(MS)).collect();
        assert_eq!(out, [a.clone(), a, b.clone(), b]);
        let e = c.expected_receiver_figures();
        assert_eq!((e.received, e.duplicates, e.reordered), (2, 2, 0));
        assert_eq!(c.counts().reordered, 0);
    }

    /// Steps the loss model alone `n` times; returns the loss rate.
    fn loss_rate(config: &str, n: u32) -> f64 {
        let mut c = cond(config);
        let lost = (0..n).filter(|_| c.decide().drop).count();
        lost as f64 / f64::from(n)
    }

    #[test]
    fn gilbert_elliott_long_run_loss_matches_the_stationary_formula() {
        // Statistical but bounded and seeded: 1e6 steps per model.
        for spec in ["ge=0.01/0.3/0/0.5", "preset=bad"] {
            let Loss::GilbertElliott(g) = spec.parse::<ConditionerConfig>().unwrap().loss else {
                unreachable!()
            };
            let want = g.stationary_loss();
            let got = loss_rate(spec, 1_000_000);
            assert!(
                (got - want).abs() <= 0.1 * want,
                "{spec}: {got} vs stationary {want}"
            );
        }
        let bad = ConditionerConfig::preset("bad").unwrap();
        assert!((bad.loss.long_run_rate() - 0.06).abs() < 1e-12);
        let mobile = ConditionerConfig::preset("mobile").unwrap();
        assert!((mobile.loss.long_run_rate() - 0.01).abs() < 1e-12);
    }

    #[test]
    fn gilbert_elliott_losses_come_in_bursts() {
        // Same long-run rate, uniform vs bursty: bursty has longer loss runs.
        let runs = |spec: &str| {
            let mut c = cond(spec);
            let (mut runs, mut in_run, mut lost) = (0u32, false, 0u32);
            for _ in 0..200_000 {
                let l = c.decide().drop;
                lost += u32::from(l);
                runs += u32::from(l && !in_run);
                in_run = l;
            }
            f64::from(lost) / f64::from(runs)
        };
        assert!(runs("preset=bad") > 1.3 * runs("loss=0.06"));
    }

    #[test]
    fn presets_parse_and_display_round_trips() {
        for name in PRESETS {
            let c = ConditionerConfig::preset(name).unwrap();
            c.validate().unwrap();
            assert_eq!(
                c.to_string().parse::<ConditionerConfig>().unwrap(),
                c,
                "{name}"
            );
            let via_spec: ConditionerConfig = format!("preset={name}").parse().unwrap();
            assert_eq!(via_spec, c);
        }
        let c: ConditionerConfig = "loss=0.05,delay=20ms,jitter=5ms,reorder=0.01,dup=0.01,seed=7"
            .parse()
            .unwrap();
        assert_eq!(c.loss, Loss::Uniform(0.05));
        assert_eq!(
            (c.delay, c.jitter),
            (Duration::from_millis(20), Duration::from_millis(5))
        );
        assert_eq!((c.reorder, c.duplicate, c.seed), (0.01, 0.01, 7));
        assert_eq!(c.to_string().parse::<ConditionerConfig>().unwrap(), c);
        let g: ConditionerConfig = "ge=0.01/0.3/0/0.5, delay = 1.5ms ,gap=250us,"
            .parse()
            .unwrap();
        assert_eq!(g.delay, Duration::from_micros(1_500));
        assert_eq!(g.reorder_gap, Duration::from_micros(250));
        assert_eq!(g.to_string().parse::<ConditionerConfig>().unwrap(), g);
        let pct: ConditionerConfig = "loss=5%".parse().unwrap();
        assert_eq!(pct.loss, Loss::Uniform(0.05));
        let mut on_preset = ConditionerConfig::preset("bad").unwrap();
        on_preset.apply_spec("seed=3,dup=0").unwrap();
        assert_eq!(
            (on_preset.seed, on_preset.duplicate, on_preset.reorder),
            (3, 0.0, 0.01)
        );
        assert_eq!(
            "".parse::<ConditionerConfig>().unwrap(),
            ConditionerConfig::default()
        );
    }

    #[test]
    fn spec_errors_are_clear_one_liners() {
        let cases = [
            ("lsos=0.1", "unknown key `lsos`"),
            ("loss", "`loss` is not key=value"),
            ("loss=1.5", "loss=1.5: not a probability"),
            ("loss=-1%", "loss=-1%: not a probability"),
            ("dup=NaN", "dup=NaN: not a probability"),
            ("delay=5x", "delay=5x: not a duration"),
            ("jitter=2h", "jitter=2h: not a duration"),
            ("delay=5", "delay=5: not a duration"),
            ("ge=0.1/0.2", "ge=0.1/0.2: give four probabilities"),
            ("ge=0.1/0.2/0/2", "ge=2: not a probability"),
            (
                "loss=0.1,ge=0.1/0.2/0/1",
                "loss= and ge= are both loss models",
            ),
            ("loss=0.1,loss=0.2", "`loss` given twice"),
            ("seed=-1", "seed=-1: not a whole number"),
            (
                "jitter_reorder=maybe",
                "jitter_reorder=maybe: give true or false",
            ),
            (
                "preset=dialup",
                "unknown preset `dialup` (known: lan, wifi, mobile, bad)",
            ),
            ("seed=1,preset=lan", "preset= must come first"),
        ];
        for (spec, want) in cases {
            let e = spec.parse::<ConditionerConfig>().unwrap_err().to_string();
            assert!(e.contains(want), "{spec}: {e}");
            assert!(!e.contains('\n'), "{spec}: {e}");
        }
        let mut c = ConditionerConfig::preset("wifi").unwrap();
        let before = c.clone();
        assert!(c.apply_spec("delay=1ms,loss=2").is_err());
        assert_eq!(c, before, "a failed spec changes nothing");
        let bad = ConditionerConfig {
            reorder: f64::NAN,
            ..ConditionerConfig::default()
        };
        assert!(Conditioner::new(bad).is_err());
    }

    #[test]
    fn window_rules_match_the_receiver() {
        // A number far behind the highest is stale; its drop is settled.
        let keep = Decision::default();
        let drop = Decision { drop: true, ..keep };
        let hold = Decision {
            hold_back: true,
            ..keep
        };
        let mut c = cond("gap=1s");
        let mut input: Vec<(Vec<u8>, Decision)> = vec![
            (snap(1, 0, 0), keep),
            (snap(1, 1, 1), drop),
            (snap(1, 2, 2), hold),
        ];
        let far = WINDOW as u32 + 10;
        input.push((snap(1, far, 3), keep));
        input.push((snap(1, far + 1, 4), drop));
        input.push((snap(1, far + 2, 5), keep));
        let mut out = Vec::new();
        for (d, decision) in &input {
            c.push_decided(0, d, *decision);
            while let Some(d) = c.poll_transmit(0) {
                out.push(d);
            }
        }
        while let Some(d) = c.poll_transmit(u64::MAX) {
            out.push(d);
        }
        let e = c.expected_receiver_figures();
        // Span 0..=far+2; received 0, far, far+2; lost 1, far+1 (dropped)
        // and 2 (released WINDOW late: stale); 3..far never pushed.
        assert_eq!((e.expected, e.received, e.lost), (u64::from(far) + 3, 3, 3));
        assert_eq!(e.unseen, u64::from(far) - 3);
        let r = receiver_figures(&out);
        assert_eq!(
            (r.expected, r.received, r.lost),
            (e.expected, e.received, e.lost + e.unseen)
        );
    }

    #[test]
    fn serial_distance_is_the_receivers_rule() {
        for (a, b) in [(0, 1), (u32::MAX, 0), (0, u32::MAX), (0, 1 << 31), (5, 5)] {
            assert_eq!(
                serial_distance(a, b),
                crate::core::tracker::serial_distance(a, b)
            );
        }
    }
}
