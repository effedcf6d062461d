//! Sending a batch of datagrams to many targets in few system calls.
//!
//! Owns: [`BatchSender`], which takes a buffer of back-to-back datagrams
//! (what [`Sender::poll_transmit`] appends) and a list of [`Target`]s and
//! hands every datagram × target to the kernel, by the [`SendPath`] asked
//! for and found to work:
//!
//! * [`SendPath::SendTo`]: one `sendto` per datagram per target (what
//!   std's `send_to` does; the only path off Linux).
//! * [`SendPath::Sendmmsg`]: each datagram × target is one message of a
//!   `sendmmsg`, up to [`MAX_MESSAGES`] per call, datagram by datagram
//!   (each goes to every target before the next).
//! * [`SendPath::Gso`] (the default): as `Sendmmsg`, but a run of
//!   consecutive datagrams of one size (the last may be shorter) to one
//!   unicast target is one message carrying up to [`MAX_GSO_SEGMENTS`]
//!   UDP GSO segments (`UDP_SEGMENT`, Linux 4.18+): the kernel cuts it
//!   into the same datagrams, so a receiver sees exactly what the other
//!   paths send. Multicast and broadcast targets get one message per
//!   datagram (one send still serves every member of a group).
//!
//! # Guarantees
//!
//! * **Every datagram × target is counted once** in [`SendCounts`]:
//!   accepted by the OS (`datagrams_sent`, `bytes_sent`) or refused
//!   (`send_errors`, with the error given to the caller's `on_error` once
//!   per refused message), as one `sendto` each would count them. A GSO
//!   message is accepted or refused whole, so its segments count together.
//! * **Partial sends are resumed.** `sendmmsg` stops at the first message
//!   the kernel refuses and returns how many went before it (the error
//!   itself is lost); the next call starts at that message, so its own
//!   error is seen and counted, and the rest follow. A call a signal
//!   interrupts before it sends anything is made again (a few times).
//! * **Order.** Datagrams to one target leave in the order given.
//! * **GSO is detected, not assumed.** At start a `getsockopt(UDP_SEGMENT)`
//!   probe tells whether the kernel knows GSO. A GSO send the kernel
//!   refuses with an error GSO can cause (`EIO`, `EINVAL`, `EMSGSIZE`,
//!   `ENOPROTOOPT`, `EOPNOTSUPP`) is sent again one datagram per message:
//!   if any of those are accepted, GSO is to blame, it is turned off for
//!   the rest of the run ([`BatchSender::path`] becomes `Sendmmsg`), and
//!   the fallback is counted ([`BatchSender::gso_fallbacks`]) and
//!   explained ([`BatchSender::gso_error`]); if none is, the target is to
//!   blame (a bad port, say) and GSO stays on. Either way each datagram is
//!   counted once, by how its last send went.
//! * **No allocation per batch** once the buffers have grown to the
//!   largest batch: the message plan, the headers (`nix`'s
//!   `MultiHeaders`, one set per address family, made at first use) and
//!   the I/O slices are kept and reused.
//!
//! [`Sender::poll_transmit`]: crate::core::sender::Sender::poll_transmit

// The message plan is made only where there is a sendmmsg to hand it to.
#![cfg_attr(not(target_os = "linux"), allow(dead_code))]

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::ops::Range;

use serde::{Deserialize, Serialize};

/// Most messages handed to one `sendmmsg` (Linux's `UIO_MAXIOV`: the
/// kernel takes no more in one call).
pub const MAX_MESSAGES: usize = 1024;
/// Most GSO segments in one message (Linux's `UDP_MAX_SEGMENTS` before
/// 6.9 raised it to 128).
pub const MAX_GSO_SEGMENTS: usize = 64;
/// Most bytes in one GSO message: its segments together are one UDP
/// payload before the kernel cuts them.
pub const MAX_GSO_BYTES: usize = crate::wire::MAX_DATAGRAM;
/// Times a `sendmmsg` that a signal interrupted before it sent anything
/// is made again before its first message counts as refused (`EINTR`).
const EINTR_RETRIES: u32 = 3;

/// How datagrams are handed to the kernel (see the [module docs](self)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SendPath {
    /// One `sendto` per datagram per target.
    #[serde(rename = "sendto")]
    SendTo,
    /// Every datagram × target one message of a `sendmmsg`.
    Sendmmsg,
    /// `sendmmsg`, with runs of equal-size datagrams to a unicast target
    /// as one UDP GSO message each.
    #[default]
    Gso,
}

