//! tickcast broadcasts real-time game state over UDP (unicast and IP
//! multicast) and measures, exactly, what each receiver got: loss,
//! reordering, duplicates, staleness and one-way latency.
//!
//! The core is sans-IO: [`wire`] (the protocol's bytes), [`tracker`]
//! (sequence numbers and loss), [`ingest`] (decode → track → apply →
//! measure), [`world`] (the shared entity table), [`schedule`] (tick
//! deadlines), [`sim`] (the built-in moving world), [`subscription`] (the
//! broadcaster's table of subscribed receivers) and [`subscriber`] (a
//! receiver's subscription client) never read a clock or touch a socket.
//! [`broadcaster`] and [`receiver`] are the thin runtime around them.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
pub mod bench;
pub mod broadcaster;
pub mod clock;
pub mod conditioner;
pub mod fuzz;
pub mod impair;
pub mod ingest;
pub mod net;
pub mod predict;
pub mod ratelimit;
pub mod receiver;
pub mod report;
pub mod schedule;
pub mod sim;
pub mod stats;
pub mod subscriber;
pub mod subscription;
pub mod tracker;
pub mod wire;
mod worker;
pub mod world;
