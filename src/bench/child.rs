//! Receivers as child processes: `tickcast receive --bind 127.0.0.1:0
//! --json` each, so the benchmark covers separate processes (separate
//! address spaces, schedulers' choices, the cost of a process per receiver).
//! With `--lan` each runs inside its own network namespace instead: a
//! [`Launch`] names the command put before the program (`ip netns exec NS`)
//! and where the receiver listens.
//!
//! Every step is bounded: a child must name its address within
//! [`START_TIMEOUT`], has its own `--duration` as a backstop, is asked to
//! end with SIGINT once the broadcast is over (it then prints its JSON), and
//! is killed if it has not ended [`END_TIMEOUT`] later. Only the children
//! started here are ever signalled, by their own process ids.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::usage::{self, Memory};
use super::{progress, BenchConfig};
use crate::core::figures::{Figures, Summary};
use crate::core::schema::Versioned;

/// Longest a child may take to say where it listens.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a child may take to print its figures and exit once asked.
pub const END_TIMEOUT: Duration = Duration::from_secs(10);
/// How much longer than the broadcast a child's own `--duration` is.
const BACKSTOP: Duration = Duration::from_secs(30);
/// Largest JSON output read from a child.
const MAX_OUTPUT: u64 = 1 << 20;

/// Why a receiver process failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChildError {
    /// The executable to run could not be found.
    #[error("cannot find the tickcast executable to run receivers: {0}")]
    NoProgram(#[source] std::io::Error),
    /// A child could not be spawned.
    #[error("cannot start receiver process {program:?}: {source}")]
    Spawn {
        /// What was run.
        program: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A child did not say where it listens in time.
    #[error("receiver process {index} did not start listening within {}s (it said: {said})", START_TIMEOUT.as_secs())]
    NoAddress {
        /// Which receiver.
        index: usize,
        /// Its last lines on stderr.
        said: String,
    },
    /// A child's figures could not be read.
    #[error("receiver process {index} printed no figures (it said: {said})")]
    NoFigures {
        /// Which receiver.
        index: usize,
        /// Its last lines on stderr.
        said: String,
    },
    /// The broadcaster process's figures could not be read (`--lan`).
    #[error("broadcaster process printed no figures (it said: {said})")]
    SenderNoFigures {
        /// Its last lines on stderr.
        said: String,
    },
}

/// The receiver processes of one run.
pub(super) struct Children {
    children: Vec<Running>,
}

struct Running {
    child: Child,
    pid: u32,
    addr: SocketAddr,
    stdout: mpsc::Receiver<String>,
    stderr: JoinHandle<Vec<String>>,
    latest: Latest,
    memory: Option<Memory>,
}

/// The latest per-second line a child printed on stderr, if any yet, and
/// how many it has printed.
#[derive(Clone, Debug, Default)]
pub(super) struct Latest(Arc<Mutex<(u64, Option<String>)>>);

impl Latest {
    fn set(&self, line: String) {
        let mut l = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *l = (l.0 + 1, Some(line));
    }

    /// The line, if the child has printed one.
    pub(super) fn get(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).1.clone()
    }

    /// How many per-second lines the child has printed.
    pub(super) fn count(&self) -> u64 {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).0
    }
}

/// What a finished child left.
pub(super) struct Finished {
    pub addr: SocketAddr,
    pub pid: u32,
    pub summary: Summary,
    pub cpu: Option<Duration>,
    pub memory: Option<Memory>,
}

impl From<Finished> for super::results::ReceiverEnd {
    /// A child process reports its figures as JSON only: no histograms and
    /// no world size, which stay in the child.
    fn from(c: Finished) -> Self {
        super::results::ReceiverEnd {
            addr: c.addr,
            pid: Some(c.pid),
            figures: None,
            summary: c.summary,
            cpu: c.cpu,
            activity: None,
            world_bytes: None,
            memory: c.memory,
        }
    }
}

/// How to start one receiver process.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Launch {
    /// What runs the program, such as `ip netns exec NS` (empty: the
    /// program itself).
    pub prefix: Vec<String>,
    /// The `receive` flags saying where it listens.
    pub listen: Vec<String>,
}

impl Launch {
    /// A receiver on an ephemeral port of 127.0.0.1 in this namespace.
    pub fn loopback() -> Launch {
        Launch {
            prefix: Vec::new(),
            listen: vec!["--bind".into(), "127.0.0.1:0".into()],
        }
    }
}

/// The `--realtime` and `--cpu` flags that give a child `realtime` and `cpu`.
pub(super) fn realtime_args(
    realtime: Option<crate::runtime::realtime::RealtimeConfig>,
    cpu: Option<usize>,
) -> Vec<String> {
    let mut a = Vec::new();
    if let Some(r) = realtime {
        a.push(format!("--realtime={}", r.priority));
    }
    if let Some(cpu) = cpu {
        a.extend(["--cpu".into(), cpu.to_string()]);
    }
    a
}