impl SendPath {
    /// Every path, most batched last.
    pub const ALL: [SendPath; 3] = [SendPath::SendTo, SendPath::Sendmmsg, SendPath::Gso];

    /// Its name in flags and JSON: `sendto`, `sendmmsg` or `gso`.
    pub fn name(self) -> &'static str {
        match self {
            SendPath::SendTo => "sendto",
            SendPath::Sendmmsg => "sendmmsg",
            SendPath::Gso => "gso",
        }
    }
}

impl std::fmt::Display for SendPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a string is not a [`SendPath`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("send path must be sendto, sendmmsg or gso")]
pub struct BadSendPath;

impl std::str::FromStr for SendPath {
    type Err = BadSendPath;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SendPath::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or(BadSendPath)
    }
}

/// Where a batch goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    /// The address.
    pub addr: SocketAddr,
    /// Whether runs of datagrams may go to it as GSO messages: true for a
    /// unicast address; false for a multicast group or a broadcast
    /// address, which get one message per datagram.
    pub gso: bool,
}

impl Target {
    /// A target whose address alone says whether GSO may be used: not for
    /// a multicast group or the limited broadcast address
    /// (255.255.255.255). A subnet broadcast address cannot be told from
    /// its address: give it with `gso: false`.
    pub fn new(addr: SocketAddr) -> Target {
        let gso = match addr.ip() {
            std::net::IpAddr::V4(ip) => !ip.is_multicast() && !ip.is_broadcast(),
            std::net::IpAddr::V6(ip) => !ip.is_multicast(),
        };
        Target { addr, gso }
    }
}

/// What a [`BatchSender`] has handed to the kernel. Counters only go up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SendCounts {
    /// Datagrams the OS accepted: one per datagram per target.
    pub datagrams_sent: u64,
    /// Bytes of those datagrams (UDP payload).
    pub bytes_sent: u64,
    /// Datagrams the OS refused, one per datagram per target.
    pub send_errors: u64,
    /// System calls made to send (`sendto`, `sendmmsg`), refused ones included.
    pub syscalls: u64,
    /// Of `datagrams_sent`, those that left as segments of a GSO message.
    pub gso_datagrams: u64,
}

/// One message of the plan: `len` bytes of the buffer from `start` to
/// target `target`, cut into `segs` segments of `seg` bytes (the last may
/// be shorter) when `segs > 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Message {
    target: usize,
    start: usize,
    len: usize,
    segs: usize,
    seg: usize,
}

/// The system call a run of messages shares: their address family and,
/// for GSO, the segment size (the control message is one for all).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Class {
    v6: bool,
    /// GSO segment size; 0 for plain messages.
    seg: usize,
}

/// Sends batches of datagrams to many targets (see the [module docs](self)).
///
/// Not `Send` on Linux: the `sendmmsg` headers it keeps (nix's
/// `MultiHeaders`) hold raw pointers, so make it on the thread that sends.
#[derive(Debug)]
pub struct BatchSender {
    path: SendPath,
    gso_error: Option<String>,
    gso_fallbacks: u64,
    counts: SendCounts,
    plan: Vec<Message>,
    /// The plain messages a failed GSO message is sent again as.
    retry: Vec<Message>,
    #[cfg(target_os = "linux")]
    mmsg: mmsg::Headers,
}

