//! Specification tests of the state machine: one command or session rule per test.

use super::*;
use crate::command::{
    ClientId, Seq, SetCondition, DATABASES, KEY_MAX_BYTES, LIST_COUNT_MAX, VALUE_MAX_BYTES,
};

fn machine() -> StateMachine {
    StateMachine::new(StateMachineConfig::default())
}

pub(super) fn request(client_id: ClientId, seq: Seq, command: Command) -> ClientRequest {
    ClientRequest {
        client_id,
        seq,
        command,
    }
}

pub(super) fn replies(responses: Vec<ClientResponse>) -> Vec<Reply> {
    responses
        .into_iter()
        .map(|response| match response.outcome {
            Outcome::Done(reply) => reply,
            other => panic!("state machine answers Done, got {other:?}"),
        })
        .collect()
}

/// A test harness: one client, applying one write per slot.
struct Harness {
    machine: StateMachine,
    slot: Slot,
    seq: Seq,
}

impl Harness {
    fn new() -> Self {
        Harness {
            machine: machine(),
            slot: 0,
            seq: 0,
        }
    }

    fn write(&mut self, command: Command) -> Reply {
        self.slot += 1;
        self.seq += 1;
        let batch = [request(1, self.seq, command)];
        let reply = replies(self.machine.apply_batch(self.slot, &batch)).remove(0);
        self.machine.assert_invariants();
        reply
    }

    fn read(&self, command: Command) -> Reply {
        self.machine.read(&command)
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        match self.read(Command::Get { key: key.to_vec() }) {
            Reply::Value(value) => value,
            other => panic!("Get answers Value, got {other:?}"),
        }
    }

    fn set(&mut self, key: &[u8], value: &[u8]) {
        let reply = self.write(set(key, value));
        assert_eq!(reply, Reply::Ok);
    }
}

pub(super) fn set(key: &[u8], value: &[u8]) -> Command {
    Command::Set {
        key: key.to_vec(),
        value: value.to_vec(),
    }
}

pub(super) fn add(key: &[u8], delta: i64) -> Command {
    Command::Add {
        key: key.to_vec(),
        delta,
    }
}

fn list_keys(prefix: &[u8], start: Option<&[u8]>, count: Option<u64>) -> Command {
    Command::ListKeys {
        prefix: prefix.to_vec(),
        start: start.map(<[u8]>::to_vec),
        count,
    }
}

fn keys(list: &[&[u8]]) -> Reply {
    Reply::Keys(list.iter().map(|key| key.to_vec()).collect())
}

#[test]
fn set_then_get_and_dirty_get_return_the_value() {
    let mut h = Harness::new();
    assert_eq!(h.get(b"k"), None);
    h.set(b"k", b"v1");
    h.set(b"k", b"v2");
    assert_eq!(h.get(b"k"), Some(b"v2".to_vec()));
    let dirty = h.read(Command::DirtyGet { key: b"k".to_vec() });
    assert_eq!(dirty, Reply::Value(Some(b"v2".to_vec())));
    assert_eq!(h.machine.len(), 1);
}

#[test]
fn empty_key_and_empty_value_are_ordinary() {
    let mut h = Harness::new();
    h.set(b"", b"");
    assert_eq!(h.get(b""), Some(vec![]));
    assert!(!h.machine.is_empty());
}

#[test]
fn test_and_set_swaps_only_on_an_exact_match() {
    let mut h = Harness::new();
    let tas = |expected: &[u8], new: &[u8]| Command::TestAndSet {
        key: b"k".to_vec(),
        expected: expected.to_vec(),
        new: new.to_vec(),
    };
    assert_eq!(
        h.write(tas(b"", b"x")),
        Reply::Bool(false),
        "absent never matches"
    );
    assert_eq!(h.get(b"k"), None);
    h.set(b"k", b"a");
    assert_eq!(h.write(tas(b"b", b"x")), Reply::Bool(false));
    assert_eq!(h.get(b"k"), Some(b"a".to_vec()));
    assert_eq!(h.write(tas(b"a", b"c")), Reply::Bool(true));
    assert_eq!(h.get(b"k"), Some(b"c".to_vec()));
}

