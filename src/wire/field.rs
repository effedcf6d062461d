//! Positions of the common header's fields, named once. The codec writes
//! the header; these let code that must look at raw bytes (the auth layer's
//! flag, the subscription table's kind check, the fuzzer's field-aware
//! mutations) do so without typing offsets again. A test holds them to what
//! the codec writes.

use std::ops::Range;

use super::codec::{U16, U32, U64, U8};
use super::MAGIC as MAGIC_BYTES;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{self, encode_to_vec, Body, Goodbye, Kind, Packet};

    #[test]
    fn field_positions_are_where_bincode_writes_the_header() {
        let p = Packet {
            session: 0x1122_3344_5566_7788,
            seq: 0x99aa_bbcc,
            body: Body::Goodbye(Goodbye::default()),
        };
        let d = encode_to_vec(&p, &[]).unwrap();
        assert_eq!(d[MAGIC], wire::MAGIC);
        assert_eq!(d[VERSION], wire::VERSION);
        assert_eq!(d[KIND], Kind::Goodbye as u8);
        assert_eq!(d[FLAGS], [0, 0]);
        assert_eq!(d[SESSION], p.session.to_le_bytes());
        assert_eq!(d[SEQ], p.seq.to_le_bytes());
    }
}
