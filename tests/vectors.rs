//! The spec's byte-exact vectors, `proto/vectors/*.hex` (format in
//! `proto/vectors/README.md`), checked against the codec.
//!
//! A valid vector must decode to exactly the fields and records (entities,
//! despawn records, id runs, compact records) its comments give, and the
//! packet built from those comments must encode to exactly its bytes (into a buffer pre-filled
//! with `0xa5`, so a byte the encoder skips shows). A vector of an older
//! protocol version (`# version: 1`) is decode-only: encoders write the
//! current version, so its packet must encode to its bytes with the current
//! version byte, which proves the older layout unchanged. An invalid vector
//! must be rejected for exactly the reason it names. Every kind the decoder
//! accepts needs a valid vector, so a new kind cannot ship without one.
//!
//! Everything an encoder needs is a directive: a sealed vector's key
//! (`# key:`), and a cookie's MAC inputs (`# cookie_secret:`,
//! `# cookie_address:`, `# cookie_client_id:`), so the sealed vectors and
//! the challenge are encoded from their directives alone.
// Tests, benches, examples and the binary own their clocks, sockets and files;
// the layer wall in clippy.toml is for the library core.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::collections::BTreeMap;
use std::fs;

use tickcast::core::subscription::cookie_mac;
use tickcast::fuzz::{load_vectors, vectors_dir};
use tickcast::wire::auth::{self, Key};
use tickcast::wire::bits::BitWriter;
use tickcast::wire::vectors::{Vector, Verdict};
use tickcast::wire::{
    self, Accept, Body, Challenge, CompactHead, Confirm, Cookie, DecodeError, DespawnHead, Entity,
    Goodbye, Kind, Packet, Payload, Ping, Pong, Record, Records, Refuse, RosterHead, SenderReport,
    SnapshotHead, Subscribe, Unsubscribe,
};

/// Every vector, as (file name, vector), parsed by the one parser of the
/// format (`tickcast::wire::vectors`, which checks the format itself:
/// offsets, lengths, directives).
fn load_all() -> Vec<(String, Vector)> {
    load_vectors(&vectors_dir()).unwrap_or_else(|e| panic!("proto/vectors: {e}"))
}

/// A valid vector's `# field:` values, taken one by one so that a missing
/// or left-over field is an error.
struct Fields<'a> {
    name: &'a str,
    map: BTreeMap<&'a str, u128>,
}

impl Fields<'_> {
    fn take128(&mut self, k: &str) -> u128 {
        self.map
            .remove(k)
            .unwrap_or_else(|| panic!("{}: missing `# field: {k} = ...`", self.name))
    }

    /// A field of at most `max`.
    fn take_max(&mut self, k: &str, max: u64) -> u64 {
        let val = self.take128(k);
        assert!(
            val <= u128::from(max),
            "{}: field {k} = {val} does not fit",
            self.name
        );
        val as u64
    }

    fn take(&mut self, k: &str) -> u64 {
        self.take_max(k, u64::MAX)
    }

    /// The cookie: `bucket`, and `mac`, its 16 bytes in datagram order
    /// written as one big-endian hex number.
    fn cookie(&mut self) -> Cookie {
        Cookie {
            bucket: self.take("bucket"),
            mac: self.take128("mac").to_be_bytes(),
        }
    }
}

