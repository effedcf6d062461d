//! A LAN of network namespaces for tests: one "lan" namespace holding a
//! Linux bridge, and hosts (a broadcaster and receivers), each its own
//! namespace with `lo` up and one veth to the bridge.
//!
//! ```text
//!   tcn<pid>-<n>-bc  eth0 10.77.S.1 ──┐
//!   tcn<pid>-<n>-r1  eth0 10.77.S.2 ──┤ p0..pN ── br0   (namespace tcn<pid>-<n>-lan)
//!   ...                               │
//!   tcn<pid>-<n>-rN  eth0 10.77.S.N+1─┘
//! ```
//!
//! A LAN built with [`Lan::with_ipv6`] also gives host `i` (0 is the
//! broadcaster) `fd77:S::i+1/64`, in a unique-local prefix used only by
//! these tests, and the link-local `fe80::77:i+1/64` on its `eth0`, both
//! with `nodad` (and no address of the kernel's own making), so they are
//! usable at once rather than after duplicate address detection.
//!
//! # Guarantees
//!
//! * **Nothing touches the host's own network.** Every link is created
//!   directly inside a test namespace (`ip -n <lan> link add pI type veth peer
//!   name eth0 netns <host>`), so the root namespace never holds a test link,
//!   address or route, and no test link is attached to a real interface.
//!   Multicast (`224.0.0.0/4`, and with IPv6 `ff00::/8`) is routed to the
//!   bridge in every host.
//! * **Torn down whatever happens.** [`Lan`]'s `Drop` (which runs when a
//!   test fails, as a panic unwinds) kills what still runs in its namespaces
//!   (processes this test started) and deletes them; deleting a host
//!   namespace destroys its veth and so the bridge port. Namespaces left by
//!   an earlier run that was killed outright (its pid gone) are deleted the
//!   first time a LAN is built.
//! * **No collisions.** Names carry the test process's pid and a counter,
//!   so concurrent tests and concurrent `cargo test` runs never share one.
#![allow(dead_code)]

use std::net::{Ipv4Addr, Ipv6Addr};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Once;

/// What every namespace name made here starts with.
pub const PREFIX: &str = "tcn";

/// One host of the LAN: its namespace and its address on the bridge.
#[derive(Clone, Debug)]
pub struct Host {
    /// The network namespace's name (for `ip netns exec`).
    pub ns: String,
    /// The host's address on the LAN (its `eth0`).
    pub ip: Ipv4Addr,
    /// Its IPv6 addresses, on a LAN built with [`Lan::with_ipv6`].
    pub v6: Option<HostV6>,
}

/// A host's IPv6 addresses on its `eth0`.
#[derive(Clone, Copy, Debug)]
pub struct HostV6 {
    /// In the LAN's unique-local prefix, `fd77:S::/64`.
    pub ula: Ipv6Addr,
    /// Link-local, `fe80::77:i+1`.
    pub link_local: Ipv6Addr,
}

/// A bridge and its hosts; deleted when dropped.
pub struct Lan {
    lan_ns: String,
    /// The third octet of the LAN's 10.77.S.0/24.
    pub subnet: u8,
    hosts: Vec<Host>,
}

/// Runs `ip args...`, returning stdout, or stderr as the error.
pub fn ip(args: &[&str]) -> Result<String, String> {
    run("ip", args)
}

