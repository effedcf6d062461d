//! The text format of the spec's byte-exact test vectors,
//! `proto/vectors/*.hex` (defined in `proto/vectors/README.md`): one
//! datagram per file, as hex byte pairs, with `# key: value` directives
//! saying what it must decode to or why it must be rejected, and, for a
//! datagram of an older protocol version, that it is only decoded.
//!
//! This module owns the format and nothing else: [`parse`] turns a file's
//! text into a [`Vector`] (its bytes and directives). It reads no file; the
//! one loader of the vector directories is `tickcast::fuzz::load_vectors`
//! (feature `fuzz`), and what a vector means for the codec is checked by
//! `tests/vectors.rs`.
//!
//! # What [`parse`] checks
//!
//! Everything the format itself promises, so a hand edit that breaks a
//! file fails here with the line it broke: every byte is two hex digits;
//! an `@N` offset comment names the offset of its line's first byte;
//! directives come before the bytes and are well formed; there is exactly
//! one of `kind` and `expect`, and one `length`, equal to the bytes present;
//! a compact record's values fit their fields (ids `u32`, ages `u32` of at
//! least 1, positions, velocities and residuals `i32`); an invalid vector
//! lists no fields, records, version, key or cookie inputs; the cookie inputs come all three or not at all. Whether the
//! fields are the right ones for the kind, and whether the version byte is
//! the one `# version:` names, is the codec's business, not the format's.

use std::net::SocketAddr;

use crate::wire::auth::KEY_LEN;
use crate::wire::{Despawned, Entity, IdRun, Record};

/// Bytes of a broadcaster's cookie secret (`# cookie_secret:`), as
/// `core::subscription::SECRET_LEN`.
pub const COOKIE_SECRET_LEN: usize = 32;

/// What a broadcaster computed a cookie's MAC from, so that a vector
/// carrying a cookie can be encoded from its directives alone: the MAC is
/// `core::subscription::cookie_mac(secret, address, client_id, bucket)`,
/// `bucket` being the vector's `# field: bucket`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CookieInputs {
    /// `# cookie_secret: <64 hex digits>`: the broadcaster's secret.
    pub secret: [u8; COOKIE_SECRET_LEN],
    /// `# cookie_address: <ip>:<port>`: the requester's address as the
    /// broadcaster saw it (IPv6 in brackets).
    pub address: SocketAddr,
    /// `# cookie_client_id: <u64>`: the requester's client id.
    pub client_id: u64,
}

/// What a vector says about its datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// `# kind: <name>`: a valid datagram of this packet kind (its name as
    /// [`Kind::name`](crate::wire::Kind::name) gives it).
    Valid(String),
    /// `# expect: error <Variant>` or `<Variant>(<value>)`: a receiver must
    /// reject it, for this reason (as written after `error `).
    Invalid(String),
}

/// One vector file, parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct Vector {
    /// The datagram: every byte of the file, in order.
    pub bytes: Vec<u8>,
    /// Valid (of which kind) or invalid (for which reason).
    pub verdict: Verdict,
    /// `# field: name = value`, in file order; values are unsigned and up to
    /// 128 bits, so the 16-byte `mac` (written big-endian) fits.
    pub fields: Vec<(String, u128)>,
    /// `# entity: id x y z`, in file order (a snapshot's records).
    pub entities: Vec<Entity>,
    /// `# despawned: id tick`, in file order (a despawn's records).
    pub despawned: Vec<Despawned>,
    /// `# run: first count`, in file order (a roster part's runs).
    pub runs: Vec<IdRun>,
    /// A compact part's records, in file order: `# keyframe: id qx qy qz
    /// vx vy vz`, `# delta: id rx ry rz` (against the scheduled keyframe)
    /// and `# delta-age: id age rx ry rz` (against the keyframe `age` ticks
    /// old).
    pub compact: Vec<Record>,
    /// `# version: N`: the datagram is of protocol version `N`, older than
    /// the one encoders write, so it is only decoded (an encoder writes the
    /// same fields with its own version byte). `None`: the version
    /// encoders write, [`VERSION`](crate::wire::VERSION).
    pub version: Option<u8>,
    /// `# key: <64 hex digits>`: the datagram is sealed with this
    /// pre-shared key ([`crate::wire::auth`]); the fields are those of the
    /// packet inside.
    pub key: Option<[u8; KEY_LEN]>,
    /// `# cookie_secret:`, `# cookie_address:` and `# cookie_client_id:`:
    /// what the vector's cookie MAC was computed from.
    pub cookie: Option<CookieInputs>,
}

