//! The bit-packed section of a compact snapshot part (kind 6): a bit
//! writer and a checked bit reader, with the two variable-length codes the
//! records use. bincode writes the fixed fields; it has no way to write
//! fields narrower than a byte, so this hand-written section, frozen by the
//! vectors in `proto/vectors/`, is the one exception.
//!
//! # Bit order
//!
//! Bits are packed least significant first: the first bit written is bit 0
//! of byte 0, the ninth is bit 0 of byte 1. A field of `n` bits is written
//! with its least significant bit first. The last byte is padded with zero
//! bits, which the reader checks.
//!
//! # Codes
//!
//! * **Elias gamma** of `n ≥ 1`, `N = ⌊log2 n⌋`: `N` zero bits, a one bit,
//!   then the `N` bits of `n` below its leading one (least significant
//!   first). `1` is `1`, `2` is `01` then `0`, `5` is `001` then `01`.
//!   At most 65 bits for `n < 2^33`; the reader refuses `N > 32`.
//! * **Exp-Golomb** (order 0) of `v ≥ 0`: the gamma code of `v + 1`.
//! * **Signed** values are zigzag-mapped first: `0, −1, 1, −2, …` to
//!   `0, 1, 2, 3, …` (`(v << 1) ^ (v >> 31)`).
//!
//! The reader never panics and never reads past its slice: every read
//! returns [`Short`] at the end of the data, and a gamma prefix longer
//! than 32 zero bits is [`Short`] too (no valid record has one).

/// The data ended (or held an impossible code) before a field did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Short;

/// Writes bits, least significant first, appending whole bytes to a `Vec`.
#[derive(Debug)]
pub struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    /// Bits not yet written out, in the low `used` bits (fewer than 64).
    acc: u64,
    used: u32,
}

/// Where a [`BitWriter`] was, to go back to with [`BitWriter::rewind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark {
    len: usize,
    acc: u64,
    used: u32,
}

impl<'a> BitWriter<'a> {
    /// A writer appending to `out`.
    pub fn new(out: &'a mut Vec<u8>) -> BitWriter<'a> {
        BitWriter {
            out,
            acc: 0,
            used: 0,
        }
    }

    /// Writes the low `n` bits of `value` (`n ≤ 64`; higher bits of
    /// `value` must be zero).
    #[inline(always)]
    pub fn write(&mut self, value: u64, n: u32) {
        debug_assert!(n <= 64 && (n == 64 || value >> n == 0));
        let acc = self.acc | value << self.used; // used < 64
        let used = self.used + n;
        if used < 64 {
            (self.acc, self.used) = (acc, used);
        } else {
            // A whole word: out it goes, with what of `value` did not fit
            // (none when the word was empty before).
            self.out.extend_from_slice(&acc.to_le_bytes());
            self.acc = value.checked_shr(64 - self.used).unwrap_or(0);
            self.used = used - 64;
        }
    }

    /// Writes the Elias gamma code of `n` (`1 ≤ n < 2^33`).
    #[inline(always)]
    pub fn gamma(&mut self, n: u64) {
        debug_assert!((1..1 << 33).contains(&n));
        let len = 63 - n.leading_zeros(); // N
        let rest = n & !(1 << len);
        if len < 16 {
            // N zeros, the one, the rest: one write of 2N + 1 bits.
            self.write((rest << (len + 1)) | (1 << len), 2 * len + 1);
        } else {
            self.write(0, len); // len ≤ 32
            self.write(1, 1);
            self.write(rest, len);
        }
    }

    /// Writes the order-0 Exp-Golomb code of `v` (`v < 2^33 − 1`).
    #[inline]
    pub fn exp_golomb(&mut self, v: u64) {
        self.gamma(v + 1);
    }

    /// Writes a signed value: zigzag, then Exp-Golomb.
    #[inline(always)]
    pub fn signed(&mut self, v: i32) {
        self.exp_golomb(u64::from(zigzag(v)));
    }

    /// Bits written so far, counting from the writer's start at the end
    /// of the bytes that were in `out`.
    pub fn bit_len(&self, start: usize) -> usize {
        (self.out.len() - start) * 8 + self.used as usize
    }

    /// Where the writer is now.
    pub fn mark(&self) -> Mark {
        Mark {
            len: self.out.len(),
            acc: self.acc,
            used: self.used,
        }
    }

    /// Goes back to `mark`, forgetting what was written since.
    pub fn rewind(&mut self, mark: Mark) {
        self.out.truncate(mark.len);
        self.acc = mark.acc;
        self.used = mark.used;
    }

    /// Writes out the last bits, padded with zeros to a whole byte.
    pub fn finish(self) {
        let bytes = self.used.div_ceil(8) as usize;
        self.out.extend_from_slice(&self.acc.to_le_bytes()[..bytes]);
    }
}

/// Reads bits, least significant first, from a slice; never past it.
#[derive(Clone, Debug)]
pub struct BitReader<'a> {
    data: &'a [u8],
    /// The next bit to read, counted from the start of `data`.
    pos: usize,
}

