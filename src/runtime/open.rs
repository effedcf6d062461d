//! Opening a path without waiting on it: a FIFO's plain `open` blocks
//! until a process opens its other end, and a blocked open is deaf to
//! Ctrl-C and SIGTERM (the handler only sets a flag). Key files and the
//! command line's output files go through [`open_now`].

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// `path` opened with `options`, and `O_NONBLOCK` for the open only: it
/// returns at once whatever is at the other end of a FIFO (for reading, a
/// FIFO with no writer reads as empty; for writing, one with no reader is
/// `ENXIO`, see [`no_reader`]), and the handle then blocks on reads and
/// writes as any file's does. A regular file's open is unchanged.
pub fn open_now(options: &OpenOptions, path: &Path) -> io::Result<File> {
    #[cfg(unix)]
    {
        use nix::fcntl::{fcntl, FcntlArg, OFlag};
        use std::os::unix::fs::OpenOptionsExt;
        let file = options
            .clone()
            .custom_flags(OFlag::O_NONBLOCK.bits())
            .open(path)?;
        let flags = OFlag::from_bits_retain(fcntl(&file, FcntlArg::F_GETFL)?);
        fcntl(&file, FcntlArg::F_SETFL(flags - OFlag::O_NONBLOCK))?;
        Ok(file)
    }
    #[cfg(not(unix))]
    options.open(path)
}

/// Whether `e`, from [`open_now`] for writing `path`, says that `path` is
/// a FIFO no process reads yet.
pub fn no_reader(e: &io::Error, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        e.raw_os_error() == Some(nix::errno::Errno::ENXIO as i32)
            && std::fs::metadata(path).is_ok_and(|m| m.file_type().is_fifo())
    }
    #[cfg(not(unix))]
    {
        let _ = (e, path);
        false
    }
}