#[test]
fn add_on_absent_key_counts_from_zero_and_stores_decimal() {
    let mut h = Harness::new();
    assert_eq!(h.write(add(b"n", 5)), Reply::Int(5));
    assert_eq!(h.write(add(b"n", -7)), Reply::Int(-2));
    assert_eq!(h.get(b"n"), Some(b"-2".to_vec()));
}

#[test]
fn add_on_non_integer_value_changes_nothing() {
    let mut h = Harness::new();
    for value in [
        &b"x"[..],
        b"",
        b"007",
        b"-0",
        b" 1",
        b"+1",
        b"1.5",
        b"99999999999999999999",
    ] {
        h.set(b"k", value);
        let hash = h.machine.state_hash();
        let len = h.machine.len();
        assert_eq!(
            h.write(add(b"k", 1)),
            Reply::Error(CommandError::NotAnInteger)
        );
        assert_eq!(h.get(b"k"), Some(value.to_vec()));
        assert_eq!(h.machine.len(), len);
        assert_ne!(
            h.machine.state_hash(),
            hash,
            "only the slot and session moved"
        );
    }
}

#[test]
fn add_overflow_is_an_error_and_changes_nothing() {
    let mut h = Harness::new();
    h.set(b"max", i64::MAX.to_string().as_bytes());
    assert_eq!(
        h.write(add(b"max", 1)),
        Reply::Error(CommandError::Overflow)
    );
    assert_eq!(h.get(b"max"), Some(i64::MAX.to_string().into_bytes()));
    h.set(b"min", i64::MIN.to_string().as_bytes());
    assert_eq!(
        h.write(add(b"min", -1)),
        Reply::Error(CommandError::Overflow)
    );
    assert_eq!(h.write(add(b"min", i64::MAX)), Reply::Int(-1));
    assert_eq!(h.write(add(b"absent", i64::MIN)), Reply::Int(i64::MIN));
    assert_eq!(h.get(b"absent"), Some(b"-9223372036854775808".to_vec()));
}

#[test]
fn delete_reports_whether_the_key_existed() {
    let mut h = Harness::new();
    let delete = || Command::Delete { key: b"k".to_vec() };
    assert_eq!(h.write(delete()), Reply::Bool(false));
    h.set(b"k", b"v");
    assert_eq!(h.write(delete()), Reply::Bool(true));
    assert_eq!(h.get(b"k"), None);
    assert!(h.machine.is_empty());
}

#[test]
fn remove_returns_the_old_value() {
    let mut h = Harness::new();
    let remove = || Command::Remove { key: b"k".to_vec() };
    assert_eq!(h.write(remove()), Reply::Value(None));
    h.set(b"k", b"v");
    assert_eq!(h.write(remove()), Reply::Value(Some(b"v".to_vec())));
    assert_eq!(h.get(b"k"), None);
}

#[test]
fn rename_moves_the_value_and_overwrites_the_target() {
    let mut h = Harness::new();
    let rename = |from: &[u8], to: &[u8]| Command::Rename {
        from: from.to_vec(),
        to: to.to_vec(),
    };
    assert_eq!(
        h.write(rename(b"a", b"b")),
        Reply::Error(CommandError::NoSuchKey)
    );
    h.set(b"a", b"1");
    h.set(b"b", b"2");
    assert_eq!(h.write(rename(b"a", b"b")), Reply::Ok);
    assert_eq!((h.get(b"a"), h.get(b"b")), (None, Some(b"1".to_vec())));
    assert_eq!(h.write(rename(b"b", b"c")), Reply::Ok);
    assert_eq!((h.get(b"b"), h.get(b"c")), (None, Some(b"1".to_vec())));
    assert_eq!(h.machine.len(), 1);
}

