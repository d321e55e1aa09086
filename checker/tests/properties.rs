//! Property tests: histories made by running a sequential model under random concurrency are
//! linearizable; with one output changed, small ones get the same verdict from the checker as
//! from an exhaustive search over every order.

use keyspace_checker::models::keyspace_scripts as scripts;
use keyspace_checker::{
    check_kv, check_register, check_string_map, CasRegister, CheckOptions, History, KeyspaceModel,
    MapInput, MapOutput, Model, Operation, Outcome, RegisterInput, RegisterOutput, StringMap,
};
use keyspace_core::redis::Resp;
use keyspace_core::scripting::ScriptCommand;
use keyspace_core::{Command, CommandError, Reply, SetCondition};
use proptest::prelude::*;

/// One generated operation: what it does, how far its invoke and return lie from its
/// linearization point, and whether its outcome is lost.
#[derive(Clone, Debug)]
struct Draw {
    pick: u8,
    before: u64,
    after: u64,
    lost: bool,
    client: u64,
}

fn draws(max: usize) -> impl Strategy<Value = Vec<Draw>> {
    prop::collection::vec(
        (
            any::<u8>(),
            0u64..40,
            0u64..40,
            prop::bool::weighted(0.15),
            0u64..4,
        )
            .prop_map(|(pick, before, after, lost, client)| Draw {
                pick,
                before,
                after,
                lost,
                client,
            }),
        1..=max,
    )
}

/// Runs `inputs` in order through `model`, each at time 10·i + 5, stretched by its draw. A lost
/// outcome becomes unknown; half of the lost writes never took effect at all.
fn run_history<M: Model>(
    model: &M,
    draws: &[Draw],
    input: impl Fn(u8) -> M::Input,
    output_of: impl Fn(&M, &M::State, &M::Input) -> M::Output,
) -> Vec<Operation<M::Input, M::Output>> {
    let mut state = model.init();
    let mut ops = Vec::new();
    for (i, draw) in draws.iter().enumerate() {
        let point = 10 * i as u64 + 50;
        let input = input(draw.pick);
        let output = output_of(model, &state, &input);
        let applied = !(draw.lost && draw.pick & 1 == 0);
        if applied {
            state = model
                .step(&state, &input, Some(&output))
                .expect("the model allows its own output");
        }
        let outcome = if draw.lost {
            Outcome::Unknown
        } else {
            Outcome::Returned {
                at_ns: point + draw.after,
                output,
            }
        };
        ops.push(Operation {
            client: draw.client,
            invoke_ns: point - draw.before,
            input,
            outcome,
        });
    }
    ops
}

/// Exhaustive: tries every order that respects real time, each unknown-outcome operation
/// placed anywhere after its invoke or left out.
fn brute_force<M: Model>(model: &M, ops: &[Operation<M::Input, M::Output>]) -> bool {
    fn go<M: Model>(
        model: &M,
        ops: &[Operation<M::Input, M::Output>],
        placed: &mut Vec<bool>,
        state: &M::State,
    ) -> bool {
        let open_completed: Vec<usize> = (0..ops.len())
            .filter(|&i| !placed[i] && ops[i].output().is_some())
            .collect();
        if open_completed.is_empty() {
            return true;
        }
        let first_return = open_completed
            .iter()
            .map(|&i| ops[i].return_ns().unwrap())
            .min()
            .unwrap();
        for i in 0..ops.len() {
            if placed[i] || ops[i].invoke_ns > first_return {
                continue;
            }
            if let Some(next) = model.step(state, &ops[i].input, ops[i].output()) {
                placed[i] = true;
                let found = go(model, ops, placed, &next);
                placed[i] = false;
                if found {
                    return true;
                }
            }
        }
        false
    }
    go(model, ops, &mut vec![false; ops.len()], &model.init())
}

fn register_input(pick: u8) -> RegisterInput {
    let value = i64::from(pick / 3 % 3);
    match pick % 3 {
        0 => RegisterInput::Write(value),
        1 => RegisterInput::Cas {
            from: value,
            to: i64::from(pick / 9 % 3),
        },
        _ => RegisterInput::Read,
    }
}

