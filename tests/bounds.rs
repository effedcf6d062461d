//! The receiver's resource bounds, shown with exact numbers:
//!
//! * (a) entity ids: whatever ids arrive, the world allocates at most the
//!   pages its capacity needs, and every id at or above the capacity is
//!   counted in `entities_rejected`, exactly;
//! * (b) sessions: the tracker remembers at most `tracker::PAST_SESSIONS`
//!   replaced sessions (one seen PAST_SESSIONS + 1 sessions ago is new again),
//!   and the process's resident memory stays flat over 100,000 sessions;
//! * (c) a flood over a real loopback socket: while garbage pours in, every
//!   real update still applies, and every garbage datagram is accounted for
//!   as malformed or as a kernel drop.
//!
//! The tests take turns (one lock), so the memory figure of (b) is its own.
// Tests, benches, examples and the binary own their clocks, sockets and files;
// the layer wall in clippy.toml is for the library core.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use tickcast::core::ingest::{Ingest, Outcome};
use tickcast::core::tracker::PAST_SESSIONS;
use tickcast::core::world::{WorldWriter, PAGE};
use tickcast::fuzz::Mutator;
use tickcast::runtime::receiver::{Receiver, ReceiverConfig};
use tickcast::wire::{self, Body, Entity, Packet, SenderReport, SnapshotHead};

use common::wait_until;

const T0: u64 = 1_700_000_000_000_000_000;

fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn snapshot(session: u64, seq: u32, tick: u64, entities: &[Entity]) -> Vec<u8> {
    let p = Packet {
        session,
        seq,
        body: Body::Snapshot(SnapshotHead {
            tick,
            scheduled_ns: T0,
            sent_ns: T0,
            part: 0,
            parts: 1,
        }),
    };
    wire::encode_to_vec(&p, entities).unwrap()
}

fn entity(id: u32) -> Entity {
    Entity {
        id,
        x: 1.0,
        y: -2.0,
        z: 3.5,
    }
}

/// (a) One million snapshot parts of four records each, ids drawn half from
/// the whole u32 space and half from twice the capacity, so both sides of
/// the bound are hit hard.
#[test]
fn entity_ids_across_the_u32_space_allocate_at_most_the_capacity() {
    let _turn = one_at_a_time();
    const CAPACITY: u32 = 100_000; // not a whole number of pages
    const DATAGRAMS: u64 = 1_000_000;
    const PER_DATAGRAM: usize = 4;
    let page_bytes = {
        let mut w = WorldWriter::new(1);
        w.apply(1, 1, &[entity(0)]);
        w.world().allocated_bytes()
    };
    let max_bytes = (CAPACITY as usize).div_ceil(PAGE) * page_bytes;

    let mut ingest = Ingest::new(WorldWriter::new(CAPACITY));
    let world = ingest.world().clone();
    let mut rng = StdRng::seed_from_u64(0xb0b);
    let mut beyond = 0u64;
    let mut ids = [entity(0); PER_DATAGRAM];
    for i in 0..DATAGRAMS {
        for e in &mut ids {
            e.id = if rng.random_bool(0.5) {
                rng.random()
            } else {
                rng.random_range(0..2 * CAPACITY)
            };
            beyond += u64::from(e.id >= CAPACITY);
        }
        let d = snapshot(7, i as u32, i + 1, &ids);
        let outcome = ingest.handle(&d, T0 + i);
        assert!(matches!(outcome, Outcome::Applied { .. }), "{outcome:?}");
        if i % 10_000 == 0 {
            assert!(world.allocated_bytes() <= max_bytes);
        }
    }
    let f = ingest.figures();
    let records = DATAGRAMS * PER_DATAGRAM as u64;
    println!(
        "(a) {DATAGRAMS} datagrams, {records} records: {} applied, {} stale, {} rejected \
         (ids >= {CAPACITY}: {beyond}); world {} entities, {} bytes allocated of at most {max_bytes}",
        f.counters.entities_applied,
        f.counters.entities_stale,
        f.counters.entities_rejected,
        world.len(),
        world.allocated_bytes()
    );
    assert_eq!(f.counters.entities_rejected, beyond);
    assert_eq!(
        f.counters.entities_applied + f.counters.entities_stale + f.counters.entities_rejected,
        records
    );
    assert!(world.len() <= CAPACITY as usize);
    // About 200,000 distinct ids below the capacity were drawn: every page is in use.
    assert_eq!(world.allocated_bytes(), max_bytes);
    assert_eq!(f.counters.malformed, 0);
}

