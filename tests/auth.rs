//! Packet authentication over real loopback sockets (issue 5, item 2): a
//! keyed broadcaster and receiver lose nothing; forged, tampered and
//! replayed datagrams are all counted, exactly, and none is applied; a key
//! on one side only fails loudly; bad key files are one clear line; and a
//! flood of bad datagrams prints a bounded number of log lines.
//!
//! No test here asserts how fast anything is: waits are bounded and only
//! counts are checked.
// Tests, benches, examples and the binary own their clocks, sockets and files;
// the layer wall in clippy.toml is for the library core.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{tap, wait_until};
use tickcast::core::figures::Figures;
use tickcast::runtime::broadcaster::{BroadcastConfig, BroadcastFigures, Broadcaster};
use tickcast::runtime::receiver::{Receiver, ReceiverConfig, LOG_BURST, LOG_PER_SECOND};
use tickcast::wire::auth::{self, Key, KEY_LEN};
use tickcast::wire::{self, Body, Entity, Packet, SnapshotHead};

const PATIENCE: Duration = Duration::from_secs(10);

fn key(b: u8) -> Key {
    Key::from_bytes([b; KEY_LEN])
}

fn receiver(key: Option<Key>) -> Receiver {
    Receiver::start(ReceiverConfig {
        key,
        ..ReceiverConfig::unicast((Ipv4Addr::LOCALHOST, 0).into())
    })
    .unwrap()
}

/// A short keyed-or-not run to `destinations`, waited for.
fn broadcast(key: Option<Key>, destinations: Vec<SocketAddr>) -> BroadcastFigures {
    let b = Broadcaster::start(BroadcastConfig {
        destinations,
        bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        entities: 300,
        rate_hz: 60.0,
        duration: Some(Duration::from_millis(500)),
        key,
        ..BroadcastConfig::default()
    })
    .unwrap()
    .wait();
    assert_eq!(b.send_errors, 0, "{b:?}");
    b
}

/// Every datagram `sock` receives until it has been quiet for its timeout
/// (bounded: 100,000 datagrams at most).
fn capture(sock: &UdpSocket) -> Vec<Vec<u8>> {
    let mut buf = vec![0u8; wire::MAX_DATAGRAM];
    let mut got = Vec::new();
    for _ in 0..100_000 {
        let Ok(n) = sock.recv(&mut buf) else { break };
        got.push(buf[..n].to_vec());
    }
    got
}

