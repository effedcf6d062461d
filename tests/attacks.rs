//! The one-datagram attacks of issue 10, reproduced over loopback with a
//! crafted sender beside a real broadcaster and receiver, each of which
//! must change nothing:
//!
//! (a) keyless: one forged snapshot of a new session id (the bytes of
//!     `proto/vectors/snapshot-empty.hex`) in the middle of a live stream;
//! (b) keyless: one forged snapshot of the live session, 100,000 sequence
//!     numbers ahead;
//! (c) keyed: a receiver that starts after an attacker recorded the sealed
//!     stream, sent the recording once.
//!
//! Plus the defences around them: `ReceiverConfig::from` drops other
//! sources (`foreign`), and a sealed stream from a host whose clock is off
//! by more than the freshness window is refused loudly (`stale_sealed`)
//! until the window is widened.
//!
//! Every send loop is bounded in count and time and goes to loopback only.
//! No test asserts how fast anything is; waits are bounded and only counts
//! are checked.
// Tests, benches, examples and the binary own their clocks, sockets and files;
// the layer wall in clippy.toml is for the library core.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{free_udp_port, tap, wait_until};
use tickcast::core::figures::Figures;
use tickcast::core::source::SourceFilter;
use tickcast::runtime::broadcaster::{BroadcastConfig, BroadcastFigures, Broadcaster};
use tickcast::runtime::clock;
use tickcast::runtime::receiver::{Receiver, ReceiverConfig};
use tickcast::wire::auth::{self, Key, KEY_LEN};
use tickcast::wire::{self, Body, Entity, Packet, SnapshotHead};

const PATIENCE: Duration = Duration::from_secs(10);

fn receiver(config: ReceiverConfig) -> Receiver {
    Receiver::start(config).unwrap()
}

fn keyless_receiver() -> Receiver {
    receiver(ReceiverConfig::unicast((Ipv4Addr::LOCALHOST, 0).into()))
}

/// A 60 Hz broadcaster of 100 entities (two parts a tick) to `destinations`,
/// for `duration`, sending from 127.0.0.1.
fn broadcaster(destinations: Vec<SocketAddr>, duration: Duration, key: Option<Key>) -> Broadcaster {
    Broadcaster::start(BroadcastConfig {
        destinations,
        bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        max_subscribers: 0,
        duration: Some(duration),
        key,
        ..BroadcastConfig::default()
    })
    .unwrap()
}

/// What a live keyless stream must show when a forger sent `forged`
/// datagrams that were held and never applied.
fn assert_unchanged(f: &Figures, b: &BroadcastFigures, forged: u64) {
    assert_eq!(
        f.counters.restarts, 0,
        "a forged datagram restarted the receiver: {f:?}"
    );
    assert_eq!(
        (f.counters.expected, f.counters.received, f.counters.lost),
        (b.packets_sent, b.packets_sent, 0),
        "phantom loss: {f:?}"
    );
    assert_eq!(
        (
            f.counters.stale,
            f.counters.duplicates,
            f.counters.reordered
        ),
        (0, 0, 0),
        "{f:?}"
    );
    assert_eq!(
        f.counters.unproven, forged,
        "only the forged datagrams are held: {f:?}"
    );
    assert_eq!(
        f.counters.ticks_applied, b.ticks_sent,
        "the receiver stalled: {f:?}"
    );
    // The forged ticks are far beyond any the broadcaster reached.
    let last = b.ticks_sent + b.ticks_skipped - 1;
    assert!(
        f.count <= Some(last),
        "the Count left the real stream: {f:?}"
    );
    assert!(f.goodbye, "{f:?}");
}

/// The bytes of a test vector in `proto/vectors/` (hex before each `#`).
fn vector(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("proto/vectors")
        .join(name);
    std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .flat_map(|l| l.split('#').next().unwrap().split_whitespace())
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect::<Vec<_>>()
}

/// The first stream packet `tap` receives, decoded (bounded: 100 tries).
fn observe(tap: &UdpSocket, key: Option<&Key>) -> Packet {
    let mut buf = vec![0u8; wire::MAX_DATAGRAM];
    let mut entities = Vec::new();
    for _ in 0..100 {
        let n = tap.recv(&mut buf).unwrap();
        let decoded = match key {
            Some(k) => wire::decode_opened(auth::open(k, &buf[..n]).unwrap(), &mut entities),
            None => wire::decode(&buf[..n], &mut entities),
        };
        match decoded {
            Ok(p) if p.body.kind().is_sequenced() => return p,
            _ => {}
        }
    }
    panic!("the tap saw no stream packet");
}

/// A one-part snapshot of entities 0 and 1 at `tick`, sent at `sent_ns`.
fn forged_snapshot(session: u64, seq: u32, tick: u64, sent_ns: u64) -> Vec<u8> {
    let p = Packet {
        session,
        seq,
        body: Body::Snapshot(SnapshotHead {
            tick,
            scheduled_ns: sent_ns,
            sent_ns,
            part: 0,
            parts: 1,
        }),
    };
    let e = [0, 1].map(|id| Entity {
        id,
        x: 9.0,
        y: 9.0,
        z: 9.0,
    });
    wire::encode_to_vec(&p, &e).unwrap()
}

