//! Every human-readable line the command line prints, one file per
//! command family: [`broadcast`], [`receive`], [`demo`], [`impair`],
//! [`bench`] and [`sweep`] (and the SVG, in [`plot`]). Plain string
//! building over the library's figures and configs; no I/O. The commands
//! print what these return; JSON is serde's, and errors are `main`'s. The
//! warnings about cores, which `bench` and `receive` share, are here.

pub mod bench;
pub mod broadcast;
pub mod demo;
pub mod impair;
pub mod plot;
pub mod receive;
pub mod sweep;

use tickcast::core::cores::CoreWarning;

/// Said by `bench` when spinning receivers leave the broadcaster short of
/// a core, and by `receive --mode busy-poll` on a machine of one core.
pub fn core_warning(w: &CoreWarning) -> String {
    format!("tickcast: warning: {w}")
}

/// Said by `bench` and `receive` when busy-polling receivers run under SCHED_FIFO.
pub const FIFO_BUSY_POLL_WARNING: &str =
    "tickcast: warning: a busy-polling receiver under SCHED_FIFO holds its CPU against every \
     ordinary thread (the kernel's real-time throttling leaves them 5 %): give it a CPU \
     nothing else needs (--cpu)";

/// [`us`] of a figure that may be missing (no samples): `-` then.
pub fn us_or_dash(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), us)
}

/// Formats microseconds compactly (`850µs`, `12.3ms`).
pub fn us(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.1}ms", v / 1e3)
    } else if v >= 100.0 {
        format!("{v:.0}µs")
    } else {
        format!("{v:.1}µs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn microseconds_are_compact() {
        assert_eq!(us(12.34), "12.3µs");
        assert_eq!(us(850.0), "850µs");
        assert_eq!(us(12_345.0), "12.3ms");
        assert_eq!(us_or_dash(None), "-");
        assert_eq!(us_or_dash(Some(850.0)), "850µs");
    }
}