/// The packet a valid vector's comments describe, built without the decoder.
fn expected_packet(name: &str, v: &Vector, kind: &str) -> Packet {
    let mut f = Fields {
        name,
        map: BTreeMap::new(),
    };
    for (k, val) in &v.fields {
        assert!(
            f.map.insert(k, *val).is_none(),
            "{name}: field {k} given twice"
        );
    }
    let session = f.take("session");
    let seq = f.take_max("seq", u32::MAX.into()) as u32;
    let mut count = |lines: usize, directive: &str| {
        let count = f.take("count");
        assert_eq!(
            count, lines as u64,
            "{name}: count vs `# {directive}:` lines"
        );
    };
    let body = match kind {
        "snapshot" => {
            count(v.entities.len(), "entity");
            Body::Snapshot(SnapshotHead {
                tick: f.take("tick"),
                scheduled_ns: f.take("scheduled_ns"),
                sent_ns: f.take("sent_ns"),
                part: f.take_max("part", u16::MAX.into()) as u16,
                parts: f.take_max("parts", u16::MAX.into()) as u16,
            })
        }
        "sender_report" => Body::SenderReport(SenderReport {
            sent_ns: f.take("sent_ns"),
            packets_sent: f.take("packets_sent"),
            ticks_sent: f.take("ticks_sent"),
            ticks_skipped: f.take("ticks_skipped"),
        }),
        "despawn" => {
            count(v.despawned.len(), "despawned");
            Body::Despawn(DespawnHead {
                tick: f.take("tick"),
                sent_ns: f.take("sent_ns"),
            })
        }
        "roster" => {
            count(v.runs.len(), "run");
            Body::Roster(RosterHead {
                tick: f.take("tick"),
                sent_ns: f.take("sent_ns"),
                first_id: f.take_max("first_id", u32::MAX.into()) as u32,
                last_id: f.take_max("last_id", u32::MAX.into()) as u32,
                part: f.take_max("part", u16::MAX.into()) as u16,
                parts: f.take_max("parts", u16::MAX.into()) as u16,
            })
        }
        "compact" => {
            let n = f.take_max("count", u16::MAX.into());
            assert_eq!(
                n,
                v.compact.len() as u64,
                "{name}: count vs `# keyframe:`, `# delta:` and `# delta-age:` lines"
            );
            Body::Compact(CompactHead {
                tick: f.take("tick"),
                scheduled_ns: f.take("scheduled_ns"),
                sent_ns: f.take("sent_ns"),
                part: f.take_max("part", u16::MAX.into()) as u16,
                parts: f.take_max("parts", u16::MAX.into()) as u16,
                quanta_per_unit: f.take_max("quanta_per_unit", u32::MAX.into()) as u32,
                keyframe_interval: f.take_max("keyframe_interval", u16::MAX.into()) as u16,
                count: n as u16,
            })
        }
        "goodbye" => Body::Goodbye(Goodbye {
            sent_ns: f.take("sent_ns"),
            final_seq: f.take_max("final_seq", u32::MAX.into()) as u32,
            packets_sent: f.take("packets_sent"),
        }),
        "subscribe" => Body::Subscribe(Subscribe {
            nonce: f.take("nonce"),
        }),
        "challenge" => Body::Challenge(Challenge {
            nonce: f.take("nonce"),
            cookie: f.cookie(),
        }),
        "confirm" => Body::Confirm(Confirm {
            nonce: f.take("nonce"),
            cookie: f.cookie(),
        }),
        "accept" => Body::Accept(Accept {
            nonce: f.take("nonce"),
            lease_ms: f.take_max("lease_ms", u32::MAX.into()) as u32,
        }),
        "refuse" => Body::Refuse(Refuse {
            nonce: f.take("nonce"),
            reason: f.take_max("reason", u8::MAX.into()) as u8,
        }),
        "unsubscribe" => Body::Unsubscribe(Unsubscribe {
            nonce: f.take("nonce"),
            cookie: f.cookie(),
        }),
        "ping" => Body::Ping(Ping {
            nonce: f.take("nonce"),
            sent_ns: f.take("sent_ns"),
        }),
        "pong" => Body::Pong(Pong {
            nonce: f.take("nonce"),
            ping_sent_ns: f.take("ping_sent_ns"),
            bc_recv_ns: f.take("bc_recv_ns"),
        }),
        other => panic!("{name}: unknown kind name {other:?}"),
    };
    assert!(
        f.map.is_empty(),
        "{name}: fields the kind does not have: {:?}",
        f.map
    );
    let records = [
        (Kind::Snapshot, v.entities.is_empty(), "entity"),
        (Kind::Despawn, v.despawned.is_empty(), "despawned"),
        (Kind::Roster, v.runs.is_empty(), "run"),
        (Kind::Compact, v.compact.is_empty(), "keyframe"),
    ];
    for (k, none, directive) in records {
        assert!(
            none || body.kind() == k,
            "{name}: `# {directive}:` lines on a {kind}"
        );
    }
    if !body.kind().is_sequenced() {
        assert_eq!(seq, 0, "{name}: a subscription kind carries seq 0");
    }
    Packet { session, seq, body }
}

