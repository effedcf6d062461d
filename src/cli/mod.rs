//! The `tickcast` command line: clap derive structs for the raw flags, turned
//! into the library's validated configs, and the three commands. Everything
//! that does work lives in the library; this file parses, wires and prints.

mod bench;
mod impair;
mod render;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};

use tickcast::core::figures::{Figures, Summary};
use tickcast::core::histogram::LatencySummary;
use tickcast::core::source::SourceFilter;
use tickcast::core::subscription::DEFAULT_MAX_SUBSCRIBERS;
use tickcast::runtime::broadcaster::{BroadcastConfig, BroadcastFigures, Broadcaster};
use tickcast::runtime::receiver::{ReceiveMode, Receiver, ReceiverConfig};
use tickcast::wire::auth::Key;

/// Default port for `broadcast --to` and `receive --bind` when none is given.
const DEFAULT_PORT: u16 = 47_474;
/// How long receivers keep listening after the broadcaster stops, so its
/// goodbye (and anything still in flight) is counted.
const GRACE: Duration = Duration::from_millis(200);

/// Broadcast real-time game state over UDP and measure exactly what each receiver gets.
#[derive(Parser, Debug)]
#[command(name = "tickcast", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
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
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 10s, 500ms, 2m)"))
}

/// `--freshness`: a window, or `off` (no clock check).
#[derive(Clone, Copy, Debug)]
struct Freshness(Option<Duration>);

fn parse_freshness(s: &str) -> Result<Freshness, String> {
    if s == "off" {
        return Ok(Freshness(None));
    }
    parse_duration(s).map(|d| Freshness(Some(d)))
}

#[derive(Args, Debug)]
struct WorldArgs {
    /// Number of entities in the simulated world.
    #[arg(long, default_value_t = 100)]
    entities: u32,
    /// Ticks per second.
    #[arg(long, value_name = "HZ", default_value_t = 60.0)]
    rate: f64,
    /// Seed of the simulated world's motion.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Largest datagram to send, in bytes; a tick is split into parts that fit.
    #[arg(long, value_name = "BYTES", default_value_t = tickcast::wire::DEFAULT_PAYLOAD_BUDGET)]
    payload_budget: usize,
}

#[derive(Args, Debug)]
struct BroadcastArgs {
    /// Unicast destination (repeatable). Default 127.0.0.1:47474 when none of
    /// --to, --group, --broadcast and --bind is given.
    #[arg(long = "to", value_name = "ADDR:PORT")]
    to: Vec<SocketAddr>,
    /// Multicast group to send to, e.g. 239.255.74.74:47474 or [ff12::7474]:47474.
    #[arg(long, value_name = "ADDR:PORT")]
    group: Option<SocketAddr>,
    /// Subnet broadcast address to send to (repeatable, IPv4), e.g. 192.168.1.255:47474.
    #[arg(long, value_name = "ADDR:PORT")]
    broadcast: Vec<SocketAddr>,
    /// Local address of the interface multicast leaves through (an IPv6
    /// address for an IPv6 group). Default 127.0.0.1, or ::1 for an IPv6 group.
    #[arg(long, value_name = "IP")]
    interface: Option<IpAddr>,
    /// Multicast TTL (hops); 1 stays on the local network.
    #[arg(long, default_value_t = 1)]
    ttl: u32,
    /// Local address to send from, where receivers subscribe (--subscribe).
    /// Default 0.0.0.0:0 (a free port, printed on stderr).
    #[arg(long, value_name = "ADDR:PORT")]
    bind: Option<SocketAddr>,
    /// Most receivers subscribed at once; 0 turns subscriptions off.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_SUBSCRIBERS)]
    max_subscribers: usize,
    /// How long a subscription lasts without a heartbeat (e.g. 5s, 300ms).
    // The library's DEFAULT_LEASE; a test below keeps the two equal.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    lease: Duration,
    /// Pre-shared key file: 64 hex digits (e.g. `openssl rand -hex 32`),
    /// mode 600. Every datagram is then sealed and checked with it; both
    /// sides need the same file.
    #[arg(long, value_name = "PATH")]
    key_file: Option<PathBuf>,
    #[command(flatten)]
    world: WorldArgs,
    /// Stop after this long (e.g. 10s). Default: until Ctrl-C.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Print the final figures as one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct ReceiveArgs {
    /// Unicast address to listen on. Default 127.0.0.1:47474 when neither
    /// --group nor --subscribe is given, 0.0.0.0:0 when subscribing.
    #[arg(long, value_name = "ADDR:PORT")]
    bind: Option<SocketAddr>,
    /// Multicast group to join, e.g. 239.255.74.74:47474.
    #[arg(long, value_name = "ADDR:PORT")]
    group: Option<SocketAddr>,
    /// Local address of the interface to join the group on (an IPv6 address
    /// for an IPv6 group). Default 127.0.0.1, or ::1 for an IPv6 group.
    #[arg(long, value_name = "IP")]
    interface: Option<IpAddr>,
    /// Subscribe to the broadcaster at this address (its --bind): it then
    /// sends the stream here by unicast while this receiver runs.
    #[arg(long, value_name = "ADDR:PORT")]
    subscribe: Option<SocketAddr>,
    /// Stop after this long (e.g. 10s). Default: until Ctrl-C.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Print the final figures as one JSON object on stdout instead of the summary.
    #[arg(long)]
    json: bool,
    /// Entity ids accepted are 0..CAPACITY (bounds memory).
    #[arg(long, default_value_t = tickcast::core::world::DEFAULT_CAPACITY)]
    capacity: u32,
    /// How the receiver thread waits: wait (sleep until a datagram, least
    /// CPU), predict (sleep until just before the next tick is due, then
    /// busy-poll: low latency for a few % of a core), busy-poll (a whole core).
    #[arg(long, value_enum, default_value_t = ModeArg::Wait)]
    mode: ModeArg,
    /// Pre-shared key file: 64 hex digits (e.g. `openssl rand -hex 32`),
    /// mode 600. Every datagram is then sealed and checked with it; both
    /// sides need the same file.
    #[arg(long, value_name = "PATH")]
    key_file: Option<PathBuf>,
    /// With --key-file: refuse sealed datagrams sent further than this from
    /// their arrival on this host's clock (counted as stale_sealed). Widen it
    /// for a sender whose clock is further off; `off` checks no clock.
    #[arg(long, value_name = "DURATION|off", value_parser = parse_freshness, default_value = "2s")]
    freshness: Freshness,
    /// Take the stream only from this source, an address or address:port
    /// (e.g. the broadcaster's 192.168.1.10); datagrams from anywhere else
    /// are dropped and counted as foreign. Without a key, this is what keeps
    /// other hosts' datagrams out.
    #[arg(long, value_name = "ADDR[:PORT]")]
    from: Option<SourceFilter>,
}

