//! What applied writes propagate to a replication stream (`SYNC`), as Redis 7.0 propagates to
//! its replicas: each write that changed something, translated so that a replica applying it
//! needs no clock and no randomness of its own.
//!
//! Off by default and free then: the node turns it on while it has a subscriber
//! ([`StateMachine::set_propagating`]) and takes the effects after each turn
//! ([`StateMachine::take_propagated`]). The effects come from the one application of each
//! command (its reply and the keys it touched), never from running it a second time.
//!
//! Rules: relative deadlines become absolute (`SET k v PXAT ms`, EXPIRE and GETEX EX →
//! `PEXPIREAT`, a deadline already passed → `DEL`); GETDEL → `DEL`; INCRBYFLOAT → `SET … KEEPTTL`;
//! HINCRBYFLOAT → `HSET`; SPOP → `SREM` (or `DEL` when a count took the whole set); a key
//! removed by expiry → `DEL`, on its own; a request whose writes made two or more effects (a
//! transaction, a script) → `MULTI` … `EXEC`; a write that changed nothing → nothing; SCRIPT
//! LOAD/FLUSH → nothing (scripts propagate by their effects); every other write as the
//! command it is.

use super::deadlines::UnixMs;
use super::expiry::absolute;
use super::store::Store;
use super::StateMachine;
use crate::command::{
    AddOptions, BitOp, Command, Db, Deadline, ExpireName, Reply, SetCondition, SetOp, TtlChange,
    DATABASES,
};
use crate::redis::Resp;
use crate::scripting::ScriptCommand;

/// Most effects kept between two takes; past it the stream is lost (its subscribers must
/// sync again), so memory stays bounded however long the node waits to take them.
pub const PROPAGATED_EFFECTS_MAX: usize = 1 << 20;

/// One command of the replication stream: its arguments (name first) and the database it
/// acts on (the stream selects it first when it differs from the last one's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Effect {
    pub db: Db,
    pub argv: Vec<Vec<u8>>,
}

/// The effects of the writes applied since the last take, or `Lost`: some were not recorded
/// (a snapshot replaced the state, or more than [`PROPAGATED_EFFECTS_MAX`] piled up).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Propagated {
    Effects(Vec<Effect>),
    Lost,
}

/// The record a propagating state machine keeps: the finished effects, and those of the
/// request being applied (wrapped in `MULTI`/`EXEC` when it ends, if two or more).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Propagation {
    done: Vec<Effect>,
    request: Vec<Effect>,
    lost: bool,
}

impl Propagation {
    fn push_done(&mut self, effect: Effect) {
        if self.done.len() >= PROPAGATED_EFFECTS_MAX {
            self.lost = true;
            self.done.clear();
        }
        if !self.lost {
            self.done.push(effect);
        }
        assert!(self.done.len() <= PROPAGATED_EFFECTS_MAX, "bounded");
    }

    /// Ends a request: its effects go out, in a transaction if there are two or more.
    fn end_request(&mut self) {
        let effects = std::mem::take(&mut self.request);
        let wrapped = effects.len() >= 2;
        let before = self.done.len();
        let (first_db, last_db) = match (effects.first(), effects.last()) {
            (Some(first), Some(last)) => (first.db, last.db),
            _ => return,
        };
        if wrapped {
            self.push_done(effect(first_db, vec![b"MULTI".to_vec()]));
        }
        effects.into_iter().for_each(|e| self.push_done(e));
        if wrapped {
            self.push_done(effect(last_db, vec![b"EXEC".to_vec()]));
        }
        assert!(
            self.lost || self.done.len() > before,
            "a request's effects went out"
        );
        assert!(self.request.is_empty(), "a request's effects are flushed");
    }
}

