//! The store's own key-value model: every command of `keyspace_core::Command`, with the
//! semantics documented there, starting from the empty store.
//!
//! The model keeps every database in one map, a key of database `d` stored as the byte `d`
//! followed by the key ([`qualified`]); a command in database `d` acts on the keys so prefixed.
//!
//! Partitioning: single-key commands on different keys commute, so each group of keys is
//! checked on its own. A multi-key command joins the groups of every key it touches: RENAME and
//! MOVE their two keys, and PRUNE, LIST-KEYS, LIST-KEYVALUES, COUNT, KEYS, FLUSH-DB, FLUSH-ALL
//! and SWAP-DB every key under their prefixes that could be present: a key some checked command
//! names, in its database and in every database a SWAP-DB of the history may carry it to (a key
//! no command names is never present, so it cannot change their answer; MOVE names its key in
//! both databases). EVAL of the scripts the model knows (`keyspace_scripts`) touches its KEYS;
//! any other script is left out. DIRTY-GET is not linearizable by
//! design and is left out, and so are OPEN-SESSION, which answers with an id of the store's
//! choosing, and SCAN and RANDOM-KEY, whose answers follow the store's hash order (the state
//! machine's own tests check those). A part that holds an expiry command is judged by the timed
//! model (`keyspace_timed`) when the check knows the store's clock, else left out; the
//! partitioning and that choice are `keyspace_check`'s.

use crate::history::{End, Operation, Outcome, Recorded};
use crate::model::Model;
use keyspace_core::bits;
use keyspace_core::kv::glob::{glob_match, literal_prefix};
use keyspace_core::strings::{self, FloatError};
use keyspace_core::{
    Command, CommandError, CommandKind, Db, Reply, SetCondition, KEYS_VISIT_MAX, LIST_COUNT_MAX,
    VALUE_MAX_BYTES,
};

/// A history of the store's commands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    pub ops: Vec<Operation<Command, Reply>>,
}

