//! The raw flags of `broadcast`, `receive` and `demo` (clap derive
//! structs), their checks, and their translation into the library's
//! configs ([`BroadcastConfig`], [`ReceiverConfig`]), which the library
//! validates again when it starts. Nothing here runs or prints: `bench`
//! and `impair` keep their flags beside their running, in `bench.rs` and
//! `impair.rs`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::{Args, Parser, Subcommand};

use tickcast::core::subscription::DEFAULT_MAX_SUBSCRIBERS;
use tickcast::runtime::broadcaster::{BroadcastConfig, SendPath};
use tickcast::runtime::receiver::{ReceiveMode, ReceiverConfig};
use tickcast::wire::auth::Key;

/// Default port for `broadcast --to` and `receive --bind` when none is given.
const DEFAULT_PORT: u16 = 47_474;

/// Broadcast real-time game state over UDP and measure exactly what each receiver gets.
#[derive(Parser, Debug)]
#[command(name = "tickcast", version, about)]
pub(super) struct Cli {
    #[command(subcommand)]
    pub(super) command: Command,
}

#[derive(Subcommand, Debug)]
pub(super) enum Command {
    /// Tick a simulated world and send every tick's snapshot to receivers.
    Broadcast(BroadcastArgs),
    /// Receive a stream, apply it, and report loss, reordering, duplicates and latency.
    Receive(ReceiveArgs),
    /// One broadcaster and several receivers on loopback, then a table of their figures.
    Demo(DemoArgs),
    /// Benchmark loss, latency, rates and CPU: one broadcaster, K receivers, sweeps, the max-entities search.
    Bench(super::bench::BenchArgs),
    /// Relay UDP through a seeded link conditioner (loss, bursts, delay, jitter, reordering, duplication) and count exactly what it did.
    Impair(super::impair::ImpairArgs),
}

/// A `--duration`-style value: `10s`, `500ms`, `2m`.
pub(super) fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 10s, 500ms, 2m)"))
}

#[derive(Args, Debug)]
pub(super) struct WorldArgs {
    /// Number of entities in the simulated world.
    #[arg(long, default_value_t = 100)]
    pub(super) entities: u32,
    /// Ticks per second.
    #[arg(long, value_name = "HZ", default_value_t = 60.0)]
    pub(super) rate: f64,
    /// Seed of the simulated world's motion.
    #[arg(long, default_value_t = 1)]
    pub(super) seed: u64,
    /// Largest datagram to send, in bytes; a tick is split into parts that fit.
    #[arg(long, value_name = "BYTES", default_value_t = tickcast::wire::DEFAULT_PAYLOAD_BUDGET)]
    pub(super) payload_budget: usize,
}

impl WorldArgs {
    /// `config` with the world these flags describe.
    fn apply(&self, config: BroadcastConfig) -> BroadcastConfig {
        BroadcastConfig {
            entities: self.entities,
            rate_hz: self.rate,
            seed: self.seed,
            payload_budget: self.payload_budget,
            ..config
        }
    }
}

