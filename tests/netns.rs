//! tickcast across a LAN of network namespaces: one broadcaster host and
//! four receiver hosts on a Linux bridge (`tickcast::bench::lan::Lan`, the
//! builder `bench --lan` uses too), each
//! running the real `tickcast` binary. Multicast (IPv4, and IPv6 with a
//! site-local and a link-local group), subnet broadcast and unicast
//! subscriptions must each deliver every packet to every receiver;
//! packets nftables drops at one receiver must show up as exactly that many
//! `lost`; a receiver that vanishes must see its subscription expire; a
//! subscribe forged with another host's address must get that host no
//! stream and no reply larger than itself; and a restarted broadcaster must
//! be followed at once.
//!
//! These tests need root and `ip netns` (and `nft` for the nftables ones).
//! Without them each prints one line, "skipped: needs root and ip netns",
//! and passes; in CI (`CI=true`) it fails instead. All traffic stays inside
//! the namespaces the tests create: nothing is added to the host's own
//! network namespace, and the LAN is deleted when a test ends, even when it
//! fails; a LAN deletes only the namespaces it made (see
//! `tickcast::bench::lan::owner`).
//!
//! The tests take a lock and run one at a time: each one's timing then
//! depends on its own processes only (the machines this runs on may have two
//! cores), and their figures are exact rather than "roughly".
// Tests, benches, examples and the binary own their clocks, sockets and files;
// the layer wall in clippy.toml is for the library core.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

#[path = "netns/proc.rs"]
mod proc;

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use nix::sys::signal::Signal;
use proc::{figure, have, skip, Proc};
use serde_json::Value;
use tickcast::bench::lan::owner::{marker_path, Owner, MARKER_DIR};
use tickcast::bench::lan::{available, remove_stale, Host, Lan, LanConfig};

const SKIP: &str = "skipped: needs root and ip netns";
/// What every namespace these tests make is named with (`tcn-<run>-...`).
const PREFIX: &str = "tcn";
/// The second octet of the LANs' addresses: hosts are in `10.77.S.0/24`.
const SITE: u8 = 77;
const BIN: &str = env!("CARGO_BIN_EXE_tickcast");
/// Receiver hosts on every LAN.
const RECEIVERS: usize = 4;
/// The stream's port, and the broadcaster's subscription port.
const STREAM_PORT: u16 = 47474;
const SUBSCRIBE_PORT: u16 = 47475;
const GROUP: &str = "239.255.77.1:47474";
/// An IPv6 group of site-local scope (`ff15::/16`): routed by address, the
/// interface named only to choose the way out.
const GROUP_V6: &str = "[ff15::7474]:47474";
/// An IPv6 group of link-local scope (`ff12::/16`): meaningful only with
/// an interface, so the binary must scope its bind and its sends.
const GROUP_V6_LINK: &str = "[ff12::7474]:47474";
/// Longest wait for a process to get ready or to finish.
const PATIENCE: Duration = Duration::from_secs(30);
/// How long receivers keep listening after the broadcaster's goodbye.
const GRACE: Duration = Duration::from_millis(300);

/// One test at a time (see the module docs); a failed test does not poison
/// the others.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A LAN with [`RECEIVERS`] receiver hosts, or `None` after the skip line.
fn lan() -> Option<Lan> {
    lan_with(false)
}

/// Like [`lan`], with IPv6 addresses on every host ([`Host::v6`]).
fn lan_v6() -> Option<Lan> {
    lan_with(true)
}

fn lan_with(ipv6: bool) -> Option<Lan> {
    if !available() {
        skip(SKIP);
        return None;
    }
    let config = LanConfig {
        prefix: PREFIX.to_string(),
        receivers: RECEIVERS,
        site: SITE,
        ipv6,
    };
    match Lan::new(&config) {
        Ok(lan) => Some(lan),
        Err(e) => {
            eprintln!("cannot build the namespace LAN: {e}");
            skip(SKIP);
            None
        }
    }
}

/// Whether `nft` is there; prints the skip line (or fails in CI) if not.
fn nft_or_skip() -> bool {
    if have("nft") {
        return true;
    }
    skip("skipped: needs nft");
    false
}

/// Runs one `nft` command in `host`, failing the test if it fails.
fn nft(lan: &Lan, host: &Host, args: &[&str]) {
    lan.nft(host, args)
        .unwrap_or_else(|e| panic!("nft in {}: {e}", host.ns));
}

