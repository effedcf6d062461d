//! The `tickcast` binary, run as a user runs it: exact JSON for a crafted
//! stream, Ctrl-C and duration ends, the demo's table, and one clear line
//! (never a panic) for bad input. Every child is killed if a test fails.
// Tests, benches, examples and the binary own their clocks, sockets and files;
// the layer wall in clippy.toml is for the library core.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

use common::{collect_until_goodbye, scripted_stream, send_all, tap};
use tickcast::wire::Body;

/// Longest wait for a child to print a line or to exit.
const PATIENCE: Duration = Duration::from_secs(10);

/// A running `tickcast`, killed and reaped on drop if it is still running
/// (so a failing test leaves no process behind).
struct Tickcast {
    child: Child,
    /// stderr, a line at a time, from a reader thread.
    stderr: mpsc::Receiver<String>,
    /// stderr lines taken so far.
    seen: Vec<String>,
    stdout: Option<JoinHandle<String>>,
}

/// What a finished `tickcast` left.
struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Tickcast {
    fn spawn(args: &[&str]) -> Tickcast {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tickcast"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LIB_BACKTRACE")
            .spawn()
            .unwrap();
        let err = child.stderr.take().unwrap();
        let mut out = child.stdout.take().unwrap();
        let (tx, stderr) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdout = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        Tickcast {
            child,
            stderr,
            seen: Vec::new(),
            stdout: Some(stdout),
        }
    }

    /// Waits for the first stderr line that starts with `prefix` and returns
    /// the rest of it.
    fn wait_for_line(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if let Some(rest) = line.strip_prefix(prefix) {
                        return rest.to_string();
                    }
                }
                Err(e) => panic!("no line {prefix:?} on stderr ({e}); got {:?}", self.seen),
            }
        }
    }

    /// The address a `receive` listens on, from its `receiving on` line.
    fn receiving_on(&mut self) -> SocketAddr {
        let rest = self.wait_for_line("receiving on ");
        rest.split(", ").next().unwrap().parse().unwrap()
    }

    fn interrupt(&self) {
        let pid = Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        kill(pid, Signal::SIGINT).unwrap();
    }

    /// Waits (at most `limit`) for the child to exit and collects its output.
    fn finish(&mut self, limit: Duration) -> Finished {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "tickcast still running after {limit:?}; stderr so far {:?}",
                self.seen
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        // The pipes close with the process: the readers finish.
        while let Ok(line) = self.stderr.recv_timeout(PATIENCE) {
            self.seen.push(line);
        }
        let stdout = self.stdout.take().unwrap().join().unwrap();
        Finished {
            status,
            stdout,
            stderr: self.seen.join("\n"),
        }
    }
}

impl Drop for Tickcast {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `tickcast args` to its end.
fn run(args: &[&str]) -> Finished {
    Tickcast::spawn(args).finish(PATIENCE)
}

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout:?}"))
}

fn u64_at(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is not a u64 in {v}"))
}

/// The keys every receive JSON must have, with latency percentiles, or
/// `null` for latency when nothing was received.
fn assert_receive_keys(v: &Value) {
    for key in [
        "expected",
        "received",
        "lost",
        "loss_ratio",
        "duplicates",
        "reordered",
        "stale",
        "malformed",
        "restarts",
        "socket_drops",
        "ticks_applied",
        "jitter_us",
        "latency_us",
    ] {
        assert!(v.get(key).is_some(), "no {key} in {v}");
    }
    if v["received"] == 0 {
        assert!(v["latency_us"].is_null(), "latency of nothing in {v}");
        return;
    }
    for key in ["p50", "p90", "p99", "p999", "max"] {
        assert!(
            v["latency_us"][key].is_number(),
            "no latency_us.{key} in {v}"
        );
    }
}

#[test]
fn receive_json_matches_the_scripted_stream_exactly() {
    let mut rx = Tickcast::spawn(&[
        "receive",
        "--bind",
        "127.0.0.1:0",
        "--duration",
        "2s",
        "--json",
    ]);
    let addr = rx.receiving_on();
    let (datagrams, e) = scripted_stream();
    send_all(addr, &datagrams);
    let done = rx.finish(PATIENCE);
    assert!(done.status.success(), "{}", done.stderr);
    let v = json(&done.stdout);
    assert_receive_keys(&v);
    for (key, want) in [
        ("expected", e.expected),
        ("received", e.received),
        ("lost", e.lost),
        ("duplicates", e.duplicates),
        ("reordered", e.reordered),
        ("stale", e.stale),
        ("malformed", e.malformed),
        ("restarts", e.restarts),
        ("ticks_applied", e.ticks_applied),
        ("datagrams", e.datagrams),
    ] {
        assert_eq!(u64_at(&v, key), want, "{key} in {v}");
    }
    assert_eq!(
        u64_at(&v, "received") + u64_at(&v, "lost"),
        u64_at(&v, "expected")
    );
    let ratio = v["loss_ratio"].as_f64().unwrap();
    assert_eq!(ratio, e.lost as f64 / e.expected as f64);
}

