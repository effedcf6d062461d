//! The raw flags of `broadcast`, `receive` and `demo` (clap derive
//! structs), their checks, and their translation into the library's
//! configs ([`BroadcastConfig`], [`ReceiverConfig`]), which the library
//! validates again when it starts. Nothing here runs or prints: `bench`
//! and `impair` keep their flags beside their running, in `bench.rs` and
//! `impair.rs`.

pub(crate) mod bench;
pub(crate) mod impair;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::{ArgAction, Args, Parser, Subcommand};

use tickcast::core::sim::WorldKind;
use tickcast::core::source::SourceFilter;
use tickcast::core::subscription::DEFAULT_MAX_SUBSCRIBERS;
use tickcast::runtime::broadcaster::{BroadcastConfig, SendPath};
use tickcast::runtime::realtime::{self, RealtimeConfig, MAX_PRIORITY, MIN_PRIORITY};
use tickcast::runtime::receiver::{ReceiveMode, ReceiverConfig};
use tickcast::runtime::resolve;
use tickcast::wire::auth::Key;

/// Default port for `broadcast --to` and `receive --bind` when none is given.
const DEFAULT_PORT: u16 = 47_474;

/// Broadcast real-time game state over UDP and measure exactly what each receiver gets.
#[derive(Parser, Debug)]
#[command(name = "tickcast", version, about, arg_required_else_help = true)]
pub(super) struct Cli {
    /// Print less on stderr: -q hides the warnings (errors only), -qq
    /// hides the errors' log lines too. RUST_LOG, when set, overrides.
    #[arg(short, long, global = true, action = ArgAction::Count, conflicts_with = "verbose")]
    pub(super) quiet: u8,
    /// Print more on stderr: -v informational lines (subscribers coming
    /// and going), -vv debug, -vvv trace. RUST_LOG, when set, overrides.
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub(super) verbose: u8,
    #[command(subcommand)]
    pub(super) command: Command,
}

impl Cli {
    /// The log level -q and -v ask for; warnings and errors by default.
    pub(super) fn log_level(&self) -> log::LevelFilter {
        use log::LevelFilter::{Debug, Error, Info, Off, Trace, Warn};
        match (self.quiet, self.verbose) {
            (0, 0) => Warn,
            (1, _) => Error,
            (_, 0) => Off,
            (_, 1) => Info,
            (_, 2) => Debug,
            _ => Trace,
        }
    }
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
    Bench(bench::BenchArgs),
    /// Relay UDP through a seeded link conditioner (loss, bursts, delay, jitter, reordering, duplication) and count exactly what it did.
    Impair(impair::ImpairArgs),
    /// Print a completion script for a shell, e.g. `tickcast completions bash > /etc/bash_completion.d/tickcast`.
    Completions {
        /// The shell to complete in.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// A flag value clap took but that cannot be used (a rate of 0, a budget
/// too small, a TTL above 255, no receivers): what the library's config
/// checks refuse in a config built from flags. `main` prints it in one
/// line and exits with 2, as for clap's own errors; errors at run time
/// (a port in use, a bad key file) exit with 1.
#[derive(Debug)]
pub(super) struct FlagError(anyhow::Error);

impl std::fmt::Display for FlagError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&super::one_line(&self.0))
    }
}

impl std::error::Error for FlagError {}

/// `e` as a [`FlagError`]: a bad flag value, exit code 2.
pub(super) fn bad_flag(e: impl Into<anyhow::Error>) -> anyhow::Error {
    FlagError(e.into()).into()
}

/// A `--duration`-style value: `10s`, `500ms`, `2m`.
pub(super) fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 10s, 500ms, 2m)"))
}

/// A run's `--duration`: a [`parse_duration`] value above zero (a run of
/// no time would achieve nothing).
pub(super) fn parse_run_duration(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        Duration::ZERO => Err("a run must last more than 0 (e.g. 10s, 500ms)".into()),
        d => Ok(d),
    }
}

/// `--freshness`: a window, or `off` (no clock check).
#[derive(Clone, Copy, Debug)]
pub(super) struct Freshness(Option<Duration>);