impl BatchSender {
    /// A sender for `socket` that uses `asked`, or the most of it that this
    /// system offers: off Linux [`SendPath::SendTo`]; without GSO in the
    /// kernel (the probe fails) [`SendPath::Sendmmsg`], with the fallback
    /// counted and its reason kept.
    pub fn new(socket: &UdpSocket, asked: SendPath) -> BatchSender {
        let mut s = BatchSender {
            path: asked,
            gso_error: None,
            gso_fallbacks: 0,
            counts: SendCounts::default(),
            plan: Vec::new(),
            retry: Vec::new(),
            #[cfg(target_os = "linux")]
            mmsg: mmsg::Headers::default(),
        };
        #[cfg(target_os = "linux")]
        if asked == SendPath::Gso {
            if let Err(e) = mmsg::probe_gso(socket) {
                s.fall_back(format!("the kernel has no UDP GSO (UDP_SEGMENT: {e})"));
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = socket;
            if asked != SendPath::SendTo {
                s.path = SendPath::SendTo;
                s.gso_error = Some("sendmmsg and UDP GSO are used on Linux only".into());
            }
        }
        s
    }

    /// The path in use now: the one asked for, less what was found not to work.
    pub fn path(&self) -> SendPath {
        self.path
    }

    /// Times GSO was asked for and found not to work (by the probe, or by a
    /// send it failed where plain sends did not): 0 or 1, as it then stays off.
    pub fn gso_fallbacks(&self) -> u64 {
        self.gso_fallbacks
    }

    /// Why GSO is not in use though it was asked for, if it is not.
    pub fn gso_error(&self) -> Option<&str> {
        self.gso_error.as_deref()
    }

    /// What has been sent so far.
    pub fn counts(&self) -> SendCounts {
        self.counts
    }

    fn fall_back(&mut self, why: String) {
        self.path = SendPath::Sendmmsg;
        self.gso_fallbacks += 1;
        self.gso_error = Some(why);
    }

    /// Sends each of `datagrams` (ranges of `buf`, in order) to every one of
    /// `targets` and counts what the OS did; `on_error` is told each refusal
    /// (once per refused message: a GSO message is refused whole).
    pub fn send(
        &mut self,
        socket: &UdpSocket,
        buf: &[u8],
        datagrams: &[Range<usize>],
        targets: &[Target],
        on_error: &mut dyn FnMut(SocketAddr, &io::Error),
    ) {
        if datagrams.is_empty() || targets.is_empty() {
            return;
        }
        match self.path {
            SendPath::SendTo => self.send_each(socket, buf, datagrams, targets, on_error),
            #[cfg(target_os = "linux")]
            SendPath::Sendmmsg | SendPath::Gso => {
                self.plan_messages(datagrams, targets);
                self.send_plan(socket, buf, targets, on_error);
            }
            #[cfg(not(target_os = "linux"))]
            _ => self.send_each(socket, buf, datagrams, targets, on_error),
        }
    }

    /// [`SendPath::SendTo`]: each datagram to every target, one call each.
    fn send_each(
        &mut self,
        socket: &UdpSocket,
        buf: &[u8],
        datagrams: &[Range<usize>],
        targets: &[Target],
        on_error: &mut dyn FnMut(SocketAddr, &io::Error),
    ) {
        for d in datagrams {
            for t in targets {
                self.counts.syscalls += 1;
                match socket.send_to(&buf[d.clone()], t.addr) {
                    Ok(n) => {
                        self.counts.datagrams_sent += 1;
                        self.counts.bytes_sent += n as u64;
                    }
                    Err(e) => {
                        self.counts.send_errors += 1;
                        on_error(t.addr, &e);
                    }
                }
            }
        }
    }

    /// Fills `self.plan`: with GSO, per run of equal-size datagrams one
    /// message to each GSO target and one per datagram to the others;
    /// without, one message per datagram per target, datagram by datagram.
    fn plan_messages(&mut self, datagrams: &[Range<usize>], targets: &[Target]) {
        self.plan.clear();
        let gso = self.path == SendPath::Gso;
        let mut i = 0;
        while i < datagrams.len() {
            let end = if gso { run_end(datagrams, i) } else { i + 1 };
            let first = &datagrams[i];
            let (start, len) = (first.start, datagrams[end - 1].end - first.start);
            for (target, t) in targets.iter().enumerate() {
                if end - i > 1 && t.gso {
                    self.plan.push(Message {
                        target,
                        start,
                        len,
                        segs: end - i,
                        seg: first.len(),
                    });
                } else {
                    self.plan
                        .extend(datagrams[i..end].iter().map(|d| plain(target, d)));
                }
            }
            i = end;
        }
    }

    /// Sends `self.plan` in order, each call as many messages of one
    /// [`Class`] as it takes, resuming after partial sends.
    #[cfg(target_os = "linux")]
    fn send_plan(
        &mut self,
        socket: &UdpSocket,
        buf: &[u8],
        targets: &[Target],
        on_error: &mut dyn FnMut(SocketAddr, &io::Error),
    ) {
        let mut i = 0;
        let plan = std::mem::take(&mut self.plan);
        while i < plan.len() {
            let m = plan[i];
            if m.segs > 1 && self.path != SendPath::Gso {
                // GSO was found broken earlier in this batch.
                self.send_as_plain(socket, buf, m, targets, on_error);
                i += 1;
                continue;
            }
            let class = class_of(&m, targets);
            let end = group_end(&plan, i, class, targets, self.path == SendPath::Gso);
            match self.call(socket, buf, &plan[i..end], class, targets) {
                Ok((n, bytes)) => {
                    let sent = &plan[i..i + n];
                    let datagrams: usize = sent.iter().map(|m| m.segs).sum();
                    self.counts.datagrams_sent += datagrams as u64;
                    self.counts.bytes_sent += bytes;
                    self.counts.gso_datagrams += sent
                        .iter()
                        .filter(|m| m.segs > 1)
                        .map(|m| m.segs as u64)
                        .sum::<u64>();
                    i += n;
                }
                Err(e) if m.segs > 1 && gso_may_cause(e) => {
                    let accepted = self.send_as_plain(socket, buf, m, targets, on_error);
                    if accepted > 0 && self.path == SendPath::Gso {
                        let err = io::Error::from(e);
                        self.fall_back(format!(
                            "a GSO send to {} was refused ({err}) where the same datagrams one by one were not",
                            targets[m.target].addr
                        ));
                    }
                    i += 1;
                }
                Err(e) => {
                    self.counts.send_errors += m.segs as u64;
                    on_error(targets[m.target].addr, &io::Error::from(e));
                    i += 1;
                }
            }
        }
        self.plan = plan;
    }

    /// One `sendmmsg` of `msgs`, counted, made again if a signal
    /// interrupted it before it sent anything (at most [`EINTR_RETRIES`]
    /// times: an interruption is no fault of the datagrams).
    #[cfg(target_os = "linux")]
    fn call(
        &mut self,
        socket: &UdpSocket,
        buf: &[u8],
        msgs: &[Message],
        class: Class,
        targets: &[Target],
    ) -> Result<(usize, u64), nix::errno::Errno> {
        let mut tries = 0;
        loop {
            self.counts.syscalls += 1;
            match self.mmsg.send(socket, buf, msgs, class, targets) {
                Err(nix::errno::Errno::EINTR) if tries < EINTR_RETRIES => tries += 1,
                result => return result,
            }
        }
    }

    /// Sends GSO message `m`'s segments one per message and counts them;
    /// returns how many the OS accepted.
    #[cfg(target_os = "linux")]
    fn send_as_plain(
        &mut self,
        socket: &UdpSocket,
        buf: &[u8],
        m: Message,
        targets: &[Target],
        on_error: &mut dyn FnMut(SocketAddr, &io::Error),
    ) -> usize {
        let mut retry = std::mem::take(&mut self.retry);
        retry.clear();
        let end = m.start + m.len;
        retry.extend((m.start..end).step_by(m.seg).map(|s| Message {
            target: m.target,
            start: s,
            len: m.seg.min(end - s),
            segs: 1,
            seg: 0,
        }));
        let class = Class {
            seg: 0,
            ..class_of(&m, targets)
        };
        let mut accepted = 0;
        let mut i = 0;
        while i < retry.len() {
            match self.call(socket, buf, &retry[i..], class, targets) {
                Ok((n, bytes)) => {
                    self.counts.datagrams_sent += n as u64;
                    self.counts.bytes_sent += bytes;
                    accepted += n;
                    i += n;
                }
                Err(e) => {
                    self.counts.send_errors += 1;
                    on_error(targets[m.target].addr, &io::Error::from(e));
                    i += 1;
                }
            }
        }
        self.retry = retry;
        accepted
    }
}

/// A one-datagram message.
fn plain(target: usize, d: &Range<usize>) -> Message {
    Message {
        target,
        start: d.start,
        len: d.len(),
        segs: 1,
        seg: 0,
    }
}

/// Where the run of GSO segments that starts at datagram `i` ends
/// (exclusive): the datagrams after it of its size, back to back in the
/// buffer, then at most one shorter, within [`MAX_GSO_SEGMENTS`] and
/// [`MAX_GSO_BYTES`].
fn run_end(datagrams: &[Range<usize>], i: usize) -> usize {
    let size = datagrams[i].len();
    let mut total = size;
    let mut j = i + 1;
    while j < datagrams.len() && j - i < MAX_GSO_SEGMENTS {
        let d = &datagrams[j];
        if d.start != datagrams[j - 1].end || d.len() > size || d.is_empty() {
            break;
        }
        if total + d.len() > MAX_GSO_BYTES {
            break;
        }
        total += d.len();
        j += 1;
        if d.len() < size {
            break;
        }
    }
    j
}

fn class_of(m: &Message, targets: &[Target]) -> Class {
    Class {
        v6: targets[m.target].addr.is_ipv6(),
        seg: if m.segs > 1 { m.seg } else { 0 },
    }
}

/// Where the call that starts at `plan[i]`, of `class`, ends (exclusive):
/// the messages after it of the same class, up to [`MAX_MESSAGES`]. A
/// one-datagram message to a GSO target rides in a GSO call when it is no
/// longer than the segment size (the kernel sends such a message as it is).
#[cfg(target_os = "linux")]
fn group_end(plan: &[Message], i: usize, class: Class, targets: &[Target], gso_on: bool) -> usize {
    let mut j = i + 1;
    let last = plan.len().min(i + MAX_MESSAGES);
    while j < last {
        let m = &plan[j];
        let c = class_of(m, targets);
        let rides = class.seg > 0
            && c.v6 == class.v6
            && m.segs == 1
            && targets[m.target].gso
            && m.len <= class.seg;
        if !(c == class || rides) || (m.segs > 1 && !gso_on) {
            break;
        }
        j += 1;
    }
    j
}

/// Whether an error of a GSO send may be GSO's doing rather than the
/// target's: a kernel, route or device without it, or a segment larger
/// than the path's MTU.
#[cfg(target_os = "linux")]
fn gso_may_cause(e: nix::errno::Errno) -> bool {
    use nix::errno::Errno;
    matches!(
        e,
        Errno::EIO | Errno::EINVAL | Errno::EMSGSIZE | Errno::ENOPROTOOPT | Errno::EOPNOTSUPP
    )
}

/// The `sendmmsg` calls, through nix's safe wrappers.
#[cfg(target_os = "linux")]
mod mmsg {
    use std::io::IoSlice;
    use std::net::{SocketAddr, UdpSocket};
    use std::os::fd::AsRawFd;

