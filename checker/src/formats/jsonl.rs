//! The project's JSON-lines history format (specified in the crate README).

use super::LineError;
use crate::history::{End, Recorded};
use keyspace_core::{Command, CommandError, ExpireName, Reply, SetCondition};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::io::{self, Write};

/// Name and version in the optional first line.
pub const FORMAT_NAME: &str = "keyspace-history";
pub const FORMAT_VERSION: u64 = 1;

/// Writes the header line, then every event in time order (an invoke before a completion at the
/// same instant).
pub fn write(ops: &[Recorded], out: &mut impl io::Write) -> io::Result<()> {
    let mut events: Vec<(u64, u8, usize)> = Vec::with_capacity(2 * ops.len());
    for (id, op) in ops.iter().enumerate() {
        events.push((op.invoke_ns, 0, id));
        match op.end {
            End::Ok { at_ns, .. } | End::Fail { at_ns } => events.push((at_ns, 1, id)),
            End::Unknown => {}
        }
    }
    events.sort_unstable();
    let mut out = io::BufWriter::new(out);
    writeln!(
        out,
        "{}",
        json!({"format": FORMAT_NAME, "version": FORMAT_VERSION})
    )?;
    for (_, class, id) in events {
        let op = &ops[id];
        let line = if class == 0 {
            invoke_line(id, op)
        } else {
            end_line(id, &op.end)
        };
        serde_json::to_writer(&mut out, &line)?;
        out.write_all(b"\n")?;
    }
    for (id, op) in ops.iter().enumerate() {
        if op.end == End::Unknown {
            writeln!(out, "{}", json!({"ev": "unknown", "id": id}))?;
        }
    }
    out.flush()
}

fn invoke_line(id: usize, op: &Recorded) -> Value {
    let mut line = Map::new();
    line.insert("ev".into(), "invoke".into());
    line.insert("id".into(), id.into());
    line.insert("client".into(), op.client.into());
    line.insert("t".into(), op.invoke_ns.into());
    let (db, command) = op.command.db_and_command();
    if db != 0 {
        line.insert("db".into(), db.into());
    }
    let (name, fields) = command_fields(command);
    line.insert("cmd".into(), name.into());
    for (field, value) in fields {
        line.insert(field.into(), value);
    }
    Value::Object(line)
}