impl Vector {
    /// The packet kind's name of a valid vector; `None` for an invalid one.
    pub fn kind(&self) -> Option<&str> {
        match &self.verdict {
            Verdict::Valid(kind) => Some(kind),
            Verdict::Invalid(_) => None,
        }
    }

    /// The expected rejection of an invalid vector (`Truncated`,
    /// `UnsupportedVersion(3)`, ...); `None` for a valid one.
    pub fn error(&self) -> Option<&str> {
        match &self.verdict {
            Verdict::Valid(_) => None,
            Verdict::Invalid(error) => Some(error),
        }
    }
}

/// A directive's key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Directive {
    /// `# kind:`
    Kind,
    /// `# expect:`
    Expect,
    /// `# length:`
    Length,
    /// `# field:`
    Field,
    /// `# entity:`
    Entity,
    /// `# key:`
    Key,
    /// `# despawned:`
    Despawned,
    /// `# run:`
    Run,
    /// `# keyframe:`
    Keyframe,
    /// `# delta:`
    Delta,
    /// `# delta-age:`
    DeltaAge,
    /// `# version:`
    Version,
    /// `# cookie_secret:`
    CookieSecret,
    /// `# cookie_address:`
    CookieAddress,
    /// `# cookie_client_id:`
    CookieClientId,
}

impl Directive {
    /// The directive for a comment's key, if it is one.
    fn from_key(key: &str) -> Option<Directive> {
        Some(match key {
            "kind" => Directive::Kind,
            "expect" => Directive::Expect,
            "length" => Directive::Length,
            "field" => Directive::Field,
            "entity" => Directive::Entity,
            "key" => Directive::Key,
            "despawned" => Directive::Despawned,
            "run" => Directive::Run,
            "keyframe" => Directive::Keyframe,
            "delta" => Directive::Delta,
            "delta-age" => Directive::DeltaAge,
            "version" => Directive::Version,
            "cookie_secret" => Directive::CookieSecret,
            "cookie_address" => Directive::CookieAddress,
            "cookie_client_id" => Directive::CookieClientId,
            _ => return None,
        })
    }

    /// The key as written in a file.
    pub fn name(self) -> &'static str {
        match self {
            Directive::Kind => "kind",
            Directive::Expect => "expect",
            Directive::Length => "length",
            Directive::Field => "field",
            Directive::Entity => "entity",
            Directive::Key => "key",
            Directive::Despawned => "despawned",
            Directive::Run => "run",
            Directive::Keyframe => "keyframe",
            Directive::Delta => "delta",
            Directive::DeltaAge => "delta-age",
            Directive::Version => "version",
            Directive::CookieSecret => "cookie_secret",
            Directive::CookieAddress => "cookie_address",
            Directive::CookieClientId => "cookie_client_id",
        }
    }
}

