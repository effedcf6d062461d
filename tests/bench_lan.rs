//! `tickcast bench --lan` end to end: the real binary builds a LAN of
//! network namespaces, runs a broadcaster and four receivers there as child
//! processes, and every receiver must get every packet the broadcaster sent,
//! by unicast and by multicast. With `--link-rate` the broadcaster's link is
//! shaped (tc's tbf): a stream well under the rate loses nothing and skips
//! nothing, one well over it falls behind or loses, and the report says
//! the rate, the shaper's counts and the bytes per entity update.
//!
//! Needs root and `ip netns` (and `tc` for the shaped link). Without them
//! each test prints one line, "skipped: needs ...", and passes; in CI
//! (`CI=true`) it fails instead. Each run's namespaces carry a run id of
//! their own and an ownership marker, so no lock is needed against
//! `tests/netns.rs` or another run; the runs here take turns
//! ([`one_at_a_time`]) only so that one's load does not make another skip
//! ticks on a machine of two cores.
// Tests, benches, examples and the binary own their clocks, sockets and files;
// the layer wall in clippy.toml is for the library core.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

#[path = "netns/proc.rs"]
mod proc;

use std::process::Command;
use std::sync::{Mutex, MutexGuard};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_tickcast");
const SKIP: &str = "skipped: needs root and ip netns";
const SKIP_TC: &str = "skipped: needs root, ip netns and tc (iproute2)";

/// Held by each test while its benches run: they take turns.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// False (after the skip line, or failing in CI) when this machine cannot
/// run the test.
fn can_run() -> bool {
    if tickcast::bench::lan::available() {
        return true;
    }
    proc::skip(SKIP);
    false
}

