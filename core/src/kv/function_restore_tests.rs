//! FUNCTION DUMP / RESTORE / STATS applied by the state machine, and their parsing.

use super::tests::{replies, request};
use super::*;
use crate::redis::Resp;
use crate::scripting::{function_dump, parse, RestorePolicy, ScriptCommand};

fn apply(machine: &mut StateMachine, slot: Slot, command: ScriptCommand) -> Resp {
    let reply = replies(machine.apply_batch(slot, &[request(1, slot, Command::Script(command))]));
    match reply.into_iter().next().expect("one reply") {
        Reply::Resp(resp) => resp,
        other => panic!("a script command answers RESP, not {other:?}"),
    }
}

fn library(name: &str, functions: &[(&str, i64)]) -> Vec<u8> {
    let mut code = format!("#!lua name={name}\n");
    for (f, value) in functions {
        code += &format!("redis.register_function('{f}', function() return {value} end)\n");
    }
    code.into_bytes()
}

fn load(code: Vec<u8>) -> ScriptCommand {
    ScriptCommand::FunctionLoad {
        code,
        replace: false,
    }
}

fn fcall(function: &str) -> ScriptCommand {
    ScriptCommand::Fcall {
        function: function.into(),
        keys: vec![],
        args: vec![],
        read_only: false,
        over_maxmemory: false,
        debug_allowed: false,
    }
}

fn restore(payload: &[u8], policy: RestorePolicy) -> ScriptCommand {
    let codes = function_dump::decode(payload).expect("a dump's payload");
    ScriptCommand::FunctionRestore { codes, policy }
}

fn dump(machine: &mut StateMachine, slot: Slot) -> Vec<u8> {
    match apply(machine, slot, ScriptCommand::FunctionDump) {
        Resp::Bulk(Some(payload)) => payload,
        other => panic!("FUNCTION DUMP answered {other:?}"),
    }
}

fn error(text: &str) -> Resp {
    Resp::Error(text.into())
}

fn ok() -> Resp {
    Resp::Simple("OK".into())
}

#[test]
fn function_restore_appends_replaces_or_flushes_as_its_policy_says() {
    let mut machine = StateMachine::new(StateMachineConfig::default());
    apply(&mut machine, 1, load(library("a", &[("fa", 1)])));
    let payload = dump(&mut machine, 2);
    apply(&mut machine, 3, ScriptCommand::FunctionFlush);
    apply(&mut machine, 4, load(library("a", &[("fa2", 2)])));
    apply(&mut machine, 5, load(library("b", &[("fb", 3)])));
    assert_eq!(
        apply(&mut machine, 6, restore(&payload, RestorePolicy::Append)),
        error("ERR Library a already exists")
    );
    assert_eq!(apply(&mut machine, 7, fcall("fa2")), Resp::Int(2));
    assert_eq!(
        apply(&mut machine, 8, restore(&payload, RestorePolicy::Replace)),
        ok()
    );
    assert_eq!(apply(&mut machine, 9, fcall("fa")), Resp::Int(1));
    assert_eq!(
        apply(&mut machine, 10, fcall("fa2")),
        error("ERR Function not found")
    );
    assert_eq!(apply(&mut machine, 11, fcall("fb")), Resp::Int(3));
    assert_eq!(
        apply(&mut machine, 12, restore(&payload, RestorePolicy::Flush)),
        ok()
    );
    assert_eq!(
        apply(&mut machine, 13, fcall("fb")),
        error("ERR Function not found")
    );
    assert_eq!(apply(&mut machine, 14, fcall("fa")), Resp::Int(1));
    assert_eq!(
        dump(&mut machine, 15),
        payload,
        "a restored state dumps the same"
    );
}

#[test]
fn a_restore_whose_function_another_library_has_changes_nothing() {
    let mut machine = StateMachine::new(StateMachineConfig::default());
    apply(
        &mut machine,
        1,
        load(library("lib1", &[("f1", 1), ("f3", 3)])),
    );
    let payload = dump(&mut machine, 2);
    apply(&mut machine, 3, ScriptCommand::FunctionFlush);
    apply(&mut machine, 4, load(library("lib1", &[("f6", 6)])));
    apply(&mut machine, 5, load(library("lib2", &[("F3", 4)])));
    let before = dump(&mut machine, 6);
    assert_eq!(
        apply(&mut machine, 7, restore(&payload, RestorePolicy::Append)),
        error("ERR Library lib1 already exists")
    );
    assert_eq!(
        apply(&mut machine, 8, restore(&payload, RestorePolicy::Replace)),
        error("ERR Function f3 already exists")
    );
    assert_eq!(dump(&mut machine, 9), before);
    assert_eq!(apply(&mut machine, 10, fcall("f6")), Resp::Int(6));
}

