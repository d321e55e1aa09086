//! The deadlines of one database's keys: a map by key and the same entries ordered by deadline,
//! so finding the keys due is O(log n + due). A key without a deadline is in neither and costs
//! nothing.

use std::collections::{BTreeMap, BTreeSet};

use super::hash::deadline_entry_hash;

/// A Unix time in milliseconds (a deadline, or the time of a log entry).
pub type UnixMs = i64;

/// Deadlines by key and by time, with the wrapping sum of their entry hashes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Deadlines {
    by_key: BTreeMap<Vec<u8>, UnixMs>,
    by_time: BTreeSet<(UnixMs, Vec<u8>)>,
    hash: u64,
}

impl Deadlines {
    pub(crate) fn len(&self) -> usize {
        self.by_key.len()
    }

    pub(crate) fn hash(&self) -> u64 {
        self.hash
    }

    pub(crate) fn get(&self, key: &[u8]) -> Option<UnixMs> {
        self.by_key.get(key).copied()
    }

    pub(crate) fn set(&mut self, key: &[u8], deadline_ms: UnixMs) {
        self.remove(key);
        self.by_key.insert(key.to_vec(), deadline_ms);
        self.by_time.insert((deadline_ms, key.to_vec()));
        self.hash = self
            .hash
            .wrapping_add(deadline_entry_hash(key, deadline_ms));
        assert_eq!(self.by_key.len(), self.by_time.len(), "indexed both ways");
    }

    pub(crate) fn remove(&mut self, key: &[u8]) -> Option<UnixMs> {
        let deadline_ms = self.by_key.remove(key)?;
        let indexed = self.by_time.remove(&(deadline_ms, key.to_vec()));
        assert!(indexed, "a deadline is in the time order");
        self.hash = self
            .hash
            .wrapping_sub(deadline_entry_hash(key, deadline_ms));
        Some(deadline_ms)
    }

    /// The earliest deadline.
    pub(crate) fn first_ms(&self) -> Option<UnixMs> {
        self.by_time.first().map(|(at, _)| *at)
    }

    /// Up to `max` keys whose deadline is before `now_ms` (expired), earliest first.
    pub(crate) fn due(&self, now_ms: UnixMs, max: usize) -> Vec<Vec<u8>> {
        let due: Vec<Vec<u8>> = self
            .by_time
            .iter()
            .take_while(|(at, _)| *at < now_ms)
            .take(max)
            .map(|(_, key)| key.clone())
            .collect();
        assert!(due.len() <= max, "at most {max} keys due at once");
        due
    }

    /// Every entry in key order (the encoding).
    pub(crate) fn pairs(&self) -> impl Iterator<Item = (&Vec<u8>, &UnixMs)> {
        self.by_key.iter()
    }

    pub(crate) fn recompute_hash(&self) -> u64 {
        self.by_key.iter().fold(0u64, |sum, (key, at)| {
            sum.wrapping_add(deadline_entry_hash(key, *at))
        })
    }

    pub(crate) fn assert_invariants(&self) {
        assert_eq!(self.by_key.len(), self.by_time.len(), "indexed both ways");
        for (at, key) in &self.by_time {
            assert_eq!(self.by_key.get(key), Some(at), "indexes agree");
        }
        assert_eq!(self.hash, self.recompute_hash(), "deadline hash drifted");
    }
}
