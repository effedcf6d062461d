//! The receiver runtime: one dedicated thread on mio that drains its
//! socket(s) on every wake, stamps each datagram's arrival, and hands it to
//! [`Ingest`], which applies it to the shared [`World`] at once.
//!
//! Other threads read the world without waiting on the receiver (see
//! [`crate::core::world`] for the primitive) and read the figures through
//! [`Receiver::figures`]: a mutex the receiver holds only while handling one
//! datagram, so a reader waits at most that long and always sees figures
//! that agree with each other. Stop is a mio `Waker`, so the thread sleeps in
//! `poll` and still stops at once.
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
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::core::figures::Figures;
use crate::core::ingest::{Ingest, Outcome};
use crate::core::predict::{self, ArrivalPredictor, SpinJudge};
use crate::core::ratelimit::RateLimiter;
use crate::core::replay::DEFAULT_FRESHNESS;
use crate::core::schedule::WakeMargin;
use crate::core::silence::{likely_causes, Cause, Listening};
use crate::core::source::SourceFilter;
use crate::core::subscriber::{Subscriber, SubscriberConfig, SubscriberCounts, SubscriptionState};
use crate::core::subscription::{seal_control, Transmit, MAX_SEALED_CONTROL_LEN};
use crate::core::world::{World, WorldWriter, DEFAULT_CAPACITY};
use crate::runtime::clock;
use crate::runtime::net::{self, NetError};
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
    /// Pin the receiver thread to this CPU (default `None`: wherever the
    /// OS puts it); one the process may not run on is an error of `start`.
    pub cpu: Option<usize>,
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

/// What the receiver thread shares with readers of the figures.
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

