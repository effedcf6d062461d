//! Socket setup and the one receive call that needs more than std offers.
//!
//! Owns: binding receive sockets (unicast, or multicast with group join on a
//! chosen interface and a shareable port), and `recvmsg` with the kernel's
//! per-socket drop counter (SO_RXQ_OVFL) on Linux. Everything else about
//! sockets stays in std, socket2 and mio.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

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
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// What was asked for.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// Joining the multicast group failed.
    #[error("cannot join multicast group {group} on interface {interface}: {source}")]
    Join {
        /// The group.
        group: IpAddr,
        /// The interface address.
        interface: IpAddr,
        /// The OS error.
        source: io::Error,
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
            _ => NetError::Bind { addr, source: e },
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
    // Binding to the group address (not the wildcard) keeps unicast traffic
    // to the same port out of this socket on Linux.
    let bind_addr = if cfg!(target_os = "linux") {
        group
    } else {
        match g {
            IpAddr::V4(_) => SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), group.port()),
            IpAddr::V6(_) => SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), group.port()),
        }
    };
    bind(&socket, bind_addr)?;
    let joined = match (g, interface) {
        (IpAddr::V4(g4), IpAddr::V4(i4)) => socket.join_multicast_v4(&g4, &i4),
        (IpAddr::V6(g6), _) => socket.join_multicast_v6(&g6, interface_index(interface)?),
        _ => unreachable!("families checked above"),
    };
    joined.map_err(|e| match e.kind() {
        io::ErrorKind::AddrNotAvailable => NetError::NoSuchInterface(interface),
        _ => NetError::Join {
            group: g,
            interface,
            source: e,
        },
    })?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Receives one datagram without blocking. Returns its length and, where
/// the kernel attached it, the socket's cumulative drop counter.
pub fn recv_counting_drops(
    socket: &impl AsRawFd,
    buf: &mut [u8],
    cmsg: &mut Vec<u8>,
) -> io::Result<(usize, Option<u32>)> {
    #[cfg(target_os = "linux")]
    {
        use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, SockaddrStorage};
        if cmsg.is_empty() {
            *cmsg = nix::cmsg_space!(u32);
        }
        let mut iov = [io::IoSliceMut::new(buf)];
        let msg = recvmsg::<SockaddrStorage>(
            socket.as_raw_fd(),
            &mut iov,
            Some(cmsg.as_mut_slice()),
            MsgFlags::MSG_DONTWAIT,
        )
        .map_err(io::Error::from)?;
        let mut drops = None;
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                if let ControlMessageOwned::RxqOvfl(n) = c {
                    drops = Some(n);
                }
            }
        }
        Ok((msg.bytes, drops))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = cmsg;
        let n = nix::sys::socket::recv(
            socket.as_raw_fd(),
            buf,
            nix::sys::socket::MsgFlags::MSG_DONTWAIT,
        )
        .map_err(io::Error::from)?;
        Ok((n, None))
    }
}
