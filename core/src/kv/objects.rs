//! The values a key holds besides a string: hashes (field → value) and sets (members), each in
//! an ordered structure so every replica iterates them in the same order, with a running hash
//! of their elements so a change costs O(log n), never O(n), to account for in the state hash.
//!
//! Redis 7.0 reports a compact encoding while a value is small (a hash as `listpack`, a set of
//! integers as `intset`) and converts it for good once it grows past the limits below. Whether
//! a value was converted is part of the state (encoded and hashed), so every replica answers
//! OBJECT ENCODING alike.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::hash::{element_hash, Hash64, TAG_OBJECT};
pub(crate) use super::list_items::Items;
use crate::integer::parse_integer;

/// Redis 7.0's `hash-max-listpack-entries`: most fields of a `listpack` hash.
pub const HASH_LISTPACK_ENTRIES_MAX: usize = 128;
/// Redis 7.0's `hash-max-listpack-value`: longest field or value of a `listpack` hash, in bytes.
pub const HASH_LISTPACK_VALUE_MAX_BYTES: usize = 64;
/// Redis 7.0's `set-max-intset-entries`: most members of an `intset` set.
pub const SET_INTSET_ENTRIES_MAX: usize = 512;

/// A hash or a set. Never empty in a store: removing its last element removes the key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Object {
    Hash(Fields),
    Set(Members),
    SortedSet(super::sorted::Scores),

    List(Items),
}

pub use crate::types::ValueKind;

/// A hash's fields in byte order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Fields {
    #[serde(with = "crate::bytes::map")]
    map: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Converted to `hashtable` (for good).
    hashtable: bool,
    /// Wrapping sum of `element_hash(field, value)`; derived, rebuilt after decoding.
    #[serde(skip)]
    elements_hash: u64,
    /// Bytes of every field and value; derived, rebuilt after decoding.
    #[serde(skip)]
    bytes: usize,
}

/// A set's members in byte order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Members {
    set: BTreeSet<Vec<u8>>,
    /// Converted to `hashtable` (for good).
    hashtable: bool,
    /// Wrapping sum of `element_hash(member, "")`; derived, rebuilt after decoding.
    #[serde(skip)]
    elements_hash: u64,
    /// Bytes of every member; derived, rebuilt after decoding.
    #[serde(skip)]
    bytes: usize,
}

impl Fields {
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn get(&self, field: &[u8]) -> Option<&Vec<u8>> {
        self.map.get(field)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&Vec<u8>, &Vec<u8>)> {
        self.map.iter()
    }

    /// Stores `value` at `field`; whether the field is new.
    pub(crate) fn insert(&mut self, field: Vec<u8>, value: Vec<u8>) -> bool {
        let long = field.len() > HASH_LISTPACK_VALUE_MAX_BYTES
            || value.len() > HASH_LISTPACK_VALUE_MAX_BYTES;
        self.elements_hash = self
            .elements_hash
            .wrapping_add(element_hash(&field, &value));
        self.bytes += field.len() + value.len();
        let (len_before, bytes_added) = (self.map.len(), field.len() + value.len());
        let old = self.map.insert(field.clone(), value);
        if let Some(old) = &old {
            assert!(
                self.bytes >= field.len() + old.len(),
                "byte count covers the old value"
            );
            self.elements_hash = self.elements_hash.wrapping_sub(element_hash(&field, old));
            self.bytes -= field.len() + old.len();
        }
        self.hashtable |= long || self.map.len() > HASH_LISTPACK_ENTRIES_MAX;
        assert_eq!(
            self.map.len(),
            len_before + usize::from(old.is_none()),
            "HSET count"
        );
        assert!(self.bytes >= bytes_added, "byte count covers the new value");
        assert!(self.hashtable || self.map.len() <= HASH_LISTPACK_ENTRIES_MAX);
        assert!(
            self.hashtable || !long,
            "a listpack hash holds no long field or value"
        );
        old.is_none()
    }

