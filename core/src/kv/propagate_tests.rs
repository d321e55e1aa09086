//! Specification tests of what applied writes propagate to a replication stream.

use super::tests::{replies, request};
use super::*;
use crate::redis::{self, Resp};
use crate::scripting::ScriptCommand;

/// One client writing one stamped entry per call, with propagation on.
struct Streamed {
    machine: StateMachine,
    slot: Slot,
}

const NOW_MS: u64 = 1_700_000_000_000;

impl Streamed {
    fn new() -> Self {
        let mut machine = StateMachine::new(StateMachineConfig::default());
        machine.set_propagating(true);
        Streamed { machine, slot: 0 }
    }

    fn write_at(&mut self, now_ms: u64, command: Command) -> Reply {
        self.slot += 1;
        let batch = [request(1, self.slot, command)];
        let responses = self.machine.apply_timed_batch(self.slot, now_ms, &batch);
        replies(responses).remove(0)
    }

    /// Redis's command `words` in database `db`, as one request.
    fn run_in(&mut self, db: Db, words: &[&str]) -> Reply {
        self.write_at(NOW_MS, command_in(db, words))
    }

    fn run(&mut self, words: &[&str]) -> Reply {
        self.run_in(0, words)
    }

    /// The effects since the last call, as (database, words).
    fn stream(&mut self) -> Vec<(Db, String)> {
        match self.machine.take_propagated() {
            Propagated::Effects(effects) => effects.into_iter().map(show).collect(),
            Propagated::Lost => panic!("the stream was lost"),
        }
    }
}

fn words_argv(words: &[&str]) -> Vec<Vec<u8>> {
    words.iter().map(|w| w.as_bytes().to_vec()).collect()
}

/// One store command parsed as the node parses a client's.
fn command_in(db: Db, words: &[&str]) -> Command {
    let name = words[0].to_ascii_uppercase();
    let call = redis::parse_store(&name, &words_argv(words)).expect("parses");
    assert_eq!(call.commands.len(), 1, "{words:?} is one command");
    call.commands[0].clone().in_db(db)
}

fn transaction(commands: Vec<Command>) -> Command {
    Command::Transaction {
        commands,
        watched: Vec::new(),
    }
}

fn eval(body: &str, keys: &[&str]) -> Command {
    Command::Script(ScriptCommand::eval(
        body.as_bytes(),
        words_argv(keys),
        Vec::new(),
    ))
}

fn show(effect: Effect) -> (Db, String) {
    let words: Vec<String> = (effect.argv.iter())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    (effect.db, words.join(" "))
}

fn in_db0(lines: &[&str]) -> Vec<(Db, String)> {
    lines.iter().map(|l| (0, l.to_string())).collect()
}

#[test]
fn nothing_is_recorded_until_propagation_is_turned_on() {
    let mut m = Streamed::new();
    m.machine.set_propagating(false);
    m.run(&["SET", "k", "v"]);
    assert!(!m.machine.is_propagating());
    assert_eq!(m.stream(), vec![]);
    m.machine.set_propagating(true);
    m.run(&["SET", "k", "w"]);
    assert_eq!(m.stream(), in_db0(&["SET k w"]));
}

#[test]
fn relative_deadlines_propagate_as_absolute_ones_at_the_entry_time() {
    let mut m = Streamed::new();
    let at = |ms: u64| (NOW_MS + ms).to_string();
    m.run(&["SET", "k", "v", "EX", "200"]);
    m.run(&["SETEX", "k", "100", "v"]);
    m.run(&["PSETEX", "k", "100000", "v"]);
    m.run(&["EXPIRE", "k", "100"]);
    m.run(&["PEXPIRE", "k", "5000"]);
    m.run(&["SET", "k", "v", "KEEPTTL"]);
    m.run(&["GETEX", "k", "EX", "7"]);
    let keep = crate::command::TtlChange::Keep;
    m.write_at(
        NOW_MS,
        Command::GetEx {
            key: b"k".to_vec(),
            ttl: keep,
        },
    );
    m.run(&["GETEX", "k", "PERSIST"]);
    assert_eq!(
        m.stream(),
        in_db0(&[
            &format!("SET k v PXAT {}", at(200_000)),
            &format!("SET k v PXAT {}", at(100_000)),
            &format!("SET k v PXAT {}", at(100_000)),
            &format!("PEXPIREAT k {}", at(100_000)),
            &format!("PEXPIREAT k {}", at(5_000)),
            "SET k v KEEPTTL",
            &format!("PEXPIREAT k {}", at(7_000)),
            "PERSIST k",
        ])
    );
}

#[test]
fn a_deadline_already_passed_propagates_as_del() {
    let mut m = Streamed::new();
    let past = ((NOW_MS / 1000) - 100).to_string();
    m.run(&["SET", "a", "v"]);
    m.run(&["EXPIREAT", "a", &past]);
    m.run(&["SET", "b", "v"]);
    m.run(&["GETEX", "b", "EXAT", &past]);
    assert_eq!(
        m.stream(),
        in_db0(&["SET a v", "DEL a", "SET b v", "DEL b"])
    );
}