/// A command's name and fields (of a command in database 0, or unwrapped from its database).
fn command_fields(command: &Command) -> (&'static str, Vec<(&'static str, Value)>) {
    let b = |bytes: &[u8]| Value::String(encode_bytes(bytes));
    let opt = |bytes: &Option<Vec<u8>>| bytes.as_deref().map_or(Value::Null, b);
    match command {
        Command::Get { key } => ("get", vec![("key", b(key))]),
        Command::Member(change) => ("member", vec![("change", format!("{change:?}").into())]),
        Command::DirtyGet { key } => ("dirty-get", vec![("key", b(key))]),
        Command::Set { key, value } => ("set", vec![("key", b(key)), ("value", b(value))]),
        Command::TestAndSet { key, expected, new } => (
            "test-and-set",
            vec![("key", b(key)), ("expected", b(expected)), ("new", b(new))],
        ),
        Command::Add { key, delta } => ("add", vec![("key", b(key)), ("delta", (*delta).into())]),
        Command::Delete { key } => ("delete", vec![("key", b(key))]),
        Command::Remove { key } => ("remove", vec![("key", b(key))]),
        Command::Rename { from, to } => ("rename", vec![("from", b(from)), ("to", b(to))]),
        Command::Prune { prefix } => ("prune", vec![("prefix", b(prefix))]),
        Command::MultiSet { pairs } => ("multi-set", vec![("pairs", pairs_value(pairs))]),
        Command::MultiDelete { keys } => (
            "multi-delete",
            vec![("keys", keys.iter().map(|k| b(k)).collect())],
        ),
        Command::MultiGet { keys } => (
            "multi-get",
            vec![("keys", keys.iter().map(|k| b(k)).collect())],
        ),
        Command::Count { prefix } => ("count", vec![("prefix", b(prefix))]),
        Command::ListKeys {
            prefix,
            start,
            count,
        } => ("list-keys", list_fields(prefix, start, count)),
        Command::ListKeyValues {
            prefix,
            start,
            count,
        } => ("list-keyvalues", list_fields(prefix, start, count)),
        Command::OpenSession => ("open-session", vec![]),
        Command::FlushDb => ("flush-db", vec![]),
        Command::FlushAll => ("flush-all", vec![]),
        Command::SwapDb { a, b } => ("swap-db", vec![("a", (*a).into()), ("b", (*b).into())]),
        Command::Move { key, to } => ("move", vec![("key", b(key)), ("to", (*to).into())]),
        Command::Keys { pattern } => ("keys", vec![("pattern", b(pattern))]),
        Command::Scan {
            cursor,
            pattern,
            count,
            type_name,
        } => (
            "scan",
            vec![
                ("cursor", (*cursor).into()),
                ("pattern", opt(pattern)),
                ("count", (*count).into()),
                ("type", opt(type_name)),
            ],
        ),
        Command::RandomKey { seed } => ("random-key", vec![("seed", (*seed).into())]),
        Command::SetIf {
            key,
            value,
            condition,
            get,
        } => {
            let condition = match condition {
                SetCondition::Always => "always",
                SetCondition::IfAbsent => "if-absent",
                SetCondition::IfPresent => "if-present",
            };
            (
                "set-if",
                vec![
                    ("key", b(key)),
                    ("value", b(value)),
                    ("condition", condition.into()),
                    ("get", (*get).into()),
                ],
            )
        }
        Command::Append { key, value } => ("append", vec![("key", b(key)), ("value", b(value))]),
        Command::MultiSetIfAbsent { pairs } => {
            ("multi-set-if-absent", vec![("pairs", pairs_value(pairs))])
        }
        Command::InDb { .. } => unreachable!("unwrapped by the caller; never nested"),
        // Transactions nest commands: carried as serde's JSON of the whole command.
        // The string and bit writes too, in the same form.
        Command::Watch { .. }
        | Command::Transaction { .. }
        | Command::RenameIfAbsent { .. }
        | Command::Copy { .. }
        | Command::SetRange { .. }
        | Command::AddFloat { .. }
        | Command::SetBit { .. }
        | Command::BitOp { .. }
        // Expiry's options are nested too.
        | Command::SetExpiring { .. }
        | Command::Expire { .. }
        | Command::Persist { .. }
        | Command::GetEx { .. }
        | Command::TimeToLive { .. }
        | Command::Script(_)
        | Command::Describe { .. }
        | Command::HashSet { .. }
        | Command::HashDelete { .. }
        | Command::HashAdd { .. }
        | Command::HashAddFloat { .. }
        | Command::HashGet { .. }
        | Command::HashGetAll { .. }
        | Command::Cardinality { .. }
        | Command::SetAdd { .. }
        | Command::SetRemove { .. }
        | Command::SetMove { .. }
        | Command::SetStore { .. }
        | Command::SetPop { .. }
        | Command::SetMembers { .. }
        | Command::SetContains { .. }
        | Command::SetCombine { .. }
        | Command::Exists { .. }
        | Command::ZsetAdd { .. }
        | Command::ZsetRemove { .. }
        | Command::ZsetRemoveRange { .. }
        | Command::ZsetRange { .. }
        | Command::ZsetRangeStore { .. }
        | Command::ZsetScores { .. }
        | Command::ZsetRank { .. }
        | Command::ZsetPop { .. }
        | Command::ZsetCombine { .. }
        | Command::ZsetStore { .. }
        | Command::ListPush { .. }
        | Command::ListPop { .. }
        | Command::ListRange { .. }
        | Command::ListSet { .. }
        | Command::ListInsert { .. }
        | Command::ListRemove { .. }
        | Command::ListTrim { .. }
        | Command::ListMove { .. }
        | Command::Sort { .. }
        | Command::Publish { .. } => {
            let json = serde_json::to_value(command).expect("a command converts to JSON");
            ("as-json", vec![("command", json)])
        }
    }
}

