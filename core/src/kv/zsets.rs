//! Sorted sets (Redis 7.0's ZADD…): the value, member → score with the members also in
//! (score, member) order, and applying and serving the commands on one database.
//!
//! Like a hash, a sorted set reports `listpack` while it is small and converts to `skiplist`
//! for good past Redis 7.0's `zset-max-listpack-entries` or `zset-max-listpack-value`; the
//! conversion is part of the state. Ranks are counted by walking the score order (O(rank)).

use std::collections::BTreeMap;

use super::deadlines::UnixMs;
use super::objects::{Object, ValueKind};
use super::sorted::Scores;
use super::store::{Entry, Store};
use crate::command::AddOptions;
use crate::command::{Command, CommandError, Reply, SetCondition, SetOp};
use crate::scores::{self, Aggregate, Compare, Range, RangeSpec, Score};

type Checked<T> = Result<T, CommandError>;

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
    let allowed = !matches!(
        (old, options.condition),
        (Some(_), SetCondition::IfAbsent) | (None, SetCondition::IfPresent)
    );
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
            match zset.insert(member.clone(), new) {
                None => added += 1,
                Some(old) if old != new => changed += 1,
                Some(_) => {}
            }
            assert_eq!(zset.score(&member), Some(new), "ZADD stored the score");
        }
    })?;
    assert!(
        !options.increment || members.len() == 1,
        "INCR takes one member"
    );
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
    let reply = remove(store, key, &members)?;
    assert_eq!(
        reply,
        Reply::Int(int_from(members.len())),
        "every selected member removed"
    );
    Ok(reply)
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
        (Some(ValueKind::SortedSet), Some(Object::SortedSet(z))) => Ok(z.scores_by_member()),
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
    assert!(
        op != SetOp::Inter || (result.keys()).all(|m| inputs.iter().all(|i| i.contains_key(m))),
        "ZINTER keeps only members of every set"
    );
    assert!(
        op != SetOp::Diff
            || (result.keys()).all(|m| !inputs[1..].iter().any(|i| i.contains_key(m))),
        "ZDIFF keeps no member of another set"
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
            let beyond = match max {
                true => zset.ascending().next_back().is_some_and(|(_, s)| s > score),
                false => zset.ascending().next().is_some_and(|(_, s)| s < score),
            };
            assert!(!beyond, "ZPOP takes the lowest (highest) first");
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