    use nix::errno::Errno;
    use nix::sys::socket::{
        self, sockopt, ControlMessage, MsgFlags, MultiHeaders, SockaddrIn, SockaddrIn6,
        SockaddrLike,
    };

    use super::{Class, Message, Target, MAX_MESSAGES};

    /// Whether the kernel knows `UDP_SEGMENT` (Linux 4.18+): reading the
    /// option fails with `ENOPROTOOPT` where it does not.
    pub(super) fn probe_gso(socket: &UdpSocket) -> Result<(), Errno> {
        socket::getsockopt(socket, sockopt::UdpGsoSegment).map(drop)
    }

    /// Headers for both families, each made at its first use.
    #[derive(Debug, Default)]
    pub(super) struct Headers {
        v4: Option<Family<SockaddrIn>>,
        v6: Option<Family<SockaddrIn6>>,
        /// The I/O slices of a call, kept between calls (empty, with no
        /// borrow: see [`recycle`]).
        slices: Vec<[IoSlice<'static>; 1]>,
    }

    impl Headers {
        /// Sends `msgs` (at most [`MAX_MESSAGES`] of them, all of `class`)
        /// in one `sendmmsg`: `Ok` with how many the kernel took and their
        /// bytes, or the error of the first.
        pub(super) fn send(
            &mut self,
            socket: &UdpSocket,
            buf: &[u8],
            msgs: &[Message],
            class: Class,
            targets: &[Target],
        ) -> Result<(usize, u64), Errno> {
            let call = Call {
                socket,
                buf,
                msgs: &msgs[..msgs.len().min(MAX_MESSAGES)],
                seg: class.seg,
                targets,
            };
            if class.v6 {
                let f = self.v6.get_or_insert_with(Family::new);
                f.send(&call, &mut self.slices, |a| match a {
                    SocketAddr::V6(a) => Some(SockaddrIn6::from(a)),
                    SocketAddr::V4(_) => None,
                })
            } else {
                let f = self.v4.get_or_insert_with(Family::new);
                f.send(&call, &mut self.slices, |a| match a {
                    SocketAddr::V4(a) => Some(SockaddrIn::from(a)),
                    SocketAddr::V6(_) => None,
                })
            }
        }
    }

