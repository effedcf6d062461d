//! The link-conditioner relay: one thread that receives UDP datagrams on
//! `listen`, runs each through a [`Conditioner`], and forwards what it
//! releases, when it releases it, to every `forward_to` address. This is the
//! thin runtime (socket, clock, thread) around the sans-IO
//! [`crate::core::conditioner`]; put it between a broadcaster and its receivers.
//!
//! # Guarantees
//!
//! * **One fate per datagram, for every destination.** A datagram is
//!   conditioned once and each released datagram (a copy included) is sent
//!   to every destination, in release order: a dropped datagram is dropped
//!   for all, a held-back one overtaken for all.
//! * **Exact counts.** [`Impair::counts`] is what the conditioner did;
//!   [`Impair::expected_receiver_figures`] is what each receiver behind the
//!   relay must report. That holds per destination as long as nothing else
//!   loses or reorders datagrams: over loopback sends arrive in order, and
//!   the relay counts what would break the premise, namely the kernel's
//!   drops at its own socket ([`ImpairFigures::socket_drops`], a datagram the
//!   conditioner never saw) and failed sends ([`ImpairFigures::send_errors`]).
//!   Receivers report their own socket drops.
//! * **Stop is prompt and loses nothing.** Stop is a mio `Waker`. On stop
//!   the relay first takes in what the kernel already holds for it, then
//!   releases every held datagram at once, in release order, whatever its
//!   release time, so `counts().held == 0` afterwards and every datagram in
//!   is accounted for as dropped or delivered.
//! * **Timing.** On Linux the relay sleeps on a `timerfd` (CLOCK_MONOTONIC,
//!   nanosecond resolution, timer slack 1 ns) until a margin before the next
//!   release time, then spins the rest, polling without sleeping (and
//!   yielding the CPU between looks, so a receiver on the same core still
//!   runs), so a datagram leaves a few µs after its release time, never
//!   early. The margin is learned from how late the timer's wake-ups have
//!   been ([`WakeMargin`]: 20 µs plus their 90th percentile), capped at
//!   200 µs of spinning per release; on a host that wakes later than that
//!   the rest is late. Elsewhere the poll timeout keeps the time, which mio
//!   rounds up to the next millisecond: up to about 1 ms late, a bias that a
//!   1 ms preset would read as 50 % more delay. The order never depends on
//!   either. The relay's clock is monotonic and starts with the
//!   relay. A datagram's arrival time is when the kernel received it
//!   (SO_TIMESTAMPNS, a wall-clock stamp converted to the relay's clock
//!   by [`WallToAnchor`]), so neither the relay's wake-up nor the datagrams
//!   read before it add to its delay; where there is no stamp (not Linux),
//!   or it is implausible (a wall-clock step), it is the time it was read.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};
use serde::Serialize;

use crate::core::conditioner::{
    Conditioner, ConditionerConfig, ConditionerCounts, ExpectedFigures, SpecError,
};
use crate::core::schedule::WakeMargin;
use crate::runtime::clock::{self, Anchor, WallToAnchor};
use crate::runtime::net::{self, NetError};
use crate::runtime::worker::PollThread;

/// Receive buffer requested for the listening socket: a few ticks of a
/// large world, so bursts are not dropped before the conditioner sees them.
pub const DEFAULT_RECV_BUFFER: usize = 4 << 20;
/// Name of the relay thread.
pub const THREAD_NAME: &str = "tickcast-impair";

const SOCKET: Token = Token(0);
const WAKER: Token = Token(1);
/// The release timer's token (Linux).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
const TIMER: Token = Token(2);
/// Longest a blocking send may wait for buffer space before it counts as failed.
const SEND_TIMEOUT: Duration = Duration::from_millis(100);
/// Datagrams taken from the socket before releasing what is due.
const DRAIN_BATCH: usize = 1024;
/// Batches taken in at most on stop, beyond the first.
const STOP_BATCHES: usize = 16;
/// Spun before each release time at least: the release and send after the
/// wake-up.
const WAKE_BASE: Duration = Duration::from_micros(20);
/// Spun before each release time at most, however late sleeps overshoot:
/// it costs CPU, and a host that late is too busy to be helped by it.
const MAX_SPIN: Duration = Duration::from_micros(200);
/// Oldest a kernel receive stamp may be, against the time it is read, and
/// still be believed: an older one is taken for a wall-clock step.
const MAX_STAMP_AGE_NS: u64 = 1_000_000_000;

