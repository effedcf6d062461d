//! The wire format, protocol v2: the only module that knows how packets are
//! laid out in bytes (the spec is `proto/PROTOCOL.md`).
//!
//! Encoding goes through serde and bincode `=2.0.1` with fixed-width
//! little-endian integers; only `codec.rs` names bincode, so the codec can
//! be swapped without a wire change. The byte-exact vectors in
//! `proto/vectors/` freeze the bytes.
//!
//! # Guarantees
//!
//! * No input can make [`decode`] panic or allocate more than the datagram
//!   could describe: a snapshot's entity count is bounded by the bytes that
//!   are actually there, and every rejection is a small `Copy` [`DecodeError`].
//! * A packet that decodes is valid as the spec defines it: known magic,
//!   version, kind and flags ([`decode`] takes none, [`decode_opened`] only
//!   [`FLAG_AUTH`]); no trailing bytes; `part < parts`; finite
//!   coordinates within [`MAX_COORD`].
//! * Sizes are derived from the field types once ([`HEADER_LEN`] and friends)
//!   and tests check them against what the codec writes.
//! * No reply is larger than the request that causes it: the requests a
//!   broadcaster answers ([`Kind::Subscribe`], [`Kind::Confirm`],
//!   [`Kind::Ping`]) are zero-padded to at least the length of every reply
//!   they can draw, and the padding is checked (compile-time assertions
//!   beside the lengths, and the decoder rejects short or non-zero padding).
//!
//! # Two families of kinds
//!
//! The *stream* kinds (snapshot, sender report, goodbye, and version 2's
//! despawn, roster and compact snapshot part) are sequenced: each takes the next number of the
//! session's sequence. The *subscription* kinds
//! (16..=23, [`Kind::is_sequenced`] false) carry `seq` = 0, which receivers
//! ignore; they never enter sequence accounting. In them the header's
//! `session` is the broadcaster's session (broadcaster → receiver) or the
//! receiver's random client id (receiver → broadcaster).
//!
//! # Files
//!
//! Every item is used as `wire::X`, whichever file defines it.
//!
//! * `mod.rs`: the constants, [`Kind`], [`Packet`] and [`Body`], the errors,
//!   and the entry points ([`encode`], [`decode`] and friends), which read
//!   the header and hand the body to its family.
//! * [`field`]: the header's field positions.
//! * `stream.rs`: the stream kinds ([`Entity`], [`SnapshotHead`],
//!   [`SenderReport`], [`Goodbye`]), their lengths, and the checked view a
//!   snapshot's entity records are read through.
//! * `lifecycle.rs`: the lifecycle kinds of version 2 ([`Despawned`],
//!   [`DespawnHead`], [`IdRun`], [`RosterHead`]): which entities are gone.
//! * `compact.rs`: version 2's compact snapshot part ([`CompactHead`],
//!   [`Record`], [`write_record`]): quantized positions, keyframes and
//!   deltas, bit-packed through [`bits`].
//! * `control.rs`: the subscription kinds ([`Cookie`], [`Subscribe`] to
//!   [`Pong`]), their lengths and the padding rule.
//! * `codec.rs`: the bincode settings and the read and write helpers.
//! * [`auth`]: the authentication tag.

use serde::{Deserialize, Serialize};

pub mod auth;
pub mod bits;
mod codec;
mod compact;
mod control;
pub mod field;
mod lifecycle;
mod stream;
pub mod vectors;

pub use self::compact::{
    body_fits, delta_tail, dequantize, gap_bits, head_ok, id_gap, quanta_ok, residual_codes,
    write_delta, write_record, CompactHead, Dequantizer, Record, ResidualCodes, COMPACT_FIXED_LEN,
    MAX_RECORDS, MAX_RECORD_BITS, MIN_COMPACT_BUDGET,
};
pub use self::control::{
    Accept, Challenge, Confirm, Cookie, Ping, Pong, Refuse, Subscribe, Unsubscribe, ACCEPT_LEN,
    CHALLENGE_LEN, CONFIRM_LEN, COOKIE_LEN, MAC_LEN, MAX_REPLY_LEN, PING_LEN, PONG_LEN,
    REFUSE_FULL, REFUSE_LEN, SUBSCRIBE_LEN, UNSUBSCRIBE_LEN,
};
pub use self::lifecycle::{
    despawns_ok, despawns_per_packet, runs_ok, runs_per_part, DespawnHead, Despawned, IdRun,
    RosterHead, DESPAWN_COPY_AGES, DESPAWN_FIXED_LEN, DESPAWN_RECORD_LEN, ID_RUN_LEN,
    ROSTER_FIXED_LEN,
};
pub use self::stream::{
    entities_ok, entities_per_part, Entity, Goodbye, SenderReport, SnapshotHead, ENTITY_LEN,
    GOODBYE_LEN, SENDER_REPORT_LEN, SNAPSHOT_FIXED_LEN,
};