fn register_output(_: &CasRegister, state: &Option<i64>, input: &RegisterInput) -> RegisterOutput {
    match input {
        RegisterInput::Read => RegisterOutput::Read(*state),
        RegisterInput::Write(_) => RegisterOutput::Write,
        RegisterInput::Cas { from, .. } => RegisterOutput::Cas(*state == Some(*from)),
    }
}

fn register_mutated(output: &RegisterOutput, pick: u8) -> RegisterOutput {
    match output {
        RegisterOutput::Read(None) => RegisterOutput::Read(Some(i64::from(pick % 3))),
        RegisterOutput::Read(Some(v)) => RegisterOutput::Read((pick & 1 == 0).then_some(v + 1)),
        RegisterOutput::Cas(ok) => RegisterOutput::Cas(!ok),
        RegisterOutput::Write => RegisterOutput::Read(Some(0)),
    }
}

const KEYS: [&[u8]; 3] = [b"a", b"ab", b"b"];
const VALUES: [&[u8]; 3] = [b"0", b"1", b"x"];

/// A command of `kv_command_in_db0`, or of the database commands, in database 0 or 1.
fn kv_command(pick: u8) -> Command {
    let key = KEYS[usize::from(pick / 13 % 3)].to_vec();
    let command = match pick % 23 {
        0 => Command::Move {
            key,
            to: pick / 23 % 2,
        },
        1 => Command::FlushDb,
        2 => Command::Keys {
            pattern: b"a*".to_vec(),
        },
        3 if pick.is_multiple_of(2) => Command::SwapDb { a: 0, b: 1 },
        3 => Command::FlushAll,
        4 => Command::SetIf {
            key,
            value: VALUES[usize::from(pick % 3)].to_vec(),
            condition: [
                SetCondition::Always,
                SetCondition::IfAbsent,
                SetCondition::IfPresent,
            ][usize::from(pick / 5 % 3)],
            get: pick.is_multiple_of(2),
        },
        5 => Command::Append {
            key,
            value: VALUES[usize::from(pick % 3)].to_vec(),
        },
        6 => Command::MultiSetIfAbsent {
            pairs: vec![(key, VALUES[usize::from(pick % 3)].to_vec())],
        },
        7 => script(
            scripts::COMPARE_AND_DELETE,
            vec![key],
            vec![VALUES[usize::from(pick % 3)].to_vec()],
        ),
        8 => script(
            scripts::MOVE_BETWEEN_KEYS,
            vec![key, KEYS[usize::from(pick / 39 % 3)].to_vec()],
            vec![],
        ),
        _ => kv_command_in_db0(pick),
    };
    command.in_db(pick / 7 % 2)
}

/// An EVAL of a script the model knows.
fn script(body: &str, keys: Vec<Vec<u8>>, args: Vec<Vec<u8>>) -> Command {
    Command::Script(ScriptCommand::eval(body.as_bytes(), keys, args))
}

fn kv_command_in_db0(pick: u8) -> Command {
    let key = KEYS[usize::from(pick / 13 % 3)].to_vec();
    let other = KEYS[usize::from(pick / 39 % 3)].to_vec();
    let value = VALUES[usize::from(pick / 13 % 3)].to_vec();
    match pick % 13 {
        0 | 1 => Command::Set { key, value },
        2 => Command::TestAndSet {
            key,
            expected: value,
            new: VALUES[usize::from(pick % 3)].to_vec(),
        },
        3 => Command::Add {
            key,
            delta: i64::from(pick % 3) - 1,
        },
        4 => Command::Delete { key },
        5 => Command::Remove { key },
        6 => Command::Rename {
            from: key,
            to: other,
        },
        7 => Command::Prune {
            prefix: b"a".to_vec(),
        },
        8 => Command::ListKeys {
            prefix: b"a".to_vec(),
            start: None,
            count: None,
        },
        9 => Command::ListKeyValues {
            prefix: Vec::new(),
            start: Some(b"ab".to_vec()),
            count: Some(2),
        },
        10 => Command::Count {
            prefix: b"a".to_vec(),
        },
        12 if pick.is_multiple_of(2) => Command::MultiSet {
            pairs: vec![
                (key, value),
                (other, VALUES[usize::from(pick % 3)].to_vec()),
            ],
        },
        12 => Command::MultiDelete {
            keys: vec![key, other],
        },
        11 if pick.is_multiple_of(2) => Command::MultiGet {
            keys: vec![key, other],
        },
        _ => Command::Get { key },
    }
}