#[test]
fn rename_to_self_is_ok_and_changes_nothing_but_absent_key_is_an_error() {
    let mut h = Harness::new();
    let self_rename = || Command::Rename {
        from: b"a".to_vec(),
        to: b"a".to_vec(),
    };
    assert_eq!(
        h.write(self_rename()),
        Reply::Error(CommandError::NoSuchKey)
    );
    h.set(b"a", b"1");
    assert_eq!(h.write(self_rename()), Reply::Ok);
    assert_eq!(h.get(b"a"), Some(b"1".to_vec()));
    assert_eq!(h.machine.len(), 1);
}

#[test]
fn prune_removes_exactly_the_keys_with_the_prefix() {
    let mut h = Harness::new();
    for key in [&b"a"[..], b"ab", b"abc", b"ac", b"b", b""] {
        h.set(key, b"v");
    }
    let prune = |prefix: &[u8]| Command::Prune {
        prefix: prefix.to_vec(),
    };
    assert_eq!(h.write(prune(b"ab")), Reply::Int(2));
    assert_eq!(
        h.read(list_keys(b"", None, None)),
        keys(&[b"", b"a", b"ac", b"b"])
    );
    assert_eq!(h.write(prune(b"zz")), Reply::Int(0));
    assert_eq!(h.write(prune(b"")), Reply::Int(4));
    assert!(h.machine.is_empty());
}

#[test]
fn list_keys_honours_prefix_start_and_count() {
    let mut h = Harness::new();
    for key in [&b"a"[..], b"b1", b"b2", b"b3", b"c"] {
        h.set(key, key);
    }
    assert_eq!(
        h.read(list_keys(b"b", None, None)),
        keys(&[b"b1", b"b2", b"b3"])
    );
    assert_eq!(
        h.read(list_keys(b"b", Some(b"b2"), None)),
        keys(&[b"b2", b"b3"])
    );
    assert_eq!(h.read(list_keys(b"b", Some(b"b25"), None)), keys(&[b"b3"]));
    assert_eq!(
        h.read(list_keys(b"b", Some(b"a"), Some(2))),
        keys(&[b"b1", b"b2"])
    );
    assert_eq!(h.read(list_keys(b"b", Some(b"c"), None)), keys(&[]));
    assert_eq!(h.read(list_keys(b"b", None, Some(0))), keys(&[]));
    assert_eq!(
        h.read(list_keys(b"", Some(b"b3"), None)),
        keys(&[b"b3", b"c"])
    );
    assert_eq!(h.read(list_keys(b"d", None, None)), keys(&[]));
}

#[test]
fn list_key_values_pairs_each_key_with_its_value() {
    let mut h = Harness::new();
    h.set(b"p1", b"x");
    h.set(b"p2", b"y");
    h.set(b"q", b"z");
    let reply = h.read(Command::ListKeyValues {
        prefix: b"p".to_vec(),
        start: Some(b"p2".to_vec()),
        count: Some(5),
    });
    assert_eq!(
        reply,
        Reply::KeyValues(vec![(b"p2".to_vec(), b"y".to_vec())])
    );
}

#[test]
fn list_count_above_the_maximum_is_clamped() {
    let mut machine = machine();
    let total = LIST_COUNT_MAX + 5;
    let batch: Vec<ClientRequest> = (0..total)
        .map(|i| request(i + 1, 1, set(format!("k{i:06}").as_bytes(), b"")))
        .collect();
    machine.apply_batch(1, &batch);
    let max = usize::try_from(LIST_COUNT_MAX).unwrap();
    for count in [None, Some(LIST_COUNT_MAX + 1), Some(u64::MAX)] {
        match machine.read(&list_keys(b"k", None, count)) {
            Reply::Keys(listed) => assert_eq!(listed.len(), max),
            other => panic!("{other:?}"),
        }
    }
    let count = machine.read(&Command::Count { prefix: vec![] });
    assert_eq!(
        count,
        Reply::Int(i64::try_from(total).unwrap()),
        "Count is not clamped"
    );
}

