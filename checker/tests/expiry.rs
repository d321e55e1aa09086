//! Keys with deadlines: the timed model judges them within the drift bound `E`, rejecting a key
//! found present after its deadline plus the bound (or absent before it minus the bound) and
//! accepting what the bound allows, and accepting whatever the store's own state machine does
//! with clocks within the bound.

use keyspace_checker::{check_kv, CheckOptions, CheckResult, History, LogClock, Recorder};
use keyspace_core::kv::{StateMachine, StateMachineConfig};
use keyspace_core::{
    ClientRequest, Command, Deadline, ExpireCondition, ExpireName, Reply, SetCondition, TtlChange,
    TtlUnit,
};
use proptest::prelude::*;
use std::time::Duration;

const MS: u64 = 1_000_000;
/// The drift bound of these histories.
const E_MS: i64 = 50;

fn options() -> CheckOptions {
    CheckOptions {
        timeout: Some(Duration::from_secs(10)),
        log_clock: Some(LogClock {
            epoch_ms: 1_800_000_000_000,
            error_max_ms: E_MS,
        }),
        ..CheckOptions::default()
    }
}

fn key() -> Vec<u8> {
    b"k".to_vec()
}

fn set_px(value: &str, ms: i64) -> Command {
    Command::SetExpiring {
        key: key(),
        value: value.as_bytes().to_vec(),
        condition: SetCondition::Always,
        get: false,
        ttl: TtlChange::Set(Deadline::In { ms }),
    }
}

fn get() -> Command {
    Command::Get { key: key() }
}

fn pttl() -> Command {
    Command::TimeToLive {
        key: key(),
        unit: TtlUnit::Millis,
    }
}

fn value(v: &str) -> Reply {
    Reply::Value(Some(v.as_bytes().to_vec()))
}

/// A history of operations, each `(invoke ms, return ms, command, reply)`, one client each.
fn history(ops: &[(u64, u64, Command, Reply)]) -> Recorder {
    let mut rec = Recorder::new();
    for (client, (invoke, ret, command, reply)) in ops.iter().enumerate() {
        let op = rec.invoke(client as u64, invoke * MS, command.clone());
        rec.ok(op, ret * MS, reply.clone());
    }
    rec
}

fn verdict(ops: &[(u64, u64, Command, Reply)]) -> CheckResult {
    check_kv(&history(ops).history(), &options())
}

/// SET k v PX 1000 during [0, 1] ms: its deadline lies in [950, 1051] ms of store time.
fn set_at_zero() -> (u64, u64, Command, Reply) {
    (0, 1, set_px("v", 1000), Reply::Ok)
}

#[test]
fn a_key_read_after_its_deadline_plus_the_drift_bound_is_rejected() {
    // Read during [1102, 1103]: the store judged at 1052 or later, past any deadline possible.
    let late = (1102, 1103, get(), value("v"));
    assert!(verdict(&[set_at_zero(), late]).is_violation());
}

#[test]
fn a_key_read_within_the_drift_bound_after_its_deadline_is_accepted() {
    // Read during [1100, 1101]: judged as early as 1050, within the deadline's range.
    let late = (1100, 1101, get(), value("v"));
    assert!(verdict(&[set_at_zero(), late]).is_linearizable());
}

#[test]
fn a_key_gone_before_its_deadline_minus_the_drift_bound_is_rejected() {
    // Absent when read during [898, 899]: judged at 949 at the latest, before any deadline.
    let early = (898, 899, get(), Reply::Value(None));
    assert!(verdict(&[set_at_zero(), early]).is_violation());
    let within = (900, 901, get(), Reply::Value(None));
    assert!(verdict(&[set_at_zero(), within]).is_linearizable());
}

#[test]
fn two_reads_narrow_one_deadline_together() {
    // Present when judged at 1000 or later, absent when judged at 1001 or earlier: deadline
    // 1000, allowed; absent by 1000 at the latest as well: no deadline left.
    let present = (1050, 1060, get(), value("v"));
    let absent = (940, 951, get(), Reply::Value(None));
    assert!(verdict(&[set_at_zero(), present.clone(), absent]).is_linearizable());
    let absent_earlier = (940, 949, get(), Reply::Value(None));
    assert!(verdict(&[set_at_zero(), present, absent_earlier]).is_violation());
}

