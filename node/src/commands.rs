//! The Redis commands keyspace understands, and how their replies are written.
//!
//! Parsing ([`parse`]) is pure: arguments in, an [`Action`] out (or the error a client sees for
//! an unknown command or a wrong number of arguments). [`run`] carries an action out on a
//! connection and writes the RESP reply.

use std::sync::atomic::Ordering;

use keyspace_core::{
    Change, Command, CommandError, Db, MemberKind, NodeId, Reply, Role, SetCondition, DATABASES,
};

use crate::connection::{Connection, Failure};
use crate::event::{MemberRow, Status};
use crate::resp::Writer;

pub use crate::action::{Action, Shape};

fn arity_error(name: &str) -> Action {
    Action::Error(format!(
        "ERR wrong number of arguments for '{}' command",
        name.to_lowercase()
    ))
}

pub fn store(command: Command) -> Action {
    Action::Store {
        commands: vec![command],
        shape: Shape::Plain,
    }
}

fn text(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).to_uppercase()
}

fn parse_i64(arg: &[u8]) -> Option<i64> {
    std::str::from_utf8(arg).ok()?.parse().ok()
}

/// Whether `args` (name first) has an acceptable count: exactly `n`, or at least `-n`.
pub(crate) fn arity_ok(args: &[Vec<u8>], arity: i32) -> bool {
    let len = args.len() as i32;
    if arity >= 0 {
        len == arity
    } else {
        len >= -arity
    }
}

/// Every command this node answers, with its arity: exactly `n` arguments (name included), or
/// at least `-n`. `COMMAND COUNT` counts this table.
const COMMANDS: [(&str, i32); 56] = [
    ("GET", 2),
    ("DIRTYGET", 2),
    ("INCR", 2),
    ("DECR", 2),
    ("GETDEL", 2),
    ("PRUNE", 2),
    ("COUNT", 2),
    ("ECHO", 2),
    ("TYPE", 2),
    ("TTL", 2),
    ("PTTL", 2),
    ("INCRBY", 3),
    ("DECRBY", 3),
    ("RENAME", 3),
    ("SET", -3),
    ("MSET", -3),
    ("TESTANDSET", 4),
    ("DEL", -2),
    ("EXISTS", -2),
    ("MGET", -2),
    ("AUTH", -2),
    ("SELECT", -2),
    ("CLIENT", -2),
    ("CONFIG", -2),
    ("LISTKEYS", -2),
    ("LISTKEYVALUES", -2),
    ("MEMBER", -2),
    ("DBSIZE", 1),
    ("QUIT", 1),
    ("READONLY", 1),
    ("READWRITE", 1),
    ("MULTI", 1),
    ("EXEC", 1),
    ("DISCARD", 1),
    ("WATCH", -2),
    ("UNWATCH", 1),
    ("PING", -1),
    ("INFO", -1),
    ("HELLO", -1),
    ("COMMAND", -1),
    ("FLUSHDB", -1),
    ("FLUSHALL", -1),
    ("SWAPDB", 3),
    ("MOVE", 3),
    ("KEYS", 2),
    ("SCAN", -2),
    ("RANDOMKEY", 1),
    ("FUNCTION", -2),
    ("DEBUG", -2),
    ("SETNX", 3),
    ("GETSET", 3),
    ("MSETNX", -3),
    ("APPEND", 3),
    ("STRLEN", 2),
    ("GETRANGE", 4),
    ("SUBSTR", 4),
];

/// The table's name of a known command (`name` in upper case).
pub fn known_name(name: &str) -> Option<&'static str> {
    COMMANDS
        .iter()
        .find(|(known, _)| *known == name)
        .map(|&(known, _)| known)
}

pub(crate) fn arity_of(name: &str) -> Option<i32> {
    COMMANDS
        .iter()
        .find(|(known, _)| *known == name)
        .map(|&(_, arity)| arity)
}

/// What of a connection's state decides how its commands parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionFlags {
    /// AUTH succeeded, or no password is configured.
    pub authenticated: bool,
    /// Between `MULTI` and `EXEC` or `DISCARD`.
    pub in_multi: bool,
    /// `READONLY`: reads go to this replica, possibly stale.
    pub readonly: bool,
}

/// Turns a command's arguments into what to do.
pub fn parse(args: &[Vec<u8>], conn: ConnectionFlags) -> Action {
    let name = text(&args[0]);
    let Some(arity) = arity_of(&name) else {
        let first: Vec<String> = args[1..]
            .iter()
            .take(3)
            .map(|a| format!("'{}'", String::from_utf8_lossy(a)))
            .collect();
        return Action::Error(format!(
            "ERR unknown command '{}', with args beginning with: {}",
            String::from_utf8_lossy(&args[0]),
            first.join(" ")
        ));
    };
    if !arity_ok(args, arity) {
        return arity_error(&name);
    }
    if !conn.authenticated && !matches!(name.as_str(), "AUTH" | "HELLO" | "QUIT") {
        return Action::Error("NOAUTH Authentication required.".into());
    }
    if conn.readonly && !conn.in_multi {
        // Each key read by this replica on its own (DIRTYGET), possibly stale.
        match name.as_str() {
            "MGET" => return many(args, |key| Command::Get { key }, Shape::Array),
            "EXISTS" => return many(args, |key| Command::Get { key }, Shape::Exists),
            _ => {}
        }
    }
    parse_named(&name, args)
}

fn parse_named(name: &str, args: &[Vec<u8>]) -> Action {
    let key = || args[1].clone();
    match name {
        "GET" => store(Command::Get { key: key() }),
        "DIRTYGET" => store(Command::DirtyGet { key: key() }),
        "TYPE" => many(args, |key| Command::Get { key }, Shape::Type),
        "TTL" | "PTTL" => many(args, |key| Command::Get { key }, Shape::Ttl),
        "SET" if args.len() > 3 => parse_set_options(args),
        "SET" => store(Command::Set {
            key: key(),
            value: args[2].clone(),
        }),
        "SETNX" | "GETSET" | "MSETNX" | "APPEND" | "STRLEN" | "GETRANGE" | "SUBSTR" => {
            parse_string(name, args)
        }
        "INCR" => store(Command::Add {
            key: key(),
            delta: 1,
        }),
        "DECR" => store(Command::Add {
            key: key(),
            delta: -1,
        }),
        "INCRBY" | "DECRBY" => match parse_i64(&args[2]) {
            Some(delta) if name == "INCRBY" => store(Command::Add { key: key(), delta }),
            Some(delta) if delta != i64::MIN => store(Command::Add {
                key: key(),
                delta: -delta,
            }),
            _ => Action::Error("ERR value is not an integer or out of range".into()),
        },
        "GETDEL" => store(Command::Remove { key: key() }),
        "RENAME" => store(Command::Rename {
            from: key(),
            to: args[2].clone(),
        }),
        "TESTANDSET" => store(Command::TestAndSet {
            key: key(),
            expected: args[2].clone(),
            new: args[3].clone(),
        }),
        "PRUNE" => store(Command::Prune { prefix: key() }),
        "COUNT" => store(Command::Count { prefix: key() }),
        "DBSIZE" => store(Command::Count { prefix: Vec::new() }),
        "MEMBER" => parse_member(args),
        "LISTKEYS" | "LISTKEYVALUES" => parse_list(name, args),
        "DEL" | "EXISTS" | "MGET" | "MSET" => parse_multi_key(name, args),
        "FLUSHDB" | "FLUSHALL" | "SWAPDB" | "MOVE" | "KEYS" | "SCAN" | "RANDOMKEY" => {
            parse_database(name, args)
        }
        _ => parse_connection(name, args),
    }
}