/// Runs `program args...`, returning stdout, or the failure as the error.
pub fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{program} {}: {}: {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Names of the existing network namespaces.
fn namespaces() -> Vec<String> {
    ip(&["netns", "list"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

/// Deletes namespaces named by a test run whose process is gone.
fn remove_stale() {
    for ns in namespaces() {
        let Some(rest) = ns.strip_prefix(PREFIX) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = ip(&["netns", "del", &ns]);
        }
    }
}

impl Lan {
    /// A bridge with one broadcaster host and `receivers` receiver hosts.
    /// Fails (and cleans up) if namespaces or links cannot be made.
    pub fn new(receivers: usize) -> Result<Lan, String> {
        Lan::make(receivers, false)
    }

    /// Like [`Lan::new`], and every host also has IPv6 addresses
    /// ([`Host::v6`]) and `ff00::/8` routed to the bridge.
    pub fn with_ipv6(receivers: usize) -> Result<Lan, String> {
        Lan::make(receivers, true)
    }

    fn make(receivers: usize, ipv6: bool) -> Result<Lan, String> {
        static CLEAN: Once = Once::new();
        static N: AtomicU32 = AtomicU32::new(0);
        CLEAN.call_once(remove_stale);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let base = format!("{PREFIX}{pid}-{n}");
        // Any octet will do (the LANs are isolated from each other and from
        // the host); differing ones just keep captures readable.
        let subnet = ((pid.wrapping_mul(7).wrapping_add(n)) % 250 + 1) as u8;
        let mut lan = Lan {
            lan_ns: format!("{base}-lan"),
            subnet,
            hosts: Vec::new(),
        };
        ip(&["netns", "add", &lan.lan_ns])?;
        lan.build(&base, receivers, ipv6)?;
        Ok(lan)
    }

    fn build(&mut self, base: &str, receivers: usize, ipv6: bool) -> Result<(), String> {
        let lan = self.lan_ns.clone();
        ip(&["-n", &lan, "link", "set", "lo", "up"])?;
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
        for i in 0..=receivers {
            let role = if i == 0 {
                "bc".to_string()
            } else {
                format!("r{i}")
            };
            let ns = format!("{base}-{role}");
            ip(&["netns", "add", &ns])?;
            let n = i as u16 + 1;
            let host = Host {
                ns: ns.clone(),
                ip: Ipv4Addr::new(10, 77, self.subnet, n as u8),
                v6: ipv6.then(|| HostV6 {
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
            if ipv6 {
                route_ipv6_multicast(&ns)?;
            }
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

    /// The LAN's subnet broadcast address, 10.77.S.255.
    pub fn broadcast_addr(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, self.subnet, 255)
    }

    /// A command that runs `program` inside `host`'s namespace.
    pub fn exec(&self, host: &Host, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &host.ns, program]);
        c
    }

    /// Runs `program args...` inside `host`'s namespace; stdout or the error.
    pub fn run_in(&self, host: &Host, program: &str, args: &[&str]) -> Result<String, String> {
        let mut all = vec!["netns", "exec", &host.ns, program];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// Runs one `nft` command (its words as arguments) inside `host`.
    pub fn nft(&self, host: &Host, args: &[&str]) {
        self.run_in(host, "nft", args)
            .unwrap_or_else(|e| panic!("nft in {}: {e}", host.ns));
    }

    /// Packets counted so far by the named nftables counter `name` in table
    /// `inet <table>` inside `host`.
    pub fn nft_counter(&self, host: &Host, table: &str, name: &str) -> u64 {
        let out = self
            .run_in(host, "nft", &["-j", "list", "counter", "inet", table, name])
            .unwrap_or_else(|e| panic!("nft in {}: {e}", host.ns));
        let v: serde_json::Value = serde_json::from_str(&out).expect("nft -j prints JSON");
        v["nftables"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|o| o.get("counter").filter(|c| c["name"] == name))
            .and_then(|c| c["packets"].as_u64())
            .unwrap_or_else(|| panic!("no counter {name} in {out}"))
    }
}

/// Gives `eth0` in `ns` (still down) the addresses `v6`, usable at once.
fn add_ipv6(ns: &str, v6: HostV6) -> Result<(), String> {
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
fn route_ipv6_multicast(ns: &str) -> Result<(), String> {
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
        let all = self
            .hosts
            .iter()
            .map(|h| h.ns.clone())
            .chain([self.lan_ns.clone()]);
        for ns in all {
            // Processes still inside were started by this test; end them by
            // pid so the namespace can go away.
            for pid in ip(&["netns", "pids", &ns])
                .unwrap_or_default()
                .split_whitespace()
            {
                let _ = run("kill", &["-KILL", pid]);
            }
            let _ = ip(&["netns", "del", &ns]);
        }
    }
}
