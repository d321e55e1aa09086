//! Applying and serving the hash and set commands (Redis 7.0's HSET… and SADD…) on one
//! database; the values themselves are in `objects`.
//!
//! Every command checks the kind of each key it names first: a key of another kind answers
//! `Error(WrongType)` and nothing changes. Writes see expired keys reaped already; reads judge
//! expiry at the time they are given.

use std::collections::BTreeSet;

use super::deadlines::UnixMs;
use super::hash::{Hash64, TAG_POP};
use super::objects::{Fields, Members, Object, ValueKind};
use super::store::{Entry, Store};
use crate::command::{Command, CommandError, Reply, SetOp};
use crate::strings::{self as text, FloatError};

type Checked<T> = Result<T, CommandError>;

/// The hash at `key` (`None` if absent or expired at `now_ms`), or `WrongType`.
fn hash_at<'a>(store: &'a Store, key: &[u8], now_ms: UnixMs) -> Checked<Option<&'a Fields>> {
    match (store.live_kind(key, now_ms), store.object(key)) {
        (None, _) => Ok(None),
        (Some(ValueKind::Hash), Some(Object::Hash(fields))) => Ok(Some(fields)),
        _ => Err(CommandError::WrongType),
    }
}

/// The set at `key` (`None` if absent or expired at `now_ms`), or `WrongType`.
fn set_at<'a>(store: &'a Store, key: &[u8], now_ms: UnixMs) -> Checked<Option<&'a Members>> {
    match (store.live_kind(key, now_ms), store.object(key)) {
        (None, _) => Ok(None),
        (Some(ValueKind::Set), Some(Object::Set(members))) => Ok(Some(members)),
        _ => Err(CommandError::WrongType),
    }
}

fn int_from(count: usize) -> i64 {
    i64::try_from(count).expect("a count fits in i64")
}

/// Fields of the hash at `key` (0 if absent); O(log keys).
fn hash_len(store: &Store, key: &[u8]) -> usize {
    hash_at(store, key, UnixMs::MIN).map_or(0, |h| h.map_or(0, Fields::len))
}

/// Members of the set at `key` (0 if absent); O(log keys).
fn set_len(store: &Store, key: &[u8]) -> usize {
    set_at(store, key, UnixMs::MIN).map_or(0, |s| s.map_or(0, Members::len))
}

fn reply_of(result: Checked<Reply>) -> Reply {
    result.unwrap_or_else(Reply::Error)
}

/// Serves a hash or set read, or `None` if `command` is none of them.
pub(super) fn read(store: &Store, command: &Command, now_ms: UnixMs) -> Option<Reply> {
    let reply = match command {
        Command::Describe { key } => Ok(describe(store, key, now_ms)),
        Command::Exists { keys } => {
            let present = keys.iter().filter(|k| store.is_live(k, now_ms)).count();
            Ok(Reply::Int(int_from(present)))
        }
        Command::HashGet { key, fields } => hash_at(store, key, now_ms).map(|hash| {
            let value = |f: &Vec<u8>| hash.and_then(|h| h.get(f)).cloned();
            Reply::Values(fields.iter().map(value).collect())
        }),
        Command::HashGetAll { key } => hash_at(store, key, now_ms).map(|hash| {
            let pairs = hash.into_iter().flat_map(Fields::iter);
            Reply::KeyValues(pairs.map(|(f, v)| (f.clone(), v.clone())).collect())
        }),
        Command::Cardinality { key, kind } => cardinality(store, key, *kind, now_ms),
        Command::SetMembers { key } => {
            set_at(store, key, now_ms).map(|set| Reply::Keys(set.map_or(vec![], Members::listed)))
        }
        Command::SetContains { key, members } => set_at(store, key, now_ms).map(|set| {
            let found = |m: &Vec<u8>| set.filter(|s| s.contains(m)).map(|_| m.clone());
            Reply::Values(members.iter().map(found).collect())
        }),
        Command::SetCombine { op, keys } => {
            combine(store, *op, keys, now_ms).map(|set| Reply::Keys(set.into_iter().collect()))
        }
        _ => return None,
    };
    Some(reply_of(reply))
}

