//! The broadcaster runtime: one UDP socket and one thread that sends the
//! [`sim`](crate::core::sim) world's snapshots on the [`schedule`](crate::core::schedule)'s
//! deadlines to every destination, the multicast group, the subnet
//! broadcast addresses and every subscribed receiver. This is the thin
//! layer that owns the clock, the socket and the thread; what to send and
//! when is decided by the sans-IO modules: [`schedule`](crate::core::schedule)
//! says which tick is due, [`sender`](crate::core::sender) numbers, splits,
//! seals and reports it (one sequence, exact counts, parts within the
//! budget: its guarantees are this stream's), and
//! [`subscription`](crate::core::subscription) answers the receivers that
//! subscribe.
//!
//! # Guarantees
//!
//! * **One datagram, every target.** Each datagram the sender hands out is
//!   sent to every fixed target and every subscriber before the next is
//!   encoded, so each receiver sees the same numbers, and each part carries
//!   the wall-clock time ([`clock::now_ns`]) it was encoded at.
//!   `packets_sent` counts sequence numbers (the sender's count),
//!   `datagrams_sent` the sends the OS accepted.
//! * **Absolute deadlines.** Tick `k` is due at `t0 + deadline(k)` of the
//!   schedule (no drift), and its parts carry `scheduled_ns = wall0 +
//!   deadline(k)`, where `wall0` is [`clock::now_ns`] read next to `t0`. A
//!   tick whose slot has passed is skipped and counted, never sent in a burst.
//! * **Reports on the monotonic clock.** After each tick the sender is told
//!   the time since `t0`, and sends a report when a whole
//!   `report_interval` has passed.
//! * **A run of `d` sends `ceil(d × rate)` ticks** (ticks `0..n` with
//!   `deadline < d`), fewer only by the ticks skipped, then says goodbye.
//! * **Send errors are counted, never fatal.** The first error of each kind
//!   is kept as text for the CLI to print.
//! * **No allocation per tick.** Positions, the sender's copy of them, the
//!   datagram buffer and the lateness samples awaiting publication are
//!   reused buffers; the figures are published with `try_lock`, so a reader
//!   never stalls the thread.
//! * **Subscriptions do not disturb the ticks.** The thread reads its socket
//!   without blocking once per tick (right after sending it), and while it sleeps before a
//!   deadline it waits on the socket itself (`ppoll`, nanosecond timeout),
//!   so a request is answered at once; the last stretch before a deadline
//!   (the learned [`WakeMargin`]) is still spun, not read. At most
//!   [`SERVE_BATCH`] datagrams are handled between two looks at the clock,
//!   so a flood of requests delays no tick by more than one batch.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6, UdpSocket};
use std::panic;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, TryLockError};
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use socket2::{Domain, Protocol, Socket, Type};

use crate::core::histogram::{self, LatencySummary, LATENCY_MAX_NS};
use crate::core::schedule::{Action, Schedule, WakeMargin};
use crate::core::sender::{self, Sender, SenderConfig, SenderCounts};
use crate::core::sim::SimWorld;
use crate::core::subscription::{
    open_control, seal_control, SubscriptionConfig, SubscriptionConfigError, SubscriptionCounts,
    Subscriptions, DEFAULT_COOKIE_PERIOD, DEFAULT_LEASE, DEFAULT_MAX_SUBSCRIBERS, MAX_CONTROL_LEN,
    MAX_SEALED_CONTROL_LEN,
};
use crate::runtime::clock;
use crate::runtime::net;
use crate::wire;
use crate::wire::auth::{self, Key};

/// Highest tick rate accepted, in hertz.
pub const MAX_RATE_HZ: f64 = 10_000.0;
/// Smallest payload budget: a snapshot part holding one entity.
pub const MIN_PAYLOAD_BUDGET: usize = wire::SNAPSHOT_FIXED_LEN + wire::ENTITY_LEN;
/// Largest payload budget: the largest UDP payload.
pub const MAX_PAYLOAD_BUDGET: usize = wire::MAX_DATAGRAM;
pub use crate::core::sender::GOODBYE_COPIES;
/// Name of the broadcasting thread.
pub const THREAD_NAME: &str = "tickcast-broadcast";

/// Longest the thread sleeps without looking at the stop flag.
const STOP_CHECK: Duration = Duration::from_millis(5);
/// Lateness samples kept while a reader holds the figures' lock; when full,
/// the thread waits for the lock rather than allocating.
const PENDING_SAMPLES: usize = 1024;
/// Most datagrams read from the socket between two looks at the clock.
pub const SERVE_BATCH: usize = 64;

