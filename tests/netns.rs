//! tickcast across a LAN of network namespaces: one broadcaster host and
//! four receiver hosts on a Linux bridge (`tests/netns/harness.rs`), each
//! running the real `tickcast` binary. Multicast, subnet broadcast and
//! unicast subscriptions must each deliver every packet to every receiver;
//! packets nftables drops at one receiver must show up as exactly that many
//! `lost`; a receiver that vanishes must see its subscription expire; and a
//! restarted broadcaster must be followed at once.
//!
//! These tests need root and `ip netns` (and `nft` for the nftables ones).
//! Without them each prints one line, "skipped: needs root and ip netns",
//! and passes; in CI (`CI=true`) it fails instead. All traffic stays inside
//! the namespaces the tests create: nothing is added to the host's own
//! network namespace, and the LAN is deleted when a test ends, even when it
//! fails.
//!
//! The tests take a lock and run one at a time: each one's timing then
//! depends on its own processes only (the machines this runs on may have two
//! cores), and their figures are exact rather than "roughly".

#[path = "netns/harness.rs"]
mod harness;
#[path = "netns/proc.rs"]
mod proc;

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use harness::{Host, Lan};
use nix::sys::signal::Signal;
use proc::{figure, have, is_root, skip, Proc};
use serde_json::Value;

const SKIP: &str = "skipped: needs root and ip netns";
const BIN: &str = env!("CARGO_BIN_EXE_tickcast");
/// Receiver hosts on every LAN.
const RECEIVERS: usize = 4;
/// The stream's port, and the broadcaster's subscription port.
const STREAM_PORT: u16 = 47474;
#[allow(dead_code)] // used by the subscription tests
const SUBSCRIBE_PORT: u16 = 47475;
const GROUP: &str = "239.255.77.1:47474";
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
    if !is_root() || !have("ip") {
        skip(SKIP);
        return None;
    }
    match Lan::new(RECEIVERS) {
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

/// One line of a receiver's figures, for the test's output.
fn line(mode: &str, host: &Host, f: &Value) -> String {
    let lat = &f["latency_us"];
    format!(
        "{mode:<12} {:<12} expected {:>4} received {:>4} lost {:>3} dup {} reord {} stale {} malformed {} restarts {} socket_drops {} ticks_applied {:>4} latency p50 {} us max {} us{}",
        host.ip,
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
        match f.get("rtt_us") {
            Some(rtt) => format!(" rtt p50 {} us", rtt["p50"]),
            None => String::new(),
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

/// (a) Multicast: one send per packet reaches all four receivers.
#[test]
fn multicast_reaches_every_receiver_host_exactly() {
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
    let bc = broadcaster(
        &lan,
        lan.broadcaster(),
        &["--group", GROUP, "--interface", &bc_ip, "--duration", "2s"],
    )
    .json(PATIENCE);
    let rxs = stop(rxs);
    println!("multicast broadcaster: {bc}");
    assert_whole_stream("multicast", &lan, &bc, &rxs);
    // The point of multicast: one datagram per packet, whatever the audience.
    assert_eq!(figure(&bc, "datagrams_sent"), figure(&bc, "packets_sent"));
}

/// nftables in `host`: a table `tc` whose input chain counts every stream
/// datagram (counter `seen`); [`add_drop`] adds the random drop later.
fn nft_seen_counter(lan: &Lan, host: &Host) {
    lan.nft(host, &["add", "table", "inet", "tc"]);
    lan.nft(host, &["add", "counter", "inet", "tc", "seen"]);
    lan.nft(host, &["add", "counter", "inet", "tc", "dropped"]);
    lan.nft(
        host,
        &[
            "add", "chain", "inet", "tc", "in", "{", "type", "filter", "hook", "input", "priority",
            "0", ";", "}",
        ],
    );
    let port = STREAM_PORT.to_string();
    lan.nft(
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
    lan.nft(
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
    while lan.nft_counter(&victim, "tc", "seen") == 0 {
        assert!(t0.elapsed() < PATIENCE, "no stream reached {}", victim.ip);
        std::thread::sleep(Duration::from_millis(2));
    }
    add_drop(&lan, &victim);
    let seen_before_drop_rule = lan.nft_counter(&victim, "tc", "seen");
    let bc = bc.json(PATIENCE);
    let rxs = stop(rxs);
    let dropped = lan.nft_counter(&victim, "tc", "dropped");
    let seen = lan.nft_counter(&victim, "tc", "seen");
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

/// (f) The broadcaster is killed outright (no goodbye) and a new one starts
/// (a new session): every receiver counts one restart and follows the new
/// session from its first tick.
///
/// With 50 entities a tick is one datagram, so the first session's packets
/// a receiver got are its ticks plus one sender report (it is killed
/// between 1 s and 2 s into its run); every tick of both sessions must be
/// applied: `ticks_applied` = (session 1's packets − 1) + session 2's
/// `ticks_sent`. Missing the new session's first tick would make it one less.
#[test]
fn receivers_follow_a_restarted_broadcaster_from_its_first_tick() {
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
        assert_eq!(
            figure(f, "ticks_applied"),
            first_session - 1 + ticks2,
            "{}: every tick of both sessions applied: {f}",
            host.ip
        );
    }
}