/// The `tickcast` executable children run.
pub(super) fn program(config: &BenchConfig) -> Result<PathBuf, ChildError> {
    match &config.program {
        Some(p) => Ok(p.clone()),
        None => std::env::current_exe().map_err(ChildError::NoProgram),
    }
}

/// `program` run through `prefix` (or directly when it is empty).
pub(super) fn command(prefix: &[String], program: &Path) -> Command {
    match prefix.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(program);
            c
        }
        None => Command::new(program),
    }
}

/// A spawned child with its stdout collected and its stderr watched.
pub(super) struct Piped {
    pub child: Child,
    pub pid: u32,
    /// All of stdout (up to [`MAX_OUTPUT`]), once it closes.
    pub stdout: mpsc::Receiver<String>,
    /// The last lines of stderr, once it closes.
    pub stderr: JoinHandle<Vec<String>>,
    /// The address of its first "receiving on" line.
    pub listening: mpsc::Receiver<SocketAddr>,
    /// Its latest per-second line on stderr.
    pub latest: Latest,
}

/// Spawns `cmd` with piped output; `program` names it in errors.
pub(super) fn spawn_piped(mut cmd: Command, program: &Path) -> Result<Piped, ChildError> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| ChildError::Spawn {
            program: program.to_path_buf(),
            source,
        })?;
    let (addr_tx, listening) = mpsc::channel();
    let stderr = child.stderr.take().map(BufReader::new);
    let latest = Latest::default();
    let stderr = {
        let latest = latest.clone();
        std::thread::spawn(move || read_stderr(stderr, addr_tx, &latest))
    };
    let (out_tx, stdout) = mpsc::channel();
    let out = child.stdout.take();
    std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(out) = out {
            let _ = out.take(MAX_OUTPUT).read_to_string(&mut s);
        }
        let _ = out_tx.send(s);
    });
    Ok(Piped {
        pid: child.id(),
        child,
        stdout,
        stderr,
        listening,
        latest,
    })
}

impl Children {
    /// Starts `config.receivers` children on loopback and waits until each listens.
    pub fn spawn(config: &BenchConfig) -> Result<Children, ChildError> {
        let launches = vec![Launch::loopback(); config.receivers];
        Children::spawn_each(config, &launches)
    }

    /// Starts one child per launch and waits until each listens.
    pub fn spawn_each(config: &BenchConfig, launches: &[Launch]) -> Result<Children, ChildError> {
        let program = program(config)?;
        let backstop = config.warmup + config.duration + BACKSTOP;
        let mut pending = Vec::with_capacity(launches.len());
        let mut started = Children {
            children: Vec::new(),
        };
        for (i, launch) in launches.iter().enumerate() {
            let mut cmd = command(&launch.prefix, &program);
            cmd.arg("receive")
                .args(&launch.listen)
                .arg("--json")
                .arg("--duration")
                .arg(format!("{}ms", backstop.as_millis()))
                .arg("--capacity")
                .arg(config.capacity().to_string())
                .arg("--mode")
                .arg(config.receive_mode.name())
                .args(realtime_args(config.realtime, config.receiver_cpu(i)));
            pending.push(spawn_piped(cmd, &program)?);
        }
        let deadline = Instant::now() + START_TIMEOUT;
        for (index, p) in pending.into_iter().enumerate() {
            let wait = deadline.saturating_duration_since(Instant::now());
            match p.listening.recv_timeout(wait) {
                Ok(addr) => started.children.push(Running {
                    child: p.child,
                    pid: p.pid,
                    addr,
                    stdout: p.stdout,
                    stderr: p.stderr,
                    latest: p.latest,
                    memory: None,
                }),
                Err(_) => {
                    let mut child = p.child;
                    let _ = child.kill();
                    let _ = child.wait();
                    let said = p.stderr.join().unwrap_or_default().join(" / ");
                    // `started` is dropped here, ending the others.
                    return Err(ChildError::NoAddress { index, said });
                }
            }
        }
        Ok(started)
    }

    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.children.iter().map(|c| c.addr).collect()
    }

    /// Each receiver's counters as of its latest per-second line (all zero
    /// before its first): see [`progress`].
    pub fn live(&self) -> Vec<Figures> {
        self.children
            .iter()
            .map(|c| {
                c.latest
                    .get()
                    .and_then(|l| progress::receiver_figures(&l))
                    .unwrap_or_default()
            })
            .collect()
    }

    /// Reads each child's memory while it runs (it is gone at the end).
    pub fn sample(&mut self) {
        for c in &mut self.children {
            if let Some(m) = usage::memory(Some(c.pid)) {
                c.memory = Some(m);
            }
        }
    }

    /// Asks every child to end, and collects its figures, CPU and memory.
    pub fn finish(mut self) -> Result<Vec<Finished>, ChildError> {
        self.sample();
        for c in &self.children {
            interrupt(c.pid);
        }
        let mut out = Vec::with_capacity(self.children.len());
        let children = std::mem::take(&mut self.children);
        let deadline = Instant::now() + END_TIMEOUT;
        let mut failure = None;
        for (index, mut c) in children.into_iter().enumerate() {
            let wait = deadline.saturating_duration_since(Instant::now());
            let json = c.stdout.recv_timeout(wait).unwrap_or_default();
            let cpu = exited_cpu(c.pid, deadline);
            let _ = c.child.kill();
            let _ = c.child.wait();
            let said = c.stderr.join().unwrap_or_default();
            match parse_summary(&json) {
                Some(summary) => out.push(Finished {
                    addr: c.addr,
                    pid: c.pid,
                    summary,
                    cpu,
                    memory: c.memory,
                }),
                None => {
                    failure.get_or_insert(ChildError::NoFigures {
                        index,
                        said: said.join(" / "),
                    });
                }
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.child.kill();
            let _ = c.child.wait();
        }
    }
}