impl StateMachine {
    /// Starts (or stops) recording what applied writes propagate; stopping drops what was not
    /// taken. Not part of the state.
    pub fn set_propagating(&mut self, on: bool) {
        match (on, self.propagation.is_some()) {
            (true, false) => self.propagation = Some(Propagation::default()),
            (false, true) => self.propagation = None,
            _ => {}
        }
        assert_eq!(self.propagation.is_some(), on);
    }

    pub fn is_propagating(&self) -> bool {
        self.propagation.is_some()
    }

    /// The effects recorded since the last take (none when not propagating).
    pub fn take_propagated(&mut self) -> Propagated {
        let Some(propagation) = self.propagation.as_mut() else {
            return Propagated::Effects(Vec::new());
        };
        assert!(propagation.request.is_empty(), "taken between requests");
        let lost = std::mem::take(&mut propagation.lost);
        let effects = std::mem::take(&mut propagation.done);
        match lost {
            true => Propagated::Lost,
            false => Propagated::Effects(effects),
        }
    }

    /// This state replaces `before` (a snapshot installed): it propagates if `before` did,
    /// and its stream is lost, since the snapshot's writes were never recorded.
    pub fn replace_propagating(&mut self, before: &StateMachine) {
        self.propagation = before.propagation.as_ref().map(|_| Propagation {
            lost: true,
            ..Propagation::default()
        });
    }

    /// Records `key` of database `db` reclaimed by expiry: a `DEL` of its own.
    pub(super) fn propagate_expired(&mut self, db: Db, key: &[u8]) {
        if let Some(propagation) = self.propagation.as_mut() {
            propagation.push_done(effect(db, vec![b"DEL".to_vec(), key.to_vec()]));
        }
    }

    /// Records what `command` (one write, applied with `reply`, having inserted or removed the
    /// `touched` keys) propagates, as part of the current request.
    pub(super) fn propagate_write(
        &mut self,
        command: &Command,
        reply: &Reply,
        touched: &[(Db, Vec<u8>)],
    ) {
        let Some(propagation) = self.propagation.as_ref() else {
            return;
        };
        assert!(propagation.request.len() <= PROPAGATED_EFFECTS_MAX);
        let (db, leaf) = command.db_and_command();
        if rule(leaf) == Rule::NotCarried && !touched.is_empty() {
            let propagation = self.propagation.as_mut().expect("checked above");
            propagation.lost = true;
            propagation.request.clear();
            propagation.done.clear();
            return;
        }
        let store = self.data.db(db);
        let effects = translate(leaf, reply, touched, (store, self.now_ms));
        let propagation = self.propagation.as_mut().expect("checked above");
        (propagation.request).extend(effects.into_iter().map(|argv| effect(db, argv)));
    }

    /// Ends the request being applied (see [`Propagation::end_request`]).
    pub(super) fn propagate_end_request(&mut self) {
        if let Some(propagation) = self.propagation.as_mut() {
            propagation.end_request();
        }
    }
}

fn effect(db: Db, argv: Vec<Vec<u8>>) -> Effect {
    assert!(
        db < DATABASES && !argv.is_empty(),
        "an effect names a command"
    );
    Effect { db, argv }
}

/// One command's arguments.
type Argv = Vec<Vec<u8>>;

fn argv(parts: &[&[u8]]) -> Argv {
    parts.iter().map(|p| p.to_vec()).collect()
}

fn int(n: impl ToString) -> Vec<u8> {
    n.to_string().into_bytes()
}

