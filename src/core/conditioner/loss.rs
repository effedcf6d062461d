//! The loss models: none, uniform, or bursty Gilbert–Elliott, and the state
//! the bursty one carries from one datagram to the next. Each step draws
//! from the conditioner's seeded stream only what the model needs (see the
//! parent module's "Reproducibility").

use rand::rngs::StdRng;
use rand::Rng;
use serde::Serialize;

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

    /// Its four probabilities, each named by the spec key that sets it.
    pub(super) fn probabilities(&self) -> [(&'static str, f64); 4] {
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

/// Whether an event of probability `p` happens; draws nothing when `p` is 0.
pub(super) fn chance(rng: &mut StdRng, p: f64) -> bool {
    p > 0.0 && rng.random_bool(p)
}

/// What a loss model remembers between datagrams: for Gilbert–Elliott,
/// whether the chain is in the bad state (it starts good).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct LossState {
    bad: bool,
}

impl LossState {
    /// Steps `model` once for one datagram: whether that datagram is lost.
    /// Gilbert–Elliott first may flip its state, then draws the loss.
    pub(super) fn lose(&mut self, model: &Loss, rng: &mut StdRng) -> bool {
        match *model {
            Loss::None => false,
            Loss::Uniform(p) => chance(rng, p),
            Loss::GilbertElliott(g) => {
                let flip = if self.bad {
                    g.p_bad_to_good
                } else {
                    g.p_good_to_bad
                };
                if chance(rng, flip) {
                    self.bad = !self.bad;
                }
                chance(
                    rng,
                    if self.bad {
                        g.loss_in_bad
                    } else {
                        g.loss_in_good
                    },
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::conditioner::testkit::cond;
    use crate::core::conditioner::ConditionerConfig;

    /// Steps the loss model alone `n` times; returns the loss rate.
    fn loss_rate(config: &str, n: u32) -> f64 {
        let mut c = cond(config);
        let lost = (0..n).filter(|_| c.decide(0).drop).count();
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
                let l = c.decide(0).drop;
                lost += u32::from(l);
                runs += u32::from(l && !in_run);
                in_run = l;
            }
            f64::from(lost) / f64::from(runs)
        };
        assert!(runs("preset=bad") > 1.3 * runs("loss=0.06"));
    }
}
