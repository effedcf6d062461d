//! The caller's pointers, turned into Rust references and values: the only
//! place that dereferences a pointer from C. Each function checks what can
//! be checked (NULL, alignment, a length whose bytes would not fit in
//! memory) and fails with `TC_ERR_INVALID_ARGUMENT` naming the argument;
//! what cannot be checked (that the memory is there, is the type it should
//! be, and is not freed or written by another thread meanwhile) is the C
//! caller's promise, stated on each exported function.
//!
//! Out-parameters are handed out as `&mut MaybeUninit<T>`: the caller's
//! memory may be uninitialised, and is only ever written, never read.

use std::ffi::CStr;
use std::mem::{align_of, size_of, MaybeUninit};
use std::os::raw::c_char;
use std::slice;

use crate::wire::auth::KEY_LEN;

use crate::ffi::error::Failure;

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

/// The handle `p` points to.
///
/// # Safety
/// `p` is NULL or a live handle of type `T` from this library.
pub(super) unsafe fn handle<'a, T>(p: *const T, name: &str) -> Result<&'a T, Failure> {
    check(p, name)?;
    // SAFETY: non-null and aligned; live by the caller's promise.
    Ok(unsafe { &*p })
}

/// Takes back the handle `p` points to, to drop it.
///
/// # Safety
/// `p` is NULL or a live handle of type `T` from [`into_handle`], not used
/// again after this.
pub(super) unsafe fn take_handle<T>(p: *mut T, name: &str) -> Result<Box<T>, Failure> {
    check(p, name)?;
    // SAFETY: it came from Box::into_raw, by the caller's promise.
    Ok(unsafe { Box::from_raw(p) })
}

/// A handle for C: the value, boxed, and its address.
pub(super) fn into_handle<T>(value: T) -> *mut T {
    Box::into_raw(Box::new(value))
}

/// A copy of the `T` at `p`.
///
/// # Safety
/// `p` is NULL or points to a `T`, initialised.
pub(super) unsafe fn read<T: Copy>(p: *const T, name: &str) -> Result<T, Failure> {
    check(p, name)?;
    // SAFETY: non-null and aligned; a T by the caller's promise.
    Ok(unsafe { p.read() })
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
