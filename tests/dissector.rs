//! The Wireshark dissector, `proto/tickcast.lua`, checked with tshark:
//!
//! * against the project's own traffic: dumpcap captures a real broadcaster
//!   and receiver on loopback, and every captured datagram must decode to
//!   what the broadcaster sent (one session, consecutive sequence numbers,
//!   the simulated world's exact entity bytes for each tick and seed, a
//!   goodbye naming the last number);
//! * against the spec's vectors, `proto/vectors/*.hex`, turned into a pcap
//!   with text2pcap: every valid vector decodes to exactly the fields and
//!   records (entities, despawn records, id runs, compact records: id,
//!   type, position and velocity or age and residual) its comments give,
//!   at its version (2, or 1 for the decode-only ones), and every invalid
//!   one raises the matching expert info;
//! * against the same vectors sent as real datagrams over loopback to a
//!   port the dissector is not registered on, captured by dumpcap: the
//!   heuristic dissector finds them, and the lifecycle kinds of version 2
//!   (despawn, roster), which no broadcaster run here is sure to send, are
//!   seen decoded from a live capture, record by record, as are compact
//!   parts;
//! * against a compact stream (kind 6) of the simulated world, captured:
//!   every part decodes without expert info, its records match its count,
//!   each tick holds its scheduled keyframes, every keyframe is the
//!   quantized world, and every entity's position, rebuilt from the
//!   keyframes and deltas the dissector shows, is too.
//!
//! Without tshark (or root, for capturing) each test prints one line,
//! "skipped: needs root and tshark", and passes; in CI (`CI=true`) it fails
//! instead, so CI cannot go green without running it.
// Tests, benches, examples and the binary own their clocks, sockets and files;
// the layer wall in clippy.toml is for the library core.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

#[path = "netns/proc.rs"]
mod proc;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use proc::{figure, have, skip, Proc};
use tickcast::bench::lan::is_root;
use tickcast::core::sim::SimWorld;
use tickcast::fuzz::{load_vectors, vectors_dir};
use tickcast::wire::vectors::{Vector, Verdict};
use tickcast::wire::Record;

const SKIP: &str = "skipped: needs root and tshark";
/// How the captured broadcasters send: one datagram per message. A capture
/// on the sending host (loopback here) sees a UDP GSO message, the default
/// path, as one packet of up to 64 datagrams back to back, taken before the
/// kernel cuts it into the datagrams the receivers get.
const CAPTURED_SEND_PATH: [&str; 2] = ["--send-path", "sendmmsg"];
/// Longest wait for a process to get ready or to finish.
const PATIENCE: Duration = Duration::from_secs(30);

/// Every field the dissector defines that these tests read, in the order
/// tshark prints them.
const FIELDS: &[&str] = &[
    "frame.number",
    "ip.src",
    "ip.dst",
    "udp.srcport",
    "udp.dstport",
    "udp.length",
    "tickcast.magic",
    "tickcast.version",
    "tickcast.kind",
    "tickcast.flags",
    "tickcast.session",
    "tickcast.seq",
    "tickcast.tick",
    "tickcast.scheduled_ns",
    "tickcast.sent_ns",
    "tickcast.part",
    "tickcast.parts",
    "tickcast.entity_count",
    "tickcast.entity",
    "tickcast.entity.id",
    "tickcast.entity.x",
    "tickcast.entity.y",
    "tickcast.entity.z",
    "tickcast.despawn_count",
    "tickcast.despawned",
    "tickcast.despawned.id",
    "tickcast.despawned.tick",
    "tickcast.roster.first_id",
    "tickcast.roster.last_id",
    "tickcast.run_count",
    "tickcast.run",
    "tickcast.run.first",
    "tickcast.run.count",
    "tickcast.compact.quanta_per_unit",
    "tickcast.compact.keyframe_interval",
    "tickcast.compact.count",
    "tickcast.compact.record",
    "tickcast.compact.id",
    "tickcast.compact.type",
    "tickcast.compact.q.x",
    "tickcast.compact.q.y",
    "tickcast.compact.q.z",
    "tickcast.compact.v.x",
    "tickcast.compact.v.y",
    "tickcast.compact.v.z",
    "tickcast.compact.age",
    "tickcast.compact.r.x",
    "tickcast.compact.r.y",
    "tickcast.compact.r.z",
    "tickcast.compact.padding",
    "tickcast.report.packets_sent",
    "tickcast.report.ticks_sent",
    "tickcast.report.ticks_skipped",
    "tickcast.goodbye.final_seq",
    "tickcast.goodbye.packets_sent",
    "tickcast.nonce",
    "tickcast.cookie.bucket",
    "tickcast.cookie.mac",
    "tickcast.lease_ms",
    "tickcast.reason",
    "tickcast.ping.sent_ns",
    "tickcast.pong.ping_sent_ns",
    "tickcast.pong.bc_recv_ns",
    "tickcast.padding",
    "tickcast.trailing",
    "_ws.expert",
    // The dissector's expert infos, by name.
    "tickcast.too_short",
    "tickcast.truncated",
    "tickcast.trailing_bytes",
    "tickcast.unsupported_version",
    "tickcast.unknown_kind",
    "tickcast.unknown_flags",
    "tickcast.sealed_too_short",
    "tickcast.bad_part",
    "tickcast.bad_coordinate",
    "tickcast.bad_padding",
    "tickcast.bad_lifecycle",
    "tickcast.bad_compact",
];

/// Kind numbers by the names the spec and the vectors use.
const KINDS: &[(&str, u64)] = &[
    ("snapshot", 1),
    ("sender_report", 2),
    ("goodbye", 3),
    ("despawn", 4),
    ("roster", 5),
    ("compact", 6),
    ("subscribe", 16),
    ("challenge", 17),
    ("confirm", 18),
    ("accept", 19),
    ("refuse", 20),
    ("unsubscribe", 21),
    ("ping", 22),
    ("pong", 23),
];

fn lua_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("proto/tickcast.lua")
}

/// A scratch directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tickcast-{what}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// One decoded frame: field name → the values of its occurrences (only
/// fields that occur).
type Frame = BTreeMap<String, Vec<String>>;

/// Decodes `pcap` with the Lua dissector and returns every frame's fields.
fn decode(pcap: &Path) -> Vec<Frame> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-n")
        .arg("-r")
        .arg(pcap)
        .arg("-X")
        .arg(format!("lua_script:{}", lua_script().display()))
        .args(["-T", "fields", "-E", "separator=/t", "-E", "occurrence=a"])
        .args(["-E", "aggregator=|", "-E", "quote=n"]);
    for f in FIELDS {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("tshark runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tshark failed: {stderr}");
    assert!(
        !stderr.contains("Lua") && !stderr.to_lowercase().contains("error"),
        "tshark complained while loading or running the dissector:\n{stderr}"
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            assert_eq!(cols.len(), FIELDS.len(), "tshark row: {line:?}");
            FIELDS
                .iter()
                .zip(cols)
                .filter(|(_, v)| !v.is_empty())
                .map(|(f, v)| (f.to_string(), v.split('|').map(str::to_string).collect()))
                .collect()
        })
        .collect()
}

