//! The key-value data: an ordered map whose hash is kept up to date on every change.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use serde::{Deserialize, Serialize};

use super::deadlines::{Deadlines, UnixMs};
use super::hash::{data_entry_hash, scan_hash};
use super::objects::{object_entry_hash, Object, ValueKind};
use crate::command::{KEY_MAX_BYTES, LIST_COUNT_MAX, VALUE_MAX_BYTES};

/// Ordered key-value pairs plus the wrapping sum of their entry hashes.
///
/// All changes go through `insert` and `remove` so the sum and the scan order can never drift
/// from the map.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Store {
    #[serde(with = "crate::bytes::map")]
    map: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Wrapping sum of `data_entry_hash` over all pairs: order-independent and O(1) to update.
    entries_hash: u64,
    /// The keys that hold a hash or a set (never a key of `map`). Encoded after the stores
    /// (see `databases`), so an image of strings only is what it was before there were others.
    #[serde(skip)]
    objects: BTreeMap<Vec<u8>, Object>,
    /// Wrapping sum of `object_entry_hash` over `objects`.
    #[serde(skip)]
    objects_hash: u64,
    /// Every key by `scan_hash`: SCAN's order, in which a key's place never moves, so an
    /// integer cursor (a hash) resumes exactly where the last call stopped. Derived from `map`:
    /// not encoded, rebuilt by `rebuild_scan_order` after decoding.
    #[serde(skip)]
    scan_order: BTreeSet<(u64, Vec<u8>)>,
    /// Keys inserted or removed since the state machine last took them (`take_touched`), for
    /// WATCH's record of recent changes; empty between writes, never encoded.
    #[serde(skip)]
    touched: Vec<Vec<u8>>,
    /// The keys that have a deadline (encoded after the stores, see `databases`).
    #[serde(skip)]
    pub(crate) deadlines: Deadlines,
}

/// What a key holds, taken out of or put into a store whole (RENAME, COPY, MOVE).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    Str(Vec<u8>),
    Obj(Object),
}

impl Entry {
    /// The string it holds; a caller that checked the key's kind.
    pub(crate) fn into_string(self) -> Vec<u8> {
        match self {
            Entry::Str(value) => value,
            Entry::Obj(object) => unreachable!("a {:?} where a string was checked", object.kind()),
        }
    }
}

/// Most keys one RANDOMKEY visits looking for one that has not expired.
pub(crate) const RANDOM_KEY_VISIT_MAX: usize = 100;

/// One SCAN step's result: the keys visited and the cursor after them (0: the end).
pub(crate) struct ScanStep<'a> {
    pub(crate) keys: Vec<&'a Vec<u8>>,
    pub(crate) cursor: u64,
}

impl Store {
    pub(crate) fn len(&self) -> usize {
        self.map.len() + self.objects.len()
    }

    /// What the strings and the objects add to the state hash (the objects nothing while
    /// there are none).
    pub(crate) fn entries_hash(&self) -> u64 {
        self.entries_hash.wrapping_add(self.objects_hash)
    }

    /// The string at `key`: none if absent or if it holds another kind of value.
    pub(crate) fn get(&self, key: &[u8]) -> Option<&Vec<u8>> {
        self.map.get(key)
    }

    /// Whether `key` holds any value.
    pub(crate) fn exists(&self, key: &[u8]) -> bool {
        self.map.contains_key(key) || self.objects.contains_key(key)
    }

    /// The hash or set at `key`.
    pub(crate) fn object(&self, key: &[u8]) -> Option<&Object> {
        self.objects.get(key)
    }

    /// The kind of value at `key`, if present.
    pub(crate) fn kind(&self, key: &[u8]) -> Option<ValueKind> {
        match (self.map.contains_key(key), self.objects.get(key)) {
            (true, _) => Some(ValueKind::String),
            (false, Some(object)) => Some(object.kind()),
            (false, None) => None,
        }
    }

    /// A copy of what `key` holds.
    pub(crate) fn entry(&self, key: &[u8]) -> Option<Entry> {
        match (self.map.get(key), self.objects.get(key)) {
            (Some(value), _) => Some(Entry::Str(value.clone())),
            (None, Some(object)) => Some(Entry::Obj(object.clone())),
            (None, None) => None,
        }
    }

