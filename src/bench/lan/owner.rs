//! Who made a network namespace, written down where a later run can read
//! it, so that cleaning up after a run that was killed outright removes what
//! that run made and nothing else.
//!
//! Before a [`Lan`](super::Lan) creates namespace `NAME`, it creates the
//! marker `/run/tickcast/netns/NAME` ([`MARKER_DIR`]) exclusively (so two
//! runs can never claim one name) holding its [`Owner`]: its pid, the
//! pid's start time (field 22 of `/proc/<pid>/stat`, in clock ticks since
//! boot, which tells a reused pid apart) and the inode of its pid namespace
//! (`/proc/self/ns/pid`: a pid means something only inside one). When
//! dropped, it deletes the namespace and then the marker.
//!
//! # Which leftovers are removed
//!
//! [`judge`] decides, and nothing else does: a namespace is removed only
//! when it has a marker of ours, the marker's pid namespace is this
//! process's, and no process with the marker's (pid, start time) exists.
//! Everything else is kept: a namespace with no marker (somebody else's, or
//! one an older tickcast made without markers), a marker that does not
//! parse, a marker from another pid namespace (its pid cannot be checked
//! from here), and a live owner (another run, or this one).

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Where the ownership markers live, one file per namespace, named as it.
pub const MARKER_DIR: &str = "/run/tickcast/netns";

/// The first line of every marker: says what the file is to whoever finds it.
const HEADER: &str = "# tickcast network namespace owner";

/// The process that created a namespace, as its marker records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    /// Its process id, in its pid namespace.
    pub pid: u32,
    /// When it started: field 22 of `/proc/<pid>/stat` (clock ticks since
    /// boot), so a later process that reuses the pid is not mistaken for it.
    pub start_time: u64,
    /// The inode of its pid namespace (`/proc/self/ns/pid`).
    pub pid_ns: u64,
}

impl Owner {
    /// This process.
    pub fn current() -> io::Result<Owner> {
        let stat = fs::read_to_string("/proc/self/stat")?;
        let start_time = start_time(&stat).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "no start time in /proc/self/stat",
            )
        })?;
        Ok(Owner {
            pid: std::process::id(),
            start_time,
            pid_ns: pid_namespace()?,
        })
    }

    /// The marker file's text for this owner.
    pub fn to_marker(&self) -> String {
        format!(
            "{HEADER}\npid {}\nstart_time {}\npid_ns {}\n",
            self.pid, self.start_time, self.pid_ns
        )
    }

    /// The owner a marker's text records; `None` unless it has every key
    /// once, each a number (lines starting with `#` are comments).
    pub fn parse(marker: &str) -> Option<Owner> {
        let (mut pid, mut start, mut ns) = (None, None, None);
        for line in marker.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = line.split_once(' ')?;
            let slot = match key {
                "pid" => &mut pid,
                "start_time" => &mut start,
                "pid_ns" => &mut ns,
                _ => return None,
            };
            if slot.replace(value.trim().parse::<u64>().ok()?).is_some() {
                return None;
            }
        }
        Some(Owner {
            pid: u32::try_from(pid?).ok()?,
            start_time: start?,
            pid_ns: ns?,
        })
    }
}

/// The start time (field 22) in the text of a `/proc/<pid>/stat`. The
/// command name (field 2) is in parentheses and may hold spaces and
/// parentheses itself, so fields are counted after the last `)`.
pub fn start_time(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    // `rest` starts at field 3 (the state), so field 22 is its 20th word.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The inode of this process's pid namespace.
pub fn pid_namespace() -> io::Result<u64> {
    Ok(fs::metadata("/proc/self/ns/pid")?.ino())
}

/// Whether a process with this pid and start time exists (in this pid
/// namespace). Only "no such process" counts as gone: if `/proc` cannot be
/// read for another reason, the owner may be alive, and is taken to be.
pub fn alive(pid: u32, start_time_ticks: u64) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => start_time(&stat) == Some(start_time_ticks),
        Err(e) => e.kind() != io::ErrorKind::NotFound,
    }
}

/// Why a namespace found by the stale cleanup stays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// It has no marker: it is not ours.
    NoMarker,
    /// Its marker does not parse: whose it is cannot be told.
    BadMarker,
    /// Its owner was in another pid namespace, where its pid cannot be checked.
    OtherPidNamespace,
    /// Its owner (pid and start time) still runs.
    OwnerAlive,
}

/// What the stale cleanup does with a namespace it found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leftover {
    /// Ours, and its owner is gone: delete it (and then its marker).
    Remove,
    /// Leave it alone.
    Keep(Keep),
}

/// The ownership decision (see the module docs), over a namespace's marker
/// text (`None`: it has none), this process's pid namespace, and whether a
/// process with a given (pid, start time) exists. `alive` is asked only
/// about an owner in our pid namespace.
pub fn judge(
    marker: Option<&str>,
    our_pid_ns: u64,
    alive: impl FnOnce(u32, u64) -> bool,
) -> Leftover {
    let Some(text) = marker else {
        return Leftover::Keep(Keep::NoMarker);
    };
    let Some(owner) = Owner::parse(text) else {
        return Leftover::Keep(Keep::BadMarker);
    };
    if owner.pid_ns != our_pid_ns {
        return Leftover::Keep(Keep::OtherPidNamespace);
    }
    if alive(owner.pid, owner.start_time) {
        return Leftover::Keep(Keep::OwnerAlive);
    }
    Leftover::Remove
}

