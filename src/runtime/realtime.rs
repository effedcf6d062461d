//! The real-time option of the broadcast and receive threads: SCHED_FIFO at
//! a priority, the process's memory locked (`mlockall`), and the thread
//! pinned to one CPU.
//!
//! # Guarantees
//!
//! * **Applied by the thread itself, reported by `start`.** A thread
//!   applies its settings (the config's `realtime` and `cpu`) as the first
//!   thing it does and hands the outcome back before `start` returns. A
//!   setting the OS refuses is an error of `start` ([`RealtimeError`],
//!   with what to do about it), never a panic, never a silent fallback,
//!   and the thread then ends without having sent or received anything.
//! * **In this order:** the CPU first (so the thread never runs at
//!   real-time priority where it was not meant to), then SCHED_FIFO, then
//!   `mlockall`, the only process-wide step, last: a refusal of either
//!   earlier step leaves nothing behind, as the thread's own scheduling
//!   and affinity end with it.
//! * **No unsafe code.** The syscalls are nix's (`sched_setaffinity`,
//!   `mlockall`, `getrlimit`) and thread-priority's
//!   (`pthread_setschedparam`) safe wrappers. Linux only: elsewhere any
//!   setting is [`RealtimeError::Unsupported`].
//!
//! `mlockall(MCL_CURRENT | MCL_FUTURE)` locks every page the process has
//! and every page it maps from then on (thread stacks included), for the
//! rest of its life: no page fault on the data path, at the price of
//! resident memory. SCHED_FIFO makes the thread preempt every ordinary
//! (`SCHED_OTHER`) thread of the machine whenever it is runnable: fine for
//! a thread that sleeps between ticks, but a busy-polling one holds its
//! CPU against all of them, and only the kernel's real-time throttling
//! (`/proc/sys/kernel/sched_rt_runtime_us`, 95 % by default) leaves them a
//! little.

use std::fmt;
use std::sync::mpsc;

use nix::errno::Errno;

/// Priority `--realtime` uses when none is given.
pub const DEFAULT_PRIORITY: u8 = 10;
/// Lowest SCHED_FIFO priority.
pub const MIN_PRIORITY: u8 = 1;
/// Highest SCHED_FIFO priority (Linux's).
pub const MAX_PRIORITY: u8 = 99;

/// Run a thread under SCHED_FIFO at `priority` and, with `lock_memory`,
/// lock the process's memory. Build it with [`RealtimeConfig::fifo`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RealtimeConfig {
    /// SCHED_FIFO priority, [`MIN_PRIORITY`]`..=`[`MAX_PRIORITY`]; a
    /// higher one preempts a lower one.
    pub priority: u8,
    /// Also `mlockall(MCL_CURRENT | MCL_FUTURE)`: process-wide, and for the
    /// rest of the process's life.
    pub lock_memory: bool,
}

impl RealtimeConfig {
    /// SCHED_FIFO at `priority`, with the memory locked.
    pub fn fifo(priority: u8) -> RealtimeConfig {
        RealtimeConfig {
            priority,
            lock_memory: true,
        }
    }

    /// Checks the priority, before anything starts.
    pub fn validate(&self) -> Result<(), RealtimeError> {
        if (MIN_PRIORITY..=MAX_PRIORITY).contains(&self.priority) {
            Ok(())
        } else {
            Err(RealtimeError::BadPriority(self.priority))
        }
    }
}

impl Default for RealtimeConfig {
    /// [`RealtimeConfig::fifo`] at [`DEFAULT_PRIORITY`].
    fn default() -> Self {
        RealtimeConfig::fifo(DEFAULT_PRIORITY)
    }
}

/// A resource limit as `getrlimit` gives it: a number, or unlimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit(pub Option<u64>);

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(n) => write!(f, "{n}"),
            None => f.write_str("unlimited"),
        }
    }
}

/// A set of CPU numbers, shown as Linux's CPU lists are (`Cpus_allowed_list`): `0-3,6`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CpuList(pub Vec<usize>);