#[test]
fn ctrl_c_ends_receive_with_the_summary() {
    let mut rx = Tickcast::spawn(&["receive", "--bind", "127.0.0.1:0"]);
    rx.receiving_on();
    rx.interrupt();
    let done = rx.finish(Duration::from_secs(5));
    assert!(done.status.success(), "{:?}: {}", done.status, done.stderr);
    assert!(done.stderr.contains("expected"), "{}", done.stderr);
    assert!(
        done.stderr.contains("latency from send time"),
        "{}",
        done.stderr
    );
    assert_eq!(done.stdout, "");
}

#[test]
fn ctrl_c_ends_receive_with_json() {
    let mut rx = Tickcast::spawn(&["receive", "--bind", "127.0.0.1:0", "--json"]);
    rx.receiving_on();
    rx.interrupt();
    let done = rx.finish(Duration::from_secs(5));
    assert!(done.status.success(), "{:?}: {}", done.status, done.stderr);
    let v = json(&done.stdout);
    assert_receive_keys(&v);
    assert_eq!(v["schema"], 1, "{v}");
    // Nothing was sent: every count is exactly zero.
    for key in ["expected", "received", "lost", "datagrams", "ticks_applied"] {
        assert_eq!(u64_at(&v, key), 0, "{key} in {v}");
    }
}

#[test]
fn ctrl_c_ends_broadcast_with_a_goodbye() {
    let sock = tap();
    let to = sock.local_addr().unwrap().to_string();
    let mut tx = Tickcast::spawn(&["broadcast", "--to", &to]);
    tx.wait_for_line("broadcasting ");
    // Wait for the stream to flow before interrupting it.
    let mut buf = vec![0u8; tickcast::wire::MAX_DATAGRAM];
    let flowing = (0..10).any(|_| sock.recv(&mut buf).is_ok());
    assert!(flowing, "no datagram in 10 s");
    tx.interrupt();
    let done = tx.finish(Duration::from_secs(5));
    assert!(done.status.success(), "{:?}: {}", done.status, done.stderr);
    let packets = collect_until_goodbye(&sock, PATIENCE);
    let last = packets.last().expect("packets after the first");
    assert!(
        matches!(last.body, Body::Goodbye(_)),
        "no goodbye; last packet {last:?}"
    );
}

#[test]
fn broadcast_duration_is_measured_in_ticks() {
    let sock = tap();
    let to = sock.local_addr().unwrap().to_string();
    let done = run(&["broadcast", "--to", &to, "--duration", "1s", "--json"]);
    assert!(done.status.success(), "{:?}: {}", done.status, done.stderr);
    let v = json(&done.stdout);
    assert_eq!(v["schema"], 1, "{v}");
    let ticks = u64_at(&v, "ticks_sent") + u64_at(&v, "ticks_skipped");
    assert_eq!(ticks, 60, "{v}");
    let packets = collect_until_goodbye(&sock, PATIENCE);
    assert!(matches!(
        packets.last().map(|p| p.body),
        Some(Body::Goodbye(_))
    ));
}

#[test]
fn demo_prints_a_row_per_receiver_with_no_loss() {
    let done = run(&["demo", "--duration", "2s", "--receivers", "2"]);
    assert!(done.status.success(), "{:?}: {}", done.status, done.stderr);
    let header = done
        .stdout
        .lines()
        .find(|l| l.starts_with("receiver "))
        .unwrap_or_else(|| panic!("no table header in {:?}", done.stdout));
    let columns: Vec<&str> = header.split_whitespace().collect();
    let lost = columns.iter().position(|&c| c == "lost").unwrap();
    let rows: Vec<&str> = done
        .stdout
        .lines()
        .filter(|l| l.starts_with("rx"))
        .collect();
    assert_eq!(rows.len(), 2, "{}", done.stdout);
    for row in rows {
        // The name column may hold spaces ("rx0 127.0.0.1:port"): count the
        // other columns from the right.
        let cells: Vec<&str> = row.split_whitespace().collect();
        let at = cells.len() - (columns.len() - lost);
        assert_eq!(cells[at], "0", "lost in {row:?} (header {header:?})");
    }
}

