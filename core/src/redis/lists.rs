//! Parsing Redis 7.0's list commands into store commands, and showing their replies.
//!
//! The blocking ones (BLPOP, BRPOP, BRPOPLPUSH, BLMOVE, BLMPOP) parse to the same store command
//! as their non-blocking kin; their shape carries the timeout, so a client's connection can wait
//! for a list (see [`ListShape::block_ms`]) while a transaction or a script runs them once.

use crate::redis::args::{parse_i64, text, NOT_AN_INTEGER, SYNTAX_ERROR};
use crate::redis::shape::{ListReply, ListShape, Lpos, Shape};
use crate::{Command, SortSpec};

/// The list commands of the table.
pub const LIST_COMMANDS: [&str; 24] = [
    "LPUSH",
    "RPUSH",
    "LPUSHX",
    "RPUSHX",
    "LPOP",
    "RPOP",
    "LLEN",
    "LRANGE",
    "LINDEX",
    "LSET",
    "LINSERT",
    "LREM",
    "LTRIM",
    "RPOPLPUSH",
    "LMOVE",
    "LPOS",
    "LMPOP",
    "BLPOP",
    "BRPOP",
    "BRPOPLPUSH",
    "BLMOVE",
    "BLMPOP",
    "SORT",
    "SORT_RO",
];

/// Whether `name` (upper case) is a list command.
pub fn is_list_command(name: &str) -> bool {
    LIST_COMMANDS.contains(&name)
}

type Parsed = Result<(Command, Shape), String>;

fn shaped(command: Command, reply: ListReply, block_ms: Option<u64>) -> Parsed {
    Ok((command, Shape::List(ListShape { reply, block_ms })))
}

fn plain(command: Command) -> Parsed {
    shaped(command, ListReply::Plain, None)
}

fn integer(arg: &[u8]) -> Result<i64, String> {
    parse_i64(arg).ok_or_else(|| NOT_AN_INTEGER.to_string())
}

/// `LEFT` or `RIGHT`: whether it is the head.
fn side(arg: &[u8]) -> Result<bool, String> {
    match text(arg).as_str() {
        "LEFT" => Ok(true),
        "RIGHT" => Ok(false),
        _ => Err(SYNTAX_ERROR.into()),
    }
}

/// A blocking command's timeout in seconds (a float) as milliseconds, with Redis's errors.
fn timeout_ms(arg: &[u8]) -> Result<u64, String> {
    let seconds = std::str::from_utf8(arg)
        .ok()
        .filter(|s| !s.is_empty() && !s.contains(char::is_whitespace))
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| !s.is_nan());
    let seconds =
        seconds.ok_or_else(|| "ERR timeout is not a float or out of range".to_string())?;
    let ms = seconds * 1000.0;
    if !(0.0..9.2e18).contains(&ms) {
        return Err("ERR timeout is negative".into());
    }
    Ok(ms.ceil() as u64)
}

