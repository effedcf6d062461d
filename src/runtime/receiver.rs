//! The receiver runtime: one dedicated thread on mio that drains its
//! socket(s) on every wake, up to [`BATCH`] datagrams per system call
//! (`recvmmsg`, [`crate::runtime::mmsg`]), and hands each datagram with its
//! arrival time to [`Ingest`], which applies it to the shared [`World`] at
//! once.
//!
//! The arrival time is the kernel's stamp (`SO_TIMESTAMPNS`, CLOCK_REALTIME,
//! the protocol's clock): when the datagram entered this host's receive
//! path, before it waited in the socket's queue for the thread to wake and
//! take it. So one-way latency measures the network path (the sender's
//! stamp to this host's kernel), not how quickly this thread woke; that
//! wait is measured apart (see `Activity`). Where the kernel gives no stamp
//! (not Linux, or the option refused), the thread reads the clock once per
//! batch, just after the receive call returns, and uses that for every
//! datagram of the batch: each is then late by as long as it waited in the
//! queue (the thread's wake-up, plus the batch's other datagrams before it).
//!
//! Other threads read the world without waiting on the receiver (see
//! [`crate::core::world`] for the primitive) and the figures through
//! [`Receiver::figures`], which takes no lock the receiver thread needs:
//! the thread keeps its ingest and figures to itself and publishes a copy
//! at most every [`PUBLISH_INTERVAL`] while datagrams come, and a last one
//! when it ends (the private `runtime::publish`). A copy is whole: its counters
//! agree with each other (`received + lost == expected`). Stop is a mio
//! `Waker`, so the thread sleeps in `poll` and still stops at once.
//!
//! The ingest owns the world's one [`WorldWriter`] and lives in the thread's
//! state; [`Receiver::world`] is a read handle, which is all a reader gets.
//!
//! With [`ReceiverConfig::subscribe`], the thread also runs a
//! [`Subscriber`]: the packets of the subscription kinds that arrive on the
//! unicast socket go to it as the ingest decoded them (opened and decoded
//! once, never again), its requests leave from that same socket (so the
//! address its cookie proves is the address the stream is sent to), `poll`
//! wakes for its timers (heartbeats, pings, retries), and a stop sends its
//! unsubscribe before the thread ends.
//!
//! With [`ReceiverConfig::from`], a datagram from any other source is
//! dropped before it is decoded and counted as `foreign`
//! ([`crate::core::source`]): the keyless defence against other hosts.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::core::feed::{self, Event, EventKind};
use crate::core::figures::Figures;
use crate::core::ingest::{Ingest, Outcome};
use crate::core::predict::{self, ArrivalPredictor, SpinJudge};
use crate::core::ratelimit::RateLimiter;
use crate::core::replay::DEFAULT_FRESHNESS;
use crate::core::schedule::WakeMargin;
use crate::core::silence::{likely_causes, Cause, Listening};
use crate::core::source::SourceFilter;
use crate::core::subscriber::{
    SubscribeFailure, Subscriber, SubscriberConfig, SubscriberCounts, SubscriptionState,
};
use crate::core::subscription::{seal_control, Transmit, MAX_SEALED_CONTROL_LEN};
use crate::core::world::{World, WorldWriter, DEFAULT_CAPACITY};
pub use crate::runtime::client::{ClientConfig, GameClient};
use crate::runtime::clock;
use crate::runtime::mmsg::{Meta, RecvBatch, BATCH};
use crate::runtime::net::{self, NetError};
use crate::runtime::publish::Published;
use crate::runtime::realtime::{self, RealtimeConfig, RealtimeError, ThreadSetup};
use crate::runtime::worker::PollThread;
use crate::wire::auth::Key;

const WAKER: Token = Token(usize::MAX);
/// The receiver thread's name (Linux shows its first 15 bytes).
pub const THREAD_NAME: &str = "tickcast-receive";
/// Least time [`ReceiveMode::Predict`] busy-polls before a predicted arrival.
const PREDICT_BASE_MARGIN: Duration = Duration::from_micros(50);
/// How long past a predicted arrival [`ReceiveMode::Predict`] keeps
/// busy-polling for it before it goes back to sleeping in `poll`.
const PREDICT_LATE_WINDOW: Duration = Duration::from_micros(500);
/// After a datagram, [`ReceiveMode::Predict`] keeps busy-polling until the
/// sockets were quiet this long: the rest of the tick's parts follow closely.
const PREDICT_QUIET_GAP: Duration = Duration::from_micros(100);
/// The most [`ReceiveMode::Predict`] spins around one tick.
const PREDICT_MAX_SPIN: Duration = Duration::from_millis(3);
/// Receive buffer requested per socket: a few ticks of a large world.
pub const DEFAULT_RECV_BUFFER: usize = 4 << 20;
/// While datagrams come, the receiver thread publishes its figures for
/// [`Receiver::figures`] at most this often (and when it ends).
pub const PUBLISH_INTERVAL: Duration = Duration::from_millis(4);
/// How soon the thread tries again when readers held both publication
/// slots (it never waits for them).
const PUBLISH_RETRY: Duration = Duration::from_micros(200);

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
    /// of [`Receiver::start`]. `None` (the default) leaves it an ordinary
    /// thread. See [`crate::runtime::realtime`].
    pub realtime: Option<RealtimeConfig>,
    /// Feed a game client ([`Receiver::take_client`]): a whole frame of the
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
    /// now and then ([`SpinJudge`]).
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
    /// [`Receiver::start`] also does); the first problem found is returned.
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
        if let Some(rt) = &self.realtime {
            rt.validate()?;
        }
        Ok(())
    }
}

