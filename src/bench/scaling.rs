//! What a sweep's points say about cost: [`Scaling`], the sender's and
//! the receivers' CPU per tick fitted over [`SweepRow`]s by non-negative
//! least squares ([`super::fit`]). Pure: it runs nothing.

use serde::Serialize;

use super::fit;
use super::sweep::SweepRow;

/// How cost grows, fitted over sweep rows by non-negative least squares
/// ([`fit::nnls`]): no cost comes out negative, and each fit says how well
/// it fits ([`FitQuality`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Scaling {
    /// The fixed part of the sender's CPU per tick, µs, in the fit
    /// `sender_fixed_us + sender_ns_per_entity × entities +
    /// sender_us_per_datagram × datagrams per tick (all receivers)`. When
    /// the rows cannot separate entities from datagrams (receivers not
    /// varied: datagrams then grow with entities) the per-datagram term is
    /// left out and the per-entity cost includes its datagrams' share;
    /// `None` when entities do not vary either, or with too few points.
    pub sender_fixed_us: Option<f64>,
    /// Sender CPU per entity per tick (simulation and encoding), ns.
    pub sender_ns_per_entity: Option<f64>,
    /// Sender CPU per datagram sent (mostly the send system call), µs.
    pub sender_us_per_datagram: Option<f64>,
    /// What the sender fit is and how well it fits.
    pub sender_fit: Option<FitQuality>,
    /// Sender CPU per entity per tick per receiver, ns: the whole sender
    /// CPU over entities × ticks × receivers, median over the rows.
    pub sender_ns_per_entity_receiver: Option<f64>,
    /// The fixed part of one receiver's CPU per tick, µs, in the fit
    /// `receiver_fixed_us + receiver_ns_per_entity × entities applied per
    /// tick`, per receiver.
    pub receiver_fixed_us: Option<f64>,
    /// Receiver CPU per entity applied (receive, decode, track, apply), ns.
    pub receiver_ns_per_entity: Option<f64>,
    /// What the receiver fit is and how well it fits.
    pub receiver_fit: Option<FitQuality>,
}

/// What a cost fit is and how much to trust it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FitQuality {
    /// The model, in words.
    pub model: &'static str,
    /// Rows fitted.
    pub points: usize,
    /// Share of the variation the model explains (1 is exact; see
    /// [`fit::Fit::r_squared`]); `None` when the cost did not vary.
    pub r_squared: Option<f64>,
    /// The terms (by their field names) held at 0 because least squares
    /// wanted them negative, which a cost cannot be: the points disagree
    /// (noise, a busy machine), and the other terms were fitted without them.
    pub clamped: Vec<&'static str>,
}

/// A model term's column: its value for a row.
type Column = fn(&SweepRow) -> f64;

/// One way of fitting the sender's CPU per tick: the model's words and its
/// terms, each a field name and its column.
struct Model {
    words: &'static str,
    terms: &'static [(&'static str, Column)],
}

fn one(_: &SweepRow) -> f64 {
    1.0
}

fn entities(r: &SweepRow) -> f64 {
    f64::from(r.point.entities)
}

fn datagrams_per_tick(r: &SweepRow) -> f64 {
    r.datagrams_sent as f64 / r.ticks_sent.max(1) as f64
}

/// The sender models, most detailed first: the first the rows can separate is used.
const SENDER_MODELS: [Model; 2] = [
    Model {
        words: "sender CPU per tick = fixed + per entity × entities + per datagram × datagrams sent per tick",
        terms: &[
            ("sender_fixed_us", one),
            ("sender_ns_per_entity", entities),
            ("sender_us_per_datagram", datagrams_per_tick),
        ],
    },
    Model {
        words: "sender CPU per tick = fixed + per entity × entities (datagrams grow with entities here: vary receivers to separate them)",
        terms: &[("sender_fixed_us", one), ("sender_ns_per_entity", entities)],
    },
];

