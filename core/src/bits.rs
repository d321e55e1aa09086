//! Bit operations on string values, as Redis 7.0 defines them (SETBIT, GETBIT, BITCOUNT,
//! BITPOS, BITOP): pure functions of the bytes, shared by the state machine (writes) and the
//! reply shaping (reads). Bit 0 is the most significant bit of the first byte.

use crate::command::VALUE_MAX_BYTES;
pub use crate::command::{BitOp, BIT_OFFSET_LIMIT};

/// Whether a BITCOUNT/BITPOS range counts bytes (the default) or bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RangeUnit {
    Byte,
    Bit,
}

/// The bit at `offset` (0 past the end).
pub fn get_bit(value: &[u8], offset: u64) -> bool {
    let byte = usize::try_from(offset / 8).unwrap_or(usize::MAX);
    value
        .get(byte)
        .is_some_and(|b| b & (0x80 >> (offset % 8)) != 0)
}

/// Sets the bit at `offset` to `bit`, growing the value with zero bytes as needed; returns the
/// old bit.
pub fn set_bit(value: &mut Vec<u8>, offset: u64, bit: bool) -> bool {
    assert!(
        offset < BIT_OFFSET_LIMIT,
        "bit offset {offset} past the limit"
    );
    let byte = usize::try_from(offset / 8).expect("below the limit");
    if value.len() <= byte {
        value.resize(byte + 1, 0);
    }
    let mask = 0x80u8 >> (offset % 8);
    let old = value[byte] & mask != 0;
    match bit {
        true => value[byte] |= mask,
        false => value[byte] &= !mask,
    }
    assert!(value.len() <= VALUE_MAX_BYTES);
    old
}

/// `BITOP op` over `sources` (an absent key is an empty string): as long as the longest
/// source, shorter ones padded with zero bytes. NOT takes exactly one source.
pub fn bit_op(op: BitOp, sources: &[&[u8]]) -> Vec<u8> {
    assert!(
        op != BitOp::Not || sources.len() == 1,
        "NOT takes one source"
    );
    let len = sources.iter().map(|s| s.len()).max().unwrap_or(0);
    let byte = |s: &[u8], i: usize| s.get(i).copied().unwrap_or(0);
    let result: Vec<u8> = (0..len)
        .map(|i| {
            let mut bytes = sources.iter().map(|s| byte(s, i));
            let first = bytes.next().expect("at least one source");
            match op {
                BitOp::Not => !first,
                BitOp::And => bytes.fold(first, |acc, b| acc & b),
                BitOp::Or => bytes.fold(first, |acc, b| acc | b),
                BitOp::Xor => bytes.fold(first, |acc, b| acc ^ b),
            }
        })
        .collect();
    assert_eq!(result.len(), len);
    result
}

/// Resolves a Redis `start end` range (negative counts from the end) over `total` units to
/// inclusive bounds, or `None` when it is empty.
fn resolve_range(start: i64, end: i64, total: i64) -> Option<(i64, i64)> {
    if start < 0 && end < 0 && start > end {
        return None;
    }
    let from_end = |i: i64| if i < 0 { total.saturating_add(i) } else { i };
    let start = from_end(start).max(0);
    let end = from_end(end).max(0).min(total - 1);
    (start <= end).then_some((start, end))
}

/// The inclusive range of bits a `start end [BYTE|BIT]` range names in a value of `len` bytes.
fn bit_range(len: usize, range: Option<(i64, i64, RangeUnit)>) -> Option<(u64, u64)> {
    let len = i64::try_from(len).expect("a value length fits in i64");
    let (start, end, unit) = range.unwrap_or((0, -1, RangeUnit::Byte));
    let (start, end) = match unit {
        RangeUnit::Byte => resolve_range(start, end, len).map(|(s, e)| (s * 8, e * 8 + 7))?,
        RangeUnit::Bit => resolve_range(start, end, len * 8)?,
    };
    let (start, end) = (start.unsigned_abs(), end.unsigned_abs());
    assert!(
        start <= end && end < len.unsigned_abs() * 8,
        "range inside the value"
    );
    Some((start, end))
}

