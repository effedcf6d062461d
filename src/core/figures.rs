//! A receiver's figures, as plain data. Each counter is defined here once, in
//! words, and the same words stand in `proto/PROTOCOL.md` ("Figures").
//!
//! Invariants, tested: `received + lost == expected`, `lost` never negative;
//! duplicates, malformed datagrams, packets stale by sequence (replaced
//! session, beyond the window) and unproven packets never promoted or
//! confirmed never count toward `received`. A fresh
//! snapshot part whose entities are all stale counts in both `received` (it
//! arrived, so it is not lost) and `stale` (it was not applied).

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::core::histogram::{latency_histogram, LatencySummary};
use crate::core::subscriber::SubscriptionState;

/// Everything a receiver measures. Read it from any thread with
/// `Receiver::figures`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Figures {
    /// Sequenced packets the broadcaster sent in the span this receiver saw:
    /// per session, highest − lowest sequence number received + 1, the highest
    /// raised to a goodbye's final sequence number; summed over sessions.
    pub expected: u64,
    /// Distinct sequenced packets received (each sequence number once).
    pub received: u64,
    /// `expected − received`. Never negative; a duplicate cannot hide a loss.
    pub lost: u64,
    /// Arrivals of a sequence number already received in that session.
    pub duplicates: u64,
    /// Fresh arrivals after a higher sequence number of the same session.
    pub reordered: u64,
    /// Intact, non-duplicate datagrams not applied because what they carry is
    /// older than what is applied: a snapshot part whose every entity already
    /// has an equal or newer tick, any packet of a replaced session, or a
    /// packet 65,536 or more numbers behind the highest.
    pub stale: u64,
    /// Datagrams the decoder rejected (see `wire::DecodeError`). With a key,
    /// only datagrams whose tag checked can be malformed.
    pub malformed: u64,
    /// With a key: datagrams refused by `auth::open` (not sealed, too short,
    /// or a tag that does not match: forged, tampered, another key). Never
    /// applied, never in `malformed` or the sequence figures. Always 0
    /// without a key.
    pub auth_failed: u64,
    /// With a key: stream datagrams whose tag checked but whose `(session,
    /// seq)` the replay window refused (seen before, behind the window,
    /// below the first number accepted in its session, of a replaced or
    /// stale session). Never applied, never in the sequence figures. Always
    /// 0 without a key.
    pub replayed: u64,
    /// Without a key: sealed datagrams (AUTH flag set), which cannot be
    /// checked and so are not applied: the sender has a key, this receiver
    /// none. Not in `malformed`. Always 0 with a key.
    pub auth_unexpected: u64,
    /// New sessions that took over after the first: broadcaster restarts.
    /// A new session id takes over once it has proven itself (see
    /// `unproven`), or at once when the current session said goodbye.
    pub restarts: u64,
    /// Stream packets held on probation and not applied: a packet of a new
    /// session id before that session showed `MIN_SEQUENTIAL` (2)
    /// consecutive sequence numbers with no fresh packet of the current
    /// session in between, or a sequence number more than `MAX_DROPOUT`
    /// (3000) ahead of the highest before another within `MAX_MISORDER`
    /// (100) of it confirmed it. Those that took part in the promotion or
    /// the confirmation also count in `received`; the others in nothing
    /// else. Non-zero with no restart and no long outage means stray or
    /// forged datagrams.
    pub unproven: u64,
    /// Datagrams from a source other than the one the receiver accepts
    /// (`ReceiverConfig::from`, `--from`), dropped before decoding: in
    /// nothing else but `datagrams` and `bytes`. Always 0 without a filter.
    pub foreign: u64,
    /// With a key: stream datagrams whose tag checked but whose `sent_ns`
    /// is further than the freshness window (default 2 s) from their
    /// arrival time on this receiver's clock: replays older than the
    /// window, or a sender whose clock differs from this one by more than
    /// the window. Never applied; in nothing else but `datagrams` and
    /// `bytes`. Always 0 without a key.
    pub stale_sealed: u64,
    /// Datagrams the kernel dropped at this receiver's socket(s) for lack of
    /// buffer space (SO_RXQ_OVFL on Linux); 0 where the OS does not report it.
    pub socket_drops: u64,
    /// Times the newest applied tick advanced: ticks of which at least one
    /// part was applied and which were newer than every tick applied before.
    pub ticks_applied: u64,
    /// Entity records written into the world.
    pub entities_applied: u64,
    /// Entity records not written because an equal or newer tick was applied.
    pub entities_stale: u64,
    /// Entity records refused because their id is beyond the world's capacity.
    pub entities_rejected: u64,
    /// Every datagram handed to the receiver, whatever became of it.
    pub datagrams: u64,
    /// Bytes of those datagrams.
    pub bytes: u64,
    /// Valid datagrams of the subscription kinds (16..=23): not part of the
    /// stream, so in no figure above but `datagrams` and `bytes`.
    pub control_datagrams: u64,
    /// RFC 3550 interarrival jitter, in nanoseconds, over fresh snapshot parts.
    pub jitter_ns: f64,
    /// One-way latency of fresh snapshot parts: arrival − actual send time (ns).
    pub latency: Histogram<u64>,
    /// One-way latency of fresh snapshot parts: arrival − scheduled tick time
    /// (ns). It includes the sender's lateness, so a stalled sender cannot hide.
    pub latency_scheduled: Histogram<u64>,
    /// Latency samples that came out negative (clocks not shared); recorded as 0.
    pub latency_negative: u64,
    /// Packets sent by the current session, from its latest report or goodbye.
    pub sender_packets_sent: Option<u64>,
    /// Ticks the current session skipped, from its latest sender report.
    pub sender_ticks_skipped: Option<u64>,
    /// A goodbye of the current session was received.
    pub goodbye: bool,
    /// The newest tick applied (the Count).
    pub count: Option<u64>,
    /// Round-trip time to the broadcaster this receiver subscribed to, in
    /// ns: a pong's arrival − its ping's send time, both on this host's
    /// clock, so it needs no clock synchronisation. Empty without a
    /// subscription.
    pub rtt: Histogram<u64>,
    /// Where this receiver's subscription stands (`None` if it did not subscribe).
    pub subscription: SubscriptionState,
    /// Whether the latest stream datagram came from an address of this host
    /// (loopback or one of its interfaces): then sender and receiver share
    /// one clock. `None` until a stream datagram with a known source arrived.
    pub sender_on_this_host: Option<bool>,
}