/// The packets counted by counter `name` of table `inet <table>` in `host`.
fn nft_counter(lan: &Lan, host: &Host, table: &str, name: &str) -> u64 {
    lan.nft_counter(host, table, name)
        .unwrap_or_else(|e| panic!("nft in {}: {e}", host.ns))
}

/// Starts `tickcast receive <args> --json` on `host` and waits until it
/// listens. It runs until [`stop`] (Ctrl-C), with a long `--duration` as a
/// backstop.
fn receiver(lan: &Lan, host: &Host, args: &[&str]) -> Proc {
    let mut p = Proc::spawn(
        &format!("receiver {}", host.ip),
        lan.exec(host, BIN)
            .arg("receive")
            .args(args)
            .args(["--duration", "60s", "--json"]),
    );
    p.wait_for("receiving on", PATIENCE);
    p
}

/// Starts `tickcast broadcast <args> --json` on `host` and waits until it
/// sends.
fn broadcaster(lan: &Lan, host: &Host, args: &[&str]) -> Proc {
    let mut p = Proc::spawn(
        &format!("broadcaster {}", host.ip),
        lan.exec(host, BIN)
            .arg("broadcast")
            .args(args)
            .arg("--json"),
    );
    p.wait_for("broadcasting", PATIENCE);
    p
}

/// Ends receivers as Ctrl-C would, after a grace for what is in flight, and
/// returns their JSON figures.
fn stop(receivers: Vec<Proc>) -> Vec<Value> {
    std::thread::sleep(GRACE);
    let mut receivers = receivers;
    for r in &mut receivers {
        r.signal(Signal::SIGINT);
    }
    receivers.into_iter().map(|r| r.json(PATIENCE)).collect()
}

/// One line of a receiver's figures, for the test's output; the host is
/// named by its unique-local address on an IPv6 LAN.
fn line(mode: &str, host: &Host, f: &Value) -> String {
    let name = host.v6.map_or(host.ip.to_string(), |v6| v6.ula.to_string());
    let lat = &f["latency_us"];
    format!(
        "{mode:<12} {:<12} expected {:>4} received {:>4} lost {:>3} dup {} reord {} stale {} malformed {} restarts {} socket_drops {} ticks_applied {:>4} latency p50 {} us max {} us{}",
        name,
        f["expected"],
        f["received"],
        f["lost"],
        f["duplicates"],
        f["reordered"],
        f["stale"],
        f["malformed"],
        f["restarts"],
        f["socket_drops"],
        f["ticks_applied"],
        lat["p50"],
        lat["max"],
        if f["subscription"].as_str().is_some_and(|s| s != "none") {
            format!(" rtt p50 {} us", f["rtt_us"]["p50"])
        } else {
            String::new()
        }
    )
}

/// Every receiver got the broadcaster's whole stream, exactly.
fn assert_whole_stream(mode: &str, lan: &Lan, bc: &Value, rxs: &[Value]) {
    let sent = figure(bc, "packets_sent");
    for (host, f) in lan.receivers().iter().zip(rxs) {
        println!("{}", line(mode, host, f));
        assert_eq!(figure(f, "lost"), 0, "{mode} {}: {f}", host.ip);
        assert_eq!(figure(f, "expected"), sent, "{mode} {}: {f}", host.ip);
        assert_eq!(figure(f, "received"), sent, "{mode} {}: {f}", host.ip);
        for zero in [
            "duplicates",
            "reordered",
            "stale",
            "malformed",
            "restarts",
            "socket_drops",
        ] {
            assert_eq!(figure(f, zero), 0, "{mode} {} {zero}: {f}", host.ip);
        }
        assert_eq!(f["goodbye"], true, "{mode} {}: {f}", host.ip);
        assert_eq!(figure(f, "sender_packets_sent"), sent);
    }
}

/// Receivers join `group` on every receiver host (on the interface with
/// address `interface(host)`), then the broadcaster sends to it for 2 s;
/// returns the broadcaster's figures and the receivers'.
fn multicast_run(lan: &Lan, group: &str, interface: fn(&Host) -> String) -> (Value, Vec<Value>) {
    // Each receiver has joined once it says "receiving on", so all are
    // listening before the first packet is sent.
    let rxs: Vec<Proc> = lan
        .receivers()
        .iter()
        .map(|h| receiver(lan, h, &["--group", group, "--interface", &interface(h)]))
        .collect();
    let bc_host = lan.broadcaster();
    let bc = broadcaster(
        lan,
        bc_host,
        &[
            "--group",
            group,
            "--interface",
            &interface(bc_host),
            "--duration",
            "2s",
        ],
    )
    .json(PATIENCE);
    (bc, stop(rxs))
}