    /// One `sendmmsg`: these messages of `buf` to these targets, with GSO
    /// segments of `seg` bytes (0: plain).
    struct Call<'a> {
        socket: &'a UdpSocket,
        buf: &'a [u8],
        msgs: &'a [Message],
        seg: usize,
        targets: &'a [Target],
    }

    /// The headers and addresses of one address family.
    #[derive(Debug)]
    struct Family<S> {
        /// Headers without control messages.
        plain: MultiHeaders<S>,
        /// Headers with room for one `UDP_SEGMENT` control message each.
        gso: MultiHeaders<S>,
        addrs: Vec<Option<S>>,
    }

    impl<S: SockaddrLike + Copy> Family<S> {
        fn new() -> Family<S> {
            Family {
                plain: MultiHeaders::preallocate(MAX_MESSAGES, None),
                gso: MultiHeaders::preallocate(MAX_MESSAGES, Some(nix::cmsg_space!(u16))),
                addrs: Vec::with_capacity(MAX_MESSAGES),
            }
        }

        /// Makes `call` with the addresses `addr` gives; `kept` lends the
        /// I/O slices' allocation and gets it back, emptied.
        fn send(
            &mut self,
            call: &Call<'_>,
            kept: &mut Vec<[IoSlice<'static>; 1]>,
            addr: impl Fn(SocketAddr) -> Option<S>,
        ) -> Result<(usize, u64), Errno> {
            let mut slices = recycle(std::mem::take(kept));
            let result = self.call(call, &mut slices, addr);
            *kept = recycle(slices);
            result
        }

        fn call<'b>(
            &mut self,
            call: &Call<'b>,
            slices: &mut Vec<[IoSlice<'b>; 1]>,
            addr: impl Fn(SocketAddr) -> Option<S>,
        ) -> Result<(usize, u64), Errno> {
            self.addrs.clear();
            for m in call.msgs {
                match addr(call.targets[m.target].addr) {
                    Some(a) => self.addrs.push(Some(a)),
                    // A target of the other family: what sendto says of it.
                    None if self.addrs.is_empty() => return Err(Errno::EAFNOSUPPORT),
                    None => break,
                }
            }
            let n = self.addrs.len();
            slices.extend(
                call.msgs[..n]
                    .iter()
                    .map(|m| [IoSlice::new(&call.buf[m.start..m.start + m.len])]),
            );
            // The segment size fits: a GSO message is at most MAX_GSO_BYTES.
            let seg = u16::try_from(call.seg).unwrap_or(u16::MAX);
            let gso = [ControlMessage::UdpGsoSegments(&seg)];
            let (headers, cmsgs): (_, &[ControlMessage]) = if seg > 0 {
                (&mut self.gso, &gso)
            } else {
                (&mut self.plain, &[])
            };
            let sent = socket::sendmmsg(
                call.socket.as_raw_fd(),
                headers,
                slices.iter(),
                &self.addrs,
                cmsgs,
                MsgFlags::empty(),
            )?;
            let mut count = 0;
            let mut bytes = 0u64;
            for m in sent {
                count += 1;
                bytes += m.bytes as u64;
            }
            Ok((count, bytes))
        }
    }

