//! A crafted sender drives a real receiver over loopback: every figure must
//! come out exactly as the script says.
// Tests, benches, examples and the binary own their clocks, sockets and files;
// the layer wall in clippy.toml is for the library core.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::net::{Ipv4Addr, UdpSocket};
use std::time::Duration;

use common::{scripted_stream, send_all, snap, wait_until};
use rand::{Rng, SeedableRng};
use tickcast::runtime::receiver::{Receiver, ReceiverConfig};

fn start() -> Receiver {
    Receiver::start(ReceiverConfig::unicast((Ipv4Addr::LOCALHOST, 0).into())).unwrap()
}

#[test]
fn scripted_stream_gives_exact_figures_through_a_real_socket() {
    let r = start();
    let (datagrams, e) = scripted_stream();
    send_all(r.local_addr(), &datagrams);
    assert!(wait_until(Duration::from_secs(5), || r
        .figures()
        .counters
        .datagrams
        == e.datagrams));
    let f = r.stop().unwrap();
    assert_eq!(
        (f.counters.expected, f.counters.received, f.counters.lost),
        (e.expected, e.received, e.lost)
    );
    assert_eq!(
        (
            f.counters.duplicates,
            f.counters.reordered,
            f.counters.stale,
            f.counters.malformed,
            f.counters.restarts
        ),
        (e.duplicates, e.reordered, e.stale, e.malformed, e.restarts)
    );
    assert_eq!(
        (f.counters.ticks_applied, f.counters.unproven),
        (e.ticks_applied, e.unproven)
    );
    assert_eq!(f.counters.received + f.counters.lost, f.counters.expected);
    assert!(f.goodbye);
    assert_eq!(f.count, Some(1), "the new session's newest tick");
}

#[test]
fn world_is_readable_from_another_thread_while_receiving() {
    let r = start();
    let world = r.world().clone();
    send_all(r.local_addr(), &[snap(7, 0, 41), snap(7, 1, 42)]);
    assert!(wait_until(Duration::from_secs(5), || world.count() == Some(42)));
    let reader = std::thread::spawn(move || world.get(1).unwrap());
    let e = reader.join().unwrap();
    assert_eq!((e.tick, e.x, e.y, e.z), (42, 1.0, 2.0, 3.0));
    r.stop().unwrap();
}

#[test]
fn garbage_never_panics_and_real_updates_still_apply() {
    let r = start();
    let to = r.local_addr();
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let valid = snap(9, 0, 5);
    let mut sent = 0u64;
    // Bounded: 2,000 datagrams of noise and mutated valid packets.
    for i in 0..2_000u32 {
        let d: Vec<u8> = if i % 2 == 0 {
            let len = rng.random_range(0..200);
            (0..len).map(|_| rng.random()).collect()
        } else {
            let mut d = valid.clone();
            let at = rng.random_range(0..d.len());
            d[at] ^= rng.random_range(1..=255u8);
            d
        };
        s.send_to(&d, to).unwrap();
        sent += 1;
        if i % 100 == 99 {
            // Each hundred once the receiver has taken the one before, so
            // a slow thread never finds more than that in its socket.
            let taken = wait_until(Duration::from_secs(5), || {
                r.figures().counters.datagrams == sent
            });
            assert!(taken, "{} of {sent} taken", r.figures().counters.datagrams);
        }
    }
    s.send_to(&snap(9, 1_000, 6), to).unwrap();
    sent += 1;
    assert!(wait_until(Duration::from_secs(5), || r
        .figures()
        .counters
        .datagrams
        == sent));
    assert!(r.is_running());
    let f = r.stop().unwrap();
    // A mutated byte may land in a field where any value is valid (seq, tick,
    // a coordinate), so not every datagram is malformed; but none is lost
    // from the accounting: each one was counted once as something.
    assert!(f.counters.malformed >= 1_000, "{}", f.counters.malformed);
    assert_eq!(f.counters.received + f.counters.lost, f.counters.expected);
    assert!(f.count.is_some());
}

#[test]
fn stop_is_prompt_and_port_in_use_is_a_clear_error() {
    let r = start();
    let addr = r.local_addr();
    let err = Receiver::start(ReceiverConfig::unicast(addr))
        .err()
        .unwrap();
    assert!(err.to_string().contains("already in use"), "{err}");
    let t = std::time::Instant::now();
    r.stop().unwrap();
    assert!(t.elapsed() < Duration::from_secs(2));
}
