//! The wire format, protocol v1: the only module that knows how packets are
//! laid out in bytes (the spec is `proto/PROTOCOL.md`).
//!
//! Encoding goes through serde and bincode `=2.0.1` with fixed-width
//! little-endian integers ([`CONFIG`]); nothing outside this module names
//! bincode, so the codec can be swapped without a wire change. The byte-exact
//! vectors in `proto/vectors/` freeze the bytes.
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
//!   and a test checks them against what bincode writes.
//! * No reply is larger than the request that causes it: the requests a
//!   broadcaster answers ([`Kind::Subscribe`], [`Kind::Confirm`],
//!   [`Kind::Ping`]) are zero-padded to at least the length of every reply
//!   they can draw, and the padding is checked (compile-time assertions
//!   below, and the decoder rejects short or non-zero padding).
//!
//! # Two families of kinds
//!
//! The *stream* kinds (snapshot, sender report, goodbye) are sequenced: each
//! takes the next number of the session's sequence. The *subscription* kinds
//! (16..=23, [`Kind::is_sequenced`] false) carry `seq` = 0, which receivers
//! ignore; they never enter sequence accounting. In them the header's
//! `session` is the broadcaster's session (broadcaster → receiver) or the
//! receiver's random client id (receiver → broadcaster).

use serde::{Deserialize, Serialize};

pub mod auth;
pub mod vectors;

/// The first four bytes of every tickcast datagram.
pub const MAGIC: [u8; 4] = *b"TKCS";
/// The protocol version this module speaks. Receivers reject any other.
pub const VERSION: u8 = 1;
/// Largest UDP payload over IPv4, and so the largest datagram tickcast sends.
pub const MAX_DATAGRAM: usize = 65_507;
/// Default payload budget: snapshot datagrams are split to fit in this many bytes.
pub const DEFAULT_PAYLOAD_BUDGET: usize = 1200;
/// Largest absolute value a coordinate may have; larger or non-finite values are rejected.
pub const MAX_COORD: f32 = 1.0e9;
/// The header's `flags` bit that says the datagram is sealed: a tag of
/// [`auth::TAG_LEN`] bytes follows the packet (see [`auth`]).
/// The only flag version 1 defines; every other bit is reserved.
pub const FLAG_AUTH: u16 = 0x0001;

/// bincode settings that define the byte layout: little-endian, fixed-width
/// integers, and a decode limit of one datagram.
const CONFIG: bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Fixint,
    bincode::config::Limit<MAX_DATAGRAM>,
> = bincode::config::standard()
    .with_little_endian()
    .with_fixed_int_encoding()
    .with_limit::<MAX_DATAGRAM>();

const U8: usize = 1;
const U16: usize = 2;
const U32: usize = 4;
const U64: usize = 8;

/// Positions of the common header's fields, named once. bincode writes the
/// header; these let code that must look at raw bytes (the auth layer's
/// flag, the subscription table's kind check, the fuzzer's field-aware
/// mutations) do so without typing offsets again. Tests hold them to what
/// bincode writes.
pub mod field {
    use super::{MAGIC as MAGIC_BYTES, U16, U32, U64, U8};
    use std::ops::Range;

    /// The magic bytes.
    pub const MAGIC: Range<usize> = 0..MAGIC_BYTES.len();
    /// The version byte.
    pub const VERSION: usize = MAGIC.end;
    /// The kind byte.
    pub const KIND: usize = VERSION + U8;
    /// The flags, u16 little-endian.
    pub const FLAGS: Range<usize> = KIND + U8..KIND + U8 + U16;
    /// The session id, u64 little-endian.
    pub const SESSION: Range<usize> = FLAGS.end..FLAGS.end + U64;
    /// The sequence number, u32 little-endian.
    pub const SEQ: Range<usize> = SESSION.end..SESSION.end + U32;
}

/// Bytes of the common header: magic, version, kind, flags, session, seq.
pub const HEADER_LEN: usize = field::SEQ.end;
/// Bytes of a snapshot part's fixed fields after the header, including the
/// entity count (bincode writes a sequence length as a u64).
pub const SNAPSHOT_FIXED_LEN: usize = HEADER_LEN + 3 * U64 + 2 * U16 + U64;
/// Bytes of one entity record: id and three f32 coordinates.
pub const ENTITY_LEN: usize = U32 + 3 * U32;
/// Bytes of a whole sender report datagram.
pub const SENDER_REPORT_LEN: usize = HEADER_LEN + 4 * U64;
/// Bytes of a whole goodbye datagram.
pub const GOODBYE_LEN: usize = HEADER_LEN + U64 + U32 + U64;

