//! What a receiver listens to, and how: [`ReceiverConfig`], checked by
//! [`ReceiverConfig::validate`] before anything is opened.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use crate::core::replay::DEFAULT_FRESHNESS;
use crate::core::source::SourceFilter;
use crate::core::world::DEFAULT_CAPACITY;
use crate::runtime::client::ClientConfig;
use crate::runtime::realtime::{RealtimeConfig, RealtimeError};
use crate::wire::auth::Key;

/// Receive buffer requested per socket: a few ticks of a large world.
pub const DEFAULT_RECV_BUFFER: usize = 4 << 20;

/// What a receiver listens to.
#[derive(Clone, Debug, PartialEq)]
pub struct ReceiverConfig {
    /// A unicast address to bind (port 0 picks a free one). With
    /// `subscribe` and no `bind`, the unspecified address of the
    /// broadcaster's family with port 0 (`0.0.0.0:0` or `[::]:0`).
    pub bind: Option<SocketAddr>,
    /// A multicast group (address and port) to join.
    pub group: Option<SocketAddr>,
    /// The local interface address to join the group on.
    pub interface: IpAddr,
    /// Entity ids accepted are `0..capacity`; memory is bounded by it.
    pub capacity: u32,
    /// Socket receive buffer to request, in bytes.
    pub recv_buffer: Option<usize>,
    /// A broadcaster's address to subscribe to: the stream then comes by
    /// unicast to the `bind` socket, for as long as the receiver runs.
    pub subscribe: Option<SocketAddr>,
    /// How the receiver thread waits for datagrams.
    pub mode: ReceiveMode,
    /// Pre-shared key: with one, only datagrams sealed with it are taken
    /// (see [`crate::core::ingest`]), and the subscription traffic is sealed too.
    pub key: Option<Key>,
    /// With a key: a sealed stream datagram whose `sent_ns` is further than
    /// this from its arrival on this host's clock is refused (`stale_sealed`;
    /// see [`crate::core::replay`]). Default [`DEFAULT_FRESHNESS`]; widen it
    /// for a sender whose clock is further off, `None` turns the check off.
    pub freshness: Option<Duration>,
    /// Take datagrams from this source only (an address, or an address and
    /// port); the others are dropped before decoding and counted as
    /// `foreign`. `None` takes every source.
    pub from: Option<SourceFilter>,
    /// Log a warning (the `log` crate, target `tickcast::runtime::receiver`)
    /// for rejected datagrams (malformed, failed authentication, replayed):
    /// at most [`LOG_BURST`] at once and [`LOG_PER_SECOND`] a second after
    /// that, so a flood cannot fill a disk; the next one logged says how
    /// many were held back.
    pub log_rejects: bool,
    /// Whether the subscription gives up after
    /// [`GIVE_UP_UNANSWERED`](crate::core::subscriber::GIVE_UP_UNANSWERED)
    /// with no answer at all, or after
    /// [`GIVE_UP_REFUSALS`](crate::core::subscriber::GIVE_UP_REFUSALS)
    /// refusals in a row (default true): its state is then `Failed`, and
    /// the rest of the receiver goes on. False retries for as long as the
    /// receiver runs.
    pub give_up_subscribing: bool,
    /// Run the receiver thread under SCHED_FIFO (and lock the process's
    /// memory), applied by the thread as it starts; a refusal is an error
    /// of [`Receiver::start`](super::Receiver::start). `None` (the default) leaves it an ordinary
    /// thread. See [`crate::runtime::realtime`].
    pub realtime: Option<RealtimeConfig>,
    /// Feed a game client ([`Receiver::take_client`](super::Receiver::take_client)): a whole frame of the
    /// world each time a tick is complete, and the events (spawns,
    /// despawns, sessions, the goodbye, the subscription). `None` (the
    /// default) does none of that work: the command line's receivers and
    /// the benchmark only measure.
    pub client: Option<ClientConfig>,
    /// Pin the receiver thread to this CPU (default `None`: wherever the
    /// OS puts it); one the process may not run on is an error of `start`.
    pub cpu: Option<usize>,
    /// Take runs of datagrams the kernel coalesced in one buffer (`UDP_GRO`,
    /// Linux; default true): a GSO sender's runs over loopback or a veth,
    /// or what a NIC merged, cost one queueing and one copy each, which
    /// about halves the receiver's CPU and its sender's on loopback. The
    /// kernel then counts a run dropped at a full socket once in
    /// `socket_drops`, not once per datagram; false counts each.
    pub gro: bool,
}

/// Reject warnings the receiver logs a second, at most, once its burst is spent.
pub const LOG_PER_SECOND: u32 = 5;
/// Reject warnings the receiver may log at once.
pub const LOG_BURST: u32 = 10;