impl History {
    /// The history to check from what was recorded: failed operations left out (they never
    /// took effect), unfinished ones of unknown outcome.
    pub fn from_recorded(ops: impl Iterator<Item = Recorded>) -> History {
        let ops = ops
            .filter_map(|op| {
                let outcome = match op.end {
                    End::Ok { at_ns, reply } => Outcome::Returned {
                        at_ns,
                        output: reply,
                    },
                    End::Fail { .. } => return None,
                    End::Unknown => Outcome::Unknown,
                };
                Some(Operation {
                    client: op.client,
                    invoke_ns: op.invoke_ns,
                    input: op.command,
                    outcome,
                })
            })
            .collect();
        History { ops }
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

pub use super::keyspace_state::{qualified, StoreState};

#[derive(Clone, Copy, Debug, Default)]
pub struct KeyspaceModel;

impl Model for KeyspaceModel {
    type Input = Command;
    type Output = Reply;
    type State = StoreState;

    fn init(&self) -> StoreState {
        StoreState::new()
    }

    fn step(
        &self,
        state: &StoreState,
        command: &Command,
        output: Option<&Reply>,
    ) -> Option<StoreState> {
        if let Some(next) = super::keyspace_tx::special_step(state, command, output, apply) {
            return next;
        }
        let (changed, reply) = apply(state, command);
        let allowed = match output {
            None | Some(Reply::Error(CommandError::StaleRequest { .. })) => true,
            Some(output) => *output == reply,
        };
        allowed.then(|| changed.unwrap_or_else(|| state.clone()))
    }

    fn is_read_only(&self, command: &Command) -> bool {
        command.kind() != CommandKind::Write
    }

    fn describe_op(&self, command: &Command, output: Option<&Reply>) -> String {
        let reply = output.map_or_else(|| "unknown".to_string(), describe_reply);
        format!("{} -> {reply}", describe_command(command))
    }

    fn describe_state(&self, state: &StoreState) -> String {
        let entries: Vec<String> = state
            .iter()
            .map(|(k, v)| format!("{}: {}", show(k), show(v)))
            .collect();
        format!("{{{}}}", entries.join(", "))
    }
}

/// Applies `command` to `state`: the new state if it changed, and the reply.
pub fn apply(state: &StoreState, command: &Command) -> (Option<StoreState>, Reply) {
    if let Err(error) = command.validate() {
        return (None, Reply::Error(error));
    }
    let (db, command) = command.db_and_command();
    match command {
        Command::FlushAll => ((!state.is_empty()).then(StoreState::new), Reply::Ok),
        Command::FlushDb => {
            let mut next = state.clone();
            next.retain(|key, _| key[0] != db);
            ((next.len() != state.len()).then_some(next), Reply::Ok)
        }
        Command::SwapDb { a, b } => (Some(swapped(state, *a, *b)), Reply::Ok),
        Command::Move { key, to } => apply_move(state, db, key, *to),
        Command::Copy {
            from,
            to,
            to_db,
            replace,
        } => apply_copy(
            state,
            qualified(db, from),
            qualified(to_db.unwrap_or(db), to),
            *replace,
        ),
        Command::Keys { pattern } => (None, keys_matching(state, db, pattern)),
        Command::Script(script) => super::keyspace_scripts::apply_script(state, db, script),
        Command::Scan { .. } | Command::RandomKey { .. } => {
            unreachable!("{command:?} is left out of checked histories")
        }
        command if is_expiry(command) => {
            unreachable!("{command:?} is judged by the timed model")
        }
        Command::Watch { keys } => {
            let values = keys.iter().map(|k| state.get(&qualified(db, k)).cloned());
            let values = values.collect();
            (None, Reply::Watched { slot: 0, values })
        }
        Command::Transaction { commands, .. } => {
            super::keyspace_tx::apply_transaction(state, commands, apply)
        }
        command if command.is_write() => {
            let (next, reply) = apply_write(state, &in_model(db, command));
            (next, unqualified(reply))
        }
        command => (None, unqualified(read(state, &in_model(db, command)))),
    }
}

fn swapped(state: &StoreState, a: Db, b: Db) -> StoreState {
    let relabel = |db: Db| match db {
        db if db == a => b,
        db if db == b => a,
        db => db,
    };
    state
        .iter()
        .map(|(key, value)| (qualified(relabel(key[0]), &key[1..]), value.clone()))
        .collect()
}

fn apply_move(state: &StoreState, db: Db, key: &[u8], to: Db) -> (Option<StoreState>, Reply) {
    if db == to {
        return (None, Reply::Error(CommandError::SameObject));
    }
    let (from, to) = (qualified(db, key), qualified(to, key));
    match state.get(&from) {
        Some(value) if !state.contains_key(&to) => {
            let mut next = without(state, &from);
            next.insert(to, value.clone());
            (Some(next), Reply::Bool(true))
        }
        _ => (None, Reply::Bool(false)),
    }
}

fn apply_copy(
    state: &StoreState,
    from: Vec<u8>,
    to: Vec<u8>,
    replace: bool,
) -> (Option<StoreState>, Reply) {
    if from == to {
        return (None, Reply::Error(CommandError::SameObject));
    }
    match state.get(&from) {
        Some(value) if replace || !state.contains_key(&to) => {
            (Some(with(state, &to, value.clone())), Reply::Bool(true))
        }
        _ => (None, Reply::Bool(false)),
    }
}

fn keys_matching(state: &StoreState, db: Db, pattern: &[u8]) -> Reply {
    let prefix = qualified(db, literal_prefix(pattern));
    let candidates: Vec<&Vec<u8>> = with_prefix(state, &prefix, &prefix)
        .map(|(k, _)| k)
        .collect();
    if candidates.len() > KEYS_VISIT_MAX {
        return Reply::Error(CommandError::TooManyKeys {
            limit: KEYS_VISIT_MAX,
        });
    }
    let keys = candidates.into_iter().map(|k| &k[1..]);
    Reply::Keys(
        keys.filter(|k| glob_match(pattern, k))
            .map(<[u8]>::to_vec)
            .collect(),
    )
}

/// A command of one database's keys rewritten to act on the model's qualified keys.
fn in_model(db: Db, command: &Command) -> Command {
    let q = |key: &Vec<u8>| qualified(db, key);
    let qs = |keys: &Vec<Vec<u8>>| keys.iter().map(q).collect();
    match command.clone() {
        Command::Get { key } => Command::Get { key: q(&key) },
        Command::DirtyGet { key } => Command::DirtyGet { key: q(&key) },
        Command::Set { key, value } => Command::Set {
            key: q(&key),
            value,
        },
        Command::TestAndSet { key, expected, new } => Command::TestAndSet {
            key: q(&key),
            expected,
            new,
        },
        Command::Add { key, delta } => Command::Add {
            key: q(&key),
            delta,
        },
        Command::Delete { key } => Command::Delete { key: q(&key) },
        Command::Remove { key } => Command::Remove { key: q(&key) },
        Command::Rename { from, to } => Command::Rename {
            from: q(&from),
            to: q(&to),
        },
        Command::Prune { prefix } => Command::Prune { prefix: q(&prefix) },
        Command::Count { prefix } => Command::Count { prefix: q(&prefix) },
        Command::MultiSet { pairs } => Command::MultiSet {
            pairs: pairs.into_iter().map(|(k, v)| (q(&k), v)).collect(),
        },
        Command::MultiDelete { keys } => Command::MultiDelete { keys: qs(&keys) },
        Command::SetIf {
            key,
            value,
            condition,
            get,
        } => Command::SetIf {
            key: q(&key),
            value,
            condition,
            get,
        },
        Command::Append { key, value } => Command::Append {
            key: q(&key),
            value,
        },
        Command::MultiSetIfAbsent { pairs } => Command::MultiSetIfAbsent {
            pairs: pairs.into_iter().map(|(k, v)| (q(&k), v)).collect(),
        },
        Command::MultiGet { keys } => Command::MultiGet { keys: qs(&keys) },
        Command::RenameIfAbsent { from, to } => Command::RenameIfAbsent {
            from: q(&from),
            to: q(&to),
        },
        Command::SetRange { key, offset, value } => Command::SetRange {
            key: q(&key),
            offset,
            value,
        },
        Command::AddFloat { key, delta } => Command::AddFloat {
            key: q(&key),
            delta,
        },
        Command::SetBit { key, offset, bit } => Command::SetBit {
            key: q(&key),
            offset,
            bit,
        },
        Command::BitOp { op, dest, keys } => Command::BitOp {
            op,
            dest: q(&dest),
            keys: qs(&keys),
        },
        Command::ListKeys {
            prefix,
            start,
            count,
        } => Command::ListKeys {
            prefix: q(&prefix),
            start: start.as_ref().map(q),
            count,
        },
        Command::ListKeyValues {
            prefix,
            start,
            count,
        } => Command::ListKeyValues {
            prefix: q(&prefix),
            start: start.as_ref().map(q),
            count,
        },
        other => unreachable!("not a command of one database's keys: {other:?}"),
    }
}

/// A reply of the model's qualified keys as the store gives it: keys without their database.
fn unqualified(reply: Reply) -> Reply {
    match reply {
        Reply::Keys(keys) => Reply::Keys(keys.into_iter().map(|k| k[1..].to_vec()).collect()),
        Reply::KeyValues(pairs) => Reply::KeyValues(
            pairs
                .into_iter()
                .map(|(k, v)| (k[1..].to_vec(), v))
                .collect(),
        ),
        other => other,
    }
}

/// The reply of a read, which changes nothing.
fn read(state: &StoreState, command: &Command) -> Reply {
    match command {
        Command::Get { key } | Command::DirtyGet { key } => Reply::Value(state.get(key).cloned()),
        Command::MultiGet { keys } => {
            Reply::Values(keys.iter().map(|k| state.get(k).cloned()).collect())
        }
        Command::ListKeys {
            prefix,
            start,
            count,
        } => {
            let keys = listed(state, prefix, start.as_deref(), *count).map(|(k, _)| k.clone());
            Reply::Keys(keys.collect())
        }
        Command::ListKeyValues {
            prefix,
            start,
            count,
        } => {
            let pairs = listed(state, prefix, start.as_deref(), *count);
            Reply::KeyValues(pairs.map(|(k, v)| (k.clone(), v.clone())).collect())
        }
        Command::Count { prefix } => Reply::Int(with_prefix(state, prefix, prefix).count() as i64),
        write => unreachable!("{write:?} is a write"),
    }
}

fn apply_write(state: &StoreState, command: &Command) -> (Option<StoreState>, Reply) {
    match command {
        Command::Set { key, value } => (Some(with(state, key, value.clone())), Reply::Ok),
        Command::TestAndSet { key, expected, new } => match state.get(key) {
            Some(current) if current == expected => {
                (Some(with(state, key, new.clone())), Reply::Bool(true))
            }
            _ => (None, Reply::Bool(false)),
        },
        Command::Add { key, delta } => apply_add(state, key, *delta),
        Command::Delete { key } => match state.get(key) {
            Some(_) => (Some(without(state, key)), Reply::Bool(true)),
            None => (None, Reply::Bool(false)),
        },
        Command::Remove { key } => match state.get(key) {
            Some(old) => (Some(without(state, key)), Reply::Value(Some(old.clone()))),
            None => (None, Reply::Value(None)),
        },
        Command::Rename { from, to } => match state.get(from) {
            None => (None, Reply::Error(CommandError::NoSuchKey)),
            Some(_) if from == to => (None, Reply::Ok),
            Some(value) => {
                let mut next = without(state, from);
                next.insert(to.clone(), value.clone());
                (Some(next), Reply::Ok)
            }
        },
        Command::MultiSet { pairs } => {
            let mut next = state.clone();
            for (key, value) in pairs {
                next.insert(key.clone(), value.clone());
            }
            (Some(next), Reply::Ok)
        }
        Command::MultiDelete { keys } => {
            let mut next = state.clone();
            let removed = keys.iter().filter(|k| next.remove(*k).is_some()).count() as i64;
            ((removed > 0).then_some(next), Reply::Int(removed))
        }
        Command::Prune { prefix } => {
            let mut next = state.clone();
            next.retain(|key, _| !key.starts_with(prefix));
            let removed = (state.len() - next.len()) as i64;
            ((removed > 0).then_some(next), Reply::Int(removed))
        }
        Command::SetIf {
            key,
            value,
            condition,
            get,
        } => {
            let old = state.get(key).cloned();
            let holds = match condition {
                SetCondition::Always => true,
                SetCondition::IfAbsent => old.is_none(),
                SetCondition::IfPresent => old.is_some(),
            };
            let next = holds.then(|| with(state, key, value.clone()));
            let reply = match (get, holds) {
                (true, _) => Reply::Value(old),
                (false, true) => Reply::Ok,
                (false, false) => Reply::Value(None),
            };
            (next, reply)
        }
        Command::Append { key, value } => {
            let mut joined = state.get(key).cloned().unwrap_or_default();
            joined.extend_from_slice(value);
            if joined.len() > VALUE_MAX_BYTES {
                let len = joined.len();
                return (None, Reply::Error(CommandError::ValueTooLarge { len }));
            }
            let len = joined.len() as i64;
            (Some(with(state, key, joined)), Reply::Int(len))
        }
        Command::MultiSetIfAbsent { pairs } => {
            if pairs.iter().any(|(key, _)| state.contains_key(key)) {
                return (None, Reply::Bool(false));
            }
            let mut next = state.clone();
            for (key, value) in pairs {
                next.insert(key.clone(), value.clone());
            }
            (Some(next), Reply::Bool(true))
        }
        // Changes no key; the id it answers is the store's choice, so `check_kv` leaves it out.
        Command::OpenSession => (None, Reply::Int(0)),
        command => apply_string_write(state, command),
    }
}

/// The string and bit writes, by the store's own value functions (`keyspace_core::strings`
/// and `bits`), as `apply_add` uses its integer parser.
fn apply_string_write(state: &StoreState, command: &Command) -> (Option<StoreState>, Reply) {
    match command {
        Command::RenameIfAbsent { from, to } => match state.get(from) {
            None => (None, Reply::Error(CommandError::NoSuchKey)),
            Some(_) if from == to || state.contains_key(to) => (None, Reply::Bool(false)),
            Some(value) => (
                Some(with(&without(state, from), to, value.clone())),
                Reply::Bool(true),
            ),
        },
        Command::SetRange { key, value, .. } if value.is_empty() => {
            (None, Reply::Int(state.get(key).map_or(0, Vec::len) as i64))
        }
        Command::SetRange { key, offset, value } => {
            let mut new = state.get(key).cloned().unwrap_or_default();
            strings::set_range(&mut new, *offset as usize, value);
            let len = new.len() as i64;
            (Some(with(state, key, new)), Reply::Int(len))
        }
        Command::AddFloat { key, delta } => {
            match strings::add_float(state.get(key).map(Vec::as_slice), delta) {
                Ok(new) => (Some(with(state, key, new.clone())), Reply::Value(Some(new))),
                Err(FloatError::NotAFloat) => (None, Reply::Error(CommandError::NotAFloat)),
                Err(FloatError::NanOrInfinity) => (None, Reply::Error(CommandError::NanOrInfinity)),
            }
        }
        Command::SetBit { key, offset, bit } => {
            let mut new = state.get(key).cloned().unwrap_or_default();
            let old = bits::set_bit(&mut new, *offset, *bit);
            (Some(with(state, key, new)), Reply::Int(i64::from(old)))
        }
        Command::BitOp { op, dest, keys } => {
            let sources: Vec<&[u8]> = (keys.iter())
                .map(|k| state.get(k).map_or(&[][..], Vec::as_slice))
                .collect();
            let result = bits::bit_op(*op, &sources);
            let len = result.len() as i64;
            match len {
                0 => (Some(without(state, dest)), Reply::Int(0)),
                _ => (Some(with(state, dest, result)), Reply::Int(len)),
            }
        }
        read => unreachable!("{read:?} is a read"),
    }
}

fn apply_add(state: &StoreState, key: &[u8], delta: i64) -> (Option<StoreState>, Reply) {
    let current = match state.get(key) {
        None => 0,
        // The store's own definition of a stored integer: plain decimal, optional '-'.
        Some(bytes) => match keyspace_core::kv::parse_integer(bytes) {
            Some(n) => n,
            None => return (None, Reply::Error(CommandError::NotAnInteger)),
        },
    };
    match current.checked_add(delta) {
        Some(sum) => (
            Some(with(state, key, sum.to_string().into_bytes())),
            Reply::Int(sum),
        ),
        None => (None, Reply::Error(CommandError::Overflow)),
    }
}

fn with(state: &StoreState, key: &[u8], value: Vec<u8>) -> StoreState {
    let mut next = state.clone();
    next.insert(key.to_vec(), value);
    next
}

fn without(state: &StoreState, key: &[u8]) -> StoreState {
    let mut next = state.clone();
    next.remove(key);
    next
}

/// Entries whose key starts with `prefix`, from `lower` on.
fn with_prefix<'s>(
    state: &'s StoreState,
    prefix: &'s [u8],
    lower: &[u8],
) -> impl Iterator<Item = (&'s Vec<u8>, &'s Vec<u8>)> {
    state
        .range(lower.to_vec()..)
        .take_while(move |(key, _)| key.starts_with(prefix))
}

fn listed<'s>(
    state: &'s StoreState,
    prefix: &'s [u8],
    start: Option<&[u8]>,
    count: Option<u64>,
) -> impl Iterator<Item = (&'s Vec<u8>, &'s Vec<u8>)> {
    let lower = start.map_or(prefix, |start| start.max(prefix));
    let limit = count.unwrap_or(LIST_COUNT_MAX).min(LIST_COUNT_MAX) as usize;
    with_prefix(state, prefix, lower).take(limit)
}

