//! The runtime: threads, sockets, clocks and files around the sans-IO
//! [`core`](crate::core). This is the only layer of the library that may
//! call `Instant::now`, `SystemTime::now`, open a socket or read a file.
//!
//! [`broadcaster`] ticks on absolute deadlines and sends; [`receiver`] is the
//! dedicated receive thread, and [`client`] a game's handle on it (frames,
//! events, interpolation); [`relay`] is the link conditioner as a UDP
//! relay. [`batch`] hands a batch of datagrams to many targets in few
//! system calls (`sendmmsg`, UDP GSO, with fallbacks); [`mmsg`] receives
//! datagrams in batches (the one module with `unsafe`). [`net`] sets
//! sockets up and holds the few other syscalls std lacks, [`clock`] is the
//! protocol's clock, [`key`] reads key files, [`open`] opens a path
//! without waiting on a FIFO, [`resolve`] turns host and
//! interface names into addresses, [`mtu`] tells whether a datagram leaves
//! unfragmented, [`realtime`] gives the broadcast and receive threads
//! SCHED_FIFO, locked memory and a CPU of their own.

pub mod batch;
pub mod broadcaster;
pub mod client;
pub mod clock;
pub mod key;
pub mod mmsg;
pub mod mtu;
pub mod net;
pub mod open;
mod publish;
pub mod realtime;
pub mod receiver;
pub mod relay;
pub mod resolve;
mod worker;