#[test]
fn count_counts_keys_with_the_prefix() {
    let mut h = Harness::new();
    for key in [&b"a"[..], b"ab", b"abc", b"b"] {
        h.set(key, b"");
    }
    let count = |prefix: &[u8]| Command::Count {
        prefix: prefix.to_vec(),
    };
    assert_eq!(h.read(count(b"")), Reply::Int(4));
    assert_eq!(h.read(count(b"a")), Reply::Int(3));
    assert_eq!(h.read(count(b"abc")), Reply::Int(1));
    assert_eq!(h.read(count(b"abcd")), Reply::Int(0));
    assert_eq!(h.read(count(b"\xff")), Reply::Int(0));
}

#[test]
fn oversized_command_is_refused_and_changes_nothing() {
    let mut h = Harness::new();
    let long_key = vec![b'k'; KEY_MAX_BYTES + 1];
    let reply = h.write(set(&long_key, b"v"));
    let expected = CommandError::KeyTooLarge {
        len: KEY_MAX_BYTES + 1,
    };
    assert_eq!(reply, Reply::Error(expected));
    let long_value = vec![b'v'; VALUE_MAX_BYTES + 1];
    let reply = h.write(set(b"k", &long_value));
    let expected = CommandError::ValueTooLarge {
        len: VALUE_MAX_BYTES + 1,
    };
    assert_eq!(reply, Reply::Error(expected));
    assert!(h.machine.is_empty());
}

#[test]
#[should_panic(expected = "read command in the log")]
fn read_command_in_a_batch_panics() {
    machine().apply_batch(1, &[request(1, 1, Command::Get { key: vec![] })]);
}

#[test]
#[should_panic(expected = "read() given a write")]
fn write_command_given_to_read_panics() {
    machine().read(&set(b"k", b"v"));
}

#[test]
#[should_panic(expected = "slot 3 applied after slot 3")]
fn applying_a_slot_twice_panics() {
    let mut machine = machine();
    machine.apply_noop(3);
    machine.apply_batch(3, &[]);
}

#[test]
fn noop_advances_the_applied_slot_and_the_hash() {
    let mut machine = machine();
    assert_eq!(machine.applied_slot(), 0);
    let before = machine.state_hash();
    machine.apply_noop(5);
    assert_eq!(machine.applied_slot(), 5);
    assert_ne!(machine.state_hash(), before);
}

#[test]
fn state_hash_survives_a_postcard_round_trip() {
    let mut h = Harness::new();
    h.set(b"a", b"1");
    h.write(add(b"a", 2));
    h.write(Command::Remove {
        key: b"zz".to_vec(),
    });
    let bytes = h.machine.encode();
    let copy = StateMachine::decode(&bytes).unwrap();
    copy.assert_invariants();
    assert_eq!(copy, h.machine);
    assert_eq!(copy.state_hash(), h.machine.state_hash());
}

#[test]
fn state_hash_differs_for_different_data_and_sessions() {
    let mut a = machine();
    let mut b = machine();
    a.apply_batch(1, &[request(1, 1, set(b"k", b"1"))]);
    b.apply_batch(1, &[request(1, 1, set(b"k", b"2"))]);
    assert_ne!(a.state_hash(), b.state_hash());
    let mut c = machine();
    c.apply_batch(1, &[request(2, 1, set(b"k", b"1"))]);
    assert_eq!(
        a.read(&Command::Get { key: b"k".to_vec() }),
        c.read(&Command::Get { key: b"k".to_vec() })
    );
    assert_ne!(
        a.state_hash(),
        c.state_hash(),
        "same data, different session"
    );
}

/// A state with a few keys written by two clients, and its encoding.
fn encoded_state() -> (StateMachine, Vec<u8>) {
    let mut machine = machine();
    machine.apply_batch(
        1,
        &[
            request(1, 1, set(b"a", b"1")),
            request(2, 1, set(b"b", b"2")),
        ],
    );
    machine.apply_batch(2, &[request(1, 2, set(b"c", b"33"))]);
    let body = machine.encode();
    (machine, body)
}

#[test]
fn verify_encoding_accepts_the_states_own_encoding() {
    let (machine, body) = encoded_state();
    assert_eq!(machine.verify_encoding(&body), Ok(()));
}

