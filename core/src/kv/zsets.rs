//! Sorted sets (Redis 7.0's ZADD…): the value, member → score with the members also in
//! (score, member) order, and applying and serving the commands on one database.
//!
//! Like a hash, a sorted set reports `listpack` while it is small and converts to `skiplist`
//! for good past Redis 7.0's `zset-max-listpack-entries` or `zset-max-listpack-value`; the
//! conversion is part of the state. Ranks are counted by walking the score order (O(rank)).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::deadlines::UnixMs;
use super::objects::{element_hash, Object, ValueKind};
use super::store::{Entry, Store};
use crate::command::{Command, CommandError, Reply, SetCondition, SetOp};
use crate::scores::{self, AddOptions, Aggregate, Compare, Range, RangeSpec, Score};

/// Redis 7.0's `zset-max-listpack-entries`: most members of a `listpack` sorted set.
pub const ZSET_LISTPACK_ENTRIES_MAX: usize = 128;
/// Redis 7.0's `zset-max-listpack-value`: longest member of a `listpack` sorted set, in bytes.
pub const ZSET_LISTPACK_VALUE_MAX_BYTES: usize = 64;

type Checked<T> = Result<T, CommandError>;

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
    fn rank(&self, member: &[u8], rev: bool) -> Option<usize> {
        let score = self.score(member)?;
        let below = self.by_score.range(..(score, member.to_vec())).count();
        assert!(below < self.len(), "a rank inside the set");
        Some(if rev { self.len() - 1 - below } else { below })
    }

    /// The members `spec` selects, with their scores, in reply order.
    fn select(&self, spec: &RangeSpec) -> Vec<(Vec<u8>, Score)> {
        let ascending: Vec<(&Vec<u8>, Score)> = self.ascending().collect();
        let selected = scores::select(&ascending, spec);
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

    fn from_pairs(pairs: impl IntoIterator<Item = (Vec<u8>, Score)>) -> Scores {
        let mut scores = Scores::default();
        for (member, score) in pairs {
            scores.insert(member, score);
        }
        scores
    }
}

/// The sorted set at `key` (`None` if absent or expired at `now_ms`), or `WrongType`.
fn zset_at<'a>(store: &'a Store, key: &[u8], now_ms: UnixMs) -> Checked<Option<&'a Scores>> {
    match (store.live_kind(key, now_ms), store.object(key)) {
        (None, _) => Ok(None),
        (Some(ValueKind::SortedSet), Some(Object::SortedSet(scores))) => Ok(Some(scores)),
        _ => Err(CommandError::WrongType),
    }
}

/// Members of the sorted set at `key` (0 if absent or of another kind).
pub(super) fn zset_len(store: &Store, key: &[u8], now_ms: UnixMs) -> Checked<usize> {
    zset_at(store, key, now_ms).map(|z| z.map_or(0, Scores::len))
}

fn int_from(count: usize) -> i64 {
    i64::try_from(count).expect("a count fits in i64")
}

fn texts(pairs: Vec<(Vec<u8>, Score)>) -> Reply {
    Reply::KeyValues(pairs.into_iter().map(|(m, s)| (m, s.text())).collect())
}

/// Serves a sorted-set read, or `None` if `command` is none of them.
pub(super) fn read(store: &Store, command: &Command, now_ms: UnixMs) -> Option<Reply> {
    let reply = match command {
        Command::ZsetRange { key, spec } => {
            zset_at(store, key, now_ms).map(|z| texts(z.map_or(vec![], |z| z.select(spec))))
        }
        Command::ZsetScores { key, members } => zset_at(store, key, now_ms).map(|z| {
            let score = |m: &Vec<u8>| z.and_then(|z| z.score(m)).map(Score::text);
            Reply::Values(members.iter().map(score).collect())
        }),
        Command::ZsetRank { key, member, rev } => {
            zset_at(store, key, now_ms).map(|z| match z.and_then(|z| z.rank(member, *rev)) {
                Some(rank) => Reply::Int(int_from(rank)),
                None => Reply::Value(None),
            })
        }
        Command::ZsetCombine {
            op,
            keys,
            weights,
            aggregate,
        } => combine(store, (*op, keys), (weights, *aggregate), now_ms).map(texts),
        _ => return None,
    };
    Some(reply.unwrap_or_else(Reply::Error))
}

/// Applies a sorted-set write, or `None` if `command` is none of them.
pub(super) fn apply(store: &mut Store, command: &Command) -> Option<Reply> {
    let reply = match command {
        Command::ZsetAdd {
            key,
            members,
            options,
        } => add(store, key, members, *options),
        Command::ZsetRemove { key, members } => remove(store, key, members),
        Command::ZsetRemoveRange { key, range } => remove_range(store, key, range),
        Command::ZsetRangeStore { dest, key, spec } => zset_at(store, key, UnixMs::MIN)
            .map(|z| z.map_or(vec![], |z| z.select(spec)))
            .map(|pairs| store_result(store, dest, pairs)),
        Command::ZsetPop { keys, max, count } => pop(store, keys, *max, *count),
        Command::ZsetStore {
            op,
            dest,
            keys,
            weights,
            aggregate,
        } => combine(store, (*op, keys), (weights, *aggregate), UnixMs::MIN)
            .map(|pairs| store_result(store, dest, pairs)),
        _ => return None,
    };
    Some(reply.unwrap_or_else(Reply::Error))
}