struct Shared {
    state: Mutex<State>,
    stop: AtomicBool,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; if it ever did, the
        // counters are still consistent per datagram, so keep reading them.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running receiver: its thread, its world and its figures.
pub struct Receiver {
    shared: Arc<Shared>,
    world: World,
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
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                ingest: Ingest::with_key(writer, config.key.clone())
                    .with_freshness(config.freshness),
                subscriber,
                sender_local: None,
            }),
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
                    run(poll, sockets, &shared, opts)
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
    /// [`likely_causes`](crate::core::silence::likely_causes) of receiving
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

    /// The figures as of now.
    pub fn figures(&self) -> Figures {
        self.shared.state().figures()
    }

    /// What the subscription client has sent and received, when subscribing.
    pub fn subscriber_counts(&self) -> Option<SubscriberCounts> {
        self.shared.state().subscriber.as_ref().map(|s| s.counts())
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

/// Sends what the subscriber has due from `socket`. A failed send is left
/// to the subscriber's retries (it cannot tell a lost datagram from a
/// refused send, and needs not).
fn send_due(state: &mut State, socket: &UdpSocket, now_ns: u64, key: Option<&Key>) {
    let Some(sub) = state.subscriber.as_mut() else {
        return;
    };
    // Bounded: a subscriber has at most a request and a ping due at once.
    let before = sub.state();
    for _ in 0..8 {
        let Some(t) = sub.poll_transmit(now_ns) else {
            break;
        };
        send_control(socket, &t, key);
    }
    log_state_change(sub, before);
}

/// Logs (at info) where the subscription stands when it has moved on from `before`.
fn log_state_change(sub: &Subscriber, before: SubscriptionState) {
    if sub.state() != before {
        log::info!("subscription to {}: {}", sub.config().server, sub.state());
    }
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

fn run(
    mut poll: Poll,
    sockets: Vec<UdpSocket>,
    shared: &Shared,
    opts: RunOptions,
) -> io::Result<()> {
    let RunOptions {
        mode,
        key,
        from,
        log,
    } = opts;
    let key = key.as_ref();
    // Predict sleeps to a time, not to a datagram: Linux would round each
    // such wake-up up by the thread's timer slack (50 µs by default), as
    // the broadcaster's thread, which sets it to 1 ns, knows.
    #[cfg(target_os = "linux")]
    if mode == ReceiveMode::Predict {
        let _ = nix::sys::prctl::set_timerslack(1);
    }
    let mut events = Events::with_capacity(64);
    // The subscriber's clock: monotonic, anchored to the wall clock at
    // start, so its times read as the protocol's ns but never step.
    let clock = clock::Anchor::paired();
    // The subscription, if any, lives on the unicast socket (the first).
    let sub_socket = &sockets[0];
    {
        let mut state = shared.state();
        if let Some(sub) = state.subscriber.as_mut() {
            sub.start(clock.now_ns());
        }
        send_due(&mut state, sub_socket, clock.now_ns(), key);
    }
    let mut rx = Drain {
        from,
        log,
        buf: vec![0u8; 1 << 16],
        cmsg: Vec::new(),
        drops: vec![0u64; sockets.len()],
        last_source: None,
        predictor: ArrivalPredictor::new(),
    };
    let mut wake = WakeMargin::new(PREDICT_BASE_MARGIN);
    let mut judge = SpinJudge::new();
    loop {
        let mut timeout = {
            let state = shared.state();
            let due = state.subscriber.as_ref().and_then(Subscriber::poll_timeout);
            due.map(|t| Duration::from_nanos(t.saturating_sub(clock.now_ns())))
        };
        // In predict mode: when to stop sleeping, and until when to spin.
        let mut spin_until = None;
        match mode {
            ReceiveMode::Wait => {}
            ReceiveMode::BusyPoll => timeout = Some(Duration::ZERO),
            ReceiveMode::Predict => {
                let now = clock::now_ns();
                let next = rx
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
            Some(t) => net::wait_readable(poll.registry(), t)
                .and_then(|_| poll.poll(&mut events, Some(Duration::ZERO))),
            None => poll.poll(&mut events, timeout),
        };
        if let Err(e) = polled {
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        if shared.stop.load(Ordering::Acquire) {
            let mut state = shared.state();
            if let Some(t) = state.subscriber.as_mut().and_then(Subscriber::unsubscribe) {
                send_control(sub_socket, &t, key);
            }
            return Ok(());
        }
        let mut got = 0;
        let tick_before = rx.predictor.last_tick();
        for event in &events {
            if let Some(socket) = sockets.get(event.token().0) {
                got += rx.drain(event.token().0, socket, shared, &clock)?;
            }
        }
        if mode == ReceiveMode::BusyPoll {
            rx.drain_all(&sockets, shared, &clock)?;
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
            let tick_at_wake = rx.predictor.last_tick();
            while clock::now_ns() < until.min(cap) && !shared.stop.load(Ordering::Relaxed) {
                if rx.drain_all(&sockets, shared, &clock)? > 0 {
                    until = clock::now_ns() + quiet;
                }
                std::hint::spin_loop();
            }
            // Whether spinning pays: a tick whose first datagram the spin
            // caught is a hit, one whose first datagram woke the thread a miss.
            let woken_by_tick = tick_at_wake != tick_before;
            let caught = rx.predictor.last_tick() != tick_at_wake;
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
        send_due(&mut shared.state(), sub_socket, clock.now_ns(), key);
    }
}

/// The receive side of the thread: buffers and what is learned per datagram.
struct Drain {
    /// The one source accepted, if any.
    from: Option<SourceFilter>,
    /// Limits the reject log; `None` logs nothing.
    log: Option<RateLimiter>,
    buf: Vec<u8>,
    cmsg: Vec<u8>,
    drops: Vec<u64>,
    last_source: Option<IpAddr>,
    predictor: ArrivalPredictor,
}

impl Drain {
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

    /// Drains every socket once; returns how many datagrams were handled.
    fn drain_all(
        &mut self,
        sockets: &[UdpSocket],
        shared: &Shared,
        clock: &clock::Anchor,
    ) -> io::Result<usize> {
        let mut handled = 0;
        for (i, socket) in sockets.iter().enumerate() {
            handled += self.drain(i, socket, shared, clock)?;
        }
        Ok(handled)
    }

    /// Receives and handles datagrams from socket `i` until it would block;
    /// returns how many were handled.
    fn drain(
        &mut self,
        i: usize,
        socket: &UdpSocket,
        shared: &Shared,
        clock: &clock::Anchor,
    ) -> io::Result<usize> {
        let mut handled = 0;
        loop {
            match net::recv_from_counting_drops(socket, &mut self.buf, &mut self.cmsg) {
                Ok(r) => {
                    let arrival = clock::now_ns();
                    handled += 1;
                    let mut state = shared.state();
                    let foreign = self.from.filter(|f| !r.from.is_some_and(|a| f.matches(a)));
                    if let Some(filter) = foreign {
                        state.ingest.count_foreign(r.len);
                        self.log_reject(
                            r.from,
                            arrival,
                            &format_args!("not from the accepted source {filter}"),
                        );
                    } else {
                        self.handle(i, &r, arrival, &mut state, clock);
                    }
                    if let Some(d) = r.drops {
                        self.drops[i] = d as u64;
                        state.ingest.set_socket_drops(self.drops.iter().sum());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(handled),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // ICMP errors reported on the socket (e.g. refused) are
                // not datagrams; keep serving.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Hands one datagram from socket `i` to the ingest, and what it
    /// decoded to the subscriber, the reject log or the predictor.
    fn handle(
        &mut self,
        i: usize,
        r: &net::Received,
        arrival: u64,
        state: &mut State,
        clock: &clock::Anchor,
    ) {
        let datagram = &self.buf[..r.len];
        match state.ingest.handle(datagram, arrival) {
            Outcome::Subscription(packet) => {
                if let (0, Some(sub), Some(from)) = (i, state.subscriber.as_mut(), r.from) {
                    let before = sub.state();
                    sub.handle(clock.now_ns(), from, &packet);
                    log_state_change(sub, before);
                }
            }
            Outcome::Malformed(e) => self.log_reject(r.from, arrival, &e),
            Outcome::AuthFailed(e) => {
                self.log_reject(r.from, arrival, &format_args!("authentication failed: {e}"))
            }
            Outcome::Replayed(e) => {
                self.log_reject(r.from, arrival, &format_args!("replayed: {e}"))
            }
            Outcome::StaleSealed { age_ns } => self.log_reject(
                r.from,
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
                let ip = r.from.map(|a| a.ip());
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