/// (a) Multicast: one send per packet reaches all four receivers.
#[test]
fn multicast_reaches_every_receiver_host_exactly() {
    let _serial = serial();
    let Some(lan) = lan() else { return };
    let (bc, rxs) = multicast_run(&lan, GROUP, |h| h.ip.to_string());
    println!("multicast broadcaster: {bc}");
    assert_whole_stream("multicast", &lan, &bc, &rxs);
    // The point of multicast: one datagram per packet, whatever the audience.
    assert_eq!(figure(&bc, "datagrams_sent"), figure(&bc, "packets_sent"));
}

/// A host's unique-local IPv6 address (on a [`lan_v6`] LAN).
fn ula(host: &Host) -> String {
    host.v6.expect("an IPv6 LAN").ula.to_string()
}

/// A host's link-local IPv6 address (on a [`lan_v6`] LAN).
fn link_local(host: &Host) -> String {
    host.v6.expect("an IPv6 LAN").link_local.to_string()
}

/// (a6) IPv6 multicast to a site-local group, each host naming its
/// interface by its unique-local address: the outgoing interface
/// (IPV6_MULTICAST_IF) and the join are found by address, and the stream
/// crosses the bridge whole to all four receivers.
#[test]
fn ipv6_multicast_reaches_every_receiver_host_exactly() {
    let _serial = serial();
    let Some(lan) = lan_v6() else { return };
    let (bc, rxs) = multicast_run(&lan, GROUP_V6, ula);
    println!("ipv6 ff15 broadcaster: {bc}");
    assert_whole_stream("ipv6 ff15", &lan, &bc, &rxs);
    assert_eq!(figure(&bc, "datagrams_sent"), figure(&bc, "packets_sent"));
}

/// (a6) IPv6 multicast to a link-local group (`ff12::`), each host naming
/// its interface by its `fe80::` address: a link-local group means nothing
/// without an interface, so this guards the scope id the binary gives the
/// join's bind (Linux refuses to bind `ff12::` without one, EINVAL) and
/// exercises the scoped sends.
#[test]
fn ipv6_link_local_multicast_reaches_every_receiver_host_exactly() {
    let _serial = serial();
    let Some(lan) = lan_v6() else { return };
    let (bc, rxs) = multicast_run(&lan, GROUP_V6_LINK, link_local);
    println!("ipv6 ff12 broadcaster: {bc}");
    assert_whole_stream("ipv6 ff12", &lan, &bc, &rxs);
    assert_eq!(figure(&bc, "datagrams_sent"), figure(&bc, "packets_sent"));
}

/// (b) Subnet broadcast to 10.77.S.255: every host on the subnet gets it.
#[test]
fn subnet_broadcast_reaches_every_receiver_host_exactly() {
    let _serial = serial();
    let Some(lan) = lan() else { return };
    let bind = format!("0.0.0.0:{STREAM_PORT}");
    let rxs: Vec<Proc> = lan
        .receivers()
        .iter()
        .map(|h| receiver(&lan, h, &["--bind", &bind]))
        .collect();
    let to = format!("{}:{STREAM_PORT}", lan.broadcast_addr());
    let bc = broadcaster(
        &lan,
        lan.broadcaster(),
        &["--broadcast", &to, "--duration", "2s"],
    )
    .json(PATIENCE);
    let rxs = stop(rxs);
    println!("broadcast broadcaster: {bc}");
    assert_whole_stream("broadcast", &lan, &bc, &rxs);
    assert_eq!(figure(&bc, "datagrams_sent"), figure(&bc, "packets_sent"));
}

/// Waits until the broadcaster's per-second line says it has `n`
/// subscribers (`subscribers N` on stderr).
fn wait_subscribers(bc: &mut Proc, n: u64) {
    let end = std::time::Instant::now() + PATIENCE;
    loop {
        let l = bc.wait_for("subscribers", end - std::time::Instant::now());
        let count = l
            .split("subscribers")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|w| {
                w.trim_matches(|c: char| !c.is_ascii_digit())
                    .parse::<u64>()
                    .ok()
            });
        if count == Some(n) {
            return;
        }
        assert!(
            std::time::Instant::now() < end,
            "never {n} subscribers: {l}"
        );
    }
}

