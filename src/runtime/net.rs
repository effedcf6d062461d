//! Socket setup and the few calls that need more than std offers.
//!
//! Owns: binding receive sockets (unicast, or multicast with group join on a
//! chosen interface and a shareable port); `recvmsg` with the sender's
//! address, the kernel's per-socket drop counter (SO_RXQ_OVFL) and, where
//! asked for, the kernel's receive time (SO_TIMESTAMPNS) on Linux, one
//! datagram at a time (batches: [`crate::runtime::mmsg`]);
//! waiting for a socket to become readable with a nanosecond timeout
//! (`ppoll`), so the broadcaster can sleep until its next tick and still
//! answer at once; and telling whether an address is this host's.
//! Everything else about sockets stays in std, socket2 and mio.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// Why a socket could not be set up. Each message is one line that names
/// what was asked for.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The address is taken by another socket.
    #[error("cannot bind {addr}: address already in use (is another receiver using this port?)")]
    InUse {
        /// What was asked for.
        addr: SocketAddr,
    },
    /// Binding failed for another reason (address not on this host, permission...).
    // The OS error is in the message, so it is not also a `source` (a
    // printer of the error chain would say it twice).
    #[error("cannot bind {addr}: {error}")]
    Bind {
        /// What was asked for.
        addr: SocketAddr,
        /// The OS error.
        error: io::Error,
    },
    /// Joining the multicast group failed.
    #[error("cannot join multicast group {group} on interface {interface}: {error}")]
    Join {
        /// The group.
        group: IpAddr,
        /// The interface address.
        interface: IpAddr,
        /// The OS error.
        error: io::Error,
    },
    /// The interface address is not an address of this host.
    #[error("no interface on this host has the address {0}")]
    NoSuchInterface(IpAddr),
    /// The group address is not a multicast address.
    #[error("{0} is not a multicast address (IPv4 224.0.0.0/4, IPv6 ff00::/8)")]
    NotMulticast(IpAddr),
    /// Group and interface are of different IP families.
    #[error("group {group} and interface {interface} are of different IP families")]
    FamilyMismatch {
        /// The group.
        group: IpAddr,
        /// The interface address.
        interface: IpAddr,
    },
    /// Any other socket call failed.
    #[error("socket setup failed: {0}")]
    Io(#[from] io::Error),
}

fn domain(addr: &SocketAddr) -> Domain {
    if addr.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    }
}

fn bind(socket: &Socket, addr: SocketAddr) -> Result<(), NetError> {
    socket
        .bind(&SockAddr::from(addr))
        .map_err(|e| match e.kind() {
            io::ErrorKind::AddrInUse => NetError::InUse { addr },
            _ => NetError::Bind { addr, error: e },
        })
}

/// Index of the interface that has address `ip`, for IPv6 multicast joins.
pub fn interface_index(ip: IpAddr) -> Result<u32, NetError> {
    if ip.is_unspecified() {
        return Ok(0);
    }
    let addrs = nix::ifaddrs::getifaddrs().map_err(|e| NetError::Io(e.into()))?;
    for ifa in addrs {
        let found = ifa.address.as_ref().and_then(|a| {
            a.as_sockaddr_in()
                .map(|s| IpAddr::V4(s.ip()))
                .or_else(|| a.as_sockaddr_in6().map(|s| IpAddr::V6(s.ip())))
        });
        if found == Some(ip) {
            return nix::net::if_::if_nametoindex(ifa.interface_name.as_str())
                .map_err(|e| NetError::Io(e.into()));
        }
    }
    Err(NetError::NoSuchInterface(ip))
}

/// Sets the receive buffer (best effort: the kernel caps it at
/// `net.core.rmem_max` unless run as root, where it uses the force variant).
fn set_recv_buffer(socket: &Socket, bytes: usize) {
    if socket.set_recv_buffer_size(bytes).is_err() {
        // Not fatal: the default buffer still works, and drops are counted.
    }
}

/// Asks the kernel to report its drop counter with each datagram (Linux).
fn enable_drop_counter(socket: &Socket) {
    #[cfg(target_os = "linux")]
    {
        // Failure only means socket_drops stays 0; never fatal.
        let _ = nix::sys::socket::setsockopt(socket, nix::sys::socket::sockopt::RxqOvfl, &1);
    }
}

