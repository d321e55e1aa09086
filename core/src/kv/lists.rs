//! Redis 7.0's lists: the value ([`Items`], elements in order with a running hash) and applying
//! and serving the list commands (LPUSH…) on one database.
//!
//! Every command checks the kind of each key it names first: a key of another kind answers
//! `Error(WrongType)` and nothing changes. Writes see expired keys reaped already; reads judge
//! expiry at the time they are given.

use super::deadlines::UnixMs;
use super::list_items::Items;
use super::objects::{Object, ValueKind};
use super::store::Store;
use crate::command::{Command, CommandError, Reply};

type Checked<T> = Result<T, CommandError>;

/// The indexes from `start` to `stop` inclusive by Redis's rules (negative ones count from the
/// end; the range is clamped to the list), or `None` if it holds none.
pub(crate) fn index_range(len: usize, start: i64, stop: i64) -> Option<(usize, usize)> {
    let len = i64::try_from(len).expect("a length fits in i64");
    let start = if start < 0 {
        (len + start).max(0)
    } else {
        start
    };
    let stop = if stop < 0 {
        len + stop
    } else {
        stop.min(len - 1)
    };
    if start > stop || start >= len {
        return None;
    }
    assert!(0 <= start && stop < len, "the range lies inside the list");
    Some((start as usize, stop as usize))
}

/// The index `index` names (negative from the end), if it is inside a list of `len`.
fn index_of(len: usize, index: i64) -> Option<usize> {
    let len = i64::try_from(len).expect("a length fits in i64");
    let at = if index < 0 { len + index } else { index };
    (0..len).contains(&at).then_some(at as usize)
}

/// The list at `key` (`None` if absent or expired at `now_ms`), or `WrongType`.
fn list_at<'a>(store: &'a Store, key: &[u8], now_ms: UnixMs) -> Checked<Option<&'a Items>> {
    match (store.live_kind(key, now_ms), store.object(key)) {
        (None, _) => Ok(None),
        (Some(ValueKind::List), Some(Object::List(items))) => Ok(Some(items)),
        _ => Err(CommandError::WrongType),
    }
}

/// Elements of the list at `key` (0 if absent), or `WrongType` (LLEN).
pub(super) fn list_len(store: &Store, key: &[u8], now_ms: UnixMs) -> Checked<usize> {
    list_at(store, key, now_ms).map(|list| list.map_or(0, Items::len))
}

/// Length of the list at `key` as a write sees it (0 if absent or of another kind).
fn len_now(store: &Store, key: &[u8]) -> usize {
    list_len(store, key, UnixMs::MIN).unwrap_or(0)
}

/// Changes the list at `key`, created empty if absent (and dropped again if left empty).
fn change_list<R>(
    store: &mut Store,
    key: &[u8],
    change: impl FnOnce(&mut Items) -> R,
) -> Checked<R> {
    if list_at(store, key, UnixMs::MIN)?.is_none() {
        let mut items = Items::default();
        let result = change(&mut items);
        if items.len() > 0 {
            store.insert_object(key.to_vec(), Object::List(items));
        }
        return Ok(result);
    }
    Ok(store.update_object(key, |object| match object {
        Object::List(items) => change(items),
        _ => unreachable!("checked: a list"),
    }))
}

fn int_from(count: usize) -> i64 {
    i64::try_from(count).expect("a count fits in i64")
}

/// Serves a list read, or `None` if `command` is none.
pub(super) fn read(store: &Store, command: &Command, now_ms: UnixMs) -> Option<Reply> {
    let reply = match command {
        Command::ListRange { key, start, stop } => list_at(store, key, now_ms).map(|list| {
            let items = list.and_then(|l| {
                let (start, stop) = index_range(l.len(), *start, *stop)?;
                Some(l.range(start, stop).cloned().collect())
            });
            Reply::Keys(items.unwrap_or_default())
        }),
        _ => return None,
    };
    Some(reply.unwrap_or_else(Reply::Error))
}

