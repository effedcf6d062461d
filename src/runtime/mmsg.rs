//! Batched receives: up to [`BATCH`] datagrams per `recvmmsg(2)` call, into
//! buffers owned here and reused by every call, each with its source, the
//! kernel's arrival stamp (`SO_TIMESTAMPNS`, CLOCK_REALTIME: the protocol's
//! clock) and the socket's drop counter (`SO_RXQ_OVFL`).
//!
//! With `UDP_GRO` on the socket ([`crate::runtime::net::enable_gro`]) a
//! buffer may hold a run of datagrams of one size that the kernel
//! coalesced ([`Meta::segment`]); [`RecvBatch::datagrams`] splits it back.
//! Every datagram of a run has the run's stamp and drop counter. The stamp
//! is exact for a run that was one GSO send (loopback, a veth: its
//! datagrams left in one system call); a run a NIC's GRO merged is stamped
//! with its first datagram's arrival, so a later one's is early by at most
//! the time the driver held the run (one NAPI poll, microseconds). The
//! drop counter counts a run dropped at a full socket once, not once per
//! datagram in it (see
//! `the_drop_counter_counts_datagrams_without_gro_and_runs_with_it`). A
//! coalesced buffer is up to 64 KiB, so a busy receiver touches up to the
//! whole 2 MiB of slots.
//!
//! Owns: the buffers (one slot of [`SLOT_LEN`] bytes per datagram, so no UDP
//! datagram is ever truncated), the call, and reading what the kernel wrote
//! back. Nothing is allocated after [`RecvBatch::new`]. The slots are one
//! zeroed allocation of `BATCH × SLOT_LEN` bytes (2 MiB): the allocator
//! maps it lazily, so only the pages datagrams were written into become
//! resident (a page or two per slot for datagrams of ~1,200 bytes).
//!
//! # Why this module has `unsafe` code
//!
//! nix 0.30 has a safe `recvmmsg` whose `MultiHeaders` are meant to be kept
//! and reused, but between calls it refills only each header's `msg_iov`.
//! `msg_namelen` and `msg_controllen` are in-out fields: going in they are
//! the buffers' sizes, coming out the kernel has replaced them with what it
//! wrote. The kernel attaches the drop counter only once the socket has
//! dropped something, so every slot that took a datagram before the first
//! drop keeps room for the timestamp alone, and the counter of every later
//! datagram in it is cut off (`MSG_CTRUNC`, and nix then yields no control
//! message at all, the timestamp neither): `socket_drops` would stop being
//! exact. (Seen on Linux 6.18 with nix 0.30.1, in the scenario of
//! `the_drop_counter_is_read_from_every_datagram_after_a_drop`: every
//! datagram after the first drop came back `ENOBUFS`; nix pull request
//! 2813, open at the time of writing.) Building new headers for
//! every batch would allocate per batch. So this module calls
//! `libc::recvmmsg` itself, with headers built on the stack for each call
//! from the buffers it owns, so every field starts each call at full size,
//! and it reads what the kernel wrote back into plain values ([`Meta`]).
//! Each `unsafe` block says why it is sound; everything outside this module
//! stays safe.
//!
//! Elsewhere than Linux and Android the same API reads one datagram per
//! `recvmsg` call (at most [`BATCH`] per [`RecvBatch::recv`]), without
//! kernel arrival stamps.

// The one module of the library allowed unsafe code; see above.
#![allow(unsafe_code)]

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

/// Most datagrams one [`RecvBatch::recv`] takes.
pub const BATCH: usize = 32;
/// Bytes of each slot: more than the largest UDP payload (65,507 bytes over
/// IPv4, 65,527 over IPv6), so no datagram is ever truncated.
pub const SLOT_LEN: usize = 1 << 16;
/// Room for each datagram's control messages, in 8-byte words (which also
/// aligns it as `cmsghdr` needs): a timestamp (32 bytes on 64-bit Linux) and
/// a drop counter (24), with room to spare.
#[cfg(any(target_os = "linux", target_os = "android"))]
const CONTROL_WORDS: usize = 16;