impl Scaling {
    /// Fits the rows (rows without CPU figures, or no ticks sent, are left out).
    pub fn fit(rows: &[SweepRow]) -> Scaling {
        let mut s = Scaling::default();
        let sender: Vec<(&SweepRow, f64)> = rows
            .iter()
            .filter_map(|r| Some((r, r.sender_us_per_tick()?)))
            .collect();
        let y: Vec<f64> = sender.iter().map(|&(_, v)| v).collect();
        for model in &SENDER_MODELS {
            let x: Vec<Vec<f64>> = sender
                .iter()
                .map(|(r, _)| model.terms.iter().map(|(_, f)| f(r)).collect())
                .collect();
            let Some(f) = fit::nnls(&x, &y) else {
                continue;
            };
            for ((name, _), &c) in model.terms.iter().zip(&f.coefficients) {
                match *name {
                    "sender_fixed_us" => s.sender_fixed_us = Some(c),
                    "sender_ns_per_entity" => s.sender_ns_per_entity = Some(c * 1e3),
                    _ => s.sender_us_per_datagram = Some(c),
                }
            }
            let names: Vec<&'static str> = model.terms.iter().map(|&(n, _)| n).collect();
            s.sender_fit = Some(quality(model.words, &names, &f));
            break;
        }
        s.sender_ns_per_entity_receiver = median(rows.iter().filter_map(|r| {
            let work = f64::from(r.point.entities) * r.ticks_sent as f64 * r.point.receivers as f64;
            Some(r.sender_cpu_s? * 1e9 / work).filter(|_| work > 0.0)
        }));
        // One receiver's CPU per tick against the entities it applied per tick.
        let receiver: Vec<[f64; 2]> = rows
            .iter()
            .filter_map(|r| {
                let per = (r.point.receivers.max(1) as f64) * r.ticks_sent as f64;
                (per > 0.0).then_some([
                    r.entities_applied as f64 / per,
                    r.receiver_cpu_s? * 1e6 / per,
                ])
            })
            .collect();
        let x: Vec<Vec<f64>> = receiver.iter().map(|&[e, _]| vec![1.0, e]).collect();
        let y: Vec<f64> = receiver.iter().map(|&[_, v]| v).collect();
        if let Some(f) = fit::nnls(&x, &y) {
            s.receiver_fixed_us = Some(f.coefficients[0]);
            s.receiver_ns_per_entity = Some(f.coefficients[1] * 1e3);
            s.receiver_fit = Some(quality(
                "receiver CPU per tick = fixed + per entity × entities applied per tick (each receiver)",
                &["receiver_fixed_us", "receiver_ns_per_entity"],
                &f,
            ));
        }
        s
    }
}

/// The quality of `f`, a fit of `model` whose terms are named `names`.
fn quality(model: &'static str, names: &[&'static str], f: &fit::Fit) -> FitQuality {
    FitQuality {
        model,
        points: f.points,
        r_squared: f.r_squared,
        clamped: f.clamped.iter().map(|&j| names[j]).collect(),
    }
}