/// What to broadcast, where and how fast. Build it with `..Default::default()`
/// and check it with [`BroadcastConfig::validate`] (which
/// [`Broadcaster::start`] also does).
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
    /// Entities in the simulated world (default 100).
    pub entities: u32,
    /// Ticks per second, in (0, 10000], taken to the nearest µHz (default 60).
    pub rate_hz: f64,
    /// How long to run; `None` runs until stopped (default `None`).
    pub duration: Option<Duration>,
    /// Seed of the simulated world (default 1).
    pub seed: u64,
    /// Largest snapshot datagram, in bytes (default [`wire::DEFAULT_PAYLOAD_BUDGET`]).
    pub payload_budget: usize,
    /// How often a sender report is sent (default 1 s; must not be zero).
    pub report_interval: Duration,
    /// Least time to busy-spin before each deadline instead of sleeping
    /// (default 50 µs). The sender adds what it measures its sleeps
    /// overshooting by (see [`WakeMargin`]), so ticks leave on time on hosts
    /// whose timers wake late; zero with a quiet host only sleeps.
    pub spin: Duration,
    /// Session id; `None` picks a random one.
    pub session: Option<u64>,
    /// Sequence number of the first packet; `None` picks a random one, like RTP.
    pub first_seq: Option<u32>,
    /// Pre-shared key: with one, every stream datagram is sealed
    /// ([`crate::wire::auth::seal_into`]); the tag's [`crate::wire::auth::TAG_LEN`]
    /// bytes come out of `payload_budget`, so sealed datagrams still fit it.
    pub key: Option<Key>,
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
            rate_hz: 60.0,
            duration: None,
            seed: 1,
            payload_budget: wire::DEFAULT_PAYLOAD_BUDGET,
            report_interval: Duration::from_secs(1),
            spin: Duration::from_micros(50),
            session: None,
            first_seq: None,
            key: None,
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
            if self.multicast_ttl > 255 {
                return Err(ConfigError::BadTtl(self.multicast_ttl));
            }
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
    fn targets(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.destinations
            .iter()
            .copied()
            .chain(self.group)
            .chain(self.broadcast.iter().copied())
    }

    /// What the [`Sender`] is given: this session, its first number, the
    /// budget, the report interval and the key.
    fn sender_config(&self, session: u64, first_seq: u32) -> SenderConfig {
        SenderConfig {
            session,
            first_seq,
            payload_budget: self.payload_budget,
            report_interval: self.report_interval,
            key: self.key.clone(),
        }
    }

    fn subscription_config(&self, session: u64) -> SubscriptionConfig {
        SubscriptionConfig {
            session,
            max_subscribers: self.max_subscribers,
            lease: self.lease,
            cookie_period: self.cookie_period,
        }
    }
}

/// Why a broadcaster could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BroadcastError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    // The OS error is in each message, so it is not also a `source` (a
    // printer of the error chain would say it twice).
    /// The socket could not be created.
    #[error("cannot create a UDP socket for {addr}: {error}")]
    Socket {
        /// The address it was for.
        addr: SocketAddr,
        /// The OS error.
        error: io::Error,
    },
    /// The local address could not be bound (in use, not available, …).
    #[error("cannot bind {addr}: {error}")]
    Bind {
        /// The address that could not be bound.
        addr: SocketAddr,
        /// The OS error.
        error: io::Error,
    },
    /// A multicast socket option was refused, or the interface is not found.
    #[error("cannot set up sending to multicast group {group}: {error}")]
    Multicast {
        /// The group.
        group: SocketAddr,
        /// The OS error.
        error: io::Error,
    },
    /// SO_BROADCAST was refused.
    #[error("cannot set up sending to broadcast address {addr}: {error}")]
    Broadcast {
        /// The first broadcast address.
        addr: SocketAddr,
        /// The OS error.
        error: io::Error,
    },
    /// The thread could not be spawned.
    #[error("cannot start the broadcast thread: {0}")]
    Spawn(#[source] io::Error),
}

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
    /// Sends the OS refused. Never fatal.
    pub send_errors: u64,
    /// The most recent send error of a kind not seen before, as text.
    pub last_error: Option<String>,
    /// How late each sent tick went out: actual start − deadline, in ns.
    pub lateness: Histogram<u64>,
    /// Receivers subscribed now.
    pub subscribers: usize,
    /// What the subscription table has done (all zero when subscriptions are off).
    pub subscriptions: SubscriptionCounts,
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
            lateness: histogram::latency_histogram(),
            subscribers: 0,
            subscriptions: SubscriptionCounts::default(),
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
        }
    }
}

/// [`BroadcastFigures`] flattened for JSON and tables; field meanings as there.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct BroadcastSummary {
    pub session: u64,
    pub ticks_sent: u64,
    pub ticks_skipped: u64,
    pub packets_sent: u64,
    pub datagrams_sent: u64,
    pub bytes_sent: u64,
    pub send_errors: u64,
    pub last_error: Option<String>,
    /// Tick lateness percentiles, in µs.
    pub lateness_us: LatencySummary,
    /// Receivers subscribed at the time of the figures.
    pub subscribers: usize,
    /// Valid subscribes received (each answered with a challenge).
    pub subscribe_requests: u64,
    pub challenges_sent: u64,
    /// Subscriptions added.
    pub accepted: u64,
    /// Heartbeats that renewed a subscription.
    pub renewed: u64,
    pub refused_full: u64,
    /// Confirms and unsubscribes with a wrong cookie (never answered).
    pub bad_cookie: u64,
    /// With a key: datagrams to this socket that failed authentication.
    pub auth_failed: u64,
    /// Subscriptions whose lease ran out.
    pub expired: u64,
    pub unsubscribed: u64,
    pub pongs: u64,
}