/// (c) Unicast subscriptions: four receivers subscribe to the broadcaster's
/// address, pass the cookie handshake, and each gets the stream from its
/// first packet to the goodbye without a loss; they measure the round trip.
#[test]
fn subscriptions_deliver_the_stream_to_every_receiver_host() {
    let _serial = serial();
    let Some(lan) = lan() else { return };
    let bc_host = lan.broadcaster();
    let bind = format!("{}:{SUBSCRIBE_PORT}", bc_host.ip);
    let mut bc = broadcaster(&lan, bc_host, &["--bind", &bind, "--duration", "4s"]);
    let rxs: Vec<Proc> = lan
        .receivers()
        .iter()
        .map(|h| receiver(&lan, h, &["--subscribe", &bind]))
        .collect();
    wait_subscribers(&mut bc, RECEIVERS as u64);
    let bc = bc.json(PATIENCE);
    let rxs = stop(rxs);
    println!("subscribe broadcaster: {bc}");
    let sent = figure(&bc, "packets_sent");
    assert_eq!(figure(&bc, "accepted"), RECEIVERS as u64, "{bc}");
    assert_eq!(figure(&bc, "refused_full"), 0, "{bc}");
    assert_eq!(figure(&bc, "bad_cookie"), 0, "{bc}");
    assert_eq!(figure(&bc, "expired"), 0, "{bc}");
    for (host, f) in lan.receivers().iter().zip(&rxs) {
        println!("{}", line("subscribe", host, f));
        // A subscriber joins after the stream started: its span begins at
        // its first packet and ends at the goodbye's final number.
        assert_eq!(figure(f, "lost"), 0, "{}: {f}", host.ip);
        assert_eq!(figure(f, "received"), figure(f, "expected"), "{f}");
        assert!(figure(f, "expected") > sent / 2, "{}: {f}", host.ip);
        for zero in ["duplicates", "reordered", "stale", "malformed", "restarts"] {
            assert_eq!(figure(f, zero), 0, "{} {zero}: {f}", host.ip);
        }
        assert_eq!(f["goodbye"], true, "{}: {f}", host.ip);
        assert_eq!(figure(f, "sender_packets_sent"), sent, "{f}");
        assert!(figure(&f["rtt_us"], "samples") >= 1, "{}: {f}", host.ip);
        assert!(f["subscription"].as_str().is_some(), "{}: {f}", host.ip);
    }
}

/// nftables in `host`: a table `tc` whose input chain counts every stream
/// datagram (counter `seen`); [`add_drop`] adds the random drop later.
fn nft_seen_counter(lan: &Lan, host: &Host) {
    nft(lan, host, &["add", "table", "inet", "tc"]);
    nft(lan, host, &["add", "counter", "inet", "tc", "seen"]);
    nft(lan, host, &["add", "counter", "inet", "tc", "dropped"]);
    nft(
        lan,
        host,
        &[
            "add", "chain", "inet", "tc", "in", "{", "type", "filter", "hook", "input", "priority",
            "0", ";", "}",
        ],
    );
    let port = STREAM_PORT.to_string();
    nft(
        lan,
        host,
        &[
            "add", "rule", "inet", "tc", "in", "udp", "dport", &port, "counter", "name", "seen",
        ],
    );
}

/// Drops 5% of the stream's datagrams at `host`, at random, except goodbyes
/// (the kind byte, UDP payload offset 5, is `@th,104,8`), counting each drop
/// in counter `dropped`.
fn add_drop(lan: &Lan, host: &Host) {
    let port = STREAM_PORT.to_string();
    nft(
        lan,
        host,
        &[
            "add",
            "rule",
            "inet",
            "tc",
            "in",
            "udp",
            "dport",
            &port,
            "@th,104,8",
            "!=",
            "3",
            "numgen",
            "random",
            "mod",
            "100",
            "<",
            "5",
            "counter",
            "name",
            "dropped",
            "drop",
        ],
    );
}