fn send_once(to: SocketAddr, datagram: &[u8]) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.send_to(datagram, to).unwrap();
}

#[test]
fn a_forged_new_session_neither_restarts_nor_stalls_a_keyless_receiver() {
    let r = keyless_receiver();
    let b = broadcaster(vec![r.local_addr()], Duration::from_secs(2), None);
    std::thread::sleep(Duration::from_millis(500));
    let forged = vector("snapshot-empty.hex");
    assert_eq!(forged.len(), 56);
    send_once(r.local_addr(), &forged);
    let bf = b.wait();
    let f = common::settle(&r, bf.packets_sent + 1);
    eprintln!(
        "(a) forged new session: restarts {} stale {} unproven {} lost {} ticks_applied {} of {}",
        f.counters.restarts,
        f.counters.stale,
        f.counters.unproven,
        f.counters.lost,
        f.counters.ticks_applied,
        bf.ticks_sent
    );
    assert_unchanged(&f, &bf, 1);
}

#[test]
fn a_forged_jump_in_the_live_session_adds_no_loss_and_makes_nothing_stale() {
    let r = keyless_receiver();
    let tap = tap();
    let b = broadcaster(
        vec![r.local_addr(), tap.local_addr().unwrap()],
        Duration::from_secs(2),
        None,
    );
    std::thread::sleep(Duration::from_millis(500));
    // What anyone on the LAN sees: the session id and a sequence number.
    let seen = observe(&tap, None);
    let far = seen.seq.wrapping_add(100_000);
    send_once(
        r.local_addr(),
        &forged_snapshot(seen.session, far, u64::MAX / 2, clock::now_ns()),
    );
    let bf = b.wait();
    let f = common::settle(&r, bf.packets_sent + 1);
    eprintln!(
        "(b) forged jump: lost {} stale {} unproven {} ticks_applied {} of {}",
        f.counters.lost,
        f.counters.stale,
        f.counters.unproven,
        f.counters.ticks_applied,
        bf.ticks_sent
    );
    assert_unchanged(&f, &bf, 1);
}

#[test]
fn a_keyed_late_joiner_counts_every_replay_of_a_recording_and_applies_none() {
    let k = Key::from_bytes([0x3c; KEY_LEN]);
    let port = free_udp_port();
    let to = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let tap = tap();
    let start = Instant::now();
    // The receiver's port gets the stream from the start; the receiver
    // only binds it 2 s in.
    let b = broadcaster(
        vec![to, tap.local_addr().unwrap()],
        Duration::from_millis(3_500),
        Some(k.clone()),
    );
    // The attacker records the first 1.5 s (bounded by count and time).
    let mut recording = Vec::new();
    let mut buf = vec![0u8; wire::MAX_DATAGRAM];
    while start.elapsed() < Duration::from_millis(1_500) && recording.len() < 10_000 {
        if let Ok(n) = tap.recv(&mut buf) {
            recording.push(buf[..n].to_vec());
        }
    }
    assert!(recording.len() > 100, "recorded {}", recording.len());
    std::thread::sleep(Duration::from_millis(2_000).saturating_sub(start.elapsed()));
    let r = receiver(ReceiverConfig {
        key: Some(k.clone()),
        ..ReceiverConfig::unicast(to)
    });
    assert!(wait_until(PATIENCE, || r.figures().counters.received >= 10));
    let before = r.figures();
    // The replay, once, paced so the receiver's socket cannot overflow.
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    for d in &recording {
        s.send_to(d, to).unwrap();
        std::thread::sleep(Duration::from_micros(200));
    }
    let bf = b.wait();
    let replays = recording.len() as u64;
    let arrived = wait_until(PATIENCE, || {
        let f = r.figures();
        f.counters.replayed + f.counters.stale_sealed >= replays && f.goodbye
    });
    std::thread::sleep(Duration::from_millis(200));
    let f = r.stop().unwrap();
    eprintln!(
        "(c) late joiner: {replays} replays: replayed {} stale_sealed {}; received {} lost {} of {} sent",
        f.counters.replayed, f.counters.stale_sealed, f.counters.received, f.counters.lost, bf.packets_sent
    );
    assert!(arrived, "{f:?}");
    assert_eq!(
        f.counters.replayed + f.counters.stale_sealed,
        replays,
        "every replay counted: {f:?}"
    );
    assert_eq!(
        f.counters.received + f.counters.replayed + f.counters.stale_sealed,
        f.counters.datagrams,
        "every live datagram received, every replay refused: {f:?}"
    );
    assert_eq!(
        (f.counters.lost, f.counters.reordered, f.counters.duplicates),
        (0, 0, 0),
        "{f:?}"
    );
    assert_eq!(
        (
            f.counters.auth_failed,
            f.counters.malformed,
            f.counters.restarts
        ),
        (0, 0, 0),
        "{f:?}"
    );
    assert!(
        f.counters.received > before.counters.received,
        "the live stream went on: {f:?}"
    );
    assert_eq!(f.counters.received, f.counters.expected);
}