/// Bytes for a person: quoted, with anything but printable ASCII escaped.
pub fn show(bytes: &[u8]) -> String {
    format!("\"{}\"", bytes.escape_ascii())
}

pub fn describe_command(command: &Command) -> String {
    match command.db_and_command() {
        (0, command) => describe_in_db(command),
        (db, command) => format!("[db {db}] {}", describe_in_db(command)),
    }
}

fn describe_in_db(command: &Command) -> String {
    let opt = |start: &Option<Vec<u8>>| start.as_deref().map_or("-".to_string(), show);
    let count = |count: &Option<u64>| count.map_or("-".to_string(), |c| c.to_string());
    match command {
        Command::Get { key } => format!("GET {}", show(key)),
        Command::Member(change) => format!("MEMBER {change:?}"),
        Command::DirtyGet { key } => format!("DIRTY-GET {}", show(key)),
        Command::Set { key, value } => format!("SET {} {}", show(key), show(value)),
        Command::TestAndSet { key, expected, new } => {
            format!(
                "TEST-AND-SET {} {} {}",
                show(key),
                show(expected),
                show(new)
            )
        }
        Command::Add { key, delta } => format!("ADD {} {delta}", show(key)),
        Command::Delete { key } => format!("DELETE {}", show(key)),
        Command::Remove { key } => format!("REMOVE {}", show(key)),
        Command::Rename { from, to } => format!("RENAME {} {}", show(from), show(to)),
        Command::Prune { prefix } => format!("PRUNE {}", show(prefix)),
        Command::MultiSet { pairs } => {
            let shown: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{} {}", show(k), show(v)))
                .collect();
            format!("MULTI-SET {}", shown.join(" "))
        }
        Command::MultiDelete { keys } => {
            let shown: Vec<String> = keys.iter().map(|k| show(k)).collect();
            format!("MULTI-DELETE {}", shown.join(" "))
        }
        Command::MultiGet { keys } => {
            let shown: Vec<String> = keys.iter().map(|k| show(k)).collect();
            format!("MULTI-GET {}", shown.join(" "))
        }
        Command::ListKeys {
            prefix,
            start,
            count: c,
        } => {
            format!("LIST-KEYS {} {} {}", show(prefix), opt(start), count(c))
        }
        Command::ListKeyValues {
            prefix,
            start,
            count: c,
        } => {
            format!(
                "LIST-KEYVALUES {} {} {}",
                show(prefix),
                opt(start),
                count(c)
            )
        }
        Command::Count { prefix } => format!("COUNT {}", show(prefix)),
        Command::OpenSession => "OPEN-SESSION".to_string(),
        Command::FlushDb => "FLUSH-DB".to_string(),
        Command::FlushAll => "FLUSH-ALL".to_string(),
        Command::SwapDb { a, b } => format!("SWAP-DB {a} {b}"),
        Command::Move { key, to } => format!("MOVE {} {to}", show(key)),
        Command::Keys { pattern } => format!("KEYS {}", show(pattern)),
        Command::Scan {
            cursor,
            pattern,
            count: c,
            type_name,
        } => format!("SCAN {cursor} {} {c} {}", opt(pattern), opt(type_name)),
        Command::RandomKey { seed } => format!("RANDOM-KEY {seed}"),
        Command::SetIf {
            key,
            value,
            condition,
            get,
        } => format!(
            "SET-IF {} {} {condition:?}{}",
            show(key),
            show(value),
            if *get { " GET" } else { "" }
        ),
        Command::Append { key, value } => format!("APPEND {} {}", show(key), show(value)),
        Command::RenameIfAbsent { from, to } => format!("RENAMENX {} {}", show(from), show(to)),
        Command::Copy {
            from,
            to,
            to_db,
            replace,
        } => format!(
            "COPY {} {}{}{}",
            show(from),
            show(to),
            to_db.map_or(String::new(), |db| format!(" DB {db}")),
            if *replace { " REPLACE" } else { "" }
        ),
        Command::SetRange { key, offset, value } => {
            format!("SETRANGE {} {offset} {}", show(key), show(value))
        }
        Command::AddFloat { key, delta } => format!("INCRBYFLOAT {} {}", show(key), show(delta)),
        Command::SetBit { key, offset, bit } => {
            format!("SETBIT {} {offset} {}", show(key), *bit as u8)
        }
        Command::BitOp { op, dest, keys } => {
            let shown: Vec<String> = keys.iter().map(|k| show(k)).collect();
            format!("BITOP {op:?} {} {}", show(dest), shown.join(" "))
        }
        Command::MultiSetIfAbsent { pairs } => {
            let shown: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{} {}", show(k), show(v)))
                .collect();
            format!("MULTI-SET-IF-ABSENT {}", shown.join(" "))
        }
        Command::InDb { .. } => unreachable!("unwrapped by describe_command"),
        Command::Watch { keys } => {
            let shown: Vec<String> = keys.iter().map(|k| show(k)).collect();
            format!("WATCH {}", shown.join(" "))
        }
        Command::Script(script) => format!("SCRIPT {script:?}"),
        Command::Transaction { commands, watched } => {
            let shown: Vec<String> = commands.iter().map(describe_command).collect();
            let watched: Vec<String> = watched
                .iter()
                .map(|w| format!("[db {}] {}@{}", w.db, show(&w.key), w.slot))
                .collect();
            format!(
                "MULTI {} EXEC (watching {})",
                shown.join("; "),
                watched.join(" ")
            )
        }
        command => format!("{command:?}"),
    }
}