/// One clear line on stderr, a non-zero exit and nothing on stdout.
fn assert_one_line_error(args: &[&str]) -> String {
    let done = run(args);
    let line = done.stderr.trim();
    assert!(!done.status.success(), "{args:?} succeeded: {line}");
    assert_eq!(line.lines().count(), 1, "{args:?}: {line:?}");
    assert!(line.starts_with("tickcast:"), "{args:?}: {line:?}");
    assert!(!line.contains("panicked"), "{args:?}: {line:?}");
    assert!(
        !line.to_lowercase().contains("backtrace"),
        "{args:?}: {line:?}"
    );
    assert_eq!(done.stdout, "", "{args:?}");
    line.to_string()
}

#[test]
fn bad_input_gets_one_line_and_a_non_zero_exit() {
    let cases: &[&[&str]] = &[
        &["receive", "--duration", "5parsecs"],
        &["broadcast", "--rate", "abc"],
        &["broadcast", "--rate", "0", "--duration", "1s"],
        &["broadcast", "--payload-budget", "10", "--duration", "1s"],
        &["receive", "--nonsense"],
        // Not an address of this host: bind fails, nothing is sent.
        &["receive", "--bind", "203.0.113.7:9"],
        &["receive", "--group", "127.0.0.1:5000"],
    ];
    for args in cases {
        assert_one_line_error(args);
    }
}

#[test]
fn port_in_use_gets_one_line_and_a_non_zero_exit() {
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let line = assert_one_line_error(&["receive", "--bind", &addr, "--duration", "1s"]);
    assert!(line.contains("in use"), "{line}");
}

/// Regression: a bind error printed the OS reason twice ("cannot bind X:
/// Cannot assign requested address (os error 99): Cannot assign requested
/// address (os error 99)"), because the error's message embeds its source
/// and the CLI prints the source chain too.
#[test]
fn bind_error_names_the_os_reason_once() {
    let line = assert_one_line_error(&["receive", "--bind", "203.0.113.7:9"]);
    let reason = "(os error";
    assert_eq!(line.matches(reason).count(), 1, "{line}");
}

/// The seconds a line starts with (`2.5s  ticks sent ...`), after `prefix`.
fn leading_seconds(line: &str, prefix: &str) -> f64 {
    let rest = line
        .trim_start()
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("{line:?}"));
    let secs = rest.split_whitespace().next().unwrap();
    secs.strip_suffix('s')
        .unwrap()
        .parse()
        .unwrap_or_else(|e| panic!("{e}: {line:?}"))
}

/// Regression (issue 10): the broadcaster's last line always said `0.0s`.
#[test]
fn broadcast_final_line_says_how_long_it_ran() {
    let sock = tap();
    let to = sock.local_addr().unwrap().to_string();
    let done = run(&["broadcast", "--to", &to, "--duration", "1s"]);
    assert!(done.status.success(), "{:?}: {}", done.status, done.stderr);
    let last = done.stderr.lines().last().unwrap();
    let t = leading_seconds(last, "");
    assert!((0.95..5.0).contains(&t), "ran 1 s, said {t} s: {last:?}");
}

/// Regression (issue 10): `demo` stopped by Ctrl-C said it ran its whole
/// `--duration`.
#[test]
fn demo_stopped_by_ctrl_c_says_how_long_it_ran() {
    let mut demo = Tickcast::spawn(&["demo", "--duration", "30s", "--receivers", "1"]);
    demo.wait_for_line("  rx0 ");
    demo.interrupt();
    let done = demo.finish(PATIENCE);
    assert!(done.status.success(), "{:?}: {}", done.status, done.stderr);
    let line = done
        .stdout
        .lines()
        .find(|l| l.starts_with("broadcaster: "))
        .unwrap_or_else(|| panic!("no broadcaster line in {:?}", done.stdout));
    let t = leading_seconds(line, "broadcaster: ");
    assert!(
        (0.9..20.0).contains(&t),
        "stopped after about 1 s, said {t} s: {line:?}"
    );
}

