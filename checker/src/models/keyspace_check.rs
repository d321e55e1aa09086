//! Checking a history of the store's commands: the history split into independent parts (see
//! `keyspace`'s partitioning), each judged by the store's model (`keyspace`), or by the timed
//! model (`keyspace_timed`) when it holds a command that sets, changes or reads a deadline.

use super::keyspace::{is_expiry, History, KeyspaceModel};
use super::keyspace_state::qualified;
use super::keyspace_timed::{is_timed, TimedCommand, TimedKeyspaceModel};
use crate::history::{Operation, Outcome};
use crate::runner::{check_parts, CheckOptions, CheckResult, Part};
use keyspace_core::kv::glob::literal_prefix;
use keyspace_core::{Command, CommandError, Reply, DATABASES};
use std::collections::BTreeMap;

/// Checks a history of the store's commands.
///
/// Each independent part that holds an expiry command (one that sets, changes or reads a
/// deadline) is judged by the timed model ([`TimedKeyspaceModel`]) when `options.log_clock`
/// says how the store's time relates to the history's, and if every command of the part is
/// one the timed model knows ([`is_timed`]); otherwise it is left out (never judged, so never a
/// false verdict). Every other part is judged by [`KeyspaceModel`].
pub fn check_kv(history: &History, options: &CheckOptions) -> CheckResult {
    let ops: Vec<Operation<Command, Reply>> = history.ops.iter().map(normalized).collect();
    let checked: Vec<usize> = (0..ops.len())
        .filter(|&i| {
            let command = ops[i].input.db_and_command().1;
            let left_out = matches!(
                command,
                Command::DirtyGet { .. }
                    | Command::OpenSession
                    | Command::Scan { .. }
                    | Command::RandomKey { .. }
            );
            !left_out && !is_unmodelled_script(command)
        })
        .collect();
    let groups = if options.partition {
        partition(&ops, &checked)
    } else {
        vec![checked]
    };
    let (timed, untimed): (Vec<Vec<usize>>, Vec<Vec<usize>>) = groups
        .into_iter()
        .partition(|group| group.iter().any(|&i| is_expiry(&ops[i].input)));
    let parts = untimed
        .into_iter()
        .map(|ops| Part {
            model: KeyspaceModel,
            ops,
        })
        .collect();
    let started = std::time::Instant::now();
    let verdict = check_parts(&ops, parts, options);
    let Some(clock) = options.log_clock else {
        return verdict;
    };
    let timed: Vec<Part<TimedKeyspaceModel>> = timed
        .into_iter()
        .filter(|group| group.iter().all(|&i| is_timed(&ops[i].input)))
        .map(|ops| Part {
            model: TimedKeyspaceModel,
            ops,
        })
        .collect();
    if verdict.is_violation() || timed.is_empty() {
        return verdict;
    }
    let timed_ops: Vec<Operation<TimedCommand, Reply>> = ops
        .iter()
        .map(|op| Operation {
            client: op.client,
            invoke_ns: op.invoke_ns,
            input: TimedCommand {
                command: op.input.clone(),
                window: clock.window(op),
            },
            outcome: op.outcome.clone(),
        })
        .collect();
    let left = CheckOptions {
        timeout: options
            .timeout
            .map(|timeout| timeout.saturating_sub(started.elapsed())),
        ..options.clone()
    };
    match (verdict, check_parts(&timed_ops, timed, &left)) {
        (_, violation @ CheckResult::Violation(_)) => violation,
        (unknown @ CheckResult::Unknown(_), _) => unknown,
        (_, timed) => timed,
    }
}

