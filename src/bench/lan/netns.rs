//! A LAN of network namespaces: one namespace holding a Linux bridge, and
//! hosts (a broadcaster and receivers), each its own namespace with `lo` up
//! and one veth to the bridge. `bench --lan` and `tests/netns.rs` both
//! build theirs here.
//!
//! ```text
//!   <prefix>-<run>-bc  eth0 10.N.S.1 ───┐
//!   <prefix>-<run>-r1  eth0 10.N.S.2 ───┤ p0..pK ── br0   (namespace <prefix>-<run>-lan)
//!   ...                                 │
//!   <prefix>-<run>-rK  eth0 10.N.S.K+1 ─┘
//! ```
//!
//! `N` is [`LanConfig::site`], `<run>` the run id ([`Lan::run_id`], 8 hex
//! digits, random) and `S` a subnet octet derived from it. With
//! [`LanConfig::ipv6`], host `i` (0 is the broadcaster) also has
//! `fd77:S::i+1/64`, in a unique-local prefix used only here, and the
//! link-local `fe80::77:i+1/64` on its `eth0`, both `nodad` (and no address
//! of the kernel's own making), so they are usable at once rather than after
//! duplicate address detection.
//!
//! # Guarantees
//!
//! * **Nothing touches the host's own network.** Every link is created
//!   directly inside a LAN namespace (`ip -n <lan> link add pI type veth
//!   peer name eth0 netns <host>`), so the root namespace never holds a LAN
//!   link, address or route, and nothing is attached to a real interface.
//!   Interface names are `br0`, `p0`..`p250` and `eth0`, inside their own
//!   namespaces, so they never collide and stay within the kernel's 15
//!   characters. Multicast (`224.0.0.0/4`, and with IPv6 `ff00::/8`) is
//!   routed to the bridge in every host.
//! * **Deletes only what it made.** Each namespace is claimed with an
//!   ownership marker before it is created ([`super::owner`]); [`Lan`]'s
//!   `Drop` (which runs on an error, as a panic unwinds, and after Ctrl-C
//!   ends a bench) kills what still runs inside its own namespaces, deletes
//!   them, then their markers. Leftovers of a run that was killed outright
//!   are deleted the first time a LAN is built in a process, and only those
//!   [`owner::judge`] finds ours and orphaned: never a namespace without our
//!   marker, whatever its name.
//! * **No collisions.** Every run has its own random run id in its names;
//!   a name whose marker exists already is never reused.
//!
//! Needs root and `ip netns` (iproute2), see [`available`]; `nft` for
//! [`Lan::nft`].

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::process::Command;
use std::sync::Once;

use super::owner::{self, Leftover, Owner};

/// Most receiver hosts one LAN has (host octets 1..=251).
pub const MAX_RECEIVERS: usize = 250;
/// Attempts at an unused run id before giving up.
const CLAIM_ATTEMPTS: usize = 8;

/// Why a LAN could not be built or a command in it failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetnsError {
    /// A program could not be started at all.
    #[error("{program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The OS error.
        source: io::Error,
    },
    /// A command ran and failed.
    #[error("{command}: {stderr}")]
    Failed {
        /// The command line.
        command: String,
        /// What it said on stderr.
        stderr: String,
    },
    /// An ownership marker could not be written.
    #[error("ownership marker for {ns} in {}: {source}", owner::MARKER_DIR)]
    Marker {
        /// The namespace it was for.
        ns: String,
        /// The OS error.
        source: io::Error,
    },
    /// The configuration cannot be built.
    #[error("{0}")]
    Config(&'static str),
    /// `nft -j list counter` printed no such counter.
    #[error("no nftables counter {name} in table {table} of {ns}")]
    NoCounter {
        /// The host's namespace.
        ns: String,
        /// The `inet` table.
        table: String,
        /// The counter.
        name: String,
    },
}

/// What LAN to build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LanConfig {
    /// What every namespace name starts with: ASCII letters and digits
    /// (`tcb` for `bench --lan`, `tcn` for the tests), so a listing shows
    /// who made it. Ownership is decided by the marker, never by the name.
    pub prefix: String,
    /// Receiver hosts besides the broadcaster host, at most [`MAX_RECEIVERS`].
    pub receivers: usize,
    /// The second octet of every IPv4 address: hosts are in `10.site.S.0/24`.
    pub site: u8,
    /// Also give every host IPv6 addresses ([`Host::v6`]) and route
    /// `ff00::/8` to the bridge.
    pub ipv6: bool,
}