/// An unsigned integer as tshark prints it: decimal, or hex after `0x`.
fn parse_uint(s: &str) -> u64 {
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    }
    .unwrap_or_else(|_| panic!("not an integer: {s:?}"))
}

/// The single value of `field` in `frame`, as an integer.
fn uint(frame: &Frame, field: &str) -> u64 {
    let v = one(frame, field);
    parse_uint(v)
}

fn one<'a>(frame: &'a Frame, field: &str) -> &'a str {
    match frame.get(field).map(Vec::as_slice) {
        Some([v]) => v,
        other => panic!("{field}: expected one value, got {other:?} in {frame:?}"),
    }
}

fn all<'a>(frame: &'a Frame, field: &str) -> &'a [String] {
    frame.get(field).map_or(&[], Vec::as_slice)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// UDP ports Wireshark takes for traceroute probes: a datagram to one of
/// them carries a "Possible traceroute" expert info of Wireshark's own.
const TRACEROUTE_PORTS: std::ops::RangeInclusive<u16> = 33434..=33534;

/// A free UDP port on loopback (bound, then released), outside
/// [`TRACEROUTE_PORTS`] (bounded tries).
fn free_port() -> u16 {
    (0..1000)
        .map(|_| {
            let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            s.local_addr().unwrap().port()
        })
        .find(|p| !TRACEROUTE_PORTS.contains(p))
        .expect("a free port outside the traceroute range")
}

fn tickcast() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tickcast"))
}

/// Starts dumpcap (the capture engine tshark itself uses) on `lo` with
/// `filter`, writing `pcap`, and waits until it is capturing.
fn capture(filter: &str, pcap: &Path) -> Proc {
    let mut p = Proc::spawn(
        "dumpcap",
        Command::new("dumpcap")
            .args(["-i", "lo", "-f", filter, "-a", "duration:120", "-w"])
            .arg(pcap),
    );
    // dumpcap opens the interface and sets the filter before it names the file.
    p.wait_for("File:", PATIENCE);
    p
}

/// Stops a capture started by [`capture`] and waits for the file to be complete.
fn stop_capture(mut p: Proc) {
    // Let the last datagrams reach the capture buffer first.
    std::thread::sleep(Duration::from_millis(300));
    p.signal(Signal::SIGINT);
    let (status, _) = p.finish(PATIENCE);
    assert!(status.success(), "dumpcap: {status}");
}

const ENTITIES: u32 = 150;
const SEED: u64 = 4242;
const RATE_HZ: f64 = 60.0;

/// A real broadcaster → receiver stream on loopback, captured and decoded:
/// every datagram is tickcast, and every field is what was sent.
#[test]
fn dissector_decodes_a_captured_stream_exactly() {
    if !(is_root() && have("tshark") && have("dumpcap")) {
        return skip(SKIP);
    }
    let dir = TempDir::new("dissector");
    let pcap = dir.0.join("stream.pcapng");
    let port = free_port();
    let cap = capture(&format!("udp port {port}"), &pcap);

    let mut rx = Proc::spawn(
        "receiver",
        tickcast().args([
            "receive",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--duration",
            "60s",
            "--json",
        ]),
    );
    rx.wait_for("receiving on", PATIENCE);
    // 150 entities at the default 1200-byte budget (71 per part): 3 parts a
    // tick. 1.2 s so the run has a sender report (after the tick at 1 s).
    let bc = Proc::spawn(
        "broadcaster",
        tickcast().args([
            "broadcast",
            CAPTURED_SEND_PATH[0],
            CAPTURED_SEND_PATH[1],
            "--to",
            &format!("127.0.0.1:{port}"),
            "--entities",
            &ENTITIES.to_string(),
            "--seed",
            &SEED.to_string(),
            "--rate",
            "60",
            "--duration",
            "1200ms",
            "--json",
        ]),
    );
    let bc = bc.json(PATIENCE);
    std::thread::sleep(Duration::from_millis(200));
    rx.signal(Signal::SIGINT);
    let rx = rx.json(PATIENCE);
    stop_capture(cap);

    let frames = decode(&pcap);
    let packets_sent = figure(&bc, "packets_sent");
    assert_eq!(figure(&rx, "lost"), 0, "receiver: {rx}");
    assert_eq!(
        frames.len() as u64,
        packets_sent,
        "every datagram sent is captured once: {bc}"
    );
    check_stream(&frames, &bc);
    println!(
        "dissector: {} captured datagrams decoded; session {:#018x}, seq {}..={}",
        frames.len(),
        figure(&bc, "session"),
        one(&frames[0], "tickcast.seq"),
        one(frames.last().unwrap(), "tickcast.seq")
    );
}

