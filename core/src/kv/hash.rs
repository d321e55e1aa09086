//! A deterministic 64-bit hash for comparing replicas' states.
//!
//! The same bytes give the same hash in every process, on every platform and with every build:
//! words are read little-endian, nothing is seeded at random, and structured values are hashed
//! through their postcard encoding (a documented, stable format) rather than `std::hash::Hash`,
//! whose output may change between Rust releases.

use crate::command::Reply;

/// Domain tags keep the hash of one kind of item from equalling that of another by construction.
pub(crate) const TAG_DATA_ENTRY: u64 = 0x6b76_2d64_6174_6131; // "kv-data1"
pub(crate) const TAG_SESSION: u64 = 0x6b76_2d73_6573_7331; // "kv-sess1"
pub(crate) const TAG_REPLY: u64 = 0x6b76_2d72_706c_7931; // "kv-rply1"
pub(crate) const TAG_STATE: u64 = 0x6b76_2d73_7461_7431; // "kv-stat1"
pub(crate) const TAG_SCAN: u64 = 0x6b76_2d73_6361_6e31; // "kv-scan1"
pub(crate) const TAG_DATABASE: u64 = 0x6b76_2d64_6174_6162; // "kv-datab"
pub(crate) const TAG_DEADLINE: u64 = 0x6b76_2d64_6561_6431; // "kv-dead1"
pub(crate) const TAG_CLOCK: u64 = 0x6b76_2d63_6c6f_6331; // "kv-cloc1"
pub(crate) const TAG_OBJECT: u64 = 0x6b76_2d6f_626a_3131; // "kv-obj11"
pub(crate) const TAG_ELEMENT: u64 = 0x6b76_2d65_6c6d_3131; // "kv-elm11"
pub(crate) const TAG_POP: u64 = 0x6b76_2d70_6f70_3131; // "kv-pop11"
pub(crate) const TAG_LIST_ITEM: u64 = 0x6b76_2d6c_6974_3131; // "kv-lit11"

/// Added on every round so that no input word leaves the state at a fixed point such as zero.
const ROUND_CONSTANT: u64 = 0x9e37_79b9_7f4a_7c15;

/// MurmurHash3's 64-bit finalizer: a bijection in which every input bit flips about half the
/// output bits.
fn fmix64(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^= x >> 33;
    x
}

/// Absorbs 64-bit words one at a time. Each step is a bijection of the running state for a fixed
/// word and of the word for a fixed state, so two inputs that differ in one word always differ.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hash64 {
    state: u64,
}

impl Hash64 {
    pub(crate) fn new(tag: u64) -> Self {
        Hash64 { state: fmix64(tag) }
    }

    pub(crate) fn word(mut self, word: u64) -> Self {
        self.state = fmix64((self.state ^ word).wrapping_add(ROUND_CONSTANT));
        self
    }

    /// Absorbs the length first, so that the zero padding of the last word is unambiguous and
    /// consecutive byte strings cannot trade bytes.
    pub(crate) fn bytes(mut self, bytes: &[u8]) -> Self {
        let len_bytes = u64::try_from(bytes.len()).expect("a slice length fits in u64");
        self = self.word(len_bytes);
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self = self.word(u64::from_le_bytes(
                chunk.try_into().expect("chunk of 8 bytes"),
            ));
        }
        let tail = chunks.remainder();
        if !tail.is_empty() {
            let mut word = [0u8; 8];
            word[..tail.len()].copy_from_slice(tail);
            self = self.word(u64::from_le_bytes(word));
        }
        self
    }

    pub(crate) fn finish(self) -> u64 {
        self.state
    }
}

/// The hash of one element of a hash, set or sorted set: its field or member and its value.
pub(crate) fn element_hash(element: &[u8], value: &[u8]) -> u64 {
    Hash64::new(TAG_ELEMENT)
        .bytes(element)
        .bytes(value)
        .finish()
}

/// The hash of one key-value pair of the store.
pub(crate) fn data_entry_hash(key: &[u8], value: &[u8]) -> u64 {
    Hash64::new(TAG_DATA_ENTRY).bytes(key).bytes(value).finish()
}

/// A key's place in SCAN order: fixed for the key, spread evenly over `u64`.
pub(crate) fn deadline_entry_hash(key: &[u8], deadline_ms: i64) -> u64 {
    Hash64::new(TAG_DEADLINE)
        .bytes(key)
        .word(deadline_ms as u64)
        .finish()
}

/// What the entry time and the deadlines add to the state hash (nothing while there are none,
/// so a state without expiry hashes as before).
pub(crate) fn clock_hash(now_ms: i64, deadlines_hash: u64) -> u64 {
    if now_ms == 0 && deadlines_hash == 0 {
        return 0;
    }
    Hash64::new(TAG_CLOCK)
        .word(now_ms as u64)
        .word(deadlines_hash)
        .finish()
}

pub(crate) fn scan_hash(key: &[u8]) -> u64 {
    Hash64::new(TAG_SCAN).bytes(key).finish()
}

/// What database `db`'s entries hash adds to the state hash (database 0 adds its sum as is).
pub(crate) fn database_hash(db: u8, entries_hash: u64) -> u64 {
    Hash64::new(TAG_DATABASE)
        .word(u64::from(db))
        .word(entries_hash)
        .finish()
}

/// The hash of one reply a session keeps for a possible retry.
pub(crate) fn reply_hash(client_id: u64, seq: u64, reply: &Reply) -> u64 {
    let encoded = postcard::to_allocvec(reply).expect("a reply always encodes");
    Hash64::new(TAG_REPLY)
        .word(client_id)
        .word(seq)
        .bytes(&encoded)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_fixed_across_builds_and_platforms() {
        // Pinned values: if these change, replicas built differently would disagree.
        assert_eq!(data_entry_hash(b"key", b"value"), 0x9b74_480b_cbc0_ab60);
        assert_eq!(reply_hash(1, 2, &Reply::Int(-3)), 0xc936_88e9_60b2_dac3);
    }

    #[test]
    fn hash_separates_lengths_and_boundaries() {
        assert_ne!(data_entry_hash(b"ab", b"c"), data_entry_hash(b"a", b"bc"));
        assert_ne!(data_entry_hash(b"a", b""), data_entry_hash(b"a", b"\0"));
        assert_ne!(data_entry_hash(b"", b""), data_entry_hash(b"\0", b""));
        let long_a = [7u8; 17];
        let mut long_b = long_a;
        long_b[16] = 8;
        assert_ne!(data_entry_hash(&long_a, b""), data_entry_hash(&long_b, b""));
    }

    #[test]
    fn reply_hash_depends_on_client_seq_and_reply() {
        let base = reply_hash(1, 2, &Reply::Ok);
        assert_ne!(base, reply_hash(2, 2, &Reply::Ok));
        assert_ne!(base, reply_hash(1, 3, &Reply::Ok));
        assert_ne!(base, reply_hash(1, 2, &Reply::Bool(true)));
    }
}