#[test]
fn a_source_filter_drops_other_sources_as_foreign() {
    // Filter on the address alone: a forger on another loopback address
    // is refused; then on address and port: another port of the same host
    // is refused.
    for with_port in [false, true] {
        let to = SocketAddr::from((Ipv4Addr::LOCALHOST, free_udp_port()));
        let b = broadcaster(vec![to], Duration::from_millis(1_500), None);
        let from = if with_port {
            SourceFilter::from(b.local_addr())
        } else {
            SourceFilter::from(b.local_addr().ip())
        };
        let r = receiver(ReceiverConfig {
            from: Some(from),
            ..ReceiverConfig::unicast(to)
        });
        let forger_ip = if with_port {
            "127.0.0.1:0"
        } else {
            "127.0.0.2:0"
        };
        let forger = UdpSocket::bind(forger_ip).unwrap();
        // Twenty consecutive numbers of a new session, sent back to back:
        // they would pass probation, were they let in.
        for i in 0..20u32 {
            let d = forged_snapshot(0xbad, i, 1, clock::now_ns());
            forger.send_to(&d, to).unwrap();
        }
        let bf = b.wait();
        let arrived = wait_until(PATIENCE, || {
            let f = r.figures();
            f.counters.foreign >= 20 && f.goodbye
        });
        std::thread::sleep(Duration::from_millis(200));
        let f = r.stop().unwrap();
        assert!(arrived, "{f:?}");
        assert_eq!(f.counters.foreign, 20, "{f:?}");
        assert_eq!(
            (
                f.counters.restarts,
                f.counters.unproven,
                f.counters.malformed
            ),
            (0, 0, 0),
            "{f:?}"
        );
        assert_eq!(f.counters.received + f.counters.lost, f.counters.expected);
        assert_eq!(
            f.counters.datagrams,
            f.counters.received + f.counters.foreign,
            "{f:?}"
        );
        assert!(
            f.counters.received > 0 && f.counters.received <= bf.packets_sent,
            "{f:?}"
        );
    }
}

// ---- freshness, with the binary ----------------------------------------

const HEX: &str = "3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c";

fn key_file() -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = std::env::temp_dir().join(format!("tickcast-attacks-it-{}", std::process::id()));
    std::fs::write(&p, HEX).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

/// Runs `tickcast receive --json` with `extra` flags for 1.5 s while five
/// sealed snapshots stamped 5 s in the past arrive; returns its JSON and
/// stderr.
fn receive_skewed(extra: &[&str]) -> (serde_json::Value, String) {
    let key = Key::from_bytes([0x3c; KEY_LEN]);
    let kf = key_file();
    let port = free_udp_port();
    let bind = format!("127.0.0.1:{port}");
    let mut args = vec!["receive", "--bind", &bind, "--duration", "1500ms", "--json"];
    let kfs = kf.to_str().unwrap().to_string();
    args.extend(["--key-file", &kfs]);
    args.extend(extra.iter().copied());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tickcast"));
    cmd.args(&args);
    let rx = common::Ready::start(cmd, false, "receiving on", Duration::from_secs(10));
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let skewed = clock::now_ns() - 5_000_000_000;
    for i in 0..5u32 {
        let mut d = forged_snapshot(7, i, u64::from(i), skewed + u64::from(i));
        auth::seal(&key, &mut d);
        s.send_to(&d, SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
            .unwrap();
    }
    let out = rx.wait();
    let _ = std::fs::remove_file(kf);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    // A receiver that took nothing says so and exits 1; one that took the
    // stream exits 0.
    assert_eq!(
        out.status.success(),
        v["received"].as_u64() > Some(0),
        "{:?} {stderr}",
        out.status
    );
    (v, stderr)
}

#[test]
fn a_skewed_sender_clock_is_refused_loudly_until_the_window_is_widened() {
    let (v, stderr) = receive_skewed(&[]);
    assert_eq!(v["stale_sealed"].as_u64(), Some(5), "{v}");
    assert_eq!(
        (v["received"].as_u64(), v["replayed"].as_u64()),
        (Some(0), Some(0)),
        "{v}"
    );
    let warnings = stderr
        .lines()
        .filter(|l| l.starts_with("tickcast: refusing sealed datagrams"))
        .count();
    assert_eq!(warnings, 1, "{stderr}");
    assert!(
        stderr.contains("(stale_sealed): sync the clocks, or widen --freshness"),
        "nothing was received, and the likely cause is named: {stderr}"
    );
    assert!(
        stderr.contains("sent 5.0"),
        "the reject log says how far off: {stderr}"
    );

    let (v, stderr) = receive_skewed(&["--freshness", "10s"]);
    assert_eq!(
        (v["stale_sealed"].as_u64(), v["received"].as_u64()),
        (Some(0), Some(5)),
        "{v}"
    );
    assert!(!stderr.contains("widen --freshness"), "{stderr}");

    let (v, _) = receive_skewed(&["--freshness", "off"]);
    assert_eq!(v["received"].as_u64(), Some(5), "{v}");
}