/// `SET key value [NX|XX] [GET]`; expiry options are refused until keys can expire.
fn parse_set_options(args: &[Vec<u8>]) -> Action {
    let (mut condition, mut get) = (SetCondition::Always, false);
    for option in &args[3..] {
        match (text(option).as_str(), condition) {
            ("NX", SetCondition::Always | SetCondition::IfAbsent) => {
                condition = SetCondition::IfAbsent
            }
            ("XX", SetCondition::Always | SetCondition::IfPresent) => {
                condition = SetCondition::IfPresent
            }
            ("GET", _) => get = true,
            ("EX" | "PX" | "EXAT" | "PXAT" | "KEEPTTL", _) => {
                return Action::Error(
                    "ERR syntax error (keys do not expire yet: EX, PX, EXAT, PXAT and KEEPTTL \
                     are not supported)"
                        .into(),
                )
            }
            _ => return Action::Error("ERR syntax error".into()),
        }
    }
    store(Command::SetIf {
        key: args[1].clone(),
        value: args[2].clone(),
        condition,
        get,
    })
}

/// The string commands that are one store command, shaped.
fn parse_string(name: &str, args: &[Vec<u8>]) -> Action {
    let (key, shaped) = (args[1].clone(), |command, shape| Action::Store {
        commands: vec![command],
        shape,
    });
    let set_if = |condition, get| Command::SetIf {
        key: args[1].clone(),
        value: args[2].clone(),
        condition,
        get,
    };
    match name {
        "SETNX" => shaped(set_if(SetCondition::IfAbsent, false), Shape::SetNx),
        "GETSET" => store(set_if(SetCondition::Always, true)),
        "MSETNX" if args.len().is_multiple_of(2) => arity_error(name),
        "MSETNX" => store(Command::MultiSetIfAbsent {
            pairs: args[1..]
                .chunks_exact(2)
                .map(|pair| (pair[0].clone(), pair[1].clone()))
                .collect(),
        }),
        "APPEND" => store(Command::Append {
            key,
            value: args[2].clone(),
        }),
        "STRLEN" => shaped(Command::Get { key }, Shape::Strlen),
        _ => match (parse_i64(&args[2]), parse_i64(&args[3])) {
            (Some(start), Some(end)) => shaped(Command::Get { key }, Shape::Range { start, end }),
            _ => Action::Error(NOT_AN_INTEGER.into()),
        },
    }
}

/// `value[start..=end]` with Redis's rules for negative and out-of-range indexes.
fn value_range(value: &[u8], start: i64, end: i64) -> &[u8] {
    let len = value.len() as i64;
    if start < 0 && end < 0 && start > end {
        return &[];
    }
    let from_end = |i: i64| if i < 0 { (len + i).max(0) } else { i };
    let (start, end) = (from_end(start), from_end(end).min(len - 1));
    if len == 0 || start > end {
        return &[];
    }
    &value[start as usize..=end as usize]
}

const NOT_AN_INTEGER: &str = "ERR value is not an integer or out of range";
const DB_OUT_OF_RANGE: &str = "ERR DB index is out of range";

/// A database number as Redis reads one: `not_a_number` if it is no integer, out of range
/// if it is not below [`DATABASES`].
fn parse_db(arg: &[u8], not_a_number: &str) -> Result<Db, Action> {
    match parse_i64(arg) {
        Some(db) if (0..i64::from(DATABASES)).contains(&db) => Ok(db as Db),
        Some(_) => Err(Action::Error(DB_OUT_OF_RANGE.into())),
        None => Err(Action::Error(not_a_number.into())),
    }
}

/// The commands of databases and of the keys in one.
fn parse_database(name: &str, args: &[Vec<u8>]) -> Action {
    let flush_mode_ok = match args.get(1).map(|a| text(a)) {
        None => args.len() == 1,
        Some(mode) => args.len() == 2 && (mode == "ASYNC" || mode == "SYNC"),
    };
    let parsed = match name {
        "FLUSHDB" | "FLUSHALL" if !flush_mode_ok => Err(Action::Error("ERR syntax error".into())),
        "FLUSHDB" => Ok(Command::FlushDb),
        "FLUSHALL" => Ok(Command::FlushAll),
        "SWAPDB" => parse_db(&args[1], "ERR invalid first DB index").and_then(|a| {
            let b = parse_db(&args[2], "ERR invalid second DB index")?;
            Ok(Command::SwapDb { a, b })
        }),
        "MOVE" => parse_db(&args[2], NOT_AN_INTEGER).map(|to| Command::Move {
            key: args[1].clone(),
            to,
        }),
        "KEYS" => Ok(Command::Keys {
            pattern: args[1].clone(),
        }),
        "SCAN" => parse_scan(args),
        "RANDOMKEY" => Err(Action::RandomKey),
        _ => unreachable!("not a database command: {name}"),
    };
    parsed.map_or_else(|action| action, store)
}

/// `SCAN cursor [MATCH pattern] [COUNT n] [TYPE type]`.
fn parse_scan(args: &[Vec<u8>]) -> Result<Command, Action> {
    let cursor = std::str::from_utf8(&args[1])
        .ok()
        .and_then(|c| c.parse::<u64>().ok());
    let cursor = cursor.ok_or_else(|| Action::Error("ERR invalid cursor".into()))?;
    let (mut pattern, mut count, mut type_name) = (None, 10, None);
    let syntax = || Action::Error("ERR syntax error".into());
    for option in args[2..].chunks(2) {
        let [name, value] = option else {
            return Err(syntax());
        };
        match text(name).as_str() {
            "MATCH" => pattern = Some(value.clone()),
            "TYPE" => type_name = Some(value.clone()),
            "COUNT" => match parse_i64(value) {
                Some(n) if n >= 1 => count = n as u64,
                Some(_) => return Err(syntax()),
                None => return Err(Action::Error(NOT_AN_INTEGER.into())),
            },
            _ => return Err(syntax()),
        }
    }
    Ok(Command::Scan {
        cursor,
        pattern,
        count,
        type_name,
    })
}

