//! The codec under the wire format: serde values to bytes and back through
//! bincode `=2.0.1`, little-endian, fixed-width integers, with a decode
//! limit of one datagram. This is the only file that names bincode, so the
//! codec can be swapped without a wire change (the byte-exact vectors in
//! `proto/vectors/` would catch one that changed a byte).

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{DecodeError, MAX_DATAGRAM};

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

// Bytes of each integer on the wire: with fixed-width encoding, exactly its
// size in memory. Every length in `wire` is derived from these.
/// Bytes of a `u8`.
pub(super) const U8: usize = size_of::<u8>();
/// Bytes of a `u16`.
pub(super) const U16: usize = size_of::<u16>();
/// Bytes of a `u32` (and of an `f32`, written as its bits).
pub(super) const U32: usize = size_of::<u32>();
/// Bytes of a `u64` (and of a sequence length, which bincode writes as one).
pub(super) const U64: usize = size_of::<u64>();

/// Writes `value` at the start of `out`; returns the bytes written.
///
/// # Panics
///
/// If `out` is too short. Callers check its length against the derived
/// size first, and a test proves the derived sizes equal bincode's, so this
/// cannot happen.
pub(super) fn write<T: Serialize>(value: &T, out: &mut [u8]) -> usize {
    bincode::serde::encode_into_slice(value, out, CONFIG).expect("buffer length checked")
}

/// Reads a `T` from the start of `bytes`; returns it and the bytes it used.
/// Any failure is [`DecodeError::Truncated`]: with fixed-width fields and no
/// tags, running out of bytes is the only way bincode can fail here.
pub(super) fn read<T: DeserializeOwned>(bytes: &[u8]) -> Result<(T, usize), DecodeError> {
    bincode::serde::decode_from_slice(bytes, CONFIG).map_err(|_| DecodeError::Truncated)
}

/// Reads through a serde seed, for the tests' reference decoders.
#[cfg(test)]
pub(super) fn read_seed<'de, S: serde::de::DeserializeSeed<'de>>(
    seed: S,
    bytes: &'de [u8],
) -> Option<(S::Value, usize)> {
    bincode::serde::seed_decode_from_slice(seed, bytes, CONFIG).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_take_their_fixed_width_little_endian() {
        let mut out = [0xa5u8; 32];
        let n = write(&(1u8, 2u16, 3u32, 4u64), &mut out);
        assert_eq!(n, U8 + U16 + U32 + U64);
        assert_eq!(out[..n], [1, 2, 0, 3, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            read::<(u8, u16, u32, u64)>(&out[..n]),
            Ok(((1, 2, 3, 4), n))
        );
        assert_eq!(read::<u64>(&out[..U64 - 1]), Err(DecodeError::Truncated));
    }
}
