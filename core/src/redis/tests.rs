use crate::redis::*;
use crate::{Command, Reply, SetCondition};

fn args(parts: &[&str]) -> Vec<Vec<u8>> {
    parts.iter().map(|p| p.as_bytes().to_vec()).collect()
}

fn arity_accepts(parts: &[&str]) -> bool {
    let name = text(parts[0].as_bytes());
    arity_ok(&args(parts), spec(&name).expect("a known command").arity)
}

/// What `parts` parses to, as a client would send it.
fn parsed(parts: &[&str]) -> Result<StoreCall, String> {
    let args = args(parts);
    let spec = lookup(&args)?;
    parse_store(spec.name, &args)
}

fn plain(command: Command) -> Result<StoreCall, String> {
    Ok(StoreCall::plain(command))
}

fn error_of(parts: &[&str]) -> String {
    match parsed(parts) {
        Err(e) => e,
        Ok(other) => panic!("{parts:?} parsed as {other:?}"),
    }
}

#[test]
fn every_command_accepts_the_arguments_redis_gives_it() {
    let calls: &[&[&str]] = &[
        &["GET", "k"],
        &["DIRTYGET", "k"],
        &["SET", "k", "v"],
        &["DEL", "a", "b"],
        &["EXISTS", "a"],
        &["INCR", "k"],
        &["INCRBY", "k", "5"],
        &["DECR", "k"],
        &["DECRBY", "k", "5"],
        &["GETDEL", "k"],
        &["RENAME", "a", "b"],
        &["MGET", "a", "b"],
        &["MSET", "a", "1", "b", "2"],
        &["DBSIZE"],
        &["PING"],
        &["PING", "hi"],
        &["ECHO", "hi"],
        &["INFO"],
        &["INFO", "replication"],
        &["HELLO", "3"],
        &["AUTH", "secret"],
        &["CLIENT", "SETNAME", "n"],
        &["COMMAND"],
        &["COMMAND", "DOCS"],
        &["CONFIG", "GET", "save"],
        &["SELECT", "0"],
        &["READONLY"],
        &["READWRITE"],
        &["QUIT"],
        &["TESTANDSET", "k", "old", "new"],
        &["PRUNE", "p"],
        &["LISTKEYS", "p", "COUNT", "3"],
        &["LISTKEYVALUES", "p"],
        &["COUNT", "p"],
        &["TYPE", "k"],
        &["TTL", "k"],
        &["PTTL", "k"],
        &["MEMBER", "LIST"],
    ];
    for call in calls {
        assert!(arity_accepts(call), "{call:?} refused");
    }
    assert!(!arity_accepts(&["ECHO"]));
    assert!(!arity_accepts(&["ECHO", "a", "b"]));
}

#[test]
fn unknown_commands_and_wrong_arities_answer_redis_errors() {
    assert_eq!(
        lookup(&args(&["nosuch", "a", "b", "c", "d"])),
        Err("ERR unknown command 'nosuch', with args beginning with: 'a' 'b' 'c'".into())
    );
    assert_eq!(
        error_of(&["get"]),
        "ERR wrong number of arguments for 'get' command"
    );
    assert_eq!(
        error_of(&["MSET", "a", "1", "b"]),
        "ERR wrong number of arguments for 'mset' command"
    );
    assert_eq!(
        error_of(&["MSETNX", "a", "1", "b"]),
        "ERR wrong number of arguments for 'msetnx' command"
    );
}

#[test]
fn set_expiry_options_parse_and_bad_times_answer_redis_errors() {
    let expiring = |ttl| {
        plain(Command::SetExpiring {
            key: b"k".to_vec(),
            value: b"v".to_vec(),
            condition: SetCondition::Always,
            get: false,
            ttl,
        })
    };
    let in_ms = |ms| crate::TtlChange::Set(crate::Deadline::In { ms });
    assert_eq!(
        parsed(&["SET", "k", "v", "EX", "10"]),
        expiring(in_ms(10_000))
    );
    assert_eq!(parsed(&["SET", "k", "v", "PX", "10"]), expiring(in_ms(10)));
    assert_eq!(
        parsed(&["SET", "k", "v", "KEEPTTL"]),
        expiring(crate::TtlChange::Keep)
    );
    let invalid = "ERR invalid expire time in 'set' command";
    assert_eq!(
        error_of(&["SET", "k", "v", "EX", "10000000000000000"]),
        invalid
    );
    assert_eq!(error_of(&["SET", "k", "v", "EX", "0"]), invalid);
    assert_eq!(
        error_of(&["SET", "k", "v", "EX", "1", "KEEPTTL"]),
        "ERR syntax error"
    );
    assert_eq!(
        error_of(&["EXPIRE", "k", "1", "NX", "GT"]),
        "ERR NX and XX, GT or LT options at the same time are not compatible"
    );
    assert_eq!(
        error_of(&["EXPIRE", "k", "1", "GT", "LT"]),
        "ERR GT and LT options at the same time are not compatible"
    );
    assert_eq!(
        error_of(&["EXPIRE", "k", "1", "AB"]),
        "ERR Unsupported option AB"
    );
    assert_eq!(
        error_of(&["GETEX", "k", "EX", "-1"]),
        "ERR invalid expire time in 'getex' command"
    );
    assert!(!arity_accepts(&["SET", "k"]));
}

