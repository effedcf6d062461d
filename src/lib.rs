//! tickcast broadcasts real-time game state over UDP (unicast, IP multicast,
//! subnet broadcast and subscriptions) and measures, exactly, what each
//! receiver got: loss, reordering, duplicates, staleness and one-way latency.
//!
//! # The data path, and where each step lives
//!
//! ```text
//!  sender                                        receiver (its own thread)
//!  ──────                                        ─────────────────────────
//!  core::schedule   which tick is due            runtime::receiver  wakes on the socket, stamps
//!  core::sim        the tick's entities                             each arrival, drops foreign
//!  core::sender     number, split into parts ─┐  wire               decode (wire::auth opens)
//!   (wire, auth)    seal, report, goodbye     │  core::replay       refuse stale and replayed (with a key)
//!  runtime::        send to every target  ────┴─▶core::tracker      sequence: loss, dups, reorder;
//!    broadcaster    (unicast, group, broadcast,                     probation, jump confirmation
//!                    subscribers)                core::world        apply the entities
//!                                                core::figures      count and measure
//!  runtime::batch   in batches: sendmmsg, GSO
//!  core::subscription  answers subscribers  ◀──  core::subscriber   subscribes, heartbeats, pings
//! ```
//!
//! [`core::ingest`] is the receive pipeline in one sans-IO call.
//!
//! # Layers
//!
//! * [`wire`]: the bytes. Every packet kind, its encoding and decoding, and
//!   the authentication tag. No input can make a decoder panic.
//! * [`core`]: the sans-IO state machines. They never read a clock or touch
//!   a socket or a file (enforced by clippy's `disallowed-methods`), so
//!   every edge case is a unit test.
//! * [`runtime`]: threads, sockets, clocks and key files around the core.
//! * `bench` (feature `bench`): the benchmark behind `tickcast bench`.
//! * `fuzz` (feature `fuzz`): the stable-toolchain fuzzing harness.
//! * [`ffi`]: the C ABI over `runtime` for engines in C, C++ and C#
//!   (`include/tickcast.h`, `bindings/`).
//!
//! The command line (feature `cli`, on by default) is the `tickcast` binary
//! and is not part of the library: `tickcast = { default-features = false }`
//! builds the broadcaster and the receiver without clap, anyhow, ctrlc,
//! plotters, humantime or env_logger.
//!
//! The library prints nothing. What it has to say goes to the [`log`]
//! facade, so it lands in whatever logger the program installs (none: it
//! is dropped): the receiver's rate-limited warnings about rejected
//! datagrams, when [`ReceiverConfig::log_rejects`] asks for them, and the
//! broadcaster's send errors, once per kind, and a payload budget above an
//! interface's MTU.
//! The binary prints them on stderr through env_logger.
//!
//! # The types a user needs
//!
//! [`Broadcaster`] with [`BroadcastConfig`], [`Receiver`] with
//! [`ReceiverConfig`], the [`World`] a receiver fills, its [`Figures`],
//! and the errors of starting either end. A game that sends its own world
//! starts a broadcaster with [`Broadcaster::start_published`] and writes
//! frames into its [`Publisher`] (on [`PublishClock::Tickcast`] or
//! [`PublishClock::Game`]); a game client starts a receiver with
//! [`ReceiverConfig::client`] and reads frames, events and interpolated
//! positions from its [`GameClient`].
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod core;
#[allow(clippy::disallowed_methods, clippy::disallowed_types)]
pub mod runtime;
pub mod wire;

#[cfg(feature = "bench")]
#[allow(clippy::disallowed_methods, clippy::disallowed_types)]
pub mod bench;
/// The C ABI (`include/tickcast.h`), exported by `libtickcast.so` and
/// `libtickcast.a`.
#[allow(clippy::disallowed_methods, clippy::disallowed_types)]
pub mod ffi;
#[cfg(feature = "fuzz")]
#[allow(clippy::disallowed_methods, clippy::disallowed_types)]
pub mod fuzz;

pub use crate::core::figures::Figures;
pub use crate::core::world::World;
pub use crate::runtime::broadcaster::{
    BroadcastConfig, BroadcastError, BroadcastFigures, Broadcaster, PublishClock, PublishError,
    Publisher,
};
pub use crate::runtime::client::{ClientConfig, GameClient};
pub use crate::runtime::receiver::{ReceiveMode, Receiver, ReceiverConfig, ReceiverError};
pub use crate::wire::auth::Key;

// README.md's Rust snippets are compiled as doctests, so the README cannot
// drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