/// The first four bytes of every tickcast datagram.
pub const MAGIC: [u8; 4] = *b"TKCS";
/// The protocol version this module writes.
pub const VERSION: u8 = 2;
/// The oldest version this module reads: a version 1 datagram decodes as
/// it did (its kinds and layouts are unchanged in version 2); the kinds
/// version 2 added ([`Kind::Despawn`], [`Kind::Roster`], [`Kind::Compact`])
/// are unknown in it.
/// Receivers reject any version outside `MIN_VERSION..=VERSION`.
pub const MIN_VERSION: u8 = 1;
/// Largest UDP payload over IPv4, and so the largest datagram tickcast sends.
pub const MAX_DATAGRAM: usize = 65_507;
/// Default payload budget: snapshot datagrams are split to fit in this many bytes.
pub const DEFAULT_PAYLOAD_BUDGET: usize = 1200;
/// Largest absolute value a coordinate may have; larger or non-finite values are rejected.
pub const MAX_COORD: f32 = 1.0e9;
/// The header's `flags` bit that says the datagram is sealed: a tag of
/// [`auth::TAG_LEN`] bytes follows the packet (see [`auth`]).
/// The only flag versions 1 and 2 define; every other bit is reserved.
pub const FLAG_AUTH: u16 = 0x0001;

/// Bytes of the common header: magic, version, kind, flags, session, seq.
pub const HEADER_LEN: usize = field::SEQ.end;

/// Packet kinds, the header's `kind` byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    /// One part of a tick's snapshot: entity records.
    Snapshot = 1,
    /// Periodic count of what this session has sent.
    SenderReport = 2,
    /// The session is ending; carries the final sequence number.
    Goodbye = 3,
    /// Version 2: these entities no longer exist (repeated records).
    Despawn = 4,
    /// Version 2: which ids of a range exist as of a tick.
    Roster = 5,
    /// Version 2: one part of a tick's snapshot, quantized, delta-coded
    /// and bit-packed.
    Compact = 6,
    /// Receiver → broadcaster: please send me the stream (padded).
    Subscribe = 16,
    /// Broadcaster → receiver: echo this cookie to prove your address.
    Challenge = 17,
    /// Receiver → broadcaster: the cookie; add or renew my subscription (padded).
    Confirm = 18,
    /// Broadcaster → receiver: subscribed, for this lease.
    Accept = 19,
    /// Broadcaster → receiver: not subscribed, for this reason.
    Refuse = 20,
    /// Receiver → broadcaster: stop sending to me now (cookie required).
    Unsubscribe = 21,
    /// Receiver → broadcaster: round-trip probe (padded).
    Ping = 22,
    /// Broadcaster → receiver: answer to a ping.
    Pong = 23,
}

impl Kind {
    /// The kind with this kind byte, if this version defines one.
    pub fn from_u8(b: u8) -> Option<Kind> {
        match b {
            1 => Some(Kind::Snapshot),
            2 => Some(Kind::SenderReport),
            3 => Some(Kind::Goodbye),
            4 => Some(Kind::Despawn),
            5 => Some(Kind::Roster),
            6 => Some(Kind::Compact),
            16 => Some(Kind::Subscribe),
            17 => Some(Kind::Challenge),
            18 => Some(Kind::Confirm),
            19 => Some(Kind::Accept),
            20 => Some(Kind::Refuse),
            21 => Some(Kind::Unsubscribe),
            22 => Some(Kind::Ping),
            23 => Some(Kind::Pong),
            _ => None,
        }
    }

    /// Every kind this version defines, in kind-byte order.
    pub const ALL: [Kind; 14] = [
        Kind::Snapshot,
        Kind::SenderReport,
        Kind::Goodbye,
        Kind::Despawn,
        Kind::Roster,
        Kind::Compact,
        Kind::Subscribe,
        Kind::Challenge,
        Kind::Confirm,
        Kind::Accept,
        Kind::Refuse,
        Kind::Unsubscribe,
        Kind::Ping,
        Kind::Pong,
    ];

    /// Whether packets of this kind take a sequence number (the stream
    /// kinds). The subscription kinds carry `seq` = 0, ignored on receipt.
    pub fn is_sequenced(self) -> bool {
        matches!(
            self,
            Kind::Snapshot
                | Kind::SenderReport
                | Kind::Goodbye
                | Kind::Despawn
                | Kind::Roster
                | Kind::Compact
        )
    }

    /// The first protocol version that defines this kind.
    pub fn since_version(self) -> u8 {
        match self {
            Kind::Despawn | Kind::Roster | Kind::Compact => 2,
            _ => 1,
        }
    }

