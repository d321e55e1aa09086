//! A store command's arguments → the store commands it is, and how their replies are shown.
//! The caller has checked the name and arity ([`crate::redis::lookup`]).

use crate::redis::args::{arity_error, parse_db, parse_i64, text, NOT_AN_INTEGER, SYNTAX_ERROR};
use crate::redis::expiry;
use crate::redis::shape::Shape;
use crate::redis::strings::parse_string_command;
use crate::redis::table::{spec, Kind};
use crate::{Command, SetCondition};

/// One or more store commands, answered as `shape` says: a single one with its reply,
/// several with an array, or (EXISTS) the number of keys found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreCall {
    pub commands: Vec<Command>,
    pub shape: Shape,
}

impl StoreCall {
    /// One command, its reply shown plainly.
    pub fn plain(command: Command) -> StoreCall {
        StoreCall::shaped(command, Shape::Plain)
    }

    fn shaped(command: Command, shape: Shape) -> StoreCall {
        assert_ne!(shape, Shape::Array, "an array of one reply is per_key's");
        StoreCall {
            commands: vec![command],
            shape,
        }
    }
}

type Parsed = Result<StoreCall, String>;
/// A key and its value.
type Pair = (Vec<u8>, Vec<u8>);

/// Parses the store command `name` (the table's upper-case name) with `args` (name first, of
/// an arity the table accepts).
pub fn parse_store(name: &str, args: &[Vec<u8>]) -> Parsed {
    let known = spec(name).expect("a command of the table");
    assert_eq!(known.kind, Kind::Store, "{name} is not a store command");
    let parsed = parse_named(name, args);
    if let Ok(call) = &parsed {
        assert!(!call.commands.is_empty(), "{name} parsed to no command");
    }
    parsed
}

fn parse_named(name: &str, args: &[Vec<u8>]) -> Parsed {
    let key = || args[1].clone();
    let plain = |command| Ok(StoreCall::plain(command));
    match name {
        "GET" => plain(Command::Get { key: key() }),
        "DIRTYGET" => plain(Command::DirtyGet { key: key() }),
        "TYPE" => Ok(per_key(args, |key| Command::Describe { key }, Shape::Type)),
        "TTL" | "PTTL" | "EXPIRETIME" | "PEXPIRETIME" => plain(expiry::parse_ttl(name, args)),
        "SET" if args.len() > 3 => expiry::parse_set(args).map(StoreCall::plain),
        "SETEX" | "PSETEX" => expiry::parse_setex(name, args).map(StoreCall::plain),
        "GETEX" => expiry::parse_getex(args).map(StoreCall::plain),
        "EXPIRE" | "PEXPIRE" | "EXPIREAT" | "PEXPIREAT" => {
            expiry::parse_expire(name, args).map(StoreCall::plain)
        }
        "PERSIST" => plain(Command::Persist { key: key() }),
        "PUBLISH" => plain(Command::Publish {
            channel: args[1].clone(),
            message: args[2].clone(),
        }),
        "SET" => plain(Command::Set {
            key: key(),
            value: args[2].clone(),
        }),
        "SETNX" | "GETSET" | "MSETNX" | "APPEND" | "STRLEN" | "GETRANGE" | "SUBSTR" => {
            parse_string(name, args)
        }
        "INCR" => plain(Command::Add {
            key: key(),
            delta: 1,
        }),
        "DECR" => plain(Command::Add {
            key: key(),
            delta: -1,
        }),
        "INCRBY" | "DECRBY" => match parse_i64(&args[2]) {
            Some(delta) if name == "INCRBY" => plain(Command::Add { key: key(), delta }),
            Some(delta) if delta != i64::MIN => plain(Command::Add {
                key: key(),
                delta: -delta,
            }),
            _ => Err(NOT_AN_INTEGER.into()),
        },
        "GETDEL" => plain(Command::Remove { key: key() }),
        "EVAL" | "EVALSHA" | "EVAL_RO" | "EVALSHA_RO" | "FCALL" | "FCALL_RO" | "SCRIPT"
        | "FUNCTION" => {
            crate::scripting::parse(name, args).map(|s| StoreCall::plain(Command::Script(s)))
        }
        "RENAME" => plain(Command::Rename {
            from: key(),
            to: args[2].clone(),
        }),
        "TESTANDSET" => plain(Command::TestAndSet {
            key: key(),
            expected: args[2].clone(),
            new: args[3].clone(),
        }),
        "PRUNE" => plain(Command::Prune { prefix: key() }),
        "COUNT" => plain(Command::Count { prefix: key() }),
        "DBSIZE" => plain(Command::Count { prefix: Vec::new() }),
        "LISTKEYS" | "LISTKEYVALUES" => parse_list(name, args),
        "DEL" | "EXISTS" | "MGET" | "MSET" => parse_multi_key(name, args),
        // UNLINK frees memory in the background in Redis: here, the same as DEL.
        "UNLINK" => parse_multi_key("DEL", args),
        "TOUCH" => parse_multi_key("EXISTS", args),
        "SETRANGE" | "INCRBYFLOAT" | "SETBIT" | "GETBIT" | "BITCOUNT" | "BITPOS" | "BITOP"
        | "LCS" | "RENAMENX" | "COPY" | "OBJECT" => {
            let (command, shape) = parse_string_command(name, args)?;
            Ok(StoreCall::shaped(command, shape))
        }
        _ if crate::redis::zsets::is_zset_command(name) => {
            let (command, shape) = crate::redis::zsets::parse_zset_command(name, args)?;
            Ok(StoreCall::shaped(command, shape))
        }
        _ if crate::redis::lists::is_list_command(name) => {
            let (command, shape) = crate::redis::lists::parse_list_command(name, args)?;
            Ok(StoreCall::shaped(command, shape))
        }
        _ if is_collection_command(name) => {
            let (command, shape) = crate::redis::collections::parse_collection_command(name, args)?;
            Ok(StoreCall::shaped(command, shape))
        }
        "FLUSHDB" | "FLUSHALL" | "SWAPDB" | "MOVE" | "KEYS" | "SCAN" => {
            parse_database(name, args).map(StoreCall::plain)
        }
        _ => unreachable!("every store command of the table is parsed: {name}"),
    }
}

