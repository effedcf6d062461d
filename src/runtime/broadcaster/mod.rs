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
//! * **One batch, every target.** The thread takes up to
//!   [`BATCH_DATAGRAMS`] datagrams from the sender at a time and hands them
//!   to the kernel for every fixed target and every subscriber before it
//!   encodes the next batch, so each receiver sees the same numbers in the
//!   same order. How they are handed over is the
//!   [`batch`](crate::runtime::batch) module's: `sendmmsg`, with runs of
//!   equal-size parts to a unicast target as UDP GSO messages where the
//!   kernel takes them (detected, with a counted fallback:
//!   [`BroadcastFigures::send_path`], `gso_fallbacks`, `gso_error`), and
//!   one send per datagram to a multicast group, which serves every member.
//!   [`BroadcastConfig::send_path`] can ask for less.
//! * **Stamps are taken before encoding, once per batch.** Every datagram
//!   of a batch carries as `sent_ns` one reading of the wall clock
//!   ([`clock::now_ns`]) taken just before the batch is encoded, so a
//!   stamp is never later than its datagram's send, and latency measured
//!   from it includes the encoding of the rest of its batch (at most
//!   [`BATCH_DATAGRAMS`] parts) and the system calls. `packets_sent`
//!   counts sequence numbers (the sender's count), `datagrams_sent` the
//!   datagrams the OS accepted, one per packet per target, and
//!   `send_syscalls` the calls it took.
//! * **Fragmentation is warned of.** At start, a payload budget above what
//!   one packet carries on a fixed target's interface (its MTU less the IP
//!   and UDP headers, [`mtu`]) is logged once per
//!   interface: it works, fragmented, but one lost fragment loses the
//!   datagram. (Subscribers arrive later and are not checked.)
//! * **Absolute deadlines.** Tick `k` is due at `t0 + deadline(k)` of the
//!   schedule (no drift), and its parts carry `scheduled_ns = wall0 +
//!   deadline(k)`, where `wall0` is [`clock::now_ns`] read next to `t0`. A
//!   tick whose slot has passed is skipped and counted, never sent in a burst.
//! * **Reports on the monotonic clock.** After each tick the sender is told
//!   the time since `t0`, and sends a report when a whole
//!   `report_interval` has passed.
//! * **A run of `d` sends `ceil(d × rate)` ticks** (ticks `0..n` with
//!   `deadline < d`), fewer only by the ticks skipped, then says goodbye.
//! * **Send errors are counted; only total failure is fatal.** The first
//!   error of each kind is kept as text ([`BroadcastFigures::last_error`])
//!   and logged once (the `log` crate), as soon as the OS has accepted any
//!   datagram: one bad target among several, or an outage mid-run, never
//!   stops the others. If the OS refuses every send for
//!   [`BroadcastConfig::give_up_after`] and has accepted none, nothing can
//!   reach any target: the broadcast stops itself, says goodbye (in vain),
//!   and [`BroadcastFigures::halted`] says why ([`Halt`]).
//! * **No allocation per tick.** The sender's copy of the positions (the
//!   world computes them into it), the batch buffer, the send headers and
//!   the lateness samples awaiting publication are reused buffers; the
//!   figures are published with `try_lock`, so a reader never stalls the
//!   thread.
//! * **Subscriptions do not disturb the ticks.** The thread reads its socket
//!   without blocking once per tick (right after sending it), and while it sleeps before a
//!   deadline it waits on the socket itself (`ppoll`, nanosecond timeout),
//!   so a request is answered at once; the last stretch before a deadline
//!   (the learned [`WakeMargin`]) is still spun, not read. At most
//!   [`SERVE_BATCH`] datagrams are handled between two looks at the clock,
//!   so a flood of requests delays no tick by more than one batch.
//!
//! # Files
//!
//! `mod.rs` is the handle ([`Broadcaster`], [`StopHandle`]) and the socket
//! setup; `config.rs` what to broadcast and its checks ([`BroadcastConfig`],
//! [`ConfigError`]); `figures.rs` what is published ([`BroadcastFigures`],
//! [`BroadcastSummary`]); `thread.rs` the loop that waits, sends and serves.
//!
//! [`clock::now_ns`]: crate::runtime::clock::now_ns
//! [`WakeMargin`]: crate::core::schedule::WakeMargin

