//! The benchmark's picture, as SVG: the one-way latency distribution (a
//! percentile plot, the x axis spaced by "nines": 0 %, 90 %, 99 %, 99.9 %…,
//! log-scaled latency on y, from send time and from the tick's scheduled
//! time), and each receiver's loss in every second of the run.
//!
//! Drawn with `plotters`' SVG backend, which writes text as SVG `<text>`
//! elements: no font files are read, the viewer renders them.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::us_or_dash;
use tickcast::bench::BenchReport;

/// Width and height of the picture, in pixels.
pub const SIZE: (u32, u32) = (1100, 820);

/// Why the picture could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw the plot: {0}")]
pub struct PlotError(String);

fn err(e: impl std::fmt::Display) -> PlotError {
    PlotError(e.to_string())
}

const SEND: RGBColor = RGBColor(31, 119, 180);
const SCHEDULED: RGBColor = RGBColor(214, 39, 40);
/// Colours of the receivers' loss lines, in turn.
const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];
const FONT: &str = "sans-serif";

/// The picture of `report`, as an SVG document.
pub fn svg(report: &BenchReport) -> Result<String, PlotError> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let s = &report.setup;
        let title = format!(
            "tickcast bench: {} receiver{} ({}), {} entities at {} Hz, {:.0} s",
            s.receivers,
            if s.receivers == 1 { "" } else { "s" },
            s.mode,
            s.entities,
            s.rate_hz,
            s.duration_s
        );
        let root = root.titled(&title, (FONT, 22)).map_err(err)?;
        let (top, bottom) = root.split_vertically(SIZE.1 * 60 / 100);
        latency(&top, report)?;
        loss(&bottom, report)?;
        root.present().map_err(err)?;
    }
    Ok(out)
}

/// "Nines" of quantile `q`: `log10(1 / (1 − q))`, 0 at the median's left
/// end, 1 at 90 %, 2 at 99 %…
fn nines(q: f64) -> f64 {
    -(1.0 - q).max(1e-9).log10()
}

/// The percentile at `x` nines, as a label: `0%`, `90%`, `99.9%`.
fn percent_label(x: f64) -> String {
    let p = (1.0 - 10f64.powf(-x)) * 100.0;
    let decimals = (x.ceil() as usize).saturating_sub(2);
    format!("{p:.decimals$}%")
}

/// A latency axis label: `0.5µs`, `20µs`, `1ms`, `1.5ms`.
fn axis_us(v: f64) -> String {
    if v >= 1000.0 {
        let ms = v / 1000.0;
        if ms.fract() == 0.0 || ms >= 10.0 {
            format!("{ms:.0}ms")
        } else {
            format!("{ms:.1}ms")
        }
    } else if v >= 1.0 {
        format!("{v:.0}µs")
    } else {
        format!("{v:.1}µs")
    }
}

fn decade_below(v: f64) -> f64 {
    10f64.powf(v.log10().floor())
}

fn decade_above(v: f64) -> f64 {
    10f64.powf(v.log10().ceil())
}