/// TYPE's and OBJECT's read.
fn describe(store: &Store, key: &[u8], now_ms: UnixMs) -> Reply {
    let Some(kind) = store.live_kind(key, now_ms) else {
        return Reply::Value(None);
    };
    let (encoding, refcount, bytes) = match (store.get(key), store.object(key)) {
        (Some(value), _) => (
            crate::redis::shape::encoding(value),
            crate::redis::shape::refcount(value),
            value.len(),
        ),
        (None, Some(object)) => (object.encoding(), 1, object.bytes()),
        (None, None) => unreachable!("a live key holds a value"),
    };
    Reply::Described {
        kind,
        encoding: encoding.to_string(),
        refcount,
        bytes: bytes as u64,
    }
}

fn cardinality(store: &Store, key: &[u8], kind: ValueKind, now_ms: UnixMs) -> Checked<Reply> {
    let len = match kind {
        ValueKind::Hash => hash_at(store, key, now_ms)?.map_or(0, Fields::len),
        ValueKind::Set => set_at(store, key, now_ms)?.map_or(0, Members::len),
        ValueKind::SortedSet => super::zsets::zset_len(store, key, now_ms)?,

        ValueKind::List => super::lists::list_len(store, key, now_ms)?,
        ValueKind::String => unreachable!("STRLEN is a string read"),
    };
    Ok(Reply::Int(int_from(len)))
}

/// `op` of the sets at `keys` (an absent key is an empty set).
fn combine(
    store: &Store,
    op: SetOp,
    keys: &[Vec<u8>],
    now_ms: UnixMs,
) -> Checked<BTreeSet<Vec<u8>>> {
    let sets: Vec<Option<&Members>> = (keys.iter())
        .map(|key| set_at(store, key, now_ms))
        .collect::<Checked<_>>()?;
    fn members(set: Option<&Members>) -> impl Iterator<Item = Vec<u8>> + '_ {
        set.into_iter().flat_map(Members::iter).cloned()
    }
    let mut result: BTreeSet<Vec<u8>> = members(sets[0]).collect();
    let first_len = result.len();
    for set in &sets[1..] {
        let len_before = result.len();
        match op {
            SetOp::Union => result.extend(members(*set)),
            SetOp::Inter => result.retain(|m| set.is_some_and(|s| s.contains(m))),
            SetOp::Diff => result.retain(|m| !set.is_some_and(|s| s.contains(m))),
        }
        let other_len = set.map_or(0, Members::len);
        assert!(
            result.len() <= len_before + other_len,
            "a union adds at most the other set"
        );
    }
    assert!(
        op == SetOp::Union || result.len() <= first_len,
        "SINTER/SDIFF only shrink"
    );
    Ok(result)
}

/// Applies a hash or set write at `slot` (SPOP's choice derives from it), or `None` if
/// `command` is none of them.
pub(super) fn apply(store: &mut Store, command: &Command, slot: u64) -> Option<Reply> {
    let reply = match command {
        Command::HashSet {
            key,
            pairs,
            if_absent,
        } => hash_set(store, key, pairs, *if_absent),
        Command::HashDelete { key, fields } => hash_delete(store, key, fields),
        Command::HashAdd { key, field, delta } => hash_add(store, key, field, *delta),
        Command::HashAddFloat { key, field, delta } => hash_add_float(store, key, field, delta),
        Command::SetAdd { key, members } => set_add(store, key, members),
        Command::SetRemove { key, members } => set_remove(store, key, members),
        Command::SetMove { from, to, member } => set_move(store, (from, to), member),
        Command::SetStore { op, dest, keys } => set_store(store, *op, dest, keys),
        Command::SetPop { key, count } => set_pop(store, key, *count, slot),
        _ => return None,
    };
    Some(reply_of(reply))
}

/// Checks that `key` holds a hash or nothing; an absent key is none yet (writes see expired
/// keys reaped already, so time plays no part).
fn writable_hash(store: &Store, key: &[u8]) -> Checked<bool> {
    hash_at(store, key, UnixMs::MIN).map(|hash| hash.is_some())
}

fn writable_set(store: &Store, key: &[u8]) -> Checked<bool> {
    set_at(store, key, UnixMs::MIN).map(|set| set.is_some())
}

