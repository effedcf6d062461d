//! What a broadcaster publishes: [`BroadcastFigures`], the live counters
//! and lateness histogram any thread may read, and [`BroadcastSummary`],
//! the same flattened for JSON and tables.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::core::compact::CompactCounts;
use crate::core::histogram::{self, LatencySummary};
use crate::core::subscription::SubscriptionCounts;
use crate::runtime::batch::SendPath;

/// What a broadcaster has done so far. Counters only go up.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct BroadcastFigures {
    /// The session id every packet carries.
    pub session: u64,
    /// Ticks whose snapshot was sent (all its parts).
    pub ticks_sent: u64,
    /// Ticks given up because their slot passed before they could be sent.
    pub ticks_skipped: u64,
    /// Sequenced packets: sequence numbers used (snapshot parts, reports and
    /// goodbye copies), each counted once however many targets it went to.
    pub packets_sent: u64,
    /// Datagrams the OS accepted: one per packet per target, failures excluded.
    pub datagrams_sent: u64,
    /// Bytes of those datagrams (UDP payload).
    pub bytes_sent: u64,
    /// Datagrams the OS refused, one per packet per target. Never fatal.
    pub send_errors: u64,
    /// The most recent send error of a kind not seen before, as text.
    pub last_error: Option<String>,
    /// System calls that handed stream datagrams to the OS (`sendto`,
    /// `sendmmsg`), refused ones included; subscription replies are not
    /// counted. Per datagram, `send_syscalls / (datagrams_sent +
    /// send_errors)`: 1 for `sendto`, far less batched.
    pub send_syscalls: u64,
    /// Of `datagrams_sent`, those that left as segments of UDP GSO messages.
    pub gso_datagrams: u64,
    /// How datagrams are handed to the kernel now: what was asked for, less
    /// what was found not to work.
    pub send_path: SendPath,
    /// Times GSO was asked for and found not to work (by the probe at start,
    /// or a GSO send refused where the same datagrams one by one were
    /// accepted); GSO then stays off, so this is 0 or 1.
    pub gso_fallbacks: u64,
    /// Why GSO is not in use though it was asked for, if it is not.
    pub gso_error: Option<String>,
    /// How late each sent tick went out: actual start − deadline, in ns.
    pub lateness: Histogram<u64>,
    /// Receivers subscribed now.
    pub subscribers: usize,
    /// What the subscription table has done (all zero when subscriptions are off).
    pub subscriptions: SubscriptionCounts,
    /// Why the broadcast stopped itself, if it did (see [`Halt`]); `None`
    /// while it runs and when it ended by its duration or a stop.
    pub halted: Option<Halt>,
    /// With a published world: frames the game committed (or sent).
    pub frames_committed: u64,
    /// Frames the game committed over one not yet taken: under
    /// tickcast's clock a faster game's frames, under the game's clock
    /// frames lost because the thread had not sent the one before.
    pub frames_replaced: u64,
    /// Ticks sent from the game's frames.
    pub frames_sent: u64,
    /// Frames the thread refused; the tick is skipped. What a game's
    /// commit can check (an id twice, too many entities, a coordinate) is
    /// refused there instead ([`PublishError`](super::PublishError)), so
    /// this counts the rest: with compact snapshots, a tick the encoder
    /// could not split into 65535 parts.
    pub frames_refused: u64,
    /// Why the last frame was refused.
    pub last_refusal: Option<String>,
    /// With a published world: entities that appeared (new ids, and ids
    /// back after a despawn).
    pub spawned: u64,
    /// Entities despawned: in one frame sent and not in the next.
    pub despawned: u64,
    /// Rosters sent (each counted once, however many parts).
    pub rosters: u64,
    /// Entities in the last frame sent.
    pub live_entities: u64,
    /// With compact snapshots: keyframes and deltas written, entities left
    /// out at rest or deferred (their keyframe off schedule waits for a
    /// later tick); `None` for full snapshots.
    pub compact: Option<CompactCounts>,
}

/// Why a broadcast stopped itself before its duration ran out or anyone
/// stopped it. It still said goodbye (to no avail, when nothing gets out).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Halt {
    /// The OS refused every send for `BroadcastConfig::give_up_after` and
    /// accepted none: no target can be reached.
    #[error(
        "stopped: the OS refused all {refused} sends in {:.1} s and accepted none; the first refusal: {first_error}",
        window.as_secs_f64()
    )]
    EverySendFailed {
        /// Sends refused by then.
        refused: u64,
        /// How long every send had been refused.
        window: Duration,
        /// The first refusal, as text (`sending to ADDR: OS error`).
        first_error: String,
    },
}

