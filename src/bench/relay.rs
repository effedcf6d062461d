//! A link conditioner in front of each receiver, and the proof that it is
//! exact: each receiver's figures must equal, field by field, what its
//! conditioner says a receiver behind it must report
//! ([`crate::runtime::relay::Impair::expected_receiver_figures`]).
//!
//! Receiver `i` gets its own [`Impair`] relay on 127.0.0.1 whose
//! conditioner is seeded with the configured seed + `i`, so the receivers
//! suffer independent (and reproducible) networks; the broadcaster sends to
//! the relays instead of the receivers. After the broadcast the relays are
//! stopped, which releases everything they still hold, so the comparison is
//! made once every datagram is delivered or dropped.

use std::net::{Ipv4Addr, SocketAddr};

use serde::Serialize;

use crate::core::conditioner::{ConditionerConfig, ConditionerCounts, ExpectedFigures};
use crate::core::figures::Summary;
use crate::runtime::relay::{Impair, ImpairConfig, ImpairError, ImpairFigures};

/// The relays of one run, one per receiver, in receiver order.
pub(super) struct Relays {
    relays: Vec<(Impair, ConditionerConfig)>,
}

impl Relays {
    /// Starts a relay in front of each of `receivers`.
    pub fn start(
        base: &ConditionerConfig,
        receivers: &[SocketAddr],
    ) -> Result<Relays, ImpairError> {
        let mut relays = Vec::with_capacity(receivers.len());
        for (i, &rx) in receivers.iter().enumerate() {
            let config = ConditionerConfig {
                seed: base.seed.wrapping_add(i as u64),
                ..base.clone()
            };
            let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
            let relay = Impair::start(ImpairConfig::new(listen, vec![rx], config.clone()))?;
            relays.push((relay, config));
        }
        Ok(Relays { relays })
    }

    /// Where the broadcaster sends: each relay, in receiver order.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.relays.iter().map(|(r, _)| r.local_addr()).collect()
    }

    /// Stops every relay (each releases what it still holds) and returns
    /// what each did, with its conditioner's configuration.
    pub fn stop(self) -> std::io::Result<Vec<(ImpairFigures, ConditionerConfig)>> {
        self.relays
            .into_iter()
            .map(|(r, c)| Ok((r.stop()?, c)))
            .collect()
    }
}

/// One figure on which a receiver and its conditioner disagree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    /// The figure's name, as in [`crate::core::figures::Figures`].
    pub figure: &'static str,
    /// What the conditioner says the receiver must report.
    pub conditioner: u64,
    /// What the receiver reported.
    pub receiver: u64,
}

/// A receiver's figures held against its conditioner's.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConditionerCheck {
    /// The conditioner's configuration as a spec string (seed included).
    pub spec: String,
    /// What the conditioner did.
    pub did: ConditionerCounts,
    /// What it says the receiver must report.
    pub expected: ExpectedFigures,
    /// Datagrams the kernel dropped at the relay's own socket (before the
    /// conditioner saw them): they break the comparison's premise.
    pub relay_socket_drops: u64,
    /// Sends from the relay to the receiver that failed: the same.
    pub relay_send_errors: u64,
    /// Every figure equal.
    pub equal: bool,
    /// The figures that differ (none when `equal`).
    pub mismatches: Vec<Mismatch>,
}

impl ConditionerCheck {
    /// Holds `receiver` against what the relay that fed it reported.
    pub fn of(relay: &ImpairFigures, config: &ConditionerConfig, receiver: &Summary) -> Self {
        let mismatches = compare(&relay.expected_receiver, receiver);
        ConditionerCheck {
            spec: config.to_string(),
            did: relay.conditioner,
            expected: relay.expected_receiver,
            relay_socket_drops: relay.socket_drops,
            relay_send_errors: relay.send_errors,
            equal: mismatches.is_empty(),
            mismatches,
        }
    }
}

/// Every figure both sides define, compared. The receiver's `lost` counts
/// what the conditioner calls `lost` and what never reached it (`unseen`).
pub fn compare(c: &ExpectedFigures, r: &Summary) -> Vec<Mismatch> {
    [
        ("expected", c.expected, r.counters.expected),
        ("received", c.received, r.counters.received),
        ("lost", c.lost + c.unseen, r.counters.lost),
        ("duplicates", c.duplicates, r.counters.duplicates),
        ("reordered", c.reordered, r.counters.reordered),
        ("restarts", c.restarts, r.counters.restarts),
        ("malformed", c.malformed, r.counters.malformed),
        (
            "control_datagrams",
            c.control_datagrams,
            r.counters.control_datagrams,
        ),
        ("datagrams", c.datagrams, r.counters.datagrams),
    ]
    .into_iter()
    .filter(|(_, c, r)| c != r)
    .map(|(figure, conditioner, receiver)| Mismatch {
        figure,
        conditioner,
        receiver,
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::figures::Figures;

    #[test]
    fn equal_figures_match_and_a_difference_is_named() {
        let c = ExpectedFigures {
            expected: 100,
            received: 90,
            lost: 8,
            unseen: 2,
            duplicates: 3,
            reordered: 4,
            datagrams: 93,
            ..ExpectedFigures::default()
        };
        let mut s = Figures::default().summary();
        s.counters.expected = 100;
        s.counters.received = 90;
        s.counters.lost = 10;
        s.counters.duplicates = 3;
        s.counters.reordered = 4;
        s.counters.datagrams = 93;
        assert_eq!(compare(&c, &s), vec![]);
        s.counters.reordered = 5;
        assert_eq!(
            compare(&c, &s),
            vec![Mismatch {
                figure: "reordered",
                conditioner: 4,
                receiver: 5
            }]
        );
    }
}