/// Where the relay listens and forwards, and what it does in between.
#[derive(Clone, Debug, PartialEq)]
pub struct ImpairConfig {
    /// Address to receive on (port 0 picks a free one; see [`Impair::local_addr`]).
    pub listen: SocketAddr,
    /// Destinations; every released datagram goes to each.
    pub forward_to: Vec<SocketAddr>,
    /// The impairments.
    pub conditioner: ConditionerConfig,
    /// Receive buffer to request for the listening socket, in bytes.
    pub recv_buffer: Option<usize>,
}

impl ImpairConfig {
    /// Relays from `listen` to `forward_to` through `conditioner`.
    pub fn new(
        listen: SocketAddr,
        forward_to: Vec<SocketAddr>,
        conditioner: ConditionerConfig,
    ) -> ImpairConfig {
        ImpairConfig {
            listen,
            forward_to,
            conditioner,
            recv_buffer: Some(DEFAULT_RECV_BUFFER),
        }
    }

    /// Checks what can be checked before binding: at least one destination,
    /// each with an address and a port, and a valid conditioner config.
    pub fn validate(&self) -> Result<(), ImpairError> {
        if self.forward_to.is_empty() {
            return Err(ImpairError::NoDestination);
        }
        if let Some(&d) = self
            .forward_to
            .iter()
            .find(|d| d.ip().is_unspecified() || d.port() == 0)
        {
            return Err(ImpairError::BadDestination(d));
        }
        // The listening address itself, when it names its port (with port
        // 0 the relay's own address is known only once it is bound).
        if let Some(&d) = self.forward_to.iter().find(|&&d| d == self.listen) {
            return Err(ImpairError::ToItself(d));
        }
        Ok(self.conditioner.validate()?)
    }
}