impl Default for Figures {
    fn default() -> Figures {
        Figures {
            expected: 0,
            received: 0,
            lost: 0,
            duplicates: 0,
            reordered: 0,
            stale: 0,
            malformed: 0,
            auth_failed: 0,
            replayed: 0,
            auth_unexpected: 0,
            restarts: 0,
            unproven: 0,
            foreign: 0,
            stale_sealed: 0,
            socket_drops: 0,
            ticks_applied: 0,
            entities_applied: 0,
            entities_stale: 0,
            entities_rejected: 0,
            datagrams: 0,
            bytes: 0,
            control_datagrams: 0,
            jitter_ns: 0.0,
            latency: latency_histogram(),
            latency_scheduled: latency_histogram(),
            latency_negative: 0,
            sender_packets_sent: None,
            sender_ticks_skipped: None,
            goodbye: false,
            count: None,
            rtt: latency_histogram(),
            subscription: SubscriptionState::None,
            sender_on_this_host: None,
        }
    }
}

impl Figures {
    /// `lost / expected`, or 0 when nothing was expected.
    pub fn loss_ratio(&self) -> f64 {
        ratio(self.lost, self.expected)
    }

    /// Loss fraction over the interval since `earlier` was taken: lost packets
    /// over expected packets in between (0 when none were expected; clamped at
    /// 0 when late arrivals repaid earlier loss).
    pub fn interval_loss(&self, earlier: &Figures) -> f64 {
        let expected = self.expected.saturating_sub(earlier.expected);
        let received = self.received.saturating_sub(earlier.received);
        ratio(expected.saturating_sub(received), expected)
    }

    /// Whether [`Figures::latency`] can be read as one-way latency.
    ///
    /// True when the sender is on this host ([`Figures::sender_on_this_host`]:
    /// one clock, so the figure is exact), or when there are latency and
    /// round-trip samples, no latency sample came out negative, and the
    /// latency p50 is at most the round-trip p50: the clocks are then
    /// plausibly synchronised. False otherwise.
    ///
    /// What it cannot know: a clock offset smaller than about one round trip
    /// passes the test, so between two hosts a "meaningful" one-way figure
    /// may still be off by up to about the RTT; a path slower one way than
    /// the other is invisible to it; and a remote sender without a
    /// subscription (no RTT) is never called meaningful, however well synced
    /// the clocks are.
    pub fn one_way_meaningful(&self) -> bool {
        if self.sender_on_this_host == Some(true) {
            return true;
        }
        if self.latency.is_empty() || self.rtt.is_empty() || self.latency_negative > 0 {
            return false;
        }
        self.latency.value_at_quantile(0.5) <= self.rtt.value_at_quantile(0.5)
    }