/// The marker file of namespace `ns`.
pub fn marker_path(ns: &str) -> PathBuf {
    Path::new(MARKER_DIR).join(ns)
}

/// Claims the name `ns` for `owner`: creates its marker, failing with
/// [`io::ErrorKind::AlreadyExists`] if there is one already.
pub(super) fn claim(ns: &str, owner: &Owner) -> io::Result<()> {
    fs::create_dir_all(MARKER_DIR)?;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(marker_path(ns))?;
    let written = f.write_all(owner.to_marker().as_bytes());
    if written.is_err() {
        let _ = fs::remove_file(marker_path(ns));
    }
    written
}

/// Removes the marker of `ns` (once the namespace is gone, or was never made).
pub(super) fn release(ns: &str) {
    let _ = fs::remove_file(marker_path(ns));
}

/// The marker text of `ns`, if it has a readable one.
pub(super) fn read_marker(ns: &str) -> Option<String> {
    fs::read_to_string(marker_path(ns)).ok()
}

/// The names of every marker present.
pub(super) fn marked() -> Vec<String> {
    fs::read_dir(MARKER_DIR)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: u64 = 4_026_531_836;

    fn marker(pid: u32, start_time: u64, pid_ns: u64) -> String {
        Owner {
            pid,
            start_time,
            pid_ns,
        }
        .to_marker()
    }

    #[test]
    fn a_namespace_without_our_marker_is_never_removed() {
        let asked = std::cell::Cell::new(false);
        let alive = |_, _| {
            asked.set(true);
            false
        };
        assert_eq!(judge(None, OURS, alive), Leftover::Keep(Keep::NoMarker));
        for garbage in ["", "pid 12\n", "hello\n", "pid x\nstart_time 1\npid_ns 1\n"] {
            let alive = |_, _| {
                asked.set(true);
                false
            };
            assert_eq!(
                judge(Some(garbage), OURS, alive),
                Leftover::Keep(Keep::BadMarker),
                "{garbage:?}"
            );
        }
        assert!(
            !asked.get(),
            "liveness is not asked without a marker of ours"
        );
    }

    #[test]
    fn an_owner_in_another_pid_namespace_is_never_judged_dead() {
        let m = marker(1234, 99, OURS + 1);
        let verdict = judge(Some(&m), OURS, |_, _| panic!("its pid means nothing here"));
        assert_eq!(verdict, Leftover::Keep(Keep::OtherPidNamespace));
    }

    #[test]
    fn a_live_owner_keeps_its_namespace_and_a_gone_one_loses_it() {
        let m = marker(1234, 99, OURS);
        let mut seen = None;
        let verdict = judge(Some(&m), OURS, |pid, start| {
            seen = Some((pid, start));
            true
        });
        assert_eq!(verdict, Leftover::Keep(Keep::OwnerAlive));
        assert_eq!(
            seen,
            Some((1234, 99)),
            "asked about the recorded pid and start"
        );
        assert_eq!(judge(Some(&m), OURS, |_, _| false), Leftover::Remove);
    }

    #[test]
    fn a_reused_pid_is_not_the_owner() {
        // The pid runs again, but started at another time: the owner is gone.
        let m = marker(1234, 99, OURS);
        let running = |pid: u32, start: u64| pid == 1234 && start == 100;
        assert_eq!(judge(Some(&m), OURS, running), Leftover::Remove);
    }

    #[test]
    fn markers_round_trip_and_reject_repeats_and_strangers() {
        let o = Owner {
            pid: 7,
            start_time: 123_456,
            pid_ns: OURS,
        };
        assert_eq!(Owner::parse(&o.to_marker()), Some(o));
        assert!(o.to_marker().starts_with("# tickcast"));
        let twice = format!("{}pid 8\n", o.to_marker());
        assert_eq!(Owner::parse(&twice), None);
        let stranger = format!("{}colour blue\n", o.to_marker());
        assert_eq!(Owner::parse(&stranger), None);
        assert_eq!(
            Owner::parse("pid 4294967296\nstart_time 1\npid_ns 1\n"),
            None
        );
    }

    #[test]
    fn start_time_is_field_22_whatever_the_command_name() {
        let tail = "R 1 1 1 0 -1 4194304 97 0 0 0 0 0 0 0 20 0 1 0 143179 3133440 350";
        assert_eq!(start_time(&format!("28631 (cat) {tail}")), Some(143_179));
        assert_eq!(
            start_time(&format!("28631 (a) (b c) {tail}")),
            Some(143_179),
            "a name with spaces and parentheses"
        );
        assert_eq!(start_time("28631 (cat) R 1 2"), None);
        assert_eq!(start_time("no parenthesis"), None);
    }

    #[test]
    fn this_process_is_alive_and_a_changed_start_time_is_not() {
        let me = Owner::current().unwrap();
        assert_eq!(me.pid, std::process::id());
        assert_eq!(me.pid_ns, pid_namespace().unwrap());
        assert!(alive(me.pid, me.start_time));
        assert!(!alive(me.pid, me.start_time + 1));
        assert_eq!(
            judge(Some(&me.to_marker()), me.pid_ns, alive),
            Leftover::Keep(Keep::OwnerAlive)
        );
    }
}
