//! A list's value: its elements in order, with a running hash of them that each push and pop
//! at either end keeps in O(1).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::hash::{Hash64, TAG_LIST_ITEM};

fn item_hash(position: i64, item: &[u8]) -> u64 {
    Hash64::new(TAG_LIST_ITEM)
        .word(position as u64)
        .bytes(item)
        .finish()
}

/// A list's elements, head first. Never empty in a store: popping its last element removes the
/// key.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Items {
    items: VecDeque<Vec<u8>>,
    /// The position of the head element: one less after each push at the head, so an element
    /// keeps its position (and its share of the running hash) while it stays.
    head: i64,
    /// Wrapping sum of `item_hash(position, element)`; derived, rebuilt after decoding.
    #[serde(skip)]
    elements_hash: u64,
    /// Bytes of every element; derived, rebuilt after decoding.
    #[serde(skip)]
    bytes: usize,
}

impl Items {
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// The elements from `start` to `stop` inclusive (inside the list).
    pub(crate) fn range(&self, start: usize, stop: usize) -> impl Iterator<Item = &Vec<u8>> {
        assert!(
            start <= stop && stop < self.items.len(),
            "a range inside the list"
        );
        self.items.range(start..=stop)
    }

    /// The elements, head first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Vec<u8>> {
        self.items.iter()
    }

    /// Redis 7.0 keeps every list a quicklist.
    pub(crate) fn encoding(&self) -> &'static str {
        "quicklist"
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn elements_hash(&self) -> u64 {
        self.elements_hash
    }

    fn position(&self, index: usize) -> i64 {
        self.head + i64::try_from(index).expect("a list index fits in i64")
    }

    /// Counts the element at `index` in the running hash and bytes (`add`) or out of them.
    fn account(&mut self, index: usize, add: bool) {
        let (hash, len) = (
            item_hash(self.position(index), &self.items[index]),
            self.items[index].len(),
        );
        if add {
            self.elements_hash = self.elements_hash.wrapping_add(hash);
            self.bytes += len;
        } else {
            assert!(self.bytes >= len, "byte count covers the element");
            self.elements_hash = self.elements_hash.wrapping_sub(hash);
            self.bytes -= len;
        }
    }

    /// Pushes `item` at the head (`left`) or the tail.
    pub(crate) fn push(&mut self, left: bool, item: Vec<u8>) {
        let len_before = self.items.len();
        if left {
            self.head -= 1;
            self.items.push_front(item);
            self.account(0, true);
        } else {
            self.items.push_back(item);
            self.account(len_before, true);
        }
        assert_eq!(self.items.len(), len_before + 1, "a push adds one element");
    }

    /// Pops the head (`left`) or the tail element.
    pub(crate) fn pop(&mut self, left: bool) -> Option<Vec<u8>> {
        let index = match left {
            true => 0,
            false => self.items.len().checked_sub(1)?,
        };
        if self.items.is_empty() {
            return None;
        }
        self.account(index, false);
        let item = match left {
            true => {
                self.head += 1;
                self.items.pop_front()
            }
            false => self.items.pop_back(),
        };
        assert!(
            !self.items.is_empty() || (self.bytes == 0 && self.elements_hash == 0),
            "an emptied list keeps no running hash or bytes"
        );
        item
    }

    /// Replaces the element at `index` (which must be one).
    pub(crate) fn set(&mut self, index: usize, item: Vec<u8>) {
        assert!(index < self.items.len(), "LSET of an element there");
        self.account(index, false);
        self.items[index] = item;
        self.account(index, true);
    }

    /// Replaces the elements from `index` on by `rest`; O(elements after `index`).
    pub(crate) fn replace_tail(&mut self, index: usize, rest: Vec<Vec<u8>>) {
        assert!(index <= self.items.len(), "the tail starts inside the list");
        while self.items.len() > index {
            self.pop(false).expect("an element after the index");
        }
        let expected = index + rest.len();
        rest.into_iter().for_each(|item| self.push(false, item));
        assert_eq!(self.items.len(), expected, "the tail replaced whole");
    }

    pub(crate) fn recompute_elements_hash(&self) -> u64 {
        (self.items.iter().enumerate()).fold(0u64, |sum, (i, item)| {
            sum.wrapping_add(item_hash(self.position(i), item))
        })
    }

    /// Rebuilds the running hash and bytes after decoding.
    pub(crate) fn rebuild_derived(&mut self) {
        self.elements_hash = self.recompute_elements_hash();
        self.bytes = self.items.iter().map(Vec::len).sum();
    }
}