#[test]
fn verify_encoding_refuses_another_states_encoding() {
    let (machine, _) = encoded_state();
    let mut other = machine.clone();
    other.apply_batch(3, &[request(1, 3, set(b"c", b"34"))]);
    let other_body = other.encode();
    assert!(machine.verify_encoding(&other_body).is_err());
    let mut same_data_later = machine.clone();
    same_data_later.apply_noop(3);
    let later_body = same_data_later.encode();
    assert_eq!(
        machine.verify_encoding(&later_body),
        Err("applied slot differs".to_string())
    );
}

#[test]
fn verify_encoding_refuses_a_changed_value_a_cut_body_and_trailing_bytes() {
    let (machine, body) = encoded_state();
    let at = body.windows(2).position(|w| w == b"33").unwrap();
    let mut changed = body.clone();
    changed[at] = b'4';
    assert_eq!(
        machine.verify_encoding(&changed),
        Err("pairs differ from their stored hash".to_string())
    );
    assert!(machine.verify_encoding(&body[..body.len() - 1]).is_err());
    let mut longer = body.clone();
    longer.push(0);
    assert_eq!(
        machine.verify_encoding(&longer),
        Err("bytes after the state".to_string())
    );
}

#[test]
fn verify_encoding_refuses_keys_out_of_order() {
    let (machine, body) = encoded_state();
    // Each pair is a length byte then the bytes: "a"="1", "b"="2". Swap the two keys.
    let at = body
        .windows(8)
        .position(|w| w == b"\x01a\x011\x01b\x012")
        .unwrap();
    let mut swapped = body.clone();
    swapped[at + 1] = b'b';
    swapped[at + 5] = b'a';
    let error = machine.verify_encoding(&swapped).unwrap_err();
    assert!(error.contains("does not decode"), "{error}");
}

fn in_db(db: Db, command: Command) -> Command {
    command.in_db(db)
}

fn get_in(h: &Harness, db: Db, key: &[u8]) -> Option<Vec<u8>> {
    match h.read(in_db(db, Command::Get { key: key.to_vec() })) {
        Reply::Value(value) => value,
        other => panic!("Get answers Value, got {other:?}"),
    }
}

fn db_size(h: &Harness, db: Db) -> Reply {
    h.read(in_db(db, Command::Count { prefix: Vec::new() }))
}

#[test]
fn keys_of_one_database_are_invisible_in_another() {
    let mut h = Harness::new();
    assert_eq!(h.write(in_db(9, set(b"k", b"nine"))), Reply::Ok);
    assert_eq!(get_in(&h, 9, b"k"), Some(b"nine".to_vec()));
    assert_eq!(get_in(&h, 0, b"k"), None);
    assert_eq!(get_in(&h, 1, b"k"), None);
    h.set(b"k", b"zero");
    assert_eq!(get_in(&h, 9, b"k"), Some(b"nine".to_vec()));
    assert_eq!(db_size(&h, 9), Reply::Int(1));
    assert_eq!(db_size(&h, 3), Reply::Int(0));
    assert_eq!(h.machine.len(), 2);
    assert_eq!(h.machine.db_len(9), 1);
}

#[test]
fn a_database_command_in_database_0_encodes_as_before_databases() {
    let command = set(b"k", b"v");
    assert_eq!(command.clone().in_db(0), command);
    assert_eq!(Command::FlushAll.in_db(5), Command::FlushAll);
    assert!(matches!(command.in_db(5), Command::InDb { db: 5, .. }));
}

#[test]
fn a_database_out_of_range_or_a_global_command_in_a_database_is_refused() {
    let mut h = Harness::new();
    let out_of_range = Command::InDb {
        db: DATABASES,
        command: Box::new(set(b"k", b"v")),
    };
    assert_eq!(
        h.write(out_of_range),
        Reply::Error(CommandError::DbOutOfRange)
    );
    let global = Command::InDb {
        db: 2,
        command: Box::new(Command::FlushAll),
    };
    assert_eq!(h.write(global), Reply::Error(CommandError::NotPerDatabase));
    let zero = Command::InDb {
        db: 0,
        command: Box::new(set(b"k", b"v")),
    };
    assert_eq!(h.write(zero), Reply::Error(CommandError::NotPerDatabase));
    let swap = Command::SwapDb { a: 0, b: 16 };
    assert_eq!(h.write(swap), Reply::Error(CommandError::DbOutOfRange));
    assert!(h.machine.is_empty());
}