mod config;
mod figures;
mod publisher;
mod thread;

use std::io;
use std::net::{IpAddr, SocketAddr, SocketAddrV6, UdpSocket};
use std::panic;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{JoinHandle, Thread};

use socket2::{Domain, Protocol, Socket, Type};

use self::thread::{Endpoints, Runner};
use crate::core::subscription::Subscriptions;
use crate::runtime::batch::Target;
use crate::runtime::realtime::{self, RealtimeError};
use crate::runtime::{mtu, net};

pub use self::config::{
    BroadcastConfig, ConfigError, DEFAULT_GIVE_UP_AFTER, MAX_PAYLOAD_BUDGET, MAX_RATE_HZ,
    MIN_PAYLOAD_BUDGET,
};
pub use self::figures::{BroadcastFigures, BroadcastSummary, Halt};
pub use self::publisher::{FrameWriter, PublishClock, PublishError, Publisher};
pub use self::thread::{BATCH_DATAGRAMS, SERVE_BATCH};
pub use crate::core::sender::GOODBYE_COPIES;
pub use crate::runtime::batch::SendPath;

/// Name of the broadcasting thread.
pub const THREAD_NAME: &str = "tickcast-broadcast";

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
    /// The thread could not take its real-time settings
    /// ([`BroadcastConfig::realtime`], [`BroadcastConfig::cpu`]); it ended
    /// without sending anything.
    #[error("broadcast thread: {0}")]
    Realtime(RealtimeError),
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
    /// Validates `config`, opens and binds the socket, and starts the
    /// thread, which sends the built-in simulated world of
    /// [`BroadcastConfig::entities`] entities.
    pub fn start(config: BroadcastConfig) -> Result<Broadcaster, BroadcastError> {
        Broadcaster::start_with(config, None)
    }

    /// Starts a broadcaster of the game's own world: the [`Publisher`] is
    /// where the game puts its entities, on `clock`'s schedule (see
    /// [`PublishClock`]). Everything else (targets, subscriptions, the key,
    /// reports, the goodbye, the figures) is as with [`Broadcaster::start`];
    /// [`BroadcastConfig::entities`] and [`BroadcastConfig::seed`] are not
    /// used. Each frame is the whole world: ids missing from a frame are
    /// despawned, and protocol version 2's despawn and roster packets tell
    /// the receivers ([`BroadcastConfig::lifecycle`]).
    ///
    /// ```no_run
    /// use tickcast::{BroadcastConfig, Broadcaster, PublishClock};
    /// use tickcast::wire::Entity;
    ///
    /// let config = BroadcastConfig {
    ///     group: Some("239.255.71.71:47474".parse().unwrap()),
    ///     ..BroadcastConfig::default()
    /// };
    /// let (broadcaster, mut publisher) =
    ///     Broadcaster::start_published(config, PublishClock::Tickcast).unwrap();
    /// // From the game's own thread, whenever its world changed:
    /// let mut frame = publisher.frame();
    /// frame.set(7, 1.0, 2.0, 3.0);
    /// frame.commit().unwrap();
    /// # drop(broadcaster);
    /// ```
    pub fn start_published(
        config: BroadcastConfig,
        clock: PublishClock,
    ) -> Result<(Broadcaster, Publisher), BroadcastError> {
        let running = Arc::new(AtomicBool::new(true));
        // The sender's own limit (an invalid budget fails the start below).
        let max_entities = crate::wire::entities_per_part(config.packet_budget())
            .map_or(usize::MAX, crate::core::sender::max_entities);
        let (publisher, feed) = Publisher::new(
            clock,
            config.rate_hz,
            config.compact,
            max_entities,
            Arc::clone(&running),
        )
        .map_err(BroadcastError::Spawn)?;
        let broadcaster = Broadcaster::start_with(config, Some((feed, clock)))?;
        Ok((broadcaster, publisher))
    }

    fn start_with(
        config: BroadcastConfig,
        feed: Option<(publisher::Feed, PublishClock)>,
    ) -> Result<Broadcaster, BroadcastError> {
        match feed {
            Some(_) => config.validate()?,
            None => config.validate_simulated()?,
        }
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
        for f in mtu::fragmenting_targets(
            targets.iter().copied(),
            config.payload_budget,
            config.interface,
        ) {
            log::warn!("{f}");
        }
        // Runs of datagrams may go as GSO messages to unicast targets only.
        let targets = targets
            .into_iter()
            .map(|addr| match config.broadcast.contains(&addr) {
                true => Target { addr, gso: false },
                false => Target::new(addr),
            })
            .collect();
        let endpoints = Endpoints {
            socket,
            targets,
            subs: subscriptions,
        };
        // The runner is made on its thread: its send headers (nix's
        // `MultiHeaders`) hold raw pointers, so they cannot move between
        // threads. The thread takes its real-time settings itself, first,
        // and says how that went before start returns.
        let (thread_shared, thread_flag) = (Arc::clone(&shared), Arc::clone(&flag));
        let setup = config.thread_setup();
        let (ready, started) = realtime::handshake();
        let thread = std::thread::Builder::new()
            .name(THREAD_NAME.into())
            .spawn(move || {
                if ready.apply(&setup) {
                    Runner::new(
                        &config,
                        endpoints,
                        session,
                        first_seq,
                        &thread_shared,
                        &thread_flag,
                        feed,
                    )
                    .run();
                }
            })
            .map_err(BroadcastError::Spawn)?;
        if let Err(e) = started.wait() {
            let _ = thread.join();
            return Err(BroadcastError::Realtime(e));
        }
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

/// Sockets and collection for the tests of every file here.
#[cfg(test)]
mod test_socket {
    use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
    use std::time::Duration;

    use super::{BroadcastConfig, GOODBYE_COPIES};
    use crate::wire::{self, Body, Entity, Packet};

    /// A receiving socket on 127.0.0.1 with room for a whole test run.
    pub(super) fn receiver() -> UdpSocket {
        let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        socket2::SockRef::from(&sock)
            .set_recv_buffer_size(1 << 22)
            .unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        sock
    }

    /// Every packet received until the last goodbye copy (or a quiet timeout),
    /// with its entities and datagram length.
    pub(super) fn collect(sock: &UdpSocket) -> Vec<(Packet, Vec<Entity>, usize)> {
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

    pub(super) fn config_to(sock: &UdpSocket) -> BroadcastConfig {
        BroadcastConfig {
            destinations: vec![sock.local_addr().unwrap()],
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            ..BroadcastConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_socket::{collect, config_to, receiver};
    use super::*;
    use crate::wire::Body;
    use std::net::Ipv4Addr;
    use std::time::Duration;

    #[test]
    fn stop_ends_an_unbounded_run_with_the_goodbye() {
        let sock = receiver();
        let config = BroadcastConfig {
            entities: 10,
            spin: Duration::ZERO,
            ..config_to(&sock)
        };
        let b = Broadcaster::start(config).unwrap();
        std::thread::sleep(Duration::from_millis(50));
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

    #[test]
    fn a_cpu_the_process_may_not_use_is_an_error_of_start_and_nothing_is_sent() {
        let sock = receiver();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let err = Broadcaster::start(BroadcastConfig {
            cpu: Some(9999),
            entities: 1,
            ..config_to(&sock)
        })
        .unwrap_err();
        assert!(
            matches!(
                err,
                BroadcastError::Realtime(RealtimeError::NoSuchCpu { cpu: 9999, .. })
            ),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .starts_with("broadcast thread: CPU 9999 does not exist or is not one this process may run on (it may run on "),
            "{err}"
        );
        let mut buf = [0u8; 2048];
        assert!(sock.recv(&mut buf).is_err(), "nothing is sent");
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
}
