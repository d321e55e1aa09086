//! Parsing Redis 7.0's hash and set commands into store commands, and showing their replies.

use crate::kv::ValueKind;
use crate::redis::args::{arity_error, parse_i64, text, NOT_AN_INTEGER, SYNTAX_ERROR};
use crate::redis::shape::{CollectionShape, Shape};
use crate::{Command, SetOp};

/// Most elements SRANDMEMBER or HRANDFIELD with a negative count answers (bounds the reply).
pub const RANDOM_COUNT_MAX: i64 = 1_000_000;

type Parsed = Result<(Command, Shape), String>;

fn plain(command: Command) -> Parsed {
    Ok((command, Shape::Plain))
}

fn shaped(command: Command, shape: CollectionShape) -> Parsed {
    Ok((command, Shape::Collection(shape)))
}

/// Parses the hash or set command `name` (upper case) of the table's arity.
pub fn parse_collection_command(name: &str, args: &[Vec<u8>]) -> Parsed {
    if name.starts_with('H') {
        return parse_hash_command(name, args);
    }
    let key = || args[1].clone();
    let rest = || args[2..].to_vec();
    let all = || args[1..].to_vec();
    match name {
        "SADD" => plain(Command::SetAdd {
            key: key(),
            members: rest(),
        }),
        "SREM" => plain(Command::SetRemove {
            key: key(),
            members: rest(),
        }),
        "SMEMBERS" => plain(Command::SetMembers { key: key() }),
        "SISMEMBER" => shaped(
            Command::SetContains {
                key: key(),
                members: rest(),
            },
            CollectionShape::Found,
        ),
        "SMISMEMBER" => shaped(
            Command::SetContains {
                key: key(),
                members: rest(),
            },
            CollectionShape::FoundEach,
        ),
        "SCARD" => plain(Command::Cardinality {
            key: key(),
            kind: ValueKind::Set,
        }),
        "SMOVE" => plain(Command::SetMove {
            from: key(),
            to: args[2].clone(),
            member: args[3].clone(),
        }),
        "SINTER" | "SUNION" | "SDIFF" => plain(Command::SetCombine {
            op: set_op(name),
            keys: all(),
        }),
        "SINTERSTORE" | "SUNIONSTORE" | "SDIFFSTORE" => plain(Command::SetStore {
            op: set_op(name),
            dest: key(),
            keys: rest(),
        }),
        "SINTERCARD" => parse_intercard(args),
        "SSCAN" => parse_scan(Command::SetMembers { key: key() }, args),
        "SRANDMEMBER" => parse_random(Command::SetMembers { key: key() }, args, false),
        "SPOP" => parse_pop(args),
        _ => unreachable!("not a set command: {name}"),
    }
}

fn set_op(name: &str) -> SetOp {
    match name.trim_end_matches("STORE") {
        "SINTER" => SetOp::Inter,
        "SUNION" => SetOp::Union,
        "SDIFF" => SetOp::Diff,
        _ => unreachable!("not a set operation: {name}"),
    }
}

fn parse_hash_command(name: &str, args: &[Vec<u8>]) -> Parsed {
    let key = || args[1].clone();
    let fields = || args[2..].to_vec();
    let get = |shape| {
        shaped(
            Command::HashGet {
                key: key(),
                fields: fields(),
            },
            shape,
        )
    };
    match name {
        "HSET" | "HMSET" => {
            if !args.len().is_multiple_of(2) {
                return Err(arity_error(name));
            }
            let pairs = args[2..]
                .chunks_exact(2)
                .map(|p| (p[0].clone(), p[1].clone()));
            let command = Command::HashSet {
                key: key(),
                pairs: pairs.collect(),
                if_absent: false,
            };
            match name {
                "HSET" => plain(command),
                _ => shaped(command, CollectionShape::Ok),
            }
        }
        "HSETNX" => plain(Command::HashSet {
            key: key(),
            pairs: vec![(args[2].clone(), args[3].clone())],
            if_absent: true,
        }),
        "HGET" => get(CollectionShape::First),
        "HMGET" => plain(Command::HashGet {
            key: key(),
            fields: fields(),
        }),
        "HEXISTS" => get(CollectionShape::Found),
        "HSTRLEN" => get(CollectionShape::Length),
        "HGETALL" => plain(Command::HashGetAll { key: key() }),
        "HKEYS" => shaped(Command::HashGetAll { key: key() }, CollectionShape::Fields),
        "HVALS" => shaped(Command::HashGetAll { key: key() }, CollectionShape::Values),
        "HLEN" => plain(Command::Cardinality {
            key: key(),
            kind: ValueKind::Hash,
        }),
        "HDEL" => plain(Command::HashDelete {
            key: key(),
            fields: fields(),
        }),
        "HINCRBY" => match parse_i64(&args[3]) {
            Some(delta) => plain(Command::HashAdd {
                key: key(),
                field: args[2].clone(),
                delta,
            }),
            None => Err(NOT_AN_INTEGER.into()),
        },
        "HINCRBYFLOAT" => match crate::strings::parse_float(&args[3]) {
            Some(delta) if delta.is_infinite() => Err("ERR value is NaN or Infinity".into()),
            Some(_) => plain(Command::HashAddFloat {
                key: key(),
                field: args[2].clone(),
                delta: args[3].clone(),
            }),
            None => Err("ERR value is not a valid float".into()),
        },
        "HSCAN" => parse_scan(Command::HashGetAll { key: key() }, args),
        "HRANDFIELD" => {
            let with_values = args.len() == 4 && text(&args[3]) == "WITHVALUES";
            if args.len() > 4 || (args.len() == 4 && !with_values) {
                return Err(SYNTAX_ERROR.into());
            }
            parse_random(
                Command::HashGetAll { key: key() },
                &args[..args.len().min(3)],
                with_values,
            )
        }
        _ => unreachable!("not a hash command: {name}"),
    }
}

