//! `bench --lan`: the broadcaster and each receiver as a `tickcast` child
//! process in its own network namespace, on a Linux bridge.
//!
//! ```text
//!   tcb-<run>-bc  eth0 10.78.S.1 ───┐
//!   tcb-<run>-r1  eth0 10.78.S.2 ───┤ p0..pK ── br0   (namespace tcb-<run>-lan)
//!   ...                             │
//!   tcb-<run>-rK  eth0 10.78.S.K+1 ─┘
//! ```
//!
//! The LAN is [`netns`]'s (the same builder `tests/netns.rs` uses): nothing
//! touches the host's own network, and every namespace it made, and only
//! those, is deleted when the run ends, on an error, or after Ctrl-C ends
//! it ([`owner`] says how leftovers of a killed run are told apart from
//! somebody else's namespaces).
//!
//! # Layout
//!
//! This file runs one benchmark across a LAN; [`netns`] builds and tears
//! down LANs (and says whether this process can: [`available`],
//! [`is_root`]); [`owner`] records and judges who made a namespace;
//! [`shaper`] shapes the broadcaster's link to a rate
//! ([`BenchConfig::link_rate`]) and reads what the shaper dropped.
//!
//! Needs root and `ip netns` (iproute2); see [`available`]. A link rate
//! needs `tc` (iproute2) too: see [`shaper::tc_available`].

pub mod netns;
pub mod owner;
pub mod shaper;

pub use netns::{
    available, is_root, remove_stale, Host, HostV6, Lan, LanConfig, NetnsError, MAX_RECEIVERS,
};

use std::net::{Ipv4Addr, SocketAddrV4};
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use super::child::{self, ChildError, Children, Launch};
use super::results::{self, LinkResult, Machine, Phase, ReceiverEnd};
use super::{usage, BenchConfig, BenchError, BenchReport, Progress, GRACE, OVERRUN};
use crate::core::figures::Figures;
use crate::core::schema::Versioned;
use crate::runtime::broadcaster::BroadcastSummary;

/// What every namespace name a bench makes starts with.
pub const PREFIX: &str = "tcb";
/// The second octet of a bench LAN's addresses: hosts are in `10.78.S.0/24`.
pub const SITE: u8 = 78;
/// The port receivers listen on (and the group's port).
pub const PORT: u16 = 47_474;
/// The multicast group of `--lan multicast`.
pub const GROUP: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(239, 255, 78, 1), PORT);

/// How long a live line waits for the broadcaster child's line of the same
/// second (it starts a moment after the bench's clock), and how early it
/// may take it.
const LINE_WAIT: Duration = Duration::from_millis(500);

/// How the broadcaster reaches the receivers on the LAN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LanMode {
    /// One unicast destination per receiver (`--to`).
    Unicast,
    /// One multicast group ([`GROUP`]) every receiver joins.
    Multicast,
}

impl LanMode {
    /// The setup's name in the report: `lan-unicast` or `lan-multicast`.
    pub fn name(self) -> &'static str {
        match self {
            LanMode::Unicast => "lan-unicast",
            LanMode::Multicast => "lan-multicast",
        }
    }
}

/// The `receive` flags of a receiver at `ip`.
fn listen_args(mode: LanMode, ip: Ipv4Addr) -> Vec<String> {
    match mode {
        LanMode::Unicast => vec!["--bind".into(), SocketAddrV4::new(ip, PORT).to_string()],
        LanMode::Multicast => vec![
            "--group".into(),
            GROUP.to_string(),
            "--interface".into(),
            ip.to_string(),
        ],
    }
}