/// The packet a valid vector's directives describe, its cookie's MAC
/// computed from the `cookie_` directives where it has them (and checked
/// against its `mac` field).
fn directed_packet(name: &str, v: &Vector, kind: &str) -> Packet {
    let mut packet = expected_packet(name, v, kind);
    if let Some(inputs) = v.cookie {
        let cookie = match &mut packet.body {
            Body::Challenge(Challenge { cookie, .. })
            | Body::Confirm(Confirm { cookie, .. })
            | Body::Unsubscribe(Unsubscribe { cookie, .. }) => cookie,
            _ => panic!("{name}: cookie inputs on a {kind}, which has no cookie"),
        };
        let mac = cookie_mac(
            &inputs.secret,
            inputs.address,
            inputs.client_id,
            cookie.bucket,
        );
        assert_eq!(mac, cookie.mac, "{name}: the MAC of the cookie_ directives");
        cookie.mac = mac;
    }
    packet
}

/// A valid vector encoded from its directives alone (with the current
/// version byte), sealed with its `# key:` if it has one: what an encoder
/// in any language must produce.
fn encode_from_directives(name: &str, v: &Vector) -> Vec<u8> {
    let kind = v.kind().expect("a valid vector");
    let packet = directed_packet(name, v, kind);
    let body = compact_body(&v.compact);
    let records = payload(v, packet.body.kind(), &body);
    let mut out = vec![0u8; wire::encoded_len(&packet.body, records.len()) + auth::TAG_LEN];
    let mut n = wire::encode_records(&packet, records, &mut out)
        .unwrap_or_else(|e| panic!("{name}: encode failed: {e:?}"));
    if let Some(key) = v.key.map(Key::from_bytes) {
        n = auth::seal_into(&key, &mut out, n);
    }
    out.truncate(n);
    out
}

/// Entities equal bit for bit (so -0.0 is not 0.0).
fn same_entities(a: &[Entity], b: &[Entity]) -> bool {
    let bits = |e: &Entity| (e.id, e.x.to_bits(), e.y.to_bits(), e.z.to_bits());
    a.len() == b.len() && a.iter().zip(b).all(|(a, b)| bits(a) == bits(b))
}

/// A vector's records, as the payload of a packet of `kind` (a compact
/// part's: `compact`, its records' bits from [`compact_body`]).
fn payload<'a>(v: &'a Vector, kind: Kind, compact: &'a [u8]) -> Payload<'a> {
    match kind {
        Kind::Snapshot => Payload::Entities(&v.entities),
        Kind::Despawn => Payload::Despawned(&v.despawned),
        Kind::Roster => Payload::Runs(&v.runs),
        Kind::Compact => Payload::Compact(compact),
        _ => Payload::None,
    }
}

/// The bit-packed section of a compact part holding `records`, written by
/// the reference writer, each record after the one before it.
fn compact_body(records: &[Record]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = BitWriter::new(&mut out);
    let mut prev = None;
    for r in records {
        wire::write_record(&mut w, prev, r);
        prev = Some(r.id());
    }
    w.finish();
    out
}

/// Records whose every buffer holds something, so a decode that does not
/// clear one shows.
fn stale_records() -> Records {
    Records {
        entities: vec![Entity::default(); 3],
        despawned: vec![wire::Despawned::default(); 2],
        runs: vec![wire::IdRun::default(); 2],
        compact: vec![
            wire::Record::Delta {
                id: 1,
                age: None,
                r: [0; 3]
            };
            2
        ],
    }
}

