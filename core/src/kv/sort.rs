//! SORT and SORT_RO of a list or a set, as Redis 7.0 does them: by the elements (as numbers, or
//! with ALPHA as bytes) or by the keys a BY pattern names, DESC, LIMIT, GET patterns, STORE.
//!
//! Deterministic on every replica: numbers that tie are ordered by the elements' bytes (as
//! Redis does); ALPHA ties keep the elements' order. A set's members sorted by nothing (BY a
//! pattern without `*`) come in byte order, as Redis answers scripts and STORE.

use std::cmp::Ordering;

use super::deadlines::UnixMs;
use super::objects::{Items, Object, ValueKind};
use super::store::{Entry, Store};
use crate::command::{Command, CommandError, Reply, SortSpec};

type Checked<T> = Result<T, CommandError>;

/// Redis's error for an element (or BY value) that is no number when sorting numerically.
const NOT_A_DOUBLE: &str = "One or more scores can't be converted into double";

/// Serves SORT without STORE, or `None` if `command` is not one.
pub(super) fn read(store: &Store, command: &Command, now_ms: UnixMs) -> Option<Reply> {
    let Command::Sort { key, spec } = command else {
        return None;
    };
    if spec.store.is_some() {
        return None;
    }
    Some(sorted(store, key, spec, now_ms).map_or_else(Reply::Error, Reply::Values))
}

/// Applies SORT … STORE at `now_ms`, or `None` if `command` is not one.
pub(super) fn apply(store: &mut Store, command: &Command, now_ms: UnixMs) -> Option<Reply> {
    let Command::Sort { key, spec } = command else {
        return None;
    };
    let dest = spec.store.as_ref()?;
    let values = match sorted(store, key, spec, now_ms) {
        Ok(values) => values,
        Err(error) => return Some(Reply::Error(error)),
    };
    let len = values.len();
    if len == 0 {
        store.remove(dest);
    } else {
        let mut items = Items::default();
        values
            .into_iter()
            .for_each(|v| items.push(false, v.unwrap_or_default()));
        store.put_with_deadline(dest.clone(), Entry::Obj(Object::List(items)), None);
    }
    let stored = match store.object(dest) {
        Some(Object::List(items)) => items.len(),
        _ => 0,
    };
    assert_eq!(stored, len, "SORT STORE stores what it counts");
    assert!(
        len == 0 || store.kind(dest) == Some(ValueKind::List),
        "SORT STORE leaves a list"
    );
    Some(Reply::Int(i64::try_from(len).expect("a count fits in i64")))
}

/// The elements of the list or set at `key`, or `WrongType`; a set's in byte order.
fn elements(store: &Store, key: &[u8], now_ms: UnixMs) -> Checked<(Vec<Vec<u8>>, bool)> {
    match (store.live_kind(key, now_ms), store.object(key)) {
        (None, _) => Ok((vec![], false)),
        (Some(ValueKind::List), Some(Object::List(items))) => {
            Ok((items.iter().cloned().collect(), true))
        }
        (Some(ValueKind::Set), Some(Object::Set(members))) => {
            Ok((members.iter().cloned().collect(), false))
        }
        _ => Err(CommandError::WrongType),
    }
}

/// What `pattern` names for `element`: the element itself for `#`; else the string at the key
/// the pattern makes with its first `*` replaced, or the field of the hash there after `->`.
fn lookup(store: &Store, pattern: &[u8], element: &[u8], now_ms: UnixMs) -> Option<Vec<u8>> {
    if pattern == b"#" {
        return Some(element.to_vec());
    }
    let star = pattern.iter().position(|&b| b == b'*')?;
    let arrow = (pattern[star + 1..].windows(2))
        .position(|w| w == b"->")
        .map(|at| star + 1 + at)
        .filter(|&at| at + 2 < pattern.len());
    let (key_end, field) = match arrow {
        Some(at) => (at, Some(&pattern[at + 2..])),
        None => (pattern.len(), None),
    };
    let key = [&pattern[..star], element, &pattern[star + 1..key_end]].concat();
    if !store.is_live(&key, now_ms) {
        return None;
    }
    match (field, store.get(&key), store.object(&key)) {
        (None, Some(value), _) => Some(value.clone()),
        (Some(field), None, Some(Object::Hash(fields))) => fields.get(field).cloned(),
        _ => None,
    }
}