fn list_fields(
    prefix: &[u8],
    start: &Option<Vec<u8>>,
    count: &Option<u64>,
) -> Vec<(&'static str, Value)> {
    vec![
        ("prefix", Value::String(encode_bytes(prefix))),
        (
            "start",
            start
                .as_deref()
                .map_or(Value::Null, |s| Value::String(encode_bytes(s))),
        ),
        ("count", count.map_or(Value::Null, Value::from)),
    ]
}

fn end_line(id: usize, end: &End) -> Value {
    match end {
        End::Fail { at_ns } => json!({"ev": "fail", "id": id, "t": at_ns}),
        End::Unknown => json!({"ev": "unknown", "id": id}),
        End::Ok { at_ns, reply } => {
            let mut line = Map::new();
            line.insert("ev".into(), "ok".into());
            line.insert("id".into(), id.into());
            line.insert("t".into(), (*at_ns).into());
            for (field, value) in reply_fields(reply) {
                line.insert(field.into(), value);
            }
            Value::Object(line)
        }
    }
}

fn reply_fields(reply: &Reply) -> Vec<(&'static str, Value)> {
    let s = |bytes: &[u8]| Value::String(encode_bytes(bytes));
    match reply {
        Reply::Ok => vec![("reply", "ok".into())],
        Reply::Value(value) => {
            vec![
                ("reply", "value".into()),
                ("value", value.as_deref().map_or(Value::Null, s)),
            ]
        }
        Reply::Bool(b) => vec![("reply", "bool".into()), ("bool", (*b).into())],
        Reply::Int(n) => vec![("reply", "int".into()), ("int", (*n).into())],
        Reply::Keys(keys) => {
            vec![
                ("reply", "keys".into()),
                ("keys", keys.iter().map(|k| s(k)).collect()),
            ]
        }
        Reply::Values(values) => {
            let shown = |v: &Option<Vec<u8>>| v.as_deref().map_or(Value::Null, s);
            vec![
                ("reply", "values".into()),
                ("values", values.iter().map(shown).collect()),
            ]
        }
        Reply::KeyValues(pairs) => {
            vec![
                ("reply", "keyvalues".into()),
                ("keyvalues", pairs_value(pairs)),
            ]
        }
        Reply::Watched { .. }
        | Reply::Transaction(_)
        | Reply::Resp(_)
        | Reply::Described { .. }
        | Reply::Popped { .. }
        | Reply::Error(CommandError::Sort(_)) => vec![
            ("reply", "as-json".into()),
            (
                "json",
                serde_json::to_value(reply).expect("a reply converts to JSON"),
            ),
        ],
        Reply::Scan { cursor, keys } => vec![
            ("reply", "scan".into()),
            ("cursor", (*cursor).into()),
            ("keys", keys.iter().map(|k| s(k)).collect()),
        ],
        Reply::Error(error) => {
            let mut fields = vec![("reply", "error".into())];
            let (name, extra) = match error {
                CommandError::KeyTooLarge { len } => ("key-too-large", Some(("len", *len as u64))),
                CommandError::ValueTooLarge { len } => {
                    ("value-too-large", Some(("len", *len as u64)))
                }
                CommandError::NotAnInteger => ("not-an-integer", None),
                CommandError::Overflow => ("overflow", None),
                CommandError::NoSuchKey => ("no-such-key", None),
                CommandError::MemberChange(_) => ("member-change", None),
                CommandError::StaleRequest { seq } => ("stale-request", Some(("seq", *seq))),
                CommandError::RequestTooLarge { len } => {
                    ("request-too-large", Some(("len", *len as u64)))
                }
                CommandError::DbOutOfRange => ("db-out-of-range", None),
                CommandError::SameObject => ("same-object", None),
                CommandError::NotPerDatabase => ("not-per-database", None),
                CommandError::TooManyKeys { limit } => {
                    ("too-many-keys", Some(("limit", *limit as u64)))
                }
                CommandError::NotInTransaction => ("not-in-transaction", None),
                CommandError::NotAFloat => ("not-a-float", None),
                CommandError::NanOrInfinity => ("nan-or-infinity", None),
                CommandError::StringTooLong => ("string-too-long", None),
                CommandError::BitOffsetOutOfRange => ("bit-offset-out-of-range", None),
                CommandError::BitOpNotArity => ("bitop-not-arity", None),
                CommandError::InvalidExpireTime(name) => {
                    let index = EXPIRE_NAMES.iter().position(|n| n == name);
                    let index = index.expect("every name is listed") as u64;
                    ("invalid-expire-time", Some(("name", index)))
                }
                CommandError::WrongType => ("wrong-type", None),
                CommandError::HashNotAnInteger => ("hash-not-an-integer", None),
                CommandError::HashNotAFloat => ("hash-not-a-float", None),
                CommandError::ScoreNan => ("score-nan", None),
                CommandError::IndexOutOfRange => ("index-out-of-range", None),
                CommandError::Sort(_) => unreachable!("SORT's refusal is written as JSON"),
            };
            fields.push(("error", name.into()));
            fields.extend(extra.map(|(field, n)| (field, Value::from(n))));
            fields
        }
    }
}