/// A game's published world, spawning and despawning, captured and
/// decoded: every despawn record and roster part the broadcaster sent is in
/// the capture as the dissector shows it, and the records name exactly the
/// ids that left.
#[test]
fn dissector_decodes_a_published_worlds_despawns_and_rosters() {
    use tickcast::wire::Entity;
    use tickcast::{BroadcastConfig, Broadcaster, PublishClock};
    if !(is_root() && have("tshark") && have("dumpcap")) {
        return skip(SKIP);
    }
    let dir = TempDir::new("dissector-lifecycle");
    let pcap = dir.0.join("lifecycle.pcapng");
    let port = free_port();
    let cap = capture(&format!("udp port {port}"), &pcap);
    // A socket that never reads: the capture is what is checked.
    let sink = std::net::UdpSocket::bind(("127.0.0.1", port)).unwrap();
    let (b, mut publisher) = Broadcaster::start_published(
        BroadcastConfig {
            destinations: vec![sink.local_addr().unwrap()],
            max_subscribers: 0,
            // A capture on the sending host sees a GSO message whole.
            send_path: tickcast::runtime::broadcaster::SendPath::Sendmmsg,
            ..BroadcastConfig::default()
        },
        PublishClock::Game,
    )
    .unwrap();
    // 200 entities; from tick 20 the multiples of 9 leave; one new id a tick.
    let mut left = std::collections::BTreeSet::new();
    for tick in 0..80u64 {
        let world: Vec<Entity> = (0..200u32)
            .filter(|id| tick < 20 || id % 9 != 0)
            .chain(1000..1000 + tick as u32)
            .map(|id| Entity {
                id,
                x: tick as f32,
                y: 0.0,
                z: 0.0,
            })
            .collect();
        if tick == 20 {
            left.extend((0..200u32).filter(|id| id % 9 == 0));
        }
        publisher.send(tick, &world).unwrap();
        // Each frame out before the next, so none replaces another on a
        // loaded host (the counts below are per tick sent).
        let sent = Instant::now();
        while b.figures().frames_sent < tick + 1 && sent.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(
            b.figures().frames_sent,
            tick + 1,
            "frame {tick} not sent in 5 s"
        );
    }
    let bc = b.stop();
    stop_capture(cap);
    drop(sink);
    let frames = decode(&pcap);
    assert_eq!(
        frames.len() as u64,
        bc.packets_sent,
        "every datagram captured once"
    );
    let (mut despawn_packets, mut roster_parts) = (0u64, 0u64);
    let mut named = std::collections::BTreeSet::new();
    for f in &frames {
        assert!(f.get("_ws.expert").is_none(), "no expert info: {f:?}");
        match uint(f, "tickcast.kind") {
            4 => {
                despawn_packets += 1;
                assert_eq!(
                    uint(f, "tickcast.despawn_count") as usize,
                    all(f, "tickcast.despawned.id").len()
                );
                for (id, t) in all(f, "tickcast.despawned.id")
                    .iter()
                    .zip(all(f, "tickcast.despawned.tick"))
                {
                    assert_eq!(parse_uint(t), 20, "{f:?}");
                    named.insert(parse_uint(id) as u32);
                }
            }
            5 => roster_parts += 1,
            _ => {}
        }
    }
    assert_eq!(
        named, left,
        "the despawn records name exactly the ids that left"
    );
    // Copies at ages 0, 1, 2, 4, 8, 16 and 32: one packet each (23 records fit one).
    assert_eq!(despawn_packets, 7);
    // Rosters at ticks 0 and 60, one part each.
    assert_eq!((bc.rosters, roster_parts), (2, 2));
    assert_eq!(bc.despawned, left.len() as u64);
    println!(
        "dissector: {despawn_packets} despawn packets naming {} ids, {roster_parts} roster parts decoded",
        named.len()
    );
}

/// Checks a snapshot part's entity records against the simulated world at
/// its tick: part `p` holds ids `p × per_part ..`, bit for bit.
fn check_entities(f: &Frame, world: &mut SimWorld, per_part: usize) {
    let tick = uint(f, "tickcast.tick");
    let lo = uint(f, "tickcast.part") as usize * per_part;
    let n = world.len();
    let want = &world.positions(tick, RATE_HZ)[lo..(lo + per_part).min(n)];
    assert_eq!(uint(f, "tickcast.entity_count"), want.len() as u64, "{f:?}");
    let records = all(f, "tickcast.entity");
    let ids = all(f, "tickcast.entity.id");
    let xs = all(f, "tickcast.entity.x");
    let ys = all(f, "tickcast.entity.y");
    let zs = all(f, "tickcast.entity.z");
    assert_eq!(records.len(), want.len(), "{f:?}");
    for (j, e) in want.iter().enumerate() {
        let mut bytes = e.id.to_le_bytes().to_vec();
        for c in [e.x, e.y, e.z] {
            bytes.extend_from_slice(&c.to_le_bytes());
        }
        assert_eq!(
            records[j],
            hex(&bytes),
            "tick {tick} entity {}: record bytes",
            e.id
        );
        assert_eq!(parse_uint(&ids[j]), u64::from(e.id));
        // tshark prints floats to 6 significant digits; the bytes above are exact.
        for (shown, c) in [(&xs[j], e.x), (&ys[j], e.y), (&zs[j], e.z)] {
            let shown: f64 = shown.parse().unwrap();
            let c = f64::from(c);
            assert!(
                (shown - c).abs() <= 1e-5 * c.abs().max(1.0),
                "tick {tick} entity {}: shown {shown}, sent {c}",
                e.id
            );
        }
    }
}