/// `--mode` values, mapped onto [`ReceiveMode`].
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum ModeArg {
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
struct DemoArgs {
    /// How long the broadcaster runs.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    duration: Duration,
    /// Number of receivers.
    #[arg(long, default_value_t = 3)]
    receivers: usize,
    /// Pre-shared key file: 64 hex digits (e.g. `openssl rand -hex 32`),
    /// mode 600. Every datagram is then sealed and checked with it; both
    /// sides need the same file.
    #[arg(long, value_name = "PATH")]
    key_file: Option<PathBuf>,
    #[command(flatten)]
    world: WorldArgs,
}

/// Parses the command line and runs it; bad flags get one line and exit code 2.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => {
            let rendered = e.render().to_string();
            let line = rendered.lines().next().unwrap_or("invalid arguments");
            eprintln!("tickcast: {}", line.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tickcast: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let stop = ctrl_c()?;
    match cli.command {
        Command::Broadcast(a) => broadcast(a, &stop),
        Command::Receive(a) => receive(a, &stop),
        Command::Demo(a) => demo(a, &stop),
        Command::Bench(a) => bench::bench(a, &stop),
        Command::Impair(a) => impair::run(a, &stop),
    }
}

/// A channel that receives one message per Ctrl-C.
fn ctrl_c() -> Result<mpsc::Receiver<()>> {
    let (tx, rx) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = tx.send(());
    })
    .context("cannot install the Ctrl-C handler")?;
    Ok(rx)
}

