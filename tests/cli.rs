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

use common::{
    collect_until_goodbye, is_root, sched_of, scripted_stream, send_all, skip, status_field, tap,
    threads_named,
};
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
        Tickcast::spawn_with(args, |_| {})
    }

    /// [`Tickcast::spawn`], with `setup` applied to the command first (its
    /// environment, say).
    fn spawn_with(args: &[&str], setup: impl FnOnce(&mut Command)) -> Tickcast {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tickcast"));
        setup(&mut cmd);
        let mut child = cmd
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
        self.signal(Signal::SIGINT);
    }

    fn signal(&self, sig: Signal) {
        let pid = Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        kill(pid, sig).unwrap();
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
        "unproven",
        "foreign",
        "stale_sealed",
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
        ("unproven", e.unproven),
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
    let addr = rx.receiving_on();
    send_all(addr, &[common::snap(7, 1, 1)]);
    rx.wait_for_line("  1.0s  count       1");
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

/// Ctrl-C before anything arrived: the JSON still comes, every count is
/// zero, `received_any` is false, the likely causes are said, and the exit
/// is 1 (it was 0, and the JSON looked like a clean run).
#[test]
fn ctrl_c_ends_receive_with_json() {
    let mut rx = Tickcast::spawn(&["receive", "--bind", "127.0.0.1:0", "--json"]);
    rx.receiving_on();
    rx.interrupt();
    let done = rx.finish(Duration::from_secs(5));
    assert_eq!(done.status.code(), Some(1), "{}", done.stderr);
    let v = json(&done.stdout);
    assert_receive_keys(&v);
    assert_eq!(v["schema"], 1, "{v}");
    // Nothing was sent: every count is exactly zero.
    for key in ["expected", "received", "lost", "datagrams", "ticks_applied"] {
        assert_eq!(u64_at(&v, key), 0, "{key} in {v}");
    }
    assert_eq!(v["received_any"], false, "{v}");
    assert!(
        done.stderr.contains("likely causes:") && done.stderr.contains("a loopback address"),
        "{}",
        done.stderr
    );
}

/// A receiver that takes nothing warns after 3 s with the causes it can
/// see, says `"received_any": false`, and exits 1; each case of the issue
/// that looked like success ("lost 0 (0.0000%)", exit 0) names its cause.
#[test]
fn a_receive_that_takes_nothing_names_the_likely_causes_and_exits_1() {
    // Nothing arrives at a loopback bind: the warning comes at 3 s.
    let done = run(&[
        "receive",
        "--bind",
        "127.0.0.1:0",
        "--duration",
        "4s",
        "--json",
    ]);
    assert_eq!(done.status.code(), Some(1), "{}", done.stderr);
    assert_eq!(json(&done.stdout)["received_any"], false);
    let lines: Vec<&str> = done.stderr.lines().collect();
    let at = lines
        .iter()
        .position(|l| *l == "tickcast: no stream datagram received in 3.0 s; likely causes:")
        .unwrap_or_else(|| panic!("no warning at 3 s: {}", done.stderr));
    assert!(
        lines[at + 1].starts_with("  - bound to 127.0.0.1:"),
        "{}",
        done.stderr
    );
    assert!(
        lines[at + 1].contains("a loopback address"),
        "{}",
        done.stderr
    );
    assert_eq!(
        lines.last(),
        Some(&"tickcast: received no stream datagram in 4.0 s (likely causes above)"),
        "{}",
        done.stderr
    );

    // A group joined on loopback (the default --interface).
    let port = common::free_udp_port();
    let group = format!("239.255.74.99:{port}");
    let done = run(&["receive", "--group", &group, "--duration", "1s"]);
    assert_eq!(done.status.code(), Some(1), "{}", done.stderr);
    assert!(
        done.stderr
            .contains("is joined on the loopback interface (127.0.0.1)")
            && done.stderr.contains("--interface"),
        "{}",
        done.stderr
    );

    // Only garbage arrives.
    let mut rx = Tickcast::spawn(&["receive", "--bind", "127.0.0.1:0", "--duration", "1s"]);
    let addr = rx.receiving_on();
    send_all(addr, &[b"not tickcast".to_vec(), vec![0xff; 40]]);
    let done = rx.finish(PATIENCE);
    assert_eq!(done.status.code(), Some(1), "{}", done.stderr);
    assert!(
        done.stderr
            .contains("2 datagrams arrived that are not a tickcast stream"),
        "{}",
        done.stderr
    );
    assert!(
        !done.stderr.contains("a loopback address"),
        "it did arrive: {}",
        done.stderr
    );
}

/// A wrong key: the live line shows the failures (it showed all zeros) and
/// the run ends with exit 1, naming the key.
#[test]
fn a_receiver_with_the_wrong_key_says_so_and_exits_1() {
    let ours = key_file("ours", &"11".repeat(32));
    let theirs = key_file("theirs", &"22".repeat(32));
    let mut rx = Tickcast::spawn(&[
        "receive",
        "--bind",
        "127.0.0.1:0",
        "--key-file",
        ours.to_str().unwrap(),
        "--duration",
        "2s",
        "--json",
    ]);
    let to = rx.receiving_on().to_string();
    let sent = run(&[
        "broadcast",
        "--to",
        &to,
        "--key-file",
        theirs.to_str().unwrap(),
        "--duration",
        "1200ms",
        "--max-subscribers",
        "0",
    ]);
    assert!(sent.status.success(), "{}", sent.stderr);
    let done = rx.finish(PATIENCE);
    let _ = std::fs::remove_file(ours);
    let _ = std::fs::remove_file(theirs);
    assert_eq!(done.status.code(), Some(1), "{}", done.stderr);
    let v = json(&done.stdout);
    assert!(u64_at(&v, "auth_failed") > 0, "{v}");
    assert_eq!(v["received_any"], false, "{v}");
    assert!(
        done.stderr.contains("  auth failed "),
        "live line: {}",
        done.stderr
    );
    assert!(
        done.stderr
            .contains("failed authentication: the sender has another key"),
        "{}",
        done.stderr
    );
}

/// Subscribing to a port nothing listens on gives up after 5 s with one
/// clear error and exit 1 (it retried until its duration ended, exit 0).
#[test]
fn a_subscription_nothing_answers_ends_with_an_error_before_its_duration() {
    let closed = format!("127.0.0.1:{}", common::free_udp_port());
    let started = Instant::now();
    let done = Tickcast::spawn(&["receive", "--subscribe", &closed, "--duration", "30s"])
        .finish(Duration::from_secs(15));
    assert_eq!(done.status.code(), Some(1), "{}", done.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let last = done.stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(&format!(
            "tickcast: subscription to {closed} failed: no answer in 5 s"
        )),
        "{}",
        done.stderr
    );
}

/// A full broadcaster refuses twice, and the receiver gives up with an
/// error naming --max-subscribers (it retried, "refused: full", exit 0).
#[test]
fn a_subscription_refused_twice_ends_with_an_error() {
    let bind = format!("127.0.0.1:{}", common::free_udp_port());
    let mut tx = Tickcast::spawn(&[
        "broadcast",
        "--bind",
        &bind,
        "--max-subscribers",
        "1",
        "--entities",
        "5",
        "--duration",
        "20s",
    ]);
    tx.wait_for_line("broadcasting ");
    let server: SocketAddr = bind.parse().unwrap();
    let first = tickcast::Receiver::start(tickcast::ReceiverConfig::subscribe(server)).unwrap();
    assert!(common::wait_until(Duration::from_secs(5), || {
        first.figures().received_any()
    }));
    let started = Instant::now();
    let done = Tickcast::spawn(&[
        "receive",
        "--subscribe",
        &bind,
        "--duration",
        "20s",
        "--json",
    ])
    .finish(Duration::from_secs(15));
    assert_eq!(done.status.code(), Some(1), "{}", done.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let v = json(&done.stdout);
    assert_eq!(v["subscription"], "failed: refused: full", "{v}");
    assert!(
        done.stderr.ends_with(&format!(
            "tickcast: subscription to {bind} failed: refused 2 times, the broadcaster is full (its --max-subscribers)"
        )),
        "{}",
        done.stderr
    );
    drop(first);
    tx.interrupt();
    tx.finish(PATIENCE);
}

/// Host names stand wherever an address does (`--bind`, `--to`,
/// `--subscribe`), resolved with the system's resolver, IPv4 first; they
/// were refused as "invalid socket address syntax". Tested with localhost
/// only, which resolves from /etc/hosts.
#[test]
fn localhost_resolves_wherever_an_address_goes() {
    let port = common::free_udp_port();
    let here = format!("localhost:{port}");
    let mut rx = Tickcast::spawn(&["receive", "--bind", &here, "--duration", "3s", "--json"]);
    assert_eq!(rx.receiving_on(), SocketAddr::from(([127, 0, 0, 1], port)));
    let sent = run(&[
        "broadcast",
        "--to",
        &here,
        "--duration",
        "1s",
        "--max-subscribers",
        "0",
    ]);
    assert!(sent.status.success(), "{}", sent.stderr);
    assert!(
        sent.stderr.contains(&format!("to 127.0.0.1:{port}")),
        "{}",
        sent.stderr
    );
    let done = rx.finish(PATIENCE);
    assert!(done.status.success(), "{}", done.stderr);
    let v = json(&done.stdout);
    assert_eq!(v["received_any"], true, "{v}");
    assert_eq!(v["goodbye"], true, "{v}");

    // A subscription by name, to a broadcaster bound by name.
    let bind = format!("localhost:{}", common::free_udp_port());
    let mut tx = Tickcast::spawn(&["broadcast", "--bind", &bind, "--duration", "3s"]);
    tx.wait_for_line("broadcasting ");
    let done = run(&[
        "receive",
        "--subscribe",
        &bind,
        "--duration",
        "1500ms",
        "--json",
    ]);
    assert!(done.status.success(), "{}", done.stderr);
    let v = json(&done.stdout);
    assert_eq!(v["subscription"], "subscribed", "{v}");
    assert_eq!(v["received_any"], true, "{v}");
    tx.finish(PATIENCE);

    // The shape is clap's to check; a name without a port is a flag error.
    let done = run(&["receive", "--bind", "localhost"]);
    assert_eq!(done.status.code(), Some(2), "{}", done.stderr);
    assert!(
        done.stderr.contains("expected ADDR:PORT or HOST:PORT"),
        "{}",
        done.stderr
    );
}

/// `--interface` takes an interface's name beside its address: a group on
/// `lo` carries the stream; a name that is not there, or an address the
/// interface does not have, is one line and exit 2.
#[test]
fn interface_names_work_beside_addresses() {
    let group = format!("239.255.74.98:{}", common::free_udp_port());
    let mut rx = Tickcast::spawn(&[
        "receive",
        "--group",
        &group,
        "--interface",
        "lo",
        "--duration",
        "3s",
        "--json",
    ]);
    rx.receiving_on();
    let sent = run(&[
        "broadcast",
        "--group",
        &group,
        "--interface",
        "lo",
        "--duration",
        "1s",
        "--max-subscribers",
        "0",
    ]);
    assert!(sent.status.success(), "{}", sent.stderr);
    let done = rx.finish(PATIENCE);
    assert!(done.status.success(), "{}", done.stderr);
    let v = json(&done.stdout);
    assert!(u64_at(&v, "received") > 0, "{v}");
    assert_eq!(u64_at(&v, "lost"), 0, "{v}");

    for (interface, want) in [
        (
            "tickcast-nope0",
            "no interface named tickcast-nope0 on this host",
        ),
        ("fe80::1%lo", "interface lo has no address fe80::1"),
    ] {
        let line = assert_one_line_error(
            &[
                "receive",
                "--group",
                &group,
                "--interface",
                interface,
                "--duration",
                "1s",
            ],
            2,
        );
        assert!(line.contains(want), "{line}");
    }
}

/// Loopback's MTU (65536) carries a 65000-byte budget whole, to a group
/// on it and to a unicast target through it: no fragmentation warning.
/// (The warning itself is tested on the pure rule, in `runtime::mtu`.)
#[test]
fn a_budget_that_fits_loopback_does_not_warn_of_fragmentation() {
    let sock = tap();
    let to = sock.local_addr().unwrap().to_string();
    let group = format!("239.255.74.97:{}", common::free_udp_port());
    let done = run(&[
        "broadcast",
        "--payload-budget",
        "65000",
        "--interface",
        "127.0.0.1",
        "--group",
        &group,
        "--to",
        &to,
        "--entities",
        "5000",
        "--duration",
        "300ms",
    ]);
    assert!(done.status.success(), "{}", done.stderr);
    assert!(!done.stderr.contains("fragmented"), "{}", done.stderr);
    assert!(!done.stderr.contains("MTU"), "{}", done.stderr);
}

/// -q hides the warnings, -v shows what is informational, and RUST_LOG,
/// when set, overrides both.
#[test]
fn quiet_and_verbose_set_what_the_log_prints() {
    let sock = tap();
    let to = sock.local_addr().unwrap().to_string();
    let warning = "tickcast: sending to 127.0.0.1:0";
    let partial = |flag: &str, rust_log: Option<&str>| {
        let args = [
            flag,
            "broadcast",
            "--to",
            "127.0.0.1:0",
            "--to",
            &to,
            "--duration",
            "300ms",
        ];
        let args: Vec<&str> = args.into_iter().filter(|a| !a.is_empty()).collect();
        let done = Tickcast::spawn_with(&args, |cmd| {
            cmd.env_remove("RUST_LOG");
            if let Some(v) = rust_log {
                cmd.env("RUST_LOG", v);
            }
        })
        .finish(PATIENCE);
        assert!(done.status.success(), "{flag}: {}", done.stderr);
        done.stderr
    };
    assert!(partial("", None).contains(warning));
    assert!(!partial("-q", None).contains(warning));
    assert!(!partial("", Some("off")).contains(warning));
    assert!(
        partial("-q", Some("warn")).contains(warning),
        "RUST_LOG overrides -q"
    );

    // -v: the broadcaster says when a subscriber comes and goes.
    let bind = format!("127.0.0.1:{}", common::free_udp_port());
    let mut tx = Tickcast::spawn_with(
        &["-v", "broadcast", "--bind", &bind, "--duration", "3s"],
        |cmd| {
            cmd.env_remove("RUST_LOG");
        },
    );
    tx.wait_for_line("broadcasting ");
    let rx = run(&["receive", "--subscribe", &bind, "--duration", "1s"]);
    assert!(rx.status.success(), "{}", rx.stderr);
    tx.wait_for_line("tickcast: subscriber 127.0.0.1:");
    tx.finish(PATIENCE);
}

/// `tickcast completions SHELL` prints a completion script that knows the
/// commands and flags.
#[test]
fn completions_print_a_script_for_each_shell() {
    for (shell, marker) in [
        ("bash", "_tickcast()"),
        ("zsh", "#compdef tickcast"),
        ("fish", "complete -c tickcast"),
    ] {
        let done = run(&["completions", shell]);
        assert!(done.status.success(), "{shell}: {}", done.stderr);
        assert!(done.stdout.contains(marker), "{shell}: {}", done.stdout);
        // fish writes `-l interface`, the others `--interface`.
        for word in ["receive", "interface", "payload-budget"] {
            assert!(done.stdout.contains(word), "{shell}: no {word}");
        }
    }
    assert_eq!(run(&["completions", "tcsh"]).status.code(), Some(2));
}

/// A key file of `hex` in the temp dir, mode 600.
fn key_file(name: &str, hex: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = std::env::temp_dir().join(format!("tickcast-cli-it-{}-{name}", std::process::id()));
    std::fs::write(&p, hex).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
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

/// SIGTERM (what systemd and Docker send) and SIGHUP end a run as Ctrl-C
/// does: the broadcaster says goodbye (the receiver's figures show it) and
/// `receive --json` prints its JSON. SIGTERM used to kill both outright.
#[test]
fn sigterm_and_sighup_end_runs_like_ctrl_c() {
    for sig in [Signal::SIGTERM, Signal::SIGHUP] {
        let mut rx = Tickcast::spawn(&[
            "receive",
            "--bind",
            "127.0.0.1:0",
            "--duration",
            "20s",
            "--json",
        ]);
        let to = rx.receiving_on().to_string();
        let mut tx = Tickcast::spawn(&["broadcast", "--to", &to, "--duration", "20s"]);
        // A second of stream, then the signal.
        tx.wait_for_line("  1.0s");
        tx.signal(sig);
        let sent = tx.finish(Duration::from_secs(5));
        assert!(
            sent.status.success(),
            "{sig}: {:?}: {}",
            sent.status,
            sent.stderr
        );
        std::thread::sleep(Duration::from_millis(300));
        rx.signal(sig);
        let done = rx.finish(Duration::from_secs(5));
        assert!(
            done.status.success(),
            "{sig}: {:?}: {}",
            done.status,
            done.stderr
        );
        let v = json(&done.stdout);
        assert_receive_keys(&v);
        assert_eq!(v["goodbye"], true, "{sig}: {v}");
        assert!(u64_at(&v, "received") > 0, "{sig}: {v}");
        assert_eq!(u64_at(&v, "lost"), 0, "{sig}: {v}");
    }
}

/// A broadcaster that reaches no target stops within about a second with
/// one line naming the error and exit 1 (it used to run its whole duration
/// printing "send errors N" and exit 0). Port 0 is refused before anything
/// leaves the host.
#[test]
fn a_broadcast_whose_every_send_fails_stops_with_one_line_and_exit_1() {
    let started = Instant::now();
    let done = run(&["broadcast", "--to", "127.0.0.1:0", "--duration", "8s"]);
    assert_eq!(done.status.code(), Some(1), "{}", done.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "ran {:?}: {}",
        started.elapsed(),
        done.stderr
    );
    let errors: Vec<&str> = done
        .stderr
        .lines()
        .filter(|l| l.starts_with("tickcast:"))
        .collect();
    assert_eq!(errors.len(), 1, "{}", done.stderr);
    let line = errors[0];
    assert_eq!(Some(line), done.stderr.lines().last(), "the last line");
    assert!(line.contains("refused all"), "{line}");
    assert!(
        line.contains("sending to 127.0.0.1:0: Invalid argument"),
        "{line}"
    );
}

/// Several targets, one refused: a warning, once, and the stream goes on.
#[test]
fn a_broadcast_with_one_failing_target_warns_once_and_goes_on() {
    let sock = tap();
    let to = sock.local_addr().unwrap().to_string();
    let done = run(&[
        "broadcast",
        "--to",
        "127.0.0.1:0",
        "--to",
        &to,
        "--duration",
        "1500ms",
        "--json",
    ]);
    assert!(done.status.success(), "{:?}: {}", done.status, done.stderr);
    let warnings: Vec<&str> = done
        .stderr
        .lines()
        .filter(|l| l.starts_with("tickcast: sending to 127.0.0.1:0"))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", done.stderr);
    assert!(
        warnings[0].contains("the stream goes on"),
        "{}",
        warnings[0]
    );
    let v = json(&done.stdout);
    assert_eq!(v["halted"], Value::Null, "{v}");
    assert_eq!(
        u64_at(&v, "datagrams_sent"),
        u64_at(&v, "packets_sent"),
        "{v}"
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

/// `--world players` reaches the broadcaster: a `tickcast receive` on
/// loopback takes the whole stream, and every entity a tap sees is the
/// library's players world, bit for bit, not the linear one.
#[test]
fn broadcast_world_players_sends_the_players_world() {
    use tickcast::core::sim::{SimWorld, WorldKind};
    let mut rx = Tickcast::spawn(&[
        "receive",
        "--bind",
        "127.0.0.1:0",
        "--duration",
        "3s",
        "--json",
    ]);
    let rx_addr = rx.receiving_on().to_string();
    let sock = tap();
    let tap_addr = sock.local_addr().unwrap().to_string();
    let mut tx = Tickcast::spawn(&[
        "broadcast",
        "--to",
        &rx_addr,
        "--to",
        &tap_addr,
        "--world",
        "players",
        "--entities",
        "150",
        "--seed",
        "7",
        "--duration",
        "1s",
        "--max-subscribers",
        "0",
    ]);
    let start = tx.wait_for_line("broadcasting ");
    assert!(
        start.starts_with("150 entities (players world) at 60 Hz"),
        "{start}"
    );
    let mut buf = vec![0u8; tickcast::wire::MAX_DATAGRAM];
    let mut entities = Vec::new();
    let mut players = SimWorld::with_kind(WorldKind::Players, 150, 7);
    let mut linear = SimWorld::new(150, 7);
    let (mut ticks, mut checked) = (0, 0);
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        let Ok(n) = sock.recv(&mut buf) else { continue };
        let packet = tickcast::wire::decode(&buf[..n], &mut entities).unwrap();
        match packet.body {
            Body::Snapshot(h) => {
                ticks += usize::from(h.part == 0);
                let want = players.positions(h.tick, 60.0);
                let other = linear.positions(h.tick, 60.0).to_vec();
                for e in &entities {
                    assert_eq!(*e, want[e.id as usize], "tick {}", h.tick);
                    assert_ne!(*e, other[e.id as usize], "tick {}", h.tick);
                    checked += 1;
                }
            }
            Body::Goodbye(_) => break,
            _ => {}
        }
    }
    assert!(
        ticks >= 30 && checked >= 150 * 30,
        "{ticks} ticks, {checked} entities"
    );
    assert!(tx.finish(PATIENCE).status.success());
    let done = rx.finish(PATIENCE);
    assert!(done.status.success(), "{}", done.stderr);
    let v = json(&done.stdout);
    assert_eq!(v["goodbye"], true, "{v}");
    assert_eq!(u64_at(&v, "lost"), 0, "{v}");
    assert_eq!(u64_at(&v, "ticks_applied") as usize, ticks, "{v}");
}

/// README's command-line synopsis names every flag of each command, and
/// no flag the command does not take.
#[test]
fn readme_synopsis_names_exactly_each_commands_flags() {
    let readme = include_str!("../README.md");
    let section = readme.split("## Command line").nth(1).unwrap();
    let block = section.split("```text").nth(1).unwrap();
    let block = block.split("```").next().unwrap();
    let flags = |text: &str| -> std::collections::BTreeSet<String> {
        text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .filter(|w| w.starts_with("--") && w.len() > 2)
            .map(str::to_string)
            .collect()
    };
    for command in ["broadcast", "receive", "demo", "bench", "impair"] {
        // Its lines: `tickcast COMMAND ...` and those indented under it.
        let mut lines = Vec::new();
        let mut on = false;
        for line in block.lines() {
            if let Some(rest) = line.strip_prefix("tickcast ") {
                on = rest.split_whitespace().next() == Some(command);
            }
            if on {
                lines.push(line);
            }
        }
        let documented = flags(&lines.join(" "));
        // clap's long help: flag lines are indented 2 or 6 columns, their
        // descriptions 10 or more.
        let help = run(&[command, "--help"]).stdout;
        let taken = help
            .lines()
            .filter(|l| {
                let indent = l.len() - l.trim_start().len();
                indent <= 6 && l.trim_start().starts_with('-')
            })
            .flat_map(|l| flags(l.split("  ").find(|p| !p.is_empty()).unwrap_or("")))
            .filter(|f| !["--help", "--quiet", "--verbose", "--version"].contains(&f.as_str()))
            .collect::<std::collections::BTreeSet<_>>();
        assert!(!taken.is_empty(), "{command}: no flags in {help}");
        assert_eq!(documented, taken, "README's synopsis of {command}");
    }
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

/// One clear line on stderr, exit code `code` and nothing on stdout.
fn assert_one_line_error(args: &[&str], code: i32) -> String {
    let done = run(args);
    let line = done.stderr.trim();
    assert_eq!(done.status.code(), Some(code), "{args:?}: {line}");
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

/// Flag values the library's config checks refuse are flag errors, as
/// README says: one line and exit code 2 (they exited 1), before anything
/// is opened or sent.
#[test]
fn invalid_flag_values_exit_2_in_one_line() {
    let cases: &[(&[&str], &str)] = &[
        (&["broadcast", "--rate", "0"], "tick rate 0 Hz"),
        (
            &["broadcast", "--payload-budget", "10"],
            "payload budget 10 bytes",
        ),
        (
            &["broadcast", "--group", "239.255.74.1:47474", "--ttl", "300"],
            "multicast TTL 300",
        ),
        (&["broadcast", "--lease", "0s"], "subscription lease 0ns"),
        (
            &["broadcast", "--to", "[::1]:9", "--bind", "127.0.0.1:0"],
            "address families differ",
        ),
        (
            &["demo", "--receivers", "0"],
            "--receivers must be at least 1",
        ),
        (&["demo", "--rate", "0"], "tick rate 0 Hz"),
        (
            &["bench", "--receivers", "0"],
            "receivers must be between 1",
        ),
        (
            &["bench", "--payload-budget", "10"],
            "payload budget 10 bytes",
        ),
        (
            &["receive", "--group", "127.0.0.1:5000"],
            "is not a multicast address",
        ),
        (
            &["receive", "--subscribe", "[::1]:9", "--bind", "127.0.0.1:0"],
            "address families differ",
        ),
        (
            &["impair", "--listen", "127.0.0.1:0", "--to", "127.0.0.1:0"],
            "non-zero port",
        ),
        (
            &[
                "impair",
                "--listen",
                "127.0.0.1:47551",
                "--to",
                "127.0.0.1:47551",
            ],
            "it is the relay's own address",
        ),
        (
            &["receive", "--capacity", "0"],
            "capacity 0 takes no entity id",
        ),
        (
            &["broadcast", "--precision", "0.01"],
            "--precision applies only with --encoding compact",
        ),
        (
            &["demo", "--keyframe-interval", "10"],
            "--keyframe-interval applies only with --encoding compact",
        ),
        (
            &["bench", "--sweep-receivers", "1,100"],
            "receivers must be between 1 and 64, not 100",
        ),
    ];
    for (args, want) in cases {
        let mut args = args.to_vec();
        // A backstop: a case that wrongly started ends by itself.
        args.extend(["--duration", "1s"]);
        let line = assert_one_line_error(&args, 2);
        assert!(line.contains(want), "{args:?}: {line}");
    }
}

/// A run of no time would achieve nothing: `--duration 0s` is refused by
/// every command that takes it. A flag that only means something beside
/// another is refused without it (it used to be ignored).
#[test]
fn zero_durations_and_flags_without_their_partner_exit_2() {
    for cmd in ["broadcast", "receive", "demo", "bench"] {
        let done = run(&[cmd, "--duration", "0s"]);
        assert_eq!(done.status.code(), Some(2), "{cmd}: {}", done.stderr);
        assert!(
            done.stderr.contains("more than 0"),
            "{cmd}: {}",
            done.stderr
        );
    }
    let done = run(&[
        "impair",
        "--listen",
        "127.0.0.1:0",
        "--to",
        "127.0.0.1:9",
        "--duration",
        "0s",
    ]);
    assert_eq!(done.status.code(), Some(2), "{}", done.stderr);
    for (args, needs) in [
        (&["broadcast", "--ttl", "300"][..], "--group"),
        (&["broadcast", "--interface", "lo"], "--group"),
        (&["receive", "--interface", "lo"], "--group"),
        (&["receive", "--freshness", "5s"], "--key-file"),
    ] {
        let mut args = args.to_vec();
        args.extend(["--duration", "1s"]);
        let done = run(&args);
        assert_eq!(done.status.code(), Some(2), "{args:?}: {}", done.stderr);
        assert!(
            done.stderr.contains("required arguments were not provided")
                && done.stderr.contains(needs),
            "{args:?}: {}",
            done.stderr
        );
        assert_eq!(done.stdout, "", "{args:?}");
    }
}

/// A document that cannot be written to stdout (a reader that closed
/// first, a full disk) is one error line and exit 1, not a panic (exit
/// 101, as every command did).
#[test]
fn a_closed_or_full_stdout_is_one_error_line_not_a_panic() {
    let sink = tap();
    let to = sink.local_addr().unwrap().to_string();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full");
    let mut outs: Vec<(&str, Stdio)> = vec![("a closed pipe", writer.into())];
    match full {
        Ok(f) => outs.push(("/dev/full", f.into())),
        Err(e) => skip(&format!("/dev/full cannot be opened here: {e}")),
    }
    for (what, out) in outs {
        let done = Command::new(env!("CARGO_BIN_EXE_tickcast"))
            .args(["broadcast", "--to", &to, "--duration", "300ms", "--json"])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(Stdio::piped())
            .env_remove("RUST_BACKTRACE")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&done.stderr);
        assert_eq!(done.status.code(), Some(1), "{what}: {stderr}");
        assert!(!stderr.contains("panicked"), "{what}: {stderr}");
        let last = stderr.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("tickcast: cannot write to standard output: "),
            "{what}: {stderr}"
        );
    }
}

/// A broadcast that sent nothing exits 1 with one line saying why, however
/// short the run (a run shorter than the second after which a broadcaster
/// halts on failing sends used to exit 0): every send failed, or it only
/// serves subscriptions and none came.
#[test]
fn a_broadcast_that_sent_nothing_says_why_and_exits_1() {
    for (args, want) in [
        (
            &["broadcast", "--to", "127.0.0.1:0", "--duration", "300ms"][..],
            "sends failed (last error: sending to 127.0.0.1:0: Invalid argument",
        ),
        (
            &["broadcast", "--bind", "127.0.0.1:0", "--duration", "300ms"],
            "no receiver subscribed (a receiver subscribes with: tickcast receive --subscribe 127.0.0.1:",
        ),
    ] {
        let done = run(args);
        assert_eq!(done.status.code(), Some(1), "{args:?}: {}", done.stderr);
        let last = done.stderr.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("tickcast: sent nothing in ") && last.contains(want),
            "{args:?}: {}",
            done.stderr
        );
        // The address a receiver can subscribe to: the bound port, not 0.
        assert!(!last.contains("--subscribe 127.0.0.1:0)"), "{last}");
    }
}

/// A key file that is a FIFO with no writer is refused at once, saying so
/// (its open used to wait for a writer, deaf to Ctrl-C and SIGTERM); a key in
/// a pipe (`<(…)`, kept off disk) is read as any file. A `--json` FIFO
/// that no process reads is refused before the run, and a directory is
/// named once, not twice ("it is a directory: it is a directory").
#[test]
fn fifos_pipes_and_directories_as_paths_are_answered_at_once() {
    let dir = std::env::temp_dir().join(format!("tickcast-cli-fifo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("fifo");
    let _ = std::fs::remove_file(&fifo);
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let fifo = fifo.to_str().unwrap();
    let started = Instant::now();
    let line = assert_one_line_error(&["broadcast", "--key-file", fifo, "--duration", "1s"], 1);
    assert!(
        line.ends_with("is a FIFO no process writes to: start its writer first"),
        "{line}"
    );
    let line = assert_one_line_error(&["bench", "--json", fifo, "--duration", "1s"], 2);
    assert!(
        line.ends_with("cannot write: no process reads this FIFO yet: start its reader first"),
        "{line}"
    );
    assert!(started.elapsed() < PATIENCE, "took {:?}", started.elapsed());
    let dir_name = dir.to_str().unwrap();
    let line = assert_one_line_error(
        &["broadcast", "--key-file", dir_name, "--duration", "1s"],
        1,
    );
    assert!(
        line.ends_with("is a directory; give the file that holds the key"),
        "{line}"
    );
    std::fs::remove_dir_all(&dir).unwrap();

    let sink = tap();
    let to = sink.local_addr().unwrap().to_string();
    let script = format!(
        "exec {} broadcast --to {to} --duration 300ms --key-file <(printf %s {})",
        env!("CARGO_BIN_EXE_tickcast"),
        "00".repeat(32)
    );
    match Command::new("bash").args(["-c", &script]).output() {
        Ok(done) => assert!(
            done.status.success(),
            "{:?}: {}",
            done.status,
            String::from_utf8_lossy(&done.stderr)
        ),
        Err(e) => skip(&format!("no bash to make a pipe with <(…): {e}")),
    }
}

/// `bench --json` to a pipe or a device writes the report into it (it
/// used to fail after the whole run, as the file could not be
/// truncated); to the very file stdout is (`/dev/stdout`, here a file),
/// it is stdout's one document, the tables on stderr (the tables
/// used to overwrite it).
#[test]
fn bench_json_into_a_pipe_or_stdout_itself_is_the_document_alone() {
    let args = [
        "bench",
        "--duration",
        "300ms",
        "--warmup",
        "0s",
        "--receivers",
        "1",
        "--json",
        "/dev/stdout",
    ];
    let done = run(&args);
    assert!(done.status.success(), "{:?}: {}", done.status, done.stderr);
    let v = json(&done.stdout);
    assert_eq!(v["schema"], 1, "{v}");
    assert!(
        done.stderr.contains("loss%"),
        "the table, on stderr: {}",
        done.stderr
    );
    let path =
        std::env::temp_dir().join(format!("tickcast-cli-stdout-{}.json", std::process::id()));
    let out = std::fs::File::create(&path).unwrap();
    let done = Command::new(env!("CARGO_BIN_EXE_tickcast"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(json(&text)["schema"], 1, "{text}");
}

/// `--link-rate` is read by the library, not clap, so a rate that is not
/// one is a bad flag value: one line naming it, exit 2, before any LAN is
/// built (no root needed to see it). Without `--lan` there is no link to
/// shape, and clap says so.
#[test]
fn a_link_rate_that_is_not_a_rate_exits_2_in_one_line() {
    for (bad, want) in [
        ("nonsense", "not a rate"),
        ("100", "needs its unit"),
        ("12mbps", "bytes per second"),
        ("0mbit", "between 100kbit and 100gbit"),
    ] {
        let args = ["bench", "--lan", "--link-rate", bad, "--duration", "1s"];
        let line = assert_one_line_error(&args, 2);
        assert!(
            line.starts_with(&format!("tickcast: --link-rate {bad:?}: ")) && line.contains(want),
            "{bad}: {line}"
        );
    }
    let done = run(&["bench", "--link-rate", "1gbit", "--duration", "1s"]);
    assert_eq!(done.status.code(), Some(2), "{}", done.stderr);
    assert!(done.stderr.contains("--lan"), "{}", done.stderr);
    assert_eq!(done.stdout, "");
}

#[test]
fn errors_at_run_time_get_one_line_and_exit_1() {
    // Not an address of this host: bind fails, nothing is sent.
    assert_one_line_error(&["receive", "--bind", "203.0.113.7:9"], 1);
}

/// What clap refuses is shown as clap says it, whole, with exit code 2: the
/// names of the missing arguments, the valid values, "did you mean", and a
/// bare `tickcast` prints its usage. (A one-line policy used to cut these
/// off after their first line.)
#[test]
fn clap_errors_are_shown_whole_with_exit_2() {
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["impair"],
            &["--listen <ADDR:PORT>", "--to <ADDR:PORT>", "Usage:"],
        ),
        (
            &["receive", "--mode", "fast"],
            &["'fast'", "possible values: wait, predict, busy-poll"],
        ),
        (&["recieve"], &["similar subcommand exists: 'receive'"]),
        (
            &["receive", "--duration", "5parsecs"],
            &["'5parsecs'", "examples: 10s, 500ms, 2m"],
        ),
        (&["broadcast", "--rate", "abc"], &["'abc'", "--rate <HZ>"]),
        (
            &["broadcast", "--world", "nope"],
            &[
                "'nope'",
                "--world <WORLD>",
                "possible values: linear, players",
            ],
        ),
        (
            &["demo", "--world", "Players"],
            &["possible values: linear, players"],
        ),
        (
            &["bench", "--world", ""],
            &["possible values: linear, players"],
        ),
        (&["receive", "--nonsense"], &["'--nonsense'", "Usage:"]),
        (
            &[],
            &["Usage: tickcast", "broadcast", "receive", "Commands:"],
        ),
    ];
    for (args, wants) in cases {
        let done = run(args);
        assert_eq!(done.status.code(), Some(2), "{args:?}: {}", done.stderr);
        for want in *wants {
            assert!(
                done.stderr.contains(want),
                "{args:?}: no {want:?} in {}",
                done.stderr
            );
        }
        assert!(
            !done.stderr.contains("panicked"),
            "{args:?}: {}",
            done.stderr
        );
        assert_eq!(done.stdout, "", "{args:?}");
    }
}

#[test]
fn port_in_use_gets_one_line_and_a_non_zero_exit() {
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let line = assert_one_line_error(&["receive", "--bind", &addr, "--duration", "1s"], 1);
    assert!(line.contains("in use"), "{line}");
}

/// Regression: a bind error printed the OS reason twice ("cannot bind X:
/// Cannot assign requested address (os error 99): Cannot assign requested
/// address (os error 99)"), because the error's message embeds its source
/// and the CLI prints the source chain too.
#[test]
fn bind_error_names_the_os_reason_once() {
    let line = assert_one_line_error(&["receive", "--bind", "203.0.113.7:9"], 1);
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
    // clap's own message, whole: the reason on its first line, then its hint.
    let first = done.stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("error: invalid value") && first.contains("only SVG is written"),
        "{}",
        done.stderr
    );
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
        "--world",
        "players",
    ]);
    let out = bench.stdin(Stdio::null()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let v = json(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(v["schema"], 1);
    assert_eq!(v["setup"]["receivers"], 1);
    // The report says which world ran (a key added within schema 1).
    assert_eq!(v["setup"]["world"], "players", "{v}");
    assert!(stderr.contains("100 entities (players world)"), "{stderr}");
    assert_eq!(v["total"]["figures"]["lost"], 0, "{v}");
    assert!(
        stderr.contains("tickcast bench: 1 broadcaster"),
        "the table, on stderr: {stderr}"
    );
    assert!(!dir.join("-").exists(), "no file named -");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every JSON document carries its schema: `impair --json` too. Nothing
/// is sent to this relay, so it also says it relayed nothing and exits 1,
/// with its JSON written all the same.
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
    assert_eq!(done.status.code(), Some(1), "{}", done.stderr);
    let listening = done
        .stderr
        .split_once("impair: relaying ")
        .and_then(|(_, rest)| rest.split_once(' '))
        .map(|(addr, _)| addr.to_string())
        .expect("the start line names the relay's address");
    let last = done.stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("tickcast: relayed nothing in ")
            && last.ends_with(&format!(
                " s: no datagram arrived on {listening} (is the broadcaster sending --to {listening}?)"
            )),
        "{}",
        done.stderr
    );
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

/// `--realtime` and `--cpu`, as root: the broadcast and receive threads
/// read back as SCHED_FIFO at the priority asked for, on the CPU asked
/// for, with the process's memory locked; and the stream flows.
#[test]
fn realtime_threads_read_back_as_sched_fifo_pinned_with_memory_locked() {
    if !is_root() {
        skip("SCHED_FIFO needs root here");
        return;
    }
    let allowed = tickcast::runtime::realtime::allowed_cpus().unwrap();
    let cpu = allowed.0.last().unwrap().to_string();
    let mut rx = Tickcast::spawn(&[
        "receive",
        "--bind",
        "127.0.0.1:0",
        "--realtime=7",
        "--cpu",
        &cpu,
        "--duration",
        "4s",
        "--json",
    ]);
    let to = rx.receiving_on().to_string();
    let mut tx = Tickcast::spawn(&[
        "broadcast",
        "--to",
        &to,
        "--realtime",
        "--cpu",
        &cpu,
        "--duration",
        "2s",
        "--max-subscribers",
        "0",
    ]);
    tx.wait_for_line("broadcasting ");
    for (t, name, priority) in [
        (&rx, "tickcast-receive", 7),
        (
            &tx,
            "tickcast-broadcast",
            tickcast::runtime::realtime::DEFAULT_PRIORITY,
        ),
    ] {
        let pid = t.child.id();
        let tids = threads_named(pid, name);
        assert_eq!(tids.len(), 1, "{name}: {tids:?}");
        assert_eq!(sched_of(pid, tids[0]), (1, u32::from(priority)), "{name}");
        let status = format!("/proc/{pid}/task/{}/status", tids[0]);
        assert_eq!(status_field(&status, "Cpus_allowed_list:"), cpu, "{name}");
        let locked = status_field(&format!("/proc/{pid}/status"), "VmLck:");
        let kib: u64 = locked.trim_end_matches("kB").trim().parse().unwrap();
        assert!(kib > 0, "{name}: VmLck {locked}");
    }
    let sent = tx.finish(PATIENCE);
    assert!(sent.status.success(), "{}", sent.stderr);
    let got = rx.finish(PATIENCE);
    assert!(got.status.success(), "{}", got.stderr);
    let v = json(&got.stdout);
    assert_eq!(u64_at(&v, "lost"), 0, "{v}");
    assert!(u64_at(&v, "received") >= 120, "{v}");
}

/// A CPU this process may not run on is a bad flag value: one line naming
/// the CPUs it may use, exit 2, before anything starts.
#[test]
fn an_impossible_cpu_is_a_flag_error_naming_the_cpus_allowed() {
    for args in [
        &["receive", "--bind", "127.0.0.1:0", "--cpu", "9999"][..],
        &["broadcast", "--to", "127.0.0.1:9", "--cpu", "9999"],
        &["bench", "--cpu", "0,9999"],
    ] {
        let mut args = args.to_vec();
        args.extend(["--duration", "1s"]);
        let line = assert_one_line_error(&args, 2);
        assert!(
            line.contains(
                "CPU 9999 does not exist or is not one this process may run on (it may run on "
            ),
            "{args:?}: {line}"
        );
    }
    // clap refuses a priority outside SCHED_FIFO's range, and a value
    // without '=' (it would be ambiguous).
    for bad in [
        &["receive", "--realtime=0"][..],
        &["broadcast", "--realtime=100"],
    ] {
        let done = run(bad);
        assert_eq!(done.status.code(), Some(2), "{bad:?}: {}", done.stderr);
        assert!(done.stderr.contains("1..=99"), "{bad:?}: {}", done.stderr);
    }
}

/// Without the privilege, `--realtime` ends the run at start with one line
/// saying what is missing and exit 1 (a run-time error: the flags are
/// fine, this machine refuses). As root the privilege is dropped with
/// setpriv (util-linux), so the refusal is the kernel's own.
#[test]
fn realtime_without_the_privilege_says_what_is_missing_and_exits_1() {
    let mut cmd = if is_root() {
        if Command::new("setpriv").arg("--version").output().is_err() {
            skip("no setpriv (util-linux) to drop CAP_SYS_NICE with");
            return;
        }
        let mut c = Command::new("setpriv");
        c.args(["--bounding-set", "-sys_nice", "--"])
            .arg(env!("CARGO_BIN_EXE_tickcast"));
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_tickcast"))
    };
    // RLIMIT_RTPRIO 0, so no limit lets it in either.
    let out = cmd
        .args([
            "receive",
            "--bind",
            "127.0.0.1:0",
            "--realtime",
            "--duration",
            "1s",
        ])
        .env("RUST_LOG", "off")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr.trim();
    if out.status.success() {
        // A non-root user with an RLIMIT_RTPRIO ≥ 10 may: nothing to test.
        assert!(
            !is_root(),
            "setpriv dropped CAP_SYS_NICE, yet SCHED_FIFO was let in"
        );
        skip("this user may take SCHED_FIFO (RLIMIT_RTPRIO): no refusal to see");
        return;
    }
    assert_eq!(out.status.code(), Some(1), "{line}");
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(
        line.starts_with(
            "tickcast: receiver thread: SCHED_FIFO at priority 10 is not permitted: \
             it needs root or CAP_SYS_NICE, or an RLIMIT_RTPRIO ≥ 10"
        ),
        "{line}"
    );
}

/// Receivers that spin on every core are warned of, on stderr and in the
/// bench JSON; receivers that wait are not.
#[test]
fn bench_warns_of_spinning_receivers_that_leave_the_broadcaster_no_core() {
    let cores = std::thread::available_parallelism().unwrap().get();
    let receivers = cores.to_string();
    let bench = |mode: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_tickcast"))
            .args([
                "bench",
                "--receive-mode",
                mode,
                "--receivers",
                &receivers,
                "--entities",
                "50",
                "--duration",
                "1s",
                "--warmup",
                "100ms",
                "--json",
                "-",
            ])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "{stderr}");
        (json(&String::from_utf8(out.stdout).unwrap()), stderr)
    };
    let (v, stderr) = bench("predict");
    let said = format!(
        "tickcast: warning: {cores} predicting receiver{} (spinning around each tick) on {cores} core{} ",
        if cores == 1 { "" } else { "s" },
        if cores == 1 { "" } else { "s" },
    );
    assert_eq!(stderr.matches(&said).count(), 1, "once: {stderr}");
    assert!(
        stderr.contains("no core of its own: its lateness will rise"),
        "{stderr}"
    );
    assert_eq!(v["core_warning"]["predict"], cores, "{v}");
    assert_eq!(v["core_warning"]["cores"], cores, "{v}");
    assert!(v["core_warning"]["message"]
        .as_str()
        .unwrap()
        .contains("no core of its own"));
    let (v, stderr) = bench("wait");
    assert!(!stderr.contains("warning:"), "{stderr}");
    assert_eq!(v["core_warning"], Value::Null, "{v}");
}

/// `bench --compare-realtime` runs as ordinary threads, then real-time
/// (the broadcaster one priority above the receivers), and reports both.
#[test]
fn bench_compare_realtime_reports_both_runs() {
    if !is_root() {
        skip("SCHED_FIFO needs root here");
        return;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_tickcast"))
        .args([
            "bench",
            "--compare-realtime",
            "--receivers",
            "1",
            "--entities",
            "50",
            "--duration",
            "1s",
            "--warmup",
            "100ms",
            "--json",
            "-",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("ordinary") && stderr.contains("FIFO 11/10"),
        "{stderr}"
    );
    let v = json(&String::from_utf8(out.stdout).unwrap());
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{v}");
    assert_eq!(runs[0]["setup"]["realtime_priority"], Value::Null);
    assert_eq!(runs[1]["setup"]["realtime_priority"], 10);
    for r in runs {
        assert_eq!(r["total"]["figures"]["lost"], 0, "{r}");
        assert!(
            r["sender"]["figures"]["lateness_us"]["p99"].is_number(),
            "{r}"
        );
        assert!(
            r["total"]["figures"]["latency_us"]["p50"].is_number(),
            "{r}"
        );
    }
}

/// Compact flags the world cannot run with are one line and exit 2 before
/// anything is sent: a bound smaller than the simulated world's box (every
/// tick would be refused), a bound whose quanta overflow, a precision that
/// is not 1/N of a unit.
#[test]
fn compact_flags_that_cannot_run_are_refused_at_start() {
    let small: &[&str] = &["--encoding", "compact", "--bound", "10", "--duration", "1s"];
    let mut cases: Vec<(Vec<&str>, &str)> = ["broadcast", "demo", "bench"]
        .into_iter()
        .map(|cmd| {
            let args = std::iter::once(cmd).chain(small.iter().copied()).collect();
            (args, "smaller than the simulated world")
        })
        .collect();
    cases.push((
        vec![
            "broadcast",
            "--encoding",
            "compact",
            "--bound",
            "1e9",
            "--duration",
            "1s",
        ],
        "below 2^31",
    ));
    cases.push((
        vec!["broadcast", "--encoding", "compact", "--precision", "0.003"],
        "not 1/N of a world unit",
    ));
    for (args, want) in &cases {
        let done = run(args);
        assert_eq!(done.status.code(), Some(2), "{args:?}: {}", done.stderr);
        assert!(done.stderr.contains(want), "{args:?}: {}", done.stderr);
        assert!(
            !done.stderr.contains("panicked"),
            "{args:?}: {}",
            done.stderr
        );
    }
}
