//! The authentication tag, the only part of authentication that is bytes:
//! a keyed MAC on every datagram with a pre-shared key. Sans-IO.
//!
//! # The tag
//!
//! A sealed datagram is the encoded packet with bit [`FLAG_AUTH`] set in the
//! header's `flags`, followed by a [`TAG_LEN`]-byte tag: the BLAKE3 keyed hash
//! ([`blake3::keyed_hash`], a MAC by design, no HMAC construction needed) of
//! every byte before the tag, header and flag included, truncated to its
//! first 16 bytes. [`seal`] sets the flag and appends the tag; [`open`]
//! checks both, comparing tags in constant time, and returns the datagram
//! without its tag. A sealed datagram is [`TAG_LEN`] bytes longer than the
//! packet, so a sender sizes its payload budget to leave room for it.
//!
//! Mixed setups fail loudly, not silently: a receiver without a key rejects a
//! sealed datagram (`wire::DecodeError::Sealed`, counted in
//! `auth_unexpected` and warned about by the CLI), and a receiver with a key
//! counts an unsealed one in `auth_failed`. Neither is applied.
//!
//! A MAC proves who sent a datagram, not when: the replay window that
//! refuses a datagram seen before is [`crate::core::replay`]. Keys are read
//! from files by [`crate::runtime::key`].
//!
//! # Cost
//!
//! One BLAKE3 hash of the datagram per seal or open. For a full 1,200-byte
//! snapshot part that is in the order of a microsecond or two: the same order
//! as, and up to about twice, the decode, track and apply it guards. BLAKE3
//! rather than HMAC-SHA256: its keyed mode is a MAC by design, and it is no
//! slower at 1,200 bytes and several times faster on small control packets
//! and large parts (HMAC's two extra compressions, SHA-256's serial chain).
//! The figures are measured in `benches/`, not asserted here.

use std::ops::Range;

use crate::wire::{self, FLAG_AUTH};

/// Bytes of a key.
pub const KEY_LEN: usize = 32;
/// Bytes of the tag appended to a sealed datagram.
pub const TAG_LEN: usize = 16;

/// The header's `flags` field (u16 little-endian), where `wire` puts it.
const FLAGS: Range<usize> = wire::field::FLAGS;

/// The header's `flags`, or `None` for a datagram too short to have them.
pub fn flags(datagram: &[u8]) -> Option<u16> {
    let b = datagram.get(FLAGS)?;
    Some(u16::from_le_bytes([b[0], b[1]]))
}

/// Whether a datagram says it carries a tag (its AUTH flag is set).
pub fn is_sealed(datagram: &[u8]) -> bool {
    flags(datagram).is_some_and(|f| f & FLAG_AUTH != 0)
}

/// A 32-byte pre-shared key. Its `Debug` output does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Key([u8; KEY_LEN]);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

impl Key {
    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Key {
        Key(bytes)
    }

    /// The key's bytes, for the MAC.
    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

fn tag(key: &Key, data: &[u8]) -> [u8; TAG_LEN] {
    let hash = blake3::keyed_hash(key.bytes(), data);
    let mut tag = [0u8; TAG_LEN];
    tag.copy_from_slice(&hash.as_bytes()[..TAG_LEN]);
    tag
}

/// Seals an encoded packet in place: sets [`FLAG_AUTH`] in its flags and
/// appends the tag over every byte, header included.
///
/// # Panics
///
/// If `datagram` is shorter than the common header (it is not a packet).
pub fn seal(key: &Key, datagram: &mut Vec<u8>) {
    let len = datagram.len();
    datagram.resize(len + TAG_LEN, 0);
    seal_into(key, datagram, len);
}

/// Seals the packet in `buf[..len]` without allocating: sets [`FLAG_AUTH`],
/// writes the tag to `buf[len..len + TAG_LEN]` and returns the sealed
/// length, `len + TAG_LEN`. For a sender that encodes into a fixed buffer.
///
/// # Panics
///
/// If `len` is shorter than the common header, or `buf` has no room for the tag.
pub fn seal_into(key: &Key, buf: &mut [u8], len: usize) -> usize {
    assert!(
        len >= wire::HEADER_LEN && buf.len() >= len + TAG_LEN,
        "seal: a {len}-byte packet in a {}-byte buffer",
        buf.len()
    );
    let flags = flags(buf).unwrap_or(0) | FLAG_AUTH;
    buf[FLAGS].copy_from_slice(&flags.to_le_bytes());
    let t = tag(key, &buf[..len]);
    buf[len..len + TAG_LEN].copy_from_slice(&t);
    len + TAG_LEN
}

/// Why [`open`] refused a datagram. Every one counts as `auth_failed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Too short to hold a header and a tag.
    #[error("datagram too short to carry a tag")]
    TooShort,
    /// The AUTH flag is not set: the sender has no key, or it was cleared.
    #[error("datagram is not sealed (AUTH flag clear)")]
    NotSealed,
    /// The tag does not match: forged, tampered, or another key.
    #[error("tag does not match")]
    BadTag,
}