/// The commands that name several keys: each is one store command, read or applied at once.
fn parse_multi_key(name: &str, args: &[Vec<u8>]) -> Action {
    match name {
        // One command, so one log entry: every key goes at once.
        "DEL" => store(Command::MultiDelete {
            keys: args[1..].to_vec(),
        }),
        // One read of every key at one point; a key named twice counts twice, as in Redis.
        "EXISTS" => Action::Store {
            commands: vec![Command::MultiGet {
                keys: args[1..].to_vec(),
            }],
            shape: Shape::Exists,
        },
        // One read of every key at one point: a concurrent MSET is seen whole or not at all.
        "MGET" => store(Command::MultiGet {
            keys: args[1..].to_vec(),
        }),
        "MSET" if args.len().is_multiple_of(2) => arity_error(name),
        // One command, so one log entry: every pair is stored or none.
        "MSET" => store(Command::MultiSet {
            pairs: args[1..]
                .chunks_exact(2)
                .map(|pair| (pair[0].clone(), pair[1].clone()))
                .collect(),
        }),
        _ => unreachable!("not a multi-key command: {name}"),
    }
}

fn many(args: &[Vec<u8>], make: impl Fn(Vec<u8>) -> Command, shape: Shape) -> Action {
    let commands = args[1..].iter().map(|k| make(k.clone())).collect();
    Action::Store { commands, shape }
}