fn kv_output(
    _: &KeyspaceModel,
    state: &keyspace_checker::models::keyspace::StoreState,
    command: &Command,
) -> Reply {
    keyspace_checker::models::keyspace::apply(state, command).1
}

fn kv_mutated(reply: &Reply, pick: u8) -> Reply {
    match reply {
        Reply::Ok => Reply::Error(CommandError::NoSuchKey),
        Reply::Value(None) => Reply::Value(Some(VALUES[usize::from(pick % 3)].to_vec())),
        Reply::Value(Some(_)) => Reply::Value(None),
        Reply::Bool(b) => Reply::Bool(!b),
        Reply::Int(n) => Reply::Int(n + 1 + i64::from(pick % 2)),
        Reply::Keys(keys) if keys.is_empty() => Reply::Keys(vec![b"a".to_vec()]),
        Reply::Keys(keys) => Reply::Keys(keys[1..].to_vec()),
        Reply::KeyValues(pairs) if pairs.is_empty() => {
            Reply::KeyValues(vec![(b"b".to_vec(), b"0".to_vec())])
        }
        Reply::KeyValues(pairs) => Reply::KeyValues(pairs[1..].to_vec()),
        Reply::Resp(Resp::Int(n)) => Reply::Resp(Resp::Int(1 - n)),
        Reply::Resp(Resp::Bulk(Some(_))) => Reply::Resp(Resp::Bulk(None)),
        Reply::Resp(Resp::Bulk(None)) => {
            Reply::Resp(Resp::Bulk(Some(VALUES[usize::from(pick % 3)].to_vec())))
        }
        Reply::Error(_) | Reply::Resp(_) | Reply::Described { .. } | Reply::Popped { .. } => {
            Reply::Ok
        }
        Reply::Scan { cursor, keys } => Reply::Scan {
            cursor: cursor + 1,
            keys: keys.clone(),
        },
        Reply::Values(values) => {
            let mut changed = values.clone();
            match changed.first_mut() {
                Some(first @ Some(_)) => *first = None,
                Some(first) => *first = Some(VALUES[usize::from(pick % 3)].to_vec()),
                None => changed.push(None),
            }
            Reply::Values(changed)
        }
        Reply::Watched { slot, values } => match kv_mutated(&Reply::Values(values.clone()), pick) {
            Reply::Values(values) => Reply::Watched {
                slot: *slot,
                values,
            },
            other => unreachable!("Values mutate to Values: {other:?}"),
        },
        // No command inside a transaction answers StaleRequest: never an allowed answer.
        Reply::Transaction(None) => {
            Reply::Transaction(Some(vec![Reply::Error(CommandError::StaleRequest {
                seq: 0,
            })]))
        }
        Reply::Transaction(Some(replies)) => {
            let mut changed = replies.clone();
            match changed.first_mut() {
                Some(first) => *first = kv_mutated(first, pick),
                None => changed.push(Reply::Ok),
            }
            Reply::Transaction(Some(changed))
        }
    }
}

/// Changes the output of the `which`-th completed operation, if there is one.
fn mutate<I, O>(ops: &mut [Operation<I, O>], which: usize, change: impl Fn(&O) -> O) {
    let completed: Vec<usize> = (0..ops.len())
        .filter(|&i| ops[i].output().is_some())
        .collect();
    if completed.is_empty() {
        return;
    }
    let op = &mut ops[completed[which % completed.len()]];
    if let Outcome::Returned { output, .. } = &mut op.outcome {
        *output = change(output);
    }
}

fn map_input(pick: u8) -> MapInput {
    let key = ["0", "1"][usize::from(pick / 3 % 2)].to_string();
    let value = ["a", "b", "ab"][usize::from(pick / 6 % 3)].to_string();
    match pick % 5 {
        0 => MapInput::Put { key, value },
        1 | 2 => MapInput::Append { key, value },
        _ => MapInput::Get { key },
    }
}

