//! The exported functions called as C would call them, for what the C
//! round trip does not reach: misaligned pointers, lengths larger than
//! memory, and `tc_last_error` cutting a message inside a character; and
//! compact snapshots set from C's config.
// Tests own their clocks and threads; the layer wall in clippy.toml is for
// the library core.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::mem::{size_of, MaybeUninit};
use std::ptr;

use tickcast::core::compact::{quantized, CompactConfig};
use tickcast::ffi::*;
use tickcast::wire::Entity;

/// `sizeof(tc_receive_figures)`.
const FIGURES: usize = size_of::<tc_receive_figures>();
/// What a room holds before a call: any word of it that changes was written.
const SENTINEL: u64 = 0x5a5a_5a5a_5a5a_5a5a;

fn last_error() -> String {
    let mut buf = [0u8; 512];
    let mut len = 0;
    // SAFETY: a buffer of its length, a size_t.
    let s = unsafe { tc_last_error(buf.as_mut_ptr().cast(), buf.len(), &mut len) };
    assert_eq!(s, TC_OK);
    String::from_utf8(buf[..len].to_vec()).unwrap()
}

/// The default receiver config, listening on a free loopback port.
fn loopback_config() -> tc_receiver_config {
    let mut c = MaybeUninit::uninit();
    // SAFETY: room for a config, of its size; a static NUL-terminated string.
    unsafe {
        assert_eq!(
            tc_receiver_config_default(c.as_mut_ptr(), size_of::<tc_receiver_config>()),
            TC_OK
        );
        let mut c = c.assume_init();
        c.bind = c"127.0.0.1:0".as_ptr();
        c
    }
}

fn receiver() -> *mut tc_receiver {
    let mut r = ptr::null_mut();
    // SAFETY: a config whose strings are static; room for a handle.
    unsafe {
        let c = loopback_config();
        assert_eq!(tc_receiver_start(&c, &mut r), TC_OK, "{}", last_error());
    }
    r
}

#[test]
fn a_misaligned_out_pointer_is_an_invalid_argument_and_stop_then_frees_nothing() {
    let r = receiver();
    let mut room = [0u64; 64];
    // One byte in: misaligned for every struct but a byte's.
    let bad = room.as_mut_ptr().cast::<u8>().wrapping_add(1);
    // SAFETY: a live handle; the pointer is rejected before any write.
    unsafe {
        assert_eq!(
            tc_receiver_figures(r, bad.cast(), FIGURES),
            TC_ERR_INVALID_ARGUMENT
        );
        assert_eq!(last_error(), "out is not aligned to 8 bytes");
        assert_eq!(
            tc_receiver_stop(r, bad.cast(), FIGURES),
            TC_ERR_INVALID_ARGUMENT
        );
        // The handle lives on: it still answers, and stops.
        let mut port = 0;
        assert_eq!(tc_receiver_local_port(r, &mut port), TC_OK);
        assert_ne!(port, 0);
        assert_eq!(tc_receiver_stop(r, ptr::null_mut(), 0), TC_OK);
    }
    assert!(room.iter().all(|&w| w == 0), "nothing was written");
}