/// Key-value pairs as a JSON array of `[key, value]` arrays.
fn pairs_value(pairs: &[(Vec<u8>, Vec<u8>)]) -> Value {
    let s = |bytes: &[u8]| Value::String(encode_bytes(bytes));
    pairs
        .iter()
        .map(|(k, v)| Value::Array(vec![s(k), s(v)]))
        .collect()
}

/// Bytes as a JSON string: UTF-8 text as it is, except `%`, which is written `%25`, and every
/// byte that is not part of valid UTF-8, which is written `%XX` (two upper-case hex digits).
pub fn encode_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '%' {
                out.push_str("%25");
            } else {
                out.push(c);
            }
        }
        for byte in chunk.invalid() {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The inverse of [`encode_bytes`].
pub fn decode_bytes(text: &str) -> Result<Vec<u8>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%' {
            let hex = bytes
                .get(at + 1..at + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            let byte = hex.and_then(|h| u8::from_str_radix(h, 16).ok());
            out.push(byte.ok_or_else(|| format!("bad %-escape in {text:?}"))?);
            at += 3;
        } else {
            out.push(bytes[at]);
            at += 1;
        }
    }
    Ok(out)
}

/// Reads a history written by [`write`] (or by anything that follows the format).
pub fn parse(text: &str) -> Result<Vec<Recorded>, LineError> {
    let mut ops: Vec<Recorded> = Vec::new();
    let mut index_of: HashMap<u64, usize> = HashMap::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        let err = |message: String| LineError::new(number, message);
        let value: Value = serde_json::from_str(line).map_err(|e| err(format!("not JSON: {e}")))?;
        let Value::Object(event) = value else {
            return Err(err("expected a JSON object".into()));
        };
        if event.contains_key("format") {
            check_header(&event).map_err(err)?;
            continue;
        }
        let kind = string(&event, "ev").map_err(err)?;
        let id = uint(&event, "id").map_err(err)?;
        if kind == "invoke" {
            if index_of.insert(id, ops.len()).is_some() {
                return Err(err(format!("operation {id} invoked twice")));
            }
            ops.push(invoke(&event).map_err(err)?);
            continue;
        }
        let op = index_of
            .get(&id)
            .map(|&i| &mut ops[i])
            .ok_or_else(|| err(format!("operation {id} was never invoked")))?;
        if op.end != End::Unknown {
            return Err(err(format!("operation {id} completed twice")));
        }
        op.end = end(&kind, &event).map_err(err)?;
        if let End::Ok { at_ns, .. } | End::Fail { at_ns } = op.end {
            if at_ns < op.invoke_ns {
                return Err(err(format!("operation {id} completes before its invoke")));
            }
        }
    }
    Ok(ops)
}

