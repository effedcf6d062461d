//! What to broadcast, where and how fast: [`BroadcastConfig`], its limits,
//! and [`BroadcastConfig::validate`], which finds every problem before
//! anything is opened.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use crate::core::compact::CompactConfig;
use crate::core::lifecycle::LifecycleConfig;
use crate::core::schedule::Schedule;
use crate::core::sender::{self, SenderConfig};
use crate::core::sim::WorldKind;
use crate::core::subscription::{
    SubscriptionConfig, SubscriptionConfigError, DEFAULT_COOKIE_PERIOD, DEFAULT_LEASE,
    DEFAULT_MAX_SUBSCRIBERS,
};
use crate::runtime::batch::SendPath;
use crate::runtime::realtime::{RealtimeConfig, RealtimeError, ThreadSetup};
use crate::wire;
use crate::wire::auth::{self, Key};

/// Highest tick rate accepted, in hertz.
pub const MAX_RATE_HZ: f64 = 10_000.0;
/// Smallest payload budget: a snapshot part holding one entity.
pub const MIN_PAYLOAD_BUDGET: usize = wire::SNAPSHOT_FIXED_LEN + wire::ENTITY_LEN;
/// Largest payload budget: the largest UDP payload.
pub const MAX_PAYLOAD_BUDGET: usize = wire::MAX_DATAGRAM;
/// Default [`BroadcastConfig::give_up_after`]: a second of nothing but refused sends.
pub const DEFAULT_GIVE_UP_AFTER: Duration = Duration::from_secs(1);