#[test]
fn writes_that_change_nothing_propagate_nothing() {
    let mut m = Streamed::new();
    m.run(&["SET", "k", "v"]);
    m.stream();
    m.run(&["DEL", "missing"]);
    m.run(&["SETNX", "k", "w"]);
    m.run(&["EXPIRE", "missing", "10"]);
    m.run(&["PERSIST", "k"]);
    m.run(&["GETEX", "k", "PERSIST"]);
    m.run(&["SADD", "s", "a"]);
    m.run(&["SADD", "s", "a"]);
    m.run(&["INCR", "k"]);
    assert_eq!(m.stream(), in_db0(&["SADD s a"]));
}

#[test]
fn getdel_incrbyfloat_and_spop_propagate_as_their_effects() {
    let mut m = Streamed::new();
    m.run(&["SET", "k", "v"]);
    m.run(&["GETDEL", "k"]);
    m.run(&["INCRBYFLOAT", "f", "1.5"]);
    m.run(&["INCR", "n"]);
    m.run(&["SADD", "s", "a"]);
    let Reply::Value(Some(member)) = m.run(&["SPOP", "s"]) else {
        panic!("SPOP takes the member");
    };
    m.run(&["SADD", "t", "a", "b"]);
    m.run(&["SPOP", "t", "5"]);
    assert_eq!(
        m.stream(),
        in_db0(&[
            "SET k v",
            "DEL k",
            "SET f 1.5 KEEPTTL",
            "INCR n",
            "SADD s a",
            &format!("SREM s {}", String::from_utf8_lossy(&member)),
            "SADD t a b",
            "DEL t",
        ])
    );
}

#[test]
fn a_transaction_of_two_writes_or_more_propagates_in_multi_exec_and_of_one_alone() {
    let mut m = Streamed::new();
    let get = || command_in(0, &["GET", "a"]);
    let one = vec![command_in(0, &["SET", "a", "1"]), get()];
    m.write_at(NOW_MS, transaction(one));
    let two = vec![
        command_in(1, &["SET", "a", "1"]),
        get(),
        command_in(2, &["SET", "b", "2"]),
    ];
    m.write_at(NOW_MS, transaction(two));
    let none = vec![command_in(0, &["DEL", "missing"]), get()];
    m.write_at(NOW_MS, transaction(none));
    m.write_at(NOW_MS, transaction(Vec::new()));
    assert_eq!(
        m.stream(),
        vec![
            (0, "SET a 1".into()),
            (1, "MULTI".into()),
            (1, "SET a 1".into()),
            (2, "SET b 2".into()),
            (2, "EXEC".into()),
        ]
    );
}

#[test]
fn scripts_propagate_their_writes_and_script_load_nothing() {
    let mut m = Streamed::new();
    m.run(&["SADD", "s", "a"]);
    m.write_at(NOW_MS, eval("return redis.call('spop', KEYS[1])", &["s"]));
    m.write_at(NOW_MS, eval("return redis.call('spop', KEYS[1])", &["s"]));
    let mget = "return redis.call('mget', 'a', 'b')";
    m.write_at(NOW_MS, eval(mget, &[]));
    let two = "redis.call('set', 'a', '1'); redis.call('incrbyfloat', 'a', '1')";
    m.write_at(NOW_MS, eval(two, &[]));
    let load = ScriptCommand::Load {
        body: b"return 1".to_vec(),
    };
    m.write_at(NOW_MS, Command::Script(load));
    assert_eq!(
        m.stream(),
        in_db0(&[
            "SADD s a",
            "SREM s a",
            "MULTI",
            "SET a 1",
            "SET a 2 KEEPTTL",
            "EXEC"
        ])
    );
}

#[test]
fn keys_reclaimed_by_expiry_propagate_as_del_outside_any_transaction() {
    let mut m = Streamed::new();
    m.run(&["SET", "a", "v", "PX", "10"]);
    m.run_in(3, &["SET", "b", "v", "PX", "10"]);
    m.stream();
    // Reclaimed before the entry's commands: each on its own, before the transaction.
    let later = NOW_MS + 1_000;
    let both = vec![
        command_in(0, &["SET", "c", "1"]),
        command_in(0, &["SET", "d", "2"]),
    ];
    m.write_at(later, transaction(both));
    assert_eq!(
        m.stream(),
        vec![
            (0, "DEL a".into()),
            (3, "DEL b".into()),
            (0, "MULTI".into()),
            (0, "SET c 1".into()),
            (0, "SET d 2".into()),
            (0, "EXEC".into()),
        ]
    );
}