/// Applies a list write, or `None` if `command` is none.
pub(super) fn apply(store: &mut Store, command: &Command) -> Option<Reply> {
    let reply = match command {
        Command::ListPush {
            key,
            values,
            left,
            if_exists,
        } => push(store, key, values, *left, *if_exists),
        Command::ListPop { keys, left, count } => pop(store, keys, *left, *count),
        Command::ListSet { key, index, value } => set(store, key, *index, value),
        Command::ListInsert {
            key,
            before,
            pivot,
            value,
        } => insert(store, key, *before, (pivot, value)),
        Command::ListRemove { key, count, value } => remove(store, key, *count, value),
        Command::ListTrim { key, start, stop } => trim(store, key, *start, *stop),
        Command::ListMove {
            from,
            to,
            from_left,
            to_left,
        } => move_item(store, (from, to), (*from_left, *to_left)),
        _ => return None,
    };
    Some(reply.unwrap_or_else(Reply::Error))
}

fn push(
    store: &mut Store,
    key: &[u8],
    values: &[Vec<u8>],
    left: bool,
    if_exists: bool,
) -> Checked<Reply> {
    if list_at(store, key, UnixMs::MIN)?.is_none() && if_exists {
        return Ok(Reply::Int(0));
    }
    let len_before = len_now(store, key);
    let len = change_list(store, key, |items| {
        values.iter().for_each(|v| items.push(left, v.clone()));
        items.len()
    })?;
    assert_eq!(
        len,
        len_before + values.len(),
        "LPUSH grows by what it pushed"
    );
    assert_eq!(len_now(store, key), len, "the pushed list is stored");
    Ok(Reply::Int(int_from(len)))
}

/// Pops from the first of `keys` holding a list.
fn pop(store: &mut Store, keys: &[Vec<u8>], left: bool, count: Option<u64>) -> Checked<Reply> {
    for key in keys {
        let Some(list) = list_at(store, key, UnixMs::MIN)? else {
            continue;
        };
        let len_before = list.len();
        let wanted = count.map_or(1, |c| usize::try_from(c).unwrap_or(usize::MAX));
        let wanted = wanted.min(len_before);
        let popped: Vec<Vec<u8>> = change_list(store, key, |items| {
            (0..wanted)
                .map(|_| items.pop(left).expect("counted"))
                .collect()
        })?;
        assert_eq!(
            len_now(store, key) + popped.len(),
            len_before,
            "LPOP shrinks by what it popped"
        );
        assert!(
            popped.len() < len_before || !store.exists(key),
            "an emptied list is deleted"
        );
        let reply = std::iter::once(key.clone()).chain(popped);
        return Ok(Reply::Keys(reply.collect()));
    }
    Ok(Reply::Value(None))
}

fn set(store: &mut Store, key: &[u8], index: i64, value: &[u8]) -> Checked<Reply> {
    let list = list_at(store, key, UnixMs::MIN)?.ok_or(CommandError::NoSuchKey)?;
    let (len, at) = (list.len(), index_of(list.len(), index));
    let at = at.ok_or(CommandError::IndexOutOfRange)?;
    change_list(store, key, |items| items.set(at, value.to_vec()))?;
    assert_eq!(len_now(store, key), len, "LSET keeps the length");
    Ok(Reply::Ok)
}

fn insert(
    store: &mut Store,
    key: &[u8],
    before: bool,
    (pivot, value): (&[u8], &[u8]),
) -> Checked<Reply> {
    let Some(list) = list_at(store, key, UnixMs::MIN)? else {
        return Ok(Reply::Int(0));
    };
    let Some(found) = list.iter().position(|item| item == pivot) else {
        return Ok(Reply::Int(-1));
    };
    let (len_before, at) = (list.len(), found + usize::from(!before));
    assert!(
        at <= len_before,
        "LINSERT's place is inside the list or at its end"
    );
    let mut rest: Vec<Vec<u8>> = list.range(at, list.len() - 1).cloned().collect();
    rest.insert(0, value.to_vec());
    let len = change_list(store, key, |items| {
        items.replace_tail(at, rest);
        items.len()
    })?;
    assert_eq!(len, len_before + 1, "LINSERT adds one element");
    Ok(Reply::Int(int_from(len)))
}