/// The hash and set commands: the table's names of H and S but SET's family and SCAN's own.
fn is_collection_command(name: &str) -> bool {
    let strings = [
        "SET", "SETNX", "SETEX", "SETRANGE", "SETBIT", "SUBSTR", "SWAPDB", "SCAN", "SCRIPT",
        "SELECT", "SAVE", "SHUTDOWN", "SLAVEOF", "HELLO",
    ];
    (name.starts_with('H') || name.starts_with('S')) && !strings.contains(&name)
}

/// One command per key named (each of `args` after the name), shown together as `shape` says.
pub fn per_key(args: &[Vec<u8>], make: impl Fn(Vec<u8>) -> Command, shape: Shape) -> StoreCall {
    let commands: Vec<Command> = args[1..].iter().map(|k| make(k.clone())).collect();
    assert_eq!(commands.len(), args.len() - 1, "one command per key");
    StoreCall { commands, shape }
}

/// The string commands that are one store command, shaped.
fn parse_string(name: &str, args: &[Vec<u8>]) -> Parsed {
    let key = args[1].clone();
    let set_if = |condition, get| Command::SetIf {
        key: args[1].clone(),
        value: args[2].clone(),
        condition,
        get,
    };
    let call = match name {
        "SETNX" => StoreCall::shaped(set_if(SetCondition::IfAbsent, false), Shape::SetNx),
        "GETSET" => StoreCall::plain(set_if(SetCondition::Always, true)),
        "MSETNX" => StoreCall::plain(Command::MultiSetIfAbsent {
            pairs: pairs(name, args)?,
        }),
        "APPEND" => StoreCall::plain(Command::Append {
            key,
            value: args[2].clone(),
        }),
        "STRLEN" => StoreCall::shaped(Command::Get { key }, Shape::Strlen),
        _ => match (parse_i64(&args[2]), parse_i64(&args[3])) {
            (Some(start), Some(end)) => {
                StoreCall::shaped(Command::Get { key }, Shape::Range { start, end })
            }
            _ => return Err(NOT_AN_INTEGER.into()),
        },
    };
    Ok(call)
}

/// The `key value` pairs after the name, or the arity error if one is missing its value.
fn pairs(name: &str, args: &[Vec<u8>]) -> Result<Vec<Pair>, String> {
    if args.len().is_multiple_of(2) {
        return Err(arity_error(name));
    }
    let pairs: Vec<_> = args[1..]
        .chunks_exact(2)
        .map(|pair| (pair[0].clone(), pair[1].clone()))
        .collect();
    assert_eq!(2 * pairs.len() + 1, args.len(), "every key has its value");
    Ok(pairs)
}