    /// Bytes of one record of a kind that carries records after its fixed
    /// fields (snapshot: entities, despawn: despawn records, roster: id
    /// runs; compact: 1, its records being bits, carried as bytes);
    /// `None` for the fixed-size kinds.
    pub fn record_len(self) -> Option<usize> {
        match self {
            Kind::Snapshot => Some(ENTITY_LEN),
            Kind::Despawn => Some(DESPAWN_RECORD_LEN),
            Kind::Roster => Some(ID_RUN_LEN),
            Kind::Compact => Some(1),
            _ => None,
        }
    }

    /// Bytes of a kind with records when it carries none, its record count
    /// included; `None` for the fixed-size kinds.
    pub fn records_fixed_len(self) -> Option<usize> {
        match self {
            Kind::Snapshot => Some(SNAPSHOT_FIXED_LEN),
            Kind::Despawn => Some(DESPAWN_FIXED_LEN),
            Kind::Roster => Some(ROSTER_FIXED_LEN),
            Kind::Compact => Some(COMPACT_FIXED_LEN),
            _ => None,
        }
    }

    /// Whether a receiver sends this kind to a broadcaster (the header's
    /// `session` is then the receiver's client id).
    pub fn is_request(self) -> bool {
        matches!(
            self,
            Kind::Subscribe | Kind::Confirm | Kind::Unsubscribe | Kind::Ping
        )
    }

    /// The exact datagram length of a fixed-size kind, padding included;
    /// `None` for the kinds with records (snapshot, despawn, roster,
    /// compact), whose length depends on their records.
    pub fn fixed_len(self) -> Option<usize> {
        Some(match self {
            Kind::Snapshot | Kind::Despawn | Kind::Roster | Kind::Compact => return None,
            Kind::SenderReport => SENDER_REPORT_LEN,
            Kind::Goodbye => GOODBYE_LEN,
            Kind::Subscribe => SUBSCRIBE_LEN,
            Kind::Challenge => CHALLENGE_LEN,
            Kind::Confirm => CONFIRM_LEN,
            Kind::Accept => ACCEPT_LEN,
            Kind::Refuse => REFUSE_LEN,
            Kind::Unsubscribe => UNSUBSCRIBE_LEN,
            Kind::Ping => PING_LEN,
            Kind::Pong => PONG_LEN,
        })
    }

    /// Bytes of the kind's fields after the header (padding excluded).
    fn fields_len(self) -> usize {
        match self {
            Kind::Subscribe => control::SUBSCRIBE_FIELDS_LEN,
            Kind::Confirm => control::CONFIRM_FIELDS_LEN,
            Kind::Ping => control::PING_FIELDS_LEN,
            other => {
                let len = other.fixed_len().or(other.records_fixed_len());
                len.expect("every kind is fixed-size or has records") - HEADER_LEN
            }
        }
    }

    /// The name used in the spec, the vectors and the dissector.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Snapshot => "snapshot",
            Kind::SenderReport => "sender_report",
            Kind::Goodbye => "goodbye",
            Kind::Despawn => "despawn",
            Kind::Roster => "roster",
            Kind::Compact => "compact",
            Kind::Subscribe => "subscribe",
            Kind::Challenge => "challenge",
            Kind::Confirm => "confirm",
            Kind::Accept => "accept",
            Kind::Refuse => "refuse",
            Kind::Unsubscribe => "unsubscribe",
            Kind::Ping => "ping",
            Kind::Pong => "pong",
        }
    }
}

/// What a packet says, after its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body {
    /// A snapshot part; its entities are in the buffer passed to [`decode`] / [`encode`].
    Snapshot(SnapshotHead),
    /// A sender report.
    SenderReport(SenderReport),
    /// A goodbye.
    Goodbye(Goodbye),
    /// A despawn; its records are in the [`Records`] passed to [`decode_records`].
    Despawn(DespawnHead),
    /// A roster part; its runs are in the [`Records`] passed to [`decode_records`].
    Roster(RosterHead),
    /// A compact snapshot part; its records are in the [`Records`] passed
    /// to [`decode_records`].
    Compact(CompactHead),
    /// A subscribe request.
    Subscribe(Subscribe),
    /// A challenge.
    Challenge(Challenge),
    /// A confirm.
    Confirm(Confirm),
    /// An accept.
    Accept(Accept),
    /// A refuse.
    Refuse(Refuse),
    /// An unsubscribe.
    Unsubscribe(Unsubscribe),
    /// A ping.
    Ping(Ping),
    /// A pong.
    Pong(Pong),
}

