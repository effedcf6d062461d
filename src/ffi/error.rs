//! How a call fails without unwinding: every exported function runs its
//! body in [`guard`], which turns an `Err(Failure)` into its status and a
//! panic into `TC_ERR_PANIC`, and keeps the message for `tc_last_error`
//! in a thread-local string (the latest failure on the calling thread; a
//! success leaves it as it was).
//!
//! A message per thread, not per handle: a start that fails has no handle
//! to hang it on, and two threads using one handle (figures from a UI
//! thread while the game publishes) would overwrite each other's.

use std::any::Any;
use std::cell::RefCell;
use std::fmt::Display;
use std::panic::{self, AssertUnwindSafe};

use crate::ffi::types::{tc_status, TC_ERR_INVALID_ARGUMENT, TC_ERR_PANIC, TC_OK};

/// Why a call did nothing: the status it returns and the message it leaves.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) status: tc_status,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(status: tc_status, message: impl Display) -> Failure {
        Failure {
            status,
            message: message.to_string(),
        }
    }

    /// `TC_ERR_INVALID_ARGUMENT`, with the message.
    pub(crate) fn invalid(message: impl Display) -> Failure {
        Failure::new(TC_ERR_INVALID_ARGUMENT, message)
    }
}

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Runs `body`, recording a failure's or a panic's message; never unwinds.
pub(crate) fn guard(body: impl FnOnce() -> Result<(), Failure>) -> tc_status {
    match catch(body) {
        Ok(()) => TC_OK,
        Err(failure) => {
            // At thread exit the slot may be gone already: then the
            // message has no reader anyway.
            let _ = LAST_ERROR.try_with(|last| {
                if let Ok(mut last) = last.try_borrow_mut() {
                    *last = failure.message;
                }
            });
            failure.status
        }
    }
}

/// Runs `body` and catches a panic, as [`guard`] does, but records
/// nothing: for `tc_last_error`, which must not replace the message it
/// is asked for with its own failure.
pub(crate) fn guard_quiet(body: impl FnOnce() -> Result<(), Failure>) -> tc_status {
    match catch(body) {
        Ok(()) => TC_OK,
        Err(failure) => failure.status,
    }
}

fn catch(body: impl FnOnce() -> Result<(), Failure>) -> Result<(), Failure> {
    // The handles' state is behind mutexes whose poisoning is ignored: a
    // panic leaves at worst a frame half written, never published.
    match panic::catch_unwind(AssertUnwindSafe(body)) {
        Ok(result) => result,
        Err(payload) => {
            let message = format!("tickcast panicked (a bug): {}", panic_message(&*payload));
            // A payload whose drop panics again must not unwind out either.
            let _ = panic::catch_unwind(AssertUnwindSafe(move || drop(payload)));
            Err(Failure::new(TC_ERR_PANIC, message))
        }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "a panic without a message"
    }
}

/// The latest failure's message on this thread ("" if none).
pub(crate) fn last_error() -> String {
    LAST_ERROR
        .try_with(|last| last.try_borrow().map(|s| s.clone()).unwrap_or_default())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::types::TC_ERR_CONFIG;

    #[test]
    fn a_panic_is_a_status_and_a_message_never_an_unwind() {
        let status = guard(|| panic!("boom {}", 42));
        assert_eq!(status, TC_ERR_PANIC);
        assert_eq!(last_error(), "tickcast panicked (a bug): boom 42");
        let status = guard(|| std::panic::panic_any(7u8));
        assert_eq!(status, TC_ERR_PANIC);
        assert!(last_error().ends_with("a panic without a message"));
    }

    // Tests own their threads; the layer wall (clippy.toml) is for the library.
    #[allow(clippy::disallowed_methods)]
    #[test]
    fn a_failure_keeps_its_message_until_the_next_failure_on_its_thread() {
        assert_eq!(
            guard(|| Err(Failure::new(TC_ERR_CONFIG, "bad rate"))),
            TC_ERR_CONFIG
        );
        assert_eq!(guard(|| Ok(())), TC_OK);
        assert_eq!(last_error(), "bad rate");
        // Another thread has its own.
        std::thread::spawn(|| assert_eq!(last_error(), ""))
            .join()
            .unwrap();
        // A quiet failure leaves the message as it was.
        assert_eq!(
            guard_quiet(|| Err(Failure::invalid("x"))),
            TC_ERR_INVALID_ARGUMENT
        );
        assert_eq!(last_error(), "bad rate");
    }
}