#[test]
fn flushdb_empties_one_database_and_flushall_every_one() {
    let mut h = Harness::new();
    h.set(b"a", b"1");
    h.write(in_db(1, set(b"a", b"1")));
    h.write(in_db(2, set(b"b", b"2")));
    assert_eq!(h.write(in_db(1, Command::FlushDb)), Reply::Ok);
    assert_eq!(get_in(&h, 1, b"a"), None);
    assert_eq!(get_in(&h, 0, b"a"), Some(b"1".to_vec()));
    assert_eq!(get_in(&h, 2, b"b"), Some(b"2".to_vec()));
    assert_eq!(h.write(Command::FlushAll), Reply::Ok);
    assert!(h.machine.is_empty());
    assert_eq!(h.machine.data.entries_hash(), 0);
}

#[test]
fn swapdb_exchanges_two_databases_keys() {
    let mut h = Harness::new();
    h.set(b"a", b"zero");
    h.write(in_db(3, set(b"b", b"three")));
    assert_eq!(h.write(Command::SwapDb { a: 0, b: 3 }), Reply::Ok);
    assert_eq!(get_in(&h, 0, b"b"), Some(b"three".to_vec()));
    assert_eq!(get_in(&h, 3, b"a"), Some(b"zero".to_vec()));
    assert_eq!(get_in(&h, 0, b"a"), None);
    let before = h.machine.state_hash();
    assert_eq!(h.write(Command::SwapDb { a: 5, b: 5 }), Reply::Ok);
    assert_eq!(h.machine.db_len(5), 0);
    assert_ne!(h.machine.state_hash(), before, "the slot advanced");
}

#[test]
fn move_moves_a_key_only_to_a_database_without_it() {
    let mut h = Harness::new();
    h.set(b"k", b"v");
    let move_to = |to| Command::Move {
        key: b"k".to_vec(),
        to,
    };
    assert_eq!(h.write(move_to(0)), Reply::Error(CommandError::SameObject));
    assert_eq!(h.write(move_to(4)), Reply::Bool(true));
    assert_eq!(get_in(&h, 0, b"k"), None);
    assert_eq!(get_in(&h, 4, b"k"), Some(b"v".to_vec()));
    assert_eq!(h.write(move_to(4)), Reply::Bool(false), "absent here");
    h.set(b"k", b"again");
    assert_eq!(h.write(move_to(4)), Reply::Bool(false), "present there");
    assert_eq!(get_in(&h, 0, b"k"), Some(b"again".to_vec()));
    assert_eq!(
        h.write(move_to(DATABASES)),
        Reply::Error(CommandError::DbOutOfRange)
    );
}

#[test]
fn the_same_keys_in_different_databases_hash_differently() {
    let mut a = Harness::new();
    let mut b = Harness::new();
    a.write(in_db(1, set(b"k", b"v")));
    b.write(in_db(2, set(b"k", b"v")));
    assert_ne!(a.machine.state_hash(), b.machine.state_hash());
}

#[test]
fn keys_returns_the_matching_keys_of_its_database_in_byte_order() {
    let mut h = Harness::new();
    for key in [&b"user:2"[..], b"user:1", b"other", b"user:10"] {
        h.set(key, b"v");
    }
    h.write(in_db(1, set(b"user:3", b"v")));
    let keys = |pattern: &[u8]| {
        h.read(Command::Keys {
            pattern: pattern.to_vec(),
        })
    };
    let expected: Vec<Vec<u8>> = vec![b"user:1".to_vec(), b"user:2".to_vec()];
    assert_eq!(keys(b"user:?"), Reply::Keys(expected));
    assert_eq!(
        keys(b"*"),
        Reply::Keys(vec![
            b"other".to_vec(),
            b"user:1".to_vec(),
            b"user:10".to_vec(),
            b"user:2".to_vec(),
        ])
    );
    assert_eq!(keys(b"nothing*"), Reply::Keys(vec![]));
}