fn map_output(
    model: &StringMap,
    state: &<StringMap as Model>::State,
    input: &MapInput,
) -> MapOutput {
    match input {
        MapInput::Get { key } => {
            let index = model.keys().iter().position(|k| k == key).expect("key");
            MapOutput::Value(state[index].to_string())
        }
        _ => MapOutput::Done,
    }
}

fn map_mutated(output: &MapOutput, pick: u8) -> MapOutput {
    match output {
        MapOutput::Value(v) if pick & 1 == 0 && !v.is_empty() => {
            MapOutput::Value(v[1..].to_string())
        }
        MapOutput::Value(v) => {
            MapOutput::Value(format!("{v}{}", ["a", "b"][usize::from(pick / 2 % 2)]))
        }
        MapOutput::Done => MapOutput::Value(String::new()),
    }
}

fn both_keys() -> StringMap {
    StringMap::new(["0", "1"])
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(400)
}

fn serial() -> CheckOptions {
    CheckOptions {
        threads: 1,
        ..CheckOptions::default()
    }
}

proptest! {
    // PROPTEST_CASES overrides the number of cases, for longer runs.
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn register_histories_from_a_sequential_run_are_linearizable(draws in draws(40)) {
        let ops = run_history(&CasRegister, &draws, register_input, register_output);
        prop_assert!(check_register(&ops, &serial()).is_linearizable());
    }

    #[test]
    fn kv_histories_from_a_sequential_run_are_linearizable(draws in draws(40)) {
        let ops = run_history(&KeyspaceModel, &draws, kv_command, kv_output);
        let history = History { ops };
        prop_assert!(check_kv(&history, &serial()).is_linearizable());
        let whole = CheckOptions { partition: false, ..serial() };
        prop_assert!(check_kv(&history, &whole).is_linearizable());
    }

    #[test]
    fn register_verdict_matches_exhaustive_search_with_one_output_changed(
        draws in draws(8), which in any::<usize>(), pick in any::<u8>()
    ) {
        let mut ops = run_history(&CasRegister, &draws, register_input, register_output);
        mutate(&mut ops, which, |output| register_mutated(output, pick));
        let expected = brute_force(&CasRegister, &ops);
        prop_assert_eq!(check_register(&ops, &serial()).is_linearizable(), expected);
    }

    #[test]
    fn kv_verdict_matches_exhaustive_search_with_one_output_changed(
        draws in draws(8), which in any::<usize>(), pick in any::<u8>()
    ) {
        let mut ops = run_history(&KeyspaceModel, &draws, kv_command, kv_output);
        mutate(&mut ops, which, |reply| kv_mutated(reply, pick));
        let expected = brute_force(&KeyspaceModel, &ops);
        let history = History { ops };
        prop_assert_eq!(check_kv(&history, &serial()).is_linearizable(), expected);
        let whole = CheckOptions { partition: false, ..serial() };
        prop_assert_eq!(check_kv(&history, &whole).is_linearizable(), expected);
    }

    #[test]
    fn string_map_histories_from_a_sequential_run_are_linearizable(draws in draws(40)) {
        let ops = run_history(&both_keys(), &draws, map_input, map_output);
        prop_assert!(check_string_map(&ops, &serial()).is_linearizable());
        let whole = CheckOptions { partition: false, ..serial() };
        prop_assert!(check_string_map(&ops, &whole).is_linearizable());
    }

    #[test]
    fn string_map_verdict_matches_exhaustive_search_with_one_output_changed(
        draws in draws(8), which in any::<usize>(), pick in any::<u8>()
    ) {
        let mut ops = run_history(&both_keys(), &draws, map_input, map_output);
        mutate(&mut ops, which, |output| map_mutated(output, pick));
        let expected = brute_force(&both_keys(), &ops);
        prop_assert_eq!(check_string_map(&ops, &serial()).is_linearizable(), expected);
        let whole = CheckOptions { partition: false, ..serial() };
        prop_assert_eq!(check_string_map(&ops, &whole).is_linearizable(), expected);
    }
}