/// `LISTKEYS prefix [START key] [COUNT n]`.
fn parse_list(name: &str, args: &[Vec<u8>]) -> Action {
    let prefix = args[1].clone();
    let (mut start, mut count) = (None, None);
    let mut rest = args[2..].chunks(2);
    for pair in rest.by_ref() {
        match (text(&pair[0]).as_str(), pair.get(1)) {
            ("START", Some(key)) => start = Some(key.clone()),
            ("COUNT", Some(n)) => match parse_i64(n) {
                Some(n) if n >= 0 => count = Some(n as u64),
                _ => return Action::Error("ERR COUNT must be a non-negative integer".into()),
            },
            _ => return Action::Error("ERR syntax error: expected [START key] [COUNT n]".into()),
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
    store(command)
}

/// `MEMBER LIST | ADD <id> <peer-host:port> <client-host:port> [LEARNER|WITNESS] |
/// PROMOTE <id> | REMOVE <id> | FOUNDERS`. Addresses are checked for shape here (a member nobody can dial
/// would join a configuration for good); whether the change may follow is the master's call.
fn parse_member(args: &[Vec<u8>]) -> Action {
    const USAGE: &str = "ERR usage: MEMBER LIST | MEMBER ADD <id> <peer-host:port> \
                         <client-host:port> [LEARNER|WITNESS] | MEMBER PROMOTE <id> | \
                         MEMBER REMOVE <id> | MEMBER FOUNDERS";
    let change = match (text(&args[1]).as_str(), args.len()) {
        ("LIST", 2) => return Action::MemberList,
        ("FOUNDERS", 2) => return Action::MemberFounders,
        ("ADD", 5 | 6) => parse_member_add(args),
        ("PROMOTE", 3) => parse_member_id(&args[2]).map(|id| Change::Promote { id }),
        ("REMOVE", 3) => parse_member_id(&args[2]).map(|id| Change::Remove { id }),
        _ => Err(USAGE.to_string()),
    };
    match change {
        Ok(change) => store(Command::Member(change)),
        Err(error) => Action::Error(error),
    }
}

fn parse_member_add(args: &[Vec<u8>]) -> Result<Change, String> {
    let id = parse_member_id(&args[2])?;
    let peer_addr = parse_member_addr(&args[3], "peer")?;
    let client_addr = parse_member_addr(&args[4], "client")?;
    let kind = match args.get(5).map(|a| text(a)).as_deref() {
        None | Some("LEARNER") => MemberKind::Full,
        Some("WITNESS") => MemberKind::Witness,
        Some(other) => {
            return Err(format!(
                "ERR unknown member kind '{other}': LEARNER (the default) or WITNESS"
            ))
        }
    };
    Ok(Change::Add {
        id,
        peer_addr,
        client_addr,
        kind,
    })
}

fn parse_member_id(arg: &[u8]) -> Result<NodeId, String> {
    match std::str::from_utf8(arg)
        .ok()
        .and_then(|s| s.parse::<NodeId>().ok())
    {
        Some(id) if id > 0 => Ok(id),
        _ => Err(format!(
            "ERR invalid replica id '{}': a number from 1 to {}",
            String::from_utf8_lossy(arg),
            NodeId::MAX
        )),
    }
}

/// A `host:port` another replica can dial: an IP address (peers dial without name lookups).
fn parse_member_addr(arg: &[u8], what: &str) -> Result<String, String> {
    let text = String::from_utf8_lossy(arg);
    match text.parse::<std::net::SocketAddr>() {
        Ok(addr) if addr.port() != 0 => Ok(addr.to_string()),
        _ => Err(format!(
            "ERR invalid {what} address '{text}': give IP:PORT, such as 127.0.0.1:7001"
        )),
    }
}

fn parse_connection(name: &str, args: &[Vec<u8>]) -> Action {
    match name {
        "PING" if args.len() <= 2 => Action::Pong(args.get(1).cloned()),
        "PING" => arity_error(name),
        "ECHO" => Action::Echo(args[1].clone()),
        "QUIT" => Action::Quit,
        "MULTI" => Action::Multi,
        "EXEC" => Action::Exec,
        "DISCARD" => Action::Discard,
        "WATCH" => Action::Watch(args[1..].to_vec()),
        "UNWATCH" => Action::Unwatch,
        "READONLY" => Action::ReadOnly(true),
        "READWRITE" => Action::ReadOnly(false),
        "SELECT" if args.len() == 2 => match parse_db(&args[1], NOT_AN_INTEGER) {
            Ok(db) => Action::Select(db),
            Err(error) => error,
        },
        "SELECT" => arity_error(name),
        "AUTH" if args.len() <= 3 => Action::Auth(args[args.len() - 1].clone()),
        "AUTH" => Action::Error("ERR syntax error".into()),
        "INFO" => Action::Info(
            (args[1..].iter())
                .map(|s| String::from_utf8_lossy(s).to_lowercase())
                .collect(),
        ),
        "HELLO" => parse_hello(args),
        "CLIENT" => parse_client(args),
        "COMMAND" => match args.get(1).map(|a| text(a)).as_deref() {
            Some("COUNT") => Action::CommandCount,
            _ => Action::EmptyArray,
        },
        "CONFIG" => parse_config(args),
        "FUNCTION" => match text(&args[1]).as_str() {
            // There are no functions: flushing them all is done at once.
            "FLUSH"
                if args.len() == 2
                    || (args.len() == 3 && FLUSH_MODES.contains(&text(&args[2]).as_str())) =>
            {
                Action::Ok
            }
            "FLUSH" => Action::Error("ERR syntax error".into()),
            _ => unknown_subcommand(&args[1], "FUNCTION"),
        },
        "DEBUG" => Action::Error(DEBUG_REFUSED.into()),
        _ => unreachable!("every named command is handled: {name}"),
    }
}

const FLUSH_MODES: [&str; 2] = ["ASYNC", "SYNC"];
/// Redis's answer while `enable-debug-command` is off (its default); keyspace has no DEBUG.
const DEBUG_REFUSED: &str = "ERR DEBUG command not allowed. If the enable-debug-command option \
    is set to \"local\", you can run it from a local connection, otherwise you need to set this \
    option in the configuration file, and then restart the server.";

fn unknown_subcommand(sub: &[u8], command: &str) -> Action {
    Action::Error(format!(
        "ERR unknown subcommand '{}'. Try {command} HELP.",
        String::from_utf8_lossy(sub)
    ))
}

/// `CONFIG GET param`; `CONFIG SET` has no parameter to set here, and answers as Redis does
/// for one it does not know.
fn parse_config(args: &[Vec<u8>]) -> Action {
    match (text(&args[1]).as_str(), args.get(2)) {
        ("GET", Some(param)) => Action::ConfigGet(String::from_utf8_lossy(param).to_lowercase()),
        ("SET", Some(param)) => Action::Error(format!(
            "ERR Unknown option or number of arguments for CONFIG SET - '{}'",
            String::from_utf8_lossy(param)
        )),
        ("GET" | "SET", None) => Action::Error(format!(
            "ERR wrong number of arguments for 'config|{}' command",
            String::from_utf8_lossy(&args[1]).to_lowercase()
        )),
        _ => unknown_subcommand(&args[1], "CONFIG"),
    }
}

fn parse_hello(args: &[Vec<u8>]) -> Action {
    let mut protocol = None;
    let mut auth = None;
    let mut name = None;
    let mut i = 1;
    if let Some(version) = args.get(1) {
        match parse_i64(version) {
            Some(v @ 2..=3) => protocol = Some(v as u8),
            _ => return Action::Error("NOPROTO unsupported protocol version".into()),
        }
        i = 2;
    }
    while i < args.len() {
        match (text(&args[i]).as_str(), args.len() - i) {
            ("AUTH", 3..) => {
                auth = Some(args[i + 2].clone());
                i += 3;
            }
            ("SETNAME", 2..) => {
                name = Some(args[i + 1].clone());
                i += 2;
            }
            _ => return Action::Error("ERR syntax error in HELLO option".into()),
        }
    }
    Action::Hello {
        protocol,
        auth,
        name,
    }
}

fn parse_client(args: &[Vec<u8>]) -> Action {
    match (text(&args[1]).as_str(), args.len()) {
        ("SETNAME", 3) => Action::ClientSetName(args[2].clone()),
        ("GETNAME", 2) => Action::ClientGetName,
        ("ID", 2) => Action::ClientId,
        ("SETINFO", 4) => Action::Ok,
        _ => Action::Error(
            "ERR unknown or malformed CLIENT subcommand (SETNAME, GETNAME, ID)".into(),
        ),
    }
}

/// Carries out `action` on `conn` and writes its reply.
pub async fn run(action: Action, conn: &mut Connection<'_>, out: &mut Vec<u8>) {
    match action {
        Action::Store { commands, shape } => run_store(commands, shape, conn, out).await,
        Action::RandomKey => {
            let command = Command::RandomKey {
                seed: crate::random::<u64>(),
            };
            run_store(vec![command], Shape::Plain, conn, out).await
        }
        Action::Info(section) => {
            let info = info_text(conn, &section).await;
            Writer {
                out,
                resp3: conn.resp3,
            }
            .text(&info);
        }
        Action::MemberList => {
            let mut w = Writer {
                out,
                resp3: conn.resp3,
            };
            match conn.status().await {
                Some(status) => {
                    w.array(status.members.len());
                    for row in &status.members {
                        w.bulk(
                            member_line(row, status.node_id, conn.context.client_addr).as_bytes(),
                        );
                    }
                }
                None => w.error("TRYAGAIN the replica is shutting down"),
            }
        }
        Action::Hello {
            protocol,
            auth,
            name,
        } => run_hello(protocol, auth, name, conn, out).await,
        other => run_local(
            other,
            conn,
            &mut Writer {
                out,
                resp3: conn.resp3,
            },
        ),
    }
}

fn run_local(action: Action, conn: &mut Connection<'_>, w: &mut Writer<'_>) {
    match action {
        Action::Error(text) => w.error(&text),
        Action::Ok => w.simple("OK"),
        Action::Pong(None) => w.simple("PONG"),
        Action::Pong(Some(msg)) | Action::Echo(msg) => w.bulk(&msg),
        Action::Auth(password) => match check_password(conn, &password) {
            Ok(()) => w.simple("OK"),
            Err(text) => w.error(text),
        },
        Action::ClientSetName(name) => {
            conn.name = Some(name);
            w.simple("OK");
        }
        Action::ClientGetName => match &conn.name {
            Some(name) => w.bulk(name),
            None => w.null(),
        },
        Action::ClientId => w.int(conn.id as i64),
        Action::CommandCount => w.int(COMMAND_NAMES_COUNT),
        Action::EmptyArray => w.array(0),
        Action::ConfigGet(param) => match param.as_str() {
            "save" => config_pair(w, "save", ""),
            "appendonly" => config_pair(w, "appendonly", "yes"),
            "appendfsync" => config_pair(w, "appendfsync", "always"),
            _ => w.map(0),
        },
        Action::ReadOnly(on) => {
            conn.readonly = on;
            w.simple("OK");
        }
        Action::Select(db) => {
            conn.db = db;
            w.simple("OK");
        }
        Action::Quit => {
            conn.quit = true;
            w.simple("OK");
        }
        Action::MemberFounders => {
            w.array(conn.context.founders.len());
            for (id, addr) in &conn.context.founders {
                w.bulk(format!("id={id} peer_addr={addr}").as_bytes());
            }
        }
        Action::Store { .. }
        | Action::Info(_)
        | Action::MemberList
        | Action::Hello { .. }
        | Action::RandomKey
        | Action::Multi
        | Action::Exec
        | Action::Discard
        | Action::Watch(_)
        | Action::Unwatch => {
            unreachable!("handled in run")
        }
    }
}

const COMMAND_NAMES_COUNT: i64 = COMMANDS.len() as i64;

/// One `MEMBER LIST` entry: `field=value` pairs separated by spaces; an address the
/// configuration does not carry is `-`, and so is how far behind a member is off the master.
pub fn member_line(row: &MemberRow, me: NodeId, my_client_addr: std::net::SocketAddr) -> String {
    let or_dash = |addr: &str| match addr {
        "" => "-".to_string(),
        addr => addr.to_string(),
    };
    let client_addr = match (row.client_addr.as_str(), row.id == me) {
        ("", true) => my_client_addr.to_string(),
        (addr, _) => or_dash(addr),
    };
    let connected = match row.connected {
        None => "self",
        Some(true) => "yes",
        Some(false) => "no",
    };
    let behind = row.behind_slots.map_or("-".to_string(), |n| n.to_string());
    format!(
        "id={} peer_addr={} client_addr={client_addr} kind={} connected={connected} behind_slots={behind}",
        row.id,
        or_dash(&row.peer_addr),
        row.kind
    )
}

fn config_pair(w: &mut Writer<'_>, name: &str, value: &str) {
    w.map(1);
    w.bulk(name.as_bytes());
    w.bulk(value.as_bytes());
}

fn check_password(conn: &mut Connection<'_>, given: &[u8]) -> Result<(), &'static str> {
    let Some(expected) = &conn.context.password else {
        return Err("ERR AUTH called without any password configured for the default user");
    };
    // Compare digests: constant time whatever the lengths.
    if blake3::hash(expected.as_bytes()) == blake3::hash(given) {
        conn.authenticated = true;
        Ok(())
    } else {
        Err("WRONGPASS invalid username-password pair or user is disabled.")
    }
}

async fn run_hello(
    protocol: Option<u8>,
    auth: Option<Vec<u8>>,
    name: Option<Vec<u8>>,
    conn: &mut Connection<'_>,
    out: &mut Vec<u8>,
) {
    if let Some(password) = auth {
        if let Err(text) = check_password(conn, &password) {
            return Writer {
                out,
                resp3: conn.resp3,
            }
            .error(text);
        }
    }
    if !conn.authenticated {
        return Writer { out, resp3: conn.resp3 }.error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
    }
    if let Some(protocol) = protocol {
        conn.resp3 = protocol == 3;
    }
    if name.is_some() {
        conn.name = name;
    }
    let role = match conn.status().await.map(|s| s.role) {
        Some(Role::Master) => "master",
        _ => "replica",
    };
    let mut w = Writer {
        out,
        resp3: conn.resp3,
    };
    w.map(7);
    for (field, value) in [("server", "redis"), ("version", "7.0.0")] {
        w.bulk(field.as_bytes());
        w.bulk(value.as_bytes());
    }
    w.bulk(b"proto");
    w.int(if conn.resp3 { 3 } else { 2 });
    w.bulk(b"id");
    w.int(conn.id as i64);
    for (field, value) in [("mode", "standalone"), ("role", role)] {
        w.bulk(field.as_bytes());
        w.bulk(value.as_bytes());
    }
    w.bulk(b"modules");
    w.array(0);
}

async fn run_store(
    commands: Vec<Command>,
    shape: Shape,
    conn: &mut Connection<'_>,
    out: &mut Vec<u8>,
) {
    let mut replies = Vec::with_capacity(commands.len());
    for command in commands {
        match conn.submit(command).await {
            Ok(reply) => replies.push(reply),
            Err(failure) => {
                return write_failure(
                    &failure,
                    &mut Writer {
                        out,
                        resp3: conn.resp3,
                    },
                )
            }
        }
    }
    let mut w = Writer {
        out,
        resp3: conn.resp3,
    };
    write_replies(&replies, shape, &mut w);
}

/// The replies of one action's store commands, shown as `shape` says.
pub(crate) fn write_replies(replies: &[Reply], shape: Shape, w: &mut Writer<'_>) {
    let single = replies.len() == 1 && shape != Shape::Array;
    if shape == Shape::Exists {
        return w.int(replies.iter().map(keys_found).sum());
    }
    if let [reply @ (Reply::Value(_) | Reply::Ok)] = replies {
        if shape != Shape::Plain && shape != Shape::Array {
            return write_shaped(reply, shape, w);
        }
    }
    if !single {
        w.array(replies.len());
    }
    for reply in replies {
        write_reply(reply, w);
    }
}

/// A single reply of one of the shapes that change how a value is shown.
fn write_shaped(reply: &Reply, shape: Shape, w: &mut Writer<'_>) {
    let value = match reply {
        Reply::Value(value) => value.as_deref(),
        _ => None,
    };
    match (shape, value) {
        (Shape::Type, Some(_)) => w.simple("string"),
        (Shape::Type, None) => w.simple("none"),
        (Shape::Ttl, Some(_)) => w.int(-1),
        (Shape::Ttl, None) => w.int(-2),
        (Shape::SetNx, _) => w.int(i64::from(*reply == Reply::Ok)),
        (Shape::Strlen, value) => w.int(value.map_or(0, <[u8]>::len) as i64),
        (Shape::Range { start, end }, value) => {
            w.bulk(value_range(value.unwrap_or_default(), start, end))
        }
        (Shape::Plain | Shape::Array | Shape::Exists, _) => unreachable!("not a shaped reply"),
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

pub(crate) fn write_failure(failure: &Failure, w: &mut Writer<'_>) {
    match failure {
        Failure::Invalid(error) => w.error(&format!("ERR {error}")),
        Failure::Unavailable => w.error(
            "TRYAGAIN no master answered in time (a write may or may not have been applied); retry",
        ),
        Failure::Witness { master } => w.error(&crate::connection::witness_refusal(master)),
    }
}

pub fn write_reply(reply: &Reply, w: &mut Writer<'_>) {
    match reply {
        Reply::Ok => w.simple("OK"),
        Reply::Value(Some(value)) => w.bulk(value),
        Reply::Value(None) => w.null(),
        Reply::Bool(b) => w.int(*b as i64),
        Reply::Int(n) => w.int(*n),
        Reply::Keys(keys) => {
            w.array(keys.len());
            for key in keys {
                w.bulk(key);
            }
        }
        Reply::Values(values) => {
            w.array(values.len());
            for value in values {
                match value {
                    Some(value) => w.bulk(value),
                    None => w.null(),
                }
            }
        }
        Reply::KeyValues(pairs) => {
            w.array(2 * pairs.len());
            for (key, value) in pairs {
                w.bulk(key);
                w.bulk(value);
            }
        }
        Reply::Scan { cursor, keys } => {
            w.array(2);
            w.bulk(cursor.to_string().as_bytes());
            w.array(keys.len());
            for key in keys {
                w.bulk(key);
            }
        }
        Reply::Error(CommandError::NotAnInteger) => w.error(NOT_AN_INTEGER),
        Reply::Error(error) => w.error(&format!("ERR {error}")),
        Reply::Watched { .. } => w.simple("OK"),
        Reply::Transaction(replies) => write_plain_exec(replies.as_deref(), w),
    }
}

async fn info_text(conn: &Connection<'_>, wanted: &[String]) -> String {
    let context = conn.context;
    let status = conn.status().await;
    let uptime = context.started.elapsed().as_secs();
    let mut sections: Vec<(&str, String)> = vec![(
        "server",
        format!(
            "redis_version:7.0.0\r\nkeyspace_version:{}\r\nredis_mode:standalone\r\nos:{}\r\narch_bits:64\r\nprocess_id:{}\r\ntcp_port:{}\r\nuptime_in_seconds:{uptime}\r\nuptime_in_days:{}\r\n",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::OS,
            std::process::id(),
            context.client_addr.port(),
            uptime / 86_400,
        ),
    )];
    sections.push((
        "clients",
        format!(
            "connected_clients:{}\r\n",
            context.connections.load(Ordering::Relaxed)
        ),
    ));
    sections.push(("memory", format!("used_memory:{}\r\n", resident_bytes())));
    sections.push((
        "stats",
        format!(
            "total_connections_received:{}\r\ntotal_commands_processed:{}\r\n",
            context.total_connections.load(Ordering::Relaxed),
            context.commands_processed.load(Ordering::Relaxed),
        ),
    ));
    if let Some(s) = &status {
        sections.push((
            "persistence",
            format!(
                "aof_enabled:1\r\nlog_syncs:{}\r\nlog_records:{}\r\nlog_sync_us:{}\r\n\
                 log_syncs_off_loop:{}\r\nlog_sync_recent_us:{}\r\n",
                s.log_syncs,
                s.log_records,
                s.log_sync_us,
                s.log_syncs_off_loop,
                s.log_sync_recent_us
            ),
        ));
        sections.push(("replication", replication_text(s)));
    }
    sections.push(("cpu", cpu_text()));
    sections.push(("commandstats", commandstats_text(context)));
    sections.push(("cluster", "cluster_enabled:0\r\n".to_string()));
    if let Some(s) = &status {
        sections.push(("keyspace", keyspace_text(&s.keys_per_db)));
    }
    let mut text = String::new();
    for (name, body) in sections.iter().filter(|(name, _)| info_wants(wanted, name)) {
        let mut title = name.to_string();
        title[..1].make_ascii_uppercase();
        text.push_str(&format!("# {title}\r\n{body}\r\n"));
    }
    text
}

/// Whether `INFO` with these arguments (lower case) shows `section`: no argument or `default`
/// shows all but `commandstats`; `all` and `everything` show every section.
fn info_wants(wanted: &[String], section: &str) -> bool {
    let default = section != "commandstats";
    if wanted.is_empty() {
        return default;
    }
    wanted.iter().any(|w| match w.as_str() {
        "all" | "everything" => true,
        "default" => default,
        named => named == section,
    })
}

/// The process's resident memory in bytes (Linux; 0 elsewhere): what `used_memory` shows, since
/// the store does not count its data's bytes apart.
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf only reads a configuration value.
    let page_bytes = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * u64::try_from(page_bytes).unwrap_or(4096)
}

fn cpu_text() -> String {
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let usage = |who| {
        // SAFETY: getrusage writes one rusage into the zeroed value it is given.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(who, &mut usage) };
        (seconds(usage.ru_stime), seconds(usage.ru_utime))
    };
    let (sys, user) = usage(libc::RUSAGE_SELF);
    let (sys_children, user_children) = usage(libc::RUSAGE_CHILDREN);
    format!(
        "used_cpu_sys:{sys:.6}\r\nused_cpu_user:{user:.6}\r\nused_cpu_sys_children:{sys_children:.6}\r\nused_cpu_user_children:{user_children:.6}\r\n"
    )
}

fn commandstats_text(context: &crate::connection::ClientContext) -> String {
    let stats = context
        .command_stats
        .lock()
        .expect("no panic while counting");
    stats
        .iter()
        .map(|(name, s)| {
            let per_call = s.usec as f64 / s.calls.max(1) as f64;
            format!(
                "cmdstat_{}:calls={},usec={},usec_per_call={per_call:.2},rejected_calls={},failed_calls={}\r\n",
                name.to_lowercase(),
                s.calls,
                s.usec,
                s.rejected_calls,
                s.failed_calls
            )
        })
        .collect()
}

/// One line per database with keys, as Redis writes it.
fn keyspace_text(keys_per_db: &[usize]) -> String {
    let with_keys = keys_per_db.iter().enumerate().filter(|(_, &keys)| keys > 0);
    with_keys
        .map(|(db, keys)| format!("db{db}:keys={keys},expires=0,avg_ttl=0\r\n"))
        .collect()
}

fn replication_text(s: &Status) -> String {
    let (role, keyspace_role) = match s.role {
        Role::Master => ("master", "master"),
        Role::Recovering => ("master", "recovering"),
        Role::Follower => ("slave", "follower"),
    };
    let master = s.master.map_or("none".to_string(), |m| m.to_string());
    let lease = match s.lease_remaining_ms {
        Some(ms) => format!("lease_held:1\r\nlease_remaining_ms:{ms}\r\n"),
        None => "lease_held:0\r\n".to_string(),
    };
    format!(
        "role:{role}\r\nkeyspace_role:{keyspace_role}\r\nnode_id:{}\r\nconfig_epoch:{}\r\nmember_kind:{}\r\nmaster_id:{master}\r\nballot:{}\r\ncommit_index:{}\r\napplied_index:{}\r\n{lease}connected_peers:{}/{}\r\nsessions:{}\r\nrequests_served:{}\r\nstorage_recovering:{}\r\nmaster_repl_offset:{}\r\n",
        s.node_id, s.epoch, s.kind, s.ballot, s.chosen_through, s.applied_through, s.peers_connected, s.peers, s.sessions, s.requests_served, u8::from(s.storage_recovering), s.applied_through,
    )
}

/// A transaction's reply without the shapes of its commands (each plain).
pub fn write_plain_exec(replies: Option<&[Reply]>, w: &mut Writer<'_>) {
    match replies {
        None => write_null_array(w),
        Some(replies) => {
            w.array(replies.len());
            for reply in replies {
                write_reply(reply, w);
            }
        }
    }
}

/// A nil EXEC: a watched key changed.
fn write_null_array(w: &mut Writer<'_>) {
    let bytes: &[u8] = if w.resp3 { b"_\r\n" } else { b"*-1\r\n" };
    w.out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(parts: &[&str]) -> Vec<Vec<u8>> {
        parts.iter().map(|p| p.as_bytes().to_vec()).collect()
    }

    fn arity_accepts(parts: &[&str]) -> bool {
        let name = text(parts[0].as_bytes());
        arity_ok(&args(parts), arity_of(&name).expect("a known command"))
    }

    #[test]
    fn every_command_accepts_the_arguments_redis_gives_it() {
        let calls: &[&[&str]] = &[
            &["GET", "k"],
            &["DIRTYGET", "k"],
            &["SET", "k", "v"],
            &["DEL", "a", "b"],
            &["EXISTS", "a"],
            &["INCR", "k"],
            &["INCRBY", "k", "5"],
            &["DECR", "k"],
            &["DECRBY", "k", "5"],
            &["GETDEL", "k"],
            &["RENAME", "a", "b"],
            &["MGET", "a", "b"],
            &["MSET", "a", "1", "b", "2"],
            &["DBSIZE"],
            &["PING"],
            &["PING", "hi"],
            &["ECHO", "hi"],
            &["INFO"],
            &["INFO", "replication"],
            &["HELLO", "3"],
            &["AUTH", "secret"],
            &["CLIENT", "SETNAME", "n"],
            &["COMMAND"],
            &["COMMAND", "DOCS"],
            &["CONFIG", "GET", "save"],
            &["SELECT", "0"],
            &["READONLY"],
            &["READWRITE"],
            &["QUIT"],
            &["TESTANDSET", "k", "old", "new"],
            &["PRUNE", "p"],
            &["LISTKEYS", "p", "COUNT", "3"],
            &["LISTKEYVALUES", "p"],
            &["COUNT", "p"],
            &["TYPE", "k"],
            &["TTL", "k"],
            &["PTTL", "k"],
            &["MEMBER", "LIST"],
        ];
        for call in calls {
            assert!(arity_accepts(call), "{call:?} refused");
        }
    }

    #[test]
    fn set_expiry_options_are_refused_with_a_reason() {
        let refusal = parse_named("SET", &args(&["SET", "k", "v", "EX", "10"]));
        assert!(
            matches!(&refusal, Action::Error(e) if e.starts_with("ERR syntax error") && e.contains("EX")),
            "{refusal:?}"
        );
        assert!(!arity_accepts(&["SET", "k"]));
    }

    #[test]
    fn set_nx_xx_get_parse_as_conditional_sets() {
        let set_if = |condition, get| {
            store(Command::SetIf {
                key: b"k".to_vec(),
                value: b"v".to_vec(),
                condition,
                get,
            })
        };
        assert_eq!(
            parsed(&["SET", "k", "v", "nx"]),
            set_if(SetCondition::IfAbsent, false)
        );
        assert_eq!(
            parsed(&["SET", "k", "v", "XX", "GET"]),
            set_if(SetCondition::IfPresent, true)
        );
        assert_eq!(
            parsed(&["SET", "k", "v", "GET"]),
            set_if(SetCondition::Always, true)
        );
        assert_eq!(error_of(&["SET", "k", "v", "NX", "XX"]), "ERR syntax error");
        assert_eq!(error_of(&["SET", "k", "v", "FOO"]), "ERR syntax error");
        assert_eq!(
            parsed(&["GETSET", "k", "v"]),
            set_if(SetCondition::Always, true)
        );
    }

    #[test]
    fn getrange_follows_redis_index_rules() {
        let v = b"Hello World";
        assert_eq!(value_range(v, 0, 3), b"Hell");
        assert_eq!(value_range(v, -3, -1), b"rld");
        assert_eq!(value_range(v, 0, -1), v);
        assert_eq!(value_range(v, 5, 3), b"");
        assert_eq!(value_range(v, -1, -5), b"");
        assert_eq!(value_range(v, 0, 100), v);
        assert_eq!(value_range(v, -100, 2), b"Hel");
        assert_eq!(value_range(b"", 0, -1), b"");
        assert_eq!(
            error_of(&["GETRANGE", "k", "a", "1"]),
            "ERR value is not an integer or out of range"
        );
    }

    #[test]
    fn exists_counts_every_key_named_from_one_read() {
        let action = parse_named("EXISTS", &args(&["EXISTS", "a", "b", "a"]));
        let Action::Store {
            commands,
            shape: Shape::Exists,
        } = action
        else {
            panic!("{action:?}");
        };
        assert_eq!(
            commands,
            [Command::MultiGet {
                keys: vec![b"a".to_vec(), b"b".to_vec(), b"a".to_vec()]
            }]
        );
        let reply = Reply::Values(vec![Some(b"1".to_vec()), None, Some(b"1".to_vec())]);
        assert_eq!(keys_found(&reply), 2);
    }

    #[test]
    fn mget_is_one_read_of_every_key() {
        assert_eq!(
            parse_named("MGET", &args(&["MGET", "a", "b"])),
            store(Command::MultiGet {
                keys: vec![b"a".to_vec(), b"b".to_vec()]
            })
        );
    }

    #[test]
    fn del_of_several_keys_is_one_command() {
        assert_eq!(
            parse_named("DEL", &args(&["DEL", "a", "b", "a"])),
            store(Command::MultiDelete {
                keys: vec![b"a".to_vec(), b"b".to_vec(), b"a".to_vec()]
            })
        );
        assert_eq!(
            parse_named("DEL", &args(&["DEL", "a"])),
            store(Command::MultiDelete {
                keys: vec![b"a".to_vec()]
            })
        );
    }

    #[test]
    fn the_command_table_names_each_command_once_in_upper_case() {
        let names: std::collections::BTreeSet<_> = COMMANDS.iter().map(|(n, _)| *n).collect();
        assert_eq!(names.len(), COMMANDS.len(), "a name is listed twice");
        for name in names {
            assert_eq!(
                name,
                name.to_uppercase(),
                "parse looks names up in upper case"
            );
        }
        assert!(arity_of("SETRANGE").is_none());
    }

    fn parsed(parts: &[&str]) -> Action {
        parse_named(&text(parts[0].as_bytes()), &args(parts))
    }

    fn error_of(parts: &[&str]) -> String {
        match parsed(parts) {
            Action::Error(e) => e,
            other => panic!("{parts:?} parsed as {other:?}"),
        }
    }

    #[test]
    fn select_takes_databases_0_to_15_with_redis_errors_for_others() {
        assert_eq!(parsed(&["SELECT", "9"]), Action::Select(9));
        assert_eq!(parsed(&["SELECT", "15"]), Action::Select(15));
        assert_eq!(error_of(&["SELECT", "16"]), "ERR DB index is out of range");
        assert_eq!(error_of(&["SELECT", "-1"]), "ERR DB index is out of range");
        assert_eq!(
            error_of(&["SELECT", "x"]),
            "ERR value is not an integer or out of range"
        );
    }

    #[test]
    fn database_commands_parse_with_redis_errors() {
        assert_eq!(parsed(&["FLUSHALL"]), store(Command::FlushAll));
        assert_eq!(parsed(&["flushdb", "async"]), store(Command::FlushDb));
        assert_eq!(error_of(&["FLUSHALL", "foo"]), "ERR syntax error");
        assert_eq!(
            parsed(&["SWAPDB", "1", "2"]),
            store(Command::SwapDb { a: 1, b: 2 })
        );
        assert_eq!(
            error_of(&["SWAPDB", "x", "1"]),
            "ERR invalid first DB index"
        );
        assert_eq!(
            error_of(&["SWAPDB", "1", "x"]),
            "ERR invalid second DB index"
        );
        assert_eq!(
            error_of(&["SWAPDB", "1", "16"]),
            "ERR DB index is out of range"
        );
        assert_eq!(
            parsed(&["MOVE", "k", "3"]),
            store(Command::Move {
                key: b"k".to_vec(),
                to: 3
            })
        );
        assert_eq!(
            error_of(&["MOVE", "k", "16"]),
            "ERR DB index is out of range"
        );
        assert_eq!(parsed(&["RANDOMKEY"]), Action::RandomKey);
    }

    #[test]
    fn scan_parses_cursor_match_count_and_type_with_redis_errors() {
        assert_eq!(
            parsed(&["SCAN", "17", "MATCH", "a*", "COUNT", "5", "TYPE", "string"]),
            store(Command::Scan {
                cursor: 17,
                pattern: Some(b"a*".to_vec()),
                count: 5,
                type_name: Some(b"string".to_vec()),
            })
        );
        assert_eq!(
            parsed(&["SCAN", "0"]),
            store(Command::Scan {
                cursor: 0,
                pattern: None,
                count: 10,
                type_name: None,
            })
        );
        assert_eq!(error_of(&["SCAN", "x"]), "ERR invalid cursor");
        assert_eq!(error_of(&["SCAN", "0", "COUNT", "0"]), "ERR syntax error");
        assert_eq!(
            error_of(&["SCAN", "0", "COUNT", "x"]),
            "ERR value is not an integer or out of range"
        );
        assert_eq!(error_of(&["SCAN", "0", "MATCH"]), "ERR syntax error");
        assert_eq!(error_of(&["SCAN", "0", "FOO", "1"]), "ERR syntax error");
    }

    #[test]
    fn the_test_harness_preconditions_answer_as_redis_does() {
        assert_eq!(parsed(&["FUNCTION", "FLUSH"]), Action::Ok);
        assert_eq!(
            error_of(&["FUNCTION", "LOAD", "x"]),
            "ERR unknown subcommand 'LOAD'. Try FUNCTION HELP."
        );
        assert_eq!(
            error_of(&["CONFIG", "SET", "foo", "bar"]),
            "ERR Unknown option or number of arguments for CONFIG SET - 'foo'"
        );
        assert!(error_of(&["DEBUG", "LOG", "x"]).starts_with("ERR DEBUG command not allowed."));
    }

    #[test]
    fn info_shows_default_sections_or_those_named() {
        let wanted =
            |args: &[&str]| -> Vec<String> { args.iter().map(|a| a.to_string()).collect() };
        assert!(info_wants(&wanted(&[]), "cpu"));
        assert!(!info_wants(&wanted(&[]), "commandstats"));
        assert!(!info_wants(&wanted(&["default"]), "commandstats"));
        assert!(info_wants(&wanted(&["all"]), "commandstats"));
        assert!(info_wants(&wanted(&["cpu", "sentinel"]), "cpu"));
        assert!(!info_wants(&wanted(&["cpu", "sentinel"]), "memory"));
        assert!(info_wants(&wanted(&["cpu", "default"]), "memory"));
        assert!(cpu_text().contains("used_cpu_user:"));
    }

    #[test]
    fn info_keyspace_lists_each_database_with_keys() {
        let mut keys = vec![0; 16];
        assert_eq!(keyspace_text(&keys), "");
        keys[0] = 3;
        keys[9] = 1;
        assert_eq!(
            keyspace_text(&keys),
            "db0:keys=3,expires=0,avg_ttl=0\r\ndb9:keys=1,expires=0,avg_ttl=0\r\n"
        );
    }

    #[test]
    fn echo_answers_its_one_argument_and_refuses_any_other_count() {
        assert_eq!(
            parse_named("ECHO", &args(&["ECHO", "hi"])),
            Action::Echo(b"hi".to_vec())
        );
        assert!(!arity_accepts(&["ECHO"]));
        assert!(!arity_accepts(&["ECHO", "a", "b"]));
    }

    fn member(parts: &[&str]) -> Action {
        let mut all = vec!["MEMBER"];
        all.extend_from_slice(parts);
        let conn = ConnectionFlags {
            authenticated: true,
            in_multi: false,
            readonly: false,
        };
        parse(&args(&all), conn)
    }

    fn is_error_naming(action: &Action, needle: &str) -> bool {
        matches!(action, Action::Error(text) if text.starts_with("ERR ") && text.contains(needle))
    }

    #[test]
    fn member_add_is_a_change_through_the_log_and_a_learner_by_default() {
        let learner = Change::Add {
            id: 4,
            peer_addr: "127.0.0.1:7004".into(),
            client_addr: "127.0.0.1:6304".into(),
            kind: MemberKind::Full,
        };
        assert_eq!(
            member(&["ADD", "4", "127.0.0.1:7004", "127.0.0.1:6304"]),
            store(Command::Member(learner.clone()))
        );
        assert_eq!(
            member(&["add", "4", "127.0.0.1:7004", "127.0.0.1:6304", "learner"]),
            store(Command::Member(learner))
        );
        let witness = member(&["ADD", "5", "127.0.0.1:7005", "127.0.0.1:6305", "WITNESS"]);
        assert!(matches!(
            witness,
            Action::Store { commands, .. }
                if matches!(&commands[..], [Command::Member(Change::Add { id: 5, kind: MemberKind::Witness, .. })])
        ));
    }

    #[test]
    fn member_promote_and_remove_name_one_replica_by_id() {
        assert_eq!(
            member(&["PROMOTE", "4"]),
            store(Command::Member(Change::Promote { id: 4 }))
        );
        assert_eq!(
            member(&["remove", "2"]),
            store(Command::Member(Change::Remove { id: 2 }))
        );
        assert_eq!(member(&["LIST"]), Action::MemberList);
        assert_eq!(member(&["founders"]), Action::MemberFounders);
    }

    #[test]
    fn member_commands_with_bad_arguments_are_refused_with_the_reason() {
        assert!(is_error_naming(
            &member(&["PROMOTE", "0"]),
            "invalid replica id '0'"
        ));
        assert!(is_error_naming(
            &member(&["REMOVE", "65536"]),
            "invalid replica id"
        ));
        assert!(is_error_naming(
            &member(&["REMOVE", "x"]),
            "invalid replica id 'x'"
        ));
        let bad_peer = member(&["ADD", "4", "nohost", "127.0.0.1:6304"]);
        assert!(is_error_naming(&bad_peer, "invalid peer address 'nohost'"));
        let bad_client = member(&["ADD", "4", "127.0.0.1:7004", "127.0.0.1:0"]);
        assert!(is_error_naming(&bad_client, "invalid client address"));
        let bad_kind = member(&["ADD", "4", "127.0.0.1:7004", "127.0.0.1:6304", "VOTER"]);
        assert!(is_error_naming(&bad_kind, "unknown member kind 'VOTER'"));
        for wrong in [&["LIST", "x"][..], &["PROMOTE"], &["ADD", "4"], &["SHOW"]] {
            assert!(
                is_error_naming(&member(wrong), "usage: MEMBER LIST"),
                "{wrong:?}"
            );
        }
        assert!(matches!(
            member(&[]),
            Action::Error(text) if text == "ERR wrong number of arguments for 'member' command"
        ));
    }

    #[test]
    fn member_list_line_shows_unknown_fields_as_dashes_and_fills_in_its_own_client_address() {
        let me: std::net::SocketAddr = "127.0.0.1:6301".parse().unwrap();
        let row = |id, connected, behind_slots| MemberRow {
            id,
            peer_addr: format!("127.0.0.1:700{id}"),
            client_addr: String::new(),
            kind: "voter",
            connected,
            behind_slots,
        };
        assert_eq!(
            member_line(&row(1, None, Some(0)), 1, me),
            "id=1 peer_addr=127.0.0.1:7001 client_addr=127.0.0.1:6301 kind=voter connected=self behind_slots=0"
        );
        assert_eq!(
            member_line(&row(2, Some(false), None), 1, me),
            "id=2 peer_addr=127.0.0.1:7002 client_addr=- kind=voter connected=no behind_slots=-"
        );
    }
}