/// Checks a captured stream of one session against what the broadcaster
/// said it sent and what the simulated world holds at each tick.
fn check_stream(frames: &[Frame], bc: &serde_json::Value) {
    let session = figure(bc, "session");
    let packets_sent = figure(bc, "packets_sent");
    let first_seq = uint(&frames[0], "tickcast.seq") as u32;
    let last_seq = first_seq.wrapping_add(packets_sent as u32 - 1);
    let per_part = (tickcast::wire::DEFAULT_PAYLOAD_BUDGET - tickcast::wire::SNAPSHOT_FIXED_LEN)
        / tickcast::wire::ENTITY_LEN;
    let parts = (ENTITIES as usize).div_ceil(per_part) as u64;
    assert_eq!(parts, 3, "the test wants a tick to span 3 parts");
    let mut world = SimWorld::new(ENTITIES, SEED);
    let (mut snapshots, mut reports, mut goodbyes) = (0u64, 0u64, 0u64);
    let mut tick_parts: Option<(u64, u64, u64)> = None; // (tick, next part, scheduled_ns)
                                                        // Version 2's lifecycle packets, if the broadcaster sends them: despawn
                                                        // packets, and each roster's parts by tick as (first_id, last_id, parts).
    let mut despawns = 0u64;
    let mut rosters: BTreeMap<u64, Vec<(u64, u64, u64)>> = BTreeMap::new();
    for (i, f) in frames.iter().enumerate() {
        let n = i as u64;
        assert_eq!(one(f, "tickcast.magic"), "TKCS", "{f:?}");
        assert_eq!(
            uint(f, "tickcast.version"),
            u64::from(tickcast::wire::VERSION),
            "{f:?}"
        );
        assert_eq!(uint(f, "tickcast.flags"), 0, "{f:?}");
        assert_eq!(uint(f, "tickcast.session"), session, "{f:?}");
        assert_eq!(
            uint(f, "tickcast.seq") as u32,
            first_seq.wrapping_add(n as u32),
            "seq goes up by one per datagram: {f:?}"
        );
        assert!(f.get("_ws.expert").is_none(), "no expert info: {f:?}");
        assert!(f.get("tickcast.trailing").is_none(), "{f:?}");
        match uint(f, "tickcast.kind") {
            1 => {
                snapshots += 1;
                let tick = uint(f, "tickcast.tick");
                let part = uint(f, "tickcast.part");
                let scheduled = uint(f, "tickcast.scheduled_ns");
                assert_eq!(uint(f, "tickcast.parts"), parts, "{f:?}");
                match tick_parts {
                    Some((t, next, s)) if next < parts => {
                        assert_eq!(
                            (tick, part, scheduled),
                            (t, next, s),
                            "parts of a tick in order, one schedule: {f:?}"
                        );
                    }
                    prev => {
                        assert_eq!(part, 0, "a tick starts at part 0: {f:?}");
                        if let Some((t, _, _)) = prev {
                            assert!(tick > t, "ticks go forward: {f:?}");
                        }
                    }
                }
                tick_parts = Some((tick, part + 1, scheduled));
                check_entities(f, &mut world, per_part);
            }
            2 => {
                reports += 1;
                assert_eq!(
                    uint(f, "tickcast.report.packets_sent"),
                    n + 1,
                    "a report counts itself: {f:?}"
                );
                assert_eq!(
                    uint(f, "tickcast.report.ticks_sent"),
                    snapshots / parts,
                    "{f:?}"
                );
                assert!(f.contains_key("tickcast.sent_ns"), "{f:?}");
            }
            3 => {
                goodbyes += 1;
                assert_eq!(
                    uint(f, "tickcast.goodbye.final_seq") as u32,
                    last_seq,
                    "{f:?}"
                );
                assert_eq!(
                    uint(f, "tickcast.goodbye.packets_sent"),
                    packets_sent,
                    "{f:?}"
                );
            }
            kind @ (4 | 5) => {
                // A tick's despawn packets, then its roster parts, then its
                // snapshot parts: never inside or after that tick's parts.
                let tick = uint(f, "tickcast.tick");
                assert!(
                    tick_parts.is_none_or(|(t, next, _)| t < tick && next == parts),
                    "lifecycle packets come before their tick's snapshot parts: {f:?}"
                );
                if kind == 4 {
                    despawns += 1;
                    let count = uint(f, "tickcast.despawn_count");
                    assert!(count > 0, "no despawn packet without a record: {f:?}");
                    for t in all(f, "tickcast.despawned.tick") {
                        assert!(parse_uint(t) <= tick, "record at or before its tick: {f:?}");
                    }
                } else {
                    rosters.entry(tick).or_default().push((
                        uint(f, "tickcast.roster.first_id"),
                        uint(f, "tickcast.roster.last_id"),
                        uint(f, "tickcast.parts"),
                    ));
                }
            }
            k => panic!("kind {k} in a broadcast stream: {f:?}"),
        }
    }
    // Every roster arrived whole (loopback loses nothing), and its parts'
    // ranges are contiguous and cover every id.
    for (tick, mut ranges) in rosters.clone() {
        ranges.sort();
        assert_eq!(
            ranges.len() as u64,
            ranges[0].2,
            "roster of tick {tick}: every part"
        );
        let mut next = 0;
        for (first, last, _) in &ranges {
            assert_eq!(
                *first, next,
                "roster of tick {tick}: contiguous ranges {ranges:?}"
            );
            next = last + 1;
        }
        assert_eq!(next, 1 << 32, "roster of tick {tick} covers 0..=u32::MAX");
    }
    let roster_parts: u64 = rosters.values().map(|r| r.len() as u64).sum();
    assert_eq!(goodbyes, 3, "three goodbye copies end the stream");
    assert!(reports >= 1, "a 1.2 s run sends a sender report");
    assert_eq!(snapshots, figure(bc, "ticks_sent") * parts);
    assert_eq!(
        snapshots + reports + goodbyes + despawns + roster_parts,
        packets_sent
    );
}

/// The dissector field that shows a vector's `# field:` of a packet `kind`.
fn field_name(kind: &str, field: &str) -> &'static str {
    match (kind, field) {
        (_, "session") => "tickcast.session",
        (_, "seq") => "tickcast.seq",
        ("snapshot" | "despawn" | "roster" | "compact", "tick") => "tickcast.tick",
        ("snapshot" | "compact", "scheduled_ns") => "tickcast.scheduled_ns",
        (
            "snapshot" | "sender_report" | "goodbye" | "despawn" | "roster" | "compact",
            "sent_ns",
        ) => "tickcast.sent_ns",
        ("snapshot" | "roster" | "compact", "part") => "tickcast.part",
        ("snapshot" | "roster" | "compact", "parts") => "tickcast.parts",
        ("compact", "quanta_per_unit") => "tickcast.compact.quanta_per_unit",
        ("compact", "keyframe_interval") => "tickcast.compact.keyframe_interval",
        ("compact", "count") => "tickcast.compact.count",
        ("snapshot", "count") => "tickcast.entity_count",
        ("despawn", "count") => "tickcast.despawn_count",
        ("roster", "first_id") => "tickcast.roster.first_id",
        ("roster", "last_id") => "tickcast.roster.last_id",
        ("roster", "count") => "tickcast.run_count",
        ("sender_report", "packets_sent") => "tickcast.report.packets_sent",
        ("sender_report", "ticks_sent") => "tickcast.report.ticks_sent",
        ("sender_report", "ticks_skipped") => "tickcast.report.ticks_skipped",
        ("goodbye", "final_seq") => "tickcast.goodbye.final_seq",
        ("goodbye", "packets_sent") => "tickcast.goodbye.packets_sent",
        (_, "nonce") => "tickcast.nonce",
        (_, "bucket" | "cookie.bucket" | "cookie_bucket") => "tickcast.cookie.bucket",
        (_, "mac" | "cookie.mac" | "cookie_mac") => "tickcast.cookie.mac",
        (_, "lease_ms") => "tickcast.lease_ms",
        (_, "reason") => "tickcast.reason",
        ("ping", "sent_ns") => "tickcast.ping.sent_ns",
        ("pong", "ping_sent_ns") => "tickcast.pong.ping_sent_ns",
        ("pong", "bc_recv_ns") => "tickcast.pong.bc_recv_ns",
        _ => panic!("the dissector test does not know field {field:?} of {kind:?}: add it"),
    }
}

/// The expert info the dissector raises for a vector's expected error.
fn expert_for(error: &str) -> &'static str {
    let variant = error.split('(').next().unwrap();
    match variant {
        "TooShort" => "tickcast.too_short",
        "UnsupportedVersion" => "tickcast.unsupported_version",
        "UnknownKind" => "tickcast.unknown_kind",
        "UnknownFlags" => "tickcast.unknown_flags",
        // The one `Sealed` vector is too short for a tag: all a dissector,
        // which holds no key, can tell of a datagram with AUTH set.
        "Sealed" => "tickcast.sealed_too_short",
        "Truncated" => "tickcast.truncated",
        "TrailingBytes" => "tickcast.trailing_bytes",
        "BadPart" => "tickcast.bad_part",
        "BadCoordinate" => "tickcast.bad_coordinate",
        "BadPadding" => "tickcast.bad_padding",
        "BadLifecycle" => "tickcast.bad_lifecycle",
        "BadCompact" => "tickcast.bad_compact",
        _ => panic!("the dissector test does not know error {error:?}: add it"),
    }
}