/// What `command` propagates, judged after it applied with `reply`: nothing when it failed
/// or changed nothing. `store` is its database as the command left it, `now_ms` the time it
/// applied at.
pub(super) fn translate(
    command: &Command,
    reply: &Reply,
    touched: &[(Db, Vec<u8>)],
    (store, now_ms): (&Store, UnixMs),
) -> Vec<Argv> {
    if matches!(reply, Reply::Error(_) | Reply::Resp(Resp::Error(_))) {
        return Vec::new();
    }
    match command {
        Command::FlushAll => vec![argv(&[b"FLUSHALL"])],
        Command::FlushDb => vec![argv(&[b"FLUSHDB"])],
        Command::SwapDb { a, b } => vec![argv(&[b"SWAPDB", &int(a), &int(b)])],
        Command::Publish { channel, message } => vec![argv(&[b"PUBLISH", channel, message])],
        Command::Script(script) => script_effects(script),
        Command::Transaction { .. } => Vec::new(),
        _ if touched.is_empty() => Vec::new(),
        Command::SetAdd { .. } if *reply == Reply::Int(0) => Vec::new(),
        _ => changed(command, reply, touched, (store, now_ms)),
    }
}

/// Script commands that change what the registry holds propagate as they are; SCRIPT LOAD and
/// FLUSH do not (Redis 7.0 replicates scripts by their effects), and runs propagate the
/// effects of their calls instead.
fn script_effects(script: &ScriptCommand) -> Vec<Argv> {
    match script {
        ScriptCommand::FunctionLoad {
            code,
            replace: false,
        } => vec![argv(&[b"FUNCTION", b"LOAD", code])],
        ScriptCommand::FunctionLoad {
            code,
            replace: true,
        } => vec![argv(&[b"FUNCTION", b"LOAD", b"REPLACE", code])],
        ScriptCommand::FunctionDelete { library } => {
            vec![argv(&[b"FUNCTION", b"DELETE", library.as_bytes()])]
        }
        ScriptCommand::FunctionFlush => vec![argv(&[b"FUNCTION", b"FLUSH"])],
        // Redis 7.0 propagates FUNCTION RESTORE as written; its payload here is keyspace's own,
        // so each restored library goes out as the FUNCTION LOAD that makes it.
        ScriptCommand::FunctionRestore { codes, policy } => restore_effects(codes, *policy),
        ScriptCommand::Eval { .. }
        | ScriptCommand::EvalSha { .. }
        | ScriptCommand::Fcall { .. }
        | ScriptCommand::Load { .. }
        | ScriptCommand::Exists { .. }
        | ScriptCommand::Flush
        | ScriptCommand::FunctionList { .. }
        | ScriptCommand::FunctionStats
        | ScriptCommand::FunctionDump => Vec::new(),
    }
}

/// FUNCTION RESTORE: a `FUNCTION FLUSH` first with `FLUSH`, then each library's load
/// (`REPLACE` with `REPLACE`).
fn restore_effects(codes: &[Vec<u8>], policy: crate::scripting::RestorePolicy) -> Vec<Argv> {
    use crate::scripting::RestorePolicy;
    let mut out = Vec::new();
    if policy == RestorePolicy::Flush {
        out.push(argv(&[b"FUNCTION", b"FLUSH"]));
    }
    for code in codes {
        out.push(match policy {
            RestorePolicy::Replace => argv(&[b"FUNCTION", b"LOAD", b"REPLACE", code]),
            RestorePolicy::Append | RestorePolicy::Flush => argv(&[b"FUNCTION", b"LOAD", code]),
        });
    }
    out
}