/// Parses the list command `name` (upper case) of the table's arity.
pub fn parse_list_command(name: &str, args: &[Vec<u8>]) -> Parsed {
    let key = || args[1].clone();
    match name {
        "LPUSH" | "RPUSH" | "LPUSHX" | "RPUSHX" => plain(Command::ListPush {
            key: key(),
            values: args[2..].to_vec(),
            left: name.starts_with('L'),
            if_exists: name.ends_with('X'),
        }),
        "LPOP" | "RPOP" => parse_pop(name, args),
        "LLEN" => plain(Command::Cardinality {
            key: key(),
            kind: crate::kv::ValueKind::List,
        }),
        "LRANGE" | "LTRIM" => {
            let (start, stop) = (integer(&args[2])?, integer(&args[3])?);
            plain(match name {
                "LRANGE" => Command::ListRange {
                    key: key(),
                    start,
                    stop,
                },
                _ => Command::ListTrim {
                    key: key(),
                    start,
                    stop,
                },
            })
        }
        "LINDEX" => {
            let index = integer(&args[2])?;
            let range = Command::ListRange {
                key: key(),
                start: index,
                stop: index,
            };
            shaped(range, ListReply::Element, None)
        }
        "LSET" => plain(Command::ListSet {
            key: key(),
            index: integer(&args[2])?,
            value: args[3].clone(),
        }),
        "LINSERT" => {
            let before = match text(&args[2]).as_str() {
                "BEFORE" => true,
                "AFTER" => false,
                _ => return Err(SYNTAX_ERROR.into()),
            };
            plain(Command::ListInsert {
                key: key(),
                before,
                pivot: args[3].clone(),
                value: args[4].clone(),
            })
        }
        "LREM" => plain(Command::ListRemove {
            key: key(),
            count: integer(&args[2])?,
            value: args[3].clone(),
        }),
        "LPOS" => parse_lpos(args),
        "SORT" | "SORT_RO" => parse_sort(name, args),
        _ => parse_pop_or_move(name, args),
    }
}

/// The commands that pop from one list of several or move between two.
fn parse_pop_or_move(name: &str, args: &[Vec<u8>]) -> Parsed {
    let list_move = |from_left, to_left, block_ms| {
        let command = Command::ListMove {
            from: args[1].clone(),
            to: args[2].clone(),
            from_left,
            to_left,
        };
        shaped(command, ListReply::Plain, block_ms)
    };
    match name {
        "RPOPLPUSH" => list_move(false, true, None),
        "BRPOPLPUSH" => list_move(false, true, Some(timeout_ms(&args[3])?)),
        "LMOVE" => list_move(side(&args[3])?, side(&args[4])?, None),
        "BLMOVE" => {
            let sides = (side(&args[3])?, side(&args[4])?);
            list_move(sides.0, sides.1, Some(timeout_ms(&args[5])?))
        }
        "BLPOP" | "BRPOP" => {
            let block_ms = timeout_ms(&args[args.len() - 1])?;
            let command = Command::ListPop {
                keys: args[1..args.len() - 1].to_vec(),
                left: name == "BLPOP",
                count: None,
            };
            shaped(command, ListReply::KeyAndElement, Some(block_ms))
        }
        "LMPOP" => parse_mpop(&args[1..], None),
        "BLMPOP" => {
            let block_ms = timeout_ms(&args[1])?;
            parse_mpop(&args[2..], Some(block_ms))
        }
        _ => unreachable!("not a list command: {name}"),
    }
}

/// `LPOP key [count]`.
fn parse_pop(name: &str, args: &[Vec<u8>]) -> Parsed {
    if args.len() > 3 {
        return Err(crate::redis::arity_error(name));
    }
    let count = match args.get(2).map(|c| parse_i64(c)) {
        None => None,
        Some(Some(n)) if n >= 0 => Some(n.unsigned_abs()),
        Some(_) => return Err("ERR value is out of range, must be positive".into()),
    };
    let command = Command::ListPop {
        keys: vec![args[1].clone()],
        left: name == "LPOP",
        count,
    };
    let counted = count.is_some();
    shaped(command, ListReply::Popped { counted }, None)
}

/// `numkeys key [key ...] LEFT|RIGHT [COUNT count]` (LMPOP's arguments after its name).
fn parse_mpop(args: &[Vec<u8>], block_ms: Option<u64>) -> Parsed {
    let numkeys = match parse_i64(&args[0]) {
        Some(n) if n > 0 => n.unsigned_abs(),
        _ => return Err("ERR numkeys should be greater than 0".into()),
    };
    let rest = usize::try_from(numkeys)
        .ok()
        .and_then(|n| args.get(1 + n..))
        .filter(|rest| !rest.is_empty())
        .ok_or_else(|| SYNTAX_ERROR.to_string())?;
    let keys = args[1..args.len() - rest.len()].to_vec();
    assert_eq!(keys.len() as u64, numkeys, "LMPOP names numkeys keys");
    let left = side(&rest[0])?;
    let count = match &rest[1..] {
        [] => 1,
        [option, count] if text(option) == "COUNT" => match parse_i64(count) {
            Some(n) if n > 0 => n.unsigned_abs(),
            _ => return Err("ERR count should be greater than 0".into()),
        },
        _ => return Err(SYNTAX_ERROR.into()),
    };
    let command = Command::ListPop {
        keys,
        left,
        count: Some(count),
    };
    shaped(command, ListReply::KeyAndElements, block_ms)
}