/// Changes the sorted set at `key`, created empty if absent (and dropped if left empty).
fn change_zset<R>(
    store: &mut Store,
    key: &[u8],
    change: impl FnOnce(&mut Scores) -> R,
) -> Checked<R> {
    if zset_at(store, key, UnixMs::MIN)?.is_none() {
        let mut scores = Scores::default();
        let result = change(&mut scores);
        if scores.len() > 0 {
            store.insert_object(key.to_vec(), Object::SortedSet(scores));
        }
        return Ok(result);
    }
    Ok(store.update_object(key, |object| match object {
        Object::SortedSet(scores) => change(scores),
        _ => unreachable!("checked: a sorted set"),
    }))
}

/// What ZADD does to one member: its new score, or `None` if a condition keeps it as it is.
fn added_score(old: Option<Score>, given: Score, options: AddOptions) -> Checked<Option<Score>> {
    let allowed = match (old, options.condition) {
        (Some(_), SetCondition::IfAbsent) | (None, SetCondition::IfPresent) => false,
        _ => true,
    };
    if !allowed {
        return Ok(None);
    }
    let new = match (options.increment, old) {
        (true, Some(old)) => {
            Score::new(old.value() + given.value()).ok_or(CommandError::ScoreNan)?
        }
        _ => given,
    };
    let compared = match (old, options.compare) {
        (Some(old), Some(Compare::Greater)) => new > old,
        (Some(old), Some(Compare::Less)) => new < old,
        _ => true,
    };
    Ok(compared.then_some(new))
}

fn add(
    store: &mut Store,
    key: &[u8],
    members: &[scores::ScoredMember],
    options: AddOptions,
) -> Checked<Reply> {
    let len_before = zset_len(store, key, UnixMs::MIN)?;
    // Every member's fate first, so an error (a NaN sum) changes nothing.
    let mut planned: Vec<(Vec<u8>, Option<Score>, Score)> = Vec::with_capacity(members.len());
    {
        let zset = zset_at(store, key, UnixMs::MIN)?;
        let mut pending: BTreeMap<&[u8], Score> = BTreeMap::new();
        for m in members {
            let old = (pending.get(m.member.as_slice()).copied())
                .or_else(|| zset.and_then(|z| z.score(&m.member)));
            if let Some(new) = added_score(old, m.score, options)? {
                pending.insert(&m.member, new);
                planned.push((m.member.clone(), old, new));
            }
        }
    }
    let (mut added, mut changed) = (0usize, 0usize);
    let last = planned.last().map(|(_, _, new)| *new);
    change_zset(store, key, |zset| {
        for (member, _, new) in planned {
            match zset.insert(member, new) {
                None => added += 1,
                Some(old) if old != new => changed += 1,
                Some(_) => {}
            }
        }
    })?;
    assert!(
        added + changed <= members.len(),
        "ZADD touches at most the members it names"
    );
    assert_eq!(
        zset_len(store, key, UnixMs::MIN)?,
        len_before + added,
        "ZADD grows by what it added"
    );
    Ok(match (options.increment, options.changed) {
        (true, _) => Reply::Value(last.map(Score::text)),
        (false, true) => Reply::Int(int_from(added + changed)),
        (false, false) => Reply::Int(int_from(added)),
    })
}

fn remove(store: &mut Store, key: &[u8], members: &[Vec<u8>]) -> Checked<Reply> {
    let len_before = zset_len(store, key, UnixMs::MIN)?;
    if len_before == 0 {
        return Ok(Reply::Int(0));
    }
    let removed = change_zset(store, key, |zset| {
        members.iter().filter(|m| zset.remove(m).is_some()).count()
    })?;
    assert!(
        removed <= members.len(),
        "ZREM removes at most the members it names"
    );
    assert_eq!(
        zset_len(store, key, UnixMs::MIN)? + removed,
        len_before,
        "ZREM shrinks"
    );
    assert!(
        removed < len_before || !store.exists(key),
        "an emptied sorted set is deleted"
    );
    Ok(Reply::Int(int_from(removed)))
}

fn remove_range(store: &mut Store, key: &[u8], range: &Range) -> Checked<Reply> {
    let spec = RangeSpec {
        range: range.clone(),
        rev: false,
        limit: None,
    };
    let members: Vec<Vec<u8>> = match zset_at(store, key, UnixMs::MIN)? {
        None => return Ok(Reply::Int(0)),
        Some(zset) => zset.select(&spec).into_iter().map(|(m, _)| m).collect(),
    };
    remove(store, key, &members)
}