    /// The figures as a flat, serializable summary (latencies in µs).
    pub fn summary(&self) -> Summary {
        Summary {
            expected: self.expected,
            received: self.received,
            lost: self.lost,
            loss_ratio: self.loss_ratio(),
            duplicates: self.duplicates,
            reordered: self.reordered,
            stale: self.stale,
            malformed: self.malformed,
            auth_failed: self.auth_failed,
            replayed: self.replayed,
            auth_unexpected: self.auth_unexpected,
            restarts: self.restarts,
            unproven: self.unproven,
            foreign: self.foreign,
            stale_sealed: self.stale_sealed,
            socket_drops: self.socket_drops,
            ticks_applied: self.ticks_applied,
            entities_applied: self.entities_applied,
            entities_stale: self.entities_stale,
            entities_rejected: self.entities_rejected,
            datagrams: self.datagrams,
            bytes: self.bytes,
            control_datagrams: self.control_datagrams,
            jitter_us: self.jitter_ns / 1e3,
            latency_us: LatencySummary::of(&self.latency),
            latency_scheduled_us: LatencySummary::of(&self.latency_scheduled),
            latency_negative: self.latency_negative,
            sender_packets_sent: self.sender_packets_sent,
            sender_ticks_skipped: self.sender_ticks_skipped,
            goodbye: self.goodbye,
            count: self.count,
            rtt_us: LatencySummary::of(&self.rtt),
            subscription: self.subscription.to_string(),
            one_way_meaningful: self.one_way_meaningful(),
        }
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// [`Figures`] flattened for JSON and tables; field meanings as there.
#[derive(Clone, Debug, Default, Serialize)]
#[allow(missing_docs)]
pub struct Summary {
    pub expected: u64,
    pub received: u64,
    pub lost: u64,
    /// `lost / expected`.
    pub loss_ratio: f64,
    pub duplicates: u64,
    pub reordered: u64,
    pub stale: u64,
    pub malformed: u64,
    pub auth_failed: u64,
    pub replayed: u64,
    pub auth_unexpected: u64,
    pub restarts: u64,
    pub unproven: u64,
    pub foreign: u64,
    pub stale_sealed: u64,
    pub socket_drops: u64,
    pub ticks_applied: u64,
    pub entities_applied: u64,
    pub entities_stale: u64,
    pub entities_rejected: u64,
    pub datagrams: u64,
    pub bytes: u64,
    pub control_datagrams: u64,
    pub jitter_us: f64,
    /// Arrival − actual send time.
    pub latency_us: LatencySummary,
    /// Arrival − scheduled tick time.
    pub latency_scheduled_us: LatencySummary,
    pub latency_negative: u64,
    pub sender_packets_sent: Option<u64>,
    pub sender_ticks_skipped: Option<u64>,
    pub goodbye: bool,
    pub count: Option<u64>,
    /// Round-trip time to the subscribed broadcaster (ping/pong).
    pub rtt_us: LatencySummary,
    /// `none`, `subscribing`, `subscribed` or `refused: full`.
    pub subscription: String,
    /// See [`Figures::one_way_meaningful`].
    pub one_way_meaningful: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_loss_is_the_share_lost_in_between() {
        let a = Figures {
            expected: 100,
            received: 100,
            ..Figures::default()
        };
        let b = Figures {
            expected: 200,
            received: 190,
            ..Figures::default()
        };
        assert_eq!(b.interval_loss(&a), 0.1);
        assert_eq!(a.interval_loss(&a), 0.0);
    }

    #[test]
    fn one_way_is_meaningful_on_one_host_or_when_it_fits_in_the_round_trip() {
        let with = |lat: &[u64], rtt: &[u64], negative: u64, local: Option<bool>| {
            let mut f = Figures {
                latency_negative: negative,
                sender_on_this_host: local,
                ..Figures::default()
            };
            lat.iter().for_each(|&v| f.latency.record(v).unwrap());
            rtt.iter().for_each(|&v| f.rtt.record(v).unwrap());
            f.one_way_meaningful()
        };
        // One host: one clock, whatever the samples say.
        assert!(with(&[], &[], 0, Some(true)));
        assert!(with(&[50_000], &[], 3, Some(true)));
        // Two hosts: one-way p50 within the RTT p50 and never negative.
        assert!(with(&[40_000, 45_000], &[100_000], 0, Some(false)));
        assert!(with(&[100_000], &[100_000], 0, None));
        assert!(
            !with(&[150_000], &[100_000], 0, Some(false)),
            "receiver's clock ahead"
        );
        assert!(
            !with(&[40_000], &[100_000], 1, Some(false)),
            "a negative sample"
        );
        assert!(!with(&[40_000], &[], 0, Some(false)), "no RTT: cannot tell");
        assert!(!with(&[], &[100_000], 0, Some(false)), "no latency samples");
        let s = Figures::default().summary();
        assert_eq!(
            (s.subscription.as_str(), s.one_way_meaningful),
            ("none", false)
        );
        assert_eq!(s.rtt_us.samples, 0);
    }

    #[test]
    fn latency_summary_is_in_microseconds() {
        let mut h = latency_histogram();
        for ns in [10_000u64, 20_000, 30_000] {
            h.record(ns).unwrap();
        }
        let s = LatencySummary::of(&h);
        assert_eq!(s.samples, 3);
        // Within the histograms' resolution: 1 % of the value.
        assert!(
            (s.p50 - 20.0).abs() <= 0.2 && (s.max - 30.0).abs() <= 0.3,
            "{s:?}"
        );
    }
}