/// (d) nftables drops a random 5% of one receiver's stream; that receiver's
/// `lost` equals the drop counter exactly and the others lose nothing.
///
/// Why the equality is exact: a receiver's `expected` runs from the first
/// sequence number it received to the goodbye's `final_seq`. The drop rule
/// is added only once the `seen` counter shows a datagram has passed the
/// input hook, so that first datagram is delivered and no drop happens
/// before it; goodbyes are never dropped, so the end of the span is known;
/// the bridge neither drops nor reorders, so every number in the span
/// reaches the hook once and is either dropped (counted) or delivered
/// (received, as `socket_drops` is 0). So lost = expected − received =
/// dropped.
#[test]
fn nftables_drops_equal_the_receivers_lost_exactly() {
    let _serial = serial();
    if !nft_or_skip() {
        return;
    }
    let Some(lan) = lan() else { return };
    let victim = lan.receivers()[0].clone();
    nft_seen_counter(&lan, &victim);
    let rxs: Vec<Proc> = lan
        .receivers()
        .iter()
        .map(|h| {
            let ip = h.ip.to_string();
            receiver(&lan, h, &["--group", GROUP, "--interface", &ip])
        })
        .collect();
    let bc_ip = lan.broadcaster().ip.to_string();
    let bc = broadcaster(
        &lan,
        lan.broadcaster(),
        &["--group", GROUP, "--interface", &bc_ip, "--duration", "3s"],
    );
    let t0 = std::time::Instant::now();
    while nft_counter(&lan, &victim, "tc", "seen") == 0 {
        assert!(t0.elapsed() < PATIENCE, "no stream reached {}", victim.ip);
        std::thread::sleep(Duration::from_millis(2));
    }
    add_drop(&lan, &victim);
    let seen_before_drop_rule = nft_counter(&lan, &victim, "tc", "seen");
    let bc = bc.json(PATIENCE);
    let rxs = stop(rxs);
    let dropped = nft_counter(&lan, &victim, "tc", "dropped");
    let seen = nft_counter(&lan, &victim, "tc", "seen");
    println!("nftables broadcaster: {bc}");
    let sent = figure(&bc, "packets_sent");
    for (i, (host, f)) in lan.receivers().iter().zip(&rxs).enumerate() {
        println!(
            "{}",
            line(if i == 0 { "nft-drop" } else { "multicast" }, host, f)
        );
        assert_eq!(figure(f, "socket_drops"), 0, "{}: {f}", host.ip);
        assert_eq!(
            figure(f, "received") + figure(f, "lost"),
            figure(f, "expected")
        );
        if i > 0 {
            assert_eq!(figure(f, "lost"), 0, "{}: {f}", host.ip);
            assert_eq!(figure(f, "expected"), sent, "{}: {f}", host.ip);
        }
    }
    let f = &rxs[0];
    println!(
        "nftables at {}: counter dropped {dropped} of {seen} stream datagrams seen \
         (drop rule added after {seen_before_drop_rule}); receiver lost {} of expected {}",
        victim.ip, f["lost"], f["expected"]
    );
    assert!(dropped > 0, "a 3 s stream at 5% loses something: {f}");
    assert_eq!(
        figure(f, "lost"),
        dropped,
        "lost must equal nft's count: {f}"
    );
    assert_eq!(seen, sent, "every datagram reached the victim's hook once");
    assert_eq!(figure(f, "received"), figure(f, "expected") - dropped);
}