fn send_all(to: SocketAddr, datagrams: &[Vec<u8>]) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    for d in datagrams {
        s.send_to(d, to).unwrap();
        // Paced so the receiver's socket buffer cannot overflow.
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// What is applied, to show that nothing changed it.
fn applied(f: &Figures) -> (u64, u64, Option<u64>, u64) {
    (
        f.counters.received,
        f.counters.entities_applied,
        f.count,
        f.counters.ticks_applied,
    )
}

#[test]
fn keyed_stream_arrives_whole_and_forged_tampered_and_replayed_datagrams_are_counted_not_applied() {
    let k = key(0x5a);
    let r = receiver(Some(k.clone()));
    let tap = tap();
    let b = broadcast(
        Some(k.clone()),
        vec![r.local_addr(), tap.local_addr().unwrap()],
    );
    let f = common::settle(&r, b.packets_sent);
    assert_eq!(
        (f.counters.lost, f.counters.expected, f.counters.received),
        (0, b.packets_sent, b.packets_sent),
        "{f:?}"
    );
    assert_eq!(
        (
            f.counters.auth_failed,
            f.counters.replayed,
            f.counters.auth_unexpected,
            f.counters.malformed
        ),
        (0, 0, 0, 0)
    );
    assert_eq!(f.counters.ticks_applied, b.ticks_sent, "{f:?}");
    assert!(f.goodbye);
    let before = applied(&f);
    let world_before = r.world().get(0).unwrap();

    let captured = capture(&tap);
    assert_eq!(
        captured.len() as u64,
        b.packets_sent,
        "the tap saw every datagram"
    );

    // Replayed: every captured datagram again, verbatim.
    send_all(r.local_addr(), &captured);
    let mut n = b.packets_sent + captured.len() as u64;
    let f = common::settle(&r, n);
    assert_eq!(f.counters.replayed, captured.len() as u64, "{f:?}");
    assert_eq!((f.counters.auth_failed, f.counters.malformed), (0, 0));
    assert_eq!(applied(&f), before, "a replay changed the world");

    // Forged: well-formed, newer packets of the live session, sealed with
    // another key.
    let session = b.session;
    let next_seq = {
        let mut e = Vec::new();
        let last = captured.last().unwrap();
        let p = wire::decode_opened(auth::open(&k, last).unwrap(), &mut e).unwrap();
        p.seq.wrapping_add(1)
    };
    let forged: Vec<Vec<u8>> = (0..50u32)
        .map(|i| {
            let p = Packet {
                session,
                seq: next_seq.wrapping_add(i),
                body: Body::Snapshot(SnapshotHead {
                    tick: 1_000_000 + u64::from(i),
                    scheduled_ns: tickcast::runtime::clock::now_ns(),
                    sent_ns: tickcast::runtime::clock::now_ns(),
                    part: 0,
                    parts: 1,
                }),
            };
            let e = [Entity {
                id: 0,
                x: 9.0,
                y: 9.0,
                z: 9.0,
            }];
            let mut d = vec![0; 256];
            let len = wire::encode(&p, &e, &mut d).unwrap();
            d.truncate(len);
            auth::seal(&key(0x5b), &mut d);
            d
        })
        .collect();
    // Tampered: each captured datagram with one bit flipped (a different
    // bit each time, tag bytes included).
    let tampered: Vec<Vec<u8>> = captured
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let mut d = d.clone();
            let bit = (i * 61) % (d.len() * 8);
            d[bit / 8] ^= 1 << (bit % 8);
            d
        })
        .collect();
    send_all(r.local_addr(), &forged);
    send_all(r.local_addr(), &tampered);
    n += (forged.len() + tampered.len()) as u64;
    let f = common::settle(&r, n);
    assert_eq!(
        f.counters.auth_failed,
        (forged.len() + tampered.len()) as u64,
        "{f:?}"
    );
    assert_eq!(
        (f.counters.replayed, f.counters.malformed),
        (captured.len() as u64, 0)
    );
    assert_eq!(
        applied(&f),
        before,
        "a forged or tampered datagram was applied"
    );
    assert_eq!(r.world().get(0).unwrap(), world_before);
    eprintln!(
        "keyed: sent {} packets, lost {}, replayed {} of {}, auth_failed {} ({} forged + {} tampered)",
        b.packets_sent,
        f.counters.lost,
        f.counters.replayed,
        captured.len(),
        f.counters.auth_failed,
        forged.len(),
        tampered.len()
    );
}

#[test]
fn key_on_one_side_only_is_counted_and_nothing_is_applied() {
    // Keyed broadcaster, keyless receiver: every datagram is auth_unexpected.
    let r = receiver(None);
    let b = broadcast(Some(key(1)), vec![r.local_addr()]);
    let f = common::settle(&r, b.packets_sent);
    assert_eq!(f.counters.auth_unexpected, b.packets_sent, "{f:?}");
    assert_eq!(
        (f.counters.received, f.counters.entities_applied, f.count),
        (0, 0, None)
    );
    assert_eq!((f.counters.auth_failed, f.counters.replayed), (0, 0));
    eprintln!(
        "keyed -> keyless: sent {}, auth_unexpected {}",
        b.packets_sent, f.counters.auth_unexpected
    );

    // Keyless broadcaster, keyed receiver: every datagram fails to open.
    let r = receiver(Some(key(1)));
    let b = broadcast(None, vec![r.local_addr()]);
    let f = common::settle(&r, b.packets_sent);
    assert_eq!(f.counters.auth_failed, b.packets_sent, "{f:?}");
    assert_eq!(
        (f.counters.received, f.counters.entities_applied, f.count),
        (0, 0, None)
    );
    assert_eq!(
        (
            f.counters.auth_unexpected,
            f.counters.replayed,
            f.counters.malformed
        ),
        (0, 0, 0)
    );
    eprintln!(
        "keyless -> keyed: sent {}, auth_failed {}",
        b.packets_sent, f.counters.auth_failed
    );
}