/// Asks the kernel to stamp each datagram's arrival on `socket`
/// (`SO_TIMESTAMPNS`: CLOCK_REALTIME, ns, taken as the datagram entered the
/// host's receive path, before it waited in the socket's queue). Returns
/// whether stamps are on; where they are not (not Linux, or refused), a
/// reader takes the time itself. The kernel turns its stamping on a moment
/// after the first socket asks (and off after the last one closes): a
/// datagram that came in before that is stamped when it is read. Both
/// readers report them: [`crate::runtime::mmsg`] in batches and
/// [`recv_from_counting_drops`] one at a time ([`Received::stamp_ns`]).
pub fn enable_arrival_stamps(socket: &impl AsFd) -> bool {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        nix::sys::socket::setsockopt(socket, nix::sys::socket::sockopt::ReceiveTimestampns, &true)
            .is_ok()
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = socket;
        false
    }
}

/// Asks the kernel to hand over a run of datagrams of one size that
/// arrived together as one buffer (`UDP_GRO`: a GSO send's segments over
/// loopback or a veth, or what a NIC's GRO merged), the size in a control
/// message ([`crate::runtime::mmsg::Meta::segment`]): one queueing and
/// one copy out for the run instead of one per datagram. Returns whether
/// it is on (Linux 5.0 and later); elsewhere each datagram comes alone.
pub fn enable_gro(socket: &impl AsFd) -> bool {
    #[cfg(target_os = "linux")]
    {
        nix::sys::socket::setsockopt(socket, nix::sys::socket::sockopt::UdpGroSegment, &true)
            .is_ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = socket;
        false
    }
}

/// A unicast receive socket bound to `addr`, non-blocking, with the drop
/// counter enabled. The port is not shared: two receivers on one unicast
/// port would split the stream between them.
pub fn unicast_socket(addr: SocketAddr, recv_buffer: Option<usize>) -> Result<UdpSocket, NetError> {
    let socket = Socket::new(domain(&addr), Type::DGRAM, Some(Protocol::UDP))?;
    if let Some(b) = recv_buffer {
        set_recv_buffer(&socket, b);
    }
    enable_drop_counter(&socket);
    bind(&socket, addr)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// A socket that has joined multicast `group` on the interface with address
/// `interface`, bound to the group's port with SO_REUSEADDR and SO_REUSEPORT
/// so several receivers on one host share it (each gets every datagram).
pub fn multicast_socket(
    group: SocketAddr,
    interface: IpAddr,
    recv_buffer: Option<usize>,
) -> Result<UdpSocket, NetError> {
    let g = group.ip();
    if !g.is_multicast() {
        return Err(NetError::NotMulticast(g));
    }
    if g.is_ipv4() != interface.is_ipv4() {
        return Err(NetError::FamilyMismatch {
            group: g,
            interface,
        });
    }
    let socket = Socket::new(domain(&group), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    #[cfg(all(unix, not(target_os = "solaris"), not(target_os = "illumos")))]
    socket.set_reuse_port(true)?;
    if let Some(b) = recv_buffer {
        set_recv_buffer(&socket, b);
    }
    enable_drop_counter(&socket);
    // An IPv6 group is joined on an interface given by its index; the same
    // index scopes the bind, which a link-local group (ff02::/16, ff12::/16)
    // needs and other scopes ignore.
    let index = match g {
        IpAddr::V6(_) => interface_index(interface)?,
        IpAddr::V4(_) => 0,
    };
    // Binding to the group address (not the wildcard) keeps unicast traffic
    // to the same port out of this socket on Linux.
    let bind_addr = match (cfg!(target_os = "linux"), g) {
        (true, IpAddr::V4(_)) => group,
        (true, IpAddr::V6(g6)) => SocketAddrV6::new(g6, group.port(), 0, index).into(),
        (false, IpAddr::V4(_)) => SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), group.port()),
        (false, IpAddr::V6(_)) => SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), group.port()),
    };
    bind(&socket, bind_addr)?;
    let joined = match (g, interface) {
        (IpAddr::V4(g4), IpAddr::V4(i4)) => socket.join_multicast_v4(&g4, &i4),
        (IpAddr::V6(g6), _) => socket.join_multicast_v6(&g6, index),
        _ => unreachable!("families checked above"),
    };
    joined.map_err(|e| match e.kind() {
        io::ErrorKind::AddrNotAvailable => NetError::NoSuchInterface(interface),
        _ => NetError::Join {
            group: g,
            interface,
            error: e,
        },
    })?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// One datagram received by [`recv_from_counting_drops`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    /// Its length.
    pub len: usize,
    /// The socket's cumulative drop counter, where the kernel attached it.
    pub drops: Option<u32>,
    /// Its source address, where the OS reported one.
    pub from: Option<SocketAddr>,
    /// When the kernel received it, in ns since the Unix epoch
    /// (CLOCK_REALTIME), where the socket asked for it
    /// ([`enable_arrival_stamps`]) and the kernel attached it.
    pub stamp_ns: Option<u64>,
}

