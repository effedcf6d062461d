//! The caller's pointers, turned into Rust references and values: the only
//! place that dereferences a pointer from C. Each function checks what can
//! be checked (NULL, alignment, a length whose bytes would not fit in
//! memory) and fails with `TC_ERR_INVALID_ARGUMENT` naming the argument;
//! what cannot be checked (that the memory is there, is the type it should
//! be, and is not freed or written by another thread meanwhile) is the C
//! caller's promise, stated on each exported function. Handles are
//! checked against the table of those alive ([`handle`]): one stopped
//! already, stopped twice, or of the other type is refused, not
//! dereferenced.
//!
//! Out-parameters are handed out as `&mut MaybeUninit<T>`, or for a sized
//! struct (one that begins with its `size`) as a [`SizedOut`] of the size
//! the caller passed: the caller's memory may be uninitialised, and is
//! only ever written, never read. A sized config going in is read within
//! the `size` it declares ([`read_sized`]).

use std::any::TypeId;
use std::collections::BTreeMap;
use std::ffi::CStr;
use std::fmt;
use std::mem::{align_of, size_of, MaybeUninit};
use std::os::raw::c_char;
use std::slice;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::wire::auth::KEY_LEN;

use crate::ffi::error::Failure;
use crate::ffi::types::SizedStruct;

fn check<T>(p: *const T, name: &str) -> Result<(), Failure> {
    if p.is_null() {
        return Err(Failure::invalid(format_args!("{name} is NULL")));
    }
    if !p.is_aligned() {
        return Err(Failure::invalid(format_args!(
            "{name} is not aligned to {} bytes",
            align_of::<T>()
        )));
    }
    Ok(())
}

fn check_len<T>(n: usize, name: &str) -> Result<(), Failure> {
    if n > isize::MAX as usize / size_of::<T>().max(1) {
        return Err(Failure::invalid(format_args!(
            "{name}: a length of {n} elements is larger than memory"
        )));
    }
    Ok(())
}

/// The handles alive: each one [`into_handle`] made and [`take_handle`]
/// did not take back, by address, with its type. A game that calls with a
/// handle it stopped already (or stops one twice, or passes a broadcaster
/// for a receiver) gets `TC_ERR_INVALID_ARGUMENT` instead of freed
/// memory. (A stale handle whose address a later start reused is that
/// later handle: the table cannot tell them apart, but no memory is freed
/// under it.)
static LIVE: Mutex<BTreeMap<usize, TypeId>> = Mutex::new(BTreeMap::new());

fn live() -> MutexGuard<'static, BTreeMap<usize, TypeId>> {
    // The table is whole at every unlock: a panic elsewhere leaves it so.
    LIVE.lock().unwrap_or_else(PoisonError::into_inner)
}

fn not_live(name: &str) -> Failure {
    Failure::invalid(format_args!(
        "{name} is not a live handle: it was stopped already, or did not come from its *_start"
    ))
}

/// The handle `p` points to, if it is one alive of type `T`.
///
/// # Safety
/// `p` is not stopped by another thread during the call (a handle stopped
/// before it is refused).
pub(super) unsafe fn handle<'a, T: 'static>(p: *const T, name: &str) -> Result<&'a T, Failure> {
    check(p, name)?;
    if live().get(&(p as usize)) != Some(&TypeId::of::<T>()) {
        return Err(not_live(name));
    }
    // SAFETY: non-null, aligned, and a live handle of this type: made by
    // into_handle and not taken back, so the Box it came from is alive.
    Ok(unsafe { &*p })
}

/// Takes back the handle `p` points to, to drop it, if it is one alive of
/// type `T`; from then on it is not.
///
/// # Safety
/// `p` is not used by another thread during or after the call.
pub(super) unsafe fn take_handle<T: 'static>(p: *mut T, name: &str) -> Result<Box<T>, Failure> {
    check(p, name)?;
    {
        let mut live = live();
        if live.get(&(p as usize)) != Some(&TypeId::of::<T>()) {
            return Err(not_live(name));
        }
        live.remove(&(p as usize));
    }
    // SAFETY: it came from Box::into_raw in into_handle (the table says
    // so), and no one takes it back again (it left the table).
    Ok(unsafe { Box::from_raw(p) })
}