impl fmt::Display for CpuList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        let mut first = true;
        let mut i = 0;
        while i < self.0.len() {
            let start = self.0[i];
            let mut end = start;
            while i + 1 < self.0.len() && self.0[i + 1] == end + 1 {
                i += 1;
                end = self.0[i];
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if end == start {
                write!(f, "{start}")?;
            } else {
                write!(f, "{start}-{end}")?;
            }
            i += 1;
        }
        Ok(())
    }
}

/// Why a thread could not take its real-time settings.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RealtimeError {
    /// The priority is outside SCHED_FIFO's range.
    #[error(
        "real-time priority {0} is not in {MIN_PRIORITY}..={MAX_PRIORITY} (SCHED_FIFO's range)"
    )]
    BadPriority(u8),
    /// SCHED_FIFO was refused for want of privilege (EPERM).
    #[error(
        "SCHED_FIFO at priority {priority} is not permitted: it needs root or CAP_SYS_NICE, \
         or an RLIMIT_RTPRIO ≥ {priority} (`ulimit -r`; this process has {rtprio})"
    )]
    FifoNotPermitted {
        /// The priority asked for.
        priority: u8,
        /// This process's soft RLIMIT_RTPRIO.
        rtprio: Limit,
    },
    /// SCHED_FIFO was refused for another reason.
    #[error("cannot set SCHED_FIFO at priority {priority}: {errno}")]
    Fifo {
        /// The priority asked for.
        priority: u8,
        /// What the OS said.
        errno: Errno,
    },
    /// `mlockall` was refused for want of privilege or of locked-memory
    /// allowance (EPERM, ENOMEM, EAGAIN).
    #[error(
        "cannot lock the process's memory (mlockall): it needs root or CAP_IPC_LOCK, \
         or an RLIMIT_MEMLOCK above what the process maps (`ulimit -l`, in KiB; \
         this process has {memlock} bytes): {errno}"
    )]
    LockNotPermitted {
        /// This process's soft RLIMIT_MEMLOCK, bytes.
        memlock: Limit,
        /// What the OS said.
        errno: Errno,
    },
    /// `mlockall` failed for another reason.
    #[error("cannot lock the process's memory (mlockall): {0}")]
    Lock(Errno),
    /// The CPU is not one this process may run on (or does not exist).
    #[error(
        "CPU {cpu} does not exist or is not one this process may run on (it may run on {allowed})"
    )]
    NoSuchCpu {
        /// The CPU asked for.
        cpu: usize,
        /// The CPUs the calling thread may run on.
        allowed: CpuList,
    },
    /// Pinning to the CPU failed for another reason.
    #[error("cannot pin the thread to CPU {cpu}: {errno}")]
    Affinity {
        /// The CPU asked for.
        cpu: usize,
        /// What the OS said.
        errno: Errno,
    },
    /// Real-time scheduling and pinning are implemented for Linux only.
    #[error("real-time scheduling and CPU pinning are supported on Linux only")]
    Unsupported,
}

impl RealtimeError {
    /// The error of a refused SCHED_FIFO at `priority`: EPERM says what
    /// privilege is missing, with the process's RLIMIT_RTPRIO.
    pub fn of_fifo(priority: u8, errno: Errno, rtprio: Limit) -> RealtimeError {
        match errno {
            Errno::EPERM => RealtimeError::FifoNotPermitted { priority, rtprio },
            errno => RealtimeError::Fifo { priority, errno },
        }
    }

    /// The error of a refused `mlockall`: EPERM, ENOMEM (the limit is
    /// too low) and EAGAIN say what allowance is missing.
    pub fn of_lock(errno: Errno, memlock: Limit) -> RealtimeError {
        match errno {
            Errno::EPERM | Errno::ENOMEM | Errno::EAGAIN => {
                RealtimeError::LockNotPermitted { memlock, errno }
            }
            errno => RealtimeError::Lock(errno),
        }
    }