    /// Removes `field`; whether it was there.
    pub(crate) fn remove(&mut self, field: &[u8]) -> bool {
        let len_before = self.map.len();
        match self.map.remove(field) {
            Some(old) => {
                assert!(
                    self.bytes >= field.len() + old.len(),
                    "byte count covers the field"
                );
                self.elements_hash = self.elements_hash.wrapping_sub(element_hash(field, &old));
                self.bytes -= field.len() + old.len();
                assert_eq!(self.map.len() + 1, len_before, "HDEL removes one field");
                assert!(
                    !self.map.is_empty() || (self.bytes == 0 && self.elements_hash == 0),
                    "an emptied hash keeps no running hash or bytes"
                );
                true
            }
            None => false,
        }
    }

    pub(crate) fn encoding(&self) -> &'static str {
        match self.hashtable {
            true => "hashtable",
            false => "listpack",
        }
    }

    fn recompute_elements_hash(&self) -> u64 {
        (self.map.iter()).fold(0u64, |sum, (f, v)| sum.wrapping_add(element_hash(f, v)))
    }
}

impl Members {
    pub(crate) fn len(&self) -> usize {
        self.set.len()
    }

    pub(crate) fn contains(&self, member: &[u8]) -> bool {
        self.set.contains(member)
    }

    /// The members in byte order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Vec<u8>> {
        self.set.iter()
    }

    /// The members as Redis lists them: an `intset` in numeric order, else in byte order.
    pub(crate) fn listed(&self) -> Vec<Vec<u8>> {
        let mut members: Vec<Vec<u8>> = self.iter().cloned().collect();
        if !self.hashtable {
            assert!(
                members.len() <= SET_INTSET_ENTRIES_MAX,
                "an intset of {}",
                members.len()
            );
            members.sort_by_key(|m| parse_integer(m).expect("an intset holds integers"));
        }
        members
    }

    /// The first member at or after `seed` in byte order, wrapping to the first.
    pub(crate) fn at_or_after(&self, seed: &[u8]) -> Option<&Vec<u8>> {
        let after = (self.set)
            .range::<[u8], _>((std::ops::Bound::Included(seed), std::ops::Bound::Unbounded))
            .next();
        let found = after.or_else(|| self.set.iter().next());
        assert_eq!(
            found.is_some(),
            !self.set.is_empty(),
            "a nonempty set yields a member"
        );
        found
    }

    /// Adds `member`; whether it is new.
    pub(crate) fn insert(&mut self, member: Vec<u8>) -> bool {
        let integer = parse_integer(&member).is_some();
        let hash = element_hash(&member, b"");
        let (len, len_before) = (member.len(), self.set.len());
        let added = self.set.insert(member);
        if added {
            self.elements_hash = self.elements_hash.wrapping_add(hash);
            self.bytes += len;
        }
        self.hashtable |= !integer || self.set.len() > SET_INTSET_ENTRIES_MAX;
        assert_eq!(
            self.set.len(),
            len_before + usize::from(added),
            "SADD count"
        );
        assert!(self.bytes >= len, "byte count covers the member");
        assert!(self.hashtable || integer, "an intset holds only integers");
        assert!(self.hashtable || self.set.len() <= SET_INTSET_ENTRIES_MAX);
        added
    }

    /// Removes `member`; whether it was there.
    pub(crate) fn remove(&mut self, member: &[u8]) -> bool {
        let len_before = self.set.len();
        let removed = self.set.remove(member);
        if removed {
            assert!(self.bytes >= member.len(), "byte count covers the member");
            let hash = element_hash(member, b"");
            self.elements_hash = self.elements_hash.wrapping_sub(hash);
            self.bytes -= member.len();
        }
        assert_eq!(
            self.set.len() + usize::from(removed),
            len_before,
            "SREM count"
        );
        assert!(
            !self.set.is_empty() || (self.bytes == 0 && self.elements_hash == 0),
            "an emptied set keeps no running hash or bytes"
        );
        removed
    }

    pub(crate) fn encoding(&self) -> &'static str {
        match self.hashtable {
            true => "hashtable",
            false => "intset",
        }
    }

    fn recompute_elements_hash(&self) -> u64 {
        (self.set.iter()).fold(0u64, |sum, m| sum.wrapping_add(element_hash(m, b"")))
    }
}

