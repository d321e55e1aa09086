//! Scripts applied by the state machine: effects, refusals, and the registry in the encoding.

use super::tests::{replies, request};
use super::*;
use crate::redis::Resp;
use crate::scripting::ScriptCommand;

fn apply(machine: &mut StateMachine, slot: Slot, command: Command) -> Reply {
    let reply = replies(machine.apply_batch(slot, &[request(1, slot, command)]));
    reply.into_iter().next().expect("one reply")
}

fn eval(body: &str, keys: &[&str], args: &[&str], read_only: bool) -> Command {
    let bytes = |items: &[&str]| items.iter().map(|s| s.as_bytes().to_vec()).collect();
    Command::Script(ScriptCommand::Eval {
        body: body.into(),
        keys: bytes(keys),
        args: bytes(args),
        read_only,
        over_maxmemory: false,
        debug_allowed: false,
    })
}

const COMPARE_AND_DELETE: &str =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

#[test]
fn compare_and_delete_script_deletes_only_a_matching_value() {
    let mut machine = StateMachine::new(StateMachineConfig::default());
    apply(
        &mut machine,
        1,
        Command::Set {
            key: b"lock".to_vec(),
            value: b"me".to_vec(),
        },
    );
    assert_eq!(
        apply(
            &mut machine,
            2,
            eval(COMPARE_AND_DELETE, &["lock"], &["you"], false)
        ),
        Reply::Resp(Resp::Int(0))
    );
    assert_eq!(
        machine.read(&Command::Get {
            key: b"lock".to_vec()
        }),
        Reply::Value(Some(b"me".to_vec()))
    );
    assert_eq!(
        apply(
            &mut machine,
            3,
            eval(COMPARE_AND_DELETE, &["lock"], &["me"], false)
        ),
        Reply::Resp(Resp::Int(1))
    );
    assert_eq!(
        machine.read(&Command::Get {
            key: b"lock".to_vec()
        }),
        Reply::Value(None)
    );
}

#[test]
fn read_only_scripts_refuse_writes_and_change_nothing() {
    let mut machine = StateMachine::new(StateMachineConfig::default());
    let reply = apply(
        &mut machine,
        1,
        eval("return redis.pcall('set', 'a', 'b')", &[], &[], true),
    );
    assert_eq!(
        reply,
        Reply::Resp(Resp::Error(
            "ERR Write commands are not allowed from read-only scripts.".into()
        ))
    );
    assert!(machine.is_empty());
}

#[test]
fn evalsha_runs_a_cached_body_and_the_cache_survives_the_encoding() {
    let mut machine = StateMachine::new(StateMachineConfig::default());
    let sha = keyspace_script::sha1_hex(b"return redis.call('incr', KEYS[1])");
    let evalsha = |sha: &str| {
        Command::Script(ScriptCommand::EvalSha {
            sha: sha.into(),
            keys: vec![b"n".to_vec()],
            args: vec![],
            read_only: false,
            over_maxmemory: false,
            debug_allowed: false,
        })
    };
    let unknown = apply(&mut machine, 1, evalsha(&sha));
    assert_eq!(
        unknown,
        Reply::Resp(Resp::Error(
            "NOSCRIPT No matching script. Please use EVAL.".into()
        ))
    );
    let load = Command::Script(ScriptCommand::Load {
        body: b"return redis.call('incr', KEYS[1])".to_vec(),
    });
    assert_eq!(
        apply(&mut machine, 2, load),
        Reply::Resp(Resp::Bulk(Some(sha.clone().into_bytes())))
    );
    let library =
        b"#!lua name=lib\nredis.register_function('f', function(keys) return keys[1] end)".to_vec();
    apply(
        &mut machine,
        3,
        Command::Script(ScriptCommand::FunctionLoad {
            code: library,
            replace: false,
        }),
    );
    let mut restored = StateMachine::decode(&machine.encode()).expect("decodes");
    restored
        .verify_encoding(&machine.encode())
        .expect("the encoding holds the scripts");
    assert_eq!(
        apply(&mut restored, 4, evalsha(&sha)),
        Reply::Resp(Resp::Int(1))
    );
    let fcall = Command::Script(ScriptCommand::Fcall {
        function: "f".into(),
        keys: vec![b"k".to_vec()],
        args: vec![],
        read_only: false,
        over_maxmemory: false,
        debug_allowed: false,
    });
    assert_eq!(
        apply(&mut restored, 5, fcall),
        Reply::Resp(Resp::Bulk(Some(b"k".to_vec())))
    );
}