/// Regression (issue 10): an output path that cannot be written was found
/// only after the whole benchmark had run. Now it is refused at once, with
/// exit code 2 (a bad flag), and nothing runs (a bench takes over 10 s).
#[test]
fn bench_refuses_an_unwritable_output_path_before_running() {
    for flag in ["--plot", "--json"] {
        let path = if flag == "--plot" {
            "/nonexistent/x.svg"
        } else {
            "/nonexistent/x.json"
        };
        let done = Tickcast::spawn(&["bench", flag, path]).finish(Duration::from_secs(5));
        assert_eq!(done.status.code(), Some(2), "{flag}: {}", done.stderr);
        let line = done.stderr.trim();
        assert_eq!(
            line,
            format!("tickcast: {flag} {path}: directory /nonexistent does not exist")
        );
        assert_eq!(done.stdout, "");
    }
}

/// Regression (issue 10): `--plot out.png` wrote SVG into a `.png`.
#[test]
fn bench_plot_refuses_a_name_that_is_not_svg() {
    let dir = std::env::temp_dir().join(format!("tickcast-cli-png-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let png = dir.join("out.png");
    let done =
        Tickcast::spawn(&["bench", "--plot", png.to_str().unwrap()]).finish(Duration::from_secs(5));
    assert_eq!(done.status.code(), Some(2), "{}", done.stderr);
    assert!(
        done.stderr.contains("only SVG is written"),
        "{}",
        done.stderr
    );
    assert_eq!(done.stderr.trim().lines().count(), 1, "{}", done.stderr);
    assert!(!png.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Regression (issue 10): `bench --json -` wrote a file named `-`. Now the
/// report is stdout, alone (the tables go to stderr), with its schema.
#[test]
fn bench_json_dash_is_the_report_alone_on_stdout() {
    let dir = std::env::temp_dir().join(format!("tickcast-cli-dash-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut bench = Command::new(env!("CARGO_BIN_EXE_tickcast"));
    bench.current_dir(&dir).args([
        "bench",
        "--json",
        "-",
        "--duration",
        "1s",
        "--receivers",
        "1",
        "--entities",
        "100",
        "--warmup",
        "100ms",
    ]);
    let out = bench.stdin(Stdio::null()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let v = json(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(v["schema"], 1);
    assert_eq!(v["setup"]["receivers"], 1);
    assert_eq!(v["total"]["figures"]["lost"], 0, "{v}");
    assert!(
        stderr.contains("tickcast bench: 1 broadcaster"),
        "the table, on stderr: {stderr}"
    );
    assert!(!dir.join("-").exists(), "no file named -");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every JSON document carries its schema: `impair --json` too.
#[test]
fn impair_json_carries_the_schema_and_the_spec() {
    let rx = tap();
    let to = rx.local_addr().unwrap().to_string();
    let done = run(&[
        "impair",
        "--listen",
        "127.0.0.1:0",
        "--to",
        &to,
        "--preset",
        "wifi",
        "--duration",
        "300ms",
        "--json",
    ]);
    assert!(done.status.success(), "{:?}: {}", done.status, done.stderr);
    let v = json(&done.stdout);
    assert_eq!(v["schema"], 1, "{v}");
    assert!(
        v["spec"]
            .as_str()
            .unwrap()
            .starts_with("loss=0.001,delay=12ms"),
        "{v}"
    );
    assert_eq!(v["conditioner"]["datagrams_in"], 0, "{v}");
}

/// Regression (issue 10): with the receivers (and with `--lan` the
/// broadcaster) in child processes, the live lines showed no receiver
/// figures (or zeros). They now carry the counters of each child's latest
/// per-second line.
#[test]
fn bench_with_processes_shows_the_receivers_counts_live() {
    let mut bench = Tickcast::spawn(&[
        "bench",
        "--processes",
        "--duration",
        "3s",
        "--receivers",
        "1",
        "--entities",
        "100",
        "--warmup",
        "200ms",
    ]);
    let line = bench.wait_for_line("  2.0s/3s");
    let counts = line
        .split(" rx lost ")
        .nth(1)
        .unwrap_or_else(|| panic!("no receiver counts in {line:?}"));
    let (lost, expected) = counts
        .split_whitespace()
        .next()
        .unwrap()
        .split_once('/')
        .unwrap();
    assert_eq!(lost, "0", "{line}");
    assert!(expected.parse::<u64>().unwrap() > 0, "{line}");
    let done = bench.finish(PATIENCE);
    assert!(done.status.success(), "{:?}: {}", done.status, done.stderr);
}