    /// The objects of this database in key order (for the encoding).
    pub(crate) fn objects(&self) -> impl Iterator<Item = (&Vec<u8>, &Object)> {
        self.objects.iter()
    }

    /// Stores `object` at `key`, replacing whatever it held, keeping any deadline.
    pub(crate) fn insert_object(&mut self, key: Vec<u8>, object: Object) {
        assert!(key.len() <= KEY_MAX_BYTES, "a key of {} bytes", key.len());
        assert!(object.len() > 0, "an empty object is never stored");
        if let Some(old) = self.map.remove(&key) {
            let removed = data_entry_hash(&key, &old);
            self.entries_hash = self.entries_hash.wrapping_sub(removed);
        }
        if !self.objects.contains_key(&key) {
            self.scan_order.insert((scan_hash(&key), key.clone()));
        }
        self.objects_hash = self
            .objects_hash
            .wrapping_add(object_entry_hash(&key, &object));
        if let Some(old) = self.objects.insert(key.clone(), object) {
            let removed = object_entry_hash(&key, &old);
            self.objects_hash = self.objects_hash.wrapping_sub(removed);
        }
        self.touched.push(key);
    }

    /// Changes the object at `key` (which must hold one) with `change`; the key goes when the
    /// object is left empty. A change for WATCH.
    pub(crate) fn update_object<R>(
        &mut self,
        key: &[u8],
        change: impl FnOnce(&mut Object) -> R,
    ) -> R {
        let object = self.objects.get_mut(key).expect("an object at the key");
        let before = object_entry_hash(key, object);
        let result = change(object);
        let after = object_entry_hash(key, object);
        let empty = object.len() == 0;
        self.objects_hash = self.objects_hash.wrapping_sub(before).wrapping_add(after);
        self.touched.push(key.to_vec());
        if empty {
            self.remove(key).expect("present");
            assert!(!self.exists(key), "an emptied object leaves no key");
        }
        result
    }

    /// Stores a pair of a command that passed `Command::validate`.
    pub(crate) fn insert(&mut self, key: Vec<u8>, value: Vec<u8>) {
        assert!(key.len() <= KEY_MAX_BYTES, "a key of {} bytes", key.len());
        assert!(
            value.len() <= VALUE_MAX_BYTES,
            "a value of {} bytes",
            value.len()
        );
        let added = data_entry_hash(&key, &value);
        if let Some(old) = self.objects.remove(&key) {
            let removed = object_entry_hash(&key, &old);
            self.objects_hash = self.objects_hash.wrapping_sub(removed);
            self.scan_order.remove(&(scan_hash(&key), key.clone()));
        }
        if let Some(old) = self.map.get(&key) {
            let removed = data_entry_hash(&key, old);
            self.entries_hash = self.entries_hash.wrapping_sub(removed);
        }
        self.entries_hash = self.entries_hash.wrapping_add(added);
        if !self.map.contains_key(&key) {
            self.scan_order.insert((scan_hash(&key), key.clone()));
        }
        self.touched.push(key.clone());
        self.map.insert(key, value);
    }