#[test]
fn keys_refuses_a_pattern_that_would_visit_more_than_the_limit() {
    let mut h = Harness::new();
    let pairs: Vec<_> = (0..=KEYS_VISIT_MAX)
        .map(|i| (format!("k{i}").into_bytes(), Vec::new()))
        .collect();
    h.write(Command::MultiSet { pairs });
    let keys = |pattern: &[u8]| {
        h.read(Command::Keys {
            pattern: pattern.to_vec(),
        })
    };
    assert_eq!(
        keys(b"k*"),
        Reply::Error(CommandError::TooManyKeys {
            limit: KEYS_VISIT_MAX
        })
    );
    assert_eq!(
        keys(b"k1000?"),
        Reply::Keys((0..10).map(|i| format!("k1000{i}").into_bytes()).collect())
    );
}

fn scan_step(h: &Harness, cursor: u64, count: u64) -> (u64, Vec<Vec<u8>>) {
    let command = Command::Scan {
        cursor,
        pattern: None,
        count,
        type_name: None,
    };
    match h.read(command) {
        Reply::Scan { cursor, keys } => (cursor, keys),
        other => panic!("Scan answers Scan, got {other:?}"),
    }
}

#[test]
fn scan_returns_every_key_present_for_the_whole_scan_despite_writes_between_steps() {
    let mut h = Harness::new();
    for i in 0..200 {
        h.set(format!("stay{i}").as_bytes(), b"v");
    }
    let (mut cursor, mut seen) = (0, std::collections::BTreeSet::new());
    let mut step = 0;
    loop {
        let (next, keys) = scan_step(&h, cursor, 7);
        assert!(keys.len() <= 7, "a step visits at most COUNT keys");
        seen.extend(keys);
        // Writes between steps: new keys, and removed ones that were never meant to stay.
        h.set(format!("new{step}").as_bytes(), b"v");
        h.write(Command::Delete {
            key: format!("new{}", step / 2).into_bytes(),
        });
        step += 1;
        if next == 0 {
            break;
        }
        cursor = next;
    }
    for i in 0..200 {
        assert!(
            seen.contains(format!("stay{i}").as_bytes()),
            "stay{i} missed"
        );
    }
    assert!(step >= 200 / 7, "{step} steps");
}

#[test]
fn scan_filters_by_pattern_and_type_after_visiting() {
    let mut h = Harness::new();
    for key in [&b"a1"[..], b"a2", b"b1"] {
        h.set(key, b"v");
    }
    let scan = |pattern: Option<&[u8]>, type_name: Option<&[u8]>| match h.read(Command::Scan {
        cursor: 0,
        pattern: pattern.map(<[u8]>::to_vec),
        count: 100,
        type_name: type_name.map(<[u8]>::to_vec),
    }) {
        Reply::Scan {
            cursor: 0,
            mut keys,
        } => {
            keys.sort();
            keys
        }
        other => panic!("one step of a small database: {other:?}"),
    };
    assert_eq!(
        scan(Some(b"a*"), None),
        vec![b"a1".to_vec(), b"a2".to_vec()]
    );
    assert_eq!(scan(None, Some(b"STRING")).len(), 3);
    assert_eq!(scan(None, Some(b"list")), Vec::<Vec<u8>>::new());
}

#[test]
fn randomkey_is_a_key_of_its_database_or_nil_when_it_is_empty() {
    let mut h = Harness::new();
    assert_eq!(h.read(Command::RandomKey { seed: 7 }), Reply::Value(None));
    h.set(b"a", b"1");
    h.set(b"b", b"2");
    h.write(in_db(1, set(b"c", b"3")));
    let mut found = std::collections::BTreeSet::new();
    for seed in [0, 1 << 62, 1 << 63, u64::MAX, 12345] {
        match h.read(Command::RandomKey { seed }) {
            Reply::Value(Some(key)) => found.insert(key),
            other => panic!("{other:?}"),
        };
    }
    assert!(found.iter().all(|k| k == b"a" || k == b"b"), "{found:?}");
}

