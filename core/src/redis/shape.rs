//! How store replies are shown to a Redis client: [`Shape`] says how, [`Resp`] is what a client
//! reads (plain data; the node writes it as RESP2 or RESP3, a script turns it into Lua values).

use crate::bits::{self, RangeUnit};
use crate::kv::glob::glob_match;
use crate::redis::args::NOT_AN_INTEGER;
use crate::{CommandError, Reply};

/// How a store reply is shown to a Redis client.
#[derive(Clone, Debug, PartialEq, Eq)]
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
    /// The bit at `offset` of the value (GETBIT).
    GetBit { offset: u64 },
    /// The set bits of the value in the range (BITCOUNT).
    BitCount {
        range: Option<(i64, i64, RangeUnit)>,
    },
    /// The first `bit` in the range, or -1 (BITPOS).
    BitPos {
        bit: bool,
        range: Option<(i64, i64, RangeUnit)>,
        end_given: bool,
    },
    /// The longest common subsequence of the two values a `MultiGet` read (LCS).
    Lcs(LcsOptions),
    /// What OBJECT tells of the value.
    Object(ObjectField),
    /// A hash or set read (see `collections`).
    Collection(CollectionShape),
    /// A sorted-set reply (see `zsets`).
    Zset(ZsetShape),

    /// A list command's reply (see `lists`).
    List(ListShape),
}

/// LCS's options.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LcsOptions {
    pub len: bool,
    pub idx: bool,
    pub min_match_len: u64,
    pub with_match_len: bool,
}

/// OBJECT's subcommands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectField {
    Encoding,
    RefCount,
    IdleTime,
    Freq,
    Help,
}

impl Shape {
    /// The shape with `seed` for a draw it makes (SRANDMEMBER, HRANDFIELD), as the node gives
    /// a client's call; any other shape as it is.
    pub fn seeded(self, seed: u64) -> Shape {
        match self {
            Shape::Collection(CollectionShape::Random {
                count, with_values, ..
            }) => Shape::Collection(CollectionShape::Random {
                count,
                with_values,
                seed,
            }),
            other => other,
        }
    }