/// Why a [`ReceiverConfig`] cannot run ([`ReceiverConfig::validate`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiverConfigError {
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

/// Why a receiver could not start.
#[derive(Debug, thiserror::Error)]
pub enum ReceiverError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ReceiverConfigError),
    /// A socket could not be set up.
    #[error(transparent)]
    Net(#[from] NetError),
    /// mio or thread setup failed.
    #[error("cannot start the receiver thread: {0}")]
    Io(#[from] io::Error),
    /// The thread could not take its real-time settings
    /// ([`ReceiverConfig::realtime`], [`ReceiverConfig::cpu`]); it ended
    /// without receiving anything.
    #[error("receiver thread: {0}")]
    Realtime(RealtimeError),
}

/// What the receiver thread keeps to itself (readers get published copies).
struct State {
    ingest: Ingest,
    subscriber: Option<Subscriber>,
    /// Whether the latest stream datagram's source is an address of this host.
    sender_local: Option<bool>,
}

impl State {
    fn figures(&self) -> Figures {
        let mut f = self.ingest.figures();
        if let Some(s) = &self.subscriber {
            f.rtt = s.rtt().clone();
            f.subscription = s.state();
        }
        f.sender_on_this_host = self.sender_local;
        f
    }
}

/// What the receiver thread did, counted from its start: what it asked of
/// the kernel per datagram, how its arrival times were taken, and how it
/// published its figures. Read with [`Receiver::activity`]; as fresh as
/// [`Receiver::figures`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Activity {
    /// Waits for the sockets to become readable (`epoll_wait` through mio,
    /// and `ppoll` where [`ReceiveMode::Predict`] sleeps to a precise time).
    pub waits: u64,
    /// Receive calls (`recvmmsg` of up to [`BATCH`] datagrams; `recvmsg`
    /// of one where there is no batch call), those that found nothing
    /// included.
    pub receives: u64,
    /// Subscription datagrams sent (`sendto`).
    pub sends: u64,
    /// Datagrams taken from the sockets.
    pub datagrams: u64,
    /// Of those, the ones the kernel stamped on arrival; the others took the
    /// time their batch was taken as their arrival time.
    pub kernel_stamped: u64,
    /// Copies of the figures published for readers.
    pub publications: u64,
    /// Publications put off because readers held both publication slots
    /// (each retried soon after; the thread never waited for a reader).
    pub publications_deferred: u64,
}

impl Activity {
    /// System calls made: waits, receives and sends (clock readings go
    /// through the vDSO and are not system calls).
    pub fn syscalls(&self) -> u64 {
        self.waits + self.receives + self.sends
    }

    /// [`Activity::syscalls`] per datagram taken; `None` before the first.
    pub fn syscalls_per_datagram(&self) -> Option<f64> {
        (self.datagrams > 0).then(|| self.syscalls() as f64 / self.datagrams as f64)
    }
}

/// A copy of what the receiver thread keeps, published for readers.
struct Snapshot {
    figures: Figures,
    subscriber: Option<SubscriberCounts>,
    activity: Activity,
}

impl Snapshot {
    fn of(state: &State, activity: Activity) -> Snapshot {
        Snapshot {
            figures: state.figures(),
            subscriber: state.subscriber.as_ref().map(Subscriber::counts),
            activity,
        }
    }
}

struct Shared {
    /// The receiver thread's latest copy of its figures.
    published: Published<Snapshot>,
    stop: AtomicBool,
}

/// A running receiver: its thread, its world and its figures.
pub struct Receiver {
    shared: Arc<Shared>,
    world: World,
    /// With [`ReceiverConfig::client`], until taken (in a mutex only so
    /// that a `Receiver` stays `Sync`; taken once).
    client: std::sync::Mutex<Option<GameClient>>,
    local_addrs: Vec<SocketAddr>,
    listening: Listening,
    thread: PollThread,
}

