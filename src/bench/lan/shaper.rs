//! `bench --lan --link-rate RATE`: the broadcaster's link as a token bucket
//! of RATE, so a LAN run says what a link of that rate carries.
//!
//! The shaper is a `tbf` queueing discipline on the egress of the
//! broadcaster host's `eth0`, inside that host's namespace (nothing is
//! installed in the host's own network):
//!
//! ```text
//! tc qdisc replace dev eth0 root tbf rate RATE burst BURST latency 50ms
//! ```
//!
//! * **What it counts.** tbf charges each packet its length as the qdisc
//!   sees it: the IP packet plus the 14-byte Ethernet header. A real
//!   Ethernet wire also carries the preamble and start delimiter (8
//!   bytes), the FCS (4) and the inter-frame gap (12), which tbf does not
//!   charge: a real link of RATE carries about 24 bytes a frame less
//!   than this one.
//! * **Burst** ([`LinkRate::burst_bytes`]): a 250th of a second at RATE,
//!   and at least [`MIN_BURST`] (so a 64-datagram GSO message is never
//!   refused as larger than the bucket; tbf splits those that are).
//! * **Queue**: a packet may wait [`MAX_QUEUE_DELAY`] in the shaper; what
//!   would wait longer is dropped there, and counted by the qdisc
//!   ([`ShaperCounts::drops`]). The broadcaster's socket blocks before that
//!   while the shaper holds its send buffer's worth, so an overloaded link
//!   mostly shows as ticks sent late or skipped, and the rest as drops.
//! * **Who sees the loss.** A datagram the shaper drops never reaches a
//!   receiver: it shows as receiver loss, and the qdisc's own counter says
//!   it was the shaper ([`counts`], read once the broadcast is over).
//!
//! The rate parser ([`LinkRate`]'s `FromStr`), the tc arguments
//! ([`tbf_args`]) and the reading of `tc -s qdisc show` ([`parse_counts`])
//! are pure; [`install`] and [`counts`] run tc. Needs tc (iproute2) and the
//! kernel's `sch_tbf`; [`tc_available`] says whether tc runs.

use std::fmt;
use std::process::Command;
use std::str::FromStr;
use std::time::Duration;

use super::netns::{Host, Lan, NetnsError};

/// The interface shaped: the broadcaster host's end of its veth.
pub const DEVICE: &str = "eth0";
/// The smallest token bucket: 32 KiB.
pub const MIN_BURST: u64 = 32 * 1024;
/// The bucket holds this share of a second at the rate: 1/250 s.
pub const BURST_DIVISOR: u64 = 250;
/// Longest a packet may wait in the shaper's queue (tbf's `latency`).
pub const MAX_QUEUE_DELAY: Duration = Duration::from_millis(50);
/// Slowest rate accepted: 100 kbit/s.
pub const MIN_RATE_BIT_PER_S: u64 = 100_000;
/// Fastest rate accepted: 100 gbit/s.
pub const MAX_RATE_BIT_PER_S: u64 = 100_000_000_000;

/// The units a rate may have, as tc spells them: SI multiples of bits per
/// second (tc's `kbit` is 1000 bits).
const UNITS: [(&str, u64); 4] = [
    ("gbit", 1_000_000_000),
    ("mbit", 1_000_000),
    ("kbit", 1_000),
    ("bit", 1),
];

/// A link's rate in bits per second, written as tc writes rates: a number
/// and a unit, `bit`, `kbit`, `mbit` or `gbit` (`100mbit`, `1gbit`,
/// `2.5gbit`; any case). Between [`MIN_RATE_BIT_PER_S`] and
/// [`MAX_RATE_BIT_PER_S`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkRate {
    bit_per_s: u64,
}

/// Why a string is not a [`LinkRate`]. Allocates nothing; the caller
/// names the string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkRateError {
    /// Not a number followed by a unit.
    #[error(
        "not a rate: a number and a unit, kbit, mbit or gbit (examples: 100mbit, 1gbit, 2.5gbit)"
    )]
    NotARate,
    /// A number with no unit: tc would read it as bits per second, which
    /// is rarely what was meant.
    #[error("a rate needs its unit: kbit, mbit or gbit (examples: 100mbit, 1gbit)")]
    NoUnit,
    /// A unit of bytes (`bps`, `kbps`, `mbps`, ...: tc reads those as bytes
    /// per second, not bits).
    #[error("tc reads bps, kbps and mbps as bytes per second; give bits: kbit, mbit or gbit (1gbit = 125mbps)")]
    Bytes,
    /// Below [`MIN_RATE_BIT_PER_S`] or above [`MAX_RATE_BIT_PER_S`].
    #[error("a link rate must be between 100kbit and 100gbit")]
    OutOfRange,
}

impl LinkRate {
    /// The rate of `bit_per_s` bits per second, if it is in range.
    pub fn from_bit_per_s(bit_per_s: u64) -> Result<LinkRate, LinkRateError> {
        if (MIN_RATE_BIT_PER_S..=MAX_RATE_BIT_PER_S).contains(&bit_per_s) {
            Ok(LinkRate { bit_per_s })
        } else {
            Err(LinkRateError::OutOfRange)
        }
    }