impl Object {
    pub(crate) fn kind(&self) -> ValueKind {
        match self {
            Object::Hash(_) => ValueKind::Hash,
            Object::Set(_) => ValueKind::Set,
            Object::SortedSet(_) => ValueKind::SortedSet,

            Object::List(_) => ValueKind::List,
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Object::Hash(fields) => fields.len(),
            Object::Set(members) => members.len(),
            Object::SortedSet(scores) => scores.len(),

            Object::List(items) => items.len(),
        }
    }

    pub(crate) fn encoding(&self) -> &'static str {
        match self {
            Object::Hash(fields) => fields.encoding(),
            Object::Set(members) => members.encoding(),
            Object::SortedSet(scores) => scores.encoding(),

            Object::List(items) => items.encoding(),
        }
    }

    /// Bytes of its contents: a hash's fields and values, a set's members.
    pub(crate) fn bytes(&self) -> usize {
        match self {
            Object::Hash(fields) => fields.bytes,
            Object::Set(members) => members.bytes,
            Object::SortedSet(scores) => scores.bytes(),

            Object::List(items) => items.bytes(),
        }
    }

    fn recompute_bytes(&self) -> usize {
        match self {
            Object::Hash(f) => f.iter().map(|(k, v)| k.len() + v.len()).sum(),
            Object::Set(m) => m.iter().map(Vec::len).sum(),
            Object::SortedSet(s) => s.recompute_bytes(),

            Object::List(items) => items.iter().map(Vec::len).sum(),
        }
    }

    fn converted(&self) -> bool {
        match self {
            Object::Hash(fields) => fields.hashtable,
            Object::Set(members) => members.hashtable,
            Object::SortedSet(scores) => scores.skiplist(),

            // Redis 7.0 keeps every list a quicklist.
            Object::List(_) => false,
        }
    }

    fn elements_hash(&self) -> u64 {
        match self {
            Object::Hash(fields) => fields.elements_hash,
            Object::Set(members) => members.elements_hash,
            Object::SortedSet(scores) => scores.elements_hash(),

            Object::List(items) => items.elements_hash(),
        }
    }

    /// Rebuilds the derived running hash after decoding; refuses an empty object or a compact
    /// encoding the contents no longer allow.
    pub(crate) fn rebuilt(mut self) -> Result<Object, String> {
        match &mut self {
            Object::Hash(fields) => fields.elements_hash = fields.recompute_elements_hash(),
            Object::Set(members) => members.elements_hash = members.recompute_elements_hash(),
            Object::SortedSet(scores) => scores.rebuild()?,

            Object::List(items) => items.rebuild_derived(),
        }
        let bytes = self.recompute_bytes();
        match &mut self {
            Object::Hash(fields) => fields.bytes = bytes,
            Object::Set(members) => members.bytes = bytes,
            Object::SortedSet(scores) => assert_eq!(scores.bytes(), bytes, "rebuilt bytes"),

            Object::List(items) => assert_eq!(items.bytes(), bytes, "list bytes rebuilt"),
        }
        if self.len() == 0 {
            return Err("an empty hash, set or list".into());
        }
        self.assert_encoding_allowed()
            .map(|()| self)
            .map_err(|e| e.to_string())
    }

    /// Whether the compact encoding it reports fits its contents.
    fn assert_encoding_allowed(&self) -> Result<(), &'static str> {
        let fits = match self {
            Object::Hash(f) => {
                f.hashtable
                    || (f.len() <= HASH_LISTPACK_ENTRIES_MAX
                        && f.iter().all(|(k, v)| {
                            k.len() <= HASH_LISTPACK_VALUE_MAX_BYTES
                                && v.len() <= HASH_LISTPACK_VALUE_MAX_BYTES
                        }))
            }
            Object::Set(m) => {
                m.hashtable
                    || (m.len() <= SET_INTSET_ENTRIES_MAX
                        && m.iter().all(|x| parse_integer(x).is_some()))
            }
            Object::SortedSet(s) => s.encoding_fits(),

            Object::List(_) => true,
        };
        match fits {
            true => Ok(()),
            false => Err("a compact encoding that its contents do not fit"),
        }
    }

    /// Checks the running hash and the encoding against the contents; O(elements).
    pub(crate) fn assert_invariants(&self) {
        let recomputed = match self {
            Object::Hash(fields) => fields.recompute_elements_hash(),
            Object::Set(members) => members.recompute_elements_hash(),
            Object::SortedSet(scores) => scores.recompute_elements_hash(),

            Object::List(items) => items.recompute_elements_hash(),
        };
        assert_eq!(self.elements_hash(), recomputed, "element hash drifted");
        assert_eq!(self.bytes(), self.recompute_bytes(), "byte count drifted");
        assert!(self.len() > 0, "an empty object is stored");
        self.assert_encoding_allowed().expect("encoding fits");
    }
}