fn over_maxmemory(command: Command) -> Command {
    let Command::Script(mut script) = command else {
        unreachable!("a script command")
    };
    script.mark_over_maxmemory();
    Command::Script(script)
}

#[test]
fn over_maxmemory_a_script_without_shebang_may_read_but_its_writes_are_refused_with_oom() {
    let mut machine = StateMachine::new(StateMachineConfig::default());
    let set = "return redis.call('set', KEYS[1], 'v')";
    let get = "return redis.call('get', KEYS[1])";
    let refused = apply(
        &mut machine,
        1,
        over_maxmemory(eval(set, &["k"], &[], false)),
    );
    let Reply::Resp(Resp::Error(error)) = refused else {
        panic!("refused: {refused:?}")
    };
    assert!(error.starts_with("OOM command not allowed when used memory > 'maxmemory'."));
    assert!(machine.is_empty(), "the refused write changed nothing");
    apply(&mut machine, 2, eval(set, &["k"], &[], false));
    assert_eq!(
        apply(
            &mut machine,
            3,
            over_maxmemory(eval(get, &["k"], &[], false))
        ),
        Reply::Resp(Resp::Bulk(Some(b"v".to_vec())))
    );
}

#[test]
fn over_maxmemory_a_script_with_flags_runs_only_when_it_allows_oom_or_never_writes() {
    let mut machine = StateMachine::new(StateMachineConfig::default());
    let run = |machine: &mut StateMachine, slot, body: &str| {
        apply(
            machine,
            slot,
            over_maxmemory(eval(body, &["k"], &[], false)),
        )
    };
    assert_eq!(
        run(&mut machine, 1, "#!lua flags=\nreturn 1"),
        Reply::Resp(Resp::Error(
            "OOM command not allowed when used memory > 'maxmemory'.".into()
        ))
    );
    assert_eq!(
        run(
            &mut machine,
            2,
            "#!lua flags=allow-oom\nreturn redis.call('set', KEYS[1], 'v')"
        ),
        Reply::Resp(Resp::Simple("OK".into()))
    );
    assert_eq!(
        run(
            &mut machine,
            3,
            "#!lua flags=no-writes\nreturn redis.call('get', KEYS[1])"
        ),
        Reply::Resp(Resp::Bulk(Some(b"v".to_vec())))
    );
}

/// A log of script commands: a library, cached bodies, runs that read and write, a flush.
fn script_log() -> Vec<Command> {
    let library = b"#!lua name=lib\nlocal n = 0\nredis.register_function('bump', function(keys) n = n + 1 return {n, redis.call('incr', keys[1])} end)".to_vec();
    let mut log = vec![Command::Script(ScriptCommand::FunctionLoad {
        code: library,
        replace: false,
    })];
    for i in 0..6 {
        let n = i.to_string();
        log.push(eval(COMPARE_AND_DELETE, &["lock"], &[&n], false));
        log.push(eval(
            "redis.call('set', KEYS[1], ARGV[1]) return {math.random(100), redis.call('get', KEYS[1])}",
            &["lock"],
            &[&n],
            false,
        ));
        log.push(Command::Script(ScriptCommand::Fcall {
            function: "bump".into(),
            keys: vec![b"counter".to_vec()],
            args: vec![],
            read_only: false,
            over_maxmemory: false,
            debug_allowed: false,
        }));
        log.push(eval("x = 1", &[], &[], false));
        if i == 3 {
            log.push(Command::Script(ScriptCommand::Flush));
        }
    }
    log
}

#[test]
fn a_replica_restored_from_a_snapshot_with_a_new_lua_state_replies_as_one_that_kept_its_state() {
    let log = script_log();
    let mut warm = StateMachine::new(StateMachineConfig::default());
    let mut cold = StateMachine::new(StateMachineConfig::default());
    for (i, command) in log.into_iter().enumerate() {
        let slot = i as Slot + 1;
        if i % 5 == 2 {
            cold = StateMachine::decode(&cold.encode()).expect("decodes");
        }
        let warm_reply = apply(&mut warm, slot, command.clone());
        keyspace_script::reset();
        let cold_reply = apply(&mut cold, slot, command);
        assert_eq!(warm_reply, cold_reply, "entry {slot}");
    }
    assert_eq!(warm.encode(), cold.encode());
    assert!(!warm.is_empty());
}