/// What a write that changed something propagates.
fn changed(
    command: &Command,
    reply: &Reply,
    touched: &[(Db, Vec<u8>)],
    (store, now_ms): (&Store, UnixMs),
) -> Vec<Argv> {
    match command {
        Command::Set { key, value }
        | Command::SetIf { key, value, .. }
        | Command::TestAndSet {
            key, new: value, ..
        } => vec![argv(&[b"SET", key, value])],
        Command::SetExpiring {
            key, value, ttl, ..
        } => vec![set_with_ttl(store, (key, value), *ttl, now_ms)],
        Command::Expire { key, deadline, .. } => {
            vec![deadline_change(store, key, *deadline, now_ms)]
        }
        Command::GetEx { key, ttl } => match ttl {
            TtlChange::Set(deadline) => vec![deadline_change(store, key, *deadline, now_ms)],
            TtlChange::Clear => {
                assert_eq!(store.deadlines.get(key), None, "GETEX PERSIST cleared it");
                vec![argv(&[b"PERSIST", key])]
            }
            TtlChange::Keep => Vec::new(),
        },
        Command::Remove { key } | Command::Delete { key } => {
            assert!(!store.exists(key), "a deleted key is gone");
            vec![argv(&[b"DEL", key])]
        }
        Command::Prune { .. } => {
            let mut del = vec![b"DEL".to_vec()];
            del.extend(touched.iter().map(|(_, key)| key.clone()));
            assert!(
                del.len() >= 2,
                "a PRUNE that changed something removed a key"
            );
            vec![del]
        }
        Command::AddFloat { key, .. } => match reply {
            Reply::Value(Some(new)) => {
                assert_eq!(store.get(key), Some(new), "INCRBYFLOAT stored its answer");
                vec![argv(&[b"SET", key, new, b"KEEPTTL"])]
            }
            _ => unreachable!("INCRBYFLOAT answers its value: {reply:?}"),
        },
        Command::HashAddFloat { key, field, .. } => match reply {
            Reply::Value(Some(new)) => vec![argv(&[b"HSET", key, field, new])],
            _ => unreachable!("HINCRBYFLOAT answers its value: {reply:?}"),
        },
        Command::SetPop { key, count } => set_pop(store, key, count.is_some(), reply),
        Command::ListPop { left, count, .. } => list_pop(*left, count.is_some(), reply),
        Command::ZsetPop { max, count, .. } => zset_pop(*max, count.is_some(), reply),
        _ => {
            assert_eq!(
                rule(command),
                Rule::AsWritten,
                "{command:?} has no rule here"
            );
            vec![as_written(command)]
        }
    }
}

/// SET with its deadline absolute (`PXAT`), kept (`KEEPTTL`) or cleared.
fn set_with_ttl(
    store: &Store,
    (key, value): (&[u8], &[u8]),
    ttl: TtlChange,
    now_ms: UnixMs,
) -> Argv {
    assert_eq!(store.get(key).map(Vec::as_slice), Some(value), "SET stored");
    match ttl {
        TtlChange::Set(deadline) => {
            let at = absolute(deadline, now_ms, ExpireName::Set).expect("it applied");
            assert_eq!(store.deadlines.get(key), Some(at), "SET gave this deadline");
            argv(&[b"SET", key, value, b"PXAT", &int(at)])
        }
        TtlChange::Keep => argv(&[b"SET", key, value, b"KEEPTTL"]),
        TtlChange::Clear => {
            assert_eq!(
                store.deadlines.get(key),
                None,
                "a plain SET clears the deadline"
            );
            argv(&[b"SET", key, value])
        }
    }
}

/// A deadline a command set: `PEXPIREAT`, or `DEL` when it had passed (the key went).
fn deadline_change(store: &Store, key: &[u8], deadline: Deadline, now_ms: UnixMs) -> Argv {
    let at = absolute(deadline, now_ms, ExpireName::PExpireAt).expect("it applied");
    assert_eq!(
        store.exists(key),
        at > now_ms,
        "a passed deadline removed the key"
    );
    match at <= now_ms {
        true => argv(&[b"DEL", key]),
        false => argv(&[b"PEXPIREAT", key, &int(at)]),
    }
}

/// LPOP, RPOP, LMPOP and the blocking pops: `LPOP`/`RPOP` of the key popped from, with the
/// count popped when the command gave one.
fn list_pop(left: bool, counted: bool, reply: &Reply) -> Vec<Argv> {
    let Reply::Keys(popped) = reply else {
        unreachable!("a list pop that changed something answers its key: {reply:?}")
    };
    assert!(popped.len() >= 2, "a key and what was popped");
    let name: &[u8] = if left { b"LPOP" } else { b"RPOP" };
    let mut out = argv(&[name, &popped[0]]);
    if counted {
        out.push(int(popped.len() - 1));
    }
    vec![out]
}