fn latency<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    r: &BenchReport,
) -> Result<(), PlotError> {
    let points: Vec<_> = r
        .latency_percentiles
        .iter()
        .filter(|p| p.quantile < 1.0)
        .collect();
    let t = &r.total.figures;
    let whose = if r.setup.mode != "in-process" {
        "worst receiver's percentiles"
    } else {
        "all receivers"
    };
    let mut caption = format!(
        "One-way latency percentiles, {whose} ({} samples)",
        t.latency_us.map_or(0, |l| l.samples)
    );
    if t.counters.latency_negative > 0 {
        caption.push_str(&format!(
            "; {} negative, drawn at the floor",
            t.counters.latency_negative
        ));
    }
    if points.is_empty() {
        return empty(area, &caption, "no latency samples");
    }
    let x_max = points
        .iter()
        .map(|p| nines(p.quantile))
        .fold(1.0, f64::max)
        .ceil();
    let values = points.iter().flat_map(|p| [p.send_us, p.scheduled_us]);
    let lo = values.clone().fold(f64::INFINITY, f64::min).max(0.1);
    let hi = values
        .fold(0.0, f64::max)
        .max(t.latency_us.map_or(0.0, |l| l.max))
        .max(t.latency_scheduled_us.map_or(0.0, |l| l.max))
        .max(lo * 10.0);
    let mut chart = ChartBuilder::on(area)
        .caption(&caption, (FONT, 17))
        .margin(14)
        .margin_right(40)
        .x_label_area_size(42)
        .y_label_area_size(72)
        .build_cartesian_2d(0.0..x_max, (decade_below(lo)..decade_above(hi)).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_labels(x_max as usize + 1)
        .x_label_formatter(&|x| percent_label(*x))
        .y_label_formatter(&|y| axis_us(*y))
        .x_desc("percentile")
        .y_desc("latency")
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .light_line_style(RGBColor(235, 235, 235))
        .bold_line_style(RGBColor(200, 200, 200))
        .draw()
        .map_err(err)?;
    let curves = [
        (
            format!(
                "arrival − send time   p50 {}  p99 {}  max {}",
                us_or_dash(t.latency_us.map(|l| l.p50)),
                us_or_dash(t.latency_us.map(|l| l.p99)),
                us_or_dash(t.latency_us.map(|l| l.max))
            ),
            SEND,
            points
                .iter()
                .map(|p| (nines(p.quantile), p.send_us))
                .collect::<Vec<_>>(),
        ),
        (
            format!(
                "arrival − scheduled tick time   p50 {}  p99 {}  max {}",
                us_or_dash(t.latency_scheduled_us.map(|l| l.p50)),
                us_or_dash(t.latency_scheduled_us.map(|l| l.p99)),
                us_or_dash(t.latency_scheduled_us.map(|l| l.max))
            ),
            SCHEDULED,
            points
                .iter()
                .map(|p| (nines(p.quantile), p.scheduled_us))
                .collect::<Vec<_>>(),
        ),
    ];
    for (label, color, data) in curves {
        if data.len() < 20 {
            // Few points (percentiles only): mark them, the lines between are guesses.
            chart
                .draw_series(data.iter().map(|&p| Circle::new(p, 4, color.filled())))
                .map_err(err)?;
        }
        chart
            .draw_series(LineSeries::new(data, color.stroke_width(2)))
            .map_err(err)?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 22, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .label_font((FONT, 13))
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(180, 180, 180))
        .draw()
        .map_err(err)?;
    Ok(())
}

fn loss<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    r: &BenchReport,
) -> Result<(), PlotError> {
    let seconds = r
        .receivers
        .iter()
        .map(|x| x.loss_per_second.len())
        .max()
        .unwrap_or(0);
    let worst = r
        .receivers
        .iter()
        .flat_map(|x| x.loss_per_second.iter().copied())
        .fold(0.0, f64::max)
        * 100.0;
    let mut caption = if worst == 0.0 && seconds > 0 {
        "Loss per second: none, every receiver, every second".to_string()
    } else {
        "Loss per second, each receiver".to_string()
    };
    if let Some(spec) = &r.setup.impair {
        caption.push_str(&format!(" (link conditioner {spec})"));
    }
    if seconds == 0 {
        return empty(
            area,
            "Loss per second",
            "not recorded (receivers in child processes report only at the end)",
        );
    }
    let y_max = if worst == 0.0 { 1.0 } else { worst * 1.15 };
    let mut chart = ChartBuilder::on(area)
        .caption(&caption, (FONT, 17))
        .margin(14)
        .x_label_area_size(42)
        .y_label_area_size(72)
        .margin_right(40)
        .build_cartesian_2d(0u32..seconds as u32, 0.0..y_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("seconds since the first tick")
        .y_desc("packets lost")
        .y_label_formatter(&|y| format!("{y:.2}%"))
        .x_labels(seconds.min(20) + 1)
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .light_line_style(RGBColor(235, 235, 235))
        .bold_line_style(RGBColor(200, 200, 200))
        .draw()
        .map_err(err)?;
    for (i, rx) in r.receivers.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        // A step per second: the loss holds over the whole second.
        let steps: Vec<(u32, f64)> = rx
            .loss_per_second
            .iter()
            .enumerate()
            .flat_map(|(t, v)| [(t as u32, v * 100.0), (t as u32 + 1, v * 100.0)])
            .collect();
        let series = chart
            .draw_series(LineSeries::new(steps, color.stroke_width(2)))
            .map_err(err)?;
        if i < PALETTE.len() {
            let label = format!(
                "{}: {} lost of {}",
                rx.name, rx.figures.counters.lost, rx.figures.counters.expected
            );
            series.label(label).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 22, y)], color.stroke_width(2))
            });
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FONT, 13))
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(180, 180, 180))
        .draw()
        .map_err(err)?;
    Ok(())
}

fn empty<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    caption: &str,
    why: &str,
) -> Result<(), PlotError> {
    let area = area.titled(caption, (FONT, 17)).map_err(err)?;
    let (w, h) = area.dim_in_pixel();
    area.draw(&Text::new(
        why.to_string(),
        (w as i32 / 2 - 200, h as i32 / 2),
        (FONT, 14).into_font().color(&RGBColor(100, 100, 100)),
    ))
    .map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_labels_count_nines() {
        assert_eq!(percent_label(0.0), "0%");
        assert_eq!(percent_label(1.0), "90%");
        assert_eq!(percent_label(2.0), "99%");
        assert_eq!(percent_label(3.0), "99.9%");
        assert_eq!(percent_label(4.0), "99.99%");
        assert!((nines(0.99) - 2.0).abs() < 1e-9);
        assert_eq!(axis_us(0.5), "0.5µs");
        assert_eq!(axis_us(20.0), "20µs");
        assert_eq!(axis_us(1000.0), "1ms");
        assert_eq!(axis_us(1500.0), "1.5ms");
    }
}