/// Why a relay could not start.
#[derive(Debug, thiserror::Error)]
pub enum ImpairError {
    /// No destination was given.
    #[error("nothing to forward to: give at least one destination")]
    NoDestination,
    /// A destination with an unspecified address or port 0.
    #[error("cannot forward to {0}: give a host address and a non-zero port")]
    BadDestination(SocketAddr),
    /// A destination that is the relay itself.
    #[error("cannot forward to {0}: it is the relay's own address")]
    ToItself(SocketAddr),
    /// The conditioner config is invalid.
    #[error("invalid impairment: {0}")]
    Config(#[from] SpecError),
    /// The listening socket could not be set up.
    #[error(transparent)]
    Net(#[from] NetError),
    /// A sending socket, mio or the thread could not be set up.
    #[error("cannot start the relay: {0}")]
    Io(#[from] io::Error),
}

/// Everything the relay counts: the conditioner's counts, what receivers
/// must report, and the relay's own I/O.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ImpairFigures {
    /// What the conditioner did (see [`ConditionerCounts`]).
    pub conditioner: ConditionerCounts,
    /// What each receiver behind the relay must report (see [`ExpectedFigures`]).
    pub expected_receiver: ExpectedFigures,
    /// Sends that succeeded, over all destinations (delivered × destinations
    /// when nothing failed).
    pub datagrams_sent: u64,
    /// Bytes of those sends.
    pub bytes_sent: u64,
    /// Sends that failed: that destination missed that datagram.
    pub send_errors: u64,
    /// The first error of the latest kind seen, as text.
    pub last_error: Option<String>,
    /// Datagrams the kernel dropped at the relay's listening socket for lack
    /// of buffer space (SO_RXQ_OVFL on Linux; 0 where not reported): the
    /// conditioner never saw them.
    pub socket_drops: u64,
}

/// The relay's own I/O counters.
#[derive(Clone, Debug, Default)]
struct Io {
    datagrams_sent: u64,
    bytes_sent: u64,
    send_errors: u64,
    last_error: Option<String>,
    errors_seen: Vec<io::ErrorKind>,
    socket_drops: u64,
}

impl Io {
    fn add(&mut self, t: &mut Io) {
        self.datagrams_sent += t.datagrams_sent;
        self.bytes_sent += t.bytes_sent;
        self.send_errors += t.send_errors;
        if t.last_error.is_some() {
            self.last_error = t.last_error.take();
        }
        *t = Io {
            errors_seen: std::mem::take(&mut t.errors_seen),
            ..Io::default()
        };
    }
}

struct State {
    conditioner: Conditioner,
    io: Io,
}

struct Shared {
    state: Mutex<State>,
    stop: AtomicBool,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; if it ever did, the counters
        // are still consistent per datagram, so keep reading them.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running relay. Dropping it stops it, like [`Impair::stop`].
pub struct Impair {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    thread: PollThread,
}

impl Impair {
    /// Validates `config`, binds the sockets and starts the relay thread.
    pub fn start(config: ImpairConfig) -> Result<Impair, ImpairError> {
        config.validate()?;
        let conditioner = Conditioner::new(config.conditioner.clone())?;
        let socket = net::unicast_socket(config.listen, config.recv_buffer)?;
        net::enable_arrival_stamps(&socket);
        let local_addr = socket.local_addr()?;
        if let Some(&d) = config.forward_to.iter().find(|d| {
            **d == local_addr
                || (local_addr.ip().is_unspecified()
                    && d.port() == local_addr.port()
                    && d.ip().is_loopback()
                    && d.is_ipv4() == local_addr.is_ipv4())
        }) {
            return Err(ImpairError::ToItself(d));
        }
        let out = Outputs::new(&config.forward_to)?;
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let mut socket = UdpSocket::from_std(socket);
        poll.registry()
            .register(&mut socket, SOCKET, Interest::READABLE)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                conditioner,
                io: Io::default(),
            }),
            stop: AtomicBool::new(false),
        });
        let thread = PollThread::spawn(THREAD_NAME, waker, {
            let shared = Arc::clone(&shared);
            move || run(poll, &socket, &out, &shared)
        })?;
        Ok(Impair {
            shared,
            local_addr,
            thread,
        })
    }

    /// The address the relay receives on: point the broadcaster here.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// What the conditioner did so far.
    pub fn counts(&self) -> ConditionerCounts {
        self.shared.state().conditioner.counts()
    }

    /// What each receiver behind the relay must report, given what was
    /// released so far.
    pub fn expected_receiver_figures(&self) -> ExpectedFigures {
        self.shared.state().conditioner.expected_receiver_figures()
    }

    /// Everything the relay counts, taken at one instant.
    pub fn figures(&self) -> ImpairFigures {
        let st = self.shared.state();
        ImpairFigures {
            conditioner: st.conditioner.counts(),
            expected_receiver: st.conditioner.expected_receiver_figures(),
            datagrams_sent: st.io.datagrams_sent,
            bytes_sent: st.io.bytes_sent,
            send_errors: st.io.send_errors,
            last_error: st.io.last_error.clone(),
            socket_drops: st.io.socket_drops,
        }
    }

    /// False once the thread has ended (stopped, or failed).
    pub fn is_running(&self) -> bool {
        self.thread.is_running()
    }

    /// Stops the relay: takes in what the kernel holds, releases every held
    /// datagram at once, waits for the thread and returns the final figures
    /// (or the error that ended the thread early).
    pub fn stop(mut self) -> io::Result<ImpairFigures> {
        self.shutdown()?;
        Ok(self.figures())
    }

    fn shutdown(&mut self) -> io::Result<()> {
        self.thread.stop(&self.shared.stop)
    }
}