    /// Bits per second.
    pub fn bit_per_s(self) -> u64 {
        self.bit_per_s
    }

    /// Bytes per second (rounded down).
    pub fn bytes_per_s(self) -> u64 {
        self.bit_per_s / 8
    }

    /// The token bucket's size: [`BURST_DIVISOR`]th of a second at this
    /// rate, at least [`MIN_BURST`].
    pub fn burst_bytes(self) -> u64 {
        (self.bytes_per_s() / BURST_DIVISOR).max(MIN_BURST)
    }
}

impl FromStr for LinkRate {
    type Err = LinkRateError;

    fn from_str(s: &str) -> Result<LinkRate, LinkRateError> {
        let s = s.trim().to_ascii_lowercase();
        let split = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (number, unit) = s.split_at(split);
        let value: f64 = number.parse().map_err(|_| LinkRateError::NotARate)?;
        if unit.is_empty() {
            return Err(LinkRateError::NoUnit);
        }
        let Some(&(_, scale)) = UNITS.iter().find(|(u, _)| *u == unit) else {
            return Err(if unit.ends_with("bps") {
                LinkRateError::Bytes
            } else {
                LinkRateError::NotARate
            });
        };
        let bits = value * scale as f64;
        if !bits.is_finite() || bits > MAX_RATE_BIT_PER_S as f64 {
            return Err(LinkRateError::OutOfRange);
        }
        LinkRate::from_bit_per_s(bits.round() as u64)
    }
}

impl fmt::Display for LinkRate {
    /// In the largest unit that writes it whole: `1gbit`, `50mbit`,
    /// `1500mbit`, `100kbit`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (unit, scale) = UNITS
            .iter()
            .find(|(_, scale)| self.bit_per_s.is_multiple_of(*scale))
            .copied()
            .unwrap_or(("bit", 1));
        write!(f, "{}{unit}", self.bit_per_s / scale)
    }
}

/// The arguments of `tc` that shape `device` to `rate` (see the module
/// docs): the rate in bits per second and the burst in bytes, both exact.
pub fn tbf_args(device: &str, rate: LinkRate) -> Vec<String> {
    [
        "qdisc",
        "replace",
        "dev",
        device,
        "root",
        "tbf",
        "rate",
        &format!("{}bit", rate.bit_per_s()),
        "burst",
        &rate.burst_bytes().to_string(),
        "latency",
        &format!("{}ms", MAX_QUEUE_DELAY.as_millis()),
    ]
    .map(String::from)
    .to_vec()
}

/// What the shaper's queueing discipline counted, from `tc -s qdisc show`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShaperCounts {
    /// Bytes it passed on, as it charges them: IP packets with their
    /// 14-byte Ethernet header.
    pub sent_bytes: u64,
    /// Packets it passed on (a GSO message counted as its segments).
    pub sent_packets: u64,
    /// Packets it dropped: its queue was full ([`MAX_QUEUE_DELAY`] at the rate).
    pub drops: u64,
    /// Times a packet had to wait for tokens.
    pub overlimits: u64,
}

/// The counts of the `tbf` qdisc in `tc -s qdisc show` output: the first
/// `qdisc tbf` block's `Sent B bytes P pkt (dropped D, overlimits O ...)`
/// line. `None` when there is no such block or it does not read.
pub fn parse_counts(tc_output: &str) -> Option<ShaperCounts> {
    let mut lines = tc_output.lines();
    lines.find(|l| l.trim_start().starts_with("qdisc tbf "))?;
    let sent = lines.next()?;
    let words: Vec<&str> = sent
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    let after = |key: &str| -> Option<u64> {
        let i = words.iter().position(|w| *w == key)?;
        words.get(i + 1)?.parse().ok()
    };
    let before = |key: &str| -> Option<u64> {
        let i = words.iter().position(|w| *w == key)?;
        words.get(i.checked_sub(1)?)?.parse().ok()
    };
    Some(ShaperCounts {
        sent_bytes: before("bytes")?,
        sent_packets: before("pkt")?,
        drops: after("dropped")?,
        overlimits: after("overlimits")?,
    })
}