/// Stores `pairs` at `dest` as a new sorted set without a deadline (removes `dest` if none);
/// `Int(its size)`.
fn store_result(store: &mut Store, dest: &[u8], pairs: Vec<(Vec<u8>, Score)>) -> Reply {
    let len = pairs.len();
    if len == 0 {
        store.remove(dest);
    } else {
        let zset = Scores::from_pairs(pairs);
        assert_eq!(zset.len(), len, "distinct members stored");
        store.put_with_deadline(dest.to_vec(), Entry::Obj(Object::SortedSet(zset)), None);
    }
    assert_eq!(
        zset_len(store, dest, UnixMs::MIN),
        Ok(len),
        "a stored result's size"
    );
    Reply::Int(int_from(len))
}

/// The members of a sorted set or a set (each scoring 1) at `key`, none if absent.
fn scored_input(store: &Store, key: &[u8], now_ms: UnixMs) -> Checked<BTreeMap<Vec<u8>, Score>> {
    let one = Score::new(1.0).expect("1 is a score");
    match (store.live_kind(key, now_ms), store.object(key)) {
        (None, _) => Ok(BTreeMap::new()),
        (Some(ValueKind::SortedSet), Some(Object::SortedSet(z))) => Ok(z.by_member.clone()),
        (Some(ValueKind::Set), Some(Object::Set(members))) => {
            Ok(members.iter().map(|m| (m.clone(), one)).collect())
        }
        _ => Err(CommandError::WrongType),
    }
}

/// ZUNION, ZINTER and ZDIFF of `keys`, in (score, member) order.
fn combine(
    store: &Store,
    (op, keys): (SetOp, &[Vec<u8>]),
    (weights, aggregate): (&[Score], Aggregate),
    now_ms: UnixMs,
) -> Checked<Vec<(Vec<u8>, Score)>> {
    let inputs: Vec<BTreeMap<Vec<u8>, Score>> = (keys.iter())
        .map(|key| scored_input(store, key, now_ms))
        .collect::<Checked<_>>()?;
    let one = Score::new(1.0).expect("1 is a score");
    let weight = |i: usize| weights.get(i).copied().unwrap_or(one);
    let weigh = |i: usize, s: Score| match op {
        SetOp::Diff => s,
        _ => scores::weighted(s, weight(i)),
    };
    let mut result: BTreeMap<Vec<u8>, Score> = (inputs[0].iter())
        .map(|(m, s)| (m.clone(), weigh(0, *s)))
        .collect();
    for (i, input) in inputs.iter().enumerate().skip(1) {
        match op {
            SetOp::Union => {
                for (member, score) in input {
                    let score = weigh(i, *score);
                    let combined = match result.get(member) {
                        Some(old) => aggregate.apply(*old, score),
                        None => score,
                    };
                    result.insert(member.clone(), combined);
                }
            }
            SetOp::Inter => {
                result.retain(|m, _| input.contains_key(m));
                for (member, score) in result.iter_mut() {
                    *score = aggregate.apply(*score, weigh(i, input[member]));
                }
            }
            SetOp::Diff => result.retain(|m, _| !input.contains_key(m)),
        }
    }
    assert!(
        op == SetOp::Union || result.len() <= inputs[0].len(),
        "ZINTER and ZDIFF only shrink the first set"
    );
    let mut ordered: Vec<(Vec<u8>, Score)> = result.into_iter().collect();
    ordered.sort_by(|(ma, sa), (mb, sb)| sa.cmp(sb).then_with(|| ma.cmp(mb)));
    Ok(ordered)
}

/// ZPOPMIN and kin: up to `count` of the first nonempty sorted set of `keys`.
fn pop(store: &mut Store, keys: &[Vec<u8>], max: bool, count: Option<u64>) -> Checked<Reply> {
    let wanted = count.map_or(1, |c| usize::try_from(c).unwrap_or(usize::MAX));
    let mut found = None;
    for key in keys {
        if zset_len(store, key, UnixMs::MIN)? > 0 {
            found = Some(key);
            break;
        }
    }
    let Some(key) = found.filter(|_| wanted > 0) else {
        return Ok(Reply::Popped {
            key: None,
            pairs: vec![],
        });
    };
    let len_before = zset_len(store, key, UnixMs::MIN)?;
    let popped = change_zset(store, key, |zset| {
        let mut popped = Vec::with_capacity(wanted.min(zset.len()));
        while popped.len() < wanted {
            let next = match max {
                true => zset.ascending().next_back(),
                false => zset.ascending().next(),
            };
            let Some((member, score)) = next.map(|(m, s)| (m.clone(), s)) else {
                break;
            };
            assert_eq!(zset.remove(&member), Some(score), "popped its own score");
            popped.push((member, score.text()));
        }
        popped
    })?;
    assert_eq!(
        popped.len(),
        wanted.min(len_before),
        "ZPOP takes what it can"
    );
    assert_eq!(
        zset_len(store, key, UnixMs::MIN)? + popped.len(),
        len_before,
        "ZPOP shrinks"
    );
    Ok(Reply::Popped {
        key: Some(key.clone()),
        pairs: popped,
    })
}
