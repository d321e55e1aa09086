//! Reading and writing histories: the recorder's JSON lines round-trip, parsers name the line
//! of malformed input, and the store's model handles multi-key commands across parts.

use keyspace_checker::formats::{self, jsonl, Format, Parsed};
use keyspace_checker::{check_kv, CheckOptions, CheckResult, Recorder};
use keyspace_core::{Command, CommandError, Reply};
use std::time::Duration;

fn set(key: &str, value: &str) -> Command {
    Command::Set {
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
    }
}

fn get(key: &str) -> Command {
    Command::Get {
        key: key.as_bytes().to_vec(),
    }
}

fn value(v: &str) -> Reply {
    Reply::Value(Some(v.as_bytes().to_vec()))
}

fn options() -> CheckOptions {
    CheckOptions {
        timeout: Some(Duration::from_secs(10)),
        ..CheckOptions::default()
    }
}

#[test]
fn recorder_jsonl_round_trips_every_command_reply_and_outcome() {
    let mut rec = Recorder::new();
    let commands = vec![
        set("k", "v"),
        get("k"),
        Command::DirtyGet { key: b"k".to_vec() },
        Command::TestAndSet {
            key: b"k".to_vec(),
            expected: b"v".to_vec(),
            new: b"w%\xff".to_vec(),
        },
        Command::Add {
            key: b"n".to_vec(),
            delta: -7,
        },
        Command::Delete { key: b"k".to_vec() },
        Command::Remove { key: b"k".to_vec() },
        Command::Rename {
            from: b"a".to_vec(),
            to: b"b".to_vec(),
        },
        Command::Prune {
            prefix: b"p".to_vec(),
        },
        Command::ListKeys {
            prefix: b"".to_vec(),
            start: Some(b"b".to_vec()),
            count: Some(3),
        },
        Command::ListKeyValues {
            prefix: b"a".to_vec(),
            start: None,
            count: None,
        },
        Command::Count {
            prefix: b"a".to_vec(),
        },
        Command::MultiSet {
            pairs: vec![
                (b"a".to_vec(), b"1".to_vec()),
                (b"b%".to_vec(), b"\xff".to_vec()),
            ],
        },
        Command::MultiGet {
            keys: vec![b"a".to_vec(), b"\x00".to_vec()],
        },
        Command::MultiDelete {
            keys: vec![b"a".to_vec(), b"b%".to_vec()],
        },
    ];
    let replies = vec![
        Reply::Ok,
        Reply::Value(None),
        value("v"),
        Reply::Bool(true),
        Reply::Int(-7),
        Reply::Bool(false),
        Reply::Value(Some(b"\x00\xfe".to_vec())),
        Reply::Error(CommandError::NoSuchKey),
        Reply::Int(0),
        Reply::Keys(vec![b"b".to_vec(), b"c%".to_vec()]),
        Reply::KeyValues(vec![(b"a".to_vec(), b"1".to_vec())]),
        Reply::Error(CommandError::StaleRequest { seq: 4 }),
        Reply::Error(CommandError::RequestTooLarge { len: 5_000_000 }),
        Reply::Values(vec![Some(b"1".to_vec()), None]),
        Reply::Int(2),
    ];
    assert_eq!(commands.len(), replies.len());
    for (i, (command, reply)) in commands.into_iter().zip(replies).enumerate() {
        let t = 10 * i as u64;
        let op = rec.invoke(i as u64 % 3, t, command);
        match i % 4 {
            0 | 1 => rec.ok(op, t + 25, reply),
            2 => rec.fail(op, t + 5),
            _ => {}
        }
    }
    let mut bytes = Vec::new();
    rec.write_jsonl(&mut bytes).unwrap();
    let text = String::from_utf8(bytes).unwrap();
    assert_eq!(formats::detect(&text), Some(Format::Jsonl));
    let back = Recorder::from_recorded(jsonl::parse(&text).unwrap());
    assert_eq!(back.recorded(), rec.recorded());
    assert_eq!(back.history(), rec.history());
}