fn check_valid(name: &str, v: &Vector, kind: &str) {
    let want = directed_packet(name, v, kind);
    let key = v.key.map(Key::from_bytes);
    assert_eq!(want.body.kind().name(), kind, "{name}: kind name");
    assert_eq!(
        v.bytes.get(5).copied(),
        Some(want.body.kind() as u8),
        "{name}: kind byte vs `# kind:`"
    );
    // The version byte: the current one, or the older one `# version:` names.
    let version = v.version.unwrap_or(wire::VERSION);
    assert_eq!(
        v.bytes.get(4).copied(),
        Some(version),
        "{name}: version byte"
    );
    if v.version.is_some() {
        assert!(
            (wire::MIN_VERSION..wire::VERSION).contains(&version),
            "{name}: `# version:` names an older version the decoder reads"
        );
        assert!(
            key.is_none(),
            "{name}: an older-version vector is not sealed"
        );
    }

    // A sealed vector: a keyless decode refuses it, the key opens it, and
    // what is inside decodes as the comments say.
    let mut got = stale_records(); // stale content must be cleared
    let inner = match &key {
        Some(key) => {
            assert_eq!(
                wire::decode_records(&v.bytes, &mut got),
                Err(DecodeError::Sealed),
                "{name}: a keyless decode"
            );
            auth::open(key, &v.bytes).unwrap_or_else(|e| panic!("{name}: open failed: {e:?}"))
        }
        None => &v.bytes[..],
    };
    type Decode = fn(&[u8], &mut Vec<Entity>) -> Result<Packet, DecodeError>;
    type DecodeRecords = fn(&[u8], &mut Records) -> Result<Packet, DecodeError>;
    let (decode, decode_records): (Decode, DecodeRecords) = match key {
        Some(_) => (wire::decode_opened, wire::decode_records_opened),
        None => (wire::decode, wire::decode_records),
    };

    // Decode: every field and record as the comments say.
    let packet =
        decode_records(inner, &mut got).unwrap_or_else(|e| panic!("{name}: decode failed: {e:?}"));
    assert_eq!(packet, want, "{name}: decoded packet");
    assert!(
        same_entities(&got.entities, &v.entities),
        "{name}: decoded entities\n got {:?}\nwant {:?}",
        got.entities,
        v.entities
    );
    assert_eq!(
        got.despawned, v.despawned,
        "{name}: decoded despawn records"
    );
    assert_eq!(got.runs, v.runs, "{name}: decoded runs");
    assert_eq!(got.compact, v.compact, "{name}: decoded compact records");
    // The snapshot-only entry point agrees, and keeps entities only.
    let mut entities = vec![Entity::default(); 3];
    assert_eq!(decode(inner, &mut entities), Ok(want), "{name}: decode");
    assert!(
        same_entities(&entities, &v.entities),
        "{name}: decode's entities"
    );

    // Encode the packet built from the comments: the same bytes (with the
    // current version byte), and nothing written past them.
    let kind = want.body.kind();
    let body = compact_body(&v.compact);
    if kind == Kind::Compact {
        // The directives' records, written: the datagram's bit section.
        let fixed = wire::COMPACT_FIXED_LEN;
        assert_eq!(body[..], inner[fixed..], "{name}: the records' bits");
    }
    let records = payload(v, kind, &body);
    assert_eq!(
        wire::encoded_len(&want.body, records.len()),
        inner.len(),
        "{name}: encoded_len"
    );
    let mut bytes = v.bytes.clone();
    bytes[4] = wire::VERSION;
    let mut buf = vec![0xa5u8; v.bytes.len() + 64];
    let mut n = wire::encode_records(&want, records, &mut buf)
        .unwrap_or_else(|e| panic!("{name}: encode failed: {e:?}"));
    if let Some(key) = &key {
        n = auth::seal_into(key, &mut buf, n);
    }
    assert_eq!(n, bytes.len(), "{name}: encoded length");
    assert_eq!(buf[..n], bytes[..], "{name}: encoded bytes");
    assert!(
        buf[n..].iter().all(|&b| b == 0xa5),
        "{name}: wrote past the datagram"
    );
    if kind == Kind::Snapshot && key.is_none() {
        let e = wire::encode_to_vec(&want, &v.entities).expect("encode");
        assert_eq!(e, bytes, "{name}: encode_to_vec");
    }
}

fn check_invalid(name: &str, v: &Vector, want: &str) {
    let mut records = stale_records();
    let err: DecodeError = match wire::decode_records(&v.bytes, &mut records) {
        Ok(p) => panic!("{name}: decoded {p:?}, expected error {want}"),
        Err(e) => e,
    };
    assert_eq!(
        records,
        Records::default(),
        "{name}: a rejection keeps no record"
    );
    assert_eq!(
        wire::decode(&v.bytes, &mut Vec::new()),
        Err(err),
        "{name}: decode and decode_records agree"
    );
    let got = format!("{err:?}");
    let variant = |s: &str| s.split('(').next().unwrap().to_string();
    assert_eq!(variant(&got), variant(want), "{name}: rejection reason");
    if want.contains('(') {
        assert_eq!(got, want, "{name}: rejection detail");
    }
}