#[test]
fn flushes_and_function_loads_propagate_even_when_they_change_nothing_visible() {
    let mut m = Streamed::new();
    m.run(&["FLUSHALL"]);
    m.run_in(4, &["FLUSHDB"]);
    let code = "#!lua name=lib\nredis.register_function('f', function() return 1 end)";
    let load = ScriptCommand::FunctionLoad {
        code: code.as_bytes().to_vec(),
        replace: false,
    };
    m.write_at(NOW_MS, Command::Script(load.clone()));
    let refused = m.write_at(NOW_MS, Command::Script(load));
    assert!(matches!(refused, Reply::Resp(Resp::Error(_))));
    assert_eq!(
        m.stream(),
        vec![
            (0, "FLUSHALL".into()),
            (4, "FLUSHDB".into()),
            (0, format!("FUNCTION LOAD {code}")),
        ]
    );
}

#[test]
fn a_state_from_a_snapshot_loses_the_stream_once_and_keeps_propagating() {
    let mut m = Streamed::new();
    m.run(&["SET", "k", "v"]);
    let mut restored = StateMachine::decode(&m.machine.encode()).expect("decodes");
    assert!(!restored.is_propagating());
    restored.replace_propagating(&m.machine);
    m.machine = restored;
    assert_eq!(m.machine.take_propagated(), Propagated::Lost);
    m.run(&["SET", "k", "w"]);
    assert_eq!(m.stream(), in_db0(&["SET k w"]));
}

#[test]
fn effects_not_taken_past_the_limit_lose_the_stream_instead_of_growing() {
    let mut m = Streamed::new();
    let keys: Vec<Vec<u8>> = (0..1000).map(|i| format!("k{i}").into_bytes()).collect();
    let pairs: Vec<(Vec<u8>, Vec<u8>)> = keys.iter().map(|k| (k.clone(), b"v".to_vec())).collect();
    m.write_at(NOW_MS, Command::MultiSet { pairs });
    let delete_each: Vec<Command> = (keys.iter())
        .map(|k| Command::Delete { key: k.clone() })
        .collect();
    m.stream();
    let rounds = PROPAGATED_EFFECTS_MAX / (keys.len() + 2) + 1;
    for _ in 0..rounds {
        let restore: Vec<Command> = (keys.iter())
            .map(|k| Command::Set {
                key: k.clone(),
                value: b"v".to_vec(),
            })
            .collect();
        m.write_at(NOW_MS, transaction(restore));
        m.write_at(NOW_MS, transaction(delete_each.clone()));
    }
    assert_eq!(m.machine.take_propagated(), Propagated::Lost);
    m.run(&["SET", "k", "w"]);
    assert_eq!(m.stream(), in_db0(&["SET k w"]));
}

#[test]
fn list_and_sorted_set_writes_propagate_as_written_and_pops_name_the_key_they_took_from() {
    let mut m = Streamed::new();
    m.run(&["RPUSH", "l", "a", "b", "c"]);
    m.run(&["LPUSHX", "missing", "x"]);
    m.run(&["LSET", "l", "0", "z"]);
    m.run(&["LINSERT", "l", "BEFORE", "b", "y"]);
    m.run(&["LREM", "l", "0", "nothing"]);
    m.run(&["LMOVE", "l", "m", "RIGHT", "LEFT"]);
    m.run(&["LMPOP", "2", "none", "l", "LEFT", "COUNT", "2"]);
    m.run(&["ZADD", "z", "GT", "CH", "1.5", "a", "2", "b"]);
    m.run(&["ZREM", "z", "a"]);
    m.run(&["BZPOPMAX", "none", "z", "0"]);
    assert_eq!(
        m.stream(),
        in_db0(&[
            "RPUSH l a b c",
            "LSET l 0 z",
            "LINSERT l BEFORE b y",
            "LMOVE l m RIGHT LEFT",
            "LPOP l 2",
            "ZADD z GT 1.5 a 2 b",
            "ZREM z a",
            "ZPOPMAX z",
        ])
    );
}

#[test]
fn a_write_the_stream_does_not_carry_loses_it_instead_of_leaving_it_short() {
    let mut m = Streamed::new();
    m.run(&["ZADD", "z", "1", "a", "2", "b"]);
    m.run(&["ZREMRANGEBYSCORE", "nothing-here", "0", "10"]);
    assert_eq!(
        m.stream(),
        in_db0(&["ZADD z 1 a 2 b"]),
        "a no-op loses nothing"
    );
    m.run(&["ZREMRANGEBYSCORE", "z", "0", "1"]);
    m.run(&["SET", "k", "v"]);
    assert_eq!(m.machine.take_propagated(), Propagated::Lost);
    m.run(&["SET", "k", "w"]);
    assert_eq!(
        m.stream(),
        in_db0(&["SET k w"]),
        "it propagates again after"
    );
}

#[test]
fn publish_propagates_alone_even_in_a_transaction_and_answers_that_no_subscriber_here_got_it() {
    let mut m = Streamed::new();
    assert_eq!(m.run(&["PUBLISH", "news", "hello"]), Reply::Int(0));
    let inside = transaction(vec![command_in(0, &["PUBLISH", "news", "again"])]);
    m.write_at(NOW_MS, inside);
    assert_eq!(
        m.stream(),
        in_db0(&["PUBLISH news hello", "PUBLISH news again"])
    );
}