#[test]
fn a_keyed_subscription_gets_the_stream_and_a_keyless_one_does_not() {
    let k = key(7);
    let b = Broadcaster::start(BroadcastConfig {
        bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        entities: 50,
        rate_hz: 100.0,
        key: Some(k.clone()),
        ..BroadcastConfig::default()
    })
    .unwrap();
    let server = b.local_addr();
    let keyed = Receiver::start(ReceiverConfig {
        key: Some(k),
        ..ReceiverConfig::subscribe(server)
    })
    .unwrap();
    let keyless = Receiver::start(ReceiverConfig::subscribe(server)).unwrap();
    assert!(
        wait_until(PATIENCE, || keyed.figures().counters.ticks_applied >= 20),
        "{:?}",
        keyed.figures()
    );
    let f = keyless.figures();
    // The keyless receiver's requests are not sealed: dropped unanswered.
    assert_eq!(
        (
            f.counters.received,
            f.counters.control_datagrams,
            f.counters.entities_applied
        ),
        (0, 0, 0),
        "{f:?}"
    );
    let k = keyed.figures();
    assert_eq!(
        (
            k.counters.auth_failed,
            k.counters.malformed,
            k.counters.replayed
        ),
        (0, 0, 0),
        "{k:?}"
    );
    let bf = b.figures();
    assert_eq!(bf.subscribers, 1);
    // ...and counted: the keyless receiver's subscribes failed to open.
    assert!(bf.summary().auth_failed >= 1, "{:?}", bf.summary());
    assert_eq!(bf.summary().accepted, 1);
    b.stop();
}

// ---- the binary -------------------------------------------------------

const HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

fn key_file(name: &str, content: &str, mode: u32) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = std::env::temp_dir().join(format!("tickcast-auth-it-{}-{name}", std::process::id()));
    std::fs::write(&p, content).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    p
}

fn tickcast(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tickcast"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn bad_key_files_get_one_line_and_a_non_zero_exit() {
    let missing = std::env::temp_dir().join("tickcast-auth-it-no-such-key");
    let short = key_file("short", &HEX[..40], 0o600);
    let open = key_file("open", HEX, 0o644);
    for (path, want) in [
        (&missing, "does not exist"),
        (&short, "holds 40 hex digits"),
        (&open, "chmod 600"),
    ] {
        for cmd in ["broadcast", "receive"] {
            let out = tickcast(&[
                cmd,
                "--key-file",
                path.to_str().unwrap(),
                "--duration",
                "1s",
            ]);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{cmd} {path:?}: {err}");
            assert_eq!(err.trim().lines().count(), 1, "{cmd}: {err:?}");
            assert!(err.starts_with("tickcast: key file"), "{cmd}: {err:?}");
            assert!(err.contains(want), "{cmd}: {err:?}");
        }
    }
    let _ = std::fs::remove_file(short);
    let _ = std::fs::remove_file(open);
}