impl Drop for Impair {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// Blocking sockets that send to the destinations: one per IP family in use,
/// bound to that family's loopback address when every destination of it is
/// on loopback (so nothing is bound beyond the host), else to the wildcard.
struct Outputs {
    v4: Option<std::net::UdpSocket>,
    v6: Option<std::net::UdpSocket>,
    targets: Vec<SocketAddr>,
}

impl Outputs {
    fn new(targets: &[SocketAddr]) -> io::Result<Outputs> {
        let open = |loopback: IpAddr, wildcard: IpAddr, family: fn(&SocketAddr) -> bool| {
            let mine: Vec<&SocketAddr> = targets.iter().filter(|d| family(d)).collect();
            if mine.is_empty() {
                return Ok(None);
            }
            let local = if mine.iter().all(|d| d.ip().is_loopback()) {
                loopback
            } else {
                wildcard
            };
            let s = std::net::UdpSocket::bind((local, 0))?;
            s.set_write_timeout(Some(SEND_TIMEOUT))?;
            io::Result::Ok(Some(s))
        };
        Ok(Outputs {
            v4: open(
                Ipv4Addr::LOCALHOST.into(),
                Ipv4Addr::UNSPECIFIED.into(),
                SocketAddr::is_ipv4,
            )?,
            v6: open(
                Ipv6Addr::LOCALHOST.into(),
                Ipv6Addr::UNSPECIFIED.into(),
                SocketAddr::is_ipv6,
            )?,
            targets: targets.to_vec(),
        })
    }