impl Receiver {
    /// Binds the socket(s) and starts the receiver thread (which, when
    /// subscribing, sends its first subscribe at once).
    pub fn start(config: ReceiverConfig) -> Result<Receiver, ReceiverError> {
        config.validate()?;
        let mut sockets = Vec::new();
        if let Some(addr) = config.bind_addr() {
            sockets.push(net::unicast_socket(addr, config.recv_buffer)?);
        }
        if let Some(group) = config.group {
            sockets.push(net::multicast_socket(
                group,
                config.interface,
                config.recv_buffer,
            )?);
        }
        if config.gro {
            // Where the kernel has no UDP_GRO, datagrams come one by one.
            sockets.iter().for_each(|s| _ = net::enable_gro(s));
        }
        let local_addrs: Vec<SocketAddr> = sockets
            .iter()
            .map(|s| s.local_addr())
            .collect::<Result<_, _>>()?;
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let mut sockets: Vec<UdpSocket> = sockets.into_iter().map(UdpSocket::from_std).collect();
        for (i, s) in sockets.iter_mut().enumerate() {
            poll.registry().register(s, Token(i), Interest::READABLE)?;
        }
        let subscriber = config.subscribe.map(|server| {
            let client_id = rand::random();
            let mut sub = SubscriberConfig::new(server, client_id);
            if !config.give_up_subscribing {
                sub.give_up_unanswered = None;
                sub.give_up_refusals = None;
            }
            Subscriber::new(sub, rand::random())
        });
        let listening = Listening {
            bind: config.bind_addr().map(|_| local_addrs[0]),
            group: config.group.map(|g| (g, config.interface)),
            keyed: config.key.is_some(),
            subscribe: config.subscribe,
        };
        let writer = WorldWriter::new(config.capacity);
        let world = writer.world().clone();
        let mut ingest =
            Ingest::with_key(writer, config.key.clone()).with_freshness(config.freshness);
        let client = match config.client {
            Some(client) => {
                let (w, r) = feed::feed(client.event_capacity);
                ingest = ingest.with_feed(w);
                Some(GameClient::new(r, client))
            }
            None => None,
        };
        let state = State {
            ingest,
            subscriber,
            sender_local: None,
        };
        let shared = Arc::new(Shared {
            published: Published::new(Snapshot::of(&state, Activity::default())),
            stop: AtomicBool::new(false),
        });
        // The thread takes its real-time settings itself, first, and says
        // how that went before start returns.
        let setup = ThreadSetup {
            realtime: config.realtime,
            cpu: config.cpu,
        };
        let (ready, started) = realtime::handshake();
        let mut thread = PollThread::spawn(THREAD_NAME, waker, {
            let shared = Arc::clone(&shared);
            let opts = RunOptions {
                mode: config.mode,
                key: config.key.clone(),
                from: config.from,
                log: config
                    .log_rejects
                    .then(|| RateLimiter::new(LOG_PER_SECOND, LOG_BURST)),
            };
            move || {
                if ready.apply(&setup) {
                    run(poll, sockets, state, &shared, opts)
                } else {
                    Ok(())
                }
            }
        })?;
        if let Err(e) = started.wait() {
            thread.stop(&shared.stop)?;
            return Err(ReceiverError::Realtime(e));
        }
        Ok(Receiver {
            shared,
            world,
            client: std::sync::Mutex::new(client),
            local_addrs,
            listening,
            thread,
        })
    }