/// SIGINT to our own child: it prints its figures and exits.
pub(super) fn interrupt(pid: u32) {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    if let Ok(raw) = i32::try_from(pid) {
        if raw > 0 {
            let _ = kill(Pid::from_raw(raw), Signal::SIGINT);
        }
    }
}

/// The CPU time of a child that has exited (a zombie until waited for),
/// polled until `deadline`; `None` if it never got there.
pub(super) fn exited_cpu(pid: u32, deadline: Instant) -> Option<Duration> {
    loop {
        match usage::process_cpu(pid) {
            Some((cpu, 'Z')) => return Some(cpu),
            Some(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
            _ => return None,
        }
    }
}

/// Reads the child's stderr: sends the address of its first "receiving on
/// ADDR" line, keeps its latest per-second line in `latest` and the last
/// few lines for error messages.
fn read_stderr(
    stderr: Option<BufReader<std::process::ChildStderr>>,
    addr: mpsc::Sender<SocketAddr>,
    latest: &Latest,
) -> Vec<String> {
    let mut tail: Vec<String> = Vec::new();
    let Some(stderr) = stderr else {
        return tail;
    };
    let mut sent = false;
    for line in stderr.lines().map_while(Result::ok) {
        if !sent {
            if let Some(a) = listening_addr(&line) {
                let _ = addr.send(a);
                sent = true;
            }
        }
        if progress::is_live_line(&line) {
            latest.set(line.clone());
        }
        if tail.len() == 4 {
            tail.remove(0);
        }
        tail.push(line);
    }
    tail
}

/// The first address of a `receiving on ADDR[, ADDR]` line.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    let rest = line.strip_prefix("receiving on ")?;
    rest.split(',').next()?.trim().parse().ok()
}

/// The figures `tickcast receive --json` prints, read back into a
/// [`Summary`]. The schema must be this build's and every figure must be
/// there (the child is this same program); keys this build does not know
/// are ignored, so a newer receiver's extra figures do no harm.
fn parse_summary(json: &str) -> Option<Summary> {
    serde_json::from_str::<Versioned<Summary>>(json.trim())
        .ok()?
        .current()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::figures::{Counters, Figures};

    #[test]
    fn a_receivers_json_reads_back_as_the_same_summary() {
        let mut f = Figures {
            counters: Counters {
                expected: 10,
                received: 9,
                lost: 1,
                ..Counters::default()
            },
            count: Some(7),
            sender_packets_sent: Some(10),
            ..Figures::default()
        };
        f.latency.record(42_000).unwrap();
        let s = f.summary();
        let json = serde_json::to_string(&Versioned::new(&s)).unwrap();
        assert_eq!(parse_summary(&format!("{json}\n")), Some(s.clone()));
        // Without its schema, or of another, it is not read.
        let bare = serde_json::to_string(&s).unwrap();
        assert_eq!(parse_summary(&bare), None);
        assert_eq!(
            parse_summary(&json.replacen(r#""schema":1"#, r#""schema":99"#, 1)),
            None
        );
        let newer = json.replacen('{', r#"{"a_later_figure":[1,2],"#, 1);
        assert_eq!(parse_summary(&newer), Some(s));
        // A receiver that got nothing has no latency: null, read back as none.
        let empty = Figures::default().summary();
        let json = serde_json::to_string(&Versioned::new(&empty)).unwrap();
        assert!(json.contains(r#""latency_us":null"#), "{json}");
        assert_eq!(parse_summary(&json), Some(empty));
        assert!(parse_summary("{}").is_none());
        assert!(parse_summary("not json").is_none());
    }

    #[test]
    fn the_listening_line_gives_the_address() {
        assert_eq!(
            listening_addr("receiving on 127.0.0.1:4000, 239.1.1.1:5"),
            Some("127.0.0.1:4000".parse().unwrap())
        );
        assert_eq!(listening_addr("  1.0s count 5"), None);
    }
}