/// True when `tc` can be started here (it is installed and on `PATH`):
/// `tc -V`, which only prints its version.
pub fn tc_available() -> bool {
    Command::new("tc")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Shapes `host`'s [`DEVICE`] to `rate` (`tc qdisc replace ... tbf`, run
/// inside its namespace). The qdisc goes when the namespace is deleted.
pub fn install(lan: &Lan, host: &Host, rate: LinkRate) -> Result<(), NetnsError> {
    let args = tbf_args(DEVICE, rate);
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    lan.run_in(host, "tc", &words).map(drop)
}

/// What the shaper on `host` has counted so far (`tc -s qdisc show dev
/// eth0`, inside its namespace).
pub fn counts(lan: &Lan, host: &Host) -> Result<ShaperCounts, NetnsError> {
    let out = lan.run_in(host, "tc", &["-s", "qdisc", "show", "dev", DEVICE])?;
    parse_counts(&out).ok_or_else(|| NetnsError::Failed {
        command: format!("tc -s qdisc show dev {DEVICE}"),
        stderr: format!("no tbf counts in its output: {}", out.trim()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(s: &str) -> Result<u64, LinkRateError> {
        s.parse::<LinkRate>().map(LinkRate::bit_per_s)
    }

    #[test]
    fn rates_parse_as_tc_writes_them() {
        assert_eq!(rate("1gbit"), Ok(1_000_000_000));
        assert_eq!(rate("100mbit"), Ok(100_000_000));
        assert_eq!(rate("500mbit"), Ok(500_000_000));
        assert_eq!(rate("50mbit"), Ok(50_000_000));
        assert_eq!(rate("2.5gbit"), Ok(2_500_000_000));
        assert_eq!(rate("750kbit"), Ok(750_000));
        assert_eq!(rate("1000000bit"), Ok(1_000_000));
        assert_eq!(rate(" 1Gbit "), Ok(1_000_000_000), "any case, trimmed");
        assert_eq!(rate("0.1mbit"), Ok(100_000), "the slowest");
        assert_eq!(rate("100gbit"), Ok(100_000_000_000), "the fastest");
    }

    #[test]
    fn what_is_not_a_rate_says_why() {
        for bad in [
            "nonsense", "", "gbit", "1..5gbit", "1gbit/s", "1 gbit", "-1gbit", "1e3mbit", "1gb",
        ] {
            assert_eq!(rate(bad), Err(LinkRateError::NotARate), "{bad:?}");
        }
        assert_eq!(rate("100"), Err(LinkRateError::NoUnit));
        for bytes in ["12mbps", "1kbps", "100bps", "1Gbps"] {
            assert_eq!(rate(bytes), Err(LinkRateError::Bytes), "{bytes:?}");
        }
        for out in ["0mbit", "99kbit", "101gbit", "99999999999999999999999gbit"] {
            assert_eq!(rate(out), Err(LinkRateError::OutOfRange), "{out:?}");
        }
        // Every message is one line.
        for e in [
            LinkRateError::NotARate,
            LinkRateError::NoUnit,
            LinkRateError::Bytes,
            LinkRateError::OutOfRange,
        ] {
            assert_eq!(e.to_string().lines().count(), 1);
        }
    }

    #[test]
    fn a_rate_is_written_in_its_largest_whole_unit_and_reads_back() {
        for (s, shown) in [
            ("1gbit", "1gbit"),
            ("1000mbit", "1gbit"),
            ("50mbit", "50mbit"),
            ("1.5gbit", "1500mbit"),
            ("100kbit", "100kbit"),
            ("123456789bit", "123456789bit"),
        ] {
            let r: LinkRate = s.parse().unwrap();
            assert_eq!(r.to_string(), shown);
            assert_eq!(shown.parse::<LinkRate>(), Ok(r));
        }
    }

    #[test]
    fn the_bucket_is_a_250th_of_a_second_and_at_least_32_kib() {
        let r = |s: &str| s.parse::<LinkRate>().unwrap();
        assert_eq!(r("1gbit").burst_bytes(), 500_000);
        assert_eq!(r("50mbit").burst_bytes(), MIN_BURST);
        assert_eq!(r("100mbit").burst_bytes(), 50_000);
        assert_eq!(
            tbf_args("eth0", r("1gbit")).join(" "),
            "qdisc replace dev eth0 root tbf rate 1000000000bit burst 500000 latency 50ms"
        );
    }

    /// `tc -s qdisc show dev eth0` as iproute2 6.x prints it.
    const TC_OUTPUT: &str = "\
qdisc tbf 8001: root refcnt 2 rate 50Mbit burst 32Kb lat 50ms 
 Sent 4185672 bytes 3411 pkt (dropped 17, overlimits 2960 requeues 0) 
 backlog 0b 0p requeues 0
";

    #[test]
    fn the_shapers_counts_are_read_from_tc() {
        assert_eq!(
            parse_counts(TC_OUTPUT),
            Some(ShaperCounts {
                sent_bytes: 4_185_672,
                sent_packets: 3411,
                drops: 17,
                overlimits: 2960,
            })
        );
        // Another qdisc first (a noqueue root), then the tbf.
        let two = format!("qdisc noqueue 0: dev lo root refcnt 2\n Sent 0 bytes 0 pkt (dropped 0, overlimits 0 requeues 0)\n{TC_OUTPUT}");
        assert_eq!(parse_counts(&two).map(|c| c.drops), Some(17));
        assert_eq!(parse_counts("qdisc noqueue 0: root refcnt 2\n"), None);
        assert_eq!(parse_counts("qdisc tbf 8001: root\n garbage\n"), None);
        assert_eq!(parse_counts(""), None);
    }
}
