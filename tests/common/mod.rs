//! Shared helpers for the integration tests: crafting datagrams and a
//! scripted stream whose exact figures are known in advance.
#![allow(dead_code)]

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use tickcast::wire::{self, Body, Entity, Goodbye, Packet, SenderReport, SnapshotHead};

/// A datagram of `session`/`seq` with `body`, and entities `ids` for a snapshot.
pub fn datagram(session: u64, seq: u32, body: Body, ids: &[u32]) -> Vec<u8> {
    let entities: Vec<Entity> = ids
        .iter()
        .map(|&id| Entity {
            id,
            x: 1.0,
            y: 2.0,
            z: 3.0,
        })
        .collect();
    wire::encode_to_vec(&Packet { session, seq, body }, &entities).unwrap()
}

/// A one-part snapshot of `tick` for entities 0 and 1, stamped now.
pub fn snap(session: u64, seq: u32, tick: u64) -> Vec<u8> {
    let now = tickcast::runtime::clock::now_ns();
    let head = SnapshotHead {
        tick,
        scheduled_ns: now,
        sent_ns: now,
        part: 0,
        parts: 1,
    };
    datagram(session, seq, Body::Snapshot(head), &[0, 1])
}

/// The figures a receiver must report after [`scripted_stream`], exactly.
pub struct Expected {
    pub expected: u64,
    pub received: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub reordered: u64,
    pub stale: u64,
    pub malformed: u64,
    pub restarts: u64,
    pub unproven: u64,
    pub ticks_applied: u64,
    pub datagrams: u64,
}

/// A stream that exercises every figure: a wrap, a gap, a late stale part,
/// a duplicate, garbage, a sender report, a restart (without a goodbye, so
/// the new session's first packet is held on probation, unproven), a late
/// packet of the old session and a goodbye announcing lost tail packets.
pub fn scripted_stream() -> (Vec<Vec<u8>>, Expected) {
    let (a, b) = (0xaaaa_0000_0000_0001u64, 0xbbbb_0000_0000_0002u64);
    let s = |i: u32| (u32::MAX - 3).wrapping_add(i);
    let report = SenderReport {
        sent_ns: 1,
        packets_sent: 7,
        ticks_sent: 6,
        ticks_skipped: 0,
    };
    let bye = Goodbye {
        sent_ns: 1,
        final_seq: 104,
        packets_sent: 5,
    };
    let mut truncated = snap(a, s(9), 9);
    truncated.truncate(30);
    let d = vec![
        snap(a, s(0), 1),
        snap(a, s(1), 2),
        snap(a, s(3), 4), // s(2) arrives late below, s(4) is lost
        snap(a, s(2), 3), // reordered and stale: tick 3 < applied tick 4
        snap(a, s(3), 4), // duplicate
        snap(a, s(5), 6), // crosses the wrap: s(4) == 0
        b"definitely not tickcast".to_vec(),
        truncated,
        vec![0xff; 64],
        datagram(a, s(6), Body::SenderReport(report), &[]),
        snap(b, 100, 0),  // a new session, ticks from 0: unproven, not applied
        snap(b, 101, 1),  // its second consecutive number: a restart
        snap(a, s(7), 7), // late packet of the replaced session: stale
        // goodbye copies 102 and 103 lost; 104 arrives
        datagram(b, 104, Body::Goodbye(bye), &[]),
    ];
    let n = d.len() as u64;
    (
        d,
        Expected {
            expected: 7 + 5,
            received: 6 + 3,
            lost: 1 + 2,
            duplicates: 1,
            reordered: 1,
            stale: 2,
            malformed: 3,
            restarts: 1,
            unproven: 1,
            ticks_applied: 4 + 1,
            datagrams: n,
        },
    )
}

/// Sends each datagram to `to` from one socket, in order, pausing briefly
/// between them so the receiver sees them in that order. Bounded: one pass.
pub fn send_all(to: SocketAddr, datagrams: &[Vec<u8>]) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    for d in datagrams {
        s.send_to(d, to).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// How often [`wait_until`] asks again.
pub const POLL: Duration = Duration::from_millis(5);

/// Polls `f` every [`POLL`] until it returns true (then true) or `timeout`
/// has passed (then false). `f` is asked at least once, and once more at or
/// after the deadline, so a condition that holds just in time counts.
/// The one polling helper of the integration tests.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
}

/// A free UDP port on 127.0.0.1: bind a throwaway socket to port 0 and read
/// the port the OS picked (the socket is closed on return).
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A plain socket on 127.0.0.1 that listens in on a broadcast, as one more
/// destination: room for a few seconds of traffic, reads time out after 1 s.
pub fn tap() -> UdpSocket {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket2::SockRef::from(&sock)
        .set_recv_buffer_size(4 << 20)
        .unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    sock
}

/// Every packet `sock` receives, decoded, up to and including the first
/// goodbye. Bounded: gives up (returning what it has) after `timeout` or
/// 1,000,000 datagrams. Datagrams that do not decode are skipped.
pub fn collect_until_goodbye(sock: &UdpSocket, timeout: Duration) -> Vec<Packet> {
    let start = Instant::now();
    let mut buf = vec![0u8; wire::MAX_DATAGRAM];
    let mut entities = Vec::new();
    let mut got = Vec::new();
    for _ in 0..1_000_000 {
        if start.elapsed() >= timeout {
            break;
        }
        let Ok(n) = sock.recv(&mut buf) else {
            continue;
        };
        let Ok(packet) = wire::decode(&buf[..n], &mut entities) else {
            continue;
        };
        let goodbye = matches!(packet.body, Body::Goodbye(_));
        got.push(packet);
        if goodbye {
            break;
        }
    }
    got
}