#[test]
fn every_vector_decodes_and_encodes_as_its_comments_say() {
    let vectors = load_all();
    for (name, v) in &vectors {
        match &v.verdict {
            Verdict::Valid(kind) => check_valid(name, v, kind),
            Verdict::Invalid(err) => check_invalid(name, v, err),
        }
    }
}

#[test]
fn sealed_vectors_and_the_challenge_encode_from_their_directives_alone() {
    let vectors = load_all();
    let get = |file: &str| {
        vectors
            .iter()
            .find(|(n, _)| n == file)
            .unwrap_or_else(|| panic!("{file} is gone"))
    };
    for file in [
        "snapshot-sealed.hex",
        "despawn-sealed.hex",
        "compact-sealed.hex",
    ] {
        let (name, v) = get(file);
        assert!(v.key.is_some(), "{name}: its key is a `# key:` directive");
        assert_eq!(encode_from_directives(name, v), v.bytes, "{name}");
    }
    let (name, v) = get("challenge.hex");
    assert!(v.cookie.is_some(), "{name}: its MAC inputs are directives");
    assert_eq!(encode_from_directives(name, v), v.bytes, "{name}");
    // Every sealed vector, and every one with cookie inputs, does too.
    for (name, v) in vectors.iter().filter(|(_, v)| v.kind().is_some()) {
        if v.version.is_none() {
            assert_eq!(encode_from_directives(name, v), v.bytes, "{name}");
        }
    }
}

#[test]
fn vector_names_say_what_they_hold() {
    for (name, v) in load_all() {
        let stem = name.trim_end_matches(".hex");
        // An older version's vector is `v<N>-` and the name it would have.
        let stem = match v.version {
            Some(n) => stem.strip_prefix(&format!("v{n}-")).unwrap_or_else(|| {
                panic!("{name}: a version {n} vector is named `v{n}-<kind>[-<what>].hex`")
            }),
            None => stem,
        };
        match &v.verdict {
            Verdict::Valid(kind) => assert!(
                stem == kind || stem.starts_with(&format!("{kind}-")),
                "{name}: a valid vector is named `[v<N>-]<kind>[-<what>].hex`"
            ),
            Verdict::Invalid(_) => assert!(
                stem.starts_with("invalid-"),
                "{name}: an invalid vector is named `invalid-<what>.hex`"
            ),
        }
    }
}

#[test]
fn directory_holds_enough_vectors() {
    let vectors = load_all();
    assert!(vectors.len() >= 12, "only {} vectors", vectors.len());
    let valid = vectors.iter().filter(|(_, v)| v.kind().is_some()).count();
    assert!(
        valid >= 3 && vectors.len() - valid >= 9,
        "{valid} valid of {}",
        vectors.len()
    );
}

#[test]
fn every_packet_kind_has_a_valid_vector() {
    // Probe every kind byte with a bare header: a kind the decoder knows
    // fails later (its body is missing) instead of as UnknownKind. So a kind
    // added to `wire::Kind` is found here without this test naming it.
    let vectors = load_all();
    let mut known = Vec::new();
    for b in 0..=u8::MAX {
        let mut header = [0u8; wire::HEADER_LEN];
        header[..4].copy_from_slice(&wire::MAGIC);
        header[4] = wire::VERSION;
        header[5] = b;
        match wire::decode(&header, &mut Vec::new()) {
            Err(DecodeError::UnknownKind(k)) => assert_eq!(k, b),
            _ => known.push(b),
        }
    }
    assert!(known.len() >= 13, "known kinds {known:?}");
    for b in known {
        assert!(
            vectors.iter().any(|(_, v)| v.kind().is_some()
                && v.version.is_none()
                && v.bytes.get(5) == Some(&b)),
            "packet kind {b} has no valid version {} vector in proto/vectors",
            wire::VERSION
        );
    }
}