pub fn describe_reply(reply: &Reply) -> String {
    match reply {
        Reply::Ok => "OK".to_string(),
        Reply::Value(None) => "nil".to_string(),
        Reply::Value(Some(value)) => show(value),
        Reply::Bool(b) => b.to_string(),
        Reply::Int(n) => n.to_string(),
        Reply::Keys(keys) => {
            format!(
                "[{}]",
                keys.iter().map(|k| show(k)).collect::<Vec<_>>().join(", ")
            )
        }
        Reply::KeyValues(pairs) => {
            let pairs: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{}: {}", show(k), show(v)))
                .collect();
            format!("{{{}}}", pairs.join(", "))
        }
        Reply::Error(error) => format!("error: {error}"),
        Reply::Scan { cursor, keys } => {
            let shown: Vec<String> = keys.iter().map(|k| show(k)).collect();
            format!("cursor {cursor} [{}]", shown.join(", "))
        }
        Reply::Values(values) | Reply::Watched { values, .. } => {
            let shown: Vec<String> = values
                .iter()
                .map(|v| v.as_deref().map_or("nil".to_string(), show))
                .collect();
            format!("[{}]", shown.join(", "))
        }
        Reply::Transaction(None) => "nil (a watched key changed)".to_string(),
        Reply::Resp(resp) => format!("{resp:?}"),
        Reply::Described { kind, encoding, .. } => format!("{} ({encoding})", kind.name()),
        Reply::Popped { key, pairs } => {
            let pairs: Vec<String> = (pairs.iter())
                .map(|(m, s)| format!("{}: {}", show(m), show(s)))
                .collect();
            format!(
                "popped {:?} {{{}}}",
                key.as_deref().map(show),
                pairs.join(", ")
            )
        }
        Reply::Transaction(Some(replies)) => {
            let shown: Vec<String> = replies.iter().map(describe_reply).collect();
            format!("[{}]", shown.join("; "))
        }
    }
}

/// A command (alone, not in a transaction) that sets, changes or reads a deadline.
pub fn is_deadline_command(command: &Command) -> bool {
    matches!(
        command.db_and_command().1,
        Command::SetExpiring { .. }
            | Command::Expire { .. }
            | Command::Persist { .. }
            | Command::GetEx { .. }
            | Command::TimeToLive { .. }
    )
}

/// A command that sets, changes or reads a deadline, alone or in a transaction.
pub(super) fn is_expiry(command: &Command) -> bool {
    is_deadline_command(command)
        || matches!(command.db_and_command().1, Command::Transaction { commands, .. } if commands.iter().any(is_expiry))
}