#[test]
fn bytes_escape_percent_and_invalid_utf8_only() {
    assert_eq!(jsonl::encode_bytes(b"plain \xc3\xa9"), "plain é");
    assert_eq!(jsonl::encode_bytes(b"50%\xff"), "50%25%FF");
    assert_eq!(jsonl::decode_bytes("50%25%FF").unwrap(), b"50%\xff");
    assert!(jsonl::decode_bytes("bad %G1").is_err());
}

#[test]
fn failed_operations_are_left_out_and_unfinished_ones_are_unknown() {
    let mut rec = Recorder::new();
    let a = rec.invoke(1, 0, set("k", "1"));
    let b = rec.invoke(2, 1, set("k", "2"));
    let _c = rec.invoke(3, 2, set("k", "3"));
    rec.fail(a, 5);
    rec.unknown(b);
    let history = rec.history();
    assert_eq!(history.len(), 2);
    assert!(history.ops.iter().all(|op| op.output().is_none()));
}

#[test]
fn a_read_of_a_value_no_write_could_have_produced_is_a_violation() {
    let mut rec = Recorder::new();
    let w = rec.invoke(1, 0, set("k", "1"));
    rec.ok(w, 10, Reply::Ok);
    let r = rec.invoke(2, 20, get("k"));
    rec.ok(r, 30, value("2"));
    let CheckResult::Violation(v) = check_kv(&rec.history(), &options()) else {
        panic!("violation expected")
    };
    assert_eq!(v.blocked, Some(1));
    assert_eq!(v.linearized.len(), 1);
}

#[test]
fn a_write_of_unknown_outcome_may_explain_a_later_read_or_never_happen() {
    let mut rec = Recorder::new();
    rec.invoke(1, 0, set("k", "1"));
    let r = rec.invoke(2, 20, get("k"));
    rec.ok(r, 30, value("1"));
    let r2 = rec.invoke(2, 40, get("k"));
    rec.ok(r2, 50, value("1"));
    assert!(check_kv(&rec.history(), &options()).is_linearizable());

    let mut rec = Recorder::new();
    rec.invoke(1, 0, set("k", "1"));
    let r = rec.invoke(2, 20, get("k"));
    rec.ok(r, 30, Reply::Value(None));
    assert!(check_kv(&rec.history(), &options()).is_linearizable());
}

#[test]
fn rename_joins_the_parts_of_both_keys() {
    // Each key alone is linearizable; together the rename must precede the read of "b".
    let mut rec = Recorder::new();
    let w = rec.invoke(1, 0, set("a", "1"));
    rec.ok(w, 10, Reply::Ok);
    let r = rec.invoke(2, 20, get("b"));
    rec.ok(r, 30, value("1"));
    let mv = rec.invoke(
        1,
        40,
        Command::Rename {
            from: b"a".to_vec(),
            to: b"b".to_vec(),
        },
    );
    rec.ok(mv, 50, Reply::Ok);
    assert!(check_kv(&rec.history(), &options()).is_violation());
}

fn multi_set(pairs: &[(&str, &str)]) -> Command {
    let pairs = pairs
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect();
    Command::MultiSet { pairs }
}