/// Stops a running broadcaster from any thread (a Ctrl-C handler, say),
/// while another waits on [`Broadcaster::wait`].
#[derive(Clone, Debug)]
pub struct StopHandle {
    flag: Arc<AtomicBool>,
    thread: Thread,
}

impl StopHandle {
    /// Asks the broadcast thread to send its goodbye and finish. Returns at
    /// once; idempotent.
    pub fn stop(&self) {
        self.flag.store(true, Ordering::Release);
        self.thread.unpark();
    }
}

/// A running broadcast: one socket, one thread named [`THREAD_NAME`].
/// Dropping it stops the broadcast, like [`Broadcaster::stop`].
#[derive(Debug)]
pub struct Broadcaster {
    session: u64,
    local_addr: SocketAddr,
    shared: Arc<Mutex<BroadcastFigures>>,
    stopper: StopHandle,
    thread: Option<JoinHandle<()>>,
}

impl Broadcaster {
    /// Validates `config`, opens and binds the socket, and starts the thread.
    pub fn start(config: BroadcastConfig) -> Result<Broadcaster, BroadcastError> {
        config.validate()?;
        let addr = config.bind_addr();
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
            .map_err(|error| BroadcastError::Socket { addr, error })?;
        if let Some(group) = config.group {
            set_multicast(&socket, group, &config)
                .map_err(|error| BroadcastError::Multicast { group, error })?;
        }
        if let Some(&first) = config.broadcast.first() {
            socket
                .set_broadcast(true)
                .map_err(|error| BroadcastError::Broadcast { addr: first, error })?;
        }
        socket
            .bind(&addr.into())
            .map_err(|error| BroadcastError::Bind { addr, error })?;
        let socket = UdpSocket::from(socket);
        let local_addr = socket
            .local_addr()
            .map_err(|error| BroadcastError::Bind { addr, error })?;

        let session = config.session.unwrap_or_else(rand::random);
        let first_seq = config.first_seq.unwrap_or_else(rand::random);
        let subscriptions = (config.max_subscribers > 0).then(|| {
            // A fresh secret each start: a restarted broadcaster's cookies
            // differ, and its predecessor's are rejected.
            Subscriptions::new(rand::random(), config.subscription_config(session))
                .expect("validated subscription config")
        });
        let shared = Arc::new(Mutex::new(BroadcastFigures {
            session,
            ..BroadcastFigures::default()
        }));
        let flag = Arc::new(AtomicBool::new(false));
        // A link-local IPv6 group is sent to with the interface's scope.
        let mut targets: Vec<SocketAddr> = config.targets().collect();
        if let (Some(SocketAddr::V6(g)), IpAddr::V6(_)) = (config.group, config.interface) {
            if g.scope_id() == 0 {
                let index = net::interface_index(config.interface).map_err(|e| {
                    BroadcastError::Multicast {
                        group: g.into(),
                        error: io::Error::other(e),
                    }
                })?;
                let scoped = SocketAddrV6::new(*g.ip(), g.port(), g.flowinfo(), index);
                for t in targets.iter_mut().filter(|t| **t == SocketAddr::V6(g)) {
                    *t = scoped.into();
                }
            }
        }
        let endpoints = Endpoints {
            socket,
            targets,
            subs: subscriptions,
        };
        let runner = Runner::new(&config, endpoints, session, first_seq, &shared, &flag);
        let thread = thread::Builder::new()
            .name(THREAD_NAME.into())
            .spawn(move || runner.run())
            .map_err(BroadcastError::Spawn)?;
        Ok(Broadcaster {
            session,
            local_addr,
            shared,
            stopper: StopHandle {
                flag,
                thread: thread.thread().clone(),
            },
            thread: Some(thread),
        })
    }

    /// The session id of this broadcast.
    pub fn session(&self) -> u64 {
        self.session
    }

    /// The local address the socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The figures so far (published by the thread after every tick).
    pub fn figures(&self) -> BroadcastFigures {
        lock(&self.shared).clone()
    }

    /// Whether the thread has finished (its duration ran out, or it was stopped).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// A handle that stops this broadcaster from elsewhere.
    pub fn stop_handle(&self) -> StopHandle {
        self.stopper.clone()
    }

    /// Stops now: the thread sends the goodbye and exits. Returns the final figures.
    pub fn stop(mut self) -> BroadcastFigures {
        self.stopper.stop();
        self.join()
    }

