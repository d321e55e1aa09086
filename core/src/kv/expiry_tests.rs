//! Specification tests of expiry in the state machine: time comes from the entries' stamps.

use super::tests::{replies, request};
use super::*;
use crate::command::{
    Deadline, ExpireCondition, ExpireName, SetCondition, TtlChange, TtlUnit, Watched,
};

/// One client writing one stamped entry per call.
struct Clocked {
    machine: StateMachine,
    slot: Slot,
    seq: u64,
}

impl Clocked {
    fn new() -> Self {
        Clocked {
            machine: StateMachine::new(StateMachineConfig::default()),
            slot: 0,
            seq: 0,
        }
    }

    fn write_at(&mut self, now_ms: u64, command: Command) -> Reply {
        self.slot += 1;
        self.seq += 1;
        let batch = [request(1, self.seq, command)];
        let responses = self.machine.apply_timed_batch(self.slot, now_ms, &batch);
        self.machine.assert_invariants();
        replies(responses).remove(0)
    }

    fn tick_at(&mut self, now_ms: u64) {
        self.slot += 1;
        self.machine.apply_timed_batch(self.slot, now_ms, &[]);
        self.machine.assert_invariants();
    }

    fn get_at(&self, key: &[u8], now_ms: i64) -> Reply {
        self.machine
            .read_at(&Command::Get { key: key.to_vec() }, now_ms)
    }

    fn ttl_at(&self, key: &[u8], unit: TtlUnit, now_ms: i64) -> Reply {
        let command = Command::TimeToLive {
            key: key.to_vec(),
            unit,
        };
        self.machine.read_at(&command, now_ms)
    }
}

fn set_px(key: &[u8], ms: i64) -> Command {
    Command::SetExpiring {
        key: key.to_vec(),
        value: b"v".to_vec(),
        condition: SetCondition::Always,
        get: false,
        ttl: TtlChange::Set(Deadline::In { ms }),
    }
}

fn expire(key: &[u8], ms: i64, condition: ExpireCondition) -> Command {
    Command::Expire {
        key: key.to_vec(),
        deadline: Deadline::In { ms },
        condition,
        name: ExpireName::PExpire,
    }
}

fn value() -> Reply {
    Reply::Value(Some(b"v".to_vec()))
}

#[test]
fn a_relative_deadline_counts_from_the_entry_time_and_the_key_vanishes_after_it() {
    let mut m = Clocked::new();
    assert_eq!(m.write_at(1_000, set_px(b"k", 100)), Reply::Ok);
    assert_eq!(m.get_at(b"k", 1_100), value(), "alive at its deadline");
    assert_eq!(m.get_at(b"k", 1_101), Reply::Value(None), "gone after it");
    assert_eq!(m.ttl_at(b"k", TtlUnit::Millis, 1_040), Reply::Int(60));
    assert_eq!(
        m.ttl_at(b"k", TtlUnit::UnixMillis, 1_040),
        Reply::Int(1_100)
    );
    assert_eq!(m.machine.db_expires(0), 1);
}

#[test]
fn reads_never_judge_before_the_applied_time() {
    let mut m = Clocked::new();
    m.write_at(1_000, set_px(b"k", 100));
    m.tick_at(5_000);
    assert_eq!(m.get_at(b"k", 1_050), Reply::Value(None));
    assert_eq!(m.machine.len(), 0, "the tick reclaimed the expired key");
}

#[test]
fn a_stamp_below_an_earlier_one_does_not_move_time_back() {
    let mut m = Clocked::new();
    m.tick_at(2_000);
    m.tick_at(1_500);
    assert_eq!(m.machine.now_ms(), 2_000);
}

#[test]
fn a_write_sees_an_expired_key_as_absent_and_plain_set_clears_the_deadline() {
    let mut m = Clocked::new();
    m.write_at(1_000, set_px(b"k", 10));
    let incremented = m.write_at(
        2_000,
        Command::Add {
            key: b"k".to_vec(),
            delta: 1,
        },
    );
    assert_eq!(incremented, Reply::Int(1), "counts from zero");
    m.write_at(2_001, set_px(b"k", 10));
    m.write_at(2_002, tests::set(b"k", b"w"));
    assert_eq!(m.ttl_at(b"k", TtlUnit::Millis, 9_999), Reply::Int(-1));
}