/// Receives one datagram without blocking. Returns its length and, where
/// the kernel attached it, the socket's cumulative drop counter.
pub fn recv_counting_drops(
    socket: &impl AsRawFd,
    buf: &mut [u8],
    cmsg: &mut Vec<u8>,
) -> io::Result<(usize, Option<u32>)> {
    recv_from_counting_drops(socket, buf, cmsg).map(|r| (r.len, r.drops))
}

/// Receives one datagram without blocking (whether or not the socket is in
/// non-blocking mode), with its source address and, where the kernel
/// attached it, the socket's cumulative drop counter and the kernel's
/// receive time.
pub fn recv_from_counting_drops(
    socket: &impl AsRawFd,
    buf: &mut [u8],
    cmsg: &mut Vec<u8>,
) -> io::Result<Received> {
    use nix::sys::socket::{recvmsg, MsgFlags, SockaddrStorage};
    #[cfg(target_os = "linux")]
    if cmsg.is_empty() {
        *cmsg = nix::cmsg_space!(u32, nix::sys::time::TimeSpec);
    }
    let mut iov = [io::IoSliceMut::new(buf)];
    let space = (!cmsg.is_empty()).then_some(cmsg.as_mut_slice());
    let msg =
        recvmsg::<SockaddrStorage>(socket.as_raw_fd(), &mut iov, space, MsgFlags::MSG_DONTWAIT)
            .map_err(io::Error::from)?;
    let (mut drops, mut stamp_ns) = (None, None);
    #[cfg(target_os = "linux")]
    if let Ok(cmsgs) = msg.cmsgs() {
        use nix::sys::socket::ControlMessageOwned;
        use nix::sys::time::TimeValLike;
        for c in cmsgs {
            match c {
                ControlMessageOwned::RxqOvfl(n) => drops = Some(n),
                // Before the epoch (a clock set wrong) is no stamp at all.
                ControlMessageOwned::ScmTimestampns(t) => {
                    stamp_ns = u64::try_from(t.num_nanoseconds()).ok()
                }
                _ => {}
            }
        }
    }
    let from = msg.address.and_then(|a| {
        a.as_sockaddr_in()
            .map(|v4| SocketAddr::V4(SocketAddrV4::from(*v4)))
            .or_else(|| {
                a.as_sockaddr_in6()
                    .map(|v6| SocketAddr::V6(SocketAddrV6::from(*v6)))
            })
    });
    Ok(Received {
        len: msg.bytes,
        drops,
        from,
        stamp_ns,
    })
}

/// Waits until `socket` is readable or `timeout` has passed; true if it is
/// readable. On Linux the timeout has nanosecond resolution (`ppoll`, woken
/// by a high-resolution timer), so it can stand in for a precise sleep;
/// elsewhere it is rounded up to whole milliseconds.
pub fn wait_readable(socket: &impl AsFd, timeout: Duration) -> io::Result<bool> {
    wait_either(socket, None::<&std::os::fd::BorrowedFd<'_>>, timeout).map(|r| r.is_some())
}

/// Which of [`wait_either`]'s two sockets is readable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ready {
    /// The first (and perhaps the second too).
    First,
    /// The second only.
    Second,
}

/// Waits up to `timeout` until `first` or `second` (when given) is
/// readable; `None` on timeout or a signal. For a thread woken both by
/// datagrams and by another thread (which writes to a socket pair).
pub fn wait_either(
    first: &impl AsFd,
    second: Option<&impl AsFd>,
    timeout: Duration,
) -> io::Result<Option<Ready>> {
    use nix::poll::{PollFd, PollFlags};
    let mut fds = vec![PollFd::new(first.as_fd(), PollFlags::POLLIN)];
    if let Some(s) = second {
        fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
    }
    #[cfg(target_os = "linux")]
    let ready = nix::poll::ppoll(&mut fds, Some(timeout.into()), None);
    #[cfg(not(target_os = "linux"))]
    let ready = {
        let ms = timeout.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32;
        nix::poll::poll(
            &mut fds,
            nix::poll::PollTimeout::try_from(ms).unwrap_or(nix::poll::PollTimeout::MAX),
        )
    };
    let readable = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
    match ready {
        Ok(0) | Err(nix::errno::Errno::EINTR) => Ok(None),
        Ok(_) if readable(&fds[0]) => Ok(Some(Ready::First)),
        Ok(_) => Ok(fds.get(1).filter(|f| readable(f)).map(|_| Ready::Second)),
        Err(e) => Err(e.into()),
    }
}