#[test]
fn a_keyless_receive_warns_once_about_sealed_datagrams() {
    let k = key_file("warn", HEX, 0o600);
    let port = common::free_udp_port();
    let bind = format!("127.0.0.1:{port}");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tickcast"));
    cmd.args(["receive", "--bind", &bind, "--duration", "2s", "--json"]);
    let rx = common::Ready::start(cmd, false, "receiving on", Duration::from_secs(10));
    let bc = tickcast(&[
        "broadcast",
        "--to",
        &bind,
        "--key-file",
        k.to_str().unwrap(),
        "--duration",
        "500ms",
        "--max-subscribers",
        "0",
    ]);
    assert!(
        bc.status.success(),
        "{}",
        String::from_utf8_lossy(&bc.stderr)
    );
    let out = rx.wait();
    let _ = std::fs::remove_file(k);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let warnings = stderr
        .lines()
        .filter(|l| l.contains("no --key-file was given; they are not applied"))
        .count();
    assert_eq!(warnings, 1, "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["auth_unexpected"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(v["auth_failed"].as_u64(), Some(0));
    assert_eq!(v["replayed"].as_u64(), Some(0));
    assert_eq!(v["received"].as_u64(), Some(0));
}

#[test]
fn a_flood_of_bad_datagrams_prints_a_bounded_number_of_lines() {
    let port = common::free_udp_port();
    let bind = format!("127.0.0.1:{port}");
    let start = Instant::now();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tickcast"));
    // The reject lines are the library's log warnings: a RUST_LOG in
    // the environment could hide them.
    cmd.args(["receive", "--bind", &bind, "--duration", "2s", "--json"])
        .env_remove("RUST_LOG");
    let rx = common::Ready::start(cmd, false, "receiving on", Duration::from_secs(10));
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to: SocketAddr = bind.parse().unwrap();
    const FLOOD: usize = 5_000;
    for i in 0..FLOOD {
        s.send_to(format!("garbage {i}").as_bytes(), to).unwrap();
    }
    // One more after a pause: its line reports what the flood had held back.
    std::thread::sleep(Duration::from_millis(500));
    s.send_to(b"one more", to).unwrap();
    let out = rx.wait();
    let elapsed = start.elapsed().as_secs_f64().ceil() as u64;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("tickcast: rejected datagram from 127.0.0.1:"))
        .collect();
    let suppressed: u64 = lines
        .iter()
        .filter_map(|l| l.rsplit_once(" (")?.1.strip_suffix(" more suppressed)"))
        .map(|n| n.parse::<u64>().unwrap())
        .sum();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let malformed = v["malformed"].as_u64().unwrap();
    let bound = u64::from(LOG_BURST) + u64::from(LOG_PER_SECOND) * elapsed;
    eprintln!(
        "flood: {} sent, {malformed} malformed, {} lines printed, {suppressed} suppressed (bound {bound})",
        FLOOD + 1,
        lines.len()
    );
    assert!(
        lines.len() as u64 <= bound,
        "{} lines > {bound}",
        lines.len()
    );
    assert!(lines.len() as u64 >= u64::from(LOG_BURST).min(malformed));
    assert!(suppressed > 0, "{stderr}");
    // Every rejected datagram is either printed or counted in a note: the
    // last one, after the pause, mentions everything held back before it.
    assert_eq!(lines.len() as u64 + suppressed, malformed, "{stderr}");
    assert!(lines[0].contains(": datagram shorter than"), "{}", lines[0]);
}

#[test]
fn rust_log_off_silences_the_reject_lines_but_not_the_figures() {
    let port = common::free_udp_port();
    let bind = format!("127.0.0.1:{port}");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tickcast"));
    cmd.args(["receive", "--bind", &bind, "--duration", "1s", "--json"])
        .env("RUST_LOG", "off");
    let rx = common::Ready::start(cmd, false, "receiving on", Duration::from_secs(10));
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..20 {
        s.send_to(format!("garbage {i}").as_bytes(), bind.as_str())
            .unwrap();
    }
    let out = rx.wait();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("rejected datagram"), "{stderr}");
    assert!(stderr.starts_with("receiving on 127.0.0.1:"), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["malformed"].as_u64(), Some(20), "{v}");
}