#[test]
fn version_1_stays_readable_and_knows_only_its_kinds() {
    // A version 2 receiver takes a version 1 stream: a decode-only version 1
    // vector for every version 1 stream kind, and for a subscription kind.
    let vectors = load_all();
    let v1_kinds: Vec<u8> = vectors
        .iter()
        .filter(|(_, v)| v.kind().is_some() && v.version == Some(1))
        .map(|(_, v)| v.bytes[5])
        .collect();
    for k in Kind::ALL.into_iter().filter(|k| k.since_version() == 1) {
        if k.is_sequenced() {
            assert!(
                v1_kinds.contains(&(k as u8)),
                "no version 1 vector of {}",
                k.name()
            );
        }
    }
    assert!(
        v1_kinds
            .iter()
            .any(|&k| !Kind::from_u8(k).unwrap().is_sequenced()),
        "no version 1 vector of a subscription kind"
    );
    // Every kind a later version added is unknown in a version 1 datagram,
    // and a vector says so.
    for k in Kind::ALL.into_iter().filter(|k| k.since_version() > 1) {
        let want = format!("UnknownKind({})", k as u8);
        assert!(
            vectors.iter().any(|(_, v)| v.error() == Some(want.as_str())
                && v.bytes.get(4) == Some(&1)
                && v.bytes.get(5) == Some(&(k as u8))),
            "no version 1 vector of kind {} rejected as {want}",
            k.name()
        );
    }
    // And the versions on either side of those the decoder reads are refused.
    for version in [wire::MIN_VERSION - 1, wire::VERSION + 1] {
        let want = format!("UnsupportedVersion({version})");
        assert!(
            vectors
                .iter()
                .any(|(_, v)| v.error() == Some(want.as_str())),
            "no vector rejected as {want}"
        );
    }
}

#[test]
fn sizes_stated_in_the_spec_match_the_codec() {
    // proto/PROTOCOL.md, "Lengths" and "Splitting a tick into parts".
    assert_eq!(wire::HEADER_LEN, 20);
    assert_eq!(wire::SNAPSHOT_FIXED_LEN, 56);
    assert_eq!(wire::ENTITY_LEN, 16);
    assert_eq!(wire::SENDER_REPORT_LEN, 52);
    assert_eq!(wire::GOODBYE_LEN, 40);
    assert_eq!(wire::MAX_DATAGRAM, 65_507);
    assert_eq!(wire::DEFAULT_PAYLOAD_BUDGET, 1200);
    assert_eq!(
        wire::entities_per_part(wire::DEFAULT_PAYLOAD_BUDGET),
        Some(71)
    );
    assert_eq!(wire::entities_per_part(wire::MAX_DATAGRAM), Some(4090));
    assert_eq!(wire::MAX_COORD, 1.0e9);
    // "Despawn (kind 4)" and "Roster (kind 5)".
    assert_eq!(wire::DESPAWN_FIXED_LEN, 44);
    assert_eq!(wire::DESPAWN_RECORD_LEN, 12);
    assert_eq!(wire::ROSTER_FIXED_LEN, 56);
    assert_eq!(wire::ID_RUN_LEN, 8);
    assert_eq!(wire::DESPAWN_COPY_AGES, [0, 1, 2, 4, 8, 16, 32]);
    assert_eq!(
        wire::despawns_per_packet(wire::DEFAULT_PAYLOAD_BUDGET),
        Some(96)
    );
    assert_eq!(wire::despawns_per_packet(wire::MAX_DATAGRAM), Some(5455));
    assert_eq!(wire::runs_per_part(wire::DEFAULT_PAYLOAD_BUDGET), Some(143));
    assert_eq!(wire::runs_per_part(wire::MAX_DATAGRAM), Some(8181));
    // "Compact snapshot part (kind 6)": the fixed fields, and the longest
    // record (a 65-bit id gap, a 2-bit prefix, three 32-bit positions,
    // three 65-bit velocities).
    assert_eq!(wire::COMPACT_FIXED_LEN, 56);
    assert_eq!(wire::MAX_RECORD_BITS, 358);
    assert_eq!(wire::MAX_RECORDS, 65_535);
    // Sealed: the tag's 16 bytes come out of the budget.
    let sealed = wire::DEFAULT_PAYLOAD_BUDGET - wire::auth::TAG_LEN;
    assert_eq!(wire::entities_per_part(sealed), Some(70));
    assert_eq!(wire::despawns_per_packet(sealed), Some(95));
    assert_eq!(wire::runs_per_part(sealed), Some(141));
    // "Subscription kinds": every request that draws a reply is as long as
    // the longest reply it can draw.
    assert_eq!(wire::SUBSCRIBE_LEN, 52);
    assert_eq!(wire::CHALLENGE_LEN, 52);
    assert_eq!(wire::CONFIRM_LEN, 52);
    assert_eq!(wire::ACCEPT_LEN, 32);
    assert_eq!(wire::REFUSE_LEN, 29);
    assert_eq!(wire::UNSUBSCRIBE_LEN, 52);
    assert_eq!(wire::PING_LEN, 44);
    assert_eq!(wire::PONG_LEN, 44);
    assert_eq!(wire::MAX_REPLY_LEN, 52);
}

