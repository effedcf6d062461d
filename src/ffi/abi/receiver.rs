//! The receiver's functions (`tc_receiver_*`).

use std::ptr;

use super::raw;
use crate::ffi::config::{self, Strings};
use crate::ffi::error::guard;
use crate::ffi::receiver::tc_receiver;
use crate::ffi::types::{
    tc_entity_state, tc_event, tc_frame_info, tc_receive_figures, tc_receiver_config, tc_sample,
    tc_status,
};

/// Starts a receiver with a game client: binds its socket(s), joins the
/// group, subscribes, and starts its thread, which applies every datagram
/// as it arrives and hands the game whole frames and events. On success
/// `*out` is the handle; stop it with `tc_receiver_stop`, which frees it.
/// On failure `*out` is NULL and nothing is left running:
/// `TC_ERR_CONFIG` (nothing to listen to, an address that does not parse,
/// a key file), `TC_ERR_IO` (bind, join, thread) or
/// `TC_ERR_INVALID_ARGUMENT`.
///
/// Thread-safety: any thread. Host names in `config` are resolved on the
/// calling thread.
///
/// # Safety
/// `config` points to a `tc_receiver_config` whose strings are
/// NUL-terminated and whose `key`, if not NULL, points to `TC_KEY_LEN`
/// bytes; `out` points to a `tc_receiver*`. Either may be NULL (then
/// `TC_ERR_INVALID_ARGUMENT`).
#[no_mangle]
pub unsafe extern "C" fn tc_receiver_start(
    config: *const tc_receiver_config,
    out: *mut *mut tc_receiver,
) -> tc_status {
    guard(|| {
        // SAFETY: the caller's promise, passed on.
        let out = unsafe { raw::out(out, "out") }?;
        out.write(ptr::null_mut());
        // SAFETY: as above.
        let c = unsafe { raw::read_sized(config, config::receiver_default(), "config") }?;
        // SAFETY: as above, for each field.
        let strings = unsafe {
            Strings {
                bind: raw::text(c.bind, "bind")?,
                group: raw::text(c.group, "group")?,
                interface: raw::text(c.interface, "interface")?,
                subscribe: raw::text(c.subscribe, "subscribe")?,
                key: raw::key(c.key, "key")?,
                key_file: raw::text(c.key_file, "key_file")?,
                destinations: None,
            }
        };
        let config = config::receiver(&c, &strings)?;
        let r = tc_receiver::start(config)?;
        out.write(raw::into_handle(r));
        Ok(())
    })
}

/// Writes the local UDP port of the receiver's first socket (the unicast
/// one, if it has one) into `*out`: the port to send to after binding port 0.
///
/// Thread-safety: any thread, at the same time as the others.
///
/// # Safety
/// `r` is a handle no other thread stops during the call (a stopped or
/// unknown one is refused); `out` points to a `uint16_t`.
#[no_mangle]
pub unsafe extern "C" fn tc_receiver_local_port(r: *const tc_receiver, out: *mut u16) -> tc_status {
    guard(|| {
        // SAFETY: the caller's promise, passed on.
        let (r, out) = unsafe { (raw::handle(r, "r")?, raw::out(out, "out")?) };
        out.write(r.local_port());
        Ok(())
    })
}