fn remove(store: &mut Store, key: &[u8], count: i64, value: &[u8]) -> Checked<Reply> {
    let Some(list) = list_at(store, key, UnixMs::MIN)? else {
        return Ok(Reply::Int(0));
    };
    let limit = match count {
        0 => usize::MAX,
        _ => usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX),
    };
    let mut matches: Vec<usize> = (list.iter().enumerate())
        .filter(|(_, item)| item.as_slice() == value)
        .map(|(i, _)| i)
        .collect();
    if count < 0 {
        matches.reverse();
    }
    matches.truncate(limit);
    assert!(matches.len() <= limit, "LREM removes at most |count|");
    matches.sort_unstable();
    let Some(&first) = matches.first() else {
        return Ok(Reply::Int(0));
    };
    let len_before = list.len();
    let rest: Vec<Vec<u8>> = (list.range(first, list.len() - 1).enumerate())
        .filter(|(i, _)| matches.binary_search(&(first + i)).is_err())
        .map(|(_, item)| item.clone())
        .collect();
    change_list(store, key, |items| items.replace_tail(first, rest))?;
    assert_eq!(
        len_now(store, key) + matches.len(),
        len_before,
        "LREM shrinks by what it removed"
    );
    Ok(Reply::Int(int_from(matches.len())))
}

fn trim(store: &mut Store, key: &[u8], start: i64, stop: i64) -> Checked<Reply> {
    let Some(list) = list_at(store, key, UnixMs::MIN)? else {
        return Ok(Reply::Ok);
    };
    let len = list.len();
    let (from_head, from_tail) = match index_range(len, start, stop) {
        Some((start, stop)) => (start, len - 1 - stop),
        None => (len, 0),
    };
    assert!(
        from_head + from_tail <= len,
        "LTRIM removes at most the list"
    );
    change_list(store, key, |items| {
        (0..from_head).for_each(|_| assert!(items.pop(true).is_some()));
        (0..from_tail).for_each(|_| assert!(items.pop(false).is_some()));
    })?;
    assert_eq!(
        len_now(store, key),
        len - from_head - from_tail,
        "LTRIM keeps the range"
    );
    Ok(Reply::Ok)
}

/// LMOVE: `from`'s type is checked first, then (if it holds a list) `to`'s, as Redis does.
fn move_item(
    store: &mut Store,
    (from, to): (&[u8], &[u8]),
    (from_left, to_left): (bool, bool),
) -> Checked<Reply> {
    let Some(list) = list_at(store, from, UnixMs::MIN)? else {
        return Ok(Reply::Value(None));
    };
    let total = list.len() + len_now(store, to) * usize::from(from != to);
    list_at(store, to, UnixMs::MIN)?;
    let moved = match from == to {
        // The same list: rotated in place, so the key (and its deadline) stays.
        true => change_list(store, from, |items| {
            let item = items.pop(from_left).expect("a list is never empty");
            items.push(to_left, item.clone());
            item
        })?,
        false => {
            let item = change_list(store, from, |items| items.pop(from_left))?;
            let item = item.expect("a list is never empty");
            change_list(store, to, |items| items.push(to_left, item.clone()))?;
            item
        }
    };
    let total_after = len_now(store, from) + len_now(store, to) * usize::from(from != to);
    assert_eq!(total_after, total, "LMOVE keeps every element");
    assert!(
        len_now(store, to) > 0,
        "LMOVE leaves a list at its destination"
    );
    Ok(Reply::Value(Some(moved)))
}
