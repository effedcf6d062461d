//! Many benchmark runs: the cartesian product of entity counts, receiver
//! counts and tick rates ([`product`], [`run`]). What the points say about
//! cost is [`super::scaling`]'s; the search for the most entities a link
//! and a receiver take is [`super::search`]'s.
//!
//! The list parsing and the product are pure and take no time; only
//! [`run`] runs benchmarks.

use std::ops::ControlFlow;
use std::time::Duration;

use serde::Serialize;

use super::{BenchConfig, BenchError, BenchReport, Progress};
use crate::runtime::broadcaster::MAX_RATE_HZ;

/// Duration of one sweep point unless told otherwise.
pub const POINT_DURATION: Duration = Duration::from_secs(3);

/// Parses a comma-separated list of counts; `k` and `M` multiply by a
/// thousand and a million (`1k,10k,100k`, `1,4,8`).
pub fn parse_counts(s: &str) -> Result<Vec<u32>, String> {
    parse_list(s, |item| {
        let (digits, unit) = match item.strip_suffix(['k', 'K']) {
            Some(d) => (d, 1_000),
            None => match item.strip_suffix('M') {
                Some(d) => (d, 1_000_000),
                None => (item, 1),
            },
        };
        digits
            .parse::<u32>()
            .ok()
            .and_then(|n| n.checked_mul(unit))
            .ok_or_else(|| format!("{item:?} is not a count (examples: 500, 10k, 1M)"))
    })
}

/// Parses a comma-separated list of tick rates in hertz (`30,60,120`).
pub fn parse_rates(s: &str) -> Result<Vec<f64>, String> {
    parse_list(s, |item| match item.parse::<f64>() {
        Ok(hz) if hz > 0.0 && hz <= MAX_RATE_HZ => Ok(hz),
        _ => Err(format!(
            "{item:?} is not a tick rate in (0, {MAX_RATE_HZ}] Hz"
        )),
    })
}

fn parse_list<T>(s: &str, item: impl Fn(&str) -> Result<T, String>) -> Result<Vec<T>, String> {
    let items: Vec<T> = s
        .split(',')
        .map(str::trim)
        .filter(|i| !i.is_empty())
        .map(item)
        .collect::<Result<_, _>>()?;
    if items.is_empty() {
        return Err("the list is empty (example: 1,4,8)".into());
    }
    Ok(items)
}

/// One point of a sweep.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct SweepPoint {
    /// Entities in the world.
    pub entities: u32,
    /// Receivers.
    pub receivers: usize,
    /// Ticks per second.
    pub rate_hz: f64,
}

/// Every combination, entities outermost, then receivers, then rate.
pub fn product(entities: &[u32], receivers: &[usize], rates: &[f64]) -> Vec<SweepPoint> {
    let mut points = Vec::with_capacity(entities.len() * receivers.len() * rates.len());
    for &e in entities {
        for &r in receivers {
            for &hz in rates {
                points.push(SweepPoint {
                    entities: e,
                    receivers: r,
                    rate_hz: hz,
                });
            }
        }
    }
    points
}

/// A sweep point's result, one table row.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SweepRow {
    /// The point.
    #[serde(flatten)]
    pub point: SweepPoint,
    /// Packets lost, all receivers.
    pub lost: u64,
    /// Packets expected, all receivers.
    pub expected: u64,
    /// `lost / expected`.
    pub loss_ratio: f64,
    /// Datagrams dropped at the receivers' sockets.
    pub socket_drops: u64,
    /// Ticks the broadcaster skipped because it fell behind.
    pub ticks_skipped: u64,
    /// Ticks the broadcaster sent.
    pub ticks_sent: u64,
    /// Median one-way latency from send time, all receivers, µs (`None`
    /// without samples, as for the two below).
    pub p50_us: Option<f64>,
    /// 99th percentile of it, µs.
    pub p99_us: Option<f64>,
    /// 99th percentile of latency from the tick's scheduled time, µs.
    pub p99_scheduled_us: Option<f64>,
    /// Sender CPU time, seconds.
    pub sender_cpu_s: Option<f64>,
    /// Sender CPU, percent of one core.
    pub sender_cpu_percent: Option<f64>,
    /// CPU time of all receivers, seconds.
    pub receiver_cpu_s: Option<f64>,
    /// CPU of one receiver on average, percent of one core.
    pub receiver_cpu_percent: Option<f64>,
    /// Datagrams the sender sent per second (all receivers).
    pub datagrams_per_s: f64,
    /// Datagrams sent, all receivers.
    pub datagrams_sent: u64,
    /// Entity records applied, all receivers.
    pub entities_applied: u64,
    /// With a link conditioner: every receiver's figures equal its conditioner's.
    pub conditioner_equal: Option<bool>,
}

