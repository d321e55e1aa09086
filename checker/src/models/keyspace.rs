//! The store's own key-value model: every command of `keyspace_core::Command`, with the
//! semantics documented there, starting from the empty store.
//!
//! Partitioning: single-key commands on different keys commute, so each group of keys is
//! checked on its own. A multi-key command joins the groups of every key it touches: RENAME its
//! two keys, and PRUNE, LIST-KEYS, LIST-KEYVALUES and COUNT every key with their prefix that any
//! checked command of the history names (a key no command names is never present, so it cannot
//! change their answer). DIRTY-GET is not linearizable by design and is left out, and so is
//! OPEN-SESSION, which names no key and answers with an id of the store's choosing.

use crate::history::{End, Operation, Outcome, Recorded};
use crate::model::Model;
use crate::runner::{check_parts, CheckOptions, CheckResult, Part};
use keyspace_core::{Command, CommandError, CommandKind, Reply, LIST_COUNT_MAX};
use std::collections::BTreeMap;

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

/// The whole store; absent keys are not in the map.
pub type StoreState = BTreeMap<Vec<u8>, Vec<u8>>;

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
    if command.is_write() {
        apply_write(state, command)
    } else {
        (None, read(state, command))
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
        // Changes no key; the id it answers is the store's choice, so `check_kv` leaves it out.
        Command::OpenSession => (None, Reply::Int(0)),
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
        Reply::Values(values) => {
            let shown: Vec<String> = values
                .iter()
                .map(|v| v.as_deref().map_or("nil".to_string(), show))
                .collect();
            format!("[{}]", shown.join(", "))
        }
    }
}

/// Checks a history of the store's commands.
pub fn check_kv(history: &History, options: &CheckOptions) -> CheckResult {
    let ops: Vec<Operation<Command, Reply>> = history.ops.iter().map(normalized).collect();
    let checked: Vec<usize> = (0..ops.len())
        .filter(|&i| {
            !matches!(
                ops[i].input,
                Command::DirtyGet { .. } | Command::OpenSession
            )
        })
        .collect();
    let groups = if options.partition {
        partition(&ops, &checked)
    } else {
        vec![checked]
    };
    let parts = groups
        .into_iter()
        .map(|ops| Part {
            model: KeyspaceModel,
            ops,
        })
        .collect();
    check_parts(&ops, parts, options)
}

/// A stale-request error says nothing about whether the request took effect.
fn normalized(op: &Operation<Command, Reply>) -> Operation<Command, Reply> {
    let mut op = op.clone();
    if let Outcome::Returned {
        output: Reply::Error(CommandError::StaleRequest { .. }),
        ..
    } = op.outcome
    {
        op.outcome = Outcome::Unknown;
    }
    op
}

/// Groups of operations (indices, in history order) that share no key.
fn partition(ops: &[Operation<Command, Reply>], checked: &[usize]) -> Vec<Vec<usize>> {
    let mut keys: Vec<&[u8]> = Vec::new();
    for &i in checked {
        match &ops[i].input {
            Command::Rename { .. }
            | Command::MultiSet { .. }
            | Command::MultiDelete { .. }
            | Command::MultiGet { .. } => keys.extend(ops[i].input.keys()),
            command if !is_prefix_command(command) => keys.push(command.keys()[0]),
            _ => {}
        }
    }
    keys.sort_unstable();
    keys.dedup();
    let key_id = |key: &[u8]| keys.binary_search(&key).expect("every key was collected");
    let mut sets = DisjointSets::new(keys.len());
    // Each operation's representative key, or none for a prefix that matches no key.
    let mut anchor: Vec<Option<usize>> = Vec::with_capacity(checked.len());
    for &i in checked {
        let command = &ops[i].input;
        if let Command::Rename { .. }
        | Command::MultiSet { .. }
        | Command::MultiDelete { .. }
        | Command::MultiGet { .. } = command
        {
            // Every key it names lands in one partition; an empty multi-set names none.
            let ids: Vec<usize> = command.keys().into_iter().map(key_id).collect();
            for pair in ids.windows(2) {
                sets.union(pair[0], pair[1]);
            }
            anchor.push(ids.first().copied());
        } else if is_prefix_command(command) {
            let prefix = command.keys()[0];
            let first = keys.partition_point(|key| *key < prefix);
            let end = first
                + keys[first..]
                    .iter()
                    .take_while(|k| k.starts_with(prefix))
                    .count();
            for k in first + 1..end {
                sets.union(first, k);
            }
            anchor.push((first < end).then_some(first));
        } else {
            anchor.push(Some(key_id(command.keys()[0])));
        }
    }
    let mut group_of_root: BTreeMap<usize, usize> = BTreeMap::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (&i, anchor) in checked.iter().zip(anchor) {
        let group = match anchor {
            Some(key) => *group_of_root.entry(sets.find(key)).or_insert_with(|| {
                groups.push(Vec::new());
                groups.len() - 1
            }),
            None => {
                groups.push(Vec::new());
                groups.len() - 1
            }
        };
        groups[group].push(i);
    }
    groups
}

fn is_prefix_command(command: &Command) -> bool {
    matches!(
        command,
        Command::Prune { .. }
            | Command::ListKeys { .. }
            | Command::ListKeyValues { .. }
            | Command::Count { .. }
    )
}

/// Union-find with path halving.
struct DisjointSets {
    parent: Vec<usize>,
}

impl DisjointSets {
    fn new(n: usize) -> Self {
        DisjointSets {
            parent: (0..n).collect(),
        }
    }

    fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] != x {
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }

    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            self.parent[ra.max(rb)] = ra.min(rb);
        }
    }
}