/// A handle used after its stop, stopped twice, never started, or passed
/// as the other type is refused by the table of live handles, with
/// nothing read or freed (a stop twice used to abort the process, and a
/// call after the stop read freed memory).
#[test]
fn a_stopped_unknown_or_mistyped_handle_is_refused_not_dereferenced() {
    let r = receiver();
    // SAFETY: each pointer is either a handle from this library or one the
    // table refuses before it is dereferenced.
    unsafe {
        let mut port = 0;
        assert_eq!(tc_receiver_local_port(r, &mut port), TC_OK);
        // A receiver passed for a broadcaster.
        let b = r.cast::<tc_broadcaster>();
        assert_eq!(
            tc_broadcaster_publish(b, ptr::null(), 0),
            TC_ERR_INVALID_ARGUMENT
        );
        assert_eq!(
            last_error(),
            "b is not a live handle: it was stopped already, or did not come from its *_start"
        );
        assert_eq!(
            tc_broadcaster_stop(b, ptr::null_mut(), 0),
            TC_ERR_INVALID_ARGUMENT
        );
        // Still alive as what it is.
        assert_eq!(tc_receiver_local_port(r, &mut port), TC_OK);
        assert_eq!(tc_receiver_stop(r, ptr::null_mut(), 0), TC_OK);
        // Stopped: every call with it is refused, a second stop too.
        assert_eq!(
            tc_receiver_local_port(r, &mut port),
            TC_ERR_INVALID_ARGUMENT
        );
        let mut samples = [MaybeUninit::<tc_sample>::uninit(); 4];
        let mut n = 0;
        assert_eq!(
            tc_receiver_sample(r, samples.as_mut_ptr().cast(), 4, &mut n),
            TC_ERR_INVALID_ARGUMENT
        );
        assert_eq!(
            tc_receiver_stop(r, ptr::null_mut(), 0),
            TC_ERR_INVALID_ARGUMENT
        );
        assert!(
            last_error().starts_with("r is not a live handle"),
            "{}",
            last_error()
        );
        // An aligned address no start gave.
        let mut fake = [0u64; 32];
        let never = fake.as_mut_ptr().cast::<tc_receiver>();
        assert_eq!(
            tc_receiver_stop(never, ptr::null_mut(), 0),
            TC_ERR_INVALID_ARGUMENT
        );
        assert!(fake.iter().all(|&w| w == 0), "nothing was written");
    }
}

#[test]
fn a_length_larger_than_memory_is_refused_before_anything_is_read() {
    let r = receiver();
    let mut n = 0;
    // SAFETY: a live handle; the buffer is rejected for its length, never used.
    unsafe {
        let s = tc_receiver_world(
            r,
            ptr::NonNull::dangling().as_ptr(),
            usize::MAX,
            &mut n,
            ptr::null_mut(),
        );
        assert_eq!(s, TC_ERR_INVALID_ARGUMENT);
        assert!(
            last_error().ends_with("is larger than memory"),
            "{}",
            last_error()
        );
        // A NULL buffer with room for nothing is a size query.
        let s = tc_receiver_world(r, ptr::null_mut(), 0, &mut n, ptr::null_mut());
        assert_eq!((s, n), (TC_OK, 0), "no frame yet: nothing needed");
        assert_eq!(tc_receiver_stop(r, ptr::null_mut(), 0), TC_OK);
    }
}

#[test]
fn last_error_cuts_a_message_at_a_character_boundary_and_says_its_length() {
    let mut c = MaybeUninit::uninit();
    let mut b = ptr::null_mut();
    // SAFETY: room for a config, a NUL-terminated string, room for a handle.
    unsafe {
        assert_eq!(
            tc_broadcast_config_default(c.as_mut_ptr(), size_of::<tc_broadcast_config>()),
            TC_OK
        );
        let mut c = c.assume_init();
        c.destinations = c"127.0.0.1:9".as_ptr();
        c.rate_hz = 0.0;
        assert_eq!(
            tc_broadcaster_start(&c, TC_CLOCK_TICKCAST, &mut b),
            TC_ERR_CONFIG
        );
    }
    assert!(b.is_null());
    let full = last_error();
    assert_eq!(
        full,
        "tick rate 0 Hz is not in (0, 10000] (at 1 µHz resolution)"
    );
    let micro = full.find('µ').unwrap();
    // Room for the bytes before µ and one of its two: the cut goes before it.
    let mut buf = vec![0xa5u8; micro + 2];
    let mut len = 0;
    // SAFETY: a buffer of its length, a size_t.
    let s = unsafe { tc_last_error(buf.as_mut_ptr().cast(), buf.len(), &mut len) };
    assert_eq!(s, TC_ERR_BUFFER_TOO_SMALL);
    assert_eq!(len, full.len());
    assert_eq!(&buf[..micro], &full.as_bytes()[..micro]);
    assert_eq!(buf[micro], 0, "NUL-terminated before the µ");
    // The failed call left the message as it was.
    assert_eq!(last_error(), full);
}