#[test]
fn set_nx_xx_get_parse_as_conditional_sets() {
    let set_if = |condition, get| {
        plain(Command::SetIf {
            key: b"k".to_vec(),
            value: b"v".to_vec(),
            condition,
            get,
        })
    };
    assert_eq!(
        parsed(&["SET", "k", "v", "nx"]),
        set_if(SetCondition::IfAbsent, false)
    );
    assert_eq!(
        parsed(&["SET", "k", "v", "XX", "GET"]),
        set_if(SetCondition::IfPresent, true)
    );
    assert_eq!(
        parsed(&["SET", "k", "v", "GET"]),
        set_if(SetCondition::Always, true)
    );
    assert_eq!(error_of(&["SET", "k", "v", "NX", "XX"]), "ERR syntax error");
    assert_eq!(error_of(&["SET", "k", "v", "FOO"]), "ERR syntax error");
    assert_eq!(
        parsed(&["GETSET", "k", "v"]),
        set_if(SetCondition::Always, true)
    );
}

#[test]
fn getrange_follows_redis_index_rules() {
    let v = b"Hello World";
    assert_eq!(value_range(v, 0, 3), b"Hell");
    assert_eq!(value_range(v, -3, -1), b"rld");
    assert_eq!(value_range(v, 0, -1), v);
    assert_eq!(value_range(v, 5, 3), b"");
    assert_eq!(value_range(v, -1, -5), b"");
    assert_eq!(value_range(v, 0, 100), v);
    assert_eq!(value_range(v, -100, 2), b"Hel");
    assert_eq!(value_range(b"", 0, -1), b"");
    assert_eq!(
        error_of(&["GETRANGE", "k", "a", "1"]),
        "ERR value is not an integer or out of range"
    );
}

#[test]
fn exists_counts_every_key_named_from_one_read() {
    let call = parsed(&["EXISTS", "a", "b", "a"]).expect("parses");
    assert_eq!(call.shape, Shape::Plain);
    assert_eq!(
        call.commands,
        [Command::Exists {
            keys: vec![b"a".to_vec(), b"b".to_vec(), b"a".to_vec()]
        }]
    );
}

#[test]
fn mget_is_one_read_of_every_key() {
    assert_eq!(
        parsed(&["MGET", "a", "b"]),
        plain(Command::MultiGet {
            keys: vec![b"a".to_vec(), b"b".to_vec()]
        })
    );
}

#[test]
fn del_of_several_keys_is_one_command() {
    assert_eq!(
        parsed(&["DEL", "a", "b", "a"]),
        plain(Command::MultiDelete {
            keys: vec![b"a".to_vec(), b"b".to_vec(), b"a".to_vec()]
        })
    );
    assert_eq!(
        parsed(&["DEL", "a"]),
        plain(Command::MultiDelete {
            keys: vec![b"a".to_vec()]
        })
    );
}

#[test]
fn the_command_table_names_each_command_once_in_upper_case() {
    let names: std::collections::BTreeSet<_> = COMMANDS.iter().map(|s| s.name).collect();
    assert_eq!(names.len(), COMMANDS.len(), "a name is listed twice");
    for name in names {
        assert_eq!(
            name,
            name.to_uppercase(),
            "parse looks names up in upper case"
        );
    }
    assert!(
        spec("XADD").is_none(),
        "a command keyspace lacks has no row"
    );
}

#[test]
fn every_store_command_of_the_table_parses_with_its_smallest_arity() {
    for spec in COMMANDS.iter().filter(|s| s.kind == Kind::Store) {
        let count = spec.arity.unsigned_abs() as usize;
        let mut call: Vec<Vec<u8>> = vec![spec.name.as_bytes().to_vec()];
        call.extend((1..count).map(|i| i.to_string().into_bytes()));
        // Any answer but a panic: an arm for every store row.
        let _ = parse_store(spec.name, &call);
    }
}

