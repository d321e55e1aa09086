//! FxHash (rustc's hasher): small, fast, not cryptographic, and the same on every run and
//! platform (integers are absorbed as little-endian words). The checker's search tables use it
//! for keys built by this process, never input an adversary controls; the simulator's trace
//! hash uses it to prove two runs of a seed identical.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// With `MIXED` the result goes through [`mix64`]: FxHash's multiply carries entropy only
/// upwards, and a hash table indexes by the low bits. Without it `finish` is the raw FxHash.
#[derive(Default, Clone, Copy, Debug)]
pub struct FxHasher<const MIXED: bool = false> {
    hash: u64,
}

impl FxHasher {
    /// The raw FxHash, from zero.
    pub const fn new() -> Self {
        FxHasher { hash: 0 }
    }
}

impl<const MIXED: bool> FxHasher<MIXED> {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl<const MIXED: bool> Hasher for FxHasher<MIXED> {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.add(u64::from_le_bytes(chunk.try_into().expect("8-byte chunk")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        if MIXED {
            mix64(self.hash)
        } else {
            self.hash
        }
    }
}

pub type FxBuild = BuildHasherDefault<FxHasher<true>>;
pub type FxHashMap<K, V> = HashMap<K, V, FxBuild>;

/// A bijective 64-bit mixer (splitmix64's finalizer): spreads consecutive integers over all bits.
#[inline]
pub fn mix64(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_hash_as_their_little_endian_words_whatever_their_width() {
        let mut words = FxHasher::new();
        words.write_u64(7);
        words.write_u64(0x0102);
        let mut narrow = FxHasher::new();
        narrow.write_u8(7);
        narrow.write_u16(0x0102);
        let mut bytes = FxHasher::new();
        bytes.write(&[7]);
        bytes.write(&[2, 1]);
        assert_eq!(words.finish(), narrow.finish());
        assert_eq!(words.finish(), bytes.finish());
    }

    #[test]
    fn the_table_hasher_mixes_the_raw_hash() {
        let mut raw = FxHasher::new();
        let mut mixed = FxHasher::<true>::default();
        raw.write_u64(42);
        mixed.write_u64(42);
        assert_ne!(raw.finish(), mixed.finish());
        assert_eq!(mix64(raw.finish()), mixed.finish());
    }
}