/// `SSCAN|HSCAN key cursor [MATCH pattern] [COUNT count]`.
pub(crate) fn parse_scan(command: Command, args: &[Vec<u8>]) -> Parsed {
    let cursor = std::str::from_utf8(&args[2])
        .ok()
        .and_then(|c| c.parse::<u64>().ok());
    cursor.ok_or_else(|| "ERR invalid cursor".to_string())?;
    let mut pattern = None;
    for option in args[3..].chunks(2) {
        let [name, value] = option else {
            return Err(SYNTAX_ERROR.into());
        };
        match text(name).as_str() {
            "MATCH" => pattern = Some(value.clone()),
            "COUNT" => match parse_i64(value) {
                Some(n) if n >= 1 => {}
                Some(_) => return Err(SYNTAX_ERROR.into()),
                None => return Err(NOT_AN_INTEGER.into()),
            },
            _ => return Err(SYNTAX_ERROR.into()),
        }
    }
    shaped(command, CollectionShape::Scan { pattern })
}

/// `SRANDMEMBER key [count]`, `HRANDFIELD key [count]` (WITHVALUES checked by the caller).
pub(crate) fn parse_random(command: Command, args: &[Vec<u8>], with_values: bool) -> Parsed {
    if args.len() > 3 {
        return Err(SYNTAX_ERROR.into());
    }
    let count = match args.get(2) {
        None => None,
        Some(count) => match parse_i64(count) {
            Some(n) if n >= -RANDOM_COUNT_MAX => Some(n),
            Some(_) => return Err("ERR value is out of range".into()),
            None => return Err(NOT_AN_INTEGER.into()),
        },
    };
    shaped(
        command,
        CollectionShape::Random {
            count,
            with_values,
            seed: 0,
        },
    )
}

/// `SPOP key [count]`.
fn parse_pop(args: &[Vec<u8>]) -> Parsed {
    if args.len() > 3 {
        return Err(SYNTAX_ERROR.into());
    }
    let count = match args.get(2).map(|c| parse_i64(c)) {
        None => None,
        Some(Some(n)) if n >= 0 => Some(n.unsigned_abs()),
        Some(_) => return Err("ERR value is out of range, must be positive".into()),
    };
    plain(Command::SetPop {
        key: args[1].clone(),
        count,
    })
}

/// SINTERCARD's and ZINTERCARD's options after the keys: `[LIMIT limit]` (0: no limit).
pub(crate) fn parse_card_limit(options: &[Vec<u8>]) -> Result<u64, String> {
    let mut limit = 0;
    for option in options.chunks(2) {
        match (
            text(&option[0]).as_str(),
            option.get(1).map(|l| parse_i64(l)),
        ) {
            ("LIMIT", Some(Some(l))) if l >= 0 => limit = l.unsigned_abs(),
            ("LIMIT", Some(_)) => return Err("ERR LIMIT can't be negative".into()),
            _ => return Err(SYNTAX_ERROR.into()),
        }
    }
    Ok(limit)
}

/// `SINTERCARD numkeys key [key ...] [LIMIT limit]`.
fn parse_intercard(args: &[Vec<u8>]) -> Parsed {
    let numkeys = match parse_i64(&args[1]) {
        Some(n) if n > 0 => n.unsigned_abs() as usize,
        _ => return Err("ERR numkeys should be greater than 0".into()),
    };
    if numkeys > args.len() - 2 {
        return Err("ERR Number of keys can't be greater than number of args".into());
    }
    let keys = args[2..2 + numkeys].to_vec();
    let limit = parse_card_limit(&args[2 + numkeys..])?;
    shaped(
        Command::SetCombine {
            op: SetOp::Inter,
            keys,
        },
        CollectionShape::Count { limit },
    )
}
