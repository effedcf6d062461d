//! What a conditioner does, as configuration: [`ConditionerConfig`], the
//! named presets, and the spec string (`loss=0.05,delay=20ms,...`) that
//! `--impair` and `tickcast impair --spec` take, with its one-line errors
//! ([`SpecError`]). A config's `Display` is a spec string that parses back
//! to the same config.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::loss::{GilbertElliott, Loss};

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
    /// Jitter (`jitter=`): the delay varies within ± this, centred on
    /// `delay`. By default it is the link's at each instant, moving
    /// smoothly (see the conditioner's module docs), so it never reorders;
    /// with `allow_jitter_reorder`, uniform per datagram.
    pub jitter: Duration,
    /// Draw the jitter per datagram, uniformly, and let it reorder
    /// datagrams (`jitter_reorder=true`); by default it is the link's at
    /// each instant and a release time is never earlier than the previous
    /// in-order one.
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
    /// datagrams there: stationary loss exactly 1 % and 6 %. The delay is
    /// the median one-way delay the conditioner adds (a test holds every
    /// preset to it within 10 %); the relay adds its own wake-up latency.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::conditioner::Conditioner;

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
}