    /// How long a client's blocking list command waits for a list to pop from, in
    /// milliseconds (0: forever); `None` for every other command.
    pub fn block_ms(&self) -> Option<u64> {
        match self {
            Shape::List(list) => list.block_ms,
            _ => None,
        }
    }
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
    /// A double as Redis 7.0 prints it (`%.17g`, `inf`, `-inf`): `,text` in RESP3, a bulk in
    /// RESP2 and to scripts.
    Double(Vec<u8>),
    /// An array of pairs: each pair an array of two in RESP3, flattened into one array in
    /// RESP2 and to scripts (ZRANGE … WITHSCORES).
    Pairs(Vec<(Resp, Resp)>),
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
    if let (Shape::Collection(shape), [reply]) = (&shape, replies) {
        return show_collection(reply, shape);
    }
    if let (Shape::Zset(shape), [reply]) = (&shape, replies) {
        return show_zset(reply, shape);
    }
    if let (Shape::List(shape), [reply]) = (&shape, replies) {
        return show_list(reply, shape);
    }
    if let (Shape::Lcs(options), [Reply::Values(values)]) = (&shape, replies) {
        return show_lcs(values, *options);
    }
    match replies {
        [reply @ (Reply::Value(_) | Reply::Ok | Reply::Described { .. })]
            if shape != Shape::Plain && shape != Shape::Array =>
        {
            show_shaped(reply, shape)
        }
        [reply] if shape != Shape::Array => show(reply),
        _ => {
            let item = match shape {
                Shape::Array => show_mget_item,
                _ => show,
            };
            let items: Vec<Resp> = replies.iter().map(item).collect();
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
    if let Reply::Described {
        kind,
        encoding,
        refcount,
        ..
    } = reply
    {
        return show_described(shape, kind.name(), encoding, *refcount);
    }
    match (shape.clone(), value) {
        (Shape::Type, Some(_)) => Resp::Simple("string".into()),
        (Shape::Type, None) => Resp::Simple("none".into()),
        (Shape::Ttl, Some(_)) => Resp::Int(-1),
        (Shape::Ttl, None) => Resp::Int(-2),
        (Shape::SetNx, _) => Resp::Int(i64::from(*reply == Reply::Ok)),
        (Shape::Strlen, value) => Resp::Int(value.map_or(0, <[u8]>::len) as i64),
        (Shape::Range { start, end }, value) => {
            Resp::bulk(value_range(value.unwrap_or_default(), start, end))
        }
        (Shape::GetBit { offset }, value) => {
            Resp::Int(i64::from(bits::get_bit(value.unwrap_or_default(), offset)))
        }
        (Shape::BitCount { range }, value) => {
            Resp::Int(bits::bit_count(value.unwrap_or_default(), range))
        }
        (Shape::BitPos { bit, .. }, None) => Resp::Int(if bit { -1 } else { 0 }),
        (
            Shape::BitPos {
                bit,
                range,
                end_given,
            },
            Some(value),
        ) => Resp::Int(bits::bit_pos(value, bit, range, end_given)),
        (Shape::Object(ObjectField::Help), _) => object_help(),
        (Shape::Object(_), _) => Resp::Bulk(None),
        (
            Shape::Plain
            | Shape::Array
            | Shape::Exists
            | Shape::Lcs(_)
            | Shape::Collection(_)
            | Shape::Zset(_)
            | Shape::List(_),
            _,
        ) => {
            unreachable!("not a shape of one value: {shape:?}")
        }
    }
}

/// One key of an MGET read key by key (`READONLY`): a key holding a hash or a set reads as
/// nil, as MGET answers it.
fn show_mget_item(reply: &Reply) -> Resp {
    match reply {
        Reply::Error(CommandError::WrongType) => Resp::Bulk(None),
        other => show(other),
    }
}

/// How many keys a read's reply found (EXISTS).
fn keys_found(reply: &Reply) -> i64 {
    match reply {
        // A GET of a key of another kind (read key by key under READONLY): the key exists.
        Reply::Error(CommandError::WrongType) => 1,
        Reply::Value(value) => value.is_some() as i64,
        Reply::Described { .. } => 1,
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
        Reply::Error(CommandError::WrongType) => Resp::Error(WRONG_TYPE.into()),
        Reply::Error(error) => Resp::Error(format!("ERR {error}")),
        Reply::Transaction(None) => Resp::Array(None),
        Reply::Transaction(Some(replies)) => Resp::Array(Some(replies.iter().map(show).collect())),
        Reply::Resp(resp) => resp.clone(),
        Reply::Described { kind, .. } => Resp::Simple(kind.name().into()),
        Reply::Popped { pairs, .. } => Resp::bulks(pairs.iter().flat_map(|(m, s)| [m, s])),
    }
}

/// Redis's error for a command on a key of another kind of value.
pub const WRONG_TYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

/// TYPE and OBJECT of a present key.
fn show_described(shape: Shape, kind: &str, encoding: &str, refcount: i64) -> Resp {
    match shape {
        Shape::Type => Resp::Simple(kind.into()),
        Shape::Object(ObjectField::Help) => object_help(),
        Shape::Object(ObjectField::Encoding) => Resp::bulk(encoding.as_bytes()),
        Shape::Object(ObjectField::RefCount) => Resp::Int(refcount),
        // Access times are no part of the replicated state.
        Shape::Object(ObjectField::IdleTime) => Resp::Int(0),
        Shape::Object(ObjectField::Freq) => Resp::Error(LFU_NOT_SELECTED.into()),
        _ => Resp::Error(WRONG_TYPE.into()),
    }
}

const LFU_NOT_SELECTED: &str = "ERR An LFU maxmemory policy is not selected, access frequency \
     not tracked. Please note that when switching between policies at runtime LRU and LFU data \
     will take some time to adjust.";

/// OBJECT ENCODING of a string value, by Redis's rule for a value as SET stores it: `int` for
/// a decimal `i64` of at most 20 characters written as Redis writes it, `embstr` up to 44 bytes, else `raw`. (Redis also
/// remembers how a value was made: after APPEND or SETRANGE it says `raw`; this store keeps
/// no such history.)
pub fn encoding(value: &[u8]) -> &'static str {
    // Redis stores as an integer only the canonical form (string2ll: no `+`, no leading zero).
    let canonical =
        crate::kv::parse_integer(value).is_some_and(|n| n.to_string().as_bytes() == value);
    if value.len() <= 20 && canonical {
        "int"
    } else if value.len() <= 44 {
        "embstr"
    } else {
        "raw"
    }
}

/// Redis shares the integers below this among every key (OBJECT REFCOUNT shows them so).
const SHARED_INTEGERS: i64 = 10_000;

/// OBJECT REFCOUNT of a string value.
pub fn refcount(value: &[u8]) -> i64 {
    let shared = crate::kv::parse_integer(value).is_some_and(|n| (0..SHARED_INTEGERS).contains(&n));
    match shared && encoding(value) == "int" {
        true => i64::from(i32::MAX),
        false => 1,
    }
}

fn object_help() -> Resp {
    const LINES: [&str; 15] = [
        "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "ENCODING <key>",
        "    Return the kind of internal representation used in order to store the value",
        "    associated with a <key>.",
        "FREQ <key>",
        "    Return the access frequency index of the <key>. The returned integer is",
        "    proportional to the logarithm of the recent access frequency of the key.",
        "IDLETIME <key>",
        "    Return the idle time of the <key>, that is the approximated number of",
        "    seconds elapsed since the last access to the key.",
        "REFCOUNT <key>",
        "    Return the number of references of the value associated with the specified",
        "    <key>.",
        "HELP",
        "    Prints this help.",
    ];
    Resp::Array(Some(
        LINES.iter().map(|l| Resp::Simple((*l).into())).collect(),
    ))
}

/// LCS's reply: the subsequence, its length (LEN), or its matches (IDX).
fn show_lcs(values: &[Option<Vec<u8>>], options: LcsOptions) -> Resp {
    assert_eq!(values.len(), 2, "LCS reads two keys");
    let value = |i: usize| values[i].as_deref().unwrap_or_default();
    let Some(found) = crate::strings::lcs(value(0), value(1)) else {
        return Resp::Error(
            "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len".into(),
        );
    };
    let len = found.text.len() as i64;
    if !options.idx {
        return match options.len {
            true => Resp::Int(len),
            false => Resp::Bulk(Some(found.text)),
        };
    }
    let pair =
        |(a, b): (usize, usize)| Resp::Array(Some(vec![Resp::Int(a as i64), Resp::Int(b as i64)]));
    let matches = (found.matches.iter())
        .filter(|m| m.len as u64 >= options.min_match_len)
        .map(|m| {
            assert_eq!(m.a.1 + 1 - m.a.0, m.len, "a match's ranges are its length");
            assert_eq!(m.b.1 + 1 - m.b.0, m.len, "in both strings");
            let mut item = vec![pair(m.a), pair(m.b)];
            if options.with_match_len {
                item.push(Resp::Int(m.len as i64));
            }
            Resp::Array(Some(item))
        })
        .collect();
    Resp::Array(Some(vec![
        Resp::bulk(b"matches"),
        Resp::Array(Some(matches)),
        Resp::bulk(b"len"),
        Resp::Int(len),
    ]))
}

/// How a hash or set read's reply is shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CollectionShape {
    /// `Int` as +OK (HMSET).
    Ok,
    /// The first of `Values` as a bulk (HGET).
    First,
    /// The first of `Values` as 1 if present, else 0 (HEXISTS, SISMEMBER).
    Found,
    /// Each of `Values` as 1 if present, else 0 (SMISMEMBER).
    FoundEach,
    /// The length of the first of `Values`, 0 if absent (HSTRLEN).
    Length,
    /// The fields of `KeyValues` (HKEYS).
    Fields,
    /// The values of `KeyValues` (HVALS).
    Values,
    /// One step of HSCAN or SSCAN: every element matching `pattern` at once, cursor 0 (as
    /// Redis does for a small value; here for every value).
    Scan { pattern: Option<Vec<u8>> },
    /// SRANDMEMBER and HRANDFIELD: `count` elements (none given: one, or nil), distinct from
    /// the one at `seed` on (wrapping) when `count` is positive, each drawn from `seed` when it
    /// is negative. A client's call gets a seed drawn where it is parsed ([`Shape::seeded`]); a
    /// script's keeps 0, so its reply is the same on every replica.
    Random {
        count: Option<i64>,
        with_values: bool,
        seed: u64,
    },
    /// The size of `Keys`, at most `limit` unless it is 0 (SINTERCARD).
    Count { limit: u64 },
}