/// How the receiver thread waits for datagrams: the trade between latency
/// and CPU. `tickcast bench --receive-mode` measures each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReceiveMode {
    /// Sleep in `poll` until the kernel reports a datagram: least CPU, but
    /// every tick pays the operating system's wake-up latency.
    #[default]
    Wait,
    /// At a fixed tick rate the next tick's first datagram is predictable
    /// (see [`crate::core::predict`]): sleep until just before it (less a margin
    /// learned from how late this host wakes), then busy-poll the sockets
    /// until it arrives. Low latency for a few percent of a core, when the
    /// thread gets a CPU as its timer fires; while it does not (other work
    /// on every core), it waits as [`ReceiveMode::Wait`] does, trying again
    /// now and then ([`SpinJudge`](crate::core::predict::SpinJudge)).
    Predict,
    /// Never sleep: busy-poll the sockets. Lowest latency, a whole core.
    BusyPoll,
}

impl ReceiveMode {
    /// Every mode, in order of CPU spent.
    pub const ALL: [ReceiveMode; 3] = [
        ReceiveMode::Wait,
        ReceiveMode::Predict,
        ReceiveMode::BusyPoll,
    ];

    /// The mode's name as `--mode` spells it.
    pub fn name(self) -> &'static str {
        match self {
            ReceiveMode::Wait => "wait",
            ReceiveMode::Predict => "predict",
            ReceiveMode::BusyPoll => "busy-poll",
        }
    }
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        ReceiverConfig {
            bind: None,
            group: None,
            interface: IpAddr::V4(Ipv4Addr::LOCALHOST),
            capacity: DEFAULT_CAPACITY,
            recv_buffer: Some(DEFAULT_RECV_BUFFER),
            subscribe: None,
            mode: ReceiveMode::Wait,
            key: None,
            freshness: Some(DEFAULT_FRESHNESS),
            from: None,
            log_rejects: false,
            give_up_subscribing: true,
            realtime: None,
            cpu: None,
            client: None,
            gro: true,
        }
    }
}

impl ReceiverConfig {
    /// Listen on one unicast address.
    pub fn unicast(bind: SocketAddr) -> ReceiverConfig {
        ReceiverConfig {
            bind: Some(bind),
            ..ReceiverConfig::default()
        }
    }

    /// Join `group` on the interface with address `interface`.
    pub fn multicast(group: SocketAddr, interface: IpAddr) -> ReceiverConfig {
        ReceiverConfig {
            group: Some(group),
            interface,
            ..ReceiverConfig::default()
        }
    }

    /// Subscribe to the broadcaster at `server`, from a free port.
    pub fn subscribe(server: SocketAddr) -> ReceiverConfig {
        ReceiverConfig {
            subscribe: Some(server),
            ..ReceiverConfig::default()
        }
    }

    /// The unicast address to bind: [`ReceiverConfig::bind`], or when
    /// subscribing without one, the unspecified address of the
    /// broadcaster's family with port 0.
    pub fn bind_addr(&self) -> Option<SocketAddr> {
        self.bind.or_else(|| {
            self.subscribe.map(|s| match s {
                SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
                SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
            })
        })
    }
}

impl ReceiverConfig {
    /// Checks what can be checked before anything is opened (which
    /// [`Receiver::start`](super::Receiver::start) also does); the first problem found is returned.
    /// What only the OS can tell (an address of this host, a free port, an
    /// interface that joins) is left to `start`.
    pub fn validate(&self) -> Result<(), ReceiverConfigError> {
        let bind = self.bind_addr();
        if bind.is_none() && self.group.is_none() {
            return Err(ReceiverConfigError::NothingToListen);
        }
        if let (Some(server), Some(bind)) = (self.subscribe, bind) {
            if server.is_ipv4() != bind.is_ipv4() {
                return Err(ReceiverConfigError::SubscribeFamily { server, bind });
            }
        }
        if let Some(group) = self.group {
            if !group.ip().is_multicast() {
                return Err(ReceiverConfigError::GroupNotMulticast(group));
            }
            if group.is_ipv4() != self.interface.is_ipv4() {
                return Err(ReceiverConfigError::InterfaceFamily {
                    interface: self.interface,
                    group,
                });
            }
        }
        if self.capacity == 0 {
            return Err(ReceiverConfigError::ZeroCapacity);
        }
        if let Some(client) = &self.client {
            if !(1..=MAX_EVENT_CAPACITY).contains(&client.event_capacity) {
                return Err(ReceiverConfigError::EventCapacity(client.event_capacity));
            }
            // Positive or infinite; NaN is neither.
            let distance = client.interpolation.teleport_distance;
            if distance.is_nan() || distance <= 0.0 {
                return Err(ReceiverConfigError::TeleportDistance);
            }
        }
        if let Some(rt) = &self.realtime {
            rt.validate()?;
        }
        Ok(())
    }
}