impl<'a> BitReader<'a> {
    /// A reader at the first bit of `data`.
    pub fn new(data: &'a [u8]) -> BitReader<'a> {
        BitReader { data, pos: 0 }
    }

    /// Up to 57 bits from the current position (zeros past the end),
    /// without moving.
    #[inline]
    fn peek(&self) -> u64 {
        let byte = self.pos / 8;
        if let Some(w) = self.data.get(byte..byte + 8) {
            let w: [u8; 8] = w.try_into().expect("8 bytes");
            return u64::from_le_bytes(w) >> (self.pos % 8);
        }
        let mut word = [0u8; 8];
        let avail = self.data.len().saturating_sub(byte).min(8);
        word[..avail].copy_from_slice(&self.data[byte..byte + avail]);
        u64::from_le_bytes(word) >> (self.pos % 8)
    }

    /// The next 57 bits (zeros past the end) and how many of them are
    /// data, without moving: for a caller that parses several short codes
    /// from one word, then [`BitReader::skip`]s what it used.
    #[inline(always)]
    pub fn word(&self) -> (u64, u32) {
        (
            self.peek() & ((1 << 57) - 1),
            self.remaining().min(57) as u32,
        )
    }

    /// Moves past `n` bits that [`BitReader::word`] showed were there.
    #[inline(always)]
    pub fn skip(&mut self, n: u32) {
        debug_assert!(n as usize <= self.remaining());
        self.pos += n as usize;
    }

    /// Bits left.
    pub fn remaining(&self) -> usize {
        (self.data.len() * 8).saturating_sub(self.pos)
    }

    /// Reads `n ≤ 32` bits.
    #[inline]
    pub fn read(&mut self, n: u32) -> Result<u64, Short> {
        if (n as usize) > self.remaining() {
            return Err(Short);
        }
        let v = self.peek() & ((1u64 << n) - 1);
        self.pos += n as usize;
        Ok(v)
    }

    /// Reads an Elias gamma code: a value in `1..2^33`.
    #[inline]
    pub fn gamma(&mut self) -> Result<u64, Short> {
        let word = self.peek();
        let zeros = word.trailing_zeros(); // 64 when the next 57 bits are zero
        if zeros > 32 {
            return Err(Short);
        }
        if zeros < 28 && 2 * zeros < (self.remaining().min(57)) as u32 {
            // The whole code is in the peeked word.
            let rest = (word >> (zeros + 1)) & ((1u64 << zeros) - 1);
            self.pos += (2 * zeros + 1) as usize;
            return Ok((1 << zeros) | rest);
        }
        self.read(zeros + 1)?; // the zeros and the one
        let lo = self.read(zeros.min(16))?;
        let hi = self.read(zeros - zeros.min(16))?;
        Ok((1 << zeros) | lo | (hi << 16))
    }

    /// Reads an order-0 Exp-Golomb code.
    #[inline]
    pub fn exp_golomb(&mut self) -> Result<u64, Short> {
        Ok(self.gamma()? - 1)
    }

    /// Reads a signed value (zigzag, Exp-Golomb); a value beyond the `i32`
    /// range is [`Short`].
    #[inline]
    pub fn signed(&mut self) -> Result<i32, Short> {
        let v = u32::try_from(self.exp_golomb()?).map_err(|_| Short)?;
        Ok(unzigzag(v))
    }

    /// Whether only zero padding (less than a byte) is left.
    pub fn at_padding(&self) -> bool {
        self.remaining() < 8 && (self.remaining() == 0 || self.peek() == 0)
    }

    /// Bytes touched so far: the position rounded up to a whole byte.
    pub fn bytes_used(&self) -> usize {
        self.pos.div_ceil(8)
    }
}

/// `0, −1, 1, −2, …` to `0, 1, 2, 3, …`.
#[inline]
pub fn zigzag(v: i32) -> u32 {
    ((v << 1) ^ (v >> 31)) as u32
}

/// The inverse of [`zigzag`].
#[inline]
pub const fn unzigzag(v: u32) -> i32 {
    ((v >> 1) as i32) ^ -((v & 1) as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_documented_bits() {
        let mut out = Vec::new();
        let mut w = BitWriter::new(&mut out);
        w.gamma(1); // 1
        w.gamma(2); // 0 1 0
        w.gamma(5); // 0 0 1 1 0 (rest 01, least significant first: 1 then 0)
        w.finish();
        // bits in order: 1 | 0 1 0 | 0 0 1 1 0 → byte 0 = 0b0100_1001? read LSB first:
        // bit0=1 bit1=0 bit2=1 bit3=0 bit4=0 bit5=0 bit6=1 bit7=1, bit8=0
        assert_eq!(out, [0b1100_0101, 0b0000_0000]);
        let mut r = BitReader::new(&out);
        assert_eq!((r.gamma(), r.gamma(), r.gamma()), (Ok(1), Ok(2), Ok(5)));
        assert!(r.at_padding());
    }

    #[test]
    fn every_value_round_trips_and_truncation_is_short() {
        let mut vals: Vec<u64> = (1..300).collect();
        vals.extend((1..=33).map(|b| (1u64 << b) - 1));
        vals.extend((0..=32).map(|b| 1u64 << b));
        let signed = [0, 1, -1, 63, -64, i32::MAX, i32::MIN, 12345, -98765];
        let mut out = vec![0xee]; // a byte before: the writer appends
        let mut w = BitWriter::new(&mut out);
        for &v in &vals {
            w.gamma(v);
            w.write(v & 0x7, 3);
        }
        for &s in &signed {
            w.signed(s);
        }
        let bits = w.bit_len(1);
        w.finish();
        assert_eq!(out.len() - 1, bits.div_ceil(8));
        let mut r = BitReader::new(&out[1..]);
        for &v in &vals {
            assert_eq!(r.gamma(), Ok(v));
            assert_eq!(r.read(3), Ok(v & 0x7));
        }
        for &s in &signed {
            assert_eq!(r.signed(), Ok(s));
        }
        assert!(r.at_padding());
        // Every truncation fails cleanly somewhere, never panics.
        for cut in 0..out.len() - 1 {
            let mut r = BitReader::new(&out[1..1 + cut]);
            let mut ok = true;
            for &v in &vals {
                ok &= r.gamma() == Ok(v) && r.read(3) == Ok(v & 0x7);
            }
            for &v in &signed {
                ok &= r.signed() == Ok(v);
            }
            assert!(!ok, "cut at {cut} bytes read everything");
        }
    }

    #[test]
    fn impossible_codes_are_short() {
        // 40 zero bits then a one: a prefix no valid record has.
        let mut data = vec![0u8; 5];
        data.push(1);
        assert_eq!(BitReader::new(&data).gamma(), Err(Short));
        assert_eq!(BitReader::new(&[]).gamma(), Err(Short));
        // A value beyond i32 as a signed field.
        let mut out = Vec::new();
        let mut w = BitWriter::new(&mut out);
        w.exp_golomb(1 << 32);
        w.finish();
        assert_eq!(BitReader::new(&out).signed(), Err(Short));
    }

    #[test]
    fn rewind_forgets_what_was_written() {
        let mut out = Vec::new();
        let mut w = BitWriter::new(&mut out);
        w.gamma(9);
        let m = w.mark();
        for v in 1..100 {
            w.gamma(v);
        }
        w.rewind(m);
        w.gamma(3);
        w.finish();
        let mut r = BitReader::new(&out);
        assert_eq!((r.gamma(), r.gamma()), (Ok(9), Ok(3)));
        assert!(r.at_padding());
    }
}