#[test]
fn multi_set_is_atomic_across_the_keys_it_names() {
    // Seeing the new "a" but the old "b" after the multi-set completed splits it: a violation.
    let mut rec = Recorder::new();
    call(&mut rec, 0, multi_set(&[("a", "0"), ("b", "0")]), Reply::Ok);
    call(
        &mut rec,
        20,
        multi_set(&[("a", "1"), ("b", "1")]),
        Reply::Ok,
    );
    call(&mut rec, 40, get("a"), value("1"));
    call(&mut rec, 60, get("b"), value("0"));
    assert!(check_kv(&rec.history(), &options()).is_violation());
    // Both new values, or both old ones before it completed, are fine.
    let mut rec = Recorder::new();
    call(&mut rec, 0, multi_set(&[("a", "0"), ("b", "0")]), Reply::Ok);
    let m = rec.invoke(2, 20, multi_set(&[("a", "1"), ("b", "1")]));
    call(&mut rec, 21, get("b"), value("0"));
    call(&mut rec, 40, get("a"), value("1"));
    rec.ok(m, 50, Reply::Ok);
    call(&mut rec, 60, get("b"), value("1"));
    assert_eq!(
        check_kv(&rec.history(), &options()),
        CheckResult::Linearizable
    );
}

#[test]
fn prefix_commands_see_every_key_with_their_prefix() {
    let mut rec = Recorder::new();
    let w = rec.invoke(1, 0, set("ab", "1"));
    rec.ok(w, 10, Reply::Ok);
    let w = rec.invoke(1, 20, set("b", "1"));
    rec.ok(w, 30, Reply::Ok);
    let c = rec.invoke(
        2,
        40,
        Command::Count {
            prefix: b"a".to_vec(),
        },
    );
    rec.ok(c, 50, Reply::Int(0));
    assert!(check_kv(&rec.history(), &options()).is_violation());

    let mut rec = Recorder::new();
    let p = rec.invoke(
        1,
        0,
        Command::Prune {
            prefix: b"zz".to_vec(),
        },
    );
    rec.ok(p, 10, Reply::Int(0));
    let l = rec.invoke(
        1,
        20,
        Command::ListKeys {
            prefix: b"q".to_vec(),
            start: None,
            count: None,
        },
    );
    rec.ok(l, 30, Reply::Keys(vec![]));
    assert!(check_kv(&rec.history(), &options()).is_linearizable());
}

#[test]
fn dirty_reads_are_not_checked() {
    let mut rec = Recorder::new();
    let d = rec.invoke(1, 0, Command::DirtyGet { key: b"k".to_vec() });
    rec.ok(d, 10, value("stale"));
    assert!(check_kv(&rec.history(), &options()).is_linearizable());
}

/// Invokes `command` at `t` and completes it 10 ns later with `reply`.
fn call(rec: &mut Recorder, t: u64, command: Command, reply: Reply) {
    let op = rec.invoke(1, t, command);
    rec.ok(op, t + 10, reply);
}

fn add(key: &str, delta: i64) -> Command {
    Command::Add {
        key: key.as_bytes().to_vec(),
        delta,
    }
}

#[test]
fn add_follows_the_store_semantics() {
    let mut rec = Recorder::new();
    call(&mut rec, 0, add("n", 5), Reply::Int(5));
    call(&mut rec, 20, set("n", "+1"), Reply::Ok);
    call(
        &mut rec,
        40,
        add("n", 1),
        Reply::Error(CommandError::NotAnInteger),
    );
    call(&mut rec, 60, set("n", &i64::MAX.to_string()), Reply::Ok);
    call(
        &mut rec,
        80,
        add("n", 1),
        Reply::Error(CommandError::Overflow),
    );
    call(&mut rec, 100, set("n", "-3"), Reply::Ok);
    call(&mut rec, 120, add("n", 0), Reply::Int(-3));
    assert!(check_kv(&rec.history(), &options()).is_linearizable());
}