/// The most events a game client's queue may hold: 2^20, 32 MiB, allocated
/// whole when the receiver starts.
pub const MAX_EVENT_CAPACITY: usize = 1 << 20;

/// Why a [`ReceiverConfig`] cannot run ([`ReceiverConfig::validate`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiverConfigError {
    /// A game client's event queue of no room, or of more than
    /// [`MAX_EVENT_CAPACITY`] (it is allocated whole at start).
    #[error("event capacity {0} is not in 1..={MAX_EVENT_CAPACITY}")]
    EventCapacity(usize),
    /// A teleport distance that is not a positive number of world units
    /// (NaN, 0 or below; infinity, never snapping, is one).
    #[error("teleport distance must be a positive number of world units (infinity: never snap)")]
    TeleportDistance,
    /// A world of capacity 0 takes no id: every entity would be rejected.
    #[error("capacity 0 takes no entity id (ids taken are 0..capacity): give at least 1")]
    ZeroCapacity,
    /// Neither a bind address, a group nor a broadcaster to subscribe to was given.
    #[error("nothing to listen to: give a bind address, a multicast group, a broadcaster to subscribe to, or several")]
    NothingToListen,
    /// The socket that would subscribe cannot reach the broadcaster's family.
    #[error("cannot subscribe to {server} from a socket bound to {bind}: address families differ")]
    SubscribeFamily {
        /// The broadcaster's address.
        server: SocketAddr,
        /// The address the socket would bind.
        bind: SocketAddr,
    },
    /// The group address is not a multicast address.
    #[error("group {0} is not a multicast address (IPv4 224.0.0.0/4, IPv6 ff00::/8)")]
    GroupNotMulticast(SocketAddr),
    /// The group must be joined on an interface address of its family.
    #[error(
        "interface {interface} is not an {} address, as group {group} needs",
        if .group.is_ipv4() { "IPv4" } else { "IPv6" }
    )]
    InterfaceFamily {
        /// The configured interface.
        interface: IpAddr,
        /// The group.
        group: SocketAddr,
    },
    /// The real-time priority is outside SCHED_FIFO's range.
    #[error(transparent)]
    Realtime(#[from] RealtimeError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::receiver::{Receiver, ReceiverError};

    #[test]
    fn validate_refuses_each_bad_config_before_opening_anything() {
        let group: SocketAddr = "239.255.74.1:47474".parse().unwrap();
        let v6: SocketAddr = "[::1]:9".parse().unwrap();
        let cases = [
            (
                ReceiverConfig::default(),
                ReceiverConfigError::NothingToListen,
            ),
            (
                ReceiverConfig {
                    bind: Some("127.0.0.1:0".parse().unwrap()),
                    ..ReceiverConfig::subscribe(v6)
                },
                ReceiverConfigError::SubscribeFamily {
                    server: v6,
                    bind: "127.0.0.1:0".parse().unwrap(),
                },
            ),
            (
                ReceiverConfig::multicast(
                    "127.0.0.1:5000".parse().unwrap(),
                    Ipv4Addr::LOCALHOST.into(),
                ),
                ReceiverConfigError::GroupNotMulticast("127.0.0.1:5000".parse().unwrap()),
            ),
            (
                ReceiverConfig::multicast(group, Ipv6Addr::LOCALHOST.into()),
                ReceiverConfigError::InterfaceFamily {
                    interface: Ipv6Addr::LOCALHOST.into(),
                    group,
                },
            ),
            (
                ReceiverConfig {
                    realtime: Some(RealtimeConfig::fifo(100)),
                    ..ReceiverConfig::unicast("127.0.0.1:0".parse().unwrap())
                },
                ReceiverConfigError::Realtime(RealtimeError::BadPriority(100)),
            ),
        ];
        for (config, want) in cases {
            assert_eq!(config.validate(), Err(want.clone()));
            let started = Receiver::start(config).err().expect("refused");
            assert!(matches!(started, ReceiverError::Config(ref e) if *e == want));
            assert_eq!(started.to_string(), want.to_string());
        }
        assert_eq!(ReceiverConfig::subscribe(v6).validate(), Ok(()));
        assert_eq!(
            ReceiverConfig {
                realtime: Some(RealtimeConfig::default()),
                ..ReceiverConfig::subscribe(v6)
            }
            .validate(),
            Ok(())
        );
        assert_eq!(
            ReceiverConfig::multicast(group, Ipv4Addr::LOCALHOST.into()).validate(),
            Ok(())
        );
    }
}
