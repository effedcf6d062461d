//! `bench --lan`: the broadcaster and each receiver as a `tickcast` child
//! process in its own network namespace, on a Linux bridge.
//!
//! ```text
//!   tcb<pid>-<n>-bc  eth0 10.78.S.1 ──┐
//!   tcb<pid>-<n>-r1  eth0 10.78.S.2 ──┤ p0..pK ── br0   (namespace tcb<pid>-<n>-lan)
//!   ...                               │
//!   tcb<pid>-<n>-rK  eth0 10.78.S.K+1─┘
//! ```
//!
//! * **Nothing touches the host's own network.** Every link is created
//!   directly inside a bench namespace, so the root namespace never holds a
//!   bench link, address or route, and nothing is attached to a real
//!   interface. The addresses (`10.78.S.0/24`) exist only inside them.
//! * **Torn down whatever happens.** [`Lan`]'s `Drop` (which runs on an
//!   error, and after Ctrl-C ends the run) kills what still runs in its
//!   namespaces (only this bench's children) and deletes them. Namespaces
//!   left by a bench that was killed outright (its pid gone) are deleted
//!   the first time a LAN is built.
//! * **No collisions.** Names carry this process's pid and a counter.
//!
//! Needs root and `ip netns` (iproute2); see [`available`].

use std::net::{Ipv4Addr, SocketAddrV4};
use std::ops::ControlFlow;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

use super::child::{self, ChildError, Children, Launch};
use super::results::{self, Machine, Phase, ReceiverEnd};
use super::{usage, BenchConfig, BenchError, BenchReport, Progress, GRACE, OVERRUN};
use crate::core::figures::Figures;
use crate::runtime::broadcaster::{BroadcastFigures, BroadcastSummary};

/// What every namespace name made here starts with.
pub const PREFIX: &str = "tcb";
/// The port receivers listen on (and the group's port).
pub const PORT: u16 = 47_474;
/// The multicast group of `--lan multicast`.
pub const GROUP: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(239, 255, 78, 1), PORT);

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

/// True when this process can build a LAN: it is root and `ip netns` runs.
pub fn available() -> bool {
    is_root() && ip(&["netns", "list"]).is_ok()
}

/// Whether this process runs as root (effective uid 0).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let uid = s.lines().find(|l| l.starts_with("Uid:"))?;
            uid.split_whitespace().nth(2).map(|euid| euid == "0")
        })
        .unwrap_or(false)
}

/// One host of the LAN.
#[derive(Clone, Debug)]
pub struct Host {
    /// Its network namespace.
    pub ns: String,
    /// Its address on the bridge.
    pub ip: Ipv4Addr,
}

impl Host {
    /// The command words that run a program inside this host.
    pub fn exec_prefix(&self) -> Vec<String> {
        ["ip", "netns", "exec", &self.ns].map(String::from).to_vec()
    }
}

/// A bridge with a broadcaster host and receiver hosts; deleted when dropped.
#[derive(Debug)]
pub struct Lan {
    lan_ns: String,
    hosts: Vec<Host>,
}