/// A hash or set read's reply as `shape` shows it (an error as itself).
pub fn show_collection(reply: &Reply, shape: &CollectionShape) -> Resp {
    let bulk = |b: &Vec<u8>| Resp::Bulk(Some(b.clone()));
    let array = |items: Vec<Resp>| Resp::Array(Some(items));
    match (shape, reply) {
        (CollectionShape::Ok, Reply::Int(_)) => Resp::Simple("OK".into()),
        (CollectionShape::First, Reply::Values(values)) => Resp::Bulk(values[0].clone()),
        (CollectionShape::Found, Reply::Values(values)) => Resp::Int(values[0].is_some() as i64),
        (CollectionShape::FoundEach, Reply::Values(values)) => array(
            values
                .iter()
                .map(|v| Resp::Int(v.is_some() as i64))
                .collect(),
        ),
        (CollectionShape::Length, Reply::Values(values)) => {
            Resp::Int(values[0].as_ref().map_or(0, Vec::len) as i64)
        }
        (CollectionShape::Fields, Reply::KeyValues(pairs)) => {
            array(pairs.iter().map(|(f, _)| bulk(f)).collect())
        }
        (CollectionShape::Values, Reply::KeyValues(pairs)) => {
            array(pairs.iter().map(|(_, v)| bulk(v)).collect())
        }
        (CollectionShape::Scan { pattern }, reply) => {
            let matches = |e: &Vec<u8>| pattern.as_ref().is_none_or(|p| glob_match(p, e));
            let items = match reply {
                Reply::Keys(members) => members.iter().filter(|m| matches(m)).map(bulk).collect(),
                Reply::KeyValues(pairs) => (pairs.iter())
                    .filter(|(f, _)| matches(f))
                    .flat_map(|(f, v)| [bulk(f), bulk(v)])
                    .collect(),
                other => return crate::redis::show(other),
            };
            array(vec![Resp::Bulk(Some(b"0".to_vec())), array(items)])
        }
        (
            CollectionShape::Random {
                count,
                with_values,
                seed,
            },
            reply,
        ) => show_random(reply, (*count, *with_values), *seed),
        (CollectionShape::Count { limit }, Reply::Keys(members)) => {
            let len = members.len() as u64;
            Resp::Int(if *limit == 0 { len } else { len.min(*limit) } as i64)
        }
        (_, other) => crate::redis::show(other),
    }
}