/// Bytes of a cookie's MAC (a truncated keyed BLAKE3).
pub const MAC_LEN: usize = 16;
/// Bytes of a cookie: its time bucket (u64) and its MAC.
pub const COOKIE_LEN: usize = U64 + MAC_LEN;
/// Bytes of a whole challenge datagram: nonce and cookie.
pub const CHALLENGE_LEN: usize = HEADER_LEN + U64 + COOKIE_LEN;
/// Bytes of a whole accept datagram: nonce and lease.
pub const ACCEPT_LEN: usize = HEADER_LEN + U64 + U32;
/// Bytes of a whole refuse datagram: nonce and reason.
pub const REFUSE_LEN: usize = HEADER_LEN + U64 + U8;
/// Bytes of a whole pong datagram: nonce and two times.
pub const PONG_LEN: usize = HEADER_LEN + 3 * U64;
/// Bytes of a whole unsubscribe datagram: nonce and cookie (it draws no reply).
pub const UNSUBSCRIBE_LEN: usize = HEADER_LEN + U64 + COOKIE_LEN;
/// The longest reply a broadcaster sends.
pub const MAX_REPLY_LEN: usize = max(max(CHALLENGE_LEN, ACCEPT_LEN), max(REFUSE_LEN, PONG_LEN));
/// Bytes of a whole subscribe datagram: its nonce, then zero padding up to
/// the longest reply, so that no reply can be larger than the request.
pub const SUBSCRIBE_LEN: usize = max(HEADER_LEN + U64, MAX_REPLY_LEN);
/// Bytes of a whole confirm datagram: nonce and cookie, then zero padding up
/// to the longest of its possible replies (accept, refuse, a new challenge).
/// The fields alone are already that long, so the padding is empty in v1.
pub const CONFIRM_LEN: usize = max(
    HEADER_LEN + U64 + COOKIE_LEN,
    max(CHALLENGE_LEN, max(ACCEPT_LEN, REFUSE_LEN)),
);
/// Bytes of a whole ping datagram: nonce and send time, then zero padding up
/// to the pong's length.
pub const PING_LEN: usize = max(HEADER_LEN + 2 * U64, PONG_LEN);
/// `reason` of a refuse: the subscription table is full.
pub const REFUSE_FULL: u8 = 1;

const fn max(a: usize, b: usize) -> usize {
    if a > b {
        a
    } else {
        b
    }
}

// Anti-amplification, by construction: every request a broadcaster answers
// is at least as long as each reply it can draw.
const _: () = assert!(SUBSCRIBE_LEN >= CHALLENGE_LEN);
const _: () = assert!(CONFIRM_LEN >= CHALLENGE_LEN && CONFIRM_LEN >= ACCEPT_LEN);
const _: () = assert!(CONFIRM_LEN >= REFUSE_LEN);
const _: () = assert!(PING_LEN >= PONG_LEN);

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
    pub const ALL: [Kind; 11] = [
        Kind::Snapshot,
        Kind::SenderReport,
        Kind::Goodbye,
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
        matches!(self, Kind::Snapshot | Kind::SenderReport | Kind::Goodbye)
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
    /// `None` for a snapshot, whose length depends on its entity count.
    pub fn fixed_len(self) -> Option<usize> {
        Some(match self {
            Kind::Snapshot => return None,
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
            Kind::Subscribe => U64,
            Kind::Confirm => U64 + COOKIE_LEN,
            Kind::Ping => 2 * U64,
            other => other.fixed_len().unwrap_or(SNAPSHOT_FIXED_LEN) - HEADER_LEN,
        }
    }

    /// The name used in the spec, the vectors and the dissector.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Snapshot => "snapshot",
            Kind::SenderReport => "sender_report",
            Kind::Goodbye => "goodbye",
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

/// One entity's position in a snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Entity {
    /// Entity id, chosen by the broadcaster.
    pub id: u32,
    /// X coordinate, in world units.
    pub x: f32,
    /// Y coordinate, in world units.
    pub y: f32,
    /// Z coordinate, in world units.
    pub z: f32,
}

impl Entity {
    /// Reads one record: id, x, y, z, each 4 bytes little-endian, the same
    /// bytes bincode writes for this struct.
    fn from_record(r: &[u8; ENTITY_LEN]) -> Entity {
        let word = |at: usize| u32::from_le_bytes([r[at], r[at + 1], r[at + 2], r[at + 3]]);
        Entity {
            id: word(0),
            x: f32::from_bits(word(4)),
            y: f32::from_bits(word(8)),
            z: f32::from_bits(word(12)),
        }
    }
}

/// Fixed fields of a snapshot part (its entity records travel beside it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotHead {
    /// The tick number, the Count a game client shows.
    pub tick: u64,
    /// When this tick was due: nanoseconds since the Unix epoch (CLOCK_REALTIME).
    pub scheduled_ns: u64,
    /// When this datagram was sent: nanoseconds since the Unix epoch.
    pub sent_ns: u64,
    /// This part's index, `0..parts`.
    pub part: u16,
    /// How many parts this tick was split into.
    pub parts: u16,
}