#[test]
fn a_time_to_live_must_agree_with_the_deadline_within_the_bound() {
    // PTTL during [500, 501] answering p puts the deadline in [450 + p, 551 + p].
    let agrees = (500, 501, pttl(), Reply::Int(500));
    assert!(verdict(&[set_at_zero(), agrees]).is_linearizable());
    let short = (500, 501, pttl(), Reply::Int(300));
    assert!(verdict(&[set_at_zero(), short]).is_violation());
    let persisted = (500, 501, pttl(), Reply::Int(-1));
    assert!(verdict(&[set_at_zero(), persisted]).is_violation());
    let seconds = Command::TimeToLive {
        key: key(),
        unit: TtlUnit::Seconds,
    };
    // 0.45 s left rounds to 0 s; 1 s would need at least 0.5 s left, when at most 0.551 is.
    assert!(
        verdict(&[set_at_zero(), (500, 501, seconds.clone(), Reply::Int(0))]).is_linearizable()
    );
    assert!(
        verdict(&[set_at_zero(), (500, 501, seconds.clone(), Reply::Int(1))]).is_linearizable()
    );
    assert!(verdict(&[set_at_zero(), (500, 501, seconds, Reply::Int(2))]).is_violation());
}

#[test]
fn a_write_that_may_have_found_the_key_expired_keeps_both_outcomes() {
    // INCR of "0" answers 1 whether the key was live (deadline kept) or expired (counted from
    // 0, no deadline): a later PTTL may answer either way.
    let set = (0, 1, set_px("0", 100), Reply::Ok);
    let incr = (
        100,
        101,
        Command::Add {
            key: key(),
            delta: 1,
        },
        Reply::Int(1),
    );
    let no_deadline = (300, 301, pttl(), Reply::Int(-1));
    assert!(verdict(&[set.clone(), incr.clone(), no_deadline]).is_linearizable());
    let gone = (300, 301, pttl(), Reply::Int(-2));
    assert!(verdict(&[set.clone(), incr.clone(), gone]).is_linearizable());
    // Long after: the deadline kept is past, so present means it had none.
    let never_expires = (5_000, 5_001, get(), value("1"));
    assert!(verdict(&[set.clone(), incr.clone(), never_expires]).is_linearizable());
    let other = (5_000, 5_001, get(), value("0"));
    assert!(verdict(&[set, incr, other]).is_violation());
}

#[test]
fn expire_gt_is_judged_against_the_range_of_the_current_deadline() {
    let pexpire_gt = |ms| Command::Expire {
        key: key(),
        deadline: Deadline::In { ms },
        condition: ExpireCondition::Later,
        name: ExpireName::PExpire,
    };
    // At [10, 11] a deadline of 10 + 5000 is surely later than one in [950, 1051].
    let later = (10, 11, pexpire_gt(5_000), Reply::Int(1));
    assert!(verdict(&[set_at_zero(), later]).is_linearizable());
    let refused = (10, 11, pexpire_gt(5_000), Reply::Int(0));
    assert!(verdict(&[set_at_zero(), refused]).is_violation());
    // The key lives on to about 5010: present at 3000.
    let still = (3_000, 3_001, get(), value("v"));
    let later = (10, 11, pexpire_gt(5_000), Reply::Int(1));
    assert!(verdict(&[set_at_zero(), later, still]).is_linearizable());
}

#[test]
fn persist_keeps_a_key_past_its_deadline() {
    let persist = (10, 11, Command::Persist { key: key() }, Reply::Int(1));
    let late = (5_000, 5_001, get(), value("v"));
    assert!(verdict(&[set_at_zero(), persist, late.clone()]).is_linearizable());
    assert!(verdict(&[set_at_zero(), late]).is_violation());
}

#[test]
fn a_set_of_unknown_outcome_may_take_effect_any_time_after_its_invoke() {
    let mut rec = Recorder::new();
    let _never = rec.invoke(1, 0, set_px("v", 1000));
    let read = rec.invoke(2, 3_000 * MS, get());
    rec.ok(read, 3_001 * MS, value("v"));
    assert!(check_kv(&rec.history(), &options()).is_linearizable());
}

#[test]
fn without_a_log_clock_parts_with_expiry_commands_are_left_out() {
    let late = (1102, 1103, get(), value("v"));
    let rec = history(&[set_at_zero(), late]);
    let untimed = CheckOptions {
        log_clock: None,
        ..options()
    };
    assert!(check_kv(&rec.history(), &untimed).is_linearizable());
    assert!(check_kv(&rec.history(), &options()).is_violation());
}

/// One drawn operation of the state machine history: what it does, when (relative to the one
/// before) it takes effect in true time, how long before that it was invoked and after that it
/// returned, the error of the clock that judged it, and whether its reply is lost.
#[derive(Clone, Debug)]
struct TimedDraw {
    pick: u8,
    arg: u8,
    gap_ms: u64,
    before_ms: u64,
    after_ms: u64,
    clock_error_ms: i64,
    lost: bool,
}