/// The `broadcast` arguments of the broadcaster at `from`, sending to `to`.
fn broadcast_args(
    config: &BenchConfig,
    mode: LanMode,
    from: Ipv4Addr,
    to: &[Ipv4Addr],
) -> Vec<String> {
    let mut a: Vec<String> = vec!["broadcast".into()];
    match mode {
        LanMode::Unicast => {
            for ip in to {
                a.push("--to".into());
                a.push(SocketAddrV4::new(*ip, PORT).to_string());
            }
        }
        LanMode::Multicast => {
            a.extend(["--group".into(), GROUP.to_string()]);
            a.extend(["--interface".into(), from.to_string()]);
        }
    }
    a.extend([
        "--entities".into(),
        config.entities.to_string(),
        "--rate".into(),
        config.rate_hz.to_string(),
        "--seed".into(),
        config.seed.to_string(),
        "--world".into(),
        config.world.name().into(),
        "--payload-budget".into(),
        config.payload_budget.to_string(),
        "--send-path".into(),
        config.send_path.name().into(),
        "--duration".into(),
        // Rounded up: a child's run must last more than 0.
        format!("{}ms", config.duration.as_nanos().div_ceil(1_000_000)),
        "--json".into(),
        "--max-subscribers".into(),
        "0".into(),
    ]);
    if let Some(c) = &config.compact {
        a.extend([
            "--encoding".into(),
            "compact".into(),
            "--precision".into(),
            (1.0 / f64::from(c.quanta_per_unit)).to_string(),
            "--bound".into(),
            c.bound.to_string(),
            "--keyframe-interval".into(),
            c.keyframe_interval.to_string(),
        ]);
    }
    a.extend(child::realtime_args(
        config.sender_realtime(),
        config.sender_cpu,
    ));
    a
}