/// (e) A subscribed receiver killed outright (no unsubscribe, and its host
/// sends no ICMP, as if it had vanished) stops being sent the stream once
/// its lease passes: the broadcaster counts it expired, and nftables in its
/// host counts no stream datagram after lease + margin.
#[test]
fn a_vanished_subscriber_expires_and_gets_no_more_stream() {
    let _serial = serial();
    if !nft_or_skip() {
        return;
    }
    let Some(lan) = lan() else { return };
    let bc_host = lan.broadcaster().clone();
    let victim = lan.receivers()[0].clone();
    // Count stream datagrams (snapshot kind 1, at @th,104,8) from the
    // broadcaster into the victim, and let the victim send no ICMP (a
    // vanished host says nothing; only the lease can tell).
    let bc_ip = bc_host.ip.to_string();
    nft(&lan, &victim, &["add", "table", "inet", "tc"]);
    nft(&lan, &victim, &["add", "counter", "inet", "tc", "stream"]);
    nft(
        &lan,
        &victim,
        &[
            "add", "chain", "inet", "tc", "in", "{", "type", "filter", "hook", "input", "priority",
            "0", ";", "}",
        ],
    );
    nft(
        &lan,
        &victim,
        &[
            "add", "chain", "inet", "tc", "out", "{", "type", "filter", "hook", "output",
            "priority", "0", ";", "}",
        ],
    );
    nft(
        &lan,
        &victim,
        &[
            "add",
            "rule",
            "inet",
            "tc",
            "in",
            "ip",
            "saddr",
            &bc_ip,
            "meta",
            "l4proto",
            "udp",
            "@th,104,8",
            "1",
            "counter",
            "name",
            "stream",
        ],
    );
    nft(
        &lan,
        &victim,
        &[
            "add", "rule", "inet", "tc", "out", "meta", "l4proto", "icmp", "drop",
        ],
    );
    let lease = Duration::from_secs(1);
    let margin = Duration::from_millis(700);
    let bind = format!("{}:{SUBSCRIBE_PORT}", bc_host.ip);
    let mut bc = broadcaster(
        &lan,
        &bc_host,
        &["--bind", &bind, "--lease", "1s", "--duration", "5s"],
    );
    let mut rxs: Vec<Proc> = lan
        .receivers()
        .iter()
        .map(|h| receiver(&lan, h, &["--subscribe", &bind]))
        .collect();
    wait_subscribers(&mut bc, RECEIVERS as u64);
    let before_kill = nft_counter(&lan, &victim, "tc", "stream");
    rxs[0].signal(Signal::SIGKILL);
    let killed = rxs.remove(0);
    let (status, _) = killed.finish(PATIENCE);
    assert!(!status.success(), "SIGKILL ends the receiver");
    std::thread::sleep(lease + margin);
    let after_lease = nft_counter(&lan, &victim, "tc", "stream");
    let bc = bc.json(PATIENCE);
    let at_end = nft_counter(&lan, &victim, "tc", "stream");
    let rxs = stop(rxs);
    println!("expiry broadcaster: {bc}");
    println!(
        "expiry at {}: stream datagrams into it: {before_kill} before the kill, \
         {after_lease} at kill + lease + {margin:?}, {at_end} at the end",
        victim.ip
    );
    assert!(before_kill > 0, "the victim was subscribed and streamed to");
    assert!(figure(&bc, "expired") >= 1, "{bc}");
    assert_eq!(
        at_end, after_lease,
        "no stream datagram to a subscriber after its lease passed"
    );
    for (host, f) in lan.receivers()[1..].iter().zip(&rxs) {
        println!("{}", line("subscribe", host, f));
        assert_eq!(figure(f, "lost"), 0, "{}: {f}", host.ip);
        assert_eq!(f["goodbye"], true, "{}: {f}", host.ip);
    }
}

