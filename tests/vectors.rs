//! The spec's byte-exact vectors, `proto/vectors/*.hex` (format in
//! `proto/vectors/README.md`), checked against the codec.
//!
//! A valid vector must decode to exactly the fields and entities its comments
//! give, and the packet built from those comments must encode to exactly its
//! bytes (into a buffer pre-filled with `0xa5`, so a byte the encoder skips
//! shows). An invalid vector must be rejected for exactly the reason it
//! names. Every kind the decoder accepts needs a valid vector, so a new kind
//! cannot ship without one.
// Tests, benches, examples and the binary own their clocks, sockets and files;
// the layer wall in clippy.toml is for the library core.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use tickcast::wire::auth::{self, Key, KEY_LEN};
use tickcast::wire::{
    self, Accept, Body, Challenge, Confirm, Cookie, DecodeError, Entity, Goodbye, Packet, Ping,
    Pong, Refuse, SenderReport, SnapshotHead, Subscribe, Unsubscribe,
};

/// What a vector file says about its bytes.
#[derive(Debug)]
enum Expect {
    /// `# kind: <name>`: decodes to a packet of this kind.
    Valid(String),
    /// `# expect: error <Variant>` or `<Variant>(<value>)`: rejected so.
    Invalid(String),
}

/// One parsed vector file.
#[derive(Debug)]
struct Vector {
    name: String,
    bytes: Vec<u8>,
    expect: Expect,
    /// `# field: name = value`, in file order (u128 so a 16-byte `mac` fits).
    fields: Vec<(String, u128)>,
    /// `# entity: id x y z`, in file order.
    entities: Vec<Entity>,
    /// `# key: <64 hex digits>`: the vector is sealed with this key
    /// (`auth::seal`); its fields are those of the packet inside.
    key: Option<Key>,
}

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("proto/vectors")
}

fn load_all() -> Vec<Vector> {
    let mut paths: Vec<PathBuf> = fs::read_dir(vectors_dir())
        .expect("proto/vectors exists")
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "hex"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let text = fs::read_to_string(p).unwrap_or_else(|e| panic!("{name}: {e}"));
            parse(&name, &text)
        })
        .collect()
}

/// Integers are decimal, or hexadecimal after `0x`.
fn parse_u64(name: &str, s: &str) -> u64 {
    u64::try_from(parse_u128(name, s)).unwrap_or_else(|_| panic!("{name}: {s:?} beyond u64"))
}

/// A field value: up to 128 bits, for the 16-byte `mac`.
fn parse_u128(name: &str, s: &str) -> u128 {
    let r = match s.strip_prefix("0x") {
        Some(hex) => u128::from_str_radix(hex, 16),
        None => s.parse(),
    };
    r.unwrap_or_else(|_| panic!("{name}: bad integer {s:?}"))
}

fn parse_f32(name: &str, s: &str) -> f32 {
    s.parse()
        .unwrap_or_else(|_| panic!("{name}: bad number {s:?}"))
}

