//! The sans-IO core: the state machines of both ends, fed datagrams,
//! header fields and the caller's `now`. Nothing here reads a clock or
//! touches a socket or a file (clippy's `disallowed-methods` and
//! `disallowed-types` in `clippy.toml` fail the build if it does), so every
//! edge case is a fast, deterministic unit test.
//!
//! Receiving: [`source`] says which sender is accepted; [`ingest`] runs
//! each datagram through decode → [`replay`] (with a key) → [`tracker`] →
//! [`world`] → [`figures`], and, for a game client, [`feed`] (frames and
//! events). Sending:
//! [`schedule`] says which tick is due, [`sim`] holds the built-in
//! worlds (linear and players), [`sender`] numbers, splits, seals and
//! reports what goes on the wire, [`lifecycle`] says which entities a game
//! despawned, and [`compact`] quantizes and delta-codes snapshots (and
//! decodes them on receipt).
//! Subscriptions: [`subscription`] is the broadcaster's table,
//! [`subscriber`] the receiver's client. Tools: [`conditioner`] (a seeded
//! bad network), [`predict`] (when the next tick will arrive),
//! [`interpolate`] (where a client draws each entity between snapshots),
//! [`ratelimit`] (how much to log), [`histogram`] (the latency histograms),
//! [`silence`] (why a receiver got nothing), [`cores`] (whether spinning
//! receivers leave a broadcaster a core), [`schema`] (the version every
//! JSON document carries).

pub mod compact;
pub mod conditioner;
pub mod cores;
pub mod feed;
pub mod figures;
pub mod histogram;
pub mod ingest;
pub mod interpolate;
pub mod lifecycle;
pub mod predict;
pub mod ratelimit;
pub mod replay;
pub mod schedule;
pub mod schema;
pub mod sender;
pub mod silence;
pub mod sim;
pub mod source;
pub mod subscriber;
pub mod subscription;
pub mod tracker;
pub mod world;
