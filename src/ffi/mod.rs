//! tickcast's C ABI: a broadcaster of a game's world and a receiver with
//! its game client, behind opaque handles, for C, C++ and C# (Unity)
//! callers. The crate builds as `libtickcast.so` and `libtickcast.a` too
//! (its `cdylib` and `staticlib`), which export these functions. The
//! header is `include/tickcast.h`, generated from this module by cbindgen
//! and committed (`tests/ffi_header.rs` keeps it current); the C# binding
//! is `bindings/Tickcast.cs`, and `bindings/README.md` says how to build
//! and use them.
//!
//! # The rules every function keeps
//!
//! * It returns a `tc_status` (`TC_OK` or why not), except `tc_version`.
//!   The message of the latest failure on the calling thread is
//!   `tc_last_error`'s.
//! * It never unwinds into C: its body runs under `catch_unwind`, and a
//!   panic is `TC_ERR_PANIC` with the panic's message.
//! * A NULL or misaligned pointer, or a length whose bytes could not fit
//!   in memory, is `TC_ERR_INVALID_ARGUMENT`, not undefined behaviour. What
//!   no function can check (that a pointer points where it says, that a
//!   handle is live) is the caller's promise, stated on each function.
//! * Bulk reads go into the caller's buffer, with the count needed when it
//!   is too small; the library keeps no pointer into the caller's memory
//!   after a call returns.
//! * Each function's doc comment says from which threads it may be called.
//!   Misuse (two threads publishing on one broadcaster) is serialized by a
//!   mutex inside the handle, never a data race.
//! * Nothing calls back into the caller: a game polls (which IL2CPP needs).
//!
//! # Layout
//!
//! `types.rs` is every type the header shows; `config.rs` the configs'
//! defaults and their translation into the library's; `broadcaster.rs` and
//! `receiver.rs` the handles, in safe Rust; `error.rs` the status, the
//! message and the panic guard; `abi/` the exported functions, the only
//! module with `unsafe` code (`abi/raw.rs` reads the caller's pointers).
// The crate denies unsafe code; `abi` alone is allowed it, below.
#![deny(unsafe_op_in_unsafe_fn)]
// The names are the C names: `tc_broadcaster`, `tc_status`.
#![allow(non_camel_case_types)]

#[allow(unsafe_code)]
mod abi;
mod broadcaster;
mod config;
mod error;
mod receiver;
mod types;

pub use crate::ffi::abi::*;
pub use crate::ffi::broadcaster::tc_broadcaster;
pub use crate::ffi::receiver::tc_receiver;
pub use crate::ffi::types::*;