/// Compact snapshots through the C ABI: a broadcaster with
/// `quanta_per_unit` set sends compact parts, and the receiver's world is
/// the published one quantized, exactly; a position beyond the bound is
/// `TC_ERR_BAD_COORDINATE`.
#[test]
fn compact_snapshots_through_the_abi_hold_the_world_to_the_quantum() {
    let r = receiver();
    let mut port = 0;
    let mut b = ptr::null_mut();
    // SAFETY: live handles, configs and buffers of their stated lengths.
    unsafe {
        assert_eq!(tc_receiver_local_port(r, &mut port), TC_OK);
        let dest = std::ffi::CString::new(format!("127.0.0.1:{port}")).unwrap();
        let mut c = MaybeUninit::uninit();
        assert_eq!(
            tc_broadcast_config_default(c.as_mut_ptr(), size_of::<tc_broadcast_config>()),
            TC_OK
        );
        let mut c = c.assume_init();
        c.destinations = dest.as_ptr();
        c.max_subscribers = 0;
        c.rate_hz = 200.0;
        c.quanta_per_unit = 100; // centimetres
        c.bound = 5000.0;
        assert_eq!(
            tc_broadcaster_start(&c, TC_CLOCK_TICKCAST, &mut b),
            TC_OK,
            "{}",
            last_error()
        );
        let world: Vec<tc_entity> = (0..500u32)
            .map(|id| tc_entity {
                id,
                x: id as f32 * 0.123,
                y: -7.891,
                z: 3.0,
            })
            .collect();
        assert_eq!(
            tc_broadcaster_publish(b, world.as_ptr(), world.len()),
            TC_OK
        );
        let far = [tc_entity {
            id: 1,
            x: 6000.0,
            y: 0.0,
            z: 0.0,
        }];
        assert_eq!(
            tc_broadcaster_publish(b, far.as_ptr(), 1),
            TC_ERR_BAD_COORDINATE
        );
        let mut got: Vec<tc_entity_state> = Vec::with_capacity(1000);
        let mut n = 0;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            assert_eq!(
                tc_receiver_world(r, got.as_mut_ptr(), 1000, &mut n, ptr::null_mut()),
                TC_OK
            );
            if n == 500 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(n, 500);
        got.set_len(n);
        // Exactly what quantizing to centimetres gives, which is not what
        // was published (a full snapshot would carry that): compact parts
        // came.
        let config = CompactConfig {
            quanta_per_unit: 100,
            bound: 5000.0,
            ..CompactConfig::default()
        };
        for (g, e) in got.iter().zip(&world) {
            assert_eq!(g.id, e.id);
            let published = Entity {
                id: e.id,
                x: e.x,
                y: e.y,
                z: e.z,
            };
            let q = quantized(&published, &config);
            assert_eq!((g.x, g.y, g.z), (q.x, q.y, q.z), "entity {}", e.id);
            assert_ne!(g.y, e.y, "-7.891 is no whole centimetre");
        }
        assert_eq!(tc_broadcaster_stop(b, ptr::null_mut(), 0), TC_OK);
        assert_eq!(tc_receiver_stop(r, ptr::null_mut(), 0), TC_OK);
    }
}