fn eval_reply(machine: &mut StateMachine, slot: Slot, body: &str) -> Resp {
    match apply(machine, slot, eval(body, &[], &[], false)) {
        Reply::Resp(resp) => resp,
        other => panic!("a script answers a RESP reply, not {other:?}"),
    }
}

#[test]
fn select_inside_a_script_changes_the_database_of_its_later_calls_only() {
    let mut machine = StateMachine::new(StateMachineConfig::default());
    let body = "redis.call('select', '9'); redis.call('set', 'k', 'v'); \
                local other = redis.call('get', 'k'); redis.call('select', 0); \
                return {other, redis.call('get', 'k')}";
    let reply = eval_reply(&mut machine, 1, body);
    assert_eq!(
        reply,
        Resp::Array(Some(vec![
            Resp::Bulk(Some(b"v".to_vec())),
            Resp::Bulk(None)
        ]))
    );
    let reply = eval_reply(&mut machine, 2, "redis.call('select', 9) return 1");
    assert_eq!(reply, Resp::Int(1));
    let after = eval_reply(&mut machine, 3, "return redis.call('get', 'k')");
    assert_eq!(
        after,
        Resp::Bulk(None),
        "the next script starts in its caller's database"
    );
    let out_of_range = eval_reply(&mut machine, 4, "return redis.pcall('select', 99)");
    assert_eq!(
        out_of_range,
        Resp::Error("ERR DB index is out of range".into())
    );
}

#[test]
fn scripts_may_ping_and_echo_but_not_call_commands_flagged_noscript() {
    let mut machine = StateMachine::new(StateMachineConfig::default());
    let reply = eval_reply(
        &mut machine,
        1,
        "return {redis.call('ping'), redis.call('ping', 'a'), redis.call('echo', 'b')}",
    );
    assert_eq!(
        reply,
        Resp::Array(Some(vec![
            Resp::Simple("PONG".into()),
            Resp::Bulk(Some(b"a".to_vec())),
            Resp::Bulk(Some(b"b".to_vec())),
        ]))
    );
    let refused = "ERR This Redis command is not allowed from script";
    let noscript = [
        "'blpop', 'x', 0",
        "'bzpopmax', 'z', 0",
        "'cluster', 'reset', 'hard'",
        "'multi'",
    ];
    for (slot, call) in (10..).zip(noscript) {
        let reply = eval_reply(&mut machine, slot, &format!("return redis.pcall({call})"));
        assert_eq!(reply, Resp::Error(refused.into()), "{call}");
    }
    let unknown = eval_reply(&mut machine, 20, "return redis.pcall('cluster', 'info')");
    assert_eq!(
        unknown,
        Resp::Error("ERR Unknown Redis command called from script".into())
    );
    let arity = eval_reply(&mut machine, 21, "return redis.pcall('get', 'a', 'b')");
    assert_eq!(
        arity,
        Resp::Error("ERR Wrong number of args calling Redis command from script".into())
    );
}

#[test]
fn debug_sleep_is_refused_in_scripts_unless_the_run_was_marked_to_allow_it() {
    let mut machine = StateMachine::new(StateMachineConfig::default());
    let body =
        "return {redis.pcall('debug', 'sleep', '0.01'), redis.pcall('debug', 'protocol', 'map')}";
    let refused = Resp::Error("ERR This Redis command is not allowed from script".into());
    let reply = apply(&mut machine, 1, eval(body, &[], &[], false));
    assert_eq!(
        reply,
        Reply::Resp(Resp::Array(Some(vec![refused.clone(), refused.clone()])))
    );
    let Command::Script(mut script) = eval(body, &[], &[], false) else {
        unreachable!("eval builds a script command")
    };
    script.mark_debug_allowed();
    assert_eq!(
        apply(&mut machine, 2, Command::Script(script)),
        Reply::Resp(Resp::Array(Some(vec![Resp::Simple("OK".into()), refused])))
    );
}