impl Default for BroadcastFigures {
    fn default() -> Self {
        BroadcastFigures {
            session: 0,
            ticks_sent: 0,
            ticks_skipped: 0,
            packets_sent: 0,
            datagrams_sent: 0,
            bytes_sent: 0,
            send_errors: 0,
            last_error: None,
            send_syscalls: 0,
            gso_datagrams: 0,
            send_path: SendPath::default(),
            gso_fallbacks: 0,
            gso_error: None,
            lateness: histogram::latency_histogram(),
            subscribers: 0,
            subscriptions: SubscriptionCounts::default(),
            halted: None,
            frames_committed: 0,
            frames_replaced: 0,
            frames_sent: 0,
            frames_refused: 0,
            last_refusal: None,
            spawned: 0,
            despawned: 0,
            rosters: 0,
            live_entities: 0,
            compact: None,
        }
    }
}

impl BroadcastFigures {
    /// The figures as a flat, serializable summary (lateness in µs).
    pub fn summary(&self) -> BroadcastSummary {
        BroadcastSummary {
            session: self.session,
            ticks_sent: self.ticks_sent,
            ticks_skipped: self.ticks_skipped,
            packets_sent: self.packets_sent,
            datagrams_sent: self.datagrams_sent,
            bytes_sent: self.bytes_sent,
            send_errors: self.send_errors,
            last_error: self.last_error.clone(),
            send_syscalls: self.send_syscalls,
            gso_datagrams: self.gso_datagrams,
            send_path: self.send_path,
            gso_fallbacks: self.gso_fallbacks,
            gso_error: self.gso_error.clone(),
            lateness_us: LatencySummary::of(&self.lateness),
            subscribers: self.subscribers,
            subscribe_requests: self.subscriptions.subscribes,
            challenges_sent: self.subscriptions.challenges_sent,
            accepted: self.subscriptions.accepted,
            renewed: self.subscriptions.renewed,
            refused_full: self.subscriptions.refused_full,
            bad_cookie: self.subscriptions.bad_cookie,
            auth_failed: self.subscriptions.auth_failed,
            expired: self.subscriptions.expired,
            unsubscribed: self.subscriptions.unsubscribed,
            pongs: self.subscriptions.pongs,
            halted: self.halted.as_ref().map(ToString::to_string),
            frames_committed: self.frames_committed,
            frames_replaced: self.frames_replaced,
            frames_sent: self.frames_sent,
            frames_refused: self.frames_refused,
            last_refusal: self.last_refusal.clone(),
            spawned: self.spawned,
            despawned: self.despawned,
            rosters: self.rosters,
            live_entities: self.live_entities,
            compact: self.compact,
        }
    }
}