/// Calls `tick` once a second until `duration` passes (if any) or Ctrl-C.
/// Returns true if it ended because of Ctrl-C.
fn every_second(
    stop: &mpsc::Receiver<()>,
    duration: Option<Duration>,
    mut tick: impl FnMut(Duration) -> bool,
) -> bool {
    let start = Instant::now();
    let mut next = Duration::from_secs(1);
    loop {
        let end = duration.map_or(next, |d| d.min(next));
        let wait = end.saturating_sub(start.elapsed());
        match stop.recv_timeout(wait) {
            Ok(()) => return true,
            Err(mpsc::RecvTimeoutError::Disconnected) => std::thread::sleep(wait),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        let elapsed = start.elapsed();
        if duration.is_some_and(|d| elapsed >= d) {
            return false;
        }
        if elapsed >= next {
            if !tick(elapsed) {
                return false;
            }
            next += Duration::from_secs(1);
        }
    }
}

/// The key in `--key-file`, if given; its errors are one line naming the file.
fn load_key(path: Option<&PathBuf>) -> Result<Option<Key>> {
    Ok(path.map(Key::from_file).transpose()?)
}

/// Printed once when a keyless receiver gets sealed datagrams.
const AUTH_UNEXPECTED_WARNING: &str =
    "tickcast: receiving authenticated datagrams but no --key-file was given; they are not applied";

/// Printed once when a keyed receiver refuses sealed datagrams as stale.
const STALE_SEALED_WARNING: &str =
    "tickcast: refusing sealed datagrams sent outside the freshness window of this host's clock \
     (stale_sealed): replays, or the sender's clock is that far off; sync the clocks or widen --freshness";

fn world_config(w: &WorldArgs, config: BroadcastConfig) -> BroadcastConfig {
    BroadcastConfig {
        entities: w.entities,
        rate_hz: w.rate,
        seed: w.seed,
        payload_budget: w.payload_budget,
        ..config
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

fn broadcast(a: BroadcastArgs, stop: &mpsc::Receiver<()>) -> Result<ExitCode> {
    let mut to = a.to.clone();
    if to.is_empty() && a.group.is_none() && a.broadcast.is_empty() && a.bind.is_none() {
        to.push(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), DEFAULT_PORT));
    }
    let key = load_key(a.key_file.as_ref())?;
    let defaults = BroadcastConfig::default();
    let config = world_config(
        &a.world,
        BroadcastConfig {
            destinations: to.clone(),
            group: a.group,
            broadcast: a.broadcast.clone(),
            interface: interface_for(a.interface, a.group),
            multicast_ttl: a.ttl,
            bind: a.bind.unwrap_or(defaults.bind),
            max_subscribers: a.max_subscribers,
            lease: a.lease,
            duration: a.duration,
            key,
            ..defaults
        },
    );
    let b = Broadcaster::start(config)?;
    let mut targets: Vec<String> = to
        .iter()
        .map(|d| d.to_string())
        .chain(a.group.map(|g| format!("group {g}")))
        .chain(a.broadcast.iter().map(|d| format!("broadcast {d}")))
        .collect();
    if a.max_subscribers > 0 {
        targets.push(format!(
            "subscribers (up to {}, lease {})",
            a.max_subscribers,
            humantime::format_duration(a.lease)
        ));
    }
    eprintln!(
        "broadcasting {} entities at {} Hz from {} to {} (session {:016x})",
        a.world.entities,
        a.world.rate,
        b.local_addr(),
        targets.join(", "),
        b.session()
    );
    every_second(stop, a.duration, |t| {
        eprintln!("{}", broadcast_line(t, &b.figures()));
        !b.is_finished()
    });
    let f = b.stop();
    if a.json {
        println!("{}", serde_json::to_string(&f.summary())?);
    } else {
        eprintln!("{}", broadcast_line(Duration::ZERO, &f).trim_start());
    }
    Ok(ExitCode::SUCCESS)
}

fn broadcast_line(t: Duration, f: &BroadcastFigures) -> String {
    let s = f.summary();
    let mut line = format!(
        "{:>5.1}s  ticks sent {}  skipped {}  packets {}  datagrams {}  send errors {}  lateness p50 {} p99 {} max {}",
        t.as_secs_f64(),
        s.ticks_sent,
        s.ticks_skipped,
        s.packets_sent,
        s.datagrams_sent,
        s.send_errors,
        render::us(s.lateness_us.p50),
        render::us(s.lateness_us.p99),
        render::us(s.lateness_us.max),
    );
    if s.subscribers > 0 || s.accepted > 0 || s.bad_cookie > 0 {
        line.push_str(&format!(
            "  subscribers {} (accepted {} refused {} bad cookie {} expired {})",
            s.subscribers, s.accepted, s.refused_full, s.bad_cookie, s.expired
        ));
    }
    if let Some(e) = &s.last_error {
        line.push_str(&format!("  (last error: {e})"));
    }
    line
}

fn receive(a: ReceiveArgs, stop: &mpsc::Receiver<()>) -> Result<ExitCode> {
    let bind = match (a.bind, a.group, a.subscribe) {
        (None, None, None) => Some(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), DEFAULT_PORT)),
        // Subscribing without --bind: the library picks 0.0.0.0:0 (or [::]:0).
        (b, _, _) => b,
    };
    let key = load_key(a.key_file.as_ref())?;
    let keyless = key.is_none();
    let r = Receiver::start(ReceiverConfig {
        bind,
        key,
        log_rejects: true,
        group: a.group,
        interface: interface_for(a.interface, a.group),
        capacity: a.capacity,
        subscribe: a.subscribe,
        mode: a.mode.into(),
        freshness: a.freshness.0,
        from: a.from,
        ..ReceiverConfig::default()
    })?;
    let listening: Vec<String> = r.local_addrs().iter().map(|a| a.to_string()).collect();
    eprintln!("receiving on {}", listening.join(", "));
    if let Some(server) = a.subscribe {
        eprintln!("subscribing to {server} from {}", r.local_addr());
    }
    let mut prev = Figures::default();
    let (mut warned, mut warned_stale) = (false, false);
    let mut warn_once = |f: &Figures| {
        if keyless && f.auth_unexpected > 0 && !warned {
            warned = true;
            eprintln!("{AUTH_UNEXPECTED_WARNING}");
        }
        if f.stale_sealed > 0 && !warned_stale {
            warned_stale = true;
            eprintln!("{STALE_SEALED_WARNING}");
        }
    };
    every_second(stop, a.duration, |t| {
        let now = r.figures();
        warn_once(&now);
        let mut line = render::live_line("", t, &now, &prev);
        if a.subscribe.is_some() {
            let rtt = LatencySummary::of(&now.rtt);
            line.push_str(&format!(
                "  {}  rtt p50 {}",
                now.subscription,
                render::us(rtt.p50)
            ));
        }
        eprintln!("{line}");
        prev = now;
        r.is_running()
    });
    let f = r.stop().context("receiver thread failed")?;
    warn_once(&f);
    let s = f.summary();
    if a.json {
        println!("{}", serde_json::to_string(&s)?);
    } else {
        eprint!("{}", render::summary(&s));
        eprint!("{}", subscription_summary(&s));
    }
    Ok(ExitCode::SUCCESS)
}