/// ZPOPMIN, ZPOPMAX, ZMPOP and the blocking pops: `ZPOPMIN`/`ZPOPMAX` of the key popped from.
fn zset_pop(max: bool, counted: bool, reply: &Reply) -> Vec<Argv> {
    let Reply::Popped {
        key: Some(key),
        pairs,
    } = reply
    else {
        unreachable!("a sorted-set pop that changed something names its key: {reply:?}")
    };
    assert!(
        !pairs.is_empty(),
        "a pop that changed something took a member"
    );
    let name: &[u8] = if max { b"ZPOPMAX" } else { b"ZPOPMIN" };
    let mut out = argv(&[name, key]);
    if counted {
        out.push(int(pairs.len()));
    }
    vec![out]
}

/// SPOP: one `SREM` per member taken, or `DEL` when a count took the whole set.
fn set_pop(store: &Store, key: &[u8], counted: bool, reply: &Reply) -> Vec<Argv> {
    let members = match reply {
        Reply::Value(member) => member.iter().cloned().collect(),
        Reply::Keys(members) => members.clone(),
        _ => unreachable!("SPOP answers members: {reply:?}"),
    };
    assert!(
        counted || members.len() == 1,
        "SPOP without a count takes one"
    );
    if counted && !store.exists(key) {
        return vec![argv(&[b"DEL", key])];
    }
    let srem = |member: Vec<u8>| argv(&[b"SREM", key, &member]);
    members.into_iter().map(srem).collect()
}

/// How a command propagates. Every command is named here: a new one does not compile until it
/// says (and, propagated as written, gets its words in `as_written`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    /// Translated by `translate` or `changed` (deadlines, effects, flushes).
    Translated,
    /// As the command a client would write for it (`as_written`).
    AsWritten,
    /// Propagates through the writes it holds, or is no write.
    NotALeafWrite,
    /// A write the stream does not carry yet: applying one that changed something loses the
    /// stream (its subscribers are told and must sync again), never drops it silently.
    NotCarried,
}

fn rule(command: &Command) -> Rule {
    match command {
        Command::Set { .. }
        | Command::SetIf { .. }
        | Command::TestAndSet { .. }
        | Command::SetExpiring { .. }
        | Command::Expire { .. }
        | Command::GetEx { .. }
        | Command::Remove { .. }
        | Command::Delete { .. }
        | Command::Prune { .. }
        | Command::AddFloat { .. }
        | Command::HashAddFloat { .. }
        | Command::SetPop { .. }
        | Command::FlushAll
        | Command::FlushDb
        | Command::SwapDb { .. }
        | Command::Publish { .. } => Rule::Translated,
        Command::Add { .. }
        | Command::Rename { .. }
        | Command::RenameIfAbsent { .. }
        | Command::Move { .. }
        | Command::Append { .. }
        | Command::Persist { .. }
        | Command::SetRange { .. }
        | Command::SetBit { .. }
        | Command::Copy { .. }
        | Command::MultiSet { .. }
        | Command::MultiSetIfAbsent { .. }
        | Command::MultiDelete { .. }
        | Command::BitOp { .. }
        | Command::HashSet { .. }
        | Command::HashDelete { .. }
        | Command::HashAdd { .. }
        | Command::SetAdd { .. }
        | Command::SetRemove { .. }
        | Command::SetMove { .. }
        | Command::SetStore { .. }
        | Command::ZsetAdd { .. }
        | Command::ZsetRemove { .. }
        | Command::ListPush { .. }
        | Command::ListSet { .. }
        | Command::ListInsert { .. }
        | Command::ListRemove { .. }
        | Command::ListTrim { .. }
        | Command::ListMove { .. } => Rule::AsWritten,
        Command::ZsetPop { .. } | Command::ListPop { .. } => Rule::Translated,
        Command::ZsetRemoveRange { .. }
        | Command::ZsetRangeStore { .. }
        | Command::ZsetStore { .. } => Rule::NotCarried,
        Command::Sort { spec, .. } if spec.store.is_some() => Rule::NotCarried,
        Command::Script(_)
        | Command::Transaction { .. }
        | Command::InDb { .. }
        | Command::OpenSession
        | Command::Member(_)
        | Command::Get { .. }
        | Command::DirtyGet { .. }
        | Command::ListKeys { .. }
        | Command::ListKeyValues { .. }
        | Command::Count { .. }
        | Command::MultiGet { .. }
        | Command::Keys { .. }
        | Command::Scan { .. }
        | Command::RandomKey { .. }
        | Command::Watch { .. }
        | Command::TimeToLive { .. }
        | Command::Describe { .. }
        | Command::HashGet { .. }
        | Command::HashGetAll { .. }
        | Command::Cardinality { .. }
        | Command::SetMembers { .. }
        | Command::SetContains { .. }
        | Command::SetCombine { .. }
        | Command::Exists { .. }
        | Command::ZsetRange { .. }
        | Command::ZsetScores { .. }
        | Command::ZsetRank { .. }
        | Command::ZsetCombine { .. }
        | Command::ListRange { .. }
        | Command::Sort { .. } => Rule::NotALeafWrite,
    }
}