/// The periodic sender report: what this session has sent so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SenderReport {
    /// When this report was sent: nanoseconds since the Unix epoch.
    pub sent_ns: u64,
    /// Sequenced packets this session has sent, this report included.
    pub packets_sent: u64,
    /// Ticks sent so far.
    pub ticks_sent: u64,
    /// Ticks skipped so far because their deadline could not be met.
    pub ticks_skipped: u64,
}

/// The goodbye sent (several times, each copy sequenced) at clean shutdown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Goodbye {
    /// When this copy was sent: nanoseconds since the Unix epoch.
    pub sent_ns: u64,
    /// Sequence number of the session's very last packet (the last goodbye copy).
    pub final_seq: u32,
    /// Sequenced packets this session sends in all, every goodbye copy included.
    pub packets_sent: u64,
}

/// A broadcaster's proof that a requester received a datagram at its
/// address: a time bucket and a MAC over (address, client id, bucket) keyed
/// with the broadcaster's secret. Opaque to receivers, which echo it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Cookie {
    /// The time bucket it was issued in: `now_ns / cookie_period`.
    pub bucket: u64,
    /// The MAC.
    pub mac: [u8; MAC_LEN],
}

/// Subscribe (kind 16): the opening request of the handshake.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscribe {
    /// Chosen by the receiver; the challenge echoes it.
    pub nonce: u64,
}

/// Challenge (kind 17): the cookie the requester must echo.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// The nonce of the request it answers.
    pub nonce: u64,
    /// The cookie to echo in a confirm.
    pub cookie: Cookie,
}

/// Confirm (kind 18): the echoed cookie; adds or renews a subscription.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirm {
    /// Chosen by the receiver; the reply echoes it.
    pub nonce: u64,
    /// The cookie from the latest challenge.
    pub cookie: Cookie,
}

/// Accept (kind 19): the requester is subscribed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accept {
    /// The nonce of the confirm it answers.
    pub nonce: u64,
    /// How long the subscription lasts without another confirm, in ms.
    pub lease_ms: u32,
}

/// Refuse (kind 20): the requester is not subscribed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refuse {
    /// The nonce of the confirm it answers.
    pub nonce: u64,
    /// Why: [`REFUSE_FULL`]; other values are reserved and mean "refused".
    pub reason: u8,
}

/// Unsubscribe (kind 21): ends the sender's subscription at once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unsubscribe {
    /// Chosen by the receiver (nothing echoes it).
    pub nonce: u64,
    /// A valid cookie for the sender's address and client id.
    pub cookie: Cookie,
}

/// Ping (kind 22): a round-trip probe from a subscriber.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ping {
    /// Chosen by the receiver; the pong echoes it.
    pub nonce: u64,
    /// When the ping was sent, on the receiver's clock (ns).
    pub sent_ns: u64,
}

/// Pong (kind 23): the answer to a ping.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pong {
    /// The ping's nonce.
    pub nonce: u64,
    /// The ping's `sent_ns`, echoed.
    pub ping_sent_ns: u64,
    /// When the broadcaster received the ping, on its clock (ns since the Unix epoch).
    pub bc_recv_ns: u64,
}

/// What a packet says, after its header.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Body {
    /// A snapshot part; its entities are in the buffer passed to [`decode`] / [`encode`].
    Snapshot(SnapshotHead),
    /// A sender report.
    SenderReport(SenderReport),
    /// A goodbye.
    Goodbye(Goodbye),
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
#[derive(Clone, Copy, Debug, PartialEq)]
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
    /// Entities were given with a body that is not a snapshot.
    #[error("entities given for a packet that is not a snapshot")]
    EntitiesWithoutSnapshot,
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