/// A number as Redis's SORT reads one (strtod of the whole text, no NaN).
fn score(value: &[u8]) -> Checked<f64> {
    let text = std::str::from_utf8(value).ok().map(str::trim_start);
    let number = text
        .and_then(|t| t.parse::<f64>().ok())
        .filter(|n| !n.is_nan());
    number.ok_or_else(|| CommandError::Sort(NOT_A_DOUBLE.into()))
}

/// The sorted elements, limited, each with its GET values (or itself without GET).
fn sorted(
    store: &Store,
    key: &[u8],
    spec: &SortSpec,
    now_ms: UnixMs,
) -> Checked<Vec<Option<Vec<u8>>>> {
    let (mut elements, is_list) = elements(store, key, now_ms)?;
    let by = spec.by.as_deref();
    let dont_sort = by.is_some_and(|p| !p.contains(&b'*'));
    let count = elements.len();
    match (dont_sort, is_list) {
        (true, true) if spec.desc => elements.reverse(),
        (true, true) => {}
        // A set sorted by nothing: in byte order, as Redis sorts it for scripts and STORE.
        (true, false) => sort_alpha(&mut elements, None, spec.desc),
        (false, _) if spec.alpha => {
            let keys: Option<Vec<Option<Vec<u8>>>> = by.map(|p| {
                elements
                    .iter()
                    .map(|e| lookup(store, p, e, now_ms))
                    .collect()
            });
            sort_alpha(&mut elements, keys, spec.desc)
        }
        (false, _) => sort_numeric(store, &mut elements, (by, spec.desc), now_ms)?,
    }
    assert_eq!(elements.len(), count, "sorting keeps every element");
    let (start, end) = limits(elements.len(), spec.limit);
    let chosen = elements.get(start..end).unwrap_or_default();
    let values: Vec<Option<Vec<u8>>> = match spec.get.is_empty() {
        true => chosen.iter().cloned().map(Some).collect(),
        false => (chosen.iter())
            .flat_map(|e| spec.get.iter().map(move |p| lookup(store, p, e, now_ms)))
            .collect(),
    };
    assert_eq!(
        values.len(),
        chosen.len() * spec.get.len().max(1),
        "one value per GET"
    );
    Ok(values)
}

/// ALPHA: by the bytes of each element's key (a missing one first) or of the element.
fn sort_alpha(elements: &mut Vec<Vec<u8>>, keys: Option<Vec<Option<Vec<u8>>>>, desc: bool) {
    let order = |o: Ordering| if desc { o.reverse() } else { o };
    match keys {
        None => elements.sort_by(|a, b| order(a.cmp(b))),
        Some(keys) => {
            let mut pairs: Vec<(Option<Vec<u8>>, Vec<u8>)> =
                keys.into_iter().zip(elements.drain(..)).collect();
            pairs.sort_by(|(a, _), (b, _)| order(a.cmp(b)));
            elements.extend(pairs.into_iter().map(|(_, e)| e));
        }
    }
}

/// By number: each element's, or its BY key's (0 if missing); ties by the element's bytes.
fn sort_numeric(
    store: &Store,
    elements: &mut Vec<Vec<u8>>,
    (by, desc): (Option<&[u8]>, bool),
    now_ms: UnixMs,
) -> Checked<()> {
    let mut scored = Vec::with_capacity(elements.len());
    for element in elements.drain(..) {
        let value = match by {
            Some(pattern) => lookup(store, pattern, &element, now_ms),
            None => Some(element.clone()),
        };
        let score = value.map_or(Ok(0.0), |v| score(&v))?;
        scored.push((score, element));
    }
    scored.sort_by(|(a, x), (b, y)| {
        let order = a.partial_cmp(b).expect("no NaN").then_with(|| x.cmp(y));
        if desc {
            order.reverse()
        } else {
            order
        }
    });
    elements.extend(scored.into_iter().map(|(_, e)| e));
    Ok(())
}

/// The slice LIMIT offset count chooses of `len` sorted elements, as Redis computes it.
fn limits(len: usize, limit: Option<(i64, i64)>) -> (usize, usize) {
    let Some((offset, count)) = limit else {
        return (0, len);
    };
    let len_i = i64::try_from(len).expect("a length fits in i64");
    let start = offset.max(0);
    let end = match count < 0 {
        true => len_i,
        false => start.saturating_add(count).min(len_i),
    };
    let start = start.min(len_i);
    let end = end.max(start);
    assert!(
        start <= end && end <= len_i,
        "LIMIT lies inside the elements"
    );
    (start as usize, end as usize)
}
