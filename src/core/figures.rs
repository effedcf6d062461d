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
use serde::{Deserialize, Serialize};

use crate::core::histogram::{latency_histogram, LatencySummary};
use crate::core::subscriber::SubscriptionState;

/// Writes out the struct it is given, unchanged, and derives from the same
/// field list what would otherwise be a second list to keep in step:
/// [`Counters::NAMES`] and [`Counters::add`]. So a counter is one field
/// here (its doc comment, its name, which is also its JSON key) and nothing
/// else.
macro_rules! counters {
    (
        $(#[$meta:meta])*
        pub struct $ty:ident {
            $( $(#[$field_meta:meta])* pub $name:ident: u64, )*
        }
    ) => {
        $(#[$meta])*
        pub struct $ty {
            $( $(#[$field_meta])* pub $name: u64, )*
        }

        impl $ty {
            /// Every counter's name, in declaration order: its field name
            /// and its key in JSON.
            pub const NAMES: &'static [&'static str] = &[$(stringify!($name)),*];

            /// Adds each of `other`'s counters to the same counter here
            /// (saturating): the counters of several receivers as one.
            pub fn add(&mut self, other: &$ty) {
                $( self.$name = self.$name.saturating_add(other.$name); )*
            }
        }
    };
}

counters! {
    /// Every counter a receiver keeps, each a `u64` counted from the
    /// receiver's start over all sessions. [`Figures`] holds them beside its
    /// histograms; [`Summary`] flattens them into its JSON, one key per
    /// field, named as the field.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[non_exhaustive]
    pub struct Counters {
        /// Sequenced packets the broadcaster sent in the span this receiver saw:
        /// per session, highest − lowest sequence number received + 1, the highest
        /// raised to a goodbye's final sequence number; summed over sessions.
        pub expected: u64,
        /// Distinct sequenced packets received (each sequence number once).
        pub received: u64,
        /// `expected − received`. Never negative; a duplicate cannot hide a loss.
        pub lost: u64,
        /// Packets a session sent before the lowest sequence number this
        /// receiver got of it, as its newest sender report or goodbye (by
        /// sequence number) tells: `packets_sent − (last − lowest + 1)`,
        /// `last` being the report's own number or the goodbye's
        /// `final_seq`, never negative; summed over sessions. 0 until a
        /// session sends either. Not in `expected`, so not in `lost`. (Missing
        /// from the JSON of an older tickcast: 0.)
        #[serde(default)]
        pub head_loss: u64,
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
        /// Without a key: datagrams rejected as `wire::DecodeError::Sealed`:
        /// a header whose magic, version, kind and reserved flags pass, with
        /// the AUTH flag set, whatever follows the header. They cannot be
        /// checked and so are not applied: the sender has a key, this
        /// receiver none. Also in `malformed`. Always 0 with a key.
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
        /// Entities removed by a despawn record (protocol version 2): each
        /// entity once, however many copies of the record arrived.
        pub entities_despawned: u64,
        /// Entities removed by a roster (version 2) that no longer listed
        /// them: despawns whose every copy was lost, or entities of a
        /// replaced session. Ghosts caught, at most a roster interval late.
        pub entities_removed_by_roster: u64,
        /// Records of compact parts (version 2) not applied because they
        /// are deltas against a keyframe this receiver does not hold (lost,
        /// or from before it joined), or whose position would leave the
        /// `i32` quanta or ±1e9 (no sender sends those): each such entity
        /// waits for its next keyframe, at most a keyframe interval.
        pub undecodable: u64,
        /// Every datagram handed to the receiver, whatever became of it.
        pub datagrams: u64,
        /// Bytes of those datagrams.
        pub bytes: u64,
        /// Valid datagrams of the subscription kinds (16..=23): not part of the
        /// stream, so in no figure above but `datagrams` and `bytes`.
        pub control_datagrams: u64,
        /// Samples of `latency` and of `latency_scheduled` that came out
        /// negative (the receiver's clock behind the sender's), each
        /// counted: a snapshot part whose two samples are both negative
        /// adds 2. They are recorded as 0. `latency_taken` is clamped at 0
        /// and not counted.
        pub latency_negative: u64,
    }
}

impl Counters {
    /// `lost / expected`, or 0 when nothing was expected.
    pub fn loss_ratio(&self) -> f64 {
        ratio(self.lost, self.expected)
    }
}

/// Everything a receiver measures. Read it from any thread with
/// `Receiver::figures`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Figures {
    /// Every counter: loss, anomalies, what was applied, datagrams and bytes.
    pub counters: Counters,
    /// RFC 3550 interarrival jitter, in nanoseconds, over fresh snapshot parts.
    pub jitter_ns: f64,
    /// One-way latency of fresh snapshot parts: arrival − actual send time
    /// (ns). The reference receiver's arrival time is the kernel's stamp
    /// (`SO_TIMESTAMPNS`) where it has one: when the datagram entered the
    /// host, before it waited for the receiver thread to take it; so this is
    /// the network path's latency, whatever the receive mode.
    pub latency: Histogram<u64>,
    /// One-way latency of fresh snapshot parts: arrival − scheduled tick time
    /// (ns). It includes the sender's lateness, so a stalled sender cannot hide.
    pub latency_scheduled: Histogram<u64>,
    /// Latency of fresh snapshot parts to the receiver thread: the time the
    /// thread took the datagram off its socket − actual send time (ns). It
    /// adds to [`Figures::latency`] the wait in the socket's queue (the
    /// thread's wake-up, which the receive mode trades against CPU); the
    /// same as `latency` where there is no kernel stamp. Samples are never
    /// negative (clamped at 0, not counted in `latency_negative`).
    pub latency_taken: Histogram<u64>,
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
            counters: Counters::default(),
            jitter_ns: 0.0,
            latency: latency_histogram(),
            latency_scheduled: latency_histogram(),
            latency_taken: latency_histogram(),
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
        self.counters.loss_ratio()
    }

    /// Whether any stream datagram was taken (`received > 0`). False means
    /// the receiver got nothing it could use, whatever else arrived:
    /// [`crate::core::silence::likely_causes`] says what it can see.
    pub fn received_any(&self) -> bool {
        self.counters.received > 0
    }

    /// Loss fraction over the interval since `earlier` was taken: lost packets
    /// over expected packets in between (0 when none were expected; clamped at
    /// 0 when late arrivals repaid earlier loss).
    pub fn interval_loss(&self, earlier: &Figures) -> f64 {
        let (now, then) = (&self.counters, &earlier.counters);
        let expected = now.expected.saturating_sub(then.expected);
        let received = now.received.saturating_sub(then.received);
        ratio(expected.saturating_sub(received), expected)
    }

    /// Whether [`Figures::latency`] can be read as one-way latency.
    ///
    /// True when the sender is on this host ([`Figures::sender_on_this_host`]:
    /// one clock, so the figure is exact), or when there are latency and
    /// round-trip samples, no latency sample came out negative
    /// (`latency_negative` is 0), and the
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
        if self.latency.is_empty() || self.rtt.is_empty() || self.counters.latency_negative > 0 {
            return false;
        }
        self.latency.value_at_quantile(0.5) <= self.rtt.value_at_quantile(0.5)
    }

    /// The figures as a flat, serializable summary (latencies in µs).
    pub fn summary(&self) -> Summary {
        Summary {
            counters: self.counters,
            loss_ratio: self.loss_ratio(),
            jitter_us: self.jitter_ns / 1e3,
            latency_us: LatencySummary::of(&self.latency),
            latency_scheduled_us: LatencySummary::of(&self.latency_scheduled),
            latency_taken_us: LatencySummary::of(&self.latency_taken),
            sender_packets_sent: self.sender_packets_sent,
            sender_ticks_skipped: self.sender_ticks_skipped,
            goodbye: self.goodbye,
            count: self.count,
            rtt_us: LatencySummary::of(&self.rtt),
            subscription: self.subscription.to_string(),
            one_way_meaningful: self.one_way_meaningful(),
            received_any: self.received_any(),
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

/// [`Figures`] flattened for JSON and tables, and read back from a
/// receiver's JSON (`tickcast receive --json`): the counters as top-level
/// keys named as in [`Counters`], then the figures derived from the rest,
/// with latencies in µs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Every counter, each under its own key (see [`Counters`]).
    #[serde(flatten)]
    pub counters: Counters,
    /// `lost / expected`, or 0 when nothing was expected.
    pub loss_ratio: f64,
    /// [`Figures::jitter_ns`], in µs.
    pub jitter_us: f64,
    /// Arrival − actual send time ([`Figures::latency`]); `None` (JSON
    /// `null`) without samples, as for every latency below.
    pub latency_us: Option<LatencySummary>,
    /// Arrival − scheduled tick time ([`Figures::latency_scheduled`]).
    pub latency_scheduled_us: Option<LatencySummary>,
    /// Taken by the receiver thread − actual send time
    /// ([`Figures::latency_taken`]).
    pub latency_taken_us: Option<LatencySummary>,
    /// See [`Figures::sender_packets_sent`].
    pub sender_packets_sent: Option<u64>,
    /// See [`Figures::sender_ticks_skipped`].
    pub sender_ticks_skipped: Option<u64>,
    /// See [`Figures::goodbye`].
    pub goodbye: bool,
    /// See [`Figures::count`].
    pub count: Option<u64>,
    /// Round-trip time to the subscribed broadcaster (ping/pong;
    /// [`Figures::rtt`]); `None` without a subscription or before a pong.
    pub rtt_us: Option<LatencySummary>,
    /// `none`, `subscribing`, `subscribed`, `refused: full` (`refused:
    /// unknown reason N` for a reserved reason code), or once it gave up
    /// `failed: no answer` or `failed: refused: full` (see
    /// [`SubscriptionState`]'s `Display`).
    pub subscription: String,
    /// See [`Figures::one_way_meaningful`].
    pub one_way_meaningful: bool,
    /// See [`Figures::received_any`]: false when no stream datagram was taken.
    pub received_any: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The receiver's JSON as `receive --json` writes it (`Versioned` of a
    /// [`Summary`]), of figures an [`Ingest`](crate::core::ingest::Ingest)
    /// measured, has exactly the keys `proto/receiver.schema.json` lists,
    /// of the types it states: with nothing measured (every summary and
    /// unknown figure `null`) and with every figure set.
    #[test]
    fn a_receivers_json_is_what_its_schema_file_says() {
        use crate::core::ingest::Ingest;
        use crate::core::schema::{check, Versioned};
        use crate::core::world::WorldWriter;
        use crate::wire::{self, Body, Entity, Packet, SenderReport, SnapshotHead};
        const T0: u64 = 1_700_000_000_000_000_000;
        let schema = check::load(check::RECEIVER);
        let json = |f: &Figures| serde_json::to_value(Versioned::new(f.summary())).unwrap();
        let mut ing = Ingest::new(WorldWriter::new(64));
        let empty = json(&ing.figures());
        check::exactly(&schema, &empty).unwrap_or_else(|e| panic!("{e}\n{empty}"));
        assert!(empty["latency_us"].is_null() && empty["count"].is_null());
        // Snapshot parts 5, 7 (twice) and a report numbered 8 that says 9
        // packets were sent up to it: one lost, one duplicate, head loss 5.
        let entity = Entity {
            id: 0,
            x: 1.0,
            y: 2.0,
            z: 3.0,
        };
        for seq in [5u32, 7, 7] {
            let head = SnapshotHead {
                tick: seq.into(),
                scheduled_ns: T0,
                sent_ns: T0 + 1_000,
                part: 0,
                parts: 1,
            };
            let body = Body::Snapshot(head);
            let d = wire::encode_to_vec(
                &Packet {
                    session: 1,
                    seq,
                    body,
                },
                &[entity],
            )
            .unwrap();
            ing.handle(&d, T0 + 50_000);
        }
        let report = Body::SenderReport(SenderReport {
            sent_ns: T0,
            packets_sent: 9,
            ticks_sent: 3,
            ticks_skipped: 1,
        });
        let d = wire::encode_to_vec(
            &Packet {
                session: 1,
                seq: 8,
                body: report,
            },
            &[],
        )
        .unwrap();
        ing.handle(&d, T0);
        // What the receiver thread adds: a round trip and a subscription.
        let mut f = ing.figures();
        f.rtt.record(90_000).unwrap();
        f.subscription = SubscriptionState::Refused(9);
        let full = json(&f);
        check::exactly(&schema, &full).unwrap_or_else(|e| panic!("{e}\n{full}"));
        for key in [
            "latency_us",
            "latency_scheduled_us",
            "latency_taken_us",
            "rtt_us",
        ] {
            assert!(full[key].is_object(), "{key} in {full}");
        }
        assert_eq!(
            (&full["lost"], &full["duplicates"], &full["head_loss"]),
            (&1.into(), &1.into(), &5.into())
        );
        assert_eq!(full["subscription"], "refused: unknown reason 9");
        assert_eq!(full["sender_ticks_skipped"], 1);
    }

    #[test]
    fn interval_loss_is_the_share_lost_in_between() {
        let with = |expected, received| Figures {
            counters: Counters {
                expected,
                received,
                lost: expected - received,
                ..Counters::default()
            },
            ..Figures::default()
        };
        let (a, b) = (with(100, 100), with(200, 190));
        assert_eq!(b.interval_loss(&a), 0.1);
        assert_eq!(a.interval_loss(&a), 0.0);
    }

    #[test]
    fn one_way_is_meaningful_on_one_host_or_when_it_fits_in_the_round_trip() {
        let with = |lat: &[u64], rtt: &[u64], negative: u64, local: Option<bool>| {
            let mut f = Figures {
                counters: Counters {
                    latency_negative: negative,
                    ..Counters::default()
                },
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
        assert_eq!(s.rtt_us, None);
        let v = serde_json::to_value(&s).unwrap();
        for empty in ["latency_us", "latency_scheduled_us", "rtt_us"] {
            assert_eq!(v[empty], serde_json::Value::Null, "{empty} in {v}");
        }
    }

    /// Counters whose every field holds a different value (1, 2, 3, ...),
    /// set through their JSON keys, so a field left out or crossed with
    /// another shows.
    fn distinct_counters() -> Counters {
        let keys: serde_json::Map<String, serde_json::Value> = Counters::NAMES
            .iter()
            .zip(1u64..)
            .map(|(name, v)| (name.to_string(), v.into()))
            .collect();
        serde_json::from_value(keys.into()).expect("every name is a field")
    }

    #[test]
    fn the_counter_names_are_the_fields_in_order() {
        let want: Vec<String> = Counters::NAMES
            .iter()
            .zip(1u64..)
            .map(|(name, v)| format!("\"{name}\":{v}"))
            .collect();
        assert_eq!(
            serde_json::to_string(&distinct_counters()).unwrap(),
            format!("{{{}}}", want.join(","))
        );
    }

    #[test]
    fn a_summary_round_trips_through_json_with_every_counter_at_top_level() {
        let mut f = Figures {
            counters: distinct_counters(),
            jitter_ns: 3_100.0,
            sender_packets_sent: Some(180),
            count: Some(7),
            goodbye: true,
            ..Figures::default()
        };
        f.latency.record(48_000).unwrap();
        f.rtt.record(90_000).unwrap();
        let s = f.summary();
        let text = serde_json::to_string(&s).unwrap();
        let back: Summary = serde_json::from_str(&text).unwrap();
        assert_eq!(back, s);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        for (name, want) in Counters::NAMES.iter().zip(1u64..) {
            assert_eq!(v[name].as_u64(), Some(want), "{name} in {text}");
        }
        // The figures derived from the rest keep their keys and types.
        assert!(
            v["loss_ratio"].is_f64() && v["jitter_us"].is_f64(),
            "{text}"
        );
        assert_eq!(v["latency_us"]["samples"], 1);
        assert_eq!(v["rtt_us"]["samples"], 1);
        assert_eq!(v["sender_ticks_skipped"], serde_json::Value::Null);
        assert_eq!(v["subscription"], "none");
        assert_eq!(v["one_way_meaningful"], false);
        assert_eq!(v["received_any"], true, "received is 2 here");
        // The keys in order: the counters, then the rest.
        let rest = [
            "loss_ratio",
            "jitter_us",
            "latency_us",
            "latency_scheduled_us",
            "latency_taken_us",
            "sender_packets_sent",
            "sender_ticks_skipped",
            "goodbye",
            "count",
            "rtt_us",
            "subscription",
            "one_way_meaningful",
            "received_any",
        ];
        let at: Vec<usize> = Counters::NAMES
            .iter()
            .chain(&rest)
            .map(|k| {
                text.find(&format!("\"{k}\":"))
                    .unwrap_or_else(|| panic!("{k}"))
            })
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{text}");
        assert_eq!(v.as_object().unwrap().len(), at.len(), "{text}");
        // A receiver's JSON without its figures is not a summary.
        assert!(serde_json::from_str::<Summary>("{}").is_err());
    }

    #[test]
    fn received_plus_lost_is_expected_in_the_summary_and_when_added() {
        let one = Counters {
            expected: 10,
            received: 9,
            lost: 1,
            ..Counters::default()
        };
        let mut two = distinct_counters();
        (two.expected, two.received, two.lost) = (20, 20, 0);
        let mut total = one;
        total.add(&two);
        for c in [one, two, total] {
            assert_eq!(c.received + c.lost, c.expected, "{c:?}");
        }
        let s = Figures {
            counters: total,
            ..Figures::default()
        }
        .summary();
        assert_eq!(s.counters, total);
        assert_eq!(s.loss_ratio, 1.0 / 30.0);
    }

    #[test]
    fn adding_counters_adds_every_one() {
        let mut total = distinct_counters();
        total.add(&distinct_counters());
        let twice = serde_json::to_value(total).unwrap();
        for (name, v) in Counters::NAMES.iter().zip(1u64..) {
            assert_eq!(twice[name].as_u64(), Some(2 * v), "{name}");
        }
    }

    #[test]
    fn latency_summary_is_in_microseconds() {
        let mut h = latency_histogram();
        for ns in [10_000u64, 20_000, 30_000] {
            h.record(ns).unwrap();
        }
        let s = LatencySummary::of(&h).unwrap();
        assert_eq!(s.samples, 3);
        // Within the histograms' resolution: 1 % of the value.
        assert!(
            (s.p50 - 20.0).abs() <= 0.2 && (s.max - 30.0).abs() <= 0.3,
            "{s:?}"
        );
    }
}
