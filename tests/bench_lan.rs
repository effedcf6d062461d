//! `tickcast bench --lan` end to end: the real binary builds a LAN of
//! network namespaces, runs a broadcaster and four receivers there as child
//! processes, and every receiver must get every packet the broadcaster sent,
//! by unicast and by multicast.
//!
//! Needs root and `ip netns`. Without them the test prints one line,
//! "skipped: needs root and ip netns", and passes; in CI (`CI=true`) it
//! fails instead. Each run's namespaces carry a run id of their own and an
//! ownership marker, so no lock is needed against `tests/netns.rs` or
//! another run.
// Tests, benches, examples and the binary own their clocks, sockets and files;
// the layer wall in clippy.toml is for the library core.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

#[path = "netns/proc.rs"]
mod proc;

use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_tickcast");
const SKIP: &str = "skipped: needs root and ip netns";

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
    bench_lan("unicast", &[]);
    bench_lan("multicast", &["multicast"]);
}