/// SplitMix64: the `i`th of a sequence of well-spread numbers from `seed`.
fn spread(seed: u64, i: u64) -> u64 {
    let mut x = seed.wrapping_add(i.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// SRANDMEMBER's and HRANDFIELD's reply (see [`CollectionShape::Random`]).
fn show_random(reply: &Reply, (count, with_values): (Option<i64>, bool), seed: u64) -> Resp {
    let elements: Vec<(&Vec<u8>, Option<&Vec<u8>>)> = match reply {
        Reply::Keys(members) => members.iter().map(|m| (m, None)).collect(),
        Reply::KeyValues(pairs) => pairs.iter().map(|(f, v)| (f, Some(v))).collect(),
        other => return crate::redis::show(other),
    };
    let bulk = |b: &Vec<u8>| Resp::Bulk(Some(b.clone()));
    let len = elements.len() as u64;
    let start = match len {
        0 => 0,
        _ => (seed % len) as usize,
    };
    assert!(
        start < elements.len() || elements.is_empty(),
        "the start is an element"
    );
    let Some(count) = count else {
        return Resp::Bulk(elements.get(start).map(|(e, _)| (*e).clone()));
    };
    let wanted = count.unsigned_abs() as usize;
    let taken: Vec<_> = match count >= 0 {
        true => (elements.iter().cycle().skip(start))
            .take(wanted.min(elements.len()))
            .collect(),
        false if elements.is_empty() => vec![],
        false => (0..wanted as u64)
            .map(|i| &elements[(spread(seed, i) % len) as usize])
            .collect(),
    };
    assert!(
        taken.len() <= wanted,
        "SRANDMEMBER answers at most |count| elements"
    );
    assert!(
        count < 0 || taken.len() == wanted.min(elements.len()),
        "distinct, as many as can be"
    );
    assert!(
        count >= 0 || elements.is_empty() || taken.len() == wanted,
        "repeats allowed"
    );
    let items = taken.into_iter().flat_map(|(e, v)| {
        let value = v.filter(|_| with_values).map(bulk);
        std::iter::once(bulk(e)).chain(value)
    });
    Resp::Array(Some(items.collect()))
}

/// How a sorted-set reply is shown (a score as a RESP3 double, a bulk in RESP2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ZsetShape {
    /// The members of `KeyValues`; `with_scores`, pairs of member and score (ZRANGE…).
    Members { with_scores: bool },
    /// How many `KeyValues`, at most `limit` unless it is 0 (ZCOUNT, ZLEXCOUNT, ZINTERCARD).
    Count { limit: u64 },
    /// The first of `Values`, or `Value`, as a score or nil (ZSCORE, ZINCRBY, ZADD INCR).
    Score,
    /// Each of `Values` as a score or nil (ZMSCORE).
    Scores,
    /// `Popped` as member, score (ZPOPMIN, ZPOPMAX), or pairs of them if `counted`.
    Pop { counted: bool },
    /// `Popped` as key, member, score, or a null array (BZPOPMIN, BZPOPMAX).
    BlockingPop,
    /// `Popped` as key and an array of (member, score) pairs, or a null array (ZMPOP, BZMPOP).
    MultiPop,
}

/// A sorted-set reply as `shape` shows it (an error as itself).
pub fn show_zset(reply: &Reply, shape: &ZsetShape) -> Resp {
    let bulk = |b: &Vec<u8>| Resp::Bulk(Some(b.clone()));
    let double = |s: &Vec<u8>| Resp::Double(s.clone());
    let score = |s: &Option<Vec<u8>>| s.as_ref().map_or(Resp::Bulk(None), double);
    let array = |items: Vec<Resp>| Resp::Array(Some(items));
    let pairs = |pairs: &[(Vec<u8>, Vec<u8>)]| {
        Resp::Pairs(pairs.iter().map(|(m, s)| (bulk(m), double(s))).collect())
    };
    match (shape, reply) {
        (ZsetShape::Members { with_scores: true }, Reply::KeyValues(scored)) => pairs(scored),
        (ZsetShape::Members { with_scores: false }, Reply::KeyValues(scored)) => {
            array(scored.iter().map(|(m, _)| bulk(m)).collect())
        }
        (ZsetShape::Count { limit }, Reply::KeyValues(scored)) => {
            let len = scored.len() as u64;
            Resp::Int(if *limit == 0 { len } else { len.min(*limit) } as i64)
        }
        (ZsetShape::Score, Reply::Values(values)) => score(&values[0]),
        (ZsetShape::Score, Reply::Value(value)) => score(value),
        (ZsetShape::Scores, Reply::Values(values)) => array(values.iter().map(score).collect()),
        (ZsetShape::Pop { counted: true }, Reply::Popped { pairs: popped, .. }) => pairs(popped),
        (ZsetShape::Pop { counted: false }, Reply::Popped { pairs: popped, .. }) => array(
            popped
                .iter()
                .flat_map(|(m, s)| [bulk(m), double(s)])
                .collect(),
        ),
        (ZsetShape::BlockingPop, Reply::Popped { key: None, .. })
        | (ZsetShape::MultiPop, Reply::Popped { key: None, .. }) => Resp::Array(None),
        (
            ZsetShape::BlockingPop,
            Reply::Popped {
                key: Some(key),
                pairs: popped,
            },
        ) => {
            assert_eq!(popped.len(), 1, "BZPOPMIN pops one member");
            let (member, s) = &popped[0];
            array(vec![bulk(key), bulk(member), double(s)])
        }
        (
            ZsetShape::MultiPop,
            Reply::Popped {
                key: Some(key),
                pairs: popped,
            },
        ) => {
            let pair = |(m, s): &(Vec<u8>, Vec<u8>)| array(vec![bulk(m), double(s)]);
            array(vec![bulk(key), array(popped.iter().map(pair).collect())])
        }
        (_, other) => crate::redis::show(other),
    }
}

/// How a list reply is shown, and how long a client's call waits for a list to pop from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListShape {
    pub reply: ListReply,
    /// A blocking command's timeout in milliseconds (0: forever).
    pub block_ms: Option<u64>,
}