/// What the kernel said of one datagram of a batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// Its length in bytes.
    pub len: usize,
    /// Its source address, where the OS reported one.
    pub from: Option<SocketAddr>,
    /// When the kernel took it in (`SO_TIMESTAMPNS`: ns since the Unix
    /// epoch on CLOCK_REALTIME), where the socket has stamps enabled
    /// ([`crate::runtime::net::enable_arrival_stamps`]).
    pub arrival_ns: Option<u64>,
    /// The socket's cumulative drop counter as of this datagram's arrival
    /// (`SO_RXQ_OVFL`), where the kernel attached it: it does once the
    /// socket has dropped anything.
    pub drops: Option<u32>,
    /// With `UDP_GRO` on ([`crate::runtime::net::enable_gro`]): the size of
    /// each datagram in a buffer the kernel coalesced from several (the
    /// last may be shorter); `None` for a single datagram.
    pub segment: Option<usize>,
}

/// Buffers for batched receives, reused by every call: see the module docs.
pub struct RecvBatch {
    /// `BATCH` slots of `SLOT_LEN` bytes.
    bufs: Vec<u8>,
    #[cfg(any(target_os = "linux", target_os = "android"))]
    names: Vec<nix::libc::sockaddr_storage>,
    #[cfg(any(target_os = "linux", target_os = "android"))]
    control: Vec<[u64; CONTROL_WORDS]>,
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    cmsg: Vec<u8>,
    meta: [Meta; BATCH],
    /// Datagrams the last call took.
    len: usize,
}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch")
            .field("len", &self.len)
            .field("meta", &&self.meta[..self.len])
            .finish_non_exhaustive()
    }
}

impl Default for RecvBatch {
    fn default() -> Self {
        RecvBatch::new()
    }
}

impl RecvBatch {
    /// Buffers for [`BATCH`] datagrams of up to [`SLOT_LEN`] bytes each.
    pub fn new() -> RecvBatch {
        RecvBatch {
            bufs: vec![0u8; BATCH * SLOT_LEN],
            #[cfg(any(target_os = "linux", target_os = "android"))]
            // SAFETY: sockaddr_storage is plain old data (integers and
            // padding), for which all zero bytes is a valid value.
            names: vec![unsafe { std::mem::zeroed() }; BATCH],
            #[cfg(any(target_os = "linux", target_os = "android"))]
            control: vec![[0u64; CONTROL_WORDS]; BATCH],
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            cmsg: Vec::new(),
            meta: [Meta::default(); BATCH],
            len: 0,
        }
    }

    /// Takes the datagrams queued on `socket`, up to [`BATCH`], without
    /// blocking (whether or not the socket is non-blocking), in one system
    /// call. Returns how many (at least 1); `WouldBlock` when none was
    /// queued, or the socket's pending error. Fewer than [`BATCH`] means the
    /// kernel found the queue empty, or hit a pending error, which the next
    /// call reports.
    pub fn recv(&mut self, socket: &impl AsRawFd) -> io::Result<usize> {
        self.len = 0;
        let n = self.recv_raw(socket.as_raw_fd())?;
        self.len = n;
        Ok(n)
    }

    /// Datagrams the last [`RecvBatch::recv`] took.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the last [`RecvBatch::recv`] took nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Datagram `i` of the last call (`i < len()`): its bytes and what the
    /// kernel said of it.
    ///
    /// # Panics
    ///
    /// If `i >= len()`.
    pub fn get(&self, i: usize) -> (&[u8], &Meta) {
        assert!(i < self.len, "datagram {i} of a batch of {}", self.len);
        let m = &self.meta[i];
        (&self.bufs[i * SLOT_LEN..i * SLOT_LEN + m.len], m)
    }