/// What to broadcast, where and how fast. Build it with `..Default::default()`
/// and check it with [`BroadcastConfig::validate`] (which
/// [`Broadcaster::start`] also does).
///
/// [`Broadcaster::start`]: super::Broadcaster::start
#[derive(Clone, Debug, PartialEq)]
pub struct BroadcastConfig {
    /// Unicast destinations; every packet goes to each.
    pub destinations: Vec<SocketAddr>,
    /// Multicast group (address and port); every packet goes to it too.
    pub group: Option<SocketAddr>,
    /// Subnet broadcast destinations (e.g. 192.168.1.255:47474), IPv4 only;
    /// every packet goes to each, with SO_BROADCAST set.
    pub broadcast: Vec<SocketAddr>,
    /// Outgoing interface for the group, by its address (default
    /// 127.0.0.1): an IPv4 address for an IPv4 group, an IPv6 address (of
    /// the interface to use) for an IPv6 group.
    pub interface: IpAddr,
    /// Multicast TTL (IPv4) or hop limit (IPv6), at most 255 (default 1: this subnet).
    pub multicast_ttl: u32,
    /// Whether this host's own members of the group receive it (default true).
    pub multicast_loop: bool,
    /// Local address to send from, and where receivers subscribe (default
    /// 0.0.0.0:0; see [`BroadcastConfig::bind_addr`]). Bind a specific
    /// address when the host has several: replies leave from the address
    /// the kernel picks for each receiver, and a receiver only takes them
    /// from the address it subscribed to.
    pub bind: SocketAddr,
    /// Most receivers subscribed at once (default 64); 0 turns subscriptions
    /// off: the socket is then never read.
    pub max_subscribers: usize,
    /// How long a subscription lasts without a heartbeat (default 5 s).
    pub lease: Duration,
    /// Cookie time bucket: a cookie is valid in its bucket and the next
    /// (default 10 s).
    pub cookie_period: Duration,
    /// Entities in the simulated world (default 100). A published world
    /// ([`Broadcaster::start_published`]) has what the game puts in it.
    ///
    /// [`Broadcaster::start_published`]: super::Broadcaster::start_published
    pub entities: u32,
    /// How a published world's despawns are stated: the roster interval,
    /// in ticks (default 60), bounds how long an entity whose every
    /// despawn copy was lost lives on at a receiver. The simulated world,
    /// whose entities never leave, sends no lifecycle.
    pub lifecycle: LifecycleConfig,
    /// Send snapshots as compact parts (protocol version 2's kind 6):
    /// positions quantized (default 1 mm within ±10⁶ units), delta-coded
    /// against each entity's own keyframe (one every 60 ticks by default,
    /// spread over the ticks), and left out while an entity is at rest.
    /// About a tenth of the bytes of full parts; a receiver holds each
    /// position to the quantum. `None` (the default) sends full parts
    /// (`f32` coordinates, 16 bytes an entity). See [`crate::core::compact`].
    pub compact: Option<CompactConfig>,
    /// Ticks per second, in (0, 10000], taken to the nearest µHz (default 60).
    pub rate_hz: f64,
    /// How long to run; `None` runs until stopped (default `None`).
    pub duration: Option<Duration>,
    /// Seed of the simulated world (default 1).
    pub seed: u64,
    /// Which simulated world (default [`WorldKind::Linear`]): constant
    /// velocities in a box, or [`WorldKind::Players`], avatars steering
    /// about a ground plane. A published world is the game's own.
    pub world: WorldKind,
    /// Largest snapshot datagram, in bytes (default [`wire::DEFAULT_PAYLOAD_BUDGET`]).
    pub payload_budget: usize,
    /// How often a sender report is sent (default 1 s; must not be zero).
    pub report_interval: Duration,
    /// Least time to busy-spin before each deadline instead of sleeping
    /// (default 50 µs). The sender adds what it measures its sleeps
    /// overshooting by (see [`WakeMargin`]), so ticks leave on time on hosts
    /// whose timers wake late; zero with a quiet host only sleeps.
    ///
    /// [`WakeMargin`]: crate::core::schedule::WakeMargin
    pub spin: Duration,
    /// Session id; `None` picks a random one.
    pub session: Option<u64>,
    /// Sequence number of the first packet; `None` picks a random one, like RTP.
    pub first_seq: Option<u32>,
    /// How long the OS may refuse every send, having accepted none, before
    /// the broadcast stops itself and says why
    /// ([`BroadcastFigures::halted`]): then no target can be reached (port
    /// 0, no route to the network, a firewall rejecting all). `None` never
    /// stops. Once the OS has accepted a datagram, later refusals (one bad
    /// target among several, an interface going down) are counted, logged
    /// once per kind, and never stop it. Default 1 s.
    ///
    /// [`BroadcastFigures::halted`]: super::BroadcastFigures::halted
    pub give_up_after: Option<Duration>,
    /// How datagrams are handed to the kernel (default [`SendPath::Gso`]:
    /// `sendmmsg` with UDP GSO where the kernel takes it, falling back by
    /// itself); ask for less to compare, or where GSO misbehaves silently.
    pub send_path: SendPath,
    /// Pre-shared key: with one, every stream datagram is sealed
    /// ([`crate::wire::auth::seal_into`]); the tag's [`crate::wire::auth::TAG_LEN`]
    /// bytes come out of `payload_budget`, so sealed datagrams still fit it.
    pub key: Option<Key>,
    /// Run the broadcast thread under SCHED_FIFO (and lock the process's
    /// memory), applied by the thread as it starts; a refusal is an error
    /// of [`Broadcaster::start`]. `None` (the default) leaves it an
    /// ordinary thread. See [`crate::runtime::realtime`].
    ///
    /// [`Broadcaster::start`]: super::Broadcaster::start
    pub realtime: Option<RealtimeConfig>,
    /// Pin the broadcast thread to this CPU (default `None`: wherever the
    /// OS puts it); one the process may not run on is an error of `start`.
    pub cpu: Option<usize>,
}