fn parse_freshness(s: &str) -> Result<Freshness, String> {
    if s == "off" {
        return Ok(Freshness(None));
    }
    parse_duration(s).map(|d| Freshness(Some(d)))
}

/// `--realtime` without a value: [`realtime::DEFAULT_PRIORITY`] (a test
/// keeps the two equal).
pub(super) const DEFAULT_PRIORITY_ARG: &str = "10";

/// `--realtime[=PRIORITY]` and `--cpu N` of `broadcast` and `receive`: for
/// the one thread that sends or receives.
#[derive(Args, Debug)]
pub(super) struct RealtimeArgs {
    /// Run the sending (broadcast) or receiving (receive) thread under
    /// SCHED_FIFO at PRIORITY (1-99, default 10) and lock the process's
    /// memory (mlockall). Needs root, or CAP_SYS_NICE (or an RLIMIT_RTPRIO
    /// ≥ PRIORITY) and CAP_IPC_LOCK (or a large enough RLIMIT_MEMLOCK).
    #[arg(
        long,
        value_name = "PRIORITY",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = DEFAULT_PRIORITY_ARG,
        value_parser = clap::value_parser!(u8).range(i64::from(MIN_PRIORITY)..=i64::from(MAX_PRIORITY)),
    )]
    pub(super) realtime: Option<u8>,
    /// Pin the sending (broadcast) or receiving (receive) thread to CPU N,
    /// one this process may run on.
    #[arg(long, value_name = "N")]
    pub(super) cpu: Option<usize>,
}

impl RealtimeArgs {
    /// `--realtime` as the library's config.
    pub(super) fn realtime(&self) -> Option<RealtimeConfig> {
        self.realtime.map(RealtimeConfig::fifo)
    }

    /// `--cpu`, checked against the CPUs this process may run on: one
    /// it may not is a [`FlagError`] (exit 2), found before anything starts.
    pub(super) fn cpu(&self) -> Result<Option<usize>> {
        check_cpus(self.cpu.iter().copied())?;
        Ok(self.cpu)
    }
}

/// Each CPU of `cpus` must be one this process may run on; else a [`FlagError`].
pub(super) fn check_cpus(cpus: impl IntoIterator<Item = usize>) -> Result<()> {
    for cpu in cpus {
        realtime::check_cpu(cpu).map_err(bad_flag)?;
    }
    Ok(())
}

/// How snapshots are encoded on the wire.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum EncodingArg {
    /// Full parts: f32 coordinates, 16 bytes an entity (kind 1).
    #[default]
    Full,
    /// Compact parts: quantized, delta-coded against each entity's
    /// keyframe, change-only (protocol version 2's kind 6).
    Compact,
}

/// The snapshot encoding's flags, shared by `broadcast`, `demo` and `bench`.
#[derive(Args, Debug, Clone)]
pub(crate) struct EncodingArgs {
    /// How snapshots are encoded: full (f32 coordinates, 16 bytes an entity)
    /// or compact (quantized and delta-coded, a few bytes an entity).
    #[arg(long, value_enum, default_value_t = EncodingArg::Full)]
    pub(crate) encoding: EncodingArg,
    /// With --encoding compact: world units per quantum, the precision
    /// receivers hold positions to (default 0.001: 1 mm; its inverse must
    /// be a whole number).
    #[arg(long, value_name = "UNITS", value_parser = precision)]
    pub(crate) precision: Option<f64>,
    /// With --encoding compact: the largest absolute coordinate, in world
    /// units (default 1000000).
    #[arg(long, value_name = "UNITS")]
    pub(crate) bound: Option<f64>,
    /// With --encoding compact: ticks between an entity's keyframes (what
    /// a lost keyframe costs at most, and how long a late joiner waits for
    /// every entity; default 60).
    #[arg(long, value_name = "TICKS")]
    pub(crate) keyframe_interval: Option<u16>,
}

/// A precision whose inverse is a whole number of quanta per unit.
fn precision(s: &str) -> Result<f64, String> {
    let p: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    let per_unit = 1.0 / p;
    if !(p > 0.0
        && per_unit.is_finite()
        && (per_unit - per_unit.round()).abs() < 1e-6 * per_unit
        && per_unit.round() <= f64::from(u32::MAX))
    {
        return Err(format!(
            "{s} is not 1/N of a world unit for a whole N (e.g. 0.001, 0.01, 0.5, 1)"
        ));
    }
    Ok(p)
}