/// The spec's "Lengths and limits" table, read from `proto/PROTOCOL.md`
/// (not copied here): each row's bytes are the codec's length, and each
/// row whose derivation is a plain sum (`20 + 3 × 8`) adds up to them.
/// Its limits (the largest datagram, the most records a part holds) are
/// the codec's too.
#[test]
fn the_spec_lengths_table_is_the_codecs() {
    let spec = fs::read_to_string(vectors_dir().join("../PROTOCOL.md")).expect("PROTOCOL.md");
    let start = spec
        .find("## Lengths and limits")
        .expect("a lengths section");
    let section = &spec[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |e| e + 3)];
    let mut rows = BTreeMap::new();
    for line in section.lines().filter(|l| l.starts_with("| ")) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let Ok(bytes) = cells[1].parse::<usize>() else {
            continue; // the heading, and rows of a formula (`56 + 16n`)
        };
        // A derivation of numbers, `+` and `×` only is summed and checked.
        let terms: Option<Vec<usize>> = cells[2]
            .split(" + ")
            .map(|t| t.split(" × ").map(|f| f.parse::<usize>().ok()).product())
            .collect();
        if let Some(terms) = terms.filter(|_| !cells[2].is_empty()) {
            assert_eq!(terms.iter().sum::<usize>(), bytes, "row {line:?}");
        }
        rows.insert(cells[0].to_owned(), bytes);
    }
    let codec = [
        ("header", wire::HEADER_LEN),
        ("snapshot, fixed part", wire::SNAPSHOT_FIXED_LEN),
        ("entity record", wire::ENTITY_LEN),
        ("sender report", wire::SENDER_REPORT_LEN),
        ("goodbye", wire::GOODBYE_LEN),
        ("despawn, fixed part", wire::DESPAWN_FIXED_LEN),
        ("despawn record", wire::DESPAWN_RECORD_LEN),
        ("roster part, fixed part", wire::ROSTER_FIXED_LEN),
        ("id run", wire::ID_RUN_LEN),
        ("compact part, fixed part", wire::COMPACT_FIXED_LEN),
        ("cookie", wire::COOKIE_LEN),
        ("challenge, unsubscribe", wire::CHALLENGE_LEN),
        ("challenge, unsubscribe", wire::UNSUBSCRIBE_LEN),
        ("accept", wire::ACCEPT_LEN),
        ("refuse", wire::REFUSE_LEN),
        ("pong", wire::PONG_LEN),
        ("longest reply", wire::MAX_REPLY_LEN),
        ("subscribe", wire::SUBSCRIBE_LEN),
        ("confirm", wire::CONFIRM_LEN),
        ("ping", wire::PING_LEN),
    ];
    for (name, len) in codec {
        assert_eq!(rows.get(name), Some(&len), "the spec's {name:?} row");
    }
    assert_eq!(
        rows.len(),
        19,
        "a row the codec is not checked against: {rows:?}"
    );
    // Each limit as the spec writes it, made from the codec's value.
    let limits = [
        format!("**Largest datagram: {} bytes**", wire::MAX_DATAGRAM),
        format!(
            "= **{}**\n  entity records",
            wire::entities_per_part(wire::MAX_DATAGRAM).unwrap()
        ),
        format!(
            "= **{}** records",
            wire::despawns_per_packet(wire::MAX_DATAGRAM).unwrap()
        ),
        format!(
            "= **{}** runs",
            wire::runs_per_part(wire::MAX_DATAGRAM).unwrap()
        ),
        format!("**{}** records (its `count` is a u16)", wire::MAX_RECORDS),
    ];
    for text in limits {
        assert!(section.contains(&text), "the spec has no {text:?}");
    }
}