fn median(values: impl Iterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = values.filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::sweep::{product, SweepPoint};

    /// A sweep row of `p` whose sender spent `per_tick_us` per tick over
    /// 600 ticks, sending `dgrams_per_tick`, and whose receivers spent
    /// `rx_us` per tick each applying every entity.
    fn row(p: SweepPoint, per_tick_us: f64, dgrams_per_tick: f64, rx_us: f64) -> SweepRow {
        let ticks = 600u64;
        let k = p.receivers as f64;
        SweepRow {
            point: p,
            lost: 0,
            expected: 1,
            loss_ratio: 0.0,
            socket_drops: 0,
            ticks_skipped: 0,
            ticks_sent: ticks,
            p50_us: Some(1.0),
            p99_us: Some(1.0),
            p99_scheduled_us: Some(1.0),
            sender_cpu_s: Some(per_tick_us * ticks as f64 / 1e6),
            sender_cpu_percent: None,
            receiver_cpu_s: Some(rx_us * k * ticks as f64 / 1e6),
            receiver_cpu_percent: None,
            datagrams_per_s: 0.0,
            datagrams_sent: (dgrams_per_tick * ticks as f64) as u64,
            entities_applied: u64::from(p.entities) * p.receivers as u64 * ticks,
            conditioner_equal: None,
        }
    }

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-6 * b.abs().max(1.0))
    }

    #[test]
    fn scaling_fit_recovers_a_linear_cost() {
        // Sender: 5 µs + 20 ns per entity + 2 µs per datagram, per tick.
        // Each receiver: 3 µs + 1 ns per entity applied, per tick.
        let rows: Vec<SweepRow> = product(&[1_000, 10_000, 100_000], &[1, 4], &[60.0])
            .into_iter()
            .map(|p| {
                let dgrams = (u64::from(p.entities).div_ceil(73) * p.receivers as u64) as f64;
                let tx = 5.0 + 0.020 * f64::from(p.entities) + 2.0 * dgrams;
                row(p, tx, dgrams, 3.0 + 0.001 * f64::from(p.entities))
            })
            .collect();
        let s = Scaling::fit(&rows);
        assert!(close(s.sender_fixed_us, 5.0), "{s:?}");
        assert!(close(s.sender_ns_per_entity, 20.0), "{s:?}");
        assert!(close(s.sender_us_per_datagram, 2.0), "{s:?}");
        assert!(close(s.receiver_fixed_us, 3.0), "{s:?}");
        assert!(close(s.receiver_ns_per_entity, 1.0), "{s:?}");
        for q in [
            s.sender_fit.as_ref().unwrap(),
            s.receiver_fit.as_ref().unwrap(),
        ] {
            assert!(close(q.r_squared, 1.0) && q.clamped.is_empty(), "{q:?}");
            assert_eq!(q.points, 6);
        }
        assert!(s.sender_fit.unwrap().model.contains("per datagram"));
        // Entities alone cannot separate per-entity from per-datagram cost:
        // the fit leaves the datagrams out and says so.
        let one_receiver: Vec<SweepRow> = rows
            .into_iter()
            .filter(|r| r.point.receivers == 1)
            .collect();
        let s = Scaling::fit(&one_receiver);
        assert_eq!(s.sender_us_per_datagram, None);
        let per_entity = s.sender_ns_per_entity.expect("a per-entity cost");
        assert!(
            per_entity > 20.0,
            "it carries the datagrams' share: {per_entity}"
        );
        assert!(s.sender_fit.unwrap().model.contains("vary receivers"));
    }

    /// Regression (issue 10): noisy points made the unconstrained least
    /// squares print negative costs per entity. Non-negative least squares
    /// holds that term at 0, fits the rest, and names it.
    #[test]
    fn a_cost_that_does_not_grow_is_clamped_at_zero_never_negative() {
        // The sender's cost per tick falls a little as entities grow (noise
        // on a machine that got quieter), at every receiver count.
        let rows: Vec<SweepRow> = product(&[1_000, 10_000, 100_000], &[1, 4], &[60.0])
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                let dgrams = (u64::from(p.entities).div_ceil(73) * p.receivers as u64) as f64;
                let tx = 900.0 - 0.001 * f64::from(p.entities) + 0.5 * dgrams;
                let rx = 40.0 - i as f64; // falls from row to row
                row(p, tx, dgrams, rx)
            })
            .collect();
        let s = Scaling::fit(&rows);
        assert_eq!(s.sender_ns_per_entity, Some(0.0), "{s:?}");
        let q = s.sender_fit.as_ref().unwrap();
        assert_eq!(q.clamped, ["sender_ns_per_entity"], "{q:?}");
        assert!(s.sender_us_per_datagram.unwrap() > 0.0 && s.sender_fixed_us.unwrap() > 0.0);
        assert!(q.r_squared.unwrap() < 1.0);
        assert_eq!(s.receiver_ns_per_entity, Some(0.0), "{s:?}");
        assert_eq!(
            s.receiver_fit.as_ref().unwrap().clamped,
            ["receiver_ns_per_entity"]
        );
        for v in [
            s.sender_fixed_us,
            s.sender_ns_per_entity,
            s.sender_us_per_datagram,
            s.receiver_fixed_us,
            s.receiver_ns_per_entity,
        ] {
            assert!(v.unwrap() >= 0.0, "{s:?}");
        }
    }
}