/// What a key holding `object` adds to its database's entries hash.
pub(crate) fn object_entry_hash(key: &[u8], object: &Object) -> u64 {
    let kind = match object.kind() {
        ValueKind::Hash => 1,
        ValueKind::Set => 2,
        ValueKind::SortedSet => 3,
        ValueKind::List => 4,
        ValueKind::String => unreachable!("an object is no string"),
    };
    Hash64::new(TAG_OBJECT)
        .bytes(key)
        .word(kind)
        .word(u64::from(object.converted()))
        .word(object.len() as u64)
        .word(object.elements_hash())
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_is_an_intset_while_every_member_is_an_integer_and_never_again_after() {
        let mut members = Members::default();
        assert!(members.insert(b"3".to_vec()));
        assert!(!members.insert(b"3".to_vec()));
        members.insert(b"-10".to_vec());
        assert_eq!(members.encoding(), "intset");
        assert_eq!(members.listed(), vec![b"-10".to_vec(), b"3".to_vec()]);
        members.insert(b"a".to_vec());
        assert_eq!(members.encoding(), "hashtable");
        assert!(members.remove(b"a"));
        assert_eq!(members.encoding(), "hashtable", "no conversion back");
    }

    #[test]
    fn a_set_of_more_than_512_integers_is_a_hashtable() {
        let mut members = Members::default();
        for n in 0..SET_INTSET_ENTRIES_MAX {
            members.insert(n.to_string().into_bytes());
        }
        assert_eq!(members.encoding(), "intset");
        members.insert(b"100000".to_vec());
        assert_eq!(members.encoding(), "hashtable");
    }

    #[test]
    fn a_hash_is_a_listpack_until_a_long_value_or_too_many_fields() {
        let mut fields = Fields::default();
        fields.insert(b"f".to_vec(), vec![b'x'; HASH_LISTPACK_VALUE_MAX_BYTES]);
        assert_eq!(fields.encoding(), "listpack");
        fields.insert(b"g".to_vec(), vec![b'x'; HASH_LISTPACK_VALUE_MAX_BYTES + 1]);
        assert_eq!(fields.encoding(), "hashtable");
        let mut many = Fields::default();
        for n in 0..=HASH_LISTPACK_ENTRIES_MAX {
            many.insert(n.to_string().into_bytes(), b"v".to_vec());
        }
        assert_eq!(many.encoding(), "hashtable");
    }

    #[test]
    fn running_element_hash_matches_recomputed_after_changes() {
        let mut fields = Fields::default();
        assert!(fields.insert(b"a".to_vec(), b"1".to_vec()));
        assert!(!fields.insert(b"a".to_vec(), b"2".to_vec()));
        fields.insert(b"b".to_vec(), b"3".to_vec());
        assert!(fields.remove(b"b"));
        assert!(!fields.remove(b"b"));
        Object::Hash(fields.clone()).assert_invariants();
        let mut other = Fields::default();
        other.insert(b"a".to_vec(), b"2".to_vec());
        assert_eq!(fields.elements_hash, other.elements_hash);
        assert_ne!(
            object_entry_hash(b"k", &Object::Hash(fields)),
            object_entry_hash(b"k", &Object::Set(Members::default()))
        );
    }
}