/// Why a vector's text is not in the format. Lines are 1-based.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VectorError {
    /// A byte line holds something other than pairs of hex digits.
    #[error("line {line}: not hexadecimal byte pairs")]
    NotHex {
        /// The line.
        line: usize,
    },
    /// An `@N` comment names another offset than its line's first byte's.
    #[error("line {line}: the comment says @{stated}, but the line starts at byte {actual}")]
    Offset {
        /// The line.
        line: usize,
        /// The offset the comment gives.
        stated: usize,
        /// Where the line's first byte is.
        actual: usize,
    },
    /// A directive after the first byte.
    #[error("line {line}: directives come before the bytes")]
    DirectiveAfterBytes {
        /// The line.
        line: usize,
    },
    /// A directive whose value is not as the format defines it.
    #[error("line {line}: malformed `# {}:` directive", directive.name())]
    BadDirective {
        /// The line.
        line: usize,
        /// Which directive.
        directive: Directive,
    },
    /// A directive that may be given once was given again.
    #[error("line {line}: `# {}:` given twice", directive.name())]
    Repeated {
        /// The line.
        line: usize,
        /// Which directive.
        directive: Directive,
    },
    /// Neither `# kind:` nor `# expect:`, or both.
    #[error("needs exactly one of `# kind:` and `# expect: error`")]
    Verdict,
    /// No `# length:`.
    #[error("missing `# length:`")]
    NoLength,
    /// `# length:` differs from the bytes present.
    #[error("`# length: {stated}` but the file holds {actual} bytes")]
    Length {
        /// The length the directive gives.
        stated: usize,
        /// The bytes present.
        actual: usize,
    },
    /// An invalid vector with `# field:`, `# entity:`, `# despawned:`,
    /// `# run:`, compact record (`# keyframe:`, `# delta:`,
    /// `# delta-age:`), `# version:`, `# key:` or cookie input lines.
    #[error("an invalid vector has no decoded fields, records, version, key or cookie inputs")]
    FieldsOnInvalid,
    /// Some but not all of `# cookie_secret:`, `# cookie_address:` and
    /// `# cookie_client_id:`.
    #[error("the cookie inputs come together: `# cookie_secret:`, `# cookie_address:` and `# cookie_client_id:`")]
    CookieInputs,
}

/// An unsigned integer, decimal or hexadecimal after `0x`.
fn integer(s: &str) -> Option<u128> {
    let digits_ok = |d: &str, hex: bool| {
        !d.is_empty()
            && d.chars().all(|c| {
                if hex {
                    c.is_ascii_hexdigit()
                } else {
                    c.is_ascii_digit()
                }
            })
    };
    match s.strip_prefix("0x") {
        Some(h) if digits_ok(h, true) => u128::from_str_radix(h, 16).ok(),
        None if digits_ok(s, false) => s.parse().ok(),
        _ => None,
    }
}

/// One byte written as exactly two hex digits.
fn byte(tok: &str) -> Option<u8> {
    let b = tok.as_bytes();
    (b.len() == 2 && b.iter().all(u8::is_ascii_hexdigit))
        .then(|| u8::from_str_radix(tok, 16).ok())
        .flatten()
}

/// The directives seen so far.
#[derive(Default)]
struct Directives {
    kind: Option<String>,
    expect: Option<String>,
    length: Option<usize>,
    fields: Vec<(String, u128)>,
    entities: Vec<Entity>,
    despawned: Vec<Despawned>,
    runs: Vec<IdRun>,
    compact: Vec<Record>,
    version: Option<u8>,
    key: Option<[u8; KEY_LEN]>,
    cookie_secret: Option<[u8; COOKIE_SECRET_LEN]>,
    cookie_address: Option<SocketAddr>,
    cookie_client_id: Option<u64>,
}

impl Directives {
    /// Whether any directive only a valid vector may have was given.
    fn decodes_to_something(&self) -> bool {
        !(self.fields.is_empty()
            && self.entities.is_empty()
            && self.despawned.is_empty()
            && self.runs.is_empty()
            && self.compact.is_empty()
            && self.version.is_none()
            && self.key.is_none()
            && self.cookie_secret.is_none()
            && self.cookie_address.is_none()
            && self.cookie_client_id.is_none())
    }

    /// The cookie inputs, if all three were given; an error if only some.
    fn cookie(&self) -> Result<Option<CookieInputs>, VectorError> {
        match (
            self.cookie_secret,
            self.cookie_address,
            self.cookie_client_id,
        ) {
            (Some(secret), Some(address), Some(client_id)) => Ok(Some(CookieInputs {
                secret,
                address,
                client_id,
            })),
            (None, None, None) => Ok(None),
            _ => Err(VectorError::CookieInputs),
        }
    }
}

/// `value` as exactly `N` bytes written as `2 × N` hex digits.
fn hex_bytes<const N: usize>(value: &str) -> Option<[u8; N]> {
    let b = value.as_bytes();
    if b.len() != 2 * N || !b.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    Some(std::array::from_fn(|i| {
        u8::from_str_radix(&value[2 * i..2 * i + 2], 16).unwrap_or_default()
    }))
}

/// Stores a directive that may be given once.
fn once<T>(slot: &mut Option<T>, v: T, repeated: VectorError) -> Result<(), VectorError> {
    match slot.replace(v) {
        Some(_) => Err(repeated),
        None => Ok(()),
    }
}