    /// Sends `datagram` to every destination, counting into `tally`.
    fn send(&self, datagram: &[u8], tally: &mut Io) {
        for to in &self.targets {
            let socket = if to.is_ipv4() { &self.v4 } else { &self.v6 };
            let sent = match socket {
                Some(s) => s.send_to(datagram, to),
                None => Err(io::Error::other("no socket for this family")),
            };
            match sent {
                Ok(n) => {
                    tally.datagrams_sent += 1;
                    tally.bytes_sent += n as u64;
                }
                Err(e) => {
                    tally.send_errors += 1;
                    if !tally.errors_seen.contains(&e.kind()) {
                        tally.errors_seen.push(e.kind());
                        tally.last_error = Some(format!("sending to {to}: {e}"));
                    }
                }
            }
        }
    }
}

fn run(mut poll: Poll, socket: &UdpSocket, out: &Outputs, shared: &Shared) -> io::Result<()> {
    // The conditioner's clock: monotonic ns since the relay started.
    let clock = Anchor::from_zero();
    let mut arrivals = Arrivals {
        stamps: WallToAnchor::new(clock),
        last_ns: 0,
    };
    let mut events = Events::with_capacity(8);
    let mut buf = vec![0u8; 1 << 16];
    let mut cmsg = Vec::new();
    let mut tally = Io::default();
    let mut more = false;
    let timer = ReleaseTimer::new(&poll)?;
    // Release times want precision, not batched wake-ups.
    clock::precise_wakeups();
    let mut wake = WakeMargin::new(WAKE_BASE);
    loop {
        // A sleep for the timer: how long, and since when.
        let mut sleep = None;
        let mut spinning = false;
        let timeout = if more {
            Some(Duration::ZERO)
        } else {
            let next = shared.state().conditioner.poll_timeout();
            let wait = next.map(|t| Duration::from_nanos(t.saturating_sub(clock.now_ns())));
            // Sleep to the margin before the release time, then spin (poll
            // without sleeping, so arrivals and stop are still seen).
            let margin = wake.margin().min(MAX_SPIN);
            match wait {
                Some(w) if w <= margin => {
                    spinning = true;
                    Some(Duration::ZERO)
                }
                w => {
                    let asked = w.map(|w| w - margin);
                    sleep = asked.map(|a| (a, Instant::now()));
                    timer.arm(asked)?
                }
            }
        };
        if spinning {
            // Spinning: let a runnable thread (such as the receiver of what
            // was just sent) have this CPU between looks.
            std::thread::yield_now();
        }
        match poll.poll(&mut events, timeout) {
            // Only a sleep that ran its full time says how late wake-ups are.
            Ok(()) => {
                let timed_out = events.is_empty() || events.iter().any(|e| e.token() == TIMER);
                if let Some((asked, since)) = sleep.filter(|_| timed_out) {
                    wake.record(asked, since.elapsed());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        let stopping = shared.stop.load(Ordering::Acquire);
        // Edge-triggered: drain on every wake (a wake for a timer finds
        // nothing and returns at once). On stop, take in what the kernel
        // holds (bounded: its receive buffer, or a few batches of a flood).
        let mut io = Relaying {
            shared,
            out,
            tally: &mut tally,
        };
        more = drain(socket, &mut buf, &mut cmsg, &mut io, &clock, &mut arrivals)?;
        for _ in 0..STOP_BATCHES {
            if !(stopping && more) {
                break;
            }
            more = drain(socket, &mut buf, &mut cmsg, &mut io, &clock, &mut arrivals)?;
        }
        let now = if stopping { u64::MAX } else { clock.now_ns() };
        io.release(now);
        if stopping {
            return Ok(());
        }
    }
}

/// What wakes the relay at the next release time: a `timerfd` on Linux,
/// which keeps nanoseconds, registered with the poll; elsewhere nothing, and
/// the poll's own timeout (whole milliseconds, rounded up) does it.
struct ReleaseTimer {
    #[cfg(target_os = "linux")]
    fd: nix::sys::timerfd::TimerFd,
}

impl ReleaseTimer {
    #[cfg(target_os = "linux")]
    fn new(poll: &Poll) -> io::Result<ReleaseTimer> {
        use nix::sys::timerfd::{ClockId, TimerFd, TimerFlags};
        use std::os::fd::{AsFd, AsRawFd};
        let fd = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )?;
        let raw = fd.as_fd().as_raw_fd();
        poll.registry()
            .register(&mut mio::unix::SourceFd(&raw), TIMER, Interest::READABLE)?;
        Ok(ReleaseTimer { fd })
    }

    #[cfg(not(target_os = "linux"))]
    fn new(_poll: &Poll) -> io::Result<ReleaseTimer> {
        Ok(ReleaseTimer {})
    }

    /// Sets the timer to go off `wait` from now (`None`: not at all) and
    /// returns the timeout to give the poll: none while the timer keeps the
    /// time, `wait` itself where there is no timer.
    #[cfg(target_os = "linux")]
    fn arm(&self, wait: Option<Duration>) -> io::Result<Option<Duration>> {
        use nix::sys::time::TimeSpec;
        use nix::sys::timerfd::{Expiration, TimerSetTimeFlags};
        // Clear an expiry already counted (the fd is non-blocking: EAGAIN
        // when there is none), so the next one is a fresh edge.
        let _ = self.fd.wait();
        match wait {
            // Due already: a zero one-shot would disarm the timer instead.
            Some(w) if w.is_zero() => Ok(Some(Duration::ZERO)),
            Some(w) => {
                let at = Expiration::OneShot(TimeSpec::from_duration(w));
                self.fd.set(at, TimerSetTimeFlags::empty())?;
                Ok(None)
            }
            None => {
                self.fd.unset()?;
                Ok(None)
            }
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn arm(&self, wait: Option<Duration>) -> io::Result<Option<Duration>> {
        Ok(wait)
    }
}

/// The relay thread's sending half: the shared state, the sockets out, and
/// the I/O counted since it was last added to the shared figures.
struct Relaying<'a> {
    shared: &'a Shared,
    out: &'a Outputs,
    tally: &'a mut Io,
}

impl Relaying<'_> {
    /// Sends every datagram due at `now_ns`, in release order.
    fn release(&mut self, now_ns: u64) {
        loop {
            let released = {
                let mut st = self.shared.state();
                st.io.add(self.tally);
                st.conditioner.poll_transmit(now_ns)
            };
            match released {
                Some(d) => self.out.send(&d, self.tally),
                None => break,
            }
        }
    }
}

/// Arrival times for the conditioner, from the kernel's receive stamps.
struct Arrivals {
    stamps: WallToAnchor,
    /// The latest arrival time given.
    last_ns: u64,
}

impl Arrivals {
    /// The arrival time of a datagram read at `now_ns` with kernel stamp
    /// `stamp_ns` (wall clock): see [`arrival_ns`].
    fn at(&mut self, now_ns: u64, stamp_ns: Option<u64>) -> u64 {
        let stamp = stamp_ns.map(|w| self.stamps.convert(w));
        self.last_ns = arrival_ns(now_ns, stamp, self.last_ns);
        self.last_ns
    }
}

/// A datagram's arrival time on the relay's clock: the kernel's receive
/// stamp `stamp` (converted to that clock), so the relay's own wake-up and
/// the datagrams ahead of it in the socket do not add to the delay; else
/// the time it was read, `now`. A stamp ahead of `now`, or more than
/// [`MAX_STAMP_AGE_NS`] behind it, is a wall-clock step, not an arrival,
/// and `now` is used. Never before `last`, the previous arrival: the
/// conditioner's jitter keeps order only for arrivals in order.
fn arrival_ns(now: u64, stamp: Option<u64>, last: u64) -> u64 {
    let t = match stamp {
        Some(t) if t <= now && now - t <= MAX_STAMP_AGE_NS => t,
        _ => now,
    };
    t.max(last)
}

/// Receives up to [`DRAIN_BATCH`] datagrams into the conditioner. Returns
/// true if the batch filled (more may be waiting).
///
/// Each datagram is pushed and then whatever is due by its arrival is
/// released at once: a burst is not held until the whole of it has been
/// taken in (with no delay, the first part of a tick would otherwise wait
/// for the decode of every part behind it).
fn drain(
    socket: &UdpSocket,
    buf: &mut [u8],
    cmsg: &mut Vec<u8>,
    io: &mut Relaying<'_>,
    clock: &Anchor,
    arrivals: &mut Arrivals,
) -> io::Result<bool> {
    let mut taken = 0;
    while taken < DRAIN_BATCH {
        match net::recv_from_counting_drops(socket, buf, cmsg) {
            Ok(r) => {
                let now = clock.now_ns();
                let arrived = arrivals.at(now, r.stamp_ns);
                {
                    let mut st = io.shared.state();
                    st.conditioner.push(arrived, &buf[..r.len]);
                    if let Some(d) = r.drops {
                        st.io.socket_drops = u64::from(d);
                    }
                }
                io.release(now);
                taken += 1;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // ICMP errors reported on the socket are not datagrams; keep serving.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn localhost() -> SocketAddr {
        (Ipv4Addr::LOCALHOST, 0).into()
    }

    #[test]
    fn bad_configs_are_refused_with_one_line() {
        let c = ConditionerConfig::default();
        let cases = [
            (
                ImpairConfig::new(localhost(), vec![], c.clone()),
                "nothing to forward to",
            ),
            (
                ImpairConfig::new(
                    localhost(),
                    vec!["0.0.0.0:5000".parse().unwrap()],
                    c.clone(),
                ),
                "cannot forward to 0.0.0.0:5000",
            ),
            (
                ImpairConfig::new(localhost(), vec!["127.0.0.1:0".parse().unwrap()], c.clone()),
                "cannot forward to 127.0.0.1:0",
            ),
            (
                ImpairConfig::new(
                    localhost(),
                    vec!["127.0.0.1:9".parse().unwrap()],
                    ConditionerConfig {
                        duplicate: 2.0,
                        ..c.clone()
                    },
                ),
                "invalid impairment: dup=2: not a probability",
            ),
        ];
        for (config, want) in cases {
            let e = Impair::start(config).err().unwrap().to_string();
            assert!(e.contains(want), "{e}");
            assert!(!e.contains('\n'));
        }
    }

    #[test]
    fn arrivals_are_the_kernel_stamp_when_plausible_and_in_order() {
        let s = 1_000_000_000;
        // The stamp, not the (later) read.
        assert_eq!(arrival_ns(5 * s, Some(5 * s - 150_000), 0), 5 * s - 150_000);
        // None, ahead of now, or too old: a step, so the read time.
        assert_eq!(arrival_ns(5 * s, None, 0), 5 * s);
        assert_eq!(arrival_ns(5 * s, Some(5 * s + 1), 0), 5 * s);
        assert_eq!(
            arrival_ns(5 * s, Some(5 * s - MAX_STAMP_AGE_NS - 1), 0),
            5 * s
        );
        assert_eq!(arrival_ns(5 * s, Some(4 * s), 0), 4 * s);
        // Never before the previous arrival.
        assert_eq!(arrival_ns(5 * s, Some(4 * s), 4 * s + 7), 4 * s + 7);
    }

    #[test]
    fn forwarding_to_itself_is_refused() {
        let probe = std::net::UdpSocket::bind(localhost()).unwrap();
        let addr = probe.local_addr().unwrap();
        drop(probe);
        let e = Impair::start(ImpairConfig::new(
            addr,
            vec![addr],
            ConditionerConfig::default(),
        ))
        .err()
        .unwrap();
        assert!(matches!(e, ImpairError::ToItself(_)), "{e}");
    }
}
