//! The broadcaster's functions (`tc_broadcaster_*`).

use std::ptr;

use crate::PublishClock;

use super::raw;
use crate::ffi::broadcaster::tc_broadcaster;
use crate::ffi::config::{self, Strings};
use crate::ffi::error::{guard, Failure};
use crate::ffi::types::{
    tc_broadcast_config, tc_broadcast_figures, tc_clock, tc_entity, tc_status, TC_CLOCK_GAME,
    TC_CLOCK_TICKCAST,
};

/// Starts a broadcaster of the game's world: opens and binds its socket
/// and starts its thread, which sends on `clock`'s schedule (see
/// `tc_clock`) to every destination, the group, and every receiver that
/// subscribes. On success `*out` is the handle; stop it with
/// `tc_broadcaster_stop`, which frees it. On failure `*out` is NULL and
/// nothing is left running: `TC_ERR_CONFIG` (the message names the field),
/// `TC_ERR_IO` (socket, bind, thread) or `TC_ERR_INVALID_ARGUMENT`.
///
/// Each frame is the whole world: an id that was in the frame sent before
/// and is not in this one is despawned at the receivers.
///
/// Thread-safety: any thread. Host names in `config` are resolved on the
/// calling thread, which then waits for the system's resolver.
///
/// # Safety
/// `config` points to a `tc_broadcast_config` whose strings are
/// NUL-terminated and whose `key`, if not NULL, points to `TC_KEY_LEN`
/// bytes; `out` points to a `tc_broadcaster*`. Either may be NULL (then
/// `TC_ERR_INVALID_ARGUMENT`).
#[no_mangle]
pub unsafe extern "C" fn tc_broadcaster_start(
    config: *const tc_broadcast_config,
    clock: tc_clock,
    out: *mut *mut tc_broadcaster,
) -> tc_status {
    guard(|| {
        // SAFETY: the caller's promise, passed on.
        let out = unsafe { raw::out(out, "out") }?;
        out.write(ptr::null_mut());
        // SAFETY: as above.
        let c = unsafe { raw::read_sized(config, config::broadcast_default(), "config") }?;
        // SAFETY: as above, for each field.
        let strings = unsafe {
            Strings {
                destinations: raw::text(c.destinations, "destinations")?,
                group: raw::text(c.group, "group")?,
                interface: raw::text(c.interface, "interface")?,
                bind: raw::text(c.bind, "bind")?,
                key: raw::key(c.key, "key")?,
                key_file: raw::text(c.key_file, "key_file")?,
                subscribe: None,
            }
        };
        let clock = match clock {
            TC_CLOCK_TICKCAST => PublishClock::Tickcast,
            TC_CLOCK_GAME => PublishClock::Game,
            other => {
                return Err(Failure::invalid(format_args!(
                    "clock {other} is not TC_CLOCK_TICKCAST or TC_CLOCK_GAME"
                )))
            }
        };
        let config = config::broadcast(&c, &strings)?;
        let b = tc_broadcaster::start(config, clock)?;
        out.write(raw::into_handle(b));
        Ok(())
    })
}

/// Publishes `entities[0..n]` as the whole world (under
/// `TC_CLOCK_TICKCAST`): copied, so the caller may change them at once.
/// The next tick sends it, or a later frame if one is published first.
/// Returns at once; never waits for the broadcast thread.
///
/// Fails, publishing nothing, with `TC_ERR_BAD_COORDINATE` (a coordinate
/// NaN, infinite or out of range), `TC_ERR_WRONG_CLOCK` (the broadcaster
/// runs on `TC_CLOCK_GAME`), `TC_ERR_BAD_FRAME` (an id listed twice, with
/// compact snapshots one of 2^24 or more, or more entities than 65535
/// datagrams hold), `TC_ERR_STOPPED` (its duration ran out) or
/// `TC_ERR_INVALID_ARGUMENT`.
///
/// Thread-safety: one thread at a time per broadcaster (the game's);
/// calls from several threads are serialized, not undefined, but their
/// frames then replace each other in no set order.
///
/// # Safety
/// `b` is a handle no other thread stops during the call (a stopped or
/// unknown one is refused); `entities` points to `n` `tc_entity`s, or is NULL
/// with `n` 0 (an empty world).
#[no_mangle]
pub unsafe extern "C" fn tc_broadcaster_publish(
    b: *const tc_broadcaster,
    entities: *const tc_entity,
    n: usize,
) -> tc_status {
    guard(|| {
        // SAFETY: the caller's promise, passed on.
        let (b, entities) = unsafe { (raw::handle(b, "b")?, raw::slice(entities, n, "entities")?) };
        b.publish(entities)
    })
}