    /// Waits until the broadcast ends on its own and returns the final
    /// figures. This needs a `duration`: without one it returns only once a
    /// [`StopHandle`] stops the broadcast.
    pub fn wait(mut self) -> BroadcastFigures {
        self.join()
    }

    fn join(&mut self) -> BroadcastFigures {
        if let Some(thread) = self.thread.take() {
            if let Err(panicked) = thread.join() {
                panic::resume_unwind(panicked);
            }
        }
        lock(&self.shared).clone()
    }
}

impl Drop for Broadcaster {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.stopper.stop();
            // A panic of the thread has nowhere to go from a drop.
            let _ = thread.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The figures are plain counters, valid whatever a panicking reader left.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn set_multicast(socket: &Socket, group: SocketAddr, config: &BroadcastConfig) -> io::Result<()> {
    match (group.ip(), config.interface) {
        (IpAddr::V4(_), IpAddr::V4(interface)) => {
            socket.set_multicast_if_v4(&interface)?;
            socket.set_multicast_ttl_v4(config.multicast_ttl)?;
            socket.set_multicast_loop_v4(config.multicast_loop)
        }
        (IpAddr::V6(_), IpAddr::V6(_)) => {
            let index = net::interface_index(config.interface).map_err(io::Error::other)?;
            socket.set_multicast_if_v6(index)?;
            socket.set_multicast_hops_v6(config.multicast_ttl)?;
            socket.set_multicast_loop_v6(config.multicast_loop)
        }
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the group and the interface address are of different IP families",
        )),
    }
}

/// What the OS did with the datagrams, counted here (the packets are
/// counted by the [`Sender`]); published to the shared figures after each tick.
#[derive(Clone, Copy, Debug, Default)]
struct IoCounts {
    datagrams_sent: u64,
    bytes_sent: u64,
    send_errors: u64,
}

/// The sending half of the thread: sends each datagram to every target,
/// counts what the OS did with it, and serves subscriptions.
struct Output {
    socket: UdpSocket,
    targets: Vec<SocketAddr>,
    /// The subscription table; `None` when subscriptions are off.
    subs: Option<Subscriptions>,
    /// Receive buffers for requests.
    rx_buf: Vec<u8>,
    rx_cmsg: Vec<u8>,
    counts: IoCounts,
    errors_seen: Vec<io::ErrorKind>,
    pending_error: Option<String>,
    pending_late: Vec<u64>,
    shared: Arc<Mutex<BroadcastFigures>>,
    /// Opens requests and seals replies when set (the stream is sealed by the [`Sender`]).
    key: Option<Key>,
}

impl Output {
    /// Sends `datagram` to every target: the fixed ones, then every subscriber.
    fn send(&mut self, datagram: &[u8]) {
        let subscribers = self.subs.iter().flat_map(Subscriptions::destinations);
        for target in self.targets.iter().copied().chain(subscribers) {
            match self.socket.send_to(datagram, target) {
                Ok(n) => {
                    self.counts.datagrams_sent += 1;
                    self.counts.bytes_sent += n as u64;
                }
                Err(e) => {
                    self.counts.send_errors += 1;
                    if !self.errors_seen.contains(&e.kind()) {
                        self.errors_seen.push(e.kind());
                        self.pending_error = Some(format!("sending to {target}: {e}"));
                    }
                }
            }
        }
    }

    /// Reads up to [`SERVE_BATCH`] datagrams waiting on the socket, without
    /// blocking, and sends the subscription table's replies; then expires
    /// what has run out by `now_ns`. Returns true if the batch filled (more
    /// may be waiting).
    fn serve(&mut self, now_ns: u64) -> bool {
        let Some(subs) = self.subs.as_mut() else {
            return false;
        };
        let mut filled = true;
        for _ in 0..SERVE_BATCH {
            match net::recv_from_counting_drops(&self.socket, &mut self.rx_buf, &mut self.rx_cmsg) {
                Ok(r) => {
                    let Some(from) = r.from else { continue };
                    let mut opened = [0u8; MAX_CONTROL_LEN];
                    let request = match &self.key {
                        // With a key, what does not open is dropped unanswered.
                        Some(key) => match open_control(key, &self.rx_buf[..r.len], &mut opened) {
                            Some(d) => d,
                            None => {
                                subs.count_auth_failed();
                                continue;
                            }
                        },
                        None => &self.rx_buf[..r.len],
                    };
                    if let Some(reply) = subs.handle(now_ns, from, request) {
                        // A lost reply is the requester's to retry.
                        let mut sealed = [0u8; MAX_SEALED_CONTROL_LEN];
                        let bytes = match &self.key {
                            Some(key) => seal_control(key, &reply, &mut sealed),
                            None => reply.bytes(),
                        };
                        let _ = self.socket.send_to(bytes, reply.destination);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // An ICMP error for an earlier send, not a datagram.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
                Err(_) => {
                    filled = false;
                    break;
                }
            }
        }
        subs.poll_expired(now_ns);
        filled
    }

    /// Publishes the counters and pending samples. Without `force` it gives
    /// up if a reader holds the lock, unless the pending samples are full.
    fn publish(&mut self, sent: SenderCounts, force: bool) {
        let mut figures = match self.shared.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock)
                if !force && self.pending_late.len() < PENDING_SAMPLES =>
            {
                return
            }
            Err(TryLockError::WouldBlock) => lock(&self.shared),
        };
        let c = self.counts;
        figures.ticks_sent = sent.ticks_sent;
        figures.ticks_skipped = sent.ticks_skipped;
        figures.packets_sent = sent.packets_sent;
        figures.datagrams_sent = c.datagrams_sent;
        figures.bytes_sent = c.bytes_sent;
        figures.send_errors = c.send_errors;
        if let Some(e) = self.pending_error.take() {
            figures.last_error = Some(e);
        }
        if let Some(subs) = &self.subs {
            figures.subscribers = subs.len();
            figures.subscriptions = subs.counts();
        }
        for ns in self.pending_late.drain(..) {
            figures.lateness.saturating_record(ns);
        }
    }
}