/// The summary's lines about the subscription, round trip and what the
/// one-way figures are worth.
fn subscription_summary(s: &Summary) -> String {
    let mut out = String::new();
    if s.subscription != "none" {
        let r = &s.rtt_us;
        out.push_str(&format!(
            "  subscription {}  rtt p50 {} p99 {} max {} ({} samples)\n",
            s.subscription,
            render::us(r.p50),
            render::us(r.p99),
            render::us(r.max),
            r.samples
        ));
    }
    let verdict = if s.one_way_meaningful {
        "meaningful (same host, or within the round trip and never negative)"
    } else {
        "not known to be meaningful (clocks not shown to be shared or synced)"
    };
    out.push_str(&format!("  one-way latency {verdict}\n"));
    out
}

fn demo(a: DemoArgs, stop: &mpsc::Receiver<()>) -> Result<ExitCode> {
    if a.receivers == 0 {
        bail!("--receivers must be at least 1");
    }
    let key = load_key(a.key_file.as_ref())?;
    let receivers = (0..a.receivers)
        .map(|_| {
            Receiver::start(ReceiverConfig {
                key: key.clone(),
                ..ReceiverConfig::unicast((Ipv4Addr::LOCALHOST, 0).into())
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let b = Broadcaster::start(world_config(
        &a.world,
        BroadcastConfig {
            destinations: receivers.iter().map(|r| r.local_addr()).collect(),
            duration: Some(a.duration),
            key,
            ..BroadcastConfig::default()
        },
    ))?;
    eprintln!(
        "demo: 1 broadcaster ({} entities at {} Hz) -> {} receivers on loopback for {:?}; Ctrl-C ends early",
        a.world.entities,
        a.world.rate,
        receivers.len(),
        a.duration
    );
    let mut prev: Vec<Figures> = vec![Figures::default(); receivers.len()];
    every_second(stop, Some(a.duration), |t| {
        eprintln!("{}", broadcast_line(t, &b.figures()));
        for (i, r) in receivers.iter().enumerate() {
            let now = r.figures();
            eprintln!(
                "{}",
                render::live_line(&format!("  rx{i} "), t, &now, &prev[i])
            );
            prev[i] = now;
        }
        !b.is_finished()
    });
    let bf = b.stop();
    std::thread::sleep(GRACE);
    let mut rows = Vec::new();
    for (i, r) in receivers.into_iter().enumerate() {
        let name = format!("rx{i} {}", r.local_addr());
        rows.push((name, r.stop().context("receiver thread failed")?.summary()));
    }
    println!(
        "\nbroadcaster: {}",
        broadcast_line(a.duration, &bf).trim_start()
    );
    println!("{}", render::table(&rows));
    Ok(ExitCode::SUCCESS)
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