impl EncodingArgs {
    /// The compact config these flags ask for, if any: a compact flag
    /// without `--encoding compact` is a [`FlagError`] (it would change
    /// nothing).
    pub(crate) fn compact(&self) -> Result<Option<tickcast::core::compact::CompactConfig>> {
        use tickcast::core::compact::CompactConfig;
        if self.encoding != EncodingArg::Compact {
            let given = [
                ("--precision", self.precision.is_some()),
                ("--bound", self.bound.is_some()),
                ("--keyframe-interval", self.keyframe_interval.is_some()),
            ];
            return match given.iter().find(|(_, set)| *set) {
                Some((flag, _)) => Err(bad_flag(anyhow::anyhow!(
                    "{flag} applies only with --encoding compact"
                ))),
                None => Ok(None),
            };
        }
        let defaults = CompactConfig::default();
        Ok(Some(CompactConfig {
            quanta_per_unit: self
                .precision
                .map_or(defaults.quanta_per_unit, |p| (1.0 / p).round() as u32),
            bound: self.bound.map_or(defaults.bound, |b| b as f32),
            keyframe_interval: self.keyframe_interval.unwrap_or(defaults.keyframe_interval),
        }))
    }
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
    /// The simulated world: linear (constant velocities in a box, up to 100
    /// units/s) or players (avatars steering about a ground plane, up to 10
    /// units/s, a fifth of them standing still at any time).
    #[arg(long, value_enum, default_value_t = WorldArg::Linear)]
    pub(super) world: WorldArg,
    /// Largest datagram to send, in bytes; a tick is split into parts that fit.
    #[arg(long, value_name = "BYTES", default_value_t = tickcast::wire::DEFAULT_PAYLOAD_BUDGET)]
    pub(super) payload_budget: usize,
    #[command(flatten)]
    pub(super) encoding: EncodingArgs,
}

impl WorldArgs {
    /// `config` with the world these flags describe (a [`FlagError`] for a
    /// compact flag without compact encoding).
    fn apply(&self, config: BroadcastConfig) -> Result<BroadcastConfig> {
        Ok(BroadcastConfig {
            entities: self.entities,
            rate_hz: self.rate,
            seed: self.seed,
            world: self.world.into(),
            payload_budget: self.payload_budget,
            compact: self.encoding.compact()?,
            ..config
        })
    }
}

/// `--world` values, mapped onto [`WorldKind`] (a test keeps the names
/// equal).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum WorldArg {
    Linear,
    Players,
}

impl From<WorldArg> for WorldKind {
    fn from(w: WorldArg) -> WorldKind {
        match w {
            WorldArg::Linear => WorldKind::Linear,
            WorldArg::Players => WorldKind::Players,
        }
    }
}

#[derive(Args, Debug)]
pub(super) struct BroadcastArgs {
    /// Unicast destination (repeatable). Default 127.0.0.1:47474 when none of
    /// --to, --group, --broadcast and --bind is given.
    /// An address or a host name: 127.0.0.1:47474, localhost:47474.
    #[arg(long = "to", value_name = "ADDR:PORT")]
    pub(super) to: Vec<HostPort>,
    /// Multicast group to send to, e.g. 239.255.74.74:47474 or [ff12::7474]:47474.
    #[arg(long, value_name = "ADDR:PORT")]
    pub(super) group: Option<HostPort>,
    /// Subnet broadcast address to send to (repeatable, IPv4), e.g. 192.168.1.255:47474.
    #[arg(long, value_name = "ADDR:PORT")]
    pub(super) broadcast: Vec<HostPort>,
    /// Interface multicast leaves through: its name (eth0, lo), one of its
    /// addresses (of the group's family), or an IPv6 address with its
    /// scope (fe80::1%eth0). Default 127.0.0.1, or ::1 for an IPv6 group.
    #[arg(long, value_name = "IP|NAME", requires = "group")]
    pub(super) interface: Option<String>,
    /// Multicast TTL (hops, 0 to 255); 1 stays on the local network.
    #[arg(long, default_value_t = 1, requires = "group")]
    pub(super) ttl: u32,
    /// Local address to send from, where receivers subscribe (--subscribe).
    /// Default 0.0.0.0:0 (a free port, printed on stderr).
    #[arg(long, value_name = "ADDR:PORT")]
    pub(super) bind: Option<HostPort>,
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
    #[arg(long, value_parser = parse_run_duration)]
    pub(super) duration: Option<Duration>,
    /// How datagrams are handed to the kernel: gso (sendmmsg, with UDP GSO
    /// where the kernel takes it), sendmmsg, or sendto (one call per
    /// datagram per destination).
    #[arg(long, value_name = "sendto|sendmmsg|gso", default_value_t = SendPath::Gso)]
    pub(super) send_path: SendPath,
    /// Print the final figures as one JSON object on stdout.
    #[arg(long)]
    pub(super) json: bool,
    #[command(flatten)]
    pub(super) thread: RealtimeArgs,
}