/// Checks one frame tshark decoded from vector `name`: a valid vector shows
/// its version, kind, every `# field:` and every record (entity, despawn
/// record, id run, compact record) and no expert info; an invalid one the expert info of
/// its reason. Returns the kind number of a valid vector.
fn check_vector_frame(name: &str, v: &Vector, f: &Frame) -> Option<u64> {
    let kind = match &v.verdict {
        Verdict::Valid(kind) => kind,
        Verdict::Invalid(error) if error.starts_with("BadMagic") => {
            assert!(
                f.get("tickcast.magic").is_none(),
                "{name}: a datagram without the magic is not tickcast: {f:?}"
            );
            return None;
        }
        Verdict::Invalid(error) => {
            let expert = expert_for(error);
            assert!(
                f.contains_key(expert),
                "{name}: expected expert {expert} for {error}: {f:?}"
            );
            return None;
        }
    };
    let number = KINDS
        .iter()
        .find(|(n, _)| n == kind)
        .unwrap_or_else(|| panic!("{name}: kind {kind:?} unknown to this test"))
        .1;
    assert_eq!(uint(f, "tickcast.kind"), number, "{name}: {f:?}");
    let version = v.version.unwrap_or(tickcast::wire::VERSION);
    assert_eq!(
        uint(f, "tickcast.version"),
        u64::from(version),
        "{name}: {f:?}"
    );
    assert!(
        f.get("_ws.expert").is_none(),
        "{name}: expert info on a valid vector: {f:?}"
    );
    for (field, value) in &v.fields {
        let shown = one(f, field_name(kind, field));
        if field_name(kind, field) == "tickcast.cookie.mac" {
            // 16 bytes, written as one big-endian number.
            assert_eq!(shown, format!("{value:032x}"), "{name}: {field}");
        } else {
            assert_eq!(u128::from(parse_uint(shown)), *value, "{name}: {field}");
        }
    }
    let records = all(f, "tickcast.entity");
    assert_eq!(records.len(), v.entities.len(), "{name}");
    for (record, e) in records.iter().zip(&v.entities) {
        let mut bytes = e.id.to_le_bytes().to_vec();
        for x in [e.x, e.y, e.z] {
            bytes.extend_from_slice(&x.to_le_bytes());
        }
        assert_eq!(*record, hex(&bytes), "{name}: entity {}", e.id);
    }
    // Despawn records and id runs: the record's bytes, and each field.
    let despawned = all(f, "tickcast.despawned");
    assert_eq!(despawned.len(), v.despawned.len(), "{name}: {f:?}");
    let ids = all(f, "tickcast.despawned.id");
    let ticks = all(f, "tickcast.despawned.tick");
    for (i, d) in v.despawned.iter().enumerate() {
        let bytes = [&d.id.to_le_bytes()[..], &d.tick.to_le_bytes()].concat();
        assert_eq!(despawned[i], hex(&bytes), "{name}: despawn record {i}");
        assert_eq!(parse_uint(&ids[i]), u64::from(d.id), "{name}: record {i}");
        assert_eq!(parse_uint(&ticks[i]), d.tick, "{name}: record {i}");
    }
    let runs = all(f, "tickcast.run");
    assert_eq!(runs.len(), v.runs.len(), "{name}: {f:?}");
    let firsts = all(f, "tickcast.run.first");
    let counts = all(f, "tickcast.run.count");
    for (i, r) in v.runs.iter().enumerate() {
        let bytes = [r.first.to_le_bytes(), r.count.to_le_bytes()].concat();
        assert_eq!(runs[i], hex(&bytes), "{name}: run {i}");
        assert_eq!(
            parse_uint(&firsts[i]),
            u64::from(r.first),
            "{name}: run {i}"
        );
        assert_eq!(
            parse_uint(&counts[i]),
            u64::from(r.count),
            "{name}: run {i}"
        );
    }
    let shown = compact_records(f);
    assert_eq!(shown, v.compact, "{name}: compact records, field by field");
    Some(number)
}

/// A signed integer as tshark prints it.
fn parse_int(s: &str) -> i64 {
    s.parse()
        .unwrap_or_else(|_| panic!("not a signed integer: {s:?}"))
}

/// The compact records a frame shows, rebuilt field by field: each
/// record's id and type, then its position and velocity (a keyframe), or
/// its age (a delta with one) and residual. tshark lists each field's
/// values over all records in order, so the n-th keyframe's position is the
/// n-th `q` of each axis.
fn compact_records(f: &Frame) -> Vec<Record> {
    let ids = all(f, "tickcast.compact.id");
    let types = all(f, "tickcast.compact.type");
    assert_eq!(all(f, "tickcast.compact.record"), types, "{f:?}");
    assert_eq!(ids.len(), types.len(), "{f:?}");
    let axes = |name: &str| -> Vec<Vec<i64>> {
        ["x", "y", "z"]
            .iter()
            .map(|a| {
                all(f, &format!("tickcast.compact.{name}.{a}"))
                    .iter()
                    .map(|s| parse_int(s))
                    .collect()
            })
            .collect()
    };
    let (q, v, r) = (axes("q"), axes("v"), axes("r"));
    let ages = all(f, "tickcast.compact.age");
    let (mut keys, mut deltas, mut aged) = (0, 0, 0);
    let three = |c: &[Vec<i64>], i: usize| -> [i32; 3] {
        std::array::from_fn(|a| i32::try_from(c[a][i]).expect("an i32"))
    };
    let out: Vec<Record> = ids
        .iter()
        .zip(types)
        .map(|(id, t)| {
            let id = u32::try_from(parse_uint(id)).expect("a u32 id");
            match t.as_str() {
                "keyframe" => {
                    keys += 1;
                    Record::Key {
                        id,
                        q: three(&q, keys - 1),
                        v: three(&v, keys - 1),
                    }
                }
                "delta" | "delta-age" => {
                    deltas += 1;
                    let age = (t == "delta-age").then(|| {
                        aged += 1;
                        u32::try_from(parse_uint(&ages[aged - 1])).expect("a u32 age")
                    });
                    Record::Delta {
                        id,
                        age,
                        r: three(&r, deltas - 1),
                    }
                }
                other => panic!("record type {other:?}: {f:?}"),
            }
        })
        .collect();
    // Nothing shown that no record accounts for.
    assert!(q.iter().chain(&v).all(|c| c.len() == keys), "{f:?}");
    assert!(r.iter().all(|c| c.len() == deltas), "{f:?}");
    assert_eq!(ages.len(), aged, "{f:?}");
    out
}

/// Every vector in `proto/vectors/` but the empty one (a zero-byte
/// datagram holds no field, and a hex dump cannot hold it).
fn nonempty_vectors() -> Vec<(String, Vector)> {
    load_vectors(&vectors_dir())
        .expect("proto/vectors")
        .into_iter()
        .filter(|(_, v)| !v.bytes.is_empty())
        .collect()
}

