//! CPU time and memory of threads and processes, read from Linux's `/proc`.
//!
//! * A thread's CPU time is the first field of `/proc/self/task/<tid>/schedstat`
//!   (nanoseconds on the CPU, exact), or where that file is missing, utime +
//!   stime of `/proc/self/task/<tid>/stat` in clock ticks of 10 ms.
//! * A process's CPU time is utime + stime of `/proc/<pid>/stat`: every
//!   thread of it, in clock ticks of 10 ms. It can be read while the process
//!   is a zombie (exited, not yet waited for), which is how a child's whole
//!   life is measured.
//! * Memory is `VmRSS` (resident now) and `VmHWM` (peak resident) of
//!   `/proc/<pid>/status`.
//!
//! Threads are found by the name they give themselves (`/proc/self/task/*/comm`).
//! Every function returns `None` (or nothing) where `/proc` does not have
//! the answer, as on other operating systems; nothing here panics.

use std::fs;
use std::time::{Duration, Instant};

/// Clock ticks per second of `/proc/*/stat` times (`USER_HZ`), 100 on every
/// Linux architecture the kernel exposes to user space.
const USER_HZ: u64 = 100;

/// How CPU time is measured, in words, for the report.
pub const CPU_METHOD: &str = "per thread in-process: /proc/self/task/<tid>/schedstat run time (ns) of the threads named tickcast-broadcast and tickcast-receive; per child process with --processes (and with --lan, the broadcaster's too): utime+stime of /proc/<pid>/stat (10 ms ticks), read when it has exited";

/// Longest thread name Linux keeps (`TASK_COMM_LEN` − 1): `comm` holds the
/// first 15 bytes of a longer name.
const COMM_LEN: usize = 15;

/// Ids of this process's threads whose name is `name` (as Linux keeps it:
/// cut to 15 bytes).
pub fn threads_named(name: &str) -> Vec<u32> {
    let Ok(dir) = fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    let name = comm(name);
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|tid| {
            fs::read_to_string(format!("/proc/self/task/{tid}/comm"))
                .is_ok_and(|c| c.trim_end_matches('\n').as_bytes() == name)
        })
        .collect()
}

/// `name` as `/proc/*/comm` shows it.
fn comm(name: &str) -> &[u8] {
    &name.as_bytes()[..name.len().min(COMM_LEN)]
}

/// The load average over 1, 5 and 15 minutes (`/proc/loadavg`): how busy
/// the machine was, for reading the figures.
pub fn load_average() -> Option<[f64; 3]> {
    let s = fs::read_to_string("/proc/loadavg").ok()?;
    let mut f = s.split_whitespace().map(|v| v.parse::<f64>().ok());
    Some([f.next()??, f.next()??, f.next()??])
}

/// Waits (at most `timeout`) for a thread named `name` that is not in
/// `before` and returns its id. A new thread names itself once it runs, so
/// it can take a moment to appear under its name.
pub fn new_thread_named(name: &str, before: &[u32], timeout: Duration) -> Option<u32> {
    let start = Instant::now();
    loop {
        if let Some(tid) = threads_named(name)
            .into_iter()
            .find(|t| !before.contains(t))
        {
            return Some(tid);
        }
        if start.elapsed() >= timeout {
            return None;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// CPU time a thread of this process has used so far.
pub fn thread_cpu(tid: u32) -> Option<Duration> {
    if let Ok(s) = fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")) {
        if let Some(ns) = s.split_whitespace().next().and_then(|f| f.parse().ok()) {
            return Some(Duration::from_nanos(ns));
        }
    }
    let stat = fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    stat_cpu(&stat)
}

/// CPU time of process `pid` (all its threads) and its state letter
/// (`'Z'` once it has exited but is not yet waited for).
pub fn process_cpu(pid: u32) -> Option<(Duration, char)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some((stat_cpu(&stat)?, stat_state(&stat)?))
}

/// The fields after the `(comm)` of a `/proc/*/stat` line; comm may hold
/// spaces and parentheses, so split after the last `)`.
fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().collect())
}

fn stat_state(stat: &str) -> Option<char> {
    stat_fields(stat)?.first()?.chars().next()
}

/// utime + stime (fields 14 and 15 of the line, 12 and 13 after comm).
fn stat_cpu(stat: &str) -> Option<Duration> {
    let f = stat_fields(stat)?;
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 1000 / USER_HZ))
}

/// Resident memory of a process, now and at its peak, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub rss: u64,
    /// `VmHWM`: the most ever resident.
    pub peak: u64,
}

/// Resident memory of process `pid`, or of this process with `None`.
pub fn memory(pid: Option<u32>) -> Option<Memory> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".to_string(),
    };
    parse_status(&fs::read_to_string(path).ok()?)
}

fn parse_status(status: &str) -> Option<Memory> {
    let kib = |key: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(key))?;
        let v: u64 = line[key.len()..].split_whitespace().next()?.parse().ok()?;
        Some(v * 1024)
    };
    Some(Memory {
        rss: kib("VmRSS:")?,
        peak: kib("VmHWM:")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_times_are_read_after_a_comm_with_spaces_and_parens() {
        let stat = "42 (a b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 5 0 0";
        assert_eq!(stat_state(stat), Some('S'));
        assert_eq!(stat_cpu(stat), Some(Duration::from_millis(3000)));
        assert_eq!(stat_cpu("garbage"), None);
    }

    #[test]
    fn status_memory_is_in_bytes() {
        let status = "Name:\ttickcast\nVmHWM:\t    2048 kB\nVmRSS:\t    1024 kB\n";
        assert_eq!(
            parse_status(status),
            Some(Memory {
                rss: 1024 * 1024,
                peak: 2048 * 1024
            })
        );
        assert_eq!(parse_status("Name:\tx\n"), None);
    }

    #[test]
    fn this_thread_can_be_found_and_measured() {
        // Longer than Linux keeps, as the broadcaster's and receiver's are.
        let name = "bench-usage-thread-name";
        let before = threads_named(name);
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || rx.recv())
            .unwrap();
        let tid = new_thread_named(name, &before, Duration::from_secs(5));
        if cfg!(target_os = "linux") {
            let tid = tid.expect("the new thread shows up under its name");
            assert!(thread_cpu(tid).is_some());
            assert!(memory(None).is_some_and(|m| m.rss > 0 && m.peak >= m.rss));
        }
        tx.send(()).unwrap();
        t.join().unwrap().unwrap();
    }
}