    /// The error of a refused pinning to `cpu`: EINVAL (no such CPU in
    /// the set this process may use) names the CPUs it may use.
    pub fn of_affinity(cpu: usize, errno: Errno, allowed: CpuList) -> RealtimeError {
        match errno {
            Errno::EINVAL => RealtimeError::NoSuchCpu { cpu, allowed },
            errno => RealtimeError::Affinity { cpu, errno },
        }
    }
}

/// What a runtime thread applies to itself as it starts: the
/// `realtime` and `cpu` of its config.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ThreadSetup {
    pub(crate) realtime: Option<RealtimeConfig>,
    pub(crate) cpu: Option<usize>,
}

impl ThreadSetup {
    /// Applies the setup to the calling thread, in the order of the module
    /// docs; nothing asked, nothing done.
    pub(crate) fn apply(&self) -> Result<(), RealtimeError> {
        if let Some(cpu) = self.cpu {
            pin_current_thread(cpu)?;
        }
        if let Some(rt) = self.realtime {
            rt.validate()?;
            set_fifo(rt.priority)?;
            if rt.lock_memory {
                lock_memory()?;
            }
        }
        Ok(())
    }
}

/// The thread's end of [`handshake`]: it applies its setup and says how
/// that went.
pub(crate) struct Ready(mpsc::SyncSender<Result<(), RealtimeError>>);

/// The starter's end of [`handshake`]: waits for the thread's word.
pub(crate) struct Started(mpsc::Receiver<Result<(), RealtimeError>>);

/// A thread's start-up report: give [`Ready`] to the thread, keep
/// [`Started`] and wait on it before `start` returns.
pub(crate) fn handshake() -> (Ready, Started) {
    let (tx, rx) = mpsc::sync_channel(1);
    (Ready(tx), Started(rx))
}

impl Ready {
    /// Applies `setup` to the calling thread and reports the outcome;
    /// true when the thread may go on.
    pub(crate) fn apply(self, setup: &ThreadSetup) -> bool {
        let outcome = setup.apply();
        let ok = outcome.is_ok();
        // The starter waits for this; if it is gone, so is the point.
        let _ = self.0.send(outcome);
        ok
    }
}

impl Started {
    /// The thread's outcome. A thread that ended without a word (it
    /// cannot, short of a panic, which its join reports) counts as started.
    pub(crate) fn wait(self) -> Result<(), RealtimeError> {
        self.0.recv().unwrap_or(Ok(()))
    }
}

/// How many CPUs this process may use, as
/// [`std::thread::available_parallelism`] counts them (its affinity mask
/// and CPU quota); 0 if unknown.
pub fn cores_available() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}

/// The CPUs the calling thread may run on (its affinity mask), ascending.
pub fn allowed_cpus() -> Result<CpuList, RealtimeError> {
    imp::allowed_cpus()
}

/// Checks that `cpu` is one the calling thread may run on, as a config
/// builder can before anything starts.
pub fn check_cpu(cpu: usize) -> Result<(), RealtimeError> {
    let allowed = allowed_cpus()?;
    if allowed.0.contains(&cpu) {
        Ok(())
    } else {
        Err(RealtimeError::NoSuchCpu { cpu, allowed })
    }
}

fn pin_current_thread(cpu: usize) -> Result<(), RealtimeError> {
    check_cpu(cpu)?;
    imp::pin(cpu)
}

fn set_fifo(priority: u8) -> Result<(), RealtimeError> {
    imp::set_fifo(priority)
}

fn lock_memory() -> Result<(), RealtimeError> {
    imp::lock_memory()
}

#[cfg(target_os = "linux")]
mod imp {
    use nix::errno::Errno;
    use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
    use nix::sys::mman::{mlockall, MlockAllFlags};
    use nix::sys::resource::{getrlimit, Resource, RLIM_INFINITY};
    use nix::unistd::Pid;
    use thread_priority::{
        set_thread_priority_and_policy, thread_native_id, RealtimeThreadSchedulePolicy,
        ThreadPriority, ThreadPriorityValue, ThreadSchedulePolicy,
    };

    use super::{CpuList, Limit, RealtimeError};