    /// Stores a fresh value: like `insert`, and the key loses any deadline (SET, MSET).
    pub(crate) fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.deadlines.remove(&key);
        self.insert(key, value);
    }

    /// Stores `value` at `key` with `deadline_ms` as its deadline (none: it has none), as
    /// RENAME, RENAMENX, COPY and MOVE leave their target: with the source's time to live.
    pub(crate) fn put_with_deadline(
        &mut self,
        key: Vec<u8>,
        value: Entry,
        deadline_ms: Option<UnixMs>,
    ) {
        let at = key.clone();
        match value {
            Entry::Str(value) => self.put(key, value),
            Entry::Obj(object) => {
                self.deadlines.remove(&key);
                self.insert_object(key, object);
            }
        }
        if deadline_ms.is_some() {
            self.set_deadline(&at, deadline_ms);
        }
        assert_eq!(
            self.deadlines.get(&at),
            deadline_ms,
            "the target's deadline"
        );
    }

    /// Whether `key` holds a value that has not expired at `now_ms`.
    pub(crate) fn is_live(&self, key: &[u8], now_ms: UnixMs) -> bool {
        self.exists(key) && !self.is_expired(key, now_ms)
    }

    /// The kind of value at `key` unless it expired at `now_ms`.
    pub(crate) fn live_kind(&self, key: &[u8], now_ms: UnixMs) -> Option<ValueKind> {
        self.kind(key).filter(|_| !self.is_expired(key, now_ms))
    }

    /// The string of `key` unless it expired at `now_ms`.
    pub(crate) fn live(&self, key: &[u8], now_ms: UnixMs) -> Option<&Vec<u8>> {
        match self.is_expired(key, now_ms) {
            true => None,
            false => self.map.get(key),
        }
    }

    /// Whether `key` has a deadline before `now_ms` (Redis: expired once now > deadline).
    pub(crate) fn is_expired(&self, key: &[u8], now_ms: UnixMs) -> bool {
        self.deadlines.get(key).is_some_and(|at| at < now_ms)
    }

    /// Sets or clears the deadline of `key`, which must be present; a change for WATCH.
    pub(crate) fn set_deadline(&mut self, key: &[u8], deadline_ms: Option<UnixMs>) {
        assert!(self.exists(key), "a deadline for an absent key");
        match deadline_ms {
            Some(at) => self.deadlines.set(key, at),
            None => {
                self.deadlines.remove(key);
            }
        }
        self.touched.push(key.to_vec());
    }

    /// Removes `key` if it expired at `now_ms`, without counting it as a change for WATCH
    /// (Redis: an expired key was already gone). Returns whether it did.
    pub(crate) fn reap(&mut self, key: &[u8], now_ms: UnixMs) -> bool {
        if !self.is_expired(key, now_ms) {
            return false;
        }
        let touched = self.touched.len();
        self.remove(key).expect("a key with a deadline is present");
        self.touched.truncate(touched);
        assert!(
            self.deadlines.get(key).is_none(),
            "a reaped key keeps no deadline"
        );
        true
    }

    pub(crate) fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let value = match self.map.remove(key) {
            Some(value) => {
                let removed = data_entry_hash(key, &value);
                self.entries_hash = self.entries_hash.wrapping_sub(removed);
                Entry::Str(value)
            }
            None => {
                let object = self.objects.remove(key)?;
                let removed = object_entry_hash(key, &object);
                self.objects_hash = self.objects_hash.wrapping_sub(removed);
                Entry::Obj(object)
            }
        };
        self.deadlines.remove(key);
        let indexed = self.scan_order.remove(&(scan_hash(key), key.to_vec()));
        assert!(indexed, "a stored key is in the scan order");
        self.touched.push(key.to_vec());
        Some(value)
    }

    /// The keys inserted or removed since the last call.
    pub(crate) fn take_touched(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.touched)
    }

    /// Removes every key (not recorded as touched: the state machine records the reset).
    pub(crate) fn clear(&mut self) {
        *self = Store::default();
    }

    /// Rebuilds the derived scan order after decoding.
    pub(crate) fn rebuild_scan_order(&mut self) {
        self.scan_order = (self.map.keys())
            .chain(self.objects.keys())
            .map(|key| (scan_hash(key), key.clone()))
            .collect();
    }

    /// Gives a decoded store its objects (each for a key it does not hold yet).
    pub(crate) fn restore_objects(
        &mut self,
        objects: impl IntoIterator<Item = (Vec<u8>, Object)>,
    ) -> Result<(), String> {
        for (key, object) in objects {
            if self.exists(&key) {
                return Err("an object for a key held twice".into());
            }
            let object = object.rebuilt()?;
            self.objects_hash = self
                .objects_hash
                .wrapping_add(object_entry_hash(&key, &object));
            self.objects.insert(key, object);
        }
        Ok(())
    }

    /// Visits up to `count` keys (at least one) in scan order from hash `cursor` on. Keys whose
    /// hashes are equal are visited in one step (a cursor cannot split them), so a step may
    /// visit a few more than `count` in the astronomically rare case of a hash collision.
    pub(crate) fn scan(&self, cursor: u64, count: usize) -> ScanStep<'_> {
        let mut keys = Vec::new();
        let mut last_hash = None;
        let range = self.scan_order.range((cursor, Vec::new())..);
        for (hash, key) in range {
            if keys.len() >= count.max(1) && last_hash != Some(*hash) {
                assert!(*hash > cursor, "a scan cursor advances");
                return ScanStep {
                    keys,
                    cursor: *hash,
                };
            }
            last_hash = Some(*hash);
            keys.push(key);
        }
        ScanStep { keys, cursor: 0 }
    }

    /// The first key in scan order at or after `seed`, wrapping to the first, that has not
    /// expired at `now_ms`; None when empty or when the first [`RANDOM_KEY_VISIT_MAX`] visited
    /// all expired (bounded work; they are reaped soon).
    pub(crate) fn key_at_or_after(&self, seed: u64, now_ms: UnixMs) -> Option<&Vec<u8>> {
        let after = self.scan_order.range((seed, Vec::new())..);
        let before = self.scan_order.range(..(seed, Vec::new()));
        after
            .chain(before)
            .map(|(_, key)| key)
            .take(RANDOM_KEY_VISIT_MAX)
            .find(|key| !self.is_expired(key, now_ms))
    }

    /// Pairs whose key starts with `prefix`, in byte order, from `start` (inclusive) on.
    pub(crate) fn prefix_range<'a>(
        &'a self,
        prefix: &'a [u8],
        start: Option<&[u8]>,
    ) -> impl Iterator<Item = (&'a Vec<u8>, &'a Vec<u8>)> + 'a {
        // Every key with the prefix sorts at or after the prefix itself.
        let lower = match start {
            Some(start) if start > prefix => start,
            _ => prefix,
        };
        self.map
            .range::<[u8], _>((Bound::Included(lower), Bound::Unbounded))
            .take_while(move |(key, _)| key.starts_with(prefix))
    }

    /// Every key (of any kind) starting with `prefix`, in byte order.
    pub(crate) fn keys_with_prefix<'a>(
        &'a self,
        prefix: &'a [u8],
    ) -> impl Iterator<Item = &'a Vec<u8>> + 'a {
        let strings = self.prefix_range(prefix, None).map(|(key, _)| key);
        let objects = (self.objects)
            .range::<[u8], _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(move |(key, _)| key.starts_with(prefix))
            .map(|(key, _)| key);
        merged(strings, objects)
    }

    /// Removes every key starting with `prefix`; returns how many were removed.
    pub(crate) fn prune(&mut self, prefix: &[u8]) -> usize {
        let doomed: Vec<Vec<u8>> = self.keys_with_prefix(prefix).cloned().collect();
        let before = self.len();
        for key in &doomed {
            self.remove(key).expect("a key just listed is present");
        }
        assert_eq!(self.len() + doomed.len(), before);
        doomed.len()
    }

    pub(crate) fn count(&self, prefix: &[u8]) -> usize {
        if prefix.is_empty() {
            return self.len();
        }
        self.keys_with_prefix(prefix).count()
    }

    /// Checks the scan order against the map; O(keys).
    pub(crate) fn assert_scan_order(&self) {
        assert_eq!(self.scan_order.len(), self.len(), "scan order size");
        self.deadlines.assert_invariants();
        for (key, _) in self.deadlines.pairs() {
            assert!(self.exists(key), "a deadline for an absent key");
        }
        for (key, object) in &self.objects {
            assert!(!self.map.contains_key(key), "a key holds one value");
            object.assert_invariants();
        }
        for (hash, key) in &self.scan_order {
            assert!(self.exists(key), "scan order holds a removed key");
            assert_eq!(*hash, scan_hash(key), "scan order hash");
        }
    }

    /// The sum of entry hashes computed from scratch, for checking the running one.
    pub(crate) fn recompute_entries_hash(&self) -> u64 {
        let strings = self.map.iter().fold(0u64, |sum, (key, value)| {
            sum.wrapping_add(data_entry_hash(key, value))
        });
        let objects = (self.objects.iter()).fold(0u64, |sum, (key, o)| {
            sum.wrapping_add(object_entry_hash(key, o))
        });
        strings.wrapping_add(objects)
    }
}