fn check_header(event: &Map<String, Value>) -> Result<(), String> {
    let name = string(event, "format")?;
    let version = uint(event, "version")?;
    if name != FORMAT_NAME || version != FORMAT_VERSION {
        return Err(format!("unsupported format {name:?} version {version}"));
    }
    Ok(())
}

fn invoke(event: &Map<String, Value>) -> Result<Recorded, String> {
    let client = uint(event, "client")?;
    let invoke_ns = uint(event, "t")?;
    let cmd = string(event, "cmd")?;
    let key = || bytes(event, "key");
    let prefix = || bytes(event, "prefix");
    let command = match cmd.as_str() {
        "get" => Command::Get { key: key()? },
        "dirty-get" => Command::DirtyGet { key: key()? },
        "set" => Command::Set {
            key: key()?,
            value: bytes(event, "value")?,
        },
        "test-and-set" => Command::TestAndSet {
            key: key()?,
            expected: bytes(event, "expected")?,
            new: bytes(event, "new")?,
        },
        "add" => Command::Add {
            key: key()?,
            delta: int(event, "delta")?,
        },
        "delete" => Command::Delete { key: key()? },
        "remove" => Command::Remove { key: key()? },
        "rename" => Command::Rename {
            from: bytes(event, "from")?,
            to: bytes(event, "to")?,
        },
        "prune" => Command::Prune { prefix: prefix()? },
        "multi-set" => Command::MultiSet {
            pairs: pairs(event, "pairs")?,
        },
        "multi-delete" => Command::MultiDelete {
            keys: array(event, "keys")?
                .iter()
                .map(as_bytes)
                .collect::<Result<_, _>>()?,
        },
        "multi-get" => Command::MultiGet {
            keys: array(event, "keys")?
                .iter()
                .map(as_bytes)
                .collect::<Result<_, _>>()?,
        },
        "count" => Command::Count { prefix: prefix()? },
        "list-keys" => Command::ListKeys {
            prefix: prefix()?,
            start: optional(event, "start", bytes)?,
            count: optional(event, "count", uint)?,
        },
        "list-keyvalues" => Command::ListKeyValues {
            prefix: prefix()?,
            start: optional(event, "start", bytes)?,
            count: optional(event, "count", uint)?,
        },
        "open-session" => Command::OpenSession,
        "as-json" => as_json(event, "command")?,
        other => database_command(other, event)?,
    };
    let command = match optional(event, "db", uint)? {
        None | Some(0) => command,
        Some(db) => Command::InDb {
            db: u8::try_from(db).map_err(|_| format!("database {db} is out of range"))?,
            command: Box::new(command),
        },
    };
    Ok(Recorded {
        client,
        invoke_ns,
        command,
        end: End::Unknown,
    })
}