/// Changes the hash at `key`, created empty if absent (and dropped again if left empty).
fn change_hash<R>(
    store: &mut Store,
    key: &[u8],
    change: impl FnOnce(&mut Fields) -> R,
) -> Checked<R> {
    if !writable_hash(store, key)? {
        let mut fields = Fields::default();
        let result = change(&mut fields);
        if fields.len() > 0 {
            store.insert_object(key.to_vec(), Object::Hash(fields));
        }
        return Ok(result);
    }
    Ok(store.update_object(key, |object| match object {
        Object::Hash(fields) => change(fields),
        _ => unreachable!("checked: a hash"),
    }))
}

fn change_set<R>(
    store: &mut Store,
    key: &[u8],
    change: impl FnOnce(&mut Members) -> R,
) -> Checked<R> {
    if !writable_set(store, key)? {
        let mut members = Members::default();
        let result = change(&mut members);
        if members.len() > 0 {
            store.insert_object(key.to_vec(), Object::Set(members));
        }
        return Ok(result);
    }
    Ok(store.update_object(key, |object| match object {
        Object::Set(members) => change(members),
        _ => unreachable!("checked: a set"),
    }))
}

fn hash_set(
    store: &mut Store,
    key: &[u8],
    pairs: &[(Vec<u8>, Vec<u8>)],
    if_absent: bool,
) -> Checked<Reply> {
    let len_before = hash_len(store, key);
    let added = change_hash(store, key, |fields| {
        let mut added = 0;
        for (field, value) in pairs {
            if if_absent && fields.get(field).is_some() {
                continue;
            }
            added += usize::from(fields.insert(field.clone(), value.clone()));
        }
        added
    })?;
    assert!(
        added <= pairs.len(),
        "HSET adds at most the fields it names"
    );
    assert_eq!(
        hash_len(store, key),
        len_before + added,
        "HSET grows by what it added"
    );
    Ok(Reply::Int(int_from(added)))
}

fn hash_delete(store: &mut Store, key: &[u8], fields: &[Vec<u8>]) -> Checked<Reply> {
    if !writable_hash(store, key)? {
        return Ok(Reply::Int(0));
    }
    let len_before = hash_len(store, key);
    let removed = change_hash(store, key, |hash| {
        fields.iter().filter(|f| hash.remove(f)).count()
    })?;
    assert!(
        removed <= fields.len(),
        "HDEL removes at most the fields it names"
    );
    assert_eq!(
        hash_len(store, key) + removed,
        len_before,
        "HDEL shrinks by what it removed"
    );
    assert!(
        removed < len_before || !store.exists(key),
        "an emptied hash is deleted"
    );
    Ok(Reply::Int(int_from(removed)))
}

fn hash_add(store: &mut Store, key: &[u8], field: &[u8], delta: i64) -> Checked<Reply> {
    let old = hash_at(store, key, UnixMs::MIN)?.and_then(|h| h.get(field));
    let old = match old {
        None => 0,
        Some(value) => super::parse_integer(value).ok_or(CommandError::HashNotAnInteger)?,
    };
    let new = old.checked_add(delta).ok_or(CommandError::Overflow)?;
    change_hash(store, key, |fields| {
        fields.insert(field.to_vec(), new.to_string().into_bytes())
    })?;
    let stored = hash_at(store, key, UnixMs::MIN)?.and_then(|h| h.get(field));
    assert_eq!(
        stored.and_then(|v| super::parse_integer(v)),
        Some(new),
        "HINCRBY stored"
    );
    Ok(Reply::Int(new))
}

fn hash_add_float(store: &mut Store, key: &[u8], field: &[u8], delta: &[u8]) -> Checked<Reply> {
    let old = hash_at(store, key, UnixMs::MIN)?.and_then(|h| h.get(field));
    let new = match (
        text::parse_float(delta),
        text::add_float(old.map(Vec::as_slice), delta),
    ) {
        (None, _) => return Err(CommandError::NotAFloat),
        (Some(_), Err(FloatError::NotAFloat)) => return Err(CommandError::HashNotAFloat),
        (Some(_), Err(FloatError::NanOrInfinity)) => return Err(CommandError::NanOrInfinity),
        (Some(_), Ok(new)) => new,
    };
    change_hash(store, key, |fields| {
        fields.insert(field.to_vec(), new.clone())
    })?;
    let stored = hash_at(store, key, UnixMs::MIN)?.and_then(|h| h.get(field));
    assert_eq!(stored, Some(&new), "HINCRBYFLOAT stored");
    Ok(Reply::Value(Some(new)))
}

