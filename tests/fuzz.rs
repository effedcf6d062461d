//! The short form of the fuzz run that CI does (the full one is
//! `examples/fuzz.rs`), and the crashers it found, kept as regression cases
//! in `tests/regressions/` (one datagram per file, the vector format).
//!
//! Tests run with overflow checks on, so an arithmetic overflow anywhere in
//! the receive path is a panic here, not a silent wrap.
// Tests, benches, examples and the binary own their clocks, sockets and files;
// the layer wall in clippy.toml is for the library core.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::fs;
use std::path::PathBuf;

use tickcast::fuzz::{self, FuzzReport, Harness};
use tickcast::wire::{self, Body, Kind, Packet, SnapshotHead};

/// Inputs per seed in CI: about ten seconds in a debug build.
const SHORT_RUN: u64 = 200_000;

/// Every promise: nothing panics, the world holds no garbage, every decoded
/// packet re-encodes to its bytes, and every rejection is counted once as
/// malformed.
fn assert_clean(r: &FuzzReport) {
    assert_eq!(r.panics, 0, "{r}");
    assert_eq!(r.garbage_applied, 0, "{r}");
    assert_eq!(r.reencode_mismatch, 0, "{r}");
    assert_eq!(r.malformed_mismatch, 0, "{r}");
    assert_eq!(r.malformed, r.rejected_total(), "{r}");
    assert_eq!(r.datagrams, r.inputs, "{r}");
}

fn short_run(seed: u64) -> FuzzReport {
    let r = fuzz::run(SHORT_RUN, seed);
    assert_eq!(r.inputs, SHORT_RUN);
    // The run exercises what it claims to: both verdicts, every kind.
    assert!(r.decoded_ok > SHORT_RUN / 10, "{r}");
    assert!(r.rejected_total() > SHORT_RUN / 2, "{r}");
    assert!(r.kinds.values().all(|k| k.reached > 1_000), "{r}");
    // Version 2's lifecycle kinds and compact parts are decoded and
    // refused for their own reasons, compact parts place entities (their
    // keyframes, and deltas against keyframes held), and
    // version 1 datagrams still decode.
    for k in [Kind::Despawn, Kind::Roster, Kind::Compact] {
        assert!(r.kinds[&(k as u8)].decoded_ok > 1_000, "{r}");
    }
    for reason in ["BadLifecycle", "BadCompact"] {
        assert!(r.rejected.get(reason).is_some_and(|&n| n > 1_000), "{r}");
    }
    assert!(r.compact_deltas_placed > 1_000, "{r}");
    assert!(
        r.decoded_by_version.get(&1).is_some_and(|&n| n > 1_000),
        "{r}"
    );
    assert!(r.world_entities > 0, "{r}");
    r
}

#[test]
fn short_run_seed_1_keeps_every_promise() {
    assert_clean(&short_run(1));
}

#[test]
fn short_run_seed_2_keeps_every_promise() {
    assert_clean(&short_run(2));
}

fn regressions_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/regressions")
}

/// The datagram of one regression case, by file name.
fn regression(name: &str) -> Vec<u8> {
    let all = fuzz::load_vectors(&regressions_dir()).expect("tests/regressions");
    all.into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no {name} in tests/regressions"))
        .1
        .bytes
}

fn feed(datagrams: &[Vec<u8>]) -> FuzzReport {
    let mut h = Harness::new();
    for d in datagrams {
        h.feed(d);
    }
    h.finish()
}

#[test]
fn every_regression_case_keeps_the_decoder_promises() {
    let vectors = fuzz::load_vectors(&regressions_dir()).expect("tests/regressions");
    assert!(!vectors.is_empty());
    for (name, v) in vectors {
        let r = feed(&[v.bytes]);
        assert_eq!(r.inputs, 1, "{name}");
        assert_clean(&r);
    }
}

#[test]
fn ingest_transit_sent_ns_beyond_i64_max_does_not_panic() {
    let d = regression("ingest-sent-ns-beyond-i64-max.hex");
    let r = feed(&[d]);
    assert!(r.is_clean(), "{r}");
    assert_eq!((r.decoded_ok, r.world_entities), (1, 0));
}

/// Two valid snapshots whose transit times sit at opposite ends of i64, so
/// that the jitter's `transit - previous` overflows even when each transit
/// alone does not.
#[test]
fn ingest_transit_jitter_of_opposite_extremes_does_not_panic() {
    // Harness arrival times start at 1.7e18 ns and advance 1 µs per input.
    let arrival: u64 = 1_700_000_000_000_000_000;
    let snapshot = |seq: u32, sent_ns: u64| {
        let p = Packet {
            session: 5,
            seq,
            body: Body::Snapshot(SnapshotHead {
                tick: u64::from(seq) + 1,
                scheduled_ns: 0,
                sent_ns,
                part: 0,
                parts: 1,
            }),
        };
        wire::encode_to_vec(&p, &[]).unwrap()
    };
    // transit₀ = i64::MAX − 1; transit₁ ≈ arrival − i64::MAX: their difference is below i64::MIN.
    let first = arrival.wrapping_sub(i64::MAX as u64) + 1;
    let r = feed(&[snapshot(0, first), snapshot(1, i64::MAX as u64)]);
    assert!(r.is_clean(), "{r}");
    assert_eq!(r.decoded_ok, 2);
}

/// The fuzzer's corpus is the spec's vectors: every vector the spec
/// walks through (a `### \`name.hex\`` heading of `proto/PROTOCOL.md`)
/// is loaded, every file beside the README is a vector (a misnamed one
/// would be left out), and nothing loaded is unknown to the spec.
#[test]
fn every_spec_vector_is_in_the_corpus() {
    let loaded: Vec<String> = fuzz::load_vectors(&fuzz::vectors_dir())
        .expect("proto/vectors")
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    let spec = fs::read_to_string(fuzz::vectors_dir().join("../PROTOCOL.md")).unwrap();
    let mut in_spec: Vec<String> = spec
        .lines()
        .filter_map(|l| l.strip_prefix("### `")?.strip_suffix(".hex`"))
        .map(|name| format!("{name}.hex"))
        .collect();
    in_spec.sort();
    assert_eq!(
        loaded, in_spec,
        "the corpus against the spec's worked examples"
    );
    for entry in fs::read_dir(fuzz::vectors_dir()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            name == "README.md" || loaded.contains(&name),
            "{name} is in proto/vectors but not a vector"
        );
    }
    assert!(loaded.len() >= 12);
}

#[test]
fn the_spec_vectors_feed_clean() {
    // Feeding the spec's own vectors: every valid one decodes, every invalid
    // one is counted malformed, and the report says so.
    let vectors = fuzz::load_vectors(&fuzz::vectors_dir()).unwrap();
    let r = feed(
        &vectors
            .into_iter()
            .map(|(_, v)| v.bytes)
            .collect::<Vec<_>>(),
    );
    assert!(r.is_clean(), "{r}");
    assert!(r.decoded_ok >= 3 && r.rejected_total() >= 9, "{r}");
    // Among them despawns, rosters and compact parts, re-encoded with
    // their records (a compact part's written again bit for bit), and
    // version 1 datagrams, re-encoded as version 2.
    for k in [Kind::Despawn, Kind::Roster, Kind::Compact] {
        assert!(r.kinds[&(k as u8)].decoded_ok >= 2, "{r}");
    }
    assert!(r.kinds[&(Kind::Compact as u8)].decoded_ok >= 3, "{r}");
    assert!(r.decoded_by_version.get(&1).is_some_and(|&n| n >= 4), "{r}");
    assert_eq!(r.reencode_mismatch, 0, "{r}");
}