/// The commands that came with databases.
fn database_command(cmd: &str, event: &Map<String, Value>) -> Result<Command, String> {
    let db = |field: &str| {
        let n = uint(event, field)?;
        u8::try_from(n).map_err(|_| format!("{field:?} {n} is out of range"))
    };
    Ok(match cmd {
        "flush-db" => Command::FlushDb,
        "flush-all" => Command::FlushAll,
        "swap-db" => Command::SwapDb {
            a: db("a")?,
            b: db("b")?,
        },
        "move" => Command::Move {
            key: bytes(event, "key")?,
            to: db("to")?,
        },
        "keys" => Command::Keys {
            pattern: bytes(event, "pattern")?,
        },
        "scan" => Command::Scan {
            cursor: uint(event, "cursor")?,
            pattern: optional(event, "pattern", bytes)?,
            count: uint(event, "count")?,
            type_name: optional(event, "type", bytes)?,
        },
        "random-key" => Command::RandomKey {
            seed: uint(event, "seed")?,
        },
        "set-if" => Command::SetIf {
            key: bytes(event, "key")?,
            value: bytes(event, "value")?,
            condition: match string(event, "condition")?.as_str() {
                "always" => SetCondition::Always,
                "if-absent" => SetCondition::IfAbsent,
                "if-present" => SetCondition::IfPresent,
                other => return Err(format!("unknown condition {other:?}")),
            },
            get: match event.get("get") {
                Some(Value::Bool(get)) => *get,
                _ => return Err("\"get\" must be true or false".into()),
            },
        },
        "append" => Command::Append {
            key: bytes(event, "key")?,
            value: bytes(event, "value")?,
        },
        "multi-set-if-absent" => Command::MultiSetIfAbsent {
            pairs: pairs(event, "pairs")?,
        },
        other => return Err(format!("unknown command {other:?}")),
    })
}

fn end(kind: &str, event: &Map<String, Value>) -> Result<End, String> {
    match kind {
        "ok" => Ok(End::Ok {
            at_ns: uint(event, "t")?,
            reply: reply(event)?,
        }),
        "fail" => Ok(End::Fail {
            at_ns: uint(event, "t")?,
        }),
        "unknown" => Ok(End::Unknown),
        other => Err(format!("unknown event {other:?}")),
    }
}

fn reply(event: &Map<String, Value>) -> Result<Reply, String> {
    let kind = string(event, "reply")?;
    Ok(match kind.as_str() {
        "ok" => Reply::Ok,
        "value" => Reply::Value(optional(event, "value", bytes)?),
        "bool" => match event.get("bool") {
            Some(Value::Bool(b)) => Reply::Bool(*b),
            _ => return Err("\"bool\" must be true or false".into()),
        },
        "int" => Reply::Int(int(event, "int")?),
        "keys" => Reply::Keys(
            array(event, "keys")?
                .iter()
                .map(as_bytes)
                .collect::<Result<_, _>>()?,
        ),
        "keyvalues" => Reply::KeyValues(pairs(event, "keyvalues")?),
        "values" => Reply::Values(
            array(event, "values")?
                .iter()
                .map(|v| match v {
                    Value::Null => Ok(None),
                    v => as_bytes(v).map(Some),
                })
                .collect::<Result<_, _>>()?,
        ),
        "scan" => Reply::Scan {
            cursor: uint(event, "cursor")?,
            keys: array(event, "keys")?
                .iter()
                .map(as_bytes)
                .collect::<Result<_, _>>()?,
        },
        "error" => Reply::Error(error(event)?),
        "as-json" => as_json(event, "json")?,
        other => return Err(format!("unknown reply {other:?}")),
    })
}