/// A subscribe with a forged source address (another host's) gets that
/// host no stream and no reply larger than the request: nftables in the
/// forger's host rewrites its subscribes' source to the victim's address
/// (SNAT), so the broadcaster's challenges go to the victim, who never
/// confirms. nftables in the victim's host counts what arrives from the
/// broadcaster: challenges only, none longer than the 52-byte subscribe
/// (UDP length 60), and no stream datagram.
#[test]
fn a_spoofed_subscribe_sends_the_victim_no_stream_and_nothing_larger() {
    let _serial = serial();
    if !nft_or_skip() {
        return;
    }
    let Some(lan) = lan() else { return };
    let bc_host = lan.broadcaster().clone();
    let (forger, victim) = (lan.receivers()[0].clone(), lan.receivers()[1].clone());
    let (bc_ip, victim_ip) = (bc_host.ip.to_string(), victim.ip.to_string());
    let port = SUBSCRIBE_PORT.to_string();
    nft(&lan, &forger, &["add", "table", "ip", "forge"]);
    nft(
        &lan,
        &forger,
        &[
            "add",
            "chain",
            "ip",
            "forge",
            "post",
            "{",
            "type",
            "nat",
            "hook",
            "postrouting",
            "priority",
            "100",
            ";",
            "}",
        ],
    );
    nft(
        &lan,
        &forger,
        &[
            "add", "rule", "ip", "forge", "post", "ip", "daddr", &bc_ip, "udp", "dport", &port,
            "snat", "to", &victim_ip,
        ],
    );
    nft(&lan, &victim, &["add", "table", "inet", "tc"]);
    for counter in ["from_bc", "larger", "stream"] {
        nft(&lan, &victim, &["add", "counter", "inet", "tc", counter]);
    }
    nft(
        &lan,
        &victim,
        &[
            "add", "chain", "inet", "tc", "in", "{", "type", "filter", "hook", "input", "priority",
            "0", ";", "}",
        ],
    );
    let rule = |tail: &[&str]| {
        let mut args = vec!["add", "rule", "inet", "tc", "in", "ip", "saddr", &bc_ip];
        args.extend_from_slice(tail);
        nft(&lan, &victim, &args);
    };
    rule(&["meta", "l4proto", "udp", "counter", "name", "from_bc"]);
    rule(&["udp", "length", ">", "60", "counter", "name", "larger"]);
    rule(&[
        "meta",
        "l4proto",
        "udp",
        "@th,104,8",
        "{",
        "1,",
        "2,",
        "3",
        "}",
        "counter",
        "name",
        "stream",
    ]);
    let bind = format!("{bc_ip}:{SUBSCRIBE_PORT}");
    let bc = broadcaster(&lan, &bc_host, &["--bind", &bind, "--duration", "4s"]);
    let forging = receiver(&lan, &forger, &["--subscribe", &bind]);
    // No subscription was ever accepted, so it sent nothing: exit 1, its
    // figures printed all the same.
    let (status, bc) = bc.json_and_status(PATIENCE);
    assert_eq!(status.code(), Some(1), "{bc}");
    assert_eq!(figure(&bc, "datagrams_sent"), 0, "{bc}");
    std::thread::sleep(GRACE);
    let mut forging = forging;
    forging.signal(Signal::SIGINT);
    // Never answered, it took nothing: exit 1 (and after 5 s it gives up).
    let (status, forging) = forging.json_and_status(PATIENCE);
    assert_eq!(status.code(), Some(1), "{forging}");
    let (from_bc, larger, stream) = (
        nft_counter(&lan, &victim, "tc", "from_bc"),
        nft_counter(&lan, &victim, "tc", "larger"),
        nft_counter(&lan, &victim, "tc", "stream"),
    );
    println!("spoof broadcaster: {bc}");
    println!("{}", line("spoofer", &forger, &forging));
    println!(
        "spoof: {} subscribes forged as {victim_ip}; at the victim from the broadcaster: \
         {from_bc} datagrams, {larger} longer than a subscribe, {stream} stream",
        figure(&bc, "subscribe_requests")
    );
    assert!(
        figure(&bc, "subscribe_requests") >= 2,
        "the forger kept asking: {bc}"
    );
    assert_eq!(figure(&bc, "accepted"), 0, "{bc}");
    assert_eq!(figure(&bc, "subscribers"), 0, "{bc}");
    assert_eq!(
        from_bc,
        figure(&bc, "challenges_sent"),
        "only challenges reach the victim"
    );
    assert_eq!(larger, 0, "no reply is larger than the request");
    assert_eq!(stream, 0, "no stream to an address that never confirmed");
    assert_eq!(figure(&forging, "received"), 0, "{forging}");
    assert_eq!(forging["received_any"], false, "{forging}");
    assert!(
        forging["subscription"] == "subscribing" || forging["subscription"] == "failed: no answer",
        "{forging}"
    );
}

