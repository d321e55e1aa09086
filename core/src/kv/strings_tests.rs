//! Specification tests of the string and bit writes.

use super::tests::{replies, request};
use super::*;
use crate::command::{BitOp, BIT_OFFSET_LIMIT, DATABASES};

struct Machine {
    machine: StateMachine,
    slot: Slot,
}

impl Machine {
    fn new() -> Self {
        Machine {
            machine: StateMachine::new(StateMachineConfig::default()),
            slot: 0,
        }
    }

    fn write(&mut self, command: Command) -> Reply {
        self.slot += 1;
        let batch = [request(1, self.slot, command)];
        let reply = replies(self.machine.apply_batch(self.slot, &batch)).remove(0);
        self.machine.assert_invariants();
        reply
    }

    fn set(&mut self, key: &[u8], value: &[u8]) {
        let (key, value) = (key.to_vec(), value.to_vec());
        assert_eq!(self.write(Command::Set { key, value }), Reply::Ok);
    }

    fn get_in(&self, db: Db, key: &[u8]) -> Option<Vec<u8>> {
        let get = Command::Get { key: key.to_vec() }.in_db(db);
        match self.machine.read(&get) {
            Reply::Value(value) => value,
            other => panic!("Get answers Value, got {other:?}"),
        }
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.get_in(0, key)
    }
}

fn set_range(key: &[u8], offset: u64, value: &[u8]) -> Command {
    let (key, value) = (key.to_vec(), value.to_vec());
    Command::SetRange { key, offset, value }
}

#[test]
fn set_range_pads_with_zeros_and_an_empty_patch_changes_nothing() {
    let mut m = Machine::new();
    assert_eq!(m.write(set_range(b"k", 1, b"foo")), Reply::Int(4));
    assert_eq!(m.get(b"k").unwrap(), b"\0foo");
    assert_eq!(m.write(set_range(b"k", 0, b"")), Reply::Int(4));
    assert_eq!(m.write(set_range(b"absent", 0, b"")), Reply::Int(0));
    assert_eq!(m.get(b"absent"), None);
    let too_far = set_range(b"k", VALUE_MAX_BYTES as u64, b"x");
    assert_eq!(m.write(too_far), Reply::Error(CommandError::StringTooLong));
    let overflow = set_range(b"k", u64::MAX, b"x");
    assert_eq!(m.write(overflow), Reply::Error(CommandError::StringTooLong));
    assert_eq!(m.get(b"k").unwrap(), b"\0foo");
}

#[test]
fn add_float_stores_the_sum_and_refuses_non_numbers_and_infinity() {
    let mut m = Machine::new();
    let add = |delta: &[u8]| Command::AddFloat {
        key: b"f".to_vec(),
        delta: delta.to_vec(),
    };
    assert_eq!(m.write(add(b"10.5")), Reply::Value(Some(b"10.5".to_vec())));
    assert_eq!(m.write(add(b"-5")), Reply::Value(Some(b"5.5".to_vec())));
    assert_eq!(
        m.write(add(b"+inf")),
        Reply::Error(CommandError::NanOrInfinity)
    );
    assert_eq!(m.write(add(b"1 ")), Reply::Error(CommandError::NotAFloat));
    assert_eq!(m.get(b"f").unwrap(), b"5.5");
    m.set(b"f", b" 1");
    assert_eq!(m.write(add(b"1")), Reply::Error(CommandError::NotAFloat));
}

#[test]
fn set_bit_returns_the_old_bit_and_refuses_offsets_past_the_limit() {
    let mut m = Machine::new();
    let set_bit = |offset, bit| Command::SetBit {
        key: b"b".to_vec(),
        offset,
        bit,
    };
    assert_eq!(m.write(set_bit(1, true)), Reply::Int(0));
    assert_eq!(m.write(set_bit(1, true)), Reply::Int(1));
    assert_eq!(m.get(b"b").unwrap(), vec![0b0100_0000]);
    let refused = m.write(set_bit(BIT_OFFSET_LIMIT, true));
    assert_eq!(refused, Reply::Error(CommandError::BitOffsetOutOfRange));
    assert_eq!(m.write(set_bit(BIT_OFFSET_LIMIT - 1, false)), Reply::Int(0));
    assert_eq!(m.get(b"b").unwrap().len(), VALUE_MAX_BYTES);
}

#[test]
fn bit_op_stores_the_result_or_removes_dest_when_empty() {
    let mut m = Machine::new();
    m.set(b"a", b"\xf0\x0f");
    m.set(b"b", b"\x3c");
    let op = |op, keys: &[&[u8]]| Command::BitOp {
        op,
        dest: b"d".to_vec(),
        keys: keys.iter().map(|k| k.to_vec()).collect(),
    };
    assert_eq!(m.write(op(BitOp::And, &[b"a", b"b"])), Reply::Int(2));
    assert_eq!(m.get(b"d").unwrap(), b"\x30\x00");
    assert_eq!(m.write(op(BitOp::Xor, &[b"a", b"b", b"x"])), Reply::Int(2));
    assert_eq!(m.get(b"d").unwrap(), b"\xcc\x0f");
    assert_eq!(
        m.write(op(BitOp::Not, &[b"a", b"b"])),
        Reply::Error(CommandError::BitOpNotArity)
    );
    assert_eq!(m.write(op(BitOp::Not, &[b"x"])), Reply::Int(0));
    assert_eq!(m.get(b"d"), None);
}

#[test]
fn rename_if_absent_never_overwrites() {
    let mut m = Machine::new();
    m.set(b"a", b"1");
    m.set(b"b", b"2");
    let renamenx = |from: &[u8], to: &[u8]| Command::RenameIfAbsent {
        from: from.to_vec(),
        to: to.to_vec(),
    };
    assert_eq!(m.write(renamenx(b"a", b"b")), Reply::Bool(false));
    assert_eq!(m.write(renamenx(b"a", b"a")), Reply::Bool(false));
    assert_eq!(
        m.write(renamenx(b"x", b"c")),
        Reply::Error(CommandError::NoSuchKey)
    );
    assert_eq!(m.write(renamenx(b"a", b"c")), Reply::Bool(true));
    assert_eq!((m.get(b"a"), m.get(b"c").unwrap()), (None, b"1".to_vec()));
}

#[test]
fn copy_keeps_the_source_and_replaces_only_when_asked() {
    let mut m = Machine::new();
    m.set(b"a", b"1");
    m.set(b"b", b"2");
    let copy = |to: &[u8], to_db, replace| Command::Copy {
        from: b"a".to_vec(),
        to: to.to_vec(),
        to_db,
        replace,
    };
    assert_eq!(
        m.write(copy(b"a", None, true)),
        Reply::Error(CommandError::SameObject)
    );
    assert_eq!(
        m.write(copy(b"a", Some(0), true)),
        Reply::Error(CommandError::SameObject)
    );
    assert_eq!(m.write(copy(b"b", None, false)), Reply::Bool(false));
    assert_eq!(m.write(copy(b"b", None, true)), Reply::Bool(true));
    assert_eq!(m.get(b"b").unwrap(), b"1");
    assert_eq!(m.write(copy(b"a", Some(3), false)), Reply::Bool(true));
    assert_eq!(m.get_in(3, b"a").unwrap(), b"1");
    let out_of_range = m.write(copy(b"a", Some(DATABASES), false));
    assert_eq!(out_of_range, Reply::Error(CommandError::DbOutOfRange));
    assert_eq!(m.get(b"a").unwrap(), b"1");
}