impl BroadcastArgs {
    /// The broadcaster these flags describe, sealing with `key`, checked
    /// (a [`FlagError`] if the library refuses it). With no destination of
    /// any kind it sends to 127.0.0.1:47474.
    pub(super) fn config(&self, key: Option<Key>) -> Result<BroadcastConfig> {
        let mut to = resolve_all(&self.to)?;
        if to.is_empty() && self.group.is_none() && self.broadcast.is_empty() && self.bind.is_none()
        {
            to.push(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), DEFAULT_PORT));
        }
        let group = self.group.as_ref().map(HostPort::resolve).transpose()?;
        let defaults = BroadcastConfig::default();
        let config = self.world.apply(BroadcastConfig {
            destinations: to,
            group,
            broadcast: resolve_all(&self.broadcast)?,
            interface: interface_for(self.interface.as_deref(), group)?,
            multicast_ttl: self.ttl,
            bind: match &self.bind {
                Some(b) => b.resolve()?,
                None => defaults.bind,
            },
            max_subscribers: self.max_subscribers,
            lease: self.lease,
            duration: self.duration,
            send_path: self.send_path,
            key,
            realtime: self.thread.realtime(),
            cpu: self.thread.cpu()?,
            ..defaults
        })?;
        config.validate_simulated().map_err(bad_flag)?;
        Ok(config)
    }
}

#[derive(Args, Debug)]
pub(super) struct ReceiveArgs {
    /// Unicast address to listen on. Default 127.0.0.1:47474 when neither
    /// --group nor --subscribe is given, 0.0.0.0:0 when subscribing.
    #[arg(long, value_name = "ADDR:PORT")]
    pub(super) bind: Option<HostPort>,
    /// Multicast group to join, e.g. 239.255.74.74:47474.
    #[arg(long, value_name = "ADDR:PORT")]
    pub(super) group: Option<HostPort>,
    /// Interface to join the group on: its name (eth0, lo), one of its
    /// addresses (of the group's family), or an IPv6 address with its
    /// scope (fe80::1%eth0). Default 127.0.0.1, or ::1 for an IPv6 group.
    #[arg(long, value_name = "IP|NAME", requires = "group")]
    pub(super) interface: Option<String>,
    /// Subscribe to the broadcaster at this address or host name (its
    /// --bind): it then sends the stream here by unicast while this
    /// receiver runs.
    #[arg(long, value_name = "ADDR:PORT")]
    pub(super) subscribe: Option<HostPort>,
    /// Stop after this long (e.g. 10s). Default: until Ctrl-C.
    #[arg(long, value_parser = parse_run_duration)]
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
    /// Take each datagram alone, not in the runs the kernel coalesces
    /// (UDP_GRO, on by default on Linux): more CPU, but a run dropped at a
    /// full socket counts in socket_drops once per datagram, not once.
    #[arg(long)]
    pub(super) no_gro: bool,
    /// Pre-shared key file: 64 hex digits (e.g. `openssl rand -hex 32`),
    /// mode 600. Every datagram is then sealed and checked with it; both
    /// sides need the same file.
    #[arg(long, value_name = "PATH")]
    pub(super) key_file: Option<PathBuf>,
    /// With --key-file: refuse sealed datagrams sent further than this from
    /// their arrival on this host's clock (counted as stale_sealed). Widen it
    /// for a sender whose clock is further off; `off` checks no clock.
    #[arg(long, value_name = "DURATION|off", value_parser = parse_freshness, default_value = "2s", requires = "key_file")]
    pub(super) freshness: Freshness,
    /// Take the stream only from this source, an address or address:port
    /// (e.g. the broadcaster's 192.168.1.10); datagrams from anywhere else
    /// are dropped and counted as foreign. Without a key, this is what keeps
    /// other hosts' datagrams out.
    #[arg(long, value_name = "ADDR[:PORT]")]
    pub(super) from: Option<SourceFilter>,
    #[command(flatten)]
    pub(super) thread: RealtimeArgs,
}

