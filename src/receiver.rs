//! The receiver runtime: one dedicated thread on mio that drains its
//! socket(s) on every wake, stamps each datagram's arrival, and hands it to
//! [`Ingest`], which applies it to the shared [`World`] at once.
//!
//! Other threads read the world without waiting on the receiver (see
//! [`crate::world`] for the primitive) and read the figures through
//! [`Receiver::figures`]: a mutex the receiver holds only while handling one
//! datagram, so a reader waits at most that long and always sees figures
//! that agree with each other. Stop is a mio `Waker`, so the thread sleeps in
//! `poll` with no timeout and still stops at once.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::clock;
use crate::ingest::Ingest;
use crate::net::{self, NetError};
use crate::stats::Figures;
use crate::world::{World, DEFAULT_CAPACITY};

const WAKER: Token = Token(usize::MAX);
/// Receive buffer requested per socket: a few ticks of a large world.
pub const DEFAULT_RECV_BUFFER: usize = 4 << 20;

/// What a receiver listens to.
#[derive(Clone, Debug, PartialEq)]
pub struct ReceiverConfig {
    /// A unicast address to bind (port 0 picks a free one).
    pub bind: Option<SocketAddr>,
    /// A multicast group (address and port) to join.
    pub group: Option<SocketAddr>,
    /// The local interface address to join the group on.
    pub interface: IpAddr,
    /// Entity ids accepted are `0..capacity`; memory is bounded by it.
    pub capacity: u32,
    /// Socket receive buffer to request, in bytes.
    pub recv_buffer: Option<usize>,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        ReceiverConfig {
            bind: None,
            group: None,
            interface: IpAddr::V4(Ipv4Addr::LOCALHOST),
            capacity: DEFAULT_CAPACITY,
            recv_buffer: Some(DEFAULT_RECV_BUFFER),
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
}

/// Why a receiver could not start.
#[derive(Debug, thiserror::Error)]
pub enum ReceiverError {
    /// Neither a bind address nor a group was given.
    #[error("nothing to listen to: give a bind address, a multicast group, or both")]
    NothingToListen,
    /// A socket could not be set up.
    #[error(transparent)]
    Net(#[from] NetError),
    /// mio or thread setup failed.
    #[error("cannot start the receiver thread: {0}")]
    Io(#[from] io::Error),
}

struct Shared {
    ingest: Mutex<Ingest>,
    stop: AtomicBool,
}

impl Shared {
    fn ingest(&self) -> MutexGuard<'_, Ingest> {
        // Ingest never panics while holding the lock; if it ever did, its
        // counters are still consistent per datagram, so keep reading them.
        self.ingest.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running receiver: its thread, its world and its figures.
pub struct Receiver {
    shared: Arc<Shared>,
    world: Arc<World>,
    waker: Arc<Waker>,
    local_addrs: Vec<SocketAddr>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Receiver {
    /// Binds the socket(s) and starts the receiver thread.
    pub fn start(config: ReceiverConfig) -> Result<Receiver, ReceiverError> {
        let mut sockets = Vec::new();
        if let Some(addr) = config.bind {
            sockets.push(net::unicast_socket(addr, config.recv_buffer)?);
        }
        if let Some(group) = config.group {
            sockets.push(net::multicast_socket(
                group,
                config.interface,
                config.recv_buffer,
            )?);
        }
        if sockets.is_empty() {
            return Err(ReceiverError::NothingToListen);
        }
        let local_addrs = sockets
            .iter()
            .map(|s| s.local_addr())
            .collect::<Result<_, _>>()?;
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let mut sockets: Vec<UdpSocket> = sockets.into_iter().map(UdpSocket::from_std).collect();
        for (i, s) in sockets.iter_mut().enumerate() {
            poll.registry().register(s, Token(i), Interest::READABLE)?;
        }
        let shared = Arc::new(Shared {
            ingest: Mutex::new(Ingest::new()),
            stop: AtomicBool::new(false),
        });
        let world = Arc::new(World::new(config.capacity));
        let thread = std::thread::Builder::new()
            .name("tickcast-receive".into())
            .spawn({
                let (shared, world) = (Arc::clone(&shared), Arc::clone(&world));
                move || run(poll, sockets, &shared, &world)
            })?;
        Ok(Receiver {
            shared,
            world,
            waker,
            local_addrs,
            thread: Some(thread),
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

    /// The shared world; clone the `Arc` to read it from any thread.
    pub fn world(&self) -> &Arc<World> {
        &self.world
    }

    /// The figures as of now.
    pub fn figures(&self) -> Figures {
        self.shared.ingest().figures()
    }

    /// False once the thread has ended (stopped, or failed).
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Stops the thread, waits for it and returns the final figures, or the
    /// error that ended the thread early.
    pub fn stop(mut self) -> io::Result<Figures> {
        self.shutdown()?;
        Ok(self.figures())
    }

    fn shutdown(&mut self) -> io::Result<()> {
        self.shared.stop.store(true, Ordering::Release);
        let woken = self.waker.wake();
        match self.thread.take() {
            Some(t) => {
                woken?;
                t.join()
                    .map_err(|_| io::Error::other("receiver thread panicked"))?
            }
            None => Ok(()),
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

fn run(mut poll: Poll, sockets: Vec<UdpSocket>, shared: &Shared, world: &World) -> io::Result<()> {
    let mut events = Events::with_capacity(64);
    let mut buf = vec![0u8; 1 << 16];
    let mut cmsg = Vec::new();
    let mut drops = vec![0u64; sockets.len()];
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if shared.stop.load(Ordering::Acquire) {
            return Ok(());
        }
        for event in &events {
            let Some(socket) = sockets.get(event.token().0) else {
                continue;
            };
            // Edge-triggered: drain until the socket would block.
            loop {
                match net::recv_counting_drops(socket, &mut buf, &mut cmsg) {
                    Ok((n, dropped)) => {
                        let arrival = clock::now_ns();
                        let mut ingest = shared.ingest();
                        ingest.handle(&buf[..n], arrival, world);
                        if let Some(d) = dropped {
                            drops[event.token().0] = d as u64;
                            ingest.set_socket_drops(drops.iter().sum());
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    // ICMP errors reported on the socket (e.g. refused) are
                    // not datagrams; keep serving.
                    Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
                    Err(e) => return Err(e),
                }
            }
        }
    }
}