/// Copies the latest frame of the world into `buf`: every entity alive
/// as of the newest complete tick (or, if a part was lost, each as of its
/// own latest tick), ascending by id. `*n_out` is set to the frame's
/// entity count; if that is more than `cap`, nothing is copied and the
/// status is `TC_ERR_BUFFER_TOO_SMALL` (call again with room for `*n_out`,
/// or more: the next frame may be larger). `info_out`, if not NULL,
/// receives the frame's tick and session (also on `TC_ERR_BUFFER_TOO_SMALL`).
/// Cheap to call every rendered frame: it never waits for the receiver
/// thread.
///
/// Thread-safety: one thread at a time per receiver (the game's), like
/// `tc_receiver_events` and `tc_receiver_sample`; calls from several
/// threads are serialized, not undefined.
///
/// # Safety
/// `r` is a handle no other thread stops during the call (a stopped or
/// unknown one is refused); `buf` points to room for `cap` `tc_entity_state`s
/// (or is NULL with `cap` 0); `n_out` points to a `size_t`; `info_out`
/// points to a `tc_frame_info`, or is NULL.
#[no_mangle]
pub unsafe extern "C" fn tc_receiver_world(
    r: *const tc_receiver,
    buf: *mut tc_entity_state,
    cap: usize,
    n_out: *mut usize,
    info_out: *mut tc_frame_info,
) -> tc_status {
    guard(|| {
        // SAFETY: the caller's promise, passed on.
        let (r, buf, n_out, info_out) = unsafe {
            (
                raw::handle(r, "r")?,
                raw::out_slice(buf, cap, "buf")?,
                raw::out(n_out, "n_out")?,
                raw::out_opt(info_out, "info_out")?,
            )
        };
        let mut n = 0;
        let (info, copied) = r.world(buf, &mut n);
        n_out.write(n);
        if let Some(out) = info_out {
            out.write(info);
        }
        copied
    })
}

/// Takes up to `cap` waiting events into `buf`, oldest first, and sets
/// `*n_out` to how many; the rest wait for the next call (call again
/// while `*n_out == cap`). Spawns, despawns, session starts and
/// restarts, the stream's end and the subscription's changes; events the
/// game leaves unread beyond `event_capacity` are dropped and counted in
/// `events_dropped`.
///
/// Thread-safety: as `tc_receiver_world`.
///
/// # Safety
/// `r` is a handle no other thread stops during the call (a stopped or
/// unknown one is refused); `buf` points to room for `cap` `tc_event`s (or is
/// NULL with `cap` 0); `n_out` points to a `size_t`.
#[no_mangle]
pub unsafe extern "C" fn tc_receiver_events(
    r: *const tc_receiver,
    buf: *mut tc_event,
    cap: usize,
    n_out: *mut usize,
) -> tc_status {
    guard(|| {
        // SAFETY: the caller's promise, passed on.
        let (r, buf, n_out) = unsafe {
            (
                raw::handle(r, "r")?,
                raw::out_slice(buf, cap, "buf")?,
                raw::out(n_out, "n_out")?,
            )
        };
        n_out.write(r.events(buf));
        Ok(())
    })
}

/// Draws every entity's position at render time, now, into `buf`,
/// ascending by id: interpolated between the two snapshots around now
/// minus the render delay, extrapolated for a while past the newest, or
/// held. The latest frame is taken first. A despawned entity is still
/// drawn until the render time reaches the tick it left at (at most a
/// tick after its last snapshot), so its last moves show: a sample may
/// hold an id whose `TC_EVENT_DESPAWNED` was already read and that
/// `tc_receiver_world` no longer lists (size `buf` by a previous count or
/// ask with `cap` 0, not by the world). `*n_out` is set to the entity
/// count; if that is more than `cap`,
/// nothing is copied and the status is `TC_ERR_BUFFER_TOO_SMALL` (the
/// draw still counts in the interpolation figures).
///
/// Thread-safety: as `tc_receiver_world`.
///
/// # Safety
/// `r` is a handle no other thread stops during the call (a stopped or
/// unknown one is refused); `buf` points to room for `cap` `tc_sample`s (or
/// is NULL with `cap` 0); `n_out` points to a `size_t`.
#[no_mangle]
pub unsafe extern "C" fn tc_receiver_sample(
    r: *const tc_receiver,
    buf: *mut tc_sample,
    cap: usize,
    n_out: *mut usize,
) -> tc_status {
    // SAFETY: the caller's promise, passed on.
    unsafe { sample(r, None, buf, cap, n_out) }
}