impl ReceiveArgs {
    /// The receiver these flags describe, opening with `key`, logging
    /// rejected datagrams, checked (a [`FlagError`] if the library refuses
    /// it). With neither --bind, --group nor --subscribe it listens on
    /// 127.0.0.1:47474.
    pub(super) fn config(&self, key: Option<Key>) -> Result<ReceiverConfig> {
        let group = self.group.as_ref().map(HostPort::resolve).transpose()?;
        let subscribe = self.subscribe.as_ref().map(HostPort::resolve).transpose()?;
        let bind = match (&self.bind, group, subscribe) {
            (None, None, None) => Some(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), DEFAULT_PORT)),
            // Subscribing without --bind: the library picks 0.0.0.0:0 (or [::]:0).
            (b, _, _) => b.as_ref().map(HostPort::resolve).transpose()?,
        };
        let config = ReceiverConfig {
            bind,
            key,
            log_rejects: true,
            group,
            interface: interface_for(self.interface.as_deref(), group)?,
            capacity: self.capacity,
            subscribe,
            mode: self.mode.into(),
            freshness: self.freshness.0,
            from: self.from,
            realtime: self.thread.realtime(),
            cpu: self.thread.cpu()?,
            gro: !self.no_gro,
            ..ReceiverConfig::default()
        };
        config.validate().map_err(bad_flag)?;
        Ok(config)
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
    #[arg(long, value_parser = parse_run_duration, default_value = "10s")]
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
    /// What clap cannot check: at least one receiver, and a world the
    /// broadcaster takes (each a [`FlagError`]).
    pub(super) fn check(&self) -> Result<()> {
        if self.receivers == 0 {
            return Err(bad_flag(anyhow::anyhow!("--receivers must be at least 1")));
        }
        let placeholder = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), DEFAULT_PORT);
        self.broadcast_config(vec![placeholder], None)?
            .validate_simulated()
            .map_err(bad_flag)
    }

    /// Each receiver: an ephemeral port of 127.0.0.1, opening with `key`.
    pub(super) fn receiver_config(&self, key: Option<Key>) -> ReceiverConfig {
        ReceiverConfig {
            key,
            ..ReceiverConfig::unicast((Ipv4Addr::LOCALHOST, 0).into())
        }
    }

    /// The broadcaster, sending to `receivers` for `--duration` (a
    /// [`FlagError`] for a compact flag without compact encoding).
    pub(super) fn broadcast_config(
        &self,
        receivers: Vec<SocketAddr>,
        key: Option<Key>,
    ) -> Result<BroadcastConfig> {
        self.world.apply(BroadcastConfig {
            destinations: receivers,
            duration: Some(self.duration),
            key,
            ..BroadcastConfig::default()
        })
    }
}

/// The interface a group is joined or sent on, by its address: the one
/// `--interface` names (an address, a name, `ADDR%NAME`), of the group's
/// family, else the loopback address of that family. A name that does not
/// resolve is a [`FlagError`].
fn interface_for(interface: Option<&str>, group: Option<SocketAddr>) -> Result<IpAddr> {
    let ipv6 = group.is_some_and(|g| g.is_ipv6());
    match interface {
        Some(spec) => resolve::interface_addr(spec, ipv6).map_err(bad_flag),
        None if ipv6 => Ok(IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)),
        None => Ok(IpAddr::V4(Ipv4Addr::LOCALHOST)),
    }
}

