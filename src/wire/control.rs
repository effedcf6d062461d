//! The subscription kinds (16 to 23): the only packets from receiver to
//! broadcaster, and the broadcaster's answers. Not sequenced: they carry
//! `seq` = 0, ignored on receipt, and never enter sequence accounting. In
//! them the header's `session` is the broadcaster's session (broadcaster →
//! receiver) or the receiver's random client id (receiver → broadcaster).
//!
//! This file owns their fields, the [`Cookie`], their lengths (derived from
//! the field types, never typed twice) and the padding rule: the requests a
//! broadcaster answers ([`Kind::Subscribe`], [`Kind::Confirm`],
//! [`Kind::Ping`]) are zero-padded to at least the length of every reply
//! they can draw, so no reply is larger than the request that causes it.
//! Compile-time assertions below hold the lengths to that, and the decoder
//! rejects short or non-zero padding.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::codec::{self, U32, U64, U8};
use super::{Body, DecodeError, Kind, HEADER_LEN};

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
/// Bytes of a subscribe's fields after the header (its nonce), padding excluded.
pub(super) const SUBSCRIBE_FIELDS_LEN: usize = U64;
/// Bytes of a confirm's fields after the header (nonce and cookie), padding excluded.
pub(super) const CONFIRM_FIELDS_LEN: usize = U64 + COOKIE_LEN;
/// Bytes of a ping's fields after the header (nonce and send time), padding excluded.
pub(super) const PING_FIELDS_LEN: usize = 2 * U64;
/// Bytes of a whole subscribe datagram: its nonce, then zero padding up to
/// the longest reply, so that no reply can be larger than the request.
pub const SUBSCRIBE_LEN: usize = max(HEADER_LEN + SUBSCRIBE_FIELDS_LEN, MAX_REPLY_LEN);
/// Bytes of a whole confirm datagram: nonce and cookie, then zero padding up
/// to the longest of its possible replies (accept, refuse, a new challenge).
/// The fields alone are already that long, so the padding is empty (in
/// versions 1 and 2).
pub const CONFIRM_LEN: usize = max(
    HEADER_LEN + CONFIRM_FIELDS_LEN,
    max(CHALLENGE_LEN, max(ACCEPT_LEN, REFUSE_LEN)),
);
/// Bytes of a whole ping datagram: nonce and send time, then zero padding up
/// to the pong's length.
pub const PING_LEN: usize = max(HEADER_LEN + PING_FIELDS_LEN, PONG_LEN);
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
    /// Why: [`REFUSE_FULL`]; every other value (0, 2..=255) is reserved:
    /// a sender does not send it, and a receiver takes it as a refusal for
    /// an unknown reason, shown as `refused: unknown reason N`.
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

/// Reads a padded request's fields, then its zero padding: the body must
/// reach the kind's full length, padding included (else `Truncated`: a
/// request must be as long as the replies it can draw), and the padding
/// must be all zero (else `BadPadding`). Returns the body and the bytes used.
pub(super) fn padded<T: DeserializeOwned>(
    rest: &[u8],
    kind: Kind,
    body: fn(T) -> Body,
) -> Result<(Body, usize), DecodeError> {
    let (fields, n) = codec::read(rest)?;
    let end = kind.fixed_len().expect("padded kinds have a fixed length") - HEADER_LEN;
    let padding = rest.get(n..end).ok_or(DecodeError::Truncated)?;
    if padding.iter().any(|&b| b != 0) {
        return Err(DecodeError::BadPadding);
    }
    Ok((body(fields), end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{decode, encode, encoded_len, Packet};

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
}