/// A signed integer that fits an `i32`: an unsigned one (decimal, or
/// hexadecimal after `0x`), with a `-` before it for a negative one.
fn signed(s: &str) -> Option<i32> {
    match s.strip_prefix('-') {
        Some(m) => i32::try_from(-i64::try_from(integer(m)?).ok()?).ok(),
        None => i32::try_from(integer(s)?).ok(),
    }
}

/// `value` as an id (`u32`), `ages` ages (`u32`, at least 1), then
/// exactly `N` signed integers (`i32`).
fn compact_record<const N: usize>(
    value: &str,
    ages: usize,
) -> Option<(u32, Option<u32>, [i32; N])> {
    let w: Vec<&str> = value.split_whitespace().collect();
    if w.len() != 1 + ages + N {
        return None;
    }
    let id = u32::try_from(integer(w[0])?).ok()?;
    let age = match ages {
        0 => None,
        _ => Some(u32::try_from(integer(w[1])?).ok().filter(|&a| a >= 1)?),
    };
    let mut v = [0i32; N];
    for (slot, tok) in v.iter_mut().zip(&w[1 + ages..]) {
        *slot = signed(tok)?;
    }
    Some((id, age, v))
}

/// `value` as exactly two unsigned integers that fit `A` and `B`.
fn two<A: TryFrom<u128>, B: TryFrom<u128>>(value: &str) -> Option<(A, B)> {
    let w: Vec<&str> = value.split_whitespace().collect();
    let [a, b] = w[..] else {
        return None;
    };
    Some((
        A::try_from(integer(a)?).ok()?,
        B::try_from(integer(b)?).ok()?,
    ))
}

impl Directives {
    /// Records directive `d` with `value` (trimmed), from `line`.
    fn take(&mut self, line: usize, d: Directive, value: &str) -> Result<(), VectorError> {
        let bad = VectorError::BadDirective { line, directive: d };
        let repeated = VectorError::Repeated { line, directive: d };
        match d {
            Directive::Kind => {
                if value.is_empty() {
                    return Err(bad);
                }
                if self.kind.replace(value.to_string()).is_some() {
                    return Err(repeated);
                }
            }
            Directive::Expect => {
                let error = value.strip_prefix("error ").map(str::trim);
                let error = error.filter(|e| !e.is_empty()).ok_or(bad)?;
                if self.expect.replace(error.to_string()).is_some() {
                    return Err(repeated);
                }
            }
            Directive::Length => {
                let n = integer(value)
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or(bad)?;
                if self.length.replace(n).is_some() {
                    return Err(repeated);
                }
            }
            Directive::Field => {
                let (name, v) = value.split_once('=').ok_or(bad)?;
                let (name, v) = (name.trim(), integer(v.trim()).ok_or(bad)?);
                if name.is_empty() {
                    return Err(bad);
                }
                self.fields.push((name.to_string(), v));
            }
            Directive::Entity => {
                let w: Vec<&str> = value.split_whitespace().collect();
                let [id, x, y, z] = w[..] else {
                    return Err(bad);
                };
                let id = integer(id).and_then(|n| u32::try_from(n).ok());
                let coord = |s: &str| s.parse::<f32>().ok();
                let (Some(id), Some(x), Some(y), Some(z)) = (id, coord(x), coord(y), coord(z))
                else {
                    return Err(bad);
                };
                self.entities.push(Entity { id, x, y, z });
            }
            Directive::Despawned => {
                let (id, tick) = two(value).ok_or(bad)?;
                self.despawned.push(Despawned { id, tick });
            }
            Directive::Run => {
                let (first, count) = two(value).ok_or(bad)?;
                self.runs.push(IdRun { first, count });
            }
            Directive::Keyframe => {
                let (id, _, qv) = compact_record::<6>(value, 0).ok_or(bad)?;
                let (q, v) = ([qv[0], qv[1], qv[2]], [qv[3], qv[4], qv[5]]);
                self.compact.push(Record::Key { id, q, v });
            }
            Directive::Delta | Directive::DeltaAge => {
                let ages = usize::from(d == Directive::DeltaAge);
                let (id, age, r) = compact_record::<3>(value, ages).ok_or(bad)?;
                self.compact.push(Record::Delta { id, age, r });
            }
            Directive::Version => {
                let v = integer(value)
                    .and_then(|n| u8::try_from(n).ok())
                    .ok_or(bad)?;
                if self.version.replace(v).is_some() {
                    return Err(repeated);
                }
            }
            Directive::Key => once(&mut self.key, hex_bytes(value).ok_or(bad)?, repeated)?,
            Directive::CookieSecret => {
                once(
                    &mut self.cookie_secret,
                    hex_bytes(value).ok_or(bad)?,
                    repeated,
                )?;
            }
            Directive::CookieAddress => {
                let address = value.parse().map_err(|_| bad)?;
                once(&mut self.cookie_address, address, repeated)?;
            }
            Directive::CookieClientId => {
                let id = integer(value)
                    .and_then(|n| u64::try_from(n).ok())
                    .ok_or(bad)?;
                once(&mut self.cookie_client_id, id, repeated)?;
            }
        }
        Ok(())
    }
}