/// A write as the command a client would write for it (the store's command back in Redis's
/// words). Every write is here: a new one must say how it propagates.
pub(super) fn as_written(command: &Command) -> Argv {
    let mut out: Argv = match command {
        Command::Add { key, delta: 1 } => argv(&[b"INCR", key]),
        Command::Add { key, delta: -1 } => argv(&[b"DECR", key]),
        Command::Add { key, delta } => argv(&[b"INCRBY", key, &int(delta)]),
        Command::Rename { from, to } => argv(&[b"RENAME", from, to]),
        Command::RenameIfAbsent { from, to } => argv(&[b"RENAMENX", from, to]),
        Command::Move { key, to } => argv(&[b"MOVE", key, &int(to)]),
        Command::Append { key, value } => argv(&[b"APPEND", key, value]),
        Command::Persist { key } => argv(&[b"PERSIST", key]),
        Command::SetRange { key, offset, value } => argv(&[b"SETRANGE", key, &int(offset), value]),
        Command::SetBit { key, offset, bit } => {
            argv(&[b"SETBIT", key, &int(offset), &int(u8::from(*bit))])
        }
        Command::Copy { from, to, .. } => argv(&[b"COPY", from, to]),
        Command::ZsetAdd {
            key,
            members,
            options,
        } => zadd(key, members, options),
        Command::ZsetRemove { key, members } => {
            let mut out = argv(&[b"ZREM", key]);
            out.extend(members.iter().cloned());
            out
        }
        Command::ListPush {
            key,
            values,
            left,
            if_exists,
        } => {
            let name: &[u8] = match (left, if_exists) {
                (true, false) => b"LPUSH",
                (false, false) => b"RPUSH",
                (true, true) => b"LPUSHX",
                (false, true) => b"RPUSHX",
            };
            let mut out = argv(&[name, key]);
            out.extend(values.iter().cloned());
            out
        }
        Command::ListSet { key, index, value } => argv(&[b"LSET", key, &int(index), value]),
        Command::ListInsert {
            key,
            before,
            pivot,
            value,
        } => {
            let place: &[u8] = if *before { b"BEFORE" } else { b"AFTER" };
            argv(&[b"LINSERT", key, place, pivot, value])
        }
        Command::ListRemove { key, count, value } => argv(&[b"LREM", key, &int(count), value]),
        Command::ListTrim { key, start, stop } => argv(&[b"LTRIM", key, &int(start), &int(stop)]),
        Command::ListMove {
            from,
            to,
            from_left,
            to_left,
        } => argv(&[b"LMOVE", from, to, side(*from_left), side(*to_left)]),
        _ => return as_written_multi(command),
    };
    if let Command::Copy { to_db, replace, .. } = command {
        if let Some(db) = to_db {
            out.extend([b"DB".to_vec(), int(db)]);
        }
        if *replace {
            out.push(b"REPLACE".to_vec());
        }
    }
    out
}