#[derive(Args, Debug)]
pub(super) struct BroadcastArgs {
    /// Unicast destination (repeatable). Default 127.0.0.1:47474 when none of
    /// --to, --group, --broadcast and --bind is given.
    #[arg(long = "to", value_name = "ADDR:PORT")]
    pub(super) to: Vec<SocketAddr>,
    /// Multicast group to send to, e.g. 239.255.74.74:47474 or [ff12::7474]:47474.
    #[arg(long, value_name = "ADDR:PORT")]
    pub(super) group: Option<SocketAddr>,
    /// Subnet broadcast address to send to (repeatable, IPv4), e.g. 192.168.1.255:47474.
    #[arg(long, value_name = "ADDR:PORT")]
    pub(super) broadcast: Vec<SocketAddr>,
    /// Local address of the interface multicast leaves through (an IPv6
    /// address for an IPv6 group). Default 127.0.0.1, or ::1 for an IPv6 group.
    #[arg(long, value_name = "IP")]
    pub(super) interface: Option<IpAddr>,
    /// Multicast TTL (hops); 1 stays on the local network.
    #[arg(long, default_value_t = 1)]
    pub(super) ttl: u32,
    /// Local address to send from, where receivers subscribe (--subscribe).
    /// Default 0.0.0.0:0 (a free port, printed on stderr).
    #[arg(long, value_name = "ADDR:PORT")]
    pub(super) bind: Option<SocketAddr>,
    /// Most receivers subscribed at once; 0 turns subscriptions off.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_SUBSCRIBERS)]
    pub(super) max_subscribers: usize,
    /// How long a subscription lasts without a heartbeat (e.g. 5s, 300ms).
    // The library's DEFAULT_LEASE; a test below keeps the two equal.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub(super) lease: Duration,
    /// Pre-shared key file: 64 hex digits (e.g. `openssl rand -hex 32`),
    /// mode 600. Every datagram is then sealed and checked with it; both
    /// sides need the same file.
    #[arg(long, value_name = "PATH")]
    pub(super) key_file: Option<PathBuf>,
    #[command(flatten)]
    pub(super) world: WorldArgs,
    /// Stop after this long (e.g. 10s). Default: until Ctrl-C.
    #[arg(long, value_parser = parse_duration)]
    pub(super) duration: Option<Duration>,
    /// How datagrams are handed to the kernel: gso (sendmmsg, with UDP GSO
    /// where the kernel takes it), sendmmsg, or sendto (one call per
    /// datagram per destination).
    #[arg(long, value_name = "sendto|sendmmsg|gso", default_value_t = SendPath::Gso)]
    pub(super) send_path: SendPath,
    /// Print the final figures as one JSON object on stdout.
    #[arg(long)]
    pub(super) json: bool,
}

impl BroadcastArgs {
    /// The broadcaster these flags describe, sealing with `key`. With no
    /// destination of any kind it sends to 127.0.0.1:47474.
    pub(super) fn config(&self, key: Option<Key>) -> BroadcastConfig {
        let mut to = self.to.clone();
        if to.is_empty() && self.group.is_none() && self.broadcast.is_empty() && self.bind.is_none()
        {
            to.push(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), DEFAULT_PORT));
        }
        let defaults = BroadcastConfig::default();
        self.world.apply(BroadcastConfig {
            destinations: to,
            group: self.group,
            broadcast: self.broadcast.clone(),
            interface: interface_for(self.interface, self.group),
            multicast_ttl: self.ttl,
            bind: self.bind.unwrap_or(defaults.bind),
            max_subscribers: self.max_subscribers,
            lease: self.lease,
            duration: self.duration,
            send_path: self.send_path,
            key,
            ..defaults
        })
    }
}

#[derive(Args, Debug)]
pub(super) struct ReceiveArgs {
    /// Unicast address to listen on. Default 127.0.0.1:47474 when neither
    /// --group nor --subscribe is given, 0.0.0.0:0 when subscribing.
    #[arg(long, value_name = "ADDR:PORT")]
    pub(super) bind: Option<SocketAddr>,
    /// Multicast group to join, e.g. 239.255.74.74:47474.
    #[arg(long, value_name = "ADDR:PORT")]
    pub(super) group: Option<SocketAddr>,
    /// Local address of the interface to join the group on (an IPv6 address
    /// for an IPv6 group). Default 127.0.0.1, or ::1 for an IPv6 group.
    #[arg(long, value_name = "IP")]
    pub(super) interface: Option<IpAddr>,
    /// Subscribe to the broadcaster at this address (its --bind): it then
    /// sends the stream here by unicast while this receiver runs.
    #[arg(long, value_name = "ADDR:PORT")]
    pub(super) subscribe: Option<SocketAddr>,
    /// Stop after this long (e.g. 10s). Default: until Ctrl-C.
    #[arg(long, value_parser = parse_duration)]
    pub(super) duration: Option<Duration>,
    /// Print the final figures as one JSON object on stdout instead of the summary.
    #[arg(long)]
    pub(super) json: bool,
    /// Entity ids accepted are 0..CAPACITY (bounds memory).
    #[arg(long, default_value_t = tickcast::core::world::DEFAULT_CAPACITY)]
    pub(super) capacity: u32,
    /// How the receiver thread waits: wait (sleep until a datagram, least
    /// CPU), predict (sleep until just before the next tick is due, then
    /// busy-poll: low latency for a few % of a core), busy-poll (a whole core).
    #[arg(long, value_enum, default_value_t = ModeArg::Wait)]
    pub(super) mode: ModeArg,
    /// Pre-shared key file: 64 hex digits (e.g. `openssl rand -hex 32`),
    /// mode 600. Every datagram is then sealed and checked with it; both
    /// sides need the same file.
    #[arg(long, value_name = "PATH")]
    pub(super) key_file: Option<PathBuf>,
}