    /// The first socket's local address (the unicast one when both are used).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addrs[0]
    }

    /// Every socket's local address.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// What this receiver listens to, for
    /// [`likely_causes`] of receiving
    /// nothing.
    pub fn listening(&self) -> &Listening {
        &self.listening
    }

    /// Why nothing may have been received, as far as this receiver can
    /// see; empty once a stream datagram was taken.
    pub fn silence_causes(&self) -> Vec<Cause> {
        likely_causes(&self.listening, &self.figures())
    }

    /// A read handle on the world the receiver thread writes; clone it to
    /// read from any thread (a clone is cheap and never blocks the receiver).
    pub fn world(&self) -> &World {
        &self.world
    }

    /// The game client's handle (frames, events, interpolation), once:
    /// `None` without [`ReceiverConfig::client`], or after the first call.
    /// Move it to the game's render or logic thread.
    pub fn take_client(&self) -> Option<GameClient> {
        let mut client = self.client.lock().unwrap_or_else(|p| p.into_inner());
        client.take()
    }

    /// The figures as the receiver thread last published them.
    ///
    /// While the thread runs they are at most [`PUBLISH_INTERVAL`] old, plus
    /// the time the thread takes to handle one batch of up to [`BATCH`]
    /// datagrams and however long this host leaves it unscheduled; once
    /// [`Receiver::stop`] has returned (or the thread has ended), they are
    /// exact. Every copy is whole: its counters agree with each other
    /// (`received + lost == expected`), and successive reads never go back.
    ///
    /// Reading never stalls the receiver thread: it keeps its figures to
    /// itself, and this takes only a lock on the published copy, held for
    /// the clone of an `Arc` (the figures are copied after it is released),
    /// which the thread never waits for (two slots, taken with `try_lock`:
    /// see the private module `runtime::publish`).
    pub fn figures(&self) -> Figures {
        self.shared.published.read().figures.clone()
    }

    /// What the subscription client has sent and received, when
    /// subscribing; as fresh as [`Receiver::figures`].
    pub fn subscriber_counts(&self) -> Option<SubscriberCounts> {
        self.shared.published.read().subscriber
    }

    /// What the receiver thread has done so far (system calls, datagrams,
    /// arrival stamps, publications); as fresh as [`Receiver::figures`].
    pub fn activity(&self) -> Activity {
        self.shared.published.read().activity
    }

    /// False once the thread has ended (stopped, or failed).
    pub fn is_running(&self) -> bool {
        self.thread.is_running()
    }

    /// Stops the thread (after it sends its unsubscribe, when subscribed),
    /// waits for it and returns the final figures, or the error that ended
    /// the thread early.
    pub fn stop(mut self) -> io::Result<Figures> {
        self.shutdown()?;
        Ok(self.figures())
    }

    fn shutdown(&mut self) -> io::Result<()> {
        self.thread.stop(&self.shared.stop)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// Sends what the subscriber has due from `socket`; returns how many
/// datagrams it sent, and whether the subscriber changed (sent something,
/// or moved to another state, as when it gives up). A failed send is left
/// to the subscriber's retries (it cannot tell a lost datagram from a
/// refused send, and needs not).
fn send_due(state: &mut State, socket: &UdpSocket, now_ns: u64, key: Option<&Key>) -> (u64, bool) {
    let Some(sub) = state.subscriber.as_mut() else {
        return (0, false);
    };
    // Bounded: a subscriber has at most a request and a ping due at once.
    let before = sub.state();
    let mut sent = 0;
    for _ in 0..8 {
        let Some(t) = sub.poll_transmit(now_ns) else {
            break;
        };
        send_control(socket, &t, key);
        sent += 1;
    }
    log_state_change(sub, before, &mut state.ingest);
    (sent, sent > 0 || sub.state() != before)
}

/// Logs (at info) where the subscription stands when it has moved on from
/// `before`, and tells a game client when it was accepted or failed.
fn log_state_change(sub: &Subscriber, before: SubscriptionState, ingest: &mut Ingest) {
    let now = sub.state();
    if now == before {
        return;
    }
    log::info!("subscription to {}: {}", sub.config().server, now);
    let (kind, id) = match now {
        SubscriptionState::Subscribed => (EventKind::Subscribed, 0),
        SubscriptionState::Refused(r) => (EventKind::SubscriptionFailed, u32::from(r)),
        SubscriptionState::Failed(SubscribeFailure::Refused(r)) => {
            (EventKind::SubscriptionFailed, u32::from(r))
        }
        SubscriptionState::Failed(SubscribeFailure::Unanswered) => {
            (EventKind::SubscriptionFailed, 0)
        }
        SubscriptionState::None | SubscriptionState::Subscribing => return,
    };
    ingest.push_event(Event {
        kind,
        id,
        tick: 0,
        session: 0,
    });
}

/// Sends a subscription datagram, sealed when there is a key.
fn send_control(socket: &UdpSocket, t: &Transmit, key: Option<&Key>) {
    let mut sealed = [0u8; MAX_SEALED_CONTROL_LEN];
    let bytes = match key {
        Some(key) => seal_control(key, t, &mut sealed),
        None => t.bytes(),
    };
    let _ = socket.send_to(bytes, t.destination);
}

/// How the receiver thread runs.
struct RunOptions {
    mode: ReceiveMode,
    key: Option<Key>,
    /// The one source accepted, if any.
    from: Option<SourceFilter>,
    /// The reject log's limiter, when rejects are logged.
    log: Option<RateLimiter>,
}

/// The receiver thread: serves until stopped or failed, then publishes its
/// final figures, whatever ended it.
fn run(
    poll: Poll,
    sockets: Vec<UdpSocket>,
    mut state: State,
    shared: &Shared,
    opts: RunOptions,
) -> io::Result<()> {
    for s in &sockets {
        // Without stamps, each batch is stamped with the time it was taken.
        net::enable_arrival_stamps(s);
    }
    let rx = Drain {
        from: opts.from,
        log: opts.log,
        drops: vec![0u64; sockets.len()],
        last_source: None,
        predictor: ArrivalPredictor::new(),
        activity: Activity::default(),
        publisher: Publisher::new(),
    };
    let mut rx = Receive {
        batch: RecvBatch::new(),
        rx,
    };
    let served = serve(
        poll, &sockets, &mut state, &mut rx, shared, opts.mode, opts.key,
    );
    rx.rx.publish_final(&state, shared);
    served
}

fn serve(
    mut poll: Poll,
    sockets: &[UdpSocket],
    state: &mut State,
    rx: &mut Receive,
    shared: &Shared,
    mode: ReceiveMode,
    key: Option<Key>,
) -> io::Result<()> {
    let key = key.as_ref();
    // Predict sleeps to a time, not to a datagram: it wants that time.
    if mode == ReceiveMode::Predict {
        clock::precise_wakeups();
    }
    let mut events = Events::with_capacity(64);
    // The subscriber's clock: monotonic, anchored to the wall clock at
    // start, so its times read as the protocol's ns but never step.
    let clock = clock::Anchor::paired();
    // The subscription, if any, lives on the unicast socket (the first).
    let sub_socket = &sockets[0];
    if let Some(sub) = state.subscriber.as_mut() {
        sub.start(clock.now_ns());
    }
    rx.rx.sent(send_due(state, sub_socket, clock.now_ns(), key));
    let mut wake = WakeMargin::new(PREDICT_BASE_MARGIN);
    let mut judge = SpinJudge::new();
    loop {
        let due = state.subscriber.as_ref().and_then(Subscriber::poll_timeout);
        let mut timeout = due.map(|t| Duration::from_nanos(t.saturating_sub(clock.now_ns())));
        // Wake to publish what came since the last publication, when due.
        if let Some(p) = rx.rx.publisher.due_in() {
            timeout = Some(timeout.map_or(p, |t| t.min(p)));
        }
        // In predict mode: when to stop sleeping, and until when to spin.
        let mut spin_until = None;
        match mode {
            ReceiveMode::Wait => {}
            ReceiveMode::BusyPoll => timeout = Some(Duration::ZERO),
            ReceiveMode::Predict => {
                let now = clock::now_ns();
                let next = rx
                    .rx
                    .predictor
                    .next_arrival(now)
                    .filter(|_| judge.spinning(now));
                if let Some(at) = next {
                    let margin = wake.margin().as_nanos() as u64;
                    let sleep = Duration::from_nanos(at.saturating_sub(margin).saturating_sub(now));
                    timeout = Some(timeout.map_or(sleep, |t| t.min(sleep)));
                    spin_until = Some(at + PREDICT_LATE_WINDOW.as_nanos() as u64);
                }
            }
        }
        let slept_from = Instant::now();
        // epoll_wait's timeout is in milliseconds, too coarse to wake just
        // before a predicted arrival; ppoll on the epoll descriptor itself
        // (readable when any registered socket or the waker is) has
        // nanoseconds.
        let precise = timeout.filter(|t| spin_until.is_some() && !t.is_zero());
        let polled = match precise {
            Some(t) => {
                rx.rx.activity.waits += 2;
                net::wait_readable(poll.registry(), t)
                    .and_then(|_| poll.poll(&mut events, Some(Duration::ZERO)))
            }
            None => {
                rx.rx.activity.waits += 1;
                poll.poll(&mut events, timeout)
            }
        };
        if let Err(e) = polled {
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        if shared.stop.load(Ordering::Acquire) {
            if let Some(t) = state.subscriber.as_mut().and_then(Subscriber::unsubscribe) {
                send_control(sub_socket, &t, key);
                rx.rx.sent((1, true));
            }
            return Ok(());
        }
        let mut got = 0;
        let tick_before = rx.rx.predictor.last_tick();
        for event in &events {
            if let Some(socket) = sockets.get(event.token().0) {
                got += rx.drain(event.token().0, socket, state, shared, &clock)?;
            }
        }
        if mode == ReceiveMode::BusyPoll {
            rx.drain_all(sockets, state, shared, &clock)?;
        }
        if let Some(until) = spin_until {
            // Learn how late this host wakes, from the timer and from a
            // datagram that came after the time asked for.
            if let Some(asked) = timeout {
                let slept = slept_from.elapsed();
                if predict::teaches_margin(asked, slept, got > 0) {
                    wake.record(asked, slept);
                }
            }
            // Woken by the timer before a predicted arrival, busy-poll
            // until it is due (and a while after); woken by a datagram,
            // the tick's burst of parts has begun. Either way go on
            // through the burst, until the sockets have been quiet a moment.
            let quiet = PREDICT_QUIET_GAP.as_nanos() as u64;
            let cap = clock::now_ns() + PREDICT_MAX_SPIN.as_nanos() as u64;
            let mut until = if got == 0 {
                until
            } else {
                clock::now_ns() + quiet
            };
            let tick_at_wake = rx.rx.predictor.last_tick();
            while clock::now_ns() < until.min(cap) && !shared.stop.load(Ordering::Relaxed) {
                if rx.drain_all(sockets, state, shared, &clock)? > 0 {
                    until = clock::now_ns() + quiet;
                }
                std::hint::spin_loop();
            }
            // Whether spinning pays: a tick whose first datagram the spin
            // caught is a hit, one whose first datagram woke the thread a miss.
            let woken_by_tick = tick_at_wake != tick_before;
            let caught = rx.rx.predictor.last_tick() != tick_at_wake;
            let judged = (woken_by_tick || caught)
                .then(|| judge.record(!woken_by_tick, clock::now_ns()))
                .flatten();
            if let Some(wait) = judged {
                log::debug!(
                    "predict: {} of the last {} ticks arrived outside the spin; waiting as wait does for {} s",
                    predict::SPIN_MISSES,
                    predict::SPIN_WINDOW,
                    wait / 1_000_000_000
                );
            }
        }
        rx.rx.sent(send_due(state, sub_socket, clock.now_ns(), key));
        rx.rx.publish_if_due(state, shared);
    }
}

/// When the receiver thread publishes its figures: see [`PUBLISH_INTERVAL`].
struct Publisher {
    /// The last attempt to publish.
    last: Instant,
    /// Something changed since the last publication.
    dirty: bool,
    /// The last attempt found both slots held by readers.
    deferred: bool,
}

impl Publisher {
    fn new() -> Publisher {
        Publisher {
            last: Instant::now(),
            dirty: true,
            deferred: false,
        }
    }

    /// How long the next publication should wait after the last attempt.
    fn interval(&self) -> Duration {
        if self.deferred {
            PUBLISH_RETRY
        } else {
            PUBLISH_INTERVAL
        }
    }

    /// How soon a publication is due; `None` when nothing changed.
    fn due_in(&self) -> Option<Duration> {
        self.dirty
            .then(|| self.interval().saturating_sub(self.last.elapsed()))
    }
}

/// The receive side of the thread: what is learned per datagram, and the
/// publication of the figures.
struct Drain {
    /// The one source accepted, if any.
    from: Option<SourceFilter>,
    /// Limits the reject log; `None` logs nothing.
    log: Option<RateLimiter>,
    /// Each socket's latest drop counter.
    drops: Vec<u64>,
    last_source: Option<IpAddr>,
    predictor: ArrivalPredictor,
    activity: Activity,
    publisher: Publisher,
}

/// The batch buffers beside the rest of [`Drain`], so a datagram can be
/// read from one while the other handles it.
struct Receive {
    batch: RecvBatch,
    rx: Drain,
}

impl Receive {
    /// Drains every socket once; returns how many datagrams were handled.
    fn drain_all(
        &mut self,
        sockets: &[UdpSocket],
        state: &mut State,
        shared: &Shared,
        clock: &clock::Anchor,
    ) -> io::Result<usize> {
        let mut handled = 0;
        for (i, socket) in sockets.iter().enumerate() {
            handled += self.drain(i, socket, state, shared, clock)?;
        }
        Ok(handled)
    }

    /// Receives and handles datagrams from socket `i`, a batch per call,
    /// until the kernel has no more; returns how many were handled.
    fn drain(
        &mut self,
        i: usize,
        socket: &UdpSocket,
        state: &mut State,
        shared: &Shared,
        clock: &clock::Anchor,
    ) -> io::Result<usize> {
        let mut handled = 0;
        // Only the subscription's socket sends, so only it can have a
        // pending error (an ICMP refusal) that cuts a batch short with
        // datagrams still queued behind it: drain it until the kernel says
        // it is empty. Elsewhere a short batch means just that.
        let sends = i == 0 && state.subscriber.is_some();
        loop {
            self.rx.activity.receives += 1;
            let n = match self.batch.recv(socket) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(handled),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // ICMP errors reported on the socket (e.g. refused) are
                // not datagrams; keep serving.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
                Err(e) => return Err(e),
            };
            // One clock reading per batch: the arrival time of any
            // datagram the kernel did not stamp.
            let taken = clock::now_ns();
            for k in 0..n {
                for (datagram, meta) in self.batch.datagrams(k) {
                    self.rx.take(i, datagram, &meta, taken, state, clock);
                    handled += 1;
                }
            }
            self.rx.publisher.dirty = true;
            // A long drain still publishes on time.
            self.rx.publish_if_due(state, shared);
            if n < BATCH && !sends {
                return Ok(handled);
            }
        }
    }
}

impl Drain {
    /// Counts subscription datagrams sent (`n`), and marks the figures for
    /// publication when the subscriber `changed`: its state is in them.
    fn sent(&mut self, (n, changed): (u64, bool)) {
        self.activity.sends += n;
        if changed {
            self.publisher.dirty = true;
        }
    }

    /// Publishes a copy of the figures if one is due (see [`Publisher`]).
    fn publish_if_due(&mut self, state: &State, shared: &Shared) {
        if self.publisher.dirty && self.publisher.last.elapsed() >= self.publisher.interval() {
            self.publish(state, shared, false);
        }
    }

    /// Publishes a copy of the figures now; with `wait`, even if that means
    /// waiting for a reader (only as the thread ends).
    fn publish(&mut self, state: &State, shared: &Shared, wait: bool) {
        self.publisher.last = Instant::now();
        let mut activity = self.activity;
        activity.publications += 1;
        activity.publications_deferred = shared.published.deferred();
        let snapshot = Arc::new(Snapshot::of(state, activity));
        if wait {
            shared.published.publish(snapshot);
        } else if shared.published.try_publish(snapshot).is_err() {
            self.publisher.deferred = true;
            return;
        }
        self.activity.publications += 1;
        self.publisher.dirty = false;
        self.publisher.deferred = false;
    }

    /// The last publication, whatever ended the thread: the figures are
    /// exact once it has ended.
    fn publish_final(&mut self, state: &State, shared: &Shared) {
        self.publish(state, shared, true);
    }

    /// Logs one reject warning, if the limiter lets it through.
    fn log_reject(
        &mut self,
        from: Option<SocketAddr>,
        now_ns: u64,
        reason: &dyn std::fmt::Display,
    ) {
        let Some(log) = self.log.as_mut() else {
            return;
        };
        if log.allow(now_ns) {
            let from = from.map_or_else(|| "an unknown address".to_string(), |a| a.to_string());
            log::warn!(
                "rejected datagram from {from}: {reason}{}",
                log.suppressed_note()
            );
        }
    }

    /// Takes one datagram of a batch from socket `i`: its arrival time is
    /// the kernel's stamp, or `taken` (when the batch was taken) without one.
    fn take(
        &mut self,
        i: usize,
        datagram: &[u8],
        meta: &Meta,
        taken: u64,
        state: &mut State,
        clock: &clock::Anchor,
    ) {
        self.activity.datagrams += 1;
        let arrival = match meta.arrival_ns {
            Some(at) => {
                self.activity.kernel_stamped += 1;
                at
            }
            None => taken,
        };
        let foreign = self
            .from
            .filter(|f| !meta.from.is_some_and(|a| f.matches(a)));
        if let Some(filter) = foreign {
            state.ingest.count_foreign(datagram.len());
            self.log_reject(
                meta.from,
                arrival,
                &format_args!("not from the accepted source {filter}"),
            );
        } else {
            self.handle(i, datagram, meta.from, (arrival, taken), state, clock);
        }
        // The counter is the socket's running total: the latest is exact.
        if let Some(d) = meta.drops {
            self.drops[i] = u64::from(d);
            state.ingest.set_socket_drops(self.drops.iter().sum());
        }
    }

    /// Hands one datagram from socket `i` to the ingest, and what it
    /// decoded to the subscriber, the reject log or the predictor.
    fn handle(
        &mut self,
        i: usize,
        datagram: &[u8],
        source: Option<SocketAddr>,
        (arrival, taken): (u64, u64),
        state: &mut State,
        clock: &clock::Anchor,
    ) {
        match state.ingest.handle_taken(datagram, arrival, taken) {
            Outcome::Subscription(packet) => {
                if let (0, Some(sub), Some(from)) = (i, state.subscriber.as_mut(), source) {
                    let before = sub.state();
                    sub.handle(clock.now_ns(), from, &packet);
                    log_state_change(sub, before, &mut state.ingest);
                }
            }
            Outcome::Malformed(e) => self.log_reject(source, arrival, &e),
            Outcome::AuthFailed(e) => {
                self.log_reject(source, arrival, &format_args!("authentication failed: {e}"))
            }
            Outcome::Replayed(e) => {
                self.log_reject(source, arrival, &format_args!("replayed: {e}"))
            }
            Outcome::StaleSealed { age_ns } => self.log_reject(
                source,
                arrival,
                &format_args!(
                    "sent {:.3} s {} its arrival, outside the freshness window: \
                     a replay, or the sender's clock is that far off this one's",
                    age_ns.unsigned_abs() as f64 / 1e9,
                    if age_ns >= 0 { "before" } else { "after" }
                ),
            ),
            // Held on probation: maybe a forger's; learn nothing from it.
            Outcome::Unproven => {}
            outcome => {
                let ip = source.map(|a| a.ip());
                if ip.is_some() && ip != self.last_source {
                    self.last_source = ip;
                    state.sender_local = ip.map(net::is_local_ip);
                }
                if matches!(outcome, Outcome::Applied { .. } | Outcome::Stale) {
                    if let Some(h) = state.ingest.last_snapshot() {
                        self.predictor.on_part(h.tick, h.scheduled_ns, arrival);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{self, Body, Entity, Packet, SnapshotHead};

    /// A one-part snapshot of `tick` for entity 0, stamped now.
    fn snap(seq: u32, tick: u64) -> Vec<u8> {
        let now = clock::now_ns();
        let head = SnapshotHead {
            tick,
            scheduled_ns: now,
            sent_ns: now,
            part: 0,
            parts: 1,
        };
        let p = Packet {
            session: 7,
            seq,
            body: Body::Snapshot(head),
        };
        let e = Entity {
            id: 0,
            x: tick as f32,
            y: 0.0,
            z: 0.0,
        };
        wire::encode_to_vec(&p, &[e]).unwrap()
    }

    /// Polls `f` every millisecond for at most 5 s.
    fn within_5s(mut f: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if f() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        f()
    }

    /// Sends ticks `1..=n` to `to` from one socket, in order. Bounded: `n`
    /// datagrams to loopback.
    fn send_ticks(to: SocketAddr, n: u32) {
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for seq in 1..=n {
            tx.send_to(&snap(seq, u64::from(seq)), to).unwrap();
            if seq % 16 == 0 {
                // Stay well within the receive buffer.
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    }

    fn loopback() -> Receiver {
        Receiver::start(ReceiverConfig::unicast("127.0.0.1:0".parse().unwrap())).unwrap()
    }

    /// Issue 11 item 4: readers hold every lock a reader can take (both
    /// publication slots, as two readers stalled inside `figures()` would),
    /// and the receiver thread still takes and applies every datagram: it
    /// never waits for a reader. Its publications meanwhile are put off and
    /// counted, and go through once the readers let go.
    #[test]
    fn readers_holding_the_figures_cannot_stall_the_receiver() {
        let rx = loopback();
        let n = 200;
        let world = rx.world().clone();
        {
            let _held = rx.shared.published.hold_both();
            send_ticks(rx.local_addr(), n);
            assert!(
                within_5s(|| world.count() == Some(u64::from(n))),
                "every datagram applied while readers held the figures: {:?}",
                world.count()
            );
            // At least one publication fell due meanwhile and was put off.
            assert!(within_5s(|| rx.shared.published.deferred() > 0));
        }
        assert!(within_5s(|| rx.figures().counters.received == u64::from(n)));
        let a = rx.activity();
        assert!(a.publications_deferred > 0, "{a:?}");
        let f = rx.stop().unwrap();
        assert_eq!((f.counters.received, f.counters.lost), (u64::from(n), 0));
    }

    /// Readers calling `figures()` in a tight loop always get whole copies
    /// (`received + lost == expected`) that never go back, at most
    /// PUBLISH_INTERVAL old while the thread runs, and exact after stop.
    #[test]
    fn readers_in_a_tight_loop_see_whole_figures_and_exact_ones_after_stop() {
        let rx = Arc::new(loopback());
        let done = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (rx, done) = (Arc::clone(&rx), Arc::clone(&done));
                std::thread::spawn(move || {
                    let (mut last, mut reads) = (0, 0u64);
                    // Bounded: until told, or 10 s.
                    let deadline = Instant::now() + Duration::from_secs(10);
                    while !done.load(Ordering::Relaxed) && Instant::now() < deadline {
                        let c = rx.figures().counters;
                        assert_eq!(c.received + c.lost, c.expected, "{c:?}");
                        assert!(c.received >= last, "back from {last} to {}", c.received);
                        last = c.received;
                        reads += 1;
                    }
                    reads
                })
            })
            .collect();
        let n = 2_000;
        send_ticks(rx.local_addr(), n);
        assert!(within_5s(|| rx.figures().counters.received == u64::from(n)));
        done.store(true, Ordering::Relaxed);
        for r in readers {
            assert!(r.join().unwrap() > 0);
        }
        let rx = Arc::into_inner(rx).expect("the readers are gone");
        let a = rx.activity();
        assert_eq!(a.datagrams, u64::from(n), "{a:?}");
        assert!(a.receives <= a.datagrams + a.waits + 2, "{a:?}");
        let f = rx.stop().unwrap();
        assert_eq!(f.counters.received, u64::from(n));
        assert_eq!(f.counters.datagrams, u64::from(n));
        assert_eq!(f.count, Some(u64::from(n)));
    }

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

    #[test]
    fn a_cpu_the_process_may_not_use_is_an_error_of_start() {
        let err = Receiver::start(ReceiverConfig {
            cpu: Some(9999),
            ..ReceiverConfig::unicast("127.0.0.1:0".parse().unwrap())
        })
        .err()
        .expect("refused");
        assert!(
            matches!(
                err,
                ReceiverError::Realtime(RealtimeError::NoSuchCpu { cpu: 9999, .. })
            ),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .starts_with("receiver thread: CPU 9999 does not exist"),
            "{err}"
        );
    }
}