fn side(left: bool) -> &'static [u8] {
    if left {
        b"LEFT"
    } else {
        b"RIGHT"
    }
}

/// ZADD with its options and every score and member.
fn zadd(key: &[u8], members: &[crate::scores::ScoredMember], options: &AddOptions) -> Argv {
    let mut out = argv(&[b"ZADD", key]);
    match options.condition {
        SetCondition::Always => {}
        SetCondition::IfAbsent => out.push(b"NX".to_vec()),
        SetCondition::IfPresent => out.push(b"XX".to_vec()),
    }
    match options.compare {
        None => {}
        Some(crate::scores::Compare::Greater) => out.push(b"GT".to_vec()),
        Some(crate::scores::Compare::Less) => out.push(b"LT".to_vec()),
    }
    if options.increment {
        out.push(b"INCR".to_vec());
    }
    for scored in members {
        out.push(crate::scores::format_score(scored.score.value()).into_bytes());
        out.push(scored.member.clone());
    }
    out
}

/// The writes of many keys, fields or members (see [`as_written`]).
fn as_written_multi(command: &Command) -> Argv {
    let (head, rest): (Argv, Vec<&Vec<u8>>) = match command {
        Command::MultiSet { pairs } => (argv(&[b"MSET"]), flatten(pairs)),
        Command::MultiSetIfAbsent { pairs } => (argv(&[b"MSETNX"]), flatten(pairs)),
        Command::MultiDelete { keys } => (argv(&[b"DEL"]), keys.iter().collect()),
        Command::BitOp { op, dest, keys } => {
            (argv(&[b"BITOP", bit_op(*op), dest]), keys.iter().collect())
        }
        Command::HashSet {
            key,
            pairs,
            if_absent,
        } => {
            let name: &[u8] = if *if_absent { b"HSETNX" } else { b"HSET" };
            (argv(&[name, key]), flatten(pairs))
        }
        Command::HashDelete { key, fields } => (argv(&[b"HDEL", key]), fields.iter().collect()),
        Command::HashAdd { key, field, delta } => {
            (argv(&[b"HINCRBY", key, field, &int(delta)]), Vec::new())
        }
        Command::SetAdd { key, members } => (argv(&[b"SADD", key]), members.iter().collect()),
        Command::SetRemove { key, members } => (argv(&[b"SREM", key]), members.iter().collect()),
        Command::SetMove { from, to, member } => (argv(&[b"SMOVE", from, to, member]), Vec::new()),
        Command::SetStore { op, dest, keys } => {
            (argv(&[set_store(*op), dest]), keys.iter().collect())
        }
        _ => unreachable!("{command:?} is translated by `changed`, or is not a write"),
    };
    let mut out = head;
    out.extend(rest.into_iter().cloned());
    out
}

fn flatten(pairs: &[(Vec<u8>, Vec<u8>)]) -> Vec<&Vec<u8>> {
    pairs.iter().flat_map(|(a, b)| [a, b]).collect()
}

fn bit_op(op: BitOp) -> &'static [u8] {
    match op {
        BitOp::And => b"AND",
        BitOp::Or => b"OR",
        BitOp::Xor => b"XOR",
        BitOp::Not => b"NOT",
    }
}

fn set_store(op: SetOp) -> &'static [u8] {
    match op {
        SetOp::Inter => b"SINTERSTORE",
        SetOp::Union => b"SUNIONSTORE",
        SetOp::Diff => b"SDIFFSTORE",
    }
}