/// ABI 3's sized figures: a size below ABI 3's layout (0, one word, one
/// word short) is refused before anything is written, and stop then
/// leaves the handle alive; a larger room (a newer header's struct) gets
/// this library's fields and keeps the rest as it was, and `size` says
/// what was written.
#[test]
fn figures_are_written_within_the_size_the_caller_passes() {
    let r = receiver();
    // One byte short is taken down to the whole word below: refused too.
    for size in [0, 8, FIGURES - 8, FIGURES - 1] {
        let mut room = [SENTINEL; 64];
        // SAFETY: a live handle; 512 bytes of room, aligned.
        unsafe {
            let out = room.as_mut_ptr().cast::<tc_receive_figures>();
            assert_eq!(tc_receiver_figures(r, out, size), TC_ERR_INVALID_ARGUMENT);
            let want = format!("out's size is {size} bytes, below the {FIGURES} of the oldest");
            assert!(last_error().starts_with(&want), "{}", last_error());
            assert_eq!(tc_receiver_stop(r, out, size), TC_ERR_INVALID_ARGUMENT);
        }
        assert!(room.iter().all(|&w| w == SENTINEL), "nothing was written");
    }
    let mut room = [SENTINEL; 64];
    // SAFETY: a live handle; 512 bytes of room, as passed.
    unsafe {
        assert_eq!(tc_receiver_figures(r, room.as_mut_ptr().cast(), 512), TC_OK);
    }
    assert_eq!(room[0], FIGURES as u64, "size is what was written");
    assert!(
        room[1..FIGURES / 8].iter().any(|&w| w != SENTINEL),
        "the figures were written"
    );
    assert!(
        room[FIGURES / 8..].iter().all(|&w| w == SENTINEL),
        "beyond them, nothing"
    );
    let mut room = [SENTINEL; 64];
    // SAFETY: a live handle, stopped once, into the larger room.
    unsafe {
        assert_eq!(tc_receiver_stop(r, room.as_mut_ptr().cast(), 512), TC_OK);
    }
    assert_eq!(room[0], FIGURES as u64);
    assert!(room[FIGURES / 8..].iter().all(|&w| w == SENTINEL));
}

/// ABI 3's sized configs: one not filled by its `_default` (`size` 0) is
/// refused with a message that says so; one from a newer, larger header
/// is read up to this library's fields, the rest ignored.
#[test]
fn configs_are_read_within_the_size_the_caller_declares() {
    #[repr(C)]
    struct Newer {
        config: tc_receiver_config,
        appended: [u64; 4],
    }
    let mut r = ptr::null_mut();
    let c = loopback_config();
    assert_eq!(c.size as usize, size_of::<tc_receiver_config>());
    // SAFETY: configs whose strings are static; room for a handle.
    unsafe {
        let mut zero = c;
        zero.size = 0;
        assert_eq!(tc_receiver_start(&zero, &mut r), TC_ERR_INVALID_ARGUMENT);
        assert!(r.is_null());
        assert!(
            last_error().starts_with("config->size is 0 bytes, below the"),
            "{}",
            last_error()
        );
        assert!(last_error().contains("_default"), "{}", last_error());
        let newer = Newer {
            config: tc_receiver_config {
                size: size_of::<Newer>() as u64,
                ..c
            },
            appended: [u64::MAX; 4],
        };
        assert_eq!(
            tc_receiver_start(&newer.config, &mut r),
            TC_OK,
            "{}",
            last_error()
        );
        let mut port = 0;
        assert_eq!(tc_receiver_local_port(r, &mut port), TC_OK);
        assert_ne!(port, 0);
        assert_eq!(tc_receiver_stop(r, ptr::null_mut(), 0), TC_OK);
    }
}