/// `LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]`.
fn parse_lpos(args: &[Vec<u8>]) -> Parsed {
    let mut lpos = Lpos {
        element: args[2].clone(),
        rank: 1,
        count: None,
        maxlen: 0,
    };
    for option in args[3..].chunks(2) {
        let [name, value] = option else {
            return Err(SYNTAX_ERROR.into());
        };
        let number = parse_i64(value);
        match (text(name).as_str(), number) {
            ("RANK", Some(0)) => {
                return Err(
                    "ERR RANK can't be zero: use 1 to start from the first match, 2 from \
                     the second ... or use negative to start from the end of the list"
                        .into(),
                )
            }
            // Redis 7.0.15 negates it with an overflow and so takes the first from the tail.
            ("RANK", Some(i64::MIN)) => lpos.rank = -1,
            ("RANK", Some(rank)) => lpos.rank = rank,
            ("RANK", None) => return Err(NOT_AN_INTEGER.into()),
            ("COUNT", Some(count)) if count >= 0 => lpos.count = Some(count.unsigned_abs()),
            ("COUNT", _) => return Err("ERR COUNT can't be negative".into()),
            ("MAXLEN", Some(maxlen)) if maxlen >= 0 => lpos.maxlen = maxlen.unsigned_abs(),
            ("MAXLEN", _) => return Err("ERR MAXLEN can't be negative".into()),
            _ => return Err(SYNTAX_ERROR.into()),
        }
    }
    let command = Command::ListRange {
        key: args[1].clone(),
        start: 0,
        stop: -1,
    };
    assert!(lpos.rank != 0, "LPOS ranks from 1 or -1");
    shaped(command, ListReply::Position(lpos), None)
}

/// `SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA]
/// [STORE destination]` (SORT_RO: no STORE).
fn parse_sort(name: &str, args: &[Vec<u8>]) -> Parsed {
    let mut spec = SortSpec::default();
    let mut at = 2;
    while at < args.len() {
        let left = args.len() - at - 1;
        let next = || args[at + 1].clone();
        match text(&args[at]).as_str() {
            "ASC" => spec.desc = false,
            "DESC" => spec.desc = true,
            "ALPHA" => spec.alpha = true,
            "LIMIT" if left >= 2 => {
                spec.limit = Some((integer(&args[at + 1])?, integer(&args[at + 2])?));
                at += 2;
            }
            "STORE" if left >= 1 && name == "SORT" => {
                spec.store = Some(next());
                at += 1;
            }
            "BY" if left >= 1 => {
                spec.by = Some(next());
                at += 1;
            }
            "GET" if left >= 1 => {
                spec.get.push(next());
                at += 1;
            }
            _ => return Err(SYNTAX_ERROR.into()),
        }
        at += 1;
    }
    assert!(
        spec.store.is_none() || name == "SORT",
        "SORT_RO stores nothing"
    );
    plain(Command::Sort {
        key: args[1].clone(),
        spec: Box::new(spec),
    })
}

/// The keys a blocked client waits on: one of them present may end the wait.
pub fn awaited_keys(command: &Command) -> Vec<Vec<u8>> {
    match command {
        Command::ListPop { keys, .. } => keys.clone(),
        Command::ListMove { from, .. } => vec![from.clone()],
        other => unreachable!("not a blocking list command: {other:?}"),
    }
}