/// Runs one benchmark across a freshly built LAN (see the module docs).
pub(super) fn run(
    config: &BenchConfig,
    mode: LanMode,
    machine: Machine,
    mut progress: impl FnMut(&Progress) -> ControlFlow<()>,
) -> Result<BenchReport, BenchError> {
    if config.link_rate.is_some() && !shaper::tc_available() {
        return Err(BenchError::NoTc);
    }
    let lan = Lan::new(&LanConfig {
        prefix: PREFIX.to_string(),
        receivers: config.receivers,
        site: SITE,
        ipv6: false,
    })
    .map_err(BenchError::Lan)?;
    if let Some(rate) = config.link_rate {
        shaper::install(&lan, lan.broadcaster(), rate).map_err(BenchError::Shaper)?;
    }
    let launches: Vec<Launch> = lan
        .receivers()
        .iter()
        .map(|h| Launch {
            prefix: h.exec_prefix(),
            listen: listen_args(mode, h.ip),
        })
        .collect();
    let mut children = Children::spawn_each(config, &launches)?;
    std::thread::sleep(config.warmup);

    let program = child::program(config)?;
    let bc = lan.broadcaster();
    let rx: Vec<Ipv4Addr> = lan.receivers().iter().map(|h| h.ip).collect();
    let mut cmd = child::command(&bc.exec_prefix(), &program);
    cmd.args(broadcast_args(config, mode, bc.ip, &rx));
    let mut sender = child::spawn_piped(cmd, &program)?;
    let start = Instant::now();
    let mut next = Duration::from_secs(1);
    // The receivers' latest counters a second ago, for the loss in between.
    let mut last = vec![Figures::default(); config.receivers];
    // The broadcaster's lines shown so far: a live line is due when it has
    // said its next second (so the line carries that second's counters),
    // or LINE_WAIT after the second if it has not.
    let mut shown = 0;
    let mut interrupted = false;
    let mut sender_cpu = None;
    // Bounded: ends when the child exits, or OVERRUN past its duration.
    loop {
        match usage::process_cpu(sender.pid) {
            Some((cpu, 'Z')) => {
                sender_cpu = Some(cpu);
                break;
            }
            Some(_) => {}
            None => break,
        }
        let elapsed = start.elapsed();
        if elapsed >= config.duration + OVERRUN {
            interrupted = true;
            child::interrupt(sender.pid);
            sender_cpu = child::exited_cpu(sender.pid, Instant::now() + child::END_TIMEOUT);
            break;
        }
        let said = sender.latest.count();
        if (said > shown && elapsed + LINE_WAIT >= next) || elapsed >= next + LINE_WAIT {
            shown = said;
            children.sample();
            // What the children said in their latest per-second lines.
            let sender_now = sender
                .latest
                .get()
                .and_then(|l| super::progress::sender_figures(&l))
                .unwrap_or_default();
            let now = children.live();
            let loss: Vec<f64> = now
                .iter()
                .zip(&last)
                .map(|(n, l)| n.interval_loss(l))
                .collect();
            let flow = progress(&Progress {
                elapsed,
                duration: config.duration,
                sender: &sender_now,
                receivers: &now,
                last_second_loss: &loss,
            });
            last = now;
            if flow.is_break() {
                interrupted = true;
                child::interrupt(sender.pid);
                sender_cpu = child::exited_cpu(sender.pid, Instant::now() + child::END_TIMEOUT);
                break;
            }
            next += Duration::from_secs(1);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let elapsed = start.elapsed();
    let json = sender
        .stdout
        .recv_timeout(child::END_TIMEOUT)
        .unwrap_or_default();
    let _ = sender.child.kill();
    let _ = sender.child.wait();
    let said = sender.stderr.join().unwrap_or_default().join(" / ");
    let figures = serde_json::from_str::<Versioned<BroadcastSummary>>(json.trim())
        .ok()
        .and_then(|v| v.current().ok())
        .ok_or(BenchError::Child(ChildError::SenderNoFigures { said }))?;
    std::thread::sleep(GRACE);
    let ends: Vec<ReceiverEnd> = children
        .finish()?
        .into_iter()
        .map(ReceiverEnd::from)
        .collect();
    // Everything the broadcaster sent has left the shaper by now (it holds
    // a packet MAX_QUEUE_DELAY at most, less than the grace).
    let link = config.link_rate.map(|rate| {
        let counts = shaper::counts(&lan, lan.broadcaster())
            .map_err(|e| log::warn!("cannot read the shaper's counts: {e}"))
            .ok();
        LinkResult::new(rate, counts)
    });
    drop(lan);
    let phase = Phase {
        figures,
        sender_cpu,
        elapsed,
        interrupted,
        loss_per_second: vec![Vec::new(); config.receivers],
        last: vec![Figures::default(); config.receivers],
    };
    Ok(results::assemble(config, machine, phase, ends, None, link))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unicast_sends_to_each_receiver_and_multicast_to_the_group() {
        let config = BenchConfig {
            entities: 1000,
            rate_hz: 60.0,
            duration: Duration::from_secs(2),
            seed: 3,
            world: crate::core::sim::WorldKind::Players,
            ..BenchConfig::default()
        };
        let bc = Ipv4Addr::new(10, 78, 5, 1);
        let rx = [Ipv4Addr::new(10, 78, 5, 2), Ipv4Addr::new(10, 78, 5, 3)];
        let tail = "--entities 1000 --rate 60 --seed 3 --world players --payload-budget 1200 --send-path gso --duration 2000ms --json --max-subscribers 0";
        let budget = crate::wire::DEFAULT_PAYLOAD_BUDGET.to_string();
        let tail = tail.replace("1200", &budget);
        assert_eq!(
            broadcast_args(&config, LanMode::Unicast, bc, &rx).join(" "),
            format!("broadcast --to 10.78.5.2:47474 --to 10.78.5.3:47474 {tail}")
        );
        assert_eq!(
            broadcast_args(&config, LanMode::Multicast, bc, &rx).join(" "),
            format!("broadcast --group 239.255.78.1:47474 --interface 10.78.5.1 {tail}")
        );
        assert_eq!(
            listen_args(LanMode::Unicast, rx[0]),
            ["--bind", "10.78.5.2:47474"]
        );
        assert_eq!(
            listen_args(LanMode::Multicast, rx[1]),
            ["--group", "239.255.78.1:47474", "--interface", "10.78.5.3"]
        );
        let host = Host {
            ns: "tcb-0000abcd-r1".into(),
            ip: rx[0],
            v6: None,
        };
        assert_eq!(
            host.exec_prefix(),
            ["ip", "netns", "exec", "tcb-0000abcd-r1"]
        );
        let mut c = child::command(&host.exec_prefix(), std::path::Path::new("/bin/tickcast"));
        c.arg("receive");
        let words: Vec<_> = std::iter::once(c.get_program())
            .chain(c.get_args())
            .map(|w| w.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            words,
            [
                "ip",
                "netns",
                "exec",
                "tcb-0000abcd-r1",
                "/bin/tickcast",
                "receive"
            ]
        );
        assert_eq!(LanMode::Multicast.name(), "lan-multicast");
    }
}