impl ReceiveArgs {
    /// The receiver these flags describe, opening with `key`, logging
    /// rejected datagrams. With neither --bind, --group nor --subscribe it
    /// listens on 127.0.0.1:47474.
    pub(super) fn config(&self, key: Option<Key>) -> ReceiverConfig {
        let bind = match (self.bind, self.group, self.subscribe) {
            (None, None, None) => Some(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), DEFAULT_PORT)),
            // Subscribing without --bind: the library picks 0.0.0.0:0 (or [::]:0).
            (b, _, _) => b,
        };
        ReceiverConfig {
            bind,
            key,
            log_rejects: true,
            group: self.group,
            interface: interface_for(self.interface, self.group),
            capacity: self.capacity,
            subscribe: self.subscribe,
            mode: self.mode.into(),
            ..ReceiverConfig::default()
        }
    }
}

/// `--mode` values, mapped onto [`ReceiveMode`].
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(super) enum ModeArg {
    Wait,
    Predict,
    BusyPoll,
}

impl From<ModeArg> for ReceiveMode {
    fn from(m: ModeArg) -> ReceiveMode {
        match m {
            ModeArg::Wait => ReceiveMode::Wait,
            ModeArg::Predict => ReceiveMode::Predict,
            ModeArg::BusyPoll => ReceiveMode::BusyPoll,
        }
    }
}

#[derive(Args, Debug)]
pub(super) struct DemoArgs {
    /// How long the broadcaster runs.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub(super) duration: Duration,
    /// Number of receivers.
    #[arg(long, default_value_t = 3)]
    pub(super) receivers: usize,
    /// Pre-shared key file: 64 hex digits (e.g. `openssl rand -hex 32`),
    /// mode 600. Every datagram is then sealed and checked with it; both
    /// sides need the same file.
    #[arg(long, value_name = "PATH")]
    pub(super) key_file: Option<PathBuf>,
    #[command(flatten)]
    pub(super) world: WorldArgs,
}

impl DemoArgs {
    /// What clap cannot check: at least one receiver.
    pub(super) fn check(&self) -> Result<()> {
        if self.receivers == 0 {
            bail!("--receivers must be at least 1");
        }
        Ok(())
    }

    /// Each receiver: an ephemeral port of 127.0.0.1, opening with `key`.
    pub(super) fn receiver_config(&self, key: Option<Key>) -> ReceiverConfig {
        ReceiverConfig {
            key,
            ..ReceiverConfig::unicast((Ipv4Addr::LOCALHOST, 0).into())
        }
    }

    /// The broadcaster, sending to `receivers` for `--duration`.
    pub(super) fn broadcast_config(
        &self,
        receivers: Vec<SocketAddr>,
        key: Option<Key>,
    ) -> BroadcastConfig {
        self.world.apply(BroadcastConfig {
            destinations: receivers,
            duration: Some(self.duration),
            key,
            ..BroadcastConfig::default()
        })
    }
}

/// The interface a group is joined or sent on: the one given, else the
/// loopback address of the group's family.
fn interface_for(interface: Option<IpAddr>, group: Option<SocketAddr>) -> IpAddr {
    interface.unwrap_or(match group {
        Some(SocketAddr::V6(_)) => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_subscription_defaults_are_the_library_defaults() {
        let cli = Cli::try_parse_from(["tickcast", "broadcast"]).unwrap();
        let Command::Broadcast(a) = cli.command else {
            panic!("parsed as another command");
        };
        assert_eq!(a.lease, tickcast::core::subscription::DEFAULT_LEASE);
        assert_eq!(a.max_subscribers, DEFAULT_MAX_SUBSCRIBERS);
        assert_eq!(a.bind, None);
    }
}