    /// The same vector, emptied, with its slices' borrow let go: no slice
    /// outlives a call, and the allocation is kept (`collect` over an
    /// emptied `vec::IntoIter` of a same-layout type reuses it in place).
    fn recycle<'b>(mut v: Vec<[IoSlice<'_>; 1]>) -> Vec<[IoSlice<'b>; 1]> {
        v.clear();
        v.into_iter().map(|_| unreachable!("emptied")).collect()
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn recycling_the_slices_keeps_their_allocation() {
            let buf = [1u8; 8];
            let mut v: Vec<[IoSlice<'_>; 1]> = Vec::with_capacity(64);
            v.push([IoSlice::new(&buf)]);
            let cap = v.capacity();
            let w: Vec<[IoSlice<'static>; 1]> = recycle(v);
            assert!(w.is_empty());
            assert_eq!(w.capacity(), cap);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(lens: &[usize]) -> Vec<Range<usize>> {
        let mut at = 0;
        lens.iter()
            .map(|&n| {
                at += n;
                at - n..at
            })
            .collect()
    }

    #[test]
    fn runs_are_equal_sizes_then_at_most_one_shorter() {
        let d = ranges(&[1200, 1200, 1200, 500, 1200, 52, 52]);
        assert_eq!(run_end(&d, 0), 4, "three full and the shorter last");
        assert_eq!(run_end(&d, 4), 6, "a full one and a report");
        assert_eq!(run_end(&d, 6), 7, "one alone");
        // A longer one ends the run before it.
        let d = ranges(&[52, 1200]);
        assert_eq!(run_end(&d, 0), 1);
        // Not back to back in the buffer: not one run.
        let d = [0..100, 150..250];
        assert_eq!(run_end(&d, 0), 1);
    }

    #[test]
    fn runs_stop_at_the_segment_and_byte_limits() {
        let d = ranges(&[100; 200]);
        assert_eq!(run_end(&d, 0), MAX_GSO_SEGMENTS);
        let d = ranges(&[1200; 100]);
        assert_eq!(run_end(&d, 0), MAX_GSO_BYTES / 1200, "54 of 1200 bytes fit");
        let d = ranges(&[MAX_GSO_BYTES, 1]);
        assert_eq!(run_end(&d, 0), 1);
    }

    #[test]
    fn a_plan_sends_runs_to_unicast_and_datagrams_to_groups() {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut s = BatchSender::new(&socket, SendPath::Gso);
        s.path = SendPath::Gso;
        let one: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let group: SocketAddr = "239.255.0.1:9".parse().unwrap();
        let targets = [Target::new(one), Target::new(group)];
        assert!(targets[0].gso && !targets[1].gso);
        let d = ranges(&[1200, 1200, 600, 52]);
        s.plan_messages(&d, &targets);
        let got: Vec<(usize, usize, usize)> =
            s.plan.iter().map(|m| (m.target, m.start, m.segs)).collect();
        assert_eq!(
            got,
            [
                (0, 0, 3),
                (1, 0, 1),
                (1, 1200, 1),
                (1, 2400, 1),
                (0, 3000, 1),
                (1, 3000, 1)
            ]
        );
        assert_eq!((s.plan[0].len, s.plan[0].seg), (3000, 1200));
        // Without GSO: each datagram to every target, in turn.
        s.path = SendPath::Sendmmsg;
        s.plan_messages(&d, &targets);
        let got: Vec<(usize, usize)> = s.plan.iter().map(|m| (m.target, m.start)).collect();
        assert_eq!(
            got,
            [
                (0, 0),
                (1, 0),
                (0, 1200),
                (1, 1200),
                (0, 2400),
                (1, 2400),
                (0, 3000),
                (1, 3000)
            ]
        );
        assert!(s.plan.iter().all(|m| m.segs == 1));
    }

    #[test]
    fn send_paths_parse_and_print_their_names() {
        for p in SendPath::ALL {
            assert_eq!(p.name().parse::<SendPath>(), Ok(p));
            assert_eq!(
                serde_json::to_string(&p).unwrap(),
                format!("\"{}\"", p.name())
            );
        }
        assert_eq!("GSO".parse::<SendPath>(), Err(BadSendPath));
        assert_eq!(SendPath::default(), SendPath::Gso);
    }

    /// A receiving socket on 127.0.0.1 with room for every datagram of a test.
    fn receiver() -> UdpSocket {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket2::SockRef::from(&sock)
            .set_recv_buffer_size(1 << 22)
            .unwrap();
        sock.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        sock
    }

    /// `n` datagrams from `sock`, each as its bytes.
    fn receive(sock: &UdpSocket, n: usize) -> Vec<Vec<u8>> {
        let mut buf = vec![0u8; 65536];
        (0..n)
            .map(|i| {
                let len = sock
                    .recv(&mut buf)
                    .unwrap_or_else(|e| panic!("datagram {i} of {n}: {e}"));
                buf[..len].to_vec()
            })
            .collect()
    }

    /// A batch as the broadcaster makes one: datagrams of the given sizes
    /// back to back, each filled with its index so order shows.
    fn batch(lens: &[usize]) -> (Vec<u8>, Vec<Range<usize>>) {
        let d = ranges(lens);
        let mut buf = vec![0u8; d.last().map_or(0, |r| r.end)];
        for (i, r) in d.iter().enumerate() {
            buf[r.clone()].fill(i as u8);
        }
        (buf, d)
    }

    /// Two ticks of a 1,200-byte budget: 61 parts (the last 700 bytes), a
    /// 52-byte report, then 70 full parts.
    fn two_ticks() -> Vec<usize> {
        let mut lens = vec![1200; 60];
        lens.extend([700, 52]);
        lens.extend([1200; 70]);
        lens
    }

    #[test]
    fn every_path_delivers_every_datagram_to_every_target_in_order() {
        let (buf, d) = batch(&two_ticks());
        let bytes: usize = d.iter().map(|r| r.len()).sum();
        for path in SendPath::ALL {
            let rx = [receiver(), receiver()];
            let targets: Vec<Target> = rx
                .iter()
                .map(|r| Target::new(r.local_addr().unwrap()))
                .collect();
            let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
            let mut s = BatchSender::new(&tx, path);
            assert_eq!(s.path(), path, "loopback on Linux 4.18+ takes every path");
            s.send(&tx, &buf, &d, &targets, &mut |a, e| panic!("{a}: {e}"));
            for r in &rx {
                let got = receive(r, d.len());
                for (i, (g, want)) in got.iter().zip(&d).enumerate() {
                    assert_eq!(g.as_slice(), &buf[want.clone()], "{path}: datagram {i}");
                }
            }
            let c = s.counts();
            let n = 2 * d.len() as u64;
            assert_eq!(
                (c.datagrams_sent, c.bytes_sent, c.send_errors),
                (n, 2 * bytes as u64, 0),
                "{path}"
            );
            // Every message of a batch this size is one call when batched;
            // with GSO, runs of 54 full parts, the 700-byte part ending one.
            let (syscalls, gso) = match path {
                SendPath::SendTo => (n, 0),
                SendPath::Sendmmsg => (1, 0),
                SendPath::Gso => (1, n - 2),
            };
            assert_eq!((c.syscalls, c.gso_datagrams), (syscalls, gso), "{path}");
            assert_eq!((s.gso_fallbacks(), s.gso_error()), (0, None), "{path}");
        }
    }

    #[test]
    fn a_refused_target_counts_each_datagram_and_the_others_get_everything() {
        // Linux refuses to send to port 0 with EINVAL, GSO or not, so the
        // GSO retry one by one fails too, and GSO is (rightly) kept.
        let (buf, d) = batch(&[1200; 10]);
        for path in SendPath::ALL {
            let rx = [receiver(), receiver()];
            let bad: SocketAddr = "127.0.0.1:0".parse().unwrap();
            // The bad one between the good ones: a sendmmsg stops at it,
            // and the rest are sent by the calls after.
            let targets = [
                Target::new(rx[0].local_addr().unwrap()),
                Target::new(bad),
                Target::new(rx[1].local_addr().unwrap()),
            ];
            let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
            let mut s = BatchSender::new(&tx, path);
            let mut refused = Vec::new();
            s.send(&tx, &buf, &d, &targets, &mut |a, e| {
                refused.push((a, e.raw_os_error()))
            });
            for r in &rx {
                assert_eq!(receive(r, d.len()).len(), d.len(), "{path}");
            }
            let c = s.counts();
            assert_eq!(
                (c.datagrams_sent, c.bytes_sent, c.send_errors),
                (20, 20 * 1200, 10),
                "{path}"
            );
            assert!(!refused.is_empty(), "{path}");
            assert!(refused
                .iter()
                .all(|&(a, e)| a == bad && e == Some(nix::libc::EINVAL)));
            assert_eq!((s.path(), s.gso_fallbacks()), (path, 0), "{path}");
        }
    }

    /// `SO_NO_CHECK` (no UDP checksum) is an option any user may set, and
    /// one GSO cannot honour: the kernel refuses a GSO send on such a
    /// socket with EINVAL and sends plain datagrams as ever. (The option
    /// is defined with nix's own macro, which holds the `unsafe` call.)
    mod no_check {
        use nix::libc;
        use nix::{getsockopt_impl, setsockopt_impl, sockopt_impl};
        sockopt_impl!(NoCheck, Both, libc::SOL_SOCKET, libc::SO_NO_CHECK, bool);
        pub(super) use NoCheck as Option;
    }

    #[test]
    fn a_gso_send_the_kernel_refuses_falls_back_once_and_counts_every_datagram() {
        let (buf, d) = batch(&two_ticks());
        let rx = receiver();
        let targets = [Target::new(rx.local_addr().unwrap())];
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        nix::sys::socket::setsockopt(&tx, no_check::Option, &true).unwrap();
        let mut s = BatchSender::new(&tx, SendPath::Gso);
        assert_eq!(s.path(), SendPath::Gso, "the probe cannot tell");
        for round in 0..2 {
            s.send(&tx, &buf, &d, &targets, &mut |a, e| panic!("{a}: {e}"));
            let got = receive(&rx, d.len());
            for (i, (g, want)) in got.iter().zip(&d).enumerate() {
                assert_eq!(
                    g.as_slice(),
                    &buf[want.clone()],
                    "round {round}: datagram {i}"
                );
            }
        }
        let c = s.counts();
        let n = 2 * d.len() as u64;
        assert_eq!(
            (c.datagrams_sent, c.send_errors, c.gso_datagrams),
            (n, 0, 0)
        );
        assert_eq!((s.path(), s.gso_fallbacks()), (SendPath::Sendmmsg, 1));
        let why = s.gso_error().unwrap();
        assert!(
            why.starts_with(&format!("a GSO send to {} was refused (", targets[0].addr))
                && why.contains("os error 22"),
            "{why}"
        );
        // The first batch: the refused GSO call, its first run one by one
        // (GSO found broken), then a call for each of the other runs and
        // one for the report between them; the second batch in one call.
        assert_eq!(c.syscalls, 1 + 1 + 4 + 1, "{c:?}");
    }
}