/// Everything the broadcast thread owns.
struct Runner {
    schedule: Schedule,
    /// Ticks to run: the ticks due within the duration.
    limit: Option<u64>,
    rate_hz: f64,
    wake: WakeMargin,
    world: SimWorld,
    /// What goes on the wire: numbers, parts, seals, reports, the goodbye.
    sender: Sender,
    /// The datagram being sent (cleared and reused for each).
    buf: Vec<u8>,
    out: Output,
    stop: Arc<AtomicBool>,
}

/// Where the thread sends from and to.
struct Endpoints {
    socket: UdpSocket,
    /// The fixed targets (destinations, group, broadcast addresses).
    targets: Vec<SocketAddr>,
    /// The subscription table; `None` when subscriptions are off.
    subs: Option<Subscriptions>,
}

impl Runner {
    fn new(
        config: &BroadcastConfig,
        endpoints: Endpoints,
        session: u64,
        first_seq: u32,
        shared: &Arc<Mutex<BroadcastFigures>>,
        stop: &Arc<AtomicBool>,
    ) -> Runner {
        let Endpoints {
            socket,
            targets,
            subs,
        } = endpoints;
        let rx_len = if subs.is_some() {
            wire::MAX_DATAGRAM
        } else {
            0
        };
        let schedule = Schedule::from_rate_hz(config.rate_hz).expect("validated rate");
        let sender = Sender::new(config.sender_config(session, first_seq))
            .expect("a validated config makes a valid sender");
        Runner {
            limit: config.duration.map(|d| schedule.ticks_within(d)),
            schedule,
            rate_hz: config.rate_hz,
            wake: WakeMargin::new(config.spin),
            world: SimWorld::new(config.entities, config.seed),
            buf: Vec::with_capacity(sender.max_datagram_len()),
            sender,
            out: Output {
                socket,
                targets,
                rx_buf: vec![0; rx_len],
                rx_cmsg: Vec::new(),
                subs,
                counts: IoCounts::default(),
                errors_seen: Vec::new(),
                pending_error: None,
                pending_late: Vec::with_capacity(PENDING_SAMPLES),
                shared: Arc::clone(shared),
                key: config.key.clone(),
            },
            stop: Arc::clone(stop),
        }
    }

    fn run(mut self) {
        // Linux rounds a sleeping thread's wake-up up by its timer slack
        // (50 µs by default); this thread wants its deadlines, not batching.
        #[cfg(target_os = "linux")]
        let _ = nix::sys::prctl::set_timerslack(1);
        // Deadlines are kept on the monotonic clock from t0 and stamped in
        // the wall clock from wall0; the pair is read as one (see paired_now).
        let (t0, wall0) = clock::paired_now();
        loop {
            if self.stop.load(Ordering::Acquire) {
                break;
            }
            if self.limit.is_some_and(|n| self.schedule.next_tick() >= n) {
                break;
            }
            match self.schedule.poll(t0.elapsed()) {
                Action::Wait { until } => self.wait_until(t0, wall0, until),
                Action::Send {
                    tick,
                    late,
                    skipped,
                } => {
                    if let Some(n) = self.limit.filter(|&n| tick >= n) {
                        // Only the ticks within the duration count as skipped.
                        self.sender.skip(n - (tick - skipped));
                        break;
                    }
                    self.sender.skip(skipped);
                    let deadline = u64::try_from(self.schedule.deadline(tick).as_nanos());
                    let scheduled_ns = wall0.saturating_add(deadline.unwrap_or(u64::MAX));
                    let entities = self.world.positions(tick, self.rate_hz);
                    self.sender
                        .push_tick(tick, scheduled_ns, entities)
                        .expect("validated part count, bounded sim positions, the last tick sent");
                    self.send_queued();
                    let late_ns = u64::try_from(late.as_nanos()).unwrap_or(u64::MAX);
                    self.out.pending_late.push(late_ns.min(LATENCY_MAX_NS));
                    // A report is looked for once the tick is out.
                    self.sender.handle_timeout(t0.elapsed());
                    self.send_queued();
                    self.out.publish(self.sender.counts(), false);
                    // Once per tick, right after it: nothing stands between
                    // a deadline and its send.
                    self.out.serve(now_ns(wall0, t0));
                }
            }
        }
        self.sender.finish();
        self.send_queued();
        self.out.publish(self.sender.counts(), true);
    }