impl Body {
    /// This body's packet kind.
    pub fn kind(&self) -> Kind {
        match self {
            Body::Snapshot(_) => Kind::Snapshot,
            Body::SenderReport(_) => Kind::SenderReport,
            Body::Goodbye(_) => Kind::Goodbye,
            Body::Despawn(_) => Kind::Despawn,
            Body::Roster(_) => Kind::Roster,
            Body::Compact(_) => Kind::Compact,
            Body::Subscribe(_) => Kind::Subscribe,
            Body::Challenge(_) => Kind::Challenge,
            Body::Confirm(_) => Kind::Confirm,
            Body::Accept(_) => Kind::Accept,
            Body::Refuse(_) => Kind::Refuse,
            Body::Unsubscribe(_) => Kind::Unsubscribe,
            Body::Ping(_) => Kind::Ping,
            Body::Pong(_) => Kind::Pong,
        }
    }
}

/// A parsed packet: header fields and body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet {
    /// Random id the broadcaster picked at start.
    pub session: u64,
    /// Packet sequence number (RFC 1982 serial arithmetic, 32 bits).
    pub seq: u32,
    /// The kind-specific fields.
    pub body: Body,
}

/// Why a datagram was rejected. Small and `Copy`: rejection allocates nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Shorter than the common header.
    #[error("datagram shorter than the {HEADER_LEN}-byte header")]
    TooShort,
    /// The first four bytes are not [`MAGIC`].
    #[error("bad magic")]
    BadMagic,
    /// A version this decoder does not speak.
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(u8),
    /// A kind byte this version does not define.
    #[error("unknown packet kind {0}")]
    UnknownKind(u8),
    /// Flag bits set that this version does not define.
    #[error("unknown flags {0:#06x}")]
    UnknownFlags(u16),
    /// The [`FLAG_AUTH`] bit is set, but [`decode`] was used: the datagram is
    /// sealed and this receiver has no key to open it with.
    #[error("authenticated datagram but no key configured")]
    Sealed,
    /// The body ended before its fields did.
    #[error("truncated body")]
    Truncated,
    /// Bytes left over after the body.
    #[error("{0} trailing bytes")]
    TrailingBytes(usize),
    /// `parts` is zero or `part >= parts`.
    #[error("impossible part index")]
    BadPart,
    /// A coordinate is NaN, infinite or beyond [`MAX_COORD`].
    #[error("coordinate not finite or out of range")]
    BadCoordinate,
    /// A padded request's padding is not all zero.
    #[error("padding not zero")]
    BadPadding,
    /// A despawn record after its packet's tick, or a roster whose range
    /// is empty or whose runs are empty, out of order, overlapping or
    /// outside its range.
    #[error("impossible despawn record or roster run")]
    BadLifecycle,
    /// A compact part with no quanta per unit, a keyframe interval of 0, or whose records are impossible (an id past
    /// `u32::MAX`, an age beyond `u32`, non-zero padding).
    #[error("impossible compact part")]
    BadCompact,
    /// Longer than [`MAX_DATAGRAM`] (possible over IPv6); no sender may send it.
    #[error("datagram longer than {MAX_DATAGRAM} bytes")]
    TooLong,
}

/// Why a packet could not be encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The output buffer is too small for the packet.
    #[error("output buffer too small: need {need} bytes, have {have}")]
    BufferTooSmall {
        /// Bytes the packet needs.
        need: usize,
        /// Bytes the buffer has.
        have: usize,
    },
    /// Records were given that the body's kind does not carry (entities
    /// for a packet that is not a snapshot, and so on).
    #[error("records given that a packet of this kind does not carry")]
    EntitiesWithoutSnapshot,
    /// A despawn record after its packet's tick, or roster runs
    /// [`runs_ok`] refuses.
    #[error("impossible despawn record or roster run")]
    BadLifecycle,
    /// A compact head [`head_ok`] refuses.
    #[error("impossible compact head")]
    BadCompact,
    /// The packet would exceed [`MAX_DATAGRAM`].
    #[error("packet of {need} bytes exceeds the {MAX_DATAGRAM}-byte datagram limit")]
    TooLarge {
        /// Bytes the packet needs.
        need: usize,
    },
    /// `parts` is zero or `part >= parts`.
    #[error("impossible part index")]
    BadPart,
    /// A coordinate is NaN, infinite or beyond [`MAX_COORD`].
    #[error("coordinate not finite or out of range")]
    BadCoordinate,
}

/// The header as the codec reads and writes it.
#[derive(Serialize, Deserialize)]
struct WireHeader {
    magic: [u8; 4],
    version: u8,
    kind: u8,
    flags: u16,
    session: u64,
    seq: u32,
}