/// A handle for C: the value, boxed, and its address, entered in the
/// table of the handles alive.
pub(super) fn into_handle<T: 'static>(value: T) -> *mut T {
    let p = Box::into_raw(Box::new(value));
    live().insert(p as usize, TypeId::of::<T>());
    p
}

/// The place `p` points to, to write a `T` into.
///
/// # Safety
/// `p` is NULL or points to room for a `T`, which nothing else uses
/// during the call.
pub(super) unsafe fn out<'a, T>(p: *mut T, name: &str) -> Result<&'a mut MaybeUninit<T>, Failure> {
    check(p, name)?;
    // SAFETY: MaybeUninit<T> has T's layout, and is never read here.
    Ok(unsafe { &mut *p.cast::<MaybeUninit<T>>() })
}

/// As [`out`], where NULL means "not wanted".
///
/// # Safety
/// As [`out`].
pub(super) unsafe fn out_opt<'a, T>(
    p: *mut T,
    name: &str,
) -> Result<Option<&'a mut MaybeUninit<T>>, Failure> {
    match p.is_null() {
        true => Ok(None),
        // SAFETY: the caller's promise, passed on.
        false => unsafe { out(p, name) }.map(Some),
    }
}

/// The bytes of a sized struct of `size` bytes (`size` a field or a
/// parameter), at least its ABI 3 layout's: `what` names that size in the
/// message, only formatted when there is one.
fn sized_len<T: SizedStruct>(size: u64, what: fmt::Arguments<'_>) -> Result<usize, Failure> {
    // Beyond the address space is as large as can be: only the least size
    // bounds it. Every layout is whole 8-byte words, so a size between two
    // is taken down to the one below: no field is ever half the caller's.
    let n = usize::try_from(size).unwrap_or(usize::MAX) & !7;
    if n < T::LEAST {
        return Err(Failure::invalid(format_args!(
            "{what} is {size} bytes, below the {} of the oldest layout this library takes: \
             pass sizeof the struct (a config's `size` is set by its _default function)",
            T::LEAST
        )));
    }
    Ok(n.min(size_of::<T>()))
}

/// A copy of the sized struct at `p` (see `size` in the header): the
/// first `size` bytes of it over `default`, so that what an older,
/// smaller layout lacks takes the default, and what a newer one has
/// beyond this library's is not read.
///
/// # Safety
/// `p` is NULL or points to a struct of this kind of at least its `size`
/// bytes, initialised.
pub(super) unsafe fn read_sized<T: SizedStruct>(
    p: *const T,
    default: T,
    name: &str,
) -> Result<T, Failure> {
    check(p, name)?;
    // SAFETY: non-null and aligned; a struct of this kind, whose first
    // field (every sized struct begins with its `u64` size) is
    // initialised, by the caller's promise.
    let size = unsafe { p.cast::<u64>().read() };
    let n = sized_len::<T>(size, format_args!("{name}->size"))?;
    let mut value = default;
    // SAFETY: the caller's struct has at least `n` bytes, `value` has
    // `size_of::<T>() >= n`, and they do not overlap. Every field of a
    // sized struct is an integer, a float or a raw pointer, so any bytes
    // make a valid one.
    unsafe {
        std::ptr::copy_nonoverlapping(p.cast::<u8>(), (&raw mut value).cast::<u8>(), n);
    }
    Ok(value)
}

/// Where to write a sized struct, checked before anything is done (see
/// [`sized_out`]).
pub(super) struct SizedOut<T> {
    p: *mut T,
    /// The bytes to write: the caller's size, or this library's layout
    /// where that is smaller.
    n: usize,
}