    /// The datagrams of buffer `i` of the last call (`i < len()`), each
    /// with what the kernel said of the buffer, its own length in `len`:
    /// one, or the run the kernel coalesced ([`Meta::segment`]), which
    /// arrived together and shares the buffer's stamp and drop counter.
    ///
    /// # Panics
    ///
    /// If `i >= len()`.
    pub fn datagrams(&self, i: usize) -> impl Iterator<Item = (&[u8], Meta)> + '_ {
        let (buf, meta) = self.get(i);
        let size = meta.segment.unwrap_or(buf.len()).max(1);
        // An empty datagram is one datagram too.
        let empty = buf.is_empty().then_some(buf);
        let meta = *meta;
        buf.chunks(size).chain(empty).map(move |d| {
            (
                d,
                Meta {
                    len: d.len(),
                    ..meta
                },
            )
        })
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn recv_raw(&mut self, fd: std::os::fd::RawFd) -> io::Result<usize> {
        use nix::libc;
        use std::mem::size_of;

        // Every pointer below is derived from one base pointer per buffer,
        // taken once, and stays inside its allocation (`i < BATCH`).
        let bufs = self.bufs.as_mut_ptr();
        let names = self.names.as_mut_ptr();
        let control = self.control.as_mut_ptr();
        let mut iovs = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; BATCH];
        for (i, iov) in iovs.iter_mut().enumerate() {
            iov.iov_base = bufs.wrapping_add(i * SLOT_LEN).cast();
            iov.iov_len = SLOT_LEN;
        }
        // SAFETY: mmsghdr is plain old data (integers, raw pointers and
        // padding, some of them private on some libcs, hence no literal);
        // all zero bytes is valid (null pointers, zero lengths).
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        let iov_ptr = iovs.as_mut_ptr();
        for (i, h) in hdrs.iter_mut().enumerate() {
            let m = &mut h.msg_hdr;
            m.msg_name = names.wrapping_add(i).cast();
            m.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            m.msg_iov = iov_ptr.wrapping_add(i);
            m.msg_iovlen = 1;
            m.msg_control = control.wrapping_add(i).cast();
            m.msg_controllen = (CONTROL_WORDS * size_of::<u64>()) as _;
        }
        // SAFETY: `hdrs` holds BATCH headers, as passed. Each points at
        // memory that is ours, valid for writes, not otherwise borrowed
        // during the call (self is borrowed mutably) and as large as the
        // header says: a sockaddr_storage, one iovec of SLOT_LEN bytes of
        // `bufs` (slots do not overlap), CONTROL_WORDS words of `control`.
        // MSG_DONTWAIT makes the call return at once; no timeout pointer.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                hdrs.as_mut_ptr(),
                BATCH as _,
                libc::MSG_DONTWAIT as _,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = (n as usize).min(BATCH);
        for (i, h) in hdrs.iter().enumerate().take(n) {
            self.meta[i] = Meta {
                len: (h.msg_len as usize).min(SLOT_LEN),
                from: socket_addr(&self.names[i], h.msg_hdr.msg_namelen),
                ..control_messages(&h.msg_hdr)
            };
        }
        Ok(n)
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn recv_raw(&mut self, fd: std::os::fd::RawFd) -> io::Result<usize> {
        use std::os::fd::BorrowedFd;
        // SAFETY: `fd` is the caller's open socket, borrowed for this call only.
        let socket = unsafe { BorrowedFd::borrow_raw(fd) };
        let mut n = 0;
        while n < BATCH {
            let slot = &mut self.bufs[n * SLOT_LEN..(n + 1) * SLOT_LEN];
            match crate::runtime::net::recv_from_counting_drops(&socket, slot, &mut self.cmsg) {
                Ok(r) => {
                    self.meta[n] = Meta {
                        len: r.len,
                        from: r.from,
                        arrival_ns: None,
                        drops: r.drops,
                    };
                    n += 1;
                }
                // Nothing more queued, or an error the next call reports,
                // as recvmmsg does.
                Err(_) if n > 0 => break,
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }
}

/// The source address the kernel wrote into `name`, `len` bytes of it.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn socket_addr(
    name: &nix::libc::sockaddr_storage,
    len: nix::libc::socklen_t,
) -> Option<SocketAddr> {
    use nix::libc;
    use std::mem::size_of;
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
    let len = len as usize;
    match libc::c_int::from(name.ss_family) {
        libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: sockaddr_storage is large enough and aligned for every
            // socket address type, and the kernel wrote a whole sockaddr_in
            // (its family says so; its length was checked).
            let a =
                unsafe { &*(name as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for a whole sockaddr_in6.
            let a =
                unsafe { &*(name as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                u32::from_be(a.sin6_flowinfo),
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// The arrival stamp and drop counter among the control messages of `hdr`
/// (as the kernel left it: `msg_controllen` is what it wrote).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn control_messages(hdr: &nix::libc::msghdr) -> Meta {
    use nix::libc;
    use std::mem::size_of;
    let mut meta = Meta::default();
    // SAFETY: CMSG_FIRSTHDR and CMSG_NXTHDR only read the header's
    // msg_control and msg_controllen (our buffer, and the length the kernel
    // wrote into it) and return a header wholly inside that length, or null.
    let mut c = unsafe { libc::CMSG_FIRSTHDR(hdr) };
    while !c.is_null() {
        // SAFETY: `c` is non-null and inside the buffer (above), which is
        // aligned for cmsghdr (u64 words).
        let h = unsafe { &*c };
        // SAFETY: CMSG_LEN is arithmetic on its argument.
        let needs = |n: usize| h.cmsg_len as usize >= unsafe { libc::CMSG_LEN(n as _) } as usize;
        // SAFETY: CMSG_DATA is pointer arithmetic inside the message whose
        // length `needs` checked; the kernel wrote the data, and it is read
        // unaligned, as the data of a control message may be.
        let data = unsafe { libc::CMSG_DATA(c) };
        match (h.cmsg_level, h.cmsg_type) {
            (libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS) if needs(size_of::<libc::timespec>()) => {
                // SAFETY: see `data`.
                let ts = unsafe { std::ptr::read_unaligned(data.cast::<libc::timespec>()) };
                meta.arrival_ns = timespec_ns(ts.tv_sec as i64, ts.tv_nsec as i64);
            }
            (libc::SOL_SOCKET, libc::SO_RXQ_OVFL) if needs(size_of::<u32>()) => {
                // SAFETY: see `data`.
                meta.drops = Some(unsafe { std::ptr::read_unaligned(data.cast::<u32>()) });
            }
            (libc::SOL_UDP, libc::UDP_GRO) if needs(size_of::<libc::c_int>()) => {
                // SAFETY: see `data`.
                let size = unsafe { std::ptr::read_unaligned(data.cast::<libc::c_int>()) };
                meta.segment = usize::try_from(size).ok().filter(|&s| s > 0);
            }
            _ => {}
        }
        // SAFETY: as for CMSG_FIRSTHDR; `c` is a header inside the buffer.
        c = unsafe { libc::CMSG_NXTHDR(hdr, c) };
    }
    meta
}

/// A kernel timestamp in ns since the Unix epoch; `None` for a time before
/// the epoch or a malformed one.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn timespec_ns(sec: i64, nsec: i64) -> Option<u64> {
    if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
        return None;
    }
    (sec as u64)
        .checked_mul(1_000_000_000)?
        .checked_add(nsec as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{clock, net};
    use std::net::{Ipv4Addr, UdpSocket};
    use std::time::Duration;

    fn pair() -> (UdpSocket, UdpSocket) {
        let rx = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let tx = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        (rx, tx)
    }

    /// Gives loopback a moment to queue what was sent (it delivers within
    /// the send call in practice; this covers a deferred softirq).
    fn settle() {
        std::thread::sleep(Duration::from_millis(20));
    }

    #[test]
    fn a_batch_takes_every_queued_datagram_with_its_source_in_one_call() {
        let (rx, tx) = pair();
        let mut b = RecvBatch::new();
        assert_eq!(
            b.recv(&rx).unwrap_err().kind(),
            io::ErrorKind::WouldBlock,
            "rx is a blocking socket: the call still returns at once"
        );
        // Bounded: 5 datagrams to loopback.
        for i in 0..5u8 {
            tx.send_to(&vec![i; 100 + usize::from(i)], rx.local_addr().unwrap())
                .unwrap();
        }
        settle();
        assert_eq!(b.recv(&rx).unwrap(), 5);
        for i in 0..5u8 {
            let (bytes, meta) = b.get(usize::from(i));
            assert_eq!(bytes, &vec![i; 100 + usize::from(i)][..]);
            assert_eq!(meta.from, Some(tx.local_addr().unwrap()));
        }
        assert_eq!(b.recv(&rx).unwrap_err().kind(), io::ErrorKind::WouldBlock);
    }

    /// One UDP GSO send of `payload` from `tx` to `to` (IPv4) in segments of
    /// `seg` bytes; an error where the kernel has no GSO.
    fn gso_send(
        tx: &UdpSocket,
        to: std::net::SocketAddr,
        payload: &[u8],
        seg: u16,
    ) -> nix::Result<usize> {
        use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, SockaddrIn};
        let std::net::SocketAddr::V4(v4) = to else {
            unreachable!("the tests bind 127.0.0.1")
        };
        sendmsg(
            std::os::fd::AsRawFd::as_raw_fd(tx),
            &[std::io::IoSlice::new(payload)],
            &[ControlMessage::UdpGsoSegments(&seg)],
            MsgFlags::empty(),
            Some(&SockaddrIn::from(v4)),
        )
    }

    /// One GSO send of five segments (the last shorter) to a socket with
    /// `UDP_GRO` on comes back as one buffer, split into the five
    /// datagrams as sent, each sharing its stamp; a datagram sent alone
    /// and an empty one come back as one each.
    #[test]
    fn a_coalesced_run_is_split_back_into_the_datagrams_sent() {
        let (rx, tx) = pair();
        if !net::enable_gro(&rx) {
            println!("skipped: UDP_GRO is not available on this kernel");
            return;
        }
        let stamped = net::enable_arrival_stamps(&rx);
        let to = rx.local_addr().unwrap();
        let sizes = [1000usize, 1000, 1000, 1000, 321];
        let payload: Vec<u8> = sizes
            .iter()
            .enumerate()
            .flat_map(|(i, &n)| std::iter::repeat_n(i as u8 + 1, n))
            .collect();
        // Bounded: one GSO send, one plain datagram, one empty one.
        if gso_send(&tx, to, &payload, 1000).is_err() {
            println!("skipped: UDP GSO sends are not available on this kernel");
            return;
        }
        tx.send_to(&[9; 77], to).unwrap();
        tx.send_to(&[], to).unwrap();
        settle();
        let mut b = RecvBatch::new();
        let mut got = Vec::new();
        let mut buffers = 0;
        while let Ok(n) = b.recv(&rx) {
            buffers += n;
            for i in 0..n {
                got.extend(b.datagrams(i).map(|(d, m)| (d.to_vec(), m)));
            }
        }
        assert_eq!(buffers, 3, "the run came as one buffer");
        let lens: Vec<usize> = got
            .iter()
            .map(|(d, m)| {
                assert_eq!(d.len(), m.len);
                d.len()
            })
            .collect();
        assert_eq!(lens, [1000, 1000, 1000, 1000, 321, 77, 0]);
        for (i, (d, m)) in got.iter().take(5).enumerate() {
            assert!(d.iter().all(|&b| b == i as u8 + 1), "datagram {i}");
            assert_eq!(m.segment, Some(1000));
            assert_eq!(m.arrival_ns, got[0].1.arrival_ns);
            assert_eq!(m.arrival_ns.is_some(), stamped);
        }
        assert_eq!((got[5].1.segment, got[6].1.segment), (None, None));
    }

    /// 40 GSO sends of 8 datagrams into a 4 KiB socket buffer: what was
    /// read and the drop counter at the end, with UDP_GRO on or off; `None`
    /// where the kernel has neither GSO nor GRO.
    fn overflow(gro: bool) -> Option<(usize, usize)> {
        let (rx, tx) = pair();
        if gro && !net::enable_gro(&rx) {
            return None;
        }
        socket2::SockRef::from(&rx)
            .set_recv_buffer_size(4096)
            .unwrap();
        nix::sys::socket::setsockopt(&rx, nix::sys::socket::sockopt::RxqOvfl, &1).unwrap();
        let to = rx.local_addr().unwrap();
        let payload = vec![7u8; 8 * 500];
        // Bounded: 40 sends, then one datagram that carries the counter.
        for _ in 0..40 {
            gso_send(&tx, to, &payload, 500).ok()?;
        }
        settle();
        let mut b = RecvBatch::new();
        let (mut read, mut drops) = (0, 0);
        let (mut last, mut tries) = (false, 0);
        while !last {
            tries += 1;
            assert!(tries < 1000, "the last datagram never came");
            if let Ok(n) = b.recv(&rx) {
                for i in 0..n {
                    for (d, m) in b.datagrams(i) {
                        last |= d.len() == 1;
                        read += usize::from(d.len() == 500);
                        drops = drops.max(m.drops.unwrap_or(0) as usize);
                    }
                }
            } else {
                tx.send_to(&[1], to).unwrap();
                settle();
            }
        }
        Some((read, drops))
    }

    /// Without UDP_GRO the drop counter plus what was read is every
    /// datagram sent; with it the kernel counts a dropped run once (the
    /// reason `ReceiverConfig::gro` can be turned off).
    #[test]
    fn the_drop_counter_counts_datagrams_without_gro_and_runs_with_it() {
        let Some((read, drops)) = overflow(false) else {
            println!("skipped: UDP GSO sends are not available on this kernel");
            return;
        };
        assert!(drops > 0, "the small buffer dropped something");
        assert_eq!(read + drops, 320, "read {read} dropped {drops}");
        let Some((read, drops)) = overflow(true) else {
            println!("skipped: UDP_GRO is not available on this kernel");
            return;
        };
        assert!(
            drops > 0 && read + drops < 320,
            "read {read} dropped {drops}"
        );
        assert_eq!(read + 8 * drops, 320, "each dropped run counted once");
    }

    #[test]
    fn more_than_a_batch_takes_several_calls_and_the_largest_datagram_fits() {
        let (rx, tx) = pair();
        let to = rx.local_addr().unwrap();
        // Bounded: BATCH + 3 small datagrams and one of 65,507 bytes.
        for i in 0..BATCH + 3 {
            tx.send_to(&(i as u32).to_be_bytes(), to).unwrap();
        }
        let big = vec![0xa5u8; crate::wire::MAX_DATAGRAM];
        let sent_big = tx.send_to(&big, to).is_ok();
        settle();
        let mut b = RecvBatch::new();
        assert_eq!(b.recv(&rx).unwrap(), BATCH);
        assert_eq!(b.get(BATCH - 1).0, ((BATCH - 1) as u32).to_be_bytes());
        let rest = b.recv(&rx).unwrap();
        assert_eq!(rest, 3 + usize::from(sent_big));
        if sent_big {
            assert_eq!(b.get(3).0, &big[..], "not truncated");
        }
    }

    #[test]
    fn kernel_stamps_are_on_the_protocols_clock_and_survive_reuse() {
        let (rx, tx) = pair();
        let stamped = net::enable_arrival_stamps(&rx);
        let to = rx.local_addr().unwrap();
        let mut b = RecvBatch::new();
        // Two rounds through the same buffers: the second must still see
        // every control message (the fault in nix's reusable headers).
        for _round in 0..2 {
            let before = clock::now_ns();
            for _ in 0..3 {
                tx.send_to(b"x", to).unwrap();
            }
            settle();
            assert_eq!(b.recv(&rx).unwrap(), 3);
            // Not before the receive returned: the kernel turns stamping on
            // asynchronously, and stamps a datagram that came in before
            // that when it is read.
            let after = clock::now_ns();
            for i in 0..3 {
                let at = b.get(i).1.arrival_ns;
                if stamped {
                    let at = at.expect("a stamp on every datagram");
                    assert!(before <= at && at <= after, "{before} {at} {after}");
                } else {
                    assert_eq!(at, None);
                }
            }
        }
    }

    #[test]
    fn the_drop_counter_is_read_from_every_datagram_after_a_drop() {
        // A tiny receive buffer overflows at once: the kernel then attaches
        // its drop counter to every later datagram, also in slots that took
        // a datagram without one before (where nix's reused headers lose it).
        let rx = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
        rx.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())
            .unwrap();
        let rx: UdpSocket = rx.into();
        let tx = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let to = rx.local_addr().unwrap();
        let _ = nix::sys::socket::setsockopt(&rx, nix::sys::socket::sockopt::RxqOvfl, &1);
        net::enable_arrival_stamps(&rx);
        let mut b = RecvBatch::new();
        // Round 1, no drop yet: slots 0..4 take datagrams without a counter.
        for _ in 0..4 {
            tx.send_to(&[1u8; 64], to).unwrap();
        }
        settle();
        assert_eq!(b.recv(&rx).unwrap(), 4);
        assert!((0..4).all(|i| b.get(i).1.drops.is_none()));
        // Overflow: a buffer of the minimum size takes a few datagrams of
        // 1,200 bytes and drops the rest. Bounded: 200 datagrams.
        socket2::SockRef::from(&rx).set_recv_buffer_size(0).unwrap();
        for _ in 0..200 {
            tx.send_to(&[2u8; 1200], to).unwrap();
        }
        settle();
        socket2::SockRef::from(&rx)
            .set_recv_buffer_size(1 << 20)
            .unwrap();
        let mut taken = 0;
        while let Ok(n) = b.recv(&rx) {
            taken += n;
        }
        assert!(taken < 200, "some were dropped");
        // Round 3, after the drops: every datagram carries the counter, in
        // every slot, including those that had none in round 1.
        for _ in 0..4 {
            tx.send_to(&[3u8; 64], to).unwrap();
        }
        settle();
        assert_eq!(b.recv(&rx).unwrap(), 4);
        for i in 0..4 {
            let drops = b.get(i).1.drops.expect("the counter, in every slot");
            assert_eq!(u64::from(drops), 200 - taken as u64);
        }
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn timestamps_before_the_epoch_or_malformed_are_none() {
        assert_eq!(timespec_ns(1, 5), Some(1_000_000_005));
        assert_eq!(timespec_ns(-1, 0), None);
        assert_eq!(timespec_ns(0, 1_000_000_000), None);
        assert_eq!(timespec_ns(i64::MAX, 0), None);
    }
}
