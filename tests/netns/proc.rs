//! A child process for tests that need real processes (the `tickcast`
//! binary, `dumpcap`): stderr is collected line by line so a test can wait
//! for a readiness line ("receiving on", "broadcasting", "File:"), stdout is
//! kept whole (the `--json` figures), and the child is killed (by its own
//! pid) when the guard drops, so a failing test leaves nothing running.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// A running child and what it has printed so far.
pub struct Proc {
    name: String,
    child: Child,
    /// Every stderr line so far.
    log: Arc<Mutex<Vec<String>>>,
    /// Stderr lines not yet looked at by [`Proc::wait_for`].
    lines: mpsc::Receiver<String>,
    stdout: Option<JoinHandle<String>>,
}

impl Proc {
    /// Starts `cmd` with piped stdout and stderr; `name` labels messages.
    pub fn spawn(name: &str, cmd: &mut Command) -> Proc {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: cannot start {cmd:?}: {e}"));
        let mut out = child.stdout.take().expect("piped stdout");
        let stdout = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        let err = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, lines) = mpsc::channel();
        let log2 = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                log2.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        Proc {
            name: name.to_string(),
            child,
            log,
            lines,
            stdout: Some(stdout),
        }
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything printed on stderr so far.
    pub fn stderr(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Waits for a stderr line containing `needle` and returns it. Panics
    /// with the log if the child exits or `timeout` passes first.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> String {
        let end = Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self
                .lines
                .recv_timeout(left.min(Duration::from_millis(100)))
            {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Ok(Some(status)) = self.child.try_wait() {
                        // Let the reader thread drain what is left first.
                        std::thread::sleep(Duration::from_millis(50));
                        if let Some(line) = self.lines.try_iter().find(|l| l.contains(needle)) {
                            return line;
                        }
                        panic!(
                            "{}: exited ({status}) before printing {needle:?}; stderr:\n{}",
                            self.name,
                            self.stderr()
                        );
                    }
                    if left.is_zero() {
                        panic!(
                            "{}: no {needle:?} within {timeout:?}; stderr:\n{}",
                            self.name,
                            self.stderr()
                        );
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait();
                    panic!(
                        "{}: stderr closed ({status:?}) before {needle:?}; stderr:\n{}",
                        self.name,
                        self.stderr()
                    );
                }
            }
        }
    }

    /// Sends `sig` to the child (by its pid), if it is still running.
    pub fn signal(&mut self, sig: Signal) {
        if let Ok(None) = self.child.try_wait() {
            let _ = kill(Pid::from_raw(self.child.id() as i32), sig);
        }
    }

    /// Whether the child is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits up to `timeout` for the child to exit (killing it after that,
    /// and panicking) and returns its status and whole stdout.
    pub fn finish(mut self, timeout: Duration) -> (ExitStatus, String) {
        let end = Instant::now() + timeout;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < end => std::thread::sleep(Duration::from_millis(20)),
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!(
                        "{}: still running after {timeout:?}; stderr:\n{}",
                        self.name,
                        self.stderr()
                    );
                }
            }
        };
        let out = self.stdout.take().unwrap().join().unwrap_or_default();
        (status, out)
    }

    /// Like [`Proc::finish`], and parses the last stdout line as the
    /// `--json` figures; panics with stderr if the exit or the JSON is bad.
    pub fn json(self, timeout: Duration) -> serde_json::Value {
        let name = self.name.clone();
        let log = Arc::clone(&self.log);
        let (status, v) = self.json_and_status(timeout);
        let stderr = log.lock().unwrap().join("\n");
        assert!(status.success(), "{name}: {status}; stderr:\n{stderr}");
        v
    }

    /// Like [`Proc::json`], for a run whose exit may be a failure (a
    /// receiver that took nothing exits 1, and still prints its figures).
    pub fn json_and_status(self, timeout: Duration) -> (ExitStatus, serde_json::Value) {
        let name = self.name.clone();
        let log = Arc::clone(&self.log);
        let (status, out) = self.finish(timeout);
        let stderr = log.lock().unwrap().join("\n");
        let line = out.lines().rev().find(|l| !l.trim().is_empty());
        let line = line.unwrap_or_else(|| panic!("{name}: no JSON on stdout; stderr:\n{stderr}"));
        let v = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{name}: bad JSON ({e}): {line}; stderr:\n{stderr}"));
        (status, v)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Reads a `u64` figure from JSON figures, panicking with the whole object
/// if it is missing.
pub fn figure(v: &serde_json::Value, key: &str) -> u64 {
    v.get(key)
        .and_then(serde_json::Value::as_u64)
        .unwrap_or_else(|| panic!("no integer {key:?} in {v}"))
}

/// Whether `program` is on the PATH (or is a path that exists).
pub fn have(program: &str) -> bool {
    if program.contains('/') {
        return std::path::Path::new(program).exists();
    }
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// Whether these tests run in CI, where a skip is a failure.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Prints the one skip line, or panics with it in CI (`CI=true`), where a
/// test that needs root and tools must not pass by doing nothing.
pub fn skip(line: &str) {
    if in_ci() {
        panic!("{line} (CI=true: root and tool tests must run in CI)");
    }
    println!("{line}");
}