/// BITCOUNT: the set bits in the range (the whole value without one).
pub fn bit_count(value: &[u8], range: Option<(i64, i64, RangeUnit)>) -> i64 {
    let Some((first, last)) = bit_range(value.len(), range) else {
        return 0;
    };
    let count: u64 = (first..=last)
        .map(|bit| u64::from(get_bit(value, bit)))
        .sum();
    i64::try_from(count).expect("bits of a bounded value fit in i64")
}

/// BITPOS: the first bit equal to `bit` in the range, or -1. Looking for a clear bit with no
/// explicit end, the value counts as padded with zeros on the right (Redis's rule).
pub fn bit_pos(
    value: &[u8],
    bit: bool,
    range: Option<(i64, i64, RangeUnit)>,
    end_given: bool,
) -> i64 {
    let Some((first, last)) = bit_range(value.len(), range) else {
        return -1;
    };
    let found = (first..=last).find(|&at| get_bit(value, at) == bit);
    let position = match found {
        Some(at) => at,
        None if !bit && !end_given => last + 1,
        None => return -1,
    };
    i64::try_from(position).expect("bits of a bounded value fit in i64")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_bit_grows_with_zeros_and_returns_the_old_bit() {
        let mut value = Vec::new();
        assert!(!set_bit(&mut value, 1, true));
        assert_eq!(value, vec![0b0100_0000]);
        assert!(set_bit(&mut value, 1, false));
        assert!(!set_bit(&mut value, 17, true));
        assert_eq!(value, vec![0, 0, 0b0100_0000]);
        assert!(get_bit(&value, 17) && !get_bit(&value, 16) && !get_bit(&value, 10_000));
    }

    #[test]
    fn bit_count_follows_redis_ranges_in_bytes_and_bits() {
        assert_eq!(bit_count(b"foobar", None), 26);
        assert_eq!(bit_count(b"foobar", Some((0, 0, RangeUnit::Byte))), 4);
        assert_eq!(bit_count(b"foobar", Some((1, 1, RangeUnit::Byte))), 6);
        assert_eq!(bit_count(b"foobar", Some((1, -2, RangeUnit::Byte))), 18);
        assert_eq!(bit_count(b"foobar", Some((5, 30, RangeUnit::Bit))), 17);
        assert_eq!(bit_count(b"foobar", Some((-1, -2, RangeUnit::Byte))), 0);
        assert_eq!(bit_count(b"", None), 0);
    }

    #[test]
    fn bit_pos_pads_clear_bits_only_without_an_explicit_end() {
        assert_eq!(bit_pos(b"\xff\xf0\x00", false, None, false), 12);
        assert_eq!(
            bit_pos(b"\x00\xff\xf0", true, Some((0, -1, RangeUnit::Byte)), true),
            8
        );
        assert_eq!(
            bit_pos(b"\x00\xff\xf0", true, Some((2, -1, RangeUnit::Byte)), true),
            16
        );
        assert_eq!(
            bit_pos(b"\x00\xff\xf0", true, Some((7, 15, RangeUnit::Bit)), true),
            8
        );
        assert_eq!(bit_pos(b"\xff\xff", false, None, false), 16);
        assert_eq!(
            bit_pos(b"\xff\xff", false, Some((0, -1, RangeUnit::Byte)), true),
            -1
        );
        assert_eq!(bit_pos(b"\x00", true, None, false), -1);
        assert_eq!(bit_pos(b"", false, None, false), -1);
    }

    #[test]
    fn bit_op_pads_shorter_sources_with_zeros() {
        assert_eq!(bit_op(BitOp::And, &[b"\xff\x0f", b"\x0f"]), vec![0x0f, 0]);
        assert_eq!(bit_op(BitOp::Or, &[b"\xf0", b"\x0f\x01"]), vec![0xff, 1]);
        assert_eq!(bit_op(BitOp::Xor, &[b"\xff", b"\x0f", b""]), vec![0xf0]);
        assert_eq!(bit_op(BitOp::Not, &[b"\x0f"]), vec![0xf0]);
        assert_eq!(bit_op(BitOp::Or, &[b"", b""]), Vec::<u8>::new());
    }
}