impl SweepRow {
    /// The row for a finished run.
    pub fn of(r: &BenchReport) -> SweepRow {
        let t = &r.total.figures;
        let k = r.receivers.len().max(1) as f64;
        SweepRow {
            point: SweepPoint {
                entities: r.setup.entities,
                receivers: r.setup.receivers,
                rate_hz: r.setup.rate_hz,
            },
            lost: t.counters.lost,
            expected: t.counters.expected,
            loss_ratio: t.loss_ratio,
            socket_drops: t.counters.socket_drops,
            ticks_skipped: r.sender.figures.ticks_skipped,
            ticks_sent: r.sender.figures.ticks_sent,
            p50_us: t.latency_us.map(|l| l.p50),
            p99_us: t.latency_us.map(|l| l.p99),
            p99_scheduled_us: t.latency_scheduled_us.map(|l| l.p99),
            sender_cpu_s: r.sender.cpu.map(|c| c.seconds),
            sender_cpu_percent: r.sender.cpu.map(|c| c.percent_of_core),
            receiver_cpu_s: r.total.cpu.map(|c| c.seconds),
            receiver_cpu_percent: r.total.cpu.map(|c| c.percent_of_core / k),
            datagrams_per_s: r.sender.datagrams_per_s,
            datagrams_sent: r.sender.figures.datagrams_sent,
            entities_applied: t.counters.entities_applied,
            conditioner_equal: r.conditioner_equal,
        }
    }

    /// Sender CPU per tick sent, µs.
    pub fn sender_us_per_tick(&self) -> Option<f64> {
        let cpu = self.sender_cpu_s?;
        (self.ticks_sent > 0).then(|| cpu * 1e6 / self.ticks_sent as f64)
    }
}

/// Runs every point of `points` on top of `base` (which sets duration,
/// payload, seed, mode), calling `progress` every second of each run and
/// `done` after each point. Either returning `Break` ends the sweep after
/// the current point.
pub fn run(
    base: &BenchConfig,
    points: &[SweepPoint],
    mut progress: impl FnMut(usize, &Progress) -> ControlFlow<()>,
    mut done: impl FnMut(usize, &BenchReport) -> ControlFlow<()>,
) -> Result<Vec<BenchReport>, BenchError> {
    let configs = validate(base, points)?;
    let mut reports = Vec::with_capacity(points.len());
    for (i, config) in configs.iter().enumerate() {
        let report = super::run(config, |p| progress(i, p))?;
        let interrupted = report.interrupted;
        let flow = done(i, &report);
        reports.push(report);
        if interrupted || flow.is_break() {
            break;
        }
    }
    Ok(reports)
}

/// Each point's config on top of `base`, every one checked: what [`run`]
/// runs, so a bad point is found before the first runs.
pub fn validate(base: &BenchConfig, points: &[SweepPoint]) -> Result<Vec<BenchConfig>, BenchError> {
    let configs: Vec<BenchConfig> = points.iter().map(|p| point_config(base, p)).collect();
    for c in &configs {
        c.validate()?;
    }
    Ok(configs)
}

fn point_config(base: &BenchConfig, p: &SweepPoint) -> BenchConfig {
    BenchConfig {
        entities: p.entities,
        receivers: p.receivers,
        rate_hz: p.rate_hz,
        ..base.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_with_thousands_and_millions() {
        assert_eq!(
            parse_counts("1k,10k,100k"),
            Ok(vec![1_000, 10_000, 100_000])
        );
        assert_eq!(parse_counts(" 1, 4 ,8,"), Ok(vec![1, 4, 8]));
        assert_eq!(parse_counts("2M"), Ok(vec![2_000_000]));
        assert!(parse_counts("").is_err());
        assert!(parse_counts("1,x").is_err());
        assert!(parse_counts("-1").is_err());
        assert!(parse_counts("5000M").is_err(), "overflow is an error");
        assert_eq!(parse_rates("30,60,120.5"), Ok(vec![30.0, 60.0, 120.5]));
        assert!(parse_rates("0").is_err());
        assert!(parse_rates("60,1e9").is_err());
        assert!(parse_rates("nan").is_err());
    }

    #[test]
    fn product_has_every_combination_entities_outermost() {
        let p = product(&[1, 2], &[1, 4, 8], &[30.0, 60.0]);
        assert_eq!(p.len(), 12);
        assert_eq!(
            p[0],
            SweepPoint {
                entities: 1,
                receivers: 1,
                rate_hz: 30.0
            }
        );
        assert_eq!(
            p[1],
            SweepPoint {
                entities: 1,
                receivers: 1,
                rate_hz: 60.0
            }
        );
        assert_eq!(p[2].receivers, 4);
        assert_eq!(p[6].entities, 2);
        let mut seen: Vec<(u32, usize, u64)> = p
            .iter()
            .map(|p| (p.entities, p.receivers, p.rate_hz as u64))
            .collect();
        seen.dedup();
        assert_eq!(seen.len(), 12, "no combination twice");
        assert!(product(&[], &[1], &[60.0]).is_empty());
    }
}