fn error(event: &Map<String, Value>) -> Result<CommandError, String> {
    let name = string(event, "error")?;
    let len = || uint(event, "len").map(|n| n as usize);
    Ok(match name.as_str() {
        "key-too-large" => CommandError::KeyTooLarge { len: len()? },
        "value-too-large" => CommandError::ValueTooLarge { len: len()? },
        "not-an-integer" => CommandError::NotAnInteger,
        "overflow" => CommandError::Overflow,
        "no-such-key" => CommandError::NoSuchKey,
        "request-too-large" => CommandError::RequestTooLarge { len: len()? },
        "stale-request" => CommandError::StaleRequest {
            seq: uint(event, "seq")?,
        },
        "db-out-of-range" => CommandError::DbOutOfRange,
        "same-object" => CommandError::SameObject,
        "not-per-database" => CommandError::NotPerDatabase,
        "too-many-keys" => CommandError::TooManyKeys {
            limit: uint(event, "limit")? as usize,
        },
        "not-in-transaction" => CommandError::NotInTransaction,
        "not-a-float" => CommandError::NotAFloat,
        "nan-or-infinity" => CommandError::NanOrInfinity,
        "string-too-long" => CommandError::StringTooLong,
        "bit-offset-out-of-range" => CommandError::BitOffsetOutOfRange,
        "bitop-not-arity" => CommandError::BitOpNotArity,
        "wrong-type" => CommandError::WrongType,
        "hash-not-an-integer" => CommandError::HashNotAnInteger,
        "hash-not-a-float" => CommandError::HashNotAFloat,
        "score-nan" => CommandError::ScoreNan,
        "index-out-of-range" => CommandError::IndexOutOfRange,
        "invalid-expire-time" => {
            let index = uint(event, "name")? as usize;
            let name = EXPIRE_NAMES
                .get(index)
                .ok_or("unknown expire command name")?;
            CommandError::InvalidExpireTime(*name)
        }
        other => return Err(format!("unknown error {other:?}")),
    })
}

/// The expire commands' names, by the number the format gives them.
const EXPIRE_NAMES: [ExpireName; 6] = [
    ExpireName::Expire,
    ExpireName::PExpire,
    ExpireName::ExpireAt,
    ExpireName::PExpireAt,
    ExpireName::Set,
    ExpireName::GetEx,
];

/// A command or reply written as serde's JSON of it (transactions, which nest commands).
fn as_json<T: serde::de::DeserializeOwned>(
    event: &Map<String, Value>,
    field: &str,
) -> Result<T, String> {
    let value = event.get(field).ok_or(format!("missing {field:?}"))?;
    serde_json::from_value(value.clone()).map_err(|e| format!("{field:?}: {e}"))
}

/// Key-value pairs, as a multi-set command or a list reply carries them.
type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

fn pairs(event: &Map<String, Value>, field: &str) -> Result<Pairs, String> {
    array(event, field)?
        .iter()
        .map(|pair| match pair.as_array().map(Vec::as_slice) {
            Some([k, v]) => Ok((as_bytes(k)?, as_bytes(v)?)),
            _ => Err("a key-value pair must be [key, value]".to_string()),
        })
        .collect()
}

fn string(event: &Map<String, Value>, field: &str) -> Result<String, String> {
    match event.get(field) {
        Some(Value::String(s)) => Ok(s.clone()),
        _ => Err(format!("\"{field}\" must be a string")),
    }
}

fn bytes(event: &Map<String, Value>, field: &str) -> Result<Vec<u8>, String> {
    event
        .get(field)
        .ok_or_else(|| format!("\"{field}\" is missing"))
        .and_then(as_bytes)
}

fn as_bytes(value: &Value) -> Result<Vec<u8>, String> {
    match value {
        Value::String(s) => decode_bytes(s),
        other => Err(format!("expected a string, found {other}")),
    }
}

fn uint(event: &Map<String, Value>, field: &str) -> Result<u64, String> {
    event
        .get(field)
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("\"{field}\" must be a non-negative integer"))
}

fn int(event: &Map<String, Value>, field: &str) -> Result<i64, String> {
    event
        .get(field)
        .and_then(Value::as_i64)
        .ok_or_else(|| format!("\"{field}\" must be an integer"))
}

fn array<'e>(event: &'e Map<String, Value>, field: &str) -> Result<&'e Vec<Value>, String> {
    event
        .get(field)
        .and_then(Value::as_array)
        .ok_or_else(|| format!("\"{field}\" must be an array"))
}

/// A field that may be absent or null.
fn optional<T>(
    event: &Map<String, Value>,
    field: &str,
    read: impl Fn(&Map<String, Value>, &str) -> Result<T, String>,
) -> Result<Option<T>, String> {
    match event.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => read(event, field).map(Some),
    }
}
