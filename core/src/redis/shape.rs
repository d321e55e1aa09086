//! How store replies are shown to a Redis client: [`Shape`] says how, [`Resp`] is what a client
//! reads (plain data; the node writes it as RESP2 or RESP3, a script turns it into Lua values).

use crate::redis::args::NOT_AN_INTEGER;
use crate::{CommandError, Reply};

/// How a store reply is shown to a Redis client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// The natural mapping: Ok → +OK, Value → bulk or null, Bool and Int → integer, lists → arrays.
    Plain,
    /// `Value(Some)` counts 1, `Value(None)` 0 (EXISTS).
    Exists,
    /// An array even of one reply (MGET after READONLY, one read per key).
    Array,
    /// `Value(Some)` is `string`, `Value(None)` is `none` (TYPE).
    Type,
    /// `Value(Some)` is -1 (no expiry: keys never expire), `Value(None)` is -2 (TTL, PTTL).
    Ttl,
    /// `Ok` counts 1, `Value(None)` 0 (SETNX).
    SetNx,
    /// The value's length, 0 for none (STRLEN).
    Strlen,
    /// The bytes of the value from `start` to `end`, inclusive, counted from the end when
    /// negative, as Redis does (GETRANGE, SUBSTR).
    Range { start: i64, end: i64 },
}

/// A reply as a Redis client reads it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Resp {
    Simple(String),
    Error(String),
    Int(i64),
    /// A bulk string, or the null bulk.
    Bulk(Option<Vec<u8>>),
    /// An array, or the null array (EXEC when a watched key changed).
    Array(Option<Vec<Resp>>),
}

impl Resp {
    fn bulk(bytes: &[u8]) -> Resp {
        Resp::Bulk(Some(bytes.to_vec()))
    }

    fn bulks<'a>(items: impl Iterator<Item = &'a Vec<u8>>) -> Resp {
        Resp::Array(Some(items.map(|item| Resp::bulk(item)).collect()))
    }
}

/// The replies of one call's store commands, shown as `shape` says: one reply as itself,
/// several (or [`Shape::Array`]) as an array, EXISTS as the count of keys found.
pub fn show_replies(replies: &[Reply], shape: Shape) -> Resp {
    assert!(!replies.is_empty(), "a call has at least one store command");
    if shape == Shape::Exists {
        return Resp::Int(replies.iter().map(keys_found).sum());
    }
    match replies {
        [reply @ (Reply::Value(_) | Reply::Ok)]
            if shape != Shape::Plain && shape != Shape::Array =>
        {
            show_shaped(reply, shape)
        }
        [reply] if shape != Shape::Array => show(reply),
        _ => {
            let items: Vec<Resp> = replies.iter().map(show).collect();
            assert_eq!(items.len(), replies.len(), "one item per reply");
            Resp::Array(Some(items))
        }
    }
}

/// A single reply of one of the shapes that change how a value is shown.
fn show_shaped(reply: &Reply, shape: Shape) -> Resp {
    assert!(
        !matches!(shape, Shape::Plain | Shape::Array | Shape::Exists),
        "{shape:?} is not a shaped reply"
    );
    let value = match reply {
        Reply::Value(value) => value.as_deref(),
        _ => None,
    };
    match (shape, value) {
        (Shape::Type, Some(_)) => Resp::Simple("string".into()),
        (Shape::Type, None) => Resp::Simple("none".into()),
        (Shape::Ttl, Some(_)) => Resp::Int(-1),
        (Shape::Ttl, None) => Resp::Int(-2),
        (Shape::SetNx, _) => Resp::Int(i64::from(*reply == Reply::Ok)),
        (Shape::Strlen, value) => Resp::Int(value.map_or(0, <[u8]>::len) as i64),
        (Shape::Range { start, end }, value) => {
            Resp::bulk(value_range(value.unwrap_or_default(), start, end))
        }
        (Shape::Plain | Shape::Array | Shape::Exists, _) => unreachable!("asserted above"),
    }
}

/// How many keys a read's reply found (EXISTS).
fn keys_found(reply: &Reply) -> i64 {
    match reply {
        Reply::Value(value) => value.is_some() as i64,
        Reply::Values(values) => values.iter().flatten().count() as i64,
        _ => 0,
    }
}

/// `value[start..=end]` with Redis's rules for negative and out-of-range indexes.
pub fn value_range(value: &[u8], start: i64, end: i64) -> &[u8] {
    let len = value.len() as i64;
    if start < 0 && end < 0 && start > end {
        return &[];
    }
    let from_end = |i: i64| if i < 0 { (len + i).max(0) } else { i };
    let (start, end) = (from_end(start), from_end(end).min(len - 1));
    if len == 0 || start > end {
        return &[];
    }
    assert!(0 <= start && end < len, "the range lies inside the value");
    &value[start as usize..=end as usize]
}

/// One reply as itself (each command of a transaction, shown plainly).
pub fn show(reply: &Reply) -> Resp {
    match reply {
        Reply::Ok | Reply::Watched { .. } => Resp::Simple("OK".into()),
        Reply::Value(value) => Resp::Bulk(value.clone()),
        Reply::Bool(b) => Resp::Int(*b as i64),
        Reply::Int(n) => Resp::Int(*n),
        Reply::Keys(keys) => Resp::bulks(keys.iter()),
        Reply::Values(values) => {
            Resp::Array(Some(values.iter().map(|v| Resp::Bulk(v.clone())).collect()))
        }
        Reply::KeyValues(pairs) => Resp::bulks(pairs.iter().flat_map(|(k, v)| [k, v])),
        Reply::Scan { cursor, keys } => Resp::Array(Some(vec![
            Resp::bulk(cursor.to_string().as_bytes()),
            Resp::bulks(keys.iter()),
        ])),
        Reply::Error(CommandError::NotAnInteger) => Resp::Error(NOT_AN_INTEGER.into()),
        Reply::Error(error) => Resp::Error(format!("ERR {error}")),
        Reply::Transaction(None) => Resp::Array(None),
        Reply::Transaction(Some(replies)) => Resp::Array(Some(replies.iter().map(show).collect())),
        Reply::Resp(resp) => resp.clone(),
    }
}
