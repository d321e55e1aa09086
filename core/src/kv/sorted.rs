//! A sorted set's value: member → score, with the members also in (score, member) order, a
//! running hash of its elements, and Redis 7.0's `listpack`/`skiplist` encoding.
//!
//! Like a hash, a sorted set reports `listpack` while it is small and converts to `skiplist`
//! for good past Redis 7.0's `zset-max-listpack-entries` or `zset-max-listpack-value`; the
//! conversion is part of the state. Ranks are counted by walking the score order (O(rank)).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::hash::element_hash;
use crate::scores::{self, RangeSpec, Score};

/// Redis 7.0's `zset-max-listpack-entries`: most members of a `listpack` sorted set.
pub const ZSET_LISTPACK_ENTRIES_MAX: usize = 128;
/// Redis 7.0's `zset-max-listpack-value`: longest member of a `listpack` sorted set, in bytes.
pub const ZSET_LISTPACK_VALUE_MAX_BYTES: usize = 64;

/// A sorted set: each member's score, and the members in (score, member) order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Scores {
    by_member: BTreeMap<Vec<u8>, Score>,
    /// Converted to `skiplist` (for good).
    skiplist: bool,
    /// The members in (score, member) order; derived, rebuilt after decoding.
    #[serde(skip)]
    by_score: BTreeSet<(Score, Vec<u8>)>,
    /// Wrapping sum of `element_hash(member, score bits)`; derived.
    #[serde(skip)]
    elements_hash: u64,
    /// Bytes of every member; derived.
    #[serde(skip)]
    bytes: usize,
}

fn scored_hash(member: &[u8], score: Score) -> u64 {
    element_hash(member, &score.value().to_bits().to_le_bytes())
}

impl Scores {
    pub(crate) fn len(&self) -> usize {
        self.by_member.len()
    }

    pub(crate) fn score(&self, member: &[u8]) -> Option<Score> {
        self.by_member.get(member).copied()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn skiplist(&self) -> bool {
        self.skiplist
    }

    pub(crate) fn elements_hash(&self) -> u64 {
        self.elements_hash
    }

    pub(crate) fn encoding(&self) -> &'static str {
        match self.skiplist {
            true => "skiplist",
            false => "listpack",
        }
    }

    /// The members in (score, member) order.
    pub(crate) fn ascending(&self) -> impl DoubleEndedIterator<Item = (&Vec<u8>, Score)> {
        self.by_score.iter().map(|(s, m)| (m, *s))
    }

    /// Stores `member` at `score`; its old score, if it had one.
    pub(crate) fn insert(&mut self, member: Vec<u8>, score: Score) -> Option<Score> {
        let len_before = self.len();
        let long = member.len() > ZSET_LISTPACK_VALUE_MAX_BYTES;
        assert!(!score.value().is_nan(), "a score is never NaN");
        let old = self.remove(&member);
        self.elements_hash = self.elements_hash.wrapping_add(scored_hash(&member, score));
        self.bytes += member.len();
        assert!(
            self.by_score.insert((score, member.clone())),
            "one place per member"
        );
        assert!(
            self.by_member.insert(member, score).is_none(),
            "removed first"
        );
        self.skiplist |= long || self.len() > ZSET_LISTPACK_ENTRIES_MAX;
        assert_eq!(
            self.len(),
            len_before + usize::from(old.is_none()),
            "ZADD count"
        );
        assert_eq!(
            self.by_score.len(),
            self.by_member.len(),
            "both orders hold every member"
        );
        assert!(self.skiplist || self.len() <= ZSET_LISTPACK_ENTRIES_MAX);
        old
    }

    /// Removes `member`; its score, if it was there.
    pub(crate) fn remove(&mut self, member: &[u8]) -> Option<Score> {
        let score = self.by_member.remove(member)?;
        assert!(
            self.by_score.remove(&(score, member.to_vec())),
            "in score order too"
        );
        assert!(self.bytes >= member.len(), "byte count covers the member");
        self.bytes -= member.len();
        self.elements_hash = self.elements_hash.wrapping_sub(scored_hash(member, score));
        assert_eq!(
            self.by_score.len(),
            self.by_member.len(),
            "both orders hold every member"
        );
        assert!(
            !self.by_member.is_empty() || (self.bytes == 0 && self.elements_hash == 0),
            "an emptied sorted set keeps no running hash or bytes"
        );
        Some(score)
    }

    /// The rank of `member` from the lowest (from the highest with `rev`).
    pub(crate) fn rank(&self, member: &[u8], rev: bool) -> Option<usize> {
        let score = self.score(member)?;
        let below = self.by_score.range(..(score, member.to_vec())).count();
        assert!(below < self.len(), "a rank inside the set");
        Some(if rev { self.len() - 1 - below } else { below })
    }

    /// The members `spec` selects, with their scores, in reply order.
    pub(crate) fn select(&self, spec: &RangeSpec) -> Vec<(Vec<u8>, Score)> {
        let ascending: Vec<(&Vec<u8>, Score)> = self.ascending().collect();
        let selected = scores::select(&ascending, spec);
        let in_order = |a: &(&Vec<u8>, Score), b: &(&Vec<u8>, Score)| match spec.rev {
            false => (a.1, a.0) < (b.1, b.0),
            true => (a.1, a.0) > (b.1, b.0),
        };
        assert!(
            selected.windows(2).all(|w| in_order(w[0], w[1])),
            "a range answers in score order"
        );
        assert!(
            selected.len() <= self.len(),
            "a range selects members of the set"
        );
        selected
            .into_iter()
            .map(|(m, s)| ((*m).clone(), *s))
            .collect()
    }

    pub(crate) fn recompute_elements_hash(&self) -> u64 {
        (self.by_member.iter()).fold(0u64, |sum, (m, s)| sum.wrapping_add(scored_hash(m, *s)))
    }

    pub(crate) fn recompute_bytes(&self) -> usize {
        self.by_member.keys().map(Vec::len).sum()
    }

    /// Rebuilds the derived fields after decoding; refuses a NaN or negative-zero score.
    pub(crate) fn rebuild(&mut self) -> Result<(), String> {
        for score in self.by_member.values() {
            score.checked()?;
        }
        self.by_score = (self.by_member.iter())
            .map(|(m, s)| (*s, m.clone()))
            .collect();
        self.elements_hash = self.recompute_elements_hash();
        self.bytes = self.recompute_bytes();
        assert_eq!(
            self.by_score.len(),
            self.by_member.len(),
            "rebuilt score order"
        );
        Ok(())
    }

    /// Whether `listpack` (if reported) fits the contents.
    pub(crate) fn encoding_fits(&self) -> bool {
        let order_ok = self.by_score.len() == self.by_member.len()
            && (self.by_score.iter()).all(|(s, m)| self.by_member.get(m) == Some(s));
        order_ok
            && (self.skiplist
                || (self.len() <= ZSET_LISTPACK_ENTRIES_MAX
                    && (self.by_member.keys()).all(|m| m.len() <= ZSET_LISTPACK_VALUE_MAX_BYTES)))
    }

    /// Each member's score.
    pub(crate) fn scores_by_member(&self) -> BTreeMap<Vec<u8>, Score> {
        self.by_member.clone()
    }

    pub(crate) fn from_pairs(pairs: impl IntoIterator<Item = (Vec<u8>, Score)>) -> Scores {
        let mut scores = Scores::default();
        let mut given = 0;
        for (member, score) in pairs {
            scores.insert(member, score);
            given += 1;
        }
        assert!(scores.len() <= given, "no member from nowhere");
        assert!(scores.len() > 0 || given == 0, "a member given is kept");
        scores
    }
}