/// Two ascending iterators of distinct keys merged into one ascending iterator.
fn merged<'a>(
    a: impl Iterator<Item = &'a Vec<u8>>,
    b: impl Iterator<Item = &'a Vec<u8>>,
) -> impl Iterator<Item = &'a Vec<u8>> {
    let (mut a, mut b) = (a.peekable(), b.peekable());
    std::iter::from_fn(move || match (a.peek(), b.peek()) {
        (Some(x), Some(y)) if x <= y => a.next(),
        (Some(_), Some(_)) => b.next(),
        (Some(_), None) => a.next(),
        (None, _) => b.next(),
    })
}

/// What the encoding of a [`Store`] holds, read without building the map: the pairs are
/// visited as borrowed slices, counted and hashed (see `StateMachine::verify_encoding`).
/// Field for field the same shape as `Store`, so whatever decodes as one decodes as the other.
#[derive(Deserialize)]
pub(crate) struct StoreDigest {
    #[serde(deserialize_with = "pairs_digest")]
    pub(crate) pairs: PairsDigest,
    pub(crate) entries_hash: u64,
    /// The count and hash sum of the store's hashes and sets (encoded after the stores).
    #[serde(skip, default = "PairsDigest::empty")]
    pub(crate) objects: PairsDigest,
}