/// Every vector in `proto/vectors/`, through text2pcap and tshark: valid
/// ones decode to exactly their comments, invalid ones raise the expert
/// info matching their `# expect:` reason.
#[test]
fn dissector_decodes_every_vector_as_its_comments_say() {
    if !(have("tshark") && have("text2pcap")) {
        return skip(SKIP);
    }
    let vectors = nonempty_vectors();
    let dir = TempDir::new("vectors");
    let dump: String = vectors
        .iter()
        .map(|(_, v)| {
            let bytes: Vec<String> = v.bytes.iter().map(|b| format!("{b:02x}")).collect();
            format!("000000 {}\n\n", bytes.join(" "))
        })
        .collect();
    let (txt, pcap) = (dir.0.join("vectors.txt"), dir.0.join("vectors.pcap"));
    fs::write(&txt, dump).unwrap();
    // UDP to 47474, the dissector's registered port.
    let out = Command::new("text2pcap")
        .args(["-q", "-4", "10.77.0.1,10.77.0.2", "-u", "40000,47474"])
        .arg(&txt)
        .arg(&pcap)
        .output()
        .expect("text2pcap runs");
    assert!(
        out.status.success(),
        "text2pcap: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let frames = decode(&pcap);
    assert_eq!(frames.len(), vectors.len(), "one frame per vector");
    let mut kinds_seen: Vec<u64> = vectors
        .iter()
        .zip(&frames)
        .filter_map(|((name, v), f)| check_vector_frame(name, v, f))
        .collect();
    kinds_seen.sort();
    kinds_seen.dedup();
    let every_kind: Vec<u64> = KINDS.iter().map(|&(_, n)| n).collect();
    assert_eq!(
        kinds_seen, every_kind,
        "every packet kind decoded from a valid vector"
    );
    println!(
        "dissector: {} vectors decoded; kinds with a valid vector: {kinds_seen:?}",
        vectors.len()
    );
}

/// The vectors sent as datagrams from one loopback socket to another, on a
/// free port (not one the dissector registers, so its heuristic must find
/// them), captured and decoded: each arrives as one frame and decodes as
/// its comments say, the despawn and roster vectors record by record, the
/// version 1 ones at version 1. One datagram per vector, to 127.0.0.1 only.
#[test]
fn dissector_decodes_vectors_sent_over_loopback() {
    if !(is_root() && have("tshark") && have("dumpcap")) {
        return skip(SKIP);
    }
    let vectors = nonempty_vectors();
    let dir = TempDir::new("dissector-loopback");
    let pcap = dir.0.join("vectors.pcapng");
    let rx = std::net::UdpSocket::bind(("127.0.0.1", free_port())).unwrap();
    let to = rx.local_addr().unwrap();
    assert!(to.ip().is_loopback());
    let cap = capture(&format!("udp dst port {}", to.port()), &pcap);
    let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    rx.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut buf = vec![0u8; tickcast::wire::MAX_DATAGRAM];
    for (name, v) in &vectors {
        tx.send_to(&v.bytes, to).unwrap();
        // Received before the next is sent: the capture holds them in order.
        let (n, _) = rx.recv_from(&mut buf).unwrap();
        assert_eq!(buf[..n], v.bytes[..], "{name}: sent over loopback");
    }
    stop_capture(cap);
    let frames = decode(&pcap);
    assert_eq!(
        frames.len(),
        vectors.len(),
        "one captured frame per datagram"
    );
    let mut lifecycle = BTreeMap::<u64, usize>::new();
    for ((name, v), f) in vectors.iter().zip(&frames) {
        assert_eq!(uint(f, "udp.dstport"), u64::from(to.port()), "{name}");
        if let Some(kind @ (4..=6)) = check_vector_frame(name, v, f) {
            *lifecycle.entry(kind).or_default() +=
                v.despawned.len() + v.runs.len() + v.compact.len();
        }
    }
    // Both lifecycle kinds and compact parts were captured with their
    // records decoded.
    assert!(
        (4..=6).all(|k| lifecycle.get(&k).is_some_and(|&n| n > 0)),
        "despawn, roster and compact records decoded from the capture: {lifecycle:?}"
    );
    println!(
        "dissector: {} vectors sent over loopback and decoded from the capture; \
         version 2 records by kind: {lifecycle:?}",
        frames.len()
    );
}

/// Where a captured datagram came from or went to, as `ip:port`.
fn endpoint(f: &Frame, ip: &str, port: &str) -> String {
    format!("{}:{}", one(f, ip), one(f, port))
}

/// The cookie a frame carries: bucket and MAC, as shown.
fn cookie(f: &Frame) -> (u64, String) {
    (
        uint(f, "tickcast.cookie.bucket"),
        one(f, "tickcast.cookie.mac").to_string(),
    )
}

/// A subscription exchange on loopback, captured and decoded: two
/// receivers subscribe to a broadcaster that takes one, so the capture holds
/// every subscription kind (subscribe, challenge, confirm, accept, refuse,
/// ping, pong, unsubscribe) beside the stream. Each decodes to consistent
/// fields: replies echo their request's nonce and are never longer than it,
/// confirms and the unsubscribe echo the challenge's cookie, pongs echo the
/// ping's time, the refused receiver gets no stream, and the subscriber's
/// stream holds the simulated world exactly.
#[test]
fn dissector_decodes_a_captured_subscription_exchange() {
    if !(is_root() && have("tshark") && have("dumpcap")) {
        return skip(SKIP);
    }
    let dir = TempDir::new("dissector-sub");
    let pcap = dir.0.join("subscriptions.pcapng");
    let port = free_port();
    let bc_addr = format!("127.0.0.1:{port}");
    let cap = capture(&format!("udp port {port}"), &pcap);
    let mut bc = Proc::spawn(
        "broadcaster",
        tickcast().args([
            "broadcast",
            CAPTURED_SEND_PATH[0],
            CAPTURED_SEND_PATH[1],
            "--bind",
            &bc_addr,
            "--max-subscribers",
            "1",
            "--lease",
            "3s",
            "--entities",
            &ENTITIES.to_string(),
            "--seed",
            &SEED.to_string(),
            "--duration",
            "4s",
            "--json",
        ]),
    );
    bc.wait_for("broadcasting", PATIENCE);
    let receive = |name: &str| {
        let bind = format!("127.0.0.1:{}", free_port());
        let mut p = Proc::spawn(
            name,
            tickcast().args([
                "receive",
                "--bind",
                &bind,
                "--subscribe",
                &bc_addr,
                "--duration",
                "60s",
                "--json",
            ]),
        );
        p.wait_for("receiving on", PATIENCE);
        p
    };
    let mut subscriber = receive("subscriber");
    // Long enough for a ping (one a second) and a sender report.
    std::thread::sleep(Duration::from_millis(1600));
    let mut refused = receive("refused");
    std::thread::sleep(Duration::from_millis(600));
    // A clean exit unsubscribes.
    subscriber.signal(Signal::SIGINT);
    refused.signal(Signal::SIGINT);
    let sub = subscriber.json(PATIENCE);
    // Refused, it took nothing: it says so with exit 1.
    let (status, refused) = refused.json_and_status(PATIENCE);
    assert_eq!(status.code(), Some(1), "{refused}");
    assert_eq!(refused["received_any"], false, "{refused}");
    let bc = bc.json(PATIENCE);
    stop_capture(cap);
    println!("subscription broadcaster: {bc}");
    println!("subscriber: {sub}");
    println!("refused: {refused}");
    assert_eq!(figure(&bc, "accepted"), 1, "{bc}");
    assert!(figure(&bc, "refused_full") >= 1, "{bc}");
    assert_eq!(figure(&bc, "unsubscribed"), 1, "{bc}");
    assert_eq!(figure(&sub, "lost"), 0, "{sub}");

    let frames = decode(&pcap);
    let session = figure(&bc, "session");
    let per_part = (tickcast::wire::DEFAULT_PAYLOAD_BUDGET - tickcast::wire::SNAPSHOT_FIXED_LEN)
        / tickcast::wire::ENTITY_LEN;
    let mut world = SimWorld::new(ENTITIES, SEED);
    // Requests by (sender endpoint, nonce): kind and UDP length.
    let mut requests: BTreeMap<(String, u64), (u64, u64, Frame)> = BTreeMap::new();
    // The cookie each endpoint was challenged with.
    let mut cookies: BTreeMap<String, (u64, String)> = BTreeMap::new();
    // Stream datagrams by destination, and the seqs of each.
    let mut stream: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    let mut kinds = std::collections::BTreeSet::new();
    let mut refused_to = None;
    for f in &frames {
        assert_eq!(one(f, "tickcast.magic"), "TKCS", "{f:?}");
        assert!(f.get("_ws.expert").is_none(), "no expert info: {f:?}");
        let kind = uint(f, "tickcast.kind");
        kinds.insert(kind);
        let (src, dst) = (
            endpoint(f, "ip.src", "udp.srcport"),
            endpoint(f, "ip.dst", "udp.dstport"),
        );
        let len = uint(f, "udp.length");
        match kind {
            1..=5 => {
                assert_eq!(src, bc_addr, "{f:?}");
                assert_eq!(uint(f, "tickcast.session"), session, "{f:?}");
                stream
                    .entry(dst)
                    .or_default()
                    .push(uint(f, "tickcast.seq") as u32);
                if kind == 1 {
                    check_entities(f, &mut world, per_part);
                }
                continue;
            }
            16..=23 => assert_eq!(uint(f, "tickcast.seq"), 0, "not sequenced: {f:?}"),
            k => panic!("unknown kind {k}: {f:?}"),
        }
        let nonce = uint(f, "tickcast.nonce");
        if dst == bc_addr {
            // Receiver → broadcaster: subscribe, confirm, unsubscribe, ping.
            assert!(matches!(kind, 16 | 18 | 21 | 22), "{f:?}");
            if matches!(kind, 18 | 21) {
                assert_eq!(
                    cookies.get(&src),
                    Some(&cookie(f)),
                    "{src} echoes the cookie it was given: {f:?}"
                );
            }
            requests.insert((src, nonce), (kind, len, f.clone()));
        } else {
            // Broadcaster → receiver: an answer to a request of the same nonce.
            assert_eq!(src, bc_addr, "{f:?}");
            assert_eq!(uint(f, "tickcast.session"), session, "{f:?}");
            let (req_kind, req_len, req) = requests
                .get(&(dst.clone(), nonce))
                .unwrap_or_else(|| panic!("a reply to no request: {f:?}"));
            assert!(
                len <= *req_len,
                "a reply ({len} bytes) is never longer than its request ({req_len}): {f:?}"
            );
            match kind {
                17 => {
                    assert!(matches!(req_kind, 16 | 18), "{f:?}");
                    cookies.insert(dst, cookie(f));
                }
                19 => {
                    assert_eq!(*req_kind, 18, "{f:?}");
                    assert_eq!(uint(f, "tickcast.lease_ms"), 3000, "{f:?}");
                }
                20 => {
                    assert_eq!(*req_kind, 18, "{f:?}");
                    assert_eq!(uint(f, "tickcast.reason"), 1, "full: {f:?}");
                    refused_to = Some(dst);
                }
                23 => {
                    assert_eq!(*req_kind, 22, "{f:?}");
                    assert_eq!(
                        uint(f, "tickcast.pong.ping_sent_ns"),
                        uint(req, "tickcast.ping.sent_ns"),
                        "{f:?}"
                    );
                    assert!(f.contains_key("tickcast.pong.bc_recv_ns"), "{f:?}");
                }
                _ => panic!("the broadcaster sent kind {kind}: {f:?}"),
            }
        }
    }
    let every: Vec<u64> = [1, 2, 16, 17, 18, 19, 20, 21, 22, 23].to_vec();
    assert!(
        every.iter().all(|k| kinds.contains(k)),
        "every kind but goodbye captured (goodbye: the stream test): {kinds:?}"
    );
    let refused_to = refused_to.expect("a refuse was captured");
    assert!(
        !stream.contains_key(&refused_to),
        "the refused receiver got no stream datagram"
    );
    assert_eq!(stream.len(), 1, "one subscriber got the stream: {stream:?}");
    let seqs = stream.values().next().unwrap();
    for w in seqs.windows(2) {
        assert_eq!(
            w[1],
            w[0].wrapping_add(1),
            "consecutive seqs to the subscriber"
        );
    }
    // The datagrams sent to it while its unsubscribe was on the way were
    // captured but not read: at least what it received went out.
    assert!(seqs.len() as u64 >= figure(&sub, "received"), "{sub}");
    println!(
        "dissector: {} captured subscription-exchange datagrams decoded, kinds {kinds:?}",
        frames.len()
    );
}

/// A compact stream (kind 6) of the simulated world, from an in-process
/// broadcaster to a loopback socket that never reads, captured and
/// decoded: every compact part decodes without expert info and shows as
/// many records as its count; each tick's parts together hold every
/// entity once, ids ascending; after the first tick (every entity's
/// keyframe) a tick holds the keyframes scheduled in it, about entities /
/// keyframe_interval, and few others (bounces off the walls); each
/// keyframe is the quantized simulated world; and every entity's position
/// rebuilt from the keyframes and deltas as tshark shows them, by the
/// spec's window rule and prediction, is the quantized world too.
#[test]
fn dissector_decodes_a_captured_compact_stream() {
    use tickcast::core::compact::{predict, quantized, CompactConfig};
    use tickcast::{BroadcastConfig, Broadcaster};
    if !(is_root() && have("tshark") && have("dumpcap")) {
        return skip(SKIP);
    }
    const N: u32 = 300;
    const COMPACT_SEED: u64 = 77;
    let config = CompactConfig::default();
    let k = u64::from(config.keyframe_interval);
    let dir = TempDir::new("dissector-compact");
    let pcap = dir.0.join("compact.pcapng");
    let port = free_port();
    let cap = capture(&format!("udp port {port}"), &pcap);
    let sink = std::net::UdpSocket::bind(("127.0.0.1", port)).unwrap();
    let b = Broadcaster::start(BroadcastConfig {
        destinations: vec![sink.local_addr().unwrap()],
        bind: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        max_subscribers: 0,
        entities: N,
        seed: COMPACT_SEED,
        rate_hz: RATE_HZ,
        // About 40 ticks at 60 Hz.
        duration: Some(Duration::from_millis(670)),
        compact: Some(config),
        // A capture on the sending host sees a GSO message whole.
        send_path: tickcast::runtime::broadcaster::SendPath::Sendmmsg,
        ..BroadcastConfig::default()
    })
    .unwrap();
    let bc = b.wait();
    stop_capture(cap);
    drop(sink);
    let frames = decode(&pcap);
    assert_eq!(
        frames.len() as u64,
        bc.packets_sent,
        "every datagram captured once"
    );
    let mut world = SimWorld::new(N, COMPACT_SEED);
    // Per tick, in order: its records, over its parts.
    let mut ticks: BTreeMap<u64, Vec<Record>> = BTreeMap::new();
    let mut parts_seen: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for f in &frames {
        assert!(f.get("_ws.expert").is_none(), "no expert info: {f:?}");
        if uint(f, "tickcast.kind") != 6 {
            assert!(matches!(uint(f, "tickcast.kind"), 2 | 3), "{f:?}");
            continue;
        }
        assert_eq!(uint(f, "tickcast.compact.quanta_per_unit"), 1000, "{f:?}");
        assert_eq!(uint(f, "tickcast.compact.keyframe_interval"), k, "{f:?}");
        let records = compact_records(f);
        assert_eq!(
            uint(f, "tickcast.compact.count"),
            records.len() as u64,
            "{f:?}"
        );
        let tick = uint(f, "tickcast.tick");
        let seen = parts_seen
            .entry(tick)
            .or_insert((0, uint(f, "tickcast.parts")));
        assert_eq!(uint(f, "tickcast.part"), seen.0, "parts in order: {f:?}");
        seen.0 += 1;
        ticks.entry(tick).or_default().extend(records);
    }
    assert!(ticks.len() >= 30, "{} ticks captured", ticks.len());
    for (tick, (got, parts)) in &parts_seen {
        assert_eq!(got, parts, "tick {tick}: every part");
    }
    // The keyframes each id's deltas may be against: (tick, q, v).
    let mut held: BTreeMap<u32, (u64, [i32; 3], [i32; 3])> = BTreeMap::new();
    let first = *ticks.keys().next().unwrap();
    let (mut keyframes, mut scheduled) = (0usize, 0usize);
    // Keyframes in each tick after the first.
    let mut per_tick = Vec::new();
    for (&tick, records) in &ticks {
        let truth = world.positions(tick, RATE_HZ).to_vec();
        let ids: Vec<u32> = records.iter().map(Record::id).collect();
        let every: Vec<u32> = (0..N).collect();
        assert_eq!(ids, every, "tick {tick}: every entity once, ids ascending");
        for rec in records {
            let e = &truth[rec.id() as usize];
            let want = [e.x, e.y, e.z].map(|c| config.quantize(c));
            let q = match *rec {
                Record::Key { id, q, v } => {
                    if tick > first {
                        keyframes += 1;
                    }
                    held.insert(id, (tick, q, v));
                    let shown = quantized(e, &config);
                    assert_eq!(
                        [shown.x, shown.y, shown.z],
                        q.map(|c| tickcast::wire::dequantize(c, 1000)),
                        "tick {tick} id {id}: the keyframe's position"
                    );
                    q
                }
                Record::Delta { id, age, r } => {
                    let &(kt, kq, kv) = held.get(&id).expect("a keyframe before");
                    match age {
                        Some(a) => assert_eq!(kt, tick - u64::from(a), "tick {tick} id {id}"),
                        None => {
                            let start = tick.saturating_sub((tick + u64::from(id)) % k);
                            assert!(
                                (start..tick).contains(&kt),
                                "tick {tick} id {id}: its keyframe of {kt} is in the window"
                            );
                        }
                    }
                    std::array::from_fn(|a| {
                        let p = predict(kq[a], kv[a], tick - kt) + i64::from(r[a]);
                        i32::try_from(p).expect("an i32")
                    })
                }
            };
            assert_eq!(q, want, "tick {tick} id {}: the rebuilt position", rec.id());
        }
        if tick > first {
            // The ids whose keyframe is scheduled in this tick.
            let due: Vec<u32> = (0..N)
                .filter(|&id| (tick + u64::from(id)) % k == 0)
                .collect();
            scheduled += due.len();
            per_tick.push(
                records
                    .iter()
                    .filter(|r| matches!(r, Record::Key { .. }))
                    .count(),
            );
            for id in &due {
                assert!(
                    matches!(records[*id as usize], Record::Key { .. }),
                    "tick {tick}: entity {id}'s scheduled keyframe"
                );
            }
        }
    }
    // The first tick's keyframes carry no velocity (no tick before), so
    // each moving entity is keyed once more, off schedule, when its
    // residual outgrows a keyframe (REKEY_BITS), within some ticks; then a
    // tick holds its scheduled keyframes, entities / keyframe_interval,
    // and one for an entity that bounced off a wall now and then.
    let expected = N as usize / k as usize;
    let steady = &per_tick[per_tick.len() / 2..];
    let steady_mean = steady.iter().sum::<usize>() as f64 / steady.len() as f64;
    println!(
        "dissector: compact stream, {} datagrams, {} ticks; keyframes after the first tick: \
         {per_tick:?} ({scheduled} of {keyframes} scheduled; {N} entities / {k} = {expected}); \
         {steady_mean:.2} a tick over the second half",
        frames.len(),
        ticks.len()
    );
    assert!(per_tick.iter().all(|&n| n >= expected), "{per_tick:?}");
    assert!(
        keyframes - scheduled <= N as usize + N as usize / 10,
        "off schedule: at most one a new entity, and a few bounces: {per_tick:?}"
    );
    assert!(
        steady_mean <= 1.5 * expected as f64,
        "{steady_mean} keyframes a tick once settled, {expected} scheduled: {per_tick:?}"
    );
}