impl LanConfig {
    fn validate(&self) -> Result<(), NetnsError> {
        if self.prefix.is_empty() || !self.prefix.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(NetnsError::Config(
                "a LAN's name prefix must be ASCII letters and digits",
            ));
        }
        if self.prefix.len() > 16 {
            return Err(NetnsError::Config(
                "a LAN's name prefix must be at most 16 characters",
            ));
        }
        if self.receivers > MAX_RECEIVERS {
            return Err(NetnsError::Config("a LAN has at most 250 receiver hosts"));
        }
        Ok(())
    }
}

/// One host of the LAN: its namespace and its addresses on the bridge.
#[derive(Clone, Debug)]
pub struct Host {
    /// The network namespace's name (for `ip netns exec`).
    pub ns: String,
    /// The host's IPv4 address on the LAN (its `eth0`).
    pub ip: Ipv4Addr,
    /// Its IPv6 addresses, on a LAN built with [`LanConfig::ipv6`].
    pub v6: Option<HostV6>,
}

/// A host's IPv6 addresses on its `eth0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostV6 {
    /// In the LAN's unique-local prefix, `fd77:S::/64`.
    pub ula: Ipv6Addr,
    /// Link-local, `fe80::77:i+1`.
    pub link_local: Ipv6Addr,
}

impl Host {
    /// The command words that run a program inside this host.
    pub fn exec_prefix(&self) -> Vec<String> {
        ["ip", "netns", "exec", &self.ns].map(String::from).to_vec()
    }
}

/// A bridge and its hosts; every namespace it made is deleted when dropped.
#[derive(Debug)]
pub struct Lan {
    run_id: String,
    subnet: u8,
    site: u8,
    /// The bridge's namespace.
    lan_ns: String,
    /// Every namespace this LAN created (and marked), in order.
    created: Vec<String>,
    hosts: Vec<Host>,
}

/// Whether this process runs as root (effective uid 0, from the `Uid:`
/// line of `/proc/self/status`). The one such check: the bench and every
/// test that needs root ask here.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let uid = s.lines().find(|l| l.starts_with("Uid:"))?;
            uid.split_whitespace().nth(2).map(|euid| euid == "0")
        })
        .unwrap_or(false)
}

/// True when this process can build a LAN: it is root and `ip netns` runs.
pub fn available() -> bool {
    is_root() && ip(&["netns", "list"]).is_ok()
}