    /// Sends what the sender has queued, one datagram at a time, each
    /// stamped with the wall clock just before it is encoded.
    fn send_queued(&mut self) {
        loop {
            self.buf.clear();
            match self.sender.poll_transmit(clock::now_ns(), &mut self.buf) {
                Some(t) => self.out.send(&self.buf[t.range()]),
                None => break,
            }
        }
    }

    /// Sleeps until `until − spin`, then spins to `until`; returns early if
    /// stopped, looking at the stop flag at least every [`STOP_CHECK`]. With
    /// subscriptions on, it sleeps on the socket instead, and answers what
    /// arrives at once; only sleeps that ran their full time teach the
    /// [`WakeMargin`].
    fn wait_until(&mut self, t0: Instant, wall0: u64, until: Duration) {
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            let now = t0.elapsed();
            if now >= until {
                return;
            }
            let left = until - now;
            let margin = self.wake.margin();
            if left > margin {
                let asked = (left - margin).min(STOP_CHECK);
                let before = t0.elapsed();
                if self.out.subs.is_none() {
                    thread::park_timeout(asked);
                } else if matches!(net::wait_readable(&self.out.socket, asked), Ok(true)) {
                    self.out.serve(now_ns(wall0, t0));
                    continue;
                }
                self.wake.record(asked, t0.elapsed() - before);
            } else {
                std::hint::spin_loop();
            }
        }
    }
}