#[test]
fn malformed_lines_are_errors_that_name_file_and_line() {
    let etcd = "INFO  jepsen.util - 0\t:invoke\t:write\t1\nnoise line\nINFO  jepsen.util - 0\t:ok\t:write\t1\nINFO  jepsen.util - 1\t:invoke\t:cas\t[1]\n";
    let error = formats::parse_text("etcd.log", etcd, None)
        .unwrap_err()
        .to_string();
    assert!(error.starts_with("etcd.log:4:"), "{error}");

    let edn = "{:process 0, :type :invoke, :f :put, :key \"1\", :value \"x\"}\n{:process 0, :type :ok, :f :put";
    let error = formats::parse_text("kv.txt", edn, None)
        .unwrap_err()
        .to_string();
    assert!(error.starts_with("kv.txt:2:"), "{error}");

    let json = "{\"format\":\"keyspace-history\",\"version\":1}\n{\"ev\":\"ok\",\"id\":3,\"t\":1,\"reply\":\"ok\"}\n";
    let error = formats::parse_text("h.jsonl", json, None)
        .unwrap_err()
        .to_string();
    assert!(error.starts_with("h.jsonl:2:"), "{error}");
}

#[test]
fn etcd_logs_with_spaces_and_noise_parse() {
    let log = "some banner\nINFO  jepsen.util - 3    :invoke :cas    [1 2]\nINFO  jepsen.util - :nemesis :info :start nil\nINFO  jepsen.util - 3    :fail   :cas    [1 2]\nINFO  jepsen.util - 4\t:invoke\t:read\tnil\nINFO  jepsen.util - 4\t:fail\t:read\t:timed-out\n";
    let Parsed::Register(ops) = formats::parse_text("x.log", log, None).unwrap() else {
        panic!("register")
    };
    assert_eq!(ops.len(), 1);
}

#[test]
fn string_map_values_compare_by_text_however_they_were_built() {
    use keyspace_checker::models::string_map::Text;
    use std::hash::{BuildHasher, RandomState};
    let a = Text::empty().append("x 1 y").append("x 2 y");
    let b = Text::empty().append("x 1 yx").append(" 2 y");
    assert_eq!(a, b);
    let hasher = RandomState::new();
    assert_eq!(hasher.hash_one(&a), hasher.hash_one(&b));
    assert!(a.equals("x 1 yx 2 y"));
    assert!(!a.equals("x 2 yx 1 y"));
    assert_ne!(a, Text::empty().append("x 2 yx 1 y"));
    assert_eq!(a.to_string(), "x 1 yx 2 y");
}

#[test]
fn a_very_long_value_is_dropped_without_deep_recursion() {
    let mut text = keyspace_checker::models::string_map::Text::empty();
    for _ in 0..1_000_000 {
        text = text.append("z");
    }
    assert_eq!(text.len(), 1_000_000);
    drop(text);
}

#[test]
fn an_empty_file_is_an_empty_history_whatever_its_format() {
    for text in ["", "\n\n  \n"] {
        let parsed = formats::parse_text("empty.log", text, None).unwrap();
        assert!(parsed.is_empty());
    }
    assert!(formats::parse_text("noise.log", "not a history\n", None).is_err());
}

fn compare_and_delete(key: &str, expected: &str) -> Command {
    Command::Script(keyspace_core::scripting::ScriptCommand::eval(
        keyspace_checker::models::keyspace_scripts::COMPARE_AND_DELETE.as_bytes(),
        vec![key.as_bytes().to_vec()],
        vec![expected.as_bytes().to_vec()],
    ))
}

#[test]
fn a_compare_and_delete_script_is_judged_by_the_value_it_compared() {
    let deleted = Reply::Resp(keyspace_core::redis::Resp::Int(1));
    // It deleted "k" holding "1": a later read must find nothing.
    let mut rec = Recorder::new();
    call(&mut rec, 0, set("k", "1"), Reply::Ok);
    call(&mut rec, 20, compare_and_delete("k", "1"), deleted.clone());
    call(&mut rec, 40, get("k"), Reply::Value(None));
    assert!(check_kv(&rec.history(), &options()).is_linearizable());
    // Deleting "k" while it held "2" is no linearization.
    let mut rec = Recorder::new();
    call(&mut rec, 0, set("k", "2"), Reply::Ok);
    call(&mut rec, 20, compare_and_delete("k", "1"), deleted);
    assert!(check_kv(&rec.history(), &options()).is_violation());
}