/// [`BroadcastFigures`] flattened for JSON and tables (the schema is
/// `proto/broadcaster.schema.json`); each field means what the field of
/// that name there does.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BroadcastSummary {
    /// [`BroadcastFigures::session`].
    pub session: u64,
    /// [`BroadcastFigures::ticks_sent`].
    pub ticks_sent: u64,
    /// [`BroadcastFigures::ticks_skipped`].
    pub ticks_skipped: u64,
    /// [`BroadcastFigures::packets_sent`].
    pub packets_sent: u64,
    /// [`BroadcastFigures::datagrams_sent`].
    pub datagrams_sent: u64,
    /// [`BroadcastFigures::bytes_sent`].
    pub bytes_sent: u64,
    /// [`BroadcastFigures::send_errors`].
    pub send_errors: u64,
    /// [`BroadcastFigures::last_error`].
    pub last_error: Option<String>,
    // Missing in the JSON of an older tickcast: zero, as it did not count them.
    /// [`BroadcastFigures::send_syscalls`].
    #[serde(default)]
    pub send_syscalls: u64,
    /// [`BroadcastFigures::gso_datagrams`].
    #[serde(default)]
    pub gso_datagrams: u64,
    /// [`BroadcastFigures::send_path`]. An older tickcast's JSON has none:
    /// it sent with `sendto`.
    #[serde(default = "send_path_before_batching")]
    pub send_path: SendPath,
    /// [`BroadcastFigures::gso_fallbacks`].
    #[serde(default)]
    pub gso_fallbacks: u64,
    /// [`BroadcastFigures::gso_error`].
    #[serde(default)]
    pub gso_error: Option<String>,
    /// Tick lateness percentiles, in µs; `None` (JSON `null`) before the
    /// first tick is sent.
    pub lateness_us: Option<LatencySummary>,
    /// Receivers subscribed at the time of the figures.
    pub subscribers: usize,
    /// Valid subscribes received (each answered with a challenge).
    pub subscribe_requests: u64,
    /// [`SubscriptionCounts::challenges_sent`].
    pub challenges_sent: u64,
    /// Subscriptions added.
    pub accepted: u64,
    /// Heartbeats that renewed a subscription.
    pub renewed: u64,
    /// [`SubscriptionCounts::refused_full`].
    pub refused_full: u64,
    /// Confirms and unsubscribes with a wrong cookie (never answered).
    pub bad_cookie: u64,
    /// With a key: datagrams to this socket that failed authentication.
    pub auth_failed: u64,
    /// Subscriptions whose lease ran out.
    pub expired: u64,
    /// [`SubscriptionCounts::unsubscribed`].
    pub unsubscribed: u64,
    /// [`SubscriptionCounts::pongs`].
    pub pongs: u64,
    /// Why the broadcast stopped itself ([`BroadcastFigures::halted`]), as text.
    pub halted: Option<String>,
    // The published world's figures: zero (and null) for the simulated
    // world, and in the JSON of an older tickcast.
    /// [`BroadcastFigures::frames_committed`].
    #[serde(default)]
    pub frames_committed: u64,
    /// [`BroadcastFigures::frames_replaced`].
    #[serde(default)]
    pub frames_replaced: u64,
    /// [`BroadcastFigures::frames_sent`].
    #[serde(default)]
    pub frames_sent: u64,
    /// [`BroadcastFigures::frames_refused`].
    #[serde(default)]
    pub frames_refused: u64,
    /// [`BroadcastFigures::last_refusal`].
    #[serde(default)]
    pub last_refusal: Option<String>,
    /// [`BroadcastFigures::spawned`].
    #[serde(default)]
    pub spawned: u64,
    /// [`BroadcastFigures::despawned`].
    #[serde(default)]
    pub despawned: u64,
    /// [`BroadcastFigures::rosters`].
    #[serde(default)]
    pub rosters: u64,
    /// [`BroadcastFigures::live_entities`].
    #[serde(default)]
    pub live_entities: u64,
    /// [`BroadcastFigures::compact`]. Absent (and `null`) for full
    /// snapshots, and in the JSON of an older tickcast.
    #[serde(default)]
    pub compact: Option<CompactCounts>,
}

/// What a summary without a send path (from before batching) sent with.
fn send_path_before_batching() -> SendPath {
    SendPath::SendTo
}

#[cfg(test)]
mod tests {
    use super::super::test_socket::{collect, config_to, receiver};
    use super::super::{BroadcastConfig, Broadcaster};
    use crate::core::schema::{check, Versioned};

    /// The broadcaster's JSON as `broadcast --json` writes it (`Versioned`
    /// of a [`super::BroadcastSummary`]) has exactly the keys
    /// `proto/broadcaster.schema.json` lists, of the types it states:
    /// before the first tick (lateness `null`) and after a real run over
    /// loopback.
    #[test]
    fn a_broadcasters_json_is_what_its_schema_file_says() {
        let schema = check::load(check::BROADCASTER);
        let json = |f: &super::BroadcastFigures| {
            serde_json::to_value(Versioned::new(f.summary())).unwrap()
        };
        let before = json(&super::BroadcastFigures::default());
        check::exactly(&schema, &before).unwrap_or_else(|e| panic!("{e}\n{before}"));
        assert!(before["lateness_us"].is_null(), "{before}");
        // A real run over loopback of 10 entities, full or compact: its
        // JSON, checked against the schema, and how many packets came.
        let run = |compact| {
            let sock = receiver();
            let config = BroadcastConfig {
                entities: 10,
                duration: Some(std::time::Duration::from_millis(100)),
                spin: std::time::Duration::ZERO,
                compact,
                ..config_to(&sock)
            };
            let b = Broadcaster::start(config).unwrap();
            let got = collect(&sock).len() as u64;
            let json = json(&b.wait());
            check::exactly(&schema, &json).unwrap_or_else(|e| panic!("{e}\n{json}"));
            (json, got)
        };
        let (after, got) = run(None);
        assert!(after["lateness_us"].is_object(), "{after}");
        assert_eq!(after["packets_sent"], got, "{after}");
        assert!(after["compact"].is_null(), "{after}");
        // Compact snapshots: the encoder's counts, 10 entities a tick.
        let (compact, _) = run(Some(crate::core::compact::CompactConfig::default()));
        let c = &compact["compact"];
        let records = c["keyframes"].as_u64().unwrap() + c["deltas"].as_u64().unwrap();
        let ticks = compact["ticks_sent"].as_u64().unwrap();
        assert_eq!(records, 10 * ticks, "{compact}");
    }
}