#[test]
fn expire_conditions_follow_redis() {
    let mut m = Clocked::new();
    m.write_at(1_000, tests::set(b"k", b"v"));
    assert_eq!(
        m.write_at(1_000, expire(b"k", 500, ExpireCondition::HasDeadline)),
        Reply::Int(0)
    );
    assert_eq!(
        m.write_at(1_000, expire(b"k", 500, ExpireCondition::Later)),
        Reply::Int(0)
    );
    assert_eq!(
        m.write_at(1_000, expire(b"k", 500, ExpireCondition::NoDeadline)),
        Reply::Int(1)
    );
    assert_eq!(
        m.write_at(1_000, expire(b"k", 400, ExpireCondition::Later)),
        Reply::Int(0)
    );
    assert_eq!(
        m.write_at(1_000, expire(b"k", 900, ExpireCondition::Later)),
        Reply::Int(1)
    );
    assert_eq!(
        m.write_at(1_000, expire(b"k", 950, ExpireCondition::Earlier)),
        Reply::Int(0)
    );
    let earlier = ExpireCondition::EarlierWithDeadline;
    assert_eq!(m.write_at(1_000, expire(b"k", 800, earlier)), Reply::Int(1));
    assert_eq!(m.ttl_at(b"k", TtlUnit::Millis, 1_000), Reply::Int(800));
    assert_eq!(
        m.write_at(1_000, expire(b"k", -1, ExpireCondition::Always)),
        Reply::Int(1)
    );
    assert_eq!(
        m.get_at(b"k", 1_000),
        Reply::Value(None),
        "a past deadline deletes"
    );
    assert_eq!(
        m.write_at(1_000, expire(b"k", 5, ExpireCondition::Always)),
        Reply::Int(0)
    );
}

#[test]
fn an_overflowing_relative_deadline_is_redis_error_and_changes_nothing() {
    let mut m = Clocked::new();
    m.write_at(1_000, tests::set(b"k", b"v"));
    let reply = m.write_at(1_000, expire(b"k", i64::MAX - 10, ExpireCondition::Always));
    assert_eq!(
        reply,
        Reply::Error(CommandError::InvalidExpireTime(ExpireName::PExpire))
    );
    assert_eq!(
        crate::redis::show(&reply),
        crate::redis::Resp::Error("ERR invalid expire time in 'pexpire' command".into())
    );
    assert_eq!(m.ttl_at(b"k", TtlUnit::Seconds, 1_000), Reply::Int(-1));
}

#[test]
fn persist_and_getex_change_the_deadline_and_keepttl_keeps_it() {
    let mut m = Clocked::new();
    m.write_at(1_000, set_px(b"k", 5_000));
    let keep = Command::SetExpiring {
        key: b"k".to_vec(),
        value: b"v".to_vec(),
        condition: SetCondition::Always,
        get: false,
        ttl: TtlChange::Keep,
    };
    m.write_at(1_000, keep);
    assert_eq!(m.ttl_at(b"k", TtlUnit::Seconds, 1_000), Reply::Int(5));
    assert_eq!(
        m.write_at(1_000, Command::Persist { key: b"k".to_vec() }),
        Reply::Int(1)
    );
    assert_eq!(
        m.write_at(1_000, Command::Persist { key: b"k".to_vec() }),
        Reply::Int(0)
    );
    let getex = Command::GetEx {
        key: b"k".to_vec(),
        ttl: TtlChange::Set(Deadline::In { ms: 2_000 }),
    };
    assert_eq!(m.write_at(1_000, getex), value());
    assert_eq!(m.ttl_at(b"k", TtlUnit::Millis, 1_000), Reply::Int(2_000));
}

