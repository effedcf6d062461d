//! The exported functions: each one a thin shell that reads its
//! pointers ([`raw`]), calls the safe code of the crate, writes its
//! outputs, all inside [`guard`] so that no panic crosses
//! into C. Their doc comments are the header's (`include/tickcast.h`), so
//! they speak C: every one says what it writes on failure and from which
//! threads it may be called.
//!
//! The one part of the crate with `unsafe` code: the pointers a C caller
//! passes cannot be checked beyond NULL, alignment and length, and the
//! functions that take them are `unsafe extern "C"` for that reason.
//!
//! [`guard`]: crate::ffi::error::guard

mod broadcaster;
mod raw;
mod receiver;

pub use self::broadcaster::*;
pub use self::receiver::*;

use std::os::raw::c_char;

use crate::runtime::clock;

use crate::ffi::config;
use crate::ffi::error::{self, guard, guard_quiet, Failure};
use crate::ffi::types::{
    tc_broadcast_config, tc_receiver_config, tc_status, TC_ABI_VERSION, TC_ERR_BUFFER_TOO_SMALL,
};

/// The version of the library, as a NUL-terminated string ("0.1.0").
/// Static: never free it.
///
/// Thread-safety: any thread, any time.
#[no_mangle]
pub extern "C" fn tc_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The `TC_ABI_VERSION` of the header this library was built from: a
/// caller compares it with its own before any other call, and stops on a
/// difference (its structs would not be the library's).
///
/// Thread-safety: any thread, any time.
#[no_mangle]
pub extern "C" fn tc_abi_version() -> u32 {
    TC_ABI_VERSION
}

/// Copies the message of the latest failed call on the calling thread
/// into `buf` (UTF-8, NUL-terminated; "" if no call has failed yet). A
/// call that succeeds leaves the message as it was; a failed
/// `tc_last_error` too.
///
/// `cap` is the size of `buf` in bytes; `buf` may be NULL when `cap` is 0.
/// `len_out`, if not NULL, receives the message's full length in bytes,
/// without the NUL. Returns `TC_ERR_BUFFER_TOO_SMALL` when `cap` is less
/// than that length plus one: then as much of the message as fits is
/// copied (cut at a character boundary, NUL-terminated if `cap` > 0).
///
/// Thread-safety: any thread; each thread has its own message.
///
/// # Safety
/// `buf` points to `cap` writable bytes, `len_out` to a `size_t`, or is NULL.
#[no_mangle]
pub unsafe extern "C" fn tc_last_error(
    buf: *mut c_char,
    cap: usize,
    len_out: *mut usize,
) -> tc_status {
    guard_quiet(|| {
        // SAFETY: the caller's promise, passed on.
        let buf = unsafe { raw::out_slice(buf.cast::<u8>(), cap, "buf") }?;
        // SAFETY: as above.
        let len_out = unsafe { raw::out_opt(len_out, "len_out") }?;
        let message = error::last_error();
        if let Some(len) = len_out {
            len.write(message.len());
        }
        let Some(room) = cap.checked_sub(1) else {
            return Err(Failure::new(TC_ERR_BUFFER_TOO_SMALL, ""));
        };
        let mut end = message.len().min(room);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        for (slot, &byte) in buf.iter_mut().zip(&message.as_bytes()[..end]) {
            slot.write(byte);
        }
        buf[end].write(0);
        match end == message.len() {
            true => Ok(()),
            false => Err(Failure::new(TC_ERR_BUFFER_TOO_SMALL, "")),
        }
    })
}

/// Writes now, on the protocol's clock (the system's real-time clock, ns
/// since the Unix epoch), into `*out`: the time `tc_receiver_sample_at`
/// takes.
///
/// Thread-safety: any thread, any time.
///
/// # Safety
/// `out` points to a `uint64_t`, or is NULL (then `TC_ERR_INVALID_ARGUMENT`).
#[no_mangle]
pub unsafe extern "C" fn tc_now_ns(out: *mut u64) -> tc_status {
    guard(|| {
        // SAFETY: the caller's promise, passed on.
        unsafe { raw::out(out, "out") }?.write(clock::now_ns());
        Ok(())
    })
}

/// Fills `*out` with the defaults: no destination, group or key, 60 Hz,
/// no duration (runs until stopped), subscriptions on (64), 1200-byte
/// datagrams, roster every 60 ticks, multicast TTL 1 with loopback.
/// Start from this and set what differs: later versions may add fields.
/// `size` is `sizeof *out` in the caller's header: the library writes
/// that many bytes at most, and sets `out->size` to those it wrote (a
/// `size` below ABI 3's layout is `TC_ERR_INVALID_ARGUMENT`).
///
/// Thread-safety: any thread, any time.
///
/// # Safety
/// `out` points to `size` bytes of room for a `tc_broadcast_config`, or
/// is NULL (then `TC_ERR_INVALID_ARGUMENT`).
#[no_mangle]
pub unsafe extern "C" fn tc_broadcast_config_default(
    out: *mut tc_broadcast_config,
    size: usize,
) -> tc_status {
    guard(|| {
        // SAFETY: the caller's promise, passed on.
        unsafe { raw::sized_out(out, size, "out") }?.write(config::broadcast_default());
        Ok(())
    })
}

/// Fills `*out` with the defaults: nothing to listen to yet (set `bind`,
/// `group` or `subscribe`), ids below 1048576, 65536 events queued, an
/// automatic render delay, extrapolation up to 250 ms, teleports beyond
/// 10 units, a 4 MiB socket buffer, `TC_RECEIVE_WAIT`. `size` as in
/// `tc_broadcast_config_default`.
///
/// Thread-safety: any thread, any time.
///
/// # Safety
/// `out` points to `size` bytes of room for a `tc_receiver_config`, or is
/// NULL (then `TC_ERR_INVALID_ARGUMENT`).
#[no_mangle]
pub unsafe extern "C" fn tc_receiver_config_default(
    out: *mut tc_receiver_config,
    size: usize,
) -> tc_status {
    guard(|| {
        // SAFETY: the caller's promise, passed on.
        unsafe { raw::sized_out(out, size, "out") }?.write(config::receiver_default());
        Ok(())
    })
}