/// A config's `_default` writes within the size it is passed, as the
/// figures are: below ABI 3's first layout nothing is written; into that
/// layout's size (an older header's struct) only it, the fields appended
/// since left alone; into a larger room (a newer header's) this library's
/// fields, `size` saying how many bytes, and the rest left as it was.
#[test]
fn defaults_are_written_within_the_size_the_caller_passes() {
    let ours = size_of::<tc_broadcast_config>();
    let older = std::mem::offset_of!(tc_broadcast_config, realtime_priority);
    let mut room = [SENTINEL; 64];
    // SAFETY: 512 bytes of room, aligned.
    unsafe {
        let out = room.as_mut_ptr().cast::<tc_broadcast_config>();
        assert_eq!(
            tc_broadcast_config_default(out, older - 8),
            TC_ERR_INVALID_ARGUMENT
        );
        assert!(room.iter().all(|&w| w == SENTINEL), "nothing was written");
        assert_eq!(tc_broadcast_config_default(out, older), TC_OK);
        assert_eq!((*out).size, older as u64);
        assert_eq!((*out).rate_hz, 60.0);
    }
    assert!(
        room[older / 8..].iter().all(|&w| w == SENTINEL),
        "past the older layout, nothing"
    );
    // SAFETY: as above.
    unsafe {
        let out = room.as_mut_ptr().cast::<tc_broadcast_config>();
        assert_eq!(tc_broadcast_config_default(out, 512), TC_OK);
        assert_eq!((*out).size, ours as u64);
        assert_eq!(((*out).realtime_priority, (*out).cpu), (0, -1));
    }
    assert!(
        room[ours / 8..].iter().all(|&w| w == SENTINEL),
        "beyond it, nothing"
    );
}

/// The fields appended after ABI 3's first layout: a config of that
/// older, smaller size is read only that far, so the library's defaults
/// stand for what it lacks (here a CPU that does not exist, past its end,
/// is never read: the receiver starts); the full struct's CPU is used (and
/// that CPU refused by start, `TC_ERR_IO`, with nothing left running).
#[test]
fn a_config_from_an_older_header_gets_the_defaults_for_what_it_lacks() {
    let older = std::mem::offset_of!(tc_receiver_config, realtime_priority);
    let mut c = loopback_config();
    c.cpu = 9999;
    let mut r = ptr::null_mut();
    // SAFETY: configs whose strings are static, each at least its `size`
    // bytes long; room for a handle.
    unsafe {
        c.size = older as u64;
        assert_eq!(tc_receiver_start(&c, &mut r), TC_OK, "{}", last_error());
        assert_eq!(tc_receiver_stop(r, ptr::null_mut(), 0), TC_OK);
        c.size = size_of::<tc_receiver_config>() as u64;
        assert_eq!(tc_receiver_start(&c, &mut r), TC_ERR_IO);
        assert!(r.is_null());
        assert!(last_error().contains("CPU 9999"), "{}", last_error());
    }
}

/// As root: a C config's `realtime_priority` and `cpu` reach the thread.
/// The receiver thread reads back as SCHED_FIFO at the priority asked
/// for, on the CPU asked for (its `stat` and `status` in `/proc`).
#[test]
fn realtime_priority_and_cpu_reach_the_receiver_thread() {
    if !common::is_root() {
        common::skip("SCHED_FIFO needs root here");
        return;
    }
    let allowed = tickcast::runtime::realtime::allowed_cpus().unwrap();
    let cpu = *allowed.0.last().unwrap();
    let mut c = loopback_config();
    (c.realtime_priority, c.cpu) = (11, i32::try_from(cpu).unwrap());
    let mut r = ptr::null_mut();
    // SAFETY: a config whose strings are static; room for a handle.
    unsafe {
        assert_eq!(tc_receiver_start(&c, &mut r), TC_OK, "{}", last_error());
    }
    let pid = std::process::id();
    // Other tests of this file run receivers too, as ordinary threads:
    // this one is the receiver thread at priority 11.
    let ours: Vec<u32> = common::threads_named(pid, "tickcast-receive")
        .into_iter()
        .filter(|&tid| common::sched_of(pid, tid) == (1, 11))
        .collect();
    assert_eq!(ours.len(), 1, "SCHED_FIFO 11 receiver threads: {ours:?}");
    let status = format!("/proc/{pid}/task/{}/status", ours[0]);
    assert_eq!(
        common::status_field(&status, "Cpus_allowed_list:"),
        cpu.to_string()
    );
    // SAFETY: a live handle, stopped once.
    unsafe {
        assert_eq!(tc_receiver_stop(r, ptr::null_mut(), 0), TC_OK);
    }
}