/// A script the model does not know (see `keyspace_scripts`), alone or in a transaction.
fn is_unmodelled_script(command: &Command) -> bool {
    match command.db_and_command().1 {
        Command::Script(script) => !super::keyspace_scripts::is_modelled(script),
        Command::Transaction { commands, .. } => commands.iter().any(is_unmodelled_script),
        _ => false,
    }
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

/// What an operation may read or change in the model's key space: the keys it names, and
/// every key under its prefixes.
struct Footprint {
    keys: Vec<Vec<u8>>,
    prefixes: Vec<Vec<u8>>,
}

fn footprint(command: &Command) -> Footprint {
    let (db, command) = command.db_and_command();
    let under = |prefixes: Vec<Vec<u8>>| Footprint {
        keys: Vec::new(),
        prefixes,
    };
    match command {
        Command::FlushAll => under(vec![Vec::new()]),
        Command::SwapDb { a, b } => under(vec![vec![*a], vec![*b]]),
        Command::FlushDb => under(vec![vec![db]]),
        Command::Keys { pattern } => under(vec![qualified(db, literal_prefix(pattern))]),
        Command::Prune { prefix }
        | Command::ListKeys { prefix, .. }
        | Command::ListKeyValues { prefix, .. }
        | Command::Count { prefix } => under(vec![qualified(db, prefix)]),
        Command::Move { key, to } => Footprint {
            keys: vec![qualified(db, key), qualified(*to, key)],
            prefixes: Vec::new(),
        },
        Command::Copy {
            from, to, to_db, ..
        } => Footprint {
            keys: vec![qualified(db, from), qualified(to_db.unwrap_or(db), to)],
            prefixes: Vec::new(),
        },
        Command::Transaction { commands, watched } => {
            let mut all = Footprint {
                keys: watched.iter().map(|w| qualified(w.db, &w.key)).collect(),
                prefixes: Vec::new(),
            };
            for inner in commands.iter().map(footprint) {
                all.keys.extend(inner.keys);
                all.prefixes.extend(inner.prefixes);
            }
            all
        }
        command => Footprint {
            keys: command.keys().iter().map(|k| qualified(db, k)).collect(),
            prefixes: Vec::new(),
        },
    }
}

/// Every key that could be present: each key a command names (MOVE names the key in both
/// databases), and, where SWAP-DB carries keys from one database to another, the same key in
/// every database it may be carried to.
fn possible_keys(ops: &[Operation<Command, Reply>], footprints: &[Footprint]) -> Vec<Vec<u8>> {
    let mut swapped = DisjointSets::new(usize::from(DATABASES));
    for op in ops {
        if let Command::SwapDb { a, b } = op.input {
            if a < DATABASES && b < DATABASES {
                swapped.union(usize::from(a), usize::from(b));
            }
        }
    }
    let mut keys: Vec<Vec<u8>> = Vec::new();
    for key in footprints.iter().flat_map(|f| f.keys.iter()) {
        let root = swapped.find(usize::from(key[0]));
        for db in 0..DATABASES {
            if swapped.find(usize::from(db)) == root {
                keys.push(qualified(db, &key[1..]));
            }
        }
    }
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// Groups of operations (indices, in history order) that share no key.
fn partition(ops: &[Operation<Command, Reply>], checked: &[usize]) -> Vec<Vec<usize>> {
    let footprints: Vec<Footprint> = checked.iter().map(|&i| footprint(&ops[i].input)).collect();
    let keys = possible_keys(ops, &footprints);
    let key_id = |key: &[u8]| {
        keys.binary_search_by(|k| k.as_slice().cmp(key))
            .expect("every key was collected")
    };
    let mut sets = DisjointSets::new(keys.len());
    // Each operation's representative key, or none if it touches no possible key.
    let mut anchor: Vec<Option<usize>> = Vec::with_capacity(checked.len());
    for footprint in &footprints {
        let mut ids: Vec<usize> = footprint.keys.iter().map(|k| key_id(k)).collect();
        for prefix in &footprint.prefixes {
            let first = keys.partition_point(|key| key < prefix);
            let under = keys[first..].iter().take_while(|k| k.starts_with(prefix));
            ids.extend(first..first + under.count());
        }
        for pair in ids.windows(2) {
            sets.union(pair[0], pair[1]);
        }
        anchor.push(ids.first().copied());
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