/// Checks a sealed datagram's flag and tag (in constant time) and returns
/// the datagram without its tag. The AUTH flag is still set in what it
/// returns; the decoder is told the datagram was opened.
pub fn open<'a>(key: &Key, datagram: &'a [u8]) -> Result<&'a [u8], AuthError> {
    if datagram.len() < wire::HEADER_LEN + TAG_LEN {
        return Err(AuthError::TooShort);
    }
    if !is_sealed(datagram) {
        return Err(AuthError::NotSealed);
    }
    let (packet, got) = datagram.split_at(datagram.len() - TAG_LEN);
    let got: &[u8; TAG_LEN] = got.try_into().map_err(|_| AuthError::TooShort)?;
    if constant_time_eq::constant_time_eq_16(&tag(key, packet), got) {
        Ok(packet)
    } else {
        Err(AuthError::BadTag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Body, Entity, Packet, SnapshotHead};

    const KEY: Key = Key([7; KEY_LEN]);

    fn packet() -> Vec<u8> {
        let p = Packet {
            session: 0xf0e1_d2c3_b4a5_9687,
            seq: u32::MAX,
            body: Body::Snapshot(SnapshotHead {
                tick: 9,
                scheduled_ns: 1,
                sent_ns: 2,
                part: 0,
                parts: 1,
            }),
        };
        let e = [Entity {
            id: 3,
            x: 1.0,
            y: -2.0,
            z: 0.5,
        }];
        wire::encode_to_vec(&p, &e).unwrap()
    }

    fn sealed() -> Vec<u8> {
        let mut d = packet();
        seal(&KEY, &mut d);
        d
    }

    #[test]
    fn good_tag_is_accepted_and_open_returns_the_packet_with_its_flag() {
        let d = sealed();
        let mut want = packet();
        want[FLAGS].copy_from_slice(&FLAG_AUTH.to_le_bytes());
        assert_eq!(d.len(), want.len() + TAG_LEN);
        assert_eq!(open(&KEY, &d), Ok(&want[..]));
        assert!(is_sealed(&d) && !is_sealed(&packet()));
    }

    #[test]
    fn every_single_bit_flip_is_rejected() {
        let d = sealed();
        for bit in 0..d.len() * 8 {
            let mut t = d.clone();
            t[bit / 8] ^= 1 << (bit % 8);
            let want = if bit / 8 == FLAGS.start && bit % 8 == 0 {
                AuthError::NotSealed
            } else {
                AuthError::BadTag
            };
            assert_eq!(open(&KEY, &t), Err(want), "bit {bit}");
        }
    }

    #[test]
    fn seal_into_a_fixed_buffer_equals_seal() {
        let p = packet();
        let mut buf = vec![0xa5; 512];
        buf[..p.len()].copy_from_slice(&p);
        let n = seal_into(&KEY, &mut buf, p.len());
        assert_eq!(buf[..n], sealed()[..]);
        assert!(buf[n..].iter().all(|&b| b == 0xa5));
    }

    #[test]
    fn wrong_key_is_rejected() {
        let mut other = [7; KEY_LEN];
        other[31] = 6;
        assert_eq!(open(&Key(other), &sealed()), Err(AuthError::BadTag));
    }

    #[test]
    fn truncated_extended_or_unsealed_datagrams_are_rejected() {
        let d = sealed();
        for cut in 1..=TAG_LEN {
            assert!(open(&KEY, &d[..d.len() - cut]).is_err(), "cut {cut}");
        }
        let mut longer = d.clone();
        longer.push(0);
        assert_eq!(open(&KEY, &longer), Err(AuthError::BadTag));
        assert_eq!(open(&KEY, &d[..wire::HEADER_LEN]), Err(AuthError::TooShort));
        // An unsealed packet with a tag-sized tail is refused on the flag.
        let mut plain = packet();
        plain.extend_from_slice(&[0; TAG_LEN]);
        assert_eq!(open(&KEY, &plain), Err(AuthError::NotSealed));
    }

    #[test]
    fn debug_does_not_show_the_key() {
        assert_eq!(format!("{KEY:?}"), "Key(..)");
    }
}