/// An `ADDR:PORT` flag as typed: an address (`127.0.0.1:47474`,
/// `[::1]:47474`) or a host name and port (`localhost:47474`). clap checks
/// its shape; the name is resolved when the config is built
/// ([`resolve::resolve`]), and one that does not resolve is a
/// [`FlagError`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct HostPort(String);

impl std::str::FromStr for HostPort {
    type Err = String;

    fn from_str(s: &str) -> Result<HostPort, String> {
        let shaped = s.parse::<SocketAddr>().is_ok()
            || s.rsplit_once(':').is_some_and(|(host, port)| {
                !host.is_empty() && !host.contains(':') && port.parse::<u16>().is_ok()
            });
        if shaped {
            Ok(HostPort(s.to_string()))
        } else {
            Err("expected ADDR:PORT or HOST:PORT (e.g. 127.0.0.1:47474, [::1]:47474, localhost:47474)".into())
        }
    }
}

impl HostPort {
    /// The address it names, resolved now.
    pub(super) fn resolve(&self) -> Result<SocketAddr> {
        resolve::resolve(&self.0).map_err(bad_flag)
    }
}

/// Every one of `flags`, resolved.
pub(super) fn resolve_all(flags: &[HostPort]) -> Result<Vec<SocketAddr>> {
    flags.iter().map(HostPort::resolve).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_and_verbose_set_the_log_level() {
        use log::LevelFilter::{Debug, Error, Info, Off, Trace, Warn};
        for (args, want) in [
            (&["tickcast", "demo"][..], Warn),
            (&["tickcast", "-q", "demo"], Error),
            (&["tickcast", "demo", "-qq"], Off),
            (&["tickcast", "-v", "demo"], Info),
            (&["tickcast", "demo", "-vv"], Debug),
            (&["tickcast", "--verbose", "-vvv", "demo"], Trace),
        ] {
            let cli = Cli::try_parse_from(args).unwrap();
            assert_eq!(cli.log_level(), want, "{args:?}");
        }
        assert!(Cli::try_parse_from(["tickcast", "-q", "-v", "demo"]).is_err());
    }

    #[test]
    fn realtime_without_a_value_is_the_library_default_priority() {
        assert_eq!(
            DEFAULT_PRIORITY_ARG.parse::<u8>().unwrap(),
            realtime::DEFAULT_PRIORITY
        );
        let parse = |args: &[&str]| {
            let cli = Cli::try_parse_from(args)?;
            let Command::Receive(a) = cli.command else {
                panic!("parsed as another command");
            };
            Ok::<_, clap::Error>(a.thread.realtime)
        };
        assert_eq!(parse(&["tickcast", "receive"]).unwrap(), None);
        assert_eq!(
            parse(&["tickcast", "receive", "--realtime"]).unwrap(),
            Some(realtime::DEFAULT_PRIORITY)
        );
        assert_eq!(
            parse(&["tickcast", "receive", "--realtime=42"]).unwrap(),
            Some(42)
        );
        for bad in ["--realtime=0", "--realtime=100", "--realtime=x"] {
            assert!(parse(&["tickcast", "receive", bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn world_names_are_the_library_names_and_reach_the_config() {
        use clap::ValueEnum;
        for w in WorldArg::value_variants() {
            let name = w.to_possible_value().unwrap().get_name().to_string();
            assert_eq!(WorldKind::from(*w).name(), name);
        }
        assert_eq!(WorldArg::value_variants().len(), WorldKind::ALL.len());
        let world = |args: &[&str]| {
            let Command::Broadcast(a) = Cli::try_parse_from(args).unwrap().command else {
                panic!("parsed as another command");
            };
            a.config(None).unwrap().world
        };
        assert_eq!(world(&["tickcast", "broadcast"]), WorldKind::default());
        assert_eq!(
            world(&["tickcast", "broadcast", "--world", "players"]),
            WorldKind::Players
        );
        let Command::Demo(d) = Cli::try_parse_from(["tickcast", "demo", "--world", "players"])
            .unwrap()
            .command
        else {
            panic!("parsed as another command");
        };
        assert_eq!(
            d.broadcast_config(vec![], None).unwrap().world,
            WorldKind::Players
        );
        assert!(Cli::try_parse_from(["tickcast", "demo", "--world", "nope"]).is_err());
    }

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
