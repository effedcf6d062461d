//! The lifecycle of a runtime thread that sleeps in mio's `poll` and is
//! stopped through a `Waker`, shared by the receiver and the impair relay:
//! spawn it named, ask whether it still runs, and stop it (raise the owner's
//! stop flag, wake the poll, join, and hand back the error that ended the
//! thread, if one did).

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use mio::Waker;

/// A named thread blocked in `poll`, woken to stop.
pub(crate) struct PollThread {
    waker: Arc<Waker>,
    handle: Option<JoinHandle<io::Result<()>>>,
}

impl PollThread {
    /// Spawns `body` on a thread called `name`; `waker` must be registered
    /// with the poll that `body` sleeps in.
    pub(crate) fn spawn(
        name: &str,
        waker: Arc<Waker>,
        body: impl FnOnce() -> io::Result<()> + Send + 'static,
    ) -> io::Result<PollThread> {
        let handle = std::thread::Builder::new().name(name.into()).spawn(body)?;
        Ok(PollThread {
            waker,
            handle: Some(handle),
        })
    }

    /// False once the thread has ended (stopped, or failed).
    pub(crate) fn is_running(&self) -> bool {
        self.handle.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Raises `stop` (the flag the thread checks after each wake-up), wakes
    /// the thread and waits for it. Stopping twice is harmless.
    pub(crate) fn stop(&mut self, stop: &AtomicBool) -> io::Result<()> {
        stop.store(true, Ordering::Release);
        let woken = self.waker.wake();
        match self.handle.take() {
            Some(t) => {
                woken?;
                let name = t.thread().name().unwrap_or("runtime").to_string();
                t.join()
                    .map_err(|_| io::Error::other(format!("{name} thread panicked")))?
            }
            None => Ok(()),
        }
    }
}