fn ip(args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Deletes namespaces of an earlier bench whose process is gone.
fn remove_stale() {
    let list = ip(&["netns", "list"]).unwrap_or_default();
    for ns in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(pid) = ns
            .strip_prefix(PREFIX)
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

impl Lan {
    /// A bridge with one broadcaster host and `receivers` receiver hosts.
    /// On failure, whatever was made is deleted.
    pub fn new(receivers: usize) -> Result<Lan, String> {
        static CLEAN: Once = Once::new();
        static N: AtomicU32 = AtomicU32::new(0);
        CLEAN.call_once(remove_stale);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let base = format!("{PREFIX}{pid}-{n}");
        // Any octet will do: the LAN is isolated from everything else.
        let subnet = (pid.wrapping_mul(7).wrapping_add(n) % 250 + 1) as u8;
        let mut lan = Lan {
            lan_ns: format!("{base}-lan"),
            hosts: Vec::new(),
        };
        ip(&["netns", "add", &lan.lan_ns])?;
        lan.build(&base, subnet, receivers)?;
        Ok(lan)
    }

    fn build(&mut self, base: &str, subnet: u8, receivers: usize) -> Result<(), String> {
        let lan = self.lan_ns.clone();
        ip(&["-n", &lan, "link", "set", "lo", "up"])?;
        // No IGMP snooping: the bridge floods multicast like a plain switch.
        ip(&[
            "-n",
            &lan,
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ])?;
        ip(&["-n", &lan, "link", "set", "br0", "up"])?;
        for i in 0..=receivers {
            let role = if i == 0 { "bc".into() } else { format!("r{i}") };
            let host = Host {
                ns: format!("{base}-{role}"),
                ip: Ipv4Addr::new(10, 78, subnet, (i + 1) as u8),
            };
            let ns = host.ns.clone();
            ip(&["netns", "add", &ns])?;
            self.hosts.push(host.clone());
            let port = format!("p{i}");
            ip(&[
                "-n", &lan, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
                &ns,
            ])?;
            ip(&["-n", &lan, "link", "set", &port, "master", "br0"])?;
            ip(&["-n", &lan, "link", "set", &port, "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            let cidr = format!("{}/24", host.ip);
            ip(&["-n", &ns, "addr", "add", &cidr, "brd", "+", "dev", "eth0"])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &ns, "route", "add", "224.0.0.0/4", "dev", "eth0"])?;
        }
        Ok(())
    }

    /// The broadcaster's host.
    pub fn broadcaster(&self) -> &Host {
        &self.hosts[0]
    }

    /// The receivers' hosts.
    pub fn receivers(&self) -> &[Host] {
        &self.hosts[1..]
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        let all = self.hosts.iter().map(|h| h.ns.as_str());
        for ns in all.chain([self.lan_ns.as_str()]) {
            // Whatever still runs inside was started by this bench.
            for pid in ip(&["netns", "pids", ns])
                .unwrap_or_default()
                .split_whitespace()
            {
                if let Ok(pid) = pid.parse::<i32>() {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
            let _ = ip(&["netns", "del", ns]);
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
        "--payload-budget".into(),
        config.payload_budget.to_string(),
        "--duration".into(),
        format!("{}ms", config.duration.as_millis()),
        "--json".into(),
        "--max-subscribers".into(),
        "0".into(),
    ]);
    a
}

/// Runs one benchmark across a freshly built LAN (see the module docs).
pub(super) fn run(
    config: &BenchConfig,
    mode: LanMode,
    machine: Machine,
    mut progress: impl FnMut(&Progress) -> ControlFlow<()>,
) -> Result<BenchReport, BenchError> {
    let lan = Lan::new(config.receivers).map_err(BenchError::Lan)?;
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
    let live = BroadcastFigures::default();
    let mut next = Duration::from_secs(1);
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
        if elapsed >= next {
            children.sample();
            let flow = progress(&Progress {
                elapsed,
                duration: config.duration,
                sender: &live,
                receivers: &[],
                last_second_loss: &[],
            });
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
    let figures: BroadcastSummary = serde_json::from_str(json.trim())
        .map_err(|_| BenchError::Child(ChildError::SenderNoFigures { said }))?;
    std::thread::sleep(GRACE);
    let ends: Vec<ReceiverEnd> = children
        .finish()?
        .into_iter()
        .map(ReceiverEnd::from)
        .collect();
    drop(lan);
    let phase = Phase {
        figures,
        sender_cpu,
        elapsed,
        interrupted,
        loss_per_second: vec![Vec::new(); config.receivers],
        last: vec![Figures::default(); config.receivers],
    };
    Ok(results::assemble(config, machine, phase, ends, None))
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
            ..BenchConfig::default()
        };
        let bc = Ipv4Addr::new(10, 78, 5, 1);
        let rx = [Ipv4Addr::new(10, 78, 5, 2), Ipv4Addr::new(10, 78, 5, 3)];
        let tail = "--entities 1000 --rate 60 --seed 3 --payload-budget 1200 --duration 2000ms --json --max-subscribers 0";
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
            ns: "tcb1-0-r1".into(),
            ip: rx[0],
        };
        assert_eq!(host.exec_prefix(), ["ip", "netns", "exec", "tcb1-0-r1"]);
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
                "tcb1-0-r1",
                "/bin/tickcast",
                "receive"
            ]
        );
        assert_eq!(LanMode::Multicast.name(), "lan-multicast");
    }
}