/// Whether `ip` is an address of this host: a loopback address, or one of
/// its interfaces' addresses (an IPv4-mapped IPv6 address counts as its
/// IPv4 address). False if the interfaces cannot be listed.
pub fn is_local_ip(ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    if ip.is_loopback() {
        return true;
    }
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return false;
    };
    addrs.into_iter().any(|ifa| {
        ifa.address.as_ref().is_some_and(|a| {
            let found = a
                .as_sockaddr_in()
                .map(|s| IpAddr::V4(s.ip()))
                .or_else(|| a.as_sockaddr_in6().map(|s| IpAddr::V6(s.ip())));
            found == Some(ip)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn recv_from_reports_the_source_and_never_blocks() {
        let rx = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let tx = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let (mut buf, mut cmsg) = ([0u8; 64], Vec::new());
        // rx is a blocking socket: the call still returns at once.
        let err = recv_from_counting_drops(&rx, &mut buf, &mut cmsg).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        tx.send_to(b"hello", rx.local_addr().unwrap()).unwrap();
        assert!(wait_readable(&rx, Duration::from_secs(5)).unwrap());
        let got = recv_from_counting_drops(&rx, &mut buf, &mut cmsg).unwrap();
        assert_eq!((got.len, got.from), (5, Some(tx.local_addr().unwrap())));
        assert_eq!(&buf[..5], b"hello");
        assert_eq!(got.stamp_ns, None, "not asked for");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn receive_stamps_are_the_kernels_wall_clock_time_of_receipt() {
        let rx = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        enable_arrival_stamps(&rx);
        let tx = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let (mut buf, mut cmsg) = ([0u8; 64], Vec::new());
        let sent = crate::runtime::clock::now_ns();
        tx.send_to(b"hello", rx.local_addr().unwrap()).unwrap();
        assert!(wait_readable(&rx, Duration::from_secs(5)).unwrap());
        // Read well after receipt: the stamp is the receipt, not the read.
        std::thread::sleep(Duration::from_millis(20));
        let read = crate::runtime::clock::now_ns();
        let got = recv_from_counting_drops(&rx, &mut buf, &mut cmsg).unwrap();
        assert_eq!(got.len, 5);
        let stamp = got.stamp_ns.expect("SO_TIMESTAMPNS on Linux");
        // Generous bounds (a wall-clock step could break them, nothing else).
        assert!(stamp + 1_000_000 >= sent, "stamp {stamp} sent {sent}");
        assert!(stamp + 10_000_000 <= read, "stamp {stamp} read {read}");
    }

    #[test]
    fn wait_readable_times_out_with_fine_resolution() {
        let rx = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let start = Instant::now();
        assert!(!wait_readable(&rx, Duration::from_micros(300)).unwrap());
        let took = start.elapsed();
        assert!(took >= Duration::from_micros(300), "{took:?}");
    }

    #[test]
    fn loopback_and_own_addresses_are_local() {
        assert!(is_local_ip(Ipv4Addr::LOCALHOST.into()));
        assert!(is_local_ip(Ipv6Addr::LOCALHOST.into()));
        assert!(is_local_ip("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!is_local_ip("192.0.2.1".parse().unwrap()), "TEST-NET-1");
    }

    #[test]
    fn an_ipv6_link_local_group_is_joined_on_the_interface_of_its_address() {
        // Binding ff12::/16 needs a scope: without one Linux says EINVAL.
        let group: SocketAddr = "[ff12::7474]:0".parse().unwrap();
        match multicast_socket(group, Ipv6Addr::LOCALHOST.into(), None) {
            Ok(s) => assert!(s.local_addr().unwrap().ip().is_multicast()),
            // A host without IPv6 on loopback cannot join at all.
            Err(NetError::NoSuchInterface(_)) => {}
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn a_bind_error_names_its_os_reason_once() {
        let addr: SocketAddr = "192.0.2.1:9".parse().unwrap();
        let err = unicast_socket(addr, None).unwrap_err();
        let chain = anyhow_like(&err);
        assert_eq!(chain.matches("os error").count(), 1, "{chain}");
    }

    /// The error and its sources, joined as anyhow's `{:#}` prints them.
    fn anyhow_like(e: &dyn std::error::Error) -> String {
        let mut out = e.to_string();
        let mut next = e.source();
        while let Some(s) = next {
            out.push_str(": ");
            out.push_str(&s.to_string());
            next = s.source();
        }
        out
    }
}