/// The subscription table's clock: monotonic (so a wall-clock step cannot
/// expire every lease at once), anchored to the wall clock at start, so it
/// reads as the protocol's ns since the Unix epoch (as in a pong).
fn now_ns(wall0: u64, t0: Instant) -> u64 {
    let elapsed = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
    wall0.saturating_add(elapsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Body, Entity, Goodbye, Packet};
    use std::collections::BTreeMap;

    /// A receiving socket on 127.0.0.1 with room for a whole test run.
    fn receiver() -> UdpSocket {
        let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        socket2::SockRef::from(&sock)
            .set_recv_buffer_size(1 << 22)
            .unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        sock
    }

    /// Every packet received until the last goodbye copy (or a quiet timeout),
    /// with its entities and datagram length.
    fn collect(sock: &UdpSocket) -> Vec<(Packet, Vec<Entity>, usize)> {
        let mut buf = vec![0u8; wire::MAX_DATAGRAM];
        let mut got = Vec::new();
        let mut goodbyes = 0;
        for _ in 0..100_000 {
            let Ok(n) = sock.recv(&mut buf) else { break };
            let mut entities = Vec::new();
            let packet = wire::decode(&buf[..n], &mut entities).expect("every datagram decodes");
            if matches!(packet.body, Body::Goodbye(_)) {
                goodbyes += 1;
            }
            got.push((packet, entities, n));
            if goodbyes == GOODBYE_COPIES {
                break;
            }
        }
        got
    }

    fn config_to(sock: &UdpSocket) -> BroadcastConfig {
        BroadcastConfig {
            destinations: vec![sock.local_addr().unwrap()],
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            ..BroadcastConfig::default()
        }
    }

    #[test]
    fn sealed_datagrams_never_exceed_the_payload_budget() {
        let sock = receiver();
        let key = Key::from_bytes([3; auth::KEY_LEN]);
        let budget = wire::DEFAULT_PAYLOAD_BUDGET;
        let config = BroadcastConfig {
            entities: 500,
            rate_hz: 200.0,
            duration: Some(Duration::from_millis(50)),
            key: Some(key.clone()),
            ..config_to(&sock)
        };
        let per_part = wire::entities_per_part(budget - auth::TAG_LEN).unwrap();
        assert_eq!(config.packet_budget(), budget - auth::TAG_LEN);
        assert!(per_part < wire::entities_per_part(budget).unwrap());
        let b = Broadcaster::start(config).unwrap();
        let mut buf = vec![0u8; wire::MAX_DATAGRAM];
        let (mut goodbyes, mut full_parts, mut datagrams) = (0u32, 0, 0u64);
        while goodbyes < GOODBYE_COPIES {
            let n = sock.recv(&mut buf).expect("the run ends with its goodbye");
            datagrams += 1;
            assert!(
                n <= budget,
                "a {n}-byte datagram over a {budget}-byte budget"
            );
            let inner = auth::open(&key, &buf[..n]).expect("every datagram is sealed");
            let mut entities = Vec::new();
            let p = wire::decode_opened(inner, &mut entities).unwrap();
            assert!(entities.len() <= per_part);
            full_parts += usize::from(entities.len() == per_part);
            goodbyes += u32::from(matches!(p.body, Body::Goodbye(_)));
        }
        let f = b.wait();
        assert_eq!(datagrams, f.datagrams_sent);
        assert!(
            full_parts > 0,
            "no part was full: the bound was not exercised"
        );
    }

    #[test]
    fn a_run_is_one_contiguous_sequence_that_covers_every_entity_each_tick() {
        let sock = receiver();
        let first_seq = u32::MAX - 5;
        let config = BroadcastConfig {
            entities: 200,
            rate_hz: 60.0,
            duration: Some(Duration::from_millis(300)),
            seed: 9,
            report_interval: Duration::from_millis(100),
            first_seq: Some(first_seq),
            ..config_to(&sock)
        };
        let b = Broadcaster::start(config).unwrap();
        let session = b.session();
        let got = collect(&sock);
        let figures = b.wait();

        // One session, one sequence, +1 each packet, wrapping past u32::MAX.
        assert!(got.iter().all(|(p, _, _)| p.session == session));
        assert_eq!(got[0].0.seq, first_seq);
        for w in got.windows(2) {
            assert_eq!(w[1].0.seq, w[0].0.seq.wrapping_add(1));
        }
        // u32::MAX - 5 + 6 packets wraps to 0 (only 6 were sent if every tick was skipped).
        let wrapped = got.iter().any(|(p, _, _)| p.seq == 0);
        assert_eq!(wrapped, got.len() > 6);

        // Each tick: parts 0..3 in order, together ids 0..200 once each, at
        // the world's positions; scheduled times exactly a deadline apart.
        let per_part = wire::entities_per_part(wire::DEFAULT_PAYLOAD_BUDGET).unwrap();
        let parts = 200usize.div_ceil(per_part) as u16;
        let mut ticks: BTreeMap<u64, (Vec<u16>, Vec<Entity>, u64)> = BTreeMap::new();
        let mut last_tick = None;
        let mut world = SimWorld::new(200, 9);
        let schedule = Schedule::from_rate_hz(60.0).unwrap();
        for (i, (p, entities, _)) in got.iter().enumerate() {
            match p.body {
                Body::Snapshot(h) => {
                    assert_eq!(h.parts, parts);
                    assert!(last_tick <= Some(h.tick), "ticks go forward");
                    last_tick = Some(h.tick);
                    let t = ticks
                        .entry(h.tick)
                        .or_insert((vec![], vec![], h.scheduled_ns));
                    assert_eq!(t.2, h.scheduled_ns, "one scheduled time per tick");
                    t.0.push(h.part);
                    t.1.extend_from_slice(entities);
                }
                Body::SenderReport(r) => {
                    assert_eq!(r.packets_sent, i as u64 + 1, "a report counts itself");
                    assert_eq!(r.ticks_sent, ticks.len() as u64);
                }
                Body::Goodbye(_) => assert!(i >= got.len() - GOODBYE_COPIES as usize),
                other => panic!("not a stream packet: {other:?}"),
            }
        }
        let (&first, first_t) = ticks.iter().next().unwrap();
        for (&tick, (part_ids, entities, scheduled_ns)) in &ticks {
            assert_eq!(*part_ids, (0..parts).collect::<Vec<_>>(), "tick {tick}");
            assert_eq!(
                entities.as_slice(),
                world.positions(tick, 60.0),
                "tick {tick}"
            );
            let apart = schedule.deadline(tick) - schedule.deadline(first);
            assert_eq!(scheduled_ns - first_t.2, apart.as_nanos() as u64);
        }
        assert!(
            *ticks.keys().last().unwrap() < 18,
            "0.3 s at 60 Hz is ticks 0..18"
        );

        // The goodbye: three copies, naming the last one and the total.
        let goodbyes: Vec<Goodbye> = got[got.len() - 3..]
            .iter()
            .map(|(p, _, _)| match p.body {
                Body::Goodbye(g) => g,
                other => panic!("expected a goodbye, got {other:?}"),
            })
            .collect();
        let last = got.last().unwrap().0.seq;
        for g in &goodbyes {
            assert_eq!(g.final_seq, last);
            assert_eq!(g.packets_sent, got.len() as u64);
        }

        // The figures agree with what arrived (loopback loses nothing).
        assert_eq!(figures.session, session);
        assert_eq!(figures.ticks_sent, ticks.len() as u64);
        assert_eq!(figures.ticks_sent + figures.ticks_skipped, 18);
        assert_eq!(figures.packets_sent, got.len() as u64);
        assert_eq!(figures.datagrams_sent, got.len() as u64);
        let bytes: usize = got.iter().map(|(_, _, n)| n).sum();
        assert_eq!(figures.bytes_sent, bytes as u64);
        assert_eq!(figures.send_errors, 0);
        assert_eq!(figures.last_error, None);
        assert_eq!(figures.lateness.len(), figures.ticks_sent);
        assert_eq!(figures.summary().lateness_us.samples, figures.ticks_sent);
    }

    #[test]
    fn an_empty_world_still_sends_one_empty_part_per_tick() {
        let sock = receiver();
        let config = BroadcastConfig {
            entities: 0,
            duration: Some(Duration::from_millis(50)),
            ..config_to(&sock)
        };
        let b = Broadcaster::start(config).unwrap();
        let got = collect(&sock);
        let figures = b.wait();
        let snapshots: Vec<_> = got
            .iter()
            .filter_map(|(p, e, _)| match p.body {
                Body::Snapshot(h) => Some((h, e.len())),
                _ => None,
            })
            .collect();
        assert_eq!(snapshots.len() as u64, figures.ticks_sent);
        assert!(snapshots
            .iter()
            .all(|(h, n)| h.part == 0 && h.parts == 1 && *n == 0));
        assert_eq!(figures.ticks_sent + figures.ticks_skipped, 3);
    }

    #[test]
    fn stop_ends_an_unbounded_run_with_the_goodbye() {
        let sock = receiver();
        let config = BroadcastConfig {
            entities: 10,
            spin: Duration::ZERO,
            ..config_to(&sock)
        };
        let b = Broadcaster::start(config).unwrap();
        thread::sleep(Duration::from_millis(50));
        assert!(!b.is_finished());
        let stopper = b.stop_handle();
        stopper.stop();
        let got = collect(&sock);
        let figures = b.wait();
        let (last, _, _) = got.last().unwrap();
        match last.body {
            Body::Goodbye(g) => {
                assert_eq!(g.final_seq, last.seq);
                assert_eq!(g.packets_sent, got.len() as u64);
            }
            other => panic!("expected a goodbye, got {other:?}"),
        }
        assert_eq!(figures.packets_sent, got.len() as u64);
    }

    #[test]
    fn dropping_the_broadcaster_stops_it() {
        let sock = receiver();
        let b = Broadcaster::start(BroadcastConfig {
            entities: 1,
            ..config_to(&sock)
        })
        .unwrap();
        drop(b);
        let got = collect(&sock);
        assert!(matches!(got.last().unwrap().0.body, Body::Goodbye(_)));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_failing_target_is_counted_and_the_others_still_get_everything() {
        // Linux refuses to send to port 0 with EINVAL before anything leaves.
        let sock = receiver();
        let mut config = BroadcastConfig {
            entities: 5,
            duration: Some(Duration::from_millis(50)),
            ..config_to(&sock)
        };
        config
            .destinations
            .insert(0, SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
        let b = Broadcaster::start(config).unwrap();
        let got = collect(&sock);
        let figures = b.wait();
        assert_eq!(figures.send_errors, figures.packets_sent);
        assert_eq!(figures.datagrams_sent, figures.packets_sent);
        assert_eq!(figures.packets_sent, got.len() as u64);
        let message = figures.last_error.expect("the error is kept");
        assert!(message.starts_with("sending to 127.0.0.1:0: "), "{message}");
    }

    #[test]
    fn broadcast_destinations_get_every_packet_with_so_broadcast_set() {
        // The tests send to 127.0.0.1 only: a broadcast "destination" here is
        // a loopback socket, which checks the SO_BROADCAST path and delivery;
        // real subnet broadcast is exercised across network namespaces.
        let sock = receiver();
        let config = BroadcastConfig {
            broadcast: vec![sock.local_addr().unwrap()],
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            max_subscribers: 0,
            entities: 5,
            duration: Some(Duration::from_millis(100)),
            ..BroadcastConfig::default()
        };
        assert_eq!(config.validate(), Ok(()));
        let b = Broadcaster::start(config).unwrap();
        let got = collect(&sock);
        let figures = b.wait();
        assert_eq!(figures.packets_sent, got.len() as u64);
        assert_eq!(figures.send_errors, 0);
        assert_eq!(figures.subscribers, 0);
    }

    #[test]
    fn an_address_in_use_is_a_bind_error_naming_it() {
        let taken = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = taken.local_addr().unwrap();
        let err = Broadcaster::start(BroadcastConfig {
            destinations: vec![addr],
            bind: addr,
            ..BroadcastConfig::default()
        })
        .unwrap_err();
        assert!(matches!(&err, BroadcastError::Bind { addr: a, .. } if *a == addr));
        assert!(
            err.to_string()
                .starts_with(&format!("cannot bind {addr}: ")),
            "{err}"
        );
    }

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