/// Parses one vector file's text (see the module docs for what is checked).
pub fn parse(text: &str) -> Result<Vector, VectorError> {
    let mut bytes = Vec::new();
    let mut d = Directives::default();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = line.trim();
        if let Some(comment) = line.strip_prefix('#') {
            // `# key: value` with a known key is a directive; any other
            // comment is free text, colon or not.
            let directive = comment
                .split_once(':')
                .and_then(|(k, v)| Some((Directive::from_key(k.trim())?, v.trim())));
            if let Some((directive, value)) = directive {
                if !bytes.is_empty() {
                    return Err(VectorError::DirectiveAfterBytes { line: line_no });
                }
                d.take(line_no, directive, value)?;
            }
            continue;
        }
        let (hex, comment) = match line.split_once('#') {
            Some((h, c)) => (h, Some(c.trim())),
            None => (line, None),
        };
        // `@N` names the offset of the line's first byte.
        if let Some(stated) = comment.and_then(|c| c.strip_prefix('@')) {
            let digits = stated
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap_or("");
            if let Ok(stated) = digits.parse::<usize>() {
                if stated != bytes.len() {
                    return Err(VectorError::Offset {
                        line: line_no,
                        stated,
                        actual: bytes.len(),
                    });
                }
            }
        }
        for tok in hex.split_whitespace() {
            bytes.push(byte(tok).ok_or(VectorError::NotHex { line: line_no })?);
        }
    }
    let decodes_to_something = d.decodes_to_something();
    let cookie = d.cookie();
    let verdict = match (d.kind, d.expect) {
        (Some(kind), None) => Verdict::Valid(kind),
        (None, Some(error)) => Verdict::Invalid(error),
        _ => return Err(VectorError::Verdict),
    };
    if matches!(verdict, Verdict::Invalid(_)) && decodes_to_something {
        return Err(VectorError::FieldsOnInvalid);
    }
    let cookie = cookie?;
    let stated = d.length.ok_or(VectorError::NoLength)?;
    if stated != bytes.len() {
        return Err(VectorError::Length {
            stated,
            actual: bytes.len(),
        });
    }
    Ok(Vector {
        bytes,
        verdict,
        fields: d.fields,
        entities: d.entities,
        despawned: d.despawned,
        runs: d.runs,
        compact: d.compact,
        version: d.version,
        key: d.key,
        cookie,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "\
# tickcast wire protocol v2 test vector; format: proto/vectors/README.md
# Free text: with a colon, and a key that is no directive.
# kind: snapshot
# length: 4
# version: 1
# field: seq = 0xfffffffe
# field: mac = 0x000102030405060708090a0b0c0d0e0f
# entity: 7 1.5 -2.25 -0.0
# despawned: 4294967295 0x100000005
# despawned: 0 0
# run: 0x80000000 2
# keyframe: 39 1500 -2250 -2147483648 16 0 -1
# delta: 40 0 -0 2147483647
# delta-age: 0xffffffff 7 -300 0x9c40 0
# key: 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
# cookie_secret: 1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100
# cookie_address: [2001:db8::1]:50000
# cookie_client_id: 0x8877665544332211
54 4b  # @0 magic

43 53 # @2
";

    #[test]
    fn reads_bytes_and_every_directive() {
        let v = parse(VALID).unwrap();
        assert_eq!(v.bytes, b"TKCS");
        assert_eq!(v.verdict, Verdict::Valid("snapshot".into()));
        assert_eq!((v.kind(), v.error()), (Some("snapshot"), None));
        assert_eq!(
            v.fields,
            [
                ("seq".to_string(), 0xffff_fffe),
                ("mac".to_string(), 0x0001_0203_0405_0607_0809_0a0b_0c0d_0e0f),
            ]
        );
        assert_eq!(v.entities.len(), 1);
        let e = v.entities[0];
        assert_eq!((e.id, e.x, e.y), (7, 1.5, -2.25));
        assert_eq!(e.z.to_bits(), (-0.0f32).to_bits(), "−0.0 stays negative");
        let key = v.key.unwrap();
        assert_eq!((key[0], key[31]), (0x00, 0x1f));
        assert_eq!(
            v.despawned,
            [
                Despawned {
                    id: u32::MAX,
                    tick: 0x1_0000_0005
                },
                Despawned { id: 0, tick: 0 }
            ]
        );
        assert_eq!(
            v.runs,
            [IdRun {
                first: 0x8000_0000,
                count: 2
            }]
        );
        assert_eq!(
            v.compact,
            [
                Record::Key {
                    id: 39,
                    q: [1500, -2250, i32::MIN],
                    v: [16, 0, -1]
                },
                Record::Delta {
                    id: 40,
                    age: None,
                    r: [0, 0, i32::MAX]
                },
                Record::Delta {
                    id: u32::MAX,
                    age: Some(7),
                    r: [-300, 40_000, 0]
                },
            ]
        );
        assert_eq!(v.version, Some(1));
        let cookie = v.cookie.unwrap();
        assert_eq!((cookie.secret[0], cookie.secret[31]), (0x1f, 0x00));
        assert_eq!(cookie.address, "[2001:db8::1]:50000".parse().unwrap());
        assert_eq!(cookie.client_id, 0x8877_6655_4433_2211);
    }

    #[test]
    fn reads_an_invalid_vector_and_an_empty_one() {
        let v = parse("# expect: error UnsupportedVersion(3)\n# length: 1\n03\n").unwrap();
        assert_eq!(v.verdict, Verdict::Invalid("UnsupportedVersion(3)".into()));
        assert_eq!((v.kind(), v.error()), (None, Some("UnsupportedVersion(3)")));
        let empty = parse("# expect: error TooShort\n# length: 0\n").unwrap();
        assert!(empty.bytes.is_empty());
    }

    #[test]
    fn every_broken_rule_is_named_with_its_line() {
        let head = "# kind: x\n# length: 2\n";
        let cases: [(String, VectorError); 29] = [
            (format!("{head}54 4\n"), VectorError::NotHex { line: 3 }),
            (format!("{head}54 +4\n"), VectorError::NotHex { line: 3 }),
            (format!("{head}544b\n"), VectorError::NotHex { line: 3 }),
            (
                format!("{head}54 # @0\n4b # @2\n"),
                VectorError::Offset {
                    line: 4,
                    stated: 2,
                    actual: 1,
                },
            ),
            (
                format!("{head}54 4b\n# length: 2\n"),
                VectorError::DirectiveAfterBytes { line: 4 },
            ),
            (
                format!("{head}# kind: y\n54 4b\n"),
                VectorError::Repeated {
                    line: 3,
                    directive: Directive::Kind,
                },
            ),
            (
                "# expect: Truncated\n# length: 0\n".into(),
                VectorError::BadDirective {
                    line: 1,
                    directive: Directive::Expect,
                },
            ),
            (
                format!("{head}# field: seq 3\n54 4b\n"),
                VectorError::BadDirective {
                    line: 3,
                    directive: Directive::Field,
                },
            ),
            (
                format!("{head}# entity: 1 2 3\n54 4b\n"),
                VectorError::BadDirective {
                    line: 3,
                    directive: Directive::Entity,
                },
            ),
            (
                format!("{head}# despawned: 1\n54 4b\n"),
                VectorError::BadDirective {
                    line: 3,
                    directive: Directive::Despawned,
                },
            ),
            (
                format!("{head}# despawned: 0x100000000 1\n54 4b\n"),
                VectorError::BadDirective {
                    line: 3,
                    directive: Directive::Despawned,
                },
            ),
            (
                format!("{head}# run: 1 2 3\n54 4b\n"),
                VectorError::BadDirective {
                    line: 3,
                    directive: Directive::Run,
                },
            ),
            (
                format!("{head}# keyframe: 1 0 0 0 0 0\n54 4b\n"),
                VectorError::BadDirective {
                    line: 3,
                    directive: Directive::Keyframe,
                },
            ),
            (
                format!("{head}# keyframe: 1 0 0 2147483648 0 0 0\n54 4b\n"),
                VectorError::BadDirective {
                    line: 3,
                    directive: Directive::Keyframe,
                },
            ),
            (
                format!("{head}# delta: -1 0 0 0\n54 4b\n"),
                VectorError::BadDirective {
                    line: 3,
                    directive: Directive::Delta,
                },
            ),
            (
                format!("{head}# delta-age: 1 0 0 0 0\n54 4b\n"),
                VectorError::BadDirective {
                    line: 3,
                    directive: Directive::DeltaAge,
                },
            ),
            (
                format!("{head}# delta-age: 1 1 0 0\n54 4b\n"),
                VectorError::BadDirective {
                    line: 3,
                    directive: Directive::DeltaAge,
                },
            ),
            (
                format!("{head}# version: 256\n54 4b\n"),
                VectorError::BadDirective {
                    line: 3,
                    directive: Directive::Version,
                },
            ),
            (
                format!("{head}# version: one\n54 4b\n"),
                VectorError::BadDirective {
                    line: 3,
                    directive: Directive::Version,
                },
            ),
            (
                format!("{head}# version: 1\n# version: 1\n54 4b\n"),
                VectorError::Repeated {
                    line: 4,
                    directive: Directive::Version,
                },
            ),
            (
                format!("{head}# key: 0011\n54 4b\n"),
                VectorError::BadDirective {
                    line: 3,
                    directive: Directive::Key,
                },
            ),
            (
                format!("{head}# cookie_address: 192.0.2.10\n54 4b\n"),
                VectorError::BadDirective {
                    line: 3,
                    directive: Directive::CookieAddress,
                },
            ),
            (
                format!("{head}# cookie_client_id: 0x10000000000000000\n54 4b\n"),
                VectorError::BadDirective {
                    line: 3,
                    directive: Directive::CookieClientId,
                },
            ),
            (
                format!("{head}# cookie_secret: 0011\n54 4b\n"),
                VectorError::BadDirective {
                    line: 3,
                    directive: Directive::CookieSecret,
                },
            ),
            (
                format!("{head}# cookie_client_id: 1\n54 4b\n"),
                VectorError::CookieInputs,
            ),
            ("# length: 0\n".into(), VectorError::Verdict),
            (
                "# kind: x\n# expect: error TooShort\n# length: 0\n".into(),
                VectorError::Verdict,
            ),
            ("# kind: x\n54\n".into(), VectorError::NoLength),
            (
                format!("{head}54\n"),
                VectorError::Length {
                    stated: 2,
                    actual: 1,
                },
            ),
        ];
        for (text, want) in cases {
            assert_eq!(parse(&text), Err(want), "{text:?}");
            assert!(!want.to_string().contains('\n'));
        }
        for extra in [
            "# field: seq = 1",
            "# entity: 1 0 0 0",
            "# despawned: 1 2",
            "# run: 1 2",
            "# keyframe: 1 0 0 0 0 0 0",
            "# delta: 1 0 0 0",
            "# delta-age: 1 1 0 0 0",
            "# version: 1",
            "# cookie_client_id: 1",
        ] {
            assert_eq!(
                parse(&format!("# expect: error TooShort\n# length: 0\n{extra}\n")),
                Err(VectorError::FieldsOnInvalid),
                "{extra}"
            );
        }
    }

    #[test]
    fn the_error_message_names_the_line_and_the_directive() {
        let e = parse("# kind: x\n# length: two\n").unwrap_err();
        assert_eq!(e.to_string(), "line 2: malformed `# length:` directive");
    }
}