/// Resident memory of this process, in KiB (Linux `/proc/self/status`).
fn vm_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// (b) 100,000 distinct random session ids, each a restart for the tracker
/// (two consecutive numbers each, so that each passes probation).
#[test]
fn sessions_are_remembered_up_to_past_sessions_and_memory_stays_flat() {
    let _turn = one_at_a_time();
    const SESSIONS: usize = 100_000;
    const WARM_UP: usize = 1_000;
    let mut ingest = Ingest::new(WorldWriter::new(1024));
    let mut rng = StdRng::seed_from_u64(0x5e55);
    let mut ids = std::collections::HashSet::with_capacity(SESSIONS);
    let mut order = Vec::with_capacity(SESSIONS);
    while order.len() < SESSIONS {
        let id: u64 = rng.random();
        if ids.insert(id) {
            order.push(id);
        }
    }
    drop(ids);
    let (mut start_kib, mut peak_kib) = (0, 0);
    for (i, &session) in order.iter().enumerate() {
        let (seq, tick): (u32, u64) = (rng.random(), rng.random_range(0..1 << 40));
        for k in 0..2 {
            let d = snapshot(
                session,
                seq.wrapping_add(k),
                tick + u64::from(k),
                &[entity(3)],
            );
            let outcome = ingest.handle(&d, T0 + i as u64);
            let want = if k == 1 || i == 0 {
                Outcome::Applied { applied: 1 }
            } else {
                Outcome::Unproven
            };
            assert_eq!(outcome, want);
        }
        if i + 1 == WARM_UP {
            start_kib = vm_rss_kib().unwrap_or(0);
            peak_kib = start_kib;
        } else if i % 5_000 == 0 {
            peak_kib = peak_kib.max(vm_rss_kib().unwrap_or(0));
        }
    }
    let end_kib = vm_rss_kib().unwrap_or(0);
    peak_kib = peak_kib.max(end_kib);
    let f = ingest.figures();
    assert_eq!(f.counters.restarts, SESSIONS as u64 - 1);

    // The session replaced PAST_SESSIONS sessions ago is still known: stale.
    let last = SESSIONS - 1;
    let remembered = order[last - PAST_SESSIONS];
    let report = |session: u64| {
        let body = Body::SenderReport(SenderReport::default());
        wire::encode_to_vec(
            &Packet {
                session,
                seq: 1,
                body,
            },
            &[],
        )
        .unwrap()
    };
    let t = T0 + SESSIONS as u64;
    assert_eq!(ingest.handle(&report(remembered), t), Outcome::Stale);
    // One more session back is forgotten: it is taken for a new session,
    // which (without a goodbye of the current one) is held on probation.
    let forgotten = order[last - PAST_SESSIONS - 1];
    assert_eq!(ingest.handle(&report(forgotten), t), Outcome::Unproven);
    let g = ingest.figures();
    assert_eq!(
        (g.counters.restarts, g.counters.stale),
        (f.counters.restarts, f.counters.stale + 1)
    );
    assert_eq!(g.counters.unproven, f.counters.unproven + 1);

    println!(
        "(b) {SESSIONS} sessions: VmRSS {start_kib} KiB after {WARM_UP}, peak {peak_kib} KiB, \
         end {end_kib} KiB (growth {} KiB)",
        peak_kib.saturating_sub(start_kib)
    );
    if start_kib > 0 {
        assert!(
            peak_kib.saturating_sub(start_kib) < 4 * 1024,
            "resident memory grew from {start_kib} KiB to {peak_kib} KiB"
        );
    }
}

/// (c) A receiver on 127.0.0.1 takes a flood of garbage (at most 200,000
/// datagrams, at most 5 s) from one socket while another socket sends a real
/// stream of 60 snapshots. Each real snapshot is resent until applied, so a
/// kernel drop of a real one cannot fail the test; the figures then show
/// what happened, exactly. Paced at about 65,000 garbage datagrams a second,
/// which a receiver keeps up with.
#[test]
fn under_a_garbage_flood_every_real_update_still_applies() {
    flood_test("paced", Some(Duration::from_millis(3)));
}

/// (c) The same, with the garbage sent as fast as one socket can (several
/// hundred thousand a second): the kernel drops what the receiver cannot
/// take, and the drops are counted; the real stream still applies.
#[test]
fn under_an_overload_flood_real_updates_apply_and_drops_are_counted() {
    flood_test("unpaced", None);
}