#[test]
fn database_commands_parse_with_redis_errors() {
    assert_eq!(parsed(&["FLUSHALL"]), plain(Command::FlushAll));
    assert_eq!(parsed(&["flushdb", "async"]), plain(Command::FlushDb));
    assert_eq!(error_of(&["FLUSHALL", "foo"]), "ERR syntax error");
    assert_eq!(
        parsed(&["SWAPDB", "1", "2"]),
        plain(Command::SwapDb { a: 1, b: 2 })
    );
    assert_eq!(
        error_of(&["SWAPDB", "x", "1"]),
        "ERR invalid first DB index"
    );
    assert_eq!(
        error_of(&["SWAPDB", "1", "x"]),
        "ERR invalid second DB index"
    );
    assert_eq!(
        error_of(&["SWAPDB", "1", "16"]),
        "ERR DB index is out of range"
    );
    assert_eq!(
        parsed(&["MOVE", "k", "3"]),
        plain(Command::Move {
            key: b"k".to_vec(),
            to: 3
        })
    );
    assert_eq!(
        error_of(&["MOVE", "k", "16"]),
        "ERR DB index is out of range"
    );
}

#[test]
fn scan_parses_cursor_match_count_and_type_with_redis_errors() {
    assert_eq!(
        parsed(&["SCAN", "17", "MATCH", "a*", "COUNT", "5", "TYPE", "string"]),
        plain(Command::Scan {
            cursor: 17,
            pattern: Some(b"a*".to_vec()),
            count: 5,
            type_name: Some(b"string".to_vec()),
        })
    );
    assert_eq!(
        parsed(&["SCAN", "0"]),
        plain(Command::Scan {
            cursor: 0,
            pattern: None,
            count: 10,
            type_name: None,
        })
    );
    assert_eq!(error_of(&["SCAN", "x"]), "ERR invalid cursor");
    assert_eq!(error_of(&["SCAN", "0", "COUNT", "0"]), "ERR syntax error");
    assert_eq!(
        error_of(&["SCAN", "0", "COUNT", "x"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(error_of(&["SCAN", "0", "MATCH"]), "ERR syntax error");
    assert_eq!(error_of(&["SCAN", "0", "FOO", "1"]), "ERR syntax error");
}

#[test]
fn replies_show_as_redis_shows_them() {
    let value = |v: &str| Reply::Value(Some(v.as_bytes().to_vec()));
    let bulk = |v: &str| Resp::Bulk(Some(v.as_bytes().to_vec()));
    assert_eq!(show_replies(&[value("abc")], Shape::Strlen), Resp::Int(3));
    assert_eq!(
        show_replies(&[Reply::Value(None)], Shape::Strlen),
        Resp::Int(0)
    );
    assert_eq!(
        show_replies(&[value("abc")], Shape::Type),
        Resp::Simple("string".into())
    );
    assert_eq!(
        show_replies(&[Reply::Value(None)], Shape::Ttl),
        Resp::Int(-2)
    );
    assert_eq!(show_replies(&[Reply::Ok], Shape::SetNx), Resp::Int(1));
    assert_eq!(
        show_replies(&[value("Hello")], Shape::Range { start: 1, end: -2 }),
        bulk("ell")
    );
    assert_eq!(
        show_replies(&[value("a")], Shape::Array),
        Resp::Array(Some(vec![bulk("a")]))
    );
    assert_eq!(show_replies(&[value("a")], Shape::Plain), bulk("a"));
    assert_eq!(
        show(&Reply::Error(crate::CommandError::NotAnInteger)),
        Resp::Error(NOT_AN_INTEGER.into())
    );
    assert_eq!(show(&Reply::Transaction(None)), Resp::Array(None));
    assert_eq!(
        show(&Reply::KeyValues(vec![(b"k".to_vec(), b"v".to_vec())])),
        Resp::Array(Some(vec![bulk("k"), bulk("v")]))
    );
}

#[test]
fn string_and_bit_commands_parse_with_redis_errors() {
    assert_eq!(
        error_of(&["SETRANGE", "k", "-1", "x"]),
        "ERR offset is out of range"
    );
    assert_eq!(
        error_of(&["INCRBYFLOAT", "k", " 1"]),
        "ERR value is not a valid float"
    );
    let bad_offset = "ERR bit offset is not an integer or out of range";
    assert_eq!(error_of(&["SETBIT", "k", "8388608", "1"]), bad_offset);
    assert_eq!(error_of(&["GETBIT", "k", "-1"]), bad_offset);
    assert_eq!(
        error_of(&["SETBIT", "k", "0", "2"]),
        "ERR bit is not an integer or out of range"
    );
    assert_eq!(
        error_of(&["BITPOS", "k", "2"]),
        "ERR The bit argument must be 1 or 0."
    );
    assert_eq!(error_of(&["BITCOUNT", "k", "0"]), "ERR syntax error");
    assert_eq!(
        error_of(&["BITCOUNT", "k", "0", "1", "WORD"]),
        "ERR syntax error"
    );
    let not = "ERR BITOP NOT must be called with a single source key.";
    assert_eq!(error_of(&["BITOP", "NOT", "d", "a", "b"]), not);
    let both = "ERR If you want both the length and indexes, please just use IDX.";
    assert_eq!(error_of(&["LCS", "a", "b", "LEN", "IDX"]), both);
    assert_eq!(
        error_of(&["COPY", "a", "b", "DB", "16"]),
        "ERR DB index is out of range"
    );
    assert_eq!(error_of(&["COPY", "a", "b", "DB"]), "ERR syntax error");
    let copy = Command::Copy {
        from: b"a".to_vec(),
        to: b"b".to_vec(),
        to_db: Some(3),
        replace: true,
    };
    assert_eq!(
        parsed(&["COPY", "a", "b", "db", "3", "replace"]),
        plain(copy)
    );
}

#[test]
fn bit_and_lcs_reads_show_as_redis_shows_them() {
    let value = |v: &[u8]| [Reply::Value(Some(v.to_vec()))];
    let bitcount = parsed(&["BITCOUNT", "k", "5", "30", "BIT"]).unwrap().shape;
    assert_eq!(show_replies(&value(b"foobar"), bitcount), Resp::Int(17));
    let bitpos = parsed(&["BITPOS", "k", "0"]).unwrap().shape;
    assert_eq!(
        show_replies(&value(b"\xff\xf0"), bitpos.clone()),
        Resp::Int(12)
    );
    assert_eq!(show_replies(&[Reply::Value(None)], bitpos), Resp::Int(0));
    let lcs = parsed(&["LCS", "a", "b", "LEN"]).unwrap().shape;
    let both = [Reply::Values(vec![
        Some(b"ohmytext".to_vec()),
        Some(b"mynewtext".to_vec()),
    ])];
    assert_eq!(show_replies(&both, lcs), Resp::Int(6));
    let encoding = parsed(&["OBJECT", "ENCODING", "k"]).unwrap().shape;
    let described = [Reply::Described {
        kind: crate::kv::ValueKind::String,
        encoding: crate::redis::shape::encoding(b"12").into(),
        refcount: 1,
        bytes: 2,
    }];
    assert_eq!(
        show_replies(&described, encoding.clone()),
        Resp::Bulk(Some(b"int".to_vec()))
    );
    assert_eq!(
        show_replies(&[Reply::Value(None)], encoding),
        Resp::Bulk(None)
    );
}

#[test]
fn a_client_s_srandmember_draws_from_the_seed_the_node_gives_and_a_script_s_from_zero() {
    let members = [Reply::Keys(vec![
        b"a".to_vec(),
        b"b".to_vec(),
        b"c".to_vec(),
    ])];
    let one = parsed(&["SRANDMEMBER", "s"]).unwrap().shape;
    let bulk = |m: &[u8]| Resp::Bulk(Some(m.to_vec()));
    assert_eq!(show_replies(&members, one.clone()), bulk(b"a"));
    assert_eq!(show_replies(&members, one.clone().seeded(4)), bulk(b"b"));
    let two = parsed(&["SRANDMEMBER", "s", "2"]).unwrap().shape.seeded(2);
    let wrapped = Resp::Array(Some(vec![bulk(b"c"), bulk(b"a")]));
    assert_eq!(
        show_replies(&members, two),
        wrapped,
        "distinct, from the seed on"
    );
    let get = parsed(&["GET", "k"]).unwrap().shape;
    assert_eq!(get.clone().seeded(9), get, "other shapes draw nothing");
}

#[test]
fn mget_and_exists_read_key_by_key_treat_a_hash_or_set_key_as_redis_does() {
    let other_kind = Reply::Error(crate::CommandError::WrongType);
    let value = |v: &str| Reply::Value(Some(v.as_bytes().to_vec()));
    assert_eq!(
        show_replies(
            &[value("a"), other_kind.clone(), Reply::Value(None)],
            Shape::Array
        ),
        Resp::Array(Some(vec![
            Resp::Bulk(Some(b"a".to_vec())),
            Resp::Bulk(None),
            Resp::Bulk(None)
        ]))
    );
    assert_eq!(
        show_replies(&[value("a"), other_kind, Reply::Value(None)], Shape::Exists),
        Resp::Int(2)
    );
}