/// The highest snapshot tick among `packets`.
pub fn last_tick(packets: &[Packet]) -> Option<u64> {
    packets
        .iter()
        .filter_map(|p| match p.body {
            Body::Snapshot(h) => Some(h.tick),
            _ => None,
        })
        .max()
}

/// Waits (up to 10 s) until `r` has handled `n` datagrams, then a short
/// grace so a stray extra one would show too; asserts exactly `n` arrived.
pub fn settle(r: &tickcast::Receiver, n: u64) -> tickcast::Figures {
    let arrived = wait_until(Duration::from_secs(10), || {
        r.figures().counters.datagrams >= n
    });
    std::thread::sleep(Duration::from_millis(200));
    let f = r.figures();
    assert!(
        arrived,
        "only {} of {n} datagrams arrived: {f:?}",
        f.counters.datagrams
    );
    assert_eq!(f.counters.datagrams, n, "{f:?}");
    f
}

/// A child process, started and waited for until a line of its output
/// says it is ready (a receiver's "receiving on", a client's "listening
/// on"), so that nothing is sent to it before it listens, however slowly
/// it starts; bounded by `timeout`. Dropped without [`Ready::wait`] (a
/// test that failed first), it kills and reaps the child.
pub struct Ready {
    child: Option<std::process::Child>,
    /// Reads the watched stream to its end, and returns it.
    watched: Option<std::thread::JoinHandle<String>>,
    on_stdout: bool,
}

impl Ready {
    /// Starts `cmd` (stdin closed, both outputs piped) and returns once a
    /// line of its stdout (`on_stdout`) or stderr holds `needle`; panics,
    /// the child killed, if none does within `timeout`.
    pub fn start(
        mut cmd: std::process::Command,
        on_stdout: bool,
        needle: &str,
        timeout: Duration,
    ) -> Ready {
        use std::io::{BufRead, BufReader, Read};
        use std::process::Stdio;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("the child starts");
        let pipe: Box<dyn Read + Send> = match on_stdout {
            true => Box::new(child.stdout.take().expect("piped")),
            false => Box::new(child.stderr.take().expect("piped")),
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let needle = needle.to_owned();
        let watched = std::thread::spawn(move || {
            // Read to the end whatever the bytes, so the child never blocks
            // on a full pipe.
            let (mut all, mut line) = (String::new(), Vec::new());
            let mut pipe = BufReader::new(pipe);
            while matches!(pipe.read_until(b'\n', &mut line), Ok(n) if n > 0) {
                let text = String::from_utf8_lossy(&line);
                if text.contains(&needle) {
                    let _ = tx.send(());
                }
                all.push_str(&text);
                line.clear();
            }
            all
        });
        let ready = Ready {
            child: Some(child),
            watched: Some(watched),
            on_stdout,
        };
        if rx.recv_timeout(timeout).is_err() {
            let said = ready.kill();
            panic!("the child never said it was ready within {timeout:?}; it said:\n{said}");
        }
        ready
    }

    /// Waits for it to end: its status and whole output.
    pub fn wait(mut self) -> std::process::Output {
        let child = self.child.take().expect("waited once");
        let mut out = child.wait_with_output().expect("the child ends");
        let watched = self.watched.take().expect("waited once");
        let watched = watched.join().expect("the reader ends").into_bytes();
        match self.on_stdout {
            true => out.stdout = watched,
            false => out.stderr = watched,
        }
        out
    }

    /// Kills and reaps the child; what it said on the watched stream.
    fn kill(mut self) -> String {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.watched
            .take()
            .and_then(|w| w.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Ready {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Says why a test cannot run here, in one line; under `CI=true`, where
/// CI runs as root with every tool, that is a failure instead.
pub fn skip(why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{why}, and CI=true: CI must run this test");
    }
    println!("skipped: {why}");
}

/// Whether this test runs as root (uid 0), as CI does.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .is_some_and(|ids| ids.split_whitespace().next() == Some("0"))
}

/// The ids of `pid`'s threads whose name starts with `name` (Linux keeps
/// 15 bytes of it).
pub fn threads_named(pid: u32, name: &str) -> Vec<u32> {
    let name = &name[..name.len().min(15)];
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|tid| {
            std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm"))
                .is_ok_and(|c| c.trim_end() == name)
        })
        .collect()
}

/// A thread's scheduling policy and real-time priority, from its `stat`
/// (fields 41 and 40; 1 is SCHED_FIFO).
pub fn sched_of(pid: u32, tid: u32) -> (u32, u32) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).unwrap();
    // Fields after the command name, which ends at the last ')': field 3 first.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    (
        fields[41 - 3].parse().unwrap(),
        fields[40 - 3].parse().unwrap(),
    )
}

/// A `key:` line of a `/proc` status file, trimmed.
pub fn status_field(path: &str, key: &str) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
        .unwrap_or_else(|| panic!("no {key} in {path}"))
}