impl Default for BroadcastConfig {
    fn default() -> Self {
        BroadcastConfig {
            destinations: Vec::new(),
            group: None,
            broadcast: Vec::new(),
            interface: IpAddr::V4(Ipv4Addr::LOCALHOST),
            multicast_ttl: 1,
            multicast_loop: true,
            bind: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
            max_subscribers: DEFAULT_MAX_SUBSCRIBERS,
            lease: DEFAULT_LEASE,
            cookie_period: DEFAULT_COOKIE_PERIOD,
            entities: 100,
            lifecycle: LifecycleConfig::default(),
            compact: None,
            rate_hz: 60.0,
            duration: None,
            seed: 1,
            world: WorldKind::Linear,
            payload_budget: wire::DEFAULT_PAYLOAD_BUDGET,
            report_interval: Duration::from_secs(1),
            spin: Duration::from_micros(50),
            session: None,
            first_seq: None,
            give_up_after: Some(DEFAULT_GIVE_UP_AFTER),
            send_path: SendPath::default(),
            key: None,
            realtime: None,
            cpu: None,
        }
    }
}

/// Why a [`BroadcastConfig`] cannot run.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Nowhere to send, and subscriptions are off.
    #[error(
        "no destination, multicast group or broadcast address given, and subscriptions are off"
    )]
    NoDestination,
    /// The rate is not a usable number of ticks per second.
    #[error("tick rate {0} Hz is not in (0, {MAX_RATE_HZ}] (at 1 µHz resolution)")]
    BadRate(f64),
    /// The payload budget cannot hold one entity, or exceeds a UDP datagram.
    #[error("payload budget {0} bytes is outside {MIN_PAYLOAD_BUDGET}..={MAX_PAYLOAD_BUDGET}")]
    BadPayloadBudget(usize),
    /// The group address is not a multicast address.
    #[error("group address {0} is not a multicast address")]
    GroupNotMulticast(SocketAddr),
    /// The group's interface must be given by an address of the group's family.
    #[error(
        "multicast interface {interface} is not an {} address, as group {group} needs",
        if .group.is_ipv4() { "IPv4" } else { "IPv6" }
    )]
    InterfaceFamily {
        /// The configured interface.
        interface: IpAddr,
        /// The group.
        group: SocketAddr,
    },
    /// Subnet broadcast exists in IPv4 only.
    #[error("broadcast address {0} is not an IPv4 address (IPv6 has no broadcast; use a group)")]
    BroadcastNotIpv4(SocketAddr),
    /// The subscription lease or cookie period is unusable.
    #[error(transparent)]
    Subscription(#[from] SubscriptionConfigError),
    /// The multicast TTL does not fit in the IP header.
    #[error("multicast TTL {0} is above 255")]
    BadTtl(u32),
    /// A tick would need more parts than the `u16` part count can number.
    #[error(
        "{entities} entities at {per_part} per part need {parts} parts, more than the 65535 a tick can have"
    )]
    TooManyParts {
        /// Entities configured.
        entities: u32,
        /// Entities that fit in one part at the payload budget.
        per_part: usize,
        /// Parts a tick would need.
        parts: u64,
    },
    /// Reports cannot be sent every zero seconds.
    #[error("report interval must be greater than zero")]
    ZeroReportInterval,
    /// The real-time priority is outside SCHED_FIFO's range.
    #[error(transparent)]
    Realtime(#[from] RealtimeError),
    /// The compact config is invalid.
    #[error(transparent)]
    Compact(#[from] crate::core::compact::CompactConfigError),
    /// The compact bound is smaller than the simulated world's box, so
    /// every tick would be refused.
    #[error("the compact bound {bound} is smaller than the simulated world's {side}-unit box: use --bound {side} or more")]
    BoundBelowWorld {
        /// The bound asked for.
        bound: f32,
        /// The box's longest side.
        side: f64,
    },
    /// A target's address family differs from the socket's.
    #[error("cannot send to {addr} from a socket bound to {bind}: address families differ")]
    FamilyMismatch {
        /// The destination or group.
        addr: SocketAddr,
        /// The address the socket would bind.
        bind: SocketAddr,
    },
}

impl BroadcastConfig {
    /// Bytes an encoded snapshot part may take: the payload budget, less
    /// the tag when sealing.
    pub fn packet_budget(&self) -> usize {
        match self.key {
            Some(_) => self.payload_budget.saturating_sub(auth::TAG_LEN),
            None => self.payload_budget,
        }
    }

    /// [`BroadcastConfig::validate`], and for the simulated world (not a
    /// published one) a compact bound that holds its box.
    pub fn validate_simulated(&self) -> Result<(), ConfigError> {
        self.validate()?;
        let side = crate::core::sim::WORLD_SIZE
            .iter()
            .copied()
            .fold(0.0, f64::max);
        match &self.compact {
            Some(c) if f64::from(c.bound) < side => Err(ConfigError::BoundBelowWorld {
                bound: c.bound,
                side,
            }),
            _ => Ok(()),
        }
    }

    /// Checks that this configuration can run; the first problem found is returned.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.targets().next().is_none() && self.max_subscribers == 0 {
            return Err(ConfigError::NoDestination);
        }
        let rate_ok = self.rate_hz > 0.0 && self.rate_hz <= MAX_RATE_HZ;
        if !rate_ok || Schedule::from_rate_hz(self.rate_hz).is_none() {
            return Err(ConfigError::BadRate(self.rate_hz));
        }
        // The budget bounds the sealed datagram too: without the first
        // test a key would let it run past the largest datagram by the tag.
        let per_part = Some(self.packet_budget())
            .filter(|_| self.payload_budget <= MAX_PAYLOAD_BUDGET)
            .and_then(wire::entities_per_part)
            .ok_or(ConfigError::BadPayloadBudget(self.payload_budget))?;
        if let Some(group) = self.group {
            if !group.ip().is_multicast() {
                return Err(ConfigError::GroupNotMulticast(group));
            }
            if group.is_ipv4() != self.interface.is_ipv4() {
                return Err(ConfigError::InterfaceFamily {
                    interface: self.interface,
                    group,
                });
            }
        }
        if self.multicast_ttl > 255 {
            return Err(ConfigError::BadTtl(self.multicast_ttl));
        }
        let parts = sender::parts_for(self.entities as usize, per_part);
        if parts > u64::from(u16::MAX) {
            return Err(ConfigError::TooManyParts {
                entities: self.entities,
                per_part,
                parts,
            });
        }
        if self.report_interval.is_zero() {
            return Err(ConfigError::ZeroReportInterval);
        }
        if let Some(c) = &self.compact {
            c.validate()?;
            // A compact part must hold the longest record.
            if self.packet_budget() < wire::MIN_COMPACT_BUDGET {
                return Err(ConfigError::BadPayloadBudget(self.payload_budget));
            }
        }
        if let Some(&b) = self.broadcast.iter().find(|b| !b.is_ipv4()) {
            return Err(ConfigError::BroadcastNotIpv4(b));
        }
        if self.max_subscribers > 0 {
            self.subscription_config(0).validate()?;
        }
        let bind = self.bind_addr();
        if let Some(addr) = self.targets().find(|a| a.is_ipv4() != bind.is_ipv4()) {
            return Err(ConfigError::FamilyMismatch { addr, bind });
        }
        if let Some(rt) = &self.realtime {
            rt.validate()?;
        }
        Ok(())
    }

    /// The address the socket binds: [`BroadcastConfig::bind`], except that
    /// the default `0.0.0.0:0` becomes `[::]:0` when every target is IPv6.
    pub fn bind_addr(&self) -> SocketAddr {
        let default = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
        let mut targets = self.targets().peekable();
        if self.bind == default && targets.peek().is_some() && targets.all(|a| a.is_ipv6()) {
            SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0))
        } else {
            self.bind
        }
    }

    /// Every fixed address a packet is sent to: the destinations, the
    /// group, then the broadcast addresses (subscribers come on top).
    pub(super) fn targets(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.destinations
            .iter()
            .copied()
            .chain(self.group)
            .chain(self.broadcast.iter().copied())
    }

    /// What the [`Sender`] is given: this session, its first number, the
    /// budget, the report interval and the key.
    pub(super) fn sender_config(
        &self,
        session: u64,
        first_seq: u32,
        published: bool,
    ) -> SenderConfig {
        SenderConfig {
            session,
            first_seq,
            payload_budget: self.payload_budget,
            report_interval: self.report_interval,
            key: self.key.clone(),
            lifecycle: published.then_some(self.lifecycle),
            compact: self.compact,
        }
    }

    /// What the thread applies to itself as it starts.
    pub(super) fn thread_setup(&self) -> ThreadSetup {
        ThreadSetup {
            realtime: self.realtime,
            cpu: self.cpu,
        }
    }

    pub(super) fn subscription_config(&self, session: u64) -> SubscriptionConfig {
        SubscriptionConfig {
            session,
            max_subscribers: self.max_subscribers,
            lease: self.lease,
            cookie_period: self.cookie_period,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{BroadcastError, Broadcaster};
    use super::*;

    #[test]
    fn validate_rejects_each_bad_config_with_its_message() {
        let ok = BroadcastConfig {
            destinations: vec!["127.0.0.1:9000".parse().unwrap()],
            ..BroadcastConfig::default()
        };
        assert_eq!(ok.validate(), Ok(()));
        let group = |g: &str| BroadcastConfig {
            group: Some(g.parse().unwrap()),
            ..ok.clone()
        };
        let cases: Vec<(BroadcastConfig, ConfigError, &str)> = vec![
            (
                BroadcastConfig {
                    max_subscribers: 0,
                    ..BroadcastConfig::default()
                },
                ConfigError::NoDestination,
                "no destination, multicast group or broadcast address given, and subscriptions are off",
            ),
            (
                BroadcastConfig {
                    broadcast: vec!["[::1]:9000".parse().unwrap()],
                    ..ok.clone()
                },
                ConfigError::BroadcastNotIpv4("[::1]:9000".parse().unwrap()),
                "broadcast address [::1]:9000 is not an IPv4 address (IPv6 has no broadcast; use a group)",
            ),
            (
                group("[ff02::1]:5000"),
                ConfigError::InterfaceFamily {
                    interface: "127.0.0.1".parse().unwrap(),
                    group: "[ff02::1]:5000".parse().unwrap(),
                },
                "multicast interface 127.0.0.1 is not an IPv6 address, as group [ff02::1]:5000 needs",
            ),
            (
                BroadcastConfig {
                    lease: Duration::ZERO,
                    ..ok.clone()
                },
                ConfigError::Subscription(SubscriptionConfigError::BadLease(Duration::ZERO)),
                "subscription lease 0ns is not between 1 ms and 4294967295 ms",
            ),
            (
                BroadcastConfig {
                    rate_hz: 0.0,
                    ..ok.clone()
                },
                ConfigError::BadRate(0.0),
                "tick rate 0 Hz is not in (0, 10000] (at 1 µHz resolution)",
            ),
            (
                BroadcastConfig {
                    rate_hz: 10_001.0,
                    ..ok.clone()
                },
                ConfigError::BadRate(10_001.0),
                "tick rate 10001 Hz is not in (0, 10000] (at 1 µHz resolution)",
            ),
            (
                BroadcastConfig {
                    payload_budget: 60,
                    ..ok.clone()
                },
                ConfigError::BadPayloadBudget(60),
                "payload budget 60 bytes is outside 72..=65507",
            ),
            (
                BroadcastConfig {
                    payload_budget: 70_000,
                    ..ok.clone()
                },
                ConfigError::BadPayloadBudget(70_000),
                "payload budget 70000 bytes is outside 72..=65507",
            ),
            (
                group("10.0.0.1:5000"),
                ConfigError::GroupNotMulticast("10.0.0.1:5000".parse().unwrap()),
                "group address 10.0.0.1:5000 is not a multicast address",
            ),
            (
                BroadcastConfig {
                    interface: "::1".parse().unwrap(),
                    ..group("239.1.2.3:5000")
                },
                ConfigError::InterfaceFamily {
                    interface: "::1".parse().unwrap(),
                    group: "239.1.2.3:5000".parse().unwrap(),
                },
                "multicast interface ::1 is not an IPv4 address, as group 239.1.2.3:5000 needs",
            ),
            (
                BroadcastConfig {
                    multicast_ttl: 256,
                    ..group("239.1.2.3:5000")
                },
                ConfigError::BadTtl(256),
                "multicast TTL 256 is above 255",
            ),
            (
                BroadcastConfig {
                    entities: 5_000_000,
                    ..ok.clone()
                },
                ConfigError::TooManyParts {
                    entities: 5_000_000,
                    per_part: 71,
                    parts: 70_423,
                },
                "5000000 entities at 71 per part need 70423 parts, more than the 65535 a tick can have",
            ),
            (
                BroadcastConfig {
                    report_interval: Duration::ZERO,
                    ..ok.clone()
                },
                ConfigError::ZeroReportInterval,
                "report interval must be greater than zero",
            ),
            (
                BroadcastConfig {
                    destinations: vec!["127.0.0.1:9000".parse().unwrap(), "[::1]:9000".parse().unwrap()],
                    ..ok.clone()
                },
                ConfigError::FamilyMismatch {
                    addr: "[::1]:9000".parse().unwrap(),
                    bind: "0.0.0.0:0".parse().unwrap(),
                },
                "cannot send to [::1]:9000 from a socket bound to 0.0.0.0:0: address families differ",
            ),
            (
                BroadcastConfig {
                    realtime: Some(RealtimeConfig::fifo(0)),
                    ..ok.clone()
                },
                ConfigError::Realtime(RealtimeError::BadPriority(0)),
                "real-time priority 0 is not in 1..=99 (SCHED_FIFO's range)",
            ),
        ];
        for (config, error, message) in cases {
            let got = config.validate().unwrap_err();
            assert_eq!(got, error);
            assert_eq!(got.to_string(), message);
            // start refuses it with the same message, before opening anything.
            let started = Broadcaster::start(config).unwrap_err();
            assert!(matches!(started, BroadcastError::Config(ref e) if *e == error));
            assert_eq!(started.to_string(), message);
        }
        assert_eq!(MIN_PAYLOAD_BUDGET, 72);
        assert_eq!(wire::entities_per_part(MIN_PAYLOAD_BUDGET), Some(1));
        assert_eq!(wire::entities_per_part(MIN_PAYLOAD_BUDGET - 1), None);
        assert!(wire::entities_per_part(MAX_PAYLOAD_BUDGET).is_some());
        assert_eq!(wire::entities_per_part(MAX_PAYLOAD_BUDGET + 1), None);
    }

    #[test]
    fn a_sealed_budget_above_the_largest_datagram_is_refused() {
        // 65,520 less the tag left room for full parts whose sealed
        // datagrams were 65,512 bytes, which no UDP socket sends.
        let keyed = BroadcastConfig {
            destinations: vec!["127.0.0.1:9000".parse().unwrap()],
            key: Some(Key::from_bytes([1; auth::KEY_LEN])),
            ..BroadcastConfig::default()
        };
        for budget in MAX_PAYLOAD_BUDGET + 1..=MAX_PAYLOAD_BUDGET + auth::TAG_LEN {
            let config = BroadcastConfig {
                payload_budget: budget,
                ..keyed.clone()
            };
            assert_eq!(
                config.validate(),
                Err(ConfigError::BadPayloadBudget(budget))
            );
        }
        let largest = BroadcastConfig {
            payload_budget: MAX_PAYLOAD_BUDGET,
            ..keyed
        };
        assert_eq!(largest.validate(), Ok(()));
    }

    #[test]
    fn the_default_bind_follows_ipv6_targets() {
        let v6 = BroadcastConfig {
            destinations: vec!["[::1]:9000".parse().unwrap()],
            ..BroadcastConfig::default()
        };
        assert_eq!(v6.bind_addr(), "[::]:0".parse().unwrap());
        assert_eq!(v6.validate(), Ok(()));
        let v4 = BroadcastConfig {
            destinations: vec!["127.0.0.1:9000".parse().unwrap()],
            ..BroadcastConfig::default()
        };
        assert_eq!(v4.bind_addr(), "0.0.0.0:0".parse().unwrap());
        assert_eq!(
            BroadcastConfig::default().bind_addr(),
            "0.0.0.0:0".parse().unwrap()
        );
    }
}