impl<T: Copy> SizedOut<T> {
    /// Writes the first `n` bytes of `value`, then its `size` field: the
    /// bytes written.
    pub(super) fn write(self, value: T) {
        // SAFETY: `sized_out` checked the pointer; the caller's room has
        // at least `n` bytes (its size, by its promise), `value` has
        // `size_of::<T>() >= n`, and `n >= 8` holds the size field.
        unsafe {
            std::ptr::copy_nonoverlapping(
                (&raw const value).cast::<u8>(),
                self.p.cast::<u8>(),
                self.n,
            );
            self.p.cast::<u64>().write(self.n as u64);
        }
    }
}

/// The room `p` points to, `size` bytes, to write a sized struct into:
/// that many bytes at most (see `size` in the header), so that a caller
/// whose header is older than this library is never written past, and
/// one whose header is newer keeps what this library does not know as it
/// was. Nothing is read from it.
///
/// # Safety
/// `p` is NULL or points to `size` bytes of room, which nothing else uses
/// until the write.
pub(super) unsafe fn sized_out<T: SizedStruct>(
    p: *mut T,
    size: usize,
    name: &str,
) -> Result<SizedOut<T>, Failure> {
    check(p, name)?;
    let n = sized_len::<T>(size as u64, format_args!("{name}'s size"))?;
    Ok(SizedOut { p, n })
}

/// As [`sized_out`], where NULL means "not wanted" (and `size` is not
/// looked at).
///
/// # Safety
/// As [`sized_out`].
pub(super) unsafe fn sized_out_opt<T: SizedStruct>(
    p: *mut T,
    size: usize,
    name: &str,
) -> Result<Option<SizedOut<T>>, Failure> {
    match p.is_null() {
        true => Ok(None),
        // SAFETY: the caller's promise, passed on.
        false => unsafe { sized_out(p, size, name) }.map(Some),
    }
}

/// The `n` elements at `p`; NULL is allowed when `n` is 0.
///
/// # Safety
/// `p` is NULL or points to `n` initialised `T`s that nothing writes
/// during the call.
pub(super) unsafe fn slice<'a, T>(p: *const T, n: usize, name: &str) -> Result<&'a [T], Failure> {
    if n == 0 {
        return Ok(&[]);
    }
    check(p, name)?;
    check_len::<T>(n, name)?;
    // SAFETY: non-null, aligned, a size that fits; the elements are there
    // by the caller's promise.
    Ok(unsafe { slice::from_raw_parts(p, n) })
}

/// Room for `cap` elements at `p`, to write; NULL is allowed when `cap` is 0.
///
/// # Safety
/// `p` is NULL or points to room for `cap` `T`s, which nothing else uses
/// during the call.
pub(super) unsafe fn out_slice<'a, T>(
    p: *mut T,
    cap: usize,
    name: &str,
) -> Result<&'a mut [MaybeUninit<T>], Failure> {
    if cap == 0 {
        return Ok(&mut []);
    }
    check(p, name)?;
    check_len::<T>(cap, name)?;
    // SAFETY: as in `slice`; MaybeUninit<T> has T's layout.
    Ok(unsafe { slice::from_raw_parts_mut(p.cast::<MaybeUninit<T>>(), cap) })
}

/// The NUL-terminated UTF-8 string at `p`; `None` for NULL.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that nothing writes
/// during the call.
pub(super) unsafe fn text<'a>(p: *const c_char, name: &str) -> Result<Option<&'a str>, Failure> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: non-null and NUL-terminated by the caller's promise.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str()
        .map(Some)
        .map_err(|e| Failure::invalid(format_args!("{name} is not UTF-8: {e}")))
}

/// The `KEY_LEN` key bytes at `p`; `None` for NULL.
///
/// # Safety
/// `p` is NULL or points to `KEY_LEN` bytes.
pub(super) unsafe fn key(p: *const u8, name: &str) -> Result<Option<[u8; KEY_LEN]>, Failure> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: the caller's promise, passed on.
    let bytes = unsafe { slice(p, KEY_LEN, name) }?;
    Ok(Some(bytes.try_into().expect("KEY_LEN bytes")))
}