/// How a list reply is shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListReply {
    /// As it is (LMOVE's moved element, LPUSH's length…).
    Plain,
    /// LPOP and RPOP: the one element popped (`counted`: an array of them; nil if absent).
    Popped { counted: bool },
    /// BLPOP and BRPOP: the key and its element (nil array if none).
    KeyAndElement,
    /// LMPOP and BLMPOP: the key and an array of its elements (nil array if none).
    KeyAndElements,
    /// LINDEX: the element of a one-element range, or nil.
    Element,
    /// LPOS over the whole list.
    Position(Lpos),
}

/// LPOS's options: the `rank`th match on (from the tail if negative), `count` matches (0: all;
/// none: one, shown alone), among the first `maxlen` elements compared (0: all).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lpos {
    pub element: Vec<u8>,
    pub rank: i64,
    pub count: Option<u64>,
    pub maxlen: u64,
}

/// A list reply as `shape` shows it (an error as itself).
pub fn show_list(reply: &Reply, shape: &ListShape) -> Resp {
    let bulk = |b: &Vec<u8>| Resp::Bulk(Some(b.clone()));
    let array = |items: Vec<Resp>| Resp::Array(Some(items));
    match (&shape.reply, reply) {
        (ListReply::Popped { counted: false }, Reply::Keys(popped)) => {
            Resp::Bulk(popped.get(1).cloned())
        }
        (ListReply::Popped { counted: true }, Reply::Keys(popped)) => {
            array(popped[1..].iter().map(bulk).collect())
        }
        (ListReply::KeyAndElement, Reply::Keys(popped)) => {
            assert_eq!(popped.len(), 2, "BLPOP pops one element");
            array(popped.iter().map(bulk).collect())
        }
        (ListReply::KeyAndElements, Reply::Keys(popped)) => {
            let elements = array(popped[1..].iter().map(bulk).collect());
            array(vec![bulk(&popped[0]), elements])
        }
        (ListReply::Popped { counted: false }, Reply::Value(None)) => Resp::Bulk(None),
        (
            ListReply::Popped { .. } | ListReply::KeyAndElement | ListReply::KeyAndElements,
            Reply::Value(None),
        ) => Resp::Array(None),
        (ListReply::Element, Reply::Keys(items)) => Resp::Bulk(items.first().cloned()),
        (ListReply::Position(lpos), Reply::Keys(items)) => show_lpos(items, lpos),
        (_, other) => crate::redis::show(other),
    }
}

/// LPOS's reply: the indexes of the matches of `element` in `items`.
fn show_lpos(items: &[Vec<u8>], lpos: &Lpos) -> Resp {
    let compared = match lpos.maxlen {
        0 => items.len(),
        n => usize::try_from(n).unwrap_or(usize::MAX).min(items.len()),
    };
    let indexes: Box<dyn Iterator<Item = usize>> = match lpos.rank > 0 {
        true => Box::new(0..compared),
        false => Box::new((items.len() - compared..items.len()).rev()),
    };
    assert!(compared <= items.len(), "MAXLEN compares at most the list");
    let skip = usize::try_from(lpos.rank.unsigned_abs() - 1).unwrap_or(usize::MAX);
    let wanted = match lpos.count {
        None => 1,
        Some(0) => usize::MAX,
        Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
    };
    let found: Vec<Resp> = indexes
        .filter(|&i| items[i] == lpos.element)
        .skip(skip)
        .take(wanted)
        .map(|i| Resp::Int(i as i64))
        .collect();
    assert!(found.len() <= wanted, "LPOS answers at most COUNT matches");
    match lpos.count {
        None => found.into_iter().next().unwrap_or(Resp::Bulk(None)),
        Some(_) => Resp::Array(Some(found)),
    }
}