fn parse(name: &str, text: &str) -> Vector {
    let mut bytes = Vec::new();
    let mut kind = None;
    let mut error = None;
    let mut length = None;
    let mut fields = Vec::new();
    let mut entities = Vec::new();
    let mut sealed_key = None;
    for (i, line) in text.lines().enumerate() {
        let at = format!("{name}:{}", i + 1);
        let line = line.trim();
        if let Some(comment) = line.strip_prefix('#') {
            let Some((key, value)) = comment.split_once(':') else {
                continue;
            };
            let value = value.trim();
            let key = key.trim();
            let directive = ["kind", "expect", "length", "field", "entity", "key"].contains(&key);
            assert!(
                !directive || bytes.is_empty(),
                "{at}: directives come before the bytes"
            );
            match key {
                "kind" => kind = Some(value.to_string()),
                "expect" => {
                    let e = value
                        .strip_prefix("error ")
                        .unwrap_or_else(|| panic!("{at}: expect must be `error <Variant>`"));
                    error = Some(e.trim().to_string());
                }
                "length" => length = Some(parse_u64(&at, value) as usize),
                "key" => {
                    assert_eq!(value.len(), 2 * KEY_LEN, "{at}: key must be 64 hex digits");
                    let bytes = std::array::from_fn(|i| {
                        u8::from_str_radix(&value[2 * i..2 * i + 2], 16)
                            .unwrap_or_else(|_| panic!("{at}: bad hex in key"))
                    });
                    sealed_key = Some(Key::from_bytes(bytes));
                }
                "field" => {
                    let (k, v) = value
                        .split_once('=')
                        .unwrap_or_else(|| panic!("{at}: field must be `name = value`"));
                    fields.push((k.trim().to_string(), parse_u128(&at, v.trim())));
                }
                "entity" => {
                    let w: Vec<&str> = value.split_whitespace().collect();
                    assert_eq!(w.len(), 4, "{at}: entity must be `id x y z`");
                    entities.push(Entity {
                        id: u32::try_from(parse_u64(&at, w[0]))
                            .unwrap_or_else(|_| panic!("{at}: id beyond u32")),
                        x: parse_f32(&at, w[1]),
                        y: parse_f32(&at, w[2]),
                        z: parse_f32(&at, w[3]),
                    });
                }
                _ => {} // free text that happens to hold a colon
            }
            continue;
        }
        let (hex, comment) = match line.split_once('#') {
            Some((h, c)) => (h, Some(c.trim())),
            None => (line, None),
        };
        // A trailing comment that starts with `@N` names the offset of the
        // line's first byte; a hand-edit that shifts the layout fails here.
        if let Some(off) = comment
            .and_then(|c| c.strip_prefix('@'))
            .map(|c| c.split(|ch: char| !ch.is_ascii_digit()).next().unwrap())
        {
            assert_eq!(
                parse_u64(&at, off) as usize,
                bytes.len(),
                "{at}: offset comment"
            );
        }
        for tok in hex.split_whitespace() {
            assert_eq!(
                tok.len(),
                2,
                "{at}: {tok:?} is not one byte in two hex digits"
            );
            bytes.push(
                u8::from_str_radix(tok, 16).unwrap_or_else(|_| panic!("{at}: bad hex {tok:?}")),
            );
        }
    }
    let expect = match (kind, error) {
        (Some(k), None) => Expect::Valid(k),
        (None, Some(e)) => Expect::Invalid(e),
        _ => panic!("{name}: needs exactly one of `# kind:` and `# expect: error`"),
    };
    if let Expect::Invalid(_) = expect {
        assert!(
            fields.is_empty() && entities.is_empty(),
            "{name}: an invalid vector has no decoded fields"
        );
    }
    let length = length.unwrap_or_else(|| panic!("{name}: missing `# length:`"));
    assert_eq!(bytes.len(), length, "{name}: bytes present vs `# length:`");
    Vector {
        name: name.to_string(),
        bytes,
        expect,
        fields,
        entities,
        key: sealed_key,
    }
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
fn expected_packet(v: &Vector, kind: &str) -> Packet {
    let mut f = Fields {
        name: &v.name,
        map: BTreeMap::new(),
    };
    for (k, val) in &v.fields {
        assert!(
            f.map.insert(k, *val).is_none(),
            "{}: field {k} given twice",
            v.name
        );
    }
    let session = f.take("session");
    let seq = f.take_max("seq", u32::MAX.into()) as u32;
    let body = match kind {
        "snapshot" => {
            let count = f.take("count");
            assert_eq!(
                count,
                v.entities.len() as u64,
                "{}: count vs `# entity:` lines",
                v.name
            );
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
        other => panic!("{}: unknown kind name {other:?}", v.name),
    };
    assert!(
        f.map.is_empty(),
        "{}: fields the kind does not have: {:?}",
        v.name,
        f.map
    );
    if !matches!(body, Body::Snapshot(_)) {
        assert!(
            v.entities.is_empty(),
            "{}: entities on a non-snapshot",
            v.name
        );
    }
    if !body.kind().is_sequenced() {
        assert_eq!(seq, 0, "{}: a subscription kind carries seq 0", v.name);
    }
    Packet { session, seq, body }
}

/// Entities equal bit for bit (so -0.0 is not 0.0).
fn same_entities(a: &[Entity], b: &[Entity]) -> bool {
    let bits = |e: &Entity| (e.id, e.x.to_bits(), e.y.to_bits(), e.z.to_bits());
    a.len() == b.len() && a.iter().zip(b).all(|(a, b)| bits(a) == bits(b))
}

fn check_valid(v: &Vector, kind: &str) {
    let want = expected_packet(v, kind);
    let name = &v.name;
    assert_eq!(want.body.kind().name(), kind, "{name}: kind name");
    assert_eq!(
        v.bytes.get(5).copied(),
        Some(want.body.kind() as u8),
        "{name}: kind byte vs `# kind:`"
    );

    // A sealed vector: a keyless decode refuses it, the key opens it, and
    // what is inside decodes as the comments say.
    let mut got_entities = vec![Entity::default(); 3]; // stale content must be cleared
    let inner = match &v.key {
        Some(key) => {
            assert_eq!(
                wire::decode(&v.bytes, &mut got_entities),
                Err(DecodeError::Sealed),
                "{name}: a keyless decode"
            );
            auth::open(key, &v.bytes).unwrap_or_else(|e| panic!("{name}: open failed: {e:?}"))
        }
        None => &v.bytes[..],
    };
    let decode = match v.key {
        Some(_) => wire::decode_opened,
        None => wire::decode,
    };

    // Decode: every field and entity as the comments say.
    let got =
        decode(inner, &mut got_entities).unwrap_or_else(|e| panic!("{name}: decode failed: {e:?}"));
    assert_eq!(got, want, "{name}: decoded packet");
    assert!(
        same_entities(&got_entities, &v.entities),
        "{name}: decoded entities\n got {got_entities:?}\nwant {:?}",
        v.entities
    );

    // Encode the packet built from the comments: the same bytes, and nothing
    // written past them.
    assert_eq!(
        wire::encoded_len(&want.body, v.entities.len()),
        inner.len(),
        "{name}: encoded_len"
    );
    let mut buf = vec![0xa5u8; v.bytes.len() + 64];
    let mut n = wire::encode(&want, &v.entities, &mut buf)
        .unwrap_or_else(|e| panic!("{name}: encode failed: {e:?}"));
    if let Some(key) = &v.key {
        n = auth::seal_into(key, &mut buf, n);
    }
    assert_eq!(n, v.bytes.len(), "{name}: encoded length");
    assert_eq!(buf[..n], v.bytes[..], "{name}: encoded bytes");
    assert!(
        buf[n..].iter().all(|&b| b == 0xa5),
        "{name}: wrote past the datagram"
    );
}

fn check_invalid(v: &Vector, want: &str) {
    let name = &v.name;
    let mut entities = Vec::new();
    let err: DecodeError = match wire::decode(&v.bytes, &mut entities) {
        Ok(p) => panic!("{name}: decoded {p:?}, expected error {want}"),
        Err(e) => e,
    };
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
    for v in &vectors {
        match &v.expect {
            Expect::Valid(kind) => check_valid(v, kind),
            Expect::Invalid(err) => check_invalid(v, err),
        }
    }
}

#[test]
fn vector_names_say_what_they_hold() {
    for v in load_all() {
        let stem = v.name.trim_end_matches(".hex");
        match &v.expect {
            Expect::Valid(kind) => assert!(
                stem == kind || stem.starts_with(&format!("{kind}-")),
                "{}: a valid vector is named `<kind>[-<what>].hex`",
                v.name
            ),
            Expect::Invalid(_) => assert!(
                stem.starts_with("invalid-"),
                "{}: an invalid vector is named `invalid-<what>.hex`",
                v.name
            ),
        }
    }
}

#[test]
fn directory_holds_enough_vectors() {
    let vectors = load_all();
    assert!(vectors.len() >= 12, "only {} vectors", vectors.len());
    let valid = vectors
        .iter()
        .filter(|v| matches!(v.expect, Expect::Valid(_)))
        .count();
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
    assert!(known.len() >= 11, "known kinds {known:?}");
    for b in known {
        assert!(
            vectors
                .iter()
                .any(|v| matches!(v.expect, Expect::Valid(_)) && v.bytes.get(5) == Some(&b)),
            "packet kind {b} has no valid vector in proto/vectors"
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

#[test]
fn spec_walks_through_every_vector_byte_for_byte() {
    // proto/PROTOCOL.md, "Worked examples": one section per vector whose
    // table rows `| offset | `bytes` | ...` spell out exactly its bytes.
    let spec = fs::read_to_string(vectors_dir().join("../PROTOCOL.md")).expect("PROTOCOL.md");
    for v in load_all() {
        let heading = format!("### `{}`", v.name);
        let start = spec
            .find(&heading)
            .unwrap_or_else(|| panic!("PROTOCOL.md has no worked example for {}", v.name));
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
            assert_eq!(offset, bytes.len(), "{}: PROTOCOL.md row {row:?}", v.name);
            for tok in hex.split_whitespace() {
                bytes.push(u8::from_str_radix(tok, 16).expect("hex in PROTOCOL.md"));
            }
        }
        assert_eq!(
            bytes, v.bytes,
            "{}: PROTOCOL.md's table vs the file",
            v.name
        );
    }
}