fn flood_test(name: &str, pace: Option<Duration>) {
    let _turn = one_at_a_time();
    const GARBAGE_MAX: u64 = 200_000;
    const FLOOD_TIME: Duration = Duration::from_secs(5);
    const TICKS: u64 = 60;
    let r = Receiver::start(ReceiverConfig::unicast((Ipv4Addr::LOCALHOST, 0).into())).unwrap();
    let to = r.local_addr();
    let garbage_socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let flood = thread::spawn({
        let socket = garbage_socket.try_clone().unwrap();
        move || flood_garbage(&socket, to, GARBAGE_MAX, FLOOD_TIME, pace)
    });

    // The real stream, spread over the flood.
    let real = UdpSocket::bind("127.0.0.1:0").unwrap();
    let session = 0x00c0_ffee;
    let (mut real_sent, mut resent) = (0u64, 0u64);
    wait_until(Duration::from_secs(2), || {
        r.figures().counters.malformed > 1_000
    });
    let real_start = Instant::now();
    for tick in 1..=TICKS {
        let d = snapshot(session, tick as u32, tick, &[entity(1), entity(2)]);
        let applied = |r: &Receiver| r.figures().counters.ticks_applied >= tick;
        let mut tries = 0;
        loop {
            real.send_to(&d, to).unwrap();
            real_sent += 1;
            tries += 1;
            if wait_until(Duration::from_millis(200), || applied(&r)) {
                break;
            }
            resent += 1;
            assert!(
                tries < 25,
                "tick {tick} never applied: {:?}",
                r.figures().summary()
            );
        }
        // Spread over the flood: the unpaced one lasts about a second.
        thread::sleep(Duration::from_millis(if pace.is_some() { 40 } else { 5 }));
    }
    let real_time = real_start.elapsed();
    let (mut garbage_sent, flood_time) = flood.join().unwrap();
    let garbage_before_probes = garbage_sent;

    // The kernel reports drops with the next datagram it delivers: once the
    // queue has drained, send one more garbage probe (counted) so the last
    // drops are reported, until every datagram sent is accounted for.
    let total = |g: u64| g + real_sent;
    let accounted = |r: &Receiver| {
        let f = r.figures();
        f.counters.datagrams + f.counters.socket_drops
    };
    let mut probes = 0;
    loop {
        let mut previous = u64::MAX;
        wait_until(Duration::from_secs(2), || {
            let now = accounted(&r);
            let settled = now == previous;
            previous = now;
            settled
        });
        if accounted(&r) >= total(garbage_sent) {
            break;
        }
        assert!(probes < 10, "datagrams never accounted for");
        garbage_socket.send_to(b"probe: not tickcast", to).unwrap();
        garbage_sent += 1;
        probes += 1;
    }
    let f = r.stop().unwrap();
    println!(
        "(c, {name}) garbage sent {garbage_before_probes} in {flood_time:.1?} ({:.0}/s) + {probes} probes; \
         real sent {real_sent} in {real_time:.1?} ({resent} resends): datagrams {}, malformed {}, \
         socket drops {}, duplicates {}, ticks applied {}, count {:?}",
        garbage_before_probes as f64 / flood_time.as_secs_f64(),
        f.counters.datagrams,
        f.counters.malformed,
        f.counters.socket_drops,
        f.counters.duplicates,
        f.counters.ticks_applied,
        f.count
    );
    assert_eq!(f.counters.ticks_applied, TICKS);
    assert_eq!(f.count, Some(TICKS));
    assert_eq!(
        f.counters.datagrams + f.counters.socket_drops,
        garbage_sent + real_sent
    );
    assert!(f.counters.malformed + f.counters.socket_drops >= garbage_sent);
    if f.counters.socket_drops == 0 {
        assert_eq!(f.counters.malformed, garbage_sent);
        assert_eq!(f.counters.duplicates, resent);
    }
    assert_eq!(f.counters.received + f.counters.lost, f.counters.expected);
}

/// Sends datagrams the decoder rejects (fuzzer output, filtered, made
/// beforehand so the flood runs at the socket's pace) to `to`, in bursts of
/// 200 with a `pace` pause after each (none: as fast as the socket takes
/// them), until `max` are sent or `time` passes. Returns how many the socket
/// took and for how long.
fn flood_garbage(
    socket: &UdpSocket,
    to: SocketAddr,
    max: u64,
    time: Duration,
    pace: Option<Duration>,
) -> (u64, Duration) {
    let mut mutator = Mutator::new(0xf100d);
    let (mut input, mut scratch) = (Vec::new(), Vec::new());
    let mut pool = Vec::with_capacity(10_000);
    while pool.len() < 10_000 {
        mutator.next_input(&mut input);
        if input.len() <= 1_400 && wire::decode(&input, &mut scratch).is_err() {
            pool.push(input.clone());
        }
    }
    let start = Instant::now();
    let mut sent = 0u64;
    let mut next = pool.iter().cycle();
    while sent < max && start.elapsed() < time {
        for d in next.by_ref().take(200) {
            if socket.send_to(d, to).is_ok() {
                sent += 1;
            }
        }
        if let Some(pause) = pace {
            thread::sleep(pause);
        }
    }
    (sent, start.elapsed())
}