#[test]
fn an_image_encoded_before_databases_decodes_into_database_0() {
    let mut h = Harness::new();
    h.set(b"a", b"1");
    h.set(b"b", b"2");
    let m = &h.machine;
    // The v1 encoding: the state's four fields in order, with one store.
    let v1 =
        postcard::to_allocvec(&(&m.config, m.data.db(0), &m.sessions, m.applied_slot)).unwrap();
    let decoded = StateMachine::decode(&v1).unwrap();
    decoded.assert_invariants();
    assert_eq!(decoded.data, m.data);
    assert_eq!(decoded.sessions, m.sessions);
    assert_eq!(decoded.state_hash(), m.state_hash());
    // It carries no record of recent changes: every earlier WATCH counts as changed.
    assert_eq!(decoded.changes, transaction::Changes::forgotten_through(2));
    assert!(
        StateMachine::decode(&[0, 4, 0]).is_err(),
        "an unknown version"
    );
}

fn set_if(key: &[u8], value: &[u8], condition: SetCondition, get: bool) -> Command {
    Command::SetIf {
        key: key.to_vec(),
        value: value.to_vec(),
        condition,
        get,
    }
}

#[test]
fn set_nx_stores_only_an_absent_key_and_set_xx_only_a_present_one() {
    let mut h = Harness::new();
    assert_eq!(
        h.write(set_if(b"k", b"1", SetCondition::IfPresent, false)),
        Reply::Value(None)
    );
    assert_eq!(h.get(b"k"), None);
    assert_eq!(
        h.write(set_if(b"k", b"1", SetCondition::IfAbsent, false)),
        Reply::Ok
    );
    assert_eq!(
        h.write(set_if(b"k", b"2", SetCondition::IfAbsent, false)),
        Reply::Value(None)
    );
    assert_eq!(h.get(b"k"), Some(b"1".to_vec()));
    assert_eq!(
        h.write(set_if(b"k", b"3", SetCondition::IfPresent, false)),
        Reply::Ok
    );
    assert_eq!(h.get(b"k"), Some(b"3".to_vec()));
}

#[test]
fn set_get_answers_the_old_value_whether_or_not_it_stored() {
    let mut h = Harness::new();
    assert_eq!(
        h.write(set_if(b"k", b"1", SetCondition::Always, true)),
        Reply::Value(None)
    );
    assert_eq!(
        h.write(set_if(b"k", b"2", SetCondition::IfAbsent, true)),
        Reply::Value(Some(b"1".to_vec()))
    );
    assert_eq!(h.get(b"k"), Some(b"1".to_vec()));
}

#[test]
fn append_extends_the_value_and_answers_its_length_within_the_limit() {
    let mut h = Harness::new();
    let append = |value: &[u8]| Command::Append {
        key: b"k".to_vec(),
        value: value.to_vec(),
    };
    assert_eq!(h.write(append(b"ab")), Reply::Int(2));
    assert_eq!(h.write(append(b"cd")), Reply::Int(4));
    assert_eq!(h.get(b"k"), Some(b"abcd".to_vec()));
    let big = vec![b'x'; VALUE_MAX_BYTES - 3];
    let len = VALUE_MAX_BYTES + 1;
    assert_eq!(
        h.write(append(&big)),
        Reply::Error(CommandError::ValueTooLarge { len })
    );
    assert_eq!(h.get(b"k"), Some(b"abcd".to_vec()));
}

#[test]
fn msetnx_stores_every_pair_only_if_no_key_exists() {
    let mut h = Harness::new();
    let pairs = |keys: &[&[u8]]| Command::MultiSetIfAbsent {
        pairs: keys.iter().map(|k| (k.to_vec(), b"v".to_vec())).collect(),
    };
    assert_eq!(h.write(pairs(&[b"a", b"b"])), Reply::Bool(true));
    assert_eq!(h.write(pairs(&[b"c", b"b"])), Reply::Bool(false));
    assert_eq!(h.get(b"c"), None);
}