#[test]
fn spec_walks_through_every_vector_byte_for_byte() {
    // proto/PROTOCOL.md, "Worked examples": one section per vector whose
    // table rows `| offset | `bytes` | ...` spell out exactly its bytes.
    let spec = fs::read_to_string(vectors_dir().join("../PROTOCOL.md")).expect("PROTOCOL.md");
    for (name, v) in load_all() {
        let heading = format!("### `{name}`");
        let start = spec
            .find(&heading)
            .unwrap_or_else(|| panic!("PROTOCOL.md has no worked example for {name}"));
        let section = &spec[start + heading.len()..];
        let section = &section[..section.find("\n#").unwrap_or(section.len())];
        let mut bytes = Vec::new();
        for row in section.lines().filter(|l| l.starts_with("| ")) {
            let cells: Vec<&str> = row.split(" | ").collect();
            let (Ok(offset), Some(hex)) = (
                cells[0].trim_start_matches("| ").parse::<usize>(),
                cells
                    .get(1)
                    .and_then(|c| c.strip_prefix('`')?.strip_suffix('`')),
            ) else {
                continue; // the table's header row
            };
            assert_eq!(offset, bytes.len(), "{name}: PROTOCOL.md row {row:?}");
            for tok in hex.split_whitespace() {
                bytes.push(u8::from_str_radix(tok, 16).expect("hex in PROTOCOL.md"));
            }
        }
        assert_eq!(bytes, v.bytes, "{name}: PROTOCOL.md's table vs the file");
    }
}

/// PROTOCOL.md, "Worked examples", `compact-keyframes-and-deltas.hex`: a
/// receiver holding the keyframes the vector's deltas are against
/// reconstructs exactly the positions the spec works out, and one holding
/// another keyframe (an older window's, or not the one an age names)
/// places nothing.
#[test]
fn the_compact_vectors_deltas_reconstruct_as_the_spec_works_them() {
    use tickcast::core::compact::Decoder;
    let vectors = load_all();
    let (_, v) = vectors
        .iter()
        .find(|(n, _)| n == "compact-keyframes-and-deltas.hex")
        .expect("the vector");
    let mut records = Records::default();
    let Body::Compact(head) = wire::decode_records(&v.bytes, &mut records).unwrap().body else {
        panic!("a compact part")
    };
    let t = head.tick;
    // The keyframes held, as (tick, id, q, v): 38's second keyframe in its
    // window (its scheduled one was at t - 59), 40's and 41's scheduled ones.
    let held = [
        (t - 7, 38, [-12_000, 250, 0], [-40, 16, 0]),
        (t - 1, 40, [2000, 0, -500], [24, 0, -16]),
        (t - 2, 41, [-7, 1_000_000, 42], [-3, 0, 5]),
    ];
    let key_part = |tick| CompactHead {
        tick,
        count: 1,
        ..head
    };
    let mut dec = Decoder::new(1 << 20);
    let mut out = Vec::new();
    for (tick, id, q, v) in held {
        dec.decode(1, &key_part(tick), &[Record::Key { id, q, v }], &mut out);
    }
    out.clear();
    let o = dec.decode(1, &head, &records.compact, &mut out);
    assert_eq!((o.undecodable, o.rejected), (0, 0));
    let got: Vec<(u32, [f32; 3])> = out.iter().map(|e| (e.id, [e.x, e.y, e.z])).collect();
    assert_eq!(
        got,
        [
            (38, [-12.02, 0.261, 0.0]),
            (39, [1.5, -2.25, -0.375]),
            (40, [2.002, 0.0, -0.501]),
            (41, [-0.006, 999.999, 0.045]),
            (1000, [0.0, 5.0, -100.0]),
        ]
    );
    // Holding 38's scheduled keyframe (t - 59) but not the one of t - 7
    // the age names, and 40's of the window before (t - 61): both deltas
    // are undecodable, and only the keyframes are placed.
    let mut other = Decoder::new(1 << 20);
    for (tick, id) in [(t - 59, 38), (t - 61, 40)] {
        let key = Record::Key {
            id,
            q: [0; 3],
            v: [0; 3],
        };
        other.decode(1, &key_part(tick), &[key], &mut out);
    }
    out.clear();
    let o = other.decode(1, &head, &records.compact, &mut out);
    assert_eq!(o.undecodable, 3, "38, 40 and 41");
    let ids: Vec<u32> = out.iter().map(|e| e.id).collect();
    assert_eq!(ids, [39, 1000]);
}