/// The count and hash sum of encoded pairs whose keys were in strictly ascending order.
pub(crate) struct PairsDigest {
    pub(crate) len: u64,
    pub(crate) entries_hash: u64,
}

impl PairsDigest {
    fn empty() -> Self {
        PairsDigest {
            len: 0,
            entries_hash: 0,
        }
    }
}

fn pairs_digest<'de, D: serde::Deserializer<'de>>(d: D) -> Result<PairsDigest, D::Error> {
    d.deserialize_map(PairsDigestVisitor)
}

struct PairsDigestVisitor;

impl<'de> serde::de::Visitor<'de> for PairsDigestVisitor {
    type Value = PairsDigest;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a map of byte strings in ascending key order")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut access: A,
    ) -> Result<PairsDigest, A::Error> {
        let mut digest = PairsDigest {
            len: 0,
            entries_hash: 0,
        };
        let mut previous: Option<&'de [u8]> = None;
        while let Some((key, value)) = access.next_entry::<&'de [u8], &'de [u8]>()? {
            if previous.is_some_and(|p| p >= key) {
                return Err(serde::de::Error::custom("keys out of order"));
            }
            previous = Some(key);
            digest.len += 1;
            digest.entries_hash = digest
                .entries_hash
                .wrapping_add(data_entry_hash(key, value));
        }
        Ok(digest)
    }
}

/// A list `count` as the number of entries to return: `None` means the maximum, and anything
/// above the maximum is clamped to it.
pub(crate) fn list_count_clamped(count: Option<u64>) -> usize {
    let count = count.unwrap_or(LIST_COUNT_MAX).min(LIST_COUNT_MAX);
    usize::try_from(count).expect("LIST_COUNT_MAX fits in usize")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_count_is_clamped_to_the_maximum() {
        assert_eq!(list_count_clamped(None), 10_000);
        assert_eq!(list_count_clamped(Some(0)), 0);
        assert_eq!(list_count_clamped(Some(3)), 3);
        assert_eq!(list_count_clamped(Some(u64::MAX)), 10_000);
    }

    #[test]
    fn running_hash_matches_recomputed_after_changes() {
        let mut store = Store::default();
        store.insert(b"a".to_vec(), b"1".to_vec());
        store.insert(b"ab".to_vec(), b"2".to_vec());
        store.insert(b"a".to_vec(), b"3".to_vec());
        assert_eq!(store.entries_hash(), store.recompute_entries_hash());
        assert_eq!(store.prune(b"a"), 2);
        assert_eq!(store.entries_hash(), 0);
        assert_eq!(store.remove(b"a"), None);
    }

    #[test]
    fn a_key_holds_a_string_or_an_object_and_both_are_listed_and_hashed() {
        let mut store = Store::default();
        let mut members = super::super::objects::Members::default();
        members.insert(b"m".to_vec());
        store.insert(b"b".to_vec(), b"1".to_vec());
        store.insert_object(b"a".to_vec(), Object::Set(members.clone()));
        store.insert_object(b"c".to_vec(), Object::Set(members));
        assert_eq!(store.len(), 3);
        let keys: Vec<_> = store.keys_with_prefix(b"").cloned().collect();
        assert_eq!(keys, vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
        assert_eq!(store.entries_hash(), store.recompute_entries_hash());
        store.insert(b"a".to_vec(), b"2".to_vec());
        assert_eq!(store.kind(b"a"), Some(ValueKind::String));
        assert_eq!(store.entries_hash(), store.recompute_entries_hash());
        store.assert_scan_order();
        assert_eq!(store.prune(b""), 3);
        assert_eq!(store.entries_hash(), 0);
    }
}