/// Sends `entities[0..n]` as the whole world of the game's tick `tick`
/// (under `TC_CLOCK_GAME`): stamped now and handed to the broadcast
/// thread, which sends it at once; returns without waiting for the send.
/// A frame sent before the thread took the previous one replaces it, and
/// is counted in `frames_replaced`.
///
/// Fails, sending nothing, with `TC_ERR_TICK_NOT_AFTER` (`tick` is not
/// after the last tick sent), `TC_ERR_BAD_COORDINATE`, `TC_ERR_BAD_FRAME`,
/// `TC_ERR_WRONG_CLOCK` (the broadcaster runs on `TC_CLOCK_TICKCAST`),
/// `TC_ERR_STOPPED` or `TC_ERR_INVALID_ARGUMENT`.
///
/// Thread-safety: as `tc_broadcaster_publish`.
///
/// # Safety
/// As `tc_broadcaster_publish`.
#[no_mangle]
pub unsafe extern "C" fn tc_broadcaster_send(
    b: *const tc_broadcaster,
    tick: u64,
    entities: *const tc_entity,
    n: usize,
) -> tc_status {
    guard(|| {
        // SAFETY: the caller's promise, passed on.
        let (b, entities) = unsafe { (raw::handle(b, "b")?, raw::slice(entities, n, "entities")?) };
        b.send(tick, entities)
    })
}

/// Writes the figures so far into `*out`, `size` bytes at most
/// (`sizeof *out` in the caller's header; `out->size` is then the bytes
/// written): published by the broadcast thread after every tick, so at
/// most a tick old.
///
/// Thread-safety: any thread, at the same time as the others; it never
/// makes the broadcast thread or a publishing thread wait.
///
/// # Safety
/// `b` is a handle no other thread stops during the call (a stopped or
/// unknown one is refused); `out` points to `size` bytes of room for a
/// `tc_broadcast_figures`.
#[no_mangle]
pub unsafe extern "C" fn tc_broadcaster_figures(
    b: *const tc_broadcaster,
    out: *mut tc_broadcast_figures,
    size: usize,
) -> tc_status {
    guard(|| {
        // SAFETY: the caller's promise, passed on.
        let (b, out) = unsafe { (raw::handle(b, "b")?, raw::sized_out(out, size, "out")?) };
        out.write(b.figures());
        Ok(())
    })
}

/// Writes the local UDP port the broadcaster's socket is bound to (where
/// receivers subscribe) into `*out`.
///
/// Thread-safety: any thread, at the same time as the others.
///
/// # Safety
/// `b` is a handle no other thread stops during the call (a stopped or
/// unknown one is refused); `out` points to a `uint16_t`.
#[no_mangle]
pub unsafe extern "C" fn tc_broadcaster_local_port(
    b: *const tc_broadcaster,
    out: *mut u16,
) -> tc_status {
    guard(|| {
        // SAFETY: the caller's promise, passed on.
        let (b, out) = unsafe { (raw::handle(b, "b")?, raw::out(out, "out")?) };
        out.write(b.local_port());
        Ok(())
    })
}

/// Writes the session id every packet of this broadcast carries into `*out`.
///
/// Thread-safety: any thread, at the same time as the others.
///
/// # Safety
/// `b` is a handle no other thread stops during the call (a stopped or
/// unknown one is refused); `out` points to a `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn tc_broadcaster_session(
    b: *const tc_broadcaster,
    out: *mut u64,
) -> tc_status {
    guard(|| {
        // SAFETY: the caller's promise, passed on.
        let (b, out) = unsafe { (raw::handle(b, "b")?, raw::out(out, "out")?) };
        out.write(b.session());
        Ok(())
    })
}

/// Stops the broadcaster: its thread sends the goodbye and ends, and the
/// handle is freed. `out`, if not NULL, receives the final figures (on
/// `TC_OK`), `size` bytes at most as in `tc_broadcaster_figures`. Also
/// for a broadcaster whose duration ran out, to free it.
/// `TC_ERR_INVALID_ARGUMENT` (`b` NULL, `out` misaligned or its `size`
/// too small) did nothing; after any other status the handle is freed.
///
/// Thread-safety: once per handle, when no other thread is using it or
/// will: afterwards `b` is dangling.
///
/// # Safety
/// `b` is a handle no other thread uses during or after the call (a
/// stopped or unknown one is refused); `out` points to `size` bytes of
/// room for a `tc_broadcast_figures`, or is NULL.
#[no_mangle]
pub unsafe extern "C" fn tc_broadcaster_stop(
    b: *mut tc_broadcaster,
    out: *mut tc_broadcast_figures,
    size: usize,
) -> tc_status {
    guard(|| {
        // SAFETY: the caller's promise, passed on; `out` is checked first,
        // so a bad `out` leaves the handle alive.
        let out = unsafe { raw::sized_out_opt(out, size, "out") }?;
        // SAFETY: as above.
        let b = unsafe { raw::take_handle(b, "b") }?;
        let figures = (*b).stop();
        if let Some(out) = out {
            out.write(figures);
        }
        Ok(())
    })
}