    /// The calling thread (pid 0 in the affinity calls).
    fn this_thread() -> Pid {
        Pid::from_raw(0)
    }

    pub(super) fn allowed_cpus() -> Result<CpuList, RealtimeError> {
        let set = sched_getaffinity(this_thread())
            .map_err(|errno| RealtimeError::Affinity { cpu: 0, errno })?;
        Ok(CpuList(
            (0..CpuSet::count())
                .filter(|&c| set.is_set(c).unwrap_or(false))
                .collect(),
        ))
    }

    pub(super) fn pin(cpu: usize) -> Result<(), RealtimeError> {
        let mut set = CpuSet::new();
        let refused =
            |errno| RealtimeError::of_affinity(cpu, errno, allowed_cpus().unwrap_or_default());
        set.set(cpu).map_err(refused)?;
        sched_setaffinity(this_thread(), &set).map_err(refused)
    }

    /// The soft limit of `resource` (getrlimit cannot fail for the two
    /// asked for here; were it to, 0 is said).
    fn soft_limit(resource: Resource) -> Limit {
        match getrlimit(resource) {
            Ok((soft, _)) if soft == RLIM_INFINITY => Limit(None),
            Ok((soft, _)) => Limit(Some(soft)),
            Err(_) => Limit(Some(0)),
        }
    }