/// As `tc_receiver_sample`, at the local time `now_ns` (ns since the Unix
/// epoch on the real-time clock, as `tc_now_ns` reads it) instead of now:
/// for a game that renders at a time of its own.
///
/// Thread-safety: as `tc_receiver_world`.
///
/// # Safety
/// As `tc_receiver_sample`.
#[no_mangle]
pub unsafe extern "C" fn tc_receiver_sample_at(
    r: *const tc_receiver,
    now_ns: u64,
    buf: *mut tc_sample,
    cap: usize,
    n_out: *mut usize,
) -> tc_status {
    // SAFETY: the caller's promise, passed on.
    unsafe { sample(r, Some(now_ns), buf, cap, n_out) }
}

/// # Safety
/// As `tc_receiver_sample`.
unsafe fn sample(
    r: *const tc_receiver,
    now_ns: Option<u64>,
    buf: *mut tc_sample,
    cap: usize,
    n_out: *mut usize,
) -> tc_status {
    guard(|| {
        // SAFETY: the caller's promise, passed on.
        let (r, buf, n_out) = unsafe {
            (
                raw::handle(r, "r")?,
                raw::out_slice(buf, cap, "buf")?,
                raw::out(n_out, "n_out")?,
            )
        };
        let mut n = 0;
        let drawn = r.sample(now_ns, buf, &mut n);
        n_out.write(n);
        drawn
    })
}

/// Writes the figures so far into `*out`: what the receiver thread last
/// published (at most a few milliseconds old while datagrams come; every
/// copy whole, `received + lost == expected`), with the game client's
/// event and interpolation counts; `size` bytes at most (`sizeof *out` in
/// the caller's header; `out->size` is then the bytes written).
///
/// Thread-safety: any thread, at the same time as the others; it never
/// makes the receiver thread wait, and waits at most for a game-client
/// call (`tc_receiver_world`, `_events`, `_sample`) running on another thread.
///
/// # Safety
/// `r` is a handle no other thread stops during the call (a stopped or
/// unknown one is refused); `out` points to `size` bytes of room for a
/// `tc_receive_figures`.
#[no_mangle]
pub unsafe extern "C" fn tc_receiver_figures(
    r: *const tc_receiver,
    out: *mut tc_receive_figures,
    size: usize,
) -> tc_status {
    guard(|| {
        // SAFETY: the caller's promise, passed on.
        let (r, out) = unsafe { (raw::handle(r, "r")?, raw::sized_out(out, size, "out")?) };
        out.write(r.figures());
        Ok(())
    })
}

/// Stops the receiver (after its unsubscribe, when subscribed), waits for
/// its thread and frees the handle. `out`, if not NULL, receives the
/// final figures, exact now (on `TC_OK`), `size` bytes at most as in
/// `tc_receiver_figures`. `TC_ERR_IO`: the thread had
/// failed; the handle is freed all the same. `TC_ERR_INVALID_ARGUMENT`
/// (`r` NULL, `out` misaligned or its `size` too small) did nothing;
/// after any other status the handle is freed.
///
/// Thread-safety: once per handle, when no other thread is using it or
/// will: afterwards `r` is dangling.
///
/// # Safety
/// `r` is a handle no other thread uses during or after the call (a
/// stopped or unknown one is refused); `out` points to `size` bytes of
/// room for a `tc_receive_figures`, or is NULL.
#[no_mangle]
pub unsafe extern "C" fn tc_receiver_stop(
    r: *mut tc_receiver,
    out: *mut tc_receive_figures,
    size: usize,
) -> tc_status {
    guard(|| {
        // SAFETY: the caller's promise, passed on; `out` is checked first,
        // so a bad `out` leaves the handle alive.
        let out = unsafe { raw::sized_out_opt(out, size, "out") }?;
        // SAFETY: as above.
        let r = unsafe { raw::take_handle(r, "r") }?;
        let figures = (*r).stop()?;
        if let Some(out) = out {
            out.write(figures);
        }
        Ok(())
    })
}
