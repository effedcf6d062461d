//! The receiver runtime: one dedicated thread on mio that drains its
//! socket(s) on every wake, up to [`BATCH`](crate::runtime::mmsg::BATCH) datagrams per system call
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
//!
//! The configuration is `config.rs`; the thread's loop, `thread.rs`.

mod config;
mod thread;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use mio::net::UdpSocket;
use mio::{Interest, Poll, Token, Waker};

use crate::core::feed;
use crate::core::figures::Figures;
use crate::core::ingest::Ingest;
use crate::core::ratelimit::RateLimiter;
use crate::core::silence::{likely_causes, Cause, Listening};
use crate::core::subscriber::{Subscriber, SubscriberConfig, SubscriberCounts};
use crate::core::world::{World, WorldWriter};
pub use crate::runtime::client::{ClientConfig, GameClient};
use crate::runtime::net::{self, NetError};
use crate::runtime::publish::Published;
use crate::runtime::realtime::{self, RealtimeError, ThreadSetup};
use crate::runtime::worker::PollThread;

pub use self::config::{
    ReceiveMode, ReceiverConfig, ReceiverConfigError, DEFAULT_RECV_BUFFER, LOG_BURST,
    LOG_PER_SECOND, MAX_EVENT_CAPACITY,
};
use self::thread::{run, RunOptions, WAKER};

/// The receiver thread's name (Linux shows its first 15 bytes).
pub const THREAD_NAME: &str = "tickcast-receive";
/// While datagrams come, the receiver thread publishes its figures for
/// [`Receiver::figures`] at most this often (and when it ends).
pub const PUBLISH_INTERVAL: Duration = Duration::from_millis(4);

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
    /// Receive calls (`recvmmsg` of up to [`BATCH`](crate::runtime::mmsg::BATCH) datagrams; `recvmsg`
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
            Some(mut client) => {
                let (w, r) = feed::feed(client.event_capacity);
                ingest = ingest.with_feed(w);
                // The interpolator takes every id the world does: one the
                // world holds is never missing from a sample.
                client.interpolation.capacity = config.capacity;
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
    /// the time the thread takes to handle one batch of up to [`BATCH`](crate::runtime::mmsg::BATCH)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::clock;
    use crate::wire::{self, Body, Entity, Packet, SnapshotHead};
    use std::sync::atomic::Ordering;
    use std::time::Instant;

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

    /// Sends ticks `1..=n` to `rx` from one socket, in order, 16 at a
    /// time, each batch once the receiver's world has applied the one
    /// before (within 5 s): however slowly the thread is scheduled, no
    /// more than a batch waits in its socket, well within any receive
    /// buffer. The world, not the figures, says so, as readers may hold
    /// those. Bounded: `n` datagrams to loopback.
    fn send_ticks(rx: &Receiver, n: u32) {
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let world = rx.world().clone();
        for seq in 1..=n {
            tx.send_to(&snap(seq, u64::from(seq)), rx.local_addr())
                .unwrap();
            if seq % 16 == 0 {
                let applied = within_5s(|| world.count() >= Some(u64::from(seq)));
                assert!(applied, "tick {seq} not applied: {:?}", world.count());
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
            send_ticks(&rx, n);
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
    /// (`received + lost == expected`) that never go back while the thread
    /// runs, and exact ones after stop. (How fresh a copy is, is
    /// PUBLISH_INTERVAL's doc, not checked here: a loaded machine delays
    /// the thread.)
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
        send_ticks(&rx, n);
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