fn timed_draws() -> impl Strategy<Value = (i64, Vec<TimedDraw>)> {
    (0i64..3).prop_flat_map(|e| {
        let error_max_ms = [0, 5, 50][e as usize];
        let draw = (
            any::<u8>(),
            any::<u8>(),
            0u64..300,
            0u64..60,
            0u64..60,
            -error_max_ms..=error_max_ms,
            prop::bool::weighted(0.1),
        )
            .prop_map(
                |(pick, arg, gap_ms, before_ms, after_ms, clock_error_ms, lost)| TimedDraw {
                    pick,
                    arg,
                    gap_ms,
                    before_ms,
                    after_ms,
                    clock_error_ms,
                    lost,
                },
            );
        (Just(error_max_ms), prop::collection::vec(draw, 1..40))
    })
}

/// The simulator's expiry workload, on two keys: SET with PX/KEEPTTL, PEXPIRE with its
/// conditions, PERSIST, GETEX, TTL/PTTL, GET, INCR.
fn expiry_command(pick: u8, arg: u8) -> Command {
    let key = vec![b'x' + arg % 2];
    let ms = [1, 20, 100, 300, 2_000][usize::from(arg / 2) % 5];
    let set = TtlChange::Set(Deadline::In { ms });
    match pick % 10 {
        0..=2 => Command::SetExpiring {
            key,
            value: vec![b'1' + arg % 3],
            condition: [SetCondition::Always, SetCondition::IfAbsent][usize::from(arg / 3) % 2],
            get: arg.is_multiple_of(5),
            ttl: [set, TtlChange::Keep][usize::from(arg / 7) % 2],
        },
        3 => Command::Expire {
            key,
            deadline: Deadline::In { ms },
            condition: [
                ExpireCondition::Always,
                ExpireCondition::NoDeadline,
                ExpireCondition::HasDeadline,
                ExpireCondition::Later,
                ExpireCondition::Earlier,
            ][usize::from(arg / 11) % 5],
            name: ExpireName::PExpire,
        },
        4 => Command::Persist { key },
        5 => Command::GetEx {
            key,
            ttl: [set, TtlChange::Clear][usize::from(arg / 3) % 2],
        },
        6 => Command::TimeToLive {
            key,
            unit: [TtlUnit::Millis, TtlUnit::Seconds][usize::from(arg / 3) % 2],
        },
        7 => Command::Add { key, delta: 1 },
        _ => Command::Get { key },
    }
}

const EPOCH_MS: u64 = 1_800_000_000_000;

/// Runs the store's state machine as the replicas do: each write in an entry stamped with
/// `max(a clock within E of true time, the applied time)`, each read judged at such a clock,
/// in the order they take effect in true time; records what clients see.
fn state_machine_history(draws: &[TimedDraw]) -> History {
    let mut machine = StateMachine::new(StateMachineConfig::default());
    let mut rec = Recorder::new();
    let (mut at_ms, mut slot) = (1_000u64, 0u64);
    for (i, draw) in draws.iter().enumerate() {
        at_ms += draw.gap_ms;
        let command = expiry_command(draw.pick, draw.arg);
        let invoke_ms = at_ms.saturating_sub(draw.before_ms);
        let clock_ms = (EPOCH_MS + at_ms).saturating_add_signed(draw.clock_error_ms);
        let reply = match command.is_write() {
            true => {
                slot += 1;
                let request = ClientRequest {
                    client_id: 1,
                    seq: slot,
                    command: command.clone(),
                };
                let mut responses = machine.apply_timed_batch(slot, clock_ms, &[request]);
                match responses.remove(0).outcome {
                    keyspace_core::Outcome::Done(reply) => reply,
                    other => panic!("the state machine answers Done, got {other:?}"),
                }
            }
            false => machine.read_at(&command, clock_ms as i64),
        };
        let op = rec.invoke(i as u64, invoke_ms * MS, command);
        if !draw.lost {
            rec.ok(op, (at_ms + draw.after_ms) * MS, reply);
        }
    }
    rec.into_history()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Never a false verdict: whatever the store does with every clock within the bound, the
    /// timed model accepts.
    #[test]
    fn the_state_machine_with_clocks_within_the_bound_is_accepted(
        (error_max_ms, draws) in timed_draws()
    ) {
        let history = state_machine_history(&draws);
        let options = CheckOptions {
            log_clock: Some(LogClock { epoch_ms: EPOCH_MS as i64, error_max_ms }),
            ..options()
        };
        let verdict = check_kv(&history, &options);
        prop_assert!(verdict.is_linearizable(), "{verdict:?}");
    }
}