/// The commands of databases and of the keys in one.
fn parse_database(name: &str, args: &[Vec<u8>]) -> Result<Command, String> {
    let flush_mode_ok = match args.get(1).map(|a| text(a)) {
        None => args.len() == 1,
        Some(mode) => args.len() == 2 && (mode == "ASYNC" || mode == "SYNC"),
    };
    match name {
        "FLUSHDB" | "FLUSHALL" if !flush_mode_ok => Err(SYNTAX_ERROR.into()),
        "FLUSHDB" => Ok(Command::FlushDb),
        "FLUSHALL" => Ok(Command::FlushAll),
        "SWAPDB" => {
            let a = parse_db(&args[1], "ERR invalid first DB index")?;
            let b = parse_db(&args[2], "ERR invalid second DB index")?;
            Ok(Command::SwapDb { a, b })
        }
        "MOVE" => parse_db(&args[2], NOT_AN_INTEGER).map(|to| Command::Move {
            key: args[1].clone(),
            to,
        }),
        "KEYS" => Ok(Command::Keys {
            pattern: args[1].clone(),
        }),
        "SCAN" => parse_scan(args),
        _ => unreachable!("not a database command: {name}"),
    }
}

/// `SCAN cursor [MATCH pattern] [COUNT n] [TYPE type]`.
fn parse_scan(args: &[Vec<u8>]) -> Result<Command, String> {
    let cursor = std::str::from_utf8(&args[1])
        .ok()
        .and_then(|c| c.parse::<u64>().ok());
    let cursor = cursor.ok_or_else(|| "ERR invalid cursor".to_string())?;
    let (mut pattern, mut count, mut type_name) = (None, 10, None);
    for option in args[2..].chunks(2) {
        let [name, value] = option else {
            return Err(SYNTAX_ERROR.into());
        };
        match text(name).as_str() {
            "MATCH" => pattern = Some(value.clone()),
            "TYPE" => type_name = Some(value.clone()),
            "COUNT" => match parse_i64(value) {
                Some(n) if n >= 1 => count = n as u64,
                Some(_) => return Err(SYNTAX_ERROR.into()),
                None => return Err(NOT_AN_INTEGER.into()),
            },
            _ => return Err(SYNTAX_ERROR.into()),
        }
    }
    assert!(count >= 1, "SCAN asks for at least one key");
    Ok(Command::Scan {
        cursor,
        pattern,
        count,
        type_name,
    })
}

/// The commands that name several keys: each is one store command, read or applied at once.
fn parse_multi_key(name: &str, args: &[Vec<u8>]) -> Parsed {
    let keys = || args[1..].to_vec();
    let call = match name {
        // One command, so one log entry: every key goes at once.
        "DEL" => StoreCall::plain(Command::MultiDelete { keys: keys() }),
        // One read of every key at one point; a key named twice counts twice, as in Redis.
        "EXISTS" => StoreCall::plain(Command::Exists { keys: keys() }),
        // One read of every key at one point: a concurrent MSET is seen whole or not at all.
        "MGET" => StoreCall::plain(Command::MultiGet { keys: keys() }),
        // One command, so one log entry: every pair is stored or none.
        "MSET" => StoreCall::plain(Command::MultiSet {
            pairs: pairs(name, args)?,
        }),
        _ => unreachable!("not a multi-key command: {name}"),
    };
    Ok(call)
}

/// `LISTKEYS prefix [START key] [COUNT n]`.
fn parse_list(name: &str, args: &[Vec<u8>]) -> Parsed {
    let prefix = args[1].clone();
    let (mut start, mut count) = (None, None);
    for pair in args[2..].chunks(2) {
        match (text(&pair[0]).as_str(), pair.get(1)) {
            ("START", Some(key)) => start = Some(key.clone()),
            ("COUNT", Some(n)) => match parse_i64(n) {
                Some(n) if n >= 0 => count = Some(n as u64),
                _ => return Err("ERR COUNT must be a non-negative integer".into()),
            },
            _ => return Err("ERR syntax error: expected [START key] [COUNT n]".into()),
        }
    }
    let command = if name == "LISTKEYS" {
        Command::ListKeys {
            prefix,
            start,
            count,
        }
    } else {
        Command::ListKeyValues {
            prefix,
            start,
            count,
        }
    };
    Ok(StoreCall::plain(command))
}