#[test]
fn rename_and_move_carry_the_deadline() {
    let mut m = Clocked::new();
    m.write_at(1_000, set_px(b"a", 300));
    m.write_at(
        1_000,
        Command::Rename {
            from: b"a".to_vec(),
            to: b"b".to_vec(),
        },
    );
    assert_eq!(
        m.ttl_at(b"b", TtlUnit::UnixMillis, 1_000),
        Reply::Int(1_300)
    );
    let moved = m.write_at(
        1_000,
        Command::Move {
            key: b"b".to_vec(),
            to: 2,
        },
    );
    assert_eq!(moved, Reply::Bool(true));
    assert_eq!(m.machine.db_expires(2), 1);
    assert_eq!(m.machine.db_expires(0), 0);
}

#[test]
fn copy_and_renamenx_give_the_target_the_sources_deadline_or_none() {
    let mut m = Clocked::new();
    m.write_at(1_000, set_px(b"a", 300));
    m.write_at(1_000, set_px(b"b", 900));
    let copy = |from: &[u8], to: &[u8]| Command::Copy {
        from: from.to_vec(),
        to: to.to_vec(),
        to_db: None,
        replace: true,
    };
    assert_eq!(m.write_at(1_000, copy(b"a", b"c")), Reply::Bool(true));
    let at = |m: &Clocked, key: &[u8]| m.ttl_at(key, TtlUnit::UnixMillis, 1_000);
    assert_eq!(at(&m, b"c"), Reply::Int(1_300), "COPY carries the deadline");
    assert_eq!(at(&m, b"a"), Reply::Int(1_300), "and keeps the source's");
    let plain = Command::Set {
        key: b"p".to_vec(),
        value: b"v".to_vec(),
    };
    m.write_at(1_000, plain);
    assert_eq!(m.write_at(1_000, copy(b"p", b"b")), Reply::Bool(true));
    assert_eq!(
        at(&m, b"b"),
        Reply::Int(-1),
        "a replaced target loses its own"
    );
    let renamenx = Command::RenameIfAbsent {
        from: b"c".to_vec(),
        to: b"d".to_vec(),
    };
    assert_eq!(m.write_at(1_000, renamenx), Reply::Bool(true));
    assert_eq!(at(&m, b"d"), Reply::Int(1_300), "RENAMENX carries it");
}

#[test]
fn reclaiming_is_bounded_per_entry_and_keeps_replicas_equal() {
    let mut m = Clocked::new();
    for i in 0..(EXPIRED_REAPED_PER_ENTRY_MAX + 50) {
        m.write_at(1_000, set_px(format!("k{i}").as_bytes(), 10));
    }
    m.tick_at(2_000);
    assert_eq!(m.machine.len(), 50, "one entry reclaims at most the bound");
    m.tick_at(2_001);
    assert_eq!(m.machine.len(), 0);
    assert_eq!(m.machine.next_deadline_ms(), None);
}

#[test]
fn deadlines_and_time_survive_encoding_and_change_the_state_hash() {
    let mut m = Clocked::new();
    m.write_at(1_000, set_px(b"k", 100));
    let body = m.machine.encode();
    let decoded = StateMachine::decode(&body).expect("decodes");
    decoded.assert_invariants();
    assert_eq!(decoded.state_hash(), m.machine.state_hash());
    assert_eq!(decoded.now_ms(), 1_000);
    m.machine.verify_encoding(&body).expect("verifies");
    let mut other = Clocked::new();
    other.write_at(1_001, set_px(b"k", 99));
    assert_ne!(
        other.machine.state_hash(),
        m.machine.state_hash(),
        "the time is hashed"
    );
}

#[test]
fn a_watched_key_that_expires_fails_exec_but_one_already_expired_does_not() {
    let mut m = Clocked::new();
    m.write_at(1_000, set_px(b"k", 100));
    let watch = |existed| Command::Transaction {
        commands: vec![tests::set(b"x", b"1")],
        watched: vec![Watched {
            db: 0,
            key: b"k".to_vec(),
            slot: 1,
            existed,
        }],
    };
    assert_eq!(m.write_at(2_000, watch(true)), Reply::Transaction(None));
    let ran = m.write_at(2_000, watch(false));
    assert!(matches!(ran, Reply::Transaction(Some(_))), "{ran:?}");
}