/// Runs `program args...`, returning stdout, or what went wrong.
fn run(program: &str, args: &[&str]) -> Result<String, NetnsError> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|source| NetnsError::Spawn {
            program: program.to_string(),
            source,
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(NetnsError::Failed {
            command: format!("{program} {}", args.join(" ")),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

fn ip(args: &[&str]) -> Result<String, NetnsError> {
    run("ip", args)
}

/// Names of the existing network namespaces.
fn namespaces() -> Vec<String> {
    ip(&["netns", "list"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

/// Deletes the leftovers of runs that are gone: every namespace (and every
/// marker without a namespace) that [`owner::judge`] says to remove, and
/// nothing else. Returns the namespaces deleted. [`Lan::new`] calls it once
/// per process.
pub fn remove_stale() -> Vec<String> {
    let Ok(our_pid_ns) = owner::pid_namespace() else {
        return Vec::new(); // cannot tell whose pids the markers name
    };
    let existing = namespaces();
    let mut removed = Vec::new();
    for ns in &existing {
        let marker = owner::read_marker(ns);
        if judge(marker.as_deref(), our_pid_ns) == Leftover::Remove
            && ip(&["netns", "del", ns]).is_ok()
        {
            owner::release(ns);
            removed.push(ns.clone());
        }
    }
    // Markers whose namespace is gone (an owner killed between deleting
    // it and its marker): the same decision, over the marker alone.
    for ns in owner::marked() {
        if existing.contains(&ns) {
            continue;
        }
        let marker = owner::read_marker(&ns);
        if judge(marker.as_deref(), our_pid_ns) == Leftover::Remove {
            owner::release(&ns);
        }
    }
    removed
}

fn judge(marker: Option<&str>, our_pid_ns: u64) -> Leftover {
    owner::judge(marker, our_pid_ns, owner::alive)
}

impl Lan {
    /// Builds the LAN `config` describes. On failure, whatever was made is
    /// deleted again.
    pub fn new(config: &LanConfig) -> Result<Lan, NetnsError> {
        static CLEAN: Once = Once::new();
        config.validate()?;
        CLEAN.call_once(|| {
            remove_stale();
        });
        let me = Owner::current().map_err(|source| NetnsError::Marker {
            ns: format!("{}-*", config.prefix),
            source,
        })?;
        let mut attempt = 0;
        let mut lan = loop {
            let id: u32 = rand::random();
            let mut lan = Lan {
                run_id: format!("{id:08x}"),
                // Any octet will do (the LANs are isolated from each other and
                // from the host); differing ones keep captures readable.
                subnet: (id % 250 + 1) as u8,
                site: config.site,
                lan_ns: String::new(),
                created: Vec::new(),
                hosts: Vec::new(),
            };
            lan.lan_ns = lan.name(&config.prefix, "lan");
            match lan.add_namespace(&lan.lan_ns.clone(), &me) {
                Ok(()) => break lan,
                Err(NetnsError::Marker { source, .. })
                    if source.kind() == io::ErrorKind::AlreadyExists
                        && attempt + 1 < CLAIM_ATTEMPTS =>
                {
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        };
        lan.build(config, &me)?;
        Ok(lan)
    }

    /// The name of this run's namespace for `role`.
    fn name(&self, prefix: &str, role: &str) -> String {
        format!("{prefix}-{}-{role}", self.run_id)
    }

    /// Claims `ns` with a marker, then creates it; remembered for `Drop`
    /// only once both are done. A namespace of that name that somebody
    /// else made is left alone, and so is its marker.
    fn add_namespace(&mut self, ns: &str, me: &Owner) -> Result<(), NetnsError> {
        owner::claim(ns, me).map_err(|source| NetnsError::Marker {
            ns: ns.to_string(),
            source,
        })?;
        if let Err(e) = ip(&["netns", "add", ns]) {
            owner::release(ns);
            return Err(e);
        }
        self.created.push(ns.to_string());
        Ok(())
    }

    fn build(&mut self, config: &LanConfig, me: &Owner) -> Result<(), NetnsError> {
        let lan = self.lan_ns.clone();
        ip(&["-n", &lan, "link", "set", "lo", "up"])?;
        // A switch forwards frames without a firewall. With the host's
        // br_netfilter loaded, every bridged frame would also pass this
        // namespace's IP hooks: work no switch does, which veth charges to
        // the sending host's CPU. Off in this namespace only (the setting
        // is per namespace); there is nothing to turn off without it.
        ip(&[
            "netns",
            "exec",
            &lan,
            "sh",
            "-c",
            "for f in /proc/sys/net/bridge/bridge-nf-call-*; do \
             if [ -e \"$f\" ]; then echo 0 > \"$f\"; fi; done",
        ])?;
        // No IGMP snooping: the bridge floods multicast to every port, like
        // a plain switch, whatever the hosts' joins.
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
        for i in 0..=config.receivers {
            let role = if i == 0 {
                "bc".to_string()
            } else {
                format!("r{i}")
            };
            let ns = self.name(&config.prefix, &role);
            self.add_namespace(&ns, me)?;
            let n = i as u16 + 1;
            let host = Host {
                ns: ns.clone(),
                ip: Ipv4Addr::new(10, self.site, self.subnet, n as u8),
                v6: config.ipv6.then(|| HostV6 {
                    ula: Ipv6Addr::new(0xfd77, self.subnet.into(), 0, 0, 0, 0, 0, n),
                    link_local: Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0x77, n),
                }),
            };
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
            if let Some(v6) = host.v6 {
                add_ipv6(&ns, v6)?;
            }
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &ns, "route", "add", "224.0.0.0/4", "dev", "eth0"])?;
            if config.ipv6 {
                route_ipv6_multicast(&ns)?;
            }
        }
        Ok(())
    }

    /// This run's id: 8 hex digits in every one of its namespaces' names.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The third octet of the LAN's `10.site.S.0/24`.
    pub fn subnet(&self) -> u8 {
        self.subnet
    }

    /// The namespace that holds the bridge.
    pub fn bridge_namespace(&self) -> &str {
        &self.lan_ns
    }

    /// Every namespace this LAN made (the bridge's first), all of which
    /// `Drop` deletes.
    pub fn namespaces(&self) -> &[String] {
        &self.created
    }

    /// Every host: the broadcaster first, then the receivers.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// The broadcaster's host.
    pub fn broadcaster(&self) -> &Host {
        &self.hosts[0]
    }

    /// The receivers' hosts.
    pub fn receivers(&self) -> &[Host] {
        &self.hosts[1..]
    }

    /// The LAN's subnet broadcast address, `10.site.S.255`.
    pub fn broadcast_addr(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, self.site, self.subnet, 255)
    }

    /// A command that runs `program` inside `host`'s namespace.
    pub fn exec(&self, host: &Host, program: &str) -> Command {
        let words = host.exec_prefix();
        let mut c = Command::new(&words[0]);
        c.args(&words[1..]).arg(program);
        c
    }

    /// Runs `program args...` inside `host`'s namespace; its stdout.
    pub fn run_in(&self, host: &Host, program: &str, args: &[&str]) -> Result<String, NetnsError> {
        let mut all = vec!["netns", "exec", &host.ns, program];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// Runs one `nft` command (its words as arguments) inside `host`, to
    /// add tables, chains, counters and rules there; its stdout.
    pub fn nft(&self, host: &Host, args: &[&str]) -> Result<String, NetnsError> {
        self.run_in(host, "nft", args)
    }

    /// Packets counted so far by the named nftables counter `name` in table
    /// `inet <table>` inside `host`.
    pub fn nft_counter(&self, host: &Host, table: &str, name: &str) -> Result<u64, NetnsError> {
        let out = self.nft(host, &["-j", "list", "counter", "inet", table, name])?;
        let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        v["nftables"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|o| o.get("counter").filter(|c| c["name"] == name))
            .and_then(|c| c["packets"].as_u64())
            .ok_or_else(|| NetnsError::NoCounter {
                ns: host.ns.clone(),
                table: table.to_string(),
                name: name.to_string(),
            })
    }
}

/// Gives `eth0` in `ns` (still down) the addresses `v6`, usable at once.
fn add_ipv6(ns: &str, v6: HostV6) -> Result<(), NetnsError> {
    // No link-local address of the kernel's making: it would sit
    // "tentative" for a second or more (DAD) beside the one given here.
    ip(&["-n", ns, "link", "set", "eth0", "addrgenmode", "none"])?;
    for cidr in [format!("{}/64", v6.ula), format!("{}/64", v6.link_local)] {
        ip(&["-n", ns, "-6", "addr", "add", &cidr, "dev", "eth0", "nodad"])?;
    }
    Ok(())
}

/// Makes sure IPv6 multicast (`ff00::/8`) goes out of `eth0` in `ns`.
///
/// Linux adds `multicast ff00::/8 dev eth0 table local` itself when an
/// IPv6-enabled link comes up, and that is all a send or a join needs (a
/// second `ff00::/8` route, in `main` or `local`, adds nothing); the route
/// is added here only where a kernel did not.
fn route_ipv6_multicast(ns: &str) -> Result<(), NetnsError> {
    let have = ip(&[
        "-n", ns, "-6", "route", "show", "table", "local", "ff00::/8", "dev", "eth0",
    ])?;
    if have.trim().is_empty() {
        ip(&[
            "-n",
            ns,
            "-6",
            "route",
            "add",
            "multicast",
            "ff00::/8",
            "dev",
            "eth0",
            "table",
            "local",
        ])?;
    }
    Ok(())
}

impl Drop for Lan {
    fn drop(&mut self) {
        // Hosts first, the bridge's namespace last.
        for ns in self.created.iter().rev() {
            // Whatever still runs inside was started in this LAN; end it by
            // pid so the namespace can go away.
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
            // A namespace that would not go keeps its marker, so a later
            // run's cleanup can still recognise it once this process is gone.
            if ip(&["netns", "del", ns]).is_ok() {
                owner::release(ns);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_that_cannot_be_built_are_refused_before_anything_is_made() {
        let ok = LanConfig {
            prefix: "tct".into(),
            receivers: 2,
            site: 79,
            ipv6: false,
        };
        assert!(ok.validate().is_ok());
        for bad in [
            LanConfig {
                prefix: String::new(),
                ..ok.clone()
            },
            LanConfig {
                prefix: "t-c".into(),
                ..ok.clone()
            },
            LanConfig {
                prefix: "../etc".into(),
                ..ok.clone()
            },
            LanConfig {
                prefix: "x".repeat(17),
                ..ok.clone()
            },
            LanConfig {
                receivers: MAX_RECEIVERS + 1,
                ..ok.clone()
            },
        ] {
            assert!(
                matches!(bad.validate(), Err(NetnsError::Config(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn errors_read_as_the_command_and_what_it_said() {
        let e = run("false", &["--flag"]).unwrap_err();
        assert_eq!(e.to_string(), "false --flag: ");
        let e = run("/nonexistent/tickcast-no-such-program", &[]).unwrap_err();
        assert!(matches!(e, NetnsError::Spawn { .. }), "{e:?}");
        assert!(e
            .to_string()
            .starts_with("/nonexistent/tickcast-no-such-program: "));
    }

    #[test]
    fn a_host_runs_programs_through_ip_netns_exec() {
        let host = Host {
            ns: "tcn-0000abcd-r1".into(),
            ip: Ipv4Addr::new(10, 77, 5, 2),
            v6: None,
        };
        assert_eq!(
            host.exec_prefix(),
            ["ip", "netns", "exec", "tcn-0000abcd-r1"]
        );
    }
}