    pub(super) fn set_fifo(priority: u8) -> Result<(), RealtimeError> {
        let value = ThreadPriorityValue::try_from(priority)
            .map_err(|_| RealtimeError::BadPriority(priority))?;
        let policy = ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::Fifo);
        set_thread_priority_and_policy(
            thread_native_id(),
            ThreadPriority::Crossplatform(value),
            policy,
        )
        .map_err(|e| match e {
            thread_priority::Error::OS(code) => RealtimeError::of_fifo(
                priority,
                Errno::from_raw(code),
                soft_limit(Resource::RLIMIT_RTPRIO),
            ),
            thread_priority::Error::PriorityNotInRange(_) => RealtimeError::BadPriority(priority),
            _ => RealtimeError::Fifo {
                priority,
                errno: Errno::EINVAL,
            },
        })
    }

    pub(super) fn lock_memory() -> Result<(), RealtimeError> {
        mlockall(MlockAllFlags::MCL_CURRENT | MlockAllFlags::MCL_FUTURE)
            .map_err(|errno| RealtimeError::of_lock(errno, soft_limit(Resource::RLIMIT_MEMLOCK)))
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::{CpuList, RealtimeError};

    pub(super) fn allowed_cpus() -> Result<CpuList, RealtimeError> {
        Err(RealtimeError::Unsupported)
    }

    pub(super) fn pin(_: usize) -> Result<(), RealtimeError> {
        Err(RealtimeError::Unsupported)
    }

    pub(super) fn set_fifo(_: u8) -> Result<(), RealtimeError> {
        Err(RealtimeError::Unsupported)
    }

    pub(super) fn lock_memory() -> Result<(), RealtimeError> {
        Err(RealtimeError::Unsupported)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eperm_on_sched_fifo_says_what_privilege_is_missing() {
        let e = RealtimeError::of_fifo(10, Errno::EPERM, Limit(Some(0)));
        assert_eq!(
            e.to_string(),
            "SCHED_FIFO at priority 10 is not permitted: it needs root or CAP_SYS_NICE, \
             or an RLIMIT_RTPRIO ≥ 10 (`ulimit -r`; this process has 0)"
        );
        assert_eq!(
            RealtimeError::of_fifo(20, Errno::EINVAL, Limit(None)),
            RealtimeError::Fifo {
                priority: 20,
                errno: Errno::EINVAL
            }
        );
    }

    #[test]
    fn a_refused_mlockall_says_what_allowance_is_missing() {
        for errno in [Errno::EPERM, Errno::ENOMEM, Errno::EAGAIN] {
            let e = RealtimeError::of_lock(errno, Limit(Some(8 << 20)));
            assert!(
                matches!(e, RealtimeError::LockNotPermitted { .. }),
                "{errno}"
            );
            let text = e.to_string();
            assert!(
                text.contains("CAP_IPC_LOCK") && text.contains("8388608 bytes"),
                "{text}"
            );
        }
        assert_eq!(
            RealtimeError::of_lock(Errno::EINVAL, Limit(None)),
            RealtimeError::Lock(Errno::EINVAL)
        );
    }

    #[test]
    fn a_cpu_outside_the_mask_names_the_cpus_allowed() {
        let e = RealtimeError::of_affinity(9999, Errno::EINVAL, CpuList(vec![0, 1]));
        assert_eq!(
            e.to_string(),
            "CPU 9999 does not exist or is not one this process may run on (it may run on 0-1)"
        );
        assert_eq!(CpuList(vec![0, 1, 2, 5, 7, 8]).to_string(), "0-2,5,7-8");
        assert_eq!(CpuList(vec![3]).to_string(), "3");
        assert_eq!(CpuList(vec![]).to_string(), "none");
    }

    #[test]
    fn priorities_outside_sched_fifo_are_refused_before_anything_starts() {
        for p in [0, 100, 255] {
            assert_eq!(
                RealtimeConfig::fifo(p).validate(),
                Err(RealtimeError::BadPriority(p))
            );
        }
        assert_eq!(RealtimeConfig::fifo(MIN_PRIORITY).validate(), Ok(()));
        assert_eq!(RealtimeConfig::fifo(MAX_PRIORITY).validate(), Ok(()));
        assert_eq!(RealtimeConfig::default().priority, DEFAULT_PRIORITY);
        assert_eq!(
            RealtimeError::BadPriority(0).to_string(),
            "real-time priority 0 is not in 1..=99 (SCHED_FIFO's range)"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn an_impossible_cpu_is_refused_and_the_thread_keeps_its_mask() {
        let before = allowed_cpus().unwrap();
        assert!(!before.0.is_empty());
        let got = std::thread::spawn(|| {
            let r = ThreadSetup {
                realtime: None,
                cpu: Some(9999),
            }
            .apply();
            (r, allowed_cpus().unwrap())
        })
        .join()
        .unwrap();
        assert_eq!(
            got.0,
            Err(RealtimeError::NoSuchCpu {
                cpu: 9999,
                allowed: before.clone()
            })
        );
        assert_eq!(got.1, before);
        assert!(check_cpu(9999).is_err());
        assert_eq!(check_cpu(before.0[0]), Ok(()));
    }

    /// As root (or with CAP_SYS_NICE) the thread's policy reads back as
    /// SCHED_FIFO at the priority asked for, on the CPU asked for; without
    /// the privilege the error is the one of the EPERM test above.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_thread_takes_sched_fifo_and_its_cpu() {
        use thread_priority::{
            thread_native_id, thread_schedule_policy_param, RealtimeThreadSchedulePolicy,
            ThreadSchedulePolicy,
        };
        let cpu = *allowed_cpus().unwrap().0.last().unwrap();
        let got = std::thread::spawn(move || {
            // lock_memory would lock the whole test process: the CLI test
            // of `--realtime` checks mlockall in a process of its own.
            let setup = ThreadSetup {
                realtime: Some(RealtimeConfig {
                    priority: 7,
                    lock_memory: false,
                }),
                cpu: Some(cpu),
            };
            let applied = setup.apply();
            let policy = thread_schedule_policy_param(thread_native_id()).unwrap();
            (applied, policy, allowed_cpus().unwrap())
        })
        .join()
        .unwrap();
        match got.0 {
            Ok(()) => {
                let (policy, params) = got.1;
                assert_eq!(
                    policy,
                    ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::Fifo)
                );
                assert_eq!(params.sched_priority, 7);
                assert_eq!(got.2, CpuList(vec![cpu]));
            }
            Err(e @ RealtimeError::FifoNotPermitted { .. }) => {
                eprintln!("not privileged here, so only the error is checked: {e}");
            }
            Err(e) => panic!("{e}"),
        }
    }
}