fn set_add(store: &mut Store, key: &[u8], members: &[Vec<u8>]) -> Checked<Reply> {
    let len_before = set_len(store, key);
    let added = change_set(store, key, |set| {
        members.iter().filter(|m| set.insert(m.to_vec())).count()
    })?;
    assert!(
        added <= members.len(),
        "SADD adds at most the members it names"
    );
    assert_eq!(
        set_len(store, key),
        len_before + added,
        "SADD grows by what it added"
    );
    Ok(Reply::Int(int_from(added)))
}

fn set_remove(store: &mut Store, key: &[u8], members: &[Vec<u8>]) -> Checked<Reply> {
    if !writable_set(store, key)? {
        return Ok(Reply::Int(0));
    }
    let len_before = set_len(store, key);
    let removed = change_set(store, key, |set| {
        members.iter().filter(|m| set.remove(m)).count()
    })?;
    assert!(
        removed <= members.len(),
        "SREM removes at most the members it names"
    );
    assert_eq!(
        set_len(store, key) + removed,
        len_before,
        "SREM shrinks by what it removed"
    );
    assert!(
        removed < len_before || !store.exists(key),
        "an emptied set is deleted"
    );
    Ok(Reply::Int(int_from(removed)))
}

fn set_move(store: &mut Store, (from, to): (&[u8], &[u8]), member: &[u8]) -> Checked<Reply> {
    let present = set_at(store, from, UnixMs::MIN)?.is_some_and(|s| s.contains(member));
    writable_set(store, to)?;
    if !present {
        return Ok(Reply::Bool(false));
    }
    if from != to {
        assert!(change_set(store, from, |set| set.remove(member))?);
        change_set(store, to, |set| set.insert(member.to_vec()))?;
        let moved = set_at(store, from, UnixMs::MIN)?.is_some_and(|s| s.contains(member));
        assert!(!moved, "SMOVE leaves no copy behind");
    }
    assert!(set_at(store, to, UnixMs::MIN)?.is_some_and(|s| s.contains(member)));
    Ok(Reply::Bool(true))
}

fn set_store(store: &mut Store, op: SetOp, dest: &[u8], keys: &[Vec<u8>]) -> Checked<Reply> {
    let result = combine(store, op, keys, UnixMs::MIN)?;
    let len = result.len();
    if len == 0 {
        store.remove(dest);
    } else {
        let mut members = Members::default();
        result.into_iter().for_each(|m| assert!(members.insert(m)));
        store.put_with_deadline(dest.to_vec(), Entry::Obj(Object::Set(members)), None);
    }
    assert_eq!(
        set_len(store, dest),
        len,
        "SINTERSTORE and kin store what they count"
    );
    Ok(Reply::Int(int_from(len)))
}

/// SPOP: each member it takes is the first at or after a point drawn from the slot and the
/// member's turn, so every replica takes the same ones.
fn set_pop(store: &mut Store, key: &[u8], count: Option<u64>, slot: u64) -> Checked<Reply> {
    let len = set_at(store, key, UnixMs::MIN)?.map_or(0, Members::len);
    let wanted = count
        .map_or(1, |c| usize::try_from(c).unwrap_or(usize::MAX))
        .min(len);
    let mut popped = Vec::with_capacity(wanted);
    if wanted > 0 {
        change_set(store, key, |set| {
            for turn in 0..wanted {
                let seed = Hash64::new(TAG_POP).word(slot).word(turn as u64).finish();
                let member = set
                    .at_or_after(&seed.to_be_bytes())
                    .expect("not empty")
                    .clone();
                assert!(set.remove(&member));
                popped.push(member);
            }
        })?;
    }
    assert_eq!(popped.len(), wanted, "SPOP takes what it can");
    assert!(wanted <= len, "SPOP takes no more than the set holds");
    assert_eq!(
        set_len(store, key) + wanted,
        len,
        "SPOP shrinks by what it took"
    );
    assert!(
        wanted < len || !store.exists(key),
        "an emptied set is deleted"
    );
    Ok(match count {
        None => Reply::Value(popped.pop()),
        Some(_) => Reply::Keys(popped),
    })
}