/// The header as bincode sees it.
#[derive(Serialize, Deserialize)]
struct WireHeader {
    magic: [u8; 4],
    version: u8,
    kind: u8,
    flags: u16,
    session: u64,
    seq: u32,
}

/// Bytes a packet with `body` and `entities` entity records encodes to.
pub fn encoded_len(body: &Body, entities: usize) -> usize {
    match body.kind().fixed_len() {
        Some(len) => len,
        None => SNAPSHOT_FIXED_LEN + entities * ENTITY_LEN,
    }
}

/// How many entity records fit in one snapshot datagram of `budget` bytes,
/// or `None` if the budget cannot hold even one (or exceeds [`MAX_DATAGRAM`]).
pub fn entities_per_part(budget: usize) -> Option<usize> {
    if !(SNAPSHOT_FIXED_LEN + ENTITY_LEN..=MAX_DATAGRAM).contains(&budget) {
        return None;
    }
    Some((budget - SNAPSHOT_FIXED_LEN) / ENTITY_LEN)
}

/// Encodes `packet` (with `entities`, for a snapshot) into `out`; returns the
/// datagram's length. Refuses anything [`decode`] would reject.
pub fn encode(packet: &Packet, entities: &[Entity], out: &mut [u8]) -> Result<usize, EncodeError> {
    let need = encoded_len(&packet.body, entities.len());
    if need > MAX_DATAGRAM {
        return Err(EncodeError::TooLarge { need });
    }
    if let Body::Snapshot(h) = &packet.body {
        if h.parts == 0 || h.part >= h.parts {
            return Err(EncodeError::BadPart);
        }
        if !entities_ok(entities) {
            return Err(EncodeError::BadCoordinate);
        }
    }
    if out.len() < need {
        return Err(EncodeError::BufferTooSmall {
            need,
            have: out.len(),
        });
    }
    let header = WireHeader {
        magic: MAGIC,
        version: VERSION,
        kind: packet.body.kind() as u8,
        flags: 0,
        session: packet.session,
        seq: packet.seq,
    };
    let written = match &packet.body {
        Body::Snapshot(head) => write(&(header, head, entities), out),
        _ if !entities.is_empty() => return Err(EncodeError::EntitiesWithoutSnapshot),
        Body::SenderReport(r) => write(&(header, r), out),
        Body::Goodbye(g) => write(&(header, g), out),
        Body::Subscribe(b) => write(&(header, b), out),
        Body::Challenge(b) => write(&(header, b), out),
        Body::Confirm(b) => write(&(header, b), out),
        Body::Accept(b) => write(&(header, b), out),
        Body::Refuse(b) => write(&(header, b), out),
        Body::Unsubscribe(b) => write(&(header, b), out),
        Body::Ping(b) => write(&(header, b), out),
        Body::Pong(b) => write(&(header, b), out),
    };
    debug_assert_eq!(
        written,
        HEADER_LEN + packet.body.kind().fields_len() + entities.len() * ENTITY_LEN,
        "derived length disagrees with bincode"
    );
    // Zero padding up to the kind's length (padded requests only).
    out[written..need].fill(0);
    Ok(need)
}

/// Encodes `packet` (with `entities`, for a snapshot) into a new buffer of
/// exactly [`encoded_len`] bytes. For callers that do not reuse a buffer
/// (tools, tests); the send path encodes into its own with [`encode`].
pub fn encode_to_vec(packet: &Packet, entities: &[Entity]) -> Result<Vec<u8>, EncodeError> {
    let mut out = vec![0; encoded_len(&packet.body, entities.len())];
    let n = encode(packet, entities, &mut out)?;
    debug_assert_eq!(n, out.len());
    Ok(out)
}

fn write<T: Serialize>(value: &T, out: &mut [u8]) -> usize {
    // The length was checked against the derived size, and a test proves the
    // derived sizes equal bincode's, so this cannot fail.
    bincode::serde::encode_into_slice(value, out, CONFIG).expect("buffer length checked")
}

/// Decodes one datagram. For a snapshot, `entities` is cleared and filled
/// with its records (the buffer is reused to keep the hot path allocation-free);
/// for other kinds, and on any error, it is left empty.
///
/// A sealed datagram ([`FLAG_AUTH`] set) is rejected as
/// [`DecodeError::Sealed`]: only [`decode_opened`], after
/// [`crate::wire::auth::open`] checked and stripped its tag, takes that flag.
pub fn decode(datagram: &[u8], entities: &mut Vec<Entity>) -> Result<Packet, DecodeError> {
    decode_with(datagram, entities, 0)
}