/// `flags` choose the mode: none for the default (unicast), or `multicast`.
fn bench_lan(mode: &str, flags: &[&str]) {
    let dir =
        std::env::temp_dir().join(format!("tickcast-bench-lan-{}-{mode}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("report.json");
    let out = Command::new(BIN)
        .args(["bench", "--lan"])
        .args(flags)
        .args(["--receivers", "4", "--entities", "1000"])
        .args(["--duration", "2s", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Regression (issue 10): the live lines of a LAN run stayed at zero.
    // They carry what the child processes last said: the broadcaster's
    // ticks and every receiver's counts.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let live = stderr
        .lines()
        .find(|l| l.contains("s/2s  sent "))
        .unwrap_or_else(|| panic!("no live line in {stderr}"));
    let number_after = |key: &str| -> u64 {
        let rest = live
            .split(key)
            .nth(1)
            .unwrap_or_else(|| panic!("{key} in {live:?}"));
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits
            .parse()
            .unwrap_or_else(|_| panic!("{key} in {live:?}"))
    };
    assert!(number_after("  sent ") > 0, "{live}");
    assert_eq!(number_after(" rx lost "), 0, "{live}");
    assert!(number_after(" rx lost 0/") > 0, "{live}");
    let text = std::fs::read_to_string(&json).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let r: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(r["setup"]["mode"], format!("lan-{mode}"));
    assert_eq!(r["interrupted"], false);
    let sent = r["sender"]["figures"]["packets_sent"].as_u64().unwrap();
    assert!(sent > 0);
    let receivers = r["receivers"].as_array().unwrap();
    assert_eq!(receivers.len(), 4);
    for rx in receivers {
        let f = &rx["figures"];
        assert_eq!(f["lost"], 0, "{rx}");
        assert_eq!(f["expected"].as_u64(), Some(sent), "{rx}");
        assert_eq!(f["received"].as_u64(), Some(sent), "{rx}");
    }
}

#[test]
fn bench_across_the_namespace_lan_loses_nothing() {
    if !can_run() {
        return;
    }
    let _turn = one_at_a_time();
    bench_lan("unicast", &[]);
    bench_lan("multicast", &["multicast"]);
}

/// `tickcast bench --lan ARGS --json FILE`, which must succeed: its report.
fn report(name: &str, args: &[&str]) -> Value {
    let dir =
        std::env::temp_dir().join(format!("tickcast-bench-lan-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("report.json");
    let out = Command::new(BIN)
        .args(["bench", "--lan"])
        .args(args)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let text = std::fs::read_to_string(&json).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn u64_at(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is not a u64 in {v}"))
}

fn f64_at(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number in {v}"))
}

/// The bytes per entity update of a run with `args`: more than nothing
/// whatever the encoding; with the default encoding (no encoding flag:
/// version 1's 16-byte records, a 56-byte snapshot header per 1200-byte
/// datagram) between 16 and 20, payload and with IPv4+UDP headers alike.
/// A compact encoding, chosen by a flag of its own, is held to the first
/// check only.
fn check_wire(r: &Value, args: &[&str]) {
    let s = &r["sender"];
    let payload = f64_at(s, "wire_bytes_per_entity_update");
    let ip = f64_at(s, "wire_bytes_per_entity_update_ip");
    assert!(0.0 < payload && payload < ip, "{s}");
    // One copy: datagrams per copy, each with 28 bytes of headers.
    let updates = u64_at(s, "entity_updates_per_copy") as f64;
    let datagrams = f64_at(s, "datagrams_per_copy");
    assert!(
        (ip - payload - 28.0 * datagrams / updates).abs() < 1e-9,
        "{s}"
    );
    let default_encoding = !args.iter().any(|a| a.contains("encoding"));
    if default_encoding {
        for b in [payload, ip] {
            assert!((16.0..=20.0).contains(&b), "version 1: {b} bytes: {s}");
        }
    }
}

/// What the run's receivers lost, all of them: counted lost, and never
/// seen (the tail of a stream whose goodbye did not arrive either).
fn missing(r: &Value) -> u64 {
    let sent = u64_at(&r["sender"]["figures"], "packets_sent");
    r["receivers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| sent.saturating_sub(u64_at(&x["figures"], "received")))
        .sum()
}

/// The shaped link is in the report: its rate, and the shaper's counts.
fn check_link(r: &Value, rate: &str, bit_per_s: u64) {
    assert_eq!(r["setup"]["link_rate"], rate, "{}", r["setup"]);
    let l = &r["link"];
    assert_eq!(l["rate"], rate, "{l}");
    assert_eq!(u64_at(l, "rate_bit_per_s"), bit_per_s, "{l}");
    assert_eq!(l["device"], "eth0", "{l}");
    // Every datagram of the one copy went through it (and the hosts' ARP).
    let sent = u64_at(&r["sender"]["figures"], "datagrams_sent");
    assert!(u64_at(l, "shaper_sent_packets") >= sent, "{l} vs {sent}");
}

/// 2000 entities at 60 Hz are about 17 Mbit/s in version 1: a 50mbit link
/// carries them with nothing lost, dropped or skipped. 8000 are about
/// 67 Mbit/s: the link cannot, and the report shows where it went (ticks
/// the broadcaster, blocked on the full link, skipped or sent late; loss;
/// shaper drops).
#[test]
fn bench_on_a_shaped_link_says_its_rate_and_what_it_carried() {
    if !can_run() {
        return;
    }
    if !tickcast::bench::lan::shaper::tc_available() {
        proc::skip(SKIP_TC);
        return;
    }
    let _turn = one_at_a_time();
    let under = [
        "multicast",
        "--receivers",
        "1",
        "--link-rate",
        "50mbit",
        "--entities",
        "2000",
        "--duration",
        "2s",
    ];
    let r = report("under", &under);
    check_link(&r, "50mbit", 50_000_000);
    check_wire(&r, &under);
    assert_eq!(r["setup"]["mode"], "lan-multicast");
    assert_eq!(u64_at(&r["sender"], "stream_copies"), 1);
    assert_eq!(u64_at(&r["link"], "shaper_drops"), 0, "{}", r["link"]);
    let b = &r["sender"]["figures"];
    assert_eq!(u64_at(b, "ticks_skipped"), 0, "{b}");
    assert_eq!(u64_at(b, "send_errors"), 0, "{b}");
    assert_eq!(missing(&r), 0, "{}", r["receivers"]);

    let over = [
        "--receivers",
        "1",
        "--link-rate",
        "50mbit",
        "--entities",
        "8000",
        "--duration",
        "2s",
    ];
    let r = report("over", &over);
    check_link(&r, "50mbit", 50_000_000);
    check_wire(&r, &over);
    assert_eq!(r["setup"]["mode"], "lan-unicast");
    let b = &r["sender"]["figures"];
    let (skipped, drops) = (
        u64_at(b, "ticks_skipped"),
        u64_at(&r["link"], "shaper_drops"),
    );
    assert!(
        skipped > 0 || drops > 0 || missing(&r) > 0,
        "67 Mbit/s through 50mbit, and nothing to show for it: {b} {}",
        r["link"]
    );
}

/// A link rate without tc is one line naming tc, and exit 1 (a missing
/// tool at run time, like `--lan` without `ip netns`), before any LAN is
/// built. PATH is a directory of the test's own holding only `ip`, so
/// `tc` is nowhere on it, wherever this system keeps it.
#[test]
fn a_link_rate_without_tc_says_so_in_one_line() {
    if !can_run() {
        return;
    }
    let ip = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("ip runs, so it is somewhere");
    let dir = std::env::temp_dir().join(format!("tickcast-no-tc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _ = std::fs::remove_file(dir.join("ip"));
    std::os::unix::fs::symlink(ip, dir.join("ip")).unwrap();
    let path = dir.display().to_string();
    let out = Command::new(BIN)
        .args(["bench", "--lan", "--link-rate", "1gbit", "--duration", "1s"])
        .env("PATH", &path)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.trim(),
        "tickcast: --link-rate needs tc (iproute2), which is not installed or not on PATH"
    );
}