/// (f) The broadcaster is killed outright (no goodbye) and a new one starts
/// (a new session): every receiver counts one restart and follows the new
/// session once it has proven itself, from its `MIN_SEQUENTIAL`th packet
/// (session probation, issue 10), losing no figures.
///
/// With 50 entities a tick is one datagram, so the first session's packets
/// a receiver got are its ticks plus one sender report (it is killed
/// between 1 s and 2 s into its run); every tick of session 1 and every
/// tick of session 2 but the first `MIN_SEQUENTIAL − 1` (held on
/// probation: `unproven`, received but not applied) must be applied:
/// `ticks_applied` = (session 1's packets − 1) + session 2's `ticks_sent`
/// − (`MIN_SEQUENTIAL` − 1).
#[test]
fn receivers_follow_a_restarted_broadcaster_once_it_proved_itself() {
    let _serial = serial();
    let Some(lan) = lan() else { return };
    let rxs: Vec<Proc> = lan
        .receivers()
        .iter()
        .map(|h| {
            let ip = h.ip.to_string();
            receiver(&lan, h, &["--group", GROUP, "--interface", &ip])
        })
        .collect();
    let bc_ip = lan.broadcaster().ip.to_string();
    let args = ["--group", GROUP, "--interface", &bc_ip, "--entities", "50"];
    let mut first = broadcaster(&lan, lan.broadcaster(), &args);
    // Its first per-second line comes after 1 s: a sender report is out.
    first.wait_for("ticks sent", PATIENCE);
    std::thread::sleep(Duration::from_millis(400));
    first.signal(Signal::SIGKILL);
    let (status, _) = first.finish(PATIENCE);
    assert!(!status.success());
    let second = broadcaster(
        &lan,
        lan.broadcaster(),
        &[&args[..], &["--duration", "2s"]].concat(),
    )
    .json(PATIENCE);
    let rxs = stop(rxs);
    println!("restart second broadcaster: {second}");
    let sent2 = figure(&second, "packets_sent");
    let ticks2 = figure(&second, "ticks_sent");
    for (host, f) in lan.receivers().iter().zip(&rxs) {
        println!("{}", line("restart", host, f));
        assert_eq!(figure(f, "restarts"), 1, "{}: {f}", host.ip);
        assert_eq!(figure(f, "lost"), 0, "{}: {f}", host.ip);
        assert_eq!(figure(f, "stale"), 0, "{}: {f}", host.ip);
        assert_eq!(f["goodbye"], true, "{}: {f}", host.ip);
        assert_eq!(figure(f, "sender_packets_sent"), sent2, "{f}");
        let first_session = figure(f, "received") - sent2;
        assert!(first_session > 1, "{}: {f}", host.ip);
        let probation = u64::from(tickcast::core::tracker::MIN_SEQUENTIAL) - 1;
        assert_eq!(figure(f, "unproven"), probation, "{}: {f}", host.ip);
        assert_eq!(
            figure(f, "ticks_applied"),
            first_session - 1 + ticks2 - probation,
            "{}: every tick of both sessions applied but those on probation: {f}",
            host.ip
        );
    }
}

/// The stale cleanup, end to end, on namespaces this test makes itself:
/// of four namespaces with names like a LAN's, it deletes exactly the one
/// whose marker names an owner that is gone, and keeps the one without a
/// marker, the one whose owner lives (this process), and the one whose
/// owner was in another pid namespace. The test then deletes what it made.
#[test]
fn stale_cleanup_deletes_only_marked_namespaces_of_gone_owners() {
    let _serial = serial();
    if !available() {
        return skip(SKIP);
    }
    let me = Owner::current().expect("this process's owner record");
    let name = |what: &str| format!("{PREFIX}-stale{}-{what}", std::process::id());
    let gone = Owner {
        start_time: me.start_time + 1, // this pid, another start: a reused pid
        ..me
    };
    let elsewhere = Owner {
        pid_ns: me.pid_ns ^ 1,
        ..gone
    };
    let cases = [
        (name("unmarked"), None, true),
        (name("alive"), Some(me), true),
        (name("elsewhere"), Some(elsewhere), true),
        (name("gone"), Some(gone), false),
    ];
    std::fs::create_dir_all(MARKER_DIR).unwrap();
    for (ns, marker, _) in &cases {
        if let Some(owner) = marker {
            std::fs::write(marker_path(ns), owner.to_marker()).unwrap();
        }
        let out = std::process::Command::new("ip")
            .args(["netns", "add", ns])
            .output()
            .unwrap();
        assert!(out.status.success(), "ip netns add {ns}: {out:?}");
    }
    let removed = remove_stale();
    let listed = String::from_utf8(
        std::process::Command::new("ip")
            .args(["netns", "list"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let exists = |ns: &str| {
        listed
            .lines()
            .any(|l| l.split_whitespace().next() == Some(ns))
    };
    // (name, namespace there, marker there) after the cleanup.
    let after: Vec<(String, bool, bool)> = cases
        .iter()
        .map(|(ns, _, _)| (ns.clone(), exists(ns), marker_path(ns).exists()))
        .collect();
    // Delete what this test made before judging, so a failure leaves nothing.
    for (ns, _, _) in &cases {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", ns])
            .output();
        let _ = std::fs::remove_file(marker_path(ns));
    }
    for ((ns, marker, kept), (_, there, marker_there)) in cases.iter().zip(&after) {
        assert_eq!(there, kept, "{ns}: namespace kept? {after:?}");
        assert_eq!(
            *marker_there,
            marker.is_some() && *kept,
            "{ns}: a kept namespace keeps its marker, a deleted one loses it: {after:?}"
        );
    }
    println!(
        "stale cleanup removed {removed:?}; (namespace, there, marker there) after it: {after:?}"
    );
    assert!(removed.contains(&name("gone")), "{removed:?}");
}