/// Decodes a datagram [`crate::wire::auth::open`] returned: the packet without its
/// tag, whose [`FLAG_AUTH`] bit is set. Otherwise the same as [`decode`].
pub fn decode_opened(datagram: &[u8], entities: &mut Vec<Entity>) -> Result<Packet, DecodeError> {
    decode_with(datagram, entities, FLAG_AUTH)
}

fn decode_with(
    datagram: &[u8],
    entities: &mut Vec<Entity>,
    allowed_flags: u16,
) -> Result<Packet, DecodeError> {
    entities.clear();
    let result = decode_inner(datagram, entities, allowed_flags);
    if result.is_err() {
        entities.clear();
    }
    result
}

fn decode_inner(
    datagram: &[u8],
    entities: &mut Vec<Entity>,
    allowed_flags: u16,
) -> Result<Packet, DecodeError> {
    if datagram.len() > MAX_DATAGRAM {
        return Err(DecodeError::TooLong);
    }
    if datagram.len() < HEADER_LEN {
        return Err(DecodeError::TooShort);
    }
    let (h, _): (WireHeader, usize) =
        bincode::serde::decode_from_slice(&datagram[..HEADER_LEN], CONFIG)
            .map_err(|_| DecodeError::TooShort)?;
    if h.magic != MAGIC {
        return Err(DecodeError::BadMagic);
    }
    if h.version != VERSION {
        return Err(DecodeError::UnsupportedVersion(h.version));
    }
    let kind = Kind::from_u8(h.kind).ok_or(DecodeError::UnknownKind(h.kind))?;
    if h.flags & !FLAG_AUTH != 0 {
        return Err(DecodeError::UnknownFlags(h.flags));
    }
    if h.flags & !allowed_flags != 0 {
        return Err(DecodeError::Sealed);
    }
    let rest = &datagram[HEADER_LEN..];
    let (body, used) = match kind {
        Kind::Snapshot => {
            // bincode reads the fixed fields and the record count; the
            // records themselves have a fixed 16-byte layout and are read
            // through a checked view, because serde's per-element path costs
            // about 100 instructions per entity (callgrind) against about 10.
            // `reference::entities` decodes them through serde in the tests,
            // and the two must agree on any bytes.
            let ((head, count), n): ((SnapshotHead, u64), usize) = read(rest)?;
            let records = &rest[n..];
            let m = usize::try_from(count)
                .ok()
                .and_then(|c| c.checked_mul(ENTITY_LEN))
                .filter(|&len| len <= records.len())
                .ok_or(DecodeError::Truncated)?;
            entities.extend(
                records[..m]
                    .as_chunks::<ENTITY_LEN>()
                    .0
                    .iter()
                    .map(Entity::from_record),
            );
            if head.parts == 0 || head.part >= head.parts {
                return Err(DecodeError::BadPart);
            }
            if !entities_ok(entities) {
                return Err(DecodeError::BadCoordinate);
            }
            (Body::Snapshot(head), n + m)
        }
        Kind::SenderReport => {
            let (r, n) = read(rest)?;
            (Body::SenderReport(r), n)
        }
        Kind::Goodbye => {
            let (g, n) = read(rest)?;
            (Body::Goodbye(g), n)
        }
        Kind::Subscribe => padded(rest, kind, Body::Subscribe)?,
        Kind::Challenge => read(rest).map(|(b, n)| (Body::Challenge(b), n))?,
        Kind::Confirm => padded(rest, kind, Body::Confirm)?,
        Kind::Accept => read(rest).map(|(b, n)| (Body::Accept(b), n))?,
        Kind::Refuse => read(rest).map(|(b, n)| (Body::Refuse(b), n))?,
        Kind::Unsubscribe => read(rest).map(|(b, n)| (Body::Unsubscribe(b), n))?,
        Kind::Ping => padded(rest, kind, Body::Ping)?,
        Kind::Pong => read(rest).map(|(b, n)| (Body::Pong(b), n))?,
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

fn entities_ok(entities: &[Entity]) -> bool {
    // NaN fails the comparison, so it is rejected too.
    let ok = |v: f32| v.abs() <= MAX_COORD;
    entities.iter().all(|e| ok(e.x) && ok(e.y) && ok(e.z))
}

fn read<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<(T, usize), DecodeError> {
    bincode::serde::decode_from_slice(bytes, CONFIG).map_err(|_| DecodeError::Truncated)
}

/// Reads a padded request's fields, then its zero padding: the body must
/// reach the kind's full length, padding included (else `Truncated`: a
/// request must be as long as the replies it can draw), and the padding
/// must be all zero (else `BadPadding`). Returns the bytes used.
fn padded<T: serde::de::DeserializeOwned>(
    rest: &[u8],
    kind: Kind,
    body: fn(T) -> Body,
) -> Result<(Body, usize), DecodeError> {
    let (fields, n) = read(rest)?;
    let end = kind.fixed_len().expect("padded kinds have a fixed length") - HEADER_LEN;
    let padding = rest.get(n..end).ok_or(DecodeError::Truncated)?;
    if padding.iter().any(|&b| b != 0) {
        return Err(DecodeError::BadPadding);
    }
    Ok((body(fields), end))
}

/// The serde path for entity records, kept as the reference the fast
/// record view in [`decode`] must agree with.
#[cfg(test)]
mod reference {
    use super::*;
    use serde::de::{DeserializeSeed, SeqAccess, Visitor};
    use std::fmt;

    /// Decodes `count` (u64) then that many records, through serde.
    pub fn entities(bytes: &[u8]) -> Option<(Vec<Entity>, usize)> {
        let mut out = Vec::new();
        let fits = bytes.len().saturating_sub(U64) / ENTITY_LEN;
        let (_, n) = bincode::serde::seed_decode_from_slice(
            EntitiesInto {
                out: &mut out,
                fits,
            },
            bytes,
            CONFIG,
        )
        .ok()?;
        Some((out, n))
    }

    /// Decodes a sequence of entities into a reused buffer, reserving no more
    /// than the datagram's remaining bytes could hold.
    struct EntitiesInto<'a> {
        out: &'a mut Vec<Entity>,
        fits: usize,
    }

    impl<'de> DeserializeSeed<'de> for EntitiesInto<'_> {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_seq(self)
        }
    }

    impl<'de> Visitor<'de> for EntitiesInto<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a sequence of entity records")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let claimed = seq.size_hint().unwrap_or(0);
            // A lying count fails at the end of the data, after at most `fits` records.
            self.out.reserve(claimed.min(self.fits));
            while let Some(e) = seq.next_element::<Entity>()? {
                self.out.push(e);
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_snapshot() -> (Packet, Vec<Entity>) {
        let p = Packet {
            session: 0x0123_4567_89ab_cdef,
            seq: u32::MAX,
            body: Body::Snapshot(SnapshotHead {
                tick: 7,
                scheduled_ns: 1_000,
                sent_ns: 1_050,
                part: 1,
                parts: 2,
            }),
        };
        let e = vec![
            Entity {
                id: 1,
                x: 1.5,
                y: -2.0,
                z: 0.25,
            },
            Entity {
                id: 2,
                x: 0.0,
                y: 100.0,
                z: -0.5,
            },
        ];
        (p, e)
    }

    #[test]
    fn derived_sizes_match_what_bincode_writes() {
        let (p, e) = sample_snapshot();
        let mut buf = [0xa5u8; 256];
        assert_eq!(
            encode(&p, &e, &mut buf).unwrap(),
            SNAPSHOT_FIXED_LEN + 2 * ENTITY_LEN
        );
        assert_eq!(encode(&p, &[], &mut buf).unwrap(), SNAPSHOT_FIXED_LEN);
        let r = Packet {
            body: Body::SenderReport(SenderReport::default()),
            ..p
        };
        assert_eq!(encode(&r, &[], &mut buf).unwrap(), SENDER_REPORT_LEN);
        let g = Packet {
            body: Body::Goodbye(Goodbye::default()),
            ..p
        };
        assert_eq!(encode(&g, &[], &mut buf).unwrap(), GOODBYE_LEN);
        assert_eq!(HEADER_LEN, 20);
    }

    #[test]
    fn field_positions_are_where_bincode_writes_the_header() {
        let p = Packet {
            session: 0x1122_3344_5566_7788,
            seq: 0x99aa_bbcc,
            body: Body::Goodbye(Goodbye::default()),
        };
        let d = encode_to_vec(&p, &[]).unwrap();
        assert_eq!(d[field::MAGIC], MAGIC);
        assert_eq!(d[field::VERSION], VERSION);
        assert_eq!(d[field::KIND], Kind::Goodbye as u8);
        assert_eq!(d[field::FLAGS], [0, 0]);
        assert_eq!(d[field::SESSION], p.session.to_le_bytes());
        assert_eq!(d[field::SEQ], p.seq.to_le_bytes());
    }

    #[test]
    fn round_trip_reuses_entity_buffer() {
        let (p, e) = sample_snapshot();
        let mut buf = [0u8; 256];
        let n = encode(&p, &e, &mut buf).unwrap();
        let mut out = vec![Entity::default(); 9];
        assert_eq!(decode(&buf[..n], &mut out).unwrap(), p);
        assert_eq!(out, e);
    }

    #[test]
    fn every_truncation_is_rejected_without_panic() {
        let (p, e) = sample_snapshot();
        let mut buf = [0u8; 256];
        let n = encode(&p, &e, &mut buf).unwrap();
        let mut out = Vec::new();
        for len in 0..n {
            assert!(decode(&buf[..len], &mut out).is_err(), "len {len}");
            assert!(out.is_empty() || len >= SNAPSHOT_FIXED_LEN);
        }
    }

    #[test]
    fn lying_entity_count_is_bounded_by_the_bytes_present() {
        let (p, e) = sample_snapshot();
        let mut buf = [0u8; 256];
        let n = encode(&p, &e, &mut buf).unwrap();
        buf[SNAPSHOT_FIXED_LEN - 8..SNAPSHOT_FIXED_LEN].copy_from_slice(&u64::MAX.to_le_bytes());
        let mut out = Vec::new();
        assert_eq!(decode(&buf[..n], &mut out), Err(DecodeError::Truncated));
        // Two records fit in the bytes present; Vec rounds a small reservation up to 4.
        assert!(out.capacity() <= 4, "{}", out.capacity());
    }

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
        assert_eq!(bad(4, 2), Err(DecodeError::UnsupportedVersion(2)));
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

    /// One packet of every subscription kind, with every field non-zero.
    fn subscription_samples() -> Vec<Packet> {
        let cookie = Cookie {
            bucket: 170_000_000,
            mac: [0x5a; MAC_LEN],
        };
        let bodies = [
            Body::Subscribe(Subscribe { nonce: 1 }),
            Body::Challenge(Challenge { nonce: 2, cookie }),
            Body::Confirm(Confirm { nonce: 3, cookie }),
            Body::Accept(Accept {
                nonce: 4,
                lease_ms: 5_000,
            }),
            Body::Refuse(Refuse {
                nonce: 5,
                reason: REFUSE_FULL,
            }),
            Body::Unsubscribe(Unsubscribe { nonce: 6, cookie }),
            Body::Ping(Ping {
                nonce: 7,
                sent_ns: 8,
            }),
            Body::Pong(Pong {
                nonce: 9,
                ping_sent_ns: 10,
                bc_recv_ns: 11,
            }),
        ];
        bodies
            .into_iter()
            .map(|body| Packet {
                session: 0x00c1_1e47,
                seq: 0,
                body,
            })
            .collect()
    }

    #[test]
    fn subscription_kinds_round_trip_at_their_stated_lengths() {
        for p in subscription_samples() {
            let kind = p.body.kind();
            assert!(!kind.is_sequenced(), "{kind:?}");
            let mut buf = [0xa5u8; 128];
            let n = encode(&p, &[], &mut buf).unwrap();
            assert_eq!(Some(n), kind.fixed_len(), "{kind:?}");
            assert_eq!(n, encoded_len(&p.body, 0));
            assert!(
                buf[n..].iter().all(|&b| b == 0xa5),
                "{kind:?} wrote past its end"
            );
            let pad = &buf[HEADER_LEN + kind.fields_len()..n];
            assert!(pad.iter().all(|&b| b == 0), "{kind:?} padding");
            assert_eq!(decode(&buf[..n], &mut Vec::new()), Ok(p), "{kind:?}");
            for len in 0..n {
                assert!(
                    decode(&buf[..len], &mut Vec::new()).is_err(),
                    "{kind:?} {len}"
                );
            }
            let mut long = buf[..n].to_vec();
            long.push(0);
            assert_eq!(
                decode(&long, &mut Vec::new()),
                Err(DecodeError::TrailingBytes(1)),
                "{kind:?}"
            );
        }
        assert_eq!(
            [SUBSCRIBE_LEN, CHALLENGE_LEN, CONFIRM_LEN, ACCEPT_LEN],
            [52, 52, 52, 32]
        );
        assert_eq!(
            [REFUSE_LEN, UNSUBSCRIBE_LEN, PING_LEN, PONG_LEN],
            [29, 52, 44, 44]
        );
    }

    #[test]
    fn no_reply_is_longer_than_a_request_that_draws_it() {
        let len = |k: Kind| k.fixed_len().unwrap();
        let draws = [
            (Kind::Subscribe, &[Kind::Challenge][..]),
            (
                Kind::Confirm,
                &[Kind::Challenge, Kind::Accept, Kind::Refuse][..],
            ),
            (Kind::Ping, &[Kind::Pong][..]),
            (Kind::Unsubscribe, &[][..]),
        ];
        for (request, replies) in draws {
            assert!(request.is_request());
            for &reply in replies {
                assert!(!reply.is_request());
                assert!(len(reply) <= len(request), "{reply:?} > {request:?}");
            }
        }
        for k in Kind::ALL.into_iter().filter(|k| !k.is_request()) {
            assert!(len_or_max(k) <= MAX_REPLY_LEN || k.is_sequenced(), "{k:?}");
        }
        const { assert!(SUBSCRIBE_LEN >= MAX_REPLY_LEN) };
    }

    fn len_or_max(k: Kind) -> usize {
        k.fixed_len().unwrap_or(usize::MAX)
    }

    #[test]
    fn padding_must_be_zero_and_complete() {
        for p in subscription_samples() {
            let kind = p.body.kind();
            let mut buf = [0u8; 128];
            let n = encode(&p, &[], &mut buf).unwrap();
            let fields_end = HEADER_LEN + kind.fields_len();
            if fields_end == n {
                continue; // not padded
            }
            for at in fields_end..n {
                let mut b = buf;
                b[at] = 1;
                assert_eq!(
                    decode(&b[..n], &mut Vec::new()),
                    Err(DecodeError::BadPadding),
                    "{kind:?} byte {at}"
                );
            }
            assert_eq!(
                decode(&buf[..n - 1], &mut Vec::new()),
                Err(DecodeError::Truncated),
                "{kind:?} one byte short"
            );
        }
    }

    #[test]
    fn kind_bytes_are_stable() {
        let bytes: Vec<u8> = Kind::ALL.iter().map(|&k| k as u8).collect();
        assert_eq!(bytes, [1, 2, 3, 16, 17, 18, 19, 20, 21, 22, 23]);
        for k in Kind::ALL {
            assert_eq!(Kind::from_u8(k as u8), Some(k));
        }
        assert_eq!(Kind::from_u8(24), None);
        assert_eq!(Kind::from_u8(4), None);
    }

    #[test]
    fn record_view_agrees_with_serde_on_any_bytes() {
        // A counter-based generator: every bit pattern class shows up
        // (NaN payloads, subnormals, -0.0, huge ids), and lengths that cut a
        // record short or leave bytes over.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 24) as u8
        };
        for round in 0..2_000usize {
            let count = round % 9;
            let extra = round % 5;
            let mut bytes = (count as u64).to_le_bytes().to_vec();
            bytes.extend((0..count * ENTITY_LEN + extra).map(|_| next()));
            if round % 7 == 0 {
                bytes.truncate(bytes.len().saturating_sub(3));
            }
            let (expected, used) = match reference::entities(&bytes) {
                Some(r) => r,
                None => {
                    assert!(bytes.len() < U64 + count * ENTITY_LEN, "round {round}");
                    continue;
                }
            };
            let view: Vec<Entity> = bytes[U64..U64 + count * ENTITY_LEN]
                .as_chunks::<ENTITY_LEN>()
                .0
                .iter()
                .map(Entity::from_record)
                .collect();
            assert_eq!(used, U64 + count * ENTITY_LEN);
            let bits = |v: &[Entity]| -> Vec<[u32; 4]> {
                v.iter()
                    .map(|e| [e.id, e.x.to_bits(), e.y.to_bits(), e.z.to_bits()])
                    .collect()
            };
            assert_eq!(bits(&view), bits(&expected), "round {round}");
        }
    }

    #[test]
    fn budget_split_is_derived_from_sizes() {
        assert_eq!(
            entities_per_part(1200),
            Some((1200 - SNAPSHOT_FIXED_LEN) / 16)
        );
        assert_eq!(entities_per_part(SNAPSHOT_FIXED_LEN + ENTITY_LEN - 1), None);
        assert_eq!(entities_per_part(MAX_DATAGRAM + 1), None);
    }
}