/// The records a packet carries after its fixed fields, for
/// [`encode_records`]: a snapshot's entities, a despawn's records or a
/// roster's runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Payload<'a> {
    /// No records (a fixed-size kind, or a kind with records and none).
    None,
    /// A snapshot part's entities.
    Entities(&'a [Entity]),
    /// A despawn's records.
    Despawned(&'a [Despawned]),
    /// A roster part's runs.
    Runs(&'a [IdRun]),
    /// A compact part's bit-packed records, as bytes ([`write_record`]).
    Compact(&'a [u8]),
}

impl Payload<'_> {
    /// How many records.
    pub fn len(&self) -> usize {
        match self {
            Payload::None => 0,
            Payload::Entities(e) => e.len(),
            Payload::Despawned(d) => d.len(),
            Payload::Runs(r) => r.len(),
            Payload::Compact(b) => b.len(),
        }
    }

    /// Whether there are no records.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether these records may travel with `kind`.
    fn fits(&self, kind: Kind) -> bool {
        match self {
            Payload::None => true,
            Payload::Entities(e) => e.is_empty() || kind == Kind::Snapshot,
            Payload::Despawned(d) => d.is_empty() || kind == Kind::Despawn,
            Payload::Runs(r) => r.is_empty() || kind == Kind::Roster,
            Payload::Compact(b) => b.is_empty() || kind == Kind::Compact,
        }
    }
}

/// Where [`decode_records`] puts a packet's records: one buffer per record
/// type, each cleared by every decode and reused, so the hot path does not
/// allocate.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Records {
    /// A snapshot's entities.
    pub entities: Vec<Entity>,
    /// A despawn's records.
    pub despawned: Vec<Despawned>,
    /// A roster part's runs.
    pub runs: Vec<IdRun>,
    /// A compact part's records.
    pub compact: Vec<Record>,
}

impl Records {
    fn clear(&mut self) {
        self.entities.clear();
        self.despawned.clear();
        self.runs.clear();
        self.compact.clear();
    }
}

/// Bytes a packet with `body` and `records` records (of its kind) encodes to.
pub fn encoded_len(body: &Body, records: usize) -> usize {
    let kind = body.kind();
    match (
        kind.fixed_len(),
        kind.records_fixed_len(),
        kind.record_len(),
    ) {
        (Some(len), _, _) => len,
        (None, Some(fixed), Some(record)) => fixed + records * record,
        _ => unreachable!("every kind is fixed-size or has records"),
    }
}

/// Encodes `packet` (with `entities`, for a snapshot) into `out`; returns the
/// datagram's length. Refuses anything [`decode`] would reject.
pub fn encode(packet: &Packet, entities: &[Entity], out: &mut [u8]) -> Result<usize, EncodeError> {
    encode_records(packet, Payload::Entities(entities), out)
}

/// Encodes `packet` with its records into `out`; returns the datagram's
/// length. Refuses anything [`decode_records`] would reject.
pub fn encode_records(
    packet: &Packet,
    records: Payload<'_>,
    out: &mut [u8],
) -> Result<usize, EncodeError> {
    let kind = packet.body.kind();
    if !records.fits(kind) {
        return Err(EncodeError::EntitiesWithoutSnapshot);
    }
    let need = encoded_len(&packet.body, records.len());
    if need > MAX_DATAGRAM {
        return Err(EncodeError::TooLarge { need });
    }
    check_records(&packet.body, records)?;
    if out.len() < need {
        return Err(EncodeError::BufferTooSmall {
            need,
            have: out.len(),
        });
    }
    let header = WireHeader {
        magic: MAGIC,
        version: VERSION,
        kind: kind as u8,
        flags: 0,
        session: packet.session,
        seq: packet.seq,
    };
    const NO_ENTITIES: &[Entity] = &[];
    const NO_DESPAWNS: &[Despawned] = &[];
    const NO_RUNS: &[IdRun] = &[];
    let written = match (&packet.body, records) {
        (Body::Snapshot(head), Payload::Entities(e)) => codec::write(&(header, head, e), out),
        (Body::Snapshot(head), _) => codec::write(&(header, head, NO_ENTITIES), out),
        (Body::Despawn(head), Payload::Despawned(d)) => codec::write(&(header, head, d), out),
        (Body::Despawn(head), _) => codec::write(&(header, head, NO_DESPAWNS), out),
        (Body::Roster(head), Payload::Runs(r)) => codec::write(&(header, head, r), out),
        (Body::Roster(head), _) => codec::write(&(header, head, NO_RUNS), out),
        (Body::Compact(head), records) => {
            let n = codec::write(&(header, head), out);
            let body = match records {
                Payload::Compact(b) => b,
                _ => &[],
            };
            out[n..n + body.len()].copy_from_slice(body);
            n + body.len()
        }
        (Body::SenderReport(r), _) => codec::write(&(header, r), out),
        (Body::Goodbye(g), _) => codec::write(&(header, g), out),
        (Body::Subscribe(b), _) => codec::write(&(header, b), out),
        (Body::Challenge(b), _) => codec::write(&(header, b), out),
        (Body::Confirm(b), _) => codec::write(&(header, b), out),
        (Body::Accept(b), _) => codec::write(&(header, b), out),
        (Body::Refuse(b), _) => codec::write(&(header, b), out),
        (Body::Unsubscribe(b), _) => codec::write(&(header, b), out),
        (Body::Ping(b), _) => codec::write(&(header, b), out),
        (Body::Pong(b), _) => codec::write(&(header, b), out),
    };
    debug_assert_eq!(
        written,
        HEADER_LEN + kind.fields_len() + records.len() * kind.record_len().unwrap_or(0),
        "derived length disagrees with the codec"
    );
    // Zero padding up to the kind's length (padded requests only).
    out[written..need].fill(0);
    Ok(need)
}

/// Refuses what the decoder would reject in a body with its records: a
/// part index out of range, a coordinate out of range, a despawn record
/// after its tick, roster runs [`runs_ok`] refuses.
fn check_records(body: &Body, records: Payload<'_>) -> Result<(), EncodeError> {
    let bad_part = |part: u16, parts: u16| parts == 0 || part >= parts;
    let ok = match (body, records) {
        (Body::Snapshot(h), _) if bad_part(h.part, h.parts) => return Err(EncodeError::BadPart),
        (Body::Snapshot(_), Payload::Entities(e)) if !stream::entities_ok(e) => {
            return Err(EncodeError::BadCoordinate)
        }
        (Body::Roster(h), _) if bad_part(h.part, h.parts) => return Err(EncodeError::BadPart),
        (Body::Roster(h), Payload::Runs(r)) => runs_ok(h, r.iter().copied()),
        (Body::Roster(h), _) => runs_ok(h, []),
        (Body::Despawn(h), Payload::Despawned(d)) => despawns_ok(h, d),
        (Body::Compact(h), _) if h.parts == 0 || h.part >= h.parts => {
            return Err(EncodeError::BadPart)
        }
        (Body::Compact(h), _) if !head_ok(h) => return Err(EncodeError::BadCompact),
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(EncodeError::BadLifecycle)
    }
}

/// Encodes `packet` (with `entities`, for a snapshot) into a new buffer of
/// exactly [`encoded_len`] bytes. For callers that do not reuse a buffer
/// (tools, tests); the send path encodes into its own with [`encode`].
pub fn encode_to_vec(packet: &Packet, entities: &[Entity]) -> Result<Vec<u8>, EncodeError> {
    encode_records_to_vec(packet, Payload::Entities(entities))
}

/// [`encode_to_vec`] for any records.
pub fn encode_records_to_vec(
    packet: &Packet,
    records: Payload<'_>,
) -> Result<Vec<u8>, EncodeError> {
    let mut out = vec![0; encoded_len(&packet.body, records.len())];
    let n = encode_records(packet, records, &mut out)?;
    debug_assert_eq!(n, out.len());
    Ok(out)
}

/// Decodes one datagram. For a snapshot, `entities` is cleared and filled
/// with its records (the buffer is reused to keep the hot path allocation-free);
/// for other kinds, and on any error, it is left empty. A despawn's or a
/// roster's records are checked but not kept: [`decode_records`] keeps them.
///
/// A sealed datagram ([`FLAG_AUTH`] set) is rejected as
/// [`DecodeError::Sealed`]: only [`decode_opened`], after
/// [`crate::wire::auth::open`] checked and stripped its tag, takes that flag.
pub fn decode(datagram: &[u8], entities: &mut Vec<Entity>) -> Result<Packet, DecodeError> {
    decode_with(datagram, Sink::Entities(entities), 0)
}

/// Decodes a datagram [`crate::wire::auth::open`] returned: the packet without its
/// tag, whose [`FLAG_AUTH`] bit is set. Otherwise the same as [`decode`].
pub fn decode_opened(datagram: &[u8], entities: &mut Vec<Entity>) -> Result<Packet, DecodeError> {
    decode_with(datagram, Sink::Entities(entities), FLAG_AUTH)
}

/// [`decode`] that keeps every kind's records: `records` is cleared, and
/// the packet's records (entities, despawn records, runs or compact
/// records) are put in their buffer. On any error all are left empty.
pub fn decode_records(datagram: &[u8], records: &mut Records) -> Result<Packet, DecodeError> {
    decode_with(datagram, Sink::All(records), 0)
}

/// [`decode_records`] for a datagram [`crate::wire::auth::open`] returned.
pub fn decode_records_opened(
    datagram: &[u8],
    records: &mut Records,
) -> Result<Packet, DecodeError> {
    decode_with(datagram, Sink::All(records), FLAG_AUTH)
}

/// Where a decode puts the records it keeps.
enum Sink<'a> {
    Entities(&'a mut Vec<Entity>),
    All(&'a mut Records),
}

impl Sink<'_> {
    fn clear(&mut self) {
        match self {
            Sink::Entities(e) => e.clear(),
            Sink::All(r) => r.clear(),
        }
    }
}

fn decode_with(
    datagram: &[u8],
    mut sink: Sink<'_>,
    allowed_flags: u16,
) -> Result<Packet, DecodeError> {
    sink.clear();
    let result = decode_inner(datagram, &mut sink, allowed_flags);
    if result.is_err() {
        sink.clear();
    }
    result
}

fn decode_inner(
    datagram: &[u8],
    sink: &mut Sink<'_>,
    allowed_flags: u16,
) -> Result<Packet, DecodeError> {
    if datagram.len() > MAX_DATAGRAM {
        return Err(DecodeError::TooLong);
    }
    if datagram.len() < HEADER_LEN {
        return Err(DecodeError::TooShort);
    }
    let (h, _): (WireHeader, usize) =
        codec::read(&datagram[..HEADER_LEN]).map_err(|_| DecodeError::TooShort)?;
    if h.magic != MAGIC {
        return Err(DecodeError::BadMagic);
    }
    if !(MIN_VERSION..=VERSION).contains(&h.version) {
        return Err(DecodeError::UnsupportedVersion(h.version));
    }
    let kind = Kind::from_u8(h.kind)
        .filter(|k| k.since_version() <= h.version)
        .ok_or(DecodeError::UnknownKind(h.kind))?;
    if h.flags & !FLAG_AUTH != 0 {
        return Err(DecodeError::UnknownFlags(h.flags));
    }
    if h.flags & !allowed_flags != 0 {
        return Err(DecodeError::Sealed);
    }
    let rest = &datagram[HEADER_LEN..];
    let (body, used) = match kind {
        // The records are read through checked views (see `stream.rs`).
        Kind::Snapshot => {
            let entities = match sink {
                Sink::Entities(e) => e,
                Sink::All(r) => &mut r.entities,
            };
            stream::decode_snapshot(rest, entities).map(|(head, n)| (Body::Snapshot(head), n))?
        }
        Kind::Despawn => {
            let out = match sink {
                Sink::Entities(_) => None,
                Sink::All(r) => Some(&mut r.despawned),
            };
            lifecycle::decode_despawn(rest, out).map(|(head, n)| (Body::Despawn(head), n))?
        }
        Kind::Roster => {
            let out = match sink {
                Sink::Entities(_) => None,
                Sink::All(r) => Some(&mut r.runs),
            };
            lifecycle::decode_roster(rest, out).map(|(head, n)| (Body::Roster(head), n))?
        }
        Kind::Compact => {
            let out = match sink {
                Sink::Entities(_) => None,
                Sink::All(r) => Some(&mut r.compact),
            };
            compact::decode_compact(rest, out).map(|(head, n)| (Body::Compact(head), n))?
        }
        Kind::SenderReport => codec::read(rest).map(|(r, n)| (Body::SenderReport(r), n))?,
        Kind::Goodbye => codec::read(rest).map(|(g, n)| (Body::Goodbye(g), n))?,
        Kind::Subscribe => control::padded(rest, kind, Body::Subscribe)?,
        Kind::Challenge => codec::read(rest).map(|(b, n)| (Body::Challenge(b), n))?,
        Kind::Confirm => control::padded(rest, kind, Body::Confirm)?,
        Kind::Accept => codec::read(rest).map(|(b, n)| (Body::Accept(b), n))?,
        Kind::Refuse => codec::read(rest).map(|(b, n)| (Body::Refuse(b), n))?,
        Kind::Unsubscribe => codec::read(rest).map(|(b, n)| (Body::Unsubscribe(b), n))?,
        Kind::Ping => control::padded(rest, kind, Body::Ping)?,
        Kind::Pong => codec::read(rest).map(|(b, n)| (Body::Pong(b), n))?,
    };
    if used != rest.len() {
        return Err(DecodeError::TrailingBytes(rest.len() - used));
    }
    Ok(Packet {
        session: h.session,
        seq: h.seq,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::stream::tests::sample_snapshot;
    use super::*;

    #[test]
    fn invalid_fields_are_rejected_with_their_reason() {
        let (p, e) = sample_snapshot();
        let mut buf = [0u8; 256];
        let n = encode(&p, &e, &mut buf).unwrap();
        let mut out = Vec::new();
        let mut bad = |at: usize, v: u8| {
            let mut b = buf;
            b[at] = v;
            decode(&b[..n], &mut out)
        };
        assert_eq!(bad(0, b'X'), Err(DecodeError::BadMagic));
        assert_eq!(bad(4, 3), Err(DecodeError::UnsupportedVersion(3)));
        assert_eq!(bad(4, 0), Err(DecodeError::UnsupportedVersion(0)));
        assert_eq!(bad(5, 99), Err(DecodeError::UnknownKind(99)));
        assert_eq!(bad(6, 1), Err(DecodeError::Sealed));
        assert_eq!(bad(6, 2), Err(DecodeError::UnknownFlags(2)));
        assert_eq!(bad(6, 3), Err(DecodeError::UnknownFlags(3)));
        // part (offset 44) = parts (2)
        assert_eq!(bad(HEADER_LEN + 24, 2), Err(DecodeError::BadPart));
        let mut b = buf;
        b[SNAPSHOT_FIXED_LEN + 4..SNAPSHOT_FIXED_LEN + 8].copy_from_slice(&f32::NAN.to_le_bytes());
        assert_eq!(decode(&b[..n], &mut out), Err(DecodeError::BadCoordinate));
        let mut long = buf.to_vec();
        long.truncate(n);
        long.push(0);
        assert_eq!(decode(&long, &mut out), Err(DecodeError::TrailingBytes(1)));
    }

    #[test]
    fn only_decode_opened_takes_the_auth_flag() {
        let (p, e) = sample_snapshot();
        let mut buf = [0u8; 256];
        let n = encode(&p, &e, &mut buf).unwrap();
        let mut out = Vec::new();
        // Flag 0 decodes either way; the AUTH flag only through decode_opened.
        assert_eq!(decode_opened(&buf[..n], &mut out), Ok(p));
        buf[field::FLAGS.start] = FLAG_AUTH as u8;
        assert_eq!(decode(&buf[..n], &mut out), Err(DecodeError::Sealed));
        assert!(out.is_empty());
        assert_eq!(decode_opened(&buf[..n], &mut out), Ok(p));
        assert_eq!(out, e);
        buf[7] = 0x80;
        assert_eq!(
            decode_opened(&buf[..n], &mut out),
            Err(DecodeError::UnknownFlags(0x8001))
        );
    }

    #[test]
    fn encode_refuses_what_decode_would_reject() {
        let (mut p, mut e) = sample_snapshot();
        let mut buf = vec![0u8; MAX_DATAGRAM + 64];
        let big = vec![Entity::default(); entities_per_part(MAX_DATAGRAM).unwrap() + 1];
        assert!(matches!(
            encode(&p, &big, &mut buf),
            Err(EncodeError::TooLarge { .. })
        ));
        e[1].y = f32::INFINITY;
        assert_eq!(encode(&p, &e, &mut buf), Err(EncodeError::BadCoordinate));
        p.body = Body::Snapshot(SnapshotHead {
            part: 2,
            parts: 2,
            ..SnapshotHead::default()
        });
        assert_eq!(encode(&p, &[], &mut buf), Err(EncodeError::BadPart));
        assert_eq!(
            decode(&buf[..MAX_DATAGRAM + 1], &mut Vec::new()),
            Err(DecodeError::TooLong)
        );
    }

    #[test]
    fn failed_decode_leaves_no_entities_behind() {
        let (p, mut e) = sample_snapshot();
        let mut buf = [0u8; 256];
        let n = encode(&p, &e, &mut buf).unwrap();
        e[1].z = 5.0;
        buf[n - 4..n].copy_from_slice(&f32::NAN.to_le_bytes());
        let mut out = Vec::new();
        assert_eq!(decode(&buf[..n], &mut out), Err(DecodeError::BadCoordinate));
        assert!(out.is_empty());
    }

    #[test]
    fn kind_bytes_are_stable() {
        let bytes: Vec<u8> = Kind::ALL.iter().map(|&k| k as u8).collect();
        assert_eq!(bytes, [1, 2, 3, 4, 5, 6, 16, 17, 18, 19, 20, 21, 22, 23]);
        for k in Kind::ALL {
            assert_eq!(Kind::from_u8(k as u8), Some(k));
        }
        assert_eq!(Kind::from_u8(24), None);
        assert_eq!(Kind::from_u8(7), None);
    }

    #[test]
    fn version_1_datagrams_decode_and_know_only_version_1_kinds() {
        let (p, e) = sample_snapshot();
        let mut buf = [0u8; 256];
        let n = encode(&p, &e, &mut buf).unwrap();
        buf[field::VERSION] = 1;
        let mut out = Vec::new();
        assert_eq!(decode(&buf[..n], &mut out), Ok(p));
        let despawn = Packet {
            body: Body::Despawn(DespawnHead::default()),
            ..p
        };
        let mut d = encode_to_vec(&despawn, &[]).unwrap();
        assert_eq!(decode(&d, &mut out), Ok(despawn));
        d[field::VERSION] = 1;
        assert_eq!(decode(&d, &mut out), Err(DecodeError::UnknownKind(4)));
    }
}