#[test]
fn function_names_are_case_insensitive_and_stats_count_libraries_and_functions() {
    let mut machine = StateMachine::new(StateMachineConfig::default());
    let stats = |libraries: i64, functions: i64| {
        let bulk = |s: &str| Resp::Bulk(Some(s.as_bytes().to_vec()));
        Resp::Array(Some(vec![
            bulk("running_script"),
            Resp::Bulk(None),
            bulk("engines"),
            Resp::Array(Some(vec![
                bulk("LUA"),
                Resp::Array(Some(vec![
                    bulk("libraries_count"),
                    Resp::Int(libraries),
                    bulk("functions_count"),
                    Resp::Int(functions),
                ])),
            ])),
        ]))
    };
    assert_eq!(
        apply(&mut machine, 1, ScriptCommand::FunctionStats),
        stats(0, 0)
    );
    apply(
        &mut machine,
        2,
        load(library("Lib", &[("Foo", 7), ("bar", 8)])),
    );
    assert_eq!(apply(&mut machine, 3, fcall("FOO")), Resp::Int(7));
    assert_eq!(
        apply(&mut machine, 4, load(library("other", &[("foo", 9)]))),
        error("ERR Function foo already exists")
    );
    assert_eq!(
        apply(&mut machine, 5, ScriptCommand::FunctionStats),
        stats(1, 2)
    );
    let restored = StateMachine::decode(&machine.encode()).expect("decodes");
    let mut restored = restored;
    assert_eq!(apply(&mut restored, 6, fcall("foo")), Resp::Int(7));
    apply(&mut machine, 7, ScriptCommand::FunctionFlush);
    assert_eq!(
        apply(&mut machine, 8, ScriptCommand::FunctionStats),
        stats(0, 0)
    );
}

fn parsed(line: &[&[u8]]) -> Result<ScriptCommand, String> {
    let args: Vec<Vec<u8>> = line.iter().map(|a| a.to_vec()).collect();
    parse(&String::from_utf8_lossy(&args[0]).to_uppercase(), &args)
}

#[test]
fn function_subcommands_parse_with_redis_errors() {
    assert_eq!(
        parsed(&[b"FUNCTION", b"RESTORE", b"bad_payload"]),
        Err("ERR DUMP payload version or checksum are wrong".into())
    );
    assert_eq!(
        parsed(&[b"FUNCTION", b"RESTORE", b"bad_payload", b"MERGE"]),
        Err(
            "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE."
                .into()
        )
    );
    let payload = function_dump::encode([b"code".as_slice()].into_iter());
    assert_eq!(
        parsed(&[b"FUNCTION", b"restore", &payload, b"replace"]),
        Ok(ScriptCommand::FunctionRestore {
            codes: vec![b"code".to_vec()],
            policy: RestorePolicy::Replace
        })
    );
    assert_eq!(
        parsed(&[b"FUNCTION", b"LOAD", b"foo", b"bar", b"code"]),
        Err("ERR Unknown option given: foo".into())
    );
    assert_eq!(
        parsed(&[b"FUNCTION", b"LOAD", b"replace", b"REPLACE", b"code"]),
        Ok(ScriptCommand::FunctionLoad {
            code: b"code".to_vec(),
            replace: true
        })
    );
    assert_eq!(
        parsed(&[b"FUNCTION", b"flush", b"sync", b"extra"]),
        Err(
            "ERR unknown subcommand or wrong number of arguments for 'flush'. Try FUNCTION HELP."
                .into()
        )
    );
    assert_eq!(
        parsed(&[b"FUNCTION", b"STATS", b"x"]),
        Err("ERR wrong number of arguments for 'function|stats' command".into())
    );
    assert_eq!(
        parsed(&[b"FCALL", b"f", b"bad"]),
        Err("ERR Bad number of keys provided".into())
    );
    assert_eq!(
        parsed(&[b"EVAL", b"return 1", b"bad"]),
        Err(crate::redis::NOT_AN_INTEGER.into())
    );
}
